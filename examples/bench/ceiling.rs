//! The ceiling: the sink's own maximum request rate for the body a delivery carries and the
//! connections 10 webhooks use, measured with wrk (the honest figure, which the throughput
//! target divides by) and with the built-in awc generator (printed beside it). Without wrk the
//! awc figure stands in, flagged as not the honest ceiling.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;

use super::{loadgen, wrk};

pub struct Ceiling {
    /// wrk's median, or why there is none.
    pub wrk: Result<f64, String>,
    /// The built-in generator's median.
    pub awc: f64,
    pub connections: usize,
    pub seconds: u64,
}

impl Ceiling {
    /// Measures the sink at `url` with wrk, then with awc (over TLS with `tls` and an https `url`).
    pub async fn measure(
        url: &str,
        connections: usize,
        body: &Bytes,
        seconds: u64,
        tls: Option<Arc<rustls::ClientConfig>>,
    ) -> Ceiling {
        let duration = Duration::from_secs(seconds);
        let wrk = wrk::ceiling(url, connections, body, duration).await;
        let awc = loadgen::ceiling(url, connections, body.clone(), duration, tls).await;
        Ceiling {
            wrk,
            awc,
            connections,
            seconds,
        }
    }

    /// What ratios divide by: wrk's figure, or awc's without wrk.
    pub fn rate(&self) -> f64 {
        *self.wrk.as_ref().unwrap_or(&self.awc)
    }

    /// Whether [`Ceiling::rate`] is the real load generator's.
    pub fn honest(&self) -> bool {
        self.wrk.is_ok()
    }

    /// "98000 req/s (wrk -t1 -c160, median of 3 x 3 s); built-in awc generator: 45000 req/s".
    pub fn describe(&self) -> String {
        let awc = format!("built-in awc generator: {:.0} req/s", self.awc);
        match &self.wrk {
            Ok(rate) => format!(
                "{rate:.0} req/s (wrk -t{} -c{}, median of 3 x {} s); {awc}",
                wrk::THREADS,
                self.connections,
                self.seconds
            ),
            Err(why) => format!(
                "{:.0} req/s from the built-in awc generator ({} keep-alive connections, median of 3 x {} s) -- \
                 NOT the honest ceiling: {why}",
                self.awc, self.connections, self.seconds
            ),
        }
    }

    /// " (awc ceiling: not the honest ceiling)" when wrk was missing, for ratio lines.
    pub fn flag(&self) -> &'static str {
        if self.honest() {
            ""
        } else {
            " (awc's ceiling: not the honest ceiling)"
        }
    }
}
