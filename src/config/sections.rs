//! The sections of [`super::Settings`], each with its defaults (the repository's
//! `config.toml` shows the same values, with comments).

use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// Address the REST API binds to. Port 0 picks a free port (tests use it).
    pub listen: String,
    /// Largest request body the API reads, in bytes (`POST /events` batches are the big ones).
    pub body_limit_bytes: usize,
    /// Tokens that grant access to the API. Empty: no access control, which the service only
    /// accepts on a loopback `listen` address (unless `wildduck_tokens` is on).
    pub access_tokens: Vec<AccessToken>,
    /// Also accept the access tokens WildDuck issues (read from WildDuck's Redis), with their
    /// roles: then every call needs a token.
    pub wildduck_tokens: bool,
    /// WildDuck's `[api.accessControl] secret`, which signs its tokens (needed with
    /// `wildduck_tokens`).
    pub wildduck_secret: AccessToken,
    /// WildDuck's `[api.accessControl] tokenLifetime`: how old (seconds) a token with a ttl may
    /// get, however often it is used (WildDuck's default: 180 days).
    pub wildduck_token_lifetime_s: u64,
    /// WildDuck's Redis, where its tokens are; empty = `[bullmq] url`, or `[redis] url` when that
    /// is empty too.
    pub wildduck_redis_url: String,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8787".into(),
            body_limit_bytes: 4 * 1024 * 1024,
            access_tokens: Vec::new(),
            wildduck_tokens: false,
            wildduck_secret: AccessToken(String::new()),
            wildduck_token_lifetime_s: 180 * 24 * 3600,
            wildduck_redis_url: String::new(),
        }
    }
}

/// An API access token (or another secret setting). Its `Debug` hides it, so settings can be
/// logged safely.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct AccessToken(pub String);

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(***)")
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InstanceSettings {
    /// This instance's name (letters, digits, '.', '_', '-'); empty = the host name plus a
    /// short random suffix, chosen at start and logged.
    pub name: String,
    /// The CPU priority (nice, 0 to 19) the service lowers itself to at start, so that Redis and
    /// the neighbours it shares the machine with run first under contention (`priority.rs`).
    /// 0 (the default) leaves it as started: the operator's decision.
    pub nice: i32,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LeaseSettings {
    /// How long a webhook's ownership lasts without renewal, and how long an instance counts
    /// as alive after its last heartbeat: an instance that dies has its webhooks delivered
    /// elsewhere after about this long.
    pub ttl_ms: u64,
}

impl Default for LeaseSettings {
    fn default() -> Self {
        Self { ttl_ms: 10_000 }
    }
}

impl LeaseSettings {
    pub fn ttl(&self) -> Duration {
        Duration::from_millis(self.ttl_ms)
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisSettings {
    pub url: String,
    /// Every key the service touches starts with `<prefix>:`.
    pub prefix: String,
    /// How long one Redis command may take before it counts as failed.
    pub timeout_ms: u64,
    /// PEM bundle of the roots a `rediss://` server's certificate must chain to (a managed
    /// Redis's private CA); "" = the web roots. Applies to every `rediss://` URL hookrouter
    /// connects to (`redis.url`, `bullmq.url`, `api.wildduck_redis_url`).
    pub ca_file: String,
    /// PEM client certificate (chain) for mutual TLS; "" = none. Set with `key_file`.
    pub cert_file: String,
    /// PEM private key of `cert_file`; "" = none.
    pub key_file: String,
    /// Redis Sentinel addresses (`host:port`); when set, the primary is wherever they say
    /// `master_name` is, and hookrouter follows a failover. [] = the fixed `url`.
    pub sentinels: Vec<String>,
    /// The name the sentinels monitor the primary under (`sentinel monitor <name> ...`).
    pub master_name: String,
    /// The sentinels' own password (`requirepass` of the sentinels); "" = none. The primary's
    /// login stays in `url`.
    pub sentinel_password: AccessToken,
    /// Replicas that must confirm a write (`WAIT`) before hookrouter acknowledges it (an event
    /// answered 200, a BullMQ job removed, a webhook change answered): what is acknowledged
    /// then survives a failover. 0 = acknowledge at once, as a single Redis does.
    pub min_replicas_acked: u32,
    /// How long to wait for those replicas; past it the producer gets a 503 (try again) and
    /// nothing is lost. Below `timeout_ms`, since the wait is one Redis command.
    pub replica_wait_ms: u64,
}

impl RedisSettings {
    /// The URL as logs may show it: the password replaced by `***`.
    pub fn url_for_logs(&self) -> String {
        match url::Url::parse(&self.url) {
            Ok(mut url) if url.password().is_some() => {
                let _ = url.set_password(Some("***"));
                url.to_string()
            }
            Ok(url) => url.to_string(),
            Err(_) => "(unparsable URL)".into(),
        }
    }
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            prefix: "hookrouter".into(),
            timeout_ms: 5_000,
            ca_file: String::new(),
            cert_file: String::new(),
            key_file: String::new(),
            sentinels: Vec::new(),
            master_name: "mymaster".into(),
            sentinel_password: AccessToken(String::new()),
            min_replicas_acked: 0,
            replica_wait_ms: 1_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksSettings {
    /// false = API-only instance: serves the API, reads no events, delivers nothing.
    pub enabled: bool,
    /// How often the supervisor checks whether webhooks changed without it hearing about it
    /// (a lost pub/sub message, a Redis restart). The check is one GET when nothing changed.
    pub resync_ms: u64,
    /// When Redis comes back without its data (restarted without persistence), write back the
    /// webhooks this delivering instance still knows, instead of losing every subscription.
    pub restore_lost: bool,
}

impl Default for WebhooksSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            resync_ms: 1_000,
            restore_lost: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EventsSettings {
    /// Largest accepted event (the `event` field of a stream entry), in bytes.
    pub max_bytes: usize,
    /// Stream entries read, routed and acknowledged together.
    pub batch_size: usize,
    /// How long one blocking read waits for new entries.
    pub block_ms: u64,
    /// Consumer name in the stream's consumer group; empty = the instance's name, so every
    /// instance is its own consumer. Entries a consumer that has gone left pending are taken
    /// over by a live one after `leases.ttl_ms` (XAUTOCLAIM).
    pub consumer: String,
    /// Rejected entries kept in `<prefix>:rejected` (oldest trimmed first).
    pub rejected_max_len: usize,
    /// The most queue appends one fan-out script makes: a batch whose events matched many
    /// webhooks is written in several scripts. Redis runs a script alone, so this bounds how
    /// long everyone else sharing it waits (an append costs a few microseconds). An event that
    /// matched more webhooks than this is written in parts, one script each.
    pub max_writes_per_script: usize,
    /// How long an event is kept after its fan-out, in `<prefix>:retained`, for `GET /events`
    /// and replays (ms; 0 keeps none). Trimmed by the time it was routed.
    pub retain_ms: u64,
    /// The most events kept in `<prefix>:retained` (oldest trimmed first; 0 keeps none): the
    /// bound on the memory retention costs whatever the traffic (see README, History and
    /// replay, for the cost per million events).
    pub retain_max: u64,
    /// A replay appends to a webhook's queue only while the queue holds fewer entries than
    /// this: a replay of any range then costs Redis at most this many queued copies, and goes
    /// at the pace the webhook's flow control lets its receiver take them.
    pub replay_backlog: u64,
}

impl EventsSettings {
    /// Whether routed events are retained at all.
    pub fn retains(&self) -> bool {
        self.retain_ms > 0 && self.retain_max > 0
    }
}

impl Default for EventsSettings {
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024,
            batch_size: 256,
            block_ms: 1_000,
            consumer: String::new(),
            rejected_max_len: 10_000,
            max_writes_per_script: 250,
            retain_ms: 24 * 3_600_000,
            retain_max: 1_000_000,
            replay_backlog: 10_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RoutingSettings {
    /// Events without a `user` also go to user webhooks whose patterns match, as WildDuck's
    /// own worker does. Off: they go to global webhooks only (a user webhook gets its user's
    /// events and nothing else).
    pub userless_to_user_webhooks: bool,
}

/// The BullMQ source: WildDuck's own job queue as a second way in (see docs/wildduck.md).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BullMqSettings {
    /// Move jobs from the BullMQ queue into the event stream (delivering instances only).
    pub enabled: bool,
    /// The Redis holding the BullMQ queue; empty = `[redis] url`. In the same Redis (and
    /// database) as hookrouter's keys, jobs move atomically; elsewhere, at least once.
    pub url: String,
    /// BullMQ's key prefix (WildDuck: `wd:bull`).
    pub prefix: String,
    /// The queue's name (WildDuck: `webhooks`).
    pub queue: String,
    /// Jobs moved per atomic step.
    pub batch_size: usize,
    /// How long one wait for new jobs lasts (a blocking pop of BullMQ's marker); the queue is
    /// looked at after each wait, so this also bounds how late a job can be seen.
    pub block_ms: u64,
    /// How long a job taken into BullMQ's `active` list (other-Redis mode) stays ours before
    /// it counts as stalled and goes back to wait; in both modes, the interval of BullMQ's
    /// stalled-job check (jobs a dead consumer left active go back to wait).
    pub lock_ms: u64,
}

impl Default for BullMqSettings {
    fn default() -> Self {
        Self {
            enabled: false,
            url: String::new(),
            prefix: "wd:bull".into(),
            queue: "webhooks".into(),
            batch_size: 100,
            block_ms: 1_000,
            lock_ms: 30_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySettings {
    /// Whole-request timeout (connect, send, response headers and body).
    pub timeout_ms: u64,
    /// Deliveries one webhook holds at once: being sent, or finished with their outcome not yet
    /// written (a crash sends those again). Failed ones wait in Redis for their retry.
    pub max_in_flight: usize,
    pub user_agent: String,
    /// Delivery arbiters (threads); 0 = one per CPU core.
    pub workers: usize,
    /// A webhook's delivery actor stops after this long with nothing to do (it starts again
    /// with the next event), so idle webhooks cost no actor.
    pub idle_stop_ms: u64,
    /// A PEM bundle of extra roots that `https://` deliveries trust besides the web roots, for
    /// receivers behind a private CA. Empty = none. Read once at start-up.
    pub ca_file: String,
    /// Connections every webhook of one scheme + host + port shares (`actors/delivery/hosts.rs`).
    pub max_connections_per_host: usize,
    /// Attempts a new or recovered webhook starts with in flight; it grows while its receiver
    /// answers quickly, up to `max_in_flight` (`actors/delivery/pacing.rs`).
    pub initial_concurrency: usize,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            timeout_ms: 10_000,
            max_in_flight: 16,
            user_agent: concat!("hookrouter/", env!("CARGO_PKG_VERSION")).into(),
            workers: 0,
            idle_stop_ms: 60_000,
            ca_file: String::new(),
            max_connections_per_host: 64,
            initial_concurrency: 2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RetrySettings {
    pub initial_delay_ms: u64,
    pub multiplier: f64,
    pub max_delay_ms: u64,
    /// Total tries, the first one included.
    pub max_attempts: u32,
    /// Each delay is moved randomly by up to this fraction, up or down.
    pub jitter: f64,
}

impl Default for RetrySettings {
    fn default() -> Self {
        Self {
            initial_delay_ms: 2_000,
            multiplier: 2.0,
            max_delay_ms: 3_600_000,
            max_attempts: 10,
            jitter: 0.2,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CircuitSettings {
    /// Failures in a row (each a separate signal about the endpoint) that open the circuit.
    pub failure_threshold: u32,
    /// A webhook failing without a single success for this long is disabled.
    pub disable_after_ms: u64,
    /// While open, the first probe waits this long; each later one twice the previous wait.
    pub probe_initial_ms: u64,
    /// The longest wait between two probes.
    pub probe_max_ms: u64,
}

impl Default for CircuitSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            disable_after_ms: 5 * 24 * 3_600_000,
            probe_initial_ms: 5_000,
            probe_max_ms: 300_000,
        }
    }
}

impl CircuitSettings {
    /// (first probe delay, longest probe delay).
    pub fn probes(&self) -> (Duration, Duration) {
        (
            Duration::from_millis(self.probe_initial_ms),
            Duration::from_millis(self.probe_max_ms),
        )
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeadLetterSettings {
    /// Dead letters kept per webhook (oldest trimmed first).
    pub max_len: usize,
    /// Dead letters older than this are dropped.
    pub ttl_ms: u64,
}

impl Default for DeadLetterSettings {
    fn default() -> Self {
        Self {
            max_len: 10_000,
            ttl_ms: 30 * 24 * 3_600_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AttemptLogSettings {
    /// Attempts kept per webhook in its attempt log (oldest trimmed first).
    pub max_len: usize,
    /// A webhook's attempt log is dropped after this long without a new attempt.
    pub ttl_ms: u64,
}

impl Default for AttemptLogSettings {
    fn default() -> Self {
        Self {
            max_len: 1_000,
            ttl_ms: 7 * 24 * 3_600_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ShutdownSettings {
    /// On SIGTERM/SIGINT, how long deliveries already under way may take to finish.
    pub grace_ms: u64,
}

impl Default for ShutdownSettings {
    fn default() -> Self {
        Self { grace_ms: 10_000 }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InvariantSettings {
    /// How often each running delivery actor checks that nothing it holds waits without a
    /// reason, against its own state and against Redis (`actors/delivery/audit.rs`).
    pub check_ms: u64,
    /// Abort the process on a violation instead of repairing it (for tests and soaks: a
    /// violation is a bug, and this makes it impossible to miss).
    pub abort_on_violation: bool,
}

impl Default for InvariantSettings {
    fn default() -> Self {
        Self {
            check_ms: 5_000,
            abort_on_violation: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SecuritySettings {
    /// Destination ranges allowed despite the SSRF guard (which refuses loopback, private,
    /// link-local, CGNAT, unique-local, multicast... addresses), as CIDRs.
    pub allow_cidrs: Vec<String>,
    /// After a secret rotation, deliveries carry the old signature too for this long.
    pub rotation_grace_ms: u64,
}

impl Default for SecuritySettings {
    fn default() -> Self {
        Self {
            allow_cidrs: Vec::new(),
            rotation_grace_ms: 24 * 3_600_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsSettings {
    /// Label delivery series with the webhook id (for installations with few webhooks).
    pub per_webhook: bool,
    /// With `per_webhook`, at most this many webhooks get their own series; the rest are
    /// counted under `webhook="other"`, so cardinality stays bounded.
    pub per_webhook_limit: usize,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        Self {
            per_webhook: false,
            per_webhook_limit: 100,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct LogSettings {
    /// `text` for people, `json` for log collectors. The level comes from `RUST_LOG`.
    pub format: LogFormat,
}

impl DeliverySettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// How many deliveries a busy webhook batches: outcomes written per flush, entries read
    /// per queue read. Three quarters of the window: each flush and each read costs Redis a
    /// few commands whatever its size, and the last quarter keeps requests going meanwhile.
    pub fn batch(&self) -> usize {
        (self.max_in_flight * 3 / 4).max(1)
    }
}
