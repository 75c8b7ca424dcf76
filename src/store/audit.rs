//! What Redis holds for one webhook, as its delivery actor's self-check reads it
//! (`actors/delivery/audit.rs`): the lease, the due set's size and earliest entry, whether
//! anything follows the actor's cursor, and the state of the queue's first entries up to the
//! cursor. One read-only script, bounded by the number of entries looked at.

use std::sync::LazyLock;

use redis::{Script, Value};

use super::queues::QueueStore;
use super::reply::{bytes, items};
use super::{StoreError, StoreResult};
use crate::domain::{StreamId, WebhookId};

static AUDIT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/audit.lua")));

/// A queue entry at or before the actor's cursor, as Redis has it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeadEntry {
    pub entry: StreamId,
    /// It failed before (it has retry state).
    pub tried: bool,
    /// It waits in the due set.
    pub due: bool,
}

/// What the audit read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditView {
    /// The lease's value (None: no lease).
    pub lease: Option<String>,
    /// Entries in the due set, and when the earliest is due (ms).
    pub waiting: u64,
    pub earliest_due_ms: Option<u64>,
    /// The first queue entry after the cursor.
    pub after_cursor: Option<StreamId>,
    /// The queue's first entries up to the cursor, oldest first.
    pub head: Vec<HeadEntry>,
}

impl QueueStore {
    /// Reads what the audit compares (see the module docs), looking at up to `head` entries.
    pub async fn audit(&self, webhook: &WebhookId, cursor: Option<StreamId>, head: usize) -> StoreResult<AuditView> {
        let mut conn = self.conn.clone();
        let reply: Value = AUDIT
            .key(self.keys.lease(webhook))
            .key(self.keys.queue(webhook))
            .key(self.keys.retry(webhook))
            .key(self.keys.due(webhook))
            .arg(cursor.map(|c| c.to_string()).unwrap_or_default())
            .arg(head)
            .invoke_async(&mut conn)
            .await?;
        decode(&reply).ok_or_else(|| StoreError::Corrupt(format!("audit answered {reply:?}")))
    }
}

fn text(value: &Value) -> Option<&str> {
    bytes(value).and_then(|b| std::str::from_utf8(b).ok())
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Int(n) => Some(*n),
        other => text(other)?.parse().ok(),
    }
}

fn decode(reply: &Value) -> Option<AuditView> {
    let parts = items(reply)?;
    let [lease, waiting, earliest, after, head] = parts.as_slice() else {
        return None;
    };
    let flat = items(head)?;
    let mut entries = Vec::with_capacity(flat.len() / 3);
    for triple in flat.chunks(3) {
        let [entry, tried, due] = triple else { return None };
        entries.push(HeadEntry {
            entry: StreamId::parse(text(entry)?)?,
            tried: integer(tried)? == 1,
            due: integer(due)? == 1,
        });
    }
    Some(AuditView {
        lease: text(lease).map(str::to_string),
        waiting: integer(waiting)?.max(0) as u64,
        earliest_due_ms: match earliest {
            Value::Double(ms) => Some(*ms as u64),
            other => text(other).and_then(|t| t.parse::<f64>().ok()).map(|ms| ms as u64),
        },
        after_cursor: text(after).and_then(StreamId::parse),
        head: entries,
    })
}
