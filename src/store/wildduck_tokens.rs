//! WildDuck's access tokens in WildDuck's Redis (`tn:token:<sha256>`, see [`super::keys`]):
//! read for `[api] wildduck_tokens`, extended on use and deleted past their lifetime, as
//! WildDuck's own API does with the same keys (`security::wildduck_tokens` decides which).
//!
//! Its connection is a [`RedisConn`], like every other store handle's: when WildDuck's Redis is
//! hookrouter's own (`[api] wildduck_redis_url` and `[bullmq] url` empty, or equal to
//! `[redis] url`) it is the shared one, so with Sentinel the tokens are read from whichever
//! server is the primary now, and extended there (a replica would answer `READONLY`). Another
//! Redis is taken at its URL, as the BullMQ source takes BullMQ's other Redis: the sentinels
//! name hookrouter's primary, not that one.

use std::collections::HashMap;

use super::failover::RedisConn;
use super::keys::wildduck_token;
use super::{Store, StoreResult};
use crate::config::RedisSettings;

#[derive(Clone)]
pub struct WildDuckTokenStore {
    /// WildDuck's Redis: `ours`'s connection when it is the same, following a failover.
    conn: RedisConn,
}

impl WildDuckTokenStore {
    /// Connects lazily to WildDuck's Redis at `url`: `ours` itself when `url` is empty or
    /// `[redis] url`, else a store of its own at `url` (with the timeout and TLS files of
    /// `settings`, without the sentinels).
    pub fn new(ours: &Store, url: &str, settings: &RedisSettings) -> StoreResult<WildDuckTokenStore> {
        let store = if url.is_empty() || url == settings.url {
            ours.clone()
        } else {
            Store::new(&RedisSettings {
                url: url.to_string(),
                sentinels: Vec::new(),
                ..settings.clone()
            })?
        };
        Ok(WildDuckTokenStore { conn: store.conn })
    }

    /// The token's hash fields (empty when there is none); fields that are not UTF-8 are left
    /// out, which makes a token that needs them invalid.
    pub async fn read(&self, digest: &str) -> StoreResult<HashMap<String, String>> {
        let mut conn = self.conn.clone();
        let raw: HashMap<Vec<u8>, Vec<u8>> = redis::cmd("HGETALL")
            .arg(wildduck_token(digest))
            .query_async(&mut conn)
            .await?;
        Ok(raw
            .into_iter()
            .filter_map(|(k, v)| Some((String::from_utf8(k).ok()?, String::from_utf8(v).ok()?)))
            .collect())
    }

    /// Sets the token's expiry to `ttl_s` seconds from now (WildDuck's sliding session). Errors
    /// are ignored, as WildDuck ignores them.
    pub async fn extend(&self, digest: &str, ttl_s: u64) {
        let mut conn = self.conn.clone();
        let _: Result<i64, _> = redis::cmd("EXPIRE")
            .arg(wildduck_token(digest))
            .arg(ttl_s)
            .query_async(&mut conn)
            .await;
    }

    /// Deletes a token past its lifetime, as WildDuck does; errors are ignored, as there.
    pub async fn delete(&self, digest: &str) {
        let mut conn = self.conn.clone();
        let _: Result<i64, _> = redis::cmd("DEL")
            .arg(wildduck_token(digest))
            .query_async(&mut conn)
            .await;
    }
}
