//! The board writer: twice a second, what this instance's delivery actors look like, written
//! to Redis for the dashboard of whichever instance serves it (`P:board:<instance>`, see
//! `store::boards`).
//!
//! It asks every running actor (the supervisor's [`ActorDirectory`]) for a [`Glance`] from
//! memory, reads all their queue lengths in one pipeline, and writes one compact JSON board
//! that expires after [`BOARD_TTL`] unless written again. Webhooks without an actor are idle
//! and not on any board: they cost the board nothing. An actor that does not answer within
//! [`ASK_WITHIN`] keeps its previous row. On a graceful stop the board is withdrawn at once.
//!
//! Cost: one message and one `XLEN` per running actor per half second, and a board of 200 to
//! 350 bytes per running actor; measured, about 8 µs of CPU per actor per tick (16 ms a second
//! for 1,000 running actors).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::future::join_all;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::delivery::{GetGlance, Glance, HealthState, LastFailure};
use super::supervisor::ActorDirectory;
use crate::clock::now_ms;
use crate::domain::{InstanceName, Webhook, WebhookId};
use crate::store::Store;

/// How often the board is written.
pub const BOARD_EVERY: Duration = Duration::from_millis(500);
/// A board not written again within this long expires: its instance stopped or died.
pub const BOARD_TTL: Duration = Duration::from_secs(3);
/// How long an actor has to answer before its previous row is used again.
const ASK_WITHIN: Duration = Duration::from_millis(300);

/// One instance's board.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Board {
    pub instance: String,
    /// When it was made (ms since the epoch).
    pub at: u64,
    /// Attempts per second over the last 10 to 20 seconds, summed over its actors.
    pub delivered_per_s: f64,
    pub failed_per_s: f64,
    /// One per running delivery actor.
    pub rows: Vec<BoardRow>,
}

/// One running delivery actor's webhook, as the dashboard sorts and filters it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BoardRow {
    pub id: String,
    pub state: HealthState,
    /// Redacted (`WebhookUrl::redacted`): boards are read by every dashboard.
    pub url: String,
    pub user: Option<String>,
    pub backlog: u64,
    pub in_flight: usize,
    pub waiting: u64,
    /// Failures in a row the circuit counted.
    pub failures: u32,
    /// The latest failure, while retrying or failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<LastFailure>,
    /// When the next retry is due (ms), while retrying.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_retry_at: Option<u64>,
    /// When the next probe goes (ms), while failing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_probe_at: Option<u64>,
}

/// A board as written: the same shape as [`Board`], borrowing the rows.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct BoardOut<'a> {
    instance: &'a str,
    at: u64,
    delivered_per_s: f64,
    failed_per_s: f64,
    rows: Vec<&'a BoardRow>,
}

/// Starts writing this instance's board, until `stopping` turns true.
pub fn start(store: Store, instance: InstanceName, actors: ActorDirectory, stopping: watch::Receiver<bool>) {
    let writer = BoardWriter {
        store,
        instance: instance.to_string(),
        actors,
        rows: HashMap::new(),
        tick: 0,
        size: 0,
    };
    actix_rt::spawn(writer.run(stopping));
}

/// A running actor's row, with the webhook record it was made from.
struct Kept {
    webhook: Arc<Webhook>,
    row: BoardRow,
    /// The last tick that saw the actor running.
    tick: u64,
}

struct BoardWriter {
    store: Store,
    instance: String,
    actors: ActorDirectory,
    /// The rows of the last board, updated in place: a row's id, URL and user are made again
    /// only when its webhook record changes; an actor that does not answer keeps its row.
    rows: HashMap<WebhookId, Kept>,
    tick: u64,
    /// The last board's size, to allocate the next one at once.
    size: usize,
}

impl BoardWriter {
    async fn run(mut self, mut stopping: watch::Receiver<bool>) {
        let mut tick = actix_rt::time::interval(BOARD_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.write().await,
                _ = stopping.wait_for(|stop| *stop) => break,
            }
        }
        if let Err(error) = self.store.boards().withdraw(&self.instance).await {
            tracing::debug!(%error, "could not withdraw the board");
        }
    }

    async fn write(&mut self) {
        self.tick += 1;
        let running: Vec<_> = self
            .actors
            .iter()
            .map(|entry| (*entry.key(), entry.value().addr.clone()))
            .collect();
        let asks = running.iter().map(|(_, addr)| addr.send(GetGlance).timeout(ASK_WITHIN));
        let glances = join_all(asks).await;
        let ids: Vec<WebhookId> = running.iter().map(|(id, _)| *id).collect();
        let backlogs = match self.store.overview().backlogs(&ids).await {
            Ok(backlogs) => backlogs,
            Err(error) => return tracing::debug!(%error, "could not read backlogs for the board"),
        };
        let (mut delivered_per_s, mut failed_per_s) = (0.0, 0.0);
        for ((id, glance), backlog) in ids.iter().zip(glances).zip(backlogs) {
            match glance {
                Ok(glance) => {
                    delivered_per_s += glance.per_second.0;
                    failed_per_s += glance.per_second.1;
                    self.update(glance, backlog);
                }
                // Too busy to answer: its previous row, with the backlog read now (an actor
                // too busy for its first question is left out this time).
                Err(_) => {
                    if let Some(kept) = self.rows.get_mut(id) {
                        kept.row.backlog = backlog;
                        kept.tick = self.tick;
                    }
                }
            }
        }
        let tick = self.tick;
        self.rows.retain(|_, kept| kept.tick == tick);
        let board = BoardOut {
            instance: &self.instance,
            at: now_ms(),
            delivered_per_s,
            failed_per_s,
            rows: self.rows.values().map(|kept| &kept.row).collect(),
        };
        let mut json = Vec::with_capacity(self.size + 1024);
        if serde_json::to_writer(&mut json, &board).is_err() {
            return;
        }
        self.size = json.len();
        if let Err(error) = self.store.boards().publish(&self.instance, &json, BOARD_TTL).await {
            tracing::debug!(%error, "could not write the board");
        }
    }

    fn update(&mut self, glance: Glance, backlog: u64) {
        let tick = self.tick;
        let kept = match self.rows.get_mut(&glance.webhook.id) {
            Some(kept) if Arc::ptr_eq(&kept.webhook, &glance.webhook) => kept,
            _ => {
                let webhook = glance.webhook.clone();
                let row = BoardRow {
                    id: webhook.id.to_string(),
                    state: glance.state,
                    url: webhook.url.redacted(),
                    user: webhook.user.as_ref().map(ToString::to_string),
                    backlog,
                    in_flight: 0,
                    waiting: 0,
                    failures: 0,
                    last_failure: None,
                    next_retry_at: None,
                    next_probe_at: None,
                };
                let kept = Kept { webhook, row, tick };
                self.rows.entry(glance.webhook.id).insert_entry(kept).into_mut()
            }
        };
        kept.tick = tick;
        let row = &mut kept.row;
        row.state = glance.state;
        row.backlog = backlog;
        row.in_flight = glance.in_flight;
        row.waiting = glance.waiting;
        row.failures = glance.consecutive_failures;
        row.last_failure = glance.last_failure;
        row.next_retry_at = glance.next_retry_ms;
        row.next_probe_at = glance.next_probe_ms;
    }
}
