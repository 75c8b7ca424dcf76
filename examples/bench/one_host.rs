//! A broadcast to one host (issue 23): 1,000 webhooks of type `*` whose URLs are paths on one
//! nginx with the common `worker_connections 4096`, 200 events (50 with --quick), with short
//! retry settings (100 ms doubling to 400 ms, 4 attempts, 5 s timeout) so that refused
//! connections turn into dead letters quickly. Run twice in the same run: with flow control as
//! shipped (a per-host connection cap of 64, an adaptive start at 2) and without (no cap, every
//! webhook at `max_in_flight` from the start, as before), the baseline.

use std::time::{Duration, Instant};

use super::nginx::Nginx;
use super::publish::Publisher;
use super::service::Service;
use super::Bench;

/// What one broadcast to one host did.
pub struct OneHost {
    pub label: &'static str,
    pub expected: u64,
    pub delivered: u64,
    pub rate: f64,
    /// The most connections nginx had open at once (its own status poll included).
    pub connections_max: u64,
    pub dead_letters: u64,
    /// Webhooks with entries still queued when the run ended.
    pub stalled: usize,
}

/// A counter's value in the metrics text (0 when absent).
fn counter(metrics: &str, name: &str) -> u64 {
    metrics
        .lines()
        .filter(|line| line.starts_with(name))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>() as u64
}

pub async fn broadcast_one_host(bench: &Bench, flow_control: bool) -> OneHost {
    let webhooks = 1_000;
    let events: u64 = if bench.quick { 50 } else { 200 };
    let label = if flow_control {
        "flow control on"
    } else {
        "flow control off"
    };
    let prefix = bench.prefix(if flow_control { "onehost-on" } else { "onehost-off" });
    let mut env = vec![
        ("HOOKROUTER__RETRY__INITIAL_DELAY_MS", "100".to_string()),
        ("HOOKROUTER__RETRY__MAX_DELAY_MS", "400".to_string()),
        ("HOOKROUTER__RETRY__MAX_ATTEMPTS", "4".to_string()),
        ("HOOKROUTER__DELIVERY__TIMEOUT_MS", "5000".to_string()),
    ];
    if !flow_control {
        env.push(("HOOKROUTER__DELIVERY__MAX_CONNECTIONS_PER_HOST", "100000".to_string()));
        env.push(("HOOKROUTER__DELIVERY__INITIAL_CONCURRENCY", "16".to_string()));
    }
    let nginx = Nginx::start_with(4096).await;
    let service = Service::start(&bench.redis, &prefix, &env);
    service.wait_ready().await;
    let mut ids = Vec::with_capacity(webhooks);
    for n in 0..webhooks {
        ids.push(service.create_webhook(&nginx.url(n), &["*"], None).await);
    }
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    let mut publisher = Publisher::connect(&bench.redis, &prefix).await;
    let base = nginx.counts().await;
    let started = Instant::now();
    publisher.publish(0, events, |n| format!("u{}", n % 1000)).await;
    let expected = events * webhooks as u64;
    let (mut connections_max, mut last, mut moved_at) = (0, base.requests, Instant::now());
    let delivered = loop {
        let now = nginx.counts().await;
        connections_max = connections_max.max(now.active);
        if now.requests != last {
            (last, moved_at) = (now.requests, Instant::now());
        }
        let delivered = now.requests - base.requests;
        // Done, or nothing delivered for 30 s (what is left ran out of attempts, or stalls).
        if delivered >= expected || moved_at.elapsed() > Duration::from_secs(30) {
            break delivered;
        }
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    };
    let elapsed = moved_at.duration_since(started).as_secs_f64();
    let metrics = service.metrics().await;
    let mut stalled = 0;
    for id in &ids {
        if service.backlog(id).await > 0 {
            stalled += 1;
        }
    }
    service.stop();
    publisher.clean(&prefix).await;
    let found = OneHost {
        label,
        expected,
        delivered,
        rate: delivered as f64 / elapsed.max(0.001),
        connections_max,
        dead_letters: counter(&metrics, "hookrouter_dead_letters_total"),
        stalled,
    };
    println!(
        "  broadcast to one host, {label}: {} of {expected} delivered, {:.0}/s, at most {} connections, {} dead \
         letters, {} webhooks left with a backlog",
        found.delivered, found.rate, found.connections_max, found.dead_letters, found.stalled
    );
    found
}
