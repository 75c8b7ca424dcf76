//! One webhook's queue of pending deliveries, its retry state and its dead letters.
//!
//! The queue `P:queue:<id>` is a stream: the fan-out appends to it, the webhook's delivery
//! actor reads it in order and deletes an entry only on a final outcome (delivered,
//! dead-lettered). Attempt counts and the next retry time of failed entries live beside it in
//! `P:retry:<id>`, so a restart resumes the backoff instead of starting it over. Writes that
//! would create keys check first that the webhook still exists, so a delivery finishing after
//! its webhook was deleted leaves nothing behind.

use std::sync::{Arc, LazyLock};

use redis::aio::ConnectionManager;
use redis::{Script, Value};

use super::reply::bytes;
use super::{Keys, StoreError, StoreResult};
use crate::domain::{DeliveryId, EventType, PreparedEvent, StreamId, WebhookId};

static FETCH: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/queue_fetch.lua")));
static RETRY_SAVE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/retry_save.lua")));
static DEAD_LETTER: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/dead_letter.lua")));
static HEALTH_SAVE: LazyLock<Script> =
    LazyLock::new(|| Script::new(include_str!("scripts/health_save.lua")));

/// A queue entry, ready to deliver.
#[derive(Debug, Clone)]
pub struct QueuedDelivery {
    /// The entry's id in the webhook's queue.
    pub entry: StreamId,
    pub event: Arc<PreparedEvent>,
    /// Attempts already made (0 for a fresh entry).
    pub attempts: u32,
    /// When the next attempt is due (ms since epoch), for an entry waiting to be retried.
    pub next_attempt_ms: Option<u64>,
}

/// A delivery that ran out of attempts.
pub struct DeadLetter<'a> {
    pub entry: StreamId,
    pub id: &'a DeliveryId,
    pub event: &'a PreparedEvent,
    pub attempts: u32,
    pub error: &'a str,
    pub status: Option<u16>,
}

#[derive(Clone)]
pub struct QueueStore {
    conn: ConnectionManager,
    keys: Keys,
}

impl QueueStore {
    pub(super) fn new(conn: ConnectionManager, keys: Keys) -> QueueStore {
        QueueStore { conn, keys }
    }

    /// Up to `count` entries after `after` (from the start when None).
    pub async fn fetch(
        &self,
        webhook: &WebhookId,
        after: Option<StreamId>,
        count: usize,
    ) -> StoreResult<Vec<QueuedDelivery>> {
        let start = after.map_or_else(|| "-".to_string(), |id| format!("({id}"));
        let mut conn = self.conn.clone();
        let rows: Vec<Vec<Value>> = FETCH
            .key(self.keys.queue(webhook))
            .key(self.keys.retry(webhook))
            .arg(start)
            .arg(count)
            .invoke_async(&mut conn)
            .await?;
        let mut deliveries = Vec::with_capacity(rows.len());
        let mut unreadable = Vec::new();
        for row in &rows {
            match decode_entry(row) {
                Ok(delivery) => deliveries.push(delivery),
                Err((Some(entry), problem)) => {
                    tracing::error!(webhook = %webhook, %entry, %problem, "dropping unreadable queue entry");
                    unreadable.push(entry);
                }
                Err((None, problem)) => return Err(StoreError::Corrupt(problem)),
            }
        }
        // Only hookrouter writes queues, so this takes a hand-edited key; dropping the entry
        // keeps the webhook's queue moving instead of stalling on it forever.
        self.complete(webhook, &unreadable).await?;
        Ok(deliveries)
    }

    /// Removes finished entries (delivered). Harmless for entries or queues already gone.
    pub async fn complete(&self, webhook: &WebhookId, entries: &[StreamId]) -> StoreResult<()> {
        if entries.is_empty() {
            return Ok(());
        }
        let ids: Vec<String> = entries.iter().map(ToString::to_string).collect();
        let mut conn = self.conn.clone();
        redis::pipe()
            .cmd("XDEL")
            .arg(self.keys.queue(webhook))
            .arg(&ids)
            .ignore()
            .cmd("HDEL")
            .arg(self.keys.retry(webhook))
            .arg(&ids)
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Records that `entry` failed `attempts` times and is due again at `next_attempt_ms`.
    pub async fn save_retry(
        &self,
        webhook: &WebhookId,
        entry: StreamId,
        attempts: u32,
        next_attempt_ms: u64,
    ) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        RETRY_SAVE
            .key(self.keys.webhook(webhook))
            .key(self.keys.retry(webhook))
            .arg(entry.to_string())
            .arg(format!("{attempts}:{next_attempt_ms}"))
            .invoke_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    /// Moves an entry from the queue to the dead letters (capped at `max_len`).
    pub async fn dead_letter(
        &self,
        webhook: &WebhookId,
        letter: DeadLetter<'_>,
        max_len: usize,
    ) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let mut invocation = DEAD_LETTER.prepare_invoke();
        invocation
            .key(self.keys.webhook(webhook))
            .key(self.keys.queue(webhook))
            .key(self.keys.retry(webhook))
            .key(self.keys.dead(webhook))
            .arg(letter.entry.to_string())
            .arg(max_len)
            .arg("id")
            .arg(letter.id.as_str())
            .arg("e")
            .arg(letter.event.stream_id.to_string())
            .arg("ev")
            .arg(letter.event.ev.as_str())
            .arg("b")
            .arg(&letter.event.tail[..])
            .arg("attempts")
            .arg(letter.attempts)
            .arg("error")
            .arg(letter.error)
            .arg("status")
            .arg(letter.status.map(|s| s.to_string()).unwrap_or_default())
            .arg("time")
            .arg(crate::clock::now_ms());
        invocation.invoke_async::<i64>(&mut conn).await?;
        Ok(())
    }

    /// Entries waiting in the webhook's queue (in flight included).
    pub async fn backlog(&self, webhook: &WebhookId) -> StoreResult<u64> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("XLEN")
            .arg(self.keys.queue(webhook))
            .query_async(&mut conn)
            .await?)
    }

    /// [`QueueStore::backlog`] for many webhooks, pipelined.
    pub async fn backlogs(&self, webhooks: &[WebhookId]) -> StoreResult<Vec<u64>> {
        let mut lengths = Vec::with_capacity(webhooks.len());
        let mut conn = self.conn.clone();
        for chunk in webhooks.chunks(1000) {
            let mut pipe = redis::pipe();
            for webhook in chunk {
                pipe.cmd("XLEN").arg(self.keys.queue(webhook));
            }
            let chunk_lengths: Vec<u64> = pipe.query_async(&mut conn).await?;
            lengths.extend(chunk_lengths);
        }
        Ok(lengths)
    }

    /// Stores the delivery actor's latest health report, for instances that do not run it.
    pub async fn save_health(&self, webhook: &WebhookId, report: &str) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        HEALTH_SAVE
            .key(self.keys.webhook(webhook))
            .key(self.keys.health(webhook))
            .arg(report)
            .invoke_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    pub async fn health(&self, webhook: &WebhookId) -> StoreResult<Option<String>> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("GET")
            .arg(self.keys.health(webhook))
            .query_async(&mut conn)
            .await?)
    }
}

fn decode_entry(row: &[Value]) -> Result<QueuedDelivery, (Option<StreamId>, String)> {
    let text = |i: usize| {
        row.get(i)
            .and_then(bytes)
            .and_then(|b| std::str::from_utf8(b).ok())
    };
    let entry = text(0)
        .and_then(StreamId::parse)
        .ok_or((None, "queue entry without an id".to_string()))?;
    decode_delivery(entry, row).map_err(|problem| (Some(entry), problem.to_string()))
}

fn decode_delivery(entry: StreamId, row: &[Value]) -> Result<QueuedDelivery, &'static str> {
    let text = |i: usize| {
        row.get(i)
            .and_then(bytes)
            .and_then(|b| std::str::from_utf8(b).ok())
    };
    let stream_id = text(1)
        .and_then(StreamId::parse)
        .ok_or("queue entry without an event id")?;
    let ev = text(2)
        .ok_or("queue entry without a type")
        .and_then(|ev| EventType::parse(ev).map_err(|_| "queue entry with a bad type"))?;
    let tail = row
        .get(3)
        .and_then(bytes)
        .ok_or("queue entry without a body")?;
    let (attempts, next_attempt_ms) = match text(4).and_then(|s| s.split_once(':')) {
        Some((attempts, next)) => (attempts.parse().unwrap_or(0), next.parse().ok()),
        None => (0, None),
    };
    Ok(QueuedDelivery {
        entry,
        event: Arc::new(PreparedEvent {
            stream_id,
            ev,
            tail: bytes::Bytes::copy_from_slice(tail),
        }),
        attempts,
        next_attempt_ms,
    })
}
