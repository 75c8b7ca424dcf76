//! How fast a delivery actor sends to its endpoint, besides `max_in_flight`:
//!
//! * **Adaptive concurrency** (AIMD, as TCP's congestion control): a new or recovered webhook
//!   starts with `[delivery] initial_concurrency` attempts in flight (2); each success not
//!   answered *slowly* (more than four times the fastest answer of the last minute plus 50 ms:
//!   the receiver queueing) adds one until the first cut (slow start), then one per window of
//!   successes. The allowance is wide on purpose: a tight one (3x + 5 ms, tried first) read the
//!   sender's own CPU contention as the receiver's queue and held a fast receiver at a few in
//!   flight, costing a fifth of the throughput blast (docs/benchmarks.md). A sign of overload —
//!   429, 503, a connection refused or reset, a timeout — halves it, once per round trip (only
//!   an attempt begun after the last cut cuts again, so a window that fails together is one
//!   signal). Never below 1, never above `max_in_flight`. Chosen over a latency gradient for
//!   being predictable and cheap: a few float operations per attempt. A full window none of
//!   whose attempts came back for a while (a receiver holding some requests) lets one more go
//!   every such while, so held requests do not keep the rest waiting for their timeout.
//! * **Slow down**: a 429 or 503 with `Retry-After` pauses the whole endpoint until then, not
//!   only the event that got it (capped at `retry.max_delay_ms`).
//! * **A learned rate**: a 429 (too many requests) says the receiver limits a *rate*, which a
//!   concurrency limit cannot hold when answers come back in a millisecond. So the first 429
//!   sets a rate: nine tenths of what the receiver accepted in the second before (at least one
//!   a second); it rises by 5% of itself (at least one) per second of successes, a later 429
//!   cuts it by a quarter (AIMD again, on the rate: never from what was accepted while held
//!   back, which would only spiral down), and ten seconds without a 429 forget it.
//! * **Rate limit**: a webhook's `rateLimit` (deliveries per second) spaces attempts at least
//!   `1 / rateLimit` apart; with a learned rate, the slower of the two. Attempts may run ahead
//!   of the pace by a tenth of a second's worth; what waits stays in Redis.

use std::time::{Duration, Instant};

/// How long the fastest answer is remembered before it is measured afresh.
const BEST_FOR: Duration = Duration::from_secs(60);
/// How far attempts may run ahead of a rate limit's pace.
const BURST: Duration = Duration::from_millis(100);
/// A full window whose attempts have all been out this long (or four times the fastest answer,
/// at most ten times this) is held by the receiver, not at its capacity: one more may go.
const STALL_AFTER: Duration = Duration::from_millis(100);
/// A learned rate is forgotten after this long without a 429: a receiver that recovered (or
/// whose 429s were not about rate) soon gets the adaptive concurrency alone again.
const LEARNED_FOR: Duration = Duration::from_secs(10);
/// An answer this much slower than four times the fastest one is the receiver queueing: it
/// does not grow the concurrency.
const SLOW_BEYOND: Duration = Duration::from_millis(50);

#[derive(Debug)]
pub(super) struct Pacing {
    /// Attempts allowed in flight now.
    limit: f64,
    /// Below it, the limit grows by one per success not slow (slow start); above, by 1 / limit.
    threshold: f64,
    max: f64,
    /// When the limit was last cut: attempts begun before say nothing new.
    last_cut: Option<Instant>,
    /// The fastest answer since `best_since`.
    best: Option<Duration>,
    best_since: Instant,
    /// No attempt starts before then (the receiver's `Retry-After`).
    pub paused_until: Option<Instant>,
    /// The webhook's rate limit as a spacing; the rate learned from 429s (per second, and when
    /// the last 429 came); when the next attempt may start at the slower pace.
    spacing: Option<Duration>,
    learned: Option<(f64, Instant)>,
    next_slot: Instant,
    /// 2xx answers in the last second, in ten buckets of 100 ms, and the current bucket's start.
    recent: ([u32; 10], Instant),
    /// Cuts made (for health).
    pub cuts: u64,
    /// When the endpoint last answered 2xx.
    last_success: Option<Instant>,
}

impl Pacing {
    pub fn new(initial: usize, max: usize, rate_per_second: Option<u32>) -> Pacing {
        let max = max.max(1) as f64;
        Pacing {
            limit: (initial.max(1) as f64).min(max),
            threshold: max,
            max,
            last_cut: None,
            best: None,
            best_since: Instant::now(),
            paused_until: None,
            spacing: rate_per_second.map(spacing),
            learned: None,
            next_slot: Instant::now(),
            recent: ([0; 10], Instant::now()),
            cuts: 0,
            last_success: None,
        }
    }

    /// Attempts allowed in flight now.
    pub fn limit(&self) -> usize {
        self.limit as usize
    }

    /// A new rate limit (the webhook changed).
    pub fn set_rate(&mut self, rate_per_second: Option<u32>) {
        self.spacing = rate_per_second.map(spacing);
    }

    /// The window is full and none of its attempts came back for a while (the youngest began
    /// at `youngest`): they are held by the receiver (stuck, slow on some events), which says
    /// nothing about how many more it can take, so let one more go, as a probe. When not yet,
    /// when to look again. A stuck attempt's timeout then halves the limit as overload.
    pub fn stalled(&mut self, in_flight: usize, youngest: Instant, now: Instant) -> Option<Instant> {
        if (in_flight as f64) < self.limit.floor() || self.limit >= self.max {
            return None;
        }
        let after = self
            .best
            .map_or(STALL_AFTER, |best| (best * 4).clamp(STALL_AFTER, STALL_AFTER * 10));
        if now.duration_since(youngest) >= after {
            self.limit = (self.limit.floor() + 1.0).min(self.max);
            None
        } else {
            Some(youngest + after)
        }
    }

    /// Whether the endpoint answered a 2xx within `within` of `now`.
    pub fn answered_within(&self, within: Duration, now: Instant) -> bool {
        self.last_success.is_some_and(|at| now.duration_since(at) <= within)
    }

    /// A 2xx answered after `latency`.
    pub fn succeeded(&mut self, latency: Duration, now: Instant) {
        self.last_success = Some(now);
        self.count_successes(now, 1);
        if let Some((rate, since)) = &mut self.learned {
            if now.duration_since(*since) >= LEARNED_FOR {
                self.learned = None;
            } else {
                // 5% (at least one) a second, at this rate's pace of successes.
                *rate += (*rate * 0.05).max(1.0) / *rate;
            }
        }
        if now.duration_since(self.best_since) >= BEST_FOR {
            self.best = None;
            self.best_since = now;
        }
        let best = *self.best.get_or_insert(latency);
        self.best = Some(best.min(latency));
        let slow = latency > best * 4 + SLOW_BEYOND;
        if !slow && self.limit < self.max {
            let step = if self.limit < self.threshold {
                1.0
            } else {
                1.0 / self.limit
            };
            self.limit = (self.limit + step).min(self.max);
        }
    }

    /// The endpoint said, or showed, it is overloaded, for an attempt begun at `started`;
    /// `retry_after` (capped at `longest`) pauses every attempt until then. Whether it cut.
    pub fn overloaded(
        &mut self,
        started: Instant,
        retry_after: Option<Duration>,
        longest: Duration,
        now: Instant,
    ) -> bool {
        if let Some(wait) = retry_after {
            let until = now + wait.min(longest);
            self.paused_until = Some(self.paused_until.map_or(until, |current| current.max(until)));
        }
        if self.last_cut.is_some_and(|cut| started <= cut) {
            return false;
        }
        self.threshold = (self.limit / 2.0).max(1.0);
        self.limit = self.threshold;
        self.last_cut = Some(now);
        self.cuts += 1;
        true
    }

    /// A 429 for an attempt begun at `started`: the receiver limits a rate; learn it from what
    /// it accepted in the last second. Once per round trip, as a cut: the 429s of attempts
    /// begun before the last one say nothing new.
    pub fn too_many(&mut self, started: Instant, now: Instant) {
        if self.learned.is_some_and(|(_, at)| started <= at) {
            return;
        }
        let rate = match self.learned {
            Some((known, _)) => known * 0.75,
            None => {
                self.count_successes(now, 0);
                f64::from(self.recent.0.iter().sum::<u32>()) * 0.9
            }
        };
        self.learned = Some((rate.max(1.0), now));
    }

    /// The learned rate, if any (deliveries per second).
    pub fn learned_rate(&self) -> Option<f64> {
        self.learned.map(|(rate, _)| rate)
    }

    /// Moves the last second's buckets on to `now` and adds `added` successes.
    fn count_successes(&mut self, now: Instant, added: u32) {
        let (buckets, start) = &mut self.recent;
        let step = Duration::from_millis(100);
        let passed = (now.saturating_duration_since(*start).as_millis() / step.as_millis()) as usize;
        if passed > 0 {
            buckets.rotate_left(passed.min(10));
            for bucket in buckets.iter_mut().rev().take(passed.min(10)) {
                *bucket = 0;
            }
            *start += step * passed as u32;
        }
        buckets[9] += added;
    }

    /// The pace now: the slower of the webhook's rate limit and the learned rate.
    fn pace(&self) -> Option<Duration> {
        let learned = self.learned.map(|(rate, _)| Duration::from_secs_f64(1.0 / rate));
        match (self.spacing, learned) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Back to the start (resume, re-enable, retry now): a recovered receiver is not hammered.
    pub fn restart(&mut self, initial: usize) {
        self.limit = (initial.max(1) as f64).min(self.max);
        self.threshold = self.max;
        self.paused_until = None;
    }

    /// How many attempts may start now, of `wanted`, and when more may (None: not held back).
    /// The rate limit is a GCRA: `next_slot` is when the next attempt would be due at the
    /// limit's pace; attempts may run ahead of it by [`BURST`] (a tenth of a second's worth).
    pub fn allowed(&self, wanted: usize, now: Instant) -> (usize, Option<Instant>) {
        if let Some(until) = self.paused_until.filter(|until| *until > now) {
            return (0, Some(until));
        }
        let Some(spacing) = self.pace() else {
            return (wanted, None);
        };
        let tolerance = BURST.saturating_sub(spacing);
        let ahead = self.next_slot.max(now) - now;
        if ahead > tolerance {
            return (0, Some(self.next_slot - tolerance));
        }
        let fits = ((tolerance - ahead).as_nanos() / spacing.as_nanos().max(1)) as usize + 1;
        (wanted.min(fits), None)
    }

    /// `count` attempts start now (they used their slots).
    pub fn started(&mut self, count: usize, now: Instant) {
        if let Some(spacing) = self.pace() {
            self.next_slot = self.next_slot.max(now) + spacing * count as u32;
        }
    }
}

fn spacing(rate_per_second: u32) -> Duration {
    Duration::from_secs(1) / rate_per_second.max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn it_starts_low_grows_on_quick_successes_and_halves_on_overload() {
        let t = Instant::now();
        let mut pacing = Pacing::new(2, 16, None);
        assert_eq!(pacing.limit(), 2);
        for _ in 0..4 {
            pacing.succeeded(MS * 2, t);
        }
        assert_eq!(pacing.limit(), 6, "slow start: one per success");
        // A slow answer (queueing at the receiver) does not grow it; a merely slower one does.
        pacing.succeeded(MS * 58, t);
        assert_eq!(pacing.limit(), 7);
        pacing.succeeded(MS * 59, t);
        assert_eq!(pacing.limit(), 7);
        assert!(pacing.overloaded(t + MS, None, MS * 1000, t + MS * 10));
        assert_eq!(pacing.limit(), 3);
        // Attempts begun before the cut say nothing new.
        assert!(!pacing.overloaded(t + MS * 5, None, MS * 1000, t + MS * 11));
        assert_eq!(pacing.limit(), 3);
        // Past the threshold it grows by about one per window of successes (3 → 4 in 4).
        for _ in 0..4 {
            pacing.succeeded(MS * 2, t + MS * 20);
        }
        assert_eq!(pacing.limit(), 4);
        for _ in 0..300 {
            pacing.succeeded(MS * 2, t + MS * 20);
        }
        assert_eq!(pacing.limit(), 16, "never above max_in_flight");
        for n in 0..10 {
            pacing.overloaded(t + MS * (100 + n), None, MS * 1000, t + MS * (100 + n));
        }
        assert_eq!(pacing.limit(), 1, "never below one");
    }

    #[test]
    fn a_window_held_by_the_receiver_lets_one_more_go_after_a_while() {
        let t = Instant::now();
        let mut pacing = Pacing::new(2, 16, None);
        assert_eq!(pacing.stalled(1, t, t + MS * 500), None, "not full");
        assert_eq!(pacing.stalled(2, t, t + MS * 50), Some(t + MS * 100));
        assert_eq!(pacing.stalled(2, t, t + MS * 100), None);
        assert_eq!(pacing.limit(), 3, "one more");
        let mut full = Pacing::new(16, 16, None);
        assert_eq!(full.stalled(16, t, t + Duration::from_secs(9)), None);
        assert_eq!(full.limit(), 16, "never above max_in_flight");
    }

    #[test]
    fn retry_after_pauses_the_endpoint_within_the_longest_wait() {
        let t = Instant::now();
        let mut pacing = Pacing::new(2, 16, None);
        pacing.overloaded(t, Some(Duration::from_secs(1)), Duration::from_secs(5), t);
        assert_eq!(pacing.allowed(4, t + MS * 500), (0, Some(t + Duration::from_secs(1))));
        assert_eq!(pacing.allowed(4, t + Duration::from_secs(1)), (4, None));
        pacing.overloaded(t, Some(Duration::from_secs(3600)), Duration::from_secs(5), t);
        assert_eq!(pacing.allowed(1, t), (0, Some(t + Duration::from_secs(5))));
    }

    #[test]
    fn a_429_teaches_a_rate_that_rises_slowly_and_is_cut_again() {
        let t = Instant::now();
        let mut pacing = Pacing::new(16, 16, None);
        for n in 0..100 {
            pacing.succeeded(MS, t + MS * n);
        }
        pacing.too_many(t + MS * 140, t + MS * 150);
        assert_eq!(
            pacing.learned_rate(),
            Some(90.0),
            "nine tenths of the last second's 100"
        );
        // The other 429s of the same round trip cut nothing more.
        pacing.too_many(t + MS * 145, t + MS * 151);
        assert_eq!(pacing.learned_rate(), Some(90.0));
        for n in 0..90 {
            pacing.succeeded(MS, t + Duration::from_secs(2) + MS * 11 * n);
        }
        let risen = pacing.learned_rate().unwrap();
        assert!((94.4..94.6).contains(&risen), "5% in about a second: {risen}");
        // The next 429 cuts by a quarter.
        pacing.too_many(t + Duration::from_secs(3), t + Duration::from_secs(3));
        assert!((pacing.learned_rate().unwrap() - risen * 0.75).abs() < 0.001);
        // Its pace holds attempts to about the rate.
        let (n, _) = pacing.allowed(100, t + Duration::from_secs(4));
        assert!((1..=8).contains(&n), "{n}");
        // Ten seconds without a 429 forget it.
        pacing.succeeded(MS, t + Duration::from_secs(14));
        assert_eq!(pacing.learned_rate(), None);
    }

    #[test]
    fn a_rate_limit_spaces_attempts() {
        let t = Instant::now();
        let mut pacing = Pacing::new(16, 16, Some(50));
        // Fresh: a burst of a tenth of a second's worth (5), then one every 20 ms.
        let (now, _) = pacing.allowed(100, t + Duration::from_secs(1));
        assert_eq!(now, 5);
        pacing.started(now, t + Duration::from_secs(1));
        let (later, next) = pacing.allowed(100, t + Duration::from_secs(1));
        assert_eq!(later, 0);
        assert!(next.is_some());
        let mut sent = 0;
        let mut at = t + Duration::from_secs(1);
        while at < t + Duration::from_secs(11) {
            let (n, _) = pacing.allowed(100, at);
            pacing.started(n, at);
            sent += n;
            at += MS;
        }
        assert!((495..=510).contains(&sent), "{sent} in 10 s at 50/s");
    }
}
