//! incr / decr: results, wrap at 2^64, floor at 0, bad values, bad deltas, length changes.

mod common;
use common::*;

#[test]
fn incr_decr_basic() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set_full("n", 3, 0, b"10");
    c.roundtrip(b"incr n 5\r\n", b"15\r\n");
    c.roundtrip(b"decr n 3\r\n", b"12\r\n");
    c.roundtrip(b"incr n 0\r\n", b"12\r\n");
    // Flags survive arithmetic.
    c.roundtrip(b"get n\r\n", b"VALUE n 3 2\r\n12\r\nEND\r\n");
}

#[test]
fn incr_wraps_at_2_pow_64() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("n", b"10");
    c.roundtrip(b"incr n 18446744073709551615\r\n", b"9\r\n");
}

/// A stored value at or above 2^63 is still a number. memcached's answer here depends on the
/// bytes that follow the item in its slab (docs/compat.md), so this runs only on ferrocache.
#[test]
fn stored_values_above_2_pow_63_are_numbers() {
    if is_memcached() {
        return;
    }
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("m", b"18446744073709551615");
    c.roundtrip(b"incr m 1\r\n", b"0\r\n");
    c.set("m", b"18446744073709551614");
    c.roundtrip(b"incr m 1\r\n", b"18446744073709551615\r\n");
    c.set("m", b"-5");
    c.set("m2", b"9223372036854775808");
    c.roundtrip(b"decr m2 8\r\n", b"9223372036854775800\r\n");
    c.roundtrip(
        b"incr m 1\r\n",
        b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n",
    );
}

#[test]
fn decr_stops_at_zero() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("n", b"10");
    c.roundtrip(b"decr n 100\r\n", b"0\r\n");
    c.roundtrip(b"decr n 1\r\n", b"0\r\n");
    c.set("m", b"5");
    c.roundtrip(b"decr m 18446744073709551615\r\n", b"0\r\n");
}

#[test]
fn incr_grows_value_length() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set_full("n", 9, 0, b"99");
    c.roundtrip(b"incr n 1\r\n", b"100\r\n");
    c.roundtrip(b"get n\r\n", b"VALUE n 9 3\r\n100\r\nEND\r\n");
    c.roundtrip(
        b"incr n 18446744073709551000\r\n",
        b"18446744073709551100\r\n",
    );
    c.roundtrip(
        b"get n\r\n",
        b"VALUE n 9 20\r\n18446744073709551100\r\nEND\r\n",
    );
}

#[test]
fn decr_shrinking_value_reads_back_as_the_number() {
    // memcached rewrites a shrinking number in place and pads it with spaces ("99 "); a
    // server may also store the shorter value. Both read back as the same number.
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("n", b"100");
    c.roundtrip(b"decr n 1\r\n", b"99\r\n");
    let v = c.get("n").unwrap();
    assert!(v == b"99" || v == b"99 ", "got {}", esc(&v));
    // and arithmetic keeps working on it
    c.roundtrip(b"incr n 1\r\n", b"100\r\n");
    c.roundtrip(b"get n\r\n", b"VALUE n 0 3\r\n100\r\nEND\r\n");
}

#[test]
fn missing_key_is_not_found() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"incr nope 1\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"decr nope 1\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"get nope\r\n", b"END\r\n");
}

#[test]
fn non_numeric_values() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let err: &[u8] = b"CLIENT_ERROR cannot increment or decrement non-numeric value\r\n";
    for v in [
        &b"abc"[..],
        b"-5",
        b"0x1",
        b"1.5",
        b"184467440737095516150",
        b"",
    ] {
        c.set("n", v);
        c.roundtrip(b"incr n 1\r\n", err);
        c.roundtrip(b"decr n 1\r\n", err);
        assert_eq!(c.get("n").unwrap(), v, "value must be unchanged");
    }
}

#[test]
fn numeric_values_with_leading_zeros_and_spaces() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("n", b"0012");
    c.roundtrip(b"incr n 1\r\n", b"13\r\n");
    c.set("n", b" 12");
    c.roundtrip(b"incr n 1\r\n", b"13\r\n");
}

#[test]
fn invalid_delta() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("n", b"5");
    let err: &[u8] = b"CLIENT_ERROR invalid numeric delta argument\r\n";
    for d in [
        "-1",
        "abc",
        "18446744073709551616",
        "1.5",
        "99999999999999999999999",
    ] {
        c.roundtrip(format!("incr n {d}\r\n").as_bytes(), err);
        c.roundtrip(format!("decr n {d}\r\n").as_bytes(), err);
    }
    // Bad delta on a missing key is still a bad delta.
    c.roundtrip(b"incr nope abc\r\n", err);
    c.roundtrip(b"get n\r\n", b"VALUE n 0 1\r\n5\r\nEND\r\n");
}

#[test]
fn missing_delta_is_error() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("n", b"5");
    c.roundtrip(b"incr n\r\n", b"ERROR\r\n");
    c.roundtrip(b"decr\r\n", b"ERROR\r\n");
}

#[test]
fn noreply() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("n", b"5");
    c.send(b"incr n 10 noreply\r\n");
    c.send(b"decr n 3 noreply\r\n");
    c.send(b"incr nope 1 noreply\r\n");
    c.roundtrip(b"get n nope\r\n", b"VALUE n 0 2\r\n12\r\nEND\r\n");
}

#[test]
fn incr_result_is_a_new_cas() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("n", b"1");
    let (_, cas) = c.gets("n").unwrap();
    c.roundtrip(b"incr n 1\r\n", b"2\r\n");
    c.roundtrip(
        format!("cas n 0 0 1 {cas}\r\n9\r\n").as_bytes(),
        b"EXISTS\r\n",
    );
}
