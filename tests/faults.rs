//! Fault injection: the service binary as a child process, real Redis (the shared one, or a
//! private redis-server the test restarts), real receivers on loopback. Each test prints its
//! figures and asserts them; each is bounded in time and count.

mod support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::process::{RedisProcess, ServiceProcess};
use support::tcp::{BlackHole, Flap, Flapping};
use support::{eventually, percentiles, publish_many, Receiver, Reply, REDIS_URL};

/// Publishes 50 `probe` events 10 ms apart and returns the receiver's publish→delivery
/// latency percentiles (p50, p99) in ms.
async fn probe_latency(prefix: &str, receiver: &Receiver, label: &str) -> (f64, f64) {
    let start = receiver.count();
    for n in 0..50 {
        let raw = json!({"ev": "probe", "n": n, "sent": hookrouter::clock::now_ms()})
            .to_string()
            .into_bytes();
        publish_many(prefix, &[raw]).await;
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    let received = receiver.wait_for(start + 50, Duration::from_secs(30)).await;
    let latencies = received[start..]
        .iter()
        .map(|r| r.at_ms.saturating_sub(r.json()["sent"].as_u64().unwrap_or(0)) as f64)
        .collect();
    let (p50, p99, max) = percentiles(latencies);
    println!("healthy webhook latency {label}: p50 {p50:.1} ms, p99 {p99:.1} ms, max {max:.1} ms");
    (p50, p99)
}

/// Pages through a list endpoint (`nextCursor`) and returns every result.
async fn all_pages(service: &ServiceProcess, path: &str) -> Vec<Value> {
    let mut results = Vec::new();
    let mut next: Option<String> = None;
    loop {
        let url = match &next {
            Some(cursor) => format!("{path}?limit=250&next={cursor}"),
            None => format!("{path}?limit=250"),
        };
        let (status, page) = service.call("GET", &url, None).await.expect("the service answers");
        assert_eq!(status, 200, "{page}");
        results.extend(page["results"].as_array().unwrap().iter().cloned());
        match page["nextCursor"].as_str() {
            Some(cursor) => next = Some(cursor.to_string()),
            None => return results,
        }
    }
}

#[actix_web::test]
async fn kill_dash_nine_under_load_delivers_every_pair() {
    const EVENTS: usize = 10_000;
    const WEBHOOKS: usize = 5;
    const MAX_IN_FLIGHT: usize = 16;
    let prefix = support::TestPrefix::new();
    let settings = [
        ("HOOKROUTER__DELIVERY__MAX_IN_FLIGHT", "16"),
        ("HOOKROUTER__RETRY__INITIAL_DELAY_MS", "100"),
        ("HOOKROUTER__RETRY__MAX_DELAY_MS", "400"),
    ];
    // Every 7th event is refused once per webhook: at the kill, some deliveries wait for their
    // retry in Redis and some are being retried; both must survive.
    let refused = std::sync::Arc::new(std::sync::Mutex::new(HashSet::new()));
    let refused_once = refused.clone();
    let receiver = Receiver::scripted(move |_, body| {
        let n = body["n"].as_u64().unwrap_or(1);
        let id = body["id"].as_str().unwrap_or_default().to_string();
        if n % 7 == 0 && refused_once.lock().unwrap().insert(id) {
            Reply::Status(503)
        } else {
            Reply::Status(200)
        }
    });
    let mut service = ServiceProcess::start(REDIS_URL, &prefix, &settings);
    service.wait_until_serving().await;
    for n in 0..WEBHOOKS {
        service.create_webhook(&format!("{}/{n}", receiver.url()), &["*"]).await;
    }

    let events: Vec<Vec<u8>> = (0..EVENTS)
        .map(|n| json!({"ev": "message.new", "n": n}).to_string().into_bytes())
        .collect();
    let started = Instant::now();
    publish_many(&prefix, &events).await;
    let total = EVENTS * WEBHOOKS;
    eventually("30% delivered", Duration::from_secs(60), || async {
        (receiver.per_delivery().len() >= total * 3 / 10).then_some(())
    })
    .await;
    service.kill9();
    let at_kill = receiver.per_delivery().len();
    let killed_at = Instant::now();

    let service = ServiceProcess::start(REDIS_URL, &prefix, &settings);
    service.wait_until_serving().await;
    // Delivered = requested, and requested again if the first request was refused.
    let delivered = |counts: &HashMap<String, usize>| {
        let refused = refused.lock().unwrap();
        counts.len() == total && refused.iter().all(|id| counts.get(id).is_some_and(|c| *c >= 2))
    };
    eventually("every (event, webhook) pair", Duration::from_secs(120), || async {
        delivered(&receiver.per_delivery()).then_some(())
    })
    .await;
    let counts = receiver.per_delivery();
    let refusals = refused.lock().unwrap().len();
    assert_eq!(
        refusals,
        EVENTS.div_ceil(7) * WEBHOOKS,
        "every 7th event refused once per webhook"
    );
    let duplicates: usize = counts.values().map(|c| c - 1).sum::<usize>() - refusals;
    println!(
        "kill -9 under load: {EVENTS} events x {WEBHOOKS} webhooks = {total} pairs; {at_kill} delivered before the kill; \
         {refusals} first attempts refused and retried; all {total} delivered {:.1?} after the restart \
         ({:.1?} in all); {duplicates} duplicates \
         (bound: {WEBHOOKS} webhooks x 2 x max_in_flight {MAX_IN_FLIGHT} = {})",
        killed_at.elapsed(),
        started.elapsed(),
        WEBHOOKS * 2 * MAX_IN_FLIGHT
    );
    assert_eq!(counts.len(), total);
    assert!(duplicates <= WEBHOOKS * 2 * MAX_IN_FLIGHT, "{duplicates} duplicates");
    drop(service);
}

#[actix_web::test]
async fn a_redis_restart_mid_load_is_survived_and_delivery_resumes() {
    let mut redis = RedisProcess::unstarted();
    redis.start().await;
    let prefix = support::TestPrefix::new();
    let service = ServiceProcess::start(&redis.url(), &prefix, &[]);
    service.wait_until_serving().await;
    let receiver = Receiver::ok();
    let webhook = service.create_webhook(&receiver.url(), &["*"]).await;

    // A steady trickle of events throughout.
    let publisher = {
        let url = service.url("/events");
        actix_rt::spawn(async move {
            let client = awc::Client::default();
            for n in 0..400 {
                let _ = client.post(&url).send_json(&json!({"ev": "tick", "n": n})).await;
                actix_rt::time::sleep(Duration::from_millis(25)).await;
            }
        })
    };
    receiver.wait_for(20, Duration::from_secs(10)).await;

    redis.stop();
    let (status, health) = eventually("/health to say redis is down", Duration::from_secs(10), || async {
        service.health().await.filter(|(status, _)| *status == 503)
    })
    .await;
    assert_eq!((status, health["redis"].as_str()), (503, Some("down")));
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    assert!(
        service.health().await.is_some(),
        "the service keeps answering while Redis is down"
    );

    redis.start().await;
    let back = Instant::now();
    let received_before = receiver.count();
    eventually("/health to say redis is up", Duration::from_secs(10), || async {
        service
            .health()
            .await
            .filter(|(status, health)| *status == 200 && health["reader"] == "running")
    })
    .await;
    eventually("delivery of new events", Duration::from_secs(10), || async {
        (receiver.count() > received_before + 5).then_some(())
    })
    .await;
    let resumed = back.elapsed();

    // What the service recreated in the empty Redis: the webhook (restored from memory), the
    // stream and its consumer group.
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let exists: bool = redis::cmd("EXISTS")
        .arg(format!("{prefix}:webhook:{webhook}"))
        .query_async(&mut conn)
        .await
        .unwrap();
    let groups: Vec<redis::Value> = redis::cmd("XINFO")
        .arg("GROUPS")
        .arg(format!("{prefix}:events"))
        .query_async(&mut conn)
        .await
        .unwrap_or_default();
    println!(
        "redis restart mid-load: {} deliveries before, delivery resumed {resumed:.1?} after redis came back; \
         webhook restored: {exists}; consumer groups: {}",
        received_before,
        groups.len()
    );
    assert!(resumed < Duration::from_secs(5), "resumed after {resumed:?}");
    assert!(exists, "the webhook was written back");
    assert_eq!(groups.len(), 1, "the consumer group was recreated");
    publisher.abort();
}

#[actix_web::test]
async fn a_flapping_receiver_gets_everything_eventually_and_the_attempt_log_shows_the_retries() {
    const EVENTS: usize = 300;
    let timeout = Duration::from_millis(300);
    // Half the answers are 500; 10% are connection resets; 10% are slower than the timeout.
    let endpoint = Flapping::start(move |n| match (n * 7919) % 10 {
        0..=4 => Flap::ServerError,
        5 => Flap::Reset,
        6 => Flap::Slow(Duration::from_millis(600)),
        _ => Flap::Ok,
    })
    .await;
    let prefix = support::TestPrefix::new();
    let settings = [
        ("HOOKROUTER__DELIVERY__TIMEOUT_MS", "300"),
        ("HOOKROUTER__RETRY__INITIAL_DELAY_MS", "20"),
        ("HOOKROUTER__RETRY__MAX_DELAY_MS", "200"),
        ("HOOKROUTER__RETRY__MAX_ATTEMPTS", "100"),
        ("HOOKROUTER__CIRCUIT__FAILURE_THRESHOLD", "1000"),
        ("HOOKROUTER__ATTEMPTS__MAX_LEN", "100000"),
    ];
    let service = ServiceProcess::start(REDIS_URL, &prefix, &settings);
    service.wait_until_serving().await;
    let webhook = service.create_webhook(&endpoint.url(), &["*"]).await;
    let events: Vec<Vec<u8>> = (0..EVENTS)
        .map(|n| json!({"ev": "flap", "n": n}).to_string().into_bytes())
        .collect();
    let started = Instant::now();
    publish_many(&prefix, &events).await;

    let delivered = eventually("every event answered 200 once", Duration::from_secs(90), || async {
        let ok: HashSet<String> = endpoint
            .seen()
            .into_iter()
            .filter(|s| s.flap == Flap::Ok)
            .map(|s| s.id)
            .collect();
        (ok.len() == EVENTS).then_some(ok)
    })
    .await;
    let elapsed = started.elapsed();
    let seen = endpoint.seen();
    let by_kind = |kind: fn(&Flap) -> bool| seen.iter().filter(|s| kind(&s.flap)).count();
    let (errors, resets, slow) = (
        by_kind(|f| *f == Flap::ServerError),
        by_kind(|f| *f == Flap::Reset),
        by_kind(|f| matches!(f, Flap::Slow(_))),
    );

    // The attempt log has one record per request and shows the retries.
    let log = eventually(
        "the attempt log to have every attempt",
        Duration::from_secs(10),
        || async {
            let log = all_pages(&service, &format!("/webhooks/{webhook}/attempts")).await;
            (log.len() >= seen.len()).then_some(log)
        },
    )
    .await;
    let retried = log.iter().filter(|a| a["attempt"].as_u64().unwrap_or(0) > 1).count();
    let max_attempt = log.iter().filter_map(|a| a["attempt"].as_u64()).max().unwrap_or(0);
    let outcomes: HashMap<String, usize> = log.iter().fold(HashMap::new(), |mut m, a| {
        *m.entry(a["outcome"].as_str().unwrap_or("").to_string()).or_insert(0) += 1;
        m
    });
    println!(
        "flapping receiver: {EVENTS} events delivered in {elapsed:.1?} over {} requests \
         ({errors} x 500, {resets} resets, {slow} slower than the {timeout:?} timeout); \
         attempt log: {} records, {retried} retries, highest attempt {max_attempt}, outcomes {outcomes:?}",
        seen.len(),
        log.len()
    );
    assert_eq!(delivered.len(), EVENTS);
    assert!(errors > 0 && resets > 0 && slow > 0);
    assert_eq!(log.len(), seen.len(), "one attempt record per request");
    assert_eq!(outcomes.get("delivered"), Some(&EVENTS));
    assert_eq!(outcomes.get("failed").copied().unwrap_or(0), seen.len() - EVENTS);
    assert!(retried > 0);
    assert!(log
        .iter()
        .any(|a| a["error"].as_str().is_some_and(|e| e.contains("timed out"))));
    let (_, health) = service
        .call("GET", &format!("/webhooks/{webhook}/health"), None)
        .await
        .unwrap();
    assert_eq!(health["backlog"], 0);
    assert_eq!(health["deadLettered"], 0);
}

#[actix_web::test]
async fn poison_input_is_set_aside_and_every_valid_event_is_delivered() {
    const EACH: usize = 1_000;
    let prefix = support::TestPrefix::new();
    let service = ServiceProcess::start(REDIS_URL, &prefix, &[("HOOKROUTER__EVENTS__MAX_BYTES", "2048")]);
    service.wait_until_reading().await;
    let receiver = Receiver::ok();
    service.create_webhook(&receiver.url(), &["*"]).await;

    let mut raws = Vec::new();
    let mut kinds = HashMap::new();
    for n in 0..EACH {
        let (kind, bad): (&str, Vec<u8>) = match n % 5 {
            0 => ("not JSON", format!("{{broken {n}").into_bytes()),
            1 => ("missing ev", json!({"user": "u", "n": n}).to_string().into_bytes()),
            2 => (
                "bad ev",
                json!({"ev": if n % 2 == 0 { json!("a.*") } else { json!(42) }, "n": n})
                    .to_string()
                    .into_bytes(),
            ),
            3 => (
                "oversized",
                json!({"ev": "big", "pad": "x".repeat(4096)}).to_string().into_bytes(),
            ),
            _ => ("not UTF-8", vec![0xff, 0xfe, b'{', (n % 200) as u8]),
        };
        *kinds.entry(kind).or_insert(0) += 1;
        raws.push(bad);
        raws.push(json!({"ev": "valid", "n": n}).to_string().into_bytes());
    }
    let watcher = {
        let url = service.url("/health");
        actix_rt::spawn(async move {
            let client = awc::Client::default();
            let mut states = HashSet::new();
            for _ in 0..100 {
                if let Ok(mut response) = client.get(&url).send().await {
                    if let Ok(health) = response.json::<Value>().await {
                        states.insert(health["reader"].as_str().unwrap_or("").to_string());
                    }
                }
                actix_rt::time::sleep(Duration::from_millis(20)).await;
            }
            states
        })
    };
    let started = Instant::now();
    publish_many(&prefix, &raws).await;
    eventually("every valid event", Duration::from_secs(60), || async {
        let numbers: HashSet<i64> = receiver
            .received()
            .iter()
            .filter_map(|r| r.json()["n"].as_i64())
            .collect();
        (numbers.len() == EACH).then_some(())
    })
    .await;
    let elapsed = started.elapsed();
    let rejected = all_pages(&service, "/rejected").await;
    let reasons: HashMap<String, usize> = rejected.iter().fold(HashMap::new(), |mut m, r| {
        let reason = r["reason"].as_str().unwrap_or("");
        let key = reason
            .split(" (")
            .next()
            .unwrap_or(reason)
            .split(", larger")
            .next()
            .unwrap_or(reason);
        *m.entry(key.to_string()).or_insert(0) += 1;
        m
    });
    let states = watcher.await.unwrap();
    println!(
        "poison input: {EACH} malformed ({kinds:?}) interleaved with {EACH} valid; all valid delivered in {elapsed:.1?}; \
         {} rejected, by reason {reasons:?}; reader states seen {states:?}",
        rejected.len()
    );
    assert_eq!(rejected.len(), EACH);
    assert_eq!(receiver.count(), EACH, "nothing malformed was delivered");
    assert!(rejected.iter().all(|r| !r["reason"].as_str().unwrap_or("").is_empty()));
    assert_eq!(reasons.get("event: is not valid UTF-8"), Some(&200));
    assert_eq!(reasons.get("ev: is required"), Some(&200));
    assert_eq!(
        states,
        HashSet::from(["running".to_string()]),
        "the reader never stopped"
    );
    let (_, health) = service.health().await.unwrap();
    assert_eq!(health["lag"], 0);
}

#[actix_web::test]
async fn a_dead_endpoint_backlog_keeps_memory_flat_and_others_fast_then_drains() {
    const BACKLOG: usize = 50_000;
    let black_hole = BlackHole::start().await;
    let dead_port = black_hole.port;
    let prefix = support::TestPrefix::new();
    let settings = [
        ("HOOKROUTER__DELIVERY__TIMEOUT_MS", "500"),
        ("HOOKROUTER__RETRY__INITIAL_DELAY_MS", "200"),
        ("HOOKROUTER__RETRY__MAX_DELAY_MS", "500"),
        ("HOOKROUTER__RETRY__MAX_ATTEMPTS", "1000"),
        ("HOOKROUTER__CIRCUIT__PROBE_INITIAL_MS", "200"),
        ("HOOKROUTER__CIRCUIT__PROBE_MAX_MS", "1000"),
    ];
    let service = ServiceProcess::start(REDIS_URL, &prefix, &settings);
    service.wait_until_serving().await;
    let healthy = Receiver::ok();
    let dead = service.create_webhook(&black_hole.url(), &["bulk", "probe"]).await;
    service.create_webhook(&healthy.url(), &["probe"]).await;

    let (_, p99_before) = probe_latency(&prefix, &healthy, "before the backlog").await;
    let rss_before = service.rss_kib();

    let bulk: Vec<Vec<u8>> = (0..BACKLOG)
        .map(|n| json!({"ev": "bulk", "n": n}).to_string().into_bytes())
        .collect();
    let started = Instant::now();
    publish_many(&prefix, &bulk).await;
    let health = eventually("the whole backlog to be queued", Duration::from_secs(60), || async {
        let (_, health) = service.call("GET", &format!("/webhooks/{dead}/health"), None).await?;
        let backlog = health["backlog"].as_u64()?;
        (backlog >= (BACKLOG + 50) as u64).then_some(health)
    })
    .await;
    let queued_in = started.elapsed();
    let (_, p99_during) = probe_latency(&prefix, &healthy, "during the backlog").await;
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    let rss_during = service.rss_kib();
    println!(
        "dead endpoint: {BACKLOG} events queued in {queued_in:.1?}; backlog reported {}; state {}; \
         in flight {}; the black hole saw {} connections; RSS before {} MiB, with the backlog {} MiB",
        health["backlog"],
        health["state"],
        health["inFlight"],
        black_hole.accepted(),
        rss_before / 1024,
        rss_during / 1024
    );
    assert_eq!(health["backlog"], (BACKLOG + 50) as u64, "the backlog counter is exact");
    assert!(health["inFlight"].as_u64().unwrap() <= 16);
    assert!(
        rss_during < rss_before + 30 * 1024,
        "RSS grew from {rss_before} to {rss_during} KiB"
    );
    assert!(
        p99_during <= p99_before.max(5.0) * 4.0 + 50.0,
        "healthy p99 went from {p99_before} to {p99_during} ms"
    );

    // The endpoint comes back on the same port: the probe succeeds and the backlog drains.
    black_hole.stop();
    let revived = loop {
        match std::net::TcpListener::bind(("127.0.0.1", dead_port)) {
            Ok(listener) => break Receiver::on_listener(listener, |_, _| Reply::Status(200)),
            Err(_) => actix_rt::time::sleep(Duration::from_millis(50)).await,
        }
    };
    let back = Instant::now();
    eventually("the backlog to drain", Duration::from_secs(120), || async {
        let (_, health) = service.call("GET", &format!("/webhooks/{dead}/health"), None).await?;
        (health["backlog"] == 0).then_some(())
    })
    .await;
    let drained_in = back.elapsed();
    let rss_after = service.rss_kib();
    let distinct: HashSet<String> = revived.per_delivery().into_keys().collect();
    println!(
        "dead endpoint back: {} deliveries drained in {drained_in:.1?} ({:.0}/s); RSS after draining {} MiB",
        distinct.len(),
        distinct.len() as f64 / drained_in.as_secs_f64(),
        rss_after / 1024
    );
    // The bulk events and the 100 probe events published while it was dead, each once at least.
    assert_eq!(distinct.len(), BACKLOG + 100, "{} delivered", distinct.len());
}

#[actix_web::test]
async fn sigterm_finishes_what_is_in_flight_and_leaves_the_rest_queued() {
    const EVENTS: usize = 40;
    let prefix = support::TestPrefix::new();
    let settings = [
        ("HOOKROUTER__DELIVERY__MAX_IN_FLIGHT", "4"),
        ("HOOKROUTER__SHUTDOWN__GRACE_MS", "5000"),
    ];
    let receiver = Receiver::scripted(|_, _| Reply::Delay(Duration::from_millis(700), 200));
    let mut service = ServiceProcess::start(REDIS_URL, &prefix, &settings);
    service.wait_until_serving().await;
    let webhook = service.create_webhook(&receiver.url(), &["*"]).await;
    let events: Vec<Vec<u8>> = (0..EVENTS)
        .map(|n| json!({"ev": "slow", "n": n}).to_string().into_bytes())
        .collect();
    publish_many(&prefix, &events).await;
    receiver.wait_for(6, Duration::from_secs(10)).await; // a second round is under way

    let requested = receiver.count();
    let terminated = Instant::now();
    let status = service.terminate();
    let took = terminated.elapsed();
    let answered_before_exit = receiver.count();
    let queue_len: u64 = {
        let client = redis::Client::open(REDIS_URL).unwrap();
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        redis::cmd("XLEN")
            .arg(format!("{prefix}:queue:{webhook}"))
            .query_async(&mut conn)
            .await
            .unwrap()
    };
    println!(
        "graceful shutdown: {requested} requests sent before SIGTERM; exited with {status} after {took:.1?}; \
         {queue_len} of {EVENTS} deliveries left queued"
    );
    assert!(status.success(), "exit status {status}");
    assert!(took < Duration::from_secs(5), "shutdown took {took:?}");
    assert!(
        took >= Duration::from_millis(100),
        "it waited for the deliveries under way"
    );
    assert_eq!(
        queue_len as usize,
        EVENTS - answered_before_exit,
        "only what was delivered left the queue"
    );

    let service = ServiceProcess::start(REDIS_URL, &prefix, &settings);
    service.wait_until_serving().await;
    eventually("the rest after the restart", Duration::from_secs(60), || async {
        (receiver.per_delivery().len() == EVENTS).then_some(())
    })
    .await;
    let duplicates = receiver.count() - EVENTS;
    println!("graceful shutdown: all {EVENTS} delivered after the restart, {duplicates} duplicates");
    assert_eq!(
        duplicates, 0,
        "attempts under way finished and were recorded before the exit"
    );
}
