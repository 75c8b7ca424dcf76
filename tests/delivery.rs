//! End-to-end delivery: events published to the Redis stream reach real HTTP receivers with
//! the right body and headers, the right webhooks, and the right retry behaviour.

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{eventually, Receiver, Reply, TestApp};

const ANN: &str = "5f1e9d2c8b3a4e00aaaaaaaa";
const BOB: &str = "5f1e9d2c8b3a4e00bbbbbbbb";
const WAIT: Duration = Duration::from_secs(10);

#[actix_web::test]
async fn delivers_the_exact_body_and_headers() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::ok();
    let webhook = app.create_webhook(&receiver.url(), &["user.created"], None).await;

    let entry = app
        .publish(json!({
            "ev": "user.created",
            "user": "5f1e9d2c8b3a4e0012345678",
            "username": "ann",
            "name": "Ann",
            "address": "ann@example.com",
            "time": 1_700_000_000_123_i64,
        }))
        .await;

    let received = receiver.wait_for(1, WAIT).await;
    let delivery = &received[0];
    let expected_id = format!("{webhook}:{entry}");
    assert_eq!(
        String::from_utf8(delivery.body.clone()).unwrap(),
        format!(
            r#"{{"id":"{expected_id}","time":1700000000123,"ev":"user.created","user":"5f1e9d2c8b3a4e0012345678","username":"ann","name":"Ann","address":"ann@example.com"}}"#
        )
    );
    assert!(!expected_id.contains('.'));
    assert_eq!(delivery.header("content-type"), Some("application/json"));
    assert_eq!(
        delivery.header("user-agent"),
        Some(concat!("hookrouter/", env!("CARGO_PKG_VERSION")))
    );
    assert_eq!(delivery.header("webhook-id"), Some(expected_id.as_str()));
    let timestamp: u64 = delivery.header("webhook-timestamp").unwrap().parse().unwrap();
    let now = hookrouter::clock::now_ms() / 1000;
    assert!(timestamp <= now && timestamp + 60 > now, "{timestamp} vs {now}");

    // The entry leaves the queue once delivered, and the event stream keeps nothing.
    eventually("the queue to empty", WAIT, || async {
        (app.stream_len(&format!("queue:{webhook}")).await == 0).then_some(())
    })
    .await;
    assert_eq!(app.stream_len("events").await, 0);
}

#[actix_web::test]
async fn stream_time_stands_in_for_a_missing_time() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::ok();
    app.create_webhook(&receiver.url(), &["*"], None).await;
    let entry = app
        .publish(json!({"ev": "mailbox.created", "user": "u1", "path": "INBOX/x"}))
        .await;
    let body = receiver.wait_for(1, WAIT).await[0].json();
    let entry_ms: i64 = entry.split('-').next().unwrap().parse().unwrap();
    assert_eq!(body["time"], json!(entry_ms));
    assert_eq!(body["path"], "INBOX/x");
}

#[actix_web::test]
async fn patterns_match_all_prefixes_at_any_depth_and_exact_names() {
    let app = TestApp::spawn().await;
    let star = Receiver::ok();
    let user_prefix = Receiver::ok();
    let delete_prefix = Receiver::ok();
    let exact = Receiver::ok();
    let ids = [
        app.create_webhook(&star.url(), &["*"], None).await,
        app.create_webhook(&user_prefix.url(), &["user.*"], None).await,
        app.create_webhook(&delete_prefix.url(), &["user.delete.*"], None).await,
        app.create_webhook(&exact.url(), &["marked.spam"], None).await,
    ];

    for ev in [
        "user.created",
        "user.delete.started",
        "user.delete.a.b",
        "marked.spam",
        "marked.ham",
        "user",
        "forward added",
    ] {
        app.publish(json!({ "ev": ev })).await;
    }
    let types = |r: &Receiver| {
        let mut types: Vec<String> = r
            .received()
            .iter()
            .map(|d| d.json()["ev"].as_str().unwrap().to_string())
            .collect();
        types.sort();
        types
    };
    // Everything routed and delivered: a stray delivery would be in the counts now.
    app.settled(&ids.each_ref().map(String::as_str)).await;
    assert_eq!(types(&star).len(), 7);
    assert_eq!(
        types(&user_prefix),
        ["user.created", "user.delete.a.b", "user.delete.started"]
    );
    assert_eq!(types(&delete_prefix), ["user.delete.a.b", "user.delete.started"]);
    assert_eq!(types(&exact), ["marked.spam"]);
}

#[actix_web::test]
async fn user_webhooks_get_only_their_users_events_and_global_ones_get_all() {
    let app = TestApp::spawn().await;
    let global = Receiver::ok();
    let ann = Receiver::ok();
    let bob = Receiver::ok();
    let ids = [
        app.create_webhook(&global.url(), &["*"], None).await,
        app.create_webhook(&ann.url(), &["*"], Some(ANN)).await,
        app.create_webhook(&bob.url(), &["mailbox.*"], Some(BOB)).await,
    ];

    app.publish(json!({"ev": "mailbox.created", "user": ANN, "n": 1})).await;
    app.publish(json!({"ev": "mailbox.created", "user": BOB, "n": 2})).await;
    app.publish(json!({"ev": "address.forwarded.created", "n": 3})).await; // no user
    app.publish(json!({"ev": "user.created", "user": BOB, "n": 4})).await;

    app.settled(&ids.each_ref().map(String::as_str)).await;
    let numbers = |r: &Receiver| {
        r.received()
            .iter()
            .map(|d| d.json()["n"].as_i64().unwrap())
            .collect::<Vec<_>>()
    };
    assert_eq!(numbers(&ann), [1], "ann sees only her own events");
    assert_eq!(numbers(&bob), [2], "bob sees only his mailbox events");
    let mut all = numbers(&global);
    all.sort();
    assert_eq!(all, [1, 2, 3, 4]);
}

#[actix_web::test]
async fn failures_are_retried_with_the_same_delivery_id_until_success() {
    let app = TestApp::spawn().await;
    // 500, 503, then success.
    let receiver = Receiver::scripted(|n, _| match n {
        0 => Reply::Status(500),
        1 => Reply::Status(503),
        _ => Reply::Status(204),
    });
    let webhook = app.create_webhook(&receiver.url(), &["*"], None).await;
    app.publish(json!({"ev": "user.password.changed", "user": "u"})).await;

    let received = receiver.wait_for(3, WAIT).await;
    let ids: Vec<String> = received.iter().map(|r| r.id()).collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{ids:?}");
    assert_eq!(received[0].header("webhook-id"), received[2].header("webhook-id"));
    // The first retry waits initial_delay_ms (50 ms), the second twice that (jitter is 0).
    assert!(received[1].at - received[0].at >= Duration::from_millis(50));
    assert!(received[2].at - received[1].at >= Duration::from_millis(100));

    let health = eventually("a healthy report", WAIT, || async {
        let (_, health) = app.webhook_health(&webhook).await;
        (health["delivered"] == 1 && health["backlog"] == 0).then_some(health)
    })
    .await;
    assert_eq!(health["state"], "healthy");
    assert_eq!(health["failed"], 2);
    assert_eq!(health["consecutiveFailures"], 0);
    assert_eq!(health["lastSuccess"]["status"], 204);
    assert_eq!(health["lastFailure"]["status"], 503);
}

#[actix_web::test]
async fn a_redirect_is_a_failure_and_is_never_followed() {
    let app = TestApp::spawn().await; // max_attempts = 4
    let target = Receiver::ok();
    let location = target.url();
    let redirect = Receiver::scripted(move |_, _| Reply::Redirect(302, location.clone()));
    let id = app.create_webhook(&redirect.url(), &["x"], None).await;
    app.publish(json!({"ev": "x"})).await;
    let health = app.health_until(&id, "a dead letter", |h| h["deadLettered"] == 1).await;
    assert_eq!(health["delivered"], 0);
    assert_eq!(health["failed"], 4);
    assert_eq!(health["lastFailure"]["status"], 302);
    assert_eq!(redirect.count(), 4);
    assert_eq!(target.count(), 0, "the Location was followed");
}

#[actix_web::test]
async fn retry_after_sets_the_wait_within_the_maximum() {
    // Without Retry-After the next attempt would come after 50 ms.
    let app = TestApp::spawn_with(|s| s.retry.max_delay_ms = 1_500).await;
    let polite = Receiver::scripted(|n, _| match n {
        0 => Reply::StatusRetryAfter(503, 1),
        _ => Reply::Status(200),
    });
    let greedy = Receiver::scripted(|n, _| match n {
        0 => Reply::StatusRetryAfter(429, 3_600),
        _ => Reply::Status(200),
    });
    app.create_webhook(&polite.url(), &["a"], None).await;
    app.create_webhook(&greedy.url(), &["a"], None).await;
    app.publish(json!({"ev": "a"})).await;
    let polite_gap = {
        let received = polite.wait_for(2, WAIT).await;
        received[1].at - received[0].at
    };
    let greedy_gap = {
        let received = greedy.wait_for(2, WAIT).await;
        received[1].at - received[0].at
    };
    println!("Retry-After: 1 waited {polite_gap:?}; Retry-After: 3600 with max_delay_ms 1500 waited {greedy_gap:?}");
    assert!(polite_gap >= Duration::from_secs(1), "{polite_gap:?}");
    assert!(polite_gap < Duration::from_millis(1_400), "{polite_gap:?}");
    assert!(greedy_gap >= Duration::from_millis(1_500), "{greedy_gap:?}");
    assert!(
        greedy_gap < Duration::from_millis(3_000),
        "clamped to max_delay_ms: {greedy_gap:?}"
    );
}

#[actix_web::test]
async fn ipv6_literal_destinations_are_delivered() {
    let app = TestApp::spawn().await; // allow_cidrs has ::1/128
    let receiver = Receiver::scripted_on("[::1]:0", |_, _| Reply::Status(200));
    assert!(receiver.url().starts_with("http://[::1]:"), "{}", receiver.url());
    let id = app.create_webhook(&receiver.url(), &["*"], None).await;
    let entry = app.publish(json!({"ev": "a"})).await;
    let received = receiver.wait_for(1, WAIT).await;
    assert_eq!(received[0].id(), format!("{id}:{entry}"));
    let health = app
        .health_until(&id, "the delivery recorded", |h| h["delivered"] == 1)
        .await;
    assert_eq!(health["failed"], 0, "{health}");
}

#[actix_web::test]
async fn exhausted_deliveries_become_dead_letters() {
    let app = TestApp::spawn().await; // max_attempts = 4
    let receiver = Receiver::scripted(|_, _| Reply::Status(500));
    let webhook = app.create_webhook(&receiver.url(), &["*"], None).await;
    let entry = app
        .publish(json!({"ev": "marked.spam", "user": "u", "subject": "win"}))
        .await;

    receiver.wait_for(4, WAIT).await;
    let dead = eventually("a dead letter", WAIT, || async {
        let entries = app.stream_entries(&format!("dead:{webhook}")).await;
        (!entries.is_empty()).then_some(entries)
    })
    .await;
    assert_eq!(dead.len(), 1);
    assert_eq!(dead[0]["id"], format!("{webhook}:{entry}"));
    assert_eq!(dead[0]["attempts"], "4");
    assert_eq!(dead[0]["status"], "500");
    assert_eq!(dead[0]["error"], "HTTP 500 Internal Server Error");
    assert_eq!(dead[0]["ev"], "marked.spam");
    // Nothing is queued, in flight or waiting any more, so no attempt can follow the last.
    app.settled(&[&webhook]).await;
    assert_eq!(receiver.count(), 4, "no attempt after the last");
    let (_, health) = app.webhook_health(&webhook).await;
    assert_eq!(health["deadLettered"], 1);
    assert_eq!(health["failed"], 4);
}

#[actix_web::test]
async fn gone_disables_the_webhook_and_keeps_its_queue() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::scripted(|n, _| if n == 0 { Reply::Status(410) } else { Reply::Status(200) });
    let webhook = app.create_webhook(&receiver.url(), &["*"], None).await;
    app.publish(json!({"ev": "a", "n": 1})).await;
    receiver.wait_for(1, WAIT).await;

    let record = eventually("the webhook to be disabled", WAIT, || async {
        let (_, record) = app.get_webhook(&webhook).await;
        (record["enabled"] == false).then_some(record)
    })
    .await;
    assert!(record["disabledReason"].as_str().unwrap().contains("410"), "{record}");
    let (_, health) = app.webhook_health(&webhook).await;
    assert_eq!(health["state"], "disabled");

    // Nothing new is queued or sent while disabled; the first event stays queued.
    app.publish(json!({"ev": "a", "n": 2})).await;
    eventually("the event routed", WAIT, || async {
        (app.stream_len("events").await == 0).then_some(())
    })
    .await;
    assert_eq!(app.stream_len(&format!("queue:{webhook}")).await, 1);
    let (_, health) = app.webhook_health(&webhook).await;
    assert_eq!(health["inFlight"], 0);
    assert_eq!(receiver.count(), 1);

    // Re-enabled, it delivers what was kept, and new events.
    let (status, _) = app.update_webhook(&webhook, json!({"enabled": true})).await;
    assert_eq!(status, 200);
    app.publish(json!({"ev": "a", "n": 3})).await;
    let received = receiver.wait_for(3, WAIT).await;
    let numbers: Vec<i64> = received[1..].iter().map(|r| r.json()["n"].as_i64().unwrap()).collect();
    assert_eq!(numbers, [1, 3]);
}

#[actix_web::test]
async fn a_hanging_endpoint_does_not_delay_a_healthy_one() {
    let app = TestApp::spawn_with(|s| s.delivery.timeout_ms = 5_000).await;
    let hanging = Receiver::scripted(|_, _| Reply::Hang);
    let healthy = Receiver::ok();
    app.create_webhook(&hanging.url(), &["*"], None).await;
    app.create_webhook(&healthy.url(), &["*"], None).await;

    let started = Instant::now();
    for n in 0..50 {
        app.publish(json!({"ev": "message.new", "n": n})).await;
    }
    healthy.wait_for(50, WAIT).await;
    let took = started.elapsed();
    // The hanging endpoint holds every one of its slots for the 5 s timeout; the healthy
    // webhook must not wait for any of it.
    assert!(took < Duration::from_secs(3), "healthy deliveries took {took:?}");
    assert!(hanging.count() >= 1);
}

/// A receiver that holds a few requests (slow on some events) gets the rest of a backlog in
/// the meantime: the window's free room is used after a moment, not only once a quarter of it
/// is free, which the held requests would prevent until they time out.
#[actix_web::test]
async fn requests_a_receiver_holds_do_not_stall_the_rest_of_the_backlog() {
    let app = TestApp::spawn_with(|s| {
        s.delivery.timeout_ms = 10_000;
        s.delivery.max_in_flight = 16;
    })
    .await;
    // The first 5 requests are never answered: room for 11 stays, short of a batch of 12.
    let receiver = Receiver::scripted(|n, _| if n < 5 { Reply::Hang } else { Reply::Status(200) });
    let id = app.create_webhook(&receiver.url(), &["*"], None).await;
    app.pause(&id).await;
    for n in 0..100 {
        app.publish(json!({"ev": "message.new", "n": n})).await;
    }
    let resumed = Instant::now();
    app.resume(&id).await;
    receiver.wait_for(100, Duration::from_secs(8)).await;
    let took = resumed.elapsed();
    println!("100 queued, 5 of them held by the receiver: the other 95 sent within {took:?} (timeout 10 s)");
    assert!(
        took < Duration::from_secs(5),
        "the backlog waited for the held requests: {took:?}"
    );
    assert_eq!(receiver.per_delivery().len(), 100);
}

#[actix_web::test]
async fn a_malformed_entry_is_set_aside_and_the_next_one_is_delivered() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::ok();
    app.create_webhook(&receiver.url(), &["*"], None).await;

    app.publish_raw(b"{not json").await;
    app.publish_raw(br#"{"ev":"a.*"}"#).await;
    app.publish_raw(b"\xff\xfe\xfd").await;
    let _: String = app
        .redis(redis::cmd("XADD").arg(app.key("events")).arg("*").arg("other").arg("x"))
        .await;
    app.publish(json!({"ev": "user.created", "n": 1})).await;

    let received = receiver.wait_for(1, WAIT).await;
    assert_eq!(received[0].json()["n"], 1);
    let rejected = eventually("4 rejected entries", WAIT, || async {
        let rejected = app.stream_entries("rejected").await;
        (rejected.len() == 4).then_some(rejected)
    })
    .await;
    let reasons: Vec<&str> = rejected.iter().map(|r| r["reason"].as_str()).collect();
    assert!(reasons[0].starts_with("event: is not valid JSON"), "{reasons:?}");
    assert_eq!(reasons[1], "ev: must not contain '*'");
    assert_eq!(reasons[2], "event: is not valid UTF-8");
    assert_eq!(reasons[3], "entry has no `event` field");
    assert_eq!(rejected[0]["raw"], "{not json");
    assert_eq!(app.stream_len("events").await, 0);
    let (_, health) = app.health().await;
    assert_eq!(health["reader"], "running");
}

#[actix_web::test]
async fn post_events_publishes_to_the_stream() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::ok();
    app.create_webhook(&receiver.url(), &["*"], None).await;
    let (status, reply) = app
        .post_events(json!({"ev": "user.created", "user": "u", "k": [1, 2]}))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert!(reply["id"].as_str().unwrap().contains('-'));
    let (status, reply) = app.post_events(json!([{"ev": "a"}, {"ev": "b"}])).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["ids"].as_array().unwrap().len(), 2);
    let received = receiver.wait_for(3, WAIT).await;
    let mut types: Vec<Value> = received.iter().map(|r| r.json()["ev"].clone()).collect();
    types.sort_by_key(|v| v.to_string());
    assert_eq!(types, [json!("a"), json!("b"), json!("user.created")]);
}
