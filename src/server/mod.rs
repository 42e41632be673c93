//! The running server: listeners, the acceptor, the workers and the
//! housekeeper thread, and their orderly shutdown.
//!
//! Lock and ownership rules (all of them):
//! - A connection belongs to exactly one worker for its whole life; no other
//!   thread touches its socket or buffers.
//! - Workers share only `ServerState`: the cache (its own locks, see
//!   `storage`), atomic counters, and two small mutexes (the `stats conns`
//!   table and the listener list) that are never held while taking another.
//! - The acceptor hands connections over a channel and wakes the worker.
//! - The cluster agent thread shares only `Arc<Cluster>` (one mutex, never
//!   held across I/O or while taking another lock; see `cluster`).

mod acceptor;
mod conn;
mod listener;
pub mod tls;
pub mod uploads;
mod worker;

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use mio::{Poll, Waker};

use std::sync::atomic::{AtomicU8, Ordering};

use crate::cluster::{self, Agent, Cluster, ClusterOptions};
use crate::config::Settings;
use crate::state::{ServerState, ShutdownCause};

pub use conn::OUT_HIGH_WATER;

/// How often the housekeeper ticks the clock and runs storage maintenance.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(100);

/// A started server. Dropping it does not stop it; call [`Server::shutdown`].
pub struct Server {
    state: Arc<ServerState>,
    addrs: Vec<SocketAddr>,
    acceptor_waker: Arc<Waker>,
    worker_wakers: Vec<Arc<Waker>>,
    threads: Vec<JoinHandle<()>>,
    housekeeper_stop: crossbeam_channel::Sender<()>,
    cluster_agent: JoinHandle<()>,
}

impl Server {
    /// Binds the listeners and starts every thread. Errors (a port in use, a
    /// bad address) are returned before anything is served.
    pub fn start(mut settings: Settings) -> io::Result<Server> {
        let listeners = listener::bind_all(&settings.listen, settings.port, settings.backlog)?;
        let addrs = listeners
            .iter()
            .map(|l| l.local_addr())
            .collect::<io::Result<Vec<_>>>()?;
        // `stats settings` reports the port really bound when 0 was asked for.
        if let Some(a) = addrs.first() {
            settings.port = a.port();
        }
        let nthreads = settings.threads;
        // The cluster learns its state from peers before anything is served,
        // so the first `config get cluster` already answers the cluster's
        // version (connections wait in the listen backlog meanwhile).
        let port = addrs.first().map(|a| a.port()).unwrap_or(settings.port);
        let tls = if settings.tls.enabled {
            let t = tls::Tls::load(&settings.tls, 0)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
            Some(Arc::new(t))
        } else {
            None
        };
        let has_peers = settings.cluster.file.is_some() || settings.cluster.join.is_some();
        let peer_tls = cluster::PeerTls::from_settings(&settings.tls, &settings.cluster, has_peers)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let cluster = Arc::new(Cluster::new(ClusterOptions {
            me: cluster::own_entry(&settings.cluster, &settings.listen, port),
            file: settings.cluster.file.clone(),
            join: settings.cluster.join.clone(),
            state_file: settings.cluster.state_file.clone(),
            failure_timeout: settings.cluster.failure_timeout,
            admin: settings.cluster.admin.clone(),
            credentials: settings.cluster.credentials.clone(),
            tls: peer_tls,
        }));
        let verbosity = Arc::new(AtomicU8::new(settings.verbosity));
        let log_level = verbosity.clone();
        let mut agent = Agent::new(
            cluster.clone(),
            Arc::new(move |level, msg: &str| {
                if log_level.load(Ordering::Relaxed) >= level {
                    eprintln!("{msg}");
                }
            }),
        );
        agent
            .bootstrap()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let auth = crate::auth::Auth::load(&settings)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        let needs_login = settings.sasl || settings.auth_file.is_some();
        if needs_login && has_peers && settings.cluster.credentials.is_none() {
            eprintln!(
                "warning: peers that require authentication refuse this node's cluster \
                 exchange; give it --cluster-credentials"
            );
        }
        let mut state = ServerState::with_cluster(settings, cluster);
        state.auth = auth;
        if let Some(t) = &tls {
            t.loaded_at
                .store(state.clock.now(), std::sync::atomic::Ordering::Relaxed);
        }
        state.tls = tls;
        let state = Arc::new(state);

        let mut threads = Vec::new();
        let mut handles = Vec::new();
        let mut worker_wakers = Vec::new();
        for i in 0..nthreads {
            let poll = Poll::new()?;
            let waker = Arc::new(Waker::new(poll.registry(), acceptor::WAKER)?);
            let (tx, rx) = crossbeam_channel::unbounded();
            let w = worker::Worker::new(poll, rx, state.clone(), i);
            threads.push(
                std::thread::Builder::new()
                    .name(format!("worker-{i}"))
                    .spawn(move || w.run())?,
            );
            worker_wakers.push(waker.clone());
            handles.push(acceptor::WorkerHandle { tx, waker });
        }

        let (acc, acceptor_waker) = acceptor::Acceptor::new(listeners, handles, state.clone())?;
        threads.push(
            std::thread::Builder::new()
                .name("acceptor".into())
                .spawn(move || acc.run())?,
        );

        let (housekeeper_stop, stop_rx) = crossbeam_channel::bounded::<()>(1);
        let hk_state = state.clone();
        threads.push(
            std::thread::Builder::new()
                .name("housekeeper".into())
                .spawn(move || {
                    housekeeper(&hk_state, &stop_rx, &verbosity);
                })?,
        );
        let cluster_agent = std::thread::Builder::new()
            .name("cluster".into())
            .spawn(move || agent.run())?;

        Ok(Server {
            state,
            addrs,
            acceptor_waker,
            worker_wakers,
            threads,
            housekeeper_stop,
            cluster_agent,
        })
    }

    /// The bound addresses, one per listener (with the real port when 0 was
    /// asked for).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn state(&self) -> &Arc<ServerState> {
        &self.state
    }

    /// Blocks until a signal or the `shutdown` command asks the server to stop.
    pub fn wait_for_shutdown_request(&self) -> ShutdownCause {
        self.state
            .shutdown_requests()
            .recv()
            .unwrap_or(ShutdownCause::Signal)
    }

    /// Stops accepting, lets workers flush queued replies, and joins every
    /// thread.
    pub fn shutdown(self) {
        // A node that joined leaves first, while it still answers peers.
        self.state.cluster.stop();
        let _ = self.cluster_agent.join();
        self.state.set_stopping();
        let _ = self.acceptor_waker.wake();
        for w in &self.worker_wakers {
            let _ = w.wake();
        }
        let _ = self.housekeeper_stop.send(());
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Ticks the clock and runs storage maintenance until told to stop; also
/// mirrors the `verbosity` level for the cluster agent's log.
fn housekeeper(state: &ServerState, stop: &crossbeam_channel::Receiver<()>, verbosity: &AtomicU8) {
    loop {
        verbosity.store(state.verbosity.load(Ordering::Relaxed), Ordering::Relaxed);
        state.clock.tick();
        let more = state.cache.maintain(state.clock.now());
        let wait = if more {
            Duration::from_millis(1)
        } else {
            HOUSEKEEPING_INTERVAL
        };
        match stop.recv_timeout(wait) {
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {}
            _ => return,
        }
    }
}
