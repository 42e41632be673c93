//! Listing keys for operator tools: one size class (`stats cachedump`, for
//! libmemcached's `memcdump`) or every page (`lru_crawler metadump`, for
//! memcached-tool's `dump` and `keys`).
//!
//! A walk holds the class lock of the page it is in, so that page cannot
//! move and keys of linked chunks cannot change; each item's details are
//! read under its stripe lock, taken with `try_lock` only (a busy item is
//! left out, as the crawler does), which keeps the lock order class →
//! stripe.

use std::sync::atomic::Ordering;
use std::sync::TryLockError;

use super::index::lock;
use super::item::{Item, FETCHED, LINKED};
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

/// One item as `lru_crawler metadump` lists it.
#[derive(Clone, Copy, Debug)]
pub struct CrawledItem<'a> {
    pub key: &'a [u8],
    /// Relative deadline, 0 = never.
    pub exptime: RelTime,
    pub last_access: RelTime,
    pub cas: u64,
    pub fetched: bool,
    pub class: u8,
    /// The item's bytes: header, key, flags and value.
    pub size: usize,
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
                let listed_one = self.with_live(it, now, |key| {
                    f(DumpedItem {
                        key,
                        // SAFETY: `with_live` holds the stripe lock.
                        value_len: unsafe { it.vlen() },
                        exptime: it.exptime().load(Ordering::Relaxed),
                    })
                });
                let Some(more) = listed_one else {
                    continue;
                };
                listed += 1;
                if !more {
                    return listed;
                }
            }
        }
        listed
    }

    /// Walks every page in page order from chunk `from` on (0: the start),
    /// calling `f` for each live item of a class that `wanted` accepts,
    /// until `f` returns false. Returns the chunk to go on from then, or
    /// `None` when the walk is complete. Only the current page's class is
    /// locked, so pages may move between a pause and its resumption: a
    /// resumed walk can miss or repeat the items of a page that moved, as
    /// memcached's crawler can.
    pub fn metadump(
        &self,
        wanted: impl Fn(u8) -> bool,
        from: u32,
        now: RelTime,
        mut f: impl FnMut(CrawledItem<'_>) -> bool,
    ) -> Option<u32> {
        let slabs = &self.slabs;
        let pages = slabs.pages_allocated() as u32;
        let mut start = slabs.idx_of(from);
        for page in slabs.page_of(from)..pages {
            let first = slabs.loc(page, 0);
            let id = slabs.class_of(first);
            if id != 0 && wanted(id) {
                let class = slabs.class(id);
                let _g = lock(&class.inner);
                // The page may have moved before we held its class lock.
                if slabs.class_of(first) == id {
                    for i in start..class.per_page {
                        let it = slabs.item(slabs.loc(page, i));
                        let more = self.with_live(it, now, |key| {
                            f(CrawledItem {
                                key,
                                exptime: it.exptime().load(Ordering::Relaxed),
                                last_access: it.time().load(Ordering::Relaxed),
                                // SAFETY: `with_live` holds the stripe lock.
                                cas: self.reported(unsafe { it.cas() }),
                                fetched: it.access().load(Ordering::Relaxed) & FETCHED != 0,
                                class: id,
                                // SAFETY: as above.
                                size: unsafe { it.size() },
                            })
                        });
                        if more == Some(false) {
                            return Some(if i + 1 < class.per_page {
                                slabs.loc(page, i + 1)
                            } else {
                                slabs.loc(page + 1, 0)
                            });
                        }
                    }
                }
            }
            start = 0;
        }
        None
    }

    /// Calls `f` with the key of `it` while holding its stripe lock, if the
    /// lock is free and the item is live (linked, not expired or flushed).
    /// The caller holds the lock of the class `it`'s page belongs to.
    fn with_live<R>(&self, it: Item, now: RelTime, f: impl FnOnce(&[u8]) -> R) -> Option<R> {
        if it.life() != LINKED {
            return None;
        }
        // SAFETY: LINKED, and keys are only rewritten after their chunk
        // passes through its class's free list, which needs the class lock
        // the caller holds.
        let key = unsafe { it.key() };
        let stripe = self.index.stripe(self.index.hash(key));
        let _t = match stripe.try_lock() {
            Ok(t) => t,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return None,
        };
        if it.life() != LINKED || self.dead(it, now).is_some() {
            return None;
        }
        Some(f(key))
    }
}
