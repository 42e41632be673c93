//! Command-line front end of the load generator (`benches/support/loadgen.rs`).
//!
//! ```text
//! cargo bench --bench loadgen -- --addr 127.0.0.1:11211 --conns 50 --pipeline 16
//! cargo bench --bench loadgen -- --server both --dist zipf:0.99 --set-ratio 0
//! ```
//!
//! `--server ferrocache|memcached|both` starts the server(s) itself (equal
//! `-t`, `-m`, `-c`); `--addr` drives a running one. Exits non-zero when a
//! reply is wrong.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use clap::Parser;
use support::loadgen::{self, KeyDist, Load, Protocol, Stop, ValueSize};

#[derive(Parser, Debug)]
#[command(about = "memcached load generator that checks every reply")]
struct Args {
    /// Server to drive (host:port); or use --server.
    #[arg(long)]
    addr: Option<SocketAddr>,
    /// Start and drive ferrocache, memcached, or both one after the other.
    #[arg(long)]
    server: Option<String>,
    /// Server threads (-t) when starting servers.
    #[arg(long, default_value_t = 2)]
    server_threads: usize,
    /// Server memory in MB (-m) when starting servers.
    #[arg(long, default_value_t = 1024)]
    server_mem: usize,
    /// Server connection limit (-c) when starting servers.
    #[arg(long, default_value_t = 8192)]
    server_conns: usize,
    /// Load generator threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
    /// Connections (shared out over the threads).
    #[arg(long, default_value_t = 50)]
    conns: usize,
    /// Requests in flight per connection.
    #[arg(long, default_value_t = 1)]
    pipeline: usize,
    /// Sets per get, as sets:gets (e.g. 1:9).
    #[arg(long, default_value = "1:9")]
    set_ratio: String,
    /// Number of distinct keys.
    #[arg(long, default_value_t = 100_000)]
    keys: u64,
    /// First key id (keys are key_base..key_base+keys).
    #[arg(long, default_value_t = 0)]
    key_base: u64,
    /// Key length in bytes.
    #[arg(long, default_value_t = 32)]
    key_len: usize,
    /// uniform | zipf:<skew>
    #[arg(long, default_value = "uniform")]
    dist: KeyDist,
    /// N | uniform:lo-hi | loguniform:lo-hi (bytes)
    #[arg(long, default_value = "100")]
    value_size: ValueSize,
    /// Keys per get.
    #[arg(long, default_value_t = 1)]
    multiget: usize,
    /// Set every key a get missed.
    #[arg(long)]
    fill_on_miss: bool,
    /// Store every key once before the measured run.
    #[arg(long)]
    preload: bool,
    /// text (meta and binary: extension point)
    #[arg(long, default_value = "text")]
    protocol: Protocol,
    /// Seconds to run (ignored with --requests).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Total requests to send instead of a duration.
    #[arg(long)]
    requests: Option<u64>,
    /// Unmeasured requests sent first.
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Check the Zipf sampler against the exact distribution and exit.
    #[arg(long)]
    check_zipf: bool,
    /// Ignored: cargo bench passes it to every bench target.
    #[arg(long, hide = true)]
    bench: bool,
}

fn parse_ratio(s: &str) -> f64 {
    let (a, b) = s.split_once(':').expect("--set-ratio sets:gets");
    let (a, b): (f64, f64) = (a.parse().unwrap(), b.parse().unwrap());
    a / (a + b)
}

/// Draws from the Zipf sampler and compares the frequencies of the top
/// ranks with k^-s / H(n, s); exits non-zero beyond 3 % relative error.
fn check_zipf() {
    let mut bad = false;
    for &(n, s) in &[
        (1_000u64, 0.99f64),
        (1_000, 1.0),
        (100, 0.5),
        (1_000_000, 0.99),
    ] {
        let z = loadgen::Zipf::new(n, s);
        let mut rng = loadgen::Rng::new(7);
        let draws = 2_000_000u64;
        let mut top = [0u64; 11];
        for _ in 0..draws {
            let k = z.sample(&mut rng);
            assert!((1..=n).contains(&k));
            if k <= 10 {
                top[k as usize] += 1;
            }
        }
        let h: f64 = (1..=n).map(|k| (k as f64).powf(-s)).sum();
        for k in [1usize, 2, 10] {
            let got = top[k] as f64 / draws as f64;
            let want = (k as f64).powf(-s) / h;
            let err = (got - want).abs() / want;
            bad |= err > 0.03;
            println!(
                "zipf n={n} s={s} rank {k}: {got:.5} expected {want:.5} ({:.1} %)",
                err * 100.0
            );
        }
    }
    std::process::exit(i32::from(bad));
}

fn main() {
    let args = Args::parse();
    if args.check_zipf {
        check_zipf();
    }
    let load = Load {
        threads: args.threads,
        conns: args.conns,
        pipeline: args.pipeline,
        set_frac: parse_ratio(&args.set_ratio),
        keys: args.keys,
        key_base: args.key_base,
        key_len: args.key_len,
        dist: args.dist,
        value: args.value_size,
        multiget: args.multiget,
        fill_on_miss: args.fill_on_miss,
        protocol: args.protocol,
        stop: match args.requests {
            Some(n) => Stop::Requests(n),
            None => Stop::Duration(Duration::from_secs_f64(args.duration)),
        },
        warmup: args.warmup,
        seed: args.seed,
    };
    let flags = [
        "-t".to_string(),
        args.server_threads.to_string(),
        "-m".to_string(),
        args.server_mem.to_string(),
        "-c".to_string(),
        args.server_conns.to_string(),
    ];
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let mut targets: Vec<(String, SocketAddr, Option<support::Proc>)> = Vec::new();
    if let Some(a) = args.addr {
        targets.push((a.to_string(), a, None));
    }
    match args.server.as_deref() {
        None => {}
        Some(which) => {
            for name in which.split(',').flat_map(|w| {
                if w == "both" {
                    vec!["ferrocache", "memcached"]
                } else {
                    vec![w]
                }
            }) {
                let p = match name {
                    "ferrocache" => support::ferrocache(&flags),
                    "memcached" => support::memcached(&flags),
                    other => panic!("unknown server {other}"),
                };
                targets.push((name.to_string(), p.addr, Some(p)));
            }
        }
    }
    if targets.is_empty() {
        eprintln!("give --addr or --server");
        std::process::exit(2);
    }
    let mut failed = false;
    for (name, addr, _proc) in &targets {
        if args.preload {
            if let Err(e) = loadgen::preload(*addr, &load, load.keys) {
                eprintln!("{name}: preload failed: {e}");
                failed = true;
                continue;
            }
        }
        match loadgen::run(*addr, &load) {
            Ok(r) => println!("{name:<10} {r}"),
            Err(e) => {
                eprintln!("{name}: FAILED: {e}");
                failed = true;
            }
        }
    }
    if failed {
        std::process::exit(1);
    }
}
