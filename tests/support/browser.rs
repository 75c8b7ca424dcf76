//! The dashboard in a real browser: headless Chromium (Debian's `chromium` package) driven by
//! Playwright for Python, `tests/python/dashboard_browser.py`, one process per scenario.
//!
//! The script prints one JSON line per checkpoint (`{"step": …}`), a last one with its figures
//! (`{"done": true, …}`), or `{"error": …}` when something it waited for did not happen; where
//! a scenario needs the test to act (fail a receiver, publish, restart the service) it waits
//! for one JSON line on its standard input.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::mpsc;

/// How long a scenario may take between two of its lines.
const QUIET_FOR_AT_MOST: Duration = Duration::from_secs(60);

pub struct Browser {
    child: Child,
    stdin: ChildStdin,
    lines: mpsc::UnboundedReceiver<Value>,
    scenario: String,
}

impl Browser {
    /// Starts `scenario` against the service at `base` (`http://127.0.0.1:<port>`).
    pub fn start(base: &str, scenario: &str, params: Value) -> Browser {
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/dashboard_browser.py");
        let mut child = Command::new(super::python::python())
            .arg(script)
            .arg(base)
            .arg(scenario)
            .arg(params.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the browser script");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = child.stdout.take().expect("stdout");
        let (sender, lines) = mpsc::unbounded_channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                match serde_json::from_str::<Value>(&line) {
                    Ok(value) => {
                        let _ = sender.send(value);
                    }
                    Err(_) => eprintln!("browser script: {line}"),
                }
            }
        });
        Browser {
            child,
            stdin,
            lines,
            scenario: scenario.to_string(),
        }
    }

    /// The next line, failing the test on an error line, an early exit or a long silence.
    async fn next(&mut self) -> Value {
        let line = actix_rt::time::timeout(QUIET_FOR_AT_MOST, self.lines.recv()).await;
        let scenario = &self.scenario;
        match line {
            Ok(Some(line)) if line.get("error").is_some() => {
                panic!("browser scenario {scenario} failed: {}", line["error"])
            }
            Ok(Some(line)) => line,
            Ok(None) => panic!("browser scenario {scenario} ended without its result"),
            Err(_) => panic!("browser scenario {scenario} said nothing for {QUIET_FOR_AT_MOST:?}"),
        }
    }

    /// Waits for the script to reach `step`; what it reported there.
    pub async fn step(&mut self, step: &str) -> Value {
        let line = self.next().await;
        assert_eq!(line["step"], step, "browser scenario {}: {line}", self.scenario);
        line
    }

    /// Tells a waiting script to go on.
    pub fn send(&mut self, message: Value) {
        writeln!(self.stdin, "{message}").expect("write to the browser script");
        self.stdin.flush().expect("flush the browser script's input");
    }

    /// Waits for the scenario's result, and for the script to exit cleanly.
    pub async fn finish(mut self) -> Value {
        let result = self.next().await;
        assert_eq!(result["done"], true, "browser scenario {}: {result}", self.scenario);
        let status = self.child.wait().expect("wait for the browser script");
        assert!(
            status.success(),
            "browser scenario {} exited with {status}",
            self.scenario
        );
        result
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Fails the test if the page requested anything from another host than the service, or
/// logged an error (beyond those `expected` contains part of).
pub fn assert_clean(result: &Value, service: &str, expected: &[&str]) {
    let hosts: Vec<&str> = result["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        hosts,
        [service],
        "the page requested other hosts: {}",
        result["request_urls"]
    );
    let errors: Vec<&str> = result["console_errors"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .filter(|error| !expected.iter().any(|part| error.contains(part)))
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}
