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
    /// Settings file (TOML) [default: config.toml]. A missing file means built-in defaults
    /// (with a warning when named here). Any key can be overridden with
    /// HOOKROUTER__<SECTION>__<KEY> environment variables.
    #[arg(long, short)]
    config: Option<PathBuf>,
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let path = cli.config.clone().unwrap_or_else(|| PathBuf::from("config.toml"));
    let settings = Settings::load(&path)?;
    hookrouter::telemetry::init(settings.log.format);
    match (path.exists(), cli.config.is_some()) {
        (true, _) => {
            tracing::info!(config = %path.display(), "settings read from the config file and HOOKROUTER__* variables")
        }
        (false, true) => tracing::warn!(
            config = %path.display(),
            "the config file named by --config does not exist; using built-in defaults and HOOKROUTER__* variables"
        ),
        (false, false) => tracing::info!("no ./config.toml; using built-in defaults and HOOKROUTER__* variables"),
    }
    let app = Application::build(settings).await?;
    app.run_until_stopped().await?;
    tracing::info!("hookrouter stopped");
    Ok(())
}
