//! The circuit breaker of one webhook: it judges the endpoint, not single events.
//!
//! It counts a failed attempt towards the current *run* only when the failure says something
//! new about the endpoint:
//!
//! * the attempt began after the last counted failure was seen — attempts that were under way
//!   together and fail together (a window of 16 when the endpoint dies) are one signal, not 16;
//! * and the endpoint has not succeeded since this entry first failed — an event the receiver
//!   refuses (a 422 on 2% of events) fails again on every retry while other events go
//!   through: that is the event's problem, and it only makes the entry a dead letter in the end.
//!
//! Any success ends the run. After `failure_threshold` counted failures the circuit *opens*:
//! the actor takes nothing into its window but one *probe* at a time, the first
//! `probe_initial` after opening, then each `2 ×` the previous delay up to `probe_max` — a
//! schedule of its own, whatever the attempt counts of the entries involved (a receiver's
//! `Retry-After` on a failed probe is honoured, within `probe_max`). The first success closes
//! the circuit and the backlog drains at full speed. Resuming, re-enabling, restarting and
//! `POST /webhooks/{id}/retry` probe at once. The run (count and start) is kept in Redis.

use std::time::{Duration, Instant};

use actix::SpawnHandle;

use crate::store::CircuitState;

#[derive(Debug)]
pub struct Circuit {
    threshold: u32,
    probe_initial: Duration,
    probe_max: Duration,
    /// Counted failures in the current run.
    pub failures: u32,
    /// When the current run began (ms).
    pub failing_since: Option<u64>,
    pub open: bool,
    /// When the last counted failure was seen: only attempts begun after it count.
    last_counted: Option<Instant>,
    /// When the endpoint last succeeded (ms; compared with entries' stored failure times).
    last_success_ms: Option<u64>,
    /// A probe is being sent.
    probe_out: bool,
    /// The probe timer fired (or a probe was asked for): the next entry taken is the probe.
    pub probe_ready: bool,
    /// How long the next probe waits once armed.
    probe_delay: Duration,
    /// When the next probe is due (ms, for reports) and its timer.
    pub probe_timer: Option<(u64, SpawnHandle)>,
}

/// What a recorded outcome changed.
#[derive(Debug, PartialEq, Eq)]
pub enum Transition {
    None,
    Opened,
    Closed,
}

/// A failed attempt, as the circuit judges it.
#[derive(Debug, Clone, Copy)]
pub struct Failure {
    /// When the attempt began.
    pub started: Instant,
    /// When its failure was seen.
    pub seen: Instant,
    pub now_ms: u64,
    /// When the same entry first failed, if it did before (ms).
    pub first_failure_ms: Option<u64>,
    /// It was the probe of an open circuit.
    pub probe: bool,
    /// The receiver's `Retry-After`, if it sent one.
    pub retry_after: Option<Duration>,
}

impl Circuit {
    /// A circuit resuming `restored` (the run kept in Redis). An open one probes at once.
    pub fn new(
        threshold: u32,
        (probe_initial, probe_max): (Duration, Duration),
        restored: Option<CircuitState>,
    ) -> Circuit {
        let restored = restored.filter(|state| state.failures > 0);
        let failures = restored.map_or(0, |state| state.failures);
        let open = failures >= threshold;
        Circuit {
            threshold,
            probe_initial,
            probe_max,
            failures,
            failing_since: restored.map(|state| state.since_ms),
            open,
            last_counted: None,
            last_success_ms: None,
            probe_out: false,
            probe_ready: open,
            probe_delay: probe_initial,
            probe_timer: None,
        }
    }

    pub fn state(&self) -> CircuitState {
        CircuitState {
            failures: self.failures,
            since_ms: self.failing_since.unwrap_or(0),
        }
    }

    pub fn record_success(&mut self, now_ms: u64) -> Transition {
        let was_open = self.open;
        self.failures = 0;
        self.failing_since = None;
        self.open = false;
        self.last_counted = None;
        self.last_success_ms = Some(now_ms);
        self.probe_out = false;
        self.probe_ready = false;
        self.probe_delay = self.probe_initial;
        if was_open {
            Transition::Closed
        } else {
            Transition::None
        }
    }

    /// Whether a failure counts towards the run (see the module docs).
    fn counts(&self, failure: &Failure) -> bool {
        if failure.probe {
            return true;
        }
        let sequential = self.last_counted.is_none_or(|seen| failure.started > seen);
        let no_success_since = match (failure.first_failure_ms, self.last_success_ms) {
            (Some(first), Some(success)) => first > success,
            _ => true,
        };
        sequential && no_success_since
    }

    pub fn record_failure(&mut self, failure: Failure) -> Transition {
        if failure.probe {
            let doubled = self.probe_delay.saturating_mul(2);
            let asked = failure.retry_after.unwrap_or_default();
            self.probe_delay = doubled.max(asked).min(self.probe_max);
        }
        if !self.counts(&failure) {
            return Transition::None;
        }
        self.failures = self.failures.saturating_add(1);
        self.last_counted = Some(failure.seen);
        self.failing_since.get_or_insert(failure.now_ms);
        if !self.open && self.failures >= self.threshold {
            self.open = true;
            self.probe_ready = false;
            self.probe_delay = self.probe_initial;
            Transition::Opened
        } else {
            Transition::None
        }
    }

    /// The probe's attempt ended, whatever it said: another may go when the schedule allows.
    /// Called for every outcome, so none (a 410 is neither a success nor a failure of the
    /// endpoint) can leave the slot taken and the webhook waiting for a probe that never goes.
    pub fn probe_returned(&mut self) {
        self.probe_out = false;
    }

    /// Takes the probe slot: the entry about to be sent is the probe.
    pub fn send_probe(&mut self) {
        self.probe_ready = false;
        self.probe_out = true;
    }

    /// Whether one probe may be sent now.
    pub fn may_probe(&self) -> bool {
        self.open && self.probe_ready && !self.probe_out
    }

    /// Probe at once, with the schedule starting over (resume, re-enable, retry now). The
    /// caller cancels the armed timer.
    pub fn probe_now(&mut self) {
        self.probe_delay = self.probe_initial;
        self.probe_ready = self.open && !self.probe_out;
    }

    /// Whether the probe timer should be armed: open, no probe out, nothing armed or ready.
    pub fn needs_probe_timer(&self) -> bool {
        self.open && !self.probe_out && self.probe_timer.is_none() && !self.probe_ready
    }

    /// How long the next probe waits.
    pub fn probe_delay(&self) -> Duration {
        self.probe_delay
    }

    /// How long the failures have gone on at `now`, if they have.
    pub fn failing_for(&self, now: u64) -> Option<u64> {
        self.failing_since.map(|since| now.saturating_sub(since))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PROBES: (Duration, Duration) = (Duration::from_secs(5), Duration::from_secs(300));

    struct Clock(Instant);

    impl Clock {
        fn at(&self, ms: u64) -> Instant {
            self.0 + Duration::from_millis(ms)
        }

        /// An attempt begun at `started` ms that failed at `seen` ms.
        fn failure(&self, started: u64, seen: u64) -> Failure {
            Failure {
                started: self.at(started),
                seen: self.at(seen),
                now_ms: 1_000_000 + seen,
                first_failure_ms: None,
                probe: false,
                retry_after: None,
            }
        }
    }

    fn clock() -> Clock {
        Clock(Instant::now())
    }

    #[test]
    fn parallel_failures_of_one_instant_are_one_signal() {
        let clock = clock();
        let mut circuit = Circuit::new(3, PROBES, None);
        // 16 attempts begun together fail together: one signal.
        for _ in 0..16 {
            assert_eq!(circuit.record_failure(clock.failure(0, 10)), Transition::None);
        }
        assert_eq!(circuit.failures, 1);
        // Attempts begun after that failure was seen are new signals.
        assert_eq!(circuit.record_failure(clock.failure(11, 20)), Transition::None);
        assert_eq!(
            circuit.record_failure(clock.failure(12, 21)),
            Transition::None,
            "begun before 20"
        );
        assert_eq!(circuit.record_failure(clock.failure(21, 30)), Transition::Opened);
        assert_eq!(circuit.failures, 3);
        assert_eq!(circuit.failing_since, Some(1_000_010));
    }

    #[test]
    fn an_entry_refused_while_others_succeed_never_opens_it() {
        let clock = clock();
        let mut circuit = Circuit::new(3, PROBES, None);
        // Five refused entries fail once each, between successes.
        for n in 0..5 {
            let t = n * 100;
            circuit.record_failure(clock.failure(t, t + 1));
            circuit.record_success(1_000_000 + t + 50);
        }
        // Then only their retries are left, failing one after another, again and again: each
        // of them first failed before a success, so none says anything about the endpoint.
        for n in 0..50 {
            let t = 1_000 + n * 10;
            let mut retry = clock.failure(t, t + 1);
            retry.first_failure_ms = Some(1_000_000 + (n % 5) * 100 + 1);
            assert_eq!(circuit.record_failure(retry), Transition::None);
        }
        assert_eq!(circuit.failures, 0);
        assert!(!circuit.open);
        // A fresh entry failing is a signal again.
        circuit.record_failure(clock.failure(2_000, 2_001));
        assert_eq!(circuit.failures, 1);
    }

    #[test]
    fn probes_follow_their_own_schedule_and_a_success_closes() {
        let clock = clock();
        let mut circuit = Circuit::new(1, PROBES, None);
        assert_eq!(circuit.record_failure(clock.failure(0, 1)), Transition::Opened);
        assert!(circuit.needs_probe_timer());
        assert_eq!(circuit.probe_delay(), Duration::from_secs(5));
        circuit.probe_ready = true;
        assert!(circuit.may_probe());
        circuit.send_probe();
        assert!(!circuit.may_probe(), "one probe at a time");
        let mut probe = clock.failure(2, 3);
        probe.probe = true;
        for expected in [10, 20, 40, 80, 160, 300, 300] {
            circuit.probe_returned();
            circuit.record_failure(probe);
            assert_eq!(circuit.probe_delay(), Duration::from_secs(expected));
            circuit.send_probe();
        }
        // Retry-After on a failed probe stretches the wait, within the maximum.
        circuit.probe_returned();
        circuit.probe_now();
        assert_eq!(circuit.probe_delay(), Duration::from_secs(5));
        probe.retry_after = Some(Duration::from_secs(120));
        circuit.record_failure(probe);
        assert_eq!(circuit.probe_delay(), Duration::from_secs(120));
        assert_eq!(circuit.record_success(2_000_000), Transition::Closed);
        assert_eq!(circuit.failures, 0);
        assert_eq!(circuit.failing_since, None);
        assert_eq!(circuit.probe_delay(), Duration::from_secs(5));
    }

    #[test]
    fn a_probe_answered_neither_way_frees_the_slot() {
        // A 410 to a probe is neither a success nor a failure of the endpoint: the webhook is
        // disabled. Re-enabled, it must probe at once, not wait for a probe that never returns.
        let clock = clock();
        let mut circuit = Circuit::new(1, PROBES, None);
        circuit.record_failure(clock.failure(0, 1));
        circuit.probe_now();
        circuit.send_probe();
        assert!(!circuit.may_probe() && !circuit.needs_probe_timer());
        circuit.probe_returned();
        assert!(circuit.needs_probe_timer(), "the schedule goes on");
        circuit.probe_now();
        assert!(circuit.may_probe(), "re-enabled: probe at once");
    }

    #[test]
    fn a_restored_run_of_failures_starts_open_and_probes_at_once() {
        let circuit = Circuit::new(
            3,
            PROBES,
            Some(CircuitState {
                failures: 7,
                since_ms: 5,
            }),
        );
        assert!(circuit.open && circuit.may_probe());
        assert_eq!(circuit.failing_for(105), Some(100));
        let circuit = Circuit::new(
            3,
            PROBES,
            Some(CircuitState {
                failures: 1,
                since_ms: 5,
            }),
        );
        assert!(!circuit.open);
    }
}
