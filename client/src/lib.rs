//! Client library for ferrocache and memcached clusters.
//!
//! - [`ring`]: ketama consistent hashing that places keys exactly where libmemcached,
//!   twemproxy and spymemcached place them, so clients in other languages share one cache.

pub mod ring;

pub use ring::{key_hash, Identity, Naming, Redistribute, Ring, RingError, Server};
