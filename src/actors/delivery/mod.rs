//! The delivery actor: one per webhook, the only thing that talks to its endpoint.
//!
//! It works through the webhook's Redis queue in order, holding at most `max_in_flight`
//! deliveries in memory (its *window*): each is either being sent or waiting for its retry
//! timer. Everything else stays in Redis, so a dead endpoint with a million queued events
//! costs Redis memory, not ours. New entries arrive two ways: the supervisor hands over each
//! event it just queued (no Redis read when the actor keeps up), and when the actor fell
//! behind it reads the queue from its cursor.
//!
//! An entry leaves the queue only on a final outcome: delivered (2xx) or dead-lettered after
//! `max_attempts`. A failed attempt records its attempt count and due time in Redis, so a
//! restart resumes the backoff. A 410 Gone disables the webhook; its queue is kept.
//!
//! Nothing here blocks: sends, Redis calls and timers are futures on the actor's context, so a
//! hanging endpoint only ever occupies its own window.

mod backoff;
mod health;
mod outcome;
mod report;
mod sender;
mod window;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

pub use backoff::RetryPolicy;
use health::Stats;
pub use health::{HealthReport, HealthState};

use crate::config::Settings;
use crate::domain::{DeliveryId, PreparedEvent, StreamId, Webhook};
use crate::store::{QueueStore, QueuedDelivery, Store};

/// Delivered entries are removed from Redis in batches, at most this long after delivery.
const FLUSH_DELAY: Duration = Duration::from_millis(5);
/// Pause before retrying a Redis call that failed (Redis down or restarting).
const REDIS_RETRY: Duration = Duration::from_secs(1);
/// Health reports for other instances are written at most this often per webhook.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// What every delivery actor needs from the settings, shared.
pub struct DeliveryConfig {
    pub settings: crate::config::DeliverySettings,
    pub retry: RetryPolicy,
    pub failure_threshold: u32,
    pub dead_letters_max_len: usize,
}

impl DeliveryConfig {
    pub fn new(settings: &Settings) -> DeliveryConfig {
        DeliveryConfig {
            settings: settings.delivery.clone(),
            retry: RetryPolicy::new(&settings.retry),
            failure_threshold: settings.circuit.failure_threshold,
            dead_letters_max_len: settings.dead_letters.max_len,
        }
    }
}

/// The supervisor queued `event` as `entry` in this webhook's queue.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Enqueued {
    pub entry: StreamId,
    pub event: Arc<PreparedEvent>,
}

/// The webhook's record changed (url, types, enabled).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Configure(pub Arc<Webhook>);

/// Entries may have been added to the queue without an [`Enqueued`] (a replay): read it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct CheckQueue;

#[derive(Message)]
#[rtype(result = "HealthReport")]
pub struct GetHealth;

/// The webhook was deleted or is no longer this instance's: stop at once.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Stop;

/// A delivery held in memory.
struct Slot {
    delivery: QueuedDelivery,
    id: DeliveryId,
    /// Set while waiting for a retry: when it is due (ms) and the timer.
    retry: Option<(u64, SpawnHandle)>,
}

pub struct DeliveryActor {
    webhook: Arc<Webhook>,
    store: Store,
    queue: QueueStore,
    config: Arc<DeliveryConfig>,
    /// This thread's HTTP client (set in `started`; `awc::Client` is `!Send`).
    client: Option<awc::Client>,
    /// Deliveries in memory, by queue entry id; at most `max_in_flight`.
    window: BTreeMap<StreamId, Slot>,
    /// The highest queue entry taken into the window: reads of the queue resume after it.
    cursor: Option<StreamId>,
    /// The queue holds nothing after `cursor` (as far as this actor knows).
    caught_up: bool,
    /// A queue read is under way.
    fetching: bool,
    /// An entry was announced during a queue read, which may have missed it.
    missed: bool,
    /// Bumped when the cursor is reset, so a queue read started before is ignored.
    epoch: u64,
    /// Delivered entries waiting to be removed from Redis in one batch.
    finished: Vec<StreamId>,
    stats: Stats,
    /// A health report write is scheduled.
    report_due: bool,
}

impl DeliveryActor {
    /// `backlog`: the queue's length at start (0 = nothing to read until told otherwise).
    pub fn new(
        webhook: Arc<Webhook>,
        store: Store,
        config: Arc<DeliveryConfig>,
        backlog: u64,
    ) -> DeliveryActor {
        DeliveryActor {
            webhook,
            queue: store.queue(),
            store,
            config,
            client: None,
            window: BTreeMap::new(),
            cursor: None,
            caught_up: backlog == 0,
            fetching: false,
            missed: false,
            epoch: 0,
            finished: Vec::new(),
            stats: Stats::default(),
            report_due: false,
        }
    }
}

impl Actor for DeliveryActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.client = Some(sender::client(&self.config.settings));
        self.fill(ctx);
    }
}

impl Handler<Enqueued> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, msg: Enqueued, ctx: &mut Context<Self>) {
        self.intake(msg.entry, msg.event, ctx);
    }
}

impl Handler<Configure> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, msg: Configure, ctx: &mut Context<Self>) {
        self.apply(msg.0, ctx);
    }
}

impl Handler<CheckQueue> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, _: CheckQueue, ctx: &mut Context<Self>) {
        self.fell_behind(ctx);
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

impl Handler<Stop> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, _: Stop, ctx: &mut Context<Self>) {
        ctx.stop();
    }
}
