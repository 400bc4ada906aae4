//! What a new file system shows that already has a name: an overlay's
//! layers (its lower layers read through it, its upper layer also
//! written), a block device or file system image as the source, and the
//! kernel's own file systems (`proc`, `sysfs`, …), the same in every mount. A
//! bind or a moved mount is `file::check_tree_mount`'s.

use super::borrowed::{check_every_file, check_file, check_tree_as, Follow};
use crate::decide::check::{Turns, Verdict};
use crate::os::sys::{self, cstr};
use ldguard_policy::{Access, Call};
use libc::{c_char, c_int, c_uint, c_ulong, c_void};

/// Longest mount data the kernel copies (one page).
const MOUNT_DATA_MAX: usize = 4096;

/// `mount(src, _, fstype, flags, data)` of a new file system (no bind,
/// move, remount or propagation change, where the kernel ignores `src`):
/// its source, then an overlay's layers.
pub fn check_new_filesystem(
    src: *const c_char,
    fstype: *const c_char,
    flags: c_ulong,
    data: *const c_void,
) -> Verdict {
    const NOT_NEW: c_ulong = libc::MS_REMOUNT
        | libc::MS_BIND
        | libc::MS_MOVE
        | libc::MS_SHARED
        | libc::MS_PRIVATE
        | libc::MS_SLAVE
        | libc::MS_UNBINDABLE;
    if flags & NOT_NEW != 0 {
        return Verdict::Allow;
    }
    let turns = Turns::start();
    let v = check_source(libc::AT_FDCWD, src);
    if turns.end_at(v) {
        return v;
    }
    // SAFETY: libc callers pass a NUL-terminated type name (or null).
    let fstype = unsafe { cstr(fstype) };
    let v = check_shared_filesystem(fstype);
    if turns.end_at(v) || fstype != Some(b"overlay") || data.is_null() {
        return v;
    }
    // SAFETY: an overlay's data is its NUL-terminated option string; the
    // kernel reads at most a page of it, and so does this.
    let options = unsafe { bounded_cstr(data.cast(), MOUNT_DATA_MAX) };
    let mut v = Verdict::Allow;
    for_each_option(options, |key, value| {
        if let Some((layer, kind)) = Layer::of_key(key) {
            v = check_layers(layer, kind, value);
        }
        !turns.end_at(v)
    });
    v
}

/// `fsconfig(fd, cmd, key, value, aux)`: a source or an overlay layer
/// given by string, path (`aux` its directory descriptor) or descriptor
/// (`aux`).
pub fn check_fsconfig(
    cmd: c_uint,
    key: *const c_char,
    value: *const c_void,
    aux: c_int,
) -> Verdict {
    const SET_STRING: c_uint = 1;
    const SET_PATH: c_uint = 3;
    const SET_PATH_EMPTY: c_uint = 4;
    const SET_FD: c_uint = 5;
    // SAFETY: the kernel reads `key` as a NUL-terminated string (or null).
    let Some(key) = (unsafe { cstr(key) }) else {
        return Verdict::Allow;
    };
    let is_source = key == b"source";
    let layer = Layer::of_key(key);
    if !is_source && layer.is_none() {
        return Verdict::Allow;
    }
    let mut fd_path = [0u8; 32];
    let (dirfd, path): (c_int, *const c_char) = match cmd {
        SET_STRING => {
            if let Some((layer, kind @ (Value::List | Value::Escaped))) = layer {
                // SAFETY: a string value is NUL-terminated (the kernel
                // copies it as one).
                let value = unsafe { cstr(value.cast()) }.unwrap_or(b"");
                return check_layers(layer, kind, value);
            }
            (libc::AT_FDCWD, value.cast())
        }
        SET_PATH => (aux, value.cast()),
        // SAFETY: as for a string.
        SET_PATH_EMPTY if unsafe { cstr(value.cast()) }.is_some_and(|p| !p.is_empty()) => {
            (aux, value.cast())
        }
        SET_PATH_EMPTY | SET_FD => {
            sys::proc_fd_path(aux, &mut fd_path);
            (libc::AT_FDCWD, fd_path.as_ptr().cast())
        }
        _ => return Verdict::Allow,
    };
    match layer {
        Some((layer, _)) => check_tree_as(Call::Mount, dirfd, path, layer.accesses()),
        None => check_source(dirfd, path),
    }
}

/// `fsopen(fstype)`: a new instance of a file system whose files are
/// already named elsewhere ([`check_shared_filesystem`]).
pub fn check_fsopen(fstype: *const c_char) -> Verdict {
    // SAFETY: the kernel reads the name as a NUL-terminated string (or null).
    check_shared_filesystem(unsafe { cstr(fstype) })
}

/// The kernel's own file systems show the same files in every instance
/// (`proc`'s `sys/`, `cmdline` and `kallsyms`; all of `sysfs`; `devtmpfs`'s
/// device nodes): a new mount of one is a second name for the tree where
/// it is found in every container, decided as a read and a write of that
/// tree. (`unshare -rmn sh -c 'mount -t sysfs sysfs x; cat x/…'` read
/// what a `/sys/**` rule denied.)
fn check_shared_filesystem(fstype: Option<&[u8]>) -> Verdict {
    let tree: &std::ffi::CStr = match fstype.unwrap_or(b"") {
        b"proc" => c"/proc",
        b"sysfs" => c"/sys",
        b"devtmpfs" => c"/dev",
        b"devpts" => c"/dev/pts",
        b"mqueue" => c"/dev/mqueue",
        b"cgroup" | b"cgroup2" => c"/sys/fs/cgroup",
        b"bpf" => c"/sys/fs/bpf",
        b"pstore" => c"/sys/fs/pstore",
        b"fusectl" => c"/sys/fs/fuse/connections",
        b"debugfs" => c"/sys/kernel/debug",
        b"tracefs" => c"/sys/kernel/tracing",
        b"securityfs" => c"/sys/kernel/security",
        b"configfs" => c"/sys/kernel/config",
        b"efivarfs" => c"/sys/firmware/efi/efivars",
        b"binfmt_misc" => c"/proc/sys/fs/binfmt_misc",
        _ => return Verdict::Allow,
    };
    check_tree_as(
        Call::Mount,
        libc::AT_FDCWD,
        tree.as_ptr(),
        &[Access::Read, Access::Write],
    )
}

/// A block device's file system may hold any file a rule names (the
/// container's own root lies on one): mounting it is decided as a second
/// name for every file. A file system image
/// (a regular file as the source: erofs, squashfs) is read.
fn check_source(dirfd: c_int, src: *const c_char) -> Verdict {
    if src.is_null() {
        return Verdict::Allow;
    }
    let Ok(st) = sys::fstatat(dirfd, src, 0) else {
        // Names nothing (`none`, `tmpfs`, a host name): the source is a label.
        return Verdict::Allow;
    };
    match st.st_mode & libc::S_IFMT {
        libc::S_IFBLK => check_every_file(Call::Mount),
        libc::S_IFREG => check_file(Call::Mount, dirfd, src, Access::Read, Follow::Yes),
        _ => Verdict::Allow,
    }
}

/// What the overlay does to a layer.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Layer {
    /// Read through the overlay (copy-up writes go to the upper layer).
    Lower,
    /// Read and written through it.
    Upper,
    /// The kernel's scratch space for the upper layer: written.
    Work,
}

/// How the overlay reads a layer option's value.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Value {
    /// `:`-separated paths (`::` before data-only layers), `\` escaping.
    List,
    /// One path, `\` escaping.
    Escaped,
    /// One path, as is (`lowerdir+`, `datadir+`).
    Verbatim,
}

impl Layer {
    fn of_key(key: &[u8]) -> Option<(Layer, Value)> {
        Some(match key {
            b"lowerdir" => (Layer::Lower, Value::List),
            b"lowerdir+" | b"datadir+" => (Layer::Lower, Value::Verbatim),
            b"upperdir" => (Layer::Upper, Value::Escaped),
            b"workdir" => (Layer::Work, Value::Escaped),
            _ => return None,
        })
    }

    fn accesses(self) -> &'static [Access] {
        match self {
            Layer::Lower => &[Access::Read],
            Layer::Upper => &[Access::Read, Access::Write],
            Layer::Work => &[Access::Write],
        }
    }
}

/// Each path `value` names (read as `kind`), decided as `layer`.
fn check_layers(layer: Layer, kind: Value, value: &[u8]) -> Verdict {
    let turns = Turns::start();
    let mut v = Verdict::Allow;
    for_each_layer_path(kind, value, |path| {
        // A path the kernel cannot take (too long) fails the mount by itself.
        let mut buf = [0u8; libc::PATH_MAX as usize + 1];
        let Some(len) = unescape_into(path, kind, &mut buf) else {
            return true;
        };
        buf[len] = 0;
        v = check_tree_as(
            Call::Mount,
            libc::AT_FDCWD,
            buf.as_ptr().cast(),
            layer.accesses(),
        );
        !turns.end_at(v)
    });
    v
}

/// Calls `each(key, value)` for every option of overlay mount data, split
/// as the overlay splits it: at commas a backslash does not escape.
/// Stops when `each` returns false.
fn for_each_option(options: &[u8], mut each: impl FnMut(&[u8], &[u8]) -> bool) {
    for option in split_unescaped(options, b',') {
        let (key, value) = match option.iter().position(|&b| b == b'=') {
            Some(at) => (&option[..at], &option[at + 1..]),
            None => (option, &b""[..]),
        };
        if !each(key, value) {
            return;
        }
    }
}

/// Calls `each` with every (still escaped) path a `value` read as `kind`
/// names; stops when it returns false.
fn for_each_layer_path(kind: Value, value: &[u8], mut each: impl FnMut(&[u8]) -> bool) {
    if kind != Value::List {
        each(value);
        return;
    }
    for path in split_unescaped(value, b':').filter(|p| !p.is_empty()) {
        if !each(path) {
            return;
        }
    }
}

/// `bytes` split at each `sep` not escaped by a backslash (which escapes
/// the byte after it, as the overlay's option parser reads it).
fn split_unescaped(bytes: &[u8], sep: u8) -> impl Iterator<Item = &[u8]> {
    let mut rest = Some(bytes);
    std::iter::from_fn(move || {
        let s = rest?;
        let mut i = 0;
        while i < s.len() {
            match s[i] {
                b'\\' => i += 2,
                b if b == sep => {
                    rest = Some(&s[i + 1..]);
                    return Some(&s[..i]);
                }
                _ => i += 1,
            }
        }
        rest = None;
        Some(s)
    })
}

/// Copies `path` into `out` (leaving room for a NUL), dropping each escaping
/// backslash unless the value is read as is; `None` when it does not fit.
fn unescape_into(path: &[u8], kind: Value, out: &mut [u8]) -> Option<usize> {
    let verbatim = kind == Value::Verbatim;
    let mut len = 0;
    let mut bytes = path.iter();
    while let Some(&b) = bytes.next() {
        let b = if b == b'\\' && !verbatim {
            match bytes.next() {
                Some(&next) => next,
                None => break,
            }
        } else {
            b
        };
        if len + 1 >= out.len() {
            return None;
        }
        out[len] = b;
        len += 1;
    }
    Some(len)
}

/// The bytes before the first NUL among the `max` at `p`.
///
/// # Safety
/// `p` must be readable up to its first NUL or for `max` bytes.
unsafe fn bounded_cstr<'a>(p: *const u8, max: usize) -> &'a [u8] {
    let mut len = 0;
    // SAFETY: readable up to the first NUL or `max` bytes (the contract).
    while len < max && unsafe { *p.add(len) } != 0 {
        len += 1;
    }
    // SAFETY: the `len` bytes just read.
    unsafe { std::slice::from_raw_parts(p, len) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(data: &[u8]) -> Vec<(Vec<u8>, Layer, Vec<u8>)> {
        let mut found = Vec::new();
        for_each_option(data, |key, value| {
            if let Some((layer, kind)) = Layer::of_key(key) {
                for_each_layer_path(kind, value, |path| {
                    let mut buf = [0u8; 64];
                    let len = unescape_into(path, kind, &mut buf).unwrap();
                    found.push((key.to_vec(), layer, buf[..len].to_vec()));
                    true
                });
            }
            true
        });
        found
    }

    #[test]
    fn layers_are_split_and_unescaped_as_the_overlay_reads_them() {
        let got = options(b"lowerdir=/a\\:b:/c::/data,upperdir=/u\\,v,workdir=/w,metacopy=on");
        let want: Vec<(Vec<u8>, Layer, Vec<u8>)> = vec![
            (b"lowerdir".to_vec(), Layer::Lower, b"/a:b".to_vec()),
            (b"lowerdir".to_vec(), Layer::Lower, b"/c".to_vec()),
            (b"lowerdir".to_vec(), Layer::Lower, b"/data".to_vec()),
            (b"upperdir".to_vec(), Layer::Upper, b"/u,v".to_vec()),
            (b"workdir".to_vec(), Layer::Work, b"/w".to_vec()),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn an_escaped_comma_does_not_end_the_option() {
        // Split at the comma, the lower layer would read "/x\" and the
        // upper layer would be missed.
        let got = options(b"lowerdir=/x\\,upperdir=/s,upperdir=/t");
        assert_eq!(got[0].2, b"/x,upperdir=/s".to_vec());
        assert_eq!(got[1], (b"upperdir".to_vec(), Layer::Upper, b"/t".to_vec()));
    }

    #[test]
    fn added_layers_are_taken_as_given() {
        let mut buf = [0u8; 16];
        let len = unescape_into(b"/a\\b", Value::Verbatim, &mut buf).unwrap();
        assert_eq!(&buf[..len], b"/a\\b");
        assert_eq!(
            Layer::of_key(b"datadir+"),
            Some((Layer::Lower, Value::Verbatim))
        );
    }

    #[test]
    fn a_path_too_long_for_the_kernel_is_not_copied() {
        let mut buf = [0u8; 4];
        assert_eq!(unescape_into(b"/abc", Value::Escaped, &mut buf), None);
        assert_eq!(unescape_into(b"/ab", Value::Escaped, &mut buf), Some(3));
    }

    #[test]
    fn mount_data_is_read_up_to_a_page() {
        let data = vec![b'a'; MOUNT_DATA_MAX + 10];
        // SAFETY: `data` is readable for more than the bound.
        let long = unsafe { bounded_cstr(data.as_ptr(), MOUNT_DATA_MAX) };
        assert_eq!(long.len(), MOUNT_DATA_MAX);
        // SAFETY: a NUL-terminated literal.
        let short = unsafe { bounded_cstr(b"ab\0c".as_ptr(), MOUNT_DATA_MAX) };
        assert_eq!(short, b"ab");
    }
}
