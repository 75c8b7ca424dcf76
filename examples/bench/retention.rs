//! What retention costs (issue 26): the throughput blast (10 webhooks, 100,000 events) with
//! events retained (the default) and again with `events.retain_ms` 0, in the same run; and the
//! Redis memory the retained events take, read exactly (`MEMORY USAGE … SAMPLES 0` of the
//! retained stream and its index) after the first blast, per event and per million.

use super::publish::Publisher;
use super::report::Row;
use super::scenarios::{blast, Blast};
use super::Bench;

pub struct RetentionCost {
    pub with: Row,
    pub without: Row,
    /// Events retained after the blast with retention, and the bytes they take in Redis.
    pub retained: u64,
    pub bytes: u64,
}

pub async fn retention(bench: &Bench) -> RetentionCost {
    let events = if bench.quick { 10_000 } else { 100_000 };
    let name = "throughput, events retained";
    let with = blast(
        bench,
        name,
        Blast {
            webhooks: 10,
            events,
            keep_keys: true,
            ..Blast::default()
        },
    )
    .await;
    let prefix = bench.prefix(name);
    let mut publisher = Publisher::connect(&bench.redis, &prefix).await;
    let client = redis::Client::open(bench.redis.as_str()).expect("redis url");
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
    let memory = |key: String| redis::cmd("MEMORY").arg("USAGE").arg(key).arg("SAMPLES").arg(0).clone();
    let stream: Option<u64> = memory(format!("{prefix}:retained"))
        .query_async(&mut conn)
        .await
        .ok()
        .flatten();
    let index: Option<u64> = memory(format!("{prefix}:retained:index"))
        .query_async(&mut conn)
        .await
        .ok()
        .flatten();
    let retained: u64 = redis::cmd("XLEN")
        .arg(format!("{prefix}:retained"))
        .query_async(&mut conn)
        .await
        .unwrap_or(0);
    publisher.clean(&prefix).await;
    let without = blast(
        bench,
        "throughput, nothing retained",
        Blast {
            webhooks: 10,
            events,
            without_retention: true,
            ..Blast::default()
        },
    )
    .await;
    RetentionCost {
        with,
        without,
        retained,
        bytes: stream.unwrap_or(0) + index.unwrap_or(0),
    }
}
