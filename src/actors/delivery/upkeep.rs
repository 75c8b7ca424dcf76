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
//!   never more than `max_len` flushes.
//!
//! After a flush that failed, everything is written again on the next one.

use std::time::{Duration, Instant};

use crate::store::{CircuitState, LogUpkeep, Retention};

#[derive(Debug, Default)]
pub(super) struct Upkeep {
    /// The circuit's run as the last flush that landed wrote it (None: not known).
    circuit_written: Option<CircuitState>,
    /// When the log's expiry was last set (None: not by this actor yet).
    expiry_set: Option<Instant>,
    /// Attempts logged since the log was last trimmed to its cap (None: not by this actor).
    since_trim: Option<usize>,
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
        let trim = since >= (retention.attempts_max_len / 4).max(1);
        self.since_trim = Some(if trim { 0 } else { since });
        (circuit, LogUpkeep { refresh_expiry, trim })
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
        let trims =
            |upkeep: &mut Upkeep, attempts| upkeep.plan(attempts, CircuitState::default(), &retention(), now).1.trim;
        assert!(trims(&mut upkeep, 12));
        let mut logged = 0;
        while !trims(&mut upkeep, 12) {
            logged += 12;
        }
        // Trimmed with the flush that brought the count since the last trim to 250 or more.
        assert_eq!(logged + 12, 252);
    }
}
