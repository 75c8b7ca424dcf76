//! A webhook subscription and the id of one delivery to it.

use std::fmt;
use std::sync::Arc;

use super::{DeliveryOptions, EventType, Signer, StreamId, TypePattern, UserId, WebhookId, WebhookSecret, WebhookUrl};

/// A subscription: where to POST, which event types, and whose events.
#[derive(Debug, Clone, PartialEq)]
pub struct Webhook {
    pub id: WebhookId,
    pub url: WebhookUrl,
    /// 1–32 patterns; an event matching any of them is delivered.
    pub types: Vec<TypePattern>,
    /// None = global: every user's events (and events without a user).
    pub user: Option<UserId>,
    /// ms since epoch.
    pub created_ms: u64,
    /// false after a 410 Gone or a `PUT {"enabled": false}`; nothing new is queued for it.
    pub enabled: bool,
    /// Why it was disabled, when it was.
    pub disabled_reason: Option<String>,
    /// Paused by an operator: events keep being queued, nothing is delivered.
    pub paused: bool,
    /// Signs every delivery.
    pub secret: WebhookSecret,
    /// The secret before the last rotation, still signing deliveries until it expires.
    pub previous_secret: Option<PreviousSecret>,
    /// Its rate limit and ordering.
    pub delivery: DeliveryOptions,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PreviousSecret {
    pub secret: WebhookSecret,
    /// ms since epoch.
    pub expires_ms: u64,
}

impl Webhook {
    /// Signers for this webhook's deliveries (see [`Signers::signature`]).
    pub fn signers(&self) -> Signers {
        Signers {
            current: self.secret.signer(),
            previous: self.previous_secret.as_ref().map(|p| (p.secret.signer(), p.expires_ms)),
        }
    }

    /// Whether an event of this type, belonging to `user`, goes to this webhook. The routing
    /// index answers the same question for all webhooks at once; this is its reference.
    pub fn receives(&self, ev: &EventType, user: Option<&UserId>, userless: UserlessEvents) -> bool {
        let scoped_in = match (&self.user, user) {
            (None, _) => true,
            (Some(mine), Some(theirs)) => mine == theirs,
            (Some(_), None) => userless == UserlessEvents::ToEveryWebhook,
        };
        scoped_in && self.types.iter().any(|pattern| pattern.matches(ev))
    }
}

/// Which webhooks get an event that has no `user` (`[routing] userless_to_user_webhooks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum UserlessEvents {
    /// Global webhooks only: a user webhook gets its user's events and nothing else.
    #[default]
    ToGlobalWebhooks,
    /// Every webhook whose patterns match, user webhooks too, as WildDuck's own worker does
    /// (its query only has a user clause when the event has a user).
    ToEveryWebhook,
}

impl UserlessEvents {
    /// From the `[routing] userless_to_user_webhooks` setting.
    pub fn from_setting(userless_to_user_webhooks: bool) -> UserlessEvents {
        if userless_to_user_webhooks {
            UserlessEvents::ToEveryWebhook
        } else {
            UserlessEvents::ToGlobalWebhooks
        }
    }
}

/// The keyed signers of a webhook's current and previous secrets, kept by its delivery actor.
#[derive(Clone)]
pub struct Signers {
    current: Signer,
    /// With the time (ms) its rotation grace period ends.
    previous: Option<(Signer, u64)>,
}

impl Signers {
    /// The `webhook-signature` header for a delivery: the current secret's signature, and the
    /// previous one's while its rotation grace period lasts (space-separated, as the Standard
    /// Webhooks spec allows).
    pub fn signature(&self, id: &str, timestamp: u64, body: &[u8], now_ms: u64) -> String {
        let mut header = self.current.sign(id, timestamp, body);
        if let Some((previous, _)) = self.previous.as_ref().filter(|(_, expires)| *expires > now_ms) {
            header.push(' ');
            header.push_str(&previous.sign(id, timestamp, body));
        }
        header
    }
}

/// Identifies one (event, webhook) pair: `<webhook id>:<event stream id>`. The same on every
/// retry and redelivery, so receivers can deduplicate on it; it contains no `.`, so it can sit
/// in a Standard Webhooks signature input.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct DeliveryId(Arc<str>);

impl DeliveryId {
    pub fn new(webhook: &WebhookId, event: StreamId) -> DeliveryId {
        DeliveryId(Arc::from(format!("{webhook}:{event}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for DeliveryId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DeliveryId({})", self.0)
    }
}
