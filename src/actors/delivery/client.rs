//! The HTTP client deliveries go out through, one per delivery thread.
//!
//! Each delivery arbiter (thread) has one `awc::Client` (it is `!Send`), shared by the
//! delivery actors on that thread so they share its keep-alive connection pool, over http and
//! https alike: a connection, and so its TLS handshake, serves delivery after delivery. The
//! pool has no global connection cap: each webhook is bounded by its own `max_in_flight`, so
//! endpoints that hang cannot starve the others of connections.
//!
//! Host names are resolved by the SSRF guard's resolver, and connections go only to the
//! addresses it let through. TLS uses the one configuration built at start-up
//! ([`crate::security::tls`]): web roots plus `[delivery] ca_file`, HTTP/1.1.
//!
//! Connecting and the TLS handshake have separate time limits, each well inside the attempt's
//! timeout, so an attempt that fails there says which of the two it was.

use std::cell::OnceCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_service::Service;
use actix_tls::connect::{ConnectError, ConnectInfo, Connection, ConnectorService, Resolver};
use awc::http::{header, Uri};
use tokio::net::TcpStream;

use super::DeliveryConfig;
use crate::security::destinations::GuardedResolver;

/// The longest wait for a TCP connection or a TLS handshake, whatever the attempt's timeout.
const STEP_CAP: Duration = Duration::from_secs(5);

thread_local! {
    static CLIENT: OnceCell<awc::Client> = const { OnceCell::new() };
}

/// This thread's delivery client, built on first use.
pub fn client(config: &DeliveryConfig) -> awc::Client {
    CLIENT.with(|cell| cell.get_or_init(|| build(config)).clone())
}

fn build(config: &DeliveryConfig) -> awc::Client {
    let settings = &config.settings;
    let resolver = Resolver::custom(GuardedResolver(config.destinations.clone()));
    let connect = connect_timeout(settings.timeout());
    let tcp = TimedConnect {
        inner: actix_tls::connect::Connector::new(resolver).service(),
        timeout: connect,
    };
    let connector = awc::Connector::new()
        .connector(tcp)
        // `TimedConnect` fires first; awc's own connect timeout only backs it up. Its timeout
        // error is then the handshake's alone (see `failure::describe`).
        .timeout(connect + Duration::from_secs(1))
        .handshake_timeout(handshake_timeout(settings.timeout()))
        .rustls_0_23(config.tls.clone())
        .limit(0)
        .conn_keep_alive(Duration::from_secs(30));
    // One timer per attempt: ours, around the whole exchange (see `sender::post`).
    awc::Client::builder()
        .connector(connector)
        .disable_redirects()
        .disable_timeout()
        .no_default_headers()
        .add_default_header((header::USER_AGENT, settings.user_agent.as_str()))
        .finish()
}

/// How long resolving and connecting may take, for an attempt timeout of `attempt`.
fn connect_timeout(attempt: Duration) -> Duration {
    attempt.min(STEP_CAP)
}

/// How long a TLS handshake may take once connected: half the attempt's timeout (so a stalled
/// handshake is reported as one, not as the attempt's timeout), at most [`STEP_CAP`].
pub fn handshake_timeout(attempt: Duration) -> Duration {
    (attempt / 2).min(STEP_CAP)
}

/// Resolving and connecting with a time limit of its own, whose error says so: awc reports
/// its connect timeout and its handshake timeout with the same error, and an operator needs to
/// know which step hung.
#[derive(Clone)]
struct TimedConnect {
    inner: ConnectorService,
    timeout: Duration,
}

impl Service<ConnectInfo<Uri>> for TimedConnect {
    type Response = Connection<Uri, TcpStream>;
    type Error = ConnectError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, ConnectError>>>>;

    fn poll_ready(&self, cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
        Service::<ConnectInfo<Uri>>::poll_ready(&self.inner, cx)
    }

    fn call(&self, request: ConnectInfo<Uri>) -> Self::Future {
        let connecting = self.inner.call(request);
        let timeout = self.timeout;
        Box::pin(async move {
            match actix_rt::time::timeout(timeout, connecting).await {
                Ok(result) => result,
                Err(_) => Err(ConnectError::Io(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("timed out after {} ms", timeout.as_millis()),
                ))),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_step_gets_its_share_of_the_attempt() {
        let secs = Duration::from_secs;
        assert_eq!(connect_timeout(secs(10)), secs(5));
        assert_eq!(handshake_timeout(secs(10)), secs(5));
        assert_eq!(connect_timeout(secs(2)), secs(2));
        assert_eq!(handshake_timeout(secs(2)), secs(1));
        assert_eq!(handshake_timeout(secs(60)), secs(5));
    }
}
