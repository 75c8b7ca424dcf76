//! How hookrouter reaches a Redis: the URL, with an ACL user and password when there is one
//! (`redis://user:password@host:6379`), and TLS for `rediss://` URLs.
//!
//! TLS always verifies the server's certificate chain and its name against the URL's host:
//! against the web roots (Mozilla's, compiled in, as for deliveries), or, when `[redis]
//! ca_file` names a PEM bundle, against the roots in that file instead (the redis crate takes
//! one root store; a managed Redis with a private CA needs only its CA). `[redis] cert_file`
//! and `key_file` add a client certificate for servers that require one. The files are read
//! when a client is made, at start-up, so a missing or unreadable one stops the start naming
//! the key.
//!
//! A Redis that refuses us for good — a wrong password, a certificate we do not trust, a name
//! that does not match — is told apart from one that is merely down ([`refusal`]): the start
//! stops with those words, and `/health` shows them.

use std::path::Path;

use redis::{ErrorKind, RedisError};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::CertificateDer;

use super::{StoreError, StoreResult};
use crate::config::RedisSettings;

/// A client for `url` with the TLS files of `settings` (used only by `rediss://` URLs).
pub(super) fn client(url: &str, settings: &RedisSettings) -> StoreResult<redis::Client> {
    let tls_files = !settings.ca_file.is_empty() || !settings.cert_file.is_empty();
    if !url.starts_with("rediss://") || !tls_files {
        return Ok(redis::Client::open(url)?);
    }
    let root_cert = match settings.ca_file.as_str() {
        "" => None,
        path => Some(read_certificates("redis.ca_file", path)?),
    };
    let client_tls = match (settings.cert_file.as_str(), settings.key_file.as_str()) {
        ("", _) | (_, "") => None,
        (cert, key) => Some(redis::ClientTlsConfig {
            client_cert: read_certificates("redis.cert_file", cert)?,
            client_key: read("redis.key_file", key)?,
        }),
    };
    let certificates = redis::TlsCertificates { client_tls, root_cert };
    redis::Client::build_with_tls(url, certificates)
        .map_err(|e| StoreError::Config(format!("the TLS files of [redis] cannot be used: {e}")))
}

/// The file at `path`, or an error naming `key`.
fn read(key: &str, path: &str) -> StoreResult<Vec<u8>> {
    std::fs::read(Path::new(path)).map_err(|e| StoreError::Config(format!("{key}: {path} cannot be read: {e}")))
}

/// The PEM file at `path`, checked to hold at least one valid certificate.
fn read_certificates(key: &str, path: &str) -> StoreResult<Vec<u8>> {
    let pem = read(key, path)?;
    let mut count = 0;
    for certificate in CertificateDer::pem_slice_iter(&pem) {
        certificate.map_err(|e| StoreError::Config(format!("{key}: {path} is not valid PEM: {e}")))?;
        count += 1;
    }
    if count == 0 {
        return Err(StoreError::Config(format!(
            "{key}: {path} holds no certificate: it must be PEM \"-----BEGIN CERTIFICATE-----\" blocks"
        )));
    }
    Ok(pem)
}

/// Why Redis refuses us for good, in words an operator can act on; None when it is not that
/// (down, loading, a bug).
pub fn refusal(error: &StoreError) -> Option<String> {
    let StoreError::Redis(error) = error else {
        return None;
    };
    if error.kind() == ErrorKind::AuthenticationFailed || matches!(error.code(), Some("WRONGPASS" | "NOAUTH")) {
        return Some(format!(
            "Redis refused the login ({error}): check the user and password in the URL"
        ));
    }
    tls_error(error).map(describe_tls)
}

/// The rustls error under a failed TLS connection: tokio-rustls passes it up inside an
/// `io::Error`, which the redis crate keeps in an `Arc` (its `source()`).
fn tls_error(error: &RedisError) -> Option<&rustls::Error> {
    type Shared = std::sync::Arc<dyn std::error::Error + Send + Sync>;
    let source = std::error::Error::source(error)?;
    let io = match source.downcast_ref::<Shared>() {
        Some(shared) => shared.downcast_ref::<std::io::Error>()?,
        None => source.downcast_ref::<std::io::Error>()?,
    };
    io.get_ref()?.downcast_ref::<rustls::Error>()
}

fn describe_tls(error: &rustls::Error) -> String {
    use rustls::CertificateError as Cert;
    let why = match error {
        rustls::Error::InvalidCertificate(Cert::UnknownIssuer | Cert::BadSignature) => {
            "Redis's TLS certificate is not signed by a CA hookrouter trusts: set [redis] ca_file to the CA that signed it"
        }
        rustls::Error::InvalidCertificate(Cert::NotValidForName | Cert::NotValidForNameContext { .. }) => {
            "Redis's TLS certificate is not valid for the host name in the URL: use a name the certificate holds"
        }
        rustls::Error::InvalidCertificate(Cert::Expired | Cert::ExpiredContext { .. }) => {
            "Redis's TLS certificate has expired"
        }
        rustls::Error::InvalidCertificate(_) => "Redis's TLS certificate was refused",
        rustls::Error::AlertReceived(_) => {
            "Redis refused the TLS handshake: does it require a client certificate ([redis] cert_file and key_file)?"
        }
        _ => "the TLS handshake with Redis failed",
    };
    format!("{why} ({error})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tls_failure(error: rustls::Error) -> StoreError {
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, error);
        StoreError::Redis(RedisError::from(io))
    }

    #[test]
    fn refusals_are_put_in_words() {
        let unknown = tls_failure(rustls::Error::InvalidCertificate(
            rustls::CertificateError::UnknownIssuer,
        ));
        let words = refusal(&unknown).expect("a refusal");
        assert!(
            words.starts_with("Redis's TLS certificate is not signed by a CA hookrouter trusts"),
            "{words}"
        );
        let name = tls_failure(rustls::Error::InvalidCertificate(
            rustls::CertificateError::NotValidForName,
        ));
        let words = refusal(&name).expect("a refusal");
        assert!(words.contains("not valid for the host name in the URL"), "{words}");
        let login = StoreError::Redis(RedisError::from((
            ErrorKind::AuthenticationFailed,
            "Password authentication failed",
        )));
        assert!(refusal(&login)
            .expect("a refusal")
            .starts_with("Redis refused the login"));
    }

    #[test]
    fn being_down_is_no_refusal() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        assert_eq!(refusal(&StoreError::Redis(refused.into())), None);
        assert_eq!(refusal(&StoreError::Timeout(10)), None);
    }
}
