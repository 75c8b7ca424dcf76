//! Durability across instances, restarts and Redis outages, with real processes.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::json;
use support::process::{RedisProcess, ServiceProcess};
use support::tcp::RedisProxy;
use support::{eventually, Receiver, Reply, TestApp, REDIS_URL};

const WAIT: Duration = Duration::from_secs(15);

/// Event numbers (`n`) a receiver got, without duplicates.
fn distinct_numbers(receiver: &Receiver) -> HashSet<i64> {
    receiver
        .received()
        .iter()
        .filter_map(|r| r.json()["n"].as_i64())
        .collect()
}

/// The `n` of every event in webhook `id`'s queue, one per entry (its `d` field holds the body
/// after the event id, `..."n":2}`).
async fn queued_numbers(app: &TestApp, id: &str) -> Vec<i64> {
    app.stream_entries(&format!("queue:{id}"))
        .await
        .iter()
        .map(|entry| {
            let body = entry.get("d").expect("a queue entry's d field");
            let after = body.split("\"n\":").nth(1).expect("an n in the event");
            let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().expect("n is a number")
        })
        .collect()
}

#[actix_web::test]
async fn changes_made_on_an_api_only_instance_reach_the_delivering_one_within_a_second() {
    let delivering = TestApp::spawn_with(|s| s.webhooks.resync_ms = 60_000).await;
    let api_only = delivering.sibling(|s| s.webhooks.enabled = false).await;
    let first = Receiver::ok();
    let second = Receiver::ok();

    // Create: the delivering instance learns of it (pub/sub, not the slow resync).
    let started = Instant::now();
    let id = api_only.create_webhook(&first.url(), &["*"], None).await;
    eventually("the supervisor to know it", Duration::from_secs(1), || async {
        let (_, health) = delivering.health().await;
        (health["webhooks"] == 1).then_some(())
    })
    .await;
    assert!(started.elapsed() < Duration::from_secs(1));
    api_only.publish(json!({"ev": "a", "n": 1})).await;
    first.wait_for(1, WAIT).await;

    // Update: the new URL is used.
    let (status, _) = api_only.update_webhook(&id, json!({"url": second.url()})).await;
    assert_eq!(status, 200);
    let changed = Instant::now();
    eventually("the new url to be used", Duration::from_secs(2), || async {
        api_only.publish(json!({"ev": "probe"})).await;
        actix_rt::time::sleep(Duration::from_millis(50)).await;
        (second.count() > 0).then_some(())
    })
    .await;
    assert!(changed.elapsed() < Duration::from_secs(1) + Duration::from_millis(100));

    // Delete: the actor stops and nothing more is delivered.
    let (status, _) = api_only.delete_webhook(&id).await;
    assert_eq!(status, 200);
    eventually(
        "the supervisor to forget it and its actor to stop",
        Duration::from_secs(1),
        || async {
            let (_, health) = delivering.health().await;
            (health["webhooks"] == 0 && health["actors"] == 0).then_some(())
        },
    )
    .await;
    let before = second.count();
    api_only.publish(json!({"ev": "a"})).await;
    actix_rt::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(second.count(), before);

    // Health for a webhook whose actor runs elsewhere comes from the stored report.
    let id = api_only.create_webhook(&first.url(), &["*"], None).await;
    api_only.publish(json!({"ev": "a", "n": 2})).await;
    first.wait_for(2, WAIT).await;
    let health = eventually("the stored report", Duration::from_secs(3), || async {
        let (_, health) = api_only.webhook_health(&id).await;
        (health["delivered"] == 1).then_some(health)
    })
    .await;
    assert_eq!(health["state"], "healthy");
}

#[actix_web::test]
async fn kill_dash_nine_mid_backlog_loses_nothing() {
    let prefix = support::TestPrefix::new();
    let receiver = Receiver::scripted(|_, _| Reply::Delay(Duration::from_millis(10), 200));
    let env = [("HOOKROUTER__DELIVERY__MAX_IN_FLIGHT", "4")];
    let mut service = ServiceProcess::start(REDIS_URL, &prefix, &env);
    service.wait_until_serving().await;

    let client = awc::Client::default();
    let mut response = client
        .post(service.url("/webhooks"))
        .send_json(&json!({"type": ["*"], "url": receiver.url()}))
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.body().await);

    let total = 400;
    let events: Vec<_> = (0..total).map(|n| json!({"ev": "message.new", "n": n})).collect();
    let mut response = client.post(service.url("/events")).send_json(&events).await.unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.body().await);

    receiver.wait_for(40, WAIT).await;
    service.kill9();
    let at_kill = distinct_numbers(&receiver).len();
    assert!(at_kill < total as usize, "the backlog was not drained before the kill");

    let service = ServiceProcess::start(REDIS_URL, &prefix, &env);
    service.wait_until_serving().await;
    eventually("every event after the restart", Duration::from_secs(30), || async {
        (distinct_numbers(&receiver).len() == total as usize).then_some(())
    })
    .await;
    let duplicates = receiver.count() - total as usize;
    println!("kill -9 mid-backlog: {total} events, {at_kill} delivered before the kill, {duplicates} duplicates");
    // Only deliveries in flight at the kill (at most max_in_flight = 4, plus the few
    // delivered but not yet removed from the queue) can be repeated.
    assert!(duplicates <= 16, "{duplicates} duplicates");
    drop(service);
}

#[actix_web::test]
async fn starts_while_redis_is_down_and_connects_when_it_comes_up() {
    let mut redis = RedisProcess::unstarted();
    let prefix = support::TestPrefix::new();
    let service = ServiceProcess::start(&redis.url(), &prefix, &[]);
    service.wait_until_serving().await;
    let (status, health) = service.health().await.unwrap();
    assert_eq!(status, 503);
    assert_eq!(health["redis"], "down");
    assert_eq!(health["reader"], "starting");

    redis.start().await;
    eventually("redis to be seen up", WAIT, || async {
        let (status, health) = service.health().await?;
        (status == 200 && health["reader"] == "running").then_some(())
    })
    .await;
    let receiver = Receiver::ok();
    service.create_webhook(&receiver.url(), &["*"]).await;
    let (status, _) = service
        .call("POST", "/events", Some(json!({"ev": "a", "n": 1})))
        .await
        .unwrap();
    assert_eq!(status, 200);
    receiver.wait_for(1, WAIT).await;
}

#[actix_web::test]
async fn a_fan_out_whose_reply_is_lost_is_still_delivered_without_a_restart() {
    let proxy = RedisProxy::start("127.0.0.1:6379").await;
    let proxied = proxy.url();
    let app = TestApp::spawn_with(move |s| s.redis.url = proxied).await;
    let receiver = Receiver::ok();
    let id = app.create_webhook(&receiver.url(), &["*"], None).await;
    // The actor runs and is caught up with its queue: it reads Redis only when told.
    app.publish(json!({"ev": "a", "n": 1})).await;
    receiver.wait_for(1, WAIT).await;
    // Its outcome written too (the entry left the queue), so the counts below are exact.
    app.settled(&[&id]).await;

    // The fan-out script is the only command naming the rejected stream: Redis runs it, the
    // reply never comes back.
    proxy.lose_reply_to(app.key("rejected").as_bytes());
    app.publish(json!({"ev": "a", "n": 2})).await;
    eventually("the fan-out to run with its reply lost", WAIT, || async {
        (proxy.cuts() == 1 && app.stream_len("events").await == 0).then_some(())
    })
    .await;
    // Event 2 is queued, or delivered already (its entry may still be in the queue until the
    // actor's next flush, so the two are a union, not a sum), and queued once.
    let queued = queued_numbers(&app, &id).await;
    let delivered = distinct_numbers(&receiver);
    assert_eq!(
        queued.iter().chain(&delivered).copied().collect::<HashSet<_>>(),
        HashSet::from([1, 2]),
        "queued (or already delivered) although its reply was lost: queued {queued:?}, delivered {delivered:?}"
    );
    assert!(queued.len() <= 1, "queued once: {queued:?}");
    let received = receiver.wait_for(2, WAIT).await;
    assert_eq!(distinct_numbers(&receiver), HashSet::from([1, 2]));
    assert_eq!(received.len(), 2);
    app.settled(&[&id]).await;
}

#[actix_web::test]
async fn an_event_published_after_a_change_on_another_instance_is_routed_with_it() {
    // The API-only instance answers before the delivering one has heard of the change (its
    // notifications arrive 300 ms late, through a slow link); the event is published the
    // moment the answer arrives. The fan-out must route it with the change anyway (it syncs the
    // changed webhooks when it finds its index behind).
    let proxy = RedisProxy::start_slowing_subscribers("127.0.0.1:6379", Duration::from_millis(300)).await;
    let proxied = proxy.url();
    let app = TestApp::spawn_with(move |s| s.redis.url = proxied).await;
    let api = app.sibling(|s| s.webhooks.enabled = false).await;
    let receiver = Receiver::ok();
    let mut ids = Vec::new();
    for n in 0..20 {
        let id = api
            .create_webhook(&format!("{}/{n}", receiver.url()), &[&format!("created.{n}")], None)
            .await;
        app.publish(json!({"ev": format!("created.{n}"), "n": n})).await;
        ids.push(id);
    }
    receiver.wait_for(20, WAIT).await;
    // A change, not only a creation: webhook 0 now wants another type. (Once its first event
    // arrived: an event is routed with the webhook as it is when the event is routed.)
    let (status, _) = api.update_webhook(&ids[0], json!({"type": ["changed.0"]})).await;
    assert_eq!(status, 200);
    app.publish(json!({"ev": "changed.0", "n": 100})).await;
    let received = receiver.wait_for(21, WAIT).await;
    let mut numbers: Vec<i64> = received.iter().map(|r| r.json()["n"].as_i64().unwrap()).collect();
    numbers.sort_unstable();
    let expected: Vec<i64> = (0..20).chain([100]).collect();
    assert_eq!(
        numbers, expected,
        "every event reached the webhook changed just before it"
    );
}

/// Publishes events 1..=10 in one transaction (so the reader reads them as one batch) to
/// `webhooks` webhooks of type `*`, with `max_writes` appends per fan-out script, losing the
/// reply to the first script that carries event 5 (it commits). Asserts that every webhook got
/// every event once; answers the `hookrouter_events_read_total` line of the metrics.
async fn lose_a_reply_mid_batch(webhooks: usize, max_writes: usize) -> String {
    let proxy = RedisProxy::start("127.0.0.1:6379").await;
    let proxied = proxy.url();
    let app = TestApp::spawn_with(move |s| {
        s.redis.url = proxied;
        s.events.max_writes_per_script = max_writes;
    })
    .await;
    let receivers: Vec<Receiver> = (0..webhooks).map(|_| Receiver::ok()).collect();
    let mut ids = Vec::new();
    for receiver in &receivers {
        ids.push(app.create_webhook(&receiver.url(), &["*"], None).await);
    }
    app.publish(json!({"ev": "a", "n": 0})).await;
    for receiver in &receivers {
        receiver.wait_for(1, WAIT).await;
    }

    proxy.lose_reply_to(b"lose-this-reply");
    let mut publish = redis::pipe();
    publish.atomic();
    for n in 1..=10 {
        let mark = if n == 5 { "lose-this-reply" } else { "" };
        let raw = json!({"ev": "a", "n": n, "mark": mark}).to_string();
        publish
            .cmd("XADD")
            .arg(app.key("events"))
            .arg("*")
            .arg("event")
            .arg(raw)
            .ignore();
    }
    let _: () = app.redis_pipe(&publish).await;
    for receiver in &receivers {
        receiver.wait_for(11, WAIT).await;
    }
    assert_eq!(proxy.cuts(), 1, "the script carrying event 5 ran with its reply lost");
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();
    app.settled(&ids).await;
    for receiver in &receivers {
        let mut numbers: Vec<i64> = receiver
            .received()
            .iter()
            .map(|r| r.json()["n"].as_i64().unwrap())
            .collect();
        numbers.sort_unstable();
        assert_eq!(numbers, (0..=10).collect::<Vec<i64>>(), "every event once");
    }
    let progress: Vec<String> = app.redis(redis::cmd("KEYS").arg(app.key("fanout:*"))).await;
    assert!(
        progress.is_empty(),
        "the last part deletes the progress set: {progress:?}"
    );
    let metrics = app.metrics_text().await;
    metrics
        .lines()
        .find(|line| line.starts_with("hookrouter_events_read_total "))
        .unwrap_or_default()
        .to_string()
}

#[actix_web::test]
async fn a_batch_written_in_several_scripts_loses_and_repeats_nothing_when_one_fails() {
    // Two webhooks and 2 appends per script: each event is a script of its own. The 4 before
    // event 5 were written and delivered; the 5 after it stayed pending and were routed again
    // (a batch counts as read when it was routed to its end; the 10 were one batch).
    let read = lose_a_reply_mid_batch(2, 2).await;
    assert_eq!(
        read, "hookrouter_events_read_total 6",
        "event 0, then the 5 left pending"
    );
}

#[actix_web::test]
async fn an_event_written_in_parts_repeats_nothing_when_a_part_fails() {
    // Five webhooks and 2 appends per script: each event is written in 3 parts. Event 5's first
    // part committed with its reply lost; routing it again skips the 2 queues it wrote (the
    // progress set) and writes the other 3.
    let read = lose_a_reply_mid_batch(5, 2).await;
    assert_eq!(
        read, "hookrouter_events_read_total 7",
        "event 0, then events 5 to 10 again"
    );
}
