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
//! The parts: `messages` (what it is told), `setup` (what it starts with), `window` (taking
//! entries, sending), `retries` (the due set), `outcome` (what an attempt's result does),
//! `circuit` (the breaker), `pacing` (adaptive concurrency, the receiver's pause, rate limits),
//! `hosts` (the per-host connection cap), `audit` (the self-check of its invariants), `report`
//! (health), `rates` (the last 5 minutes' counts and latency), `upkeep` (what a flush writes
//! besides attempts), `sender` (HTTP), `client` (the per-thread HTTP client: SSRF-guarded
//! resolver, TLS, keep-alive), `failure` (transport errors in words), `backoff` (retry delays).

mod audit;
mod backoff;
mod circuit;
mod client;
mod failure;
mod health;
mod hosts;
mod lease;
mod messages;
mod outcome;
mod pacing;
mod rates;
mod reads;
mod report;
mod resync;
mod retries;
mod sender;
mod setup;
mod slots;
mod trail;
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
pub use health::{FlowReport, HealthReport, HealthState, LastFailure, LastSuccess};
use hosts::Holder;
pub use hosts::{all_figures as host_figures, set_thread as set_delivery_thread};
pub use messages::{CheckQueue, Configure, Drain, Enqueued, GetHealth, RetryNow, Stop};
use pacing::Pacing;
pub use rates::RecentRates;
pub use report::{GetGlance, Glance};
use retries::Retries;
pub use setup::{DeliveryConfig, StartState};
use slots::Window;
use upkeep::Upkeep;

use crate::actors::supervisor::SupervisorLink;
use crate::domain::{Ordering, RateLimit, Signers, StreamId, Webhook};
use crate::metrics::AttemptMetrics;
use crate::store::{note_outage, Lease, LeaseStore, QueueStore, Settled, Store, StoreError, WebhookStore};

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
    /// Deliveries being sent, by queue entry id; at most `max_in_flight`, and the adaptive
    /// limit (`pacing`). Each holds a permit of the host (`hosts`).
    window: Window,
    /// Its standing at its host's connection cap: permits held = the window's, plus those
    /// taken for a read under way.
    host: Holder,
    /// Queued at the host for a permit: a [`HostRoom`] will come.
    host_wait: bool,
    /// The adaptive concurrency limit, the receiver's pause, the rate limit.
    pacing: Pacing,
    /// Set while the rate limit or a pause holds attempts back: calls `fill` when they may go.
    pace_timer: Option<SpawnHandle>,
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
    /// `store::redis_lapses` when the actor last learnt its queue: when it moves on, Redis
    /// went away meanwhile and may have lost writes, and the actor starts over (`resync`).
    lapses_seen: u64,
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
    /// The last steps (reads, hand-overs, rewinds, outcomes), printed with a violation.
    trail: trail::Trail,
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
        let pacing = Pacing::new(
            config.settings.initial_concurrency,
            config.settings.max_in_flight,
            webhook.delivery.rate_limit.map(RateLimit::per_second),
        );
        DeliveryActor {
            host: Holder::new(hosts::host_key(webhook.url.url())),
            host_wait: false,
            pacing,
            pace_timer: None,
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
            lapses_seen: 0,
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
            trail: trail::Trail::default(),
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

    /// Delivers one at a time in stream order (`ordering: "strict"`).
    fn strict(&self) -> bool {
        self.webhook.delivery.ordering == Ordering::Strict
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

    /// Logs a failed Redis call: a warning, unless Redis cannot serve now (down, loading,
    /// failing over), which is logged once per outage for every actor together. Either way
    /// the call is tried again; it is no delivery failure.
    fn redis_failed(&self, error: &StoreError, what: &str) {
        match error.unavailable() {
            Some(reason) => {
                note_outage(reason, "the delivery actors", error);
            }
            None => tracing::warn!(webhook = %self.webhook.id, %error, "{what}"),
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
        // Whatever it held, or was handed in a message it will not read.
        self.host.leave();
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
