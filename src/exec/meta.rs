//! Execution of the meta commands. The parser already rejected every
//! malformed flag, so this only maps flags onto storage calls and decides
//! which outcomes `q` silences: memcached 1.6.18 hides `EN` for `mg`, `HD`
//! for `ms` and `md`, and both `HD` and `VA` for `ma`; failures and errors
//! always get through.

use super::{refuse_store, Context, Outcome, Sink};
use crate::clock::RelTime;
use crate::protocol::meta::{
    encode_base64, MetaCmd, MetaDebugReply, MetaFlags, MetaItemInfo, MetaKey, MetaReply,
    MetaSetMode, MetaStatus,
};
use crate::protocol::{ClientError, Request, Response, ServerError, KEY_MAX_LENGTH};
use crate::storage::{
    ArithOp, ArithOutcome, DeleteOutcome, Lookup, MetaDeleteOpts, MetaGetOpts, MetaStoreOpts,
    StoreMode, StoreOutcome,
};

/// Executes one meta request (any other request is ignored).
pub(super) fn execute<S: Sink>(request: &Request<'_>, cx: &Context<'_>, out: &mut S) -> Outcome {
    match *request {
        Request::MetaGet { key, ref flags } => get(key, flags, cx, out),
        Request::MetaSet {
            key,
            ref flags,
            value,
        } => set(key, flags, value, cx, out),
        Request::MetaDelete { key, ref flags } => delete(key, flags, cx, out),
        Request::MetaArith { key, ref flags } => arith(key, flags, cx, out),
        Request::MetaDebug { key } => debug(key, cx, out),
        Request::MetaNoop => out.reply(&Response::MetaNoop),
        _ => {}
    }
    Outcome::Done
}

/// A reply without item data.
fn bare<'a>(
    cmd: MetaCmd,
    status: MetaStatus,
    key: MetaKey<'a>,
    flags: &'a MetaFlags<'a>,
) -> MetaReply<'a> {
    MetaReply {
        cmd,
        status,
        flags,
        key,
        item: MetaItemInfo::default(),
        value: &[],
        won: false,
        stale: false,
        win_sent: false,
    }
}

/// The key the store sees (decoded into `buf` if it came in base64) and
/// the key the reply names.
fn keys<'a>(
    key: MetaKey<'a>,
    flags: &MetaFlags<'_>,
    buf: &'a mut [u8; KEY_MAX_LENGTH],
    scratch: &'a mut Vec<u8>,
) -> (&'a [u8], MetaKey<'a>) {
    let k = key.bytes(buf);
    let key = if flags.has(b'k') {
        echoed(key, k, scratch)
    } else {
        key
    };
    (k, key)
}

/// The key as `k` echoes it. memcached re-encodes a base64 key from its
/// decoded bytes, so characters its decoder skipped do not come back.
fn echoed<'a>(key: MetaKey<'a>, decoded: &[u8], scratch: &'a mut Vec<u8>) -> MetaKey<'a> {
    if !key.base64 {
        return key;
    }
    encode_base64(decoded, scratch);
    MetaKey {
        raw: scratch,
        base64: true,
    }
}

/// Seconds left before `exp`, −1 for "never", as `t` reports it. A
/// deadline already passed (`T-1` in the same request) reports 0, where
/// memcached 1.6.18 prints the negative number as an unsigned 32-bit one.
fn ttl_left(exp: RelTime, now: RelTime) -> i64 {
    if exp == 0 {
        -1
    } else {
        (i64::from(exp) - i64::from(now)).max(0)
    }
}

fn get<S: Sink>(key: MetaKey<'_>, flags: &MetaFlags<'_>, cx: &Context<'_>, out: &mut S) {
    let (state, stats) = (cx.state, cx.stats);
    let now = state.clock.now();
    let deadline = |t: i64| state.clock.deadline(t);
    // A created item gets the TTL of whichever of N and T comes last.
    let position = |flag: u8| flags.iter().position(|t| t[0] == flag);
    let vivify = match (flags.vivify(), flags.ttl()) {
        (Some(_), Some(t)) if position(b'T') > position(b'N') => Some(t),
        (n, _) => n,
    };
    let opts = MetaGetOpts {
        touch: flags.ttl().map(deadline),
        vivify: vivify.map(deadline),
        recache: flags.recache().map(deadline),
        recache_after_touch: position(b'T') < position(b'R'),
        no_bump: flags.has(b'u'),
        new_cas: flags.new_cas(),
        binary_key: key.base64,
    };
    let (mut buf, mut scratch) = ([0u8; KEY_MAX_LENGTH], Vec::new());
    let (k, key) = keys(key, flags, &mut buf, &mut scratch);
    let with_value = flags.has(b'v');
    stats.cmd_get.incr();
    if opts.touch.is_some() {
        stats.cmd_touch.incr();
    }
    let found = state.cache.meta_get(k, now, &opts, |v| {
        let before = if v.created {
            -1
        } else {
            ttl_left(v.exptime_before, now)
        };
        let touched = match (v.created, opts.touch) {
            (false, _) => ttl_left(v.item.exptime, now),
            (true, Some(exp)) => ttl_left(exp, now),
            (true, None) => before,
        };
        let item = MetaItemInfo {
            cas: v.item.cas,
            client_flags: v.item.flags,
            size: v.item.value.len(),
            hit_before: v.item.fetched,
            last_access: now.saturating_sub(v.item.last_access),
            ttl: before,
            ttl_touched: touched,
            ttl_vivified: v
                .created
                .then(|| ttl_left(flags.vivify().map_or(0, deadline), now)),
        };
        let status = if with_value {
            MetaStatus::Value
        } else {
            MetaStatus::Stored
        };
        // `k` names the item as stored: base64 again if it was stored so.
        let mut encoded = Vec::new();
        let key = if v.binary_key && flags.has(b'k') {
            encode_base64(v.item.key, &mut encoded);
            MetaKey {
                raw: &encoded,
                base64: true,
            }
        } else {
            MetaKey {
                raw: v.item.key,
                base64: false,
            }
        };
        out.reply(&Response::Meta(&MetaReply {
            item,
            value: if with_value { v.item.value } else { &[] },
            won: v.won,
            stale: v.stale,
            win_sent: v.win_sent,
            ..bare(MetaCmd::Get, status, key, flags)
        }));
    });
    match found {
        Lookup::Hit(()) => {
            stats.get_hits.incr();
            if opts.touch.is_some() {
                stats.touch_hits.incr();
            }
        }
        miss => {
            stats.get_misses.incr();
            if opts.touch.is_some() {
                stats.touch_misses.incr();
            }
            match miss {
                Lookup::Expired => stats.get_expired.incr(),
                Lookup::Flushed => stats.get_flushed.incr(),
                _ => {}
            }
            if !flags.quiet() {
                out.reply(&Response::Meta(&bare(
                    MetaCmd::Get,
                    MetaStatus::Miss,
                    key,
                    flags,
                )));
            }
        }
    }
}

fn set<S: Sink>(
    key: MetaKey<'_>,
    flags: &MetaFlags<'_>,
    value: &[u8],
    cx: &Context<'_>,
    out: &mut S,
) {
    let state = cx.state;
    let now = state.clock.now();
    let mode = match flags.set_mode() {
        MetaSetMode::Set => StoreMode::Set,
        MetaSetMode::Add => StoreMode::Add,
        MetaSetMode::Replace => StoreMode::Replace,
        MetaSetMode::Append => StoreMode::Append,
        MetaSetMode::Prepend => StoreMode::Prepend,
    };
    let opts = MetaStoreOpts {
        invalidate: flags.has(b'I'),
        new_cas: flags.new_cas(),
        vivify: flags.vivify().map(|t| state.clock.deadline(t)),
        binary_key: key.base64,
    };
    let (mut buf, mut scratch) = ([0u8; KEY_MAX_LENGTH], Vec::new());
    let (k, key) = keys(key, flags, &mut buf, &mut scratch);
    cx.stats.cmd_set.incr();
    let exptime = state.clock.deadline(flags.ttl().unwrap_or(0));
    let cas = flags.compare_cas().unwrap_or(0);
    let outcome = state.cache.meta_store(
        mode,
        k,
        flags.client_flags(),
        exptime,
        value,
        cas,
        now,
        &opts,
    );
    let concat = matches!(mode, StoreMode::Append | StoreMode::Prepend);
    let (status, new_cas) = match outcome {
        StoreOutcome::Stored { cas } => (MetaStatus::Stored, cas),
        StoreOutcome::NotStored => (MetaStatus::NotStored, 0),
        StoreOutcome::Exists => {
            cx.stats.cas_badval.incr();
            (MetaStatus::Exists, 0)
        }
        StoreOutcome::NotFound => {
            cx.stats.cas_misses.incr();
            (MetaStatus::NotFound, 0)
        }
        StoreOutcome::TooLarge | StoreOutcome::OutOfMemory if concat => (MetaStatus::NotStored, 0),
        StoreOutcome::TooLarge => {
            out.reply(&refuse_store(mode, k, ServerError::ObjectTooLarge, cx));
            return;
        }
        StoreOutcome::OutOfMemory => {
            out.reply(&refuse_store(mode, k, ServerError::OutOfMemoryStoring, cx));
            return;
        }
    };
    if status == MetaStatus::Stored && flags.quiet() {
        return;
    }
    let item = MetaItemInfo {
        cas: new_cas,
        ..MetaItemInfo::default()
    };
    out.reply(&Response::Meta(&MetaReply {
        item,
        ..bare(MetaCmd::Set, status, key, flags)
    }));
}

fn delete<S: Sink>(key: MetaKey<'_>, flags: &MetaFlags<'_>, cx: &Context<'_>, out: &mut S) {
    let state = cx.state;
    let now = state.clock.now();
    let opts = MetaDeleteOpts {
        invalidate: flags.has(b'I'),
        touch: flags.ttl().map(|t| state.clock.deadline(t)),
        new_cas: flags.new_cas(),
        remove_value: flags.has(b'x').then_some(flags.client_flags()),
    };
    let (mut buf, mut scratch) = ([0u8; KEY_MAX_LENGTH], Vec::new());
    let (k, key) = keys(key, flags, &mut buf, &mut scratch);
    let cas = flags.compare_cas().unwrap_or(0);
    let status = match state.cache.meta_delete(k, cas, now, &opts) {
        DeleteOutcome::Deleted => {
            cx.stats.delete_hits.incr();
            if flags.quiet() {
                return;
            }
            MetaStatus::Stored
        }
        DeleteOutcome::NotFound => {
            cx.stats.delete_misses.incr();
            MetaStatus::NotFound
        }
        DeleteOutcome::Exists => MetaStatus::Exists,
    };
    out.reply(&Response::Meta(&bare(MetaCmd::Delete, status, key, flags)));
}

fn arith<S: Sink>(key: MetaKey<'_>, flags: &MetaFlags<'_>, cx: &Context<'_>, out: &mut S) {
    let (state, stats) = (cx.state, cx.stats);
    let now = state.clock.now();
    let deadline = |t: i64| state.clock.deadline(t);
    let op = if flags.decrement() {
        ArithOp::Decr
    } else {
        ArithOp::Incr
    };
    let (hits, misses) = match op {
        ArithOp::Incr => (&stats.incr_hits, &stats.incr_misses),
        ArithOp::Decr => (&stats.decr_hits, &stats.decr_misses),
    };
    let (mut buf, mut scratch) = ([0u8; KEY_MAX_LENGTH], Vec::new());
    let (k, key) = keys(key, flags, &mut buf, &mut scratch);
    let create = flags.vivify().map(|n| (flags.initial(), deadline(n)));
    let done = state.cache.meta_arith(
        k,
        op,
        flags.delta(),
        create,
        flags.compare_cas().unwrap_or(0),
        now,
        flags.ttl().map(deadline),
        flags.new_cas(),
    );
    let status = match done.outcome {
        ArithOutcome::Value { value, cas } => {
            hits.incr();
            // memcached 1.6.18 still answers when the item was created.
            if flags.quiet() && !done.created {
                return;
            }
            let mut digits = [0u8; 20];
            let text = format_u64(value, &mut digits);
            let with_value = flags.has(b'v');
            let item = MetaItemInfo {
                cas,
                size: text.len(),
                ttl: if done.created {
                    -1
                } else {
                    ttl_left(done.exptime_before, now)
                },
                ttl_touched: ttl_left(done.exptime, now),
                ttl_vivified: done
                    .created
                    .then(|| ttl_left(create.map_or(0, |c| c.1), now)),
                ..MetaItemInfo::default()
            };
            let status = if with_value {
                MetaStatus::Value
            } else {
                MetaStatus::Stored
            };
            out.reply(&Response::Meta(&MetaReply {
                item,
                value: if with_value { text } else { &[] },
                ..bare(MetaCmd::Arith, status, key, flags)
            }));
            return;
        }
        ArithOutcome::NotFound => {
            misses.incr();
            MetaStatus::NotFound
        }
        ArithOutcome::Exists => MetaStatus::Exists,
        ArithOutcome::NonNumeric => {
            out.reply(&Response::ClientError(ClientError::NonNumericValue));
            return;
        }
        ArithOutcome::OutOfMemory => {
            out.reply(&Response::ServerError(ServerError::OutOfMemory));
            return;
        }
    };
    out.reply(&Response::Meta(&bare(MetaCmd::Arith, status, key, flags)));
}

fn debug<S: Sink>(key: MetaKey<'_>, cx: &Context<'_>, out: &mut S) {
    let now = cx.state.clock.now();
    let mut buf = [0u8; KEY_MAX_LENGTH];
    let k = key.bytes(&mut buf);
    match cx.state.cache.debug(k, now) {
        Some(d) => {
            // The item's key, in base64 if it was stored so.
            let mut encoded = Vec::new();
            let shown = if d.binary_key {
                encode_base64(k, &mut encoded);
                &encoded[..]
            } else {
                k
            };
            out.reply(&Response::MetaDebug(&MetaDebugReply {
                key: shown,
                exp: ttl_left(d.exptime, now),
                la: now.saturating_sub(d.last_access),
                cas: d.cas,
                fetched: d.fetched,
                class: d.class,
                size: d.size,
            }));
        }
        None => {
            let flags = MetaFlags::default();
            out.reply(&Response::Meta(&bare(
                MetaCmd::Get,
                MetaStatus::Miss,
                key,
                &flags,
            )));
        }
    }
}

/// Decimal digits of `n`, written at the end of `buf`.
fn format_u64(mut n: u64, buf: &mut [u8; 20]) -> &[u8] {
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            return &buf[i..];
        }
    }
}
