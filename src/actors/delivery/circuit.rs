//! The circuit breaker of one webhook.
//!
//! After `failure_threshold` consecutive failed attempts the circuit *opens*: the actor stops
//! taking new entries into memory and sends one *probe* at a time, each when the probe timer
//! fires (at the backoff pace). The first success closes the circuit and everything held back
//! is sent at once. The run of failures (count and start) is kept in Redis, so a restart does
//! not hammer a dead endpoint with a fresh window of attempts.

use actix::SpawnHandle;

use crate::domain::StreamId;
use crate::store::CircuitState;

#[derive(Debug)]
pub struct Circuit {
    threshold: u32,
    /// Consecutive failed attempts.
    pub failures: u32,
    /// When the current run of failures began (ms).
    pub failing_since: Option<u64>,
    pub open: bool,
    /// The entry being sent as the probe.
    pub probe: Option<StreamId>,
    /// The probe timer fired: the next entry ready to go may be sent as the probe.
    pub probe_ready: bool,
    /// When the next probe is due (ms) and its timer.
    pub probe_timer: Option<(u64, SpawnHandle)>,
}

/// What a recorded outcome changed.
#[derive(Debug, PartialEq, Eq)]
pub enum Transition {
    None,
    Opened,
    Closed,
}

impl Circuit {
    pub fn new(threshold: u32, restored: Option<CircuitState>) -> Circuit {
        let restored = restored.filter(|state| state.failures > 0);
        let failures = restored.map_or(0, |state| state.failures);
        Circuit {
            threshold,
            failures,
            failing_since: restored.map(|state| state.since_ms),
            open: failures >= threshold,
            probe: None,
            probe_ready: false,
            probe_timer: None,
        }
    }

    pub fn state(&self) -> CircuitState {
        CircuitState {
            failures: self.failures,
            since_ms: self.failing_since.unwrap_or(0),
        }
    }

    pub fn record_success(&mut self) -> Transition {
        let was_open = self.open;
        self.failures = 0;
        self.failing_since = None;
        self.open = false;
        self.probe = None;
        self.probe_ready = false;
        if was_open {
            Transition::Closed
        } else {
            Transition::None
        }
    }

    /// Records a failed attempt of `entry` at `now` (ms).
    pub fn record_failure(&mut self, entry: StreamId, now: u64) -> Transition {
        self.failures = self.failures.saturating_add(1);
        self.failing_since.get_or_insert(now);
        if self.probe == Some(entry) {
            self.probe = None;
        }
        // Whatever failed, the next probe waits for the timer again.
        self.probe_ready = false;
        if !self.open && self.failures >= self.threshold {
            self.open = true;
            Transition::Opened
        } else {
            Transition::None
        }
    }

    /// Whether an entry that is ready may be sent now; if so and the circuit is open, it
    /// becomes the probe.
    pub fn admit(&mut self, entry: StreamId) -> bool {
        if !self.open {
            return true;
        }
        if self.probe_ready && self.probe.is_none() {
            self.probe_ready = false;
            self.probe = Some(entry);
            return true;
        }
        false
    }

    /// Whether the probe timer should be armed: open, no probe out, nothing armed or ready.
    pub fn needs_probe_timer(&self) -> bool {
        self.open && self.probe.is_none() && self.probe_timer.is_none() && !self.probe_ready
    }

    /// How long the failures have gone on at `now`, if they have.
    pub fn failing_for(&self, now: u64) -> Option<u64> {
        self.failing_since.map(|since| now.saturating_sub(since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u64) -> StreamId {
        StreamId { ms: n, seq: 0 }
    }

    #[test]
    fn opens_at_the_threshold_and_admits_one_probe_per_timer() {
        let mut circuit = Circuit::new(3, None);
        assert_eq!(circuit.record_failure(entry(1), 10), Transition::None);
        assert_eq!(circuit.record_failure(entry(2), 20), Transition::None);
        assert!(circuit.admit(entry(9)), "closed: everything goes");
        assert_eq!(circuit.record_failure(entry(3), 30), Transition::Opened);
        assert_eq!(circuit.failing_since, Some(10));
        assert!(!circuit.admit(entry(4)), "open: nothing until the probe timer fires");
        assert!(circuit.needs_probe_timer());
        circuit.probe_ready = true;
        assert!(circuit.admit(entry(4)), "the probe");
        assert!(!circuit.admit(entry(5)), "one probe at a time");
        assert_eq!(circuit.record_failure(entry(4), 40), Transition::None);
        assert!(circuit.needs_probe_timer());
        circuit.probe_ready = true;
        assert!(circuit.admit(entry(5)));
        assert_eq!(circuit.record_success(), Transition::Closed);
        assert!(circuit.admit(entry(6)) && circuit.admit(entry(7)));
        assert_eq!(circuit.failures, 0);
        assert_eq!(circuit.failing_since, None);
    }

    #[test]
    fn a_restored_run_of_failures_starts_open() {
        let circuit = Circuit::new(
            3,
            Some(CircuitState {
                failures: 7,
                since_ms: 5,
            }),
        );
        assert!(circuit.open);
        assert_eq!(circuit.failing_for(105), Some(100));
        let circuit = Circuit::new(
            3,
            Some(CircuitState {
                failures: 1,
                since_ms: 5,
            }),
        );
        assert!(!circuit.open);
    }
}
