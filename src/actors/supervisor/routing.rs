//! Routing a batch of the event stream: match each event against the routing index, queue
//! it for every matched webhook and acknowledge the batch in one fan-out script, then hand the
//! queued entries to their delivery actors in memory.
//!
//! Webhooks another instance owns get no actor here: their owners are told through the
//! change channel (`Notice::Work`, one message per batch) to read their queues.
//!
//! A batch whose events matched many webhooks is written in several scripts, each of at most
//! `[events] max_writes_per_script` queue appends, in stream order (an event that matched more
//! webhooks is written in parts, each a script of its own, resumable: see `fanout.lua`): Redis runs one script at a time and everyone else
//! sharing it (the mail server) waits meanwhile. Each script acknowledges its own events, so a
//! batch cut short by a refusal or an error leaves only the unwritten rest pending, and the
//! reader's next read takes that.
//!
//! If the script fails, it may still have committed (its reply was lost to a timeout or a
//! dropped connection): the batch is then acknowledged and queued, and the reader's retry finds
//! nothing pending. So every webhook the batch was meant for is told to look at its queue.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::Arc;

use actix::prelude::*;

use super::Supervisor;
use crate::actors::delivery::{Enqueued, StartState};
use crate::domain::{Event, PreparedEvent, StreamId, WebhookId};
use crate::store::{Appended, Fanout, FanoutBatch, FanoutRouter, StoreError};

/// Events of a batch that matched, each with the webhooks it matched.
type Routed = Vec<(Arc<PreparedEvent>, Vec<WebhookId>)>;

/// One fan-out script's share of a batch: what it writes, and who gets what afterwards.
#[derive(Default)]
struct Chunk {
    batch: FanoutBatch,
    routed: Routed,
}

/// How the fan-out of a batch went: the chunks written, then why the rest was not (None when
/// all were).
struct Written {
    queued: Vec<(Vec<Option<Appended>>, Routed)>,
    stopped: Option<Stop>,
}

/// Why a chunk was not written (the chunks after it were not tried).
enum Stop {
    Stale,
    Claimed,
    /// It may have committed all the same: its targets look at their queues.
    Failed(StoreError, Routed),
}

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

/// Route and acknowledge a batch read by `consumer`. Answers how many deliveries were queued.
#[derive(Message)]
#[rtype(result = "Result<usize, RouteFailure>")]
pub struct RouteBatch {
    pub entries: Vec<ReadEntry>,
    pub consumer: Arc<str>,
}

/// Why a batch was not routed; its entries stay pending, and the reader reads them again.
#[derive(Debug)]
pub enum RouteFailure {
    /// A webhook changed on another instance since the index was built: the changes are
    /// applied now; route the batch again at once.
    Stale,
    /// Anything else (Redis unreachable, webhooks not loaded yet): try again after a pause.
    Failed(String),
}

impl std::fmt::Display for RouteFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RouteFailure::Stale => f.write_str("webhooks changed on another instance; synced, routing again"),
            RouteFailure::Failed(why) => f.write_str(why),
        }
    }
}

impl Supervisor {
    /// Matches a batch: what each fan-out script must do (in stream order, at most
    /// `max_writes_per_script` appends each), and who gets what afterwards.
    fn route(&mut self, entries: Vec<ReadEntry>) -> Vec<Chunk> {
        let mut chunks = Vec::new();
        let mut chunk = Chunk::default();
        let mut targets = Vec::new();
        for entry in entries {
            match entry {
                ReadEntry::Valid(id, event) => {
                    self.index.route(&event.ev, event.user.as_ref(), &mut targets);
                    let most = self.max_writes_per_script;
                    let prepared = Arc::new(event.prepare(id));
                    if targets.len() > most {
                        // Too wide for one script: in parts, each a script of its own.
                        if !chunk.batch.is_empty() {
                            chunks.push(std::mem::take(&mut chunk));
                        }
                        let parts = targets.len().div_ceil(most);
                        for (n, part) in targets.chunks(most).enumerate() {
                            chunks.push(Chunk {
                                batch: FanoutBatch::part(&prepared, event.user.as_ref(), part, n + 1 == parts),
                                routed: vec![(prepared.clone(), part.to_vec())],
                            });
                        }
                        continue;
                    }
                    if chunk.batch.pairs() > 0 && chunk.batch.pairs() + targets.len() > most {
                        chunks.push(std::mem::take(&mut chunk));
                    }
                    chunk.batch.event(&prepared, event.user.as_ref(), &targets);
                    if !targets.is_empty() {
                        chunk.routed.push((prepared, targets.clone()));
                    }
                }
                ReadEntry::Rejected { id, reason, raw } => chunk.batch.reject(id, &reason, &raw),
                ReadEntry::Gone(id) => chunk.batch.ack(id),
            }
        }
        if !chunk.batch.is_empty() || chunks.is_empty() {
            chunks.push(chunk);
        }
        chunks
    }

    /// The fan-out failed, perhaps after committing: every target looks at its queue.
    fn recheck_targets(&mut self, routed: &Routed, ctx: &mut Context<Self>) {
        let mut targets: Vec<WebhookId> = routed.iter().flat_map(|(_, targets)| targets.iter().copied()).collect();
        targets.sort_unstable();
        targets.dedup();
        // The lost batch's entries were appended after everything this instance handed over.
        self.nudge(targets.into_iter().map(|target| (target, None)).collect(), true, ctx);
    }
}

impl Handler<RouteBatch> for Supervisor {
    type Result = AtomicResponse<Self, Result<usize, RouteFailure>>;

    fn handle(&mut self, RouteBatch { entries, consumer }: RouteBatch, _: &mut Context<Self>) -> Self::Result {
        if !self.ready {
            let not_yet = Err(RouteFailure::Failed("webhooks are not loaded yet".into()));
            return AtomicResponse::new(Box::pin(fut::ready(not_yet)));
        }
        let chunks = self.route(entries);
        let events = self.store.events();
        let (keeping, version) = (self.keeping, self.versions.applied());
        let write = async move {
            let router = FanoutRouter {
                version,
                consumer: &consumer,
            };
            let mut written = Written {
                queued: Vec::new(),
                stopped: None,
            };
            for Chunk { batch, routed } in chunks {
                written.stopped = match events.fanout(&batch, keeping, &router).await {
                    Ok(Fanout::Queued(queued)) => {
                        written.queued.push((queued, routed));
                        continue;
                    }
                    Ok(Fanout::Stale) => Some(Stop::Stale),
                    Ok(Fanout::Claimed) => Some(Stop::Claimed),
                    Err(error) => Some(Stop::Failed(error, routed)),
                };
                break;
            }
            written
        };
        AtomicResponse::new(Box::pin(write.into_actor(self).then(move |written, act, ctx| {
            // What was written is handed over whatever happened to the rest.
            let mut count = 0;
            for (queued, routed) in written.queued {
                count += act.hand_over_queued(queued, routed, ctx);
            }
            let done = match written.stopped {
                None => Ok(count),
                Some(Stop::Stale) => {
                    // Still inside this handler: the rest is routed again with the changes applied.
                    let synced = act.sync_changes().map(|_, _, _| Err(RouteFailure::Stale));
                    return Box::pin(synced) as Pin<Box<dyn ActorFuture<Self, Output = _>>>;
                }
                Some(Stop::Claimed) => {
                    tracing::info!("another instance reclaimed this batch while this one was held up; it routes it");
                    Ok(count)
                }
                Some(Stop::Failed(error, routed)) => {
                    act.recheck_targets(&routed, ctx);
                    Err(RouteFailure::Failed(error.to_string()))
                }
            };
            Box::pin(fut::ready(done))
        })))
    }
}

impl Supervisor {
    /// After a fan-out: hands each queued entry to its actor (one message per actor per batch:
    /// a cross-thread wake-up per actor, not per event), starts owned webhooks' actors, tells
    /// the owners of the others. Returns how many deliveries were queued.
    fn hand_over_queued(&mut self, queued: Vec<Option<Appended>>, routed: Routed, ctx: &mut Context<Self>) -> usize {
        let mut entries = queued.into_iter();
        let mut count = 0;
        let mut handed: HashMap<WebhookId, Vec<(Appended, Arc<PreparedEvent>)>> = HashMap::new();
        for (event, targets) in routed {
            for target in targets {
                let Some(appended) = entries.next().flatten() else {
                    continue;
                };
                count += 1;
                handed.entry(target).or_default().push((appended, event.clone()));
            }
        }
        let mut elsewhere = Vec::new();
        for (target, entries) in handed {
            if !self.roster.is_running(&target) {
                if !self.ownership.owns(&target) {
                    elsewhere.push((target, entries.first().map(|(appended, _)| appended.entry)));
                    continue;
                }
                // Idle until now: its actor reads the queue from the start (which holds these
                // entries, and anything queued before).
                if let Some(webhook) = self.webhooks.get(&target).cloned() {
                    self.activate(&webhook, StartState::queued(), ctx);
                }
            }
            self.roster.send(&target, Enqueued(entries));
        }
        self.tell_owners(elsewhere, ctx);
        count
    }
}
