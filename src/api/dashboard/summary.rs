//! The summary strip's shape, and the one figure it has to work out over time: events in per
//! second, from two readings of the event stream's `entries-added` (Redis 7) at least a second
//! and at most [`STALE_READING_MS`] apart. The rest comes straight from one snapshot.

use serde::Serialize;
use utoipa::ToSchema;

/// Readings further apart than this (nobody watched meanwhile) start over rather than give a
/// long average.
const STALE_READING_MS: u64 = 10_000;

/// Webhooks by state, for the filter's choices.
#[derive(Debug, Clone, Default, Serialize, ToSchema)]
pub struct StateCounts {
    pub failing: u64,
    pub retrying: u64,
    pub healthy: u64,
    pub paused: u64,
    pub disabled: u64,
    /// Webhooks no delivering instance reports on (none is running).
    pub unknown: u64,
}

/// The summary strip.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Events published per second (the event stream's entries added; null until two readings
    /// a second apart exist).
    pub events_in_per_s: Option<f64>,
    /// Successful delivery attempts per second over the last 10 to 20 seconds, all instances.
    pub deliveries_per_s: f64,
    /// Failed attempts per second, likewise.
    pub failures_per_s: f64,
    /// Deliveries queued for active, paused and disabled webhooks (idle ones have none).
    pub backlog: u64,
    /// Webhooks whose circuit is open (state `failing`).
    pub open_circuits: u64,
    pub paused: u64,
    pub disabled: u64,
    /// Instances delivering now: live members (membership) whose board has not expired.
    pub instances: u64,
    /// Always `up` here: without Redis there is no summary (the stream says so instead).
    pub redis: String,
    /// Events in the stream not yet routed.
    pub reader_lag: u64,
    /// Webhooks registered.
    pub webhooks: u64,
    /// Webhooks with a running delivery actor.
    pub active: u64,
    pub states: StateCounts,
}

/// The last reading of the event stream's `entries-added` (ms, count), and the rate it gave.
#[derive(Default)]
pub struct EventsIn {
    reading: Option<(u64, u64)>,
    rate: Option<f64>,
}

impl EventsIn {
    /// Takes a reading (`added`: None while the stream does not exist) made at `now` (ms); the
    /// rate as of now.
    pub fn observe(&mut self, added: Option<u64>, now: u64) -> Option<f64> {
        match (added, self.reading) {
            (None, _) => self.rate = Some(0.0),
            (Some(added), None) => self.reading = Some((now, added)),
            (Some(added), Some((then, _))) if now > then + STALE_READING_MS => {
                self.reading = Some((now, added));
                self.rate = None;
            }
            (Some(added), Some((then, before))) if now >= then + 1000 => {
                let seconds = (now - then) as f64 / 1000.0;
                self.rate = Some(round(added.saturating_sub(before) as f64 / seconds));
                self.reading = Some((now, added));
            }
            _ => {}
        }
        self.rate
    }
}

/// Two decimals are plenty for a rate on a dashboard.
pub fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_in_comes_from_readings_a_second_to_ten_apart() {
        let mut rate = EventsIn::default();
        assert_eq!(rate.observe(Some(1_000), 0), None);
        assert_eq!(rate.observe(Some(1_100), 500), None, "too soon to say");
        assert_eq!(rate.observe(Some(1_300), 2_000), Some(150.0));
        assert_eq!(
            rate.observe(Some(1_400), 2_400),
            Some(150.0),
            "the last rate until the next reading"
        );
        // Nobody looked for a minute: no average over it.
        assert_eq!(rate.observe(Some(9_999), 62_000), None);
        assert_eq!(rate.observe(Some(10_099), 63_000), Some(100.0));
        // No stream (nothing published yet, or Redis lost it).
        assert_eq!(rate.observe(None, 64_000), Some(0.0));
    }
}
