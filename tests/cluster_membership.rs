//! Cluster membership across real nodes on loopback addresses: joining and
//! leaving, failure and return, restarts, concurrent administrators, and
//! how fast every node agrees. Every poll goes through `Watch`, which fails
//! the test if a node's version ever goes down or one version ever names
//! two lists.

mod cluster_support;
mod common;

use std::time::{Duration, Instant};

use cluster_support::*;

const SECOND: Duration = Duration::from_secs(1);

fn entries(nodes: &[&Node]) -> String {
    list(&nodes.iter().map(|n| n.entry()).collect::<Vec<_>>())
}

#[test]
fn nodes_join_and_leave_gracefully() {
    let mut a = Node::new("127.0.0.1", &[]);
    a.start();
    let mut w = Watch::default();
    assert_eq!(w.observe(&a), Some((1, a.entry())));

    let join = a.hostport();
    let mut b = Node::new("127.0.0.2", &["--join", &join]);
    let mut c = Node::new("127.0.0.3", &["--join", &join]);
    b.start();
    // A node that joined serves the cluster's list from its first answer.
    let (vb, lb) = w.observe(&b).unwrap();
    assert!(vb > 1);
    assert_eq!(lb, entries(&[&a, &b]));
    c.start();
    let v3 = w.converge(&[&a, &b, &c], Some(&entries(&[&a, &b, &c])), 2 * SECOND);

    // A graceful stop leaves at once (the failure timeout is 30 s).
    let t = Instant::now();
    c.stop();
    let v2 = w.converge(&[&a, &b], Some(&entries(&[&a, &b])), 2 * SECOND);
    assert!(v2 > v3);
    eprintln!("leave seen by every node after {:?}", t.elapsed());
    assert!(a.stderr().contains("cluster: version"), "-v logs changes");
}

#[test]
fn a_killed_node_is_dropped_and_comes_back() {
    let timeout = ["--cluster-failure-timeout", "1"];
    let mut a = Node::new("127.0.0.1", &timeout);
    a.start();
    let join = a.hostport();
    let mut b = Node::new("127.0.0.2", &[&timeout[..], &["--join", &join]].concat());
    let mut c = Node::new("127.0.0.3", &[&timeout[..], &["--join", &join]].concat());
    b.start();
    c.start();
    let mut w = Watch::default();
    let v3 = w.converge(&[&a, &b, &c], Some(&entries(&[&a, &b, &c])), 2 * SECOND);

    let t = Instant::now();
    c.kill();
    let v2 = w.converge(&[&a, &b], Some(&entries(&[&a, &b])), 4 * SECOND);
    assert!(v2 > v3);
    let dropped = t.elapsed();
    assert!(
        dropped >= Duration::from_millis(900),
        "dropped too early: {dropped:?}"
    );
    eprintln!("kill -9 seen by every node after {dropped:?} (timeout 1 s)");

    // Restarted on the same address, it is listed again everywhere.
    let t = Instant::now();
    c.start();
    let back = w.converge(&[&a, &b, &c], Some(&entries(&[&a, &b, &c])), 3 * SECOND);
    assert!(back > v2);
    eprintln!("return seen by every node after {:?}", t.elapsed());
}

#[test]
fn restarts_never_publish_an_older_version() {
    let dir = TempDir::new("cluster-restart");
    let file = dir.path("nodes");
    let mut nodes: Vec<Node> = (1..=3)
        .map(|i| Node::new(&format!("127.0.0.{i}"), &[]))
        .collect();
    let text: String = nodes.iter().map(|n| n.entry() + "\n").collect();
    write_atomic(&file, &text);
    for n in &mut nodes {
        n.args
            .extend(["--cluster-file".into(), file.display().to_string()]);
        n.start();
    }
    let all: String = {
        let r: Vec<&Node> = nodes.iter().collect();
        entries(&r)
    };
    let mut w = Watch::default();
    assert_eq!(nodes[0].ask(&config_set(500, &all)), b"STORED\r\n");
    let v = {
        let r: Vec<&Node> = nodes.iter().collect();
        w.converge(&r, Some(&all), 2 * SECOND)
    };
    assert!(v >= 500);

    // kill -9 and restart: it re-learns the version from its peers before
    // it serves, so its first answer is not the file's version 1.
    nodes[1].kill();
    nodes[1].start();
    assert_eq!(w.observe(&nodes[1]), Some((v, all.clone())));

    // Alone, with a state file: the saved version survives even with no
    // peer to ask.
    let state = dir.path("state");
    let mut solo = Node::new("127.0.0.4", &["--cluster-state", state.to_str().unwrap()]);
    solo.start();
    let one = solo.entry();
    assert_eq!(solo.ask(&config_set(9000, &one)), b"STORED\r\n");
    let (sv, _) = w.observe(&solo).unwrap();
    // Saved before it was served: kill at once.
    solo.kill();
    solo.start();
    assert_eq!(w.observe(&solo), Some((sv, one)));
}

#[test]
fn concurrent_changes_on_different_nodes_converge() {
    let dir = TempDir::new("cluster-concurrent");
    let file = dir.path("nodes");
    let mut nodes: Vec<Node> = (1..=3)
        .map(|i| Node::new(&format!("127.0.0.{i}"), &[]))
        .collect();
    let text: String = nodes.iter().map(|n| n.entry() + "\n").collect();
    write_atomic(&file, &text);
    for n in &mut nodes {
        n.args
            .extend(["--cluster-file".into(), file.display().to_string()]);
        n.start();
    }
    let refs: Vec<&Node> = nodes.iter().collect();
    let mut w = Watch::default();
    let mut v = w.converge(&refs, None, 2 * SECOND);
    for round in 0..5u64 {
        let x = format!("x{round}|10.0.0.1|1 {}", nodes[0].entry());
        let y = format!("y{round}|10.0.0.2|2 {}", nodes[1].entry());
        let reqs = [
            (nodes[0].addr(), config_set(v + 1, &x)),
            (nodes[1].addr(), config_set(v + 1, &y)),
        ];
        let barrier = std::sync::Barrier::new(2);
        let replies: Vec<Vec<u8>> = std::thread::scope(|s| {
            let hs: Vec<_> = reqs
                .iter()
                .map(|(addr, req)| {
                    let barrier = &barrier;
                    s.spawn(move || {
                        barrier.wait();
                        ask(*addr, req).unwrap()
                    })
                })
                .collect();
            // Poll while the changes race.
            for _ in 0..20 {
                for n in &refs {
                    w.observe(n);
                }
            }
            hs.into_iter().map(|h| h.join().unwrap()).collect()
        });
        // Both are accepted (each was above the version its node knew) or
        // one was refused because the other had already arrived.
        for r in &replies {
            assert!(
                r == b"STORED\r\n" || r.starts_with(b"CLIENT_ERROR version"),
                "{}",
                String::from_utf8_lossy(r)
            );
        }
        let nv = w.converge(&refs, None, 2 * SECOND);
        let (_, l) = w.observe(&nodes[2]).unwrap();
        assert!(
            l == list(&[x.split(' ').map(String::from).collect::<Vec<_>>()].concat())
                || l == list(&y.split(' ').map(String::from).collect::<Vec<_>>()),
            "{l}"
        );
        assert!(nv > v);
        v = nv;
    }
}

#[test]
fn convergence_time_on_loopback() {
    let dir = TempDir::new("cluster-converge");
    let file = dir.path("nodes");
    let mut nodes: Vec<Node> = (1..=5)
        .map(|i| Node::new(&format!("127.0.0.{i}"), &[]))
        .collect();
    let text: String = nodes.iter().map(|n| n.entry() + "\n").collect();
    write_atomic(&file, &text);
    for n in &mut nodes {
        n.args
            .extend(["--cluster-file".into(), file.display().to_string()]);
        n.start();
    }
    let refs: Vec<&Node> = nodes.iter().collect();
    let mut w = Watch::default();
    let v = w.converge(&refs, None, 2 * SECOND);

    let mut worst = Duration::ZERO;
    for i in 0..5u64 {
        let l = format!("{} extra{i}|10.0.0.9|11211", entries(&refs));
        let t = Instant::now();
        assert_eq!(
            nodes[(i % 5) as usize].ask(&config_set(v + 1 + i * 1000, &l)),
            b"STORED\r\n"
        );
        let l = list(&l.split(' ').map(String::from).collect::<Vec<_>>());
        w.converge(&refs, Some(&l), 2 * SECOND);
        worst = worst.max(t.elapsed());
    }
    eprintln!("config set on one node seen by all 5 nodes: worst {worst:?} over 5 changes");
    assert!(worst < SECOND, "{worst:?}");

    // A sixth node joins; a client polling any node sees it.
    let mut f = Node::new("127.0.0.6", &["--join", &nodes[2].hostport()]);
    let t = Instant::now();
    f.start();
    let all: Vec<&Node> = nodes.iter().chain(std::iter::once(&f)).collect();
    w.converge(&all, None, 2 * SECOND);
    let (_, l) = w.observe(&nodes[0]).unwrap();
    assert!(l.contains(&f.entry()), "{l}");
    eprintln!(
        "join seen by all 6 nodes after {:?} (including start-up)",
        t.elapsed()
    );
}
