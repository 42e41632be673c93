//! Model-based tests: random sequences of operations from several clients,
//! run both against the real store and against a small reference model of
//! memcached's semantics (a map of key → value, flags, deadline and CAS
//! version, with a clock the test controls).
//!
//! - `storage_matches_model`: ample memory, storage API; every reply and
//!   every read equals the model's, CAS values included (mapped to the
//!   model's versions: the n-th write has a larger CAS than the earlier
//!   ones, and a CAS names one write only).
//! - `storage_under_eviction_never_returns_old_data`: a small memory limit
//!   and values of many sizes, so items are evicted and pages move between
//!   classes. A reply may differ from the model only as if the key had just
//!   been evicted: a read returns the latest write or a miss, a CAS or
//!   compare-and-delete only succeeds with the latest token.
//! - `text_protocol_matches_model`: the classic commands rendered as text,
//!   parsed by the text codec, carried out by `exec` and encoded; the reply
//!   bytes are compared with the model's.
//!
//! Each client remembers the CAS tokens its reads returned and reuses old
//! ones later, so stale compare-and-swaps are frequent. Clock moves cover
//! relative, absolute (over 30 days) and negative exptimes, and immediate
//! and delayed `flush_all`.
//!
//! `PROPTEST_CASES=<n>` runs n cases per test instead of the defaults.

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use proptest::test_runner::Config;

use ferrocache::clock::Clock;
use ferrocache::config::Settings;
use ferrocache::exec::{execute, Context, Outcome, Sink};
use ferrocache::protocol::{text, Limits, Parsed, Response};
use ferrocache::state::ServerState;
use ferrocache::stats::ThreadStats;
use ferrocache::storage::{
    ArithOp, ArithOutcome, Cache, CacheConfig, DeleteOutcome, Lookup, MetaDeleteOpts, MetaGetOpts,
    MetaStoreOpts, StoreMode, StoreOutcome,
};

/// Unix time at which every test clock starts.
const T0: i64 = 1_700_000_000;
const DAY: i64 = 86_400;
/// `Clock::starting_at` puts relative time 62 at its start.
const EPOCH: i64 = T0 - 62;
/// Explicit CAS values (meta `E`) lie far above anything the counter reaches.
const EXPLICIT: u64 = 1 << 40;
/// Tokens at or above this never name an item.
const GARBAGE: u64 = 1 << 50;
/// Clients taking part.
const CLIENTS: usize = 3;
/// Tokens each client remembers per key.
const TOKENS_KEPT: usize = 4;

fn cases(default: u32) -> Config {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default);
    Config {
        cases,
        max_shrink_iters: 4096,
        ..Config::default()
    }
}

// ---------------------------------------------------------------------------
// Operations

/// A client's exptime, relative to the model clock where that matters.
#[derive(Clone, Copy, Debug)]
enum Exp {
    Never,
    /// Seconds from now.
    Rel(i64),
    /// Exactly 30 days: still relative.
    ThirtyDays,
    /// Negative: already expired.
    Neg(i64),
    /// An absolute unix time this many seconds from now (may be past).
    Abs(i64),
}

impl Exp {
    fn resolve(self, now: i64) -> i64 {
        match self {
            Exp::Never => 0,
            Exp::Rel(s) => s,
            Exp::ThirtyDays => 30 * DAY,
            Exp::Neg(s) => -s,
            Exp::Abs(d) => now + d,
        }
    }
}

/// A value: literal bytes, or `len` bytes generated from `seed`.
#[derive(Clone, Debug)]
enum Val {
    Lit(Vec<u8>),
    Gen { len: usize, seed: u32 },
}

impl Val {
    fn bytes(&self) -> Vec<u8> {
        match self {
            Val::Lit(v) => v.clone(),
            Val::Gen { len, seed } => {
                let mut x = (*seed as u64) | 1 << 32;
                (0..*len)
                    .map(|_| {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        b'a' + (x % 26) as u8
                    })
                    .collect()
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Set,
    Add,
    Replace,
    Append,
    Prepend,
    Cas,
}

impl Mode {
    fn storage(self) -> StoreMode {
        match self {
            Mode::Set => StoreMode::Set,
            Mode::Add => StoreMode::Add,
            Mode::Replace => StoreMode::Replace,
            Mode::Append => StoreMode::Append,
            Mode::Prepend => StoreMode::Prepend,
            Mode::Cas => StoreMode::Cas,
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Mode::Set => "set",
            Mode::Add => "add",
            Mode::Replace => "replace",
            Mode::Append => "append",
            Mode::Prepend => "prepend",
            Mode::Cas => "cas",
        }
    }
}

/// Which remembered token a client uses: 0 is its latest for the key,
/// higher ones are older; past the end (or with none) a token no item has.
type TokPick = u8;

#[derive(Clone, Debug)]
enum Op {
    /// A storage command; `tok` is the compare CAS (always for `Cas`; for
    /// the other modes only at the storage level, binary semantics).
    Store {
        c: usize,
        mode: Mode,
        key: u8,
        flags: u32,
        exp: Exp,
        val: Val,
        tok: Option<TokPick>,
        noreply: bool,
    },
    /// get/gets, or gat/gats with `touch`.
    Get {
        c: usize,
        key: u8,
        touch: Option<Exp>,
        with_cas: bool,
    },
    /// A multi-key get (text only).
    MultiGet {
        c: usize,
        keys: Vec<u8>,
        with_cas: bool,
    },
    Touch {
        key: u8,
        exp: Exp,
        noreply: bool,
    },
    Delete {
        c: usize,
        key: u8,
        tok: Option<TokPick>,
        noreply: bool,
    },
    Arith {
        c: usize,
        key: u8,
        incr: bool,
        delta: u64,
        tok: Option<TokPick>,
        /// Create when absent (binary semantics): initial value, exptime.
        create: Option<(u64, Exp)>,
        noreply: bool,
    },
    Flush {
        delay: i64,
        noreply: bool,
    },
    Advance {
        secs: i64,
    },
    /// Background work (expiry crawler, page mover) until it is idle;
    /// invisible to clients (storage only).
    Maintain,
    /// A listing of every class (`lru_crawler metadump`, `stats
    /// cachedump`): exactly the live keys, with their value lengths and
    /// deadlines (storage only).
    Dump,
    /// `mg` with N (vivify), R (recache), T (touch, before or after R), E.
    MetaGet {
        c: usize,
        key: u8,
        vivify: Option<Exp>,
        recache: Option<i64>,
        touch: Option<Exp>,
        touch_first: bool,
        new_cas: Option<u64>,
    },
    /// `md <key> I [T] [E] [C]`.
    Invalidate {
        c: usize,
        key: u8,
        tok: Option<TokPick>,
        touch: Option<Exp>,
        new_cas: Option<u64>,
    },
    /// `md <key> x [C]`: drop the value, keep the item with these flags.
    EmptyValue {
        c: usize,
        key: u8,
        flags: u32,
        tok: Option<TokPick>,
    },
    /// `ms <key> I C<token>`: an older token still stores, marked stale.
    StoreStale {
        c: usize,
        key: u8,
        flags: u32,
        val: Val,
        tok: TokPick,
    },
    /// `ms <key> E<cas>`: store with an explicit CAS.
    StoreExplicit {
        key: u8,
        flags: u32,
        exp: Exp,
        val: Val,
        new_cas: u64,
    },
}

/// What kind of run the operations are generated for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Level {
    /// Storage API, small values, few keys.
    Storage,
    /// Storage API, many keys, values of many sizes.
    Eviction,
    /// The text protocol's classic commands.
    Text,
}

fn exp_strategy() -> impl Strategy<Value = Exp> {
    prop_oneof![
        4 => Just(Exp::Never),
        4 => (1i64..=40).prop_map(Exp::Rel),
        1 => Just(Exp::ThirtyDays),
        1 => (1i64..=1000).prop_map(Exp::Neg),
        2 => (-100i64..=100).prop_map(Exp::Abs),
    ]
}

fn small_value() -> impl Strategy<Value = Val> {
    let numeric = prop::sample::select(vec![
        "0",
        "1",
        "9",
        "10",
        "99",
        "100",
        "007",
        "18446744073709551615",
        "18446744073709551614",
        "18446744073709551616",
        "99999999999999999999",
        "12345678901234567890",
        " 5",
        "5 x",
        "5  ",
        "+7",
        "-0",
        "-5",
        "-18446744073709551615",
        "5x",
        "abc",
        "",
        "5\0",
        "\t42",
    ]);
    prop_oneof![
        3 => prop::collection::vec(any::<u8>(), 0..12).prop_map(Val::Lit),
        3 => numeric.prop_map(|s| Val::Lit(s.as_bytes().to_vec())),
        2 => any::<u64>().prop_map(|n| Val::Lit(n.to_string().into_bytes())),
        2 => (0u64..1000).prop_map(|n| Val::Lit(n.to_string().into_bytes())),
    ]
}

fn sized_value() -> impl Strategy<Value = Val> {
    let gen = |lo: usize, hi: usize| {
        (lo..hi, any::<u32>()).prop_map(|(len, seed)| Val::Gen { len, seed })
    };
    prop_oneof![
        2 => small_value(),
        2 => gen(0, 100),
        3 => gen(100, 1000),
        3 => gen(1000, 4000),
        2 => gen(4000, 7000),
    ]
}

fn delta() -> impl Strategy<Value = u64> {
    prop_oneof![
        4 => 0u64..5,
        1 => Just(u64::MAX),
        1 => Just(u64::MAX - 1),
        2 => any::<u64>(),
    ]
}

fn flags() -> impl Strategy<Value = u32> {
    prop_oneof![3 => Just(0u32), 2 => 1u32..5, 1 => Just(u32::MAX)]
}

fn explicit_cas() -> impl Strategy<Value = u64> {
    (0u64..4).prop_map(|n| EXPLICIT + n)
}

fn op_strategy(level: Level) -> BoxedStrategy<Op> {
    let keys: u8 = match level {
        Level::Eviction => 160,
        _ => 6,
    };
    let key = move || 0..keys;
    let client = || 0..CLIENTS;
    let val = move || -> BoxedStrategy<Val> {
        if level == Level::Eviction {
            sized_value().boxed()
        } else {
            small_value().boxed()
        }
    };
    let storage = level != Level::Text;
    let text = level == Level::Text;
    let noreply = move || {
        if text {
            prop::bool::weighted(0.2).boxed()
        } else {
            Just(false).boxed()
        }
    };
    let tok_opt = move || {
        if storage {
            prop::option::weighted(0.3, any::<TokPick>()).boxed()
        } else {
            Just(None).boxed()
        }
    };
    let store = (
        client(),
        prop::sample::select(vec![
            Mode::Set,
            Mode::Add,
            Mode::Replace,
            Mode::Append,
            Mode::Prepend,
        ]),
        key(),
        flags(),
        exp_strategy(),
        val(),
        tok_opt(),
        noreply(),
    )
        .prop_map(|(c, mode, key, flags, exp, val, tok, noreply)| Op::Store {
            c,
            mode,
            key,
            flags,
            exp,
            val,
            tok: if mode == Mode::Add { None } else { tok },
            noreply,
        });
    let cas = (
        client(),
        key(),
        flags(),
        exp_strategy(),
        val(),
        0u8..6,
        noreply(),
    )
        .prop_map(|(c, key, flags, exp, val, tok, noreply)| Op::Store {
            c,
            mode: Mode::Cas,
            key,
            flags,
            exp,
            val,
            tok: Some(tok),
            noreply,
        });
    let get = (
        client(),
        key(),
        prop::option::weighted(0.25, exp_strategy()),
        any::<bool>(),
    )
        .prop_map(move |(c, key, touch, with_cas)| Op::Get {
            c,
            key,
            touch,
            with_cas: with_cas || !text,
        });
    let touch = (key(), exp_strategy(), noreply()).prop_map(|(key, exp, noreply)| Op::Touch {
        key,
        exp,
        noreply,
    });
    let delete =
        (client(), key(), tok_opt(), noreply()).prop_map(|(c, key, tok, noreply)| Op::Delete {
            c,
            key,
            tok,
            noreply,
        });
    let create = move || {
        if storage {
            prop::option::weighted(0.2, (any::<u64>(), exp_strategy())).boxed()
        } else {
            Just(None).boxed()
        }
    };
    let arith = (
        client(),
        key(),
        any::<bool>(),
        delta(),
        tok_opt(),
        create(),
        noreply(),
    )
        .prop_map(|(c, key, incr, delta, tok, create, noreply)| Op::Arith {
            c,
            key,
            incr,
            delta,
            // Creation ignores the token; keep the two apart.
            tok: if create.is_some() { None } else { tok },
            create,
            noreply,
        });
    let flush = (prop_oneof![2 => Just(0i64), 3 => 1i64..=40], noreply())
        .prop_map(|(delay, noreply)| Op::Flush { delay, noreply });
    let advance = prop_oneof![
        6 => 0i64..=3,
        3 => 4i64..=45,
        1 => Just(30 * DAY),
    ]
    .prop_map(|secs| Op::Advance { secs });
    // Under eviction, writes dominate so that memory fills up, and flushes
    // are rare.
    let (writes, flushes) = if level == Level::Eviction {
        (30, 1)
    } else {
        (12, 3)
    };
    let mut ops: Vec<(u32, BoxedStrategy<Op>)> = vec![
        (writes, store.boxed()),
        (6, cas.boxed()),
        (12, get.boxed()),
        (3, touch.boxed()),
        (3, delete.boxed()),
        (7, arith.boxed()),
        (flushes, flush.boxed()),
        (5, advance.boxed()),
    ];
    if text {
        let multi = (client(), prop::collection::vec(key(), 2..5), any::<bool>())
            .prop_map(|(c, keys, with_cas)| Op::MultiGet { c, keys, with_cas });
        ops.push((3, multi.boxed()));
    } else {
        let meta_get = (
            client(),
            key(),
            prop::option::weighted(0.4, exp_strategy()),
            prop::option::weighted(0.4, 1i64..=60),
            prop::option::weighted(0.3, exp_strategy()),
            any::<bool>(),
            prop::option::weighted(0.2, explicit_cas()),
        )
            .prop_map(
                |(c, key, vivify, recache, touch, touch_first, new_cas)| Op::MetaGet {
                    c,
                    key,
                    vivify,
                    recache,
                    touch,
                    touch_first,
                    new_cas,
                },
            );
        let invalidate = (
            client(),
            key(),
            tok_opt(),
            prop::option::weighted(0.3, exp_strategy()),
            prop::option::weighted(0.2, explicit_cas()),
        )
            .prop_map(|(c, key, tok, touch, new_cas)| Op::Invalidate {
                c,
                key,
                tok,
                touch,
                new_cas,
            });
        let empty = (client(), key(), flags(), tok_opt())
            .prop_map(|(c, key, flags, tok)| Op::EmptyValue { c, key, flags, tok });
        let stale =
            (client(), key(), flags(), val(), 0u8..6).prop_map(|(c, key, flags, val, tok)| {
                Op::StoreStale {
                    c,
                    key,
                    flags,
                    val,
                    tok,
                }
            });
        let explicit = (key(), flags(), exp_strategy(), val(), explicit_cas()).prop_map(
            |(key, flags, exp, val, new_cas)| Op::StoreExplicit {
                key,
                flags,
                exp,
                val,
                new_cas,
            },
        );
        ops.extend([
            (2, Just(Op::Maintain).boxed()),
            (1, Just(Op::Dump).boxed()),
            (5, meta_get.boxed()),
            (2, invalidate.boxed()),
            (1, empty.boxed()),
            (2, stale.boxed()),
            (1, explicit.boxed()),
        ]);
    }
    prop::strategy::Union::new_weighted(ops).boxed()
}

fn storage_ops(level: Level, len: std::ops::Range<usize>) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op_strategy(level), len)
}

fn key_name(k: u8) -> Vec<u8> {
    format!("key:{k}").into_bytes()
}

// ---------------------------------------------------------------------------
// The model

/// The model's name for an item's CAS: the n-th write of the run, or an
/// explicit value. Orders like the real numbers (explicit ones are larger).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Cas {
    Ver(u64),
    Explicit(u64),
}

#[derive(Clone, Debug)]
struct Entry {
    value: Vec<u8>,
    flags: u32,
    /// Unix time at which it expires; `None`: never.
    exp: Option<i64>,
    cas: Cas,
    /// Unix time of the write that produced this value.
    written: i64,
    /// Unix time of the last write, read or touch.
    accessed: i64,
    stale: bool,
    win_sent: bool,
}

/// What an item looks like to a reader.
#[derive(Clone, PartialEq, Eq)]
struct View<C> {
    value: Vec<u8>,
    flags: u32,
    cas: C,
    /// Relative deadline (0: never).
    exptime: u32,
    /// Meta lookups: stale, win sent before, won, created.
    meta: Option<(bool, bool, bool, bool)>,
}

impl<C: std::fmt::Debug> std::fmt::Debug for View<C> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let v = &self.value;
        let shown = if v.len() > 40 {
            format!("{}…({} bytes)", esc(&v[..40]), v.len())
        } else {
            esc(v)
        };
        write!(
            f,
            "{{value: \"{shown}\", flags: {}, cas: {:?}, exptime: {}, meta: {:?}}}",
            self.flags, self.cas, self.exptime, self.meta
        )
    }
}

/// A reply, protocol-neutral; `C` is a model CAS or a real number.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Out<C> {
    Stored(C),
    NotStored,
    Exists,
    NotFound,
    TooLarge,
    Deleted,
    /// Invalidated or emptied (meta delete), with the item's new CAS.
    Marked(C),
    Touched,
    Value(u64, C),
    NonNumeric,
    Hit(View<C>),
    Miss,
    Done,
    /// Keys with value length and deadline, sorted.
    Listed(Vec<(Vec<u8>, usize, u32)>),
}

impl<C> Out<C> {
    fn map_cas<D>(self, mut f: impl FnMut(C) -> D) -> Out<D> {
        match self {
            Out::Stored(c) => Out::Stored(f(c)),
            Out::NotStored => Out::NotStored,
            Out::Exists => Out::Exists,
            Out::NotFound => Out::NotFound,
            Out::TooLarge => Out::TooLarge,
            Out::Deleted => Out::Deleted,
            Out::Marked(c) => Out::Marked(f(c)),
            Out::Touched => Out::Touched,
            Out::Value(v, c) => Out::Value(v, f(c)),
            Out::NonNumeric => Out::NonNumeric,
            Out::Hit(v) => Out::Hit(View {
                value: v.value,
                flags: v.flags,
                cas: f(v.cas),
                exptime: v.exptime,
                meta: v.meta,
            }),
            Out::Miss => Out::Miss,
            Out::Done => Out::Done,
            Out::Listed(l) => Out::Listed(l),
        }
    }
}

/// memcached's reading of a stored value as a number (`safe_strtoull`):
/// leading white space, an optional sign, at least one digit, no overflow,
/// then white space, a NUL or the end; a '-' only if the result does not
/// look negative as a signed number.
fn model_number(v: &[u8]) -> Option<u64> {
    let space = |b: u8| b" \t\n\x0b\x0c\r".contains(&b);
    let mut rest = v;
    while let [b, tail @ ..] = rest {
        if !space(*b) {
            break;
        }
        rest = tail;
    }
    let negative = rest.first() == Some(&b'-');
    if matches!(rest.first(), Some(b'-' | b'+')) {
        rest = &rest[1..];
    }
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        return None;
    }
    let n: u64 = std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()?;
    match rest.get(digits) {
        None | Some(0) => {}
        Some(&b) if space(b) => {}
        Some(_) => return None,
    }
    let n = if negative { n.wrapping_neg() } else { n };
    if negative && (n as i64) < 0 {
        return None;
    }
    Some(n)
}

/// Real CAS numbers seen so far, bound to the model's versions.
#[derive(Clone, Debug, Default)]
struct Bindings {
    ver_real: BTreeMap<u64, u64>,
    real_ver: HashMap<u64, u64>,
}

impl Bindings {
    /// The number of a model CAS, when known.
    fn real_of(&self, cas: Cas) -> Option<u64> {
        match cas {
            Cas::Explicit(e) => Some(e),
            Cas::Ver(v) => self.ver_real.get(&v).copied(),
        }
    }

    /// Whether a client's token equals the item's CAS.
    fn matches(&self, tok: u64, cas: Cas) -> bool {
        self.real_of(cas) == Some(tok)
    }

    /// Checks that `real` can be the number of `cas`; returns a new binding.
    fn check(&self, cas: Cas, real: u64) -> Result<Option<(u64, u64)>, String> {
        match cas {
            Cas::Explicit(e) if e == real => Ok(None),
            Cas::Explicit(e) => Err(format!("explicit CAS {e} reported as {real}")),
            Cas::Ver(v) => {
                if let Some(&r) = self.ver_real.get(&v) {
                    return if r == real {
                        Ok(None)
                    } else {
                        Err(format!("version {v} has CAS {r}, now reported as {real}"))
                    };
                }
                if let Some(&other) = self.real_ver.get(&real) {
                    return Err(format!("CAS {real} of version {other} reused for {v}"));
                }
                if real == 0 || real >= GARBAGE {
                    return Err(format!("version {v} reported with CAS {real}"));
                }
                if let Some((pv, &pr)) = self.ver_real.range(..v).next_back() {
                    if pr >= real {
                        return Err(format!("version {v} has CAS {real}, older {pv} has {pr}"));
                    }
                }
                if let Some((nv, &nr)) = self.ver_real.range(v + 1..).next() {
                    if nr <= real {
                        return Err(format!("version {v} has CAS {real}, newer {nv} has {nr}"));
                    }
                }
                Ok(Some((v, real)))
            }
        }
    }

    fn bind(&mut self, (v, r): (u64, u64)) {
        self.ver_real.insert(v, r);
        self.real_ver.insert(r, v);
    }

    /// Whether `real` (a reply) agrees with `model`; binds new CAS numbers
    /// only when it does.
    fn unify(&mut self, model: &Out<Cas>, real: &Out<u64>) -> Result<(), String> {
        let mut pairs = Vec::new();
        let m = model.clone().map_cas(|c| pairs.push(c));
        let mut reals = Vec::new();
        let r = real.clone().map_cas(|c| reals.push(c));
        if m != r {
            return Err(format!("expected {model:?}, got {real:?}"));
        }
        let mut new = Vec::new();
        for (c, r) in pairs.into_iter().zip(reals) {
            if let Some(b) = self.check(c, r)? {
                new.push(b);
            }
        }
        for b in new {
            self.bind(b);
        }
        Ok(())
    }
}

#[derive(Clone, Debug)]
struct Model {
    /// Unix time.
    now: i64,
    items: BTreeMap<u8, Entry>,
    /// Last version handed out.
    ver: u64,
    /// A pending delayed flush (unix time).
    flush_at: Option<i64>,
    /// Bytes of the largest item (the page size).
    page: usize,
}

/// Bytes an item takes: header, flags when non-zero, key, value.
fn item_size(klen: usize, vlen: usize, flags: u32) -> usize {
    const HEADER: usize = 23;
    HEADER + if flags != 0 { 4 } else { 0 } + klen + vlen
}

impl Model {
    fn new(page: usize) -> Model {
        Model {
            now: T0,
            items: BTreeMap::new(),
            ver: 0,
            flush_at: None,
            page,
        }
    }

    fn next(&mut self) -> Cas {
        self.ver += 1;
        Cas::Ver(self.ver)
    }

    /// memcached's exptime rules: 0 never, negative already, up to 30 days
    /// from now, more an absolute unix time.
    fn expiry(&self, exptime: i64) -> Option<i64> {
        match exptime {
            0 => None,
            e if e < 0 => Some(i64::MIN),
            e if e > 30 * DAY => Some(e),
            e => Some(self.now + e),
        }
    }

    fn rel(exp: Option<i64>) -> u32 {
        match exp {
            None => 0,
            Some(x) if x <= EPOCH => 1,
            Some(x) => (x - EPOCH) as u32,
        }
    }

    fn view(e: &Entry) -> View<Cas> {
        View {
            value: e.value.clone(),
            flags: e.flags,
            cas: e.cas,
            exptime: Model::rel(e.exp),
            meta: None,
        }
    }

    fn advance(&mut self, secs: i64) {
        self.now += secs;
        if let Some(at) = self.flush_at {
            if self.now >= at {
                self.items.retain(|_, e| e.written >= at);
                self.flush_at = None;
            }
        }
    }

    fn flush(&mut self, delay: i64) {
        if delay == 0 {
            // An explicit CAS lies above the counter the flush records, so
            // such an item outlives it when used this very second (as in
            // memcached, whose flush also goes by the second).
            let now = self.now;
            self.items
                .retain(|_, e| matches!(e.cas, Cas::Explicit(_)) && e.accessed == now);
            self.flush_at = None;
        } else {
            self.flush_at = Some(self.now + delay);
        }
    }

    /// The key's live item, forgetting an expired one.
    fn live(&mut self, k: u8) -> Option<&mut Entry> {
        let now = self.now;
        if self
            .items
            .get(&k)
            .is_some_and(|e| e.exp.is_some_and(|x| now >= x))
        {
            self.items.remove(&k);
        }
        self.items.get_mut(&k)
    }

    fn fresh(&mut self, value: Vec<u8>, flags: u32, exptime: i64, cas: Option<Cas>) -> Entry {
        let cas = cas.unwrap_or_else(|| self.next());
        Entry {
            value,
            flags,
            exp: self.expiry(exptime),
            cas,
            written: self.now,
            accessed: self.now,
            stale: false,
            win_sent: false,
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn store(
        &mut self,
        mode: Mode,
        k: u8,
        flags: u32,
        exptime: i64,
        value: Vec<u8>,
        tok: Option<u64>,
        explicit: Option<u64>,
        b: &Bindings,
    ) -> Out<Cas> {
        let klen = key_name(k).len();
        let cur = self
            .live(k)
            .map(|e| (e.cas, e.value.clone(), e.flags, e.exp));
        let write = |m: &mut Model, value: Vec<u8>, flags: u32, exp: Option<i64>| {
            if item_size(klen, value.len(), flags) > m.page {
                return Out::TooLarge;
            }
            let cas = explicit.map(Cas::Explicit).unwrap_or_else(|| m.next());
            m.items.insert(
                k,
                Entry {
                    value,
                    flags,
                    exp,
                    cas,
                    written: m.now,
                    accessed: m.now,
                    stale: false,
                    win_sent: false,
                },
            );
            Out::Stored(cas)
        };
        let exp = self.expiry(exptime);
        match (mode, cur, tok) {
            (Mode::Cas, None, _) => Out::NotFound,
            (Mode::Cas, Some((c, ..)), Some(t)) if b.matches(t, c) => {
                write(self, value, flags, exp)
            }
            (Mode::Cas, Some(_), _) => Out::Exists,
            (Mode::Add, Some(_), _) => Out::NotStored,
            (Mode::Add, None, _) => write(self, value, flags, exp),
            (_, None, Some(_)) => Out::NotFound,
            (_, Some((c, ..)), Some(t)) if !b.matches(t, c) => Out::Exists,
            (Mode::Set, _, _) => write(self, value, flags, exp),
            (_, None, None) => Out::NotStored,
            (Mode::Replace, Some(_), _) => write(self, value, flags, exp),
            (_, Some((_, old, oflags, oexp)), _) => {
                let joined = if mode == Mode::Append {
                    [old, value].concat()
                } else {
                    [value, old].concat()
                };
                write(self, joined, oflags, oexp)
            }
        }
    }

    /// Carries out `op` (the client's token, if any, already resolved).
    fn apply(&mut self, op: &Op, tok: Option<u64>, b: &Bindings) -> Out<Cas> {
        let now = self.now;
        match *op {
            Op::Store {
                mode,
                key,
                flags,
                exp,
                ref val,
                ..
            } => self.store(
                mode,
                key,
                flags,
                exp.resolve(now),
                val.bytes(),
                tok,
                None,
                b,
            ),
            Op::Get { key, touch, .. } => {
                let exp = touch.map(|t| self.expiry(t.resolve(now)));
                match self.live(key) {
                    Some(e) => {
                        if let Some(x) = exp {
                            e.exp = x;
                        }
                        e.accessed = now;
                        Out::Hit(Model::view(e))
                    }
                    None => Out::Miss,
                }
            }
            Op::MultiGet { .. } => unreachable!("split into single gets"),
            Op::Touch { key, exp, .. } => {
                let x = self.expiry(exp.resolve(now));
                match self.live(key) {
                    Some(e) => {
                        e.exp = x;
                        e.accessed = now;
                        Out::Touched
                    }
                    None => Out::NotFound,
                }
            }
            Op::Delete { key, .. } => match self.live(key) {
                None => Out::NotFound,
                Some(e) if tok.is_some_and(|t| !b.matches(t, e.cas)) => Out::Exists,
                Some(_) => {
                    self.items.remove(&key);
                    Out::Deleted
                }
            },
            Op::Arith {
                key,
                incr,
                delta,
                create,
                ..
            } => {
                let ver = self.ver + 1;
                let Some(e) = self.live(key) else {
                    let Some((initial, exp)) = create else {
                        return Out::NotFound;
                    };
                    let e = self.fresh(initial.to_string().into_bytes(), 0, exp.resolve(now), None);
                    let cas = e.cas;
                    self.items.insert(key, e);
                    return Out::Value(initial, cas);
                };
                if e.value.is_empty() {
                    return Out::NonNumeric;
                }
                if tok.is_some_and(|t| !b.matches(t, e.cas)) {
                    return Out::Exists;
                }
                let Some(n) = model_number(&e.value) else {
                    return Out::NonNumeric;
                };
                let n = if incr {
                    n.wrapping_add(delta)
                } else {
                    n.saturating_sub(delta)
                };
                let digits = n.to_string().into_bytes();
                if digits.len() <= e.value.len() {
                    // Rewritten in place, padded: the item keeps its meta
                    // state.
                    let pad = e.value.len() - digits.len();
                    e.value = [digits, vec![b' '; pad]].concat();
                } else {
                    e.value = digits;
                    e.stale = false;
                    e.win_sent = false;
                }
                e.cas = Cas::Ver(ver);
                e.written = now;
                e.accessed = now;
                self.ver = ver;
                Out::Value(n, Cas::Ver(ver))
            }
            Op::Flush { delay, .. } => {
                self.flush(delay);
                Out::Done
            }
            Op::Advance { secs } => {
                self.advance(secs);
                Out::Done
            }
            Op::Maintain => Out::Done,
            Op::Dump => {
                let keys: Vec<u8> = self.items.keys().copied().collect();
                let mut listed = Vec::new();
                for k in keys {
                    if let Some(e) = self.live(k) {
                        let (len, exp) = (e.value.len(), Model::rel(e.exp));
                        listed.push((key_name(k), len, exp));
                    }
                }
                listed.sort();
                Out::Listed(listed)
            }
            Op::MetaGet {
                key,
                vivify,
                recache,
                touch,
                touch_first,
                new_cas,
                ..
            } => {
                let touch = touch.map(|t| self.expiry(t.resolve(now)));
                match self.live(key) {
                    Some(e) => {
                        let judged = match touch {
                            Some(t) if touch_first => t,
                            _ => e.exp,
                        };
                        let due = recache.is_some_and(|r| judged.is_some_and(|j| j < now + r));
                        let won = !e.win_sent && (e.stale || due);
                        let meta = (e.stale, e.win_sent, won, false);
                        e.win_sent |= won;
                        e.accessed = now;
                        if let Some(t) = touch {
                            e.exp = t;
                        }
                        let mut v = Model::view(e);
                        v.meta = Some(meta);
                        Out::Hit(v)
                    }
                    None => {
                        let Some(x) = vivify else {
                            return Out::Miss;
                        };
                        let mut e =
                            self.fresh(Vec::new(), 0, x.resolve(now), new_cas.map(Cas::Explicit));
                        e.win_sent = true;
                        let mut v = Model::view(&e);
                        v.meta = Some((false, false, true, true));
                        self.items.insert(key, e);
                        Out::Hit(v)
                    }
                }
            }
            Op::Invalidate {
                key,
                touch,
                new_cas,
                ..
            } => {
                let touch = touch.map(|t| self.expiry(t.resolve(now)));
                let ver = self.ver + 1;
                match self.live(key) {
                    None => Out::NotFound,
                    Some(e) if tok.is_some_and(|t| !b.matches(t, e.cas)) => Out::Exists,
                    Some(e) => {
                        e.cas = match new_cas {
                            Some(c) => Cas::Explicit(c),
                            None => Cas::Ver(ver),
                        };
                        e.stale = true;
                        e.win_sent = false;
                        if let Some(t) = touch {
                            e.exp = t;
                        }
                        let cas = e.cas;
                        if new_cas.is_none() {
                            self.ver = ver;
                        }
                        if self.live(key).is_none() {
                            return Out::Deleted;
                        }
                        Out::Marked(cas)
                    }
                }
            }
            Op::EmptyValue { key, flags, .. } => {
                let exp = match self.live(key) {
                    None => return Out::NotFound,
                    Some(e) if tok.is_some_and(|t| !b.matches(t, e.cas)) => return Out::Exists,
                    Some(e) => e.exp,
                };
                let mut e = self.fresh(Vec::new(), flags, 0, None);
                e.exp = exp;
                let cas = e.cas;
                self.items.insert(key, e);
                Out::Marked(cas)
            }
            Op::StoreStale {
                key,
                flags,
                ref val,
                ..
            } => {
                let t = tok.expect("ms I carries a token");
                let cur = self.live(key).map(|e| e.cas);
                match cur {
                    None => Out::NotFound,
                    Some(c) if b.real_of(c).is_some_and(|r| t <= r) => {
                        let mut e = self.fresh(val.bytes(), flags, 0, None);
                        e.stale = !b.matches(t, c);
                        let cas = e.cas;
                        self.items.insert(key, e);
                        Out::Stored(cas)
                    }
                    Some(_) => Out::Exists,
                }
            }
            Op::StoreExplicit {
                key,
                flags,
                exp,
                ref val,
                new_cas,
            } => self.store(
                Mode::Set,
                key,
                flags,
                exp.resolve(now),
                val.bytes(),
                None,
                Some(new_cas),
                b,
            ),
        }
    }
}

/// The key an operation is about, if it is about one.
fn op_key(op: &Op) -> Option<u8> {
    match *op {
        Op::Store { key, .. }
        | Op::Get { key, .. }
        | Op::Touch { key, .. }
        | Op::Delete { key, .. }
        | Op::Arith { key, .. }
        | Op::MetaGet { key, .. }
        | Op::Invalidate { key, .. }
        | Op::EmptyValue { key, .. }
        | Op::StoreStale { key, .. }
        | Op::StoreExplicit { key, .. } => Some(key),
        Op::MultiGet { .. } | Op::Flush { .. } | Op::Advance { .. } | Op::Maintain | Op::Dump => {
            None
        }
    }
}

/// The token pick of an operation, and the client making it.
fn op_token(op: &Op) -> Option<(usize, TokPick)> {
    match *op {
        Op::Store { c, tok, .. }
        | Op::Delete { c, tok, .. }
        | Op::Arith { c, tok, .. }
        | Op::Invalidate { c, tok, .. }
        | Op::EmptyValue { c, tok, .. } => tok.map(|t| (c, t)),
        Op::StoreStale { c, tok, .. } => Some((c, tok)),
        _ => None,
    }
}

/// CAS tokens each client has read, per key, newest last.
#[derive(Default)]
struct Clients {
    seen: Vec<HashMap<u8, Vec<u64>>>,
}

impl Clients {
    fn new() -> Clients {
        Clients {
            seen: vec![HashMap::new(); CLIENTS],
        }
    }

    fn remember(&mut self, c: usize, key: u8, cas: u64) {
        let list = self.seen[c].entry(key).or_default();
        if list.last() != Some(&cas) {
            list.push(cas);
        }
        if list.len() > TOKENS_KEPT {
            list.remove(0);
        }
    }

    fn pick(&self, c: usize, key: u8, pick: TokPick) -> u64 {
        let list = self.seen[c].get(&key).map_or(&[][..], |l| &l[..]);
        let i = pick as usize % (list.len() + 1);
        if i == list.len() {
            GARBAGE + pick as u64
        } else {
            list[list.len() - 1 - i]
        }
    }
}

// ---------------------------------------------------------------------------
// Storage level

struct Real {
    cache: Cache,
    clock: Clock,
}

impl Real {
    fn new(config: CacheConfig) -> Real {
        Real {
            cache: Cache::new(config),
            clock: Clock::starting_at(T0),
        }
    }

    fn store_out(o: StoreOutcome) -> Out<u64> {
        match o {
            StoreOutcome::Stored { cas } => Out::Stored(cas),
            StoreOutcome::NotStored => Out::NotStored,
            StoreOutcome::Exists => Out::Exists,
            StoreOutcome::NotFound => Out::NotFound,
            StoreOutcome::TooLarge => Out::TooLarge,
            StoreOutcome::OutOfMemory => panic!("out of memory"),
        }
    }

    fn delete_out(o: DeleteOutcome) -> Out<u64> {
        match o {
            DeleteOutcome::Deleted => Out::Deleted,
            DeleteOutcome::NotFound => Out::NotFound,
            DeleteOutcome::Exists => Out::Exists,
        }
    }

    /// A meta delete's outcome, with the CAS the item got.
    fn marked(&self, key: u8, o: DeleteOutcome) -> Out<u64> {
        match o {
            DeleteOutcome::Deleted => {
                let now = self.clock.now();
                // A new deadline in the past leaves nothing to look at.
                match self.cache.debug(&key_name(key), now) {
                    Some(info) => Out::Marked(info.cas),
                    None => Out::Deleted,
                }
            }
            o => Real::delete_out(o),
        }
    }

    /// Runs `op`; `tok` is the client's token (0: none); `unix` the model
    /// clock, which the real clock follows.
    fn run(&self, op: &Op, tok: u64) -> Out<u64> {
        let c = &self.cache;
        let now = self.clock.now();
        let dl = |e: Exp| self.clock.deadline(e.resolve(self.clock.to_unix(now)));
        match *op {
            Op::Store {
                mode,
                key,
                flags,
                exp,
                ref val,
                ..
            } => Real::store_out(c.store(
                mode.storage(),
                &key_name(key),
                flags,
                dl(exp),
                &val.bytes(),
                tok,
                now,
            )),
            Op::Get { key, touch, .. } => {
                let r = c.get(&key_name(key), now, touch.map(dl), |i| View {
                    value: i.value.to_vec(),
                    flags: i.flags,
                    cas: i.cas,
                    exptime: i.exptime,
                    meta: None,
                });
                match r {
                    Lookup::Hit(v) => Out::Hit(v),
                    _ => Out::Miss,
                }
            }
            Op::MultiGet { .. } => unreachable!(),
            Op::Touch { key, exp, .. } => {
                if c.touch(&key_name(key), dl(exp), now) {
                    Out::Touched
                } else {
                    Out::NotFound
                }
            }
            Op::Delete { key, .. } => Real::delete_out(c.delete(&key_name(key), tok, now)),
            Op::Arith {
                key,
                incr,
                delta,
                create,
                ..
            } => {
                let op = if incr { ArithOp::Incr } else { ArithOp::Decr };
                let create = create.map(|(i, e)| (i, dl(e)));
                match c.arith(&key_name(key), op, delta, create, tok, now) {
                    ArithOutcome::Value { value, cas } => Out::Value(value, cas),
                    ArithOutcome::NotFound => Out::NotFound,
                    ArithOutcome::NonNumeric => Out::NonNumeric,
                    ArithOutcome::Exists => Out::Exists,
                    ArithOutcome::OutOfMemory => panic!("out of memory"),
                }
            }
            Op::Flush { delay, .. } => {
                let at = if delay > 0 {
                    self.clock.deadline(delay)
                } else {
                    now
                };
                c.flush_all(at, now);
                Out::Done
            }
            Op::Advance { secs } => {
                self.clock.set_unix(self.clock.to_unix(now) + secs);
                Out::Done
            }
            Op::Maintain => {
                let mut steps = 0;
                while c.maintain(now) {
                    steps += 1;
                    assert!(steps < 1000, "background work does not finish");
                }
                Out::Done
            }
            Op::Dump => {
                let mut listed = Vec::new();
                for id in 1..=255u32 {
                    if !c.is_class_id(id) {
                        break;
                    }
                    c.dump_class(id, 0, now, |d| {
                        listed.push((d.key.to_vec(), d.value_len, d.exptime));
                        true
                    });
                }
                listed.sort();
                Out::Listed(listed)
            }
            Op::MetaGet {
                key,
                vivify,
                recache,
                touch,
                touch_first,
                new_cas,
                ..
            } => {
                let opts = MetaGetOpts {
                    touch: touch.map(dl),
                    vivify: vivify.map(dl),
                    recache: recache.map(|r| self.clock.deadline(r)),
                    recache_after_touch: touch_first,
                    new_cas,
                    ..MetaGetOpts::default()
                };
                let r = c.meta_get(&key_name(key), now, &opts, |m| View {
                    value: m.item.value.to_vec(),
                    flags: m.item.flags,
                    cas: m.item.cas,
                    exptime: m.item.exptime,
                    meta: Some((m.stale, m.win_sent, m.won, m.created)),
                });
                match r {
                    Lookup::Hit(v) => Out::Hit(v),
                    _ => Out::Miss,
                }
            }
            Op::Invalidate {
                key,
                touch,
                new_cas,
                ..
            } => {
                let opts = MetaDeleteOpts {
                    invalidate: true,
                    touch: touch.map(dl),
                    new_cas,
                    remove_value: None,
                };
                self.marked(key, c.meta_delete(&key_name(key), tok, now, &opts))
            }
            Op::EmptyValue { key, flags, .. } => {
                let opts = MetaDeleteOpts {
                    remove_value: Some(flags),
                    ..MetaDeleteOpts::default()
                };
                self.marked(key, c.meta_delete(&key_name(key), tok, now, &opts))
            }
            Op::StoreStale {
                key,
                flags,
                ref val,
                ..
            } => {
                let opts = MetaStoreOpts {
                    invalidate: true,
                    ..MetaStoreOpts::default()
                };
                Real::store_out(c.meta_store(
                    StoreMode::Set,
                    &key_name(key),
                    flags,
                    0,
                    &val.bytes(),
                    tok,
                    now,
                    &opts,
                ))
            }
            Op::StoreExplicit {
                key,
                flags,
                exp,
                ref val,
                new_cas,
            } => {
                let opts = MetaStoreOpts {
                    new_cas: Some(new_cas),
                    ..MetaStoreOpts::default()
                };
                Real::store_out(c.meta_store(
                    StoreMode::Set,
                    &key_name(key),
                    flags,
                    dl(exp),
                    &val.bytes(),
                    0,
                    now,
                    &opts,
                ))
            }
        }
    }
}

/// Counts of what a run saw, to tell a run that tested something from one
/// that missed everything.
#[derive(Default, Debug)]
struct Tally {
    hits: u64,
    cas_stored: u64,
    cas_refused: u64,
    as_if_evicted: u64,
    evictions: u64,
    pages_moved: u64,
}

fn run_storage(ops: &[Op], config: CacheConfig, evicting: bool) -> Result<Tally, TestCaseError> {
    run_on(&Real::new(config), ops, evicting)
}

/// Runs `ops` against `real` (possibly shared with other threads working
/// on other keys) and the model.
fn run_on(real: &Real, ops: &[Op], evicting: bool) -> Result<Tally, TestCaseError> {
    let mut model = Model::new(real.cache.config().item_size_max);
    let mut binds = Bindings::default();
    let mut clients = Clients::new();
    let mut tally = Tally::default();
    for (i, op) in ops.iter().enumerate() {
        prop_assert_eq!(real.clock.to_unix(real.clock.now()), model.now);
        let tok_real = op_token(op).map(|(c, p)| clients.pick(c, op_key(op).unwrap(), p));
        let real_out = real.run(op, tok_real.unwrap_or(0));
        let key = op_key(op);
        let saved = key.map(|k| (model.items.get(&k).cloned(), model.ver));
        let model_out = model.apply(op, tok_real, &binds);
        let mut verdict = binds.unify(&model_out, &real_out);
        if let (true, Out::Listed(want), Out::Listed(got)) = (evicting, &model_out, &real_out) {
            // Evicted keys are missing; the others are listed as the
            // model has them.
            if got.iter().all(|g| want.contains(g)) {
                verdict = Ok(());
            }
        }
        if let (Err(first), true, Some(k)) = (&verdict, evicting, key) {
            // Allowed: the reply of the same operation on an evicted key.
            let (entry, ver) = saved.clone().unwrap();
            match entry {
                Some(e) => model.items.insert(k, e),
                None => model.items.remove(&k),
            };
            model.ver = ver;
            model.items.remove(&k);
            let again = model.apply(op, tok_real, &binds);
            verdict = binds
                .unify(&again, &real_out)
                .map_err(|second| format!("{first}; as if evicted: {second}"));
            tally.as_if_evicted += 1;
        }
        if let Err(e) = verdict {
            return Err(TestCaseError::fail(format!(
                "op #{i} {op:?} (token {tok_real:?}): {e}"
            )));
        }
        match (op, &real_out) {
            (Op::Get { c, key, .. } | Op::MetaGet { c, key, .. }, Out::Hit(v)) => {
                tally.hits += 1;
                clients.remember(*c, *key, v.cas);
            }
            (
                Op::Store {
                    mode: Mode::Cas, ..
                },
                Out::Stored(_),
            ) => tally.cas_stored += 1,
            (
                Op::Store {
                    mode: Mode::Cas, ..
                },
                _,
            ) => tally.cas_refused += 1,
            _ => {}
        }
    }
    let stats = real.cache.stats();
    tally.evictions = stats.evictions;
    tally.pages_moved = stats.slabs_moved;
    // Every key reads back as the model has it (or, under eviction, misses).
    for k in 0..=u8::MAX {
        if op_key_in_use(ops, k) {
            let op = Op::Get {
                c: 0,
                key: k,
                touch: None,
                with_cas: true,
            };
            let real_out = real.run(&op, 0);
            let model_out = model.apply(&op, None, &binds);
            if evicting && real_out == Out::Miss {
                continue;
            }
            binds
                .unify(&model_out, &real_out)
                .map_err(|e| TestCaseError::fail(format!("final read of key {k}: {e}")))?;
        }
    }
    Ok(tally)
}

fn op_key_in_use(ops: &[Op], k: u8) -> bool {
    ops.iter().any(|o| op_key(o) == Some(k))
}

fn ample() -> CacheConfig {
    CacheConfig {
        mem_limit: 16 << 20,
        item_size_max: 64 * 1024,
        ..CacheConfig::default()
    }
}

fn tight() -> CacheConfig {
    CacheConfig {
        mem_limit: 128 * 1024,
        item_size_max: 16 * 1024,
        ..CacheConfig::default()
    }
}

proptest! {
    #![proptest_config(cases(64))]

    #[test]
    fn storage_matches_model(ops in storage_ops(Level::Storage, 1..300)) {
        run_storage(&ops, ample(), false)?;
    }
}

/// Per-thread sequences for the shared-cache test: each thread has its own
/// 80 keys, and nothing that acts on every key (flush, clock, listing).
fn thread_ops(t: usize) -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(op_strategy(Level::Eviction), 150..300).prop_map(move |ops| {
        ops.into_iter()
            .filter(|o| !matches!(o, Op::Flush { .. } | Op::Advance { .. } | Op::Dump))
            .map(|mut o| {
                let shift = |k: &mut u8| *k = *k % 80 + (t * 80) as u8;
                match &mut o {
                    Op::Store { key, .. }
                    | Op::Get { key, .. }
                    | Op::Touch { key, .. }
                    | Op::Delete { key, .. }
                    | Op::Arith { key, .. }
                    | Op::MetaGet { key, .. }
                    | Op::Invalidate { key, .. }
                    | Op::EmptyValue { key, .. }
                    | Op::StoreStale { key, .. }
                    | Op::StoreExplicit { key, .. } => shift(key),
                    Op::MultiGet { keys, .. } => keys.iter_mut().for_each(shift),
                    Op::Flush { .. } | Op::Advance { .. } | Op::Maintain | Op::Dump => {}
                }
                o
            })
            .collect()
    })
}

proptest! {
    #![proptest_config(cases(8))]

    /// Three threads share one small cache, each checking its own keys
    /// against its own model while the others' stores evict items and move
    /// pages underneath it.
    #[test]
    fn shared_cache_under_eviction_never_returns_old_data(
        plans in (thread_ops(0), thread_ops(1), thread_ops(2))
    ) {
        let real = Real::new(tight());
        let plans = [plans.0, plans.1, plans.2];
        let results: Vec<Result<Tally, TestCaseError>> = std::thread::scope(|s| {
            let handles: Vec<_> = plans
                .iter()
                .map(|ops| {
                    let real = &real;
                    s.spawn(move || run_on(real, ops, true))
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for r in results {
            r?;
        }
        let stats = real.cache.stats();
        prop_assert!(stats.evictions + stats.slabs_moved > 0, "{:?}", stats);
    }
}

proptest! {
    #![proptest_config(cases(24))]

    #[test]
    fn storage_under_eviction_never_returns_old_data(
        ops in storage_ops(Level::Eviction, 200..400)
    ) {
        let t = run_storage(&ops, tight(), true)?;
        // The run must have been tight enough to evict.
        prop_assert!(t.evictions + t.pages_moved > 0, "{:?}", t);
    }
}

// ---------------------------------------------------------------------------
// Text protocol through the codec and the executor

struct TextSink {
    out: Vec<u8>,
    quiet: bool,
}

impl Sink for TextSink {
    fn reply(&mut self, response: &Response<'_>) {
        if !self.quiet {
            text::encode(response, &mut self.out);
        }
    }

    fn is_full(&self) -> bool {
        false
    }
}

struct TextServer {
    state: ServerState,
    stats: ThreadStats,
    limits: Limits,
}

impl TextServer {
    fn new() -> TextServer {
        let mut settings = Settings {
            threads: 1,
            ..Settings::default()
        };
        settings.cache = ample();
        let limits = Limits {
            item_size_max: settings.cache.item_size_max,
            ..Limits::default()
        };
        let mut state = ServerState::new(settings);
        state.clock = Clock::starting_at(T0);
        TextServer {
            state,
            stats: ThreadStats::default(),
            limits,
        }
    }

    /// Parses and executes one command; returns the reply bytes.
    fn send(&self, command: &[u8]) -> Vec<u8> {
        let (request, consumed) = match text::parse(command, &self.limits) {
            Parsed::Request { request, consumed } => (request, consumed),
            other => panic!("{:?} parsed as {other:?}", String::from_utf8_lossy(command)),
        };
        assert_eq!(
            consumed,
            command.len(),
            "{:?}",
            String::from_utf8_lossy(command)
        );
        let mut sink = TextSink {
            out: Vec::new(),
            quiet: request.noreply(),
        };
        let cx = Context {
            state: &self.state,
            stats: &self.stats,
            conn_id: 0,
        };
        assert_eq!(execute(&request, 0, &cx, &mut sink), Outcome::Done);
        sink.out
    }
}

/// The text command for `op`; `tok` is the CAS for `cas`.
fn text_command(op: &Op, tok: u64, now: i64) -> Vec<u8> {
    let nr = |noreply: bool| if noreply { " noreply" } else { "" };
    let k = |key: u8| String::from_utf8(key_name(key)).unwrap();
    match *op {
        Op::Store {
            mode,
            key,
            flags,
            exp,
            ref val,
            noreply,
            ..
        } => {
            let v = val.bytes();
            let cas = if mode == Mode::Cas {
                format!(" {tok}")
            } else {
                String::new()
            };
            let mut b = format!(
                "{} {} {flags} {} {}{cas}{}\r\n",
                mode.verb(),
                k(key),
                exp.resolve(now),
                v.len(),
                nr(noreply)
            )
            .into_bytes();
            b.extend_from_slice(&v);
            b.extend_from_slice(b"\r\n");
            b
        }
        Op::Get {
            key,
            touch,
            with_cas,
            ..
        } => {
            let s = if with_cas { "s" } else { "" };
            match touch {
                None => format!("get{s} {}\r\n", k(key)),
                Some(t) => format!("gat{s} {} {}\r\n", t.resolve(now), k(key)),
            }
            .into_bytes()
        }
        Op::MultiGet {
            ref keys, with_cas, ..
        } => {
            let s = if with_cas { "s" } else { "" };
            let names: Vec<String> = keys.iter().map(|&key| k(key)).collect();
            format!("get{s} {}\r\n", names.join(" ")).into_bytes()
        }
        Op::Touch { key, exp, noreply } => {
            format!("touch {} {}{}\r\n", k(key), exp.resolve(now), nr(noreply)).into_bytes()
        }
        Op::Delete { key, noreply, .. } => {
            format!("delete {}{}\r\n", k(key), nr(noreply)).into_bytes()
        }
        Op::Arith {
            key,
            incr,
            delta,
            noreply,
            ..
        } => format!(
            "{} {} {delta}{}\r\n",
            if incr { "incr" } else { "decr" },
            k(key),
            nr(noreply)
        )
        .into_bytes(),
        Op::Flush { delay, noreply } => {
            let d = if delay == 0 {
                String::new()
            } else {
                format!(" {delay}")
            };
            format!("flush_all{d}{}\r\n", nr(noreply)).into_bytes()
        }
        Op::Advance { .. }
        | Op::Maintain
        | Op::Dump
        | Op::MetaGet { .. }
        | Op::Invalidate { .. }
        | Op::EmptyValue { .. }
        | Op::StoreStale { .. }
        | Op::StoreExplicit { .. } => unreachable!("not a text command"),
    }
}

/// One VALUE of a get reply.
type TextValue = (Vec<u8>, u32, Vec<u8>, Option<u64>);

/// Splits a get reply into its values; `None` when it is not well formed.
fn parse_values(mut b: &[u8]) -> Option<Vec<TextValue>> {
    let mut out = Vec::new();
    loop {
        if b == b"END\r\n" {
            return Some(out);
        }
        let nl = b.windows(2).position(|w| w == b"\r\n")?;
        let line = std::str::from_utf8(&b[..nl]).ok()?;
        let parts: Vec<&str> = line.split(' ').collect();
        if parts.len() < 4 || parts.len() > 5 || parts[0] != "VALUE" {
            return None;
        }
        let flags = parts[2].parse().ok()?;
        let len: usize = parts[3].parse().ok()?;
        let cas = match parts.get(4) {
            Some(c) => Some(c.parse().ok()?),
            None => None,
        };
        let data = b.get(nl + 2..nl + 2 + len)?.to_vec();
        if b.get(nl + 2 + len..nl + 4 + len)? != b"\r\n" {
            return None;
        }
        out.push((parts[1].as_bytes().to_vec(), flags, data, cas));
        b = &b[nl + 4 + len..];
    }
}

fn render_values(values: &[TextValue]) -> Vec<u8> {
    let mut out = Vec::new();
    for (key, flags, data, cas) in values {
        out.extend_from_slice(b"VALUE ");
        out.extend_from_slice(key);
        out.extend_from_slice(format!(" {flags} {}", data.len()).as_bytes());
        if let Some(c) = cas {
            out.extend_from_slice(format!(" {c}").as_bytes());
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(data);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"END\r\n");
    out
}

/// The reply line the model expects for a non-read command.
fn text_line(out: &Out<Cas>) -> Vec<u8> {
    match out {
        Out::Stored(_) => b"STORED\r\n".to_vec(),
        Out::NotStored => b"NOT_STORED\r\n".to_vec(),
        Out::Exists => b"EXISTS\r\n".to_vec(),
        Out::NotFound => b"NOT_FOUND\r\n".to_vec(),
        Out::TooLarge => b"SERVER_ERROR object too large for cache\r\n".to_vec(),
        Out::Deleted => b"DELETED\r\n".to_vec(),
        Out::Marked(_) => unreachable!("meta only"),
        Out::Touched => b"TOUCHED\r\n".to_vec(),
        Out::Value(n, _) => format!("{n}\r\n").into_bytes(),
        Out::NonNumeric => {
            b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n".to_vec()
        }
        Out::Done => b"OK\r\n".to_vec(),
        Out::Hit(_) | Out::Miss => unreachable!("reads are compared value by value"),
        Out::Listed(_) => unreachable!("storage only"),
    }
}

fn esc(b: &[u8]) -> String {
    b.escape_ascii().to_string()
}

fn run_text(ops: &[Op]) -> Result<(), TestCaseError> {
    let server = TextServer::new();
    let clock = &server.state.clock;
    let mut model = Model::new(ample().item_size_max);
    let mut binds = Bindings::default();
    let mut clients = Clients::new();
    for (i, op) in ops.iter().enumerate() {
        let fail = |e: String| TestCaseError::fail(format!("op #{i} {op:?}: {e}"));
        if let Op::Advance { secs } = *op {
            model.advance(secs);
            clock.set_unix(model.now);
            continue;
        }
        let tok_real = op_token(op).map(|(c, p)| clients.pick(c, op_key(op).unwrap(), p));
        let command = text_command(op, tok_real.unwrap_or(0), model.now);
        let reply = server.send(&command);
        let (c, keys, with_cas) = match *op {
            Op::Get {
                c, key, with_cas, ..
            } => (c, vec![key], with_cas),
            Op::MultiGet {
                c,
                ref keys,
                with_cas,
            } => (c, keys.clone(), with_cas),
            _ => {
                let expected = model.apply(op, tok_real, &binds);
                let noreply = match *op {
                    Op::Store { noreply, .. }
                    | Op::Touch { noreply, .. }
                    | Op::Delete { noreply, .. }
                    | Op::Arith { noreply, .. }
                    | Op::Flush { noreply, .. } => noreply,
                    _ => false,
                };
                let want = if noreply {
                    Vec::new()
                } else {
                    text_line(&expected)
                };
                if reply != want {
                    return Err(fail(format!(
                        "sent {}: expected {}, got {}",
                        esc(&command),
                        esc(&want),
                        esc(&reply)
                    )));
                }
                continue;
            }
        };
        let values =
            parse_values(&reply).ok_or_else(|| fail(format!("malformed reply {}", esc(&reply))))?;
        prop_assert_eq!(render_values(&values), reply.clone());
        let mut got = values.into_iter().peekable();
        for key in keys {
            let single = match *op {
                Op::Get { .. } => op.clone(),
                _ => Op::Get {
                    c,
                    key,
                    touch: None,
                    with_cas,
                },
            };
            let expected = model.apply(&single, None, &binds);
            let real = match got.peek() {
                Some(v) if v.0 == key_name(key) => {
                    let (_, flags, value, cas) = got.next().unwrap();
                    if cas.is_some() != with_cas {
                        return Err(fail(format!("CAS shown: {cas:?}")));
                    }
                    Out::Hit(View {
                        value,
                        flags,
                        cas: cas.unwrap_or(0),
                        exptime: 0,
                        meta: None,
                    })
                }
                _ => Out::Miss,
            };
            let expected = match expected {
                // The text protocol shows neither deadlines nor, for get,
                // the CAS.
                Out::Hit(v) if with_cas => Out::Hit(View { exptime: 0, ..v }),
                Out::Hit(v) => {
                    let Out::Hit(r) = &real else {
                        return Err(fail(format!("expected {v:?}, got a miss")));
                    };
                    prop_assert_eq!((&v.value, v.flags), (&r.value, r.flags));
                    continue;
                }
                o => o,
            };
            binds.unify(&expected, &real).map_err(fail)?;
            if let Out::Hit(v) = real {
                clients.remember(c, key, v.cas);
            }
        }
        if let Some(extra) = got.next() {
            return Err(fail(format!("unexpected value {extra:?}")));
        }
    }
    Ok(())
}

fn text_op() -> BoxedStrategy<Op> {
    op_strategy(Level::Text)
}

proptest! {
    #![proptest_config(cases(48))]

    #[test]
    fn text_protocol_matches_model(ops in prop::collection::vec(text_op(), 1..250)) {
        run_text(&ops)?;
    }
}

#[test]
fn model_number_follows_strtoull() {
    for (v, want) in [
        (&b"12"[..], Some(12)),
        (b" 5", Some(5)),
        (b"5 x", Some(5)),
        (b"5\0", Some(5)),
        (b"+7", Some(7)),
        (b"-0", Some(0)),
        (b"-5", None),
        (b"-18446744073709551615", Some(1)),
        (b"18446744073709551616", None),
        (b"5x", None),
        (b"", None),
        (b" ", None),
    ] {
        assert_eq!(model_number(v), want, "{}", esc(v));
    }
}
