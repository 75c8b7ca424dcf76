//! What the delivery actor does with an attempt's outcome: remove a delivered entry (in
//! batches, with its attempt record), record a failure and put the entry in the due set for
//! its retry (in Redis, so a restart resumes it), dead-letter an exhausted entry, disable the
//! webhook on 410 Gone or after failing too long, and let the circuit judge the endpoint.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::circuit::{Failure, Transition};
use super::sender::{Attempt, Verdict};
use super::{DeliveryActor, FLUSH_DELAY, REDIS_RETRY};
use crate::clock::{iso8601, now_ms};
use crate::domain::StreamId;
use crate::store::{AfterFailure, AttemptOutcome, AttemptRecord, CircuitState, DeadLetter, WebhookChange};

impl DeliveryActor {
    /// Acts on an attempt's outcome.
    pub(super) fn settle(&mut self, entry: StreamId, attempt: Attempt, ctx: &mut Context<Self>) {
        let Some(slot) = self.window.remove(&entry) else {
            return;
        };
        let attempts = slot.delivery.attempts + 1;
        let now = now_ms();
        let record = |outcome| AttemptRecord {
            time_ms: now,
            delivery_id: slot.id.clone(),
            ev: slot.delivery.event.ev.clone(),
            attempt: attempts,
            outcome,
            status: attempt.status,
            latency_ms: attempt.latency.as_millis() as u64,
            error: attempt.error.clone(),
            response: attempt.response.clone(),
        };
        let outcome = match attempt.verdict {
            Verdict::Delivered => 0,
            Verdict::Failed if self.config.retry.allows_another(attempts) => 1,
            Verdict::Failed => 2,
            Verdict::Gone => 3,
        };
        if let Some(metrics) = &self.attempt_metrics {
            metrics.record(outcome, attempt.latency);
        }
        self.rates.record(now, outcome == 0, attempt.latency);
        match attempt.verdict {
            Verdict::Delivered => {
                let record = record(AttemptOutcome::Delivered);
                self.stats.success(attempt.status.unwrap_or(200), record.latency_ms);
                self.delivered.push((entry, record));
                if self.delivered.len() == 1 {
                    ctx.run_later(FLUSH_DELAY, |act, ctx| act.flush(ctx));
                }
                if self.circuit.record_success(now) == Transition::Closed {
                    metrics::gauge!(crate::metrics::CIRCUITS_OPEN).decrement(1.0);
                    tracing::info!(webhook = %self.webhook.id, "circuit closed: the endpoint answers again");
                }
            }
            Verdict::Gone => {
                let record = record(AttemptOutcome::Gone);
                let retry = AfterFailure::Retry {
                    attempts,
                    due_ms: now,
                    first_failed_ms: slot.delivery.first_failure_ms.unwrap_or(now),
                };
                self.fail(entry, record, retry, ctx);
                self.retries.scheduled(now);
                let reason = format!("the endpoint answered 410 Gone at {}", iso8601(now));
                self.disable(reason, ctx);
            }
            Verdict::Failed => {
                tracing::debug!(
                    webhook = %self.webhook.id,
                    %entry,
                    status = attempt.status,
                    error = attempt.error.as_deref().unwrap_or(""),
                    response = %String::from_utf8_lossy(&attempt.response),
                    "delivery attempt failed"
                );
                let failure = Failure {
                    started: slot.started,
                    seen: Instant::now(),
                    now_ms: now,
                    first_failure_ms: slot.delivery.first_failure_ms,
                    probe: slot.probe,
                    retry_after: attempt.retry_after,
                };
                if self.circuit.record_failure(failure) == Transition::Opened {
                    metrics::gauge!(crate::metrics::CIRCUITS_OPEN).increment(1.0);
                    tracing::warn!(
                        webhook = %self.webhook.id,
                        failures = self.circuit.failures,
                        "circuit opened: probing the endpoint, one delivery at a time"
                    );
                }
                if self.config.retry.allows_another(attempts) {
                    let delay = self.config.retry.delay(attempts, attempt.retry_after);
                    let due = now + delay.as_millis() as u64;
                    let record = record(AttemptOutcome::Failed);
                    metrics::counter!(crate::metrics::RETRIES_SCHEDULED).increment(1);
                    let retry = AfterFailure::Retry {
                        attempts,
                        due_ms: due,
                        first_failed_ms: slot.delivery.first_failure_ms.unwrap_or(now),
                    };
                    self.fail(entry, record, retry, ctx);
                    self.retries.scheduled(due);
                } else {
                    let record = record(AttemptOutcome::Dead);
                    let letter = DeadLetter {
                        event: slot.delivery.event.clone(),
                        attempts,
                        error: attempt.error.clone().unwrap_or_default(),
                        status: attempt.status,
                    };
                    tracing::info!(webhook = %self.webhook.id, %entry, attempts, "delivery dead-lettered");
                    self.stats.dead_lettered += 1;
                    metrics::counter!(crate::metrics::DEAD_LETTERS).increment(1);
                    self.fail(entry, record, AfterFailure::Dead(letter), ctx);
                }
                self.give_up_if_failing_too_long(ctx);
            }
        }
        self.fill(ctx);
        self.report_changed(ctx);
        self.check_drained();
    }

    /// Counts a failed attempt and writes it to Redis, with the circuit's run.
    fn fail(&mut self, entry: StreamId, record: AttemptRecord, after: AfterFailure, ctx: &mut Context<Self>) {
        self.stats.failure(record.status, record.error.as_deref().unwrap_or(""));
        let write = FailureWrite {
            entry,
            record,
            after,
            circuit: self.circuit.state(),
        };
        self.write_failure(write, ctx);
    }

    fn write_failure(&mut self, write: FailureWrite, ctx: &mut Context<Self>) {
        let (queue, webhook, retention) = (self.queue.clone(), self.webhook.id, self.config.retention.clone());
        self.writes += 1;
        let job = write.clone();
        let task = async move {
            queue
                .record_failure(&webhook, job.entry, &job.record, &job.after, job.circuit, &retention)
                .await
        };
        ctx.spawn(task.into_actor(self).map(move |result, act, ctx| {
            act.writes -= 1;
            if let Err(error) = result {
                tracing::warn!(webhook = %act.webhook.id, %error, "could not record a failed attempt; retrying");
                ctx.run_later(REDIS_RETRY, move |act, ctx| act.write_failure(write, ctx));
            }
            act.check_drained();
        }));
    }

    /// Disables the webhook after `[circuit] disable_after_ms` of failures without a success.
    fn give_up_if_failing_too_long(&mut self, ctx: &mut Context<Self>) {
        let now = now_ms();
        let Some(failing_for) = self.circuit.failing_for(now) else {
            return;
        };
        if failing_for >= self.config.disable_after_ms && self.webhook.enabled {
            let since = iso8601(now - failing_for);
            self.disable(format!("every delivery failed since {since}"), ctx);
        }
    }

    /// Removes delivered entries from Redis in one batch, with their attempt records.
    pub(super) fn flush(&mut self, ctx: &mut Context<Self>) {
        if self.delivered.is_empty() {
            return;
        }
        let delivered = std::mem::take(&mut self.delivered);
        let (queue, webhook, retention) = (self.queue.clone(), self.webhook.id, self.config.retention.clone());
        self.writes += 1;
        let write = async move {
            (
                queue.record_delivered(&webhook, &delivered, &retention).await,
                delivered,
            )
        };
        ctx.spawn(write.into_actor(self).map(|(result, delivered), act, ctx| {
            act.writes -= 1;
            if let Err(error) = result {
                tracing::warn!(webhook = %act.webhook.id, %error, "could not remove delivered entries; retrying");
                let retry_now = act.delivered.is_empty();
                act.delivered.extend(delivered);
                if retry_now {
                    ctx.run_later(REDIS_RETRY, |act, ctx| act.flush(ctx));
                }
            }
            act.check_drained();
        }));
    }

    /// Disables the webhook: locally at once, and in Redis for everyone.
    pub(super) fn disable(&mut self, reason: String, ctx: &mut Context<Self>) {
        tracing::warn!(webhook = %self.webhook.id, %reason, "disabling webhook");
        let mut webhook = (*self.webhook).clone();
        webhook.enabled = false;
        webhook.disabled_reason = Some(reason.clone());
        self.apply(Arc::new(webhook), ctx);
        let webhooks = self.webhooks.clone();
        let id = self.webhook.id;
        let change = WebhookChange {
            enabled: Some(false),
            disabled_reason: Some(reason.clone()),
            ..WebhookChange::default()
        };
        self.writes += 1;
        let write = async move { webhooks.update(&id, &change).await };
        ctx.spawn(write.into_actor(self).map(move |result, act, ctx| {
            act.writes -= 1;
            if let Err(error) = result {
                tracing::warn!(webhook = %act.webhook.id, %error, "could not record the disabling; retrying");
                ctx.run_later(REDIS_RETRY, move |act, ctx| act.disable(reason, ctx));
            }
            act.check_drained();
        }));
    }
}

/// A failed attempt's Redis write, owned so it can be retried as it was.
#[derive(Clone)]
struct FailureWrite {
    entry: StreamId,
    record: AttemptRecord,
    after: AfterFailure,
    circuit: CircuitState,
}
