//! What keeps hookrouter safe to expose: API access tokens ([`access`]), the tokens WildDuck
//! issues and their roles ([`wildduck_tokens`]) and the dashboard's stream tickets
//! ([`tickets`]), the SSRF guard on delivery destinations ([`destinations`]) and the TLS trust
//! of deliveries ([`tls`]).

pub mod access;
pub mod destinations;
pub mod tickets;
pub mod tls;
pub mod wildduck_tokens;

pub use access::AccessTokens;
pub use destinations::Destinations;
