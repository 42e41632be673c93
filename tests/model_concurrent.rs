//! Concurrent property over real sockets: threads increment shared counters
//! with `gets` → `cas` (padded to random widths, so some writes rewrite the
//! item in place and others move it to another size class) mixed with
//! `incr`; at the end each counter equals the number of `STORED` replies
//! to its `cas` plus the number of its `incr`s — no update is lost and no
//! stale `cas` succeeds.
//!
//! `concurrency.rs` has the single-key append CAS loop with retries; this
//! one spreads plans chosen by proptest over several keys and value sizes.
//! `PROPTEST_CASES=<n>` runs more cases.

mod common;
use common::*;

use proptest::prelude::*;
use proptest::test_runner::Config;
use std::sync::{Arc, Barrier};
use std::thread;

#[derive(Clone, Copy, Debug)]
enum Step {
    /// `gets`, then `cas` the value plus one, zero-padded to this width.
    Cas { key: usize, width: usize },
    /// `incr <key> 1`.
    Incr { key: usize },
}

fn step(keys: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => (0..keys, prop::sample::select(vec![1usize, 8, 300, 2000]))
            .prop_map(|(key, width)| Step::Cas { key, width }),
        1 => (0..keys).prop_map(|key| Step::Incr { key }),
    ]
}

fn plan() -> impl Strategy<Value = (usize, Vec<Vec<Step>>)> {
    (1usize..=3).prop_flat_map(|keys| {
        (
            Just(keys),
            prop::collection::vec(prop::collection::vec(step(keys), 100..200), 2..=4),
        )
    })
}

fn number(v: &[u8]) -> u64 {
    let s = std::str::from_utf8(v).expect("counter is text");
    s.trim_end_matches(' ')
        .parse()
        .expect("counter is a number")
}

/// Runs one thread's steps; returns per key the successful cas + incr count.
fn run_steps(c: &mut Conn, keys: usize, steps: &[Step]) -> Vec<u64> {
    let mut done = vec![0u64; keys];
    for s in steps {
        match *s {
            Step::Cas { key, width } => {
                let name = format!("ctr{key}");
                let (v, cas) = c.gets(&name).expect("counter exists");
                let next = format!("{:0width$}", number(&v) + 1);
                c.send(&store_cmd(
                    "cas",
                    &name,
                    0,
                    0,
                    next.as_bytes(),
                    &cas.to_string(),
                ));
                let r = c.read_line();
                match &r[..] {
                    b"STORED\r\n" => done[key] += 1,
                    b"EXISTS\r\n" => {}
                    other => panic!("cas: {}", esc(other)),
                }
            }
            Step::Incr { key } => {
                let r = c.cmd(&format!("incr ctr{key} 1"));
                assert!(r.trim_end().parse::<u64>().is_ok(), "incr: {r:?}");
                done[key] += 1;
            }
        }
    }
    done
}

proptest! {
    #![proptest_config(Config {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|s| s.parse().ok()).unwrap_or(6),
        max_shrink_iters: 64,
        ..Config::default()
    })]

    #[test]
    fn concurrent_cas_increments_lose_nothing((keys, plans) in plan()) {
        let s = Server::start(&["-t", "4"]);
        for k in 0..keys {
            s.conn().set(&format!("ctr{k}"), b"0");
        }
        let barrier = Arc::new(Barrier::new(plans.len()));
        let addr = s.addr();
        let handles: Vec<_> = plans
            .into_iter()
            .map(|steps| {
                let b = barrier.clone();
                thread::spawn(move || {
                    let mut c = Conn::connect(addr);
                    b.wait();
                    run_steps(&mut c, keys, &steps)
                })
            })
            .collect();
        let mut expected = vec![0u64; keys];
        for h in handles {
            for (k, n) in h.join().unwrap().into_iter().enumerate() {
                expected[k] += n;
            }
        }
        let mut c = s.conn();
        for (k, want) in expected.into_iter().enumerate() {
            let v = c.get(&format!("ctr{k}")).expect("counter exists");
            prop_assert_eq!(number(&v), want, "key ctr{}", k);
        }
    }
}
