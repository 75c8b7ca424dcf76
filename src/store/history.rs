//! What operators read back: a webhook's attempt log and dead letters, and the rejected
//! entries of the event stream. All are capped streams, read newest first, one page at a time;
//! the cursor of the next page is the id of the last entry shown. An entry of the attempt log
//! holds the attempts of one flush (one field `a` each, oldest first), so its cursor can also
//! point into an entry: [`HistoryCursor::within`].

use std::sync::LazyLock;

use super::RedisConn;
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use redis::{Script, Value};
use serde::Serialize;
use utoipa::ToSchema;

use super::attempts::StoredAttempt;
use super::reply::{entries, Entry};
use super::{Keys, StoreError, StoreResult};
use crate::clock::iso8601;
use crate::domain::{StreamId, WebhookId};

static REPLAY: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/dead_replay.lua")));
/// Dead letters one replay script looks at.
const REPLAY_PAGE: usize = 200;

/// A page of a history stream, newest first.
#[derive(Debug, Serialize)]
pub struct HistoryPage<T> {
    pub results: Vec<T>,
    /// Pass back as `next` for the following (older) page; None on the last page.
    #[serde(skip)]
    pub next: Option<HistoryCursor>,
}

/// Where the next (older) page of a history starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryCursor {
    /// The entries older than this one…
    pub entry: StreamId,
    /// …after, for the attempt log, the first `within` attempts of this entry (its oldest).
    /// None (or 0): none of this entry.
    pub within: Option<u32>,
}

impl HistoryCursor {
    fn before(entry: StreamId) -> HistoryCursor {
        HistoryCursor { entry, within: None }
    }
}

/// One attempt from a webhook's attempt log.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct AttemptView {
    pub time: String,
    /// The delivery id (`webhook-id` header).
    pub id: String,
    pub ev: String,
    pub attempt: u32,
    /// `delivered`, `failed` (will be retried), `dead` (out of attempts) or `gone` (410).
    pub outcome: String,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// The first KiB of the response body, as text.
    pub response: String,
    /// The instance that made the attempt.
    pub instance: Option<String>,
}

impl From<StoredAttempt<'_>> for AttemptView {
    fn from(a: StoredAttempt<'_>) -> AttemptView {
        AttemptView {
            time: iso8601(a.t),
            id: a.id.into_owned(),
            ev: a.ev.into_owned(),
            attempt: a.n,
            outcome: a.o.into_owned(),
            status: a.s,
            latency_ms: a.l,
            error: a.e.map(|e| e.into_owned()),
            response: a.r.into_owned(),
            instance: a.i.map(|i| i.into_owned()),
        }
    }
}

/// One dead letter.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeadLetterView {
    /// The delivery id; pass it to replay this letter alone.
    pub id: String,
    /// The event as it would be delivered (without `id`).
    #[schema(value_type = Object)]
    pub event: serde_json::Value,
    pub attempts: u32,
    pub error: String,
    pub status: Option<u16>,
    pub time: String,
}

/// One rejected stream entry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct RejectedView {
    /// The entry's id in the event stream.
    pub entry: String,
    pub reason: String,
    /// The raw value as text (invalid UTF-8 replaced); see `rawBase64` for the exact bytes.
    pub raw: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw_base64: Option<String>,
    pub time: String,
}

#[derive(Clone)]
pub struct HistoryStore {
    conn: RedisConn,
    keys: Keys,
}

impl HistoryStore {
    pub(super) fn new(conn: RedisConn, keys: Keys) -> HistoryStore {
        HistoryStore { conn, keys }
    }

    /// Entries of `key` older than `before` (all when None), newest first: up to `count`, then
    /// whether there are more. With `before.within` set, entry `before.entry` itself comes first.
    async fn read_back(
        &self,
        key: &str,
        count: usize,
        before: Option<HistoryCursor>,
    ) -> StoreResult<(Vec<Entry>, bool)> {
        let start = match before {
            None => "+".to_string(),
            Some(HistoryCursor {
                entry,
                within: Some(1..),
            }) => entry.to_string(),
            Some(HistoryCursor { entry, .. }) => format!("({entry}"),
        };
        let mut conn = self.conn.clone();
        let reply: Value = redis::cmd("XREVRANGE")
            .arg(key)
            .arg(start)
            .arg("-")
            .arg("COUNT")
            .arg(count + 1)
            .query_async(&mut conn)
            .await?;
        let mut found = entries(&reply).map_err(StoreError::Corrupt)?;
        let more = found.len() > count;
        found.truncate(count);
        Ok((found, more))
    }

    /// A page of entries of `key` older than `before`, one result per entry.
    async fn page(
        &self,
        key: &str,
        limit: usize,
        before: Option<HistoryCursor>,
    ) -> StoreResult<(Vec<Entry>, Option<HistoryCursor>)> {
        let before = before.map(|cursor| HistoryCursor::before(cursor.entry));
        let (found, more) = self.read_back(key, limit, before).await?;
        let next = more
            .then(|| found.last().map(|e| HistoryCursor::before(e.id)))
            .flatten();
        Ok((found, next))
    }

    pub async fn attempts(
        &self,
        webhook: &WebhookId,
        limit: usize,
        before: Option<HistoryCursor>,
    ) -> StoreResult<HistoryPage<AttemptView>> {
        // Every entry holds at least one attempt: `limit` entries hold enough.
        let (found, more) = self.read_back(&self.keys.attempts(webhook), limit, before).await?;
        // (entry, its attempt's index, the attempt), newest first.
        let mut attempts = found.iter().flat_map(|entry| {
            let logged: Vec<&[u8]> = entry.fields_named("a").collect();
            let shown = match before {
                Some(HistoryCursor {
                    entry: id,
                    within: Some(within),
                }) if id == entry.id => logged.len().min(within as usize),
                _ => logged.len(),
            };
            (0..shown).rev().map(move |index| (entry.id, index, logged[index]))
        });
        let results = attempts
            .by_ref()
            .take(limit)
            .filter_map(|(_, _, attempt)| serde_json::from_slice::<StoredAttempt>(attempt).ok())
            .map(AttemptView::from)
            .collect();
        let next = match attempts.next() {
            Some((entry, index, _)) => Some(HistoryCursor {
                entry,
                within: Some(index as u32 + 1),
            }),
            None if more => found.last().map(|e| HistoryCursor::before(e.id)),
            None => None,
        };
        Ok(HistoryPage { results, next })
    }

    /// Dead letters, newest first (those past `ttl_ms` are dropped first).
    pub async fn dead_letters(
        &self,
        webhook: &WebhookId,
        limit: usize,
        before: Option<HistoryCursor>,
        ttl_ms: u64,
    ) -> StoreResult<HistoryPage<DeadLetterView>> {
        let key = self.keys.dead(webhook);
        let oldest = crate::clock::now_ms().saturating_sub(ttl_ms);
        let mut conn = self.conn.clone();
        redis::cmd("XTRIM")
            .arg(&key)
            .arg("MINID")
            .arg(oldest)
            .query_async::<()>(&mut conn)
            .await?;
        let (found, next) = self.page(&key, limit, before).await?;
        let results = found
            .iter()
            .map(|e| {
                let body = [b"{".as_slice(), e.field("b").unwrap_or_default()].concat();
                DeadLetterView {
                    id: text(e, "id"),
                    event: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
                    attempts: number(e, "attempts") as u32,
                    error: text(e, "error"),
                    status: optional_number(e, "status"),
                    time: iso8601(number(e, "time")),
                }
            })
            .collect();
        Ok(HistoryPage { results, next })
    }

    /// Puts dead letters back on the queue with a fresh attempt count: those with the given
    /// delivery ids, or all when `ids` is empty. Returns how many.
    pub async fn replay_dead(&self, webhook: &WebhookId, ids: &[String]) -> StoreResult<u64> {
        let mut conn = self.conn.clone();
        let (mut replayed, mut start) = (0, "-".to_string());
        // A page of dead letters per script (see dead_replay.lua).
        loop {
            let (count, next): (u64, String) = REPLAY
                .key(self.keys.webhook(webhook))
                .key(self.keys.dead(webhook))
                .key(self.keys.queue(webhook))
                .arg(&start)
                .arg(REPLAY_PAGE)
                .arg(ids)
                .invoke_async(&mut conn)
                .await?;
            replayed += count;
            if next.is_empty() {
                return Ok(replayed);
            }
            start = next;
        }
    }

    /// Deletes every dead letter of the webhook; returns how many there were.
    pub async fn purge_dead(&self, webhook: &WebhookId) -> StoreResult<u64> {
        let mut conn = self.conn.clone();
        let (count, _): (u64, u64) = redis::pipe()
            .atomic()
            .cmd("XLEN")
            .arg(self.keys.dead(webhook))
            // UNLINK: a long stream is freed in the background, not while Redis waits.
            .cmd("UNLINK")
            .arg(self.keys.dead(webhook))
            .query_async(&mut conn)
            .await?;
        Ok(count)
    }

    pub async fn rejected(
        &self,
        limit: usize,
        before: Option<HistoryCursor>,
    ) -> StoreResult<HistoryPage<RejectedView>> {
        let (found, next) = self.page(&self.keys.rejected(), limit, before).await?;
        let results = found
            .iter()
            .map(|e| {
                let raw = e.field("raw").unwrap_or_default();
                let exact = std::str::from_utf8(raw).is_ok();
                RejectedView {
                    entry: text(e, "entry"),
                    reason: text(e, "reason"),
                    raw: String::from_utf8_lossy(raw).into_owned(),
                    raw_base64: (!exact).then(|| STANDARD.encode(raw)),
                    time: iso8601(number(e, "time")),
                }
            })
            .collect();
        Ok(HistoryPage { results, next })
    }
}

fn text(entry: &Entry, field: &str) -> String {
    String::from_utf8_lossy(entry.field(field).unwrap_or_default()).into_owned()
}

fn optional_number<T: std::str::FromStr>(entry: &Entry, field: &str) -> Option<T> {
    std::str::from_utf8(entry.field(field)?).ok()?.parse().ok()
}

fn number(entry: &Entry, field: &str) -> u64 {
    optional_number(entry, field).unwrap_or(0)
}
