//! Membership: which hookrouter instances share this prefix, and which of them are alive.
//!
//! Every instance sends a heartbeat every `leases.ttl_ms / 4`: its name in the sorted set
//! `P:instances`, scored by the time of the heartbeat, and its details in `P:instance:<name>`
//! (delivering or API-only, started at, webhooks owned). Times are Redis's own (`TIME`), so
//! instances with different clocks agree. An instance counts as alive while its last heartbeat
//! is under `leases.ttl_ms` old; a leaving instance removes itself at once.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::Duration;

use super::RedisConn;
use redis::Script;

use super::{Keys, StoreResult};
use crate::domain::InstanceName;

static HEARTBEAT: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/instance_heartbeat.lua")));

/// A live instance, as its last heartbeat described it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub name: String,
    /// Delivers (owns webhooks), rather than serving the API only.
    pub delivering: bool,
    /// Webhooks it owns.
    pub webhooks: u64,
    pub started_ms: u64,
    pub last_seen_ms: u64,
}

/// What one heartbeat says of this instance.
#[derive(Debug, Clone, Copy)]
pub struct Beat {
    pub delivering: bool,
    pub started_ms: u64,
    pub webhooks: u64,
}

#[derive(Clone)]
pub struct InstanceStore {
    conn: RedisConn,
    keys: Keys,
    ttl: Duration,
}

impl InstanceStore {
    pub(super) fn new(conn: RedisConn, keys: Keys, ttl: Duration) -> InstanceStore {
        InstanceStore { conn, keys, ttl }
    }

    /// Records this instance's heartbeat; returns Redis's time (ms).
    pub async fn heartbeat(&self, me: &InstanceName, beat: Beat) -> StoreResult<u64> {
        let mut conn = self.conn.clone();
        Ok(HEARTBEAT
            .key(self.keys.instances())
            .key(self.keys.instance(me.as_str()))
            .arg(me.as_str())
            .arg(u8::from(beat.delivering))
            .arg(beat.started_ms)
            .arg(beat.webhooks)
            .arg(self.ttl.as_millis() as u64)
            .invoke_async(&mut conn)
            .await?)
    }

    /// The instances alive now (heard from within `leases.ttl_ms`), by name.
    pub async fn live(&self) -> StoreResult<Vec<Member>> {
        let mut conn = self.conn.clone();
        let ((seconds, micros), seen): ((u64, u64), Vec<(String, u64)>) = redis::pipe()
            .cmd("TIME")
            .cmd("ZRANGE")
            .arg(self.keys.instances())
            .arg(0)
            .arg(-1)
            .arg("WITHSCORES")
            .query_async(&mut conn)
            .await?;
        let now = seconds * 1000 + micros / 1000;
        let alive: Vec<(String, u64)> = seen
            .into_iter()
            .filter(|(_, last)| last + self.ttl.as_millis() as u64 > now)
            .collect();
        if alive.is_empty() {
            return Ok(Vec::new());
        }
        let mut pipe = redis::pipe();
        for (name, _) in &alive {
            pipe.cmd("HGETALL").arg(self.keys.instance(name));
        }
        let details: Vec<HashMap<String, String>> = pipe.query_async(&mut conn).await?;
        let mut members: Vec<Member> = alive
            .into_iter()
            .zip(details)
            .map(|((name, last_seen_ms), fields)| {
                let number = |field: &str| fields.get(field).and_then(|v| v.parse().ok()).unwrap_or(0);
                Member {
                    delivering: fields.get("delivering").is_some_and(|d| d == "1"),
                    webhooks: number("webhooks"),
                    started_ms: number("startedAt"),
                    last_seen_ms,
                    name,
                }
            })
            .collect();
        members.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(members)
    }

    /// Removes this instance at once (a graceful stop).
    pub async fn leave(&self, me: &InstanceName) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .atomic()
            .cmd("ZREM")
            .arg(self.keys.instances())
            .arg(me.as_str())
            .ignore()
            .cmd("DEL")
            .arg(self.keys.instance(me.as_str()))
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }
}
