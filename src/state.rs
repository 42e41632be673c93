//! State shared by every thread of a running server: settings, the cache,
//! the clock, counters, the table behind `stats conns`, and the shutdown
//! request. Nothing here touches sockets.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};

use crossbeam_channel::{Receiver, Sender};

use crate::clock::Clock;
use crate::cluster::Cluster;
use crate::config::Settings;
use crate::stats::{ConnStats, ThreadStats};
use crate::storage::Cache;

/// What `stats conns` shows of one open connection.
#[derive(Debug)]
pub struct ConnEntry {
    /// The socket's file descriptor (memcached keys the report by it).
    pub fd: i32,
    pub peer: String,
    pub local: String,
    /// Relative time of the last command, updated by the owning worker.
    pub last_cmd: Arc<AtomicU32>,
}

/// Why the server stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShutdownCause {
    Signal,
    Command,
}

/// Everything the threads of one server share.
pub struct ServerState {
    pub settings: Settings,
    pub cache: Cache,
    pub clock: Clock,
    pub threads: Vec<Arc<ThreadStats>>,
    pub conns: ConnStats,
    /// Current `verbosity` level (settable at run time).
    pub verbosity: AtomicU8,
    /// Listening sockets as (fd, address) for `stats conns`.
    pub listeners: Mutex<Vec<(i32, String)>>,
    /// Authentication, when `-S` or `-Y` is on (set once at start-up).
    pub auth: Option<Arc<crate::auth::Auth>>,
    /// TLS, when `-Z` is on (set once at start-up).
    pub tls: Option<Arc<crate::server::tls::Tls>>,
    /// Cluster membership and the published configuration.
    pub cluster: Arc<Cluster>,
    /// Memory for values still arriving, shared by all connections.
    pub uploads: Arc<crate::server::uploads::UploadBudget>,
    open: Mutex<BTreeMap<u64, ConnEntry>>,
    stopping: AtomicBool,
    shutdown_tx: Sender<ShutdownCause>,
    shutdown_rx: Receiver<ShutdownCause>,
}

impl ServerState {
    /// Builds the shared state; one [`ThreadStats`] per worker.
    pub fn new(settings: Settings) -> Self {
        let me = crate::cluster::own_entry(&settings.cluster, &settings.listen, settings.port);
        Self::with_cluster(settings, Arc::new(Cluster::standalone(me)))
    }

    /// Builds the shared state around an already started cluster component.
    pub fn with_cluster(settings: Settings, cluster: Arc<Cluster>) -> Self {
        let cache = Cache::new(settings.cache.clone());
        let uploads = Arc::new(crate::server::uploads::UploadBudget::for_mem_limit(
            settings.cache.mem_limit,
        ));
        let threads = (0..settings.threads)
            .map(|_| Arc::new(ThreadStats::default()))
            .collect();
        let (shutdown_tx, shutdown_rx) = crossbeam_channel::bounded(4);
        ServerState {
            verbosity: AtomicU8::new(settings.verbosity),
            settings,
            cache,
            clock: Clock::new(),
            threads,
            conns: ConnStats::default(),
            listeners: Mutex::new(Vec::new()),
            auth: None,
            tls: None,
            cluster,
            uploads,
            open: Mutex::new(BTreeMap::new()),
            stopping: AtomicBool::new(false),
            shutdown_tx,
            shutdown_rx,
        }
    }

    /// Asks the server to stop (a signal or the `shutdown` command).
    pub fn request_shutdown(&self, cause: ShutdownCause) {
        let _ = self.shutdown_tx.try_send(cause);
    }

    /// Where the main thread waits for a shutdown request.
    pub fn shutdown_requests(&self) -> &Receiver<ShutdownCause> {
        &self.shutdown_rx
    }

    /// Marks the server as stopping; workers see it on their next wake-up.
    pub fn set_stopping(&self) {
        self.stopping.store(true, Ordering::SeqCst);
    }

    pub fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::Relaxed)
    }

    /// Records an open connection for `stats conns`.
    pub fn register_conn(&self, id: u64, entry: ConnEntry) {
        self.open.lock().unwrap().insert(id, entry);
    }

    /// The peer address of an open connection.
    pub fn conn_peer(&self, id: u64) -> Option<std::net::IpAddr> {
        let open = self.open.lock().unwrap();
        let peer = &open.get(&id)?.peer;
        peer.parse::<std::net::SocketAddr>().ok().map(|a| a.ip())
    }

    /// Forgets a closed connection.
    pub fn unregister_conn(&self, id: u64) {
        self.open.lock().unwrap().remove(&id);
    }

    /// Calls `f` for every open connection, in id order.
    pub fn for_each_conn(&self, mut f: impl FnMut(u64, &ConnEntry)) {
        for (id, e) in self.open.lock().unwrap().iter() {
            f(*id, e);
        }
    }

    /// Logs a line on stderr when the verbosity is at least `level`.
    pub fn log(&self, level: u8, msg: std::fmt::Arguments<'_>) {
        if self.verbosity.load(Ordering::Relaxed) >= level {
            eprintln!("{msg}");
        }
    }

    /// `SIGHUP`: reads the user databases and the TLS certificates again.
    /// Whatever fails to load keeps its current version; the outcome is
    /// always logged (counts and file errors, never credentials).
    pub fn reload(&self) {
        if let Some(auth) = &self.auth {
            match auth.reload() {
                Ok(summary) => self.log(0, format_args!("reloaded {summary}")),
                Err(e) => self.log(
                    0,
                    format_args!("reload failed, the current users stay: {e}"),
                ),
            }
        }
        if self.tls.is_some() {
            match self.reload_certs() {
                Ok(()) => self.log(0, format_args!("reloaded TLS certificates")),
                Err(e) => self.log(
                    0,
                    format_args!("reload failed, the current certificates stay: {e}"),
                ),
            }
        }
    }

    /// `refresh_certs` and `SIGHUP`: reads the server's certificates and
    /// those the cluster exchange uses, then swaps them in together, so a
    /// failure in either leaves both as they were. The error names files,
    /// never secrets.
    pub fn reload_certs(&self) -> Result<(), String> {
        let Some(tls) = &self.tls else {
            return Ok(());
        };
        let server = tls.load_files()?;
        let peers = match self.cluster.peer_tls() {
            // Its errors say "cluster TLS".
            Some(p) => Some((p, p.load_files()?)),
            None => None,
        };
        tls.install(server, self.clock.now());
        if let Some((p, loaded)) = peers {
            p.install(loaded);
        }
        Ok(())
    }
}
