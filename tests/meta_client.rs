//! A third-party meta protocol client (the `async-memcached` crate, which
//! speaks `mg`/`ms`/`md`/`ma`/`mn`) doing basic operations against the
//! server. Passes against memcached too (`FERROCACHE_TEST_TARGET=memcached`).

mod common;

use async_memcached::{Client, MetaProtocol};
use common::Server;

#[tokio::test(flavor = "current_thread")]
async fn async_memcached_basic_operations() {
    let server = Server::start(&[]);
    let mut client = Client::new(format!("tcp://{}", server.addr()))
        .await
        .expect("connect");

    // Set, then get with metadata.
    let set = client
        .meta_set(
            "greeting",
            "hello",
            false,
            Some(b"op1"),
            Some(&["c", "T60"]),
        )
        .await
        .expect("meta_set");
    let cas = set.and_then(|v| v.cas).expect("ms c returns a CAS");
    let got = client
        .meta_get(
            "greeting",
            false,
            Some(b"op2"),
            Some(&["v", "c", "f", "s", "t", "k"]),
        )
        .await
        .expect("meta_get")
        .expect("a hit");
    assert_eq!(got.data.as_deref(), Some(&b"hello"[..]));
    assert_eq!(got.cas, Some(cas));
    assert_eq!(got.flags, Some(0));
    assert_eq!(got.size, Some(5));
    assert!(matches!(got.ttl_remaining, Some(59..=60)), "{got:?}");
    assert_eq!(got.key.as_deref(), Some(&b"greeting"[..]));
    assert_eq!(got.opaque_token.as_deref(), Some(&b"op2"[..]));

    // Quiet get of a miss goes through the client's mn handling.
    let miss = client
        .meta_get("absent", true, None, Some(&["v"]))
        .await
        .expect("quiet meta_get");
    assert!(miss.is_none());

    // Counters.
    client
        .meta_set("hits", "10", false, None, None)
        .await
        .expect("meta_set counter");
    let up = client
        .meta_increment("hits", false, None, Some(5), Some(&["v"]))
        .await
        .expect("meta_increment")
        .expect("a value");
    assert_eq!(up.data.as_deref(), Some(&b"15"[..]));
    let down = client
        .meta_decrement("hits", false, None, Some(20), Some(&["v"]))
        .await
        .expect("meta_decrement")
        .expect("a value");
    assert_eq!(down.data.as_deref(), Some(&b"0"[..]));

    // Delete, then the key is gone.
    client
        .meta_delete("greeting", false, None, None)
        .await
        .expect("meta_delete");
    let gone = client
        .meta_get("greeting", false, None, Some(&["v"]))
        .await
        .expect("meta_get after delete");
    assert!(gone.is_none());

    // The text protocol sees what the meta client stored.
    let mut c = server.conn();
    c.roundtrip(b"get hits\r\n", b"VALUE hits 0 2\r\n0 \r\nEND\r\n");
}
