//! What a flush writes besides its attempts, and how seldom: the delivery actor remembers what
//! it last wrote so a busy webhook's flush is the few commands that matter (fence check, one
//! `XDEL`, one `XADD` to the log).
//!
//! - The circuit's run is written only when it changed since the last write that landed (a
//!   healthy webhook writes it once, then never).
//! - The attempt log's expiry is set again only after 1% of `attempts.ttl_ms` passed, so the
//!   log still expires between 99% and 100% of the ttl after its last attempt.
//! - The log is trimmed to exactly `attempts.max_len` attempts after a quarter of that many
//!   were added (and on the first flush): between trims it holds up to a quarter more, and
//!   never more than `max_len` flushes. Only the webhook's owner writes its log, so once the
//!   actor's own entries hold the cap it knows where to cut (one `XTRIM MINID`); until then
//!   Redis counts back through the entries, which costs a read of the whole log.
//!
//! After a flush that failed, everything is written again on the next one.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::domain::StreamId;
use crate::store::{CircuitState, LogTrim, LogUpkeep, Retention};

#[derive(Debug, Default)]
pub(super) struct Upkeep {
    /// The circuit's run as the last flush that landed wrote it (None: not known).
    circuit_written: Option<CircuitState>,
    /// When the log's expiry was last set (None: not by this actor yet).
    expiry_set: Option<Instant>,
    /// Attempts logged since the log was last trimmed to its cap (None: not by this actor).
    since_trim: Option<usize>,
    /// The log entries this actor added (oldest first) and the attempts each holds, back to
    /// the newest ones that hold the cap: where the next trim cuts. Empty after a failed
    /// flush (an entry may have landed unseen), and for a new owner.
    logged: VecDeque<(StreamId, usize)>,
}

/// What one flush writes besides its attempts: the circuit's run if it changed, and the log's
/// upkeep due.
pub(super) type Plan = (Option<CircuitState>, LogUpkeep);

impl Upkeep {
    /// Plans a flush of `attempts` attempts, with the circuit as it stands, and counts it as
    /// written (see [`Upkeep::failed`]).
    pub fn plan(&mut self, attempts: usize, circuit: CircuitState, retention: &Retention, now: Instant) -> Plan {
        let circuit = (self.circuit_written != Some(circuit)).then_some(circuit);
        if circuit.is_some() {
            self.circuit_written = circuit;
        }
        let refresh_every = Duration::from_millis(retention.attempts_ttl_ms / 100);
        let refresh_expiry = self
            .expiry_set
            .is_none_or(|set| now.duration_since(set) >= refresh_every);
        if refresh_expiry {
            self.expiry_set = Some(now);
        }
        let since = self
            .since_trim
            .map_or(usize::MAX, |since| since.saturating_add(attempts));
        let cap = retention.attempts_max_len;
        let trim = if since >= (cap / 4).max(1) {
            self.since_trim = Some(0);
            self.cut(attempts, cap).map_or(LogTrim::CountBack, LogTrim::Before)
        } else {
            self.since_trim = Some(since);
            LogTrim::Not
        };
        (circuit, LogUpkeep { refresh_expiry, trim })
    }

    /// The flush's log entry landed (`entry`, holding `attempts` attempts).
    pub fn landed(&mut self, entry: Option<StreamId>, attempts: usize) {
        if let Some(entry) = entry {
            self.logged.push_back((entry, attempts));
        }
    }

    /// Where a trim cuts when a flush adds `attempts` more: the oldest of this actor's entries
    /// that, with the newer ones and the flush's, hold `cap` attempts; the entries before it
    /// are forgotten (they go). None when the actor's own entries do not hold the cap.
    fn cut(&mut self, attempts: usize, cap: usize) -> Option<StreamId> {
        let mut kept = attempts;
        let at = (0..self.logged.len()).rev().find(|&i| {
            kept += self.logged[i].1;
            kept >= cap
        });
        // Not when the flush alone holds the cap: its own entry, the cut, is not known yet.
        let at = at.filter(|_| attempts < cap)?;
        self.logged.drain(..at);
        self.logged.front().map(|(entry, _)| *entry)
    }

    /// The flush did not land: write everything again next time.
    pub fn failed(&mut self) {
        *self = Upkeep::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn retention() -> Retention {
        Retention {
            attempts_max_len: 1000,
            attempts_ttl_ms: 100_000,
            dead_max_len: 10,
            dead_ttl_ms: 1000,
        }
    }

    #[test]
    fn the_circuit_is_written_when_it_changed_and_after_a_failed_flush() {
        let (mut upkeep, now) = (Upkeep::default(), Instant::now());
        let healthy = CircuitState::default();
        assert_eq!(upkeep.plan(1, healthy, &retention(), now).0, Some(healthy));
        assert_eq!(upkeep.plan(1, healthy, &retention(), now).0, None);
        let failing = CircuitState {
            failures: 1,
            since_ms: 5,
        };
        assert_eq!(upkeep.plan(1, failing, &retention(), now).0, Some(failing));
        assert_eq!(upkeep.plan(1, failing, &retention(), now).0, None);
        upkeep.failed();
        assert_eq!(upkeep.plan(1, failing, &retention(), now).0, Some(failing));
    }

    #[test]
    fn the_expiry_is_set_first_then_after_a_hundredth_of_the_ttl() {
        let (mut upkeep, now) = (Upkeep::default(), Instant::now());
        assert!(
            upkeep
                .plan(1, CircuitState::default(), &retention(), now)
                .1
                .refresh_expiry
        );
        let soon = now + Duration::from_millis(999);
        assert!(
            !upkeep
                .plan(1, CircuitState::default(), &retention(), soon)
                .1
                .refresh_expiry
        );
        let later = now + Duration::from_millis(1000);
        assert!(
            upkeep
                .plan(1, CircuitState::default(), &retention(), later)
                .1
                .refresh_expiry
        );
    }

    #[test]
    fn the_log_is_trimmed_first_then_every_quarter_of_its_cap() {
        let (mut upkeep, now) = (Upkeep::default(), Instant::now());
        let trims = |upkeep: &mut Upkeep, attempts| {
            upkeep.plan(attempts, CircuitState::default(), &retention(), now).1.trim != LogTrim::Not
        };
        assert!(trims(&mut upkeep, 12));
        let mut logged = 0;
        while !trims(&mut upkeep, 12) {
            logged += 12;
        }
        // Trimmed with the flush that brought the count since the last trim to 250 or more.
        assert_eq!(logged + 12, 252);
    }

    fn entry(n: u64) -> StreamId {
        StreamId { ms: 1000 + n, seq: 0 }
    }

    /// Flushes of `attempts` each, landing as entries 1, 2, ...; the trims they were planned with.
    fn flushes(upkeep: &mut Upkeep, count: u64, attempts: usize) -> Vec<(u64, LogTrim)> {
        let now = Instant::now();
        let mut trims = Vec::new();
        for n in 1..=count {
            let (_, upkeep_plan) = upkeep.plan(attempts, CircuitState::default(), &retention(), now);
            if upkeep_plan.trim != LogTrim::Not {
                trims.push((n, upkeep_plan.trim));
            }
            upkeep.landed(Some(entry(n)), attempts);
        }
        trims
    }

    #[test]
    fn redis_counts_back_until_the_actors_own_entries_hold_the_cap_then_it_cuts_itself() {
        let mut upkeep = Upkeep::default();
        // Flushes of 10 attempts, cap 1000: a trim at the first flush, then with every 250.
        let trims = flushes(&mut upkeep, 250, 10);
        assert_eq!(
            trims,
            vec![
                (1, LogTrim::CountBack),
                (26, LogTrim::CountBack),
                (51, LogTrim::CountBack),
                (76, LogTrim::CountBack),
                // Flush 101 with entries 2..=100 holds 1000 attempts: entry 1 goes.
                (101, LogTrim::Before(entry(2))),
                (126, LogTrim::Before(entry(27))),
                (151, LogTrim::Before(entry(52))),
                (176, LogTrim::Before(entry(77))),
                (201, LogTrim::Before(entry(102))),
                (226, LogTrim::Before(entry(127))),
            ]
        );
        // What it remembers stays about the cap: entries 127..=250 (1240 attempts).
        assert_eq!(upkeep.logged.len(), 124);
    }

    #[test]
    fn after_a_failed_flush_redis_counts_back_again() {
        let mut upkeep = Upkeep::default();
        flushes(&mut upkeep, 120, 10);
        upkeep.failed();
        let now = Instant::now();
        let plan = upkeep.plan(10, CircuitState::default(), &retention(), now).1;
        assert_eq!(plan.trim, LogTrim::CountBack);
        assert!(upkeep.logged.is_empty());
    }

    #[test]
    fn a_flush_that_alone_holds_the_cap_is_cut_by_redis() {
        let mut upkeep = Upkeep::default();
        flushes(&mut upkeep, 3, 10);
        let now = Instant::now();
        let plan = upkeep.plan(1000, CircuitState::default(), &retention(), now).1;
        assert_eq!(plan.trim, LogTrim::CountBack);
    }
}
