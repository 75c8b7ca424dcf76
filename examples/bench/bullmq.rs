//! The WildDuck path: events published through BullMQ by WildDuck's own code path (the real
//! `bullmq` package, via `tests/node/wildduck-queue.js`, exactly as WildDuck's `lib/events.js`
//! adds them), taken by hookrouter's BullMQ source, delivered to 10 webhooks. Beside it,
//! WildDuck's own worker's figure for the same shape of load.

use std::process::Stdio;
use std::time::{Duration, Instant};

use tokio::io::AsyncWriteExt;

use super::publish::Publisher;
use super::report::Row;
use super::scenarios::{row, wait_deliveries};
use super::service::Service;
use super::sink::{now_us, Sink};
use super::Bench;

/// WildDuck 1.45.4's own webhook worker, 10 webhooks, on the same kind of machine: deliveries
/// per second (measured and reported with the issue that asked for the BullMQ source; it is
/// not measured by this harness).
pub const WILDDUCK_WORKER_PER_S: f64 = 1_385.0;

/// What the scenario found besides its row.
pub struct BullMqFindings {
    pub jobs: u64,
    /// Seconds WildDuck's publisher took to add the jobs (into the paused queue).
    pub publish_seconds: f64,
    /// Jobs per second the source moved out of BullMQ into the event stream.
    pub moved_per_s: f64,
}

/// WildDuck's publisher, run from `tests/node` (`scripts/test --setup-only` installs it).
async fn node(prefix: &str, redis: &str, args: &[&str], stdin: Option<String>) {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/node");
    assert!(
        std::path::Path::new(dir).join("node_modules/bullmq-5-23").exists(),
        "the Node packages are missing: run `scripts/test --setup-only` (npm ci in tests/node)"
    );
    let mut child = tokio::process::Command::new("node")
        .current_dir(dir)
        .arg("wildduck-queue.js")
        .arg("5-23")
        .arg(redis)
        .arg(prefix)
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("node is installed");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin");
        pipe.write_all(input.as_bytes()).await.expect("write to node");
    }
    let status = child.wait().await.expect("node finishes");
    assert!(status.success(), "wildduck-queue.js {args:?} failed");
}

/// 6: jobs added with WildDuck's publisher (bullmq 5.23.1) into a paused queue, then the queue
/// resumed: the time to the last of the deliveries to 10 webhooks.
pub async fn wildduck_queue(bench: &Bench) -> (Row, BullMqFindings) {
    let jobs: u64 = if bench.quick { 2_000 } else { 20_000 };
    let prefix = bench.prefix("bullmq");
    let bull_prefix = format!("{prefix}:wd:bull");
    let service = Service::start(
        &bench.redis,
        &prefix,
        &[
            ("HOOKROUTER__BULLMQ__ENABLED", "true".into()),
            ("HOOKROUTER__BULLMQ__PREFIX", bull_prefix.clone()),
        ],
    );
    service.wait_ready().await;
    let sink = Sink::start(None);
    for i in 0..10 {
        service.create_webhook(&sink.url(i), &["*"], None).await;
    }

    // WildDuck's events: marked.spam, as in the other scenarios, without a publish time (they
    // wait in the paused queue, so a latency would say nothing).
    let events: String = (0..jobs)
        .map(|n| {
            format!(
                "{{\"ev\":\"marked.spam\",\"user\":\"5f1e9d2c8b3a4e00{:08x}\",\"mailbox\":\"6f1e9d2c8b3a4e0012345678\",\
                 \"message\":\"{n}\",\"id\":{n},\"from\":\"spammer@example.net\",\"subject\":\"You won\"}}\n",
                n % 1000
            )
        })
        .collect();
    node(&bull_prefix, &bench.redis, &["pause"], None).await;
    let publishing = Instant::now();
    node(&bull_prefix, &bench.redis, &["add"], Some(events)).await;
    let publish_seconds = publishing.elapsed().as_secs_f64();

    // The clock starts when the queue is resumed (seen in its meta hash), not when node starts.
    let mut publisher = Publisher::connect(&bench.redis, &prefix).await;
    let resume = actix_rt::spawn({
        let (bull_prefix, redis) = (bull_prefix.clone(), bench.redis.clone());
        async move { node(&bull_prefix, &redis, &["resume"], None).await }
    });
    let meta = format!("{bull_prefix}:webhooks:meta");
    while publisher
        .command::<bool>(redis::cmd("HEXISTS").arg(&meta).arg("paused"))
        .await
    {
        actix_rt::time::sleep(Duration::from_millis(1)).await;
    }
    let started = now_us();
    let _ = resume.await;
    let wait = format!("{bull_prefix}:webhooks:wait");
    while publisher.command::<u64>(redis::cmd("LLEN").arg(&wait)).await > 0 {
        actix_rt::time::sleep(Duration::from_millis(2)).await;
    }
    let moved_seconds = (now_us() - started) as f64 / 1e6;
    let expected = jobs * 10;
    let got = wait_deliveries(&sink, expected, Duration::from_secs(600)).await;
    if got < expected {
        println!("  ! bullmq: only {got} of {expected} deliveries arrived");
    }
    let mut measured = row("WildDuck's BullMQ queue x 10", &service, &sink, jobs, started);
    measured.latency = None;
    service.stop();
    sink.stop().await;
    publisher.clean(&prefix).await;
    (
        measured,
        BullMqFindings {
            jobs,
            publish_seconds,
            moved_per_s: jobs as f64 / moved_seconds,
        },
    )
}
