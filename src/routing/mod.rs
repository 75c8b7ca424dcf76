//! Which webhooks an event goes to.
//!
//! [`RouteIndex`] answers "who gets an event of type T for user U" with a handful of hash
//! lookups (`*`, each `a.*` prefix of T, T itself; globally and for U), so the cost per event
//! depends on the event's depth and on the webhooks that match, never on those that don't.

mod index;

pub use index::RouteIndex;
