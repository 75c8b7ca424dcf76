//! Webhook ids: 24 lowercase hex characters laid out like a MongoDB ObjectId (4 bytes of
//! seconds, 5 bytes random per process, 3 bytes counter), so WildDuck clients that validate
//! ObjectIds accept them and ids sort by creation time.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WebhookId([u8; 12]);

impl WebhookId {
    /// A fresh id, greater than every id made earlier by this process.
    pub fn generate() -> WebhookId {
        static PROCESS: OnceLock<[u8; 5]> = OnceLock::new();
        static COUNTER: OnceLock<AtomicU32> = OnceLock::new();
        let process = PROCESS.get_or_init(rand::random);
        let counter = COUNTER
            .get_or_init(|| AtomicU32::new(rand::random::<u32>() & 0x00ff_ffff))
            .fetch_add(1, Ordering::Relaxed);
        let seconds = (crate::clock::now_ms() / 1000) as u32;
        let mut bytes = [0u8; 12];
        bytes[..4].copy_from_slice(&seconds.to_be_bytes());
        bytes[4..9].copy_from_slice(process);
        bytes[9..].copy_from_slice(&counter.to_be_bytes()[1..]);
        WebhookId(bytes)
    }

    /// When the id was made, in ms since the epoch (its first 4 bytes are seconds, as in an
    /// ObjectId; a WildDuck webhook's `_id` says when it was created).
    pub fn created_ms(&self) -> u64 {
        u64::from(u32::from_be_bytes([self.0[0], self.0[1], self.0[2], self.0[3]])) * 1000
    }

    /// Parses 24 hex characters (either case, as ObjectIds are compared case-insensitively).
    pub fn parse(text: &str) -> Option<WebhookId> {
        if text.len() != 24 {
            return None;
        }
        let mut bytes = [0u8; 12];
        for (i, pair) in text.as_bytes().chunks(2).enumerate() {
            let hi = hex_value(pair[0])?;
            let lo = hex_value(pair[1])?;
            bytes[i] = hi << 4 | lo;
        }
        Some(WebhookId(bytes))
    }
}

fn hex_value(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

impl fmt::Display for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 24];
        for (i, byte) in self.0.iter().enumerate() {
            text[2 * i] = HEX[usize::from(byte >> 4)];
            text[2 * i + 1] = HEX[usize::from(byte & 0xf)];
        }
        // Hex digits are ASCII.
        f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?)
    }
}

impl fmt::Debug for WebhookId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookId({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_24_lowercase_hex_and_round_trip() {
        let id = WebhookId::generate();
        let text = id.to_string();
        assert_eq!(text.len(), 24);
        assert!(text.bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)));
        assert_eq!(WebhookId::parse(&text), Some(id));
        assert_eq!(WebhookId::parse(&text.to_uppercase()), Some(id));
    }

    #[test]
    fn ids_carry_their_creation_second() {
        let before = crate::clock::now_ms() / 1000 * 1000;
        let made = WebhookId::generate().created_ms();
        assert!(made >= before && made <= crate::clock::now_ms(), "{made}");
        let wildduck = WebhookId::parse("5f1e9d2c8b3a4e0012345678").unwrap();
        assert_eq!(wildduck.created_ms(), 0x5f1e9d2c * 1000);
    }

    #[test]
    fn ids_sort_by_creation() {
        let ids: Vec<String> = (0..1000).map(|_| WebhookId::generate().to_string()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        // The counter may wrap once in 2^24 ids; 1000 consecutive ids wrap with tiny odds,
        // so allow exactly that one discontinuity.
        let breaks = ids.windows(2).filter(|w| w[0] >= w[1]).count();
        assert!(breaks <= 1, "{breaks} ordering breaks");
    }

    #[test]
    fn malformed_ids_are_refused() {
        for bad in [
            "",
            "abc",
            "zzzzzzzzzzzzzzzzzzzzzzzz",
            "0123456789abcdef0123456",
            "0123456789abcdef012345678",
        ] {
            assert_eq!(WebhookId::parse(bad), None, "{bad}");
        }
    }
}
