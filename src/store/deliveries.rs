//! The state of each delivery of one retained event (`GET /events/{id}`), read from the
//! webhooks it went to only: the retained entry names them and its queue entry in each.
//!
//! For each, one pipeline reads: whether the webhook still exists, whether its queue still holds
//! the entry and with what retry state, and the attempts and dead letters written since the
//! event was routed (both are capped streams, read from the routing time on, at most
//! [`SCAN`] entries each). The state follows from them:
//!
//! | found | state |
//! |---|---|
//! | the queue entry, without retry state | `queued` (or being sent) |
//! | the queue entry, with retry state | `retrying`: waiting for its next attempt (`nextAttempt`) |
//! | a dead letter with its delivery id | `dead` |
//! | otherwise, its last attempt: delivered / failed / dead or gone | `delivered` / `retrying` (a replayed copy waits) / `dead` |
//! | no attempt left in the log | `delivered`: it left the queue and is not a dead letter, which only a delivery does (or a purge of dead letters) |
//! | no webhook | `webhookDeleted` |

use super::RedisConn;
use redis::Value;
use serde::Serialize;
use utoipa::ToSchema;

use super::attempts::StoredAttempt;
use super::reply::entries;
use super::retained::RetainedEvent;
use super::{AttemptView, Keys, StoreError, StoreResult};
use crate::clock::iso8601;
use crate::domain::DeliveryId;

/// Entries of the attempt log and of the dead letters read per delivery, from the routing time
/// on: bounds what one look-up costs whatever the history holds.
const SCAN: usize = 1_000;
/// Deliveries one look-up shows (a broadcast's first ones; `deliveries` says how many there are).
pub const MAX_SHOWN: usize = 100;

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub enum DeliveryState {
    Queued,
    Retrying,
    Delivered,
    Dead,
    WebhookDeleted,
}

/// One delivery of an event: to one webhook.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryView {
    pub webhook: String,
    /// The delivery id (`webhook-id` header): the same for every attempt and every replay.
    pub id: String,
    pub state: DeliveryState,
    /// When a `retrying` delivery is tried next (ISO 8601), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt: Option<String>,
    /// Its attempts still in the attempt log, oldest first.
    pub attempts: Vec<AttemptView>,
}

pub(super) async fn states(conn: &RedisConn, keys: &Keys, kept: &RetainedEvent) -> StoreResult<Vec<DeliveryView>> {
    let shown = &kept.went[..kept.went.len().min(MAX_SHOWN)];
    if shown.is_empty() {
        return Ok(Vec::new());
    }
    let mut pipe = redis::pipe();
    let since = kept.retained.ms.to_string();
    for (webhook, queued) in shown {
        let queued = queued.to_string();
        pipe.cmd("EXISTS").arg(keys.webhook(webhook));
        pipe.cmd("XRANGE").arg(keys.queue(webhook)).arg(&queued).arg(&queued);
        pipe.cmd("HGET").arg(keys.retry(webhook)).arg(&queued);
        pipe.cmd("XRANGE")
            .arg(keys.attempts(webhook))
            .arg(&since)
            .arg("+")
            .arg("COUNT")
            .arg(SCAN);
        pipe.cmd("XRANGE")
            .arg(keys.dead(webhook))
            .arg(&since)
            .arg("+")
            .arg("COUNT")
            .arg(SCAN);
    }
    let mut conn = conn.clone();
    let replies: Vec<Value> = pipe.query_async(&mut conn).await?;
    shown
        .iter()
        .zip(replies.chunks(5))
        .map(|((webhook, _), reply)| {
            let id = DeliveryId::new(webhook, kept.event);
            let [exists, queued, retry, attempts, dead] = reply else {
                return Err(StoreError::Corrupt(format!("delivery look-up answered {reply:?}")));
            };
            let attempts: Vec<AttemptView> = entries(attempts)
                .map_err(StoreError::Corrupt)?
                .iter()
                .flat_map(|entry| entry.fields_named("a").map(<[u8]>::to_vec).collect::<Vec<_>>())
                .filter_map(|a| serde_json::from_slice::<StoredAttempt>(&a).ok().map(AttemptView::from))
                .filter(|a| a.id == id.as_str())
                .collect();
            let dead = entries(dead)
                .map_err(StoreError::Corrupt)?
                .iter()
                .any(|letter| letter.field("id") == Some(id.as_str().as_bytes()));
            let queued = !entries(queued).map_err(StoreError::Corrupt)?.is_empty();
            let retry = match retry {
                Value::BulkString(state) => std::str::from_utf8(state).ok().map(str::to_string),
                _ => None,
            };
            let (state, next_attempt) = match (matches!(exists, Value::Int(1)), queued, retry, dead) {
                (false, ..) => (DeliveryState::WebhookDeleted, None),
                (true, true, Some(retry), _) => {
                    // `tries:due_ms:first_failed_ms[:spared]` (queues.rs, retry_state).
                    let due = retry.split(':').nth(1).and_then(|due| due.parse().ok()).map(iso8601);
                    (DeliveryState::Retrying, due)
                }
                (true, true, None, _) => (DeliveryState::Queued, None),
                (true, false, _, true) => (DeliveryState::Dead, None),
                (true, false, _, false) => (
                    match attempts.last().map(|a| a.outcome.as_str()) {
                        Some("failed") => DeliveryState::Retrying,
                        Some("dead" | "gone") => DeliveryState::Dead,
                        _ => DeliveryState::Delivered,
                    },
                    None,
                ),
            };
            Ok(DeliveryView {
                webhook: webhook.to_string(),
                id: id.as_str().to_string(),
                state,
                next_attempt,
                attempts,
            })
        })
        .collect()
}
