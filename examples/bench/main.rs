//! hookrouter's benchmark harness.
//!
//! ```text
//! cargo build --release && cargo run --release --example bench            # every scenario
//! cargo build --release && cargo run --release --example bench -- --quick # a few minutes at most
//! cargo run --release --example bench -- --scenario throughput --scenario latency
//! cargo run --release --example bench -- --scenario bullmq   # WildDuck's queue (needs node)
//! cargo run --release --example bench -- --sink nginx --scenario throughput   # nginx as the sink
//! ```
//!
//! It runs the release service binary as a child process (a fresh one per scenario, with its
//! own Redis key prefix), a keep-alive HTTP sink on loopback, registers webhooks through the
//! API, publishes events into the Redis stream (each carrying its publish time) and measures
//! end to end. Before the scenarios it measures the ceiling: the sink's own maximum request
//! rate for the same body and connection count, driven by wrk (and, printed beside it, by a
//! built-in keep-alive load generator). With `--sink nginx` the throughput scenario and the
//! ceiling use nginx as the sink. Everything is printed in one table, with the targets from
//! docs/benchmarks.md.
//! The `bullmq` scenario publishes through WildDuck's BullMQ queue with the real `bullmq`
//! package (`tests/node`, installed by `scripts/test --setup-only`). The `replicas-acked`
//! scenario starts a Redis primary and replica of its own (`redis-server` on free loopback
//! ports), to measure what `[redis] min_replicas_acked = 1` costs.

mod broadcast;
mod bullmq;
mod ceiling;
mod cost;
mod instances;
mod loadgen;
mod nginx;
mod one_host;
#[path = "../../tests/support/ports.rs"]
mod ports;
mod publish;
/// The tests' private redis-server processes, for the replicas-acked scenario (only a plain
/// server and a replica of it are used here).
#[allow(dead_code)]
#[path = "../../tests/support/redis_process.rs"]
mod redis_process;
mod replicas;
mod report;
mod results;
mod retention;
mod scale;
mod scenarios;
mod service;
mod sink;
mod tcp;
mod tls;
mod wrk;

use clap::Parser;

use ceiling::Ceiling;
use nginx::Nginx;
use results::Results;

#[derive(Parser)]
#[command(about = "Benchmark hookrouter end to end")]
struct Args {
    /// Fewer events per scenario: indicative figures in a fraction of the time.
    #[arg(long)]
    quick: bool,
    /// Scenarios to run (default: all): throughput, refusing, throughput-tls, latency,
    /// isolation, many, backlog, bullmq, broadcast, broadcast-one-host, instances, retention,
    /// replicas-acked.
    #[arg(long = "scenario")]
    scenarios: Vec<String>,
    /// The sink of the throughput scenario and its ceiling: `actix` (counts and latency) or
    /// `nginx` (counts only, from stub_status). The other scenarios always use the actix sink.
    #[arg(long, default_value = "actix", value_parser = ["actix", "nginx"])]
    sink: String,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
}

/// What every scenario needs.
pub struct Bench {
    pub redis: String,
    pub quick: bool,
    run: String,
    /// With `--sink nginx`: nginx, for the throughput scenario.
    pub nginx: Option<Nginx>,
}

impl Bench {
    /// A key prefix for one scenario of this run.
    pub fn prefix(&self, scenario: &str) -> String {
        let scenario: String = scenario.chars().filter(|c| c.is_ascii_alphanumeric()).collect();
        format!("hrbench-{}-{scenario}", self.run)
    }
}

/// Polls `check` until it returns Some or `timeout` passes (then panics with `what`): what
/// `redis_process` waits with (tests/support's `eventually`, which the bench does not include).
pub async fn eventually<T, F, Fut>(what: &str, timeout: std::time::Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        actix_rt::time::sleep(std::time::Duration::from_millis(20)).await;
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
        nginx: if args.sink == "nginx" {
            Some(Nginx::start().await)
        } else {
            None
        },
    };
    let wanted = |name: &str| args.scenarios.is_empty() || args.scenarios.iter().any(|s| s == name);
    println!("hookrouter benchmark{}", if args.quick { " (--quick)" } else { "" });
    println!("machine: {}", machine());
    println!(
        "service: {} (in a session of its own, as systemd starts it; instance.nice 0, the default, unless a scenario says)",
        service::binary().display()
    );

    // The ceiling, for the body a delivery carries and the connections 10 webhooks use.
    let connections = 10 * 16;
    let body = bytes::Bytes::from(format!(
        r#"{{"id":"6b087e4a6618a35b31267fde:1764181570123-0","time":1764181570123,{}"#,
        &publish::event(1, &publish::user(1), sink::now_us())[1..]
    ));
    let ceiling_secs = if args.quick { 1 } else { 3 };
    let ceiling = match &bench.nginx {
        Some(nginx) => {
            let ceiling = Ceiling::measure(&nginx.url(0), connections, &body, ceiling_secs, None).await;
            println!("ceiling: nginx (1 worker) answers {}", ceiling.describe());
            ceiling
        }
        None => {
            let sink = sink::Sink::start(None);
            let ceiling = Ceiling::measure(&sink.url(0), connections, &body, ceiling_secs, None).await;
            sink.stop().await;
            println!("ceiling: the sink answers {}", ceiling.describe());
            ceiling
        }
    };
    // The TLS variant: a CA made now, the sink's certificate, and the sink's own TLS ceiling.
    let tls = wanted("throughput-tls").then(tls::BenchTls::new);
    let mut tls_ceiling = None;
    if let Some(tls) = &tls {
        let sink = sink::Sink::start_tls(tls.sink_config());
        let client = Some(tls.client_config());
        let ceiling = Ceiling::measure(&sink.url(0), connections, &body, ceiling_secs, client).await;
        sink.stop().await;
        println!("TLS ceiling: the sink behind TLS answers {}", ceiling.describe());
        tls_ceiling = Some(ceiling);
    }
    println!();

    let mut results = Results::default();
    if wanted("throughput") {
        results.throughput(scenarios::throughput(&bench, ceiling.rate()).await, &ceiling);
        if bench.nginx.is_none() {
            results.throughput_without_flow_control(scenarios::throughput_without_flow_control(&bench).await);
        }
    }
    if wanted("refusing") {
        results.refusing(scenarios::refusing(&bench).await);
    }
    if let (Some(tls), Some(ceiling)) = (&tls, &tls_ceiling) {
        results.throughput_tls(scenarios::throughput_tls(&bench, tls, ceiling.rate()).await, ceiling);
    }
    if wanted("latency") {
        results.latency(scenarios::latency(&bench).await);
    }
    if wanted("isolation") {
        results.isolation(scenarios::isolation(&bench).await);
    }
    if wanted("many") {
        let (row, found) = scale::many_webhooks(&bench).await;
        results.many(row, found);
    }
    if wanted("backlog") {
        let (row, found) = scale::backlog(&bench).await;
        results.backlog(row, found);
    }
    if wanted("bullmq") {
        let (row, found) = bullmq::wildduck_queue(&bench).await;
        results.bullmq(row, found);
    }
    if wanted("broadcast") {
        let measured = broadcast::broadcast(&bench, 19).await;
        let baseline = broadcast::broadcast(&bench, 0).await;
        results.broadcast(measured, baseline);
    }
    if wanted("broadcast-one-host") {
        let on = one_host::broadcast_one_host(&bench, true).await;
        let off = one_host::broadcast_one_host(&bench, false).await;
        results.one_host(&on, &off);
    }
    if wanted("retention") {
        results.retention(retention::retention(&bench).await);
    }
    if wanted("replicas-acked") {
        results.replicas_acked(replicas::replicas_acked(&bench).await);
    }
    if wanted("instances") {
        let one = instances::steady(&bench, 1).await;
        let two = instances::steady(&bench, 2).await;
        let handover = instances::handover(&bench).await;
        results.instances(one, two, handover);
    }
    results.print(args.quick);
}
