//! A webhook receiver that prints every delivery it gets.
//!
//! ```text
//! cargo run --example receiver -- --listen 127.0.0.1:9000
//! cargo run --example receiver -- --listen 127.0.0.1:9000 --fail-rate 0.5   # answer 500 half the time
//! ```
//!
//! It deduplicates on the `webhook-id` header, as a receiver should: hookrouter delivers at
//! least once, and a retried or redelivered event carries the same id.

use std::collections::HashSet;
use std::sync::Mutex;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use clap::Parser;

#[derive(Parser, Clone)]
#[command(about = "Print the webhook deliveries hookrouter sends")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: String,
    /// Fraction of requests to answer with 500, to watch retries.
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
}

struct State {
    fail_rate: f64,
    seen: Mutex<HashSet<String>>,
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
        "{}  {id}  timestamp={}  {}",
        if first { "NEW " } else { "DUP " },
        header("webhook-timestamp"),
        String::from_utf8_lossy(&body)
    );
    HttpResponse::NoContent().finish()
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    let state = web::Data::new(State {
        fail_rate: args.fail_rate,
        seen: Mutex::new(HashSet::new()),
    });
    println!("listening on http://{}/ (any path)", args.listen);
    HttpServer::new(move || App::new().app_data(state.clone()).default_service(web::to(receive)))
        .bind(&args.listen)?
        .workers(1)
        .run()
        .await
}
