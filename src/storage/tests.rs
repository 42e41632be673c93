use std::sync::Arc;

use super::*;

const NOW: RelTime = 100;
const MB: usize = 1024 * 1024;

fn cache_with(mem: usize) -> Cache {
    Cache::new(CacheConfig {
        mem_limit: mem,
        ..CacheConfig::default()
    })
}

fn set(c: &Cache, key: &[u8], value: &[u8]) -> StoreOutcome {
    c.store(StoreMode::Set, key, 0, 0, value, 0, NOW)
}

fn get(c: &Cache, key: &[u8], now: RelTime) -> Option<Vec<u8>> {
    match c.get(key, now, None, |it| it.value.to_vec()) {
        Lookup::Hit(v) => Some(v),
        _ => None,
    }
}

fn gets(c: &Cache, key: &[u8]) -> Lookup<(Vec<u8>, u32, u64)> {
    c.get(key, NOW, None, |it| (it.value.to_vec(), it.flags, it.cas))
}

fn stored(o: StoreOutcome) -> u64 {
    match o {
        StoreOutcome::Stored { cas } => cas,
        o => panic!("not stored: {o:?}"),
    }
}

#[test]
fn set_get_miss_and_flags() {
    let c = cache_with(4 * MB);
    assert!(matches!(gets(&c, b"a"), Lookup::Miss));
    let cas = stored(c.store(StoreMode::Set, b"a", 0xdead_beef, 0, b"hello", 0, NOW));
    assert_eq!(
        gets(&c, b"a"),
        Lookup::Hit((b"hello".to_vec(), 0xdead_beef, cas))
    );
    stored(set(&c, b"a", b""));
    assert_eq!(gets(&c, b"a"), Lookup::Hit((vec![], 0, cas + 1)));
    assert_eq!(
        c.store(StoreMode::Set, b"", 0, 0, b"x", 0, NOW),
        StoreOutcome::NotStored
    );
}

#[test]
fn item_ref_reports_access_history() {
    let c = cache_with(4 * MB);
    stored(c.store(StoreMode::Set, b"k", 0, 500, b"v", 0, NOW));
    let first = c.get(b"k", NOW + 3, None, |it| {
        (it.fetched, it.last_access, it.exptime)
    });
    assert_eq!(first, Lookup::Hit((false, NOW, 500)));
    let second = c.get(b"k", NOW + 5, Some(900), |it| {
        (it.fetched, it.last_access, it.exptime)
    });
    assert_eq!(second, Lookup::Hit((true, NOW + 3, 900)));
}

#[test]
fn add_replace_append_prepend() {
    let c = cache_with(4 * MB);
    assert_eq!(
        c.store(StoreMode::Replace, b"k", 0, 0, b"v", 0, NOW),
        StoreOutcome::NotStored
    );
    assert_eq!(
        c.store(StoreMode::Append, b"k", 0, 0, b"v", 0, NOW),
        StoreOutcome::NotStored
    );
    assert_eq!(
        c.store(StoreMode::Prepend, b"k", 0, 0, b"v", 0, NOW),
        StoreOutcome::NotStored
    );
    stored(c.store(StoreMode::Add, b"k", 7, NOW + 50, b"mid", 0, NOW));
    assert_eq!(
        c.store(StoreMode::Add, b"k", 0, 0, b"x", 0, NOW),
        StoreOutcome::NotStored
    );
    stored(c.store(StoreMode::Append, b"k", 1, 0, b">>", 0, NOW));
    stored(c.store(StoreMode::Prepend, b"k", 2, 0, b"<<", 0, NOW));
    let r = c.get(b"k", NOW, None, |it| {
        (it.value.to_vec(), it.flags, it.exptime)
    });
    assert_eq!(r, Lookup::Hit((b"<<mid>>".to_vec(), 7, NOW + 50)));
    stored(c.store(StoreMode::Replace, b"k", 3, 0, b"new", 0, NOW));
    assert_eq!(get(&c, b"k", NOW).unwrap(), b"new");
    // add succeeds over an expired item
    stored(c.store(StoreMode::Set, b"e", 0, NOW + 1, b"old", 0, NOW));
    stored(c.store(StoreMode::Add, b"e", 0, 0, b"fresh", 0, NOW + 1));
    assert_eq!(get(&c, b"e", NOW + 1).unwrap(), b"fresh");
}

#[test]
fn cas_semantics() {
    let c = cache_with(4 * MB);
    assert_eq!(
        c.store(StoreMode::Cas, b"k", 0, 0, b"v", 5, NOW),
        StoreOutcome::NotFound
    );
    let cas = stored(set(&c, b"k", b"v"));
    assert_eq!(
        c.store(StoreMode::Cas, b"k", 0, 0, b"w", cas + 9, NOW),
        StoreOutcome::Exists
    );
    assert_eq!(
        c.store(StoreMode::Cas, b"k", 0, 0, b"w", 0, NOW),
        StoreOutcome::Exists
    );
    let cas2 = stored(c.store(StoreMode::Cas, b"k", 0, 0, b"w", cas, NOW));
    assert!(cas2 > cas);
    assert_eq!(
        c.store(StoreMode::Cas, b"k", 0, 0, b"z", cas, NOW),
        StoreOutcome::Exists
    );
    // binary semantics for the other modes
    assert_eq!(
        c.store(StoreMode::Set, b"k", 0, 0, b"z", cas, NOW),
        StoreOutcome::Exists
    );
    assert_eq!(
        c.store(StoreMode::Set, b"nope", 0, 0, b"z", 3, NOW),
        StoreOutcome::NotFound
    );
    assert_eq!(
        c.store(StoreMode::Append, b"k", 0, 0, b"z", cas, NOW),
        StoreOutcome::Exists
    );
    stored(c.store(StoreMode::Append, b"k", 0, 0, b"z", cas2, NOW));
    assert_eq!(get(&c, b"k", NOW).unwrap(), b"wz");
    // touch keeps the CAS, delete checks it
    let Lookup::Hit((_, _, cas3)) = gets(&c, b"k") else {
        panic!()
    };
    assert!(c.touch(b"k", 0, NOW));
    assert!(matches!(gets(&c, b"k"), Lookup::Hit((_, _, x)) if x == cas3));
    assert_eq!(c.delete(b"k", cas3 + 1, NOW), DeleteOutcome::Exists);
    assert_eq!(c.delete(b"k", cas3, NOW), DeleteOutcome::Deleted);
    assert_eq!(c.delete(b"k", 0, NOW), DeleteOutcome::NotFound);
}

#[test]
fn cas_unique_and_disabled() {
    let c = cache_with(4 * MB);
    let mut seen = std::collections::HashSet::new();
    for i in 0..1000u32 {
        let key = format!("k{}", i % 10);
        assert!(seen.insert(stored(set(&c, key.as_bytes(), b"v"))));
    }
    let c = Cache::new(CacheConfig {
        use_cas: false,
        ..CacheConfig::default()
    });
    assert_eq!(stored(set(&c, b"k", b"v")), 0);
    assert!(matches!(gets(&c, b"k"), Lookup::Hit((_, _, 0))));
    assert_eq!(
        c.store(StoreMode::Cas, b"k", 0, 0, b"w", 0, NOW),
        StoreOutcome::Exists
    );
}

#[test]
fn expiry_is_lazy_and_counted() {
    let c = cache_with(4 * MB);
    stored(c.store(StoreMode::Set, b"k", 0, NOW + 10, b"v", 0, NOW));
    stored(c.store(StoreMode::Set, b"gone", 0, 1, b"v", 0, NOW));
    assert_eq!(c.get(b"gone", NOW, None, |_| ()), Lookup::Expired);
    assert_eq!(get(&c, b"k", NOW + 9).unwrap(), b"v");
    assert_eq!(c.get(b"k", NOW + 10, None, |_| ()), Lookup::Expired);
    assert_eq!(c.get(b"k", NOW + 10, None, |_| ()), Lookup::Miss);
    let s = c.stats();
    assert_eq!(s.curr_items, 0);
    assert_eq!(s.reclaimed, 2);
    assert_eq!(s.expired_unfetched, 1);
    assert!(!c.touch(b"k", 0, NOW + 10));
}

#[test]
fn flush_immediate_and_delayed() {
    let c = cache_with(4 * MB);
    stored(set(&c, b"a", b"1"));
    c.flush_all(NOW, NOW);
    assert_eq!(c.get(b"a", NOW, None, |_| ()), Lookup::Flushed);
    stored(set(&c, b"b", b"2"));
    assert_eq!(get(&c, b"b", NOW).unwrap(), b"2");

    c.flush_all(NOW + 5, NOW);
    stored(set(&c, b"c", b"3"));
    assert_eq!(get(&c, b"b", NOW + 4).unwrap(), b"2");
    assert_eq!(c.get(b"b", NOW + 5, None, |_| ()), Lookup::Flushed);
    assert_eq!(c.get(b"c", NOW + 6, None, |_| ()), Lookup::Flushed);
    stored(c.store(StoreMode::Set, b"d", 0, 0, b"4", 0, NOW + 5));
    assert_eq!(get(&c, b"d", NOW + 6).unwrap(), b"4");
}

#[test]
fn incr_decr_edge_cases() {
    let c = cache_with(4 * MB);
    let v = |c: &Cache| get(c, b"n", NOW).unwrap();
    assert_eq!(
        c.arith(b"n", ArithOp::Incr, 1, None, 0, NOW),
        ArithOutcome::NotFound
    );
    let ArithOutcome::Value { value: 10, cas } =
        c.arith(b"n", ArithOp::Incr, 1, Some((10, 0)), 0, NOW)
    else {
        panic!()
    };
    assert_eq!(v(&c), b"10");
    assert!(matches!(
        c.arith(b"n", ArithOp::Incr, 5, None, 0, NOW),
        ArithOutcome::Value { value: 15, cas: c2 } if c2 > cas
    ));
    assert_eq!(
        c.arith(b"n", ArithOp::Incr, 1, None, 1, NOW),
        ArithOutcome::Exists
    );

    stored(set(&c, b"n", b"100"));
    assert!(matches!(
        c.arith(b"n", ArithOp::Decr, 95, None, 0, NOW),
        ArithOutcome::Value { value: 5, .. }
    ));
    assert_eq!(v(&c), b"5  ");
    assert!(matches!(
        c.arith(b"n", ArithOp::Incr, 10, None, 0, NOW),
        ArithOutcome::Value { value: 15, .. }
    ));
    assert_eq!(v(&c), b"15 ");
    assert!(matches!(
        c.arith(b"n", ArithOp::Incr, 1000, None, 0, NOW),
        ArithOutcome::Value { value: 1015, .. }
    ));
    assert_eq!(v(&c), b"1015");
    assert!(matches!(
        c.arith(b"n", ArithOp::Decr, 5000, None, 0, NOW),
        ArithOutcome::Value { value: 0, .. }
    ));
    assert_eq!(v(&c), b"0   ");

    stored(c.store(
        StoreMode::Set,
        b"n",
        42,
        NOW + 100,
        b"18446744073709551615",
        0,
        NOW,
    ));
    assert!(matches!(
        c.arith(b"n", ArithOp::Incr, 1, None, 0, NOW),
        ArithOutcome::Value { value: 0, .. }
    ));
    assert_eq!(v(&c), b"0                   ");
    stored(c.store(StoreMode::Set, b"n", 42, NOW + 100, b"99", 0, NOW));
    c.arith(b"n", ArithOp::Incr, 1, None, 0, NOW);
    let r = c.get(b"n", NOW, None, |it| {
        (it.value.to_vec(), it.flags, it.exptime)
    });
    assert_eq!(r, Lookup::Hit((b"100".to_vec(), 42, NOW + 100)));

    for bad in [&b"abc"[..], b"", b"-5", b"5x", b"18446744073709551616"] {
        stored(set(&c, b"n", bad));
        assert_eq!(
            c.arith(b"n", ArithOp::Incr, 1, None, 0, NOW),
            ArithOutcome::NonNumeric
        );
    }
    assert_eq!(c.stats().curr_items, 1);
    let long = [b'k'; 251];
    assert_eq!(
        c.arith(&long, ArithOp::Incr, 1, Some((1, 0)), 0, NOW),
        ArithOutcome::NotFound
    );
    assert_eq!(
        c.store(StoreMode::Set, &long, 0, 0, b"1", 0, NOW),
        StoreOutcome::NotStored
    );
}

#[test]
fn too_large_and_max_value() {
    let c = cache_with(4 * MB);
    let big = vec![b'x'; MB];
    assert_eq!(set(&c, b"k", &big), StoreOutcome::TooLarge);
    let max = c.max_value_len(1);
    assert!(max > MB - 64);
    stored(c.store(StoreMode::Set, b"k", 1, 0, &big[..max], 0, NOW));
    assert_eq!(get(&c, b"k", NOW).unwrap().len(), max);
    assert_eq!(
        c.store(StoreMode::Append, b"k", 0, 0, b"more", 0, NOW),
        StoreOutcome::TooLarge
    );
}

#[test]
fn eviction_keeps_newest() {
    let c = cache_with(2 * MB);
    let value = vec![b'v'; 1000];
    for i in 0..20_000u32 {
        stored(set(&c, format!("key{i}").as_bytes(), &value));
    }
    let s = c.stats();
    assert!(s.evictions > 0);
    assert!(s.total_malloced <= 2 * MB as u64);
    let hits = (19_500..20_000u32)
        .filter(|i| get(&c, format!("key{i}").as_bytes(), NOW).is_some())
        .count();
    assert!(hits >= 490, "hits {hits}");
    assert_eq!(
        s.curr_items,
        c.class_stats(NOW).iter().map(|c| c.items).sum::<u64>()
    );
}

#[test]
fn hot_keys_survive_a_scan() {
    let c = cache_with(2 * MB);
    let value = vec![b'v'; 1000];
    for i in 0..200u32 {
        stored(set(&c, format!("hot{i}").as_bytes(), &value));
    }
    for round in 0..50u32 {
        for i in 0..200u32 {
            get(&c, format!("hot{i}").as_bytes(), NOW);
        }
        for i in 0..400u32 {
            stored(set(&c, format!("scan{round}-{i}").as_bytes(), &value));
        }
    }
    let hits = (0..200u32)
        .filter(|i| get(&c, format!("hot{i}").as_bytes(), NOW).is_some())
        .count();
    assert!(hits >= 190, "hits {hits}");
}

#[test]
fn no_eviction_gives_out_of_memory() {
    let c = Cache::new(CacheConfig {
        mem_limit: 2 * MB,
        evict: false,
        ..CacheConfig::default()
    });
    let value = vec![b'v'; 1000];
    let mut oom = false;
    for i in 0..5_000u32 {
        match set(&c, format!("key{i}").as_bytes(), &value) {
            StoreOutcome::Stored { .. } => {}
            StoreOutcome::OutOfMemory => {
                oom = true;
                break;
            }
            o => panic!("{o:?}"),
        }
    }
    assert!(oom);
    assert_eq!(get(&c, b"key0", NOW).unwrap(), value);
    assert_eq!(c.stats().evictions, 0);
    assert!(c.class_stats(NOW).iter().any(|s| s.outofmemory > 0));
}

#[test]
fn stats_follow_deletes() {
    let c = cache_with(4 * MB);
    for i in 0..10u32 {
        stored(set(&c, format!("k{i}").as_bytes(), b"0123456789"));
    }
    let s = c.stats();
    assert_eq!((s.curr_items, s.total_items), (10, 10));
    assert_eq!(s.bytes, 10 * item::item_size(2, 10, 0) as u64);
    for i in 0..3u32 {
        assert_eq!(
            c.delete(format!("k{i}").as_bytes(), 0, NOW),
            DeleteOutcome::Deleted
        );
    }
    let s = c.stats();
    assert_eq!(s.curr_items, 7);
    assert_eq!(s.bytes, 7 * item::item_size(2, 10, 0) as u64);
    let cs = c.class_stats(NOW);
    assert_eq!(cs.len(), 1);
    assert_eq!(cs[0].used_chunks, 7);
    assert_eq!(cs[0].total_chunks, cs[0].used_chunks + cs[0].free_chunks);
    assert!(s.hash_bytes > 0);
    c.reset_stats();
    assert_eq!(c.stats().total_items, 0);
    assert_eq!(c.stats().curr_items, 7);
}

#[test]
fn crawler_leaves_just_expired_items_to_readers() {
    let c = cache_with(8 * MB);
    stored(c.store(StoreMode::Set, b"k", 0, NOW + 1, b"v", 0, NOW));
    while c.maintain(NOW + 2) {}
    assert_eq!(c.stats().crawler_reclaimed, 0);
    assert_eq!(c.get(b"k", NOW + 2, None, |_| ()), Lookup::Expired);
    stored(c.store(StoreMode::Set, b"j", 0, NOW + 1, b"v", 0, NOW));
    while c.maintain(NOW + 3) {}
    assert_eq!(c.stats().crawler_reclaimed, 1);
}

#[test]
fn crawler_reclaims_in_background() {
    let c = cache_with(8 * MB);
    for i in 0..5000u32 {
        let exp = if i % 2 == 0 { NOW + 10 } else { 0 };
        stored(c.store(
            StoreMode::Set,
            format!("k{i}").as_bytes(),
            0,
            exp,
            b"v",
            0,
            NOW,
        ));
    }
    let mut rounds = 0;
    while c.maintain(NOW + 20) {
        rounds += 1;
        assert!(rounds < 1000);
    }
    c.maintain(NOW + 20);
    let s = c.stats();
    assert_eq!(s.curr_items, 2500);
    assert_eq!(s.crawler_reclaimed, 2500);
    // a flush is swept too
    c.flush_all(NOW + 20, NOW + 20);
    while c.maintain(NOW + 20) {}
    assert_eq!(c.stats().curr_items, 0);
}

#[test]
fn pages_move_when_sizes_shift() {
    let big = vec![b'b'; 10 * 1024];
    let n = 20_000u32;
    // About what a fresh 64 MB cache holds of these.
    let probe = 6_000u32;
    let recent_ratio = |c: &Cache| {
        for j in 0..n {
            stored(set(c, format!("big{j}").as_bytes(), &big));
        }
        let hits = (n - probe..n)
            .filter(|j| get(c, format!("big{j}").as_bytes(), NOW).is_some())
            .count();
        hits as f64 / probe as f64
    };
    let fresh = recent_ratio(&cache_with(64 * MB));

    let c = cache_with(64 * MB);
    let small = vec![b's'; 100];
    let mut i = 0u32;
    while i % 1024 != 0 || c.stats().evictions == 0 {
        stored(set(&c, format!("small{i}").as_bytes(), &small));
        i += 1;
    }
    let shifted = recent_ratio(&c);
    eprintln!("recent 10 KB hit ratio: fresh {fresh}, after the shift {shifted}");
    assert!(shifted >= fresh - 0.05, "fresh {fresh}, shifted {shifted}");
    assert!(c.stats().slabs_moved > 0);
}

#[test]
fn read_hot_class_keeps_its_pages() {
    let c = cache_with(8 * MB);
    let small = vec![b's'; 100];
    let hot = 25_000u32;
    for i in 0..hot {
        stored(set(&c, format!("hot{i}").as_bytes(), &small));
    }
    // Large values churn (never read) while the small ones are read.
    let big = vec![b'b'; 4000];
    for round in 0..20u32 {
        for i in 0..hot {
            get(&c, format!("hot{i}").as_bytes(), NOW);
        }
        for j in 0..500u32 {
            stored(set(&c, format!("big{round}-{j}").as_bytes(), &big));
        }
    }
    let hits = (0..hot)
        .filter(|i| get(&c, format!("hot{i}").as_bytes(), NOW).is_some())
        .count();
    assert!(hits as f64 > 0.9 * hot as f64, "hits {hits}");
}

#[test]
fn set_mem_limit_raises_pages() {
    let c = cache_with(2 * MB);
    let value = vec![b'v'; 1000];
    for i in 0..5000u32 {
        stored(set(&c, format!("key{i}").as_bytes(), &value));
    }
    assert_eq!(c.stats().total_malloced, 2 * MB as u64);
    c.set_mem_limit(8 * MB);
    for i in 0..5000u32 {
        stored(set(&c, format!("more{i}").as_bytes(), &value));
    }
    assert!(c.stats().total_malloced > 2 * MB as u64);
}

#[test]
fn concurrent_incr_and_cas_are_exact() {
    let c = Arc::new(cache_with(8 * MB));
    stored(set(&c, b"ctr", b"0"));
    stored(set(&c, b"casctr", b"0"));
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                for _ in 0..2000 {
                    assert!(matches!(
                        c.arith(b"ctr", ArithOp::Incr, 1, None, 0, NOW),
                        ArithOutcome::Value { .. }
                    ));
                }
                let mut done = 0;
                while done < 500 {
                    let Lookup::Hit((v, _, cas)) = gets(&c, b"casctr") else {
                        panic!()
                    };
                    let n: u64 = std::str::from_utf8(&v).unwrap().trim().parse().unwrap();
                    let new = (n + 1).to_string();
                    match c.store(StoreMode::Cas, b"casctr", 0, 0, new.as_bytes(), cas, NOW) {
                        StoreOutcome::Stored { .. } => done += 1,
                        StoreOutcome::Exists => {}
                        o => panic!("{o:?}"),
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(get(&c, b"ctr", NOW).unwrap(), b"8000");
    assert_eq!(get(&c, b"casctr", NOW).unwrap(), b"2000");
}

#[test]
fn concurrent_churn_under_pressure() {
    let c = Arc::new(cache_with(16 * MB));
    let threads: Vec<_> = (0..4u32)
        .map(|t| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                let mut x = t as u64 * 7919 + 1;
                for _ in 0..30_000 {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let key = format!("k{}", x % 5000);
                    let len = [10usize, 300, 3000, 30_000][(x >> 20) as usize % 4];
                    let fill = (x % 251) as u8;
                    match (x >> 32) % 8 {
                        0 => {
                            c.delete(key.as_bytes(), 0, NOW);
                        }
                        1 => {
                            c.store(StoreMode::Append, key.as_bytes(), 0, 0, &[fill; 7], 0, NOW);
                        }
                        2 => match x % 7 {
                            0 => {
                                c.maintain(NOW + (x % 3) as u32);
                            }
                            1 => {
                                c.arith(key.as_bytes(), ArithOp::Incr, 1, Some((1, 0)), 0, NOW);
                            }
                            2 if x % 1009 == 0 => c.flush_all(NOW, NOW),
                            _ => {
                                let exp = NOW + (x % 3) as u32;
                                c.store(StoreMode::Add, key.as_bytes(), 1, exp, b"a", 0, NOW);
                            }
                        },
                        3 | 4 => {
                            let value = vec![fill; len];
                            let o = c.store(StoreMode::Set, key.as_bytes(), 0, 0, &value, 0, NOW);
                            assert!(matches!(o, StoreOutcome::Stored { .. }), "{o:?}");
                        }
                        _ => {
                            c.get(key.as_bytes(), NOW, None, |it| {
                                assert!(it.key == key.as_bytes());
                            });
                        }
                    }
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let (_, linked) = c.slabs.check();
    let s = c.stats();
    assert_eq!(linked, s.curr_items);
    let per_class: u64 = c.class_stats(NOW).iter().map(|c| c.items).sum();
    assert_eq!(s.curr_items, per_class);
    assert!(s.total_malloced <= 16 * MB as u64);
    let used: u64 = c.class_stats(NOW).iter().map(|c| c.used_chunks).sum();
    assert_eq!(used, s.curr_items);
}

/// Zipf(0.99) get-or-set traffic: prints our hit ratio next to an exact LRU
/// holding the same number of items. Run with `--ignored --nocapture`.
#[test]
#[ignore]
fn zipf_hit_ratio_against_lru() {
    use std::collections::{BTreeMap, HashMap};
    let n = 1_000_000usize;
    let mut cdf = Vec::with_capacity(n);
    let mut sum = 0.0;
    for i in 1..=n {
        sum += 1.0 / (i as f64).powf(0.99);
        cdf.push(sum);
    }
    let mut x = 88172645463325252u64;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let u = (x >> 11) as f64 / (1u64 << 53) as f64 * sum;
        cdf.partition_point(|&c| c < u)
    };
    let reqs = 4_000_000;
    let c = cache_with(32 * MB);
    let value = vec![b'v'; 100];
    let (mut hits, mut total) = (0u64, 0u64);
    let trace: Vec<usize> = (0..reqs).map(|_| next()).collect();
    for (i, &k) in trace.iter().enumerate() {
        let key = format!("key:{k}");
        let hit = get(&c, key.as_bytes(), NOW).is_some();
        if !hit {
            set(&c, key.as_bytes(), &value);
        }
        if i >= reqs / 2 {
            total += 1;
            hits += hit as u64;
        }
    }
    let items = c.stats().curr_items as usize;
    let mut lru: HashMap<usize, u64> = HashMap::new();
    let mut order: BTreeMap<u64, usize> = BTreeMap::new();
    let (mut lhits, mut ltotal) = (0u64, 0u64);
    for (i, &k) in trace.iter().enumerate() {
        let t = i as u64;
        let hit = if let Some(old) = lru.insert(k, t) {
            order.remove(&old);
            true
        } else {
            false
        };
        order.insert(t, k);
        if lru.len() > items {
            let (_, victim) = order.pop_first().unwrap();
            lru.remove(&victim);
        }
        if i >= reqs / 2 {
            ltotal += 1;
            lhits += hit as u64;
        }
    }
    eprintln!(
        "items {items}: ours {:.4}, LRU {:.4}",
        hits as f64 / total as f64,
        lhits as f64 / ltotal as f64
    );
}

#[test]
fn cache_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Cache>();
}

/// Rough per-operation timings (best of several batches, to see through a
/// busy machine). Run in release with `--ignored --nocapture`.
#[test]
#[ignore]
fn op_timings() {
    use std::time::Instant;
    let c = cache_with(64 * MB);
    let n = 100_000usize;
    let keys: Vec<Vec<u8>> = (0..n).map(|i| format!("key:{i:08}").into_bytes()).collect();
    let value = [b'v'; 100];
    for k in &keys {
        set(&c, k, &value);
    }
    let best = |f: &mut dyn FnMut(usize)| {
        let mut best = f64::MAX;
        for round in 0..20 {
            let t = Instant::now();
            for i in 0..50_000 {
                f((i * 7919 + round * 13) % n);
            }
            best = best.min(t.elapsed().as_nanos() as f64 / 50_000.0);
        }
        best
    };
    let hit = best(&mut |i| {
        assert!(matches!(
            c.get(&keys[i], NOW, None, |it| it.value.len()),
            Lookup::Hit(100)
        ));
    });
    let miss = best(&mut |i| {
        c.get(&keys[i][..7], NOW, None, |it| it.value.len());
    });
    let store = best(&mut |i| {
        set(&c, &keys[i], &value);
    });
    eprintln!("get hit {hit:.0} ns, get miss {miss:.0} ns, set {store:.0} ns");
    let s = c.stats();
    eprintln!(
        "{} items, {} hash bytes per item, power {}",
        s.curr_items,
        s.hash_bytes as f64 / s.curr_items as f64,
        s.hash_power_level
    );
}

#[test]
fn overwrite_in_place_keeps_accounting() {
    let c = cache_with(4 * MB);
    let cas1 = stored(c.store(StoreMode::Set, b"k", 5, 0, &[b'x'; 100], 0, NOW));
    get(&c, b"k", NOW);
    let cas2 = stored(c.store(StoreMode::Set, b"k", 6, NOW + 9, &[b'y'; 90], 0, NOW + 1));
    assert!(cas2 > cas1);
    let r = c.get(b"k", NOW + 2, None, |it| {
        (
            it.value.to_vec(),
            it.flags,
            it.exptime,
            it.fetched,
            it.last_access,
        )
    });
    assert_eq!(r, Lookup::Hit((vec![b'y'; 90], 6, NOW + 9, false, NOW + 1)));
    let s = c.stats();
    assert_eq!((s.curr_items, s.total_items), (1, 2));
    assert_eq!(s.bytes, item::item_size(1, 90, 6) as u64);
    // flags presence changes: a new chunk, same accounting
    stored(c.store(StoreMode::Replace, b"k", 0, 0, &[b'z'; 90], 0, NOW));
    let s = c.stats();
    assert_eq!(
        (s.curr_items, s.bytes),
        (1, item::item_size(1, 90, 0) as u64)
    );
    assert_eq!(c.class_stats(NOW)[0].used_chunks, 1);
}

#[test]
fn metadump_resumes_where_it_paused_and_lists_each_live_item_once() {
    let c = cache_with(4 * MB);
    let keys: Vec<String> = (0..300).map(|i| format!("key{i}")).collect();
    for (i, k) in keys.iter().enumerate() {
        // Two classes: small values and 3 KB ones.
        let value = vec![b'v'; if i % 2 == 0 { 2 } else { 3000 }];
        stored(c.store(StoreMode::Set, k.as_bytes(), 0, 0, &value, 0, NOW));
    }
    stored(c.store(StoreMode::Set, b"gone", 0, NOW + 1, b"vv", 0, NOW));
    // Stop after every item, as a full output queue would, and resume.
    let mut seen = Vec::new();
    let mut classes = std::collections::HashSet::new();
    let mut from = 0;
    while let Some(next) = c.metadump(
        |_| true,
        from,
        NOW + 5,
        |item| {
            seen.push(String::from_utf8(item.key.to_vec()).unwrap());
            classes.insert(item.class);
            assert_eq!(item.exptime, 0);
            assert!(!item.fetched && item.cas > 0 && item.size > item.key.len());
            false
        },
    ) {
        assert!(next > from);
        from = next;
    }
    seen.sort();
    let mut want = keys.clone();
    want.sort();
    assert_eq!(seen, want);
    assert_eq!(classes.len(), 2);
    // Only the classes asked for.
    let small = *classes.iter().min().unwrap();
    let mut n = 0;
    assert_eq!(
        c.metadump(
            |id| id == small,
            0,
            NOW + 5,
            |item| {
                assert_eq!(item.class, small);
                n += 1;
                true
            }
        ),
        None
    );
    assert_eq!(n, 150);
}

#[test]
fn dump_lists_live_items_of_a_class() {
    let c = cache_with(4 * MB);
    for k in ["a", "b", "c"] {
        stored(c.store(StoreMode::Set, k.as_bytes(), 0, 0, b"vv", 0, NOW));
    }
    stored(c.store(StoreMode::Set, b"gone", 0, NOW + 1, b"vv", 0, NOW));
    let class = c
        .class_stats(NOW)
        .into_iter()
        .find(|s| s.items > 0)
        .unwrap()
        .id;
    let mut keys = Vec::new();
    let n = c.dump_class(class, 0, NOW + 5, |item| {
        assert_eq!(item.value_len, 2);
        keys.push(item.key.to_vec());
        true
    });
    keys.sort();
    assert_eq!(n, 3);
    assert_eq!(keys, vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]);
    assert_eq!(c.dump_class(class, 2, NOW + 5, |_| true), 2);
    assert_eq!(c.dump_class(class, 0, NOW + 5, |_| false), 1);
    assert_eq!(c.dump_class(63, 0, NOW, |_| true), 0);
    assert!(c.is_class_id(63) && !c.is_class_id(200));
    // Every class that exists can be listed, also beyond memcached's 63.
    let last = c.slabs.classes.len() as u32;
    assert!(last > 63 && c.is_class_id(last) && !c.is_class_id(last + 1));
}
