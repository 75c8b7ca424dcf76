//! The dashboard's stream and access: single-use tickets (never the token in a URL), the open
//! page with its strict policy, a `problem` event while Redis is down, `closing` when the
//! service stops (without holding the stop up), and the OpenAPI document of these routes.

mod support;

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use hookrouter::config::AccessToken;
use serde_json::{json, Value};
use support::process::{RedisProcess, ServiceProcess};
use support::{TestApp, REDIS_URL};

const WAIT: Duration = Duration::from_secs(10);

/// Reads a stream until `event` arrives (or it ends, or 10 s pass); the text read so far.
async fn read_until<S>(body: &mut awc::ClientResponse<S>, event: &str) -> String
where
    S: futures_util::Stream<Item = Result<bytes::Bytes, awc::error::PayloadError>> + Unpin,
{
    let mut text = String::new();
    let deadline = Instant::now() + WAIT;
    while !text.contains(&format!("event: {event}\n")) && Instant::now() < deadline {
        match actix_rt::time::timeout(WAIT, body.next()).await {
            Ok(Some(Ok(chunk))) => text.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    text
}

#[actix_web::test]
async fn with_tokens_the_stream_takes_a_single_use_ticket_and_the_page_is_open() {
    const TOKEN: &str = "dashboard-test-token-0123456789";
    let app = TestApp::spawn_with(|s| s.api.access_tokens = vec![AccessToken(TOKEN.into())]).await;
    let anonymous = awc::Client::default();

    // The page, script and style hold no data and are open, with a strict policy.
    for (path, kind) in [
        ("/dashboard", "text/html"),
        ("/dashboard/assets/app.js", "text/javascript"),
        ("/dashboard/assets/detail.js", "text/javascript"),
        ("/dashboard/assets/app.css", "text/css"),
    ] {
        let response = anonymous.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let header = |name: &str| response.headers().get(name).unwrap().to_str().unwrap().to_string();
        assert!(header("content-type").starts_with(kind), "{path}");
        assert!(
            header("content-security-policy").contains("default-src 'none'"),
            "{path}"
        );
    }
    let missing = anonymous
        .get(app.url("/dashboard/assets/secrets.js"))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    // Data needs the token.
    for (method, path) in [("GET", "/dashboard/webhooks"), ("POST", "/dashboard/ticket")] {
        let response = anonymous
            .request(method.parse().unwrap(), app.url(path))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 403, "{method} {path}");
    }
    let stream = |query: String| anonymous.get(app.url(&format!("/dashboard/stream?{query}"))).send();
    let mut refused = stream(String::new()).await.unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["code"], "InvalidTicket");
    // The token itself does not open a stream either: only tickets do.
    let with_token = anonymous
        .get(app.url("/dashboard/stream"))
        .insert_header(("X-Access-Token", TOKEN))
        .send()
        .await
        .unwrap();
    assert_eq!(with_token.status(), 401);

    let (status, answer) = app.call_raw_json("POST", "/dashboard/ticket", json!({})).await;
    assert_eq!(status, 200, "{answer}");
    let ticket = answer["ticket"].as_str().unwrap().to_string();
    assert!(!ticket.contains(TOKEN));
    // What Redis holds is a digest, not the ticket.
    let keys: Vec<String> = app.redis(redis::cmd("KEYS").arg(app.key("ticket:*"))).await;
    assert_eq!(keys.len(), 1);
    assert!(!keys[0].contains(&ticket));

    let mut events = stream(format!("ticket={ticket}&state=healthy")).await.unwrap();
    assert_eq!(events.status(), 200);
    assert_eq!(events.headers().get("content-type").unwrap(), "text/event-stream");
    let text = read_until(&mut events, "view").await;
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .expect("a view event");
    let first: Value = serde_json::from_str(data).unwrap();
    assert_eq!(first["success"], true);
    assert!(first["summary"]["redis"] == "up");
    // A second view follows within a second.
    let started = Instant::now();
    let more = read_until(&mut events, "view").await;
    assert!(more.contains("event: view"), "{more}");
    assert!(started.elapsed() < Duration::from_millis(1_500));

    // Used up.
    assert_eq!(stream(format!("ticket={ticket}")).await.unwrap().status(), 401);
    assert_eq!(stream("ticket=made-up".into()).await.unwrap().status(), 401);
}

#[actix_web::test]
async fn a_stream_says_when_redis_is_down_and_carries_on_when_it_is_back() {
    let mut redis = RedisProcess::unstarted();
    redis.start().await;
    let app = TestApp::spawn_with(|s| {
        s.redis.url = redis.url();
        s.redis.timeout_ms = 500;
    })
    .await;
    let (_, answer) = app.call_raw_json("POST", "/dashboard/ticket", json!({})).await;
    let ticket = answer["ticket"].as_str().unwrap();
    let client = awc::Client::builder().timeout(Duration::from_secs(60)).finish();
    let mut events = client
        .get(app.url(&format!("/dashboard/stream?ticket={ticket}")))
        .send()
        .await
        .unwrap();
    assert!(read_until(&mut events, "view").await.contains("event: view"));

    redis.stop();
    let text = read_until(&mut events, "problem").await;
    let problem = text
        .split("event: problem\ndata: ")
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .expect("a problem event");
    let problem: Value = serde_json::from_str(problem).unwrap();
    assert_eq!(problem["redis"], "down", "{problem}");

    // The same stream goes on once Redis answers again.
    redis.start().await;
    let text = read_until(&mut events, "view").await;
    assert!(text.contains("event: view"), "{text}");
}

#[actix_web::test]
async fn open_streams_end_with_closing_and_do_not_hold_up_a_stop() {
    let prefix = support::TestPrefix::new();
    let mut service = ServiceProcess::start(REDIS_URL, &prefix, &[]);
    service.wait_until_serving().await;
    let client = awc::Client::builder().timeout(Duration::from_secs(60)).finish();
    let mut streams = Vec::new();
    for _ in 0..3 {
        let mut response = client.post(service.url("/dashboard/ticket")).send().await.unwrap();
        let answer: Value = response.json().await.unwrap();
        let ticket = answer["ticket"].as_str().unwrap();
        let mut events = client
            .get(service.url(&format!("/dashboard/stream?ticket={ticket}")))
            .send()
            .await
            .unwrap();
        assert!(read_until(&mut events, "view").await.contains("event: view"));
        streams.push(events);
    }
    let started = Instant::now();
    let status = service.terminate();
    let took = started.elapsed();
    assert!(status.success(), "{status:?}");
    // Without ending them, the API's stop would wait out its 5 s timeout for the streams.
    assert!(took < Duration::from_millis(4_000), "the stop took {took:?}");
    for events in &mut streams {
        let rest = read_until(events, "closing").await;
        assert!(rest.contains("event: closing"), "{rest}");
        assert!(matches!(events.next().await, None | Some(Err(_))), "the stream ends");
    }
}

#[actix_web::test]
async fn the_openapi_document_describes_the_dashboard_routes() {
    let app = TestApp::spawn().await;
    let (_, document) = app.get("/openapi.json").await;
    let paths = &document["paths"];
    for path in [
        "/dashboard",
        "/dashboard/webhooks",
        "/dashboard/ticket",
        "/dashboard/stream",
    ] {
        assert!(paths.get(path).is_some(), "{path} is not documented");
    }
    assert!(paths["/dashboard/stream"]["get"]["responses"]["200"]["content"]["text/event-stream"].is_object());
    assert!(document["components"]["schemas"]["View"].is_object());
    assert!(document["components"]["schemas"]["RecentRates"].is_object());
}
