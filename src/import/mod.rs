//! `hookrouter import-wildduck PATH [--dry-run]`: WildDuck's webhooks, moved into hookrouter.
//!
//! Reads a `mongoexport` of WildDuck's `webhooks` collection ([`export_file`]) and creates each
//! webhook through the same store code as `POST /webhooks`, keeping WildDuck's `_id` as the
//! webhook id and its `created` time, so clients holding those ids keep working. Each record
//! ends up in one of three piles:
//!
//! * **imported** (or, with `--dry-run`, would be): a new webhook with a generated secret;
//! * **skipped**: its id already exists in hookrouter (a second run imports nothing twice) or
//!   appeared earlier in the file;
//! * **refused**, with every reason: a field the API would refuse (bad pattern, a URL that is
//!   not http(s), such as WildDuck's `smtp:` targets, a destination the SSRF guard refuses
//!   under the configured `[security] allow_cidrs`), or a record that is not JSON.
//!
//! URLs are shown and logged redacted (`WebhookUrl::redacted`), the Redis URL without its
//! password: an import's output often ends up in a CI log.
//!
//! Nothing is written with `--dry-run`; Redis is only read (to find existing ids). The exit
//! code is 0 when nothing was refused and 2 when something was (the rest is imported), so a
//! migration script stops to let someone look.

mod export_file;

use std::collections::HashMap;
use std::fmt::Write;
use std::path::Path;

use crate::config::Settings;
use crate::domain::{DeliveryOptions, Webhook, WebhookId, WebhookSecret};
use crate::security::Destinations;
use crate::store::Store;
use export_file::{documents, peek_id, WildDuckWebhook};

/// What happened to each record, in file order.
#[derive(Debug, Default)]
pub struct ImportReport {
    pub dry_run: bool,
    pub imported: Vec<WildDuckWebhook>,
    /// Id and why.
    pub skipped: Vec<(WebhookId, String)>,
    /// Where in the file (and the id when readable), and every reason.
    pub refused: Vec<(String, String)>,
}

impl ImportReport {
    /// 0 when nothing was refused, 2 when something was.
    pub fn exit_code(&self) -> i32 {
        if self.refused.is_empty() {
            0
        } else {
            2
        }
    }

    /// What an operator reads: one line per record, then the summary and what to do next.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let verb = if self.dry_run { "would import" } else { "imported" };
        for hook in &self.imported {
            let user = hook
                .user
                .as_ref()
                .map_or("(global)".to_string(), |u| format!("user {u}"));
            let types: Vec<String> = hook.types.iter().map(ToString::to_string).collect();
            let _ = writeln!(
                out,
                "{verb:<12} {} {user} [{}] -> {}",
                hook.id,
                types.join(", "),
                hook.url.redacted()
            );
        }
        for (id, why) in &self.skipped {
            let _ = writeln!(out, "{:<12} {id}: {why}", "skipped");
        }
        for (position, why) in &self.refused {
            let _ = writeln!(out, "{:<12} {position}: {why}", "refused");
        }
        let _ = writeln!(
            out,
            "\n{}{verb} {}, skipped {} (id already taken), refused {}.",
            if self.dry_run { "Dry run, nothing written: " } else { "" },
            self.imported.len(),
            self.skipped.len(),
            self.refused.len()
        );
        if !self.imported.is_empty() {
            let _ = writeln!(
                out,
                "Each {} webhook {} a new signing secret. WildDuck's receivers do not check signatures, so nothing \
                 needs it now; when a receiver starts to, read it with GET /webhooks/<id>/secret (rotate it with \
                 POST /webhooks/<id>/secret/rotate).",
                if self.dry_run { "imported" } else { "new" },
                if self.dry_run { "would get" } else { "got" },
            );
        }
        if !self.refused.is_empty() {
            let _ = writeln!(
                out,
                "Refused records were left out. Fix them in WildDuck or create them with POST /webhooks; for internal \
                 destinations, allow their ranges with [security] allow_cidrs and run the import again (what was \
                 imported is skipped)."
            );
        }
        out
    }
}

/// Runs the import of `path` against the Redis and prefix `settings` name.
pub async fn run(settings: &Settings, path: &Path, dry_run: bool) -> anyhow::Result<ImportReport> {
    let text = std::fs::read_to_string(path).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let documents = documents(&text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let store = Store::new(&settings.redis)?;
    if !store.ping().await {
        anyhow::bail!("Redis at {} does not answer", settings.redis.url_for_logs());
    }
    let webhooks = store.webhooks();
    let destinations = Destinations::new(&settings.security.allow_cidrs);
    let mut report = ImportReport {
        dry_run,
        ..ImportReport::default()
    };
    let mut seen: HashMap<WebhookId, String> = HashMap::new();
    for document in documents {
        let place = document.position.clone();
        let position = match document.value.as_ref().ok().and_then(peek_id) {
            Some(id) => format!("{place} ({id})"),
            None => place.clone(),
        };
        let read = document
            .value
            .map_err(|e| vec![("document", e)])
            .and_then(WildDuckWebhook::read);
        let hook = match read {
            Ok(hook) => hook,
            Err(problems) => {
                let reasons: Vec<String> = problems
                    .iter()
                    .map(|(field, rule)| format!("{field}: {rule}"))
                    .collect();
                report.refused.push((position, reasons.join("; ")));
                continue;
            }
        };
        if let Err(reason) = destinations.check_url(&hook.url).await {
            report.refused.push((position, format!("url: is refused: {reason}")));
            continue;
        }
        if let Some(first) = seen.get(&hook.id) {
            report
                .skipped
                .push((hook.id, format!("{place} repeats the _id of {first}")));
            continue;
        }
        seen.insert(hook.id, place);
        let exists = webhooks.get(&hook.id).await?.is_some();
        if !exists && !dry_run {
            let webhook = Webhook {
                id: hook.id,
                url: hook.url.clone(),
                types: hook.types.clone(),
                user: hook.user.clone(),
                created_ms: hook.created_ms,
                enabled: true,
                disabled_reason: None,
                paused: false,
                secret: WebhookSecret::generate(),
                previous_secret: None,
                delivery: DeliveryOptions::default(),
            };
            // Created meanwhile by someone else: as good as existing.
            if webhooks.create_if_absent(&webhook).await?.is_none() {
                report.skipped.push((hook.id, "already exists in hookrouter".into()));
                continue;
            }
            tracing::info!(webhook = %hook.id, url = %hook.url.redacted(), "webhook imported from WildDuck");
        }
        if exists {
            report.skipped.push((hook.id, "already exists in hookrouter".into()));
        } else {
            report.imported.push(hook);
        }
    }
    Ok(report)
}
