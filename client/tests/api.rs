//! Every operation against real memcached instances (Debian's memcached 1.6).

mod support;

use std::sync::Arc;
use std::thread;
use std::time::Duration;

use ferrocache_client::{Client, Error, NodeState};
use support::{memcached_path, ServerProcess};

fn cluster(n: usize) -> Option<Vec<ServerProcess>> {
    let path = memcached_path()?;
    Some((0..n).map(|_| ServerProcess::start(&path)).collect())
}

fn client_for(servers: &[ServerProcess]) -> Client {
    Client::builder()
        .servers(servers.iter().map(ServerProcess::address))
        .build()
        .unwrap()
}

#[test]
fn single_key_operations() {
    let Some(servers) = cluster(1) else {
        return require!(false, "memcached");
    };
    let client = client_for(&servers);

    assert_eq!(client.get("missing").unwrap(), None);
    client.set("k", b"v1\r\nEND\r\n", 42, 0).unwrap();
    let item = client.get("k").unwrap().unwrap();
    assert_eq!(item.value, b"v1\r\nEND\r\n");
    assert_eq!(item.flags, 42);
    assert_eq!(item.cas, None);

    assert!(matches!(client.add("k", "x", 0, 0), Err(Error::NotStored)));
    assert!(matches!(
        client.replace("absent", "x", 0, 0),
        Err(Error::NotStored)
    ));
    client.add("new", "a", 1, 0).unwrap();
    client.replace("new", "b", 2, 0).unwrap();
    client.append("new", "c").unwrap();
    client.prepend("new", "<").unwrap();
    let item = client.gets("new").unwrap().unwrap();
    assert_eq!((item.value.as_slice(), item.flags), (&b"<bc"[..], 2));
    let cas = item.cas.expect("gets returns a cas");
    assert!(matches!(
        client.append("absent", "x"),
        Err(Error::NotStored)
    ));

    client.cas("new", "swapped", 3, 0, cas).unwrap();
    assert!(matches!(
        client.cas("new", "again", 3, 0, cas),
        Err(Error::Exists)
    ));
    assert!(matches!(
        client.cas("absent", "x", 0, 0, cas),
        Err(Error::NotFound)
    ));

    client.set("n", "10", 0, 0).unwrap();
    assert_eq!(client.incr("n", 5).unwrap(), 15);
    assert_eq!(client.decr("n", 100).unwrap(), 0);
    assert!(matches!(client.incr("absent", 1), Err(Error::NotFound)));
    assert!(matches!(client.incr("k", 1), Err(Error::ClientError(_))));

    client.touch("n", 100).unwrap();
    assert!(matches!(client.touch("absent", 1), Err(Error::NotFound)));
    // memcached pads a value that a decr shortened with spaces.
    let value = client.gat("n", 200).unwrap().unwrap().value;
    assert_eq!(String::from_utf8(value).unwrap().trim_end(), "0");
    assert_eq!(client.gat("absent", 200).unwrap(), None);

    client.delete("n").unwrap();
    assert!(matches!(client.delete("n"), Err(Error::NotFound)));

    // Invalid keys never reach the server.
    for key in ["", "has space", "line\r\nbreak"] {
        assert!(
            matches!(client.get(key), Err(Error::InvalidKey(_))),
            "{key:?}"
        );
    }
    assert!(matches!(
        client.set("k".repeat(251), "v", 0, 0),
        Err(Error::InvalidKey(_))
    ));

    // A large value goes through the growing read buffer and back.
    let big = vec![7u8; 600 * 1024];
    client.set("big", &big, 0, 0).unwrap();
    assert_eq!(client.get("big").unwrap().unwrap().value, big);
    // The connection stays usable afterwards.
    assert_eq!(client.get("k").unwrap().unwrap().flags, 42);
}

#[test]
fn cluster_wide_commands_and_multi_get() {
    let Some(servers) = cluster(3) else {
        return require!(false, "memcached");
    };
    let client = client_for(&servers);

    let keys: Vec<String> = (0..500).map(|i| format!("multi:{i}")).collect();
    for (i, key) in keys.iter().enumerate() {
        client.set(key, i.to_string(), i as u32, 0).unwrap();
    }
    let mut wanted = keys.clone();
    wanted.push("multi:absent".into());
    let got = client.get_multi(&wanted).unwrap();
    assert!(got.failed.is_empty(), "{:?}", got.failed);
    assert_eq!(got.items.len(), 500);
    for (i, key) in keys.iter().enumerate() {
        let item = &got.items[key.as_bytes()];
        assert_eq!(item.value, i.to_string().as_bytes());
        assert_eq!(item.flags, i as u32);
    }

    // Every node holds a share of the keys.
    let stats = client.stats().unwrap();
    assert_eq!(stats.len(), 3);
    let mut total = 0;
    for (node, result) in &stats {
        let stats = result.as_ref().unwrap();
        let items: u64 = stats
            .iter()
            .find(|(name, _)| name == "curr_items")
            .map(|(_, v)| v.parse().unwrap())
            .unwrap();
        assert!(items > 50, "{node} holds only {items} keys");
        total += items;
    }
    assert_eq!(total, 500);

    let versions = client.version().unwrap();
    assert!(versions
        .iter()
        .all(|(_, v)| v.as_ref().unwrap().starts_with("1.")));

    client.flush_all(None).unwrap();
    let got = client.get_multi(&keys).unwrap();
    assert!(got.items.is_empty() && got.failed.is_empty());
}

#[test]
fn pool_stays_bounded_under_many_threads() {
    let Some(servers) = cluster(2) else {
        return require!(false, "memcached");
    };
    let client = Arc::new(
        Client::builder()
            .servers(servers.iter().map(ServerProcess::address))
            .pool_size(2)
            .pool_wait(Duration::from_secs(5))
            .build()
            .unwrap(),
    );
    let threads: Vec<_> = (0..16)
        .map(|t| {
            let client = client.clone();
            thread::spawn(move || {
                for i in 0..200 {
                    let key = format!("t{t}:{i}");
                    client.set(&key, "v", 0, 0).unwrap();
                    assert!(client.get(&key).unwrap().is_some());
                    let max = client.nodes().iter().map(|n| n.connections.1).max();
                    assert!(max <= Some(2), "{max:?}");
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    for node in client.nodes() {
        assert_eq!(node.state, NodeState::Up);
        assert!(
            node.connections.1 <= 2 && node.connections.1 >= 1,
            "{node:?}"
        );
    }
}
