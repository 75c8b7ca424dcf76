//! Broadcast (issue 13): 1,000 webhooks of type `*` on the sink and 200 events, so every event
//! fans out to 1,000 queues (200,000 deliveries). Meanwhile a client of its own PINGs Redis one
//! at a time (1 ms apart) from a thread of its own and records every round trip: a fan-out
//! that held Redis for long would show as a slow PING. Redis's slow log (every command of 1 ms
//! or more, meanwhile) says which commands were long: the fan-out scripts' own work, apart
//! from the scheduling of a loaded 2-core machine, which the PINGs cannot tell from it (there,
//! an XDEL of one entry can take 9 ms of wall time when Redis waits for a core). The same
//! broadcast runs again with the service at `instance.nice` 0, the baseline for what its lower
//! CPU priority buys Redis (src/priority.rs).

use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cost::{Cost, Probe};
use super::publish::{user, Publisher};
use super::report::Row;
use super::scenarios::{row, wait_deliveries};
use super::service::Service;
use super::sink::{now_us, Sink};
use super::Bench;

/// Redis PING round trips during the broadcast, and Redis's slow log meanwhile.
pub struct Pings {
    pub count: usize,
    pub p99_ms: f64,
    pub worst_ms: f64,
    pub slow: Slow,
}

/// What Redis's slow log recorded during the broadcast (every command of 1 ms or more).
#[derive(Default)]
pub struct Slow {
    /// The longest command of any kind: its name (a script by its file name) and ms.
    pub longest: Option<(String, f64)>,
    /// The longest fan-out script, in ms (0 when none took 1 ms).
    pub fanout_ms: f64,
    /// Commands that took 1 ms or more.
    pub count: usize,
}

/// Makes Redis's slow log record every command of 1 ms or more, from empty; answers the
/// settings it had, to put back with [`slow_commands`].
fn watch_slow_commands(redis: &str) -> (String, String) {
    let mut conn = redis::Client::open(redis)
        .and_then(|c| c.get_connection())
        .expect("a connection to redis");
    let get = |conn: &mut redis::Connection, name: &str| -> String {
        let (_, value): (String, String) = redis::cmd("CONFIG")
            .arg("GET")
            .arg(name)
            .query(conn)
            .expect("CONFIG GET");
        value
    };
    let was = (
        get(&mut conn, "slowlog-log-slower-than"),
        get(&mut conn, "slowlog-max-len"),
    );
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(1000)
        .arg("slowlog-max-len")
        .arg(100_000)
        .query(&mut conn)
        .expect("CONFIG SET");
    let _: () = redis::cmd("SLOWLOG")
        .arg("RESET")
        .query(&mut conn)
        .expect("SLOWLOG RESET");
    was
}

/// The script files' SHA-1s (how EVALSHA names them), to their file names.
fn script_names() -> std::collections::HashMap<String, String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/store/scripts");
    let mut names = std::collections::HashMap::new();
    for file in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
        if let Ok(text) = std::fs::read_to_string(file.path()) {
            let sha = redis::Script::new(&text).get_hash().to_string();
            names.insert(sha, file.file_name().to_string_lossy().into_owned());
        }
    }
    names
}

/// What the slow log holds since [`watch_slow_commands`]; puts its settings back to `was`.
fn slow_commands(redis: &str, was: &(String, String)) -> Slow {
    let mut conn = redis::Client::open(redis)
        .and_then(|c| c.get_connection())
        .expect("a connection to redis");
    let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
        .arg("GET")
        .arg(-1)
        .query(&mut conn)
        .expect("SLOWLOG GET");
    let _: () = redis::cmd("CONFIG")
        .arg("SET")
        .arg("slowlog-log-slower-than")
        .arg(&was.0)
        .arg("slowlog-max-len")
        .arg(&was.1)
        .query(&mut conn)
        .expect("CONFIG SET");
    let names = script_names();
    let text = |v: &redis::Value| match v {
        redis::Value::BulkString(b) => String::from_utf8_lossy(b).into_owned(),
        _ => String::new(),
    };
    let mut slow = Slow {
        count: entries.len(),
        ..Slow::default()
    };
    for entry in &entries {
        // id, unix time, µs, [command, args...], client address, client name
        let redis::Value::Array(parts) = entry else { continue };
        let (Some(redis::Value::Int(us)), Some(redis::Value::Array(args))) = (parts.get(2), parts.get(3)) else {
            continue;
        };
        let ms = *us as f64 / 1000.0;
        let mut name = args.first().map(text).unwrap_or_default().to_lowercase();
        if name == "evalsha" {
            let sha = args.get(1).map(text).unwrap_or_default();
            name = names.get(&sha).cloned().unwrap_or(format!("script {sha}"));
        }
        if name == "fanout.lua" {
            slow.fanout_ms = slow.fanout_ms.max(ms);
        }
        if slow.longest.as_ref().is_none_or(|(_, longest)| ms > *longest) {
            slow.longest = Some((name, ms));
        }
    }
    slow
}

/// PINGs Redis until `stop`, one at a time with 1 ms between, on a blocking connection in a
/// thread of its own (so the harness's own runtime does not delay them); every round trip.
fn ping_loop(redis: &str, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Vec<Duration>> {
    let client = redis::Client::open(redis).expect("redis url");
    let mut conn = client.get_connection().expect("a PING connection to redis");
    std::thread::spawn(move || {
        let mut samples = Vec::new();
        while !stop.load(Ordering::Relaxed) {
            let started = Instant::now();
            let pong: redis::RedisResult<String> = redis::cmd("PING").query(&mut conn);
            samples.push(started.elapsed());
            pong.expect("PING");
            std::thread::sleep(Duration::from_millis(1));
        }
        samples
    })
}

fn pings(mut samples: Vec<Duration>) -> Pings {
    samples.sort_unstable();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| {
        samples
            .get(((samples.len().max(1) - 1) as f64 * q).round() as usize)
            .copied()
    };
    Pings {
        count: samples.len(),
        p99_ms: at(0.99).map_or(0.0, ms),
        worst_ms: samples.last().copied().map_or(0.0, ms),
        slow: Slow::default(),
    }
}

/// Registers `count` webhooks of type `*`, webhook i to the sink's `/w/<i>`, 64 API calls at a
/// time.
async fn register(service: &Rc<Service>, sink: &Sink, count: usize) {
    for first in (0..count).step_by(64) {
        let calls: Vec<_> = (first..(first + 64).min(count))
            .map(|i| {
                let (service, url) = (service.clone(), sink.url(i));
                actix_rt::spawn(async move { service.create_webhook(&url, &["*"], None).await })
            })
            .collect();
        for call in calls {
            call.await.expect("a registration task");
        }
    }
}

/// 6: 1,000 webhooks × 200 events (50 with --quick); the row, and the PINGs meanwhile, with
/// the service at `instance.nice` = `nice` (19, the advice beside Redis; the baseline 0, the
/// default).
pub async fn broadcast(bench: &Bench, nice: u8) -> (Row, Pings) {
    let webhooks = 1_000;
    let events: u64 = if bench.quick { 50 } else { 200 };
    let prefix = bench.prefix(&format!("broadcast-nice{nice}"));
    let env = [("HOOKROUTER__INSTANCE__NICE", nice.to_string())];
    let service = Rc::new(Service::start(&bench.redis, &prefix, &env));
    service.wait_ready().await;
    let sink = Sink::start(None);
    let registering = Instant::now();
    register(&service, &sink, webhooks).await;
    println!(
        "  broadcast: {webhooks} webhooks registered in {:.2} s",
        registering.elapsed().as_secs_f64()
    );
    // Let the change feed settle before the first event.
    actix_rt::time::sleep(Duration::from_millis(500)).await;

    let mut publisher = Publisher::connect(&bench.redis, &prefix).await;
    let mut probe = Probe::connect(&bench.redis).await;
    let stop = Arc::new(AtomicBool::new(false));
    let before = probe.snapshot(&[&service]).await;
    let slowlog = watch_slow_commands(&bench.redis);
    let pinger = ping_loop(&bench.redis, stop.clone());
    let started = now_us();
    publisher.publish(0, events, |n| user(n % 1000)).await;
    let expected = events * webhooks as u64;
    let got = wait_deliveries(&sink, expected, Duration::from_secs(600)).await;
    stop.store(true, Ordering::Relaxed);
    let samples = pinger.join().expect("the PING thread");
    let after = probe.snapshot(&[&service]).await;
    if got < expected {
        println!("  ! broadcast: only {got} of {expected} deliveries arrived");
    }
    let mut found = pings(samples);
    found.slow = slow_commands(&bench.redis, &slowlog);
    let label = format!("broadcast: {webhooks} webhooks, nice {nice}");
    let mut measured = row(&label, &service, &sink, events, started);
    measured.cost = Some(Cost::between(
        &before,
        &after,
        got,
        &[("xadd", events), ("ping", found.count as u64)],
    ));
    let Ok(service) = Rc::try_unwrap(service) else {
        panic!("service still shared")
    };
    service.stop();
    sink.stop().await;
    publisher.clean(&prefix).await;
    (measured, found)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn worst_and_p99_of_the_round_trips() {
        let samples = (1..=200).map(Duration::from_millis).collect();
        let found = super::pings(samples);
        assert_eq!(found.count, 200);
        assert_eq!(found.worst_ms, 200.0);
        assert_eq!(found.p99_ms, 198.0);
    }
}
