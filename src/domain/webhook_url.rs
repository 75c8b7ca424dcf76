//! A webhook's destination: an absolute http(s) URL with a host, at most 2048 characters.
//!
//! Receivers often take a token in the URL (`?key=…`, or a path segment such as Slack's
//! `/services/T…/B…/<secret>`). So the URL is shown whole only where an operator asks for the
//! webhook itself (`GET /webhooks/{id}`) and stored; logs, lists, errors and health show
//! [`WebhookUrl::redacted`], and its `Debug` form is the redacted one too.

use std::fmt;

pub const MAX_URL_LEN: usize = 2048;

#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl(url::Url);

impl WebhookUrl {
    /// Parses a URL or says which rule it broke.
    pub fn parse(text: &str) -> Result<WebhookUrl, String> {
        if text.is_empty() {
            return Err("must not be empty".into());
        }
        if text.len() > MAX_URL_LEN {
            return Err(format!("must be at most {MAX_URL_LEN} characters"));
        }
        let url = url::Url::parse(text).map_err(|e| format!("must be a valid URL ({e})"))?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err("must use http or https".into());
        }
        if url.host().is_none() {
            return Err("must have a host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("must not carry credentials; put them in the path or query".into());
        }
        if url.as_str().len() > MAX_URL_LEN {
            return Err(format!("must be at most {MAX_URL_LEN} characters once normalised"));
        }
        Ok(WebhookUrl(url))
    }

    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn url(&self) -> &url::Url {
        &self.0
    }

    /// The URL with every query value, the fragment, and each path segment that looks like a
    /// secret (see [`looks_secret`]) replaced by `***`: `https://x/hook?key=***&v=***`.
    pub fn redacted(&self) -> String {
        let url = &self.0;
        let mut shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
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

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
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
        assert!(WebhookUrl::parse("not a url")
            .unwrap_err()
            .starts_with("must be a valid URL"));
        assert_eq!(WebhookUrl::parse("").unwrap_err(), "must not be empty");
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert!(WebhookUrl::parse(&long).unwrap_err().contains("2048"));
        assert!(WebhookUrl::parse("https://u:p@example.com/").is_err());
    }
}
