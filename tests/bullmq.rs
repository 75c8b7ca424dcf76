//! The BullMQ source with WildDuck's real publisher: `tests/node/wildduck-queue.js` adds jobs
//! with the real `bullmq` package (5.23.1, which WildDuck pins, and the newest 5.x) exactly as
//! WildDuck's `lib/events.js` does; hookrouter runs in the test with real Redis and real
//! receivers. Each test checks what receivers got and what BullMQ itself reports afterwards
//! (`Queue.getJobCounts()`, the stalled set, job keys left).
//!
//! Crash and other-Redis tests are in `tests/bullmq_faults.rs`.

mod support;

use std::collections::HashMap;
use std::time::Duration;

use hookrouter::config::Settings;
use serde_json::{json, Value};
use support::bullmq::{Bullmq, WildDuckQueue};
use support::{eventually, Receiver, TestApp, REDIS_URL};

const ANN: &str = "5f1e9d2c8b3a4e0012345678";
const BOB: &str = "5f1e9d2c8b3a4e00bbbbbbbb";
const WAIT: Duration = Duration::from_secs(20);

/// The BullMQ source on, reading a queue under the test's own prefix (so it is cleaned up).
fn with_bullmq(settings: &mut Settings) {
    settings.bullmq.enabled = true;
    settings.bullmq.prefix = format!("{}:wd:bull", settings.redis.prefix);
}

fn queue_of(app: &TestApp, version: Bullmq) -> WildDuckQueue {
    WildDuckQueue::new(version, REDIS_URL, &app.key("wd:bull"))
}

/// `ev` and `user` of each body, sorted.
fn seen(receiver: &Receiver) -> Vec<(String, String)> {
    let mut seen: Vec<(String, String)> = receiver
        .received()
        .iter()
        .map(|r| {
            let body = r.json();
            (
                body["ev"].as_str().unwrap_or_default().into(),
                body["user"].as_str().unwrap_or("-").into(),
            )
        })
        .collect();
    seen.sort();
    seen
}

async fn wildduck_jobs_reach_global_and_user_webhooks(version: Bullmq) {
    let all = Receiver::ok();
    let ann = Receiver::ok();
    let app = TestApp::spawn_with(with_bullmq).await;
    let queue = queue_of(&app, version);
    let global = app.create_webhook(&all.url(), &["*"], None).await;
    app.create_webhook(&ann.url(), &["user.*", "forward added"], Some(ANN))
        .await;

    let before = hookrouter::clock::now_ms();
    let events = [
        json!({"ev": "user.created", "user": ANN, "username": "ann", "name": "Ann", "address": "ann@example.com"}),
        json!({"ev": "user.created", "user": BOB, "username": "bob", "name": "Bob", "address": "bob@example.com"}),
        // An ObjectId in capitals is the same user: lowercased, it reaches ann's webhook.
        json!({"ev": "forward added", "user": ANN.to_uppercase(), "type": "forward", "filter": "6f1e9d2c8b3a4e0012345678",
               "target": "smtp://mx.example.net"}),
        json!({"ev": "mailbox.created", "user": ANN, "mailbox": "6f1e9d2c8b3a4e0012345679", "path": "INBOX/Receipts"}),
        json!({"ev": "address.forwarded.created", "address": "6f1e9d2c8b3a4e001234567a", "value": "fwd@example.com"}),
    ];
    assert_eq!(queue.add(&events).await, 5);
    all.wait_for(5, WAIT).await;
    ann.wait_for(2, WAIT).await;
    let after = hookrouter::clock::now_ms();
    queue.assert_drained().await;

    let expected_all: Vec<(String, String)> = [
        ("address.forwarded.created", "-"),
        ("forward added", ANN),
        ("mailbox.created", ANN),
        ("user.created", ANN),
        ("user.created", BOB),
    ]
    .map(|(ev, user)| (ev.to_string(), user.to_string()))
    .to_vec();
    assert_eq!(seen(&all), expected_all);
    assert_eq!(
        seen(&ann),
        [
            ("forward added".to_string(), ANN.to_string()),
            ("user.created".into(), ANN.into())
        ]
    );
    for request in all.received() {
        let body = request.json();
        // WildDuck's `time` (Date.now() when it published) comes through; fields pass untouched.
        let time = body["time"].as_u64().expect("time");
        assert!(
            before <= time && time <= after,
            "time {time} not in [{before}, {after}]"
        );
        assert!(
            body["id"].as_str().unwrap().starts_with(&format!("{global}:")),
            "{body}"
        );
        assert!(request
            .header("webhook-signature")
            .is_some_and(|s| s.starts_with("v1,")));
        if body["ev"] == "forward added" {
            assert_eq!(
                (&body["target"], &body["filter"]),
                (&json!("smtp://mx.example.net"), &json!("6f1e9d2c8b3a4e0012345678"))
            );
        }
    }

    // WildDuck keeps publishing into the same queue afterwards: its id counter and lists work.
    queue.add(&[json!({"ev": "user.password.changed", "user": ANN})]).await;
    all.wait_for(6, WAIT).await;
    ann.wait_for(3, WAIT).await;
    queue.assert_drained().await;
    let (_, health) = app.health().await;
    assert_eq!(health["bullmq"], "running", "{health}");
    let ids: std::collections::HashSet<String> = all.received().iter().map(|r| r.id()).collect();
    assert_eq!((all.count(), ids.len(), ann.count()), (6, 6, 3));
}

#[actix_web::test]
async fn wildduck_jobs_reach_global_and_user_webhooks_with_bullmq_5_23() {
    wildduck_jobs_reach_global_and_user_webhooks(Bullmq::WildDucks).await;
}

#[actix_web::test]
async fn wildduck_jobs_reach_global_and_user_webhooks_with_the_newest_bullmq() {
    wildduck_jobs_reach_global_and_user_webhooks(Bullmq::Latest).await;
}

#[actix_web::test]
async fn a_job_that_is_not_an_event_is_set_aside_with_its_reason() {
    let receiver = Receiver::ok();
    let app = TestApp::spawn_with(with_bullmq).await;
    let queue = queue_of(&app, Bullmq::WildDucks);
    app.create_webhook(&receiver.url(), &["*"], None).await;
    queue
        .add(&[
            json!({"user": ANN, "note": "no ev"}),
            json!({"ev": "user.created", "user": ANN}),
        ])
        .await;
    receiver.wait_for(1, WAIT).await;
    queue.assert_drained().await;

    let rejected = app.stream_entries("rejected").await;
    assert_eq!(rejected.len(), 1, "{rejected:?}");
    assert_eq!(rejected[0]["reason"], "ev: is required");
    let raw: Value = serde_json::from_str(&rejected[0]["raw"]).expect("the job's data, as WildDuck wrote it");
    assert_eq!((&raw["note"], &raw["user"]), (&json!("no ev"), &json!(ANN)));
    assert!(raw["time"].is_u64(), "{raw}");
    let (_, listed) = app.get("/rejected").await;
    assert_eq!(listed["results"][0]["reason"], "ev: is required");
    assert_eq!(receiver.count(), 1);
}

async fn a_paused_queue_is_left_alone_until_resumed(version: Bullmq) {
    let receiver = Receiver::ok();
    let app = TestApp::spawn_with(|s| {
        with_bullmq(s);
        s.bullmq.block_ms = 100;
    })
    .await;
    let queue = queue_of(&app, version);
    app.create_webhook(&receiver.url(), &["*"], None).await;
    queue.pause().await;
    let events: Vec<Value> = (0..5)
        .map(|n| json!({"ev": "user.created", "user": ANN, "n": n}))
        .collect();
    queue.add(&events).await;
    eventually("the source to see the queue paused", WAIT, || async {
        let (_, health) = app.health().await;
        (health["bullmq"] == "paused").then_some(())
    })
    .await;
    // Ten more cycles of the source with the jobs there (counted by the source itself, so the
    // wait is for cycles that ran, not for time): none is taken.
    let paused_cycles = |metrics: String| {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(r#"hookrouter_bullmq_cycles_total{state="paused"} "#))
            .and_then(|n| n.parse::<u64>().ok())
            .unwrap_or(0)
    };
    let before = paused_cycles(app.metrics_text().await);
    eventually("ten more cycles on the paused queue", WAIT, || async {
        (paused_cycles(app.metrics_text().await) >= before + 10).then_some(())
    })
    .await;
    let counts = queue.counts().await;
    assert_eq!(
        (&counts["paused"], &counts["waiting"], &counts["isPaused"]),
        (&json!(5), &json!(0), &json!(true)),
        "{counts}"
    );
    assert_eq!(receiver.count(), 0);
    assert_eq!(app.stream_len("events").await, 0);

    queue.resume().await;
    receiver.wait_for(5, WAIT).await;
    queue.assert_drained().await;
    let (_, health) = app.health().await;
    assert_eq!(health["bullmq"], "running");
}

#[actix_web::test]
async fn a_paused_queue_is_left_alone_until_resumed_with_bullmq_5_23() {
    a_paused_queue_is_left_alone_until_resumed(Bullmq::WildDucks).await;
}

#[actix_web::test]
async fn a_paused_queue_is_left_alone_until_resumed_with_the_newest_bullmq() {
    a_paused_queue_is_left_alone_until_resumed(Bullmq::Latest).await;
}

#[actix_web::test]
async fn delayed_jobs_wait_until_due_and_prioritized_jobs_are_taken() {
    let receiver = Receiver::ok();
    // A long block: were the wait not cut short at the due time, the job would be seconds late.
    let app = TestApp::spawn_with(|s| {
        with_bullmq(s);
        s.bullmq.block_ms = 6_000;
    })
    .await;
    let queue = queue_of(&app, Bullmq::Latest);
    app.create_webhook(&receiver.url(), &["*"], None).await;
    queue
        .add_with(&[json!({"ev": "later"})], Some(json!({"delay": 1500})))
        .await;
    queue
        .add_with(&[json!({"ev": "urgent"})], Some(json!({"priority": 1})))
        .await;
    let first = receiver.wait_for(1, WAIT).await;
    assert_eq!(first[0].json()["ev"], "urgent");
    let both = receiver.wait_for(2, WAIT).await;
    let later = both[1].json();
    assert_eq!(later["ev"], "later");
    let due = later["time"].as_u64().unwrap() + 1500;
    assert!(
        both[1].at_ms >= due,
        "delivered at {} before it was due at {due}",
        both[1].at_ms
    );
    // Taken when due, not a whole block_ms later (the wait ends at the due time).
    assert!(
        both[1].at_ms < due + 2_500,
        "delivered at {}, due at {due}",
        both[1].at_ms
    );
    queue.assert_drained().await;
}

#[actix_web::test]
async fn a_job_a_dead_wildduck_worker_left_active_comes_back() {
    // WildDuck's own worker took a job and died (kill -9) before hookrouter took over: the job
    // sits in `active`, its lock expiring, and no BullMQ worker is left to notice.
    let bull_prefix = format!("{}:wd:bull", support::unique_prefix());
    let queue = WildDuckQueue::new(Bullmq::WildDucks, REDIS_URL, &bull_prefix);
    queue.add(&[json!({"ev": "orphan", "user": ANN})]).await;
    let died = queue.die_working().await;
    assert_eq!(
        (&died["signal"], &died["active"]),
        (&json!("SIGKILL"), &json!(["1"])),
        "{died}"
    );

    let receiver = Receiver::ok();
    let app = TestApp::spawn_with(|s| {
        s.bullmq.enabled = true;
        s.bullmq.prefix = bull_prefix.clone();
        s.redis.timeout_ms = 500;
        s.bullmq.lock_ms = 2_000;
    })
    .await;
    app.create_webhook(&receiver.url(), &["*"], None).await;
    // BullMQ's two-phase stalled check (every lock_ms): marked, then moved back to wait.
    let got = receiver.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(got[0].json()["ev"], "orphan");
    queue.assert_drained().await;
    support::delete_prefix(&bull_prefix);
}

#[actix_web::test]
async fn two_instances_never_take_the_same_job() {
    const JOBS: usize = 3_000;
    let receiver = Receiver::ok();
    let small_batches = |s: &mut Settings| s.bullmq.batch_size = 10;
    let a = TestApp::spawn_with(|s| {
        with_bullmq(s);
        small_batches(s);
    })
    .await;
    let bull_prefix = a.key("wd:bull");
    // Another hookrouter (its own key prefix, so each delivers only what it took) on the same
    // BullMQ queue.
    let b = TestApp::spawn_with(|s| {
        s.bullmq.enabled = true;
        s.bullmq.prefix = bull_prefix.clone();
        small_batches(s);
    })
    .await;
    let hook_a = a.create_webhook(&receiver.url(), &["*"], None).await;
    let hook_b = b.create_webhook(&receiver.url(), &["*"], None).await;
    let queue = WildDuckQueue::new(Bullmq::WildDucks, REDIS_URL, &bull_prefix);
    let events: Vec<Value> = (0..JOBS).map(|n| json!({"ev": "message.new", "n": n})).collect();
    queue.add(&events).await;
    receiver.wait_for(JOBS, Duration::from_secs(60)).await;
    queue.assert_drained().await;

    let mut per_job: HashMap<u64, usize> = HashMap::new();
    let mut per_instance: HashMap<String, usize> = HashMap::new();
    for request in receiver.received() {
        *per_job.entry(request.json()["n"].as_u64().unwrap()).or_default() += 1;
        let id = request.id();
        let instance = if id.starts_with(&hook_a) {
            "a"
        } else if id.starts_with(&hook_b) {
            "b"
        } else {
            "?"
        };
        *per_instance.entry(instance.into()).or_default() += 1;
    }
    println!("two instances: {JOBS} jobs, taken {per_instance:?}");
    assert_eq!(per_job.len(), JOBS);
    assert!(per_job.values().all(|&c| c == 1), "a job was delivered twice");
    assert_eq!(receiver.count(), JOBS);
    assert!(per_instance.get("a").is_some_and(|&n| n > 0) && per_instance.get("b").is_some_and(|&n| n > 0));
    drop(b);
}
