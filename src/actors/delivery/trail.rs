//! The delivery actor's recent steps, for a violation's log: how its cursor moved and what it
//! did with the entries around it.
//!
//! The state line of a violation says where the actor is, not how it got there; a cursor
//! found past an unread entry is explained only by the moves that took it there. The actor
//! keeps its last [`KEPT`] steps — reads with what they returned, hand-overs, rewinds,
//! resets, takes and outcomes written — in a small ring (a few hundred bytes, no allocation
//! per step once full), printed with any violation.

use std::collections::VecDeque;
use std::fmt;

use crate::clock::now_ms;
use crate::domain::StreamId;

/// Steps kept.
const KEPT: usize = 48;

/// One step of the actor.
#[derive(Clone, Copy)]
pub(super) enum Step {
    /// The lease was taken: the actor starts from an empty cursor.
    Leased,
    /// A queue read began after `after`, for `count` entries.
    Read {
        after: Option<StreamId>,
        count: usize,
        epoch: u64,
    },
    /// A read answered: `read` rows up to `last`, `fresh` without retry state, of which
    /// `taken` went into the window; `first_with_state` is the first row skipped for its
    /// retry state. `stale` reads (an older epoch) are ignored.
    ReadDone {
        last: Option<StreamId>,
        read: usize,
        fresh: usize,
        taken: usize,
        first_with_state: Option<StreamId>,
        stale: bool,
        caught_up: bool,
    },
    /// A read failed (`fenced`: the lease is gone).
    ReadFailed { fenced: bool },
    /// An entry handed over in memory, and the one before it in the queue: taken straight
    /// (the cursor moved to it) or left to a read.
    Intake {
        entry: StreamId,
        before: Option<StreamId>,
        took: bool,
    },
    /// The cursor moved back before `first` (a notice, or the self-check's repair).
    Rewind { first: StreamId, from: Option<StreamId> },
    /// The cursor was cleared (enabled or resumed).
    Reset,
    /// Redis went away: the cursor was cleared and the due set is learnt again (`resync`).
    Resync,
    /// Retries taken out of the due set: how many, and the first.
    TookRetries { count: usize, first: Option<StreamId> },
    /// An outcome queued for writing: 'd' delivered, 'r' retry, 'x' dead, 'g' gone.
    Outcome { entry: StreamId, kind: char },
    /// A flush answered: how many outcomes, and how it went.
    Flushed { count: usize, result: Flush },
    /// The webhook was paused or disabled (`false`), or enabled or resumed (`true`).
    Active(bool),
}

/// How a flush went.
#[derive(Debug, Clone, Copy)]
pub(super) enum Flush {
    Written,
    /// Redis failed: the outcomes are written again, as repeats.
    Failed,
    Fenced,
}

/// An entry id or `-` for none.
struct Id(Option<StreamId>);

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(id) => write!(f, "{id}"),
            None => f.write_str("-"),
        }
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Step::Leased => f.write_str("leased"),
            Step::Read { after, count, epoch } => write!(f, "read after {} count {count} epoch {epoch}", Id(after)),
            Step::ReadDone {
                last,
                read,
                fresh,
                taken,
                first_with_state,
                stale,
                caught_up,
            } => write!(
                f,
                "{} {read} to {} fresh {fresh} taken {taken} first-with-state {} caught-up {caught_up}",
                if stale { "stale-read" } else { "read" },
                Id(last),
                Id(first_with_state)
            ),
            Step::ReadFailed { fenced } => write!(f, "read failed{}", if fenced { " (fenced)" } else { "" }),
            Step::Intake { entry, before, took } => write!(
                f,
                "handed {entry} after {} {}",
                Id(before),
                if took { "took" } else { "left" }
            ),
            Step::Rewind { first, from } => write!(f, "rewind to {first} from {}", Id(from)),
            Step::Reset => f.write_str("cursor reset"),
            Step::Resync => f.write_str("resync after a Redis lapse"),
            Step::TookRetries { count, first } => write!(f, "took {count} retries from {}", Id(first)),
            Step::Outcome { entry, kind } => write!(f, "outcome {kind} {entry}"),
            Step::Flushed { count, result } => write!(f, "flushed {count} {result:?}"),
            Step::Active(true) => f.write_str("active"),
            Step::Active(false) => f.write_str("inactive"),
        }
    }
}

/// The last steps, each with when it happened (ms).
#[derive(Default)]
pub(super) struct Trail {
    steps: VecDeque<(u64, Step)>,
}

impl Trail {
    pub fn push(&mut self, step: Step) {
        if self.steps.len() == KEPT {
            self.steps.pop_front();
        }
        self.steps.push_back((now_ms(), step));
    }
}

impl fmt::Display for Trail {
    /// Oldest first, one `at_ms:step` per step, separated by ` | `.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, (at, step)) in self.steps.iter().enumerate() {
            if i > 0 {
                f.write_str(" | ")?;
            }
            write!(f, "{at}:{step}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_steps_oldest_first() {
        let mut trail = Trail::default();
        for n in 0..(KEPT as u64 + 2) {
            trail.push(Step::Rewind {
                first: StreamId { ms: n, seq: 0 },
                from: None,
            });
        }
        let shown = trail.to_string();
        assert_eq!(shown.matches("rewind").count(), KEPT);
        assert!(!shown.contains("rewind to 1-0 "), "the two oldest steps went: {shown}");
        assert!(shown.contains(":rewind to 2-0 from - | "));
        assert!(shown.ends_with(&format!(":rewind to {}-0 from -", KEPT + 1)), "{shown}");
    }
}
