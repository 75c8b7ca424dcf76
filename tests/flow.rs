//! Flow control with real receivers: a broadcast to many webhooks on one host stays within the
//! host's connection cap and delivers everything; a receiver that says "slow down" (429 with
//! `Retry-After`) is not hammered; a webhook's `rateLimit` holds; strict ordering delivers one
//! at a time in stream order.

mod support;

use std::sync::atomic::Ordering;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::json;
use support::host::CappedHost;
use support::{Receiver, Reply, TestApp};

/// 200 webhooks on one host that accepts at most 16 connections and resets any beyond (as a
/// server at its connection limit does), 20 events each, with short retry settings: without a
/// per-host cap the broadcast opened hundreds of connections, the host refused them, and
/// deliveries ran out of attempts.
#[actix_web::test]
async fn a_broadcast_to_one_host_stays_within_its_connection_cap() {
    const WEBHOOKS: usize = 200;
    const EVENTS: usize = 20;
    let host = CappedHost::start(16, Duration::from_millis(2)).await;
    let app = TestApp::spawn_with(|s| {
        s.delivery.max_connections_per_host = 16;
        s.delivery.timeout_ms = 5_000;
        s.retry.initial_delay_ms = 100;
        s.retry.max_delay_ms = 400;
        s.retry.max_attempts = 4;
    })
    .await;
    for n in 0..WEBHOOKS {
        app.create_webhook(&host.url(n), &["*"], None).await;
    }
    let raws: Vec<Vec<u8>> = (0..EVENTS)
        .map(|n| json!({"ev": "user.created", "n": n}).to_string().into_bytes())
        .collect();
    let started = Instant::now();
    support::publish_many(&app.prefix, &raws).await;
    support::eventually("every delivery", Duration::from_secs(60), || async {
        (host.delivered() == WEBHOOKS * EVENTS).then_some(())
    })
    .await;
    let counts = &host.counts;
    println!(
        "{} deliveries to one host in {:.2?}: connections at most {} at once, {} opened, {} refused",
        WEBHOOKS * EVENTS,
        started.elapsed(),
        counts.peak.load(Ordering::SeqCst),
        counts.accepted.load(Ordering::SeqCst),
        counts.refused.load(Ordering::SeqCst)
    );
    assert!(counts.peak.load(Ordering::SeqCst) <= 16);
    assert_eq!(counts.refused.load(Ordering::SeqCst), 0);
    let twice = counts.delivered.lock().unwrap().values().filter(|n| **n > 1).count();
    assert_eq!(twice, 0, "deliveries that went twice");
    let metrics = app.metrics_text().await;
    assert!(
        !metrics.contains("hookrouter_dead_letters_total"),
        "dead letters:\n{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "hookrouter_host_connection_cap{{host=\"http://127.0.0.1:{}\"}} 16",
            host.port
        )),
        "{metrics}"
    );
}

/// A receiver that takes 100 requests a second and answers 429 with `Retry-After: 1` above
/// that (a fixed one-second window, as many rate limiters count): every event arrives, and 429s
/// are a few per cent of the requests, not the 65% they were when `Retry-After` delayed only
/// the event that got it.
#[actix_web::test]
async fn a_receiver_that_says_slow_down_is_not_hammered() {
    const EVENTS: usize = 1_500;
    let window = Mutex::new((Instant::now(), 0u32));
    let receiver = Receiver::scripted(move |_, _| {
        let mut window = window.lock().unwrap();
        if window.0.elapsed() >= Duration::from_secs(1) {
            *window = (Instant::now(), 0);
        }
        window.1 += 1;
        if window.1 > 100 {
            Reply::StatusRetryAfter(429, 1)
        } else {
            Reply::Status(200)
        }
    });
    let app = TestApp::spawn_with(|s| {
        s.retry.max_delay_ms = 5_000;
        s.retry.max_attempts = 10;
        s.circuit.failure_threshold = 1_000;
    })
    .await;
    let webhook = app.create_webhook(&receiver.url(), &["*"], None).await;
    let raws: Vec<Vec<u8>> = (0..EVENTS)
        .map(|n| json!({"ev": "user.created", "n": n}).to_string().into_bytes())
        .collect();
    support::publish_many(&app.prefix, &raws).await;
    app.health_until(&webhook, "a rate learned from the 429s", |h| {
        !h["flow"]["learnedRate"].is_null()
    })
    .await;
    let health = support::eventually("every event delivered", Duration::from_secs(60), || async {
        let (_, health) = app.webhook_health(&webhook).await;
        (health["delivered"] == EVENTS).then_some(health)
    })
    .await;
    println!("flow at the end: {}", health["flow"]);
    let requests = receiver.count();
    let refused = requests - EVENTS;
    println!(
        "{EVENTS} events to a receiver taking 100/s: {requests} requests, {refused} answered 429 ({:.1}%)",
        100.0 * refused as f64 / requests as f64
    );
    assert!(
        refused * 100 <= requests * 5,
        "{refused} of {requests} requests were 429s"
    );
    let (_, dead) = app.dead_letters(&webhook, "").await;
    assert_eq!(dead["results"], json!([]));
}

/// `rateLimit` is taken on create and update, stored, shown, and refused when out of range,
/// naming the field and the rule.
#[actix_web::test]
async fn rate_limits_and_ordering_are_set_shown_and_checked() {
    let app = TestApp::spawn().await;
    let (status, created) = app
        .post_webhook(json!({"type": ["*"], "url": "http://127.0.0.1:9/a", "rateLimit": 50, "ordering": "strict"}))
        .await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let (_, webhook) = app.get_webhook(&id).await;
    assert_eq!(
        (&webhook["rateLimit"], &webhook["ordering"]),
        (&json!(50), &json!("strict")),
        "{webhook}"
    );
    let (status, _) = app
        .update_webhook(&id, json!({"rateLimit": null, "ordering": "parallel"}))
        .await;
    assert_eq!(status, 200);
    let (_, webhook) = app.get_webhook(&id).await;
    assert!(
        webhook.get("rateLimit").is_none() && webhook.get("ordering").is_none(),
        "{webhook}"
    );
    for (body, field) in [
        (json!({"rateLimit": 0}), "rateLimit"),
        (json!({"rateLimit": 100_001}), "rateLimit"),
        (json!({"rateLimit": "fast"}), "rateLimit"),
        (json!({"ordering": "sorted"}), "ordering"),
    ] {
        let (status, error) = app.update_webhook(&id, body.clone()).await;
        assert_eq!(status, 400, "{body} -> {error}");
        assert!(error["details"][field].is_string(), "{body} -> {error}");
    }
}

/// Deliveries per second as the receiver saw them over `window`, from the arrivals of one
/// webhook, skipping its first second (the burst a limit allows).
fn per_second(arrivals: &[Instant], window: Duration) -> f64 {
    let start = arrivals[0] + Duration::from_secs(1);
    let counted = arrivals
        .iter()
        .filter(|at| **at >= start && **at < start + window)
        .count();
    counted as f64 / window.as_secs_f64()
}

/// A webhook with `rateLimit: 50` receives at most 50 a second (±10%) over 10 s, while another
/// webhook on the same host is not slowed by it.
#[actix_web::test]
async fn a_rate_limit_holds_and_slows_only_its_webhook() {
    let receiver = Receiver::ok();
    let app = TestApp::spawn().await;
    let (status, created) = app
        .post_webhook(json!({"type": ["limited"], "url": format!("{}/limited", receiver.url()), "rateLimit": 50}))
        .await;
    assert_eq!(status, 200, "{created}");
    app.create_webhook(&format!("{}/free", receiver.url()), &["free"], None)
        .await;
    let mut raws: Vec<Vec<u8>> = (0..700)
        .map(|n| json!({"ev": "limited", "n": n}).to_string().into_bytes())
        .collect();
    raws.extend((0..700).map(|n| json!({"ev": "free", "n": n}).to_string().into_bytes()));
    support::publish_many(&app.prefix, &raws).await;
    let got = receiver.wait_for(1_400, Duration::from_secs(30)).await;
    let arrivals = |ev: &str| -> Vec<Instant> { got.iter().filter(|r| r.json()["ev"] == ev).map(|r| r.at).collect() };
    let (limited, free) = (arrivals("limited"), arrivals("free"));
    let rate = per_second(&limited, Duration::from_secs(10));
    let free_took = *free.last().unwrap() - free[0];
    println!("rateLimit 50: {rate:.1}/s over 10 s; the other webhook's 700 took {free_took:.2?}");
    assert!((45.0..=55.0).contains(&rate), "{rate}/s");
    assert!(
        free_took < Duration::from_secs(5),
        "the free webhook took {free_took:?}"
    );
}

/// Strict order: one at a time, in stream order; the 5th event fails three times, and holds the
/// ones behind it until it goes through. Each event is delivered once, in order.
#[actix_web::test]
async fn strict_ordering_delivers_once_each_in_stream_order() {
    let failures = Mutex::new(0);
    let receiver = Receiver::scripted(move |_, body| {
        let mut failures = failures.lock().unwrap();
        if body["n"] == 4 && *failures < 3 {
            *failures += 1;
            Reply::Status(503)
        } else {
            Reply::Status(200)
        }
    });
    let app = TestApp::spawn_with(|s| s.circuit.failure_threshold = 100).await;
    let (status, created) = app
        .post_webhook(json!({"type": ["*"], "url": receiver.url(), "ordering": "strict"}))
        .await;
    assert_eq!(status, 200, "{created}");
    let webhook = created["id"].as_str().unwrap().to_string();
    let raws: Vec<Vec<u8>> = (0..30)
        .map(|n| json!({"ev": "state.changed", "n": n}).to_string().into_bytes())
        .collect();
    support::publish_many(&app.prefix, &raws).await;
    let got = receiver.wait_for(33, Duration::from_secs(20)).await;
    app.settled(&[&webhook]).await;
    let order: Vec<u64> = receiver
        .received()
        .iter()
        .map(|r| r.json()["n"].as_u64().unwrap())
        .collect();
    let mut expected: Vec<u64> = (0..30).collect();
    expected.splice(4..4, [4, 4, 4]);
    assert_eq!(
        order, expected,
        "three failures of n=4, then every event once, in order"
    );
    assert_eq!(got.len(), 33);
    assert!(receiver.peak_concurrency() <= 1, "one at a time");
}
