//! TLS trust for deliveries: which receivers' certificates hookrouter believes.
//!
//! Deliveries to `https://` URLs verify the receiver's certificate chain and name, always,
//! against the web roots (Mozilla's root programme, compiled in through webpki-roots, as a
//! browser trusts them) plus the certificates in `[delivery] ca_file`, for receivers behind a
//! private CA. There is deliberately no switch to turn verification off: a webhook carries
//! signed user data, and an operator with an internal receiver trusts its CA instead.
//!
//! The file is read once, at start-up, into one [`ClientConfig`] that every delivery thread's
//! client shares; a missing or unreadable file, or one without a certificate, stops the start
//! with the key and the path.
//!
//! Only HTTP/1.1 is offered (ALPN `http/1.1`), as over plain http. awc's connection pool hands
//! every request a connection of its own whatever the protocol, so HTTP/2 would multiplex
//! nothing and only add its framing; and the pool checks an idle connection is still alive
//! before reusing it for HTTP/1 only, so a kept-alive HTTP/2 connection the receiver had closed
//! would cost a failed delivery.

use std::path::Path;
use std::sync::Arc;

use rustls::{ClientConfig, RootCertStore};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

/// The TLS configuration of every delivery: web roots plus `ca_file` ("" = none), HTTP/1.1.
pub fn delivery_client_config(ca_file: &str) -> anyhow::Result<Arc<ClientConfig>> {
    let mut roots = actix_tls::connect::rustls_0_23::webpki_roots_cert_store();
    let web_roots = roots.len();
    if !ca_file.is_empty() {
        let added = add_ca_file(&mut roots, Path::new(ca_file))?;
        tracing::info!(
            ca_file,
            certificates = added,
            web_roots,
            "deliveries trust [delivery] ca_file besides the web roots"
        );
    }
    // The provider is named here rather than taken from the process default, so this
    // configuration never depends on what else installed one.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("the TLS configuration of deliveries cannot be built: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// Adds every certificate of the PEM bundle at `path` as a trusted root; how many.
fn add_ca_file(roots: &mut RootCertStore, path: &Path) -> anyhow::Result<usize> {
    let refuse = |why: String| anyhow::anyhow!("delivery.ca_file: {} {why}", path.display());
    let pem = std::fs::read(path).map_err(|e| refuse(format!("cannot be read: {e}")))?;
    let mut added = 0;
    for (n, certificate) in CertificateDer::pem_slice_iter(&pem).enumerate() {
        let certificate = certificate.map_err(|e| refuse(format!("is not valid PEM: {e}")))?;
        roots.add(certificate).map_err(|e| {
            refuse(format!(
                "holds a certificate that cannot be a trusted root (certificate {} of the file): {e}",
                n + 1
            ))
        })?;
        added += 1;
    }
    if added == 0 {
        return Err(refuse(
            "holds no certificate: it must be a PEM bundle of \"-----BEGIN CERTIFICATE-----\" blocks".into(),
        ));
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A file under the system's temporary directory, deleted when dropped.
    struct TempFile(std::path::PathBuf);

    impl TempFile {
        fn with(contents: &[u8]) -> TempFile {
            let path = std::env::temp_dir().join(format!("hookrouter-ca-{:016x}.pem", rand::random::<u64>()));
            std::fs::write(&path, contents).unwrap();
            TempFile(path)
        }

        fn path(&self) -> &str {
            self.0.to_str().unwrap()
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    #[test]
    fn without_a_ca_file_the_web_roots_are_trusted_and_only_http_1_1_is_offered() {
        let config = delivery_client_config("").unwrap();
        assert_eq!(config.alpn_protocols, [b"http/1.1".to_vec()]);
    }

    #[test]
    fn every_certificate_of_a_bundle_is_trusted_and_other_blocks_are_skipped() {
        let ca = |name: &str| {
            let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
            params.distinguished_name.push(rcgen::DnType::CommonName, name);
            params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            let key = rcgen::KeyPair::generate().unwrap();
            (params.self_signed(&key).unwrap().pem(), key.serialize_pem())
        };
        let (first, first_key) = ca("first private CA");
        let (second, _) = ca("second private CA");
        let file = TempFile::with(format!("# internal roots\n{first}{first_key}{second}").as_bytes());
        let mut roots = RootCertStore::empty();
        assert_eq!(add_ca_file(&mut roots, Path::new(file.path())).unwrap(), 2);
        assert_eq!(roots.len(), 2);
        let web_roots = actix_tls::connect::rustls_0_23::webpki_roots_cert_store().len();
        assert!(web_roots > 100, "the web roots are built in: {web_roots}");
        delivery_client_config(file.path()).expect("a bundle of two CAs is accepted");
    }

    #[test]
    fn a_missing_file_names_the_key_and_the_path() {
        let error = delivery_client_config("/nonexistent/ca.pem").unwrap_err().to_string();
        assert!(
            error.starts_with("delivery.ca_file: /nonexistent/ca.pem cannot be read: No such file"),
            "{error}"
        );
    }

    #[test]
    fn a_file_without_a_certificate_names_the_key_and_the_path() {
        let file =
            TempFile::with(b"-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIB4g\n-----END PRIVATE KEY-----\n");
        let error = delivery_client_config(file.path()).unwrap_err().to_string();
        assert_eq!(
            error,
            format!(
                "delivery.ca_file: {} holds no certificate: it must be a PEM bundle of \"-----BEGIN CERTIFICATE-----\" blocks",
                file.path()
            )
        );
    }

    #[test]
    fn a_certificate_block_that_is_not_a_certificate_is_refused() {
        let file = TempFile::with(b"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n");
        let error = delivery_client_config(file.path()).unwrap_err().to_string();
        assert!(error.starts_with("delivery.ca_file: "), "{error}");
        assert!(error.contains("certificate 1 of the file"), "{error}");
    }
}
