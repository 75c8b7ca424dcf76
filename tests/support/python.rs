//! The Python side of the tests: the official Standard Webhooks library, run as a receiver.
//! Python comes from `$HOOKROUTER_TEST_PYTHON`, else `.venv/bin/python` at the repository root
//! (README: `python3 -m venv .venv && .venv/bin/pip install -r tests/python/requirements.txt`).

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::tls::{client_trusting, ServerCert, TempFile, TestCa};

pub fn python() -> PathBuf {
    if let Ok(path) = std::env::var("HOOKROUTER_TEST_PYTHON") {
        return PathBuf::from(path);
    }
    let venv = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python");
    assert!(
        venv.exists(),
        "Python test tools are missing: run `python3 -m venv .venv && .venv/bin/pip install -r tests/python/requirements.txt`"
    );
    venv
}

/// `tests/python/verifying_receiver.py`: verifies each delivery with `standardwebhooks`.
pub struct VerifyingReceiver {
    child: Child,
    pub port: u16,
    lines: Arc<Mutex<Vec<Value>>>,
    /// `https://localhost` when serving TLS, else `http://127.0.0.1`.
    base: String,
    /// Talks to the receiver's control route (trusting the test CA when it serves TLS).
    control: awc::Client,
    /// The certificate and key files it serves, kept until it stops.
    _files: Option<(TempFile, TempFile)>,
}

impl VerifyingReceiver {
    /// Over plain HTTP.
    pub async fn start() -> VerifyingReceiver {
        VerifyingReceiver::spawn(None, awc::Client::default()).await
    }

    /// Over HTTPS (Python's ssl module) with `certificate`, which must name `localhost` and
    /// be issued by `ca`.
    pub async fn start_tls(certificate: &ServerCert, ca: &TestCa) -> VerifyingReceiver {
        VerifyingReceiver::spawn(Some(certificate.files()), client_trusting(ca)).await
    }

    async fn spawn(files: Option<(TempFile, TempFile)>, control: awc::Client) -> VerifyingReceiver {
        let port = super::process::free_port();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/verifying_receiver.py");
        let mut command = Command::new(python());
        command.arg(script).arg(port.to_string());
        if let Some((cert, key)) = &files {
            command.arg(cert.path()).arg(key.path());
        }
        let base = match files {
            Some(_) => format!("https://localhost:{port}"),
            None => format!("http://127.0.0.1:{port}"),
        };
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the Python receiver");
        let stdout = child.stdout.take().expect("stdout");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Ok(value) = serde_json::from_str::<Value>(&line) {
                    sink.lock().unwrap().push(value);
                }
            }
        });
        let receiver = VerifyingReceiver {
            child,
            port,
            lines,
            base,
            control,
            _files: files,
        };
        super::eventually("the Python receiver to listen", Duration::from_secs(20), || async {
            receiver
                .lines
                .lock()
                .unwrap()
                .iter()
                .any(|l| l.get("listening").is_some())
                .then_some(())
        })
        .await;
        receiver
    }

    pub fn url(&self) -> String {
        format!("{}/hook", self.base)
    }

    pub async fn set_secrets(&self, secrets: &[&str]) {
        let response = self
            .control
            .post(format!("{}/_secrets", self.base))
            .send_json(&json!({ "secrets": secrets }))
            .await
            .expect("the Python receiver answers");
        assert_eq!(response.status(), 204);
    }

    /// One line per delivery: `{"id", "signature", "verified": [bool per secret], "tls"}`.
    pub fn deliveries(&self) -> Vec<Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.get("verified").is_some())
            .cloned()
            .collect()
    }

    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        super::eventually(&format!("{n} verified deliveries"), Duration::from_secs(15), || async {
            let deliveries = self.deliveries();
            (deliveries.len() >= n).then_some(deliveries)
        })
        .await
    }
}

impl Drop for VerifyingReceiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
