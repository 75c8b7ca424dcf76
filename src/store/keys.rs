//! The Redis key schema, in one place.
//!
//! Every key starts with the configured prefix `P`. Variable parts (ids, users, patterns)
//! always come last, so two families can never produce the same key.
//!
//! | key | type | holds |
//! |---|---|---|
//! | `P:events` | stream | events from producers; consumer group `hookrouter` |
//! | `P:rejected` | stream | malformed event entries: reason, raw value (capped) |
//! | `P:retained` | stream | events kept after their fan-out (`retained.rs`): e (event id), ev, u (user), b (body), w (`<webhook>=<queue entry>` each it went to); trimmed by `events.retain_ms` and `retain_max` |
//! | `P:retained:index` | hash | event id → its `P:retained` entry id (`GET /events/{id}`) |
//! | `P:replays:<id>` | hash | the webhook's replays (`replays.rs`): `next` (the last replay number), `<n>` → the replay's state (JSON), `<n>:delivered` its entries delivered so far |
//! | `P:replays` | zset | `<webhook>/<n>` of every replay still running (score: when it started, ms) |
//! | `P:replay:lease:<id>/<n>` | string | the instance running that replay (a lease like `P:lease:<id>`, expiring after `leases.ttl_ms`) |
//! | `P:webhook:<id>` | hash | one webhook: url, type (JSON), user, created, enabled, rev |
//! | `P:webhooks` | zset | every webhook id (score 0: ids sort by creation time) |
//! | `P:webhooks:global` | zset | ids of webhooks without a user |
//! | `P:webhooks:user:<user>` | zset | ids of that user's webhooks |
//! | `P:webhooks:type:<pattern>` | zset | ids of webhooks listing that exact pattern |
//! | `P:webhooks:paused` | zset | ids of paused webhooks |
//! | `P:webhooks:disabled` | zset | ids of disabled webhooks |
//! | `P:webhooks:indexed` | string | set once the paused/disabled sets hold every webhook made before them |
//! | `P:webhooks:version` | string | counter incremented by every webhook change (resync check) |
//! | `P:webhooks:changes` | stream | the change log: entry `<version>-0` names the webhook that version changed (capped) |
//! | `P:changes` | pub/sub channel | `<id>:<version>` of each webhook change; `<id>[,<id>…]` new work; `<id>:retry`; `instances` |
//! | `P:instances` | zset | instance name → its last heartbeat (ms, Redis's clock) |
//! | `P:instance:<name>` | hash | one instance: `delivering`, `startedAt`, `webhooks` (owned), `lastSeen` |
//! | `P:lease:<id>` | string | the webhook's owner: `<instance>:<start ms>:<n>`, expiring after `leases.ttl_ms` |
//! | `P:queue:<id>` | stream | the webhook's pending deliveries: d (`<event id>\n<ev>\n<body>`); r (replay number) on what a replay queued |
//! | `P:retry:<id>` | hash | queue entry id → `attempts:due_ms:first_failed_ms` for entries that failed |
//! | `P:due:<id>` | zset | entries waiting for their retry, scored by due time (ms); not those in flight |
//! | `P:dead:<id>` | stream | dead letters (capped by count and age) |
//! | `P:attempts:<id>` | stream | the webhook's attempt log, newest last (capped; expires when idle) |
//! | `P:circuit:<id>` | hash | consecutive failures and since when (absent while healthy) |
//! | `P:health:<id>` | string | the delivery actor's last health report (JSON) |
//! | `P:probe` | string | written by `GET /health` to see that Redis takes writes (expires after 10 s) |
//! | `P:board:<instance>` | string | a delivering instance's board: its running actors' states (JSON; expires) |
//! | `P:ticket:<sha256>` | string | a dashboard stream ticket (by the digest of the ticket; single use, expires) |
//! | `P:scratch:list` | zset | scratch space of the listing script, deleted before it returns |
//!
//! The BullMQ source also uses BullMQ's own keys for one queue, `B:<queue>:…` where `B` is
//! `[bullmq] prefix` ([`BullMqKeys`]). Their layout is BullMQ's (the same in 5.23.1, which
//! WildDuck pins, and in 5.81, the newest 5.x checked); the scripts in `scripts/bullmq_*.lua`
//! follow BullMQ's own scripts on them:
//!
//! | key | type | holds |
//! |---|---|---|
//! | `B:<queue>:wait` | list | ids of jobs ready to run: `Queue.add` LPUSHes, workers take from the right |
//! | `B:<queue>:paused` | list | the same while the queue is paused (`pause` renames `wait` to it and back) |
//! | `B:<queue>:meta` | hash | `paused` (present = paused), `opts.maxLenEvents`, `version`, … |
//! | `B:<queue>:active` | list | ids of jobs being worked on, each with a lock `B:<queue>:<id>:lock` (token, PX) |
//! | `B:<queue>:prioritized` | zset | jobs with a priority (score priority × 2³² + counter `B:<queue>:pc`) |
//! | `B:<queue>:delayed` | zset | jobs waiting for a time (score due ms × 4096 + sequence) |
//! | `B:<queue>:marker` | zset | wake-up marker for blocked workers: `0` (jobs waiting) or `1` (score: next due delayed job) |
//! | `B:<queue>:stalled`, `B:<queue>:stalled-check` | set, string | the two-phase stalled-job check and its interval lock |
//! | `B:<queue>:events` | stream | BullMQ's event log (`added`, `waiting`, `completed`, …), capped at `opts.maxLenEvents` |
//! | `B:<queue>:<id>` | hash | a job: `name`, `data` (the JSON payload), `opts`, `timestamp`, `delay`, `priority`, … |
//! | `B:<queue>:id` | string | the job id counter (`Queue.add` INCRs it; never touched here) |
//!
//! With `[api] wildduck_tokens`, the API also reads the access tokens WildDuck issues, in
//! WildDuck's Redis and under WildDuck's own key ([`wildduck_token`]); hookrouter only extends
//! and deletes them where WildDuck itself would (see `security::wildduck_tokens`):
//!
//! | key | type | holds |
//! |---|---|---|
//! | `tn:token:<sha256>` | hash | a WildDuck access token (by the hex SHA-256 of the token): `user`, `role`, `created`, `ttl`, `authVersion`, `s` (signature); expires after `ttl` s unused |

use std::sync::Arc;

use crate::domain::{StreamId, WebhookId};

/// BullMQ's keys for one queue (see the table above): `<prefix>:<queue>:<type>`, and a job's
/// keys `<prefix>:<queue>:<id>…`, which scripts build from [`BullMqKeys::base`].
#[derive(Clone, Debug)]
pub struct BullMqKeys {
    /// `<prefix>:<queue>:`
    base: Arc<str>,
}

impl BullMqKeys {
    pub fn new(prefix: &str, queue: &str) -> BullMqKeys {
        BullMqKeys {
            base: Arc::from(format!("{prefix}:{queue}:")),
        }
    }

    /// `<prefix>:<queue>:`: a job's hash is this followed by its id.
    pub fn base(&self) -> &str {
        &self.base
    }

    pub fn key(&self, kind: &str) -> String {
        format!("{}{kind}", self.base)
    }

    pub fn marker(&self) -> String {
        self.key("marker")
    }

    /// The queue keys every BullMQ script takes, in the order `bullmq_lib.lua` names them.
    pub fn script_keys(&self) -> [String; 11] {
        [
            "wait",
            "paused",
            "meta",
            "active",
            "prioritized",
            "delayed",
            "stalled",
            "stalled-check",
            "marker",
            "events",
            "pc",
        ]
        .map(|kind| self.key(kind))
    }
}

/// WildDuck's key for an access token, by the token's hex SHA-256 (no prefix: it is WildDuck's).
pub fn wildduck_token(digest: &str) -> String {
    format!("tn:token:{digest}")
}

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

    pub fn retained(&self) -> String {
        self.key(format_args!("retained"))
    }

    pub fn retained_index(&self) -> String {
        self.key(format_args!("retained:index"))
    }

    /// The webhook's replays (one hash for all of them, so deleting the webhook drops them).
    pub fn replays_of(&self, id: &WebhookId) -> String {
        self.key(format_args!("replays:{id}"))
    }

    /// Every running replay, `<webhook>/<n>`.
    pub fn replays_running(&self) -> String {
        self.key(format_args!("replays"))
    }

    pub fn replay_lease(&self, id: &WebhookId, replay: u64) -> String {
        self.key(format_args!("replay:lease:{id}/{replay}"))
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

    pub fn webhooks_changes(&self) -> String {
        self.key(format_args!("webhooks:changes"))
    }

    pub fn instances(&self) -> String {
        self.key(format_args!("instances"))
    }

    pub fn instance(&self, name: &str) -> String {
        self.key(format_args!("instance:{name}"))
    }

    pub fn lease(&self, id: &WebhookId) -> String {
        self.key(format_args!("lease:{id}"))
    }

    /// `GET /health`'s write probe.
    pub fn probe(&self) -> String {
        self.key(format_args!("probe"))
    }

    pub fn changes_channel(&self) -> String {
        self.key(format_args!("changes"))
    }

    /// The queues an event too widely matched for one fan-out script was appended to so far
    /// (see `scripts/fanout.lua`).
    pub fn fanout_progress(&self, entry: &StreamId) -> String {
        self.key(format_args!("fanout:{entry}"))
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

    /// `digest`: the hex SHA-256 of the ticket.
    pub fn ticket(&self, digest: &str) -> String {
        self.key(format_args!("ticket:{digest}"))
    }

    pub fn list_scratch(&self) -> String {
        self.key(format_args!("scratch:list"))
    }

    /// Every key that belongs to one webhook besides its record and index entries; deleting a
    /// webhook deletes these.
    pub fn owned_by(&self, id: &WebhookId) -> [String; 9] {
        [
            self.replays_of(id),
            self.lease(id),
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
