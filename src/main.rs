//! The `hookrouter` binary: load settings, start logging, run until SIGINT/SIGTERM.

use std::path::PathBuf;

use clap::Parser;

use hookrouter::config::Settings;

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;
use hookrouter::startup::Application;

/// A durable webhook router: events from a Redis stream, one delivery actor per webhook,
/// a WildDuck-compatible REST API.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Settings file (TOML). Missing file = built-in defaults. Any key can be overridden with
    /// HOOKROUTER__<SECTION>__<KEY> environment variables.
    #[arg(long, short, default_value = "config.toml")]
    config: PathBuf,
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let settings = Settings::load(&cli.config)?;
    hookrouter::telemetry::init(settings.log.format);
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    tracing::info!("hookrouter stopped");
    Ok(())
}
