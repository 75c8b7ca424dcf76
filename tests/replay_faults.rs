//! Replays under load and faults, with the service as a real process: a replay of 200,000
//! events runs in flat memory and stops when cancelled, and a replay outlives the instance
//! running it (`kill -9`).

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::process::ServiceProcess;
use support::{eventually, publish_many, Receiver, TestPrefix, REDIS_URL};

async fn redis() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(REDIS_URL).unwrap();
    client.get_multiplexed_async_connection().await.expect("redis")
}

async fn xlen(conn: &mut redis::aio::MultiplexedConnection, key: &str) -> u64 {
    redis::cmd("XLEN").arg(key).query_async(conn).await.expect("XLEN")
}

/// Publishes `count` events of type `bulk` and waits until all are routed and retained.
async fn retained(prefix: &str, count: u64, timeout: Duration) {
    let events: Vec<Vec<u8>> = (0..count)
        .map(|n| json!({"ev": "bulk", "n": n}).to_string().into_bytes())
        .collect();
    publish_many(prefix, &events).await;
    let conn = redis().await;
    eventually("every event routed and retained", timeout, || {
        let mut conn = conn.clone();
        async move {
            let pending = xlen(&mut conn, &format!("{prefix}:events")).await;
            let kept = xlen(&mut conn, &format!("{prefix}:retained")).await;
            (pending == 0 && kept == count).then_some(())
        }
    })
    .await;
}

async fn call(service: &ServiceProcess, method: &str, path: &str, body: Option<Value>) -> Value {
    let (status, reply) = service.call(method, path, body).await.expect("the service answers");
    assert_eq!(status, 200, "{method} {path}: {reply}");
    reply
}

#[actix_web::test]
async fn a_replay_of_200k_events_runs_in_flat_memory_and_stops_when_cancelled() {
    const EVENTS: u64 = 200_000;
    // The replay waits once the (paused) webhook's queue holds 150,000: half-way and more,
    // whatever the speed of this machine.
    const BACKLOG: u64 = 150_000;
    let prefix = TestPrefix::new();
    let backlog = BACKLOG.to_string();
    let service = ServiceProcess::start(REDIS_URL, &prefix, &[("HOOKROUTER__EVENTS__REPLAY_BACKLOG", &backlog)]);
    service.wait_until_reading().await;
    retained(&prefix, EVENTS, Duration::from_secs(240)).await;
    let receiver = Receiver::ok();
    let webhook = service.create_webhook(&receiver.url(), &["bulk"]).await;
    call(&service, "POST", &format!("/webhooks/{webhook}/pause"), None).await;
    let path = format!("/webhooks/{webhook}/replays/1");
    call(
        &service,
        "POST",
        &format!("/webhooks/{webhook}/replay"),
        Some(json!({"since": 0})),
    )
    .await;

    // Sample memory as it goes: from 20,000 events on (past warm-up) to the backlog.
    let (mut baseline, mut highest) = (None, 0);
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let progress = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "the replay did not reach the backlog in 2 minutes"
        );
        let rss = service.rss_kib();
        let replay = call(&service, "GET", &path, None).await["replay"].clone();
        let matched = replay["matched"].as_u64().unwrap();
        if matched >= 20_000 {
            baseline.get_or_insert(rss);
            highest = highest.max(rss);
        }
        assert_eq!(replay["state"], "running", "{replay}");
        if matched >= BACKLOG {
            break replay;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };
    let cancelled = call(&service, "DELETE", &path, None).await["replay"].clone();
    assert_eq!(cancelled["state"], "cancelled");
    let queued = cancelled["queued"].as_u64().unwrap();
    assert!((BACKLOG..EVENTS).contains(&queued), "cancelled half-way: {cancelled}");
    actix_rt::time::sleep(Duration::from_secs(1)).await;
    let after = call(&service, "GET", &path, None).await["replay"].clone();
    assert_eq!(after["queued"], queued, "nothing queued after the cancel");
    assert_eq!(after["delivered"], 0, "a paused webhook delivers nothing");
    let mut conn = redis().await;
    assert_eq!(xlen(&mut conn, &format!("{}:queue:{webhook}", &*prefix)).await, queued);
    let baseline = baseline.expect("sampled from 20,000 on");
    println!(
        "replay of {EVENTS} retained events: {} matched when sampled last; RSS {} MiB at 20,000, at most {} MiB up to {queued} queued",
        progress["matched"],
        baseline / 1024,
        highest / 1024
    );
    assert!(
        highest < baseline + 16 * 1024,
        "RSS grew from {baseline} to {highest} KiB while replaying"
    );
    assert_eq!(receiver.count(), 0, "a paused webhook gets nothing");
}

#[actix_web::test]
async fn a_replay_finishes_after_the_instance_running_it_is_killed() {
    const EVENTS: u64 = 3_000;
    let prefix = TestPrefix::new();
    let settings = [
        ("HOOKROUTER__REDIS__TIMEOUT_MS", "500"),
        ("HOOKROUTER__LEASES__TTL_MS", "2000"),
        ("HOOKROUTER__EVENTS__REPLAY_BACKLOG", "500"),
    ];
    let mut services = [
        ServiceProcess::start(REDIS_URL, &prefix, &settings),
        ServiceProcess::start(REDIS_URL, &prefix, &settings),
    ];
    for service in &services {
        service.wait_until_reading().await;
    }
    retained(&prefix, EVENTS, Duration::from_secs(60)).await;
    let receiver = Receiver::ok();
    let webhook = services[0].create_webhook(&receiver.url(), &["bulk"]).await;
    // Paused, the replay stops at 500 queued: it is under way when its runner dies.
    call(&services[0], "POST", &format!("/webhooks/{webhook}/pause"), None).await;
    call(
        &services[0],
        "POST",
        &format!("/webhooks/{webhook}/replay"),
        Some(json!({"since": 0})),
    )
    .await;
    let conn = redis().await;
    let lease_key = format!("{}:replay:lease:{webhook}/1", &*prefix);
    let holder: String = eventually("a runner to take the replay", Duration::from_secs(10), || {
        let (mut conn, key) = (conn.clone(), lease_key.clone());
        async move {
            let value: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut conn).await.ok()?;
            value.map(|value| value.split(':').next().unwrap_or_default().to_string())
        }
    })
    .await;
    eventually("the replay to fill the backlog", Duration::from_secs(20), || {
        let (mut conn, key) = (conn.clone(), format!("{}:queue:{webhook}", &*prefix));
        async move { (xlen(&mut conn, &key).await >= 500).then_some(()) }
    })
    .await;
    let names = [services[0].instance().await, services[1].instance().await];
    let runner = names
        .iter()
        .position(|name| *name == holder)
        .expect("the holder is one of the two");
    services[runner].kill9();
    let survivor = &services[1 - runner];

    call(survivor, "POST", &format!("/webhooks/{webhook}/resume"), None).await;
    let done = eventually(
        "the replay to finish on the survivor",
        Duration::from_secs(60),
        || async {
            let (_, reply) = survivor
                .call("GET", &format!("/webhooks/{webhook}/replays/1"), None)
                .await?;
            (reply["replay"]["state"] == "done").then(|| reply["replay"].clone())
        },
    )
    .await;
    assert_eq!((&done["matched"], &done["queued"]), (&json!(EVENTS), &json!(EVENTS)));
    receiver.wait_for(EVENTS as usize, Duration::from_secs(60)).await;
    eventually("the queue to drain", Duration::from_secs(30), || {
        let (mut conn, key) = (conn.clone(), format!("{}:queue:{webhook}", &*prefix));
        async move { (xlen(&mut conn, &key).await == 0).then_some(()) }
    })
    .await;
    let (_, progress) = survivor
        .call("GET", &format!("/webhooks/{webhook}/replays/1"), None)
        .await
        .expect("the survivor answers");
    assert_eq!(progress["replay"]["delivered"], EVENTS, "{progress}");
    let per_delivery = receiver.per_delivery();
    assert_eq!(per_delivery.len() as u64, EVENTS, "every event");
    assert!(per_delivery.values().all(|n| *n == 1), "none twice");
}
