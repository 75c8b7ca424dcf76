//! `[api] wildduck_tokens`: the access tokens WildDuck issues, judged as WildDuck's API judges
//! them. Tokens are issued by `tests/node/wildduck-token.js`, which does what WildDuck's
//! `userHandler.setAuthToken` does (ioredis, Node's crypto, `JSON.stringify`), into the test
//! Redis under WildDuck's own key `tn:token:<sha256>`; each test deletes the keys it made.

mod support;

use hookrouter::config::{AccessToken, Settings};
use serde_json::{json, Value};
use support::wildduck_tokens::{Issued, SECRET};
use support::TestApp;

const OPERATOR: &str = "operator-token-0123456789";
const ANN: &str = "5f1e9d2c8b3a4e00aaaaaaaa";
const BOB: &str = "5f1e9d2c8b3a4e00bbbbbbbb";
const URL: &str = "https://example.com/hook";
const DAY_MS: u64 = 86_400_000;

fn with_wildduck_tokens(settings: &mut Settings) {
    settings.webhooks.enabled = false;
    settings.api.wildduck_tokens = true;
    settings.api.wildduck_secret = AccessToken(SECRET.into());
    settings.api.access_tokens = vec![AccessToken(OPERATOR.into())];
}

/// A call with `token` in `X-Access-Token` (none: no token at all).
async fn call(app: &TestApp, token: Option<&str>, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = app.client.request(method.parse().unwrap(), app.url(path));
    if let Some(token) = token {
        request = request.insert_header(("X-Access-Token", token));
    }
    let mut response = match body {
        Some(body) => request.send_json(&body).await,
        None => request.send().await,
    }
    .expect("the API answers");
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn listed(list: &Value) -> Vec<String> {
    list["results"]
        .as_array()
        .map(|r| r.iter().map(|w| w["id"].as_str().unwrap().to_string()).collect())
        .unwrap_or_default()
}

fn forbidden(answer: (u16, Value), code: &str) {
    assert_eq!(answer.0, 403, "{}", answer.1);
    assert_eq!(answer.1["code"], code, "{}", answer.1);
}

#[actix_web::test]
async fn root_manager_and_webmail_tokens_manage_any_webhook() {
    let app = TestApp::spawn_with(with_wildduck_tokens).await;
    let mut issued = Issued::new();
    let ann = app.create_webhook(URL, &["*"], Some(ANN)).await;
    for role in ["root", "manager", "webmail"] {
        let token = issued.token("admin-1", role).await;
        let (status, list) = call(&app, Some(&token), "GET", "/webhooks", None).await;
        assert_eq!((status, listed(&list)), (200, vec![ann.clone()]), "{role}: {list}");
        let (status, created) = call(
            &app,
            Some(&token),
            "POST",
            "/webhooks",
            Some(json!({"type": ["user.*"], "url": URL, "user": BOB})),
        )
        .await;
        assert_eq!(status, 200, "{role}: {created}");
        let id = created["id"].as_str().unwrap();
        let (status, reply) = call(&app, Some(&token), "DELETE", &format!("/webhooks/{id}"), None).await;
        assert_eq!((status, reply), (200, json!({"success": true})), "{role}");
        // The rest of hookrouter's API is for operators: WildDuck's root, or hookrouter's tokens.
        let health = call(&app, Some(&token), "GET", &format!("/webhooks/{ann}/health"), None).await;
        match role {
            "root" => assert_eq!(health.0, 200, "{}", health.1),
            _ => forbidden(health, "MissingPrivileges"),
        }
    }
    let token = issued.token("admin-1", "manager").await;
    forbidden(
        call(&app, Some(&token), "GET", "/metrics", None).await,
        "MissingPrivileges",
    );
    forbidden(
        call(&app, Some(&token), "POST", "/events", Some(json!({"ev": "x"}))).await,
        "MissingPrivileges",
    );
}

#[actix_web::test]
async fn a_user_token_reads_its_own_webhooks_only() {
    let app = TestApp::spawn_with(with_wildduck_tokens).await;
    let mut issued = Issued::new();
    let ann = app.create_webhook(URL, &["*"], Some(ANN)).await;
    let bob = app.create_webhook(URL, &["*"], Some(BOB)).await;
    app.create_webhook(URL, &["*"], None).await;
    let token = issued.token(ANN, "user").await;

    for query in ["", "?user=me", &format!("?user={BOB}"), "?type=*"] {
        let (status, list) = call(&app, Some(&token), "GET", &format!("/webhooks{query}"), None).await;
        assert_eq!(status, 200, "{query}: {list}");
        assert_eq!(
            (listed(&list), &list["user"], &list["total"]),
            (vec![ann.clone()], &json!(ANN), &json!(1)),
            "{query}"
        );
    }
    // Input is checked first (400), rights next (403), as WildDuck does.
    let (status, _) = call(&app, Some(&token), "GET", "/webhooks?user=zzz", None).await;
    assert_eq!(status, 400);
    let (status, _) = call(&app, Some(&token), "POST", "/webhooks", Some(json!({"url": URL}))).await;
    assert_eq!(status, 400);
    let own = json!({"type": ["*"], "url": URL, "user": "me"});
    forbidden(
        call(&app, Some(&token), "POST", "/webhooks", Some(own)).await,
        "MissingPrivileges",
    );
    for id in [&ann, &bob] {
        forbidden(
            call(&app, Some(&token), "DELETE", &format!("/webhooks/{id}"), None).await,
            "MissingPrivileges",
        );
    }
    forbidden(
        call(&app, Some(&token), "GET", &format!("/webhooks/{ann}"), None).await,
        "MissingPrivileges",
    );
    let (_, list) = app.list_webhooks("").await;
    assert_eq!(list["total"], 3, "nothing was created or deleted");

    // A role WildDuck knows without webhook rights.
    let audit = issued.token("auditor-1", "audit").await;
    forbidden(
        call(&app, Some(&audit), "GET", "/webhooks", None).await,
        "MissingPrivileges",
    );
}

#[actix_web::test]
async fn expired_unknown_and_forged_tokens_are_refused() {
    let app = TestApp::spawn_with(with_wildduck_tokens).await;
    let mut issued = Issued::new();
    let exists = |key: String| {
        let app = &app;
        async move { app.redis::<u64>(redis::cmd("EXISTS").arg(key)).await == 1 }
    };
    // Older than the token lifetime (180 days): refused and deleted, as WildDuck does.
    let (old, old_key) = issued.token_signed(SECRET, ANN, "user", 1_209_600, 181 * DAY_MS).await;
    forbidden(call(&app, Some(&old), "GET", "/webhooks", None).await, "InvalidToken");
    assert!(!exists(old_key).await, "an expired token is deleted");
    // A token without a ttl has no lifetime either.
    let (ageless, _) = issued.token_signed(SECRET, ANN, "user", 0, 400 * DAY_MS).await;
    assert_eq!(call(&app, Some(&ageless), "GET", "/webhooks", None).await.0, 200);
    // Signed with another secret: refused, and left alone.
    let (forged, forged_key) = issued
        .token_signed("another secret", ANN, "manager", 1_209_600, 0)
        .await;
    forbidden(
        call(&app, Some(&forged), "GET", "/webhooks", None).await,
        "InvalidToken",
    );
    assert!(exists(forged_key).await);
    // A role roles.json does not have.
    let unknown_role = issued.token("admin-1", "superuser").await;
    forbidden(
        call(&app, Some(&unknown_role), "GET", "/webhooks", None).await,
        "InvalidToken",
    );
    // Never issued, not a token's shape, none at all: every call needs a token now.
    for token in [Some("0123456789abcdef0123456789abcdef01234567"), Some("nope"), None] {
        let answer = call(&app, token, "GET", "/webhooks", None).await;
        assert_eq!(
            answer.1,
            json!({"error": "Invalid accessToken value", "code": "InvalidToken", "message": "Invalid accessToken value"})
        );
        forbidden(answer, "InvalidToken");
    }
    // hookrouter's own tokens keep working beside them.
    assert_eq!(call(&app, Some(OPERATOR), "GET", "/webhooks", None).await.0, 200);
}

#[actix_web::test]
async fn each_use_extends_a_token_as_wildduck_does_within_its_lifetime() {
    let app = TestApp::spawn_with(|s| {
        with_wildduck_tokens(s);
        s.api.wildduck_token_lifetime_s = 3_600;
    })
    .await;
    let mut issued = Issued::new();
    let (token, key) = issued.token_signed(SECRET, ANN, "user", 1_000, 1_000).await;
    let _: () = app.redis(redis::cmd("EXPIRE").arg(&key).arg(30)).await;
    // From the query string and as a bearer token too, where WildDuck takes them.
    let (status, _) = call(&app, None, "GET", &format!("/webhooks?accessToken={token}"), None).await;
    assert_eq!(status, 200);
    let ttl: i64 = app.redis(redis::cmd("TTL").arg(&key)).await;
    assert!(
        (990..=1_000).contains(&ttl),
        "the use set the expiry to the token's ttl again: {ttl}"
    );
    let mut response = app
        .client
        .get(app.url("/webhooks"))
        .insert_header(("Authorization", format!("Bearer {token}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200, "{:?}", response.body().await);
    // The configured lifetime (an hour here) counts from when the token was made.
    let (older, older_key) = issued.token_signed(SECRET, ANN, "user", 1_000, 3_601_000).await;
    forbidden(call(&app, Some(&older), "GET", "/webhooks", None).await, "InvalidToken");
    let gone: u64 = app.redis(redis::cmd("EXISTS").arg(&older_key)).await;
    assert_eq!(gone, 0);
}
