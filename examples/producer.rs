//! Publishes sample WildDuck-style events to hookrouter's Redis stream, exactly as a producer
//! would: `XADD <prefix>:events * event <json>`.
//!
//! ```text
//! cargo run --example producer -- --count 100
//! cargo run --example producer -- --count 10 --user 5f1e9d2c8b3a4e0012345678 --prefix hookrouter
//! ```

use clap::Parser;
use serde_json::{json, Value};

#[derive(Parser)]
#[command(about = "Publish sample WildDuck-style events to hookrouter's Redis stream")]
struct Args {
    /// How many events to publish.
    #[arg(long, default_value_t = 10)]
    count: usize,
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    redis: String,
    /// hookrouter's `[redis] prefix`.
    #[arg(long, default_value = "hookrouter")]
    prefix: String,
    /// Put every event on this user (default: one of a few sample users).
    #[arg(long)]
    user: Option<String>,
}

const USERS: [&str; 3] = [
    "5f1e9d2c8b3a4e0012345678",
    "5f1e9d2c8b3a4e0012345679",
    "5f1e9d2c8b3a4e001234567a",
];

/// The n-th sample event: a rotation through WildDuck's catalogue.
fn sample(n: usize, user: &str) -> Value {
    let mailbox = format!("6{:023x}", n);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64);
    let mut event = match n % 6 {
        0 => {
            json!({"ev": "user.created", "username": format!("user{n}"), "name": "Sample User", "address": format!("user{n}@example.com")})
        }
        1 => {
            json!({"ev": "mailbox.created", "mailbox": mailbox, "path": format!("INBOX/Folder {n}")})
        }
        2 => {
            json!({"ev": "marked.spam", "mailbox": mailbox, "message": n, "from": "spammer@example.net", "to": ["user@example.com"], "subject": "You won!", "messageId": format!("<{n}@example.net>")})
        }
        3 => {
            json!({"ev": "address.user.created", "address": format!("7{:023x}", n), "value": format!("alias{n}@example.com")})
        }
        4 => {
            json!({"ev": "user.delete.started", "result": {"deleteAfter": "2026-12-26T00:00:00.000Z"}})
        }
        _ => json!({"ev": "mfa.totp.enabled"}),
    };
    event["user"] = json!(user);
    event["time"] = json!(now);
    event
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let client = redis::Client::open(args.redis.as_str())?;
    let mut conn = client.get_multiplexed_async_connection().await?;
    let key = format!("{}:events", args.prefix);
    for chunk_start in (0..args.count).step_by(500) {
        let mut pipe = redis::pipe();
        for n in chunk_start..(chunk_start + 500).min(args.count) {
            let user = args.user.as_deref().unwrap_or(USERS[n % USERS.len()]);
            pipe.cmd("XADD")
                .arg(&key)
                .arg("*")
                .arg("event")
                .arg(sample(n, user).to_string())
                .ignore();
        }
        pipe.query_async::<()>(&mut conn).await?;
    }
    println!("published {} events to {key}", args.count);
    Ok(())
}
