//! Redis coming back without writes it had acknowledged — a replica promoted by Sentinel
//! before it received the last ones, or a crash losing the last second of an
//! `appendfsync everysec` file. Made to happen for real here: a private redis-server with
//! snapshots only, a snapshot taken while ten events wait in a webhook's queue, the events
//! then delivered (their queue entries removed, the delivery actor's cursor past them), and
//! Redis killed and started again from that snapshot: the ten are queued again, behind the
//! cursor of an actor that is still running.
//!
//! The actor must notice that Redis went away and learn its queue again, delivering the ten
//! once more (receivers deduplicate on `webhook-id`) — not pass over them, which the service's
//! self-check would find (`entry_passed_unread`: the test build aborts on it).

mod support;

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use support::process::{RedisProcess, ServiceProcess};
use support::redis_process::command_at;
use support::{eventually, unique_prefix, Receiver, Reply};

/// Entries in the webhooks' queues (the test's one webhook).
async fn queued(port: u16, prefix: &str) -> i64 {
    let keys: Vec<String> = match command_at(port, &["KEYS", &format!("{prefix}:queue:*")]).await {
        redis::Value::Array(keys) => keys
            .into_iter()
            .filter_map(|key| redis::from_redis_value::<String>(key).ok())
            .collect(),
        _ => Vec::new(),
    };
    let mut entries = 0;
    for key in keys {
        if let redis::Value::Int(n) = command_at(port, &["XLEN", &key]).await {
            entries += n;
        }
    }
    entries
}

#[actix_web::test]
async fn a_redis_back_without_its_last_writes_has_them_delivered_again() {
    let dir = std::env::temp_dir().join(format!("hrtest-snapshot-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&dir).expect("a directory for the snapshot");
    let mut redis = RedisProcess::unstarted().with_args(&[
        "--dir",
        dir.to_str().expect("a UTF-8 path"),
        "--dbfilename",
        "snapshot.rdb",
    ]);
    redis.start().await;
    let prefix = unique_prefix();
    let log = std::env::temp_dir().join(format!("{prefix}.log"));
    let open = Arc::new(AtomicBool::new(false));
    let gate = open.clone();
    let receiver = Receiver::scripted(move |_, _| Reply::Gate(gate.clone(), 200));
    let mut service = ServiceProcess::start_logging(&redis.url(), &prefix, &[], Some(&log));
    service.wait_until_reading().await;
    service.create_webhook(&receiver.url(), &["*"]).await;

    // Ten events queued, the first being sent and held at the receiver: the snapshot has all
    // ten in the queue.
    for n in 0..10 {
        let (status, reply) = service
            .call("POST", "/events", Some(json!({"ev": "message.new", "n": n})))
            .await
            .expect("an answer");
        assert_eq!(status, 200, "{reply}");
    }
    receiver.wait_for(1, Duration::from_secs(10)).await;
    eventually("ten entries in the queue", Duration::from_secs(10), || async {
        (queued(redis.port, &prefix).await == 10).then_some(())
    })
    .await;
    command_at(redis.port, &["SAVE"]).await;

    // Delivered: Redis removes the ten from the queue, and the actor's cursor passes them.
    open.store(true, Ordering::SeqCst);
    let ten: HashSet<u64> = (0..10).collect();
    receiver.wait_for_numbers(&ten, Duration::from_secs(10)).await;
    eventually("the queue emptied", Duration::from_secs(10), || async {
        (queued(redis.port, &prefix).await == 0).then_some(())
    })
    .await;
    let before = receiver.count();

    // Redis dies and comes back from the snapshot: the ten are queued again.
    redis.stop();
    redis.start().await;

    // Each is delivered once more; then a last event, delivered after them, shows nothing else
    // was left, and the self-check found nothing wrong (the service would have aborted).
    eventually("the ten delivered again", Duration::from_secs(20), || async {
        (receiver.count() >= before + 10).then_some(())
    })
    .await;
    let (status, reply) = service
        .call("POST", "/events", Some(json!({"ev": "message.new", "n": 10})))
        .await
        .expect("an answer");
    assert_eq!(status, 200, "{reply}");
    receiver.wait_for_numbers(&[10].into(), Duration::from_secs(10)).await;
    let per_delivery = receiver.per_delivery();
    let twice = per_delivery.values().filter(|count| **count == 2).count();
    let once = per_delivery.values().filter(|count| **count == 1).count();
    assert_eq!((twice, once, per_delivery.len()), (10, 1, 11), "{per_delivery:?}");
    assert!(service.try_exit_status().is_none(), "the service is still running");
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(!output.contains("invariant"), "no invariant violated:\n{output}");
    let _ = std::fs::remove_file(&log);
    let _ = std::fs::remove_dir_all(&dir);
}
