//! Dashboard stream tickets: 32 random bytes (base64url), handed out for an access token and
//! good for opening one stream (see `store::tickets`). Only their SHA-256 digest is stored.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use ring::digest::{digest as sha256, SHA256};

/// A new ticket and the digest to store it by.
pub fn generate() -> (String, String) {
    let ticket = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let digest = digest(&ticket);
    (ticket, digest)
}

/// The digest (hex) a ticket is stored by.
pub fn digest(ticket: &str) -> String {
    sha256(&SHA256, ticket.as_bytes())
        .as_ref()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tickets_are_random_and_stored_by_a_digest_that_is_not_the_ticket() {
        let (a, digest_a) = generate();
        let (b, _) = generate();
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
        assert_eq!(digest_a, digest(&a));
        assert_eq!(digest_a.len(), 64);
        assert!(!digest_a.contains(&a));
    }
}
