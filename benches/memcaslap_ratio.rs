//! First side-by-side throughput figure: the same memcaslap load (90% get,
//! 10% set, 100-byte values, 64 concurrent connections) against ferrocache
//! and memcached, both `-t 2 -m 1024`, in alternating rounds on one machine.
//! Prints every round, the medians and the ratio ferrocache / memcached.
//!
//! `cargo bench --bench memcaslap_ratio` (rounds: env `RATIO_ROUNDS`,
//! default 3; seconds per round: `RATIO_SECONDS`, default 10). Needs
//! `memcaslap` and `memcached` (Debian: libmemcached-tools, memcached).

mod support;

use std::process::Command;

fn tps(addr: std::net::SocketAddr, secs: u32) -> f64 {
    let out = Command::new("memcaslap")
        .args([
            "-s",
            &addr.to_string(),
            "-T",
            "2",
            "-c",
            "64",
            "-X",
            "100",
            "-t",
            &format!("{secs}s"),
        ])
        .output()
        .expect("memcaslap not found: apt-get install libmemcached-tools");
    let text = String::from_utf8_lossy(&out.stdout);
    text.split("TPS:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no TPS in memcaslap output:\n{text}"))
}

fn main() {
    let rounds: usize = std::env::var("RATIO_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let secs: u32 = std::env::var("RATIO_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let args = ["-t", "2", "-m", "1024"];
    let fc = support::ferrocache(&args);
    let mc = support::memcached(&args);
    let (mut f, mut m) = (Vec::new(), Vec::new());
    println!(
        "memcaslap -T 2 -c 64 -X 100 -t {secs}s, servers -t 2 -m 1024, {rounds} alternating rounds"
    );
    for round in 0..rounds {
        // Alternate which server goes first so drift affects both alike.
        let order: [&support::Proc; 2] = if round % 2 == 0 {
            [&fc, &mc]
        } else {
            [&mc, &fc]
        };
        for p in order {
            let t = tps(p.addr, secs);
            println!("round {round}: {:<10} {:>10.0} ops/s", p.name, t);
            if p.name == "ferrocache" {
                f.push(t)
            } else {
                m.push(t)
            }
        }
    }
    let (fm, mm) = (support::median(&mut f), support::median(&mut m));
    println!(
        "median ops/s: ferrocache {fm:.0}, memcached {mm:.0}, ratio {:.2}x",
        fm / mm
    );
}
