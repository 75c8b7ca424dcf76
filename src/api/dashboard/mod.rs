//! The live dashboard: every webhook's delivery actor at a glance.
//!
//! | route | handler |
//! |---|---|
//! | `GET /dashboard`, `/dashboard/assets/{name}` | [`page`]: the page and its files, compiled in (open) |
//! | `GET /dashboard/webhooks` | [`view`]: a page of the table with the summary (JSON) |
//! | `POST /dashboard/ticket` | [`tickets`]: a single-use ticket for the stream |
//! | `GET /dashboard/stream` | [`stream`]: the same view pushed twice a second (Server-Sent Events) |
//!
//! The detail panel and the actions use the webhook routes as they are (`/webhooks/{id}/health`,
//! `/attempts`, `/dead`, `/dead/replay`, `/pause`, `/resume`, `/retry`, `PUT /webhooks/{id}`).
//!
//! Where the data comes from, with any number of instances on one prefix: each delivering
//! instance writes a *board* of its running delivery actors twice a second
//! (`actors::board`); the serving instance merges the live boards into a [`snapshot`] (with its
//! [`summary`]), adds the paused and disabled webhooks from their index sets, and pages idle
//! webhooks from the webhook index ([`idle`]). Only the rows on the page are read in full.

pub(super) mod idle;
pub(super) mod page;
pub(super) mod snapshot;
pub(super) mod stream;
pub(super) mod summary;
pub(super) mod tickets;
pub(super) mod view;

use actix_web::web;
use tokio::sync::watch;

use super::resource;

/// What the dashboard keeps on this instance: the snapshot its viewers share, the text index,
/// and the signal that ends the streams when the service stops.
pub struct Dashboard {
    snapshots: snapshot::SnapshotCache,
    text: idle::TextIndex,
    stopping: watch::Receiver<bool>,
}

impl Dashboard {
    /// `stopping` turns true when the service stops: open streams end then. `lease_ttl`: how
    /// long an instance counts as alive after its last heartbeat (`leases.ttl_ms`).
    pub fn new(stopping: watch::Receiver<bool>, lease_ttl: std::time::Duration) -> Dashboard {
        Dashboard {
            snapshots: snapshot::SnapshotCache::new(lease_ttl),
            text: idle::TextIndex::default(),
            stopping,
        }
    }
}

/// Registers the dashboard's routes.
pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(resource("/dashboard").route(web::get().to(page::page)))
        .service(resource("/dashboard/assets/{name}").route(web::get().to(page::asset)))
        .service(resource("/dashboard/webhooks").route(web::get().to(view::webhooks)))
        .service(resource("/dashboard/ticket").route(web::post().to(tickets::ticket)))
        .service(resource("/dashboard/stream").route(web::get().to(stream::stream)));
}

/// Whether the auth middleware lets a path through without a token: the page and its files
/// hold no data, and the stream checks its ticket itself.
pub fn is_open(path: &str) -> bool {
    matches!(path, "/dashboard" | "/dashboard/stream") || path.starts_with("/dashboard/assets/")
}
