//! The soak's producers: events through the stream (`XADD`), `POST /events` on a random live
//! instance, and WildDuck's BullMQ queue (the real `bullmq` package), each numbered so the
//! receiver can say which event it got, and entered in the ledger with its window and whether
//! it was accepted.

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;
use redis::aio::ConnectionManager;
use serde_json::{json, Value};

use super::fleet::Fleet;
use super::USERS;
use crate::support::bullmq::{Bullmq, WildDuckQueue};
use crate::support::ledger::{Channel, Published};

/// The service's key prefix in the soak's own Redis.
pub const PREFIX: &str = "soak";
/// BullMQ's prefix there (WildDuck's is `wd:bull`).
pub const BULL_PREFIX: &str = "soak-bull";

const TYPES: [&str; 8] = [
    "user.created",
    "user.deleted",
    "user.password.changed",
    "mailbox.created",
    "marked.spam",
    "marked.ham",
    "forward added",
    "address.user.created",
];

pub struct Traffic {
    redis: ConnectionManager,
    queue: WildDuckQueue,
    pub events: Vec<Published>,
    next_n: u64,
    /// When the last BullMQ batch went (node starts a process per batch: not every tick).
    last_bullmq: Instant,
}

impl Traffic {
    pub async fn connect(redis_url: &str) -> Traffic {
        let client = redis::Client::open(redis_url).expect("redis url");
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_connection_timeout(Some(Duration::from_secs(2)));
        let redis = ConnectionManager::new_with_config(client, config).await.expect("redis");
        Traffic {
            redis,
            queue: WildDuckQueue::new(Bullmq::WildDucks, redis_url, BULL_PREFIX),
            events: Vec::new(),
            next_n: 0,
            last_bullmq: Instant::now(),
        }
    }

    /// Redis was restarted: the connection manager reconnects by itself; nothing to do but
    /// give it a moment.
    pub async fn reconnect(&mut self) {
        let _: Result<String, _> = redis::cmd("PING").query_async(&mut self.redis).await;
    }

    /// A few events: one to five at a time, half through the stream, a third through
    /// `POST /events`, a batch of ten through BullMQ every second and a half.
    pub async fn publish_some(&mut self, rng: &mut StdRng, fleet: &Fleet) {
        let count = rng.random_range(1..=5);
        let events: Vec<Value> = (0..count).map(|_| self.event(rng)).collect();
        if self.last_bullmq.elapsed() >= Duration::from_millis(1_500) {
            self.last_bullmq = Instant::now();
            let batch: Vec<Value> = (0..10).map(|_| self.event(rng)).collect();
            let start = Instant::now();
            let added = self.queue.try_add(&batch, Duration::from_secs(10)).await;
            self.enter(&batch, Channel::Bullmq, start, None, added == Some(batch.len()));
        }
        let start = Instant::now();
        if rng.random_bool(0.6) {
            let mut pipe = redis::pipe();
            pipe.atomic();
            for event in &events {
                pipe.cmd("XADD")
                    .arg(format!("{PREFIX}:events"))
                    .arg("*")
                    .arg("event")
                    .arg(event.to_string())
                    .ignore();
            }
            let accepted = pipe.query_async::<()>(&mut self.redis).await.is_ok();
            self.enter(&events, Channel::Stream, start, Some(Instant::now()), accepted);
        } else {
            let answer = fleet.api("POST", "/events", Some(Value::Array(events.clone()))).await;
            let accepted = matches!(answer, Some((200, _)));
            self.enter(&events, Channel::Http, start, Some(Instant::now()), accepted);
        }
    }

    fn event(&mut self, rng: &mut StdRng) -> Value {
        self.next_n += 1;
        let mut event = json!({"ev": TYPES[rng.random_range(0..TYPES.len())], "n": self.next_n});
        if rng.random_bool(0.7) {
            event["user"] = json!(USERS[rng.random_range(0..USERS.len())]);
        }
        event
    }

    fn enter(&mut self, events: &[Value], channel: Channel, start: Instant, end: Option<Instant>, accepted: bool) {
        for event in events {
            self.events.push(Published {
                n: event["n"].as_u64().expect("numbered"),
                ev: event["ev"].as_str().expect("typed").to_string(),
                user: event["user"].as_str().map(str::to_string),
                channel,
                start,
                end,
                accepted,
            });
        }
    }

    /// Nothing more is published; anything BullMQ holds is moved by the sources.
    pub async fn finish(&mut self, _: &Fleet) {}

    /// (entries in the event stream, jobs waiting in BullMQ), when Redis answers.
    pub async fn backlog(&self) -> (Option<u64>, Option<u64>) {
        let mut conn = self.redis.clone();
        let events = redis::cmd("XLEN")
            .arg(format!("{PREFIX}:events"))
            .query_async(&mut conn)
            .await
            .ok();
        let jobs = redis::cmd("LLEN")
            .arg(self.queue.key("wait"))
            .query_async(&mut conn)
            .await
            .ok();
        (events, jobs)
    }

    /// Events published per channel, and how many of them were accepted.
    pub fn by_channel(&self) -> String {
        [Channel::Stream, Channel::Http, Channel::Bullmq]
            .iter()
            .map(|channel| {
                let all = self.events.iter().filter(|e| e.channel == *channel);
                let accepted = all.clone().filter(|e| e.accepted).count();
                format!("{channel:?} {} ({accepted} accepted)", all.count())
            })
            .collect::<Vec<_>>()
            .join(", ")
    }
}
