//! The delivery actor's health report: computed on request for this instance's API, and
//! written to Redis (at most once a second, only after a change) for other instances.

use actix::prelude::*;

use super::health::{HealthReport, HealthState};
use super::{DeliveryActor, Phase, REPORT_EVERY};
use crate::clock::{iso8601, now_ms};

impl DeliveryActor {
    pub(super) fn state(&self) -> HealthState {
        if !self.webhook.enabled {
            HealthState::Disabled
        } else if self.webhook.paused {
            HealthState::Paused
        } else if self.circuit.open {
            HealthState::Failing
        } else if self.circuit.failures > 0 || self.window.values().any(|s| matches!(s.phase, Phase::Waiting { .. })) {
            HealthState::Retrying
        } else {
            HealthState::Healthy
        }
    }

    pub(super) fn report(&self, backlog: u64) -> HealthReport {
        // While the circuit is open the next attempt is the probe; otherwise the earliest retry.
        let next_retry = match &self.circuit.probe_timer {
            Some((due, _)) => Some(*due),
            None => self
                .window
                .values()
                .filter_map(|slot| match slot.phase {
                    Phase::Waiting { due, .. } => Some(due),
                    _ => None,
                })
                .min(),
        };
        HealthReport {
            id: self.webhook.id.to_string(),
            state: self.state(),
            in_flight: self.window.len(),
            backlog,
            consecutive_failures: self.circuit.failures,
            failing_since: self.circuit.failing_since.map(iso8601),
            last_success: self.stats.last_success.clone(),
            last_failure: self.stats.last_failure.clone(),
            next_retry_at: next_retry.map(iso8601),
            delivered: self.stats.delivered,
            failed: self.stats.failed,
            dead_lettered: self.stats.dead_lettered,
            reported_at: iso8601(now_ms()),
        }
    }

    /// Schedules a write of the health report for other instances (at most one per second).
    pub(super) fn report_changed(&mut self, ctx: &mut Context<Self>) {
        if self.report_due {
            return;
        }
        self.report_due = true;
        ctx.run_later(REPORT_EVERY, |act, ctx| {
            act.report_due = false;
            let queue = act.queue.clone();
            let webhook = act.webhook.id;
            let report = serde_json::to_string(&act.report(act.window.len() as u64)).unwrap_or_default();
            ctx.spawn(
                async move {
                    if let Err(error) = queue.save_health(&webhook, &report).await {
                        tracing::debug!(%webhook, %error, "could not store health report");
                    }
                }
                .into_actor(act),
            );
        });
    }
}
