//! Background expiry: walks every class's pages a slice at a time and frees
//! expired items, and flushed ones while a flush has not been fully swept.
//!
//! Each `maintain` call does a bounded amount of work and holds a class lock
//! only for one small batch of chunks at a time, so it never stalls stores
//! for long. Items whose stripe is busy are left for the next pass.

use std::sync::atomic::Ordering;
use std::sync::TryLockError;

use super::evict::Take;
use super::index::lock;
use super::item::LINKED;
use super::{Cache, RelTime};

/// Chunks examined per `maintain` call.
const BUDGET: usize = 16 * 1024;
/// Chunks examined per class-lock hold.
const BATCH: u32 = 256;
/// Seconds an item stays expired before the crawler frees it. Until then a
/// reader finds it and counts it in `get_expired`/`expired_unfetched`, as
/// with memcached's slower-paced crawler; the memory is not lost meanwhile,
/// since reads and eviction reclaim expired items on their own.
const CRAWL_GRACE: RelTime = 2;

/// Where the crawler is in its pass.
#[derive(Debug, Default)]
pub(crate) struct Crawler {
    started: bool,
    class: usize,
    page: usize,
    idx: u32,
    /// Flush epoch at the start of this pass, and whether the pass looks
    /// for flushed items.
    pass_epoch: u64,
    pass_flush: bool,
    /// Latest flush epoch a full pass has swept.
    cleaned_epoch: u64,
    /// Oldest access time seen in the current class.
    min_time: u32,
}

impl Cache {
    /// One step of background work: reclaim expired items and move pages
    /// between classes. Returns true when more work is pending.
    pub fn maintain(&self, now: RelTime) -> bool {
        if !self.crawler_enabled() {
            return false;
        }
        let mut cr = match self.crawler.try_lock() {
            Ok(g) => g,
            Err(TryLockError::Poisoned(e)) => e.into_inner(),
            Err(TryLockError::WouldBlock) => return false,
        };
        if !cr.started {
            let epoch = self.flush_epoch.load(Ordering::Acquire);
            let at = self.flush_at.load(Ordering::Acquire);
            cr.started = true;
            cr.class = 0;
            cr.page = 0;
            cr.idx = 0;
            cr.min_time = u32::MAX;
            cr.pass_epoch = epoch;
            cr.pass_flush = cr.cleaned_epoch != epoch && (at == 0 || now >= at);
        }
        let slabs = &self.slabs;
        let mut budget = BUDGET;
        let mut found = false;
        loop {
            if cr.class >= slabs.classes.len() {
                if cr.pass_flush {
                    cr.cleaned_epoch = cr.pass_epoch;
                }
                cr.started = false;
                return false;
            }
            if budget == 0 {
                return found || cr.pass_flush;
            }
            let id = cr.class as u8 + 1;
            let class = slabs.class(id);
            let mut g = lock(&class.inner);
            if cr.page >= g.pages.len() {
                let oldest = if cr.min_time == u32::MAX {
                    0
                } else {
                    cr.min_time
                };
                class.oldest_time.store(oldest, Ordering::Relaxed);
                // The small FIFO holds everything while a class fills, then
                // shrinks to ~10 %; give the difference back.
                let len = g.small.len();
                if g.small.capacity() > 2 * len + 4096 {
                    g.small.shrink_to(len + len / 4 + 1024);
                }
                cr.class += 1;
                cr.page = 0;
                cr.idx = 0;
                cr.min_time = u32::MAX;
                continue;
            }
            let page = g.pages[cr.page];
            let end = (cr.idx + BATCH).min(class.per_page);
            for i in cr.idx..end {
                let loc = slabs.loc(page, i);
                let it = slabs.item(loc);
                if it.life() != LINKED {
                    continue;
                }
                let exp = it.exptime().load(Ordering::Relaxed);
                if ((exp != 0 && exp.saturating_add(CRAWL_GRACE) <= now) || cr.pass_flush)
                    && self.take(&mut g, loc, now, Take::Crawl).is_some()
                {
                    slabs.push_free(&mut g, loc);
                    found = true;
                    continue;
                }
                cr.min_time = cr.min_time.min(it.time().load(Ordering::Relaxed));
            }
            budget = budget.saturating_sub((end - cr.idx) as usize);
            cr.idx = end;
            if end >= class.per_page {
                cr.page += 1;
                cr.idx = 0;
            }
        }
    }
}
