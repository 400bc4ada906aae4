//! The drift manifest of an image: every executable file and shared
//! library the container starts with (path, size, mtime, mode, SHA-256),
//! in the in-place lookup format of crate `ldguard-drift`, so the preload
//! library can tell a program of the image from one that was dropped,
//! copied or modified at run time.

use crate::inspect::rootfs::{Kind, RootFs};
use ldguard_drift::Entry;

/// The image path of the manifest inside the ldguard layer.
pub const MANIFEST_PATH: &str = "etc/ldguard/drift.manifest";

/// The manifest bytes for `rootfs` (reproducible: sorted, content-derived).
pub fn manifest(rootfs: &RootFs) -> Vec<u8> {
    let rows: Vec<(String, Entry)> = rootfs
        .paths()
        .filter_map(|(path, node)| {
            // A hard link shares its target's inode: same content and times.
            let file = match &node.kind {
                Kind::File => node,
                Kind::Hardlink(target) => rootfs.get(target)?,
                _ => return None,
            };
            Some((
                format!("/{path}"),
                Entry {
                    size: file.size,
                    mtime: file.mtime as i64,
                    mode: file.mode,
                    digest: ldguard_drift::digest_of(&file.sha256?),
                },
            ))
        })
        .collect();
    ldguard_drift::encode(rows.iter().map(|(p, e)| (p.as_bytes(), *e)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::inspect::rootfs::ScanDepth;

    #[test]
    fn lists_executables_libraries_and_hard_links_only() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("usr/bin")).unwrap();
        std::fs::create_dir_all(root.join("usr/lib")).unwrap();
        std::fs::create_dir_all(root.join("etc")).unwrap();
        let write = |p: &str, data: &[u8], mode: u32| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::write(root.join(p), data).unwrap();
            std::fs::set_permissions(root.join(p), std::fs::Permissions::from_mode(mode)).unwrap();
        };
        write("usr/bin/tool", b"#!/bin/sh\necho hi\n", 0o755);
        write("usr/lib/libx.so.1", b"\x7fELF not really", 0o644);
        write("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644);
        std::fs::hard_link(root.join("usr/bin/tool"), root.join("usr/bin/tool2")).unwrap();
        std::os::unix::fs::symlink("tool", root.join("usr/bin/link")).unwrap();
        let fs = RootFs::from_dir(root, ScanDepth::Loader).unwrap();
        let bytes = manifest(&fs);
        let m = ldguard_drift::Manifest::new(&bytes).unwrap();
        let tool = m.lookup(b"/usr/bin/tool").expect("executable listed");
        assert_eq!(tool.size, 18);
        use sha2::Digest as _;
        assert_eq!(
            tool.digest,
            ldguard_drift::digest_of(&sha2::Sha256::digest(b"#!/bin/sh\necho hi\n").into())
        );
        assert!(m.lookup(b"/usr/bin/tool2").is_some(), "hard link listed");
        assert!(
            m.lookup(b"/usr/lib/libx.so.1").is_some(),
            "library listed without x bit"
        );
        assert!(m.lookup(b"/etc/passwd").is_none(), "data file not listed");
        assert!(
            m.lookup(b"/usr/bin/link").is_none(),
            "symlinks resolve to their target"
        );
        assert_eq!(manifest(&fs), bytes, "reproducible");
    }
}
