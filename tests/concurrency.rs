//! Several threads hammering the same keys: exact final values for incr/decr and CAS loops.

mod common;
use common::*;
use std::sync::{Arc, Barrier};
use std::thread;

const THREADS: usize = 8;

#[test]
fn concurrent_incr_is_exact() {
    let s = Server::start(&["-t", "4"]);
    s.conn().set("ctr", b"0");
    let per = 500;
    let barrier = Arc::new(Barrier::new(THREADS));
    let addr = s.addr();
    let hs: Vec<_> = (0..THREADS)
        .map(|_| {
            let b = barrier.clone();
            thread::spawn(move || {
                let mut c = Conn::connect(addr);
                b.wait();
                // Pipelined in batches of 50 to keep it quick.
                for _ in 0..per / 50 {
                    c.send(&b"incr ctr 1\r\n".repeat(50));
                    for _ in 0..50 {
                        let l = c.read_line();
                        assert!(
                            l.iter()
                                .all(|b| b.is_ascii_digit() || *b == b'\r' || *b == b'\n'),
                            "{}",
                            esc(&l)
                        );
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let want = (THREADS * per).to_string();
    assert_eq!(s.conn().get("ctr").unwrap(), want.as_bytes());
}

#[test]
fn concurrent_incr_and_decr_cancel_out() {
    let s = Server::start(&["-t", "4"]);
    s.conn().set("ctr", b"1000000");
    let barrier = Arc::new(Barrier::new(THREADS));
    let addr = s.addr();
    let hs: Vec<_> = (0..THREADS)
        .map(|i| {
            let b = barrier.clone();
            thread::spawn(move || {
                let mut c = Conn::connect(addr);
                b.wait();
                let cmd: &[u8] = if i % 2 == 0 {
                    b"incr ctr 3\r\n"
                } else {
                    b"decr ctr 3\r\n"
                };
                c.send(&cmd.repeat(300));
                for _ in 0..300 {
                    c.read_line();
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
    let v = s.conn().get("ctr").unwrap();
    assert_eq!(String::from_utf8(v).unwrap().trim_end(), "1000000");
}

#[test]
fn concurrent_cas_loops_lose_no_update() {
    let s = Server::start(&["-t", "4"]);
    s.conn().set("list", b"");
    let per = 60;
    let barrier = Arc::new(Barrier::new(THREADS));
    let addr = s.addr();
    let hs: Vec<_> = (0..THREADS)
        .map(|t| {
            let b = barrier.clone();
            thread::spawn(move || {
                let mut c = Conn::connect(addr);
                b.wait();
                let mut retries = 0u64;
                for i in 0..per {
                    loop {
                        let (mut v, cas) = c.gets("list").expect("list exists");
                        v.extend_from_slice(format!("{t}.{i};").as_bytes());
                        c.send(&store_cmd("cas", "list", 0, 0, &v, &cas.to_string()));
                        let r = c.read_line();
                        if r == b"STORED\r\n" {
                            break;
                        }
                        assert_eq!(esc(&r), esc(b"EXISTS\r\n"));
                        retries += 1;
                        assert!(retries < 100_000, "CAS loop does not make progress");
                    }
                }
                retries
            })
        })
        .collect();
    let retries: u64 = hs.into_iter().map(|h| h.join().unwrap()).sum();
    let v = String::from_utf8(s.conn().get("list").unwrap()).unwrap();
    let mut entries: Vec<&str> = v.split(';').filter(|e| !e.is_empty()).collect();
    assert_eq!(
        entries.len(),
        THREADS * per,
        "lost or duplicated updates ({retries} retries)"
    );
    entries.sort();
    entries.dedup();
    assert_eq!(entries.len(), THREADS * per, "duplicated updates");
    // Each thread's own entries appear in its order.
    for t in 0..THREADS {
        let mine: Vec<usize> = v
            .split(';')
            .filter_map(|e| e.split_once('.'))
            .filter(|(a, _)| a.parse::<usize>().unwrap() == t)
            .map(|(_, b)| b.parse().unwrap())
            .collect();
        assert_eq!(mine, (0..per).collect::<Vec<_>>());
    }
}

#[test]
fn concurrent_add_has_one_winner() {
    let s = Server::start(&["-t", "4"]);
    let addr = s.addr();
    for round in 0..20 {
        let barrier = Arc::new(Barrier::new(THREADS));
        let hs: Vec<_> = (0..THREADS)
            .map(|t| {
                let b = barrier.clone();
                thread::spawn(move || {
                    let mut c = Conn::connect(addr);
                    b.wait();
                    c.send(&store_cmd(
                        "add",
                        &format!("race{round}"),
                        t as u32,
                        0,
                        b"v",
                        "",
                    ));
                    c.read_line() == b"STORED\r\n"
                })
            })
            .collect();
        let winners = hs
            .into_iter()
            .map(|h| h.join().unwrap())
            .filter(|w| *w)
            .count();
        assert_eq!(winners, 1, "round {round}: {winners} adds succeeded");
    }
}

#[test]
fn concurrent_set_get_never_tears_values() {
    let s = Server::start(&["-t", "4"]);
    let addr = s.addr();
    let vals: Vec<Vec<u8>> = (0..4u8)
        .map(|i| vec![b'a' + i; 20_000 + i as usize * 1000])
        .collect();
    s.conn().set("shared", &vals[0]);
    let vals = Arc::new(vals);
    let hs: Vec<_> = (0..THREADS)
        .map(|t| {
            let vals = vals.clone();
            thread::spawn(move || {
                let mut c = Conn::connect(addr);
                for i in 0..100 {
                    if t % 2 == 0 {
                        c.set("shared", &vals[(t + i) % 4]);
                    } else {
                        let v = c.get("shared").unwrap();
                        assert!(vals.contains(&v), "torn value of {} bytes", v.len());
                    }
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}
