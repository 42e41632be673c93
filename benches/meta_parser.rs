//! Meta codec micro-benchmarks: parsing typical meta requests (through the
//! shared line framing, as a connection does) and encoding typical replies.
//! Run with `cargo bench --bench meta_parser`.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ferrocache::protocol::meta::{
    self, MetaCmd, MetaFlags, MetaItemInfo, MetaKey, MetaReply, MetaStatus,
};
use ferrocache::protocol::{text, Limits, Parsed, Request};

/// Parses every request in `buf` and returns how many there were.
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
    let ms_100: Vec<u8> = [
        &b"ms user:profile:000042 100 T3600 F0 c\r\n"[..],
        &[b'v'; 100],
        b"\r\n",
    ]
    .concat();
    // A quiet multiget: one mg per key, then mn.
    let quiet_100: Vec<u8> = (0..100)
        .flat_map(|i| format!("mg user:profile:{i:06} v f c k q\r\n").into_bytes())
        .chain(b"mn\r\n".iter().copied())
        .collect();
    let mixed: Vec<u8> = (0..100)
        .flat_map(|i| {
            format!("mg key:{i} v t R30\r\nms key:{i} 5 T60 q\r\nvalue\r\nma hits:{i} N0 J1 v\r\n")
                .into_bytes()
        })
        .collect();

    let mut group = c.benchmark_group("meta_parse");
    let cases: [(&str, &[u8]); 6] = [
        ("mg_value", b"mg user:profile:000042 v\r\n"),
        (
            "mg_all_flags",
            b"mg user:profile:000042 s v f t c k h l O123 q\r\n",
        ),
        ("mg_base64", b"mg dXNlcjpwcm9maWxlOjAwMDA0Mg== b v k\r\n"),
        ("ms_100B", &ms_100),
        ("quiet_mg_100", &quiet_100),
        ("pipeline_300", &mixed),
    ];
    for (name, buf) in cases {
        group.throughput(Throughput::Bytes(buf.len() as u64));
        group.bench_function(name, |b| b.iter(|| drain(black_box(buf), &limits)));
    }
    // Reading flag values back from a parsed request.
    let Parsed::Request {
        request: Request::MetaArith { flags, .. },
        ..
    } = text::parse(b"ma counter N30 J10 D5 MD T60 C99 q\r\n", &limits)
    else {
        unreachable!("a valid ma line")
    };
    group.throughput(Throughput::Elements(1));
    group.bench_function("flag_values", |b| {
        b.iter(|| {
            let f = black_box(&flags);
            (
                f.vivify(),
                f.initial(),
                f.delta(),
                f.ttl(),
                f.compare_cas(),
                f.decrement(),
            )
        })
    });
    group.finish();
}

fn encode(c: &mut Criterion) {
    let limits = Limits::default();
    let line = b"mg user:profile:000042 s v f t c k h l O123\r\n";
    let (key, flags): (MetaKey<'_>, MetaFlags<'_>) = match text::parse(line, &limits) {
        Parsed::Request {
            request: Request::MetaGet { key, flags },
            ..
        } => (key, flags),
        _ => unreachable!("a valid mg line"),
    };
    let data = [b'v'; 100];
    let reply = MetaReply {
        cmd: MetaCmd::Get,
        status: MetaStatus::Value,
        flags: &flags,
        key,
        item: MetaItemInfo {
            cas: 1_234_567,
            client_flags: 0,
            size: data.len(),
            hit_before: true,
            last_access: 12,
            ttl: 3_599,
            ttl_touched: 3_599,
            ttl_vivified: None,
        },
        value: &data,
        won: false,
        stale: false,
        win_sent: false,
    };
    let mut out = Vec::with_capacity(64 * 1024);
    let mut group = c.benchmark_group("meta_encode");
    group.bench_function("va_all_flags_100B", |b| {
        b.iter(|| {
            out.clear();
            meta::encode(black_box(&reply), &mut out);
        })
    });
    let hd = MetaReply {
        status: MetaStatus::Stored,
        value: &[],
        ..reply
    };
    group.bench_function("hd_all_flags", |b| {
        b.iter(|| {
            out.clear();
            meta::encode(black_box(&hd), &mut out);
        })
    });
    group.finish();
}

criterion_group!(benches, parse, encode);
criterion_main!(benches);
