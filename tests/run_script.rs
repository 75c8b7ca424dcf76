//! `scripts/run`, the README's one run command, from nothing to a service that delivers: no
//! Redis answers at the configured URL (a free port), so the script starts one with
//! append-only persistence under its data directory, then the service with the arguments
//! given; SIGTERM stops the service and the Redis it started, whose data stays on disk.
//!
//! The release build is the one step left out: `HOOKROUTER_BIN` points the script at the
//! binary cargo built for the tests (a release build takes many minutes on the development
//! machine); everything else runs as a user runs it.

mod support;

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::process::free_port;
use support::{eventually, Receiver};

/// The script as a process group of its own, killed with whatever it started if the test
/// fails; the Redis it started is shut down and its data directory removed.
struct RunScript {
    child: Child,
    redis_port: u16,
    data: PathBuf,
}

impl Drop for RunScript {
    fn drop(&mut self) {
        let group = format!("-{}", self.child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.wait();
        // A daemonized redis-server leaves the group: ask it to go.
        let _ = Command::new("redis-cli")
            .args(["-p", &self.redis_port.to_string(), "shutdown", "nosave"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.data);
    }
}

/// Whether a Redis answers PING on `port`.
async fn redis_answers(port: u16) -> bool {
    let Ok(client) = redis::Client::open(format!("redis://127.0.0.1:{port}")) else {
        return false;
    };
    match client.get_multiplexed_async_connection().await {
        Ok(mut conn) => redis::cmd("PING").query_async::<String>(&mut conn).await.is_ok(),
        Err(_) => false,
    }
}

#[actix_web::test]
async fn the_run_command_alone_gets_from_nothing_to_a_service_that_delivers() {
    let redis_port = free_port();
    let api_port = free_port();
    let data = std::env::temp_dir().join(format!("hrtest-run-{redis_port}-{:08x}", rand::random::<u32>()));
    std::fs::create_dir_all(&data).expect("a data directory");
    assert!(!redis_answers(redis_port).await, "no Redis on the port yet");
    // Extra arguments go to the service: a config file naming the instance, which /health shows.
    let config = data.join("hookrouter.toml");
    std::fs::write(&config, "[instance]\nname = \"run-script-test\"\n").expect("write the config");

    let child = Command::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/run"))
        .arg("--config")
        .arg(&config)
        .env("HOOKROUTER_BIN", env!("CARGO_BIN_EXE_hookrouter"))
        .env("HOOKROUTER_DATA_DIR", &data)
        .env("HOOKROUTER__REDIS__URL", format!("redis://127.0.0.1:{redis_port}"))
        .env("HOOKROUTER__API__LISTEN", format!("127.0.0.1:{api_port}"))
        .env("HOOKROUTER__SECURITY__ALLOW_CIDRS", "127.0.0.0/8")
        .env("HOOKROUTER__INVARIANTS__ABORT_ON_VIOLATION", "true")
        .env("RUST_LOG", "warn")
        .process_group(0)
        .spawn()
        .expect("run scripts/run");
    let mut script = RunScript {
        child,
        redis_port,
        data: data.clone(),
    };

    let base = format!("http://127.0.0.1:{api_port}");
    let client = awc::Client::builder().timeout(Duration::from_secs(10)).finish();
    let health: Value = eventually(
        "the service to answer with Redis up",
        Duration::from_secs(60),
        || async {
            let mut response = client.get(format!("{base}/health")).send().await.ok()?;
            let health: Value = response.json().await.ok()?;
            (response.status() == 200).then_some(health)
        },
    )
    .await;
    assert_eq!(
        health["instance"], "run-script-test",
        "the arguments reached the service: {health}"
    );

    // The Redis it started keeps an append-only file under the data directory.
    let redis = redis::Client::open(format!("redis://127.0.0.1:{redis_port}")).expect("a redis url");
    let mut conn = redis
        .get_multiplexed_async_connection()
        .await
        .expect("the started redis");
    let appendonly: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("appendonly")
        .query_async(&mut conn)
        .await
        .expect("CONFIG GET");
    assert_eq!(appendonly, ["appendonly", "yes"]);
    let dir: Vec<String> = redis::cmd("CONFIG")
        .arg("GET")
        .arg("dir")
        .query_async(&mut conn)
        .await
        .expect("CONFIG GET");
    let redis_dir = data.canonicalize().expect("the data directory").join("redis");
    assert_eq!(PathBuf::from(&dir[1]), redis_dir);

    // It delivers.
    let receiver = Receiver::ok();
    let mut response = client
        .post(format!("{base}/webhooks"))
        .send_json(&json!({"type": ["*"], "url": receiver.url()}))
        .await
        .expect("POST /webhooks");
    assert_eq!(response.status(), 200, "{:?}", response.body().await);
    let mut response = client
        .post(format!("{base}/events"))
        .send_json(&json!({"ev": "user.created", "n": 1}))
        .await
        .expect("POST /events");
    assert_eq!(response.status(), 200, "{:?}", response.body().await);
    let received = receiver.wait_for(1, Duration::from_secs(15)).await;
    assert_eq!(received[0].json()["n"], 1);

    // SIGTERM: the service drains and exits 0, and the Redis the script started is stopped
    // with its data saved.
    let status = Command::new("kill")
        .args(["-TERM", &script.child.id().to_string()])
        .status()
        .expect("kill");
    assert!(status.success());
    let stopping = Instant::now();
    let exit = loop {
        if let Some(exit) = script.child.try_wait().expect("wait for scripts/run") {
            break exit;
        }
        assert!(
            stopping.elapsed() < Duration::from_secs(30),
            "scripts/run ends after SIGTERM"
        );
        actix_rt::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(exit.code(), Some(0), "the service's own exit status");
    assert!(!redis_answers(redis_port).await, "the Redis it started is stopped");
    let aof = std::fs::read_dir(redis_dir.join("appendonlydir"))
        .expect("the append-only directory")
        .count();
    assert!(aof >= 2, "an append-only file and its manifest are kept");
}
