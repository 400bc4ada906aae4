//! The ldguard layer: a tar of the library, /etc/ld.so.preload, the runtime
//! config and the baked policy, built so that the same inputs give the same
//! bytes (sorted entries, fixed times and owners, fixed gzip settings).

use crate::error::{Error, Result};
use crate::image::digest::{sha256_digest, HashingWriter};
use crate::inspect::libc::LibcKind;
use crate::inspect::rootfs::{Kind, RootFs};
use crate::payload::runtime_config::{CONFIG_PATH, LIBRARY_PATH, NET_LIBRARY_PATH, POLICY_PATH};
use flate2::{Compression, GzBuilder};
use oci_spec::image::Digest;
use std::collections::BTreeMap;
use std::io::Write;

/// Every file the layer creates gets this mtime; directories it shares with
/// the base keep the base's metadata.
pub const FIXED_MTIME: u64 = 0;

pub struct LayerInputs<'a> {
    pub rootfs: &'a RootFs,
    pub libc: LibcKind,
    pub library: &'a [u8],
    /// libldguard_net.so, the library's HTTPS client, when the library
    /// directory has one.
    pub net_library: Option<&'a [u8]>,
    pub runtime_config: &'a [u8],
    pub policy: Option<&'a [u8]>,
    /// Extra world-writable directory (the events sink's), e.g. var/log/ldguard.
    pub events_dir: Option<String>,
}

pub struct BuiltLayer {
    pub gzip: Vec<u8>,
    pub digest: Digest,
    pub diff_id: Digest,
    pub uncompressed_size: u64,
}

enum Content<'a> {
    Dir,
    File(&'a [u8]),
    Owned(Vec<u8>),
}

struct Item<'a> {
    mode: u32,
    content: Content<'a>,
}

/// The new /etc/ld.so.preload: the library first (so its hooks are the
/// first definitions the loader finds), then every line the base had, minus
/// an earlier ldguard entry.
pub fn preload_file(base: Option<&[u8]>) -> Vec<u8> {
    let mut out = format!("/{LIBRARY_PATH}\n").into_bytes();
    if let Some(b) = base {
        for line in String::from_utf8_lossy(b).lines() {
            let t = line.trim();
            if t.is_empty() || t == format!("/{LIBRARY_PATH}") {
                continue;
            }
            out.extend_from_slice(line.as_bytes());
            out.push(b'\n');
        }
    }
    out
}

/// Files the layer will hold, keyed by image path, before parents are added.
fn items<'a>(inp: &'a LayerInputs<'a>) -> Result<BTreeMap<String, Item<'a>>> {
    let mut m = BTreeMap::new();
    m.insert(
        LIBRARY_PATH.to_string(),
        Item {
            mode: 0o755,
            content: Content::File(inp.library),
        },
    );
    if let Some(net) = inp.net_library {
        m.insert(
            NET_LIBRARY_PATH.to_string(),
            Item {
                mode: 0o755,
                content: Content::File(net),
            },
        );
    }
    m.insert(
        CONFIG_PATH.to_string(),
        Item {
            mode: 0o644,
            content: Content::File(inp.runtime_config),
        },
    );
    m.insert(
        "etc/ldguard".to_string(),
        Item {
            mode: 0o755,
            content: Content::Dir,
        },
    );
    m.insert(
        "usr/lib/ldguard".to_string(),
        Item {
            mode: 0o755,
            content: Content::Dir,
        },
    );
    m.insert(
        crate::payload::drift::MANIFEST_PATH.to_string(),
        Item {
            mode: 0o644,
            content: Content::Owned(crate::payload::drift::manifest(inp.rootfs)),
        },
    );
    if let Some(p) = inp.policy {
        m.insert(
            POLICY_PATH.to_string(),
            Item {
                mode: 0o644,
                content: Content::File(p),
            },
        );
        if let Some(table) = crate::payload::baked_table::encode(p) {
            m.insert(
                format!("{POLICY_PATH}{}", crate::payload::baked_table::SUFFIX),
                Item {
                    mode: 0o644,
                    content: Content::Owned(table),
                },
            );
        }
    }
    if inp.libc == LibcKind::Glibc {
        let base = inp.rootfs.resolve("etc/ld.so.preload");
        let base_bytes = match base {
            Some((p, n)) if n.kind == Kind::File => {
                let data = n
                    .data
                    .as_ref()
                    .ok_or_else(|| Error::invalid(format!("/{p}"), "content was not read"))?;
                Some(data.as_slice())
            }
            _ => None,
        };
        m.insert(
            "etc/ld.so.preload".to_string(),
            Item {
                mode: 0o644,
                content: Content::Owned(preload_file(base_bytes)),
            },
        );
    }
    if let Some(d) = &inp.events_dir {
        if inp.rootfs.resolve(d).is_none() {
            m.insert(
                d.clone(),
                Item {
                    mode: 0o1777,
                    content: Content::Dir,
                },
            );
        }
    }
    Ok(m)
}

pub fn build(inp: &LayerInputs<'_>) -> Result<BuiltLayer> {
    let items = items(inp)?;
    // Parents: a directory the base has keeps its metadata; a symlinked
    // parent would be replaced by a directory entry and break the base, so
    // such a layout is refused.
    let mut entries: BTreeMap<String, (tar::Header, Option<Vec<u8>>)> = BTreeMap::new();
    for (path, item) in &items {
        let mut parent = path.as_str();
        while let Some((p, _)) = parent.rsplit_once('/') {
            parent = p;
            if entries.contains_key(parent) || items.contains_key(parent) {
                continue;
            }
            let h = match inp.rootfs.get(parent) {
                Some(n) if n.kind == Kind::Dir => header(tar::EntryType::Directory, n.mode, n.uid, n.gid, n.mtime, 0),
                Some(_) => {
                    return Err(Error::refused(
                        "the image",
                        format!("/{parent} is not a plain directory (a symlink?), so /{path} cannot be added without replacing it"),
                    ))
                }
                None => header(tar::EntryType::Directory, 0o755, 0, 0, FIXED_MTIME, 0),
            };
            entries.insert(parent.to_string(), (h, None));
        }
        if let Some(n) = inp.rootfs.get(path) {
            // A file may replace a file or a symlink; a directory must stay
            // a directory, and nothing may replace one.
            let clash = match item.content {
                Content::Dir => n.kind != Kind::Dir,
                _ => n.kind == Kind::Dir,
            };
            if clash {
                return Err(Error::refused(
                    "the image",
                    format!("/{path} exists in the image as a {}, which the ldguard layer would have to replace", match n.kind { Kind::Dir => "directory", Kind::Symlink(_) => "symlink", _ => "special file" }),
                ));
            }
        }
        let (h, data) = match &item.content {
            Content::Dir => (
                header(tar::EntryType::Directory, item.mode, 0, 0, FIXED_MTIME, 0),
                None,
            ),
            Content::File(b) => (
                header(
                    tar::EntryType::Regular,
                    item.mode,
                    0,
                    0,
                    FIXED_MTIME,
                    b.len() as u64,
                ),
                Some(b.to_vec()),
            ),
            Content::Owned(b) => (
                header(
                    tar::EntryType::Regular,
                    item.mode,
                    0,
                    0,
                    FIXED_MTIME,
                    b.len() as u64,
                ),
                Some(b.clone()),
            ),
        };
        entries.insert(path.clone(), (h, data));
    }

    // Gzip header: no name, mtime 0, OS "unknown"; level fixed. Level 10 is
    // miniz_oxide's (flate2's default backend) most thorough match search:
    // the layer goes into every image and is pulled with it, and 10 makes
    // it ~5.4 KB smaller than 6 (BENCHMARKS.md section 23) for a fraction
    // of a second per build. miniz_oxide has no CPU-dependent code paths,
    // so the bytes stay the same on every machine (zlib-rs, flate2's other
    // Rust backend, chooses its hash function by CPU).
    let gz = GzBuilder::new()
        .mtime(0)
        .operating_system(255)
        .write(Vec::new(), Compression::new(10));
    let mut hashed = HashingWriter::new(gz);
    {
        let mut b = tar::Builder::new(&mut hashed);
        b.mode(tar::HeaderMode::Deterministic);
        for (path, (mut h, data)) in entries {
            let name = if h.entry_type().is_dir() {
                format!("{path}/")
            } else {
                path
            };
            let data = data.unwrap_or_default();
            b.append_data(&mut h, name, &data[..])
                .map_err(|e| Error::io("ldguard layer", "writing", e))?;
        }
        b.finish()
            .map_err(|e| Error::io("ldguard layer", "writing", e))?;
    }
    let (gz, diff_id, uncompressed_size) = hashed.finish();
    let gzip = gz
        .finish()
        .map_err(|e| Error::io("ldguard layer", "compressing", e))?;
    let digest = sha256_digest(&gzip);
    Ok(BuiltLayer {
        gzip,
        digest,
        diff_id,
        uncompressed_size,
    })
}

fn header(t: tar::EntryType, mode: u32, uid: u64, gid: u64, mtime: u64, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(t);
    h.set_mode(mode);
    h.set_uid(uid);
    h.set_gid(gid);
    h.set_mtime(mtime);
    h.set_size(size);
    h
}

/// Writes the same files into a directory tree (for `install`), returning
/// the paths written. Files are written to a temporary name and renamed, and
/// /etc/ld.so.preload last, so an interrupted install never leaves a preload
/// entry pointing at a missing or partial library.
pub fn install_into(
    root: &std::path::Path,
    inp: &LayerInputs<'_>,
    before_preload: impl FnOnce(&[String]) -> Result<()>,
) -> Result<Vec<String>> {
    use std::os::unix::fs::PermissionsExt;
    let items = items(inp)?;
    let mut written = Vec::new();
    let (preload, rest): (Vec<_>, Vec<_>) = items
        .iter()
        .partition(|(p, _)| p.as_str() == "etc/ld.so.preload");
    let mut before = Some(before_preload);
    for (path, item) in rest.into_iter().chain(preload) {
        if path == "etc/ld.so.preload" {
            if let Some(check) = before.take() {
                check(&written)?;
            }
        }
        let full = root.join(path);
        match &item.content {
            Content::Dir => {
                std::fs::create_dir_all(&full)
                    .map_err(|e| Error::io(&full, "creating the directory", e))?;
                std::fs::set_permissions(&full, std::fs::Permissions::from_mode(item.mode))
                    .map_err(|e| Error::io(&full, "chmod", e))?;
            }
            Content::File(_) | Content::Owned(_) => {
                let data: &[u8] = match &item.content {
                    Content::File(b) => b,
                    Content::Owned(b) => b,
                    Content::Dir => unreachable!(),
                };
                let dir = full.parent().expect("image paths have a parent");
                std::fs::create_dir_all(dir)
                    .map_err(|e| Error::io(dir, "creating the directory", e))?;
                let mut tmp = tempfile::NamedTempFile::new_in(dir)
                    .map_err(|e| Error::io(dir, "creating a temporary file", e))?;
                tmp.write_all(data)
                    .map_err(|e| Error::io(tmp.path(), "writing", e))?;
                tmp.as_file()
                    .set_permissions(std::fs::Permissions::from_mode(item.mode))
                    .map_err(|e| Error::io(tmp.path(), "chmod", e))?;
                tmp.persist(&full)
                    .map_err(|e| Error::io(&full, "renaming into place", e.error))?;
            }
        }
        written.push(format!("/{path}"));
    }
    if let Some(check) = before.take() {
        check(&written)?;
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn preload_keeps_base_lines_and_drops_an_old_entry() {
        let out = preload_file(Some(b"/usr/lib/ldguard/libldguard.so\n/opt/other.so\n\n"));
        assert_eq!(out, b"/usr/lib/ldguard/libldguard.so\n/opt/other.so\n");
        assert_eq!(preload_file(None), b"/usr/lib/ldguard/libldguard.so\n");
    }

    #[test]
    fn same_inputs_same_digest_and_sorted_entries() {
        let fs = RootFs::new();
        let inp = LayerInputs {
            rootfs: &fs,
            libc: LibcKind::Glibc,
            library: b"\x7fELF fake",
            net_library: Some(b"\x7fELF net"),
            runtime_config: b"{}",
            policy: Some(b"{\"apiVersion\":\"ldguard.policy/v1\"}"),
            events_dir: Some("var/log/ldguard".into()),
        };
        let a = build(&inp).unwrap();
        let b = build(&inp).unwrap();
        assert_eq!(a.digest, b.digest);
        assert_eq!(a.gzip, b.gzip);
        let mut ar = tar::Archive::new(flate2::read::GzDecoder::new(&a.gzip[..]));
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| {
                let e = e.unwrap();
                assert_eq!(
                    (e.header().uid().unwrap(), e.header().mtime().unwrap()),
                    (0, 0)
                );
                e.path().unwrap().to_string_lossy().into_owned()
            })
            .collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert!(names.contains(&"etc/ld.so.preload".to_string()));
        assert!(names.contains(&"usr/lib/ldguard/libldguard_net.so".to_string()));
        assert!(names.contains(&"var/log/ldguard/".to_string()));
        let musl = LayerInputs {
            libc: LibcKind::Musl,
            ..inp
        };
        let m = build(&musl).unwrap();
        assert_ne!(m.digest, a.digest);
    }

    fn rootfs_with_links(links: &[(&str, &str)]) -> RootFs {
        let mut b = tar::Builder::new(Vec::new());
        for d in ["etc/", "usr/", "opt/", "opt/lib/"] {
            let mut h = header(tar::EntryType::Directory, 0o755, 0, 0, 0, 0);
            b.append_data(&mut h, d, &[][..]).unwrap();
        }
        for (p, t) in links {
            let mut h = header(tar::EntryType::Symlink, 0o777, 0, 0, 0, 0);
            b.append_link(&mut h, p, t).unwrap();
        }
        let data = b.into_inner().unwrap();
        let mut fs = RootFs::new();
        fs.apply_layer(0, &data[..], crate::inspect::rootfs::ScanDepth::Loader, "t")
            .unwrap();
        fs
    }

    #[test]
    fn symlinked_parents_are_refused_but_symlinked_files_replaced() {
        let inputs = |fs| LayerInputs {
            rootfs: fs,
            libc: LibcKind::Glibc,
            library: b"lib",
            net_library: None,
            runtime_config: b"{}",
            policy: None,
            events_dir: None,
        };
        let fs = rootfs_with_links(&[("usr/lib", "../opt/lib")]);
        let e = build(&inputs(&fs)).err().unwrap().to_string();
        assert!(e.contains("/usr/lib is not a plain directory"), "{e}");
        let fs = rootfs_with_links(&[("etc/ld.so.preload", "/opt/preload")]);
        assert!(build(&inputs(&fs)).is_ok());
    }
}
