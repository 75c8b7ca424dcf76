//! Event history and replay with real receivers: events are retained after their fan-out
//! (trimmed by time and count), `GET /events/{id}` tells where each delivery stands, a new
//! webhook is back-filled, and a replay of undelivered events sends exactly the dead letters.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use support::{eventually, publish_many, Receiver, Reply, TestApp};

const WAIT: Duration = Duration::from_secs(20);

/// Waits until everything published is routed and `count` events are retained.
async fn routed_and_retained(app: &TestApp, count: u64) {
    eventually("every event routed and retained", WAIT, || async {
        (app.stream_len("events").await == 0 && app.stream_len("retained").await == count).then_some(())
    })
    .await;
}

/// Polls a replay until it ended; its final state.
async fn replay_ended(app: &TestApp, webhook: &str, n: u64) -> Value {
    eventually("the replay to end", WAIT, || async {
        let (status, reply) = app.get(&format!("/webhooks/{webhook}/replays/{n}")).await;
        assert_eq!(status, 200, "{reply}");
        (reply["replay"]["state"] != "running").then(|| reply["replay"].clone())
    })
    .await
}

/// Delivery ids a receiver got a 2xx for (it answers 200 to all), with how many times each.
fn ids(received: &[support::Received]) -> HashMap<String, usize> {
    let mut ids = HashMap::new();
    for delivery in received {
        *ids.entry(delivery.id()).or_insert(0) += 1;
    }
    ids
}

#[actix_web::test]
async fn a_new_webhook_is_back_filled_once_and_a_replay_sends_the_same_ids_again() {
    let app = TestApp::spawn().await;
    let before = hookrouter::clock::now_ms();
    let events: Vec<Vec<u8>> = (0..1000)
        .map(|n| json!({"ev": "user.created", "n": n}).to_string().into_bytes())
        .collect();
    publish_many(&app.prefix, &events).await;
    // Routed to no webhook, and kept.
    routed_and_retained(&app, 1000).await;

    let receiver = Receiver::ok();
    let (status, created) = app
        .post_webhook(json!({"url": receiver.url(), "type": ["user.*"], "since": before}))
        .await;
    assert_eq!(status, 200, "{created}");
    let webhook = created["id"].as_str().unwrap().to_string();
    assert_eq!(created["replay"], 1);
    let first = ids(&receiver.wait_for(1000, WAIT).await);
    let done = replay_ended(&app, &webhook, 1).await;
    assert_eq!(
        (&done["state"], &done["matched"], &done["queued"]),
        (&json!("done"), &json!(1000), &json!(1000))
    );
    app.settled(&[&webhook]).await;
    let (_, progress) = app.get(&format!("/webhooks/{webhook}/replays/1")).await;
    assert_eq!(progress["replay"]["delivered"], 1000, "{progress}");
    assert_eq!(first.len(), 1000, "every event once");
    assert!(first.values().all(|n| *n == 1), "no event twice");
    assert!(first.keys().all(|id| id.starts_with(&format!("{webhook}:"))));

    // The same range again: the same 1,000 delivery ids, once more each.
    let until = hookrouter::clock::now_ms();
    let (status, reply) = app
        .call_raw_json(
            "POST",
            &format!("/webhooks/{webhook}/replay"),
            json!({"since": hookrouter::clock::iso8601(before), "until": until}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply["replay"]["id"], 2);
    let all = ids(&receiver.wait_for(2000, WAIT).await);
    assert_eq!(replay_ended(&app, &webhook, 2).await["queued"], 1000);
    app.settled(&[&webhook]).await;
    assert_eq!(receiver.count(), 2000);
    assert_eq!(all.keys().collect::<HashSet<_>>(), first.keys().collect::<HashSet<_>>());
    assert!(all.values().all(|n| *n == 2));

    // Bad input names the field and the rule, and starts nothing.
    let (status, reply) = app
        .call_raw_json(
            "POST",
            &format!("/webhooks/{webhook}/replay"),
            json!({"since": "yesterday", "until": 5, "only": true}),
        )
        .await;
    assert_eq!(status, 400, "{reply}");
    assert!(
        reply["details"]["since"].as_str().unwrap().contains("ISO 8601"),
        "{reply}"
    );
    assert_eq!(reply["details"]["only"], "is not allowed");
    let (_, list) = app.get(&format!("/webhooks/{webhook}/replays")).await;
    assert_eq!(list["results"].as_array().unwrap().len(), 2);
}

#[actix_web::test]
async fn a_replay_of_undelivered_events_sends_exactly_the_dead_letters() {
    let app = TestApp::spawn().await;
    let down = Arc::new(AtomicBool::new(false));
    let switch = down.clone();
    let receiver = Receiver::scripted(move |_, _| {
        if switch.load(Ordering::SeqCst) {
            Reply::Status(500)
        } else {
            Reply::Status(200)
        }
    });
    let webhook = app.create_webhook(&receiver.url(), &["*"], None).await;
    for n in 0..10 {
        app.publish(json!({"ev": "before", "n": n})).await;
    }
    receiver.wait_for(10, WAIT).await;
    app.settled(&[&webhook]).await;

    // Down long enough for every attempt (4, 50 to 400 ms apart) of five events to fail.
    down.store(true, Ordering::SeqCst);
    for n in 0..5 {
        app.publish(json!({"ev": "while.down", "n": n})).await;
    }
    let dead: HashSet<String> = eventually("five dead letters", WAIT, || async {
        let (_, dead) = app.dead_letters(&webhook, "").await;
        let letters = dead["results"].as_array()?;
        (letters.len() == 5).then(|| letters.iter().map(|l| l["id"].as_str().unwrap().to_string()).collect())
    })
    .await;
    down.store(false, Ordering::SeqCst);
    let seen = receiver.count();

    let (status, reply) = app
        .call_raw_json(
            "POST",
            &format!("/webhooks/{webhook}/replay"),
            json!({"since": 0, "onlyUndelivered": true}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    let done = replay_ended(&app, &webhook, 1).await;
    assert_eq!((&done["matched"], &done["queued"]), (&json!(15), &json!(5)));
    receiver.wait_for(seen + 5, WAIT).await;
    app.settled(&[&webhook]).await;
    let (_, progress) = app.get(&format!("/webhooks/{webhook}/replays")).await;
    assert_eq!(progress["results"][0]["delivered"], 5, "{progress}");
    let again = ids(&receiver.received()[seen..]);
    assert_eq!(
        again.keys().cloned().collect::<HashSet<_>>(),
        dead,
        "exactly the dead letters"
    );
    assert!(again.values().all(|n| *n == 1));
    assert_eq!(receiver.count(), seen + 5, "nothing delivered before is sent again");
    let (_, letters) = app.dead_letters(&webhook, "").await;
    assert_eq!(letters["results"], json!([]), "replayed letters are no longer dead");
}

#[actix_web::test]
async fn an_event_shows_each_delivery_delivered_waiting_or_dead() {
    // Retries 50, 100, 200 ms apart (then dead, after 4 attempts); a Retry-After of up to a
    // minute is honoured, so the 503 waits.
    let app = TestApp::spawn_with(|s| s.retry.max_delay_ms = 60_000).await;
    let ok = Receiver::ok();
    let later = Receiver::scripted(|_, _| Reply::StatusRetryAfter(503, 600));
    let broken = Receiver::scripted(|_, _| Reply::Status(500));
    let delivered = app.create_webhook(&ok.url(), &["user.*"], None).await;
    let waiting = app.create_webhook(&later.url(), &["user.*"], None).await;
    let dead = app.create_webhook(&broken.url(), &["*"], None).await;
    let user = "5f1e9d2c8b3a4e00aaaaaaaa";
    let event = app.publish(json!({"ev": "user.deleted", "user": user, "n": 1})).await;
    app.publish(json!({"ev": "other", "user": user})).await;

    let states = |detail: &Value| -> HashMap<String, String> {
        detail["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["webhook"].as_str().unwrap().into(),
                    d["state"].as_str().unwrap().into(),
                )
            })
            .collect()
    };
    let detail = eventually("the three deliveries to settle", WAIT, || async {
        let (status, detail) = app.get(&format!("/events/{event}")).await;
        let wanted = HashMap::from([
            (delivered.clone(), "delivered".to_string()),
            (waiting.clone(), "retrying".to_string()),
            (dead.clone(), "dead".to_string()),
        ]);
        (status == 200 && states(&detail) == wanted).then_some(detail)
    })
    .await;
    assert_eq!(detail["id"], event);
    assert_eq!(detail["ev"], "user.deleted");
    assert_eq!(detail["user"], user);
    assert_eq!(detail["event"]["n"], 1);
    let of = |webhook: &str| {
        detail["results"]
            .as_array()
            .unwrap()
            .iter()
            .find(|d| d["webhook"] == webhook)
            .unwrap()
            .clone()
    };
    let (good, slow, gone) = (of(&delivered), of(&waiting), of(&dead));
    assert_eq!(good["id"], format!("{delivered}:{event}"));
    assert_eq!(good["attempts"][0]["outcome"], "delivered");
    assert_eq!(slow["attempts"][0]["status"], 503);
    assert!(slow["nextAttempt"].as_str().is_some(), "{slow}");
    let outcomes: Vec<&str> = gone["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["failed", "failed", "failed", "dead"]);

    // The list, newest first, filtered by type and user; unknown and malformed ids.
    let (_, list) = app.get(&format!("/events?type=user.*&user={user}")).await;
    let listed: Vec<&str> = list["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(listed, [event.as_str()]);
    assert_eq!(list["results"][0]["deliveries"], 3);
    let (_, all) = app.get("/events?limit=1").await;
    assert_eq!(all["results"][0]["ev"], "other");
    let (_, next) = app
        .get(&format!("/events?limit=1&next={}", all["nextCursor"].as_str().unwrap()))
        .await;
    assert_eq!(next["results"][0]["id"], event);
    assert_eq!(next["nextCursor"], false, "the last page");
    let (status, missing) = app.get("/events/1-0").await;
    assert_eq!((status, missing["code"].as_str()), (404, Some("EventNotFound")));
    let (status, bad) = app.get("/events/x").await;
    assert_eq!(status, 400);
    assert!(bad["details"]["id"].as_str().unwrap().contains("<ms>-<seq>"));
    let (status, bad) = app
        .get("/events?since=2026-12-02T00:00:00Z&until=2026-12-01T00:00:00Z")
        .await;
    assert_eq!(status, 400);
    assert!(bad["details"]["until"].as_str().unwrap().contains("before since"));
}

#[actix_web::test]
async fn retention_keeps_the_newest_events_up_to_the_count() {
    let app = TestApp::spawn_with(|s| s.events.retain_max = 50).await;
    let first = app.publish(json!({"ev": "a", "n": 0})).await;
    let events: Vec<Vec<u8>> = (1..80)
        .map(|n| json!({"ev": "a", "n": n}).to_string().into_bytes())
        .collect();
    publish_many(&app.prefix, &events).await;
    routed_and_retained(&app, 50).await;
    let index: u64 = app.redis(redis::cmd("HLEN").arg(app.key("retained:index"))).await;
    assert_eq!(index, 50, "the index holds what the stream holds");
    let (_, page) = app.get("/events?limit=250").await;
    let kept: Vec<u64> = page["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"]["n"].as_u64().unwrap())
        .collect();
    assert_eq!(kept, (30..80).rev().collect::<Vec<_>>(), "the newest 50, newest first");
    let (status, _) = app.get(&format!("/events/{first}")).await;
    assert_eq!(status, 404, "the oldest was trimmed");
}

#[actix_web::test]
async fn retention_drops_events_older_than_retain_ms_without_traffic() {
    let app = TestApp::spawn_with(|s| s.events.retain_ms = 1_500).await;
    let kept = app.publish(json!({"ev": "a"})).await;
    routed_and_retained(&app, 1).await;
    let (status, _) = app.get(&format!("/events/{kept}")).await;
    assert_eq!(status, 200);
    // No event comes after it: the replayer's trim removes it once it is 1.5 s old.
    eventually("the old event to be trimmed", WAIT, || async {
        let index: u64 = app.redis(redis::cmd("HLEN").arg(app.key("retained:index"))).await;
        (app.stream_len("retained").await == 0 && index == 0).then_some(())
    })
    .await;
    let (status, reply) = app.get(&format!("/events/{kept}")).await;
    assert_eq!((status, reply["code"].as_str()), (404, Some("EventNotFound")));
}

#[actix_web::test]
async fn an_event_written_in_parts_is_retained_once_with_every_delivery() {
    // Five webhooks, two appends per script: the event is written in three parts.
    let app = TestApp::spawn_with(|s| s.events.max_writes_per_script = 2).await;
    let receiver = Receiver::ok();
    let mut webhooks = Vec::new();
    for n in 0..5 {
        webhooks.push(
            app.create_webhook(&format!("{}/{n}", receiver.url()), &["wide"], None)
                .await,
        );
    }
    let event = app.publish(json!({"ev": "wide"})).await;
    routed_and_retained(&app, 1).await;
    receiver.wait_for(5, WAIT).await;
    let detail = eventually("every delivery delivered", WAIT, || async {
        let (_, detail) = app.get(&format!("/events/{event}")).await;
        let results = detail["results"].as_array()?;
        results
            .iter()
            .all(|d| d["state"] == "delivered")
            .then_some(detail.clone())
    })
    .await;
    let mut shown: Vec<String> = detail["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["webhook"].as_str().unwrap().to_string())
        .collect();
    shown.sort();
    webhooks.sort();
    assert_eq!(shown, webhooks, "every part's deliveries are on the one retained entry");
    let progress: Vec<String> = app.redis(redis::cmd("KEYS").arg(app.key("fanout:*"))).await;
    assert!(progress.is_empty(), "{progress:?}");
}
