//! What a failed exchange says: the text of a transport error as it reaches the attempt log,
//! health's `lastFailure`, dead letters and the logs.
//!
//! awc's own messages are kept where they read well ("Failed to connect to host: Connection
//! refused"). TLS failures are put in words here, because rustls reports them as enums whose
//! debug dumps (`Other(OtherError(CaUsedAsEndEntity))`) tell an operator nothing: which
//! certificate check failed, for which host, and what to do about a private CA.

use std::time::Duration;

use awc::error::{ConnectError, SendRequestError};
use rustls::{AlertDescription, CertificateError};

use crate::clock::iso8601;

/// The words for `error`, met while delivering to `url`; `handshake` is the TLS handshake's
/// time limit ([`super::client::handshake_timeout`]).
pub fn describe(error: &SendRequestError, url: &url::Url, handshake: Duration) -> String {
    let host = url.host_str().unwrap_or("the receiver");
    let tls = url.scheme() == "https";
    let io = match error {
        // Connecting has a timeout of its own with its own message (`client::TimedConnect`),
        // so awc's timeout error is the handshake's.
        SendRequestError::Connect(ConnectError::Timeout) if tls => {
            return format!("TLS handshake with {host} timed out after {} ms", handshake.as_millis())
        }
        SendRequestError::Connect(ConnectError::Io(io)) | SendRequestError::Send(io) => Some(io),
        _ => None,
    };
    if let Some(io) = io {
        if let Some(rustls_error) = io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
            return format!("TLS handshake with {host} failed: {}", tls_words(rustls_error, host));
        }
        if tls && matches!(error, SendRequestError::Connect(_)) && io.kind() == std::io::ErrorKind::UnexpectedEof {
            return format!("TLS handshake with {host} failed: the server closed the connection");
        }
    }
    error.to_string()
}

/// Whether a transport error is a sign the receiver is overloaded (its listen queue full, its
/// worker limit reached): a refused or reset connection, a connection its pool dropped. TLS,
/// DNS and name errors are not: they say nothing about load.
pub fn overloaded(error: &SendRequestError) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionRefused, ConnectionReset, UnexpectedEof};
    let io = match error {
        SendRequestError::Connect(ConnectError::Disconnected) => return true,
        SendRequestError::Connect(ConnectError::Io(io)) | SendRequestError::Send(io) => io,
        _ => return false,
    };
    io.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()).is_none()
        && matches!(
            io.kind(),
            ConnectionRefused | ConnectionReset | ConnectionAborted | BrokenPipe | UnexpectedEof
        )
}

/// One TLS error in words (without the "TLS handshake with … failed" that frames it).
fn tls_words(error: &rustls::Error, host: &str) -> String {
    use rustls::Error as E;
    match error {
        E::InvalidCertificate(certificate) => certificate_words(certificate, host),
        E::AlertReceived(AlertDescription::CertificateRequired) => {
            "the server requires a client certificate, which hookrouter does not send".into()
        }
        E::AlertReceived(AlertDescription::UnrecognisedName) => {
            format!("the server has no certificate for the name {host}")
        }
        E::AlertReceived(alert) => format!("the server refused it with the alert {alert:?}"),
        E::InvalidMessage(_) | E::InappropriateMessage { .. } | E::InappropriateHandshakeMessage { .. } => {
            "the server did not answer in TLS (if it serves plain HTTP, use an http:// URL)".into()
        }
        E::PeerIncompatible(why) => format!("the server's TLS is incompatible with hookrouter's ({why:?})"),
        E::NoCertificatesPresented => "the server presented no certificate".into(),
        other => other.to_string(),
    }
}

/// What was wrong with the server's certificate.
fn certificate_words(error: &CertificateError, host: &str) -> String {
    use CertificateError as C;
    match error {
        C::UnknownIssuer => {
            "its certificate is signed by an unknown issuer (not in the web roots or [delivery] ca_file)".into()
        }
        C::ExpiredContext { not_after, .. } => {
            format!("its certificate expired at {}", iso8601(not_after.as_secs() * 1000))
        }
        C::Expired => "its certificate has expired".into(),
        C::NotValidYetContext { not_before, .. } => format!(
            "its certificate is not valid before {} (is a clock wrong?)",
            iso8601(not_before.as_secs() * 1000)
        ),
        C::NotValidYet => "its certificate is not valid yet (is a clock wrong?)".into(),
        C::NotValidForNameContext { expected, presented } => {
            let names: Vec<&str> = presented.iter().map(|name| bare_name(name)).collect();
            let names = if names.is_empty() {
                "no name".to_string()
            } else {
                names.join(", ")
            };
            format!("its certificate is for {names}, not for {}", expected.to_str())
        }
        C::NotValidForName => format!("its certificate is not valid for {host}"),
        C::Revoked => "its certificate has been revoked".into(),
        C::BadSignature => "its certificate's signature does not verify".into(),
        C::BadEncoding => "its certificate is malformed".into(),
        C::InvalidPurpose | C::InvalidPurposeContext { .. } => {
            "its certificate is not meant for a TLS server (extended key usage)".into()
        }
        C::UnsupportedSignatureAlgorithmContext { .. } | C::UnsupportedSignatureAlgorithmForPublicKeyContext { .. } => {
            "its certificate is signed with an algorithm hookrouter does not support".into()
        }
        C::Other(other) => match other.0.downcast_ref::<webpki::Error>() {
            Some(webpki::Error::CaUsedAsEndEntity) => "it presented a CA certificate as its own; it must serve a \
                 certificate issued by the CA (and [delivery] ca_file must hold the CA if it is private)"
                .into(),
            Some(webpki::Error::EndEntityUsedAsCa) => {
                "its certificate chain uses a server certificate as an issuer".into()
            }
            Some(webpki::Error::CertDistrusted) => "its certificate's issuer is no longer trusted".into(),
            _ => format!("its certificate was refused: {other}"),
        },
        other => format!("its certificate was refused: {other}"),
    }
}

/// A name a certificate presents, as webpki writes it (`DnsName("a.example")`,
/// `IpAddress(10.0.0.1)`), without the wrapping.
fn bare_name(presented: &str) -> &str {
    presented
        .strip_prefix("DnsName(\"")
        .and_then(|rest| rest.strip_suffix("\")"))
        .or_else(|| {
            presented
                .strip_prefix("IpAddress(")
                .and_then(|rest| rest.strip_suffix(')'))
        })
        .unwrap_or(presented)
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::Arc;

    use rustls::pki_types::{ServerName, UnixTime};
    use rustls::OtherError;

    use super::*;

    const HANDSHAKE: Duration = Duration::from_millis(1500);

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    /// A handshake failure as awc reports it: tokio-rustls wraps rustls's error in an io error.
    fn handshake_failed(error: rustls::Error) -> SendRequestError {
        SendRequestError::Connect(ConnectError::Io(io::Error::new(io::ErrorKind::InvalidData, error)))
    }

    fn certificate(error: CertificateError) -> String {
        describe(
            &handshake_failed(rustls::Error::InvalidCertificate(error)),
            &url("https://hooks.example.com/in"),
            HANDSHAKE,
        )
    }

    #[test]
    fn an_unknown_issuer_points_at_ca_file() {
        assert_eq!(
            certificate(CertificateError::UnknownIssuer),
            "TLS handshake with hooks.example.com failed: its certificate is signed by an unknown issuer \
             (not in the web roots or [delivery] ca_file)"
        );
    }

    #[test]
    fn an_expired_certificate_says_when_it_expired() {
        let error = CertificateError::ExpiredContext {
            time: UnixTime::since_unix_epoch(Duration::from_secs(1_800_000_000)),
            not_after: UnixTime::since_unix_epoch(Duration::from_secs(1_764_181_570)),
        };
        assert_eq!(
            certificate(error),
            "TLS handshake with hooks.example.com failed: its certificate expired at 2025-11-26T18:26:10.000Z"
        );
        assert_eq!(
            certificate(CertificateError::Expired),
            "TLS handshake with hooks.example.com failed: its certificate has expired"
        );
    }

    #[test]
    fn a_name_mismatch_names_both_sides() {
        let error = CertificateError::NotValidForNameContext {
            expected: ServerName::try_from("hooks.example.com").unwrap(),
            presented: vec![
                r#"DnsName("other.example.net")"#.into(),
                r#"DnsName("*.other.example.net")"#.into(),
                "IpAddress(192.0.2.7)".into(),
                "DirectoryName".into(),
            ],
        };
        assert_eq!(
            certificate(error),
            "TLS handshake with hooks.example.com failed: its certificate is for other.example.net, \
             *.other.example.net, 192.0.2.7, DirectoryName, not for hooks.example.com"
        );
        assert_eq!(
            certificate(CertificateError::NotValidForName),
            "TLS handshake with hooks.example.com failed: its certificate is not valid for hooks.example.com"
        );
    }

    #[test]
    fn a_ca_certificate_served_as_the_servers_own_is_explained() {
        let error = CertificateError::Other(OtherError(Arc::new(webpki::Error::CaUsedAsEndEntity)));
        let words = certificate(error);
        assert!(
            words.starts_with("TLS handshake with hooks.example.com failed: it presented a CA certificate as its own;"),
            "{words}"
        );
        assert!(!words.contains("OtherError"), "{words}");
    }

    #[test]
    fn a_stalled_handshake_is_a_handshake_timeout() {
        let words = describe(
            &SendRequestError::Connect(ConnectError::Timeout),
            &url("https://10.1.2.3:8443/"),
            HANDSHAKE,
        );
        assert_eq!(words, "TLS handshake with 10.1.2.3 timed out after 1500 ms");
    }

    #[test]
    fn a_plain_http_server_behind_an_https_url_is_recognised() {
        let error = rustls::Error::InvalidMessage(rustls::InvalidMessage::InvalidContentType);
        assert_eq!(
            describe(&handshake_failed(error), &url("https://[::1]:9000/"), HANDSHAKE),
            "TLS handshake with [::1] failed: the server did not answer in TLS (if it serves plain HTTP, use an \
             http:// URL)"
        );
    }

    #[test]
    fn alerts_from_the_server_are_named() {
        let words = |alert| {
            describe(
                &handshake_failed(rustls::Error::AlertReceived(alert)),
                &url("https://a.example/"),
                HANDSHAKE,
            )
        };
        assert_eq!(
            words(AlertDescription::CertificateRequired),
            "TLS handshake with a.example failed: the server requires a client certificate, which hookrouter does \
             not send"
        );
        assert_eq!(
            words(AlertDescription::HandshakeFailure),
            "TLS handshake with a.example failed: the server refused it with the alert HandshakeFailure"
        );
    }

    #[test]
    fn a_connection_closed_during_the_handshake_says_so() {
        let error = SendRequestError::Connect(ConnectError::Io(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            "tls handshake eof",
        )));
        assert_eq!(
            describe(&error, &url("https://a.example/"), HANDSHAKE),
            "TLS handshake with a.example failed: the server closed the connection"
        );
    }

    #[test]
    fn other_errors_keep_awcs_words() {
        let refused = SendRequestError::Connect(ConnectError::Io(io::Error::from(io::ErrorKind::ConnectionRefused)));
        assert_eq!(
            describe(&refused, &url("https://a.example/"), HANDSHAKE),
            "Failed to connect to host: connection refused"
        );
        let timeout = SendRequestError::Connect(ConnectError::Timeout);
        assert_eq!(
            describe(&timeout, &url("http://a.example/"), HANDSHAKE),
            "Failed to connect to host: Timeout while establishing connection"
        );
    }
}
