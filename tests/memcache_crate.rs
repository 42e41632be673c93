//! The third-party `memcache` crate (text protocol) against the server.

mod common;
use common::*;
use memcache::Client;

fn client(s: &Server) -> Client {
    let c = Client::connect(format!("memcache://127.0.0.1:{}?protocol=ascii", s.port()))
        .expect("connect");
    c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
        .unwrap();
    c
}

#[test]
fn set_get_delete() {
    let s = Server::start(&[]);
    let c = client(&s);
    c.set("foo", "bar", 0).unwrap();
    assert_eq!(c.get::<String>("foo").unwrap().as_deref(), Some("bar"));
    c.set("bin", &b"a\r\nb\0c"[..], 0).unwrap();
    assert_eq!(
        c.get::<Vec<u8>>("bin").unwrap().as_deref(),
        Some(&b"a\r\nb\0c"[..])
    );
    c.set("num", 42u64, 0).unwrap();
    assert_eq!(c.get::<u64>("num").unwrap(), Some(42));
    assert!(c.delete("foo").unwrap());
    assert!(!c.delete("foo").unwrap());
    assert_eq!(c.get::<String>("foo").unwrap(), None);
}

#[test]
fn add_replace_append_prepend() {
    let s = Server::start(&[]);
    let c = client(&s);
    c.add("k", "one", 0).unwrap();
    c.add("k", "two", 0).unwrap(); // NOT_STORED is not an error for this client
    assert_eq!(c.get::<String>("k").unwrap().as_deref(), Some("one"));
    c.replace("k", "three", 0).unwrap();
    assert_eq!(c.get::<String>("k").unwrap().as_deref(), Some("three"));
    c.replace("missing", "x", 0).unwrap();
    assert_eq!(c.get::<String>("missing").unwrap(), None);
    c.append("k", ">>").unwrap();
    c.prepend("k", "<<").unwrap();
    assert_eq!(c.get::<String>("k").unwrap().as_deref(), Some("<<three>>"));
}

#[test]
fn gets_and_cas() {
    let s = Server::start(&[]);
    let c = client(&s);
    c.set("a", "1", 0).unwrap();
    c.set("b", "2", 0).unwrap();
    let m: std::collections::HashMap<String, (Vec<u8>, u32, Option<u64>)> =
        c.gets(&["a", "b", "nope"]).unwrap();
    assert_eq!(m.len(), 2);
    let (v, _flags, cas) = &m["a"];
    assert_eq!(v, b"1");
    let cas = cas.expect("gets returns a CAS");
    assert!(c.cas("a", "10", 0, cas).unwrap());
    // The crate reports both EXISTS and NOT_FOUND as "not stored".
    assert!(!c.cas("a", "11", 0, cas).unwrap(), "stale cas must fail");
    assert!(
        !c.cas("nope", "x", 0, cas).unwrap(),
        "cas on a missing key must fail"
    );
    assert_eq!(c.get::<String>("a").unwrap().as_deref(), Some("10"));
}

#[test]
fn incr_decr() {
    let s = Server::start(&[]);
    let c = client(&s);
    c.set("n", 10u64, 0).unwrap();
    assert_eq!(c.increment("n", 5).unwrap(), 15);
    assert_eq!(c.decrement("n", 20).unwrap(), 0);
    assert_eq!(c.increment("n", u64::MAX).unwrap(), u64::MAX);
    assert_eq!(c.increment("n", 2).unwrap(), 1);
    assert!(c.increment("missing", 1).is_err());
}

#[test]
fn touch_and_expiry() {
    let s = Server::start(&[]);
    let c = client(&s);
    c.set("t", "v", 0).unwrap();
    assert!(c.touch("t", 1).unwrap());
    assert!(!c.touch("missing", 1).unwrap());
    assert!(wait_until(std::time::Duration::from_secs(4), || c
        .get::<String>("t")
        .unwrap()
        .is_none()));
}

#[test]
fn flush_version_stats() {
    let s = Server::start(&[]);
    let c = client(&s);
    c.set("a", "1", 0).unwrap();
    c.flush().unwrap();
    assert_eq!(c.get::<String>("a").unwrap(), None);
    c.set("a", "1", 0).unwrap();
    c.flush_with_delay(1).unwrap();
    assert!(wait_until(std::time::Duration::from_secs(4), || c
        .get::<String>("a")
        .unwrap()
        .is_none()));
    let v = c.version().unwrap();
    assert_eq!(v.len(), 1);
    assert!(
        v[0].1.chars().next().unwrap().is_ascii_digit(),
        "version {:?}",
        v[0].1
    );
    // memcache 0.21 stops reading `stats` after the first line and leaves the rest in the
    // stream, so only check that the call succeeds, on a client used for nothing else.
    let other = client(&s);
    assert!(other.stats().is_ok());
    // The server itself answers the full list on a clean connection.
    let mut raw = s.conn();
    let st = raw.stats("");
    for k in ["pid", "curr_items", "cmd_get", "get_hits", "version"] {
        assert!(st.contains_key(k), "stats missing {k}");
    }
    assert_eq!(st["version"], v[0].1);
}

#[test]
fn many_keys_through_a_pool() {
    let s = Server::start(&[]);
    let c = Client::builder()
        .add_server(format!("memcache://127.0.0.1:{}?protocol=ascii", s.port()))
        .unwrap()
        .with_max_pool_size(4)
        .build()
        .unwrap();
    let c = std::sync::Arc::new(c);
    let hs: Vec<_> = (0..4)
        .map(|t| {
            let c = c.clone();
            std::thread::spawn(move || {
                for i in 0..200 {
                    let k = format!("t{t}k{i}");
                    c.set(&k, format!("value {t} {i}").as_str(), 0).unwrap();
                    assert_eq!(c.get::<String>(&k).unwrap(), Some(format!("value {t} {i}")));
                }
            })
        })
        .collect();
    for h in hs {
        h.join().unwrap();
    }
}
