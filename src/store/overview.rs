//! Reads over many webhooks at once, for the dashboard and the board writer: each is one round
//! trip (a pipeline, in chunks of 1,000), and none reads a webhook that is not asked for.
//!
//! Idle webhooks are counted from the index (`P:webhooks`), paused and disabled ones are found
//! through their own index sets (`P:webhooks:paused`, `P:webhooks:disabled`, kept by the
//! webhook scripts), so the dashboard's cost follows the webhooks that are doing something,
//! not the webhooks registered.

use std::sync::LazyLock;

use super::RedisConn;
use redis::{Script, Value};

use super::reply::{bytes, items};
use super::{Keys, StoreResult};
use crate::domain::{UserId, WebhookId, WebhookUrl};

static REINDEX: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/webhooks_reindex.lua")));

/// Commands per pipeline.
const CHUNK: usize = 1000;
/// What `P:webhooks:indexed` holds once the paused/disabled sets are complete.
const INDEX_VERSION: &str = "1";

/// What the summary counts, read in one round trip.
#[derive(Debug, Clone, Default)]
pub struct Census {
    /// Webhooks registered.
    pub webhooks: u64,
    pub paused: Vec<WebhookId>,
    pub disabled: Vec<WebhookId>,
    /// Entries in the event stream not yet routed (the readers' lag).
    pub lag: u64,
    /// The webhooks version counter: records read at the same version are still current.
    pub version: Option<u64>,
}

/// The parts of a webhook record a list of webhooks shows.
#[derive(Debug, Clone)]
pub struct WebhookLine {
    pub id: WebhookId,
    pub url: WebhookUrl,
    pub user: Option<UserId>,
    pub enabled: bool,
    pub paused: bool,
    pub disabled_reason: Option<String>,
}

#[derive(Clone)]
pub struct OverviewStore {
    conn: RedisConn,
    keys: Keys,
}

impl OverviewStore {
    pub(super) fn new(conn: RedisConn, keys: Keys) -> OverviewStore {
        OverviewStore { conn, keys }
    }

    pub async fn census(&self) -> StoreResult<Census> {
        let mut conn = self.conn.clone();
        type Reply = (u64, Vec<String>, Vec<String>, u64, Option<u64>);
        let (webhooks, paused, disabled, lag, version): Reply = redis::pipe()
            .cmd("ZCARD")
            .arg(self.keys.webhooks_all())
            .cmd("ZRANGE")
            .arg(self.keys.webhooks_paused())
            .arg(0)
            .arg(-1)
            .cmd("ZRANGE")
            .arg(self.keys.webhooks_disabled())
            .arg(0)
            .arg(-1)
            .cmd("XLEN")
            .arg(self.keys.events())
            .cmd("GET")
            .arg(self.keys.webhooks_version())
            .query_async(&mut conn)
            .await?;
        let ids = |list: Vec<String>| list.iter().filter_map(|id| WebhookId::parse(id)).collect();
        Ok(Census {
            webhooks,
            paused: ids(paused),
            disabled: ids(disabled),
            lag,
            version,
        })
    }

    /// Entries ever added to the event stream (Redis 7's `entries-added`): the events-in
    /// rate is its change over time. None while the stream does not exist.
    pub async fn events_added(&self) -> StoreResult<Option<u64>> {
        let mut conn = self.conn.clone();
        let reply: Result<Value, _> = redis::cmd("XINFO")
            .arg("STREAM")
            .arg(self.keys.events())
            .query_async(&mut conn)
            .await;
        let Ok(info) = reply else {
            // No such key: nothing was ever published (or Redis lost it).
            return Ok(None);
        };
        let fields = items(&info).unwrap_or_default();
        Ok(fields
            .chunks(2)
            .find(|pair| pair.first().and_then(|k| bytes(k)) == Some(b"entries-added".as_slice()))
            .and_then(|pair| match pair.get(1) {
                Some(Value::Int(n)) => u64::try_from(*n).ok(),
                _ => None,
            }))
    }

    /// Each webhook's position in `P:webhooks` (creation order); None for ids not there.
    pub async fn ranks(&self, ids: &[WebhookId]) -> StoreResult<Vec<Option<u64>>> {
        let all = self.keys.webhooks_all();
        self.per_id(ids, |pipe, id| {
            pipe.cmd("ZRANK").arg(&all).arg(id.to_string());
        })
        .await
    }

    /// Webhook ids at positions `start..start + count` of `P:webhooks` (creation order).
    pub async fn ids_at(&self, start: u64, count: u64) -> StoreResult<Vec<WebhookId>> {
        if count == 0 {
            return Ok(Vec::new());
        }
        let mut conn = self.conn.clone();
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.webhooks_all())
            .arg(start)
            .arg(start + count - 1)
            .query_async(&mut conn)
            .await?;
        Ok(ids.iter().filter_map(|id| WebhookId::parse(id)).collect())
    }

    /// Every webhook id of `user`, oldest first.
    pub async fn ids_of_user(&self, user: &UserId) -> StoreResult<Vec<WebhookId>> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.webhooks_of_user(user.as_str()))
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?;
        Ok(ids.iter().filter_map(|id| WebhookId::parse(id)).collect())
    }

    /// The list view of these webhooks, in order; None where one does not exist (any more).
    pub async fn lines(&self, ids: &[WebhookId]) -> StoreResult<Vec<Option<WebhookLine>>> {
        let replies: Vec<Vec<Option<String>>> = self
            .per_id(ids, |pipe, id| {
                pipe.cmd("HMGET").arg(self.keys.webhook(id)).arg(&[
                    "url",
                    "user",
                    "enabled",
                    "paused",
                    "disabled_reason",
                ]);
            })
            .await?;
        Ok(ids.iter().zip(replies).map(|(id, fields)| line(*id, fields)).collect())
    }

    /// The list view of every webhook (for a text search; one pass over the index).
    pub async fn all_lines(&self) -> StoreResult<Vec<WebhookLine>> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.webhooks_all())
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?;
        let ids: Vec<WebhookId> = ids.iter().filter_map(|id| WebhookId::parse(id)).collect();
        Ok(self.lines(&ids).await?.into_iter().flatten().collect())
    }

    /// The stored health reports (JSON) of these webhooks, in order.
    pub async fn reports(&self, ids: &[WebhookId]) -> StoreResult<Vec<Option<String>>> {
        self.per_id(ids, |pipe, id| {
            pipe.cmd("GET").arg(self.keys.health(id));
        })
        .await
    }

    /// Queue lengths (backlogs) of these webhooks, in order.
    pub async fn backlogs(&self, ids: &[WebhookId]) -> StoreResult<Vec<u64>> {
        self.per_id(ids, |pipe, id| {
            pipe.cmd("XLEN").arg(self.keys.queue(id));
        })
        .await
    }

    /// Makes sure the paused and disabled sets hold every webhook, also those written before
    /// the sets existed: once per prefix (`P:webhooks:indexed` remembers it), one script per
    /// 1,000 webhooks. Changes made meanwhile keep the sets right themselves.
    pub async fn complete_state_index(&self) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let marker: Option<String> = redis::cmd("GET")
            .arg(self.keys.webhooks_indexed())
            .query_async(&mut conn)
            .await?;
        if marker.as_deref() == Some(INDEX_VERSION) {
            return Ok(());
        }
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.webhooks_all())
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?;
        let ids: Vec<WebhookId> = ids.iter().filter_map(|id| WebhookId::parse(id)).collect();
        for chunk in ids.chunks(CHUNK) {
            let mut invocation = REINDEX.prepare_invoke();
            invocation
                .key(self.keys.webhooks_paused())
                .key(self.keys.webhooks_disabled());
            for id in chunk {
                invocation.key(self.keys.webhook(id)).arg(id.to_string());
            }
            invocation.invoke_async::<u64>(&mut conn).await?;
        }
        redis::cmd("SET")
            .arg(self.keys.webhooks_indexed())
            .arg(INDEX_VERSION)
            .query_async::<()>(&mut conn)
            .await?;
        if !ids.is_empty() {
            tracing::info!(webhooks = ids.len(), "paused and disabled index sets completed");
        }
        Ok(())
    }

    /// Runs one command per id, pipelined in chunks; the replies in order.
    async fn per_id<T: redis::FromRedisValue>(
        &self,
        ids: &[WebhookId],
        command: impl Fn(&mut redis::Pipeline, &WebhookId),
    ) -> StoreResult<Vec<T>> {
        let mut replies = Vec::with_capacity(ids.len());
        let mut conn = self.conn.clone();
        for chunk in ids.chunks(CHUNK) {
            let mut pipe = redis::pipe();
            for id in chunk {
                command(&mut pipe, id);
            }
            let values: Vec<T> = pipe.query_async(&mut conn).await?;
            replies.extend(values);
        }
        Ok(replies)
    }
}

/// Reads an HMGET of url, user, enabled, paused, disabled_reason (None: no such webhook).
fn line(id: WebhookId, fields: Vec<Option<String>>) -> Option<WebhookLine> {
    let mut fields = fields.into_iter();
    let url = WebhookUrl::parse(&fields.next().flatten()?).ok()?;
    let user = fields.next().flatten().and_then(|user| UserId::parse(&user).ok());
    let mut flag = || fields.next().flatten().is_some_and(|v| v == "1");
    let (enabled, paused) = (flag(), flag());
    Some(WebhookLine {
        id,
        url,
        user,
        enabled,
        paused,
        disabled_reason: fields.next().flatten(),
    })
}
