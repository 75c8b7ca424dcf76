//! Several instances on one prefix (issue 9): the throughput of 2 instances beside 1 with the
//! same webhooks and events, and a handover: 3 instances under a steady load, the one owning
//! the most webhooks killed with `kill -9`, timed until its webhooks deliver again elsewhere.
//! Duplicates (a (webhook, event) pair received more than once) are counted exactly by the
//! tracking sink, with a bitset per webhook indexed by the event's number.

use std::cell::Cell;
use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::cost::{Cost, Probe};
use super::publish::{user, Publisher};
use super::report::Row;
use super::scenarios::row;
use super::service::Service;
use super::sink::{now_us, Sink};
use super::Bench;

const WEBHOOKS: usize = 10;
const MAX_IN_FLIGHT: u64 = 16;

/// `n` instances on `prefix`, named `bench-0`.. (`[instance] name`), each reading events.
async fn start(bench: &Bench, prefix: &str, n: usize) -> Vec<Service> {
    let services: Vec<Service> = (0..n)
        .map(|i| {
            Service::start(
                &bench.redis,
                prefix,
                &[("HOOKROUTER__INSTANCE__NAME", format!("bench-{i}"))],
            )
        })
        .collect();
    for service in &services {
        service.wait_ready().await;
    }
    services
}

/// Waits (up to 30 s) until `/instances` lists `n` delivering instances owning all the
/// webhooks between them; returns name → webhooks owned as last seen.
async fn owners(service: &Service, n: usize) -> HashMap<String, u64> {
    let started = Instant::now();
    loop {
        let list = service.call("GET", "/instances", None).await;
        let owned: HashMap<String, u64> = list
            .as_ref()
            .and_then(|l| l["results"].as_array().cloned())
            .unwrap_or_default()
            .iter()
            .filter(|i| i["delivering"] == true)
            .filter_map(|i| Some((i["name"].as_str()?.to_string(), i["webhooks"].as_u64()?)))
            .collect();
        let settled = owned.len() == n && owned.values().sum::<u64>() == WEBHOOKS as u64;
        if settled || started.elapsed() > Duration::from_secs(30) {
            if !settled {
                println!("  ! instances: ownership not settled after 30 s: {owned:?}");
            }
            return owned;
        }
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The steady-state run: `n` instances, 10 webhooks, events as fast as they can be published;
/// the row (with the cost summed over the instances) and the duplicates.
pub async fn steady(bench: &Bench, n: usize) -> (Row, u64) {
    let events: u64 = if bench.quick { 10_000 } else { 50_000 };
    let prefix = bench.prefix(&format!("instances{n}"));
    let services = start(bench, &prefix, n).await;
    let sink = Sink::tracking();
    for i in 0..WEBHOOKS {
        services[i % n].create_webhook(&sink.url(i), &["*"], None).await;
    }
    owners(&services[0], n).await;
    let mut publisher = Publisher::connect(&bench.redis, &prefix).await;
    let mut probe = Probe::connect(&bench.redis).await;
    let all: Vec<&Service> = services.iter().collect();
    let before = probe.snapshot(&all).await;
    let started = now_us();
    publisher.publish(0, events, |e| user(e % 1000)).await;
    let expected = events * WEBHOOKS as u64;
    let deadline = Instant::now() + Duration::from_secs(600);
    while sink.tally.distinct.load(Ordering::SeqCst) < expected && Instant::now() < deadline {
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
    let after = probe.snapshot(&all).await;
    let distinct = sink.tally.distinct.load(Ordering::SeqCst);
    if distinct < expected {
        println!("  ! {n} instance(s): only {distinct} of {expected} (webhook, event) pairs arrived");
    }
    let name = format!("{n} instance{}, 10 webhooks", if n == 1 { "" } else { "s" });
    let mut measured = row(&name, &services[0], &sink, events, started);
    measured.peak_rss_mib = all.iter().map(|s| s.peak_rss_kib() as f64 / 1024.0).fold(0.0, f64::max);
    measured.cpu_seconds = all.iter().map(|s| s.cpu_seconds()).sum();
    let deliveries = sink.tally.deliveries.load(Ordering::SeqCst);
    measured.cost = Some(Cost::between(&before, &after, deliveries, &[("xadd", events)]));
    // Anything still under way arrives within a moment; then count the duplicates.
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    let duplicates = sink.tally.duplicates.load(Ordering::SeqCst);
    drop(services);
    sink.stop().await;
    publisher.clean(&prefix).await;
    (measured, duplicates)
}

/// What the handover found.
pub struct Handover {
    pub killed: String,
    /// Webhooks the killed instance owned.
    pub moved: usize,
    /// From the kill until the last of them delivered an event published after the kill.
    pub resumed_after: Option<Duration>,
    pub duplicates: u64,
    /// Of which on the webhooks the killed instance owned (the rest: on the others).
    pub duplicates_moved: u64,
    pub events: u64,
    /// Pairs never delivered (should be 0).
    pub missing: u64,
}

impl Handover {
    /// The duplicates' bound: the dead instance's in-flight window.
    pub fn bound(&self) -> u64 {
        self.moved as u64 * MAX_IN_FLIGHT
    }
}

/// Publishes 1,000 events/s (10 every 10 ms, each its own XADD) until `stop`; returns how many.
fn steady_publisher(mut publisher: Publisher, stop: Rc<Cell<bool>>) -> actix_rt::task::JoinHandle<u64> {
    actix_rt::spawn(async move {
        let mut tick = actix_rt::time::interval(Duration::from_millis(10));
        let mut n = 0;
        while !stop.get() {
            tick.tick().await;
            for _ in 0..10 {
                publisher.publish(n, 1, |e| user(e % 1000)).await;
                n += 1;
            }
        }
        n
    })
}

/// The handover: 3 instances, 10 webhooks, 1,000 events/s; after 5 s (3 s with --quick) the
/// instance owning the most webhooks (by each webhook's `GET /webhooks/{id}/health` owner) is
/// killed with `kill -9`.
pub async fn handover(bench: &Bench) -> Handover {
    let prefix = bench.prefix("handover");
    let mut services = start(bench, &prefix, 3).await;
    let sink = Sink::tracking();
    let mut ids = Vec::new();
    for i in 0..WEBHOOKS {
        ids.push(services[i % 3].create_webhook(&sink.url(i), &["*"], None).await);
    }
    owners(&services[0], 3).await;
    let stop = Rc::new(Cell::new(false));
    let publishing = steady_publisher(Publisher::connect(&bench.redis, &prefix).await, stop.clone());
    actix_rt::time::sleep(Duration::from_secs(if bench.quick { 3 } else { 5 })).await;

    // Who owns each webhook now (the lease holder, as the health report names it).
    let mut owner = Vec::new();
    for id in &ids {
        let health = services[0].call("GET", &format!("/webhooks/{id}/health"), None).await;
        owner.push(
            health
                .and_then(|h| h["instance"].as_str().map(String::from))
                .unwrap_or_default(),
        );
    }
    let busiest = (0..3)
        .max_by_key(|i| owner.iter().filter(|o| **o == format!("bench-{i}")).count())
        .expect("three instances");
    let killed = format!("bench-{busiest}");
    let moved: Vec<usize> = (0..WEBHOOKS).filter(|i| owner[*i] == killed).collect();
    services[busiest].kill9();
    let kill_us = now_us();
    sink.tally.watch_after_us.store(kill_us, Ordering::SeqCst);

    // Until every moved webhook delivers an event published after the kill (ttl 10 s + 20 s).
    let deadline = Instant::now() + Duration::from_secs(30);
    let resumed_after = loop {
        let resumed = sink.tally.resumed.lock().expect("resumed").clone();
        let at: Option<Vec<u64>> = moved
            .iter()
            .map(|i| resumed.get(*i).copied().filter(|t| *t > 0))
            .collect();
        if let Some(at) = at {
            break at
                .into_iter()
                .max()
                .map(|t| Duration::from_micros(t.saturating_sub(kill_us)));
        }
        if Instant::now() > deadline {
            println!("  ! handover: the killed instance's webhooks did not all resume within 30 s");
            break None;
        }
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    };
    actix_rt::time::sleep(Duration::from_secs(2)).await;
    stop.set(true);
    let events = publishing.await.expect("the publishing task");
    let expected = events * WEBHOOKS as u64;
    let deadline = Instant::now() + Duration::from_secs(60);
    while sink.tally.distinct.load(Ordering::SeqCst) < expected && Instant::now() < deadline {
        actix_rt::time::sleep(Duration::from_millis(10)).await;
    }
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    let per = sink.tally.duplicates_per_webhook.lock().expect("duplicates").clone();
    let found = Handover {
        duplicates_moved: moved.iter().map(|i| per.get(*i).copied().unwrap_or(0)).sum(),
        killed,
        moved: moved.len(),
        resumed_after,
        duplicates: sink.tally.duplicates.load(Ordering::SeqCst),
        events,
        missing: expected.saturating_sub(sink.tally.distinct.load(Ordering::SeqCst)),
    };
    services.clear();
    sink.stop().await;
    Publisher::connect(&bench.redis, &prefix).await.clean(&prefix).await;
    found
}
