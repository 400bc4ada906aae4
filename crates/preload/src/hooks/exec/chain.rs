//! What an exec runs, decided: the file, a `#!` chain of interpreters, the
//! program the dynamic loader is asked to load, and drift; the buffers the
//! chain is walked with.

use super::*;

/// Checks an exec of `path` (relative to `dirfd`) with arguments `argv`.
/// The `p` variants search `PATH` themselves ([`exec_search`]) and call
/// this for each candidate.
///
/// Decided on the lexical absolute path and on the object the kernel
/// reaches from `(dirfd, path)` as spelled (so `lnk/../bin/id` is
/// `/usr/bin/id` when `lnk` leads into `/usr/lib`), never on the collapsed
/// spelling alone. No descriptor free: a `readlink` walk. No way to tell
/// while a rule could deny: denied.
pub fn check_exec(call: Call, dirfd: c_int, path: CPath<'_>, argv: Argv) -> Verdict {
    run(|active| check_chain(active, call, dirfd, path, argv, None))
}

/// How many interpreters deep a `#!` chain is followed (the kernel's own
/// limit is 4 levels of binfmt recursion).
pub(super) const MAX_CHAIN: u8 = 5;

/// The rules and drift on `given`, then on what the kernel will actually
/// run because of it: a `#!` interpreter, or, when `given` is the dynamic
/// loader run as a program, the program it loads. A loop over two path
/// buffers, not recursion: exec hooks may run on a small signal stack.
/// The four buffers (16 KiB) are the thread's, one set per check level,
/// in its mapped scratch area (`guard::chain_bytes`): on the stack they
/// were zeroed on every exec, four pages written, and in a forked child
/// each of them a copy-on-write fault; there only the bytes a chain uses
/// are written, and a child faults in only those pages.
#[inline(never)]
pub(super) fn check_chain(
    active: &'static Active,
    call: Call,
    dirfd: c_int,
    given: CPath<'_>,
    argv: Argv,
    plan: Option<&mut Plan>,
) -> Verdict {
    // The caller holds a check guard (`run`): a signal handler's exec hook
    // that interrupts this one is one level deeper and gets the next set.
    let level = crate::os::guard::scratch_level();
    match crate::os::guard::chain_bytes(level) {
        // SAFETY: exclusive per the level argument above; the bytes are
        // this thread's own, large and aligned enough (checked below), and
        // any bytes left there are valid `PathBuf`s (byte arrays and
        // lengths that only `PathBuf`'s own methods write).
        Some(bytes) => chain(active, call, dirfd, given, argv, plan, unsafe {
            &mut *bytes.cast::<ChainBufs>()
        }),
        None => chain_on_stack(active, call, dirfd, given, argv, plan),
    }
}

/// `check_chain`'s buffers: the path being checked, the next one, and the
/// `#!` line arguments that started each.
pub(super) struct ChainBufs([PathBuf; 4]);

const _: () = assert!(std::mem::size_of::<ChainBufs>() <= crate::os::guard::CHAIN_BYTES);
const _: () = assert!(std::mem::align_of::<ChainBufs>() <= 8);

/// No scratch area could be mapped (out of memory or address space).
#[cold]
#[inline(never)]
pub(super) fn chain_on_stack(
    active: &'static Active,
    call: Call,
    dirfd: c_int,
    given: CPath<'_>,
    argv: Argv,
    plan: Option<&mut Plan>,
) -> Verdict {
    let mut bufs = ChainBufs([
        PathBuf::new(),
        PathBuf::new(),
        PathBuf::new(),
        PathBuf::new(),
    ]);
    chain(active, call, dirfd, given, argv, plan, &mut bufs)
}

pub(super) fn chain(
    active: &'static Active,
    call: Call,
    dirfd: c_int,
    given: CPath<'_>,
    argv: Argv,
    mut plan: Option<&mut Plan>,
    bufs: &mut ChainBufs,
) -> Verdict {
    let [cur, next, prev_arg, line_arg] = &mut bufs.0;
    let (mut cur, mut next) = (cur, next);
    // The argument of the `#!` line that started `cur`, if any, and the
    // one `runs_next` finds for the next level.
    let (mut prev_arg, mut line_arg) = (prev_arg, line_arg);
    let mut has_arg = false;
    let mut dirfd = dirfd;
    // `cur` is the interpreter a `#!` line named.
    let mut interpreter = false;
    let pin = plan.as_deref().is_some_and(|p| p.pin);
    // Drift is decided on the file's contents: where it could be renamed
    // over before the exec, the file itself is held and run.
    let drift_acts = active.table.drift().is_some_and(|a| a != Action::Allow);
    for depth in 0..=MAX_CHAIN {
        let path = if depth == 0 { given } else { cur.c_path() };
        // The objects the exec runs are held while they are decided: the
        // file named, and the interpreter of a script (emulated: `Plan`).
        // An interpreter that is a script itself is held until its own
        // interpreter replaces it: the last one held is the program run.
        let mut slot = match plan.as_deref_mut() {
            Some(p) if depth == 0 => Some((&mut p.file, p.resolve)),
            Some(p) if depth >= 1 && interpreter && !p.nested && !p.interp.failed() => {
                Some((&mut p.interp, p.resolve))
            }
            _ => None,
        };
        let verdict = resolve::with_scratch(|s| {
            let hold = slot.as_mut().map(|(h, resolve)| (&mut **h, *resolve));
            let verdict = decide_exec(active, call, dirfd, path, argv, s, hold);
            if verdict != Verdict::Allow {
                return verdict;
            }
            // Held itself before anything is read from it (`Hold::pin`).
            if let (0, Some((h, _))) = (depth, slot.as_mut()) {
                if pin || (drift_acts && h.renamable()) {
                    let _ = h.pin();
                }
            }
            let spelled = path.bytes();
            let target = resolve::lexical(dirfd, spelled, &mut s.a, &mut s.b).unwrap_or(spelled);
            let object = match slot.as_ref().map(|(h, _)| &**h) {
                Some(Hold::Held(h)) if h.empty => Object::Fd(h.dir),
                Some(Hold::Held(h)) => Object::Held(h.dir, h.name(), dirfd, spelled),
                _ => Object::At(dirfd, spelled),
            };
            drift_exec(active, call, object, target, argv)
        });
        if verdict != Verdict::Allow {
            return verdict;
        }
        let loader_arg = if depth == 0 {
            LoaderArg::Argv
        } else if has_arg {
            LoaderArg::Line(prev_arg.as_bytes())
        } else {
            LoaderArg::None
        };
        // The head is read from the object held, never from the path again.
        let head_of = match slot.as_ref().map(|(h, _)| &**h) {
            Some(Hold::Held(h)) if h.empty => (h.dir, h.name_ptr(), PINNED),
            Some(Hold::Held(h)) => (h.dir, h.name_ptr(), libc::O_NOFOLLOW),
            _ => (dirfd, path.ptr(), 0),
        };
        let mut seen = None;
        let next_run = runs_next(
            active, head_of, path, argv, loader_arg, next, line_arg, &mut seen,
        );
        if let Some(Hold::Held(h)) = slot.as_mut().map(|(h, _)| &mut **h) {
            // What was read is what the exec's fallbacks may run.
            h.seen = seen;
        }
        match next_run {
            Next::Nothing => return Verdict::Allow,
            Next::Unknown => {
                let req = Request {
                    path: Some(path.bytes()),
                    ..Request::new(Kind::Exec, call, active.program)
                };
                return unresolvable(active, &req);
            }
            Next::Run { arg, script } => {
                // `#!` lines from the file's on; the loader run as a
                // program by an interpreter line is not emulated.
                let line = script && (depth == 0 || interpreter);
                if let Some(p) = plan.as_deref_mut() {
                    if line {
                        if depth >= 1 {
                            p.interp = p.interp.intermediate();
                        }
                        p.push_line(next.as_bytes(), arg.then(|| line_arg.as_bytes()));
                    } else if depth >= 1 && interpreter {
                        p.nested = true;
                    }
                }
                interpreter = line;
                has_arg = arg;
                std::mem::swap(&mut cur, &mut next);
                std::mem::swap(&mut prev_arg, &mut line_arg);
                dirfd = libc::AT_FDCWD;
            }
        }
    }
    Verdict::Allow // deeper than the kernel goes: ELOOP
}

/// Where the dynamic loader run as a program finds its program.
#[derive(Clone, Copy)]
pub(super) enum LoaderArg<'a> {
    /// The exec's own arguments (`ld.so [options] PROGRAM`).
    Argv,
    /// Started by a `#!` line: its one argument.
    Line(&'a [u8]),
    /// Started by a `#!` line without an argument: ld.so gets the script.
    None,
}

/// What else an exec of a file starts.
pub(super) enum Next {
    Nothing,
    /// `next` holds the path of the interpreter or loaded program; `arg`:
    /// a `#!` line gave it an argument (now in `line_arg`).
    Run {
        arg: bool,
        /// Named by a `#!` line (else: the loader's program).
        script: bool,
    },
    /// Cannot tell: the file is executable but unreadable to us (mode
    /// `--x`), or the loader gets an option it cannot be sure of.
    Unknown,
}

/// Reads the first bytes of what `(dirfd, given)` reaches, as the kernel
/// does: a `#!` line names an interpreter; the dynamic loader run as a
/// program loads the first argument that is not one of its options.
#[inline(never)]
#[allow(clippy::too_many_arguments)]
pub(super) fn runs_next(
    active: &'static Active,
    (dirfd, name, nofollow): (c_int, *const c_char, c_int),
    given: CPath<'_>,
    argv: Argv,
    loader_arg: LoaderArg<'_>,
    next: &mut PathBuf,
    line_arg: &mut PathBuf,
    seen: &mut Option<Identity>,
) -> Next {
    if given.bytes().len() >= resolve::PATH_CAP {
        return Next::Nothing; // ENAMETOOLONG from the kernel
    }
    let mut head = [0u8; HEAD];
    let Some(file) = HeadFile::open(dirfd, name, nofollow, &mut head) else {
        return Next::Nothing; // the exec fails by itself
    };
    *seen = file.identity;
    let read = file.read;
    let exec_rules = active.table.needs_resolution(Kind::Exec, Access::Read);
    let Some(n) = read else {
        // Unreadable to us: an executable regular file could still be a
        // script whose interpreter the kernel starts.
        return if exec_rules {
            Next::Unknown
        } else {
            Next::Nothing
        };
    };
    if let Some((interp, arg)) = shebang(&head) {
        if next.set(&[interp]).is_none() || line_arg.set(&[arg.unwrap_or(b"")]).is_none() {
            return Next::Nothing; // ENAMETOOLONG from the kernel
        }
        return Next::Run {
            arg: arg.is_some(),
            script: true,
        };
    }
    if head.starts_with(b"#!") {
        return Next::Nothing; // ENOEXEC from the kernel
    }
    let head = head.get(..n).unwrap_or_default();
    if head.starts_with(b"\x7fELF") && file.is_loader(name, nofollow) {
        let program = match loader_arg {
            LoaderArg::Argv => loaded_program(argv),
            LoaderArg::Line(arg) if arg.starts_with(b"-") => {
                return if exec_rules {
                    Next::Unknown
                } else {
                    Next::Nothing
                }
            }
            LoaderArg::Line(arg) => Some(arg),
            // ld.so is handed the script itself, which is not ELF.
            LoaderArg::None => None,
        };
        if program.is_some_and(|p| next.set(&[p]).is_some()) {
            return Next::Run {
                arg: false,
                script: false,
            };
        }
    }
    Next::Nothing
}

/// A `#!` line split exactly as the kernel's `load_script` splits it
/// (fs/binfmt_script.c): the interpreter's name and its one optional
/// argument (possibly empty), out of the file's first 256 bytes (`head`,
/// zero past the end of a shorter file). `None`: not a script, or a line
/// the kernel refuses with `ENOEXEC` (no name; a name that may be cut
/// short). Blanks are spaces and tabs only: a `\r` stays in the name.
//
// Written with `get` rather than indexing: every index is in bounds, but
// each indexing the compiler cannot prove so leaves a panic location, a
// relocated pointer on the RELRO pages every process writes.
pub(super) fn shebang(head: &[u8; HEAD]) -> Option<(&[u8], Option<&[u8]>)> {
    let rest = head.strip_prefix(b"#!")?;
    let blank = |c: &u8| *c == b' ' || *c == b'\t';
    let mut line = match rest.iter().position(|&c| c == b'\n') {
        Some(i) => rest.get(..i)?,
        None => {
            // No newline: the name must end within the buffer, whose last
            // byte the kernel then drops.
            let first = rest.iter().position(|c| !blank(c))?;
            if !rest.iter().skip(first).any(|c| blank(c) || *c == 0) {
                return None;
            }
            rest.split_last()?.1
        }
    };
    while let [init @ .., last] = line {
        if !blank(last) {
            break;
        }
        line = init;
    }
    let line = line.get(line.iter().position(|c| !blank(c))?..)?;
    let (name, after) = match line.iter().position(|c| blank(c) || *c == 0) {
        Some(sep) => line.split_at_checked(sep)?,
        None => (line, &[][..]),
    };
    // After a blank (not a NUL), the argument: from the next non-blank to
    // a NUL or the line's end.
    let arg = match after.first() {
        Some(c) if blank(c) => after.iter().position(|c| !blank(c)).and_then(|at| {
            let arg = after.get(at..)?;
            arg.split(|&c| c == 0).next()
        }),
        _ => None,
    };
    Some((name, arg))
}

/// How much of a file the kernel reads to tell its format
/// (`BINPRM_BUF_SIZE`).
pub(super) const HEAD: usize = 256;

/// The file an exec names, open, and its first bytes read ([`HEAD`]).
pub(super) struct HeadFile {
    fd: c_int,
    /// `None`: it may not be read; `Some(0)` also when it is not a
    /// regular file with an execute bit.
    read: Option<usize>,
    /// The file's identity, when it is a regular file with an execute bit.
    pub(super) identity: Option<Identity>,
}

/// [`HeadFile::open`]'s `nofollow` for a file held itself: `dirfd` is the
/// file, and the name is its own.
pub(super) const PINNED: c_int = -1;

impl HeadFile {
    /// Opens `(dirfd, name)` for reading (with `nofollow`, `O_NOFOLLOW`
    /// or 0) and reads its head. One `openat` where an `O_PATH`
    /// descriptor reopened through `/proc` took two, and `/proc` is slow
    /// to look at for the first time in a new process. What will not open
    /// so (no read permission: mode `--x`; a link refused; a socket) is
    /// looked at through an `O_PATH` descriptor, as the kernel would.
    /// `None`: nothing there (the exec fails by itself).
    pub(super) fn open(
        dirfd: c_int,
        name: *const c_char,
        nofollow: c_int,
        head: &mut [u8; HEAD],
    ) -> Option<HeadFile> {
        if nofollow == PINNED {
            // The holder closes the file.
            let (read, identity) = head_of(dirfd, Through::Proc, head);
            return Some(HeadFile {
                fd: -1,
                read,
                identity,
            });
        }
        // Non-blocking: a FIFO would wait for a writer.
        let flags = libc::O_RDONLY | libc::O_NOCTTY | libc::O_NONBLOCK | nofollow;
        if let Ok(fd) = sys::openat_quiet(dirfd, name, flags) {
            let (read, identity) = head_of(fd, Through::Itself, head);
            return Some(HeadFile { fd, read, identity });
        }
        let pinned = sys::open_path(dirfd, name, nofollow);
        if pinned < 0 {
            return None;
        }
        let (read, identity) = head_of(pinned, Through::Proc, head);
        Some(HeadFile {
            fd: pinned,
            read,
            identity,
        })
    }

    /// Whether the file opened is the dynamic loader, by its name: the
    /// name it was opened by when that was no link (`nofollow`), else the
    /// kernel's path of the descriptor.
    pub(super) fn is_loader(&self, name: *const c_char, nofollow: c_int) -> bool {
        if nofollow != 0 {
            // SAFETY: the caller's NUL-terminated name.
            return unsafe { cstr(name) }.is_some_and(sys::is_loader_path);
        }
        // Only its last segment matters, so a short buffer.
        let mut link = [0u8; 256];
        sys::fd_path(self.fd, &mut link)
            .is_some_and(|n| sys::is_loader_path(link.get(..n).unwrap_or_default()))
    }
}

impl Drop for HeadFile {
    fn drop(&mut self) {
        if self.fd >= 0 {
            sys::close(self.fd);
        }
    }
}

/// How [`head_of`] reads a file's descriptor.
enum Through {
    /// It is open for reading.
    Itself,
    /// An `O_PATH` descriptor: reopened through `/proc/self/fd`.
    Proc,
}

/// The head of the file open on `fd` ([`HeadFile::read`]) and its identity.
fn head_of(
    fd: c_int,
    through: Through,
    head: &mut [u8; HEAD],
) -> (Option<usize>, Option<Identity>) {
    let identity = regular_executable(fd);
    let read = match (identity, through) {
        (None, _) => Some(0),
        (Some(_), Through::Itself) => read_at_start(fd, head),
        (Some(_), Through::Proc) => reopened_head(fd, head),
    };
    (read, identity)
}

/// `fd`'s identity (device, inode) when it is a regular file with an
/// execute bit.
fn regular_executable(fd: c_int) -> Option<Identity> {
    // SAFETY: an all-zero `stat` is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let st_ptr = &mut st as *mut libc::stat;
    // The system calls are made here, not through libc (its `fstat` and
    // `pread` are pages a forked child would fault in just for this).
    let ok = raw_syscall(
        libc::SYS_fstat,
        [fd as c_long, st_ptr as c_long, 0, 0, 0, 0],
    ) == 0
        && st.st_mode & libc::S_IFMT == libc::S_IFREG
        && st.st_mode & 0o111 != 0;
    ok.then_some((st.st_dev, st.st_ino))
}

/// The first bytes of the file `pinned` (an `O_PATH` descriptor) holds,
/// read through a fresh descriptor of the same inode; `None` when it may
/// not be read.
fn reopened_head(pinned: c_int, head: &mut [u8; HEAD]) -> Option<usize> {
    let mut link = [0u8; 32];
    sys::proc_fd_path(pinned, &mut link);
    let fd = sys::openat_quiet(libc::AT_FDCWD, link.as_ptr().cast(), libc::O_RDONLY).ok()?;
    let n = read_at_start(fd, head);
    sys::close(fd);
    n
}

fn read_at_start(fd: c_int, head: &mut [u8; HEAD]) -> Option<usize> {
    let n = raw_syscall(
        libc::SYS_pread64,
        [
            fd as c_long,
            head.as_mut_ptr() as c_long,
            head.len() as c_long,
            0,
            0,
            0,
        ],
    );
    (n >= 0).then_some(n as usize)
}

/// The program the dynamic loader is asked to run: `argv[1..]` past its
/// options (those of glibc's and musl's `ld.so` that take a value skip it).
pub(super) fn loaded_program<'a>(argv: Argv) -> Option<&'a [u8]> {
    if argv.is_null() {
        return None;
    }
    const WITH_VALUE: &[&[u8]] = &[
        b"--library-path",
        b"--inhibit-rpath",
        b"--audit",
        b"--preload",
        b"--argv0",
        b"--glibc-hwcaps-prepend",
        b"--glibc-hwcaps-mask",
    ];
    let mut i = 1;
    loop {
        // SAFETY: argv is a NULL-terminated array of C strings.
        let arg = unsafe { cstr(*argv.add(i)) }?;
        if arg == b"--" {
            // SAFETY: as above.
            return unsafe { cstr(*argv.add(i + 1)) };
        }
        if !arg.starts_with(b"--") {
            return Some(arg);
        }
        i += if WITH_VALUE.contains(&arg) { 2 } else { 1 };
        if i > 64 {
            return None;
        }
    }
}

/// Checks an exec of the file open on `fd` (`fexecve`, `execveat` with
/// `AT_EMPTY_PATH`): the rules on the descriptor's path, then drift on the
/// descriptor itself (a memfd or a deleted file always drifts).
pub fn check_exec_fd(call: Call, fd: c_int, argv: Argv) -> Verdict {
    run(|active| {
        let mut target = [0u8; resolve::PATH_CAP];
        // Zeroed, and `fd_path` leaves its last byte alone: NUL-terminated.
        let spelled = match sys::fd_path(fd, &mut target) {
            Some(n) => CPath::new(&target[..=n]).unwrap_or(CPath::EMPTY),
            None => CPath::EMPTY,
        };
        let target = spelled.bytes();
        if !target.is_empty() {
            let verdict = resolve::with_scratch(|s| {
                decide_exec(active, call, libc::AT_FDCWD, spelled, argv, s, None)
            });
            if verdict != Verdict::Allow {
                return verdict;
            }
        }
        drift_exec(active, call, Object::Fd(fd), target, argv)
    })
}

/// What an exec runs: a path (relative to a directory descriptor) or an
/// open descriptor (`fexecve`, `execveat` with `AT_EMPTY_PATH`).
#[derive(Clone, Copy)]
pub(super) enum Object<'a> {
    At(c_int, &'a [u8]),
    Fd(c_int),
    /// A held directory and name; when that reaches nothing (a deleted
    /// file or a memfd decided on its stale path, run by its descriptor:
    /// `run_deleted`), the object the spelled `(dirfd, path)` reaches.
    Held(c_int, &'a [u8], c_int, &'a [u8]),
}

/// The policy's `drift` action for running `object` (spelled `target` in
/// the event), once the rules allowed it.
pub(super) fn drift_exec(
    active: &'static Active,
    call: Call,
    object: Object<'_>,
    target: &[u8],
    argv: Argv,
) -> Verdict {
    match active.table.drift() {
        None | Some(Action::Allow) => Verdict::Allow,
        Some(action) => drift_exec_checked(active, call, object, target, argv, action),
    }
}

/// [`drift_exec`] when the policy acts on drift: apart and never inlined,
/// so that its record (4.6 KB of stack) is no stack page every exec check
/// writes (a stack probe; in a forked child, a fault).
#[inline(never)]
pub(super) fn drift_exec_checked(
    active: &'static Active,
    call: Call,
    object: Object<'_>,
    target: &[u8],
    argv: Argv,
    action: Action,
) -> Verdict {
    let verdict = match object {
        Object::At(dirfd, path) => drift::verdict_at(dirfd, path, Use::Exec),
        Object::Held(dir, name, dirfd, path) => drift::verdict_at(dir, name, Use::Exec)
            .or_else(|| drift::verdict_at(dirfd, path, Use::Exec)),
        Object::Fd(fd) => Some(drift::verdict_for_fd(fd, Use::Exec)),
    };
    match verdict {
        Some(Drift::Drifted(reason)) => {
            let ignored = active.table.is_ignored(call);
            check::drifted(active, call.name(), ignored, action, reason, |r| {
                r.target = Inline::from_bytes(target);
                record_args(r, argv);
            })
        }
        Some(Drift::NoManifest) => {
            if let Some(why) = drift::inert_reason() {
                check::drift_inert(why);
            }
            Verdict::Allow
        }
        // Unreachable or not runnable: the exec fails by itself.
        None | Some(Drift::Known | Drift::NotRunnable) => Verdict::Allow,
    }
}

/// The rules' decision on an exec of `given` (relative to `dirfd`).
/// With `hold` (and a policy whose exec rules look at paths), the object
/// decided on is held for the exec (`Hold`): the directory of the spelled
/// path when `openat2` proves it has no link (one system call, which
/// replaces the probe that proved it), else the directory of the kernel's
/// path of the object; `resolve` skips the first (the name itself was a
/// link).
pub(super) fn decide_exec(
    active: &'static Active,
    call: Call,
    dirfd: c_int,
    spelled: CPath<'_>,
    argv: Argv,
    s: &mut resolve::Scratch,
    hold: Option<(&mut Hold, bool)>,
) -> Verdict {
    let given = spelled.bytes();
    let (scratch, abs, res) = (&mut s.a, &mut s.b, &mut s.c);
    let needs = holds_objects(active);
    let base = Request::new(Kind::Exec, call, active.program);
    let fill = |r: &mut Record| record_args(r, argv);
    let (mut hold, resolve_first) = match hold {
        Some((h, resolve)) if needs => (Some(h), resolve),
        _ => (None, false),
    };
    let Some(abs) = resolve::lexical(dirfd, given, scratch, abs) else {
        let req = Request {
            path: Some(given),
            ..base
        };
        if !needs {
            return judge(active, &req, fill);
        }
        return match resolve::kernel_path_c(dirfd, spelled, true, scratch, res) {
            Found::Path => {
                let req = Request {
                    path: Some(res.as_bytes()),
                    ..base
                };
                if let Some(h) = hold {
                    *h = Hold::of_path(res.as_bytes(), given, scratch);
                }
                judge(active, &req, fill)
            }
            // Nothing to run: the exec fails by itself.
            Found::Unreachable => {
                if let Some(h) = hold {
                    *h = Hold::without_name(dirfd, spelled);
                }
                Verdict::Allow
            }
            // No name a rule can use: the spelling decides.
            Found::Nameless => {
                if let Some(h) = hold {
                    *h = Hold::without_name(dirfd, spelled);
                }
                judge(active, &req, fill)
            }
            Found::Unknown => unresolvable(active, &req),
        };
    };
    let req = Request {
        path: Some(abs),
        ..base
    };
    if !needs {
        return judge(active, &req, fill);
    }
    match hold {
        Some(ref mut h) if !resolve_first => match Held::spelled(dirfd, given, scratch) {
            Ok(held) => {
                **h = Hold::Held(held);
                return judge(active, &req, fill);
            }
            // A link on the way (`/bin` on merged-/usr systems): the
            // directory held through it, decided on its kernel path.
            Err(e) if resolve::pins(e) => {
                let mut short = [0u8; SHORT_PATH];
                if let Some((held, n)) = Held::through_links(dirfd, given, scratch, &mut short) {
                    **h = Hold::Held(held);
                    let req = Request {
                        resolved_path: Some(&short[..n]).filter(|r| *r != abs),
                        ..req
                    };
                    return judge(active, &req, fill);
                }
            }
            // No descriptor: the kernel's path, by a walk if need be.
            Err(e) if resolve::no_descriptor(e) => {}
            Err(e) => {
                **h = Hold::Failed(e);
                return judge(active, &req, fill);
            }
        },
        Some(_) => {}
        None => {
            if resolve::without_links_c(dirfd, spelled, true) {
                return judge(active, &req, fill);
            }
        }
    }
    // The usual answer (an existing program, a short path) on this frame's
    // stack; anything else through the scratch buffers.
    let mut short = [0u8; SHORT_PATH];
    let resolved = match resolve::kernel_path_short(dirfd, spelled, true, &mut short) {
        Some(n) => Some(&short[..n]),
        None => match resolve::kernel_path_c(dirfd, spelled, true, scratch, res) {
            Found::Path => Some(res.as_bytes()),
            // Nothing to run, or no name a rule can use: the spelling decides.
            Found::Unreachable | Found::Nameless => None,
            Found::Unknown => return unresolvable(active, &req),
        },
    };
    if let Some(h) = hold {
        *h = match resolved {
            Some(p) => Hold::of_path(p, given, scratch),
            None => Hold::without_name(dirfd, spelled),
        };
    }
    let req = Request {
        resolved_path: resolved.filter(|r| *r != abs),
        ..req
    };
    judge(active, &req, fill)
}

/// The stack buffer for an exec's kernel path ([`decide_exec`]): longer
/// ones are read into the scratch area.
pub(super) const SHORT_PATH: usize = 256;

pub(super) fn record_args(r: &mut Record, argv: Argv) {
    if argv.is_null() {
        return;
    }
    for i in 0..256 {
        // SAFETY: argv is a NULL-terminated array of C strings.
        let arg = unsafe { *argv.add(i) };
        // SAFETY: each entry is NUL-terminated.
        let Some(bytes) = (unsafe { cstr(arg) }) else {
            break;
        };
        if i > 0 && !r.args.push(b"\0") || !r.args.push(bytes) {
            break;
        }
    }
}
