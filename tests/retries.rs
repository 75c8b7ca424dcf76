//! Retries and the circuit breaker, against real receivers: a few refused events never hold up
//! the rest of their webhook; the circuit opens only when the endpoint fails across
//! deliveries, probes one at a time on its own schedule, and closes on the first success;
//! `POST /webhooks/{id}/retry`, resume and re-enable probe at once.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{eventually, publish_many, Receiver, Reply, TestApp};

const WAIT: Duration = Duration::from_secs(10);

/// Records every health state a webhook reports, every 10 ms, until dropped.
struct StateWatch {
    seen: Arc<Mutex<HashMap<String, usize>>>,
    stop: Arc<AtomicBool>,
}

impl StateWatch {
    fn start(app: &TestApp, id: &str) -> StateWatch {
        let seen = Arc::new(Mutex::new(HashMap::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (url, record, done) = (app.url(&format!("/webhooks/{id}/health")), seen.clone(), stop.clone());
        actix_rt::spawn(async move {
            let client = awc::Client::default();
            while !done.load(Ordering::SeqCst) {
                if let Ok(mut response) = client.get(&url).send().await {
                    if let Ok(health) = response.json::<Value>().await {
                        let state = health["state"].as_str().unwrap_or("?").to_string();
                        *record.lock().unwrap().entry(state).or_insert(0) += 1;
                    }
                }
                actix_rt::time::sleep(Duration::from_millis(10)).await;
            }
        });
        StateWatch { seen, stop }
    }

    fn seen(&self) -> HashMap<String, usize> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for StateWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

#[actix_web::test]
async fn a_few_refused_events_never_hold_up_their_webhook() {
    const EVENTS: u64 = 1_000;
    // Each refused event waits 2 s, then 4 s, then becomes a dead letter: if waiting retries
    // kept their window slots, 16 of them would stall the webhook for 6 s.
    let app = TestApp::spawn_with(|s| {
        s.retry.initial_delay_ms = 2_000;
        s.retry.max_delay_ms = 60_000;
        s.retry.max_attempts = 3;
    })
    .await;
    let clean = Receiver::ok();
    // A validation rule on the receiver's side: every 50th event is refused (2%).
    let picky = Receiver::scripted(|_, body| match body["n"].as_u64() {
        Some(n) if n % 50 == 0 => Reply::Status(422),
        _ => Reply::Status(200),
    });
    let clean_id = app.create_webhook(&clean.url(), &["*"], None).await;
    let picky_id = app.create_webhook(&picky.url(), &["*"], None).await;
    let states = StateWatch::start(&app, &picky_id);

    let events: Vec<Vec<u8>> = (0..EVENTS)
        .map(|n| json!({"ev": "message.new", "n": n}).to_string().into_bytes())
        .collect();
    let started = Instant::now();
    publish_many(&app.prefix, &events).await;
    clean.wait_for(EVENTS as usize, WAIT).await;
    let clean_took = started.elapsed();
    let good: HashSet<u64> = (0..EVENTS).filter(|n| n % 50 != 0).collect();
    eventually("every good event at the picky receiver", WAIT, || async {
        good.is_subset(&picky.numbers()).then_some(())
    })
    .await;
    let picky_took = started.elapsed();
    println!("1000 events: clean webhook {clean_took:?}, webhook refusing 2%: good events in {picky_took:?}");
    assert!(
        picky_took < clean_took * 2 + Duration::from_secs(1),
        "refused events held up the others: {picky_took:?} vs {clean_took:?}"
    );
    let health = app
        .health_until(&picky_id, "the refused events waiting", |h| h["waiting"] == 20)
        .await;
    assert_eq!(health["state"], "retrying", "{health}");

    // The 20 refused events become dead letters after 3 attempts each; nothing else happens.
    let health = eventually("20 dead letters", Duration::from_secs(15), || async {
        let (_, health) = app.webhook_health(&picky_id).await;
        (health["deadLettered"] == 20 && health["backlog"] == 0).then_some(health)
    })
    .await;
    assert_eq!(health["delivered"], 980);
    assert_eq!(health["failed"], 60);
    assert_eq!(health["waiting"], 0);
    assert_eq!(health["consecutiveFailures"], 0);
    assert_eq!(health["state"], "healthy");
    assert_eq!(
        picky.count(),
        980 + 60,
        "one request per good event, three per refused one"
    );
    let (_, dead) = app.dead_letters(&picky_id, "limit=250").await;
    let dead = dead["results"].as_array().unwrap();
    assert_eq!(dead.len(), 20);
    for letter in dead {
        assert_eq!(letter["attempts"], 3);
        assert_eq!(letter["status"], 422);
        assert_eq!(letter["event"]["n"].as_u64().unwrap() % 50, 0);
    }
    let seen = states.seen();
    println!("states reported while it ran: {seen:?}");
    assert!(
        !seen.contains_key("failing"),
        "an endpoint accepting 98% was called failing: {seen:?}"
    );
    assert!(seen.contains_key("retrying"), "{seen:?}");
    let (_, clean_health) = app.webhook_health(&clean_id).await;
    assert_eq!(clean_health["delivered"], EVENTS);
}

#[actix_web::test]
async fn an_open_circuit_probes_one_at_a_time_on_its_own_schedule_then_drains() {
    // Probes every 100 ms doubling to 400 ms (test settings); entry retries every 100–200 ms:
    // the probes' pace must not follow the entries' attempt counts.
    let app = TestApp::spawn_with(|s| {
        s.circuit.failure_threshold = 3;
        s.retry.max_attempts = 1_000;
        s.retry.initial_delay_ms = 100;
        s.retry.max_delay_ms = 200;
    })
    .await;
    // Every failing answer takes 50 ms, so overlapping probes would show in the peak.
    let (receiver, healthy) = Receiver::failing_until_healed(Reply::Delay(Duration::from_millis(50), 500));
    let id = app.create_webhook(&receiver.url(), &["*"], None).await;
    for n in 0..40 {
        app.publish(json!({"ev": "a", "n": n})).await;
    }
    let health = app
        .health_until(&id, "an open circuit", |h| h["state"] == "failing")
        .await;
    assert!(health["consecutiveFailures"].as_u64().unwrap() >= 3, "{health}");
    assert!(health["failingSince"].is_string());
    // The attempts begun before it opened finish; then only probes.
    let health = app
        .health_until(&id, "nothing but probes in flight", |h| {
            h["inFlight"] == 0 && h["nextProbeAt"].is_string()
        })
        .await;
    assert_eq!(
        health["nextRetryAt"],
        Value::Null,
        "while open, only probes are scheduled"
    );
    receiver.reset_peak();
    let before = receiver.count();
    let probes = receiver.wait_for(before + 4, WAIT).await[before..].to_vec();
    assert!(receiver.peak_concurrency() <= 1, "probes overlapped");
    // Gaps between probes: 50 ms answer + 100, 200, 400 ms (each at least that).
    let gaps: Vec<u128> = probes.windows(2).map(|w| (w[1].at - w[0].at).as_millis()).collect();
    println!("gaps between probes: {gaps:?} ms");
    for (gap, least) in gaps.iter().zip([150, 250, 450]) {
        assert!(*gap >= least, "probes came too fast: {gaps:?}");
    }
    let (_, health) = app.webhook_health(&id).await;
    assert_eq!(health["backlog"], 40);

    // The endpoint recovers: the next probe closes the circuit and everything drains.
    healthy.store(true, Ordering::SeqCst);
    let started = Instant::now();
    let health = app
        .health_until(&id, "the backlog to drain", |h| h["backlog"] == 0)
        .await;
    assert_eq!(health["state"], "healthy");
    assert_eq!(health["consecutiveFailures"], 0);
    assert_eq!(health["delivered"], 40);
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "drained in {:?}",
        started.elapsed()
    );
}

#[actix_web::test]
async fn retry_now_probes_at_once_and_makes_every_waiting_entry_due() {
    // Without the call, the next probe would be a minute away, and so would the retries.
    let app = TestApp::spawn_with(|s| {
        s.circuit.failure_threshold = 1;
        s.circuit.probe_initial_ms = 60_000;
        s.circuit.probe_max_ms = 60_000;
        s.retry.initial_delay_ms = 60_000;
        s.retry.max_delay_ms = 60_000;
        // The whole window at once (no adaptive start): the ten go out together.
        s.delivery.initial_concurrency = s.delivery.max_in_flight;
    })
    .await;
    let (receiver, healthy) = Receiver::failing_until_healed(Reply::Status(503));
    let id = app.create_webhook(&receiver.url(), &["*"], None).await;
    // One batch: all ten are sent before the first failure opens the circuit. Queued while the
    // webhook is paused and read at once on resume: published to a running actor, a busy
    // machine's reader may hand them over in two batches, and the second would wait for the
    // probe a minute away.
    assert_eq!(app.pause(&id).await.0, 200);
    let events: Vec<Vec<u8>> = (0..10)
        .map(|n| json!({"ev": "a", "n": n}).to_string().into_bytes())
        .collect();
    publish_many(&app.prefix, &events).await;
    app.health_until(&id, "ten queued", |h| h["backlog"] == 10).await;
    assert_eq!(app.resume(&id).await.0, 200);
    let health = app
        .health_until(&id, "10 failed and waiting", |h| {
            h["waiting"] == 10 && h["state"] == "failing"
        })
        .await;
    let next_probe = health["nextProbeAt"]
        .as_str()
        .expect("a probe is scheduled")
        .to_string();
    println!("before: {health}");
    healthy.store(true, Ordering::SeqCst);

    let asked = Instant::now();
    let (status, reply) = app.retry_now(&id).await;
    assert_eq!((status, reply), (200, json!({"success": true})));
    let failed = health["failed"].as_u64().unwrap() as usize;
    eventually("all 10 delivered", Duration::from_secs(5), || async {
        (receiver.numbers().len() == 10 && receiver.count() == failed + 10).then_some(())
    })
    .await;
    let health = app.health_until(&id, "a drained queue", |h| h["backlog"] == 0).await;
    println!(
        "delivered {:?} after the call (the probe was due at {next_probe})",
        asked.elapsed()
    );
    assert_eq!(health["state"], "healthy");
    assert_eq!(health["delivered"], 10);

    let (status, reply) = app.retry_now("0123456789abcdef01234567").await;
    assert_eq!(status, 404, "{reply}");
    assert_eq!(reply["code"], "WebhookNotFound");
    let (_, document) = app.get("/openapi.json").await;
    assert!(document["paths"]["/webhooks/{id}/retry"]["post"].is_object());
}

#[actix_web::test]
async fn resume_and_re_enable_probe_at_once() {
    let app = TestApp::spawn_with(|s| {
        s.circuit.failure_threshold = 1;
        s.circuit.probe_initial_ms = 60_000;
        s.circuit.probe_max_ms = 60_000;
        s.retry.initial_delay_ms = 60_000;
        s.retry.max_delay_ms = 60_000;
    })
    .await;
    let (receiver, healthy) = Receiver::failing_until_healed(Reply::Status(500));
    let id = app.create_webhook(&receiver.url(), &["*"], None).await;

    for (round, (stop, start)) in [("pause", "resume"), ("disable", "enable")].into_iter().enumerate() {
        healthy.store(false, Ordering::SeqCst);
        app.publish(json!({"ev": "a", "n": round * 10})).await;
        app.health_until(&id, "an open circuit", |h| h["state"] == "failing")
            .await;
        healthy.store(true, Ordering::SeqCst);
        // A new event waits behind the open circuit: the probe is a minute away.
        app.publish(json!({"ev": "a", "n": round * 10 + 1})).await;
        app.health_until(&id, "the new event queued", |h| h["backlog"] == 2)
            .await;
        let (status, _) = match stop {
            "pause" => app.pause(&id).await,
            _ => app.update_webhook(&id, json!({"enabled": false})).await,
        };
        assert_eq!(status, 200);
        let (status, _) = match start {
            "resume" => app.resume(&id).await,
            _ => app.update_webhook(&id, json!({"enabled": true})).await,
        };
        assert_eq!(status, 200);
        let probed = Instant::now();
        eventually(&format!("the probe after {start}"), Duration::from_secs(5), || async {
            receiver.numbers().contains(&(round as u64 * 10 + 1)).then_some(())
        })
        .await;
        let health = app
            .health_until(&id, "a closed circuit", |h| {
                h["state"] == "retrying" || h["state"] == "healthy"
            })
            .await;
        println!("{start}: probed and closed in {:?}: {health}", probed.elapsed());
        assert_eq!(health["consecutiveFailures"], 0);
        // The entry that failed keeps its own schedule (a minute): retry now takes it.
        app.retry_now(&id).await;
        app.health_until(&id, "a drained queue", |h| h["backlog"] == 0).await;
    }
}
