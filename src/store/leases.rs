//! Webhook ownership leases: which instance delivers a webhook.
//!
//! `P:lease:<id>` holds the owner's lease value, `<instance>:<start ms>:<n>`, unique to one
//! acquisition (the start time tells a restarted instance with a configured name from its
//! predecessor), and expires `leases.ttl_ms` after its last renewal. Only a webhook with a
//! running delivery actor has a lease: the actor acquires it before it sends anything
//! ([`LeaseStore::acquire`], `SET NX`), its instance renews the leases of all its actors in
//! batches ([`LeaseStore::renew`]), and releases one when the actor stops.
//!
//! The value is also the *fencing token*: every script that acknowledges, deletes,
//! dead-letters or reports for a webhook (`settle.lua`, `retry_*.lua`, `health_save.lua`)
//! first checks that the lease still holds this value, and writes nothing otherwise
//! ([`super::StoreError::Fenced`]). An instance that lost a lease — paused past the TTL, cut
//! off by a partition — can therefore finish its HTTP requests but change nothing.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use super::RedisConn;
use redis::{Script, Value};

use super::{Keys, StoreResult};
use crate::domain::{InstanceName, WebhookId};

static RENEW: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/lease_renew.lua")));
/// Leases per renewal script: about 400 Redis calls, a fraction of a millisecond, in line with
/// the fan-out's bound of 250 appends per script, so renewing thousands of leases never holds
/// Redis for long in one piece.
const RENEW_CHUNK: usize = 200;

static RELEASE: LazyLock<Script> = LazyLock::new(|| Script::new(include_str!("scripts/lease_release.lua")));

/// One acquisition's lease value (the fencing token).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Lease(Arc<str>);

impl Lease {
    /// A value no other acquisition has, made without asking Redis.
    pub fn mint(instance: &InstanceName) -> Lease {
        static STARTED_MS: LazyLock<u64> = LazyLock::new(crate::clock::now_ms);
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
        Lease(Arc::from(format!("{instance}:{}:{n}", *STARTED_MS)))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The instance a stored lease value names.
    pub fn holder(value: &str) -> &str {
        value.split(':').next().unwrap_or_default()
    }
}

impl fmt::Display for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Lease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Lease({})", self.0)
    }
}

#[derive(Clone)]
pub struct LeaseStore {
    conn: RedisConn,
    keys: Keys,
    ttl: Duration,
}

impl LeaseStore {
    pub(super) fn new(conn: RedisConn, keys: Keys, ttl: Duration) -> LeaseStore {
        LeaseStore { conn, keys, ttl }
    }

    /// Takes the webhook's lease if nobody holds it; whether it did.
    pub async fn acquire(&self, webhook: &WebhookId, lease: &Lease) -> StoreResult<bool> {
        let mut conn = self.conn.clone();
        let set: Value = redis::cmd("SET")
            .arg(self.keys.lease(webhook))
            .arg(lease.as_str())
            .arg("NX")
            .arg("PX")
            .arg(self.ttl.as_millis() as u64)
            .query_async(&mut conn)
            .await?;
        Ok(!matches!(set, Value::Nil))
    }

    /// Extends the leases that still hold their value; returns those that do not (lost: they
    /// expired, or another instance holds them now). In chunks, so Redis answers others in
    /// between.
    pub async fn renew(&self, leases: &[(WebhookId, Lease)]) -> StoreResult<Vec<(WebhookId, Lease)>> {
        let mut lost = Vec::new();
        let mut conn = self.conn.clone();
        for chunk in leases.chunks(RENEW_CHUNK) {
            let mut invocation = RENEW.prepare_invoke();
            invocation.arg(self.ttl.as_millis() as u64);
            for (webhook, lease) in chunk {
                invocation.key(self.keys.lease(webhook)).arg(lease.as_str());
            }
            let kept: Vec<i64> = invocation.invoke_async(&mut conn).await?;
            lost.extend(
                chunk
                    .iter()
                    .zip(kept)
                    .filter(|(_, kept)| *kept == 0)
                    .map(|(held, _)| held.clone()),
            );
        }
        Ok(lost)
    }

    /// Gives the lease up, if it still holds this value (a stopping or handing-over actor).
    pub async fn release(&self, webhook: &WebhookId, lease: &Lease) -> StoreResult<()> {
        let mut conn = self.conn.clone();
        RELEASE
            .key(self.keys.lease(webhook))
            .arg(lease.as_str())
            .invoke_async::<i64>(&mut conn)
            .await?;
        Ok(())
    }

    /// The instance holding the webhook's lease, if any.
    pub async fn holder(&self, webhook: &WebhookId) -> StoreResult<Option<String>> {
        let mut conn = self.conn.clone();
        let value: Option<String> = redis::cmd("GET")
            .arg(self.keys.lease(webhook))
            .query_async(&mut conn)
            .await?;
        Ok(value.map(|v| Lease::holder(&v).to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_values_are_unique_and_name_their_instance() {
        let instance = InstanceName::parse("mx1-a1b2").unwrap();
        let (a, b) = (Lease::mint(&instance), Lease::mint(&instance));
        assert_ne!(a, b);
        assert!(a.as_str().starts_with("mx1-a1b2:"));
        assert_eq!(Lease::holder(a.as_str()), "mx1-a1b2");
    }
}
