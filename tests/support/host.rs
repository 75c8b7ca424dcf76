//! One receiving host for many webhooks (a SaaS ingress giving each tenant its own path): a
//! keep-alive HTTP/1.1 endpoint that counts the connections open at once and refuses (resets)
//! any beyond its limit, as a server at its `worker_connections` does. Every request it serves
//! gets a 200 after `work`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};

use super::tcp::{header, read_request};

#[derive(Default)]
pub struct Counts {
    pub open: AtomicUsize,
    pub peak: AtomicUsize,
    pub accepted: AtomicUsize,
    pub refused: AtomicUsize,
    /// 2xx answered per delivery id.
    pub delivered: Mutex<HashMap<String, usize>>,
}

pub struct CappedHost {
    pub port: u16,
    pub counts: Arc<Counts>,
    task: actix_rt::task::JoinHandle<()>,
}

impl CappedHost {
    pub async fn start(limit: usize, work: Duration) -> CappedHost {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind the capped host");
        let port = listener.local_addr().unwrap().port();
        let counts = Arc::new(Counts::default());
        let shared = counts.clone();
        let task = actix_rt::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                let open = shared.open.fetch_add(1, Ordering::SeqCst) + 1;
                if open > limit {
                    shared.open.fetch_sub(1, Ordering::SeqCst);
                    shared.refused.fetch_add(1, Ordering::SeqCst);
                    let _ = socket.set_zero_linger();
                    continue;
                }
                shared.peak.fetch_max(open, Ordering::SeqCst);
                let counts = shared.clone();
                actix_rt::spawn(async move {
                    serve(socket, &counts, work).await;
                    counts.open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        CappedHost { port, counts, task }
    }

    /// `http://127.0.0.1:<port>/tenant/<n>`: one path per webhook, one host.
    pub fn url(&self, n: usize) -> String {
        format!("http://127.0.0.1:{}/tenant/{n}", self.port)
    }

    pub fn delivered(&self) -> usize {
        self.counts.delivered.lock().unwrap().len()
    }
}

impl Drop for CappedHost {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Serves requests on one connection until the client closes it.
async fn serve(mut socket: TcpStream, counts: &Counts, work: Duration) {
    while let Some((head, _)) = read_request(&mut socket).await {
        let id = header(&head, "webhook-id").unwrap_or_default();
        actix_rt::time::sleep(work).await;
        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
        if socket.write_all(answer).await.is_err() {
            return;
        }
        *counts.delivered.lock().unwrap().entry(id).or_insert(0) += 1;
    }
}
