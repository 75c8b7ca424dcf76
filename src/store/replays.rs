//! Replays: the retained events of a time range sent again to one webhook, as a resource with
//! progress that any delivering instance can run and resume.
//!
//! A webhook's replays live in one hash, `P:replays:<id>` (`next`: the last number given; `<n>`:
//! the replay's [`ReplayState`] as JSON; `<n>:delivered`: how many of its entries were
//! delivered, counted by `settle.lua` from the field `r` its queue entries carry), so deleting
//! the webhook deletes them. `P:replays`
//! lists the running ones (`<webhook>/<n>`). An instance runs a replay while it holds the
//! replay's lease `P:replay:lease:<id>/<n>` (taken with `SET NX`, expiring after
//! `leases.ttl_ms` unless renewed, like a webhook's lease). Each step appends a bounded batch of
//! retained events to the webhook's queue and moves the replay's cursor in the same script
//! (`replay_step.lua`), fenced by the lease and the replay's state: so when the instance
//! running it dies, another takes the lease once it expires and goes on from the cursor, and a
//! cancelled replay stops at the next step.
//!
//! Invariants, kept by the scripts: a replay is in `P:replays` exactly while its state is
//! `running`; `queued` ≤ `matched`; the cursor only moves forward.

use std::collections::HashMap;
use std::sync::LazyLock;

use super::RedisConn;
use redis::{Script, Value};
use serde::{Deserialize, Serialize};

use super::reply::entries;
use super::{Keys, StoreError, StoreResult};
use crate::domain::{StreamId, WebhookId};

static CREATE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/replay_create.lua")));
static HOLD: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/replay_hold.lua")));
static STEP: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/replay_step.lua")));
static CANCEL: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/replay_cancel.lua")));

/// Replays a webhook keeps (running ones are never dropped).
const KEPT: u64 = 20;
/// Dead letters read per page when a replay of undelivered events looks them up.
const DEAD_PAGE: usize = 1_000;

/// Where a replay is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ReplayPhase {
    Running,
    Done,
    Cancelled,
}

/// A replay as stored (JSON in `P:replays:<id>`; the scripts read and write it with cjson).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplayState {
    /// Its number among the webhook's replays.
    pub id: u64,
    /// The range of routing times replayed (ms, both ends included).
    pub since: u64,
    pub until: u64,
    /// Skip the events already delivered with a 2xx (and those still queued).
    pub only_undelivered: bool,
    pub state: ReplayPhase,
    /// The last retained entry looked at ("" before the first step).
    #[serde(default)]
    pub cursor: String,
    /// Events of the range that match the webhook (as it is now), looked at so far.
    pub matched: u64,
    /// Of those, the ones put on the queue.
    pub queued: u64,
    /// Of those, the ones delivered so far (a counter of its own, not in the JSON: the
    /// delivering instance counts it as it settles them).
    #[serde(skip)]
    pub delivered: u64,
    /// When it was asked for and when it ended (ms).
    pub created: u64,
    #[serde(default)]
    pub finished: Option<u64>,
}

impl ReplayState {
    /// The last retained entry looked at.
    pub fn cursor(&self) -> Option<StreamId> {
        StreamId::parse(&self.cursor)
    }
}

/// One step's writes (see `replay_step.lua`).
#[derive(Debug, Default)]
pub struct ReplayStep {
    /// The last retained entry the step looked at.
    pub cursor: Option<StreamId>,
    /// The range is exhausted after this step.
    pub last: bool,
    /// Events of the batch that matched the webhook.
    pub matched: u64,
    /// For each event to queue: its queue field `d`, and the dead letter it replaces.
    pub entries: Vec<(Vec<u8>, Option<StreamId>)>,
}

/// How a step ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Stepped {
    Queued(u64),
    /// Another instance holds the lease now: nothing was written.
    Fenced,
    /// Cancelled, or its webhook deleted: nothing was written.
    Stopped,
}

#[derive(Clone)]
pub struct ReplayStore {
    conn: RedisConn,
    keys: Keys,
}

impl ReplayStore {
    pub(super) fn new(conn: RedisConn, keys: Keys) -> ReplayStore {
        ReplayStore { conn, keys }
    }

    fn member(webhook: &WebhookId, n: u64) -> String {
        format!("{webhook}/{n}")
    }

    /// Starts a replay of `[since, until]` for the webhook; None when it does not exist.
    pub async fn create(
        &self,
        webhook: &WebhookId,
        (since, until): (u64, u64),
        only_undelivered: bool,
    ) -> StoreResult<Option<ReplayState>> {
        let now = crate::clock::now_ms();
        let mut state = ReplayState {
            id: 0,
            since,
            until,
            only_undelivered,
            state: ReplayPhase::Running,
            cursor: String::new(),
            matched: 0,
            queued: 0,
            delivered: 0,
            created: now,
            finished: None,
        };
        let json = serde_json::to_string(&state).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut conn = self.conn.clone();
        let n: u64 = CREATE
            .key(self.keys.webhook(webhook))
            .key(self.keys.replays_of(webhook))
            .key(self.keys.replays_running())
            .arg(json)
            .arg(now)
            .arg(webhook.to_string())
            .arg(KEPT)
            .invoke_async(&mut conn)
            .await?;
        state.id = n;
        Ok((n > 0).then_some(state))
    }

    pub async fn get(&self, webhook: &WebhookId, n: u64) -> StoreResult<Option<ReplayState>> {
        let mut conn = self.conn.clone();
        let (raw, delivered): (Option<String>, Option<u64>) = redis::cmd("HMGET")
            .arg(self.keys.replays_of(webhook))
            .arg(n)
            .arg(format!("{n}:delivered"))
            .query_async(&mut conn)
            .await?;
        let state = raw.as_deref().map(decode).transpose()?;
        Ok(state.map(|state| ReplayState {
            delivered: delivered.unwrap_or(0),
            ..state
        }))
    }

    /// The webhook's replays, newest first.
    pub async fn list(&self, webhook: &WebhookId) -> StoreResult<Vec<ReplayState>> {
        let mut conn = self.conn.clone();
        let all: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.keys.replays_of(webhook))
            .query_async(&mut conn)
            .await?;
        let mut replays = all
            .iter()
            .filter(|(field, _)| field.parse::<u64>().is_ok())
            .map(|(field, raw)| {
                let delivered = all.get(&format!("{field}:delivered")).and_then(|n| n.parse().ok());
                decode(raw).map(|state| ReplayState {
                    delivered: delivered.unwrap_or(0),
                    ..state
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        replays.sort_by_key(|replay| std::cmp::Reverse(replay.id));
        Ok(replays)
    }

    /// Cancels a replay (nothing changes when it already ended); None when there is none.
    pub async fn cancel(&self, webhook: &WebhookId, n: u64) -> StoreResult<Option<ReplayState>> {
        let mut conn = self.conn.clone();
        let raw: Option<String> = CANCEL
            .key(self.keys.replays_of(webhook))
            .key(self.keys.replays_running())
            .key(self.keys.replay_lease(webhook, n))
            .arg(n)
            .arg(crate::clock::now_ms())
            .arg(Self::member(webhook, n))
            .invoke_async(&mut conn)
            .await?;
        match raw {
            // As it is now, with its delivered count.
            Some(_) => self.get(webhook, n).await,
            None => Ok(None),
        }
    }

    /// The running replays, oldest first, at most `count`.
    pub async fn running(&self, count: usize) -> StoreResult<Vec<(WebhookId, u64)>> {
        let mut conn = self.conn.clone();
        let members: Vec<String> = redis::cmd("ZRANGE")
            .arg(self.keys.replays_running())
            .arg(0)
            .arg(count.saturating_sub(1))
            .query_async(&mut conn)
            .await?;
        Ok(members
            .iter()
            .filter_map(|member| {
                let (webhook, n) = member.split_once('/')?;
                Some((WebhookId::parse(webhook)?, n.parse().ok()?))
            })
            .collect())
    }

    /// Drops a replay from the running list when its state is gone (its webhook was deleted).
    pub async fn forget(&self, webhook: &WebhookId, n: u64) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("ZREM")
            .arg(self.keys.replays_running())
            .arg(Self::member(webhook, n))
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Takes or extends the replay's lease for `token`; whether this caller holds it.
    pub async fn hold(&self, webhook: &WebhookId, n: u64, token: &str, ttl_ms: u64) -> StoreResult<bool> {
        let mut conn = self.conn.clone();
        let held: i64 = HOLD
            .key(self.keys.replay_lease(webhook, n))
            .arg(token)
            .arg(ttl_ms)
            .invoke_async(&mut conn)
            .await?;
        Ok(held == 1)
    }

    /// Writes one step (fenced by the lease `token` and the replay's state).
    pub async fn step(
        &self,
        webhook: &WebhookId,
        n: u64,
        (token, ttl_ms): (&str, u64),
        step: &ReplayStep,
    ) -> StoreResult<Stepped> {
        let mut invocation = STEP.prepare_invoke();
        invocation
            .key(self.keys.replay_lease(webhook, n))
            .key(self.keys.replays_of(webhook))
            .key(self.keys.queue(webhook))
            .key(self.keys.dead(webhook))
            .key(self.keys.replays_running())
            .arg(n)
            .arg(token)
            .arg(ttl_ms)
            .arg(step.cursor.map(|c| c.to_string()).unwrap_or_default())
            .arg(if step.last { "1" } else { "0" })
            .arg(step.matched)
            .arg(crate::clock::now_ms())
            .arg(Self::member(webhook, n));
        for (d, dead) in &step.entries {
            invocation
                .arg(d.as_slice())
                .arg(dead.map(|d| d.to_string()).unwrap_or_default());
        }
        let mut conn = self.conn.clone();
        let reply: i64 = invocation.invoke_async(&mut conn).await?;
        Ok(match reply {
            -1 => Stepped::Fenced,
            -2 => Stepped::Stopped,
            queued => Stepped::Queued(queued as u64),
        })
    }

    /// The webhook's dead letters by event id (event → dead letter entry), for a replay of
    /// undelivered events: bounded by `dead_letters.max_len`, whatever the range replayed.
    pub async fn dead_letters(&self, webhook: &WebhookId) -> StoreResult<HashMap<StreamId, StreamId>> {
        let mut conn = self.conn.clone();
        let mut found = HashMap::new();
        let mut start = "-".to_string();
        loop {
            let reply: Value = redis::cmd("XRANGE")
                .arg(self.keys.dead(webhook))
                .arg(&start)
                .arg("+")
                .arg("COUNT")
                .arg(DEAD_PAGE)
                .query_async(&mut conn)
                .await?;
            let page = entries(&reply).map_err(StoreError::Corrupt)?;
            for letter in &page {
                if let Some(event) = letter.field_str("e").and_then(StreamId::parse) {
                    found.insert(event, letter.id);
                }
            }
            match page.last() {
                Some(last) if page.len() == DEAD_PAGE => start = format!("({}", last.id),
                _ => return Ok(found),
            }
        }
    }
}

fn decode(raw: &str) -> StoreResult<ReplayState> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("replay state {raw:?}: {e}")))
}
