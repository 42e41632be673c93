//! Meta protocol black-box tests: exact reply bytes for every flag and the
//! documented combinations, the stale/win/recache sequence, quiet
//! pipelines, bad input, and CAS interplay with the text commands.
//!
//! Every test except those marked ferrocache-only passes unchanged against
//! memcached 1.6.18 (`FERROCACHE_TEST_TARGET=memcached`). CAS values are
//! exact because each test starts a fresh server, whose CAS counter starts
//! at 1 on both. TTLs are only compared exactly when they are `-1`;
//! otherwise they are checked within a one-second tick.

mod common;

use common::{Conn, Server};

fn server() -> (Server, Conn) {
    let s = Server::start(&[]);
    let c = s.conn();
    (s, c)
}

/// Sends `line` and returns the reply line (without `\r\n`).
fn line(c: &mut Conn, send: &str) -> String {
    c.send(send.as_bytes());
    let l = c.read_line();
    String::from_utf8(l)
        .unwrap()
        .trim_end_matches("\r\n")
        .to_string()
}

/// The number after ` <flag>` in a reply line.
fn flag_num(reply: &str, flag: char) -> i64 {
    reply
        .split(' ')
        .find_map(|t| t.strip_prefix(flag).and_then(|v| v.parse().ok()))
        .unwrap_or_else(|| panic!("no {flag} in {reply:?}"))
}

#[test]
fn mg_return_flags() {
    let (_s, mut c) = server();
    c.roundtrip(b"mg foo\r\n", b"EN\r\n");
    c.roundtrip(b"mg foo v\r\n", b"EN\r\n");
    // A miss reports only the opaque and the key, in request order.
    c.roundtrip(b"mg foo k O123 v s\r\n", b"EN kfoo O123\r\n");
    c.roundtrip(b"mg foo O123 k\r\n", b"EN O123 kfoo\r\n");
    c.roundtrip(b"ms foo 2 F5\r\nhi\r\n", b"HD\r\n");
    c.roundtrip(b"mg foo\r\n", b"HD\r\n");
    c.roundtrip(b"mg foo v\r\n", b"VA 2\r\nhi\r\n");
    c.roundtrip(
        b"mg foo s v f t c k O99 q\r\n",
        b"VA 2 s2 f5 t-1 c1 kfoo O99\r\nhi\r\n",
    );
    c.roundtrip(b"mg foo c f s\r\n", b"HD c1 f5 s2\r\n");
    c.roundtrip(
        b"mg foo P L Lx Pfoo\r\n",
        b"CLIENT_ERROR duplicate flag\r\n",
    );
    c.roundtrip(b"mg foo P L\r\n", b"HD\r\n");
    // A 31-byte opaque is the longest accepted.
    c.roundtrip(
        b"mg foo O1234567890123456789012345678901\r\n",
        b"HD O1234567890123456789012345678901\r\n",
    );
}

#[test]
fn mg_hit_and_last_access() {
    let (_s, mut c) = server();
    c.roundtrip(b"ms k 1\r\nx\r\n", b"HD\r\n");
    // `u` reads without bumping: the item stays unfetched.
    let r = line(&mut c, "mg k u h\r\n");
    assert_eq!(r, "HD h0");
    let r = line(&mut c, "mg k h l\r\n");
    assert!(r.starts_with("HD h0 l"), "{r}");
    assert!(flag_num(&r, 'l') <= 1, "{r}");
    let r = line(&mut c, "mg k h\r\n");
    assert_eq!(r, "HD h1");
    // incr/decr and ma are writes, not reads.
    c.roundtrip(b"set n 0 0 1\r\n9\r\n", b"STORED\r\n");
    c.roundtrip(b"incr n 1\r\n", b"10\r\n");
    c.roundtrip(b"ma n\r\n", b"HD\r\n");
    c.roundtrip(b"mg n h\r\n", b"HD h0\r\n");
    c.roundtrip(b"mg n h\r\n", b"HD h1\r\n");
}

#[test]
fn mg_ttl_and_touch() {
    let (_s, mut c) = server();
    c.roundtrip(b"ms k 1 T0\r\nx\r\n", b"HD\r\n");
    // `t` before `T` reports the TTL as it was; after it, the new one.
    c.roundtrip(b"mg k t T30\r\n", b"HD t-1\r\n");
    let r = line(&mut c, "mg k T60 t\r\n");
    assert_eq!(r, "HD t60");
    let r = line(&mut c, "mg k t\r\n");
    assert!((59..=60).contains(&flag_num(&r, 't')), "{r}");
    c.roundtrip(b"mg k T0 t\r\n", b"HD t-1\r\n");
    // A negative TTL expires the item at once.
    c.roundtrip(b"mg k T-1\r\n", b"HD\r\n");
    c.roundtrip(b"mg k\r\n", b"EN\r\n");
}

#[test]
fn ms_flags_and_modes() {
    let (_s, mut c) = server();
    c.roundtrip(b"ms foo 2 T0 F5 c\r\nhi\r\n", b"HD c1\r\n");
    c.roundtrip(
        b"mg foo f t c s k v\r\n",
        b"VA 2 f5 t-1 c1 s2 kfoo\r\nhi\r\n",
    );
    // ms echoes c, k and O (and b after k); s, f, t are ignored.
    c.roundtrip(b"ms foo 2 c k O55 s f t\r\nhi\r\n", b"HD c2 kfoo O55\r\n");
    // Modes.
    c.roundtrip(b"ms foo 2 ME\r\nhi\r\n", b"NS\r\n");
    c.roundtrip(b"ms foo 2 ME c\r\nhi\r\n", b"NS c0\r\n");
    c.roundtrip(b"ms new 2 ME\r\nab\r\n", b"HD\r\n");
    c.roundtrip(b"ms new 2 MA\r\ncd\r\n", b"HD\r\n");
    c.roundtrip(b"ms new 2 MP\r\n01\r\n", b"HD\r\n");
    c.roundtrip(b"mg new v\r\n", b"VA 6\r\n01abcd\r\n");
    c.roundtrip(b"ms new 1 MR\r\nz\r\n", b"HD\r\n");
    c.roundtrip(b"mg new v\r\n", b"VA 1\r\nz\r\n");
    c.roundtrip(b"ms none 1 MR\r\nz\r\n", b"NS\r\n");
    c.roundtrip(b"ms none 1 MA\r\nz\r\n", b"NS\r\n");
    c.roundtrip(b"ms none 1 MP\r\nz\r\n", b"NS\r\n");
    c.roundtrip(b"ms new 1 MS\r\ny\r\n", b"HD\r\n");
    c.roundtrip(b"mg new v\r\n", b"VA 1\r\ny\r\n");
    // Compare and swap.
    c.roundtrip(b"ms foo 2 C1 c\r\nhi\r\n", b"EX c0\r\n");
    c.roundtrip(b"ms foo 2 C2\r\nhi\r\n", b"HD\r\n");
    c.roundtrip(b"ms none 2 C5\r\nhi\r\n", b"NF\r\n");
    c.roundtrip(b"ms none 2 C5 MR\r\nhi\r\n", b"NF\r\n");
    c.roundtrip(b"ms none 2 C5 MA\r\nhi\r\n", b"NS\r\n");
    c.roundtrip(b"ms none 2 C5 MP\r\nhi\r\n", b"NS\r\n");
    // Negative TTL: stored and gone.
    c.roundtrip(b"ms foo 2 T-1\r\nhi\r\n", b"HD\r\n");
    c.roundtrip(b"mg foo\r\n", b"EN\r\n");
    // Client flags are 32 bits.
    c.roundtrip(b"ms f 1 F4294967295\r\nx\r\n", b"HD\r\n");
    c.roundtrip(b"mg f f\r\n", b"HD f4294967295\r\n");
    // `I` with an older compare CAS stores and marks the item stale.
    c.roundtrip(b"ms i 1 c\r\nx\r\n", b"HD c11\r\n");
    c.roundtrip(b"ms i 1 C10 I\r\ny\r\n", b"HD\r\n");
    c.roundtrip(b"mg i v c\r\n", b"VA 1 c12 X W\r\ny\r\n");
    c.roundtrip(b"ms i 1 C100 I c\r\nz\r\n", b"EX c0\r\n");
    // An equal CAS is a plain compare-and-swap: not stale.
    c.roundtrip(b"ms i 1 C12 I c\r\nz\r\n", b"HD c13\r\n");
    c.roundtrip(b"mg i v c\r\n", b"VA 1 c13\r\nz\r\n");
}

#[test]
fn md_flags() {
    let (_s, mut c) = server();
    c.roundtrip(b"md k\r\n", b"NF\r\n");
    c.roundtrip(b"md k k O5 c\r\n", b"NF kk O5\r\n");
    c.roundtrip(b"ms k 1\r\nx\r\n", b"HD\r\n");
    c.roundtrip(b"md k C9\r\n", b"EX\r\n");
    c.roundtrip(b"md k k O5 c C1\r\n", b"HD kk O5\r\n");
    c.roundtrip(b"mg k\r\n", b"EN\r\n");
    // Quiet hides HD only.
    c.roundtrip(b"ms k 1\r\nx\r\n", b"HD\r\n");
    c.send(b"md k q\r\nmd k q\r\nmn\r\n");
    c.expect(b"NF\r\nMN\r\n");
    // Invalidation with a new TTL.
    c.roundtrip(b"ms s 1 T0\r\nx\r\n", b"HD\r\n");
    c.roundtrip(b"md s I T30\r\n", b"HD\r\n");
    let r = line(&mut c, "mg s t c\r\n");
    assert!(r.ends_with(" c4 X W"), "{r}");
    assert!((29..=30).contains(&flag_num(&r, 't')), "{r}");
    c.roundtrip(b"md s I T0\r\n", b"HD\r\n");
    c.roundtrip(b"mg s t c\r\n", b"HD t-1 c5 X W\r\n");
    c.roundtrip(b"md none I\r\n", b"NF\r\n");
}

#[test]
fn ma_flags() {
    let (_s, mut c) = server();
    c.roundtrip(b"ma cnt\r\n", b"NF\r\n");
    c.roundtrip(b"ma cnt q\r\n", b"NF\r\n");
    c.roundtrip(b"ma cnt N0 J10 v\r\n", b"VA 2\r\n10\r\n");
    c.roundtrip(b"ma cnt v\r\n", b"VA 2\r\n11\r\n");
    c.roundtrip(
        b"ma cnt v t c k O1 D5\r\n",
        b"VA 2 t-1 c3 kcnt O1\r\n16\r\n",
    );
    c.roundtrip(b"ma cnt MD D100 v\r\n", b"VA 1\r\n0\r\n");
    c.roundtrip(b"ma cnt M- D1 v\r\n", b"VA 1\r\n0\r\n");
    c.roundtrip(b"ma cnt M+ D7 v\r\n", b"VA 1\r\n7\r\n");
    c.roundtrip(b"ma cnt MI D7 v\r\n", b"VA 2\r\n14\r\n");
    c.roundtrip(b"ma cnt\r\n", b"HD\r\n");
    c.roundtrip(b"ma cnt D18446744073709551615 v\r\n", b"VA 2\r\n14\r\n");
    // Quiet hides both HD and VA; failures still show.
    c.send(b"ma cnt q\r\nma cnt q v\r\nma cnt C1 q\r\nma none q\r\nmn\r\n");
    c.expect(b"EX\r\nNF\r\nMN\r\n");
    c.roundtrip(b"mg cnt v\r\n", b"VA 2\r\n16\r\n");
    // Vivify with a TTL.
    let r = line(&mut c, "ma viv N30 J5 t v\r\n");
    assert!(r.starts_with("VA 1 t"), "{r}");
    assert!((29..=30).contains(&flag_num(&r, 't')), "{r}");
    c.expect(b"5\r\n");
    c.roundtrip(b"ma viv v\r\n", b"VA 1\r\n6\r\n");
    // Quiet mode does not hide the reply of a created counter.
    c.send(b"ma q1 N0 q v\r\nma q1 N0 q v\r\nma q2 N0 q\r\nmn\r\n");
    c.expect(b"VA 1\r\n0\r\nHD\r\nMN\r\n");
    c.roundtrip(b"ms txt 3\r\nabc\r\n", b"HD\r\n");
    c.roundtrip(
        b"ma txt v\r\n",
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
    // Accepted and ignored by ma.
    c.roundtrip(b"ma cnt f s h l u I\r\n", b"HD\r\n");
    // An empty value is non-numeric before any CAS comparison.
    c.roundtrip(b"ms e 0\r\n\r\n", b"HD\r\n");
    c.roundtrip(
        b"ma e C1\r\n",
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
}

#[test]
fn ma_and_text_incr_share_items() {
    let (_s, mut c) = server();
    c.roundtrip(b"set n 0 0 2\r\n10\r\n", b"STORED\r\n");
    c.roundtrip(b"ma n v\r\n", b"VA 2\r\n11\r\n");
    c.roundtrip(b"incr n 4\r\n", b"15\r\n");
    c.roundtrip(b"ma n MD D20 v\r\n", b"VA 1\r\n0\r\n");
}

#[test]
fn me_and_mn() {
    let (_s, mut c) = server();
    c.roundtrip(b"me nope\r\n", b"EN\r\n");
    c.roundtrip(
        b"me !!!! b\r\n",
        b"CLIENT_ERROR bad command line format\r\n",
    );
    c.roundtrip(b"me\r\n", b"CLIENT_ERROR bad command line format\r\n");
    c.roundtrip(b"mn\r\n", b"MN\r\n");
    c.roundtrip(b"mn extra tokens\r\n", b"MN\r\n");
    c.roundtrip(b"ms k 1\r\nx\r\n", b"HD\r\n");
    let r = line(&mut c, "me k\r\n");
    assert!(r.starts_with("ME k exp=-1 la="), "{r}");
    assert!(r.contains(" cas=1 fetch=no cls="), "{r}");
    c.roundtrip(b"mg k\r\n", b"HD\r\n");
    let r = line(&mut c, "me k\r\n");
    assert!(r.contains(" cas=1 fetch=yes cls="), "{r}");
}

#[test]
fn stale_win_recache_sequence() {
    let (_s, mut c) = server();
    c.roundtrip(b"ms m 2 T0 F5 c\r\nhi\r\n", b"HD c1\r\n");
    c.roundtrip(b"mg m v f t c s k\r\n", b"VA 2 f5 t-1 c1 s2 km\r\nhi\r\n");
    // Invalidate: the item stays, stale, with a new CAS.
    c.roundtrip(b"md m I\r\n", b"HD\r\n");
    // The first reader wins the recache, later ones see Z.
    c.roundtrip(b"mg m v c\r\n", b"VA 2 c2 X W\r\nhi\r\n");
    c.roundtrip(b"mg m v c\r\n", b"VA 2 c2 Z X\r\nhi\r\n");
    c.roundtrip(b"mg m c\r\n", b"HD c2 Z X\r\n");
    // The winner recaches with the CAS it saw; the stale mark goes.
    c.roundtrip(b"ms m 3 C2 c\r\nnew\r\n", b"HD c3\r\n");
    c.roundtrip(b"mg m v c\r\n", b"VA 3 c3\r\nnew\r\n");
    // Invalidating again puts the win up for grabs again.
    c.roundtrip(b"md m I q\r\nmn\r\n", b"MN\r\n");
    c.roundtrip(b"mg m c\r\n", b"HD c4 X W\r\n");
    // Recache on TTL: R wins when the TTL left is below its token.
    c.roundtrip(b"ms r 1 T100\r\nx\r\n", b"HD\r\n");
    c.roundtrip(b"mg r R30 c\r\n", b"HD c5\r\n");
    c.roundtrip(b"mg r R200 c\r\n", b"HD c5 W\r\n");
    c.roundtrip(b"mg r R200 c\r\n", b"HD c5 Z\r\n");
    c.roundtrip(b"ms r 1 T0\r\nx\r\n", b"HD\r\n");
    c.roundtrip(b"mg r R200 c\r\n", b"HD c6\r\n");
    // Flags apply in order: R after T judges the new TTL, R before it the old.
    c.roundtrip(b"mg r R200 T30 c\r\n", b"HD c6\r\n");
    c.roundtrip(b"ms r 1 T0\r\nx\r\n", b"HD\r\n");
    c.roundtrip(b"mg r T30 R200 c\r\n", b"HD c7 W\r\n");
}

#[test]
fn vivify_hands_out_one_win() {
    let (_s, mut c) = server();
    let mut d = _s.conn();
    c.roundtrip(b"mg viv N30 s v c\r\n", b"VA 0 s0 c1 W\r\n\r\n");
    // Another client sees the placeholder and that the win is taken.
    d.roundtrip(b"mg viv N30 s v c\r\n", b"VA 0 s0 c1 Z\r\n\r\n");
    // The winner fills it in.
    c.roundtrip(b"ms viv 3 c\r\nnew\r\n", b"HD c2\r\n");
    d.roundtrip(b"mg viv N30 v c\r\n", b"VA 3 c2\r\nnew\r\n");
    // On a miss, a `t` before the N reports no TTL yet.
    c.roundtrip(b"mg v2 t N30 q\r\n", b"HD t-1 W\r\n");
}

#[test]
fn base64_keys() {
    let (_s, mut c) = server();
    c.roundtrip(b"ms Zm9v 2 c k O55 b\r\nhi\r\n", b"HD c1 kZm9v b O55\r\n");
    c.roundtrip(b"mg Zm9v b k v c\r\n", b"VA 2 kZm9v b c1\r\nhi\r\n");
    // The decoded key is the item's key; the text protocol sees it.
    c.roundtrip(b"get foo\r\n", b"VALUE foo 0 2\r\nhi\r\nEND\r\n");
    // An item stored through a base64 key is named in base64 by `k`.
    c.roundtrip(b"mg foo k\r\n", b"HD kZm9v b\r\n");
    c.roundtrip(b"mg Zm9v k v c\r\n", b"EN kZm9v\r\n");
    // me takes `b` only right after the key, and names the item in base64.
    let r = line(&mut c, "me Zm9v b\r\n");
    assert!(r.starts_with("ME Zm9v exp=-1 la="), "{r}");
    let r = line(&mut c, "me foo\r\n");
    assert!(r.starts_with("ME Zm9v exp=-1 la="), "{r}");
    c.roundtrip(b"me Zm9v k b\r\n", b"EN\r\n");
    c.roundtrip(b"mg Zg== b k v\r\n", b"EN kZg== b\r\n");
    // memcached's decoder skips stray bytes and stops after padding; `k`
    // echoes the key re-encoded.
    c.roundtrip(b"mg Zm9v\x7f b k v\r\n", b"VA 2 kZm9v b\r\nhi\r\n");
    c.roundtrip(b"mg Zg==Zm9v b k\r\n", b"EN kZg== b\r\n");
    c.roundtrip(b"ms Z=g= 1 b k\r\nx\r\n", b"HD kZA== b\r\n");
    c.roundtrip(b"md Zm9v b q\r\nmn\r\n", b"MN\r\n");
    c.roundtrip(b"get foo\r\n", b"END\r\n");
    for bad in ["foo", "Zm9", "Zm9v=", "!!!!"] {
        c.roundtrip(
            format!("mg {bad} b k\r\n").as_bytes(),
            b"CLIENT_ERROR error decoding key\r\n",
        );
    }
    c.roundtrip(
        b"ms !!!! 2 b\r\nhi\r\n",
        b"CLIENT_ERROR error decoding key\r\n",
    );
    c.roundtrip(
        b"md !!!! b\r\n",
        b"CLIENT_ERROR invalid or duplicate flag\r\n",
    );
    c.roundtrip(b"mn\r\n", b"MN\r\n");
}

#[test]
fn cas_interop_with_text() {
    let (_s, mut c) = server();
    c.roundtrip(b"ms k 2 c\r\nhi\r\n", b"HD c1\r\n");
    c.roundtrip(b"gets k\r\n", b"VALUE k 0 2 1\r\nhi\r\nEND\r\n");
    c.roundtrip(b"cas k 0 0 2 1\r\nho\r\n", b"STORED\r\n");
    c.roundtrip(b"mg k c v\r\n", b"VA 2 c2\r\nho\r\n");
    c.roundtrip(b"ms k 2 C1\r\nxx\r\n", b"EX\r\n");
    c.roundtrip(b"ms k 2 C2 c\r\nxx\r\n", b"HD c3\r\n");
    c.roundtrip(b"cas k 0 0 2 2\r\nyy\r\n", b"EXISTS\r\n");
    c.roundtrip(b"gets k\r\n", b"VALUE k 0 2 3\r\nxx\r\nEND\r\n");
    c.roundtrip(b"md k C3\r\n", b"HD\r\n");
    c.roundtrip(b"gets k\r\n", b"END\r\n");
    c.roundtrip(b"set t 7 0 1\r\nz\r\n", b"STORED\r\n");
    c.roundtrip(b"mg t f c v\r\n", b"VA 1 f7 c4\r\nz\r\n");
    c.roundtrip(b"touch t 100\r\n", b"TOUCHED\r\n");
    let r = line(&mut c, "mg t t\r\n");
    assert!((99..=100).contains(&flag_num(&r, 't')), "{r}");
}

#[test]
fn quiet_pipeline_ends_with_mn() {
    let (_s, mut c) = server();
    let n = 300;
    let mut req = Vec::new();
    for i in 0..n {
        req.extend_from_slice(format!("ms key{i} 3 q T0\r\nv{:02}\r\n", i % 100).as_bytes());
    }
    // Every other key is a miss; only hits answer.
    for i in 0..2 * n {
        req.extend_from_slice(format!("mg key{} v k q\r\n", i * 2 % (2 * n)).as_bytes());
    }
    for i in 0..n {
        req.extend_from_slice(format!("md key{i} q\r\n").as_bytes());
    }
    req.extend_from_slice(b"mn\r\n");
    let mut want = Vec::new();
    for i in 0..2 * n {
        let k = i * 2 % (2 * n);
        if k < n {
            want.extend_from_slice(format!("VA 3 kkey{k}\r\nv{:02}\r\n", k % 100).as_bytes());
        }
    }
    want.extend_from_slice(b"MN\r\n");
    c.send(&req);
    c.expect(&want);
    // Everything was deleted quietly.
    c.roundtrip(b"mg key0 q\r\nmg key1\r\nmn\r\n", b"EN\r\nMN\r\n");
}

#[test]
fn errors_leave_the_connection_usable() {
    let (_s, mut c) = server();
    let cases: &[(&[u8], &[u8])] = &[
        (b"mg foo Zfoo\r\n", b"CLIENT_ERROR invalid flag\r\n"),
        (b"mg foo v v\r\n", b"CLIENT_ERROR duplicate flag\r\n"),
        (
            b"mg foo O12345678901234567890123456789012\r\n",
            b"CLIENT_ERROR opaque token too long\r\n",
        ),
        (
            b"mg foo Tx\r\n",
            b"CLIENT_ERROR bad token in command line format\r\n",
        ),
        (
            b"mg foo C\r\n",
            b"CLIENT_ERROR bad token in command line format\r\n",
        ),
        (
            b"mg foo Jx\r\n",
            b"CLIENT_ERROR invalid numeric initial value\r\n",
        ),
        (
            b"mg foo Dx\r\n",
            b"CLIENT_ERROR invalid numeric delta value\r\n",
        ),
        (
            b"mg foo Fx\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"ms foo 2 MX\r\nhi\r\n",
            b"CLIENT_ERROR invalid mode for ms M token\r\n",
        ),
        (
            b"ms foo 2 MEE\r\nhi\r\n",
            b"CLIENT_ERROR incorrect length for M token\r\n",
        ),
        (b"ms foo 2 Zx\r\nhi\r\n", b"CLIENT_ERROR invalid flag\r\n"),
        (
            b"ms foo 2 T1 T1\r\nhi\r\n",
            b"CLIENT_ERROR duplicate flag\r\n",
        ),
        (
            b"ms foo 2\r\nhiya\r\n",
            b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
        ),
        (
            b"ms foo abc\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (b"ms foo\r\n", b"CLIENT_ERROR bad command line format\r\n"),
        (
            b"ma foo Mx\r\n",
            b"CLIENT_ERROR invalid mode for ma M token\r\n",
        ),
        (
            b"ma foo Jx\r\n",
            b"CLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        (
            b"ma foo D-1\r\n",
            b"CLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        (
            b"ma foo D18446744073709551616\r\n",
            b"CLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        (
            b"md foo Zx\r\n",
            b"CLIENT_ERROR invalid or duplicate flag\r\n",
        ),
        (
            b"md foo O123456789012345678901234567890123\r\n",
            b"CLIENT_ERROR opaque token too long\r\n",
        ),
        (b"mg\r\n", b"ERROR\r\n"),
        (b"MG foo\r\n", b"ERROR\r\n"),
        (
            b"mg foo c f s t k h l O1 P L u T30 N30 R30 q C1 D1 J1\r\n",
            b"CLIENT_ERROR options flags are too long\r\n",
        ),
        (
            b"ms foo 2 c f s t k h l O1 P L u T30 N30 q C1 D1 J1\r\nhi\r\n",
            b"CLIENT_ERROR options flags too long\r\nERROR\r\n",
        ),
    ];
    for (send, want) in cases {
        c.roundtrip(send, want);
        c.roundtrip(b"mn\r\n", b"MN\r\n");
    }
    let long = format!("mg {} v\r\n", "a".repeat(251));
    c.roundtrip(long.as_bytes(), b"CLIENT_ERROR bad command line format\r\n");
    c.roundtrip(b"mg foo v\r\n", b"EN\r\n");
}

#[test]
fn oversized_ms_is_refused_and_drops_the_old_value() {
    let (_s, mut c) = server();
    c.roundtrip(b"ms big 2\r\nhi\r\n", b"HD\r\n");
    let mut req = b"ms big 2000000 T0\r\n".to_vec();
    req.extend(std::iter::repeat_n(b'x', 2_000_000));
    req.extend_from_slice(b"\r\nmg big v\r\n");
    c.send(&req);
    c.expect(b"SERVER_ERROR object too large for cache\r\nEN\r\n");
}

#[test]
fn byte_by_byte_delivery() {
    let (_s, mut c) = server();
    let session: &[u8] =
        b"ms k 2 T0 c\r\nhi\r\nmg k v c k\r\nms k 2 MX\r\nhi\r\nma n N0 J3 v\r\nmd k q\r\nmn\r\n";
    for &b in session {
        c.send(&[b]);
    }
    c.expect(
        b"HD c1\r\nVA 2 c1 kk\r\nhi\r\nCLIENT_ERROR invalid mode for ms M token\r\nVA 1\r\n3\r\nMN\r\n",
    );
}

#[test]
fn upstream_flags() {
    ferrocache_only!();
    // E sets the CAS explicitly (memcached 1.6.18 rejects E as an invalid
    // flag; later releases accept it).
    let (_s, mut c) = server();
    c.roundtrip(b"ms k 2 E500 c\r\nhi\r\n", b"HD c500\r\n");
    c.roundtrip(b"gets k\r\n", b"VALUE k 0 2 500\r\nhi\r\nEND\r\n");
    c.roundtrip(b"md k I E600\r\n", b"HD\r\n");
    c.roundtrip(b"mg k c\r\n", b"HD c600 X W\r\n");
    c.roundtrip(b"ma n N0 J1 E700 c v\r\n", b"VA 1 c700\r\n1\r\n");
    c.roundtrip(b"ma n E800 c\r\n", b"HD c800\r\n");
    c.roundtrip(b"mg v N0 E900 c\r\n", b"HD c900 W\r\n");
    // x empties the value but keeps the item.
    c.roundtrip(b"ms x 3 F9\r\nabc\r\n", b"HD\r\n");
    c.roundtrip(b"md x x\r\n", b"HD\r\n");
    c.roundtrip(b"mg x v f\r\n", b"VA 0 f0\r\n\r\n");
    c.roundtrip(b"md none x\r\n", b"NF\r\n");
    // N on an append creates the item (1.6.18 answers NS).
    c.roundtrip(b"ms a 1 MA N0\r\nx\r\n", b"HD\r\n");
    c.roundtrip(b"ms a 1 MA N0\r\ny\r\n", b"HD\r\n");
    c.roundtrip(b"mg a v\r\n", b"VA 2\r\nxy\r\n");
}

/// Concurrent readers of a missing or stale item: exactly one wins.
#[test]
fn one_winner_among_concurrent_readers() {
    let (s, mut c) = server();
    let s = std::sync::Arc::new(s);
    let race = |request: &'static [u8]| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let s = s.clone();
                std::thread::spawn(move || {
                    let mut c = s.conn();
                    let mut wins = 0;
                    for _ in 0..25 {
                        c.send(request);
                        let reply = String::from_utf8(c.read_line()).unwrap();
                        wins += usize::from(reply.trim_end().ends_with(" W"));
                    }
                    wins
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .sum::<usize>()
    };
    assert_eq!(race(b"mg viv N30 c\r\n"), 1);
    c.roundtrip(b"ms st 1\r\nx\r\n", b"HD\r\n");
    c.roundtrip(b"md st I\r\n", b"HD\r\n");
    assert_eq!(race(b"mg st c\r\n"), 1);
}
