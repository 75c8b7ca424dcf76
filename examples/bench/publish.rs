//! The producer side: WildDuck-style events XADDed to the stream, pipelined, each carrying its
//! publish time (`sent`, µs since the epoch) so the sink can measure publish→delivery latency.

use redis::aio::MultiplexedConnection;

use super::sink::now_us;

pub struct Publisher {
    conn: MultiplexedConnection,
    key: String,
}

/// The n-th event, for `user`, as WildDuck publishes `marked.spam`: the message's ObjectId in
/// `message` and its IMAP uid (here n) in `id`, which deliveries carry as `message`.
pub fn event(n: u64, user: &str, sent: u64) -> String {
    format!(
        r#"{{"ev":"marked.spam","user":"{user}","mailbox":"6f1e9d2c8b3a4e0012345678","message":"6f1e9d2c8b3a4e0012345679","id":{n},"from":"spammer@example.net","subject":"You won","sent":{sent}}}"#
    )
}

/// The n-th user: a WildDuck user id (an ObjectId), as webhooks' users must be.
pub fn user(n: u64) -> String {
    format!("5f1e9d2c{n:016x}")
}

impl Publisher {
    pub async fn connect(redis: &str, prefix: &str) -> Publisher {
        let client = redis::Client::open(redis).expect("redis url");
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis is running");
        Publisher {
            conn,
            key: format!("{prefix}:events"),
        }
    }

    /// Publishes `count` events numbered from `first`, for users picked by `user`, in
    /// pipelines of 1000.
    pub async fn publish(&mut self, first: u64, count: u64, user: impl Fn(u64) -> String) {
        let mut n = first;
        while n < first + count {
            let end = (n + 1000).min(first + count);
            let sent = now_us();
            let mut pipe = redis::pipe();
            for i in n..end {
                pipe.cmd("XADD")
                    .arg(&self.key)
                    .arg("*")
                    .arg("event")
                    .arg(event(i, &user(i), sent))
                    .ignore();
            }
            pipe.query_async::<()>(&mut self.conn).await.expect("XADD");
            n = end;
        }
    }

    /// Any command on the publisher's connection (the harness's own look into Redis).
    pub async fn command<T: redis::FromRedisValue>(&mut self, cmd: &mut redis::Cmd) -> T {
        cmd.query_async(&mut self.conn).await.expect("redis command")
    }

    /// Redis's `used_memory`, bytes.
    pub async fn redis_memory(&mut self) -> u64 {
        let info: String = redis::cmd("INFO")
            .arg("memory")
            .query_async(&mut self.conn)
            .await
            .unwrap_or_default();
        info.lines()
            .find_map(|line| line.strip_prefix("used_memory:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    }

    /// Deletes every key of `prefix` (the run's keys; a million-entry queue is one DEL).
    pub async fn clean(&mut self, prefix: &str) {
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{prefix}:*"))
            .query_async(&mut self.conn)
            .await
            .unwrap_or_default();
        for chunk in keys.chunks(1000) {
            let _: Result<(), _> = redis::cmd("UNLINK").arg(chunk).query_async(&mut self.conn).await;
        }
    }
}
