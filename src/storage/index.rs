//! The hash index: key → chunk location, as striped `hashbrown` tables.
//!
//! Each stripe is a mutex over a table of 4-byte locations (plus hashbrown's
//! one control byte per bucket). The key and its hash are not stored: the
//! key lives in the item, and on a resize the table rehashes by reading the
//! items' keys. That keeps the index at about 5–11 bytes per item, close to
//! memcached's 8-byte bucket pointer while avoiding its 8-byte chain link in
//! every item. The stripe lock also guards the items it points to (see the
//! lock rules in `mod.rs`).

use std::hash::BuildHasher;
use std::sync::{Mutex, MutexGuard};

use hashbrown::HashTable;

/// log2 of the number of stripes: enough that worker threads rarely meet.
const STRIPE_BITS: u32 = 10;

/// One stripe, on its own cache line so neighbours do not false-share.
#[repr(align(64))]
pub(crate) struct Stripe(pub(crate) Mutex<HashTable<u32>>);

pub(crate) struct Index {
    stripes: Box<[Stripe]>,
    hasher: hashbrown::DefaultHashBuilder,
}

/// Acquires a std mutex, ignoring poisoning: every critical section in
/// storage leaves the data consistent before any point that could panic.
#[inline]
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Index {
    /// `max_items` bounds the initial size: a large `-o hashpower` on a
    /// small cache must not reserve more than the cache could ever index.
    pub(crate) fn new(hashpower: u8, max_items: usize) -> Index {
        let n = 1usize << STRIPE_BITS;
        let total = (1usize << hashpower.clamp(10, 32)).min(max_items.next_power_of_two());
        let per = total / n;
        let stripes = (0..n)
            .map(|_| Stripe(Mutex::new(HashTable::with_capacity(per))))
            .collect();
        Index {
            stripes,
            hasher: hashbrown::DefaultHashBuilder::default(),
        }
    }

    #[inline]
    pub(crate) fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    /// The stripe for a hash. Uses middle bits: hashbrown takes the low bits
    /// for the bucket and the top 7 for its control byte.
    #[inline]
    pub(crate) fn stripe(&self, hash: u64) -> &Mutex<HashTable<u32>> {
        let i = (hash >> 40) as usize & (self.stripes.len() - 1);
        &self.stripes[i].0
    }

    pub(crate) fn stripes(&self) -> impl Iterator<Item = &Mutex<HashTable<u32>>> {
        self.stripes.iter().map(|s| &s.0)
    }

    /// (bytes allocated, total buckets) over all stripes.
    pub(crate) fn footprint(&self) -> (u64, u64) {
        let mut bytes = std::mem::size_of_val(&*self.stripes) as u64;
        let mut buckets = 0u64;
        for s in self.stripes() {
            let t = lock(s);
            bytes += t.allocation_size() as u64;
            // Buckets are a power of two at most 8/7 of the capacity.
            buckets += (t.capacity() as u64 * 8 / 7).next_power_of_two();
        }
        (bytes, buckets)
    }
}
