//! Text codec micro-benchmarks: parsing the common requests and encoding the
//! common replies. Run with `cargo bench --bench text_parser`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrocache::protocol::response::StatValue;
use ferrocache::protocol::{text, Limits, Parsed, Response};

/// Parses every request in `buf`, as a connection draining its read buffer
/// would, and returns how many there were.
fn drain(buf: &[u8], limits: &Limits) -> usize {
    let mut rest = buf;
    let mut n = 0;
    while let Parsed::Request { request, consumed } = text::parse(rest, limits) {
        black_box(request);
        rest = &rest[consumed..];
        n += 1;
    }
    n
}

fn parse(c: &mut Criterion) {
    let limits = Limits::default();
    let multiget: Vec<u8> = {
        let mut line = b"get".to_vec();
        for i in 0..100 {
            line.extend_from_slice(format!(" user:profile:{i:06}").as_bytes());
        }
        line.extend_from_slice(b"\r\n");
        line
    };
    let set_100: Vec<u8> = [
        &b"set user:profile:000042 0 3600 100\r\n"[..],
        &[b'v'; 100],
        b"\r\n",
    ]
    .concat();
    let set_16k: Vec<u8> = [&b"set blob 0 0 16384\r\n"[..], &[b'v'; 16384], b"\r\n"].concat();
    let pipeline: Vec<u8> = (0..100)
        .flat_map(|i| {
            format!("get key:{i}\r\nset key:{i} 0 0 5 noreply\r\nvalue\r\nincr hits:{i} 1\r\n")
                .into_bytes()
        })
        .collect();

    let mut group = c.benchmark_group("text_parse");
    let cases: [(&str, &[u8]); 5] = [
        ("get_1_key", b"get user:profile:000042\r\n"),
        ("get_100_keys", &multiget),
        ("set_100B", &set_100),
        ("set_16KiB", &set_16k),
        ("pipeline_300", &pipeline),
    ];
    for (name, buf) in cases {
        group.throughput(Throughput::Bytes(buf.len() as u64));
        group.bench_function(name, |b| b.iter(|| drain(black_box(buf), &limits)));
    }
    // The worst honest case: a multiget line still arriving, rescanned on
    // every read.
    let partial = &multiget[..multiget.len() - 2];
    group.throughput(Throughput::Bytes(partial.len() as u64));
    group.bench_function("get_100_keys_incomplete", |b| {
        b.iter(|| text::parse(black_box(partial), &limits))
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let data = [b'v'; 100];
    let value = Response::Value {
        key: b"user:profile:000042",
        flags: 0,
        cas: Some(1_234_567),
        data: &data,
    };
    let stats: Vec<Response<'_>> = (0..50u64)
        .map(|i| Response::Stat {
            name: "get_hits",
            value: StatValue::U64(i * 1_000_003),
        })
        .collect();
    let mut out = Vec::with_capacity(64 * 1024);

    let mut group = c.benchmark_group("text_encode");
    group.bench_function("value_100B", |b| {
        b.iter(|| {
            out.clear();
            text::encode(black_box(&value), &mut out);
            text::encode(&Response::End, &mut out);
        })
    });
    group.bench_function("stats_50", |b| {
        b.iter(|| {
            out.clear();
            for stat in &stats {
                text::encode(black_box(stat), &mut out);
            }
        })
    });
    group.bench_function("number", |b| {
        b.iter(|| {
            out.clear();
            text::encode(&Response::Number(black_box(18_446_744_073_709)), &mut out);
        })
    });
    group.finish();
}

criterion_group!(benches, parse, encode);
criterion_main!(benches);
