//! Private redis-server processes for fault tests, on free loopback ports: a plain one, one
//! persisting to an append-only file, a TLS-only one, a replica, and Redis Sentinels.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use super::ports::free_port;

/// A private redis-server on its own port: without persistence, or with an append-only file
/// fsynced on every write ([`RedisProcess::persistent`]), so that a `kill -9` loses nothing it
/// acknowledged.
pub struct RedisProcess {
    child: Option<Child>,
    pub port: u16,
    /// Where the append-only file lives, when persistent.
    dir: Option<std::path::PathBuf>,
    /// More arguments for redis-server (TLS, `--replicaof`), after the others so that they win.
    extra: Vec<String>,
    /// A sentinel's configuration file (which the sentinel rewrites as it learns): set for
    /// [`RedisProcess::sentinel`], which starts from it alone.
    sentinel_conf: Option<std::path::PathBuf>,
}

impl RedisProcess {
    /// A port for a Redis that is not started yet.
    pub fn unstarted() -> RedisProcess {
        RedisProcess {
            child: None,
            port: free_port(),
            dir: None,
            extra: Vec::new(),
            sentinel_conf: None,
        }
    }

    /// A replica of the Redis on `primary_port` (`--replicaof`), not started yet.
    pub fn replica_of(primary_port: u16) -> RedisProcess {
        let mut redis = RedisProcess::unstarted();
        redis.extra = vec!["--replicaof".into(), "127.0.0.1".into(), primary_port.to_string()];
        redis
    }

    /// A Redis Sentinel watching the primary on `primary_port` as `master_name`, with a
    /// quorum of 2 and fast failure detection: down after `down_after_ms` without an answer, a
    /// failover retried after 5 s. Not started yet; its configuration file lives in a directory of its
    /// own (a sentinel rewrites it).
    pub fn sentinel(master_name: &str, primary_port: u16, down_after_ms: u64) -> RedisProcess {
        let mut redis = RedisProcess::unstarted();
        let dir = std::env::temp_dir().join(format!("hrtest-sentinel-{}-{:08x}", redis.port, rand::random::<u32>()));
        std::fs::create_dir_all(&dir).expect("a directory for the sentinel's configuration");
        let conf = dir.join("sentinel.conf");
        let text = format!(
            "port {port}\nbind 127.0.0.1\ndir {dir}\n\
             sentinel monitor {master_name} 127.0.0.1 {primary_port} 2\n\
             sentinel down-after-milliseconds {master_name} {down_after_ms}\n\
             sentinel failover-timeout {master_name} 5000\n\
             sentinel parallel-syncs {master_name} 1\n",
            port = redis.port,
            dir = dir.display(),
        );
        std::fs::write(&conf, text).expect("write the sentinel's configuration");
        redis.sentinel_conf = Some(conf);
        redis.dir = Some(dir);
        redis
    }

    /// Like [`RedisProcess::unstarted`], keeping its data in an append-only file
    /// (`appendfsync always`) under a directory of its own, so every restart reloads it.
    pub fn persistent() -> RedisProcess {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("hrtest-redis-{port}-{:08x}", rand::random::<u32>()));
        std::fs::create_dir_all(&dir).expect("a directory for the append-only file");
        RedisProcess {
            child: None,
            port,
            dir: Some(dir),
            extra: Vec::new(),
            sentinel_conf: None,
        }
    }

    /// Like [`RedisProcess::unstarted`], speaking only TLS on its port (`--port 0 --tls-port`)
    /// with the certificate and key files given, trusting `ca` for client certificates, which
    /// it requires when `clients_need_certificates`. Start it with
    /// [`RedisProcess::start_listening`].
    pub fn tls_only(
        cert: &std::path::Path,
        key: &std::path::Path,
        ca: &std::path::Path,
        clients_need_certificates: bool,
    ) -> RedisProcess {
        let mut redis = RedisProcess::unstarted();
        let path = |p: &std::path::Path| p.to_str().expect("a UTF-8 path").to_string();
        redis.extra = vec![
            "--port".into(),
            "0".into(),
            "--tls-port".into(),
            redis.port.to_string(),
            "--tls-cert-file".into(),
            path(cert),
            "--tls-key-file".into(),
            path(key),
            "--tls-ca-cert-file".into(),
            path(ca),
            "--tls-auth-clients".into(),
            if clients_need_certificates { "yes" } else { "no" }.into(),
        ];
        redis
    }

    /// More redis-server arguments (`--maxmemory`, ...), after the others so that they win.
    pub fn with_args(mut self, args: &[&str]) -> RedisProcess {
        self.extra.extend(args.iter().map(|arg| arg.to_string()));
        self
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts (or restarts) the server and waits until it answers: empty, or with what its
    /// append-only file holds.
    pub async fn start(&mut self) {
        self.spawn();
        let url = self.url();
        // A persistent server first loads its AOF, answering LOADING meanwhile: after half an
        // hour of soak traffic on a busy 2-core machine that took longer than 10 s.
        let patience = Duration::from_secs(if self.dir.is_some() { 90 } else { 10 });
        super::eventually("the private redis to answer", patience, || async {
            let client = redis::Client::open(url.as_str()).ok()?;
            let mut conn = client.get_multiplexed_async_connection().await.ok()?;
            redis::cmd("PING")
                .query_async::<String>(&mut conn)
                .await
                .ok()
                .map(|_| ())
        })
        .await;
    }

    /// Starts (or restarts) the server and waits only until it accepts connections: a
    /// persistent one may still be loading its append-only file then, answering `LOADING`; a
    /// TLS-only one cannot be PINGed in plain text.
    pub async fn start_listening(&mut self) {
        self.spawn();
        let address = format!("127.0.0.1:{}", self.port);
        super::eventually("the private redis to listen", Duration::from_secs(10), || async {
            tokio::net::TcpStream::connect(&address).await.ok().map(drop)
        })
        .await;
    }

    /// Sends a command (`args[0]` and its arguments) and returns the answer; panics on an error.
    pub async fn command(&self, args: &[&str]) -> redis::Value {
        command_at(self.port, args).await
    }

    /// Writes `keys` keys of `bytes` bytes each outside any test prefix (`fill:<n>`), in one
    /// script, so that a restart has that much to load.
    pub async fn fill(&self, keys: u64, bytes: usize) {
        let client = redis::Client::open(self.url()).expect("a redis url");
        let script = "local v = string.rep('x', tonumber(ARGV[2])) \
            for i = 1, tonumber(ARGV[1]) do redis.call('SET', 'fill:' .. i, v) end return 1";
        let config = redis::AsyncConnectionConfig::new().set_response_timeout(Some(Duration::from_secs(120)));
        let mut slow = client
            .get_multiplexed_async_connection_with_config(&config)
            .await
            .expect("the private redis");
        let _: i64 = redis::cmd("EVAL")
            .arg(script)
            .arg(0)
            .arg(keys)
            .arg(bytes)
            .query_async(&mut slow)
            .await
            .expect("fill the private redis");
        let size: u64 = redis::cmd("DBSIZE").query_async(&mut slow).await.expect("DBSIZE");
        assert!(size >= keys, "filled with {keys} keys, holds {size}");
    }

    fn spawn(&mut self) {
        self.stop();
        if let Some(conf) = &self.sentinel_conf {
            let child = Command::new("redis-server")
                .arg(conf)
                .arg("--sentinel")
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("redis-server is installed");
            self.child = Some(child);
            return;
        }
        let port = self.port.to_string();
        let mut args = vec!["--port", &port, "--bind", "127.0.0.1", "--save", ""];
        match self.dir.as_ref().filter(|_| self.sentinel_conf.is_none()) {
            Some(dir) => args.extend([
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--dir",
                dir.to_str().expect("a UTF-8 temp path"),
            ]),
            None => args.extend(["--appendonly", "no"]),
        }
        let child = Command::new("redis-server")
            .args(&args)
            .args(&self.extra)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed");
        self.child = Some(child);
    }

    /// Kills the server (`kill -9`); its data is gone unless it is persistent.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Sends a command to the Redis on `port` and returns the answer; panics on an error.
pub async fn command_at(port: u16, args: &[&str]) -> redis::Value {
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}")).expect("a redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("the private redis");
    let mut cmd = redis::cmd(args[0]);
    for arg in &args[1..] {
        cmd.arg(*arg);
    }
    cmd.query_async(&mut conn).await.expect("the command")
}

impl Drop for RedisProcess {
    fn drop(&mut self) {
        self.stop();
        if let Some(dir) = &self.dir {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}
