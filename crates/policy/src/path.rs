//! Lexical path normalisation: the form in which the hooks hand paths to
//! [`crate::RuleTable::decide`].
//!
//! Normalisation is purely lexical (`a/link/..` becomes `a`, as `realpath`
//! would only say if `link` is not a symlink); the hooks pass the symlink
//! resolved target separately as [`crate::Request::resolved_path`] so that a
//! deny cannot be sidestepped through a link.

/// Makes `path` absolute against `base` (the cwd, or the directory of a
/// dirfd; ignored when `path` is absolute) and normalises it into `out`:
/// `.` and empty segments vanish, `..` removes the previous segment but never
/// climbs above `/`, and no trailing `/` remains (except for `/` itself).
///
/// Returns the length written, or `None` when the result does not fit in
/// `out`. Allocates nothing, so the hooks can call it with a stack buffer.
pub fn normalize_into(base: &[u8], path: &[u8], out: &mut [u8]) -> Option<usize> {
    let mut len = 0usize;
    let mut push = |seg: &[u8], len: &mut usize| -> Option<()> {
        match seg {
            b"" | b"." => {}
            b".." => {
                // Drop the last segment: back up to the previous '/'.
                while *len > 0 {
                    *len -= 1;
                    if out[*len] == b'/' {
                        break;
                    }
                }
            }
            _ => {
                let end = len.checked_add(1 + seg.len())?;
                if end > out.len() {
                    return None;
                }
                out[*len] = b'/';
                out[*len + 1..end].copy_from_slice(seg);
                *len = end;
            }
        }
        Some(())
    };
    if path.first() != Some(&b'/') {
        for seg in base.split(|&b| b == b'/') {
            push(seg, &mut len)?;
        }
    }
    for seg in path.split(|&b| b == b'/') {
        push(seg, &mut len)?;
    }
    if len == 0 {
        *out.first_mut()? = b'/';
        len = 1;
    }
    Some(len)
}

/// Allocating form of [`normalize_into`], for the CLI and tests.
pub fn normalize(base: &[u8], path: &[u8]) -> Vec<u8> {
    // Normalisation never produces more than base + path + 2 bytes.
    let mut out = vec![0u8; base.len() + path.len() + 2];
    let len = normalize_into(base, path, &mut out).expect("buffer sized for the worst case");
    out.truncate(len);
    out
}

/// Whether `path` is already absolute and in normal form (what
/// [`normalize`] would return unchanged).
pub fn is_normal(path: &[u8]) -> bool {
    if path == b"/" {
        return true;
    }
    path.first() == Some(&b'/')
        && path[1..]
            .split(|&b| b == b'/')
            .all(|seg| !matches!(seg, b"" | b"." | b".."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(base: &str, path: &str) -> String {
        String::from_utf8(normalize(base.as_bytes(), path.as_bytes())).unwrap()
    }

    #[test]
    fn absolute_paths_ignore_the_base() {
        assert_eq!(n("/home/u", "/etc/passwd"), "/etc/passwd");
        assert_eq!(n("", "/"), "/");
    }

    #[test]
    fn relative_paths_join_the_base() {
        assert_eq!(n("/home/u", "notes.txt"), "/home/u/notes.txt");
        assert_eq!(n("/", "etc/passwd"), "/etc/passwd");
        assert_eq!(n("/home/u/", "./a/./b"), "/home/u/a/b");
        assert_eq!(n("/home/u", ""), "/home/u");
        assert_eq!(n("/home/u", "."), "/home/u");
    }

    #[test]
    fn dot_dot_never_climbs_above_root() {
        assert_eq!(n("/home/u", "../../../../etc/shadow"), "/etc/shadow");
        assert_eq!(n("/", ".."), "/");
        assert_eq!(n("/a/b", "../c/../../d"), "/d");
        assert_eq!(n("/", "/usr/bin/../../etc/./passwd"), "/etc/passwd");
        assert_eq!(n("/a", "b/.."), "/a");
        assert_eq!(n("/a", ".."), "/");
    }

    #[test]
    fn repeated_and_trailing_slashes_collapse() {
        assert_eq!(n("/", "//etc///passwd//"), "/etc/passwd");
        assert_eq!(n("//home//u//", "x/"), "/home/u/x");
        assert_eq!(n("/", "///"), "/");
    }

    #[test]
    fn dotted_names_are_not_special() {
        assert_eq!(n("/", "/a/.../b"), "/a/.../b");
        assert_eq!(n("/", "/a/..b/.c"), "/a/..b/.c");
    }

    #[test]
    fn non_utf8_bytes_pass_through() {
        let out = normalize(b"/tmp", b"\xff\xfe/../x\x80");
        assert_eq!(out, b"/tmp/x\x80");
    }

    #[test]
    fn reports_overflow_instead_of_truncating() {
        let mut buf = [0u8; 8];
        assert_eq!(normalize_into(b"/", b"/etc/passwd", &mut buf), None);
        assert_eq!(normalize_into(b"/", b"/etc/pa", &mut buf), Some(7));
        assert_eq!(&buf[..7], b"/etc/pa");
        let mut empty = [0u8; 0];
        assert_eq!(normalize_into(b"/", b"/", &mut empty), None);
        // A long intermediate that shrinks again still needs room for the
        // intermediate: reported as not fitting, never written out of bounds.
        let mut small = [0u8; 4];
        assert_eq!(normalize_into(b"/", b"/abcdefgh/..", &mut small), None);
    }

    #[test]
    fn is_normal_agrees_with_normalize() {
        for p in ["/", "/etc", "/etc/passwd", "/a/.../b"] {
            assert!(is_normal(p.as_bytes()), "{p}");
            assert_eq!(n("/", p), p);
        }
        for p in ["", "etc", "/etc/", "//etc", "/a/./b", "/a/../b"] {
            assert!(!is_normal(p.as_bytes()), "{p}");
        }
    }
}
