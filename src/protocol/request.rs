//! The protocol-neutral request model shared by every codec.
//!
//! Requests borrow keys and values from the connection's read buffer, so
//! parsing allocates nothing. Adding a verb means: a variant here, a parse arm
//! in each codec that speaks it, and an arm in `exec`.

pub use crate::storage::{ArithOp, StoreMode};

use crate::protocol::meta::{MetaFlags, MetaKey};

/// The keys of a multi-key retrieval, as written on the command line: one or
/// more keys separated by spaces. Already validated by the parser; iterating
/// yields each key without allocating.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct KeyList<'a> {
    raw: &'a [u8],
    /// One key that may contain spaces (binary protocol keys are arbitrary
    /// bytes).
    single: bool,
}

impl<'a> KeyList<'a> {
    /// Wraps a space-separated key list. The caller guarantees every key is
    /// valid: 1..=250 bytes without spaces. Like memcached, the text codec
    /// lets other control characters through.
    pub fn new(raw: &'a [u8]) -> Self {
        KeyList { raw, single: false }
    }

    /// Wraps exactly one key, taken as is (binary protocol).
    pub fn single(key: &'a [u8]) -> Self {
        KeyList {
            raw: key,
            single: true,
        }
    }

    /// Iterates over the keys. Spaces are found with `memchr` rather than a
    /// byte-by-byte split: this runs once per retrieval on the hot path.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let raw = self.raw;
        let single = self.single;
        let mut pos = 0;
        std::iter::from_fn(move || {
            if single {
                if pos == 0 && !raw.is_empty() {
                    pos = raw.len();
                    return Some(raw);
                }
                return None;
            }
            while pos < raw.len() {
                let end = memchr::memchr(b' ', &raw[pos..]).map_or(raw.len(), |i| pos + i);
                let key = &raw[pos..end];
                pos = end + 1;
                if !key.is_empty() {
                    return Some(key);
                }
            }
            None
        })
    }
}

/// Which `stats` report is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatsGroup<'a> {
    /// Plain `stats`: the general counters.
    General,
    /// `stats settings`.
    Settings,
    /// `stats items`: per slab class item counters.
    Items,
    /// `stats slabs`: per slab class memory counters.
    Slabs,
    /// `stats sizes`.
    Sizes,
    /// `stats conns`: one block per open connection.
    Conns,
    /// `stats reset`: zero the resettable counters.
    Reset,
    /// `stats cachedump <class> <limit>`: keys of one slab class.
    CacheDump { class: u32, limit: u32 },
    /// Anything else; memcached answers with an error.
    Other(&'a [u8]),
}

/// What an `lru_crawler` command does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrawlerOp {
    /// `crawl`: reclaim expired items now.
    Crawl,
    /// `metadump`: one line per live item.
    Metadump,
}

/// A crawler setting changed at run time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrawlerSetting {
    /// `lru_crawler enable`.
    Enable,
    /// `lru_crawler disable`.
    Disable,
    /// `lru_crawler sleep <microseconds>` and `lru_crawler tocrawl <items>`:
    /// memcached's pacing knobs, accepted and ignored (our crawler works in
    /// fixed batches of chunks).
    Pacing,
}

/// Which size classes an `lru_crawler` command covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrawlerClasses {
    /// `all`.
    All,
    /// `hash`: metadump in hash-table order; we list in chunk order.
    Hash,
    /// A comma-separated list of ids: bit `n` stands for class `n`.
    Ids(u128),
    /// A list with something other than a class number from 1 to 127.
    Invalid,
}

/// One request, independent of the codec that carried it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request<'a> {
    /// `get`/`gets` (and `gat`/`gats` when `touch` holds the new exptime).
    Get {
        keys: KeyList<'a>,
        with_cas: bool,
        touch: Option<i64>,
    },
    /// `set`, `add`, `replace`, `append`, `prepend`, `cas`.
    Store {
        mode: StoreMode,
        key: &'a [u8],
        flags: u32,
        exptime: i64,
        /// Compare-and-swap unique; only meaningful for [`StoreMode::Cas`].
        cas: u64,
        value: &'a [u8],
        noreply: bool,
    },
    /// A storage command refused because its value exceeds the item limit.
    /// Its data never reaches the server; memcached answers
    /// `SERVER_ERROR object too large for cache` and, for `set`, drops the
    /// value the refused write would have replaced.
    StoreTooLarge {
        mode: StoreMode,
        key: &'a [u8],
        noreply: bool,
    },
    /// A storage command refused before its data arrived because the
    /// memory for uploads in progress is spent ([`Limits::pending_value_max`]):
    /// `SERVER_ERROR out of memory storing object`, and like memcached's
    /// failed allocation, a `set` drops the value it would have replaced.
    ///
    /// [`Limits::pending_value_max`]: crate::protocol::Limits::pending_value_max
    StoreNoMemory {
        mode: StoreMode,
        key: &'a [u8],
        noreply: bool,
    },
    /// `delete <key>`.
    Delete { key: &'a [u8], noreply: bool },
    /// `incr`/`decr <key> <delta>`.
    Arith {
        op: ArithOp,
        key: &'a [u8],
        delta: u64,
        noreply: bool,
    },
    /// `touch <key> <exptime>`.
    Touch {
        key: &'a [u8],
        exptime: i64,
        noreply: bool,
    },
    /// `flush_all [delay]`.
    FlushAll { delay: i64, noreply: bool },
    /// `version`.
    Version,
    /// `verbosity <level>`.
    Verbosity { level: u32, noreply: bool },
    /// `quit`: close after flushing earlier replies.
    Quit,
    /// `shutdown [graceful]` (allowed only with `-A`).
    Shutdown { graceful: bool },
    /// `cache_memlimit <megabytes>`.
    CacheMemlimit { megabytes: u64, noreply: bool },
    /// `stats [group]`.
    Stats { group: StatsGroup<'a> },
    /// `slabs automove <0|1|2>`; `None` for `slabs automove ratio <r>`,
    /// a memcached tuning knob we accept and ignore.
    SlabsAutomove { policy: Option<u8>, noreply: bool },
    /// `slabs reassign <src> <dst>`: move a page between size classes.
    SlabsReassign { from: i64, to: i64 },
    /// `lru_crawler enable|disable|sleep|tocrawl`.
    LruCrawlerSet(CrawlerSetting),
    /// `lru_crawler crawl|metadump <classes>`.
    LruCrawler {
        op: CrawlerOp,
        classes: CrawlerClasses,
    },
    /// Meta get (`mg`): a lookup whose flags pick what to return and may
    /// touch, vivify or ask for the recache win.
    MetaGet {
        key: MetaKey<'a>,
        flags: MetaFlags<'a>,
    },
    /// Meta set (`ms`) with its data block.
    MetaSet {
        key: MetaKey<'a>,
        flags: MetaFlags<'a>,
        value: &'a [u8],
    },
    /// Meta delete (`md`): remove, invalidate or empty an item.
    MetaDelete {
        key: MetaKey<'a>,
        flags: MetaFlags<'a>,
    },
    /// Meta arithmetic (`ma`).
    MetaArith {
        key: MetaKey<'a>,
        flags: MetaFlags<'a>,
    },
    /// Meta debug (`me <key> [b]`).
    MetaDebug { key: MetaKey<'a> },
    /// Meta no-op (`mn`): answers `MN`, marking the end of a quiet pipeline.
    MetaNoop,
    /// Binary NOOP: answers with an empty success, flushing quiet pipelines.
    Noop,
    /// Delete only when the item's CAS unique equals `cas` (0 = any), as the
    /// binary protocol allows.
    DeleteIf {
        key: &'a [u8],
        cas: u64,
        noreply: bool,
    },
    /// incr/decr with the binary protocol's extras: create the item with
    /// `initial` and `exptime` when absent (`create = None`: answer not
    /// found), and only change it when its CAS unique equals `cas` (0 = any).
    ArithEx {
        op: ArithOp,
        key: &'a [u8],
        delta: u64,
        create: Option<(u64, i64)>,
        cas: u64,
        noreply: bool,
    },
    /// SASL: list the mechanisms offered. Answered by the connection, which
    /// owns the authentication state, never by `exec`.
    SaslListMechs,
    /// SASL: start an exchange with `mech` and the client's first message.
    SaslAuth { mech: &'a [u8], data: &'a [u8] },
    /// SASL: the next client message of an exchange.
    SaslStep { mech: &'a [u8], data: &'a [u8] },
    /// `refresh_certs`: reload the TLS certificate and key files.
    RefreshCerts,
    /// `config get <key>` (auto discovery; only `cluster` exists).
    ConfigGet { key: &'a [u8] },
    /// `config set <key> <flags> <bytes> [noreply]` + data block.
    ConfigSet {
        key: &'a [u8],
        flags: u32,
        value: &'a [u8],
        noreply: bool,
    },
    /// `config delete <key> [noreply]`.
    ConfigDelete { key: &'a [u8], noreply: bool },
    /// The configuration keys (ElastiCache's binary CONFIG_LIST; the text
    /// protocol has no such command).
    ConfigList,
    /// `cluster sync <bytes>` + data block: a peer's membership state.
    ClusterSync { data: &'a [u8] },
}

impl Request<'_> {
    /// Whether the client asked not to get a reply.
    pub fn noreply(&self) -> bool {
        match *self {
            Request::Store { noreply, .. }
            | Request::StoreTooLarge { noreply, .. }
            | Request::StoreNoMemory { noreply, .. }
            | Request::Delete { noreply, .. }
            | Request::DeleteIf { noreply, .. }
            | Request::ArithEx { noreply, .. }
            | Request::Arith { noreply, .. }
            | Request::Touch { noreply, .. }
            | Request::FlushAll { noreply, .. }
            | Request::Verbosity { noreply, .. }
            | Request::CacheMemlimit { noreply, .. }
            | Request::SlabsAutomove { noreply, .. }
            | Request::ConfigSet { noreply, .. }
            | Request::ConfigDelete { noreply, .. } => noreply,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::KeyList;

    fn keys(list: KeyList<'_>) -> Vec<&[u8]> {
        list.iter().collect()
    }

    #[test]
    fn key_lists_split_on_spaces_and_skip_empty_runs() {
        assert_eq!(keys(KeyList::new(b"a")), vec![&b"a"[..]]);
        assert_eq!(
            keys(KeyList::new(b"a bb  ccc ")),
            vec![&b"a"[..], b"bb", b"ccc"]
        );
        assert_eq!(keys(KeyList::new(b"  a")), vec![&b"a"[..]]);
        assert!(keys(KeyList::new(b"")).is_empty());
        assert!(keys(KeyList::new(b"   ")).is_empty());
        // A single key is taken whole, spaces and all (binary and meta keys).
        assert_eq!(keys(KeyList::single(b"a b")), vec![&b"a b"[..]]);
        assert!(keys(KeyList::single(b"")).is_empty());
    }
}
