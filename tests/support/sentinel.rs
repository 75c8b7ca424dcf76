//! Redis behind Sentinel on loopback, for the failover tests: a primary, `n` replicas and three
//! sentinels (quorum 2, down after a time the test chooses: see [`RedisProcess::sentinel`]).
//! The shorter it is, the faster a failover, and the likelier a second one on a loaded machine
//! (at 1 s, seen twice on the 2-core VM about 12 s after the first; why was not found).
//! Started and waited for
//! until every sentinel knows the two others and every replica, so that a `kill -9` of the
//! primary is followed by a failover. Also the questions the tests put to the servers
//! themselves (`ROLE`, the primary a sentinel names), each a fresh connection with short
//! timeouts so a dead server is an answer of None rather than a hang.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::eventually;
use super::process::ServiceProcess;
use super::redis_process::RedisProcess;

/// The name the sentinels monitor the primary under (`redis.master_name` in the tests).
pub const MASTER: &str = "hrtest";

/// A primary, its replicas and three sentinels watching it, stopped when dropped.
pub struct SentinelSet {
    /// The primary at the start; the tests kill it and start it again (then as a replica).
    pub primary: RedisProcess,
    /// Replicas of the primary; after a failover one of them is the primary.
    pub replicas: Vec<RedisProcess>,
    pub sentinels: Vec<RedisProcess>,
}

impl SentinelSet {
    /// Starts a primary, `replicas` replicas of it and three sentinels that take a primary
    /// silent for `down_after` for dead, and waits until every
    /// sentinel knows the two others and all the replicas (before that a failover may not
    /// happen: the sentinels would not agree, or know no replica to promote).
    pub async fn start(replicas: usize, down_after: Duration) -> SentinelSet {
        let mut primary = RedisProcess::unstarted();
        primary.start().await;
        let mut set = SentinelSet {
            replicas: (0..replicas).map(|_| RedisProcess::replica_of(primary.port)).collect(),
            sentinels: (0..3)
                .map(|_| RedisProcess::sentinel(MASTER, primary.port, down_after.as_millis() as u64))
                .collect(),
            primary,
        };
        for replica in &mut set.replicas {
            replica.start().await;
        }
        for sentinel in &mut set.sentinels {
            sentinel.start().await;
        }
        let replicas = replicas.to_string();
        for sentinel in &set.sentinels {
            eventually(
                "the sentinels to know each other and the replicas",
                Duration::from_secs(20),
                || async {
                    let others = master_field(sentinel.port, "num-other-sentinels").await?;
                    let known = master_field(sentinel.port, "num-slaves").await?;
                    (others == "2" && known == replicas).then_some(())
                },
            )
            .await;
        }
        set
    }

    /// `HOOKROUTER__REDIS__SENTINELS` and `__MASTER_NAME` for a service following them.
    pub fn service_env(&self) -> Vec<(&'static str, String)> {
        let addresses: Vec<String> = self.sentinels.iter().map(|s| format!("127.0.0.1:{}", s.port)).collect();
        vec![
            ("HOOKROUTER__REDIS__SENTINELS", addresses.join(",")),
            ("HOOKROUTER__REDIS__MASTER_NAME", MASTER.to_string()),
        ]
    }

    /// The primary's port as the first sentinel that answers names it.
    pub async fn named_primary(&self) -> Option<u16> {
        for sentinel in &self.sentinels {
            if let Some(port) = named_primary(sentinel.port).await {
                return Some(port);
            }
        }
        None
    }

    /// Starts the killed primary again (empty) and waits until the sentinels make it a
    /// replica of the new one.
    pub async fn old_primary_back_as_replica(&mut self) {
        self.primary.start().await;
        let port = self.primary.port;
        eventually(
            "the old primary to become a replica",
            Duration::from_secs(20),
            || async { (role(port).await? == "slave").then_some(()) },
        )
        .await;
    }

    /// Waits until the sentinels name a replica as the primary (after the primary was killed
    /// at `killed`): its port and how long after the kill that was.
    pub async fn promoted(&self, killed: Instant) -> (u16, Duration) {
        let old = self.primary.port;
        let port = eventually(
            "the sentinels to promote a replica",
            Duration::from_secs(20),
            || async { named_primary(self.sentinels[0].port).await.filter(|port| *port != old) },
        )
        .await;
        assert!(
            self.replicas.iter().any(|r| r.port == port),
            "the sentinels named {port}, not a replica"
        );
        (port, killed.elapsed())
    }
}

/// Waits until the webhooks the instances deliver add up to `webhooks` (one owner each: a
/// webhook owned twice or by none shows in the sum), then checks that every instance uses the
/// primary on `primary`; returns each instance's `/health`.
pub async fn one_owner_each_on(services: &[ServiceProcess], webhooks: usize, primary: u16) -> Vec<serde_json::Value> {
    eventually("one owner per webhook", Duration::from_secs(20), || async {
        let mut owned = 0;
        for service in services {
            let (_, health) = service.health().await?;
            owned += health["webhooks"].as_u64()?;
        }
        (owned == webhooks as u64).then_some(())
    })
    .await;
    let mut healths = Vec::new();
    for service in services {
        let (_, health) = service.health().await.expect("health");
        assert_eq!(health["redisAddress"], format!("127.0.0.1:{primary}"), "{health}");
        healths.push(health);
    }
    healths
}

/// A redis command against the server on `port`; None when it does not answer (in 500 ms).
pub async fn ask<T: redis::FromRedisValue>(port: u16, cmd: &redis::Cmd) -> Option<T> {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).ok()?;
    let config = redis::AsyncConnectionConfig::new()
        .set_connection_timeout(Some(Duration::from_millis(500)))
        .set_response_timeout(Some(Duration::from_millis(500)));
    let mut conn = client
        .get_multiplexed_async_connection_with_config(&config)
        .await
        .ok()?;
    cmd.query_async(&mut conn).await.ok()
}

/// What the server on `port` says it is: `master` or `slave`.
pub async fn role(port: u16) -> Option<String> {
    let role: Vec<redis::Value> = ask(port, &redis::cmd("ROLE")).await?;
    match role.first()? {
        redis::Value::BulkString(name) => Some(String::from_utf8_lossy(name).into_owned()),
        _ => None,
    }
}

/// The primary's port as the sentinel on `sentinel` names it.
pub async fn named_primary(sentinel: u16) -> Option<u16> {
    let mut cmd = redis::cmd("SENTINEL");
    cmd.arg("GET-MASTER-ADDR-BY-NAME").arg(MASTER);
    let (_, port): (String, u16) = ask(sentinel, &cmd).await?;
    Some(port)
}

/// A field of `SENTINEL MASTER <name>` as the sentinel on `sentinel` reports it.
pub async fn master_field(sentinel: u16, field: &str) -> Option<String> {
    let mut cmd = redis::cmd("SENTINEL");
    cmd.arg("MASTER").arg(MASTER);
    let fields: HashMap<String, String> = ask(sentinel, &cmd).await?;
    fields.get(field).cloned()
}
