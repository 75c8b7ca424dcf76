//! Which Redis failures mean "not now, try again", in one place.
//!
//! Redis says "not now" in many ways: it is down or unreachable (connection refused, reset,
//! an I/O error, no answer in time), it is loading its data after a restart (`LOADING`), a
//! script runs too long (`BUSY`), a failover is under way (`MASTERDOWN`, `READONLY` from a
//! primary turned replica, `TRYAGAIN`, `CLUSTERDOWN`), or too few replicas acknowledge writes
//! (`NOREPLICAS`), or fewer than `[redis] min_replicas_acked` confirm a write in time
//! ([`StoreError::NotReplicated`]), it refuses writes until an operator makes room (`OOM`:
//! `maxmemory` reached with a policy that evicts nothing) or mends its disk (`MISCONF`: its last
//! snapshot failed), or it refuses our login or TLS until the operator fixes the settings. None
//! of these is a bug of ours, and the same request succeeds once Redis
//! is back: [`StoreError::unavailable`] names which it is, so the API answers 503 with
//! `Retry-After` instead of 500, and the actors wait and resume instead of counting a failure.
//! Everything else (a script error, data hookrouter did not write) stays an error.
//!
//! An outage is seen by many requests and many actors at once; [`note_outage`] logs it once,
//! as a warning, when it begins (the Redis watch in `startup` says, besides, how long it
//! lasts and when it ends).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use redis::RedisError;

use super::StoreError;

/// Why Redis cannot serve now, when it is a passing state rather than a bug.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    /// Refused, reset, dropped, or another I/O error on the way to Redis.
    Unreachable,
    /// No answer within `[redis] timeout_ms`.
    TimedOut,
    /// `LOADING`: Redis is reading its data back after a restart.
    Loading,
    /// `BUSY`: a script or function has run past `busy-reply-threshold`.
    Busy,
    /// `MASTERDOWN`, `READONLY`, `TRYAGAIN`, `CLUSTERDOWN`: a failover or resharding is under way.
    Failover,
    /// `NOREPLICAS`: fewer replicas than `min-replicas-to-write` acknowledge writes.
    NoReplicas,
    /// `OOM`: Redis reached `maxmemory` and evicts nothing (`noeviction`, as a queue needs):
    /// it refuses writes until something is freed.
    OutOfMemory,
    /// `MISCONF`: Redis could not save its snapshot (`stop-writes-on-bgsave-error`): it
    /// refuses writes until a save succeeds.
    CannotPersist,
    /// Fewer replicas than `[redis] min_replicas_acked` confirmed a write within
    /// `replica_wait_ms` (`WAIT`): it may not survive a failover, so it is not acknowledged.
    NotReplicated,
    /// Redis refuses our password or our TLS (see [`super::refusal`]): the operator's to fix,
    /// and no bug of ours either.
    Refused,
}

impl Unavailable {
    /// Redis answers, but refuses to write: `/health` says `refusingWrites`.
    pub fn refuses_writes(self) -> bool {
        matches!(
            self,
            Unavailable::OutOfMemory | Unavailable::CannotPersist | Unavailable::NoReplicas
        )
    }

    /// The words for it in errors, logs and `/health`.
    pub fn describe(self) -> &'static str {
        match self {
            Unavailable::Unreachable => "Redis is unreachable",
            Unavailable::TimedOut => "Redis did not answer in time",
            Unavailable::Loading => "Redis is loading its data",
            Unavailable::Busy => "Redis is busy running a script",
            Unavailable::Failover => "Redis is failing over",
            Unavailable::NoReplicas => "Redis has too few replicas to accept writes",
            Unavailable::OutOfMemory => "Redis is out of memory (maxmemory) and refuses writes",
            Unavailable::CannotPersist => "Redis cannot save its data to disk and refuses writes",
            Unavailable::NotReplicated => "too few Redis replicas confirmed the write in time",
            Unavailable::Refused => "Redis refuses hookrouter's login or TLS",
        }
    }
}

impl StoreError {
    /// Some when this error means "not now, try again" (see the module's documentation);
    /// None when it is a real error.
    pub fn unavailable(&self) -> Option<Unavailable> {
        match self {
            StoreError::Redis(_) if super::refusal(self).is_some() => Some(Unavailable::Refused),
            StoreError::Redis(error) => redis_unavailable(error),
            StoreError::Timeout(_) => Some(Unavailable::TimedOut),
            StoreError::NotReplicated { .. } => Some(Unavailable::NotReplicated),
            StoreError::Corrupt(_) | StoreError::Fenced | StoreError::Config(_) => None,
        }
    }
}

/// Classifies a Redis error. A transaction or pipeline fails as a whole (`EXECABORT`) when one
/// of its commands is refused, so the commands' own errors are looked at too.
fn redis_unavailable(error: &RedisError) -> Option<Unavailable> {
    if error.is_timeout() {
        return Some(Unavailable::TimedOut);
    }
    if error.is_io_error() || error.is_connection_dropped() || error.is_connection_refusal() {
        return Some(Unavailable::Unreachable);
    }
    if let Some(reason) = error.code().and_then(by_code) {
        return Some(reason);
    }
    error
        .clone()
        .into_server_errors()?
        .iter()
        .find_map(|(_, server)| by_code(server.code()))
}

/// The server error codes that mean "not now".
fn by_code(code: &str) -> Option<Unavailable> {
    match code {
        "LOADING" => Some(Unavailable::Loading),
        "BUSY" => Some(Unavailable::Busy),
        "MASTERDOWN" | "READONLY" | "TRYAGAIN" | "CLUSTERDOWN" => Some(Unavailable::Failover),
        "NOREPLICAS" => Some(Unavailable::NoReplicas),
        "OOM" => Some(Unavailable::OutOfMemory),
        "MISCONF" => Some(Unavailable::CannotPersist),
        _ => None,
    }
}

/// An outage ends when nothing has noted it for this long; the next note starts a new one.
const OUTAGE_QUIET: Duration = Duration::from_secs(10);

/// The outage under way, process-wide: when it was last noted, and why.
static OUTAGE: Mutex<Option<(Instant, Unavailable)>> = Mutex::new(None);

/// How an outage note is logged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Noted {
    /// The outage began (nothing noted for [`OUTAGE_QUIET`]): a warning.
    Began,
    /// Its reason changed (unreachable, then loading): an info line.
    Changed,
    /// More of the same: a debug line.
    Continues,
}

/// Notes that Redis was unavailable to `whom` (which part of the service saw it): a warning
/// when an outage begins, an info line when its reason changes, a debug line otherwise, so
/// an outage seen by every request and every actor is one warning in the log.
pub fn note_outage(reason: Unavailable, whom: &str, error: &StoreError) -> Noted {
    let now = Instant::now();
    let noted = {
        // A poisoned lock only means a panic elsewhere while holding it: the value is still
        // a plain pair.
        let mut outage = OUTAGE.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let noted = match *outage {
            Some((last, _)) if now.duration_since(last) >= OUTAGE_QUIET => Noted::Began,
            None => Noted::Began,
            Some((_, previous)) if previous != reason => Noted::Changed,
            Some(_) => Noted::Continues,
        };
        *outage = Some((now, reason));
        noted
    };
    let what = reason.describe();
    match noted {
        Noted::Began => tracing::warn!(%error, seen_by = whom,
            "{what}: waiting for it; the API answers 503 meanwhile (warned once per outage)"),
        Noted::Changed => tracing::info!(%error, seen_by = whom, "{what} now"),
        Noted::Continues => tracing::debug!(%error, seen_by = whom, "{what}"),
    }
    noted
}

#[cfg(test)]
mod tests {
    use super::*;

    fn server_error(reply: &[u8]) -> StoreError {
        let error = redis::parse_redis_value(reply)
            .expect("a RESP error")
            .extract_error()
            .expect_err("an error reply");
        StoreError::Redis(error)
    }

    #[test]
    fn not_now_answers_are_unavailable() {
        let cases: [(&[u8], Unavailable); 9] = [
            (
                b"-OOM command not allowed when used memory > 'maxmemory'.\r\n",
                Unavailable::OutOfMemory,
            ),
            (
                b"-MISCONF Redis is configured to save RDB snapshots, but it's currently unable to persist to disk.\r\n",
                Unavailable::CannotPersist,
            ),
            (
                b"-LOADING Redis is loading the dataset in memory\r\n",
                Unavailable::Loading,
            ),
            (b"-BUSY Redis is busy running a script.\r\n", Unavailable::Busy),
            (b"-MASTERDOWN Link with MASTER is down\r\n", Unavailable::Failover),
            (
                b"-READONLY You can't write against a read only replica.\r\n",
                Unavailable::Failover,
            ),
            (
                b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n",
                Unavailable::Failover,
            ),
            (b"-CLUSTERDOWN The cluster is down\r\n", Unavailable::Failover),
            (
                b"-NOREPLICAS Not enough good replicas to write.\r\n",
                Unavailable::NoReplicas,
            ),
        ];
        for (reply, reason) in cases {
            let error = server_error(reply);
            assert_eq!(error.unavailable(), Some(reason), "{error}");
        }
    }

    #[test]
    fn io_failures_and_timeouts_are_unavailable() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let reset = std::io::Error::from(std::io::ErrorKind::ConnectionReset);
        let timed_out = std::io::Error::from(std::io::ErrorKind::TimedOut);
        assert_eq!(
            StoreError::Redis(refused.into()).unavailable(),
            Some(Unavailable::Unreachable)
        );
        assert_eq!(
            StoreError::Redis(reset.into()).unavailable(),
            Some(Unavailable::Unreachable)
        );
        assert_eq!(
            StoreError::Redis(timed_out.into()).unavailable(),
            Some(Unavailable::TimedOut)
        );
        assert_eq!(StoreError::Timeout(5000).unavailable(), Some(Unavailable::TimedOut));
    }

    #[test]
    fn our_own_bugs_are_not() {
        for reply in [
            &b"-ERR unknown command 'FOO'\r\n"[..],
            b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n",
            b"-NOSCRIPT No matching script.\r\n",
            b"-NOPERM this user has no permissions to run the 'xadd' command\r\n",
        ] {
            let error = server_error(reply);
            assert_eq!(error.unavailable(), None, "{error}");
        }
        assert_eq!(StoreError::Corrupt("x".into()).unavailable(), None);
        assert_eq!(StoreError::Fenced.unavailable(), None);
    }

    #[test]
    fn an_outage_is_warned_of_once() {
        let error = StoreError::Timeout(1);
        let first = note_outage(Unavailable::Unreachable, "a test", &error);
        assert_eq!(first, Noted::Began);
        assert_eq!(
            note_outage(Unavailable::Unreachable, "a test", &error),
            Noted::Continues
        );
        assert_eq!(note_outage(Unavailable::Loading, "a test", &error), Noted::Changed);
        assert_eq!(note_outage(Unavailable::Loading, "a test", &error), Noted::Continues);
    }
}
