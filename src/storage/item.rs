//! The item header and its in-chunk layout.
//!
//! An item lives in one chunk of a page. Its header is 23 bytes with no
//! padding (memcached's is 56 with CAS), followed by the optional client
//! flags, the key and the value:
//!
//! ```text
//! offset  size  field
//!      0     8  cas        CAS unique; also the logical store time
//!      8     4  exptime    atomic; relative deadline, 0 = never
//!     12     4  time       atomic; relative time of the last access
//!     16     4  vlen       value length
//!     20     1  klen       key length (1..=250)
//!     21     1  state      atomic; life (free/owned/linked), SMALL, HAS_FLAGS
//!     22     1  access     atomic; 2-bit frequency + FETCHED
//!     23    0|4 flags      present only when non-zero (HAS_FLAGS)
//!      …        key, value
//! ```
//!
//! There are no queue links or hash chain pointers: eviction walks the
//! chunks of a class in address order (CLOCK) plus a small ring of chunk
//! ids, and the index holds 4-byte locations. A free chunk reuses the `cas`
//! bytes for the free-list link.
//!
//! Which fields may be touched when is the job of the lock rules in
//! `mod.rs`; the atomics exist for the few fields that are read without the
//! key's stripe lock (by the evictor and crawler) or written on read hits.

use std::sync::atomic::{AtomicU32, AtomicU8, Ordering};

/// Bytes of fixed header before flags, key and value.
pub(crate) const HEADER: usize = 23;

const OFF_CAS: usize = 0;
const OFF_EXPTIME: usize = 8;
const OFF_TIME: usize = 12;
const OFF_VLEN: usize = 16;
const OFF_KLEN: usize = 20;
const OFF_STATE: usize = 21;
const OFF_ACCESS: usize = 22;

/// Life-cycle part of `state`.
pub(crate) const LIFE_MASK: u8 = 0b11;
/// In the class free list.
pub(crate) const FREE: u8 = 0;
/// Held by one thread: being written before linking, or unlinked and about
/// to be freed or reused.
pub(crate) const OWNED: u8 = 1;
/// Reachable from the index.
pub(crate) const LINKED: u8 = 2;
/// Still in the small (probationary) FIFO.
pub(crate) const SMALL: u8 = 4;
/// Four bytes of client flags follow the header.
pub(crate) const HAS_FLAGS: u8 = 8;
/// Meta protocol: invalidated (`md … I`, `ms … I`); readers see `X`.
pub(crate) const STALE: u8 = 16;
/// Meta protocol: a client already won the right to recache (`W`); later
/// readers see `Z` until the item is replaced.
pub(crate) const WIN_SENT: u8 = 32;
/// Meta protocol: stored through a base64 key (`b`), so `k` echoes it
/// base64-encoded.
pub(crate) const KEY_BINARY: u8 = 64;

/// Frequency part of `access` (saturates at 3).
pub(crate) const FREQ_MASK: u8 = 0b11;
/// The item was read at least once since it was stored.
pub(crate) const FETCHED: u8 = 4;

/// Bytes an item needs in a chunk.
#[inline]
pub(crate) fn item_size(klen: usize, vlen: usize, flags: u32) -> usize {
    HEADER + if flags != 0 { 4 } else { 0 } + klen + vlen
}

/// A raw handle on one chunk. Copyable and lifetime-free: the memory lives
/// as long as the cache (pages are never returned to the allocator), and
/// whether a field may be read or written depends on the lock rules, which
/// is why the non-atomic accessors are `unsafe`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Item(*mut u8);

impl Item {
    /// # Safety
    /// `ptr` must point at the start of a chunk inside a live page, aligned
    /// to 8, with at least `HEADER` bytes.
    #[inline]
    pub(crate) unsafe fn from_ptr(ptr: *mut u8) -> Item {
        Item(ptr)
    }

    #[inline]
    fn atomic_u32(self, off: usize) -> &'static AtomicU32 {
        // SAFETY: chunk starts are 8-aligned and `off` is a multiple of 4, so
        // the address is aligned for AtomicU32; the page outlives every Item
        // (pages are freed only when the cache drops, and no Item escapes
        // it). The 'static lifetime never leaves this module's callers,
        // which all hold `&Cache`.
        unsafe { &*(self.0.add(off) as *const AtomicU32) }
    }

    #[inline]
    fn atomic_u8(self, off: usize) -> &'static AtomicU8 {
        // SAFETY: as in `atomic_u32`; a byte needs no alignment.
        unsafe { &*(self.0.add(off) as *const AtomicU8) }
    }

    #[inline]
    pub(crate) fn state(self) -> &'static AtomicU8 {
        self.atomic_u8(OFF_STATE)
    }

    #[inline]
    pub(crate) fn life(self) -> u8 {
        self.state().load(Ordering::Acquire) & LIFE_MASK
    }

    /// Moves between life states keeping the other state bits.
    #[inline]
    pub(crate) fn set_life(self, life: u8) {
        let _ = self
            .state()
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |s| {
                Some((s & !LIFE_MASK) | life)
            });
    }

    #[inline]
    pub(crate) fn access(self) -> &'static AtomicU8 {
        self.atomic_u8(OFF_ACCESS)
    }

    #[inline]
    pub(crate) fn exptime(self) -> &'static AtomicU32 {
        self.atomic_u32(OFF_EXPTIME)
    }

    #[inline]
    pub(crate) fn time(self) -> &'static AtomicU32 {
        self.atomic_u32(OFF_TIME)
    }

    /// Records a read: bumps the frequency and sets FETCHED. Racy updates
    /// may lose an increment, which only blurs the eviction hint.
    #[inline]
    pub(crate) fn mark_access(self) -> bool {
        let a = self.access().load(Ordering::Relaxed);
        let freq = (a & FREQ_MASK).saturating_add(1).min(FREQ_MASK);
        let new = (a & !FREQ_MASK) | freq | FETCHED;
        if new != a {
            self.access().store(new, Ordering::Relaxed);
        }
        a & FETCHED != 0
    }

    /// Records a write that counts for eviction but is not a read (incr/decr):
    /// memcached leaves the "fetched" mark, which `mg … h` reports, alone.
    #[inline]
    pub(crate) fn bump_freq(self) {
        let a = self.access().load(Ordering::Relaxed);
        let freq = (a & FREQ_MASK).saturating_add(1).min(FREQ_MASK);
        self.access()
            .store((a & !FREQ_MASK) | freq, Ordering::Relaxed);
    }

    /// # Safety
    /// The caller holds the key's stripe lock or owns the chunk.
    #[inline]
    pub(crate) unsafe fn cas(self) -> u64 {
        (self.0.add(OFF_CAS) as *const u64).read()
    }

    /// # Safety
    /// The caller holds the key's stripe lock or owns the chunk.
    #[inline]
    pub(crate) unsafe fn set_cas(self, cas: u64) {
        (self.0.add(OFF_CAS) as *mut u64).write(cas)
    }

    /// Free-list link, stored where the CAS lives in a used chunk.
    ///
    /// # Safety
    /// The chunk is FREE and the caller holds its class lock.
    #[inline]
    pub(crate) unsafe fn next_free(self) -> u32 {
        (self.0.add(OFF_CAS) as *const u32).read()
    }

    /// # Safety
    /// As for [`Item::next_free`].
    #[inline]
    pub(crate) unsafe fn set_next_free(self, next: u32) {
        (self.0.add(OFF_CAS) as *mut u32).write(next)
    }

    /// # Safety
    /// The chunk is LINKED or OWNED and nobody rewrites it: the caller holds
    /// the stripe lock, owns the chunk, or holds the class lock (a key is
    /// only rewritten after the chunk went through the free list).
    #[inline]
    pub(crate) unsafe fn klen(self) -> usize {
        *self.0.add(OFF_KLEN) as usize
    }

    /// # Safety
    /// As for [`Item::klen`].
    #[inline]
    pub(crate) unsafe fn vlen(self) -> usize {
        (self.0.add(OFF_VLEN) as *const u32).read() as usize
    }

    #[inline]
    fn flags_len(self) -> usize {
        if self.state().load(Ordering::Relaxed) & HAS_FLAGS != 0 {
            4
        } else {
            0
        }
    }

    /// # Safety
    /// As for [`Item::klen`].
    #[inline]
    pub(crate) unsafe fn flags(self) -> u32 {
        if self.flags_len() == 4 {
            (self.0.add(HEADER) as *const u32).read_unaligned()
        } else {
            0
        }
    }

    /// # Safety
    /// As for [`Item::klen`]; the slice must not outlive the lock or
    /// ownership that justified it.
    #[inline]
    pub(crate) unsafe fn key<'a>(self) -> &'a [u8] {
        std::slice::from_raw_parts(self.0.add(HEADER + self.flags_len()), self.klen())
    }

    /// # Safety
    /// The caller holds the key's stripe lock or owns the chunk; the slice
    /// must not outlive that.
    #[inline]
    pub(crate) unsafe fn value<'a>(self) -> &'a [u8] {
        std::slice::from_raw_parts(
            self.0.add(HEADER + self.flags_len() + self.klen()),
            self.vlen(),
        )
    }

    /// # Safety
    /// The caller holds the key's stripe lock (in-place arithmetic) or owns
    /// the chunk.
    #[inline]
    pub(crate) unsafe fn value_mut<'a>(self) -> &'a mut [u8] {
        std::slice::from_raw_parts_mut(
            self.0.add(HEADER + self.flags_len() + self.klen()),
            self.vlen(),
        )
    }

    /// Replaces the flags value and the value length of an item whose
    /// flags' presence does not change (so the key stays where it is).
    ///
    /// # Safety
    /// The caller holds the key's stripe lock, `(flags != 0)` matches the
    /// item's HAS_FLAGS, and the chunk has room for the new length.
    #[inline]
    pub(crate) unsafe fn set_flags_and_len(self, flags: u32, vlen: usize) {
        if flags != 0 {
            (self.0.add(HEADER) as *mut u32).write_unaligned(flags);
        }
        (self.0.add(OFF_VLEN) as *mut u32).write(vlen as u32);
    }

    /// Total bytes used in the chunk.
    ///
    /// # Safety
    /// As for [`Item::klen`].
    #[inline]
    pub(crate) unsafe fn size(self) -> usize {
        HEADER + self.flags_len() + self.klen() + self.vlen()
    }

    /// Forgets the meta protocol marks: a new value is neither stale nor
    /// promised to a recacher.
    #[inline]
    pub(crate) fn clear_meta(self) {
        self.state()
            .fetch_and(!(STALE | WIN_SENT | KEY_BINARY), Ordering::Relaxed);
    }

    /// Writes a fresh item. Leaves the life state (OWNED) and SMALL bit as
    /// they are, clears the meta marks and sets HAS_FLAGS as needed. Returns the value area for the
    /// caller to fill.
    ///
    /// # Safety
    /// The caller owns the chunk (state OWNED, not linked) and the chunk is
    /// at least `item_size(key.len(), vlen, flags)` bytes.
    #[allow(clippy::too_many_arguments)]
    pub(crate) unsafe fn init<'a>(
        self,
        key: &[u8],
        vlen: usize,
        flags: u32,
        exptime: u32,
        now: u32,
        cas: u64,
    ) -> &'a mut [u8] {
        self.set_cas(cas);
        self.exptime().store(exptime, Ordering::Relaxed);
        self.time().store(now, Ordering::Relaxed);
        (self.0.add(OFF_VLEN) as *mut u32).write(vlen as u32);
        *self.0.add(OFF_KLEN) = key.len() as u8;
        self.access().store(0, Ordering::Relaxed);
        self.clear_meta();
        let mut off = HEADER;
        if flags != 0 {
            self.state().fetch_or(HAS_FLAGS, Ordering::Relaxed);
            (self.0.add(HEADER) as *mut u32).write_unaligned(flags);
            off += 4;
        } else {
            self.state().fetch_and(!HAS_FLAGS, Ordering::Relaxed);
        }
        std::ptr::copy_nonoverlapping(key.as_ptr(), self.0.add(off), key.len());
        std::slice::from_raw_parts_mut(self.0.add(off + key.len()), vlen)
    }
}
