//! `posix_spawn` and `posix_spawnp`: checked, file actions too, and run on
//! the object decided through a name the child can reach.

use super::*;

pub(super) type SpawnFn = unsafe extern "C" fn(
    *mut pid_t,
    *const c_char,
    *const posix_spawn_file_actions_t,
    *const posix_spawnattr_t,
    Argv,
    Argv,
) -> c_int;

/// posix_spawn returns the error number instead of setting errno. The
/// file actions are checked first (see [`check_actions`]).
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn posix_spawn(
    pid: *mut pid_t,
    path: *const c_char,
    actions: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    argv: Argv,
    envp: Argv,
) -> c_int {
    if let Verdict::Deny(e) = check_actions(Call::PosixSpawn, actions) {
        return e;
    }
    let spawn = Spawn {
        pid,
        actions,
        attr,
        envp,
    };
    spawn_decided(Call::PosixSpawn, c_path(path), argv, &spawn)
}

/// A spawn's arguments other than the program and its argv.
pub(super) struct Spawn {
    pub(super) pid: *mut pid_t,
    pub(super) actions: *const posix_spawn_file_actions_t,
    pub(super) attr: *const posix_spawnattr_t,
    pub(super) envp: Argv,
}

/// A spawn of `path` checked and run on the object decided ([`Plan`]).
/// libc's child makes the exec, out of the hooks' reach: it is handed a
/// path that names the held object through this process's descriptor,
/// `/proc/self/fd/D/name`, still open in the child at its exec (and
/// closed by it). A script's interpreter is spawned so, with the
/// arguments the kernel builds. The child follows a final link there:
/// a name held without being looked at is asked whether it is one
/// (`readlinkat`), and if so the spawn is decided on the kernel's path.
pub(super) fn spawn_decided(call: Call, path: CPath<'_>, argv: Argv, spawn: &Spawn) -> c_int {
    let mut plan = Plan::new();
    let at = libc::AT_FDCWD;
    let mut changes = 0;
    loop {
        let verdict = run(|active| check_chain(active, call, at, path, argv, Some(&mut plan)));
        if let Verdict::Deny(e) = verdict {
            return e;
        }
        if !plan.resolve && plan.names_a_link() {
            plan = Plan::new();
            plan.resolve = true;
            continue;
        }
        // libc's child resolves the name held again at its exec: where
        // the program (or a script's interpreter) could be renamed over by
        // then, by this process or another, the file read is held itself,
        // and one renamed over already is decided again.
        let run = if !plan.script {
            Some(&mut plan.file)
        } else if !plan.nested {
            Some(&mut plan.interp)
        } else {
            None
        };
        let changed = run.is_some_and(|held| held.renamable() && !held.pin_as_read());
        if !changed {
            break;
        }
        if changes == MAX_CHANGES {
            return libc::ENOENT;
        }
        changes += 1;
        let (resolve, file) = (plan.resolve, !plan.script);
        plan = Plan::new();
        plan.resolve = resolve;
        // The program held itself before it is read (an interpreter is
        // only compared again).
        plan.pin = file;
    }
    let by_path = || real_spawn(path.ptr(), argv, spawn);
    let file = match &plan.file {
        Hold::None => return by_path(),
        Hold::Failed(e) => return *e,
        Hold::Held(h) => h,
    };
    if !plan.script {
        let Some(named) = file.proc_path(spawn.actions) else {
            return by_path();
        };
        let who = || Who::ChildOf(sys::getpid());
        return file.with_comm(who, spawn.envp, |envp| {
            real_spawn(named.as_ptr().cast(), argv, &Spawn { envp, ..*spawn })
        });
    }
    if plan.nested {
        return by_path();
    }
    let interp = match &plan.interp {
        Hold::None => return by_path(),
        Hold::Failed(e) => return *e,
        Hold::Held(h) => h,
    };
    // What the kernel checks of a script before reading its line.
    let (name, flags) = if file.empty {
        (c"".as_ptr(), libc::AT_EACCESS | libc::AT_EMPTY_PATH)
    } else {
        (file.name_ptr(), libc::AT_EACCESS)
    };
    // SAFETY: a held directory (or file) and a NUL-terminated name; not
    // hooked.
    if unsafe { libc::faccessat(file.dir, name, libc::X_OK, flags) } != 0 {
        return sys::errno();
    }
    let Some(named) = interp.proc_path(spawn.actions) else {
        return by_path();
    };
    let who = Who::ChildOf(sys::getpid());
    plan.with_interpreter_args(path.ptr(), who, argv, spawn.envp, |args, envp| {
        real_spawn(named.as_ptr().cast(), args, &Spawn { envp, ..*spawn })
    })
}

pub(super) fn real_spawn(path: *const c_char, argv: Argv, spawn: &Spawn) -> c_int {
    let Spawn {
        pid,
        actions,
        attr,
        envp,
    } = *spawn;
    match next!(posix_spawn: SpawnFn) {
        // SAFETY: forwarding the caller's arguments.
        Some(f) => unsafe { f(pid, path, actions, attr, argv, envp) },
        None => libc::ENOSYS,
    }
}

/// posix_spawnp: the child would search `PATH` itself, out of reach of the
/// hooks. So the search is made here, the way the child makes it (the
/// first element holding a regular file this process may execute; glibc's
/// current `posix_spawnp` does not fall back to `/bin/sh`), that exact
/// file is checked, and `posix_spawn` runs it by that path.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn posix_spawnp(
    pid: *mut pid_t,
    file: *const c_char,
    actions: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    argv: Argv,
    envp: Argv,
) -> c_int {
    let spelled = c_path(file);
    let name = spelled.bytes();
    if name.contains(&b'/') || name.is_empty() || crate::load::state::is_off() {
        if let Verdict::Deny(e) = check_actions(Call::PosixSpawnp, actions) {
            return e;
        }
        if let Verdict::Deny(e) = check_exec(Call::PosixSpawnp, libc::AT_FDCWD, spelled, argv) {
            return e;
        }
        return match next!(posix_spawnp: SpawnFn) {
            // SAFETY: forwarding the caller's arguments.
            Some(f) => unsafe { f(pid, file, actions, attr, argv, envp) },
            None => libc::ENOSYS,
        };
    }
    let mut found = PathBuf::new();
    match find_runnable(name, &mut found) {
        Err(e) => e,
        Ok(()) => {
            if let Verdict::Deny(e) = check_actions(Call::PosixSpawnp, actions) {
                return e;
            }
            let spelled = CPath::new(found.as_bytes()).unwrap_or(CPath::EMPTY);
            let spawn = Spawn {
                pid,
                actions,
                attr,
                envp,
            };
            spawn_decided(Call::PosixSpawnp, spelled, argv, &spawn)
        }
    }
}

/// The file a `PATH` search for `name` executes, NUL-terminated in `out`:
/// the first candidate that is a regular file this process may execute
/// (`faccessat` with the effective ids, which also honours `noexec`
/// mounts). The error when there is none: `EACCES` if some candidate
/// existed but could not be run, else `ENOENT`.
pub(super) fn find_runnable(name: &[u8], out: &mut PathBuf) -> Result<(), c_int> {
    if name.len() > 255 {
        return Err(libc::ENAMETOOLONG);
    }
    // SAFETY: getenv reads the environment without allocating.
    let path_var = unsafe { cstr(libc::getenv(c"PATH".as_ptr())) }.unwrap_or(b"/bin:/usr/bin");
    let mut eacces = false;
    for dir in path_var.split(|&b| b == b':') {
        let parts: [&[u8]; 4] = if dir.is_empty() {
            [name, b"\0", b"", b""]
        } else {
            [dir, b"/", name, b"\0"]
        };
        if out.set(&parts).is_none() {
            continue;
        }
        let c_path: *const c_char = out.as_bytes().as_ptr().cast();
        // SAFETY: an all-zero `stat` is a valid value to be overwritten.
        let mut st: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: NUL-terminated path, writable stat buffer; not hooked.
        if unsafe { libc::stat(c_path, &mut st) } != 0 {
            if sys::errno() == libc::EACCES {
                eacces = true;
            }
            continue;
        }
        // SAFETY: NUL-terminated path; faccessat is not hooked.
        let runnable = st.st_mode & libc::S_IFMT == libc::S_IFREG
            && unsafe { libc::faccessat(libc::AT_FDCWD, c_path, libc::X_OK, libc::AT_EACCESS) }
                == 0;
        if runnable {
            return Ok(());
        }
        eacces = true;
    }
    Err(if eacces { libc::EACCES } else { libc::ENOENT })
}

/// Route of file actions: every `posix_spawn_file_actions_addopen` path is
/// opened in the child, out of reach of the hooks. Each is checked here
/// with the open semantics (its flags), relative to the directory the
/// child will be in by then (`addchdir_np`/`addfchdir_np` actions before
/// it, including a directory an earlier open action put on that fd).
pub(super) fn check_actions(call: Call, actions: *const posix_spawn_file_actions_t) -> Verdict {
    if actions.is_null() || crate::load::state::is_off() {
        return Verdict::Allow;
    }
    let mut base = Base::Cwd;
    let mut opened: [(c_int, c_int); 8] = [(-1, -1); 8];
    let mut verdict = Verdict::Allow;
    let mut i = 0;
    for action in spawn_actions::iter(actions) {
        match action {
            spawn_actions::Action::Open { fd, path, oflag } => {
                let dirfd = base.fd();
                let v = crate::hooks::borrowed::check_open_flags(call, dirfd, path, oflag);
                if v != Verdict::Allow {
                    verdict = v;
                    break;
                }
                if oflag & libc::O_DIRECTORY != 0 || oflag & libc::O_PATH != 0 {
                    let pinned = sys::open_path(dirfd, path, 0);
                    if pinned >= 0 {
                        let slot = &mut opened[i % opened.len()];
                        if slot.1 >= 0 {
                            sys::close(slot.1);
                        }
                        *slot = (fd, pinned);
                        i += 1;
                    }
                }
            }
            spawn_actions::Action::Chdir(path) => {
                let pinned = sys::open_path(base.fd(), path, libc::O_DIRECTORY);
                base.set(pinned);
                if pinned < 0 {
                    // The child's chdir fails there and stops the spawn,
                    // unless the directory appears in between: then
                    // nothing later could be checked.
                    break;
                }
            }
            spawn_actions::Action::Fchdir(fd) => {
                let own = opened.iter().find(|(f, _)| *f == fd).map(|o| o.1);
                let src = own.unwrap_or(fd);
                let mut link = [0u8; 32];
                sys::proc_fd_path(src, &mut link);
                base.set(sys::open_path(libc::AT_FDCWD, link.as_ptr().cast(), 0));
            }
            spawn_actions::Action::Closes { .. } => {}
            spawn_actions::Action::Unknown => {
                // A layout this library does not know: nothing after it
                // can be checked.
                verdict = run(|active| {
                    let req = Request {
                        path: Some(b"posix_spawn file action"),
                        ..Request::new(Kind::File, call, active.program)
                    };
                    unresolvable(active, &req)
                });
                break;
            }
        }
    }
    for (_, f) in opened {
        if f >= 0 {
            sys::close(f);
        }
    }
    verdict
}

/// The directory relative paths of file actions start from.
pub(super) enum Base {
    Cwd,
    Dir(c_int),
    /// A `chdir` action the child cannot carry out.
    Gone,
}

impl Base {
    pub(super) fn fd(&self) -> c_int {
        match self {
            Base::Cwd => libc::AT_FDCWD,
            Base::Dir(fd) => *fd,
            // Relative paths from a failed chdir: the spawn fails first.
            Base::Gone => -1,
        }
    }

    pub(super) fn set(&mut self, fd: c_int) {
        if let Base::Dir(old) = self {
            sys::close(*old);
        }
        *self = if fd >= 0 { Base::Dir(fd) } else { Base::Gone };
    }
}

impl Drop for Base {
    fn drop(&mut self) {
        if let Base::Dir(fd) = self {
            sys::close(*fd);
        }
    }
}

/// Reading libc's private file-action list (glibc: an array of tagged
/// unions, stable since 2.29; musl: a linked list).
pub(super) mod spawn_actions {
    use libc::{c_char, c_int, posix_spawn_file_actions_t};

    pub enum Action {
        Open {
            fd: c_int,
            path: *const c_char,
            oflag: c_int,
        },
        Chdir(*const c_char),
        Fchdir(c_int),
        /// Closes or replaces descriptor `fd` (`close`, `dup2` onto it),
        /// or every one from `fd` up (`closefrom`).
        Closes {
            fd: c_int,
            up: bool,
        },
        Unknown,
    }

    impl Action {
        /// Whether the child's descriptor `fd` is closed or replaced.
        pub fn closes(&self, fd: c_int) -> bool {
            match *self {
                Action::Closes { fd: f, up } => f == fd || up && f <= fd,
                _ => false,
            }
        }
    }

    #[cfg(target_env = "gnu")]
    pub fn iter(fa: *const posix_spawn_file_actions_t) -> impl Iterator<Item = Action> {
        /// glibc's `struct __spawn_action`: the tag, then a union that
        /// holds a pointer (so it starts at offset 8). Its largest member,
        /// `open_action`, is `{int fd; char *path; int oflag; mode_t mode;}`;
        /// `chdir_action` is `{char *path;}`, `fchdir_action` `{int fd;}`.
        #[repr(C)]
        struct Raw {
            /// `open_action.fd`, `fchdir_action.fd`
            first: c_int,
            second: c_int,
            path: *const c_char,
            oflag: c_int,
            _mode: c_int,
        }
        #[repr(C)]
        struct RawOuter {
            tag: c_int,
            union: Raw,
        }
        const _: () = assert!(std::mem::size_of::<RawOuter>() == 32);
        #[repr(C)]
        struct Head {
            allocated: c_int,
            used: c_int,
            actions: *const RawOuter,
        }
        // SAFETY: the caller passes an initialised file-actions object,
        // whose glibc layout `Head` transcribes.
        let head = unsafe { &*(fa as *const Head) };
        let used = if head.actions.is_null() {
            0
        } else {
            head.used.max(0) as usize
        };
        (0..used)
            .map(move |i| {
                // SAFETY: `used` entries of the array are initialised.
                let r = unsafe { &*head.actions.add(i) };
                let u = &r.union;
                match r.tag {
                    0 => Action::Closes {
                        fd: u.first,
                        up: false,
                    },
                    // `dup2_action` is `{int fd; int newfd;}`.
                    1 => Action::Closes {
                        fd: u.second,
                        up: false,
                    },
                    5 => Action::Closes {
                        fd: u.first,
                        up: true,
                    },
                    // tcsetpgrp: no path, no descriptor
                    6 => Action::Fchdir(-2),
                    2 => Action::Open {
                        fd: u.first,
                        path: u.path,
                        oflag: u.oflag,
                    },
                    // SAFETY: for tag 3 the union holds `char *path` first,
                    // which overlaps `first` and `_pad` of `Raw`.
                    3 => Action::Chdir(unsafe { *(u as *const Raw as *const *const c_char) }),
                    4 => Action::Fchdir(u.first),
                    _ => Action::Unknown,
                }
            })
            .filter(|a| !matches!(a, Action::Fchdir(-2)))
    }

    #[cfg(target_env = "musl")]
    pub fn iter(fa: *const posix_spawn_file_actions_t) -> impl Iterator<Item = Action> {
        /// musl's `struct fdop`.
        #[repr(C)]
        struct Fdop {
            next: *const Fdop,
            prev: *const Fdop,
            cmd: c_int,
            fd: c_int,
            srcfd: c_int,
            oflag: c_int,
            mode: libc::mode_t,
            path: [c_char; 0],
        }
        #[repr(C)]
        struct Head {
            pad0: [c_int; 2],
            actions: *const Fdop,
        }
        // SAFETY: musl's layout of an initialised file-actions object.
        let head = unsafe { &*(fa as *const Head) };
        // musl pushes new actions at the head: walk to the oldest first.
        let mut last = head.actions;
        // SAFETY: a well-formed doubly linked list.
        while !last.is_null() && unsafe { !(*last).next.is_null() } {
            // SAFETY: `last` is a non-null node of that list.
            last = unsafe { (*last).next };
        }
        let mut cur = last;
        std::iter::from_fn(move || {
            if cur.is_null() {
                return None;
            }
            // SAFETY: a node of the list.
            let op = unsafe { &*cur };
            cur = op.prev;
            Some(match op.cmd {
                3 => Action::Open {
                    fd: op.fd,
                    path: op.path.as_ptr(),
                    oflag: op.oflag,
                },
                4 => Action::Chdir(op.path.as_ptr()),
                5 => Action::Fchdir(op.fd),
                // FDOP_CLOSE, FDOP_DUP2: `fd` is the one closed or replaced.
                1 | 2 => Action::Closes {
                    fd: op.fd,
                    up: false,
                },
                _ => Action::Unknown,
            })
        })
    }
}
