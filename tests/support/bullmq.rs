//! WildDuck's side of the BullMQ queue: `tests/node/wildduck-queue.js`, which publishes with the
//! real `bullmq` package exactly as WildDuck's `lib/events.js` does, at the version WildDuck
//! pins (5.23.1) or the newest 5.x (`tests/node/package.json`; `scripts/test` runs `npm ci`).

use std::path::PathBuf;
use std::process::Stdio;

use serde_json::Value;
use tokio::io::AsyncWriteExt;

/// Which bullmq package publishes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Bullmq {
    /// 5.23.1, the version WildDuck 1.45 pins.
    WildDucks,
    /// The newest 5.x in the lock file.
    Latest,
}

impl Bullmq {
    fn arg(self) -> &'static str {
        match self {
            Bullmq::WildDucks => "5-23",
            Bullmq::Latest => "latest",
        }
    }
}

fn node_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/node");
    assert!(
        dir.join("node_modules/bullmq-5-23").exists() && dir.join("node_modules/bullmq-latest").exists(),
        "the Node test packages are missing: run `scripts/test --setup-only` (npm ci in tests/node)"
    );
    dir
}

/// WildDuck's queue `webhooks` under a BullMQ prefix, in a Redis.
#[derive(Clone, Debug)]
pub struct WildDuckQueue {
    pub version: Bullmq,
    pub redis_url: String,
    /// BullMQ's prefix (WildDuck: `wd:bull`); tests put it under their own key prefix.
    pub prefix: String,
}

impl WildDuckQueue {
    pub fn new(version: Bullmq, redis_url: &str, prefix: &str) -> WildDuckQueue {
        WildDuckQueue {
            version,
            redis_url: redis_url.into(),
            prefix: prefix.into(),
        }
    }

    /// A key of the queue: `<prefix>:webhooks:<rest>`.
    pub fn key(&self, rest: &str) -> String {
        format!("{}:webhooks:{rest}", self.prefix)
    }

    /// `node wildduck-queue.js <version> <url> <prefix> <args…>`, killed when dropped.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new("node");
        command
            .current_dir(node_dir())
            .arg("wildduck-queue.js")
            .arg(self.version.arg())
            .arg(&self.redis_url)
            .arg(&self.prefix)
            .args(args)
            .kill_on_drop(true);
        command
    }

    /// Lines of JSON, one event each: what `add` reads.
    fn lines(events: &[Value]) -> Vec<u8> {
        let mut input = Vec::new();
        for event in events {
            input.extend_from_slice(event.to_string().as_bytes());
            input.push(b'\n');
        }
        input
    }

    async fn node(&self, args: &[&str], stdin: Option<Vec<u8>>) -> Value {
        let mut command = self.command(args);
        command
            .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = command.spawn().expect("node runs (scripts/test installs it)");
        if let Some(input) = stdin {
            let mut pipe = child.stdin.take().expect("stdin");
            pipe.write_all(&input).await.expect("write to node");
            drop(pipe);
        }
        let output = child.wait_with_output().await.expect("node finishes");
        assert!(
            output.status.success(),
            "wildduck-queue.js {args:?} failed: {:?}",
            output.status
        );
        serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
            panic!(
                "wildduck-queue.js printed {:?} ({e})",
                String::from_utf8_lossy(&output.stdout)
            )
        })
    }

    /// Like [`WildDuckQueue::add`], but None instead of a panic when node fails or takes more
    /// than `limit` (Redis down: it may have added some).
    pub async fn try_add(&self, events: &[Value], limit: std::time::Duration) -> Option<usize> {
        let mut child = self
            .command(&["add"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut pipe = child.stdin.take()?;
        pipe.write_all(&Self::lines(events)).await.ok()?;
        drop(pipe);
        let output = actix_rt::time::timeout(limit, child.wait_with_output())
            .await
            .ok()?
            .ok()?;
        let reply: Value = serde_json::from_slice(&output.stdout).ok()?;
        output
            .status
            .success()
            .then(|| reply["added"].as_u64())
            .flatten()
            .map(|n| n as usize)
    }

    /// Publishes each event as WildDuck does; returns how many jobs were added.
    pub async fn add(&self, events: &[Value]) -> usize {
        self.add_with(events, None).await
    }

    /// Like [`WildDuckQueue::add`], with job options merged over WildDuck's (delay, priority).
    pub async fn add_with(&self, events: &[Value], options: Option<Value>) -> usize {
        let input = Self::lines(events);
        let options = options.map(|o| o.to_string());
        let mut args = vec!["add"];
        if let Some(options) = &options {
            args.push(options);
        }
        let reply = self.node(&args, Some(input)).await;
        reply["added"].as_u64().expect("added") as usize
    }

    /// `Queue.getJobCounts()`, plus `stalled` (the stalled set's size), `jobKeys` (job keys
    /// left under the queue) and `isPaused`.
    pub async fn counts(&self) -> Value {
        self.node(&["counts"], None).await
    }

    /// Asserts that BullMQ sees the queue drained: nothing waiting, active, delayed,
    /// prioritized, paused, stalled, completed or failed, and no job keys left.
    pub async fn assert_drained(&self) {
        let counts = self.counts().await;
        if let Some(problem) = undrained(&counts) {
            panic!("{problem} in {counts}");
        }
    }

    /// Waits (up to `timeout`) until BullMQ sees the queue drained, as [`Self::assert_drained`].
    pub async fn wait_until_drained(&self, timeout: std::time::Duration) {
        super::eventually("BullMQ to report the queue drained", timeout, || async {
            undrained(&self.counts().await).is_none().then_some(())
        })
        .await;
    }

    /// A steady WildDuck publisher (`wildduck-queue.js produce`): each line written to its
    /// stdin (one event, with a number `n`) is added as WildDuck adds it, and a line of JSON is
    /// printed for each as its add settles (`n`, and `replicas` from a `WAIT` when `options` asks
    /// for one, or `error`). Killed when dropped. With a `sentinel://<name>@host:port,…` URL,
    /// ioredis follows the primary through a failover, as WildDuck's does.
    pub fn producer(&self, options: &Value) -> tokio::process::Child {
        let options = options.to_string();
        self.command(&["produce", &options])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("node runs (scripts/test installs it)")
    }

    pub async fn pause(&self) {
        self.node(&["pause"], None).await;
    }

    pub async fn resume(&self) {
        self.node(&["resume"], None).await;
    }

    /// A WildDuck worker (BullMQ `Worker`, lock and stalled-check interval 1 s) that takes one
    /// job and dies with SIGKILL while working on it: the job stays in `active`, and its lock
    /// expires.
    pub async fn die_working(&self) -> Value {
        self.node(&["die-working"], None).await
    }
}

/// What keeps BullMQ's counts from reading drained, if anything.
fn undrained(counts: &Value) -> Option<String> {
    for state in [
        "waiting",
        "active",
        "delayed",
        "prioritized",
        "paused",
        "completed",
        "failed",
        "waiting-children",
        "stalled",
    ] {
        if counts[state] != 0 {
            return Some(format!("{} {state}", counts[state]));
        }
    }
    (counts["jobKeys"] != serde_json::json!([])).then(|| format!("job keys left: {}", counts["jobKeys"]))
}
