//! Linux errno names and numbers for the `errno` field of deny rules.
//!
//! Written out by hand so the engine needs no libc dependency; the numbers
//! are the generic Linux ones (x86_64, aarch64 and most other architectures
//! share them).

/// Permission denied: the default for file and exec denials.
pub const EACCES: i32 = 13;
/// Operation not permitted: the default for network and syscall denials.
pub const EPERM: i32 = 1;

/// Every errno a policy may name, with its number.
pub const TABLE: &[(&str, i32)] = &[
    ("EPERM", 1),
    ("ENOENT", 2),
    ("ESRCH", 3),
    ("EINTR", 4),
    ("EIO", 5),
    ("ENXIO", 6),
    ("E2BIG", 7),
    ("ENOEXEC", 8),
    ("EBADF", 9),
    ("ECHILD", 10),
    ("EAGAIN", 11),
    ("ENOMEM", 12),
    ("EACCES", 13),
    ("EFAULT", 14),
    ("EBUSY", 16),
    ("EEXIST", 17),
    ("EXDEV", 18),
    ("ENODEV", 19),
    ("ENOTDIR", 20),
    ("EISDIR", 21),
    ("EINVAL", 22),
    ("ENFILE", 23),
    ("EMFILE", 24),
    ("ETXTBSY", 26),
    ("EFBIG", 27),
    ("ENOSPC", 28),
    ("ESPIPE", 29),
    ("EROFS", 30),
    ("EMLINK", 31),
    ("EPIPE", 32),
    ("ENAMETOOLONG", 36),
    ("ENOSYS", 38),
    ("ENOTEMPTY", 39),
    ("ELOOP", 40),
    ("ENOTSOCK", 88),
    ("EDESTADDRREQ", 89),
    ("EMSGSIZE", 90),
    ("EPROTOTYPE", 91),
    ("ENOPROTOOPT", 92),
    ("EPROTONOSUPPORT", 93),
    ("EOPNOTSUPP", 95),
    ("EAFNOSUPPORT", 97),
    ("EADDRINUSE", 98),
    ("EADDRNOTAVAIL", 99),
    ("ENETDOWN", 100),
    ("ENETUNREACH", 101),
    ("ECONNABORTED", 103),
    ("ECONNRESET", 104),
    ("ENOBUFS", 105),
    ("EISCONN", 106),
    ("ENOTCONN", 107),
    ("ETIMEDOUT", 110),
    ("ECONNREFUSED", 111),
    ("EHOSTDOWN", 112),
    ("EHOSTUNREACH", 113),
    ("EALREADY", 114),
    ("EINPROGRESS", 115),
    ("EDQUOT", 122),
    ("ECANCELED", 125),
];

/// The number for an errno name such as `"ECONNREFUSED"`.
pub fn from_name(name: &str) -> Option<i32> {
    TABLE.iter().find(|(n, _)| *n == name).map(|&(_, v)| v)
}

/// The name of an errno number, when it is in [`TABLE`].
pub fn name(errno: i32) -> Option<&'static str> {
    TABLE.iter().find(|&&(_, v)| v == errno).map(|&(n, _)| n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_numbers_round_trip() {
        for &(n, v) in TABLE {
            assert_eq!(from_name(n), Some(v));
            assert_eq!(name(v), Some(n));
        }
        assert_eq!(from_name("ECONNREFUSED"), Some(111));
        assert_eq!(from_name("econnrefused"), None);
        assert_eq!(name(EACCES), Some("EACCES"));
    }
}
