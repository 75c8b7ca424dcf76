//! Real processes for fault tests: the hookrouter binary as a child, and private
//! redis-server instances the tests may kill and restart (in `redis_process`).

use std::process::{Child, Command, Stdio};
use std::time::Duration;

pub use super::ports::free_port;
pub use super::redis_process::RedisProcess;

/// The hookrouter binary, running with `HOOKROUTER__*` settings from `env`.
pub struct ServiceProcess {
    child: Child,
    pub port: u16,
    /// How it was started: [`ServiceProcess::restart`] starts it the same way.
    command: Launch,
}

#[derive(Clone)]
struct Launch {
    redis_url: String,
    prefix: String,
    env: Vec<(String, String)>,
    log: Option<std::path::PathBuf>,
    /// In a session of its own, as systemd starts a service (see `src/priority.rs`).
    own_session: bool,
}

impl ServiceProcess {
    /// Starts the binary on a free port against `redis_url` with `prefix`, plus `env`.
    pub fn start(redis_url: &str, prefix: &str, env: &[(&str, &str)]) -> ServiceProcess {
        ServiceProcess::start_logging(redis_url, prefix, env, None)
    }

    /// Like [`ServiceProcess::start`], writing the service's logs (stderr) to `log`.
    pub fn start_logging(
        redis_url: &str,
        prefix: &str,
        env: &[(&str, &str)],
        log: Option<&std::path::Path>,
    ) -> ServiceProcess {
        ServiceProcess::launch(Launch::new(redis_url, prefix, env, log))
    }

    /// Like [`ServiceProcess::start`], in a session of its own (as systemd starts a service).
    pub fn start_in_own_session(redis_url: &str, prefix: &str, env: &[(&str, &str)]) -> ServiceProcess {
        let command = Launch {
            own_session: true,
            ..Launch::new(redis_url, prefix, env, None)
        };
        ServiceProcess::launch(command)
    }

    fn launch(command: Launch) -> ServiceProcess {
        let port = free_port();
        ServiceProcess {
            child: command.spawn(port),
            port,
            command,
        }
    }

    /// Starts the service again, on the same port with the same settings (after
    /// [`ServiceProcess::terminate`] or [`ServiceProcess::kill9`]).
    pub fn restart(&mut self) {
        self.child = self.command.spawn(self.port);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{}", self.port, path)
    }

    /// Resident memory of the process, in KiB (from /proc).
    pub fn rss_kib(&self) -> u64 {
        std::fs::read_to_string(format!("/proc/{}/status", self.child.id()))
            .ok()
            .and_then(|status| {
                status
                    .lines()
                    .find(|l| l.starts_with("VmRSS:"))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|kib| kib.parse().ok())
            })
            .unwrap_or(0)
    }

    /// A JSON API call; None when the service does not answer.
    pub async fn call(
        &self,
        method: &str,
        path: &str,
        body: Option<serde_json::Value>,
    ) -> Option<(u16, serde_json::Value)> {
        let client = awc::Client::builder().timeout(Duration::from_secs(30)).finish();
        let request = client.request(method.parse().unwrap(), self.url(path));
        let mut response = match body {
            Some(body) => request.send_json(&body).await.ok()?,
            None => request.send().await.ok()?,
        };
        let status = response.status().as_u16();
        let body = response.body().limit(64 * 1024 * 1024).await.ok()?;
        Some((status, serde_json::from_slice(&body).ok()?))
    }

    /// Creates a webhook and returns its id.
    pub async fn create_webhook(&self, url: &str, types: &[&str]) -> String {
        let (status, reply) = self
            .call(
                "POST",
                "/webhooks",
                Some(serde_json::json!({"type": types, "url": url})),
            )
            .await
            .expect("the service answers");
        assert_eq!(status, 200, "{reply}");
        reply["id"].as_str().unwrap().to_string()
    }

    /// Waits until `/health` answers (any status).
    pub async fn wait_until_serving(&self) {
        let client = awc::Client::default();
        super::eventually("the service to answer /health", Duration::from_secs(15), || async {
            client.get(self.url("/health")).send().await.ok().map(|_| ())
        })
        .await;
    }

    /// Waits until `/health` says the reader runs (the webhooks are loaded).
    pub async fn wait_until_reading(&self) {
        super::eventually("the reader to run", Duration::from_secs(15), || async {
            let (_, health) = self.health().await?;
            (health["reader"] == "running").then_some(())
        })
        .await;
    }

    /// `/health` as JSON, if it answers.
    pub async fn health(&self) -> Option<(u16, serde_json::Value)> {
        self.call("GET", "/health", None).await
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends a signal by name (`STOP`, `CONT`, `TERM`...).
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success(), "kill -{name} failed");
    }

    /// The instance's name, from `/health`.
    pub async fn instance(&self) -> String {
        let (_, health) = self.health().await.expect("the service answers");
        health["instance"].as_str().expect("an instance name").to_string()
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// SIGTERM, then waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        self.child.wait().expect("wait for hookrouter")
    }

    pub fn try_exit_status(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().ok().flatten()
    }
}

impl Launch {
    fn new(redis_url: &str, prefix: &str, env: &[(&str, &str)], log: Option<&std::path::Path>) -> Launch {
        Launch {
            redis_url: redis_url.to_string(),
            prefix: prefix.to_string(),
            env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            log: log.map(ToOwned::to_owned),
            own_session: false,
        }
    }

    fn spawn(&self, port: u16) -> Child {
        let mut command = Command::new(env!("CARGO_BIN_EXE_hookrouter"));
        command
            .arg("--config")
            .arg("/nonexistent/hookrouter.toml")
            .env("HOOKROUTER__API__LISTEN", format!("127.0.0.1:{port}"))
            .env("HOOKROUTER__REDIS__URL", &self.redis_url)
            .env("HOOKROUTER__REDIS__PREFIX", &self.prefix)
            .env("HOOKROUTER__EVENTS__BLOCK_MS", "100")
            .env("HOOKROUTER__WEBHOOKS__RESYNC_MS", "200")
            .env("HOOKROUTER__SECURITY__ALLOW_CIDRS", "127.0.0.0/8,::1/128")
            .env("RUST_LOG", "warn")
            // A broken invariant is a bug: the service aborts, and the test fails (`Drop`).
            .env("HOOKROUTER__INVARIANTS__ABORT_ON_VIOLATION", "true")
            .env("HOOKROUTER__INVARIANTS__CHECK_MS", "500")
            .stdout(Stdio::null())
            .stderr(match &self.log {
                Some(path) => Stdio::from(
                    std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .expect("open the log file"),
                ),
                None => Stdio::inherit(),
            });
        for (key, value) in &self.env {
            command.env(key, value);
        }
        if self.own_session {
            use std::os::unix::process::CommandExt;
            // SAFETY: setsid is async-signal-safe, and the closure allocates nothing.
            unsafe {
                command.pre_exec(|| rustix::process::setsid().map(drop).map_err(Into::into));
            }
        }
        command.spawn().expect("start the hookrouter binary")
    }
}

impl Drop for ServiceProcess {
    /// Kills the service; fails the test if it had aborted (a broken invariant: its log says
    /// which), unless the test is failing already.
    fn drop(&mut self) {
        use std::os::unix::process::ExitStatusExt;
        let aborted = self
            .child
            .try_wait()
            .ok()
            .flatten()
            .is_some_and(|status| status.signal() == Some(6));
        let _ = self.child.kill();
        let _ = self.child.wait();
        if aborted && !std::thread::panicking() {
            panic!("the hookrouter service aborted: an invariant was violated (see its log above)");
        }
    }
}

/// `hookrouter import-wildduck <path> [--dry-run]` against the shared Redis under `prefix`
/// (loopback destinations allowed); the exit code and what it printed.
pub async fn import_wildduck(prefix: &str, path: &std::path::Path, dry_run: bool) -> (i32, String) {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_hookrouter"));
    command
        .arg("--config")
        .arg("/nonexistent/hookrouter.toml")
        .arg("import-wildduck")
        .arg(path)
        .env("HOOKROUTER__REDIS__URL", super::REDIS_URL)
        .env("HOOKROUTER__REDIS__PREFIX", prefix)
        .env("HOOKROUTER__SECURITY__ALLOW_CIDRS", "127.0.0.0/8,::1/128")
        .env("RUST_LOG", "warn")
        .stderr(Stdio::inherit());
    if dry_run {
        command.arg("--dry-run");
    }
    let output = command.output().await.expect("run hookrouter import-wildduck");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}
