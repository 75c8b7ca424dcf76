//! Throughput, latency and isolation: healthy webhooks on the sink, events into the stream,
//! everything measured end to end.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::cost::{Cost, Probe};
use super::nginx::Nginx;
use super::publish::{user, Publisher};
use super::report::{Latency, Row};
use super::service::Service;
use super::sink::{now_us, Sink};
use super::tcp::BlackHoles;
use super::tls::BenchTls;
use super::Bench;

/// Waits until the sink has `expected` deliveries (or `timeout` passes); returns the count.
pub async fn wait_deliveries(sink: &Sink, expected: u64, timeout: Duration) -> u64 {
    let deadline = Instant::now() + timeout;
    loop {
        let got = sink.tally.deliveries.load(Ordering::SeqCst);
        if got >= expected || Instant::now() > deadline {
            return got;
        }
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A measured row from the sink's tally after a run that started at `started_us`.
pub fn row(name: &str, service: &Service, sink: &Sink, events: u64, started_us: u64) -> Row {
    let deliveries = sink.tally.deliveries.load(Ordering::SeqCst);
    let last = sink.tally.last_us.load(Ordering::SeqCst);
    let elapsed = (last.saturating_sub(started_us)) as f64 / 1e6;
    Row {
        scenario: name.into(),
        events,
        deliveries,
        rate: if elapsed > 0.0 {
            deliveries as f64 / elapsed
        } else {
            0.0
        },
        latency: Latency::of(sink.tally.take_latencies()),
        peak_rss_mib: service.peak_rss_kib() as f64 / 1024.0,
        cpu_seconds: service.cpu_seconds(),
        ceiling: None,
        connections: sink.tally.connections.load(Ordering::SeqCst),
        cost: None,
    }
}

/// How a blast runs.
#[derive(Default, Clone, Copy)]
pub struct Blast<'a> {
    /// Global webhooks on the sink.
    pub webhooks: usize,
    /// More webhooks whose endpoints never answer.
    pub black_holes: usize,
    pub events: u64,
    /// The sink serves HTTPS with a certificate the service trusts through `[delivery] ca_file`.
    pub tls: Option<&'a BenchTls>,
    /// The sink refuses (422) every n-th event; 0: none.
    pub refuse_every: u64,
    /// Without flow control (no per-host cap, every webhook at `max_in_flight` from the
    /// start), as before it existed: the baseline of the adaptive start.
    pub without_flow_control: bool,
    /// Without retention (`events.retain_ms` 0): the baseline of what keeping events costs.
    pub without_retention: bool,
    /// Leave the prefix's keys for the caller to read (it deletes them).
    pub keep_keys: bool,
}

/// The settings that turn flow control off (the baseline).
const WITHOUT_FLOW_CONTROL: [(&str, &str); 2] = [
    ("HOOKROUTER__DELIVERY__MAX_CONNECTIONS_PER_HOST", "100000"),
    ("HOOKROUTER__DELIVERY__INITIAL_CONCURRENCY", "16"),
];

/// The webhooks, then the events as fast as they can be published; measured until every
/// delivery the sink accepts has arrived.
pub async fn blast(bench: &Bench, name: &str, how: Blast<'_>) -> Row {
    let Blast {
        webhooks,
        black_holes,
        events,
        tls,
        refuse_every,
        without_flow_control,
        without_retention,
        keep_keys,
    } = how;
    let prefix = bench.prefix(name);
    let mut env: Vec<(&str, String)> = tls.map(BenchTls::service_env).into_iter().collect();
    if without_flow_control {
        env.extend(WITHOUT_FLOW_CONTROL.map(|(key, value)| (key, value.to_string())));
    }
    if without_retention {
        env.push(("HOOKROUTER__EVENTS__RETAIN_MS", "0".to_string()));
    }
    let service = Service::start(&bench.redis, &prefix, &env);
    service.wait_ready().await;
    let sink = match tls {
        Some(tls) => Sink::start_tls(tls.sink_config()),
        None if refuse_every > 0 => Sink::refusing(refuse_every),
        None => Sink::start(None),
    };
    let holes = BlackHoles::start(black_holes).await;
    for i in 0..webhooks {
        service.create_webhook(&sink.url(i), &["*"], None).await;
    }
    for url in holes.urls() {
        service.create_webhook(&url, &["*"], None).await;
    }
    let mut publisher = Publisher::connect(&bench.redis, &prefix).await;
    let mut probe = Probe::connect(&bench.redis).await;
    let before = probe.snapshot(&[&service]).await;
    let started = now_us();
    publisher.publish(0, events, |n| user(n % 1000)).await;
    let refused = if refuse_every > 0 {
        events.div_ceil(refuse_every)
    } else {
        0
    };
    let expected = (events - refused) * webhooks as u64;
    let got = wait_deliveries(&sink, expected, Duration::from_secs(900)).await;
    let after = probe.snapshot(&[&service]).await;
    if got < expected {
        println!("  ! {name}: only {got} of {expected} deliveries arrived");
    }
    let mut row = row(name, &service, &sink, events, started);
    row.cost = Some(Cost::between(&before, &after, got, &[("xadd", events)]));
    service.stop();
    sink.stop().await;
    if !keep_keys {
        publisher.clean(&prefix).await;
    }
    row
}

/// 1b: the throughput blast again, without flow control: the baseline for what the adaptive
/// start and the per-host cap cost (the 10 webhooks share one host: the sink).
pub async fn throughput_without_flow_control(bench: &Bench) -> Row {
    let events = if bench.quick { 10_000 } else { 100_000 };
    let how = Blast {
        webhooks: 10,
        events,
        without_flow_control: true,
        ..Blast::default()
    };
    blast(bench, "throughput without flow control", how).await
}

/// 1: 100,000 events × 10 webhooks (1M deliveries) as fast as possible; compared with the
/// sink's `ceiling`. With `--sink nginx`, nginx receives them.
pub async fn throughput(bench: &Bench, ceiling: f64) -> Row {
    let events = if bench.quick { 10_000 } else { 100_000 };
    let mut row = match &bench.nginx {
        Some(nginx) => blast_nginx(bench, nginx, events).await,
        None => {
            let how = Blast {
                webhooks: 10,
                events,
                ..Blast::default()
            };
            blast(bench, "throughput", how).await
        }
    };
    row.ceiling = Some(ceiling);
    row
}

/// The throughput blast into nginx: 10 webhooks (`/w/<i>`, all answered 204), counted from
/// nginx's stub_status (polled every 5 ms; the rate runs to the poll that saw the last one), so
/// no latency.
async fn blast_nginx(bench: &Bench, nginx: &Nginx, events: u64) -> Row {
    let prefix = bench.prefix("throughput-nginx");
    let service = Service::start(&bench.redis, &prefix, &[]);
    service.wait_ready().await;
    for i in 0..10 {
        service.create_webhook(&nginx.url(i), &["*"], None).await;
    }
    let mut publisher = Publisher::connect(&bench.redis, &prefix).await;
    let mut probe = Probe::connect(&bench.redis).await;
    let base = nginx.counts().await;
    let before = probe.snapshot(&[&service]).await;
    let started = Instant::now();
    publisher.publish(0, events, |n| user(n % 1000)).await;
    let expected = events * 10;
    let deadline = started + Duration::from_secs(900);
    let (got, connections) = loop {
        let now = nginx.counts().await;
        let got = now.requests - base.requests;
        if got >= expected || Instant::now() > deadline {
            break (got, now.accepts - base.accepts);
        }
        actix_rt::time::sleep(Duration::from_millis(5)).await;
    };
    let elapsed = started.elapsed().as_secs_f64();
    let after = probe.snapshot(&[&service]).await;
    if got < expected {
        println!("  ! throughput (nginx sink): only {got} of {expected} deliveries arrived");
    }
    let row = Row {
        scenario: "throughput (nginx sink)".into(),
        events,
        deliveries: got,
        rate: got as f64 / elapsed,
        latency: None,
        peak_rss_mib: service.peak_rss_kib() as f64 / 1024.0,
        cpu_seconds: service.cpu_seconds(),
        ceiling: None,
        connections,
        cost: Some(Cost::between(&before, &after, got, &[("xadd", events)])),
    };
    service.stop();
    publisher.clean(&prefix).await;
    row
}

/// 1c: the same, with a sink that refuses (422) 2% of the events, as a receiver with a
/// validation rule does. The row counts the accepted deliveries, measured until the last of
/// them arrived; the refused ones wait for their retries out of the way (default retry
/// settings: the first retry after 2 s).
pub async fn refusing(bench: &Bench) -> Row {
    let events = if bench.quick { 10_000 } else { 100_000 };
    let how = Blast {
        webhooks: 10,
        events,
        refuse_every: 50,
        ..Blast::default()
    };
    blast(bench, "throughput, 2% refused", how).await
}

/// 1b: the same, with the sink behind TLS (a CA made now, trusted through `[delivery]
/// ca_file`); compared with the TLS sink's own `ceiling`.
pub async fn throughput_tls(bench: &Bench, tls: &BenchTls, ceiling: f64) -> Row {
    let events = if bench.quick { 10_000 } else { 100_000 };
    let how = Blast {
        webhooks: 10,
        events,
        tls: Some(tls),
        ..Blast::default()
    };
    let mut row = blast(bench, "throughput over TLS", how).await;
    row.ceiling = Some(ceiling);
    row
}

/// 2: 1,000 events/s for 30 s × 10 webhooks.
pub async fn latency(bench: &Bench) -> Row {
    let seconds = if bench.quick { 5 } else { 30 };
    paced(bench, "latency 1000 ev/s x 10", 0, seconds).await
}

/// 10 webhooks on the sink (and `black_holes` that never answer) at 1,000 events/s for
/// `seconds`; the row's rate is deliveries per second of the run.
async fn paced(bench: &Bench, name: &str, black_holes: usize, seconds: u64) -> Row {
    let prefix = bench.prefix(name);
    let service = Service::start(&bench.redis, &prefix, &[]);
    service.wait_ready().await;
    let sink = Sink::start(None);
    let holes = BlackHoles::start(black_holes).await;
    for i in 0..10 {
        service.create_webhook(&sink.url(i), &["*"], None).await;
    }
    for url in holes.urls() {
        service.create_webhook(&url, &["*"], None).await;
    }
    let mut publisher = Publisher::connect(&bench.redis, &prefix).await;
    // Warm the connections up (and let the black holes fill their windows), then measure.
    publisher.publish(0, 100, user).await;
    wait_deliveries(&sink, 1_000, Duration::from_secs(30)).await;
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    sink.tally.reset();
    let started = now_us();
    let mut tick = actix_rt::time::interval(Duration::from_millis(10));
    let ticks = seconds * 100;
    for t in 0..ticks {
        tick.tick().await;
        // One event every millisecond on average: 10 per 10 ms tick, each its own XADD, so they
        // enter the stream spread out like a real producer's.
        for k in 0..10 {
            publisher.publish(t * 10 + k, 1, |n| user(n % 1000)).await;
        }
    }
    let events = ticks * 10;
    wait_deliveries(&sink, events * 10, Duration::from_secs(60)).await;
    let mut row = row(name, &service, &sink, events, started);
    row.rate = row.deliveries as f64 / seconds as f64;
    service.stop();
    sink.stop().await;
    publisher.clean(&prefix).await;
    row
}

/// What the isolation scenario measured: throughput (as fast as possible) and latency (at
/// 1,000 events/s) of 10 healthy webhooks, alone and beside 10 black holes.
pub struct Isolation {
    pub blast_alone: Row,
    pub blast_beside: Row,
    pub paced_alone: Row,
    pub paced_beside: Row,
}

/// 3: 10 healthy webhooks, alone and beside 10 black holes.
pub async fn isolation(bench: &Bench) -> Isolation {
    let events = if bench.quick { 10_000 } else { 20_000 };
    let seconds = if bench.quick { 3 } else { 10 };
    let healthy = Blast {
        webhooks: 10,
        events,
        ..Blast::default()
    };
    let with_holes = Blast {
        black_holes: 10,
        ..healthy
    };
    Isolation {
        blast_alone: blast(bench, "isolation: 10 healthy", healthy).await,
        blast_beside: blast(bench, "isolation: + 10 black holes", with_holes).await,
        paced_alone: paced(bench, "isolation 1000/s: healthy", 0, seconds).await,
        paced_beside: paced(bench, "isolation 1000/s: + holes", 10, seconds).await,
    }
}
