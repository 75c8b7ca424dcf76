//! One webhook's queue of pending deliveries and what happens to its entries.
//!
//! The queue `P:queue:<id>` is a stream: the fan-out appends to it, the webhook's delivery
//! actor reads its *fresh* entries (never tried) in order, and deletes an entry only on a final
//! outcome (delivered, dead-lettered). An entry that failed gets retry state in `P:retry:<id>`
//! (attempts made, when it is due, when it first failed) and waits in the due set `P:due:<id>`
//! ordered by due time (`retries.rs`), out of the actor's memory; queue reads skip it.
//! The current run of failures is in `P:circuit:<id>`, so a restart resumes the backoff and
//! the circuit instead of starting them over. Every attempt also lands in the webhook's capped
//! attempt log. Every write is fenced by the webhook's lease (`leases.rs`): it happens only
//! while the writer's instance holds it, so a delivery finishing after its webhook was deleted,
//! or after another instance took it over, leaves nothing behind.

use std::sync::{Arc, LazyLock};

use super::RedisConn;
use redis::{Script, Value};

use super::attempts::AttemptRecord;
use super::reply::{bytes, entries, Entry};
use super::{Keys, Lease, StoreError, StoreResult};
use crate::domain::{EventType, PreparedEvent, StreamId, WebhookId};

static SETTLE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/settle.lua")));
static HEALTH_SAVE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/health_save.lua")));

/// A queue entry, ready to deliver.
#[derive(Debug, Clone)]
pub struct QueuedDelivery {
    /// The entry's id in the webhook's queue.
    pub entry: StreamId,
    pub event: Arc<PreparedEvent>,
    /// Attempts already made that count towards `max_attempts` (0 for a fresh entry).
    pub attempts: u32,
    /// Attempts already made that did not count: the receiver was overloaded (a 429, 503, a
    /// refused or reset connection, a timeout) while it answered others (`outcome::settle`).
    pub spared: u32,
    /// When it first failed (ms), for an entry that was tried before: the circuit breaker
    /// asks whether the endpoint succeeded since.
    pub first_failure_ms: Option<u64>,
    /// The replay that queued it (its number; field `r` of the entry), so its delivery counts
    /// towards that replay's progress (`replays.rs`). None for what the fan-out queued.
    pub replay: Option<u64>,
}

/// Whether a read of the queue must look up the retry state of what it reads.
///
/// Only entries that were in the queue when the reader's cursor was last reset (actor start,
/// resume) can have been tried before: everything after them was queued later and is fresh by
/// construction. So the reader looks up retry state only up to the queue's last entry at the
/// reset, and not at all when no entry had retry state then.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryLookup {
    /// The entries to read were never tried: no lookup.
    Skip,
    /// Look up the retry state of the entries read.
    Look,
    /// Look up, and learn how far entries may have been tried ([`Fetched::tried_up_to`]): the
    /// first read after the cursor was reset.
    LookAndLearn,
}

/// What a read of the queue's fresh entries found.
#[derive(Debug, Default)]
pub struct Fetched {
    /// Fresh entries, in queue order.
    pub deliveries: Vec<QueuedDelivery>,
    /// The last entry read (fresh or not): the next read starts after it.
    pub last: Option<StreamId>,
    /// Entries read, skipped ones (waiting for a retry, unreadable) included.
    pub read: usize,
    /// For [`RetryLookup::LookAndLearn`]: the queue's last entry if any entry had retry state
    /// (`Some(Some(tail))`), or `Some(None)` when none had.
    pub tried_up_to: Option<Option<StreamId>>,
    /// The first entry skipped for its retry state (it waits in the due set), for the actor's
    /// trail.
    pub first_with_state: Option<StreamId>,
}

/// A webhook's run of failures, kept so a restart does not forget an open circuit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct CircuitState {
    pub failures: u32,
    /// When the run of failures began (ms).
    pub since_ms: u64,
}

/// The most outcomes one flush writes (one `settle.lua` call, which refuses more before
/// writing anything): a bigger batch is written in several flushes.
pub const MAX_SETTLED: usize = 256;

/// A finished attempt, as a flush records it.
#[derive(Debug, Clone)]
pub struct Settled {
    pub entry: StreamId,
    pub record: AttemptRecord,
    pub after: AfterAttempt,
    /// A flush holding it may have been written already (its answer was lost): written again,
    /// it is applied only if it was not.
    pub repeat: bool,
}

/// What happens to an entry after an attempt.
#[derive(Debug, Clone)]
pub enum AfterAttempt {
    /// Delivered: it leaves the queue (and counts towards the progress of the replay that
    /// queued it, if one did).
    Delivered { replay: Option<u64> },
    /// Failed; retried when due. `attempts` made so far that count (and `spared` that do not),
    /// the first failure at `first_failed_ms`.
    Retry {
        attempts: u32,
        spared: u32,
        due_ms: u64,
        first_failed_ms: u64,
    },
    /// Failed for the last time: a dead letter.
    Dead(DeadLetter),
}

/// A delivery that ran out of attempts.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub event: Arc<PreparedEvent>,
    pub attempts: u32,
    pub error: String,
    pub status: Option<u16>,
}

/// What a flush does to the attempt log besides adding its attempts: each is a command the
/// writer asks for only now and then (see `settle.lua`), not on every flush.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LogUpkeep {
    /// Set the log to expire `attempts_ttl_ms` from now.
    pub refresh_expiry: bool,
    /// Trim the log to exactly `attempts_max_len` attempts now (otherwise only its entries
    /// are capped, at `attempts_max_len` flushes).
    pub trim: LogTrim,
}

/// How a flush trims the attempt log to its cap: the newest entries holding `attempts_max_len`
/// attempts stay, the older ones go.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum LogTrim {
    /// Not now.
    #[default]
    Not,
    /// Redis counts back from the newest entry (reading the entries) to find the cut: for a
    /// writer that does not know the log's older entries.
    CountBack,
    /// The entries older than this one go: the writer counted that its own entries from this
    /// one on (with the flush's) hold the cap. One `XTRIM`, nothing read.
    Before(StreamId),
}

/// How much history a webhook keeps.
#[derive(Debug, Clone)]
pub struct Retention {
    pub attempts_max_len: usize,
    pub attempts_ttl_ms: u64,
    pub dead_max_len: usize,
    pub dead_ttl_ms: u64,
}

impl Retention {
    /// Caps that trim nothing (at `now`, ms): for writes that add only what must be kept.
    fn none(now: u64) -> Retention {
        Retention {
            attempts_max_len: usize::MAX >> 1,
            attempts_ttl_ms: u64::MAX >> 1,
            dead_max_len: usize::MAX >> 1,
            dead_ttl_ms: now,
        }
    }
}

#[derive(Clone)]
pub struct QueueStore {
    pub(super) conn: RedisConn,
    pub(super) keys: Keys,
}

impl QueueStore {
    pub(super) fn new(conn: RedisConn, keys: Keys) -> QueueStore {
        QueueStore { conn, keys }
    }

    /// Reads up to `count` entries after `after` (from the start when None) and returns the
    /// fresh ones. Entries with retry state are skipped (see [`RetryLookup`]): they wait in the
    /// due set, or are in flight. An entry that cannot be read is dead-lettered with the reason.
    pub async fn fetch(
        &self,
        webhook: &WebhookId,
        lease: &Lease,
        after: Option<StreamId>,
        count: usize,
        lookup: RetryLookup,
    ) -> StoreResult<Fetched> {
        let start = after.map_or_else(|| "-".to_string(), |id| format!("({id}"));
        let (queue, retry) = (self.keys.queue(webhook), self.keys.retry(webhook));
        let mut conn = self.conn.clone();
        // Plain commands, not a script: this runs once per half window of every busy webhook,
        // and most of the time it is the XRANGE alone.
        let mut pipe = redis::pipe();
        pipe.cmd("XRANGE")
            .arg(&queue)
            .arg(start)
            .arg("+")
            .arg("COUNT")
            .arg(count);
        if lookup != RetryLookup::Skip {
            pipe.cmd("HLEN").arg(&retry);
        }
        if lookup == RetryLookup::LookAndLearn {
            pipe.cmd("XREVRANGE").arg(&queue).arg("+").arg("-").arg("COUNT").arg(1);
        }
        let replies: Vec<Value> = pipe.query_async(&mut conn).await?;
        let rows = entries(replies.first().unwrap_or(&Value::Nil)).map_err(StoreError::Corrupt)?;
        let retried = match replies.get(1) {
            Some(Value::Int(n)) => *n > 0,
            _ => false,
        };
        let tried_up_to = (lookup == RetryLookup::LookAndLearn).then(|| {
            let tail = replies
                .get(2)
                .and_then(|v| entries(v).ok())
                .and_then(|tail| tail.first().map(|row| row.id));
            tail.filter(|_| retried)
        });
        // Retry state exists only for entries that failed; usually there is none.
        let states: Vec<Option<String>> = if retried && !rows.is_empty() {
            let ids: Vec<String> = rows.iter().map(|row| row.id.to_string()).collect();
            redis::cmd("HMGET").arg(&retry).arg(&ids).query_async(&mut conn).await?
        } else {
            vec![None; rows.len()]
        };
        let mut fetched = Fetched {
            deliveries: Vec::with_capacity(rows.len()),
            last: rows.last().map(|row| row.id),
            read: rows.len(),
            tried_up_to,
            first_with_state: None,
        };
        let mut unreadable = Vec::new();
        for (row, state) in rows.iter().zip(states) {
            if state.is_some() {
                fetched.first_with_state.get_or_insert(row.id);
                continue;
            }
            match decode_entry(row, None) {
                Ok(delivery) => fetched.deliveries.push(delivery),
                Err(problem) => unreadable.push((row, problem)),
            }
        }
        self.set_aside(webhook, lease, &unreadable).await?;
        Ok(fetched)
    }

    /// Dead-letters queue entries that cannot be read (only a hand-edited key holds them), with
    /// the reason, so the queue keeps moving and nothing disappears without a trace.
    pub(super) async fn set_aside(
        &self,
        webhook: &WebhookId,
        lease: &Lease,
        unreadable: &[(&Entry, &'static str)],
    ) -> StoreResult<()> {
        if unreadable.is_empty() {
            return Ok(());
        }
        for chunk in unreadable.chunks(MAX_SETTLED) {
            self.set_aside_chunk(webhook, lease, chunk).await?;
        }
        Ok(())
    }

    async fn set_aside_chunk(
        &self,
        webhook: &WebhookId,
        lease: &Lease,
        unreadable: &[(&Entry, &'static str)],
    ) -> StoreResult<()> {
        let now = crate::clock::now_ms();
        let upkeep = LogUpkeep::default();
        // A repeat: a read that failed after an earlier try dead-lettered some of them.
        let mut invocation = self.settle_invocation(webhook, lease, None, &Retention::none(now), (upkeep, true));
        for (row, problem) in unreadable {
            tracing::error!(webhook = %webhook, entry = %row.id, %problem, "dead-lettering an unreadable queue entry");
            let fields = QueueFields::of(row);
            let event = String::from_utf8_lossy(fields.event.unwrap_or_default()).into_owned();
            let id = format!(
                "{webhook}:{}",
                if event.is_empty() {
                    row.id.to_string()
                } else {
                    event.clone()
                }
            );
            let error = format!("unreadable queue entry {}: {problem}", row.id);
            let time = now.to_string();
            let letter: [(&str, &[u8]); 8] = [
                ("id", id.as_bytes()),
                ("e", event.as_bytes()),
                ("ev", fields.ev.unwrap_or_default()),
                ("b", fields.tail.unwrap_or_default()),
                ("attempts", b"0"),
                ("error", error.as_bytes()),
                ("status", b""),
                ("time", time.as_bytes()),
            ];
            invocation.arg("x").arg(row.id.to_string()).arg("").arg(letter.len());
            for (field, value) in letter {
                invocation.arg(field).arg(value);
            }
        }
        let mut conn = self.conn.clone();
        settled_log_entry(invocation.invoke_async(&mut conn).await?).map(drop)
    }

    /// The fenced settle script with its keys and leading arguments (see `settle.lua`);
    /// `circuit` None leaves the circuit's run as it is.
    fn settle_invocation(
        &self,
        webhook: &WebhookId,
        lease: &Lease,
        circuit: Option<CircuitState>,
        retention: &Retention,
        (upkeep, repeat): (LogUpkeep, bool),
    ) -> redis::ScriptInvocation<'static> {
        let mut invocation = SETTLE.prepare_invoke();
        invocation
            .key(self.keys.lease(webhook))
            .key(self.keys.queue(webhook))
            .key(self.keys.retry(webhook))
            .key(self.keys.due(webhook))
            .key(self.keys.dead(webhook))
            .key(self.keys.attempts(webhook))
            .key(self.keys.circuit(webhook))
            .key(self.keys.replays_of(webhook))
            .arg(lease.as_str())
            .arg(retention.attempts_max_len)
            .arg(if upkeep.refresh_expiry {
                retention.attempts_ttl_ms
            } else {
                0
            })
            .arg(match upkeep.trim {
                LogTrim::Not => "0".to_string(),
                LogTrim::CountBack => "1".to_string(),
                LogTrim::Before(entry) => entry.to_string(),
            })
            .arg(retention.dead_max_len)
            .arg(crate::clock::now_ms().saturating_sub(retention.dead_ttl_ms));
        match circuit {
            Some(circuit) => invocation.arg(circuit.failures).arg(circuit.since_ms),
            None => invocation.arg("keep").arg(0),
        };
        invocation.arg(u8::from(repeat));
        invocation
    }

    /// Records a flush of finished attempts in one fenced script: delivered entries leave the
    /// queue, failed ones join the due set with their retry state or become dead letters, every
    /// attempt joins the log (tended as `upkeep` says), and the circuit's run is written when
    /// given (None: unchanged since the last write). The log entry that holds the attempts
    /// (one per flush; None for no attempts). `Err(Fenced)` when this instance no longer
    /// holds the webhook's lease: then nothing was written. At most [`MAX_SETTLED`] outcomes;
    /// when any is a [`Settled::repeat`], each is applied only if it was not already.
    pub async fn settle(
        &self,
        webhook: &WebhookId,
        lease: &Lease,
        settled: &[Settled],
        (circuit, upkeep): (Option<CircuitState>, LogUpkeep),
        retention: &Retention,
    ) -> StoreResult<Option<StreamId>> {
        if settled.is_empty() {
            return Ok(None);
        }
        if settled.len() > MAX_SETTLED {
            return Err(StoreError::Corrupt(format!(
                "a flush of {} outcomes; at most {MAX_SETTLED} are written at once",
                settled.len()
            )));
        }
        let repeat = settled.iter().any(|settled| settled.repeat);
        let mut invocation = self.settle_invocation(webhook, lease, circuit, retention, (upkeep, repeat));
        for Settled {
            entry, record, after, ..
        } in settled
        {
            let attempt = record.encode();
            match after {
                AfterAttempt::Delivered { replay } => invocation
                    .arg("d")
                    .arg(entry.to_string())
                    .arg(u8::from(record.attempt > 1))
                    .arg(attempt)
                    .arg(replay.map(|n| n.to_string()).unwrap_or_default()),
                AfterAttempt::Retry {
                    attempts,
                    spared,
                    due_ms,
                    first_failed_ms,
                } => invocation
                    .arg("r")
                    .arg(entry.to_string())
                    .arg(retry_state(*attempts, *spared, *due_ms, *first_failed_ms))
                    .arg(due_ms)
                    .arg(attempt),
                AfterAttempt::Dead(letter) => invocation
                    .arg("x")
                    .arg(entry.to_string())
                    .arg(attempt)
                    .arg(8)
                    .arg("id")
                    .arg(record.delivery_id.as_str())
                    .arg("e")
                    .arg(letter.event.stream_id.to_string())
                    .arg("ev")
                    .arg(letter.event.ev.as_str())
                    .arg("b")
                    .arg(&letter.event.tail[..])
                    .arg("attempts")
                    .arg(letter.attempts)
                    .arg("error")
                    .arg(&letter.error)
                    .arg("status")
                    .arg(letter.status.map(|s| s.to_string()).unwrap_or_default())
                    .arg("time")
                    .arg(record.time_ms),
            };
        }
        let mut conn = self.conn.clone();
        settled_log_entry(invocation.invoke_async(&mut conn).await?)
    }

    /// Entries waiting in the webhook's queue (in flight and waiting for a retry included).
    pub async fn backlog(&self, webhook: &WebhookId) -> StoreResult<u64> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("XLEN")
            .arg(self.keys.queue(webhook))
            .query_async(&mut conn)
            .await?)
    }

    /// Queue length and circuit state of many webhooks, pipelined (the supervisor's start-up).
    pub async fn startup_states(&self, webhooks: &[WebhookId]) -> StoreResult<Vec<(u64, Option<CircuitState>)>> {
        let mut states = Vec::with_capacity(webhooks.len());
        let mut conn = self.conn.clone();
        for chunk in webhooks.chunks(1000) {
            let mut pipe = redis::pipe();
            for webhook in chunk {
                pipe.cmd("XLEN").arg(self.keys.queue(webhook));
                pipe.cmd("HMGET")
                    .arg(self.keys.circuit(webhook))
                    .arg("failures")
                    .arg("since");
            }
            let replies: Vec<Value> = pipe.query_async(&mut conn).await?;
            for pair in replies.chunks(2) {
                let backlog = match pair.first() {
                    Some(Value::Int(n)) => *n as u64,
                    _ => 0,
                };
                let circuit = pair.get(1).and_then(decode_circuit);
                states.push((backlog, circuit));
            }
        }
        Ok(states)
    }

    /// Stores the delivery actor's latest health report, for instances that do not run it
    /// (fenced: only while this instance holds the webhook's lease).
    pub async fn save_health(&self, webhook: &WebhookId, lease: &Lease, report: &str) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let reply = HEALTH_SAVE
            .key(self.keys.lease(webhook))
            .key(self.keys.health(webhook))
            .arg(lease.as_str())
            .arg(report)
            .invoke_async(&mut conn)
            .await?;
        fenced(reply)
    }

    pub async fn health(&self, webhook: &WebhookId) -> StoreResult<Option<String>> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("GET")
            .arg(self.keys.health(webhook))
            .query_async(&mut conn)
            .await?)
    }
}

/// A fenced script's answer: -1 when the lease was not ours.
/// The settle script's reply: -1 when fenced, else the attempt log entry it added ('' none).
fn settled_log_entry(reply: Value) -> StoreResult<Option<StreamId>> {
    match reply {
        Value::Int(-1) => Err(StoreError::Fenced),
        Value::BulkString(id) if id.is_empty() => Ok(None),
        Value::BulkString(id) => std::str::from_utf8(&id)
            .ok()
            .and_then(StreamId::parse)
            .map(Some)
            .ok_or_else(|| StoreError::Corrupt(format!("settle returned {:?}", String::from_utf8_lossy(&id)))),
        other => Err(StoreError::Corrupt(format!("settle returned {other:?}"))),
    }
}

pub(super) fn fenced(reply: i64) -> StoreResult<()> {
    if reply == -1 {
        Err(StoreError::Fenced)
    } else {
        Ok(())
    }
}

fn decode_circuit(value: &Value) -> Option<CircuitState> {
    let Value::Array(fields) = value else { return None };
    let number = |i: usize| {
        fields
            .get(i)
            .and_then(bytes)
            .and_then(|b| std::str::from_utf8(b).ok())
            .and_then(|t| t.parse().ok())
    };
    Some(CircuitState {
        failures: number(0)? as u32,
        since_ms: number(1)?,
    })
}

/// A queue entry's parts, as written: the event's stream entry id, its type and the body after
/// the id. The fan-out writes them as one field, `d` = `<event id>\n<ev>\n<body tail>` (a type
/// holds no control characters, an id no newline), so that reading a queue back parses one
/// value per entry, not three; entries queued by earlier versions have three fields, `e`, `ev`
/// and `b`, and read the same.
struct QueueFields<'a> {
    event: Option<&'a [u8]>,
    ev: Option<&'a [u8]>,
    tail: Option<&'a [u8]>,
}

impl QueueFields<'_> {
    fn of(row: &Entry) -> QueueFields<'_> {
        let Some(d) = row.field("d") else {
            return QueueFields {
                event: row.field("e"),
                ev: row.field("ev"),
                tail: row.field("b"),
            };
        };
        let mut parts = d.splitn(3, |byte| *byte == b'\n');
        QueueFields {
            event: parts.next().filter(|event| !event.is_empty()),
            ev: parts.next(),
            tail: parts.next(),
        }
    }
}

/// A retry state as `P:retry:<id>` holds it: `tries:due_ms:first_failed_ms:spared`, `tries`
/// every attempt made (so it grows with each: `settle.lua` compares it to tell a repeated
/// write), `spared` those that did not count towards `max_attempts`. States written before
/// spared attempts existed have three fields, and read as none spared.
fn retry_state(attempts: u32, spared: u32, due_ms: u64, first_failed_ms: u64) -> String {
    format!("{}:{due_ms}:{first_failed_ms}:{spared}", attempts + spared)
}

/// Reads a queue entry, with its retry state ([`retry_state`]) when it has one.
pub(super) fn decode_entry(row: &Entry, retry_state: Option<&str>) -> Result<QueuedDelivery, &'static str> {
    let fields = QueueFields::of(row);
    let stream_id = fields
        .event
        .and_then(|event| std::str::from_utf8(event).ok())
        .and_then(StreamId::parse)
        .ok_or("queue entry without an event id")?;
    let ev = fields
        .ev
        .and_then(|ev| std::str::from_utf8(ev).ok())
        .ok_or("queue entry without a type")
        .and_then(|ev| EventType::parse(ev).map_err(|_| "queue entry with a bad type"))?;
    let tail = fields.tail.ok_or("queue entry without a body")?;
    let mut state = retry_state.unwrap_or_default().split(':');
    let tries: u32 = state.next().and_then(|n| n.parse().ok()).unwrap_or(0);
    let first_failure_ms = state.nth(1).and_then(|ms| ms.parse().ok());
    let spared = state.next().and_then(|n| n.parse().ok()).unwrap_or(0).min(tries);
    Ok(QueuedDelivery {
        entry: row.id,
        event: Arc::new(PreparedEvent {
            stream_id,
            ev,
            tail: bytes::Bytes::copy_from_slice(tail),
        }),
        attempts: tries - spared,
        spared,
        first_failure_ms,
        replay: row.field_str("r").and_then(|n| n.parse().ok()),
    })
}
