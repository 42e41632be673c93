//! Chunk allocation, eviction (S3-FIFO over CLOCK) and page moves.
//!
//! Eviction policy, per class:
//! - New items enter a small FIFO (a ring of chunk ids) unless the ghost
//!   table remembers their key being evicted from it recently, in which case
//!   they go straight to main. While the class fills, everything stays in
//!   the small FIFO; once memory is full it settles at ~10 % of the chunks.
//! - While the small FIFO is at or above its target, eviction takes its
//!   oldest entry: read since it was stored → promoted to main; otherwise
//!   evicted, and its fingerprint goes to the ghost table.
//! - Otherwise main is a CLOCK over the class's chunks in address order with
//!   a 2-bit frequency: the hand decrements and evicts at zero. The evicted
//!   chunk is reused in place, so "behind the hand" is the newest position,
//!   and no per-item queue links are needed.
//!
//! Why: S3-FIFO (Yang et al., SOSP'23) beats LRU and segmented LRU on
//! skewed traffic because one-hit wonders leave after a tenth of the
//! cache's turnover instead of a full one, and it needs no list moves on a
//! hit. A read hit here only sets bits in the item's `access` byte: no queue
//! update, no class lock. Using the chunk array as main's ring (CLOCK) and
//! a 4-byte ring for the small FIFO keeps per-item metadata to a byte.
//!
//! Page moves: when a class must evict but another class's coldest page was
//! last written much longer ago (measured in stores, via the CAS counter, so
//! it works at any clock rate), that page moves over; its items are
//! evicted. A class without pages takes the globally coldest page at once.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{MutexGuard, TryLockError};

use super::index::lock;
use super::item::{FREQ_MASK, LIFE_MASK, LINKED, OWNED, SMALL};
use super::slabs::ClassInner;
use super::{Cache, Dead};

/// Page-move attempts of a class that has no page at all.
const MOVE_TRIES: u32 = 8;

/// Direct-mapped table of 16-bit key fingerprints of items recently
/// evicted from the small FIFO (S3-FIFO's ghost queue, approximated).
pub(crate) struct Ghost {
    slots: Box<[AtomicU16]>,
}

impl Ghost {
    pub(crate) fn new(entries: usize) -> Ghost {
        let n = entries.next_power_of_two().clamp(1024, 1 << 22);
        let v: Box<[u16]> = vec![0u16; n].into_boxed_slice();
        // SAFETY: AtomicU16 has the same layout and bit validity as u16.
        let slots = unsafe { Box::from_raw(Box::into_raw(v) as *mut [AtomicU16]) };
        Ghost { slots }
    }

    #[inline]
    fn slot(&self, hash: u64) -> (&AtomicU16, u16) {
        let i = hash as usize & (self.slots.len() - 1);
        ((&self.slots[i]), ((hash >> 24) as u16) | 1)
    }

    pub(crate) fn insert(&self, hash: u64) {
        let (s, fp) = self.slot(hash);
        s.store(fp, Ordering::Relaxed);
    }

    /// True (and forgets it) when the key was evicted from small recently.
    pub(crate) fn take(&self, hash: u64) -> bool {
        let (s, fp) = self.slot(hash);
        if s.load(Ordering::Relaxed) == fp {
            s.store(0, Ordering::Relaxed);
            true
        } else {
            false
        }
    }
}

/// Why a linked item is being taken out by the class side.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Take {
    /// Make room: counts evictions (or reclaims, when dead).
    Evict,
    /// Crawler: only dead items; skipped otherwise.
    Crawl,
    /// Page move: waits for the stripe, counts nothing as an eviction.
    Move,
}

impl Cache {
    /// Returns an OWNED chunk of class `id` for an item whose key hashes to
    /// `hash`: from the free list, a new page, another class's page, or by
    /// eviction. Must not be called with a stripe lock held.
    pub(super) fn alloc(&self, id: u8, hash: u64, now: u32) -> Option<u32> {
        let slabs = &self.slabs;
        let class = slabs.class(id);
        // A class without pages cannot evict, so it tries harder (and other
        // donors) to get one; pages with in-flight chunks cannot move.
        let mut attempt = 0;
        loop {
            let mut g = lock(&class.inner);
            let loc = match slabs.pop_free(&mut g) {
                Some(loc) => Some(loc),
                None => match slabs.new_page() {
                    Some(page) => {
                        slabs.assign_page(id, &mut g, page, self.cas.load(Ordering::Relaxed));
                        slabs.pop_free(&mut g)
                    }
                    None => None,
                },
            };
            if let Some(loc) = loc {
                self.place(id, &mut g, loc, hash);
                return Some(loc);
            }
            let limit = if g.pages.is_empty() { MOVE_TRIES } else { 1 };
            if attempt < limit {
                if let Some(donor) = self.pick_donor(id, &mut g, attempt) {
                    drop(g);
                    if attempt > 0 {
                        std::thread::yield_now();
                    }
                    attempt += 1;
                    if self.move_page(donor, id, now, false) {
                        attempt = 0;
                    }
                    continue;
                }
            }
            if self.config.evict {
                if let Some(loc) = self.evict_one(id, &mut g, now) {
                    self.place(id, &mut g, loc, hash);
                    return Some(loc);
                }
            }
            g.counters.outofmemory += 1;
            return None;
        }
    }

    /// Puts a newly handed-out chunk in the small FIFO (or main, on a ghost
    /// hit) and stamps its page.
    fn place(&self, id: u8, g: &mut ClassInner, loc: u32, hash: u64) {
        let slabs = &self.slabs;
        let it = slabs.item(loc);
        it.state().store(OWNED, Ordering::Release);
        slabs.stamp_page(loc, self.cas.load(Ordering::Relaxed));
        if self.ghost.take(hash) {
            return;
        }
        it.state().fetch_or(SMALL, Ordering::AcqRel);
        // Until memory is full everything stays in the small FIFO (as in
        // S3-FIFO); stale entries of freed chunks are bounded by this cap.
        let cap = g.pages.len() * slabs.class(id).per_page as usize;
        while g.small.len() >= cap.max(1) {
            match g.small.pop_front() {
                Some(old) if slabs.in_class(old, id) => {
                    slabs.item(old).state().fetch_and(!SMALL, Ordering::AcqRel);
                }
                Some(_) => {}
                None => break,
            }
        }
        g.small.push_back(loc);
    }

    /// Chooses a class to give class `id` a page, if rebalancing is on and
    /// one is much colder than `id`'s own coldest memory.
    fn pick_donor(&self, id: u8, g: &mut MutexGuard<'_, ClassInner>, skip: u32) -> Option<u8> {
        // With -M the user asked for errors rather than lost items, and a
        // page move evicts.
        let automove = self.automove();
        if !self.config.slab_reassign || automove == 0 || !self.config.evict {
            return None;
        }
        let slabs = &self.slabs;
        let mine = g.pages.len();
        if mine >= 4 {
            // Looking costs a read of every class; do it now and then.
            g.since_rebalance += 1;
            if g.since_rebalance < 16 {
                return None;
            }
        }
        g.since_rebalance = 0;
        let now = self.cas.load(Ordering::Relaxed);
        let age =
            |c: &super::slabs::Class| now.saturating_sub(c.cold_stamp.load(Ordering::Relaxed));
        // Donors by decreasing age, on the stack.
        let mut cands = [(0u64, 0u8); super::slabs::MAX_CLASSES];
        let mut n = 0;
        for (i, c) in slabs.classes.iter().enumerate() {
            if i + 1 != id as usize && c.npages.load(Ordering::Relaxed) > 0 && n < cands.len() {
                cands[n] = (age(c), i as u8 + 1);
                n += 1;
            }
        }
        if n == 0 {
            return None;
        }
        let cands = &mut cands[..n];
        cands.sort_unstable_by(|a, b| b.cmp(a));
        // The oldest donor, or on a retry the next oldest, cycling.
        let (donor_age, donor) = cands[skip as usize % n];
        let my_age = if mine == 0 {
            u64::MAX
        } else {
            age(slabs.class(id))
        };
        let margin = if automove >= 2 { 1 } else { 2 };
        if mine == 0 || donor_age / margin > my_age {
            Some(donor)
        } else {
            None
        }
    }

    /// Moves the coldest page of `from` to `to`, evicting its items.
    /// Gives up (false) if a chunk in it is held by another thread, or,
    /// unless `forced` (an operator's `slabs reassign`), if most of its
    /// items were read lately.
    pub(super) fn move_page(&self, from: u8, to: u8, now: u32, forced: bool) -> bool {
        let slabs = &self.slabs;
        let src = slabs.class(from);
        let mut g = lock(&src.inner);
        if g.pages.is_empty() {
            return false;
        }
        let n = g.pages.len();
        let per = src.per_page;
        let busy = |page| (0..per).any(|i| slabs.item(slabs.loc(page, i)).life() == OWNED);
        // The coldest page first, then the next few.
        let Some(pi) = (1..=n.min(4))
            .map(|k| (g.hand_page + k) % n)
            .find(|&pi| !busy(g.pages[pi]))
        else {
            return false;
        };
        let page = g.pages[pi];
        // Write stamps do not see reads: a class whose items are read but
        // rarely written looks cold. Sweep the page like a CLOCK pass and
        // keep it while most of its items were read since the last sweep;
        // restamping it makes the next attempt wait for another turnover of
        // the asking class. A class without pages takes the page anyway.
        let (mut linked, mut hot) = (0u32, 0u32);
        for i in 0..per {
            let it = slabs.item(slabs.loc(page, i));
            if it.life() == LINKED {
                linked += 1;
                let a = it.access().load(Ordering::Relaxed);
                if a & FREQ_MASK > 0 {
                    hot += 1;
                    it.access().store(a - 1, Ordering::Relaxed);
                }
            }
        }
        if !forced && hot * 2 > linked && slabs.class(to).npages.load(Ordering::Relaxed) > 0 {
            src.cold_stamp
                .store(self.cas.load(Ordering::Relaxed), Ordering::Relaxed);
            return false;
        }
        let mut taken = Vec::new();
        for i in 0..per {
            let loc = slabs.loc(page, i);
            let ok = match slabs.item(loc).life() {
                LINKED => self.take(&mut g, loc, now, Take::Move).is_some(),
                OWNED => false,
                _ => continue,
            };
            if ok {
                taken.push(loc);
            } else {
                // Someone unlinked it since the busy check and waits for our
                // lock to free it: the page must stay.
                for loc in taken {
                    slabs.push_free(&mut g, loc);
                }
                return false;
            }
        }
        // The taken chunks stay OWNED; they vanish with the page.
        slabs.unassign_page(from, &mut g, pi);
        drop(g);
        let dst = slabs.class(to);
        let mut g = lock(&dst.inner);
        slabs.assign_page(to, &mut g, page, self.cas.load(Ordering::Relaxed));
        drop(g);
        self.slabs_moved.fetch_add(1, Ordering::Relaxed);
        true
    }

    /// Finds and takes a victim in class `id`; the chunk comes back OWNED.
    fn evict_one(&self, id: u8, g: &mut ClassInner, now: u32) -> Option<u32> {
        let slabs = &self.slabs;
        let per = slabs.class(id).per_page;
        let total = g.pages.len() * per as usize;
        if total == 0 {
            return None;
        }
        let target = (total / 10).max(1);
        // Four CLOCK turns clear every frequency; the rest covers the ring.
        let mut budget = total * 5 + g.small.len() + 64;
        while budget > 0 {
            budget -= 1;
            if g.small.len() >= target {
                let Some(loc) = g.small.pop_front() else {
                    continue;
                };
                if !slabs.in_class(loc, id) {
                    continue;
                }
                let it = slabs.item(loc);
                let st = it.state().load(Ordering::Acquire);
                if st & SMALL == 0 {
                    continue;
                }
                match st & LIFE_MASK {
                    LINKED => {
                        if it.access().load(Ordering::Relaxed) & FREQ_MASK == 0 {
                            if let Some(hash) = self.take(g, loc, now, Take::Evict) {
                                self.ghost.insert(hash);
                                return Some(loc);
                            }
                        }
                        it.state().fetch_and(!SMALL, Ordering::AcqRel);
                    }
                    // Still being written: keep its place.
                    OWNED => g.small.push_back(loc),
                    _ => {}
                }
                continue;
            }
            let page = g.pages[g.hand_page];
            let loc = slabs.loc(page, g.hand_idx);
            g.hand_idx += 1;
            if g.hand_idx >= per {
                g.hand_idx = 0;
                g.hand_page = (g.hand_page + 1) % g.pages.len();
                slabs.refresh_cold(id, g);
            }
            let it = slabs.item(loc);
            if it.life() != LINKED {
                continue;
            }
            let a = it.access().load(Ordering::Relaxed);
            if a & FREQ_MASK > 0 {
                it.access().store(a - 1, Ordering::Relaxed);
                continue;
            }
            if self.take(g, loc, now, Take::Evict).is_some() {
                return Some(loc);
            }
        }
        None
    }

    /// Unlinks a LINKED item of class `id` from the class side (class lock
    /// held): finds its stripe from the key, locks it (try-lock except for
    /// page moves), re-checks and removes it from the index. The chunk is
    /// left OWNED by the caller. Returns the key hash.
    pub(super) fn take(&self, g: &mut ClassInner, loc: u32, now: u32, why: Take) -> Option<u64> {
        let slabs = &self.slabs;
        let it = slabs.item(loc);
        // SAFETY: the item was LINKED when the caller looked, and a key is
        // only rewritten after its chunk passes through this class's free
        // list, which needs the class lock we hold.
        let key = unsafe { it.key() };
        let hash = self.index.hash(key);
        let stripe = self.index.stripe(hash);
        let mut t = match why {
            Take::Move => lock(stripe),
            _ => match stripe.try_lock() {
                Ok(t) => t,
                Err(TryLockError::Poisoned(e)) => e.into_inner(),
                Err(TryLockError::WouldBlock) => return None,
            },
        };
        if it.life() != LINKED {
            return None;
        }
        let dead = self.dead(it, now);
        if why == Take::Crawl && dead.is_none() {
            return None;
        }
        let Ok(entry) = t.find_entry(hash, |&l| l == loc) else {
            return None;
        };
        entry.remove();
        self.unlinked(loc);
        drop(t);
        let fetched = it.access().load(Ordering::Relaxed) & super::item::FETCHED != 0;
        let c = &mut g.counters;
        match (dead, why) {
            (Some(_), _) => {
                c.reclaimed += 1;
                if !fetched {
                    c.expired_unfetched += 1;
                }
                if why == Take::Crawl {
                    c.crawler_reclaimed += 1;
                }
            }
            (None, Take::Evict) => {
                c.evicted += 1;
                if it.exptime().load(Ordering::Relaxed) != 0 {
                    c.evicted_nonzero += 1;
                }
                c.evicted_time = now.saturating_sub(it.time().load(Ordering::Relaxed)) as u64;
                if !fetched {
                    c.evicted_unfetched += 1;
                }
            }
            (None, _) => {}
        }
        Some(hash)
    }

    /// Frees an OWNED chunk that was unlinked (or never linked), counting
    /// a lazy reclaim when it died of old age or a flush.
    pub(super) fn release(&self, loc: u32, dead: Option<(Dead, bool)>) {
        let slabs = &self.slabs;
        // An OWNED chunk pins its page (moves skip such pages), so the class
        // cannot change under us; the re-check only guards that rule.
        let (id, mut g) = loop {
            let id = slabs.class_of(loc);
            if id == 0 {
                return;
            }
            let g = lock(&slabs.class(id).inner);
            if slabs.class_of(loc) == id {
                break (id, g);
            }
        };
        let _ = id;
        if let Some((_, fetched)) = dead {
            g.counters.reclaimed += 1;
            if !fetched {
                g.counters.expired_unfetched += 1;
            }
        }
        slabs.push_free(&mut g, loc);
    }
}
