//! WildDuck's access tokens, issued by `tests/node/wildduck-token.js` as WildDuck's
//! `userHandler.setAuthToken` does (ioredis, Node's crypto, `JSON.stringify`), under WildDuck's own
//! key `tn:token:<sha256>` (outside any test prefix, so each token is deleted when its [`Issued`]
//! is dropped).

use std::path::PathBuf;

use serde_json::Value;

use super::REDIS_URL;

/// WildDuck's default `[api.accessControl] secret`.
pub const SECRET: &str = "a secret cat";

/// Tokens issued in WildDuck's key space, deleted when dropped (also when a test fails).
pub struct Issued {
    /// WildDuck's Redis, where the tokens are written (and deleted when dropped).
    redis_url: String,
    keys: Vec<String>,
}

impl Issued {
    /// Tokens in the shared test Redis.
    pub fn new() -> Issued {
        Issued::at(REDIS_URL)
    }

    /// Tokens in the Redis at `redis_url`.
    pub fn at(redis_url: &str) -> Issued {
        Issued {
            redis_url: redis_url.to_string(),
            keys: Vec::new(),
        }
    }

    /// A token for `user` with `role`, `ttl_s` (0: none) and made `age_ms` ago, signed with
    /// `secret`, with authVersion 0 as WildDuck writes it. Returns the token and its key.
    pub async fn token_signed(
        &mut self,
        secret: &str,
        user: &str,
        role: &str,
        ttl_s: u64,
        age_ms: u64,
    ) -> (String, String) {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node");
        assert!(
            dir.join("node_modules/ioredis").exists(),
            "the Node test packages are missing: run `scripts/test --setup-only` (npm ci in tests/node)"
        );
        let output = tokio::process::Command::new("node")
            .current_dir(&dir)
            .arg("wildduck-token.js")
            .args([
                &self.redis_url,
                secret,
                user,
                role,
                &ttl_s.to_string(),
                &age_ms.to_string(),
                "0",
            ])
            .output()
            .await
            .expect("node runs");
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let issued: Value = serde_json::from_slice(&output.stdout).expect("JSON from wildduck-token.js");
        let key = issued["key"].as_str().unwrap().to_string();
        self.keys.push(key.clone());
        (issued["token"].as_str().unwrap().to_string(), key)
    }

    pub async fn token(&mut self, user: &str, role: &str) -> String {
        self.token_signed(SECRET, user, role, 1_209_600, 1_000).await.0
    }
}

impl Drop for Issued {
    fn drop(&mut self) {
        if let Ok(mut conn) = redis::Client::open(self.redis_url.as_str()).and_then(|c| c.get_connection()) {
            for key in &self.keys {
                let _: redis::RedisResult<i64> = redis::cmd("DEL").arg(key).query(&mut conn);
            }
        }
    }
}
