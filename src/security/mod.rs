//! What keeps hookrouter safe to expose: API access tokens ([`access`]), the SSRF guard on
//! delivery destinations ([`destinations`]) and the TLS trust of deliveries ([`tls`]).

pub mod access;
pub mod destinations;
pub mod tls;

pub use access::AccessTokens;
pub use destinations::Destinations;
