//! What one delivery costs: the service's CPU (utime + stime from /proc), Redis's commands
//! (`INFO commandstats`, the sum of `calls=`) and Redis's CPU (`INFO cpu`, used_cpu_sys +
//! used_cpu_user), each read just before the first publish and just after the last delivery
//! and divided by the deliveries. Redis serves the whole run (and anything else on the
//! machine), so the snapshots are taken tightly around the publish→all-delivered window, and
//! the harness's own commands in it (its INFO, the publisher's XADDs, the broadcast's PINGs)
//! are taken out.

use std::collections::HashMap;

use redis::aio::MultiplexedConnection;

use super::service::Service;

/// One reading of the counters.
pub struct Snapshot {
    service_cpu_s: f64,
    redis_cpu_s: f64,
    calls: HashMap<String, u64>,
}

/// The cost per delivery over a window.
#[derive(Clone, Debug, Default)]
pub struct Cost {
    pub deliveries: u64,
    pub service_cpu_us: f64,
    pub redis_cpu_us: f64,
    pub redis_commands: f64,
    /// Commands per delivery, most first.
    pub top: Vec<(String, f64)>,
}

/// A connection of its own for the snapshots.
pub struct Probe {
    conn: MultiplexedConnection,
}

/// `name: value` lines of an INFO reply.
fn info_field(info: &str, name: &str) -> Option<f64> {
    info.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
        .and_then(|v| v.trim().parse().ok())
}

/// `cmdstat_<name>:calls=<n>,...` lines: calls per command.
fn command_calls(info: &str) -> HashMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats.split(',').find_map(|s| s.strip_prefix("calls="))?.parse().ok()?;
            Some((name.to_string(), calls))
        })
        .collect()
}

impl Probe {
    pub async fn connect(redis: &str) -> Probe {
        let client = redis::Client::open(redis).expect("redis url");
        let conn = client
            .get_multiplexed_async_connection()
            .await
            .expect("redis is running");
        Probe { conn }
    }

    /// Reads Redis's counters and the CPU of `services`.
    pub async fn snapshot(&mut self, services: &[&Service]) -> Snapshot {
        // One INFO for both sections (Redis >= 7 takes several).
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .arg("cpu")
            .query_async(&mut self.conn)
            .await
            .expect("INFO commandstats cpu");
        Snapshot {
            service_cpu_s: services.iter().map(|s| s.cpu_seconds()).sum(),
            redis_cpu_s: info_field(&info, "used_cpu_sys").unwrap_or(0.0)
                + info_field(&info, "used_cpu_user").unwrap_or(0.0),
            calls: command_calls(&info),
        }
    }
}

impl Cost {
    /// The cost per delivery between two snapshots, without the harness's own `harness`
    /// commands (name, calls) and its INFO.
    pub fn between(before: &Snapshot, after: &Snapshot, deliveries: u64, harness: &[(&str, u64)]) -> Cost {
        let per = |v: f64| if deliveries > 0 { v / deliveries as f64 } else { 0.0 };
        let mut top: Vec<(String, f64)> = after
            .calls
            .iter()
            .filter(|(name, _)| name.as_str() != "info")
            .map(|(name, calls)| {
                let ours = harness.iter().find(|(n, _)| n == name).map_or(0, |(_, c)| *c);
                let delta = calls.saturating_sub(before.calls.get(name).copied().unwrap_or(0));
                (name.clone(), delta.saturating_sub(ours))
            })
            .filter(|(_, calls)| *calls > 0)
            .map(|(name, calls)| (name, per(calls as f64)))
            .collect();
        top.sort_by(|a, b| b.1.total_cmp(&a.1));
        Cost {
            deliveries,
            service_cpu_us: per((after.service_cpu_s - before.service_cpu_s) * 1e6),
            redis_cpu_us: per((after.redis_cpu_s - before.redis_cpu_s) * 1e6),
            redis_commands: top.iter().map(|(_, c)| c).sum(),
            top,
        }
    }

    /// "service 18.2 µs CPU, Redis 6.1 µs CPU and 1.32 commands (xadd 1.00, ...) per delivery".
    pub fn describe(&self) -> String {
        let top: Vec<String> = self.top.iter().take(6).map(|(n, c)| format!("{n} {c:.3}")).collect();
        format!(
            "per delivery: service {:.1} µs CPU, Redis {:.1} µs CPU, {:.2} Redis commands ({}) over {} deliveries",
            self.service_cpu_us,
            self.redis_cpu_us,
            self.redis_commands,
            top.join(", "),
            self.deliveries
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: &str = "# Commandstats\r\ncmdstat_xadd:calls=110,usec=5,usec_per_call=0.1,rejected_calls=0,failed_calls=0\r\n\
                        cmdstat_info:calls=7,usec=1\r\ncmdstat_ping:calls=3,usec=1\r\n# CPU\r\nused_cpu_sys:1.500000\r\n\
                        used_cpu_user:2.250000\r\n";

    #[test]
    fn reads_calls_and_cpu() {
        assert_eq!(command_calls(INFO)["xadd"], 110);
        assert_eq!(info_field(INFO, "used_cpu_user"), Some(2.25));
    }

    #[test]
    fn divides_by_deliveries_without_the_harness_commands() {
        let before = Snapshot {
            service_cpu_s: 1.0,
            redis_cpu_s: 1.0,
            calls: HashMap::from([("xadd".to_string(), 10), ("info".to_string(), 1)]),
        };
        let after = Snapshot {
            service_cpu_s: 1.5,
            redis_cpu_s: 1.1,
            calls: command_calls(INFO),
        };
        let cost = Cost::between(&before, &after, 50, &[("xadd", 50), ("ping", 3)]);
        assert_eq!(cost.top, vec![("xadd".to_string(), 1.0)]);
        assert!((cost.service_cpu_us - 10_000.0).abs() < 1e-6);
        assert!((cost.redis_cpu_us - 2_000.0).abs() < 1e-6);
    }
}
