//! Exponential backoff with jitter, so a fleet of containers that lost their
//! policy server at the same moment does not come back in lock-step.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Delay before attempt number `failures + 1`, for `failures >= 1`:
/// `min(cap, base * 2^(failures-1))`, then a uniform pick in its upper half
/// ("equal jitter"): never less than half the nominal delay, so a claim
/// abandoned by a dying process still keeps others off for a while.
pub(crate) fn delay(base: Duration, cap: Duration, failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(20);
    let nominal = base
        .saturating_mul(1u32 << exp)
        .min(cap)
        .max(Duration::from_millis(1));
    let half = nominal / 2;
    let nanos = half.as_nanos().min(u64::MAX as u128) as u64;
    half + Duration::from_nanos(random() % nanos.max(1))
}

/// splitmix64 over a per-process seed: jitter needs spread, not secrecy.
fn random() -> u64 {
    static STATE: AtomicU64 = AtomicU64::new(0);
    let mut s = STATE.load(Ordering::Relaxed);
    if s == 0 {
        let t = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1);
        s = t ^ ((std::process::id() as u64) << 32) | 1;
    }
    s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
    STATE.store(s, Ordering::Relaxed);
    let mut z = s;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_exponentially_within_jitter_and_cap() {
        let base = Duration::from_secs(2);
        let cap = Duration::from_secs(20);
        for _ in 0..100 {
            let d1 = delay(base, cap, 1);
            assert!(
                d1 >= Duration::from_secs(1) && d1 <= Duration::from_secs(2),
                "{d1:?}"
            );
            let d3 = delay(base, cap, 3);
            assert!(
                d3 >= Duration::from_secs(4) && d3 <= Duration::from_secs(8),
                "{d3:?}"
            );
            let d10 = delay(base, cap, 10);
            assert!(d10 >= Duration::from_secs(10) && d10 <= cap, "{d10:?}");
        }
    }

    #[test]
    fn jitter_spreads() {
        let picks: std::collections::HashSet<_> = (0..50)
            .map(|_| delay(Duration::from_secs(10), Duration::from_secs(60), 1))
            .collect();
        assert!(picks.len() > 40);
    }
}
