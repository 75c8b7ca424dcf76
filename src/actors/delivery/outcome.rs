//! What the delivery actor does with an attempt's outcome: record it (delivered entries leave
//! the queue, failed ones join the due set for their retry or become dead letters, every
//! attempt joins the log), disable the webhook on 410 Gone or after failing too long, and let
//! the circuit judge the endpoint. Outcomes are written in batches, one fenced script per
//! flush (when three quarters of a window wait, or [`FLUSH_DELAY`] after the first), so a busy webhook
//! costs Redis one call per batch, not one per attempt. Until its outcome is written a
//! delivery still counts towards `max_in_flight` (see `window::held`).

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::circuit::{Failure, Transition};
use super::sender::{Attempt, Verdict};
use super::trail::{Flush, Step};
use super::{DeliveryActor, FLUSH_DELAY};

/// An overload failure is spared (not counted) when the receiver answered a 2xx this recently.
const SPARE_IF_ANSWERED_WITHIN: std::time::Duration = std::time::Duration::from_secs(30);
use crate::clock::{iso8601, now_ms};
use crate::domain::StreamId;
use crate::store::{
    AfterAttempt, AttemptOutcome, AttemptRecord, DeadLetter, Settled, StoreError, WebhookChange, MAX_SETTLED,
};

impl DeliveryActor {
    /// Acts on an attempt's outcome.
    pub(super) fn settle(&mut self, entry: StreamId, attempt: Attempt, ctx: &mut Context<Self>) {
        let Some(slot) = self.window.remove(&entry) else {
            return;
        };
        if slot.probe {
            self.circuit.probe_returned();
        }
        // The connection is free: its permit goes to whoever waits at the host.
        self.host.release(1);
        let spare = self.pace(&slot.started, &attempt) && slot.delivery.spared < self.config.retry.max_attempts;
        let (attempts, spared) = match spare {
            true => (slot.delivery.attempts, slot.delivery.spared + 1),
            false => (slot.delivery.attempts + 1, slot.delivery.spared),
        };
        let tries = attempts + spared;
        let now = now_ms();
        let record = |outcome| AttemptRecord {
            time_ms: now,
            delivery_id: slot.id.clone(),
            ev: slot.delivery.event.ev.clone(),
            attempt: tries,
            outcome,
            status: attempt.status,
            latency_ms: attempt.latency.as_millis() as u64,
            error: attempt.error.clone(),
            response: attempt.response.clone(),
            instance: self.config.instance.clone(),
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
        let first_failed_ms = slot.delivery.first_failure_ms.unwrap_or(now);
        match attempt.verdict {
            Verdict::Delivered => {
                let record = record(AttemptOutcome::Delivered);
                self.stats.success(attempt.status.unwrap_or(200), record.latency_ms);
                let replay = slot.delivery.replay;
                self.record(entry, record, AfterAttempt::Delivered { replay }, ctx);
                if self.circuit.record_success(now) == Transition::Closed {
                    metrics::gauge!(crate::metrics::CIRCUITS_OPEN).decrement(1.0);
                    tracing::info!(webhook = %self.webhook.id, "circuit closed: the endpoint answers again");
                    // Recovered: start low again rather than send it the backlog at full width.
                    self.pacing.restart(self.config.settings.initial_concurrency);
                }
            }
            Verdict::Gone => {
                let record = record(AttemptOutcome::Gone);
                self.stats.failure(record.status, record.error.as_deref().unwrap_or(""));
                let retry = AfterAttempt::Retry {
                    attempts,
                    spared,
                    due_ms: now,
                    first_failed_ms,
                };
                self.record(entry, record, retry, ctx);
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
                    let delay = self.config.retry.delay(tries, attempt.retry_after);
                    let due_ms = now + delay.as_millis() as u64;
                    let record = record(AttemptOutcome::Failed);
                    self.stats.failure(record.status, record.error.as_deref().unwrap_or(""));
                    metrics::counter!(crate::metrics::RETRIES_SCHEDULED).increment(1);
                    let retry = AfterAttempt::Retry {
                        attempts,
                        spared,
                        due_ms,
                        first_failed_ms,
                    };
                    self.record(entry, record, retry, ctx);
                    self.retries.scheduled(due_ms);
                } else {
                    let record = record(AttemptOutcome::Dead);
                    self.stats.failure(record.status, record.error.as_deref().unwrap_or(""));
                    let letter = DeadLetter {
                        event: slot.delivery.event.clone(),
                        attempts,
                        error: attempt.error.clone().unwrap_or_default(),
                        status: attempt.status,
                    };
                    tracing::info!(webhook = %self.webhook.id, %entry, attempts, "delivery dead-lettered");
                    self.stats.dead_lettered += 1;
                    metrics::counter!(crate::metrics::DEAD_LETTERS).increment(1);
                    self.record(entry, record, AfterAttempt::Dead(letter), ctx);
                }
                self.give_up_if_failing_too_long(ctx);
            }
        }
        self.fill(ctx);
        self.report_changed(ctx);
        self.check_drained();
    }

    /// What an attempt says about the endpoint's load (`pacing`): a 2xx not answered slowly lets
    /// more go at once; a sign of overload halves that, and a `Retry-After` on it pauses every attempt.
    /// Whether the attempt is *spared*, not counted towards `max_attempts`: an overload failure
    /// while the receiver answers 2xx (within the last 30 s), at most `max_attempts` times per
    /// entry, so a healthy receiver's slow-down turns no event into a dead letter (the
    /// circuit still judges the endpoint).
    fn pace(&mut self, started: &Instant, attempt: &Attempt) -> bool {
        let now = Instant::now();
        match attempt.verdict {
            Verdict::Delivered => {
                self.pacing.succeeded(attempt.latency, now);
                false
            }
            _ if attempt.overloaded => {
                if attempt.status == Some(429) {
                    self.pacing.too_many(*started, now);
                }
                let longest = self.config.retry.longest_wait();
                if self.pacing.overloaded(*started, attempt.retry_after, longest, now) {
                    metrics::counter!(crate::metrics::CONCURRENCY_CUTS).increment(1);
                }
                self.pacing.answered_within(SPARE_IF_ANSWERED_WITHIN, now)
            }
            _ => false,
        }
    }

    /// Queues an outcome for the next flush: at once when a batch waits (they hold
    /// window room), else [`FLUSH_DELAY`] after the first one queued.
    fn record(&mut self, entry: StreamId, record: AttemptRecord, after: AfterAttempt, ctx: &mut Context<Self>) {
        let kind = match (&record.outcome, &after) {
            (AttemptOutcome::Gone, _) => 'g',
            (_, AfterAttempt::Delivered { .. }) => 'd',
            (_, AfterAttempt::Retry { .. }) => 'r',
            (_, AfterAttempt::Dead(_)) => 'x',
        };
        self.trail.push(Step::Outcome { entry, kind });
        self.settled.push(Settled {
            entry,
            record,
            after,
            repeat: false,
        });
        if self.settled.len() >= self.config.settings.batch() {
            self.flush(ctx);
        } else if self.settled.len() == 1 {
            self.flush_timer = Some(ctx.run_later(FLUSH_DELAY, |act, ctx| {
                act.flush_timer = None;
                act.flush(ctx);
            }));
        }
    }

    /// Whether `entry` is taken: being sent, or its outcome waiting or being written.
    pub(super) fn taken(&self, entry: &StreamId) -> bool {
        self.window.contains_key(entry)
            || self.writing.contains(entry)
            || self.settled.iter().any(|settled| settled.entry == *entry)
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

    /// Writes the outcomes waiting, in fenced scripts of at most [`MAX_SETTLED`], with the
    /// circuit's run as it stands. Retried if Redis fails (as repeats: the script may have run
    /// although its answer was lost); if the lease is gone, nothing was written and the actor
    /// stops.
    pub(super) fn flush(&mut self, ctx: &mut Context<Self>) {
        if let Some(timer) = self.flush_timer.take() {
            ctx.cancel_future(timer);
        }
        while !self.settled.is_empty() {
            let cut = self.settled.len().min(MAX_SETTLED);
            let settled: Vec<Settled> = self.settled.drain(..cut).collect();
            self.write_settled(settled, ctx);
        }
    }

    /// One flush's script.
    fn write_settled(&mut self, settled: Vec<Settled>, ctx: &mut Context<Self>) {
        let (queue, webhook, lease) = (self.queue.clone(), self.webhook.id, self.lease.clone());
        let retention = self.config.retention.clone();
        let plan = self
            .upkeep
            .plan(settled.len(), self.circuit.state(), &retention, Instant::now());
        self.writes += 1;
        self.writing.extend(settled.iter().map(|settled| settled.entry));
        let write = async move {
            let result = queue.settle(&webhook, &lease, &settled, plan, &retention).await;
            (result, settled)
        };
        ctx.spawn(write.into_actor(self).map(|(result, settled), act, ctx| {
            act.writes -= 1;
            for written in &settled {
                act.writing.remove(&written.entry);
            }
            let flushed = match &result {
                Ok(_) => Flush::Written,
                Err(StoreError::Fenced) => Flush::Fenced,
                Err(_) => Flush::Failed,
            };
            act.trail.push(Step::Flushed {
                count: settled.len(),
                result: flushed,
            });
            match result {
                Ok(logged) => {
                    act.upkeep.landed(logged, settled.len());
                    act.retries
                        .landed(settled.iter().filter_map(|written| match written.after {
                            AfterAttempt::Retry { due_ms, .. } => Some(due_ms),
                            _ => None,
                        }));
                    if act.fetching {
                        act.written_during_read
                            .extend(settled.iter().map(|written| written.entry));
                    }
                    act.fill(ctx)
                }
                Err(StoreError::Fenced) => return act.lease_lost(ctx),
                Err(error) => {
                    act.redis_failed(&error, "could not record attempts; retrying");
                    act.upkeep.failed();
                    let retry_now = act.settled.is_empty();
                    let repeats = settled.into_iter().map(|settled| Settled {
                        repeat: true,
                        ..settled
                    });
                    let newer = std::mem::replace(&mut act.settled, repeats.collect());
                    act.settled.extend(newer);
                    if retry_now {
                        act.after_redis_error(ctx, |act, ctx| act.flush(ctx));
                    }
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
                act.redis_failed(&error, "could not record the disabling; retrying");
                act.after_redis_error(ctx, move |act, ctx| act.disable(reason, ctx));
            }
            act.check_drained();
        }));
    }
}
