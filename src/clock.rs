//! Wall-clock helpers: epoch milliseconds and WildDuck's ISO 8601 shape.

use std::time::{SystemTime, UNIX_EPOCH};

use time::macros::format_description;
use time::OffsetDateTime;

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// How long a timer waits for a wall-clock time `due_ms` (persisted due times are wall-clock),
/// seen at `now_ms` (one clock reading): never negative. The wait itself runs on the monotonic
/// clock, so a wall-clock step after arming does not move it.
pub fn wait_until(due_ms: u64, now_ms: u64) -> std::time::Duration {
    std::time::Duration::from_millis(due_ms.saturating_sub(now_ms))
}

/// `2026-11-26T18:26:10.123Z`, as JavaScript's `Date.prototype.toISOString` writes it.
pub fn iso8601(ms: u64) -> String {
    let format = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:3]Z");
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .ok()
        .and_then(|t| t.format(&format).ok())
        .unwrap_or_else(|| "1970-01-01T00:00:00.000Z".into())
}

/// Reads back a time written by [`iso8601`] (any RFC 3339 time, in fact): ms since the epoch.
pub fn parse_iso8601(text: &str) -> Option<u64> {
    let time = OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()?;
    u64::try_from(time.unix_timestamp_nanos() / 1_000_000).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_due_time_already_past_waits_nothing_instead_of_centuries() {
        assert_eq!(wait_until(1_000, 1_001), std::time::Duration::ZERO);
        assert_eq!(wait_until(1_500, 1_000), std::time::Duration::from_millis(500));
        assert_eq!(wait_until(0, u64::MAX), std::time::Duration::ZERO);
    }

    #[test]
    fn formats_like_javascript() {
        assert_eq!(iso8601(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601(1_764_181_570_123), "2025-11-26T18:26:10.123Z");
    }

    #[test]
    fn reads_back_what_it_writes() {
        for ms in [0, 1_764_181_570_123, 1_764_181_570_000] {
            assert_eq!(parse_iso8601(&iso8601(ms)), Some(ms));
        }
        assert_eq!(parse_iso8601("yesterday"), None);
        assert_eq!(parse_iso8601("1969-12-31T23:59:59.000Z"), None);
    }
}
