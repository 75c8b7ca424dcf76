//! WildDuck's access tokens in WildDuck's Redis (`tn:token:<sha256>`, see [`super::keys`]):
//! read for `[api] wildduck_tokens`, extended on use and deleted past their lifetime, as
//! WildDuck's own API does with the same keys (`security::wildduck_tokens` decides which).

use std::collections::HashMap;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::keys::wildduck_token;
use super::StoreResult;
use crate::config::RedisSettings;

#[derive(Clone)]
pub struct WildDuckTokenStore {
    conn: ConnectionManager,
}

impl WildDuckTokenStore {
    /// Connects lazily to WildDuck's Redis at `url`, like [`super::Store::new`] (with the
    /// timeout and TLS files of `settings`).
    pub fn new(url: &str, settings: &RedisSettings) -> StoreResult<WildDuckTokenStore> {
        let timeout = Duration::from_millis(settings.timeout_ms);
        let client = super::connect::client(url, settings)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout.min(Duration::from_secs(2))))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        Ok(WildDuckTokenStore {
            conn: client.get_connection_manager_lazy(config)?,
        })
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
