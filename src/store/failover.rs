//! The connection that follows the Redis primary: at one fixed address (`[redis] url`), or
//! wherever Redis Sentinel says it is (`[redis] sentinels` and `master_name`).
//!
//! The redis crate finds a primary through Sentinel once, but its `ConnectionManager` keeps
//! reconnecting to the address it started with: after a failover that is a dead server, or the
//! old primary come back as a replica answering writes with `READONLY`. [`RedisConn`] is a
//! `ConnectionManager` to the current primary behind a lock. When a command fails in a way
//! that means "the primary may be elsewhere now" (connection lost or refused, no answer,
//! `READONLY`, `MASTERDOWN`), it asks the sentinels again ([`Primary::ask`]), and when they
//! name another address it replaces the manager; the failed command's error goes up as it is
//! (a 503 to producers, a wait for the actors: see `availability`), and the retry goes to the
//! new primary. Everything else that talks to Redis takes its client from here too (the
//! reader's blocking connection, the pub/sub change feed, each delivery thread's store), so
//! each follows on its next reconnect.
//!
//! Leases and fencing need nothing special: their checks run in Redis, on whichever primary
//! holds the data, so an instance whose lease the new primary does not hold is fenced there.
//!
//! Each failover is logged once per process, as a warning naming the old and new addresses
//! (many connections notice it; [`note_switch`] keeps the log to one line).
//!
//! Every time Redis went away — a connection lost or refused, a server loading its data, a
//! move to another primary — is counted process-wide ([`redis_lapses`]): Redis may have come
//! back without writes it had acknowledged (a replica promoted before it received them; the
//! last second of an `appendfsync everysec` file), so what the delivery actors remember of
//! their queues may be ahead of what Redis holds. Each actor learns its queue again after a
//! lapse (`actors::delivery::resync`).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::{Cmd, Pipeline, RedisError, RedisFuture, Value};

use super::availability::Unavailable;
use super::{connect, StoreError, StoreResult};
use crate::config::RedisSettings;

/// The sentinels are asked again at most this often, however many commands fail at once.
const ASK_AT_MOST_EVERY: Duration = Duration::from_millis(200);

/// A cloneable connection to the current primary. Clones share the manager and follow a
/// failover together.
#[derive(Clone)]
pub struct RedisConn {
    shared: Arc<Shared>,
}

struct Shared {
    /// The URL's user, password, TLS and database, and the sentinels to ask, if any.
    settings: RedisSettings,
    /// The manager's timeouts and retries, the same for every primary.
    manager: ConnectionManagerConfig,
    /// The primary in use; None before the sentinels were first asked. Invariant: with no
    /// sentinels configured it is always Some, at `[redis] url`.
    current: RwLock<Option<Current>>,
    /// Held while the sentinels are asked, with when they were last asked: one question at a
    /// time, and not more than every [`ASK_AT_MOST_EVERY`].
    asking: tokio::sync::Mutex<Option<Instant>>,
}

/// One primary: its address, a client for it, and the shared manager connected to it.
#[derive(Clone)]
struct Current {
    /// `host:port`, for `/health` and the failover log.
    address: String,
    /// Makes the other connections (blocking reads, pub/sub) to this primary.
    client: redis::Client,
    conn: ConnectionManager,
}

impl RedisConn {
    /// Builds the connection without connecting (see `Store::new`); with sentinels, without
    /// asking them either, until the first command.
    pub(super) fn new(settings: &RedisSettings, manager: ConnectionManagerConfig) -> StoreResult<RedisConn> {
        let current = if settings.sentinels.is_empty() {
            let client = connect::client(&settings.url, settings)?;
            Some(Current::new(address_of(&settings.url), client, &manager)?)
        } else {
            None
        };
        Ok(RedisConn {
            shared: Arc::new(Shared {
                settings: settings.clone(),
                manager,
                current: RwLock::new(current),
                asking: tokio::sync::Mutex::new(None),
            }),
        })
    }

    /// A client for the current primary, asking the sentinels first if they were not yet.
    pub(super) async fn client(&self) -> StoreResult<redis::Client> {
        Ok(self.current().await?.client)
    }

    /// The address in use (`host:port`); None while no sentinel has named a primary yet.
    pub fn address(&self) -> Option<String> {
        self.shared.read().map(|current| current.address)
    }

    /// Notes a failed command on any connection to the primary: when the error means the
    /// primary may have moved, the sentinels are asked again.
    pub(super) async fn failed(&self, error: &RedisError) {
        if went_away(error) {
            LAPSES.fetch_add(1, Ordering::SeqCst);
        }
        if self.shared.settings.sentinels.is_empty() || !points_elsewhere(error) {
            return;
        }
        if let Err(e) = self.shared.ask_again().await {
            tracing::debug!(error = %e, "asking the sentinels for the primary failed");
        }
    }

    async fn current(&self) -> StoreResult<Current> {
        if let Some(current) = self.shared.read() {
            return Ok(current);
        }
        self.shared.ask_again().await?;
        self.shared
            .read()
            .ok_or_else(|| StoreError::Config("no sentinel named a primary".into()))
    }

    /// The manager to send a command on, as a redis error when there is none.
    async fn manager(&self) -> redis::RedisResult<ConnectionManager> {
        match self.current().await {
            Ok(current) => Ok(current.conn),
            Err(StoreError::Redis(e)) => Err(e),
            Err(e) => Err(RedisError::from((redis::ErrorKind::Io, "no primary", e.to_string()))),
        }
    }

    /// Passes on a command's result, asking the sentinels again when it failed.
    async fn checked<T>(&self, result: redis::RedisResult<T>) -> redis::RedisResult<T> {
        if let Err(error) = &result {
            self.failed(error).await;
        }
        result
    }
}

impl ConnectionLike for RedisConn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        Box::pin(async move {
            let mut conn = self.manager().await?;
            let result = conn.req_packed_command(cmd).await;
            self.checked(result).await
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        Box::pin(async move {
            let mut conn = self.manager().await?;
            let result = conn.req_packed_commands(pipeline, offset, count).await;
            self.checked(result).await
        })
    }

    fn get_db(&self) -> i64 {
        self.shared.read().map_or(0, |current| current.conn.get_db())
    }
}

impl Shared {
    fn read(&self) -> Option<Current> {
        // A poisoned lock only means a panic elsewhere while swapping: the value is whole.
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Asks the sentinels where the primary is, and moves there when it is elsewhere.
    async fn ask_again(&self) -> StoreResult<()> {
        let mut asked = self.asking.lock().await;
        if asked.is_some_and(|at| at.elapsed() < ASK_AT_MOST_EVERY) && self.read().is_some() {
            return Ok(());
        }
        *asked = Some(Instant::now());
        let timeout = Duration::from_millis(self.settings.timeout_ms).min(Duration::from_secs(2));
        let address = Primary::ask(&self.settings, timeout).await?;
        let old = self.read().map(|current| current.address);
        if old.as_deref() == Some(address.as_str()) {
            return Ok(());
        }
        let url = url_at(&self.settings.url, &address)?;
        let client = connect::client(&url, &self.settings)?;
        let current = Current::new(address.clone(), client, &self.manager)?;
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(current);
        if old.is_some() {
            LAPSES.fetch_add(1, Ordering::SeqCst);
        }
        note_switch(old.as_deref(), &address, &self.settings.master_name);
        Ok(())
    }
}

impl Current {
    fn new(address: String, client: redis::Client, manager: &ConnectionManagerConfig) -> StoreResult<Current> {
        let conn = client.get_connection_manager_lazy(manager.clone())?;
        Ok(Current { address, client, conn })
    }
}

/// The question put to the sentinels.
pub struct Primary;

impl Primary {
    /// The primary's `host:port` as the first sentinel that answers names it
    /// (`SENTINEL GET-MASTER-ADDR-BY-NAME`); an error when none does.
    pub async fn ask(settings: &RedisSettings, timeout: Duration) -> StoreResult<String> {
        let mut why = Vec::new();
        for sentinel in &settings.sentinels {
            match ask_one(settings, sentinel, timeout).await {
                Ok(address) => return Ok(address),
                Err(e) => why.push(format!("{sentinel}: {e}")),
            }
        }
        Err(StoreError::Redis(RedisError::from((
            redis::ErrorKind::Io,
            "no sentinel named the primary",
            format!("{} ({})", settings.master_name, why.join("; ")),
        ))))
    }
}

async fn ask_one(settings: &RedisSettings, sentinel: &str, timeout: Duration) -> Result<String, String> {
    let mut url = url::Url::parse(&format!("redis://{sentinel}")).map_err(|e| e.to_string())?;
    if !settings.sentinel_password.0.is_empty() {
        url.set_password(Some(&settings.sentinel_password.0))
            .map_err(|()| "the sentinel password cannot go in a URL".to_string())?;
    }
    let client = redis::Client::open(url.as_str()).map_err(|e| e.to_string())?;
    let question = async {
        let config = redis::AsyncConnectionConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout));
        let mut conn = client.get_multiplexed_async_connection_with_config(&config).await?;
        redis::cmd("SENTINEL")
            .arg("GET-MASTER-ADDR-BY-NAME")
            .arg(&settings.master_name)
            .query_async::<Option<(String, u16)>>(&mut conn)
            .await
    };
    match tokio::time::timeout(timeout * 2, question).await {
        Ok(Ok(Some((host, port)))) => Ok(format!("{host}:{port}")),
        Ok(Ok(None)) => Err(format!("knows no primary named {:?}", settings.master_name)),
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no answer in time".into()),
    }
}

/// Times Redis went away since the process started (see the module's documentation).
static LAPSES: AtomicU64 = AtomicU64::new(0);

/// How many times Redis went away (a connection lost or refused, a server loading its data, a
/// move to another primary) since the process started: when it changed, Redis may have come
/// back without writes it had acknowledged.
pub fn redis_lapses() -> u64 {
    LAPSES.load(Ordering::SeqCst)
}

/// Whether a failed command says the server went away (and may have come back without its
/// last writes): a connection lost or refused, or a server loading its data.
fn went_away(error: &RedisError) -> bool {
    matches!(
        StoreError::Redis(error.clone()).unavailable(),
        Some(Unavailable::Unreachable | Unavailable::Loading)
    )
}

/// Whether a failed command says the primary may be elsewhere now.
fn points_elsewhere(error: &RedisError) -> bool {
    matches!(
        StoreError::Redis(error.clone()).unavailable(),
        Some(Unavailable::Unreachable | Unavailable::TimedOut | Unavailable::Failover)
    )
}

/// `url` with its host and port replaced by `address` (keeping scheme, user, password, db).
fn url_at(url: &str, address: &str) -> StoreResult<String> {
    let bad = |why: String| StoreError::Config(format!("redis.url: {why}"));
    let mut parsed = url::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    let (host, port) = address
        .rsplit_once(':')
        .ok_or_else(|| bad(format!("a sentinel named {address:?}, not host:port")))?;
    let port: u16 = port
        .parse()
        .map_err(|_| bad(format!("a sentinel named port {port:?}")))?;
    parsed.set_host(Some(host)).map_err(|e| bad(e.to_string()))?;
    parsed
        .set_port(Some(port))
        .map_err(|()| bad("cannot take a port".into()))?;
    Ok(parsed.to_string())
}

/// `host:port` of a fixed URL, for `/health` (the path of a `unix://` one).
fn address_of(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) if u.scheme() == "unix" => u.path().to_string(),
        Ok(u) => format!("{}:{}", u.host_str().unwrap_or("?"), u.port().unwrap_or(6379)),
        Err(_) => "(unparsable URL)".into(),
    }
}

/// The primary this process last logged moving to, so each failover is one warning however
/// many connections (one per delivery thread, the API's) notice it.
static LOGGED: Mutex<Option<String>> = Mutex::new(None);

fn note_switch(old: Option<&str>, new: &str, master_name: &str) {
    let mut logged = LOGGED.lock().unwrap_or_else(|p| p.into_inner());
    if logged.as_deref() == Some(new) {
        return;
    }
    match (old, logged.replace(new.to_string())) {
        (None, None) => tracing::info!(primary = new, master_name, "the sentinels name the Redis primary"),
        (old, before) => {
            let old = old.map(str::to_string).or(before).unwrap_or_default();
            tracing::warn!(
                old,
                new,
                master_name,
                "Redis failed over: the primary moved from {old} to {new}"
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_keeps_its_login_tls_and_database_at_the_new_address() {
        assert_eq!(
            url_at("rediss://app:s%40cret@10.0.0.1:6379/2", "10.0.0.9:6380").unwrap(),
            "rediss://app:s%40cret@10.0.0.9:6380/2"
        );
        assert!(url_at("redis://10.0.0.1:6379", "no-port").is_err());
    }

    #[test]
    fn only_a_lost_or_demoted_primary_sends_us_to_the_sentinels() {
        let readonly = redis::parse_redis_value(b"-READONLY You can't write against a read only replica.\r\n")
            .unwrap()
            .extract_error()
            .unwrap_err();
        assert!(points_elsewhere(&readonly));
        let refused = RedisError::from(std::io::Error::from(std::io::ErrorKind::ConnectionRefused));
        assert!(points_elsewhere(&refused));
        let script = redis::parse_redis_value(b"-ERR Error running script\r\n")
            .unwrap()
            .extract_error()
            .unwrap_err();
        assert!(!points_elsewhere(&script));
    }
}
