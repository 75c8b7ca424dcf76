//! Membership: this instance's heartbeat, and the live instances it sees (`store::instances`).
//!
//! Every `leases.ttl_ms / 4` the actor records a heartbeat; every second it reads the live
//! instances and, when the delivering ones changed, tells its subscriber (the supervisor, which
//! decides ownership from them: `actors::ownership`). So an instance that dies is noticed within
//! a second of its last heartbeat expiring. It announces itself on the change channel when it joins and
//! when it leaves (`Notice::Instances`), so the others look again at once instead of at their
//! next heartbeat. API-only instances run it too: they appear in `GET /instances`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;

use crate::domain::InstanceName;

/// How often the live instances are read (heartbeats are sent every `leases.ttl_ms / 4`).
const LOOK_EVERY: Duration = Duration::from_secs(1);
use crate::store::{Beat, InstanceStore, Notice, WebhookStore};

/// The live delivering instances changed (to these).
#[derive(Message)]
#[rtype(result = "()")]
pub struct MembersChanged(pub Vec<InstanceName>);

/// Tell `0` about changes from now on (the supervisor, once started).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Subscribe(pub Recipient<MembersChanged>);

/// Look at the live instances now (another instance joined or left).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Refresh;

/// Leave at once (a graceful stop): no more heartbeats, removed from Redis. Answers when done.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Leave;

pub struct Membership {
    instances: InstanceStore,
    /// For announcing joins and leaves on the change channel.
    webhooks: WebhookStore,
    me: InstanceName,
    delivering: bool,
    started_ms: u64,
    /// Webhooks this instance owns, shown in its heartbeat (kept by the supervisor).
    owned: Arc<AtomicUsize>,
    every: Duration,
    subscriber: Option<Recipient<MembersChanged>>,
    /// The live delivering instances last told to the subscriber.
    told: Option<Vec<InstanceName>>,
    /// Announced on the change channel after the first heartbeat.
    announced: bool,
    leaving: bool,
}

impl Membership {
    pub fn new(
        (instances, webhooks): (InstanceStore, WebhookStore),
        me: InstanceName,
        delivering: bool,
        owned: Arc<AtomicUsize>,
        ttl: Duration,
    ) -> Membership {
        Membership {
            instances,
            webhooks,
            me,
            delivering,
            started_ms: crate::clock::now_ms(),
            owned,
            every: ttl / 4,
            subscriber: None,
            told: None,
            announced: false,
            leaving: false,
        }
    }

    /// A heartbeat (when `beat`), then a look at who is alive.
    fn cycle(&mut self, beat: bool, ctx: &mut Context<Self>) {
        if self.leaving {
            return;
        }
        let (instances, webhooks, me) = (self.instances.clone(), self.webhooks.clone(), self.me.clone());
        let heartbeat = beat.then(|| Beat {
            delivering: self.delivering,
            started_ms: self.started_ms,
            webhooks: self.owned.load(Ordering::Relaxed) as u64,
        });
        let announce = beat && !self.announced;
        let cycle = async move {
            if let Some(heartbeat) = heartbeat {
                instances.heartbeat(&me, heartbeat).await?;
            }
            if announce {
                webhooks.announce(&Notice::Instances).await?;
            }
            instances.live().await
        };
        ctx.spawn(cycle.into_actor(self).map(move |result, act, _| match result {
            Ok(live) => {
                act.announced |= announce;
                let delivering: Vec<InstanceName> = live
                    .iter()
                    .filter(|member| member.delivering)
                    .filter_map(|member| InstanceName::parse(&member.name).ok())
                    .collect();
                act.tell(delivering);
            }
            Err(error) => tracing::debug!(%error, "heartbeat failed; the next one will try again"),
        }));
    }

    fn tell(&mut self, delivering: Vec<InstanceName>) {
        if self.told.as_ref() == Some(&delivering) {
            return;
        }
        if let Some(subscriber) = &self.subscriber {
            let names: Vec<&str> = delivering.iter().map(InstanceName::as_str).collect();
            tracing::info!(instances = ?names, "delivering instances changed");
            subscriber.do_send(MembersChanged(delivering.clone()));
            self.told = Some(delivering);
        }
    }
}

impl Actor for Membership {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Context<Self>) {
        self.cycle(true, ctx);
        ctx.run_interval(self.every, |act, ctx| act.cycle(true, ctx));
        ctx.run_interval(LOOK_EVERY, |act, ctx| act.cycle(false, ctx));
    }
}

impl Handler<Subscribe> for Membership {
    type Result = ();

    fn handle(&mut self, Subscribe(subscriber): Subscribe, ctx: &mut Context<Self>) {
        self.subscriber = Some(subscriber);
        self.told = None;
        self.cycle(false, ctx);
    }
}

impl Handler<Refresh> for Membership {
    type Result = ();

    fn handle(&mut self, _: Refresh, ctx: &mut Context<Self>) {
        self.cycle(false, ctx);
    }
}

impl Handler<Leave> for Membership {
    type Result = ResponseActFuture<Self, ()>;

    fn handle(&mut self, _: Leave, _: &mut Context<Self>) -> Self::Result {
        self.leaving = true;
        let (instances, webhooks, me) = (self.instances.clone(), self.webhooks.clone(), self.me.clone());
        let leave = async move {
            if let Err(error) = instances.leave(&me).await {
                tracing::warn!(%error, "could not leave the instance list; it expires by itself");
            }
            let _ = webhooks.announce(&Notice::Instances).await;
        };
        Box::pin(leave.into_actor(self).map(|_, _, ctx| ctx.stop()))
    }
}
