//! Steady producers for the failover tests, one per source hookrouter reads, each logging every
//! event it sent ([`Sent`]) and whether it was acknowledged, so a test can require exactly the
//! acknowledged ones at the receiver:
//! - [`post_producer`]: `POST /events` through the instances in turn; acknowledged = 200;
//! - [`stream_producer`]: `XADD <prefix>:events * event <json>` at the primary the sentinels
//!   name, followed by `WAIT 1 1000` on the same connection; acknowledged = an id, then WAIT 1;
//! - [`bullmq_producer`]: WildDuck's BullMQ queue fed by the real `bullmq` package (node,
//!   following the sentinels through ioredis); acknowledged = `add` resolved, then WAIT 1 on
//!   the queue's connection, with no reconnect in between.
//!
//! Each event is `{"ev": "message.new", "src": <source>, "n": <number>}`; each producer stops
//! when `stop` is set, and the BullMQ one returns only once node reported every job.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};

use super::bullmq::WildDuckQueue;
use super::sentinel::named_primary;

/// Pause between two events of one producer.
const PACE: Duration = Duration::from_millis(10);

/// One event a producer sent: its source and number, when, and whether it was acknowledged.
pub struct Sent {
    pub source: &'static str,
    pub n: u64,
    /// When the producer sent it (for BullMQ: wrote it to node).
    pub at: Instant,
    pub acked: bool,
    /// The answer as the producer got it: a status, `WAIT 0`, an error.
    pub answer: String,
}

pub type Log = Rc<RefCell<Vec<Sent>>>;

pub fn event(source: &str, n: u64) -> Value {
    json!({"ev": "message.new", "src": source, "n": n})
}

/// `POST /events` one after another, through each of `urls` in turn.
pub async fn post_producer(urls: Vec<String>, log: Log, stop: Rc<Cell<bool>>) {
    let client = awc::Client::builder().timeout(Duration::from_secs(5)).finish();
    let mut n = 0;
    while !stop.get() {
        let at = Instant::now();
        let status = match client
            .post(&urls[n as usize % urls.len()])
            .send_json(&event("post", n))
            .await
        {
            Ok(response) => response.status().as_u16(),
            Err(_) => 0,
        };
        let (acked, answer) = (status == 200, status.to_string());
        log.borrow_mut().push(Sent {
            source: "post",
            n,
            at,
            acked,
            answer,
        });
        n += 1;
        actix_rt::time::sleep(PACE).await;
    }
}

/// A producer writing to the stream itself, as README's event format says (`XADD <prefix>:events
/// * event <json>`), at the primary the sentinels name, each `XADD` followed by `WAIT 1 1000`.
pub async fn stream_producer(sentinels: Vec<u16>, key: String, log: Log, stop: Rc<Cell<bool>>) {
    let mut conn = None;
    let mut n = 0;
    while !stop.get() {
        let at = Instant::now();
        let answer = xadd_replicated(&mut conn, &sentinels, &key, &event("stream", n).to_string()).await;
        let (acked, answer) = match answer {
            Ok(()) => (true, "WAIT 1".to_string()),
            Err(why) => (false, why),
        };
        log.borrow_mut().push(Sent {
            source: "stream",
            n,
            at,
            acked,
            answer,
        });
        n += 1;
        actix_rt::time::sleep(PACE).await;
    }
}

/// `XADD` then `WAIT 1 1000` on one connection (dropped on any error, so the next goes to the
/// primary the sentinels name then: a `WAIT` on another connection would confirm nothing).
async fn xadd_replicated(
    conn: &mut Option<redis::aio::MultiplexedConnection>,
    sentinels: &[u16],
    key: &str,
    raw: &str,
) -> Result<(), String> {
    if conn.is_none() {
        let mut primary = None;
        for sentinel in sentinels {
            primary = primary.or(named_primary(*sentinel).await);
        }
        let port = primary.ok_or("no sentinel answered")?;
        let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).map_err(|e| e.to_string())?;
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_secs(2)));
        let connected = client.get_multiplexed_async_connection_with_config(&config).await;
        *conn = Some(connected.map_err(|e| e.to_string())?);
    }
    let Some(c) = conn.as_mut() else {
        return Err("no connection".into());
    };
    let written = async {
        let _id: String = redis::cmd("XADD")
            .arg(key)
            .arg("*")
            .arg("event")
            .arg(raw)
            .query_async(c)
            .await?;
        redis::cmd("WAIT").arg(1).arg(1000).query_async::<u64>(c).await
    };
    match written.await {
        Ok(replicas) if replicas >= 1 => Ok(()),
        Ok(_) => Err("WAIT 0".into()),
        Err(e) => {
            *conn = None;
            Err(e.to_string())
        }
    }
}

/// WildDuck's BullMQ queue fed by the real `bullmq` package following the sentinels; returns
/// when its node process has reported every job written to it (after `stop`).
pub async fn bullmq_producer(queue: WildDuckQueue, log: Log, stop: Rc<Cell<bool>>) {
    let mut child = queue.producer(&json!({"wait": 1, "waitMs": 1000}));
    let mut stdin = child.stdin.take().expect("the producer's stdin");
    let stdout = child.stdout.take().expect("the producer's stdout");
    let sent_at: Rc<RefCell<HashMap<u64, Instant>>> = Rc::default();
    let reader = {
        let sent_at = sent_at.clone();
        actix_rt::spawn(async move {
            let mut lines = tokio::io::BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let Ok(reply) = serde_json::from_str::<Value>(&line) else {
                    continue;
                };
                let Some(n) = reply["n"].as_u64() else { continue };
                let at = sent_at.borrow()[&n];
                let (acked, answer) = match (&reply["replicas"], &reply["error"]) {
                    (Value::Number(k), Value::Null) => (k.as_u64() >= Some(1), format!("WAIT {k}")),
                    (_, error) => (false, error.to_string()),
                };
                log.borrow_mut().push(Sent {
                    source: "bullmq",
                    n,
                    at,
                    acked,
                    answer,
                });
            }
        })
    };
    let mut n = 0;
    while !stop.get() {
        sent_at.borrow_mut().insert(n, Instant::now());
        let line = format!("{}\n", event("bullmq", n));
        stdin.write_all(line.as_bytes()).await.expect("write to the producer");
        n += 1;
        actix_rt::time::sleep(PACE).await;
    }
    drop(stdin);
    let finished = actix_rt::time::timeout(Duration::from_secs(30), reader).await;
    assert!(finished.is_ok(), "the BullMQ producer reports every job within 30 s");
    let _ = child.wait().await;
}
