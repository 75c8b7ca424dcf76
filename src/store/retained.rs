//! Events kept after their fan-out: what `GET /events` lists, `GET /events/{id}` explains, and
//! replays send again.
//!
//! The fan-out script (`fanout.lua`) adds every valid event it routes to `P:retained`, a stream
//! whose entry ids are the routing times: `e` the event's id in the event stream (the one in its
//! delivery ids, `<webhook>:<e>`), `ev`, `u` its user (empty: none), `b` the body after the
//! delivery id, and `w` the queue entry it got in each webhook's queue (`<webhook>=<entry>`,
//! space-separated: so the state of each of its deliveries is found by looking at those
//! webhooks only, never by scanning every queue). `P:retained:index` finds an entry by event
//! id. The stream is trimmed by `events.retain_ms` (routing time) and `events.retain_max`
//! (count), oldest first, inside each fan-out (a budget in proportion to what it added) and by
//! [`RetainedStore::trim`] when no fan-out runs.
//!
//! Invariant: every index entry names an entry of the stream with the same `e`, or one trimmed
//! since (both are removed together, in one script; an event routed twice, which the BullMQ
//! source's at-least-once mode allows, is retained twice and indexed by its last routing).

use std::sync::LazyLock;

use super::RedisConn;
use bytes::Bytes;
use redis::{Script, Value};

use super::reply::{entries, Entry};
use super::{Keys, StoreError, StoreResult};
use crate::domain::{EventType, StreamId, UserId, WebhookId};

static TRIM: LazyLock<Script> = LazyLock::new(|| {
    Script::new(
        &[
            include_str!("scripts/retained_lib.lua"),
            include_str!("scripts/retained_trim.lua"),
        ]
        .concat(),
    )
});

/// Retained entries one trim script removes at most (it holds Redis for about a millisecond).
const TRIM_BUDGET: usize = 2_000;

/// One retained event.
#[derive(Debug, Clone)]
pub struct RetainedEvent {
    /// Its entry in `P:retained`: when it was routed.
    pub retained: StreamId,
    /// Its entry in the event stream: the event id of its deliveries.
    pub event: StreamId,
    pub ev: EventType,
    pub user: Option<UserId>,
    /// The delivery body after `{"id":"…",` (see `PreparedEvent::tail`).
    pub tail: Bytes,
    /// Each webhook it was queued for, with its entry in that webhook's queue.
    pub went: Vec<(WebhookId, StreamId)>,
}

impl RetainedEvent {
    fn read(entry: &Entry) -> Result<RetainedEvent, String> {
        let text = |field: &str| {
            entry
                .field_str(field)
                .ok_or(format!("retained entry {} without {field}", entry.id))
        };
        let event = StreamId::parse(text("e")?).ok_or(format!("retained entry {} with a bad event id", entry.id))?;
        let ev = EventType::parse(text("ev")?).map_err(|rule| format!("retained entry {}: ev {rule}", entry.id))?;
        let user = match text("u")? {
            "" => None,
            user => Some(UserId::parse(user).map_err(|rule| format!("retained entry {}: user {rule}", entry.id))?),
        };
        let went = text("w")?
            .split(' ')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let (webhook, queued) = pair.split_once('=')?;
                Some((WebhookId::parse(webhook)?, StreamId::parse(queued)?))
            })
            .collect::<Option<Vec<_>>>()
            .ok_or(format!("retained entry {} with a bad w", entry.id))?;
        Ok(RetainedEvent {
            retained: entry.id,
            event,
            ev,
            user,
            tail: Bytes::copy_from_slice(entry.field("b").unwrap_or_default()),
            went,
        })
    }

    /// The event's queue entry in `webhook`'s queue, if it was routed there.
    pub fn queued_for(&self, webhook: &WebhookId) -> Option<StreamId> {
        self.went.iter().find(|(w, _)| w == webhook).map(|(_, entry)| *entry)
    }

    /// Its entry in a webhook's queue: the field `d` the fan-out writes (see `queues.rs`,
    /// `QueueFields`), so a replayed delivery has the same delivery id and body.
    pub fn queue_field(&self) -> Vec<u8> {
        [
            self.event.to_string().as_bytes(),
            b"\n",
            self.ev.as_str().as_bytes(),
            b"\n",
            &self.tail,
        ]
        .concat()
    }

    /// The body as delivered, without the delivery id.
    pub fn body(&self) -> serde_json::Value {
        let body = [b"{".as_slice(), &self.tail].concat();
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null)
    }
}

/// A page of retained entries read in one direction.
#[derive(Debug)]
pub struct RetainedPage {
    pub events: Vec<RetainedEvent>,
    /// The last entry read (readable or not): the next read starts past it.
    pub last: Option<StreamId>,
    /// Whether the range may hold more past `last` (the page was full).
    pub more: bool,
}

/// Which way a read goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Oldest first (replays).
    Forward,
    /// Newest first (`GET /events`).
    Backward,
}

#[derive(Clone)]
pub struct RetainedStore {
    conn: RedisConn,
    keys: Keys,
}

impl RetainedStore {
    pub(super) fn new(conn: RedisConn, keys: Keys) -> RetainedStore {
        RetainedStore { conn, keys }
    }

    /// Reads up to `count` retained entries routed in `[from, to]` (ms; ends included), starting
    /// past `after` when given, in `direction`. Entries that cannot be read are skipped with a
    /// warning (only a hand-edited key holds them).
    pub async fn read(
        &self,
        (from, to): (u64, u64),
        after: Option<StreamId>,
        count: usize,
        direction: Direction,
    ) -> StoreResult<RetainedPage> {
        let (low, high) = (format!("{from}-0"), format!("{to}-{}", u64::MAX));
        let mut cmd = match direction {
            Direction::Forward => {
                let start = after.map_or(low, |after| format!("({after}"));
                let mut cmd = redis::cmd("XRANGE");
                cmd.arg(self.keys.retained()).arg(start).arg(high);
                cmd
            }
            Direction::Backward => {
                let end = after.map_or(high, |after| format!("({after}"));
                let mut cmd = redis::cmd("XREVRANGE");
                cmd.arg(self.keys.retained()).arg(end).arg(low);
                cmd
            }
        };
        cmd.arg("COUNT").arg(count);
        let mut conn = self.conn.clone();
        let reply: Value = cmd.query_async(&mut conn).await?;
        let found = entries(&reply).map_err(StoreError::Corrupt)?;
        let (last, more) = (found.last().map(|e| e.id), found.len() == count);
        let events = found
            .iter()
            .filter_map(|entry| {
                RetainedEvent::read(entry)
                    .inspect_err(|problem| tracing::warn!(%problem, "skipping an unreadable retained event"))
                    .ok()
            })
            .collect();
        Ok(RetainedPage { events, last, more })
    }

    /// The retained event with this event id, if it is still kept.
    pub async fn get(&self, event: StreamId) -> StoreResult<Option<RetainedEvent>> {
        let mut conn = self.conn.clone();
        let at: Option<String> = redis::cmd("HGET")
            .arg(self.keys.retained_index())
            .arg(event.to_string())
            .query_async(&mut conn)
            .await?;
        let Some(at) = at else { return Ok(None) };
        let reply: Value = redis::cmd("XRANGE")
            .arg(self.keys.retained())
            .arg(&at)
            .arg(&at)
            .query_async(&mut conn)
            .await?;
        let found = entries(&reply).map_err(StoreError::Corrupt)?;
        found
            .first()
            .map(RetainedEvent::read)
            .transpose()
            .map_err(StoreError::Corrupt)
            .map(|kept| kept.filter(|kept| kept.event == event))
    }

    /// Removes what retention no longer keeps (routed more than `retain_ms` ago, or beyond
    /// `retain_max`), at most [`TRIM_BUDGET`] entries; how many went. The fan-out trims as it
    /// adds; this catches up when nothing is routed.
    pub async fn trim(&self, retain_ms: u64, retain_max: u64) -> StoreResult<u64> {
        let mut conn = self.conn.clone();
        Ok(TRIM
            .key(self.keys.retained())
            .key(self.keys.retained_index())
            .arg(crate::clock::now_ms().saturating_sub(retain_ms))
            .arg(retain_max)
            .arg(TRIM_BUDGET)
            .invoke_async(&mut conn)
            .await?)
    }

    /// The state of each of its deliveries (the first [`super::MAX_SHOWN`]).
    pub async fn deliveries(&self, kept: &RetainedEvent) -> StoreResult<Vec<super::DeliveryView>> {
        super::deliveries::states(&self.conn, &self.keys, kept).await
    }

    /// Events kept.
    pub async fn len(&self) -> StoreResult<u64> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("XLEN")
            .arg(self.keys.retained())
            .query_async(&mut conn)
            .await?)
    }
}
