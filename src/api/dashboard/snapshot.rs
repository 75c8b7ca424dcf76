//! The dashboard's picture of every webhook, merged from the live boards of every delivering
//! instance: built at most every [`FRESH_FOR`] and shared by every viewer of this instance.
//!
//! A webhook is *active* when a delivery actor runs for it somewhere: its row comes from that
//! instance's board (if two boards name it, as for a moment when a webhook moves between
//! instances, the newer board wins). Paused and disabled webhooks without an actor come from
//! their index sets, with their queue length read now. Every other webhook is *idle*: healthy,
//! nothing queued, and not read at all here ([`super::idle`] pages through them by their index).

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::summary::{round, EventsIn, StateCounts, Summary};
use crate::actors::board::Board;
use crate::actors::delivery::{HealthState, LastFailure};
use crate::clock::now_ms;
use crate::domain::WebhookId;
use crate::store::{Store, StoreResult};

/// How long a snapshot serves before the next viewer makes a new one.
const FRESH_FOR: Duration = Duration::from_millis(250);

/// A webhook that is doing something (or paused or disabled), as the table sorts and filters it.
#[derive(Debug, Clone)]
pub struct Row {
    pub id: WebhookId,
    pub state: HealthState,
    pub url: String,
    /// For the text filter.
    url_lower: String,
    pub user: Option<String>,
    pub backlog: u64,
    pub in_flight: usize,
    pub waiting: u64,
    pub failures: u32,
    /// From the board, while retrying or failing.
    pub last_failure: Option<LastFailure>,
    /// When the next retry or probe is due (ms), from the board.
    pub next_retry_at: Option<u64>,
    pub next_probe_at: Option<u64>,
    /// The instance running its delivery actor; None when it has none.
    pub instance: Option<String>,
}

impl Row {
    /// Whether `text` (lower case) is in its URL, id or user.
    pub fn contains(&self, text: &str) -> bool {
        self.url_lower.contains(text)
            || self.id.to_string().contains(text)
            || self
                .user
                .as_deref()
                .is_some_and(|user| user.to_lowercase().contains(text))
    }

    /// Worst first: failing, then retrying, then by backlog; at equal backlog disabled, paused,
    /// unknown, healthy; then oldest first.
    fn order(&self) -> (u8, std::cmp::Reverse<u64>, u8, String) {
        let group = match self.state {
            HealthState::Failing => 0,
            HealthState::Retrying => 1,
            _ => 2,
        };
        let severity = match self.state {
            HealthState::Disabled => 0,
            HealthState::Paused => 1,
            HealthState::Unknown => 2,
            _ => 3,
        };
        (group, std::cmp::Reverse(self.backlog), severity, self.id.to_string())
    }
}

/// Every non-idle webhook, sorted worst first, and what the summary says.
pub struct Snapshot {
    pub rows: Vec<Row>,
    /// The ids of `rows`.
    pub special: HashSet<WebhookId>,
    /// Their positions in `P:webhooks`, ascending: idle pages are counted around them.
    pub ranks: Vec<u64>,
    pub summary: Summary,
    /// The state idle webhooks are shown in: healthy, or unknown while no instance delivers.
    pub idle_state: HealthState,
}

/// Rows of paused and disabled webhooks without an actor (backlog aside), as of a webhooks
/// version: records change only with the version, so they are read and parsed again only then.
#[derive(Default)]
struct Resting {
    version: Option<u64>,
    rows: HashMap<WebhookId, Row>,
}

/// What the one builder at a time keeps: the latest snapshot and the resting rows.
#[derive(Default)]
struct Memory {
    latest: Option<(Instant, Arc<Snapshot>)>,
    resting: Resting,
}

/// The snapshot shared by this instance's viewers, and what it needs to remember between them.
pub struct SnapshotCache {
    /// How long an instance counts as alive after its last heartbeat.
    lease_ttl: std::time::Duration,
    memory: tokio::sync::Mutex<Memory>,
    /// The events-in rate, from readings of the event stream.
    events_in: std::sync::Mutex<EventsIn>,
    /// The paused/disabled index sets were checked complete.
    indexed: std::sync::atomic::AtomicBool,
}

impl SnapshotCache {
    pub fn new(lease_ttl: std::time::Duration) -> SnapshotCache {
        SnapshotCache {
            lease_ttl,
            memory: Default::default(),
            events_in: Default::default(),
            indexed: Default::default(),
        }
    }

    /// The current snapshot: the shared one if fresh, else a new one (one builder at a time;
    /// the others wait for it).
    pub async fn get(&self, store: &Store) -> StoreResult<Arc<Snapshot>> {
        let mut memory = self.memory.lock().await;
        if let Some((made, snapshot)) = memory.latest.as_ref() {
            if made.elapsed() < FRESH_FOR {
                return Ok(snapshot.clone());
            }
        }
        let snapshot = Arc::new(self.build(store, &mut memory.resting).await?);
        memory.latest = Some((Instant::now(), snapshot.clone()));
        Ok(snapshot)
    }

    async fn build(&self, store: &Store, resting_rows: &mut Resting) -> StoreResult<Snapshot> {
        use std::sync::atomic::Ordering;
        let overview = store.overview();
        if !self.indexed.load(Ordering::Relaxed) {
            overview.complete_state_index().await?;
            self.indexed.store(true, Ordering::Relaxed);
        }
        let now = now_ms();
        let instances = live_instances(store, self.lease_ttl).await?;
        let boards: Vec<Board> = store
            .boards()
            .read(&instances)
            .await?
            .into_iter()
            .flatten()
            .filter_map(|json| serde_json::from_str(&json).ok())
            .collect();
        let census = overview.census().await?;
        let added = overview.events_added().await?;
        let events_in = self.events_in.lock().ok().and_then(|mut rate| rate.observe(added, now));

        // Active webhooks: the newest board's row of each.
        let mut active: HashMap<WebhookId, (u64, Row)> = HashMap::new();
        for board in &boards {
            for row in &board.rows {
                let Some(id) = WebhookId::parse(&row.id) else { continue };
                if active.get(&id).is_some_and(|(at, _)| *at >= board.at) {
                    continue;
                }
                let row = Row {
                    id,
                    state: row.state,
                    url_lower: row.url.to_lowercase(),
                    url: row.url.clone(),
                    user: row.user.clone(),
                    backlog: row.backlog,
                    in_flight: row.in_flight,
                    waiting: row.waiting,
                    failures: row.failures,
                    last_failure: row.last_failure.clone(),
                    next_retry_at: row.next_retry_at,
                    next_probe_at: row.next_probe_at,
                    instance: Some(board.instance.clone()),
                };
                active.insert(id, (board.at, row));
            }
        }
        // Paused and disabled webhooks without an actor.
        let disabled: HashSet<WebhookId> = census.disabled.iter().copied().collect();
        let resting: Vec<WebhookId> = census
            .paused
            .iter()
            .filter(|id| !disabled.contains(id))
            .chain(&census.disabled)
            .filter(|id| !active.contains_key(id))
            .copied()
            .collect();
        let active_count = active.len() as u64;
        let mut rows: Vec<Row> = active.into_values().map(|(_, row)| row).collect();
        if resting_rows.version != census.version || census.version.is_none() {
            *resting_rows = Resting {
                version: census.version,
                rows: HashMap::new(),
            };
        }
        let unread: Vec<WebhookId> = resting
            .iter()
            .filter(|id| !resting_rows.rows.contains_key(id))
            .copied()
            .collect();
        for line in overview.lines(&unread).await?.into_iter().flatten() {
            let url = line.url.redacted();
            let row = Row {
                id: line.id,
                state: if disabled.contains(&line.id) || !line.enabled {
                    HealthState::Disabled
                } else {
                    HealthState::Paused
                },
                url_lower: url.to_lowercase(),
                url,
                user: line.user.map(|user| user.to_string()),
                backlog: 0,
                in_flight: 0,
                waiting: 0,
                failures: 0,
                last_failure: None,
                next_retry_at: None,
                next_probe_at: None,
                instance: None,
            };
            resting_rows.rows.insert(line.id, row);
        }
        let backlogs = overview.backlogs(&resting).await?;
        for (id, backlog) in resting.iter().zip(backlogs) {
            // A webhook without a record (deleted meanwhile) has no row.
            if let Some(row) = resting_rows.rows.get(id) {
                rows.push(Row { backlog, ..row.clone() });
            }
        }

        // Drop webhooks deleted since a board was written; note where the rest sit in the index.
        let ids: Vec<WebhookId> = rows.iter().map(|row| row.id).collect();
        let positions = overview.ranks(&ids).await?;
        let mut ranks = Vec::with_capacity(rows.len());
        let mut kept = Vec::with_capacity(rows.len());
        for (row, rank) in rows.into_iter().zip(positions) {
            if let Some(rank) = rank {
                ranks.push(rank);
                kept.push(row);
            }
        }
        ranks.sort_unstable();
        kept.sort_by_cached_key(Row::order);

        let count = |state: HealthState| kept.iter().filter(|row| row.state == state).count() as u64;
        let idle_state = if boards.is_empty() {
            HealthState::Unknown
        } else {
            HealthState::Healthy
        };
        let mut states = StateCounts {
            failing: count(HealthState::Failing),
            retrying: count(HealthState::Retrying),
            paused: count(HealthState::Paused),
            disabled: count(HealthState::Disabled),
            healthy: count(HealthState::Healthy),
            unknown: count(HealthState::Unknown),
        };
        let idle = census.webhooks.saturating_sub(kept.len() as u64);
        match idle_state {
            HealthState::Unknown => states.unknown += idle,
            _ => states.healthy += idle,
        }
        let summary = Summary {
            events_in_per_s: events_in,
            deliveries_per_s: round(boards.iter().map(|b| b.delivered_per_s).sum()),
            failures_per_s: round(boards.iter().map(|b| b.failed_per_s).sum()),
            backlog: kept.iter().map(|row| row.backlog).sum(),
            open_circuits: states.failing,
            paused: states.paused,
            disabled: states.disabled,
            instances: boards.len() as u64,
            redis: "up".into(),
            reader_lag: census.lag,
            webhooks: census.webhooks,
            active: active_count,
            states,
        };
        Ok(Snapshot {
            special: kept.iter().map(|row| row.id).collect(),
            rows: kept,
            ranks,
            summary,
            idle_state,
        })
    }
}

/// The live instances sharing this prefix, by name, from membership (their heartbeats); the
/// boards are read for those names. Only delivering instances write a board, and a board
/// expires within `BOARD_TTL` (3 s) of its last write, so the boards found are the instances delivering
/// now.
pub async fn live_instances(store: &Store, lease_ttl: std::time::Duration) -> StoreResult<Vec<String>> {
    let live = store.instances(lease_ttl).live().await?;
    Ok(live.into_iter().map(|m| m.name).collect())
}
