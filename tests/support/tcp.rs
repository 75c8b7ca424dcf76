//! Misbehaving endpoints on raw TCP, for what a well-behaved HTTP server cannot do: hold
//! connections forever (a black hole) or reset them mid-request.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Accepts connections and never answers. Stopping it closes every connection it holds.
pub struct BlackHole {
    pub port: u16,
    accepted: Arc<AtomicUsize>,
    task: actix_rt::task::JoinHandle<()>,
}

impl BlackHole {
    pub async fn start() -> BlackHole {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind black hole");
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let counter = accepted.clone();
        let task = actix_rt::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, Ordering::SeqCst);
                held.push(socket);
            }
        });
        BlackHole { port, accepted, task }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Closes the listener and every held connection (the port is free again).
    pub fn stop(self) {
        self.task.abort();
    }
}

/// How the flapping endpoint treats one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Flap {
    Ok,
    ServerError,
    /// Close the connection with a TCP reset, no answer.
    Reset,
    /// Answer 200 only after this long (beyond the delivery timeout).
    Slow(Duration),
}

/// One request the flapping endpoint saw: the `webhook-id` header and what it did.
#[derive(Clone, Debug)]
pub struct Seen {
    pub id: String,
    pub flap: Flap,
}

/// An HTTP/1.1 endpoint (one request per connection) that answers as `choose` says.
pub struct Flapping {
    pub port: u16,
    pub seen: Arc<Mutex<Vec<Seen>>>,
    task: actix_rt::task::JoinHandle<()>,
}

impl Flapping {
    pub async fn start(choose: impl Fn(usize) -> Flap + Send + Sync + 'static) -> Flapping {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind flapping endpoint");
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (log, choose) = (seen.clone(), Arc::new(choose));
        let task = actix_rt::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (log, choose) = (log.clone(), choose.clone());
                actix_rt::spawn(async move { serve(socket, log, choose).await });
            }
        });
        Flapping { port, seen, task }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }
}

impl Drop for Flapping {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut socket: TcpStream, log: Arc<Mutex<Vec<Seen>>>, choose: Arc<dyn Fn(usize) -> Flap + Send + Sync>) {
    let Some((head, _)) = read_request(&mut socket).await else {
        return;
    };
    let id = header(&head, "webhook-id").unwrap_or_default();
    let flap = {
        let mut log = log.lock().unwrap();
        let flap = choose(log.len());
        log.push(Seen { id, flap });
        flap
    };
    let status = match flap {
        Flap::Reset => {
            let _ = socket.set_zero_linger();
            return;
        }
        Flap::Slow(wait) => {
            actix_rt::time::sleep(wait).await;
            "200 OK"
        }
        Flap::Ok => "200 OK",
        Flap::ServerError => "500 Internal Server Error",
    };
    let response = format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
    let _ = socket.write_all(response.as_bytes()).await;
    let _ = socket.shutdown().await;
}

/// A header's value in a request's head.
pub fn header(head: &str, name: &str) -> Option<String> {
    head.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        key.eq_ignore_ascii_case(name).then(|| value.trim().to_string())
    })
}

/// Reads the head and body of one request.
pub async fn read_request(socket: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 8192];
    loop {
        let read = socket.read(&mut chunk).await.ok()?;
        if read == 0 {
            return None;
        }
        buffer.extend_from_slice(&chunk[..read]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).into_owned();
            let length: usize = header(&head, "content-length")
                .and_then(|length| length.parse().ok())
                .unwrap_or(0);
            while buffer.len() < end + 4 + length {
                let read = socket.read(&mut chunk).await.ok()?;
                if read == 0 {
                    return None;
                }
                buffer.extend_from_slice(&chunk[..read]);
            }
            return Some((head, buffer[end + 4..end + 4 + length].to_vec()));
        }
    }
}

/// A TCP proxy in front of Redis that can lose one reply: once armed with a needle, the first
/// command whose bytes contain it is forwarded to Redis (which runs it), and then the client's
/// connection is cut before the reply comes back — what a timeout or a dropped connection does
/// to a command that committed. It can also slow the connections that subscribe to pub/sub
/// channels, as a congested link delays notifications.
pub struct RedisProxy {
    pub port: u16,
    needle: Arc<Mutex<Option<Vec<u8>>>>,
    cuts: Arc<AtomicUsize>,
    task: actix_rt::task::JoinHandle<()>,
}

/// How long what Redis sends to a subscribed connection is held back, per proxy.
type Slow = Arc<Mutex<Duration>>;

impl RedisProxy {
    pub async fn start(upstream: &'static str) -> RedisProxy {
        RedisProxy::start_slowing_subscribers(upstream, Duration::ZERO).await
    }

    /// Like [`RedisProxy::start`], holding back everything Redis sends to a connection that
    /// subscribed to a channel by `slow` (notifications arrive that much later).
    pub async fn start_slowing_subscribers(upstream: &'static str, slow: Duration) -> RedisProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the proxy");
        let port = listener.local_addr().unwrap().port();
        let needle: Arc<Mutex<Option<Vec<u8>>>> = Arc::new(Mutex::new(None));
        let cuts = Arc::new(AtomicUsize::new(0));
        let (armed, counter) = (needle.clone(), cuts.clone());
        let slow: Slow = Arc::new(Mutex::new(slow));
        let task = actix_rt::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                actix_rt::spawn(relay(client, server, armed.clone(), counter.clone(), slow.clone()));
            }
        });
        RedisProxy {
            port,
            needle,
            cuts,
            task,
        }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Loses the reply of the next command containing `needle`.
    pub fn lose_reply_to(&self, needle: &[u8]) {
        *self.needle.lock().unwrap() = Some(needle.to_vec());
    }

    /// Replies lost so far.
    pub fn cuts(&self) -> usize {
        self.cuts.load(Ordering::SeqCst)
    }
}

impl Drop for RedisProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn relay(
    client: TcpStream,
    server: TcpStream,
    needle: Arc<Mutex<Option<Vec<u8>>>>,
    cuts: Arc<AtomicUsize>,
    slow: Slow,
) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let cut = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let subscribed = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let replies_cut = cut.clone();
    let replies_subscribed = subscribed.clone();
    let replies = actix_rt::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        while let Ok(n) = server_read.read(&mut buffer).await {
            if n == 0 || replies_cut.load(Ordering::SeqCst) {
                break;
            }
            let hold = *slow.lock().unwrap();
            if replies_subscribed.load(Ordering::SeqCst) && !hold.is_zero() {
                actix_rt::time::sleep(hold).await;
            }
            if client_write.write_all(&buffer[..n]).await.is_err() {
                break;
            }
        }
        // Dropping the client's write half closes its connection: the reply is lost.
        drop(client_write);
        // Keep Redis's side open a moment, so it surely runs what it was sent.
        actix_rt::time::sleep(Duration::from_millis(500)).await;
    });
    let mut buffer = vec![0u8; 64 * 1024];
    while let Ok(n) = client_read.read(&mut buffer).await {
        if n == 0 {
            break;
        }
        if buffer[..n].windows(9).any(|w| w.eq_ignore_ascii_case(b"SUBSCRIBE")) {
            subscribed.store(true, Ordering::SeqCst);
        }
        let hit = {
            let mut armed = needle.lock().unwrap();
            let hit = armed
                .as_ref()
                .is_some_and(|needle| buffer[..n].windows(needle.len()).any(|w| w == needle.as_slice()));
            if hit {
                *armed = None;
            }
            hit
        };
        if hit {
            // Before forwarding, so the reply cannot slip through.
            cuts.fetch_add(1, Ordering::SeqCst);
            cut.store(true, Ordering::SeqCst);
        }
        if server_write.write_all(&buffer[..n]).await.is_err() || hit {
            break;
        }
    }
    let _ = replies.await;
}
