//! Names the process resolved with `getaddrinfo`, by address, so `host`
//! rules can match a later `connect`. A small fixed table of seqlock slots:
//! writers (getaddrinfo) and readers (connect) take no lock and allocate
//! nothing; a reader that races a writer retries or misses.

use crate::os::mapped::{Lazy, Zeroed};
use std::net::IpAddr;
use std::sync::atomic::{fence, AtomicU32, AtomicU64, Ordering};

const SLOTS: usize = 64;
const NAME: usize = 128;

struct Slot {
    seq: AtomicU64,
    /// Address (v4 mapped into v6 form) and name, packed in words so they
    /// can be copied with atomics only.
    addr: [AtomicU64; 2],
    len: AtomicU32,
    name: [AtomicU64; NAME / 8],
}

// SAFETY: atomics only; all zero is a free slot (sequence 0).
unsafe impl Zeroed for Slot {}

/// Mapped by the first name remembered (10 KiB most processes never use).
/// Without it no name is remembered, as for names pushed out of a full
/// table: `host` rules still apply to the lookup itself.
static TABLE: Lazy<[Slot; SLOTS]> = Lazy::new();
static NEXT: AtomicU32 = AtomicU32::new(0);
/// How many slots were ever claimed (never decreases): `lookup` scans only
/// those, so the many processes that never call getaddrinfo pay nothing
/// on `connect` (a full scan costs ~400 instructions).
static USED: AtomicU32 = AtomicU32::new(0);

fn key(ip: IpAddr) -> [u64; 2] {
    let v6 = match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped(),
        IpAddr::V6(v6) => v6,
    };
    let b = v6.octets();
    [
        u64::from_ne_bytes(b[..8].try_into().unwrap_or_default()),
        u64::from_ne_bytes(b[8..].try_into().unwrap_or_default()),
    ]
}

/// Remembers that `name` resolved to `ip`.
pub fn remember(ip: IpAddr, name: &[u8]) {
    if name.is_empty() || name.len() > NAME {
        return;
    }
    let Some(table) = TABLE.get() else {
        return;
    };
    let index = NEXT.fetch_add(1, Ordering::Relaxed) as usize % SLOTS;
    // Before the slot is written: a reader that sees the claim but not yet
    // the data finds the slot odd (being written) and retries or misses.
    USED.fetch_max(index as u32 + 1, Ordering::AcqRel);
    let slot = &table[index];
    let seq = slot.seq.fetch_add(1, Ordering::Acquire); // odd: writing
    if seq % 2 == 1 {
        // Another writer holds this slot; skip rather than wait.
        slot.seq.fetch_sub(1, Ordering::Release);
        return;
    }
    fence(Ordering::Release);
    let k = key(ip);
    slot.addr[0].store(k[0], Ordering::Relaxed);
    slot.addr[1].store(k[1], Ordering::Relaxed);
    let mut words = [0u8; NAME];
    words[..name.len()].copy_from_slice(name);
    for (i, w) in slot.name.iter().enumerate() {
        w.store(
            u64::from_ne_bytes(words[i * 8..i * 8 + 8].try_into().unwrap_or_default()),
            Ordering::Relaxed,
        );
    }
    slot.len.store(name.len() as u32, Ordering::Relaxed);
    slot.seq.fetch_add(1, Ordering::Release); // even: stable
}

/// The name last remembered for `ip`, copied into `out`.
pub fn lookup(ip: IpAddr, out: &mut [u8; NAME]) -> Option<usize> {
    let used = (USED.load(Ordering::Acquire) as usize).min(SLOTS);
    if used == 0 {
        return None;
    }
    let table = TABLE.if_mapped()?;
    let k = key(ip);
    for slot in table[..used].iter() {
        for _ in 0..3 {
            let before = slot.seq.load(Ordering::Acquire);
            if before == 0 {
                break;
            }
            if before % 2 == 1 {
                continue;
            }
            let hit = slot.addr[0].load(Ordering::Relaxed) == k[0]
                && slot.addr[1].load(Ordering::Relaxed) == k[1];
            let len = (slot.len.load(Ordering::Relaxed) as usize).min(NAME);
            if hit {
                for (i, w) in slot.name.iter().enumerate() {
                    out[i * 8..i * 8 + 8].copy_from_slice(&w.load(Ordering::Relaxed).to_ne_bytes());
                }
            }
            fence(Ordering::Acquire);
            if slot.seq.load(Ordering::Relaxed) == before {
                if hit {
                    return Some(len);
                }
                break;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remembers_and_finds_names() {
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        remember(ip, b"api.example.com");
        let mut out = [0u8; NAME];
        let n = lookup(ip, &mut out).unwrap();
        assert_eq!(&out[..n], b"api.example.com");
        // v4-mapped v6 is the same host.
        assert!(lookup("::ffff:192.0.2.7".parse().unwrap(), &mut out).is_some());
        assert!(lookup("192.0.2.8".parse().unwrap(), &mut out).is_none());
    }

    #[test]
    fn every_slot_stays_reachable_after_the_table_wraps() {
        // More names than slots: the newest are all found, including those
        // in slots claimed again after the wrap (the newest 32 leave room
        // for another test remembering concurrently under `cargo test`).
        for i in 0..(SLOTS as u8 + 10) {
            remember(IpAddr::from([198, 51, 100, i]), format!("h{i}").as_bytes());
        }
        let mut out = [0u8; NAME];
        for i in (SLOTS as u8 + 10 - 32)..(SLOTS as u8 + 10) {
            let n = lookup(IpAddr::from([198, 51, 100, i]), &mut out)
                .unwrap_or_else(|| panic!("198.51.100.{i} lost"));
            assert_eq!(&out[..n], format!("h{i}").as_bytes());
        }
        assert_eq!(USED.load(Ordering::Relaxed) as usize, SLOTS);
    }
}
