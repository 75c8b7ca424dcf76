//! A delivery attempt as the attempt log keeps it: one compact JSON field per attempt, so
//! logging one costs Redis one short `XADD`.

use crate::domain::{DeliveryId, EventType, InstanceName};

/// How an attempt ended, as the attempt log says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AttemptOutcome {
    Delivered,
    /// Failed; it will be retried.
    Failed,
    /// Failed for the last time; now a dead letter.
    Dead,
    /// 410 Gone; the webhook was disabled.
    Gone,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Delivered => "delivered",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Dead => "dead",
            AttemptOutcome::Gone => "gone",
        }
    }
}

/// One delivery attempt, as the attempt log keeps it.
#[derive(Debug, Clone)]
pub struct AttemptRecord {
    pub time_ms: u64,
    pub delivery_id: DeliveryId,
    pub ev: EventType,
    /// 1 for the first attempt.
    pub attempt: u32,
    pub outcome: AttemptOutcome,
    pub status: Option<u16>,
    pub latency_ms: u64,
    pub error: Option<String>,
    /// The first KiB of the response body.
    pub response: bytes::Bytes,
    /// The instance that made it.
    pub instance: InstanceName,
}

impl AttemptRecord {
    /// The record as the attempt log's one field `a` holds it (compact JSON), so logging an
    /// attempt costs Redis one short XADD.
    pub(super) fn encode(&self) -> Vec<u8> {
        let stored = StoredAttempt {
            t: self.time_ms,
            id: self.delivery_id.as_str().into(),
            ev: self.ev.as_str().into(),
            n: self.attempt,
            o: self.outcome.as_str().into(),
            s: self.status,
            l: self.latency_ms,
            e: self.error.as_deref().map(Into::into),
            r: String::from_utf8_lossy(&self.response),
            i: Some(self.instance.as_str().into()),
        };
        serde_json::to_vec(&stored).unwrap_or_default()
    }
}

/// An attempt as the attempt log stores it (short keys: there are up to `attempts.max_len` of
/// these per webhook).
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct StoredAttempt<'a> {
    /// Time (ms).
    pub t: u64,
    /// Delivery id.
    pub id: std::borrow::Cow<'a, str>,
    pub ev: std::borrow::Cow<'a, str>,
    /// Attempt number.
    pub n: u32,
    /// Outcome.
    pub o: std::borrow::Cow<'a, str>,
    /// HTTP status.
    pub s: Option<u16>,
    /// Latency (ms).
    pub l: u64,
    /// Error.
    pub e: Option<std::borrow::Cow<'a, str>>,
    /// The first KiB of the response.
    pub r: std::borrow::Cow<'a, str>,
    /// The instance that made the attempt (absent in records written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub i: Option<std::borrow::Cow<'a, str>>,
}
