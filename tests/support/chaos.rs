//! The chaos soak's receiver: a raw HTTP/1.1 endpoint (one request per connection) whose every
//! answer is drawn from the soak's seed, the delivery id and the attempt: 2xx, 4xx, 5xx, 429
//! with `Retry-After`, a hang, a connection reset, a slow answer. A webhook marked *gone*
//! answers 410 until it is marked fixed. Whatever the timing, the same seed gives each
//! (delivery, attempt) the same answer.
//!
//! It records what it answered 2xx, the only answers that count as delivered: a hang or a reset
//! is not a delivery, and a slow answer stays well within the service's timeout, so a 2xx the
//! service did not see (a receiver-side duplicate cause the soak does not count) cannot happen.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::tcp::{header, read_request};

/// One answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    /// 429 or 503 with `Retry-After: 1`.
    SlowDown(u16),
    /// Read the request, never answer (the service's timeout ends it).
    Hang,
    /// Close with a TCP reset, no answer.
    Reset,
    /// Answer 200 late (well within the service's timeout).
    Slow(Duration),
}

/// What the receiver saw, shared with the test.
#[derive(Default)]
pub struct Seen {
    /// Requests per delivery id (so the n-th attempt gets the n-th draw).
    pub attempts: HashMap<String, u32>,
    /// Every 2xx answered: (delivery id, the event's `n`).
    pub delivered: Vec<(String, u64)>,
    /// Requests answered, by answer kind.
    pub answers: HashMap<&'static str, u64>,
    /// Webhooks answering 410 now.
    pub gone: HashSet<String>,
    /// 410s answered, per webhook.
    pub gone_answers: HashMap<String, u64>,
    /// Every endpoint is healthy again: 200 to everything from now on.
    pub healed: bool,
}

pub struct ChaosReceiver {
    pub port: u16,
    pub seen: Arc<Mutex<Seen>>,
    task: actix_rt::task::JoinHandle<()>,
}

impl ChaosReceiver {
    pub async fn start(seed: u64) -> ChaosReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the chaos receiver");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = seen.clone();
        let task = actix_rt::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                actix_rt::spawn(serve(socket, seed, shared.clone()));
            }
        });
        ChaosReceiver { port, seen, task }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// Every endpoint answers 200 from now on.
    pub fn heal(&self) {
        self.seen.lock().unwrap().healed = true;
    }

    /// Makes `webhook` answer 410 (`true`) or draw its answers again (`false`).
    pub fn set_gone(&self, webhook: &str, gone: bool) {
        let mut seen = self.seen.lock().unwrap();
        if gone {
            seen.gone.insert(webhook.to_string());
        } else {
            seen.gone.remove(webhook);
        }
    }
}

impl Drop for ChaosReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The answer to attempt `attempt` of `delivery`: a fixed function of the three.
pub fn draw(seed: u64, delivery: &str, attempt: u32) -> Answer {
    let mut hash = seed ^ 0xcbf2_9ce4_8422_2325;
    for byte in delivery.bytes().chain(attempt.to_le_bytes()) {
        hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
    }
    // splitmix64's finalizer spreads the low bits.
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    match (hash ^ (hash >> 31)) % 100 {
        0..=59 => Answer::Status(200),
        60..=61 => Answer::Status(204),
        62..=69 => Answer::Status(500),
        70..=72 => Answer::Status(503),
        73..=74 => Answer::Status(422),
        75..=76 => Answer::Status(404),
        77..=80 => Answer::SlowDown(429),
        81 => Answer::SlowDown(503),
        82..=84 => Answer::Hang,
        85..=89 => Answer::Reset,
        _ => Answer::Slow(Duration::from_millis(200 + hash % 300)),
    }
}

fn kind(answer: Answer) -> &'static str {
    match answer {
        Answer::Status(200 | 204) | Answer::Slow(_) => "2xx",
        Answer::Status(410) => "410",
        Answer::Status(status) if status >= 500 => "5xx",
        Answer::Status(_) => "4xx",
        Answer::SlowDown(_) => "slow down",
        Answer::Hang => "hang",
        Answer::Reset => "reset",
    }
}

async fn serve(mut socket: TcpStream, seed: u64, seen: Arc<Mutex<Seen>>) {
    let Some((head, body)) = read_request(&mut socket).await else {
        return;
    };
    let delivery = header(&head, "webhook-id").unwrap_or_default();
    let webhook = delivery.split(':').next().unwrap_or_default().to_string();
    let n = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|event| event["n"].as_u64())
        .unwrap_or(u64::MAX);
    let answer = {
        let mut seen = seen.lock().unwrap();
        let attempt = seen.attempts.entry(delivery.clone()).or_insert(0);
        *attempt += 1;
        let attempt = *attempt;
        let answer = if seen.healed {
            Answer::Status(200)
        } else if seen.gone.contains(&webhook) {
            *seen.gone_answers.entry(webhook).or_insert(0) += 1;
            Answer::Status(410)
        } else {
            draw(seed, &delivery, attempt)
        };
        *seen.answers.entry(kind(answer)).or_insert(0) += 1;
        answer
    };
    let status = match answer {
        Answer::Reset => {
            let _ = socket.set_zero_linger();
            return;
        }
        Answer::Hang => {
            // Held until the service gives up and closes it.
            let mut rest = [0u8; 64];
            let _ = socket.read(&mut rest).await;
            return;
        }
        Answer::Slow(wait) => {
            actix_rt::time::sleep(wait).await;
            "200 OK".to_string()
        }
        Answer::Status(code) => format!("{code} Chaos"),
        Answer::SlowDown(code) => format!("{code} Slow Down\r\nretry-after: 1"),
    };
    let response = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    if socket.write_all(response.as_bytes()).await.is_ok() && kind(answer) == "2xx" {
        seen.lock().unwrap().delivered.push((delivery, n));
    }
    let _ = socket.shutdown().await;
}
