//! The delivery actor: one per webhook, the only thing that talks to its endpoint.
//!
//! It works through the webhook's Redis queue in order, holding at most `max_in_flight`
//! deliveries in memory (its *window*): each is either being sent or waiting for its retry
//! timer. Everything else stays in Redis, so a dead endpoint with a million queued events
//! costs Redis memory, not ours. New entries arrive two ways: the supervisor hands over each
//! event it just queued (no Redis read when the actor keeps up), and when the actor fell
//! behind it reads the queue from its cursor.
//!
//! An entry leaves the queue only on a final outcome: delivered (2xx) or dead-lettered after
//! `max_attempts`. A failed attempt records its attempt count and due time in Redis, so a
//! restart resumes the backoff. A 410 Gone disables the webhook; its queue is kept.
//!
//! Nothing here blocks: sends, Redis calls and timers are futures on the actor's context, so a
//! hanging endpoint only ever occupies its own window.

mod backoff;
mod health;
mod sender;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

pub use backoff::RetryPolicy;
use health::Stats;
pub use health::{HealthReport, HealthState};
use sender::{Attempt, Verdict};

use crate::clock::{iso8601, now_ms};
use crate::config::Settings;
use crate::domain::{DeliveryId, PreparedEvent, StreamId, Webhook};
use crate::store::{DeadLetter, QueueStore, QueuedDelivery, Store, WebhookChange};

/// Delivered entries are removed from Redis in batches, at most this long after delivery.
const FLUSH_DELAY: Duration = Duration::from_millis(5);
/// Pause before retrying a Redis call that failed (Redis down or restarting).
const REDIS_RETRY: Duration = Duration::from_secs(1);
/// Health reports for other instances are written at most this often per webhook.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// What every delivery actor needs from the settings, shared.
pub struct DeliveryConfig {
    pub settings: crate::config::DeliverySettings,
    pub retry: RetryPolicy,
    pub failure_threshold: u32,
    pub dead_letters_max_len: usize,
}

impl DeliveryConfig {
    pub fn new(settings: &Settings) -> DeliveryConfig {
        DeliveryConfig {
            settings: settings.delivery.clone(),
            retry: RetryPolicy::new(&settings.retry),
            failure_threshold: settings.circuit.failure_threshold,
            dead_letters_max_len: settings.dead_letters.max_len,
        }
    }
}

/// The supervisor queued `event` as `entry` in this webhook's queue.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Enqueued {
    pub entry: StreamId,
    pub event: Arc<PreparedEvent>,
}

/// The webhook's record changed (url, types, enabled).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Configure(pub Arc<Webhook>);

/// Entries may have been added to the queue without an [`Enqueued`] (a replay): read it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CheckQueue;

#[derive(Message)]
#[rtype(result = "HealthReport")]
pub struct GetHealth;

/// The webhook was deleted or is no longer this instance's: stop at once.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

/// A delivery held in memory.
struct Slot {
    delivery: QueuedDelivery,
    id: DeliveryId,
    /// Set while waiting for a retry: when it is due (ms) and the timer.
    retry: Option<(u64, SpawnHandle)>,
}

pub struct DeliveryActor {
    webhook: Arc<Webhook>,
    store: Store,
    queue: QueueStore,
    config: Arc<DeliveryConfig>,
    /// This thread's HTTP client (set in `started`; `awc::Client` is `!Send`).
    client: Option<awc::Client>,
    /// Deliveries in memory, by queue entry id; at most `max_in_flight`.
    window: BTreeMap<StreamId, Slot>,
    /// The highest queue entry taken into the window: reads of the queue resume after it.
    cursor: Option<StreamId>,
    /// The queue holds nothing after `cursor` (as far as this actor knows).
    caught_up: bool,
    /// A queue read is under way.
    fetching: bool,
    /// An entry was announced during a queue read, which may have missed it.
    missed: bool,
    /// Bumped when the cursor is reset, so a queue read started before is ignored.
    epoch: u64,
    /// Delivered entries waiting to be removed from Redis in one batch.
    finished: Vec<StreamId>,
    stats: Stats,
    /// A health report write is scheduled.
    report_due: bool,
}

impl DeliveryActor {
    /// `backlog`: the queue's length at start (0 = nothing to read until told otherwise).
    pub fn new(
        webhook: Arc<Webhook>,
        store: Store,
        config: Arc<DeliveryConfig>,
        backlog: u64,
    ) -> DeliveryActor {
        DeliveryActor {
            webhook,
            queue: store.queue(),
            store,
            config,
            client: None,
            window: BTreeMap::new(),
            cursor: None,
            caught_up: backlog == 0,
            fetching: false,
            missed: false,
            epoch: 0,
            finished: Vec::new(),
            stats: Stats::default(),
            report_due: false,
        }
    }

    fn max_in_flight(&self) -> usize {
        self.config.settings.max_in_flight
    }

    fn is_after_cursor(&self, entry: StreamId) -> bool {
        self.cursor.is_none_or(|cursor| entry > cursor)
    }

    /// Reads more of the queue if there is room, and it may hold more.
    fn fill(&mut self, ctx: &mut Context<Self>) {
        let room = self.max_in_flight().saturating_sub(self.window.len());
        if !self.webhook.enabled || self.fetching || self.caught_up || room == 0 {
            return;
        }
        self.fetching = true;
        let epoch = self.epoch;
        let (queue, webhook, cursor) = (self.queue.clone(), self.webhook.id, self.cursor);
        let fetch = async move { queue.fetch(&webhook, cursor, room).await };
        ctx.spawn(fetch.into_actor(self).map(move |result, act, ctx| {
            act.fetching = false;
            if epoch != act.epoch {
                return act.fill(ctx);
            }
            match result {
                Ok(deliveries) => {
                    let got = deliveries.len();
                    for delivery in deliveries {
                        if act.is_after_cursor(delivery.entry) {
                            act.cursor = Some(delivery.entry);
                        }
                        let known = act.window.contains_key(&delivery.entry) || act.finished.contains(&delivery.entry);
                        if !known && act.webhook.enabled {
                            act.take(delivery, ctx);
                        }
                    }
                    act.caught_up = got < room && !act.missed;
                    act.missed = false;
                    act.fill(ctx);
                }
                Err(error) => {
                    tracing::warn!(webhook = %act.webhook.id, %error, "reading the webhook queue failed; retrying");
                    ctx.run_later(REDIS_RETRY, |act, ctx| act.fill(ctx));
                }
            }
        }));
    }

    /// Puts a delivery into the window: sends it now, or when its retry is due.
    fn take(&mut self, delivery: QueuedDelivery, ctx: &mut Context<Self>) {
        let entry = delivery.entry;
        let due = delivery.next_attempt_ms.filter(|&due| due > now_ms());
        let id = DeliveryId::new(&self.webhook.id, delivery.event.stream_id);
        self.window.insert(
            entry,
            Slot {
                delivery,
                id,
                retry: None,
            },
        );
        match due {
            Some(due) => self.arm_retry(entry, due, ctx),
            None => self.send(entry, ctx),
        }
    }

    fn send(&mut self, entry: StreamId, ctx: &mut Context<Self>) {
        let (Some(slot), Some(client)) = (self.window.get_mut(&entry), &self.client) else {
            return;
        };
        slot.retry = None;
        let body = slot.delivery.event.body(&slot.id);
        let attempt = sender::post(
            client.clone(),
            self.webhook.url.to_string(),
            slot.id.clone(),
            body,
            self.config.settings.timeout(),
        );
        ctx.spawn(
            attempt
                .into_actor(self)
                .map(move |attempt, act, ctx| act.settle(entry, attempt, ctx)),
        );
    }

    /// Acts on an attempt's outcome.
    fn settle(&mut self, entry: StreamId, attempt: Attempt, ctx: &mut Context<Self>) {
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

    fn count_attempt(&mut self, entry: StreamId) -> u32 {
        self.window.get_mut(&entry).map_or(0, |slot| {
            slot.delivery.attempts += 1;
            slot.delivery.attempts
        })
    }

    fn persist_retry(&mut self, entry: StreamId, attempts: u32, due: u64, ctx: &mut Context<Self>) {
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

    fn arm_retry(&mut self, entry: StreamId, due: u64, ctx: &mut Context<Self>) {
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
    fn bury(&mut self, entry: StreamId, attempt: Attempt, ctx: &mut Context<Self>) {
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
    fn finish(&mut self, entry: StreamId, ctx: &mut Context<Self>) {
        self.finished.push(entry);
        if self.finished.len() == 1 {
            ctx.run_later(FLUSH_DELAY, |act, ctx| act.flush(ctx));
        }
    }

    fn flush(&mut self, ctx: &mut Context<Self>) {
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
    fn disable(&mut self, reason: String, ctx: &mut Context<Self>) {
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

    /// Takes a new version of the webhook's record.
    fn apply(&mut self, webhook: Arc<Webhook>, ctx: &mut Context<Self>) {
        let was_enabled = self.webhook.enabled;
        self.webhook = webhook;
        if was_enabled && !self.webhook.enabled {
            // Drop what waits for a retry; attempts under way finish and are recorded.
            let waiting: Vec<StreamId> = self
                .window
                .iter()
                .filter(|(_, slot)| slot.retry.is_some())
                .map(|(entry, _)| *entry)
                .collect();
            for entry in waiting {
                if let Some((_, timer)) = self.window.remove(&entry).and_then(|slot| slot.retry) {
                    ctx.cancel_future(timer);
                }
            }
        }
        if !was_enabled && self.webhook.enabled {
            // Re-enabled: read the whole queue again, it may hold entries we let go.
            self.epoch += 1;
            self.cursor = None;
            self.caught_up = false;
            self.missed = false;
            self.fill(ctx);
        }
        self.report_changed(ctx);
    }

    fn state(&self) -> HealthState {
        if !self.webhook.enabled {
            HealthState::Disabled
        } else if self.stats.consecutive_failures >= self.config.failure_threshold {
            HealthState::Failing
        } else if self.stats.consecutive_failures > 0
            || self.window.values().any(|s| s.retry.is_some())
        {
            HealthState::Retrying
        } else {
            HealthState::Healthy
        }
    }

    fn report(&self, backlog: u64) -> HealthReport {
        let next_retry = self
            .window
            .values()
            .filter_map(|slot| slot.retry.as_ref().map(|(due, _)| *due))
            .min();
        HealthReport {
            id: self.webhook.id.to_string(),
            state: self.state(),
            in_flight: self.window.len(),
            backlog,
            consecutive_failures: self.stats.consecutive_failures,
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
    fn report_changed(&mut self, ctx: &mut Context<Self>) {
        if self.report_due {
            return;
        }
        self.report_due = true;
        ctx.run_later(REPORT_EVERY, |act, ctx| {
            act.report_due = false;
            let queue = act.queue.clone();
            let webhook = act.webhook.id;
            let report =
                serde_json::to_string(&act.report(act.window.len() as u64)).unwrap_or_default();
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

impl Actor for DeliveryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.client = Some(sender::client(&self.config.settings));
        self.fill(ctx);
    }
}

impl Handler<Enqueued> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, msg: Enqueued, ctx: &mut Context<Self>) {
        if !self.webhook.enabled || !self.is_after_cursor(msg.entry) {
            return;
        }
        let room = self.window.len() < self.max_in_flight();
        if self.caught_up && !self.fetching && room {
            self.cursor = Some(msg.entry);
            let delivery = QueuedDelivery {
                entry: msg.entry,
                event: msg.event,
                attempts: 0,
                next_attempt_ms: None,
            };
            self.take(delivery, ctx);
        } else {
            // It waits in Redis; read it from there when there is room.
            self.missed |= self.fetching;
            self.caught_up = false;
            self.fill(ctx);
        }
    }
}

impl Handler<Configure> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, msg: Configure, ctx: &mut Context<Self>) {
        self.apply(msg.0, ctx);
    }
}

impl Handler<CheckQueue> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, _: CheckQueue, ctx: &mut Context<Self>) {
        self.missed |= self.fetching;
        self.caught_up = false;
        self.fill(ctx);
    }
}

impl Handler<GetHealth> for DeliveryActor {
    type Result = ResponseActFuture<Self, HealthReport>;

    fn handle(&mut self, _: GetHealth, _: &mut Context<Self>) -> Self::Result {
        let queue = self.queue.clone();
        let webhook = self.webhook.id;
        Box::pin(
            async move { queue.backlog(&webhook).await }
                .into_actor(self)
                .map(|backlog, act, _| {
                    // Without Redis, what is in memory is the honest lower bound.
                    act.report(backlog.unwrap_or(act.window.len() as u64))
                }),
        )
    }
}

impl Handler<Stop> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
