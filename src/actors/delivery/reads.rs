//! The delivery actor's reads of its queue: up to a window's room of entries after the cursor,
//! the fresh ones taken into the window.
//!
//! A read moves the cursor to the last entry it read, fresh or not: entries with retry state
//! wait in the due set (looked up only while the cursor is before the last entry that may have
//! been tried, `Tried`), and entries the actor holds or wrote while the read ran are skipped. A
//! read started before the cursor was reset (an older `epoch`) is ignored. Each read and what
//! it returned go into the trail.

use actix::prelude::*;

use super::trail::Step;
use super::{DeliveryActor, Tried};
use crate::store::{RetryLookup, StoreError};

impl DeliveryActor {
    /// Whether the next read of the queue must look up retry state (see `store::RetryLookup`).
    fn retry_lookup(&self) -> RetryLookup {
        match self.tried {
            Tried::Unknown => RetryLookup::LookAndLearn,
            Tried::UpTo(tail) if self.cursor.is_none_or(|cursor| cursor < tail) => RetryLookup::Look,
            Tried::UpTo(_) | Tried::Nothing => RetryLookup::Skip,
        }
    }

    /// Reads up to `count` entries of the queue after the cursor and takes the fresh ones.
    pub(super) fn read_queue(&mut self, count: usize, ctx: &mut Context<Self>) {
        self.fetching = true;
        let epoch = self.epoch;
        let (queue, webhook, cursor) = (self.queue.clone(), self.webhook.id, self.cursor);
        let (lookup, lease) = (self.retry_lookup(), self.lease.clone());
        self.trail.push(Step::Read {
            after: cursor,
            count,
            epoch,
        });
        let fetch = async move { queue.fetch(&webhook, &lease, cursor, count, lookup).await };
        ctx.spawn(fetch.into_actor(self).map(move |result, act, ctx| {
            act.fetching = false;
            let written_during_read = std::mem::take(&mut act.written_during_read);
            match result {
                Ok(fetched) if epoch != act.epoch => {
                    act.trail.push(Step::ReadDone {
                        last: fetched.last,
                        read: fetched.read,
                        fresh: fetched.deliveries.len(),
                        taken: 0,
                        first_with_state: fetched.first_with_state,
                        stale: true,
                        caught_up: act.caught_up,
                    });
                    act.fill(ctx);
                }
                _ if epoch != act.epoch => act.fill(ctx),
                Ok(fetched) => {
                    if let Some(tried) = fetched.tried_up_to {
                        act.tried = tried.map_or(Tried::Nothing, Tried::UpTo);
                    }
                    if let Some(last) = fetched.last.filter(|last| act.is_after_cursor(*last)) {
                        act.cursor = Some(last);
                    }
                    let fresh = fetched.deliveries.len();
                    let mut taken = 0;
                    for delivery in fetched.deliveries {
                        let known = act.taken(&delivery.entry) || written_during_read.contains(&delivery.entry);
                        if !known && act.active() {
                            taken += 1;
                            act.take(delivery, ctx);
                        }
                    }
                    act.caught_up = fetched.read < count && !act.missed;
                    act.missed = false;
                    act.trail.push(Step::ReadDone {
                        last: fetched.last,
                        read: fetched.read,
                        fresh,
                        taken,
                        first_with_state: fetched.first_with_state,
                        stale: false,
                        caught_up: act.caught_up,
                    });
                    act.fill(ctx);
                }
                Err(StoreError::Fenced) => {
                    act.trail.push(Step::ReadFailed { fenced: true });
                    act.lease_lost(ctx)
                }
                Err(error) => {
                    act.trail.push(Step::ReadFailed { fenced: false });
                    act.redis_failed(&error, "reading the webhook queue failed; retrying");
                    act.after_redis_error(ctx, |act, ctx| act.fill(ctx));
                }
            }
        }));
    }
}
