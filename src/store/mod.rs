//! Everything hookrouter keeps in Redis, behind typed handles.
//!
//! [`Store`] owns the shared connection ([`RedisConn`]: a `ConnectionManager`, which reconnects
//! by itself, to the primary at `[redis] url` or, with Sentinel, wherever the sentinels say it
//! is now) and the key schema. Its handles each cover one part of the data: [`WebhookStore`] the webhook
//! records and their indexes, [`EventStream`] the producers' event stream and the atomic
//! fan-out into per-webhook queues, [`QueueStore`] one webhook's queue, its due set of entries
//! waiting for a retry, and its dead letters, [`HistoryStore`] what operators read back (attempt
//! log, dead letters, rejected entries), [`BullMqQueue`] a BullMQ queue read as a second source
//! of events (WildDuck's), [`RetainedStore`] the events kept after their fan-out (with the
//! state of each delivery), [`ReplayStore`] replays of them to one webhook, [`InstanceStore`] and [`LeaseStore`] membership and webhook
//! ownership, and for the dashboard [`OverviewStore`] (reads over many webhooks at once),
//! [`BoardStore`] (each delivering instance's board) and [`TicketStore`] (stream tickets); and
//! [`WildDuckTokenStore`], the access tokens WildDuck issues, in WildDuck's Redis.
//! Which of its errors mean "Redis cannot serve now, try again" rather than a bug is decided
//! in one place, [`StoreError::unavailable`].
//! Multi-key changes are atomic: Lua scripts (in `scripts/`) where they must check
//! something first, `MULTI` pipelines where they need not (scripts cost Redis more per command).

mod attempts;
mod audit;
mod availability;
mod boards;
mod bullmq;
mod connect;
mod deliveries;
mod events;
mod failover;
mod history;
mod instances;
mod keys;
mod leases;
mod overview;
mod queues;
mod replays;
mod reply;
mod retained;
mod retries;
mod tickets;
mod webhooks;
mod wildduck_tokens;

use std::time::Duration;

use redis::aio::{ConnectionManagerConfig, MultiplexedConnection};
use redis::AsyncConnectionConfig;

pub use attempts::{AttemptOutcome, AttemptRecord};
pub use audit::{AuditView, HeadEntry};
pub use availability::{note_outage, Noted, Unavailable};
pub use boards::BoardStore;
pub use bullmq::{BullMqQueue, Job, Placement, QueueState};
pub use connect::refusal;
pub use deliveries::{DeliveryState, DeliveryView, MAX_SHOWN};
pub use events::{Appended, EventStream, Fanout, FanoutBatch, FanoutKeeping, FanoutRouter, RawEntry};
pub use failover::{redis_lapses, Primary, RedisConn};

pub use history::{AttemptView, DeadLetterView, HistoryCursor, HistoryPage, HistoryStore, RejectedView};
pub use instances::{Beat, InstanceStore, Member};
pub use keys::{BullMqKeys, Keys, EVENTS_GROUP};
pub use leases::{Lease, LeaseStore};
pub use overview::{Census, OverviewStore, WebhookLine};
pub use queues::{
    AfterAttempt, CircuitState, DeadLetter, Fetched, LogTrim, LogUpkeep, QueueStore, QueuedDelivery, Retention,
    RetryLookup, Settled, MAX_SETTLED,
};
pub use replays::{ReplayPhase, ReplayState, ReplayStep, ReplayStore, Stepped};
pub use retained::{Direction, RetainedEvent, RetainedPage, RetainedStore};
pub use retries::{Due, DueSet, TakenRetries};
pub use tickets::TicketStore;
pub use webhooks::{ListDirection, ListQuery, Notice, WebhookChange, WebhookPage, WebhookStore};
pub use wildduck_tokens::WildDuckTokenStore;

use crate::config::RedisSettings;

/// Errors from Redis, or data in Redis that is not what hookrouter wrote.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis: {0}")]
    Redis(redis::RedisError),
    #[error("unexpected data in redis: {0}")]
    Corrupt(String),
    #[error("redis did not answer within {0} ms")]
    Timeout(u64),
    /// A write for a webhook whose lease this instance no longer holds was refused.
    #[error("this instance no longer holds the webhook's lease")]
    Fenced,
    /// Fewer replicas than `[redis] min_replicas_acked` confirmed the writes so far in time.
    #[error("{acked} of the {wanted} Redis replicas required (redis.min_replicas_acked) confirmed the write in time")]
    NotReplicated { wanted: u32, acked: u64 },
    /// The Redis settings cannot be used (a TLS file missing or unreadable); names the key.
    #[error("{0}")]
    Config(String),
}

/// Every Redis error passes through here on its way up, so this is where they are counted.
impl From<redis::RedisError> for StoreError {
    fn from(error: redis::RedisError) -> StoreError {
        metrics::counter!(crate::metrics::REDIS_ERRORS).increment(1);
        StoreError::Redis(error)
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// The service's handle on Redis. Cheap to clone; clones share one multiplexed connection.
#[derive(Clone)]
pub struct Store {
    /// The shared connection to the primary, which follows a Sentinel failover.
    conn: RedisConn,
    keys: Keys,
    timeout: Duration,
    /// `[redis] min_replicas_acked`: how many replicas must confirm a write before it is
    /// acknowledged ([`Store::replicated`]); 0 = none.
    replicas: u32,
    /// `[redis] replica_wait_ms`: how long [`Store::replicated`] waits for them.
    replica_wait: Duration,
}

/// Where the connection stood before a write ([`Store::before_write`]): whether Redis went
/// away since, when the write is to be confirmed by replicas.
#[derive(Debug, Clone, Copy)]
pub struct WriteMark(u64);

impl Store {
    /// Builds the handle without connecting: the service starts (and reports Redis as down)
    /// when Redis is unreachable, and connects when it comes up.
    pub fn new(settings: &RedisSettings) -> StoreResult<Store> {
        let timeout = Duration::from_millis(settings.timeout_ms);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout.min(Duration::from_secs(2))))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(500));
        let conn = RedisConn::new(settings, config)?;
        Ok(Store {
            conn,
            keys: Keys::new(&settings.prefix),
            timeout,
            replicas: settings.min_replicas_acked,
            replica_wait: Duration::from_millis(settings.replica_wait_ms),
        })
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// A store whose connection belongs to the calling thread, made on first use. Delivery
    /// arbiters use this, so an actor's Redis replies are read on its own thread instead of
    /// waking another one.
    pub fn for_this_thread(settings: &RedisSettings) -> StoreResult<Store> {
        thread_local! {
            static STORE: std::cell::RefCell<Option<Store>> = const { std::cell::RefCell::new(None) };
        }
        STORE.with(|cell| {
            let mut cell = cell.borrow_mut();
            match cell.as_ref() {
                Some(store) if store.keys.prefix() == settings.prefix => Ok(store.clone()),
                _ => {
                    let store = Store::new(settings)?;
                    *cell = Some(store.clone());
                    Ok(store)
                }
            }
        })
    }

    pub fn webhooks(&self) -> WebhookStore {
        WebhookStore::new(self.conn.clone(), self.keys.clone())
    }

    pub fn events(&self) -> EventStream {
        EventStream::new(self.conn.clone(), self.keys.clone())
    }

    /// Events kept after their fan-out.
    pub fn retained(&self) -> RetainedStore {
        RetainedStore::new(self.conn.clone(), self.keys.clone())
    }

    pub fn replays(&self) -> ReplayStore {
        ReplayStore::new(self.conn.clone(), self.keys.clone())
    }

    pub fn queue(&self) -> QueueStore {
        QueueStore::new(self.conn.clone(), self.keys.clone())
    }

    /// Webhook ownership leases lasting `ttl` without renewal (`leases.ttl_ms`).
    pub fn leases(&self, ttl: Duration) -> LeaseStore {
        LeaseStore::new(self.conn.clone(), self.keys.clone(), ttl)
    }

    /// Membership, with instances alive for `ttl` after their last heartbeat.
    pub fn instances(&self, ttl: Duration) -> InstanceStore {
        InstanceStore::new(self.conn.clone(), self.keys.clone(), ttl)
    }

    pub fn history(&self) -> HistoryStore {
        HistoryStore::new(self.conn.clone(), self.keys.clone())
    }

    pub fn overview(&self) -> OverviewStore {
        OverviewStore::new(self.conn.clone(), self.keys.clone())
    }

    pub fn boards(&self) -> BoardStore {
        BoardStore::new(self.conn.clone(), self.keys.clone())
    }

    pub fn tickets(&self) -> TicketStore {
        TicketStore::new(self.conn.clone(), self.keys.clone())
    }

    /// A connection of its own for blocking commands (`XREADGROUP … BLOCK`), whose response
    /// timeout outlasts the block so a quiet stream is not mistaken for a dead server.
    pub async fn blocking_connection(&self, block: Duration) -> StoreResult<MultiplexedConnection> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.timeout.min(Duration::from_secs(2))))
            .set_response_timeout(Some(block + self.timeout));
        let client = self.conn.client().await?;
        match client.get_multiplexed_async_connection_with_config(&config).await {
            Ok(conn) => Ok(conn),
            Err(e) => {
                self.conn.failed(&e).await;
                Err(e.into())
            }
        }
    }

    /// A pub/sub connection (webhook change notifications).
    pub async fn pubsub(&self) -> StoreResult<redis::aio::PubSub> {
        let client = self.conn.client().await?;
        match client.get_async_pubsub().await {
            Ok(pubsub) => Ok(pubsub),
            Err(e) => {
                self.conn.failed(&e).await;
                Err(e.into())
            }
        }
    }

    /// The Redis server in use (`host:port`): `[redis] url`'s, or the primary the sentinels
    /// last named (None before they were asked).
    pub fn address(&self) -> Option<String> {
        self.conn.address()
    }

    /// Taken before a write that [`Store::replicated`] is to confirm.
    pub fn before_write(&self) -> WriteMark {
        WriteMark(redis_lapses())
    }

    /// Waits until `[redis] min_replicas_acked` replicas hold every write sent so far on the
    /// shared connection (`WAIT`, which covers the writes of the connection it runs on), so
    /// what is acknowledged next survives a failover; at once when that is 0. Too few in
    /// `replica_wait_ms` is [`StoreError::NotReplicated`], a "not now" (503, retried).
    ///
    /// `WAIT` confirms only the writes of the connection it runs on: one made anew since the
    /// write (Redis went away in between; `mark` was taken before it) has written nothing and
    /// would confirm at once. So a lapse since `mark` confirms nothing either.
    pub async fn replicated(&self, mark: WriteMark) -> StoreResult<()> {
        if self.replicas == 0 {
            return Ok(());
        }
        let mut conn = self.conn.clone();
        let acked: u64 = redis::cmd("WAIT")
            .arg(self.replicas)
            .arg(self.replica_wait.as_millis() as u64)
            .query_async(&mut conn)
            .await?;
        let acked = if redis_lapses() == mark.0 { acked } else { 0 };
        if acked < u64::from(self.replicas) {
            return Err(StoreError::NotReplicated {
                wanted: self.replicas,
                acked,
            });
        }
        Ok(())
    }

    /// What the server in use says it is (`ROLE`): `master`, `slave` or `sentinel`.
    pub async fn role(&self) -> StoreResult<String> {
        let mut conn = self.conn.clone();
        let role: Vec<redis::Value> = redis::cmd("ROLE").query_async(&mut conn).await?;
        match role.first() {
            Some(redis::Value::BulkString(name)) => Ok(String::from_utf8_lossy(name).into_owned()),
            Some(redis::Value::SimpleString(name)) => Ok(name.clone()),
            _ => Err(StoreError::Corrupt(format!("ROLE answered {role:?}"))),
        }
    }

    /// The database number of the connection.
    fn db(&self) -> i64 {
        redis::aio::ConnectionLike::get_db(&self.conn)
    }

    /// Notes an error met on a connection of the caller's own (a blocking read): when it means
    /// the primary may have moved, the sentinels are asked again.
    pub async fn failed(&self, error: &StoreError) {
        if let StoreError::Redis(e) = error {
            self.conn.failed(e).await;
        }
    }

    /// Whether Redis answers a PING within the command timeout.
    pub async fn ping(&self) -> bool {
        self.check().await.is_ok()
    }

    /// Whether Redis takes a write now (a `SET` of `P:probe` that expires): it may answer a
    /// PING and still refuse every write, out of memory or unable to save (`OOM`, `MISCONF`).
    pub async fn check_writes(&self) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.keys.probe())
            .arg(crate::clock::now_ms())
            .arg("PX")
            .arg(10_000);
        let set = cmd.query_async::<()>(&mut conn);
        match tokio::time::timeout(self.timeout, set).await {
            Ok(answer) => answer.map_err(StoreError::from),
            Err(_) => Err(StoreError::Timeout(self.timeout.as_millis() as u64)),
        }
    }

    /// PINGs Redis; the error says why it does not answer.
    pub async fn check(&self) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("PING");
        let ping = cmd.query_async::<String>(&mut conn);
        match tokio::time::timeout(self.timeout, ping).await {
            Ok(answer) => answer.map(|_| ()).map_err(StoreError::from),
            Err(_) => Err(StoreError::Timeout(self.timeout.as_millis() as u64)),
        }
    }
}
