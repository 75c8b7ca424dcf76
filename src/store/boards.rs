//! Instance boards: each delivering instance writes what its running delivery actors look like
//! (`P:board:<instance>`, JSON made by `actors::board`) every half second with a short expiry,
//! and notes the time in the registry `P:boards`. Whichever instance serves the dashboard reads
//! the live boards and merges them, so it shows every webhook with work, whichever instance
//! delivers it. A board that stops being written expires by itself: a stopped or dead instance
//! drops off within seconds.

use std::time::Duration;

use redis::aio::ConnectionManager;

use super::{Keys, StoreResult};

/// How long a registry entry outlives its board's last write before it is pruned.
const REGISTRY_KEEP: Duration = Duration::from_secs(60);

#[derive(Clone)]
pub struct BoardStore {
    conn: ConnectionManager,
    keys: Keys,
}

impl BoardStore {
    pub(super) fn new(conn: ConnectionManager, keys: Keys) -> BoardStore {
        BoardStore { conn, keys }
    }

    /// Writes this instance's board, to expire after `ttl` unless written again.
    pub async fn publish(&self, instance: &str, board: &[u8], now_ms: u64, ttl: Duration) -> StoreResult<()> {
        let registry = self.keys.boards();
        let keep = REGISTRY_KEEP.as_millis() as u64;
        let mut conn = self.conn.clone();
        redis::pipe()
            .cmd("SET")
            .arg(self.keys.board(instance))
            .arg(board)
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .ignore()
            .cmd("ZADD")
            .arg(&registry)
            .arg(now_ms)
            .arg(instance)
            .ignore()
            .cmd("ZREMRANGEBYSCORE")
            .arg(&registry)
            .arg("-inf")
            .arg(format!("({}", now_ms.saturating_sub(keep)))
            .ignore()
            .cmd("PEXPIRE")
            .arg(&registry)
            .arg(keep)
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Removes this instance's board at once (a graceful stop).
    pub async fn withdraw(&self, instance: &str) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        redis::pipe()
            .cmd("DEL")
            .arg(self.keys.board(instance))
            .ignore()
            .cmd("ZREM")
            .arg(self.keys.boards())
            .arg(instance)
            .ignore()
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Instances whose board was written in the last `within`, by name.
    pub async fn recent_writers(&self, now_ms: u64, within: Duration) -> StoreResult<Vec<String>> {
        let mut conn = self.conn.clone();
        Ok(redis::cmd("ZRANGE")
            .arg(self.keys.boards())
            .arg(now_ms.saturating_sub(within.as_millis() as u64))
            .arg("+inf")
            .arg("BYSCORE")
            .query_async(&mut conn)
            .await?)
    }

    /// The boards of these instances (JSON), in order; None where a board expired.
    pub async fn read(&self, instances: &[String]) -> StoreResult<Vec<Option<String>>> {
        if instances.is_empty() {
            return Ok(Vec::new());
        }
        let keys: Vec<String> = instances.iter().map(|name| self.keys.board(name)).collect();
        let mut conn = self.conn.clone();
        Ok(redis::cmd("MGET").arg(keys).query_async(&mut conn).await?)
    }
}
