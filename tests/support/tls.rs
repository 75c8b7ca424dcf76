//! TLS for the tests, made at test time: a private CA ([`TestCa`], with rcgen), server
//! certificates it issues for chosen names and validity ([`ServerCert`]), the rustls
//! configuration an HTTPS receiver serves them with, and the PEM files hookrouter's
//! `[delivery] ca_file` and the Python receiver read ([`TempFile`], deleted when dropped).
//!
//! The benchmark (`examples/bench`) uses this module too, for its TLS sink.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use time::OffsetDateTime;

/// A certificate authority that exists for one test.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl TestCa {
    /// A CA named `name`; it also carries `localhost` and `127.0.0.1` as names, so that when it
    /// is served as a server's own certificate the only thing wrong is that it is a CA.
    pub fn new(name: &str) -> TestCa {
        let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// The CA certificate in a PEM file: what `[delivery] ca_file` names.
    pub fn file(&self) -> TempFile {
        TempFile::with(self.pem().as_bytes(), "ca.pem")
    }

    /// A server certificate for `names` (DNS names or IP addresses), valid from a day ago for
    /// a year.
    pub fn issue(&self, names: &[&str]) -> ServerCert {
        let now = OffsetDateTime::now_utc();
        self.issue_valid(names, now - time::Duration::days(1), now + time::Duration::days(365))
    }

    /// A server certificate for `names` valid from `not_before` to `not_after` (whole seconds).
    pub fn issue_valid(&self, names: &[&str], not_before: OffsetDateTime, not_after: OffsetDateTime) -> ServerCert {
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).unwrap();
        params.distinguished_name.push(DnType::CommonName, names[0].as_str());
        params.not_before = not_before;
        params.not_after = not_after;
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let certificate = params.signed_by(&key, &self.issuer).unwrap();
        ServerCert {
            chain: vec![certificate.der().clone()],
            key_der: key.serialize_der(),
            cert_pem: certificate.pem(),
            key_pem: key.serialize_pem(),
        }
    }

    /// The CA's own certificate and key, as a careless server would present them.
    pub fn as_server_cert(&self) -> ServerCert {
        ServerCert {
            chain: vec![self.issuer.der().clone()],
            key_der: self.issuer.key().serialize_der(),
            cert_pem: self.pem(),
            key_pem: self.issuer.key().serialize_pem(),
        }
    }
}

/// A server's certificate (with its chain) and private key.
pub struct ServerCert {
    chain: Vec<CertificateDer<'static>>,
    key_der: Vec<u8>,
    cert_pem: String,
    key_pem: String,
}

impl ServerCert {
    /// A rustls server configuration presenting this certificate.
    pub fn server_config(&self) -> rustls::ServerConfig {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.key_der.clone()));
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(self.chain.clone(), key)
            .unwrap()
    }

    /// The certificate and the key as PEM files (for servers that read files).
    pub fn files(&self) -> (TempFile, TempFile) {
        (
            TempFile::with(self.cert_pem.as_bytes(), "cert.pem"),
            TempFile::with(self.key_pem.as_bytes(), "key.pem"),
        )
    }

    /// The private key, PEM (a file of it holds no certificate).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }
}

/// An awc client that trusts `ca` (and nothing else), for tests that talk to an HTTPS
/// receiver themselves.
pub fn client_trusting(ca: &TestCa) -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().rustls_0_23(ca.client_config()))
        .timeout(Duration::from_secs(10))
        .finish()
}

impl TestCa {
    /// A rustls client configuration trusting this CA alone, offering HTTP/1.1 (what
    /// hookrouter's deliveries offer). Also installs the process's default crypto provider,
    /// which awc's `Connector::new` needs.
    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.issuer.der().clone()).unwrap();
        let mut config =
            rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_root_certificates(roots)
                .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// A file in the system's temporary directory, deleted when dropped.
pub struct TempFile(PathBuf);

impl TempFile {
    pub fn with(contents: &[u8], suffix: &str) -> TempFile {
        let path = std::env::temp_dir().join(format!("hookrouter-test-{:016x}-{suffix}", rand::random::<u64>()));
        std::fs::write(&path, contents).expect("write a temporary file");
        TempFile(path)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    pub fn path_str(&self) -> String {
        self.0.to_str().expect("a UTF-8 temporary path").to_string()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}
