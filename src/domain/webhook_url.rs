//! A webhook's destination: an absolute http(s) URL with a host, at most 2048 characters.

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
}

impl fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.0.as_str())
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({})", self.0)
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
