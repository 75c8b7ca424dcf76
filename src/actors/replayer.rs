//! The replayer: runs replays (`store/replays.rs`) and trims the retained events when no
//! fan-out does. A task on the main arbiter of every delivering instance.
//!
//! Every tick it looks at the running replays and, for each whose lease it holds or can take,
//! makes steps for up to [`STEP_BUDGET`]: read [`BATCH`] retained events after the replay's
//! cursor, keep those the webhook matches as it is now (`Webhook::receives`, the routing
//! index's reference), and append them to the webhook's queue while moving the cursor, in one
//! fenced script. It waits (till a later tick) while the queue holds `events.replay_backlog`
//! entries or more, so the queue, not the replay, sets the pace: the webhook's flow control
//! (window, rate limit, per-host cap, circuit, pause) applies to replayed entries like to any.
//! Memory is a batch at a time, plus, for a replay of undelivered events, the webhook's dead
//! letters by event (bounded by `dead_letters.max_len`). Then it tells the webhook's owner
//! to read its queue (`Notice::Queue`, as a dead-letter replay does).
//!
//! With `onlyUndelivered`, an event the webhook was routed at the time is replayed only when
//! it is a dead letter (its letter is removed in the same script, as `POST …/dead/replay`
//! would); one still queued or waiting for a retry will be delivered anyway, and one that left
//! the queue otherwise was delivered. An event routed before the webhook matched it is
//! replayed: it was never delivered.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

use crate::config::Settings;
use crate::domain::{InstanceName, StreamId, UserlessEvents, WebhookId};
use crate::store::{Direction, Lease, Notice, ReplayPhase, ReplayState, ReplayStep, Stepped, Store, StoreResult};

/// How often the replayer looks at the running replays.
const TICK: Duration = Duration::from_millis(250);
/// Retained events read per step (one `XRANGE` and one script of at most this many appends).
const BATCH: usize = 250;
/// How long one replay is worked on per tick before the next running one gets its turn.
const STEP_BUDGET: Duration = Duration::from_millis(200);
/// Running replays looked at per tick (the oldest first).
const MAX_RUNNING: usize = 100;

pub fn start(store: Store, settings: &Settings, instance: &InstanceName, stopping: watch::Receiver<bool>) {
    let replayer = Replayer {
        store,
        token: Lease::mint(instance).to_string(),
        lease_ttl_ms: settings.leases.ttl_ms,
        retain: (settings.events.retain_ms, settings.events.retain_max),
        backlog: settings.events.replay_backlog,
        userless: UserlessEvents::from_setting(settings.routing.userless_to_user_webhooks),
        dead: HashMap::new(),
    };
    actix_rt::spawn(replayer.run(stopping));
}

struct Replayer {
    store: Store,
    /// This instance's replay lease value (unique to this run of the process).
    token: String,
    lease_ttl_ms: u64,
    /// `events.retain_ms`, `events.retain_max`: what the idle trim keeps.
    retain: (u64, u64),
    /// `events.replay_backlog`: the queue length at which a replay waits.
    backlog: u64,
    userless: UserlessEvents,
    /// For the replays of undelivered events this instance runs: the webhook's dead letters by
    /// event id (read when it takes the replay, dropped when it ends or is lost).
    dead: HashMap<(WebhookId, u64), Arc<HashMap<StreamId, StreamId>>>,
}

impl Replayer {
    async fn run(mut self, mut stopping: watch::Receiver<bool>) {
        let mut tick = actix_rt::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.tick().await,
                _ = stopping.wait_for(|stop| *stop) => break,
            }
        }
    }

    async fn tick(&mut self) {
        let (retain_ms, retain_max) = self.retain;
        if let Err(error) = self.store.retained().trim(retain_ms, retain_max).await {
            tracing::debug!(%error, "could not trim the retained events");
        }
        let running = match self.store.replays().running(MAX_RUNNING).await {
            Ok(running) => running,
            Err(error) => return tracing::debug!(%error, "could not read the running replays"),
        };
        self.dead.retain(|key, _| running.contains(key));
        for (webhook, n) in running {
            if let Err(error) = self.work_on(webhook, n).await {
                tracing::warn!(%webhook, replay = n, %error, "a replay step failed; it goes on at the next tick");
            }
        }
    }

    /// Makes steps of one replay for up to [`STEP_BUDGET`], if this instance holds its lease.
    async fn work_on(&mut self, webhook: WebhookId, n: u64) -> StoreResult<()> {
        let replays = self.store.replays();
        if !replays.hold(&webhook, n, &self.token, self.lease_ttl_ms).await? {
            self.dead.remove(&(webhook, n));
            return Ok(());
        }
        let state = replays.get(&webhook, n).await?;
        let hook = self.store.webhooks().get(&webhook).await?;
        let (Some(state), Some(hook)) = (state.filter(|s| s.state == ReplayPhase::Running), hook) else {
            // Its webhook was deleted (and its replays with it), or it ended meanwhile.
            self.dead.remove(&(webhook, n));
            return replays.forget(&webhook, n).await;
        };
        let dead = match (state.only_undelivered, self.dead.get(&(webhook, n))) {
            (false, _) => None,
            (true, Some(dead)) => Some(dead.clone()),
            (true, None) => {
                let dead = Arc::new(replays.dead_letters(&webhook).await?);
                self.dead.insert((webhook, n), dead.clone());
                Some(dead)
            }
        };
        let started = Instant::now();
        let mut cursor = state.cursor();
        let mut queued = 0;
        while started.elapsed() < STEP_BUDGET {
            if self.store.queue().backlog(&webhook).await? >= self.backlog {
                break;
            }
            let page = self
                .store
                .retained()
                .read((state.since, state.until), cursor, BATCH, Direction::Forward)
                .await?;
            let mut step = ReplayStep {
                cursor: page.last.or(cursor),
                last: !page.more,
                ..ReplayStep::default()
            };
            for event in page.events {
                if !hook.receives(&event.ev, event.user.as_ref(), self.userless) {
                    continue;
                }
                step.matched += 1;
                let letter = match (&dead, event.queued_for(&webhook)) {
                    (Some(dead), Some(_)) => match dead.get(&event.event) {
                        Some(letter) => Some(*letter),
                        // Delivered, or still queued: it is not replayed.
                        None => continue,
                    },
                    _ => None,
                };
                step.entries.push((event.queue_field(), letter));
            }
            match replays
                .step(&webhook, n, (&self.token, self.lease_ttl_ms), &step)
                .await?
            {
                Stepped::Queued(count) => queued += count,
                Stepped::Fenced | Stepped::Stopped => {
                    self.dead.remove(&(webhook, n));
                    break;
                }
            }
            if step.last {
                self.finished(&webhook, &state, n);
                break;
            }
            cursor = step.cursor;
        }
        if queued > 0 {
            self.store.webhooks().announce(&Notice::Queue(webhook)).await?;
        }
        Ok(())
    }

    fn finished(&mut self, webhook: &WebhookId, state: &ReplayState, n: u64) {
        self.dead.remove(&(*webhook, n));
        tracing::info!(%webhook, replay = n, since = state.since, until = state.until, "replay finished");
    }
}
