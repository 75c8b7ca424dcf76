//! [`TestApp`]: hookrouter running in the test's actix system, on an ephemeral port, with a
//! key prefix of its own, and one typed method per API endpoint.

use std::time::Duration;

use hookrouter::config::Settings;
use hookrouter::startup::Application;
use serde_json::{json, Value};

/// An XRANGE reply: entry id and field/value pairs.
type StreamEntries = Vec<(String, Vec<(String, Vec<u8>)>)>;

pub const REDIS_URL: &str = "redis://127.0.0.1:6379";

/// Settings for tests: own prefix, ephemeral port, fast retries and resyncs.
pub fn test_settings(prefix: &str) -> Settings {
    let mut settings = Settings::default();
    settings.api.listen = "127.0.0.1:0".into();
    settings.redis.url = REDIS_URL.into();
    settings.redis.prefix = prefix.into();
    settings.webhooks.resync_ms = 200;
    settings.events.block_ms = 100;
    settings.delivery.timeout_ms = 2_000;
    settings.delivery.workers = 2;
    settings.retry.initial_delay_ms = 50;
    settings.retry.max_delay_ms = 400;
    settings.retry.multiplier = 2.0;
    settings.retry.jitter = 0.0;
    settings.retry.max_attempts = 4;
    settings.circuit.probe_initial_ms = 100;
    settings.circuit.probe_max_ms = 400;
    // A broken invariant is a bug: the test process aborts with the actor's state in the log.
    settings.invariants.abort_on_violation = true;
    settings.invariants.check_ms = 500;
    // Receivers run on loopback, which the SSRF guard refuses by default.
    settings.security.allow_cidrs = vec!["127.0.0.0/8".into(), "::1/128".into()];
    settings
}

pub struct TestApp {
    pub port: u16,
    pub prefix: String,
    pub client: awc::Client,
    pub redis: redis::aio::MultiplexedConnection,
    /// Deletes the prefix's keys when the app is dropped (None for a second app sharing it).
    _keys: Option<super::TestPrefix>,
    /// Sent with every call when the app has access tokens.
    token: Option<String>,
}

impl TestApp {
    /// A delivering instance with test settings.
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    /// Like [`TestApp::spawn`], with settings adjusted by `adjust`.
    pub async fn spawn_with(adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let prefix = super::TestPrefix::new();
        let mut settings = test_settings(&prefix);
        adjust(&mut settings);
        TestApp::start(settings, Some(prefix)).await
    }

    /// Another instance on the same prefix (it does not clean the prefix up).
    pub async fn sibling(&self, adjust: impl FnOnce(&mut Settings)) -> TestApp {
        let mut settings = test_settings(&self.prefix);
        adjust(&mut settings);
        TestApp::start(settings, None).await
    }

    async fn start(settings: Settings, keys: Option<super::TestPrefix>) -> TestApp {
        let prefix = settings.redis.prefix.clone();
        let delivering = settings.webhooks.enabled;
        let token = settings.api.access_tokens.first().map(|t| t.0.clone());
        let app = Application::build(settings).await.expect("application builds");
        let port = app.port();
        actix_rt::spawn(app.run_until_stopped());
        let redis = redis::Client::open(REDIS_URL)
            .unwrap()
            .get_multiplexed_async_connection()
            .await
            .expect("redis is running on 127.0.0.1:6379");
        let test_app = TestApp {
            port,
            prefix,
            // Idle connections are dropped before the server's 5 s keep-alive closes them: a
            // request on a connection the server is closing fails with `Disconnected`.
            client: awc::Client::builder()
                .timeout(Duration::from_secs(30))
                .connector(awc::Connector::new().conn_keep_alive(Duration::from_secs(2)))
                .finish(),
            redis,
            _keys: keys,
            token,
        };
        if delivering {
            super::eventually("the reader to run", Duration::from_secs(10), || async {
                let (_, health) = test_app.health().await;
                (health["reader"] == "running").then_some(())
            })
            .await;
        }
        test_app
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub fn key(&self, rest: &str) -> String {
        format!("{}:{}", self.prefix, rest)
    }

    /// A request to the API, with the access token when the app has one.
    pub fn request(&self, method: &str, path: &str) -> awc::ClientRequest {
        let request = self.client.request(method.parse().unwrap(), self.url(path));
        match &self.token {
            Some(token) => request.insert_header(("X-Access-Token", token.as_str())),
            None => request,
        }
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let request = self.request(method, path);
        let mut response = match body {
            Some(body) => request.send_json(&body).await,
            None => request.send().await,
        }
        .expect("the API answers");
        let status = response.status().as_u16();
        let bytes = response.body().limit(64 * 1024 * 1024).await.expect("response body");
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{method} {path} answered non-JSON: {}", String::from_utf8_lossy(&bytes)));
        (status, value)
    }

    /// Any method and path with a JSON body.
    pub async fn call_raw_json(&self, method: &str, path: &str, body: Value) -> (u16, Value) {
        self.call(method, path, Some(body)).await
    }

    /// Sends a raw body (for malformed-JSON tests).
    pub async fn call_raw(&self, method: &str, path: &str, body: &'static [u8]) -> (u16, Value) {
        let mut response = self
            .request(method, path)
            .insert_header(("content-type", "application/json"))
            .send_body(body)
            .await
            .expect("the API answers");
        let status = response.status().as_u16();
        let bytes = response.body().await.expect("response body");
        let value = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| panic!("{method} {path} answered non-JSON: {}", String::from_utf8_lossy(&bytes)));
        (status, value)
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call("GET", path, None).await
    }

    // --- one method per endpoint -------------------------------------------------------------

    pub async fn health(&self) -> (u16, Value) {
        self.call("GET", "/health", None).await
    }

    /// `POST /webhooks` with any body.
    pub async fn post_webhook(&self, body: Value) -> (u16, Value) {
        self.call("POST", "/webhooks", Some(body)).await
    }

    /// Creates a webhook and returns its id.
    pub async fn create_webhook(&self, url: &str, types: &[&str], user: Option<&str>) -> String {
        let mut body = json!({ "url": url, "type": types });
        if let Some(user) = user {
            body["user"] = json!(user);
        }
        let (status, reply) = self.post_webhook(body).await;
        assert_eq!(status, 200, "{reply}");
        reply["id"].as_str().expect("an id").to_string()
    }

    /// `GET /webhooks?<query>`.
    pub async fn list_webhooks(&self, query: &str) -> (u16, Value) {
        self.call("GET", &format!("/webhooks?{query}"), None).await
    }

    pub async fn get_webhook(&self, id: &str) -> (u16, Value) {
        self.call("GET", &format!("/webhooks/{id}"), None).await
    }

    pub async fn update_webhook(&self, id: &str, body: Value) -> (u16, Value) {
        self.call("PUT", &format!("/webhooks/{id}"), Some(body)).await
    }

    pub async fn delete_webhook(&self, id: &str) -> (u16, Value) {
        self.call("DELETE", &format!("/webhooks/{id}"), None).await
    }

    pub async fn webhook_health(&self, id: &str) -> (u16, Value) {
        self.call("GET", &format!("/webhooks/{id}/health"), None).await
    }

    /// Polls the webhook's health until `check` holds (or panics after 10 s, naming `what`).
    pub async fn health_until(&self, id: &str, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        super::eventually(what, Duration::from_secs(10), || async {
            let (_, health) = self.webhook_health(id).await;
            check(&health).then_some(health)
        })
        .await
    }

    /// Waits until everything published so far is routed (the stream is empty) and these
    /// webhooks have nothing queued, in flight or waiting: what their receivers got is final.
    pub async fn settled(&self, ids: &[&str]) {
        super::eventually("every event routed and delivered", Duration::from_secs(10), || async {
            if self.stream_len("events").await != 0 {
                return None;
            }
            for id in ids {
                let (_, health) = self.webhook_health(id).await;
                let idle = health["backlog"] == 0 && health["inFlight"] == 0 && health["waiting"] == 0;
                if !idle {
                    return None;
                }
            }
            Some(())
        })
        .await
    }

    /// `POST /webhooks/{id}/pause`.
    pub async fn pause(&self, id: &str) -> (u16, Value) {
        self.call("POST", &format!("/webhooks/{id}/pause"), None).await
    }

    /// `POST /webhooks/{id}/resume`.
    pub async fn resume(&self, id: &str) -> (u16, Value) {
        self.call("POST", &format!("/webhooks/{id}/resume"), None).await
    }

    /// `POST /webhooks/{id}/retry`.
    pub async fn retry_now(&self, id: &str) -> (u16, Value) {
        self.call("POST", &format!("/webhooks/{id}/retry"), None).await
    }

    /// `GET /webhooks/{id}/dead?<query>`.
    pub async fn dead_letters(&self, id: &str, query: &str) -> (u16, Value) {
        self.call("GET", &format!("/webhooks/{id}/dead?{query}"), None).await
    }

    /// `GET /webhooks/{id}/attempts?<query>`.
    pub async fn attempts(&self, id: &str, query: &str) -> (u16, Value) {
        self.call("GET", &format!("/webhooks/{id}/attempts?{query}"), None)
            .await
    }

    /// `POST /events` with an object or an array.
    pub async fn post_events(&self, body: Value) -> (u16, Value) {
        self.call("POST", "/events", Some(body)).await
    }

    // --- producing events and looking into Redis ---------------------------------------------

    /// What a producer does: `XADD <prefix>:events * event <json>`.
    pub async fn publish(&self, event: Value) -> String {
        self.publish_raw(event.to_string().as_bytes()).await
    }

    /// `XADD <prefix>:events * event <raw bytes>`.
    pub async fn publish_raw(&self, raw: &[u8]) -> String {
        let mut conn = self.redis.clone();
        redis::cmd("XADD")
            .arg(self.key("events"))
            .arg("*")
            .arg("event")
            .arg(raw)
            .query_async(&mut conn)
            .await
            .expect("XADD")
    }

    /// Any Redis command, typed.
    pub async fn redis<T: redis::FromRedisValue>(&self, cmd: &mut redis::Cmd) -> T {
        let mut conn = self.redis.clone();
        cmd.query_async(&mut conn).await.expect("redis command")
    }

    /// A Redis pipeline (atomic when made so), typed.
    pub async fn redis_pipe<T: redis::FromRedisValue>(&self, pipe: &redis::Pipeline) -> T {
        let mut conn = self.redis.clone();
        pipe.query_async(&mut conn).await.expect("redis pipeline")
    }

    /// `GET /metrics`, as text.
    pub async fn metrics_text(&self) -> String {
        let mut response = self.request("GET", "/metrics").send().await.expect("the API answers");
        let body = response.body().limit(16 * 1024 * 1024).await.expect("metrics body");
        String::from_utf8(body.to_vec()).expect("metrics are text")
    }

    pub async fn stream_len(&self, key: &str) -> u64 {
        self.redis(redis::cmd("XLEN").arg(self.key(key))).await
    }

    /// Entries of a stream as field maps (values lossily decoded).
    pub async fn stream_entries(&self, key: &str) -> Vec<std::collections::HashMap<String, String>> {
        let entries: StreamEntries = self
            .redis(redis::cmd("XRANGE").arg(self.key(key)).arg("-").arg("+"))
            .await;
        entries
            .into_iter()
            .map(|(_, fields)| {
                fields
                    .into_iter()
                    .map(|(k, v)| (k, String::from_utf8_lossy(&v).into_owned()))
                    .collect()
            })
            .collect()
    }
}
