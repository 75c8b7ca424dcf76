//! The supervisor: knows every webhook this instance owns, routes events to them, and runs one
//! delivery actor per webhook that has work (idle webhooks have none: see [`roster`]).
//!
//! It handles one message at a time, to completion (each handler is an atomic future), so a
//! batch is always routed against a complete, consistent set of webhooks:
//!
//! * [`RouteBatch`] from the queue reader ([`routing`]): match each event against the
//!   [`RouteIndex`], run the fan-out script (queue per webhook + ack, atomically), then hand
//!   each queued event to its delivery actor in memory.
//! * [`WebhookChanged`] from the API on this instance or the change feed (pub/sub): reload
//!   that webhook from Redis and reconfigure or stop its actor, or start one if its queue holds
//!   work (a dead-letter replay adds entries without an event).
//! * [`RetryWebhook`] (`POST /webhooks/{id}/retry`): tell its actor, or start one.
//! * [`Idle`] from an actor that has nothing to do: let it stop (see [`roster`]).
//! * [`Resync`] on a timer and after every (re)subscription: compare the version counter with
//!   the changes applied ([`versions`]) and reload everything when a notification was lost
//!   ([`loading`]). If Redis lost its data, first write back the webhooks held here
//!   (`webhooks.restore_lost`).
//! * Every 30 s, a sweep ([`loading`]) starts an actor for any webhook whose queue holds work
//!   while it has none, whatever notification was lost on the way.
//!
//! Delivery actors are spread round-robin over the delivery arbiters (one per core).

mod loading;
mod owners;
mod roster;
mod routing;
mod versions;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::delivery::{CheckQueue, Configure, DeliveryConfig, Drain, RetryNow, StartState};
use super::membership::{Membership, Subscribe};
use super::ownership::Ownership;
use crate::domain::{InstanceName, UserlessEvents, Webhook, WebhookId};
use crate::routing::RouteIndex;
use crate::security::Destinations;
use crate::store::{FanoutKeeping, LeaseStore, Store, StoreError};
use actix::prelude::*;
pub use owners::{MembersMoved, WorkQueued};
use roster::Roster;
pub use roster::{ActorDirectory, Idle, LeaseEnded, Running, SupervisorLink};
pub use routing::{ReadEntry, RouteBatch, RouteFailure};
use versions::{Verdict, VersionTracker};

/// A webhook was created, changed or deleted (its queue may have changed too).
#[derive(Message)]
#[rtype(result = "()")]
pub struct WebhookChanged {
    pub id: WebhookId,
    /// The version the change produced, when known.
    pub version: Option<u64>,
}

/// An operator asked to retry the webhook now (`POST /webhooks/{id}/retry`, here or on another
/// instance): its actor probes at once and takes what waits, which the API made due.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RetryWebhook(pub WebhookId);

/// Check that every change was applied (reload everything when `force`).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Resync {
    pub force: bool,
}

/// Whether the initial load of webhooks has completed.
#[derive(Message)]
#[rtype(result = "bool")]
pub struct IsReady;

/// Shutting down: drain every delivery actor (see [`Drain`]), then stop. Answers when the
/// actors drained or `grace` ran out, whichever is first.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Shutdown {
    pub grace: Duration,
}

/// What a supervisor is built from, besides the settings.
pub struct SupervisorSetup {
    pub store: Store,
    pub instance: InstanceName,
    pub destinations: Arc<Destinations>,
    pub tls: Arc<rustls::ClientConfig>,
    /// The delivery arbiters.
    pub workers: Vec<ArbiterHandle>,
    pub actors: ActorDirectory,
    /// How many webhooks this instance owns: for `/health` and its heartbeat.
    pub owned: Arc<AtomicUsize>,
    pub membership: Addr<Membership>,
}

pub struct Supervisor {
    store: Store,
    /// Which webhooks this instance delivers (from the live instances: `owners`).
    ownership: Ownership,
    /// The first list of live instances has arrived (nothing is started before).
    members_known: bool,
    membership: Addr<Membership>,
    leases: LeaseStore,
    /// How often leases are renewed (a third of their life).
    renew_every: Duration,
    /// Owned webhooks with work whose lease another instance held when their actor tried:
    /// tried again every second until it is free (see `owners`).
    wanted: HashSet<WebhookId>,
    /// How long a handed-over actor may take to finish what it has under way.
    grace: Duration,
    /// What the fan-out keeps besides queue entries: rejected entries, retained events.
    keeping: FanoutKeeping,
    /// `[events] max_writes_per_script`: how a batch's fan-out is cut into scripts.
    max_writes_per_script: usize,
    resync_every: Duration,
    restore_lost: bool,
    index: RouteIndex,
    /// Every webhook, enabled or not, as last loaded: any instance routes any event.
    webhooks: HashMap<WebhookId, Arc<Webhook>>,
    /// How many of them this instance owns: shown by `/health` and in its heartbeat.
    owned: Arc<AtomicUsize>,
    roster: Roster,
    versions: VersionTracker,
    /// The first full load has completed.
    ready: bool,
}

impl Supervisor {
    pub fn new(settings: &crate::config::Settings, setup: SupervisorSetup) -> Supervisor {
        let SupervisorSetup {
            store,
            instance,
            destinations,
            tls,
            workers,
            actors,
            owned,
            membership,
        } = setup;
        let config = Arc::new(DeliveryConfig::new(settings, instance.clone(), destinations, tls));
        Supervisor {
            roster: Roster::new(actors, workers, store.clone(), config.clone()),
            owned,
            leases: store.leases(settings.leases.ttl()),
            renew_every: settings.leases.ttl() / 3,
            store,
            ownership: Ownership::new(instance),
            members_known: false,
            membership,
            wanted: HashSet::new(),
            grace: Duration::from_millis(settings.shutdown.grace_ms),
            keeping: FanoutKeeping::of(&settings.events),
            max_writes_per_script: settings.events.max_writes_per_script,
            resync_every: Duration::from_millis(settings.webhooks.resync_ms),
            restore_lost: settings.webhooks.restore_lost,
            index: RouteIndex::new(UserlessEvents::from_setting(settings.routing.userless_to_user_webhooks)),
            webhooks: HashMap::new(),
            versions: VersionTracker::default(),
            ready: false,
        }
    }

    /// Takes the webhook's new record (None = deleted): updates the routing index, stops or
    /// reconfigures its actor, and starts one if `start` shows work waiting.
    pub(super) fn apply(
        &mut self,
        id: WebhookId,
        webhook: Option<Webhook>,
        start: StartState,
        ctx: &mut Context<Self>,
    ) {
        let webhook = webhook.map(Arc::new);
        let old = self.webhooks.remove(&id);
        let owns = self.ownership.owns(&id);
        if let Some(old) = &old {
            self.index.remove(old);
            if owns {
                self.owned.fetch_sub(1, Ordering::Relaxed);
            }
        }
        let Some(webhook) = webhook else {
            // Deleted: its keys, the lease among them, are gone with it.
            self.roster.stop(&id);
            return;
        };
        if webhook.enabled {
            self.index.insert(&webhook);
        }
        self.webhooks.insert(id, webhook.clone());
        if owns {
            self.owned.fetch_add(1, Ordering::Relaxed);
        }
        let changed = old.is_none_or(|old| *old != *webhook);
        if changed {
            self.roster.send(&id, Configure(webhook.clone()));
        }
        if start.has_work() {
            self.activate(&webhook, start, ctx);
        }
    }

    /// Starts the webhook's actor if this instance owns it, it may deliver (enabled, not
    /// paused) and it has none. The actor acquires the webhook's lease before anything else.
    pub(super) fn activate(&mut self, webhook: &Arc<Webhook>, start: StartState, ctx: &mut Context<Self>) {
        if self.members_known && self.ownership.owns(&webhook.id) && webhook.enabled && !webhook.paused {
            self.roster.start(webhook.clone(), start, ctx.address());
        }
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        // The first load waits for the first list of live instances (`owners`).
        self.membership.do_send(Subscribe(ctx.address().recipient()));
        ctx.run_interval(self.resync_every, |act, ctx| {
            if act.members_known {
                ctx.notify(Resync { force: false });
            }
        });
        self.run_leases(ctx);
        ctx.run_interval(loading::SWEEP_EVERY, |act, ctx| {
            if act.ready {
                act.sweep(ctx);
            }
        });
        super::change_feed::start(self.store.clone(), ctx.address());
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.roster.stop_all();
    }
}

impl Handler<WebhookChanged> for Supervisor {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, WebhookChanged { id, version }: WebhookChanged, _: &mut Context<Self>) -> Self::Result {
        if version.is_some_and(|v| self.versions.has_applied(v)) {
            // Already applied (the API on this instance did it before pub/sub brought it).
            return AtomicResponse::new(Box::pin(fut::ready(())));
        }
        let store = self.store.clone();
        let load = async move {
            let webhook = store.webhooks().get(&id).await?;
            let start = match &webhook {
                Some(w) => {
                    let states = store.queue().startup_states(&[w.id]).await?;
                    let (backlog, circuit) = states.first().copied().unwrap_or_default();
                    StartState { backlog, circuit }
                }
                None => StartState::default(),
            };
            Ok::<_, StoreError>((webhook, start))
        };
        AtomicResponse::new(Box::pin(load.into_actor(self).map(
            move |result, act, ctx| match result {
                Ok((webhook, start)) => {
                    act.apply(id, webhook, start, ctx);
                    act.roster.send(&id, CheckQueue(None));
                    if let Some(version) = version {
                        act.versions.saw(version);
                    }
                }
                // The periodic resync will notice the version it did not see.
                Err(error) => tracing::warn!(webhook = %id, %error, "reloading a changed webhook failed"),
            },
        )))
    }
}

impl Handler<RetryWebhook> for Supervisor {
    type Result = ();

    fn handle(&mut self, RetryWebhook(id): RetryWebhook, ctx: &mut Context<Self>) {
        if self.roster.send(&id, RetryNow) {
            return;
        }
        // No actor: start one; it probes an open circuit at once and takes what is due.
        if let Some(webhook) = self.webhooks.get(&id).cloned() {
            self.activate(&webhook, StartState::queued(), ctx);
        }
    }
}

impl Handler<Resync> for Supervisor {
    type Result = ();

    fn handle(&mut self, Resync { force }: Resync, ctx: &mut Context<Self>) {
        let webhooks = self.store.webhooks();
        let check = async move { webhooks.version().await };
        ctx.wait(check.into_actor(self).map(move |result, act, ctx| {
            let version = match result {
                Ok(version) => version,
                Err(error) => return tracing::debug!(%error, "webhook version check failed"),
            };
            match act.versions.check(version) {
                Verdict::DataLost if act.restore_lost && !act.webhooks.is_empty() => {
                    let held = act.webhooks.values().cloned().collect();
                    act.full_load(ctx, held);
                }
                Verdict::UpToDate if !force && act.ready => {}
                _ => act.full_load(ctx, Vec::new()),
            }
        }));
    }
}

impl Handler<Idle> for Supervisor {
    type Result = ();

    fn handle(&mut self, request: Idle, ctx: &mut Context<Self>) {
        if let Some(stopped) = self.roster.idle(&request) {
            self.release(request.webhook, stopped.lease, ctx);
        }
    }
}

impl Handler<IsReady> for Supervisor {
    type Result = bool;

    fn handle(&mut self, _: IsReady, _: &mut Context<Self>) -> bool {
        self.ready
    }
}

impl Handler<Shutdown> for Supervisor {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, Shutdown { grace }: Shutdown, _: &mut Context<Self>) -> Self::Result {
        // Before the snapshot below: nothing started after it would be drained.
        self.roster.close();
        let drains: Vec<_> = self
            .roster
            .running
            .iter()
            .map(|running| running.addr.send(Drain))
            .collect();
        let count = drains.len();
        // Given up at once after the drain, rather than left to expire, so other instances
        // take these webhooks over without waiting.
        let held = self.roster.leases();
        let leases = self.leases.clone();
        let all = async move {
            let drained = actix_rt::time::timeout(grace, futures_util::future::join_all(drains)).await;
            if drained.is_err() {
                tracing::warn!(
                    grace_ms = grace.as_millis() as u64,
                    "deliveries still under way at the end of the grace period"
                );
            } else {
                tracing::info!(actors = count, "every delivery actor drained");
            }
            for (webhook, lease) in &held {
                let _ = leases.release(webhook, lease).await;
            }
        };
        Box::pin(all.into_actor(self).map(|_, _, ctx| ctx.stop()))
    }
}
