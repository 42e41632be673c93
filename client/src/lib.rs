//! Client library for ferrocache and memcached clusters.
//!
//! - [`Client`]: a thread-safe client with per-node connection pools, failure detection and
//!   ejection, multi-get pipelining and, optionally, cluster auto discovery.
//! - [`ring`]: ketama consistent hashing that places keys exactly where libmemcached,
//!   twemproxy and spymemcached place them, so clients in other languages share one cache.
//! - [`discovery`]: the ElastiCache-compatible cluster configuration that ferrocache nodes
//!   serve, so the client can follow membership changes.
//! - [`protocol`]: the memcached text protocol as pure encode/parse functions.
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
