//! Meta commands (mn, ms, mg, md, ma, me) at a glance: the reply codes, return flags, modes,
//! stale/win handling and errors, as memcached 1.6 answers them (see meta.rs for every flag).

mod common;
use common::*;

/// Reads one meta reply line and returns it without the line end.
#[track_caller]
fn line(c: &mut Conn) -> String {
    let l = c.read_line();
    let s = String::from_utf8(l.clone()).unwrap_or_else(|_| panic!("non-utf8 line {}", esc(&l)));
    assert!(s.ends_with("\r\n"), "line not ended by \\r\\n: {}", esc(&l));
    s.trim_end_matches("\r\n").to_string()
}

/// The number after the `c` return flag.
#[track_caller]
fn cas_of(reply: &str) -> u64 {
    reply
        .split(' ')
        .find_map(|t| t.strip_prefix('c').and_then(|n| n.parse().ok()))
        .unwrap_or_else(|| panic!("no c<cas> flag in {reply:?}"))
}

#[test]
fn mn_is_answered_mn() {
    let s = Server::start(&[]);
    s.conn().roundtrip(b"mn\r\n", b"MN\r\n");
}

#[test]
fn ms_then_mg_with_return_flags() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"ms m 2 T0 F5\r\nhi\r\n", b"HD\r\n");
    c.roundtrip(b"mg m v f t s k\r\n", b"VA 2 f5 t-1 s2 km\r\nhi\r\n");
    // No flags on a hit: just HD.
    c.roundtrip(b"mg m\r\n", b"HD\r\n");
    // The classic protocol sees the same item.
    c.roundtrip(b"get m\r\n", b"VALUE m 5 2\r\nhi\r\nEND\r\n");
    c.roundtrip(
        b"set m 9 0 3\r\nabc\r\nmg m v f\r\n",
        b"STORED\r\nVA 3 f9\r\nabc\r\n",
    );
}

#[test]
fn cas_flag_agrees_with_gets() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.send(b"ms m 2 c\r\nhi\r\n");
    let r = line(&mut c);
    assert!(r.starts_with("HD c"), "{r:?}");
    let cas = cas_of(&r);
    assert_eq!(c.gets("m").unwrap().1, cas);
    c.send(b"mg m c\r\n");
    assert_eq!(line(&mut c), format!("HD c{cas}"));
}

#[test]
fn ms_echoes_key_and_opaque() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.send(b"ms e 1 F7 T0 k O55 c\r\nw\r\n");
    let r = line(&mut c);
    let cas = cas_of(&r);
    assert_eq!(r, format!("HD ke O55 c{cas}"));
    c.roundtrip(b"md e k O1\r\n", b"HD ke O1\r\n");
    c.roundtrip(b"mg e k O1 v\r\n", b"EN ke O1\r\n");
}

#[test]
fn mg_miss_and_quiet_mode() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"mg nope v\r\n", b"EN\r\n");
    c.roundtrip(b"mg nope\r\n", b"EN\r\n");
    c.roundtrip(b"mg nope k O9\r\n", b"EN knope O9\r\n");
    // q hides the miss; mn marks the end of the pipeline.
    c.roundtrip(b"mg nope v q\r\nmg nope k O9 q\r\nmn\r\n", b"MN\r\n");
    c.roundtrip(b"ms m 2\r\nhi\r\n", b"HD\r\n");
    // q does not hide a hit.
    c.roundtrip(b"mg m s v q\r\nmn\r\n", b"VA 2 s2\r\nhi\r\nMN\r\n");
}

#[test]
fn ms_modes() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"ms e 1 ME\r\nx\r\n", b"HD\r\n");
    c.roundtrip(b"ms e 1 ME\r\ny\r\n", b"NS\r\n");
    c.roundtrip(b"ms r 1 MR\r\nx\r\n", b"NS\r\n");
    c.roundtrip(b"ms e 1 MR\r\nr\r\n", b"HD\r\n");
    c.roundtrip(b"ms e 2 MA\r\n!!\r\n", b"HD\r\n");
    c.roundtrip(b"ms e 2 MP\r\n<<\r\n", b"HD\r\n");
    c.roundtrip(b"mg e v\r\n", b"VA 5\r\n<<r!!\r\n");
    c.roundtrip(b"ms e 1 MS\r\nz\r\nmg e v\r\n", b"HD\r\nVA 1\r\nz\r\n");
    c.roundtrip(b"ms none 1 MA\r\nx\r\n", b"NS\r\n");
    c.roundtrip(
        b"ms k 2 MX\r\nhi\r\n",
        b"CLIENT_ERROR invalid mode for ms M token\r\n",
    );
}

#[test]
fn ms_compare_and_swap() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"ms zz 1 C1\r\nq\r\n", b"NF\r\n");
    c.set("m", b"v");
    let (_, cas) = c.gets("m").unwrap();
    c.roundtrip(
        format!("ms m 1 C{}\r\nq\r\n", cas + 1).as_bytes(),
        b"EX\r\n",
    );
    c.roundtrip(format!("ms m 1 C{cas}\r\nw\r\n").as_bytes(), b"HD\r\n");
    c.roundtrip(b"get m\r\n", b"VALUE m 0 1\r\nw\r\nEND\r\n");
    c.roundtrip(format!("ms m 1 C{cas}\r\nx\r\n").as_bytes(), b"EX\r\n");
}

#[test]
fn ms_quiet_hides_success() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"ms m 2 q\r\nyo\r\nmn\r\n", b"MN\r\n");
    c.roundtrip(b"mg m v\r\n", b"VA 2\r\nyo\r\n");
}

#[test]
fn md_delete() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"md nope\r\n", b"NF\r\n");
    c.set("m", b"v");
    c.roundtrip(b"md m\r\n", b"HD\r\n");
    c.roundtrip(b"mg m v\r\n", b"EN\r\n");
    c.set("m", b"v");
    // q hides HD but not NF.
    c.roundtrip(b"md m q\r\nmd nope q\r\nmn\r\n", b"NF\r\nMN\r\n");
    c.roundtrip(b"get m\r\n", b"END\r\n");
}

#[test]
fn stale_item_and_recache_win() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"ms m 2 T0\r\nhi\r\n", b"HD\r\n");
    // Invalidate instead of deleting: the item stays, marked stale.
    c.roundtrip(b"md m I T30\r\n", b"HD\r\n");
    c.send(b"mg m v c\r\n");
    let r = line(&mut c);
    let cas = cas_of(&r);
    assert_eq!(
        r,
        format!("VA 2 c{cas} X W"),
        "first reader wins the recache"
    );
    c.expect(b"hi\r\n");
    c.send(b"mg m v c\r\n");
    assert_eq!(
        line(&mut c),
        format!("VA 2 c{cas} Z X"),
        "later readers see the win taken"
    );
    c.expect(b"hi\r\n");
    // A fresh value clears the stale state.
    c.roundtrip(b"ms m 2 I\r\nzz\r\n", b"HD\r\n");
    c.send(b"mg m v c\r\n");
    let r = line(&mut c);
    assert_eq!(r, format!("VA 2 c{}", cas_of(&r)));
    c.expect(b"zz\r\n");
}

#[test]
fn mg_vivify_on_miss() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.send(b"mg new N30 v c t\r\n");
    let r = line(&mut c);
    let cas = cas_of(&r);
    assert_eq!(r, format!("VA 0 c{cas} t30 W"));
    c.expect(b"\r\n");
    c.send(b"mg new N30 v c t\r\n");
    assert_eq!(line(&mut c), format!("VA 0 c{cas} t30 Z"));
    c.expect(b"\r\n");
    c.roundtrip(b"ms new 3 T0\r\nval\r\n", b"HD\r\n");
    c.send(b"mg new v t\r\n");
    assert_eq!(line(&mut c), "VA 3 t-1");
    c.expect(b"val\r\n");
}

#[test]
fn mg_touch_and_hit_flags() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(
        b"ms tt 1 T100\r\nx\r\nmg tt t v\r\n",
        b"HD\r\nVA 1 t100\r\nx\r\n",
    );
    c.roundtrip(b"mg tt T5 t\r\n", b"HD t5\r\n");
    c.roundtrip(
        b"ms h 1\r\nx\r\nmg h h\r\nmg h h\r\n",
        b"HD\r\nHD h0\r\nHD h1\r\n",
    );
}

#[test]
fn ma_arithmetic() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"ma nope\r\n", b"NF\r\n");
    c.roundtrip(b"ma nope q\r\nmn\r\n", b"NF\r\nMN\r\n");
    c.roundtrip(b"ma cnt N0 J10 v\r\n", b"VA 2\r\n10\r\n");
    c.roundtrip(b"ma cnt\r\n", b"HD\r\n");
    c.roundtrip(b"ma cnt v\r\n", b"VA 2\r\n12\r\n");
    c.roundtrip(b"ma cnt MI D5 v\r\n", b"VA 2\r\n17\r\n");
    c.roundtrip(b"ma cnt M+ v\r\n", b"VA 2\r\n18\r\n");
    c.roundtrip(b"ma cnt MD D100 v\r\n", b"VA 1\r\n0\r\n");
    c.roundtrip(b"ma cnt2 N0 J5\r\nma cnt2 v\r\n", b"HD\r\nVA 1\r\n6\r\n");
    c.roundtrip(b"get cnt2\r\n", b"VALUE cnt2 0 1\r\n6\r\nEND\r\n");
    c.roundtrip(
        b"set t 0 0 3\r\nabc\r\nma t\r\n",
        b"STORED\r\nCLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
}

#[test]
fn base64_keys() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    // "Zm9v" is base64 for "foo".
    c.roundtrip(b"ms Zm9v 2 b\r\nhi\r\n", b"HD\r\n");
    c.roundtrip(b"get foo\r\n", b"VALUE foo 0 2\r\nhi\r\nEND\r\n");
    c.roundtrip(b"mg Zm9v b k v\r\n", b"VA 2 kZm9v b\r\nhi\r\n");
    c.roundtrip(
        b"ms b64 2 b\r\nhi\r\n",
        b"CLIENT_ERROR error decoding key\r\n",
    );
}

#[test]
fn me_debug() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"me nope\r\n", b"EN\r\n");
    c.set("m", b"v");
    c.send(b"me m\r\n");
    let r = line(&mut c);
    let fields: Vec<&str> = r.split(' ').collect();
    assert_eq!(&fields[..2], ["ME", "m"], "{r:?}");
    for key in ["exp=-1", "fetch=no"] {
        assert!(fields.contains(&key), "{r:?} lacks {key}");
    }
    for key in ["la=", "cas=", "cls=", "size="] {
        assert!(
            fields.iter().any(|f| f.starts_with(key)),
            "{r:?} lacks {key}"
        );
    }
}

#[test]
fn meta_errors() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("m", b"v");
    c.roundtrip(b"mg x Zfoo\r\n", b"CLIENT_ERROR invalid flag\r\n");
    c.roundtrip(b"mg m e\r\n", b"CLIENT_ERROR invalid flag\r\n");
    c.roundtrip(b"mg m v v\r\n", b"CLIENT_ERROR duplicate flag\r\n");
    c.roundtrip(
        b"mg m O123456789012345678901234567890123\r\n",
        b"CLIENT_ERROR opaque token too long\r\n",
    );
    c.roundtrip(
        b"ms big S100\r\n",
        b"CLIENT_ERROR bad command line format\r\n",
    );
    c.roundtrip(
        b"mg\r\nms\r\nmd\r\nma\r\n",
        b"ERROR\r\nERROR\r\nERROR\r\nERROR\r\n",
    );
    c.roundtrip(b"get m\r\n", b"VALUE m 0 1\r\nv\r\nEND\r\n");
}
