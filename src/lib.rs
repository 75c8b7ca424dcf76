//! hookrouter: a durable webhook router.
//!
//! Producers append events to a Redis stream; a queue reader feeds them to a supervisor that
//! matches them against webhook subscriptions and queues one delivery per match in that
//! webhook's own Redis queue; one delivery actor per webhook POSTs them and owns its retries.
//! An actix-web API manages the webhooks with WildDuck-compatible JSON shapes.
//!
//! Start with [`startup::Application`]; `docs/architecture.md` has the whole design.
//! [`import`] is the `hookrouter import-wildduck` command.

pub mod actors;
pub mod api;
pub mod clock;
pub mod config;
pub mod domain;
pub mod import;
pub mod metrics;
pub mod priority;
pub mod routing;
pub mod security;
pub mod shutdown;
pub mod startup;
pub mod store;
pub mod telemetry;
