//! The routing index: webhooks by scope (global or per user), then by pattern.
//!
//! Routing an event costs a bounded number of steps however many webhooks exist and however
//! many patterns each lists (up to 256): a hash lookup per candidate pattern of the event
//! (`*`, each `a.*` prefix of its type, the type itself) in the global scope, and in its
//! user's scope either the same lookups or, for a user with few routes, a scan of at most
//! [`FEW_ROUTES`] of them.

use std::collections::HashMap;

use crate::domain::{EventType, TypePattern, UserId, UserlessEvents, Webhook, WebhookId};

/// Webhook ids by the patterns they listed, within one scope.
#[derive(Default)]
struct PatternIndex {
    /// `*`
    all: Vec<WebhookId>,
    /// `a.b.*`, keyed by `a.b.`
    prefixes: HashMap<Box<str>, Vec<WebhookId>>,
    exact: HashMap<Box<str>, Vec<WebhookId>>,
}

impl PatternIndex {
    fn bucket(&mut self, pattern: &TypePattern) -> &mut Vec<WebhookId> {
        match pattern {
            TypePattern::All => &mut self.all,
            TypePattern::Prefix(prefix) => self.prefixes.entry(prefix.as_str().into()).or_default(),
            TypePattern::Exact(exact) => self.exact.entry(exact.as_str().into()).or_default(),
        }
    }

    fn remove(&mut self, pattern: &TypePattern, id: &WebhookId) {
        let bucket = self.bucket(pattern);
        if let Some(at) = bucket.iter().position(|x| x == id) {
            bucket.swap_remove(at);
        }
        let emptied = bucket.is_empty();
        if emptied {
            match pattern {
                TypePattern::All => {}
                TypePattern::Prefix(prefix) => drop(self.prefixes.remove(prefix.as_str())),
                TypePattern::Exact(exact) => drop(self.exact.remove(exact.as_str())),
            }
        }
    }

    fn collect(&self, ev: &str, out: &mut Vec<WebhookId>) {
        out.extend_from_slice(&self.all);
        if let Some(ids) = self.exact.get(ev) {
            out.extend_from_slice(ids);
        }
        if self.prefixes.is_empty() {
            return;
        }
        for (i, byte) in ev.bytes().enumerate() {
            if byte == b'.' && i + 1 < ev.len() {
                if let Some(ids) = self.prefixes.get(&ev[..=i]) {
                    out.extend_from_slice(ids);
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.all.is_empty() && self.prefixes.is_empty() && self.exact.is_empty()
    }
}

/// A user's routes up to this many are a list checked in full (less memory than a hashed index,
/// and most users have a handful); past it they are hashed by pattern like the global ones.
pub const FEW_ROUTES: usize = 32;

/// One user's routes: `(pattern, webhook)` pairs.
enum UserScope {
    /// At most [`FEW_ROUTES`] routes, checked one by one.
    Few(Vec<(TypePattern, WebhookId)>),
    /// More, hashed by pattern (it stays hashed if it shrinks again).
    Many(PatternIndex),
}

impl UserScope {
    fn add(&mut self, pattern: &TypePattern, id: WebhookId) {
        match self {
            UserScope::Few(routes) if routes.len() < FEW_ROUTES => routes.push((pattern.clone(), id)),
            UserScope::Few(routes) => {
                let mut index = PatternIndex::default();
                for (pattern, id) in routes.drain(..) {
                    index.bucket(&pattern).push(id);
                }
                index.bucket(pattern).push(id);
                *self = UserScope::Many(index);
            }
            UserScope::Many(index) => index.bucket(pattern).push(id),
        }
    }

    fn remove(&mut self, webhook: &Webhook) {
        match self {
            UserScope::Few(routes) => routes.retain(|(_, id)| *id != webhook.id),
            UserScope::Many(index) => webhook.types.iter().for_each(|p| index.remove(p, &webhook.id)),
        }
    }

    fn is_empty(&self) -> bool {
        match self {
            UserScope::Few(routes) => routes.is_empty(),
            UserScope::Many(index) => index.is_empty(),
        }
    }

    fn collect(&self, ev: &EventType, out: &mut Vec<WebhookId>) {
        match self {
            UserScope::Few(routes) => out.extend(
                routes
                    .iter()
                    .filter(|(pattern, _)| pattern.matches(ev))
                    .map(|(_, id)| *id),
            ),
            UserScope::Many(index) => index.collect(ev.as_str(), out),
        }
    }
}

/// Webhooks by scope. Global webhooks (which every event may reach, and which can be many) are
/// hashed by pattern; a user's webhooks (a handful per user, even with 100k users) are a
/// [`UserScope`]: a short list, hashed once it grows past [`FEW_ROUTES`].
///
/// With [`UserlessEvents::ToEveryWebhook`], events without a user also go to user webhooks;
/// those are then hashed by pattern a second time (`userless`), so such an event costs the same
/// few lookups as any other, not a scan of every user.
#[derive(Default)]
pub struct RouteIndex {
    global: PatternIndex,
    users: HashMap<UserId, UserScope>,
    /// Every user webhook by pattern, kept only when userless events go to them.
    userless: Option<PatternIndex>,
}

impl RouteIndex {
    /// An empty index that routes events without a user as `userless` says.
    pub fn new(userless: UserlessEvents) -> RouteIndex {
        RouteIndex {
            userless: (userless == UserlessEvents::ToEveryWebhook).then(PatternIndex::default),
            ..RouteIndex::default()
        }
    }

    /// Adds a webhook's routes (each distinct pattern once). Take it out with
    /// [`RouteIndex::remove`] and the same record before inserting a changed one.
    pub fn insert(&mut self, webhook: &Webhook) {
        for (i, pattern) in webhook.types.iter().enumerate() {
            if webhook.types[..i].contains(pattern) {
                continue;
            }
            match &webhook.user {
                None => self.global.bucket(pattern).push(webhook.id),
                Some(user) => {
                    self.users
                        .entry(user.clone())
                        .or_insert_with(|| UserScope::Few(Vec::new()))
                        .add(pattern, webhook.id);
                    if let Some(userless) = &mut self.userless {
                        userless.bucket(pattern).push(webhook.id);
                    }
                }
            }
        }
    }

    /// Takes out the routes `webhook` (as it was inserted) added.
    pub fn remove(&mut self, webhook: &Webhook) {
        match &webhook.user {
            None => webhook.types.iter().for_each(|p| self.global.remove(p, &webhook.id)),
            Some(user) => {
                if let Some(scope) = self.users.get_mut(user) {
                    scope.remove(webhook);
                    if scope.is_empty() {
                        self.users.remove(user);
                    }
                }
                if let Some(userless) = &mut self.userless {
                    webhook.types.iter().for_each(|p| userless.remove(p, &webhook.id));
                }
            }
        }
    }

    /// Appends to `out` (after clearing it) every webhook that gets an event of type `ev`
    /// belonging to `user`, each once, in id order.
    pub fn route(&self, ev: &EventType, user: Option<&UserId>, out: &mut Vec<WebhookId>) {
        out.clear();
        self.global.collect(ev.as_str(), out);
        match user {
            Some(user) => {
                if let Some(scope) = self.users.get(user) {
                    scope.collect(ev, out);
                }
            }
            None => {
                if let Some(userless) = &self.userless {
                    userless.collect(ev.as_str(), out);
                }
            }
        }
        out.sort_unstable();
        out.dedup();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{DeliveryOptions, WebhookUrl};

    fn webhook(types: &[&str], user: Option<&str>) -> Webhook {
        Webhook {
            id: WebhookId::generate(),
            url: WebhookUrl::parse("http://127.0.0.1/").unwrap(),
            types: types.iter().map(|t| TypePattern::parse(t).unwrap()).collect(),
            user: user.map(|u| UserId::parse(u).unwrap()),
            created_ms: 0,
            enabled: true,
            disabled_reason: None,
            paused: false,
            secret: crate::domain::WebhookSecret::generate(),
            previous_secret: None,
            delivery: DeliveryOptions::default(),
        }
    }

    fn route(index: &RouteIndex, ev: &str, user: Option<&str>) -> Vec<WebhookId> {
        let mut out = Vec::new();
        let user = user.map(|u| UserId::parse(u).unwrap());
        index.route(&EventType::parse(ev).unwrap(), user.as_ref(), &mut out);
        out
    }

    /// The index must agree with `Webhook::receives`, the reference, on every combination,
    /// under both rules for events without a user.
    #[test]
    fn agrees_with_the_reference_matcher() {
        for rule in [UserlessEvents::ToGlobalWebhooks, UserlessEvents::ToEveryWebhook] {
            agrees_with_the_reference_under(rule);
        }
    }

    fn agrees_with_the_reference_under(rule: UserlessEvents) {
        let webhooks = [
            webhook(&["*"], None),
            webhook(&["user.*"], None),
            webhook(&["user.delete.*", "marked.spam"], None),
            webhook(&["user.created", "user.*"], Some("u1")),
            webhook(&["*"], Some("u2")),
            webhook(&["forward added"], Some("u1")),
        ];
        let mut index = RouteIndex::new(rule);
        webhooks.iter().for_each(|w| index.insert(w));
        let events = [
            "user.created",
            "user.delete.started",
            "user",
            "marked.spam",
            "marked.ham",
            "forward added",
            "users.x",
        ];
        for ev in events {
            for user in [None, Some("u1"), Some("u2"), Some("u3")] {
                let user_id = user.map(|u| UserId::parse(u).unwrap());
                let event_type = EventType::parse(ev).unwrap();
                let mut expected: Vec<WebhookId> = webhooks
                    .iter()
                    .filter(|w| w.receives(&event_type, user_id.as_ref(), rule))
                    .map(|w| w.id)
                    .collect();
                expected.sort();
                assert_eq!(route(&index, ev, user), expected, "{ev} for {user:?} under {rule:?}");
            }
        }
    }

    /// A user with more routes than [`FEW_ROUTES`] is hashed, and still agrees with the
    /// reference, through growth and removal; 256 patterns (every WildDuck event and more) fit.
    #[test]
    fn a_user_with_many_patterns_is_hashed_and_routes_the_same() {
        let names: Vec<String> = (0..250).map(|n| format!("app{}.e{n}", n % 7)).collect();
        let mut many: Vec<&str> = names.iter().map(String::as_str).collect();
        many.extend([
            "user.*",
            "mailbox.created",
            "*",
            "app3.*",
            "forward added",
            "marked.spam",
        ]);
        assert_eq!(many.len(), 256);
        let webhooks = [
            webhook(&many, Some("u1")),
            webhook(&["user.created", "app1.*"], Some("u1")),
            webhook(&["app2.e2"], Some("u2")),
        ];
        let mut index = RouteIndex::new(UserlessEvents::ToGlobalWebhooks);
        index.insert(&webhooks[1]);
        assert!(matches!(index.users.values().next(), Some(UserScope::Few(_))));
        index.insert(&webhooks[0]);
        index.insert(&webhooks[2]);
        assert!(matches!(
            index.users.get(&UserId::parse("u1").unwrap()),
            Some(UserScope::Many(_))
        ));
        for ev in [
            "app1.e1",
            "app1.e8",
            "app3.e3",
            "user.created",
            "other",
            "app2.e2",
            "forward added",
        ] {
            for user in ["u1", "u2"] {
                let user_id = UserId::parse(user).unwrap();
                let event_type = EventType::parse(ev).unwrap();
                let mut expected: Vec<WebhookId> = webhooks
                    .iter()
                    .filter(|w| w.receives(&event_type, Some(&user_id), UserlessEvents::ToGlobalWebhooks))
                    .map(|w| w.id)
                    .collect();
                expected.sort();
                assert_eq!(route(&index, ev, Some(user)), expected, "{ev} for {user}");
            }
        }
        index.remove(&webhooks[0]);
        assert_eq!(route(&index, "app1.e1", Some("u1")), [webhooks[1].id]);
        index.remove(&webhooks[1]);
        index.remove(&webhooks[2]);
        assert!(index.users.is_empty(), "emptied scopes are dropped");
    }

    #[test]
    fn userless_events_reach_user_webhooks_only_when_asked() {
        let hook = webhook(&["address.*"], Some("u1"));
        for (rule, expected) in [
            (UserlessEvents::ToGlobalWebhooks, vec![]),
            (UserlessEvents::ToEveryWebhook, vec![hook.id]),
        ] {
            let mut index = RouteIndex::new(rule);
            index.insert(&hook);
            assert_eq!(route(&index, "address.forwarded.created", None), expected, "{rule:?}");
            assert_eq!(route(&index, "address.user.created", Some("u2")), [], "{rule:?}");
        }
    }

    #[test]
    fn remove_and_replace_leave_nothing_behind() {
        let mut index = RouteIndex::new(UserlessEvents::ToEveryWebhook);
        let mut hook = webhook(&["user.*", "mailbox.created", "user.*"], Some("u1"));
        index.insert(&hook);
        assert_eq!(route(&index, "user.created", Some("u1")), [hook.id]);
        index.remove(&hook);
        hook.user = None;
        hook.types = vec![TypePattern::parse("marked.spam").unwrap()];
        index.insert(&hook);
        assert!(route(&index, "user.created", Some("u1")).is_empty());
        assert_eq!(route(&index, "marked.spam", None), [hook.id]);
        index.remove(&hook);
        assert!(route(&index, "marked.spam", None).is_empty());
        assert!(index.users.is_empty() && index.global.is_empty());
        assert!(index.userless.as_ref().is_some_and(PatternIndex::is_empty));
    }
}
