//! Starting the real binary in the situations operators meet: the API port already taken, a
//! missing config file, Redis unreachable. What it says must be useful, and it must not panic.

mod support;

use std::time::{Duration, Instant};

use support::process::{free_port, ServiceProcess};
use support::{eventually, REDIS_URL};

fn log_file(prefix: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{prefix}.log"))
}

#[actix_web::test]
async fn a_port_already_taken_is_one_clear_error_naming_the_address() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = taken.local_addr().unwrap().to_string();
    let prefix = support::TestPrefix::new();
    let log = log_file(&prefix);
    let mut service = ServiceProcess::start_logging(
        REDIS_URL,
        &prefix,
        &[("HOOKROUTER__API__LISTEN", address.as_str())],
        Some(&log),
    );
    let status = eventually("the service to exit", Duration::from_secs(15), || {
        let status = service.try_exit_status();
        async move { status }
    })
    .await;
    let output = std::fs::read_to_string(&log).unwrap();
    println!("exit {status:?}; it said:\n{output}");
    assert!(!status.success());
    assert!(
        output.contains(&format!("cannot listen on {address}")),
        "the address is named: {output}"
    );
    assert!(output.contains("in use"), "{output}");
    assert!(!output.contains("panicked"), "{output}");
    let _ = std::fs::remove_file(&log);
}

#[actix_web::test]
async fn start_up_says_what_it_read_and_keeps_saying_that_redis_is_unreachable() {
    let prefix = support::TestPrefix::new();
    let log = log_file(&prefix);
    // Nothing listens on this port; the URL carries a password that must not be logged.
    let redis_url = format!("redis://:hunter2-redis-password@127.0.0.1:{}", free_port());
    let mut service = ServiceProcess::start_logging(&redis_url, &prefix, &[("RUST_LOG", "info")], Some(&log));
    service.wait_until_serving().await;
    let started = Instant::now();
    let output = eventually("two warnings about Redis", Duration::from_secs(15), || async {
        let output = std::fs::read_to_string(&log).unwrap_or_default();
        let warnings = output
            .lines()
            .filter(|l| l.contains("cannot serve: Redis is unreachable"))
            .count();
        (warnings >= 2).then_some(output)
    })
    .await;
    println!("after {:?}:\n{output}", started.elapsed());
    service.terminate();
    assert!(
        output.contains("/nonexistent/hookrouter.toml") && output.contains("does not exist"),
        "names the missing config file: {output}"
    );
    assert!(
        output.contains("redis://:***@127.0.0.1:"),
        "shows the Redis URL: {output}"
    );
    assert!(
        !output.contains("hunter2-redis-password"),
        "the password leaked: {output}"
    );
    assert!(!output.contains("panicked"), "{output}");
    let _ = std::fs::remove_file(&log);
}

/// The nice value of every thread of `pid` (the 19th field of `/proc/<pid>/task/<tid>/stat`;
/// the fields after the command name start with the 3rd).
fn thread_nices(pid: u32) -> Vec<i32> {
    std::fs::read_dir(format!("/proc/{pid}/task"))
        .expect("the service's threads")
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.ok()?.path().join("stat")).ok()?;
            stat.rsplit_once(") ")?.1.split_whitespace().nth(16)?.parse().ok()
        })
        .collect()
}

fn autogroup(pid: &str) -> String {
    std::fs::read_to_string(format!("/proc/{pid}/autogroup")).expect("autogroups (sched_autogroup)")
}

/// Scheduling priority is the operator's decision: by default the service leaves its own as
/// it was started (a lowered default also slowed its lease renewals and its API).
#[actix_web::test]
async fn by_default_the_service_keeps_the_priority_it_was_started_with() {
    let ours = thread_nices(std::process::id())[0];
    let prefix = support::TestPrefix::new();
    let service = ServiceProcess::start(REDIS_URL, &prefix, &[]);
    service.wait_until_reading().await;
    let nices = thread_nices(service.pid());
    assert!(nices.len() >= 4, "{nices:?}");
    assert!(
        nices.iter().all(|nice| *nice == ours),
        "ours {ours}, the service's {nices:?}"
    );
}

#[actix_web::test]
async fn the_service_lowers_every_thread_but_not_the_session_it_was_started_from() {
    let ours = autogroup("self");
    let prefix = support::TestPrefix::new();
    let service = ServiceProcess::start(REDIS_URL, &prefix, &[("HOOKROUTER__INSTANCE__NICE", "19")]);
    service.wait_until_reading().await;
    let nices = thread_nices(service.pid());
    println!("threads' nice: {nices:?}; our autogroup {ours:?}");
    // The delivery threads and the API's workers start after the lowering and inherit it.
    assert!(nices.len() >= 4, "{nices:?}");
    assert!(nices.iter().all(|nice| *nice == 19), "{nices:?}");
    // It shares the test's session, which it does not lead: that group stays as it was.
    assert_eq!(autogroup(&service.pid().to_string()), ours);
    assert_eq!(autogroup("self"), ours);
}

#[actix_web::test]
async fn a_service_leading_its_own_session_lowers_the_sessions_autogroup_too() {
    let prefix = support::TestPrefix::new();
    let service = ServiceProcess::start_in_own_session(REDIS_URL, &prefix, &[("HOOKROUTER__INSTANCE__NICE", "7")]);
    service.wait_until_reading().await;
    let group = autogroup(&service.pid().to_string());
    let nices = thread_nices(service.pid());
    println!("autogroup {group:?}; threads' nice: {nices:?}");
    assert!(group.trim_end().ends_with(" nice 7"), "{group:?}");
    assert_ne!(group, autogroup("self"), "a group of its own");
    assert!(nices.iter().all(|nice| *nice == 7), "{nices:?}");
}
