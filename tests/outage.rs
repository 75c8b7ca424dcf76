//! A minute-long outage, with the default retry and circuit settings: what operators actually
//! meet. Nothing listens on the receiver's port for 40 s while 200 events queue; then it comes
//! back on the same port, and the whole backlog must be delivered within 60 s.

mod support;

use std::collections::HashSet;
use std::time::{Duration, Instant};

use hookrouter::config::{CircuitSettings, RetrySettings};
use serde_json::json;
use support::{eventually, Receiver, Reply, TestApp};

#[actix_web::test]
async fn a_forty_second_outage_is_over_within_a_minute_of_the_receiver_returning() {
    const EVENTS: u64 = 200;
    const OUTAGE: Duration = Duration::from_secs(40);
    let app = TestApp::spawn_with(|s| {
        s.retry = RetrySettings::default();
        s.circuit = CircuitSettings::default();
    })
    .await;
    // A port nothing listens on: every attempt is refused at once.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let url = format!("http://127.0.0.1:{port}/hook");
    let id = app.create_webhook(&url, &["*"], None).await;

    let down = Instant::now();
    // Events keep coming during the outage: half at once, half spread over 30 s.
    for n in 0..EVENTS / 2 {
        app.publish(json!({"ev": "message.new", "n": n})).await;
    }
    let health = app
        .health_until(&id, "the circuit to open", |h| h["state"] == "failing")
        .await;
    println!("after {:?}: {health}", down.elapsed());
    for n in EVENTS / 2..EVENTS {
        app.publish(json!({"ev": "message.new", "n": n})).await;
        actix_rt::time::sleep(Duration::from_millis(300)).await;
    }
    let (_, health) = app.webhook_health(&id).await;
    assert_eq!(health["state"], "failing", "{health}");
    assert_eq!(health["backlog"], EVENTS, "{health}");
    assert!(health["nextProbeAt"].is_string(), "{health}");
    actix_rt::time::sleep(OUTAGE.saturating_sub(down.elapsed())).await;

    // The receiver comes back on the same port.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).expect("the port is free again");
    let receiver = Receiver::on_listener(listener, |_, _| Reply::Status(200));
    let back = Instant::now();
    let (_, health) = app.webhook_health(&id).await;
    println!("receiver back after {:?} of outage: {health}", down.elapsed());
    eventually("the whole backlog delivered", Duration::from_secs(60), || async {
        let distinct: HashSet<u64> = receiver
            .received()
            .iter()
            .filter_map(|r| r.json()["n"].as_u64())
            .collect();
        (distinct.len() as u64 == EVENTS).then_some(())
    })
    .await;
    let drained = back.elapsed();
    let health = app.health_until(&id, "a healthy webhook", |h| h["backlog"] == 0).await;
    println!(
        "a {OUTAGE:?} outage: all {EVENTS} events delivered {drained:.1?} after the receiver returned; \
         {} requests; {health}",
        receiver.count()
    );
    assert!(drained <= Duration::from_secs(60));
    assert_eq!(health["state"], "healthy");
    assert_eq!(health["delivered"], EVENTS);
    assert_eq!(health["deadLettered"], 0, "an outage turns nothing into dead letters");
    assert_eq!(receiver.count() as u64, EVENTS, "each event once");
}
