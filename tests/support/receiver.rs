//! A real HTTP receiver (actix-web on an ephemeral port) that records every request and
//! answers as the test scripts it, over plain HTTP or over TLS ([`Receiver::tls`], with a
//! certificate from [`super::tls`]). It counts the connections it accepted, so tests can check
//! that connections (and so TLS handshakes) are reused.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use serde_json::Value;

/// How the receiver answers one request.
#[derive(Clone, Debug)]
pub enum Reply {
    Status(u16),
    /// A status with a `Retry-After` header (seconds).
    StatusRetryAfter(u16, u64),
    /// Wait, then answer with the status.
    Delay(Duration, u16),
    /// A redirect (3xx) with a `Location` a client following redirects would go to.
    Redirect(u16, String),
    /// Answer with the status once the gate is opened (set to true).
    Gate(Arc<std::sync::atomic::AtomicBool>, u16),
    /// Never answer.
    Hang,
}

#[derive(Clone, Debug)]
pub struct Received {
    /// `HTTP/1.1`, `HTTP/2.0`...
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
    pub at: Instant,
    /// Arrival, in ms since the epoch (to compare with a publish time inside the event).
    pub at_ms: u64,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).expect("delivery body is JSON")
    }

    /// The delivery id (`id` of the body).
    pub fn id(&self) -> String {
        self.json()["id"].as_str().unwrap_or_default().to_string()
    }
}

type Script = Arc<dyn Fn(usize, &Value) -> Reply + Send + Sync>;

struct Shared {
    received: Mutex<Vec<Received>>,
    script: Script,
    /// Requests being answered now, and the most at once since the last reset.
    in_flight: AtomicUsize,
    peak: AtomicUsize,
    /// Connections accepted (over TLS: handshakes completed).
    connections: AtomicUsize,
}

pub struct Receiver {
    shared: Arc<Shared>,
    addr: std::net::SocketAddr,
    /// `https` when serving TLS.
    scheme: &'static str,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// A receiver answering 200 to everything.
    pub fn ok() -> Receiver {
        Receiver::scripted(|_, _| Reply::Status(200))
    }

    /// A receiver answering request n (0-based, counting all requests) with `script(n, body)`.
    pub fn scripted(script: impl Fn(usize, &Value) -> Reply + Send + Sync + 'static) -> Receiver {
        Receiver::scripted_on("127.0.0.1:0", script)
    }

    /// Like [`Receiver::scripted`], listening on `addr` (`[::1]:0` for IPv6 loopback).
    pub fn scripted_on(addr: &str, script: impl Fn(usize, &Value) -> Reply + Send + Sync + 'static) -> Receiver {
        let listener = std::net::TcpListener::bind(addr).expect("bind receiver");
        Receiver::on_listener(listener, script)
    }

    /// A receiver that answers `failing` until the returned switch is set, then 200.
    pub fn failing_until_healed(failing: Reply) -> (Receiver, Arc<std::sync::atomic::AtomicBool>) {
        let healed = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let switch = healed.clone();
        let receiver = Receiver::scripted(move |_, _| {
            if healed.load(Ordering::SeqCst) {
                Reply::Status(200)
            } else {
                failing.clone()
            }
        });
        (receiver, switch)
    }

    /// Like [`Receiver::scripted`], on a listener the test bound (a port it wants back).
    pub fn on_listener(
        listener: std::net::TcpListener,
        script: impl Fn(usize, &Value) -> Reply + Send + Sync + 'static,
    ) -> Receiver {
        Receiver::serve(listener, None, Arc::new(script))
    }

    /// An HTTPS receiver presenting `certificate` (it offers HTTP/2 and HTTP/1.1 by ALPN, as
    /// actix-web does), answering as `script` says.
    pub fn tls(
        certificate: &super::tls::ServerCert,
        script: impl Fn(usize, &Value) -> Reply + Send + Sync + 'static,
    ) -> Receiver {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind receiver");
        Receiver::serve(listener, Some(certificate.server_config()), Arc::new(script))
    }

    fn serve(listener: std::net::TcpListener, tls: Option<rustls::ServerConfig>, script: Script) -> Receiver {
        let shared = Arc::new(Shared {
            received: Mutex::new(Vec::new()),
            script,
            in_flight: AtomicUsize::new(0),
            peak: AtomicUsize::new(0),
            connections: AtomicUsize::new(0),
        });
        let data = web::Data::from(shared.clone());
        let counter = shared.clone();
        let addr = listener.local_addr().expect("receiver address");
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(handle)))
            .on_connect(move |_, _| {
                counter.connections.fetch_add(1, Ordering::SeqCst);
            })
            .workers(2)
            .disable_signals()
            .shutdown_timeout(0);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = match tls {
            Some(config) => server.listen_rustls_0_23(listener, config),
            None => server.listen(listener),
        }
        .expect("listen")
        .run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Receiver {
            shared,
            addr,
            scheme,
            server: handle,
        }
    }

    /// `http(s)://127.0.0.1:<port>/hook`, or `http://[::1]:<port>/hook`.
    pub fn url(&self) -> String {
        format!("{}://{}/hook", self.scheme, self.addr)
    }

    /// The receiver's URL with another host that reaches it (`localhost`).
    pub fn url_at(&self, host: &str) -> String {
        format!("{}://{host}:{}/hook", self.scheme, self.addr.port())
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Connections accepted so far; over TLS, each is one handshake.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    pub fn received(&self) -> Vec<Received> {
        self.shared.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.shared.received.lock().unwrap().len()
    }

    /// Requests received per delivery id (the `webhook-id` header, `<webhook>:<event>`).
    pub fn per_delivery(&self) -> std::collections::HashMap<String, usize> {
        let mut counts = std::collections::HashMap::new();
        for request in self.received() {
            *counts
                .entry(request.header("webhook-id").unwrap_or_default().to_string())
                .or_insert(0) += 1;
        }
        counts
    }

    /// The distinct `n` fields of the events received (answered 2xx or not): the tests number
    /// their events.
    pub fn numbers(&self) -> std::collections::HashSet<u64> {
        self.received().iter().filter_map(|r| r.json()["n"].as_u64()).collect()
    }

    /// Waits until every event numbered in `wanted` arrived; returns every number received.
    pub async fn wait_for_numbers(
        &self,
        wanted: &std::collections::HashSet<u64>,
        timeout: Duration,
    ) -> std::collections::HashSet<u64> {
        let what = format!("{} numbered events at {}", wanted.len(), self.url());
        super::eventually(&what, timeout, || async {
            let numbers = self.numbers();
            wanted.is_subset(&numbers).then_some(numbers)
        })
        .await
    }

    /// Waits until at least `n` requests arrived.
    pub async fn wait_for(&self, n: usize, timeout: Duration) -> Vec<Received> {
        super::eventually(&format!("{n} requests at {}", self.url()), timeout, || async {
            let received = self.received();
            (received.len() >= n).then_some(received)
        })
        .await
    }

    /// The most requests answered at once since the last [`Receiver::reset_peak`].
    pub fn peak_concurrency(&self) -> usize {
        self.shared.peak.load(Ordering::SeqCst)
    }

    pub fn reset_peak(&self) {
        self.shared
            .peak
            .store(self.shared.in_flight.load(Ordering::SeqCst), Ordering::SeqCst);
    }

    pub async fn stop(&self) {
        self.server.stop(false).await;
    }
}

async fn handle(shared: web::Data<Shared>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let headers = request
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or_default().to_string()))
        .collect();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let n = {
        let mut received = shared.received.lock().unwrap();
        received.push(Received {
            version: format!("{:?}", request.version()),
            headers,
            body: body.to_vec(),
            at: Instant::now(),
            at_ms: hookrouter::clock::now_ms(),
        });
        received.len() - 1
    };
    let reply = (shared.script)(n, &json);
    let now = shared.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
    shared.peak.fetch_max(now, Ordering::SeqCst);
    let response = answer(reply).await;
    shared.in_flight.fetch_sub(1, Ordering::SeqCst);
    response
}

async fn answer(reply: Reply) -> HttpResponse {
    let status = |code: u16| actix_web::http::StatusCode::from_u16(code).unwrap();
    match reply {
        Reply::Status(code) => HttpResponse::build(status(code)).body("ok"),
        Reply::Gate(gate, code) => {
            while !gate.load(Ordering::SeqCst) {
                actix_rt::time::sleep(Duration::from_millis(10)).await;
            }
            HttpResponse::build(status(code)).body("let through")
        }
        Reply::Redirect(code, location) => HttpResponse::build(status(code))
            .insert_header(("Location", location))
            .body("moved"),
        Reply::StatusRetryAfter(code, secs) => HttpResponse::build(status(code))
            .insert_header(("Retry-After", secs.to_string()))
            .body("later"),
        Reply::Delay(wait, code) => {
            actix_rt::time::sleep(wait).await;
            HttpResponse::build(status(code)).body("slow")
        }
        Reply::Hang => {
            actix_rt::time::sleep(Duration::from_secs(3600)).await;
            HttpResponse::Ok().finish()
        }
    }
}
