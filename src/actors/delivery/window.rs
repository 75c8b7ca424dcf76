//! The delivery actor's window: which queue entries it holds in memory, and how it gets them.
//!
//! Entries come from the supervisor's hand-over ([`super::Enqueued`]) while the actor is caught
//! up with its queue, and from reading the queue after `cursor` otherwise. Either way the
//! window never holds more than `max_in_flight` entries.

use std::sync::Arc;

use actix::prelude::*;

use super::{sender, DeliveryActor, Slot, REDIS_RETRY};
use crate::clock::now_ms;
use crate::domain::{DeliveryId, PreparedEvent, StreamId, Webhook};
use crate::store::QueuedDelivery;

impl DeliveryActor {
    fn max_in_flight(&self) -> usize {
        self.config.settings.max_in_flight
    }

    fn is_after_cursor(&self, entry: StreamId) -> bool {
        self.cursor.is_none_or(|cursor| entry > cursor)
    }

    /// Takes an entry the supervisor just queued, if the window has room and nothing older
    /// waits in Redis; otherwise leaves it to be read from the queue.
    pub(super) fn intake(
        &mut self,
        entry: StreamId,
        event: Arc<PreparedEvent>,
        ctx: &mut Context<Self>,
    ) {
        if !self.webhook.enabled || !self.is_after_cursor(entry) {
            return;
        }
        let room = self.window.len() < self.max_in_flight();
        if self.caught_up && !self.fetching && room {
            self.cursor = Some(entry);
            let delivery = QueuedDelivery {
                entry,
                event,
                attempts: 0,
                next_attempt_ms: None,
            };
            self.take(delivery, ctx);
        } else {
            self.fell_behind(ctx);
        }
    }

    /// The queue may hold entries after the cursor: read them when there is room.
    pub(super) fn fell_behind(&mut self, ctx: &mut Context<Self>) {
        // A read under way may have missed them; it must not conclude it caught up.
        self.missed |= self.fetching;
        self.caught_up = false;
        self.fill(ctx);
    }

    /// Reads more of the queue if there is room, and it may hold more.
    pub(super) fn fill(&mut self, ctx: &mut Context<Self>) {
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
    pub(super) fn take(&mut self, delivery: QueuedDelivery, ctx: &mut Context<Self>) {
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

    pub(super) fn send(&mut self, entry: StreamId, ctx: &mut Context<Self>) {
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

    /// Takes a new version of the webhook's record.
    pub(super) fn apply(&mut self, webhook: Arc<Webhook>, ctx: &mut Context<Self>) {
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
}
