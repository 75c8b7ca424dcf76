//! Which webhooks this instance delivers.
//!
//! Every webhook is owned by exactly one live delivering instance, chosen by *rendezvous
//! hashing*: each instance scores the pair (instance name, webhook id) with a fixed hash, and
//! the highest score owns the webhook. Every instance computes the same owner from the same
//! list of live instances, with no coordination, and when an instance joins or leaves only
//! the webhooks it wins or held move — about 1/N of them — never a reshuffle of the rest.
//!
//! The list comes from membership (`actors::membership`). Views can differ for a moment while
//! an instance joins or dies; leases (`store::leases`) make that safe: an instance delivers a
//! webhook only while it holds the webhook's lease, which one instance at a time can.

use crate::domain::{InstanceName, WebhookId};

#[derive(Debug, Clone)]
pub struct Ownership {
    me: InstanceName,
    /// The live delivering instances, sorted (this one included while it delivers).
    members: Vec<InstanceName>,
}

impl Ownership {
    /// Before anything is known of the others: this instance alone.
    pub fn new(me: InstanceName) -> Ownership {
        Ownership {
            members: vec![me.clone()],
            me,
        }
    }

    pub fn me(&self) -> &InstanceName {
        &self.me
    }

    pub fn members(&self) -> &[InstanceName] {
        &self.members
    }

    /// Takes a new list of live delivering instances; whether it differs.
    pub fn update(&mut self, mut members: Vec<InstanceName>) -> bool {
        members.sort();
        members.dedup();
        let changed = members != self.members;
        self.members = members;
        changed
    }

    /// The instance that delivers `webhook`, if any delivers at all.
    pub fn owner(&self, webhook: &WebhookId) -> Option<&InstanceName> {
        owner_among(&self.members, webhook)
    }

    pub fn owns(&self, webhook: &WebhookId) -> bool {
        self.owner(webhook) == Some(&self.me)
    }
}

/// The owner of `webhook` among `members` (rendezvous hashing).
pub fn owner_among<'a>(members: &'a [InstanceName], webhook: &WebhookId) -> Option<&'a InstanceName> {
    members.iter().max_by_key(|member| score(member.as_str(), webhook))
}

/// A stable 64-bit score of (instance, webhook): FNV-1a over both, finished with the
/// splitmix64 mixer. Stable across builds and versions (unlike std's hasher), so instances
/// running different versions during a rolling upgrade agree on every owner.
fn score(instance: &str, webhook: &WebhookId) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let id = webhook.to_string();
    for byte in instance.bytes().chain([0xff]).chain(id.bytes()) {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(list: &[&str]) -> Vec<InstanceName> {
        list.iter().map(|n| InstanceName::parse(n).unwrap()).collect()
    }

    fn webhooks(n: usize) -> Vec<WebhookId> {
        (0..n).map(|_| WebhookId::generate()).collect()
    }

    #[test]
    fn every_webhook_has_one_owner_and_the_spread_is_even() {
        let members = names(&["mx1-0a1b", "mx2-9f00", "mx3-44c2"]);
        let ids = webhooks(30_000);
        let mut counts = [0usize; 3];
        for id in &ids {
            let owner = owner_among(&members, id).unwrap();
            counts[members.iter().position(|m| m == owner).unwrap()] += 1;
        }
        for count in counts {
            assert!((9_000..11_000).contains(&count), "{counts:?}");
        }
    }

    #[test]
    fn an_instance_leaving_or_joining_moves_only_its_share() {
        let three = names(&["mx1-0a1b", "mx2-9f00", "mx3-44c2"]);
        let two = names(&["mx1-0a1b", "mx3-44c2"]);
        let ids = webhooks(10_000);
        let mut moved = 0;
        for id in &ids {
            let before = owner_among(&three, id).unwrap();
            let after = owner_among(&two, id).unwrap();
            if before.as_str() != "mx2-9f00" {
                assert_eq!(before, after, "a webhook of a staying instance moved");
            } else {
                moved += 1;
            }
        }
        assert!((2_900..3_800).contains(&moved), "{moved} moved");
    }

    #[test]
    fn the_view_decides_what_this_instance_owns() {
        let me = InstanceName::parse("mx1-0a1b").unwrap();
        let mut ownership = Ownership::new(me.clone());
        let id = WebhookId::generate();
        assert!(ownership.owns(&id), "alone, it owns everything");
        assert!(ownership.update(names(&["mx2-9f00", "mx1-0a1b"])));
        assert!(
            !ownership.update(names(&["mx1-0a1b", "mx2-9f00"])),
            "order does not matter"
        );
        // Two instances with the same view: each webhook is exactly one's, half each.
        let mut other = Ownership::new(InstanceName::parse("mx2-9f00").unwrap());
        other.update(names(&["mx1-0a1b", "mx2-9f00"]));
        let ids = webhooks(1_000);
        let mine = ids.iter().filter(|id| ownership.owns(id)).count();
        assert!(
            ids.iter().all(|id| ownership.owns(id) != other.owns(id)),
            "one owner each"
        );
        assert!((400..600).contains(&mine), "{mine} of 1000");
        // A view without this instance owns nothing.
        assert!(ownership.update(names(&["mx2-9f00"])));
        assert!(!ids.iter().any(|id| ownership.owns(id)));
        assert!(ownership.update(Vec::new()));
        assert_eq!(ownership.owner(&id), None, "nobody delivers");
    }

    #[test]
    fn scores_are_stable_across_builds() {
        let id = WebhookId::parse("6b087e4a6618a35b31267fde").unwrap();
        // Pinned: changing the function would make instances of two versions disagree.
        assert_eq!(score("mx1-0a1b", &id), 11_408_230_364_318_759_637);
        assert_eq!(score("mx2-9f00", &id), 6_677_220_014_309_520_501);
    }
}
