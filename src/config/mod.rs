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
        self.validate_bullmq(&mut check);
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

    fn validate_bullmq(&self, check: &mut impl FnMut(bool, &str, &str)) {
        let bullmq = &self.bullmq;
        let plain = |text: &str| !text.is_empty() && !text.chars().any(|c| c.is_whitespace() || c == '*');
        check(
            bullmq.url.is_empty() || redis::IntoConnectionInfo::into_connection_info(bullmq.url.as_str()).is_ok(),
            "bullmq.url",
            "must be empty (= redis.url) or a Redis URL, like redis://10.0.0.5:6379",
        );
        check(
            plain(&bullmq.prefix),
            "bullmq.prefix",
            "must be non-empty, without spaces or '*'",
        );
        check(
            plain(&bullmq.queue) && !bullmq.queue.contains(':'),
            "bullmq.queue",
            "must be non-empty, without spaces, '*' or ':' (BullMQ refuses ':' in queue names)",
        );
        check(
            (1..=1_000).contains(&bullmq.batch_size),
            "bullmq.batch_size",
            "must be between 1 and 1000",
        );
        check(
            (10..=60_000).contains(&bullmq.block_ms),
            "bullmq.block_ms",
            "must be between 10 and 60000",
        );
        // A claimed job must stay ours for the whole claim → publish → finish cycle, three
        // Redis commands of up to redis.timeout_ms each.
        check(
            bullmq.lock_ms > 3 * self.redis.timeout_ms && bullmq.lock_ms <= 3_600_000,
            "bullmq.lock_ms",
            "must be more than 3 x redis.timeout_ms and at most 3600000",
        );
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
            "bullmq.batch_size: must be between 1 and 1000",
            "bullmq.block_ms: must be between 10 and 60000",
            "bullmq.lock_ms: must be more than 3 x redis.timeout_ms",
        ] {
            assert!(message.contains(key), "{key} in {message}");
        }
    }
}
