//! WildDuck compatibility: WildDuck's own webhook API tests run against the real binary,
//! importing WildDuck's webhooks from a `mongoexport` (the real binary's `import-wildduck`
//! command), type patterns lowercased as WildDuck stores them, and `[routing]
//! userless_to_user_webhooks`. The API's answers edge by edge are in `tests/wildduck_api.rs`.

mod support;

use std::time::Duration;

use serde_json::json;
use support::process::{import_wildduck, ServiceProcess};
use support::{Receiver, TestApp, REDIS_URL};

const ANN: &str = "5f1e9d2c8b3a4e00aaaaaaaa";

/// `tests/data/wildduck-webhooks.json` with its receiver address pointed at `receiver`.
fn export_for(receiver: &Receiver, name: &str, as_array: bool) -> std::path::PathBuf {
    let sample = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/wildduck-webhooks.json"
    ))
    .expect("the sample export");
    let address = receiver
        .url()
        .trim_start_matches("http://")
        .trim_end_matches("/hook")
        .to_string();
    let mut text = sample.replace("127.0.0.1:49999", &address);
    if as_array {
        text = format!("[{}]", text.lines().collect::<Vec<_>>().join(",\n"));
    }
    let path = std::env::temp_dir().join(name);
    std::fs::write(&path, text).expect("write the export");
    path
}

#[actix_web::test]
async fn an_imported_export_keeps_wildduck_ids_and_its_webhooks_deliver() {
    let receiver = Receiver::ok();
    let app = TestApp::spawn().await;
    let export = export_for(&receiver, &format!("{}-webhooks.json", app.prefix), false);

    let (code, out) = import_wildduck(&app.prefix, &export, true).await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("Dry run, nothing written: would import 3, skipped 1 (id already taken), refused 4."),
        "{out}"
    );
    let (_, listed) = app.list_webhooks("").await;
    assert_eq!(listed["total"], 0, "a dry run wrote something");
    let array = export_for(&receiver, &format!("{}-array.json", app.prefix), true);
    let (_, out_of_array) = import_wildduck(&app.prefix, &array, true).await;
    assert!(
        out_of_array.contains("would import 3, skipped 1 (id already taken), refused 4."),
        "{out_of_array}"
    );

    let (code, out) = import_wildduck(&app.prefix, &export, false).await;
    assert_eq!(code, 2, "{out}");
    assert!(
        out.contains("\nimported 3, skipped 1 (id already taken), refused 4."),
        "{out}"
    );
    for expected in [
        "skipped      5f1e9d2c8b3a4e0012340001: line 7 repeats the _id of line 1",
        "refused      line 4 (5f1e9d2c8b3a4e0012340004): type: item 0 (\"user.*.created\") '*' may only be the whole pattern or its last segment",
        "refused      line 5 (5f1e9d2c8b3a4e0012340005): url: must use http or https",
        "refused      line 6 (5f1e9d2c8b3a4e0012340006): url: is refused: 10.20.30.40 is a private address (RFC 1918)",
        "refused      line 8 (5f1e9d2c8b3a4e0012340008): url: is required",
        "GET /webhooks/<id>/secret",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in\n{out}");
    }

    // WildDuck's ids, patterns (lowercased), users and creation times are kept.
    let expected = [
        (
            "5f1e9d2c8b3a4e0012340001",
            json!(["*"]),
            json!(null),
            "2020-07-27T09:30:20.123Z",
        ),
        (
            "5f1e9d2c8b3a4e0012340002",
            json!(["user.*", "forward added"]),
            json!(ANN),
            "2020-07-27T09:30:21.456Z",
        ),
        // No `created` in the export: the ObjectId's own time.
        (
            "5f1e9d2c8b3a4e0012340003",
            json!(["mailbox.*", "marked.spam"]),
            json!("5f1e9d2c8b3a4e00bbbbbbbb"),
            "2020-07-27T09:23:56.000Z",
        ),
    ];
    for (id, types, user, created) in &expected {
        let (status, webhook) = app.get_webhook(id).await;
        assert_eq!(status, 200, "{webhook}");
        assert_eq!(
            (&webhook["type"], &webhook["user"], &webhook["created"]),
            (types, user, &json!(created)),
            "{webhook}"
        );
        let (_, secret) = app.get(&format!("/webhooks/{id}/secret")).await;
        assert!(secret["secret"].as_str().unwrap().starts_with("whsec_"));
    }
    let (_, listed) = app.list_webhooks("").await;
    assert_eq!(listed["total"], 3);

    // A second run imports nothing twice.
    let (code, again) = import_wildduck(&app.prefix, &export, false).await;
    assert_eq!(code, 2);
    assert!(
        again.contains("\nimported 0, skipped 4 (id already taken), refused 4."),
        "{again}"
    );

    // The running instance heard of the imported webhooks; they deliver.
    app.publish(json!({"ev": "user.created", "user": ANN, "username": "ann"}))
        .await;
    let got = receiver.wait_for(2, Duration::from_secs(10)).await;
    let mut webhooks: Vec<String> = got.iter().map(|r| r.id()[..24].to_string()).collect();
    webhooks.sort();
    assert_eq!(webhooks, ["5f1e9d2c8b3a4e0012340001", "5f1e9d2c8b3a4e0012340002"]);
    // Let the attempt logs be written before the test's keys are deleted.
    for id in &webhooks {
        support::eventually("the attempt to be logged", Duration::from_secs(5), || async {
            let (_, log) = app.get(&format!("/webhooks/{id}/attempts")).await;
            (log["results"].as_array().map_or(0, Vec::len) == 1).then_some(())
        })
        .await;
    }
    let _ = std::fs::remove_file(export);
    let _ = std::fs::remove_file(array);
}

/// An export with ObjectIds in capitals (a hand-made one, or a user id kept as a string): the
/// ids are lowercased, so the webhook gets its user's events.
#[actix_web::test]
async fn imported_upper_case_ids_are_lowercased_and_route() {
    let receiver = Receiver::ok();
    let app = TestApp::spawn().await;
    let upper = ANN.to_uppercase();
    let export = std::env::temp_dir().join(format!("{}-upper.json", app.prefix));
    let record = json!({"_id": {"$oid": "5F1E9D2C8B3A4E00123400AB"}, "type": ["user.*"], "user": upper,
                        "url": receiver.url()});
    std::fs::write(&export, record.to_string()).expect("write the export");
    let (code, out) = import_wildduck(&app.prefix, &export, false).await;
    assert_eq!(code, 0, "{out}");
    let (_, list) = app.list_webhooks(&format!("user={upper}")).await;
    assert_eq!(list["results"][0]["id"], "5f1e9d2c8b3a4e00123400ab", "{list}");
    assert_eq!(list["results"][0]["user"], ANN);
    // The running instance learns of the import through Redis, like of any other writer's.
    support::eventually("the imported webhook to route", Duration::from_secs(10), || async {
        app.publish(json!({"ev": "user.created", "user": upper})).await;
        (receiver.count() > 0).then_some(())
    })
    .await;
    assert_eq!(receiver.received()[0].json()["user"], ANN);
    let _ = std::fs::remove_file(export);
}

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
    // Trimmed and lowercased, in the order and with the repeats given, as WildDuck stores them.
    assert_eq!(webhook["type"], json!(["user.created", "marked.spam", "user.created"]));

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

// Two tests, not one: each app must live until its process ends. An app dropped while the
// test goes on would see its prefix deleted and restore its webhooks ("redis lost its data").
#[actix_web::test]
async fn by_default_a_user_webhook_gets_only_its_users_events() {
    assert!(!userless_event_reaches_user_webhook(false).await);
}

#[actix_web::test]
async fn with_the_wildduck_setting_user_webhooks_get_userless_events_too() {
    assert!(userless_event_reaches_user_webhook(true).await);
}

/// WildDuck's own webhook API test file, `test/api/webhooks-test.js` from zone-eu/wildduck,
/// branch `fastify-migration` (kept unchanged but for a header in
/// `tests/node/wildduck/test/api/`), run the way WildDuck runs it: mocha with the `spec`
/// reporter, `NODE_ENV=test`, supertest and `@zone-eu/wild-config` (versions as WildDuck pins
/// them, in `tests/node/package.json`), against a running server whose port wild-config reads
/// (`APPCONF_api_port`). Here the server is hookrouter's binary. Every one of its 8 tests must
/// pass.
#[actix_web::test]
async fn wildducks_own_webhook_api_tests_pass_against_hookrouter() {
    let suite = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node/wildduck");
    let mocha = suite.join("../node_modules/mocha/bin/mocha.js");
    assert!(
        mocha.exists() && suite.join("../node_modules/@zone-eu/wild-config").exists(),
        "the Node test packages are missing: run `scripts/test --setup-only` (npm ci in tests/node)"
    );
    let prefix = support::TestPrefix::new();
    let mut service = ServiceProcess::start(REDIS_URL, &prefix, &[]);
    service.wait_until_serving().await;
    let output = tokio::process::Command::new("node")
        .current_dir(&suite)
        .arg(&mocha)
        .args(["--reporter", "spec", "test/api/webhooks-test.js"])
        .env("NODE_ENV", "test")
        .env("APPCONF_api_port", service.port.to_string())
        .kill_on_drop(true)
        .output()
        .await
        .expect("node runs (scripts/test installs it)");
    service.terminate();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.status.success(), "mocha failed:\n{report}");
    assert!(report.contains("8 passing") && !report.contains("failing"), "{report}");
    for test in [
        "should POST /webhooks expect success",
        "should GET /webhooks expect success / type filter",
        "should DELETE /webhooks/{webhook} expect failure / malformed id",
        "should DELETE /webhooks/{webhook} expect failure / unknown id",
    ] {
        assert!(report.contains(&format!("✔ {test}")), "{test} did not pass:\n{report}");
    }
}
