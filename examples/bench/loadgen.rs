//! The ceiling: how many requests per second the sink itself answers, for the same body and
//! the same number of keep-alive connections (plain or TLS), driven by a built-in load
//! generator.

use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::sink::Sink;

/// The median of three measurements of [`rate`]: the sink's rate moves by ±10% between runs on
/// a shared machine, and one unlucky run should not decide the ratio.
/// With `tls`, the load generator connects with that client configuration (the sink must then
/// serve TLS).
pub async fn ceiling(
    sink: &Sink,
    connections: usize,
    body: Bytes,
    duration: Duration,
    tls: Option<Arc<rustls::ClientConfig>>,
) -> f64 {
    let mut rates = Vec::new();
    for _ in 0..3 {
        rates.push(rate(sink, connections, body.clone(), duration, tls.clone()).await);
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    rates[1]
}

/// Requests per second the sink answered over `duration` with `connections` keep-alive
/// connections each sending `body` back to back.
async fn rate(
    sink: &Sink,
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
    sink.tally.reset();
    let deadline = Instant::now() + duration;
    let started = Instant::now();
    let url = sink.url(0);
    let mut tasks = Vec::with_capacity(connections);
    for _ in 0..connections {
        let (client, url, body) = (client.clone(), url.clone(), body.clone());
        tasks.push(actix_rt::spawn(async move {
            while Instant::now() < deadline {
                let _ = client
                    .post(&url)
                    .insert_header(("content-type", "application/json"))
                    .send_body(body.clone())
                    .await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let answered = sink.tally.deliveries.load(Ordering::SeqCst);
    sink.tally.reset();
    answered as f64 / started.elapsed().as_secs_f64()
}
