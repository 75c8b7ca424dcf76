//! A Redis that answers but refuses every write, as production Redis does when it is full
//! (`maxmemory` reached with `noeviction`: `OOM`) or cannot save its snapshot (a full or broken
//! disk: `MISCONF`). Producers must be told "try again" (503 with `Retry-After`, the reason in
//! words), never "bug" (500); reads go on; `/health` says `refusingWrites` and why; nothing the
//! service answered 200 is lost, nothing it refused is delivered, and it picks up by itself once
//! an operator makes room or mends the disk.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use support::answer::call;
use support::process::{RedisProcess, ServiceProcess};
use support::redis_process::command_at;
use support::{eventually, unique_prefix, Receiver};

/// A field of `INFO persistence`.
async fn persistence(port: u16, field: &str) -> Option<String> {
    let info = match command_at(port, &["INFO", "persistence"]).await {
        redis::Value::BulkString(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        redis::Value::VerbatimString { text, .. } => text,
        other => panic!("INFO answered {other:?}"),
    };
    info.lines()
        .find_map(|line| line.strip_prefix(&format!("{field}:")).map(|v| v.trim().to_string()))
}

/// Publishes events `numbers` one at a time; returns the answers.
async fn publish(service: &ServiceProcess, numbers: std::ops::Range<u64>) -> Vec<support::answer::Answer> {
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let mut answers = Vec::new();
    for n in numbers {
        let body = json!({"ev": "message.new", "user": "u1", "n": n});
        answers.push(call(&client, "POST", &service.url("/events"), Some(body), n).await);
    }
    answers
}

/// Runs one spell of refused writes, `refuse` to `allow`, through a service with one webhook,
/// and checks everything the module's documentation promises. `words`: what the 503s and
/// `/health` must say.
async fn a_spell_of_refused_writes<R, A>(redis_process: RedisProcess, refuse: R, allow: A, words: &str)
where
    R: AsyncFnOnce(u16),
    A: AsyncFnOnce(u16),
{
    let mut redis_process = redis_process;
    redis_process.start().await;
    let port = redis_process.port;
    let prefix = unique_prefix();
    let log = std::env::temp_dir().join(format!("{prefix}.log"));
    let receiver = Receiver::ok();
    let service = ServiceProcess::start_logging(&redis_process.url(), &prefix, &[], Some(&log));
    service.wait_until_reading().await;
    let id = service.create_webhook(&receiver.url(), &["*"]).await;

    let before = publish(&service, 0..10).await;
    assert!(before.iter().all(|a| a.status == 200), "{before:?}");
    receiver
        .wait_for_numbers(&(0..10).collect(), Duration::from_secs(10))
        .await;

    refuse(port).await;
    let refused = publish(&service, 10..15).await;
    for answer in &refused {
        assert_eq!(answer.status, 503, "{answer:?}");
        assert_eq!(answer.retry_after.as_deref(), Some("1"), "{answer:?}");
        assert!(answer.error.contains(words), "the 503 says why: {answer:?}");
    }
    let (status, webhook) = service
        .call("GET", &format!("/webhooks/{id}"), None)
        .await
        .expect("an answer");
    assert_eq!(
        (status, webhook["id"].as_str()),
        (200, Some(id.as_str())),
        "reads go on: {webhook}"
    );
    let (status, health) = service.health().await.expect("/health answers");
    assert_eq!(status, 503, "{health}");
    assert_eq!(health["redis"], "refusingWrites", "{health}");
    assert!(
        health["redisError"].as_str().unwrap_or_default().contains(words),
        "{health}"
    );

    allow(port).await;
    let (status, health) = eventually("/health up again", Duration::from_secs(10), || async {
        service.health().await.filter(|(status, _)| *status == 200)
    })
    .await;
    assert_eq!(health["redis"], "up", "{health}");
    let after = publish(&service, 15..25).await;
    assert!(after.iter().all(|a| a.status == 200), "{after:?}");
    let accepted: HashSet<u64> = (0..10).chain(15..25).collect();
    receiver.wait_for_numbers(&accepted, Duration::from_secs(15)).await;
    // Refused writes are not made: nothing answered 503 is delivered, ever. Another event
    // published and delivered after the first 25 bounds "ever" to everything queued before it.
    assert!(publish(&service, 99..100).await.iter().all(|a| a.status == 200));
    let delivered = receiver
        .wait_for_numbers(&accepted.iter().copied().chain([99]).collect(), Duration::from_secs(10))
        .await;
    let refused_but_delivered: Vec<u64> = (10..15).filter(|n| delivered.contains(n)).collect();
    assert!(
        refused_but_delivered.is_empty(),
        "refused, then delivered: {refused_but_delivered:?}"
    );
    assert_eq!(status, 200);

    // The spell is one warning in the log, and no error.
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let errors: Vec<&str> = output.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "no errors logged: {errors:#?}");
    let warned = output.lines().filter(|l| l.contains("warned once per outage")).count();
    assert_eq!(warned, 1, "one warning for the spell:\n{output}");
    assert!(output.contains(words), "the warning says why:\n{output}");
}

#[actix_web::test]
async fn a_full_redis_answers_503_and_loses_nothing() {
    a_spell_of_refused_writes(
        RedisProcess::unstarted(),
        async |port| {
            command_at(port, &["CONFIG", "SET", "maxmemory-policy", "noeviction"]).await;
            // Below what it uses already: every write is refused from now on.
            command_at(port, &["CONFIG", "SET", "maxmemory", "1"]).await;
        },
        async |port| {
            command_at(port, &["CONFIG", "SET", "maxmemory", "0"]).await;
        },
        "out of memory",
    )
    .await;
}

#[actix_web::test]
async fn a_redis_that_cannot_save_answers_503_and_loses_nothing() {
    // `dir` is a protected setting: only a server started so lets `CONFIG SET` change it.
    let redis_process = RedisProcess::unstarted().with_args(&["--enable-protected-configs", "yes"]);
    let dir = std::env::temp_dir().join(format!("hrtest-misconf-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).expect("a directory for the snapshot");
    let good_dir = dir.to_str().expect("a UTF-8 path").to_string();
    a_spell_of_refused_writes(
        redis_process,
        async |port| {
            // A snapshot schedule (writes stop only when one is configured) and a directory
            // no file can be made in: the next snapshot fails, as on a full or broken disk.
            command_at(port, &["CONFIG", "SET", "save", "3600 1"]).await;
            command_at(port, &["CONFIG", "SET", "dir", "/proc"]).await;
            command_at(port, &["BGSAVE"]).await;
            eventually("the snapshot to fail", Duration::from_secs(10), || async {
                (persistence(port, "rdb_last_bgsave_status").await.as_deref() == Some("err")).then_some(())
            })
            .await;
        },
        async |port| {
            command_at(port, &["CONFIG", "SET", "dir", &good_dir]).await;
            command_at(port, &["BGSAVE", "SCHEDULE"]).await;
            eventually("a snapshot to succeed", Duration::from_secs(10), || async {
                (persistence(port, "rdb_last_bgsave_status").await.as_deref() == Some("ok")).then_some(())
            })
            .await;
        },
        "cannot save its data",
    )
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}
