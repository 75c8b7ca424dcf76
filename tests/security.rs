//! Safe to expose: access tokens, Standard Webhooks signatures (checked by the official
//! library), secret rotation, the SSRF guard at both checks, metrics, and logs without secrets.

mod support;

use std::time::Duration;

use hookrouter::config::AccessToken;
use hookrouter::domain::{TypePattern, Webhook, WebhookId, WebhookSecret, WebhookUrl};
use hookrouter::startup::Application;
use serde_json::{json, Value};
use support::process::ServiceProcess;
use support::python::VerifyingReceiver;
use support::{eventually, Receiver, TestApp, REDIS_URL};

const WAIT: Duration = Duration::from_secs(10);
const TOKEN: &str = "test-token-0123456789abcdef";

async fn call_with(app: &TestApp, method: &str, path: &str, header: Option<(&str, &str)>) -> (u16, Value) {
    let mut request = app.client.request(method.parse().unwrap(), app.url(path));
    if let Some(header) = header {
        request = request.insert_header(header);
    }
    let mut response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[actix_web::test]
async fn tokens_are_required_everywhere_but_health_and_the_openapi_document() {
    let app = TestApp::spawn_with(|s| s.api.access_tokens = vec![AccessToken(TOKEN.into())]).await;
    // WildDuck's answer: 403, InvalidToken, "Invalid accessToken value".
    let (status, reply) = call_with(&app, "GET", "/webhooks", None).await;
    assert_eq!(status, 403);
    assert_eq!(
        reply,
        json!({"error": "Invalid accessToken value", "code": "InvalidToken", "message": "Invalid accessToken value"})
    );
    let (status, reply) = call_with(
        &app,
        "GET",
        "/webhooks",
        Some(("X-Access-Token", "wrong-token-0123456789abcdef")),
    )
    .await;
    assert_eq!((status, &reply["code"]), (403, &json!("InvalidToken")));
    let (status, _) = call_with(&app, "POST", "/events", None).await;
    assert_eq!(status, 403);
    let (status, _) = call_with(&app, "GET", "/metrics", None).await;
    assert_eq!(status, 403);
    let (status, _) = call_with(&app, "DELETE", "/webhooks/0123456789abcdef01234567", None).await;
    assert_eq!(status, 403, "the token is checked before the id");

    let (status, _) = call_with(&app, "GET", "/webhooks", Some(("X-Access-Token", TOKEN))).await;
    assert_eq!(status, 200);
    let bearer = format!("Bearer {TOKEN}");
    let (status, _) = call_with(&app, "GET", "/webhooks", Some(("Authorization", bearer.as_str()))).await;
    assert_eq!(status, 200);
    let (status, _) = call_with(&app, "GET", &format!("/webhooks?accessToken={TOKEN}"), None).await;
    assert_eq!(status, 200);

    // Health: open, but details only with a token.
    let (status, health) = call_with(&app, "GET", "/health", None).await;
    assert_eq!(status, 200);
    assert_eq!(health, json!({"success": true, "redis": "up"}));
    let (_, health) = call_with(&app, "GET", "/health", Some(("X-Access-Token", TOKEN))).await;
    assert_eq!(health["reader"], "running");
    let (status, _) = call_with(&app, "GET", "/openapi.json", None).await;
    assert_eq!(status, 200);
}

#[actix_web::test]
async fn without_tokens_only_a_loopback_address_is_served() {
    let prefix = support::TestPrefix::new();
    let mut settings = support::app::test_settings(&prefix);
    settings.api.listen = "0.0.0.0:0".into();
    let refused = Application::build(settings.clone()).await.err().expect("refused");
    let message = refused.to_string();
    assert!(
        message.contains("access_tokens") && message.contains("127.0.0.1"),
        "{message}"
    );
    settings.api.access_tokens = vec![AccessToken(TOKEN.into())];
    assert!(Application::build(settings).await.is_ok());
}

#[actix_web::test]
async fn secrets_are_returned_by_create_and_the_secret_route_only() {
    let app = TestApp::spawn().await;
    let (status, created) = app
        .post_webhook(json!({"type": ["*"], "url": "http://127.0.0.1:9/h"}))
        .await;
    assert_eq!(status, 200);
    let secret = created["secret"].as_str().unwrap().to_string();
    assert!(WebhookSecret::parse(&secret).is_ok());
    let id = created["id"].as_str().unwrap();
    let (_, reply) = app.get(&format!("/webhooks/{id}/secret")).await;
    assert_eq!(reply["secret"], secret);
    assert_eq!(reply["previousSecretExpires"], Value::Null);
    let (_, webhook) = app.get_webhook(id).await;
    let (_, list) = app.list_webhooks("").await;
    for shown in [webhook.to_string(), list.to_string()] {
        assert!(!shown.contains(&secret), "the secret leaked: {shown}");
    }

    let given = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
    let (_, created) = app
        .post_webhook(json!({"type": ["*"], "url": "http://127.0.0.1:9/h", "secret": given}))
        .await;
    assert_eq!(created["secret"], given);
    let (status, reply) = app
        .post_webhook(json!({"type": ["*"], "url": "http://127.0.0.1:9/h", "secret": "hunter2"}))
        .await;
    assert_eq!(status, 400);
    assert_eq!(reply["details"]["secret"], "must start with whsec_");
    assert!(!reply.to_string().contains("hunter2"), "the error echoes no secret");
}

#[actix_web::test]
async fn the_official_library_verifies_deliveries_before_and_during_a_rotation() {
    let app = TestApp::spawn().await;
    let receiver = VerifyingReceiver::start().await;
    let (_, created) = app.post_webhook(json!({"type": ["*"], "url": receiver.url()})).await;
    let id = created["id"].as_str().unwrap().to_string();
    let old = created["secret"].as_str().unwrap().to_string();
    let other = WebhookSecret::generate();
    receiver.set_secrets(&[&old, &other.expose()]).await;

    app.publish(json!({"ev": "user.created", "user": "u", "name": "Ünïcode ✓"}))
        .await;
    let before = receiver.wait_for(1).await;
    assert_eq!(before[0]["verified"], json!([true, false]), "{}", before[0]);
    assert_eq!(before[0]["signature"].as_str().unwrap().split(' ').count(), 1);

    let (status, rotated) = app
        .call_raw("POST", &format!("/webhooks/{id}/secret/rotate"), b"")
        .await;
    assert_eq!(status, 200, "{rotated}");
    let new = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert!(rotated["previousSecretExpires"].is_string());
    receiver.set_secrets(&[&old, &new]).await;
    app.publish(json!({"ev": "user.created", "user": "u", "n": 2})).await;
    let during = receiver.wait_for(2).await;
    assert_eq!(
        during[1]["verified"],
        json!([true, true]),
        "both secrets verify during the grace period"
    );
    assert_eq!(during[1]["signature"].as_str().unwrap().split(' ').count(), 2);
}

#[actix_web::test]
async fn after_the_grace_period_only_the_new_secret_signs() {
    let app = TestApp::spawn_with(|s| s.security.rotation_grace_ms = 1).await;
    let receiver = VerifyingReceiver::start().await;
    let (_, created) = app.post_webhook(json!({"type": ["*"], "url": receiver.url()})).await;
    let id = created["id"].as_str().unwrap().to_string();
    let old = created["secret"].as_str().unwrap().to_string();
    let (_, rotated) = app
        .call_raw("POST", &format!("/webhooks/{id}/secret/rotate"), b"")
        .await;
    let new = rotated["secret"].as_str().unwrap().to_string();
    receiver.set_secrets(&[&old, &new]).await;
    actix_rt::time::sleep(Duration::from_millis(20)).await;
    app.publish(json!({"ev": "a"})).await;
    let deliveries = receiver.wait_for(1).await;
    assert_eq!(deliveries[0]["verified"], json!([false, true]));
}

#[actix_web::test]
async fn internal_destinations_are_refused_at_creation() {
    let app = TestApp::spawn_with(|s| s.security.allow_cidrs.clear()).await;
    for (url, kind) in [
        ("http://10.0.0.1/hook", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://127.0.0.1:8787/", "loopback"),
        ("http://[::1]/", "loopback"),
        ("http://[::ffff:192.168.0.1]/", "private"),
        ("http://100.64.1.1/", "CGNAT"),
        ("http://localhost:6379/", "loopback"),
        ("http://224.0.0.1/", "multicast"),
    ] {
        let (status, reply) = app.post_webhook(json!({"type": ["*"], "url": url})).await;
        assert_eq!(status, 400, "{url}: {reply}");
        let detail = reply["details"]["url"].as_str().unwrap();
        assert!(
            detail.starts_with("is refused") && detail.contains(kind),
            "{url}: {detail}"
        );
    }
    let (status, _) = app
        .post_webhook(json!({"type": ["*"], "url": "https://93.184.216.34/hook"}))
        .await;
    assert_eq!(status, 200);
    let id = app.create_webhook("https://93.184.216.34/hook", &["*"], None).await;
    let (status, reply) = app.update_webhook(&id, json!({"url": "http://192.168.1.1/"})).await;
    assert_eq!(status, 400, "{reply}");
}

#[actix_web::test]
async fn internal_destinations_are_refused_again_at_delivery_time() {
    // Records written behind the API's back (as after a configuration change): the delivery
    // itself must refuse, whether the URL names an address or a host that resolves to one.
    let app = TestApp::spawn_with(|s| s.security.allow_cidrs.clear()).await;
    let receiver = Receiver::ok();
    let port = receiver
        .url()
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .to_string();
    let store = hookrouter::store::Store::new(&support::app::test_settings(&app.prefix).redis).unwrap();
    let mut ids = Vec::new();
    for url in [
        format!("http://127.0.0.1:{port}/hook"),
        format!("http://localhost:{port}/hook"),
    ] {
        let webhook = Webhook {
            id: WebhookId::generate(),
            url: WebhookUrl::parse(&url).unwrap(),
            types: vec![TypePattern::parse("*").unwrap()],
            user: None,
            created_ms: 0,
            enabled: true,
            disabled_reason: None,
            paused: false,
            secret: WebhookSecret::generate(),
            previous_secret: None,
            delivery: Default::default(),
        };
        store.webhooks().create(&webhook).await.unwrap();
        ids.push(webhook.id.to_string());
    }
    eventually("both webhooks known", WAIT, || async {
        let (_, health) = app.health().await;
        (health["webhooks"] == 2).then_some(())
    })
    .await;
    app.publish(json!({"ev": "a"})).await;
    for id in &ids {
        let attempts = eventually("a refused attempt", WAIT, || async {
            let (_, log) = app.get(&format!("/webhooks/{id}/attempts")).await;
            log["results"].as_array().filter(|r| !r.is_empty()).cloned()
        })
        .await;
        let error = attempts[0]["error"].as_str().unwrap();
        assert!(
            error.contains("destination refused") && error.contains("loopback"),
            "{error}"
        );
    }
    assert_eq!(receiver.count(), 0, "nothing reached the loopback receiver");
}

#[actix_web::test]
async fn metrics_are_exported_in_the_prometheus_format() {
    let app = TestApp::spawn_with(|s| {
        s.metrics.per_webhook = true;
        s.metrics.per_webhook_limit = 1;
    })
    .await;
    let receiver = Receiver::scripted(|n, _| support::Reply::Status(if n == 0 { 500 } else { 200 }));
    let first = app.create_webhook(&receiver.url(), &["a"], None).await;
    let second = app.create_webhook(&receiver.url(), &["b"], None).await;
    // The first webhook's event fails once then succeeds, before the second's is published: its
    // actor starts first and takes the one per-webhook label.
    app.publish(json!({"ev": "a"})).await;
    receiver.wait_for(2, WAIT).await;
    app.publish(json!({"ev": "b"})).await;
    app.publish_raw(b"garbage").await;
    receiver.wait_for(3, WAIT).await;
    let needles = [
        "hookrouter_events_read_total 3".to_string(),
        "hookrouter_events_rejected_total{part=\"event\"} 1".to_string(),
        format!("hookrouter_deliveries_total{{outcome=\"failed\",webhook=\"{first}\"}} 1"),
        "hookrouter_deliveries_total{outcome=\"delivered\",webhook=\"other\"} 1".to_string(),
        "hookrouter_delivery_duration_seconds_bucket{".to_string(),
        "hookrouter_retries_scheduled_total 1".to_string(),
        "hookrouter_backlog 0".to_string(),
        "hookrouter_reader_lag 0".to_string(),
        "hookrouter_delivery_actors 2".to_string(),
        "# TYPE hookrouter_in_flight gauge".to_string(),
    ];
    let metrics = || async {
        let mut response = app.client.get(app.url("/metrics")).send().await.unwrap();
        let content_type = response
            .headers()
            .get("content-type")
            .unwrap()
            .to_str()
            .unwrap()
            .to_string();
        assert!(content_type.starts_with("text/plain"), "{content_type}");
        String::from_utf8(response.body().await.unwrap().to_vec()).unwrap()
    };
    eventually("every expected series", WAIT, || async {
        let text = metrics().await;
        needles
            .iter()
            .all(|needle| text.contains(needle.as_str()))
            .then_some(())
    })
    .await;
    let text = metrics().await;
    for needle in &needles {
        assert!(text.contains(needle.as_str()), "missing {needle:?} in\n{text}");
    }
    assert!(
        !text.contains(&format!("webhook=\"{second}\"")),
        "the second webhook has no label of its own"
    );
}

#[actix_web::test]
async fn logs_never_show_secrets_or_tokens() {
    let prefix = support::TestPrefix::new();
    let log = std::env::temp_dir().join(format!("{prefix}.log"));
    let env = [("RUST_LOG", "debug"), ("HOOKROUTER__API__ACCESS_TOKENS", TOKEN)];
    let mut service = ServiceProcess::start_logging(REDIS_URL, &prefix, &env, Some(&log));
    service.wait_until_serving().await;
    let failing = Receiver::scripted(|_, _| support::Reply::Status(500));
    let client = awc::Client::default();
    // Receivers take tokens in the URL too: in the query and as a path segment.
    let url = format!("{}/Zx9abcDEF123ghiJKL456mno?key=querysecret0123456789", failing.url());
    let mut response = client
        .post(service.url("/webhooks"))
        .insert_header(("X-Access-Token", TOKEN))
        .send_json(&json!({"type": ["*"], "url": url, "secret": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"}))
        .await
        .unwrap();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap();
    let mut rotated = client
        .post(service.url(&format!("/webhooks/{id}/secret/rotate?accessToken={TOKEN}")))
        .send()
        .await
        .unwrap();
    let new_secret = rotated.json::<Value>().await.unwrap()["secret"]
        .as_str()
        .unwrap()
        .to_string();
    client
        .post(service.url("/events"))
        .insert_header(("Authorization", format!("Bearer {TOKEN}")))
        .send_json(&json!({"ev": "a"}))
        .await
        .unwrap();
    let _ = client
        .get(service.url("/webhooks"))
        .insert_header(("X-Access-Token", "wrong-token-0123456789"))
        .send()
        .await;
    failing.wait_for(2, WAIT).await;
    let (_, attempts) = service
        .call("GET", &format!("/webhooks/{id}/attempts?accessToken={TOKEN}"), None)
        .await
        .unwrap();
    assert!(
        attempts["results"].as_array().is_some_and(|a| !a.is_empty()),
        "{attempts}"
    );
    assert!(!attempts.to_string().contains("querysecret0123456789"), "{attempts}");
    // The API shows the URL as stored to a caller with a token, as WildDuck does.
    let (_, list) = service
        .call("GET", &format!("/webhooks?accessToken={TOKEN}"), None)
        .await
        .unwrap();
    assert_eq!(list["results"][0]["url"], url.as_str(), "{list}");
    service.terminate();
    let logs = std::fs::read_to_string(&log).unwrap();
    assert!(logs.lines().count() > 10, "the service logged at debug level:\n{logs}");
    for secret in [
        TOKEN,
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        new_secret.as_str(),
        "wrong-token",
        "querysecret0123456789",
        "Zx9abcDEF123ghiJKL456mno",
    ] {
        assert!(!logs.contains(secret), "{secret} appears in the logs");
    }
    let _ = std::fs::remove_file(&log);
}

/// `hookrouter import-wildduck` as an operator runs it, all output captured (stdout and
/// stderr, logs at info): it logged each imported URL whole, token and all, and named the Redis
/// URL with its password when Redis did not answer.
#[actix_web::test]
async fn the_wildduck_import_shows_no_secret_in_its_output() {
    let prefix = support::TestPrefix::new();
    let export = std::env::temp_dir().join(format!("{prefix}-secret.json"));
    std::fs::write(
        &export,
        r#"{"_id":{"$oid":"5f1e9d2c8b3a4e0012349901"},"type":["*"],"user":null,"url":"http://127.0.0.1:49999/hook?token=SUPERSECRET0123456789"}"#,
    )
    .expect("write the export");
    let run = |redis_url: String| {
        let export = export.clone();
        let prefix = prefix.to_string();
        async move {
            let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookrouter"))
                .args(["--config", "/nonexistent/hookrouter.toml", "import-wildduck"])
                .arg(&export)
                .env("HOOKROUTER__REDIS__URL", redis_url)
                .env("HOOKROUTER__REDIS__PREFIX", prefix)
                .env("HOOKROUTER__SECURITY__ALLOW_CIDRS", "127.0.0.0/8")
                .env("RUST_LOG", "info")
                .output()
                .await
                .expect("run hookrouter import-wildduck");
            let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
            text.push_str(&String::from_utf8_lossy(&output.stderr));
            (output.status.code(), text)
        }
    };

    let (code, out) = run(REDIS_URL.to_string()).await;
    assert_eq!(code, Some(0), "{out}");
    assert!(out.contains("imported 1,"), "{out}");
    assert!(out.contains("/hook?token=***"), "the URL is shown redacted: {out}");
    assert!(!out.contains("SUPERSECRET"), "{out}");

    let nobody = support::process::free_port();
    let (code, out) = run(format!("redis://importer:hunter2-password@127.0.0.1:{nobody}")).await;
    assert_ne!(code, Some(0), "{out}");
    assert!(out.contains("does not answer"), "{out}");
    assert!(out.contains("importer:***@"), "{out}");
    assert!(!out.contains("hunter2"), "{out}");
    let _ = std::fs::remove_file(export);
}
