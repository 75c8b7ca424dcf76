//! Graceful shutdown, in one place.
//!
//! On SIGTERM or SIGINT a running instance stops in this order:
//!
//! 1. The queue reader stops; the batch it holds is routed (queued and acknowledged) first.
//! 2. Every delivery actor drains: it takes nothing new, drops what waits for a retry (its retry
//!    state is in Redis), and lets the attempts under way finish and their results reach Redis,
//!    for at most `[shutdown] grace_ms`.
//! 3. Long-lived responses (dashboard streams) end, the board is withdrawn, and the API stops.
//!
//! Everything not delivered stays queued in Redis; the next start resumes it. An attempt still
//! under way when the grace period ends is abandoned and, being still queued, sent again
//! after the restart.

use std::time::Duration;

use actix::Addr;

use crate::actors::queue_reader::{QueueReader, StopReading};
use crate::actors::supervisor::{Shutdown as DrainAll, Supervisor};

pub struct Shutdown {
    pub grace: Duration,
    /// Set to true before the API stops: dashboard streams end (instead of holding the API's
    /// stop for its whole timeout) and the board writer withdraws this instance's board.
    pub stopping: tokio::sync::watch::Sender<bool>,
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

    /// Runs steps 1–3. `delivery` is None on an API-only instance.
    pub async fn run(
        self,
        delivery: Option<(&Addr<QueueReader>, &Addr<Supervisor>)>,
        api: actix_web::dev::ServerHandle,
    ) {
        if let Some((reader, supervisor)) = delivery {
            let _ = reader.send(StopReading).await;
            tracing::info!(
                grace_ms = self.grace.as_millis() as u64,
                "reader stopped; draining deliveries"
            );
            let _ = supervisor.send(DrainAll { grace: self.grace }).await;
        }
        self.stopping.send_replace(true);
        api.stop(true).await;
    }
}
