//! The objects an allowed exec runs, held by the check that allowed them
//! (`Plan`), and running them.

use super::*;

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
    pub(super) file: Hold,
    /// A `#!` script's interpreter.
    pub(super) interp: Hold,
    /// The file is a script: its `#!` line and those of interpreters that
    /// are scripts themselves, in that order.
    pub(super) script: bool,
    pub(super) lines: Lines,
    /// Not emulated, run by path: the loader run as a program by a `#!`
    /// line, or more scripts than the kernel follows.
    pub(super) nested: bool,
    /// Decide through the kernel's path of the object even when the
    /// spelled directories hold no link (the name itself was a link).
    pub(super) resolve: bool,
    /// Hold the file itself, not its directory and name: another file was
    /// renamed over the name between an earlier attempt's check and its
    /// exec ([`Hold::pin`]).
    pub(super) pin: bool,
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
    pub(super) dir: c_int,
    /// `dir` was opened here (else it is the caller's `dirfd`).
    pub(super) owned: bool,
    /// NUL-terminated.
    pub(super) name: [u8; NAME_CAP],
    /// The object itself held (`dir`) and run with `AT_EMPTY_PATH`: an
    /// object with no name (a memfd behind `/proc/self/fd/N`).
    pub(super) empty: bool,
    /// Decided on the directory held and the name as spelled, the name
    /// not looked at: a link there makes the exec fail with `ELOOP`, and
    /// the exec is decided again through the kernel's path.
    pub(super) lexical: bool,
    /// The identity of the file read when the exec was decided (its `#!`
    /// line, or none): a fallback that hands the kernel a name it can
    /// resolve again runs only that file ([`Held::run_inheritable`]).
    pub(super) seen: Option<Identity>,
    /// The name the new process is to be called by (`comm`),
    /// NUL-terminated, when it is not `name`: the exec was given a link
    /// to `name` beside it (see [`Hold::of_path`]). Empty: the kernel's.
    pub(super) comm: [u8; script_comm::COMM_LEN + 1],
}

/// A file's device and inode numbers.
pub(super) type Identity = (libc::dev_t, libc::ino_t);

/// The longest name in a directory, with its NUL.
pub(super) const NAME_CAP: usize = 256;

/// A `#!` line as the kernel splits it: the interpreter's name and its
/// argument, each NUL-terminated in `text` (both came out of one
/// `HEAD`-byte head).
#[derive(Clone, Copy)]
pub(super) struct Line {
    pub(super) text: [u8; HEAD],
    /// Where the argument starts in `text`; 0: none (the name, never
    /// empty, comes first). All zero bytes are a valid empty line.
    pub(super) arg: usize,
}

/// The kernel follows five levels of `#!` (fs/exec.c, `exec_binprm`).
pub(super) const MAX_SCRIPTS: usize = 5;

/// A plan's `#!` lines: the file's inline, an interpreter's own (a
/// script run by a script, rare) in a mapping made when one is found,
/// so that every exec's stack frame stays as small as it was (1 KiB
/// more of it was one more copied stack page per forked child). A vfork
/// child whose exec succeeds leaves that page to its parent, as
/// `with_words` does.
pub(super) struct Lines {
    pub(super) first: Line,
    pub(super) deeper: *mut [Line; MAX_SCRIPTS - 1],
    pub(super) len: usize,
}

impl Lines {
    const DEEPER_BYTES: usize = std::mem::size_of::<[Line; MAX_SCRIPTS - 1]>();

    pub(super) fn new() -> Lines {
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
    pub(super) fn push(&mut self) -> Option<&mut Line> {
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
    pub(super) fn last_first(&self) -> impl Iterator<Item = &Line> {
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
            pin: false,
        }
    }

    pub(super) fn push_line(&mut self, name: &[u8], arg: Option<&[u8]>) {
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
    pub(super) fn failed(&self) -> bool {
        matches!(self, Hold::Failed(_))
    }

    /// The file itself held instead of its directory and name, so that
    /// what is read and decided is what runs (`AT_EMPTY_PATH`), named
    /// after the name held or the link given (`process::script_comm`):
    /// for an exec whose file was renamed over between an earlier
    /// attempt's check and its exec, or could be. Left as it is when the
    /// name no longer opens ([`Pin::Gone`]) or is no regular file (a link
    /// spelled, not the kernel's, which the exec refuses and is decided
    /// again through the kernel's path; a directory, which it refuses).
    pub(super) fn pin(&mut self) -> Pin {
        let Hold::Held(h) = self else {
            return Pin::NotAFile;
        };
        if h.empty {
            return Pin::Pinned;
        }
        let pinned = match h.open_itself(libc::O_CLOEXEC) {
            Ok(pinned) => pinned,
            Err(why) => return why,
        };
        *self = Hold::Held(pinned);
        Pin::Pinned
    }

    /// Whether the file held by its directory and name could be renamed
    /// over by a process like this one or another: this process is root
    /// or owns the directory, or others may write there. Not for an
    /// object held itself.
    pub(super) fn renamable(&self) -> bool {
        let Hold::Held(h) = self else {
            return false;
        };
        if h.empty {
            return false;
        }
        let Ok(dir) = sys::fstatat(h.dir, c"".as_ptr(), libc::AT_EMPTY_PATH) else {
            return true;
        };
        // SAFETY: no preconditions.
        let euid = unsafe { libc::geteuid() };
        euid == 0 || dir.st_uid == euid || dir.st_mode & 0o022 != 0
    }

    /// [`Hold::pin`], then whether the file held is the one read when the
    /// exec was decided (`false`: renamed over since, or gone).
    pub(super) fn pin_as_read(&mut self) -> bool {
        let seen = match self {
            Hold::Held(h) => h.seen,
            _ => return true,
        };
        match (self.pin(), &*self) {
            (Pin::Pinned, Hold::Held(h)) => seen.is_none_or(|seen| h.seen == Some(seen)),
            (Pin::NotAFile, _) => true,
            _ => false,
        }
    }

    /// An interpreter found to be a script itself, before its own
    /// interpreter is held in its place: the kernel runs only a script it
    /// may execute (`EACCES` otherwise, as its exec would fail).
    pub(super) fn intermediate(&self) -> Hold {
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
    /// to `dash`), the object is still run by its own name, never through
    /// the link (which may point elsewhere by the time of the exec), and
    /// the new process's library names it after the link
    /// (`process::script_comm`).
    pub(super) fn of_path(path: &[u8], spelled: &[u8], scratch: &mut PathBuf) -> Hold {
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
            held.named_after_link(link, name);
        }
        Hold::Held(held)
    }

    /// `(dirfd, path)` reached nothing a path rule can name: it failed
    /// (the kernel's errno), or it is an object without a name, held
    /// itself if it still has none.
    pub(super) fn without_name(dirfd: c_int, path: CPath<'_>) -> Hold {
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
    pub(super) fn spelled(dirfd: c_int, path: &[u8], scratch: &mut PathBuf) -> Result<Held, c_int> {
        let (dir, at) = resolve::split_last(path);
        if dir.is_empty() && at == 0 {
            // One name, relative to `dirfd` (or `/` itself).
            let mut held = Held::named(dirfd, false, path)?;
            held.lexical = true;
            return Ok(held);
        }
        let name = path.get(at..).unwrap_or_default();
        let mut held = Held::open(dirfd, dir, name, true, scratch)?;
        held.lexical = true;
        Ok(held)
    }

    /// [`Held::spelled`] where the directory's spelling has a link: the
    /// directory held following it (`openat`), its kernel path and the
    /// last name written to `out` (the path decided on), its length
    /// returned. `None`: a last name that is not a plain name, or a path
    /// that does not fit; the caller resolves the whole path.
    pub(super) fn through_links(
        dirfd: c_int,
        path: &[u8],
        scratch: &mut PathBuf,
        out: &mut [u8],
    ) -> Option<(Held, usize)> {
        let (dir, at) = resolve::split_last(path);
        let name = path.get(at..)?;
        if dir.is_empty() || name.contains(&b'/') || name == b"." || name == b".." {
            return None;
        }
        if name.len() >= NAME_CAP {
            return None;
        }
        let (fd, n) = match first_link_followed(dir, scratch, out) {
            Some(found) => found,
            None => {
                scratch.set(&[dir])?;
                let flags = libc::O_PATH | libc::O_DIRECTORY;
                let fd = sys::openat_quiet(dirfd, scratch.c_path().ptr(), flags).ok()?;
                let n = sys::fd_link_raw(fd, out);
                let n = (n > 0 && (n as usize) < out.len())
                    .then(|| sys::link_name(out, n as usize))
                    .flatten();
                match n {
                    Some(n) => (fd, n),
                    None => {
                        sys::close(fd);
                        return None;
                    }
                }
            }
        };
        let mut held = Held::named(fd, true, name).ok()?;
        held.lexical = true;
        let at = if n == 1 { 1 } else { n + 1 };
        if at + name.len() >= out.len() {
            return None;
        }
        *out.get_mut(at - 1)? = b'/';
        out.get_mut(at..at + name.len())?.copy_from_slice(name);
        Some((held, at + name.len()))
    }
}

/// The directory `dir` held where its first name is the only link in it,
/// as `/bin` is on merged-/usr systems (`bin -> usr/bin`): the link read
/// (a plain `readlink`), the path with the link replaced by what it
/// reads opened refusing every link (`openat2`), so that the path is the
/// one the kernel walked; that path written to `out`, with its length.
/// `None` for anything else (a link deeper down, `.` or `..` in the way):
/// the caller asks `/proc` for the directory's path, which the first time
/// in a new process costs several times as much.
fn first_link_followed(
    dir: &[u8],
    scratch: &mut PathBuf,
    out: &mut [u8],
) -> Option<(c_int, usize)> {
    let rest = dir.strip_prefix(b"/")?;
    let end = rest.iter().position(|&b| b == b'/').unwrap_or(rest.len());
    let (first, after) = rest.split_at_checked(end)?;
    let plain = |p: &[u8]| {
        !p.is_empty()
            && p.split(|&b| b == b'/')
                .all(|c| !c.is_empty() && c != b"." && c != b"..")
    };
    if !plain(first) || !(after.is_empty() || after.get(1..).is_some_and(plain)) {
        return None;
    }
    let mut target = [0u8; 128];
    scratch.set(&[b"/", first])?;
    let n = sys::readlinkat_quiet(libc::AT_FDCWD, scratch.c_path().ptr(), &mut target);
    if n <= 0 || n as usize >= target.len() {
        return None;
    }
    let target = target.get(..n as usize)?;
    let target = target.strip_prefix(b"/").unwrap_or(target);
    if !plain(target) {
        return None;
    }
    scratch.set(&[b"/", target, after])?;
    let decided = scratch.as_bytes();
    let n = decided.len();
    out.get_mut(..n)?.copy_from_slice(decided);
    if n >= out.len() {
        return None;
    }
    let flags = libc::O_PATH | libc::O_DIRECTORY | libc::O_CLOEXEC;
    let path = scratch.c_path().ptr();
    let fd = resolve::openat2_raw(libc::AT_FDCWD, path, flags, 0, resolve::NO_LINKS).ok()?;
    Some((fd, n))
}

impl Held {
    pub(super) fn open(
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
    pub(super) fn object(fd: c_int) -> Held {
        Held {
            dir: fd,
            owned: true,
            name: [0; NAME_CAP],
            empty: true,
            lexical: false,
            seen: None,
            comm: [0; script_comm::COMM_LEN + 1],
        }
    }

    pub(super) fn named(dir: c_int, owned: bool, name: &[u8]) -> Result<Held, c_int> {
        if name.len() >= NAME_CAP {
            return Err(libc::ENAMETOOLONG);
        }
        let mut held = Held {
            dir,
            owned,
            name: [0; NAME_CAP],
            empty: false,
            lexical: false,
            seen: None,
            comm: [0; script_comm::COMM_LEN + 1],
        };
        held.name[..name.len()].copy_from_slice(name);
        Ok(held)
    }

    pub(super) fn name(&self) -> &[u8] {
        let n = self.name.iter().position(|&b| b == 0).unwrap_or(0);
        &self.name[..n]
    }

    pub(super) fn name_ptr(&self) -> *const c_char {
        self.name.as_ptr().cast()
    }

    /// The held object's name for a spawned child, NUL-terminated:
    /// `/proc/PID/fd/D/name` (`/proc/PID/fd/D` for an object held
    /// itself), through this process's own table (libc's spawn returns
    /// only once the child has exec'd, and `D` stays open here until
    /// then), so that it holds even when the spawn's file actions close or
    /// replace `D`, and because the child's own `/proc/self` is new and
    /// slow to look up the first time (an exec through it took ~18 µs
    /// longer than through this process's, which earlier lookups made).
    /// Else `/proc/self/fd/D/name`, which names it in any process that
    /// shares this descriptor table or a copy of it, when the actions
    /// leave `D` alone. `None` when neither names it.
    pub(super) fn proc_path(
        &self,
        actions: *const posix_spawn_file_actions_t,
    ) -> Option<[u8; 32 + NAME_CAP]> {
        if !self.owned {
            return None;
        }
        let mut link = [0u8; 32];
        let n = match own_fd_path(self.dir, &mut link) {
            Some(n) => n,
            None if !actions.is_null()
                && spawn_actions::iter(actions).any(|a| a.closes(self.dir)) =>
            {
                return None
            }
            None => sys::proc_fd_path(self.dir, &mut link),
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

    /// Names the new process after `link` when it is a link in the held
    /// directory to exactly `name` (see [`Hold::of_path`]).
    pub(super) fn named_after_link(&mut self, link: &[u8], name: &[u8]) {
        let mut z = [0u8; NAME_CAP];
        z[..link.len()].copy_from_slice(link);
        let mut target = [0u8; NAME_CAP];
        let n = sys::readlinkat_quiet(self.dir, z.as_ptr().cast(), &mut target);
        if n > 0 && target.get(..n as usize) == Some(name) {
            let comm = link.get(..script_comm::COMM_LEN).unwrap_or(link);
            for (to, from) in self.comm.iter_mut().zip(comm) {
                *to = *from;
            }
        }
    }

    /// The regular file at the held name, held itself (`flags`:
    /// `O_CLOEXEC` or 0) with its identity, its name and the name the
    /// process is to keep ([`Held::comm_to_keep`]); else what is there.
    fn open_itself(&self, flags: c_int) -> Result<Held, Pin> {
        let flags = libc::O_PATH | libc::O_NOFOLLOW | flags;
        let fd = sys::syscall6(
            libc::SYS_openat,
            [
                self.dir as c_long,
                self.name.as_ptr() as c_long,
                flags as c_long,
                0,
                0,
                0,
            ],
        );
        if fd < 0 {
            return Err(Pin::Gone);
        }
        let mut file = Held::object(fd as c_int);
        match sys::fstatat(file.dir, c"".as_ptr(), libc::AT_EMPTY_PATH) {
            Ok(st) if st.st_mode & libc::S_IFMT == libc::S_IFREG => {
                file.seen = Some((st.st_dev, st.st_ino));
            }
            _ => return Err(Pin::NotAFile),
        }
        file.name = self.name;
        file.comm = self.comm_to_keep();
        Ok(file)
    }

    /// The name to give a process run through a descriptor of this file
    /// rather than its name (the kernel names it after the descriptor's
    /// number: through `/proc/PID/fd/F` always, with `AT_EMPTY_PATH`
    /// before Linux 6.14): the link the exec was given, else the name
    /// held.
    fn comm_to_keep(&self) -> [u8; script_comm::COMM_LEN + 1] {
        if self.comm[0] != 0 {
            return self.comm;
        }
        let mut comm = [0; script_comm::COMM_LEN + 1];
        let name = self.name();
        let name = name.get(..script_comm::COMM_LEN).unwrap_or(name);
        for (to, from) in comm.iter_mut().zip(name) {
            *to = *from;
        }
        comm
    }

    /// Calls `f` with `envp`, or with `envp` and the variable that names
    /// `who` after the link the exec was given ([`Held::comm`]).
    pub(super) fn with_comm(
        &self,
        who: impl FnOnce() -> Who,
        envp: Argv,
        f: impl FnOnce(Argv) -> c_int,
    ) -> c_int {
        let comm = self.comm.split(|&b| b == 0).next().unwrap_or_default();
        if comm.is_empty() {
            return f(envp);
        }
        let mut marker = [0u8; script_comm::MARKER_LEN];
        let marker = script_comm::marker(who(), comm, &mut marker);
        with_words(&[marker], envp, f)
    }

    /// Runs the held object; returns only on failure, with the errno.
    pub(super) fn exec(&self, argv: Argv, envp: Argv) -> c_int {
        let flags = if self.empty {
            libc::AT_EMPTY_PATH
        } else {
            libc::AT_SYMLINK_NOFOLLOW
        };
        self.with_comm(
            || Who::This(sys::getpid()),
            envp,
            |envp| {
                let e = self.exec_with(flags, argv, envp);
                if e == libc::ELOOP
                    && flags == libc::AT_SYMLINK_NOFOLLOW
                    && !self.lexical
                    && !self.is_link()
                {
                    // `ELOOP` for a name that is no link: an `execveat`
                    // that cannot refuse a final link (valgrind's fails
                    // every relative name so). The name was the kernel's
                    // own, and is still no link: run it as named.
                    return self.exec_with(0, argv, envp);
                }
                e
            },
        )
    }

    /// Whether another file is at the held name than the one read when
    /// the exec was decided (errno untouched). Nothing there is no
    /// change: a deleted file's name ([`run_deleted`]).
    pub(super) fn changed(&self) -> bool {
        let Some(seen) = self.seen else {
            return false;
        };
        sys::fstatat(self.dir, self.name_ptr(), libc::AT_SYMLINK_NOFOLLOW)
            .is_ok_and(|st| (st.st_dev, st.st_ino) != seen)
    }

    /// The kernel refused the held name with `ENOENT` though what was
    /// read there is no script: a `binfmt_misc` format whose interpreter
    /// opens the file by name (no `O` flag) refuses `/dev/fd/N/name` of a
    /// close-on-exec descriptor as the script handler does (or the
    /// program's own loader is missing: the same `ENOENT` again). The file
    /// read, and only it, is run through a descriptor of its own that
    /// stays open across the exec (`AT_EMPTY_PATH`), which that
    /// interpreter can open as `/dev/fd/F`; the program then has that
    /// descriptor open. Never the name again: renamed over by a script
    /// meanwhile, it would hand the kernel's script handler an interpreter
    /// nobody decided on. Another file there: decided again.
    #[cold]
    #[inline(never)]
    pub(super) fn run_inheritable(&self, argv: Argv, envp: Argv) -> Ran {
        let Some(seen) = self.seen else {
            return Ran::Failed(libc::ENOENT);
        };
        // Not close-on-exec: the interpreter opens it after the exec.
        match self.open_itself(0) {
            Ok(file) if file.seen == Some(seen) => Ran::Failed(file.exec(argv, envp)),
            _ => Ran::Changed,
        }
    }

    pub(super) fn is_link(&self) -> bool {
        sys::readlinkat_quiet(self.dir, self.name_ptr(), &mut [0u8; 1]) >= 0
    }

    pub(super) fn exec_with(&self, flags: c_int, argv: Argv, envp: Argv) -> c_int {
        // An object held itself keeps its name only for what is decided.
        let path = if self.empty {
            c"".as_ptr()
        } else {
            self.name_ptr()
        };
        let r = proceed(|| {
            sys::syscall6(
                libc::SYS_execveat,
                [
                    self.dir as c_long,
                    path as c_long,
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
/// namespace).
pub(super) fn own_fd_path(fd: c_int, out: &mut [u8; 32]) -> Option<usize> {
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

/// What [`Hold::pin`] did.
pub(super) enum Pin {
    /// The file is held itself.
    Pinned,
    /// Nothing that is a regular file there: left as it was.
    NotAFile,
    /// The name no longer opens.
    Gone,
}

/// What became of an exec run from its [`Plan`].
pub(super) enum Ran {
    /// Failed with this errno.
    Failed(c_int),
    /// The name held turned out to be a link: decide again through the
    /// kernel's path.
    Again,
    /// The file at the name held is not the one read when the exec was
    /// decided (renamed over since): decide again.
    Changed,
    /// Nothing held: run by path.
    ByPath,
}

impl Plan {
    /// Whether a name held without being looked at (`Held::lexical`) is
    /// a link (which an exec through `/proc/self/fd/D/name` follows).
    pub(super) fn names_a_link(&self) -> bool {
        [&self.file, &self.interp].iter().any(|h| match h {
            Hold::Held(h) if h.lexical => h.is_link(),
            _ => false,
        })
    }

    /// Runs what the check held; returns only when it did not run.
    /// `filename`: the script's name as the kernel would hand it to the
    /// interpreter (the exec's path as given).
    pub(super) fn run(&self, filename: *const c_char, argv: Argv, envp: Argv) -> Ran {
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
            // A script where a program was read (the kernel's script
            // handler refuses the held name, below): renamed over since.
            libc::ENOENT if !self.script && file.changed() => Ran::Changed,
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
    pub(super) fn run_interpreter(&self, filename: *const c_char, argv: Argv, envp: Argv) -> Ran {
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
            // Renamed into a script since it was read (the kernel's script
            // handler refuses the held name): decided again.
            libc::ENOENT if interp.changed() => Ran::Changed,
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
    pub(super) fn with_interpreter_args(
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
pub(super) fn run_deleted(
    decided: &Held,
    filename: *const c_char,
    argv: Argv,
    envp: Argv,
) -> Option<Ran> {
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
    // A name that was there when the exec was decided and is gone now:
    // renamed over meanwhile, unless this is the very file read.
    if let Some(seen) = decided.seen {
        match sys::fstatat(fd, c"".as_ptr(), libc::AT_EMPTY_PATH) {
            Ok(st) if (st.st_dev, st.st_ino) == seen => {}
            _ => return Some(Ran::Changed),
        }
    }
    Some(Ran::Failed(held.exec(argv, envp)))
}

/// Calls `f` with the argument vector `lead` followed by `argv[1..]`,
/// NULL-terminated: on the stack when it fits, else in a fresh mapping
/// (no allocator: this may run in a vfork child).
pub(super) fn with_argv(
    lead: &[*const c_char],
    argv: Argv,
    f: impl FnOnce(Argv) -> c_int,
) -> c_int {
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
pub(super) fn with_words(
    lead: &[*const c_char],
    tail: Argv,
    f: impl FnOnce(Argv) -> c_int,
) -> c_int {
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
