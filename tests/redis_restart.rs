//! Redis restarted under load, as an operator restarts it: killed, then started again from an
//! append-only file large enough that loading it takes a while. Producers must be told "try
//! again" (503 with `Retry-After`) the whole time, down and loading alike, never "bug" (500),
//! and everything acknowledged must be delivered.

mod support;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashSet};
use std::rc::Rc;
use std::time::{Duration, Instant};

use serde_json::json;
use support::answer::{call, Answer};
use support::process::{RedisProcess, ServiceProcess};
use support::{eventually, unique_prefix, Receiver};

/// Filler keys of 100 bytes: about 83 MB of append-only file (41.6 MB measured for 300,000),
/// which took Redis 1.8 s to load on the development machine.
const FILL_KEYS: u64 = 600_000;

/// Counts answers by status.
fn by_status(answers: &[Answer]) -> BTreeMap<u16, usize> {
    let mut counts = BTreeMap::new();
    for answer in answers {
        *counts.entry(answer.status).or_default() += 1;
    }
    counts
}

#[actix_web::test]
async fn a_redis_loading_its_data_answers_producers_with_503_never_500() {
    let mut redis = RedisProcess::persistent();
    redis.start().await;
    redis.fill(FILL_KEYS, 100).await;
    let prefix = unique_prefix();
    let log = std::env::temp_dir().join(format!("{prefix}.log"));
    let receiver = Receiver::ok();
    let service = ServiceProcess::start_logging(&redis.url(), &prefix, &[], Some(&log));
    service.wait_until_reading().await;
    let id = service.create_webhook(&receiver.url(), &["*"]).await;

    // The producer: POST /events one after another, numbered, and now and then a read of the
    // webhook (another route, the same rule), until told to stop.
    let events: Rc<RefCell<Vec<Answer>>> = Rc::default();
    let reads: Rc<RefCell<Vec<Answer>>> = Rc::default();
    let stop = Rc::new(Cell::new(false));
    let producer = {
        let (events, reads, stop) = (events.clone(), reads.clone(), stop.clone());
        let (publish, read) = (service.url("/events"), service.url(&format!("/webhooks/{id}")));
        actix_rt::spawn(async move {
            let client = awc::Client::builder().timeout(Duration::from_secs(15)).finish();
            let mut n = 0;
            while !stop.get() {
                let body = json!({"ev": "message.new", "n": n});
                let answer = call(&client, "POST", &publish, Some(body), n).await;
                events.borrow_mut().push(answer);
                if n % 5 == 0 {
                    let answer = call(&client, "GET", &read, None, n).await;
                    reads.borrow_mut().push(answer);
                }
                n += 1;
                actix_rt::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let count = |status: u16| events.borrow().iter().filter(|a| a.status == status).count();
    eventually("20 events accepted", Duration::from_secs(15), || async {
        (count(200) >= 20).then_some(())
    })
    .await;

    // Down: killed.
    redis.stop();
    let before = count(503);
    eventually("503s while redis is down", Duration::from_secs(15), || async {
        (count(503) >= before + 5).then_some(())
    })
    .await;

    // Back, and loading its data: /health must say so, then say it is up.
    let restarted = Instant::now();
    redis.start_listening().await;
    // What /health said, each change once: down, loading, up.
    let mut seen: Vec<String> = Vec::new();
    while seen.last().map(String::as_str) != Some("up") {
        assert!(
            restarted.elapsed() < Duration::from_secs(60),
            "redis loaded within a minute: {seen:?}"
        );
        let redis = match service.health().await {
            Some((_, health)) => health["redis"].as_str().unwrap_or_default().to_string(),
            None => "no answer".to_string(),
        };
        if seen.last() != Some(&redis) {
            seen.push(redis);
        }
        actix_rt::time::sleep(Duration::from_millis(20)).await;
    }
    let loaded = restarted.elapsed();
    assert!(
        seen.iter().any(|s| s == "loading"),
        "/health said loading while redis loaded: {seen:?}"
    );
    let back = count(200);
    eventually("20 more events accepted", Duration::from_secs(15), || async {
        (count(200) >= back + 20).then_some(())
    })
    .await;
    stop.set(true);
    producer.await.expect("the producer ends");

    let events = events.borrow().clone();
    let reads = reads.borrow().clone();
    let loading_503s = events
        .iter()
        .filter(|a| a.status == 503 && a.error.contains("loading its data"))
        .count();
    println!(
        "redis restarted with {FILL_KEYS} keys: up after {loaded:?} ({seen:?}); POST /events {:?} \
         ({loading_503s} of the 503s while loading); GET /webhooks/{{id}} {:?}",
        by_status(&events),
        by_status(&reads)
    );
    for answer in events.iter().chain(&reads) {
        assert!(
            answer.status == 200 || answer.status == 503,
            "every answer is 200 or 503: {answer:?}"
        );
        if answer.status == 503 {
            assert_eq!(answer.retry_after.as_deref(), Some("1"), "{answer:?}");
        }
    }
    assert!(
        loading_503s > 0,
        "some events were published while redis loaded: {:?}",
        by_status(&events)
    );
    assert!(reads.iter().any(|a| a.status == 503), "reads met the outage too");

    // Every event answered 200 is delivered. (One answered 503 may have been written all the
    // same, its reply lost in the kill: delivered or not, it was never acknowledged.)
    let accepted: HashSet<u64> = events.iter().filter(|a| a.status == 200).map(|a| a.n).collect();
    let sent: HashSet<u64> = events.iter().map(|a| a.n).collect();
    let delivered = receiver.wait_for_numbers(&accepted, Duration::from_secs(30)).await;
    assert!(delivered.is_subset(&sent), "nothing delivered that was not sent");

    // The API's document says so, for clients and for the fuzzer that holds the API to it.
    let (_, document) = service.call("GET", "/openapi.json", None).await.expect("the document");
    for (path, method) in [("/events", "post"), ("/webhooks/{id}", "get"), ("/health", "get")] {
        let header = &document["paths"][path][method]["responses"]["503"]["headers"]["Retry-After"];
        assert!(header.is_object(), "{method} {path}: 503 documents Retry-After");
    }

    // The outage is one warning in the log, and no error.
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let errors: Vec<&str> = output.lines().filter(|l| l.contains("ERROR")).collect();
    assert!(errors.is_empty(), "no errors logged: {errors:#?}");
    let warned = output.lines().filter(|l| l.contains("warned once per outage")).count();
    assert_eq!(warned, 1, "one warning for the outage:\n{output}");
}
