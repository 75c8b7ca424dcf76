//! When a failed delivery is tried again.
//!
//! After the n-th failed attempt the next one waits `min(initial × multiplier^(n-1), max)`,
//! moved randomly by up to ±jitter so that many webhooks failing together do not retry in
//! lockstep. A receiver's `Retry-After` (seconds or an HTTP date) replaces the computed delay,
//! clamped to the maximum.

use std::time::{Duration, SystemTime};

use crate::config::RetrySettings;

#[derive(Debug, Clone)]
pub struct RetryPolicy {
    initial: Duration,
    multiplier: f64,
    max: Duration,
    pub max_attempts: u32,
    jitter: f64,
}

impl RetryPolicy {
    pub fn new(settings: &RetrySettings) -> RetryPolicy {
        RetryPolicy {
            initial: Duration::from_millis(settings.initial_delay_ms),
            multiplier: settings.multiplier,
            max: Duration::from_millis(settings.max_delay_ms),
            max_attempts: settings.max_attempts,
            jitter: settings.jitter,
        }
    }

    /// The delay before the attempt that follows `failed_attempts` failures, without jitter.
    pub fn base_delay(&self, failed_attempts: u32) -> Duration {
        let exponent = failed_attempts.saturating_sub(1).min(1_000) as i32;
        let delay = self.initial.as_secs_f64() * self.multiplier.powi(exponent);
        if delay.is_finite() && delay < self.max.as_secs_f64() {
            Duration::from_secs_f64(delay)
        } else {
            self.max
        }
    }

    /// The delay to use: the receiver's `Retry-After` when it sent one, else the backoff with
    /// jitter; never more than the maximum.
    pub fn delay(&self, failed_attempts: u32, retry_after: Option<Duration>) -> Duration {
        if let Some(asked) = retry_after {
            return asked.min(self.max);
        }
        let base = self.base_delay(failed_attempts).as_secs_f64();
        let spread = if self.jitter > 0.0 {
            rand::random_range(-self.jitter..=self.jitter)
        } else {
            0.0
        };
        Duration::from_secs_f64((base * (1.0 + spread)).max(0.0)).min(self.max)
    }

    /// The longest wait between attempts (`retry.max_delay_ms`): a receiver's pause too.
    pub fn longest_wait(&self) -> Duration {
        self.max
    }

    /// Whether another attempt is allowed after `failed_attempts` failures.
    pub fn allows_another(&self, failed_attempts: u32) -> bool {
        failed_attempts < self.max_attempts
    }
}

/// Reads a `Retry-After` value: delta-seconds or an HTTP date.
pub fn parse_retry_after(value: &str) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date: awc::http::header::HttpDate = value.parse().ok()?;
    let at = SystemTime::from(date);
    Some(at.duration_since(SystemTime::now()).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(jitter: f64) -> RetryPolicy {
        RetryPolicy::new(&RetrySettings {
            initial_delay_ms: 2_000,
            multiplier: 2.0,
            max_delay_ms: 60_000,
            max_attempts: 5,
            jitter,
        })
    }

    #[test]
    fn grows_exponentially_up_to_the_maximum() {
        let p = policy(0.0);
        let secs: Vec<u64> = (1..=7).map(|n| p.delay(n, None).as_secs()).collect();
        assert_eq!(secs, [2, 4, 8, 16, 32, 60, 60]);
        assert_eq!(p.base_delay(u32::MAX), Duration::from_secs(60));
    }

    #[test]
    fn jitter_stays_within_its_fraction() {
        let p = policy(0.2);
        for _ in 0..1000 {
            let d = p.delay(2, None).as_secs_f64();
            assert!((3.2..=4.8).contains(&d), "{d}");
        }
    }

    #[test]
    fn retry_after_wins_but_is_clamped() {
        let p = policy(0.2);
        assert_eq!(p.delay(1, Some(Duration::from_secs(7))), Duration::from_secs(7));
        assert_eq!(p.delay(1, Some(Duration::from_secs(7200))), Duration::from_secs(60));
    }

    #[test]
    fn reads_seconds_and_dates() {
        assert_eq!(parse_retry_after(" 120 "), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn counts_attempts_including_the_first() {
        let p = policy(0.0);
        assert!(p.allows_another(4));
        assert!(!p.allows_another(5));
    }
}
