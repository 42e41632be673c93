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

#[test]
fn many_connections_at_once() {
    let s = Server::start(&["-t", "4"]);
    let mut conns: Vec<Conn> = (0..200).map(|_| s.conn()).collect();
    // Everything is sent before anything is read: every connection is live at the same time.
    for (i, c) in conns.iter_mut().enumerate() {
        c.send(&store_cmd(
            "set",
            &format!("c{i}"),
            i as u32,
            0,
            format!("v{i}").as_bytes(),
            "",
        ));
        c.send(format!("get c{i}\r\n").as_bytes());
    }
    for (i, c) in conns.iter_mut().enumerate() {
        let v = format!("v{i}");
        c.expect(format!("STORED\r\nVALUE c{i} {i} {}\r\n{v}\r\nEND\r\n", v.len()).as_bytes());
    }
    assert!(conns[0].stat("curr_connections") >= 200);
}

#[test]
fn slow_reader_does_not_block_others() {
    let s = Server::start(&["-t", "2"]);
    let mut a = s.conn();
    let big = vec![b'B'; 100_000];
    a.set("big", &big);
    // 300 replies of 100 KB that `a` does not read for a while: the server has to hold back
    // instead of blocking its worker.
    let n = 300;
    a.send(&b"get big\r\n".repeat(n));
    let addr = s.addr();
    for _ in 0..20 {
        let mut b = Conn::connect(addr);
        b.set_timeout(std::time::Duration::from_secs(2));
        b.roundtrip(
            b"set other 0 0 2\r\nok\r\nget other\r\n",
            b"STORED\r\nVALUE other 0 2\r\nok\r\nEND\r\n",
        );
    }
    let mut want = format!("VALUE big 0 {}\r\n", big.len()).into_bytes();
    want.extend_from_slice(&big);
    want.extend_from_slice(b"\r\nEND\r\n");
    for i in 0..n {
        let got = a.read_exact_n(want.len());
        assert!(got == want, "reply {i} to the slow reader is corrupted");
    }
}

#[test]
fn pipelined_flood_does_not_starve_others() {
    let s = Server::start(&["-t", "1", "-R", "5"]);
    let addr = s.addr();
    let flooder = thread::spawn(move || {
        let mut c = Conn::connect(addr);
        let batch = b"incr flood 1\r\n".repeat(2000);
        c.set("flood", b"0");
        for _ in 0..10 {
            c.send(&batch);
            for _ in 0..2000 {
                c.read_line();
            }
        }
        c.get("flood").unwrap()
    });
    let mut b = Conn::connect(addr);
    b.set_timeout(std::time::Duration::from_secs(2));
    for _ in 0..50 {
        b.roundtrip(b"version\r\n", b"VERSION ");
        b.read_line();
    }
    assert_eq!(flooder.join().unwrap(), b"20000");
}

#[test]
fn clients_vanishing_mid_reply() {
    // Clients that disconnect in the middle of a large reply (or right after asking for it)
    // must not disturb the server or anyone else.
    let s = Server::start(&["-t", "2"]);
    let mut c = s.conn();
    let keys: Vec<String> = (0..40).map(|i| format!("v{i}")).collect();
    for k in &keys {
        c.set(k, &vec![b'v'; 100_000]);
    }
    let get = format!("get {}\r\n", keys.join(" "));
    for i in 0..20 {
        let mut gone = Conn::connect_small_rcvbuf(s.addr(), 16 * 1024);
        gone.send(get.as_bytes());
        if i % 2 == 0 {
            gone.read_exact_n(50_000 + i * 1000);
        }
        drop(gone);
    }
    let r = {
        c.send(get.as_bytes());
        c.read_get_reply()
    };
    assert_eq!(r.len(), 40);
    assert_server_healthy(&s, "v0", &vec![b'v'; 100_000]);
}
