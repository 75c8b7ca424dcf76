//! A BullMQ queue as a source of events: WildDuck's `wd:bull:webhooks`, read the way a BullMQ
//! worker would, written into hookrouter's event stream.
//!
//! Two placements, found at start by asking both connections for the server's `run_id` and
//! comparing databases ([`BullMqQueue::placement`]):
//!
//! * **Same Redis** (the usual case: `[bullmq] url` empty): one script
//!   (`scripts/bullmq_take.lua`) pops a batch of job ids, appends each job's data to
//!   `P:events` and removes the job, atomically. A job is in exactly one of the two places at
//!   any moment, whatever crashes and however many instances run it concurrently.
//! * **Another Redis**: nothing spans two servers, so it is BullMQ's own protocol: claim a
//!   batch into BullMQ's `active` list under a lock holding this instance's token
//!   (`bullmq_claim.lua`), append the data to `P:events`, then remove the jobs
//!   (`bullmq_finish.lua`). A crash between the append and the removal leaves claimed jobs
//!   whose lock expires; the stalled-job check puts them back in `wait` and they are appended
//!   again: at least once, with at most one batch of duplicates per crash.
//!
//! Both run BullMQ's stalled-job check (so jobs a dead WildDuck worker left in `active` come
//! back too), promote due delayed jobs, take prioritized jobs after waiting ones, and leave a
//! paused queue alone. BullMQ's key layout is in [`super::keys`]; the Lua in
//! `scripts/bullmq_lib.lua` restates BullMQ's own rules for it.

use std::sync::LazyLock;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{Script, Value};

use super::reply::bytes;
use super::{BullMqKeys, Store, StoreError, StoreResult, WriteMark};
use crate::config::{BullMqSettings, RedisSettings};
use crate::domain::StreamId;

static TAKE: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/bullmq_lib.lua"),
        include_str!("scripts/bullmq_take.lua")
    ))
});
static CLAIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/bullmq_lib.lua"),
        include_str!("scripts/bullmq_claim.lua")
    ))
});
static FINISH: LazyLock<Script> = LazyLock::new(|| {
    Script::new(concat!(
        include_str!("scripts/bullmq_lib.lua"),
        include_str!("scripts/bullmq_finish.lua")
    ))
});

/// Where the BullMQ queue lives relative to hookrouter's keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// The same Redis server and database: jobs move atomically.
    SameRedis,
    /// Elsewhere: jobs move at least once.
    OtherRedis,
}

/// What a take or a claim found besides jobs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueState {
    /// The queue is paused (`queue.pause()`): nothing was taken.
    pub paused: bool,
    /// Jobs are left to take right away.
    pub more: bool,
    /// When the next delayed job is due (ms since the epoch).
    pub next_due_ms: Option<u64>,
}

/// A claimed job (other-Redis mode).
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    /// The job's `data`: the event as WildDuck published it.
    pub data: Vec<u8>,
}

#[derive(Clone)]
pub struct BullMqQueue {
    /// BullMQ's Redis: hookrouter's own store when `[bullmq] url` is empty.
    bull: Store,
    ours: Store,
    keys: BullMqKeys,
}

impl BullMqQueue {
    /// Connects lazily, like [`Store::new`].
    pub fn new(ours: &Store, settings: &BullMqSettings, redis: &RedisSettings) -> StoreResult<BullMqQueue> {
        let bull = if settings.url.is_empty() || settings.url == redis.url {
            ours.clone()
        } else {
            Store::new(&RedisSettings {
                url: settings.url.clone(),
                // BullMQ's own Redis is at its URL: the sentinels name hookrouter's primary.
                sentinels: Vec::new(),
                ..redis.clone()
            })?
        };
        Ok(BullMqQueue {
            bull,
            ours: ours.clone(),
            keys: BullMqKeys::new(&settings.prefix, &settings.queue),
        })
    }

    /// `<prefix>:<queue>`, for logs.
    pub fn name(&self) -> &str {
        self.keys.base().trim_end_matches(':')
    }

    /// Same server (by `run_id`) and same database as hookrouter's keys, or not.
    pub async fn placement(&self) -> StoreResult<Placement> {
        let ours = run_id(&self.ours).await?;
        let bull = run_id(&self.bull).await?;
        let db = |store: &Store| store.db();
        Ok(if ours == bull && db(&self.ours) == db(&self.bull) {
            Placement::SameRedis
        } else {
            Placement::OtherRedis
        })
    }

    /// A connection to BullMQ's Redis for [`BullMqQueue::wait`].
    pub async fn blocking_connection(&self, block: Duration) -> StoreResult<MultiplexedConnection> {
        self.bull.blocking_connection(block).await
    }

    /// Waits up to `timeout` for BullMQ's marker (`BZPOPMIN`, as BullMQ workers wait): it is
    /// set when a job is added to a running queue, and when one is left after a take. True
    /// when one was popped.
    pub async fn wait(&self, conn: &mut MultiplexedConnection, timeout: Duration) -> StoreResult<bool> {
        let popped: Value = redis::cmd("BZPOPMIN")
            .arg(self.keys.marker())
            .arg(timeout.as_secs_f64().max(0.01))
            .query_async(conn)
            .await?;
        Ok(!matches!(popped, Value::Nil))
    }

    /// Same-Redis mode: moves up to `batch` jobs into the event stream atomically; how many.
    pub async fn take(&self, batch: usize, stalled_interval_ms: u64) -> StoreResult<(usize, QueueState)> {
        let mut invocation = TAKE.prepare_invoke();
        invocation
            .key(&self.keys.script_keys()[..])
            .key(self.ours.keys().events())
            .arg(self.keys.base())
            .arg(crate::clock::now_ms())
            .arg(batch)
            .arg(stalled_interval_ms);
        let mut conn = self.bull.conn.clone();
        let reply: Vec<Value> = invocation.invoke_async(&mut conn).await?;
        let moved = integer(&reply, 0)?;
        Ok((moved.max(0) as usize, state(&reply, 1)?))
    }

    /// Other-Redis mode, step 1: claims up to `batch` jobs for `lock_ms` under `token`.
    pub async fn claim(&self, batch: usize, lock_ms: u64, token: &str) -> StoreResult<(Vec<Job>, QueueState)> {
        let mut invocation = CLAIM.prepare_invoke();
        invocation
            .key(&self.keys.script_keys()[..])
            .arg(self.keys.base())
            .arg(crate::clock::now_ms())
            .arg(batch)
            .arg(lock_ms)
            .arg(token);
        let mut conn = self.bull.conn.clone();
        let reply: Vec<Value> = invocation.invoke_async(&mut conn).await?;
        let state = state(&reply, 0)?;
        let jobs = reply[3..]
            .chunks(2)
            .map(|pair| {
                let text = |v: Option<&Value>| v.and_then(bytes).map(<[u8]>::to_vec);
                match (text(pair.first()), text(pair.get(1))) {
                    (Some(id), Some(data)) => Ok(Job {
                        id: String::from_utf8_lossy(&id).into_owned(),
                        data,
                    }),
                    _ => Err(StoreError::Corrupt(
                        "claim script returned a job without id or data".into(),
                    )),
                }
            })
            .collect::<StoreResult<Vec<Job>>>()?;
        Ok((jobs, state))
    }

    /// Other-Redis mode, step 2: appends the jobs' data to hookrouter's event stream.
    pub async fn publish(&self, jobs: &[Job]) -> StoreResult<Vec<StreamId>> {
        let raws: Vec<Vec<u8>> = jobs.iter().map(|job| job.data.clone()).collect();
        self.ours.events().append(&raws).await
    }

    /// Other-Redis mode, between steps 2 and 3: waits until hookrouter's Redis has the
    /// appended entries on `[redis] min_replicas_acked` replicas ([`Store::replicated`]).
    pub async fn replicated(&self, mark: WriteMark) -> StoreResult<()> {
        self.ours.replicated(mark).await
    }

    /// Taken before the entries are appended, for [`Self::replicated`].
    pub fn before_write(&self) -> WriteMark {
        self.ours.before_write()
    }

    /// Other-Redis mode, step 3: removes published jobs from BullMQ; returns how many were
    /// still held under our lock (fewer means some lock expired: they may be appended twice).
    pub async fn finish(&self, jobs: &[Job], entries: &[StreamId], token: &str) -> StoreResult<usize> {
        let mut invocation = FINISH.prepare_invoke();
        invocation
            .key(&self.keys.script_keys()[..])
            .arg(self.keys.base())
            .arg(crate::clock::now_ms())
            .arg(token);
        for (job, entry) in jobs.iter().zip(entries) {
            invocation.arg(&job.id).arg(entry.to_string());
        }
        let mut conn = self.bull.conn.clone();
        let ours: i64 = invocation.invoke_async(&mut conn).await?;
        Ok(ours.max(0) as usize)
    }
}

async fn run_id(store: &Store) -> StoreResult<String> {
    let mut conn = store.conn.clone();
    let info: String = redis::cmd("INFO").arg("server").query_async(&mut conn).await?;
    info.lines()
        .find_map(|line| line.strip_prefix("run_id:"))
        .map(|id| id.trim().to_string())
        .ok_or_else(|| StoreError::Corrupt("INFO server has no run_id".into()))
}

fn integer(reply: &[Value], at: usize) -> StoreResult<i64> {
    match reply.get(at) {
        Some(Value::Int(n)) => Ok(*n),
        other => Err(StoreError::Corrupt(format!("BullMQ script returned {other:?} at {at}"))),
    }
}

/// `paused, more, next_due` from position `at` of a script's reply.
fn state(reply: &[Value], at: usize) -> StoreResult<QueueState> {
    let next_due = integer(reply, at + 2)?;
    Ok(QueueState {
        paused: integer(reply, at)? == 1,
        more: integer(reply, at + 1)? == 1,
        next_due_ms: (next_due >= 0).then_some(next_due as u64),
    })
}
