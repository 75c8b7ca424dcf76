//! The delivery actor learns its queue again after Redis went away.
//!
//! What the actor remembers — the cursor (everything up to it was read), how far entries may
//! have been tried, how many retries wait — is true of the Redis it read. Redis may come back
//! without writes it had acknowledged: a replica promoted by Sentinel before it received the
//! last ones, or the last second of an `appendfsync everysec` file after a crash. A delivered
//! entry whose removal was lost is then in the queue again, behind the cursor, where no read
//! would find it (the self-check would: `entry_passed_unread`); a failure whose retry state was
//! lost is a fresh entry again. So after every lapse (`store::redis_lapses`: a connection lost
//! or refused, a server loading, a move to another primary) a running actor starts over as
//! an enabled or resumed one does: it reads its queue from the start, looking up retry state,
//! and learns its due set again. Entries it holds in memory are skipped when read again, so
//! this costs reads, not duplicates; what Redis lost is delivered again (at least once).

use actix::prelude::*;

use super::trail::Step;
use super::DeliveryActor;
use crate::store::redis_lapses;

impl DeliveryActor {
    /// Starts over if Redis went away since the actor last learnt its queue; whether it did.
    pub(super) fn resync_after_lapse(&mut self, ctx: &mut Context<Self>) -> bool {
        let lapses = redis_lapses();
        if lapses == self.lapses_seen {
            return false;
        }
        self.lapses_seen = lapses;
        if !self.active() {
            // Enabling or resuming starts over anyway; a starting actor has read nothing yet.
            return false;
        }
        self.trail.push(Step::Resync);
        self.start_over();
        if !self.retries.reading() {
            self.prepare_retries(ctx);
        }
        true
    }
}
