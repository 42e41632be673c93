//! A bounded pool of connections to one node.
//!
//! At most `max` connections exist at once, idle or in use. A caller that finds none idle and
//! the limit reached waits (up to the pool wait timeout) for one to come back. Connections
//! that saw an error are closed, never returned, so a broken socket is not reused.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::conn::{Connection, Connector, Endpoint, Session, Timeouts};
use crate::error::{Error, Result};

#[derive(Debug, Default)]
struct State {
    idle: Vec<Connection>,
    /// Idle plus checked out.
    total: usize,
}

/// Connections to one node.
#[derive(Debug)]
pub struct Pool {
    endpoint: Endpoint,
    name: Arc<str>,
    connector: Arc<dyn Connector>,
    session: Session,
    timeouts: Timeouts,
    max: usize,
    wait: Duration,
    state: Mutex<State>,
    returned: Condvar,
    /// `(idle, total)` mirrored from `state` for lock-free monitoring.
    idle_count: AtomicUsize,
    total_count: AtomicUsize,
}

impl Pool {
    /// A pool of at most `max` (≥ 1) connections to `endpoint`.
    pub fn new(
        endpoint: Endpoint,
        connector: Arc<dyn Connector>,
        timeouts: Timeouts,
        max: usize,
        wait: Duration,
    ) -> Pool {
        Pool {
            name: endpoint.to_string().into(),
            endpoint,
            connector,
            session: Session::default(),
            timeouts,
            max: max.max(1),
            wait,
            state: Mutex::new(State::default()),
            returned: Condvar::new(),
            idle_count: AtomicUsize::new(0),
            total_count: AtomicUsize::new(0),
        }
    }

    /// Sets up every new connection as `session` says (protocol, SASL credentials).
    pub fn with_session(mut self, session: Session) -> Pool {
        self.session = session;
        self
    }

    /// `host:port` of the node.
    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves the counters consistent: recover the guard.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Mirrors the counts for lock-free monitoring; called with the lock held.
    fn publish(&self, state: &State) {
        self.idle_count.store(state.idle.len(), Ordering::Relaxed);
        self.total_count.store(state.total, Ordering::Relaxed);
    }

    /// An idle connection, or a new one if the pool is below its limit, or the first one
    /// returned within the wait timeout.
    pub fn get(&self) -> Result<Pooled<'_>> {
        let deadline = crate::deadline_after(self.wait);
        let mut state = self.lock();
        loop {
            if let Some(conn) = state.idle.pop() {
                self.publish(&state);
                return Ok(Pooled::new(self, conn, true));
            }
            if state.total < self.max {
                state.total += 1;
                self.publish(&state);
                drop(state);
                return match self.open() {
                    Ok(conn) => Ok(Pooled::new(self, conn, false)),
                    Err(e) => {
                        self.release_slot();
                        Err(e)
                    }
                };
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(Error::PoolTimeout {
                    node: self.name.to_string(),
                });
            }
            state = self
                .returned
                .wait_timeout(state, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// A connection outside the pool (for probes); it does not count towards the limit.
    pub fn open(&self) -> Result<Connection> {
        Connection::open(
            self.connector.as_ref(),
            &self.endpoint,
            self.name.clone(),
            &self.timeouts,
            &self.session,
        )
    }

    /// Closes every idle connection (after the node failed, they are likely dead too).
    pub fn clear_idle(&self) {
        let mut state = self.lock();
        let closed = state.idle.len();
        state.idle.clear();
        state.total -= closed;
        self.publish(&state);
        drop(state);
        self.returned.notify_all();
    }

    /// `(idle, total)` connection counts. Does not take the pool lock.
    pub fn counts(&self) -> (usize, usize) {
        (
            self.idle_count.load(Ordering::Relaxed),
            self.total_count.load(Ordering::Relaxed),
        )
    }

    fn release_slot(&self) {
        let mut state = self.lock();
        state.total -= 1;
        self.publish(&state);
        drop(state);
        self.returned.notify_one();
    }

    fn put_back(&self, mut conn: Connection) {
        conn.shrink();
        let mut state = self.lock();
        state.idle.push(conn);
        self.publish(&state);
        drop(state);
        self.returned.notify_one();
    }
}

/// A checked-out connection. Goes back to the pool on drop if it was marked healthy with
/// [`Pooled::keep`], otherwise it is closed.
#[derive(Debug)]
pub struct Pooled<'p> {
    pool: &'p Pool,
    conn: Option<Connection>,
    keep: bool,
    reused: bool,
}

impl<'p> Pooled<'p> {
    fn new(pool: &'p Pool, conn: Connection, reused: bool) -> Self {
        Pooled {
            pool,
            conn: Some(conn),
            keep: false,
            reused,
        }
    }

    /// Marks the connection fit for reuse: the last exchange completed cleanly.
    pub fn keep(&mut self) {
        self.keep = true;
    }

    /// Whether the connection was idle in the pool (it may have died meanwhile).
    pub fn reused(&self) -> bool {
        self.reused
    }
}

impl Deref for Pooled<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("connection present until drop")
    }
}

impl DerefMut for Pooled<'_> {
    fn deref_mut(&mut self) -> &mut Connection {
        self.conn.as_mut().expect("connection present until drop")
    }
}

impl Drop for Pooled<'_> {
    fn drop(&mut self) {
        let Some(conn) = self.conn.take() else { return };
        if self.keep && !conn.has_leftover() {
            self.pool.put_back(conn);
        } else {
            drop(conn);
            self.pool.release_slot();
        }
    }
}
