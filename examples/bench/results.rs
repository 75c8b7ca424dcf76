//! Each scenario's figures turned into the table's rows, notes and targets, then printed.

use std::time::Duration;

use super::broadcast::Pings;
use super::bullmq::{self, BullMqFindings};
use super::ceiling::Ceiling;
use super::instances::Handover;
use super::one_host::OneHost;
use super::report::{self, Row, Target};
use super::scale::{BacklogFindings, ManyFindings};
use super::scenarios::Isolation;

#[derive(Default)]
pub struct Results {
    rows: Vec<Row>,
    targets: Vec<Target>,
    notes: Vec<String>,
    /// The plain throughput scenario's deliveries/s, for the scenarios compared with it.
    plain_throughput: Option<f64>,
}

fn p99(row: &Row) -> f64 {
    row.latency.map_or(f64::MAX, |l| l.p99)
}

impl Results {
    pub fn throughput(&mut self, row: Row, ceiling: &Ceiling) {
        self.plain_throughput = Some(row.rate);
        println!("{}: {:.0} deliveries/s", row.scenario, row.rate);
        let limit = ceiling.rate();
        self.targets.push(Target {
            what: "throughput >= 0.5 x the sink's ceiling".into(),
            measured: format!(
                "{:.0}/s = {:.2} x {limit:.0}/s{}; {:.2} x the built-in awc generator's {:.0}/s",
                row.rate,
                row.rate / limit,
                ceiling.flag(),
                row.rate / ceiling.awc,
                ceiling.awc
            ),
            met: row.rate >= 0.5 * limit,
        });
        if row.latency.is_none() {
            self.notes.push(format!(
                "{}: counted from nginx's stub_status (requests, the status polls taken out): counts and rate only, \
                 no latency",
                row.scenario
            ));
        }
        if let Some(cost) = &row.cost {
            self.notes.push(format!("{}: {}", row.scenario, cost.describe()));
            self.targets.push(Target {
                what: "service CPU <= 12 µs per delivery (throughput)".into(),
                measured: format!("{:.1} µs", cost.service_cpu_us),
                met: cost.service_cpu_us <= 12.0,
            });
            self.targets.push(Target {
                what: "Redis commands per delivery <= 1.5 (throughput)".into(),
                measured: format!("{:.2}", cost.redis_commands),
                met: cost.redis_commands <= 1.5,
            });
        }
        self.rows.push(row);
    }

    pub fn refusing(&mut self, row: Row) {
        println!("throughput with 2% refused: {:.0} accepted deliveries/s", row.rate);
        if let Some(cost) = &row.cost {
            self.notes.push(format!("throughput, 2% refused: {}", cost.describe()));
        }
        match self.plain_throughput {
            Some(clean) => self.targets.push(Target {
                what: "2% refused: accepted deliveries/s >= 0.9 x the clean run".into(),
                measured: format!("{:.0}/s = {:.2} x {clean:.0}/s", row.rate, row.rate / clean),
                met: row.rate >= 0.9 * clean,
            }),
            None => self
                .notes
                .push("2% refused: run with --scenario throughput too, to compare with a clean run".into()),
        }
        self.rows.push(row);
    }

    /// The same blast without flow control, run just after: what the adaptive start costs.
    pub fn throughput_without_flow_control(&mut self, row: Row) {
        let plain = self.plain_throughput.unwrap_or(0.0);
        println!("throughput without flow control: {:.0} deliveries/s", row.rate);
        self.notes.push(format!(
            "throughput with flow control (adaptive start at 2, per-host cap 64): {plain:.0} deliveries/s; the same \
             run without it (no cap, 16 in flight from the start): {:.0}/s = {:.2} x",
            row.rate,
            plain / row.rate.max(1.0)
        ));
        self.targets.push(Target {
            what: "throughput: no loss from the adaptive start (>= 0.95 x without flow control)".into(),
            measured: format!("{:.2} x", plain / row.rate.max(1.0)),
            met: plain >= 0.95 * row.rate,
        });
        self.rows.push(row);
    }

    /// Retention's cost: deliveries/s and cost per delivery with events retained and without,
    /// and the Redis memory the retained events take.
    pub fn retention(&mut self, found: super::retention::RetentionCost) {
        let super::retention::RetentionCost {
            with,
            without,
            retained,
            bytes,
        } = found;
        let per_event = bytes as f64 / retained.max(1) as f64;
        let cost = |row: &Row| {
            row.cost.as_ref().map_or("?".into(), |c| {
                format!(
                    "service {:.1} µs, Redis {:.1} µs and {:.2} commands per delivery",
                    c.service_cpu_us, c.redis_cpu_us, c.redis_commands
                )
            })
        };
        println!(
            "retention: {:.0} deliveries/s retaining, {:.0}/s without; {per_event:.0} bytes per retained event",
            with.rate, without.rate
        );
        self.notes.push(format!(
            "retention: {retained} events retained take {:.1} MB of Redis ({per_event:.0} bytes each, the stream and \
             its index: {:.0} MB per million); deliveries/s retaining {:.0} ({}) vs {:.0} without ({}) = {:.2} x",
            bytes as f64 / 1e6,
            per_event,
            with.rate,
            cost(&with),
            without.rate,
            cost(&without),
            with.rate / without.rate.max(1.0)
        ));
        self.rows.extend([with, without]);
    }

    /// What `min_replicas_acked = 1` costs: deliveries/s and `POST /events` latency, without
    /// and with it, in one run (rounds 0, 1, 1, 0).
    pub fn replicas_acked(&mut self, runs: Vec<super::replicas::Acked>) {
        for line in super::replicas::describe(&runs) {
            println!("{line}");
            self.notes.push(line);
        }
        self.rows.extend(runs.into_iter().map(|run| run.row));
    }

    /// A broadcast to one host with flow control and without.
    pub fn one_host(&mut self, on: &OneHost, off: &OneHost) {
        for found in [on, off] {
            self.notes.push(format!(
                "broadcast-one-host ({}): {} of {} deliveries, {:.0}/s; nginx (worker_connections 4096) had at most \
                 {} connections open; {} dead letters; {} webhooks left with a backlog",
                found.label,
                found.delivered,
                found.expected,
                found.rate,
                found.connections_max,
                found.dead_letters,
                found.stalled
            ));
        }
        self.targets.push(Target {
            what: "broadcast-one-host: everything delivered, no dead letter, at most 64 (+1) connections".into(),
            measured: format!(
                "{} of {}, {} dead letters, {} connections at most",
                on.delivered, on.expected, on.dead_letters, on.connections_max
            ),
            met: on.delivered == on.expected && on.dead_letters == 0 && on.connections_max <= 65,
        });
    }

    pub fn throughput_tls(&mut self, row: Row, ceiling: &Ceiling) {
        println!("throughput over TLS: {:.0} deliveries/s", row.rate);
        let versus_plain = self.plain_throughput.map_or(String::new(), |plain| {
            format!(" = {:.2} x plain HTTP's {plain:.0}/s", row.rate / plain)
        });
        self.notes.push(format!(
            "throughput over TLS: {:.0} deliveries/s{versus_plain}, {:.2} x the TLS sink's ceiling of {:.0}/s{}; \
             {} deliveries over {} TLS connections (= handshakes; at most 10 webhooks x max_in_flight 16 = 160)",
            row.rate,
            row.rate / ceiling.rate(),
            ceiling.rate(),
            ceiling.flag(),
            row.deliveries,
            row.connections
        ));
        self.rows.push(row);
    }

    pub fn latency(&mut self, row: Row) {
        println!("latency: p99 {:.2} ms", p99(&row));
        self.targets.push(Target {
            what: "latency p99 <= 5 ms at 1,000 events/s x 10 webhooks".into(),
            measured: format!("p99 {:.2} ms", p99(&row)),
            met: p99(&row) <= 5.0,
        });
        self.rows.push(row);
    }

    pub fn isolation(&mut self, found: Isolation) {
        let cost = 1.0 - found.blast_beside.rate / found.blast_alone.rate;
        let slower = p99(&found.paced_beside) / p99(&found.paced_alone);
        println!(
            "isolation: black holes cost {:.1}% throughput, p99 x{slower:.2}",
            cost * 100.0
        );
        self.targets.push(Target {
            what: "black holes cost healthy webhooks <= 10% throughput".into(),
            measured: format!(
                "{:.0}/s alone, {:.0}/s beside 10 black holes ({:+.1}%)",
                found.blast_alone.rate,
                found.blast_beside.rate,
                -cost * 100.0
            ),
            met: cost <= 0.10,
        });
        self.targets.push(Target {
            what: "black holes cost healthy webhooks <= 2x p99 (at 1,000 events/s)".into(),
            measured: format!(
                "p99 {:.2} ms alone, {:.2} ms beside (x{slower:.2})",
                p99(&found.paced_alone),
                p99(&found.paced_beside)
            ),
            met: slower <= 2.0,
        });
        self.rows.extend([
            found.blast_alone,
            found.blast_beside,
            found.paced_alone,
            found.paced_beside,
        ]);
    }

    pub fn many(&mut self, row: Row, found: ManyFindings) {
        let describe = |costs: &[(usize, f64)]| -> Vec<String> {
            costs.iter().map(|(n, ns)| format!("{n}: {ns:.0} ns")).collect()
        };
        let matching = describe(&found.matching_ns);
        let wide = describe(&found.matching_wide_ns);
        self.notes.push(format!(
            "many webhooks: {} registered through the API at {:.0}/s; RSS per idle webhook {:.0} B (grown while \
             registering), {:.0} B after a restart; ready {:.2} s after a restart; routing cost per event {}; \
             with 256 patterns per webhook {}",
            found.webhooks,
            found.registration_per_s,
            found.bytes_per_webhook_registered,
            found.bytes_per_webhook_restarted,
            found.startup.as_secs_f64(),
            matching.join(", "),
            wide.join(", ")
        ));
        self.targets.push(Target {
            what: "<= 2 KB RSS per idle registered webhook".into(),
            measured: format!(
                "{:.0} B while registering, {:.0} B after a restart",
                found.bytes_per_webhook_registered, found.bytes_per_webhook_restarted
            ),
            met: found
                .bytes_per_webhook_registered
                .max(found.bytes_per_webhook_restarted)
                <= 2048.0,
        });
        let (smallest, largest) = (found.matching_ns[0].1, found.matching_ns[found.matching_ns.len() - 1].1);
        self.targets.push(Target {
            what: "matching cost per event flat from 1k to 100k webhooks".into(),
            measured: format!("{smallest:.0} ns -> {largest:.0} ns (x{:.2})", largest / smallest),
            met: largest <= smallest * 1.5,
        });
        let wide = &found.matching_wide_ns;
        let (fewest, most) = (wide[0].1, wide[wide.len() - 1].1);
        self.targets.push(Target {
            what: format!(
                "matching cost per event flat from {}k to {}k webhooks of 256 patterns",
                wide[0].0 / 1000,
                wide[wide.len() - 1].0 / 1000
            ),
            measured: format!("{fewest:.0} ns -> {most:.0} ns (x{:.2})", most / fewest),
            met: most <= fewest * 1.5,
        });
        self.targets.push(Target {
            what: format!("{} webhooks ready in <= 10 s", found.webhooks),
            measured: format!("{:.2} s", found.startup.as_secs_f64()),
            met: found.startup <= Duration::from_secs(10),
        });
        self.rows.push(row);
    }

    pub fn backlog(&mut self, row: Row, found: BacklogFindings) {
        let growth = found.rss_queued_mib - found.rss_before_mib;
        self.notes.push(format!(
            "backlog: {} events queued for a dead endpoint in {:.1} s; RSS {:.1} MiB before, {:.1} MiB with the backlog \
             (Redis holds it: +{:.0} MiB); drained in {:.1} s when it came back",
            found.queued,
            found.queue_seconds,
            found.rss_before_mib,
            found.rss_queued_mib,
            found.redis_mib,
            found.drain_seconds
        ));
        self.targets.push(Target {
            what: format!("RSS growth <= 50 MB with {} queued", found.queued),
            measured: format!("{growth:+.1} MiB"),
            met: growth <= 50.0,
        });
        self.rows.push(row);
    }

    pub fn bullmq(&mut self, row: Row, found: BullMqFindings) {
        let baseline = bullmq::WILDDUCK_WORKER_PER_S;
        self.notes.push(format!(
            "WildDuck's BullMQ queue: {} jobs added by WildDuck's publisher (bullmq 5.23.1) in {:.1} s; the BullMQ source \
             moved {:.0} jobs/s; {:.0} deliveries/s to 10 webhooks. Baseline: WildDuck 1.45.4's own worker, 10 webhooks, \
             {baseline:.0} deliveries/s (measured with WildDuck, not by this harness)",
            found.jobs, found.publish_seconds, found.moved_per_s, row.rate,
        ));
        self.targets.push(Target {
            what: format!(
                "WildDuck's queue delivers faster than WildDuck 1.45.4's worker ({baseline:.0}/s, 10 webhooks)"
            ),
            measured: format!("{:.0}/s (x{:.1})", row.rate, row.rate / baseline),
            met: row.rate > baseline,
        });
        self.rows.push(row);
    }

    /// The broadcast at `instance.nice` 19 (the advice beside Redis), and the baseline at 0 (the
    /// default).
    pub fn broadcast(&mut self, (row, pings): (Row, Pings), (base_row, base): (Row, Pings)) {
        let beside = self
            .plain_throughput
            .map_or(String::new(), |plain| format!(" (10-webhook throughput: {plain:.0}/s)"));
        println!("broadcast: {:.0} deliveries/s{beside}", row.rate);
        self.notes.push(format!(
            "broadcast: {} events x 1000 webhooks: {:.0} deliveries/s{beside}; Redis PING meanwhile (one at a time, \
             1 ms apart, {} round trips): worst {:.2} ms, p99 {:.2} ms; Redis's slow log meanwhile: {} commands of 1 ms \
             or more, the longest {}, the longest fan-out script {:.1} ms",
            row.events,
            row.rate,
            pings.count,
            pings.worst_ms,
            pings.p99_ms,
            pings.slow.count,
            pings
                .slow
                .longest
                .as_ref()
                .map_or("-".to_string(), |(name, ms)| format!("{name} {ms:.1} ms")),
            pings.slow.fanout_ms,
        ));
        if let Some(cost) = &row.cost {
            self.notes.push(format!("broadcast: {}", cost.describe()));
        }
        self.notes.push(format!(
            "broadcast baseline, the same run with the service at instance.nice 0 (the default): {:.0} deliveries/s; Redis PING \
             worst {:.2} ms, p99 {:.2} ms; the longest fan-out script {:.1} ms",
            base_row.rate, base.worst_ms, base.p99_ms, base.slow.fanout_ms,
        ));
        self.targets.push(Target {
            what: "broadcast: Redis PING never above 10 ms".into(),
            measured: format!("worst {:.2} ms, p99 {:.2} ms", pings.worst_ms, pings.p99_ms),
            met: pings.worst_ms <= 10.0,
        });
        self.targets.push(Target {
            what: "broadcast: no fan-out script holds Redis over 10 ms (its slow log)".into(),
            measured: format!("longest {:.1} ms", pings.slow.fanout_ms),
            met: pings.slow.fanout_ms <= 10.0,
        });
        self.rows.push(row);
        self.rows.push(base_row);
    }

    /// Issue 9's figures: 1 vs 2 instances in steady state, and the handover after a kill -9.
    pub fn instances(&mut self, one: (Row, u64), two: (Row, u64), handover: Handover) {
        let ((one, one_dupes), (two, two_dupes)) = (one, two);
        println!(
            "instances: 1 instance {:.0} deliveries/s, 2 instances {:.0} deliveries/s",
            one.rate, two.rate
        );
        self.notes.push(format!(
            "instances: 10 webhooks, {} events as fast as published: 1 instance {:.0} deliveries/s ({one_dupes} \
             duplicates), 2 instances on one prefix {:.0} deliveries/s (x{:.2}, {two_dupes} duplicates)",
            one.events,
            one.rate,
            two.rate,
            two.rate / one.rate
        ));
        for row in [&one, &two] {
            if let Some(cost) = &row.cost {
                self.notes.push(format!("{}: {}", row.scenario, cost.describe()));
            }
        }
        self.targets.push(Target {
            what: "2 instances: no duplicates (steady state, no instance dies)".into(),
            measured: format!("{two_dupes} duplicates of {} pairs", two.events * 10),
            met: two_dupes == 0,
        });
        let resumed = handover
            .resumed_after
            .map_or("never (within 30 s)".into(), |d| format!("{:.2} s", d.as_secs_f64()));
        self.notes.push(format!(
            "handover: 3 instances, 10 webhooks at 1,000 events/s; kill -9 of {} (owning {} of 10): its webhooks \
             delivered events published after the kill again {resumed} after it (lease ttl 10 s); {} duplicates, \
             {} of them on its {} webhooks (bound: {} webhooks x max_in_flight 16 = {}); {} of {} pairs never \
             delivered",
            handover.killed,
            handover.moved,
            handover.duplicates,
            handover.duplicates_moved,
            handover.moved,
            handover.moved,
            handover.bound(),
            handover.missing,
            handover.events * 10
        ));
        self.rows.extend([one, two]);
    }

    pub fn print(&self, quick: bool) {
        println!("\n{}", report::table(&self.rows));
        for note in &self.notes {
            println!("{note}");
        }
        println!("\ntargets:\n{}", report::targets(&self.targets));
        if quick {
            println!(
                "(--quick: fewer events and 10k instead of 100k webhooks, so these figures are indicative; short runs \
                 are noisier and fixed overheads weigh more per webhook. The targets are judged on a full run.)"
            );
        }
    }
}
