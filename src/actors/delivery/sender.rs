//! One HTTP delivery attempt, through this thread's client ([`super::client`]).
//!
//! Redirects are never followed: a 3xx is a failed attempt like any other non-2xx. A transport
//! error is put in words by [`super::failure::describe`]. A URL with credentials is requested
//! without them, which go in an `Authorization: Basic` header instead (as WildDuck's axios
//! sends them; see [`crate::domain::WebhookUrl::basic_auth`]).

use std::sync::Arc;
use std::time::{Duration, Instant};

use awc::http::header;
use bytes::Bytes;

use super::backoff::parse_retry_after;
use super::client::handshake_timeout;
use super::failure::{describe, overloaded};
use crate::domain::{DeliveryId, Signers, Webhook};
use crate::security::Destinations;

/// How much of a response body is read (to keep the connection reusable) and kept.
const RESPONSE_READ_LIMIT: usize = 64 * 1024;
const RESPONSE_KEEP: usize = 1024;

const WEBHOOK_ID: header::HeaderName = header::HeaderName::from_static("webhook-id");
const WEBHOOK_TIMESTAMP: header::HeaderName = header::HeaderName::from_static("webhook-timestamp");
const WEBHOOK_SIGNATURE: header::HeaderName = header::HeaderName::from_static("webhook-signature");

/// How an attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// 2xx.
    Delivered,
    /// 410 Gone: the receiver wants no more deliveries.
    Gone,
    /// Anything else: non-2xx, timeout, connection or DNS error.
    Failed,
}

#[derive(Debug, Clone)]
pub struct Attempt {
    pub verdict: Verdict,
    pub status: Option<u16>,
    pub latency: Duration,
    /// What went wrong, for failed attempts.
    pub error: Option<String>,
    pub retry_after: Option<Duration>,
    /// The first KiB of the response body.
    pub response: Bytes,
    /// A sign the receiver is overloaded: 429, 503, a timeout, a refused or reset connection
    /// (`pacing` cuts back; the attempt may be spared, see `outcome::settle`).
    pub overloaded: bool,
}

/// One delivery to make.
pub struct Delivery {
    pub webhook: Arc<Webhook>,
    /// The webhook's URL, parsed once per webhook (None if awc cannot take it).
    pub uri: Option<awc::http::Uri>,
    pub signers: Arc<Signers>,
    pub id: DeliveryId,
    pub body: Bytes,
    pub timeout: Duration,
    pub destinations: Arc<Destinations>,
    /// When the delivery entered the window: the attempt's latency counts from here.
    pub started: Instant,
}

/// POSTs the delivery, signed; never panics, every failure is an [`Attempt`] with an error.
pub async fn post(client: awc::Client, delivery: Delivery) -> Attempt {
    let Delivery {
        webhook,
        uri,
        signers,
        id,
        body,
        timeout,
        destinations,
        started,
    } = delivery;
    if let Err(reason) = destinations.check_literal(webhook.url.url()) {
        return failed(started, format!("destination refused: {reason}"));
    }
    let Some(uri) = uri else {
        return failed(
            started,
            format!("the URL {} cannot be requested", webhook.url.redacted()),
        );
    };
    let now = crate::clock::now_ms();
    let timestamp = now / 1000;
    let signature = signers.signature(id.as_str(), timestamp, &body, now);
    let mut request = client
        .post(uri)
        .insert_header((header::CONTENT_TYPE, "application/json"))
        .insert_header((WEBHOOK_ID, id.as_str()))
        .insert_header((WEBHOOK_TIMESTAMP, header::HeaderValue::from(timestamp)))
        .insert_header((WEBHOOK_SIGNATURE, signature));
    if let Some(credentials) = webhook.url.basic_auth() {
        request = request.insert_header((header::AUTHORIZATION, credentials));
    }
    let exchange = async {
        let mut response = request.send_body(body).await.map_err(|e| {
            (
                describe(&e, webhook.url.url(), handshake_timeout(timeout)),
                overloaded(&e),
            )
        })?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(parse_retry_after);
        // A body we cannot read completely only costs the connection's reuse.
        let mut kept = response.body().limit(RESPONSE_READ_LIMIT).await.unwrap_or_default();
        kept.truncate(RESPONSE_KEEP);
        Ok::<_, (String, bool)>((status, retry_after, kept))
    };
    let outcome = match actix_rt::time::timeout(timeout, exchange).await {
        Ok(outcome) => outcome,
        Err(_) => Err((timed_out(timeout), true)),
    };
    let latency = started.elapsed();
    match outcome {
        Ok((status, retry_after, response)) => {
            let verdict = if status.is_success() {
                Verdict::Delivered
            } else if status == awc::http::StatusCode::GONE {
                Verdict::Gone
            } else {
                Verdict::Failed
            };
            let overloaded = matches!(status.as_u16(), 429 | 503);
            Attempt {
                verdict,
                status: Some(status.as_u16()),
                latency,
                error: (verdict != Verdict::Delivered).then(|| format!("HTTP {status}")),
                retry_after,
                response,
                overloaded,
            }
        }
        Err((error, overloaded)) => Attempt {
            overloaded,
            ..failed(started, error)
        },
    }
}

fn failed(started: Instant, error: String) -> Attempt {
    Attempt {
        verdict: Verdict::Failed,
        status: None,
        latency: started.elapsed(),
        error: Some(error),
        retry_after: None,
        response: Bytes::new(),
        overloaded: false,
    }
}

fn timed_out(timeout: Duration) -> String {
    format!("timed out after {} ms", timeout.as_millis())
}
