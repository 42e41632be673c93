use super::*;
use crate::protocol::{KeyList, Limits, Request, StoreMode};

fn frame(op: u8, key: &[u8], extras: &[u8], value: &[u8], opaque: u32, cas: u64) -> Vec<u8> {
    let body = extras.len() + key.len() + value.len();
    let mut v = vec![MAGIC_REQUEST, op];
    v.extend_from_slice(&(key.len() as u16).to_be_bytes());
    v.push(extras.len() as u8);
    v.push(0);
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&(body as u32).to_be_bytes());
    v.extend_from_slice(&opaque.to_be_bytes());
    v.extend_from_slice(&cas.to_be_bytes());
    v.extend_from_slice(extras);
    v.extend_from_slice(key);
    v.extend_from_slice(value);
    v
}

fn limits() -> Limits {
    Limits::default()
}

#[test]
fn get_maps_to_a_single_key_lookup_with_cas() {
    let f = frame(opcode::GETK, b"a b", b"", b"", 9, 0);
    match parse(&f, &limits()) {
        Frame::Request {
            header,
            request,
            consumed,
        } => {
            assert_eq!(consumed, f.len());
            assert_eq!(header.opaque, 9);
            let Request::Get { keys, with_cas, .. } = request else {
                panic!("{request:?}")
            };
            assert!(with_cas);
            // Binary keys may hold spaces: one key, not two.
            assert_eq!(keys.iter().collect::<Vec<_>>(), vec![&b"a b"[..]]);
            assert_eq!(keys, KeyList::single(b"a b"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn set_carries_flags_exptime_and_cas() {
    let mut ex = 7u32.to_be_bytes().to_vec();
    ex.extend_from_slice(&100u32.to_be_bytes());
    let f = frame(opcode::SETQ, b"k", &ex, b"val", 1, 42);
    let Frame::Request {
        request, header, ..
    } = parse(&f, &limits())
    else {
        panic!()
    };
    assert!(header.quiet());
    assert_eq!(
        request,
        Request::Store {
            mode: StoreMode::Set,
            key: b"k",
            flags: 7,
            exptime: 100,
            cas: 42,
            value: b"val",
            noreply: false
        }
    );
}

#[test]
fn incr_exptime_all_ones_means_no_create() {
    let mut ex = 5u64.to_be_bytes().to_vec();
    ex.extend_from_slice(&10u64.to_be_bytes());
    ex.extend_from_slice(&u32::MAX.to_be_bytes());
    let f = frame(opcode::INCREMENT, b"n", &ex, b"", 0, 0);
    let Frame::Request { request, .. } = parse(&f, &limits()) else {
        panic!()
    };
    assert!(matches!(
        request,
        Request::ArithEx {
            create: None,
            delta: 5,
            ..
        }
    ));
}

#[test]
fn every_strict_prefix_is_incomplete() {
    let mut ex = 0u32.to_be_bytes().to_vec();
    ex.extend_from_slice(&0u32.to_be_bytes());
    let f = frame(opcode::SET, b"key", &ex, b"value", 0, 0);
    for n in 0..f.len() {
        assert_eq!(parse(&f[..n], &limits()), Frame::Incomplete, "prefix {n}");
    }
}

#[test]
fn malformed_frames_are_refused() {
    // Wrong magic.
    assert_eq!(parse(b"\x81rest", &limits()), Frame::BadMagic);
    // GET with extras, key longer than 250, body shorter than the key.
    let bad = [
        frame(opcode::GET, b"k", b"abcd", b"", 0, 0),
        frame(opcode::GET, &[b'k'; 251], b"", b"", 0, 0),
        frame(opcode::NOOP, b"", b"", b"x", 0, 0),
        frame(opcode::SET, b"k", b"", b"v", 0, 0),
    ];
    for f in bad {
        assert!(
            matches!(
                parse(&f, &limits()),
                Frame::Error {
                    status: Status::InvalidArguments,
                    close: true,
                    ..
                }
            ),
            "{f:?}"
        );
    }
    let mut short = frame(opcode::GET, b"abcde", b"", b"", 0, 0);
    short[8..12].copy_from_slice(&2u32.to_be_bytes());
    assert!(matches!(
        parse(&short, &limits()),
        Frame::Error { close: true, .. }
    ));
}

#[test]
fn unknown_opcode_skips_its_body() {
    let f = frame(0x55, b"k", b"", b"vv", 0, 0);
    assert_eq!(
        parse(&f[..24], &limits()),
        Frame::Error {
            header: Header::read(f[..24].try_into().unwrap()),
            status: Status::UnknownCommand,
            consumed: 24,
            swallow: 3,
            close: false
        }
    );
}

#[test]
fn huge_bodies_are_never_waited_for() {
    // A GET announcing 4 GB: refused from the header alone.
    let mut f = frame(opcode::GET, b"k", b"", b"", 0, 0);
    f[8..12].copy_from_slice(&u32::MAX.to_be_bytes());
    assert!(matches!(
        parse(&f[..24], &limits()),
        Frame::Error { close: true, .. }
    ));
    // A SET announcing more than the item limit: refused once the key is in.
    let mut ex = [0u8; 8].to_vec();
    ex.extend_from_slice(b"k");
    let mut s = frame(opcode::SET, b"", &ex[..8], b"", 0, 0);
    s[2..4].copy_from_slice(&1u16.to_be_bytes());
    s[8..12].copy_from_slice(&(9 + 2 * 1024 * 1024u32).to_be_bytes());
    s.push(b'k');
    match parse(&s, &limits()) {
        Frame::Oversized {
            consumed, swallow, ..
        } => {
            assert_eq!(consumed, 33);
            assert_eq!(swallow, 2 * 1024 * 1024);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn set_values_still_arriving_beyond_the_upload_room_are_refused() {
    let limits = Limits {
        pending_value_max: 10,
        ..limits()
    };
    let f = frame(opcode::SET, b"k", &[0; 8], &[b'v'; 20], 0, 0);
    match parse(&f[..40], &limits) {
        Frame::Oversized {
            request: Request::StoreNoMemory { key: b"k", .. },
            consumed: 33,
            swallow: 20,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    // The whole frame is there: stored as usual.
    assert!(matches!(
        parse(&f, &limits),
        Frame::Request {
            request: Request::Store { .. },
            ..
        }
    ));
}

#[test]
fn random_bytes_and_split_points_never_panic() {
    // xorshift: deterministic, no dependency.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let l = Limits {
        item_size_max: 64,
        max_get_line: 1024,
        ..Limits::default()
    };
    for _ in 0..20_000 {
        let len = (next() % 96) as usize;
        let mut buf: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if !buf.is_empty() && next() % 4 != 0 {
            buf[0] = MAGIC_REQUEST;
        }
        if buf.len() > 11 && next() % 2 == 0 {
            // Plausible lengths make the deeper paths reachable.
            let body = (buf.len() as u32).saturating_sub(24);
            buf[8..12].copy_from_slice(&body.to_be_bytes());
            buf[2] = 0;
            buf[3] = (next() % 8) as u8;
            buf[4] = [0, 4, 8, 20][(next() % 4) as usize];
        }
        let split = if buf.is_empty() {
            0
        } else {
            (next() as usize) % buf.len()
        };
        for part in [&buf[..split], &buf[..]] {
            match parse(part, &l) {
                Frame::Request { consumed, .. } => assert!(consumed <= part.len()),
                Frame::Oversized { consumed, .. } => assert!(consumed <= part.len()),
                Frame::Error { consumed, .. } => assert!(consumed <= part.len().max(24)),
                Frame::Incomplete | Frame::BadMagic => {}
            }
        }
    }
}

#[test]
fn config_opcodes_map_onto_the_config_requests() {
    let check = |op: u8, key: &[u8], extras: &[u8], value: &[u8], quiet: bool, want: Request| {
        let f = frame(op, key, extras, value, 3, 0);
        match parse(&f, &limits()) {
            Frame::Request {
                header, request, ..
            } => {
                assert_eq!(header.quiet(), quiet, "{op:#x}");
                assert_eq!(request, want, "{op:#x}");
            }
            other => panic!("{op:#x}: {other:?}"),
        }
    };
    for (op, quiet) in [
        (opcode::CONFIG_GET, false),
        (opcode::CONFIG_GETQ, true),
        (opcode::CONFIG_GETK, false),
        (opcode::CONFIG_GETKQ, true),
    ] {
        let want = Request::ConfigGet { key: b"cluster" };
        check(op, b"cluster", b"", b"", quiet, want);
    }
    for (op, quiet) in [(opcode::CONFIG_SET, false), (opcode::CONFIG_SETQ, true)] {
        let want = Request::ConfigSet {
            key: b"cluster",
            flags: 7,
            value: b"1\na||1\n",
            noreply: false,
        };
        check(
            op,
            b"cluster",
            &7u32.to_be_bytes(),
            b"1\na||1\n",
            quiet,
            want,
        );
    }
    for (op, quiet) in [
        (opcode::CONFIG_DELETE, false),
        (opcode::CONFIG_DELETEQ, true),
    ] {
        let want = Request::ConfigDelete {
            key: b"cluster",
            noreply: false,
        };
        check(op, b"cluster", b"", b"", quiet, want);
    }
    check(
        opcode::CONFIG_LIST,
        b"",
        b"",
        b"",
        false,
        Request::ConfigList,
    );
    // Wrong extras or a missing key: invalid, as for the other opcodes.
    for f in [
        frame(opcode::CONFIG_SET, b"cluster", b"", b"x", 3, 0),
        frame(opcode::CONFIG_SET, b"", &[0; 4], b"x", 3, 0),
        frame(opcode::CONFIG_GETK, b"", b"", b"", 3, 0),
        frame(opcode::CONFIG_DELETE, b"cluster", &[0; 4], b"", 3, 0),
        frame(opcode::CONFIG_LIST, b"cluster", b"", b"", 3, 0),
    ] {
        assert!(
            matches!(
                parse(&f, &limits()),
                Frame::Error {
                    status: Status::InvalidArguments,
                    close: true,
                    ..
                }
            ),
            "{f:?}"
        );
    }
}
