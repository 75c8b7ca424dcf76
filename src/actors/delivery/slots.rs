//! What a delivery actor holds in memory: its window of deliveries being sent, at most
//! `max_in_flight`. Entries waiting for a retry are not here: they wait in Redis (the due set).

use std::collections::BTreeMap;
use std::time::Instant;

use crate::domain::{DeliveryId, StreamId};
use crate::store::QueuedDelivery;

/// A delivery being sent.
pub(super) struct Slot {
    pub delivery: QueuedDelivery,
    pub id: DeliveryId,
    /// When the attempt began: the circuit counts its failure only if it began after the last
    /// counted one was seen.
    pub started: Instant,
    /// It is the probe of an open circuit.
    pub probe: bool,
}

/// The deliveries being sent, by queue entry id. Every insertion and removal moves the
/// process-wide in-flight gauge, so the gauge cannot drift from the windows.
pub(super) struct Window {
    slots: BTreeMap<StreamId, Slot>,
    gauge: metrics::Gauge,
}

impl Window {
    pub fn new() -> Window {
        Window {
            slots: BTreeMap::new(),
            gauge: metrics::gauge!(crate::metrics::IN_FLIGHT),
        }
    }

    pub fn insert(&mut self, entry: StreamId, slot: Slot) {
        if self.slots.insert(entry, slot).is_none() {
            self.gauge.increment(1.0);
        }
    }

    pub fn remove(&mut self, entry: &StreamId) -> Option<Slot> {
        let slot = self.slots.remove(entry);
        if slot.is_some() {
            self.gauge.decrement(1.0);
        }
        slot
    }
}

impl std::ops::Deref for Window {
    type Target = BTreeMap<StreamId, Slot>;

    fn deref(&self) -> &Self::Target {
        &self.slots
    }
}

impl Drop for Window {
    fn drop(&mut self) {
        self.gauge.decrement(self.slots.len() as f64);
    }
}
