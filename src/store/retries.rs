//! The due set of one webhook: entries that failed and wait for their retry, out of the
//! delivery actor's memory.
//!
//! `P:due:<id>` is a sorted set of queue entry ids scored by when each is due (ms); the entry's
//! attempt count and last failure are its retry state in `P:retry:<id>`. The actor takes due
//! entries into its window ([`QueueStore::take_due`]), which removes them from the set; a
//! failed attempt puts the entry back with its next due time (`attempt_failed.lua`); success
//! or a dead letter removes its state. An entry in flight therefore has retry state but is not
//! in the set: if its actor dies, the next one finds it that way and puts it back
//! ([`QueueStore::prepare_retries`]), due at once.

use std::sync::LazyLock;

use redis::{Script, Value};

use super::queues::{decode_entry, fenced, QueueStore, QueuedDelivery, MAX_SETTLED};
use super::reply::{bytes, entry, items};
use super::{Lease, StoreError, StoreResult};
use crate::domain::{StreamId, WebhookId};

static TAKE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/retry_take.lua")));
static PREPARE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/retry_prepare.lua")));
static PUT_BACK: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/retry_put_back.lua")));

/// What the due set holds after a take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DueSet {
    /// Entries waiting for their retry.
    pub waiting: u64,
    /// When the earliest of them is due (ms).
    pub next_due_ms: Option<u64>,
}

/// Entries taken from the due set, and what it holds after.
#[derive(Debug, Default)]
pub struct TakenRetries {
    pub deliveries: Vec<QueuedDelivery>,
    pub left: DueSet,
}

/// Which entries a take may return.
#[derive(Debug, Clone, Copy)]
pub enum Due {
    /// Those due by this time (ms).
    By(u64),
    /// The earliest, whenever it is due (a probe of an open circuit).
    Earliest,
}

impl QueueStore {
    /// Puts back entries with retry state that are neither in the due set nor in `held` (the
    /// entries the actor has in memory: none at its start) — left in flight by a previous
    /// actor, or taken by a take whose answer was lost — and reports the set: one script per
    /// page of the retry hash ([`MAX_SETTLED`] states), so Redis is never held for the whole of
    /// a big one. Safe to cut into pages only while the actor takes nothing from the due set.
    pub async fn prepare_retries(&self, webhook: &WebhookId, lease: &Lease, held: &[StreamId]) -> StoreResult<DueSet> {
        let mut conn = self.conn.clone();
        let mut cursor = "0".to_string();
        let held: Vec<String> = held.iter().map(ToString::to_string).collect();
        loop {
            let reply: Value = PREPARE
                .key(self.keys.lease(webhook))
                .key(self.keys.retry(webhook))
                .key(self.keys.due(webhook))
                .arg(lease.as_str())
                .arg(&cursor)
                .arg(MAX_SETTLED)
                .arg(&held)
                .invoke_async(&mut conn)
                .await?;
            if reply == Value::Int(-1) {
                return Err(StoreError::Fenced);
            }
            let parts = items(&reply).ok_or_else(|| StoreError::Corrupt("retry_prepare answered no array".into()))?;
            cursor = parts
                .get(2)
                .and_then(|v| bytes(v))
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or("0")
                .to_string();
            if cursor == "0" {
                return Ok(due_set(&parts));
            }
        }
    }

    /// Takes up to `count` entries that are due (at most [`MAX_SETTLED`] a call: one script),
    /// earliest first, out of the due set.
    pub async fn take_due(
        &self,
        webhook: &WebhookId,
        lease: &Lease,
        due: Due,
        count: usize,
    ) -> StoreResult<TakenRetries> {
        let max = match due {
            Due::By(ms) => ms.to_string(),
            Due::Earliest => "+inf".to_string(),
        };
        let mut conn = self.conn.clone();
        let reply: Value = TAKE
            .key(self.keys.lease(webhook))
            .key(self.keys.queue(webhook))
            .key(self.keys.retry(webhook))
            .key(self.keys.due(webhook))
            .arg(lease.as_str())
            .arg(max)
            .arg(count.min(MAX_SETTLED))
            .invoke_async(&mut conn)
            .await?;
        if reply == Value::Int(-1) {
            return Err(StoreError::Fenced);
        }
        let parts = items(&reply).ok_or_else(|| StoreError::Corrupt("retry_take answered no array".into()))?;
        let mut taken = TakenRetries {
            deliveries: Vec::new(),
            left: due_set(&parts),
        };
        let rows = parts.get(2).and_then(|v| items(v)).unwrap_or_default();
        let mut decoded = Vec::with_capacity(rows.len());
        for row in rows {
            // {entry id, fields, retry state}
            let state = items(row)
                .and_then(|fields| fields.get(2).and_then(|v| bytes(v)))
                .and_then(|b| std::str::from_utf8(b).ok())
                .map(str::to_string);
            decoded.push((entry(row).map_err(StoreError::Corrupt)?, state));
        }
        let mut unreadable = Vec::new();
        for (row, state) in &decoded {
            match decode_entry(row, state.as_deref()) {
                Ok(delivery) => taken.deliveries.push(delivery),
                Err(problem) => unreadable.push((row, problem)),
            }
        }
        self.set_aside(webhook, lease, &unreadable).await?;
        Ok(taken)
    }

    /// Makes every entry waiting for a retry due now (`POST /webhooks/{id}/retry`); returns how
    /// many wait.
    pub async fn retry_now(&self, webhook: &WebhookId) -> StoreResult<u64> {
        let due = self.keys.due(webhook);
        let mut conn = self.conn.clone();
        // Scores × 0: every entry due at the epoch, i.e. now. One atomic command.
        let waiting: u64 = redis::cmd("ZUNIONSTORE")
            .arg(&due)
            .arg(1)
            .arg(&due)
            .arg("WEIGHTS")
            .arg(0)
            .query_async(&mut conn)
            .await?;
        Ok(waiting)
    }

    /// Puts taken entries back into the due set, due at `due_ms` (taken, then not sent: the
    /// webhook was paused meanwhile).
    pub async fn put_back(
        &self,
        webhook: &WebhookId,
        lease: &Lease,
        entries: &[StreamId],
        due_ms: u64,
    ) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        // A ZADD each is idempotent, so the scripts may be cut anywhere.
        for chunk in entries.chunks(MAX_SETTLED) {
            let mut invocation = PUT_BACK.prepare_invoke();
            invocation
                .key(self.keys.lease(webhook))
                .key(self.keys.due(webhook))
                .arg(lease.as_str())
                .arg(due_ms);
            for entry in chunk {
                invocation.arg(entry.to_string());
            }
            fenced(invocation.invoke_async(&mut conn).await?)?;
        }
        Ok(())
    }

    /// Entries waiting for their retry.
    pub async fn waiting(&self, webhook: &WebhookId) -> StoreResult<u64> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("ZCARD")
            .arg(self.keys.due(webhook))
            .query_async(&mut conn)
            .await?)
    }
}

/// `{count, earliest score or false, ...}` → the due set.
fn due_set(parts: &[&Value]) -> DueSet {
    let waiting = match parts.first() {
        Some(Value::Int(n)) => *n as u64,
        _ => 0,
    };
    let next_due_ms = parts
        .get(1)
        .and_then(|v| match v {
            Value::Double(d) => Some(*d as u64),
            other => bytes(other)
                .and_then(|b| std::str::from_utf8(b).ok())
                .and_then(|t| t.parse::<f64>().ok())
                .map(|d| d as u64),
        })
        .filter(|_| waiting > 0);
    DueSet { waiting, next_due_ms }
}
