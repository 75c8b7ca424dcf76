//! Keeping track of which webhook changes the supervisor has applied.
//!
//! Every change increments `P:webhooks:version` and publishes `<id>:<version>`. The supervisor
//! notes each version it applied; the periodic check compares the counter in Redis with the
//! highest version applied without gaps:
//!
//! * equal: up to date, nothing to do (one GET per check);
//! * higher: notifications may still be on their way; if it is still behind at the next check,
//!   one was lost: reload everything;
//! * lower or missing while changes were applied: Redis lost its data (restarted without
//!   persistence).

use std::collections::BTreeSet;

#[derive(Debug, Default)]
pub struct VersionTracker {
    /// Every version up to this one is applied.
    applied: u64,
    /// Versions applied above `applied` (a gap below them is still outstanding).
    ahead: BTreeSet<u64>,
    /// The counter seen ahead of `applied` at the previous check.
    behind: Option<u64>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    UpToDate,
    /// A notification was lost: reload every webhook.
    Reload,
    /// Redis lost the webhooks: restore them (if configured), then reload.
    DataLost,
}

impl VersionTracker {
    /// A full load that read `version` before loading.
    pub fn loaded(&mut self, version: u64) {
        self.applied = version;
        self.ahead.retain(|v| *v > version);
        self.behind = None;
        self.advance();
    }

    /// Every version up to this one is applied (what the fan-out checks against).
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// One change applied.
    pub fn saw(&mut self, version: u64) {
        if version > self.applied {
            self.ahead.insert(version);
            self.advance();
        }
    }

    fn advance(&mut self) {
        while self.ahead.remove(&(self.applied + 1)) {
            self.applied += 1;
        }
    }

    /// Whether the change that produced `version` was applied already (the API on this
    /// instance applies its changes before the same change arrives through pub/sub).
    pub fn has_applied(&self, version: u64) -> bool {
        version <= self.applied || self.ahead.contains(&version)
    }

    /// Compares with the counter in Redis.
    pub fn check(&mut self, redis: Option<u64>) -> Verdict {
        let current = redis.unwrap_or(0);
        if current < self.applied {
            return Verdict::DataLost;
        }
        if current == self.applied {
            self.behind = None;
            return Verdict::UpToDate;
        }
        match self.behind {
            Some(seen) if self.applied < seen => Verdict::Reload,
            _ => {
                self.behind = Some(current);
                Verdict::UpToDate
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_in_any_order_bring_it_up_to_date() {
        let mut versions = VersionTracker::default();
        versions.loaded(10);
        versions.saw(12);
        assert_eq!(versions.check(Some(12)), Verdict::UpToDate, "11 may still arrive");
        versions.saw(11);
        assert_eq!(versions.check(Some(12)), Verdict::UpToDate);
        versions.saw(9); // old news
        assert_eq!(versions.check(Some(12)), Verdict::UpToDate);
        assert!(versions.has_applied(12) && versions.has_applied(3) && !versions.has_applied(13));
    }

    #[test]
    fn a_lost_notification_means_a_reload_at_the_second_check() {
        let mut versions = VersionTracker::default();
        versions.loaded(10);
        versions.saw(12);
        assert_eq!(versions.check(Some(12)), Verdict::UpToDate);
        assert_eq!(versions.check(Some(12)), Verdict::Reload, "11 never came");
        versions.loaded(12);
        assert_eq!(versions.check(Some(12)), Verdict::UpToDate);
    }

    #[test]
    fn a_counter_going_back_means_redis_lost_its_data() {
        let mut versions = VersionTracker::default();
        versions.loaded(5);
        assert_eq!(versions.check(None), Verdict::DataLost);
        assert_eq!(versions.check(Some(2)), Verdict::DataLost);
        let mut fresh = VersionTracker::default();
        assert_eq!(fresh.check(None), Verdict::UpToDate);
    }
}
