//! The delivery actor's window: which queue entries it holds in memory, how it gets them, and
//! when each is sent.
//!
//! Entries come from the supervisor's hand-over ([`super::Enqueued`]) while the actor is caught
//! up with its queue, and from reading the queue after `cursor` otherwise. Either way the window
//! never holds more than `max_in_flight` entries, and none are taken while the circuit is open
//! (except the single entry a probe needs when nothing is parked).

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::{sender, DeliveryActor, Phase, Slot, REDIS_RETRY};
use crate::clock::now_ms;
use crate::domain::{DeliveryId, PreparedEvent, StreamId, Webhook};
use crate::store::QueuedDelivery;

impl DeliveryActor {
    fn is_after_cursor(&self, entry: StreamId) -> bool {
        self.cursor.is_none_or(|cursor| entry > cursor)
    }

    /// How many more entries the window may take now.
    fn room(&self) -> usize {
        if !self.active() {
            0
        } else if self.circuit.open {
            // Only what a probe needs, and only when it is due and nothing else waits.
            usize::from(self.circuit.probe_ready && self.window.is_empty())
        } else {
            self.config.settings.max_in_flight.saturating_sub(self.window.len())
        }
    }

    /// Takes an entry the supervisor just queued, if the window has room and nothing older
    /// waits in Redis; otherwise leaves it to be read from the queue.
    pub(super) fn intake(&mut self, entry: StreamId, event: Arc<PreparedEvent>, ctx: &mut Context<Self>) {
        if !self.is_after_cursor(entry) {
            return;
        }
        if self.caught_up && !self.fetching && self.room() > 0 {
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

    /// Reads more of the queue if it may hold more and there is room: at least half a window
    /// (so a busy webhook reads its queue in batches, not one entry per finished delivery), or
    /// any room when nothing is in flight.
    pub(super) fn fill(&mut self, ctx: &mut Context<Self>) {
        if self.circuit.needs_probe_timer() && self.active() {
            self.arm_probe(ctx);
        }
        let room = self.room();
        let batch = (self.config.settings.max_in_flight / 2).max(1);
        if self.fetching || self.caught_up || room == 0 || (room < batch && !self.window.is_empty()) {
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
                        let known = act.window.contains_key(&delivery.entry)
                            || act.delivered.iter().any(|(entry, _)| *entry == delivery.entry);
                        if !known && act.active() {
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

    /// Puts a delivery into the window and sends it now or when its retry is due.
    fn take(&mut self, delivery: QueuedDelivery, ctx: &mut Context<Self>) {
        let entry = delivery.entry;
        let due = delivery.next_attempt_ms.unwrap_or(0);
        let id = DeliveryId::new(&self.webhook.id, delivery.event.stream_id);
        self.window.insert(
            entry,
            Slot {
                delivery,
                id,
                phase: Phase::Parked,
            },
        );
        self.schedule(entry, due, ctx);
    }

    /// Sends `entry` when `due` (ms) comes, or parks it while the circuit is open.
    pub(super) fn schedule(&mut self, entry: StreamId, due: u64, ctx: &mut Context<Self>) {
        if due <= now_ms() || self.circuit.open {
            return self.dispatch(entry, ctx);
        }
        let timer = ctx.run_later(Duration::from_millis(due - now_ms()), move |act, ctx| {
            act.dispatch(entry, ctx)
        });
        if let Some(slot) = self.window.get_mut(&entry) {
            slot.phase = Phase::Waiting { due, timer };
        }
    }

    /// An entry is ready: send it if the actor is active and the circuit lets it, else hold it.
    pub(super) fn dispatch(&mut self, entry: StreamId, ctx: &mut Context<Self>) {
        if !self.window.contains_key(&entry) {
            return;
        }
        if !self.active() {
            // Paused, disabled or shutting down: it waits in Redis (with its retry state).
            self.window.remove(&entry);
            return self.check_drained();
        }
        if self.circuit.admit(entry) {
            return self.send(entry, ctx);
        }
        if let Some(slot) = self.window.get_mut(&entry) {
            slot.phase = Phase::Parked;
        }
        if self.circuit.needs_probe_timer() {
            self.arm_probe(ctx);
        }
    }

    fn send(&mut self, entry: StreamId, ctx: &mut Context<Self>) {
        let (Some(slot), Some(client)) = (self.window.get_mut(&entry), &self.client) else {
            return;
        };
        slot.phase = Phase::Sending;
        let delivery = sender::Delivery {
            webhook: self.webhook.clone(),
            uri: self.uri.clone(),
            signers: self.signers.clone(),
            id: slot.id.clone(),
            body: slot.delivery.event.body(&slot.id),
            timeout: self.config.settings.timeout(),
            destinations: self.config.destinations.clone(),
        };
        let attempt = sender::post(client.clone(), delivery);
        ctx.spawn(
            attempt
                .into_actor(self)
                .map(move |attempt, act, ctx| act.settle(entry, attempt, ctx)),
        );
    }

    /// Arms the timer after which one probe may go.
    pub(super) fn arm_probe(&mut self, ctx: &mut Context<Self>) {
        let delay = self.config.retry.delay(self.circuit.failures, None);
        let due = now_ms() + delay.as_millis() as u64;
        let timer = ctx.run_later(delay, |act, ctx| {
            act.circuit.probe_timer = None;
            act.circuit.probe_ready = true;
            match act.window.iter().find(|(_, slot)| matches!(slot.phase, Phase::Parked)) {
                Some((entry, _)) => {
                    let entry = *entry;
                    act.dispatch(entry, ctx);
                }
                None => act.fill(ctx),
            }
        });
        self.circuit.probe_timer = Some((due, timer));
        self.report_changed(ctx);
    }

    /// Lets go of everything not being sent: it stays queued in Redis. For pause, disable and
    /// shutdown; attempts under way finish and are recorded.
    pub(super) fn release(&mut self, ctx: &mut Context<Self>) {
        if let Some((_, timer)) = self.circuit.probe_timer.take() {
            ctx.cancel_future(timer);
        }
        self.circuit.probe_ready = false;
        let held: Vec<StreamId> = self
            .window
            .iter()
            .filter(|(_, slot)| !matches!(slot.phase, Phase::Sending))
            .map(|(entry, _)| *entry)
            .collect();
        for entry in held {
            if let Some(Slot {
                phase: Phase::Waiting { timer, .. },
                ..
            }) = self.window.remove(&entry)
            {
                ctx.cancel_future(timer);
            }
        }
    }

    /// Takes a new version of the webhook's record.
    pub(super) fn apply(&mut self, webhook: Arc<Webhook>, ctx: &mut Context<Self>) {
        let was_active = self.active();
        self.uri = webhook.url.as_str().parse().ok();
        self.signers = Arc::new(webhook.signers());
        self.webhook = webhook;
        if was_active && !self.active() {
            self.release(ctx);
        }
        if !was_active && self.active() {
            // Enabled or resumed: read the whole queue again, it holds what we let go.
            self.epoch += 1;
            self.cursor = None;
            self.caught_up = false;
            self.missed = false;
            self.fill(ctx);
        }
        self.report_changed(ctx);
    }
}
