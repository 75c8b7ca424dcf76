//! Prometheus metrics: every series hookrouter exports, in one place.
//!
//! Code records through the `metrics` facade where things happen; `GET /metrics` refreshes the
//! gauges that are cheaper to read than to track (backlog, reader lag, actor count) and renders
//! everything in the Prometheus text format.
//!
//! Series are per instance, not per webhook, so 100k webhooks do not mean 100k series. With
//! `[metrics] per_webhook`, delivery series also carry a `webhook` label for the first
//! `per_webhook_limit` webhooks seen, and `webhook="other"` for the rest.

use std::collections::HashSet;
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::config::MetricsSettings;
use crate::domain::WebhookId;

pub const EVENTS_READ: &str = "hookrouter_events_read_total";
pub const EVENTS_REJECTED: &str = "hookrouter_events_rejected_total";
pub const DELIVERIES: &str = "hookrouter_deliveries_total";
pub const DELIVERY_DURATION: &str = "hookrouter_delivery_duration_seconds";
pub const RETRIES_SCHEDULED: &str = "hookrouter_retries_scheduled_total";
pub const DEAD_LETTERS: &str = "hookrouter_dead_letters_total";
pub const BACKLOG: &str = "hookrouter_backlog";
pub const IN_FLIGHT: &str = "hookrouter_in_flight";
pub const READER_LAG: &str = "hookrouter_reader_lag";
pub const REDIS_ERRORS: &str = "hookrouter_redis_errors_total";
pub const ACTORS: &str = "hookrouter_delivery_actors";
pub const CIRCUITS_OPEN: &str = "hookrouter_circuits_open";
pub const BULLMQ_JOBS: &str = "hookrouter_bullmq_jobs_total";
pub const BULLMQ_CYCLES: &str = "hookrouter_bullmq_cycles_total";
pub const INVARIANT_VIOLATIONS: &str = "hookrouter_invariant_violations_total";
pub const AUDIT_REPAIRS: &str = "hookrouter_audit_repairs_total";
pub const CONCURRENCY_CUTS: &str = "hookrouter_concurrency_cuts_total";
pub const HOST_CONNECTIONS: &str = "hookrouter_host_connections";
pub const HOST_CAP: &str = "hookrouter_host_connection_cap";
pub const HOST_WAITING: &str = "hookrouter_host_waiting_webhooks";

const DURATION_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process-wide recorder (installed once; tests build several applications per process).
pub fn handle() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets_for_metric(Matcher::Full(DELIVERY_DURATION.into()), DURATION_BUCKETS)
            .map(|builder| builder.build_recorder())
            .unwrap_or_else(|_| PrometheusBuilder::new().build_recorder());
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        describe();
        handle
    })
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(EVENTS_READ, "Event stream entries read and routed");
    describe_counter!(
        EVENTS_REJECTED,
        "Malformed event stream entries set aside, by the part that was wrong"
    );
    describe_counter!(
        DELIVERIES,
        "Delivery attempts, by outcome (delivered, failed, dead, gone)"
    );
    describe_histogram!(DELIVERY_DURATION, Unit::Seconds, "Duration of delivery attempts");
    describe_counter!(RETRIES_SCHEDULED, "Failed attempts that were scheduled for a retry");
    describe_counter!(DEAD_LETTERS, "Deliveries that ran out of attempts");
    describe_gauge!(
        BACKLOG,
        "Deliveries queued in Redis for every webhook, in flight included"
    );
    describe_gauge!(
        IN_FLIGHT,
        "Deliveries held in memory (sending, waiting for a retry, or parked)"
    );
    describe_gauge!(READER_LAG, "Entries in the event stream not yet routed");
    describe_counter!(REDIS_ERRORS, "Redis commands that failed");
    describe_gauge!(ACTORS, "Delivery actors running");
    describe_gauge!(CIRCUITS_OPEN, "Webhooks whose circuit breaker is open");
    describe_counter!(
        CONCURRENCY_CUTS,
        "Times a webhook's adaptive concurrency was halved on a sign of overload (429, 503, a refused or reset connection, a timeout)"
    );
    describe_gauge!(
        HOST_CONNECTIONS,
        "Connections (attempts holding a permit) per receiving host"
    );
    describe_gauge!(HOST_CAP, "The per-host connection cap, per receiving host");
    describe_gauge!(HOST_WAITING, "Webhooks waiting for a connection to their host");
    describe_counter!(
        INVARIANT_VIOLATIONS,
        "Delivery actors found breaking an invariant by their self-check (a bug; repaired), by invariant"
    );
    describe_counter!(
        AUDIT_REPAIRS,
        "Conditions the delivery actors' self-check repaired that are not bugs (a lost work notice, a lease lost in a pause)"
    );
    describe_counter!(
        BULLMQ_CYCLES,
        "Cycles of the BullMQ source that reached the queue, by what it found (running, paused)"
    );
    describe_counter!(
        BULLMQ_JOBS,
        "BullMQ jobs moved into the event stream by this instance's BullMQ source"
    );
}

/// Decides which webhooks get a label of their own.
pub struct WebhookLabels {
    enabled: bool,
    limit: usize,
    labeled: Mutex<HashSet<WebhookId>>,
}

impl WebhookLabels {
    pub fn new(settings: &MetricsSettings) -> WebhookLabels {
        WebhookLabels {
            enabled: settings.per_webhook,
            limit: settings.per_webhook_limit,
            labeled: Mutex::new(HashSet::new()),
        }
    }

    /// The `webhook` label for this webhook's series; None when series are not per webhook.
    pub fn label(&self, id: &WebhookId) -> Option<String> {
        if !self.enabled {
            return None;
        }
        let Ok(mut labeled) = self.labeled.lock() else {
            return Some("other".into());
        };
        if labeled.contains(id) || labeled.len() < self.limit && labeled.insert(*id) {
            Some(id.to_string())
        } else {
            Some("other".into())
        }
    }
}

/// One delivery actor's handles on the attempt series, looked up once (a lookup hashes the
/// labels: 1% of the service's CPU when done for every attempt).
pub struct AttemptMetrics {
    /// delivered, failed, dead, gone.
    outcomes: [metrics::Counter; 4],
    duration: metrics::Histogram,
}

impl AttemptMetrics {
    pub fn new(webhook: Option<&str>) -> AttemptMetrics {
        let counter = |outcome: &'static str| match webhook {
            Some(webhook) => metrics::counter!(DELIVERIES, "outcome" => outcome, "webhook" => webhook.to_string()),
            None => metrics::counter!(DELIVERIES, "outcome" => outcome),
        };
        AttemptMetrics {
            outcomes: [
                counter("delivered"),
                counter("failed"),
                counter("dead"),
                counter("gone"),
            ],
            duration: match webhook {
                Some(webhook) => metrics::histogram!(DELIVERY_DURATION, "webhook" => webhook.to_string()),
                None => metrics::histogram!(DELIVERY_DURATION),
            },
        }
    }

    /// Records one attempt; `outcome` indexes delivered, failed, dead, gone.
    pub fn record(&self, outcome: usize, duration: Duration) {
        self.outcomes[outcome].increment(1);
        self.duration.record(duration.as_secs_f64());
    }
}

/// Hosts with series of their own; the rest are summed under `host="other"`.
const HOST_LABELS: usize = 50;

/// One receiving host's connections: (scheme://host:port, in use, cap, webhooks waiting).
pub type HostLine = (String, i64, i64, i64);

/// The metrics text, with the scrape-time gauges set first. `hosts` sorted by connections in
/// use, busiest first: the first [`HOST_LABELS`] get a label each (a bounded set of series).
pub fn render(backlog: Option<u64>, lag: Option<u64>, actors: Option<usize>, hosts: &[HostLine]) -> String {
    let handle = handle();
    let (named, rest) = hosts.split_at(hosts.len().min(HOST_LABELS));
    for (host, in_use, cap, waiting) in named {
        metrics::gauge!(HOST_CONNECTIONS, "host" => host.clone()).set(*in_use as f64);
        metrics::gauge!(HOST_CAP, "host" => host.clone()).set(*cap as f64);
        metrics::gauge!(HOST_WAITING, "host" => host.clone()).set(*waiting as f64);
    }
    if !rest.is_empty() {
        let sum = |pick: fn(&HostLine) -> i64| rest.iter().map(pick).sum::<i64>() as f64;
        metrics::gauge!(HOST_CONNECTIONS, "host" => "other").set(sum(|h| h.1));
        metrics::gauge!(HOST_CAP, "host" => "other").set(sum(|h| h.2));
        metrics::gauge!(HOST_WAITING, "host" => "other").set(sum(|h| h.3));
    }
    if let Some(backlog) = backlog {
        metrics::gauge!(BACKLOG).set(backlog as f64);
    }
    if let Some(lag) = lag {
        metrics::gauge!(READER_LAG).set(lag as f64);
    }
    if let Some(actors) = actors {
        metrics::gauge!(ACTORS).set(actors as f64);
    }
    handle.render()
}
