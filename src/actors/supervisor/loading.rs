//! Loading webhooks: every one at start and after a lost notification (chunk by chunk), and
//! the backlog sweep, which starts an actor for any webhook whose queue holds work while it has
//! none (a notification lost on its way, say), so nothing waits for a restart.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use super::Supervisor;
use crate::actors::delivery::StartState;
use crate::domain::{Webhook, WebhookId};
use crate::store::StoreError;

/// How often the backlog sweep runs.
pub(super) const SWEEP_EVERY: Duration = Duration::from_secs(30);
/// Webhooks one sweep step checks (one pipeline of XLENs).
const SWEEP_CHUNK: usize = 1000;

impl Supervisor {
    /// Loads every webhook, queue length and circuit state, then makes the actors match.
    /// `restore`: webhooks to write back first (Redis lost them). Records are loaded and
    /// applied a chunk at a time, so 100k webhooks never sit in memory twice.
    pub(super) fn full_load(&mut self, ctx: &mut Context<Self>, restore: Vec<Arc<Webhook>>) {
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

    /// Applies the webhook changes made since the version applied, from the change log: the
    /// fan-out found the index behind (another instance changed a webhook, and its notification
    /// has not arrived). When the log no longer reaches back that far, reloads everything.
    pub(super) fn sync_changes(&mut self) -> impl ActorFuture<Self, Output = ()> {
        let store = self.store.clone();
        let applied = self.versions.applied();
        let load = async move {
            let Some((changes, _current)) = store.webhooks().changes_since(applied).await? else {
                return Ok(None);
            };
            let mut ids: Vec<WebhookId> = changes.iter().map(|(_, id)| *id).collect();
            ids.sort_unstable();
            ids.dedup();
            let webhooks = store.webhooks().get_many(&ids).await?;
            let found: Vec<WebhookId> = webhooks.iter().map(|w| w.id).collect();
            let states = store.queue().startup_states(&found).await?;
            Ok::<_, StoreError>(Some((ids, webhooks, states, changes)))
        };
        load.into_actor(self).map(|result, act, ctx| match result {
            Ok(Some((ids, webhooks, states, changes))) => {
                let mut found: HashMap<WebhookId, (Webhook, StartState)> = webhooks
                    .into_iter()
                    .zip(states)
                    .map(|(webhook, (backlog, circuit))| (webhook.id, (webhook, StartState { backlog, circuit })))
                    .collect();
                for id in ids {
                    match found.remove(&id) {
                        Some((webhook, start)) => act.apply(id, Some(webhook), start, ctx),
                        None => act.apply(id, None, StartState::default(), ctx),
                    }
                }
                for (version, _) in changes {
                    act.versions.saw(version);
                }
            }
            Ok(None) => ctx.notify(super::Resync { force: true }),
            Err(error) => tracing::warn!(%error, "syncing webhook changes failed; will retry"),
        })
    }

    /// Checks the queues of owned webhooks that may deliver but have no actor; starts an actor
    /// for each that holds work.
    pub(super) fn sweep(&mut self, ctx: &mut Context<Self>) {
        let idle: Vec<WebhookId> = self
            .webhooks
            .values()
            .filter(|w| w.enabled && !w.paused && !self.roster.is_running(&w.id) && self.ownership.owns(&w.id))
            .map(|w| w.id)
            .collect();
        self.start_those_with_work(Arc::new(idle), 0, ctx);
    }

    /// Starts an actor for each of `ids[at..]` whose queue holds work or whose circuit a run of
    /// failures (the backlog sweep; webhooks this instance just came to own). A chunk at a
    /// time, so Redis answers others in between.
    pub(super) fn start_those_with_work(&mut self, ids: Arc<Vec<WebhookId>>, at: usize, ctx: &mut Context<Self>) {
        if at >= ids.len() {
            return;
        }
        let chunk: Vec<WebhookId> = ids[at..(at + SWEEP_CHUNK).min(ids.len())].to_vec();
        let queue = self.store.queue();
        let check = async move { queue.startup_states(&chunk).await.map(|states| (chunk, states)) };
        ctx.spawn(check.into_actor(self).map(move |result, act, ctx| match result {
            Ok((chunk, states)) => {
                for (id, (backlog, circuit)) in chunk.into_iter().zip(states) {
                    let start = StartState { backlog, circuit };
                    let webhook: Option<Arc<Webhook>> = act.webhooks.get(&id).cloned();
                    if let Some(webhook) = webhook.filter(|_| start.has_work()) {
                        if !act.roster.is_running(&id) {
                            tracing::debug!(webhook = %id, backlog, "queued work without an actor; starting one");
                            act.activate(&webhook, start, ctx);
                        }
                    }
                }
                act.start_those_with_work(ids, at + SWEEP_CHUNK, ctx);
            }
            Err(error) => tracing::debug!(%error, "checking queues failed; the sweep will try again"),
        }));
    }
}
