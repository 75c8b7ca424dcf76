//! The delivery actor's window: which queue entries it sends now, and where it gets them.
//!
//! The window holds only deliveries being sent, at most `max_in_flight`. An entry that failed
//! leaves it and waits in Redis, in the due set, for its own retry time; the window goes on
//! with the entries behind it. When there is room, [`DeliveryActor::fill`] takes, in this
//! order, entries of the due set that are due, then fresh entries of the queue after `cursor`
//! (or, while the actor keeps up, straight from the supervisor's hand-over,
//! [`super::Enqueued`]). While the circuit is open it takes nothing but one probe at a time:
//! the next fresh entry, or else the earliest waiting retry.

use std::sync::Arc;
use std::time::Instant;

use actix::prelude::*;

use super::hosts::{host_key, Holder};
use super::slots::Slot;
use super::trail::Step;
use super::{sender, DeliveryActor, Tried, TOP_UP_AFTER};
use crate::clock::now_ms;
use crate::domain::{DeliveryId, PreparedEvent, RateLimit, StreamId, Webhook};
use crate::store::{Appended, Due, QueuedDelivery};

impl DeliveryActor {
    pub(super) fn is_after_cursor(&self, entry: StreamId) -> bool {
        self.cursor.is_none_or(|cursor| entry > cursor)
    }

    /// Deliveries held: being sent, or finished with their outcome not yet in Redis.
    fn held(&self) -> usize {
        self.window.len() + self.settled.len() + self.writing.len()
    }

    /// How many more entries the window may take now: `max_in_flight` less what is held, and
    /// the adaptive limit less what is in flight (`pacing`); one probe at a time while the
    /// circuit is open. Whether they may start *now* is [`Self::clearance`]'s to say.
    fn room(&self) -> usize {
        if !self.active() {
            0
        } else if self.circuit.open {
            usize::from(self.circuit.may_probe() && self.window.is_empty())
        } else if self.strict() {
            // One at a time: the next goes once the last one's answer is in.
            usize::from(self.window.is_empty())
        } else {
            let held = self.config.settings.max_in_flight.saturating_sub(self.held());
            held.min(self.pacing.limit().saturating_sub(self.window.len()))
        }
    }

    /// Whether fresh entries may be taken: in strict order, not while one waits for its retry
    /// (it holds those behind it until it is delivered or a dead letter).
    fn fresh_allowed(&self) -> bool {
        !self.strict() || self.retries.waiting == 0
    }

    /// How many entries a busy webhook reads at once: three quarters of what may be in flight
    /// (one at a time in strict order).
    fn batch(&self) -> usize {
        if self.strict() {
            return 1;
        }
        (self.pacing.limit().min(self.config.settings.max_in_flight) * 3 / 4).max(1)
    }

    /// How many of `wanted` attempts may start now: within the rate limit and any pause the
    /// receiver asked for (else a timer is set for when they may), and with a permit of the
    /// host each (else the actor waits its turn at the host, `hosts`). The permits are held
    /// from here; what a read does not use goes back ([`Self::release_spare`]).
    fn clearance(&mut self, wanted: usize, ctx: &mut Context<Self>) -> usize {
        let now = Instant::now();
        let (allowed, until) = self.pacing.allowed(wanted, now);
        if allowed == 0 {
            if let Some(until) = until {
                self.arm_pace_timer(until, ctx);
            }
            return 0;
        }
        let spare = self.host.held().saturating_sub(self.window.len());
        if spare >= allowed {
            return allowed;
        }
        let cap = self.config.settings.max_connections_per_host;
        let got = self.host.acquire(cap, allowed - spare, ctx.address().recipient());
        self.host_wait |= spare + got < allowed;
        spare + got
    }

    /// Gives back the host's permits not in use (a read that found less than it could take),
    /// unless a read or a take is under way with them.
    fn release_spare(&mut self) {
        if self.fetching || self.retries.reading() {
            return;
        }
        let spare = self.host.held().saturating_sub(self.window.len());
        self.host.release(spare);
    }

    /// A full window whose attempts all stay out (a receiver holding some) lets one more go
    /// after a while (`Pacing::stalled`); until then a timer looks again.
    fn unless_stalled(&mut self, ctx: &mut Context<Self>) {
        if self.strict() {
            return;
        }
        let Some(youngest) = self.window.values().map(|slot| slot.started).max() else {
            return;
        };
        if let Some(at) = self.pacing.stalled(self.window.len(), youngest, Instant::now()) {
            if self.pace_timer.is_none() {
                self.arm_pace_timer(at, ctx);
            }
        }
    }

    /// Calls `fill` when the rate limit or the receiver's pause lets attempts start again.
    fn arm_pace_timer(&mut self, at: Instant, ctx: &mut Context<Self>) {
        if let Some(timer) = self.pace_timer.take() {
            ctx.cancel_future(timer);
        }
        let wait = at.saturating_duration_since(Instant::now());
        self.pace_timer = Some(ctx.run_later(wait, |act, ctx| {
            act.pace_timer = None;
            act.fill(ctx);
        }));
    }

    /// Takes an entry the supervisor just queued, if the window has room and nothing older
    /// waits in the queue; otherwise leaves it to be read from the queue.
    ///
    /// The cursor moves to the entry only when the entry before it in the queue is at or
    /// before the cursor: one another instance appended in between (whose notice may be lost)
    /// would otherwise be passed over and never read while the actor runs.
    pub(super) fn intake(&mut self, appended: Appended, event: Arc<PreparedEvent>, ctx: &mut Context<Self>) {
        let Appended { entry, before } = appended;
        if !self.is_after_cursor(entry) {
            return;
        }
        let read_up_to_it = before.is_none_or(|before| !self.is_after_cursor(before));
        let may_take = self.caught_up && read_up_to_it && !self.fetching && self.fresh_allowed();
        let took = may_take && self.room() > 0 && self.clearance(1, ctx) > 0;
        self.trail.push(Step::Intake { entry, before, took });
        if took {
            self.cursor = Some(entry);
            let delivery = QueuedDelivery {
                entry,
                event,
                attempts: 0,
                spared: 0,
                first_failure_ms: None,
                replay: None,
            };
            self.take(delivery, ctx);
        } else {
            self.fell_behind(ctx);
        }
    }

    /// Entries from `first` on may not have been read (another instance queued them before the
    /// entries this actor was handed in memory): move the cursor back before `first`. Entries
    /// already taken since are skipped when read again (in the window, waiting to be written,
    /// or with retry state, which reads up to the old cursor now look up).
    pub(super) fn rewind(&mut self, first: StreamId) {
        let Some(cursor) = self.cursor.filter(|cursor| first <= *cursor) else {
            return;
        };
        self.trail.push(Step::Rewind {
            first,
            from: self.cursor,
        });
        self.epoch += 1;
        self.cursor = first.predecessor();
        self.tried = match self.tried {
            Tried::Unknown => Tried::Unknown,
            Tried::UpTo(tail) => Tried::UpTo(tail.max(cursor)),
            Tried::Nothing => Tried::UpTo(cursor),
        };
    }

    /// Forgets what it read: the next read starts at the queue's first entry and learns again
    /// which entries were tried; a read under way is ignored when it answers.
    pub(super) fn start_over(&mut self) {
        self.epoch += 1;
        self.cursor = None;
        self.tried = Tried::Unknown;
        self.caught_up = false;
        self.missed = false;
    }

    /// The queue may hold entries after the cursor: read them when there is room.
    pub(super) fn fell_behind(&mut self, ctx: &mut Context<Self>) {
        // A read under way may have missed them; it must not conclude it caught up.
        self.missed |= self.fetching;
        self.caught_up = false;
        self.fill(ctx);
    }

    /// Takes work into the window when there is room: due retries first, then fresh entries,
    /// in batches of at least three quarters of a window while others are in flight (so a busy webhook
    /// reads Redis per batch, not per finished delivery), or whatever fits once room has waited
    /// [`TOP_UP_AFTER`] (attempts slow to answer). One read at a time. When work waits
    /// but the room is held by outcomes waiting for their flush, with nothing in flight, they
    /// are written at once.
    pub(super) fn fill(&mut self, ctx: &mut Context<Self>) {
        self.audit.touch();
        self.fill_window(ctx);
        self.release_spare();
    }

    fn fill_window(&mut self, ctx: &mut Context<Self>) {
        self.resync_after_lapse(ctx);
        if !self.active() || self.fetching || self.retries.reading() {
            return;
        }
        if self.circuit.open {
            self.cancel_retry_timer(ctx);
            if self.circuit.needs_probe_timer() {
                self.arm_probe(ctx);
            }
            // The probe: the next fresh entry, else the earliest waiting one (strict order:
            // the waiting one, which holds the rest).
            let earliest = self.retries.ready && self.retries.waiting > 0;
            let fresh = !self.caught_up && self.fresh_allowed();
            if self.room() > 0 && (fresh || earliest) && self.clearance(1, ctx) > 0 {
                if fresh {
                    self.read_queue(1, ctx);
                } else {
                    self.take_retries(Due::Earliest, 1, ctx);
                }
            }
            return;
        }
        let now = now_ms();
        let work = self.retries.due(now) || (!self.caught_up && self.fresh_allowed());
        if work {
            self.unless_stalled(ctx);
        }
        let room = self.room();
        if room > 0 && work && (room >= self.batch() || self.held() == 0 || self.top_up_due) {
            let room = self.clearance(room, ctx);
            if room > 0 {
                self.top_up_due = false;
                if let Some(timer) = self.top_up_timer.take() {
                    ctx.cancel_future(timer);
                }
                if self.retries.due(now) {
                    self.take_retries(Due::By(now), room, ctx);
                } else {
                    self.read_queue(room, ctx);
                }
            }
        } else if self.window.is_empty()
            && self.writing.is_empty()
            && !self.settled.is_empty()
            && (!self.caught_up || self.retries.due(now_ms()))
        {
            // Work waits and nothing is in flight, but outcomes not yet written hold the room
            // (and no write under way will free it): write them now rather than idle until the
            // flush delay.
            self.flush(ctx);
        } else if room > 0 && self.top_up_timer.is_none() && (!self.caught_up || self.retries.due(now_ms())) {
            // Room short of a batch while entries wait: if the attempts under way are slow to
            // answer, read what fits rather than leave the room unused until they end.
            self.top_up_timer = Some(ctx.run_later(TOP_UP_AFTER, |act, ctx| {
                act.top_up_timer = None;
                act.top_up_due = true;
                act.fill(ctx);
            }));
        }
        self.arm_retry_timer(ctx);
    }

    /// Puts a delivery into the window and sends it (as the probe, if the circuit is open).
    pub(super) fn take(&mut self, delivery: QueuedDelivery, ctx: &mut Context<Self>) {
        let probe = self.circuit.open;
        if probe {
            self.circuit.send_probe();
            self.report_changed(ctx);
        }
        self.pacing.started(1, Instant::now());
        let entry = delivery.entry;
        let id = DeliveryId::new(&self.webhook.id, delivery.event.stream_id);
        self.window.insert(
            entry,
            Slot {
                delivery,
                id,
                started: Instant::now(),
                probe,
            },
        );
        self.send(entry, ctx);
    }

    fn send(&mut self, entry: StreamId, ctx: &mut Context<Self>) {
        let (Some(slot), Some(client)) = (self.window.get(&entry), &self.client) else {
            return;
        };
        let delivery = sender::Delivery {
            webhook: self.webhook.clone(),
            uri: self.uri.clone(),
            signers: self.signers.clone(),
            id: slot.id.clone(),
            body: slot.delivery.event.body(&slot.id),
            timeout: self.config.settings.timeout(),
            destinations: self.config.destinations.clone(),
            started: slot.started,
        };
        let attempt = sender::post(client.clone(), delivery);
        ctx.spawn(
            attempt
                .into_actor(self)
                .map(move |attempt, act, ctx| act.settle(entry, attempt, ctx)),
        );
    }

    /// Arms the timer after which one probe may go.
    fn arm_probe(&mut self, ctx: &mut Context<Self>) {
        let delay = self.circuit.probe_delay();
        let due = now_ms() + delay.as_millis() as u64;
        let timer = ctx.run_later(delay, |act, ctx| {
            act.circuit.probe_timer = None;
            act.circuit.probe_ready = true;
            act.fill(ctx);
        });
        self.circuit.probe_timer = Some((due, timer));
        self.report_changed(ctx);
    }

    /// Probe now and start the probe schedule over (resume, re-enable, retry now).
    pub(super) fn probe_now(&mut self, ctx: &mut Context<Self>) {
        if let Some((_, timer)) = self.circuit.probe_timer.take() {
            ctx.cancel_future(timer);
        }
        self.circuit.probe_now();
        self.report_changed(ctx);
    }

    /// Stops the timers: nothing new is taken. For pause, disable and shutdown; attempts under
    /// way finish and are recorded, everything else waits in Redis.
    pub(super) fn release(&mut self, ctx: &mut Context<Self>) {
        if let Some((_, timer)) = self.circuit.probe_timer.take() {
            ctx.cancel_future(timer);
        }
        self.circuit.probe_ready = false;
        self.cancel_retry_timer(ctx);
    }

    /// Takes a new version of the webhook's record.
    pub(super) fn apply(&mut self, webhook: Arc<Webhook>, ctx: &mut Context<Self>) {
        let was_active = self.active();
        self.uri = webhook.url.target().parse().ok();
        self.signers = Arc::new(webhook.signers());
        self.pacing
            .set_rate(webhook.delivery.rate_limit.map(RateLimit::per_second));
        let host = host_key(webhook.url.url());
        if host != self.host.host {
            // Another host: its permits and its queue there go back.
            self.host.leave();
            self.host = Holder::new(host);
            self.host_wait = false;
        }
        self.webhook = webhook;
        if was_active && !self.active() {
            self.trail.push(Step::Active(false));
            self.release(ctx);
        }
        if !was_active && self.active() {
            // Enabled or resumed: read the whole queue again (it holds what queued meanwhile),
            // and find out at once whether the endpoint answers.
            self.trail.push(Step::Active(true));
            self.trail.push(Step::Reset);
            self.start_over();
            self.pacing.restart(self.config.settings.initial_concurrency);
            self.probe_now(ctx);
            self.fill(ctx);
        }
        self.report_changed(ctx);
    }
}
