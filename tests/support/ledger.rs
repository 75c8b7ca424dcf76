//! The chaos soak's ledger: every event it published (and whether the service accepted it),
//! every webhook it made with each version of its subscription and when that version was in
//! force, and the checks that compare them with what the receiver got and the dead letters.
//!
//! Times are the soak's own clock, taken around each call: an event's *window* runs from just
//! before its publish to its acknowledgement (for a BullMQ job, open-ended: the source moves
//! it later), a version's from the change's answer to the next change's request. An event
//! whose window lies inside a version's was certainly routed under it; any version that had
//! not ended before the window began may have been the one it was routed under (routing waits
//! for the reader, which a Redis restart or a killed instance holds up).

use std::collections::{HashMap, HashSet};
use std::time::Instant;

/// How an event reached the service.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Channel {
    Stream,
    Http,
    Bullmq,
}

#[derive(Clone, Debug)]
pub struct Published {
    pub n: u64,
    pub ev: String,
    pub user: Option<String>,
    pub channel: Channel,
    pub start: Instant,
    /// When its publish was acknowledged (None: a BullMQ job, routed whenever the source moves it).
    pub end: Option<Instant>,
    /// The service (or Redis, or BullMQ) acknowledged it; otherwise it may or may not exist.
    pub accepted: bool,
}

/// One version of a webhook's subscription and when it was in force.
#[derive(Clone, Debug)]
pub struct Version {
    pub types: Vec<String>,
    pub user: Option<String>,
    pub from: Instant,
    /// When the next change (or the deletion) was asked for.
    pub until: Option<Instant>,
}

/// What the soak does to a webhook, which decides what is checked of it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// Fixed subscription, never deleted: every matching accepted event is delivered or a dead letter.
    Stable,
    /// Created, changed and deleted while events flow.
    Churn,
    /// Its receiver answers 410 for a while: disabled, then re-enabled once fixed.
    Gone,
}

#[derive(Clone, Debug)]
pub struct Tracked {
    pub id: String,
    pub kind: Kind,
    pub versions: Vec<Version>,
    pub deleted: bool,
    /// A change whose answer was lost: what it did is not known, so nothing strict is checked.
    pub uncertain: bool,
}

impl Tracked {
    pub fn new(id: String, kind: Kind, types: Vec<String>, user: Option<String>, from: Instant) -> Tracked {
        Tracked {
            id,
            kind,
            versions: vec![Version {
                types,
                user,
                from,
                until: None,
            }],
            deleted: false,
            uncertain: false,
        }
    }

    /// A change was asked for at `asked`; `then` is the new version, answered at its `from`.
    pub fn changed(&mut self, asked: Instant, then: Option<Version>) {
        if let Some(current) = self.versions.last_mut() {
            current.until.get_or_insert(asked);
        }
        match then {
            Some(version) => self.versions.push(version),
            None => self.deleted = true,
        }
    }

    pub fn current(&self) -> &Version {
        self.versions.last().expect("a webhook has a version")
    }
}

/// README's matching rules: `*`, `a.*` (a prefix, any depth, not `a` itself), exact names; a
/// webhook with a user gets only that user's events, a global one every event.
pub fn matches(version: &Version, ev: &str, user: Option<&str>) -> bool {
    if version.user.as_deref().is_some_and(|scope| Some(scope) != user) {
        return false;
    }
    version.types.iter().any(|pattern| match pattern.strip_suffix('*') {
        Some("") => true,
        Some(prefix) => ev.starts_with(prefix) && ev.len() > prefix.len(),
        None => pattern == ev,
    })
}

fn inside(event: &Published, version: &Version) -> bool {
    let ended_in_time = match event.end {
        Some(end) => version.until.is_none_or(|until| end <= until),
        None => false,
    };
    event.start >= version.from && ended_in_time
}

/// Whether the event could have been routed while `version` was in force: an event is routed
/// when the reader gets to it, which may be long after it was published (a Redis restart, the
/// reading instance killed), so any version that had not ended before the publish began. (The
/// 30-min soaks of stop 29 met deliveries routed with a version that began after the publish
/// ended.)
fn overlaps(event: &Published, version: &Version) -> bool {
    version.until.is_none_or(|until| event.start <= until)
}

/// What the checks found: figures, and what broke (empty when everything holds).
#[derive(Debug, Default)]
pub struct Verdict {
    pub owed: usize,
    pub delivered: usize,
    pub dead: usize,
    pub duplicates: usize,
    pub broken: Vec<String>,
}

/// Compares the ledger with the outcome. `delivered`: (webhook, n) → 2xx answers;
/// `dead`: (webhook, n) → the dead letter's error.
pub fn check(
    events: &[Published],
    webhooks: &[Tracked],
    delivered: &HashMap<(String, u64), u32>,
    dead: &HashMap<(String, u64), String>,
) -> Verdict {
    let mut verdict = Verdict {
        delivered: delivered.len(),
        dead: dead.len(),
        duplicates: delivered.values().map(|n| (*n as usize).saturating_sub(1)).sum(),
        ..Verdict::default()
    };
    let by_n: HashMap<u64, &Published> = events.iter().map(|e| (e.n, e)).collect();
    let tracked: HashMap<&str, &Tracked> = webhooks.iter().map(|w| (w.id.as_str(), w)).collect();
    // Owed: every accepted event certainly routed under a version it matches, to a webhook
    // that is still there, enabled and certain.
    for webhook in webhooks
        .iter()
        .filter(|w| !w.deleted && !w.uncertain && w.kind != Kind::Gone)
    {
        for event in events.iter().filter(|e| e.accepted) {
            let owed = webhook
                .versions
                .iter()
                .any(|v| matches(v, &event.ev, event.user.as_deref()) && inside(event, v));
            if !owed {
                continue;
            }
            verdict.owed += 1;
            let pair = (webhook.id.clone(), event.n);
            if !delivered.contains_key(&pair) && !dead.contains_key(&pair) {
                verdict.broken.push(format!(
                    "event {} ({} {:?}, {:?}) never reached {:?} webhook {}",
                    event.n, event.ev, event.user, event.channel, webhook.kind, webhook.id
                ));
            }
        }
    }
    // Nothing is delivered that the webhook could not have matched.
    for (webhook, n) in delivered.keys().chain(dead.keys()) {
        let (Some(event), Some(tracked)) = (by_n.get(n), tracked.get(webhook.as_str())) else {
            continue;
        };
        let possible = tracked
            .versions
            .iter()
            .any(|v| matches(v, &event.ev, event.user.as_deref()) && overlaps(event, v));
        if !possible && !tracked.uncertain {
            verdict.broken.push(format!(
                "event {n} ({} {:?}) went to webhook {webhook}, which never subscribed to it",
                event.ev, event.user
            ));
        }
    }
    for ((webhook, n), error) in dead {
        if error.is_empty() {
            verdict
                .broken
                .push(format!("the dead letter of event {n} for {webhook} has no reason"));
        }
    }
    verdict
}

/// The webhook ids seen in deliveries that the ledger does not know (made by a create whose
/// answer was lost, for instance).
pub fn strangers(webhooks: &[Tracked], delivered: &HashMap<(String, u64), u32>) -> HashSet<String> {
    let known: HashSet<&str> = webhooks.iter().map(|w| w.id.as_str()).collect();
    delivered
        .keys()
        .map(|(webhook, _)| webhook.clone())
        .filter(|webhook| !known.contains(webhook.as_str()))
        .collect()
}
