//! Scale: 100,000 registered webhooks, and a dead endpoint with 1,000,000 queued events.

use std::rc::Rc;
use std::time::{Duration, Instant};

use hookrouter::domain::{
    EventType, TypePattern, UserId, Webhook, WebhookId, WebhookSecret, WebhookUrl, WILDDUCK_EVENT_TYPES,
};
use hookrouter::routing::RouteIndex;

use super::publish::{user, Publisher};
use super::report::Row;
use super::scenarios::{row, wait_deliveries};
use super::service::Service;
use super::sink::{now_us, Sink};
use super::tcp::BlackHoles;
use super::Bench;

/// What the many-webhooks scenario found besides its row.
pub struct ManyFindings {
    pub webhooks: u64,
    pub registration_per_s: f64,
    /// RSS per registered webhook, bytes: what the service grew while they were registered,
    /// and the average after a restart (the restarted service's RSS over an empty one's, which
    /// includes the load's leftovers). Both include fixed overheads, which weigh more at small
    /// counts (--quick).
    pub bytes_per_webhook_registered: f64,
    pub bytes_per_webhook_restarted: f64,
    pub startup: Duration,
    /// Routing cost per event (ns) at 1k, 10k and 100k webhooks.
    pub matching_ns: Vec<(usize, f64)>,
    /// The same with every user webhook listing 256 patterns (the most one may), at 1k and 10k.
    pub matching_wide_ns: Vec<(usize, f64)>,
}

/// 4: 100,000 user-scoped webhooks, events for 1,000 users.
pub async fn many_webhooks(bench: &Bench) -> (Row, ManyFindings) {
    let count: u64 = if bench.quick { 10_000 } else { 100_000 };
    let prefix = bench.prefix("many");
    let service = Service::start(&bench.redis, &prefix, &[]);
    service.wait_ready().await;
    let empty_rss = service.rss_kib();
    let sink = Sink::start(None);

    // Register through the API, 64 requests at a time.
    let started = Instant::now();
    let service = Rc::new(service);
    let url = sink.url(0);
    register(&service, &url, 0, count).await;
    let registration_per_s = count as f64 / started.elapsed().as_secs_f64();
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    let registered_rss = service.rss_kib();

    // Events for 1,000 users: each matches that user's webhook.
    let events = if bench.quick { 2_000 } else { 10_000 };
    let mut publisher = Publisher::connect(&bench.redis, &prefix).await;
    let publish_started = now_us();
    publisher.publish(0, events, |n| user(n % 1000)).await;
    wait_deliveries(&sink, events, Duration::from_secs(300)).await;
    let mut measured = row(
        &format!("{}k user webhooks", count / 1000),
        &service,
        &sink,
        events,
        publish_started,
    );
    let Ok(service) = Rc::try_unwrap(service) else {
        panic!("service still shared")
    };
    service.stop();

    // A restart with every webhook in Redis: time until every actor runs, and its memory.
    let restarted = Service::start(&bench.redis, &prefix, &[]);
    let startup = restarted.wait_ready().await;
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    let restarted_rss = restarted.rss_kib();
    measured.peak_rss_mib = measured.peak_rss_mib.max(restarted.peak_rss_kib() as f64 / 1024.0);
    restarted.stop();
    sink.stop().await;
    publisher.clean(&prefix).await;

    let findings = ManyFindings {
        webhooks: count,
        registration_per_s,
        bytes_per_webhook_registered: registered_rss.saturating_sub(empty_rss) as f64 * 1024.0 / count as f64,
        bytes_per_webhook_restarted: restarted_rss.saturating_sub(empty_rss) as f64 * 1024.0 / count as f64,
        startup,
        matching_ns: [1_000, 10_000, 100_000]
            .into_iter()
            .map(|n| (n, matching_cost(n, 1)))
            .collect(),
        matching_wide_ns: [1_000, 10_000]
            .into_iter()
            .map(|n| (n, matching_cost(n, 256)))
            .collect(),
    };
    (measured, findings)
}

/// Creates webhooks for users `from..to` through the API, 64 requests at a time.
async fn register(service: &Rc<Service>, url: &str, from: u64, to: u64) {
    let mut next = from;
    while next < to {
        let batch: Vec<_> = (next..(next + 64).min(to))
            .map(|i| {
                let (service, url) = (service.clone(), url.to_string());
                actix_rt::spawn(async move { service.create_webhook(&url, &["*"], Some(&user(i))).await })
            })
            .collect();
        for task in batch {
            let _ = task.await;
        }
        next = (next + 64).min(to);
    }
}

/// ns per routed event with `webhooks` user-scoped webhooks (one per user, plus 10 global),
/// events spread over 1,000 users. With `patterns` above 1, every user webhook lists that many:
/// WildDuck's event names one by one, then more of its own (each user's event then matches
/// its webhook, as with one pattern three in four do; the global ones stay as they are).
fn matching_cost(webhooks: usize, patterns: usize) -> f64 {
    let url = WebhookUrl::parse("https://example.com/hook").unwrap();
    let secret = WebhookSecret::generate();
    let mut index = RouteIndex::default();
    let wide: Vec<TypePattern> = WILDDUCK_EVENT_TYPES
        .iter()
        .map(|ev| ev.to_string())
        .chain((0..).map(|n| format!("app{}.event{n}", n % 16)))
        .take(patterns)
        .map(|text| TypePattern::parse(&text).unwrap())
        .collect();
    let webhook = |user: Option<UserId>, pattern: &str| Webhook {
        id: WebhookId::generate(),
        url: url.clone(),
        types: match (patterns, &user) {
            (1, _) | (_, None) => vec![TypePattern::parse(pattern).unwrap()],
            _ => wide.clone(),
        },
        user,
        created_ms: 0,
        enabled: true,
        disabled_reason: None,
        paused: false,
        secret: secret.clone(),
        previous_secret: None,
        delivery: Default::default(),
    };
    for i in 0..webhooks {
        let pattern = ["*", "marked.*", "marked.spam", "user.*"][i % 4];
        index.insert(&webhook(Some(UserId::parse(&user(i as u64)).unwrap()), pattern));
    }
    for pattern in ["user.created", "mailbox.*"].iter().cycle().take(10) {
        index.insert(&webhook(None, pattern));
    }
    let users: Vec<UserId> = (0..1000).map(|i| UserId::parse(&user(i as u64)).unwrap()).collect();
    let ev = EventType::parse("marked.spam").unwrap();
    let mut out = Vec::new();
    // The best of 5 runs: on a machine others share, the slower runs measure them.
    let rounds = 1_000_000;
    let mut matched = 0usize;
    let best = (0..5)
        .map(|_| {
            let started = Instant::now();
            for r in 0..rounds {
                index.route(&ev, Some(&users[r % users.len()]), &mut out);
                matched += out.len();
            }
            started.elapsed().as_nanos() as f64 / rounds as f64
        })
        .fold(f64::INFINITY, f64::min);
    std::hint::black_box(matched);
    best
}

/// What the backlog scenario found besides its row.
pub struct BacklogFindings {
    pub queued: u64,
    pub queue_seconds: f64,
    pub rss_before_mib: f64,
    pub rss_queued_mib: f64,
    /// What the queued backlog costs Redis.
    pub redis_mib: f64,
    pub drain_seconds: f64,
}

/// 5: one dead endpoint with 1,000,000 queued events; then it comes back.
pub async fn backlog(bench: &Bench) -> (Row, BacklogFindings) {
    let events: u64 = if bench.quick { 50_000 } else { 1_000_000 };
    let prefix = bench.prefix("backlog");
    let settings = [
        ("HOOKROUTER__RETRY__INITIAL_DELAY_MS", "200".to_string()),
        ("HOOKROUTER__RETRY__MAX_DELAY_MS", "1000".to_string()),
        ("HOOKROUTER__RETRY__MAX_ATTEMPTS", "1000".to_string()),
        ("HOOKROUTER__DELIVERY__TIMEOUT_MS", "1000".to_string()),
    ];
    let service = Service::start(&bench.redis, &prefix, &settings);
    service.wait_ready().await;
    let hole = BlackHoles::start(1).await;
    let port = hole.ports()[0];
    let webhook = service
        .create_webhook(&format!("http://127.0.0.1:{port}/w/0"), &["*"], None)
        .await;
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    let rss_before = service.rss_kib();

    let mut publisher = Publisher::connect(&bench.redis, &prefix).await;
    let redis_before = publisher.redis_memory().await;
    let started = Instant::now();
    publisher.publish(0, events, |n| user(n % 1000)).await;
    while service.backlog(&webhook).await != events {
        actix_rt::time::sleep(Duration::from_millis(100)).await;
        assert!(
            started.elapsed() < Duration::from_secs(900),
            "the backlog was never queued"
        );
    }
    let queue_seconds = started.elapsed().as_secs_f64();
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    let rss_queued = service.rss_kib();
    let redis_mib = publisher.redis_memory().await.saturating_sub(redis_before) as f64 / 1048576.0;

    // The endpoint comes back on the same port.
    drop(hole);
    let listener = loop {
        match std::net::TcpListener::bind(("127.0.0.1", port)) {
            Ok(listener) => break listener,
            Err(_) => actix_rt::time::sleep(Duration::from_millis(20)).await,
        }
    };
    let sink = Sink::start(Some(listener));
    let back = Instant::now();
    let back_us = now_us();
    while service.backlog(&webhook).await != 0 {
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        assert!(back.elapsed() < Duration::from_secs(1800), "the backlog never drained");
    }
    let drain_seconds = back.elapsed().as_secs_f64();
    let mut measured = row("backlog: drain 1 endpoint", &service, &sink, events, back_us);
    measured.latency = None;
    measured.rate = events as f64 / drain_seconds;
    service.stop();
    sink.stop().await;
    publisher.clean(&prefix).await;
    let findings = BacklogFindings {
        queued: events,
        queue_seconds,
        rss_before_mib: rss_before as f64 / 1024.0,
        rss_queued_mib: rss_queued as f64 / 1024.0,
        redis_mib,
        drain_seconds,
    };
    (measured, findings)
}
