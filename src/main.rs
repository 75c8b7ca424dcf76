//! The `hookrouter` binary: run the service (load settings, start logging, run until
//! SIGINT/SIGTERM), or `hookrouter import-wildduck PATH` to import WildDuck's webhooks.

use std::path::PathBuf;

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
    /// Settings file (TOML). Missing file = built-in defaults. Any key can be overridden with
    /// HOOKROUTER__<SECTION>__<KEY> environment variables.
    #[arg(long, short, default_value = "config.toml", global = true)]
    config: PathBuf,
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
    let settings = Settings::load(&cli.config)?;
    hookrouter::telemetry::init(settings.log.format);
    match cli.command {
        None => {
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
