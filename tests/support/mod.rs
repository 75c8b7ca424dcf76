//! Test helpers: a running hookrouter per test ([`TestApp`]), real HTTP and HTTPS receivers
//! ([`Receiver`]; certificates from a test CA in [`tls`]), direct Redis access for producing
//! events and checking keys, and the dashboard in a real browser ([`browser`]).
//!
//! Every `TestApp` gets its own Redis key prefix and deletes its keys when dropped, so tests
//! run in parallel against one Redis.

#![allow(dead_code, unused_imports)]

pub mod answer;
pub mod app;
pub mod browser;
pub mod bullmq;
pub mod chaos;
pub mod failover_load;
pub mod host;
pub mod ledger;
pub mod ports;
pub mod process;
pub mod python;
mod receiver;
pub mod redis_process;
pub mod sentinel;
pub mod tcp;
pub mod tls;
pub mod wildduck_tokens;

pub use app::{TestApp, REDIS_URL};
pub use receiver::{Received, Receiver, Reply};

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `check` until it returns Some or `timeout` passes (then panics with `what`).
pub async fn eventually<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A prefix no other test uses.
pub fn unique_prefix() -> String {
    format!("hrtest-{:016x}", rand::random::<u64>())
}

/// A prefix no other test uses, whose keys are deleted when it is dropped, also when the test
/// fails. Declare it before the service processes that write under it: locals drop in reverse
/// order, so the processes are gone (killed and reaped) before the keys are deleted, and none
/// writes a key back afterwards. Not `Clone`: a copy would delete the keys when it dropped.
pub struct TestPrefix(String);

impl TestPrefix {
    pub fn new() -> TestPrefix {
        TestPrefix(unique_prefix())
    }
}

impl std::ops::Deref for TestPrefix {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for TestPrefix {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl Drop for TestPrefix {
    fn drop(&mut self) {
        delete_prefix(&self.0);
    }
}

/// Deletes every key under `prefix`.
pub fn delete_prefix(prefix: &str) {
    let Ok(client) = redis::Client::open(REDIS_URL) else {
        return;
    };
    let Ok(mut conn) = client.get_connection() else {
        return;
    };
    let pattern = format!("{prefix}:*");
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query(&mut conn).unwrap_or_default();
    for chunk in keys.chunks(500) {
        let _: Result<(), _> = redis::cmd("DEL").arg(chunk).query(&mut conn);
    }
}

/// Publishes events the way a producer does, pipelined: `XADD <prefix>:events * event <raw>`.
pub async fn publish_many(prefix: &str, raws: &[Vec<u8>]) {
    let client = redis::Client::open(REDIS_URL).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
    for chunk in raws.chunks(1000) {
        let mut pipe = redis::pipe();
        for raw in chunk {
            pipe.cmd("XADD")
                .arg(format!("{prefix}:events"))
                .arg("*")
                .arg("event")
                .arg(raw.as_slice())
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await.expect("XADD");
    }
}

/// Percentiles of a set of durations in ms: (p50, p99, max).
pub fn percentiles(mut samples: Vec<f64>) -> (f64, f64, f64) {
    if samples.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    samples.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    (at(0.5), at(0.99), samples[samples.len() - 1])
}
