//! ferrocache: a memcached-compatible, multithreaded cache server.
//!
//! ```text
//! main ── parse config, bind listeners, start workers, wait for signals
//!  ├─ acceptor ── accept, enforce -c, hand connections round-robin to workers
//!  ├─ worker × N ── own mio::Poll + connection table; read → parse → exec → write
//!  ├─ housekeeper ── ticks the coarse clock; storage background work
//!  │                 (expiry crawler) every 100 ms
//!  └─ cluster agent ── node file, peer exchange, failure detection; publishes
//!                      the `config get cluster` payload lock-free
//! shared: Arc<Cache>, per-worker atomic stats, the clock
//! ```
//!
//! Bytes flow `server::conn` → `protocol::text::parse` → `exec` →
//! `storage::Cache` → `protocol::text::encode` → `server::conn`. Meta
//! commands (`mg`, `ms`, …) ride the same line framing: the text parser
//! hands them to `protocol::meta`, and the text encoder delegates their
//! replies to it.

pub mod auth;
pub mod clock;
pub mod cluster;
pub mod config;
pub mod exec;
pub mod protocol;
pub mod server;
pub mod state;
pub mod stats;
pub mod storage;
