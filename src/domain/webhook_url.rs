//! A webhook's destination: an absolute http(s) URL with a host, at most 2048 characters.
//!
//! The URL is kept as the client wrote it, as WildDuck keeps it, so a client comparing the
//! URLs it listed with the ones it holds finds them equal. It may carry credentials
//! (`https://user:pass@host/hook`): deliveries send them as `Authorization: Basic`, exactly as
//! WildDuck's worker (axios) does ([`WebhookUrl::basic_auth`]), to [`WebhookUrl::target`], the
//! URL without them.
//!
//! Receivers often take a secret in the URL: credentials, a query value (`?key=…`), or a path
//! segment such as Slack's `/services/T…/B…/<secret>`. The API shows the URL as stored to
//! callers allowed to read the webhook; logs, the dashboard, errors and the attempt log show
//! [`WebhookUrl::redacted`], and its `Debug` form is the redacted one too.

use std::fmt;

use base64::Engine;

pub const MAX_URL_LEN: usize = 2048;

#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    /// As the client wrote it: what the API shows and what is stored.
    text: Box<str>,
    /// Parsed once: where deliveries go.
    url: url::Url,
}

impl WebhookUrl {
    /// Parses a URL or says which rule it broke.
    pub fn parse(text: &str) -> Result<WebhookUrl, String> {
        if text.is_empty() {
            return Err("must not be empty".into());
        }
        if text.len() > MAX_URL_LEN {
            return Err(format!("must be at most {MAX_URL_LEN} characters"));
        }
        check_uri_characters(text)?;
        let url = url::Url::parse(text).map_err(|e| format!("must be a valid URL ({e})"))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err("must use http or https".into());
        }
        if url.host().is_none() {
            return Err("must have a host".into());
        }
        Ok(WebhookUrl { text: text.into(), url })
    }

    /// The URL as stored.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// Where deliveries are sent: the URL without its credentials.
    pub fn target(&self) -> String {
        let mut url = self.url.clone();
        // Clearing credentials cannot fail on an http(s) URL with a host.
        let _ = url.set_username("");
        let _ = url.set_password(None);
        url.into()
    }

    /// The `Authorization` header for a URL with a user name: `Basic` and the base64 of
    /// `user:password` as they appear in the URL (percent-encoded as written), which is what
    /// axios, WildDuck's HTTP client, sends. None without a user name (axios sends nothing
    /// for `https://:password@host` either).
    pub fn basic_auth(&self) -> Option<String> {
        let user = self.url.username();
        if user.is_empty() {
            return None;
        }
        let pair = format!("{user}:{}", self.url.password().unwrap_or_default());
        Some(format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        ))
    }

    /// The URL with its credentials, every query value, the fragment, and each path segment
    /// that looks like a secret (see [`looks_secret`]) replaced by `***`:
    /// `https://***@x/hook?key=***&v=***`.
    pub fn redacted(&self) -> String {
        let url = &self.url;
        let mut shown = format!("{}://", url.scheme());
        if !url.username().is_empty() || url.password().is_some() {
            shown.push_str("***@");
        }
        shown.push_str(url.host_str().unwrap_or_default());
        if let Some(port) = url.port() {
            shown.push_str(&format!(":{port}"));
        }
        let path = url
            .path()
            .split('/')
            .map(|segment| if looks_secret(segment) { "***" } else { segment })
            .collect::<Vec<_>>()
            .join("/");
        shown.push_str(&path);
        if url.query().is_some() {
            let keys: Vec<String> = url.query_pairs().map(|(key, _)| format!("{key}=***")).collect();
            shown.push('?');
            shown.push_str(&keys.join("&"));
        }
        if url.fragment().is_some() {
            shown.push_str("#***");
        }
        shown
    }
}

/// Only the characters a URI may hold (RFC 3986), as WildDuck's `Joi.string().uri()` demands:
/// no spaces, controls, non-ASCII or `"<>\^`{|}`, and `%` only before two hex digits.
fn check_uri_characters(text: &str) -> Result<(), String> {
    let bytes = text.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        let allowed = b.is_ascii_graphic() && !br#""<>\^`{|}"#.contains(&b);
        if !allowed {
            let shown = text[i..].chars().next().unwrap_or(' ');
            return Err(format!(
                "must be a valid URI: {shown:?} at character {} is not allowed (percent-encode it)",
                text[..i].chars().count() + 1
            ));
        }
        if b == b'%'
            && !(bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit))
        {
            return Err("must be a valid URI: '%' must start a percent-encoded byte like %20".into());
        }
    }
    Ok(())
}

/// A path segment that is probably a credential: at least 16 characters of the kinds tokens
/// are made of (letters, digits, `-`, `_`, `.`, `~`, `%`), mixing letters and digits.
/// Words, dates and numeric ids stay readable.
fn looks_secret(segment: &str) -> bool {
    segment.len() >= 16
        && segment
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.~%".contains(&b))
        && segment.bytes().any(|b| b.is_ascii_digit())
        && segment.bytes().any(|b| b.is_ascii_alphabetic())
}

/// The URL as stored, credentials included: for the API's answers and Redis only, never logs.
impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_http_and_https() {
        for ok in [
            "http://127.0.0.1:8080/hook",
            "https://example.com/a?b=c",
            "http://[::1]:9/x",
        ] {
            assert!(WebhookUrl::parse(ok).is_ok(), "{ok}");
        }
    }

    #[test]
    fn redaction_hides_query_values_and_secret_looking_path_segments() {
        let redact = |text: &str| WebhookUrl::parse(text).unwrap().redacted();
        assert_eq!(
            redact("https://example.com/hook?key=s3cr3t-value&v=2"),
            "https://example.com/hook?key=***&v=***"
        );
        assert_eq!(
            redact("https://hooks.slack.com/services/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"),
            "https://hooks.slack.com/services/T0AB12CDE/B0CD34EFG/***"
        );
        assert_eq!(
            redact("https://discord.com/api/webhooks/123456789012345678/Zx9_abcDEF-123ghiJKL456mnoPQR789stu"),
            "https://discord.com/api/webhooks/123456789012345678/***"
        );
        assert_eq!(
            redact("http://[::1]:8080/hooks/mail-events#frag"),
            "http://[::1]:8080/hooks/mail-events#***"
        );
        assert_eq!(redact("https://example.com/"), "https://example.com/");
        let url = WebhookUrl::parse("https://example.com/h?token=abc").unwrap();
        assert_eq!(format!("{url:?}"), "WebhookUrl(https://example.com/h?token=***)");
        assert_eq!(url.to_string(), "https://example.com/h?token=abc", "stored whole");
    }

    #[test]
    fn refuses_other_schemes_garbage_and_long_urls() {
        assert_eq!(
            WebhookUrl::parse("ftp://example.com").unwrap_err(),
            "must use http or https"
        );
        assert!(WebhookUrl::parse("not-a-url")
            .unwrap_err()
            .starts_with("must be a valid URL"));
        assert_eq!(WebhookUrl::parse("").unwrap_err(), "must not be empty");
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(WebhookUrl::parse(&long).unwrap_err().contains("2048"));
        for bad in [
            " https://example.com/",
            "https://example.com/a b",
            "https://exämple.com/",
            "https://example.com/%zz",
        ] {
            assert!(
                WebhookUrl::parse(bad).unwrap_err().starts_with("must be a valid URI"),
                "{bad}"
            );
        }
    }

    #[test]
    fn credentials_go_in_a_basic_header_and_never_in_the_redacted_form() {
        let url = WebhookUrl::parse("https://hook-user:p%40ss:w0rd@example.com:8443/in?x=1").unwrap();
        assert_eq!(url.as_str(), "https://hook-user:p%40ss:w0rd@example.com:8443/in?x=1");
        assert_eq!(url.target(), "https://example.com:8443/in?x=1");
        // As axios sends it: the user name and password as the URL standard gives them, which
        // is as written except that it escapes a ':' in the password (Node's URL does the same).
        let expected = base64::engine::general_purpose::STANDARD.encode("hook-user:p%40ss%3Aw0rd");
        assert_eq!(url.basic_auth(), Some(format!("Basic {expected}")));
        assert_eq!(url.redacted(), "https://***@example.com:8443/in?x=***");
        assert!(!format!("{url:?}").contains("w0rd"));
        let user_only = WebhookUrl::parse("http://token@example.com/").unwrap();
        let expected = base64::engine::general_purpose::STANDARD.encode("token:");
        assert_eq!(user_only.basic_auth(), Some(format!("Basic {expected}")));
        assert_eq!(
            WebhookUrl::parse("http://:secret@example.com/").unwrap().basic_auth(),
            None
        );
        assert_eq!(WebhookUrl::parse("http://example.com/").unwrap().basic_auth(), None);
    }
}
