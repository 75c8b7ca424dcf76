//! API access tokens.
//!
//! A request carries its token where WildDuck's API looks for one, in this order: the
//! `accessToken` query parameter, the `X-Access-Token` header, or the `Authorization` header
//! (`Bearer <token>`, or the bare token); empty values are skipped. Tokens are compared as
//! SHA-256 digests in constant time, against every configured token, so neither the comparison
//! nor the position of the match leaks anything.

use ring::digest::{digest as sha256, SHA256};
use subtle::ConstantTimeEq;

use crate::config::AccessToken;

pub struct AccessTokens {
    digests: Vec<[u8; 32]>,
}

impl AccessTokens {
    pub fn new(tokens: &[AccessToken]) -> AccessTokens {
        AccessTokens {
            digests: tokens.iter().map(|t| digest(&t.0)).collect(),
        }
    }

    /// No token configured: the API is open.
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    pub fn accepts(&self, candidate: &str) -> bool {
        let candidate = digest(candidate);
        let mut matched = subtle::Choice::from(0);
        for known in &self.digests {
            matched |= known.ct_eq(&candidate);
        }
        matched.into()
    }

    /// The token a request carries, from the first of the three places that has one.
    pub fn presented(headers: &actix_web::http::header::HeaderMap, query: &str) -> Option<String> {
        let header = |name| headers.get(name).and_then(|v| v.to_str().ok());
        let from_query = url::form_urlencoded::parse(query.as_bytes())
            .find(|(key, _)| key == "accessToken")
            .map(|(_, value)| value.into_owned());
        let from_authorization = header(actix_web::http::header::AUTHORIZATION.as_str()).map(|v| {
            // WildDuck: `authorization.replace(/^Bearer\s+/i, '').trim()`.
            let bearer =
                v.get(..6).is_some_and(|p| p.eq_ignore_ascii_case("bearer")) && v[6..].starts_with(char::is_whitespace);
            if bearer { &v[6..] } else { v }.trim().to_string()
        });
        [
            from_query,
            header("x-access-token").map(str::to_string),
            from_authorization,
        ]
        .into_iter()
        .flatten()
        .find(|token| !token.is_empty())
    }
}

fn digest(token: &str) -> [u8; 32] {
    let mut out = [0; 32];
    out.copy_from_slice(sha256(&SHA256, token.as_bytes()).as_ref());
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

    #[test]
    fn accepts_only_configured_tokens() {
        let tokens = AccessTokens::new(&[
            AccessToken("first-token-0123456789".into()),
            AccessToken("second-token-0123456789".into()),
        ]);
        assert!(tokens.accepts("first-token-0123456789"));
        assert!(tokens.accepts("second-token-0123456789"));
        assert!(!tokens.accepts("first-token-012345678"));
        assert!(!tokens.accepts(""));
        assert!(AccessTokens::new(&[]).is_empty());
    }

    #[test]
    fn finds_the_token_where_wildduck_looks_first() {
        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("authorization"),
            HeaderValue::from_static("bearer   b-tok "),
        );
        assert_eq!(AccessTokens::presented(&headers, ""), Some("b-tok".into()));
        headers.insert(
            HeaderName::from_static("x-access-token"),
            HeaderValue::from_static("h-tok"),
        );
        assert_eq!(AccessTokens::presented(&headers, ""), Some("h-tok".into()));
        assert_eq!(
            AccessTokens::presented(&headers, "a=1&accessToken=q%2Dtok"),
            Some("q-tok".into()),
            "the query parameter comes first"
        );
        assert_eq!(AccessTokens::presented(&headers, "accessToken="), Some("h-tok".into()));
        let mut bare = HeaderMap::new();
        bare.insert(
            HeaderName::from_static("authorization"),
            HeaderValue::from_static("tok"),
        );
        assert_eq!(AccessTokens::presented(&bare, ""), Some("tok".into()));
        assert_eq!(AccessTokens::presented(&HeaderMap::new(), "other=1"), None);
    }
}
