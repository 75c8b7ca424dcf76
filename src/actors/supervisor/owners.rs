//! Ownership at work: which of the webhooks this instance delivers, handing them over when
//! the live instances change, and the leases that make it safe (`actors::ownership`,
//! `store::leases`).
//!
//! * [`MembersChanged`] (from membership): the first list triggers the first load; a new one
//!   *rebalances*: an actor whose webhook is now another's is drained (its attempts under way
//!   finish and are recorded), stopped, and its lease released at once, and the new owner is
//!   told; webhooks this instance just came to own are checked for work and get actors.
//! * Every `leases.ttl_ms / 3` the leases of all running actors are renewed in batches; an
//!   actor whose lease is gone (this instance was paused past the TTL, or cut off) is stopped.
//! * An actor refused its lease (the old owner still drains, or has just died and its lease
//!   has not expired yet) is tried again every second while this instance owns the webhook,
//!   so a dead instance's webhooks resume within `leases.ttl_ms` and a second.
//! * [`WorkQueued`] (another instance routed events to webhooks this one owns): read them.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::{LeaseEnded, Supervisor};
use crate::actors::delivery::{CheckQueue, Drain, StartState, Stop};
use crate::actors::membership::{MembersChanged, Refresh};
use crate::actors::ownership::Ownership;
use crate::domain::{StreamId, WebhookId};
use crate::store::{Lease, Notice};

/// How often refused leases are tried again.
const RETRY_LEASES: Duration = Duration::from_secs(1);

/// These webhooks' queues hold new entries, from the given entry on if known (`Notice::Work`:
/// another instance routed events to them, or handed them over).
#[derive(Message)]
#[rtype(result = "()")]
pub struct WorkQueued(pub Vec<(WebhookId, Option<StreamId>)>);

/// An instance joined or left (`Notice::Instances`): look at the live instances now.
#[derive(Message)]
#[rtype(result = "()")]
pub struct MembersMoved;

impl Supervisor {
    /// Starts the lease timers (from `started`).
    pub(super) fn run_leases(&mut self, ctx: &mut Context<Self>) {
        ctx.run_interval(self.renew_every, |act, ctx| act.renew(ctx));
        ctx.run_interval(RETRY_LEASES, |act, ctx| act.retry_wanted(ctx));
    }

    /// Wakes the actors of `targets` (their queues hold new entries, from the entry given if
    /// known): a running actor reads its queue, an owned webhook without one gets one; the
    /// owners of the others are told when `tell_others`.
    pub(super) fn nudge(
        &mut self,
        targets: Vec<(WebhookId, Option<StreamId>)>,
        tell_others: bool,
        ctx: &mut Context<Self>,
    ) {
        let mut elsewhere = Vec::new();
        for (target, first) in targets {
            if self.roster.send(&target, CheckQueue(first)) {
                continue;
            }
            if !self.ownership.owns(&target) {
                elsewhere.push((target, first));
            } else if let Some(webhook) = self.webhooks.get(&target).cloned() {
                self.activate(&webhook, StartState::queued(), ctx);
            }
        }
        if tell_others {
            self.tell_owners(elsewhere, ctx);
        }
    }

    /// Tells the instances that own `targets` that their queues hold new entries (from the
    /// entry given, if known).
    pub(super) fn tell_owners(&mut self, targets: Vec<(WebhookId, Option<StreamId>)>, ctx: &mut Context<Self>) {
        if targets.is_empty() {
            return;
        }
        let webhooks = self.store.webhooks();
        let notice = Notice::Work(targets);
        ctx.spawn(
            async move {
                if let Err(error) = webhooks.announce(&notice).await {
                    tracing::debug!(%error, "could not tell the owners about new work; their sweep will find it");
                }
            }
            .into_actor(self),
        );
    }

    /// Gives the lease up (the actor has stopped, or is about to).
    pub(super) fn release(&mut self, webhook: WebhookId, lease: Lease, ctx: &mut Context<Self>) {
        let leases = self.leases.clone();
        ctx.spawn(
            async move {
                if let Err(error) = leases.release(&webhook, &lease).await {
                    tracing::debug!(%webhook, %error, "could not release a lease; it expires by itself");
                }
            }
            .into_actor(self),
        );
    }

    /// Renews the leases of every running actor; stops those whose lease is gone.
    fn renew(&mut self, ctx: &mut Context<Self>) {
        let held = self.roster.leases();
        if held.is_empty() {
            return;
        }
        let leases = self.leases.clone();
        let renew = async move { leases.renew(&held).await };
        ctx.spawn(renew.into_actor(self).map(|result, act, _| match result {
            Ok(lost) => {
                for (webhook, lease) in lost {
                    if act.roster.lease_lost(&webhook, &lease) {
                        tracing::warn!(%webhook, "lost the webhook's lease (this instance was unreachable too long); stopped its actor");
                        if act.ownership.owns(&webhook) {
                            act.wanted.insert(webhook);
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "renewing leases failed; retrying at the next renewal"),
        }));
    }

    /// Tries again the owned webhooks whose lease was refused.
    fn retry_wanted(&mut self, ctx: &mut Context<Self>) {
        for id in std::mem::take(&mut self.wanted) {
            if self.roster.is_running(&id) || !self.ownership.owns(&id) {
                continue;
            }
            if let Some(webhook) = self.webhooks.get(&id).cloned() {
                self.activate(&webhook, StartState::queued(), ctx);
            }
        }
    }

    /// The live instances changed: hands over what is no longer this instance's, and takes up
    /// what now is.
    fn rebalance(&mut self, before: &Ownership, ctx: &mut Context<Self>) {
        let leaving: Vec<WebhookId> = self
            .roster
            .running
            .iter()
            .map(|running| *running.key())
            .filter(|id| !self.ownership.owns(id))
            .collect();
        for id in leaving {
            self.hand_over(id, ctx);
        }
        let gained: Vec<WebhookId> = self
            .webhooks
            .keys()
            .filter(|id| self.ownership.owns(id) && !before.owns(id) && !self.roster.is_running(id))
            .copied()
            .collect();
        let owned = self.recount_owned();
        tracing::info!(
            webhooks = self.webhooks.len(),
            owned,
            gained = gained.len(),
            "ownership rebalanced over the live instances"
        );
        self.start_those_with_work(Arc::new(gained), 0, ctx);
    }

    /// Counts the webhooks this instance owns, for `/health` and its heartbeat, after the view
    /// of the live instances changed (`apply` keeps the count as webhooks come and go under
    /// one view).
    fn recount_owned(&self) -> usize {
        let owned = self.webhooks.keys().filter(|id| self.ownership.owns(id)).count();
        self.owned.store(owned, Ordering::Relaxed);
        owned
    }

    /// Hands a webhook over to its new owner: the actor finishes what it has under way (at most
    /// the shutdown grace period, its lease renewed meanwhile), stops, releases the lease, and
    /// the new owner is told.
    fn hand_over(&mut self, id: WebhookId, ctx: &mut Context<Self>) {
        let Some(running) = self.roster.hand_over(&id) else {
            return;
        };
        let grace = self.grace;
        let addr = running.addr.clone();
        let drain = async move {
            let _ = actix_rt::time::timeout(grace, addr.send(Drain)).await;
            addr.do_send(Stop);
        };
        ctx.spawn(drain.into_actor(self).map(move |_, act, ctx| {
            act.roster.stop_renewing(&id, &running.lease);
            act.release(id, running.lease, ctx);
            // Tell the new owner after the release, so its lease is free when it tries.
            let webhooks = act.store.webhooks();
            ctx.spawn(
                async move {
                    let _ = webhooks.announce(&Notice::Work(vec![(id, None)])).await;
                }
                .into_actor(act),
            );
        }));
    }
}

impl Handler<MembersChanged> for Supervisor {
    type Result = ();

    fn handle(&mut self, MembersChanged(members): MembersChanged, ctx: &mut Context<Self>) {
        let before = self.ownership.clone();
        let changed = self.ownership.update(members);
        if !self.members_known {
            self.members_known = true;
            self.recount_owned();
            ctx.notify(super::Resync { force: true });
            return;
        }
        if changed {
            self.rebalance(&before, ctx);
        }
    }
}

impl Handler<MembersMoved> for Supervisor {
    type Result = ();

    fn handle(&mut self, _: MembersMoved, _: &mut Context<Self>) {
        self.membership.do_send(Refresh);
    }
}

impl Handler<WorkQueued> for Supervisor {
    type Result = ();

    fn handle(&mut self, WorkQueued(ids): WorkQueued, ctx: &mut Context<Self>) {
        // Only what this instance owns: the others' owners heard the same notice.
        let ours: Vec<(WebhookId, Option<StreamId>)> =
            ids.into_iter().filter(|(id, _)| self.ownership.owns(id)).collect();
        self.nudge(ours, false, ctx);
    }
}

impl Handler<LeaseEnded> for Supervisor {
    type Result = ();

    fn handle(&mut self, ended: LeaseEnded, _: &mut Context<Self>) {
        if self.roster.lease_ended(&ended) && self.ownership.owns(&ended.webhook) {
            // Another instance holds it (still draining, or dead with its lease not yet
            // expired): try again in a second.
            self.wanted.insert(ended.webhook);
        }
    }
}
