//! HTTPS deliveries end to end: real TLS receivers (actix-web with rustls, and Python's ssl
//! module under the official Standard Webhooks library) with certificates from a CA made at
//! test time, trusted through `[delivery] ca_file`. Certificate failures must say what is wrong,
//! in health, the attempt log and dead letters, and be retried like any failure; connections
//! (and so handshakes) must be reused; a bad `ca_file` must stop the start.

mod support;

use std::time::Duration;

use hookrouter::config::Settings;
use hookrouter::startup::Application;
use serde_json::{json, Value};
use support::python::VerifyingReceiver;
use support::tcp::BlackHole;
use support::tls::{TempFile, TestCa};
use support::{eventually, Receiver, Reply, TestApp};
use time::OffsetDateTime;

const WAIT: Duration = Duration::from_secs(15);

/// A delivering app trusting `ca_file` besides the web roots.
async fn app_trusting(ca_file: &TempFile, adjust: impl FnOnce(&mut Settings)) -> TestApp {
    let ca_file = ca_file.path_str();
    TestApp::spawn_with(move |s| {
        s.delivery.ca_file = ca_file;
        adjust(s);
    })
    .await
}

#[actix_web::test]
async fn delivers_over_https_to_receivers_whose_ca_is_in_ca_file() {
    let ca = TestCa::new("hookrouter test CA");
    let ca_file = ca.file();
    let app = app_trusting(&ca_file, |_| {}).await;
    // One certificate for a DNS name, one for an IP address: both are checked by name.
    let by_name = Receiver::tls(&ca.issue(&["localhost"]), |_, _| Reply::Status(204));
    let by_address = Receiver::tls(&ca.issue(&["127.0.0.1"]), |_, _| Reply::Status(200));
    let named = app.create_webhook(&by_name.url_at("localhost"), &["*"], None).await;
    let addressed = app.create_webhook(&by_address.url(), &["*"], None).await;

    let entry = app
        .publish(json!({"ev": "user.created", "user": "u1", "name": "Ann"}))
        .await;
    for (receiver, webhook) in [(&by_name, &named), (&by_address, &addressed)] {
        let received = receiver.wait_for(1, WAIT).await;
        let delivery = &received[0];
        assert_eq!(
            delivery.header("webhook-id"),
            Some(format!("{webhook}:{entry}").as_str())
        );
        assert_eq!(delivery.json()["name"], "Ann");
        // The receiver offers h2 by ALPN; deliveries ask for HTTP/1.1 only.
        assert_eq!(delivery.version, "HTTP/1.1");
        let health = eventually("the delivery in health", WAIT, || async {
            let (_, health) = app.webhook_health(webhook).await;
            (health["delivered"] == 1).then_some(health)
        })
        .await;
        assert_eq!(health["state"], "healthy", "{health}");
        assert_eq!(health["lastFailure"], Value::Null, "{health}");
    }
}

#[actix_web::test]
async fn tls_connections_are_kept_alive_and_reused() {
    const DELIVERIES: usize = 200;
    const MAX_IN_FLIGHT: usize = 4;
    let ca = TestCa::new("hookrouter test CA");
    let ca_file = ca.file();
    let app = app_trusting(&ca_file, |s| s.delivery.max_in_flight = MAX_IN_FLIGHT).await;
    let receiver = Receiver::tls(&ca.issue(&["localhost"]), |_, _| Reply::Status(204));
    let webhook = app.create_webhook(&receiver.url_at("localhost"), &["*"], None).await;

    let events: Vec<Vec<u8>> = (0..DELIVERIES)
        .map(|n| json!({"ev": "message.new", "n": n}).to_string().into_bytes())
        .collect();
    support::publish_many(&app.prefix, &events).await;
    receiver.wait_for(DELIVERIES, WAIT).await;
    eventually("every delivery recorded", WAIT, || async {
        let (_, health) = app.webhook_health(&webhook).await;
        (health["delivered"] == DELIVERIES).then_some(())
    })
    .await;

    // A TLS connection is one handshake. With at most MAX_IN_FLIGHT requests at once, a pool
    // that reuses connections never needs more than MAX_IN_FLIGHT of them.
    let handshakes = receiver.connections();
    println!("{DELIVERIES} deliveries over TLS took {handshakes} handshakes (max_in_flight {MAX_IN_FLIGHT})");
    assert!(
        (1..=MAX_IN_FLIGHT).contains(&handshakes),
        "{handshakes} TLS handshakes for {DELIVERIES} deliveries"
    );
    assert_eq!(receiver.count(), DELIVERIES);
}

#[actix_web::test]
async fn the_official_library_verifies_a_delivery_received_over_tls() {
    let ca = TestCa::new("hookrouter test CA");
    let ca_file = ca.file();
    let app = app_trusting(&ca_file, |_| {}).await;
    let receiver = VerifyingReceiver::start_tls(&ca.issue(&["localhost"]), &ca).await;
    let (_, created) = app.post_webhook(json!({"type": ["*"], "url": receiver.url()})).await;
    let secret = created["secret"].as_str().expect("a secret").to_string();
    receiver.set_secrets(&[&secret]).await;

    app.publish(json!({"ev": "user.created", "user": "u", "name": "Ünïcode ✓"}))
        .await;
    let deliveries = receiver.wait_for(1).await;
    assert_eq!(deliveries[0]["verified"], json!([true]), "{}", deliveries[0]);
    let version = deliveries[0]["tls"].as_str().unwrap_or_default();
    assert!(version.starts_with("TLSv1."), "received over TLS: {}", deliveries[0]);
}

/// Waits for the delivery to `webhook` to be dead-lettered after `attempts` attempts, each of
/// which failed with `error`, and checks health and the attempt log say so.
async fn assert_dead_after_failing_with(app: &TestApp, webhook: &str, attempts: u64, error: &str) {
    let dead = eventually(&format!("a dead letter for {error}"), WAIT, || async {
        let entries = app.stream_entries(&format!("dead:{webhook}")).await;
        (!entries.is_empty()).then_some(entries)
    })
    .await;
    assert_eq!(dead[0]["attempts"], attempts.to_string());
    assert_eq!(dead[0]["error"], error);

    let (_, log) = app.get(&format!("/webhooks/{webhook}/attempts")).await;
    let log = log["results"].as_array().expect("attempts").clone();
    let numbers: Vec<u64> = log.iter().map(|a| a["attempt"].as_u64().unwrap()).collect();
    assert_eq!(
        numbers,
        (1..=attempts).rev().collect::<Vec<_>>(),
        "retried like any failure"
    );
    assert_eq!(log[0]["outcome"], "dead");
    assert!(log[1..].iter().all(|a| a["outcome"] == "failed"));
    assert!(
        log.iter().all(|a| a["error"] == error && a["status"] == Value::Null),
        "{log:?}"
    );

    let health = eventually("health to count the failures", WAIT, || async {
        let (_, health) = app.webhook_health(webhook).await;
        (health["failed"] == attempts).then_some(health)
    })
    .await;
    assert_eq!(health["lastFailure"]["error"], error, "{health}");
    assert_eq!(health["deadLettered"], 1);
    assert_eq!(health["delivered"], 0);
}

#[actix_web::test]
async fn certificate_failures_say_what_is_wrong_and_are_retried() {
    let trusted = TestCa::new("hookrouter test CA");
    let stranger = TestCa::new("a CA nobody trusts");
    let ca_file = trusted.file();
    let app = app_trusting(&ca_file, |_| {}).await; // max_attempts = 4
    let now = OffsetDateTime::now_utc().replace_nanosecond(0).unwrap();
    let expired_at = now - time::Duration::days(1);
    let never = |_: usize, _: &Value| Reply::Status(200);

    let expired = Receiver::tls(
        &trusted.issue_valid(&["127.0.0.1"], now - time::Duration::days(30), expired_at),
        never,
    );
    let other_name = Receiver::tls(&trusted.issue(&["hooks.example.org"]), never);
    let unknown_ca = Receiver::tls(&stranger.issue(&["localhost"]), never);
    let ca_as_own = Receiver::tls(&trusted.as_server_cert(), never);
    let cases = [
        (
            expired.url(),
            format!(
                "TLS handshake with 127.0.0.1 failed: its certificate expired at {}",
                hookrouter::clock::iso8601(expired_at.unix_timestamp() as u64 * 1000)
            ),
        ),
        (
            other_name.url_at("localhost"),
            "TLS handshake with localhost failed: its certificate is for hooks.example.org, not for localhost".into(),
        ),
        (
            unknown_ca.url_at("localhost"),
            "TLS handshake with localhost failed: its certificate is signed by an unknown issuer (not in the web \
             roots or [delivery] ca_file)"
                .into(),
        ),
        (
            ca_as_own.url_at("localhost"),
            "TLS handshake with localhost failed: it presented a CA certificate as its own; it must serve a \
             certificate issued by the CA (and [delivery] ca_file must hold the CA if it is private)"
                .into(),
        ),
    ];
    let mut webhooks = Vec::new();
    for (url, _) in &cases {
        webhooks.push(app.create_webhook(url, &["*"], None).await);
    }
    app.publish(json!({"ev": "user.created", "user": "u"})).await;
    for (webhook, (_, error)) in webhooks.iter().zip(&cases) {
        assert_dead_after_failing_with(&app, webhook, 4, error).await;
    }
    for receiver in [&expired, &other_name, &unknown_ca, &ca_as_own] {
        assert_eq!(receiver.count(), 0, "no request got past the handshake");
        assert_eq!(receiver.connections(), 0, "no handshake completed");
    }
}

#[actix_web::test]
async fn a_stalled_handshake_and_a_plain_http_server_say_so() {
    let app = TestApp::spawn().await; // timeout_ms = 2000: the handshake gets 1000 ms
    let silent = BlackHole::start().await;
    let plain = Receiver::ok();
    let stalled = app
        .create_webhook(&format!("https://127.0.0.1:{}/hook", silent.port), &["*"], None)
        .await;
    let not_tls = app
        .create_webhook(&format!("https://127.0.0.1:{}/hook", plain.port()), &["*"], None)
        .await;
    app.publish(json!({"ev": "user.created", "user": "u"})).await;
    assert_dead_after_failing_with(
        &app,
        &not_tls,
        4,
        "TLS handshake with 127.0.0.1 failed: the server did not answer in TLS (if it serves plain HTTP, use an \
         http:// URL)",
    )
    .await;
    assert_dead_after_failing_with(
        &app,
        &stalled,
        4,
        "TLS handshake with 127.0.0.1 timed out after 1000 ms",
    )
    .await;
    assert_eq!(silent.accepted(), 4, "one connection per attempt");
    assert_eq!(plain.count(), 0);
}

#[actix_web::test]
async fn a_bad_ca_file_stops_the_start_naming_the_key_and_the_path() {
    let prefix = support::TestPrefix::new();
    let start = |ca_file: String| async {
        let mut settings = support::app::test_settings(&prefix);
        settings.delivery.ca_file = ca_file;
        match Application::build(settings).await {
            Ok(_) => panic!("the start should fail"),
            Err(error) => error.to_string(),
        }
    };

    let missing = std::env::temp_dir().join("hookrouter-no-such-ca.pem");
    let error = start(missing.display().to_string()).await;
    assert_eq!(
        error,
        format!(
            "delivery.ca_file: {} cannot be read: No such file or directory (os error 2)",
            missing.display()
        )
    );

    // A file with a private key and no certificate (a classic mix-up of cert.pem and key.pem).
    let key_only = TempFile::with(TestCa::new("x").issue(&["localhost"]).key_pem().as_bytes(), "key.pem");
    let error = start(key_only.path_str()).await;
    assert_eq!(
        error,
        format!(
            "delivery.ca_file: {} holds no certificate: it must be a PEM bundle of \"-----BEGIN CERTIFICATE-----\" \
             blocks",
            key_only.path_str()
        )
    );
}

#[test]
fn ca_file_comes_from_its_environment_variable() {
    // nextest runs each test in its own process, so the variable reaches this test only.
    std::env::set_var("HOOKROUTER__DELIVERY__CA_FILE", "/etc/hookrouter/internal-ca.pem");
    let settings = Settings::load(std::path::Path::new("/nonexistent.toml")).unwrap();
    assert_eq!(settings.delivery.ca_file, "/etc/hookrouter/internal-ca.pem");
}
