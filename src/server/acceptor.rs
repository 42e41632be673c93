//! The acceptor thread: accepts on every listener, enforces `-c` the way
//! memcached does (`ERROR Too many open connections`, then close), and hands
//! connections round-robin to the workers, so they spread evenly whatever the
//! kernel's port hashing would do.

use std::io::{self, Write};
use std::net::TcpListener as StdListener;
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::Sender;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::state::{ConnEntry, ServerState};

/// A connection on its way to a worker.
pub struct NewConn {
    pub stream: TcpStream,
    pub id: u64,
    pub last_cmd: Arc<std::sync::atomic::AtomicU32>,
    /// The listener speaks TLS (`-Z`, not `notls:`).
    pub tls: bool,
}

/// The channel and waker of one worker.
pub struct WorkerHandle {
    pub tx: Sender<NewConn>,
    pub waker: Arc<Waker>,
}

pub const WAKER: Token = Token(usize::MAX);
const TOO_MANY: &[u8] = b"ERROR Too many open connections\r\n";

static NEXT_CONN_ID: AtomicU64 = AtomicU64::new(1);

/// The acceptor's poll and listeners, built before its thread starts so that
/// binding errors reach `main`.
pub struct Acceptor {
    poll: Poll,
    listeners: Vec<TcpListener>,
    /// Per listener: whether its connections speak TLS.
    tls: Vec<bool>,
    workers: Vec<WorkerHandle>,
    state: Arc<ServerState>,
    next: usize,
}

impl Acceptor {
    pub fn new(
        listeners: Vec<StdListener>,
        workers: Vec<WorkerHandle>,
        state: Arc<ServerState>,
    ) -> io::Result<(Acceptor, Arc<Waker>)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let mut ls = Vec::with_capacity(listeners.len());
        let mut tls = Vec::with_capacity(listeners.len());
        for (i, l) in listeners.into_iter().enumerate() {
            let mut l = TcpListener::from_std(l);
            poll.registry()
                .register(&mut l, Token(i), Interest::READABLE)?;
            let plain = match l.local_addr() {
                Ok(a) => state.settings.tls.notls.contains(&a.ip()),
                Err(_) => true,
            };
            tls.push(state.tls.is_some() && !plain);
            ls.push(l);
        }
        {
            let mut table = state.listeners.lock().unwrap();
            for l in &ls {
                if let Ok(a) = l.local_addr() {
                    table.push((l.as_raw_fd(), a.to_string()));
                }
            }
        }
        Ok((
            Acceptor {
                poll,
                listeners: ls,
                tls,
                workers,
                state,
                next: 0,
            },
            waker,
        ))
    }

    /// Accepts until the server stops; dropping the listeners then stops
    /// accepting at once.
    pub fn run(mut self) {
        let mut events = Events::with_capacity(64);
        // After EMFILE the pending connection raises no new edge, so retry
        // on a timer until accepting works again.
        let mut retry: Option<Duration> = None;
        loop {
            if let Err(e) = self.poll.poll(&mut events, retry) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                eprintln!("ferrocache: acceptor poll failed: {e}");
                return;
            }
            if self.state.is_stopping() {
                return;
            }
            retry = None;
            for i in 0..self.listeners.len() {
                if !self.accept_from(i) {
                    retry = Some(Duration::from_millis(10));
                }
            }
        }
    }

    /// Drains one listener; false when accepting failed for lack of fds.
    fn accept_from(&mut self, i: usize) -> bool {
        loop {
            match self.listeners[i].accept() {
                Ok((stream, peer)) => self.admit(stream, peer, self.tls[i]),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return true,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => continue,
                Err(e) => {
                    self.state.log(1, format_args!("accept failed: {e}"));
                    return false;
                }
            }
        }
    }

    fn admit(&mut self, mut stream: TcpStream, peer: std::net::SocketAddr, tls: bool) {
        let conns = &self.state.conns;
        let max = self.state.settings.max_connections as u64;
        if conns.curr_connections.load(Ordering::Relaxed) >= max {
            conns.rejected_connections.incr();
            // Best effort: a fresh socket's send buffer always takes 33 bytes.
            let _ = stream.write(TOO_MANY);
            return;
        }
        conns.curr_connections.fetch_add(1, Ordering::Relaxed);
        conns.total_connections.incr();
        let _ = stream.set_nodelay(true);
        let id = NEXT_CONN_ID.fetch_add(1, Ordering::Relaxed);
        let last_cmd = Arc::new(std::sync::atomic::AtomicU32::new(self.state.clock.now()));
        let local = stream
            .local_addr()
            .map(|a| a.to_string())
            .unwrap_or_default();
        self.state.register_conn(
            id,
            ConnEntry {
                fd: stream.as_raw_fd(),
                peer: peer.to_string(),
                local,
                last_cmd: last_cmd.clone(),
            },
        );
        self.state
            .log(2, format_args!("<{} new client connection from {peer}", id));
        let w = &self.workers[self.next % self.workers.len()];
        self.next = self.next.wrapping_add(1);
        let conn = NewConn {
            stream,
            id,
            last_cmd,
            tls,
        };
        if w.tx.send(conn).is_ok() {
            let _ = w.waker.wake();
        } else {
            // The worker is gone (shutting down): undo the bookkeeping.
            self.state.unregister_conn(id);
            conns.curr_connections.fetch_sub(1, Ordering::Relaxed);
        }
    }
}
