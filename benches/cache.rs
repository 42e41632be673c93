//! Micro-benchmarks of the item store: get hit and miss, set over an
//! existing key, and set of a new key into a full cache (evicting).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use ferrocache::storage::{Cache, CacheConfig, Lookup, MetaStoreOpts, StoreMode};

const KEYS: usize = 100_000;
const NOW: u32 = 100;

fn keys() -> Vec<Vec<u8>> {
    (0..KEYS)
        .map(|i| format!("key:{i:08}").into_bytes())
        .collect()
}

fn filled() -> (Cache, Vec<Vec<u8>>) {
    let cache = Cache::new(CacheConfig::default());
    let keys = keys();
    let value = [b'v'; 100];
    for k in &keys {
        cache.store(StoreMode::Set, k, 0, 0, &value, 0, NOW);
    }
    (cache, keys)
}

fn bench(c: &mut Criterion) {
    let (cache, keys) = filled();
    let mut i = 0;
    c.bench_function("get_hit", |b| {
        b.iter(|| {
            i = (i + 7919) % KEYS;
            let r = cache.get(&keys[i], NOW, None, |it| it.value.len());
            assert!(matches!(r, Lookup::Hit(_)));
            black_box(r)
        })
    });
    let missing: Vec<Vec<u8>> = (0..KEYS)
        .map(|i| format!("nokey:{i:08}").into_bytes())
        .collect();
    c.bench_function("get_miss", |b| {
        b.iter(|| {
            i = (i + 7919) % KEYS;
            black_box(cache.get(&missing[i], NOW, None, |it| it.value.len()))
        })
    });
    let value = [b'w'; 100];
    c.bench_function("set_overwrite", |b| {
        b.iter(|| {
            i = (i + 7919) % KEYS;
            black_box(cache.store(StoreMode::Set, &keys[i], 0, 0, &value, 0, NOW))
        })
    });

    // The set miss path: a key not in the cache, in a full cache, so every
    // store allocates by evicting (S3-FIFO small queue or CLOCK).
    let small = Cache::new(CacheConfig {
        mem_limit: 4 * 1024 * 1024,
        ..CacheConfig::default()
    });
    let fresh: Vec<Vec<u8>> = (0..4 * KEYS)
        .map(|i| format!("fresh:{i:08}").into_bytes())
        .collect();
    for k in &fresh {
        small.store(StoreMode::Set, k, 0, 0, &value, 0, NOW);
    }
    let mut j = 0;
    c.bench_function("set_new_evicting", |b| {
        b.iter(|| {
            j = (j + 1) % fresh.len();
            black_box(small.store(StoreMode::Set, &fresh[j], 0, 0, &value, 0, NOW))
        })
    });
    let opts = MetaStoreOpts::default();
    c.bench_function("set_ms_overwrite", |b| {
        b.iter(|| {
            i = (i + 7919) % KEYS;
            black_box(cache.meta_store(StoreMode::Set, &keys[i], 0, 0, &value, 0, NOW, &opts))
        })
    });
    c.bench_function("set_ms_new_evicting", |b| {
        b.iter(|| {
            j = (j + 1) % fresh.len();
            black_box(small.meta_store(StoreMode::Set, &fresh[j], 0, 0, &value, 0, NOW, &opts))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
