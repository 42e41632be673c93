//! Key placement cost on small and large rings.
//!
//! `lookup` is MD5 of the key plus a binary search; `lookup_hash` isolates the search, which
//! grows with log2 of the point count (480 points for 3 servers, 16,000 for 100).

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use ferrocache_client::{key_hash, Naming, Ring, Server};

fn ring(servers: u16) -> Ring {
    let list: Vec<Server> = (0..servers)
        .map(|i| Server::new(format!("10.0.{}.{}", i / 250, i % 250 + 1), 11211))
        .collect();
    Ring::new(&list, Naming::Libmemcached).unwrap()
}

fn keys() -> Vec<String> {
    (0..1024).map(|i| format!("session:{i:08}")).collect()
}

fn lookup(c: &mut Criterion) {
    let keys = keys();
    let hashes: Vec<u32> = keys.iter().map(key_hash).collect();
    let mut group = c.benchmark_group("ring");
    for servers in [3, 100] {
        let ring = ring(servers);
        group.bench_with_input(BenchmarkId::new("lookup", servers), &ring, |b, ring| {
            let mut i = 0;
            b.iter(|| {
                i = (i + 1) % keys.len();
                ring.lookup(black_box(keys[i].as_bytes()))
            })
        });
        group.bench_with_input(
            BenchmarkId::new("lookup_hash", servers),
            &ring,
            |b, ring| {
                let mut i = 0;
                b.iter(|| {
                    i = (i + 1) % hashes.len();
                    ring.lookup_hash(black_box(hashes[i]))
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, lookup);
criterion_main!(benches);
