//! Ketama consistent hashing, bit-compatible with the established memcached clients.
//!
//! A fleet is often shared by services written in different languages. If our client placed a
//! key on a different node than libmemcached (PHP, Python, C), twemproxy or spymemcached (Java)
//! does, every mixed read would miss. So this module reproduces their continuum exactly:
//!
//! - hash: MD5; a key hashes to the little-endian `u32` made of the first four digest bytes;
//! - points: for `i` in `0..points/4`, `md5(name + "-" + i)` yields four little-endian words;
//! - lookup: the first point `>=` the key's hash, wrapping to the lowest point.
//!
//! The implementations only disagree on the text that names a server on the ring, on how
//! equal points are resolved and on when weights apply; [`Naming`] selects one profile.
//!
//! This module owns placement only. It never opens connections, tracks health or resolves
//! names: on failures the caller either rebuilds a [`Ring`] without the dead servers
//! (libmemcached's auto-eject) or walks [`Ring::redistribute`] (spymemcached).

use std::borrow::Cow;
use std::fmt;
use std::net::IpAddr;

use md5::{Digest, Md5};

/// Points per server when all weights are equal (40 digests of 4 words each).
pub const POINTS_PER_SERVER: u32 = 160;

/// Points taken from one MD5 digest.
const POINTS_PER_HASH: u32 = 4;

/// The default memcached port, dropped from libmemcached point names.
pub const MEMCACHED_DEFAULT_PORT: u16 = 11211;

/// How many servers spymemcached's failover sequence visits for one key, primary included.
pub const REDISTRIBUTE_TRIES: usize = 7;

/// Which client family the ring must agree with.
///
/// The ketama algorithm is shared, but each implementation names servers differently when
/// hashing them onto the ring, so the same server list yields different continua. Pick the
/// profile of the other clients that share the cluster; when in doubt, `Libmemcached` matches
/// the most implementations (libmemcached, its PHP and Python bindings, twemproxy).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Naming {
    /// libmemcached (weighted ketama) and twemproxy.
    ///
    /// - point names are `host` when the port is 11211, `host:port` otherwise;
    /// - point counts always follow the weighted formula ([`weighted_points`]);
    /// - equal points keep sort order: the server listed first wins. (The C implementations
    ///   use an unstable `qsort`, so they leave this case unspecified; we pick the stable
    ///   order so the result is deterministic.)
    #[default]
    Libmemcached,
    /// spymemcached's `KetamaNodeLocator` (also the AWS Java client before it moved to SHA).
    ///
    /// - point names are always `host:port`;
    /// - 160 points per server unless weights differ, then the weighted formula;
    /// - equal points go to the server listed later (its map insert overwrites the earlier).
    Spymemcached,
}

/// Which text from a cluster config line names a server on the ring.
///
/// A discovery config line carries both a hostname and an IP. AWS's Java client hashes the
/// IP, its PHP client the hostname; to share keys with either, hash the same one.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum Identity {
    /// The hostname (for ElastiCache, the node's CNAME).
    #[default]
    Hostname,
    /// The IP address; falls back to the hostname when the config line had none.
    Ip,
}

/// One cache server as the ring sees it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Server {
    /// Hostname as configured (or as announced by discovery).
    pub host: String,
    /// IP address announced alongside the hostname, if any.
    pub ip: Option<IpAddr>,
    /// TCP port.
    pub port: u16,
    /// Relative weight; must be at least 1.
    pub weight: u32,
    /// Whether `host` or `ip` names this server on the ring.
    pub identity: Identity,
}

impl Server {
    /// A server of weight 1, named by its hostname.
    pub fn new(host: impl Into<String>, port: u16) -> Self {
        Server {
            host: host.into(),
            ip: None,
            port,
            weight: 1,
            identity: Identity::Hostname,
        }
    }

    /// Sets the relative weight.
    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    /// Records the IP announced for this server.
    pub fn with_ip(mut self, ip: IpAddr) -> Self {
        self.ip = Some(ip);
        self
    }

    /// Chooses whether the hostname or the IP names this server on the ring.
    pub fn with_identity(mut self, identity: Identity) -> Self {
        self.identity = identity;
        self
    }

    /// The host text that goes into point names, according to [`Server::identity`].
    pub fn identity_host(&self) -> Cow<'_, str> {
        match (self.identity, self.ip) {
            (Identity::Ip, Some(ip)) => Cow::Owned(ip.to_string()),
            _ => Cow::Borrowed(&self.host),
        }
    }

    /// The name hashed (with `-<i>` appended) to place this server's points.
    pub fn point_name(&self, naming: Naming) -> String {
        let host = self.identity_host();
        match naming {
            Naming::Libmemcached if self.port == MEMCACHED_DEFAULT_PORT => host.into_owned(),
            Naming::Libmemcached | Naming::Spymemcached => format!("{host}:{}", self.port),
        }
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.host, self.port)
    }
}

/// Why a ring could not be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RingError {
    /// No servers were given; there is nowhere to place keys.
    #[error("a ring needs at least one server")]
    NoServers,
    /// A weight of 0 would silently drop the server; remove it from the list instead.
    #[error("server {server} has weight 0")]
    ZeroWeight {
        /// Index of the offending server.
        server: usize,
    },
    /// Server indices are stored as `u32`.
    #[error("too many servers ({0})")]
    TooManyServers(usize),
}

/// The key hash shared by all ketama implementations: the first four MD5 bytes, little-endian.
pub fn key_hash(key: impl AsRef<[u8]>) -> u32 {
    let digest = Md5::digest(key.as_ref());
    word(&digest, 0)
}

/// Points for one server under libmemcached's weighted formula (also twemproxy's and
/// spymemcached's when weights are set).
///
/// `floor(weight / total_weight * 160 / 4 * server_count + 1e-10) * 4`, evaluated in `f32`
/// exactly as the C and Java code does: the result must match theirs bit for bit, including
/// where `f32` rounding lands just below an integer. So equal weights give 160 points for most
/// server counts but 156 for some (25, 47, 50, 100, …), as they do in twemproxy.
pub fn weighted_points(weight: u32, total_weight: u64, server_count: usize) -> u32 {
    let pct = weight as f32 / total_weight as f32;
    let scaled = pct * POINTS_PER_SERVER as f32 / POINTS_PER_HASH as f32 * server_count as f32;
    // The epsilon is added in double precision and the sum narrowed back to float, as in C.
    let nudged = (scaled as f64 + 0.000_000_000_1) as f32;
    nudged.floor() as u32 * POINTS_PER_HASH
}

/// A ketama continuum over a fixed list of servers.
///
/// Lookups return the index of the server in the slice given to [`Ring::new`]. The ring is
/// immutable: on a membership change build a new one (cheap: one MD5 per four points).
#[derive(Clone, Debug)]
pub struct Ring {
    /// `(point, server index)`, sorted by point, one entry per distinct point.
    points: Vec<(u32, u32)>,
    servers: usize,
    naming: Naming,
}

impl Ring {
    /// Builds the continuum for `servers` under the `naming` profile.
    pub fn new(servers: &[Server], naming: Naming) -> Result<Ring, RingError> {
        if servers.is_empty() {
            return Err(RingError::NoServers);
        }
        if u32::try_from(servers.len()).is_err() {
            return Err(RingError::TooManyServers(servers.len()));
        }
        if let Some(server) = servers.iter().position(|s| s.weight == 0) {
            return Err(RingError::ZeroWeight { server });
        }

        let total_weight: u64 = servers.iter().map(|s| u64::from(s.weight)).sum();
        let equal = servers.iter().all(|s| s.weight == servers[0].weight);
        let count = |s: &Server| match naming {
            Naming::Spymemcached if equal => POINTS_PER_SERVER,
            _ => weighted_points(s.weight, total_weight, servers.len()),
        };

        let capacity = servers.iter().map(|s| count(s) as usize).sum();
        let mut points = Vec::with_capacity(capacity);
        for (index, server) in servers.iter().enumerate() {
            let name = server.point_name(naming);
            let mut digits = Digits::new();
            for i in 0..count(server) / POINTS_PER_HASH {
                let mut md5 = Md5::new();
                md5.update(name.as_bytes());
                md5.update(b"-");
                md5.update(digits.format(i));
                let digest = md5.finalize();
                for j in 0..POINTS_PER_HASH as usize {
                    points.push((word(&digest, j), index as u32));
                }
            }
        }

        // Stable sort: equal points stay in server-list order, then one winner is kept.
        points.sort_by_key(|&(point, _)| point);
        match naming {
            // The first of a run of equal points is the first-listed server.
            Naming::Libmemcached => points.dedup_by_key(|&mut (point, _)| point),
            // Keep the last of each run: `dedup_by` keeps the earlier element, so move the
            // later server into it before the later one is dropped.
            Naming::Spymemcached => points.dedup_by(|later, kept| {
                if later.0 == kept.0 {
                    kept.1 = later.1;
                    true
                } else {
                    false
                }
            }),
        }

        Ok(Ring {
            points,
            servers: servers.len(),
            naming,
        })
    }

    /// The server that owns `key`. Does not allocate.
    pub fn lookup(&self, key: impl AsRef<[u8]>) -> usize {
        self.lookup_hash(key_hash(key))
    }

    /// The server that owns a precomputed [`key_hash`].
    pub fn lookup_hash(&self, hash: u32) -> usize {
        self.locate_hash(hash).1
    }

    /// The ring point that owns a precomputed [`key_hash`], and its server: the first point
    /// `>=` the hash, or the lowest point when the hash lies past the highest one.
    pub fn locate_hash(&self, hash: u32) -> (u32, usize) {
        let at = self.points.partition_point(|&(point, _)| point < hash);
        // Past the highest point the continuum wraps to the lowest one.
        let (point, server) = self.points.get(at).unwrap_or(&self.points[0]);
        (*point, *server as usize)
    }

    /// spymemcached's failover order for `key`: the primary, then the servers found by
    /// repeatedly adding `key_hash(t + key)` (t = 0, 1, 2, … in decimal) to the hash, for
    /// [`REDISTRIBUTE_TRIES`] servers in all. Servers may repeat; callers take the first live one.
    pub fn redistribute<'r, 'k>(&'r self, key: &'k [u8]) -> Redistribute<'r, 'k> {
        Redistribute {
            ring: self,
            key,
            hash: key_hash(key),
            tries: 0,
            remaining: REDISTRIBUTE_TRIES,
        }
    }

    /// The sorted `(point, server index)` pairs.
    pub fn points(&self) -> &[(u32, u32)] {
        &self.points
    }

    /// Number of servers the ring was built from.
    pub fn server_count(&self) -> usize {
        self.servers
    }

    /// The profile the ring was built with.
    pub fn naming(&self) -> Naming {
        self.naming
    }
}

/// Iterator over spymemcached's failover sequence; see [`Ring::redistribute`].
///
/// Each step hashes `t + key` incrementally, so no step allocates and keys of any length work.
#[derive(Clone, Debug)]
pub struct Redistribute<'r, 'k> {
    ring: &'r Ring,
    key: &'k [u8],
    hash: u32,
    tries: u32,
    remaining: usize,
}

impl Iterator for Redistribute<'_, '_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        if self.remaining == 0 {
            return None;
        }
        self.remaining -= 1;
        let server = self.ring.lookup_hash(self.hash);

        let mut md5 = Md5::new();
        md5.update(Digits::new().format(self.tries));
        md5.update(self.key);
        // spymemcached adds in 64 bits and truncates; that is addition modulo 2^32.
        self.hash = self.hash.wrapping_add(word(&md5.finalize(), 0));
        self.tries += 1;
        Some(server)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.remaining, Some(self.remaining))
    }
}

impl ExactSizeIterator for Redistribute<'_, '_> {}

/// Little-endian word `j` of an MD5 digest.
fn word(digest: &[u8], j: usize) -> u32 {
    let b = &digest[4 * j..4 * j + 4];
    u32::from_le_bytes([b[0], b[1], b[2], b[3]])
}

/// Decimal formatting of a `u32` into a stack buffer.
struct Digits {
    buf: [u8; 10],
}

impl Digits {
    fn new() -> Self {
        Digits { buf: [0; 10] }
    }

    fn format(&mut self, mut n: u32) -> &[u8] {
        let mut at = self.buf.len();
        loop {
            at -= 1;
            self.buf[at] = b'0' + (n % 10) as u8;
            n /= 10;
            if n == 0 {
                return &self.buf[at..];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digits_format_like_display() {
        for n in [0, 7, 10, 39, 159, 4_294_967_295] {
            assert_eq!(Digits::new().format(n), n.to_string().as_bytes());
        }
    }

    #[test]
    fn point_names_per_profile() {
        let default_port = Server::new("10.0.1.1", 11211);
        let other_port = Server::new("127.0.0.1", 10000);
        assert_eq!(default_port.point_name(Naming::Libmemcached), "10.0.1.1");
        assert_eq!(
            default_port.point_name(Naming::Spymemcached),
            "10.0.1.1:11211"
        );
        assert_eq!(
            other_port.point_name(Naming::Libmemcached),
            "127.0.0.1:10000"
        );
        assert_eq!(
            other_port.point_name(Naming::Spymemcached),
            "127.0.0.1:10000"
        );
    }

    #[test]
    fn identity_picks_hostname_or_ip() {
        let ip: IpAddr = "172.31.12.60".parse().unwrap();
        let node = Server::new("a.cache.example", 11211).with_ip(ip);
        assert_eq!(
            node.point_name(Naming::Spymemcached),
            "a.cache.example:11211"
        );
        let by_ip = node.clone().with_identity(Identity::Ip);
        assert_eq!(by_ip.point_name(Naming::Spymemcached), "172.31.12.60:11211");
        assert_eq!(by_ip.point_name(Naming::Libmemcached), "172.31.12.60");
        // Without an announced IP the hostname is the only identity there is.
        let no_ip = Server::new("b.cache.example", 11211).with_identity(Identity::Ip);
        assert_eq!(no_ip.point_name(Naming::Libmemcached), "b.cache.example");
    }

    #[test]
    fn rejects_unusable_server_lists() {
        assert_eq!(
            Ring::new(&[], Naming::Libmemcached).unwrap_err(),
            RingError::NoServers
        );
        let servers = [Server::new("a", 1), Server::new("b", 2).with_weight(0)];
        assert_eq!(
            Ring::new(&servers, Naming::Spymemcached).unwrap_err(),
            RingError::ZeroWeight { server: 1 }
        );
    }

    #[test]
    fn ties_follow_each_profile() {
        // Two servers with the same name collide on every point.
        let servers = [Server::new("same", 1), Server::new("same", 1)];
        let lib = Ring::new(&servers, Naming::Libmemcached).unwrap();
        let spy = Ring::new(&servers, Naming::Spymemcached).unwrap();
        assert_eq!(lib.points().len(), 160);
        assert_eq!(spy.points().len(), 160);
        assert!(lib.points().iter().all(|&(_, s)| s == 0));
        assert!(spy.points().iter().all(|&(_, s)| s == 1));
    }
}
