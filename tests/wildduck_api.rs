//! WildDuck's webhook API, edge by edge: each request here gets the answer WildDuck 1.45's
//! routes (`lib/api/webhooks.js`) give it — status, `code`, error text where clients read it,
//! echoes and paging — and upper-case ObjectIds are lowercased wherever they enter, so they
//! route. WildDuck's own test file runs in `tests/wildduck.rs`; WildDuck's tokens in
//! `tests/wildduck_tokens.rs`.

mod support;

use std::time::Duration;

use hookrouter::domain::WILDDUCK_EVENT_TYPES;
use serde_json::{json, Value};
use support::{Receiver, TestApp};

const URL: &str = "https://example.com/hook";
const ANN: &str = "5f1e9d2c8b3a4e00aaaaaaaa";
const BOB: &str = "5f1e9d2c8b3a4e00bbbbbbbb";
const WAIT: Duration = Duration::from_secs(10);

async fn api_only() -> TestApp {
    TestApp::spawn_with(|s| s.webhooks.enabled = false).await
}

/// A request with a raw body of `content_type`.
async fn send(app: &TestApp, method: &str, path: &str, content_type: &str, body: &str) -> (u16, Value) {
    let mut response = app
        .request(method, path)
        .insert_header(("content-type", content_type))
        .send_body(body.to_string())
        .await
        .expect("the API answers");
    let status = response.status().as_u16();
    let body = response.body().await.expect("a body");
    (status, serde_json::from_slice(&body).expect("JSON"))
}

async fn post_form(app: &TestApp, path: &str, form: &str) -> (u16, Value) {
    send(app, "POST", path, "application/x-www-form-urlencoded", form).await
}

fn refused(status: u16, reply: &Value, field: &str) {
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["code"], "InputValidationError", "{reply}");
    assert!(reply["details"][field].is_string(), "no detail for {field}: {reply}");
}

fn ids(list: &Value) -> Vec<String> {
    list["results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|w| w["id"].as_str().unwrap().to_string())
        .collect()
}

#[actix_web::test]
async fn an_upper_case_user_id_is_lowercased_when_created_filtered_and_routed() {
    let receiver = Receiver::ok();
    let app = TestApp::spawn().await;
    let upper = ANN.to_uppercase();
    let (status, created) = app
        .post_webhook(json!({"type": ["user.*"], "url": receiver.url(), "user": upper}))
        .await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let (_, webhook) = app.get_webhook(&id).await;
    assert_eq!(webhook["user"], ANN);
    for user in [ANN.to_string(), upper.clone()] {
        let (_, list) = app.list_webhooks(&format!("user={user}")).await;
        assert_eq!(
            (ids(&list), &list["user"]),
            (vec![id.clone()], &json!(ANN)),
            "user={user}"
        );
    }
    let (_, list) = app.get(&format!("/webhooks/{}", id.to_uppercase())).await;
    assert_eq!(
        list["id"],
        id.as_str(),
        "an upper-case webhook id names the same webhook"
    );

    // Events from the stream with the user in either case reach it, with the user lowercased.
    app.publish(json!({"ev": "user.created", "user": upper, "n": 1})).await;
    app.publish(json!({"ev": "user.created", "user": ANN, "n": 2})).await;
    app.publish(json!({"ev": "user.created", "user": BOB, "n": 3})).await;
    let got = receiver.wait_for(2, WAIT).await;
    let mut seen: Vec<(i64, String)> = got
        .iter()
        .map(|r| {
            (
                r.json()["n"].as_i64().unwrap(),
                r.json()["user"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    assert_eq!(seen, [(1, ANN.to_string()), (2, ANN.to_string())]);
    app.settled(&[&id]).await;
    assert_eq!(receiver.count(), 2, "bob's event is not ann's");
}

#[actix_web::test]
async fn the_list_echoes_type_and_user_as_wildduck_does() {
    let app = api_only().await;
    let global = app.create_webhook(URL, &["User.Created", "marked.spam"], None).await;
    let ann = app.create_webhook(URL, &["user.created"], Some(ANN)).await;

    let (_, all) = app.list_webhooks("").await;
    assert!(all.get("type").is_none(), "no filter, no echo: {all}");
    assert_eq!(all["user"], Value::Null);
    assert_eq!(ids(&all), [global.clone(), ann.clone()]);
    let (_, by_type) = app.list_webhooks("type=USER.created").await;
    assert_eq!(by_type["type"], "user.created");
    assert_eq!(ids(&by_type), [global.clone(), ann.clone()]);
    let (_, by_both) = app
        .list_webhooks(&format!("type=user.created&user={}", ANN.to_uppercase()))
        .await;
    assert_eq!(
        (&by_both["type"], &by_both["user"]),
        (&json!("user.created"), &json!(ANN))
    );
    assert_eq!(ids(&by_both), [ann]);
    // Unknown parameters are ignored (WildDuck's allowUnknown), sess and ip checked.
    let (status, reply) = app.list_webhooks("color=red&sess=s-1&ip=2001:db8::1").await;
    assert_eq!((status, reply["total"].as_u64()), (200, Some(2)), "{reply}");
    for (query, field) in [("sess=", "sess"), ("ip=10.0.0.0/8", "ip"), ("user=zzz", "user")] {
        let (status, reply) = app.list_webhooks(query).await;
        refused(status, &reply, field);
    }
    let long = "s".repeat(256);
    let (status, reply) = app.list_webhooks(&format!("sess={long}")).await;
    refused(status, &reply, "sess");
}

#[actix_web::test]
async fn empty_filters_and_cursors_are_no_filters() {
    let app = api_only().await;
    for _ in 0..3 {
        app.create_webhook(URL, &["*"], None).await;
    }
    let (_, plain) = app.list_webhooks("limit=2").await;
    for query in ["type=", "next=", "previous=", "event=", "next=%20&previous=&type="] {
        let (status, list) = app.list_webhooks(&format!("limit=2&{query}")).await;
        assert_eq!(status, 200, "{query}: {list}");
        assert_eq!(ids(&list), ids(&plain), "{query}");
        assert_eq!(list["total"], 3, "{query}");
        assert!(list.get("type").is_none(), "{query}");
    }
}

/// WildDuck 1.45's paging: `next` wins over `previous`; `previous` with `page=1` (or no page
/// above 1) is the first page; `page=0` is taken; `page` is echoed when there is an earlier page.
#[actix_web::test]
async fn paging_follows_wildduck() {
    let app = api_only().await;
    let mut created = Vec::new();
    for _ in 0..6 {
        created.push(app.create_webhook(URL, &["*"], None).await);
    }
    let (_, first) = app.list_webhooks("limit=2").await;
    assert_eq!(
        (first["page"].as_u64(), &first["previousCursor"]),
        (Some(1), &json!(false))
    );
    let next = first["nextCursor"].as_str().unwrap().to_string();
    let (_, second) = app.list_webhooks(&format!("limit=2&next={next}&page=2")).await;
    assert_eq!(ids(&second), created[2..4]);
    assert_eq!(second["page"], 2);
    let after_second = second["nextCursor"].as_str().unwrap().to_string();
    let before_second = second["previousCursor"].as_str().unwrap().to_string();
    let (_, third) = app.list_webhooks(&format!("limit=2&next={after_second}&page=3")).await;
    let before_third = third["previousCursor"].as_str().unwrap().to_string();

    // next and previous together: next wins.
    let (status, both) = app
        .list_webhooks(&format!("limit=2&next={next}&previous={before_third}&page=2"))
        .await;
    assert_eq!(status, 200, "{both}");
    assert_eq!(ids(&both), created[2..4]);
    // Back to page 2 with page=2: the page before the third.
    let (_, back) = app
        .list_webhooks(&format!("limit=2&previous={before_third}&page=2"))
        .await;
    assert_eq!((ids(&back), &back["page"]), (created[2..4].to_vec(), &json!(2)));
    // Back to page 1 with page=1: WildDuck lists the first page.
    let (_, back) = app
        .list_webhooks(&format!("limit=2&previous={before_third}&page=1"))
        .await;
    assert_eq!((ids(&back), &back["page"]), (created[0..2].to_vec(), &json!(1)));
    // page=0 is taken (and the cursor followed), as Joi.number() takes it; echoed as given.
    let (status, zero) = app
        .list_webhooks(&format!("limit=2&previous={before_third}&page=0"))
        .await;
    assert_eq!((status, ids(&zero)), (200, created[2..4].to_vec()), "{zero}");
    assert_eq!(zero["page"], 0);
    // Without page, the cursor says which page it leads to (as newer WildDuck's cursors do).
    let (_, by_cursor) = app.list_webhooks(&format!("limit=2&next={after_second}")).await;
    assert_eq!(
        (ids(&by_cursor), &by_cursor["page"]),
        (created[4..6].to_vec(), &json!(3))
    );
    let (_, back) = app.list_webhooks(&format!("limit=2&previous={before_second}")).await;
    assert_eq!((ids(&back), &back["page"]), (created[0..2].to_vec(), &json!(1)));
    // A page number on the first page is not echoed: there is no earlier page.
    let (_, first_again) = app.list_webhooks("limit=2&page=7").await;
    assert_eq!(first_again["page"], 1);
    let (_, decimal) = app.list_webhooks(&format!("limit=2.5&next={next}&page=2.5")).await;
    assert_eq!((ids(&decimal), &decimal["page"]), (created[2..4].to_vec(), &json!(2.5)));
}

#[actix_web::test]
async fn create_refuses_what_wildduck_refuses() {
    let app = api_only().await;
    for (body, field, rule) in [
        (
            json!({"type": ["*"], "url": URL, "user": "zzz"}),
            "user",
            "24 hexadecimal",
        ),
        (
            json!({"type": ["*"], "url": URL, "user": null}),
            "user",
            "must be a string",
        ),
        (
            json!({"type": ["*"], "url": URL, "user": ""}),
            "user",
            "must not be empty",
        ),
        (json!({"type": "user.*", "url": URL}), "type", "must be a list"),
        (json!({"type": [""], "url": URL}), "type", "must not be empty"),
        (
            json!({"type": ["*"], "url": URL, "sess": ""}),
            "sess",
            "must not be empty",
        ),
        (
            json!({"type": ["*"], "url": URL, "sess": "s".repeat(256)}),
            "sess",
            "at most 255",
        ),
        (json!({"type": ["*"], "url": URL, "ip": "nope"}), "ip", "IPv4 or IPv6"),
        (json!({"type": ["*"], "url": URL, "ip": 7}), "ip", "must be a string"),
        (json!({"type": ["*"], "url": "not a valid url"}), "url", "valid URI"),
        (
            json!({"type": ["*"], "url": URL, "name": "x"}),
            "name",
            "is not allowed",
        ),
    ] {
        let (status, reply) = app.post_webhook(body.clone()).await;
        refused(status, &reply, field);
        let detail = reply["details"][field].as_str().unwrap();
        assert!(detail.contains(rule), "{body}: {detail}");
    }
    let (status, reply) = app
        .post_webhook(json!({"type": ["*"], "url": URL, "sess": "s-1", "ip": "203.0.113.9"}))
        .await;
    assert_eq!(status, 200, "sess and ip are taken: {reply}");
}

#[actix_web::test]
async fn form_bodies_are_read_as_wildduck_reads_them() {
    let app = api_only().await;
    let url = "https%3A%2F%2Fexample.com%2Fform";
    for form in [
        format!("type[]=User.Created&type[]=forward+added&url={url}&user={ANN}"),
        format!("type%5B%5D=User.Created&type%5B%5D=forward%20added&url={url}&user={ANN}"),
        format!("type=User.Created&type=forward+added&url={url}&user={ANN}&sess=s-1&ip=127.0.0.1"),
        format!("type[1]=forward+added&type[0]=User.Created&url={url}&user={ANN}"),
    ] {
        let (status, created) = post_form(&app, "/webhooks", &form).await;
        assert_eq!(status, 200, "{form}: {created}");
        let (_, webhook) = app.get_webhook(created["id"].as_str().unwrap()).await;
        assert_eq!(webhook["type"], json!(["user.created", "forward added"]), "{form}");
        assert_eq!(
            (&webhook["url"], &webhook["user"]),
            (&json!("https://example.com/form"), &json!(ANN))
        );
    }
    // A lone `type=` is a string, not a list: refused, as by WildDuck.
    let (status, reply) = post_form(&app, "/webhooks", &format!("type=user.created&url={url}")).await;
    refused(status, &reply, "type");
    // Query parameters count as fields too (restify merges them), and win over the body's.
    let (status, created) = post_form(&app, &format!("/webhooks?type[]=mailbox.*&url={url}"), "type[]=x").await;
    assert_eq!(status, 200, "{created}");
    let (_, webhook) = app.get_webhook(created["id"].as_str().unwrap()).await;
    assert_eq!(webhook["type"], json!(["mailbox.*"]));
    let (status, created) = app
        .call_raw_json("POST", &format!("/webhooks?url={url}"), json!({"type": ["a"]}))
        .await;
    assert_eq!(status, 200, "{created}");
    // An empty body is no fields.
    let (status, reply) = send(&app, "POST", "/webhooks", "application/json", "").await;
    refused(status, &reply, "type");
    refused(status, &reply, "url");
}

#[actix_web::test]
async fn delete_answers_as_wildduck() {
    let app = api_only().await;
    let id = app.create_webhook(URL, &["*"], None).await;
    // WildDuck's own test: /webhooks/123 is a 400, an unknown id a 404 with its words.
    let (status, reply) = app.delete_webhook("123").await;
    refused(status, &reply, "id");
    let (status, reply) = app.delete_webhook(&"0".repeat(24)).await;
    assert_eq!(status, 404);
    assert_eq!(
        reply,
        json!({"error": "Invalid or unknown webhook identifier", "code": "WebhookNotFound"})
    );
    // Only sess and ip may come along (WildDuck's route allows no other parameter).
    let (status, reply) = app
        .call_raw_json("DELETE", &format!("/webhooks/{id}?force=1"), json!({}))
        .await;
    refused(status, &reply, "force");
    let (status, reply) = app
        .call_raw_json("DELETE", &format!("/webhooks/{id}?ip=x"), json!({}))
        .await;
    refused(status, &reply, "ip");
    let (status, reply) = app
        .call_raw_json(
            "DELETE",
            &format!("/webhooks/{}?sess=s-1&ip=::1", id.to_uppercase()),
            json!({}),
        )
        .await;
    assert_eq!((status, reply), (200, json!({"success": true})));
}

/// Every event WildDuck publishes, one pattern each, and room to spare: 256 patterns.
#[actix_web::test]
async fn a_webhook_lists_every_wildduck_event_one_by_one() {
    let receiver = Receiver::ok();
    let app = TestApp::spawn().await;
    let mut types: Vec<String> = WILDDUCK_EVENT_TYPES.iter().map(|e| e.to_string()).collect();
    types.extend((0..219).map(|n| format!("other.event{n}")));
    assert_eq!(types.len(), 256);
    let (status, created) = app
        .post_webhook(json!({"type": types, "url": receiver.url(), "user": ANN}))
        .await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let (_, webhook) = app.get_webhook(&id).await;
    assert_eq!(webhook["type"], json!(types));
    types.push("one.too.many".into());
    let (status, reply) = app.post_webhook(json!({"type": types, "url": receiver.url()})).await;
    refused(status, &reply, "type");
    assert!(reply["details"]["type"].as_str().unwrap().contains("(has 257)"));

    for (n, ev) in WILDDUCK_EVENT_TYPES.iter().enumerate() {
        app.publish(json!({"ev": ev, "user": ANN, "n": n})).await;
    }
    app.publish(json!({"ev": "not.listed", "user": ANN})).await;
    receiver.wait_for(WILDDUCK_EVENT_TYPES.len(), WAIT).await;
    app.settled(&[&id]).await;
    let mut got: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.json()["ev"].as_str().unwrap().to_string())
        .collect();
    got.sort();
    let mut expected: Vec<String> = WILDDUCK_EVENT_TYPES.iter().map(|e| e.to_string()).collect();
    expected.sort();
    assert_eq!(got, expected, "each of WildDuck's events once, nothing else");
}

/// WildDuck's worker moves the IMAP uid WildDuck publishes as `id` into `message`.
#[actix_web::test]
async fn marked_spam_and_ham_carry_the_uid_in_message_as_wildduck_delivers_them() {
    let receiver = Receiver::ok();
    let app = TestApp::spawn().await;
    let id = app.create_webhook(&receiver.url(), &["marked.*"], None).await;
    let entry = app
        .publish(json!({"time": 1_700_000_000_000u64, "ev": "marked.spam", "user": ANN,
                        "mailbox": "6f1e9d2c8b3a4e0012345678", "message": "6f1e9d2c8b3a4e0012345679", "id": 42}))
        .await;
    let got = receiver.wait_for(1, WAIT).await;
    assert_eq!(
        String::from_utf8_lossy(&got[0].body),
        format!(
            r#"{{"id":"{id}:{entry}","time":1700000000000,"ev":"marked.spam","user":"{ANN}","mailbox":"6f1e9d2c8b3a4e0012345678","message":42}}"#
        )
    );
}

/// WildDuck checks a token that is given even when none is needed; a bad one is 403.
#[actix_web::test]
async fn a_token_given_to_an_open_api_is_checked() {
    let app = api_only().await;
    let (status, _) = app.list_webhooks("").await;
    assert_eq!(status, 200, "no token needed");
    let (status, reply) = send(
        &app,
        "GET",
        "/webhooks?accessToken=made-up-token",
        "application/json",
        "",
    )
    .await;
    assert_eq!(
        (status, reply),
        (
            403,
            json!({"error": "Invalid accessToken value", "code": "InvalidToken", "message": "Invalid accessToken value"})
        )
    );
}
