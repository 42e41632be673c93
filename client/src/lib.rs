//! Client library for ferrocache and memcached clusters.
//!
//! - [`Client`]: a thread-safe client with per-node connection pools, failure detection and
//!   ejection, multi-get pipelining and, optionally, cluster auto discovery.
//! - [`ring`]: ketama consistent hashing that places keys exactly where libmemcached,
//!   twemproxy and spymemcached place them, so clients in other languages share one cache.
//! - [`discovery`]: the ElastiCache-compatible cluster configuration that ferrocache nodes
//!   serve, so the client can follow membership changes.
//! - [`protocol`] and [`binary`]: the memcached text and binary protocols as pure
//!   encode/parse functions; the client speaks either ([`Protocol`]), with the same
//!   operations and errors.
//! - SASL authentication ([`Credentials`], `sasl` feature: PLAIN, SCRAM-SHA-1,
//!   SCRAM-SHA-256, over the binary protocol) and TLS (`TlsConfig`, `tls` feature:
//!   rustls), for every connection including discovery.
//!
//! ```
//! use ferrocache_client::{key_hash, Naming, Ring, Server};
//!
//! // Where does a key live? The same answer as libmemcached and twemproxy give.
//! let servers = [
//!     Server::new("127.0.0.1", 39211),
//!     Server::new("127.0.0.1", 39212),
//!     Server::new("127.0.0.1", 39213),
//! ];
//! let ring = Ring::new(&servers, Naming::Libmemcached).unwrap();
//! assert_eq!(servers[ring.lookup("key0")].port, 39212);
//! assert_eq!(key_hash("26"), 3979113294);
//! ```
//!
//! An authenticated client over TLS, finding the cluster through a configuration endpoint:
//!
//! ```no_run
//! # #[cfg(feature = "tls")] {
//! use std::sync::Arc;
//! use ferrocache_client::{Client, TlsConfig};
//!
//! let tls = TlsConfig::new().ca_file("ca.pem").build()?;
//! let client = Client::builder()
//!     .seed("cache.cfg.example.internal:11211")
//!     .connector(Arc::new(tls))
//!     .sasl("web", std::env::var("CACHE_PASSWORD").unwrap_or_default())
//!     .build()?;
//! client.set("session:8f3a", b"{\"user\":42}", 0, 1800)?;
//! match client.get("session:8f3a") {
//!     Ok(item) => println!("{item:?}"),
//!     // Wrong credentials: not a node failure, reported on every request.
//!     Err(ferrocache_client::Error::Auth { node, message }) => eprintln!("{node}: {message}"),
//!     Err(e) => eprintln!("{e}"),
//! }
//! # }
//! # Ok::<(), ferrocache_client::Error>(())
//! ```

mod auth;
pub mod binary;
mod client;
mod codec;
pub mod conn;
pub mod discovery;
mod error;
mod node;
pub mod pool;
pub mod protocol;
pub mod ring;
#[cfg(feature = "tls")]
pub mod tls;

/// `now + delay`, saturating at a year from now instead of overflowing on huge settings.
pub(crate) fn deadline_after(delay: std::time::Duration) -> std::time::Instant {
    let now = std::time::Instant::now();
    let delay = delay.min(std::time::Duration::from_secs(365 * 24 * 3600));
    now.checked_add(delay).unwrap_or(now)
}

pub use client::{
    parse_host_port, Client, ClientBuilder, Item, MultiGet, NodeFailure, PerNode, Placement, Stats,
};
pub use conn::{
    Connector, Credentials, Endpoint, Mechanism, Protocol, Session, TcpConnector, Timeouts,
};
pub use error::{Error, Result, TlsError, TlsErrorKind};
pub use node::{FailoverMode, FailurePolicy, NodeInfo, NodeState};
pub use ring::{key_hash, Identity, Naming, Redistribute, Ring, RingError, Server};
#[cfg(feature = "tls")]
pub use tls::{TlsConfig, TlsConnector};
