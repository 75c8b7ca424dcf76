//! The delivery actor: one per webhook, the only thing that talks to its endpoint.
//!
//! It works through the webhook's Redis queue in order, sending at most `max_in_flight`
//! deliveries at once (its *window*). Everything else stays in Redis, so a dead endpoint with a
//! million queued events costs Redis memory, not ours. New entries arrive two ways: the
//! supervisor hands over each event it just queued (no Redis read when the actor keeps up), and
//! when the actor fell behind it reads the queue from its cursor.
//!
//! An entry leaves the queue only on a final outcome: delivered (2xx) or dead-lettered after
//! `max_attempts`. Every attempt is written to the webhook's attempt log. A failed entry leaves
//! the window and waits in Redis for its own retry time (the due set), with its attempt count,
//! while the window goes on with the entries behind it; the circuit breaker judges the endpoint
//! from the failures that say something about it. Both survive a restart. A 410 Gone disables
//! the webhook; its queue is kept.
//!
//! Nothing here blocks: sends, Redis calls and timers are futures on the actor's context, so a
//! hanging endpoint only ever occupies its own window.
//!
//! The parts: `window` (taking entries, sending), `retries` (the due set), `outcome` (what an
//! attempt's result does), `circuit` (the breaker), `report` (health), `rates` (the last 5
//! minutes' counts and latency), `upkeep` (what a flush writes besides attempts), `sender` (HTTP),
//! `client` (the per-thread HTTP client: SSRF-guarded resolver, TLS, keep-alive), `failure`
//! (transport errors in words),
//! `backoff` (retry delays).

mod audit;
mod backoff;
mod circuit;
mod client;
mod failure;
mod health;
mod lease;
mod outcome;
mod rates;
mod report;
mod retries;
mod sender;
mod slots;
mod upkeep;
mod window;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use tokio::sync::oneshot;

pub use backoff::RetryPolicy;
use circuit::Circuit;
use health::Stats;
pub use health::{HealthReport, HealthState, LastFailure, LastSuccess};
pub use rates::RecentRates;
pub use report::{GetGlance, Glance};
use retries::Retries;
use slots::Window;
use upkeep::Upkeep;

use crate::actors::supervisor::SupervisorLink;
use crate::config::Settings;
use crate::domain::{InstanceName, PreparedEvent, Signers, StreamId, Webhook};
use crate::metrics::{AttemptMetrics, WebhookLabels};
use crate::security::Destinations;
use crate::store::{Appended, CircuitState, Lease, LeaseStore, QueueStore, Retention, Settled, Store, WebhookStore};

/// Delivered entries are removed from Redis in batches, at most this long after delivery.
const FLUSH_DELAY: Duration = Duration::from_millis(10);
/// How long window room short of a batch may stay unused while entries wait to be read: then
/// what fits is read (`window::fill`). Answers on a LAN come well within it, so a busy webhook
/// still reads in batches; a receiver that holds some requests no longer keeps the rest of
/// the window idle until they time out.
const TOP_UP_AFTER: Duration = Duration::from_millis(50);
/// Pause before retrying a Redis call that failed (Redis down or restarting).
const REDIS_RETRY: Duration = Duration::from_secs(1);
/// Health reports for other instances are written at most this often per webhook.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// What every delivery actor needs from the settings, shared.
pub struct DeliveryConfig {
    /// This instance: it holds the leases, and its name goes into every attempt record.
    pub instance: InstanceName,
    /// How long a lease lasts without renewal (`leases.ttl_ms`).
    pub lease_ttl: Duration,
    pub settings: crate::config::DeliverySettings,
    pub retry: RetryPolicy,
    pub failure_threshold: u32,
    /// The circuit's (first, longest) probe delay.
    pub probes: (Duration, Duration),
    pub disable_after_ms: u64,
    pub retention: Retention,
    /// How often the self-check runs, and whether a violation aborts (`audit`).
    pub invariants: crate::config::InvariantSettings,
    /// Each delivery thread opens its own Redis connection with these.
    pub redis: crate::config::RedisSettings,
    /// The SSRF guard, applied again at delivery time.
    pub destinations: Arc<Destinations>,
    /// Whom https deliveries trust (web roots + `[delivery] ca_file`), built once at start-up
    /// and shared by every thread's client.
    pub tls: Arc<rustls::ClientConfig>,
    pub metric_labels: WebhookLabels,
}

impl DeliveryConfig {
    pub fn new(
        settings: &Settings,
        instance: InstanceName,
        destinations: Arc<Destinations>,
        tls: Arc<rustls::ClientConfig>,
    ) -> DeliveryConfig {
        DeliveryConfig {
            instance,
            lease_ttl: settings.leases.ttl(),
            redis: settings.redis.clone(),
            destinations,
            tls,
            metric_labels: WebhookLabels::new(&settings.metrics),
            settings: settings.delivery.clone(),
            retry: RetryPolicy::new(&settings.retry),
            failure_threshold: settings.circuit.failure_threshold,
            probes: settings.circuit.probes(),
            disable_after_ms: settings.circuit.disable_after_ms,
            invariants: settings.invariants.clone(),
            retention: Retention {
                attempts_max_len: settings.attempts.max_len,
                attempts_ttl_ms: settings.attempts.ttl_ms,
                dead_max_len: settings.dead_letters.max_len,
                dead_ttl_ms: settings.dead_letters.ttl_ms,
            },
        }
    }
}

/// How far entries of the queue may have been tried, as a delivery actor knows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Tried {
    /// Not known yet (no read since the cursor was reset): the next read finds out.
    Unknown,
    /// Entries up to this one may have been: reads look up their retry state.
    UpTo(StreamId),
    /// None after the cursor: reads need no lookup.
    Nothing,
}

/// What the supervisor knows of a webhook's queue when it starts the actor.
#[derive(Debug, Clone, Copy, Default)]
pub struct StartState {
    /// Entries in the queue (0 = nothing to read until told otherwise).
    pub backlog: u64,
    pub circuit: Option<CircuitState>,
}

impl StartState {
    /// For an actor started because events were just queued: read the queue from the start.
    pub fn queued() -> StartState {
        StartState {
            backlog: 1,
            circuit: None,
        }
    }

    /// Whether the webhook needs an actor now: a backlog, or a run of failures to resume.
    pub fn has_work(&self) -> bool {
        self.backlog > 0 || self.circuit.is_some_and(|c| c.failures > 0)
    }
}

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

pub struct DeliveryActor {
    webhook: Arc<Webhook>,
    /// The webhook's URL as awc takes it, parsed once.
    uri: Option<awc::http::Uri>,
    /// Its secrets, keyed once.
    signers: Arc<Signers>,
    /// This thread's Redis connection: the queue and the webhook record.
    queue: QueueStore,
    webhooks: WebhookStore,
    config: Arc<DeliveryConfig>,
    /// This thread's HTTP client (set in `started`; `awc::Client` is `!Send`).
    client: Option<awc::Client>,
    /// Deliveries being sent, by queue entry id; at most `max_in_flight`.
    window: Window,
    /// What the actor knows of its entries waiting for a retry (they wait in Redis).
    retries: Retries,
    /// The highest queue entry taken into the window: reads of the queue resume after it.
    cursor: Option<StreamId>,
    /// How far entries after the cursor may have been tried (and have retry state to skip):
    /// learnt by the first read after the cursor is reset (see `store::RetryLookup`).
    tried: Tried,
    /// The queue holds nothing after `cursor` (as far as this actor knows).
    caught_up: bool,
    /// A queue read is under way.
    fetching: bool,
    /// An entry was announced during a queue read, which may have missed it.
    missed: bool,
    /// Bumped when the cursor is reset, so a queue read started before is ignored.
    epoch: u64,
    /// Armed while window room short of a batch waits unused with entries to read; when it
    /// fires, `top_up_due` lets the next fill read what fits ([`TOP_UP_AFTER`]).
    top_up_timer: Option<SpawnHandle>,
    top_up_due: bool,
    /// Outcomes of finished attempts waiting to be written, in one batch (`outcome::flush`).
    settled: Vec<Settled>,
    /// The timer that flushes `settled` [`FLUSH_DELAY`] after the first of them; cancelled by
    /// an earlier flush, so that it cannot cut the next batch short.
    flush_timer: Option<SpawnHandle>,
    /// Entries whose outcomes are being written now. They, and `settled`, count towards
    /// `max_in_flight`: until its outcome is in Redis a delivery would be sent again after a
    /// crash, so this bounds the duplicates a crash can cause. A queue read must skip them:
    /// it may have run before their write removed them from the queue.
    writing: BTreeSet<StreamId>,
    /// Entries whose outcomes were written while a queue read was under way: that read may
    /// have run before the write (on another connection, or sent earlier) and must skip them.
    written_during_read: BTreeSet<StreamId>,
    /// What the last flushes wrote besides attempts, so the next writes only what changed.
    upkeep: Upkeep,
    /// This acquisition's lease on the webhook (also the fencing token of every write).
    lease: Lease,
    /// The lease is acquired: nothing is sent before.
    leased: bool,
    leases: LeaseStore,
    /// Redis writes under way; shutdown waits for them.
    writes: usize,
    /// Redis calls that failed and will be tried again ([`REDIS_RETRY`] later).
    redis_retries: usize,
    /// The self-check's memory between runs.
    audit: audit::Audit,
    circuit: Circuit,
    stats: Stats,
    /// Attempts and latency of the last 5 minutes, for reports (boxed: ~1.5 KB).
    rates: Box<rates::Rates>,
    /// A health report write is scheduled.
    report_due: bool,
    /// Set once shutting down: who waits for the attempts under way to finish.
    drain: Option<Vec<oneshot::Sender<()>>>,
    /// Its handles on the attempt metrics (labelled with the webhook, if series are per
    /// webhook); set in `started`.
    attempt_metrics: Option<AttemptMetrics>,
    /// Supervisor messages received (Enqueued, Configure, CheckQueue, RetryNow), and how to
    /// tell the supervisor it is idle or lost its lease: see `supervisor::roster`.
    received: u64,
    supervisor: SupervisorLink,
    /// Counts things happening; the idle check compares it between two checks.
    activity: u64,
    /// (activity at the last idle check, idle checks passed in a row).
    quiet: (u64, u8),
}

impl DeliveryActor {
    /// Call on the actor's own arbiter thread (the closure of `start_in_arbiter`): it takes
    /// that thread's Redis connection. `shared` serves if that one cannot be made. The actor
    /// acquires `lease` before it sends anything.
    pub fn new(
        webhook: Arc<Webhook>,
        shared: &Store,
        config: Arc<DeliveryConfig>,
        start: StartState,
        (lease, supervisor): (Lease, SupervisorLink),
    ) -> DeliveryActor {
        let store = Store::for_this_thread(&config.redis).unwrap_or_else(|_| shared.clone());
        DeliveryActor {
            uri: webhook.url.target().parse().ok(),
            signers: Arc::new(webhook.signers()),
            webhook,
            queue: store.queue(),
            webhooks: store.webhooks(),
            leases: store.leases(config.lease_ttl),
            circuit: Circuit::new(config.failure_threshold, config.probes, start.circuit),
            config,
            client: None,
            window: Window::new(),
            retries: Retries::default(),
            cursor: None,
            tried: Tried::Unknown,
            caught_up: start.backlog == 0,
            fetching: false,
            missed: false,
            epoch: 0,
            settled: Vec::new(),
            flush_timer: None,
            top_up_timer: None,
            top_up_due: false,
            writing: BTreeSet::new(),
            written_during_read: BTreeSet::new(),
            upkeep: Upkeep::default(),
            lease,
            leased: false,
            writes: 0,
            redis_retries: 0,
            audit: audit::Audit::default(),
            stats: Stats::default(),
            rates: Box::default(),
            report_due: false,
            drain: None,
            attempt_metrics: None,
            received: 0,
            supervisor,
            activity: 0,
            quiet: (0, 0),
        }
    }

    /// Whether this actor takes and sends deliveries: leased, enabled, not paused, not shutting
    /// down.
    fn active(&self) -> bool {
        self.leased && self.webhook.enabled && !self.webhook.paused && self.drain.is_none()
    }

    /// Nothing held, under way or scheduled, and nothing to resume: the actor may stop.
    fn is_idle(&self) -> bool {
        let settled = self.leased
            && self.window.is_empty()
            && self.settled.is_empty()
            && self.writes == 0
            && !self.fetching
            && !self.retries.reading()
            && !self.report_due
            && self.drain.is_none();
        let nothing_to_resume =
            !self.active() || (self.caught_up && self.circuit.failures == 0 && self.retries.waiting == 0);
        settled && nothing_to_resume
    }

    /// Runs every half `idle_stop_ms`: after two checks in a row that found the actor idle
    /// with no activity between them, it asks the supervisor to let it stop.
    fn check_idle(&mut self) {
        let (seen, checks) = self.quiet;
        let quiet = self.is_idle() && seen == self.activity;
        self.quiet = (self.activity, if quiet { checks.saturating_add(1) } else { 0 });
        if self.quiet.1 >= 2 {
            self.supervisor.idle(self.webhook.id, self.received);
        }
    }

    /// Calls `again` after [`REDIS_RETRY`] (a Redis call failed), counted so the self-check
    /// knows something is coming.
    fn after_redis_error(
        &mut self,
        ctx: &mut Context<Self>,
        again: impl FnOnce(&mut Self, &mut Context<Self>) + 'static,
    ) {
        self.redis_retries += 1;
        ctx.run_later(REDIS_RETRY, move |act, ctx| {
            act.redis_retries -= 1;
            again(act, ctx);
        });
    }

    /// Answers the shutdown waiters once nothing is under way any more.
    fn check_drained(&mut self) {
        let idle = self.window.is_empty() && self.settled.is_empty() && self.writes == 0;
        if idle {
            if let Some(waiters) = self.drain.as_mut() {
                for waiter in waiters.drain(..) {
                    let _ = waiter.send(());
                }
            }
        }
    }
}

impl Actor for DeliveryActor {
    type Context = Context<Self>;

    fn stopped(&mut self, _: &mut Context<Self>) {
        if self.circuit.open {
            metrics::gauge!(crate::metrics::CIRCUITS_OPEN).decrement(1.0);
        }
    }

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.client = Some(client::client(&self.config));
        let label = self.config.metric_labels.label(&self.webhook.id);
        self.attempt_metrics = Some(AttemptMetrics::new(label.as_deref()));
        if self.circuit.open {
            metrics::gauge!(crate::metrics::CIRCUITS_OPEN).increment(1.0);
        }
        let every = Duration::from_millis(self.config.settings.idle_stop_ms / 2);
        ctx.run_interval(every, |act, _| act.check_idle());
        self.start_audits(ctx);
        self.resume_counters(ctx);
        // Then the due set and the queue, once the lease is ours.
        self.acquire_lease(ctx);
    }
}

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

impl Handler<RetryNow> for DeliveryActor {
    type Result = ();

    fn handle(&mut self, _: RetryNow, ctx: &mut Context<Self>) {
        self.received += 1;
        self.activity += 1;
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
