//! Cluster auto discovery (ElastiCache-compatible).
//!
//! Every ferrocache node answers `config get cluster` with the current node list and a
//! version number, in the format AWS's cluster clients already understand. Polling it lets
//! the client follow nodes joining, leaving or changing address without a restart.
//!
//! [`payload`] parses what the nodes send (pure functions); [`fetch`] asks one endpoint over a
//! connection. Polling, retries and applying new versions live in [`Client`](crate::Client).

pub mod fetch;
pub mod payload;

pub use fetch::{fetch_config, fetch_form, fetch_from};

pub use payload::{
    parse_payload, parse_reply, ClusterConfig, Node, NodeError, PayloadError, Reply, ReplyError,
    ReplyForm,
};
