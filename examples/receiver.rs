//! A webhook receiver that prints every delivery it gets.
//!
//! ```text
//! cargo run --example receiver -- --listen 127.0.0.1:9000
//! cargo run --example receiver -- --listen 127.0.0.1:9000 --secret whsec_...  # verify signatures
//! cargo run --example receiver -- --listen 127.0.0.1:9000 --fail-rate 0.5   # answer 500 half the time
//! ```
//!
//! With `--secret` (the webhook's, from `POST /webhooks` or `GET /webhooks/{id}/secret`) it
//! verifies each delivery's Standard Webhooks signature and timestamp, and answers 401 to
//! anything that does not verify. It deduplicates on the `webhook-id` header, as a receiver
//! should: hookrouter delivers at least once, and a retried or redelivered event carries the
//! same id.

use std::collections::HashSet;
use std::sync::Mutex;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use clap::Parser;
use hookrouter::domain::WebhookSecret;

#[derive(Parser, Clone)]
#[command(about = "Print the webhook deliveries hookrouter sends")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: String,
    /// Fraction of requests to answer with 500, to watch retries.
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// The webhook's signing secret: verify every delivery with it.
    #[arg(long)]
    secret: Option<String>,
}

/// How far a delivery's timestamp may be from now, as the Standard Webhooks libraries allow.
const TOLERANCE_SECONDS: u64 = 5 * 60;

struct State {
    fail_rate: f64,
    secret: Option<WebhookSecret>,
    seen: Mutex<HashSet<String>>,
}

/// Checks the signature and that the timestamp is recent (replayed requests are refused).
fn verify(secret: &WebhookSecret, id: &str, timestamp: &str, signature: &str, body: &[u8]) -> Result<(), &'static str> {
    let timestamp: u64 = timestamp.parse().map_err(|_| "no valid webhook-timestamp")?;
    let now = hookrouter::clock::now_ms() / 1000;
    if timestamp.abs_diff(now) > TOLERANCE_SECONDS {
        return Err("timestamp too far from now");
    }
    if secret.verify(id, timestamp, body, signature) {
        Ok(())
    } else {
        Err("signature does not match")
    }
}

async fn receive(state: web::Data<State>, request: HttpRequest, body: web::Bytes) -> HttpResponse {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
            .to_string()
    };
    let id = header("webhook-id");
    if let Some(secret) = &state.secret {
        let checked = verify(
            secret,
            &id,
            &header("webhook-timestamp"),
            &header("webhook-signature"),
            &body,
        );
        if let Err(why) = checked {
            println!("BAD   {id} ({why}); answering 401");
            return HttpResponse::Unauthorized().body(why);
        }
    }
    if rand::random::<f64>() < state.fail_rate {
        println!("FAIL  {id} (answering 500 on purpose)");
        return HttpResponse::InternalServerError().body("failing on purpose");
    }
    let first = state
        .seen
        .lock()
        .map(|mut seen| seen.insert(id.clone()))
        .unwrap_or(true);
    println!(
        "{}{}  {id}  timestamp={}  {}",
        if first { "NEW " } else { "DUP " },
        if state.secret.is_some() { " ✓sig" } else { "" },
        header("webhook-timestamp"),
        String::from_utf8_lossy(&body)
    );
    HttpResponse::NoContent().finish()
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let secret = match args.secret.as_deref().map(WebhookSecret::parse).transpose() {
        Ok(secret) => secret,
        Err(rule) => {
            eprintln!("--secret {rule}");
            std::process::exit(2);
        }
    };
    let state = web::Data::new(State {
        fail_rate: args.fail_rate,
        secret,
        seen: Mutex::new(HashSet::new()),
    });
    println!("listening on http://{}/ (any path)", args.listen);
    HttpServer::new(move || App::new().app_data(state.clone()).default_service(web::to(receive)))
        .bind(&args.listen)?
        .workers(1)
        .run()
        .await
}
