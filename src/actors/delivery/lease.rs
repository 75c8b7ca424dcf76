//! The delivery actor's lease on its webhook (see `store::leases`): only the holder delivers.
//!
//! The actor acquires the lease as it starts, before it reads or sends anything; if another
//! instance holds it, the actor stops at once and the supervisor tries again later. Its
//! instance renews it (in batches, `supervisor::ownership`). Every write for the webhook is
//! fenced by it: when one is refused, the lease is gone — expired during a pause, or taken by
//! another instance — and the actor stops without writing anything more. Attempts still under
//! way finish at the receiver, but their outcomes are not recorded: the new owner sends them
//! again (receivers deduplicate on `webhook-id`).

use actix::prelude::*;

use super::trail::Step;
use super::DeliveryActor;

impl DeliveryActor {
    /// Takes the lease, then starts reading the due set and the queue.
    pub(super) fn acquire_lease(&mut self, ctx: &mut Context<Self>) {
        let (leases, webhook, lease) = (self.leases.clone(), self.webhook.id, self.lease.clone());
        let acquire = async move { leases.acquire(&webhook, &lease).await };
        ctx.spawn(acquire.into_actor(self).map(|result, act, ctx| match result {
            Ok(true) => {
                act.leased = true;
                // It learns its queue from here on: earlier lapses are behind it.
                act.lapses_seen = crate::store::redis_lapses();
                act.trail.push(Step::Leased);
                act.prepare_retries(ctx);
                act.fill(ctx);
                act.report_changed(ctx);
            }
            Ok(false) => {
                tracing::debug!(webhook = %act.webhook.id, "another instance holds the webhook's lease");
                act.supervisor.lease_ended(act.webhook.id, false);
                ctx.stop();
            }
            Err(error) => {
                act.redis_failed(&error, "acquiring the webhook's lease failed; retrying");
                act.after_redis_error(ctx, |act, ctx| act.acquire_lease(ctx));
            }
        }));
    }

    /// A fenced write was refused: the lease is another's now. Stop, writing nothing more.
    pub(super) fn lease_lost(&mut self, ctx: &mut Context<Self>) {
        if !self.leased {
            return;
        }
        self.leased = false;
        tracing::warn!(
            webhook = %self.webhook.id,
            in_flight = self.window.len(),
            "lost the webhook's lease; stopping without recording what is under way"
        );
        self.supervisor.lease_ended(self.webhook.id, true);
        ctx.stop();
    }
}
