//! A node that fails in the middle of a multi-get: the values it sent before failing are
//! returned, keys whose batch it answered in full are settled (a miss is a miss), and only
//! the keys it left unanswered are reported as failed.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::thread;

use ferrocache_client::{Client, Error};

/// A text server that answers the first `full` multi-get lines it reads with a value for
/// each of their keys in `found` and `END`, then answers the next line with a value for its
/// first key and closes the connection in the middle of the second.
fn serve(full: usize, found: &'static [&'static str]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    thread::spawn(move || {
        let (stream, _) = listener.accept().unwrap();
        let mut out = stream.try_clone().unwrap();
        let mut lines = BufReader::new(stream);
        for n in 0.. {
            let mut line = String::new();
            if lines.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            let keys: Vec<&str> = line.trim_end().split(' ').skip(1).collect();
            let mut reply = String::new();
            if n < full {
                for key in keys.iter().filter(|k| found.contains(k)) {
                    reply.push_str(&format!("VALUE {key} 0 1\r\nv\r\n"));
                }
                reply.push_str("END\r\n");
                out.write_all(reply.as_bytes()).unwrap();
            } else {
                let key = keys[0];
                let cut = format!("VALUE {key} 0 1\r\nv\r\nVALUE {} 0 5\r\nab", keys[1]);
                out.write_all(cut.as_bytes()).unwrap();
                return;
            }
        }
    });
    address
}

fn client(address: &str) -> Client {
    Client::builder().server(address).build().unwrap()
}

fn keys(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("k{i}")).collect()
}

#[test]
fn values_before_the_failure_are_kept_and_only_unanswered_keys_fail() {
    let address = serve(0, &[]);
    let keys = keys(5);
    let multi = client(&address).get_multi(&keys).unwrap();
    let found: Vec<&Vec<u8>> = multi.items.keys().collect();
    assert_eq!(found, [&b"k0".to_vec()]);
    assert_eq!(multi.failed.len(), 1);
    assert_eq!(multi.failed[0].node, address);
    let failed: Vec<&[u8]> = multi.failed[0].keys.iter().map(|k| &k[..]).collect();
    assert_eq!(failed, [&b"k1"[..], b"k2", b"k3", b"k4"]);
    assert!(
        matches!(multi.failed[0].error, Error::Closed { .. }),
        "{:?}",
        multi.failed[0].error
    );
}

#[test]
fn misses_in_batches_answered_in_full_are_misses() {
    // 300 keys go out as a batch of 256 and one of 44 (text: lines of 64 keys). The first
    // batch's four lines are answered in full (two hits); the second fails after one value.
    let address = serve(4, &["k3", "k200"]);
    let keys = keys(300);
    let multi = client(&address).get_multi(&keys).unwrap();
    let mut found: Vec<String> = multi
        .items
        .keys()
        .map(|k| String::from_utf8(k.clone()).unwrap())
        .collect();
    found.sort();
    assert_eq!(found, ["k200", "k256", "k3"]);
    assert_eq!(multi.failed.len(), 1);
    let failed: Vec<String> = multi.failed[0]
        .keys
        .iter()
        .map(|k| String::from_utf8(k.clone()).unwrap())
        .collect();
    assert_eq!(failed, keys[257..]);
}
