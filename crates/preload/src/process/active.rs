//! The process-wide facts the hooks read: whether checks are on, the rule
//! table in force, and what stays the same for the life of the process
//! image. This module only stores and publishes; `state` decides what to
//! publish at start-up and `refresh` what to publish later.
//!
//! Hot path: one `Acquire` load of [`STATUS`] (all a `disabled` process
//! pays), then one load of [`ACTIVE`]. Tables are immutable and are never
//! freed once published, so a reader needs no reference count, no lock and
//! no hazard pointer, and a forked child can keep using the pointer it
//! inherited. A refresh that installs a new table leaks the old one (a few
//! KiB per policy change, which is rare); that is the price of a hot path
//! that is safe in signal handlers and across fork.

use crate::process::config::Settings;
use ldguard_policy::{Mode, RuleTable};
use std::sync::atomic::{AtomicPtr, AtomicU8, Ordering};
use std::sync::OnceLock;

pub const UNINIT: u8 = 0;
pub const INITIALIZING: u8 = 1;
/// No checks: `disabled` mode, or no policy with `onNoPolicy: allow`.
pub const OFF: u8 = 2;
pub const ON: u8 = 3;

/// One of the states above; `state` drives the start-up transitions.
pub static STATUS: AtomicU8 = AtomicU8::new(UNINIT);
static ACTIVE: AtomicPtr<Active> = AtomicPtr::new(std::ptr::null_mut());
static PROCESS: OnceLock<Process> = OnceLock::new();

/// What stays the same for the life of the process image.
pub struct Process {
    pub program: Program,
    pub settings: Settings,
}

/// The program's resolved path (`sys::self_exe`), read on first use: a
/// process that loads no policy (`disabled`, nothing configured) never
/// needs it, and in a freshly exec'd process that `readlink` of
/// `/proc/self/exe` is the dearest system call of start-up (~10 µs: procfs
/// builds the new pid's entries; BENCHMARKS.md section 21). Lock-free, so
/// a forked child or a signal handler never waits on a thread that is not
/// there; two first uses at once both read it and one copy is kept.
pub struct Program(AtomicPtr<Box<[u8]>>);

impl Program {
    pub const fn unread() -> Program {
        Program(AtomicPtr::new(std::ptr::null_mut()))
    }
}

impl std::ops::Deref for Program {
    type Target = [u8];

    fn deref(&self) -> &[u8] {
        let mut name = self.0.load(Ordering::Acquire);
        if name.is_null() {
            let read = Box::into_raw(Box::new(crate::os::sys::self_exe()));
            name = match self.0.compare_exchange(
                std::ptr::null_mut(),
                read,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => read,
                Err(first) => {
                    // SAFETY: `read` came from `Box::into_raw` above and was
                    // not published: nothing else can refer to it.
                    drop(unsafe { Box::from_raw(read) });
                    first
                }
            };
        }
        // SAFETY: a non-null pointer here was published from
        // `Box::into_raw` and is never freed or replaced afterwards.
        unsafe { &*name }
    }
}

/// One published policy, specialised for this program.
pub struct Active {
    pub table: RuleTable,
    /// The mode in force: `LDGUARD_MODE` when given, else the policy's.
    pub mode: Mode,
    pub program: &'static [u8],
    /// Where the policy came from (file path, URL, or a built-in name).
    pub origin: String,
}

/// Whether checks are off, without initialising (for the `disabled` fast
/// path the hooks take before anything else).
#[inline]
pub fn is_off() -> bool {
    STATUS.load(Ordering::Relaxed) == OFF
}

/// The table in force, without initialising.
#[inline]
pub fn published() -> Option<&'static Active> {
    // SAFETY: ACTIVE only ever holds null or a leaked, never-freed Box.
    unsafe { ACTIVE.load(Ordering::Acquire).as_ref() }
}

pub fn process() -> Option<&'static Process> {
    PROCESS.get()
}

/// Records the process facts once (the first caller wins).
pub fn set_process(make: impl FnOnce() -> Process) -> &'static Process {
    PROCESS.get_or_init(make)
}

/// Whether the settings force `disabled`, so no policy can ever apply.
pub fn forced_disabled() -> bool {
    PROCESS
        .get()
        .is_some_and(|p| p.settings.mode == Some(Mode::Disabled))
}

/// Publishes `table` as the policy in force (used at start-up, and by a
/// background refresher to swap policies without a restart). Returns false
/// when the process is not initialised yet.
pub fn install(table: RuleTable, origin: String) -> bool {
    let Some(process) = PROCESS.get() else {
        return false;
    };
    let table = if table.program() == Some(&process.program[..]) {
        table
    } else {
        table.for_program(&process.program)
    };
    publish(process, table, origin);
    true
}

/// Publishes `table` and switches checks on or off according to its mode.
/// The table is used as it is: specialised for this program, or generic
/// (a baked compiled table, the built-in fallback), which decides the same,
/// testing `program` globs as it goes; specialising a table read from a
/// file would mean parsing its policy after all.
pub fn publish(process: &'static Process, table: RuleTable, origin: String) {
    let mode = process.settings.mode.unwrap_or(table.mode());
    let active = Box::new(Active {
        table,
        mode,
        program: &process.program,
        origin,
    });
    ACTIVE.store(Box::into_raw(active), Ordering::Release);
    STATUS.store(
        if mode == Mode::Disabled { OFF } else { ON },
        Ordering::Release,
    );
}

#[cfg(test)]
mod tests {
    use super::Program;

    /// Read once, on first use, from any thread: every reader gets the same
    /// bytes at the same address (a reader may keep the slice forever).
    #[test]
    fn the_program_name_is_read_once_and_shared() {
        let program: &'static Program = Box::leak(Box::new(Program::unread()));
        let readers: Vec<_> = (0..4)
            .map(|_| std::thread::spawn(move || program.as_ptr() as usize))
            .collect();
        let addresses: Vec<usize> = readers.into_iter().map(|r| r.join().unwrap()).collect();
        assert!(addresses.iter().all(|&a| a == program.as_ptr() as usize));
        let exe = std::fs::read_link("/proc/self/exe").unwrap();
        assert_eq!(&**program, exe.as_os_str().as_encoded_bytes());
    }
}
