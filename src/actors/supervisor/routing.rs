//! Routing a batch of the event stream: match each event against the routing index, queue
//! it for every matched webhook and acknowledge the batch in one fan-out script, then hand the
//! queued entries to their delivery actors in memory.
//!
//! If the script fails, it may still have committed (its reply was lost to a timeout or a
//! dropped connection): the batch is then acknowledged and queued, and the reader's retry finds
//! nothing pending. So every webhook the batch was meant for is told to look at its queue.

use std::collections::HashMap;
use std::sync::Arc;

use actix::prelude::*;

use super::Supervisor;
use crate::actors::delivery::{CheckQueue, Enqueued, StartState};
use crate::domain::{Event, PreparedEvent, StreamId, WebhookId};
use crate::store::FanoutBatch;

/// Events of a batch that matched, each with the webhooks it matched.
type Routed = Vec<(Arc<PreparedEvent>, Vec<WebhookId>)>;

/// One entry of a batch read from the event stream, as the reader classified it.
pub enum ReadEntry {
    Valid(StreamId, Event),
    Rejected {
        id: StreamId,
        reason: String,
        raw: Vec<u8>,
    },
    /// Deleted while pending: acknowledge it, nothing else.
    Gone(StreamId),
}

/// Route and acknowledge a batch. Answers how many deliveries were queued.
#[derive(Message)]
#[rtype(result = "Result<usize, String>")]
pub struct RouteBatch(pub Vec<ReadEntry>);

impl Supervisor {
    /// Matches a batch: what the fan-out script must do, and who gets what afterwards.
    fn route(&mut self, entries: Vec<ReadEntry>) -> (FanoutBatch, Routed) {
        let mut batch = FanoutBatch::default();
        let mut routed = Vec::new();
        let mut targets = Vec::new();
        for entry in entries {
            match entry {
                ReadEntry::Valid(id, event) => {
                    self.index.route(&event.ev, event.user.as_ref(), &mut targets);
                    let prepared = Arc::new(event.prepare(id));
                    batch.event(&prepared, &targets);
                    if !targets.is_empty() {
                        routed.push((prepared, targets.clone()));
                    }
                }
                ReadEntry::Rejected { id, reason, raw } => batch.reject(id, &reason, &raw),
                ReadEntry::Gone(id) => batch.ack(id),
            }
        }
        (batch, routed)
    }

    /// The fan-out failed, perhaps after committing: every target looks at its queue.
    fn recheck_targets(&mut self, routed: &Routed, ctx: &mut Context<Self>) {
        let mut targets: Vec<WebhookId> = routed.iter().flat_map(|(_, targets)| targets.iter().copied()).collect();
        targets.sort_unstable();
        targets.dedup();
        for target in targets {
            if !self.roster.send(&target, CheckQueue) {
                if let Some(webhook) = self.webhooks.get(&target).cloned() {
                    self.activate(&webhook, StartState::queued(), ctx);
                }
            }
        }
    }
}

impl Handler<RouteBatch> for Supervisor {
    type Result = AtomicResponse<Self, Result<usize, String>>;

    fn handle(&mut self, RouteBatch(entries): RouteBatch, _: &mut Context<Self>) -> Self::Result {
        if !self.ready {
            return AtomicResponse::new(Box::pin(fut::ready(Err("webhooks are not loaded yet".to_string()))));
        }
        let (batch, routed) = self.route(entries);
        let events = self.store.events();
        let rejected_max_len = self.rejected_max_len;
        let write = async move { events.fanout(&batch, rejected_max_len).await };
        AtomicResponse::new(Box::pin(write.into_actor(self).map(move |result, act, ctx| {
            let queued = match result {
                Ok(queued) => queued,
                Err(error) => {
                    act.recheck_targets(&routed, ctx);
                    return Err(error.to_string());
                }
            };
            let mut entries = queued.into_iter();
            let mut count = 0;
            // One message per actor per batch: a cross-thread wake-up per actor, not per event.
            let mut handed: HashMap<WebhookId, Vec<(StreamId, Arc<PreparedEvent>)>> = HashMap::new();
            for (event, targets) in routed {
                for target in targets {
                    let Some(entry) = entries.next().flatten() else {
                        continue;
                    };
                    count += 1;
                    handed.entry(target).or_default().push((entry, event.clone()));
                }
            }
            for (target, entries) in handed {
                if !act.roster.is_running(&target) {
                    // Idle until now: its actor reads the queue from the start (which holds
                    // these entries, and anything queued before).
                    if let Some(webhook) = act.webhooks.get(&target).cloned() {
                        act.activate(&webhook, StartState::queued(), ctx);
                    }
                }
                act.roster.send(&target, Enqueued(entries));
            }
            Ok(count)
        })))
    }
}
