//! The queue reader: moves events from the Redis stream to the supervisor, one batch at a time.
//!
//! Each cycle reads a batch with the consumer group (first this consumer's own pending entries,
//! left by a crash or a failed cycle, then new ones, blocking up to `block_ms`), classifies
//! every entry (valid event, malformed, deleted) and hands the batch to the supervisor, which
//! queues and acknowledges it atomically. The next cycle starts when that is done, so the reader
//! never holds more than one batch and never acknowledges anything itself.
//!
//! Failures never stop it: a malformed entry is set aside with its reason; a Redis error
//! drops the connection and retries with backoff (Redis down, loading or failing over is
//! logged once per outage, not once per cycle) (recreating the consumer group if Redis lost
//! it); a failed routing leaves the batch pending, and it is read again (at once when the
//! supervisor only had to catch up with webhook changes made on another instance).
//!
//! Each instance is its own consumer (by default the instance's name). Every 5 s the reader
//! takes over the entries another consumer has left pending for longer than `leases.ttl_ms`
//! (`XAUTOCLAIM`: that instance died between reading and routing them) and routes them as its
//! own, and removes consumers that have gone with nothing pending.

use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::prelude::*;
use redis::aio::MultiplexedConnection;

use super::status::{State, Status};
use super::supervisor::{IsReady, ReadEntry, RouteBatch, RouteFailure, Supervisor};
use crate::config::EventsSettings;
use crate::domain::Event;
use crate::store::{note_outage, RawEntry, Store, StoreError};

/// Raw values kept for a rejected entry (the reason says when it was cut).
const REJECTED_RAW_LIMIT: usize = 64 * 1024;
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// At most a second: a retry is one command, nothing for Redis, and a Redis back (or a new
/// primary promoted) is read from within a second, not after a doubling wait of several.
const BACKOFF_MAX: Duration = Duration::from_secs(1);
/// How often entries left pending by consumers that have gone are looked for.
const RECLAIM_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum ReaderState {
    Starting = 0,
    Running = 1,
    /// Redis is unreachable, or routing failed; retrying with backoff.
    Reconnecting = 2,
    Stopped = 3,
}

impl ReaderState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReaderState::Starting => "starting",
            ReaderState::Running => "running",
            ReaderState::Reconnecting => "reconnecting",
            ReaderState::Stopped => "stopped",
        }
    }
}

impl State for ReaderState {
    const ALL: &'static [ReaderState] = &[
        ReaderState::Starting,
        ReaderState::Running,
        ReaderState::Reconnecting,
        ReaderState::Stopped,
    ];
    fn code(self) -> u8 {
        self as u8
    }
}

/// The reader's state, for `/health` (counts of entries read and rejected are metrics).
pub type ReaderStatus = Status<ReaderState>;

/// Run one read cycle (self-sent).
#[derive(Message)]
#[rtype(result = "()")]
struct Poll;

/// Stop after the current cycle. Answers once the reader has stopped reading.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopReading;

pub struct QueueReader {
    store: Store,
    settings: EventsSettings,
    /// This instance's consumer name in the group.
    consumer: Arc<str>,
    /// How long another consumer's entry must have been pending before it is taken over.
    reclaim_idle: Duration,
    /// When entries left pending by gone consumers were last looked for.
    reclaimed_at: Instant,
    supervisor: Addr<Supervisor>,
    status: Arc<ReaderStatus>,
    /// The blocking-read connection; None until (re)connected.
    conn: Option<MultiplexedConnection>,
    /// This consumer's pending entries have all been routed; read new ones.
    pending_done: bool,
    backoff: Duration,
    stopping: bool,
}

/// How a cycle failed, and whether its connection is still usable.
struct CycleError {
    conn: Option<MultiplexedConnection>,
    message: String,
    /// Nothing is wrong: the supervisor caught up with webhook changes; read the batch again
    /// at once.
    again: bool,
    /// Redis cannot serve now (down, loading, failing over): logged once per outage already.
    noted: bool,
}

impl CycleError {
    fn failed(conn: Option<MultiplexedConnection>, message: impl Into<String>) -> CycleError {
        CycleError {
            conn,
            message: message.into(),
            again: false,
            noted: false,
        }
    }

    /// A Redis call failed: the connection is dropped; an outage is noted once.
    fn redis(error: StoreError) -> CycleError {
        let noted = error
            .unavailable()
            .map(|reason| note_outage(reason, "the event reader", &error));
        CycleError {
            noted: noted.is_some(),
            ..CycleError::failed(None, error.to_string())
        }
    }
}

/// How a cycle ended.
enum Cycle {
    /// Read (and routed) this many entries.
    Read(MultiplexedConnection, usize),
    /// The supervisor has not loaded the webhooks yet; nothing was read.
    NotReady(Option<MultiplexedConnection>),
}

impl QueueReader {
    /// `(consumer, reclaim_idle)`: this instance's consumer name, and how long another's entry
    /// must have been pending before this one takes it over.
    pub fn new(
        store: Store,
        settings: EventsSettings,
        (consumer, reclaim_idle): (Arc<str>, Duration),
        supervisor: Addr<Supervisor>,
        status: Arc<ReaderStatus>,
    ) -> QueueReader {
        QueueReader {
            store,
            settings,
            consumer,
            reclaim_idle,
            reclaimed_at: Instant::now(),
            supervisor,
            status,
            conn: None,
            pending_done: false,
            backoff: BACKOFF_MIN,
            stopping: false,
        }
    }

    fn after_cycle(&mut self, result: Result<Cycle, CycleError>, ctx: &mut Context<Self>) {
        match result {
            Ok(Cycle::NotReady(conn)) => {
                self.conn = conn;
                ctx.notify_later(Poll, BACKOFF_MIN);
            }
            Ok(Cycle::Read(conn, read)) => {
                self.conn = Some(conn);
                self.backoff = BACKOFF_MIN;
                self.status.set(ReaderState::Running);
                if read == 0 {
                    self.pending_done = true;
                }
                ctx.notify(Poll);
            }
            Err(CycleError {
                conn,
                message,
                again: true,
                ..
            }) => {
                tracing::debug!(%message, "routing the batch again");
                self.conn = conn;
                self.pending_done = false;
                ctx.notify(Poll);
            }
            Err(CycleError {
                conn, message, noted, ..
            }) => {
                if !noted {
                    tracing::warn!(error = %message, retry_in_ms = self.backoff.as_millis() as u64, "event reader cycle failed");
                }
                self.conn = conn;
                // Whatever this cycle read is pending now: read it again first.
                self.pending_done = false;
                self.status.set(ReaderState::Reconnecting);
                ctx.notify_later(Poll, self.backoff);
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// The part of an entry a rejection names (a bounded set, for a metrics label).
fn rejected_part(reason: &str) -> &'static str {
    match reason.split(':').next() {
        Some("event") => "event",
        Some("ev") => "ev",
        Some("time") => "time",
        Some("user") => "user",
        _ => "entry",
    }
}

/// Sorts raw stream entries into what the supervisor routes.
fn classify(entries: Vec<RawEntry>, max_bytes: usize) -> Vec<ReadEntry> {
    entries
        .into_iter()
        .map(|entry| {
            if entry.deleted {
                return ReadEntry::Gone(entry.id);
            }
            let Some(raw) = entry.event else {
                return ReadEntry::Rejected {
                    id: entry.id,
                    reason: "entry has no `event` field".into(),
                    raw: Vec::new(),
                };
            };
            match Event::parse(&raw, max_bytes) {
                Ok(event) => ReadEntry::Valid(entry.id, event),
                Err(error) => {
                    let mut reason = error.to_string();
                    let mut raw = raw;
                    if raw.len() > REJECTED_RAW_LIMIT {
                        raw.truncate(REJECTED_RAW_LIMIT);
                        reason.push_str(" (raw value cut to its first 64 KiB)");
                    }
                    ReadEntry::Rejected {
                        id: entry.id,
                        reason,
                        raw,
                    }
                }
            }
        })
        .collect()
}

impl Actor for QueueReader {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.notify(Poll);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.status.set(ReaderState::Stopped);
    }
}

impl Handler<Poll> for QueueReader {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: Poll, ctx: &mut Context<Self>) -> Self::Result {
        if self.stopping {
            ctx.stop();
            return AtomicResponse::new(Box::pin(fut::ready(())));
        }
        let store = self.store.clone();
        let supervisor = self.supervisor.clone();
        let settings = self.settings.clone();
        let consumer = self.consumer.clone();
        let conn = self.conn.take();
        let mut pending = !self.pending_done;
        let block = Duration::from_millis(settings.block_ms);
        let reclaim = (self.reclaimed_at.elapsed() >= RECLAIM_EVERY).then_some(self.reclaim_idle);
        if reclaim.is_some() {
            self.reclaimed_at = Instant::now();
        }
        let cycle = async move {
            if !matches!(supervisor.send(IsReady).await, Ok(true)) {
                // The supervisor has not loaded the webhooks yet (Redis may be down).
                return Ok(Cycle::NotReady(conn));
            }
            let events = store.events();
            let mut conn = match conn {
                Some(conn) => conn,
                None => {
                    let conn = store.blocking_connection(block).await.map_err(CycleError::redis)?;
                    events.ensure_group().await.map_err(CycleError::redis)?;
                    conn
                }
            };
            if let Some(idle) = reclaim {
                match events.reclaim(&consumer, idle, settings.batch_size).await {
                    Ok(0) => {}
                    Ok(taken) => {
                        tracing::warn!(
                            entries = taken,
                            "took over events another instance read but never routed"
                        );
                        pending = true;
                    }
                    Err(error) => tracing::debug!(%error, "looking for abandoned entries failed"),
                }
            }
            let read = events
                .read(&mut conn, &consumer, pending, settings.batch_size, settings.block_ms)
                .await;
            let entries = match read {
                Ok(entries) => entries,
                Err(StoreError::Redis(e)) if e.code() == Some("NOGROUP") => {
                    // Redis lost the group (restarted without data): make it again.
                    let made = events.ensure_group().await;
                    let message = "the consumer group was missing; recreated it";
                    return Err(CycleError::failed(made.is_ok().then_some(conn), message));
                }
                Err(e) => {
                    // The primary may have moved (a failover): the next connection follows it.
                    store.failed(&e).await;
                    return Err(CycleError::redis(e));
                }
            };
            let count = entries.len();
            if count == 0 {
                return Ok(Cycle::Read(conn, 0));
            }
            let batch = classify(entries, settings.max_bytes);
            let rejected_parts: Vec<&'static str> = batch
                .iter()
                .filter_map(|entry| match entry {
                    ReadEntry::Rejected { reason, .. } => Some(rejected_part(reason)),
                    _ => None,
                })
                .collect();
            let route = RouteBatch {
                entries: batch,
                consumer,
            };
            match supervisor.send(route).await {
                Ok(Ok(_)) => {
                    metrics::counter!(crate::metrics::EVENTS_READ).increment(count as u64);
                    for part in rejected_parts {
                        metrics::counter!(crate::metrics::EVENTS_REJECTED, "part" => part).increment(1);
                    }
                    Ok(Cycle::Read(conn, count))
                }
                Ok(Err(RouteFailure::Stale)) => Err(CycleError {
                    again: true,
                    ..CycleError::failed(Some(conn), RouteFailure::Stale.to_string())
                }),
                Ok(Err(failure)) => Err(CycleError::failed(Some(conn), format!("routing failed: {failure}"))),
                Err(mailbox) => Err(CycleError::failed(
                    Some(conn),
                    format!("supervisor unavailable: {mailbox}"),
                )),
            }
        };
        AtomicResponse::new(Box::pin(
            cycle
                .into_actor(self)
                .map(|result, act, ctx| act.after_cycle(result, ctx)),
        ))
    }
}

impl Handler<StopReading> for QueueReader {
    type Result = ();

    fn handle(&mut self, _: StopReading, ctx: &mut Context<Self>) {
        self.stopping = true;
        ctx.stop();
    }
}
