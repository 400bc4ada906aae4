//! File hooks: every path is checked as given (absolute, normalised) and as
//! the kernel resolves it (symlinks, `..`, `/proc/self/fd/N`).

use crate::decide::check::{
    by_rule, fail, generation, judge, run, run_or, settle, settle_uncached, unresolvable, Verdict,
};
use crate::decide::resolve::{self, Found, Pinned};
use crate::load::state::Active;
use crate::os::guard::recent;
use crate::os::real::next;
use crate::os::sys::{self, cstr, raw_syscall};
use ldguard_policy::{Access, Call, Kind, Request};
use libc::{c_char, c_int, c_long, c_uint, dev_t, gid_t, mode_t, off_t, uid_t, DIR, FILE};
use std::ptr::null_mut;

/// Whether the final path segment is followed.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Follow {
    Yes,
    No,
}

impl Follow {
    /// The `*at` flags that say it (`AT_SYMLINK_NOFOLLOW` or none).
    pub fn stat_flags(self) -> c_int {
        match self {
            Follow::Yes => 0,
            Follow::No => libc::AT_SYMLINK_NOFOLLOW,
        }
    }
}

/// Checks one path of a file call that is not an open: the lexical
/// absolute path, then the object the kernel reaches (see [`decide_path`]).
pub fn check_path(
    call: Call,
    dirfd: c_int,
    path: *const c_char,
    access: Access,
    follow: Follow,
) -> Verdict {
    check_path_as(call, dirfd, path, access, follow, Scope::Object)
}

/// A path call whose object the library cannot name (its kernel path is
/// longer than `PATH_MAX` or deleted): denied and reported, as
/// [`crate::decide::check::unresolvable`], when a rule that looks at paths could
/// deny; decided on the spelling otherwise.
pub fn check_unnamed(call: Call, path: *const c_char, access: Access) -> Verdict {
    run(|active| {
        // SAFETY: libc callers pass NUL-terminated paths (or null).
        let given = unsafe { cstr(path) }.unwrap_or(b"");
        let req = Request {
            access,
            path: Some(given),
            ..Request::new(Kind::File, call, active.program)
        };
        if active.table.needs_resolution(Kind::File, access) {
            unresolvable(active, &req)
        } else {
            judge(active, &req, |_| {})
        }
    })
}

/// What a path call touches.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Scope {
    /// The object the path names.
    Object,
    /// Also everything below it: renaming or removing a directory moves
    /// what lies beneath out from under a rule's path.
    Tree,
}

fn check_path_as(
    call: Call,
    dirfd: c_int,
    path: *const c_char,
    access: Access,
    follow: Follow,
    scope: Scope,
) -> Verdict {
    run(|active| {
        // SAFETY: libc callers pass NUL-terminated paths (or null).
        let Some(given) = (unsafe { cstr(path) }) else {
            return Verdict::Allow;
        };
        resolve::with_scratch(|s| decide_path(active, call, dirfd, given, access, follow, scope, s))
    })
}

/// [`decide_inner`], then, when a `ptrace` rule matters and the call may
/// reach a process's memory file, the object the kernel reaches
/// ([`crate::decide::check::process_memory`]).
#[allow(clippy::too_many_arguments)]
fn decide_path(
    active: &'static Active,
    call: Call,
    dirfd: c_int,
    given: &[u8],
    access: Access,
    follow: Follow,
    scope: Scope,
    s: &mut resolve::Scratch,
) -> Verdict {
    let v = decide_inner(active, call, dirfd, given, access, follow, scope, s);
    if v != Verdict::Allow || !crate::decide::check::ptrace_matters(active) {
        return v;
    }
    let follows = follow == Follow::Yes;
    let (scratch, abs, res) = (&mut s.a, &mut s.b, &mut s.c);
    let spelled = resolve::lexical(dirfd, given, scratch, abs).unwrap_or(given);
    if !crate::decide::check::names_memory(spelled)
        && resolve::without_links(dirfd, given, follows, scratch)
    {
        return v;
    }
    match resolve::kernel_path(dirfd, given, follows, scratch, res) {
        Found::Path => crate::decide::check::process_memory(active, call, spelled, res.as_bytes()),
        _ => v,
    }
}

/// Decides `(dirfd, given)` on its lexical absolute path and, when a rule
/// could tell them apart, on the path the kernel reaches: `openat2` with
/// no links (nothing to resolve), else an `O_PATH` descriptor's own path,
/// else (no descriptor free) a `readlink` walk. When there is no lexical
/// path (deleted or too-deep cwd, a dirfd without a path) the kernel's
/// path decides alone; when neither can be had and a rule could deny, the
/// call is denied ([`crate::decide::check::unresolvable`]).
#[allow(clippy::too_many_arguments)]
fn decide_inner(
    active: &'static Active,
    call: Call,
    dirfd: c_int,
    given: &[u8],
    access: Access,
    follow: Follow,
    scope: Scope,
    s: &mut resolve::Scratch,
) -> Verdict {
    let (scratch, abs, res) = (&mut s.a, &mut s.b, &mut s.c);
    let follows = follow == Follow::Yes;
    let needs = active.table.needs_resolution(Kind::File, access) || scope == Scope::Tree;
    let base = Request {
        access,
        ..Request::new(Kind::File, call, active.program)
    };
    let lexical = resolve::lexical(dirfd, given, scratch, abs);
    let Some(abs) = lexical else {
        if !needs {
            // Nothing the path could change: decided on the spelling.
            let req = Request {
                path: Some(given),
                ..base
            };
            return judge(active, &req, |_| {});
        }
        return match resolve::kernel_path(dirfd, given, follows, scratch, res) {
            Found::Path => {
                let req = Request {
                    path: Some(res.as_bytes()),
                    ..base
                };
                then_tree(active, &req, judge(active, &req, |_| {}), scope, &[])
            }
            // The call fails by itself; nothing is reached.
            Found::Unreachable => Verdict::Allow,
            // No name a rule can use: the spelling decides.
            Found::Nameless => judge(
                active,
                &Request {
                    path: Some(given),
                    ..base
                },
                |_| {},
            ),
            Found::Unknown => unresolvable(
                active,
                &Request {
                    path: Some(given),
                    ..base
                },
            ),
        };
    };
    let req = Request {
        path: Some(abs),
        ..base
    };
    let (v, blocked) = settle(active, &req);
    if !needs {
        return v;
    }
    if blocked {
        return v;
    }
    if resolve::without_links(dirfd, given, follows, scratch) {
        return then_tree(active, &req, v, scope, &[]);
    }
    match resolve::kernel_path(dirfd, given, follows, scratch, res) {
        Found::Path => {}
        Found::Unreachable | Found::Nameless => return then_tree(active, &req, v, scope, &[]),
        Found::Unknown => return unresolvable(active, &req),
    }
    if res.as_bytes() == abs {
        return then_tree(active, &req, v, scope, &[]);
    }
    let req = Request {
        resolved_path: Some(res.as_bytes()),
        ..req
    };
    let v = judge(active, &req, |_| {});
    then_tree(active, &req, v, scope, &[abs])
}

/// For [`Scope::Tree`]: after an allowed decision, a deny rule whose path
/// lies below the directory (as named by the request, or `more`) decides.
fn then_tree(
    active: &'static Active,
    req: &Request<'_>,
    v: Verdict,
    scope: Scope,
    more: &[&[u8]],
) -> Verdict {
    if scope != Scope::Tree || v != Verdict::Allow {
        return v;
    }
    let names = [req.path, req.resolved_path];
    // The root cannot be renamed or removed, and a new root at `/` gives
    // nothing another name.
    let below = names
        .iter()
        .flatten()
        .chain(more.iter())
        .filter(|dir| **dir != b"/")
        .find_map(|dir| active.table.blocking_rule_under(dir));
    match below {
        Some(rule) => by_rule(active, req, rule),
        None => v,
    }
}

/// How a path call that is not an open ran, when the library made it
/// itself on the object it decided on (docs/preload.md, *Paths*).
pub enum Acted {
    /// The next definition (libc's) with the caller's arguments: checks
    /// are off, this thread is inside the library, nothing a link could
    /// change is at stake, or a blocked call proceeds (not enforcing).
    Next,
    /// Denied, with this errno.
    Deny(c_int),
    /// Made here: the kernel's answer (`-errno` on failure), also when the
    /// object could not be reached (the call itself fails the same way).
    Done(c_long),
}

impl crate::decide::check::Fallback for Acted {
    fn denied(errno: c_int) -> Acted {
        Acted::Deny(errno)
    }
}

impl Acted {
    /// The hook's C return value; `next` makes the call when the library
    /// did not.
    pub fn finish(self, next: impl FnOnce() -> c_int) -> c_int {
        match self {
            Acted::Next => next(),
            Acted::Deny(e) => fail(e, -1),
            Acted::Done(r) if r < 0 => fail(-r as c_int, -1),
            Acted::Done(r) => r as c_int,
        }
    }

    pub fn of(v: Verdict) -> Acted {
        match v {
            Verdict::Deny(e) => Acted::Deny(e),
            Verdict::Allow => Acted::Next,
        }
    }
}

/// What a call acts on through one path argument.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The last name, not followed (`unlink`, `rename`, `mkdir`, `link`'s
    /// new name): its directory is held and the call made relative to it.
    Name,
    /// The object the path reaches (a final link followed as `Follow`
    /// says): it is held and the call made on the descriptor.
    Object(Follow),
}

/// One path argument of a call and what is decided on it.
#[derive(Clone, Copy)]
pub struct PathArg {
    dirfd: c_int,
    path: *const c_char,
    target: Target,
    checks: [Option<(Access, Scope)>; 2],
    /// The call changes an existing object and fails by itself on a
    /// missing one: nothing to decide then (`touch` of a new file in a
    /// denied directory reports the denied `open` once, not twice).
    existing: bool,
}

impl PathArg {
    /// `access` to the object `(dirfd, path)` reaches (or names).
    pub fn new(dirfd: c_int, path: *const c_char, target: Target, access: Access) -> PathArg {
        PathArg {
            dirfd,
            path,
            target,
            checks: [Some((access, Scope::Object)), None],
            existing: false,
        }
    }

    /// A write to the existing object `(dirfd, path)` reaches: metadata
    /// calls (see [`PathArg::existing`]).
    pub fn existing(dirfd: c_int, path: *const c_char, follow: Follow) -> PathArg {
        PathArg {
            existing: true,
            ..PathArg::new(dirfd, path, Target::Object(follow), Access::Write)
        }
    }

    /// The directory `(dirfd, path)` reaches, and everything below it,
    /// given other names for reading and writing: a new root.
    pub fn tree(dirfd: c_int, path: *const c_char) -> PathArg {
        PathArg {
            checks: [
                Some((Access::Read, Scope::Tree)),
                Some((Access::Write, Scope::Tree)),
            ],
            ..PathArg::new(dirfd, path, Target::Object(Follow::Yes), Access::Read)
        }
    }

    fn checks(&self) -> impl Iterator<Item = (Access, Scope)> + '_ {
        self.checks.iter().flatten().copied()
    }

    fn follow(&self) -> Follow {
        match self.target {
            Target::Name => Follow::No,
            Target::Object(follow) => follow,
        }
    }
}

/// When a call made of several decisions ends ([`crate::decide::check::Turns`]):
/// at a deny, or at a decision that blocked without enforcing (permissive
/// reports one event per call). A decision that says whether it blocked
/// needs no count; the count (a thread-local) is kept only when a decision
/// cannot say (a tree's rule below, several paths).
#[derive(Clone, Copy)]
struct Ends(Option<crate::decide::check::Turns>);

impl Ends {
    fn at(self, v: Verdict, blocked: bool) -> bool {
        v != Verdict::Allow || blocked || self.0.is_some_and(|t| t.end_at(v))
    }
}

/// What a decided call acts on: a descriptor (held here, or the caller's
/// `dirfd`) and the name relative to it (empty for a held object).
struct Hold {
    held: Option<resolve::Held>,
    fd: c_int,
    name: *const c_char,
}

/// Whether deciding `arg` needs the object (a rule could tell its
/// spellings apart, a tree moves; also when a process's memory file could
/// be behind a link, asked apart): then the call is made on the held
/// object.
fn needs_object(active: &'static Active, arg: &PathArg) -> bool {
    arg.checks().any(|(access, scope)| {
        scope == Scope::Tree || active.table.needs_resolution(Kind::File, access)
    })
}

/// Decides `arg` on the object the call will act on and holds that object
/// (or, for a [`Target::Name`], its directory). `Ok(None)`: allowed on the
/// lexical path, and nothing a link could change is at stake (`always`
/// not set): the caller's own spelling may run. `Err` is the call's
/// outcome without acting: denied, failed before reaching anything, or
/// `Next` when a blocked call proceeds (not enforcing).
///
/// The lexical path is decided first, as before the object is known; the
/// held object is the one the lexical path names when `openat2` reached it
/// without a link, else its kernel path is read and decided.
fn hold_decided(
    active: &'static Active,
    call: Call,
    arg: PathArg,
    always: bool,
    ends: Ends,
    s: &mut resolve::Scratch,
) -> Result<Option<Hold>, Acted> {
    // SAFETY: libc callers pass NUL-terminated paths (or null).
    let Some(given) = (unsafe { cstr(arg.path) }) else {
        // The call fails by itself (EFAULT).
        return Err(Acted::Next);
    };
    let (tmp, abs, res) = (&mut s.a, &mut s.b, &mut s.c);
    let lexical = resolve::lexical(arg.dirfd, given, tmp, abs);
    let base = Request::new(Kind::File, call, active.program);
    let decide_lexical = |abs: &[u8]| -> Result<(), Acted> {
        for (access, _) in arg.checks() {
            let (v, blocked) = settle(
                active,
                &Request {
                    access,
                    path: Some(abs),
                    ..base
                },
            );
            if ends.at(v, blocked) {
                return Err(Acted::of(v));
            }
        }
        Ok(())
    };
    let ptrace = crate::decide::check::ptrace_matters(active);
    let needs = always || ptrace || needs_object(active, &arg);
    if !needs {
        if let Some(abs) = lexical {
            if arg.existing
                && matches!(
                    sys::fstatat(arg.dirfd, arg.path, arg.follow().stat_flags()),
                    Err(libc::ENOENT)
                )
            {
                return Err(Acted::Next);
            }
            decide_lexical(abs)?;
            return Ok(None);
        }
    }
    let (held, name, at_dirfd) = match arg.target {
        Target::Name => {
            // A name decided lexically first: removing a missing name in a
            // denied tree is reported as before.
            if let Some(abs) = lexical {
                decide_lexical(abs)?;
            }
            let (parent, at) = resolve::split_last(given);
            // SAFETY: `at` is within the NUL-terminated `given`.
            let name = unsafe { arg.path.add(at) };
            if parent.is_empty() {
                // The directory is the dirfd's (or the cwd's) object,
                // which no later path change moves.
                (None, name, true)
            } else {
                if tmp.set(&[parent]).is_none() {
                    return Err(Acted::Done(-libc::ENAMETOOLONG as c_long));
                }
                match resolve::hold(arg.dirfd, tmp.c_path().ptr(), libc::O_DIRECTORY) {
                    Ok(h) => (Some(h), name, false),
                    Err(e) if resolve::no_descriptor(e) => {
                        return Err(without_descriptor(active, call, arg, given, s))
                    }
                    Err(e) => return Err(Acted::Done(-e as c_long)),
                }
            }
        }
        Target::Object(follow) => {
            let extra = if follow == Follow::Yes {
                0
            } else {
                libc::O_NOFOLLOW
            };
            match resolve::hold(arg.dirfd, arg.path, extra) {
                // These calls change an existing object: on a missing one
                // the kernel fails them, and there is nothing to decide.
                Ok(h) => {
                    if let Some(abs) = lexical {
                        decide_lexical(abs)?;
                    }
                    (Some(h), c"".as_ptr(), false)
                }
                Err(e) if resolve::no_descriptor(e) => {
                    return Err(without_descriptor(active, call, arg, given, s))
                }
                Err(e) => return Err(Acted::Done(-e as c_long)),
            }
        }
    };
    let proven = lexical.is_some() && (at_dirfd || held.as_ref().is_some_and(|h| h.without_links));
    let kernel: Option<&[u8]> = if proven {
        None
    } else {
        let found = match (&held, arg.target) {
            (Some(h), Target::Name) => {
                // SAFETY: `name` is the NUL-terminated tail of `given`.
                let last = unsafe { cstr(name) }.unwrap_or(b"");
                resolve::path_in(h.fd, last, tmp, res)
            }
            (Some(h), Target::Object(_)) => resolve::path_of(h.fd, res),
            // No lexical path, the dirfd's own object: its kernel path.
            (None, _) => resolve::kernel_path(arg.dirfd, given, false, tmp, res),
        };
        match found {
            Found::Path => Some(res.as_bytes()),
            Found::Nameless | Found::Unreachable => None,
            Found::Unknown => {
                let req = Request {
                    access: arg.checks().next().map_or(Access::Write, |c| c.0),
                    path: Some(lexical.unwrap_or(given)),
                    ..base
                };
                let v = unresolvable(active, &req);
                if ends.at(v, true) {
                    return Err(Acted::of(v));
                }
                None
            }
        }
    };
    // Proven and no tree moved: the lexical decisions above were the ones.
    let trees = arg.checks().any(|(_, scope)| scope == Scope::Tree);
    let decided = proven && !trees;
    for (access, scope) in arg.checks().filter(|_| !decided) {
        let req = Request {
            access,
            path: Some(lexical.or(kernel).unwrap_or(given)),
            resolved_path: kernel.filter(|k| lexical.is_some_and(|abs| abs != *k)),
            ..base
        };
        let (v, blocked) = match (lexical, req.resolved_path) {
            // Decided above on the lexical path, which names the object.
            (Some(_), None) => (Verdict::Allow, false),
            _ => {
                let (v, blocked, _) = settle_uncached(active, &req);
                (v, blocked)
            }
        };
        if ends.at(v, blocked) {
            return Err(Acted::of(v));
        }
        // The lexical name too, when the kernel's differs: a rule below
        // either name stops a tree from moving.
        let named = [lexical.unwrap_or(b"")];
        let more: &[&[u8]] = if lexical.is_some() && req.resolved_path.is_some() {
            &named
        } else {
            &[]
        };
        let v = then_tree(active, &req, Verdict::Allow, scope, more);
        if ends.at(v, false) {
            return Err(Acted::of(v));
        }
    }
    if ptrace {
        if let Some(object) = kernel.or(lexical) {
            // The last decision: not enforced, the call goes on either way.
            let v = crate::decide::check::process_memory(
                active,
                call,
                lexical.unwrap_or(given),
                object,
            );
            if v != Verdict::Allow {
                return Err(Acted::of(v));
            }
        }
    }
    let fd = held.as_ref().map_or(arg.dirfd, |h| h.fd);
    Ok(Some(Hold { held, fd, name }))
}

/// No descriptor free to hold the object: decided on the links walked one
/// by one ([`decide_inner`], so a denied object is reported with its
/// rule), and, allowed so, still denied when a rule could apply: a swap
/// can outrun the walk and nothing holds what was decided (never fail
/// open).
#[cold]
#[inline(never)]
fn without_descriptor(
    active: &'static Active,
    call: Call,
    arg: PathArg,
    given: &[u8],
    s: &mut resolve::Scratch,
) -> Acted {
    let turns = crate::decide::check::Turns::start();
    for (access, scope) in arg.checks() {
        let v = decide_inner(
            active,
            call,
            arg.dirfd,
            given,
            access,
            arg.follow(),
            scope,
            s,
        );
        if turns.end_at(v) {
            return Acted::of(v);
        }
    }
    let req = Request {
        access: arg.checks().next().map_or(Access::Write, |c| c.0),
        path: Some(given),
        ..Request::new(Kind::File, call, active.program)
    };
    Acted::of(unresolvable(active, &req))
}

/// A call on one path, decided on the object it acts on and made by `act`
/// on the held descriptor and the name relative to it (empty for a
/// [`Target::Object`]): the kernel's answer, `-errno` on failure.
pub fn act_on(arg: PathArg, call: Call, act: impl FnOnce(c_int, *const c_char) -> c_long) -> Acted {
    run_or(Acted::Next, |active| {
        resolve::with_scratch(|s| {
            // Counting blocks costs a thread-local lookup per decision:
            // only a tree's extra decision needs it (`Ends`).
            let trees = arg.checks().any(|(_, scope)| scope == Scope::Tree);
            let ends = Ends(trees.then(crate::decide::check::Turns::start));
            match hold_decided(active, call, arg, false, ends, s) {
                Ok(Some(h)) => {
                    let r = act(h.fd, h.name);
                    drop(h.held);
                    Acted::Done(r)
                }
                Ok(None) => Acted::Next,
                Err(acted) => acted,
            }
        })
    })
}

/// A call on two paths (`rename`, `link`), each decided and held as
/// [`act_on`] does, then made by `act` on both (`how` adds the checks on
/// unix socket names that move).
pub fn act_on_two(
    call: Call,
    first: PathArg,
    second: PathArg,
    how: Move,
    act: impl FnOnce(c_int, *const c_char, c_int, *const c_char) -> c_long,
) -> Acted {
    run_or(Acted::Next, |active| {
        let always = needs_object(active, &first)
            || needs_object(active, &second)
            || crate::decide::check::ptrace_matters(active);
        let turns = crate::decide::check::Turns::start();
        let held = resolve::with_scratch(|s| {
            let a = hold_decided(active, call, first, always, Ends(Some(turns)), s)?;
            let b = hold_decided(active, call, second, always, Ends(Some(turns)), s)?;
            Ok((a, b))
        });
        let (a, b) = match held {
            Ok(pair) => pair,
            Err(acted) => return acted,
        };
        let exchange = matches!(how, Move::Rename { exchange: true });
        // The unix socket names that move are decided whether or not the
        // file rules needed the objects.
        let moved = [(first.dirfd, first.path, first.follow())]
            .into_iter()
            .chain(exchange.then_some((second.dirfd, second.path, Follow::No)));
        for (dirfd, path, follow) in moved {
            let v = check_socket_name(call, dirfd, path, follow);
            if turns.end_at(v) {
                return Acted::of(v);
            }
        }
        match (a, b) {
            (Some(a), Some(b)) => Acted::Done(act(a.fd, a.name, b.fd, b.name)),
            // Decided on the spellings (nothing held: `always` was not set).
            _ => Acted::Next,
        }
    })
}

/// The two path arguments of a rename or link, with what is decided on
/// each: both are written (a rename moves whole trees, on both sides), and
/// what moves must be readable (under its new name it would be read past
/// the rule that denies reading it under the old one).
pub fn move_args(
    d1: c_int,
    p1: *const c_char,
    d2: c_int,
    p2: *const c_char,
    how: Move,
) -> (PathArg, PathArg) {
    let (first, second) = match how {
        Move::Link(follow) => {
            let target = match follow {
                Follow::Yes => Target::Object(Follow::Yes),
                Follow::No => Target::Name,
            };
            (
                (
                    target,
                    [
                        Some((Access::Write, Scope::Object)),
                        Some((Access::Read, Scope::Object)),
                    ],
                ),
                [Some((Access::Write, Scope::Object)), None],
            )
        }
        Move::Rename { exchange } => (
            (
                Target::Name,
                [
                    Some((Access::Write, Scope::Tree)),
                    Some((Access::Read, Scope::Object)),
                ],
            ),
            [
                Some((Access::Write, Scope::Tree)),
                exchange.then_some((Access::Read, Scope::Object)),
            ],
        ),
    };
    (
        PathArg {
            dirfd: d1,
            path: p1,
            target: first.0,
            checks: first.1,
            existing: false,
        },
        PathArg {
            dirfd: d2,
            path: p2,
            target: Target::Name,
            checks: second,
            existing: false,
        },
    )
}

/// A removal of what may be a directory: a write to it and to everything
/// below, made relative to its held directory.
fn tree_arg(dirfd: c_int, path: *const c_char) -> PathArg {
    PathArg {
        dirfd,
        path,
        target: Target::Name,
        checks: [Some((Access::Write, Scope::Tree)), None],
        existing: false,
    }
}

/// `/proc/self/fd/N` of a held descriptor, for the calls that have no form
/// taking an `O_PATH` descriptor: the kernel follows the magic link to the
/// object itself, so nothing is resolved by name again. Without `/proc`
/// the call cannot be made on what was decided: `EACCES`.
pub fn via_proc(fd: c_int, call: impl FnOnce(*const c_char) -> c_long) -> c_long {
    let mut link = [0u8; 32];
    sys::proc_fd_path(fd, &mut link);
    let r = call(link.as_ptr().cast());
    if r == -(libc::ENOENT as c_long) {
        // The held object always has its link; ENOENT is /proc missing.
        return -(libc::EACCES as c_long);
    }
    r
}

/// A system call made here, the kernel's answer (`-errno` on failure).
pub fn syscall(nr: c_long, a: [c_long; 6]) -> c_long {
    sys::syscall6(nr, a)
}

fn check_write(call: Call, dirfd: c_int, path: *const c_char, follow: Follow) -> Verdict {
    check_path(call, dirfd, path, Access::Write, follow)
}

/// What a link or rename does with its first path.
#[derive(Clone, Copy)]
pub enum Move {
    /// `link`: a second name for the object (`Follow::Yes`: the object a
    /// symlink names, `AT_SYMLINK_FOLLOW`).
    Link(Follow),
    /// `rename`: the object and everything below it move; an exchange
    /// (`RENAME_EXCHANGE`) moves the second path's object too.
    Rename { exchange: bool },
}

/// Both paths of rename/link are written (a rename moves whole trees, on
/// both sides), and what moves must be readable: under its new name it
/// would be read past the rule that denies reading it under the old one
/// (`ln secret pub/x; cat pub/x`). A deny on any of them fails the call.
pub fn check_move(
    call: Call,
    d1: c_int,
    p1: *const c_char,
    d2: c_int,
    p2: *const c_char,
    how: Move,
) -> Verdict {
    let (scope, follow, exchange) = match how {
        Move::Link(follow) => (Scope::Object, follow, false),
        Move::Rename { exchange } => (Scope::Tree, Follow::No, exchange),
    };
    let checks = [
        (d1, p1, Access::Write, follow, scope),
        (d1, p1, Access::Read, follow, Scope::Object),
        (d2, p2, Access::Write, Follow::No, scope),
    ];
    let exchanged = exchange.then_some((d2, p2, Access::Read, Follow::No, Scope::Object));
    let turns = crate::decide::check::Turns::start();
    for (dirfd, path, access, follow, scope) in checks.into_iter().chain(exchanged) {
        let v = check_path_as(call, dirfd, path, access, follow, scope);
        if turns.end_at(v) {
            return v;
        }
    }
    let moved = [(d1, p1, follow)]
        .into_iter()
        .chain(exchange.then_some((d2, p2, Follow::No)));
    for (dirfd, path, follow) in moved {
        let v = check_socket_name(call, dirfd, path, follow);
        if turns.end_at(v) {
            return v;
        }
    }
    Verdict::Allow
}

/// A unix socket is found by its inode, not its name: a link or rename of
/// one that a rule forbids connecting to would reach the same listener
/// under a name the rule does not match. Decided as a connection to what
/// moves (its lexical path, then the file the kernel reaches), only when
/// the policy has unix socket path rules.
fn check_socket_name(call: Call, dirfd: c_int, path: *const c_char, follow: Follow) -> Verdict {
    run(|active| {
        if !active.table.needs_resolution(Kind::Network, Access::Read) {
            return Verdict::Allow;
        }
        // SAFETY: libc callers pass NUL-terminated paths (or null).
        let Some(given) = (unsafe { cstr(path) }) else {
            return Verdict::Allow;
        };
        resolve::with_scratch(|s| {
            let (scratch, abs, res) = (&mut s.a, &mut s.b, &mut s.c);
            let base = Request {
                direction: ldguard_policy::Direction::Outbound,
                ..Request::new(Kind::Network, call, active.program)
            };
            let blocked = |req: &Request<'_>| active.table.decide(req).action.blocks();
            if let Some(abs) = resolve::lexical(dirfd, given, scratch, abs) {
                let req = Request {
                    unix: Some(abs),
                    ..base
                };
                if blocked(&req) {
                    return judge(active, &req, |_| {});
                }
            }
            // Only a socket has a listener to reach: one `fstatat` spares
            // the kernel path's three system calls for every other file
            // (a directory's sockets are its tree's, `then_tree`).
            if !is_socket(dirfd, path, follow) {
                return Verdict::Allow;
            }
            match resolve::kernel_path(dirfd, given, follow == Follow::Yes, scratch, res) {
                Found::Path => {
                    let req = Request {
                        unix: Some(res.as_bytes()),
                        ..base
                    };
                    if blocked(&req) {
                        judge(active, &req, |_| {})
                    } else {
                        Verdict::Allow
                    }
                }
                // The call fails by itself: nothing moves. A pipe or a
                // socket's own inode has no name a rule can use.
                Found::Unreachable | Found::Nameless => Verdict::Allow,
                Found::Unknown => unresolvable(
                    active,
                    &Request {
                        unix: Some(given),
                        ..base
                    },
                ),
            }
        })
    })
}

/// Whether `(dirfd, path)` names a unix socket file (or may: when it
/// cannot be asked, the kernel path decides).
fn is_socket(dirfd: c_int, path: *const c_char, follow: Follow) -> bool {
    sys::fstatat(dirfd, path, follow.stat_flags())
        .map_or(true, |st| st.st_mode & libc::S_IFMT == libc::S_IFSOCK)
}

/// A bind mount (`MS_BIND`) or a moved mount (`MS_MOVE`), and the new
/// mount API's detached copy of a tree (`open_tree` with
/// `OPEN_TREE_CLONE`, which `move_mount` then attaches), give `source` and
/// everything below it a second name, as a link or rename does: decided as
/// a read and a write of that tree. (`mount --bind secret pub/x` in a user
/// namespace read what `secret/**` denies.) A mount of a new filesystem
/// gives nothing already named another name; its target is written.
pub fn check_tree_mount(
    call: Call,
    dirfd: c_int,
    source: *const c_char,
    target: Option<*const c_char>,
    tree_gets_a_name: bool,
) -> Verdict {
    let turns = crate::decide::check::Turns::start();
    if tree_gets_a_name {
        let v = check_tree_as(call, dirfd, source, &[Access::Read, Access::Write]);
        if turns.end_at(v) {
            return v;
        }
    }
    match target {
        Some(target) => check_path(call, libc::AT_FDCWD, target, Access::Write, Follow::Yes),
        None => Verdict::Allow,
    }
}

/// `(dirfd, path)` and everything below it made reachable for `accesses`
/// under another name (a mounted tree, an overlay's layer): each access
/// decided on the tree, in turn.
pub fn check_tree_as(
    call: Call,
    dirfd: c_int,
    path: *const c_char,
    accesses: &[Access],
) -> Verdict {
    let turns = crate::decide::check::Turns::start();
    for &access in accesses {
        let v = check_path_as(call, dirfd, path, access, Follow::Yes, Scope::Tree);
        if turns.end_at(v) {
            return v;
        }
    }
    Verdict::Allow
}

/// A new root changes what every path names: after `chroot(dir)` the file
/// `dir/x` is `/x` to this process and its children, so a rule on `dir/x`
/// would no longer match it. Decided as a move of `dir`'s whole tree:
/// read and write access to `dir`, and no deny rule able to match below it
/// (see `RuleTable::blocking_rule_under`). A new root at `/` renames nothing.
/// `pivot_root` also moves the old root below the new one (`put_old`):
/// every path gets another name, so any rule that could be passed that
/// way denies it.
pub fn check_new_root(call: Call, path: *const c_char) -> Verdict {
    let turns = crate::decide::check::Turns::start();
    let v = check_tree_mount(call, libc::AT_FDCWD, path, None, true);
    if turns.end_at(v) {
        return v;
    }
    if call != Call::PivotRoot {
        return Verdict::Allow;
    }
    check_every_file(call)
}

/// `chroot`, entered through the held directory's `/proc` link: the root
/// decided (as [`check_new_root`] decides it) is the root entered.
pub fn chroot_held(path: *const c_char) -> Acted {
    act_on(
        PathArg::tree(libc::AT_FDCWD, path),
        Call::Chroot,
        |fd, _| {
            via_proc(fd, |p| {
                syscall(libc::SYS_chroot, [p as c_long, 0, 0, 0, 0, 0])
            })
        },
    )
}

/// A call that gives every file another name (`pivot_root`'s old root, a
/// second mount of a block device): denied by any rule that could be
/// passed that way.
pub fn check_every_file(call: Call) -> Verdict {
    run(|active| match active.table.blocking_rule_under(b"/") {
        Some(rule) => by_rule(
            active,
            &Request {
                access: Access::Write,
                path: Some(b"/"),
                ..Request::new(Kind::File, call, active.program)
            },
            rule,
        ),
        None => Verdict::Allow,
    })
}

/// The accesses `open` flags ask for: write for anything that can modify,
/// read for anything that can read (O_RDWR gets both).
fn open_accesses(flags: c_int) -> (bool, bool) {
    let acc = flags & libc::O_ACCMODE;
    let writes = acc != libc::O_RDONLY
        || flags & (libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) != 0
        || flags & libc::O_TMPFILE == libc::O_TMPFILE;
    (writes, acc != libc::O_WRONLY)
}

/// How an open reaches the kernel, once decided.
enum Route {
    Deny(c_int),
    /// The next definition (libc's), unchanged: nothing a link could change
    /// is at stake, or the library is not checking.
    Next,
    /// `openat2` refusing every link: success proves the object opened is
    /// the one named by the checked path.
    NoLinks,
    /// Already opened (or failed, with errno) by the pinned path.
    Done(c_int, c_int),
}

impl crate::decide::check::Fallback for Route {
    fn denied(errno: c_int) -> Route {
        Route::Deny(errno)
    }
}

/// Decides an open of `(dirfd, path)` with `flags` on the lexical absolute
/// path, and says how it must run.
/// `len`: the path's length when the caller has measured it (the probe of
/// [`open_recent`] has).
#[inline(never)]
fn route_open(
    call: Call,
    dirfd: c_int,
    path: *const c_char,
    len: Option<usize>,
    flags: c_int,
    mode: u32,
) -> Route {
    // An O_PATH descriptor reaches no data: reading through it means
    // reopening /proc/self/fd/N (checked as that file) or execveat (checked
    // as an exec). Like stat, it only reveals that the file exists.
    if flags & libc::O_PATH != 0 {
        return Route::Next;
    }
    run_or(Route::Next, |active| {
        let given = match len {
            // SAFETY: `path` is non-null with `n` bytes before its NUL (measured).
            Some(n) => unsafe { std::slice::from_raw_parts(path.cast::<u8>(), n) },
            // SAFETY: libc callers pass NUL-terminated paths (or null).
            None => match unsafe { cstr(path) } {
                Some(given) => given,
                None => return Route::Next,
            },
        };
        let (writes, reads) = open_accesses(flags);
        let table = &active.table;
        // A link may lead to a process's memory file, decided as `ptrace`.
        let guarded = crate::decide::check::ptrace_matters(active);
        let needs = (writes && table.needs_resolution(Kind::File, Access::Write))
            || (reads && table.needs_resolution(Kind::File, Access::Read))
            || guarded;
        let open = OpenRequest {
            call,
            dirfd,
            given,
            flags,
            mode,
            writes,
            reads,
            needs,
            guarded,
        };
        match resolve::thread_scratch() {
            // SAFETY: this check's own buffers (`with_scratch`'s contract:
            // the guard `run_or` holds makes the level's set exclusive),
            // large and aligned enough, any bytes there a valid `Scratch`.
            Some(s) => route_lexical(active, open, unsafe { &mut *s }),
            None => resolve::with_stack_scratch(move |s| route_lexical(active, open, s)),
        }
    })
}

/// What [`route_open`] decides on, past its fast exits.
#[derive(Clone, Copy)]
struct OpenRequest<'a> {
    call: Call,
    dirfd: c_int,
    given: &'a [u8],
    flags: c_int,
    mode: u32,
    writes: bool,
    reads: bool,
    /// The table needs the kernel's path for these accesses.
    needs: bool,
    /// A link may lead to a process's memory file (`ptrace` matters).
    guarded: bool,
}

/// [`route_open`]'s decision on the lexical path. Inlined into it: as
/// the closure it was, it was a call of its own on every cold open, with
/// its captured references stored, loaded and spilled (about fifty
/// instructions, `bench/c`'s `opencold` under callgrind).
#[inline(always)]
fn route_lexical(
    active: &'static Active,
    open: OpenRequest<'_>,
    s: &mut resolve::Scratch,
) -> Route {
    let OpenRequest {
        call,
        dirfd,
        given,
        flags,
        mode,
        writes,
        reads,
        needs,
        guarded,
    } = open;
    let Some((abs, no_slash_dot)) = resolve::lexical_hinted(dirfd, given, &mut s.a, &mut s.b)
    else {
        if !needs {
            return decide_spelling(active, call, given, writes, reads);
        }
        return pinned(active, call, dirfd, given, flags, mode, None, s);
    };
    let key = (generation(active), access_of(flags));
    // A relative spelling of a recently opened absolute path (the
    // path itself, when plain, was just looked up by `open_recent`).
    let known = !std::ptr::eq(abs, given) && recent::allowed(key.0, key.1, abs);
    let mut silent = true;
    for (wanted, access) in [(writes, Access::Write), (reads, Access::Read)] {
        if !wanted || known {
            continue;
        }
        let req = Request {
            path: Some(abs),
            access,
            path_without_slash_dot: no_slash_dot,
            ..Request::new(Kind::File, call, active.program)
        };
        match settle_uncached(active, &req) {
            (Verdict::Deny(e), _, _) => return Route::Deny(e),
            // Reported, not enforced (permissive): once is enough.
            (_, true, _) => return Route::Next,
            (_, _, s) => silent &= s,
        }
    }
    if silent && !known {
        recent::remember_here(key.0, key.1, abs, needs);
    }
    if guarded && crate::decide::check::names_memory(abs) {
        // Decided on the object (a link may lead elsewhere, and the
        // pinned path's check sees where).
        let abs = resolve::absolute(dirfd, given, &mut s.a, &mut s.b).map(|_| s.b.len());
        return pinned(active, call, dirfd, given, flags, mode, abs, s);
    }
    if !needs {
        Route::Next
    } else if resolve::openat2_usable() {
        Route::NoLinks
    } else {
        let abs = resolve::absolute(dirfd, given, &mut s.a, &mut s.b).map(|_| s.b.len());
        pinned(active, call, dirfd, given, flags, mode, abs, s)
    }
}

/// No lexical path, and no rule that a path could change: decided on the
/// spelling (the path plays no part in the outcome).
fn decide_spelling(
    active: &'static Active,
    call: Call,
    given: &[u8],
    writes: bool,
    reads: bool,
) -> Route {
    for (wanted, access) in [(writes, Access::Write), (reads, Access::Read)] {
        let req = Request {
            path: Some(given),
            access,
            ..Request::new(Kind::File, call, active.program)
        };
        if wanted {
            if let Verdict::Deny(e) = judge(active, &req, |_| {}) {
                return Route::Deny(e);
            }
        }
    }
    Route::Next
}

/// The pinned open ([`resolve::open_pinned`]): decided on the kernel's
/// own path of the object, opened through the same descriptor. `abs`:
/// the lexical path, already decided, when there is one (`s.b` holds it).
#[allow(clippy::too_many_arguments)]
fn pinned(
    active: &'static Active,
    call: Call,
    dirfd: c_int,
    given: &[u8],
    flags: c_int,
    mode: u32,
    abs: Option<usize>,
    s: &mut resolve::Scratch,
) -> Route {
    let (writes, reads) = open_accesses(flags);
    let abs: Option<&[u8]> = abs.map(|n| &s.b.as_bytes()[..n]);
    let program = active.program;
    let opened = resolve::open_pinned(dirfd, given, flags, mode, &mut s.a, &mut s.c, |kpath| {
        for (wanted, access) in [(writes, Access::Write), (reads, Access::Read)] {
            if !wanted {
                continue;
            }
            let req = Request {
                path: Some(abs.unwrap_or(kpath)),
                resolved_path: abs.filter(|a| *a != kpath).map(|_| kpath),
                access,
                ..Request::new(Kind::File, call, program)
            };
            if let Verdict::Deny(e) = judge(active, &req, |_| {}) {
                return Err(e);
            }
        }
        match crate::decide::check::process_memory(active, call, abs.unwrap_or(kpath), kpath) {
            Verdict::Deny(e) => Err(e),
            Verdict::Allow => Ok(()),
        }
    });
    match opened {
        Ok(fd) => Route::Done(fd, 0),
        Err(Pinned::Failed(e)) => Route::Done(-1, e),
        Err(Pinned::Denied(e)) => Route::Deny(e),
        Err(Pinned::Unknown) => {
            let req = Request {
                path: Some(abs.unwrap_or(given)),
                access: if writes { Access::Write } else { Access::Read },
                ..Request::new(Kind::File, call, program)
            };
            match unresolvable(active, &req) {
                Verdict::Deny(e) => Route::Deny(e),
                Verdict::Allow => Route::Next,
            }
        }
    }
}

/// The outcome of a checked open.
enum Opened {
    Fd(c_int),
    /// Failed (denied, or the open failed) with this errno.
    Err(c_int),
    /// Not the library's business: call the next definition.
    Next,
}

/// The cache's accesses of an open: [`open_accesses`] of `flags` as bits,
/// with a table for the access mode and one test for the flags that also
/// write (the repeated open and the full route key the cache with it).
#[inline(always)]
fn access_of(flags: c_int) -> u8 {
    use recent::{READ, WRITE};
    // O_RDONLY, O_WRONLY, O_RDWR, and 3 (both, as `open_accesses` says).
    const BY_MODE: [u8; 4] = [READ, WRITE, READ | WRITE, READ | WRITE];
    let modifies = flags & (libc::O_CREAT | libc::O_TRUNC | libc::O_APPEND) != 0
        || flags & libc::O_TMPFILE == libc::O_TMPFILE;
    BY_MODE[(flags & libc::O_ACCMODE) as usize] | if modifies { WRITE } else { 0 }
}

/// Decides and performs an open of `(dirfd, path)`.
#[inline(always)]
fn open_checked(call: Call, dirfd: c_int, path: *const c_char, flags: c_int, mode: u32) -> Opened {
    let mut len = None;
    let route = match open_recent(path, flags, &mut len) {
        Some(route) => route,
        None => route_open(call, dirfd, path, len, flags, mode),
    };
    open_routed_as(call, dirfd, path, flags, mode, route)
}

/// Performs an open of `(dirfd, path)` as `route` says.
#[inline(always)]
fn open_routed_as(
    call: Call,
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: u32,
    route: Route,
) -> Opened {
    match route {
        Route::NoLinks => {}
        Route::Deny(e) => return Opened::Err(e),
        Route::Done(fd, e) if fd < 0 => return Opened::Err(e),
        Route::Done(fd, _) => return Opened::Fd(fd),
        Route::Next => return Opened::Next,
    }
    match openat2_cancellable(dirfd, path, flags, mode) {
        Ok(fd) => Opened::Fd(fd),
        Err(e) if resolve::pins(e) => open_pinned(call, dirfd, path, flags, mode),
        Err(e) => Opened::Err(e),
    }
}

/// A link on the way (or `openat2` refused): the pinned path.
#[cold]
#[inline(never)]
fn open_pinned(call: Call, dirfd: c_int, path: *const c_char, flags: c_int, mode: u32) -> Opened {
    match run_or(Route::Next, |active| {
        // SAFETY: as in `route_open`.
        let Some(given) = (unsafe { cstr(path) }) else {
            return Route::Next;
        };
        resolve::with_scratch(|s| {
            let abs = resolve::absolute(dirfd, given, &mut s.a, &mut s.b).map(|_| s.b.len());
            pinned(active, call, dirfd, given, flags, mode, abs, s)
        })
    }) {
        Route::Deny(e) => Opened::Err(e),
        Route::Done(fd, e) if fd < 0 => Opened::Err(e),
        Route::Done(fd, _) => Opened::Fd(fd),
        _ => Opened::Next,
    }
}

/// The repeated open: an absolute path this thread recently opened the
/// same way under the same table, decided then as a silent allow. Its
/// route without the guard, the decision or the normalisation: the
/// cache holds only normal absolute paths and silent allows ([`recent`]).
/// `None`: take the full route (`len` is then the path's length when it
/// was measured, so the full route does not measure it again).
///
/// Panic-free by construction (no indexing that can fail, no allocation),
/// so it runs outside `catch_unwind`; it does not touch errno.
#[inline(always)]
fn open_recent(path: *const c_char, flags: c_int, len: &mut Option<usize>) -> Option<Route> {
    if crate::process::active::STATUS.load(std::sync::atomic::Ordering::Acquire)
        != crate::process::active::ON
    {
        return None;
    }
    open_recent_on(path, flags, len)
}

/// [`open_recent`] once the status has been seen `ON`.
#[inline(always)]
fn open_recent_on(path: *const c_char, flags: c_int, len: &mut Option<usize>) -> Option<Route> {
    if flags & libc::O_PATH != 0 || path.is_null() {
        return None;
    }
    let active = crate::process::active::published()?;
    // SAFETY: non-null, and libc callers pass NUL-terminated paths.
    let n = unsafe { resolve::c_len(path) };
    *len = Some(n);
    // SAFETY: `n` bytes before the NUL.
    let given = unsafe { std::slice::from_raw_parts(path.cast::<u8>(), n) };
    let needs = recent::hit(generation(active), access_of(flags), given)?;
    // What every hooked call does (`check::run_or`; a miss does it there),
    // here on one repeated open in sixteen (`guard::poll_due`).
    if crate::os::guard::poll_due() {
        crate::load::refresh::poll();
    }
    if !needs {
        Some(Route::Next)
    } else if resolve::openat2_usable() {
        Some(Route::NoLinks)
    } else {
        None
    }
}

/// [`open_checked`] for the open calls themselves.
fn open_routed(
    call: Call,
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: u32,
    next: impl FnOnce() -> c_int,
) -> c_int {
    match open_checked(call, dirfd, path, flags, mode) {
        Opened::Fd(fd) => fd,
        Opened::Err(e) => fail(e, -1),
        Opened::Next => next(),
    }
}

/// A stream on a checked descriptor (`wrap` is `fdopen`/`fdopendir`).
fn wrap_fd<T>(fd: c_int, wrap: impl FnOnce(c_int) -> *mut T) -> *mut T {
    let p = wrap(fd);
    if p.is_null() {
        let e = sys::errno();
        sys::close(fd);
        sys::set_errno(e);
    }
    p
}

/// fopen and fopen64: the checked open, then `fdopen` on its descriptor
/// (libc's fopen would open by name again). Modes only libc's fopen
/// understands go to it, checked as a read and a write of the path.
fn fopen_checked(
    call: Call,
    path: *const c_char,
    mode: *const c_char,
    next: impl FnOnce() -> *mut FILE,
) -> *mut FILE {
    // `disabled`: libc's fopen, after what every hooked call does
    // (`check::run_or`: a disabled process still learns of a new mode),
    // without parsing the mode or entering the open's route.
    if crate::process::active::STATUS.load(std::sync::atomic::Ordering::Acquire)
        == crate::process::active::OFF
    {
        crate::load::refresh::poll();
        if crate::process::active::is_off() {
            return next();
        }
    }
    let Some(flags) = fopen_flags(mode) else {
        for access in [Access::Write, Access::Read] {
            if let Verdict::Deny(e) = check_path(call, AT, path, access, Follow::Yes) {
                return fail(e, null_mut());
            }
        }
        return next();
    };
    match open_checked(call, AT, path, flags, 0o666) {
        // SAFETY: `fd` is ours and `mode` the caller's valid mode string.
        Opened::Fd(fd) => wrap_fd(fd, |fd| unsafe { libc::fdopen(fd, mode) }),
        Opened::Err(e) => fail(e, null_mut()),
        Opened::Next => next(),
    }
}

/// The no-links `openat2` as a cancellation point, as libc's own `open`
/// is: asynchronous cancellation for its duration only, when this thread
/// could be cancelled at all ([`cancel_possible`]). Written out (no
/// closure) so that the system call stays inline in its caller.
#[inline(always)]
fn openat2_cancellable(
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: u32,
) -> Result<c_int, c_int> {
    let cancel = cancel_possible();
    let old = if cancel { cancel_async() } else { 0 };
    let opened = resolve::openat2_raw(dirfd, path, flags, mode, resolve::NO_LINKS);
    if cancel {
        cancel_restore(old);
    }
    opened
}

extern "C" {
    fn pthread_setcanceltype(kind: c_int, old: *mut c_int) -> c_int;
}

/// Asynchronous cancellation on; the previous type. errno is kept.
#[cold]
#[inline(never)]
fn cancel_async() -> c_int {
    const ASYNCHRONOUS: c_int = 1;
    let e = sys::errno();
    let mut old = 0;
    // SAFETY: a plain call on this thread's cancellation state.
    unsafe { pthread_setcanceltype(ASYNCHRONOUS, &mut old) };
    sys::set_errno(e);
    old
}

/// Restores the cancellation type [`cancel_async`] returned. errno is kept.
#[cold]
#[inline(never)]
fn cancel_restore(old: c_int) {
    let e = sys::errno();
    let mut was = 0;
    // SAFETY: as in `cancel_async`.
    unsafe { pthread_setcanceltype(old, &mut was) };
    sys::set_errno(e);
}

/// Whether a cancellation request could reach this thread during the
/// system call: only when the program made a thread of its own or ever
/// cancelled one (itself included). glibc's own `open` asks the same
/// question first (its `SINGLE_THREAD_P`) and then makes the plain system
/// call; here the library's own threads do not count, since they never
/// cancel anyone. A thread blocked in the plain call cannot be reached by
/// a cancellation made later by a thread created after it entered (only it
/// or a signal handler on it could create one): glibc's `open`, entered
/// single-threaded, does not act on that request during the call either.
/// Threads glibc creates by itself to run a `SIGEV_THREAD` notification
/// are not seen (docs/preload.md, *Paths*).
#[inline]
fn cancel_possible() -> bool {
    THREADED.load(std::sync::atomic::Ordering::Relaxed)
}

/// The program created a thread (`pthread_create`, `thrd_create`) or asked
/// for a cancellation (`pthread_cancel`). Never reset: a forked child of a
/// threaded parent stays on the cancellable route.
static THREADED: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Notes a thread made or cancelled by the program; the library's own
/// (created in an internal section) are not.
#[inline]
fn note_threaded() {
    if crate::os::guard::check_depth() != crate::os::guard::INTERNAL {
        THREADED.store(true, std::sync::atomic::Ordering::SeqCst);
    }
}

/// pthread_create: noted ([`cancel_possible`]), then libc's.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn pthread_create(
    thread: *mut libc::pthread_t,
    attr: *const libc::pthread_attr_t,
    start: extern "C" fn(*mut libc::c_void) -> *mut libc::c_void,
    arg: *mut libc::c_void,
) -> c_int {
    note_threaded();
    type F = unsafe extern "C" fn(
        *mut libc::pthread_t,
        *const libc::pthread_attr_t,
        extern "C" fn(*mut libc::c_void) -> *mut libc::c_void,
        *mut libc::c_void,
    ) -> c_int;
    match next!(pthread_create: F) {
        // SAFETY: forwarding the caller's arguments.
        Some(f) => unsafe { f(thread, attr, start, arg) },
        None => libc::EAGAIN,
    }
}

/// thrd_create (C11): glibc and musl create the thread without going
/// through `pthread_create`'s symbol, so it is noted here too.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn thrd_create(
    thread: *mut libc::c_ulong,
    start: extern "C" fn(*mut libc::c_void) -> c_int,
    arg: *mut libc::c_void,
) -> c_int {
    note_threaded();
    type F = unsafe extern "C" fn(
        *mut libc::c_ulong,
        extern "C" fn(*mut libc::c_void) -> c_int,
        *mut libc::c_void,
    ) -> c_int;
    /// C11's `thrd_error`.
    const THRD_ERROR: c_int = 2;
    match next!(thrd_create: F) {
        // SAFETY: forwarding the caller's arguments.
        Some(f) => unsafe { f(thread, start, arg) },
        None => THRD_ERROR,
    }
}

/// pthread_cancel: noted ([`cancel_possible`]), then libc's.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn pthread_cancel(thread: libc::pthread_t) -> c_int {
    note_threaded();
    type F = unsafe extern "C" fn(libc::pthread_t) -> c_int;
    match next!(pthread_cancel: F) {
        // SAFETY: forwarding the caller's argument.
        Some(f) => unsafe { f(thread) },
        None => libc::ESRCH,
    }
}

/// fopen's mode as open flags, or `None` for what only libc's fopen
/// understands (`,ccs=`, unknown letters).
fn fopen_flags(mode: *const c_char) -> Option<c_int> {
    // SAFETY: fopen's mode is a NUL-terminated string.
    let m = unsafe { cstr(mode) }?;
    let mut flags = match m.first()? {
        b'r' => libc::O_RDONLY,
        b'w' => libc::O_WRONLY | libc::O_CREAT | libc::O_TRUNC,
        b'a' => libc::O_WRONLY | libc::O_CREAT | libc::O_APPEND,
        _ => return None,
    };
    for &c in &m[1..] {
        match c {
            b'+' => flags = (flags & !libc::O_ACCMODE) | libc::O_RDWR,
            b'x' => flags |= libc::O_EXCL,
            b'e' => flags |= libc::O_CLOEXEC,
            b'b' | b't' | b'c' | b'm' => {}
            _ => return None,
        }
    }
    Some(flags)
}

const OPEN_CALLS: [Call; 4] = [Call::Open, Call::Open64, Call::Openat, Call::Openat64];

/// Target of the C shim's open/open64/openat/openat64.
///
/// The repeated open ([`open_recent`]) is handled here, inline, with no
/// call but the system call; everything else is out of line.
///
/// # Safety
/// Called by the shim with the caller's arguments (`mode` may be garbage
/// when the flags do not create a file: the shim passes the register).
#[no_mangle]
pub unsafe extern "C" fn ldguard_open(
    which: c_int,
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: c_uint,
) -> c_int {
    // libc's open reads `mode` only when the flags create a file, and
    // `openat2_raw` passes it only then: garbage elsewhere goes nowhere.
    let status = crate::process::active::STATUS.load(std::sync::atomic::Ordering::Acquire);
    if status != crate::process::active::ON {
        // Out of the way of the repeated open below (laid out after it, so
        // that the code every request of a server runs lies in as few
        // instruction-cache lines as it can: BENCHMARKS.md, section 16),
        // but in this function: start-up runs it, and start-up's code is
        // placed together (`hot-text.ld`).
        std::hint::cold_path();
        if status == crate::process::active::OFF {
            // `disabled`: libc's open, after what every hooked call does
            // (`check::run_or`: a disabled process still learns of a new mode).
            crate::load::refresh::poll();
            if crate::process::active::is_off() {
                // SAFETY: the caller's arguments.
                return unsafe { open_next(which, dirfd, path, flags, mode) };
            }
        }
        // Not yet started, or just switched on: the full route settles it.
        // SAFETY: the caller's arguments.
        return unsafe { open_full(which, dirfd, path, None, flags, mode) };
    }
    let mut len = None;
    match open_recent_on(path, flags, &mut len) {
        Some(Route::NoLinks) => match openat2_cancellable(dirfd, path, flags, mode) {
            Ok(fd) => fd,
            Err(e) => {
                // A missing file, or a link on the way: out of the way too.
                std::hint::cold_path();
                if !resolve::pins(e) {
                    return fail(e, -1);
                }
                let call = OPEN_CALLS[(which as usize).min(3)];
                let mode = if takes_mode(flags) { mode } else { 0 };
                match open_pinned(call, dirfd, path, flags, mode) {
                    Opened::Fd(fd) => fd,
                    Opened::Err(e) => fail(e, -1),
                    // SAFETY: the caller's arguments.
                    Opened::Next => unsafe { open_next(which, dirfd, path, flags, mode) },
                }
            }
        },
        // SAFETY: the caller's arguments.
        Some(Route::Next) => unsafe { open_next(which, dirfd, path, flags, mode) },
        // SAFETY: the caller's arguments; `len` measured `path`.
        _ => unsafe { open_full(which, dirfd, path, len, flags, mode) },
    }
}

/// Whether the mode argument of `open` is there: the flags create a file.
#[inline]
fn takes_mode(flags: c_int) -> bool {
    flags & libc::O_CREAT != 0 || flags & libc::O_TMPFILE == libc::O_TMPFILE
}

/// [`ldguard_open`] when the cache has no answer.
///
/// # Safety
/// As [`ldguard_open`]; `len`, when given, is `path`'s length.
#[inline(never)]
unsafe fn open_full(
    which: c_int,
    dirfd: c_int,
    path: *const c_char,
    len: Option<usize>,
    flags: c_int,
    mode: u32,
) -> c_int {
    let call = OPEN_CALLS[(which as usize).min(3)];
    let mode = if takes_mode(flags) { mode } else { 0 };
    // `ldguard_open` has looked the path up already.
    let route = route_open(call, dirfd, path, len, flags, mode);
    match open_routed_as(call, dirfd, path, flags, mode, route) {
        Opened::Fd(fd) => fd,
        Opened::Err(e) => fail(e, -1),
        // SAFETY: as this function's contract.
        Opened::Next => unsafe { open_next(which, dirfd, path, flags, mode) },
    }
}

/// The next definition (libc's) of the open entry point `which`.
///
/// # Safety
/// As [`ldguard_open`].
#[inline(never)]
unsafe fn open_next(
    which: c_int,
    dirfd: c_int,
    path: *const c_char,
    flags: c_int,
    mode: u32,
) -> c_int {
    type OpenFn = unsafe extern "C" fn(*const c_char, c_int, ...) -> c_int;
    type OpenatFn = unsafe extern "C" fn(c_int, *const c_char, c_int, ...) -> c_int;
    // SAFETY: forwarding the caller's arguments to the real function.
    let r = unsafe {
        match which {
            0 => next!(open: OpenFn).map(|f| f(path, flags, mode)),
            1 => next!(open64: OpenFn).map(|f| f(path, flags, mode)),
            2 => next!(openat: OpenatFn).map(|f| f(dirfd, path, flags, mode)),
            _ => next!(openat64: OpenatFn).map(|f| f(dirfd, path, flags, mode)),
        }
    };
    r.unwrap_or_else(|| {
        raw_syscall(
            libc::SYS_openat,
            [
                dirfd as c_long,
                path as c_long,
                flags as c_long,
                mode as c_long,
                0,
                0,
            ],
        ) as c_int
    })
}

macro_rules! or_enosys {
    ($e:expr, $err:expr) => {
        match $e {
            Some(v) => v,
            None => fail(libc::ENOSYS, $err),
        }
    };
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn __open_2(path: *const c_char, flags: c_int) -> c_int {
    open_routed(Call::Open2, libc::AT_FDCWD, path, flags, 0, || {
        // SAFETY: forwarding.
        or_enosys!(
            next!(__open_2: unsafe extern "C" fn(*const c_char, c_int) -> c_int)
                .map(|f| unsafe { f(path, flags) }),
            -1
        )
    })
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn __open64_2(path: *const c_char, flags: c_int) -> c_int {
    open_routed(Call::Open64_2, libc::AT_FDCWD, path, flags, 0, || {
        // SAFETY: forwarding.
        or_enosys!(
            next!(__open64_2: unsafe extern "C" fn(*const c_char, c_int) -> c_int)
                .map(|f| unsafe { f(path, flags) }),
            -1
        )
    })
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn __openat_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    open_routed(Call::Openat2, dirfd, path, flags, 0, || {
        // SAFETY: forwarding.
        or_enosys!(
            next!(__openat_2: unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int)
                .map(|f| unsafe { f(dirfd, path, flags) }),
            -1
        )
    })
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn __openat64_2(dirfd: c_int, path: *const c_char, flags: c_int) -> c_int {
    open_routed(Call::Openat64_2, dirfd, path, flags, 0, || {
        // SAFETY: forwarding.
        or_enosys!(
            next!(__openat64_2: unsafe extern "C" fn(c_int, *const c_char, c_int) -> c_int)
                .map(|f| unsafe { f(dirfd, path, flags) }),
            -1
        )
    })
}

const AT: c_int = libc::AT_FDCWD;

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn creat(path: *const c_char, mode: mode_t) -> c_int {
    let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
    open_routed(Call::Creat, AT, path, flags, mode, || {
        type F = unsafe extern "C" fn(*const c_char, mode_t) -> c_int;
        // SAFETY: forwarding.
        or_enosys!(next!(creat: F).map(|f| unsafe { f(path, mode) }), -1)
    })
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn creat64(path: *const c_char, mode: mode_t) -> c_int {
    let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC;
    open_routed(Call::Creat64, AT, path, flags, mode, || {
        type F = unsafe extern "C" fn(*const c_char, mode_t) -> c_int;
        // SAFETY: forwarding.
        or_enosys!(next!(creat64: F).map(|f| unsafe { f(path, mode) }), -1)
    })
}

type FopenFn = unsafe extern "C" fn(*const c_char, *const c_char) -> *mut FILE;

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn fopen(path: *const c_char, mode: *const c_char) -> *mut FILE {
    fopen_checked(Call::Fopen, path, mode, || {
        // SAFETY: forwarding.
        or_enosys!(
            next!(fopen: FopenFn).map(|f| unsafe { f(path, mode) }),
            null_mut()
        )
    })
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn fopen64(path: *const c_char, mode: *const c_char) -> *mut FILE {
    fopen_checked(Call::Fopen64, path, mode, || {
        // SAFETY: forwarding.
        or_enosys!(
            next!(fopen64: FopenFn).map(|f| unsafe { f(path, mode) }),
            null_mut()
        )
    })
}

type FreopenFn = unsafe extern "C" fn(*const c_char, *const c_char, *mut FILE) -> *mut FILE;

/// freopen and freopen64: libc must make the open (it reuses the stream),
/// so it is handed the object decided. The checked open (fopen's) opens
/// it as `N`, libc reopens `/proc/self/fd/N` (the kernel follows that
/// link to the very file opened, whatever the path names by then), and
/// `N` is closed. A failed or denied open fails the call as libc's does,
/// the stream closed. A NULL path (a new mode for the stream's own file)
/// is checked as an open of that file; modes only libc understands are
/// checked as a read and a write of the path, then passed on.
fn freopen_checked(
    call: Call,
    path: *const c_char,
    mode: *const c_char,
    stream: *mut FILE,
    next: Option<FreopenFn>,
) -> *mut FILE {
    let Some(next) = next else {
        return fail(libc::ENOSYS, null_mut());
    };
    // SAFETY (all three calls): forwarding the caller's arguments, or the
    // caller's stream and mode with a path of ours.
    let forward = |path: *const c_char, mode: *const c_char| unsafe { next(path, mode, stream) };
    if path.is_null() {
        return match super::internal::check_reopen(call, mode, stream) {
            Verdict::Deny(e) => fail(e, null_mut()),
            Verdict::Allow => forward(path, mode),
        };
    }
    let Some(flags) = fopen_flags(mode) else {
        for access in [Access::Write, Access::Read] {
            if let Verdict::Deny(e) = check_path(call, AT, path, access, Follow::Yes) {
                return fail(e, null_mut());
            }
        }
        return forward(path, mode);
    };
    match open_checked(call, AT, path, flags, 0o666) {
        Opened::Fd(fd) => {
            let mut link = [0u8; 32];
            sys::proc_fd_path(fd, &mut link);
            // The file exists now: `x` (O_EXCL) would refuse it.
            const MODE_CAP: usize = 32;
            let mut again = [0u8; MODE_CAP];
            // SAFETY: fopen_flags parsed `mode` as a C string.
            let given = unsafe { cstr(mode) }.unwrap_or(b"");
            let kept = given.iter().filter(|&&c| c != b'x');
            // (The last byte stays the NUL.)
            for (slot, &c) in again.iter_mut().zip(kept).take(MODE_CAP - 1) {
                *slot = c;
            }
            let reopened = forward(link.as_ptr().cast(), again.as_ptr().cast());
            let e = sys::errno();
            sys::close(fd);
            // The object always has its link: ENOENT is /proc missing.
            let missing = reopened.is_null() && e == libc::ENOENT;
            sys::set_errno(if missing { libc::EACCES } else { e });
            reopened
        }
        Opened::Err(e) => {
            // libc closes the stream when its open fails: an empty path
            // fails it so, opening nothing.
            forward(c"".as_ptr(), mode);
            fail(e, null_mut())
        }
        Opened::Next => forward(path, mode),
    }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn freopen(
    path: *const c_char,
    mode: *const c_char,
    stream: *mut FILE,
) -> *mut FILE {
    freopen_checked(Call::Freopen, path, mode, stream, next!(freopen: FreopenFn))
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn freopen64(
    path: *const c_char,
    mode: *const c_char,
    stream: *mut FILE,
) -> *mut FILE {
    freopen_checked(
        Call::Freopen64,
        path,
        mode,
        stream,
        next!(freopen64: FreopenFn),
    )
}

/// opendir: the checked open of the directory, then `fdopendir`.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn opendir(path: *const c_char) -> *mut DIR {
    // glibc's own flags for opendir.
    let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_DIRECTORY | libc::O_CLOEXEC;
    match open_checked(Call::Opendir, AT, path, flags, 0) {
        // SAFETY: `fd` is ours.
        Opened::Fd(fd) => wrap_fd(fd, |fd| unsafe { libc::fdopendir(fd) }),
        Opened::Err(e) => fail(e, null_mut()),
        Opened::Next => {
            type F = unsafe extern "C" fn(*const c_char) -> *mut DIR;
            // SAFETY: forwarding.
            or_enosys!(next!(opendir: F).map(|f| unsafe { f(path) }), null_mut())
        }
    }
}
/// For hooks of functions every libc has: no system call to fall back to
/// (`ENOSYS`, which never happens).
const NO_RAW: c_long = -1;

acted_hook!(truncate(path: *const c_char, len: off_t), libc::SYS_truncate,
    truncate_path(Call::Truncate, path, len as c_long));
acted_hook!(truncate64(path: *const c_char, len: libc::off64_t), libc::SYS_truncate,
    truncate_path(Call::Truncate64, path, len as c_long));
acted_hook!(unlink(path: *const c_char), NO_RAW,
    unlink_at(Call::Unlink, AT, path, 0));
acted_hook!(unlinkat(dirfd: c_int, path: *const c_char, flags: c_int), libc::SYS_unlinkat,
    unlink_at(Call::Unlinkat, dirfd, path, flags));
acted_hook!(rename(old: *const c_char, new: *const c_char), NO_RAW,
    rename_held(Call::Rename, AT, old, AT, new, 0));
acted_hook!(renameat(od: c_int, old: *const c_char, nd: c_int, new: *const c_char), NO_RAW,
    rename_held(Call::Renameat, od, old, nd, new, 0));
acted_hook!(mkdir(path: *const c_char, mode: mode_t), NO_RAW,
    mkdir_at(Call::Mkdir, AT, path, mode));
acted_hook!(mkdirat(dirfd: c_int, path: *const c_char, mode: mode_t), libc::SYS_mkdirat,
    mkdir_at(Call::Mkdirat, dirfd, path, mode));
acted_hook!(rmdir(path: *const c_char), NO_RAW,
    unlink_at(Call::Rmdir, AT, path, libc::AT_REMOVEDIR));
acted_hook!(link(old: *const c_char, new: *const c_char), NO_RAW,
    link_held(Call::Link, AT, old, AT, new, 0));
acted_hook!(linkat(od: c_int, old: *const c_char, nd: c_int, new: *const c_char, flags: c_int), libc::SYS_linkat,
    link_held(Call::Linkat, od, old, nd, new, flags));
acted_hook!(symlink(target: *const c_char, linkpath: *const c_char), NO_RAW,
    symlink_at(Call::Symlink, target, AT, linkpath));
acted_hook!(symlinkat(target: *const c_char, dirfd: c_int, linkpath: *const c_char), libc::SYS_symlinkat,
    symlink_at(Call::Symlinkat, target, dirfd, linkpath));
acted_hook!(chmod(path: *const c_char, mode: mode_t), NO_RAW,
    chmod_at(Call::Chmod, AT, path, mode, 0));
acted_hook!(fchmodat(dirfd: c_int, path: *const c_char, mode: mode_t, flags: c_int), libc::SYS_fchmodat,
    chmod_at(Call::Fchmodat, dirfd, path, mode, flags));
acted_hook!(chown(path: *const c_char, uid: uid_t, gid: gid_t), NO_RAW,
    chown_at(Call::Chown, AT, path, uid, gid, 0));
acted_hook!(lchown(path: *const c_char, uid: uid_t, gid: gid_t), NO_RAW,
    chown_at(Call::Lchown, AT, path, uid, gid, libc::AT_SYMLINK_NOFOLLOW));
acted_hook!(fchownat(dirfd: c_int, path: *const c_char, uid: uid_t, gid: gid_t, flags: c_int), libc::SYS_fchownat,
    chown_at(Call::Fchownat, dirfd, path, uid, gid, flags));

/// `truncate`, made on the held object.
pub fn truncate_path(call: Call, path: *const c_char, len: c_long) -> Acted {
    unless_refused(len < 0, || {
        act_on(object(AT, path, Follow::Yes), call, |fd, _| {
            truncate_held(fd, len)
        })
    })
}

/// `unlinkat` (`rmdir` with `AT_REMOVEDIR`: a tree), made relative to the
/// held directory.
pub fn unlink_at(call: Call, dirfd: c_int, path: *const c_char, flags: c_int) -> Acted {
    unless_refused(flags & !libc::AT_REMOVEDIR != 0, || {
        let arg = if flags & libc::AT_REMOVEDIR != 0 {
            tree_arg(dirfd, path)
        } else {
            name(dirfd, path)
        };
        act_on(arg, call, |dir, last| unlinkat_in(dir, last, flags))
    })
}

/// `mkdirat`, made relative to the held directory.
pub fn mkdir_at(call: Call, dirfd: c_int, path: *const c_char, mode: mode_t) -> Acted {
    act_on(name(dirfd, path), call, |dir, last| {
        syscall(
            libc::SYS_mkdirat,
            [dir as c_long, last as c_long, mode as c_long, 0, 0, 0],
        )
    })
}

/// `symlinkat`, the new name made relative to its held directory.
pub fn symlink_at(
    call: Call,
    target: *const c_char,
    dirfd: c_int,
    linkpath: *const c_char,
) -> Acted {
    act_on(name(dirfd, linkpath), call, |dir, last| {
        syscall(
            libc::SYS_symlinkat,
            [target as c_long, dir as c_long, last as c_long, 0, 0, 0],
        )
    })
}

/// `fchmodat` with `flags`, made on the held object. Flags libc answers
/// itself (`EINVAL`, or an empty path with `AT_EMPTY_PATH` in newer
/// glibc) are decided on the path.
pub fn chmod_at(
    call: Call,
    dirfd: c_int,
    path: *const c_char,
    mode: mode_t,
    flags: c_int,
) -> Acted {
    let follow = follow_unless_nofollow(flags);
    if flags & !libc::AT_SYMLINK_NOFOLLOW != 0 {
        return Acted::of(check_write(call, dirfd, path, follow));
    }
    act_on(object(dirfd, path, follow), call, |fd, _| {
        chmod_held(fd, mode)
    })
}

/// `fchownat` with `flags`, made on the held object; `AT_EMPTY_PATH` (the
/// dirfd's own object) is decided on the path.
pub fn chown_at(
    call: Call,
    dirfd: c_int,
    path: *const c_char,
    uid: uid_t,
    gid: gid_t,
    flags: c_int,
) -> Acted {
    let follow = follow_unless_nofollow(flags);
    if flags & !(libc::AT_SYMLINK_NOFOLLOW | libc::AT_EMPTY_PATH) != 0 {
        Acted::Next
    } else if flags & libc::AT_EMPTY_PATH != 0 {
        Acted::of(check_write(call, dirfd, path, follow))
    } else {
        act_on(object(dirfd, path, follow), call, |fd, _| {
            chown_held(fd, uid, gid)
        })
    }
}

/// Arguments the kernel refuses before it looks the path up (`EINVAL`,
/// `ERANGE`, `E2BIG`): the call changes nothing and fails as libc's does
/// (deciding first would answer `ENOENT` for a missing path instead).
pub fn unless_refused(refused: bool, acted: impl FnOnce() -> Acted) -> Acted {
    if refused {
        Acted::Next
    } else {
        acted()
    }
}

/// A write to the last name of `(dirfd, path)`, not followed.
fn name(dirfd: c_int, path: *const c_char) -> PathArg {
    PathArg::new(dirfd, path, Target::Name, Access::Write)
}

/// A write to the object `(dirfd, path)` reaches.
pub fn object(dirfd: c_int, path: *const c_char, follow: Follow) -> PathArg {
    PathArg::new(dirfd, path, Target::Object(follow), Access::Write)
}

fn unlinkat_in(dir: c_int, last: *const c_char, flags: c_int) -> c_long {
    syscall(
        libc::SYS_unlinkat,
        [dir as c_long, last as c_long, flags as c_long, 0, 0, 0],
    )
}

/// `truncate` has no form taking a descriptor that is not open for
/// writing: through the held object's `/proc` link.
fn truncate_held(fd: c_int, len: c_long) -> c_long {
    via_proc(fd, |p| {
        syscall(libc::SYS_truncate, [p as c_long, len, 0, 0, 0, 0])
    })
}

/// `fchmodat2` (Linux 6.6) on the held descriptor, else through its
/// `/proc` link, which reaches a held symlink itself: glibc's
/// `AT_SYMLINK_NOFOLLOW` answer for one (`EOPNOTSUPP`) is kept.
pub fn chmod_held(fd: c_int, mode: mode_t) -> c_long {
    const SYS_FCHMODAT2: c_long = 452;
    let r = syscall(
        SYS_FCHMODAT2,
        [
            fd as c_long,
            c"".as_ptr() as c_long,
            mode as c_long,
            libc::AT_EMPTY_PATH as c_long,
            0,
            0,
        ],
    );
    if r != -(libc::ENOSYS as c_long) {
        return r;
    }
    let symlink = sys::fstatat(fd, c"".as_ptr(), libc::AT_EMPTY_PATH)
        .is_ok_and(|st| st.st_mode & libc::S_IFMT == libc::S_IFLNK);
    if symlink {
        return -(libc::EOPNOTSUPP as c_long);
    }
    via_proc(fd, |p| {
        syscall(
            libc::SYS_fchmodat,
            [
                libc::AT_FDCWD as c_long,
                p as c_long,
                mode as c_long,
                0,
                0,
                0,
            ],
        )
    })
}

/// `fchownat(fd, "", AT_EMPTY_PATH)` takes an `O_PATH` descriptor.
pub fn chown_held(fd: c_int, uid: uid_t, gid: gid_t) -> c_long {
    syscall(
        libc::SYS_fchownat,
        [
            fd as c_long,
            c"".as_ptr() as c_long,
            uid as c_long,
            gid as c_long,
            libc::AT_EMPTY_PATH as c_long,
            0,
        ],
    )
}

/// A rename decided and made on both held directories.
pub fn rename_held(
    call: Call,
    od: c_int,
    old: *const c_char,
    nd: c_int,
    new: *const c_char,
    flags: c_uint,
) -> Acted {
    let exchange = flags & libc::RENAME_EXCHANGE != 0;
    let how = Move::Rename { exchange };
    let (first, second) = move_args(od, old, nd, new, how);
    act_on_two(call, first, second, how, |d1, n1, d2, n2| {
        let args = [d1 as c_long, n1 as c_long, d2 as c_long, n2 as c_long];
        let r = syscall(
            libc::SYS_renameat2,
            [args[0], args[1], args[2], args[3], flags as c_long, 0],
        );
        #[cfg(target_arch = "x86_64")]
        if r == -(libc::ENOSYS as c_long) && flags == 0 {
            // Before Linux 3.15.
            return syscall(
                libc::SYS_renameat,
                [args[0], args[1], args[2], args[3], 0, 0],
            );
        }
        r
    })
}

/// A link decided and made on the held objects: the old name's directory,
/// or, when a final link is followed (`AT_SYMLINK_FOLLOW`), the object
/// itself through its `/proc` link (which `linkat` follows to it).
/// `AT_EMPTY_PATH` (the dirfd's own object) is decided on the path.
pub fn link_held(
    call: Call,
    od: c_int,
    old: *const c_char,
    nd: c_int,
    new: *const c_char,
    flags: c_int,
) -> Acted {
    let how = Move::Link(link_follow(flags));
    if flags & !(libc::AT_SYMLINK_FOLLOW | libc::AT_EMPTY_PATH) != 0 {
        return Acted::Next;
    }
    if flags & libc::AT_EMPTY_PATH != 0 {
        return Acted::of(check_move(call, od, old, nd, new, how));
    }
    let (first, second) = move_args(od, old, nd, new, how);
    let follow = link_follow(flags) == Follow::Yes;
    act_on_two(call, first, second, how, |d1, n1, d2, n2| {
        if follow {
            via_proc(d1, |p| {
                syscall(
                    libc::SYS_linkat,
                    [
                        libc::AT_FDCWD as c_long,
                        p as c_long,
                        d2 as c_long,
                        n2 as c_long,
                        libc::AT_SYMLINK_FOLLOW as c_long,
                        0,
                    ],
                )
            })
        } else {
            syscall(
                libc::SYS_linkat,
                [d1 as c_long, n1 as c_long, d2 as c_long, n2 as c_long, 0, 0],
            )
        }
    })
}

/// `linkat` follows a symlink only when asked (`AT_SYMLINK_FOLLOW`).
pub fn link_follow(flags: c_int) -> Follow {
    if flags & libc::AT_SYMLINK_FOLLOW != 0 {
        Follow::Yes
    } else {
        Follow::No
    }
}

fn follow_unless_nofollow(flags: c_int) -> Follow {
    if flags & libc::AT_SYMLINK_NOFOLLOW != 0 {
        Follow::No
    } else {
        Follow::Yes
    }
}

/// renameat2 appeared in glibc 2.28: fall back to the system call.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn renameat2(
    od: c_int,
    old: *const c_char,
    nd: c_int,
    new: *const c_char,
    flags: c_uint,
) -> c_int {
    rename_held(Call::Renameat2, od, old, nd, new, flags).finish(|| {
        type F = unsafe extern "C" fn(c_int, *const c_char, c_int, *const c_char, c_uint) -> c_int;
        match next!(renameat2: F) {
            // SAFETY: forwarding.
            Some(f) => unsafe { f(od, old, nd, new, flags) },
            None => raw_syscall(
                libc::SYS_renameat2,
                [
                    od as c_long,
                    old as c_long,
                    nd as c_long,
                    new as c_long,
                    flags as c_long,
                    0,
                ],
            ) as c_int,
        }
    })
}

/// mknod/mknodat are functions since glibc 2.33; before that they were
/// inlines calling `__xmknod`/`__xmknodat`, which are hooked below.
///
/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn mknod(path: *const c_char, mode: mode_t, dev: dev_t) -> c_int {
    // SAFETY: same contract.
    unsafe { mknod_common(Call::Mknod, AT, path, mode, dev) }
}

/// # Safety
/// libc ABI.
#[no_mangle]
pub unsafe extern "C" fn mknodat(
    dirfd: c_int,
    path: *const c_char,
    mode: mode_t,
    dev: dev_t,
) -> c_int {
    // SAFETY: same contract.
    unsafe { mknod_common(Call::Mknodat, dirfd, path, mode, dev) }
}

/// `mknodat`, the device (if one) decided, the new name made relative to
/// its held directory.
pub fn mknod_at(call: Call, dirfd: c_int, path: *const c_char, mode: mode_t, dev: dev_t) -> Acted {
    let turns = crate::decide::check::Turns::start();
    let device = check_device(call, mode, dev);
    if turns.end_at(device) {
        return Acted::of(device);
    }
    act_on(name(dirfd, path), call, |dir, last| {
        syscall(
            libc::SYS_mknodat,
            [
                dir as c_long,
                last as c_long,
                mode as c_long,
                dev as c_long,
                0,
                0,
            ],
        )
    })
}

/// `mknod`: a write of the new name, and for a device node the device
/// itself ([`check_device`]).
fn check_mknod(call: Call, dirfd: c_int, path: *const c_char, mode: mode_t, dev: dev_t) -> Verdict {
    let turns = crate::decide::check::Turns::start();
    let v = check_write(call, dirfd, path, Follow::No);
    if turns.end_at(v) {
        return v;
    }
    check_device(call, mode, dev)
}

/// A device node made by `mknod` is a read and a write of the device
/// itself. A block or character device is the same object under any name
/// (the kernel opens it by number), so a node made in `/tmp` for the disk
/// behind `/dev/vda` is decided as `/dev/vda`: its name under `/dev`, from
/// `/sys/dev/{block,char}/MAJ:MIN/uevent`. When the device has no such
/// name (no `/sys`, an unknown number) and a deny rule covers something
/// under `/dev`, the node is denied (fail closed).
fn check_device(call: Call, mode: mode_t, dev: dev_t) -> Verdict {
    let kind = mode & libc::S_IFMT;
    if kind != libc::S_IFBLK && kind != libc::S_IFCHR {
        return Verdict::Allow;
    }
    let turns = crate::decide::check::Turns::start();
    run(|active| {
        let mut name = [0u8; 160];
        let base = Request::new(Kind::File, call, active.program);
        let Some(n) = device_name(kind == libc::S_IFBLK, dev, &mut name) else {
            let req = Request {
                path: Some(b"/dev"),
                ..base
            };
            return match active.table.blocking_rule_under(b"/dev") {
                Some(_) => unresolvable(active, &req),
                None => Verdict::Allow,
            };
        };
        for access in [Access::Read, Access::Write] {
            let req = Request {
                access,
                path: Some(&name[..n]),
                ..base
            };
            let v = judge(active, &req, |_| {});
            if turns.end_at(v) {
                return v;
            }
        }
        Verdict::Allow
    })
}

/// Writes `/dev/NAME` for device `dev` into `out` (`NAME` the `DEVNAME`
/// the kernel gives it in sysfs) and returns its length.
fn device_name(block: bool, dev: dev_t, out: &mut [u8; 160]) -> Option<usize> {
    let mut path = [0u8; 64];
    let mut len = 0;
    let mut put = |bytes: &[u8]| {
        path[len..len + bytes.len()].copy_from_slice(bytes);
        len += bytes.len();
    };
    put(if block {
        b"/sys/dev/block/"
    } else {
        b"/sys/dev/char/"
    });
    let mut digits = [0u8; 10];
    for (i, number) in [libc::major(dev), libc::minor(dev)].into_iter().enumerate() {
        if i == 1 {
            put(b":");
        }
        let mut at = digits.len();
        let mut x = number;
        loop {
            at -= 1;
            digits[at] = b'0' + (x % 10) as u8;
            x /= 10;
            if x == 0 {
                break;
            }
        }
        put(&digits[at..]);
    }
    put(b"/uevent\0");
    let fd = raw_syscall(
        libc::SYS_openat,
        [
            libc::AT_FDCWD as c_long,
            path.as_ptr() as c_long,
            (libc::O_RDONLY | libc::O_CLOEXEC) as c_long,
            0,
            0,
            0,
        ],
    );
    if fd < 0 {
        return None;
    }
    let mut text = [0u8; 512];
    let got = raw_syscall(
        libc::SYS_read,
        [
            fd,
            text.as_mut_ptr() as c_long,
            text.len() as c_long,
            0,
            0,
            0,
        ],
    );
    raw_syscall(libc::SYS_close, [fd, 0, 0, 0, 0, 0]);
    let text = &text[..usize::try_from(got).ok()?];
    let devname = text
        .split(|&b| b == b'\n')
        .find_map(|line| line.strip_prefix(b"DEVNAME="))
        .filter(|name| !name.is_empty() && name.len() <= out.len() - 5)?;
    out[..5].copy_from_slice(b"/dev/");
    out[5..5 + devname.len()].copy_from_slice(devname);
    Some(5 + devname.len())
}

unsafe fn mknod_common(
    call: Call,
    dirfd: c_int,
    path: *const c_char,
    mode: mode_t,
    dev: dev_t,
) -> c_int {
    let acted = mknod_at(call, dirfd, path, mode, dev);
    acted.finish(|| {
        type F = unsafe extern "C" fn(c_int, *const c_char, mode_t, dev_t) -> c_int;
        match next!(mknodat: F) {
            // SAFETY: forwarding.
            Some(f) => unsafe { f(dirfd, path, mode, dev) },
            None => raw_syscall(
                libc::SYS_mknodat,
                [
                    dirfd as c_long,
                    path as c_long,
                    mode as c_long,
                    dev as c_long,
                    0,
                    0,
                ],
            ) as c_int,
        }
    })
}

/// # Safety
/// glibc < 2.33 ABI.
#[no_mangle]
pub unsafe extern "C" fn __xmknod(
    ver: c_int,
    path: *const c_char,
    mode: mode_t,
    dev: *mut dev_t,
) -> c_int {
    // SAFETY: glibc passes a pointer to the caller's dev_t (null: EFAULT).
    let number = unsafe { dev.as_ref() }.copied().unwrap_or(0);
    if let Verdict::Deny(e) = check_mknod(Call::Mknod, AT, path, mode, number) {
        return fail(e, -1);
    }
    type F = unsafe extern "C" fn(c_int, *const c_char, mode_t, *mut dev_t) -> c_int;
    // SAFETY: forwarding.
    or_enosys!(
        next!(__xmknod: F).map(|f| unsafe { f(ver, path, mode, dev) }),
        -1
    )
}

/// # Safety
/// glibc < 2.33 ABI.
#[no_mangle]
pub unsafe extern "C" fn __xmknodat(
    ver: c_int,
    dirfd: c_int,
    path: *const c_char,
    mode: mode_t,
    dev: *mut dev_t,
) -> c_int {
    // SAFETY: glibc passes a pointer to the caller's dev_t (null: EFAULT).
    let number = unsafe { dev.as_ref() }.copied().unwrap_or(0);
    if let Verdict::Deny(e) = check_mknod(Call::Mknodat, dirfd, path, mode, number) {
        return fail(e, -1);
    }
    type F = unsafe extern "C" fn(c_int, c_int, *const c_char, mode_t, *mut dev_t) -> c_int;
    // SAFETY: forwarding.
    or_enosys!(
        next!(__xmknodat: F).map(|f| unsafe { f(ver, dirfd, path, mode, dev) }),
        -1
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The cache key's accesses are exactly the accesses the open is
    /// decided for, for every access mode and combination of the flags
    /// that matter (a weaker key would let a cached read answer a write).
    #[test]
    fn access_bits_are_the_accesses_decided() {
        let extra = [
            libc::O_CREAT,
            libc::O_TRUNC,
            libc::O_APPEND,
            libc::O_TMPFILE,
            libc::O_DIRECTORY,
            libc::O_EXCL,
            libc::O_CLOEXEC,
            libc::O_NOFOLLOW,
        ];
        for mode in 0..4 {
            for mask in 0..1u32 << extra.len() {
                let flags = extra
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| mask & 1 << i != 0)
                    .fold(mode, |f, (_, x)| f | x);
                let (writes, reads) = open_accesses(flags);
                let want = (if writes { recent::WRITE } else { 0 })
                    | (if reads { recent::READ } else { 0 });
                assert_eq!(access_of(flags), want, "flags {flags:#o}");
            }
        }
    }
}
