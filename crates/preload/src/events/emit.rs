//! The event pipeline. For a `file:` or `stderr` sink there is none: the
//! hook's own thread writes each record as it is made (`direct`), so the
//! library starts no thread for its events, nothing is queued and nothing
//! is dropped. For an `http(s)://` sink, hooks push fixed-size
//! [`Record`]s into a bounded, lock-free [`Queue`]; a background writer
//! thread (`ldguard-events`, started on the first event, internal for life
//! and with every signal blocked) turns them into JSON and hands batches to
//! the HTTP sink.
//!
//! HTTP sink only:
//! - Full queue: an allow, audit, behavior or status record is dropped and
//!   counted; the writer reports the count as an event of its own
//!   (`dropped`). Deny and kill records have reserved room, then wait for
//!   the writer within a per-process budget, then are counted as dropped
//!   too (the collector is what is slow), as is what the sink's own buffer
//!   cannot hold while the collector is down.
//! - Normal exit (`atexit`) and a successful exec wait (bounded) until the
//!   writer has written everything queued so far.
//! - `fork`: the child has no writer thread; an atfork handler forgets the
//!   inherited pipeline so the child starts its own on its first event.
//! - `vfork`: the child shares the parent's memory, so it uses the parent's
//!   pipeline; with none yet (starting a thread in a vfork child would be
//!   wrong), it parks the record in the parent's memory, where the parent
//!   sends it with its next event or at exit.

use crate::events::direct::CHILD_WRITES;
use crate::events::queue::Queue;
use crate::events::record::{Context, Record, What};
use crate::os::guard::{self, Internal};
use crate::os::mapped::{Lazy, Zeroed};
use crate::process::active;
use ldguard_events::http::{HttpSink, HttpSinkConfig};
use ldguard_events::{Event, Sink, SinkSpec};
use std::cell::UnsafeCell;
use std::io;
use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, AtomicU8, Ordering};
use std::time::{Duration, Instant};

/// Queue slots (~2.3 KiB each, zeroed pages touched only when used); the
/// last `queue::RESERVED` of them only for deny and kill records.
const QUEUE: usize = 1024;
const BATCH: usize = 64;

struct Pipeline {
    queue: Queue<Record>,
    /// Records written, for bounded flushes (compared with `queue.claimed()`).
    written: AtomicU64,
}

static PIPE: AtomicPtr<Pipeline> = AtomicPtr::new(std::ptr::null_mut());
static STARTING: AtomicBool = AtomicBool::new(false);
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// Called once per process image, during initialisation, with the pid
/// it asked for.
pub fn register_process_hooks(pid: i32) {
    CHILD_WRITES.owner.store(pid, Ordering::Relaxed);
    // SAFETY: plain registration of `extern "C"` handlers that look up
    // libc's `execve` once (before a fork), only touch atomics (in the
    // child) or flush with a bounded wait (at exit).
    unsafe {
        libc::pthread_atfork(Some(before_fork), None, Some(after_fork_in_child));
        libc::atexit(at_exit);
    }
}

extern "C" fn before_fork() {
    // Once per process in effect (a cached pointer afterwards).
    let _ = crate::os::real::EXECVE.get();
    // The child's exec hook zeroes buffers with libc's `memset`, which a
    // process started from a compiled table may never have called: bound
    // lazily (the library is linked `-z lazy`), that first call is a
    // symbol lookup in the child, each page it reads a fresh fault there
    // (4–7 per fork+exec: BENCHMARKS.md section 26). Called here, the
    // child inherits the slot bound; `black_box` keeps it a call.
    let mut byte = [1u8];
    let at = std::hint::black_box(byte.as_mut_ptr());
    // SAFETY: one byte of a local buffer.
    unsafe { libc::memset(at.cast(), 0, std::hint::black_box(1)) };
    // Once per thread that forks, when checks are on.
    if !active::is_off() {
        guard::scratch::before_fork();
    }
}

extern "C" fn after_fork_in_child() {
    // The writer thread did not survive the fork; the old channel may even
    // be mid-operation. Leak it and start afresh on the next event.
    // Each value is written only when it differs: in a child every page
    // written is a copy-on-write fault (several microseconds each), and a
    // process that never sent an event has nothing to reset here.
    if !PIPE.load(Ordering::Relaxed).is_null() {
        PIPE.store(std::ptr::null_mut(), Ordering::Relaxed);
    }
    if STARTING.load(Ordering::Relaxed) {
        STARTING.store(false, Ordering::Relaxed);
    }
    if DROPPED.load(Ordering::Relaxed) != 0 {
        DROPPED.store(0, Ordering::Relaxed);
    }
    CHILD_WRITES
        .owner
        .store(crate::os::sys::getpid(), Ordering::Relaxed);
    crate::events::direct::after_fork_in_child();
    // The parent sends what its vfork children parked; a copy here would
    // be sent twice.
    if ANY_PARKED.load(Ordering::Relaxed) {
        ANY_PARKED.store(false, Ordering::Relaxed);
    }
    for state in PARKED.if_mapped().iter().flat_map(|parked| &parked.state) {
        if state.load(Ordering::Relaxed) != 0 {
            state.store(0, Ordering::Relaxed);
        }
    }
}

extern "C" fn at_exit() {
    let _ = std::panic::catch_unwind(|| {
        if ANY_PARKED.load(Ordering::Acquire) {
            if let Some(pipe) = pipeline() {
                send_parked(pipe);
            }
        }
        flush(Duration::from_secs(2))
    });
}

fn sink_spec() -> Option<&'static SinkSpec> {
    let spec = &active::process()?.settings.events;
    (*spec != SinkSpec::None).then_some(spec)
}

/// Writes `record` now (file or stderr sink) or queues it (HTTP). A
/// queued record never blocks: on a full queue it is dropped and counted,
/// except deny and kill records, which have reserved room and then wait
/// for the writer (within a per-process budget) before they are counted.
pub fn send(record: Record) {
    send_with(record, Patience::for_record(&record));
}

/// Like [`send`], but a full HTTP queue is waited on within a per-process
/// budget. For `behavior` records: a learning run wants every first
/// sighting more than it wants speed, and the budget keeps a stuck sink
/// from slowing the program for long.
pub fn send_patiently(record: Record) {
    let patience = match Patience::for_record(&record) {
        Patience::Drop => Patience::Wait,
        keep => keep,
    };
    send_with(record, patience);
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Patience {
    /// Drop (and count) when the queue is full.
    Drop,
    /// Wait for room within the budget, then drop and count.
    Wait,
    /// Use the reserved room, then wait within the budget.
    Keep,
}

impl Patience {
    fn for_record(record: &Record) -> Patience {
        if record.is_important() {
            Patience::Keep
        } else {
            Patience::Drop
        }
    }
}

/// Total wait for queue room allowed per process (each kind of patience).
const PATIENCE_BUDGET_US: u64 = 2_000_000;
static WAITED_US: AtomicU64 = AtomicU64::new(0);
static IMPORTANT_WAITED_US: AtomicU64 = AtomicU64::new(0);

fn send_with(record: Record, patience: Patience) {
    let Some(spec) = sink_spec() else {
        return;
    };
    if !matches!(spec, SinkSpec::Http(_)) {
        crate::events::direct::write(&record, spec);
        return;
    }
    let Some(pipe) = pipeline() else {
        // A vfork child of a process without a pipeline: an HTTP collector
        // cannot take the record synchronously, so it waits in the parent's
        // memory (shared until the exec) for the parent to send it.
        park(&record);
        return;
    };
    send_parked(pipe);
    let important = patience == Patience::Keep;
    let waited = if important {
        &IMPORTANT_WAITED_US
    } else {
        &WAITED_US
    };
    loop {
        if pipe.queue.push(record, important).is_ok() {
            return;
        }
        if patience == Patience::Drop || waited.load(Ordering::Relaxed) >= PATIENCE_BUDGET_US {
            break;
        }
        // nanosleep: no lock, no allocation, fine in a signal handler.
        std::thread::sleep(Duration::from_micros(100));
        waited.fetch_add(100, Ordering::Relaxed);
    }
    DROPPED.fetch_add(1, Ordering::Relaxed);
}

/// Records made by vfork children for an HTTP sink, waiting for the parent.
const PARKING: usize = 16;

struct Parking {
    /// Per slot: 0 free, 1 being written, 2 ready.
    state: [AtomicU8; PARKING],
    records: [UnsafeCell<MaybeUninit<Record>>; PARKING],
}

// SAFETY: a slot's record is written only by the thread that moved its
// state from 0 to 1, and read only by the thread that moves it from 2 to 1,
// after the Release store of 2 that published it.
unsafe impl Sync for Parking {}

// SAFETY: all zero is every slot free (state 0) with no record in it.
unsafe impl Zeroed for Parking {}

/// Mapped by the first vfork child that parks a record (37 KiB that a
/// process without an HTTP sink and vfork children never uses); without
/// it the record is counted as dropped.
static PARKED: Lazy<Parking> = Lazy::new();
/// Whether any slot may be ready: one relaxed load when nothing waits.
static ANY_PARKED: AtomicBool = AtomicBool::new(false);

/// Leaves `record` for the parent; counted as dropped when every slot is
/// taken. No allocation, no lock: this runs in a vfork child.
fn park(record: &Record) {
    park_in(PARKED.get(), record)
}

/// [`park`] into `parked`; without it the record is counted as dropped.
fn park_in(parked: Option<&Parking>, record: &Record) {
    let Some(parked) = parked else {
        DROPPED.fetch_add(1, Ordering::Relaxed);
        return;
    };
    for (i, state) in parked.state.iter().enumerate() {
        if state
            .compare_exchange(0, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            // SAFETY: this thread owns slot i (state 1) until it stores 2.
            unsafe { (*parked.records[i].get()).write(*record) };
            state.store(2, Ordering::Release);
            ANY_PARKED.store(true, Ordering::Release);
            return;
        }
    }
    DROPPED.fetch_add(1, Ordering::Relaxed);
}

/// Queues what vfork children parked (on the parent's next event and at exit).
fn send_parked(pipe: &Pipeline) {
    // A plain load first: every event passes here, and a swap would make
    // each one write the shared flag.
    if !ANY_PARKED.load(Ordering::Relaxed) || !ANY_PARKED.swap(false, Ordering::AcqRel) {
        return;
    }
    let Some(parked) = PARKED.if_mapped() else {
        return;
    };
    for (i, state) in parked.state.iter().enumerate() {
        if state
            .compare_exchange(2, 1, Ordering::Acquire, Ordering::Relaxed)
            .is_ok()
        {
            // SAFETY: state 2 -> 1 gives this thread the published record.
            let record = unsafe { (*parked.records[i].get()).assume_init_read() };
            state.store(0, Ordering::Release);
            if pipe.queue.push(record, true).is_err() {
                DROPPED.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A status note from the library (configuration or policy problems).
pub fn status(message: &str) {
    let mut r = Record::new(What::Status);
    r.target.push(message.as_bytes());
    send(r);
}

/// Writes `record` synchronously, bypassing any queue: for `kill` (the
/// process dies right after). A file or stderr sink writes it as usual;
/// with an HTTP sink it goes to stderr.
pub fn write_direct(record: &Record) {
    if let Some(spec) = sink_spec() {
        crate::events::direct::write(record, spec);
    }
}

/// The pipeline to send into, started if needed; `None` in a vfork child
/// of a process that has none.
fn pipeline() -> Option<&'static Pipeline> {
    loop {
        let p = PIPE.load(Ordering::Acquire);
        // SAFETY: PIPE holds null or a leaked, never-freed Pipeline.
        if let Some(p) = unsafe { p.as_ref() } {
            return Some(p);
        }
        if CHILD_WRITES.owner.load(Ordering::Relaxed) != crate::os::sys::getpid() {
            return None;
        }
        if STARTING
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
        {
            return start();
        }
        // Another thread is starting it; it publishes or gives up quickly.
        // SAFETY: no preconditions.
        unsafe { libc::sched_yield() };
    }
}

fn start() -> Option<&'static Pipeline> {
    let started = start_internal();
    if started.is_none() {
        STARTING.store(false, Ordering::Release);
    }
    started
}

fn start_internal() -> Option<&'static Pipeline> {
    let spec = sink_spec()?;
    let _section = Internal::enter();
    // Open the sink here, synchronously: the program may close its stderr
    // (coreutils' close_stdout) before a new thread gets to run.
    let mut notes = Vec::new();
    let sink: Box<dyn Sink> = match open_sink(spec) {
        Ok(s) => s,
        Err(e) => {
            let mut r = Record::new(What::Status);
            r.target
                .push(format!("{e}; writing events to stderr instead").as_bytes());
            notes.push(r);
            Box::new(StderrLines)
        }
    };
    let pipe: &'static Pipeline = Box::leak(Box::new(Pipeline {
        queue: Queue::new(QUEUE)?,
        written: AtomicU64::new(0),
    }));
    // No thread (e.g. RLIMIT_NPROC): the caller writes directly instead.
    guard::spawn_library_thread("ldguard-events", 256 * 1024, move || {
        writer(pipe, sink, notes)
    })
    .ok()?;
    PIPE.store(pipe as *const Pipeline as *mut Pipeline, Ordering::Release);
    Some(pipe)
}

/// Opens the HTTP sink with the policy server's token and CA file (the
/// same token as for the policy).
fn open_sink(spec: &SinkSpec) -> io::Result<Box<dyn Sink>> {
    let SinkSpec::Http(url) = spec else {
        return Ok(Box::new(StderrLines));
    };
    let mut config = HttpSinkConfig::new(url.clone());
    if let Some(process) = active::process() {
        let settings = &process.settings;
        // No status event from here: this runs while the pipeline is starting.
        config.token = crate::process::config::token(settings).0;
        config.ca_file = settings.ca_file.map(PathBuf::from);
    }
    Ok(Box::new(HttpSink::with_spawner(config, spawn_http_sender)?))
}

/// The writer's fallback when the HTTP sink cannot be made: each event's
/// line to stderr.
struct StderrLines;

impl Sink for StderrLines {
    fn write_batch(&mut self, events: &[Event]) -> io::Result<()> {
        for event in events {
            crate::events::direct::write_stderr(&event.to_line());
        }
        Ok(())
    }
}

/// The HTTP sink's sender thread, without `std::thread` (see
/// `sys::spawn_thread`); std's default stack size, as it had.
fn spawn_http_sender(name: &'static str, body: Box<dyn FnOnce() + Send>) -> std::io::Result<()> {
    let counted = crate::os::quiesce::Counted::new();
    crate::os::sys::spawn_thread(
        name,
        2 << 20,
        Box::new(move || {
            let _counted = counted;
            body()
        }),
    )
}

fn writer(pipe: &'static Pipeline, mut sink: Box<dyn Sink>, notes: Vec<Record>) {
    let ctx = Context::current();
    let mut notes: Vec<Event> = notes.iter().map(|r| r.event(&ctx)).collect();
    let mut reported_drops = 0u64;
    let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
    loop {
        batch.append(&mut notes);
        let mut taken = 0u64;
        while batch.len() < BATCH {
            match pipe.queue.pop() {
                Some(r) => {
                    batch.push(r.event(&ctx));
                    taken += 1;
                }
                None => break,
            }
        }
        let dropped = DROPPED.load(Ordering::Relaxed);
        if dropped > reported_drops {
            batch.push(Record::new(What::Dropped(dropped - reported_drops)).event(&ctx));
            reported_drops = dropped;
        }
        if batch.is_empty() {
            if crate::os::quiesce::stopping() {
                // Everything queued is written: deliver it, then leave; the
                // next event starts a pipeline again.
                let _ = sink.flush();
                let _ = ldguard_events::http::drain_current(STOP_DELIVERY);
                drop(sink);
                PIPE.store(std::ptr::null_mut(), Ordering::Release);
                STARTING.store(false, Ordering::Release);
                return;
            }
            pipe.queue.wait(1000);
            continue;
        }
        let _ = sink.write_batch(&batch);
        let _ = sink.flush();
        batch.clear();
        pipe.written.fetch_add(taken, Ordering::AcqRel);
    }
}

/// Longest wait for an HTTP sink to deliver what it holds when the writer
/// stops for a call that needs a single thread (`quiesce`).
const STOP_DELIVERY: Duration = Duration::from_secs(2);

/// Wakes the writer (to see a stop request).
pub fn wake_writer() {
    // SAFETY: as in `pipeline`.
    if let Some(pipe) = unsafe { PIPE.load(Ordering::Acquire).as_ref() } {
        pipe.queue.wake();
    }
}

/// Waits (at most `timeout`) until every record queued so far is written,
/// and, for an HTTP sink, delivered.
pub fn flush(timeout: Duration) {
    // No pipeline in this process: nothing was queued here, and an HTTP
    // sink exists only behind one (a forked child's is its parent's). No
    // clock read: before an exec in a forked child, the clock's pages
    // were faults of their own.
    if PIPE.load(Ordering::Acquire).is_null() {
        return;
    }
    let deadline = Instant::now() + timeout;
    wait_written(timeout);
    // The HTTP sink buffers what the writer hands it and posts in the
    // background; wait for that too, in what is left of the time.
    let _ = ldguard_events::http::drain_current(deadline.saturating_duration_since(Instant::now()));
}

fn wait_written(timeout: Duration) {
    // SAFETY: as in `pipeline`.
    let Some(pipe) = (unsafe { PIPE.load(Ordering::Acquire).as_ref() }) else {
        return;
    };
    let target = pipe.queue.claimed();
    if pipe.written.load(Ordering::Acquire) >= target {
        return;
    }
    let deadline = Instant::now() + timeout;
    while pipe.written.load(Ordering::Acquire) < target && Instant::now() < deadline {
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// Before an exec replaces the image: flush what is queued.
pub fn flush_before_exec() {
    flush(Duration::from_secs(1));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_parking_a_record_is_counted_as_dropped() {
        let before = DROPPED.load(Ordering::Relaxed);
        park_in(None, &Record::new(What::Status));
        assert!(DROPPED.load(Ordering::Relaxed) > before);
    }
}
