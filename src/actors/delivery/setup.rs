//! What a delivery actor is started with: the settings every actor shares
//! ([`DeliveryConfig`]) and what the supervisor knows of one webhook's queue ([`StartState`]).

use std::sync::Arc;
use std::time::Duration;

use super::RetryPolicy;
use crate::config::Settings;
use crate::domain::InstanceName;
use crate::metrics::WebhookLabels;
use crate::security::Destinations;
use crate::store::{CircuitState, Retention};

/// What every delivery actor needs from the settings, shared.
pub struct DeliveryConfig {
    /// This instance: it holds the leases, and its name goes into every attempt record.
    pub instance: InstanceName,
    /// How long a lease lasts without renewal (`leases.ttl_ms`).
    pub lease_ttl: Duration,
    pub settings: crate::config::DeliverySettings,
    pub retry: RetryPolicy,
    pub failure_threshold: u32,
    /// The circuit's (first, longest) probe delay.
    pub probes: (Duration, Duration),
    pub disable_after_ms: u64,
    pub retention: Retention,
    /// How often the self-check runs, and whether a violation aborts (`audit`).
    pub invariants: crate::config::InvariantSettings,
    /// Each delivery thread opens its own Redis connection with these.
    pub redis: crate::config::RedisSettings,
    /// The SSRF guard, applied again at delivery time.
    pub destinations: Arc<Destinations>,
    /// Whom https deliveries trust (web roots + `[delivery] ca_file`), built once at start-up
    /// and shared by every thread's client.
    pub tls: Arc<rustls::ClientConfig>,
    pub metric_labels: WebhookLabels,
}

impl DeliveryConfig {
    pub fn new(
        settings: &Settings,
        instance: InstanceName,
        destinations: Arc<Destinations>,
        tls: Arc<rustls::ClientConfig>,
    ) -> DeliveryConfig {
        DeliveryConfig {
            instance,
            lease_ttl: settings.leases.ttl(),
            redis: settings.redis.clone(),
            destinations,
            tls,
            metric_labels: WebhookLabels::new(&settings.metrics),
            settings: settings.delivery.clone(),
            retry: RetryPolicy::new(&settings.retry),
            failure_threshold: settings.circuit.failure_threshold,
            probes: settings.circuit.probes(),
            disable_after_ms: settings.circuit.disable_after_ms,
            invariants: settings.invariants.clone(),
            retention: Retention {
                attempts_max_len: settings.attempts.max_len,
                attempts_ttl_ms: settings.attempts.ttl_ms,
                dead_max_len: settings.dead_letters.max_len,
                dead_ttl_ms: settings.dead_letters.ttl_ms,
            },
        }
    }
}

/// What the supervisor knows of a webhook's queue when it starts the actor.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartState {
    /// Entries in the queue (0 = nothing to read until told otherwise).
    pub backlog: u64,
    pub circuit: Option<CircuitState>,
}

impl StartState {
    /// For an actor started because events were just queued: read the queue from the start.
    pub fn queued() -> StartState {
        StartState {
            backlog: 1,
            circuit: None,
        }
    }

    /// Whether the webhook needs an actor now: a backlog, or a run of failures to resume.
    pub fn has_work(&self) -> bool {
        self.backlog > 0 || self.circuit.is_some_and(|c| c.failures > 0)
    }
}
