//! Building and running the service.
//!
//! [`Application::build`] wires everything from one [`Settings`]: the Redis store, the
//! delivering side (delivery arbiters, supervisor, queue reader, and the BullMQ source when
//! `[bullmq] enabled`; skipped on an API-only instance) and the HTTP API. It binds the API's
//! address first, before anything starts, so a port already taken is a clear error naming the
//! address and nothing is left half-started; tests ask for port 0 and read the real port from
//! [`Application::port`].

use std::net::TcpListener;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use actix_web::{web, App, HttpServer};

use crate::actors::bullmq_source::{BullMqSource, SourceStatus};
use crate::actors::membership::Membership;
use crate::actors::queue_reader::{QueueReader, ReaderStatus};
use crate::actors::supervisor::{ActorDirectory, Supervisor, SupervisorSetup};
use crate::api::{self, ApiState, RouterHandle};
use crate::config::Settings;
use crate::domain::InstanceName;
use crate::security::{tls, AccessTokens, Destinations};
use crate::shutdown::{Delivering, Shutdown};
use crate::store::{refusal, BullMqQueue, Store, Unavailable, WildDuckTokenStore};

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
    instance: InstanceName,
    /// Heartbeats and the live instances (on every instance, API-only ones included).
    membership: Addr<Membership>,
    server: actix_web::dev::Server,
    router: Option<Router>,
    grace: Duration,
    /// Turns true when the service stops (see [`Shutdown`]).
    stopping: tokio::sync::watch::Sender<bool>,
}

impl Application {
    /// Starts everything. Needs a running actix system (`#[actix_web::main]`, `#[actix_web::test]`).
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        // awc's rustls connector needs a process-wide crypto provider; a second install fails
        // harmlessly (tests build several applications in one process).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let settings = Arc::new(settings);
        let instance = InstanceName::from_setting(&settings.instance.name)
            .map_err(|rule| anyhow::anyhow!("invalid configuration:\n  instance.name: {rule}"))?;
        crate::metrics::handle();
        let listen = settings.listen_addr()?;
        let access = AccessTokens::new(&settings.api.access_tokens);
        if access.is_empty() && !settings.api.wildduck_tokens {
            if !listen.ip().is_loopback() {
                anyhow::bail!(
                    "refusing to serve the API on {listen} without access tokens: anyone who can reach it could \
                     manage webhooks. Set [api] access_tokens (or HOOKROUTER__API__ACCESS_TOKENS=<token>,...), \
                     turn on [api] wildduck_tokens, or listen on a loopback address such as 127.0.0.1:8787"
                );
            }
            tracing::warn!(%listen, "no [api] access_tokens: the API is open to every local user");
        }
        // [delivery] ca_file is read once, here (on API-only instances too, so a bad one is
        // caught wherever the configuration is used): a bad one stops the start, naming the key.
        let tls = tls::delivery_client_config(&settings.delivery.ca_file)?;
        let listener = TcpListener::bind(listen)
            .map_err(|error| anyhow::anyhow!("cannot listen on {listen} ([api] listen): {error}"))?;
        let port = listener.local_addr()?.port();
        let destinations = Arc::new(Destinations::new(&settings.security.allow_cidrs));
        let store = Store::new(&settings.redis)?;
        refuse_early(&settings, &store).await?;
        watch_redis(store.clone(), settings.redis.url_for_logs());
        let wildduck = wildduck_tokens(&settings, &store)?;
        if settings.bullmq.enabled && !settings.webhooks.enabled {
            tracing::warn!("[bullmq] enabled has no effect on an API-only instance ([webhooks] enabled = false)");
        }
        let owned = Arc::new(AtomicUsize::new(0));
        let membership = Membership::new(
            (store.instances(settings.leases.ttl()), store.webhooks()),
            instance.clone(),
            settings.webhooks.enabled,
            owned.clone(),
            settings.leases.ttl(),
        )
        .start();
        let (stopping, stopping_seen) = tokio::sync::watch::channel(false);
        let router = if settings.webhooks.enabled {
            let parts = SupervisorSetup {
                store: store.clone(),
                instance: instance.clone(),
                destinations: destinations.clone(),
                tls,
                workers: Vec::new(),
                actors: ActorDirectory::default(),
                owned,
                membership: membership.clone(),
            };
            Some(start_router(&settings, parts)?)
        } else {
            None
        };
        if let Some(router) = &router {
            let actors = router.handle.actors.clone();
            crate::actors::board::start(store.clone(), instance.clone(), actors, stopping_seen.clone());
            crate::actors::replayer::start(store.clone(), &settings, &instance, stopping_seen.clone());
        }
        let state = web::Data::new(ApiState {
            instance: instance.clone(),
            store,
            settings: settings.clone(),
            router: router.as_ref().map(|r| r.handle.clone()),
            destinations,
            access,
            wildduck,
            dashboard: api::dashboard::Dashboard::new(stopping_seen, settings.leases.ttl()),
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
            %instance,
            listen = %listener_addr(listen, port),
            delivering = settings.webhooks.enabled,
            redis = %settings.redis.url_for_logs(),
            prefix = %settings.redis.prefix,
            "hookrouter started"
        );
        Ok(Application {
            port,
            instance,
            membership,
            server,
            router,
            grace: Duration::from_millis(settings.shutdown.grace_ms),
            stopping,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn instance(&self) -> &InstanceName {
        &self.instance
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
        let shutdown = Shutdown {
            grace: self.grace,
            stopping: self.stopping,
        };
        shutdown.run(delivery, &self.membership, handle).await;
        if let Some(router) = self.router {
            for arbiter in router.arbiters {
                arbiter.stop();
            }
        }
        Ok(())
    }
}

fn listener_addr(listen: std::net::SocketAddr, port: u16) -> std::net::SocketAddr {
    std::net::SocketAddr::new(listen.ip(), port)
}

/// A Redis that refuses us for good (a wrong password, a certificate we do not trust) stops
/// the start with the reason; one that is merely down or loading is waited for, as ever. So is
/// BullMQ's Redis, when it is another.
async fn refuse_early(settings: &Settings, store: &Store) -> anyhow::Result<()> {
    let mut checks = vec![(store.clone(), "redis.url", settings.redis.url_for_logs())];
    if settings.bullmq.enabled && !settings.bullmq.url.is_empty() && settings.bullmq.url != settings.redis.url {
        let bull = crate::config::RedisSettings {
            url: settings.bullmq.url.clone(),
            sentinels: Vec::new(),
            ..settings.redis.clone()
        };
        checks.push((Store::new(&bull)?, "bullmq.url", bull.url_for_logs()));
    }
    for (store, key, url) in checks {
        if let Err(error) = store.check().await {
            if let Some(why) = refusal(&error) {
                anyhow::bail!("cannot use the Redis at {url} ({key}): {why}");
            }
        }
    }
    Ok(())
}

/// Says when Redis becomes unreachable (or, restarted, is loading its data), every 5 s while it
/// stays so, and when it is back: a service that cannot reach Redis does nothing useful, and
/// must not be silent about it.
fn watch_redis(store: Store, url: String) {
    const CHECK_EVERY: Duration = Duration::from_secs(1);
    const WARN_EVERY: Duration = Duration::from_secs(5);
    actix_rt::spawn(async move {
        let mut down: Option<(std::time::Instant, std::time::Instant)> = None;
        loop {
            match (store.check().await, down) {
                (Ok(()), Some((since, _))) => {
                    tracing::info!(redis = %url, down_for_ms = since.elapsed().as_millis() as u64, "redis is reachable again");
                    down = None;
                }
                (Ok(()), None) => {}
                (Err(error), None) if error.unavailable() == Some(Unavailable::Loading) => {
                    tracing::warn!(redis = %url, %error, "redis is loading its data; retrying");
                    let now = std::time::Instant::now();
                    down = Some((now, now));
                }
                (Err(error), None) => {
                    // In words: a refused login or certificate (the words alone), or what Redis
                    // says (out of memory, unable to save, failing over) with the error.
                    match refusal(&error) {
                        Some(why) => tracing::warn!(redis = %url, "redis cannot serve: {why}; retrying"),
                        None => {
                            let why = error.unavailable().map_or("Redis is unreachable", |why| why.describe());
                            tracing::warn!(redis = %url, %error, "redis cannot serve: {why}; retrying");
                        }
                    }
                    let now = std::time::Instant::now();
                    down = Some((now, now));
                }
                (Err(error), Some((since, warned))) if warned.elapsed() >= WARN_EVERY => {
                    let why = error.unavailable().map_or("Redis is unreachable", |why| why.describe());
                    tracing::warn!(
                        redis = %url,
                        %error,
                        down_for_s = since.elapsed().as_secs(),
                        "redis still cannot serve: {why}; nothing is read or delivered meanwhile"
                    );
                    down = Some((since, std::time::Instant::now()));
                }
                (Err(_), Some(_)) => {}
            }
            actix_rt::time::sleep(CHECK_EVERY).await;
        }
    });
}

/// What checks WildDuck's tokens, with `[api] wildduck_tokens` (connected lazily; through
/// `store`'s own connection when WildDuck's Redis is hookrouter's).
fn wildduck_tokens(settings: &Settings, store: &Store) -> anyhow::Result<Option<api::auth::WildDuckTokens>> {
    if !settings.api.wildduck_tokens {
        return Ok(None);
    }
    let url = settings.wildduck_redis_url();
    let store = WildDuckTokenStore::new(store, url, &settings.redis)?;
    let redis_for_logs = crate::config::RedisSettings {
        url: url.to_string(),
        ..settings.redis.clone()
    }
    .url_for_logs();
    tracing::info!(redis = %redis_for_logs, "accepting the access tokens WildDuck issues");
    Ok(Some(api::auth::WildDuckTokens {
        store,
        secret: Arc::from(settings.api.wildduck_secret.0.as_bytes()),
        lifetime_s: settings.api.wildduck_token_lifetime_s,
    }))
}

/// Starts the delivering side; `parts` has everything but the delivery arbiters, made here.
fn start_router(settings: &Arc<Settings>, mut parts: SupervisorSetup) -> anyhow::Result<Router> {
    // What can fail comes first, so nothing is left running when it does.
    let store = parts.store.clone();
    let queue = match settings.bullmq.enabled {
        true => Some(BullMqQueue::new(&store, &settings.bullmq, &settings.redis)?),
        false => None,
    };
    let count = settings.delivery_workers();
    let arbiters: Vec<Arbiter> = (0..count).map(|_| Arbiter::new()).collect();
    for (index, arbiter) in arbiters.iter().enumerate() {
        // Each thread's share of every host's connection cap depends on its place.
        arbiter.spawn_fn(move || crate::actors::delivery::set_delivery_thread(index, count));
    }
    parts.workers = arbiters.iter().map(Arbiter::handle).collect();
    let (actors, owned, instance) = (parts.actors.clone(), parts.owned.clone(), parts.instance.clone());
    let supervisor = Supervisor::new(settings, parts).start();
    let status = Arc::new(ReaderStatus::default());
    // Each instance is its own consumer; entries a gone one left pending are taken over after a
    // lease lifetime. Early is safe: the fan-out refuses entries no longer pending for the
    // consumer routing them, so a slow instance and its successor never both route a batch.
    let consumer: Arc<str> = match settings.events.consumer.as_str() {
        "" => Arc::from(instance.as_str()),
        named => Arc::from(named),
    };
    let reclaim = (consumer, settings.leases.ttl());
    let reader = QueueReader::new(
        store.clone(),
        settings.events.clone(),
        reclaim,
        supervisor.clone(),
        status.clone(),
    )
    .start();
    let (source, source_status) = if let Some(queue) = queue {
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
            webhooks: owned,
            reader: status,
            bullmq: source_status,
        },
        reader,
        source,
        arbiters,
    })
}
