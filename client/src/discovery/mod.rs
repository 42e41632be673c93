//! Cluster auto discovery (ElastiCache-compatible).
//!
//! Every ferrocache node answers `config get cluster` with the current node list and a
//! version number, in the format AWS's cluster clients already understand. Polling it lets
//! the client follow nodes joining, leaving or changing address without a restart.
//!
//! This module parses what the nodes send; it does not own connections or timers.

pub mod payload;

pub use payload::{
    parse_payload, parse_reply, ClusterConfig, Node, NodeError, PayloadError, Reply, ReplyError,
    ReplyForm,
};
