//! Graceful shutdown, in one place.
//!
//! On SIGTERM or SIGINT a running instance stops in this order:
//!
//! 1. The reading side stops: first the BullMQ source (when enabled; the batch it is moving is
//!    moved whole), then the queue reader (the batch it holds is routed, queued and
//!    acknowledged, first). Upstream first, so nothing is fed to a reader that has stopped;
//!    whatever reached the stream meanwhile is routed at the next start.
//! 2. Every delivery actor drains: it takes nothing new, drops what waits for a retry (its retry
//!    state is in Redis), and lets the attempts under way finish and their results reach Redis,
//!    for at most `[shutdown] grace_ms`. Then the instance gives its leases up.
//! 3. It leaves the instance list and says so, so the other instances take its webhooks over
//!    at once (their leases are free) instead of after `[leases] ttl_ms`.
//! 4. Long-lived responses (dashboard streams) end, the board is withdrawn, and the API stops.
//!
//! Everything not delivered stays queued in Redis; the next start resumes it. An attempt still
//! under way when the grace period ends is abandoned and, being still queued, sent again
//! after the restart.

use std::time::Duration;

use actix::Addr;

use crate::actors::bullmq_source::{BullMqSource, StopSource};
use crate::actors::membership::{Leave, Membership};
use crate::actors::queue_reader::{QueueReader, StopReading};
use crate::actors::supervisor::{Shutdown as DrainAll, Supervisor};

pub struct Shutdown {
    pub grace: Duration,
    /// Set to true before the API stops: dashboard streams end (instead of holding the API's
    /// stop for its whole timeout) and the board writer withdraws this instance's board.
    pub stopping: tokio::sync::watch::Sender<bool>,
}

/// The actors of a delivering instance that shutdown stops.
pub struct Delivering<'a> {
    pub source: Option<&'a Addr<BullMqSource>>,
    pub reader: &'a Addr<QueueReader>,
    pub supervisor: &'a Addr<Supervisor>,
}

impl Shutdown {
    /// Resolves on SIGTERM or SIGINT.
    pub async fn requested() {
        #[cfg(unix)]
        {
            use tokio::signal::unix::{signal, SignalKind};
            match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => std::future::pending::<()>().await,
            }
        }
        #[cfg(not(unix))]
        {
            let _ = tokio::signal::ctrl_c().await;
        }
    }

    /// Runs steps 1–4. `delivery` is None on an API-only instance.
    pub async fn run(
        self,
        delivery: Option<Delivering<'_>>,
        membership: &Addr<Membership>,
        api: actix_web::dev::ServerHandle,
    ) {
        if let Some(Delivering {
            source,
            reader,
            supervisor,
        }) = delivery
        {
            if let Some(source) = source {
                let _ = source.send(StopSource).await;
            }
            let _ = reader.send(StopReading).await;
            tracing::info!(
                grace_ms = self.grace.as_millis() as u64,
                "reader stopped; draining deliveries"
            );
            let _ = supervisor.send(DrainAll { grace: self.grace }).await;
        }
        let _ = membership.send(Leave).await;
        self.stopping.send_replace(true);
        api.stop(true).await;
    }
}
