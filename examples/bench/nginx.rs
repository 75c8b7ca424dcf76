//! `--sink nginx`: nginx as the receiving end of the throughput scenario (and its ceiling), a
//! sink written in C that costs less per request than the actix one, so more of the machine is
//! left to the service. It answers 204 to every POST and counts nothing itself: deliveries are
//! counted from `stub_status`'s `requests` counter, so the row has counts and a rate, no latency.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::service::free_port;

pub struct Nginx {
    child: Child,
    pub port: u16,
    dir: PathBuf,
    client: awc::Client,
    /// Status requests made since start (each counts in `requests`).
    polls: std::cell::Cell<u64>,
}

/// One worker process: on two cores one nginx worker takes at most one core, as the actix sink's
/// one worker thread does, and leaves the other to the service and Redis (a second worker would
/// only compete with them). Keep-alive for the whole run, bodies kept in memory (never written
/// to disk), no access log. `return 204` answers a POST (a static file would answer 405).
fn config(dir: &std::path::Path, port: u16, worker_connections: usize) -> String {
    let dir = dir.display();
    format!(
        r#"worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log warn;
events {{
    worker_connections {worker_connections};
}}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 300s;
    client_body_buffer_size 1m;
    client_max_body_size 1m;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{
            return 204;
        }}
        location = /nginx_status {{
            stub_status;
        }}
    }}
}}
"#
    )
}

/// `requests`, `accepts` and the active connections from a stub_status page.
fn parse_status(page: &str) -> Option<(u64, u64, u64)> {
    let active = page
        .lines()
        .find_map(|l| l.strip_prefix("Active connections:"))
        .and_then(|n| n.trim().parse().ok())?;
    let mut lines = page.lines();
    lines.find(|l| l.trim_start().starts_with("server accepts"))?;
    let numbers: Vec<u64> = lines
        .next()?
        .split_whitespace()
        .filter_map(|n| n.parse().ok())
        .collect();
    Some((*numbers.get(2)?, *numbers.first()?, active))
}

/// What a status read found: requests and connections accepted since start, the status polls
/// themselves taken out.
#[derive(Clone, Copy)]
pub struct Counts {
    pub requests: u64,
    pub accepts: u64,
    /// Connections open now (the status poll's own included).
    pub active: u64,
}

impl Nginx {
    /// Starts nginx (`nginx -p <tmp> -c <tmp>/nginx.conf -g 'daemon off;'`) on a free port and
    /// waits until it answers.
    pub async fn start() -> Nginx {
        Nginx::start_with(10_000).await
    }

    /// Like [`Nginx::start`], with at most `worker_connections` connections at once (beyond,
    /// nginx refuses them, as a real ingress at its limit does).
    pub async fn start_with(worker_connections: usize) -> Nginx {
        let port = free_port();
        let dir = std::env::temp_dir().join(format!("hrbench-nginx-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("create nginx's temporary directory");
        let conf = dir.join("nginx.conf");
        std::fs::write(&conf, config(&dir, port, worker_connections)).expect("write nginx.conf");
        let child = Command::new("nginx")
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(&conf)
            .arg("-g")
            .arg("daemon off;")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start nginx ({e}); install it with `apt-get install nginx`"));
        let nginx = Nginx {
            child,
            port,
            dir,
            client: awc::Client::builder().timeout(Duration::from_secs(10)).finish(),
            polls: std::cell::Cell::new(0),
        };
        let started = Instant::now();
        while nginx.try_counts().await.is_none() {
            let log = std::fs::read_to_string(nginx.dir.join("error.log")).unwrap_or_default();
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "nginx never answered on port {port}: {log}"
            );
            actix_rt::time::sleep(Duration::from_millis(20)).await;
        }
        nginx
    }

    pub fn url(&self, webhook: usize) -> String {
        format!("http://127.0.0.1:{}/w/{webhook}", self.port)
    }

    async fn try_counts(&self) -> Option<Counts> {
        let url = format!("http://127.0.0.1:{}/nginx_status", self.port);
        let mut response = self.client.get(url).send().await.ok()?;
        self.polls.set(self.polls.get() + 1);
        let page = response.body().await.ok()?;
        let (requests, accepts, active) = parse_status(&String::from_utf8_lossy(&page))?;
        // The status page counts the request asking for it: every poll so far is in `requests`.
        Some(Counts {
            requests: requests.saturating_sub(self.polls.get()),
            accepts,
            active,
        })
    }

    /// Requests (other than status polls) and connections since start.
    pub async fn counts(&self) -> Counts {
        self.try_counts().await.expect("nginx's stub_status answers")
    }
}

impl Drop for Nginx {
    /// A fast shutdown (SIGTERM: the master stops its worker and waits for it); SIGKILL only if
    /// it has not exited within 3 s, since a killed master leaves its worker running.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(3);
        while matches!(self.child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn reads_stub_status() {
        let page = "Active connections: 161 \nserver accepts handled requests\n 170 170 3000123 \n\
                    Reading: 0 Writing: 1 Waiting: 160 \n";
        assert_eq!(super::parse_status(page), Some((3_000_123, 170, 161)));
        assert_eq!(super::parse_status("Active connections: 1"), None);
    }
}
