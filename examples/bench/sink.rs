//! The receiving end: a keep-alive HTTP sink on loopback, plain or behind TLS
//! ([`Sink::start_tls`]), that answers 204 at once, counts deliveries per webhook (by path) and
//! connections (over TLS: handshakes), and records publish→delivery latency from the `sent`
//! field (µs since the epoch) the publisher put inside each event. A refusing sink
//! ([`Sink::refusing`]) answers 422 to every n-th event (by its `message` number), as a
//! receiver with a validation rule does, and counts those apart. A tracking sink
//! ([`Sink::tracking`]) also keeps, per webhook, a bitset of the event numbers it received, to
//! count duplicates exactly, and can note when each webhook first receives an event published
//! after a given moment (a handover's end).

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
    /// Keep `seen`, `distinct` and `duplicates` (a tracking sink).
    pub track: bool,
    /// Per webhook, a bitset of the event numbers (`message`) received.
    pub seen: Mutex<Vec<Vec<u64>>>,
    /// (webhook, event) pairs received at least once, and receptions beyond the first.
    pub distinct: AtomicU64,
    pub duplicates: AtomicU64,
    /// Duplicates per webhook index.
    pub duplicates_per_webhook: Mutex<Vec<u64>>,
    /// A publish time (µs since the epoch; 0: off): per webhook, when the first delivery of an
    /// event published after it arrived goes into `resumed`.
    pub watch_after_us: AtomicU64,
    pub resumed: Mutex<Vec<u64>>,
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
        self.seen.lock().unwrap().clear();
        self.distinct.store(0, Ordering::SeqCst);
        self.duplicates.store(0, Ordering::SeqCst);
        self.duplicates_per_webhook.lock().unwrap().clear();
        self.watch_after_us.store(0, Ordering::SeqCst);
        self.resumed.lock().unwrap().clear();
    }

    /// Notes a delivery of event `message` to webhook `index`, published at `sent`, that
    /// arrived at `now` (a tracking sink).
    fn track(&self, index: usize, message: Option<u64>, sent: Option<u64>, now: u64) {
        if let Some(n) = message {
            let mut seen = self.seen.lock().unwrap();
            if seen.len() <= index {
                seen.resize_with(index + 1, Vec::new);
            }
            let bits = &mut seen[index];
            let (word, bit) = ((n / 64) as usize, 1u64 << (n % 64));
            if bits.len() <= word {
                bits.resize(word + 1, 0);
            }
            if bits[word] & bit == 0 {
                bits[word] |= bit;
                self.distinct.fetch_add(1, Ordering::Relaxed);
            } else {
                self.duplicates.fetch_add(1, Ordering::Relaxed);
                let mut per = self.duplicates_per_webhook.lock().unwrap();
                if per.len() <= index {
                    per.resize(index + 1, 0);
                }
                per[index] += 1;
            }
        }
        let after = self.watch_after_us.load(Ordering::Relaxed);
        if after > 0 && sent.is_some_and(|sent| sent > after) {
            let mut resumed = self.resumed.lock().unwrap();
            if resumed.len() <= index {
                resumed.resize(index + 1, 0);
            }
            if resumed[index] == 0 {
                resumed[index] = now;
            }
        }
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
    let sent = sent_us(&body);
    if let Some(sent) = sent {
        let latency = now.saturating_sub(sent).min(u64::from(u32::MAX)) as u32;
        tally.latencies.lock().unwrap().push(latency);
    }
    if let Some(index) = request.path().strip_prefix("/w/").and_then(|i| i.parse::<usize>().ok()) {
        {
            let mut per = tally.per_webhook.lock().unwrap();
            if per.len() <= index {
                per.resize(index + 1, 0);
            }
            per[index] += 1;
        }
        if tally.track {
            tally.track(index, number_after(&body, b"\"message\":"), sent, now);
        }
    }
    HttpResponse::NoContent().finish()
}

impl Sink {
    /// A sink with one worker thread (the same in the ceiling measurement and in every run).
    pub fn start(listener: Option<std::net::TcpListener>) -> Sink {
        Sink::serve(listener, None, 0, false)
    }

    /// A sink that also counts duplicates exactly and notes handovers (see [`Tally::track`]).
    pub fn tracking() -> Sink {
        Sink::serve(None, None, 0, true)
    }

    /// The same sink behind TLS, presenting the certificate of `tls`.
    pub fn start_tls(tls: rustls::ServerConfig) -> Sink {
        Sink::serve(None, Some(tls), 0, false)
    }

    /// A sink that answers 422 to every `every`-th event.
    pub fn refusing(every: u64) -> Sink {
        Sink::serve(None, None, every, false)
    }

    fn serve(
        listener: Option<std::net::TcpListener>,
        tls: Option<rustls::ServerConfig>,
        refuse_every: u64,
        track: bool,
    ) -> Sink {
        let listener = listener.unwrap_or_else(|| std::net::TcpListener::bind("127.0.0.1:0").expect("bind the sink"));
        let port = listener.local_addr().expect("the sink's port").port();
        let tally = Arc::new(Tally {
            refuse_every,
            track,
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
        .expect("the sink listens")
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
    fn counts_duplicates_per_webhook_and_event() {
        let tally = super::Tally {
            track: true,
            ..super::Tally::default()
        };
        for (webhook, message) in [(0, 5), (1, 5), (0, 5), (0, 700), (2, 64)] {
            tally.track(webhook, Some(message), None, 1);
        }
        assert_eq!(tally.distinct.load(super::Ordering::SeqCst), 4);
        assert_eq!(tally.duplicates.load(super::Ordering::SeqCst), 1);
        assert_eq!(*tally.duplicates_per_webhook.lock().unwrap(), vec![1]);
    }

    #[test]
    fn notes_the_first_delivery_published_after_a_moment() {
        let tally = super::Tally::default();
        tally.watch_after_us.store(100, super::Ordering::SeqCst);
        tally.track(3, None, Some(90), 1_000);
        tally.track(3, None, Some(110), 2_000);
        tally.track(3, None, Some(120), 3_000);
        assert_eq!(*tally.resumed.lock().unwrap(), vec![0, 0, 0, 2_000]);
    }

    #[test]
    fn finds_the_publish_time() {
        assert_eq!(super::sent_us(br#"{"id":"x","sent":1234,"ev":"a"}"#), Some(1234));
        assert_eq!(super::sent_us(b"{}"), None);
    }
}
