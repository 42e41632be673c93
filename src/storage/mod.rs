//! The item store: a memcached-style slab allocator (pages of `-I` bytes up to
//! `-m`, size classes growing by `√-f`), a concurrent hash index, per-class
//! eviction, lazy and background expiry, and page rebalancing between classes.
//!
//! Storage knows nothing of protocols, connections or the wall clock: every
//! call takes the current relative time, and results are plain enums that
//! each codec renders in its own way.
//!
//! Files: `item` (header layout), `slabs` (pages, classes, free lists),
//! `index` (striped hash table), `evict` (allocation, S3-FIFO/CLOCK
//! eviction, page moves), `crawler` (background expiry), `arith`.
//!
//! # Memory per item
//! A 23-byte header (flags only when non-zero), key and value in one chunk
//! (memcached: 56 + key + 1 + value + 2, flags extra). Outside `-m`: 4
//! bytes plus a control byte per index bucket (~7.5 B per item at the
//! table's average load), 4 bytes per item in the small FIFO (~10 % of
//! items once full), a 2-byte ghost slot per 256 bytes of `-m`. No
//! per-item queue links or hash chain pointers: see `evict`.
//!
//! Example, 10-byte key and 100-byte value: 133 bytes in a 144-byte chunk
//! plus ~8.5 bytes outside, against memcached's 169 in a 192-byte chunk
//! plus its 8-byte buckets.
//!
//! # Locks and ownership
//! - **Stripe lock** (one of 1024 mutexes in `index`): guards its table and
//!   the items it points to. Readers of an item's key, value or CAS hold it;
//!   linking, unlinking, touch and in-place incr/decr happen under it. A
//!   thread holding a stripe lock never blocks on any other lock, and never
//!   holds two stripe locks.
//! - **Class lock** (one per size class, `slabs::Class::inner`): guards the
//!   free list, page list, CLOCK hand, small FIFO and the class counters.
//!   Held while allocating, evicting, crawling and moving pages. A thread
//!   holds at most one class lock at a time.
//! - **Order**: class lock → stripe lock. The evictor and crawler only
//!   *try* the stripe lock and skip the item if it is busy; the page mover
//!   may wait for it, which is safe because stripe holders never wait. The
//!   crawler's own mutex comes before both.
//! - **Chunk life**: FREE (in a free list; touched only under the class
//!   lock) → OWNED (handed to one thread, written without locks) → LINKED
//!   (in the index) → OWNED (unlinked under the stripe lock by one thread,
//!   which then frees or reuses it under the class lock). A key is only
//!   rewritten after FREE, so a class-lock holder may read the key of any
//!   LINKED chunk of its class to find its stripe.
//! - Atomics in the header (`state`, `access`, `time`, `exptime`) are the
//!   fields read or written without the stripe lock: read hits set access
//!   bits; the evictor reads them and the state.
//! - **Page moves** happen under the donor's class lock and only for a page
//!   with no OWNED chunk, after evicting its LINKED ones: an OWNED chunk
//!   pins its page, so whoever owns a chunk may free it into the class its
//!   page had. Pages never return to the allocator; page-table slots are
//!   atomics, so locating a chunk takes no lock.
//! - The `get` callback runs under the stripe lock and must not call back
//!   into the cache.
//!
//! # Never
//! Storage never reads the clock, never allocates on a read hit, never
//! grows beyond its pages plus the bounded side tables above, and never
//! holds two class locks or two stripe locks at once.

mod arith;
mod crawler;
mod dump;
pub use dump::{CrawledItem, DumpedItem};
mod evict;
mod index;
mod item;
mod meta;
mod slabs;

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Mutex, MutexGuard};

use hashbrown::HashTable;

use crate::clock::RelTime;
use evict::Ghost;
use index::{lock, Index};
use item::{item_size, Item, FETCHED, KEY_BINARY, LINKED, OWNED, STALE};
use slabs::Slabs;

pub use meta::{DebugInfo, MetaArith, MetaDeleteOpts, MetaGetOpts, MetaStoreOpts, MetaView};

/// How a store combines the new value with what is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreMode {
    /// Store unconditionally.
    Set,
    /// Store only if the key is absent.
    Add,
    /// Store only if the key is present.
    Replace,
    /// Add the data after the stored value (keeps flags and exptime).
    Append,
    /// Add the data before the stored value (keeps flags and exptime).
    Prepend,
    /// Store only if the stored item's CAS unique equals the given one.
    Cas,
}

/// Direction of an arithmetic update.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOp {
    /// Add, wrapping at 2^64.
    Incr,
    /// Subtract, stopping at zero.
    Decr,
}

/// Sizing and policy, taken from the command line.
#[derive(Clone, Debug)]
pub struct CacheConfig {
    /// Memory for items in bytes (`-m`).
    pub mem_limit: usize,
    /// Page size and largest item (`-I`).
    pub item_size_max: usize,
    /// Chunk size growth factor between classes (`-f`).
    pub growth_factor: f64,
    /// Minimum space for key + value + flags in the smallest chunk (`-n`).
    pub chunk_size_min: usize,
    /// Evict when memory is full; `false` (`-M`) fails the store instead.
    pub evict: bool,
    /// Report CAS uniques (`-C` turns this off; `gets` then shows 0).
    pub use_cas: bool,
    /// log2 of the initial index size (`-o hashpower`).
    pub hashpower: u8,
    /// Allow pages to move between classes (`-o slab_reassign`).
    pub slab_reassign: bool,
    /// Page mover policy (`-o slab_automove`): 0 off, 1 conservative, 2 eager.
    pub slab_automove: u8,
    /// Reclaim expired items in the background (`-o lru_crawler`).
    pub lru_crawler: bool,
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            mem_limit: 64 * 1024 * 1024,
            item_size_max: 1024 * 1024,
            growth_factor: 1.25,
            chunk_size_min: 48,
            evict: true,
            use_cas: true,
            hashpower: 16,
            slab_reassign: true,
            slab_automove: 1,
            lru_crawler: true,
        }
    }
}

/// A stored item as seen by a reader; borrowed only for the reader's callback.
#[derive(Clone, Copy, Debug)]
pub struct ItemRef<'a> {
    pub key: &'a [u8],
    pub value: &'a [u8],
    pub flags: u32,
    /// CAS unique (0 when CAS is disabled).
    pub cas: u64,
    /// Relative deadline, 0 = never.
    pub exptime: RelTime,
    /// Relative time of the previous access.
    pub last_access: RelTime,
    /// Whether the item had been read before this access.
    pub fetched: bool,
}

/// Result of a lookup. `Expired` and `Flushed` are misses that also feed the
/// `get_expired` and `get_flushed` counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<R> {
    Hit(R),
    Miss,
    Expired,
    Flushed,
}

/// Result of a store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StoreOutcome {
    /// Stored with this CAS unique.
    Stored { cas: u64 },
    /// The mode's condition failed (add on a present key, replace/append/
    /// prepend on an absent one).
    NotStored,
    /// CAS mismatch.
    Exists,
    /// CAS on an absent key.
    NotFound,
    /// Larger than the largest item (`-I`).
    TooLarge,
    /// No memory and eviction is off or found nothing to evict.
    OutOfMemory,
}

/// Result of a delete.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    NotFound,
    /// A CAS was given and did not match.
    Exists,
}

/// Result of incr/decr.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ArithOutcome {
    /// The new value and the item's new CAS unique.
    Value {
        value: u64,
        cas: u64,
    },
    NotFound,
    /// The stored value is not a decimal number of at most 20 digits.
    NonNumeric,
    /// A CAS was given and did not match.
    Exists,
    OutOfMemory,
}

/// Whole-cache counters for `stats`.
#[derive(Clone, Debug, Default)]
pub struct CacheStats {
    pub curr_items: u64,
    pub total_items: u64,
    /// Bytes used by live items (header + key + value), memcached's `bytes`.
    pub bytes: u64,
    pub limit_maxbytes: u64,
    pub total_malloced: u64,
    pub evictions: u64,
    pub reclaimed: u64,
    pub expired_unfetched: u64,
    pub evicted_unfetched: u64,
    pub slabs_moved: u64,
    pub hash_power_level: u32,
    pub hash_bytes: u64,
    pub crawler_reclaimed: u64,
}

/// Per size class counters for `stats slabs` and `stats items`.
#[derive(Clone, Debug, Default)]
pub struct ClassStats {
    /// Class number as memcached numbers them (from 1).
    pub id: u32,
    pub chunk_size: u64,
    pub chunks_per_page: u64,
    pub total_pages: u64,
    pub total_chunks: u64,
    pub used_chunks: u64,
    pub free_chunks: u64,
    pub items: u64,
    /// Age in seconds of the oldest item (0 when empty).
    pub age: u64,
    pub evicted: u64,
    pub evicted_nonzero: u64,
    pub evicted_time: u64,
    pub evicted_unfetched: u64,
    pub expired_unfetched: u64,
    pub outofmemory: u64,
    pub reclaimed: u64,
    pub mem_requested: u64,
}

/// memcached's `KEY_MAX_LENGTH`.
pub const KEY_MAX_LENGTH: usize = 250;

/// Why a found item is not live.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dead {
    Expired,
    Flushed,
}

/// A store without the meta extras.
const PLAIN: MetaStoreOpts = MetaStoreOpts {
    invalidate: false,
    new_cas: None,
    vivify: None,
    binary_key: false,
};

/// What `slabs reassign` did, in memcached's terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reassign {
    Moved,
    /// A chunk of the page is in use by another request; try again.
    Busy,
    /// A class id outside the classes there are.
    BadClass,
    /// The source class has fewer than two pages.
    NoSpare,
    /// Source and destination are the same class.
    Same,
    /// `-o no_slab_reassign`.
    Disabled,
}

/// What a stripe lookup found.
enum Found {
    Live(u32),
    Absent,
    /// Dead item, already unlinked; free it (after dropping the stripe lock)
    /// with [`Cache::release`].
    Dead(u32, Dead, bool),
}

/// The shared cache. `Send + Sync`; every method may be called from any thread.
pub struct Cache {
    config: CacheConfig,
    slabs: Slabs,
    index: Index,
    ghost: Ghost,
    /// Last CAS unique handed out; also the logical clock of page moves.
    cas: AtomicU64,
    /// Immediate flush: items with a CAS at or below this are invalid.
    flush_cas: AtomicU64,
    /// Delayed flush: from this time on, items last written or read before
    /// it are invalid (0: none).
    flush_at: AtomicU32,
    /// Items last written or read before this time are invalid: set by an
    /// immediate flush, and by a delayed one that took effect and was then
    /// replaced by another flush.
    flush_done: AtomicU32,
    /// Bumped by every flush; the crawler clears flushed items until a full
    /// pass has seen the latest one.
    flush_epoch: AtomicU64,
    total_items: AtomicU64,
    slabs_moved: AtomicU64,
    /// The page mover's policy now: `-o slab_automove`, then `slabs automove`.
    automove: AtomicU8,
    /// Whether the crawler runs: `-o lru_crawler`, then `lru_crawler
    /// enable|disable`.
    crawler_on: AtomicBool,
    crawler: Mutex<crawler::Crawler>,
}

impl Cache {
    /// Creates an empty cache; pages are allocated lazily up to the limit.
    pub fn new(config: CacheConfig) -> Self {
        let slabs = Slabs::new(
            config.mem_limit,
            config.item_size_max,
            config.growth_factor,
            config.chunk_size_min,
        );
        let index = Index::new(config.hashpower, slabs.max_chunks());
        let ghost = Ghost::new(config.mem_limit / 256);
        Cache {
            slabs,
            index,
            ghost,
            cas: AtomicU64::new(0),
            flush_cas: AtomicU64::new(0),
            flush_at: AtomicU32::new(0),
            flush_done: AtomicU32::new(0),
            flush_epoch: AtomicU64::new(0),
            total_items: AtomicU64::new(0),
            slabs_moved: AtomicU64::new(0),
            automove: AtomicU8::new(config.slab_automove),
            crawler_on: AtomicBool::new(config.lru_crawler),
            crawler: Mutex::new(crawler::Crawler::default()),
            config,
        }
    }

    /// The configuration the cache was built with.
    pub fn config(&self) -> &CacheConfig {
        &self.config
    }

    /// Largest value (with `key_len` bytes of key and non-zero flags) that
    /// fits in one item.
    pub fn max_value_len(&self, key_len: usize) -> usize {
        self.slabs.page_size - item_size(key_len, 0, 1)
    }

    #[inline]
    fn next_cas(&self) -> u64 {
        self.cas.fetch_add(1, Ordering::AcqRel) + 1
    }

    #[inline]
    fn reported(&self, cas: u64) -> u64 {
        if self.config.use_cas {
            cas
        } else {
            0
        }
    }

    /// Why an item is not live, if it is not. Flush wins over expiry, as in
    /// memcached.
    ///
    /// Reads the CAS, so the caller holds the item's stripe lock.
    fn dead(&self, it: Item, now: RelTime) -> Option<Dead> {
        let fc = self.flush_cas.load(Ordering::Acquire);
        // SAFETY: the caller holds the stripe lock (documented above).
        if fc != 0 && unsafe { it.cas() } <= fc {
            return Some(Dead::Flushed);
        }
        let fa = self.flush_at.load(Ordering::Acquire);
        let time = it.time().load(Ordering::Relaxed);
        if (fa != 0 && now >= fa && time < fa) || time < self.flush_done.load(Ordering::Acquire) {
            return Some(Dead::Flushed);
        }
        let exp = it.exptime().load(Ordering::Relaxed);
        if exp != 0 && exp <= now {
            return Some(Dead::Expired);
        }
        None
    }

    /// Looks `key` up in its locked stripe; unlinks it when dead.
    fn find(&self, t: &mut HashTable<u32>, hash: u64, key: &[u8], now: RelTime) -> Found {
        let slabs = &self.slabs;
        // SAFETY: every location in a stripe's table is a LINKED item and we
        // hold that stripe's lock, so its key is stable.
        let eq = |&l: &u32| unsafe { slabs.item(l).key() } == key;
        let Ok(entry) = t.find_entry(hash, eq) else {
            return Found::Absent;
        };
        let loc = *entry.get();
        let it = slabs.item(loc);
        match self.dead(it, now) {
            None => Found::Live(loc),
            Some(d) => {
                entry.remove();
                self.unlinked(loc);
                let fetched = it.access().load(Ordering::Relaxed) & FETCHED != 0;
                Found::Dead(loc, d, fetched)
            }
        }
    }

    /// Bookkeeping for an item that just left the index (stripe lock held):
    /// it becomes OWNED by the caller.
    fn unlinked(&self, loc: u32) {
        let it = self.slabs.item(loc);
        it.set_life(OWNED);
        let id = self.slabs.class_of(loc);
        if id != 0 {
            let c = self.slabs.class(id);
            c.items.fetch_sub(1, Ordering::Relaxed);
            // SAFETY: we own the chunk now.
            let size = unsafe { it.size() } as u64;
            c.requested.fetch_sub(size, Ordering::Relaxed);
        }
    }

    /// Links an OWNED, fully written item (stripe lock held), replacing
    /// `old` if given. Returns the new CAS.
    fn link(&self, t: &mut HashTable<u32>, hash: u64, loc: u32, old: Option<u32>) -> u64 {
        let slabs = &self.slabs;
        let it = slabs.item(loc);
        let cas = self.next_cas();
        // SAFETY: we own the chunk until it is linked below.
        unsafe { it.set_cas(cas) };
        match old.and_then(|o| t.find_mut(hash, |&l| l == o).map(|slot| (o, slot))) {
            Some((o, slot)) => {
                *slot = loc;
                self.unlinked(o);
            }
            None => {
                // SAFETY: the hasher reads keys of linked items in this
                // stripe, guarded by the stripe lock we hold.
                let hasher = |&l: &u32| self.index.hash(unsafe { slabs.item(l).key() });
                t.insert_unique(hash, loc, hasher);
            }
        }
        let id = slabs.class_of(loc);
        let c = slabs.class(id);
        c.items.fetch_add(1, Ordering::Relaxed);
        // SAFETY: still ours until the state says LINKED.
        let size = unsafe { it.size() } as u64;
        c.requested.fetch_add(size, Ordering::Relaxed);
        it.set_life(LINKED);
        self.total_items.fetch_add(1, Ordering::Relaxed);
        cas
    }

    fn release_found(&self, f: Found) {
        if let Found::Dead(loc, d, fetched) = f {
            self.release(loc, Some((d, fetched)));
        }
    }

    /// Looks a key up and, on a hit, lets `read` see the item. `touch` sets a
    /// new deadline first (gat). A hit marks the item accessed without taking
    /// any global lock.
    ///
    /// `read` runs under the key's stripe lock: it must not call the cache.
    pub fn get<R>(
        &self,
        key: &[u8],
        now: RelTime,
        touch: Option<RelTime>,
        read: impl FnOnce(ItemRef<'_>) -> R,
    ) -> Lookup<R> {
        let hash = self.index.hash(key);
        let mut t = lock(self.index.stripe(hash));
        match self.find(&mut t, hash, key, now) {
            Found::Live(loc) => {
                let it = self.slabs.item(loc);
                if let Some(exp) = touch {
                    it.exptime().store(exp, Ordering::Relaxed);
                }
                let last_access = it.time().load(Ordering::Relaxed);
                let fetched = it.mark_access();
                // SAFETY: LINKED item under its stripe lock; the slices do
                // not outlive `read`, which runs before the lock drops.
                let r = unsafe { read(self.item_ref(it, last_access, fetched)) };
                if last_access != now {
                    it.time().store(now, Ordering::Relaxed);
                }
                Lookup::Hit(r)
            }
            Found::Absent => Lookup::Miss,
            f @ Found::Dead(_, d, _) => {
                drop(t);
                self.release_found(f);
                match d {
                    Dead::Expired => Lookup::Expired,
                    Dead::Flushed => Lookup::Flushed,
                }
            }
        }
    }

    /// A live item as its reader sees it; `last_access` and `fetched` are
    /// from before this access.
    ///
    /// # Safety
    /// The caller holds the item's stripe lock; the slices must not outlive
    /// it.
    #[inline]
    unsafe fn item_ref<'a>(&self, it: Item, last_access: RelTime, fetched: bool) -> ItemRef<'a> {
        ItemRef {
            key: it.key(),
            value: it.value(),
            flags: it.flags(),
            cas: self.reported(it.cas()),
            exptime: it.exptime().load(Ordering::Relaxed),
            last_access,
            fetched,
        }
    }

    /// The condition of a store mode against the current item's CAS
    /// (`None`: absent).
    fn check(&self, mode: StoreMode, cas_in: u64, old: Option<u64>) -> Result<(), StoreOutcome> {
        let old = old.map(|c| self.reported(c));
        match (mode, old) {
            (StoreMode::Add, Some(_)) => Err(StoreOutcome::NotStored),
            (StoreMode::Add, None) => Ok(()),
            (StoreMode::Cas, None) => Err(StoreOutcome::NotFound),
            // Without CAS uniques (-C) no client can hold a matching one:
            // memcached answers EXISTS to every cas on a present key.
            (StoreMode::Cas, Some(_)) if !self.config.use_cas => Err(StoreOutcome::Exists),
            (StoreMode::Cas, Some(c)) if c != cas_in => Err(StoreOutcome::Exists),
            (StoreMode::Cas, Some(_)) => Ok(()),
            (_, None) if cas_in != 0 => Err(StoreOutcome::NotFound),
            (StoreMode::Set, None) => Ok(()),
            (_, None) => Err(StoreOutcome::NotStored),
            (_, Some(c)) if cas_in != 0 && c != cas_in => Err(StoreOutcome::Exists),
            (_, Some(_)) => Ok(()),
        }
    }

    /// Current live item's CAS for a store's pre-check (stripe lock held).
    fn current_cas(
        &self,
        t: &mut HashTable<u32>,
        hash: u64,
        key: &[u8],
        now: RelTime,
    ) -> (Option<(u32, u64)>, Found) {
        match self.find(t, hash, key, now) {
            // SAFETY: live item under its stripe lock.
            Found::Live(loc) => (
                Some((loc, unsafe { self.slabs.item(loc).cas() })),
                Found::Absent,
            ),
            f => (None, f),
        }
    }

    /// Stores `value` under `key` according to `mode`. `cas` is compared for
    /// [`StoreMode::Cas`] and, when non-zero, for the other modes too (binary
    /// protocol semantics).
    #[allow(clippy::too_many_arguments)]
    pub fn store(
        &self,
        mode: StoreMode,
        key: &[u8],
        flags: u32,
        exptime: RelTime,
        value: &[u8],
        cas: u64,
        now: RelTime,
    ) -> StoreOutcome {
        if key.is_empty() || key.len() > KEY_MAX_LENGTH {
            return StoreOutcome::NotStored;
        }
        if matches!(mode, StoreMode::Append | StoreMode::Prepend) {
            return self.concat(mode, key, value, cas, now);
        }
        self.store_whole(mode, key, flags, exptime, value, cas, now, &PLAIN)
    }

    /// Every store of a whole value (all modes but append and prepend),
    /// classic or meta; `opts` brings the meta extras and the classic verbs
    /// pass [`PLAIN`]. Always inlined, so that `store`, the hot path, gets a
    /// copy with the meta branches folded away.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn store_whole(
        &self,
        mode: StoreMode,
        key: &[u8],
        flags: u32,
        exptime: RelTime,
        value: &[u8],
        cas: u64,
        now: RelTime,
        opts: &MetaStoreOpts,
    ) -> StoreOutcome {
        let Some(id) = self.class_for(key.len(), value.len(), flags) else {
            return StoreOutcome::TooLarge;
        };
        let hash = self.index.hash(key);
        {
            // Fail cheaply before allocating (and maybe evicting), and
            // overwrite in place when the new item fits the old chunk's
            // class.
            let mut t = lock(self.index.stripe(hash));
            let (cur, f) = self.current_cas(&mut t, hash, key, now);
            let stale = match self.meta_check(mode, cas, cur.map(|c| c.1), opts) {
                Ok(stale) => stale,
                Err(o) => {
                    drop(t);
                    self.release_found(f);
                    return o;
                }
            };
            if let Some((old, _)) = cur {
                if let Some(new_cas) = self.overwrite(old, id, flags, exptime, value, now) {
                    let new_cas = self.meta_marks(self.slabs.item(old), new_cas, stale, opts);
                    return StoreOutcome::Stored {
                        cas: self.reported(new_cas),
                    };
                }
            }
            drop(t);
            self.release_found(f);
        }
        self.store_new(mode, key, hash, id, flags, exptime, value, cas, now, opts)
    }

    /// The meta extras on an item just written, under its stripe lock:
    /// `E`'s CAS instead of the minted one, `I`'s stale mark and the
    /// binary-key mark. Returns the item's CAS.
    #[inline(always)]
    fn meta_marks(&self, it: Item, minted: u64, stale: bool, opts: &MetaStoreOpts) -> u64 {
        let bits = if stale { STALE } else { 0 } | if opts.binary_key { KEY_BINARY } else { 0 };
        if bits != 0 {
            it.state().fetch_or(bits, Ordering::Relaxed);
        }
        match opts.new_cas {
            Some(c) => {
                // SAFETY: a linked item under the stripe lock the caller holds.
                unsafe { it.set_cas(c) };
                c
            }
            None => minted,
        }
    }

    /// The second half of [`Cache::store_whole`] when the value cannot be
    /// written in place: writes it into a fresh chunk, then checks `mode`
    /// again under the stripe lock, because the key may have changed while
    /// we allocated (and maybe evicted). Inlined into `store_whole` for the
    /// same reason, rather than called with eleven arguments.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn store_new(
        &self,
        mode: StoreMode,
        key: &[u8],
        hash: u64,
        id: u8,
        flags: u32,
        exptime: RelTime,
        value: &[u8],
        cas: u64,
        now: RelTime,
        opts: &MetaStoreOpts,
    ) -> StoreOutcome {
        let Some(loc) = self.alloc(id, hash, now) else {
            return StoreOutcome::OutOfMemory;
        };
        let it = self.slabs.item(loc);
        // SAFETY: `alloc` handed us the chunk OWNED and sized for the item.
        unsafe { it.init(key, value.len(), flags, exptime, now, 0) }.copy_from_slice(value);
        let mut t = lock(self.index.stripe(hash));
        let (cur, f) = self.current_cas(&mut t, hash, key, now);
        let stale = match self.meta_check(mode, cas, cur.map(|c| c.1), opts) {
            Ok(stale) => stale,
            Err(o) => {
                drop(t);
                self.release_found(f);
                self.release(loc, None);
                return o;
            }
        };
        let minted = self.link(&mut t, hash, loc, cur.map(|c| c.0));
        let new_cas = self.meta_marks(it, minted, stale, opts);
        drop(t);
        self.release_found(f);
        if let Some((old, _)) = cur {
            self.release(old, None);
        }
        StoreOutcome::Stored {
            cas: self.reported(new_cas),
        }
    }

    /// Rewrites a live item's value, flags and deadline in its own chunk
    /// (stripe lock held) when the new item belongs to the same class, is
    /// small enough to copy under the lock, and keeps the flags' presence —
    /// so the key bytes, which the evictor may read without the stripe
    /// lock, do not move. Saves the allocation and the free of a
    /// replacement; the item keeps its place in the eviction order, like an
    /// access. Returns the new CAS, or `None` when it does not apply.
    fn overwrite(
        &self,
        loc: u32,
        id: u8,
        flags: u32,
        exptime: RelTime,
        value: &[u8],
        now: RelTime,
    ) -> Option<u64> {
        const INPLACE_MAX: usize = 16 * 1024;
        let it = self.slabs.item(loc);
        if value.len() > INPLACE_MAX || self.slabs.class_of(loc) != id {
            return None;
        }
        // SAFETY: live item under its stripe lock (the caller's); only
        // stripe-lock holders read vlen, flags, value and CAS, and the key
        // is not touched.
        unsafe {
            if (it.flags() != 0) != (flags != 0) {
                return None;
            }
            let old_size = it.size() as u64;
            it.set_flags_and_len(flags, value.len());
            it.value_mut().copy_from_slice(value);
            // Shared per-class counter: touched only when the size changes
            // (an overwrite usually keeps it), so same-size overwrites from
            // many threads do not bounce its cache line.
            let new_size = it.size() as u64;
            if new_size != old_size {
                let class = self.slabs.class(id);
                class
                    .requested
                    .fetch_add(new_size.wrapping_sub(old_size), Ordering::Relaxed);
            }
            let cas = self.next_cas();
            it.set_cas(cas);
            it.exptime().store(exptime, Ordering::Relaxed);
            it.time().store(now, Ordering::Relaxed);
            // A new value has not been read yet; its frequency stays. Read
            // first: a store to a line readers share only when needed.
            let access = it.access().load(Ordering::Relaxed);
            if access & FETCHED != 0 {
                it.access().fetch_and(!FETCHED, Ordering::Relaxed);
            }
            it.clear_meta();
            self.total_items.fetch_add(1, Ordering::Relaxed);
            Some(cas)
        }
    }

    /// Locks the key's stripe and finds its live item and that item's CAS.
    /// Without one, frees what the look found dead after dropping the lock.
    fn lock_live(
        &self,
        hash: u64,
        key: &[u8],
        now: RelTime,
    ) -> Option<(MutexGuard<'_, HashTable<u32>>, u32, u64)> {
        let mut t = lock(self.index.stripe(hash));
        let (cur, f) = self.current_cas(&mut t, hash, key, now);
        let Some((loc, cas)) = cur else {
            drop(t);
            self.release_found(f);
            return None;
        };
        Some((t, loc, cas))
    }

    /// Takes the stripe lock again for replacing `old` by the chunk `loc`
    /// allocated without it. Returns the guard when `old` is still the live
    /// item with the CAS it had; otherwise frees `loc` (and what the look
    /// found dead) after dropping the lock, and the caller starts over.
    fn relock_unchanged(
        &self,
        hash: u64,
        key: &[u8],
        now: RelTime,
        old: (u32, u64),
        loc: u32,
    ) -> Option<MutexGuard<'_, HashTable<u32>>> {
        let mut t = lock(self.index.stripe(hash));
        let (cur, f) = self.current_cas(&mut t, hash, key, now);
        if cur == Some(old) {
            return Some(t);
        }
        drop(t);
        self.release_found(f);
        self.release(loc, None);
        None
    }

    fn class_for(&self, klen: usize, vlen: usize, flags: u32) -> Option<u8> {
        if vlen > u32::MAX as usize {
            return None;
        }
        self.slabs.class_for(item_size(klen, vlen, flags))
    }

    /// append/prepend: a new item with the old flags and deadline.
    fn concat(
        &self,
        mode: StoreMode,
        key: &[u8],
        data: &[u8],
        cas: u64,
        now: RelTime,
    ) -> StoreOutcome {
        let hash = self.index.hash(key);
        loop {
            let Some((t, old, old_cas)) = self.lock_live(hash, key, now) else {
                return self
                    .check(mode, cas, None)
                    .err()
                    .unwrap_or(StoreOutcome::NotStored);
            };
            if let Err(o) = self.check(mode, cas, Some(old_cas)) {
                return o;
            }
            let oit = self.slabs.item(old);
            // SAFETY: live item under its stripe lock.
            let (olen, oflags) = unsafe { (oit.vlen(), oit.flags()) };
            let oexp = oit.exptime().load(Ordering::Relaxed);
            drop(t);
            let Some(id) = self.class_for(key.len(), olen + data.len(), oflags) else {
                return StoreOutcome::TooLarge;
            };
            let Some(loc) = self.alloc(id, hash, now) else {
                return StoreOutcome::OutOfMemory;
            };
            let Some(mut t) = self.relock_unchanged(hash, key, now, (old, old_cas), loc) else {
                continue;
            };
            let it = self.slabs.item(loc);
            // SAFETY: we own `loc`, sized for the sum; `old` is live under
            // the stripe lock we hold, and the two chunks are distinct.
            unsafe {
                let v = it.init(key, olen + data.len(), oflags, oexp, now, 0);
                let ov = oit.value();
                if mode == StoreMode::Append {
                    v[..olen].copy_from_slice(ov);
                    v[olen..].copy_from_slice(data);
                } else {
                    v[..data.len()].copy_from_slice(data);
                    v[data.len()..].copy_from_slice(ov);
                }
            }
            let new_cas = self.link(&mut t, hash, loc, Some(old));
            drop(t);
            self.release(old, None);
            return StoreOutcome::Stored {
                cas: self.reported(new_cas),
            };
        }
    }

    /// Removes a key; a non-zero `cas` must match.
    pub fn delete(&self, key: &[u8], cas: u64, now: RelTime) -> DeleteOutcome {
        let hash = self.index.hash(key);
        let Some((mut t, loc, old_cas)) = self.lock_live(hash, key, now) else {
            return DeleteOutcome::NotFound;
        };
        if cas != 0 && self.reported(old_cas) != cas {
            return DeleteOutcome::Exists;
        }
        if let Ok(e) = t.find_entry(hash, |&l| l == loc) {
            e.remove();
        }
        self.unlinked(loc);
        drop(t);
        self.release(loc, None);
        DeleteOutcome::Deleted
    }

    /// incr/decr. When the key is absent and `create` is given, stores the
    /// initial value with that deadline (binary protocol semantics).
    ///
    /// Like memcached, a result no longer than the stored value is written in
    /// place and padded with spaces to the old length ("100" decr 95 reads
    /// back as "5  "); a longer one makes a new item.
    pub fn arith(
        &self,
        key: &[u8],
        op: ArithOp,
        delta: u64,
        create: Option<(u64, RelTime)>,
        cas: u64,
        now: RelTime,
    ) -> ArithOutcome {
        if key.is_empty() || key.len() > KEY_MAX_LENGTH {
            return ArithOutcome::NotFound;
        }
        let hash = self.index.hash(key);
        let mut buf = [0u8; 20];
        loop {
            let Some((t, old, old_cas)) = self.lock_live(hash, key, now) else {
                let Some((initial, exptime)) = create else {
                    return ArithOutcome::NotFound;
                };
                let digits = arith::format_u64(initial, &mut buf);
                match self.store(StoreMode::Add, key, 0, exptime, digits, 0, now) {
                    StoreOutcome::Stored { cas } => {
                        return ArithOutcome::Value {
                            value: initial,
                            cas,
                        }
                    }
                    StoreOutcome::NotStored => continue,
                    _ => return ArithOutcome::OutOfMemory,
                }
            };
            let it = self.slabs.item(old);
            // memcached rejects an empty value before it looks at the CAS.
            // SAFETY (this and the reads and in-place write below): live
            // item under its stripe lock.
            if unsafe { it.vlen() } == 0 {
                return ArithOutcome::NonNumeric;
            }
            if cas != 0 && self.reported(old_cas) != cas {
                return ArithOutcome::Exists;
            }
            // SAFETY: as above.
            let Some(cur) = arith::parse_u64(unsafe { it.value() }) else {
                return ArithOutcome::NonNumeric;
            };
            let value = match op {
                ArithOp::Incr => cur.wrapping_add(delta),
                ArithOp::Decr => cur.saturating_sub(delta),
            };
            let digits = arith::format_u64(value, &mut buf);
            it.bump_freq();
            // SAFETY: as above.
            let (olen, oflags) = unsafe { (it.vlen(), it.flags()) };
            if digits.len() <= olen {
                // SAFETY: as above; in-place updates happen only under the
                // stripe lock, which every reader of the value holds.
                let v = unsafe { it.value_mut() };
                v[..digits.len()].copy_from_slice(digits);
                v[digits.len()..].fill(b' ');
                let new_cas = self.next_cas();
                // SAFETY: as above.
                unsafe { it.set_cas(new_cas) };
                it.time().store(now, Ordering::Relaxed);
                return ArithOutcome::Value {
                    value,
                    cas: self.reported(new_cas),
                };
            }
            let oexp = it.exptime().load(Ordering::Relaxed);
            drop(t);
            let Some(id) = self.class_for(key.len(), digits.len(), oflags) else {
                return ArithOutcome::OutOfMemory;
            };
            let Some(loc) = self.alloc(id, hash, now) else {
                return ArithOutcome::OutOfMemory;
            };
            let Some(mut t) = self.relock_unchanged(hash, key, now, (old, old_cas), loc) else {
                continue;
            };
            let nit = self.slabs.item(loc);
            // SAFETY: we own `loc`, sized for the digits.
            unsafe { nit.init(key, digits.len(), oflags, oexp, now, 0) }.copy_from_slice(digits);
            nit.access().store(1, Ordering::Relaxed);
            let new_cas = self.link(&mut t, hash, loc, Some(old));
            drop(t);
            self.release(old, None);
            return ArithOutcome::Value {
                value,
                cas: self.reported(new_cas),
            };
        }
    }

    /// Sets a new deadline; false when the key is absent.
    pub fn touch(&self, key: &[u8], exptime: RelTime, now: RelTime) -> bool {
        let hash = self.index.hash(key);
        let mut t = lock(self.index.stripe(hash));
        match self.find(&mut t, hash, key, now) {
            Found::Live(loc) => {
                let it = self.slabs.item(loc);
                it.exptime().store(exptime, Ordering::Relaxed);
                it.mark_access();
                it.time().store(now, Ordering::Relaxed);
                true
            }
            f => {
                drop(t);
                self.release_found(f);
                false
            }
        }
    }

    /// Invalidates every item stored before `at` once `at` is reached
    /// (`at <= now` means at once, including items stored earlier this second).
    ///
    /// An immediate flush records the CAS counter, which orders stores
    /// within a second, and the time, which also covers items carrying a
    /// client-chosen CAS (meta `E`) above the counter unless they were
    /// written or read this second (as in memcached); a delayed one records
    /// the time.
    pub fn flush_all(&self, at: RelTime, now: RelTime) {
        // A delayed flush that has taken effect keeps its items invalid
        // when this one replaces it.
        let passed = self.flush_at.load(Ordering::Acquire);
        if passed != 0 && passed <= now {
            self.flush_done.fetch_max(passed, Ordering::AcqRel);
        }
        if at <= now {
            self.flush_cas
                .store(self.cas.load(Ordering::Acquire), Ordering::Release);
            self.flush_done.fetch_max(now, Ordering::AcqRel);
            self.flush_at.store(0, Ordering::Release);
        } else {
            self.flush_at.store(at, Ordering::Release);
        }
        self.flush_epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Whether the crawler runs (and `lru_crawler metadump` is served).
    pub fn crawler_enabled(&self) -> bool {
        self.crawler_on.load(Ordering::Relaxed)
    }

    /// `lru_crawler enable|disable`: starts or stops the crawler.
    pub fn set_crawler(&self, on: bool) {
        self.crawler_on.store(on, Ordering::Relaxed);
    }

    /// The page mover's policy: 0 off, 1 conservative, 2 eager.
    pub fn automove(&self) -> u8 {
        self.automove.load(Ordering::Relaxed)
    }

    /// `slabs automove`: changes the page mover's policy at run time.
    pub fn set_automove(&self, policy: u8) {
        self.automove.store(policy.min(2), Ordering::Relaxed);
    }

    /// `slabs reassign`: moves one page from class `from` to class `to`,
    /// evicting the items on it. `from` -1 picks the class with the most
    /// pages; 0 is memcached's pool of free pages, which we do not keep (it
    /// is always empty here), and it cannot be a destination.
    pub fn reassign(&self, from: i64, to: i64, now: RelTime) -> Reassign {
        if !self.config.slab_reassign {
            return Reassign::Disabled;
        }
        if from == to {
            return Reassign::Same;
        }
        let classes = 1..=self.slabs.classes.len() as i64;
        let pages = |id: i64| self.slabs.class(id as u8).npages.load(Ordering::Relaxed);
        let from = match from {
            -1 => classes
                .clone()
                .filter(|&id| id != to && pages(id) > 1)
                .max_by_key(|&id| pages(id))
                .unwrap_or(-1),
            id => id,
        };
        if !classes.contains(&to) || !(from == 0 || classes.contains(&from)) {
            return Reassign::BadClass;
        }
        // memcached leaves a class its last page.
        if from == 0 || pages(from) < 2 {
            return Reassign::NoSpare;
        }
        if self.move_page(from as u8, to as u8, now, true) {
            Reassign::Moved
        } else {
            Reassign::Busy
        }
    }

    /// Changes the memory limit at run time (`cache_memlimit`). Lowering it
    /// stops page allocation; pages already in use stay, as in memcached.
    pub fn set_mem_limit(&self, bytes: usize) {
        self.slabs.set_limit(bytes);
    }

    /// Whole-cache counters.
    pub fn stats(&self) -> CacheStats {
        let mut s = CacheStats {
            total_items: self.total_items.load(Ordering::Relaxed),
            limit_maxbytes: self.slabs.limit_bytes(),
            total_malloced: (self.slabs.pages_allocated() * self.slabs.page_size) as u64,
            slabs_moved: self.slabs_moved.load(Ordering::Relaxed),
            ..CacheStats::default()
        };
        for c in self.slabs.classes.iter() {
            s.curr_items += c.items.load(Ordering::Relaxed);
            s.bytes += c.requested.load(Ordering::Relaxed);
            let g = lock(&c.inner);
            let k = &g.counters;
            s.evictions += k.evicted;
            s.reclaimed += k.reclaimed;
            s.expired_unfetched += k.expired_unfetched;
            s.evicted_unfetched += k.evicted_unfetched;
            s.crawler_reclaimed += k.crawler_reclaimed;
        }
        let (bytes, buckets) = self.index.footprint();
        s.hash_bytes = bytes;
        s.hash_power_level = 63 - buckets.max(1).leading_zeros();
        s
    }

    /// Per-class counters, for classes that hold at least one page.
    pub fn class_stats(&self, now: RelTime) -> Vec<ClassStats> {
        let mut out = Vec::new();
        for (i, c) in self.slabs.classes.iter().enumerate() {
            let g = lock(&c.inner);
            if g.pages.is_empty() {
                continue;
            }
            let total = g.pages.len() as u64 * c.per_page as u64;
            let k = &g.counters;
            let items = c.items.load(Ordering::Relaxed);
            let oldest = c.oldest_time.load(Ordering::Relaxed);
            out.push(ClassStats {
                id: i as u32 + 1,
                chunk_size: c.size as u64,
                chunks_per_page: c.per_page as u64,
                total_pages: g.pages.len() as u64,
                total_chunks: total,
                used_chunks: total - g.free_count,
                free_chunks: g.free_count,
                items,
                age: if items == 0 || oldest == 0 {
                    0
                } else {
                    now.saturating_sub(oldest) as u64
                },
                evicted: k.evicted,
                evicted_nonzero: k.evicted_nonzero,
                evicted_time: k.evicted_time,
                evicted_unfetched: k.evicted_unfetched,
                expired_unfetched: k.expired_unfetched,
                outofmemory: k.outofmemory,
                reclaimed: k.reclaimed,
                mem_requested: c.requested.load(Ordering::Relaxed),
            });
        }
        out
    }

    /// Zeroes the resettable counters (`stats reset`).
    pub fn reset_stats(&self) {
        self.total_items.store(0, Ordering::Relaxed);
        self.slabs_moved.store(0, Ordering::Relaxed);
        for c in self.slabs.classes.iter() {
            lock(&c.inner).counters = Default::default();
        }
    }
}

#[cfg(test)]
mod tests;
