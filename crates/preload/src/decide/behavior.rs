//! `log: ["behavior"]`: report each distinct operation once per process, so
//! `ldguard learn` sees everything a workload does without drowning in
//! repeats.
//!
//! This runs on the hooked call path (signal handlers, vfork children and
//! all), so the dedup set is a fixed-size open-addressing table of 64-bit
//! operation hashes in static memory, claimed with compare-and-swap: no
//! lock, no allocation, nothing a fork can leave half-held. A forked child
//! inherits the parent's set (same program, so the same operations need no
//! second report); an exec starts a fresh one.
//!
//! When a probe window is full the set stops deduplicating precisely: the
//! operation overwrites a slot (so an evicted operation may be reported
//! again) and is counted. Those imprecise reports are capped, so volume
//! stays bounded whatever the workload does; past the cap operations are
//! counted and a status event says so once.

use crate::events::emit;
use crate::os::mapped::Lazy;
use ldguard_policy::{Kind, Request};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// Slots in the set (64 KiB, mapped when the first operation is recorded). A python web app touches a
/// few hundred distinct operations, nginx fewer.
const SLOTS: usize = 8192;
/// Slots probed before the set counts as full for an operation.
const PROBE: usize = 32;
/// Reports allowed once the set is full, before reports are suppressed.
const OVERFLOW_BUDGET: u64 = SLOTS as u64;

/// Mapped by the first process that records behaviour (most processes
/// never do); without it every operation is reported as one the set could
/// not deduplicate (counted and capped).
static SET: Lazy<[AtomicU64; SLOTS]> = Lazy::new();
/// Operations reported without a slot of their own (imprecise dedup).
static OVERFLOWED: AtomicU64 = AtomicU64::new(0);
/// Operations not reported at all because the overflow budget was spent.
static SUPPRESSED: AtomicU64 = AtomicU64::new(0);
static SUPPRESSION_REPORTED: AtomicBool = AtomicBool::new(false);

/// Whether `req` is an operation this process has not reported yet, when
/// the policy records behaviour. Ignored calls are never behaviour.
#[inline]
pub fn first_time(active: &crate::process::active::Active, req: &Request<'_>) -> bool {
    let table = &active.table;
    if !table.log_classes().behavior() || table.is_ignored(req.call) {
        return false;
    }
    report_once(SET.get().map(|set| &set[..]), operation_hash(req))
}

/// Whether the operation `hash` is reported: the first time it is seen in
/// `set`, or, without a set or a free slot, within the overflow budget.
fn report_once(set: Option<&[AtomicU64]>, hash: u64) -> bool {
    let Some(set) = set else {
        return overflow();
    };
    match insert(set, hash) {
        Insert::New => true,
        Insert::Seen => false,
        Insert::Full => overflow(),
    }
}

/// Counts (and caps) a report the set could not deduplicate.
fn overflow() -> bool {
    if OVERFLOWED.fetch_add(1, Ordering::Relaxed) < OVERFLOW_BUDGET {
        return true;
    }
    SUPPRESSED.fetch_add(1, Ordering::Relaxed);
    if !SUPPRESSION_REPORTED.swap(true, Ordering::Relaxed) {
        emit::status(
            "behavior: the per-process dedup set is full and its overflow budget spent; \
             further new operations of this process are not reported (the learned policy \
             may miss some)",
        );
    }
    false
}

#[derive(Debug, PartialEq, Eq)]
enum Insert {
    New,
    Seen,
    /// No free slot in the probe window: the hash took over a slot.
    Full,
}

fn insert(set: &[AtomicU64], hash: u64) -> Insert {
    // 0 marks an empty slot.
    let h = hash | 1 << 63;
    let start = (hash as usize) % set.len();
    for i in 0..PROBE.min(set.len()) {
        let slot = &set[(start + i) % set.len()];
        match slot.compare_exchange(0, h, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => return Insert::New,
            Err(seen) if seen == h => return Insert::Seen,
            Err(_) => {}
        }
    }
    set[start].store(h, Ordering::Release);
    Insert::Full
}

/// FNV-1a over everything that makes an operation distinct: kind, call,
/// file access or network direction, and the normalised target (path,
/// socket path, address, port, protocol, host). The program is the same
/// for the whole process image.
fn operation_hash(req: &Request<'_>) -> u64 {
    let mut h = Fnv::new();
    h.byte(req.kind as u8);
    h.byte(req.call as u8);
    match req.kind {
        Kind::File => h.byte(req.access as u8),
        Kind::Network => h.byte(req.direction as u8),
        Kind::Exec | Kind::Syscall => {}
    }
    // Each field is tagged and length-prefixed so that no two different
    // requests feed the same byte stream.
    let mut field = |tag: u8, bytes: Option<&[u8]>| {
        if let Some(b) = bytes {
            h.byte(tag);
            h.bytes(&(b.len() as u32).to_le_bytes());
            h.bytes(b);
        }
    };
    field(1, req.path);
    field(2, req.unix);
    field(3, req.host.map(str::as_bytes));
    match req.address {
        Some(IpAddr::V4(a)) => field(4, Some(&a.octets())),
        Some(IpAddr::V6(a)) => field(5, Some(&a.octets())),
        None => {}
    }
    field(6, req.port.map(u16::to_le_bytes).as_ref().map(|p| &p[..]));
    field(7, req.protocol.map(|p| [p as u8]).as_ref().map(|p| &p[..]));
    h.0
}

struct Fnv(u64);

impl Fnv {
    fn new() -> Self {
        Fnv(0xcbf2_9ce4_8422_2325)
    }

    fn byte(&mut self, b: u8) {
        self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }

    fn bytes(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.byte(b);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ldguard_policy::{Access, Call, Direction};

    fn file(path: &[u8], access: Access) -> u64 {
        operation_hash(&Request {
            path: Some(path),
            access,
            ..Request::new(Kind::File, Call::Openat, b"/bin/x")
        })
    }

    #[test]
    fn distinct_operations_hash_apart_and_repeats_alike() {
        assert_eq!(
            file(b"/etc/hosts", Access::Read),
            file(b"/etc/hosts", Access::Read)
        );
        assert_ne!(
            file(b"/etc/hosts", Access::Read),
            file(b"/etc/hosts", Access::Write)
        );
        assert_ne!(
            file(b"/etc/hosts", Access::Read),
            file(b"/etc/host", Access::Read)
        );
        let net = |port: u16, direction| {
            operation_hash(&Request {
                address: Some("127.0.0.1".parse().unwrap()),
                port: Some(port),
                direction,
                ..Request::new(Kind::Network, Call::Connect, b"/bin/x")
            })
        };
        assert_ne!(net(80, Direction::Outbound), net(81, Direction::Outbound));
        assert_ne!(net(80, Direction::Outbound), net(80, Direction::Listen));
        // The program is not part of the key (it is fixed per process).
        assert_eq!(
            operation_hash(&Request::new(Kind::Syscall, Call::Setuid, b"/a")),
            operation_hash(&Request::new(Kind::Syscall, Call::Setuid, b"/b"))
        );
    }

    #[test]
    fn set_reports_once_and_overflows_without_growing() {
        let set: Vec<AtomicU64> = (0..64).map(|_| AtomicU64::new(0)).collect();
        assert_eq!(insert(&set, 5), Insert::New);
        assert_eq!(insert(&set, 5), Insert::Seen);
        for h in 100..163 {
            assert_eq!(insert(&set, h), Insert::New, "{h}");
        }
        // Every slot is taken: a new hash overwrites one instead of looping.
        assert_eq!(insert(&set, 1000), Insert::Full);
        assert_eq!(insert(&set, 1000), Insert::Seen, "it took a slot");
    }

    #[test]
    fn without_a_set_operations_are_reported_and_counted_as_overflow() {
        let before = OVERFLOWED.load(Ordering::Relaxed);
        assert!(report_once(None, 42), "reported (within the budget)");
        assert!(report_once(None, 42), "no set: no dedup");
        assert!(OVERFLOWED.load(Ordering::Relaxed) >= before + 2, "counted");
        let set: Vec<AtomicU64> = (0..64).map(|_| AtomicU64::new(0)).collect();
        assert!(report_once(Some(&set), 42));
        assert!(!report_once(Some(&set), 42), "with a set: once");
    }

    #[test]
    fn concurrent_inserts_report_each_hash_exactly_once() {
        let set: &'static [AtomicU64] = Box::leak(
            (0..4096)
                .map(|_| AtomicU64::new(0))
                .collect::<Vec<_>>()
                .into(),
        );
        let news: usize = (0..4)
            .map(|_| {
                std::thread::spawn(move || {
                    (0..1000u64)
                        .filter(|&h| {
                            insert(set, h.wrapping_mul(0x9e37_79b9_7f4a_7c15)) == Insert::New
                        })
                        .count()
                })
            })
            .collect::<Vec<_>>()
            .into_iter()
            .map(|t| t.join().unwrap())
            .sum();
        assert_eq!(news, 1000);
    }
}
