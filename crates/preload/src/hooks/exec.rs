//! Exec hooks. The target is checked as given (made absolute; for the `p`
//! variants, found along `PATH` as libc will) and as resolved (`/bin/sh` and
//! `/usr/bin/dash`). Queued events are flushed before the image is
//! replaced.

use crate::decide::check::{self, fail, judge, run, unresolvable, Verdict};
use crate::decide::drift::{self, Drift, Use};
use crate::decide::resolve::{self, CPath, Found, PathBuf};
use crate::events::emit;
use crate::events::record::{Inline, Record};
use crate::load::state::Active;
use crate::os::real::next;
use crate::os::sys::{self, cstr, raw_syscall};
use crate::process::script_comm::{self, Who};
use ldguard_policy::{Access, Action, Call, Kind, Request};
use libc::{c_char, c_int, c_long, pid_t, posix_spawn_file_actions_t, posix_spawnattr_t, FILE};
use std::ptr::null_mut;

type Argv = *const *const c_char;

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
const MAX_CHAIN: u8 = 5;

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
fn check_chain(
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
struct ChainBufs([PathBuf; 4]);

const _: () = assert!(std::mem::size_of::<ChainBufs>() <= crate::os::guard::CHAIN_BYTES);
const _: () = assert!(std::mem::align_of::<ChainBufs>() <= 8);

/// No scratch area could be mapped (out of memory or address space).
#[cold]
#[inline(never)]
fn chain_on_stack(
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

fn chain(
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
            Some(Hold::Held(h)) => (h.dir, h.name_ptr(), libc::O_NOFOLLOW),
            _ => (dirfd, path.ptr(), 0),
        };
        match runs_next(active, head_of, path, argv, loader_arg, next, line_arg) {
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

/// What an allowed exec runs, held by the check that allowed it, so that
/// the program run is the program decided on: a symlink swapped between
/// the check and the exec cannot redirect it (`tests/path_races.rs`).
///
/// An object is held as its directory, opened without following any link,
/// and its name there, and run with `execveat(dir, name,
/// AT_SYMLINK_NOFOLLOW)`: the kernel runs what is named so inside the held
/// directory (a rename there needs write access to it, where anything
/// could have been put under that name anyway). `comm`, argv and
/// `/proc/self/exe` are what a plain exec gives. A `#!` script is not run
/// through the kernel's script handler (it would hand the interpreter
/// `/dev/fd/N/name`, which a close-on-exec descriptor makes fail with
/// `ENOENT`): its interpreter is held and run with the arguments the
/// kernel builds (`Plan::run`).
pub struct Plan {
    /// The file the exec names.
    file: Hold,
    /// A `#!` script's interpreter.
    interp: Hold,
    /// The file is a script: its `#!` line and those of interpreters that
    /// are scripts themselves, in that order.
    script: bool,
    lines: Lines,
    /// Not emulated, run by path: the loader run as a program by a `#!`
    /// line, or more scripts than the kernel follows.
    nested: bool,
    /// Decide through the kernel's path of the object even when the
    /// spelled directories hold no link (the name itself was a link).
    resolve: bool,
}

/// How an object of [`Plan`] is held.
// The name lies inline: boxing it would allocate in an exec hook (a vfork
// child, a signal handler).
#[allow(clippy::large_enum_variant)]
pub enum Hold {
    /// Not held: no exec rule looks at paths (any object gets the same
    /// decision), or the check did not run.
    None,
    Held(Held),
    /// Nothing to run: the exec fails with this errno (what the kernel
    /// said when the object was looked up).
    Failed(c_int),
}

/// A held directory and a name in it (see [`Plan`]).
pub struct Held {
    dir: c_int,
    /// `dir` was opened here (else it is the caller's `dirfd`).
    owned: bool,
    /// NUL-terminated.
    name: [u8; NAME_CAP],
    /// The object itself held (`dir`) and run with `AT_EMPTY_PATH`: an
    /// object with no name (a memfd behind `/proc/self/fd/N`).
    empty: bool,
    /// Decided on the directory held and the name as spelled, the name
    /// not looked at: a link there makes the exec fail with `ELOOP`, and
    /// the exec is decided again through the kernel's path.
    lexical: bool,
    /// `name` is a link to the object's name in the same directory,
    /// followed by the exec (see [`Hold::of_path`]).
    follow: bool,
}

/// The longest name in a directory, with its NUL.
const NAME_CAP: usize = 256;

/// A `#!` line as the kernel splits it: the interpreter's name and its
/// argument, each NUL-terminated in `text` (both came out of one
/// `HEAD`-byte head).
#[derive(Clone, Copy)]
struct Line {
    text: [u8; HEAD],
    /// Where the argument starts in `text`; 0: none (the name, never
    /// empty, comes first). All zero bytes are a valid empty line.
    arg: usize,
}

/// The kernel follows five levels of `#!` (fs/exec.c, `exec_binprm`).
const MAX_SCRIPTS: usize = 5;

/// A plan's `#!` lines: the file's inline, an interpreter's own (a
/// script run by a script, rare) in a mapping made when one is found,
/// so that every exec's stack frame stays as small as it was (1 KiB
/// more of it was one more copied stack page per forked child). A vfork
/// child whose exec succeeds leaves that page to its parent, as
/// `with_words` does.
struct Lines {
    first: Line,
    deeper: *mut [Line; MAX_SCRIPTS - 1],
    len: usize,
}

impl Lines {
    const DEEPER_BYTES: usize = std::mem::size_of::<[Line; MAX_SCRIPTS - 1]>();

    fn new() -> Lines {
        Lines {
            first: Line {
                text: [0; HEAD],
                arg: 0,
            },
            deeper: std::ptr::null_mut(),
            len: 0,
        }
    }

    /// The next line to fill, counted in; `None` past the kernel's depth
    /// (or with no memory for it).
    fn push(&mut self) -> Option<&mut Line> {
        let at = self.len;
        if at == 0 {
            self.len = 1;
            return Some(&mut self.first);
        }
        if self.deeper.is_null() {
            self.deeper = sys::map_anonymous(Self::DEEPER_BYTES)?.cast();
        }
        // SAFETY: `deeper` is this plan's own zero-filled mapping of
        // `DEEPER_BYTES` (all zero bytes are valid lines), aligned to a
        // page, unmapped only on drop.
        let line = unsafe { &mut *self.deeper }.get_mut(at - 1)?;
        self.len += 1;
        Some(line)
    }

    /// The lines, last first.
    fn last_first(&self) -> impl Iterator<Item = &Line> {
        let deeper: &[Line] = if self.deeper.is_null() {
            &[]
        } else {
            // SAFETY: as in `push`; the lines past `first` it filled.
            unsafe { &*self.deeper }
        };
        let filled = deeper.get(..self.len.saturating_sub(1)).unwrap_or_default();
        let first = std::iter::once(&self.first).take(self.len);
        filled.iter().rev().chain(first)
    }
}

impl Drop for Lines {
    fn drop(&mut self) {
        if !self.deeper.is_null() {
            sys::unmap(self.deeper.cast(), Self::DEEPER_BYTES);
        }
    }
}

impl Plan {
    pub fn new() -> Plan {
        Plan {
            file: Hold::None,
            interp: Hold::None,
            script: false,
            lines: Lines::new(),
            nested: false,
            resolve: false,
        }
    }

    fn push_line(&mut self, name: &[u8], arg: Option<&[u8]>) {
        self.script = true;
        let Some(line) = self.lines.push() else {
            self.nested = true;
            return;
        };
        line.arg = 0;
        // Both come out of a `HEAD`-byte buffer, with a separator between.
        if name.len() + arg.map_or(0, |a| a.len() + 1) + 1 > HEAD {
            return;
        }
        let Some(at) = sys::put_cstr(&mut line.text, 0, name) else {
            return;
        };
        if let Some(arg) = arg {
            if sys::put_cstr(&mut line.text, at, arg).is_some() {
                line.arg = at;
            }
        }
    }
}

impl Hold {
    fn failed(&self) -> bool {
        matches!(self, Hold::Failed(_))
    }

    /// An interpreter found to be a script itself, before its own
    /// interpreter is held in its place: the kernel runs only a script it
    /// may execute (`EACCES` otherwise, as its exec would fail).
    fn intermediate(&self) -> Hold {
        match self {
            Hold::Held(h) => {
                // SAFETY: a held directory and a NUL-terminated name; not hooked.
                let r =
                    unsafe { libc::faccessat(h.dir, h.name_ptr(), libc::X_OK, libc::AT_EACCESS) };
                if r == 0 {
                    Hold::None
                } else {
                    Hold::Failed(sys::errno())
                }
            }
            Hold::Failed(e) => Hold::Failed(*e),
            Hold::None => Hold::None,
        }
    }

    /// Holds the directory of `path`, an absolute kernel path with no
    /// link in it (the kernel's own name of an object), refusing every
    /// link on the way: a directory swapped for a link since is not
    /// followed. `spelled`: the exec's path as given.
    ///
    /// The kernel names the process (`comm`) after the last name of the
    /// path it was given: when that name is a link to a name beside it in
    /// the same directory (`/usr/bin/python3` to `python3.11`, `/bin/sh`
    /// to `dash`), the link is held instead and followed by the exec:
    /// both names lie in the held directory, where a change needs write
    /// access to it as a rename of the program itself does.
    fn of_path(path: &[u8], spelled: &[u8], scratch: &mut PathBuf) -> Hold {
        let mut parts = path.rsplitn(2, |&b| b == b'/');
        let (Some(name), Some(dir)) = (parts.next(), parts.next()) else {
            return Hold::Failed(libc::ENOENT);
        };
        let dir: &[u8] = if dir.is_empty() { b"/" } else { dir };
        let mut held = match Held::open(libc::AT_FDCWD, dir, name, false, scratch) {
            Ok(h) => h,
            Err(e) => return Hold::Failed(e),
        };
        let link = sys::last_name(spelled);
        if !link.is_empty() && link != name && link.len() < NAME_CAP && link != b".." {
            held.follow_link_to(link, name);
        }
        Hold::Held(held)
    }

    /// `(dirfd, path)` reached nothing a path rule can name: it failed
    /// (the kernel's errno), or it is an object without a name, held
    /// itself if it still has none.
    fn without_name(dirfd: c_int, path: CPath<'_>) -> Hold {
        let fd = sys::open_path(dirfd, path.ptr(), 0);
        if fd < 0 {
            return Hold::Failed(sys::errno());
        }
        let mut link = [0u8; 64];
        if sys::fd_path(fd, &mut link).is_some() {
            // It has a name now: swapped since it was decided.
            sys::close(fd);
            return Hold::Failed(libc::ENOENT);
        }
        Hold::Held(Held::object(fd))
    }
}

impl Held {
    /// The directory of `(dirfd, path)` as spelled, refusing every link
    /// on the way (`openat2`), and the last name; the error is the
    /// kernel's (`ELOOP`: a link on the way).
    fn spelled(dirfd: c_int, path: &[u8], scratch: &mut PathBuf) -> Result<Held, c_int> {
        let (dir, at) = resolve::split_last(path);
        if dir.is_empty() && at == 0 {
            // One name, relative to `dirfd` (or `/` itself).
            let mut held = Held::named(dirfd, false, path)?;
            held.lexical = true;
            return Ok(held);
        }
        let mut held = Held::open(dirfd, dir, &path[at..], true, scratch)?;
        held.lexical = true;
        Ok(held)
    }

    /// [`Held::spelled`] where the directory's spelling has a link: the
    /// directory held following it (`openat`), its kernel path and the
    /// last name written to `out` (the path decided on), its length
    /// returned. `None`: a last name that is not a plain name, or a path
    /// that does not fit; the caller resolves the whole path.
    fn through_links(
        dirfd: c_int,
        path: &[u8],
        scratch: &mut PathBuf,
        out: &mut [u8],
    ) -> Option<(Held, usize)> {
        let (dir, at) = resolve::split_last(path);
        let name = &path[at..];
        if dir.is_empty() || name.contains(&b'/') || name == b"." || name == b".." {
            return None;
        }
        scratch.set(&[dir])?;
        let flags = libc::O_PATH | libc::O_DIRECTORY;
        let fd = sys::openat_quiet(dirfd, scratch.c_path().ptr(), flags).ok()?;
        let mut held = Held::named(fd, true, name).ok()?;
        held.lexical = true;
        let n = sys::fd_link_raw(held.dir, out);
        if n <= 0 || n as usize >= out.len() {
            return None;
        }
        let n = sys::link_name(out, n as usize)?;
        let at = if n == 1 { 1 } else { n + 1 };
        if at + name.len() >= out.len() {
            return None;
        }
        out[at - 1] = b'/';
        out[at..at + name.len()].copy_from_slice(name);
        Some((held, at + name.len()))
    }

    fn open(
        dirfd: c_int,
        dir: &[u8],
        name: &[u8],
        spelled: bool,
        scratch: &mut PathBuf,
    ) -> Result<Held, c_int> {
        if name.len() >= NAME_CAP {
            return Err(libc::ENAMETOOLONG);
        }
        scratch.set(&[dir]).ok_or(libc::ENAMETOOLONG)?;
        let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
        let fd = if resolve::openat2_usable() {
            resolve::openat2_raw(dirfd, scratch.c_path().ptr(), flags, 0, resolve::NO_LINKS)?
        } else if spelled {
            // No `openat2`: nothing proves the spelling has no link.
            return Err(libc::ENOSYS);
        } else {
            // The kernel's own path, opened refusing a final link only
            // (kernels before 5.6).
            sys::openat_quiet(dirfd, scratch.c_path().ptr(), flags | libc::O_NOFOLLOW)?
        };
        Held::named(fd, true, name).inspect_err(|_| sys::close(fd))
    }

    /// The object itself, held by `fd` (owned), run with `AT_EMPTY_PATH`.
    fn object(fd: c_int) -> Held {
        Held {
            dir: fd,
            owned: true,
            name: [0; NAME_CAP],
            empty: true,
            lexical: false,
            follow: false,
        }
    }

    fn named(dir: c_int, owned: bool, name: &[u8]) -> Result<Held, c_int> {
        if name.len() >= NAME_CAP {
            return Err(libc::ENAMETOOLONG);
        }
        let mut held = Held {
            dir,
            owned,
            name: [0; NAME_CAP],
            empty: false,
            lexical: false,
            follow: false,
        };
        held.name[..name.len()].copy_from_slice(name);
        Ok(held)
    }

    fn name(&self) -> &[u8] {
        let n = self.name.iter().position(|&b| b == 0).unwrap_or(0);
        &self.name[..n]
    }

    fn name_ptr(&self) -> *const c_char {
        self.name.as_ptr().cast()
    }

    /// `/proc/self/fd/D/name` (`/proc/self/fd/D` for an object held
    /// itself), NUL-terminated: the held object's name in any process
    /// that shares this descriptor table or a copy of it. When the spawn's
    /// file actions close or replace `D` before the exec, the name goes
    /// through this process's own table, `/proc/PID/fd/D/name`: libc's
    /// spawn returns only once the child has exec'd, and `D` stays open
    /// here until then. `None` when neither names it.
    fn proc_path(&self, actions: *const posix_spawn_file_actions_t) -> Option<[u8; 32 + NAME_CAP]> {
        if !self.owned {
            return None;
        }
        let mut link = [0u8; 32];
        let n = if !actions.is_null() && spawn_actions::iter(actions).any(|a| a.closes(self.dir)) {
            own_fd_path(self.dir, &mut link)?
        } else {
            sys::proc_fd_path(self.dir, &mut link)
        };
        let mut out = [0u8; 32 + NAME_CAP];
        out[..n].copy_from_slice(&link[..n]);
        if !self.empty {
            let name = self.name();
            out[n] = b'/';
            out[n + 1..n + 1 + name.len()].copy_from_slice(name);
        }
        Some(out)
    }

    /// Holds `link` instead of the name when it is a link in the held
    /// directory to exactly that name (see [`Hold::of_path`]).
    fn follow_link_to(&mut self, link: &[u8], name: &[u8]) {
        let mut z = [0u8; NAME_CAP];
        z[..link.len()].copy_from_slice(link);
        let mut target = [0u8; NAME_CAP];
        let n = sys::readlinkat_quiet(self.dir, z.as_ptr().cast(), &mut target);
        if n > 0 && target[..n as usize] == *name {
            self.name = z;
            self.follow = true;
        }
    }

    /// Runs the held object; returns only on failure, with the errno.
    fn exec(&self, argv: Argv, envp: Argv) -> c_int {
        let flags = if self.empty {
            libc::AT_EMPTY_PATH
        } else if self.follow {
            0
        } else {
            libc::AT_SYMLINK_NOFOLLOW
        };
        let e = self.exec_with(flags, argv, envp);
        if e == libc::ELOOP
            && flags == libc::AT_SYMLINK_NOFOLLOW
            && !self.lexical
            && !self.is_link()
        {
            // `ELOOP` for a name that is no link: an `execveat` that
            // cannot refuse a final link (valgrind's fails every relative
            // name so). The name was the kernel's own, and is still no
            // link: run it as named.
            return self.exec_with(0, argv, envp);
        }
        e
    }

    /// The kernel refused the held name with `ENOENT` though it is no
    /// script: a `binfmt_misc` format whose interpreter opens the file by
    /// name (no `O` flag) refuses `/dev/fd/N/name` of a close-on-exec
    /// descriptor as the script handler does (or the program's own loader
    /// is missing: the same `ENOENT` again). Run through a copy of the
    /// directory's descriptor that stays open across the exec, which that
    /// interpreter can open; the program then has that descriptor open.
    #[cold]
    #[inline(never)]
    fn run_inheritable(&self, argv: Argv, envp: Argv) -> Ran {
        let dir = if self.dir == libc::AT_FDCWD {
            libc::AT_FDCWD
        } else {
            let fd = sys::syscall6(
                libc::SYS_fcntl,
                [self.dir as c_long, libc::F_DUPFD as c_long, 3, 0, 0, 0],
            );
            if fd < 0 {
                return Ran::Failed(libc::ENOENT);
            }
            fd as c_int
        };
        let copy = Held {
            dir,
            owned: dir != libc::AT_FDCWD,
            name: self.name,
            empty: false,
            lexical: self.lexical,
            follow: self.follow,
        };
        match copy.exec(argv, envp) {
            libc::ELOOP if copy.lexical => Ran::Again,
            e => Ran::Failed(e),
        }
    }

    fn is_link(&self) -> bool {
        sys::readlinkat_quiet(self.dir, self.name_ptr(), &mut [0u8; 1]) >= 0
    }

    fn exec_with(&self, flags: c_int, argv: Argv, envp: Argv) -> c_int {
        let r = proceed(|| {
            sys::syscall6(
                libc::SYS_execveat,
                [
                    self.dir as c_long,
                    self.name.as_ptr() as c_long,
                    argv as c_long,
                    envp as c_long,
                    flags as c_long,
                    0,
                ],
            )
        });
        -r as c_int
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.owned {
            sys::close(self.dir);
        }
    }
}

/// `/proc/PID/fd/D` of this process, for a spawned child to reach `D`
/// through: `None` unless the kernel lets the child look there (this
/// process dumpable, and every user and group id one: the child has the
/// same credentials, and `/proc/PID/fd` asks what `ptrace` would) and the
/// name reaches `D`'s own object (a `/proc` of this process's pid
/// namespace). Only spawns whose file actions close `D` come here.
#[cold]
#[inline(never)]
fn own_fd_path(fd: c_int, out: &mut [u8; 32]) -> Option<usize> {
    if sys::syscall6(
        libc::SYS_prctl,
        [libc::PR_GET_DUMPABLE as c_long, 0, 0, 0, 0, 0],
    ) != 1
    {
        return None;
    }
    for nr in [libc::SYS_getresuid, libc::SYS_getresgid] {
        let mut ids: [libc::uid_t; 3] = [0; 3];
        let [a, b, c] = ids.each_mut().map(|id| id as *mut libc::uid_t as c_long);
        if sys::syscall6(nr, [a, b, c, 0, 0, 0]) != 0 || ids[1] != ids[0] || ids[2] != ids[0] {
            return None;
        }
    }
    let n = sys::proc_pid_fd_path(sys::getpid(), fd, out)?;
    let there = sys::fstatat(libc::AT_FDCWD, out.as_ptr().cast(), 0).ok()?;
    let here = sys::fstatat(fd, c"".as_ptr(), libc::AT_EMPTY_PATH).ok()?;
    (there.st_dev == here.st_dev && there.st_ino == here.st_ino).then_some(n)
}

/// What became of an exec run from its [`Plan`].
enum Ran {
    /// Failed with this errno.
    Failed(c_int),
    /// The name held turned out to be a link: decide again through the
    /// kernel's path.
    Again,
    /// Nothing held: run by path.
    ByPath,
}

impl Plan {
    /// Whether a name held without being looked at (`Held::lexical`) is
    /// a link (which an exec through `/proc/self/fd/D/name` follows).
    fn names_a_link(&self) -> bool {
        [&self.file, &self.interp].iter().any(|h| match h {
            Hold::Held(h) if h.lexical => h.is_link(),
            _ => false,
        })
    }

    /// Runs what the check held; returns only when it did not run.
    /// `filename`: the script's name as the kernel would hand it to the
    /// interpreter (the exec's path as given).
    fn run(&self, filename: *const c_char, argv: Argv, envp: Argv) -> Ran {
        let file = match &self.file {
            Hold::None => return Ran::ByPath,
            Hold::Failed(e) => return Ran::Failed(*e),
            Hold::Held(h) => h,
        };
        let e = file.exec(argv, envp);
        match e {
            libc::ELOOP if file.lexical => Ran::Again,
            // A seccomp profile that refuses `execveat`.
            libc::ENOSYS => Ran::ByPath,
            // The kernel's script handler refuses `/dev/fd/N/name` of a
            // close-on-exec descriptor, after checking that the script
            // may be executed: the interpreter is run as it would have.
            libc::ENOENT if self.script => self.run_interpreter(filename, argv, envp),
            libc::ENOENT if !file.lexical && !file.empty => {
                match run_deleted(file, filename, argv, envp) {
                    Some(ran) => ran,
                    None => file.run_inheritable(argv, envp),
                }
            }
            e => Ran::Failed(e),
        }
    }

    #[cold]
    #[inline(never)]
    fn run_interpreter(&self, filename: *const c_char, argv: Argv, envp: Argv) -> Ran {
        if self.nested {
            return Ran::ByPath;
        }
        let interp = match &self.interp {
            Hold::None => return Ran::ByPath,
            Hold::Failed(e) => return Ran::Failed(*e),
            Hold::Held(h) => h,
        };
        let who = Who::This(sys::getpid());
        let e = self.with_interpreter_args(filename, who, argv, envp, |args, env| {
            interp.exec(args, env)
        });
        match e {
            libc::ELOOP if interp.lexical => Ran::Again,
            e => Ran::Failed(e),
        }
    }
}

impl Plan {
    /// Calls `f` with what the kernel's script handler hands the
    /// interpreter (fs/binfmt_script.c: argv[0] replaced by the
    /// interpreter's name, its argument and the script's name as the exec
    /// was given it, `filename`), and `envp` with the variable that names
    /// `who` after the script (the kernel would name the process after
    /// the interpreter; the new process's library names it back:
    /// `process::script_comm`).
    fn with_interpreter_args(
        &self,
        filename: *const c_char,
        who: Who,
        argv: Argv,
        envp: Argv,
        f: impl FnOnce(Argv, Argv) -> c_int,
    ) -> c_int {
        // The last interpreter's name and argument, then each earlier
        // line's (the name of the script it runs), then the file's name.
        // (No indexing: a panic location is one more relocated page.)
        let mut words: [*const c_char; 2 * MAX_SCRIPTS + 1] = [filename; 2 * MAX_SCRIPTS + 1];
        let parts = self.lines.last_first().flat_map(|line| {
            let text = line.text.as_ptr();
            [
                Some(text),
                (line.arg != 0).then(|| text.wrapping_add(line.arg)),
            ]
        });
        let mut n = 0;
        for (slot, part) in words.iter_mut().zip(parts.flatten()) {
            *slot = part.cast();
            n += 1;
        }
        let lead = words.get(..=n).unwrap_or(&words);
        let mut marker = [0u8; script_comm::MARKER_LEN];
        let marker = script_comm::marker(who, bytes(filename), &mut marker);
        with_argv(lead, argv, |args| {
            with_words(&[marker], envp, |env| f(args, env))
        })
    }
}

/// The object decided was a deleted file or a memfd (reached through
/// `/proc/self/fd/N`): its kernel path names nothing in its directory, so
/// the held name was not found. The object is held itself and run with
/// `AT_EMPTY_PATH` if it is still such an object under the name decided;
/// `None` otherwise.
#[cold]
#[inline(never)]
fn run_deleted(decided: &Held, filename: *const c_char, argv: Argv, envp: Argv) -> Option<Ran> {
    let fd = sys::open_path(libc::AT_FDCWD, filename, 0);
    if fd < 0 {
        return None;
    }
    let held = Held::object(fd);
    let mut link = [0u8; resolve::PATH_CAP];
    let n = sys::fd_link_raw(fd, &mut link);
    if n <= 0 || n as usize >= link.len() {
        return None;
    }
    let link = &link[..n as usize];
    let gone = link.ends_with(b" (deleted)") || link.starts_with(b"/memfd:");
    let name = link.strip_suffix(b" (deleted)").unwrap_or(link);
    if !gone || !name.ends_with(decided.name()) {
        return None;
    }
    Some(Ran::Failed(held.exec(argv, envp)))
}

/// Calls `f` with the argument vector `lead` followed by `argv[1..]`,
/// NULL-terminated: on the stack when it fits, else in a fresh mapping
/// (no allocator: this may run in a vfork child).
fn with_argv(lead: &[*const c_char], argv: Argv, f: impl FnOnce(Argv) -> c_int) -> c_int {
    // SAFETY: argv is NULL or a NULL-terminated array (the exec's
    // contract): past a first entry lies at least its NULL.
    let tail = if argv.is_null() || unsafe { (*argv).is_null() } {
        std::ptr::null()
    } else {
        // SAFETY: as above.
        unsafe { argv.add(1) }
    };
    with_words(lead, tail, f)
}

/// Calls `f` with the vector `lead` followed by all of `tail` (NULL or
/// NULL-terminated), NULL-terminated, as [`with_argv`] builds it.
fn with_words(lead: &[*const c_char], tail: Argv, f: impl FnOnce(Argv) -> c_int) -> c_int {
    let mut rest = 0;
    if !tail.is_null() {
        // SAFETY: tail is a NULL-terminated array (the caller's promise).
        while unsafe { !(*tail.add(rest)).is_null() } {
            rest += 1;
        }
    }
    let total = lead.len() + rest + 1;
    let mut on_stack: [*const c_char; 512] = [std::ptr::null(); 512];
    let (words, mapped) = if total <= on_stack.len() {
        (on_stack.as_mut_ptr(), None)
    } else {
        let len = total * std::mem::size_of::<*const c_char>();
        let Some(p) = sys::map_anonymous(len) else {
            return libc::E2BIG;
        };
        (p.cast::<*const c_char>(), Some(len))
    };
    // SAFETY: `words` has room for `total` pointers (above); tail has
    // `rest` entries before its NULL.
    unsafe {
        for (i, w) in lead.iter().enumerate() {
            *words.add(i) = *w;
        }
        for i in 0..rest {
            *words.add(lead.len() + i) = *tail.add(i);
        }
        *words.add(total - 1) = std::ptr::null();
    }
    let e = f(words.cast_const());
    if let Some(len) = mapped {
        sys::unmap(words.cast(), len);
    }
    e
}

/// Where an exec's path starts and how its last name is taken: what
/// `execveat` adds to `execve`.
#[derive(Clone, Copy)]
struct At {
    dirfd: c_int,
    /// `AT_SYMLINK_NOFOLLOW`: a last name that is a link is not run
    /// (`ELOOP`); links on the way are followed.
    nofollow: bool,
    /// The script's name the kernel would hand an interpreter (the path
    /// as given, or `/dev/fd/N/path` relative to a descriptor).
    filename: *const c_char,
}

impl At {
    /// `execve`'s: from the current directory, a last link followed.
    fn cwd(path: *const c_char) -> At {
        At {
            dirfd: libc::AT_FDCWD,
            nofollow: false,
            filename: path,
        }
    }
}

/// An exec of `path` checked and run on the object decided ([`Plan`]);
/// returns only when it did not run: `Err(errno)` when the policy denied
/// it, else `Ok(errno)` of the failed exec.
fn exec_decided(
    call: Call,
    at: At,
    path: CPath<'_>,
    argv: Argv,
    envp: Argv,
) -> Result<c_int, c_int> {
    if at.nofollow && names_link(at.dirfd, path) {
        // The kernel's answer, before anything is looked at or decided.
        return Ok(libc::ELOOP);
    }
    let mut plan = Plan::new();
    loop {
        let verdict =
            run(|active| check_chain(active, call, at.dirfd, path, argv, Some(&mut plan)));
        if let Verdict::Deny(e) = verdict {
            return Err(e);
        }
        let ran = plan.run(at.filename, argv, envp);
        let resolve = plan.resolve;
        // (Only the file's own name: an interpreter's is followed.)
        let file_is_link = || matches!(&plan.file, Hold::Held(h) if h.lexical && h.is_link());
        if matches!(ran, Ran::Again) && at.nofollow && file_is_link() {
            // The last name held is a link now: not followed.
            return Ok(libc::ELOOP);
        }
        plan = Plan::new();
        match ran {
            Ran::Failed(e) => return Ok(e),
            Ran::Again if !resolve => plan.resolve = true,
            // A link again where the kernel's path had none: swapped
            // during this exec.
            Ran::Again => return Ok(libc::ELOOP),
            Ran::ByPath => {
                proceed(|| real_exec_at(at, path.ptr(), argv, envp));
                return Ok(sys::errno());
            }
        }
    }
}

/// Whether the last name of `(dirfd, path)` is a link (errno untouched).
fn names_link(dirfd: c_int, path: CPath<'_>) -> bool {
    sys::fstatat(dirfd, path.ptr(), libc::AT_SYMLINK_NOFOLLOW)
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK)
}

/// [`exec_hook_at`] of a path from the current directory (`execve`).
fn exec_hook(call: Call, path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    exec_hook_at(call, At::cwd(path), path, argv, envp)
}

/// [`exec_decided`] as a hook's answer: `-1` with errno. Checks off, or
/// no exec rule that looks at paths (every object gets the same
/// decision): checked and run by path, nothing held (a forked child
/// touches no page of the holding code).
fn exec_hook_at(call: Call, at: At, path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    if !holds_execs() {
        let spelled = c_path(path);
        if let Verdict::Deny(e) = check_exec(call, at.dirfd, spelled, argv) {
            return fail(e, -1);
        }
        return proceed(|| real_exec_at(at, path, argv, envp));
    }
    exec_decided_cold(call, at, c_path(path), argv, envp)
}

/// Whether execs are held ([`Plan`]): checks on and an exec rule that
/// looks at paths.
fn holds_execs() -> bool {
    crate::load::state::current()
        .is_some_and(|a| a.table.needs_resolution(Kind::Exec, Access::Read))
}

#[inline(never)]
fn exec_decided_cold(call: Call, at: At, path: CPath<'_>, argv: Argv, envp: Argv) -> c_int {
    match exec_decided(call, at, path, argv, envp) {
        Ok(e) | Err(e) => fail(e, -1),
    }
}

/// Where the dynamic loader run as a program finds its program.
#[derive(Clone, Copy)]
enum LoaderArg<'a> {
    /// The exec's own arguments (`ld.so [options] PROGRAM`).
    Argv,
    /// Started by a `#!` line: its one argument.
    Line(&'a [u8]),
    /// Started by a `#!` line without an argument: ld.so gets the script.
    None,
}

/// What else an exec of a file starts.
enum Next {
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
fn runs_next(
    active: &'static Active,
    (dirfd, name, nofollow): (c_int, *const c_char, c_int),
    given: CPath<'_>,
    argv: Argv,
    loader_arg: LoaderArg<'_>,
    next: &mut PathBuf,
    line_arg: &mut PathBuf,
) -> Next {
    if given.bytes().len() >= resolve::PATH_CAP {
        return Next::Nothing; // ENAMETOOLONG from the kernel
    }
    let pinned = sys::open_path(dirfd, name, nofollow);
    if pinned < 0 {
        return Next::Nothing; // the exec fails by itself
    }
    let mut head = [0u8; HEAD];
    let read = read_head(pinned, &mut head);
    // Only its last segment matters (a loader's name), so a short buffer.
    let mut link = [0u8; 256];
    let own = sys::fd_path(pinned, &mut link);
    sys::close(pinned);
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
    let is_loader = own.is_some_and(|n| sys::is_loader_path(link.get(..n).unwrap_or_default()));
    if head.starts_with(b"\x7fELF") && is_loader {
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
fn shebang(head: &[u8; HEAD]) -> Option<(&[u8], Option<&[u8]>)> {
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
const HEAD: usize = 256;

/// The first bytes of the file `pinned` (an `O_PATH` descriptor) holds,
/// read through a fresh descriptor of the same inode; `None` when it may
/// not be read or is not a regular file with an execute bit.
fn read_head(pinned: c_int, head: &mut [u8; HEAD]) -> Option<usize> {
    // SAFETY: an all-zero `stat` is a valid value to be overwritten.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    let st_ptr = &mut st as *mut libc::stat;
    // The system calls are made here, not through libc (its `fstat` and
    // `pread` are pages a forked child would fault in just for this).
    if raw_syscall(
        libc::SYS_fstat,
        [pinned as c_long, st_ptr as c_long, 0, 0, 0, 0],
    ) != 0
        || st.st_mode & libc::S_IFMT != libc::S_IFREG
        || st.st_mode & 0o111 == 0
    {
        return Some(0);
    }
    let mut link = [0u8; 32];
    sys::proc_fd_path(pinned, &mut link);
    let fd = raw_syscall(
        libc::SYS_openat,
        [
            libc::AT_FDCWD as c_long,
            link.as_ptr() as c_long,
            (libc::O_RDONLY | libc::O_CLOEXEC) as c_long,
            0,
            0,
            0,
        ],
    ) as c_int;
    if fd < 0 {
        return None;
    }
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
    sys::close(fd);
    (n >= 0).then_some(n as usize)
}

/// The program the dynamic loader is asked to run: `argv[1..]` past its
/// options (those of glibc's and musl's `ld.so` that take a value skip it).
fn loaded_program<'a>(argv: Argv) -> Option<&'a [u8]> {
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
enum Object<'a> {
    At(c_int, &'a [u8]),
    Fd(c_int),
    /// A held directory and name; when that reaches nothing (a deleted
    /// file or a memfd decided on its stale path, run by its descriptor:
    /// `run_deleted`), the object the spelled `(dirfd, path)` reaches.
    Held(c_int, &'a [u8], c_int, &'a [u8]),
}

/// The policy's `drift` action for running `object` (spelled `target` in
/// the event), once the rules allowed it.
fn drift_exec(
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
fn drift_exec_checked(
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
fn decide_exec(
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
    let needs = active.table.needs_resolution(Kind::Exec, Access::Read);
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
const SHORT_PATH: usize = 256;

fn record_args(r: &mut Record, argv: Argv) {
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

/// The shell `system` and `popen` run: `/bin/sh -c CMD`.
fn check_shell(call: Call, cmd: *const c_char) -> Verdict {
    let argv: [*const c_char; 4] = [c"sh".as_ptr(), c"-c".as_ptr(), cmd, std::ptr::null()];
    check_exec(call, libc::AT_FDCWD, SHELL, argv.as_ptr())
}

const SHELL: CPath<'static> = match CPath::new(b"/bin/sh\0") {
    Some(c) => c,
    None => CPath::EMPTY,
};

/// A path argument as given (null is treated as empty, and the real call
/// reports `EFAULT`).
fn c_path<'a>(p: *const c_char) -> CPath<'a> {
    // SAFETY: exec paths are NUL-terminated C strings (or null).
    unsafe { CPath::from_ptr(p) }
}

fn bytes<'a>(p: *const c_char) -> &'a [u8] {
    // SAFETY: exec paths are NUL-terminated (null is treated as empty,
    // and the real call reports EFAULT).
    unsafe { cstr(p) }.unwrap_or(b"")
}

/// After an allowed check: flush queued events, then run the real exec.
fn proceed<T>(f: impl FnOnce() -> T) -> T {
    before_exec();
    f()
}

/// Before an allowed exec replaces the image: write out queued events.
pub fn before_exec() {
    if !crate::load::state::is_off() {
        emit::flush_before_exec();
    }
}

type ExecveFn = unsafe extern "C" fn(*const c_char, Argv, Argv) -> c_int;

/// libc's `execve`: one cached lookup for every exec hook, made before
/// the first fork (see `real::EXECVE`).
fn next_execve() -> Option<ExecveFn> {
    crate::os::real::EXECVE.get().map(|p| {
        // SAFETY: the symbol is libc's `execve`, whose C signature
        // `ExecveFn` transcribes.
        unsafe { std::mem::transmute::<*mut std::ffi::c_void, ExecveFn>(p) }
    })
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn execve(path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    execve_hook(path, argv, envp)
}

/// `execve` as its hook makes it, also for `syscall(SYS_execve, …)`.
pub fn execve_hook(path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    exec_hook(Call::Execve, path, argv, envp)
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn execv(path: *const c_char, argv: Argv) -> c_int {
    exec_hook(Call::Execv, path, argv, environ())
}

/// `execvp`, `execvpe`, `execlp`: the `PATH` search is performed here, the
/// way glibc performs it, and each candidate goes through the checked
/// `execve`, so the file checked is the file the kernel runs (a directory
/// or a non-executable file of the same name earlier in `PATH` is skipped
/// by the kernel, not by the check). glibc's rules: a name with a slash is
/// not searched; an empty element is the current directory; `EACCES` is
/// remembered and reported when nothing ran; `ENOENT`, `ESTALE`,
/// `ENOTDIR`, `ENODEV`, `ETIMEDOUT` go on to the next element; any other
/// error stops; `ENOEXEC` runs the file with `/bin/sh`.
unsafe fn exec_search(call: Call, file: *const c_char, argv: Argv, envp: Argv) -> c_int {
    let name = bytes(file);
    if name.is_empty() {
        return fail(libc::ENOENT, -1);
    }
    if name.contains(&b'/') {
        return match try_exec(call, name, argv, envp, false) {
            Err(e) => fail(e, -1),
            Ok(()) => -1,
        };
    }
    if name.len() > 255 {
        return fail(libc::ENAMETOOLONG, -1);
    }
    // SAFETY: getenv reads the environment without allocating.
    let path_var = unsafe { cstr(libc::getenv(c"PATH".as_ptr())) }.unwrap_or(b"/bin:/usr/bin");
    let mut eacces = false;
    let mut candidate = PathBuf::new();
    for dir in path_var.split(|&b| b == b':') {
        let parts: [&[u8]; 3] = if dir.is_empty() {
            [name, b"", b""]
        } else {
            [dir, b"/", name]
        };
        if candidate.set(&parts).is_none() {
            continue;
        }
        if let Err(e) = try_exec(call, candidate.as_bytes(), argv, envp, true) {
            return fail(e, -1);
        }
        match sys::errno() {
            libc::EACCES => eacces = true,
            libc::ENOENT | libc::ESTALE | libc::ENOTDIR | libc::ENODEV | libc::ETIMEDOUT => {}
            _ => return -1,
        }
    }
    if eacces {
        sys::set_errno(libc::EACCES);
    }
    -1
}

/// One candidate of [`exec_search`]: checked, then run. Returns only when
/// it did not run: `Err(errno)` when the policy denied it (the search
/// stops), `Ok` with errno set by the failed exec. `probe`: a candidate
/// the kernel cannot reach is skipped without a check (a deny rule on a
/// directory earlier in `PATH` must not stop a search that passes it).
fn try_exec(call: Call, path: &[u8], argv: Argv, envp: Argv, probe: bool) -> Result<(), c_int> {
    let mut z = PathBuf::new();
    if z.set(&[path, b"\0"]).is_none() {
        sys::set_errno(libc::ENAMETOOLONG);
        return Ok(());
    }
    let spelled = CPath::new(z.as_bytes()).unwrap_or(CPath::EMPTY);
    let c_path = spelled.ptr();
    if probe {
        let fd = sys::open_path(libc::AT_FDCWD, c_path, 0);
        if fd < 0 {
            let e = sys::errno();
            if matches!(
                e,
                libc::ENOENT | libc::ENOTDIR | libc::EACCES | libc::ELOOP | libc::ENAMETOOLONG
            ) {
                return Ok(()); // errno is what the exec would have failed with
            }
        } else {
            sys::close(fd);
        }
    }
    let failed = exec_decided(call, At::cwd(c_path), spelled, argv, envp)?;
    sys::set_errno(failed);
    if failed != libc::ENOEXEC {
        return Ok(());
    }
    // glibc runs a file without `#!` or ELF header with the shell.
    let mut shell_argv: [*const c_char; 256] = [std::ptr::null(); 256];
    shell_argv[0] = c"/bin/sh".as_ptr();
    shell_argv[1] = c_path;
    let mut i = 1;
    while !argv.is_null() && i + 1 < shell_argv.len() - 1 {
        // SAFETY: argv is a NULL-terminated array.
        let a = unsafe { *argv.add(i) };
        if a.is_null() {
            break;
        }
        shell_argv[i + 1] = a;
        i += 1;
    }
    let failed = exec_decided(call, At::cwd(SHELL.ptr()), SHELL, shell_argv.as_ptr(), envp)?;
    sys::set_errno(failed);
    Ok(())
}

fn real_execve(path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    match next_execve() {
        // SAFETY: forwarding the caller's arguments.
        Some(f) => unsafe { f(path, argv, envp) },
        None => fail(libc::ENOSYS, -1),
    }
}

/// The exec as given, by path: `execve`, or `execveat` from a descriptor
/// or with `AT_SYMLINK_NOFOLLOW`.
fn real_exec_at(at: At, path: *const c_char, argv: Argv, envp: Argv) -> c_int {
    if at.dirfd == libc::AT_FDCWD && !at.nofollow {
        return real_execve(path, argv, envp);
    }
    let flags = if at.nofollow {
        libc::AT_SYMLINK_NOFOLLOW
    } else {
        0
    };
    real_execveat(at.dirfd, path, argv, envp, flags)
}

fn real_execveat(dirfd: c_int, path: *const c_char, argv: Argv, envp: Argv, flags: c_int) -> c_int {
    type F = unsafe extern "C" fn(c_int, *const c_char, Argv, Argv, c_int) -> c_int;
    match next!(execveat: F) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(dirfd, path, argv, envp, flags) },
        None => raw_syscall(
            libc::SYS_execveat,
            [
                dirfd as c_long,
                path as c_long,
                argv as c_long,
                envp as c_long,
                flags as c_long,
                0,
            ],
        ) as c_int,
    }
}

fn environ() -> Argv {
    extern "C" {
        static environ: *const *const c_char;
    }
    // SAFETY: reading libc's current environment pointer.
    unsafe { environ }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn execvp(file: *const c_char, argv: Argv) -> c_int {
    // SAFETY: same contract.
    unsafe { exec_search(Call::Execvp, file, argv, environ()) }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn execvpe(file: *const c_char, argv: Argv, envp: Argv) -> c_int {
    // SAFETY: same contract.
    unsafe { exec_search(Call::Execvpe, file, argv, envp) }
}

/// Target of the C shim's execl/execlp/execle, which collected the
/// argument list into `argv`.
///
/// # Safety
/// Called by the shim with a NULL-terminated argv.
#[no_mangle]
pub unsafe extern "C" fn ldguard_execl(
    which: c_int,
    path: *const c_char,
    argv: Argv,
    envp: Argv,
) -> c_int {
    let call = match which {
        0 => Call::Execl,
        // SAFETY: same contract.
        1 => return unsafe { exec_search(Call::Execlp, path, argv, envp) },
        _ => Call::Execle,
    };
    exec_hook(call, path, argv, envp)
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn fexecve(fd: c_int, argv: Argv, envp: Argv) -> c_int {
    if let Verdict::Deny(e) = check_exec_fd(Call::Fexecve, fd, argv) {
        return fail(e, -1);
    }
    // SAFETY: forwarding.
    proceed(
        || match next!(fexecve: unsafe extern "C" fn(c_int, Argv, Argv) -> c_int) {
            Some(f) => unsafe { f(fd, argv, envp) },
            None => fail(libc::ENOSYS, -1),
        },
    )
}

/// execveat is a glibc function only since 2.34.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn execveat(
    dirfd: c_int,
    path: *const c_char,
    argv: Argv,
    envp: Argv,
    flags: c_int,
) -> c_int {
    execveat_hook(dirfd, path, argv, envp, flags)
}

/// `execveat` as its hook makes it, also for `syscall(SYS_execveat, …)`:
/// a path (from the current directory, the root or a descriptor, a last
/// link followed or not) runs as `execve` runs one, on the object decided;
/// a descriptor's own object (`AT_EMPTY_PATH`, as `fexecve`) is checked
/// and run as given, and so are flags the kernel refuses (`EINVAL`).
pub fn execveat_hook(
    dirfd: c_int,
    path: *const c_char,
    argv: Argv,
    envp: Argv,
    flags: c_int,
) -> c_int {
    let given = c_path(path);
    let known = libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH;
    if flags & !known == 0 && !given.bytes().is_empty() {
        let nofollow = flags & libc::AT_SYMLINK_NOFOLLOW != 0;
        let from_cwd_or_root = dirfd == libc::AT_FDCWD || given.bytes().first() == Some(&b'/');
        if from_cwd_or_root {
            let at = At {
                dirfd: libc::AT_FDCWD,
                nofollow,
                filename: path,
            };
            return exec_hook_at(Call::Execveat, at, path, argv, envp);
        }
        return execveat_relative(dirfd, given, argv, envp, nofollow);
    }
    let verdict = if given.bytes().is_empty() && flags & libc::AT_EMPTY_PATH != 0 {
        check_exec_fd(Call::Execveat, dirfd, argv)
    } else {
        check_exec(Call::Execveat, dirfd, given, argv)
    };
    if let Verdict::Deny(e) = verdict {
        return fail(e, -1);
    }
    proceed(|| real_execveat(dirfd, path, argv, envp, flags))
}

/// A path relative to a descriptor: the name a script's interpreter gets
/// is the kernel's `/dev/fd/N/path` (which fails, as the kernel's own
/// does, when the descriptor is closed on exec).
#[inline(never)]
fn execveat_relative(
    dirfd: c_int,
    given: CPath<'_>,
    argv: Argv,
    envp: Argv,
    nofollow: bool,
) -> c_int {
    let mut filename = PathBuf::new();
    let mut number = [0u8; 32];
    let n = sys::proc_fd_path(dirfd, &mut number);
    let digits = number.get(b"/proc/self/fd/".len()..n).unwrap_or_default();
    if filename
        .set(&[b"/dev/fd/", digits, b"/", given.bytes()])
        .is_none()
    {
        return fail(libc::ENAMETOOLONG, -1);
    }
    let at = At {
        dirfd,
        nofollow,
        filename: filename.c_path().ptr(),
    };
    exec_hook_at(Call::Execveat, at, given.ptr(), argv, envp)
}

type SpawnFn = unsafe extern "C" fn(
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
struct Spawn {
    pid: *mut pid_t,
    actions: *const posix_spawn_file_actions_t,
    attr: *const posix_spawnattr_t,
    envp: Argv,
}

/// A spawn of `path` checked and run on the object decided ([`Plan`]).
/// libc's child makes the exec, out of the hooks' reach: it is handed a
/// path that names the held object through this process's descriptor,
/// `/proc/self/fd/D/name`, still open in the child at its exec (and
/// closed by it). A script's interpreter is spawned so, with the
/// arguments the kernel builds. The child follows a final link there:
/// a name held without being looked at is asked whether it is one
/// (`readlinkat`), and if so the spawn is decided on the kernel's path.
fn spawn_decided(call: Call, path: CPath<'_>, argv: Argv, spawn: &Spawn) -> c_int {
    let mut plan = Plan::new();
    let at = libc::AT_FDCWD;
    loop {
        let verdict = run(|active| check_chain(active, call, at, path, argv, Some(&mut plan)));
        if let Verdict::Deny(e) = verdict {
            return e;
        }
        if plan.resolve || !plan.names_a_link() {
            break;
        }
        plan = Plan::new();
        plan.resolve = true;
    }
    let by_path = || real_spawn(path.ptr(), argv, spawn);
    let file = match &plan.file {
        Hold::None => return by_path(),
        Hold::Failed(e) => return *e,
        Hold::Held(h) => h,
    };
    if !plan.script {
        return match file.proc_path(spawn.actions) {
            Some(named) => real_spawn(named.as_ptr().cast(), argv, spawn),
            None => by_path(),
        };
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
    // SAFETY: a held directory and a NUL-terminated name; not hooked.
    if unsafe { libc::faccessat(file.dir, file.name_ptr(), libc::X_OK, libc::AT_EACCESS) } != 0 {
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

fn real_spawn(path: *const c_char, argv: Argv, spawn: &Spawn) -> c_int {
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
fn find_runnable(name: &[u8], out: &mut PathBuf) -> Result<(), c_int> {
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
fn check_actions(call: Call, actions: *const posix_spawn_file_actions_t) -> Verdict {
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
                let v = super::borrowed::check_open_flags(call, dirfd, path, oflag);
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
enum Base {
    Cwd,
    Dir(c_int),
    /// A `chdir` action the child cannot carry out.
    Gone,
}

impl Base {
    fn fd(&self) -> c_int {
        match self {
            Base::Cwd => libc::AT_FDCWD,
            Base::Dir(fd) => *fd,
            // Relative paths from a failed chdir: the spawn fails first.
            Base::Gone => -1,
        }
    }

    fn set(&mut self, fd: c_int) {
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
mod spawn_actions {
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

/// `system(NULL)` only asks whether a shell exists and is not checked.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn system(cmd: *const c_char) -> c_int {
    if !cmd.is_null() {
        if let Verdict::Deny(e) = check_shell(Call::System, cmd) {
            return fail(e, -1);
        }
    }
    match next!(system: unsafe extern "C" fn(*const c_char) -> c_int) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(cmd) },
        None => fail(libc::ENOSYS, -1),
    }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn popen(cmd: *const c_char, mode: *const c_char) -> *mut FILE {
    if let Verdict::Deny(e) = check_shell(Call::Popen, cmd) {
        return fail(e, null_mut());
    }
    match next!(popen: unsafe extern "C" fn(*const c_char, *const c_char) -> *mut FILE) {
        // SAFETY: forwarding.
        Some(f) => unsafe { f(cmd, mode) },
        None => fail(libc::ENOSYS, null_mut()),
    }
}

/// `_exit` skips `atexit` handlers, and some programs always leave through
/// it (dash does): flush queued events first. Costs nothing when no event
/// is pending.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn _exit(status: c_int) -> ! {
    emit::flush(std::time::Duration::from_secs(1));
    if let Some(f) = next!(_exit: unsafe extern "C" fn(c_int) -> !) {
        // SAFETY: forwarding.
        unsafe { f(status) }
    }
    raw_syscall(libc::SYS_exit_group, [status as c_long, 0, 0, 0, 0, 0]);
    // SAFETY: exit_group does not return.
    unsafe { std::hint::unreachable_unchecked() }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn _Exit(status: c_int) -> ! {
    // SAFETY: same contract.
    unsafe { _exit(status) }
}

/// What the shim's `dlopen` passes on when drift denies a load: a name that
/// cannot exist, so the real `dlopen` fails with its usual `dlerror()`.
const DENIED_LIBRARY: &std::ffi::CStr =
    c"/proc/ldguard-blocked/loading this file is denied by the ldguard policy (drift)";

/// The shim's `dlopen` (in assembly, so the real one keeps the program's
/// return address) asks this first: the file name to load, the caller's
/// or [`DENIED_LIBRARY`].
///
/// # Safety
/// `file` is null or NUL-terminated.
#[no_mangle]
pub unsafe extern "C" fn ldguard_dlopen_check(file: *const c_char, mode: c_int) -> *const c_char {
    // SAFETY: null or NUL-terminated, per the contract.
    let Some(name) = (unsafe { cstr(file) }) else {
        return file; // dlopen(NULL): the program itself
    };
    if mode & libc::RTLD_NOLOAD != 0 || name.is_empty() {
        return file;
    }
    match run(|active| check_load(active, name)) {
        Verdict::Allow => file,
        Verdict::Deny(_) => DENIED_LIBRARY.as_ptr(),
    }
}

/// The next `dlopen` (libc's), or null.
#[no_mangle]
pub extern "C" fn ldguard_dlopen_next() -> *mut std::ffi::c_void {
    next!(dlopen: unsafe extern "C" fn(*const c_char, c_int) -> *mut std::ffi::c_void)
        .map_or(null_mut(), |f| f as *mut std::ffi::c_void)
}

/// Drift for a library about to be loaded as `name`. A name with a slash is
/// the file itself (relative to the cwd); a bare name that is already
/// loaded maps nothing new; otherwise the loader's search is followed
/// through `LD_LIBRARY_PATH` and the system library directories (a
/// library found only through the caller's `RUNPATH` or `ld.so.conf`
/// directories outside those is not checked: docs/security.md).
fn check_load(active: &'static Active, name: &[u8]) -> Verdict {
    let Some(action) = active.table.drift() else {
        return Verdict::Allow;
    };
    if action == Action::Allow {
        return Verdict::Allow;
    }
    let mut found = PathBuf::new();
    let path: &[u8] = if name.contains(&b'/') {
        name
    } else {
        type DlopenFn = unsafe extern "C" fn(*const c_char, c_int) -> *mut std::ffi::c_void;
        let mut z = PathBuf::new();
        if z.set(&[name, b"\0"]).is_none() {
            return Verdict::Allow;
        }
        if let Some(real) = next!(dlopen: DlopenFn) {
            // SAFETY: a NUL-terminated name; RTLD_NOLOAD maps nothing.
            let h = unsafe {
                real(
                    z.as_bytes().as_ptr().cast(),
                    libc::RTLD_LAZY | libc::RTLD_NOLOAD,
                )
            };
            if !h.is_null() {
                // SAFETY: `h` came from dlopen just now (a reference we drop).
                unsafe { libc::dlclose(h) };
                return Verdict::Allow;
            }
        }
        if !search_library(name, &mut found) {
            return Verdict::Allow; // not found: dlopen fails by itself
        }
        found.as_bytes()
    };
    match drift::verdict_at(libc::AT_FDCWD, path, Use::Load) {
        Some(Drift::Drifted(reason)) => {
            let ignored = false;
            check::drifted(active, "dlopen", ignored, action, reason, |r| {
                r.target = Inline::from_bytes(path);
            })
        }
        Some(Drift::NoManifest) => {
            if let Some(why) = drift::inert_reason() {
                check::drift_inert(why);
            }
            Verdict::Allow
        }
        None | Some(Drift::Known | Drift::NotRunnable) => Verdict::Allow,
    }
}

/// The first `DIR/name` that exists along `LD_LIBRARY_PATH`, then the
/// system library directories, as the loader would find it.
fn search_library(name: &[u8], out: &mut PathBuf) -> bool {
    // SAFETY: getenv reads the environment without allocating.
    let env = unsafe { cstr(libc::getenv(c"LD_LIBRARY_PATH".as_ptr())) }.unwrap_or(b"");
    let system: &[&[u8]] = &[
        b"/lib/x86_64-linux-gnu",
        b"/usr/lib/x86_64-linux-gnu",
        b"/lib/aarch64-linux-gnu",
        b"/usr/lib/aarch64-linux-gnu",
        b"/lib64",
        b"/usr/lib64",
        b"/lib",
        b"/usr/lib",
    ];
    let dirs = env
        .split(|&b| b == b':' || b == b';')
        .filter(|d| !d.is_empty())
        .chain(system.iter().copied());
    for dir in dirs {
        if out.set(&[dir, b"/", name, b"\0"]).is_none() {
            continue;
        }
        let fd = sys::open_path(libc::AT_FDCWD, out.as_bytes().as_ptr().cast(), 0);
        if fd >= 0 {
            sys::close(fd);
            return out.set(&[dir, b"/", name]).is_some();
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &[u8]) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
        let mut head = [0u8; HEAD];
        let n = text.len().min(HEAD);
        head[..n].copy_from_slice(&text[..n]);
        shebang(&head).map(|(name, arg)| (name.to_vec(), arg.map(<[u8]>::to_vec)))
    }

    fn parsed(name: &str, arg: Option<&str>) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
        Some((name.into(), arg.map(Into::into)))
    }

    /// As fs/binfmt_script.c's `load_script` splits a line.
    #[test]
    fn a_line_is_split_as_the_kernel_splits_it() {
        assert_eq!(line(b"#!/bin/sh\necho"), parsed("/bin/sh", None));
        assert_eq!(line(b"#! \t/bin/sh \t\n"), parsed("/bin/sh", None));
        assert_eq!(line(b"#!/bin/sh -e\n"), parsed("/bin/sh", Some("-e")));
        // One argument: the rest of the line, inner blanks kept.
        assert_eq!(
            line(b"#!/usr/bin/env  python3 -u \n"),
            parsed("/usr/bin/env", Some("python3 -u"))
        );
        // Only spaces and tabs are blanks: a carriage return stays.
        assert_eq!(line(b"#!/bin/sh\r\n"), parsed("/bin/sh\r", None));
        // A NUL ends the name, and the argument.
        assert_eq!(line(b"#!/bin/sh\0 -x\n"), parsed("/bin/sh", None));
        assert_eq!(line(b"#!/bin/sh -x\0y\n"), parsed("/bin/sh", Some("-x")));
        // Not scripts, or lines the kernel refuses with ENOEXEC.
        assert_eq!(line(b"\x7fELF"), None);
        assert_eq!(line(b"#"), None);
        assert_eq!(line(b"#!\n"), None);
        assert_eq!(line(b"#!  \t \n/bin/sh\n"), None);
        assert_eq!(line(b""), None);
    }

    #[test]
    fn a_line_without_a_newline_must_end_its_name_in_the_buffer() {
        // A short file: zeros follow, which end the name.
        assert_eq!(line(b"#!/bin/sh"), parsed("/bin/sh", None));
        let mut long = b"#!/bin/sh ".to_vec();
        long.resize(HEAD, b'a');
        // The buffer's last byte is dropped from the argument.
        let arg = "a".repeat(HEAD - 11);
        assert_eq!(line(&long), parsed("/bin/sh", Some(&arg)));
        // A name that may go on past the buffer.
        let mut cut = b"#!/".to_vec();
        cut.resize(HEAD, b'b');
        assert_eq!(line(&cut), None);
        // Only blanks.
        let mut blank = b"#!".to_vec();
        blank.resize(HEAD, b' ');
        assert_eq!(line(&blank), None);
        // The name ends at the buffer's last byte, a blank.
        let mut edge = b"#!/".to_vec();
        edge.resize(HEAD - 1, b'c');
        edge.push(b' ');
        assert_eq!(
            line(&edge),
            parsed(std::str::from_utf8(&edge[2..HEAD - 1]).unwrap(), None)
        );
    }
}
