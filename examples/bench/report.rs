//! The results: one row per scenario in one table, the ceiling beside them, and the targets.

use std::fmt::Write;

use super::cost::Cost;

/// One measured scenario.
#[derive(Default, Clone)]
pub struct Row {
    pub scenario: String,
    pub events: u64,
    pub deliveries: u64,
    /// Deliveries per second.
    pub rate: f64,
    /// Publish→delivery latency percentiles, ms (None where not meaningful).
    pub latency: Option<Latency>,
    pub peak_rss_mib: f64,
    pub cpu_seconds: f64,
    /// The sink's ceiling this row is compared with (throughput-style rows): plain HTTP, or
    /// for the TLS row the TLS sink's.
    pub ceiling: Option<f64>,
    /// Connections the sink accepted during the run (over TLS: handshakes).
    pub connections: u64,
    /// What one delivery cost, where measured.
    pub cost: Option<Cost>,
}

#[derive(Clone, Copy)]
pub struct Latency {
    pub p50: f64,
    pub p90: f64,
    pub p99: f64,
    pub max: f64,
}

impl Latency {
    /// From samples in µs.
    pub fn of(mut samples: Vec<u32>) -> Option<Latency> {
        if samples.is_empty() {
            return None;
        }
        samples.sort_unstable();
        let at = |q: f64| f64::from(samples[((samples.len() - 1) as f64 * q).round() as usize]) / 1000.0;
        Some(Latency {
            p50: at(0.50),
            p90: at(0.90),
            p99: at(0.99),
            max: at(1.0),
        })
    }
}

/// A target and whether the run met it.
pub struct Target {
    pub what: String,
    pub measured: String,
    pub met: bool,
}

pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| {:<28} | {:>9} | {:>10} | {:>10} | {:>7} | {:>7} | {:>7} | {:>8} | {:>9} | {:>7} | {:>10} | {:>6} |",
        "scenario",
        "events",
        "deliveries",
        "deliv/s",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "peak RSS",
        "CPU s",
        "ceiling/s",
        "ratio"
    );
    let _ = writeln!(out, "|{}", "---|".repeat(12));
    for row in rows {
        let ms = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.2}"));
        let (ceiling_cell, ratio_cell) = match row.ceiling {
            Some(ceiling) => (format!("{ceiling:.0}"), format!("{:.2}", row.rate / ceiling)),
            None => ("-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "| {:<28} | {:>9} | {:>10} | {:>10.0} | {:>7} | {:>7} | {:>7} | {:>8} | {:>7.1} M | {:>7.1} | {:>10} | {:>6} |",
            row.scenario,
            row.events,
            row.deliveries,
            row.rate,
            ms(row.latency.map(|l| l.p50)),
            ms(row.latency.map(|l| l.p90)),
            ms(row.latency.map(|l| l.p99)),
            ms(row.latency.map(|l| l.max)),
            row.peak_rss_mib,
            row.cpu_seconds,
            ceiling_cell,
            ratio_cell
        );
    }
    out
}

pub fn targets(targets: &[Target]) -> String {
    let mut out = String::new();
    for target in targets {
        let _ = writeln!(
            out,
            "  [{}] {}: {}",
            if target.met { "met" } else { "MISSED" },
            target.what,
            target.measured
        );
    }
    out
}
