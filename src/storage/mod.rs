//! The item store: a memcached-style slab allocator (pages of `-I` bytes up to
//! `-m`, size classes growing by `-f`), a concurrent hash index, per-class
//! eviction, lazy and background expiry, and page rebalancing between classes.
//!
//! Storage knows nothing of protocols, connections or the wall clock: every
//! call takes the current relative time, and results are plain enums that
//! each codec renders in its own way.

use crate::clock::RelTime;

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

/// The shared cache. `Send + Sync`; every method may be called from any thread.
pub struct Cache {
    _config: CacheConfig,
}

impl Cache {
    /// Creates an empty cache; pages are allocated lazily up to the limit.
    pub fn new(config: CacheConfig) -> Self {
        Cache { _config: config }
    }

    /// Looks a key up and, on a hit, lets `read` see the item. `touch` sets a
    /// new deadline first (gat). A hit marks the item accessed without taking
    /// any global lock.
    pub fn get<R>(
        &self,
        key: &[u8],
        now: RelTime,
        touch: Option<RelTime>,
        read: impl FnOnce(ItemRef<'_>) -> R,
    ) -> Lookup<R> {
        let _ = (key, now, touch, read);
        todo!("storage get")
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
        let _ = (mode, key, flags, exptime, value, cas, now);
        todo!("storage store")
    }

    /// Removes a key; a non-zero `cas` must match.
    pub fn delete(&self, key: &[u8], cas: u64, now: RelTime) -> DeleteOutcome {
        let _ = (key, cas, now);
        todo!("storage delete")
    }

    /// incr/decr. When the key is absent and `create` is given, stores the
    /// initial value with that deadline (binary protocol semantics).
    pub fn arith(
        &self,
        key: &[u8],
        op: ArithOp,
        delta: u64,
        create: Option<(u64, RelTime)>,
        cas: u64,
        now: RelTime,
    ) -> ArithOutcome {
        let _ = (key, op, delta, create, cas, now);
        todo!("storage arith")
    }

    /// Sets a new deadline; false when the key is absent.
    pub fn touch(&self, key: &[u8], exptime: RelTime, now: RelTime) -> bool {
        let _ = (key, exptime, now);
        todo!("storage touch")
    }

    /// Invalidates every item stored before `at` once `at` is reached
    /// (`at <= now` means at once, including items stored earlier this second).
    pub fn flush_all(&self, at: RelTime, now: RelTime) {
        let _ = (at, now);
        todo!("storage flush_all")
    }

    /// Changes the memory limit at run time (`cache_memlimit`).
    pub fn set_mem_limit(&self, bytes: usize) {
        let _ = bytes;
        todo!("storage set_mem_limit")
    }

    /// One step of background work: reclaim expired items and move pages
    /// between classes. Returns true when more work is pending.
    pub fn maintain(&self, now: RelTime) -> bool {
        let _ = now;
        todo!("storage maintain")
    }

    /// Whole-cache counters.
    pub fn stats(&self) -> CacheStats {
        todo!("storage stats")
    }

    /// Per-class counters, for classes that hold at least one page.
    pub fn class_stats(&self, now: RelTime) -> Vec<ClassStats> {
        let _ = now;
        todo!("storage class_stats")
    }

    /// Zeroes the resettable counters (`stats reset`).
    pub fn reset_stats(&self) {
        todo!("storage reset_stats")
    }
}
