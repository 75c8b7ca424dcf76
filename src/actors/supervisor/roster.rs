//! Which delivery actors run, with their leases, and the handshake that lets idle ones stop.
//!
//! A webhook has a delivery actor only while it has work: when the supervisor hands it events,
//! when its queue holds a backlog or a replay, or while its circuit has failures. An idle
//! webhook costs its record and its routing entries, not an actor (about 1.5 KB less each,
//! which is what keeps 100k mostly idle webhooks cheap), and holds no lease.
//!
//! Each actor is started with a freshly minted lease value, which it acquires before sending
//! anything; the roster keeps it to renew it and to release it when the actor stops
//! ([`Roster::leases`], [`Roster::hand_over`]). If the lease is refused or lost, the actor
//! says so ([`LeaseEnded`]) and stops.
//!
//! An actor being handed over to another instance leaves the roster at once (this instance
//! may start a new one if the webhook comes back), but its lease is renewed until it has
//! drained ([`Roster::stop_renewing`]): were it left to expire while attempts are still under way
//! (they may take the attempt timeout, as long as the lease's TTL by default), the new owner
//! would take the webhook and send them a second time.
//!
//! Stopping is a handshake, because only the supervisor sends work to actors: an actor that
//! stayed idle asks to stop with [`Idle`], quoting how many supervisor messages it has
//! received. The supervisor agrees only if it has sent exactly that many, so nothing it sent
//! can be lost in a stopping actor's mailbox; otherwise the actor is busy again and the request
//! is ignored. A generation number tells a stopped actor's request from its successor's.

use std::sync::Arc;

use actix::prelude::*;
use dashmap::DashMap;

use super::Supervisor;
use crate::actors::delivery::{DeliveryActor, DeliveryConfig, StartState, Stop};
use crate::domain::{Webhook, WebhookId};
use crate::store::{Lease, Store};

/// A running delivery actor.
pub struct Running {
    pub addr: Addr<DeliveryActor>,
    /// Its lease on the webhook (acquired by the actor as it starts).
    pub lease: Lease,
    /// Supervisor messages sent to it (see the module docs).
    sent: u64,
    generation: u64,
}

/// The running delivery actors, shared with the API (health requests go straight to them).
pub type ActorDirectory = Arc<DashMap<WebhookId, Running>>;

/// An actor that has been idle asks to stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Idle {
    pub webhook: WebhookId,
    pub generation: u64,
    /// Supervisor messages it has received.
    pub received: u64,
}

/// An actor could not get its webhook's lease (`lost: false`: another instance holds it) or
/// lost it (`lost: true`: a fenced write was refused). It has stopped.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaseEnded {
    pub webhook: WebhookId,
    pub generation: u64,
    pub lost: bool,
}

/// How a delivery actor speaks to the supervisor, quoting its generation.
pub struct SupervisorLink {
    idle: Recipient<Idle>,
    lease: Recipient<LeaseEnded>,
    generation: u64,
}

impl SupervisorLink {
    pub fn idle(&self, webhook: WebhookId, received: u64) {
        self.idle.do_send(Idle {
            webhook,
            generation: self.generation,
            received,
        });
    }

    pub fn lease_ended(&self, webhook: WebhookId, lost: bool) {
        self.lease.do_send(LeaseEnded {
            webhook,
            generation: self.generation,
            lost,
        });
    }
}

/// Starts, feeds and stops delivery actors, spread round-robin over the delivery arbiters.
pub struct Roster {
    pub running: ActorDirectory,
    /// Actors handed over and still draining, with their leases (still renewed).
    draining: Vec<(WebhookId, Lease)>,
    workers: Vec<ArbiterHandle>,
    next_worker: usize,
    next_generation: u64,
    store: Store,
    config: Arc<DeliveryConfig>,
    /// Shutting down: no actor starts any more, whatever asks (a work notice, a replay, a
    /// retry, the sweep, the lease retry): one started during the drain would be killed with
    /// requests under way and its lease held, so its deliveries would go out twice.
    closed: bool,
}

impl Roster {
    pub fn new(
        running: ActorDirectory,
        workers: Vec<ArbiterHandle>,
        store: Store,
        config: Arc<DeliveryConfig>,
    ) -> Roster {
        Roster {
            running,
            draining: Vec::new(),
            workers,
            next_worker: 0,
            next_generation: 0,
            store,
            config,
            closed: false,
        }
    }

    /// Starts nothing from now on (shutdown).
    pub fn close(&mut self) {
        self.closed = true;
    }

    pub fn is_running(&self, id: &WebhookId) -> bool {
        self.running.contains_key(id)
    }

    /// Starts the webhook's actor unless it runs already.
    pub fn start(&mut self, webhook: Arc<Webhook>, start: StartState, supervisor: Addr<Supervisor>) {
        if self.closed || self.is_running(&webhook.id) {
            return;
        }
        let arbiter = &self.workers[self.next_worker % self.workers.len()];
        self.next_worker = self.next_worker.wrapping_add(1);
        self.next_generation += 1;
        let generation = self.next_generation;
        let lease = Lease::mint(&self.config.instance);
        let link = SupervisorLink {
            idle: supervisor.clone().recipient(),
            lease: supervisor.recipient(),
            generation,
        };
        let (store, config, id, held) = (self.store.clone(), self.config.clone(), webhook.id, lease.clone());
        let addr = DeliveryActor::start_in_arbiter(arbiter, move |_| {
            DeliveryActor::new(webhook, &store, config, start, (held, link))
        });
        self.running.insert(
            id,
            Running {
                addr,
                lease,
                sent: 0,
                generation,
            },
        );
    }

    /// Sends a counted message (one that carries work or configuration) to a running actor.
    pub fn send<M>(&self, id: &WebhookId, message: M) -> bool
    where
        M: Message<Result = ()> + Send + 'static,
        DeliveryActor: Handler<M>,
    {
        match self.running.get_mut(id) {
            Some(mut running) => {
                running.sent += 1;
                running.addr.do_send(message);
                true
            }
            None => false,
        }
    }

    /// Stops the actor at once (its webhook was deleted) and returns it, so the caller can
    /// release its lease.
    pub fn stop(&self, id: &WebhookId) -> Option<Running> {
        let (_, running) = self.running.remove(id)?;
        running.addr.do_send(Stop);
        Some(running)
    }

    /// The lease of `id` was found lost: stops the actor holding it, if one runs, and stops
    /// renewing it for one that drains; whether an actor was running with it.
    pub fn lease_lost(&mut self, id: &WebhookId, lease: &Lease) -> bool {
        self.stop_renewing(id, lease);
        let Some((_, running)) = self.running.remove_if(id, |_, running| &running.lease == lease) else {
            return false;
        };
        running.addr.do_send(Stop);
        true
    }

    /// Takes the actor out of the roster without stopping it (it is being handed over: the
    /// caller drains it, then stops it and calls [`Roster::stop_renewing`]); its lease is
    /// renewed until then.
    pub fn hand_over(&mut self, id: &WebhookId) -> Option<Running> {
        let (_, running) = self.running.remove(id)?;
        self.draining.push((*id, running.lease.clone()));
        Some(running)
    }

    /// A handed-over actor has drained and stopped (the caller releases its lease), or its
    /// lease was found lost: the lease is no longer renewed.
    pub fn stop_renewing(&mut self, id: &WebhookId, lease: &Lease) {
        self.draining
            .retain(|(webhook, held)| !(webhook == id && held == lease));
    }

    /// Answers an [`Idle`] request: stops the actor if it has seen everything sent to it, and
    /// returns it (its lease is to be released).
    pub fn idle(&self, request: &Idle) -> Option<Running> {
        let (_, running) = self.running.remove_if(&request.webhook, |_, running| {
            running.generation == request.generation && running.sent == request.received
        })?;
        running.addr.do_send(Stop);
        Some(running)
    }

    /// Forgets the actor that reported its lease ended (it has stopped), if it is still the
    /// one running.
    pub fn lease_ended(&self, ended: &LeaseEnded) -> bool {
        self.running
            .remove_if(&ended.webhook, |_, running| running.generation == ended.generation)
            .is_some()
    }

    /// The leases of every running or draining actor, to renew.
    pub fn leases(&self) -> Vec<(WebhookId, Lease)> {
        let running = self.running.iter().map(|r| (*r.key(), r.lease.clone()));
        running.chain(self.draining.iter().cloned()).collect()
    }

    pub fn stop_all(&self) {
        for running in self.running.iter() {
            running.addr.do_send(Stop);
        }
        self.running.clear();
    }
}
