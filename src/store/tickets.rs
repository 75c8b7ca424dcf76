//! Dashboard stream tickets: `EventSource` cannot send a header, so a page that holds an access
//! token trades it for a ticket (`POST /dashboard/ticket`) and opens the stream with that in
//! its URL. Tickets live in Redis, so one made on any instance opens a stream on any other;
//! each is stored by its digest (what reaches Redis is not the ticket), opens one stream, and
//! expires unused after a few seconds. A ticket that ends up in an access log is worthless.

use std::time::Duration;

use super::RedisConn;

use super::{Keys, StoreResult};

#[derive(Clone)]
pub struct TicketStore {
    conn: RedisConn,
    keys: Keys,
}

impl TicketStore {
    pub(super) fn new(conn: RedisConn, keys: Keys) -> TicketStore {
        TicketStore { conn, keys }
    }

    /// Records a ticket (by its digest), valid for `ttl`.
    pub async fn issue(&self, digest: &str, ttl: Duration) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        redis::cmd("SET")
            .arg(self.keys.ticket(digest))
            .arg(1)
            .arg("PX")
            .arg(ttl.as_millis() as u64)
            .query_async::<()>(&mut conn)
            .await?;
        Ok(())
    }

    /// Uses a ticket up: true if it was valid (issued, unused, not expired).
    pub async fn redeem(&self, digest: &str) -> StoreResult<bool> {
        let mut conn = self.conn.clone();
        let found: Option<String> = redis::cmd("GETDEL")
            .arg(self.keys.ticket(digest))
            .query_async(&mut conn)
            .await?;
        Ok(found.is_some())
    }
}
