//! Webhook URLs with credentials (`https://user:pass@host/hook`), as WildDuck takes them: the
//! receiver gets them as `Authorization: Basic`, as WildDuck's axios sends them; the API shows
//! the URL as stored to a caller with a token; and the password appears in no log line (at
//! debug level), attempt, dead letter, dashboard page, health report or metric.

mod support;

use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};
use support::process::{free_port, ServiceProcess};
use support::{eventually, Receiver, Reply, REDIS_URL};

const TOKEN: &str = "credentials-token-0123456789";
const PASSWORD: &str = "s3cr3t-Pa55w0rd";
const WAIT: Duration = Duration::from_secs(15);

async fn text(path: &str, service: &ServiceProcess) -> String {
    let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
    let mut response = client
        .get(service.url(path))
        .insert_header(("X-Access-Token", TOKEN))
        .send()
        .await
        .expect("the service answers");
    assert_eq!(response.status(), 200, "{path}");
    let body = response.body().limit(16 * 1024 * 1024).await.expect("a body");
    String::from_utf8(body.to_vec()).expect("text")
}

#[actix_web::test]
async fn credentials_in_a_url_are_sent_as_basic_auth_and_shown_nowhere_else() {
    let prefix = support::TestPrefix::new();
    let log = std::env::temp_dir().join(format!("{prefix}.log"));
    let env = [
        ("RUST_LOG", "debug"),
        ("HOOKROUTER__API__ACCESS_TOKENS", TOKEN),
        ("HOOKROUTER__METRICS__PER_WEBHOOK", "true"),
        ("HOOKROUTER__RETRY__INITIAL_DELAY_MS", "50"),
        ("HOOKROUTER__RETRY__MAX_DELAY_MS", "100"),
        ("HOOKROUTER__RETRY__MAX_ATTEMPTS", "2"),
    ];
    let mut service = ServiceProcess::start_logging(REDIS_URL, &prefix, &env, Some(&log));
    service.wait_until_serving().await;
    // The first attempt fails (an error in the attempt log), the second is delivered.
    let receiver = Receiver::scripted(|n, _| if n == 0 { Reply::Status(503) } else { Reply::Status(204) });
    let address = receiver.url().trim_start_matches("http://").to_string();
    let url = format!("http://hook-user:{PASSWORD}@{address}");
    // Nothing listens here: connection errors, then a dead letter, for a second webhook.
    let nowhere = format!("http://hook-user:{PASSWORD}@127.0.0.1:{}/down", free_port());
    let mut ids = Vec::new();
    for target in [&url, &nowhere] {
        let (status, created) = service
            .call(
                "POST",
                &format!("/webhooks?accessToken={TOKEN}"),
                Some(json!({"type": ["*"], "url": target})),
            )
            .await
            .expect("the service answers");
        assert_eq!(status, 200, "{created}");
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    service
        .call(
            "POST",
            &format!("/events?accessToken={TOKEN}"),
            Some(json!({"ev": "user.created", "n": 1})),
        )
        .await
        .expect("published");

    let got = receiver.wait_for(2, WAIT).await;
    let expected = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("hook-user:{PASSWORD}"))
    );
    for request in &got {
        assert_eq!(request.header("authorization"), Some(expected.as_str()));
        let host = request.header("host").unwrap_or_default();
        assert!(!host.contains(PASSWORD) && !host.contains('@'), "{host}");
    }
    let dead = format!("/webhooks/{}/dead?accessToken={TOKEN}", ids[1]);
    eventually("the unreachable webhook's dead letter", WAIT, || async {
        let (_, letters) = service.call("GET", &dead, None).await?;
        (letters["results"].as_array()?.len() == 1).then_some(())
    })
    .await;

    // Whoever may read the webhooks sees the URLs as stored, as in WildDuck.
    let (_, list) = service
        .call("GET", &format!("/webhooks?accessToken={TOKEN}"), None)
        .await
        .unwrap();
    let urls: Vec<&Value> = list["results"].as_array().unwrap().iter().map(|w| &w["url"]).collect();
    assert_eq!(urls, [&json!(url), &json!(nowhere)]);
    let (status, refused) = service.call("GET", "/webhooks", None).await.unwrap();
    assert_eq!(status, 403, "{refused}");

    // Everywhere else the credentials are masked.
    let mut shown = Vec::new();
    for id in &ids {
        for what in ["attempts", "dead", "health"] {
            shown.push(text(&format!("/webhooks/{id}/{what}"), &service).await);
        }
    }
    let attempts = &shown[0];
    assert!(
        attempts.contains("HTTP 503") && attempts.contains("\"delivered\""),
        "{attempts}"
    );
    let page = text("/dashboard/webhooks", &service).await;
    assert!(
        page.contains("***@127.0.0.1"),
        "the dashboard says there are credentials: {page}"
    );
    shown.push(page);
    let metrics = text("/metrics", &service).await;
    assert!(metrics.contains(&format!("webhook=\"{}\"", ids[0])), "{metrics}");
    shown.push(metrics);
    service.terminate();
    let logs = std::fs::read_to_string(&log).expect("the service's log");
    assert!(logs.contains("webhook created"), "debug logs were written:\n{logs}");
    shown.push(logs);
    for text in &shown {
        assert!(!text.contains(PASSWORD), "the password shows:\n{text}");
    }
    let _ = std::fs::remove_file(&log);
}
