//! The REST API: every route's success and error shapes (WildDuck-compatible).

mod support;

use std::collections::HashSet;
use std::time::Duration;

use serde_json::{json, Value};
use support::{eventually, TestApp};

const URL: &str = "http://127.0.0.1:9/hook";
const ANN: &str = "5f1e9d2c8b3a4e00aaaaaaaa";
const BOB: &str = "5f1e9d2c8b3a4e00bbbbbbbb";

fn assert_error(status: u16, body: &Value, expected_status: u16, code: &str) {
    assert_eq!(status, expected_status, "{body}");
    assert_eq!(body["code"], code, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
}

#[actix_web::test]
async fn create_then_get_returns_wildduck_shapes() {
    let app = TestApp::spawn_with(|s| s.webhooks.enabled = false).await;
    let (status, created) = app
        .post_webhook(json!({"type": ["user.*", "marked.spam"], "url": URL, "user": "5f1e9d2c8b3a4e0012345678", "sess": "s1", "ip": "127.0.0.1"}))
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["success"], true);
    let id = created["id"].as_str().unwrap();
    assert_eq!(id.len(), 24);
    assert!(id.bytes().all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));

    let (status, webhook) = app.get_webhook(id).await;
    assert_eq!(status, 200);
    assert_eq!(webhook["success"], true);
    assert_eq!(webhook["id"], id);
    assert_eq!(webhook["type"], json!(["user.*", "marked.spam"]));
    assert_eq!(webhook["user"], "5f1e9d2c8b3a4e0012345678");
    assert_eq!(webhook["url"], URL);
    assert_eq!(webhook["enabled"], true);
    let created_at = webhook["created"].as_str().unwrap();
    assert!(created_at.ends_with('Z') && created_at.len() == 24, "{created_at}");

    let (_, global) = app.post_webhook(json!({"type": ["*"], "url": URL})).await;
    let (_, webhook) = app.get_webhook(global["id"].as_str().unwrap()).await;
    assert_eq!(webhook["user"], Value::Null);
}

#[actix_web::test]
async fn create_names_every_broken_field() {
    let app = TestApp::spawn_with(|s| s.webhooks.enabled = false).await;
    let cases = [
        (json!({"url": URL}), "type", "is required"),
        (json!({"type": ["*"]}), "url", "is required"),
        (json!({"type": [], "url": URL}), "type", "must list 1 to 256"),
        (json!({"type": ["a*"], "url": URL}), "type", "'*' may only be"),
        (json!({"type": [5], "url": URL}), "type", "must be a string"),
        (
            json!({"type": vec!["a"; 257], "url": URL}),
            "type",
            "must list 1 to 256 event type patterns (has 257)",
        ),
        (json!({"type": "user.*", "url": URL}), "type", "must be a list"),
        (
            json!({"type": ["a".repeat(129)], "url": URL}),
            "type",
            "at most 128 bytes",
        ),
        (
            json!({"type": ["*"], "url": "ftp://x"}),
            "url",
            "must use http or https",
        ),
        (json!({"type": ["*"], "url": "nope"}), "url", "must be a valid URL"),
        (
            json!({"type": ["*"], "url": format!("http://x/{}", "a".repeat(2048))}),
            "url",
            "2048",
        ),
        (
            json!({"type": ["*"], "url": URL, "user": 5}),
            "user",
            "must be a string",
        ),
        (
            json!({"type": ["*"], "url": URL, "user": "zzz"}),
            "user",
            "24 hexadecimal characters",
        ),
        (
            json!({"type": ["*"], "url": URL, "color": "red"}),
            "color",
            "is not allowed",
        ),
    ];
    for (body, field, rule) in cases {
        let (status, reply) = app.post_webhook(body.clone()).await;
        assert_error(status, &reply, 400, "InputValidationError");
        let detail = reply["details"][field]
            .as_str()
            .unwrap_or_else(|| panic!("no detail for {field}: {reply}"));
        assert!(detail.contains(rule), "{body}: {detail}");
    }
    // Every problem at once.
    let (_, reply) = app.post_webhook(json!({"type": "a*", "url": 1, "extra": true})).await;
    let fields: HashSet<&str> = reply["details"]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, HashSet::from(["type", "url", "extra"]));

    let (status, reply) = app.call_raw("POST", "/webhooks", b"{\"type\": [").await;
    assert_error(status, &reply, 400, "InputValidationError");
    assert!(reply["details"]["body"].as_str().unwrap().contains("valid JSON"));
    let (status, reply) = app.call_raw("POST", "/webhooks", b"[1,2]").await;
    assert_error(status, &reply, 400, "InputValidationError");
    assert_eq!(reply["details"]["body"], "must be a JSON object");
}

/// As WildDuck answers: an id that is not 24 hex characters is a 400, an unknown one a 404
/// "Invalid or unknown webhook identifier", on every route that takes an id.
#[actix_web::test]
async fn malformed_ids_are_refused_and_unknown_ids_are_not_found() {
    let app = TestApp::spawn_with(|s| s.webhooks.enabled = false).await;
    let routes = [
        "GET /",
        "PUT /",
        "DELETE /",
        "GET /health",
        "POST /pause",
        "GET /attempts",
        "GET /secret",
    ];
    for id in ["nope", "0123456789abcdef0123456z", "123"] {
        for route in routes {
            let (method, tail) = route.split_once(' ').unwrap();
            let tail = tail.trim_end_matches('/');
            let (status, reply) = app
                .call_raw_json(method, &format!("/webhooks/{id}{tail}"), json!({"enabled": false}))
                .await;
            assert_error(status, &reply, 400, "InputValidationError");
            assert_eq!(reply["details"]["id"], "must be 24 hexadecimal characters", "{route}");
        }
    }
    for route in routes {
        let (method, tail) = route.split_once(' ').unwrap();
        let tail = tail.trim_end_matches('/');
        let (status, reply) = app
            .call_raw_json(
                method,
                &format!("/webhooks/0123456789ABCDEF01234567{tail}"),
                json!({"enabled": false}),
            )
            .await;
        assert_error(status, &reply, 404, "WebhookNotFound");
        assert_eq!(reply["error"], "Invalid or unknown webhook identifier", "{route}");
    }
}

#[actix_web::test]
async fn unknown_routes_and_methods_answer_json() {
    let app = TestApp::spawn_with(|s| s.webhooks.enabled = false).await;
    let (status, reply) = app.get("/nothing/here").await;
    assert_error(status, &reply, 404, "RouteNotFound");
    let (status, reply) = app.call_raw("PATCH", "/webhooks", b"{}").await;
    assert_error(status, &reply, 405, "MethodNotAllowed");
}

#[actix_web::test]
async fn oversized_bodies_get_a_json_413() {
    let app = TestApp::spawn_with(|s| {
        s.webhooks.enabled = false;
        s.api.body_limit_bytes = 2048;
    })
    .await;
    let (status, reply) = app
        .post_webhook(json!({"type": ["*"], "url": format!("{URL}?{}", "a".repeat(4096))}))
        .await;
    assert_error(status, &reply, 413, "PayloadTooLarge");
}

#[actix_web::test]
async fn update_changes_each_field_and_validates() {
    let app = TestApp::spawn_with(|s| s.webhooks.enabled = false).await;
    let id = app.create_webhook(URL, &["*"], Some(ANN)).await;

    let (status, reply) = app
        .update_webhook(
            &id,
            json!({"type": ["user.*"], "url": "https://example.com/h", "user": null, "enabled": false}),
        )
        .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(reply, json!({"success": true}));
    let (_, webhook) = app.get_webhook(&id).await;
    assert_eq!(webhook["type"], json!(["user.*"]));
    assert_eq!(webhook["url"], "https://example.com/h");
    assert_eq!(webhook["user"], Value::Null);
    assert_eq!(webhook["enabled"], false);
    assert_eq!(webhook["disabledReason"], "disabled through the API");

    let (_, reply) = app
        .update_webhook(&id, json!({"enabled": true, "user": BOB.to_uppercase()}))
        .await;
    assert_eq!(reply["success"], true);
    let (_, webhook) = app.get_webhook(&id).await;
    assert_eq!(webhook["enabled"], true);
    assert_eq!(webhook["user"], BOB, "lowercased");
    assert!(webhook.get("disabledReason").is_none());

    let (status, reply) = app.update_webhook(&id, json!({})).await;
    assert_error(status, &reply, 400, "InputValidationError");
    let (status, reply) = app
        .update_webhook(&id, json!({"enabled": "yes", "url": "gopher://x"}))
        .await;
    assert_error(status, &reply, 400, "InputValidationError");
    assert_eq!(reply["details"]["enabled"], "must be true or false");
    assert_eq!(reply["details"]["url"], "must use http or https");
    let (status, reply) = app.update_webhook(&id, json!({"id": "x"})).await;
    assert_error(status, &reply, 400, "InputValidationError");
    assert_eq!(reply["details"]["id"], "is not allowed");
}

#[actix_web::test]
async fn delete_removes_the_webhook_and_everything_it_owns() {
    let app = TestApp::spawn_with(|s| s.webhooks.enabled = false).await;
    let id = app.create_webhook(URL, &["*"], Some(ANN)).await;
    // An API-only instance delivers nothing, so events queue up... but only once routed;
    // put something in the queue directly to see it dropped.
    let _: String = app
        .redis(
            redis::cmd("XADD")
                .arg(app.key(&format!("queue:{id}")))
                .arg("*")
                .arg("e")
                .arg("1-0"),
        )
        .await;
    let (status, reply) = app.delete_webhook(&id).await;
    assert_eq!(status, 200);
    assert_eq!(reply, json!({"success": true}));
    let (status, _) = app.get_webhook(&id).await;
    assert_eq!(status, 404);
    let exists: u64 = app
        .redis(redis::cmd("EXISTS").arg(app.key(&format!("queue:{id}"))))
        .await;
    assert_eq!(exists, 0);
    let (_, list) = app.list_webhooks(&format!("user={ANN}")).await;
    assert_eq!(list["total"], 0);
    let (status, reply) = app.delete_webhook(&id).await;
    assert_error(status, &reply, 404, "WebhookNotFound");
}

#[actix_web::test]
async fn delete_leaves_no_key_of_the_webhook_behind() {
    // A delivering instance with a failing receiver: the webhook gets a queue, retry state, a
    // due set, a circuit, dead letters, an attempt log, a health report and a lease.
    let app = TestApp::spawn_with(|s| {
        s.retry.max_attempts = 2;
        s.retry.initial_delay_ms = 60_000;
        s.retry.max_delay_ms = 60_000;
    })
    .await;
    let receiver = support::Receiver::scripted(|_, _| support::Reply::Status(500));
    let id = app.create_webhook(&receiver.url(), &["*"], None).await;
    let keys_of = |id: String| {
        let app = &app;
        async move {
            let keys: Vec<String> = app.redis(redis::cmd("KEYS").arg(app.key("*"))).await;
            let mut keys: Vec<String> = keys.into_iter().filter(|k| k.contains(&id)).collect();
            keys.sort();
            keys
        }
    };
    app.publish(json!({"ev": "a", "n": 1})).await;
    app.health_until(&id, "one waiting", |h| h["waiting"] == 1).await;
    // A replay of a letter made by hand would need a dead letter: make one with a second event
    // that fails twice (max_attempts 2) via retry now.
    app.publish(json!({"ev": "a", "n": 2})).await;
    app.health_until(&id, "two waiting", |h| h["waiting"] == 2).await;
    app.retry_now(&id).await;
    app.health_until(&id, "dead letters", |h| h["deadLettered"] == 2).await;
    app.publish(json!({"ev": "a", "n": 3})).await;
    let health = app.health_until(&id, "one waiting again", |h| h["waiting"] == 1).await;
    assert_eq!(health["state"], "retrying", "{health}");
    let before = eventually("every kind of key", Duration::from_secs(5), || async {
        let keys = keys_of(id.clone()).await;
        (keys.len() == 9).then_some(keys)
    })
    .await;
    let kinds: Vec<&str> = before.iter().map(|k| k.split(':').nth(1).unwrap()).collect();
    assert_eq!(
        kinds,
        ["attempts", "circuit", "dead", "due", "health", "lease", "queue", "retry", "webhook"],
        "{before:?}"
    );

    let (status, _) = app.delete_webhook(&id).await;
    assert_eq!(status, 200);
    assert_eq!(keys_of(id.clone()).await, Vec::<String>::new());
    // Once its actor has stopped, nothing it was doing wrote a key back.
    eventually("the actor to stop", Duration::from_secs(5), || async {
        let (_, health) = app.health().await;
        (health["actors"] == 0).then_some(())
    })
    .await;
    assert_eq!(keys_of(id.clone()).await, Vec::<String>::new());
}

/// As WildDuck lists them: URLs exactly as stored (so a client can compare them with its own),
/// secrets in them too; the dashboard masks them (tests/dashboard.rs).
#[actix_web::test]
async fn lists_and_the_webhook_show_urls_as_stored() {
    let app = TestApp::spawn_with(|s| s.webhooks.enabled = false).await;
    let url = "HTTPS://hook:pa55@Example.com/services/T0AB12CDE/aB3dE5gH7jK9mN1pQ3rS5tU7?key=s3cret-v4lue&v=2";
    let id = app.create_webhook(url, &["*"], None).await;
    let (_, list) = app.list_webhooks("").await;
    assert_eq!(list["results"][0]["url"], url);
    let (_, webhook) = app.get_webhook(&id).await;
    assert_eq!(webhook["url"], url);
}

#[actix_web::test]
async fn list_pages_through_more_than_250_webhooks_both_ways() {
    let app = TestApp::spawn_with(|s| s.webhooks.enabled = false).await;
    let mut created = Vec::new();
    for _ in 0..260 {
        created.push(app.create_webhook(URL, &["*"], None).await);
    }

    let (status, first) = app.list_webhooks("limit=250").await;
    assert_eq!(status, 200);
    assert_eq!(first["success"], true);
    assert_eq!(first["total"], 260);
    assert_eq!(first["page"], 1);
    assert_eq!(first["previousCursor"], false);
    let results = first["results"].as_array().unwrap();
    assert_eq!(results.len(), 250);
    let keys: HashSet<&str> = results[0].as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys, HashSet::from(["id", "type", "user", "url", "created", "enabled"]));

    let next = first["nextCursor"].as_str().expect("a next cursor");
    let (_, second) = app.list_webhooks(&format!("limit=250&next={next}&page=2")).await;
    assert_eq!(second["page"], 2);
    assert_eq!(second["nextCursor"], false);
    let second_results = second["results"].as_array().unwrap();
    assert_eq!(second_results.len(), 10);

    let mut seen: Vec<String> = results
        .iter()
        .chain(second_results)
        .map(|w| w["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(seen, created, "pages list every webhook once, oldest first");

    let previous = second["previousCursor"].as_str().expect("a previous cursor");
    let (_, back) = app.list_webhooks(&format!("limit=250&previous={previous}")).await;
    let back_ids: Vec<String> = back["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_string())
        .collect();
    seen.truncate(250);
    assert_eq!(back_ids, seen);
    assert_eq!(back["previousCursor"], false);

    let (_, default_page) = app.list_webhooks("").await;
    assert_eq!(default_page["results"].as_array().unwrap().len(), 20);
}

#[actix_web::test]
async fn list_filters_by_type_event_and_user() {
    let app = TestApp::spawn_with(|s| s.webhooks.enabled = false).await;
    let all = app.create_webhook(URL, &["*"], None).await;
    let users = app.create_webhook(URL, &["user.*"], None).await;
    let deletes = app.create_webhook(URL, &["user.delete.*"], Some(ANN)).await;
    let spam = app.create_webhook(URL, &["marked.spam"], Some(BOB)).await;

    let ids = |body: &Value| -> Vec<String> {
        body["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (_, body) = app.list_webhooks("type=user.*").await;
    assert_eq!(ids(&body), [users.as_str()]);
    let (_, body) = app.list_webhooks("event=user.delete.started").await;
    assert_eq!(ids(&body), [all.clone(), users.clone(), deletes.clone()]);
    assert_eq!(body["total"], 3);
    let (_, body) = app
        .list_webhooks(&format!("event=user.delete.started&user={BOB}"))
        .await;
    assert_eq!(ids(&body), [all.clone(), users.clone()]);
    let (_, body) = app.list_webhooks(&format!("event=marked.spam&user={BOB}")).await;
    assert_eq!(ids(&body), [all.clone(), spam.clone()]);
    let (_, body) = app.list_webhooks(&format!("user={ANN}")).await;
    assert_eq!(ids(&body), [deletes.as_str()]);
    let (_, body) = app.list_webhooks(&format!("user={ANN}&type=user.*")).await;
    assert!(ids(&body).is_empty());
}

#[actix_web::test]
async fn list_rejects_bad_query_parameters() {
    let app = TestApp::spawn_with(|s| s.webhooks.enabled = false).await;
    let long_type = format!("type={}", "a".repeat(129));
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=251", "limit"),
        ("limit=ten", "limit"),
        ("limit=", "limit"),
        ("page=one", "page"),
        ("next=garbage", "next"),
        ("previous=garbage", "previous"),
        ("event=a.*", "event"),
        ("user=zzz", "user"),
        ("user=", "user"),
        (long_type.as_str(), "type"),
        ("type[]=a", "type"),
        ("sess=", "sess"),
        ("ip=localhost", "ip"),
    ] {
        let (status, reply) = app.list_webhooks(query).await;
        assert_error(status, &reply, 400, "InputValidationError");
        assert!(reply["details"][field].is_string(), "{query}: {reply}");
    }
}

#[actix_web::test]
async fn post_events_validates_like_the_reader() {
    let app = TestApp::spawn_with(|s| {
        s.webhooks.enabled = false;
        s.events.max_bytes = 100;
    })
    .await;
    let (status, reply) = app.post_events(json!({"user": "u"})).await;
    assert_error(status, &reply, 400, "InputValidationError");
    assert_eq!(reply["details"]["ev"], "is required");
    let (status, reply) = app
        .post_events(json!([{"ev": "ok"}, {"ev": "a*"}, 7, {"ev": "x", "pad": "y".repeat(200)}]))
        .await;
    assert_error(status, &reply, 400, "InputValidationError");
    assert_eq!(reply["details"]["1.ev"], "must not contain '*'");
    assert_eq!(reply["details"]["2"], "must be a JSON object");
    assert!(reply["details"]["3"]
        .as_str()
        .unwrap()
        .contains("larger than the limit of 100"));
    assert_eq!(
        app.stream_len("events").await,
        0,
        "nothing is published when any event is bad"
    );
    let (status, reply) = app.post_events(json!([])).await;
    assert_error(status, &reply, 400, "InputValidationError");

    let (status, reply) = app.post_events(json!({"ev": "user.created", "user": "u"})).await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(
        app.stream_len("events").await,
        1,
        "an API-only instance leaves events waiting"
    );
}

#[actix_web::test]
async fn health_reports_redis_reader_and_lag() {
    let app = TestApp::spawn().await;
    let (status, health) = app.health().await;
    assert_eq!(status, 200);
    assert_eq!(health["success"], true);
    assert_eq!(health["redis"], "up");
    assert_eq!(health["reader"], "running");
    assert_eq!(health["lag"], 0);
    let generated = health["instance"].as_str().unwrap().to_string();
    let host = gethostname::gethostname().to_string_lossy().into_owned();
    assert!(generated.starts_with(&format!("{host}-")), "{generated}");

    let api_only = app
        .sibling(|s| {
            s.webhooks.enabled = false;
            s.instance.name = "api-only-1".into();
        })
        .await;
    let (_, health) = api_only.health().await;
    assert_eq!(health["reader"], "disabled");
    assert_eq!(health["instance"], "api-only-1");
}

#[actix_web::test]
async fn health_is_503_while_redis_is_unreachable() {
    let app = TestApp::spawn_with(|s| {
        s.redis.url = "redis://127.0.0.1:1".into();
        s.redis.timeout_ms = 300;
        s.webhooks.enabled = false;
    })
    .await;
    let (status, health) = app.health().await;
    assert_eq!(status, 503);
    assert_eq!(health["redis"], "down");
    let (status, reply) = app.post_webhook(json!({"type": ["*"], "url": URL})).await;
    assert_error(status, &reply, 503, "ServiceUnavailable");
}

#[actix_web::test]
async fn webhook_health_has_every_field() {
    let app = TestApp::spawn().await;
    let id = app.create_webhook(URL, &["*"], None).await;
    let (status, health) = app.webhook_health(&id).await;
    assert_eq!(status, 200);
    for field in [
        "success",
        "id",
        "state",
        "inFlight",
        "backlog",
        "consecutiveFailures",
        "lastSuccess",
        "lastFailure",
        "nextRetryAt",
        "delivered",
        "failed",
        "deadLettered",
    ] {
        assert!(health.get(field).is_some(), "{field} missing from {health}");
    }
    assert_eq!(health["state"], "healthy");
    assert_eq!(health["backlog"], 0);
    assert_eq!(health["lastSuccess"], Value::Null);
}
