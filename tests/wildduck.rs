//! WildDuck compatibility beyond the API shapes: type patterns lowercased as WildDuck stores
//! them, and `[routing] userless_to_user_webhooks`.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{Receiver, TestApp};

const ANN: &str = "5f1e9d2c8b3a4e00aaaaaaaa";

#[actix_web::test]
async fn type_patterns_and_type_filters_are_lowercased_as_wildduck_does() {
    let receiver = Receiver::ok();
    let app = TestApp::spawn().await;
    let (status, created) = app
        .post_webhook(json!({"type": [" User.Created ", "MARKED.spam", "user.created"], "url": receiver.url()}))
        .await;
    assert_eq!(status, 200, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let (_, webhook) = app.get_webhook(&id).await;
    assert_eq!(webhook["type"], json!(["user.created", "marked.spam"]));

    app.update_webhook(&id, json!({"type": ["Mailbox.*", "Forward Added"]}))
        .await;
    let (_, webhook) = app.get_webhook(&id).await;
    assert_eq!(webhook["type"], json!(["mailbox.*", "forward added"]));
    for query in ["type=MAILBOX.*", "type=Forward%20Added", "event=Mailbox.Created"] {
        let (status, found) = app.list_webhooks(query).await;
        assert_eq!((status, &found["total"]), (200, &json!(1)), "{query}: {found}");
    }

    // Event types keep their case, and matching is exact: like WildDuck's worker, a pattern
    // (lowercase) does not match an event type written in capitals. The lowercase one arrives.
    app.publish(json!({"ev": "Mailbox.Created", "n": 1})).await;
    app.publish(json!({"ev": "mailbox.created", "n": 2})).await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!(got[0].json()["n"], 2);
    // Both were routed (the stream is empty), and only the lowercase one was delivered.
    support::eventually("the stream to be routed", Duration::from_secs(5), || async {
        (app.stream_len("events").await == 0).then_some(())
    })
    .await;
    assert_eq!(receiver.count(), 1);
}

async fn userless_event_reaches_user_webhook(userless_to_user_webhooks: bool) -> bool {
    let receiver = Receiver::ok();
    let app = TestApp::spawn_with(|s| s.routing.userless_to_user_webhooks = userless_to_user_webhooks).await;
    app.create_webhook(&receiver.url(), &["address.*"], Some(ANN)).await;
    // WildDuck's forwarded-address events carry no user.
    app.publish(
        json!({"ev": "address.forwarded.created", "address": "6f1e9d2c8b3a4e0012345678", "value": "fwd@example.com"}),
    )
    .await;
    // The user's own event, published after it: once it arrives, the first was routed too.
    app.publish(json!({"ev": "address.user.created", "user": ANN, "value": "ann@example.com"}))
        .await;
    let got = receiver.wait_for(1, Duration::from_secs(10)).await;
    let userless_first = got[0].json()["ev"] == "address.forwarded.created";
    if userless_first {
        receiver.wait_for(2, Duration::from_secs(10)).await;
    }
    support::eventually("the stream to be routed", Duration::from_secs(5), || async {
        (app.stream_len("events").await == 0).then_some(())
    })
    .await;
    let received: Vec<String> = receiver
        .received()
        .iter()
        .map(|r| r.json()["ev"].as_str().unwrap().to_string())
        .collect();
    received.contains(&"address.forwarded.created".to_string())
}

#[actix_web::test]
async fn userless_events_reach_user_webhooks_only_with_the_wildduck_setting() {
    assert!(
        !userless_event_reaches_user_webhook(false).await,
        "by default a user webhook gets only its user's events"
    );
    assert!(
        userless_event_reaches_user_webhook(true).await,
        "with userless_to_user_webhooks it gets userless events too"
    );
}
