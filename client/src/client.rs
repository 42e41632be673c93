//! The client: routing, operations, discovery polling and node health.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use crate::codec::{self, Answer, Command};
use crate::conn::{
    Connection, Connector, Credentials, Endpoint, Protocol, Session, TcpConnector, Timeouts,
};
use crate::discovery::{fetch_config, fetch_from, ClusterConfig};
use crate::error::{Error, Result};
use crate::node::{FailoverMode, FailurePolicy, Node, NodeInfo, NodeState, ProbeOutcome};
use crate::protocol::{self, RetrievalVerb, StorageVerb};
use crate::ring::{key_hash, Identity, Naming, Ring, Server, MEMCACHED_DEFAULT_PORT};

/// Live nodes asked for the configuration in one poll before falling back to the seeds.
const DISCOVERY_NODE_TRIES: usize = 2;

/// Per-node results of a whole-cluster command, as `(host:port, result)` in node order.
pub type PerNode<T> = Vec<(String, Result<T>)>;

/// `STAT` lines as `(name, value)` pairs, in the order the server sent them.
pub type Stats = Vec<(String, String)>;

/// A stored value with its flags.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Item {
    /// The value bytes.
    pub value: Vec<u8>,
    /// The client flags stored with the value.
    pub flags: u32,
    /// The CAS unique: present in [`Client::gets`] results, `None` from `get`, `gat` and
    /// `get_multi`.
    pub cas: Option<u64>,
}

/// The result of [`Client::get_multi`]: what was found, and the keys whose node failed.
#[derive(Debug, Default)]
pub struct MultiGet {
    /// Found items by key. Missing keys are absent.
    pub items: HashMap<Vec<u8>, Item>,
    /// Nodes that failed, with their keys left unanswered. A key whose value arrived before
    /// its node failed is in `items`, not here.
    pub failed: Vec<NodeFailure>,
}

/// Keys that could not be read because their node failed.
#[derive(Debug)]
pub struct NodeFailure {
    /// `host:port` of the node.
    pub node: String,
    /// The keys it owns in this request that it did not answer (neither a value nor a miss).
    pub keys: Vec<Vec<u8>>,
    /// What went wrong.
    pub error: Error,
}

/// Where a key lives, and why (see [`Client::locate`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// `key_hash(key)`: the first four MD5 bytes, little-endian.
    pub key_hash: u32,
    /// The ring point that owns the hash (first point ≥ hash, wrapping).
    pub point: u32,
    /// The server owning that point, `host:port`.
    pub owner: String,
    /// The name hashed to place the owner's points (with `-<i>` appended).
    pub point_name: String,
    /// Points on the ring, and servers they belong to.
    pub ring_points: usize,
    /// Servers on the ring.
    pub ring_servers: usize,
    /// Where a request would go now (differs from `owner` when redistributed), or why it
    /// would fail.
    pub route: std::result::Result<String, String>,
}

/// Builds a [`Client`]: static server list or discovery seeds, and tuning.
///
/// ```
/// use std::time::Duration;
/// use ferrocache_client::{Client, FailoverMode, Naming};
///
/// // Nothing is contacted here: a static list does not need the servers to be up.
/// let client = Client::builder()
///     .servers(["10.0.0.1:11211", "10.0.0.2:11211"])
///     .naming(Naming::Libmemcached)
///     .read_timeout(Duration::from_millis(200))
///     .failover_mode(FailoverMode::Eject)
///     .build()
///     .unwrap();
/// let placement = client.locate("user:42").unwrap();
/// assert!(placement.owner.starts_with("10.0.0."));
/// ```
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    servers: Vec<Server>,
    /// Addresses that did not parse, reported by `build`.
    invalid: Vec<String>,
    seeds: Vec<String>,
    naming: Naming,
    identity: Identity,
    timeouts: Timeouts,
    pool_size: usize,
    pool_wait: Duration,
    failure: FailurePolicy,
    poll_interval: Duration,
    poll_jitter: f64,
    retry_interval: Duration,
    discover_on_build: bool,
    connector: Arc<dyn Connector>,
    protocol: Option<Protocol>,
    credentials: Option<Credentials>,
}

impl Default for ClientBuilder {
    fn default() -> Self {
        ClientBuilder {
            servers: Vec::new(),
            invalid: Vec::new(),
            seeds: Vec::new(),
            naming: Naming::default(),
            identity: Identity::default(),
            timeouts: Timeouts::default(),
            pool_size: 4,
            pool_wait: Duration::from_secs(1),
            failure: FailurePolicy::default(),
            poll_interval: Duration::from_secs(60),
            poll_jitter: 0.1,
            retry_interval: Duration::from_secs(1),
            discover_on_build: true,
            connector: Arc::new(TcpConnector),
            protocol: None,
            credentials: None,
        }
    }
}

impl ClientBuilder {
    /// Adds a static server, `host:port` (`host` alone means port 11211; IPv6 as `[::1]:port`).
    /// Invalid addresses are reported by [`build`](Self::build).
    pub fn server(mut self, address: &str) -> Self {
        match parse_host_port(address) {
            Ok((host, port)) => self.servers.push(Server::new(host, port)),
            Err(Error::Config(why)) => self.invalid.push(why),
            Err(other) => self.invalid.push(other.to_string()),
        }
        self
    }

    /// Adds several static servers; see [`server`](Self::server).
    pub fn servers<I, S>(mut self, addresses: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        for address in addresses {
            self = self.server(address.as_ref());
        }
        self
    }

    /// Adds a static server with its weight and naming.
    pub fn ring_server(mut self, server: Server) -> Self {
        self.servers.push(server);
        self
    }

    /// Adds a configuration endpoint, `host:port`. With at least one seed the client
    /// discovers the node list from the cluster and follows its changes; the seed name is
    /// resolved anew every time it is used.
    pub fn seed(mut self, address: &str) -> Self {
        self.seeds.push(address.to_owned());
        self
    }

    /// Which client family to agree with on key placement.
    pub fn naming(mut self, naming: Naming) -> Self {
        self.naming = naming;
        self
    }

    /// Whether discovered nodes are named on the ring by hostname or by IP.
    pub fn identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    /// All connection timeouts at once.
    pub fn timeouts(mut self, timeouts: Timeouts) -> Self {
        self.timeouts = timeouts;
        self
    }

    /// Connect timeout (default 500 ms).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.connect = timeout;
        self
    }

    /// Read timeout per read (default 1 s).
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.read = timeout;
        self
    }

    /// Write timeout per write (default 1 s).
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.timeouts.write = timeout;
        self
    }

    /// Most connections per node (default 4).
    pub fn pool_size(mut self, size: usize) -> Self {
        self.pool_size = size.max(1);
        self
    }

    /// How long a request waits for a free connection when a node's pool is exhausted
    /// (default 1 s).
    pub fn pool_wait(mut self, wait: Duration) -> Self {
        self.pool_wait = wait;
        self
    }

    /// Failure detection, ejection and readmission settings.
    pub fn failure_policy(mut self, policy: FailurePolicy) -> Self {
        self.failure = policy;
        self
    }

    /// What happens to the keys of a failing node (default [`FailoverMode::Eject`]).
    pub fn failover_mode(mut self, mode: FailoverMode) -> Self {
        self.failure.mode = mode;
        self
    }

    /// Time between discovery polls once a configuration is known (default 60 s).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval;
        self
    }

    /// Random spread of each poll interval, as a fraction (default 0.1: ±10 %), so clients
    /// started together do not poll together.
    pub fn poll_jitter(mut self, fraction: f64) -> Self {
        self.poll_jitter = fraction.clamp(0.0, 1.0);
        self
    }

    /// Delay before retrying discovery while no configuration is known yet (default 1 s,
    /// doubling up to the poll interval).
    pub fn discovery_retry_interval(mut self, interval: Duration) -> Self {
        self.retry_interval = interval;
        self
    }

    /// Whether [`build`](Self::build) tries discovery once before returning (default true).
    /// Either way `build` succeeds when the cluster is unreachable.
    pub fn discover_on_build(mut self, yes: bool) -> Self {
        self.discover_on_build = yes;
        self
    }

    /// How connections are opened: [`TcpConnector`] by default,
    /// [`TlsConnector`](crate::tls::TlsConnector) for TLS, or your own. Data connections,
    /// probes and discovery polls (seeds included) all go through it.
    pub fn connector(mut self, connector: Arc<dyn Connector>) -> Self {
        self.connector = connector;
        self
    }

    /// The protocol every connection speaks (default [`Protocol::Text`], or
    /// [`Protocol::Binary`] when SASL credentials are set).
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = Some(protocol);
        self
    }

    /// SASL credentials: every connection authenticates right after it opens (reconnects
    /// too), over the binary protocol. A refusal is [`Error::Auth`].
    pub fn credentials(mut self, credentials: Credentials) -> Self {
        self.credentials = Some(credentials);
        self
    }

    /// SASL user name and password, with the mechanism negotiated (see
    /// [`credentials`](Self::credentials)).
    pub fn sasl(self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.credentials(Credentials::new(user, password))
    }

    /// Creates the client. Fails only on unusable settings; an unreachable cluster is not an
    /// error (requests fail with [`Error::NoServers`] until discovery succeeds).
    pub fn build(self) -> Result<Client> {
        if let Some(bad) = self.invalid.first() {
            return Err(Error::Config(bad.clone()));
        }
        if self.servers.is_empty() && self.seeds.is_empty() {
            return Err(Error::Config("no servers and no discovery seeds".into()));
        }
        if !self.servers.is_empty() && !self.seeds.is_empty() {
            return Err(Error::Config(
                "give either static servers or discovery seeds, not both".into(),
            ));
        }
        let seeds = self
            .seeds
            .iter()
            .map(|s| {
                parse_host_port(s).map(|(host, port)| Endpoint {
                    host,
                    ip: None,
                    port,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let protocol = match (self.protocol, &self.credentials) {
            (Some(Protocol::Text), Some(_)) => {
                return Err(Error::Config(
                    "SASL authentication needs the binary protocol".into(),
                ))
            }
            (Some(protocol), _) => protocol,
            (None, Some(_)) => Protocol::Binary,
            (None, None) => Protocol::Text,
        };
        #[cfg(not(feature = "sasl"))]
        if self.credentials.is_some() {
            return Err(Error::Config(
                "SASL credentials given, but the client was built without the `sasl` feature"
                    .into(),
            ));
        }

        let settings = Settings {
            naming: self.naming,
            identity: self.identity,
            timeouts: self.timeouts,
            pool_size: self.pool_size,
            pool_wait: self.pool_wait,
            failure: self.failure,
            connector: self.connector,
            session: Session {
                protocol,
                credentials: self.credentials,
            },
        };
        let nodes = self
            .servers
            .iter()
            .map(|server| {
                let endpoint = Endpoint {
                    host: server.host.clone(),
                    ip: server.ip,
                    port: server.port,
                };
                Arc::new(settings.node(endpoint, server.clone()))
            })
            .collect::<Vec<_>>();
        if !nodes.is_empty() {
            Ring::new(&self.servers, self.naming).map_err(|e| Error::Config(e.to_string()))?;
        }
        let topology = Topology::build(nodes, None, &settings);

        let discovery = (!seeds.is_empty()).then(|| Discovery {
            seeds,
            cursor: AtomicUsize::new(0),
            last_error: Mutex::new(None),
            poll_interval: self.poll_interval,
            jitter: self.poll_jitter,
            retry_interval: self.retry_interval,
        });
        let (wake, woken) = mpsc::channel();
        let inner = Arc::new(Inner {
            topology: RwLock::new(Arc::new(topology)),
            update: Mutex::new(()),
            settings,
            discovery,
            wake,
        });
        if inner.discovery.is_some() && self.discover_on_build {
            // Failure is fine: the background thread keeps trying.
            let _ = inner.poll();
        }
        let weak = Arc::downgrade(&inner);
        std::thread::Builder::new()
            .name("ferrocache-client".into())
            .spawn(move || background(weak, woken))
            .map_err(|e| Error::Config(format!("cannot start the background thread: {e}")))?;
        Ok(Client { inner })
    }
}

/// Keys per multi-get write. A node has at most two batches in flight, so however many keys a
/// multi-get asks for, the client never blocks writing requests while the server, its replies
/// unread, has stopped reading them: a batch's request (at most 256 keys of 250 bytes) fits in
/// the socket buffers.
const MULTI_GET_BATCH: usize = 256;

/// Writes one multi-get batch; returns the terminators its replies carry.
fn send_multi_get(conn: &mut Connection, keys: &[&[u8]]) -> Result<usize> {
    let mut request = Vec::new();
    let ends = codec::encode_multi_get(conn.protocol(), keys, &mut request);
    conn.send(&request)?;
    Ok(ends)
}

/// Parses `host:port`, `host` (port 11211) or `[v6]:port`.
pub fn parse_host_port(address: &str) -> Result<(String, u16)> {
    let bad = || Error::Config(format!("invalid address {address:?}: expected host:port"));
    let address = address.trim();
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(bad)?;
        match after.strip_prefix(':') {
            Some(port) => (host, Some(port)),
            None if after.is_empty() => (host, None),
            None => return Err(bad()),
        }
    } else {
        match address.rsplit_once(':') {
            // A bare IPv6 address (without brackets there is no port).
            Some(_) if address.parse::<std::net::Ipv6Addr>().is_ok() => (address, None),
            Some((host, _)) if host.contains(':') => return Err(bad()),
            Some((host, port)) => (host, Some(port)),
            None => (address, None),
        }
    };
    if host.is_empty() || host.contains(char::is_whitespace) {
        return Err(bad());
    }
    let port = match port {
        None => MEMCACHED_DEFAULT_PORT,
        Some(p) if !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) => {
            match p.parse::<u16>() {
                Ok(p) if p > 0 => p,
                _ => return Err(bad()),
            }
        }
        Some(_) => return Err(bad()),
    };
    Ok((host.to_owned(), port))
}

#[derive(Debug)]
struct Settings {
    naming: Naming,
    identity: Identity,
    timeouts: Timeouts,
    pool_size: usize,
    pool_wait: Duration,
    failure: FailurePolicy,
    connector: Arc<dyn Connector>,
    session: Session,
}

impl Settings {
    fn node(&self, endpoint: Endpoint, server: Server) -> Node {
        Node::new(
            endpoint,
            server,
            self.connector.clone(),
            self.session.clone(),
            self.timeouts,
            self.pool_size,
            self.pool_wait,
        )
    }
}

#[derive(Debug)]
struct Discovery {
    seeds: Vec<Endpoint>,
    cursor: AtomicUsize,
    last_error: Mutex<Option<String>>,
    poll_interval: Duration,
    jitter: f64,
    retry_interval: Duration,
}

/// The node list and the ring over it. Immutable; replaced as a whole.
#[derive(Debug)]
struct Topology {
    nodes: Vec<Arc<Node>>,
    /// `None` while no node is known.
    ring: Option<Ring>,
    /// Ring server index → index in `nodes`.
    members: Vec<usize>,
    version: Option<u64>,
}

impl Topology {
    fn build(nodes: Vec<Arc<Node>>, version: Option<u64>, settings: &Settings) -> Topology {
        let mut members: Vec<usize> = match settings.failure.mode {
            FailoverMode::Eject => (0..nodes.len())
                .filter(|&i| nodes[i].state() != NodeState::Ejected)
                .collect(),
            FailoverMode::Redistribute | FailoverMode::FailFast => (0..nodes.len()).collect(),
        };
        if members.is_empty() {
            members = (0..nodes.len()).collect();
        }
        let servers: Vec<Server> = members.iter().map(|&i| nodes[i].server.clone()).collect();
        let ring = Ring::new(&servers, settings.naming).ok();
        Topology {
            nodes,
            ring,
            members,
            version,
        }
    }

    /// The node a request for `key` goes to.
    fn route(&self, ring: &Ring, key: &[u8], mode: FailoverMode) -> Result<&Arc<Node>> {
        let node_at = |server: usize| &self.nodes[self.members[server]];
        let node = match mode {
            FailoverMode::Eject | FailoverMode::FailFast => node_at(ring.lookup(key)),
            FailoverMode::Redistribute => ring
                .redistribute(key)
                .map(node_at)
                .find(|n| n.state() != NodeState::Ejected)
                .unwrap_or_else(|| node_at(ring.lookup(key))),
        };
        match node.state() {
            NodeState::Up => Ok(node),
            NodeState::Failing | NodeState::Ejected => Err(Error::NodeFailing {
                node: node.name().to_owned(),
            }),
        }
    }
}

#[derive(Debug)]
struct Inner {
    topology: RwLock<Arc<Topology>>,
    /// Serialises topology replacements.
    update: Mutex<()>,
    settings: Settings,
    discovery: Option<Discovery>,
    /// Wakes the background thread (a node started failing). Dropped with the client,
    /// which stops the thread.
    wake: Sender<()>,
}

/// A client for a ferrocache or memcached cluster. Cheap to clone; `Send + Sync`.
///
/// ```no_run
/// use ferrocache_client::Client;
///
/// let client = Client::new(["127.0.0.1:11211"])?;
/// client.set("greeting", "hello", 0, 0)?;
/// let item = client.get("greeting")?.expect("just stored");
/// assert_eq!(item.value, b"hello");
/// # Ok::<(), ferrocache_client::Error>(())
/// ```
///
/// With discovery, the node list comes from the cluster and follows its changes:
///
/// ```no_run
/// use ferrocache_client::Client;
///
/// let client = Client::discover(["cache.cfg.example.internal:11211"])?;
/// println!("config version {:?}", client.config_version());
/// # Ok::<(), ferrocache_client::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Client {
    inner: Arc<Inner>,
}

impl Client {
    /// Settings for a new client.
    pub fn builder() -> ClientBuilder {
        ClientBuilder::default()
    }

    /// A client for a static list of `host:port` servers with default settings.
    pub fn new<I, S>(servers: I) -> Result<Client>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        Client::builder().servers(servers).build()
    }

    /// A client that discovers the cluster through these configuration endpoints.
    pub fn discover<I, S>(seeds: I) -> Result<Client>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        seeds
            .into_iter()
            .fold(Client::builder(), |b, s| b.seed(s.as_ref()))
            .build()
    }

    // ----- retrieval -------------------------------------------------------------------

    /// The value stored under `key`, or `None` on a miss.
    pub fn get(&self, key: impl AsRef<[u8]>) -> Result<Option<Item>> {
        self.retrieve(RetrievalVerb::Get, key.as_ref())
    }

    /// Like [`get`](Self::get), with the CAS unique in [`Item::cas`].
    pub fn gets(&self, key: impl AsRef<[u8]>) -> Result<Option<Item>> {
        self.retrieve(RetrievalVerb::Gets, key.as_ref())
    }

    /// Get and touch: the value, with its expiration time reset to `exptime`.
    pub fn gat(&self, key: impl AsRef<[u8]>, exptime: u32) -> Result<Option<Item>> {
        self.retrieve(RetrievalVerb::Gat(exptime), key.as_ref())
    }

    /// Several keys at once. Keys are grouped by node; each node gets its requests pipelined
    /// in one write, all nodes are sent their requests before any reply is read, so the nodes
    /// work in parallel. A failing node does not fail the call: its keys are reported in
    /// [`MultiGet::failed`].
    pub fn get_multi<K: AsRef<[u8]>>(&self, keys: &[K]) -> Result<MultiGet> {
        for key in keys {
            protocol::check_key(key.as_ref()).map_err(Error::InvalidKey)?;
        }
        let (topology, ring) = self.inner.ring()?;
        let mode = self.inner.settings.failure.mode;

        let mut groups: Vec<(&Arc<Node>, Vec<&[u8]>)> = Vec::new();
        let mut result = MultiGet::default();
        for key in keys {
            let key = key.as_ref();
            match topology.route(&ring, key, mode) {
                Ok(node) => match groups.iter_mut().find(|(n, _)| Arc::ptr_eq(n, node)) {
                    Some((_, keys)) => keys.push(key),
                    None => groups.push((node, vec![key])),
                },
                Err(error) => {
                    let name = error.node().unwrap_or_default().to_owned();
                    match result.failed.iter_mut().find(|f| f.node == name) {
                        Some(failure) => failure.keys.push(key.to_vec()),
                        None => result.failed.push(NodeFailure {
                            node: name,
                            keys: vec![key.to_vec()],
                            error,
                        }),
                    }
                }
            }
        }

        // Send the first batch to every node, then collect the replies, sending each node's next
        // batch before reading the current one.
        let mut sent = Vec::with_capacity(groups.len());
        for (node, keys) in &groups {
            let mut batches = keys.chunks(MULTI_GET_BATCH);
            let first = batches.next().unwrap_or_default();
            let outcome = node.pool.get().and_then(|mut conn| {
                let ends = send_multi_get(&mut conn, first)?;
                Ok((conn, ends))
            });
            match outcome {
                Ok((conn, ends)) => sent.push((node, keys, conn, ends, batches)),
                Err(error) => self.multi_failure(&mut result, node, keys, error),
            }
        }
        for (node, keys, mut conn, mut ends, batches) in sent {
            let items = &mut result.items;
            let mut store = |key: &[u8], item| {
                items.insert(key.to_vec(), item);
            };
            // Keys whose batch was answered in full: a miss among them is a real miss.
            let mut settled = 0;
            let mut reading = keys.len().min(MULTI_GET_BATCH);
            let outcome = batches
                .into_iter()
                .try_for_each(|next| {
                    let next_ends = send_multi_get(&mut conn, next)?;
                    codec::read_multi_get(&mut conn, ends, &mut store)?;
                    settled += reading;
                    (ends, reading) = (next_ends, next.len());
                    Ok(())
                })
                .and_then(|()| codec::read_multi_get(&mut conn, ends, &mut store));
            match outcome {
                Ok(()) => {
                    conn.keep();
                    node.succeeded();
                }
                Err(error) => {
                    drop(conn);
                    // Values that arrived before the failure are good; only the keys still
                    // unanswered are reported as failed.
                    let unanswered: Vec<&[u8]> = keys[settled..]
                        .iter()
                        .copied()
                        .filter(|k| !result.items.contains_key(*k))
                        .collect();
                    self.multi_failure(&mut result, node, &unanswered, error);
                }
            }
        }
        Ok(result)
    }

    fn multi_failure(&self, result: &mut MultiGet, node: &Node, keys: &[&[u8]], error: Error) {
        if error.is_node_failure() {
            self.inner.node_failed(node);
        }
        if keys.is_empty() {
            return;
        }
        result.failed.push(NodeFailure {
            node: node.name().to_owned(),
            keys: keys.iter().map(|k| k.to_vec()).collect(),
            error,
        });
    }

    fn retrieve(&self, verb: RetrievalVerb, key: &[u8]) -> Result<Option<Item>> {
        match self.on_key(key, &Command::Retrieve { verb, key })? {
            Answer::Item(item) => Ok(item),
            other => Err(self.wrong_answer(key, other)),
        }
    }

    /// An answer of the wrong kind; the codecs never produce one.
    fn wrong_answer(&self, key: &[u8], answer: Answer) -> Error {
        Error::Protocol {
            node: self.locate(key).map(|p| p.owner).unwrap_or_default(),
            message: format!("unexpected answer {answer:?}"),
        }
    }

    // ----- storage ---------------------------------------------------------------------

    /// Stores `value` with `flags`, expiring after `exptime` (0: never; seconds, or a Unix
    /// time when above 30 days).
    pub fn set(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        flags: u32,
        exptime: u32,
    ) -> Result<()> {
        self.store(
            StorageVerb::Set,
            key.as_ref(),
            value.as_ref(),
            flags,
            exptime,
            None,
        )
    }

    /// Stores only if the key does not exist; [`Error::NotStored`] otherwise.
    pub fn add(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        flags: u32,
        exptime: u32,
    ) -> Result<()> {
        self.store(
            StorageVerb::Add,
            key.as_ref(),
            value.as_ref(),
            flags,
            exptime,
            None,
        )
    }

    /// Stores only if the key exists; [`Error::NotStored`] otherwise.
    pub fn replace(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        flags: u32,
        exptime: u32,
    ) -> Result<()> {
        self.store(
            StorageVerb::Replace,
            key.as_ref(),
            value.as_ref(),
            flags,
            exptime,
            None,
        )
    }

    /// Appends to an existing value (flags and expiry are kept); [`Error::NotStored`] if the
    /// key does not exist.
    pub fn append(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.store(
            StorageVerb::Append,
            key.as_ref(),
            value.as_ref(),
            0,
            0,
            None,
        )
    }

    /// Prepends to an existing value; [`Error::NotStored`] if the key does not exist.
    pub fn prepend(&self, key: impl AsRef<[u8]>, value: impl AsRef<[u8]>) -> Result<()> {
        self.store(
            StorageVerb::Prepend,
            key.as_ref(),
            value.as_ref(),
            0,
            0,
            None,
        )
    }

    /// Stores only if the item's CAS unique is still `cas` (from [`gets`](Self::gets));
    /// [`Error::Exists`] if it changed, [`Error::NotFound`] if it is gone.
    pub fn cas(
        &self,
        key: impl AsRef<[u8]>,
        value: impl AsRef<[u8]>,
        flags: u32,
        exptime: u32,
        cas: u64,
    ) -> Result<()> {
        self.store(
            StorageVerb::Cas,
            key.as_ref(),
            value.as_ref(),
            flags,
            exptime,
            Some(cas),
        )
    }

    fn store(
        &self,
        verb: StorageVerb,
        key: &[u8],
        value: &[u8],
        flags: u32,
        exptime: u32,
        cas: Option<u64>,
    ) -> Result<()> {
        let command = Command::Store {
            verb,
            key,
            value,
            flags,
            exptime,
            cas,
        };
        self.on_key(key, &command).map(drop)
    }

    /// Removes the item; [`Error::NotFound`] if there was none.
    pub fn delete(&self, key: impl AsRef<[u8]>) -> Result<()> {
        let key = key.as_ref();
        self.on_key(key, &Command::Delete { key }).map(drop)
    }

    /// Adds `delta` to a decimal value (wrapping at 2^64); returns the new value.
    pub fn incr(&self, key: impl AsRef<[u8]>, delta: u64) -> Result<u64> {
        self.arith(true, key.as_ref(), delta)
    }

    /// Subtracts `delta` from a decimal value (stopping at 0); returns the new value.
    pub fn decr(&self, key: impl AsRef<[u8]>, delta: u64) -> Result<u64> {
        self.arith(false, key.as_ref(), delta)
    }

    fn arith(&self, incr: bool, key: &[u8], delta: u64) -> Result<u64> {
        match self.on_key(key, &Command::Arith { incr, key, delta })? {
            Answer::Number(n) => Ok(n),
            other => Err(self.wrong_answer(key, other)),
        }
    }

    /// Resets the expiration time; [`Error::NotFound`] if the item does not exist.
    pub fn touch(&self, key: impl AsRef<[u8]>, exptime: u32) -> Result<()> {
        let key = key.as_ref();
        self.on_key(key, &Command::Touch { key, exptime }).map(drop)
    }

    // ----- whole cluster ---------------------------------------------------------------

    /// Invalidates every item on every node (after `delay` seconds if given). Every node is
    /// asked even if one fails; the first failure is returned.
    pub fn flush_all(&self, delay: Option<u32>) -> Result<()> {
        let results = self.on_each_node(&Command::FlushAll { delay })?;
        results.into_iter().try_for_each(|(_, r)| r.map(drop))
    }

    /// Each node's `version` reply, by `host:port`.
    pub fn version(&self) -> Result<PerNode<String>> {
        let results = self.on_each_node(&Command::Version)?;
        Ok(per_node(results, |answer| match answer {
            Answer::Version(v) => Some(v),
            _ => None,
        }))
    }

    /// Each node's general statistics (`stats`), by `host:port`.
    pub fn stats(&self) -> Result<PerNode<Stats>> {
        self.stats_group(None)
    }

    /// Each node's statistics of one group (`stats <group>`, e.g. `slabs`, `settings`).
    pub fn stats_group(&self, group: Option<&str>) -> Result<PerNode<Stats>> {
        let results = self.on_each_node(&Command::Stats { group })?;
        Ok(per_node(results, |answer| match answer {
            Answer::Stats(stats) => Some(stats),
            _ => None,
        }))
    }

    // ----- introspection and discovery -------------------------------------------------

    /// Where `key` lives: its hash, the ring point and server that own it, and where a
    /// request would be sent now.
    pub fn locate(&self, key: impl AsRef<[u8]>) -> Result<Placement> {
        let key = key.as_ref();
        let (topology, ring) = self.inner.ring()?;
        let hash = key_hash(key);
        let (point, server) = ring.locate_hash(hash);
        let owner = &topology.nodes[topology.members[server]];
        let route = topology
            .route(&ring, key, self.inner.settings.failure.mode)
            .map(|n| n.name().to_owned())
            .map_err(|e| e.to_string());
        Ok(Placement {
            key_hash: hash,
            point,
            owner: owner.name().to_owned(),
            point_name: owner.server.point_name(self.inner.settings.naming),
            ring_points: ring.points().len(),
            ring_servers: ring.server_count(),
            route,
        })
    }

    /// The nodes currently known, in configuration order, with their health.
    pub fn nodes(&self) -> Vec<NodeInfo> {
        self.inner
            .current()
            .nodes
            .iter()
            .map(|n| n.info())
            .collect()
    }

    /// Version of the configuration in use (`None` in static mode or before discovery).
    pub fn config_version(&self) -> Option<u64> {
        self.inner.current().version
    }

    /// Why the last discovery poll failed, if it did.
    pub fn discovery_error(&self) -> Option<String> {
        let discovery = self.inner.discovery.as_ref()?;
        lock(&discovery.last_error).clone()
    }

    /// Polls the cluster configuration now instead of waiting for the next interval.
    /// Returns whether a newer configuration was applied. Errors when no endpoint gave a
    /// usable answer; the configuration in use is kept.
    pub fn refresh(&self) -> Result<bool> {
        self.inner.poll()
    }

    /// Runs the `version` probes that are due now instead of waiting for the background
    /// thread; returns how many nodes were readmitted.
    pub fn probe_now(&self) -> usize {
        self.inner.run_probes(true)
    }

    // ----- plumbing --------------------------------------------------------------------

    fn on_key(&self, key: &[u8], command: &Command<'_>) -> Result<Answer> {
        protocol::check_key(key).map_err(Error::InvalidKey)?;
        let (topology, ring) = self.inner.ring()?;
        let node = topology.route(&ring, key, self.inner.settings.failure.mode)?;
        self.inner.run(node, |conn| codec::execute(conn, command))
    }

    fn on_each_node(&self, command: &Command<'_>) -> Result<PerNode<Answer>> {
        let (topology, _) = self.inner.ring()?;
        Ok(topology
            .nodes
            .iter()
            .map(|node| {
                let result = match node.state() {
                    NodeState::Up => self.inner.run(node, |conn| codec::execute(conn, command)),
                    _ => Err(Error::NodeFailing {
                        node: node.name().to_owned(),
                    }),
                };
                (node.name().to_owned(), result)
            })
            .collect())
    }
}

impl Inner {
    fn current(&self) -> Arc<Topology> {
        self.topology
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn ring(&self) -> Result<(Arc<Topology>, RingRef)> {
        let topology = self.current();
        if topology.ring.is_none() {
            return Err(Error::NoServers(self.no_servers_reason()));
        }
        let ring = RingRef(topology.clone());
        Ok((topology, ring))
    }

    fn no_servers_reason(&self) -> String {
        match &self.discovery {
            Some(discovery) => match lock(&discovery.last_error).as_deref() {
                Some(e) => format!(
                    "cluster discovery has not succeeded yet (last error: {e}); retrying in the background"
                ),
                None => "cluster discovery has not succeeded yet".into(),
            },
            None => "the server list is empty".into(),
        }
    }

    fn replace(&self, topology: Topology) {
        *self.topology.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(topology);
    }

    /// Runs `op` on a pooled connection to `node`, accounting failures. A reused idle
    /// connection that turns out dead before any reply byte is retried once on a fresh one.
    fn run<T>(&self, node: &Node, mut op: impl FnMut(&mut Connection) -> Result<T>) -> Result<T> {
        let mut retried = false;
        loop {
            let mut conn = match node.pool.get() {
                Ok(conn) => conn,
                Err(e) => {
                    if e.is_node_failure() {
                        self.node_failed(node);
                    }
                    return Err(e);
                }
            };
            match op(&mut conn) {
                Ok(value) => {
                    conn.keep();
                    node.succeeded();
                    return Ok(value);
                }
                Err(e) if !e.is_node_failure() => {
                    // A complete one-line error reply leaves the connection in sync. Not so
                    // after CLIENT_ERROR (more output may follow for the same request) or a
                    // rejected configuration reply (it may have been cut anywhere).
                    if matches!(
                        e,
                        Error::NotStored
                            | Error::Exists
                            | Error::NotFound
                            | Error::UnknownCommand
                            | Error::ServerError(_)
                    ) {
                        conn.keep();
                    }
                    node.succeeded();
                    return Err(e);
                }
                Err(e) => {
                    let stale = conn.reused()
                        && !conn.replied
                        && !retried
                        && matches!(e, Error::Closed { .. } | Error::Io { .. });
                    drop(conn);
                    if stale {
                        retried = true;
                        node.pool.clear_idle();
                        continue;
                    }
                    self.node_failed(node);
                    return Err(e);
                }
            }
        }
    }

    fn node_failed(&self, node: &Node) {
        if node.failed(&self.settings.failure) {
            // Wake the background thread so the first probe is scheduled.
            let _ = self.wake.send(());
        }
    }

    /// Probes the nodes whose probe is due; rebuilds the ring if a node was ejected or
    /// readmitted. Returns the number readmitted.
    fn run_probes(&self, all: bool) -> usize {
        let topology = self.current();
        let policy = &self.settings.failure;
        let now = Instant::now();
        let mut readmitted = 0;
        let mut changed = false;
        for node in &topology.nodes {
            let Some(due) = node.probe_due() else {
                continue;
            };
            if due > now && !all {
                continue;
            }
            let ejected = topology
                .nodes
                .iter()
                .filter(|n| n.state() == NodeState::Ejected)
                .count();
            let may_eject = ejected < policy.max_ejected(topology.nodes.len());
            let before = node.state();
            match node.probe(policy, may_eject) {
                ProbeOutcome::Readmitted { was_ejected } => {
                    readmitted += 1;
                    changed |= was_ejected;
                }
                ProbeOutcome::StillDown => changed |= before != node.state(),
            }
        }
        if changed && policy.mode == FailoverMode::Eject {
            let _guard = lock(&self.update);
            let current = self.current();
            self.replace(Topology::build(
                current.nodes.clone(),
                current.version,
                &self.settings,
            ));
        }
        readmitted
    }

    fn next_probe_due(&self) -> Option<Instant> {
        self.current()
            .nodes
            .iter()
            .filter_map(|n| n.probe_due())
            .min()
    }

    /// One discovery poll: live nodes round-robin, then the seeds (re-resolved).
    fn poll(&self) -> Result<bool> {
        let Some(discovery) = &self.discovery else {
            return Err(Error::Config(
                "discovery is not configured (static server list)".into(),
            ));
        };
        let topology = self.current();
        let live: Vec<&Arc<Node>> = topology
            .nodes
            .iter()
            .filter(|n| n.state() == NodeState::Up)
            .collect();
        let mut last_error = None;
        if !live.is_empty() {
            let start = discovery.cursor.fetch_add(1, Ordering::Relaxed);
            for i in 0..live.len().min(DISCOVERY_NODE_TRIES) {
                let node = live[(start + i) % live.len()];
                match self.run(node, fetch_config) {
                    Ok((config, _)) => return Ok(self.discovered(discovery, config)),
                    Err(e) => last_error = Some(e),
                }
            }
        }
        for seed in &discovery.seeds {
            let connector = self.settings.connector.as_ref();
            match fetch_from(
                seed,
                &self.settings.timeouts,
                Some(connector),
                &self.settings.session,
            ) {
                Ok((config, _)) => return Ok(self.discovered(discovery, config)),
                Err(e) => last_error = Some(e),
            }
        }
        let error = last_error.unwrap_or_else(|| Error::Config("no discovery endpoint".into()));
        *lock(&discovery.last_error) = Some(error.to_string());
        Err(error)
    }

    /// Applies `config` if it is newer than the one in use.
    fn discovered(&self, discovery: &Discovery, config: ClusterConfig) -> bool {
        *lock(&discovery.last_error) = None;
        let _guard = lock(&self.update);
        let current = self.current();
        if !config.supersedes(current.version) {
            return false;
        }
        let nodes = config
            .nodes
            .iter()
            .map(|entry| {
                let endpoint = Endpoint {
                    host: entry.host.clone(),
                    ip: entry.ip,
                    port: entry.port,
                };
                let server = entry.server(self.settings.identity);
                current
                    .nodes
                    .iter()
                    .find(|n| n.endpoint == endpoint && n.server == server)
                    .cloned()
                    .unwrap_or_else(|| Arc::new(self.settings.node(endpoint, server)))
            })
            .collect();
        self.replace(Topology::build(nodes, Some(config.version), &self.settings));
        true
    }

    fn next_poll_delay(&self, failures: u32) -> Option<Duration> {
        let discovery = self.discovery.as_ref()?;
        if self.current().version.is_none() {
            // Not discovered yet: retry soon, backing off up to the poll interval.
            let backoff = discovery
                .retry_interval
                .saturating_mul(1 << failures.min(16))
                .min(discovery.poll_interval);
            return Some(backoff);
        }
        let spread = discovery.jitter * (2.0 * random_unit() - 1.0);
        let factor = (1.0 + spread).max(0.0);
        Some(
            Duration::try_from_secs_f64(discovery.poll_interval.as_secs_f64() * factor)
                .unwrap_or(discovery.poll_interval),
        )
    }
}

/// Keeps the topology alive while its ring is borrowed.
struct RingRef(Arc<Topology>);

impl std::ops::Deref for RingRef {
    type Target = Ring;
    fn deref(&self) -> &Ring {
        self.0.ring.as_ref().expect("checked by Inner::ring")
    }
}

/// The background thread: discovery polls and `version` probes. Ends when the client is
/// dropped (the wake channel disconnects).
fn background(weak: Weak<Inner>, woken: mpsc::Receiver<()>) {
    let mut failures = 0u32;
    let mut next_poll = {
        let Some(inner) = weak.upgrade() else { return };
        inner.next_poll_delay(failures).map(crate::deadline_after)
    };
    loop {
        let wait = {
            let Some(inner) = weak.upgrade() else { return };
            let now = Instant::now();
            let due = [next_poll, inner.next_probe_due()]
                .into_iter()
                .flatten()
                .min();
            due.map_or(Duration::from_secs(3600), |d| {
                d.saturating_duration_since(now)
            })
        };
        match woken.recv_timeout(wait) {
            Err(RecvTimeoutError::Disconnected) => return,
            Ok(()) | Err(RecvTimeoutError::Timeout) => {}
        }
        let Some(inner) = weak.upgrade() else { return };
        if next_poll.is_some_and(|at| at <= Instant::now()) {
            match inner.poll() {
                Ok(_) => failures = 0,
                Err(_) => failures = failures.saturating_add(1),
            }
            next_poll = inner.next_poll_delay(failures).map(crate::deadline_after);
        }
        inner.run_probes(false);
    }
}

/// A uniformly distributed number in [0, 1) from the standard library's random hasher keys.
fn random_unit() -> f64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    );
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Picks the expected kind of answer out of per-node results.
fn per_node<T>(results: PerNode<Answer>, pick: impl Fn(Answer) -> Option<T>) -> PerNode<T> {
    results
        .into_iter()
        .map(|(node, result)| {
            let result = result.and_then(|answer| {
                let message = format!("unexpected answer {answer:?}");
                pick(answer).ok_or_else(|| Error::Protocol {
                    node: node.clone(),
                    message,
                })
            });
            (node, result)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn client_is_send_and_sync() {
        fn check<T: Send + Sync + Clone>() {}
        check::<Client>();
    }

    #[test]
    fn host_port_forms() {
        let ok = |s: &str| parse_host_port(s).unwrap();
        assert_eq!(ok("a.example:1"), ("a.example".into(), 1));
        assert_eq!(ok("10.0.0.1"), ("10.0.0.1".into(), 11211));
        assert_eq!(ok("[::1]:99"), ("::1".into(), 99));
        assert_eq!(ok("[::1]"), ("::1".into(), 11211));
        assert_eq!(ok("::1"), ("::1".into(), 11211));
        for bad in [
            "", ":1", "a:", "a:0", "a:65536", "a:+1", "[::1", "[::1]x", "a b:1",
        ] {
            assert!(parse_host_port(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn jitter_spreads_polls() {
        let samples: Vec<f64> = (0..2000).map(|_| random_unit()).collect();
        assert!(samples.iter().all(|x| (0.0..1.0).contains(x)));
        let mean = samples.iter().sum::<f64>() / samples.len() as f64;
        assert!((0.45..0.55).contains(&mean), "{mean}");

        let client = Client::builder()
            .seed("127.0.0.1:1")
            .discover_on_build(false)
            .poll_interval(Duration::from_secs(60))
            .discovery_retry_interval(Duration::from_millis(100))
            .build()
            .unwrap();
        let inner = &client.inner;
        // Not discovered yet: retries back off from the retry interval to the poll interval.
        assert_eq!(inner.next_poll_delay(0), Some(Duration::from_millis(100)));
        assert_eq!(inner.next_poll_delay(3), Some(Duration::from_millis(800)));
        assert_eq!(inner.next_poll_delay(40), Some(Duration::from_secs(60)));
        // Once discovered: 60 s ± 10 %.
        let discovery = inner.discovery.as_ref().unwrap();
        let config = crate::discovery::parse_payload(b"1\nlocalhost|127.0.0.1|1\n").unwrap();
        assert!(inner.discovered(discovery, config));
        let delays: Vec<Duration> = (0..200)
            .map(|_| inner.next_poll_delay(0).unwrap())
            .collect();
        assert!(delays
            .iter()
            .all(|d| (Duration::from_secs(54)..=Duration::from_secs(66)).contains(d)));
        assert!(delays.iter().any(|d| *d != delays[0]));
    }

    #[test]
    fn huge_durations_do_not_overflow() {
        let client = Client::builder()
            .seed("127.0.0.1:1")
            .discover_on_build(false)
            .poll_interval(Duration::MAX)
            .discovery_retry_interval(Duration::MAX)
            .pool_wait(Duration::MAX)
            .failure_policy(FailurePolicy {
                failure_limit: 1,
                probe_interval: Duration::MAX,
                max_probe_interval: Duration::MAX,
                ..FailurePolicy::default()
            })
            .build()
            .unwrap();
        let inner = &client.inner;
        assert!(inner.next_poll_delay(50).is_some());
        let discovery = inner.discovery.as_ref().unwrap();
        let config = crate::discovery::parse_payload(b"1\nlocalhost|127.0.0.1|1\n").unwrap();
        assert!(inner.discovered(discovery, config));
        for _ in 0..10 {
            let _ = crate::deadline_after(inner.next_poll_delay(0).unwrap());
        }
        // Port 1 refuses: the node fails, is probed at once, and backs off without overflow.
        assert!(matches!(client.get("k"), Err(Error::Connect { .. })));
        for _ in 0..3 {
            client.probe_now();
        }
        assert_ne!(client.nodes()[0].state, NodeState::Up);
    }

    #[test]
    fn ejection_cap() {
        let policy = FailurePolicy::default();
        assert_eq!(policy.max_ejected(1), 0);
        assert_eq!(policy.max_ejected(2), 1);
        assert_eq!(policy.max_ejected(3), 1);
        assert_eq!(policy.max_ejected(10), 5);
    }

    #[test]
    fn ejected_nodes_leave_the_ring_or_are_skipped() {
        let build = |mode| {
            Client::builder()
                .servers(["127.0.0.1:39211", "127.0.0.1:39212", "127.0.0.1:39213"])
                .failover_mode(mode)
                .build()
                .unwrap()
        };
        let keys: Vec<String> = (0..2000).map(|i| format!("key{i}")).collect();
        for mode in [FailoverMode::Eject, FailoverMode::Redistribute] {
            let client = build(mode);
            let before: Vec<String> = keys
                .iter()
                .map(|k| client.locate(k).unwrap().route.unwrap())
                .collect();
            let dead = client.inner.current().nodes[1].clone();
            dead.set_state(NodeState::Ejected);
            if mode == FailoverMode::Eject {
                let current = client.inner.current();
                client.inner.replace(Topology::build(
                    current.nodes.clone(),
                    None,
                    &client.inner.settings,
                ));
            }
            let mut stranded = 0;
            for (key, old) in keys.iter().zip(&before) {
                let Ok(now) = client.locate(key).unwrap().route else {
                    // All seven failover candidates were the dead node (spymemcached then
                    // stays on the primary): about (1/3)^6 of its keys.
                    stranded += 1;
                    continue;
                };
                if old == dead.name() {
                    assert_ne!(&now, dead.name(), "{mode:?}");
                } else {
                    assert_eq!(&now, old, "{mode:?} {key}");
                }
            }
            match mode {
                FailoverMode::Redistribute => assert!(stranded <= 5, "{stranded}"),
                _ => assert_eq!(stranded, 0),
            }
        }
    }
}
