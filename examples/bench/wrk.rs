//! The ceiling from a real load generator: wrk (Debian's `wrk` package), POSTing the same body
//! over the same number of keep-alive connections, through a small Lua script.
//!
//! One wrk thread (`-t1`): on two cores the sink (one worker thread, or one nginx worker) takes
//! one core, and one wrk thread, an event loop in C with nothing else to do, drives 160
//! connections from the other. A second wrk thread has no core of its own: it would take CPU
//! from the sink it measures and lower the figure (see docs/benchmarks.md).

use std::time::Duration;

use bytes::Bytes;

/// wrk's threads (`-t`), see the module's comment.
pub const THREADS: usize = 1;

/// The Lua script that makes wrk POST `body` as JSON.
fn script(body: &[u8]) -> String {
    let body = String::from_utf8_lossy(body);
    assert!(!body.contains("]==]"), "the body cannot go in a Lua long string");
    format!("wrk.method = \"POST\"\nwrk.body = [==[{body}]==]\nwrk.headers[\"Content-Type\"] = \"application/json\"\n")
}

/// The figure after `Requests/sec:` in wrk's output.
fn requests_per_s(output: &str) -> Option<f64> {
    output
        .lines()
        .find_map(|line| line.trim().strip_prefix("Requests/sec:"))
        .and_then(|v| v.trim().parse().ok())
}

/// The script in a temporary file, deleted when dropped.
struct Script(std::path::PathBuf);

impl Drop for Script {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// One wrk run: requests per second against `url` (http or https: wrk does not verify
/// certificates), or why there is none (wrk missing, or it failed).
async fn rate(url: &str, connections: usize, script: &Script, duration: Duration) -> Result<f64, String> {
    let output = tokio::process::Command::new("wrk")
        .arg(format!("-t{THREADS}"))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{}s", duration.as_secs().max(1)))
        .arg("--timeout")
        .arg("10s")
        .arg("-s")
        .arg(&script.0)
        .arg(url)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| format!("wrk could not run ({e}); install it with `apt-get install wrk`"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "wrk failed ({}): {}{}",
            output.status,
            text.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    if let Some(line) = text
        .lines()
        .find(|l| l.contains("Non-2xx") || l.contains("Socket errors"))
    {
        println!("  ! wrk against {url}: {}", line.trim());
    }
    requests_per_s(&text).ok_or_else(|| format!("no Requests/sec in wrk's output: {}", text.trim()))
}

/// The median of three wrk runs of `duration` each.
pub async fn ceiling(url: &str, connections: usize, body: &Bytes, duration: Duration) -> Result<f64, String> {
    let path = std::env::temp_dir().join(format!("hrbench-wrk-{}.lua", std::process::id()));
    std::fs::write(&path, script(body)).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    let script = Script(path);
    let mut rates = Vec::new();
    for _ in 0..3 {
        rates.push(rate(url, connections, &script, duration).await?);
    }
    rates.sort_by(|a, b| a.total_cmp(b));
    Ok(rates[1])
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_requests_per_second() {
        let output = "Running 3s test @ http://127.0.0.1:1/w/0\n  1 threads and 160 connections\n\
                      123456 requests in 3.00s, 9.30MB read\nRequests/sec:  41152.07\nTransfer/sec:      3.10MB\n";
        assert_eq!(super::requests_per_s(output), Some(41152.07));
        assert_eq!(super::requests_per_s("nothing"), None);
    }

    #[test]
    fn posts_the_body_as_json() {
        let script = super::script(br#"{"a":"b"}"#);
        assert!(script.contains(r#"wrk.body = [==[{"a":"b"}]==]"#), "{script}");
        assert!(script.contains("wrk.method = \"POST\""));
    }
}
