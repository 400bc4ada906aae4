//! `ldguard learn`: turns what a workload was seen doing (events, usually
//! `log: ["behavior"]` records) into an `ldguard.policy/v1` document that
//! allows exactly that and denies the rest, ready to review and switch to
//! `enforce`. See docs/learning.md.
//!
//! Pure logic: events in, a [`PolicyDoc`] out (serialise it with serde).
//! Reading files is the caller's business
//! ([`ldguard_events::EventReader`]).
//!
//! ```ignore
//! let mut learner = Learner::default();
//! for event in events { learner.observe(&event); }
//! let learned = learner.learn(&Options::new("web"), None)?;
//! println!("{}", serde_json::to_string_pretty(&learned.policy)?);
//! ```

mod build;
pub mod doc;
mod merge;
mod observe;
pub mod paths;

pub use doc::{PolicyDoc, PortDoc, RuleDoc};
pub use merge::{Base, BaseError};
pub use observe::{operation, NetTarget, Op, Skip};

use ldguard_events::Event;
use std::collections::{BTreeMap, BTreeSet};

/// How to learn.
#[derive(Clone, Debug)]
pub struct Options {
    /// The policy's `name` (with `--base`, `None` keeps the base's).
    pub name: Option<String>,
    /// Where the events came from, for the policy's description.
    pub sources: Vec<String>,
    /// The kernel's ephemeral port range (`ip_local_port_range`): ports
    /// from it on loopback are per-run and are learned as the range.
    pub ephemeral: (u16, u16),
}

impl Options {
    pub fn new(name: impl Into<String>) -> Options {
        Options {
            name: Some(name.into()),
            sources: Vec::new(),
            ephemeral: (32768, 60999),
        }
    }
}

/// What was seen of one operation.
#[derive(Clone, Debug, Default)]
pub(crate) struct Seen {
    pub events: u64,
    pub pids: BTreeSet<u32>,
}

/// Accumulates operations from events.
#[derive(Debug, Default)]
pub struct Learner {
    /// By (program, operation).
    ops: BTreeMap<(String, Op), Seen>,
    skipped: BTreeMap<Skip, u64>,
    dropped: u64,
    events: u64,
    /// Events marked `behavior` (written under `log: ["behavior"]`).
    behavior_records: u64,
    /// Programs whose behaviour dedup set overflowed (the library said so).
    overflowed: BTreeSet<String>,
}

/// The result of [`Learner::learn`].
#[derive(Clone, Debug)]
pub struct Learned {
    pub policy: PolicyDoc,
    /// What the reader should know: skipped events, lost events, operations
    /// a base policy denies explicitly.
    pub notes: Vec<String>,
}

impl Learner {
    /// Takes one event into account.
    pub fn observe(&mut self, e: &Event) {
        self.events += 1;
        self.behavior_records += u64::from(e.behavior);
        if let Some(n) = e.dropped {
            self.dropped += n;
        }
        if e.kind == "status" && e.message.starts_with("behavior:") {
            self.overflowed.insert(e.program.clone());
        }
        match operation(e) {
            Ok(op) => {
                let seen = self.ops.entry((e.program.clone(), op)).or_default();
                seen.events += 1;
                seen.pids.insert(e.pid);
            }
            Err(skip) => *self.skipped.entry(skip).or_default() += 1,
        }
    }

    /// Number of events observed so far.
    pub fn events(&self) -> u64 {
        self.events
    }

    /// Number of `behavior` records observed so far: without any, the input
    /// holds only decisions the old policy logged, not what the workload did.
    pub fn behavior_records(&self) -> u64 {
        self.behavior_records
    }

    /// Number of distinct (program, operation) pairs observed so far.
    pub fn operations(&self) -> usize {
        self.ops.len()
    }

    /// The policy for everything observed: a fresh one, or `base` with the
    /// learned rules merged in. Fails only if the result would not be a
    /// valid policy, which is a bug worth reporting as such.
    pub fn learn(&self, opts: &Options, base: Option<&Base>) -> Result<Learned, String> {
        let mut notes = Vec::new();
        for (skip, n) in &self.skipped {
            if *skip != Skip::Status {
                notes.push(format!("skipped {n} {}", skip.describe()));
            }
        }
        if self.dropped > 0 {
            notes.push(format!(
                "the library dropped {} events (full queue): the policy may miss operations; \
                 record again with a lighter load or a larger queue",
                self.dropped
            ));
        }
        for program in &self.overflowed {
            notes.push(format!(
                "{program} did more distinct operations than the library's behaviour set holds: \
                 some were not reported, so the policy may miss them"
            ));
        }
        let ops: Vec<(&str, &Op, &Seen)> = match base {
            None => self
                .ops
                .iter()
                .map(|((p, op), s)| (p.as_str(), op, s))
                .collect(),
            Some(base) => base.unlearned(&self.ops, &mut notes),
        };
        let learned = build::rules(&ops, opts);
        let policy = match base {
            None => build::fresh(learned, opts, self.events),
            Some(base) => base.merge(learned, opts, self.events),
        };
        let text = serde_json::to_string_pretty(&policy).map_err(|e| e.to_string())?;
        if let Err(diags) = ldguard_policy::compile_str(&text, "learned policy") {
            return Err(format!(
                "internal error: the learned policy does not validate:\n{}",
                diags.render(&text)
            ));
        }
        Ok(Learned { policy, notes })
    }
}
