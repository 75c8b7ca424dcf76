//! One typed settings tree for the whole service.
//!
//! Settings come from three layers, later ones winning: the built-in defaults below, the TOML
//! file (`./config.toml` unless `--config` names another; a missing file is fine), and
//! environment variables named `HOOKROUTER__<SECTION>__<KEY>`. The repository's `config.toml`
//! lists every key with its default and a comment; a unit test keeps the two in step.
//!
//! Everything is checked once, here, so the rest of the service can trust the values.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub api: ApiSettings,
    pub redis: RedisSettings,
    pub webhooks: WebhooksSettings,
    pub events: EventsSettings,
    pub delivery: DeliverySettings,
    pub retry: RetrySettings,
    pub circuit: CircuitSettings,
    pub dead_letters: DeadLetterSettings,
    pub attempts: AttemptLogSettings,
    pub shutdown: ShutdownSettings,
    pub security: SecuritySettings,
    pub metrics: MetricsSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiSettings {
    /// Address the REST API binds to. Port 0 picks a free port (tests use it).
    pub listen: String,
    /// Largest request body the API reads, in bytes (`POST /events` batches are the big ones).
    pub body_limit_bytes: usize,
    /// Tokens that grant access to the API. Empty: no access control, which the service only
    /// accepts on a loopback `listen` address.
    pub access_tokens: Vec<AccessToken>,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8787".into(),
            body_limit_bytes: 4 * 1024 * 1024,
            access_tokens: Vec::new(),
        }
    }
}

/// An API access token. Its `Debug` hides it, so settings can be logged safely.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(transparent)]
pub struct AccessToken(pub String);

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccessToken(***)")
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
}

impl Default for RedisSettings {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            prefix: "hookrouter".into(),
            timeout_ms: 5_000,
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
    /// Consumer name in the stream's consumer group; a restarted instance with the same name
    /// picks up the entries it had read but not yet acknowledged.
    pub consumer: String,
    /// Rejected entries kept in `<prefix>:rejected` (oldest trimmed first).
    pub rejected_max_len: usize,
}

impl Default for EventsSettings {
    fn default() -> Self {
        Self {
            max_bytes: 256 * 1024,
            batch_size: 256,
            block_ms: 1_000,
            consumer: "hookrouter-1".into(),
            rejected_max_len: 10_000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeliverySettings {
    /// Whole-request timeout (connect, send, response headers and body).
    pub timeout_ms: u64,
    /// Deliveries one webhook keeps in memory at once (sending or waiting for a retry).
    pub max_in_flight: usize,
    pub user_agent: String,
    /// Delivery arbiters (threads); 0 = one per CPU core.
    pub workers: usize,
    /// A webhook's delivery actor stops after this long with nothing to do (it starts again
    /// with the next event), so idle webhooks cost no actor.
    pub idle_stop_ms: u64,
}

impl Default for DeliverySettings {
    fn default() -> Self {
        Self {
            timeout_ms: 10_000,
            max_in_flight: 16,
            user_agent: concat!("hookrouter/", env!("CARGO_PKG_VERSION")).into(),
            workers: 0,
            idle_stop_ms: 60_000,
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
    /// Consecutive failures that open the circuit: one probe at a time, at the backoff pace.
    pub failure_threshold: u32,
    /// A webhook failing without a single success for this long is disabled.
    pub disable_after_ms: u64,
}

impl Default for CircuitSettings {
    fn default() -> Self {
        Self {
            failure_threshold: 5,
            disable_after_ms: 5 * 24 * 3_600_000,
        }
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

impl Settings {
    /// Loads defaults, then `path` if it exists, then `HOOKROUTER__*` environment variables.
    pub fn load(path: &Path) -> anyhow::Result<Settings> {
        let builder = config::Config::builder()
            .add_source(config::File::from(path).required(false))
            .add_source(environment());
        let mut settings: Settings = builder.build()?.try_deserialize()?;
        // An empty variable (`HOOKROUTER__API__ACCESS_TOKENS=`) means an empty list.
        settings.api.access_tokens.retain(|t| !t.0.is_empty());
        settings.security.allow_cidrs.retain(|c| !c.is_empty());
        settings.validate()?;
        Ok(settings)
    }

    /// Loads only what `path` says (plus defaults), ignoring the environment.
    pub fn from_file(path: &Path) -> anyhow::Result<Settings> {
        let built = config::Config::builder()
            .add_source(config::File::from(path).required(true))
            .build()?;
        Self::from_config(built)
    }

    fn from_config(built: config::Config) -> anyhow::Result<Settings> {
        let settings: Settings = built.try_deserialize()?;
        settings.validate()?;
        Ok(settings)
    }

    /// Rejects values the service cannot work with, naming the key and the rule.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut problems = Vec::new();
        let mut check = |ok: bool, key: &str, rule: &str| {
            if !ok {
                problems.push(format!("{key}: {rule}"));
            }
        };
        check(
            self.api.listen.parse::<SocketAddr>().is_ok(),
            "api.listen",
            "must be an IP address and port, like 127.0.0.1:8787",
        );
        check(
            self.api.body_limit_bytes >= 1024,
            "api.body_limit_bytes",
            "must be at least 1024",
        );
        check(
            !self.redis.prefix.is_empty() && !self.redis.prefix.chars().any(|c| c.is_whitespace() || c == '*'),
            "redis.prefix",
            "must be non-empty, without spaces or '*'",
        );
        check(self.redis.timeout_ms > 0, "redis.timeout_ms", "must be positive");
        check(
            self.webhooks.resync_ms >= 100,
            "webhooks.resync_ms",
            "must be at least 100",
        );
        check(self.events.max_bytes >= 64, "events.max_bytes", "must be at least 64");
        check(
            (1..=10_000).contains(&self.events.batch_size),
            "events.batch_size",
            "must be between 1 and 10000",
        );
        check(
            (10..=60_000).contains(&self.events.block_ms),
            "events.block_ms",
            "must be between 10 and 60000",
        );
        check(!self.events.consumer.is_empty(), "events.consumer", "must not be empty");
        check(
            self.events.rejected_max_len > 0,
            "events.rejected_max_len",
            "must be positive",
        );
        check(self.delivery.timeout_ms > 0, "delivery.timeout_ms", "must be positive");
        check(
            (1..=10_000).contains(&self.delivery.max_in_flight),
            "delivery.max_in_flight",
            "must be between 1 and 10000",
        );
        check(
            awc::http::header::HeaderValue::from_str(&self.delivery.user_agent).is_ok(),
            "delivery.user_agent",
            "must be a valid header value",
        );
        check(
            self.retry.initial_delay_ms > 0,
            "retry.initial_delay_ms",
            "must be positive",
        );
        check(
            self.retry.multiplier.is_finite() && self.retry.multiplier >= 1.0,
            "retry.multiplier",
            "must be at least 1.0",
        );
        check(
            self.retry.max_delay_ms >= self.retry.initial_delay_ms,
            "retry.max_delay_ms",
            "must be at least retry.initial_delay_ms",
        );
        check(self.retry.max_attempts >= 1, "retry.max_attempts", "must be at least 1");
        check(
            (0.0..=1.0).contains(&self.retry.jitter),
            "retry.jitter",
            "must be a fraction between 0 and 1",
        );
        check(
            self.circuit.failure_threshold >= 1,
            "circuit.failure_threshold",
            "must be at least 1",
        );
        check(
            self.dead_letters.max_len > 0,
            "dead_letters.max_len",
            "must be positive",
        );
        if problems.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("invalid configuration:\n  {}", problems.join("\n  "))
        }
    }

    /// The API's bind address (validated by [`Settings::validate`]).
    pub fn listen_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.api.listen.parse()?)
    }

    pub fn delivery_workers(&self) -> usize {
        match self.delivery.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

impl DeliverySettings {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// `HOOKROUTER__REDIS__URL=...` → `redis.url`; list keys take comma-separated values.
fn environment() -> config::Environment {
    config::Environment::with_prefix("HOOKROUTER")
        .prefix_separator("__")
        .separator("__")
        .try_parsing(true)
        .list_separator(",")
        .with_list_parse_key("api.access_tokens")
        .with_list_parse_key("security.allow_cidrs")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_repository_config_file_matches_the_built_in_defaults() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config.toml");
        let from_file = Settings::from_file(&path).expect("config.toml loads");
        assert_eq!(from_file, Settings::default());
    }

    #[test]
    fn defaults_are_valid() {
        Settings::default().validate().expect("defaults validate");
    }

    #[test]
    fn list_keys_come_from_comma_separated_environment_variables() {
        // SAFETY of the test: nextest runs each test in its own process.
        std::env::set_var(
            "HOOKROUTER__API__ACCESS_TOKENS",
            "0123456789abcdef-one,0123456789abcdef-two",
        );
        std::env::set_var("HOOKROUTER__SECURITY__ALLOW_CIDRS", "127.0.0.0/8");
        std::env::set_var("HOOKROUTER__RETRY__MAX_ATTEMPTS", "3");
        let settings = Settings::load(Path::new("/nonexistent.toml")).unwrap();
        assert_eq!(settings.api.access_tokens.len(), 2);
        assert_eq!(settings.api.access_tokens[1].0, "0123456789abcdef-two");
        assert_eq!(settings.security.allow_cidrs, ["127.0.0.0/8"]);
        assert_eq!(settings.retry.max_attempts, 3);
        assert_eq!(format!("{:?}", settings.api.access_tokens[0]), "AccessToken(***)");
    }

    #[test]
    fn validation_names_the_key_and_the_rule() {
        let mut settings = Settings::default();
        settings.retry.jitter = 3.0;
        settings.api.listen = "nowhere".into();
        let message = settings.validate().unwrap_err().to_string();
        assert!(message.contains("retry.jitter: must be a fraction"), "{message}");
        assert!(message.contains("api.listen: must be an IP address"), "{message}");
    }
}
