//! The delivery actor's health report: computed on request for this instance's API, and
//! written to Redis (at most once a second, only after a change) for other instances; and its
//! glance for the board writer.

use std::sync::Arc;

use actix::prelude::*;

use super::health::{FlowReport, HealthReport, HealthState, LastFailure};
use super::hosts;
use super::{DeliveryActor, REPORT_EVERY};
use crate::clock::{iso8601, now_ms};
use crate::domain::Webhook;
use crate::store::StoreError;

/// The board writer's question (`actors::board`), asked twice a second: answered from memory,
/// without touching Redis.
#[derive(Message)]
#[rtype(result = "Glance")]
pub struct GetGlance;

/// What a delivery actor looks like at a glance.
pub struct Glance {
    /// Its webhook as it knows it (for the URL and user the board shows).
    pub webhook: Arc<Webhook>,
    pub state: HealthState,
    pub in_flight: usize,
    pub waiting: u64,
    pub consecutive_failures: u32,
    /// Attempts per second, (delivered, failed), over the last 10 to 20 seconds.
    pub per_second: (f64, f64),
    /// The latest failure, while it matters (retrying or failing), so the dashboard shows the
    /// error with the state instead of a second later.
    pub last_failure: Option<LastFailure>,
    /// When the next retry and the next probe are due (ms).
    pub next_retry_ms: Option<u64>,
    pub next_probe_ms: Option<u64>,
}

impl Handler<GetGlance> for DeliveryActor {
    type Result = MessageResult<GetGlance>;

    fn handle(&mut self, _: GetGlance, _: &mut Context<Self>) -> Self::Result {
        let state = self.state();
        let (next_retry_ms, next_probe_ms) = self.next_times();
        let troubled = matches!(state, HealthState::Retrying | HealthState::Failing);
        MessageResult(Glance {
            webhook: self.webhook.clone(),
            state,
            in_flight: self.window.len(),
            waiting: self.retries.waiting,
            consecutive_failures: self.circuit.failures,
            per_second: self.rates.per_second(now_ms()),
            last_failure: self.stats.last_failure.clone().filter(|_| troubled),
            next_retry_ms,
            next_probe_ms,
        })
    }
}

impl DeliveryActor {
    pub(super) fn state(&self) -> HealthState {
        if !self.webhook.enabled {
            HealthState::Disabled
        } else if self.webhook.paused {
            HealthState::Paused
        } else if self.circuit.open {
            HealthState::Failing
        } else if self.circuit.failures > 0 || self.retries.waiting > 0 {
            HealthState::Retrying
        } else {
            HealthState::Healthy
        }
    }

    /// When the next retry and the next probe are due (ms): while the circuit is open only
    /// probes go; otherwise the earliest waiting entry.
    fn next_times(&self) -> (Option<u64>, Option<u64>) {
        let next_probe = self.circuit.probe_timer.as_ref().map(|(due, _)| *due);
        let next_retry = self
            .retries
            .next_due
            .filter(|_| !self.circuit.open && self.retries.waiting > 0);
        (next_retry, next_probe)
    }

    pub(super) fn report(&self, backlog: u64) -> HealthReport {
        let (next_retry, next_probe) = self.next_times();
        let now = now_ms();
        HealthReport {
            id: self.webhook.id.to_string(),
            state: self.state(),
            in_flight: self.window.len(),
            waiting: self.retries.waiting,
            backlog,
            consecutive_failures: self.circuit.failures,
            failing_since: self.circuit.failing_since.map(iso8601),
            last_success: self.stats.last_success(),
            last_failure: self.stats.last_failure.clone(),
            next_retry_at: next_retry.map(|due| iso8601(due.max(now))),
            next_probe_at: next_probe.map(iso8601),
            delivered: self.stats.delivered,
            failed: self.stats.failed,
            dead_lettered: self.stats.dead_lettered,
            instance: Some(self.config.instance.to_string()),
            rates: self.rates.summary(now),
            flow: Some(self.flow_report(now)),
            reported_at: iso8601(now),
        }
    }

    fn flow_report(&self, now: u64) -> FlowReport {
        let (host_connections, host_cap, host_waiting) = hosts::figures(&self.host.host).unwrap_or_default();
        let paused_until = self
            .pacing
            .paused_until
            .map(|until| until.saturating_duration_since(std::time::Instant::now()))
            .filter(|left| !left.is_zero())
            .map(|left| iso8601(now + left.as_millis() as u64));
        FlowReport {
            concurrency: self.pacing.limit(),
            cuts: self.pacing.cuts,
            paused_until,
            rate_limit: self
                .webhook
                .delivery
                .rate_limit
                .map(crate::domain::RateLimit::per_second),
            learned_rate: self.pacing.learned_rate().map(|rate| (rate * 10.0).round() / 10.0),
            host: self.host.host.to_string(),
            host_connections,
            host_cap,
            host_waiting,
            waiting_for_host: self.host_wait,
        }
    }

    /// Schedules a write of the health report for other instances (at most one per second).
    pub(super) fn report_changed(&mut self, ctx: &mut Context<Self>) {
        self.activity += 1;
        if self.report_due {
            return;
        }
        self.report_due = true;
        ctx.run_later(REPORT_EVERY, |act, ctx| {
            act.report_due = false;
            act.write_report(ctx);
        });
    }

    /// Stores the health report now: for other instances, for this webhook while its actor is
    /// stopped (idle), and for the counters of the next actor.
    pub(super) fn write_report(&mut self, ctx: &mut Context<Self>) {
        if !self.leased {
            return;
        }
        let (queue, webhook, lease) = (self.queue.clone(), self.webhook.id, self.lease.clone());
        let report = serde_json::to_string(&self.report(self.window.len() as u64)).unwrap_or_default();
        self.writes += 1;
        let write = async move { queue.save_health(&webhook, &lease, &report).await };
        ctx.spawn(write.into_actor(self).map(move |result, act, ctx| {
            act.writes -= 1;
            match result {
                Ok(()) => {}
                Err(StoreError::Fenced) => return act.lease_lost(ctx),
                Err(error) => tracing::debug!(%webhook, %error, "could not store health report"),
            }
            act.check_drained();
        }));
    }

    /// Takes over the counters the webhook's previous actor reported (it stopped when idle, or
    /// the service restarted), so they count since the webhook was created.
    pub(super) fn resume_counters(&mut self, ctx: &mut Context<Self>) {
        let queue = self.queue.clone();
        let webhook = self.webhook.id;
        let read = async move { queue.health(&webhook).await };
        ctx.spawn(read.into_actor(self).map(|result, act, _| {
            let Some(previous) = result
                .ok()
                .flatten()
                .and_then(|json| serde_json::from_str::<HealthReport>(&json).ok())
            else {
                return;
            };
            act.stats.delivered += previous.delivered;
            act.stats.failed += previous.failed;
            act.stats.dead_lettered += previous.dead_lettered;
            act.stats.earlier_success = previous.last_success;
            if act.stats.last_failure.is_none() {
                act.stats.last_failure = previous.last_failure;
            }
        }));
    }
}
