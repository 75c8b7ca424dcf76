//! What `[redis] min_replicas_acked = 1` costs (issue 25): a primary and one replica of its own
//! (redis-server processes started here on free loopback ports, without persistence, through
//! the tests' `RedisProcess`), the service against the primary, 10 webhooks on the sink, and
//! events published through `POST /events` (one event per request, from 32 concurrent clients)
//! — the route whose answer waits for the replica (`WAIT 1`). Four rounds in one run, against the
//! same pair of servers with a fresh key prefix each, in the order 0, 1, 1, 0 of
//! `min_replicas_acked` (so a drift of the shared machine's load weighs on both alike).
//! Reported per round: deliveries/s (first request to last delivery), the publish latency
//! p50/p99 as the producers see it (request sent → 200 read), and then, with the blast
//! delivered, the latency of 1,000 `POST /events` from one producer alone (what `WAIT` adds to
//! one request, without the queueing of 32).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use super::publish::{event, user};
use super::redis_process::RedisProcess;
use super::report::{Latency, Row};
use super::scenarios::{row, wait_deliveries};
use super::service::Service;
use super::sink::{now_us, Sink};
use super::Bench;

/// Producers publishing at once.
const CLIENTS: u64 = 32;
const WEBHOOKS: usize = 10;

/// One run's figures.
pub struct Acked {
    pub replicas: u32,
    pub row: Row,
    /// `POST /events` answered 200, request to answer.
    pub publish: Option<Latency>,
    /// `POST /events` from one producer alone, one request at a time, after the blast.
    pub alone: Option<Latency>,
    /// Events accepted per second while publishing.
    pub published_per_s: f64,
    /// Answers other than 200 (none expected: the replica follows throughout).
    pub refused: u64,
}

/// The four rounds: `min_replicas_acked` 0, 1, 1, 0.
pub async fn replicas_acked(bench: &Bench) -> Vec<Acked> {
    let mut primary = RedisProcess::unstarted();
    primary.start().await;
    let mut replica = RedisProcess::replica_of(primary.port);
    replica.start().await;
    let client = redis::Client::open(primary.url()).expect("the primary's url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("the primary answers");
    // The replica follows before anything is measured: a write confirmed by it.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let _: () = redis::cmd("SET")
            .arg("hrbench:probe")
            .arg(1)
            .query_async(&mut conn)
            .await
            .expect("SET");
        let acked: u64 = redis::cmd("WAIT")
            .arg(1)
            .arg(100)
            .query_async(&mut conn)
            .await
            .expect("WAIT");
        if acked == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "the replica never followed the primary");
    }
    let mut runs = Vec::new();
    for replicas in [0, 1, 1, 0] {
        runs.push(run(bench, &primary.url(), replicas, runs.len() + 1).await);
    }
    runs
}

async fn run(bench: &Bench, redis: &str, replicas: u32, round: usize) -> Acked {
    let events: u64 = if bench.quick { 3_000 } else { 20_000 };
    let name = format!("POST /events, acked {replicas} ({round})");
    let prefix = bench.prefix(&name);
    let env = [
        ("HOOKROUTER__REDIS__MIN_REPLICAS_ACKED", replicas.to_string()),
        ("HOOKROUTER__REDIS__REPLICA_WAIT_MS", "1000".to_string()),
    ];
    let service = Service::start(redis, &prefix, &env);
    service.wait_ready().await;
    let sink = Sink::start(None);
    for i in 0..WEBHOOKS {
        service.create_webhook(&sink.url(i), &["*"], None).await;
    }
    let url = format!("http://127.0.0.1:{}/events", service.port);
    let http = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
    let latencies: Rc<RefCell<Vec<u32>>> = Rc::default();
    let refused = Rc::new(std::cell::Cell::new(0u64));
    let started = now_us();
    let clock = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (http, url, latencies, refused) = (http.clone(), url.clone(), latencies.clone(), refused.clone());
            actix_rt::spawn(async move {
                // Client c publishes events c, c + CLIENTS, c + 2 CLIENTS, ...
                for n in (c..events).step_by(CLIENTS as usize) {
                    let body = event(n, &user(n % 1000), now_us());
                    let sent = Instant::now();
                    let answer = http
                        .post(&url)
                        .insert_header(("content-type", "application/json"))
                        .send_body(body)
                        .await;
                    match answer {
                        Ok(response) if response.status().as_u16() == 200 => {
                            let us = sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                            latencies.borrow_mut().push(us);
                        }
                        _ => refused.set(refused.get() + 1),
                    }
                }
            })
        })
        .collect();
    for client in clients {
        let _ = client.await;
    }
    let published_per_s = events as f64 / clock.elapsed().as_secs_f64();
    let accepted = latencies.borrow().len() as u64;
    wait_deliveries(&sink, accepted * WEBHOOKS as u64, Duration::from_secs(300)).await;
    let row = row(&name, &service, &sink, events, started);
    let publish = Latency::of(latencies.take());
    let mut alone = Vec::new();
    for n in events..events + 1_000 {
        let sent = Instant::now();
        let answer = http
            .post(&url)
            .insert_header(("content-type", "application/json"))
            .send_body(event(n, &user(n % 1000), now_us()))
            .await;
        if answer.is_ok_and(|response| response.status().as_u16() == 200) {
            alone.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        }
    }
    service.stop();
    sink.stop().await;
    super::publish::Publisher::connect(redis, &prefix)
        .await
        .clean(&prefix)
        .await;
    Acked {
        replicas,
        row,
        publish,
        alone: Latency::of(alone),
        published_per_s,
        refused: refused.get(),
    }
}

/// One line per round, then each setting's mean over its rounds and the ratio of the two.
pub fn describe(runs: &[Acked]) -> Vec<String> {
    let ms = |l: Option<Latency>| l.map_or("?".into(), |l| format!("{:.2} / {:.2}", l.p50, l.p99));
    let mut lines: Vec<String> = runs
        .iter()
        .map(|run| {
            format!(
                "{}: {:.0} deliveries/s, {:.0} events/s published, POST /events p50 / p99 {} ms (32 producers), \
                 {} ms (one alone), {} not answered 200",
                run.row.scenario,
                run.row.rate,
                run.published_per_s,
                ms(run.publish),
                ms(run.alone),
                run.refused
            )
        })
        .collect();
    let mean = |replicas: u32, of: &dyn Fn(&Acked) -> f64| {
        let values: Vec<f64> = runs.iter().filter(|r| r.replicas == replicas).map(of).collect();
        values.iter().sum::<f64>() / values.len().max(1) as f64
    };
    let p = |l: Option<Latency>, q: fn(&Latency) -> f64| l.as_ref().map_or(0.0, q);
    for replicas in [0, 1] {
        lines.push(format!(
            "min_replicas_acked {replicas}, mean of its rounds: {:.0} deliveries/s; POST /events p50 / p99 {:.2} / {:.2} ms \
             (32 producers), {:.2} / {:.2} ms (one alone)",
            mean(replicas, &|r| r.row.rate),
            mean(replicas, &|r| p(r.publish, |l| l.p50)),
            mean(replicas, &|r| p(r.publish, |l| l.p99)),
            mean(replicas, &|r| p(r.alone, |l| l.p50)),
            mean(replicas, &|r| p(r.alone, |l| l.p99)),
        ));
    }
    lines.push(format!(
        "min_replicas_acked 1 vs 0: deliveries/s {:.2} x; publish p50 {:.2} x (32 producers), {:.2} x (one alone)",
        mean(1, &|r| r.row.rate) / mean(0, &|r| r.row.rate).max(1.0),
        mean(1, &|r| p(r.publish, |l| l.p50)) / mean(0, &|r| p(r.publish, |l| l.p50)).max(0.001),
        mean(1, &|r| p(r.alone, |l| l.p50)) / mean(0, &|r| p(r.alone, |l| l.p50)).max(0.001),
    ));
    lines
}
