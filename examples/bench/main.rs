//! hookrouter's benchmark harness.
//!
//! ```text
//! cargo build --release && cargo run --release --example bench            # every scenario
//! cargo build --release && cargo run --release --example bench -- --quick # under a minute
//! cargo run --release --example bench -- --scenario throughput --scenario latency
//! cargo run --release --example bench -- --scenario bullmq   # WildDuck's queue (needs node)
//! ```
//!
//! It runs the release service binary as a child process (a fresh one per scenario, with its
//! own Redis key prefix), a keep-alive HTTP sink on loopback, registers webhooks through the
//! API, publishes events into the Redis stream (each carrying its publish time) and measures
//! end to end. Before the scenarios it measures the ceiling: the sink's own maximum request
//! rate for the same body and connection count, driven by a built-in keep-alive load
//! generator. Everything is printed in one table, with the targets from docs/benchmarks.md.
//! The `bullmq` scenario publishes through WildDuck's BullMQ queue with the real `bullmq`
//! package (`tests/node`, installed by `scripts/test --setup-only`).

mod bullmq;
mod loadgen;
mod publish;
mod report;
mod scale;
mod scenarios;
mod service;
mod sink;
mod tcp;
mod tls;

use std::time::Duration;

use clap::Parser;

use report::{Row, Target};

#[derive(Parser)]
#[command(about = "Benchmark hookrouter end to end")]
struct Args {
    /// Fewer events per scenario: the whole run takes under a minute.
    #[arg(long)]
    quick: bool,
    /// Scenarios to run (default: all): throughput, refusing, throughput-tls, latency,
    /// isolation, many, backlog, bullmq.
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
}

/// What every scenario needs.
pub struct Bench {
    pub redis: String,
    pub quick: bool,
    run: String,
}

impl Bench {
    /// A key prefix for one scenario of this run.
    pub fn prefix(&self, scenario: &str) -> String {
        let scenario: String = scenario.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        format!("hrbench-{}-{scenario}", self.run)
    }
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .next()
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<u64>().ok())
        })
        .map_or("?".into(), |kb| format!("{} GiB", kb / 1024 / 1024));
    format!("{cpu}, {cores} cores, {memory}")
}

#[actix_web::main]
async fn main() {
    let args = Args::parse();
    let bench = Bench {
        redis: args.redis.clone(),
        quick: args.quick,
        run: format!("{:06x}", rand::random::<u32>() & 0xff_ffff),
    };
    let wanted = |name: &str| args.scenarios.is_empty() || args.scenarios.iter().any(|s| s == name);
    println!("hookrouter benchmark{}", if args.quick { " (--quick)" } else { "" });
    println!("machine: {}", machine());
    println!("service: {}", service::binary().display());

    // The ceiling, for the body a delivery carries and the connections 10 webhooks use.
    let connections = 10 * 16;
    let body = bytes::Bytes::from(format!(
        r#"{{"id":"6b087e4a6618a35b31267fde:1764181570123-0","time":1764181570123,{}"#,
        &publish::event(1, "u1", sink::now_us())[1..]
    ));
    let ceiling_sink = sink::Sink::start(None);
    let ceiling_secs = if args.quick { 1 } else { 3 };
    let ceiling = loadgen::ceiling(
        &ceiling_sink,
        connections,
        body.clone(),
        Duration::from_secs(ceiling_secs),
        None,
    )
    .await;
    ceiling_sink.stop().await;
    println!(
        "ceiling: the sink answers {ceiling:.0} req/s ({connections} keep-alive connections, built-in load generator, \
         median of 3 x {ceiling_secs} s)"
    );
    // The TLS variant: a CA made now, the sink's certificate, and the sink's own TLS ceiling.
    let tls = wanted("throughput-tls").then(tls::BenchTls::new);
    let mut tls_ceiling = 0.0;
    if let Some(tls) = &tls {
        let sink = sink::Sink::start_tls(tls.sink_config());
        let duration = Duration::from_secs(ceiling_secs);
        tls_ceiling = loadgen::ceiling(&sink, connections, body, duration, Some(tls.client_config())).await;
        sink.stop().await;
        println!(
            "TLS ceiling: the sink behind TLS answers {tls_ceiling:.0} req/s (the same, over {connections} kept-alive \
             TLS connections)"
        );
    }
    println!();

    let mut rows: Vec<Row> = Vec::new();
    let mut targets: Vec<Target> = Vec::new();
    let mut notes: Vec<String> = Vec::new();

    let mut plain_throughput = None;
    if wanted("throughput") {
        let row = scenarios::throughput(&bench, ceiling).await;
        plain_throughput = Some(row.rate);
        println!("throughput: {:.0} deliveries/s", row.rate);
        targets.push(Target {
            what: "throughput >= 0.5 x the sink's ceiling".into(),
            measured: format!("{:.0}/s = {:.2} x {:.0}/s", row.rate, row.rate / ceiling, ceiling),
            met: row.rate >= 0.5 * ceiling,
        });
        rows.push(row);
    }
    if wanted("refusing") {
        let row = scenarios::refusing(&bench).await;
        println!("throughput with 2% refused: {:.0} accepted deliveries/s", row.rate);
        match plain_throughput {
            Some(clean) => targets.push(Target {
                what: "2% refused: accepted deliveries/s >= 0.9 x the clean run".into(),
                measured: format!("{:.0}/s = {:.2} x {clean:.0}/s", row.rate, row.rate / clean),
                met: row.rate >= 0.9 * clean,
            }),
            None => notes.push("2% refused: run with --scenario throughput too, to compare with a clean run".into()),
        }
        rows.push(row);
    }
    if let Some(tls) = &tls {
        let row = scenarios::throughput_tls(&bench, tls, tls_ceiling).await;
        println!("throughput over TLS: {:.0} deliveries/s", row.rate);
        let versus_plain = plain_throughput.map_or(String::new(), |plain| {
            format!(" = {:.2} x plain HTTP's {plain:.0}/s", row.rate / plain)
        });
        notes.push(format!(
            "throughput over TLS: {:.0} deliveries/s{versus_plain}, {:.2} x the TLS sink's ceiling of {tls_ceiling:.0}/s; \
             {} deliveries over {} TLS connections (= handshakes; at most 10 webhooks x max_in_flight 16 = 160)",
            row.rate,
            row.rate / tls_ceiling,
            row.deliveries,
            row.connections
        ));
        rows.push(row);
    }
    if wanted("latency") {
        let row = scenarios::latency(&bench).await;
        let p99 = row.latency.map_or(f64::MAX, |l| l.p99);
        println!("latency: p99 {p99:.2} ms");
        targets.push(Target {
            what: "latency p99 <= 5 ms at 1,000 events/s x 10 webhooks".into(),
            measured: format!("p99 {p99:.2} ms"),
            met: p99 <= 5.0,
        });
        rows.push(row);
    }
    if wanted("isolation") {
        let found = scenarios::isolation(&bench).await;
        let cost = 1.0 - found.blast_beside.rate / found.blast_alone.rate;
        let p99 = |r: &Row| r.latency.map_or(f64::MAX, |l| l.p99);
        let slower = p99(&found.paced_beside) / p99(&found.paced_alone);
        println!(
            "isolation: black holes cost {:.1}% throughput, p99 x{slower:.2}",
            cost * 100.0
        );
        targets.push(Target {
            what: "black holes cost healthy webhooks <= 10% throughput".into(),
            measured: format!(
                "{:.0}/s alone, {:.0}/s beside 10 black holes ({:+.1}%)",
                found.blast_alone.rate,
                found.blast_beside.rate,
                -cost * 100.0
            ),
            met: cost <= 0.10,
        });
        targets.push(Target {
            what: "black holes cost healthy webhooks <= 2x p99 (at 1,000 events/s)".into(),
            measured: format!(
                "p99 {:.2} ms alone, {:.2} ms beside (x{slower:.2})",
                p99(&found.paced_alone),
                p99(&found.paced_beside)
            ),
            met: slower <= 2.0,
        });
        rows.extend([
            found.blast_alone,
            found.blast_beside,
            found.paced_alone,
            found.paced_beside,
        ]);
    }
    if wanted("many") {
        let (row, found) = scale::many_webhooks(&bench).await;
        let matching: Vec<String> = found
            .matching_ns
            .iter()
            .map(|(n, ns)| format!("{n}: {ns:.0} ns"))
            .collect();
        notes.push(format!(
            "many webhooks: {} registered through the API at {:.0}/s; RSS per idle webhook {:.0} B (grown while \
             registering), {:.0} B after a restart; ready {:.2} s after a restart; routing cost per event {}",
            found.webhooks,
            found.registration_per_s,
            found.bytes_per_webhook_registered,
            found.bytes_per_webhook_restarted,
            found.startup.as_secs_f64(),
            matching.join(", ")
        ));
        targets.push(Target {
            what: "<= 2 KB RSS per idle registered webhook".into(),
            measured: format!(
                "{:.0} B while registering, {:.0} B after a restart",
                found.bytes_per_webhook_registered, found.bytes_per_webhook_restarted
            ),
            met: found
                .bytes_per_webhook_registered
                .max(found.bytes_per_webhook_restarted)
                <= 2048.0,
        });
        let (smallest, largest) = (found.matching_ns[0].1, found.matching_ns[found.matching_ns.len() - 1].1);
        targets.push(Target {
            what: "matching cost per event flat from 1k to 100k webhooks".into(),
            measured: format!("{smallest:.0} ns -> {largest:.0} ns (x{:.2})", largest / smallest),
            met: largest <= smallest * 1.5,
        });
        targets.push(Target {
            what: format!("{} webhooks ready in <= 10 s", found.webhooks),
            measured: format!("{:.2} s", found.startup.as_secs_f64()),
            met: found.startup <= Duration::from_secs(10),
        });
        rows.push(row);
    }
    if wanted("backlog") {
        let (row, found) = scale::backlog(&bench).await;
        let growth = found.rss_queued_mib - found.rss_before_mib;
        notes.push(format!(
            "backlog: {} events queued for a dead endpoint in {:.1} s; RSS {:.1} MiB before, {:.1} MiB with the backlog \
             (Redis holds it: +{:.0} MiB); drained in {:.1} s when it came back",
            found.queued,
            found.queue_seconds,
            found.rss_before_mib,
            found.rss_queued_mib,
            found.redis_mib,
            found.drain_seconds
        ));
        targets.push(Target {
            what: format!("RSS growth <= 50 MB with {} queued", found.queued),
            measured: format!("{growth:+.1} MiB"),
            met: growth <= 50.0,
        });
        rows.push(row);
    }

    if wanted("bullmq") {
        let (row, found) = bullmq::wildduck_queue(&bench).await;
        notes.push(format!(
            "WildDuck's BullMQ queue: {} jobs added by WildDuck's publisher (bullmq 5.23.1) in {:.1} s; the BullMQ source \
             moved {:.0} jobs/s; {:.0} deliveries/s to 10 webhooks. Baseline: WildDuck 1.45.4's own worker, 10 webhooks, \
             {:.0} deliveries/s (measured with WildDuck, not by this harness)",
            found.jobs,
            found.publish_seconds,
            found.moved_per_s,
            row.rate,
            bullmq::WILDDUCK_WORKER_PER_S
        ));
        targets.push(Target {
            what: format!(
                "WildDuck's queue delivers faster than WildDuck 1.45.4's worker ({:.0}/s, 10 webhooks)",
                bullmq::WILDDUCK_WORKER_PER_S
            ),
            measured: format!("{:.0}/s (x{:.1})", row.rate, row.rate / bullmq::WILDDUCK_WORKER_PER_S),
            met: row.rate > bullmq::WILDDUCK_WORKER_PER_S,
        });
        rows.push(row);
    }

    println!("\n{}", report::table(&rows));
    for note in &notes {
        println!("{note}");
    }
    println!("\ntargets:\n{}", report::targets(&targets));
    if args.quick {
        println!(
            "(--quick: fewer events and 10k instead of 100k webhooks, so these figures are indicative; short runs \
             are noisier and fixed overheads weigh more per webhook. The targets are judged on a full run.)"
        );
    }
}
