//! The Redis key schema, in one place.
//!
//! Every key starts with the configured prefix `P`. Variable parts (ids, users, patterns)
//! always come last, so two families can never produce the same key.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:events` | stream | events from producers; consumer group `hookrouter` |
//! | `P:rejected` | stream | malformed event entries: reason, raw value (capped) |
//! | `P:webhook:<id>` | hash | one webhook: url, type (JSON), user, created, enabled, rev |
//! | `P:webhooks` | zset | every webhook id (score 0: ids sort by creation time) |
//! | `P:webhooks:global` | zset | ids of webhooks without a user |
//! | `P:webhooks:user:<user>` | zset | ids of that user's webhooks |
//! | `P:webhooks:type:<pattern>` | zset | ids of webhooks listing that exact pattern |
//! | `P:webhooks:paused` | zset | ids of paused webhooks |
//! | `P:webhooks:disabled` | zset | ids of disabled webhooks |
//! | `P:webhooks:indexed` | string | set once the paused/disabled sets hold every webhook made before them |
//! | `P:webhooks:version` | string | counter incremented by every webhook change (resync check) |
//! | `P:changes` | pub/sub channel | `<id>:<version>` of each webhook change |
//! | `P:queue:<id>` | stream | the webhook's pending deliveries: e (event id), ev, b (body) |
//! | `P:retry:<id>` | hash | queue entry id → `attempts:due_ms:first_failed_ms` for entries that failed |
//! | `P:due:<id>` | zset | entries waiting for their retry, scored by due time (ms); not those in flight |
//! | `P:dead:<id>` | stream | dead letters (capped by count and age) |
//! | `P:attempts:<id>` | stream | the webhook's attempt log, newest last (capped; expires when idle) |
//! | `P:circuit:<id>` | hash | consecutive failures and since when (absent while healthy) |
//! | `P:health:<id>` | string | the delivery actor's last health report (JSON) |
//! | `P:board:<instance>` | string | a delivering instance's board: its running actors' states (JSON; expires) |
//! | `P:boards` | zset | instance name → when its board was last written (ms) |
//! | `P:ticket:<sha256>` | string | a dashboard stream ticket (by the digest of the ticket; single use, expires) |
//! | `P:scratch:list` | zset | scratch space of the listing script, deleted before it returns |

use std::sync::Arc;

use crate::domain::WebhookId;

/// The consumer group every delivering instance reads the event stream with.
pub const EVENTS_GROUP: &str = "hookrouter";

#[derive(Clone, Debug)]
pub struct Keys {
    prefix: Arc<str>,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        Keys {
            prefix: Arc::from(prefix),
        }
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    fn key(&self, rest: std::fmt::Arguments<'_>) -> String {
        format!("{}:{}", self.prefix, rest)
    }

    pub fn events(&self) -> String {
        self.key(format_args!("events"))
    }

    pub fn rejected(&self) -> String {
        self.key(format_args!("rejected"))
    }

    pub fn webhook(&self, id: &WebhookId) -> String {
        self.key(format_args!("webhook:{id}"))
    }

    pub fn webhooks_all(&self) -> String {
        self.key(format_args!("webhooks"))
    }

    pub fn webhooks_global(&self) -> String {
        self.key(format_args!("webhooks:global"))
    }

    pub fn webhooks_of_user(&self, user: &str) -> String {
        self.key(format_args!("webhooks:user:{user}"))
    }

    pub fn webhooks_with_type(&self, pattern: &str) -> String {
        self.key(format_args!("webhooks:type:{pattern}"))
    }

    pub fn webhooks_paused(&self) -> String {
        self.key(format_args!("webhooks:paused"))
    }

    pub fn webhooks_disabled(&self) -> String {
        self.key(format_args!("webhooks:disabled"))
    }

    pub fn webhooks_indexed(&self) -> String {
        self.key(format_args!("webhooks:indexed"))
    }

    pub fn webhooks_version(&self) -> String {
        self.key(format_args!("webhooks:version"))
    }

    pub fn changes_channel(&self) -> String {
        self.key(format_args!("changes"))
    }

    pub fn queue(&self, id: &WebhookId) -> String {
        self.key(format_args!("queue:{id}"))
    }

    pub fn retry(&self, id: &WebhookId) -> String {
        self.key(format_args!("retry:{id}"))
    }

    pub fn due(&self, id: &WebhookId) -> String {
        self.key(format_args!("due:{id}"))
    }

    pub fn dead(&self, id: &WebhookId) -> String {
        self.key(format_args!("dead:{id}"))
    }

    pub fn attempts(&self, id: &WebhookId) -> String {
        self.key(format_args!("attempts:{id}"))
    }

    pub fn circuit(&self, id: &WebhookId) -> String {
        self.key(format_args!("circuit:{id}"))
    }

    pub fn health(&self, id: &WebhookId) -> String {
        self.key(format_args!("health:{id}"))
    }

    pub fn board(&self, instance: &str) -> String {
        self.key(format_args!("board:{instance}"))
    }

    pub fn boards(&self) -> String {
        self.key(format_args!("boards"))
    }

    /// `digest`: the hex SHA-256 of the ticket.
    pub fn ticket(&self, digest: &str) -> String {
        self.key(format_args!("ticket:{digest}"))
    }

    pub fn list_scratch(&self) -> String {
        self.key(format_args!("scratch:list"))
    }

    /// Every key that belongs to one webhook besides its record and index entries; deleting a
    /// webhook deletes these.
    pub fn owned_by(&self, id: &WebhookId) -> [String; 7] {
        [
            self.queue(id),
            self.retry(id),
            self.due(id),
            self.dead(id),
            self.attempts(id),
            self.circuit(id),
            self.health(id),
        ]
    }
}
