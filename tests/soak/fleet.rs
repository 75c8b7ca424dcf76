//! The soak's instances: started, stopped with SIGTERM, killed, paused and woken, each logging
//! to a file of its own; and the API calls and end checks the soak makes through them.

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::Rng;
use serde_json::Value;

use super::traffic::{Traffic, BULL_PREFIX, PREFIX};
use super::{health, Faults};
use crate::support::ledger::Tracked;
use crate::support::process::ServiceProcess;

/// A paused instance sleeps past its leases' life (3 s) by this much.
const PAUSE: Duration = Duration::from_millis(4_500);

struct Member {
    process: ServiceProcess,
    log: PathBuf,
    state: State,
}

/// What the soak did to an instance.
#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Running,
    /// SIGSTOPped until then.
    Paused(Instant),
    /// SIGTERM sent: draining; restarted once it has exited (0, or the soak fails).
    Stopping,
}

pub struct Fleet {
    members: Vec<Member>,
    client: awc::Client,
}

impl Fleet {
    pub async fn start(redis_url: &str, n: usize, max_in_flight: usize) -> Fleet {
        let max_in_flight = max_in_flight.to_string();
        let env = [
            ("HOOKROUTER__REDIS__TIMEOUT_MS", "1000"),
            ("HOOKROUTER__LEASES__TTL_MS", "3000"),
            ("HOOKROUTER__DELIVERY__TIMEOUT_MS", "2000"),
            ("HOOKROUTER__DELIVERY__MAX_IN_FLIGHT", max_in_flight.as_str()),
            ("HOOKROUTER__DELIVERY__IDLE_STOP_MS", "2000"),
            ("HOOKROUTER__RETRY__INITIAL_DELAY_MS", "100"),
            ("HOOKROUTER__RETRY__MAX_DELAY_MS", "1000"),
            ("HOOKROUTER__RETRY__MAX_ATTEMPTS", "8"),
            ("HOOKROUTER__CIRCUIT__PROBE_INITIAL_MS", "200"),
            ("HOOKROUTER__CIRCUIT__PROBE_MAX_MS", "1000"),
            ("HOOKROUTER__SHUTDOWN__GRACE_MS", "4000"),
            ("HOOKROUTER__BULLMQ__ENABLED", "true"),
            ("HOOKROUTER__BULLMQ__PREFIX", BULL_PREFIX),
            ("HOOKROUTER__BULLMQ__BLOCK_MS", "200"),
        ];
        let mut members = Vec::new();
        for n in 0..n {
            let log = std::env::temp_dir().join(format!("hrsoak-{}-{n}.log", std::process::id()));
            let _ = std::fs::remove_file(&log);
            let process = ServiceProcess::start_logging(redis_url, PREFIX, &env, Some(&log));
            members.push(Member {
                process,
                log,
                state: State::Running,
            });
        }
        for member in &members {
            member.process.wait_until_reading().await;
        }
        println!(
            "chaos soak: instance logs {:?}",
            members.iter().map(|m| m.log.display().to_string()).collect::<Vec<_>>()
        );
        Fleet {
            members,
            client: awc::Client::builder().timeout(Duration::from_secs(3)).finish(),
        }
    }

    /// Restarts an instance that finished its graceful stop (which must exit 0); fails the soak
    /// if one exited by itself (an invariant violated aborts it).
    pub fn check_alive(&mut self) {
        for member in &mut self.members {
            let exited = member.process.try_exit_status();
            if let (State::Stopping, Some(status)) = (member.state, exited) {
                assert!(status.success(), "a graceful stop must exit 0, not {status:?}");
                member.process.restart();
                member.state = State::Running;
            } else if let Some(status) = exited {
                let log = std::fs::read_to_string(&member.log).unwrap_or_default();
                let tail: String = log
                    .lines()
                    .rev()
                    .take(40)
                    .collect::<Vec<_>>()
                    .into_iter()
                    .rev()
                    .collect::<Vec<_>>()
                    .join("\n");
                panic!("an instance exited by itself ({status:?}); its log ends:\n{tail}");
            }
        }
    }

    /// Wakes the instances whose pause is over.
    pub fn wake_paused(&mut self) {
        for member in &mut self.members {
            if matches!(member.state, State::Paused(until) if Instant::now() >= until) {
                member.process.signal("CONT");
                member.state = State::Running;
            }
        }
    }

    /// Instances that answer now (running, or draining after SIGTERM: the API serves until the
    /// end of a graceful stop).
    fn awake(&self) -> Vec<usize> {
        (0..self.members.len())
            .filter(|i| !matches!(self.members[*i].state, State::Paused(_)))
            .collect()
    }

    /// One instance, when all run (one fault at a time keeps two serving).
    fn victim(&self, rng: &mut StdRng) -> Option<usize> {
        let all_run = self.members.iter().all(|m| m.state == State::Running);
        all_run.then(|| rng.random_range(0..self.members.len()))
    }

    /// SIGTERM: the instance drains while the soak goes on (`check_alive` restarts it).
    pub fn sigterm_one(&mut self, rng: &mut StdRng, faults: &mut Faults) {
        let Some(i) = self.victim(rng) else { return };
        self.members[i].process.signal("TERM");
        self.members[i].state = State::Stopping;
        faults.sigterm += 1;
    }

    pub async fn kill9_one(&mut self, rng: &mut StdRng, faults: &mut Faults) {
        let Some(i) = self.victim(rng) else { return };
        self.members[i].process.kill9();
        faults.kill9 += 1;
        self.members[i].process.restart();
    }

    pub fn sigstop_one(&mut self, rng: &mut StdRng, faults: &mut Faults) {
        let Some(i) = self.victim(rng) else { return };
        self.members[i].process.signal("STOP");
        self.members[i].state = State::Paused(Instant::now() + PAUSE);
        faults.sigstop += 1;
    }

    /// Wakes every paused instance, restarts the stopping ones once they exit, and waits until
    /// all read events.
    pub async fn recover(&mut self) {
        for member in &mut self.members {
            if let State::Paused(_) = member.state {
                member.state = State::Paused(Instant::now());
            }
        }
        self.wake_paused();
        while self.members.iter().any(|m| m.state == State::Stopping) {
            self.check_alive();
            actix_rt::time::sleep(Duration::from_millis(50)).await;
        }
        for member in &self.members {
            member.process.wait_until_reading().await;
        }
        self.check_alive();
    }

    /// A call to a random awake instance; None when it did not answer (what it did is unknown).
    pub async fn api(&self, method: &str, path: &str, body: Option<Value>) -> Option<(u16, Value)> {
        let awake = self.awake();
        let member = &self.members[awake[rand::random_range(0..awake.len())]];
        let request = self.client.request(method.parse().ok()?, member.process.url(path));
        let mut response = match body {
            Some(body) => request.send_json(&body).await.ok()?,
            None => request.send().await.ok()?,
        };
        let status = response.status().as_u16();
        let body = response.body().limit(64 * 1024 * 1024).await.ok()?;
        Some((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
    }

    /// Creates a webhook (trying again while Redis restarts); its id.
    pub async fn create(&self, url: &str, types: &[String], user: Option<&str>) -> Option<String> {
        let mut body = serde_json::json!({ "url": url, "type": types });
        if let Some(user) = user {
            body["user"] = user.into();
        }
        for _ in 0..20 {
            match self.api("POST", "/webhooks", Some(body.clone())).await {
                Some((200, reply)) => return reply["id"].as_str().map(str::to_string),
                Some(_) => actix_rt::time::sleep(Duration::from_millis(250)).await,
                // Perhaps created: the URL is unique, so look for it.
                None => return self.find(url).await,
            }
        }
        None
    }

    async fn find(&self, url: &str) -> Option<String> {
        let (_, list) = self.api("GET", "/webhooks?limit=250", None).await?;
        list["results"]
            .as_array()?
            .iter()
            .find(|webhook| webhook["url"] == url)
            .and_then(|webhook| webhook["id"].as_str().map(str::to_string))
    }

    /// Waits until nothing is left to do: the event stream and BullMQ's queue empty, and every
    /// webhook with nothing queued, waiting or in flight. False (after printing what is not)
    /// when that does not happen within two minutes.
    pub async fn wait_quiet(&self, traffic: &Traffic, webhooks: &[Tracked]) -> bool {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let mut busy = Vec::new();
            let (events, jobs) = traffic.backlog().await;
            if events != Some(0) || jobs != Some(0) {
                busy.push(format!("stream {events:?}, bullmq wait {jobs:?}"));
            }
            for webhook in webhooks.iter().filter(|w| !w.deleted) {
                let health = health(self, &webhook.id).await;
                let idle = health
                    .as_ref()
                    .is_some_and(|h| h["backlog"] == 0 && h["waiting"] == 0 && h["inFlight"] == 0);
                if !idle {
                    busy.push(format!("{:?} {}: {health:?}", webhook.kind, webhook.id));
                }
            }
            if busy.is_empty() {
                return true;
            }
            if Instant::now() >= deadline {
                eprintln!("still busy after two minutes:\n{}", busy.join("\n"));
                return false;
            }
            actix_rt::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Every dead letter of the webhooks: (webhook, event n) → its error.
    pub async fn dead_letters(&self, webhooks: &[Tracked]) -> HashMap<(String, u64), String> {
        let mut dead = HashMap::new();
        for webhook in webhooks.iter().filter(|w| !w.deleted) {
            let mut next = String::new();
            loop {
                let path = format!("/webhooks/{}/dead?limit=100{next}", webhook.id);
                let (status, page) = self.api("GET", &path, None).await.expect("the API answers");
                assert_eq!(status, 200, "{page}");
                for letter in page["results"].as_array().into_iter().flatten() {
                    let n = letter["event"]["n"].as_u64().unwrap_or(u64::MAX);
                    let error = letter["error"].as_str().unwrap_or_default().to_string();
                    dead.insert((webhook.id.clone(), n), error);
                }
                match page["nextCursor"].as_str() {
                    Some(cursor) => next = format!("&next={cursor}"),
                    None => break,
                }
            }
        }
        dead
    }

    /// No key under the prefix names a deleted webhook.
    pub async fn assert_no_keys_of<'a>(&self, redis_url: &str, deleted: impl Iterator<Item = &'a Tracked>) {
        let client = redis::Client::open(redis_url).expect("redis url");
        let mut conn = client.get_multiplexed_async_connection().await.expect("redis");
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg(format!("{PREFIX}:*"))
            .query_async(&mut conn)
            .await
            .expect("KEYS");
        for webhook in deleted {
            let left: Vec<&String> = keys.iter().filter(|key| key.contains(&webhook.id)).collect();
            assert!(left.is_empty(), "keys of deleted webhook {}: {left:?}", webhook.id);
        }
    }

    /// Every instance's metrics say no invariant was violated (each would have aborted, too).
    pub async fn assert_no_violations(&self) {
        for member in &self.members {
            let mut response = self
                .client
                .get(member.process.url("/metrics"))
                .send()
                .await
                .expect("metrics");
            let text = String::from_utf8(response.body().limit(16 << 20).await.expect("body").to_vec()).unwrap();
            let violated: Vec<&str> = text
                .lines()
                .filter(|line| line.starts_with("hookrouter_invariant_violations_total"))
                .collect();
            assert!(violated.is_empty(), "{violated:?}");
        }
    }
}
