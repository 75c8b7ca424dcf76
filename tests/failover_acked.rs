//! A Sentinel failover with `[redis] min_replicas_acked = 1`, counted exactly, with real
//! processes on loopback: a primary, two replicas (so the new primary still has one to confirm
//! writes) and three sentinels; two hookrouter instances; steady load through all three sources
//! at once — `POST /events`, a producer `XADD`ing to the event stream, and WildDuck's BullMQ
//! queue fed by the real `bullmq` package — and a `kill -9` of the primary mid-load.
//!
//! What each source calls acknowledged, and so what must reach every webhook:
//! - `POST /events`: answered 200 (hookrouter answers only once a replica holds the event);
//! - the stream: the producer's `XADD` returned an id **and** its own `WAIT 1` on the same
//!   connection then answered 1. Redis itself acknowledges a producer's `XADD`; hookrouter never
//!   saw it, so `min_replicas_acked` cannot cover it: an entry the primary took but had not
//!   replicated when it died is gone, and only the producer's `WAIT` tells it so (README,
//!   "Production Redis");
//! - BullMQ: the job's `add` resolved and a `WAIT 1` on the queue's connection answered 1 (the
//!   same reasoning; WildDuck itself does not wait, so its last jobs before a failover can be
//!   lost in Redis before hookrouter could see them).
//!
//! Everything else a producer sent (a 503, an error, a `WAIT` that answered 0) may or may not be
//! delivered; it is counted, not required. Duplicates are counted and bounded: none delivered
//! more than twice, and only of events sent from 5 s before the kill to 5 s after delivery
//! resumed (the reasons are where it is asserted).

mod support;

use std::cell::Cell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::bullmq::{Bullmq, WildDuckQueue};
use support::failover_load::{bullmq_producer, post_producer, stream_producer, Log, Sent};
use support::process::ServiceProcess;
use support::sentinel::{ask, one_owner_each_on, SentinelSet, MASTER};
use support::{eventually, unique_prefix, Receiver};

const WEBHOOKS: usize = 3;
const SOURCES: [&str; 3] = ["post", "stream", "bullmq"];

/// Deliveries per (webhook, source, n).
fn delivered(receiver: &Receiver) -> HashMap<(String, String, u64), usize> {
    let mut pairs = HashMap::new();
    for request in receiver.received() {
        let webhook = request.header("webhook-id").unwrap_or_default();
        let webhook = webhook.split(':').next().unwrap_or_default().to_string();
        let body = request.json();
        let source = body["src"].as_str().expect("a source").to_string();
        let n = body["n"].as_u64().expect("a numbered event");
        *pairs.entry((webhook, source, n)).or_default() += 1;
    }
    pairs
}

/// How many webhooks received each (source, n).
fn reach(pairs: &HashMap<(String, String, u64), usize>) -> HashMap<(String, u64), usize> {
    let mut reach = HashMap::new();
    for (_, source, n) in pairs.keys() {
        *reach.entry((source.clone(), *n)).or_default() += 1;
    }
    reach
}

#[actix_web::test]
async fn with_min_replicas_acked_a_failover_loses_no_acknowledged_event_from_any_source() {
    // Down after 2 s: at 1 s the sentinels were seen failing over a second time on the loaded
    // machine, about 12 s after the first (not what is under test here).
    let mut set = SentinelSet::start(2, Duration::from_secs(2)).await;
    let prefix = unique_prefix();
    let sentinel_ports: Vec<u16> = set.sentinels.iter().map(|s| s.port).collect();
    let mut env = set.service_env();
    env.extend([
        ("HOOKROUTER__REDIS__TIMEOUT_MS", "1000".to_string()),
        ("HOOKROUTER__REDIS__MIN_REPLICAS_ACKED", "1".to_string()),
        ("HOOKROUTER__REDIS__REPLICA_WAIT_MS", "500".to_string()),
        ("HOOKROUTER__LEASES__TTL_MS", "4000".to_string()),
        ("HOOKROUTER__BULLMQ__ENABLED", "true".to_string()),
        ("HOOKROUTER__BULLMQ__PREFIX", format!("{prefix}:wd:bull")),
    ]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let logs: Vec<_> = (0..2)
        .map(|n| std::env::temp_dir().join(format!("{prefix}-{n}.log")))
        .collect();
    // The URL's host and port are replaced by the sentinels' answer.
    let mut services: Vec<ServiceProcess> = logs
        .iter()
        .map(|log| ServiceProcess::start_logging("redis://127.0.0.1:1", &prefix, &env, Some(log)))
        .collect();
    for service in &services {
        service.wait_until_reading().await;
    }
    let receiver = Receiver::ok();
    for n in 0..WEBHOOKS {
        let url = format!("{}/{n}", receiver.url());
        let body = json!({"type": ["*"], "url": url});
        // The replicas may still be syncing: a change waits for one like any other write, and
        // one answered 503 may have been made all the same (README): look before trying again,
        // or a second webhook with this URL would get every event too.
        eventually("a webhook created", Duration::from_secs(15), || async {
            let service = &services[n % 2];
            let (_, list) = service.call("GET", "/webhooks?limit=250", None).await?;
            if list["results"]
                .as_array()?
                .iter()
                .any(|webhook| webhook["url"] == url.as_str())
            {
                return Some(());
            }
            let (status, _) = service.call("POST", "/webhooks", Some(body.clone())).await?;
            (status == 200).then_some(())
        })
        .await;
    }

    let log: Log = Rc::default();
    let stop = Rc::new(Cell::new(false));
    let urls: Vec<String> = services.iter().map(|s| s.url("/events")).collect();
    let stream_key = format!("{prefix}:events");
    let addresses: Vec<String> = sentinel_ports.iter().map(|p| format!("127.0.0.1:{p}")).collect();
    let bull_url = format!("sentinel://{MASTER}@{}", addresses.join(","));
    let queue = WildDuckQueue::new(Bullmq::WildDucks, &bull_url, &format!("{prefix}:wd:bull"));
    let producers = [
        actix_rt::spawn(post_producer(urls, log.clone(), stop.clone())),
        actix_rt::spawn(stream_producer(sentinel_ports, stream_key, log.clone(), stop.clone())),
        actix_rt::spawn(bullmq_producer(queue, log.clone(), stop.clone())),
    ];
    let acked = |source: &str| log.borrow().iter().filter(|s| s.source == source && s.acked).count();
    eventually(
        "30 events acknowledged from each source",
        Duration::from_secs(30),
        || async { SOURCES.iter().all(|s| acked(s) >= 30).then_some(()) },
    )
    .await;

    // kill -9 the primary mid-load.
    set.primary.stop();
    let killed = Instant::now();
    let (new_primary, promoted) = set.promoted(killed).await;
    let promoted_at = killed + promoted;
    // Nothing is acknowledged again until a replica follows the new primary.
    eventually(
        "a replica to follow the new primary",
        Duration::from_secs(20),
        || async {
            let info: String = ask(new_primary, redis::cmd("INFO").arg("replication")).await?;
            info.contains("state=online").then_some(())
        },
    )
    .await;
    let attached = killed.elapsed();
    // Delivery resumes: an event sent after the promotion and acknowledged reaches every webhook.
    eventually("delivery to resume", Duration::from_secs(20), || async {
        let reach = reach(&delivered(&receiver));
        let log = log.borrow();
        let mut fresh = log.iter().filter(|s| s.at >= promoted_at && s.acked);
        fresh
            .any(|s| reach.get(&(s.source.to_string(), s.n)) == Some(&WEBHOOKS))
            .then_some(())
    })
    .await;
    let resumed = killed.elapsed();

    // The old primary comes back, empty, and the sentinels make it a replica of the new one.
    set.old_primary_back_as_replica().await;
    let before: Vec<usize> = SOURCES.iter().map(|s| acked(s)).collect();
    let more = || {
        SOURCES
            .iter()
            .zip(&before)
            .map(|(s, b)| acked(s) - b)
            .collect::<Vec<_>>()
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while more().iter().any(|m| *m < 50) && Instant::now() < deadline {
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    let last: Vec<String> = SOURCES
        .iter()
        .filter_map(|source| {
            log.borrow()
                .iter()
                .rev()
                .find(|s| s.source == *source)
                .map(|s| s.answer.clone())
        })
        .collect();
    assert!(
        more().iter().all(|m| *m >= 50),
        "50 more acknowledged from each of {SOURCES:?} within 30 s of the old primary's return: {:?}, last answers {last:?}",
        more()
    );
    stop.set(true);
    for producer in producers {
        producer.await.expect("a producer ends");
    }
    // An instance that aborted (a broken invariant) explains everything after it: say so first.
    for (service, log) in services.iter_mut().zip(&logs) {
        if let Some(status) = service.try_exit_status() {
            let output = std::fs::read_to_string(log).unwrap_or_default();
            let why: Vec<&str> = output.lines().filter(|l| l.starts_with("hookrouter: ")).collect();
            panic!(
                "an instance exited ({status}) during the test: {why:#?} (its log: {})",
                log.display()
            );
        }
    }
    assert_eq!(
        set.named_primary().await,
        Some(new_primary),
        "one failover: the sentinels failed over a second time (seen at 1 s down-after on a loaded machine)"
    );
    // The producers are done: what they sent, to read without a borrow held across awaits.
    let log: Vec<Sent> = log.take();

    // Every acknowledged event reaches every webhook, from every source.
    let missing = || {
        let reach = reach(&delivered(&receiver));
        let short = log.iter().filter(|s| s.acked);
        short
            .filter(|s| reach.get(&(s.source.to_string(), s.n)) != Some(&WEBHOOKS))
            .map(|s| (s.source, s.n))
            .collect::<Vec<_>>()
    };
    let drained = Instant::now() + Duration::from_secs(60);
    while !missing().is_empty() && Instant::now() < drained {
        actix_rt::time::sleep(Duration::from_millis(100)).await;
    }
    let missing = missing();
    assert!(
        missing.is_empty(),
        "acknowledged but not delivered to every webhook: {missing:?}"
    );

    // The figures, per source.
    let pairs = delivered(&receiver);
    let reach = reach(&pairs);
    let sent_at: HashMap<(&str, u64), Instant> = log.iter().map(|s| ((s.source, s.n), s.at)).collect();
    for source in SOURCES {
        let of: Vec<&Sent> = log.iter().filter(|s| s.source == source).collect();
        let mut answers: BTreeMap<&str, usize> = BTreeMap::new();
        for s in &of {
            *answers.entry(s.answer.as_str()).or_default() += 1;
        }
        let acked = of.iter().filter(|s| s.acked).count();
        let unacked_delivered = of
            .iter()
            .filter(|s| !s.acked && reach.contains_key(&(source.to_string(), s.n)))
            .count();
        let source_pairs: Vec<_> = pairs.iter().filter(|((_, s, _), _)| s == source).collect();
        let duplicates: usize = source_pairs.iter().map(|(_, c)| *c - 1).sum();
        let first_fresh = receiver
            .received()
            .iter()
            .filter(|r| {
                let body = r.json();
                body["src"] == source
                    && body["n"]
                        .as_u64()
                        .and_then(|n| sent_at.get(&(source, n)))
                        .is_some_and(|at| *at >= promoted_at)
            })
            .map(|r| r.at.duration_since(killed))
            .min();
        println!(
            "{source}: {} sent, {acked} acknowledged (all delivered to all {WEBHOOKS} webhooks), \
             {unacked_delivered} unacknowledged delivered all the same; {} pairs delivered, {duplicates} duplicates; \
             first event sent after the promotion delivered {first_fresh:?} after the kill; answers {answers:?}",
            of.len(),
            source_pairs.len(),
        );
    }
    let duplicated: Vec<_> = pairs.iter().filter(|(_, c)| **c > 1).collect();
    println!(
        "failover with min_replicas_acked = 1: promoted {promoted:?} after the kill, a replica following it \
         {attached:?} after it, delivery resumed {resumed:?} after it; {} pairs delivered, {} duplicates",
        pairs.len(),
        duplicated.iter().map(|(_, c)| **c - 1).sum::<usize>()
    );
    assert!(
        resumed < promoted + Duration::from_secs(5),
        "delivery resumed within 5 s of the promotion"
    );
    // Duplicates come only from the switch: what was in flight at the kill, or settled on the
    // old primary and not replicated, is delivered again; a lease renewal lost with the old
    // primary can hand a webhook over mid-flight until the leases settle (TTL 4 s); and ioredis
    // sends a BullMQ add again when it reconnects. So each is of an event sent from 5 s before
    // the kill to 5 s after delivery resumed, and none is delivered more than twice.
    for ((webhook, source, n), count) in &duplicated {
        assert!(**count <= 2, "{webhook} got {source} {n} {count} times");
        let at = sent_at[&(source.as_str(), *n)];
        assert!(
            at + Duration::from_secs(5) >= killed && at <= killed + resumed + Duration::from_secs(5),
            "{webhook} got {source} {n} twice, sent {:?} from the kill",
            at.checked_duration_since(killed)
        );
    }
    for s in log.iter().filter(|s| s.source == "post") {
        assert!(matches!(s.answer.as_str(), "200" | "503"), "POST {}: {}", s.n, s.answer);
    }

    // One owner per webhook, on the new primary.
    one_owner_each_on(&services, WEBHOOKS, new_primary).await;
    // Each instance logs the failover once and no error.
    for log in &logs {
        let output = std::fs::read_to_string(log).unwrap_or_default();
        let _ = std::fs::remove_file(log);
        let switches = output.lines().filter(|l| l.contains("Redis failed over")).count();
        assert_eq!(switches, 1, "one failover line:\n{output}");
        let errors: Vec<&str> = output.lines().filter(|l| l.contains("ERROR")).collect();
        assert!(errors.is_empty(), "no errors logged: {errors:#?}");
    }
}
