//! Pages, size classes and per-class bookkeeping.
//!
//! Memory is handed out in pages of `item_size_max` bytes, allocated lazily
//! and never returned (like memcached). A page belongs to one size class at
//! a time and is cut into equal chunks. A chunk is named by a 4-byte
//! location `page << shift | index`, which is what the index stores.
//!
//! The page table is sized once for the largest addressable number of pages
//! and zero-filled, so the operating system only backs the part in use.

use std::alloc::{alloc_zeroed, Layout};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::item::{Item, FREE, HEADER, OWNED};

/// No location: end of a free list.
pub(crate) const NO_LOC: u32 = u32::MAX;
/// Fewest pages a cache may use, whatever `-m` says.
pub(crate) const MIN_PAGES: usize = 2;
/// Most size classes. memcached stops at 63; splitting each `-f` step in
/// [`CLASSES_PER_STEP`] needs about twice as many at the default factor.
pub(crate) const MAX_CLASSES: usize = 127;
/// Classes per growth step of `-f`: neighbouring chunk sizes differ by
/// `f^(1/2)` (1.118 at the default 1.25), which halves the rounding waste
/// (at most ~11 %, ~5.5 % on average, instead of ~20 % and ~11 %).
const CLASSES_PER_STEP: f64 = 2.0;
/// Upper bound on page-table slots (a million pages).
const MAX_PAGE_SLOTS: usize = 1 << 20;
/// Page alignment: chunk starts must be 8-aligned for the header atomics.
const PAGE_ALIGN: usize = 8;

/// Per-class counters mutated under the class lock.
#[derive(Clone, Debug, Default)]
pub(crate) struct ClassCounters {
    pub evicted: u64,
    pub evicted_nonzero: u64,
    pub evicted_time: u64,
    pub evicted_unfetched: u64,
    pub expired_unfetched: u64,
    pub outofmemory: u64,
    pub reclaimed: u64,
    pub crawler_reclaimed: u64,
}

/// State of one class, guarded by the class lock.
pub(crate) struct ClassInner {
    /// Pages in CLOCK order.
    pub pages: Vec<u32>,
    /// Intrusive free list through free chunks.
    pub free_head: u32,
    pub free_count: u64,
    /// CLOCK hand: index into `pages` and chunk index within the page.
    pub hand_page: usize,
    pub hand_idx: u32,
    /// S3-FIFO's small FIFO: chunk ids of recently stored items. Entries may
    /// be stale (chunk freed or reused); the SMALL state bit is the truth.
    pub small: VecDeque<u32>,
    /// Evictions since the last look for a page donor.
    pub since_rebalance: u32,
    pub counters: ClassCounters,
}

pub(crate) struct Class {
    /// Chunk size in bytes.
    pub size: usize,
    pub per_page: u32,
    pub inner: Mutex<ClassInner>,
    /// Linked items and their bytes (memcached's `bytes`), updated when the
    /// item is linked or unlinked under its stripe lock.
    pub items: AtomicU64,
    pub requested: AtomicU64,
    pub npages: AtomicUsize,
    /// Write stamp (CAS counter value) of the page the CLOCK hand reaches
    /// next: how long ago, in stores, this class last recycled its coldest
    /// memory. Read without the lock to choose a page donor.
    pub cold_stamp: AtomicU64,
    /// Oldest access time seen by the last crawler pass (for `age`).
    pub oldest_time: AtomicU32,
}

pub(crate) struct Slabs {
    pub page_size: usize,
    shift: u32,
    idx_mask: u32,
    page_ptrs: Box<[AtomicUsize]>,
    /// Class id of each page, 0 while it belongs to none.
    page_class: Box<[AtomicU8]>,
    /// CAS counter when a chunk of the page was last handed out.
    page_stamp: Box<[AtomicU64]>,
    pages_allocated: AtomicUsize,
    page_limit: AtomicUsize,
    /// Index `id - 1`.
    pub classes: Box<[Class]>,
}

// SAFETY: the raw page pointers are only dereferenced under the lock rules
// documented in `mod.rs`; every shared field is atomic or mutex-guarded.
unsafe impl Send for Slabs {}
unsafe impl Sync for Slabs {}

#[inline]
fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// A zero-filled boxed slice of atomics; zeroed memory comes straight from
/// the OS and is not resident until touched.
macro_rules! zeroed_atomics {
    ($atomic:ty, $plain:ty, $n:expr) => {{
        let v: Box<[$plain]> = vec![0 as $plain; $n].into_boxed_slice();
        // SAFETY: the atomic type has the same size, alignment and bit
        // validity as its plain integer (documented for std atomics).
        unsafe { Box::from_raw(Box::into_raw(v) as *mut [$atomic]) }
    }};
}

impl Slabs {
    pub(crate) fn new(
        mem_limit: usize,
        item_size_max: usize,
        growth_factor: f64,
        chunk_size_min: usize,
    ) -> Slabs {
        let page = item_size_max.clamp(1024, 1 << 30);
        let factor = if growth_factor.is_finite() && growth_factor > 1.0 {
            growth_factor
        } else {
            1.25
        }
        .powf(1.0 / CLASSES_PER_STEP);
        let mut sizes = Vec::new();
        let mut s = align8(HEADER + chunk_size_min.min(page / 4));
        while sizes.len() < MAX_CLASSES - 1 && s <= page / 2 {
            sizes.push(s);
            s = align8((s as f64 * factor) as usize).max(s + 8);
        }
        sizes.push(page);
        let max_per_page = (page / sizes[0]) as u32;
        let bits = 32 - max_per_page.leading_zeros();
        let addressable = ((1u64 << (32 - bits)) - 1) as usize;
        let slots = addressable.min(MAX_PAGE_SLOTS);
        let classes = sizes
            .iter()
            .map(|&size| Class {
                size,
                per_page: (page / size) as u32,
                inner: Mutex::new(ClassInner {
                    pages: Vec::new(),
                    free_head: NO_LOC,
                    free_count: 0,
                    hand_page: 0,
                    hand_idx: 0,
                    small: VecDeque::new(),
                    since_rebalance: 0,
                    counters: ClassCounters::default(),
                }),
                items: AtomicU64::new(0),
                requested: AtomicU64::new(0),
                npages: AtomicUsize::new(0),
                cold_stamp: AtomicU64::new(0),
                oldest_time: AtomicU32::new(0),
            })
            .collect();
        let slabs = Slabs {
            page_size: page,
            shift: bits,
            idx_mask: ((1u64 << bits) - 1) as u32,
            page_ptrs: zeroed_atomics!(AtomicUsize, usize, slots),
            page_class: zeroed_atomics!(AtomicU8, u8, slots),
            page_stamp: zeroed_atomics!(AtomicU64, u64, slots),
            pages_allocated: AtomicUsize::new(0),
            page_limit: AtomicUsize::new(0),
            classes,
        };
        slabs.set_limit(mem_limit);
        slabs
    }

    /// Pages allowed for a byte limit.
    pub(crate) fn set_limit(&self, bytes: usize) {
        let pages = (bytes / self.page_size)
            .max(MIN_PAGES)
            .min(self.page_ptrs.len());
        self.page_limit.store(pages, Ordering::Relaxed);
    }

    /// Most chunks the current limit allows (all in the smallest class).
    pub(crate) fn max_chunks(&self) -> usize {
        self.page_limit.load(Ordering::Relaxed) * self.classes[0].per_page as usize
    }

    pub(crate) fn limit_bytes(&self) -> u64 {
        (self.page_limit.load(Ordering::Relaxed) * self.page_size) as u64
    }

    pub(crate) fn pages_allocated(&self) -> usize {
        self.pages_allocated.load(Ordering::Relaxed)
    }

    /// Smallest class whose chunks hold `size` bytes.
    #[inline]
    pub(crate) fn class_for(&self, size: usize) -> Option<u8> {
        let i = self.classes.partition_point(|c| c.size < size);
        (i < self.classes.len()).then_some(i as u8 + 1)
    }

    #[inline]
    pub(crate) fn class(&self, id: u8) -> &Class {
        &self.classes[id as usize - 1]
    }

    #[inline]
    pub(crate) fn loc(&self, page: u32, idx: u32) -> u32 {
        page << self.shift | idx
    }

    #[inline]
    pub(crate) fn page_of(&self, loc: u32) -> u32 {
        loc >> self.shift
    }

    /// A chunk's index within its page.
    #[inline]
    pub(crate) fn idx_of(&self, loc: u32) -> u32 {
        loc & self.idx_mask
    }

    /// The class a chunk's page belongs to now (0: none).
    #[inline]
    pub(crate) fn class_of(&self, loc: u32) -> u8 {
        self.page_class[(loc >> self.shift) as usize].load(Ordering::Acquire)
    }

    /// The chunk at `loc`.
    ///
    /// The caller must know that `loc` names a chunk of a page currently in
    /// the class it believes: it came from the index (under the stripe
    /// lock), from a free list or CLOCK walk (under the class lock), or it
    /// owns the chunk.
    #[inline]
    pub(crate) fn item(&self, loc: u32) -> Item {
        let page = (loc >> self.shift) as usize;
        let idx = (loc & self.idx_mask) as usize;
        let base = self.page_ptrs[page].load(Ordering::Acquire) as *mut u8;
        let class = self.page_class[page].load(Ordering::Acquire);
        let size = self.classes[(class as usize).max(1) - 1].size;
        debug_assert!(!base.is_null() && class != 0, "chunk of an unassigned page");
        // SAFETY: under the caller's contract the page is allocated and
        // assigned to `class`, so `idx < per_page` and the chunk lies inside
        // the page; chunk offsets are multiples of 8 in an 8-aligned page.
        unsafe { Item::from_ptr(base.add(idx * size)) }
    }

    /// Whether `loc` is a chunk of class `id` (for stale ring entries).
    #[inline]
    pub(crate) fn in_class(&self, loc: u32, id: u8) -> bool {
        loc != NO_LOC
            && ((loc >> self.shift) as usize) < self.page_ptrs.len()
            && self.class_of(loc) == id
            && (loc & self.idx_mask) < self.class(id).per_page
    }

    #[inline]
    pub(crate) fn stamp_page(&self, loc: u32, stamp: u64) {
        self.page_stamp[(loc >> self.shift) as usize].store(stamp, Ordering::Relaxed);
    }

    #[inline]
    pub(crate) fn page_stamp(&self, page: u32) -> u64 {
        self.page_stamp[page as usize].load(Ordering::Relaxed)
    }

    /// Allocates a fresh page if the limit allows. Called under a class lock.
    pub(crate) fn new_page(&self) -> Option<u32> {
        let limit = self.page_limit.load(Ordering::Relaxed);
        let id = self
            .pages_allocated
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .ok()?;
        let layout = Layout::from_size_align(self.page_size, PAGE_ALIGN).ok()?;
        // SAFETY: the layout has a non-zero size (at least 1024 bytes).
        let ptr = unsafe { alloc_zeroed(layout) };
        if ptr.is_null() {
            // The slot stays empty and counted; an allocation failure here
            // only makes the cache a page smaller.
            return None;
        }
        self.page_ptrs[id].store(ptr as usize, Ordering::Release);
        Some(id as u32)
    }

    /// Gives a page (fresh, or taken from another class) to class `id`:
    /// every chunk becomes FREE and joins the free list.
    pub(crate) fn assign_page(&self, id: u8, g: &mut ClassInner, page: u32, stamp: u64) {
        let class = self.class(id);
        self.page_class[page as usize].store(id, Ordering::Release);
        self.page_stamp[page as usize].store(stamp, Ordering::Relaxed);
        for i in (0..class.per_page).rev() {
            let loc = self.loc(page, i);
            let it = self.item(loc);
            it.state().store(FREE, Ordering::Release);
            // SAFETY: the chunk is FREE and we hold the class lock (`g`).
            unsafe { it.set_next_free(g.free_head) };
            g.free_head = loc;
        }
        g.free_count += class.per_page as u64;
        g.pages.push(page);
        class.npages.fetch_add(1, Ordering::Relaxed);
        if g.pages.len() == 1 {
            class.cold_stamp.store(stamp, Ordering::Relaxed);
        }
    }

    /// Detaches a page from its class (the caller emptied it of items).
    pub(crate) fn unassign_page(&self, id: u8, g: &mut ClassInner, pi: usize) {
        let page = g.pages.remove(pi);
        // Drop the page's free chunks from the free list.
        let mut head = NO_LOC;
        let mut tail: Option<Item> = None;
        let mut cur = g.free_head;
        let mut kept = 0;
        while cur != NO_LOC {
            let it = self.item(cur);
            // SAFETY: free chunk, class lock held.
            let next = unsafe { it.next_free() };
            if self.page_of(cur) != page {
                match tail {
                    // SAFETY: free chunk, class lock held.
                    Some(t) => unsafe { t.set_next_free(cur) },
                    None => head = cur,
                }
                tail = Some(it);
                kept += 1;
            }
            cur = next;
        }
        if let Some(t) = tail {
            // SAFETY: free chunk, class lock held.
            unsafe { t.set_next_free(NO_LOC) };
        }
        g.free_head = head;
        g.free_count = kept;
        g.small.retain(|&l| (l >> self.shift) != page);
        if g.hand_page > pi {
            g.hand_page -= 1;
        } else if g.hand_page == pi {
            g.hand_idx = 0;
        }
        if g.hand_page >= g.pages.len() {
            g.hand_page = 0;
            g.hand_idx = 0;
        }
        self.page_class[page as usize].store(0, Ordering::Release);
        let class = self.class(id);
        class.npages.fetch_sub(1, Ordering::Relaxed);
        self.refresh_cold(id, g);
    }

    /// Recomputes the class's cold stamp: the page after the hand.
    pub(crate) fn refresh_cold(&self, id: u8, g: &ClassInner) {
        if g.pages.is_empty() {
            return;
        }
        let next = g.pages[(g.hand_page + 1) % g.pages.len()];
        self.class(id)
            .cold_stamp
            .store(self.page_stamp(next), Ordering::Relaxed);
    }

    /// Takes a chunk from the free list; it becomes OWNED.
    pub(crate) fn pop_free(&self, g: &mut ClassInner) -> Option<u32> {
        if g.free_head == NO_LOC {
            return None;
        }
        let loc = g.free_head;
        let it = self.item(loc);
        // SAFETY: free chunk, class lock held.
        g.free_head = unsafe { it.next_free() };
        g.free_count -= 1;
        it.state().store(OWNED, Ordering::Release);
        Some(loc)
    }

    /// Returns an OWNED chunk to the free list.
    pub(crate) fn push_free(&self, g: &mut ClassInner, loc: u32) {
        let it = self.item(loc);
        it.state().store(FREE, Ordering::Release);
        // SAFETY: the chunk is now FREE and the class lock is held.
        unsafe { it.set_next_free(g.free_head) };
        g.free_head = loc;
        g.free_count += 1;
    }
}

impl Drop for Slabs {
    fn drop(&mut self) {
        let n = self.pages_allocated.load(Ordering::Relaxed);
        for slot in &self.page_ptrs[..n] {
            let p = slot.load(Ordering::Relaxed) as *mut u8;
            if !p.is_null() {
                // SAFETY: allocated in `new_page` with this exact layout and
                // never freed elsewhere.
                unsafe {
                    std::alloc::dealloc(
                        p,
                        Layout::from_size_align_unchecked(self.page_size, PAGE_ALIGN),
                    )
                };
            }
        }
    }
}

#[cfg(test)]
impl Slabs {
    /// Walks every class and checks the free lists against the chunk
    /// states. Returns (free, linked) counts over all classes.
    pub(crate) fn check(&self) -> (u64, u64) {
        use super::item::{LIFE_MASK, LINKED};
        let (mut free, mut linked) = (0, 0);
        for (i, c) in self.classes.iter().enumerate() {
            let g = super::index::lock(&c.inner);
            let mut n = 0;
            let mut cur = g.free_head;
            while cur != NO_LOC {
                assert_eq!(self.class_of(cur) as usize, i + 1);
                let it = self.item(cur);
                assert_eq!(it.state().load(Ordering::Relaxed) & LIFE_MASK, FREE);
                n += 1;
                assert!(n <= g.pages.len() * c.per_page as usize, "free list cycle");
                // SAFETY: free chunk, class lock held.
                cur = unsafe { it.next_free() };
            }
            assert_eq!(n as u64, g.free_count, "class {}", i + 1);
            free += n as u64;
            for &p in &g.pages {
                for k in 0..c.per_page {
                    if self.item(self.loc(p, k)).life() == LINKED {
                        linked += 1;
                    }
                }
            }
        }
        (free, linked)
    }
}
