//! A delivery actor's account of itself: what operators read at `/webhooks/{id}/health`.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::rates::RecentRates;
use crate::clock::{iso8601, parse_iso8601};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum HealthState {
    /// Delivering; the last attempt succeeded (or none failed yet).
    Healthy,
    /// Some deliveries failed and wait for their retry, or failures in a row are adding up
    /// below the threshold; the others go on.
    Retrying,
    /// The circuit is open: the endpoint failed `[circuit] failure_threshold` times in a row,
    /// across deliveries. One probe at a time, on the probe schedule.
    Failing,
    /// Paused by an operator: events are queued, nothing is delivered.
    Paused,
    /// The webhook is disabled (410 Gone, failing too long, or by the API); nothing new is queued.
    Disabled,
    /// No delivering instance has reported on this webhook yet.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastSuccess {
    pub time: String,
    pub status: u16,
    pub latency_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct LastFailure {
    pub time: String,
    pub status: Option<u16>,
    pub error: String,
}

/// Running totals since the actor started.
#[derive(Debug, Clone, Default)]
pub struct Stats {
    pub delivered: u64,
    /// Failed attempts (each retry that fails counts).
    pub failed: u64,
    pub dead_lettered: u64,
    /// The latest success (ms, status, latency ms), formatted only when a report is made:
    /// this is written on every delivery.
    last_success: Option<(u64, u16, u64)>,
    /// The latest success a previous actor reported, until this one has its own.
    pub earlier_success: Option<LastSuccess>,
    pub last_failure: Option<LastFailure>,
}

impl Stats {
    pub fn success(&mut self, status: u16, latency_ms: u64) {
        self.delivered += 1;
        self.last_success = Some((crate::clock::now_ms(), status, latency_ms));
    }

    pub fn last_success(&self) -> Option<LastSuccess> {
        match self.last_success {
            Some((ms, status, latency_ms)) => Some(LastSuccess {
                time: iso8601(ms),
                status,
                latency_ms,
            }),
            None => self.earlier_success.clone(),
        }
    }

    pub fn failure(&mut self, status: Option<u16>, error: &str) {
        self.failed += 1;
        self.last_failure = Some(LastFailure {
            time: iso8601(crate::clock::now_ms()),
            status,
            error: error.to_string(),
        });
    }
}

/// A webhook's flow control (`actors/delivery/pacing.rs`, `hosts.rs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct FlowReport {
    /// Attempts it may have in flight now: adaptive, from `[delivery] initial_concurrency` up to
    /// `max_in_flight`, halved on signs of overload.
    pub concurrency: usize,
    /// Times the concurrency was halved since the actor started.
    pub cuts: u64,
    /// Its receiver asked it to slow down (429 or 503 with `Retry-After`): nothing is sent
    /// before then.
    pub paused_until: Option<String>,
    /// Its `rateLimit` (deliveries per second), if it has one.
    pub rate_limit: Option<u32>,
    /// The rate its receiver's 429s taught it (deliveries per second), while it holds.
    pub learned_rate: Option<f64>,
    /// The receiving host, `scheme://host:port`, whose connections every webhook on it shares.
    pub host: String,
    /// Connections to the host in use now, on this instance, and the cap.
    pub host_connections: i64,
    pub host_cap: i64,
    /// Webhooks waiting for a connection to the host now.
    pub host_waiting: i64,
    /// This webhook is one of them.
    pub waiting_for_host: bool,
}

/// The `/webhooks/{id}/health` body (without `success`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct HealthReport {
    pub id: String,
    pub state: HealthState,
    /// Deliveries being sent now.
    pub in_flight: usize,
    /// Deliveries that failed and wait in Redis for their retry.
    #[serde(default)]
    pub waiting: u64,
    /// Entries in the webhook's queue: fresh, in flight and waiting.
    pub backlog: u64,
    /// Failures in a row counted by the circuit breaker (see `Failing`).
    pub consecutive_failures: u32,
    /// When the current run of failures began.
    pub failing_since: Option<String>,
    pub last_success: Option<LastSuccess>,
    pub last_failure: Option<LastFailure>,
    /// When the earliest waiting delivery is due (while the circuit is closed).
    pub next_retry_at: Option<String>,
    /// When the next probe goes (while the circuit is open).
    #[serde(default)]
    pub next_probe_at: Option<String>,
    pub delivered: u64,
    pub failed: u64,
    pub dead_lettered: u64,
    /// The instance delivering the webhook (its owner), when one does.
    #[serde(default)]
    pub instance: Option<String>,
    /// Attempts and latency over the last 5 minutes (as of `reportedAt`; a stored report is
    /// aged to the time it is read).
    #[serde(default)]
    pub rates: RecentRates,
    /// How fast it may send now: its adaptive concurrency, a pause its receiver asked for,
    /// its host's connections.
    #[serde(default)]
    pub flow: Option<FlowReport>,
    /// When the delivery actor made this report (it can come from another instance).
    pub reported_at: String,
}

impl HealthReport {
    /// A stored report as of `now_ms`: its rates move on by the time since it was made (its
    /// actor stopped, or runs elsewhere and reports within a second).
    pub fn aged(mut self, now_ms: u64) -> HealthReport {
        if let Some(made) = parse_iso8601(&self.reported_at) {
            self.rates = self.rates.aged(made, now_ms);
        }
        self
    }
}
