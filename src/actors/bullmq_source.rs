//! The BullMQ source: moves WildDuck's jobs from its BullMQ queue into the event stream.
//!
//! WildDuck publishes every event as a BullMQ job on `wd:bull:webhooks`. This actor takes
//! those jobs as a BullMQ worker would and appends each job's data, unchanged, to `P:events`
//! (see [`crate::store::BullMqQueue`] for how, in both placements). From there a job is an
//! event like any producer's: the queue reader validates it (a job that is not a valid event
//! goes to `P:rejected` with its reason), the supervisor routes it, delivery actors sign and
//! send it. The actor never parses jobs itself, so there is one validation path.
//!
//! Each cycle waits on BullMQ's marker (a blocking pop, up to `[bullmq] block_ms`, shorter
//! when a delayed job is due sooner; skipped when the last step left jobs), then moves at
//! most `[bullmq] batch_size` jobs. One cycle runs at a time. Failures never stop it: Redis
//! errors back off and retry; in the other-Redis mode a batch claimed but not yet removed is
//! kept and finished first, so a transient error costs no duplicate.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use redis::aio::MultiplexedConnection;

use super::status::{State, Status};
use crate::config::BullMqSettings;
use crate::domain::StreamId;
use crate::store::{note_outage, BullMqQueue, Job, Placement, QueueState, StoreError};

const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// At most a second: a retry is one command, nothing for Redis, and a Redis back (or a new
/// primary promoted) is read from within a second, not after a doubling wait of several.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum SourceState {
    Starting = 0,
    Running = 1,
    /// The BullMQ queue is paused (`queue.pause()`): nothing is taken until it resumes.
    Paused = 2,
    /// Redis is unreachable; retrying with backoff.
    Reconnecting = 3,
    Stopped = 4,
}

impl SourceState {
    pub fn as_str(self) -> &'static str {
        match self {
            SourceState::Starting => "starting",
            SourceState::Running => "running",
            SourceState::Paused => "paused",
            SourceState::Reconnecting => "reconnecting",
            SourceState::Stopped => "stopped",
        }
    }
}

impl State for SourceState {
    const ALL: &'static [SourceState] = &[
        SourceState::Starting,
        SourceState::Running,
        SourceState::Paused,
        SourceState::Reconnecting,
        SourceState::Stopped,
    ];
    fn code(self) -> u8 {
        self as u8
    }
}

/// The source's state, for `/health`.
pub type SourceStatus = Status<SourceState>;

/// Run one cycle (self-sent).
#[derive(Message)]
#[rtype(result = "()")]
struct Poll;

/// Stop after the current cycle (a batch under way is finished first).
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopSource;

/// Other-Redis mode: jobs claimed in BullMQ, and their stream entries once appended.
struct Held {
    jobs: Vec<Job>,
    entries: Option<Vec<StreamId>>,
}

/// What a cycle hands back to the actor, whatever happened.
struct Carry {
    conn: Option<MultiplexedConnection>,
    placement: Option<Placement>,
    held: Option<Held>,
}

pub struct BullMqSource {
    queue: BullMqQueue,
    settings: BullMqSettings,
    status: Arc<SourceStatus>,
    /// This process's lock token in BullMQ (other-Redis mode), as each BullMQ worker has one.
    token: Arc<str>,
    carry: Option<Carry>,
    /// The last step left jobs (or a held batch): go again without waiting.
    more: bool,
    /// When the next delayed job is due, so the wait ends in time for it.
    next_due_ms: Option<u64>,
    backoff: Duration,
    stopping: bool,
}

impl BullMqSource {
    pub fn new(queue: BullMqQueue, settings: BullMqSettings, status: Arc<SourceStatus>) -> BullMqSource {
        BullMqSource {
            queue,
            settings,
            status,
            token: Arc::from(format!("hookrouter-{:016x}", rand::random::<u64>())),
            carry: Some(Carry {
                conn: None,
                placement: None,
                held: None,
            }),
            more: false,
            next_due_ms: None,
            backoff: BACKOFF_MIN,
            stopping: false,
        }
    }

    /// How long this cycle waits for the marker: none when jobs are known to be left.
    fn wait(&self) -> Option<Duration> {
        if self.more {
            return None;
        }
        let block = Duration::from_millis(self.settings.block_ms);
        match self.next_due_ms {
            Some(due) => {
                let now = crate::clock::now_ms();
                (due > now).then(|| block.min(Duration::from_millis(due - now)))
            }
            None => Some(block),
        }
    }

    fn after_cycle(&mut self, carry: Carry, result: Result<(usize, QueueState), StoreError>, ctx: &mut Context<Self>) {
        let held = carry.held.is_some();
        self.carry = Some(carry);
        match result {
            Ok((moved, state)) => {
                if moved > 0 {
                    metrics::counter!(crate::metrics::BULLMQ_JOBS).increment(moved as u64);
                }
                let previous = self.status.state();
                let now = if state.paused {
                    SourceState::Paused
                } else {
                    SourceState::Running
                };
                if previous != now {
                    tracing::info!(queue = self.queue.name(), state = now.as_str(), "BullMQ source");
                }
                self.status.set(now);
                metrics::counter!(crate::metrics::BULLMQ_CYCLES, "state" => now.as_str()).increment(1);
                self.backoff = BACKOFF_MIN;
                self.more = state.more || held;
                self.next_due_ms = state.next_due_ms;
                ctx.notify(Poll);
            }
            Err(error) => {
                // Redis restarting, loading or failing over: wait for it, logged once per outage.
                match error.unavailable() {
                    Some(reason) => {
                        note_outage(reason, "the BullMQ source", &error);
                    }
                    None => tracing::warn!(%error, queue = self.queue.name(),
                        retry_in_ms = self.backoff.as_millis() as u64, "BullMQ source cycle failed"),
                }
                self.status.set(SourceState::Reconnecting);
                self.more = held;
                ctx.notify_later(Poll, self.backoff);
                self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

/// One cycle: finish a held batch, or wait for the marker and move a batch.
async fn cycle(
    queue: BullMqQueue,
    settings: BullMqSettings,
    token: Arc<str>,
    mut carry: Carry,
    wait: Option<Duration>,
) -> (Carry, Result<(usize, QueueState), StoreError>) {
    let placement = match carry.placement {
        Some(placement) => placement,
        None => match queue.placement().await {
            Ok(placement) => {
                tracing::info!(queue = queue.name(), ?placement, "BullMQ source started");
                carry.placement = Some(placement);
                placement
            }
            Err(e) => return (carry, Err(e)),
        },
    };
    if let Some(held) = carry.held.take() {
        let moved = held.jobs.len();
        // Whatever else waits is taken by the next cycle, without waiting for the marker.
        let more = QueueState {
            more: true,
            ..QueueState::default()
        };
        return match finish(&queue, &token, held).await {
            Ok(()) => (carry, Ok((moved, more))),
            Err((held, e)) => {
                carry.held = Some(held);
                (carry, Err(e))
            }
        };
    }
    if let Some(timeout) = wait {
        let conn = match carry.conn.take() {
            Some(conn) => conn,
            None => match queue
                .blocking_connection(Duration::from_millis(settings.block_ms))
                .await
            {
                Ok(conn) => conn,
                Err(e) => return (carry, Err(e)),
            },
        };
        let mut conn = conn;
        match queue.wait(&mut conn, timeout).await {
            Ok(_) => carry.conn = Some(conn),
            Err(e) => return (carry, Err(e)),
        }
    }
    match placement {
        Placement::SameRedis => {
            let taken = queue.take(settings.batch_size, settings.lock_ms).await;
            (carry, taken)
        }
        Placement::OtherRedis => {
            let (jobs, state) = match queue.claim(settings.batch_size, settings.lock_ms, &token).await {
                Ok(claimed) => claimed,
                Err(e) => return (carry, Err(e)),
            };
            let moved = jobs.len();
            if moved == 0 {
                return (carry, Ok((0, state)));
            }
            match finish(&queue, &token, Held { jobs, entries: None }).await {
                Ok(()) => (carry, Ok((moved, state))),
                Err((held, e)) => {
                    carry.held = Some(held);
                    (carry, Err(e))
                }
            }
        }
    }
}

/// Other-Redis mode, steps 2 and 3: append the claimed jobs to the event stream (unless done
/// already), then remove them from BullMQ. On failure the batch comes back, to be retried.
async fn finish(queue: &BullMqQueue, token: &str, mut held: Held) -> Result<(), (Held, StoreError)> {
    // Entries kept from an earlier try were confirmed then (only the removal failed).
    let mark = queue.before_write();
    let entries = match held.entries.take() {
        Some(entries) => entries,
        None => match queue.publish(&held.jobs).await {
            Ok(entries) => entries,
            Err(e) => return Err((held, e)),
        },
    };
    // The jobs leave BullMQ only once their stream entries would survive a failover of our
    // Redis ([redis] min_replicas_acked). If not, they are appended again on the retry (the
    // entries may be gone with a failed primary): a duplicate, never a loss.
    if let Err(e) = queue.replicated(mark).await {
        return Err((held, e));
    }
    match queue.finish(&held.jobs, &entries, token).await {
        Ok(ours) => {
            if ours < held.jobs.len() {
                tracing::warn!(
                    queue = queue.name(),
                    jobs = held.jobs.len(),
                    lost_lock = held.jobs.len() - ours,
                    "claimed BullMQ jobs outlived their lock ([bullmq] lock_ms): some may have been taken twice"
                );
            }
            Ok(())
        }
        Err(e) => {
            held.entries = Some(entries);
            Err((held, e))
        }
    }
}

impl Actor for BullMqSource {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        ctx.notify(Poll);
    }

    fn stopped(&mut self, _: &mut Context<Self>) {
        self.status.set(SourceState::Stopped);
    }
}

impl Handler<Poll> for BullMqSource {
    type Result = AtomicResponse<Self, ()>;

    fn handle(&mut self, _: Poll, ctx: &mut Context<Self>) -> Self::Result {
        let carry = match self.carry.take() {
            Some(carry) if !self.stopping => carry,
            carry => {
                self.carry = carry;
                ctx.stop();
                return AtomicResponse::new(Box::pin(fut::ready(())));
            }
        };
        let step = cycle(
            self.queue.clone(),
            self.settings.clone(),
            self.token.clone(),
            carry,
            self.wait(),
        );
        AtomicResponse::new(Box::pin(
            step.into_actor(self)
                .map(|(carry, result), act, ctx| act.after_cycle(carry, result, ctx)),
        ))
    }
}

impl Handler<StopSource> for BullMqSource {
    type Result = ();

    fn handle(&mut self, _: StopSource, ctx: &mut Context<Self>) {
        self.stopping = true;
        if self.carry.as_ref().is_some_and(|c| c.held.is_some()) {
            tracing::warn!(
                queue = self.queue.name(),
                "stopping with claimed BullMQ jobs not yet removed: they go back to wait when their lock expires"
            );
        }
        ctx.stop();
    }
}
