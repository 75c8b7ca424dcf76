//! The BullMQ source under faults, with the real binary as a child process and WildDuck's real
//! publisher (`tests/node/wildduck-queue.js`): kill -9 while jobs are moving, in the same Redis
//! (atomic: every job becomes exactly one event) and with BullMQ in another Redis (at least
//! once: every job arrives, duplicates bounded by one batch).

mod support;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::bullmq::{Bullmq, WildDuckQueue};
use support::process::{RedisProcess, ServiceProcess};
use support::{eventually, Receiver, TestApp, REDIS_URL};

/// Distinct delivery ids (= distinct events in hookrouter's stream) per job number `n`.
fn events_per_job(receiver: &Receiver) -> HashMap<u64, HashSet<String>> {
    let mut per_job: HashMap<u64, HashSet<String>> = HashMap::new();
    for request in receiver.received() {
        let n = request.json()["n"].as_u64().expect("n");
        per_job.entry(n).or_default().insert(request.id());
    }
    per_job
}

async fn list_len(redis_url: &str, key: &str) -> u64 {
    let client = redis::Client::open(redis_url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
    redis::cmd("LLEN").arg(key).query_async(&mut conn).await.expect("LLEN")
}

/// Publishes `jobs` jobs into a paused queue, starts the service, subscribes a webhook,
/// resumes the queue and kills the service with SIGKILL once `kill_after` jobs left BullMQ's
/// wait list (and some are still there). Then starts it again and waits until every job was
/// delivered, BullMQ reports the queue drained, and the service has nothing left to route or
/// deliver (so jobs moved twice have arrived twice). Returns the distinct events per job, and
/// how many jobs had moved at the kill.
async fn kill_mid_consumption(
    queue: &WildDuckQueue,
    prefix: &str,
    env: &[(&str, &str)],
    jobs: usize,
    kill_after: u64,
) -> (HashMap<u64, HashSet<String>>, u64) {
    let receiver = Receiver::ok();
    queue.pause().await;
    let events: Vec<Value> = (0..jobs).map(|n| json!({"ev": "message.new", "n": n})).collect();
    assert_eq!(queue.add(&events).await, jobs);
    let mut service = ServiceProcess::start(REDIS_URL, prefix, env);
    service.wait_until_serving().await;
    let webhook = service.create_webhook(&receiver.url(), &["*"]).await;
    let wait = queue.key("wait");
    queue.resume().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while list_len(&queue.redis_url, &wait).await > jobs as u64 - kill_after {
        assert!(Instant::now() < deadline, "the source did not move {kill_after} jobs");
        actix_rt::time::sleep(Duration::from_millis(2)).await;
    }
    service.kill9();
    let left = list_len(&queue.redis_url, &wait).await;
    let moved = jobs as u64 - left;
    assert!(
        left > 0,
        "the kill came after the source had moved every job; nothing was tested"
    );

    let service = ServiceProcess::start(REDIS_URL, prefix, env);
    eventually("every job delivered", Duration::from_secs(120), || async {
        (events_per_job(&receiver).len() == jobs).then_some(())
    })
    .await;
    queue.wait_until_drained(Duration::from_secs(30)).await;
    let health = format!("/webhooks/{webhook}/health");
    eventually("nothing left to route or deliver", Duration::from_secs(30), || async {
        let (_, service_health) = service.health().await?;
        let (_, webhook_health) = service.call("GET", &health, None).await?;
        (service_health["lag"] == 0 && webhook_health["backlog"] == 0).then_some(())
    })
    .await;
    (events_per_job(&receiver), moved)
}

#[actix_web::test]
async fn kill_dash_nine_mid_consumption_turns_every_job_into_exactly_one_event() {
    const JOBS: usize = 10_000;
    let prefix = support::TestPrefix::new();
    let queue = WildDuckQueue::new(Bullmq::WildDucks, REDIS_URL, &format!("{prefix}:wd:bull"));
    let bull_prefix = queue.prefix.clone();
    // One job per step, so the kill lands while jobs are still moving.
    let env = [
        ("HOOKROUTER__BULLMQ__ENABLED", "true"),
        ("HOOKROUTER__BULLMQ__PREFIX", bull_prefix.as_str()),
        ("HOOKROUTER__BULLMQ__BATCH_SIZE", "1"),
    ];
    let (per_job, moved) = kill_mid_consumption(&queue, &prefix, &env, JOBS, 3_000).await;
    let twice: Vec<_> = per_job.iter().filter(|(_, events)| events.len() > 1).collect();
    println!(
        "kill -9 mid-consumption (same Redis): {JOBS} jobs, {moved} moved before the kill, every job delivered; \
         jobs that became two events: {}",
        twice.len()
    );
    assert_eq!(per_job.len(), JOBS);
    assert!(twice.is_empty(), "jobs moved twice: {twice:?}");
}

#[actix_web::test]
async fn kill_dash_nine_with_bullmq_in_another_redis_loses_nothing_and_repeats_at_most_a_batch() {
    const JOBS: usize = 3_000;
    const BATCH: usize = 20;
    let mut bull_redis = RedisProcess::unstarted();
    bull_redis.start().await;
    let prefix = support::TestPrefix::new();
    let queue = WildDuckQueue::new(Bullmq::Latest, &bull_redis.url(), "wd:bull");
    let url = bull_redis.url();
    let batch = BATCH.to_string();
    let env = [
        ("HOOKROUTER__BULLMQ__ENABLED", "true"),
        ("HOOKROUTER__BULLMQ__URL", url.as_str()),
        ("HOOKROUTER__BULLMQ__BATCH_SIZE", batch.as_str()),
        ("HOOKROUTER__BULLMQ__LOCK_MS", "2000"),
        ("HOOKROUTER__REDIS__TIMEOUT_MS", "500"),
    ];
    let (per_job, moved) = kill_mid_consumption(&queue, &prefix, &env, JOBS, 1_000).await;
    let twice = per_job.values().filter(|events| events.len() > 1).count();
    println!(
        "kill -9 mid-consumption (BullMQ in another Redis): {JOBS} jobs, {moved} moved before the kill, every job \
         delivered; jobs that became two events: {twice} (bound: one batch, {BATCH})"
    );
    assert_eq!(per_job.len(), JOBS);
    assert!(per_job.values().all(|events| events.len() <= 2));
    assert!(twice <= BATCH, "{twice} jobs were moved twice");
}

#[actix_web::test]
async fn with_bullmq_in_another_redis_each_job_arrives_once_when_nothing_fails() {
    const JOBS: usize = 500;
    let mut bull_redis = RedisProcess::unstarted();
    bull_redis.start().await;
    let url = bull_redis.url();
    let receiver = Receiver::ok();
    let app = TestApp::spawn_with(|s| {
        s.bullmq.enabled = true;
        s.bullmq.url = url.clone();
        s.bullmq.batch_size = 50;
    })
    .await;
    app.create_webhook(&receiver.url(), &["*"], None).await;
    let queue = WildDuckQueue::new(Bullmq::WildDucks, &url, "wd:bull");
    let events: Vec<Value> = (0..JOBS).map(|n| json!({"ev": "message.new", "n": n})).collect();
    queue.add(&events[..JOBS / 2]).await;
    queue.add(&events[JOBS / 2..]).await;
    receiver.wait_for(JOBS, Duration::from_secs(30)).await;
    queue.assert_drained().await;
    let per_job = events_per_job(&receiver);
    assert_eq!(per_job.len(), JOBS);
    assert_eq!(receiver.count(), JOBS, "a job arrived twice");
    // Nothing of hookrouter's went to BullMQ's Redis, nor the other way round.
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let foreign: Vec<String> = redis::cmd("KEYS")
        .arg(format!("{}:*", app.prefix))
        .query_async(&mut conn)
        .await
        .unwrap();
    assert!(foreign.is_empty(), "{foreign:?}");
    let (_, health) = app.health().await;
    assert_eq!(health["bullmq"], "running");
}
