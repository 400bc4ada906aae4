//! Which C library an image's programs load, read from the image's own
//! files: glibc's libc.so.6 (its version from the GLIBC_x.y versions it
//! defines) or musl's ld-musl-ARCH.so.1.

use crate::inspect::elf::{ElfInfo, Version};
use crate::inspect::rootfs::RootFs;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum LibcKind {
    Glibc,
    Musl,
}

impl LibcKind {
    /// The `<libc>` part of a library directory name.
    pub fn dir_name(self) -> &'static str {
        match self {
            LibcKind::Glibc => "gnu",
            LibcKind::Musl => "musl",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Libc {
    pub kind: LibcKind,
    /// glibc's version; musl does not record one in its files.
    pub version: Option<Version>,
    /// From the ELF header of the libc itself.
    pub arch: Option<&'static str>,
    pub machine: u16,
    pub is_64: bool,
    /// Where it was found, e.g. `/usr/lib/x86_64-linux-gnu/libc.so.6`.
    pub path: String,
}

/// Directories the glibc loader searches without ld.so.conf help, plus the
/// multiarch ones Debian and Ubuntu use.
pub fn library_dirs(rootfs: &RootFs, arch: Option<&str>) -> Vec<String> {
    let mut dirs = vec![
        "lib".to_string(),
        "usr/lib".to_string(),
        "lib64".to_string(),
        "usr/lib64".to_string(),
        "usr/local/lib".to_string(),
    ];
    if let Some(a) = arch {
        let triplet = match a {
            "i686" => "i386-linux-gnu".to_string(),
            "arm" => "arm-linux-gnueabihf".to_string(),
            a => format!("{a}-linux-gnu"),
        };
        dirs.insert(0, format!("usr/lib/{triplet}"));
        dirs.insert(0, format!("lib/{triplet}"));
    }
    dirs.retain(|d| rootfs.resolve(d).is_some());
    dirs
}

/// Finds the image's libc for the architecture the config names (`want`,
/// e.g. "x86_64"); None when the image has no C library (static or
/// distroless images). With several libcs (multiarch), the one for `want`.
pub fn detect(rootfs: &RootFs, want: Option<&str>) -> Option<Libc> {
    let mut found: Vec<Libc> = Vec::new();
    for path in rootfs
        .find_named("libc.so.6")
        .map(str::to_string)
        .collect::<Vec<_>>()
    {
        if let Some(l) = glibc_at(rootfs, &path) {
            found.push(l);
        }
    }
    let musl: Vec<String> = rootfs
        .paths()
        .filter(|(p, _)| {
            let base = p.rsplit('/').next().unwrap_or(p);
            base.starts_with("ld-musl-") && base.ends_with(".so.1")
        })
        .map(|(p, _)| p.to_string())
        .collect();
    for path in musl {
        if let Some((real, data)) = rootfs.read(&path) {
            if let Ok(info) = ElfInfo::parse(&data) {
                found.push(Libc {
                    kind: LibcKind::Musl,
                    version: None,
                    arch: info.arch(),
                    machine: info.machine,
                    is_64: info.is_64,
                    path: format!("/{real}"),
                });
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found.dedup_by(|a, b| a.path == b.path);
    match want {
        Some(w) => found.into_iter().find(|l| l.arch == Some(w)),
        None => found.into_iter().next(),
    }
}

fn glibc_at(rootfs: &RootFs, path: &str) -> Option<Libc> {
    let (real, data) = rootfs.read(path)?;
    let info = ElfInfo::parse(&data).ok()?;
    // Before glibc 2.34 libc.so.6 links to libc-2.NN.so, whose name also
    // says the version; the version definitions are the primary source.
    let version = info.glibc_defined.clone().or_else(|| {
        let base = real.rsplit('/').next()?;
        Version::parse(base.strip_prefix("libc-")?.strip_suffix(".so")?)
    });
    Some(Libc {
        kind: LibcKind::Glibc,
        version,
        arch: info.arch(),
        machine: info.machine,
        is_64: info.is_64,
        path: format!("/{real}"),
    })
}
