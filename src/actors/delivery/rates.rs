//! A delivery actor's recent rates and latency, in bounded memory (~1.5 KB per running actor).
//!
//! Attempts are counted in 30 ten-second buckets (the last 5 minutes: what the dashboard's
//! sparklines show), delivered and failed apart. Latency goes into a small histogram per
//! wall-clock minute (the current one and the 5 before it) with log-spaced bins, two per
//! octave from 64 µs to 33.5 s, so p50 and p99 over the last 5 minutes are computed without
//! keeping samples, within about ±20% (linear interpolation inside a bin; never above the
//! largest latency seen). Both are rings indexed by time: a slot older than its ring is
//! cleared when its time comes round again, so nothing ever needs a sweep.
//!
//! [`Rates::record`] runs once per attempt: a few integer operations, no allocation, no
//! formatting. The summary ([`RecentRates`]) is made only for reports.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Length of a counting bucket.
pub const BUCKET_MS: u64 = 10_000;
/// Buckets kept: 5 minutes.
pub const BUCKETS: usize = 30;
/// Length of a latency slice.
const SLICE_MS: u64 = 60_000;
/// Latency slices kept: the current minute and the 5 before it.
const SLICES: usize = 6;
/// Latency bins: under 64 µs, two per octave up to 2^25 µs (33.5 s), and everything above.
const BINS: usize = 40;
/// log2 of the first bin's upper bound (64 µs).
const FIRST_OCTAVE: u32 = 6;

#[derive(Clone, Copy, Default)]
struct Counts {
    /// Which bucket (ms / BUCKET_MS) these counts belong to.
    bucket: u64,
    delivered: u32,
    failed: u32,
}

#[derive(Clone, Copy)]
struct Latencies {
    /// Which minute (ms / SLICE_MS) this histogram belongs to.
    slice: u64,
    bins: [u32; BINS],
    /// The largest latency seen (µs): bounds the top bin and every quantile.
    max_us: u32,
}

impl Latencies {
    const EMPTY: Latencies = Latencies {
        slice: 0,
        bins: [0; BINS],
        max_us: 0,
    };
}

/// Counts and latency of the last 5 minutes of attempts.
pub struct Rates {
    counts: [Counts; BUCKETS],
    latencies: [Latencies; SLICES],
}

impl Default for Rates {
    fn default() -> Rates {
        Rates {
            counts: [Counts::default(); BUCKETS],
            latencies: [Latencies::EMPTY; SLICES],
        }
    }
}

impl Rates {
    /// Counts one attempt made at `now_ms` that took `latency`.
    pub fn record(&mut self, now_ms: u64, delivered: bool, latency: Duration) {
        let bucket = now_ms / BUCKET_MS;
        let counts = &mut self.counts[(bucket % BUCKETS as u64) as usize];
        if counts.bucket != bucket {
            *counts = Counts {
                bucket,
                ..Counts::default()
            };
        }
        if delivered {
            counts.delivered = counts.delivered.saturating_add(1);
        } else {
            counts.failed = counts.failed.saturating_add(1);
        }
        let slice = now_ms / SLICE_MS;
        let latencies = &mut self.latencies[(slice % SLICES as u64) as usize];
        if latencies.slice != slice {
            *latencies = Latencies {
                slice,
                ..Latencies::EMPTY
            };
        }
        let us = u32::try_from(latency.as_micros()).unwrap_or(u32::MAX);
        let bin = &mut latencies.bins[bin_of(us)];
        *bin = bin.saturating_add(1);
        latencies.max_us = latencies.max_us.max(us);
    }

    /// Delivered and failed attempts per second, over the current bucket and the one before
    /// (10 to 20 seconds).
    pub fn per_second(&self, now_ms: u64) -> (f64, f64) {
        let current = now_ms / BUCKET_MS;
        let (mut delivered, mut failed) = (0u64, 0u64);
        for bucket in [current.saturating_sub(1), current] {
            let counts = &self.counts[(bucket % BUCKETS as u64) as usize];
            if counts.bucket == bucket {
                delivered += u64::from(counts.delivered);
                failed += u64::from(counts.failed);
            }
        }
        let seconds = (BUCKET_MS + now_ms % BUCKET_MS) as f64 / 1000.0;
        (delivered as f64 / seconds, failed as f64 / seconds)
    }

    /// The report's view: per-bucket counts, oldest first, the last being the current bucket;
    /// latency quantiles over the current minute and the 5 before it.
    pub fn summary(&self, now_ms: u64) -> RecentRates {
        let current = now_ms / BUCKET_MS;
        let mut delivered = Vec::with_capacity(BUCKETS);
        let mut failed = Vec::with_capacity(BUCKETS);
        for bucket in (current + 1).saturating_sub(BUCKETS as u64)..=current {
            let counts = &self.counts[(bucket % BUCKETS as u64) as usize];
            let fresh = counts.bucket == bucket;
            delivered.push(if fresh { counts.delivered } else { 0 });
            failed.push(if fresh { counts.failed } else { 0 });
        }
        let slice = now_ms / SLICE_MS;
        let mut bins = [0u64; BINS];
        let mut max_us = 0;
        for latencies in self.latencies.iter().filter(|l| l.slice + (SLICES as u64) > slice) {
            for (total, count) in bins.iter_mut().zip(latencies.bins) {
                *total += u64::from(count);
            }
            max_us = max_us.max(latencies.max_us);
        }
        RecentRates::new(
            delivered,
            failed,
            quantile(&bins, max_us, 0.5),
            quantile(&bins, max_us, 0.99),
        )
    }
}

/// The bin of a latency in µs: 0 below 64 µs, then two per octave (2^k and 1.5 × 2^k).
fn bin_of(us: u32) -> usize {
    if us < 1 << FIRST_OCTAVE {
        return 0;
    }
    let octave = 31 - us.leading_zeros();
    let upper_half = (us >> (octave - 1)) & 1;
    ((1 + 2 * (octave - FIRST_OCTAVE) + upper_half) as usize).min(BINS - 1)
}

/// The smallest latency (µs) of a bin.
fn lower_bound(bin: usize) -> u64 {
    if bin == 0 {
        return 0;
    }
    let step = (bin - 1) as u32;
    let octave = FIRST_OCTAVE + step / 2;
    (1u64 << octave) + u64::from(step % 2) * (1u64 << (octave - 1))
}

/// The latency (ms, to 0.01) below which a fraction `q` of the attempts fall, interpolated
/// inside its bin and never above the largest seen; None without attempts.
fn quantile(bins: &[u64; BINS], max_us: u32, q: f64) -> Option<f64> {
    let total: u64 = bins.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = q * total as f64;
    let mut below = 0u64;
    for (bin, &count) in bins.iter().enumerate() {
        if count == 0 {
            continue;
        }
        if (below + count) as f64 >= rank {
            let lower = lower_bound(bin) as f64;
            let upper = if bin + 1 < BINS {
                lower_bound(bin + 1) as f64
            } else {
                f64::from(max_us).max(lower)
            };
            let within = ((rank - below as f64) / count as f64).clamp(0.0, 1.0);
            let us = (lower + (upper - lower) * within).min(f64::from(max_us));
            return Some((us / 10.0).round() / 100.0);
        }
        below += count;
    }
    Some((f64::from(max_us) / 10.0).round() / 100.0)
}

/// What a health report says of the last 5 minutes of attempts (every attempt counts: a
/// delivery retried three times is three).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RecentRates {
    /// The span of the series: 300 seconds.
    pub window_seconds: u32,
    /// One point of the series: 10 seconds.
    pub bucket_seconds: u32,
    /// Successful attempts in the window.
    pub delivered: u64,
    /// Failed attempts in the window.
    pub failed: u64,
    /// Successful attempts per 10-second bucket, oldest first; the last is the bucket the
    /// report was made in (`reportedAt`).
    pub delivered_series: Vec<u32>,
    /// Failed attempts per bucket, like `deliveredSeries`.
    pub failed_series: Vec<u32>,
    /// Median attempt latency (ms) over the last 5 to 6 minutes; null without attempts.
    pub latency_p50_ms: Option<f64>,
    /// 99th percentile attempt latency (ms), like `latencyP50Ms`.
    pub latency_p99_ms: Option<f64>,
}

impl Default for RecentRates {
    fn default() -> RecentRates {
        RecentRates::new(vec![0; BUCKETS], vec![0; BUCKETS], None, None)
    }
}

impl RecentRates {
    fn new(delivered: Vec<u32>, failed: Vec<u32>, p50: Option<f64>, p99: Option<f64>) -> RecentRates {
        RecentRates {
            window_seconds: (BUCKETS as u64 * BUCKET_MS / 1000) as u32,
            bucket_seconds: (BUCKET_MS / 1000) as u32,
            delivered: delivered.iter().map(|&n| u64::from(n)).sum(),
            failed: failed.iter().map(|&n| u64::from(n)).sum(),
            delivered_series: delivered,
            failed_series: failed,
            latency_p50_ms: p50,
            latency_p99_ms: p99,
        }
    }

    /// The same figures seen at `now_ms` from a report made at `made_ms`: the series moves on
    /// by the buckets that passed since (with nothing in them: the actor had stopped), and
    /// the latency goes once no attempt is left in the window.
    pub fn aged(self, made_ms: u64, now_ms: u64) -> RecentRates {
        let passed = (now_ms / BUCKET_MS).saturating_sub(made_ms / BUCKET_MS) as usize;
        if passed == 0 {
            return self;
        }
        let shift = |series: Vec<u32>| -> Vec<u32> {
            let mut series: Vec<u32> = series.into_iter().skip(passed).collect();
            series.resize(BUCKETS, 0);
            series
        };
        let (delivered, failed) = (shift(self.delivered_series), shift(self.failed_series));
        let any = delivered.iter().chain(&failed).any(|&n| n > 0);
        let latency = |q: Option<f64>| q.filter(|_| any);
        RecentRates::new(
            delivered,
            failed,
            latency(self.latency_p50_ms),
            latency(self.latency_p99_ms),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const T0: u64 = 1_764_181_560_000; // the start of a minute (and of a bucket)

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn bins_are_log_spaced_and_cover_the_range() {
        assert_eq!(bin_of(0), 0);
        assert_eq!(bin_of(63), 0);
        assert_eq!(bin_of(64), 1);
        assert_eq!(bin_of(95), 1);
        assert_eq!(bin_of(96), 2);
        assert_eq!(bin_of(128), 3);
        assert_eq!(bin_of(u32::MAX), BINS - 1);
        for bin in 1..BINS {
            assert!(lower_bound(bin) > lower_bound(bin - 1), "bin {bin}");
            assert_eq!(bin_of(lower_bound(bin) as u32), bin, "bin {bin}");
            assert_eq!(bin_of(lower_bound(bin) as u32 - 1), bin - 1, "bin {bin}");
        }
        // The last bounded bin ends at 2^25 µs (33.5 s).
        assert_eq!(lower_bound(BINS - 1), 1 << 25);
    }

    #[test]
    fn counts_land_in_ten_second_buckets_oldest_first() {
        let mut rates = Rates::default();
        rates.record(T0, true, ms(5));
        rates.record(T0 + 1_000, false, ms(5));
        rates.record(T0 + 25_000, true, ms(5));
        let summary = rates.summary(T0 + 29_999);
        assert_eq!(summary.delivered_series.len(), BUCKETS);
        assert_eq!(summary.delivered_series[BUCKETS - 3..], [1, 0, 1]);
        assert_eq!(summary.failed_series[BUCKETS - 3..], [1, 0, 0]);
        assert_eq!((summary.delivered, summary.failed), (2, 1));
        // Five minutes later the first bucket has left the window; its slot is reused.
        let later = T0 + 300_000;
        assert_eq!(rates.summary(later).delivered, 1);
        rates.record(later, true, ms(5));
        let summary = rates.summary(later);
        assert_eq!(summary.delivered_series[BUCKETS - 1], 1);
        assert_eq!((summary.delivered, summary.failed), (2, 0));
    }

    #[test]
    fn quantiles_are_close_to_the_true_ones_and_never_above_the_largest() {
        let mut rates = Rates::default();
        // 1..=1000 ms, once each: p50 = 500 ms, p99 = 990 ms.
        for n in 1..=1000 {
            rates.record(T0 + n, true, ms(n));
        }
        let summary = rates.summary(T0 + 2_000);
        let p50 = summary.latency_p50_ms.unwrap();
        let p99 = summary.latency_p99_ms.unwrap();
        assert!((p50 - 500.0).abs() / 500.0 < 0.2, "p50 {p50}");
        assert!((p99 - 990.0).abs() / 990.0 < 0.2, "p99 {p99}");
        assert!(p99 <= 1000.0, "p99 {p99}");

        // One latency only: both quantiles are within its bin and not above it.
        let mut one = Rates::default();
        one.record(T0, true, Duration::from_micros(1_500));
        let summary = one.summary(T0);
        assert!(summary.latency_p50_ms.unwrap() <= 1.5 && summary.latency_p50_ms.unwrap() >= 1.0);
        assert_eq!(summary.latency_p99_ms.unwrap(), 1.5);

        // Beyond the last bounded bin, the largest seen bounds the estimate.
        let mut slow = Rates::default();
        slow.record(T0, false, ms(60_000));
        let p99 = slow.summary(T0).latency_p99_ms.unwrap();
        assert!(p99 > 33_554.0 && p99 <= 60_000.0, "p99 {p99}");
        assert_eq!(Rates::default().summary(T0).latency_p50_ms, None);
    }

    #[test]
    fn latency_covers_the_current_minute_and_the_five_before() {
        let mut rates = Rates::default();
        rates.record(T0, true, ms(100));
        rates.record(T0 + 5 * 60_000, true, ms(1));
        // Minute 0 is still in (minutes 0..=5): p99 sees the 100 ms.
        assert!(rates.summary(T0 + 5 * 60_000).latency_p99_ms.unwrap() > 50.0);
        // From minute 6 on it is not.
        assert!(rates.summary(T0 + 6 * 60_000).latency_p99_ms.unwrap() <= 1.0);
    }

    #[test]
    fn per_second_spans_the_current_and_previous_bucket() {
        let mut rates = Rates::default();
        for n in 0..100 {
            rates.record(T0 + n * 100, true, ms(1)); // 100 in the first bucket
        }
        for n in 0..10 {
            rates.record(T0 + 10_000 + n, false, ms(1));
        }
        // 5 s into the second bucket: 110 attempts over 15 s.
        let (delivered, failed) = rates.per_second(T0 + 15_000);
        assert!((delivered - 100.0 / 15.0).abs() < 1e-9, "{delivered}");
        assert!((failed - 10.0 / 15.0).abs() < 1e-9, "{failed}");
        assert_eq!(rates.per_second(T0 + 40_000), (0.0, 0.0));
    }

    #[test]
    fn a_stored_summary_ages_by_the_buckets_that_passed() {
        let mut rates = Rates::default();
        rates.record(T0 + 5_000, true, ms(3));
        rates.record(T0 + 15_000, false, ms(3));
        let made = T0 + 19_000;
        let summary = rates.summary(made);
        assert_eq!(summary.clone().aged(made, made + 500), summary);
        let aged = summary.clone().aged(made, made + 10_000);
        assert_eq!(aged.delivered_series[BUCKETS - 3..], [1, 0, 0]);
        assert_eq!(aged.failed_series[BUCKETS - 3..], [0, 1, 0]);
        assert_eq!(aged.latency_p50_ms, summary.latency_p50_ms);
        let gone = summary.aged(made, made + 300_000);
        assert_eq!((gone.delivered, gone.failed), (0, 0));
        assert_eq!(gone.delivered_series.len(), BUCKETS);
        assert_eq!(gone.latency_p99_ms, None);
    }
}
