//! Side-by-side runner: ferrocache against memcached, same machine, same
//! load, in alternating rounds, reported as ratios.
//!
//! ```text
//! cargo bench --bench side_by_side                 # all scenarios, 3 rounds, writes docs
//! cargo bench --bench side_by_side -- --only S1,S2 --rounds 5 --secs 5 --no-write
//! ```
//!
//! Both servers get the same `-t`, `-m` and `-c`. Scenarios (the load
//! generator is `benches/support/loadgen.rs`, 2 threads, 32-byte keys):
//! - S1 get-heavy 90:10, 100-byte values, 50 connections, no pipelining;
//! - S2 the same with 16 requests in flight per connection;
//! - S3 set-only, 1 KB values;
//! - S4 50-key multigets;
//! - S5 memory: load N items (32-byte keys; 100-byte values, then
//!   log-uniform 10–4000 bytes) into `-m 1024`; resident bytes per stored item;
//! - S6 hit ratio at fixed memory: Zipf(0.99) gets with fill-on-miss over a
//!   key space holding 5× the memory (`--s6-mem`, default 16 MB);
//! - S7 resident memory with 5,000 idle (used once) connections.
//!
//! Throughput scenarios run for `--secs` per server per round and report
//! medians over rounds; in each round the server that goes first alternates.
//! With `--write` (the default) the tables go into `docs/PERFORMANCE.md`
//! between markers and the chart into `docs/perf-ratios.svg` (with
//! `--protocol meta`: their own block and `docs/perf-ratios-meta.svg`).

mod support;

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use support::loadgen::{self, KeyDist, Load, Protocol, Report, Stop, ValueSize};
use support::Proc;

struct Opts {
    rounds: usize,
    secs: f64,
    threads: usize,
    conns_limit: usize,
    s5_items: u64,
    s6_mem: usize,
    s7_conns: usize,
    only: Option<Vec<String>>,
    write: bool,
    protocol: Protocol,
}

fn parse_opts() -> Opts {
    let mut o = Opts {
        rounds: 3,
        secs: 3.0,
        threads: 2,
        conns_limit: 8192,
        s5_items: 1_000_000,
        s6_mem: 16,
        s7_conns: 5000,
        only: None,
        write: true,
        protocol: Protocol::Text,
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut val = || args.next().unwrap_or_else(|| panic!("{a} needs a value"));
        match a.as_str() {
            "--bench" => {}
            "--rounds" => o.rounds = val().parse().unwrap(),
            "--secs" => o.secs = val().parse().unwrap(),
            "--server-threads" => o.threads = val().parse().unwrap(),
            "--s5-items" => o.s5_items = val().parse().unwrap(),
            "--s6-mem" => o.s6_mem = val().parse().unwrap(),
            "--s7-conns" => o.s7_conns = val().parse().unwrap(),
            "--only" => o.only = Some(val().split(',').map(str::to_uppercase).collect()),
            "--no-write" => o.write = false,
            "--protocol" => o.protocol = val().parse().unwrap(),
            "--write" => o.write = true,
            "-h" | "--help" => {
                println!(
                    "side_by_side [--rounds 3] [--secs 3] [--server-threads 2] \
                     [--s5-items 1000000] [--s6-mem 16] [--s7-conns 5000] \
                     [--only S1,S5] [--protocol text|meta] [--no-write]"
                );
                std::process::exit(0);
            }
            other => panic!("unknown argument {other}"),
        }
    }
    o
}

/// Lifts the open-file limit to the hard limit (for S7), returning it.
fn raise_nofile() -> u64 {
    // SAFETY: plain getrlimit/setrlimit on a local struct.
    unsafe {
        let mut r = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut r) != 0 {
            return 1024;
        }
        r.rlim_cur = r.rlim_max;
        libc::setrlimit(libc::RLIMIT_NOFILE, &r);
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut r);
        r.rlim_cur
    }
}

const SERVERS: [&str; 2] = ["ferrocache", "memcached"];

fn start(which: usize, mem: usize, o: &Opts) -> Proc {
    let args = [
        "-t".to_string(),
        o.threads.to_string(),
        "-m".to_string(),
        mem.to_string(),
        "-c".to_string(),
        o.conns_limit.to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    if which == 0 {
        support::ferrocache(&args)
    } else {
        support::memcached(&args)
    }
}

/// One measurement of one server.
#[derive(Clone, Copy, Default)]
struct Sample {
    /// The scenario's main figure (ops/s, bytes per item, hit %, bytes).
    value: f64,
    p99_us: f64,
    p50_us: f64,
    /// Server CPU microseconds per request: user, system; client total.
    user_us: f64,
    sys_us: f64,
    client_us: f64,
    /// Secondary figure (items stored, RSS per connection).
    extra: f64,
}

#[derive(Default)]
struct Results {
    /// scenario id → per server → samples over rounds.
    rows: Vec<(String, [Vec<Sample>; 2])>,
}

impl Results {
    fn push(&mut self, id: &str, server: usize, s: Sample) {
        if let Some(r) = self.rows.iter_mut().find(|r| r.0 == id) {
            r.1[server].push(s);
        } else {
            let mut v: [Vec<Sample>; 2] = Default::default();
            v[server].push(s);
            self.rows.push((id.to_string(), v));
        }
    }
}

fn med(v: &[Sample], f: impl Fn(&Sample) -> f64) -> f64 {
    let mut x: Vec<f64> = v.iter().map(f).collect();
    support::median(&mut x)
}

fn throughput_load(id: &str, secs: f64, protocol: Protocol) -> Load {
    let mut l = Load {
        threads: 2,
        conns: 50,
        protocol,
        stop: Stop::Duration(Duration::from_secs_f64(secs)),
        ..Load::default()
    };
    match id {
        "S1" => {}
        "S2" => l.pipeline = 16,
        "S3" => {
            l.set_frac = 1.0;
            l.value = ValueSize::Fixed(1024);
            // Disjoint from the 100-byte keys the other scenarios read.
            l.key_base = 1_000_000_000;
        }
        "S4" => {
            l.set_frac = 0.0;
            l.multiget = 50;
        }
        _ => unreachable!(),
    }
    l
}

/// CPU seconds used during a run: server user, server system, client.
#[derive(Clone, Copy, Default)]
struct Cpu {
    user: f64,
    sys: f64,
    client: f64,
}

/// Runs `load` against `p`, measuring CPU on both sides.
fn measure(p: &Proc, load: &Load) -> (Report, Cpu) {
    let (u0, s0) = support::cpu_split(p.pid());
    let c0 = support::cpu_seconds(0);
    let r = loadgen::run(p.addr, load)
        .unwrap_or_else(|e| panic!("{}: wrong answer or broken run: {e}", p.name));
    let (u1, s1) = support::cpu_split(p.pid());
    let cpu = Cpu {
        user: u1 - u0,
        sys: s1 - s0,
        client: support::cpu_seconds(0) - c0,
    };
    (r, cpu)
}

fn enabled(o: &Opts, id: &str) -> bool {
    o.only.as_ref().map_or(true, |v| v.iter().any(|x| x == id))
}

fn main() {
    let o = parse_opts();
    let t0 = Instant::now();
    let mut res = Results::default();
    let nofile = raise_nofile();
    println!(
        "side by side: -t {} -c {}, {} rounds, {}s per throughput run, {:?} protocol (open files limit {nofile})",
        o.threads, o.conns_limit, o.rounds, o.secs, o.protocol
    );
    let tp: Vec<&str> = ["S1", "S2", "S3", "S4"]
        .into_iter()
        .filter(|s| enabled(&o, s))
        .collect();
    for round in 0..o.rounds {
        let order: [usize; 2] = if round % 2 == 0 { [0, 1] } else { [1, 0] };
        if !tp.is_empty() {
            let procs = [start(0, 1024, &o), start(1, 1024, &o)];
            let base = throughput_load("S1", o.secs, o.protocol);
            for p in &procs {
                loadgen::preload(p.addr, &base, base.keys).expect("preload");
            }
            for id in &tp {
                let load = throughput_load(id, o.secs, o.protocol);
                for &s in &order {
                    let (r, cpu) = measure(&procs[s], &load);
                    println!(
                        "round {round} {id} {:<10} {r}  server cpu user {:.2}s sys {:.2}s, client {:.2}s",
                        SERVERS[s], cpu.user, cpu.sys, cpu.client
                    );
                    assert_eq!(r.server_errors, 0, "server errors in {id}");
                    res.push(
                        id,
                        s,
                        Sample {
                            value: r.ops_per_sec(),
                            p99_us: r.latency_us(0.99),
                            p50_us: r.latency_us(0.5),
                            user_us: cpu.user * 1e6 / r.requests as f64,
                            sys_us: cpu.sys * 1e6 / r.requests as f64,
                            client_us: cpu.client * 1e6 / r.requests as f64,
                            extra: r.hit_ratio(),
                        },
                    );
                }
            }
        }
        if enabled(&o, "S5") {
            for (id, size) in [
                ("S5a", ValueSize::Fixed(100)),
                ("S5b", ValueSize::LogUniform(10, 4000)),
            ] {
                for &s in &order {
                    let p = start(s, 1024, &o);
                    let load = Load {
                        value: size,
                        ..Load::default()
                    };
                    loadgen::preload(p.addr, &load, o.s5_items).expect("S5 load");
                    std::thread::sleep(Duration::from_millis(200));
                    let items = loadgen::stat(p.addr, "curr_items").unwrap() as f64;
                    let rss = p.rss() as f64;
                    println!(
                        "round {round} {id} {:<10} {items} items, RSS {:.1} MB, {:.1} B/item",
                        SERVERS[s],
                        rss / 1e6,
                        rss / items
                    );
                    res.push(
                        id,
                        s,
                        Sample {
                            value: rss / items,
                            extra: items,
                            ..Sample::default()
                        },
                    );
                }
            }
        }
        if enabled(&o, "S6") {
            let kv = 32 + 100;
            let keys = (5 * o.s6_mem * 1024 * 1024 / kv) as u64;
            let load = Load {
                pipeline: 16,
                set_frac: 0.0,
                keys,
                dist: KeyDist::Zipf(0.99),
                fill_on_miss: true,
                warmup: 2 * keys,
                stop: Stop::Requests(2 * keys),
                protocol: o.protocol,
                ..Load::default()
            };
            for &s in &order {
                let p = start(s, o.s6_mem, &o);
                let r = loadgen::run(p.addr, &load).expect("S6");
                println!("round {round} S6 {:<10} {r}", SERVERS[s]);
                res.push(
                    "S6",
                    s,
                    Sample {
                        value: r.hit_ratio() * 100.0,
                        extra: keys as f64,
                        ..Sample::default()
                    },
                );
            }
        }
        if enabled(&o, "S7") {
            for &s in &order {
                let p = start(s, 1024, &o);
                std::thread::sleep(Duration::from_millis(100));
                let before = p.rss() as f64;
                let conns = loadgen::idle_conns(p.addr, o.s7_conns).expect("S7 connections");
                std::thread::sleep(Duration::from_millis(300));
                let after = p.rss() as f64;
                println!(
                    "round {round} S7 {:<10} RSS {:.1} MB idle, {:.1} MB with {} connections ({:.0} B each)",
                    SERVERS[s],
                    before / 1e6,
                    after / 1e6,
                    conns.len(),
                    (after - before) / conns.len() as f64
                );
                drop(conns);
                res.push(
                    "S7",
                    s,
                    Sample {
                        value: after,
                        extra: (after - before) / o.s7_conns as f64,
                        ..Sample::default()
                    },
                );
            }
        }
    }
    let table = render(&res, &o);
    println!("\n{table}");
    println!("total time {:.0}s", t0.elapsed().as_secs_f64());
    if o.write {
        write_docs(&res, &o, &table);
    }
}

/// What a scenario's ratio means and its target.
struct Meta {
    what: &'static str,
    unit: &'static str,
    target: &'static str,
    /// Returns whether the target is met given (fc, mc) medians.
    met: fn(f64, f64, &[Vec<Sample>; 2]) -> bool,
}

/// ferrocache's median p99 is no worse than memcached's.
fn p99_ok(s: &[Vec<Sample>; 2]) -> bool {
    med(&s[0], |x| x.p99_us) <= med(&s[1], |x| x.p99_us)
}

fn meta(id: &str) -> Meta {
    match id {
        "S1" => Meta {
            what: "get:set 90:10, 100 B, 50 conns, no pipelining",
            unit: "req/s",
            target: "≥ 1.0×, p99 no worse",
            met: |f, m, s| f >= m && p99_ok(s),
        },
        "S2" => Meta {
            what: "as S1, 16 requests in flight per conn",
            unit: "req/s",
            target: "≥ 1.3×, p99 no worse",
            met: |f, m, s| f >= 1.3 * m && p99_ok(s),
        },
        "S3" => Meta {
            what: "set only, 1 KB values",
            unit: "req/s",
            target: "≥ 1.3×, p99 no worse",
            met: |f, m, s| f >= 1.3 * m && p99_ok(s),
        },
        "S4" => Meta {
            what: "50-key multigets",
            unit: "req/s",
            target: "≥ 1.3×, p99 no worse",
            met: |f, m, s| f >= 1.3 * m && p99_ok(s),
        },
        "S5a" => Meta {
            what: "RSS per item, 100 B values, -m 1024",
            unit: "B/item",
            target: "≤ 0.75×",
            met: |f, m, _| f <= 0.75 * m,
        },
        "S5b" => Meta {
            what: "RSS per item, 10–4000 B log-uniform, -m 1024",
            unit: "B/item",
            target: "≤ 0.75×",
            met: |f, m, _| f <= 0.75 * m,
        },
        "S6" => Meta {
            what: "hit ratio, Zipf 0.99, fill on miss, keys = 5× memory",
            unit: "% hits",
            target: "≥ +2 points",
            met: |f, m, _| f >= m + 2.0,
        },
        "S7" => Meta {
            what: "RSS with 5,000 idle connections",
            unit: "MB",
            target: "≤ 1.0×",
            met: |f, m, _| f <= m,
        },
        _ => unreachable!(),
    }
}

fn fmt_num(v: f64) -> String {
    let s = format!("{:.0}", v);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 && c != '-' {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn fmt_val(id: &str, v: f64) -> String {
    match id {
        "S6" => format!("{v:.2}"),
        "S5a" | "S5b" => format!("{v:.1}"),
        "S7" => format!("{:.1}", v / 1e6),
        _ => fmt_num(v),
    }
}

fn ratio_text(id: &str, f: f64, m: f64) -> String {
    match id {
        "S6" => format!("{:+.2} points", f - m),
        _ => format!("{:.2}×", f / m),
    }
}

fn render(res: &Results, o: &Opts) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "| scenario | load | ferrocache | memcached | ratio | target | met |\n|---|---|---|---|---|---|---|"
    );
    for (id, s) in &res.rows {
        let m = meta(id);
        let (f, mc) = (med(&s[0], |x| x.value), med(&s[1], |x| x.value));
        let _ = writeln!(
            t,
            "| {id} | {} | {} {} | {} {} | **{}** | {} | {} |",
            m.what,
            fmt_val(id, f),
            m.unit,
            fmt_val(id, mc),
            m.unit,
            ratio_text(id, f, mc),
            m.target,
            if (m.met)(f, mc, s) { "yes" } else { "no" }
        );
    }
    let tp: Vec<_> = res
        .rows
        .iter()
        .filter(|r| r.0.len() == 2 && r.0.as_str() <= "S4")
        .collect();
    if !tp.is_empty() {
        let _ = writeln!(
            t,
            "\nLatency (medians over rounds of each run's percentile) and CPU per request \
             (server user + system time from /proc, client = the load generator):\n\n\
             | scenario | p50 fc / mc (µs) | p99 fc / mc (µs) | p99 ratio | server user µs/req fc / mc | server sys µs/req fc / mc | client µs/req with fc / mc |\n|---|---|---|---|---|---|---|"
        );
        for (id, s) in tp {
            let (f50, m50) = (med(&s[0], |x| x.p50_us), med(&s[1], |x| x.p50_us));
            let (f99, m99) = (med(&s[0], |x| x.p99_us), med(&s[1], |x| x.p99_us));
            let m = |f: fn(&Sample) -> f64| (med(&s[0], f), med(&s[1], f));
            let (fu, mu) = m(|x| x.user_us);
            let (fs, ms) = m(|x| x.sys_us);
            let (fcl, mcl) = m(|x| x.client_us);
            let _ = writeln!(
                t,
                "| {id} | {f50:.0} / {m50:.0} | {f99:.0} / {m99:.0} | {:.2}× | {fu:.2} / {mu:.2} | {fs:.2} / {ms:.2} | {fcl:.2} / {mcl:.2} |",
                f99 / m99
            );
        }
    }
    let mut extra = String::new();
    for (id, s) in &res.rows {
        match id.as_str() {
            "S5a" | "S5b" => {
                let _ = writeln!(
                    extra,
                    "- {id}: items stored of {} loaded: ferrocache {}, memcached {}.",
                    fmt_num(o.s5_items as f64),
                    fmt_num(med(&s[0], |x| x.extra)),
                    fmt_num(med(&s[1], |x| x.extra))
                );
            }
            "S6" => {
                let _ = writeln!(
                    extra,
                    "- S6: {} keys of 32 + 100 bytes against `-m {}`; {} warm-up requests, then {} measured, 16 in flight on each of 50 connections.",
                    fmt_num(s[0].first().map_or(0.0, |x| x.extra)),
                    o.s6_mem,
                    fmt_num(2.0 * s[0].first().map_or(0.0, |x| x.extra)),
                    fmt_num(2.0 * s[0].first().map_or(0.0, |x| x.extra)),
                );
            }
            "S7" => {
                let _ = writeln!(
                    extra,
                    "- S7: RSS added per connection: ferrocache {} B, memcached {} B.",
                    fmt_num(med(&s[0], |x| x.extra)),
                    fmt_num(med(&s[1], |x| x.extra))
                );
            }
            _ => {}
        }
    }
    if !extra.is_empty() {
        let _ = write!(t, "\n{extra}");
    }
    let _ = writeln!(t, "\nEvery round (ferrocache / memcached):\n");
    let _ = writeln!(
        t,
        "| scenario | {} |",
        (0..o.rounds)
            .map(|r| format!("round {r}"))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(t, "|---|{}", "---|".repeat(o.rounds));
    for (id, s) in &res.rows {
        let cells: Vec<String> = (0..s[0].len().min(s[1].len()))
            .map(|i| {
                format!(
                    "{} / {}",
                    fmt_val(id, s[0][i].value),
                    fmt_val(id, s[1][i].value)
                )
            })
            .collect();
        let _ = writeln!(t, "| {id} | {} |", cells.join(" | "));
    }
    t
}

/// A chart label.
fn short(id: &str) -> &'static str {
    match id {
        "S1" => "get 90:10, no pipelining",
        "S2" => "get 90:10, 16 in flight",
        "S3" => "set only, 1 KB",
        "S4" => "50-key multiget",
        "S5a" => "memory/item, 100 B values",
        "S5b" => "memory/item, 10–4000 B",
        "S6" => "hit ratio, Zipf 0.99",
        "S7" => "RSS, 5,000 idle conns",
        _ => "",
    }
}

/// A horizontal bar chart of "how much better than memcached" per scenario.
fn svg(res: &Results, protocol: Protocol) -> String {
    let rows: Vec<(String, f64, String, f64, bool)> = res
        .rows
        .iter()
        .map(|(id, s)| {
            let m = meta(id);
            let (f, mc) = (med(&s[0], |x| x.value), med(&s[1], |x| x.value));
            // Bar length: the factor by which ferrocache is better (>1) or
            // worse (<1) than memcached on the scenario's figure.
            let (factor, target) = match id.as_str() {
                // Hit ratios near 100 % compress differences: compare misses.
                "S6" => (
                    (100.0 - mc) / (100.0 - f),
                    (100.0 - mc) / (100.0 - mc - 2.0),
                ),
                "S1" => (f / mc, 1.0),
                "S2" | "S3" | "S4" => (f / mc, 1.3),
                "S5a" | "S5b" => (mc / f, 1.0 / 0.75),
                _ => (mc / f, 1.0),
            };
            let label = format!("{id}  {}", short(id));
            let text = match id.as_str() {
                "S6" => format!(
                    "{:.1} % vs {:.1} % hits ({:+.1} points, {:.2}× fewer misses)",
                    f,
                    mc,
                    f - mc,
                    (100.0 - mc) / (100.0 - f)
                ),
                "S5a" | "S5b" => format!("{:.0} vs {:.0} B/item ({:.2}×)", f, mc, f / mc),
                "S7" => format!("{:.1} vs {:.1} MB ({:.2}×)", f / 1e6, mc / 1e6, f / mc),
                _ => format!("{:.2}× req/s", f / mc),
            };
            (label, factor, text, target, (m.met)(f, mc, s))
        })
        .collect();
    let max = rows
        .iter()
        .map(|r| r.1.max(r.3))
        .fold(2.0f64, f64::max)
        .ceil();
    let (left, width, bar_h, gap) = (250.0, 480.0, 22.0, 14.0);
    let top = 56.0;
    let h = top + rows.len() as f64 * (bar_h + gap) + 40.0;
    let x = |v: f64| left + v / max * width;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="1000" height="{h:.0}" font-family="sans-serif" font-size="13">
<rect width="100%" height="100%" fill="white"/>
<text x="10" y="22" font-size="16" font-weight="bold">ferrocache relative to memcached 1.6.18, {protocol:?} protocol (same machine, same load; longer is better)</text>
<text x="10" y="42" fill="#555">bar = factor by which ferrocache is better (&gt;1) or worse (&lt;1) than memcached; black tick = target; green = met, red = missed</text>"##
    );
    for i in 0..=(max as usize) {
        let xv = x(i as f64);
        let _ = writeln!(
            s,
            r##"<line x1="{xv:.1}" y1="{:.0}" x2="{xv:.1}" y2="{:.0}" stroke="#ddd"/><text x="{xv:.1}" y="{:.0}" text-anchor="middle" fill="#555">{i}×</text>"##,
            top - 6.0,
            h - 30.0,
            h - 14.0
        );
    }
    for (i, (label, factor, text, target, met)) in rows.iter().enumerate() {
        let y = top + i as f64 * (bar_h + gap);
        let color = if *met { "#2e7d32" } else { "#c62828" };
        let _ = writeln!(
            s,
            r##"<text x="{:.0}" y="{:.1}" text-anchor="end">{}</text>
<rect x="{left}" y="{y:.1}" width="{:.1}" height="{bar_h}" fill="{color}" opacity="0.85"/>
<line x1="{:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black" stroke-width="3"/>
<text x="{:.1}" y="{:.1}">{}</text>"##,
            left - 8.0,
            y + 15.0,
            label.replace('&', "&amp;"),
            (x(*factor) - left).max(1.0),
            x(*target),
            y - 3.0,
            x(*target),
            y + bar_h + 3.0,
            x(factor.max(*target)) + 8.0,
            y + 15.0,
            text
        );
    }
    let one = x(1.0);
    let _ = writeln!(
        s,
        r##"<line x1="{one:.1}" y1="{:.0}" x2="{one:.1}" y2="{:.0}" stroke="#333" stroke-dasharray="4 3"/>
</svg>"##,
        top - 6.0,
        h - 30.0
    );
    s
}

fn write_docs(res: &Results, o: &Opts, table: &str) {
    let root = env!("CARGO_MANIFEST_DIR");
    let path = format!("{root}/docs/PERFORMANCE.md");
    let doc = std::fs::read_to_string(&path).expect("read docs/PERFORMANCE.md");
    // Each protocol has its own block and chart, so a meta run does not
    // replace the text figures.
    let tag = match o.protocol {
        Protocol::Text => String::new(),
        p => format!("-{}", format!("{p:?}").to_lowercase()),
    };
    let (begin, end) = (
        format!("<!-- side-by-side{tag}:begin -->"),
        format!("<!-- side-by-side{tag}:end -->"),
    );
    let chart = format!("perf-ratios{tag}.svg");
    let mut args = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect::<Vec<_>>()
        .join(" ");
    if !args.is_empty() {
        args = format!(" -- {args}");
    }
    let date = std::process::Command::new("date")
        .args(["-u", "+%Y-%m-%d %H:%M UTC"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    let body = format!(
        "{begin}\n_Written by the runner ({date}):_\n\n```\ncargo bench --bench side_by_side{args}\n```\n\n\
         Servers `-t {} -m 1024 -c {}` (S6: `-m {}`), {} rounds, {} s per throughput run per server, \
         {:?} protocol.\n\n\
         ![ratios]({chart})\n\n{table}{end}",
        o.threads, o.conns_limit, o.s6_mem, o.rounds, o.secs, o.protocol
    );
    let new = match (doc.find(&begin), doc.find(&end)) {
        (Some(b), Some(e)) => format!("{}{}{}", &doc[..b], body, &doc[e + end.len()..]),
        _ => format!(
            "{doc}\n## Side by side: scenarios S1–S7, {:?} protocol\n\n{body}\n",
            o.protocol
        ),
    };
    std::fs::write(&path, new).expect("write docs/PERFORMANCE.md");
    std::fs::write(format!("{root}/docs/{chart}"), svg(res, o.protocol)).expect("write svg");
    println!("wrote docs/PERFORMANCE.md and docs/{chart}");
}
