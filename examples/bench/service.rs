//! The service under test, as a child process: start, wait until ready, read its memory and
//! CPU from /proc, call its API.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub struct Service {
    child: Child,
    pub port: u16,
    client: awc::Client,
}

/// The release binary next to this example (`target/release/examples/bench` → `target/release/hookrouter`).
pub fn binary() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe.parent().and_then(|p| p.parent()).expect("target dir");
    dir.join("hookrouter")
}

pub use super::ports::free_port;

impl Service {
    /// Starts the service with `prefix` and extra `HOOKROUTER__*` settings.
    pub fn start(redis: &str, prefix: &str, env: &[(&str, String)]) -> Service {
        let port = free_port();
        let mut command = Command::new(binary());
        command
            .arg("--config")
            .arg("/nonexistent.toml")
            .env("HOOKROUTER__API__LISTEN", format!("127.0.0.1:{port}"))
            .env("HOOKROUTER__REDIS__URL", redis)
            .env("HOOKROUTER__REDIS__PREFIX", prefix)
            .env("HOOKROUTER__SECURITY__ALLOW_CIDRS", "127.0.0.0/8")
            .env("RUST_LOG", "error")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (key, value) in env {
            command.env(key, value);
        }
        // In a session of its own, as systemd starts a service: its CPU priority then weighs
        // against Redis's (src/priority.rs), as it would in production.
        // SAFETY: setsid is async-signal-safe, and the closure allocates nothing.
        unsafe {
            use std::os::unix::process::CommandExt;
            command.pre_exec(|| rustix::process::setsid().map(drop).map_err(Into::into));
        }
        let child = command.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}); run `cargo build --release` first",
                binary().display()
            )
        });
        Service {
            child,
            port,

            client: awc::Client::builder().timeout(Duration::from_secs(60)).finish(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    pub async fn call(&self, method: &str, path: &str, body: Option<Value>) -> Option<Value> {
        let request = self.client.request(method.parse().unwrap(), self.url(path));
        let mut response = match body {
            Some(body) => request.send_json(&body).await.ok()?,
            None => request.send().await.ok()?,
        };
        response.json::<Value>().limit(64 << 20).await.ok()
    }

    /// Waits until the reader runs (the supervisor has loaded every webhook and started its
    /// actor); returns how long that took from now.
    pub async fn wait_ready(&self) -> Duration {
        let started = Instant::now();
        loop {
            if let Some(health) = self.call("GET", "/health", None).await {
                if health["reader"] == "running" {
                    return started.elapsed();
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "the service never became ready"
            );
            actix_rt::time::sleep(Duration::from_millis(10)).await;
        }
    }

    pub async fn create_webhook(&self, url: &str, types: &[&str], user: Option<&str>) -> String {
        let mut body = json!({"type": types, "url": url});
        if let Some(user) = user {
            body["user"] = json!(user);
        }
        let reply = self
            .call("POST", "/webhooks", Some(body))
            .await
            .expect("create answered");
        reply["id"]
            .as_str()
            .unwrap_or_else(|| panic!("create failed: {reply}"))
            .to_string()
    }

    /// `GET /metrics`, as text.
    pub async fn metrics(&self) -> String {
        let Ok(mut response) = self.client.get(self.url("/metrics")).send().await else {
            return String::new();
        };
        let body = response.body().limit(64 << 20).await.unwrap_or_default();
        String::from_utf8_lossy(&body).into_owned()
    }

    pub async fn backlog(&self, webhook: &str) -> u64 {
        let health = self.call("GET", &format!("/webhooks/{webhook}/health"), None).await;
        health.and_then(|h| h["backlog"].as_u64()).unwrap_or(u64::MAX)
    }

    /// Current resident memory, KiB.
    pub fn rss_kib(&self) -> u64 {
        status_field(self.pid(), "VmRSS:")
    }

    /// Peak resident memory since start, KiB.
    pub fn peak_rss_kib(&self) -> u64 {
        status_field(self.pid(), "VmHWM:")
    }

    /// User + system CPU seconds since start.
    pub fn cpu_seconds(&self) -> f64 {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid())).unwrap_or_default();
        // Fields after the command name (which is in parentheses and may hold spaces).
        let after = stat.rsplit_once(')').map(|(_, rest)| rest).unwrap_or("");
        let fields: Vec<&str> = after.split_whitespace().collect();
        let ticks = |i: usize| fields.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
        // utime and stime are fields 14 and 15 of /proc/pid/stat: 12 and 13 after the name.
        (ticks(11) + ticks(12)) / 100.0
    }

    /// `kill -9`, leaving the process's leases and in-flight deliveries as a crash would.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn status_field(pid: u32, name: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find(|l| l.starts_with(name))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}
