//! The replicated membership state of one node and the rules that turn it
//! into the published `(version, list)` pair. Pure: time comes in as an
//! `Instant`, nothing here does I/O, so every rule is unit-tested.
//!
//! The state has three parts, each merged as a join-semilattice so that
//! nodes exchanging it in any order and any number of times converge:
//!
//! - `base`: the administered list (node file or `config set cluster`), a
//!   last-writer-wins register ordered by its stamp (a minted version, unique
//!   per writer, see below);
//! - `records`: one per node that runs the membership agent, keyed by
//!   endpoint: `(epoch, left)` ordered so a restart (a larger epoch) beats a
//!   departure and a departure beats the same incarnation alive. A record
//!   with `join_stamp > base.stamp` adds its node to the list (it joined
//!   after the last administered change);
//! - liveness: per record, when anyone last heard from that node. Exchanged
//!   as "milliseconds since heard", so nodes agree without synchronised
//!   clocks and a node unreachable from one member but heard by another
//!   stays listed.
//!
//! Versions (the argument is in `docs/cluster.md`): a node mints a new
//! version only as the smallest number above everything it has seen that is
//! congruent to its slot modulo [`SLOTS`]; two nodes with different slots
//! can therefore never mint the same version, and a minted version is bound
//! to the list it was minted for. A node publishes either a version it
//! minted, or a pair it received whose list equals its own computed list.
//! Hence one version never names two lists, and a node's version only grows.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use super::node::{Endpoint, NodeEntry};

/// Largest version, stamp, epoch or count a peer, a saved state or an
/// administrator may give (2^53 − 1). Auto-discovery clients written in
/// JavaScript read the version as a double, which is exact only up to here,
/// and a version at `u64::MAX` would leave no newer one to publish: one bad
/// peer could freeze every client's view of the cluster. No cluster mints
/// anywhere near this many versions.
pub const VERSION_MAX: u64 = (1 << 53) - 1;

/// Size of the version space partition: a minted version `v` belongs to the
/// node whose slot is `v % SLOTS`.
pub const SLOTS: u64 = 1000;

/// Shortest time after which a node that is silent (or left) and not in
/// the administered list is forgotten; see [`State::forget_stale`].
pub const FORGET_AFTER_MIN: Duration = Duration::from_secs(600);

/// The smallest version above `above` that belongs to `slot`. Saturates at
/// [`VERSION_MAX`]: `above` may come from a peer or an administrator, and
/// no input may wrap a version around to a small one (or panic), nor mint
/// one that peers would refuse.
pub fn mint(above: u64, slot: u16) -> u64 {
    let next = above.saturating_add(1);
    let slot = u64::from(slot) % SLOTS;
    next.saturating_add((slot + SLOTS - next % SLOTS) % SLOTS)
        .min(VERSION_MAX)
}

/// The incarnation after `epoch`, which may be a peer's number: saturates
/// at [`VERSION_MAX`] like versions.
fn next_epoch(epoch: u64) -> u64 {
    epoch.saturating_add(1).min(VERSION_MAX)
}

/// FNV-1a of the endpoint, the first choice of slot for a node.
fn slot_hash(ep: &Endpoint) -> u16 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in ep.addr.bytes().chain(ep.port.to_be_bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    (h % SLOTS) as u16
}

/// The administered list: last writer wins, by `(stamp, nodes)`.
#[derive(Clone, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct Base {
    /// 0 = never set; 1 = read from a node file at start-up; otherwise the
    /// version minted by the node that made the change.
    pub stamp: u64,
    pub nodes: Vec<NodeEntry>,
}

/// What the membership agent of one node says about itself. The derived
/// order is the merge order (field order matters).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Record {
    /// Incarnation: milliseconds since the Unix epoch at start-up, raised
    /// above any incarnation of the same endpoint seen before.
    pub epoch: u64,
    /// Left gracefully.
    pub left: bool,
    /// Version minted when this node joined; 0 = listed only if the base
    /// lists it.
    pub join_stamp: u64,
    /// The residue modulo [`SLOTS`] of every version this incarnation
    /// mints; chosen once, unclaimed by any node it knew of.
    pub slot: u16,
    pub entry: NodeEntry,
}

/// A version and the list it names.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Pair {
    pub version: u64,
    pub nodes: Vec<NodeEntry>,
}

/// Everything one node sends another (and saves to its state file).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replica {
    pub published: Pair,
    pub base: Base,
    /// Highest version the sender has seen anywhere.
    pub max_seen: u64,
    /// Records with how long ago the sender last heard of each node.
    pub records: Vec<(Record, Duration)>,
}

/// When a node was last heard of: `before` earlier than `at`. Kept as an
/// offset rather than an `Instant` because a peer may report a silence
/// longer than this process (or machine) has been up.
#[derive(Clone, Copy, Debug)]
struct Heard {
    at: Instant,
    before: Duration,
}

impl Heard {
    fn at(at: Instant, before: Duration) -> Heard {
        Heard { at, before }
    }

    fn silent(&self, now: Instant) -> Duration {
        now.saturating_duration_since(self.at) + self.before
    }
}

/// A change of the published pair, for the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Change {
    pub old: Pair,
    pub new: Pair,
}

impl std::fmt::Display for Change {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "cluster: version {} -> {} ({} nodes)",
            self.old.version,
            self.new.version,
            self.new.nodes.len()
        )?;
        for n in &self.new.nodes {
            if !self.old.nodes.contains(n) {
                write!(f, " +{n}")?;
            }
        }
        for n in &self.old.nodes {
            if !self.new.nodes.contains(n) {
                write!(f, " -{n}")?;
            }
        }
        Ok(())
    }
}

/// Why an administrative change was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AdminError {
    #[error("version {asked} is not greater than the current version {current}")]
    VersionTooLow { asked: u64, current: u64 },
}

/// The membership state of one node.
#[derive(Debug)]
pub struct State {
    me: Endpoint,
    /// `None`: never drop a silent node (ElastiCache's behaviour).
    failure_timeout: Option<Duration>,
    base: Base,
    records: BTreeMap<Endpoint, Record>,
    heard: HashMap<Endpoint, Heard>,
    published: Pair,
    max_seen: u64,
    /// False until [`State::boot`]: merges only learn, nothing is published.
    booted: bool,
    /// Best pair received before booting.
    learned: Pair,
    /// Join stamp of this endpoint's previous incarnation, if it had joined
    /// and did not leave (a crash): reused so a restart changes nothing.
    prev_join: u64,
}

impl State {
    /// A node that knows only itself. `epoch` should be the wall clock in
    /// milliseconds; it is raised if an older incarnation is learned.
    pub fn new(me: NodeEntry, epoch: u64, failure_timeout: Option<Duration>, now: Instant) -> Self {
        let ep = me.endpoint();
        let mut records = BTreeMap::new();
        records.insert(
            ep.clone(),
            Record {
                epoch,
                left: false,
                join_stamp: 0,
                slot: slot_hash(&ep),
                entry: me,
            },
        );
        let mut heard = HashMap::new();
        heard.insert(ep.clone(), Heard::at(now, Duration::ZERO));
        State {
            me: ep,
            failure_timeout,
            base: Base::default(),
            records,
            heard,
            published: Pair::default(),
            max_seen: 0,
            booted: false,
            learned: Pair::default(),
            prev_join: 0,
        }
    }

    pub fn published(&self) -> &Pair {
        &self.published
    }

    pub fn base(&self) -> &Base {
        &self.base
    }

    pub fn me(&self) -> &Endpoint {
        &self.me
    }

    fn my_record(&mut self) -> &mut Record {
        self.records.get_mut(&self.me).expect("own record")
    }

    /// Whether this node added itself to the list by joining.
    pub fn joined(&self) -> bool {
        self.records[&self.me].join_stamp > 0
    }

    /// This node's slot (see [`Record::slot`]).
    pub fn slot(&self) -> u16 {
        self.records[&self.me].slot
    }

    /// Chooses a slot no known node claims, starting from the hash of this
    /// node's address: at start-up (after learning from peers) and when two
    /// nodes that chose before hearing of each other meet.
    fn choose_slot(&mut self) {
        let claimed: std::collections::HashSet<u16> = self
            .records
            .iter()
            .filter(|(ep, _)| **ep != self.me)
            .map(|(_, r)| r.slot)
            .collect();
        let mut s = slot_hash(&self.me);
        for _ in 0..SLOTS {
            if !claimed.contains(&s) {
                break;
            }
            s = ((u64::from(s) + 1) % SLOTS) as u16;
        }
        self.my_record().slot = s;
    }

    /// Whether another node claims this node's slot and has precedence
    /// (an older incarnation, or the same age and a smaller address).
    fn slot_contested(&self) -> bool {
        let mine = &self.records[&self.me];
        self.records.iter().any(|(ep, r)| {
            *ep != self.me && r.slot == mine.slot && (r.epoch, ep) < (mine.epoch, &self.me)
        })
    }

    /// Mints a fresh version for a change made here. Never 1: version 1 is
    /// reserved for the start-up list (see [`State::boot`]).
    fn next_version(&mut self) -> u64 {
        let v = mint(self.max_seen.max(1), self.slot());
        self.max_seen = v;
        v
    }

    /// Endpoints of the other nodes worth talking to: listed, recorded or
    /// both, excluding those that left.
    pub fn peers(&self) -> Vec<NodeEntry> {
        let mut out: BTreeMap<Endpoint, NodeEntry> = BTreeMap::new();
        for n in &self.base.nodes {
            out.insert(n.endpoint(), n.clone());
        }
        for (ep, r) in &self.records {
            if !r.left {
                out.entry(ep.clone()).or_insert_with(|| r.entry.clone());
            } else {
                out.remove(ep);
            }
        }
        out.remove(&self.me);
        out.into_values().collect()
    }

    fn silent(&self, ep: &Endpoint, now: Instant) -> Duration {
        if *ep == self.me {
            return Duration::ZERO;
        }
        self.heard
            .get(ep)
            .map(|h| h.silent(now))
            .unwrap_or(Duration::ZERO)
    }

    fn down(&self, ep: &Endpoint, now: Instant) -> bool {
        match self.records.get(ep) {
            None => false,
            Some(r) if r.left => true,
            Some(_) => self
                .failure_timeout
                .is_some_and(|t| self.silent(ep, now) > t),
        }
    }

    /// The list this node would publish now: the administered list and the
    /// nodes that joined since, minus nodes that left or went silent. Never
    /// empty (an empty list makes clients drop every server).
    pub fn compute_list(&self, now: Instant) -> Vec<NodeEntry> {
        let mut map: BTreeMap<Endpoint, NodeEntry> = BTreeMap::new();
        for n in &self.base.nodes {
            let ep = n.endpoint();
            if !self.down(&ep, now) {
                map.insert(ep, n.clone());
            }
        }
        for (ep, r) in &self.records {
            if r.join_stamp > self.base.stamp && !self.down(ep, now) {
                map.entry(ep.clone()).or_insert_with(|| r.entry.clone());
            }
        }
        if map.is_empty() {
            for (ep, r) in &self.records {
                if !self.down(ep, now) {
                    map.insert(ep.clone(), r.entry.clone());
                }
            }
        }
        if map.is_empty() {
            let me = &self.records[&self.me];
            map.insert(self.me.clone(), me.entry.clone());
        }
        let mut list: Vec<NodeEntry> = map.into_values().collect();
        list.sort();
        list
    }

    /// First publication, after start-up merges (saved state, peers) have
    /// been learned. A pair learned from peers is adopted if it names the
    /// same list. Otherwise a node started from a node file (or standing
    /// alone) that has seen no other version publishes version 1 — the same
    /// pair on every node started from the same file — and any other node
    /// mints.
    pub fn boot(
        &mut self,
        file: Option<Vec<NodeEntry>>,
        join: bool,
        now: Instant,
    ) -> Option<Change> {
        self.booted = true;
        if let Some(nodes) = file {
            let boot = Base { stamp: 1, nodes };
            if boot > self.base {
                self.base = boot;
            }
            self.max_seen = self.max_seen.max(1);
        }
        let standalone = self.base.stamp == 0 && !join;
        let mut fresh = None;
        if join || standalone {
            if self.prev_join > self.base.stamp {
                self.my_record().join_stamp = self.prev_join;
            } else {
                let v = if standalone && self.max_seen == 0 {
                    self.max_seen = 1;
                    1
                } else {
                    self.next_version()
                };
                self.my_record().join_stamp = v;
                fresh = Some(v);
            }
        }
        let nodes = self.compute_list(now);
        let learned = std::mem::take(&mut self.learned);
        if learned.version > 0 && learned.nodes == nodes && fresh.is_none() {
            let old = std::mem::replace(&mut self.published, learned.clone());
            return Some(Change { old, new: learned });
        }
        let version = match fresh {
            Some(v) => v,
            None if self.max_seen <= 1 => 1,
            None => self.next_version(),
        };
        self.max_seen = self.max_seen.max(version);
        let new = Pair { version, nodes };
        let old = std::mem::replace(&mut self.published, new.clone());
        Some(Change { old, new })
    }

    /// Re-evaluates the list (time passes: silent nodes fail, returning ones
    /// come back) and mints a version if it changed.
    pub fn republish(&mut self, now: Instant, minted: Option<u64>) -> Option<Change> {
        self.forget_stale(now);
        let nodes = self.compute_list(now);
        if nodes == self.published.nodes && self.published.version != 0 {
            return None;
        }
        let version = match minted {
            Some(v) => v,
            None => self.next_version(),
        };
        self.max_seen = self.max_seen.max(version);
        let new = Pair { version, nodes };
        let old = std::mem::replace(&mut self.published, new.clone());
        Some(Change { old, new })
    }

    /// Forgets nodes that joined and then left or went silent long ago, so
    /// that churn (containers with new addresses) does not grow the state
    /// and the set of peers for ever. Nodes of the administered list are
    /// kept: only the administrator removes them.
    fn forget_stale(&mut self, now: Instant) {
        let Some(timeout) = self.failure_timeout else {
            return;
        };
        let after = (timeout * 10).max(FORGET_AFTER_MIN);
        let listed: std::collections::HashSet<Endpoint> =
            self.base.nodes.iter().map(|n| n.endpoint()).collect();
        let stale: Vec<Endpoint> = self
            .records
            .keys()
            .filter(|ep| **ep != self.me && !listed.contains(*ep) && self.silent(ep, now) > after)
            .cloned()
            .collect();
        for ep in stale {
            self.records.remove(&ep);
            self.heard.remove(&ep);
        }
    }

    /// Replaces the administered list (`config set cluster`). The published
    /// version is at least `asked` (higher when `asked` does not belong to
    /// this node's slot).
    pub fn admin_set(
        &mut self,
        asked: u64,
        nodes: Vec<NodeEntry>,
        now: Instant,
    ) -> Result<Option<Change>, AdminError> {
        let current = self.published.version;
        if asked <= current {
            return Err(AdminError::VersionTooLow { asked, current });
        }
        self.max_seen = self.max_seen.max(asked - 1);
        let stamp = self.next_version();
        self.base = Base { stamp, nodes };
        let nodes = self.compute_list(now);
        let new = Pair {
            version: stamp,
            nodes,
        };
        let old = std::mem::replace(&mut self.published, new.clone());
        Ok(Some(Change { old, new }))
    }

    /// Empties the administered list (`config delete cluster`); the list
    /// falls back to the nodes that run the agent. `None` when there was no
    /// administered list.
    pub fn admin_delete(&mut self, now: Instant) -> Option<Option<Change>> {
        if self.base.nodes.is_empty() {
            return None;
        }
        let stamp = self.next_version();
        self.base = Base {
            stamp,
            nodes: Vec::new(),
        };
        Some(self.republish(now, Some(stamp)))
    }

    /// The node file changed: a new administered list, unless it already is
    /// the current one.
    pub fn file_changed(&mut self, nodes: Vec<NodeEntry>, now: Instant) -> Option<Change> {
        if nodes == self.base.nodes {
            return None;
        }
        let stamp = self.next_version();
        self.base = Base { stamp, nodes };
        self.republish(now, Some(stamp))
    }

    /// Graceful departure of a node that joined.
    pub fn leave(&mut self) {
        self.my_record().left = true;
    }

    /// What to send a peer (or save).
    pub fn replica(&self, now: Instant) -> Replica {
        Replica {
            published: self.published.clone(),
            base: self.base.clone(),
            max_seen: self.max_seen,
            records: self
                .records
                .iter()
                .map(|(ep, r)| (r.clone(), self.silent(ep, now)))
                .collect(),
        }
    }

    /// Merges what a peer sent (or what was saved) and republishes.
    pub fn merge(&mut self, remote: Replica, now: Instant) -> Option<Change> {
        if remote.base > self.base {
            self.base = remote.base;
        }
        self.max_seen = self
            .max_seen
            .max(remote.max_seen)
            .max(remote.published.version);
        let mut refute = false;
        for (rec, silent) in remote.records {
            let ep = rec.entry.endpoint();
            let heard_at = Heard::at(now, silent);
            if ep == self.me {
                let mine = &self.records[&self.me];
                if rec.epoch < mine.epoch && !rec.left {
                    self.prev_join = self.prev_join.max(rec.join_stamp);
                }
                if rec.epoch > mine.epoch || (rec.epoch == mine.epoch && rec.left && !mine.left) {
                    // Saturating: the epoch is a peer's number.
                    self.my_record().epoch = next_epoch(rec.epoch);
                    refute = true;
                }
                continue;
            }
            match self.records.get(&ep) {
                Some(local) if rec.epoch < local.epoch => {}
                Some(local) if rec.epoch == local.epoch => {
                    if rec > *local {
                        self.records.insert(ep.clone(), rec);
                    }
                    let h = self.heard.entry(ep).or_insert(heard_at);
                    if heard_at.silent(now) < h.silent(now) {
                        *h = heard_at;
                    }
                }
                _ => {
                    self.records.insert(ep.clone(), rec);
                    self.heard.insert(ep, heard_at);
                }
            }
        }
        if self.booted && self.slot_contested() {
            // A new incarnation carries the new slot, so every node replaces
            // the old record. Versions minted from now on are above
            // everything seen, so the old slot's past versions stay unique.
            let me = self.my_record();
            me.epoch = next_epoch(me.epoch);
            self.choose_slot();
        }
        if !self.booted {
            if remote.published.version > self.learned.version {
                self.learned = remote.published;
            }
            return None;
        }
        if refute && self.joined() {
            // Someone saw an older or departed incarnation of this node:
            // join again so the list includes it.
            let v = self.next_version();
            self.my_record().join_stamp = v;
        }
        let nodes = self.compute_list(now);
        let theirs = remote.published;
        if theirs.version > self.published.version && theirs.nodes == nodes {
            let old = std::mem::replace(&mut self.published, theirs.clone());
            return Some(Change { old, new: theirs });
        }
        self.republish(now, None)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(i: u16) -> NodeEntry {
        NodeEntry {
            host: format!("node{i}"),
            ip: "127.0.0.1".into(),
            port: 20000 + i,
        }
    }

    fn node(i: u16, now: Instant) -> State {
        State::new(n(i), 1000 + u64::from(i), Some(Duration::from_secs(5)), now)
    }

    /// Node 1 boots alone; node 2 pulls from it, joins, and node 1 hears
    /// back: both publish the two of them.
    fn joined_pair(now: Instant) -> (State, State) {
        let mut a = node(1, now);
        a.boot(None, false, now);
        let mut b = node(2, now);
        b.merge(a.replica(now), now);
        b.boot(None, true, now);
        a.merge(b.replica(now), now);
        (a, b)
    }

    /// Full exchange both ways, as one gossip round trip does.
    fn sync(a: &mut State, b: &mut State, now: Instant) {
        b.merge(a.replica(now), now);
        a.merge(b.replica(now), now);
    }

    #[test]
    fn mint_partitions_versions() {
        assert_eq!(mint(1, 417), 417);
        assert_eq!(mint(417, 417), 1417);
        assert_eq!(mint(1, 0), 1000);
        assert_eq!(mint(1, 1), 1001);
        assert_eq!(mint(1, 2), 2);
        for above in [1, 5, 999, 1000, 123_456] {
            for slot in [0, 1, 2, 500, 999] {
                let v = mint(above, slot);
                assert!(v > above && v - above <= SLOTS && v % SLOTS == u64::from(slot));
            }
        }
        assert_eq!(mint(VERSION_MAX - 1, 0), VERSION_MAX);
        assert_eq!(mint(VERSION_MAX, 3), VERSION_MAX);
        assert_eq!(mint(u64::MAX, 3), VERSION_MAX);
    }

    #[test]
    fn same_file_boots_to_version_one_everywhere() {
        let now = Instant::now();
        let list = vec![n(1), n(2), n(3)];
        let mut a = node(1, now);
        let mut b = node(2, now);
        a.boot(Some(list.clone()), false, now);
        b.boot(Some(list.clone()), false, now);
        assert_eq!(
            a.published(),
            &Pair {
                version: 1,
                nodes: list.clone()
            }
        );
        sync(&mut a, &mut b, now);
        assert_eq!(a.published(), b.published());
        assert_eq!(a.published().version, 1);
    }

    #[test]
    fn standalone_then_join() {
        let now = Instant::now();
        let mut a = node(1, now);
        a.boot(None, false, now);
        assert_eq!(
            a.published(),
            &Pair {
                version: 1,
                nodes: vec![n(1)]
            }
        );
        let mut b = node(2, now);
        b.merge(a.replica(now), now); // bootstrap pull
        b.boot(None, true, now);
        assert!(b.published().version > 1);
        assert_eq!(b.published().nodes, vec![n(1), n(2)]);
        a.merge(b.replica(now), now);
        assert_eq!(a.published(), b.published());
        // Graceful leave.
        b.leave();
        a.merge(b.replica(now), now);
        assert_eq!(a.published().nodes, vec![n(1)]);
        assert!(a.published().version > b.published().version);
    }

    #[test]
    fn silent_node_fails_and_returns() {
        let t0 = Instant::now();
        let list = vec![n(1), n(2), n(3)];
        let mut s: Vec<State> = (1..=3).map(|i| node(i, t0)).collect();
        for x in &mut s {
            x.boot(Some(list.clone()), false, t0);
        }
        let (a, rest) = s.split_at_mut(1);
        let (b, c) = rest.split_at_mut(1);
        let (a, b, c) = (&mut a[0], &mut b[0], &mut c[0]);
        sync(a, b, t0);
        sync(b, c, t0);
        sync(a, c, t0);
        // c goes silent; a and b keep talking.
        let t1 = t0 + Duration::from_secs(3);
        sync(a, b, t1);
        assert!(a.republish(t1, None).is_none());
        let t2 = t0 + Duration::from_secs(6);
        let ca = a.republish(t2, None).unwrap();
        assert_eq!(ca.new.nodes, vec![n(1), n(2)]);
        sync(a, b, t2);
        assert_eq!(a.published(), b.published());
        // c answers again.
        let t3 = t0 + Duration::from_secs(7);
        sync(a, c, t3);
        sync(a, b, t3);
        sync(a, c, t3);
        assert_eq!(a.published().nodes, list);
        assert_eq!(a.published(), b.published());
        assert_eq!(a.published(), c.published());
    }

    #[test]
    fn long_gone_joined_nodes_are_forgotten() {
        let t0 = Instant::now();
        let (mut a, b) = joined_pair(t0);
        assert_eq!(a.peers(), vec![n(2)]);
        let later = t0 + Duration::from_secs(601);
        a.republish(later, None);
        assert!(a.peers().is_empty());
        assert_eq!(a.published().nodes, vec![n(1)]);
        // A peer reporting a silence longer than this process has existed
        // does not make the node look fresh.
        let mut c = node(3, t0);
        c.boot(None, false, t0);
        let mut old = b.replica(t0);
        for (_, silent) in &mut old.records {
            *silent = Duration::from_secs(100 * 365 * 86_400);
        }
        c.merge(old, t0);
        assert_eq!(c.published().nodes, vec![n(3)]);
    }

    #[test]
    fn indirectly_heard_node_stays() {
        let t0 = Instant::now();
        let list = vec![n(1), n(2), n(3)];
        let mut a = node(1, t0);
        let mut b = node(2, t0);
        let mut c = node(3, t0);
        for x in [&mut a, &mut b, &mut c] {
            x.boot(Some(list.clone()), false, t0);
        }
        // a never reaches c directly, but b does.
        for s in 1..=10 {
            let t = t0 + Duration::from_secs(s);
            sync(&mut b, &mut c, t);
            sync(&mut a, &mut b, t);
            assert_eq!(a.published().nodes, list, "at {s}s");
        }
    }

    #[test]
    fn concurrent_admin_changes_never_share_a_version() {
        let now = Instant::now();
        let list = vec![n(1), n(2), n(3)];
        let mut a = node(1, now);
        let mut b = node(2, now);
        a.boot(Some(list.clone()), false, now);
        b.boot(Some(list.clone()), false, now);
        sync(&mut a, &mut b, now);
        let x = a.admin_set(2, vec![n(1), n(7)], now).unwrap().unwrap().new;
        let y = b.admin_set(2, vec![n(2), n(8)], now).unwrap().unwrap().new;
        assert_ne!(x.version, y.version);
        let mut seen = BTreeMap::new();
        for p in [&x, &y] {
            seen.insert(p.version, p.nodes.clone());
        }
        let (va, vb) = (a.published().version, b.published().version);
        sync(&mut a, &mut b, now);
        assert!(a.published().version >= va && b.published().version >= vb);
        assert_eq!(a.published(), b.published());
        for p in [a.published(), b.published()] {
            if let Some(l) = seen.get(&p.version) {
                assert_eq!(l, &p.nodes);
            }
        }
    }

    #[test]
    fn admin_rules() {
        let now = Instant::now();
        let mut a = node(1, now);
        a.boot(Some(vec![n(1)]), false, now);
        assert_eq!(
            a.admin_set(1, vec![n(2)], now),
            Err(AdminError::VersionTooLow {
                asked: 1,
                current: 1
            })
        );
        let c = a.admin_set(50, vec![n(1), n(2)], now).unwrap().unwrap();
        assert!(c.new.version >= 50);
        assert_eq!(c.new.nodes, vec![n(1), n(2)]);
        let before = a.published().version;
        assert!(a.admin_delete(now).is_some());
        assert!(a.published().version > before);
        assert_eq!(a.published().nodes, vec![n(1)]);
        assert!(a.admin_delete(now).is_none());
        let v = a.published().version;
        assert!(a.file_changed(vec![n(1), n(3)], now).is_some());
        assert!(a.published().version > v);
        assert!(a.file_changed(vec![n(1), n(3)], now).is_none());
    }

    #[test]
    fn restart_relearns_and_stays_monotonic() {
        let now = Instant::now();
        let (mut a, _) = joined_pair(now);
        let before = a.published().clone();
        // b crashes, restarts with a later epoch and re-learns before
        // publishing: nothing changes for clients.
        let mut b2 = State::new(n(2), 5000, Some(Duration::from_secs(5)), now);
        b2.merge(a.replica(now), now);
        b2.boot(None, true, now);
        assert_eq!(b2.published(), &before);
        a.merge(b2.replica(now), now);
        assert_eq!(a.published(), &before);
        // After a graceful leave, a restart joins again at a higher version.
        b2.leave();
        a.merge(b2.replica(now), now);
        let without = a.published().clone();
        assert_eq!(without.nodes, vec![n(1)]);
        let mut b3 = State::new(n(2), 6000, Some(Duration::from_secs(5)), now);
        b3.merge(a.replica(now), now);
        b3.boot(None, true, now);
        assert!(b3.published().version > without.version);
        assert_eq!(b3.published().nodes, before.nodes);
        a.merge(b3.replica(now), now);
        assert_eq!(a.published(), b3.published());
    }

    #[test]
    fn slots_differ_between_known_nodes() {
        let now = Instant::now();
        // Nodes start one after another, each learning from the previous.
        let mut states: Vec<State> = Vec::new();
        for i in 1..=60 {
            let mut s = node(i, now);
            if let Some(prev) = states.last() {
                s.merge(prev.replica(now), now);
            }
            s.boot(None, true, now);
            let r = s.replica(now);
            for o in &mut states {
                o.merge(r.clone(), now);
            }
            states.push(s);
        }
        let slots: std::collections::HashSet<u16> = states.iter().map(|s| s.slot()).collect();
        assert_eq!(slots.len(), 60);
        // Two nodes that chose the same slot before meeting: one moves.
        let mut a = node(1, now);
        let mut b = node(2, now);
        a.boot(None, false, now);
        b.boot(None, false, now);
        a.my_record().slot = 7;
        b.my_record().slot = 7;
        sync(&mut a, &mut b, now);
        sync(&mut a, &mut b, now);
        assert_ne!(a.slot(), b.slot());
        assert_eq!(a.slot(), 7, "the older incarnation keeps its slot");
    }
}
