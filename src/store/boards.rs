//! Instance boards: each delivering instance writes what its running delivery actors look like
//! (`P:board:<instance>`, JSON made by `actors::board`) every half second with a short expiry.
//! Whichever instance serves the dashboard reads the boards of the live instances (membership:
//! `instances.rs`) and merges them, so it shows every webhook with work, whichever instance
//! delivers it. A board that stops being written expires by itself: a stopped or dead instance
//! drops off within seconds.

use std::time::Duration;

use super::RedisConn;

use super::{Keys, StoreResult};

#[derive(Clone)]
pub struct BoardStore {
    conn: RedisConn,
    keys: Keys,
}

impl BoardStore {
    pub(super) fn new(conn: RedisConn, keys: Keys) -> BoardStore {
        BoardStore { conn, keys }
    }

    /// Writes this instance's board, to expire after `ttl` unless written again.
    pub async fn publish(&self, instance: &str, board: &[u8], ttl: Duration) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.keys.board(instance))
            .arg(board)
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Removes this instance's board at once (a graceful stop).
    pub async fn withdraw(&self, instance: &str) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("DEL")
            .arg(self.keys.board(instance))
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
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
