//! Memory bound under sustained writes: start a server with `-m 64`, write
//! many gigabytes of values of shifting sizes through it (so every slab class
//! fills, evicts and gives pages to others) and sample its resident memory.
//! Runs ferrocache and memcached one after the other with the same load.
//!
//! `cargo bench --bench memory_bound` (GB written per server: env
//! `MEMORY_BOUND_GB`, default 10; servers: `MEMORY_BOUND_SERVERS`, default
//! `ferrocache,memcached`).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use support::Proc;

const WRITERS: usize = 4;
/// Value sizes cycled through in phases, smallest to largest and back, so
/// memory has to move between classes several times.
const SIZES: &[usize] = &[
    100, 1_000, 10_000, 100_000, 500_000, 100, 3_000, 30_000, 200, 64_000,
];

fn write_load(addr: std::net::SocketAddr, total: u64, writer: usize) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_nodelay(true).unwrap();
    let per_phase = total / SIZES.len() as u64;
    let mut buf = Vec::with_capacity(1 << 20);
    let mut n: u64 = 0;
    for (phase, &size) in SIZES.iter().enumerate() {
        let value = vec![b'a' + (phase as u8 % 26); size];
        let mut written = 0u64;
        while written < per_phase {
            buf.clear();
            while buf.len() < 256 * 1024 && written < per_phase {
                n += 1;
                let _ = write!(
                    buf,
                    "set w{writer}:{phase}:{} 0 0 {size} noreply\r\n",
                    n % 2_000_000
                );
                buf.extend_from_slice(&value);
                buf.extend_from_slice(b"\r\n");
                written += size as u64;
            }
            s.write_all(&buf).unwrap();
        }
    }
    // A reply proves every earlier set was read.
    s.write_all(b"version\r\n").unwrap();
    let mut r = [0u8; 64];
    let _ = s.read(&mut r).unwrap();
}

fn measure(p: &Proc, gb: f64) -> (u64, u64, f64) {
    let total = (gb * (1u64 << 30) as f64) as u64;
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let pid = p.pid();
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(support::rss_of(pid), Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(50));
            }
        })
    };
    let start = Instant::now();
    let writers: Vec<_> = (0..WRITERS)
        .map(|w| {
            let addr = p.addr;
            std::thread::spawn(move || write_load(addr, total / WRITERS as u64, w))
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    sampler.join().unwrap();
    let end = p.rss();
    (peak.load(Ordering::Relaxed).max(end), end, secs)
}

fn main() {
    // `cargo bench` passes --bench; nothing else is taken from argv.
    let gb: f64 = std::env::var("MEMORY_BOUND_GB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10.0);
    let servers =
        std::env::var("MEMORY_BOUND_SERVERS").unwrap_or_else(|_| "ferrocache,memcached".into());
    println!("memory bound: -m 64 -t 2, {gb} GB of values in {WRITERS} pipelined writers");
    println!(
        "{:<12} {:>12} {:>12} {:>10} {:>10}",
        "server", "peak RSS MB", "end RSS MB", "seconds", "GB/s"
    );
    for name in servers.split(',') {
        let p = match name {
            "ferrocache" => support::ferrocache(&["-m", "64", "-t", "2"]),
            "memcached" => support::memcached(&["-m", "64", "-t", "2"]),
            other => panic!("unknown server {other}"),
        };
        let (peak, end, secs) = measure(&p, gb);
        if std::env::var_os("MEMORY_BOUND_STATS").is_some() {
            // Where the memory outside the pages went, for a closer look.
            for (k, v) in support::loadgen::stats(p.addr).unwrap_or_default() {
                if ["curr_items", "hash_bytes", "total_malloced", "evictions"].contains(&k.as_str())
                {
                    println!("  {k} {v}");
                }
            }
        }
        let mb = |b: u64| b as f64 / (1 << 20) as f64;
        println!(
            "{:<12} {:>12.1} {:>12.1} {:>10.1} {:>10.2}",
            p.name,
            mb(peak),
            mb(end),
            secs,
            gb / secs
        );
    }
}
