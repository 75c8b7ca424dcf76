//! Several instances on one Redis prefix, with the real binary: one owner per webhook through
//! leases, surviving the loss of any instance, rolling restarts, and fencing of an instance
//! that lost its leases while paused. Each test prints its figures and asserts them.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{json, Value};
use support::process::ServiceProcess;
use support::{eventually, publish_many, Receiver, Reply, REDIS_URL};

const MAX_IN_FLIGHT: usize = 16;

fn duplicates(counts: &HashMap<String, usize>) -> usize {
    counts.values().map(|c| c - 1).sum()
}

/// Starts `n` instances on `prefix` with the same settings, each serving when it returns.
async fn instances(n: usize, prefix: &str, env: &[(&str, &str)]) -> Vec<ServiceProcess> {
    let mut started = Vec::new();
    for _ in 0..n {
        started.push(ServiceProcess::start(REDIS_URL, prefix, env));
    }
    for service in &started {
        service.wait_until_reading().await;
    }
    started
}

/// `/instances` as one instance sees it: name → webhooks owned, once `n` delivering
/// instances are live.
async fn owners(service: &ServiceProcess, n: usize) -> HashMap<String, u64> {
    eventually(&format!("{n} live instances"), Duration::from_secs(30), || async {
        let (_, list) = service.call("GET", "/instances", None).await?;
        let results = list["results"].as_array()?;
        let delivering: HashMap<String, u64> = results
            .iter()
            .filter(|i| i["delivering"] == true)
            .map(|i| (i["name"].as_str().unwrap().to_string(), i["webhooks"].as_u64().unwrap()))
            .collect();
        (delivering.len() == n).then_some(delivering)
    })
    .await
}

/// Waits until `services` agree on who owns each of `webhooks` webhooks: each sees all of them
/// delivering, the webhooks each counts as its own (in memory, `/health`) add up to `webhooks`,
/// and that holds a second and more later (past a look at the live instances, every second).
/// Until then two instances can both believe they own a webhook (one has not heard of the
/// other yet), and one hands it over. Name → webhooks owned.
async fn agreed_owners(services: &[ServiceProcess], webhooks: u64) -> HashMap<String, u64> {
    let owned = || async {
        let mut owned = HashMap::new();
        for service in services {
            owners(service, services.len()).await;
            let (_, health) = service.health().await?;
            owned.insert(health["instance"].as_str()?.to_string(), health["webhooks"].as_u64()?);
        }
        (owned.values().sum::<u64>() == webhooks).then_some(owned)
    };
    eventually("the instances to agree on owners", Duration::from_secs(20), || async {
        let before = owned().await?;
        actix_rt::time::sleep(Duration::from_millis(1200)).await;
        (owned().await? == before).then_some(before)
    })
    .await
}

/// Creates `count` webhooks of type `*` through `service`, webhook n to `<receiver>/<n>`; their ids.
async fn create_webhooks(service: &ServiceProcess, receiver: &Receiver, count: usize) -> Vec<String> {
    let mut ids = Vec::new();
    for n in 0..count {
        ids.push(service.create_webhook(&format!("{}/{n}", receiver.url()), &["*"]).await);
    }
    ids
}

fn events(count: usize) -> Vec<Vec<u8>> {
    (0..count)
        .map(|n| json!({"ev": "message.new", "n": n}).to_string().into_bytes())
        .collect()
}

/// Two instances that agree on owners, no fault: every pair is delivered exactly once (a
/// duplicate needs a crash, a pause past the lease, or a receiver that did not answer).
#[actix_web::test]
async fn two_instances_with_default_settings_deliver_everything_exactly_once() {
    const EVENTS: usize = 2_000;
    const WEBHOOKS: usize = 4;
    let prefix = support::TestPrefix::new();
    let services = instances(2, &prefix, &[]).await;
    let receiver = Receiver::ok();
    for n in 0..WEBHOOKS {
        services[n % 2]
            .create_webhook(&format!("{}/{n}", receiver.url()), &["*"])
            .await;
    }
    let owned = agreed_owners(&services, WEBHOOKS as u64).await;
    publish_many(&prefix, &events(EVENTS)).await;
    let total = EVENTS * WEBHOOKS;
    eventually("every pair delivered", Duration::from_secs(60), || async {
        (receiver.per_delivery().len() == total).then_some(())
    })
    .await;
    // Anything still under way has arrived once the queues are empty.
    for service in &services {
        let (_, list) = service.call("GET", "/webhooks?limit=10", None).await.unwrap();
        for webhook in list["results"].as_array().unwrap() {
            let id = webhook["id"].as_str().unwrap();
            eventually("an empty queue", Duration::from_secs(10), || async {
                let (_, health) = service.call("GET", &format!("/webhooks/{id}/health"), None).await?;
                (health["backlog"] == 0).then_some(())
            })
            .await;
        }
    }
    let counts = receiver.per_delivery();
    let dupes = duplicates(&counts);
    println!(
        "2 instances, default settings: {EVENTS} events x {WEBHOOKS} webhooks = {total} pairs, all delivered; \
         {dupes} duplicates; webhooks owned: {owned:?}"
    );
    assert_eq!(dupes, 0, "no fault, no duplicate");
}

#[actix_web::test]
async fn killing_the_busiest_of_three_loses_nothing_and_its_webhooks_resume_within_the_ttl() {
    const EVENTS: usize = 6_000;
    const WEBHOOKS: usize = 6;
    const TTL_MS: u64 = 10_000;
    let prefix = support::TestPrefix::new();
    let mut services = instances(3, &prefix, &[]).await;
    let receiver = Receiver::scripted(|_, _| Reply::Delay(Duration::from_millis(2), 200));
    let ids = create_webhooks(&services[0], &receiver, WEBHOOKS).await;
    owners(&services[0], 3).await;
    publish_many(&prefix, &events(EVENTS)).await;
    let total = EVENTS * WEBHOOKS;
    // A moment of the run, somewhere between 20% and 50% delivered.
    let at = total * (20 + rand::random::<u64>() as usize % 30) / 100;
    eventually("part of the load delivered", Duration::from_secs(60), || async {
        (receiver.per_delivery().len() >= at).then_some(())
    })
    .await;
    // Who delivers what, right now.
    let mut owner_of = HashMap::new();
    for id in &ids {
        let (_, health) = services[0]
            .call("GET", &format!("/webhooks/{id}/health"), None)
            .await
            .unwrap();
        owner_of.insert(id.clone(), health["instance"].as_str().unwrap_or("").to_string());
    }
    let mut names = Vec::new();
    for service in &services {
        names.push(service.instance().await);
    }
    let busiest = (0..3)
        .max_by_key(|i| owner_of.values().filter(|o| **o == names[*i]).count())
        .unwrap();
    let moved: Vec<String> = owner_of
        .iter()
        .filter(|(_, owner)| **owner == names[busiest])
        .map(|(id, _)| id.clone())
        .collect();
    services[busiest].kill9();
    let killed = Instant::now();
    let delivered_at_kill = receiver.per_delivery().len();
    let requests_at_kill = receiver.count();
    let survivor = &services[(busiest + 1) % 3];

    // Each moved webhook delivers again from another instance within the ttl and 2 s: the
    // first request for it after the kill, by the receiver's clock.
    let mut resumed_after = Vec::new();
    for id in &moved {
        let after = eventually(
            &format!("{id} to resume"),
            Duration::from_millis(TTL_MS + 10_000),
            || async {
                let received = receiver.received();
                received[requests_at_kill..]
                    .iter()
                    .find(|r| r.header("webhook-id").is_some_and(|w| w.starts_with(id.as_str())))
                    .map(|r| r.at.duration_since(killed))
            },
        )
        .await;
        let (_, health) = survivor
            .call("GET", &format!("/webhooks/{id}/health"), None)
            .await
            .unwrap();
        assert_ne!(health["instance"], names[busiest].as_str(), "{health}");
        resumed_after.push(after);
    }
    eventually("every pair delivered", Duration::from_secs(120), || async {
        (receiver.per_delivery().len() == total).then_some(())
    })
    .await;
    let counts = receiver.per_delivery();
    let dupes = duplicates(&counts);
    let slowest = resumed_after.iter().max().copied().unwrap_or_default();
    println!(
        "3 instances, kill -9 of the one owning {} of {WEBHOOKS} webhooks after {delivered_at_kill} of {total} pairs: \
         its webhooks resumed elsewhere after {resumed_after:.1?} (bound {TTL_MS} ms + 2 s); all {total} pairs \
         delivered; {dupes} duplicates (bound max_in_flight {MAX_IN_FLIGHT} x {} moved = {})",
        moved.len(),
        moved.len(),
        MAX_IN_FLIGHT * moved.len()
    );
    assert!(!moved.is_empty());
    assert!(
        slowest <= Duration::from_millis(TTL_MS + 2_000),
        "resumed after {slowest:?}"
    );
    assert!(dupes <= MAX_IN_FLIGHT * moved.len(), "{dupes} duplicates");
    drop(services);
}

#[actix_web::test]
async fn webhooks_are_spread_over_three_and_re_spread_when_one_leaves() {
    const WEBHOOKS: usize = 30;
    let prefix = support::TestPrefix::new();
    let mut services = instances(3, &prefix, &[]).await;
    for n in 0..WEBHOOKS {
        services[0]
            .create_webhook(&format!("http://127.0.0.1:9/hook/{n}"), &["*"])
            .await;
    }
    let spread = eventually("30 webhooks owned", Duration::from_secs(15), || async {
        let owned = owners(&services[1], 3).await;
        (owned.values().sum::<u64>() == WEBHOOKS as u64).then_some(owned)
    })
    .await;
    println!("30 webhooks over 3 instances: {spread:?}");
    assert!(spread.values().all(|n| *n > 0), "every instance owns some: {spread:?}");

    let leaving = services[2].instance().await;
    let status = services[2].terminate();
    assert!(status.success(), "{status:?}");
    let respread = eventually("30 webhooks over the other two", Duration::from_secs(15), || async {
        let owned = owners(&services[0], 2).await;
        (owned.values().sum::<u64>() == WEBHOOKS as u64).then_some(owned)
    })
    .await;
    println!("after {leaving} left: {respread:?}");
    assert!(!respread.contains_key(&leaving));
    assert!(respread.values().all(|n| *n > 0), "{respread:?}");
    // Those that stayed kept what they had: only the leaver's webhooks moved.
    for (name, owned) in &respread {
        assert!(
            *owned >= spread[name],
            "{name} lost webhooks: {spread:?} -> {respread:?}"
        );
    }
    services.clear();
}

#[actix_web::test]
async fn a_rolling_restart_of_three_under_load_loses_nothing() {
    const WEBHOOKS: usize = 3;
    let prefix = support::TestPrefix::new();
    let mut services = instances(3, &prefix, &[]).await;
    let receiver = Receiver::ok();
    let ids = create_webhooks(&services[0], &receiver, WEBHOOKS).await;
    owners(&services[0], 3).await;
    // Load keeps coming during the whole restart: 100 events every 100 ms.
    let publishing = {
        let prefix = prefix.to_string();
        actix_rt::spawn(async move {
            let mut published = 0;
            let started = Instant::now();
            while started.elapsed() < Duration::from_secs(12) {
                let batch: Vec<Vec<u8>> = (published..published + 100)
                    .map(|n| json!({"ev": "message.new", "n": n}).to_string().into_bytes())
                    .collect();
                publish_many(&prefix, &batch).await;
                published += 100;
                actix_rt::time::sleep(Duration::from_millis(100)).await;
            }
            published
        })
    };
    for (i, service) in services.iter_mut().enumerate() {
        let status = service.terminate();
        assert!(status.success(), "instance {i} stopped with {status:?}");
        *service = ServiceProcess::start(REDIS_URL, &prefix, &[]);
        service.wait_until_reading().await;
        owners(service, 3).await;
    }
    let published = publishing.await.unwrap();
    let total = published * WEBHOOKS;
    eventually("every pair delivered", Duration::from_secs(60), || async {
        (receiver.per_delivery().len() == total).then_some(())
    })
    .await;
    // Anything still under way has arrived once the queues are empty.
    for id in &ids {
        eventually("an empty queue", Duration::from_secs(10), || async {
            let (_, health) = services[0].call("GET", &format!("/webhooks/{id}/health"), None).await?;
            (health["backlog"] == 0).then_some(())
        })
        .await;
    }
    let counts = receiver.per_delivery();
    let dupes = duplicates(&counts);
    println!(
        "rolling restart of 3 under load: {published} events x {WEBHOOKS} webhooks = {total} pairs, all delivered; \
         {dupes} duplicates"
    );
    // Each instance stopped gracefully (its attempts finished and were recorded before its
    // leases were released) and each new one took its webhooks over by hand-over (drained, the
    // lease renewed meanwhile): nothing is sent twice.
    assert_eq!(dupes, 0, "a graceful restart makes no duplicate");
    services.clear();
}

#[actix_web::test]
async fn an_instance_paused_past_its_leases_writes_nothing_for_webhooks_it_lost() {
    let env = [
        ("HOOKROUTER__LEASES__TTL_MS", "2000"),
        ("HOOKROUTER__REDIS__TIMEOUT_MS", "1000"),
        ("HOOKROUTER__DELIVERY__MAX_IN_FLIGHT", "4"),
        // Intermittent in full runs (see .config/nextest.toml): ownership changes are logged,
        // so a failure's output shows when the webhook moved.
        (
            "RUST_LOG",
            "warn,hookrouter::actors::membership=info,hookrouter::actors::supervisor::owners=info",
        ),
    ];
    let prefix = support::TestPrefix::new();
    let services = instances(2, &prefix, &env).await;
    // The first four requests are held until the test opens the gate: they are under way when
    // their sender is paused, and answered while it cannot read the answers.
    let gate = Arc::new(AtomicBool::new(false));
    let held = gate.clone();
    let receiver = Receiver::scripted(move |n, _| {
        if n < 4 {
            Reply::Gate(held.clone(), 200)
        } else {
            Reply::Status(200)
        }
    });
    let id = services[0].create_webhook(&receiver.url(), &["*"]).await;
    // Both know the webhook's one owner before any event: no hand-over during the test.
    agreed_owners(&services, 1).await;
    publish_many(&prefix, &events(40)).await;
    let under_way: HashSet<String> = receiver
        .wait_for(4, Duration::from_secs(15))
        .await
        .iter()
        .map(|r| r.header("webhook-id").unwrap().to_string())
        .collect();
    let (_, health) = services[0]
        .call("GET", &format!("/webhooks/{id}/health"), None)
        .await
        .unwrap();
    let paused_name = health["instance"].as_str().unwrap().to_string();
    let (paused, other) = if services[0].instance().await == paused_name {
        (0, 1)
    } else {
        (1, 0)
    };

    services[paused].signal("STOP");
    let stopped = Instant::now();
    let stopped_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i128;
    gate.store(true, Ordering::SeqCst);
    let taken_over = eventually("the other instance to take over", Duration::from_secs(20), || async {
        let (_, health) = services[other]
            .call("GET", &format!("/webhooks/{id}/health"), None)
            .await?;
        (health["instance"].is_string() && health["instance"] != paused_name.as_str()).then_some(health)
    })
    .await;
    eventually(
        "every event delivered by the other",
        Duration::from_secs(30),
        || async { (receiver.per_delivery().len() == 40).then_some(()) },
    )
    .await;
    let paused_for = stopped.elapsed();
    services[paused].signal("CONT");
    // It wakes with four answers to read and a heartbeat to send: give it time to write
    // whatever it would write, and to take the webhook back if it is the owner again.
    actix_rt::time::sleep(Duration::from_secs(4)).await;

    let (_, attempts) = services[other]
        .call("GET", &format!("/webhooks/{id}/attempts?limit=250"), None)
        .await
        .unwrap();
    let records = attempts["results"].as_array().unwrap();
    // Written by the paused instance after it was stopped (what it wrote before, it wrote
    // holding the lease).
    let recorded_ms = |a: &Value| {
        let time = a["time"].as_str().unwrap();
        let at = time::OffsetDateTime::parse(time, &time::format_description::well_known::Rfc3339).unwrap();
        at.unix_timestamp_nanos() / 1_000_000
    };
    let stale: Vec<&Value> = records
        .iter()
        .filter(|a| {
            a["instance"] == paused_name.as_str()
                && under_way.contains(a["id"].as_str().unwrap())
                && recorded_ms(a) >= stopped_ms
        })
        .collect();
    let resent: usize = under_way.iter().map(|id| receiver.per_delivery()[id] - 1).sum();
    println!(
        "paused {paused_for:.1?} past a 2000 ms lease with 4 requests under way; {} took over; the 4 were sent \
         again by it ({resent} repeats); after waking, the paused instance recorded {} of them (must be 0)",
        taken_over["instance"],
        stale.len()
    );
    assert!(stale.is_empty(), "the fenced instance recorded {stale:?}");
    for id in &under_way {
        assert!(
            records
                .iter()
                .any(|a| a["id"] == id.as_str() && a["outcome"] == "delivered"),
            "{id} is recorded as delivered by the new owner"
        );
    }
    assert_eq!(resent, 4, "each of the 4 was sent again by the new owner");
    drop(services);
}

/// A webhook whose owner changes while its attempts are under way moves only once they are
/// answered: the old owner's lease is renewed while its actor drains, even past the lease's TTL,
/// so the new owner cannot take the webhook early and send them a second time.
#[actix_web::test]
async fn webhooks_handed_over_while_their_receiver_is_slow_are_sent_once() {
    const WEBHOOKS: usize = 16;
    let env = [
        ("HOOKROUTER__LEASES__TTL_MS", "2000"),
        ("HOOKROUTER__REDIS__TIMEOUT_MS", "1000"),
    ];
    let prefix = support::TestPrefix::new();
    let mut services = instances(1, &prefix, &env).await;
    // Every request is held until the test opens the gate.
    let gate = Arc::new(AtomicBool::new(false));
    let held = gate.clone();
    let receiver = Receiver::scripted(move |_, _| Reply::Gate(held.clone(), 200));
    let ids = create_webhooks(&services[0], &receiver, WEBHOOKS).await;
    agreed_owners(&services, WEBHOOKS as u64).await;
    publish_many(&prefix, &events(1)).await;
    receiver.wait_for(WEBHOOKS, Duration::from_secs(15)).await;

    // A second instance joins while the 16 requests are held: the webhooks it now owns are
    // handed over, and their actors on the first instance drain for twice the lease's TTL.
    services.push(ServiceProcess::start(REDIS_URL, &prefix, &env));
    services[1].wait_until_reading().await;
    let joined = services[1].instance().await;
    let moved = agreed_owners(&services, WEBHOOKS as u64).await[&joined];
    assert!(moved > 0, "some webhooks moved to the new instance");
    actix_rt::time::sleep(Duration::from_secs(4)).await;
    gate.store(true, Ordering::SeqCst);

    for id in &ids {
        eventually("the delivery recorded", Duration::from_secs(30), || async {
            let (_, attempts) = services[1]
                .call("GET", &format!("/webhooks/{id}/attempts"), None)
                .await?;
            attempts["results"]
                .as_array()?
                .iter()
                .any(|a| a["outcome"] == "delivered")
                .then_some(())
        })
        .await;
    }
    let requests = receiver.count();
    println!(
        "{moved} of {WEBHOOKS} webhooks handed over with their request held 4 s past a 2000 ms lease: \
         {requests} requests for {WEBHOOKS} deliveries"
    );
    assert_eq!(
        requests,
        WEBHOOKS,
        "each delivery was sent once: {:?}",
        receiver.per_delivery()
    );
    services.clear();
}
