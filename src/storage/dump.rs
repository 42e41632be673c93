//! Listing the keys of one size class (`stats cachedump`), for operator
//! tools such as libmemcached's `memcdump`.
//!
//! The walk holds the class lock, so the class's pages cannot move and keys
//! of linked chunks cannot change; each item's length and deadline are read
//! under its stripe lock, taken with `try_lock` only (a busy item is left
//! out, as the crawler does), which keeps the lock order class → stripe.

use std::sync::atomic::Ordering;
use std::sync::TryLockError;

use super::index::lock;
use super::item::LINKED;
use super::{Cache, RelTime};

/// memcached's largest class number (`MAX_NUMBER_OF_SLAB_CLASSES` less one).
const MEMCACHED_MAX_CLASS_ID: usize = 63;

/// One listed item.
#[derive(Clone, Copy, Debug)]
pub struct DumpedItem<'a> {
    pub key: &'a [u8],
    pub value_len: usize,
    /// Relative deadline, 0 = never.
    pub exptime: RelTime,
}

impl Cache {
    /// Whether `id` is a class number to accept: what memcached accepts (0
    /// up to its class limit, even for classes that hold nothing), and every
    /// class that exists here (there are more of them, see `slabs`).
    pub fn is_class_id(&self, id: u32) -> bool {
        (id as usize) <= MEMCACHED_MAX_CLASS_ID.max(self.slabs.classes.len())
    }

    /// Calls `f` for up to `limit` live items of class `id` (0 = no limit),
    /// in chunk order, until `f` returns false. Returns how many were listed.
    pub fn dump_class(
        &self,
        id: u32,
        limit: usize,
        now: RelTime,
        mut f: impl FnMut(DumpedItem<'_>) -> bool,
    ) -> usize {
        let slabs = &self.slabs;
        if id == 0 || id as usize > slabs.classes.len() {
            return 0;
        }
        let class = slabs.class(id as u8);
        let g = lock(&class.inner);
        let mut listed = 0;
        for &page in g.pages.iter() {
            for i in 0..class.per_page {
                if limit != 0 && listed >= limit {
                    return listed;
                }
                let it = slabs.item(slabs.loc(page, i));
                if it.life() != LINKED {
                    continue;
                }
                // SAFETY: LINKED, and keys are only rewritten after their
                // chunk passes through this class's free list, which needs
                // the class lock held here.
                let key = unsafe { it.key() };
                let stripe = self.index.stripe(self.index.hash(key));
                let _t = match stripe.try_lock() {
                    Ok(t) => t,
                    Err(TryLockError::Poisoned(e)) => e.into_inner(),
                    Err(TryLockError::WouldBlock) => continue,
                };
                if it.life() != LINKED || self.dead(it, now).is_some() {
                    continue;
                }
                listed += 1;
                let more = f(DumpedItem {
                    key,
                    // SAFETY: the stripe lock is held.
                    value_len: unsafe { it.vlen() },
                    exptime: it.exptime().load(Ordering::Relaxed),
                });
                if !more {
                    return listed;
                }
            }
        }
        listed
    }
}
