//! The delivery actor's self-check: nothing it holds waits without a reason.
//!
//! Every `[invariants] check_ms` (first at a random offset, so a thousand actors do not check
//! at once) a running actor that may deliver asserts what must always hold:
//!
//! 1. **In memory** (free): work it knows of — entries to read (`!caught_up`), retries waiting
//!    — has something under way (an attempt, an outcome being written, a read, a Redis call
//!    to be tried again) or a timer set for it (the retry timer, the probe timer, the top-up
//!    or flush timer).
//! 2. **Against Redis** (one bounded, read-only script, `store::audit`), when the actor had no
//!    Redis call of its own under way and changed nothing while it ran:
//!    - the due set holds nothing the actor does not know of: its earliest entry is not
//!      earlier than the actor's `next_due` (else the one retry timer is set too late, or not
//!      at all);
//!    - the cursor passed no entry without reading it: each of the queue's first entries up to
//!      the cursor is in memory (being sent or written) or has retry state and waits in the
//!      due set. One without retry state was *stranded*; one with retry state that is neither
//!      in the due set nor in memory was *dropped*.
//!
//!    A Redis finding counts only when the next check finds the same: a change on its way to
//!    the actor (a retry-now, a work notice) is not a violation. Nor is anything found across
//!    a Redis lapse (`store::redis_lapses`): Redis may have come back without writes it had
//!    acknowledged, and the actor starts over instead (`resync`).
//!
//! A violation is a bug. It is logged with the actor's state, counted
//! (`hookrouter_invariant_violations_total{invariant}`) and repaired: the actor learns the due
//! set again, re-reads from a stranded entry, puts a dropped one back, or refills its window.
//! With `[invariants] abort_on_violation` the process aborts instead, so tests and soaks cannot
//! miss one.
//!
//! Two findings are not bugs, only repaired and counted (`hookrouter_audit_repairs_total`):
//! entries after the cursor while the actor believes it is caught up (another instance queued
//! them and its work notice was lost: pub/sub does not keep messages), and a lease that is no
//! longer this actor's (its instance was paused past the lease's life; the actor stops, as a
//! refused write would make it).

use std::time::Duration;

use actix::prelude::*;

use super::DeliveryActor;
use crate::clock::now_ms;
use crate::domain::StreamId;
use crate::store::AuditView;

/// The queue's first entries a check looks at.
const HEAD: usize = 32;
/// How much earlier than the actor's `next_due` the set's earliest entry may be (scores are
/// floats in Redis).
const DUE_SLACK_MS: u64 = 5;

/// What the checks remember between runs.
#[derive(Debug, Default)]
pub(super) struct Audit {
    /// A check is reading Redis.
    reading: bool,
    /// What the last Redis check found wrong: a violation if the next finds it again.
    suspect: Option<Finding>,
    /// Bumped by every `fill` (which follows every change): a Redis read compares only if no
    /// change happened while it ran.
    changes: u64,
}

impl Audit {
    /// The actor's state may have changed.
    pub fn touch(&mut self) {
        self.changes = self.changes.wrapping_add(1);
    }
}

/// Something a check found wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Finding {
    /// Work waits with nothing under way or scheduled for it.
    Idle(&'static str),
    /// The due set's earliest entry (due at this ms) is earlier than the actor knows.
    DueUnknown(u64),
    /// A queue entry before the cursor was never read.
    Stranded(StreamId),
    /// A queue entry with retry state is neither in the due set nor in memory.
    Dropped(StreamId),
}

impl Finding {
    fn invariant(&self) -> &'static str {
        match self {
            Finding::Idle(_) => "work_waits_unscheduled",
            Finding::DueUnknown(_) => "due_set_unknown",
            Finding::Stranded(_) => "entry_passed_unread",
            Finding::Dropped(_) => "retry_lost_track",
        }
    }
}

impl DeliveryActor {
    /// Starts the checks (from `started`).
    pub(super) fn start_audits(&mut self, ctx: &mut Context<Self>) {
        let every = Duration::from_millis(self.config.invariants.check_ms);
        let first = Duration::from_millis(rand::random_range(0..=self.config.invariants.check_ms));
        ctx.run_later(first, move |act, ctx| {
            act.audit(ctx);
            ctx.run_interval(every, |act, ctx| act.audit(ctx));
        });
    }

    /// Something is under way that will call `fill` when it ends: an attempt, a write, a
    /// read, a Redis call to be tried again.
    fn under_way(&self) -> bool {
        !self.window.is_empty() || self.writes > 0 || self.fetching || self.retries.reading() || self.redis_retries > 0
    }

    /// A timer is set that will call `fill` when it fires, or the host will hand over a permit.
    fn scheduled(&self) -> bool {
        self.retries.timer_armed()
            || self.circuit.probe_timer.is_some()
            || self.top_up_timer.is_some()
            || self.flush_timer.is_some()
            || self.pace_timer.is_some()
            || self.host_wait
    }

    /// The in-memory invariants: outcomes waiting to be written have a flush coming; known
    /// work has something under way or scheduled.
    fn idle_with_work(&self) -> Option<Finding> {
        if !self.settled.is_empty() && self.flush_timer.is_none() && self.redis_retries == 0 {
            return Some(Finding::Idle("outcomes waiting to be written, and no flush coming"));
        }
        if !self.active() || self.under_way() || !self.settled.is_empty() || self.scheduled() {
            return None;
        }
        if !self.caught_up {
            Some(Finding::Idle("entries to read, and nothing reading them"))
        } else if self.retries.waiting > 0 {
            Some(Finding::Idle("retries waiting, and no timer for them"))
        } else {
            None
        }
    }

    /// One check: in memory at once, then against Redis.
    fn audit(&mut self, ctx: &mut Context<Self>) {
        if self.resync_after_lapse(ctx) {
            // What it believed is gone; the next check looks at what it learns now.
            self.audit.suspect = None;
            return self.fill(ctx);
        }
        if let Some(finding) = self.idle_with_work() {
            return self.violated(finding, ctx);
        }
        if !self.active() || self.under_way() || self.audit.reading {
            return;
        }
        self.audit.reading = true;
        let (queue, webhook, cursor) = (self.queue.clone(), self.webhook.id, self.cursor);
        let (before, lapses) = (self.audit.changes, crate::store::redis_lapses());
        let read = async move { queue.audit(&webhook, cursor, HEAD).await };
        ctx.spawn(read.into_actor(self).map(move |result, act, ctx| {
            act.audit.reading = false;
            // Only a view of a still moment compares: anything the actor did meanwhile may have
            // changed Redis or its own state after the read, and a Redis that went away meanwhile
            // may hold less than the actor learnt (the next fill starts over).
            let still = act.audit.changes == before && crate::store::redis_lapses() == lapses;
            match result {
                Ok(view) if act.active() && !act.under_way() && still => act.compare(view, ctx),
                Ok(_) => {}
                Err(error) => tracing::debug!(webhook = %act.webhook.id, %error, "self-check could not read Redis"),
            }
        }));
    }

    /// Compares what Redis holds with what the actor believes.
    fn compare(&mut self, view: AuditView, ctx: &mut Context<Self>) {
        if view.lease.as_deref() != Some(self.lease.as_str()) {
            repaired("lease_not_held");
            return self.lease_lost(ctx);
        }
        if let (Some(after), true) = (view.after_cursor, self.caught_up) {
            repaired("unannounced_entries");
            tracing::info!(webhook = %self.webhook.id, %after, "entries queued without a notice; reading them");
            self.fell_behind(ctx);
        }
        let finding = self.redis_finding(&view);
        if finding.is_some() && finding == self.audit.suspect {
            self.audit.suspect = None;
            if let Some(finding) = finding {
                self.violated(finding, ctx);
            }
        } else {
            self.audit.suspect = finding;
        }
    }

    fn redis_finding(&self, view: &AuditView) -> Option<Finding> {
        if let Some(earliest) = view.earliest_due_ms.filter(|_| view.waiting > 0) {
            let known = self.retries.next_due.filter(|_| self.retries.waiting > 0);
            if known.is_none_or(|due| earliest + DUE_SLACK_MS < due) {
                return Some(Finding::DueUnknown(earliest));
            }
        }
        view.head
            .iter()
            .filter(|head| !self.taken(&head.entry))
            .find_map(|head| match (head.tried, head.due) {
                (false, _) => Some(Finding::Stranded(head.entry)),
                (true, false) => Some(Finding::Dropped(head.entry)),
                (true, true) => None,
            })
    }

    /// A violation: logged with the state, counted, then repaired (or the process aborts).
    fn violated(&mut self, finding: Finding, ctx: &mut Context<Self>) {
        let invariant = finding.invariant();
        metrics::counter!(crate::metrics::INVARIANT_VIOLATIONS, "invariant" => invariant).increment(1);
        tracing::error!(
            webhook = %self.webhook.id,
            invariant,
            finding = ?finding,
            state = %self.describe(),
            "invariant violated; repairing"
        );
        if self.config.invariants.abort_on_violation {
            eprintln!(
                "hookrouter: invariant {invariant} violated for webhook {} ({finding:?}): {}; aborting",
                self.webhook.id,
                self.describe()
            );
            std::process::abort();
        }
        match finding {
            Finding::Idle(_) => {
                if !self.window.values().any(|slot| slot.probe) {
                    self.circuit.probe_returned();
                }
                if self.retries.waiting > 0 && self.retries.next_due.is_none() {
                    self.retries.next_due = Some(now_ms());
                }
            }
            Finding::DueUnknown(earliest) => {
                self.retries.waiting = self.retries.waiting.max(1);
                self.retries.next_due = Some(self.retries.next_due.map_or(earliest, |due| due.min(earliest)));
            }
            Finding::Stranded(entry) => {
                self.rewind(entry);
                self.caught_up = false;
            }
            Finding::Dropped(entry) => self.put_back(vec![entry], ctx),
        }
        self.fill(ctx);
    }

    /// The actor's state in one line, for a violation's log.
    fn describe(&self) -> String {
        format!(
            "state={:?} cursor={:?} caught_up={} fetching={} window={} settled={} writing={} writes={} \
             redis_retries={} waiting={} next_due={:?} retries_ready={} retries_reading={} retry_timer={} \
             circuit_open={} failures={} probe_ready={} probe_timer={} top_up_timer={} flush_timer={} \
             pace_timer={} host_wait={} host_permits={} limit={} now={} trail=[{}]",
            self.state(),
            self.cursor.map(|c| c.to_string()),
            self.caught_up,
            self.fetching,
            self.window.len(),
            self.settled.len(),
            self.writing.len(),
            self.writes,
            self.redis_retries,
            self.retries.waiting,
            self.retries.next_due,
            self.retries.ready,
            self.retries.reading(),
            self.retries.timer_armed(),
            self.circuit.open,
            self.circuit.failures,
            self.circuit.probe_ready,
            self.circuit.probe_timer.is_some(),
            self.top_up_timer.is_some(),
            self.flush_timer.is_some(),
            self.pace_timer.is_some(),
            self.host_wait,
            self.host.held(),
            self.pacing.limit(),
            now_ms(),
            self.trail,
        )
    }
}

fn repaired(what: &'static str) {
    metrics::counter!(crate::metrics::AUDIT_REPAIRS, "what" => what).increment(1);
}
