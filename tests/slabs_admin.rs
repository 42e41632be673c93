//! `slabs automove` and `slabs reassign`: memcached's replies, the policy
//! `stats settings` shows, and a page that really moves.

mod common;
use common::*;
use std::collections::HashMap;
use std::time::Duration;

/// Pages per class, from `stats slabs`.
fn pages(c: &mut Conn) -> HashMap<i64, u64> {
    c.stats("slabs")
        .into_iter()
        .filter_map(|(name, value)| {
            let (class, field) = name.split_once(':')?;
            (field == "total_pages").then(|| (class.parse().unwrap(), value.parse().unwrap()))
        })
        .collect()
}

#[test]
fn slabs_automove_sets_the_policy_stats_settings_shows() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    for level in ["0", "2", "1"] {
        c.roundtrip(format!("slabs automove {level}\r\n").as_bytes(), b"OK\r\n");
        assert_eq!(c.stats("settings")["slab_automove"], level);
    }
    for (send, want) in [
        (&b"slabs automove 3\r\n"[..], &b"ERROR\r\n"[..]),
        (
            b"slabs automove x\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"slabs automove -1\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (b"slabs automove\r\n", b"ERROR\r\n"),
        (b"slabs automove ratio\r\n", b"ERROR\r\n"),
        (b"slabs automove ratio x\r\n", b"ERROR\r\n"),
        // A tuning knob of memcached's mover: accepted.
        (b"slabs automove ratio 0.5\r\n", b"OK\r\n"),
        (b"slabs\r\n", b"ERROR\r\n"),
        (b"slabs bogus 1\r\n", b"ERROR\r\n"),
        (b"SLABS automove 1\r\n", b"ERROR\r\n"),
    ] {
        c.roundtrip(send, want);
    }
    assert_eq!(c.stats("settings")["slab_automove"], "1");
    // noreply silences the answer, errors included.
    c.roundtrip(
        b"slabs automove 0 noreply\r\nslabs automove 9 noreply\r\nmn\r\n",
        b"MN\r\n",
    );
    assert_eq!(c.stats("settings")["slab_automove"], "0");
}

#[test]
fn slabs_reassign_answers_like_memcached() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    for (send, want) in [
        (
            &b"slabs reassign 5 5\r\n"[..],
            &b"SAME src and dst class are identical\r\n"[..],
        ),
        (
            b"slabs reassign 200 2\r\n",
            b"BADCLASS invalid src or dst class id\r\n",
        ),
        (
            b"slabs reassign 2 200\r\n",
            b"BADCLASS invalid src or dst class id\r\n",
        ),
        (
            b"slabs reassign -2 2\r\n",
            b"BADCLASS invalid src or dst class id\r\n",
        ),
        // 0 is memcached's pool of free pages; an empty source here.
        (
            b"slabs reassign 0 2\r\n",
            b"NOSPARE source class has no spare pages\r\n",
        ),
        (
            b"slabs reassign 3 4\r\n",
            b"NOSPARE source class has no spare pages\r\n",
        ),
        (
            b"slabs reassign x 2\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (b"slabs reassign 5\r\n", b"ERROR\r\n"),
        (b"slabs reassign 5 6 7\r\n", b"ERROR\r\n"),
        (b"slabs reassign 5 6 noreply\r\n", b"ERROR\r\n"),
    ] {
        c.roundtrip(send, want);
    }
    // memcached cuts a class id to 32 bits (here to 0, its empty pool);
    // ferrocache refuses the number.
    let want: &[u8] = if is_memcached() {
        b"NOSPARE source class has no spare pages\r\n"
    } else {
        b"CLIENT_ERROR bad command line format\r\n"
    };
    c.roundtrip(b"slabs reassign 2 4294967296\r\n", want);
    let off = Server::start(&["-o", "no_slab_reassign"]);
    off.conn().roundtrip(
        b"slabs reassign 3 4\r\n",
        b"CLIENT_ERROR slab reassignment disabled\r\n",
    );
}

#[test]
fn slabs_reassign_moves_a_page_and_keeps_a_class_its_last() {
    let s = Server::start(&["-m", "64", "-o", "slab_automove=0"]);
    let mut c = s.conn();
    // About 4 MB of 100-byte values: several pages of one class.
    let mut batch = Vec::new();
    for i in 0..30_000 {
        batch.extend_from_slice(format!("set k{i} 0 0 100 noreply\r\n").as_bytes());
        batch.extend_from_slice(&[b'x'; 100]);
        batch.extend_from_slice(b"\r\n");
    }
    c.send(&batch);
    c.roundtrip(b"mn\r\n", b"MN\r\n");
    let before = pages(&mut c);
    let (&src, &n) = before.iter().max_by_key(|(_, &n)| n).unwrap();
    assert!(n >= 3, "{before:?}");
    let dst = if src == 1 { 2 } else { 1 };
    let dst_before = before.get(&dst).copied().unwrap_or(0);
    c.roundtrip(
        format!("slabs reassign {src} {dst}\r\n").as_bytes(),
        b"OK\r\n",
    );
    // memcached moves the page in the background; ferrocache at once.
    let moved = wait_until(Duration::from_secs(5), || {
        let now = pages(&mut c);
        now.get(&src) == Some(&(n - 1)) && now.get(&dst) == Some(&(dst_before + 1))
    });
    assert!(moved, "{before:?} -> {:?}", pages(&mut c));
    // The items on the moved page are gone; the others are intact.
    let mut hits = 0;
    for i in (0..30_000).step_by(97) {
        c.send(format!("get k{i}\r\n").as_bytes());
        let items = c.read_get_reply();
        if let Some((_, _, value, _)) = items.first() {
            assert_eq!(value, &vec![b'x'; 100]);
            hits += 1;
        }
    }
    assert!(hits > 0 && hits < 310, "{hits}");
    // -1: the server picks a source with pages to spare.
    c.roundtrip(format!("slabs reassign -1 {dst}\r\n").as_bytes(), b"OK\r\n");
    assert!(wait_until(Duration::from_secs(5), || {
        pages(&mut c).get(&dst) == Some(&(dst_before + 2))
    }));
    // A class keeps its last page.
    c.roundtrip(
        format!("slabs reassign {dst} {src}\r\n").as_bytes(),
        b"OK\r\n",
    );
    assert!(wait_until(Duration::from_secs(5), || {
        pages(&mut c).get(&dst) == Some(&(dst_before + 1))
    }));
    if dst_before == 0 {
        c.roundtrip(
            format!("slabs reassign {dst} {src}\r\n").as_bytes(),
            b"NOSPARE source class has no spare pages\r\n",
        );
    }
}
