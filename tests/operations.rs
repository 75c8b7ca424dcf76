//! What operators use: the attempt log, dead letters and replay, rejected entries, pause and
//! resume, disabling after failing too long, idle actors, against real receivers. (Retries,
//! the circuit breaker and "retry now": tests/retries.rs.)

mod support;

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::{json, Value};
use support::{eventually, Received, Receiver, Reply, TestApp};

const WAIT: Duration = Duration::from_secs(10);

#[actix_web::test]
async fn the_attempt_log_shows_every_attempt_newest_first_and_pages() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::scripted(|n, _| match n {
        0 => Reply::Status(500),
        1 => Reply::Delay(Duration::from_secs(5), 200), // beyond the 2 s timeout
        _ => Reply::Status(201),
    });
    let id = app.create_webhook(&receiver.url(), &["*"], None).await;
    let entry = app.publish(json!({"ev": "user.created", "user": "u"})).await;
    receiver.wait_for(3, WAIT).await;

    let (status, log) = eventually("three attempts in the log", WAIT, || async {
        let (status, log) = app.get(&format!("/webhooks/{id}/attempts")).await;
        (log["results"].as_array().map_or(0, Vec::len) == 3).then_some((status, log))
    })
    .await;
    assert_eq!(status, 200);
    assert_eq!(log["success"], true);
    assert_eq!(log["nextCursor"], false);
    let attempts = log["results"].as_array().unwrap();
    let delivery_id = format!("{id}:{entry}");
    let numbers: Vec<u64> = attempts.iter().map(|a| a["attempt"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [3, 2, 1], "newest first");
    assert!(attempts
        .iter()
        .all(|a| a["id"] == delivery_id && a["ev"] == "user.created"));
    assert_eq!(attempts[0]["outcome"], "delivered");
    assert_eq!(attempts[0]["status"], 201);
    assert_eq!(attempts[0]["response"], "ok");
    assert_eq!(attempts[1]["outcome"], "failed");
    assert_eq!(attempts[1]["status"], Value::Null);
    assert!(
        attempts[1]["error"].as_str().unwrap().contains("timed out"),
        "{}",
        attempts[1]
    );
    assert!(attempts[1]["latencyMs"].as_u64().unwrap() >= 1_900);
    assert_eq!(attempts[2]["status"], 500);
    assert_eq!(attempts[2]["error"], "HTTP 500 Internal Server Error");
    assert!(attempts[2]["time"].as_str().unwrap().ends_with('Z'));

    let (_, first) = app.get(&format!("/webhooks/{id}/attempts?limit=2")).await;
    assert_eq!(first["results"].as_array().unwrap().len(), 2);
    let next = first["nextCursor"].as_str().expect("a next page");
    let (_, second) = app.get(&format!("/webhooks/{id}/attempts?limit=2&next={next}")).await;
    assert_eq!(second["results"][0]["attempt"], 1);
    assert_eq!(second["nextCursor"], false);

    let (status, reply) = app.get(&format!("/webhooks/{id}/attempts?next=bogus")).await;
    assert_eq!(status, 400, "{reply}");
    let (status, _) = app.get("/webhooks/0123456789abcdef01234567/attempts").await;
    assert_eq!(status, 404);
}

/// The delivery ids in the attempt log, newest first, read page by page (2 at a time, so
/// pages also start inside a flush's entry).
async fn logged_ids(app: &TestApp, id: &str) -> Vec<String> {
    let mut ids = Vec::new();
    let mut next = String::new();
    loop {
        let (_, page) = app.get(&format!("/webhooks/{id}/attempts?limit=2{next}")).await;
        ids.extend(
            page["results"]
                .as_array()
                .unwrap()
                .iter()
                .map(|a| a["id"].as_str().unwrap().to_string()),
        );
        match page["nextCursor"].as_str() {
            Some(cursor) => next = format!("&next={cursor}"),
            None => return ids,
        }
    }
}

#[actix_web::test]
async fn the_attempt_log_keeps_the_newest_max_len_attempts() {
    let app = TestApp::spawn_with(|s| s.attempts.max_len = 5).await;
    let receiver = Receiver::ok();
    let id = app.create_webhook(&receiver.url(), &["*"], None).await;

    // One at a time: every flush logs one attempt, and the log keeps exactly the newest 5.
    let mut delivered = Vec::new();
    for n in 0..8 {
        let entry = app.publish(json!({"ev": "a", "n": n})).await;
        let delivery = format!("{id}:{entry}");
        eventually("the attempt in the log", WAIT, || async {
            let (_, log) = app.get(&format!("/webhooks/{id}/attempts?limit=1")).await;
            (log["results"][0]["id"] == delivery.as_str()).then_some(())
        })
        .await;
        delivered.push(delivery);
    }
    let newest: Vec<String> = delivered.iter().rev().take(5).cloned().collect();
    assert_eq!(logged_ids(&app, &id).await, newest);
    assert_eq!(app.stream_len(&format!("attempts:{id}")).await, 5);

    // A burst: flushes of several attempts each (one log entry per flush). The newest 5
    // attempts are kept, with at most the rest of the oldest kept flush (under max_in_flight).
    for n in 0..40 {
        app.publish(json!({"ev": "a", "n": n})).await;
    }
    receiver.wait_for(48, WAIT).await;
    app.settled(&[&id]).await;
    let max_in_flight = hookrouter::config::Settings::default().delivery.max_in_flight;
    let logged = eventually("the last flush in the log", WAIT, || async {
        let ids = logged_ids(&app, &id).await;
        ids.iter().all(|logged| !delivered.contains(logged)).then_some(ids)
    })
    .await;
    assert!(
        (5..5 + max_in_flight).contains(&logged.len()),
        "{} attempts kept: {logged:?}",
        logged.len()
    );
    let mut distinct = logged.clone();
    distinct.sort();
    distinct.dedup();
    assert_eq!(distinct.len(), logged.len(), "{logged:?}");
    let entries = app.stream_len(&format!("attempts:{id}")).await;
    assert!(
        entries < logged.len() as u64,
        "{entries} entries: the burst's flushes hold several attempts"
    );
}

#[actix_web::test]
async fn dead_letters_can_be_listed_replayed_one_or_all_and_purged() {
    let app = TestApp::spawn_with(|s| s.retry.max_attempts = 1).await;
    let (receiver, healthy) = Receiver::failing_until_healed(Reply::Status(503));
    let id = app.create_webhook(&receiver.url(), &["*"], None).await;
    for n in 0..3 {
        app.publish(json!({"ev": "marked.spam", "n": n, "subject": "hi"})).await;
    }
    let dead = eventually("three dead letters", WAIT, || async {
        let (_, dead) = app.get(&format!("/webhooks/{id}/dead")).await;
        (dead["results"].as_array().map_or(0, Vec::len) == 3).then_some(dead)
    })
    .await;
    let letters = dead["results"].as_array().unwrap();
    let times: Vec<&str> = letters.iter().map(|l| l["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    let mut numbers: Vec<i64> = letters.iter().map(|l| l["event"]["n"].as_i64().unwrap()).collect();
    numbers.sort();
    assert_eq!(numbers, [0, 1, 2]);
    assert_eq!(letters[0]["event"]["ev"], "marked.spam");
    assert_eq!(letters[0]["event"]["subject"], "hi");
    assert_eq!(letters[0]["attempts"], 1);
    assert_eq!(letters[0]["status"], 503);
    assert_eq!(letters[0]["error"], "HTTP 503 Service Unavailable");
    assert!(letters[0]["id"].as_str().unwrap().starts_with(&id));

    healthy.store(true, Ordering::SeqCst);
    let one = letters[2]["id"].as_str().unwrap().to_string();
    let (status, reply) = app
        .call_raw_json("POST", &format!("/webhooks/{id}/dead/replay"), json!({"ids": [one]}))
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["replayed"], 1);
    let received = receiver.wait_for(4, WAIT).await;
    assert_eq!(received[3].id(), one, "the replayed delivery keeps its id");
    let (_, dead) = app.get(&format!("/webhooks/{id}/dead")).await;
    assert_eq!(dead["results"].as_array().unwrap().len(), 2);

    // Replay all (no body), then nothing is left to replay.
    let (status, reply) = app.call_raw("POST", &format!("/webhooks/{id}/dead/replay"), b"").await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["replayed"], 2);
    receiver.wait_for(6, WAIT).await;
    let (_, reply) = app
        .call_raw("POST", &format!("/webhooks/{id}/dead/replay"), b"{}")
        .await;
    assert_eq!(reply["replayed"], 0);

    // Purge.
    healthy.store(false, Ordering::SeqCst);
    app.publish(json!({"ev": "x"})).await;
    eventually("a new dead letter", WAIT, || async {
        (app.stream_len(&format!("dead:{id}")).await == 1).then_some(())
    })
    .await;
    let (status, reply) = app.call_raw("DELETE", &format!("/webhooks/{id}/dead"), b"").await;
    assert_eq!(status, 200);
    assert_eq!(reply["deleted"], 1);
    assert_eq!(app.stream_len(&format!("dead:{id}")).await, 0);

    let (status, reply) = app
        .call_raw("POST", &format!("/webhooks/{id}/dead/replay"), b"{\"ids\": 5}")
        .await;
    assert_eq!(status, 400);
    assert_eq!(reply["code"], "InputValidationError");
}

#[actix_web::test]
async fn rejected_entries_are_listed_with_reasons_and_raw_values() {
    let app = TestApp::spawn().await;
    app.publish_raw(b"nope").await;
    app.publish_raw(b"\xc3\x28").await;
    app.publish_raw(br#"{"user":"u"}"#).await;
    let rejected = eventually("three rejected entries", WAIT, || async {
        let (_, rejected) = app.get("/rejected").await;
        (rejected["results"].as_array().map_or(0, Vec::len) == 3).then_some(rejected)
    })
    .await;
    let results = rejected["results"].as_array().unwrap();
    assert_eq!(results[0]["reason"], "ev: is required");
    assert_eq!(results[0]["raw"], r#"{"user":"u"}"#);
    assert!(results[0].get("rawBase64").is_none());
    assert_eq!(results[1]["reason"], "event: is not valid UTF-8");
    assert_eq!(results[1]["rawBase64"], "wyg=");
    assert!(results[2]["reason"]
        .as_str()
        .unwrap()
        .starts_with("event: is not valid JSON"));
    assert!(results[2]["entry"].as_str().unwrap().contains('-'));
    let (_, page) = app.get("/rejected?limit=1").await;
    assert!(page["nextCursor"].is_string());
}

#[actix_web::test]
async fn a_paused_webhook_queues_but_delivers_nothing_until_resumed() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::ok();
    let id = app.create_webhook(&receiver.url(), &["*"], None).await;
    let (status, reply) = app.call_raw("POST", &format!("/webhooks/{id}/pause"), b"").await;
    assert_eq!((status, reply), (200, json!({"success": true})));
    for n in 0..5 {
        app.publish(json!({"ev": "a", "n": n})).await;
    }
    let health = app.health_until(&id, "5 queued", |h| h["backlog"] == 5).await;
    assert_eq!(health["state"], "paused");
    let (_, webhook) = app.get_webhook(&id).await;
    assert_eq!(webhook["paused"], true);
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(receiver.count(), 0);

    let (status, _) = app.call_raw("POST", &format!("/webhooks/{id}/resume"), b"").await;
    assert_eq!(status, 200);
    receiver.wait_for(5, WAIT).await;
    let health = app.health_until(&id, "drained", |h| h["backlog"] == 0).await;
    assert_eq!(health["state"], "healthy");
    let (_, webhook) = app.get_webhook(&id).await;
    assert!(webhook.get("paused").is_none());
    let (status, _) = app
        .call_raw("POST", "/webhooks/0123456789abcdef01234567/pause", b"")
        .await;
    assert_eq!(status, 404);
}

/// The webhook's only dead letter is the queue entry `broken` (for event `event`), set aside
/// as unreadable because of `problem`.
async fn assert_only_dead_letter_is_unreadable(app: &TestApp, id: &str, event: &str, broken: &str, problem: &str) {
    let (_, dead) = app.dead_letters(id, "").await;
    let dead = dead["results"].as_array().unwrap().clone();
    assert_eq!(dead.len(), 1, "{dead:?}");
    assert_eq!(dead[0]["id"], format!("{id}:{event}"));
    assert_eq!(dead[0]["error"], format!("unreadable queue entry {broken}: {problem}"));
}

#[actix_web::test]
async fn an_unreadable_queue_entry_is_dead_lettered_with_its_reason() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::ok();
    let id = app.create_webhook(&receiver.url(), &["*"], None).await;
    // Only a hand-edited key can hold such an entry: no body.
    let broken: String = app
        .redis(
            redis::cmd("XADD")
                .arg(app.key(&format!("queue:{id}")))
                .arg("*")
                .arg("e")
                .arg("1700000000000-0")
                .arg("ev")
                .arg("a"),
        )
        .await;
    app.publish(json!({"ev": "a", "n": 1})).await;
    receiver.wait_for(1, WAIT).await;
    app.settled(&[&id]).await;
    assert_only_dead_letter_is_unreadable(&app, &id, "1700000000000-0", &broken, "queue entry without a body").await;
    assert_eq!(app.stream_len(&format!("queue:{id}")).await, 0);
}

#[actix_web::test]
async fn queue_entries_written_by_an_earlier_version_are_delivered_after_an_upgrade() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::ok();
    let id = app.create_webhook(&receiver.url(), &["*"], None).await;
    let queue = app.key(&format!("queue:{id}"));
    // Before 2026-11-27 a queue entry had three fields; now it has one, `d`.
    let _: String = app
        .redis(
            redis::cmd("XADD")
                .arg(&queue)
                .arg("*")
                .arg("e")
                .arg("1700000000000-0")
                .arg("ev")
                .arg("user.created")
                .arg("b")
                .arg(r#""time":1700000000000,"ev":"user.created","user":"u1"}"#),
        )
        .await;
    // The current format, broken by hand: no body after the type.
    let broken: String = app
        .redis(
            redis::cmd("XADD")
                .arg(&queue)
                .arg("*")
                .arg("d")
                .arg("1700000000000-1\nuser.created"),
        )
        .await;
    app.publish(json!({"ev": "a", "n": 1})).await;
    let received = receiver.wait_for(2, WAIT).await;
    app.settled(&[&id]).await;
    let old = received
        .iter()
        .map(Received::json)
        .find(|body| body["ev"] == "user.created")
        .expect("the earlier version's entry was delivered");
    assert_eq!(
        old,
        json!({"id": format!("{id}:1700000000000-0"), "time": 1700000000000u64, "ev": "user.created", "user": "u1"})
    );
    assert_only_dead_letter_is_unreadable(&app, &id, "1700000000000-1", &broken, "queue entry without a body").await;
    assert_eq!(receiver.count(), 2);
    assert_eq!(app.stream_len(&format!("queue:{id}")).await, 0);
}

#[actix_web::test]
async fn a_webhook_failing_for_too_long_is_disabled() {
    let app = TestApp::spawn_with(|s| {
        s.circuit.disable_after_ms = 500;
        s.retry.max_attempts = 1_000;
    })
    .await;
    let receiver = Receiver::scripted(|_, _| Reply::Status(500));
    let id = app.create_webhook(&receiver.url(), &["*"], None).await;
    app.publish(json!({"ev": "a"})).await;
    let webhook = eventually("the webhook to be disabled", WAIT, || async {
        let (_, webhook) = app.get_webhook(&id).await;
        (webhook["enabled"] == false).then_some(webhook)
    })
    .await;
    assert!(
        webhook["disabledReason"]
            .as_str()
            .unwrap()
            .starts_with("every delivery failed since"),
        "{webhook}"
    );
    let health = app
        .health_until(&id, "disabled health", |h| h["state"] == "disabled")
        .await;
    assert_eq!(health["backlog"], 1, "the undelivered event stays queued");
}

#[actix_web::test]
async fn idle_actors_stop_and_come_back_without_losing_or_repeating_anything() {
    let app = TestApp::spawn_with(|s| s.delivery.idle_stop_ms = 100).await;
    let receiver = Receiver::ok();
    let id = app.create_webhook(&receiver.url(), &["*"], None).await;
    let (_, health) = app.health().await;
    assert_eq!(
        (health["webhooks"].as_u64(), health["actors"].as_u64()),
        (Some(1), Some(0)),
        "no actor before any work"
    );

    for n in 0..5 {
        app.publish(json!({"ev": "a", "n": n})).await;
    }
    receiver.wait_for(5, WAIT).await;
    eventually("the idle actor to stop", WAIT, || async {
        let (_, health) = app.health().await;
        (health["actors"] == 0).then_some(())
    })
    .await;
    let health = app
        .health_until(&id, "the stored report", |h| h["delivered"] == 5)
        .await;
    assert_eq!(health["state"], "healthy");
    assert_eq!(health["inFlight"], 0);

    // Bursts at gaps around the idle time, so some land while an actor is deciding to stop.
    let mut total = 5;
    for round in 0..30u64 {
        for k in 0..3 {
            app.publish(json!({"ev": "a", "n": total + k})).await;
        }
        total += 3;
        actix_rt::time::sleep(Duration::from_millis(40 + (round * 37) % 130)).await;
    }
    let received = receiver.wait_for(total as usize, WAIT).await;
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    let mut ids: Vec<String> = receiver.received().iter().map(|r| r.id()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), total as usize, "every event delivered");
    assert_eq!(
        receiver.count(),
        total as usize,
        "and none twice ({} requests)",
        received.len()
    );
    app.health_until(&id, "the counters to carry over", |h| h["delivered"] == total)
        .await;
}
