//! The file tree an image's layers produce, as the container will see it:
//! later layers override earlier ones, whiteouts delete, opaque markers hide
//! a directory's lower content. Only the metadata of every entry and the
//! content of the few files the builder reads (libc, loaders,
//! /etc/ld.so.preload, and for `--check` every ELF executable) are kept.

use crate::error::{Error, Result};
use crate::inspect::elf::{ElfInfo, ELF_MAGIC};
use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    Dir,
    File,
    Symlink(String),
    /// A hard link to another path of the image (normalised).
    Hardlink(String),
    Other,
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: Kind,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub mtime: u64,
    pub size: u64,
    pub layer: usize,
    pub data: Option<Arc<Vec<u8>>>,
    /// For `--check`: the file is an ELF executable the loader never runs.
    pub static_exe: bool,
    /// SHA-256 of the content of executables and shared libraries, for
    /// the drift manifest.
    pub sha256: Option<[u8; 32]>,
    /// The layer gives the file capabilities (`security.capability`), which
    /// `no_new_privs` ignores like the setuid bit.
    pub file_caps: bool,
}

/// Whether the drift manifest lists this file: executable, or named like
/// a shared object (`libx.so`, `libx.so.6`), which `dlopen` loads without
/// the exec bit.
pub fn in_drift_manifest(path: &str, mode: u32) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    mode & 0o111 != 0 || base.ends_with(".so") || base.contains(".so.")
}

/// Whether a tar member carries file capabilities (a PAX
/// `SCHILY.xattr.security.capability` record, as podman and buildah write).
fn has_file_caps<R: Read>(entry: &mut tar::Entry<'_, R>) -> bool {
    let Ok(Some(pax)) = entry.pax_extensions() else {
        return false;
    };
    pax.flatten()
        .any(|e| e.key_bytes() == b"SCHILY.xattr.security.capability")
}

fn sha256(data: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(data).into()
}

/// A file whose exec raises privileges (see [`RootFs::privileged_files`]).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct PrivilegedFile {
    pub path: String,
    /// e.g. `setuid uid 0`, `setgid gid 42`, `file capabilities`.
    pub gains: String,
}

/// Which file contents a scan keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScanDepth {
    /// libc, loaders, /etc/ld.so.preload: enough to instrument.
    Loader,
    /// Also classify every executable ELF file (for `--check`).
    Executables,
}

#[derive(Debug, Default)]
pub struct RootFs {
    nodes: BTreeMap<String, Node>,
}

/// Files whose content the libc detection reads.
fn wanted_content(path: &str) -> bool {
    let base = path.rsplit('/').next().unwrap_or(path);
    path == "etc/ld.so.preload"
        || path == crate::payload::runtime_config::POLICY_PATH
        || base == "libc.so.6"
        || (base.starts_with("libc-") && base.ends_with(".so"))
        || (base.starts_with("ld-musl-") && base.ends_with(".so.1"))
}

/// The largest executable `--check` reads to classify; bigger ones are
/// classified from their first megabytes, which hold the program headers.
const MAX_EXE_READ: u64 = 512 << 20;

/// Normalises a tar member name to the image path without leading `./` or
/// `/` and without trailing `/` ("" is the root).
pub fn normalize(name: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for c in name.split('/') {
        match c {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            c => parts.push(c),
        }
    }
    parts.join("/")
}

fn parent_of(path: &str) -> &str {
    path.rsplit_once('/').map(|(p, _)| p).unwrap_or("")
}

fn join(dir: &str, name: &str) -> String {
    if dir.is_empty() {
        name.to_string()
    } else {
        format!("{dir}/{name}")
    }
}

impl RootFs {
    pub fn new() -> Self {
        RootFs::default()
    }

    /// Applies one layer (an uncompressed tar stream) on top.
    pub fn apply_layer(
        &mut self,
        layer: usize,
        tar_stream: impl Read,
        depth: ScanDepth,
        place: &str,
    ) -> Result<()> {
        let mut archive = tar::Archive::new(tar_stream);
        let mut opaque: Vec<String> = Vec::new();
        let entries = archive
            .entries()
            .map_err(|e| crate::image::digest::unwrap_io(place, "reading the layer", e))?;
        for entry in entries {
            let mut entry = entry
                .map_err(|e| crate::image::digest::unwrap_io(place, "reading the layer", e))?;
            let raw = entry.path_bytes();
            let name = String::from_utf8_lossy(&raw).into_owned();
            let path = normalize(&name);
            if path.is_empty() {
                continue;
            }
            let (dir, base) = match path.rsplit_once('/') {
                Some((d, b)) => (d.to_string(), b.to_string()),
                None => (String::new(), path.clone()),
            };
            if base == ".wh..wh..opq" {
                opaque.push(dir);
                continue;
            }
            if let Some(hidden) = base.strip_prefix(".wh.") {
                self.remove_tree(&join(&dir, hidden), layer);
                continue;
            }
            let header = entry.header();
            let mode = header.mode().unwrap_or(0o644);
            let uid = header.uid().unwrap_or(0);
            let gid = header.gid().unwrap_or(0);
            let mtime = header.mtime().unwrap_or(0);
            let size = header.size().unwrap_or(0);
            let etype = header.entry_type();
            let kind = if etype.is_dir() {
                Kind::Dir
            } else if etype.is_symlink() {
                let target = entry
                    .link_name_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .unwrap_or_default();
                Kind::Symlink(target)
            } else if etype.is_hard_link() {
                let target = entry
                    .link_name_bytes()
                    .map(|b| normalize(&String::from_utf8_lossy(&b)))
                    .unwrap_or_default();
                Kind::Hardlink(target)
            } else if etype.is_file() || etype == tar::EntryType::Continuous {
                Kind::File
            } else {
                Kind::Other
            };
            let mut data = None;
            let mut static_exe = false;
            let mut digest = None;
            let file_caps = kind == Kind::File && has_file_caps(&mut entry);
            if kind == Kind::File {
                let exe = mode & 0o111 != 0 && depth == ScanDepth::Executables;
                let listed = in_drift_manifest(&path, mode);
                if wanted_content(&path) || exe || listed {
                    let mut buf = Vec::new();
                    (&mut entry)
                        .take(MAX_EXE_READ)
                        .read_to_end(&mut buf)
                        .map_err(|e| {
                            crate::image::digest::unwrap_io(place, "reading the layer", e)
                        })?;
                    digest = listed.then(|| sha256(&buf));
                    if exe && buf.starts_with(ELF_MAGIC) {
                        static_exe = ElfInfo::parse(&buf).is_ok_and(|i| i.is_static_executable());
                    }
                    if wanted_content(&path) {
                        data = Some(Arc::new(buf));
                    }
                }
            }
            self.insert(
                path,
                Node {
                    kind,
                    mode,
                    uid,
                    gid,
                    mtime,
                    size,
                    layer,
                    data,
                    static_exe,
                    sha256: digest,
                    file_caps,
                },
            );
        }
        for dir in opaque {
            let prefix = if dir.is_empty() {
                String::new()
            } else {
                format!("{dir}/")
            };
            let lower: Vec<String> = self
                .nodes
                .range(prefix.clone()..)
                .take_while(|(k, _)| k.starts_with(&prefix))
                .filter(|(_, n)| n.layer < layer)
                .map(|(k, _)| k.clone())
                .collect();
            for k in lower {
                self.nodes.remove(&k);
            }
        }
        Ok(())
    }

    /// Reads a directory on disk (for `install --root`), keeping the same
    /// contents a layer scan would.
    pub fn from_dir(root: &Path, depth: ScanDepth) -> Result<RootFs> {
        let mut fs = RootFs::new();
        let mut stack = vec![String::new()];
        while let Some(rel) = stack.pop() {
            let dir = root.join(&rel);
            let rd = match std::fs::read_dir(&dir) {
                Ok(rd) => rd,
                // Unreadable corners (/proc of a live system) are not ours.
                Err(_) => continue,
            };
            for entry in rd.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let path = join(&rel, &name);
                if rel.is_empty() && matches!(name.as_str(), "proc" | "sys" | "dev") {
                    continue;
                }
                let Ok(meta) = entry.path().symlink_metadata() else {
                    continue;
                };
                use std::os::unix::fs::MetadataExt;
                let ft = meta.file_type();
                let kind = if ft.is_dir() {
                    stack.push(path.clone());
                    Kind::Dir
                } else if ft.is_symlink() {
                    let t = std::fs::read_link(entry.path())
                        .map_err(|e| Error::io(entry.path(), "reading the link", e))?;
                    Kind::Symlink(t.to_string_lossy().into_owned())
                } else if ft.is_file() {
                    Kind::File
                } else {
                    Kind::Other
                };
                let mut node = Node {
                    kind,
                    mode: meta.mode() & 0o7777,
                    uid: meta.uid() as u64,
                    gid: meta.gid() as u64,
                    mtime: meta.mtime().max(0) as u64,
                    size: meta.len(),
                    layer: 0,
                    data: None,
                    static_exe: false,
                    sha256: None,
                    // `install --root` writes into a tree; only `--check`
                    // of an image reports privileges.
                    file_caps: false,
                };
                if node.kind == Kind::File {
                    let exe = node.mode & 0o111 != 0 && depth == ScanDepth::Executables;
                    let listed = in_drift_manifest(&path, node.mode);
                    if wanted_content(&path) || exe || listed {
                        let mut buf = Vec::new();
                        let f = std::fs::File::open(entry.path())
                            .map_err(|e| Error::io(entry.path(), "reading", e))?;
                        f.take(MAX_EXE_READ)
                            .read_to_end(&mut buf)
                            .map_err(|e| Error::io(entry.path(), "reading", e))?;
                        node.sha256 = listed.then(|| sha256(&buf));
                        if exe && buf.starts_with(ELF_MAGIC) {
                            node.static_exe =
                                ElfInfo::parse(&buf).is_ok_and(|i| i.is_static_executable());
                        }
                        if wanted_content(&path) {
                            node.data = Some(Arc::new(buf));
                        }
                    }
                }
                fs.nodes.insert(path, node);
            }
        }
        Ok(fs)
    }

    fn insert(&mut self, path: String, node: Node) {
        // A non-directory replaces a whole lower directory tree.
        if node.kind != Kind::Dir {
            self.remove_tree(&path, node.layer);
        } else if let Some(old) = self.nodes.get(&path) {
            if old.kind != Kind::Dir {
                self.nodes.remove(&path);
            }
        }
        self.nodes.insert(path, node);
    }

    fn remove_tree(&mut self, path: &str, below_layer: usize) {
        if self.nodes.get(path).is_some_and(|n| n.layer < below_layer) {
            self.nodes.remove(path);
        }
        let prefix = format!("{path}/");
        let doomed: Vec<String> = self
            .nodes
            .range(prefix.clone()..)
            .take_while(|(k, _)| k.starts_with(&prefix))
            .filter(|(_, n)| n.layer < below_layer)
            .map(|(k, _)| k.clone())
            .collect();
        for k in doomed {
            self.nodes.remove(&k);
        }
    }

    /// The entry at `path` itself (symlinks not followed).
    pub fn get(&self, path: &str) -> Option<&Node> {
        self.nodes.get(&normalize(path))
    }

    /// Resolves `path` the way the kernel would inside the container:
    /// symlinks in every component, absolute targets from the image root.
    /// Returns the final path and its node.
    pub fn resolve(&self, path: &str) -> Option<(String, &Node)> {
        let mut pending: Vec<String> = normalize(path)
            .split('/')
            .rev()
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect();
        let mut cur = String::new();
        let mut hops = 0;
        while let Some(comp) = pending.pop() {
            if comp == ".." {
                cur = parent_of(&cur).to_string();
                continue;
            }
            let next = join(&cur, &comp);
            match self.nodes.get(&next) {
                Some(Node {
                    kind: Kind::Symlink(target),
                    ..
                }) => {
                    hops += 1;
                    if hops > 40 {
                        return None;
                    }
                    if target.starts_with('/') {
                        cur = String::new();
                    }
                    for c in target
                        .split('/')
                        .rev()
                        .filter(|s| !s.is_empty() && *s != ".")
                    {
                        pending.push(c.to_string());
                    }
                }
                Some(_) => cur = next,
                None => return None,
            }
        }
        let node = self.nodes.get(&cur)?;
        match &node.kind {
            Kind::Hardlink(t) => self.nodes.get(t).map(|n| (t.clone(), n)),
            _ => Some((cur, node)),
        }
    }

    /// Paths of every entry whose file name is `name`.
    pub fn find_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.nodes
            .keys()
            .filter(move |k| k.rsplit('/').next() == Some(name))
            .map(String::as_str)
    }

    pub fn paths(&self) -> impl Iterator<Item = (&str, &Node)> {
        self.nodes.iter().map(|(k, v)| (k.as_str(), v))
    }

    /// Executables the dynamic loader never runs (so no preload covers),
    /// with hard links listed under every name.
    pub fn static_executables(&self) -> Vec<String> {
        let mut set = BTreeSet::new();
        for (path, node) in &self.nodes {
            let is_static = match &node.kind {
                Kind::File => node.static_exe,
                Kind::Hardlink(t) => self.nodes.get(t).is_some_and(|n| n.static_exe),
                _ => false,
            };
            if is_static {
                set.insert(format!("/{path}"));
            }
        }
        set.into_iter().collect()
    }

    /// Files that run with more privileges than their caller (setuid,
    /// setgid, file capabilities), hard links under every name, sorted.
    pub fn privileged_files(&self) -> Vec<PrivilegedFile> {
        let mut out = Vec::new();
        for (path, node) in &self.nodes {
            let file = match &node.kind {
                Kind::File => node,
                Kind::Hardlink(t) => match self.nodes.get(t) {
                    Some(n) if n.kind == Kind::File => n,
                    _ => continue,
                },
                _ => continue,
            };
            let mut gains = Vec::new();
            // The setgid bit without group execute marks mandatory locking,
            // not a privilege.
            if file.mode & 0o4000 != 0 && file.mode & 0o111 != 0 {
                gains.push(format!("setuid uid {}", file.uid));
            }
            if file.mode & 0o2000 != 0 && file.mode & 0o010 != 0 {
                gains.push(format!("setgid gid {}", file.gid));
            }
            if file.file_caps {
                gains.push("file capabilities".to_string());
            }
            if !gains.is_empty() {
                out.push(PrivilegedFile {
                    path: format!("/{path}"),
                    gains: gains.join(", "),
                });
            }
        }
        out
    }

    /// The content of a regular file after resolving symlinks.
    pub fn read(&self, path: &str) -> Option<(String, Arc<Vec<u8>>)> {
        let (p, n) = self.resolve(path)?;
        n.data.clone().map(|d| (p, d))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn layer(entries: &[(&str, Option<&str>, Option<&str>)]) -> Vec<u8> {
        // (path, file content, symlink target); neither means a directory.
        let mut b = tar::Builder::new(Vec::new());
        for (path, content, link) in entries {
            let mut h = tar::Header::new_ustar();
            h.set_mode(0o755);
            match (content, link) {
                (Some(c), _) => {
                    h.set_entry_type(tar::EntryType::Regular);
                    h.set_size(c.len() as u64);
                    b.append_data(&mut h, path, c.as_bytes()).unwrap();
                }
                (None, Some(t)) => {
                    h.set_entry_type(tar::EntryType::Symlink);
                    h.set_size(0);
                    b.append_link(&mut h, path, t).unwrap();
                }
                (None, None) => {
                    h.set_entry_type(tar::EntryType::Directory);
                    h.set_size(0);
                    b.append_data(&mut h, path, &[][..]).unwrap();
                }
            }
        }
        b.into_inner().unwrap()
    }

    #[test]
    fn whiteouts_and_opaque_dirs_hide_lower_content() {
        let mut fs = RootFs::new();
        let l0 = layer(&[
            ("etc/", None, None),
            ("etc/ld.so.preload", Some("/lib/a.so\n"), None),
            ("opt/", None, None),
            ("opt/x", Some("x"), None),
            ("opt/y", Some("y"), None),
            ("usr/", None, None),
            ("usr/lib/", None, None),
            ("usr/lib/libc.so.6", Some("fake"), None),
            ("lib", None, Some("usr/lib")),
        ]);
        fs.apply_layer(0, &l0[..], ScanDepth::Loader, "t").unwrap();
        assert_eq!(&**fs.read("/lib/libc.so.6").unwrap().1, b"fake");
        assert_eq!(
            fs.resolve("/lib/../lib/libc.so.6").unwrap().0,
            "usr/lib/libc.so.6"
        );
        let l1 = layer(&[
            ("etc/.wh.ld.so.preload", Some(""), None),
            ("opt/.wh..wh..opq", Some(""), None),
            ("opt/z", Some("z"), None),
        ]);
        fs.apply_layer(1, &l1[..], ScanDepth::Loader, "t").unwrap();
        assert!(fs.get("etc/ld.so.preload").is_none());
        assert!(fs.get("opt/x").is_none() && fs.get("opt/y").is_none());
        assert!(fs.get("opt/z").is_some());
        let l2 = layer(&[
            ("etc/ld.so.preload", Some("/b.so\n"), None),
            ("usr/.wh.lib", Some(""), None),
        ]);
        fs.apply_layer(2, &l2[..], ScanDepth::Loader, "t").unwrap();
        assert_eq!(&**fs.read("etc/ld.so.preload").unwrap().1, b"/b.so\n");
        assert!(fs.resolve("lib/libc.so.6").is_none());
    }
}
