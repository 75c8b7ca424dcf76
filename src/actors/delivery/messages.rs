//! The messages a delivery actor takes, and what it does with each: work from the supervisor
//! (`Enqueued`, `CheckQueue`, `RetryNow`), a new record (`Configure`), a permit of its host
//! (`HostRoom`), questions (`GetHealth`), and the two ways to stop (`Drain`, `Stop`).

use std::sync::Arc;

use actix::prelude::*;
use tokio::sync::oneshot;

use super::hosts::HostRoom;
use super::{DeliveryActor, HealthReport};
use crate::domain::{PreparedEvent, StreamId, Webhook};
use crate::store::Appended;

/// The supervisor queued these events in this webhook's queue (entry ids ascending): one
/// message per actor per routed batch. Each comes with the entry that was before it in the
/// queue ([`crate::store::Appended`]), so the actor takes it straight only when it has read
/// everything up to there.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Enqueued(pub Vec<(Appended, Arc<PreparedEvent>)>);

/// The webhook's record changed (url, types, enabled, paused).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Configure(pub Arc<Webhook>);

/// Entries may have been added to the queue without an [`Enqueued`] (a replay, another
/// instance's routing): read it. `Some(first)`: they start at `first`, which may be behind the
/// cursor (another instance queued them before the entries this actor was handed): read again
/// from there.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CheckQueue(pub Option<StreamId>);

/// An operator fixed the receiver (`POST /webhooks/{id}/retry`): probe now, and take every
/// waiting entry, which the API made due.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RetryNow;

#[derive(Message)]
#[rtype(result = "HealthReport")]
pub struct GetHealth;

/// Shutting down: take nothing new, let the attempts under way finish and their results reach
/// Redis. Answers when that is done.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Drain;

/// The webhook was deleted or is no longer this instance's: stop at once.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

impl Handler<Enqueued> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, Enqueued(entries): Enqueued, ctx: &mut Context<Self>) {
        self.received += 1;
        self.activity += 1;
        for (entry, event) in entries {
            self.intake(entry, event, ctx);
        }
    }
}

impl Handler<Configure> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, msg: Configure, ctx: &mut Context<Self>) {
        self.received += 1;
        self.activity += 1;
        self.apply(msg.0, ctx);
    }
}

impl Handler<CheckQueue> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, CheckQueue(from): CheckQueue, ctx: &mut Context<Self>) {
        self.received += 1;
        self.activity += 1;
        if let Some(first) = from {
            self.rewind(first);
        }
        self.fell_behind(ctx);
    }
}

impl Handler<HostRoom> for DeliveryActor {
    type Result = ();

    /// A permit of the host was handed over: use it (or `fill` gives it back).
    fn handle(&mut self, _: HostRoom, ctx: &mut Context<Self>) {
        self.host_wait = false;
        self.fill(ctx);
    }
}

impl Handler<RetryNow> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, _: RetryNow, ctx: &mut Context<Self>) {
        self.received += 1;
        self.activity += 1;
        self.pacing.restart(self.config.settings.initial_concurrency);
        self.probe_now(ctx);
        self.retry_everything_now(ctx);
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

impl Handler<Drain> for DeliveryActor {
    type Result = ResponseFuture<()>;

    fn handle(&mut self, _: Drain, ctx: &mut Context<Self>) -> Self::Result {
        let (done, wait) = oneshot::channel();
        self.drain.get_or_insert_with(Vec::new).push(done);
        self.release(ctx);
        // The counters survive the restart through the report.
        self.write_report(ctx);
        if !self.settled.is_empty() {
            self.flush(ctx);
        }
        self.check_drained();
        Box::pin(async move {
            let _ = wait.await;
        })
    }
}

impl Handler<Stop> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
