//! Client library for ferrocache and memcached clusters.
//!
//! - [`ring`]: ketama consistent hashing that places keys exactly where libmemcached,
//!   twemproxy and spymemcached place them, so clients in other languages share one cache.
//! - [`discovery`]: parsing of the ElastiCache-compatible cluster configuration that
//!   ferrocache nodes serve, so the client can follow membership changes.

pub mod discovery;
pub mod ring;

pub use ring::{key_hash, Identity, Naming, Redistribute, Ring, RingError, Server};
