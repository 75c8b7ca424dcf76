//! Access tokens WildDuck issued (`[api] wildduck_tokens`), judged as WildDuck's API judges
//! them (`api.js`, 1.45), and the webhook rights of their roles (`config/roles.json`).
//!
//! A WildDuck token is 40 hex characters. WildDuck keeps it in its Redis as a hash under
//! `tn:token:<sha256 hex of the token>` with `user`, `role`, `created` (ms), `ttl` (s), maybe
//! `authVersion`, and `s`: the HMAC-SHA256, keyed with WildDuck's `api.accessControl.secret`, of
//! `JSON.stringify({token, user, authVersion, role})` (`authVersion` only when the hash has
//! it, as `Number(authVersion) || 0`). A token is good when the hash exists with a `user` and a
//! role `roles.json` knows, and the signature matches. With a `ttl` above 0 it must also be
//! younger than the token lifetime (`api.accessControl.tokenLifetime`, 180 days by default):
//! then each use extends the key's expiry to `ttl` again, and an older token is deleted and
//! refused. This module decides ([`judge`]); `store::wildduck_tokens` reads and writes the keys.
//!
//! Not checked, because it needs WildDuck's MongoDB: that the `authVersion` of a token whose
//! user is an ObjectId is still the user's (WildDuck refuses tokens older than a password or
//! 2FA change, and tokens of deleted, disabled or suspended users). docs/wildduck.md lists it.

use std::collections::HashMap;

use ring::hmac;
use serde::Serialize;

use crate::domain::js_number::{js_number, JsNumber};

/// What a role may do with webhooks: its `webhooks` grants in WildDuck's `config/roles.json`
/// (the same in 1.45.4 and the newest WildDuck). "Any" covers "own", as in `accesscontrol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Grants {
    pub create_any: bool,
    pub read_any: bool,
    /// Read the webhooks whose `user` is the token's user.
    pub read_own: bool,
    pub delete_any: bool,
    /// Delete a webhook whose `user` is the token's user.
    pub delete_own: bool,
    /// Every other webhook operation hookrouter has (`PUT`, pause, secrets, …): only `root`.
    pub everything: bool,
}

const FULL: Grants = Grants {
    create_any: true,
    read_any: true,
    read_own: true,
    delete_any: true,
    delete_own: true,
    everything: false,
};

/// Every role in WildDuck's `config/roles.json`, with its webhook grants. A token with a role
/// not listed here is not a valid token (WildDuck checks `config.api.roles[role]`).
pub fn role_grants(role: &str) -> Option<Grants> {
    Some(match role {
        "root" => Grants {
            everything: true,
            ..FULL
        },
        "manager" | "webmail" => FULL,
        "user" => Grants {
            read_own: true,
            ..Grants::default()
        },
        "auth" | "attachments" | "tokenAuth" | "audit" | "auditclient" | "export" | "settings" | "downloader" => {
            Grants::default()
        }
        _ => return None,
    })
}

/// The grants of a configured access token, or of anyone on an open API.
pub const OPERATOR: Grants = Grants {
    everything: true,
    ..FULL
};

/// Whether `token` has the shape of a WildDuck token (only those are looked up).
pub fn is_wildduck_token(token: &str) -> bool {
    token.len() == 40 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// What a token's hash says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Judgement {
    /// Good: the caller's role and user; with `Some(ttl)`, extend the key's expiry to that
    /// many seconds (WildDuck's sliding session).
    Valid {
        role: String,
        user: String,
        extend_s: Option<u64>,
    },
    /// Signed, but older than the token lifetime: WildDuck deletes the key and refuses it.
    Expired,
    /// Unknown, unsigned, a bad signature or an unknown role: refused, the key left alone.
    Invalid,
}

/// The signed part of a token, in the order `JSON.stringify` writes WildDuck's object.
#[derive(Serialize)]
struct Signed<'a> {
    token: &'a str,
    user: &'a str,
    #[serde(rename = "authVersion", skip_serializing_if = "Option::is_none")]
    auth_version: Option<JsNumber>,
    role: &'a str,
}

/// Judges `token` by its hash `fields`, with WildDuck's HMAC `secret`, its token lifetime in
/// seconds, at `now_ms`.
pub fn judge(token: &str, fields: &HashMap<String, String>, secret: &[u8], lifetime_s: u64, now_ms: u64) -> Judgement {
    let field = |name: &str| fields.get(name).map(String::as_str).filter(|v| !v.is_empty());
    let (Some(user), Some(role)) = (field("user"), field("role")) else {
        return Judgement::Invalid;
    };
    if role_grants(role).is_none() {
        return Judgement::Invalid;
    }
    let auth_version = fields.get("authVersion").map(|v| {
        let n = js_number(v);
        // `Number(v) || 0`: NaN and -0 become 0.
        JsNumber(if n.is_nan() || n == 0.0 { 0.0 } else { n })
    });
    let signed = Signed {
        token,
        user,
        auth_version,
        role,
    };
    let Ok(message) = serde_json::to_string(&signed) else {
        return Judgement::Invalid;
    };
    let expected = signature(secret, &message);
    let given = fields.get("s").map(String::as_bytes).unwrap_or_default();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(expected.as_bytes(), given)) {
        return Judgement::Invalid;
    }
    let valid = |extend_s| Judgement::Valid {
        role: role.to_string(),
        user: user.to_string(),
        extend_s,
    };
    // `tokenData.ttl && !isNaN(tokenData.ttl) && Number(tokenData.ttl) > 0`
    let ttl = field("ttl").map(js_number).filter(|ttl| *ttl > 0.0);
    let Some(ttl) = ttl else {
        return valid(None);
    };
    let created = fields.get("created").map_or(f64::NAN, |created| js_number(created));
    let age_s = (now_ms as f64 - created) / 1000.0;
    // NaN compares false: a token without a readable `created` is expired, as in WildDuck.
    if age_s < lifetime_s as f64 {
        // WildDuck's EXPIRE with a fractional ttl fails (and is ignored): no extension.
        valid((ttl.fract() == 0.0).then_some(ttl as u64))
    } else {
        Judgement::Expired
    }
}

/// WildDuck's token signature: the hex HMAC-SHA256 of `message` keyed with `secret`.
fn signature(secret: &[u8], message: &str) -> String {
    let key = hmac::Key::new(hmac::HMAC_SHA256, secret);
    hmac::sign(&key, message.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKEN: &str = "0123456789abcdef0123456789abcdef01234567";
    const SECRET: &[u8] = b"a secret cat";
    const USER: &str = "5f1e9d2c8b3a4e00aaaaaaaa";

    /// A token hash as WildDuck's `userHandler.setAuthToken` writes it, signed in JavaScript's
    /// own words: `JSON.stringify({token, user, authVersion, role})`.
    fn issued(role: &str, created: u64, ttl: &str, auth_version: Option<&str>) -> HashMap<String, String> {
        let message = match auth_version {
            Some(v) => format!(r#"{{"token":"{TOKEN}","user":"{USER}","authVersion":{v},"role":"{role}"}}"#),
            None => format!(r#"{{"token":"{TOKEN}","user":"{USER}","role":"{role}"}}"#),
        };
        let s = signature(SECRET, &message);
        let mut fields = HashMap::from([
            ("user".to_string(), USER.to_string()),
            ("role".to_string(), role.to_string()),
            ("created".to_string(), created.to_string()),
            ("ttl".to_string(), ttl.to_string()),
            ("s".to_string(), s),
        ]);
        if let Some(v) = auth_version {
            fields.insert("authVersion".into(), v.into());
        }
        fields
    }

    const DAY_MS: u64 = 86_400_000;
    const LIFETIME_S: u64 = 180 * 86_400;

    #[test]
    fn a_token_as_wildduck_issues_it_is_valid_and_extended() {
        let now = 1_800_000_000_000;
        let fields = issued("user", now - DAY_MS, "1209600", Some("3"));
        assert_eq!(
            judge(TOKEN, &fields, SECRET, LIFETIME_S, now),
            Judgement::Valid {
                role: "user".into(),
                user: USER.into(),
                extend_s: Some(1_209_600)
            }
        );
        // Without a ttl it never expires and is not extended.
        let forever = issued("manager", 0, "0", None);
        assert!(matches!(
            judge(TOKEN, &forever, SECRET, LIFETIME_S, now),
            Judgement::Valid { extend_s: None, .. }
        ));
    }

    #[test]
    fn past_its_lifetime_a_token_is_expired() {
        let now = 1_800_000_000_000;
        let fields = issued("user", now - 181 * DAY_MS, "1209600", Some("0"));
        assert_eq!(judge(TOKEN, &fields, SECRET, LIFETIME_S, now), Judgement::Expired);
        assert_eq!(
            judge(TOKEN, &fields, SECRET, 200 * 86_400, now).clone(),
            Judgement::Valid {
                role: "user".into(),
                user: USER.into(),
                extend_s: Some(1_209_600),
            }
        );
    }

    #[test]
    fn forged_unsigned_or_unknown_roles_are_invalid() {
        let now = 1_800_000_000_000;
        let mut fields = issued("user", now, "1209600", Some("1"));
        assert_eq!(
            judge(TOKEN, &fields, b"another secret", LIFETIME_S, now),
            Judgement::Invalid
        );
        // authVersion is signed: changing it breaks the signature.
        fields.insert("authVersion".into(), "2".into());
        assert_eq!(judge(TOKEN, &fields, SECRET, LIFETIME_S, now), Judgement::Invalid);
        // The role is signed too.
        let mut promoted = issued("user", now, "1209600", None);
        promoted.insert("role".into(), "root".into());
        assert_eq!(judge(TOKEN, &promoted, SECRET, LIFETIME_S, now), Judgement::Invalid);
        let unknown = issued("superuser", now, "0", None);
        assert_eq!(judge(TOKEN, &unknown, SECRET, LIFETIME_S, now), Judgement::Invalid);
        assert_eq!(
            judge(TOKEN, &HashMap::new(), SECRET, LIFETIME_S, now),
            Judgement::Invalid
        );
    }

    #[test]
    fn roles_have_wildducks_webhook_grants() {
        for role in ["root", "manager", "webmail"] {
            let grants = role_grants(role).unwrap();
            assert!(grants.create_any && grants.read_any && grants.delete_any, "{role}");
        }
        assert!(role_grants("root").unwrap().everything);
        assert!(!role_grants("manager").unwrap().everything);
        assert_eq!(
            role_grants("user").unwrap(),
            Grants {
                read_own: true,
                ..Grants::default()
            }
        );
        for role in [
            "auth",
            "attachments",
            "tokenAuth",
            "audit",
            "auditclient",
            "export",
            "settings",
            "downloader",
        ] {
            assert_eq!(
                role_grants(role),
                Some(Grants::default()),
                "{role}: a role without webhook rights"
            );
        }
        assert_eq!(role_grants("nobody"), None);
        assert!(is_wildduck_token(TOKEN) && !is_wildduck_token("short") && !is_wildduck_token(&"g".repeat(40)));
    }
}
