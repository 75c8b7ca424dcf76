//! The chaos soak: three instances on one Redis (persistent, AOF fsynced on every write), events
//! flowing through the stream, `POST /events` and WildDuck's BullMQ queue, receivers that answer
//! anything (2xx, 4xx, 5xx, 429/503 with `Retry-After`, hangs, resets, slow answers, 410), and
//! meanwhile webhooks created, changed, paused, resumed, retried, deleted, and instances stopped
//! with SIGTERM, killed with `kill -9`, paused with SIGSTOP, Redis killed and restarted.
//!
//! At the end, with every fault over and every endpoint healed, checked from outside:
//! every accepted event reached every webhook it certainly matched, or is a dead letter with its
//! reason (or its webhook was deleted or disabled); nothing reached a webhook that never
//! subscribed to it; duplicates only where a `kill -9`, a SIGSTOP or a Redis kill allows them,
//! counted and bounded; no webhook with anything queued, waiting or in flight; no key of a
//! deleted webhook left; and no invariant violated (every instance aborts on one).
//!
//! `scripts/test` runs the short form (HOOKROUTER_SOAK_SECS, default 90 s of chaos). The long
//! form: `HOOKROUTER_SOAK_SECS=1800 scripts/test -E 'binary(soak)' --no-capture`. The seed is
//! printed first and again on failure; `HOOKROUTER_SOAK_SEED=<seed>` repeats a run's schedule.

mod support;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use support::chaos::ChaosReceiver;
use support::ledger::{self, Kind, Tracked, Version};
use support::process::RedisProcess;

#[path = "soak/fleet.rs"]
mod fleet;
#[path = "soak/traffic.rs"]
mod traffic;

use fleet::Fleet;
use traffic::Traffic;

const USERS: [&str; 3] = [
    "5f1e9d2c8b3a4e00aaaaaaaa",
    "5f1e9d2c8b3a4e00bbbbbbbb",
    "5f1e9d2c8b3a4e00cccccccc",
];
const MAX_IN_FLIGHT: usize = 8;

/// Prints the seed again if the soak fails, so the run can be repeated.
struct SeedOnFailure(u64);

impl Drop for SeedOnFailure {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "chaos soak failed with seed {0}: repeat with HOOKROUTER_SOAK_SEED={0}",
                self.0
            );
        }
    }
}

fn env_number(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|value| value.parse().ok())
}

/// Which faults run (`HOOKROUTER_SOAK_FAULTS`, a comma-separated list of `changes`, `sigterm`,
/// `kill9`, `sigstop`, `redis`; all when unset): to find which one a finding comes with.
struct FaultKinds(Option<String>);

impl FaultKinds {
    fn allows(&self, kind: &str) -> bool {
        self.0
            .as_deref()
            .is_none_or(|list| list.split(',').any(|k| k.trim() == kind))
    }
}

/// What the chaos did, for the report and the duplicate bound.
#[derive(Debug, Default)]
struct Faults {
    sigterm: u32,
    kill9: u32,
    sigstop: u32,
    redis_kill: u32,
    webhook_changes: u32,
    gone: u32,
}

impl Faults {
    /// Faults that may resend what was delivered (an outcome not recorded: the process died,
    /// or lost its leases while stopped): each can cost up to `max_in_flight` per webhook. A
    /// graceful stop and a Redis restart (its AOF fsynced on every write) may not.
    fn resending(&self) -> u32 {
        self.kill9 + self.sigstop
    }
}

#[actix_web::test]
async fn chaos_soak() {
    let seed = env_number("HOOKROUTER_SOAK_SEED").unwrap_or_else(rand::random);
    let chaos_for = Duration::from_secs(env_number("HOOKROUTER_SOAK_SECS").unwrap_or(90));
    let _seed = SeedOnFailure(seed);
    println!("chaos soak: seed {seed}, {chaos_for:?} of chaos");
    let mut rng = StdRng::seed_from_u64(seed);
    let kinds = FaultKinds(std::env::var("HOOKROUTER_SOAK_FAULTS").ok());

    let mut redis = RedisProcess::persistent();
    redis.start().await;
    let receiver = ChaosReceiver::start(seed).await;
    let mut fleet = Fleet::start(&redis.url(), 3, MAX_IN_FLIGHT).await;
    let mut traffic = Traffic::connect(&redis.url()).await;
    let mut webhooks = create_webhooks(&fleet, &receiver).await;
    let mut faults = Faults::default();

    let began = Instant::now();
    let mut next_fault = Instant::now() + Duration::from_secs(2);
    while began.elapsed() < chaos_for {
        fleet.check_alive();
        fleet.wake_paused();
        traffic.publish_some(&mut rng, &fleet).await;
        if Instant::now() >= next_fault {
            let roll = rng.random_range(0..100);
            match roll {
                0..=44 if kinds.allows("changes") => {
                    change_webhook(&mut rng, &fleet, &receiver, &mut webhooks, &mut faults).await
                }
                45..=59 if kinds.allows("sigterm") => fleet.sigterm_one(&mut rng, &mut faults),
                60..=72 if kinds.allows("kill9") => fleet.kill9_one(&mut rng, &mut faults).await,
                73..=84 if kinds.allows("sigstop") => fleet.sigstop_one(&mut rng, &mut faults),
                85.. if kinds.allows("redis") => {
                    redis.start().await;
                    faults.redis_kill += 1;
                    traffic.reconnect().await;
                }
                _ => {}
            }
            next_fault = Instant::now() + Duration::from_millis(rng.random_range(500..2_500));
        }
        actix_rt::time::sleep(Duration::from_millis(rng.random_range(50..250))).await;
    }

    // Every fault over, every endpoint healthy: everything owed must arrive, and soon.
    fleet.recover().await;
    traffic.finish(&fleet).await;
    receiver.heal();
    let healed = Instant::now();
    for webhook in webhooks.iter().filter(|w| !w.deleted) {
        fleet
            .api("POST", &format!("/webhooks/{}/resume", webhook.id), None)
            .await;
        fleet
            .api(
                "PUT",
                &format!("/webhooks/{}", webhook.id),
                Some(json!({"enabled": true})),
            )
            .await;
    }
    let quiet = fleet.wait_quiet(&traffic, &webhooks).await;
    let drained_after = healed.elapsed();

    // From outside: what arrived, what became a dead letter.
    let mut delivered: HashMap<(String, u64), u32> = HashMap::new();
    for (delivery, n) in receiver.seen.lock().unwrap().delivered.iter() {
        let webhook = delivery.split(':').next().unwrap_or_default().to_string();
        *delivered.entry((webhook, *n)).or_insert(0) += 1;
    }
    let dead = fleet.dead_letters(&webhooks).await;
    let verdict = ledger::check(&traffic.events, &webhooks, &delivered, &dead);
    let strangers = ledger::strangers(&webhooks, &delivered);
    let allowed = faults.resending() as usize * MAX_IN_FLIGHT * webhooks.len();
    let answers = receiver.seen.lock().unwrap().answers.clone();
    println!(
        "chaos soak, seed {seed}: {} events published ({}), {} accepted; {} deliveries owed, {} delivered \
         (2xx), {} dead letters, {} duplicates (bound {allowed}); faults {faults:?}; receiver answers {answers:?}; \
         drained {drained_after:?} after the endpoints healed",
        traffic.events.len(),
        traffic.by_channel(),
        traffic.events.iter().filter(|e| e.accepted).count(),
        verdict.owed,
        verdict.delivered,
        verdict.dead,
        verdict.duplicates,
    );
    assert!(
        quiet,
        "webhooks still had work queued, waiting or in flight (see above)"
    );
    assert!(
        verdict.broken.is_empty(),
        "{} broken: {:#?}",
        verdict.broken.len(),
        &verdict.broken[..verdict.broken.len().min(20)]
    );
    assert!(
        strangers.is_empty(),
        "deliveries to webhooks the soak never made: {strangers:?}"
    );
    assert!(
        verdict.duplicates <= allowed,
        "{} duplicates, bound {allowed}",
        verdict.duplicates
    );
    assert!(
        verdict.owed > 1_000,
        "too little was owed to prove anything: {}",
        verdict.owed
    );
    fleet
        .assert_no_keys_of(&redis.url(), webhooks.iter().filter(|w| w.deleted))
        .await;
    fleet.assert_no_violations().await;
}

/// Six stable webhooks, two that churn, one whose receiver will answer 410 for a while.
async fn create_webhooks(fleet: &Fleet, receiver: &ChaosReceiver) -> Vec<Tracked> {
    let stable: [(&[&str], Option<&str>); 6] = [
        (&["*"], None),
        (&["user.*"], None),
        (&["mailbox.*", "marked.spam"], Some(USERS[0])),
        (&["*"], Some(USERS[1])),
        (&["forward added", "user.created"], None),
        (&["address.*"], None),
    ];
    let mut webhooks = Vec::new();
    for (n, (types, user)) in stable.iter().enumerate() {
        let types: Vec<String> = types.iter().map(|t| t.to_string()).collect();
        let user = user.map(str::to_string);
        let url = receiver.url(&format!("stable/{n}"));
        let id = fleet
            .create(&url, &types, user.as_deref())
            .await
            .expect("a stable webhook");
        webhooks.push(Tracked::new(id, Kind::Stable, types, user, Instant::now()));
    }
    for (kind, path) in [(Kind::Churn, "churn/a"), (Kind::Churn, "churn/b"), (Kind::Gone, "gone")] {
        let types = vec!["*".to_string()];
        let id = fleet
            .create(&receiver.url(path), &types, None)
            .await
            .expect("a webhook");
        webhooks.push(Tracked::new(id, kind, types, None, Instant::now()));
    }
    webhooks
}

/// One change to one webhook, through a random live instance.
async fn change_webhook(
    rng: &mut StdRng,
    fleet: &Fleet,
    receiver: &ChaosReceiver,
    webhooks: &mut Vec<Tracked>,
    faults: &mut Faults,
) {
    faults.webhook_changes += 1;
    let alive: Vec<usize> = (0..webhooks.len()).filter(|i| !webhooks[*i].deleted).collect();
    let index = alive[rng.random_range(0..alive.len())];
    let id = webhooks[index].id.clone();
    let path = |rest: &str| format!("/webhooks/{id}{rest}");
    match (webhooks[index].kind, rng.random_range(0..6)) {
        (Kind::Gone, _) => {
            let gone = !receiver.seen.lock().unwrap().gone.contains(&id);
            receiver.set_gone(&id, gone);
            if gone {
                faults.gone += 1;
            } else {
                fleet.api("PUT", &path(""), Some(json!({"enabled": true}))).await;
            }
        }
        (_, 0) => drop(fleet.api("POST", &path("/pause"), None).await),
        (_, 1) => drop(fleet.api("POST", &path("/resume"), None).await),
        (_, 2) => drop(fleet.api("POST", &path("/retry"), None).await),
        (_, 3) => drop(fleet.api("POST", &path("/secret/rotate"), None).await),
        (Kind::Stable, _) => {
            let url = receiver.url(&format!("stable/{index}/v{}", rng.random_range(0..1000)));
            fleet.api("PUT", &path(""), Some(json!({ "url": url }))).await;
        }
        (Kind::Churn, 4) => {
            let types = [
                ["*"].as_slice(),
                &["user.*", "mailbox.*"],
                &["marked.spam"],
                &["forward added"],
            ][rng.random_range(0..4)]
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>();
            let asked = Instant::now();
            let answer = fleet.api("PUT", &path(""), Some(json!({ "type": types }))).await;
            let webhook = &mut webhooks[index];
            match answer {
                Some((200, _)) => webhook.changed(
                    asked,
                    Some(Version {
                        types,
                        user: None,
                        from: Instant::now(),
                        until: None,
                    }),
                ),
                // A 5xx may come after the change was written (Redis ran it, its answer was
                // lost): which version routed later events is not known.
                Some((status, _)) if status >= 500 => webhook.uncertain = true,
                Some(_) => {}
                None => webhook.uncertain = true,
            }
        }
        (Kind::Churn, _) => {
            let asked = Instant::now();
            match fleet.api("DELETE", &path(""), None).await {
                Some((200, _)) => webhooks[index].changed(asked, None),
                Some((status, _)) if status >= 500 => webhooks[index].uncertain = true,
                Some(_) => {}
                None => webhooks[index].uncertain = true,
            }
            // A new one takes its place.
            let types = vec!["user.*".to_string()];
            let url = receiver.url(&format!("churn/{:08x}", rng.random::<u32>()));
            if let Some(id) = fleet.create(&url, &types, None).await {
                webhooks.push(Tracked::new(id, Kind::Churn, types, None, Instant::now()));
            }
        }
    }
}

/// The delivery health of a webhook, from any live instance.
async fn health(fleet: &Fleet, id: &str) -> Option<Value> {
    fleet
        .api("GET", &format!("/webhooks/{id}/health"), None)
        .await
        .filter(|(status, _)| *status == 200)
        .map(|(_, health)| health)
}
