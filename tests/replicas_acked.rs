//! `[redis] min_replicas_acked`: hookrouter acknowledges a write only once that many replicas
//! confirm it (`WAIT`). With a real primary and replica on loopback: events and webhook
//! changes are answered 200 while the replica follows; with the replica killed they are
//! answered 503 with `Retry-After` (try again), never 200; with it back, 200 again, and every
//! event answered 200 is delivered.

mod support;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::json;
use support::process::{RedisProcess, ServiceProcess};
use support::{eventually, unique_prefix, Receiver};

#[actix_web::test]
async fn with_min_replicas_acked_nothing_is_acknowledged_that_the_replica_lacks() {
    let mut primary = RedisProcess::unstarted();
    primary.start().await;
    let mut replica = RedisProcess::replica_of(primary.port);
    replica.start().await;
    let prefix = unique_prefix();
    let env = [
        ("HOOKROUTER__REDIS__MIN_REPLICAS_ACKED", "1"),
        ("HOOKROUTER__REDIS__REPLICA_WAIT_MS", "300"),
        ("HOOKROUTER__REDIS__TIMEOUT_MS", "2000"),
        ("HOOKROUTER__LEASES__TTL_MS", "4000"),
    ];
    let service = ServiceProcess::start(&primary.url(), &prefix, &env);
    service.wait_until_reading().await;
    let receiver = Receiver::ok();
    // The replica may still be syncing: the first change waits for it like any other.
    let id = eventually("a webhook created", Duration::from_secs(15), || async {
        let body = json!({"type": ["*"], "url": receiver.url()});
        let (status, reply) = service.call("POST", "/webhooks", Some(body)).await?;
        (status == 200).then(|| reply["id"].as_str().map(str::to_string))?
    })
    .await;

    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let publish = |n: u64| {
        let client = client.clone();
        let url = service.url("/events");
        async move {
            let mut response = client
                .post(url)
                .send_json(&json!({"ev": "message.new", "n": n}))
                .await
                .expect("the service answers");
            let retry_after = response.headers().contains_key("retry-after");
            let body: serde_json::Value = response.json().await.unwrap_or_default();
            (response.status().as_u16(), retry_after, body)
        }
    };
    let mut accepted = HashSet::new();
    for n in 0..20 {
        let (status, _, body) = publish(n).await;
        assert_eq!(status, 200, "the replica follows: {body}");
        accepted.insert(n);
    }

    // The replica dies: nothing more is acknowledged, events and changes alike.
    replica.stop();
    for n in 20..25 {
        let (status, retry_after, body) = publish(n).await;
        assert_eq!(status, 503, "no replica confirms event {n}: {body}");
        assert!(retry_after, "a 503 says when to try again");
        let error = body["error"].as_str().unwrap_or_default();
        assert!(error.contains("too few Redis replicas confirmed the write"), "{error}");
    }
    let change = json!({"url": format!("{}/changed", receiver.url())});
    let (status, body) = service
        .call("PUT", &format!("/webhooks/{id}"), Some(change))
        .await
        .expect("the service answers");
    assert_eq!(status, 503, "no replica confirms the change: {body}");

    // Back: acknowledged again.
    replica.start().await;
    eventually("events acknowledged again", Duration::from_secs(20), || async {
        let (status, _, _) = publish(100).await;
        (status == 200).then_some(())
    })
    .await;
    accepted.insert(100);
    for n in 101..110 {
        let (status, _, body) = publish(n).await;
        assert_eq!(status, 200, "{body}");
        accepted.insert(n);
    }

    // Every event answered 200 is delivered. The ones answered 503 were written to the
    // primary all the same (only not confirmed): delivered too, or retried by the producer.
    let delivered = receiver.wait_for_numbers(&accepted, Duration::from_secs(20)).await;
    println!(
        "min_replicas_acked = 1: {} events answered 200, all delivered; 5 answered 503 with the replica down \
         ({} of them delivered all the same)",
        accepted.len(),
        (20..25).filter(|n| delivered.contains(n)).count()
    );
}

/// `WAIT` confirms only the writes of the connection it runs on: if Redis went away between a
/// write and its `WAIT` (the connection made anew has written nothing), a `WAIT` answered 1
/// confirms nothing, and the write is not acknowledged.
#[actix_web::test]
async fn a_wait_after_redis_went_away_confirms_nothing() {
    use hookrouter::config::RedisSettings;
    use hookrouter::store::{Store, StoreError};

    let mut primary = RedisProcess::unstarted();
    primary.start().await;
    let mut replica = RedisProcess::replica_of(primary.port);
    replica.start().await;
    let settings = RedisSettings {
        url: primary.url(),
        prefix: unique_prefix(),
        min_replicas_acked: 1,
        replica_wait_ms: 300,
        ..RedisSettings::default()
    };
    let store = Store::new(&settings).expect("a store");
    // Once the replica follows, a write is confirmed.
    eventually("the replica to confirm a write", Duration::from_secs(15), || async {
        let mark = store.before_write();
        store.ping().await.then_some(())?;
        store.replicated(mark).await.ok()
    })
    .await;

    let mark = store.before_write();
    // Redis goes away for this process: a connection refused (here, to a port nothing
    // listens on, as a restarted Redis refuses while it is down).
    let gone = RedisSettings {
        url: RedisProcess::unstarted().url(),
        ..settings.clone()
    };
    assert!(!Store::new(&gone).expect("a store").ping().await);
    match store.replicated(mark).await {
        Err(StoreError::NotReplicated { wanted: 1, acked: 0 }) => {}
        other => panic!("confirmed across a lapse: {other:?}"),
    }
    let mark = store.before_write();
    assert!(
        store.replicated(mark).await.is_ok(),
        "a write after the lapse is confirmed"
    );
}
