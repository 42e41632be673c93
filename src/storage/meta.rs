//! What the meta protocol needs from the store beyond the classic verbs:
//! stale marks, the one-winner recache token, explicit CAS values, value
//! removal that keeps the item, and a debug view.
//!
//! Two bits of the item's `state` byte carry the meta state (`STALE` and
//! `WIN_SENT` in `item`); a fresh write clears both, so a recache that
//! replaces a stale item ends the stale period. Every change here happens
//! under the key's stripe lock, like the classic verbs.

use std::sync::atomic::Ordering;

use super::index::lock;
use super::item::{FETCHED, KEY_BINARY, STALE, WIN_SENT};
use super::{
    ArithOp, ArithOutcome, Cache, Dead, DeleteOutcome, Found, ItemRef, Lookup, StoreMode,
    StoreOutcome,
};
use crate::clock::RelTime;

/// Modifiers of a meta lookup (`mg`).
#[derive(Clone, Copy, Debug, Default)]
pub struct MetaGetOpts {
    /// New deadline (`T`), applied on a hit.
    pub touch: Option<RelTime>,
    /// On a miss, create an empty item with this deadline and hand the
    /// caller the win (`N`).
    pub vivify: Option<RelTime>,
    /// Hand out the win when the item's deadline comes before this one
    /// (`R`) and no win was handed out yet.
    pub recache: Option<RelTime>,
    /// `T` comes before `R` on the line, so `R` judges the new deadline
    /// (memcached applies the flags in order).
    pub recache_after_touch: bool,
    /// Leave the access bits and last-access time alone (`u`).
    pub no_bump: bool,
    /// CAS value for an item this lookup creates (`E`).
    pub new_cas: Option<u64>,
    /// The key came base64-encoded; an item this lookup creates says so.
    pub binary_key: bool,
}

/// A meta lookup hit, as seen by the reader's callback.
#[derive(Clone, Copy, Debug)]
pub struct MetaView<'a> {
    /// The item after this request's changes (deadline after `T`);
    /// `fetched` and `last_access` are as they were before this access.
    pub item: ItemRef<'a>,
    /// The deadline before `T` was applied (0 for an item just created).
    pub exptime_before: RelTime,
    /// The item is stale (`X`).
    pub stale: bool,
    /// A win had already been handed out before this request (`Z`).
    pub win_sent: bool,
    /// This request won the right to recache (`W`).
    pub won: bool,
    /// The item was created by this request (`N` on a miss).
    pub created: bool,
    /// The item was stored through a base64 key.
    pub binary_key: bool,
}

/// Extras of a meta store (`ms`).
#[derive(Clone, Copy, Debug, Default)]
pub struct MetaStoreOpts {
    /// `I`: a compare CAS older than the item's still stores, and the new
    /// item is marked stale.
    pub invalidate: bool,
    /// `E`: the CAS the stored item gets instead of a fresh one.
    pub new_cas: Option<u64>,
    /// `N`: append/prepend to a missing key creates it with this deadline.
    pub vivify: Option<RelTime>,
    /// The key came base64-encoded (`b`); `k` replies re-encode it.
    pub binary_key: bool,
}

/// Extras of a meta delete (`md`).
#[derive(Clone, Copy, Debug, Default)]
pub struct MetaDeleteOpts {
    /// `I`: mark stale (new CAS, win token reset) instead of removing.
    pub invalidate: bool,
    /// `T`: new deadline for an invalidated or emptied item.
    pub touch: Option<RelTime>,
    /// `E`: CAS for the changed item.
    pub new_cas: Option<u64>,
    /// `x`: drop the value but keep the item, with these client flags.
    pub remove_value: Option<u32>,
}

/// What a meta arithmetic did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct MetaArith {
    pub outcome: ArithOutcome,
    /// The item did not exist before (it was created if `outcome` is a value).
    pub created: bool,
    /// Deadline before the update (0 when created).
    pub exptime_before: RelTime,
    /// Deadline after the update and `T`.
    pub exptime: RelTime,
}

/// An item's internals for `me`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DebugInfo {
    pub exptime: RelTime,
    pub last_access: RelTime,
    pub cas: u64,
    pub fetched: bool,
    /// Size class, numbered from 1.
    pub class: u8,
    /// Bytes the item uses in its chunk.
    pub size: usize,
    /// Stored through a base64 key.
    pub binary_key: bool,
}

impl Cache {
    /// Meta lookup: like [`Cache::get`], plus the stale/recache protocol and
    /// vivify-on-miss. `read` runs under the key's stripe lock.
    pub fn meta_get<R>(
        &self,
        key: &[u8],
        now: RelTime,
        opts: &MetaGetOpts,
        read: impl FnOnce(MetaView<'_>) -> R,
    ) -> Lookup<R> {
        let hash = self.index.hash(key);
        let stripe = self.index.stripe(hash);
        // A chunk allocated for vivifying, written but not linked yet.
        let mut fresh: Option<u32> = None;
        loop {
            let mut t = lock(stripe);
            match self.find(&mut t, hash, key, now) {
                Found::Live(loc) => {
                    let it = self.slabs.item(loc);
                    let st = it.state().load(Ordering::Relaxed);
                    let stale = st & STALE != 0;
                    let win_sent = st & WIN_SENT != 0;
                    let exptime_before = it.exptime().load(Ordering::Relaxed);
                    let judged = match opts.touch {
                        Some(exp) if opts.recache_after_touch => exp,
                        _ => exptime_before,
                    };
                    let recache_due = opts.recache.is_some_and(|r| judged != 0 && judged < r);
                    let won = !win_sent && (stale || recache_due);
                    if won {
                        it.state().fetch_or(WIN_SENT, Ordering::Relaxed);
                    }
                    if let Some(exp) = opts.touch {
                        it.exptime().store(exp, Ordering::Relaxed);
                    }
                    let last_access = it.time().load(Ordering::Relaxed);
                    let fetched = if opts.no_bump {
                        it.access().load(Ordering::Relaxed) & FETCHED != 0
                    } else {
                        it.mark_access()
                    };
                    // SAFETY: LINKED item under its stripe lock; the slices
                    // do not outlive `read`, which runs before the lock drops.
                    let r = unsafe {
                        read(MetaView {
                            item: self.item_ref(it, last_access, fetched),
                            exptime_before,
                            stale,
                            win_sent,
                            won,
                            created: false,
                            binary_key: st & KEY_BINARY != 0,
                        })
                    };
                    if !opts.no_bump && last_access != now {
                        it.time().store(now, Ordering::Relaxed);
                    }
                    drop(t);
                    if let Some(loc) = fresh {
                        self.release(loc, None);
                    }
                    return Lookup::Hit(r);
                }
                f => {
                    let miss = match f {
                        Found::Dead(_, Dead::Expired, _) => Lookup::Expired,
                        Found::Dead(_, Dead::Flushed, _) => Lookup::Flushed,
                        _ => Lookup::Miss,
                    };
                    let Some(exp) = opts.vivify else {
                        drop(t);
                        self.release_found(f);
                        return miss;
                    };
                    if let Some(loc) = fresh {
                        let cas = self.link(&mut t, hash, loc, None);
                        let it = self.slabs.item(loc);
                        let bits = if opts.binary_key {
                            WIN_SENT | KEY_BINARY
                        } else {
                            WIN_SENT
                        };
                        it.state().fetch_or(bits, Ordering::Relaxed);
                        let cas = match opts.new_cas {
                            Some(c) => {
                                // SAFETY: linked under the stripe lock we hold.
                                unsafe { it.set_cas(c) };
                                c
                            }
                            None => cas,
                        };
                        let r = read(MetaView {
                            item: ItemRef {
                                key,
                                value: &[],
                                flags: 0,
                                cas: self.reported(cas),
                                exptime: exp,
                                last_access: now,
                                fetched: false,
                            },
                            exptime_before: 0,
                            stale: false,
                            win_sent: false,
                            won: true,
                            created: true,
                            binary_key: opts.binary_key,
                        });
                        drop(t);
                        self.release_found(f);
                        return Lookup::Hit(r);
                    }
                    drop(t);
                    self.release_found(f);
                    let Some(id) = self.class_for(key.len(), 0, 0) else {
                        return miss;
                    };
                    let Some(loc) = self.alloc(id, hash, now) else {
                        return miss;
                    };
                    // SAFETY: `alloc` handed us the chunk OWNED and sized.
                    unsafe { self.slabs.item(loc).init(key, 0, 0, exp, now, 0) };
                    fresh = Some(loc);
                }
            }
        }
    }

    /// Meta store: [`Cache::store`] plus `I`, `E` and `N` (see
    /// [`MetaStoreOpts`]).
    #[allow(clippy::too_many_arguments)]
    pub fn meta_store(
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
        if key.is_empty() || key.len() > super::KEY_MAX_LENGTH {
            return StoreOutcome::NotStored;
        }
        if matches!(mode, StoreMode::Append | StoreMode::Prepend) {
            loop {
                let out = match self.concat(mode, key, value, cas, now) {
                    // Nothing to append to is "not stored", CAS or not.
                    StoreOutcome::NotFound => StoreOutcome::NotStored,
                    o => o,
                };
                let out = match (out, opts.vivify) {
                    (StoreOutcome::NotStored, Some(exp)) if cas == 0 => {
                        let plain = MetaStoreOpts {
                            vivify: None,
                            ..*opts
                        };
                        match self.meta_store(
                            StoreMode::Add,
                            key,
                            flags,
                            exp,
                            value,
                            0,
                            now,
                            &plain,
                        ) {
                            // Created meanwhile: append to it after all.
                            StoreOutcome::NotStored => continue,
                            o => return o,
                        }
                    }
                    (o, _) => o,
                };
                return match (out, opts.new_cas) {
                    (StoreOutcome::Stored { cas: got }, Some(new)) => {
                        self.replace_cas(key, got, new, now);
                        StoreOutcome::Stored {
                            cas: self.reported(new),
                        }
                    }
                    (o, _) => o,
                };
            }
        }
        self.store_whole(mode, key, flags, exptime, value, cas, now, opts)
    }

    /// [`Cache::check`] with `I`: a compare CAS older than the item's
    /// passes and asks for the new item to be stale (`Ok(true)`).
    pub(super) fn meta_check(
        &self,
        mode: StoreMode,
        cas: u64,
        cur: Option<u64>,
        opts: &MetaStoreOpts,
    ) -> Result<bool, StoreOutcome> {
        if let (true, Some(c)) = (opts.invalidate && cas != 0, cur) {
            if cas < self.reported(c) {
                return Ok(true);
            }
        }
        self.check(mode, cas, cur).map(|()| false)
    }

    /// Gives a live item the CAS `new` if its CAS is still `expect`.
    fn replace_cas(&self, key: &[u8], expect: u64, new: u64, now: RelTime) {
        let hash = self.index.hash(key);
        let mut t = lock(self.index.stripe(hash));
        if let Found::Live(loc) = self.find(&mut t, hash, key, now) {
            let it = self.slabs.item(loc);
            // SAFETY: live item under its stripe lock.
            unsafe {
                if self.reported(it.cas()) == expect {
                    it.set_cas(new);
                }
            }
        }
    }

    /// Meta delete: removes, invalidates (`I`) or empties (`x`) an item. A
    /// non-zero `cas` must match.
    pub fn meta_delete(
        &self,
        key: &[u8],
        cas: u64,
        now: RelTime,
        opts: &MetaDeleteOpts,
    ) -> DeleteOutcome {
        if let Some(flags) = opts.remove_value {
            return self.meta_empty(key, cas, flags, now, opts);
        }
        if !opts.invalidate {
            return self.delete(key, cas, now);
        }
        let hash = self.index.hash(key);
        let Some((t, loc, old_cas)) = self.lock_live(hash, key, now) else {
            return DeleteOutcome::NotFound;
        };
        if cas != 0 && self.reported(old_cas) != cas {
            return DeleteOutcome::Exists;
        }
        self.mark_stale(self.slabs.item(loc), opts);
        drop(t);
        DeleteOutcome::Deleted
    }

    /// Invalidation: stale, a fresh CAS, the win up for grabs again.
    /// The caller holds the item's stripe lock.
    fn mark_stale(&self, it: super::item::Item, opts: &MetaDeleteOpts) {
        let cas = opts.new_cas.unwrap_or_else(|| self.next_cas());
        // SAFETY: the caller holds the stripe lock.
        unsafe { it.set_cas(cas) };
        let _ = it
            .state()
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |s| {
                Some((s | STALE) & !WIN_SENT)
            });
        if let Some(exp) = opts.touch {
            it.exptime().store(exp, Ordering::Relaxed);
        }
    }

    /// `md … x`: replaces the item by an empty one with the same deadline.
    fn meta_empty(
        &self,
        key: &[u8],
        cas: u64,
        flags: u32,
        now: RelTime,
        opts: &MetaDeleteOpts,
    ) -> DeleteOutcome {
        let hash = self.index.hash(key);
        loop {
            let Some((t, old, old_cas)) = self.lock_live(hash, key, now) else {
                return DeleteOutcome::NotFound;
            };
            if cas != 0 && self.reported(old_cas) != cas {
                return DeleteOutcome::Exists;
            }
            let oexp = self.slabs.item(old).exptime().load(Ordering::Relaxed);
            drop(t);
            let Some(id) = self.class_for(key.len(), 0, flags) else {
                return DeleteOutcome::NotFound;
            };
            let Some(loc) = self.alloc(id, hash, now) else {
                // No room for the empty item: removing it is the next best.
                return self.delete(key, cas, now);
            };
            let it = self.slabs.item(loc);
            // SAFETY: `alloc` handed us the chunk OWNED and sized.
            unsafe { it.init(key, 0, flags, opts.touch.unwrap_or(oexp), now, 0) };
            let Some(mut t) = self.relock_unchanged(hash, key, now, (old, old_cas), loc) else {
                continue;
            };
            self.link(&mut t, hash, loc, Some(old));
            if opts.invalidate {
                self.mark_stale(it, opts);
            } else if let Some(c) = opts.new_cas {
                // SAFETY: linked under the stripe lock we hold.
                unsafe { it.set_cas(c) };
            }
            drop(t);
            self.release(old, None);
            return DeleteOutcome::Deleted;
        }
    }

    /// Meta arithmetic: [`Cache::arith`], then the new deadline (`T`) and
    /// CAS (`E`).
    ///
    /// The follow-up runs under a second stripe lock and only if the item
    /// still carries the CAS the update gave it, so a concurrent writer wins
    /// over our `T`/`E` rather than the other way round. Whether the update
    /// created the item is judged from a look just before it; a racing
    /// creator can only make a `t` report differ, never the stored value.
    #[allow(clippy::too_many_arguments)]
    pub fn meta_arith(
        &self,
        key: &[u8],
        op: ArithOp,
        delta: u64,
        create: Option<(u64, RelTime)>,
        cas: u64,
        now: RelTime,
        touch: Option<RelTime>,
        new_cas: Option<u64>,
    ) -> MetaArith {
        let hash = self.index.hash(key);
        let before = {
            let mut t = lock(self.index.stripe(hash));
            match self.find(&mut t, hash, key, now) {
                Found::Live(loc) => Some(self.slabs.item(loc).exptime().load(Ordering::Relaxed)),
                f => {
                    drop(t);
                    self.release_found(f);
                    None
                }
            }
        };
        let out = self.arith(key, op, delta, create, cas, now);
        let mut result = MetaArith {
            outcome: out,
            created: before.is_none(),
            exptime_before: before.unwrap_or(0),
            exptime: create.map_or(0, |c| c.1),
        };
        let ArithOutcome::Value { value, cas: got } = out else {
            return result;
        };
        let mut t = lock(self.index.stripe(hash));
        if let Found::Live(loc) = self.find(&mut t, hash, key, now) {
            let it = self.slabs.item(loc);
            // SAFETY: live item under its stripe lock.
            if self.reported(unsafe { it.cas() }) == got {
                if let Some(exp) = touch {
                    it.exptime().store(exp, Ordering::Relaxed);
                }
                if let Some(c) = new_cas {
                    // SAFETY: as above.
                    unsafe { it.set_cas(c) };
                    result.outcome = ArithOutcome::Value {
                        value,
                        cas: self.reported(c),
                    };
                }
                result.exptime = it.exptime().load(Ordering::Relaxed);
            }
        }
        result
    }

    /// An item's internals without counting as an access (`me`).
    pub fn debug(&self, key: &[u8], now: RelTime) -> Option<DebugInfo> {
        let hash = self.index.hash(key);
        let mut t = lock(self.index.stripe(hash));
        match self.find(&mut t, hash, key, now) {
            Found::Live(loc) => {
                let it = self.slabs.item(loc);
                // SAFETY: live item under its stripe lock.
                let (cas, size) = unsafe { (it.cas(), it.size()) };
                Some(DebugInfo {
                    exptime: it.exptime().load(Ordering::Relaxed),
                    last_access: it.time().load(Ordering::Relaxed),
                    cas: self.reported(cas),
                    fetched: it.access().load(Ordering::Relaxed) & FETCHED != 0,
                    class: self.slabs.class_of(loc),
                    size,
                    binary_key: it.state().load(Ordering::Relaxed) & KEY_BINARY != 0,
                })
            }
            f => {
                drop(t);
                self.release_found(f);
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::CacheConfig;

    fn cache() -> Cache {
        Cache::new(CacheConfig {
            mem_limit: 4 << 20,
            ..CacheConfig::default()
        })
    }

    fn view(c: &Cache, key: &[u8], now: RelTime, o: &MetaGetOpts) -> Option<(bool, bool, bool)> {
        match c.meta_get(key, now, o, |v| (v.stale, v.win_sent, v.won)) {
            Lookup::Hit(r) => Some(r),
            _ => None,
        }
    }

    #[test]
    fn invalidate_hands_out_one_win() {
        let c = cache();
        let o = MetaGetOpts::default();
        c.store(StoreMode::Set, b"k", 0, 0, b"v", 0, 10);
        let inv = MetaDeleteOpts {
            invalidate: true,
            ..Default::default()
        };
        assert_eq!(c.meta_delete(b"k", 0, 10, &inv), DeleteOutcome::Deleted);
        assert_eq!(view(&c, b"k", 10, &o), Some((true, false, true)));
        assert_eq!(view(&c, b"k", 10, &o), Some((true, true, false)));
        // A fresh write ends the stale period.
        let r = c.store(StoreMode::Set, b"k", 0, 0, b"v2", 0, 10);
        assert!(matches!(r, StoreOutcome::Stored { .. }), "{r:?}");
        assert_eq!(view(&c, b"k", 10, &o), Some((false, false, false)));
    }

    #[test]
    fn vivify_creates_once() {
        let c = cache();
        let o = MetaGetOpts {
            vivify: Some(100),
            ..Default::default()
        };
        let created = |c: &Cache| match c.meta_get(b"v", 10, &o, |v| (v.created, v.won)) {
            Lookup::Hit(r) => r,
            _ => panic!("vivify must hit"),
        };
        assert_eq!(created(&c), (true, true));
        assert_eq!(created(&c), (false, false));
    }

    #[test]
    fn recache_below_threshold() {
        let c = cache();
        c.store(StoreMode::Set, b"r", 0, 50, b"v", 0, 10);
        let far = MetaGetOpts {
            recache: Some(40),
            ..Default::default()
        };
        assert_eq!(view(&c, b"r", 10, &far), Some((false, false, false)));
        let near = MetaGetOpts {
            recache: Some(60),
            ..Default::default()
        };
        assert_eq!(view(&c, b"r", 10, &near), Some((false, false, true)));
        assert_eq!(view(&c, b"r", 10, &near), Some((false, true, false)));
    }

    #[test]
    fn store_invalidate_with_older_cas_marks_stale() {
        let c = cache();
        c.store(StoreMode::Set, b"s", 0, 0, b"v", 0, 10);
        let StoreOutcome::Stored { cas } = c.store(StoreMode::Set, b"s", 0, 0, b"v", 0, 10) else {
            panic!()
        };
        let inv = MetaStoreOpts {
            invalidate: true,
            ..Default::default()
        };
        let r = c.meta_store(StoreMode::Set, b"s", 0, 0, b"w", cas - 1, 10, &inv);
        assert!(matches!(r, StoreOutcome::Stored { .. }));
        assert_eq!(
            view(&c, b"s", 10, &MetaGetOpts::default()),
            Some((true, false, true))
        );
        let r = c.meta_store(StoreMode::Set, b"s", 0, 0, b"w", u64::MAX, 10, &inv);
        assert_eq!(r, StoreOutcome::Exists);
    }

    #[test]
    fn explicit_cas_and_empty_value() {
        let c = cache();
        let e = MetaStoreOpts {
            new_cas: Some(777),
            ..Default::default()
        };
        let r = c.meta_store(StoreMode::Set, b"e", 3, 0, b"abc", 0, 10, &e);
        assert_eq!(r, StoreOutcome::Stored { cas: 777 });
        let x = MetaDeleteOpts {
            remove_value: Some(0),
            ..Default::default()
        };
        assert_eq!(c.meta_delete(b"e", 777, 10, &x), DeleteOutcome::Deleted);
        let got = c.get(b"e", 10, None, |i| (i.value.len(), i.flags));
        assert_eq!(got, Lookup::Hit((0, 0)));
        let d = c.debug(b"e", 10).unwrap();
        assert!(d.fetched);
    }

    #[test]
    fn append_vivifies() {
        let c = cache();
        let n = MetaStoreOpts {
            vivify: Some(0),
            ..Default::default()
        };
        let r = c.meta_store(StoreMode::Append, b"a", 0, 0, b"x", 0, 10, &n);
        assert!(matches!(r, StoreOutcome::Stored { .. }));
        c.meta_store(StoreMode::Append, b"a", 0, 0, b"y", 0, 10, &n);
        assert_eq!(
            c.get(b"a", 10, None, |i| i.value.to_vec()),
            Lookup::Hit(b"xy".to_vec())
        );
    }
}
