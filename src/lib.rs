//! ferrocache: a memcached-compatible, multithreaded cache server.
//!
//! ```text
//! main ── parse config, bind listeners, start workers, wait for signals
//!  ├─ acceptor ── accept, enforce -c, hand connections round-robin to workers
//!  ├─ worker × N ── own mio::Poll + connection table; read → parse → exec → write
//!  ├─ ticker ── advances the coarse clock once a second
//!  └─ maintainer ── storage background work: expiry crawler, page mover
//! shared: Arc<Cache>, per-worker atomic stats, the clock
//! ```
//!
//! Bytes flow `server::conn` → `protocol::text::parse` → `exec` →
//! `storage::Cache` → `protocol::text::encode` → `server::conn`.

pub mod auth;
pub mod clock;
pub mod config;
pub mod exec;
pub mod protocol;
pub mod server;
pub mod state;
pub mod stats;
pub mod storage;
