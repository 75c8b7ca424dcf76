//! Building and running the service.
//!
//! [`Application::build`] wires everything from one [`Settings`]: the Redis store, the
//! delivering side (delivery arbiters, supervisor, queue reader, and the BullMQ source when
//! `[bullmq] enabled`; skipped on an API-only instance) and the HTTP API. It binds before returning, so tests can ask for port 0 and read
//! the real port from [`Application::port`].

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::{web, App, HttpServer};

use crate::actors::bullmq_source::{BullMqSource, SourceStatus};
use crate::actors::queue_reader::{QueueReader, ReaderStatus};
use crate::actors::supervisor::{ActorDirectory, Supervisor};
use crate::api::{self, ApiState, RouterHandle};
use crate::config::Settings;
use crate::security::{AccessTokens, Destinations};
use crate::shutdown::{Delivering, Shutdown};
use crate::store::{BullMqQueue, Store};

/// The delivering side of a running instance.
struct Router {
    handle: RouterHandle,
    reader: Addr<QueueReader>,
    /// Moves WildDuck's BullMQ jobs into the event stream (`[bullmq] enabled`).
    source: Option<Addr<BullMqSource>>,
    /// Kept so the delivery threads live as long as the application.
    arbiters: Vec<Arbiter>,
}

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    router: Option<Router>,
    grace: Duration,
}

impl Application {
    /// Starts everything. Needs a running actix system (`#[actix_web::main]`, `#[actix_web::test]`).
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        // awc's rustls connector needs a process-wide crypto provider; a second install fails
        // harmlessly (tests build several applications in one process).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let settings = Arc::new(settings);
        crate::metrics::handle();
        let listen = settings.listen_addr()?;
        let access = AccessTokens::new(&settings.api.access_tokens);
        if access.is_empty() {
            if !listen.ip().is_loopback() {
                anyhow::bail!(
                    "refusing to serve the API on {listen} without access tokens: anyone who can reach it could \
                     manage webhooks. Set [api] access_tokens (or HOOKROUTER__API__ACCESS_TOKENS=<token>,...), \
                     or listen on a loopback address such as 127.0.0.1:8787"
                );
            }
            tracing::warn!(%listen, "no [api] access_tokens: the API is open to every local user");
        }
        let destinations = Arc::new(Destinations::new(&settings.security.allow_cidrs));
        let store = Store::new(&settings.redis)?;
        if settings.bullmq.enabled && !settings.webhooks.enabled {
            tracing::warn!("[bullmq] enabled has no effect on an API-only instance ([webhooks] enabled = false)");
        }
        let router = if settings.webhooks.enabled {
            Some(start_router(&settings, &store, &destinations)?)
        } else {
            None
        };
        let listener = TcpListener::bind(listen)?;
        let port = listener.local_addr()?.port();
        let state = web::Data::new(ApiState {
            store,
            settings: settings.clone(),
            router: router.as_ref().map(|r| r.handle.clone()),
            destinations,
            access,
        });
        let server = HttpServer::new(move || {
            App::new()
                .wrap(actix_web::middleware::from_fn(api::auth::require_token))
                .wrap(api::errors::json_errors())
                .configure(api::configure(state.clone()))
        })
        .listen(listener)?
        .workers(2)
        .disable_signals()
        .shutdown_timeout(5)
        .run();
        tracing::info!(
            port,
            delivering = settings.webhooks.enabled,
            prefix = %settings.redis.prefix,
            "hookrouter started"
        );
        Ok(Application {
            port,
            server,
            router,
            grace: Duration::from_millis(settings.shutdown.grace_ms),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Serves until the process gets SIGINT or SIGTERM, then shuts down in order
    /// ([`Shutdown`]).
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let mut serving = actix_rt::spawn(self.server);
        tokio::select! {
            result = &mut serving => return result.unwrap_or(Ok(())),
            _ = Shutdown::requested() => tracing::info!("shutdown requested"),
        }
        let delivery = self.router.as_ref().map(|r| Delivering {
            source: r.source.as_ref(),
            reader: &r.reader,
            supervisor: &r.handle.supervisor,
        });
        Shutdown { grace: self.grace }.run(delivery, handle).await;
        if let Some(router) = self.router {
            for arbiter in router.arbiters {
                arbiter.stop();
            }
        }
        Ok(())
    }
}

fn start_router(settings: &Arc<Settings>, store: &Store, destinations: &Arc<Destinations>) -> anyhow::Result<Router> {
    let arbiters: Vec<Arbiter> = (0..settings.delivery_workers()).map(|_| Arbiter::new()).collect();
    let workers = arbiters.iter().map(Arbiter::handle).collect();
    let actors = ActorDirectory::default();
    let known = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let supervisor = Supervisor::new(
        store.clone(),
        settings,
        destinations.clone(),
        workers,
        actors.clone(),
        known.clone(),
    )
    .start();
    let status = Arc::new(ReaderStatus::default());
    let reader = QueueReader::new(
        store.clone(),
        settings.events.clone(),
        supervisor.clone(),
        status.clone(),
    )
    .start();
    let (source, source_status) = if settings.bullmq.enabled {
        let queue = BullMqQueue::new(store, &settings.bullmq, &settings.redis)?;
        let status = Arc::new(SourceStatus::default());
        let source = BullMqSource::new(queue, settings.bullmq.clone(), status.clone()).start();
        (Some(source), Some(status))
    } else {
        (None, None)
    };
    Ok(Router {
        handle: RouterHandle {
            supervisor,
            actors,
            webhooks: known,
            reader: status,
            bullmq: source_status,
        },
        reader,
        source,
        arbiters,
    })
}
