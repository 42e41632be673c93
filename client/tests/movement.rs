//! Key movement on membership changes: measured on the ring for several cluster sizes, and
//! end to end through discovery with real data (hits after a node joins or leaves).
//! Figures are printed with `--nocapture`.

mod support;

use std::time::Duration;

use ferrocache_client::{Client, Naming, Ring, Server};
use support::{config_reply, entry, memcached_path, Action, Responder, ServerProcess};

fn servers(n: u16) -> Vec<Server> {
    (0..n).map(|i| Server::new("10.1.0.1", 20000 + i)).collect()
}

#[test]
fn adding_moves_about_one_in_n_plus_one_removing_only_its_own() {
    let keys: Vec<String> = (0..20_000).map(|i| format!("move:{i}")).collect();
    for naming in [Naming::Libmemcached, Naming::Spymemcached] {
        for n in [3u16, 5, 10, 20] {
            let before = servers(n);
            let after = servers(n + 1);
            let (ring_a, ring_b) = (
                Ring::new(&before, naming).unwrap(),
                Ring::new(&after, naming).unwrap(),
            );
            let mut moved = 0;
            for key in &keys {
                let (a, b) = (ring_a.lookup(key), ring_b.lookup(key));
                if a != b {
                    assert_eq!(b, n as usize, "a key only moves to the new node");
                    moved += 1;
                }
            }
            let share = moved as f64 / keys.len() as f64;
            let ideal = 1.0 / f64::from(n + 1);
            eprintln!(
                "{naming:?}: {n} -> {} nodes moves {share:.4} (ideal {ideal:.4})",
                n + 1
            );
            assert!(
                (share - ideal).abs() < ideal * 0.35,
                "{naming:?} {n}: {share}"
            );

            // Removing a node: exactly its keys move, spread over the others.
            let gone = 1usize;
            let rest: Vec<Server> = after
                .iter()
                .enumerate()
                .filter(|&(i, _)| i != gone)
                .map(|(_, s)| s.clone())
                .collect();
            let ring_c = Ring::new(&rest, naming).unwrap();
            let mut its_keys = 0;
            for key in &keys {
                let old = &after[ring_b.lookup(key)];
                let new = &rest[ring_c.lookup(key)];
                if ring_b.lookup(key) == gone {
                    its_keys += 1;
                } else {
                    assert_eq!(old, new, "{naming:?}: only the removed node's keys move");
                }
            }
            eprintln!(
                "{naming:?}: removing 1 of {} nodes moves {:.4} (its own share)",
                n + 1,
                its_keys as f64 / keys.len() as f64
            );
        }
    }
}

#[test]
fn discovered_membership_changes_keep_most_hits() {
    let Some(path) = memcached_path() else {
        return require!(false, "memcached");
    };
    let nodes: Vec<ServerProcess> = (0..4).map(|_| ServerProcess::start(&path)).collect();
    let entries: Vec<String> = nodes.iter().map(|n| entry(n.port)).collect();
    let first = config_reply(1, &entries[..3]);
    let seed = Responder::start(move |_| Action::Send(first.clone()));
    let client = Client::builder()
        .seed(&seed.address())
        .poll_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    assert_eq!(client.nodes().len(), 3);

    let keys: Vec<String> = (0..3000).map(|i| format!("member:{i}")).collect();
    for key in &keys {
        client.set(key, "v", 0, 0).unwrap();
    }
    let hits = |client: &Client| {
        let found = client.get_multi(&keys).unwrap();
        assert!(found.failed.is_empty());
        found.items.len()
    };
    assert_eq!(hits(&client), keys.len());

    // A fourth node joins (version 2): only the keys it now owns miss.
    let second = config_reply(2, &entries);
    seed.script(move |_| Action::Send(second.clone()));
    assert!(client.refresh().unwrap());
    assert_eq!(client.nodes().len(), 4);
    let after_join = hits(&client);
    let kept = after_join as f64 / keys.len() as f64;
    eprintln!(
        "3 -> 4 nodes: {after_join} of {} keys still hit ({kept:.3})",
        keys.len()
    );
    assert!((0.65..0.85).contains(&kept), "{kept}");

    // Refill, then the second node leaves (version 3): exactly its keys miss.
    for key in &keys {
        client.set(key, "v", 0, 0).unwrap();
    }
    let on_second = keys
        .iter()
        .filter(|k| client.locate(k).unwrap().owner == format!("localhost:{}", nodes[1].port))
        .count();
    let third = config_reply(
        3,
        &[entries[0].clone(), entries[2].clone(), entries[3].clone()],
    );
    seed.script(move |_| Action::Send(third.clone()));
    assert!(client.refresh().unwrap());
    let after_leave = hits(&client);
    eprintln!(
        "4 -> 3 nodes: {after_leave} of {} keys still hit; the leaving node held {on_second}",
        keys.len()
    );
    assert_eq!(after_leave, keys.len() - on_second);
}
