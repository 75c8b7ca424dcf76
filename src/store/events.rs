//! The producers' event stream `P:events` and the atomic fan-out out of it.
//!
//! Delivering instances read the stream with the consumer group [`EVENTS_GROUP`]. A batch of
//! entries is routed by one Lua script ([`EventStream::fanout`]) that appends each event to the
//! queue of every webhook it matched, sets malformed entries aside in `P:rejected`, and only
//! then acknowledges and deletes the batch's entries. A crash before the script runs leaves
//! the entries pending, and they are read again; after it, they are in the webhook queues.
//! The same script keeps each valid event in the retained stream (`retained.rs`), with the
//! queue entry it got in each queue, and trims that stream in step.

use std::collections::HashMap;
use std::sync::LazyLock;

use redis::aio::MultiplexedConnection;

use super::RedisConn;
use redis::{Script, Value};

use super::reply::{bytes, read_group_entries};
use super::{Keys, StoreError, StoreResult, EVENTS_GROUP};
use crate::domain::{Event, PreparedEvent, StreamId, UserId, WebhookId};

static FANOUT: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &[
            include_str!("scripts/retained_lib.lua"),
            include_str!("scripts/fanout.lua"),
        ]
        .concat(),
    )
});

/// What a fan-out keeps besides the queue appends (`[events]` settings).
#[derive(Debug, Clone, Copy)]
pub struct FanoutKeeping {
    /// Rejected entries kept (`events.rejected_max_len`).
    pub rejected_max_len: usize,
    /// Events kept in the retained stream at most (0: none are kept).
    pub retain_max: u64,
    /// How long (ms) after its routing an event is kept (0: none are kept).
    pub retain_ms: u64,
}

impl FanoutKeeping {
    pub fn of(settings: &crate::config::EventsSettings) -> FanoutKeeping {
        FanoutKeeping {
            rejected_max_len: settings.rejected_max_len,
            retain_max: if settings.retains() { settings.retain_max } else { 0 },
            retain_ms: settings.retain_ms,
        }
    }
}

/// One entry read from the event stream.
#[derive(Debug)]
pub struct RawEntry {
    pub id: StreamId,
    /// The `event` field's raw bytes; None when the entry has no such field, or was deleted
    /// while pending (`deleted`).
    pub event: Option<Vec<u8>>,
    pub deleted: bool,
}

/// What one fan-out script call does, built entry by entry.
#[derive(Default)]
pub struct FanoutBatch {
    /// The first and last entry ids of the batch (it reads in id order).
    span: Option<(StreamId, StreamId)>,
    /// Distinct target webhooks; records refer to them by position (1-based in the script).
    webhooks: Vec<WebhookId>,
    positions: HashMap<WebhookId, usize>,
    args: Vec<Vec<u8>>,
    /// (event, target) pairs the script will answer for, in order.
    pairs: usize,
    entries: usize,
    /// For a part of an event matched by more webhooks than one script writes: that event.
    part_of: Option<StreamId>,
}

impl FanoutBatch {
    pub fn is_empty(&self) -> bool {
        self.entries == 0
    }

    /// The queue appends it makes (one per event and matched webhook).
    pub fn pairs(&self) -> usize {
        self.pairs
    }

    fn took(&mut self, id: StreamId) {
        self.entries += 1;
        self.span = Some(match self.span {
            None => (id, id),
            Some((first, last)) => (first.min(id), last.max(id)),
        });
    }

    /// Queues `event` (of `user`) for each of `targets`, acknowledging its entry.
    pub fn event(&mut self, event: &PreparedEvent, user: Option<&UserId>, targets: &[WebhookId]) {
        self.took(event.stream_id);
        self.pairs += targets.len();
        self.args.push(b"e".to_vec());
        self.args.push(event.stream_id.to_string().into_bytes());
        self.args.push(event.ev.as_str().as_bytes().to_vec());
        self.args
            .push(user.map(|u| u.as_str().as_bytes().to_vec()).unwrap_or_default());
        self.args.push(event.tail.to_vec());
        self.targets(targets);
    }

    /// A batch of its own for one part of an event that matched more webhooks than one script
    /// writes: queues `event` for `targets` (those an earlier try did not), and, for the `last`
    /// part, acknowledges its entry.
    pub fn part(event: &PreparedEvent, user: Option<&UserId>, targets: &[WebhookId], last: bool) -> FanoutBatch {
        let mut batch = FanoutBatch {
            part_of: Some(event.stream_id),
            ..FanoutBatch::default()
        };
        batch.took(event.stream_id);
        batch.pairs = targets.len();
        batch.args.push(b"p".to_vec());
        batch.args.push(event.stream_id.to_string().into_bytes());
        batch.args.push(event.ev.as_str().as_bytes().to_vec());
        batch
            .args
            .push(user.map(|u| u.as_str().as_bytes().to_vec()).unwrap_or_default());
        batch.args.push(event.tail.to_vec());
        batch.args.push(if last { b"1".to_vec() } else { b"0".to_vec() });
        batch.targets(targets);
        batch
    }

    /// Appends the count and the positions of `targets`.
    fn targets(&mut self, targets: &[WebhookId]) {
        self.args.push(targets.len().to_string().into_bytes());
        for target in targets {
            let next = self.webhooks.len() + 1;
            let position = *self.positions.entry(*target).or_insert(next);
            if position == next {
                self.webhooks.push(*target);
            }
            self.args.push(position.to_string().into_bytes());
        }
    }

    /// Sets a malformed entry aside with its reason, acknowledging it.
    pub fn reject(&mut self, id: StreamId, reason: &str, raw: &[u8]) {
        self.took(id);
        self.args.push(b"r".to_vec());
        self.args.push(id.to_string().into_bytes());
        self.args.push(reason.as_bytes().to_vec());
        self.args.push(raw.to_vec());
    }

    /// Acknowledges an entry that needs nothing else (deleted while pending).
    pub fn ack(&mut self, id: StreamId) {
        self.took(id);
        self.args.push(b"a".to_vec());
        self.args.push(id.to_string().into_bytes());
    }
}

/// Who runs a fan-out, as the script checks it.
pub struct FanoutRouter<'a> {
    /// The webhooks version the router's index reflects (every change up to it applied).
    pub version: u64,
    /// The consumer the batch's entries must still be pending for.
    pub consumer: &'a str,
}

/// An event appended to a webhook's queue by a fan-out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// Its queue entry.
    pub entry: StreamId,
    /// The entry before it in that queue when it was appended (None: the queue was empty).
    /// Whoever reads the queue up to `before` may take `entry` without reading: nothing lies
    /// between them.
    pub before: Option<StreamId>,
}

impl Appended {
    /// Parses `<entry><<before>` (`<entry><` when the queue was empty; see `fanout.lua`).
    fn parse(text: &str) -> Option<Appended> {
        let (entry, before) = text.split_once('<')?;
        Some(Appended {
            entry: StreamId::parse(entry)?,
            before: match before {
                "" => None,
                before => Some(StreamId::parse(before)?),
            },
        })
    }
}

/// How a fan-out ended.
#[derive(Debug)]
pub enum Fanout {
    /// Done: the queue entry of each (event, webhook) pair; None where an earlier try of a
    /// widely matched event had queued it already.
    Queued(Vec<Option<Appended>>),
    /// Refused: a webhook changed since `FanoutRouter::version`. Sync, then route again.
    Stale,
    /// Refused: an entry was reclaimed by another consumer, which routes the batch.
    Claimed,
}

#[derive(Clone)]
pub struct EventStream {
    conn: RedisConn,
    keys: Keys,
}

impl EventStream {
    pub(super) fn new(conn: RedisConn, keys: Keys) -> EventStream {
        EventStream { conn, keys }
    }

    /// Creates the consumer group (and the stream) if missing. The group starts at the
    /// beginning, so events published before any router ran are delivered too.
    pub async fn ensure_group(&self) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let created: Result<Value, _> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(self.keys.events())
            .arg(EVENTS_GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut conn)
            .await;
        match created {
            Err(e) if e.code() != Some("BUSYGROUP") => Err(e.into()),
            _ => Ok(()),
        }
    }

    /// Reads up to `count` entries for `consumer`: its own pending entries when `pending`,
    /// else new ones, waiting up to `block_ms` for them. `conn` must be a connection whose
    /// response timeout outlasts the block ([`super::Store::blocking_connection`]).
    pub async fn read(
        &self,
        conn: &mut MultiplexedConnection,
        consumer: &str,
        pending: bool,
        count: usize,
        block_ms: u64,
    ) -> StoreResult<Vec<RawEntry>> {
        let mut cmd = redis::cmd("XREADGROUP");
        cmd.arg("GROUP").arg(EVENTS_GROUP).arg(consumer).arg("COUNT").arg(count);
        if !pending {
            cmd.arg("BLOCK").arg(block_ms);
        }
        cmd.arg("STREAMS")
            .arg(self.keys.events())
            .arg(if pending { "0" } else { ">" });
        let reply: Value = cmd.query_async(conn).await?;
        let entries = read_group_entries(&reply).map_err(StoreError::Corrupt)?;
        Ok(entries
            .into_iter()
            .map(|entry| RawEntry {
                id: entry.id,
                event: entry.field("event").map(<[u8]>::to_vec),
                deleted: entry.fields.is_none(),
            })
            .collect())
    }

    /// Runs one fan-out for `router` (see [`FanoutRouter`]); on success, the queue entry id of
    /// each (event, webhook) pair in the order they were added.
    pub async fn fanout(
        &self,
        batch: &FanoutBatch,
        keeping: FanoutKeeping,
        router: &FanoutRouter<'_>,
    ) -> StoreResult<Fanout> {
        let Some((first, last)) = batch.span else {
            return Ok(Fanout::Queued(Vec::new()));
        };
        let mut invocation = FANOUT.prepare_invoke();
        invocation
            .key(self.keys.events())
            .key(self.keys.rejected())
            .key(self.keys.webhooks_version())
            .key(self.keys.retained())
            .key(self.keys.retained_index());
        for webhook in &batch.webhooks {
            invocation.key(self.keys.queue(webhook));
        }
        if let Some(entry) = &batch.part_of {
            invocation.key(self.keys.fanout_progress(entry));
        }
        invocation
            .arg(EVENTS_GROUP)
            .arg(keeping.rejected_max_len)
            .arg(crate::clock::now_ms())
            .arg(batch.webhooks.len())
            .arg(router.version)
            .arg(router.consumer)
            .arg(first.to_string())
            .arg(last.to_string())
            .arg(batch.entries)
            .arg(keeping.retain_max)
            .arg(crate::clock::now_ms().saturating_sub(keeping.retain_ms));
        for arg in &batch.args {
            invocation.arg(arg.as_slice());
        }
        let mut conn = self.conn.clone();
        let reply: Value = invocation.invoke_async(&mut conn).await?;
        let reply = match reply {
            Value::Array(items) => items,
            refusal => {
                return match bytes(&refusal) {
                    Some(b"stale") => Ok(Fanout::Stale),
                    Some(b"claimed") => Ok(Fanout::Claimed),
                    _ => Err(StoreError::Corrupt(format!("fan-out answered {refusal:?}"))),
                }
            }
        };
        let ids = match reply.as_slice() {
            [ids] => bytes(ids).and_then(|b| std::str::from_utf8(b).ok()),
            _ => None,
        }
        .ok_or_else(|| StoreError::Corrupt(format!("fan-out answered {reply:?}")))?;
        let queued = ids
            .split(' ')
            .filter(|id| !id.is_empty())
            .map(|id| match id {
                "-" => Ok(None),
                id => Appended::parse(id)
                    .map(Some)
                    .ok_or_else(|| StoreError::Corrupt(format!("fan-out answered {id:?} for a queue entry"))),
            })
            .collect::<StoreResult<Vec<Option<Appended>>>>()?;
        if queued.len() != batch.pairs {
            return Err(StoreError::Corrupt(format!(
                "fan-out answered {} pairs, expected {}",
                queued.len(),
                batch.pairs
            )));
        }
        Ok(Fanout::Queued(queued))
    }

    /// Appends events to the stream, all or none (`POST /events`).
    pub async fn publish(&self, events: &[Event]) -> StoreResult<Vec<StreamId>> {
        let raws: Vec<Vec<u8>> = events.iter().map(|e| e.to_json().to_string().into_bytes()).collect();
        self.append(&raws).await
    }

    /// Appends raw `event` values to the stream, all or none, unvalidated: the reader
    /// validates them like any producer's (the BullMQ source's jobs).
    pub async fn append(&self, raws: &[Vec<u8>]) -> StoreResult<Vec<StreamId>> {
        let mut pipe = redis::pipe();
        pipe.atomic();
        for raw in raws {
            pipe.cmd("XADD")
                .arg(self.keys.events())
                .arg("*")
                .arg("event")
                .arg(raw.as_slice());
        }
        let mut conn = self.conn.clone();
        let ids: Vec<String> = pipe.query_async(&mut conn).await?;
        ids.iter()
            .map(|id| StreamId::parse(id).ok_or_else(|| StoreError::Corrupt(format!("XADD returned {id}"))))
            .collect()
    }

    /// Takes over the entries other consumers have left pending for longer than `idle` (they
    /// died between reading and routing them): they become `consumer`'s pending entries, read
    /// and routed like its own. Also removes consumers that have gone with nothing pending.
    /// Returns how many entries it took.
    pub async fn reclaim(&self, consumer: &str, idle: std::time::Duration, count: usize) -> StoreResult<usize> {
        let mut conn = self.conn.clone();
        let idle_ms = idle.as_millis() as u64;
        let mut taken = 0;
        let mut start = "0-0".to_string();
        // Bounded: at most ten batches a look; the next look goes on.
        for _ in 0..10 {
            let reply: Value = redis::cmd("XAUTOCLAIM")
                .arg(self.keys.events())
                .arg(EVENTS_GROUP)
                .arg(consumer)
                .arg(idle_ms)
                .arg(&start)
                .arg("COUNT")
                .arg(count)
                .arg("JUSTID")
                .query_async(&mut conn)
                .await?;
            let Value::Array(parts) = reply else { break };
            taken += match parts.get(1) {
                Some(Value::Array(ids)) => ids.len(),
                _ => 0,
            };
            start = parts
                .first()
                .and_then(bytes)
                .and_then(|b| std::str::from_utf8(b).ok())
                .unwrap_or("0-0")
                .to_string();
            if start == "0-0" {
                break;
            }
        }
        let consumers: Vec<HashMap<String, Value>> = redis::cmd("XINFO")
            .arg("CONSUMERS")
            .arg(self.keys.events())
            .arg(EVENTS_GROUP)
            .query_async(&mut conn)
            .await?;
        for other in consumers {
            let number = |field: &str| match other.get(field) {
                Some(Value::Int(n)) => *n,
                _ => -1,
            };
            let name = other
                .get("name")
                .and_then(bytes)
                .and_then(|b| std::str::from_utf8(b).ok());
            if let Some(name) = name.filter(|name| *name != consumer) {
                if number("pending") == 0 && number("idle") > (10 * idle_ms) as i64 {
                    redis::cmd("XGROUP")
                        .arg("DELCONSUMER")
                        .arg(self.keys.events())
                        .arg(EVENTS_GROUP)
                        .arg(name)
                        .query_async::<()>(&mut conn)
                        .await?;
                }
            }
        }
        Ok(taken)
    }

    /// Entries in the stream not yet routed (read or not): the reader's lag.
    pub async fn lag(&self) -> StoreResult<u64> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("XLEN")
            .arg(self.keys.events())
            .query_async(&mut conn)
            .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_appended_entry_names_the_one_before_it() {
        let id = |text| StreamId::parse(text).unwrap();
        assert_eq!(
            Appended::parse("5-1<4-0"),
            Some(Appended {
                entry: id("5-1"),
                before: Some(id("4-0"))
            })
        );
        assert_eq!(
            Appended::parse("5-1<"),
            Some(Appended {
                entry: id("5-1"),
                before: None
            })
        );
        assert_eq!(Appended::parse("5-1"), None, "the script always sends what was before");
        assert_eq!(Appended::parse("5-1<x"), None);
    }
}
