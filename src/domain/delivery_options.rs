//! How one webhook wants its deliveries paced: at most `rateLimit` a second, and in strict
//! stream order or not (`ordering`). Set on create and update, stored with the webhook,
//! applied by its delivery actor (`actors/delivery/pacing.rs`, `window.rs`).

use std::fmt;

/// The most deliveries per second a `rateLimit` may ask for (above, the cap and the adaptive
/// concurrency decide anyway).
pub const MAX_RATE_LIMIT: u32 = 100_000;

/// Deliveries per second, 1 to [`MAX_RATE_LIMIT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit(u32);

impl RateLimit {
    /// Parses a number of deliveries per second, or says which rule it broke.
    pub fn parse(value: u64) -> Result<RateLimit, String> {
        match u32::try_from(value) {
            Ok(rate) if (1..=MAX_RATE_LIMIT).contains(&rate) => Ok(RateLimit(rate)),
            _ => Err(format!(
                "must be a whole number of deliveries per second from 1 to {MAX_RATE_LIMIT}"
            )),
        }
    }

    pub fn per_second(self) -> u32 {
        self.0
    }
}

/// In which order a webhook's deliveries go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Ordering {
    /// As many at once as flow control allows; a failed one waits for its retry out of the way
    /// of the others (the default).
    #[default]
    Parallel,
    /// One at a time, in stream order; a failing one holds those behind it until it succeeds
    /// or becomes a dead letter.
    Strict,
}

impl Ordering {
    pub fn parse(text: &str) -> Result<Ordering, String> {
        match text {
            "parallel" => Ok(Ordering::Parallel),
            "strict" => Ok(Ordering::Strict),
            _ => Err("must be \"parallel\" or \"strict\"".into()),
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Ordering::Parallel => "parallel",
            Ordering::Strict => "strict",
        }
    }
}

impl fmt::Display for Ordering {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A webhook's delivery options.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeliveryOptions {
    pub rate_limit: Option<RateLimit>,
    pub ordering: Ordering,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rate_limits_and_orderings_parse_or_say_why_not() {
        assert_eq!(RateLimit::parse(50).map(RateLimit::per_second), Ok(50));
        assert!(RateLimit::parse(0).unwrap_err().contains("from 1 to 100000"));
        assert!(RateLimit::parse(100_001).is_err());
        assert!(RateLimit::parse(u64::MAX).is_err());
        assert_eq!(Ordering::parse("strict"), Ok(Ordering::Strict));
        assert_eq!(Ordering::parse("parallel"), Ok(Ordering::Parallel));
        assert_eq!(
            Ordering::parse("Strict").unwrap_err(),
            "must be \"parallel\" or \"strict\""
        );
    }
}
