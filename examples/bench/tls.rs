//! The TLS variant's parts, made at bench time with the tests' own helpers
//! (`tests/support/tls.rs`): a private CA, the sink's certificate for 127.0.0.1, the CA in a PEM
//! file the service trusts through `[delivery] ca_file`, and the load generator's client
//! configuration for the TLS ceiling.

use std::sync::Arc;

#[path = "../../tests/support/tls.rs"]
#[allow(dead_code)]
mod certificates;

use certificates::{ServerCert, TempFile, TestCa};

pub struct BenchTls {
    ca: TestCa,
    /// Deleted when the bench ends.
    ca_file: TempFile,
    sink: ServerCert,
}

impl BenchTls {
    pub fn new() -> BenchTls {
        let ca = TestCa::new("hookrouter bench CA");
        let ca_file = ca.file();
        let sink = ca.issue(&["127.0.0.1"]);
        BenchTls { ca, ca_file, sink }
    }

    /// What the sink serves.
    pub fn sink_config(&self) -> rustls::ServerConfig {
        self.sink.server_config()
    }

    /// The service's setting that trusts the CA.
    pub fn service_env(&self) -> (&'static str, String) {
        ("HOOKROUTER__DELIVERY__CA_FILE", self.ca_file.path_str())
    }

    /// The load generator's TLS configuration (trusts the CA, offers HTTP/1.1 like the service).
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        self.ca.client_config()
    }
}
