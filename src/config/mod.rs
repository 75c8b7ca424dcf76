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

use serde::Deserialize;

mod sections;

pub use sections::*;

/// The whole configuration.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    pub instance: InstanceSettings,
    pub leases: LeaseSettings,
    pub api: ApiSettings,
    pub redis: RedisSettings,
    pub webhooks: WebhooksSettings,
    pub events: EventsSettings,
    pub routing: RoutingSettings,
    pub bullmq: BullMqSettings,
    pub delivery: DeliverySettings,
    pub retry: RetrySettings,
    pub circuit: CircuitSettings,
    pub dead_letters: DeadLetterSettings,
    pub attempts: AttemptLogSettings,
    pub shutdown: ShutdownSettings,
    pub invariants: InvariantSettings,
    pub security: SecuritySettings,
    pub metrics: MetricsSettings,
    pub log: LogSettings,
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

    /// Rejects values the service cannot work with, naming the key and the rule. Every duration
    /// and size has bounds: a zero idle time would spin a thread, a huge delay would overflow
    /// a timer.
    pub fn validate(&self) -> anyhow::Result<()> {
        let mut check = Checks::default();
        check.rule(
            self.api.listen.parse::<SocketAddr>().is_ok(),
            "api.listen",
            "must be an IP address and port, like 127.0.0.1:8787",
        );
        check.range("api.body_limit_bytes", self.api.body_limit_bytes as u64, 1024, GIB);
        check.rule(
            self.api.access_tokens.iter().all(|t| t.0.len() >= 16),
            "api.access_tokens",
            "each token must be at least 16 characters",
        );
        check.rule(
            !self.api.wildduck_tokens || !self.api.wildduck_secret.0.is_empty(),
            "api.wildduck_secret",
            "must be set (to WildDuck's [api.accessControl] secret) when api.wildduck_tokens is on",
        );
        check.range(
            "api.wildduck_token_lifetime_s",
            self.api.wildduck_token_lifetime_s,
            1,
            10 * 365 * 86_400,
        );
        check.rule(
            url::Url::parse(self.wildduck_redis_url()).is_ok_and(|u| matches!(u.scheme(), "redis" | "rediss" | "unix")),
            "api.wildduck_redis_url",
            "must be empty (= bullmq.url, or redis.url) or a redis://, rediss:// or unix:// URL",
        );
        check.rule(
            url::Url::parse(&self.redis.url).is_ok_and(|u| matches!(u.scheme(), "redis" | "rediss" | "unix")),
            "redis.url",
            "must be a redis://, rediss:// or unix:// URL",
        );
        check.rule(
            !self.redis.prefix.is_empty() && !self.redis.prefix.chars().any(|c| c.is_whitespace() || c == '*'),
            "redis.prefix",
            "must be non-empty, without spaces or '*'",
        );
        check.range("redis.timeout_ms", self.redis.timeout_ms, 10, HOUR_MS);
        check.rule(
            self.redis.cert_file.is_empty() == self.redis.key_file.is_empty(),
            "redis.cert_file",
            "and redis.key_file go together: set both (mutual TLS) or neither",
        );
        check.rule(
            self.redis.sentinels.iter().all(|s| {
                s.rsplit_once(':')
                    .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
            }),
            "redis.sentinels",
            "each must be host:port, like 10.0.0.5:26379",
        );
        check.range(
            "redis.min_replicas_acked",
            u64::from(self.redis.min_replicas_acked),
            0,
            16,
        );
        check.rule(
            self.redis.min_replicas_acked == 0
                || (self.redis.replica_wait_ms >= 10 && self.redis.replica_wait_ms < self.redis.timeout_ms),
            "redis.replica_wait_ms",
            "must be from 10 and below redis.timeout_ms when redis.min_replicas_acked is set (the wait is one Redis command)",
        );
        check.rule(
            self.redis.sentinels.is_empty() || !self.redis.master_name.is_empty(),
            "redis.master_name",
            "must be set when redis.sentinels is",
        );
        check.rule(
            self.redis.sentinels.is_empty() || !self.redis.url.starts_with("unix:"),
            "redis.url",
            "must be a redis:// or rediss:// URL when redis.sentinels is set (its host and port are replaced by the sentinels' answer)",
        );
        check.range("webhooks.resync_ms", self.webhooks.resync_ms, 100, HOUR_MS);
        check.range("events.max_bytes", self.events.max_bytes as u64, 64, 64 * MIB);
        check.range("events.batch_size", self.events.batch_size as u64, 1, 10_000);
        check.range("events.block_ms", self.events.block_ms, 10, 60_000);
        check.rule(
            self.events.consumer.bytes().all(|b| b.is_ascii_graphic()),
            "events.consumer",
            "must be empty (= the instance name) or printable, without spaces",
        );
        check.rule(
            (0..=19).contains(&self.instance.nice),
            "instance.nice",
            &format!(
                "must be from 0 to 19 (is {}): the service only ever lowers its CPU priority",
                self.instance.nice
            ),
        );
        check.range("leases.ttl_ms", self.leases.ttl_ms, 1_000, 600_000);
        check.rule(
            self.leases.ttl_ms >= 2 * self.redis.timeout_ms,
            "leases.ttl_ms",
            "must be at least 2 x redis.timeout_ms, so a renewal that times out can be retried before the lease expires",
        );
        check.range(
            "events.rejected_max_len",
            self.events.rejected_max_len as u64,
            1,
            100_000_000,
        );
        check.range(
            "events.max_writes_per_script",
            self.events.max_writes_per_script as u64,
            1,
            5_000,
        );
        check.range("events.retain_ms", self.events.retain_ms, 0, 366 * 86_400_000);
        check.range("events.retain_max", self.events.retain_max, 0, 1_000_000_000);
        check.range("events.replay_backlog", self.events.replay_backlog, 1, 100_000_000);
        self.validate_bullmq(&mut check);
        check.range("delivery.timeout_ms", self.delivery.timeout_ms, 100, HOUR_MS);
        check.range("delivery.max_in_flight", self.delivery.max_in_flight as u64, 1, 10_000);
        check.rule(
            awc::http::header::HeaderValue::from_str(&self.delivery.user_agent).is_ok(),
            "delivery.user_agent",
            "must be a valid header value",
        );
        check.range("delivery.workers", self.delivery.workers as u64, 0, 1024);
        check.range(
            "delivery.max_connections_per_host",
            self.delivery.max_connections_per_host as u64,
            1,
            100_000,
        );
        check.range(
            "delivery.initial_concurrency",
            self.delivery.initial_concurrency as u64,
            1,
            self.delivery.max_in_flight.max(1) as u64,
        );
        check.range("delivery.idle_stop_ms", self.delivery.idle_stop_ms, 100, DAY_MS);
        check.range("retry.initial_delay_ms", self.retry.initial_delay_ms, 1, 30 * DAY_MS);
        check.rule(
            self.retry.multiplier.is_finite() && (1.0..=1000.0).contains(&self.retry.multiplier),
            "retry.multiplier",
            "must be from 1.0 to 1000.0",
        );
        check.range(
            "retry.max_delay_ms",
            self.retry.max_delay_ms,
            self.retry.initial_delay_ms,
            30 * DAY_MS,
        );
        check.range("retry.max_attempts", u64::from(self.retry.max_attempts), 1, 100_000);
        check.rule(
            (0.0..=1.0).contains(&self.retry.jitter),
            "retry.jitter",
            "must be a fraction between 0 and 1",
        );
        check.range(
            "circuit.failure_threshold",
            u64::from(self.circuit.failure_threshold),
            1,
            100_000,
        );
        check.range(
            "circuit.disable_after_ms",
            self.circuit.disable_after_ms,
            1_000,
            365 * DAY_MS,
        );
        check.range("circuit.probe_initial_ms", self.circuit.probe_initial_ms, 10, DAY_MS);
        check.range(
            "circuit.probe_max_ms",
            self.circuit.probe_max_ms,
            self.circuit.probe_initial_ms,
            DAY_MS,
        );
        check.range("dead_letters.max_len", self.dead_letters.max_len as u64, 1, 100_000_000);
        check.range("dead_letters.ttl_ms", self.dead_letters.ttl_ms, 1_000, 3650 * DAY_MS);
        check.range("attempts.max_len", self.attempts.max_len as u64, 1, 100_000_000);
        check.range("attempts.ttl_ms", self.attempts.ttl_ms, 1_000, 3650 * DAY_MS);
        check.range("shutdown.grace_ms", self.shutdown.grace_ms, 0, HOUR_MS);
        check.range("invariants.check_ms", self.invariants.check_ms, 100, HOUR_MS);
        for cidr in &self.security.allow_cidrs {
            check.rule(
                cidr.parse::<ipnet::IpNet>().is_ok(),
                "security.allow_cidrs",
                &format!("{cidr:?} is not a CIDR like 10.0.0.0/8 or ::1/128"),
            );
        }
        check.range(
            "security.rotation_grace_ms",
            self.security.rotation_grace_ms,
            0,
            365 * DAY_MS,
        );
        check.range(
            "metrics.per_webhook_limit",
            self.metrics.per_webhook_limit as u64,
            1,
            100_000,
        );
        check.finish()
    }

    fn validate_bullmq(&self, check: &mut Checks) {
        let bullmq = &self.bullmq;
        let plain = |text: &str| !text.is_empty() && !text.chars().any(|c| c.is_whitespace() || c == '*');
        check.rule(
            bullmq.url.is_empty() || redis::IntoConnectionInfo::into_connection_info(bullmq.url.as_str()).is_ok(),
            "bullmq.url",
            "must be empty (= redis.url) or a Redis URL, like redis://10.0.0.5:6379",
        );
        check.rule(
            plain(&bullmq.prefix),
            "bullmq.prefix",
            "must be non-empty, without spaces or '*'",
        );
        check.rule(
            plain(&bullmq.queue) && !bullmq.queue.contains(':'),
            "bullmq.queue",
            "must be non-empty, without spaces, '*' or ':' (BullMQ refuses ':' in queue names)",
        );
        check.range("bullmq.batch_size", bullmq.batch_size as u64, 1, 1_000);
        check.range("bullmq.block_ms", bullmq.block_ms, 10, 60_000);
        // A claimed job must stay ours for the whole claim → publish → finish cycle, three
        // Redis commands of up to redis.timeout_ms each.
        check.rule(
            bullmq.lock_ms > 3 * self.redis.timeout_ms && bullmq.lock_ms <= 3_600_000,
            "bullmq.lock_ms",
            "must be more than 3 x redis.timeout_ms and at most 3600000",
        );
    }

    /// WildDuck's Redis for `[api] wildduck_tokens`: its own setting, else WildDuck's BullMQ
    /// Redis, else hookrouter's.
    pub fn wildduck_redis_url(&self) -> &str {
        [&self.api.wildduck_redis_url, &self.bullmq.url, &self.redis.url]
            .into_iter()
            .find(|url| !url.is_empty())
            .map_or("", String::as_str)
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

const MIB: u64 = 1024 * 1024;
const GIB: u64 = 1024 * MIB;
const HOUR_MS: u64 = 3_600_000;
const DAY_MS: u64 = 24 * HOUR_MS;

/// The problems found while validating, each naming its key and rule.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn rule(&mut self, ok: bool, key: &str, rule: &str) {
        if !ok {
            self.0.push(format!("{key}: {rule}"));
        }
    }

    fn range(&mut self, key: &str, value: u64, min: u64, max: u64) {
        self.rule(
            (min..=max).contains(&value),
            key,
            &format!("must be from {min} to {max} (is {value})"),
        );
    }

    fn finish(self) -> anyhow::Result<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            anyhow::bail!("invalid configuration:\n  {}", self.0.join("\n  "))
        }
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
        .with_list_parse_key("redis.sentinels")
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

    #[test]
    fn sentinel_settings_are_checked() {
        let mut settings = Settings::default();
        settings.redis.sentinels = vec!["10.0.0.5:26379".into(), "10.0.0.6".into()];
        settings.redis.master_name = String::new();
        let message = settings.validate().unwrap_err().to_string();
        assert!(message.contains("redis.sentinels: each must be host:port"), "{message}");
        assert!(
            message.contains("redis.master_name: must be set when redis.sentinels is"),
            "{message}"
        );
        settings.redis.sentinels = vec!["10.0.0.5:26379".into()];
        settings.redis.master_name = "mymaster".into();
        settings.validate().expect("sentinels with a master name validate");
        settings.redis.min_replicas_acked = 1;
        settings.redis.replica_wait_ms = settings.redis.timeout_ms;
        let message = settings.validate().unwrap_err().to_string();
        assert!(
            message.contains("redis.replica_wait_ms: must be from 10 and below redis.timeout_ms"),
            "{message}"
        );
        settings.redis.replica_wait_ms = 1_000;
        std::env::set_var("HOOKROUTER__REDIS__SENTINELS", "10.0.0.5:26379,10.0.0.6:26379");
        let loaded = Settings::load(Path::new("/nonexistent.toml")).unwrap();
        assert_eq!(loaded.redis.sentinels, ["10.0.0.5:26379", "10.0.0.6:26379"]);
    }

    #[test]
    fn every_duration_and_size_that_would_break_the_service_is_refused() {
        /// (key, how to break it, the rule the error must name)
        type Case = (&'static str, fn(&mut Settings), &'static str);
        let cases: Vec<Case> = vec![
            (
                "delivery.idle_stop_ms",
                |s| s.delivery.idle_stop_ms = 0,
                "must be from 100 to 86400000 (is 0)",
            ),
            ("delivery.timeout_ms", |s| s.delivery.timeout_ms = 0, "must be from 100"),
            (
                "delivery.workers",
                |s| s.delivery.workers = 100_000,
                "must be from 0 to 1024",
            ),
            (
                "retry.max_delay_ms",
                |s| s.retry.max_delay_ms = u64::MAX,
                "must be from 2000 to",
            ),
            (
                "retry.initial_delay_ms",
                |s| s.retry.initial_delay_ms = 0,
                "must be from 1",
            ),
            (
                "circuit.probe_initial_ms",
                |s| s.circuit.probe_initial_ms = 0,
                "must be from 10",
            ),
            (
                "circuit.probe_max_ms",
                |s| s.circuit.probe_max_ms = 1_000,
                "must be from 5000",
            ),
            ("attempts.max_len", |s| s.attempts.max_len = 0, "must be from 1"),
            (
                "instance.nice",
                |s| s.instance.nice = -5,
                "must be from 0 to 19 (is -5)",
            ),
            (
                "instance.nice",
                |s| s.instance.nice = 20,
                "must be from 0 to 19 (is 20)",
            ),
            ("attempts.ttl_ms", |s| s.attempts.ttl_ms = 0, "must be from 1000"),
            (
                "dead_letters.ttl_ms",
                |s| s.dead_letters.ttl_ms = 0,
                "must be from 1000",
            ),
            (
                "shutdown.grace_ms",
                |s| s.shutdown.grace_ms = u64::MAX,
                "must be from 0 to 3600000",
            ),
            ("redis.timeout_ms", |s| s.redis.timeout_ms = 0, "must be from 10"),
            (
                "redis.url",
                |s| s.redis.url = "127.0.0.1:6379".into(),
                "must be a redis://",
            ),
            ("events.max_bytes", |s| s.events.max_bytes = 1, "must be from 64"),
            (
                "security.allow_cidrs",
                |s| s.security.allow_cidrs = vec!["10.0.0.0/33".into()],
                "\"10.0.0.0/33\" is not a CIDR",
            ),
            (
                "api.access_tokens",
                |s| s.api.access_tokens = vec![AccessToken("short".into())],
                "each token must be at least 16",
            ),
            (
                "metrics.per_webhook_limit",
                |s| s.metrics.per_webhook_limit = 0,
                "must be from 1",
            ),
        ];
        for (key, break_it, rule) in cases {
            let mut settings = Settings::default();
            break_it(&mut settings);
            let message = settings.validate().unwrap_err().to_string();
            assert!(message.contains(&format!("{key}: {rule}")), "{key}: {message}");
        }
    }

    #[test]
    fn bullmq_keys_come_from_the_environment_and_are_checked() {
        std::env::set_var("HOOKROUTER__BULLMQ__ENABLED", "true");
        std::env::set_var("HOOKROUTER__BULLMQ__URL", "redis://10.0.0.5:6380/2");
        std::env::set_var("HOOKROUTER__BULLMQ__QUEUE", "events");
        std::env::set_var("HOOKROUTER__ROUTING__USERLESS_TO_USER_WEBHOOKS", "true");
        let settings = Settings::load(Path::new("/nonexistent.toml")).unwrap();
        assert!(settings.bullmq.enabled && settings.routing.userless_to_user_webhooks);
        assert_eq!(settings.bullmq.url, "redis://10.0.0.5:6380/2");
        assert_eq!(
            (settings.bullmq.prefix.as_str(), settings.bullmq.queue.as_str()),
            ("wd:bull", "events")
        );

        let mut bad = Settings::default();
        bad.bullmq.url = "http://nope".into();
        bad.bullmq.queue = "a:b".into();
        bad.bullmq.prefix = String::new();
        bad.bullmq.batch_size = 0;
        bad.bullmq.block_ms = 5;
        bad.bullmq.lock_ms = 15_000;
        let message = bad.validate().unwrap_err().to_string();
        for key in [
            "bullmq.url: must be empty",
            "bullmq.queue: must be non-empty, without spaces, '*' or ':'",
            "bullmq.prefix: must be non-empty",
            "bullmq.batch_size: must be from 1 to 1000 (is 0)",
            "bullmq.block_ms: must be from 10 to 60000 (is 5)",
            "bullmq.lock_ms: must be more than 3 x redis.timeout_ms",
        ] {
            assert!(message.contains(key), "{key} in {message}");
        }
    }
}
