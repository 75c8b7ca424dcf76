//! The delivery actor's side of its due set: entries that failed wait in Redis, ordered by
//! due time (`store::retries`), not in the window, so a few refused events never hold up the
//! entries behind them. The actor keeps only what it needs to know when to look again: how
//! many wait, when the earliest is due, and one timer for that moment. Due entries are taken
//! once the earliest has been due for [`GATHER`], so retries falling due close together go in
//! one call (never before their time: a receiver's `Retry-After` is a minimum).

use std::collections::BTreeMap;

use actix::prelude::*;

use super::trail::Step;
use super::DeliveryActor;
use crate::clock::{now_ms, wait_until};
use crate::domain::StreamId;
use crate::store::{AfterAttempt, Due, DueSet, StoreError};

/// How long the earliest due entry waits for others to fall due, so they are taken together.
const GATHER_MS: u64 = 20;

/// What the actor knows of its due set.
///
/// Invariant: `waiting` and `next_due` never under-state the set — every entry in it (or on
/// its way into it) is counted, and the earliest is no later than `next_due` — so the one
/// timer always fires in time. Over-stating is harmless: a take that finds less corrects it.
/// That is why a read seeds what it adds with the entries not yet written: a failure recorded
/// before the read but written after it is not in the read's answer.
#[derive(Debug, Default)]
pub(super) struct Retries {
    /// Entries left in flight by a previous actor were put back: takes may start.
    pub ready: bool,
    /// Entries waiting in the due set, as last known (for health and the idle check).
    pub waiting: u64,
    /// When the earliest of them is due (ms); `Some(0)` after "retry now".
    pub next_due: Option<u64>,
    /// A read of the set is under way, and what this actor added to the set since it began
    /// (count, earliest due), which its answer may not include.
    reading: Option<(u64, Option<u64>)>,
    /// The timer armed for `next_due`.
    timer: Option<(u64, SpawnHandle)>,
    /// Due times of entries scheduled in memory whose write to the set has not landed yet
    /// (a multiset: due ms → count).
    unlanded: BTreeMap<u64, u32>,
}

impl Retries {
    /// An entry failed and waits, due at `due` (ms).
    pub fn scheduled(&mut self, due: u64) {
        *self.unlanded.entry(due).or_default() += 1;
        self.waiting += 1;
        self.next_due = Some(earliest(self.next_due, due));
        if let Some((count, first)) = &mut self.reading {
            *count += 1;
            *first = Some(earliest(*first, due));
        }
    }

    /// Whether entries are due at `now` and may be taken (the earliest for [`GATHER_MS`]).
    pub fn due(&self, now: u64) -> bool {
        self.ready && self.reading.is_none() && self.next_due.is_some_and(|due| due + GATHER_MS <= now)
    }

    pub fn reading(&self) -> bool {
        self.reading.is_some()
    }

    /// The writes of entries scheduled at these due times landed in Redis.
    pub fn landed(&mut self, dues: impl IntoIterator<Item = u64>) {
        for due in dues {
            if let Some(count) = self.unlanded.get_mut(&due) {
                *count -= 1;
                if *count == 0 {
                    self.unlanded.remove(&due);
                }
            }
        }
    }

    /// Whether a timer is armed for the earliest due entry.
    pub fn timer_armed(&self) -> bool {
        self.timer.is_some()
    }

    /// A read begins: what it cannot see yet (entries not written) counts as added.
    fn begin_read(&mut self) {
        let count = self.unlanded.values().map(|n| u64::from(*n)).sum();
        self.reading = Some((count, self.unlanded.keys().next().copied()));
    }

    /// A read answered with what the set holds now.
    fn end_read(&mut self, left: DueSet) {
        let (added, first) = self.reading.take().unwrap_or_default();
        self.waiting = left.waiting + added;
        self.next_due = match (left.next_due_ms, first) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        };
    }

    fn fail_read(&mut self) {
        self.reading = None;
    }
}

fn earliest(current: Option<u64>, due: u64) -> u64 {
    current.map_or(due, |current| current.min(due))
}

impl DeliveryActor {
    /// At start: puts back what a previous actor left in flight, and learns the set. Again
    /// after a take whose answer was lost (it may have taken entries out of the set that this
    /// actor never got): then what it holds in memory is left alone.
    pub(super) fn prepare_retries(&mut self, ctx: &mut Context<Self>) {
        self.retries.ready = false;
        self.retries.begin_read();
        let held: Vec<StreamId> = self
            .window
            .keys()
            .copied()
            .chain(self.writing.iter().copied())
            .chain(self.settled.iter().map(|settled| settled.entry))
            .collect();
        let (queue, webhook, lease) = (self.queue.clone(), self.webhook.id, self.lease.clone());
        let prepare = async move { queue.prepare_retries(&webhook, &lease, &held).await };
        ctx.spawn(prepare.into_actor(self).map(|result, act, ctx| match result {
            Ok(left) => {
                act.retries.end_read(left);
                act.retries.ready = true;
                act.fill(ctx);
            }
            Err(StoreError::Fenced) => act.lease_lost(ctx),
            Err(error) => {
                act.retries.fail_read();
                act.redis_failed(&error, "reading the retry state failed; retrying");
                act.after_redis_error(ctx, |act, ctx| act.prepare_retries(ctx));
            }
        }));
    }

    /// Takes up to `count` entries out of the due set into the window.
    pub(super) fn take_retries(&mut self, due: Due, count: usize, ctx: &mut Context<Self>) {
        // A failure waiting to be written that is due by then must be in Redis before the take
        // reads the set (one connection: commands run in the order they are sent).
        let bound = match due {
            Due::By(ms) => ms,
            Due::Earliest => u64::MAX,
        };
        let pending_due = self.settled.iter().any(|settled| match settled.after {
            AfterAttempt::Retry { due_ms, .. } => due_ms <= bound,
            _ => false,
        });
        if pending_due {
            self.flush(ctx);
        }
        self.retries.begin_read();
        let (queue, webhook, lease) = (self.queue.clone(), self.webhook.id, self.lease.clone());
        let take = async move { queue.take_due(&webhook, &lease, due, count).await };
        ctx.spawn(take.into_actor(self).map(|result, act, ctx| {
            match result {
                Ok(taken) => {
                    act.trail.push(Step::TookRetries {
                        count: taken.deliveries.len(),
                        first: taken.deliveries.first().map(|d| d.entry),
                    });
                    act.retries.end_read(taken.left);
                    if act.active() {
                        for delivery in taken.deliveries {
                            act.take(delivery, ctx);
                        }
                    } else {
                        // Paused or draining meanwhile: they go back, due, for the next actor.
                        let entries: Vec<_> = taken.deliveries.iter().map(|d| d.entry).collect();
                        act.put_back(entries, ctx);
                    }
                }
                Err(StoreError::Fenced) => return act.lease_lost(ctx),
                Err(error) => {
                    // The take may have run and taken entries out of the set, its answer lost:
                    // learn the set again as a starting actor does, keeping what is in memory.
                    act.retries.fail_read();
                    act.retries.ready = false;
                    act.redis_failed(&error, "taking due retries failed; reading the due set again");
                    act.after_redis_error(ctx, |act, ctx| act.prepare_retries(ctx));
                }
            }
            act.fill(ctx);
        }));
    }

    /// Returns taken entries to the due set, due now.
    pub(super) fn put_back(&mut self, entries: Vec<StreamId>, ctx: &mut Context<Self>) {
        for _ in &entries {
            self.retries.scheduled(0);
        }
        self.write_put_back(entries, ctx);
    }

    /// The write of [`Self::put_back`], retried until Redis takes it.
    fn write_put_back(&mut self, entries: Vec<StreamId>, ctx: &mut Context<Self>) {
        if entries.is_empty() {
            return;
        }
        self.writes += 1;
        let (queue, webhook, lease) = (self.queue.clone(), self.webhook.id, self.lease.clone());
        let write = async move { (queue.put_back(&webhook, &lease, &entries, 0).await, entries) };
        ctx.spawn(write.into_actor(self).map(|(result, entries), act, ctx| {
            act.writes -= 1;
            match result {
                Ok(()) => act.retries.landed(entries.iter().map(|_| 0)),
                // The new owner finds them with retry state outside the set and puts them back.
                Err(StoreError::Fenced) => return act.lease_lost(ctx),
                Err(error) => {
                    act.redis_failed(&error, "could not return entries to the due set; retrying");
                    act.after_redis_error(ctx, move |act, ctx| act.write_put_back(entries, ctx));
                }
            }
            act.check_drained();
        }));
    }

    /// Makes every waiting entry due now, and takes them. Failures recorded in memory but not
    /// yet written are written first (the API's "retry now" may have run before they were);
    /// the commands go out on one connection in this order.
    pub(super) fn retry_everything_now(&mut self, ctx: &mut Context<Self>) {
        self.flush(ctx);
        let (queue, webhook) = (self.queue.clone(), self.webhook.id);
        let due = async move { queue.retry_now(&webhook).await };
        ctx.spawn(due.into_actor(self).map(|result, act, ctx| {
            if let Err(error) = result {
                act.redis_failed(&error, "could not make waiting entries due");
            }
            act.retries.next_due = Some(0);
            act.fill(ctx);
        }));
    }

    /// Arms the one timer for the earliest due entry (while the circuit is closed: an open
    /// circuit sends probes only). Due entries themselves are taken by `fill`.
    pub(super) fn arm_retry_timer(&mut self, ctx: &mut Context<Self>) {
        // Entries already gathered are taken by `fill` as soon as there is room.
        let now = now_ms();
        let wanted = self
            .retries
            .next_due
            .map(|due| due + GATHER_MS)
            .filter(|due| *due > now && self.active() && !self.circuit.open && self.retries.ready);
        let armed = self.retries.timer.as_ref().map(|(due, _)| *due);
        if wanted == armed {
            return;
        }
        if let Some((_, timer)) = self.retries.timer.take() {
            ctx.cancel_future(timer);
        }
        let Some(due) = wanted else { return };
        let wait = wait_until(due, now);
        let timer = ctx.run_later(wait, |act, ctx| {
            act.retries.timer = None;
            act.fill(ctx);
        });
        self.retries.timer = Some((due, timer));
    }

    /// Stops the retry timer (pause, disable, shutdown, an open circuit).
    pub(super) fn cancel_retry_timer(&mut self, ctx: &mut Context<Self>) {
        if let Some((_, timer)) = self.retries.timer.take() {
            ctx.cancel_future(timer);
        }
    }
}
