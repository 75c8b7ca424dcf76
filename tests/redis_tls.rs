//! Production Redis set-ups, with real redis-server processes on loopback: a TLS-only server
//! (certificates from a CA made by the test, client certificates required) and an ACL user
//! with a password. What works must deliver; what is wrong must stop the start with words
//! that say what, and never show a password.

mod support;

use std::time::Duration;

use serde_json::json;
use support::process::{RedisProcess, ServiceProcess};
use support::tls::{TempFile, TestCa};
use support::{eventually, unique_prefix, Receiver};

const WAIT: Duration = Duration::from_secs(15);

/// A TLS-only redis-server with a certificate for `localhost` from `ca`, requiring client
/// certificates from `ca`; the files live as long as it does.
struct TlsRedis {
    redis: RedisProcess,
    _files: (TempFile, TempFile, TempFile),
}

async fn tls_redis(ca: &TestCa) -> TlsRedis {
    let (cert, key) = ca.issue(&["localhost"]).files();
    let ca_file = ca.file();
    let mut redis = RedisProcess::tls_only(cert.path(), key.path(), ca_file.path(), true);
    redis.start_listening().await;
    TlsRedis {
        redis,
        _files: (cert, key, ca_file),
    }
}

/// A service on `url` with `env`, logging to a file; the log's path with it.
fn start_service(url: &str, env: &[(&str, &str)]) -> (ServiceProcess, std::path::PathBuf) {
    let prefix = unique_prefix();
    let log = std::env::temp_dir().join(format!("{prefix}.log"));
    (ServiceProcess::start_logging(url, &prefix, env, Some(&log)), log)
}

/// Creates a webhook and publishes one event through the service; the receiver must get it.
async fn delivers(service: &ServiceProcess) {
    service.wait_until_reading().await;
    let receiver = Receiver::ok();
    service.create_webhook(&receiver.url(), &["*"]).await;
    let (status, reply) = service
        .call("POST", "/events", Some(json!({"ev": "user.created", "n": 7})))
        .await
        .expect("the service answers");
    assert_eq!(status, 200, "{reply}");
    let received = receiver.wait_for(1, WAIT).await;
    assert_eq!(received[0].json()["n"], 7);
}

/// Waits for the service to exit by itself; its exit code and log.
async fn start_fails(mut service: ServiceProcess, log: &std::path::Path) -> (i32, String) {
    let status = eventually("the service to stop at start-up", WAIT, || {
        let status = service.try_exit_status();
        async move { status }
    })
    .await;
    let output = std::fs::read_to_string(log).unwrap_or_default();
    let _ = std::fs::remove_file(log);
    (status.code().unwrap_or(-1), output)
}

#[actix_web::test]
async fn a_tls_only_redis_with_client_certificates_carries_everything() {
    let ca = TestCa::new("hookrouter test Redis CA");
    let tls = tls_redis(&ca).await;
    let ca_file = ca.file();
    let (client_cert, client_key) = ca.issue(&["hookrouter-client"]).files();
    let url = format!("rediss://localhost:{}", tls.redis.port);
    let (service, log) = start_service(
        &url,
        &[
            ("HOOKROUTER__REDIS__CA_FILE", &ca_file.path_str()),
            ("HOOKROUTER__REDIS__CERT_FILE", &client_cert.path_str()),
            ("HOOKROUTER__REDIS__KEY_FILE", &client_key.path_str()),
        ],
    );
    delivers(&service).await;
    let (status, health) = service.health().await.expect("/health answers");
    assert_eq!((status, health["redis"].as_str()), (200, Some("up")), "{health}");
    let _ = std::fs::remove_file(log);
}

#[actix_web::test]
async fn a_certificate_hookrouter_does_not_trust_is_a_clear_start_up_error() {
    let ca = TestCa::new("hookrouter test Redis CA");
    let tls = tls_redis(&ca).await;
    let (client_cert, client_key) = ca.issue(&["hookrouter-client"]).files();
    let (cert, key) = (client_cert.path_str(), client_key.path_str());

    // Another CA in ca_file: the server's certificate chains to nothing trusted.
    let other = TestCa::new("some other CA").file();
    let url = format!("rediss://localhost:{}", tls.redis.port);
    let env = [
        ("HOOKROUTER__REDIS__CA_FILE", other.path_str()),
        ("HOOKROUTER__REDIS__CERT_FILE", cert.clone()),
        ("HOOKROUTER__REDIS__KEY_FILE", key.clone()),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (process, log) = start_service(&url, &env);
    let (code, output) = start_fails(process, &log).await;
    println!("wrong CA: exit {code}\n{output}");
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("(redis.url): Redis's TLS certificate is not signed by a CA hookrouter trusts"),
        "says what is wrong: {output}"
    );

    // The right CA, but the URL names a host the certificate does not hold.
    let ca_file = ca.file();
    let url = format!("rediss://127.0.0.1:{}", tls.redis.port);
    let env = [
        ("HOOKROUTER__REDIS__CA_FILE", ca_file.path_str()),
        ("HOOKROUTER__REDIS__CERT_FILE", cert),
        ("HOOKROUTER__REDIS__KEY_FILE", key),
    ];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let (process, log) = start_service(&url, &env);
    let (code, output) = start_fails(process, &log).await;
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("Redis's TLS certificate is not valid for the host name in the URL"),
        "says what is wrong: {output}"
    );

    // A ca_file that is not there is refused before anything connects, naming the key.
    let (process, log) = start_service(&url, &[("HOOKROUTER__REDIS__CA_FILE", "/nonexistent/ca.pem")]);
    let (code, output) = start_fails(process, &log).await;
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("redis.ca_file: /nonexistent/ca.pem cannot be read"),
        "{output}"
    );
}

#[actix_web::test]
async fn an_acl_user_with_a_password_works_and_a_wrong_password_stops_the_start() {
    const PASSWORD: &str = "acl-pass-4f9c2e";
    const WRONG: &str = "not-the-pass-81d3";
    let mut redis = RedisProcess::unstarted();
    redis.start().await;
    let admin = redis::Client::open(redis.url()).expect("a redis url");
    let mut conn = admin
        .get_multiplexed_async_connection()
        .await
        .expect("the private redis");
    let _: () = redis::cmd("ACL")
        .arg("SETUSER")
        .arg("hookrouter")
        .arg("on")
        .arg(format!(">{PASSWORD}"))
        .arg("~*")
        .arg("&*")
        .arg("+@all")
        .query_async(&mut conn)
        .await
        .expect("ACL SETUSER");

    let url = format!("redis://hookrouter:{PASSWORD}@127.0.0.1:{}", redis.port);
    let (service, log) = start_service(&url, &[("RUST_LOG", "info")]);
    delivers(&service).await;
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .query_async(&mut conn)
        .await
        .expect("CLIENT LIST");
    assert!(
        clients.lines().any(|client| client.contains(" user=hookrouter ")),
        "the service logged in as the ACL user: {clients}"
    );
    drop(service);
    let output = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    assert!(output.contains("redis://hookrouter:***@127.0.0.1"), "{output}");
    assert!(!output.contains(PASSWORD), "the password leaked: {output}");

    let url = format!("redis://hookrouter:{WRONG}@127.0.0.1:{}", redis.port);
    let (process, log) = start_service(&url, &[("RUST_LOG", "info")]);
    let (code, output) = start_fails(process, &log).await;
    println!("wrong password: exit {code}\n{output}");
    assert_eq!(code, 1, "{output}");
    assert!(
        output.contains("(redis.url): Redis refused the login"),
        "says what is wrong: {output}"
    );
    assert!(!output.contains(WRONG), "the password leaked: {output}");
}
