//! The built-in load generator (awc): how many requests per second a sink answers, for the
//! same body and the same number of keep-alive connections (plain or TLS). Kept beside wrk's
//! figure ([`super::ceiling`]): it shares a process and a runtime with the harness, so it
//! measures less than the sink can answer.

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

/// The median of three measurements of [`rate`]: the sink's rate moves by ±10% between runs on
/// a shared machine, and one unlucky run should not decide the ratio.
/// With `tls`, the load generator connects with that client configuration (the sink must then
/// serve TLS).
pub async fn ceiling(
    url: &str,
    connections: usize,
    body: Bytes,
    duration: Duration,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> f64 {
    let mut rates = Vec::new();
    for _ in 0..3 {
        rates.push(rate(url, connections, body.clone(), duration, tls.clone()).await);
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    rates[1]
}

/// Requests per second answered with a success status over `duration` with `connections`
/// keep-alive connections each sending `body` back to back to `url`.
async fn rate(
    url: &str,
    connections: usize,
    body: Bytes,
    duration: Duration,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> f64 {
    let mut connector = awc::Connector::new().limit(connections);
    if let Some(config) = tls {
        connector = connector.rustls_0_23(config);
    }
    let client = Rc::new(
        awc::Client::builder()
            .connector(connector)
            .timeout(Duration::from_secs(10))
            .finish(),
    );
    let answered = Rc::new(Cell::new(0u64));
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (client, url, body, answered) = (client.clone(), url.to_string(), body.clone(), answered.clone());
        tasks.push(actix_rt::spawn(async move {
            while Instant::now() < deadline {
                let sent = client
                    .post(&url)
                    .insert_header(("content-type", "application/json"))
                    .send_body(body.clone())
                    .await;
                if sent.is_ok_and(|response| response.status().is_success()) {
                    answered.set(answered.get() + 1);
                }
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    answered.get() as f64 / started.elapsed().as_secs_f64()
}
