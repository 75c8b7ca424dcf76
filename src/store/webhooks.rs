//! Webhook records and their indexes.
//!
//! A webhook is a hash `P:webhook:<id>` plus its id in index sets (all, global or per user, per
//! type pattern) that answer the API's list filters without scanning. Every change is a Lua
//! script that checks the record's revision (optimistic concurrency: a concurrent change makes
//! the script refuse, and we re-read and retry), moves the id between index sets, increments
//! the version counter and publishes `<id>:<version>` on the change channel, all in one atomic
//! step. Every mutation returns the version it produced.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::RedisConn;
use redis::Script;

use super::{Keys, StoreError, StoreResult};
use crate::domain::{
    DeliveryOptions, EventType, Ordering, PreviousSecret, RateLimit, StreamId, TypePattern, UserId, Webhook, WebhookId,
    WebhookSecret, WebhookUrl,
};

static PUT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/webhook_put.lua")));
static DELETE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/webhook_delete.lua")));
static LIST: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/webhooks_list.lua")));

/// How many times a change is retried when another writer changed the same webhook meanwhile.
const MAX_CONFLICT_RETRIES: usize = 8;
/// Records fetched per pipeline when loading many webhooks.
const LOAD_CHUNK: usize = 1000;

/// A partial update (`PUT /webhooks/{id}`, or the delivery actor disabling a webhook).
#[derive(Debug, Clone, Default)]
pub struct WebhookChange {
    pub types: Option<Vec<TypePattern>>,
    pub url: Option<WebhookUrl>,
    /// Some(None) makes the webhook global.
    pub user: Option<Option<UserId>>,
    pub enabled: Option<bool>,
    /// Recorded when `enabled` becomes false; cleared when it becomes true.
    pub disabled_reason: Option<String>,
    pub paused: Option<bool>,
    /// A rotation: the new secret, and until when (ms) the current one keeps signing.
    pub rotate_secret: Option<(WebhookSecret, u64)>,
    /// Some(None) removes the rate limit.
    pub rate_limit: Option<Option<RateLimit>>,
    pub ordering: Option<Ordering>,
}

impl WebhookChange {
    fn apply(&self, webhook: &mut Webhook) {
        if let Some(types) = &self.types {
            webhook.types = types.clone();
        }
        if let Some(url) = &self.url {
            webhook.url = url.clone();
        }
        if let Some(user) = &self.user {
            webhook.user = user.clone();
        }
        match self.enabled {
            Some(true) => {
                webhook.enabled = true;
                webhook.disabled_reason = None;
            }
            Some(false) => {
                webhook.enabled = false;
                webhook.disabled_reason = self.disabled_reason.clone();
            }
            None => {}
        }
        if let Some(paused) = self.paused {
            webhook.paused = paused;
        }
        if let Some(rate_limit) = self.rate_limit {
            webhook.delivery.rate_limit = rate_limit;
        }
        if let Some(ordering) = self.ordering {
            webhook.delivery.ordering = ordering;
        }
        if let Some((secret, previous_expires_ms)) = &self.rotate_secret {
            let previous = std::mem::replace(&mut webhook.secret, secret.clone());
            webhook.previous_secret = Some(PreviousSecret {
                secret: previous,
                expires_ms: *previous_expires_ms,
            });
        }
    }
}

/// A message on the change channel `P:changes`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// `<id>:<version>`: the webhook's record changed (or it was deleted), producing this version.
    Record(WebhookId, u64),
    /// `<id>`: entries were added to its queue without an event (a dead-letter replay).
    Queue(WebhookId),
    /// `<id>:retry`: an operator asked to probe now and retry what waits.
    RetryNow(WebhookId),
    /// `work:<id>@<entry>,<id>,…`: these webhooks' queues hold new entries, from `<entry>` on
    /// when given (an instance routed events to webhooks it does not own; the owner's actor may
    /// have read past that point already).
    Work(Vec<(WebhookId, Option<StreamId>)>),
    /// `instances`: an instance joined or left.
    Instances,
}

impl Notice {
    fn encode(&self) -> String {
        match self {
            Notice::Record(id, version) => format!("{id}:{version}"),
            Notice::Queue(id) => id.to_string(),
            Notice::RetryNow(id) => format!("{id}:retry"),
            Notice::Work(targets) => {
                let targets: Vec<String> = targets
                    .iter()
                    .map(|(id, first)| match first {
                        Some(first) => format!("{id}@{first}"),
                        None => id.to_string(),
                    })
                    .collect();
                format!("work:{}", targets.join(","))
            }
            Notice::Instances => "instances".into(),
        }
    }

    /// Reads a message of the change channel.
    pub fn parse(payload: &[u8]) -> Option<Notice> {
        let text = std::str::from_utf8(payload).ok()?;
        if text == "instances" {
            return Some(Notice::Instances);
        }
        if let Some(targets) = text.strip_prefix("work:") {
            let target = |text: &str| match text.split_once('@') {
                Some((id, first)) => Some((WebhookId::parse(id)?, Some(StreamId::parse(first)?))),
                None => Some((WebhookId::parse(text)?, None)),
            };
            return targets.split(',').map(target).collect::<Option<_>>().map(Notice::Work);
        }
        match text.split_once(':') {
            None => Some(Notice::Queue(WebhookId::parse(text)?)),
            Some((id, "retry")) => Some(Notice::RetryNow(WebhookId::parse(id)?)),
            Some((id, version)) => Some(Notice::Record(WebhookId::parse(id)?, version.parse().ok()?)),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListDirection {
    /// Ids after the bound.
    Next,
    /// Ids before the bound.
    Previous,
}

/// Which webhooks to list. Filters combine with AND.
#[derive(Debug, Clone, Default)]
pub struct ListQuery {
    /// Exactly this user's webhooks; with `event`, the webhooks that get this user's events.
    pub user: Option<UserId>,
    /// Webhooks whose type list contains exactly this string.
    pub type_pattern: Option<String>,
    /// Webhooks that would receive an event of this type.
    pub event: Option<EventType>,
    pub limit: usize,
    pub cursor: Option<(ListDirection, WebhookId)>,
}

#[derive(Debug, Clone)]
pub struct WebhookPage {
    pub total: u64,
    pub results: Vec<Webhook>,
    pub has_previous: bool,
    pub has_next: bool,
}

#[derive(Clone)]
pub struct WebhookStore {
    conn: RedisConn,
    keys: Keys,
}

impl WebhookStore {
    pub(super) fn new(conn: RedisConn, keys: Keys) -> WebhookStore {
        WebhookStore { conn, keys }
    }

    pub async fn get(&self, id: &WebhookId) -> StoreResult<Option<Webhook>> {
        Ok(self.get_with_rev(id).await?.map(|(webhook, _)| webhook))
    }

    async fn get_with_rev(&self, id: &WebhookId) -> StoreResult<Option<(Webhook, u64)>> {
        let mut conn = self.conn.clone();
        let fields: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys.webhook(id))
            .query_async(&mut conn)
            .await?;
        if fields.is_empty() {
            return Ok(None);
        }
        decode(&fields).map(Some).map_err(StoreError::Corrupt)
    }

    /// Stores a new webhook; returns the version it produced.
    pub async fn create(&self, webhook: &Webhook) -> StoreResult<u64> {
        self.put(webhook, None, 1)
            .await?
            .ok_or_else(|| StoreError::Corrupt(format!("webhook id {} already exists", webhook.id)))
    }

    /// Stores a webhook unless its id is taken; the version produced, None when it exists
    /// (the WildDuck import, which keeps WildDuck's ids).
    pub async fn create_if_absent(&self, webhook: &Webhook) -> StoreResult<Option<u64>> {
        self.put(webhook, None, 1).await
    }

    /// Writes back a webhook Redis lost (restarted without its data); None if it exists.
    pub async fn restore(&self, webhook: &Webhook) -> StoreResult<Option<u64>> {
        self.create_if_absent(webhook).await
    }

    /// Applies `change`: the webhook as changed and the version produced; None when the
    /// webhook does not exist.
    pub async fn update(&self, id: &WebhookId, change: &WebhookChange) -> StoreResult<Option<(Webhook, u64)>> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let Some((old, rev)) = self.get_with_rev(id).await? else {
                return Ok(None);
            };
            let mut new = old.clone();
            change.apply(&mut new);
            if let Some(version) = self.put(&new, Some((&old, rev)), rev + 1).await? {
                return Ok(Some((new, version)));
            }
        }
        Err(StoreError::Corrupt(format!(
            "webhook {id} kept changing while being updated"
        )))
    }

    /// Deletes the webhook with everything it owns (queue, retry and circuit state, dead
    /// letters, attempt log, health report); returns the version produced, None when it did
    /// not exist.
    pub async fn delete(&self, id: &WebhookId) -> StoreResult<Option<u64>> {
        for _ in 0..MAX_CONFLICT_RETRIES {
            let Some((old, rev)) = self.get_with_rev(id).await? else {
                return Ok(None);
            };
            let sets = self.index_sets(&old);
            let mut invocation = DELETE.prepare_invoke();
            invocation
                .key(self.keys.webhook(id))
                .key(self.keys.webhooks_version())
                .key(self.keys.webhooks_changes())
                .key(&sets)
                .key(&self.keys.owned_by(id)[..])
                .arg(id.to_string())
                .arg(rev)
                .arg(self.keys.changes_channel())
                .arg(sets.len());
            let mut conn = self.conn.clone();
            let version: u64 = invocation.invoke_async(&mut conn).await?;
            if version > 0 {
                return Ok(Some(version));
            }
        }
        Err(StoreError::Corrupt(format!(
            "webhook {id} kept changing while being deleted"
        )))
    }

    /// Writes `new` if the stored revision is `old`'s (or, for `old == None`, if there is none);
    /// returns the version produced, None when the revision did not match.
    async fn put(&self, new: &Webhook, old: Option<(&Webhook, u64)>, rev: u64) -> StoreResult<Option<u64>> {
        let leave = old.map(|(old, _)| self.index_sets(old)).unwrap_or_default();
        let join = self.index_sets(new);
        let mut invocation = PUT.prepare_invoke();
        invocation
            .key(self.keys.webhook(&new.id))
            .key(self.keys.webhooks_version())
            .key(self.keys.webhooks_changes())
            .key(&leave)
            .key(&join)
            .arg(new.id.to_string())
            .arg(old.map(|(_, rev)| rev.to_string()).unwrap_or_default())
            .arg(self.keys.changes_channel())
            .arg(leave.len());
        for (field, value) in encode(new, rev) {
            invocation.arg(field).arg(value);
        }
        let mut conn = self.conn.clone();
        let version: u64 = invocation.invoke_async(&mut conn).await?;
        Ok((version > 0).then_some(version))
    }

    /// The index sets a webhook's id belongs in.
    fn index_sets(&self, webhook: &Webhook) -> Vec<String> {
        let mut sets = vec![
            self.keys.webhooks_all(),
            match &webhook.user {
                None => self.keys.webhooks_global(),
                Some(user) => self.keys.webhooks_of_user(user.as_str()),
            },
        ];
        // The dashboard counts and lists these without reading every record.
        if webhook.paused {
            sets.push(self.keys.webhooks_paused());
        }
        if !webhook.enabled {
            sets.push(self.keys.webhooks_disabled());
        }
        for pattern in &webhook.types {
            let set = self.keys.webhooks_with_type(&pattern.to_string());
            if !sets.contains(&set) {
                sets.push(set);
            }
        }
        sets
    }

    /// Tells every instance, through the change channel, about something other than a new
    /// version of the record (those are published by the scripts that write them).
    pub async fn announce(&self, notice: &Notice) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("PUBLISH")
            .arg(self.keys.changes_channel())
            .arg(notice.encode())
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// The counter every webhook change increments (None when Redis has never seen a change,
    /// or lost its data); compared by the resync check.
    pub async fn version(&self) -> StoreResult<Option<u64>> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("GET")
            .arg(self.keys.webhooks_version())
            .query_async(&mut conn)
            .await?)
    }

    /// The webhooks changed by every version after `applied`, with the version now, from the
    /// change log; None when the log no longer reaches back that far (then reload everything).
    pub async fn changes_since(&self, applied: u64) -> StoreResult<Option<(Vec<(u64, WebhookId)>, u64)>> {
        let mut conn = self.conn.clone();
        let (current, log): (Option<u64>, redis::Value) = redis::pipe()
            .cmd("GET")
            .arg(self.keys.webhooks_version())
            .cmd("XRANGE")
            .arg(self.keys.webhooks_changes())
            .arg(format!("{}-0", applied + 1))
            .arg("+")
            .query_async(&mut conn)
            .await?;
        let current = current.unwrap_or(0);
        let changes: Vec<(u64, WebhookId)> = super::reply::entries(&log)
            .map_err(StoreError::Corrupt)?
            .iter()
            .filter_map(|entry| Some((entry.id.ms, WebhookId::parse(entry.field_str("id")?)?)))
            .collect();
        // Complete only if it holds every version from applied + 1 to current.
        let complete = changes.len() as u64 == current.saturating_sub(applied)
            && changes.first().is_none_or(|(version, _)| *version == applied + 1);
        Ok(complete.then_some((changes, current)))
    }

    /// Every webhook id, oldest first.
    pub async fn ids(&self) -> StoreResult<Vec<WebhookId>> {
        let mut conn = self.conn.clone();
        let ids: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.webhooks_all())
            .arg(0)
            .arg(-1)
            .query_async(&mut conn)
            .await?;
        Ok(ids.iter().filter_map(|id| WebhookId::parse(id)).collect())
    }

    /// The webhooks among `ids` that exist, in the order given.
    pub async fn get_many(&self, ids: &[WebhookId]) -> StoreResult<Vec<Webhook>> {
        let mut webhooks = Vec::with_capacity(ids.len());
        let mut conn = self.conn.clone();
        for chunk in ids.chunks(LOAD_CHUNK) {
            let mut pipe = redis::pipe();
            for id in chunk {
                pipe.cmd("HGETALL").arg(self.keys.webhook(id));
            }
            let records: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
            for (id, fields) in chunk.iter().zip(records) {
                if fields.is_empty() {
                    continue;
                }
                match decode(&fields) {
                    Ok((webhook, _)) => webhooks.push(webhook),
                    Err(problem) => {
                        tracing::warn!(webhook = %id, %problem, "skipping unreadable webhook record")
                    }
                }
            }
        }
        Ok(webhooks)
    }

    /// One page of webhooks matching `query`, ascending by id (= creation time).
    pub async fn list(&self, query: &ListQuery) -> StoreResult<WebhookPage> {
        let mut groups: Vec<Vec<String>> = Vec::new();
        if let Some(event) = &query.event {
            groups.push(
                TypePattern::candidates_for(event)
                    .map(|pattern| self.keys.webhooks_with_type(&pattern))
                    .collect(),
            );
        }
        if let Some(user) = &query.user {
            let mut scope = vec![self.keys.webhooks_of_user(user.as_str())];
            if query.event.is_some() {
                scope.push(self.keys.webhooks_global());
            }
            groups.push(scope);
        }
        if let Some(pattern) = &query.type_pattern {
            groups.push(vec![self.keys.webhooks_with_type(pattern)]);
        }
        let (direction, bound) = match &query.cursor {
            None => ("first", String::new()),
            Some((ListDirection::Next, id)) => ("next", id.to_string()),
            Some((ListDirection::Previous, id)) => ("prev", id.to_string()),
        };
        let mut invocation = LIST.prepare_invoke();
        let scratch = self.keys.list_scratch();
        invocation
            .key(&scratch)
            .key(format!("{scratch}:2"))
            .key(self.keys.webhooks_all());
        for group in &groups {
            invocation.key(&group[..]);
        }
        invocation.arg(direction).arg(bound).arg(query.limit).arg(groups.len());
        for group in &groups {
            invocation.arg(group.len());
        }
        let mut conn = self.conn.clone();
        let reply: Vec<redis::Value> = invocation.invoke_async(&mut conn).await?;
        let number = |i: usize| match reply.get(i) {
            Some(redis::Value::Int(n)) => Ok(*n),
            other => Err(StoreError::Corrupt(format!("list script returned {other:?}"))),
        };
        let (total, has_previous, has_next) = (number(0)?, number(1)?, number(2)?);
        let ids: Vec<WebhookId> = reply[3..]
            .iter()
            .filter_map(|value| match value {
                redis::Value::BulkString(bytes) => std::str::from_utf8(bytes).ok().and_then(WebhookId::parse),
                _ => None,
            })
            .collect();
        Ok(WebhookPage {
            total: total as u64,
            results: self.get_many(&ids).await?,
            has_previous: has_previous == 1,
            has_next: has_next == 1,
        })
    }
}

fn encode(webhook: &Webhook, rev: u64) -> Vec<(&'static str, String)> {
    let types: Vec<String> = webhook.types.iter().map(ToString::to_string).collect();
    let mut fields = vec![
        ("id", webhook.id.to_string()),
        ("url", webhook.url.to_string()),
        ("type", serde_json::Value::from(types).to_string()),
        ("created", webhook.created_ms.to_string()),
        ("enabled", if webhook.enabled { "1" } else { "0" }.to_string()),
        ("paused", if webhook.paused { "1" } else { "0" }.to_string()),
        ("secret", webhook.secret.expose()),
        ("rev", rev.to_string()),
    ];
    if let Some(user) = &webhook.user {
        fields.push(("user", user.to_string()));
    }
    if let Some(reason) = &webhook.disabled_reason {
        fields.push(("disabled_reason", reason.clone()));
    }
    if let Some(previous) = &webhook.previous_secret {
        fields.push(("previous_secret", previous.secret.expose()));
        fields.push(("previous_secret_expires", previous.expires_ms.to_string()));
    }
    if let Some(rate) = webhook.delivery.rate_limit {
        fields.push(("rate_limit", rate.per_second().to_string()));
    }
    if webhook.delivery.ordering != Ordering::Parallel {
        fields.push(("ordering", webhook.delivery.ordering.to_string()));
    }
    fields
}

fn decode(fields: &HashMap<String, String>) -> Result<(Webhook, u64), String> {
    let field = |name: &str| fields.get(name).ok_or_else(|| format!("missing field {name}"));
    let id = WebhookId::parse(field("id")?).ok_or("bad id")?;
    let url = WebhookUrl::parse(field("url")?).map_err(|e| format!("url {e}"))?;
    let types: Vec<String> = serde_json::from_str(field("type")?).map_err(|e| format!("type: {e}"))?;
    let types = types
        .iter()
        .map(|t| TypePattern::parse(t))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("type {e}"))?;
    let user = fields
        .get("user")
        .map(|u| UserId::parse(u))
        .transpose()
        .map_err(|e| format!("user {e}"))?;
    let created_ms = field("created")?.parse().map_err(|_| "bad created")?;
    let rev = field("rev")?.parse().map_err(|_| "bad rev")?;
    let webhook = Webhook {
        id,
        url,
        types,
        user,
        created_ms,
        enabled: field("enabled")? == "1",
        disabled_reason: fields.get("disabled_reason").cloned(),
        paused: fields.get("paused").is_some_and(|p| p == "1"),
        secret: WebhookSecret::parse(field("secret")?).map_err(|e| format!("secret {e}"))?,
        previous_secret: match (fields.get("previous_secret"), fields.get("previous_secret_expires")) {
            (Some(secret), Some(expires)) => Some(PreviousSecret {
                secret: WebhookSecret::parse(secret).map_err(|e| format!("previous secret {e}"))?,
                expires_ms: expires.parse().map_err(|_| "bad previous_secret_expires")?,
            }),
            _ => None,
        },
        delivery: DeliveryOptions {
            rate_limit: fields
                .get("rate_limit")
                .map(|rate| {
                    rate.parse()
                        .map_err(|_| "bad rate_limit".to_string())
                        .and_then(RateLimit::parse)
                })
                .transpose()
                .map_err(|e| format!("rate_limit {e}"))?,
            ordering: fields
                .get("ordering")
                .map(|ordering| Ordering::parse(ordering))
                .transpose()
                .map_err(|e| format!("ordering {e}"))?
                .unwrap_or_default(),
        },
    };
    Ok((webhook, rev))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notices_round_trip_through_the_channel_format() {
        let (id, other) = (WebhookId::generate(), WebhookId::generate());
        for notice in [
            Notice::Record(id, 42),
            Notice::Queue(id),
            Notice::RetryNow(id),
            Notice::Work(vec![(id, StreamId::parse("17-3")), (other, None)]),
            Notice::Instances,
        ] {
            assert_eq!(Notice::parse(notice.encode().as_bytes()), Some(notice));
        }
        // What the Lua scripts publish.
        assert_eq!(Notice::parse(format!("{id}:7").as_bytes()), Some(Notice::Record(id, 7)));
        assert_eq!(Notice::parse(b"nope"), None);
        assert_eq!(Notice::parse(format!("{id}:x").as_bytes()), None);
        assert_eq!(Notice::parse(format!("work:{id},nope").as_bytes()), None);
        assert_eq!(Notice::parse(format!("work:{id}@x").as_bytes()), None);
    }
}
