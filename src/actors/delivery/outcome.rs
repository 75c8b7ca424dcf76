//! What the delivery actor does with an attempt's outcome: remove a delivered entry (in
//! batches), schedule a retry (recorded in Redis, so a restart resumes it), dead-letter an
//! exhausted one, or disable the webhook on 410 Gone.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::sender::{Attempt, Verdict};
use super::{DeliveryActor, FLUSH_DELAY, REDIS_RETRY};
use crate::clock::{iso8601, now_ms};
use crate::domain::StreamId;
use crate::store::{DeadLetter, WebhookChange};

impl DeliveryActor {
    /// Acts on an attempt's outcome.
    pub(super) fn settle(&mut self, entry: StreamId, attempt: Attempt, ctx: &mut Context<Self>) {
        let latency_ms = attempt.latency.as_millis() as u64;
        let error = attempt.error.as_deref().unwrap_or("");
        match attempt.verdict {
            Verdict::Delivered => {
                self.stats
                    .success(attempt.status.unwrap_or(200), latency_ms);
                self.window.remove(&entry);
                self.finish(entry, ctx);
                self.fill(ctx);
            }
            Verdict::Gone => {
                self.stats.failure(attempt.status, error);
                let attempts = self.count_attempt(entry);
                self.persist_retry(entry, attempts, now_ms(), ctx);
                self.window.remove(&entry);
                let reason = format!("the endpoint answered 410 Gone at {}", iso8601(now_ms()));
                self.disable(reason, ctx);
            }
            Verdict::Failed => {
                tracing::debug!(
                    webhook = %self.webhook.id,
                    %entry,
                    status = attempt.status,
                    error,
                    response = %String::from_utf8_lossy(&attempt.response),
                    "delivery attempt failed"
                );
                self.stats.failure(attempt.status, error);
                let attempts = self.count_attempt(entry);
                if self.config.retry.allows_another(attempts) {
                    let delay = self.config.retry.delay(attempts, attempt.retry_after);
                    let due = now_ms() + delay.as_millis() as u64;
                    self.persist_retry(entry, attempts, due, ctx);
                    self.arm_retry(entry, due, ctx);
                } else {
                    self.bury(entry, attempt, ctx);
                }
            }
        }
        self.report_changed(ctx);
    }

    pub(super) fn count_attempt(&mut self, entry: StreamId) -> u32 {
        self.window.get_mut(&entry).map_or(0, |slot| {
            slot.delivery.attempts += 1;
            slot.delivery.attempts
        })
    }

    pub(super) fn persist_retry(
        &mut self,
        entry: StreamId,
        attempts: u32,
        due: u64,
        ctx: &mut Context<Self>,
    ) {
        let queue = self.queue.clone();
        let webhook = self.webhook.id;
        ctx.spawn(
            async move {
                if let Err(error) = queue.save_retry(&webhook, entry, attempts, due).await {
                    // The in-memory timer still runs; only a restart would forget the count.
                    tracing::warn!(%webhook, %entry, %error, "could not record retry state");
                }
            }
            .into_actor(self),
        );
    }

    pub(super) fn arm_retry(&mut self, entry: StreamId, due: u64, ctx: &mut Context<Self>) {
        if !self.webhook.enabled {
            // Disabled meanwhile: the entry stays queued in Redis with its retry state.
            self.window.remove(&entry);
            return;
        }
        let delay = Duration::from_millis(due.saturating_sub(now_ms()));
        let timer = ctx.run_later(delay, move |act, ctx| act.send(entry, ctx));
        if let Some(slot) = self.window.get_mut(&entry) {
            slot.retry = Some((due, timer));
        }
    }

    /// Moves an entry out of attempts to the dead letters.
    pub(super) fn bury(&mut self, entry: StreamId, attempt: Attempt, ctx: &mut Context<Self>) {
        let Some(slot) = self.window.get(&entry) else {
            return;
        };
        let queue = self.queue.clone();
        let webhook = self.webhook.id;
        let (id, event, attempts) = (
            slot.id.clone(),
            slot.delivery.event.clone(),
            slot.delivery.attempts,
        );
        let max_len = self.config.dead_letters_max_len;
        let error = attempt.error.clone().unwrap_or_default();
        let write = async move {
            let letter = DeadLetter {
                entry,
                id: &id,
                event: &event,
                attempts,
                error: &error,
                status: attempt.status,
            };
            queue.dead_letter(&webhook, letter, max_len).await
        };
        ctx.spawn(write.into_actor(self).map(move |result, act, ctx| match result {
            Ok(()) => {
                tracing::info!(webhook = %act.webhook.id, %entry, attempts, "delivery dead-lettered");
                act.stats.dead_lettered += 1;
                act.window.remove(&entry);
                act.report_changed(ctx);
                act.fill(ctx);
            }
            Err(error) => {
                tracing::warn!(webhook = %act.webhook.id, %entry, %error, "could not dead-letter; retrying");
                let attempt = attempt.clone();
                ctx.run_later(REDIS_RETRY, move |act, ctx| act.bury(entry, attempt, ctx));
            }
        }));
    }

    /// Remembers a delivered entry; a batch of them leaves Redis shortly.
    pub(super) fn finish(&mut self, entry: StreamId, ctx: &mut Context<Self>) {
        self.finished.push(entry);
        if self.finished.len() == 1 {
            ctx.run_later(FLUSH_DELAY, |act, ctx| act.flush(ctx));
        }
    }

    pub(super) fn flush(&mut self, ctx: &mut Context<Self>) {
        let entries = std::mem::take(&mut self.finished);
        let queue = self.queue.clone();
        let webhook = self.webhook.id;
        let write = async move { (queue.complete(&webhook, &entries).await, entries) };
        ctx.spawn(write.into_actor(self).map(|(result, entries), act, ctx| {
            if let Err(error) = result {
                tracing::warn!(webhook = %act.webhook.id, %error, "could not remove delivered entries; retrying");
                let retry_now = act.finished.is_empty();
                act.finished.extend(entries);
                if retry_now {
                    ctx.run_later(REDIS_RETRY, |act, ctx| act.flush(ctx));
                }
            }
        }));
    }

    /// Disables the webhook (410 Gone): locally at once, and in Redis for everyone.
    pub(super) fn disable(&mut self, reason: String, ctx: &mut Context<Self>) {
        tracing::warn!(webhook = %self.webhook.id, %reason, "disabling webhook");
        let mut webhook = (*self.webhook).clone();
        webhook.enabled = false;
        webhook.disabled_reason = Some(reason.clone());
        self.apply(Arc::new(webhook), ctx);
        let webhooks = self.store.webhooks();
        let id = self.webhook.id;
        let change = WebhookChange {
            enabled: Some(false),
            disabled_reason: Some(reason.clone()),
            ..WebhookChange::default()
        };
        let write = async move { webhooks.update(&id, &change).await };
        ctx.spawn(write.into_actor(self).map(move |result, act, ctx| {
            if let Err(error) = result {
                tracing::warn!(webhook = %act.webhook.id, %error, "could not record the disabling; retrying");
                ctx.run_later(REDIS_RETRY, move |act, ctx| act.disable(reason, ctx));
            }
        }));
    }
}
