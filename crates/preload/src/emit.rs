//! The event pipeline: hooks `try_send` fixed-size [`Record`]s into a
//! bounded crossbeam channel; a background writer thread, started on the
//! first event, turns them into JSON and hands batches to the sink.
//!
//! - Full queue: the record is dropped and counted; the writer reports the
//!   count as an event of its own.
//! - Normal exit (`atexit`) and a successful exec wait (bounded) until the
//!   writer has written everything queued so far.
//! - `fork`: the child has no writer thread; an atfork handler forgets the
//!   inherited pipeline so the child starts its own on its first event.
//! - `vfork`: the child shares the parent's memory, so it uses the parent's
//!   pipeline; with none yet, it writes its event directly (starting a
//!   thread in a vfork child would be wrong).

use crate::guard::Guard;
use crate::record::{Context, Record, What};
use crate::state;
use crossbeam_channel::{Receiver, Sender, TrySendError};
use ldguard_events::{Event, Sink, SinkSpec};
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicPtr, AtomicU64, Ordering};
use std::time::{Duration, Instant};

const QUEUE: usize = 256;
const BATCH: usize = 64;

struct Pipeline {
    tx: Sender<Record>,
    /// Records queued and records written, for bounded flushes.
    sent: AtomicU64,
    written: AtomicU64,
}

static PIPE: AtomicPtr<Pipeline> = AtomicPtr::new(std::ptr::null_mut());
static STARTING: AtomicBool = AtomicBool::new(false);
static DROPPED: AtomicU64 = AtomicU64::new(0);
/// The process that owns the pipeline (updated in a forked child); another
/// pid here means a vfork child running on its parent's memory.
static OWNER: AtomicI32 = AtomicI32::new(0);

/// Called once per process image, during initialisation.
pub fn register_process_hooks() {
    OWNER.store(crate::sys::getpid(), Ordering::Relaxed);
    // SAFETY: plain registration of `extern "C"` handlers that only touch
    // atomics (at fork) or flush with a bounded wait (at exit).
    unsafe {
        libc::pthread_atfork(None, None, Some(after_fork_in_child));
        libc::atexit(at_exit);
    }
}

extern "C" fn after_fork_in_child() {
    // The writer thread did not survive the fork; the old channel may even
    // be mid-operation. Leak it and start afresh on the next event.
    PIPE.store(std::ptr::null_mut(), Ordering::Relaxed);
    STARTING.store(false, Ordering::Relaxed);
    DROPPED.store(0, Ordering::Relaxed);
    OWNER.store(crate::sys::getpid(), Ordering::Relaxed);
}

extern "C" fn at_exit() {
    let _ = std::panic::catch_unwind(|| flush(Duration::from_secs(2)));
}

fn sink_spec() -> Option<&'static SinkSpec> {
    let spec = &state::process()?.settings.events;
    (*spec != SinkSpec::None).then_some(spec)
}

/// Queues `record` (never blocks). Call with the guard held.
pub fn send(record: Record) {
    send_with(record, false);
}

/// Like [`send`], but a full queue is waited on (100 µs sleeps: no lock,
/// no allocation) within a per-process budget. For `behavior` records: a
/// learning run wants every first sighting more than it wants speed, and
/// the budget keeps a stuck sink from slowing the program for long.
pub fn send_patiently(record: Record) {
    send_with(record, true);
}

/// Total wait allowed to [`send_patiently`] per process.
const PATIENCE_BUDGET_US: u64 = 2_000_000;
static WAITED_US: AtomicU64 = AtomicU64::new(0);

fn send_with(mut record: Record, patient: bool) {
    if sink_spec().is_none() {
        return;
    }
    let pipe = match pipeline() {
        Some(p) => p,
        None => {
            write_direct(&record);
            return;
        }
    };
    loop {
        match pipe.tx.try_send(record) {
            Ok(()) => {
                pipe.sent.fetch_add(1, Ordering::AcqRel);
                return;
            }
            Err(TrySendError::Full(r))
                if patient && WAITED_US.load(Ordering::Relaxed) < PATIENCE_BUDGET_US =>
            {
                record = r;
                std::thread::sleep(Duration::from_micros(100));
                WAITED_US.fetch_add(100, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                DROPPED.fetch_add(1, Ordering::Relaxed);
                return;
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

/// Writes `record` synchronously, bypassing the queue: for `kill` (the
/// process dies right after) and for vfork children without a pipeline.
pub fn write_direct(record: &Record) {
    let Some(spec) = sink_spec() else { return };
    let event = record.event(&Context::gather());
    let written = match spec {
        SinkSpec::File(path) => ldguard_events::FileSink::open(path)
            .and_then(|mut sink| sink.write_batch(std::slice::from_ref(&event)))
            .is_ok(),
        _ => false,
    };
    if !written {
        // stderr, and the fallback for sinks that cannot be written
        // synchronously (HTTP) or files that cannot be opened.
        let _ = ldguard_events::StderrSink::new().write_batch(std::slice::from_ref(&event));
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
        if OWNER.load(Ordering::Relaxed) != crate::sys::getpid() {
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
    let spec = sink_spec()?;
    // Open the sink here, synchronously: the program may close its stderr
    // (coreutils' close_stdout) before a new thread gets to run.
    let mut notes = Vec::new();
    let sink: Box<dyn Sink> = match crate::refresh::open_sink(spec) {
        Ok(s) => s,
        Err(e) => {
            let mut r = Record::new(What::Status);
            r.target
                .push(format!("{e}; writing events to stderr instead").as_bytes());
            notes.push(r);
            Box::new(ldguard_events::StderrSink::new())
        }
    };
    let (tx, rx) = crossbeam_channel::bounded(QUEUE);
    let pipe: &'static Pipeline = Box::leak(Box::new(Pipeline {
        tx,
        sent: AtomicU64::new(0),
        written: AtomicU64::new(0),
    }));
    let spawned = std::thread::Builder::new()
        .name("ldguard-events".into())
        .stack_size(256 * 1024)
        .spawn(move || writer(pipe, rx, sink, notes));
    match spawned {
        Ok(_) => {
            PIPE.store(pipe as *const Pipeline as *mut Pipeline, Ordering::Release);
            Some(pipe)
        }
        Err(_) => {
            // No thread (e.g. RLIMIT_NPROC): write directly instead.
            STARTING.store(false, Ordering::Release);
            None
        }
    }
}

fn writer(
    pipe: &'static Pipeline,
    rx: Receiver<Record>,
    mut sink: Box<dyn Sink>,
    notes: Vec<Record>,
) {
    if let Some(g) = Guard::enter() {
        g.hold_forever();
    }
    let ctx = Context::gather();
    let mut notes: Vec<Event> = notes.iter().map(|r| r.event(&ctx)).collect();
    let mut reported_drops = 0u64;
    let mut batch: Vec<Event> = Vec::with_capacity(BATCH);
    while let Ok(first) = rx.recv() {
        batch.append(&mut notes);
        batch.push(first.event(&ctx));
        let mut taken = 1u64;
        while batch.len() < BATCH {
            match rx.try_recv() {
                Ok(r) => {
                    batch.push(r.event(&ctx));
                    taken += 1;
                }
                Err(_) => break,
            }
        }
        let dropped = DROPPED.load(Ordering::Relaxed);
        if dropped > reported_drops {
            batch.push(Record::new(What::Dropped(dropped - reported_drops)).event(&ctx));
            reported_drops = dropped;
        }
        let _ = sink.write_batch(&batch);
        let _ = sink.flush();
        batch.clear();
        pipe.written.fetch_add(taken, Ordering::AcqRel);
    }
}

/// Waits (at most `timeout`) until every record queued so far is written,
/// and, for an HTTP sink, delivered.
pub fn flush(timeout: Duration) {
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
    let target = pipe.sent.load(Ordering::Acquire);
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
