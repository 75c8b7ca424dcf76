//! The `hookrouter` binary: run the service (load settings, start logging, run until
//! SIGINT/SIGTERM), or `hookrouter import-wildduck PATH` to import WildDuck's webhooks.

use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};

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
    #[arg(long, short, global = true)]
    config: Option<PathBuf>,
    /// Without a command, run the service.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Import WildDuck's webhooks from a mongoexport of its `webhooks` collection (JSON lines or
    /// a JSON array, relaxed or canonical Extended JSON), keeping their ids. Existing ids are
    /// skipped; records the API would refuse are listed with their reasons and left out.
    /// Exit code 2 when any record was refused.
    ImportWildduck {
        /// The export, e.g. from `mongoexport --db wildduck --collection webhooks --out webhooks.json`.
        path: PathBuf,
        /// Show what would be imported, skipped and refused; write nothing.
        #[arg(long)]
        dry_run: bool,
    },
}

#[actix_web::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let path = cli.config.clone().unwrap_or_else(|| PathBuf::from("config.toml"));
    let settings = Settings::load(&path)?;
    hookrouter::telemetry::init(settings.log.format);
    log_settings_source(&path, cli.config.is_some());
    match cli.command {
        None => {
            // Before the delivery threads start, so that they inherit it.
            lower_priority(settings.instance.nice);
            let app = Application::build(settings).await?;
            app.run_until_stopped().await?;
            tracing::info!("hookrouter stopped");
            Ok(())
        }
        Some(Command::ImportWildduck { path, dry_run }) => {
            let report = hookrouter::import::run(&settings, &path, dry_run).await?;
            print!("{}", report.render());
            std::process::exit(report.exit_code());
        }
    }
}

/// Lowers the CPU priority to `nice` (src/priority.rs) and says what it did.
fn lower_priority(nice: i32) {
    if nice == 0 {
        tracing::info!("CPU priority left as started (instance.nice = 0)");
        return;
    }
    let lowered = hookrouter::priority::lower(nice);
    if lowered.is_complete() {
        tracing::info!(%lowered, "CPU priority");
    } else {
        tracing::warn!(%lowered, "CPU priority: not all of it could be lowered (instance.nice)");
    }
}

/// Says where the settings came from; a missing file named by `--config` is a warning.
fn log_settings_source(path: &Path, named: bool) {
    match (path.exists(), named) {
        (true, _) => {
            tracing::info!(config = %path.display(), "settings read from the config file and HOOKROUTER__* variables")
        }
        (false, true) => tracing::warn!(
            config = %path.display(),
            "the config file named by --config does not exist; using built-in defaults and HOOKROUTER__* variables"
        ),
        (false, false) => tracing::info!("no ./config.toml; using built-in defaults and HOOKROUTER__* variables"),
    }
}
