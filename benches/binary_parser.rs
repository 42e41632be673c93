//! Binary codec micro-benchmarks: parsing the common frames and encoding the
//! common replies. Run with `cargo bench --bench binary_parser`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrocache::protocol::binary::{self, Frame, Reply};
use ferrocache::protocol::{Limits, Response};

fn frame(op: u8, key: &[u8], extras: &[u8], value: &[u8]) -> Vec<u8> {
    let body = extras.len() + key.len() + value.len();
    let mut v = vec![0x80, op];
    v.extend_from_slice(&(key.len() as u16).to_be_bytes());
    v.push(extras.len() as u8);
    v.extend_from_slice(&[0, 0, 0]);
    v.extend_from_slice(&(body as u32).to_be_bytes());
    v.extend_from_slice(&[0; 12]);
    v.extend_from_slice(extras);
    v.extend_from_slice(key);
    v.extend_from_slice(value);
    v
}

fn drain(buf: &[u8], limits: &Limits) -> usize {
    let mut rest = buf;
    let mut n = 0;
    while let Frame::Request {
        request, consumed, ..
    } = binary::parse(rest, limits)
    {
        black_box(request);
        rest = &rest[consumed..];
        n += 1;
    }
    n
}

fn parse(c: &mut Criterion) {
    let limits = Limits::default();
    let get = frame(0x00, b"user:profile:000042", b"", b"");
    let set_100 = frame(0x01, b"user:profile:000042", &[0; 8], &[b'v'; 100]);
    let pipeline: Vec<u8> = (0..100)
        .flat_map(|i| {
            let key = format!("key:{i}");
            [
                frame(0x0d, key.as_bytes(), b"", b""),
                frame(0x11, key.as_bytes(), &[0; 8], b"value"),
            ]
            .concat()
        })
        .chain(frame(0x0a, b"", b"", b""))
        .collect();
    let mut group = c.benchmark_group("binary_parse");
    for (name, buf) in [
        ("get", &get),
        ("set_100", &set_100),
        ("pipeline_201", &pipeline),
    ] {
        group.throughput(Throughput::Bytes(buf.len() as u64));
        group.bench_function(name, |b| b.iter(|| drain(black_box(buf), &limits)));
    }
    group.finish();
}

fn encode(c: &mut Criterion) {
    let get = frame(0x0c, b"user:profile:000042", b"", b"");
    let Frame::Request {
        header, request, ..
    } = binary::parse(&get, &Limits::default())
    else {
        unreachable!()
    };
    let value = [b'v'; 100];
    let mut out = Vec::with_capacity(4096);
    c.bench_function("binary_encode_getk_hit_100", |b| {
        b.iter(|| {
            out.clear();
            let mut reply = Reply::new(header, &request);
            reply.encode(
                &Response::Value {
                    key: b"user:profile:000042",
                    flags: 0,
                    cas: Some(42),
                    data: &value,
                },
                &mut out,
            );
            black_box(&out);
        })
    });
}

criterion_group!(benches, parse, encode);
criterion_main!(benches);
