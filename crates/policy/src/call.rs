//! The interposed libc entry points. The policy names them in `ignore` and in
//! syscall rules' `call`; the preload library tags every request with one.

macro_rules! calls {
    ($($variant:ident = $text:literal : $kind:ident),+ $(,)?) => {
        /// An interposed libc entry point.
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        #[repr(u8)]
        pub enum Call { $($variant),+ }

        impl Call {
            /// Every call, in declaration order (the discriminant is the index).
            pub const ALL: &'static [Call] = &[$(Call::$variant),+];

            /// The libc name, as written in policies and events.
            pub const fn name(self) -> &'static str {
                match self { $(Call::$variant => $text),+ }
            }

            /// The rule kind that governs this call.
            pub const fn kind(self) -> crate::Kind {
                match self { $(Call::$variant => crate::Kind::$kind),+ }
            }

            pub fn from_name(name: &str) -> Option<Call> {
                match name { $($text => Some(Call::$variant),)+ _ => None }
            }
        }
    };
}

calls! {
    // file
    Open = "open": File, Open64 = "open64": File, Openat = "openat": File, Openat64 = "openat64": File,
    Open2 = "__open_2": File, Open64_2 = "__open64_2": File, Openat2 = "__openat_2": File, Openat64_2 = "__openat64_2": File,
    Creat = "creat": File, Creat64 = "creat64": File, Fopen = "fopen": File, Fopen64 = "fopen64": File,
    Freopen = "freopen": File, Freopen64 = "freopen64": File, Opendir = "opendir": File,
    Truncate = "truncate": File, Truncate64 = "truncate64": File, Unlink = "unlink": File, Unlinkat = "unlinkat": File,
    Rename = "rename": File, Renameat = "renameat": File, Renameat2 = "renameat2": File,
    Mkdir = "mkdir": File, Mkdirat = "mkdirat": File, Rmdir = "rmdir": File, Link = "link": File, Linkat = "linkat": File,
    Symlink = "symlink": File, Symlinkat = "symlinkat": File, Chmod = "chmod": File, Fchmodat = "fchmodat": File,
    Chown = "chown": File, Lchown = "lchown": File, Fchownat = "fchownat": File, Mknod = "mknod": File, Mknodat = "mknodat": File,
    // file: reached through syscall(), glibc internals and descriptors
    OpenatSys2 = "openat2": File, Mkstemp = "mkstemp": File, Mkdtemp = "mkdtemp": File,
    Mkfifo = "mkfifo": File, Mkfifoat = "mkfifoat": File, Setmntent = "setmntent": File,
    Scandir = "scandir": File, Glob = "glob": File, Nftw = "nftw": File, FtsOpen = "fts_open": File, FtsRead = "fts_read": File,
    Getspnam = "getspnam": File, Getpwnam = "getpwnam": File, Getgrnam = "getgrnam": File, Getsgnam = "getsgnam": File,
    Fchmod = "fchmod": File, Fchown = "fchown": File, Utimensat = "utimensat": File, Futimens = "futimens": File,
    Utimes = "utimes": File, Setxattr = "setxattr": File, Removexattr = "removexattr": File, Acct = "acct": File,
    // exec
    Execve = "execve": Exec, Execv = "execv": Exec, Execvp = "execvp": Exec, Execvpe = "execvpe": Exec,
    Execl = "execl": Exec, Execlp = "execlp": Exec, Execle = "execle": Exec, Fexecve = "fexecve": Exec, Execveat = "execveat": Exec,
    PosixSpawn = "posix_spawn": Exec, PosixSpawnp = "posix_spawnp": Exec, System = "system": Exec, Popen = "popen": Exec,
    Wordexp = "wordexp": Exec,
    // network
    Connect = "connect": Network, Bind = "bind": Network, Listen = "listen": Network, Accept = "accept": Network,
    Accept4 = "accept4": Network, Sendto = "sendto": Network, Sendmsg = "sendmsg": Network, Getaddrinfo = "getaddrinfo": Network,
    Sendmmsg = "sendmmsg": Network, Gethostbyname = "gethostbyname": Network,
    // syscall
    Ptrace = "ptrace": Syscall, Mount = "mount": Syscall, Umount2 = "umount2": Syscall, Chroot = "chroot": Syscall,
    PivotRoot = "pivot_root": Syscall, Unshare = "unshare": Syscall, Setns = "setns": Syscall,
    Setuid = "setuid": Syscall, Setgid = "setgid": Syscall, Seteuid = "seteuid": Syscall, Setegid = "setegid": Syscall,
    Setreuid = "setreuid": Syscall, Setregid = "setregid": Syscall, Setresuid = "setresuid": Syscall, Setresgid = "setresgid": Syscall,
    Setfsuid = "setfsuid": Syscall, Setfsgid = "setfsgid": Syscall, Setgroups = "setgroups": Syscall,
    Capset = "capset": Syscall, MemfdCreate = "memfd_create": Syscall, InitModule = "init_module": Syscall,
    FinitModule = "finit_module": Syscall, Bpf = "bpf": Syscall, Keyctl = "keyctl": Syscall, Personality = "personality": Syscall,
}

impl Call {
    /// Dense index, for bitsets and per-call lookup arrays.
    pub const fn index(self) -> usize {
        self as usize
    }
}
