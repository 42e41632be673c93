//! Cluster auto discovery: the node list and its version, served by every
//! node as an ElastiCache-compatible configuration endpoint.
//!
//! This module owns the membership of the cluster: where the list comes
//! from (node file, `config set|delete cluster`, `--join`, failure
//! detection), how nodes agree on it (full-state exchange, see `state`), and
//! its publication. It never touches client connections: `exec` calls
//! [`Cluster::published`] (a lock-free load of pre-rendered bytes) and the
//! administrative entry points; the agent thread in `agent` talks to peers.
//!
//! Locks: one mutex around [`State`], held only for pure in-memory work
//! (merge, render), never across I/O and never while taking another lock.
//! Readers never take it: the published payload is swapped atomically.
//!
//! Design, guarantees and failure cases: `docs/cluster.md`.

pub mod admin;
mod agent;
pub mod credentials;
pub mod node;
pub mod nodefile;
pub mod payload;
pub mod state;
pub mod tls;
pub mod wire;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use crossbeam_channel::{Receiver, Sender};

pub use admin::AdminRule;
pub use agent::Agent;
pub use credentials::PeerCredentials;
pub use node::NodeEntry;
use state::{AdminError, Change, State};
pub use tls::PeerTls;

/// Default time a silent node stays listed. See `docs/cluster.md`: longer
/// than a typical restart (so a restart does not remap keys twice), shorter
/// than the 60 s poll interval of common clients.
pub const DEFAULT_FAILURE_TIMEOUT: Duration = Duration::from_secs(30);

/// How often a node exchanges state with every peer (also the delay before
/// a change reaches a peer that missed the immediate push).
pub const GOSSIP_INTERVAL: Duration = Duration::from_millis(200);

/// How the cluster part of a node is set up (from the command line).
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    /// This node as it appears in the list.
    pub me: NodeEntry,
    /// `--cluster-file`: the administered list, watched for changes.
    pub file: Option<PathBuf>,
    /// `--join HOST:PORT`: a member to register with at start-up.
    pub join: Option<String>,
    /// `--cluster-state`: where the state is saved so a restart never
    /// publishes an older version, even with every peer down.
    pub state_file: Option<PathBuf>,
    /// `None` = never drop a silent node.
    pub failure_timeout: Option<Duration>,
    /// Who may run `config set|delete cluster`.
    pub admin: AdminRule,
    /// `--cluster-credentials`: the login peers under `-S`/`-Y` require.
    pub credentials: Option<PeerCredentials>,
    /// How peers are reached over TLS; `None`: plain TCP.
    pub tls: Option<Arc<PeerTls>>,
}

/// This node's entry in the list: `--cluster-host` (default: the system
/// hostname), `--cluster-ip` (default: the `-l` address when it is one
/// specific address), and the listening port.
pub fn own_entry(
    c: &crate::config::ClusterSettings,
    listen: &[std::net::IpAddr],
    port: u16,
) -> NodeEntry {
    let host = c.host.clone().unwrap_or_else(system_hostname);
    let ip = match (c.ip, listen) {
        (Some(ip), _) => ip.to_string(),
        (None, [only]) if !only.is_unspecified() => only.to_string(),
        _ => String::new(),
    };
    NodeEntry { host, ip, port }
}

fn system_hostname() -> String {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most `len` bytes into the buffer.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    if rc == 0 && NodeEntry::parse(&format!("{name}||1")).is_ok() {
        name
    } else {
        "localhost".to_string()
    }
}

/// The current configuration, rendered once per change.
#[derive(Debug)]
pub struct Published {
    pub version: u64,
    pub members: usize,
    /// `<version>\n<nodes>\n`, the data block of `config get cluster`.
    pub payload: Vec<u8>,
}

impl Published {
    fn new(pair: &state::Pair) -> Self {
        Published {
            version: pair.version,
            members: pair.nodes.len(),
            payload: payload::render(pair.version, &pair.nodes),
        }
    }
}

/// Why `config set|delete cluster` was refused; the text is the reply.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cluster configuration changes are not allowed from this client")]
    NotAdmin,
    #[error("bad cluster configuration: {0}")]
    Payload(#[from] payload::PayloadError),
    #[error("{0}")]
    Admin(#[from] AdminError),
    #[error("only the 'cluster' configuration exists")]
    UnknownKey,
}

/// The membership component of one node, shared by the workers and the
/// agent.
pub struct Cluster {
    opts: ClusterOptions,
    state: Mutex<State>,
    published: ArcSwap<Published>,
    wake_tx: Sender<()>,
    wake_rx: Receiver<()>,
    stopping: AtomicBool,
}

impl Cluster {
    pub fn new(opts: ClusterOptions) -> Self {
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(1);
        let state = State::new(opts.me.clone(), epoch, opts.failure_timeout, Instant::now());
        let initial = Published::new(&state::Pair {
            version: 1,
            nodes: vec![opts.me.clone()],
        });
        let (wake_tx, wake_rx) = crossbeam_channel::bounded(1);
        Cluster {
            opts,
            state: Mutex::new(state),
            published: ArcSwap::from_pointee(initial),
            wake_tx,
            wake_rx,
            stopping: AtomicBool::new(false),
        }
    }

    /// A single node listing itself, for servers without cluster options.
    pub fn standalone(me: NodeEntry) -> Self {
        let c = Cluster::new(ClusterOptions {
            me,
            file: None,
            join: None,
            state_file: None,
            failure_timeout: None,
            admin: AdminRule::default(),
            credentials: None,
            tls: None,
        });
        c.with_state(|s| s.boot(None, false, Instant::now()));
        c
    }

    pub fn options(&self) -> &ClusterOptions {
        &self.opts
    }

    /// The configuration to serve. Lock-free.
    pub fn published(&self) -> arc_swap::Guard<Arc<Published>> {
        self.published.load()
    }

    /// Runs `f` on the state and publishes the outcome if the pair changed.
    /// With a state file, the new state is saved first: a version is never
    /// served before it would survive a crash.
    fn with_state<T>(&self, f: impl FnOnce(&mut State) -> T) -> T
    where
        T: ChangeOf,
    {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let out = f(&mut s);
        if out.change().is_some() {
            if let Some(path) = &self.opts.state_file {
                if let Err(e) = save(path, &s) {
                    // Serving on is better than refusing: the cluster's
                    // peers still hold the version. Say so loudly.
                    eprintln!("cluster: cannot save {}: {e}", path.display());
                }
            }
            self.published
                .store(Arc::new(Published::new(s.published())));
        }
        out
    }

    /// Asks the agent to push the state to every peer now.
    fn wake(&self) {
        let _ = self.wake_tx.try_send(());
    }

    /// `config set cluster`: `payload` is `<version>\n<nodes>\n`.
    pub fn config_set(&self, payload: &[u8]) -> Result<Option<Change>, ConfigError> {
        let (version, nodes) = payload::parse(payload)?;
        let change = self.with_state(|s| s.admin_set(version, nodes, Instant::now()))?;
        self.wake();
        Ok(change)
    }

    /// `config delete cluster`: `None` when there was nothing to delete.
    pub fn config_delete(&self) -> Option<Option<Change>> {
        let out = self.with_state(|s| s.admin_delete(Instant::now()));
        self.wake();
        out
    }

    /// A peer's `cluster sync`: merge its state, answer with ours.
    pub fn sync(&self, data: &[u8]) -> Result<(Vec<u8>, Option<Change>), wire::WireError> {
        let remote = wire::decode(data)?;
        let now = Instant::now();
        let change = self.with_state(|s| s.merge(remote, now));
        let reply = wire::encode(
            &self
                .state
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .replica(now),
        );
        Ok((reply, change))
    }

    /// Whether a connection from `peer` may exchange membership state:
    /// administrators, and the addresses of known nodes.
    pub fn may_sync(&self, peer: std::net::IpAddr) -> bool {
        if self.opts.admin.allows(peer) {
            return true;
        }
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let known = |n: &NodeEntry| n.ip.parse::<std::net::IpAddr>().ok() == Some(peer);
        s.peers().iter().any(known) || s.base().nodes.iter().any(known)
    }

    /// How the agent secures its exchanges, when it uses TLS with peers;
    /// reloaded with the server's certificates.
    pub fn peer_tls(&self) -> Option<&PeerTls> {
        self.opts.tls.as_deref()
    }

    fn stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
    }
}

/// Writes the state file atomically (write, fsync, rename).
fn save(path: &std::path::Path, s: &State) -> std::io::Result<()> {
    use std::io::Write;
    let mut replica = s.replica(Instant::now());
    for (_, silent) in &mut replica.records {
        *silent = Duration::ZERO;
    }
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&wire::encode(&replica))?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// Results of state operations that may carry a change of the published
/// pair (so `with_state` knows when to re-render).
trait ChangeOf {
    fn change(&self) -> Option<&Change>;
}

impl ChangeOf for Option<Change> {
    fn change(&self) -> Option<&Change> {
        self.as_ref()
    }
}

impl ChangeOf for Option<Option<Change>> {
    fn change(&self) -> Option<&Change> {
        self.as_ref().and_then(|c| c.as_ref())
    }
}

impl<E> ChangeOf for Result<Option<Change>, E> {
    fn change(&self) -> Option<&Change> {
        self.as_ref().ok().and_then(|c| c.as_ref())
    }
}

#[cfg(test)]
mod tests {
    /// The parsers see bytes from operators and from the network: mutated
    /// valid inputs must be refused or accepted, never panic. (A cheap
    /// stand-in for a fuzzer that runs with every `cargo test`.)
    #[test]
    fn parsers_survive_mutated_input() {
        let seeds: [&[u8]; 3] = [
            b"# c\na|10.0.0.1|11211\n1b||7\nc|::1|65535\n",
            b"42\na|10.0.0.1|11211 1b||7 c|::1|65535\n",
            b"ferrocache-cluster 1\npublished 3 a||1\nbase 2 a||1 b||2\nmax 9\nnode 5 0 3 3 100 a||1\n",
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = move || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let alphabet = b"|\n\r 0123456789:.#ab-_\xff";
        for seed in seeds {
            for _ in 0..3000 {
                let mut b = seed.to_vec();
                for _ in 0..(next() % 4 + 1) {
                    let i = (next() as usize) % (b.len() + 1);
                    let c = alphabet[(next() as usize) % alphabet.len()];
                    match next() % 3 {
                        0 if i < b.len() => b[i] = c,
                        1 => b.insert(i, c),
                        _ if i < b.len() => {
                            b.remove(i);
                        }
                        _ => {}
                    }
                }
                let _ = super::nodefile::parse(&String::from_utf8_lossy(&b));
                if let Ok((v, nodes)) = super::payload::parse(&b) {
                    assert!(v > 0 && !nodes.is_empty());
                    let again = super::payload::parse(&super::payload::render(v, &nodes));
                    assert_eq!(again, Ok((v, nodes)));
                }
                if let Ok(r) = super::wire::decode(&b) {
                    assert_eq!(super::wire::decode(&super::wire::encode(&r)), Ok(r));
                }
            }
        }
    }
}
