//! Per-node state: the connection pool and the health state machine.
//!
//! ```text
//!            failure_limit consecutive failures
//!   Up  ───────────────────────────────────────▶  Failing  (requests fail fast, no I/O)
//!   ▲                                               │ a probe fails and the ejection cap
//!   │ a `version` probe succeeds                    ▼ allows it
//!   └──────────────────────────────────────────  Ejected  (ring rebuilt without the node)
//! ```
//!
//! Probes run on the client's background thread: the first as soon as the node is marked
//! failing, then with exponential backoff between [`FailurePolicy::probe_interval`] and
//! [`FailurePolicy::max_probe_interval`], so a node that comes back is readmitted within
//! `max_probe_interval` of its return.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::codec::{self, Answer, Command};
use crate::conn::{Connector, Endpoint, Session, Timeouts};
use crate::error::{Error, Result};
use crate::pool::Pool;
use crate::ring::Server;

/// What happens to the keys of a node that keeps failing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FailoverMode {
    /// libmemcached's auto-eject: the ring is rebuilt without the node (weights
    /// re-normalised), so its keys move to the other nodes until it is readmitted, when they
    /// move back.
    #[default]
    Eject,
    /// spymemcached's redistribute: the ring keeps every node; a key whose node is ejected
    /// goes to the first live node of its failover sequence
    /// ([`Ring::redistribute`](crate::Ring::redistribute)).
    Redistribute,
    /// Keys of a failing node fail fast with [`Error::NodeFailing`](crate::Error::NodeFailing) until it is back; no key
    /// ever moves.
    FailFast,
}

/// When nodes are considered failing, ejected and readmitted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FailurePolicy {
    /// Consecutive failed requests that mark a node failing (fast-fail).
    pub failure_limit: u32,
    /// Delay between `version` probes of a failing or ejected node after the first failed
    /// one (the first probe runs as soon as the node is marked failing); doubles up to
    /// `max_probe_interval`.
    pub probe_interval: Duration,
    /// Upper bound of the probe backoff.
    pub max_probe_interval: Duration,
    /// At most `floor(fraction × nodes)` nodes are ejected at once; further failing nodes
    /// stay in the ring and fail fast, so a network blip cannot empty the ring.
    pub max_ejected_fraction: f64,
    /// What happens to the keys of an ejected node.
    pub mode: FailoverMode,
}

impl Default for FailurePolicy {
    fn default() -> Self {
        FailurePolicy {
            failure_limit: 3,
            probe_interval: Duration::from_secs(1),
            max_probe_interval: Duration::from_secs(5),
            max_ejected_fraction: 0.5,
            mode: FailoverMode::Eject,
        }
    }
}

impl FailurePolicy {
    /// How many of `nodes` may be ejected at once.
    pub fn max_ejected(&self, nodes: usize) -> usize {
        let fraction = self.max_ejected_fraction.clamp(0.0, 1.0);
        (fraction * nodes as f64 + 1e-9).floor() as usize
    }
}

/// Health of a node as the client sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum NodeState {
    /// Serving requests.
    Up,
    /// Failed `failure_limit` times in a row: requests fail fast while probes run.
    Failing,
    /// Removed from the ring (or skipped by redistribution) until a probe succeeds.
    Ejected,
}

#[derive(Debug)]
struct Health {
    state: NodeState,
    consecutive: u32,
    next_probe: Instant,
    backoff: Duration,
}

/// A node known to the client.
#[derive(Debug)]
pub(crate) struct Node {
    pub(crate) endpoint: Endpoint,
    pub(crate) server: Server,
    pub(crate) pool: Pool,
    health: Mutex<Health>,
    /// `health.state`, readable without the lock on every request.
    state: AtomicU8,
}

/// What a probe changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ProbeOutcome {
    /// Still failing; try again later.
    StillDown,
    /// The node answered and is `Up` again (it was `Ejected` if `was_ejected`).
    Readmitted { was_ejected: bool },
}

impl Node {
    pub(crate) fn new(
        endpoint: Endpoint,
        server: Server,
        connector: Arc<dyn Connector>,
        session: Session,
        timeouts: Timeouts,
        pool_size: usize,
        pool_wait: Duration,
    ) -> Node {
        Node {
            pool: Pool::new(endpoint.clone(), connector, timeouts, pool_size, pool_wait)
                .with_session(session),
            endpoint,
            server,
            health: Mutex::new(Health {
                state: NodeState::Up,
                consecutive: 0,
                next_probe: Instant::now(),
                backoff: Duration::ZERO,
            }),
            state: AtomicU8::new(NodeState::Up as u8),
        }
    }

    /// Sets the state under the health lock, mirroring it for lock-free readers.
    fn set(&self, health: &mut Health, state: NodeState) {
        health.state = state;
        self.state.store(state as u8, Ordering::Release);
    }

    fn health(&self) -> MutexGuard<'_, Health> {
        self.health.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn name(&self) -> &str {
        self.pool.name()
    }

    pub(crate) fn state(&self) -> NodeState {
        match self.state.load(Ordering::Acquire) {
            0 => NodeState::Up,
            1 => NodeState::Failing,
            _ => NodeState::Ejected,
        }
    }

    pub(crate) fn succeeded(&self) {
        if self.state() != NodeState::Up {
            return;
        }
        let mut health = self.health();
        if health.consecutive != 0 && health.state == NodeState::Up {
            health.consecutive = 0;
        }
    }

    /// Counts a failure; returns true when this one marked the node failing.
    pub(crate) fn failed(&self, policy: &FailurePolicy) -> bool {
        let mut health = self.health();
        health.consecutive = health.consecutive.saturating_add(1);
        if health.state != NodeState::Up || health.consecutive < policy.failure_limit.max(1) {
            return false;
        }
        self.set(&mut health, NodeState::Failing);
        // Probe at once: a dead node is ejected within one probe (no long fast-fail window),
        // a blip is readmitted at once. Later probes back off from `probe_interval`.
        health.backoff = Duration::ZERO;
        health.next_probe = Instant::now();
        drop(health);
        // Idle connections to a node that just failed are most likely dead as well.
        self.pool.clear_idle();
        true
    }

    /// When the next probe is due, if the node needs one.
    pub(crate) fn probe_due(&self) -> Option<Instant> {
        if self.state() == NodeState::Up {
            return None;
        }
        let health = self.health();
        (health.state != NodeState::Up).then_some(health.next_probe)
    }

    /// Sends `version` on a fresh connection and updates the state. `may_eject` says whether
    /// the ejection cap leaves room for this node if the probe fails.
    pub(crate) fn probe(&self, policy: &FailurePolicy, may_eject: bool) -> ProbeOutcome {
        // A refused login or TLS session still means the node is up: readmit it, so requests
        // reach it and report the refusal instead of failing fast without saying why.
        let answered = match self.version() {
            Ok(_) => true,
            Err(e) => matches!(e, Error::Auth { .. } | Error::Tls { .. }),
        };
        let mut health = self.health();
        if answered {
            let was_ejected = health.state == NodeState::Ejected;
            self.set(&mut health, NodeState::Up);
            health.consecutive = 0;
            return ProbeOutcome::Readmitted { was_ejected };
        }
        if health.state == NodeState::Failing && may_eject && policy.mode != FailoverMode::FailFast
        {
            self.set(&mut health, NodeState::Ejected);
        }
        health.backoff = (health.backoff.saturating_mul(2))
            .max(policy.probe_interval)
            .min(policy.max_probe_interval.max(policy.probe_interval));
        health.next_probe = crate::deadline_after(health.backoff);
        ProbeOutcome::StillDown
    }

    /// The node's `version` reply, over a connection outside the pool.
    pub(crate) fn version(&self) -> Result<String> {
        let mut conn = self.pool.open()?;
        match codec::execute(&mut conn, &Command::Version)? {
            Answer::Version(v) => Ok(v),
            other => Err(Error::Protocol {
                node: self.name().to_owned(),
                message: format!("unexpected answer {other:?}"),
            }),
        }
    }

    #[cfg(test)]
    pub(crate) fn set_state(&self, state: NodeState) {
        let mut health = self.health();
        self.set(&mut health, state);
    }
}

/// Snapshot of one node for monitoring and the CLI.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    /// `host:port`.
    pub name: String,
    /// The IP announced by discovery, if any.
    pub ip: Option<std::net::IpAddr>,
    /// Current health.
    pub state: NodeState,
    /// Pooled connections: idle, and total (idle plus in use).
    pub connections: (usize, usize),
}

impl Node {
    pub(crate) fn info(&self) -> NodeInfo {
        NodeInfo {
            name: self.name().to_owned(),
            ip: self.endpoint.ip,
            state: self.state(),
            connections: self.pool.counts(),
        }
    }
}
