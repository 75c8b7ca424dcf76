//! The dashboard in a real browser: headless Chromium (Debian's package) driven by Playwright
//! for Python (`tests/python/dashboard_browser.py`), against hookrouter with real receivers.
//! The page loads with no console error and no request to another host; states change on
//! screen within 2 s; pause, resume, retry now, enable, replay and "replay since…" work from
//! the page; with
//! access tokens nothing shows until a valid one is given; 1,000 webhooks filter and page
//! quickly; the page reconnects after a restart. One scenario also makes the README's
//! screenshot.
//!
//! These run one at a time (`.config/nextest.toml`): their timings are part of what they check.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hookrouter::config::AccessToken;
use serde_json::{json, Value};
use support::browser::{assert_clean, Browser};
use support::process::ServiceProcess;
use support::{eventually, publish_many, Receiver, Reply, TestApp, REDIS_URL};

const WAIT: Duration = Duration::from_secs(15);

fn host(app: &TestApp) -> String {
    format!("127.0.0.1:{}", app.port)
}

fn base(app: &TestApp) -> String {
    format!("http://{}", host(app))
}

fn ms(value: &Value) -> f64 {
    value.as_f64().unwrap_or(f64::MAX)
}

#[actix_web::test]
async fn the_page_loads_clean_and_a_failing_receiver_shows_within_two_seconds() {
    let app = TestApp::spawn().await;
    let ok = Receiver::ok();
    let failing = Arc::new(AtomicBool::new(false));
    let switch = failing.clone();
    let flaky = Receiver::scripted(move |_, _| {
        if switch.load(Ordering::SeqCst) {
            Reply::Status(503)
        } else {
            Reply::Status(204)
        }
    });
    app.create_webhook(&format!("{}/a", ok.url()), &["*"], None).await;
    app.create_webhook(&format!("{}/b", ok.url()), &["*"], None).await;
    let watched = app.create_webhook(&flaky.url(), &["*"], None).await;
    app.publish(json!({"ev": "warm.up"})).await;
    flaky.wait_for(1, WAIT).await;

    let mut browser = Browser::start(&base(&app), "live_states", json!({"webhooks": 3, "watch": watched}));
    let loaded = browser.step("loaded").await;
    assert_eq!(loaded["states"], json!(["healthy", "healthy", "healthy"]), "{loaded}");
    failing.store(true, Ordering::SeqCst);
    app.publish(json!({"ev": "now.failing"})).await;
    browser.send(json!({"go": true}));
    let result = browser.finish().await;
    println!(
        "browser: first rows {} ms, live {} ms; failing receiver shown as {} after {} ms",
        loaded["loaded_ms"], loaded["live_ms"], result["state"], result["turned_ms"]
    );
    assert!(ms(&result["turned_ms"]) <= 2_000.0, "{result}");
    assert!(
        ["failing", "retrying"].contains(&result["state"].as_str().unwrap()),
        "{result}"
    );
    assert!(result["last_error"].as_str().unwrap().contains("503"), "{result}");
    assert_clean(&result, &host(&app), &[]);
}

#[actix_web::test]
async fn pause_shows_paused_and_stops_deliveries_and_resume_drains() {
    let app = TestApp::spawn().await;
    let receiver = Receiver::ok();
    let webhook = app.create_webhook(&receiver.url(), &["*"], None).await;
    for n in 0..3 {
        app.publish(json!({"ev": "before", "n": n})).await;
    }
    receiver.wait_for(3, WAIT).await;

    let mut browser = Browser::start(&base(&app), "pause_resume", json!({"webhook": webhook}));
    let paused = browser.step("paused").await;
    let (_, record) = app.get_webhook(&webhook).await;
    assert_eq!(record["paused"], true, "the page paused it: {record}");
    for n in 0..10 {
        app.publish(json!({"ev": "while.paused", "n": n})).await;
    }
    app.health_until(&webhook, "10 queued", |h| h["backlog"] == 10).await;
    // Nothing goes out while paused (the queue is full; give the actor every chance to send).
    actix_rt::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(receiver.count(), 3, "delivered while paused");
    browser.send(json!({"queued": 10}));
    let result = browser.finish().await;
    println!(
        "browser: paused shown {} ms after the click; drained {} ms after resume",
        paused["paused_ms"], result["drained_ms"]
    );
    assert_eq!(result["backlog_while_paused"], "10");
    assert_eq!(result["resume_visible"], true);
    let received = receiver.wait_for(13, WAIT).await;
    let resumed = received.iter().filter(|r| r.json()["ev"] == "while.paused").count();
    assert_eq!(resumed, 10);
    assert!(ms(&paused["paused_ms"]) <= 2_000.0, "{paused}");
    assert_clean(&result, &host(&app), &[]);
}

#[actix_web::test]
async fn replay_from_the_page_empties_the_dead_letters() {
    let app = TestApp::spawn_with(|s| s.retry.max_attempts = 2).await;
    let (receiver, healed) = Receiver::failing_until_healed(Reply::Status(500));
    let webhook = app.create_webhook(&receiver.url(), &["*"], None).await;
    for n in 0..3 {
        app.publish(json!({"ev": "doomed", "n": n})).await;
    }
    let dead: Vec<String> = eventually("3 dead letters", WAIT, || async {
        let (_, page) = app.dead_letters(&webhook, "").await;
        let ids: Vec<String> = page["results"]
            .as_array()?
            .iter()
            .map(|d| d["id"].as_str().unwrap().to_string())
            .collect();
        (ids.len() == 3).then_some(ids)
    })
    .await;
    healed.store(true, Ordering::SeqCst);

    let browser = Browser::start(&base(&app), "replay", json!({"webhook": webhook, "dead": 3}));
    let result = browser.finish().await;
    println!(
        "browser: dead letters emptied {} ms after Replay all",
        result["emptied_ms"]
    );
    let mut listed: Vec<String> = serde_json::from_value(result["listed"].clone()).unwrap();
    listed.sort();
    let mut expected = dead.clone();
    expected.sort();
    assert_eq!(listed, expected, "the panel lists the dead letters");
    assert!(
        result["attempt_outcomes"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o == "dead"),
        "{result}"
    );
    assert_eq!(result["status"], "Replayed 3 dead letters.");
    let (_, page) = app.dead_letters(&webhook, "").await;
    assert!(page["results"].as_array().unwrap().is_empty(), "{page}");
    app.health_until(&webhook, "the replayed letters delivered", |h| h["delivered"] == 3)
        .await;
    assert_clean(&result, &host(&app), &[]);
}

#[actix_web::test]
async fn replay_since_from_the_page_back_fills_a_webhook_and_shows_its_progress() {
    let app = TestApp::spawn().await;
    for n in 0..20 {
        app.publish(json!({"ev": "history", "n": n})).await;
    }
    eventually("the events routed and retained", WAIT, || async {
        (app.stream_len("events").await == 0 && app.stream_len("retained").await == 20).then_some(())
    })
    .await;
    let receiver = Receiver::ok();
    let webhook = app.create_webhook(&receiver.url(), &["history"], None).await;

    let since = json!({"webhook": webhook, "since": "2000-01-01T00:00:00"});
    let browser = Browser::start(&base(&app), "replay_since", since);
    let result = browser.finish().await;
    println!(
        "browser: replay shown {} ms and done {} ms after the click",
        result["shown_ms"], result["done_ms"]
    );
    assert_eq!(result["status"], "Replay 1 started.", "{result}");
    // #, state, since, matched, queued, delivered, reached, (cancel)
    let cells: Vec<String> = serde_json::from_value(result["cells"].clone()).unwrap();
    assert_eq!(
        (&cells[0][..], &cells[1][..], &cells[3][..], &cells[4][..]),
        ("1", "done", "20", "20"),
        "{result}"
    );
    eventually("the replay's 20 deliveries counted", WAIT, || async {
        let (_, progress) = app.get(&format!("/webhooks/{webhook}/replays/1")).await;
        (progress["replay"]["delivered"] == 20).then_some(())
    })
    .await;
    receiver.wait_for(20, WAIT).await;
    assert_eq!(receiver.per_delivery().len(), 20);
    assert_clean(&result, &host(&app), &[]);
}

#[actix_web::test]
async fn retry_now_and_enable_from_the_page_bring_webhooks_back() {
    // Nothing would come back by itself within the test: the next probe and retry are a minute away.
    let app = TestApp::spawn_with(|s| {
        s.circuit.failure_threshold = 2;
        s.circuit.probe_initial_ms = 60_000;
        s.circuit.probe_max_ms = 60_000;
        s.retry.initial_delay_ms = 60_000;
        s.retry.max_delay_ms = 60_000;
    })
    .await;
    let (down, down_healed) = Receiver::failing_until_healed(Reply::Status(503));
    let (gone, gone_healed) = Receiver::failing_until_healed(Reply::Status(410));
    let failing = app.create_webhook(&down.url(), &["a"], None).await;
    let disabled = app.create_webhook(&gone.url(), &["b"], None).await;
    // Two failures a while apart open the circuit; one 410 disables.
    app.publish(json!({"ev": "a", "n": 1})).await;
    down.wait_for(1, WAIT).await;
    app.publish(json!({"ev": "a", "n": 2})).await;
    app.health_until(&failing, "the circuit to open", |h| h["state"] == "failing")
        .await;
    app.publish(json!({"ev": "b", "n": 1})).await;
    app.health_until(&disabled, "disabled by 410", |h| h["state"] == "disabled")
        .await;
    down_healed.store(true, Ordering::SeqCst);
    gone_healed.store(true, Ordering::SeqCst);

    let params = json!({"retry": failing, "enable": disabled});
    let result = Browser::start(&base(&app), "actions", params).finish().await;
    println!("browser: healthy again {} ms after the click", result["healed_ms"]);
    assert!(ms(&result["healed_ms"]["Retry now"]) < 5_000.0, "{result}");
    assert!(ms(&result["healed_ms"]["Enable"]) < 5_000.0, "{result}");
    // Both backlogs were delivered: the two events that had failed, and the one 410 refused.
    app.health_until(&failing, "both delivered", |h| h["delivered"] == 2)
        .await;
    app.health_until(&disabled, "the refused one delivered", |h| h["delivered"] == 1)
        .await;
    let (_, record) = app.get_webhook(&disabled).await;
    assert_eq!(record["enabled"], true);
    assert_clean(&result, &host(&app), &[]);
}

#[actix_web::test]
async fn with_tokens_the_page_asks_for_one_and_shows_nothing_until_it_is_valid() {
    const TOKEN: &str = "browser-test-token-5f1e9d2c8b3a";
    let app = TestApp::spawn_with(|s| s.api.access_tokens = vec![AccessToken(TOKEN.into())]).await;
    let receiver = Receiver::ok();
    app.create_webhook(&format!("{}/one", receiver.url()), &["*"], None)
        .await;
    app.create_webhook(&format!("{}/two", receiver.url()), &["*"], None)
        .await;

    let browser = Browser::start(&base(&app), "tokens", json!({"token": TOKEN, "webhooks": 2}));
    let result = browser.finish().await;
    let before = &result["before"];
    assert_eq!(before["board_hidden"], true, "{result}");
    assert_eq!(before["rows"], 0);
    assert_eq!(before["text_has_urls"], false);
    let answers = before["answers"].as_array().unwrap();
    assert!(
        !answers.is_empty() && answers.iter().all(|a| a[1] == 403),
        "{answers:?}"
    );
    let wrong = &result["wrong"];
    assert!(wrong["error"].as_str().unwrap().contains("not accepted"), "{wrong}");
    assert_eq!(wrong["rows"], 0);
    assert_eq!(wrong["board_hidden"], true);
    assert_eq!(result["stored_token_matches"], true);
    // The token travels in a header, never in a URL (the stream's URL has a ticket).
    let urls = result["request_urls"].as_array().unwrap();
    assert!(urls.iter().all(|u| !u.as_str().unwrap().contains(TOKEN)), "{urls:?}");
    assert!(urls
        .iter()
        .any(|u| u.as_str().unwrap().contains("/dashboard/stream?") && u.as_str().unwrap().contains("ticket=")));
    // The refused calls show as failed loads in the console; nothing else may.
    assert_clean(&result, &host(&app), &["403 (Forbidden)"]);
}

#[actix_web::test]
async fn a_thousand_webhooks_render_filter_and_page_without_stalling() {
    let app = TestApp::spawn().await;
    let users: Vec<String> = (0..20).map(|u| format!("5f1e9d2c8b3a4e00123456{u:02}")).collect();
    let started = Instant::now();
    let mut ids = Vec::new();
    for chunk in (0..1000).collect::<Vec<usize>>().chunks(25) {
        let creates = chunk.iter().map(|&n| {
            let url = format!("http://127.0.0.1:9/tenant-{n:04}/hook?key=k{n}");
            let user = users[n % users.len()].clone();
            let app = &app;
            async move { app.create_webhook(&url, &["never.sent"], Some(&user)).await }
        });
        ids.extend(futures_util::future::join_all(creates).await);
    }
    println!("created 1000 webhooks in {:?}", started.elapsed());
    for id in &ids[100..103] {
        app.pause(id).await;
    }

    let params = json!({"search": "tenant-0042/", "user": users[3], "per_user": 50, "paused": 3});
    let result = Browser::start(&base(&app), "many", params).finish().await;
    let long_tasks: Vec<f64> = result["long_tasks"].as_array().unwrap().iter().map(ms).collect();
    let longest = long_tasks.iter().cloned().fold(0.0, f64::max);
    println!(
        "browser, 1000 webhooks: first 50 rows {} ms; text filter {} ms (service {} ms); user filter {} ms \
         (service {} ms); state filter {} ms; next page {} ms; long tasks {:?}",
        result["first_rows_ms"],
        result["text_ms"],
        result["text_server_ms"],
        result["user_ms"],
        result["user_server_ms"],
        result["state_ms"],
        result["next_ms"],
        long_tasks
    );
    assert!(result["caption"].as_str().unwrap().contains("1,000"), "{result}");
    assert!(ms(&result["first_rows_ms"]) < 3_000.0, "{result}");
    // From the keystroke to the table showing the one match, the input's 120 ms pause included.
    assert!(ms(&result["text_ms"]) < 500.0, "{result}");
    assert!(ms(&result["text_server_ms"]) < 300.0, "{result}");
    assert!(ms(&result["user_ms"]) < 700.0, "{result}");
    assert!(ms(&result["state_ms"]) < 500.0, "{result}");
    assert!(ms(&result["next_ms"]) < 500.0, "{result}");
    assert_eq!(result["page_info"], "Page 2 of 20");
    assert_eq!(
        (result["overlap"].clone(), result["second_page_rows"].clone()),
        (json!(0), json!(50))
    );
    assert!(longest < 200.0, "the page stalled: long tasks {long_tasks:?}");
    assert_clean(&result, &host(&app), &[]);
}

#[actix_web::test]
async fn the_page_reconnects_by_itself_after_a_restart() {
    let prefix = support::TestPrefix::new();
    let mut service = ServiceProcess::start(REDIS_URL, &prefix, &[]);
    service.wait_until_serving().await;
    service.create_webhook("http://127.0.0.1:9/one", &["*"]).await;
    service.create_webhook("http://127.0.0.1:9/two", &["*"]).await;
    let host = format!("127.0.0.1:{}", service.port);

    let mut browser = Browser::start(&format!("http://{host}"), "restart", json!({"webhooks": 2}));
    browser.step("live").await;
    browser.send(json!({"stopping": true}));
    let stopping = Instant::now();
    assert!(service.terminate().success());
    let stop_took = stopping.elapsed();
    let reconnecting = browser.step("reconnecting").await;
    service.restart();
    service.wait_until_serving().await;
    browser.send(json!({"started": true}));
    let result = browser.finish().await;
    println!(
        "browser: service stopped in {stop_took:?} with the page open; page said '{}' after {} ms; live again {} ms after the restart",
        reconnecting["text"], reconnecting["noticed_ms"], result["back_ms"]
    );
    assert!(
        stop_took < Duration::from_secs(4),
        "the open page held up the stop: {stop_took:?}"
    );
    assert!(
        reconnecting["text"].as_str().unwrap().starts_with("Reconnecting"),
        "{reconnecting}"
    );
    assert!(ms(&result["back_ms"]) < 10_000.0, "{result}");
    // While the service was down, the page's attempts to reconnect failed: nothing else may.
    assert_clean(&result, &host, &["ERR_CONNECTION_REFUSED", "ERR_EMPTY_RESPONSE"]);
    drop(service);
}

#[actix_web::test]
async fn a_realistic_state_renders_and_is_photographed() {
    // HOOKROUTER_SCREENSHOT=docs/dashboard.png makes the README's picture (with a minute of
    // traffic behind the sparklines); otherwise a shorter run writes target/dashboard.png.
    let (path, traffic) = match std::env::var("HOOKROUTER_SCREENSHOT") {
        Ok(path) => (
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(path),
            Duration::from_secs(70),
        ),
        Err(_) => (
            std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/dashboard.png"),
            Duration::from_secs(6),
        ),
    };
    let app = TestApp::spawn_with(|s| {
        s.retry.initial_delay_ms = 1_000;
        s.retry.max_delay_ms = 30_000;
        s.retry.max_attempts = 3;
        s.retry.jitter = 0.2;
        s.circuit.failure_threshold = 4;
        s.circuit.probe_initial_ms = 5_000;
        s.circuit.probe_max_ms = 60_000;
    })
    .await;
    let ok = Receiver::ok();
    let slow = Receiver::scripted(|n, _| Reply::Delay(Duration::from_millis(40 + (n as u64 * 37) % 140), 200));
    let picky = Receiver::scripted(|_, body| match body["n"].as_u64() {
        Some(n) if n % 9 == 0 => Reply::Status(422),
        _ => Reply::Status(202),
    });
    let down = Receiver::scripted(|_, _| Reply::Status(503));
    let gone = Receiver::scripted(|_, _| Reply::Status(410));
    let (ann, bob) = ("5f1e9d2c8b3a4e0012345678", "61a0c3e2d4b5f60012345699");
    app.create_webhook(&format!("{}/crm/hooks", ok.url()), &["user.*", "mailbox.*"], None)
        .await;
    app.create_webhook(
        &format!("{}/search/reindex?token=9f8a7c", slow.url()),
        &["*"],
        Some(ann),
    )
    .await;
    let billing = app
        .create_webhook(&format!("{}/billing/events", picky.url()), &["*"], None)
        .await;
    let slack = format!("{}/services/T024BE7LD/B08R3BCNE/xoxb7c1dd1a0b5d0c1f2a3b", down.url());
    app.create_webhook(&slack, &["*"], Some(bob)).await;
    let audit = app
        .create_webhook(&format!("{}/audit/trail", ok.url()), &["*"], None)
        .await;
    app.create_webhook(&format!("{}/legacy/notify", gone.url()), &["*"], Some(ann))
        .await;
    for (path, user) in [
        ("/reports/daily", Some(bob)),
        ("/archive/ingest", None),
        ("/spam/feedback", Some(ann)),
    ] {
        app.create_webhook(&format!("{}{path}", ok.url()), &["marked.spam"], user)
            .await;
    }
    app.pause(&audit).await;

    // Traffic with a rhythm, until the picture is taken.
    let running = Arc::new(AtomicBool::new(true));
    let publisher = {
        let (running, prefix) = (running.clone(), app.prefix.clone());
        actix_rt::spawn(async move {
            let mut n = 0u64;
            let started = Instant::now();
            while running.load(Ordering::SeqCst) {
                let burst = 1 + (started.elapsed().as_secs() / 7 % 4);
                let events: Vec<Vec<u8>> = (0..burst)
                    .map(|i| {
                        n += 1;
                        let (ev, user) = match (n + i) % 4 {
                            0 => ("user.created", Some(ann)),
                            1 => ("mailbox.created", Some(bob)),
                            2 => ("user.password.changed", None),
                            _ => ("messages.new", Some(ann)),
                        };
                        json!({"ev": ev, "n": n, "user": user}).to_string().into_bytes()
                    })
                    .collect();
                publish_many(&prefix, &events).await;
                actix_rt::time::sleep(Duration::from_millis(150)).await;
            }
        })
    };
    actix_rt::time::sleep(traffic).await;

    let params = json!({
        "webhooks": 9,
        "open": billing,
        "path": path.to_string_lossy(),
        "viewport": [1920, 1080],
    });
    let result = Browser::start(&base(&app), "screenshot", params).finish().await;
    running.store(false, Ordering::SeqCst);
    let _ = publisher.await;
    let states: Vec<&str> = result["states"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    for state in ["failing", "retrying", "paused", "disabled", "healthy"] {
        assert!(states.contains(&state), "no {state} row: {states:?}");
    }
    assert_eq!(states[0], "failing", "worst first: {states:?}");
    let png = std::fs::read(&path).expect("the screenshot was written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    println!(
        "screenshot: {} ({} bytes); states {states:?}",
        path.display(),
        png.len()
    );
    assert_clean(&result, &host(&app), &[]);
}
