//! What a delivery actor holds in memory: its window of slots, one per delivery, each sending,
//! waiting for its retry or parked while the circuit is open.

use std::collections::BTreeMap;

use actix::SpawnHandle;

use crate::domain::{DeliveryId, StreamId};
use crate::store::QueuedDelivery;

/// Where a delivery in the window stands.
pub(super) enum Phase {
    Sending,
    /// Waiting for its retry: when it is due (ms) and the timer.
    Waiting {
        due: u64,
        timer: SpawnHandle,
    },
    /// Held while the circuit is open (the probe timer decides what goes next).
    Parked,
}

/// A delivery held in memory.
pub(super) struct Slot {
    pub delivery: QueuedDelivery,
    pub id: DeliveryId,
    pub phase: Phase,
}

/// The deliveries an actor holds in memory, by queue entry id. Every insertion and removal
/// moves the process-wide in-flight gauge, so the gauge cannot drift from the windows.
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

    pub fn get_mut(&mut self, entry: &StreamId) -> Option<&mut Slot> {
        self.slots.get_mut(entry)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut Slot> {
        self.slots.values_mut()
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
