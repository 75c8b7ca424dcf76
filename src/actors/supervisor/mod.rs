//! The supervisor: knows every webhook this instance owns, routes events to them, and runs one
//! delivery actor per webhook that has work (idle webhooks have none: see [`roster`]).
//!
//! It handles one message at a time, to completion (each handler is an atomic future), so a
//! batch is always routed against a complete, consistent set of webhooks:
//!
//! * [`RouteBatch`] from the queue reader: match each event against the [`RouteIndex`], run
//!   the fan-out script (queue per webhook + ack, atomically), then hand each queued event to
//!   its delivery actor in memory.
//! * [`WebhookChanged`] from the API on this instance or the change feed (pub/sub): reload
//!   that webhook from Redis and reconfigure or stop its actor, or start one if its queue holds
//!   work (a dead-letter replay adds entries without an event).
//! * [`Idle`] from an actor that has nothing to do: let it stop (see [`roster`]).
//! * [`Resync`] on a timer and after every (re)subscription: compare the version counter with
//!   the changes applied ([`versions`]) and reload everything when a notification was lost. If
//!   Redis lost its data, first write back the webhooks held here (`webhooks.restore_lost`).
//!
//! Delivery actors are spread round-robin over the delivery arbiters (one per core).

mod roster;
mod versions;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::delivery::{CheckQueue, Configure, DeliveryConfig, Drain, Enqueued, StartState};
use super::ownership::Ownership;
use crate::domain::{Event, PreparedEvent, StreamId, UserlessEvents, Webhook, WebhookId};
use crate::routing::RouteIndex;
use crate::security::Destinations;
use crate::store::{FanoutBatch, Store, StoreError};
use actix::prelude::*;
use roster::Roster;
pub use roster::{ActorDirectory, Idle, Running};
use versions::{Verdict, VersionTracker};

/// Events of a batch that matched, each with the webhooks it matched.
type Routed = Vec<(Arc<PreparedEvent>, Vec<WebhookId>)>;

/// One entry of a batch read from the event stream, as the reader classified it.
pub enum ReadEntry {
    Valid(StreamId, Event),
    Rejected {
        id: StreamId,
        reason: String,
        raw: Vec<u8>,
    },
    /// Deleted while pending: acknowledge it, nothing else.
    Gone(StreamId),
}

/// Route and acknowledge a batch. Answers how many deliveries were queued.
#[derive(Message)]
#[rtype(result = "Result<usize, String>")]
pub struct RouteBatch(pub Vec<ReadEntry>);

/// A webhook was created, changed or deleted (its queue may have changed too).
#[derive(Message)]
#[rtype(result = "()")]
pub struct WebhookChanged {
    pub id: WebhookId,
    /// The version the change produced, when known.
    pub version: Option<u64>,
}

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

pub struct Supervisor {
    store: Store,
    ownership: Ownership,
    rejected_max_len: usize,
    resync_every: Duration,
    restore_lost: bool,
    index: RouteIndex,
    /// Owned webhooks, enabled or not, as last loaded.
    webhooks: HashMap<WebhookId, Arc<Webhook>>,
    /// How many: shown by `/health`.
    known: Arc<AtomicUsize>,
    roster: Roster,
    versions: VersionTracker,
    /// The first full load has completed.
    ready: bool,
}

impl Supervisor {
    pub fn new(
        store: Store,
        settings: &crate::config::Settings,
        destinations: Arc<Destinations>,
        workers: Vec<ArbiterHandle>,
        actors: ActorDirectory,
        known: Arc<AtomicUsize>,
    ) -> Supervisor {
        let config = Arc::new(DeliveryConfig::new(settings, destinations));
        Supervisor {
            roster: Roster::new(actors, workers, store.clone(), config.clone()),
            known,
            store,
            ownership: Ownership::All,
            rejected_max_len: settings.events.rejected_max_len,
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
    fn apply(&mut self, id: WebhookId, webhook: Option<Webhook>, start: StartState, ctx: &mut Context<Self>) {
        let webhook = webhook.filter(|w| self.ownership.owns(&w.id)).map(Arc::new);
        let old = self.webhooks.remove(&id);
        if let Some(old) = &old {
            self.index.remove(old);
        }
        let Some(webhook) = webhook else {
            self.roster.stop(&id);
            self.known.store(self.webhooks.len(), Ordering::Relaxed);
            return;
        };
        if webhook.enabled {
            self.index.insert(&webhook);
        }
        self.webhooks.insert(id, webhook.clone());
        self.known.store(self.webhooks.len(), Ordering::Relaxed);
        let changed = old.is_none_or(|old| *old != *webhook);
        if changed {
            self.roster.send(&id, Configure(webhook.clone()));
        }
        if start.has_work() {
            self.activate(&webhook, start, ctx);
        }
    }

    /// Starts the webhook's actor if it may deliver (enabled, not paused) and has none.
    fn activate(&mut self, webhook: &Arc<Webhook>, start: StartState, ctx: &mut Context<Self>) {
        if webhook.enabled && !webhook.paused {
            self.roster.start(webhook.clone(), start, ctx.address());
        }
    }

    /// Loads every webhook, queue length and circuit state, then makes the actors match.
    /// `restore`: webhooks to write back first (Redis lost them). Records are loaded and
    /// applied a chunk at a time, so 100k webhooks never sit in memory twice.
    fn full_load(&mut self, ctx: &mut Context<Self>, restore: Vec<Arc<Webhook>>) {
        let store = self.store.clone();
        let start = async move {
            for webhook in &restore {
                store.webhooks().restore(webhook).await?;
            }
            if !restore.is_empty() {
                tracing::warn!(
                    webhooks = restore.len(),
                    "redis lost its data; restored the webhooks held in memory"
                );
            }
            // Read before loading: changes made during the load arrive as notifications.
            let version = store.webhooks().version().await?.unwrap_or(0);
            let ids = store.webhooks().ids().await?;
            Ok::<_, StoreError>((version, ids))
        };
        ctx.wait(start.into_actor(self).map(|result, act, ctx| match result {
            Ok((version, ids)) => {
                let present: HashSet<WebhookId> = ids.iter().copied().collect();
                let gone: Vec<WebhookId> = act
                    .webhooks
                    .keys()
                    .filter(|id| !present.contains(id))
                    .copied()
                    .collect();
                for id in gone {
                    act.apply(id, None, StartState::default(), ctx);
                }
                act.load_chunk(ctx, version, Arc::new(ids), 0);
            }
            Err(error) => tracing::warn!(%error, "loading webhooks failed; will retry"),
        }));
    }

    /// Loads and applies `ids[at..at + LOAD_CHUNK]`, then the next chunk.
    fn load_chunk(&mut self, ctx: &mut Context<Self>, version: u64, ids: Arc<Vec<WebhookId>>, at: usize) {
        const LOAD_CHUNK: usize = 1000;
        if at >= ids.len() {
            if !self.ready {
                let running = self.roster.running.len();
                tracing::info!(
                    webhooks = ids.len(),
                    actors = running,
                    "webhooks loaded; actors started for those with work"
                );
            }
            self.versions.loaded(version);
            self.ready = true;
            return;
        }
        let store = self.store.clone();
        let chunk: Vec<WebhookId> = ids[at..(at + LOAD_CHUNK).min(ids.len())].to_vec();
        let load = async move {
            let webhooks = store.webhooks().get_many(&chunk).await?;
            let found: Vec<WebhookId> = webhooks.iter().map(|w| w.id).collect();
            let states = store.queue().startup_states(&found).await?;
            Ok::<_, StoreError>((webhooks, states))
        };
        ctx.wait(load.into_actor(self).map(move |result, act, ctx| match result {
            Ok((webhooks, states)) => {
                for (webhook, (backlog, circuit)) in webhooks.into_iter().zip(states) {
                    act.apply(webhook.id, Some(webhook), StartState { backlog, circuit }, ctx);
                }
                act.load_chunk(ctx, version, ids, at + LOAD_CHUNK);
            }
            Err(error) => tracing::warn!(%error, "loading webhooks failed; will retry"),
        }));
    }

    /// Matches a batch: what the fan-out script must do, and who gets what afterwards.
    fn route(&mut self, entries: Vec<ReadEntry>) -> (FanoutBatch, Routed) {
        let mut batch = FanoutBatch::default();
        let mut routed = Vec::new();
        let mut targets = Vec::new();
        for entry in entries {
            match entry {
                ReadEntry::Valid(id, event) => {
                    self.index.route(&event.ev, event.user.as_ref(), &mut targets);
                    let prepared = Arc::new(event.prepare(id));
                    batch.event(&prepared, &targets);
                    if !targets.is_empty() {
                        routed.push((prepared, targets.clone()));
                    }
                }
                ReadEntry::Rejected { id, reason, raw } => batch.reject(id, &reason, &raw),
                ReadEntry::Gone(id) => batch.ack(id),
            }
        }
        (batch, routed)
    }
}

impl Actor for Supervisor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.notify(Resync { force: true });
        ctx.run_interval(self.resync_every, |_, ctx| ctx.notify(Resync { force: false }));
        super::change_feed::start(self.store.clone(), ctx.address());
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.roster.stop_all();
    }
}

impl Handler<RouteBatch> for Supervisor {
    type Result = AtomicResponse<Self, Result<usize, String>>;

    fn handle(&mut self, RouteBatch(entries): RouteBatch, _: &mut Context<Self>) -> Self::Result {
        if !self.ready {
            return AtomicResponse::new(Box::pin(fut::ready(Err("webhooks are not loaded yet".to_string()))));
        }
        let (batch, routed) = self.route(entries);
        let events = self.store.events();
        let rejected_max_len = self.rejected_max_len;
        let write = async move { events.fanout(&batch, rejected_max_len).await };
        AtomicResponse::new(Box::pin(write.into_actor(self).map(move |result, act, ctx| {
            let queued = result.map_err(|e| e.to_string())?;
            let mut entries = queued.into_iter();
            let mut count = 0;
            // One message per actor per batch: a cross-thread wake-up per actor, not per event.
            let mut handed: HashMap<WebhookId, Vec<(StreamId, Arc<PreparedEvent>)>> = HashMap::new();
            for (event, targets) in routed {
                for target in targets {
                    let Some(entry) = entries.next().flatten() else {
                        continue;
                    };
                    count += 1;
                    handed.entry(target).or_default().push((entry, event.clone()));
                }
            }
            for (target, entries) in handed {
                if !act.roster.is_running(&target) {
                    // Idle until now: its actor reads the queue from the start (which holds
                    // these entries, and anything queued before).
                    if let Some(webhook) = act.webhooks.get(&target).cloned() {
                        act.activate(&webhook, StartState::queued(), ctx);
                    }
                }
                act.roster.send(&target, Enqueued(entries));
            }
            Ok(count)
        })))
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
                    act.roster.send(&id, CheckQueue);
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

    fn handle(&mut self, request: Idle, _: &mut Context<Self>) {
        self.roster.idle(&request);
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
        let drains: Vec<_> = self
            .roster
            .running
            .iter()
            .map(|running| running.addr.send(Drain))
            .collect();
        let count = drains.len();
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
        };
        Box::pin(all.into_actor(self).map(|_, _, ctx| ctx.stop()))
    }
}
