//! The receiving end: a keep-alive HTTP sink on loopback, plain or behind TLS
//! ([`Sink::start_tls`]), that answers 204 at once, counts deliveries per webhook (by path) and
//! connections (over TLS: handshakes), and records publish→delivery latency from the `sent`
//! field (µs since the epoch) the publisher put inside each event. A refusing sink
//! ([`Sink::refusing`]) answers 422 to every n-th event (by its `message` number), as a
//! receiver with a validation rule does, and counts those apart.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};

#[derive(Default)]
pub struct Tally {
    pub deliveries: AtomicU64,
    /// When the latest delivery arrived (µs since the epoch).
    pub last_us: AtomicU64,
    /// Latency samples in µs.
    pub latencies: Mutex<Vec<u32>>,
    /// Deliveries per webhook index (path `/w/<i>`).
    pub per_webhook: Mutex<Vec<u64>>,
    /// Connections accepted; over TLS each is one handshake.
    pub connections: AtomicU64,
    /// Answer 422 to events whose `message` number is a multiple of this (0: never).
    pub refuse_every: u64,
    /// Requests answered 422 (not counted in `deliveries`).
    pub refused: AtomicU64,
}

impl Tally {
    pub fn take_latencies(&self) -> Vec<u32> {
        std::mem::take(&mut *self.latencies.lock().unwrap())
    }

    pub fn reset(&self) {
        self.deliveries.store(0, Ordering::SeqCst);
        self.last_us.store(0, Ordering::SeqCst);
        self.latencies.lock().unwrap().clear();
        self.per_webhook.lock().unwrap().clear();
        self.connections.store(0, Ordering::SeqCst);
    }
}

pub struct Sink {
    pub port: u16,
    pub tally: Arc<Tally>,
    /// `https` behind TLS.
    scheme: &'static str,
    handle: actix_web::dev::ServerHandle,
}

pub fn now_us() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_micros() as u64)
}

/// The digits after `"sent":` in a body, without parsing the JSON.
fn sent_us(body: &[u8]) -> Option<u64> {
    number_after(body, b"\"sent\":")
}

/// The digits after `key` in a body.
fn number_after(body: &[u8], key: &[u8]) -> Option<u64> {
    let at = body.windows(key.len()).position(|w| w == key)? + key.len();
    let digits = body[at..].iter().take_while(|b| b.is_ascii_digit());
    let mut value = 0u64;
    let mut any = false;
    for digit in digits {
        value = value * 10 + u64::from(digit - b'0');
        any = true;
    }
    any.then_some(value)
}

async fn receive(tally: web::Data<Tally>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    if tally.refuse_every > 0 && number_after(&body, b"\"message\":").is_some_and(|n| n % tally.refuse_every == 0) {
        tally.refused.fetch_add(1, Ordering::Relaxed);
        return HttpResponse::UnprocessableEntity().body("refused by a validation rule");
    }
    let now = now_us();
    tally.deliveries.fetch_add(1, Ordering::Relaxed);
    tally.last_us.fetch_max(now, Ordering::Relaxed);
    if let Some(sent) = sent_us(&body) {
        let latency = now.saturating_sub(sent).min(u64::from(u32::MAX)) as u32;
        tally.latencies.lock().unwrap().push(latency);
    }
    if let Some(index) = request.path().strip_prefix("/w/").and_then(|i| i.parse::<usize>().ok()) {
        let mut per = tally.per_webhook.lock().unwrap();
        if per.len() <= index {
            per.resize(index + 1, 0);
        }
        per[index] += 1;
    }
    HttpResponse::NoContent().finish()
}

impl Sink {
    /// A sink with one worker thread (the same in the ceiling measurement and in every run).
    pub fn start(listener: Option<std::net::TcpListener>) -> Sink {
        Sink::serve(listener, None, 0)
    }

    /// The same sink behind TLS, presenting the certificate of `tls`.
    pub fn start_tls(tls: rustls::ServerConfig) -> Sink {
        Sink::serve(None, Some(tls), 0)
    }

    /// A sink that answers 422 to every `every`-th event.
    pub fn refusing(every: u64) -> Sink {
        Sink::serve(None, None, every)
    }

    fn serve(listener: Option<std::net::TcpListener>, tls: Option<rustls::ServerConfig>, refuse_every: u64) -> Sink {
        let listener = listener.unwrap_or_else(|| std::net::TcpListener::bind("127.0.0.1:0").unwrap());
        let port = listener.local_addr().unwrap().port();
        let tally = Arc::new(Tally {
            refuse_every,
            ..Tally::default()
        });
        let data = web::Data::from(tally.clone());
        let counter = tally.clone();
        let server = HttpServer::new(move || App::new().app_data(data.clone()).default_service(web::to(receive)))
            .on_connect(move |_, _| {
                counter.connections.fetch_add(1, Ordering::Relaxed);
            })
            .workers(1)
            .backlog(4096)
            .max_connections(100_000)
            .disable_signals()
            .shutdown_timeout(0);
        let scheme = if tls.is_some() { "https" } else { "http" };
        let server = match tls {
            Some(config) => server.listen_rustls_0_23(listener, config),
            None => server.listen(listener),
        }
        .unwrap()
        .run();
        let handle = server.handle();
        actix_rt::spawn(server);
        Sink {
            port,
            tally,
            scheme,
            handle,
        }
    }

    pub fn url(&self, webhook: usize) -> String {
        format!("{}://127.0.0.1:{}/w/{webhook}", self.scheme, self.port)
    }

    pub async fn stop(self) {
        self.handle.stop(false).await;
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn finds_the_event_number() {
        assert_eq!(
            super::number_after(br#"{"message":150,"x":1}"#, b"\"message\":"),
            Some(150)
        );
    }

    #[test]
    fn finds_the_publish_time() {
        assert_eq!(super::sent_us(br#"{"id":"x","sent":1234,"ev":"a"}"#), Some(1234));
        assert_eq!(super::sent_us(b"{}"), None);
    }
}
