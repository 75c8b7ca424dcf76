//! Nothing waits without a reason: the liveness and duplicate defects found by probing from
//! outside, each reproduced as it was found. Every service here runs with its self-check on
//! and aborting on a violation (`[invariants] abort_on_violation`, set by the test helpers), so
//! a fix that only works because the self-check repaired it fails too.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::process::ServiceProcess;
use support::{Receiver, Reply, TestApp, REDIS_URL};

/// A stream entry's field and value.
type Field = (String, Vec<u8>);

/// A failure recorded while a take of due retries read the due set, and written to Redis just
/// after the read, was forgotten: the actor believed nothing waited (`waiting: 0`,
/// `nextRetryAt: null`) while the due set held it, and nothing took it until the actor went
/// idle a minute later. Here each webhook gets two events: the first fails at once and falls
/// due 70 ms later (50 ms delay, 20 ms gathering); the second fails about 70 ms after it —
/// just before that take — and is the last failure. The delays vary by webhook to cover the
/// machine's timing.
#[actix_web::test]
async fn a_failure_written_while_due_retries_are_taken_is_not_forgotten() {
    let delays_ms = [58u64, 61, 64, 66, 68, 70, 72, 75];
    let receivers: Vec<Receiver> = delays_ms
        .iter()
        .map(|delay| {
            let delay = Duration::from_millis(*delay);
            let tried = std::sync::Mutex::new(std::collections::HashSet::new());
            Receiver::scripted(move |_, body| {
                let first = tried.lock().unwrap().insert(body["ev"].to_string());
                match (first, body["ev"].as_str()) {
                    (true, Some("first")) => Reply::Status(500),
                    (true, _) => Reply::Delay(delay, 500),
                    (false, _) => Reply::Status(200),
                }
            })
        })
        .collect();
    let app = TestApp::spawn_with(|s| {
        s.retry.max_attempts = 5;
        s.circuit.failure_threshold = 100;
    })
    .await;
    let mut webhooks = Vec::new();
    for receiver in &receivers {
        webhooks.push(app.create_webhook(&receiver.url(), &["*"], None).await);
    }
    let raws = [json!({"ev": "first"}), json!({"ev": "second"})].map(|event| event.to_string().into_bytes());
    support::publish_many(&app.prefix, &raws).await;

    for (receiver, delay) in receivers.iter().zip(delays_ms) {
        // Two failures, two deliveries: within a second, not when the actor idles out.
        let got = support::eventually(
            &format!("both events delivered (second failing after {delay} ms)"),
            Duration::from_secs(5),
            || async { (receiver.count() >= 4).then(|| receiver.received()) },
        )
        .await;
        assert_eq!(got.len(), 4);
    }
    let ids: Vec<&str> = webhooks.iter().map(String::as_str).collect();
    app.settled(&ids).await;
}

/// The queue entry of an event routed by another instance, as its fan-out writes it, without
/// the work notice that should follow (pub/sub loses them).
async fn queue_without_notice(app: &TestApp, webhook: &str, event: &str, ev: &str) {
    let d = format!("{event}\n{ev}\n\"time\":1700000000000,\"ev\":\"{ev}\"}}");
    let _: String = app
        .redis(
            redis::cmd("XADD")
                .arg(app.key(&format!("queue:{webhook}")))
                .arg("*")
                .arg("d")
                .arg(d),
        )
        .await;
}

/// A webhook whose actor runs and is caught up: one event delivered.
async fn caught_up() -> (Receiver, TestApp, String) {
    let receiver = Receiver::ok();
    let app = TestApp::spawn().await;
    let webhook = app.create_webhook(&receiver.url(), &["*"], None).await;
    app.publish(json!({"ev": "before"})).await;
    receiver.wait_for(1, Duration::from_secs(10)).await;
    (receiver, app, webhook)
}

/// A running, caught-up actor moved its cursor to each event handed to it in memory, past an
/// entry another instance had queued just before without a notice: the entry stayed unread
/// while events kept coming, until the actor went idle a minute later.
#[actix_web::test]
async fn an_entry_queued_elsewhere_is_not_passed_over_by_the_next_event() {
    let (receiver, app, webhook) = caught_up().await;

    queue_without_notice(&app, &webhook, "1700000000000-7", "stranded").await;
    app.publish(json!({"ev": "after"})).await;
    let got = receiver.wait_for(3, Duration::from_secs(3)).await;
    let types: Vec<String> = got
        .iter()
        .map(|r| r.json()["ev"].as_str().unwrap().to_string())
        .collect();
    assert!(types.contains(&"stranded".to_string()), "{types:?}");
    assert_eq!(got.len(), 3, "{types:?}");
    app.settled(&[&webhook]).await;
    let metrics = app.metrics_text().await;
    assert!(!metrics.contains("hookrouter_audit_repairs_total"), "{metrics}");
}

/// With no further event to notice it, the self-check finds work queued without a notice
/// within a check or two, and counts it as a repair (a lost notice is not a bug).
#[actix_web::test]
async fn work_queued_without_a_notice_is_found_by_the_self_check() {
    let (receiver, app, webhook) = caught_up().await;

    let queued = Instant::now();
    queue_without_notice(&app, &webhook, "1700000000000-8", "unannounced").await;
    let got = receiver.wait_for(2, Duration::from_secs(3)).await;
    println!("found and delivered after {:?}", queued.elapsed());
    assert_eq!(got[1].json()["ev"], "unannounced");
    let metrics = app.metrics_text().await;
    assert!(
        metrics.contains(r#"hookrouter_audit_repairs_total{what="unannounced_entries"} 1"#),
        "{metrics}"
    );
}

/// A 410 answered to the probe of an open circuit disables the webhook, and left the probe
/// slot taken: re-enabled with its receiver fixed, the webhook sent nothing until a restart.
#[actix_web::test]
async fn a_probe_answered_410_does_not_wedge_the_webhook() {
    let fixed = Arc::new(AtomicBool::new(false));
    let fixed_now = fixed.clone();
    let receiver = Receiver::scripted(move |n, _| match (fixed_now.load(Ordering::SeqCst), n) {
        (true, _) => Reply::Status(200),
        (false, 0) => Reply::Status(500),
        (false, _) => Reply::Status(410),
    });
    let app = TestApp::spawn_with(|s| s.circuit.failure_threshold = 1).await;
    let webhook = app.create_webhook(&receiver.url(), &["*"], None).await;
    app.publish(json!({"ev": "first"})).await;
    // 500 opens the circuit; the probe gets 410; the webhook is disabled.
    app.health_until(&webhook, "the webhook disabled by the 410", |h| {
        h["state"] == "disabled"
    })
    .await;
    assert_eq!(receiver.count(), 2);

    fixed.store(true, Ordering::SeqCst);
    let (status, reply) = app.update_webhook(&webhook, json!({"enabled": true})).await;
    assert_eq!(status, 200, "{reply}");
    app.publish(json!({"ev": "second"})).await;
    let got = receiver.wait_for(4, Duration::from_secs(5)).await;
    let mut delivered: Vec<String> = got[2..].iter().map(|r| r.json()["ev"].to_string()).collect();
    delivered.sort_unstable();
    assert_eq!(delivered, [r#""first""#, r#""second""#]);
    app.health_until(&webhook, "healthy again", |h| {
        h["state"] == "healthy" && h["backlog"] == 0
    })
    .await;
}

/// A flush of thousands of outcomes made the settle script fail after it had written part of
/// them (Redis does not undo a script), and the actor wrote the flush again every second:
/// dead letters were appended again and again and the log never written. Every attempt here
/// fails at once (nothing listens), so 8,000 outcomes finish together and a flush holds 6,000.
#[actix_web::test]
async fn a_flush_of_thousands_of_outcomes_is_written_once() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://127.0.0.1:{}/hook", closed.local_addr().unwrap().port());
    drop(closed);
    let events = 8_000;
    let app = TestApp::spawn_with(|s| {
        s.delivery.max_in_flight = events;
        s.retry.max_attempts = 1;
        s.circuit.failure_threshold = 100_000;
        s.attempts.max_len = 100_000;
    })
    .await;
    let webhook = app.create_webhook(&url, &["*"], None).await;
    app.pause(&webhook).await;
    let raws: Vec<Vec<u8>> = (0..events)
        .map(|n| json!({"ev": "user.created", "n": n}).to_string().into_bytes())
        .collect();
    support::publish_many(&app.prefix, &raws).await;
    support::eventually("every event queued", Duration::from_secs(20), || async {
        (app.stream_len(&format!("queue:{webhook}")).await == events as u64).then_some(())
    })
    .await;
    // Resumed, the actor takes the whole queue into its window at once.
    app.resume(&webhook).await;
    support::eventually("the queue emptied", Duration::from_secs(30), || async {
        (app.stream_len(&format!("queue:{webhook}")).await == 0).then_some(())
    })
    .await;
    // A second or two more: a repeating flush would append its dead letters again.
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(app.stream_len(&format!("dead:{webhook}")).await, events as u64);
    // One log entry per flush, one field per attempt.
    let log: Vec<(String, Vec<Field>)> = app
        .redis(
            redis::cmd("XRANGE")
                .arg(app.key(&format!("attempts:{webhook}")))
                .arg("-")
                .arg("+"),
        )
        .await;
    let logged: usize = log.iter().map(|(_, attempts)| attempts.len()).sum();
    assert_eq!(logged, events, "attempts in the log");
}

/// A graceful stop drained the actors running when it began, but new ones could still start
/// during the drain (a dead-letter replay, a work notice, a retry, the sweep): killed at the end
/// with requests under way and their leases held, their deliveries went out again after the
/// restart (three times in all, counting the original) and only after the lease expired.
#[actix_web::test]
async fn a_replay_during_a_graceful_stop_is_delivered_once_after_the_restart() {
    let healed = Arc::new(AtomicBool::new(false));
    let healed_now = healed.clone();
    let replays = Receiver::scripted(move |_, body| match (healed_now.load(Ordering::SeqCst), &body["ev"]) {
        (_, ev) if ev == "b.ok" => Reply::Status(200),
        (false, _) => Reply::Status(500),
        // Longer than what is left of the drain: under way when it ends.
        (true, _) => Reply::Delay(Duration::from_secs(4), 200),
    });
    let slow = Receiver::scripted(|_, _| Reply::Delay(Duration::from_secs(2), 200));
    let prefix = support::TestPrefix::new();
    let env = [
        ("HOOKROUTER__RETRY__MAX_ATTEMPTS", "1"),
        ("HOOKROUTER__DELIVERY__IDLE_STOP_MS", "400"),
        ("HOOKROUTER__SHUTDOWN__GRACE_MS", "8000"),
    ];
    let mut service = ServiceProcess::start(REDIS_URL, &prefix, &env);
    service.wait_until_reading().await;
    let replayed = service.create_webhook(&replays.url(), &["b.*"]).await;
    service.create_webhook(&slow.url(), &["slow"]).await;

    // Three dead letters, then a success, so the webhook's circuit is clean and its actor
    // goes idle and stops: at the stop, it has none.
    let publish = |ev: &str| service.call("POST", "/events", Some(json!({ "ev": ev })));
    for _ in 0..3 {
        publish("b.failing").await;
    }
    support::eventually("three dead letters", Duration::from_secs(10), || async {
        let (_, dead) = service.call("GET", &format!("/webhooks/{replayed}/dead"), None).await?;
        (dead["results"].as_array()?.len() == 3).then_some(())
    })
    .await;
    publish("b.ok").await;
    support::eventually("its actor stopped", Duration::from_secs(10), || async {
        let metrics = metrics_text(&service).await?;
        metrics
            .lines()
            .any(|line| line == "hookrouter_delivery_actors 0")
            .then_some(())
    })
    .await;
    healed.store(true, Ordering::SeqCst);

    // A slow delivery keeps the drain going; during it, the dead letters are replayed.
    publish("slow").await;
    slow.wait_for(1, Duration::from_secs(10)).await;
    service.signal("TERM");
    // The reader stops first, then the drain begins: replay after that.
    support::eventually("the reader stopped", Duration::from_secs(5), || async {
        let (_, health) = service.health().await?;
        (health["reader"] == "stopped").then_some(())
    })
    .await;
    actix_rt::time::sleep(Duration::from_millis(200)).await;
    let (status, reply) = service
        .call("POST", &format!("/webhooks/{replayed}/dead/replay"), None)
        .await
        .expect("the API answers during the drain");
    assert_eq!((status, &reply["replayed"]), (200, &json!(3)), "{reply}");
    let exit = service.terminate();
    assert!(exit.success(), "{exit:?}");
    assert_eq!(slow.count(), 1, "the slow delivery finished within the grace period");

    let restarted = Instant::now();
    service.restart();
    service.wait_until_reading().await;
    support::eventually("the replays delivered", Duration::from_secs(20), || async {
        let (_, health) = service
            .call("GET", &format!("/webhooks/{replayed}/health"), None)
            .await?;
        (health["backlog"] == 0).then_some(())
    })
    .await;
    // When the first replay went out after the restart: at once, not after a lease held by
    // the stopped instance expired.
    let took = replays
        .received()
        .iter()
        .filter(|r| r.json()["ev"] == "b.failing" && r.at > restarted)
        .map(|r| r.at - restarted)
        .min()
        .expect("a replay after the restart");
    let per_delivery = replays.per_delivery();
    let failing: Vec<usize> = replays
        .received()
        .iter()
        .filter(|r| r.json()["ev"] == "b.failing")
        .map(|r| per_delivery[r.header("webhook-id").unwrap()])
        .collect();
    // Each: its failed original and one replay.
    assert!(failing.iter().all(|requests| *requests == 2), "{per_delivery:?}");
    assert!(
        took < Duration::from_secs(5),
        "the first replay went {took:?} after the restart (a lease left behind?)"
    );
}

async fn metrics_text(service: &ServiceProcess) -> Option<String> {
    let mut response = awc::Client::default().get(service.url("/metrics")).send().await.ok()?;
    let body = response.body().limit(16 * 1024 * 1024).await.ok()?;
    String::from_utf8(body.to_vec()).ok()
}

/// Found by the chaos soak: a take of due retries removes them from the due set in Redis; when
/// its answer was lost (Redis restarted, the connection cut), the actor never got them, and
/// they kept their retry state outside the set and outside memory until a restart. Here the
/// proxy in front of Redis cuts the connection right after forwarding the take.
#[actix_web::test]
async fn a_take_of_due_retries_whose_answer_is_lost_loses_nothing() {
    let take = redis::Script::new(include_str!("../src/store/scripts/retry_take.lua"));
    let proxy = support::tcp::RedisProxy::start("127.0.0.1:6379").await;
    let proxied = proxy.url();
    let receiver = Receiver::scripted(|n, _| if n == 0 { Reply::Status(500) } else { Reply::Status(200) });
    let app = TestApp::spawn_with(move |s| {
        s.redis.url = proxied;
        s.circuit.failure_threshold = 100;
    })
    .await;
    // Loaded in Redis, so the take is the one EVALSHA that runs it (not a NOSCRIPT first).
    let _: String = app
        .redis(
            redis::cmd("SCRIPT")
                .arg("LOAD")
                .arg(include_str!("../src/store/scripts/retry_take.lua")),
        )
        .await;
    let webhook = app.create_webhook(&receiver.url(), &["*"], None).await;
    proxy.lose_reply_to(take.get_hash().as_bytes());
    app.publish(json!({"ev": "user.created"})).await;
    support::eventually(
        "the take to run with its answer lost",
        Duration::from_secs(10),
        || async { (proxy.cuts() == 1).then_some(()) },
    )
    .await;
    let got = receiver.wait_for(2, Duration::from_secs(5)).await;
    assert_eq!(got[1].id(), got[0].id(), "the failed delivery, tried again");
    app.settled(&[&webhook]).await;
}
