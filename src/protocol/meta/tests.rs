//! Parser and encoder unit tests. The expected bytes were checked against
//! memcached 1.6.18; the black-box tests in `tests/meta*.rs` replay them
//! against both servers.

use super::*;
use crate::protocol::text;
use crate::protocol::{ClientError, Limits, Parsed, Request, Response};

fn limits() -> Limits {
    Limits {
        item_size_max: 1024,
        ..Limits::default()
    }
}

fn parse(buf: &[u8]) -> Parsed<'_> {
    text::parse(buf, &limits())
}

/// The error a whole line gets.
fn error_of(line: &str) -> Response<'static> {
    match parse(line.as_bytes()) {
        Parsed::Invalid { error, .. } => error,
        other => panic!("{line:?}: expected an error, got {other:?}"),
    }
}

fn client_error(line: &str) -> &'static str {
    match error_of(line) {
        Response::ClientError(e) => e.message(),
        other => panic!("{line:?}: expected a CLIENT_ERROR, got {other:?}"),
    }
}

#[test]
fn meta_commands_are_recognised() {
    for line in ["mg k\r\n", "md k\r\n", "ma k\r\n", "me k\r\n", "mn\r\n"] {
        assert!(
            matches!(parse(line.as_bytes()), Parsed::Request { consumed, .. } if consumed == line.len()),
            "{line:?}"
        );
    }
    assert!(matches!(
        parse(b"ms k 2\r\nhi\r\n"),
        Parsed::Request {
            request: Request::MetaSet { value: b"hi", .. },
            consumed: 12
        }
    ));
    // Upper case is not a command; neither is a longer word.
    assert_eq!(error_of("MG k\r\n"), Response::Error);
    assert_eq!(error_of("mgx k\r\n"), Response::Error);
    // A command without its key.
    for line in ["mg\r\n", "ms\r\n", "md\r\n", "ma\r\n"] {
        assert_eq!(error_of(line), Response::Error, "{line:?}");
    }
    assert_eq!(client_error("me\r\n"), "bad command line format");
    assert_eq!(client_error("me !!!! b\r\n"), "bad command line format");
    assert!(matches!(
        parse(b"me Zm9v b\r\n"),
        Parsed::Request {
            request: Request::MetaDebug {
                key: MetaKey { base64: true, .. }
            },
            ..
        }
    ));
    assert!(matches!(
        parse(b"me Zm9v k b\r\n"),
        Parsed::Request {
            request: Request::MetaDebug {
                key: MetaKey { base64: false, .. }
            },
            ..
        }
    ));
    assert_eq!(client_error("ms foo\r\n"), "bad command line format");
    assert_eq!(client_error("ms foo abc\r\n"), "bad command line format");
    assert_eq!(client_error("ms foo -1\r\n"), "bad command line format");
}

#[test]
fn flag_errors_use_memcached_wording() {
    let cases: &[(&str, &str)] = &[
        ("mg foo Zfoo\r\n", "invalid flag"),
        ("mg foo v v\r\n", "duplicate flag"),
        ("mg foo v \u{80}\r\n", "duplicate flag"),
        ("mg foo v \x01\r\n", "invalid flag"),
        (
            "mg foo O12345678901234567890123456789012\r\n",
            "opaque token too long",
        ),
        ("mg foo b\r\n", "error decoding key"),
        ("mg Zm9 b\r\n", "error decoding key"),
        ("mg Zm9v= b\r\n", "error decoding key"),
        ("mg foo Tx\r\n", "bad token in command line format"),
        ("mg foo T\r\n", "bad token in command line format"),
        ("mg foo T5x\r\n", "bad token in command line format"),
        (
            "mg foo N99999999999\r\n",
            "bad token in command line format",
        ),
        ("mg foo Cx\r\n", "bad token in command line format"),
        ("mg foo Fx\r\n", "bad command line format"),
        ("mg foo F-1\r\n", "bad command line format"),
        ("mg foo Jx\r\n", "invalid numeric initial value"),
        ("mg foo Dx\r\n", "invalid numeric delta value"),
        ("mg foo MEE\r\n", "incorrect length for M token"),
        // A bad token is remembered, an unknown flag stops at once.
        ("mg foo Tx Dx\r\n", "invalid numeric delta value"),
        ("mg foo Tx Zx\r\n", "invalid flag"),
        // A bad F has no message of its own.
        ("mg foo Tx Fx\r\n", "bad token in command line format"),
        ("mg foo Fx Tx\r\n", "bad token in command line format"),
        ("md foo Jx\r\n", "invalid or duplicate flag"),
        ("md !!!! b\r\n", "invalid or duplicate flag"),
        (
            "md foo O123456789012345678901234567890123\r\n",
            "opaque token too long",
        ),
        ("ma foo Dx\r\n", "invalid or duplicate flag"),
        ("ma foo v v\r\n", "invalid or duplicate flag"),
        ("ma foo Mx\r\n", "invalid mode for ma M token"),
        ("ma foo MII\r\n", "invalid or duplicate flag"),
        (
            "mg foo c f s t k h l O1 P L u T30 N30 R30 q C1 D1 J1\r\n",
            "options flags are too long",
        ),
        (
            "md foo c f s t k h l O1 P L u T30 N30 R30 q C1 D1 J1\r\n",
            "options flags too long",
        ),
    ];
    for (line, want) in cases {
        assert_eq!(client_error(line), *want, "{line:?}");
    }
    // Seventeen flags are still fine.
    assert!(matches!(
        parse(b"mg foo c f s t k h l O1 P L u T30 N30 R30 q C1 D1\r\n"),
        Parsed::Request { .. }
    ));
    // The key length is checked on the token as sent.
    let long = format!("mg {} v\r\n", "a".repeat(251));
    assert_eq!(client_error(&long), "bad command line format");
    let ok = format!("mg {} v\r\n", "a".repeat(250));
    assert!(matches!(parse(ok.as_bytes()), Parsed::Request { .. }));
}

#[test]
fn ms_errors_swallow_the_data_block() {
    for (flags, want) in [
        ("Zx", "invalid flag"),
        ("T30 T30", "duplicate flag"),
        ("MX", "invalid mode for ms M token"),
        ("Ma", "invalid mode for ms M token"),
        ("MEE", "incorrect length for M token"),
        ("Dx", "invalid numeric delta value"),
        (
            "O123456789012345678901234567890123",
            "opaque token too long",
        ),
        ("b", "error decoding key"),
    ] {
        let line = format!("ms foo 2 {flags}\r\n");
        let mut buf = line.clone().into_bytes();
        buf.extend_from_slice(b"hi\r\nmn\r\n");
        match parse(&buf) {
            Parsed::Invalid {
                error: Response::ClientError(e),
                consumed,
                swallow: 0,
                ..
            } => {
                assert_eq!(e.message(), want, "{flags}");
                assert_eq!(consumed, line.len() + 4, "{flags}");
            }
            other => panic!("{flags}: {other:?}"),
        }
        // Before the block arrives the rest is swallowed later.
        match parse(line.as_bytes()) {
            Parsed::Invalid {
                consumed, swallow, ..
            } => assert_eq!((consumed, swallow), (line.len(), 4), "{flags}"),
            other => panic!("{flags}: {other:?}"),
        }
    }
    // Line-level errors do not swallow anything.
    let buf = b"ms foo 2 c f s t k h l O1 P L u T30 N30 q C1 D1 J1\r\nhi\r\n";
    match parse(buf) {
        Parsed::Invalid {
            error: Response::ClientError(ClientError::MetaFlagsTooLong),
            consumed,
            swallow: 0,
            ..
        } => assert_eq!(consumed, buf.len() - 4),
        other => panic!("{other:?}"),
    }
}

#[test]
fn ms_data_block_framing() {
    assert_eq!(parse(b"ms k 2\r\nh"), Parsed::Incomplete);
    assert_eq!(parse(b"ms k 2\r\nhi\r"), Parsed::Incomplete);
    match parse(b"ms k 2\r\nhiya\r\n") {
        Parsed::Invalid {
            error: Response::ClientError(ClientError::BadDataChunk),
            consumed: 12,
            ..
        } => {}
        other => panic!("{other:?}"),
    }
    match parse(b"ms k 2000 T0\r\nxx") {
        Parsed::Oversized {
            request: Request::StoreTooLarge { key: b"k", .. },
            consumed: 16,
            swallow: 2000,
        } => {}
        other => panic!("{other:?}"),
    }
}

#[test]
fn ms_values_still_arriving_beyond_the_upload_room_are_refused() {
    let limits = Limits {
        pending_value_max: 10,
        ..limits()
    };
    match text::parse(b"ms k 20 T0\r\nxx", &limits) {
        Parsed::Oversized {
            request: Request::StoreNoMemory { key: b"k", .. },
            consumed: 14,
            swallow: 20,
        } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(text::parse(b"ms k 5 T0\r\nxx", &limits), Parsed::Incomplete);
}

#[test]
fn flags_are_parsed() {
    let Parsed::Request {
        request: Request::MetaArith { key, flags },
        ..
    } = parse(b"ma Zm9v b N30 J10 D5 MD T-1 C7 E9 O123 q\r\n")
    else {
        panic!()
    };
    assert!(key.base64);
    let mut buf = [0u8; 250];
    assert_eq!(key.bytes(&mut buf), b"foo");
    assert_eq!(flags.vivify(), Some(30));
    assert_eq!(flags.initial(), 10);
    assert_eq!(flags.delta(), 5);
    assert!(flags.decrement());
    assert_eq!(flags.ttl(), Some(-1));
    assert_eq!(flags.compare_cas(), Some(7));
    assert_eq!(flags.new_cas(), Some(9));
    assert!(flags.quiet());
    assert!(!flags.has(b'v'));
    let Parsed::Request {
        request: Request::MetaSet { flags, .. },
        ..
    } = parse(b"ms k 1 F4294967295 MA I\r\nx\r\n")
    else {
        panic!()
    };
    assert_eq!(flags.client_flags(), u32::MAX);
    assert_eq!(flags.set_mode(), MetaSetMode::Append);
    assert!(flags.has(b'I'));
    // Numbers are read like strtol: white space around them is fine.
    let Parsed::Request {
        request: Request::MetaGet { flags, .. },
        ..
    } = parse(b"mg k T\t5\tx C+7 N-0\r\n")
    else {
        panic!()
    };
    assert_eq!(flags.ttl(), Some(5));
    assert_eq!(flags.compare_cas(), Some(7));
    assert_eq!(flags.vivify(), Some(0));
    assert!(matches!(
        parse(b"ms k 1\r\r\nx\r\r\n"),
        Parsed::Invalid {
            error: Response::ClientError(ClientError::BadDataChunk),
            ..
        }
    ));
}

fn reply<'a>(
    cmd: MetaCmd,
    status: MetaStatus,
    flags: &'a MetaFlags<'a>,
    key: &'a [u8],
    item: MetaItemInfo,
    value: &'a [u8],
) -> MetaReply<'a> {
    MetaReply {
        cmd,
        status,
        flags,
        key: MetaKey {
            raw: key,
            base64: flags.has(b'b'),
        },
        item,
        value,
        won: false,
        stale: false,
        win_sent: false,
    }
}

fn flags_of(line: &'static [u8]) -> MetaFlags<'static> {
    match parse(line) {
        Parsed::Request {
            request:
                Request::MetaGet { flags, .. }
                | Request::MetaDelete { flags, .. }
                | Request::MetaArith { flags, .. },
            ..
        } => flags,
        other => panic!("{other:?}"),
    }
}

fn encoded(r: &MetaReply<'_>) -> String {
    let mut out = Vec::new();
    encode(r, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn return_flags_follow_request_order() {
    let item = MetaItemInfo {
        cas: 380,
        client_flags: 5,
        size: 2,
        hit_before: true,
        last_access: 3,
        ttl: -1,
        ttl_touched: 30,
        ttl_vivified: None,
    };
    let f = flags_of(b"mg m s v f t c k h l O99 q\r\n");
    let r = reply(MetaCmd::Get, MetaStatus::Value, &f, b"m", item, b"hi");
    assert_eq!(encoded(&r), "VA 2 s2 f5 t-1 c380 km h1 l3 O99\r\nhi\r\n");
    // `t` before `T` reports the old TTL, after it the new one.
    let f = flags_of(b"mg m T30 t\r\n");
    let r = reply(MetaCmd::Get, MetaStatus::Stored, &f, b"m", item, b"");
    assert_eq!(encoded(&r), "HD t30\r\n");
    let f = flags_of(b"mg m t T30\r\n");
    let r = reply(MetaCmd::Get, MetaStatus::Stored, &f, b"m", item, b"");
    assert_eq!(encoded(&r), "HD t-1\r\n");
    // Misses carry only the opaque and the key.
    let f = flags_of(b"mg m O1 k v s t c\r\n");
    let r = reply(MetaCmd::Get, MetaStatus::Miss, &f, b"m", item, b"");
    assert_eq!(encoded(&r), "EN O1 km\r\n");
    // Base64 keys are echoed as sent, followed by `b`.
    let f = flags_of(b"mg Zm9v b k v c\r\n");
    let r = reply(MetaCmd::Get, MetaStatus::Value, &f, b"Zm9v", item, b"hi");
    assert_eq!(encoded(&r), "VA 2 kZm9v b c380\r\nhi\r\n");
    // Win flags come last, in the order Z X W.
    let f = flags_of(b"mg m c\r\n");
    let mut r = reply(MetaCmd::Get, MetaStatus::Stored, &f, b"m", item, b"");
    r.stale = true;
    r.won = true;
    assert_eq!(encoded(&r), "HD c380 X W\r\n");
    r.won = false;
    r.win_sent = true;
    assert_eq!(encoded(&r), "HD c380 Z X\r\n");
}

#[test]
fn per_command_return_flags() {
    let item = MetaItemInfo {
        cas: 7,
        ttl: 30,
        ttl_touched: 30,
        size: 2,
        ..MetaItemInfo::default()
    };
    // ms reports c, k, O; a failed store reports CAS 0.
    let f = flags_of(b"md k c k O55 s f t\r\n");
    let r = reply(MetaCmd::Set, MetaStatus::Stored, &f, b"k", item, b"");
    assert_eq!(encoded(&r), "HD c7 kk O55\r\n");
    let r = reply(
        MetaCmd::Set,
        MetaStatus::NotStored,
        &f,
        b"k",
        MetaItemInfo::default(),
        b"",
    );
    assert_eq!(encoded(&r), "NS c0 kk O55\r\n");
    // md reports k and O only.
    let r = reply(MetaCmd::Delete, MetaStatus::Stored, &f, b"k", item, b"");
    assert_eq!(encoded(&r), "HD kk O55\r\n");
    // ma reports c, t, k, O and the value.
    let f = flags_of(b"ma k v t c k O1\r\n");
    let r = reply(MetaCmd::Arith, MetaStatus::Value, &f, b"k", item, b"16");
    assert_eq!(encoded(&r), "VA 2 t30 c7 kk O1\r\n16\r\n");
    let r = reply(
        MetaCmd::Arith,
        MetaStatus::NotFound,
        &f,
        b"k",
        MetaItemInfo::default(),
        b"",
    );
    assert_eq!(encoded(&r), "NF kk O1\r\n");
    let mut out = Vec::new();
    encode_debug(
        &MetaDebugReply {
            key: b"foo",
            exp: -1,
            la: 2,
            cas: 3,
            fetched: true,
            class: 1,
            size: 64,
        },
        &mut out,
    );
    assert_eq!(out, b"ME foo exp=-1 la=2 cas=3 fetch=yes cls=1 size=64\r\n");
}

#[test]
fn base64_round_trips() {
    let mut out = Vec::new();
    let mut buf = [0u8; 250];
    for len in 1..=187usize {
        let data: Vec<u8> = (0..len).map(|i| (i * 37 + len) as u8).collect();
        out.clear();
        encode_base64(&data, &mut out);
        let n = decode_base64(&out, &mut buf).unwrap();
        assert_eq!(&buf[..n], &data[..]);
    }
    assert_eq!(decode_base64(b"====", &mut buf), None);
    assert_eq!(decode_base64(b"Z===", &mut buf), None);
    assert_eq!(decode_base64(b"Zm9", &mut buf), None);
    assert_eq!(decode_base64(b"Zm9v=", &mut buf), None);
    assert_eq!(decode_base64(b"!!!!", &mut buf), None);
    // memcached's leniency: stray bytes are skipped, decoding stops after
    // the first padded group, `=` inside a group reads as zero bits.
    let mut check = |input: &[u8], want: &[u8]| {
        let n = decode_base64(input, &mut buf).unwrap();
        assert_eq!(&buf[..n], want, "{input:?}");
    };
    check(b"Zm9v\x7f", b"foo");
    check(b"Z\x80m9v", b"foo");
    check(b"Zg==Zm9v", b"f");
    check(b"Z=g=", b"d");
}

/// A small deterministic generator (xorshift), so failures reproduce.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Parses `stream` as the connection does, feeding it in the given chunk
/// sizes, and records what came out.
fn replay(stream: &[u8], split: usize) -> Vec<String> {
    let limits = limits();
    let mut out = Vec::new();
    let mut buf: Vec<u8> = Vec::new();
    let mut swallow = 0usize;
    let mut fed = 0;
    for end in [split.min(stream.len()), stream.len()] {
        buf.extend_from_slice(&stream[fed..end]);
        fed = end;
        loop {
            if swallow > 0 {
                let n = swallow.min(buf.len());
                buf.drain(..n);
                swallow -= n;
            }
            if buf.is_empty() {
                break;
            }
            let (consumed, more) = match text::parse(&buf, &limits) {
                Parsed::Incomplete => break,
                Parsed::Request { request, consumed } => {
                    out.push(format!("{request:?}"));
                    (consumed, 0)
                }
                Parsed::Oversized {
                    request,
                    consumed,
                    swallow,
                } => {
                    out.push(format!("{request:?}"));
                    (consumed, swallow)
                }
                Parsed::Invalid {
                    error,
                    consumed,
                    swallow,
                    close,
                    ..
                } => {
                    out.push(format!("{error:?}"));
                    if close {
                        return out;
                    }
                    (consumed, swallow)
                }
            };
            assert!(consumed <= buf.len());
            buf.drain(..consumed);
            swallow = more;
        }
    }
    out
}

const SAMPLES: &[&[u8]] = &[
    b"mg foo s v f t c k h l O99 q\r\nmn\r\n",
    b"ms foo 2 T0 F5 c I\r\nhi\r\nmg foo v\r\n",
    b"ms foo 2 MX\r\nhi\r\nmd foo I T30 q\r\nmn\r\n",
    b"ma cnt N0 J10 D3 MD v\r\nma cnt Mx\r\nme cnt\r\n",
    b"ms Zm9v 3 b k\r\nabc\r\nmg Zm9v b k v\r\n",
    b"ms k 2\r\nhiya\r\nmg k v\r\n",
    b"ms k 2000 T0\r\nxyz\r\nmn\r\n",
    b"mg k c f s t k h l O1 P L u T30 N30 R30 q C1 D1 J1\n",
];

#[test]
fn every_split_point_gives_the_same_result() {
    for sample in SAMPLES {
        let whole = replay(sample, sample.len());
        for split in 0..sample.len() {
            assert_eq!(replay(sample, split), whole, "{sample:?} split at {split}");
        }
    }
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let alphabet: &[u8] = b"mgsdaen vqkObctTNRCEFIJDMPLx0123456789-+=/\r\n\x00\x80Zm9";
    let mut buf = Vec::new();
    for _ in 0..3000 {
        buf.clear();
        // Start from a meta command most of the time.
        if rng.below(4) != 0 {
            let cmds: [&[u8]; 6] = [b"mg ", b"ms ", b"md ", b"ma ", b"me ", b"mn"];
            buf.extend_from_slice(cmds[rng.below(6)]);
        }
        let len = rng.below(80);
        for _ in 0..len {
            let b = if rng.below(8) == 0 {
                rng.next() as u8
            } else {
                alphabet[rng.below(alphabet.len())]
            };
            buf.push(b);
        }
        let split = rng.below(buf.len() + 1);
        let whole = replay(&buf, buf.len());
        assert_eq!(replay(&buf, split), whole, "{buf:?} at {split}");
    }
}
