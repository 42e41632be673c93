//! The membership agent: one background thread per node that loads saved
//! state, learns from peers before the node serves, then every
//! [`GOSSIP_INTERVAL`] (or at once after a local change) watches the node
//! file, re-evaluates failures and exchanges full state with every peer.
//!
//! Peers are contacted on their cache port with `cluster sync <len>`; each
//! exchange is a push and a pull, so one round trip suffices for two nodes to
//! agree. Exchanges run in parallel, one short-lived thread per peer, with
//! short timeouts, so a dead peer never delays the others.
//!
//! With TLS (`-Z`, see `tls`) each connection starts with a handshake that
//! verifies the peer's certificate against the address dialled. Every
//! exchange, handshake included, runs under one deadline on top of the
//! per-read and per-write timeouts, so a peer that answers a byte at a time
//! cannot hold the agent.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::ServerName;
use rustls::{ClientConnection, StreamOwned};
use socket2::{Domain, Socket, Type};

use super::credentials::PeerCredentials;
use super::node::NodeEntry;
use super::state::{Change, Replica};
use super::tls::PeerTls;
use super::{nodefile, wire, Cluster, GOSSIP_INTERVAL};

const CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
const IO_TIMEOUT: Duration = Duration::from_millis(800);
/// The most one exchange may take once connected: TLS handshake, login,
/// request and reply.
const EXCHANGE_TIMEOUT: Duration = Duration::from_millis(1600);

/// A peer's refusal of a request before authentication (`-S`/`-Y`).
const UNAUTHENTICATED: &str = "CLIENT_ERROR unauthenticated";

/// Where the agent reports: `(level, message)`; level 0 is always shown,
/// 1 with `-v`, 2 with `-vv`.
pub type Log = Arc<dyn Fn(u8, &str) + Send + Sync>;

pub struct Agent {
    cluster: Arc<Cluster>,
    log: Log,
    conns: HashMap<SocketAddr, Conn>,
    /// The `--join` target until one exchange with it succeeded.
    join: Option<String>,
    /// The last error of each peer that is failing, so each outage is
    /// logged once, not every round.
    failing: HashMap<SocketAddr, String>,
    last_file: Option<Vec<u8>>,
}

impl Agent {
    pub fn new(cluster: Arc<Cluster>, log: Log) -> Agent {
        let join = cluster.opts.join.clone();
        Agent {
            cluster,
            log,
            conns: HashMap::new(),
            join,
            failing: HashMap::new(),
            last_file: None,
        }
    }

    /// Runs before the node serves: loads the saved state, reads the node
    /// file, learns the cluster's state from reachable peers, and publishes
    /// the first pair. A bad node file at start-up is an error.
    pub fn bootstrap(&mut self) -> Result<(), String> {
        let opts = self.cluster.opts.clone();
        if let Some(path) = &opts.state_file {
            match std::fs::read(path) {
                Ok(bytes) => {
                    let mut saved = wire::decode(&bytes)
                        .map_err(|e| format!("--cluster-state {}: {e}", path.display()))?;
                    // Freshness is unknown after a restart: give every node
                    // a full failure timeout to answer.
                    for (_, silent) in &mut saved.records {
                        *silent = Duration::ZERO;
                    }
                    self.cluster.with_state(|s| s.merge(saved, Instant::now()));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(format!("--cluster-state {}: {e}", path.display())),
            }
        }
        let file = match &opts.file {
            Some(path) => {
                let bytes = std::fs::read(path)
                    .map_err(|e| format!("--cluster-file {}: {e}", path.display()))?;
                let text = String::from_utf8_lossy(&bytes);
                let nodes = nodefile::parse(&text)
                    .map_err(|e| format!("--cluster-file {}: {e}", path.display()))?;
                if !nodes.iter().any(|n| n.endpoint() == opts.me.endpoint()) {
                    (self.log)(
                        0,
                        &format!(
                            "cluster: this node ({}) is not in {}",
                            opts.me,
                            path.display()
                        ),
                    );
                }
                self.last_file = Some(bytes);
                Some(nodes)
            }
            None => None,
        };
        // Pull only: an empty replica changes nothing on the peers, so they
        // do not see this node half-started.
        let pull = wire::encode(&Replica::default());
        let mut targets = self.peer_targets();
        let me = opts.me.endpoint();
        for n in file.iter().flatten().filter(|n| n.endpoint() != me) {
            targets.extend(Target::of_node(n));
        }
        let join = self.join.as_deref().and_then(Target::of_hostport);
        let join_addr = join.as_ref().map(|t| t.addr);
        if let Some(t) = join {
            targets.push(t);
        } else if let Some(j) = &self.join {
            (self.log)(0, &format!("cluster: cannot resolve --join {j}"));
        }
        sort_targets(&mut targets);
        let mut joined = false;
        for (addr, reply) in self.exchange_all(targets, &pull) {
            if let Ok(bytes) = reply {
                if Some(addr) == join_addr {
                    joined = true;
                }
                self.absorb(&bytes);
            }
        }
        if joined {
            self.join = None;
        } else if let Some(j) = &self.join {
            (self.log)(
                0,
                &format!("cluster: --join {j} not reachable yet; retrying"),
            );
        }
        let join = opts.join.is_some();
        let change = self
            .cluster
            .with_state(|s| s.boot(file, join, Instant::now()));
        self.report(change);
        self.cluster.wake();
        Ok(())
    }

    /// The agent loop, until [`Cluster::stop`].
    pub fn run(mut self) {
        loop {
            let _ = self.cluster.wake_rx.recv_timeout(GOSSIP_INTERVAL);
            if self.cluster.stopping() {
                self.leave();
                return;
            }
            self.watch_file();
            let change = self
                .cluster
                .with_state(|s| s.republish(Instant::now(), None));
            self.report(change);
            self.gossip();
        }
    }

    fn leave(&mut self) {
        let joined = self
            .cluster
            .state
            .lock()
            .map(|s| s.joined())
            .unwrap_or(false);
        if !joined {
            return;
        }
        self.cluster.with_state(|s| {
            s.leave();
            None::<Change>
        });
        (self.log)(1, "cluster: leaving");
        self.gossip();
    }

    fn watch_file(&mut self) {
        let Some(path) = self.cluster.opts.file.clone() else {
            return;
        };
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) => {
                if self.last_file.is_some() {
                    (self.log)(
                        0,
                        &format!(
                            "cluster: cannot read {}: {e}; keeping the last good list",
                            path.display()
                        ),
                    );
                    self.last_file = None;
                }
                return;
            }
        };
        if self.last_file.as_deref() == Some(&bytes[..]) {
            return;
        }
        match nodefile::parse(&String::from_utf8_lossy(&bytes)) {
            Ok(nodes) => {
                (self.log)(1, &format!("cluster: {} changed", path.display()));
                let change = self
                    .cluster
                    .with_state(|s| s.file_changed(nodes, Instant::now()));
                self.report(change);
            }
            Err(e) => (self.log)(
                0,
                &format!(
                    "cluster: {}: {e}; keeping the last good list",
                    path.display()
                ),
            ),
        }
        self.last_file = Some(bytes);
    }

    fn gossip(&mut self) {
        let now = Instant::now();
        let data = {
            let s = self.cluster.state.lock().unwrap_or_else(|e| e.into_inner());
            wire::encode(&s.replica(now))
        };
        let mut targets = self.peer_targets();
        let join = self.join.as_deref().and_then(Target::of_hostport);
        let join_addr = join.as_ref().map(|t| t.addr);
        if let Some(t) = join {
            targets.push(t);
            sort_targets(&mut targets);
        }
        for (addr, reply) in self.exchange_all(targets, &data) {
            match reply {
                Ok(bytes) => {
                    if Some(addr) == join_addr {
                        (self.log)(1, &format!("cluster: joined via {addr}"));
                        self.join = None;
                    }
                    if self.failing.remove(&addr).is_some() {
                        (self.log)(1, &format!("cluster: {addr} answers again"));
                    }
                    self.absorb(&bytes);
                }
                Err(e) => {
                    let msg = e.to_string();
                    if self.failing.get(&addr) != Some(&msg) {
                        // A refusal (the peer's admin rule or its login)
                        // needs the operator; an unreachable peer is routine.
                        let level = match e.kind() {
                            io::ErrorKind::InvalidData | io::ErrorKind::PermissionDenied => 0,
                            _ => 1,
                        };
                        (self.log)(level, &format!("cluster: {addr}: {msg}"));
                        self.failing.insert(addr, msg);
                    }
                }
            }
        }
        let known: Vec<SocketAddr> = self.peer_targets().iter().map(|t| t.addr).collect();
        self.failing
            .retain(|a, _| known.contains(a) || Some(*a) == join_addr);
    }

    fn absorb(&mut self, bytes: &[u8]) {
        match wire::decode(bytes) {
            Ok(remote) => {
                let change = self.cluster.with_state(|s| s.merge(remote, Instant::now()));
                self.report(change);
            }
            Err(e) => (self.log)(1, &format!("cluster: bad reply from a peer: {e}")),
        }
    }

    fn report(&self, change: Option<Change>) {
        if let Some(c) = change {
            (self.log)(1, &c.to_string());
        }
    }

    fn peer_targets(&self) -> Vec<Target> {
        let peers = {
            let s = self.cluster.state.lock().unwrap_or_else(|e| e.into_inner());
            s.peers()
        };
        let mut out: Vec<Target> = peers.iter().filter_map(Target::of_node).collect();
        sort_targets(&mut out);
        out
    }

    /// Exchanges `data` with every target in parallel; connections are kept
    /// for the next round and dropped on any error.
    fn exchange_all(
        &mut self,
        targets: Vec<Target>,
        data: &[u8],
    ) -> Vec<(SocketAddr, io::Result<Vec<u8>>)> {
        let local = self.cluster.opts.me.ip.parse::<IpAddr>().ok();
        let login = self.cluster.opts.credentials.as_ref();
        let tls = self.cluster.opts.tls.as_deref();
        let mut work: Vec<(Target, Option<Conn>)> = targets
            .into_iter()
            .map(|t| {
                let c = self.conns.remove(&t.addr);
                (t, c)
            })
            .collect();
        let results: Vec<(SocketAddr, Option<Conn>, io::Result<Vec<u8>>)> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = work
                    .drain(..)
                    .map(|(target, mut conn)| {
                        scope.spawn(move || {
                            let peer = Peer {
                                target: &target,
                                local,
                                tls,
                            };
                            let r = exchange(&mut conn, &peer, login, data);
                            if r.is_err() {
                                conn = None;
                            }
                            (target.addr, conn, r)
                        })
                    })
                    .collect();
                handles.into_iter().filter_map(|h| h.join().ok()).collect()
            });
        results
            .into_iter()
            .map(|(addr, conn, r)| {
                if let Some(c) = conn {
                    self.conns.insert(addr, c);
                }
                (addr, r)
            })
            .collect()
    }
}

impl Cluster {
    /// Stops the agent; a node that joined leaves first.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::SeqCst);
        self.wake();
    }
}

/// A peer to exchange with: where to connect, and the name its TLS
/// certificate must carry (the address dialled: the entry's IP when it has
/// one, else its hostname).
#[derive(Clone, Debug)]
struct Target {
    addr: SocketAddr,
    name: String,
}

impl Target {
    fn of_node(n: &NodeEntry) -> Option<Target> {
        if let Ok(ip) = n.ip.parse::<IpAddr>() {
            return Some(Target {
                addr: SocketAddr::new(ip, n.port),
                name: ip.to_canonical().to_string(),
            });
        }
        let addr = (n.host.as_str(), n.port).to_socket_addrs().ok()?.next()?;
        Some(Target {
            addr,
            name: n.host.clone(),
        })
    }

    /// `--join HOST:PORT` (`[v6]:PORT` too).
    fn of_hostport(hostport: &str) -> Option<Target> {
        let addr = hostport.to_socket_addrs().ok()?.next()?;
        let (host, _) = hostport.rsplit_once(':')?;
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let name = match host.parse::<IpAddr>() {
            Ok(ip) => ip.to_canonical().to_string(),
            Err(_) => host.to_string(),
        };
        Some(Target { addr, name })
    }
}

/// One target per address, in address order.
fn sort_targets(targets: &mut Vec<Target>) {
    targets.sort_by_key(|t| t.addr);
    targets.dedup_by_key(|t| t.addr);
}

/// What a connection to one peer needs.
struct Peer<'a> {
    target: &'a Target,
    local: Option<IpAddr>,
    tls: Option<&'a PeerTls>,
}

/// One push-pull exchange on a (possibly reused) connection. A peer that
/// requires authentication refuses the sync and closes; with peer
/// credentials the exchange then reconnects, logs in and tries once more.
/// Logging in only on demand keeps a login `set` away from peers that would
/// simply store it.
fn exchange(
    conn: &mut Option<Conn>,
    peer: &Peer<'_>,
    login: Option<&PeerCredentials>,
    data: &[u8],
) -> io::Result<Vec<u8>> {
    let mut req = format!("cluster sync {}\r\n", data.len()).into_bytes();
    req.extend_from_slice(data);
    req.extend_from_slice(b"\r\n");
    let deadline = Instant::now() + EXCHANGE_TIMEOUT;
    if conn.as_ref().is_some_and(|c| c.stale(peer.tls)) {
        *conn = None;
    }
    let stream = match conn {
        Some(c) => {
            c.set_deadline(deadline);
            c
        }
        None => conn.insert(connect(peer)?),
    };
    send(stream, &req)?;
    match (read_reply(stream), login) {
        (Err(e), Some(creds)) if e.kind() == io::ErrorKind::PermissionDenied => {
            let mut stream = connect(peer)?;
            log_in(&mut stream, creds)?;
            send(&mut stream, &req)?;
            let reply = read_reply(&mut stream);
            *conn = Some(stream);
            reply
        }
        (r, _) => r,
    }
}

fn send(stream: &mut Conn, req: &[u8]) -> io::Result<()> {
    stream.write_all(req)?;
    stream.flush()
}

/// Sends the text login and expects `STORED`; the peer closes the
/// connection on a refusal, which is reported with its reply line.
fn log_in(stream: &mut Conn, creds: &PeerCredentials) -> io::Result<()> {
    send(stream, &creds.login_request())?;
    let mut line = Vec::with_capacity(64);
    let mut byte = [0u8; 1];
    while !line.ends_with(b"\n") && line.len() < 256 {
        match stream.read(&mut byte)? {
            0 => break,
            _ => line.push(byte[0]),
        }
    }
    if line == b"STORED\r\n" {
        return Ok(());
    }
    let reply = String::from_utf8_lossy(&line);
    Err(io::Error::new(
        io::ErrorKind::PermissionDenied,
        format!("login refused: {}", reply.trim_end()),
    ))
}

/// Connects (and with TLS, completes the handshake) within the timeouts; the
/// exchange's deadline starts once the TCP connection is up.
fn connect(peer: &Peer<'_>) -> io::Result<Conn> {
    let Some(tls) = peer.tls else {
        let sock = connect_tcp(peer.target.addr, peer.local)?;
        return Ok(Conn::Plain(Timed::new(
            sock,
            Instant::now() + EXCHANGE_TIMEOUT,
        )));
    };
    let name = server_name(&peer.target.name)?;
    let (config, generation) = tls.config()?;
    let mut session = ClientConnection::new(config, name)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
    let sock = connect_tcp(peer.target.addr, peer.local)?;
    let mut timed = Timed::new(sock, Instant::now() + EXCHANGE_TIMEOUT);
    while session.is_handshaking() {
        session.complete_io(&mut timed).map_err(|e| {
            let e = tls_error(e, true);
            // Timeouts, resets: still say where it happened.
            match e.kind() {
                io::ErrorKind::InvalidData => e,
                kind => io::Error::new(kind, format!("TLS handshake failed: {e}")),
            }
        })?;
    }
    Ok(Conn::Tls {
        stream: Box::new(StreamOwned::new(session, timed)),
        answered: false,
        generation,
    })
}

/// The name a peer's certificate must carry: an IP address or a DNS name.
fn server_name(name: &str) -> io::Result<ServerName<'static>> {
    ServerName::try_from(name.to_string()).map_err(|_| {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("'{name}' is not a name a TLS certificate can carry"),
        )
    })
}

/// Names a rustls failure for the log (the rustls error, never key
/// material) as `InvalidData`, so it is logged at level 0 like a refused
/// login; other errors pass unchanged. `handshaking`: the failure came
/// before the peer's first answer (under TLS 1.3 a server judges the client
/// certificate after the client has finished, so its refusal arrives with
/// the first read).
fn tls_error(e: io::Error, handshaking: bool) -> io::Error {
    let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<rustls::Error>()) else {
        return e;
    };
    let what = if handshaking {
        "TLS handshake failed"
    } else {
        "TLS error"
    };
    io::Error::new(io::ErrorKind::InvalidData, format!("{what}: {tls}"))
}

fn connect_tcp(addr: SocketAddr, local: Option<IpAddr>) -> io::Result<TcpStream> {
    let sock = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    if let Some(ip) = local {
        // Node-to-node traffic leaves from this node's own address.
        if ip.is_ipv4() == addr.is_ipv4() && !ip.is_unspecified() {
            sock.bind(&SocketAddr::new(ip, 0).into())?;
        }
    }
    sock.connect_timeout(&addr.into(), CONNECT_TIMEOUT)?;
    let stream: TcpStream = sock.into();
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(IO_TIMEOUT))?;
    stream.set_write_timeout(Some(IO_TIMEOUT))?;
    Ok(stream)
}

/// Reads `CLUSTER <len>\r\n<data>\r\nEND\r\n`.
fn read_reply(stream: &mut impl Read) -> io::Result<Vec<u8>> {
    let bad = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let mut buf = Vec::with_capacity(4096);
    let mut chunk = [0u8; 8192];
    loop {
        if let Some(nl) = buf.iter().position(|&b| b == b'\n') {
            let line = std::str::from_utf8(&buf[..nl])
                .map_err(|_| bad("reply is not text"))?
                .trim_end();
            if line == UNAUTHENTICATED {
                return Err(io::Error::new(io::ErrorKind::PermissionDenied, line));
            }
            let len: usize = line
                .strip_prefix("CLUSTER ")
                .and_then(|l| l.parse().ok())
                .ok_or_else(|| bad(line))?;
            if len > wire::MAX_LEN {
                return Err(bad("reply too large"));
            }
            let total = nl + 1 + len + b"\r\nEND\r\n".len();
            if buf.len() >= total {
                if &buf[nl + 1 + len..total] != b"\r\nEND\r\n" {
                    return Err(bad("bad reply framing"));
                }
                return Ok(buf[nl + 1..nl + 1 + len].to_vec());
            }
        } else if buf.len() > 512 {
            return Err(bad("reply header too long"));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed"));
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// A socket whose reads and writes give up at a deadline, on top of the
/// per-call timeouts: each call waits at most the time left.
struct Timed {
    sock: TcpStream,
    deadline: Instant,
    /// The socket timeouts as last set, to skip needless system calls.
    read_timeout: Duration,
    write_timeout: Duration,
}

impl Timed {
    fn new(sock: TcpStream, deadline: Instant) -> Timed {
        Timed {
            sock,
            deadline,
            read_timeout: IO_TIMEOUT,
            write_timeout: IO_TIMEOUT,
        }
    }

    /// The timeout for the next call: the per-call timeout or the time left.
    fn budget(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
        }
        Ok(left.min(IO_TIMEOUT))
    }
}

/// A timed-out socket call reports `WouldBlock` on Unix; say what it is.
fn timed_out(e: io::Error) -> io::Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {
            io::Error::new(io::ErrorKind::TimedOut, "timed out")
        }
        _ => e,
    }
}

// A call with a socket timeout fails with EINTR after the process was
// stopped and continued (signal(7)): it is tried again, within the deadline.
impl Read for Timed {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            let t = self.budget()?;
            if t != self.read_timeout {
                self.sock.set_read_timeout(Some(t))?;
                self.read_timeout = t;
            }
            match self.sock.read(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r.map_err(timed_out),
            }
        }
    }
}

impl Write for Timed {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        loop {
            let t = self.budget()?;
            if t != self.write_timeout {
                self.sock.set_write_timeout(Some(t))?;
                self.write_timeout = t;
            }
            match self.sock.write(buf) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                r => return r.map_err(timed_out),
            }
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.sock.flush()
    }
}

/// A connection to a peer, kept between rounds.
enum Conn {
    Plain(Timed),
    Tls {
        stream: Box<StreamOwned<ClientConnection, Timed>>,
        /// The peer has sent application data (so it accepted the
        /// handshake).
        answered: bool,
        /// The certificates it was made with (see `PeerTls::reload`).
        generation: u64,
    },
}

impl Conn {
    /// Made with certificates reloaded since, or in a mode no longer used.
    fn stale(&self, tls: Option<&PeerTls>) -> bool {
        match (self, tls) {
            (Conn::Plain(_), None) => false,
            (Conn::Tls { generation, .. }, Some(t)) => *generation != t.generation(),
            _ => true,
        }
    }

    fn set_deadline(&mut self, deadline: Instant) {
        match self {
            Conn::Plain(t) => t.deadline = deadline,
            Conn::Tls { stream, .. } => stream.sock.deadline = deadline,
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(t) => t.read(buf),
            Conn::Tls {
                stream, answered, ..
            } => match stream.read(buf) {
                Ok(n) => {
                    *answered |= n > 0;
                    Ok(n)
                }
                Err(e) => Err(tls_error(e, !*answered)),
            },
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Plain(t) => t.write(buf),
            Conn::Tls {
                stream, answered, ..
            } => stream.write(buf).map_err(|e| tls_error(e, !*answered)),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Conn::Plain(t) => t.flush(),
            Conn::Tls {
                stream, answered, ..
            } => stream.flush().map_err(|e| tls_error(e, !*answered)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(host: &str, ip: &str) -> NodeEntry {
        NodeEntry {
            host: host.into(),
            ip: ip.into(),
            port: 11211,
        }
    }

    #[test]
    fn certificates_are_checked_against_the_address_dialled() {
        let t = Target::of_node(&entry("cache-1", "10.0.0.1")).unwrap();
        assert_eq!(
            (t.addr.to_string().as_str(), t.name.as_str()),
            ("10.0.0.1:11211", "10.0.0.1")
        );
        // A mapped address is named as the IPv4 address a certificate holds.
        let t = Target::of_node(&entry("cache-1", "::ffff:10.0.0.1")).unwrap();
        assert_eq!(t.name, "10.0.0.1");
        let t = Target::of_node(&entry("localhost", "")).unwrap();
        assert_eq!(t.name, "localhost");
        assert!(t.addr.ip().is_loopback());
        let t = Target::of_hostport("[::1]:7").unwrap();
        assert_eq!((t.addr.port(), t.name.as_str()), (7, "::1"));
        let t = Target::of_hostport("127.0.0.1:7").unwrap();
        assert_eq!(t.name, "127.0.0.1");
        let t = Target::of_hostport("localhost:7").unwrap();
        assert_eq!(t.name, "localhost");
    }

    #[test]
    fn every_valid_hostname_is_a_certificate_name() {
        for name in [
            "cache-1.example",
            "1node",
            "node_2.internal",
            "10.0.0.1",
            "::1",
        ] {
            assert!(server_name(name).is_ok(), "{name}");
        }
    }

    #[test]
    fn a_deadline_bounds_every_call() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let sock = TcpStream::connect(l.local_addr().unwrap()).unwrap();
        let _peer = l.accept().unwrap();
        let mut t = Timed::new(sock, Instant::now() + Duration::from_millis(50));
        let start = Instant::now();
        let e = t.read(&mut [0u8; 8]).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(start.elapsed() < IO_TIMEOUT, "{:?}", start.elapsed());
        let e = t.write(b"x").unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
    }
}
