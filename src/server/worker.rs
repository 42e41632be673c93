//! A worker thread: its own `mio::Poll` and connection table. Connections
//! arrive from the acceptor over a channel followed by a wake-up. Sockets are
//! edge-triggered and drained to `WouldBlock`; a connection that used up its
//! request budget (`-R`) is put on a ready list and served again after the
//! others, so one busy client cannot starve the rest.

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use super::acceptor::{NewConn, WAKER};
use super::conn::{Conn, Next, Scratch};
use crate::exec::Context;
use crate::protocol::Limits;
use crate::state::ServerState;
use crate::stats::ThreadStats;

/// How long a stopping worker keeps trying to flush queued replies.
const SHUTDOWN_FLUSH: Duration = Duration::from_secs(2);
/// Most new connections taken on per turn of the event loop, so a storm of
/// connections cannot keep the worker from its established ones.
const ADOPT_BATCH: usize = 32;

pub struct Worker {
    poll: Poll,
    rx: Receiver<NewConn>,
    conns: Slab<Conn>,
    state: Arc<ServerState>,
    stats: Arc<ThreadStats>,
    scratch: Scratch,
    ready: VecDeque<usize>,
    limits: Limits,
    /// New connections are still waiting in the channel.
    adopt_more: bool,
}

impl Worker {
    pub fn new(poll: Poll, rx: Receiver<NewConn>, state: Arc<ServerState>, index: usize) -> Self {
        let stats = state.threads[index].clone();
        let limits = Limits {
            item_size_max: state.settings.cache.item_size_max,
            ..Limits::default()
        };
        Worker {
            poll,
            rx,
            conns: Slab::new(),
            state,
            stats,
            scratch: Scratch::new(),
            ready: VecDeque::new(),
            limits,
            adopt_more: false,
        }
    }

    pub fn run(mut self) {
        let mut events = Events::with_capacity(256);
        let mut last_sweep = Instant::now();
        loop {
            let timeout = if self.ready.is_empty() && !self.adopt_more {
                Some(Duration::from_secs(1))
            } else {
                Some(Duration::ZERO)
            };
            if let Err(e) = self.poll.poll(&mut events, timeout) {
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                eprintln!("ferrocache: worker poll failed: {e}");
                break;
            }
            if self.state.is_stopping() {
                break;
            }
            for event in events.iter() {
                match event.token() {
                    WAKER => self.adopt_new(),
                    Token(key) => {
                        if event.is_read_closed() || event.is_error() {
                            if let Some(conn) = self.conns.get_mut(key) {
                                conn.note_hangup();
                            }
                        }
                        self.serve(key)
                    }
                }
            }
            // Connections that yielded get one more turn each, in order.
            for _ in 0..self.ready.len() {
                if let Some(key) = self.ready.pop_front() {
                    self.serve(key);
                }
            }
            // Then the next batch of new connections, if any are left.
            if self.adopt_more {
                self.adopt_new();
            }
            if last_sweep.elapsed() >= Duration::from_secs(1) {
                last_sweep = Instant::now();
                self.close_idle();
            }
        }
        self.shut_down();
    }

    /// Takes on up to [`ADOPT_BATCH`] connections from the acceptor.
    fn adopt_new(&mut self) {
        self.adopt_more = false;
        for _ in 0..ADOPT_BATCH {
            let Ok(nc) = self.rx.try_recv() else {
                return;
            };
            let entry = self.conns.vacant_entry();
            let key = entry.key();
            let mut conn = Conn::new(nc.stream, nc.id, nc.last_cmd, self.state.uploads.clone());
            if nc.tls {
                match self.state.tls.as_ref().map(|t| t.accept()) {
                    Some(Ok(session)) => conn.set_tls(session),
                    _ => {
                        self.forget(nc.id);
                        continue;
                    }
                }
            }
            // Both interests once: with edge triggering there is nothing to
            // re-register when a connection switches between reading and
            // waiting for its output to drain.
            if self
                .poll
                .registry()
                .register(
                    &mut conn.stream,
                    Token(key),
                    Interest::READABLE | Interest::WRITABLE,
                )
                .is_err()
            {
                self.forget(nc.id);
                continue;
            }
            entry.insert(conn);
            // Data may have arrived before registration; serve it now.
            self.serve(key);
        }
        // The waker may not fire again for these: take them next turn.
        self.adopt_more = !self.rx.is_empty();
    }

    fn serve(&mut self, key: usize) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let cx = Context {
            state: &self.state,
            stats: &self.stats,
            conn_id: conn.id,
        };
        match conn.drive(
            &mut self.scratch,
            &cx,
            &self.limits,
            self.state.settings.reqs_per_event,
        ) {
            Next::Wait => {}
            Next::Yield => {
                self.stats.conn_yields.incr();
                if !self.ready.contains(&key) {
                    self.ready.push_back(key);
                }
            }
            Next::Close => self.close(key),
        }
    }

    fn close(&mut self, key: usize) {
        if let Some(mut conn) = self.conns.try_remove(key) {
            let _ = self.poll.registry().deregister(&mut conn.stream);
            self.ready.retain(|&k| k != key);
            self.forget(conn.id);
        }
    }

    fn forget(&self, id: u64) {
        self.state.unregister_conn(id);
        self.state
            .conns
            .curr_connections
            .fetch_sub(1, Ordering::Relaxed);
    }

    /// Closes connections idle past `-o idle_timeout` and, when
    /// authentication is on, those still unauthenticated past
    /// `-o auth_timeout`.
    fn close_idle(&mut self) {
        let limit = self.state.settings.idle_timeout;
        let auth_limit = match self.state.auth {
            Some(_) => self.state.settings.auth_timeout,
            None => 0,
        };
        if limit == 0 && auth_limit == 0 {
            return;
        }
        let now = self.state.clock.now();
        let expired = |c: &Conn| {
            let idle = limit > 0 && now.saturating_sub(c.last_request()) > limit;
            let unauthenticated = auth_limit > 0
                && !c.is_authenticated()
                && now.saturating_sub(c.accepted()) > auth_limit;
            (idle || unauthenticated) && !c.has_output()
        };
        let idle: Vec<usize> = self
            .conns
            .iter()
            .filter(|(_, c)| expired(c))
            .map(|(k, _)| k)
            .collect();
        for key in idle {
            self.close(key);
        }
    }

    /// Stops serving: drops connections still in the channel, writes what is
    /// queued for each connection and closes it once its client has it all
    /// (see `Conn::flush_on_shutdown`), bounded in time, then closes the rest.
    fn shut_down(&mut self) {
        while let Ok(nc) = self.rx.try_recv() {
            self.forget(nc.id);
        }
        let deadline = Instant::now() + SHUTDOWN_FLUSH;
        let mut events = Events::with_capacity(256);
        loop {
            let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
            for key in keys {
                let id = self.conns[key].id;
                let cx = Context {
                    state: &self.state,
                    stats: &self.stats,
                    conn_id: id,
                };
                let done = self.conns[key].flush_on_shutdown(&mut self.scratch, &cx, &self.limits);
                if done {
                    self.close(key);
                }
            }
            let now = Instant::now();
            if self.conns.is_empty() || now >= deadline {
                break;
            }
            // Acknowledgements raise no event: look again soon.
            let wait = (deadline - now).min(Duration::from_millis(10));
            let _ = self.poll.poll(&mut events, Some(wait));
        }
        let keys: Vec<usize> = self.conns.iter().map(|(k, _)| k).collect();
        for key in keys {
            self.close(key);
        }
    }
}
