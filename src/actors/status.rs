//! What a reading actor (the queue reader, the BullMQ source) is doing, shared with `/health`:
//! the actor writes its state, the API's threads read it without a message round trip, so a
//! reader busy with a batch still answers health at once.

use std::marker::PhantomData;
use std::sync::atomic::{AtomicU8, Ordering};

/// A state an actor publishes: a `#[repr(u8)]` enum whose discriminants index [`State::ALL`],
/// the first (0) being where it starts.
pub trait State: Copy + 'static {
    /// Every state, in discriminant order.
    const ALL: &'static [Self];
    fn code(self) -> u8;
}

/// The latest state an actor published.
#[derive(Debug)]
pub struct Status<S> {
    code: AtomicU8,
    kind: PhantomData<S>,
}

impl<S> Default for Status<S> {
    fn default() -> Self {
        Status {
            code: AtomicU8::new(0),
            kind: PhantomData,
        }
    }
}

impl<S: State> Status<S> {
    pub fn state(&self) -> S {
        let code = usize::from(self.code.load(Ordering::Relaxed));
        S::ALL.get(code).copied().unwrap_or(S::ALL[0])
    }

    pub(super) fn set(&self, state: S) {
        self.code.store(state.code(), Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::actors::bullmq_source::SourceState;
    use crate::actors::queue_reader::ReaderState;

    /// Each state reads back as itself (`ALL` is in discriminant order), and a new status
    /// reads as the first.
    fn round_trips<S: State + PartialEq + std::fmt::Debug>() {
        let status = Status::<S>::default();
        assert_eq!(status.state(), S::ALL[0]);
        for &state in S::ALL {
            status.set(state);
            assert_eq!(status.state(), state);
        }
    }

    #[test]
    fn every_state_reads_back_as_itself() {
        round_trips::<ReaderState>();
        round_trips::<SourceState>();
    }
}
