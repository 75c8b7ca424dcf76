//! What keeps hookrouter safe to expose: API access tokens ([`access`]) and the SSRF guard on
//! delivery destinations ([`destinations`]).

pub mod access;
pub mod destinations;

pub use access::AccessTokens;
pub use destinations::Destinations;
