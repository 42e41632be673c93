//! Text codec tests.
//!
//! Behaviours checked against a real memcached 1.6.18 (`memcached -p PORT`,
//! raw bytes over a TCP socket, watching the reply and whether the server
//! closed the connection):
//! - `\r\n` and bare `\n` both end a line; only one `\r` before the `\n` is
//!   dropped; a NUL byte ends the command line (`get a\0b` looks up `a`).
//! - Command names are case-sensitive (`GET` → `ERROR`); unknown commands,
//!   empty lines, lines of spaces, `get` / `get ` without keys → `ERROR`.
//! - Tokens are split on spaces only; runs of spaces and leading spaces are
//!   ignored; a tab is part of a token (`get\ta` → `ERROR`).
//! - Keys: over 250 bytes → `CLIENT_ERROR bad command line format`, also for
//!   one bad key in a multiget (no `VALUE`s are sent then). Control bytes
//!   other than space, `\n` and NUL are accepted in keys.
//! - Storage: wrong token count → `ERROR` (the data line then gets its own
//!   `ERROR`); bad numbers, negative or > INT_MAX-2 lengths →
//!   `CLIENT_ERROR bad command line format`, data not swallowed; a sixth
//!   token other than `noreply` is ignored; exactly `<bytes> + 2` bytes are
//!   read and then the last two must be `\r\n`, else `CLIENT_ERROR bad data
//!   chunk` and what follows is parsed as the next command; too large →
//!   `SERVER_ERROR object too large for cache` and the block is swallowed.
//! - Numbers are read like `strtol`: `+1`, `01`, `\t1`, `1\tjunk` are all 1;
//!   `-0` is a valid unsigned 0; `-1` is not.
//! - `noreply` is honoured whenever it is the last token, including on every
//!   error after the token count check (bad format, bad data chunk, too
//!   large, `incr k noreply`, `verbosity noreply`); never on `ERROR` for a
//!   wrong token count.
//! - `delete k 0`, `delete k noreply`, `delete k 0 noreply` are fine; any
//!   other extra token → `CLIENT_ERROR bad command line format.  Usage:
//!   delete <key> [noreply]`.
//! - incr/decr delta: not a u64 → `CLIENT_ERROR invalid numeric delta
//!   argument`; `touch`/`gat`/`flush_all` bad exptime → `CLIENT_ERROR invalid
//!   exptime argument`; `gat <exptime>` with no key → `END`.
//! - `verbosity` without argument → `ERROR`, bad level → `CLIENT_ERROR bad
//!   command line format`; `cache_memlimit` bad value → `ERROR`.
//! - `shutdown` with an argument other than `graceful` → `CLIENT_ERROR
//!   invalid shutdown mode` (with `-A`); `version`/`quit`/`stats <group>`
//!   ignore extra tokens.
//! - No `\n` within 2048 buffered bytes → the connection is closed without a
//!   reply, unless the line starts (after at most 100 spaces) with `get ` or
//!   `gets `.
//!
//! Deliberate differences (see `docs/compat-text.md`): the 2048-byte rule
//! looks at the first 2049 bytes even when more are buffered; `gat`/`gats`
//! lines are exempt like `get`; get lines are bounded by `max_get_line`;
//! flags, verbosity and memory limits above `u32::MAX` and lengths above
//! INT_MAX are rejected instead of truncated; "too large" means the value
//! alone exceeds `item_size_max`; `shutdown <junk>` is rejected by the
//! parser even when shutdown is disabled.

use super::{encode, parse};
use crate::protocol::response::StatValue;
use crate::protocol::{
    ArithOp, ClientError, KeyList, Limits, Parsed, Request, Response, ServerError, StatsGroup,
    StoreMode,
};

fn limits() -> Limits {
    Limits::default()
}

fn p(buf: &[u8]) -> Parsed<'_> {
    parse(buf, &limits())
}

/// Asserts `buf` holds exactly one whole request and returns it.
fn one(buf: &[u8]) -> Request<'_> {
    match p(buf) {
        Parsed::Request { request, consumed } => {
            assert_eq!(consumed, buf.len(), "consumed for {buf:?}");
            request
        }
        other => panic!("{buf:?} parsed as {other:?}"),
    }
}

fn invalid(error: Response<'static>, consumed: usize, quiet: bool) -> Parsed<'static> {
    Parsed::Invalid {
        error,
        consumed,
        swallow: 0,
        close: false,
        quiet,
    }
}

fn client(error: ClientError, consumed: usize, quiet: bool) -> Parsed<'static> {
    invalid(Response::ClientError(error), consumed, quiet)
}

/// Asserts the line (the whole of `buf`) is answered `ERROR`.
fn assert_error(buf: &[u8]) {
    assert_eq!(
        p(buf),
        invalid(Response::Error, buf.len(), false),
        "{buf:?}"
    );
}

fn bad_format(buf: &[u8], quiet: bool) {
    assert_eq!(
        p(buf),
        client(ClientError::BadCommandLineFormat, buf.len(), quiet),
        "{buf:?}"
    );
}

fn get(keys: &[u8], with_cas: bool, touch: Option<i64>) -> Request<'_> {
    Request::Get {
        keys: KeyList::new(keys),
        with_cas,
        touch,
    }
}

fn store<'a>(mode: StoreMode, key: &'a [u8], value: &'a [u8]) -> Request<'a> {
    Request::Store {
        mode,
        key,
        flags: 0,
        exptime: 0,
        cas: 0,
        value,
        noreply: false,
    }
}

fn long_key() -> Vec<u8> {
    vec![b'k'; 251]
}

// ---------------------------------------------------------------- retrieval

#[test]
fn get_family() {
    assert_eq!(one(b"get a\r\n"), get(b"a", false, None));
    assert_eq!(one(b"gets a\r\n"), get(b"a", true, None));
    assert_eq!(one(b"get a b c\r\n"), get(b"a b c", false, None));
    assert_eq!(one(b"gat 10 a b\r\n"), get(b"a b", false, Some(10)));
    assert_eq!(one(b"gats -1 a\r\n"), get(b"a", true, Some(-1)));
    // Extra spaces anywhere are ignored; the key list keeps inner runs.
    assert_eq!(one(b"  get   a  b   \r\n"), get(b"a  b", false, None));
    assert_eq!(one(b"get a\n"), get(b"a", false, None));
    // `noreply` is just a key for retrievals.
    assert_eq!(one(b"get a noreply\r\n"), get(b"a noreply", false, None));
    // gat with only an exptime is valid and finds nothing.
    assert_eq!(one(b"gat 0\r\n"), get(b"", false, Some(0)));
    let keys: Vec<_> = match one(b"get a  b c\r\n") {
        Request::Get { keys, .. } => keys.iter().collect(),
        _ => unreachable!(),
    };
    assert_eq!(keys, [&b"a"[..], b"b", b"c"]);
}

#[test]
fn get_keys_may_hold_control_bytes() {
    assert_eq!(one(b"get \x01\x7f\t\r\n"), get(b"\x01\x7f\t", false, None));
    assert_eq!(one(b"get a\r\r\n"), get(b"a\r", false, None));
}

#[test]
fn get_errors() {
    assert_error(b"get\r\n");
    assert_error(b"get \r\n");
    assert_error(b"gets    \r\n");
    assert_error(b"gat\r\n");
    assert_error(b"get\ta\r\n");
    let k = long_key();
    let mut line = b"get a ".to_vec();
    line.extend_from_slice(&k);
    line.extend_from_slice(b" b\r\n");
    bad_format(&line, false);
    let mut line = b"gats 0 ".to_vec();
    line.extend_from_slice(&k);
    line.extend_from_slice(b"\r\n");
    bad_format(&line, false);
    // 250 is fine.
    let mut line = b"get ".to_vec();
    line.extend_from_slice(&k[..250]);
    line.extend_from_slice(b"\r\n");
    assert_eq!(one(&line), get(&k[..250], false, None));
    // The exptime is checked before the keys.
    assert_eq!(
        p(b"gat x a\r\n"),
        client(ClientError::InvalidExptime, 9, false)
    );
    assert_eq!(
        p(b"gat x\r\n"),
        client(ClientError::InvalidExptime, 7, false)
    );
    let mut line = b"gat 1x ".to_vec();
    line.extend_from_slice(&k);
    line.extend_from_slice(b"\r\n");
    assert_eq!(
        p(&line),
        client(ClientError::InvalidExptime, line.len(), false)
    );
}

#[test]
fn huge_multiget() {
    let mut line = b"get".to_vec();
    for i in 0..10_000 {
        line.extend_from_slice(format!(" key:{i}").as_bytes());
    }
    line.extend_from_slice(b"\r\n");
    match one(&line) {
        Request::Get { keys, .. } => {
            assert_eq!(keys.iter().count(), 10_000);
            assert_eq!(keys.iter().last(), Some(&b"key:9999"[..]));
        }
        other => panic!("{other:?}"),
    }
    // One bad key anywhere spoils the whole line.
    let mut bad = line[..line.len() - 2].to_vec();
    bad.push(b' ');
    bad.extend_from_slice(&long_key());
    bad.extend_from_slice(b"\r\n");
    bad_format(&bad, false);
}

// ------------------------------------------------------------------ storage

#[test]
fn storage_commands() {
    assert_eq!(
        one(b"set k 0 0 5\r\nhello\r\n"),
        store(StoreMode::Set, b"k", b"hello")
    );
    assert_eq!(
        one(b"add k 0 0 1\r\nx\r\n"),
        store(StoreMode::Add, b"k", b"x")
    );
    assert_eq!(
        one(b"replace k 0 0 1\r\nx\r\n"),
        store(StoreMode::Replace, b"k", b"x")
    );
    assert_eq!(
        one(b"append k 0 0 1\r\nx\r\n"),
        store(StoreMode::Append, b"k", b"x")
    );
    assert_eq!(
        one(b"prepend k 0 0 1\r\nx\r\n"),
        store(StoreMode::Prepend, b"k", b"x")
    );
    assert_eq!(
        one(b"set k 4294967295 -1 3 noreply\r\na\r\n\r\n"),
        Request::Store {
            mode: StoreMode::Set,
            key: b"k",
            flags: u32::MAX,
            exptime: -1,
            cas: 0,
            value: b"a\r\n",
            noreply: true,
        }
    );
    assert_eq!(
        one(b"cas k 7 2592000 2 18446744073709551615\r\nab\r\n"),
        Request::Store {
            mode: StoreMode::Cas,
            key: b"k",
            flags: 7,
            exptime: 2_592_000,
            cas: u64::MAX,
            value: b"ab",
            noreply: false,
        }
    );
    assert_eq!(
        one(b"cas k 0 0 1 5 noreply\r\nx\r\n"),
        Request::Store {
            mode: StoreMode::Cas,
            key: b"k",
            flags: 0,
            exptime: 0,
            cas: 5,
            value: b"x",
            noreply: true,
        }
    );
    // Empty value, bare `\n` after the line, stray sixth token.
    assert_eq!(one(b"set k 0 0 0\n\r\n"), store(StoreMode::Set, b"k", b""));
    assert_eq!(
        one(b"set k 0 0 1 foo\r\nx\r\n"),
        store(StoreMode::Set, b"k", b"x")
    );
    // strtol-style numbers.
    assert_eq!(
        one(b"set k +0 00 \t1\t junk\r\nx\r\n"),
        store(StoreMode::Set, b"k", b"x")
    );
    assert_eq!(
        one(b"set k -0 0 1\r\nx\r\n"),
        store(StoreMode::Set, b"k", b"x")
    );
}

#[test]
fn storage_consumes_only_its_own_bytes() {
    let buf = b"set k 0 0 1\r\nx\r\nget k\r\n";
    assert_eq!(
        p(buf),
        Parsed::Request {
            request: store(StoreMode::Set, b"k", b"x"),
            consumed: 16,
        }
    );
}

#[test]
fn storage_token_count() {
    assert_error(b"set k 0 0\r\n");
    assert_error(b"set k 0 0 1 noreply extra\r\n");
    assert_error(b"cas k 0 0 1\r\n");
    assert_error(b"cas k 0 0 1 1 noreply x\r\n");
    assert_error(b"set\r\n");
    // A wrong count is never quiet.
    assert_error(b"set k 0 noreply\r\n");
}

#[test]
fn storage_bad_format() {
    for line in [
        &b"set k 0 0 1x\r\n"[..],
        b"set k 0 0 -1\r\n",
        b"set k -1 0 1\r\n",
        b"set k 4294967296 0 1\r\n",
        b"set k 0 0x 1\r\n",
        b"set k 0 9223372036854775808 1\r\n",
        b"set k 0 0 2147483646\r\n",
        b"set k 0 0 4294967297\r\n",
        b"set k 0 0 1junk\r\n",
        b"cas k 0 0 1 x\r\n",
        b"cas k 0 0 1 -1\r\n",
        b"cas k 0 0 1 18446744073709551616\r\n",
    ] {
        bad_format(line, false);
    }
    let mut line = b"set ".to_vec();
    line.extend_from_slice(&long_key());
    line.extend_from_slice(b" 0 0 1\r\n");
    bad_format(&line, false);
    // With noreply these say nothing, and the data block is not swallowed.
    bad_format(b"set k 0 0 1x noreply\r\n", true);
    bad_format(b"set k 0 0 noreply\r\n", true);
    bad_format(b"cas k 0 0 1 noreply\r\n", true);
    let mut line = b"add ".to_vec();
    line.extend_from_slice(&long_key());
    line.extend_from_slice(b" 0 0 1 noreply\r\n");
    bad_format(&line, true);
    // Exptimes beyond 32 bits are passed on, not truncated.
    match one(b"set k 0 2147483648 1\r\nx\r\n") {
        Request::Store { exptime, .. } => assert_eq!(exptime, 2_147_483_648),
        other => panic!("{other:?}"),
    }
    match one(b"set k 0 -9223372036854775808 1\r\nx\r\n") {
        Request::Store { exptime, .. } => assert_eq!(exptime, i64::MIN),
        other => panic!("{other:?}"),
    }
}

#[test]
fn storage_bad_data_chunk() {
    // Exactly `bytes + 2` are taken; the leftover `\r\n` is the next line.
    let buf = b"set k 0 0 1\r\nxyz\r\n";
    assert_eq!(p(buf), client(ClientError::BadDataChunk, 16, false));
    assert_eq!(p(&buf[16..]), invalid(Response::Error, 2, false));
    let buf = b"set k 0 0 1 noreply\r\nx\nget k\r\n";
    assert_eq!(p(buf), client(ClientError::BadDataChunk, 24, true));
    assert_eq!(p(&buf[24..]), invalid(Response::Error, 6, false));
    // Before the terminator has arrived it is just incomplete.
    assert_eq!(p(b"set k 0 0 1\r\nx"), Parsed::Incomplete);
    assert_eq!(p(b"set k 0 0 1\r\nx\r"), Parsed::Incomplete);
    assert_eq!(
        p(b"set k 0 0 1\r\nxy"),
        Parsed::Incomplete,
        "two bytes are needed after the data"
    );
}

#[test]
fn values_still_arriving_beyond_the_upload_room_are_refused() {
    let limits = Limits {
        pending_value_max: 10,
        ..Limits::default()
    };
    let refused = |noreply, consumed, swallow| Parsed::Oversized {
        request: Request::StoreNoMemory {
            mode: StoreMode::Set,
            key: b"k",
            noreply,
        },
        consumed,
        swallow,
    };
    // The fast path for plain sets and the general one (noreply) agree.
    assert_eq!(
        parse(b"set k 0 0 11\r\nabc", &limits),
        refused(false, 17, 10)
    );
    assert_eq!(
        parse(b"set k 0 0 11 noreply\r\n", &limits),
        refused(true, 22, 13)
    );
    // Complete values and small ones still arriving are not affected.
    assert_eq!(
        one_with(b"set k 0 0 11\r\nabcdefghijk\r\n", &limits),
        store(StoreMode::Set, b"k", b"abcdefghijk")
    );
    assert_eq!(parse(b"set k 0 0 10\r\nabc", &limits), Parsed::Incomplete);
    assert_eq!(parse(b"get k", &limits), Parsed::Incomplete);
}

#[test]
fn storage_too_large() {
    let limits = Limits {
        item_size_max: 10,
        ..Limits::default()
    };
    // Nothing of the block buffered yet.
    assert_eq!(
        parse(b"set k 0 0 11\r\n", &limits),
        Parsed::Oversized {
            request: Request::StoreTooLarge {
                mode: StoreMode::Set,
                key: b"k",
                noreply: false,
            },
            consumed: 14,
            swallow: 13,
        }
    );
    // Part of it buffered: that part is consumed now.
    assert_eq!(
        parse(b"set k 0 0 11 noreply\r\nabcde", &limits),
        Parsed::Oversized {
            request: Request::StoreTooLarge {
                mode: StoreMode::Set,
                key: b"k",
                noreply: true,
            },
            consumed: 27,
            swallow: 8,
        }
    );
    // All of it and more buffered.
    assert_eq!(
        parse(b"set k 0 0 11\r\nabcdefghijk\r\nget k\r\n", &limits),
        Parsed::Oversized {
            request: Request::StoreTooLarge {
                mode: StoreMode::Set,
                key: b"k",
                noreply: false,
            },
            consumed: 27,
            swallow: 0,
        }
    );
    assert_eq!(
        one_with(b"set k 0 0 10\r\nabcdefghij\r\n", &limits),
        store(StoreMode::Set, b"k", b"abcdefghij")
    );
    // The largest length memcached accepts at all.
    assert_eq!(
        p(b"cas k 0 0 2147483645 1\r\n"),
        Parsed::Oversized {
            request: Request::StoreTooLarge {
                mode: StoreMode::Cas,
                key: b"k",
                noreply: false,
            },
            consumed: 24,
            swallow: 2_147_483_647,
        }
    );
}

fn one_with<'a>(buf: &'a [u8], limits: &Limits) -> Request<'a> {
    match parse(buf, limits) {
        Parsed::Request { request, consumed } if consumed == buf.len() => request,
        other => panic!("{other:?}"),
    }
}

// -------------------------------------------------------------- other verbs

#[test]
fn delete() {
    let del = |key: &'static [u8], noreply| Request::Delete { key, noreply };
    assert_eq!(one(b"delete k\r\n"), del(b"k", false));
    assert_eq!(one(b"delete k 0\r\n"), del(b"k", false));
    assert_eq!(one(b"delete k noreply\r\n"), del(b"k", true));
    assert_eq!(one(b"delete k 0 noreply\r\n"), del(b"k", true));
    assert_eq!(one(b"delete noreply\r\n"), del(b"noreply", false));
    assert_error(b"delete\r\n");
    assert_error(b"delete k 0 noreply x\r\n");
    for (line, quiet) in [
        (&b"delete k 1\r\n"[..], false),
        (b"delete k foo\r\n", false),
        (b"delete k 0 foo\r\n", false),
        (b"delete k 1 noreply\r\n", true),
        (b"delete k noreply noreply\r\n", true),
    ] {
        assert_eq!(
            p(line),
            client(ClientError::BadDeleteFormat, line.len(), quiet),
            "{line:?}"
        );
    }
    let mut line = b"delete ".to_vec();
    line.extend_from_slice(&long_key());
    let plain = [&line[..], b"\r\n"].concat();
    bad_format(&plain, false);
    let quiet = [&line[..], b" noreply\r\n"].concat();
    bad_format(&quiet, true);
}

#[test]
fn arith() {
    assert_eq!(
        one(b"incr k 1\r\n"),
        Request::Arith {
            op: ArithOp::Incr,
            key: b"k",
            delta: 1,
            noreply: false,
        }
    );
    assert_eq!(
        one(b"decr k 18446744073709551615 noreply\r\n"),
        Request::Arith {
            op: ArithOp::Decr,
            key: b"k",
            delta: u64::MAX,
            noreply: true,
        }
    );
    assert_eq!(
        one(b"incr k 5 foo\r\n"),
        Request::Arith {
            op: ArithOp::Incr,
            key: b"k",
            delta: 5,
            noreply: false,
        }
    );
    assert_error(b"incr k\r\n");
    assert_error(b"incr k 1 noreply x\r\n");
    assert_error(b"incr\tk 1\r\n");
    for (line, quiet) in [
        (&b"incr k x\r\n"[..], false),
        (b"incr k -1\r\n", false),
        (b"decr k 18446744073709551616\r\n", false),
        (b"incr k x noreply\r\n", true),
        (b"incr k noreply\r\n", true),
    ] {
        assert_eq!(
            p(line),
            client(ClientError::InvalidDeltaArgument, line.len(), quiet),
            "{line:?}"
        );
    }
    let line = [&b"incr "[..], &long_key(), b" x\r\n"].concat();
    bad_format(&line, false);
}

#[test]
fn touch() {
    assert_eq!(
        one(b"touch k 10\r\n"),
        Request::Touch {
            key: b"k",
            exptime: 10,
            noreply: false,
        }
    );
    assert_eq!(
        one(b"touch k -5 noreply\r\n"),
        Request::Touch {
            key: b"k",
            exptime: -5,
            noreply: true,
        }
    );
    assert_error(b"touch k\r\n");
    assert_error(b"touch k 1 noreply x\r\n");
    for (line, quiet) in [
        (&b"touch k x\r\n"[..], false),
        (b"touch k x noreply\r\n", true),
        (b"touch k noreply\r\n", true),
    ] {
        assert_eq!(
            p(line),
            client(ClientError::InvalidExptime, line.len(), quiet),
            "{line:?}"
        );
    }
    let line = [&b"touch "[..], &long_key(), b" x\r\n"].concat();
    bad_format(&line, false);
}

#[test]
fn flush_all() {
    let flush = |delay, noreply| Request::FlushAll { delay, noreply };
    assert_eq!(one(b"flush_all\r\n"), flush(0, false));
    assert_eq!(one(b"flush_all 10\r\n"), flush(10, false));
    assert_eq!(one(b"flush_all -1\r\n"), flush(-1, false));
    assert_eq!(one(b"flush_all noreply\r\n"), flush(0, true));
    assert_eq!(one(b"flush_all 5 noreply\r\n"), flush(5, true));
    assert_eq!(one(b"flush_all 5 foo\r\n"), flush(5, false));
    assert_error(b"flush_all 0 0 0\r\n");
    for (line, quiet) in [
        (&b"flush_all x\r\n"[..], false),
        (b"flush_all noreply 0\r\n", false),
        (b"flush_all x noreply\r\n", true),
        (b"flush_all noreply noreply\r\n", true),
    ] {
        assert_eq!(
            p(line),
            client(ClientError::InvalidExptime, line.len(), quiet),
            "{line:?}"
        );
    }
}

#[test]
fn admin_commands() {
    assert_eq!(one(b"version\r\n"), Request::Version);
    assert_eq!(one(b"version foo bar\r\n"), Request::Version);
    assert_eq!(one(b"quit\r\n"), Request::Quit);
    assert_eq!(one(b"quit now\n"), Request::Quit);
    assert_eq!(
        one(b"verbosity 1\r\n"),
        Request::Verbosity {
            level: 1,
            noreply: false
        }
    );
    assert_eq!(
        one(b"verbosity 2 noreply\r\n"),
        Request::Verbosity {
            level: 2,
            noreply: true
        }
    );
    assert_eq!(
        one(b"verbosity 1 foo\r\n"),
        Request::Verbosity {
            level: 1,
            noreply: false
        }
    );
    assert_error(b"verbosity\r\n");
    assert_error(b"verbosity 1 2 3\r\n");
    bad_format(b"verbosity x\r\n", false);
    bad_format(b"verbosity -1\r\n", false);
    bad_format(b"verbosity noreply\r\n", true);

    assert_eq!(
        one(b"cache_memlimit 100\r\n"),
        Request::CacheMemlimit {
            megabytes: 100,
            noreply: false
        }
    );
    assert_eq!(
        one(b"cache_memlimit 0 noreply\r\n"),
        Request::CacheMemlimit {
            megabytes: 0,
            noreply: true
        }
    );
    assert_error(b"cache_memlimit\r\n");
    assert_error(b"cache_memlimit x\r\n");
    assert_error(b"cache_memlimit -5\r\n");
    assert_eq!(
        p(b"cache_memlimit x noreply\r\n"),
        invalid(Response::Error, 26, true)
    );

    assert_eq!(one(b"shutdown\r\n"), Request::Shutdown { graceful: false });
    assert_eq!(
        one(b"shutdown  graceful\r\n"),
        Request::Shutdown { graceful: true }
    );
    for line in [&b"shutdown foo\r\n"[..], b"shutdown graceful x\r\n"] {
        assert_eq!(
            p(line),
            client(ClientError::InvalidShutdownMode, line.len(), false)
        );
    }
}

#[test]
fn stats() {
    let stats = |group| Request::Stats { group };
    assert_eq!(one(b"stats\r\n"), stats(StatsGroup::General));
    assert_eq!(one(b"stats  \r\n"), stats(StatsGroup::General));
    assert_eq!(one(b"stats settings\r\n"), stats(StatsGroup::Settings));
    assert_eq!(one(b"stats items\r\n"), stats(StatsGroup::Items));
    assert_eq!(one(b"stats  slabs\r\n"), stats(StatsGroup::Slabs));
    assert_eq!(one(b"stats sizes\r\n"), stats(StatsGroup::Sizes));
    assert_eq!(one(b"stats conns\r\n"), stats(StatsGroup::Conns));
    assert_eq!(one(b"stats reset x\r\n"), stats(StatsGroup::Reset));
    assert_eq!(
        one(b"stats detail dump\r\n"),
        stats(StatsGroup::Other(b"detail"))
    );
}

// ------------------------------------------------------------------ framing

#[test]
fn junk_lines_are_errors() {
    for line in [
        &b"\r\n"[..],
        b"\n",
        b"\r\r\n",
        b"   \r\n",
        b"GET a\r\n",
        b"Set k 0 0 1\r\n",
        b"g\r\n",
        b"getx a\r\n",
        b"MN\r\n",
        b"\x00get a\r\n",
        b"\x01\x02\x03\r\n",
        b"\xff\xfe\r\n",
    ] {
        assert_error(line);
    }
}

#[test]
fn nul_ends_the_command() {
    assert_eq!(one(b"get a\x00b\r\n"), get(b"a", false, None));
    assert_error(b"set a\x000 0 1\r\n");
}

#[test]
fn prefixes_are_incomplete() {
    let requests: &[&[u8]] = &[
        b"get a b c\r\n",
        b"gats 100 k1 k2\r\n",
        b"set k 1 2 5\r\nhello\r\n",
        b"cas k 1 2 5 99 noreply\r\nhe\r\no\r\n",
        b"set k 0 0 0\r\n\r\n",
        b"delete k 0 noreply\r\n",
        b"incr k 5\r\n",
        b"touch k 5\n",
        b"flush_all\r\n",
        b"stats items\r\n",
        b"version\r\n",
    ];
    for request in requests {
        assert!(
            matches!(p(request), Parsed::Request { consumed, .. } if consumed == request.len())
        );
        for end in 0..request.len() {
            assert_eq!(
                p(&request[..end]),
                Parsed::Incomplete,
                "prefix {:?}",
                &request[..end]
            );
        }
    }
}

#[test]
fn line_limit() {
    // 2048 bytes without a newline: keep waiting; one more: close silently.
    let junk = vec![b'x'; 2049];
    assert_eq!(p(&junk[..2048]), Parsed::Incomplete);
    let closed = Parsed::Invalid {
        error: Response::ClientError(ClientError::LineTooLong),
        consumed: 0,
        swallow: 0,
        close: true,
        quiet: true,
    };
    assert_eq!(p(&junk), closed);
    // A newline at index 2048 is still found; at 2049 it is too late.
    let mut line = vec![b'x'; 2048];
    line.push(b'\n');
    assert_eq!(p(&line), invalid(Response::Error, 2049, false));
    line.insert(0, b'x');
    assert_eq!(p(&line), closed);
    // A long storage line is closed too, not answered.
    let mut set = b"set ".to_vec();
    set.extend_from_slice(&[b'k'; 3000]);
    assert_eq!(p(&set), closed);

    // Retrieval lines may grow up to max_get_line.
    let limits = Limits {
        max_get_line: 10_000,
        ..Limits::default()
    };
    for prefix in [&b"get "[..], b"gets ", b"gat 0 ", b"gats 0 ", b"  get "] {
        let mut line = prefix.to_vec();
        while line.len() < 10_000 {
            line.extend_from_slice(b"key ");
        }
        line.truncate(10_000);
        assert_eq!(parse(&line, &limits), Parsed::Incomplete, "{prefix:?}");
        let mut done = line.clone();
        done.push(b'\n');
        assert!(matches!(
            parse(&done, &limits),
            Parsed::Request {
                consumed: 10_001,
                ..
            }
        ));
        line.push(b'k');
        assert_eq!(parse(&line, &limits), closed, "{prefix:?}");
    }
    // At most 100 leading spaces; `get` must be followed by a space.
    let mut line = vec![b' '; 100];
    line.extend_from_slice(b"get ");
    line.resize(3000, b'k');
    assert_eq!(parse(&line, &limits), Parsed::Incomplete);
    line.insert(0, b' ');
    assert_eq!(parse(&line, &limits), closed);
    let mut line = b"getx ".to_vec();
    line.resize(3000, b'k');
    assert_eq!(parse(&line, &limits), closed);
}

/// A connection in miniature: feeds chunks, parses until incomplete, and
/// records every outcome, honouring `consumed`, `swallow` and `close`.
struct Conn {
    buf: Vec<u8>,
    swallow: usize,
    closed: bool,
    log: Vec<String>,
    limits: Limits,
}

impl Conn {
    fn new(limits: Limits) -> Self {
        Conn {
            buf: Vec::new(),
            swallow: 0,
            closed: false,
            log: Vec::new(),
            limits,
        }
    }

    fn feed(&mut self, bytes: &[u8]) {
        if self.closed {
            return;
        }
        let skip = self.swallow.min(bytes.len());
        self.swallow -= skip;
        self.buf.extend_from_slice(&bytes[skip..]);
        loop {
            let consumed = match parse(&self.buf, &self.limits) {
                Parsed::Incomplete => return,
                Parsed::Request { request, consumed } => {
                    self.log.push(format!("{request:?}"));
                    consumed
                }
                Parsed::Oversized {
                    request,
                    consumed,
                    swallow,
                } => {
                    self.log.push(format!("{request:?}"));
                    assert!(consumed <= self.buf.len());
                    assert!(swallow == 0 || consumed == self.buf.len());
                    self.swallow = swallow;
                    consumed
                }
                Parsed::Invalid {
                    error,
                    consumed,
                    swallow,
                    close,
                    quiet,
                } => {
                    self.log
                        .push(format!("{error:?} quiet={quiet} close={close}"));
                    if close {
                        self.closed = true;
                        return;
                    }
                    assert!(consumed <= self.buf.len());
                    assert!(swallow == 0 || consumed == self.buf.len());
                    self.swallow = swallow;
                    consumed
                }
            };
            assert!(consumed > 0 && consumed <= self.buf.len());
            self.buf.drain(..consumed);
        }
    }
}

fn transcript(chunks: &[&[u8]], limits: Limits) -> Vec<String> {
    let mut conn = Conn::new(limits);
    for chunk in chunks {
        conn.feed(chunk);
    }
    conn.log
}

fn pipeline() -> Vec<u8> {
    let mut buf = Vec::new();
    for part in [
        &b"set a 0 0 1\r\nx\r\n"[..],
        b"get a b\n",
        b"gets a\r\n",
        b"set big 0 0 20\r\n01234567890123456789\r\n",
        b"set b 0 0 1\r\nxyz\r\n",
        b"incr a 1 noreply\r\n",
        b"GET a\r\n",
        b"\r\n",
        b"delete a 1\r\n",
        b"cas c 0 0 3 9\r\nabc\r\n",
        b"gat 1 a\r\n",
        b"set k 0 0 1x\r\nx\r\n",
        b"stats\r\n",
        b"flush_all noreply\r\n",
        b"version\r\n",
    ] {
        buf.extend_from_slice(part);
    }
    buf
}

#[test]
fn pipelines_survive_any_split() {
    let limits = Limits {
        item_size_max: 10,
        ..Limits::default()
    };
    let buf = pipeline();
    let whole = transcript(&[&buf], limits);
    assert_eq!(whole.len(), 17, "{whole:#?}");
    assert!(whole[3].contains("StoreTooLarge"));
    assert!(whole[4].contains("BadDataChunk"));
    for split in 0..=buf.len() {
        let (a, b) = buf.split_at(split);
        assert_eq!(transcript(&[a, b], limits), whole, "split at {split}");
    }
    let bytes: Vec<&[u8]> = buf.chunks(1).collect();
    assert_eq!(transcript(&bytes, limits), whole);
    let thirds: Vec<&[u8]> = buf.chunks(7).collect();
    assert_eq!(transcript(&thirds, limits), whole);
}

#[test]
fn many_pipelined_commands() {
    let mut buf = Vec::new();
    for i in 0..1000 {
        buf.extend_from_slice(
            format!("set key{i} {i} 0 {}\r\n{i}\r\n", i.to_string().len()).as_bytes(),
        );
        buf.extend_from_slice(format!("get key{i}\r\n").as_bytes());
    }
    let mut rest = &buf[..];
    let mut n = 0;
    while !rest.is_empty() {
        match p(rest) {
            Parsed::Request { request, consumed } => {
                if n % 2 == 0 {
                    let Request::Store { flags, value, .. } = request else {
                        panic!("{request:?}")
                    };
                    assert_eq!(value, (n / 2).to_string().as_bytes());
                    assert_eq!(flags, n / 2);
                }
                rest = &rest[consumed..];
                n += 1;
            }
            other => panic!("{other:?}"),
        }
    }
    assert_eq!(n, 2000);
}

/// xorshift64*: deterministic, dependency-free noise for the no-panic test.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

#[test]
fn random_input_never_panics() {
    const WORDS: &[&[u8]] = &[
        b"get",
        b"gets",
        b"gat",
        b"gats",
        b"set",
        b"add",
        b"cas",
        b"append",
        b"incr",
        b"decr",
        b"delete",
        b"touch",
        b"flush_all",
        b"verbosity",
        b"cache_memlimit",
        b"shutdown",
        b"stats",
        b"version",
        b"quit",
        b"noreply",
        b"graceful",
        b"0",
        b"1",
        b"5",
        b"-1",
        b"+3",
        b"18446744073709551616",
        b"4294967296",
        b"2147483645",
        b"k",
        b" ",
        b"  ",
        b"\r\n",
        b"\n",
        b"\r",
        b"\t",
        b"\0",
        b"\xff",
        b"x",
    ];
    let limits = Limits {
        item_size_max: 64,
        max_get_line: 4096,
        ..Limits::default()
    };
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..20_000 {
        let mut input = Vec::new();
        let words = rng.below(40);
        for _ in 0..words {
            if rng.below(4) == 0 {
                input.push(rng.next() as u8);
            } else {
                input.extend_from_slice(WORDS[rng.below(WORDS.len())]);
                if rng.below(2) == 0 {
                    input.push(b' ');
                }
            }
        }
        if rng.below(50) == 0 {
            let len = rng.below(6000);
            input.extend((0..len).map(|_| b"get k \n"[rng.below(7)]));
        }
        let split = rng.below(input.len() + 1);
        let (a, b) = input.split_at(split);
        let whole = transcript(&[&input], limits);
        assert_eq!(transcript(&[a, b], limits), whole, "{input:?}");
    }
}

// ------------------------------------------------------------------ encoder

fn enc(response: Response<'_>) -> Vec<u8> {
    let mut out = b"prev".to_vec();
    encode(&response, &mut out);
    assert_eq!(&out[..4], b"prev", "encode appends");
    out.drain(..4);
    out
}

#[test]
fn encode_simple_replies() {
    let cases: &[(Response<'_>, &[u8])] = &[
        (Response::End, b"END\r\n"),
        (Response::Stored, b"STORED\r\n"),
        (Response::NotStored, b"NOT_STORED\r\n"),
        (Response::Exists, b"EXISTS\r\n"),
        (Response::NotFound, b"NOT_FOUND\r\n"),
        (Response::Deleted, b"DELETED\r\n"),
        (Response::Touched, b"TOUCHED\r\n"),
        (Response::Ok, b"OK\r\n"),
        (Response::Reset, b"RESET\r\n"),
        (Response::Number(0), b"0\r\n"),
        (Response::Number(9), b"9\r\n"),
        (Response::Number(10), b"10\r\n"),
        (Response::Number(100), b"100\r\n"),
        (Response::Number(u64::MAX), b"18446744073709551615\r\n"),
        (Response::Version("1.6.18"), b"VERSION 1.6.18\r\n"),
        (Response::Error, b"ERROR\r\n"),
        (
            Response::ErrorMsg("Too many open connections"),
            b"ERROR Too many open connections\r\n",
        ),
        (
            Response::Line("ERROR: shutdown not enabled"),
            b"ERROR: shutdown not enabled\r\n",
        ),
        (
            Response::ClientError(ClientError::BadDataChunk),
            b"CLIENT_ERROR bad data chunk\r\n",
        ),
        (
            Response::ClientError(ClientError::BadDeleteFormat),
            b"CLIENT_ERROR bad command line format.  Usage: delete <key> [noreply]\r\n",
        ),
        (
            Response::ServerError(ServerError::ObjectTooLarge),
            b"SERVER_ERROR object too large for cache\r\n",
        ),
    ];
    for (response, bytes) in cases {
        assert_eq!(enc(*response), *bytes, "{response:?}");
    }
}

#[test]
fn encode_values() {
    assert_eq!(
        enc(Response::Value {
            key: b"k",
            flags: 0,
            cas: None,
            data: b"hello",
        }),
        b"VALUE k 0 5\r\nhello\r\n"
    );
    assert_eq!(
        enc(Response::Value {
            key: b"key",
            flags: u32::MAX,
            cas: Some(12_345_678_901),
            data: b"",
        }),
        b"VALUE key 4294967295 0 12345678901\r\n\r\n"
    );
    let big = vec![b'v'; 100_000];
    let out = enc(Response::Value {
        key: b"b",
        flags: 1,
        cas: Some(0),
        data: &big,
    });
    assert_eq!(&out[..22], b"VALUE b 1 100000 0\r\nvv");
    assert_eq!(out.len(), 20 + 100_000 + 2);
}

#[test]
fn encode_stats() {
    let stat = |name, value| enc(Response::Stat { name, value });
    assert_eq!(stat("pid", StatValue::U64(4800)), b"STAT pid 4800\r\n");
    assert_eq!(stat("x", StatValue::I64(-12)), b"STAT x -12\r\n");
    assert_eq!(
        stat("x", StatValue::I64(i64::MIN)),
        b"STAT x -9223372036854775808\r\n"
    );
    assert_eq!(
        stat(
            "rusage_user",
            StatValue::Seconds {
                secs: 21,
                micros: 592_996
            }
        ),
        b"STAT rusage_user 21.592996\r\n"
    );
    assert_eq!(
        stat("t", StatValue::Seconds { secs: 0, micros: 7 }),
        b"STAT t 0.000007\r\n"
    );
    assert_eq!(
        stat("growth_factor", StatValue::F2(1.25)),
        b"STAT growth_factor 1.25\r\n"
    );
    assert_eq!(stat("f", StatValue::F2(2.0)), b"STAT f 2.00\r\n");
    assert_eq!(stat("f", StatValue::F2(0.125)), b"STAT f 0.12\r\n");
    assert_eq!(stat("f", StatValue::F2(f64::INFINITY)), b"STAT f inf\r\n");
    assert_eq!(
        stat("evictions", StatValue::Text("on")),
        b"STAT evictions on\r\n"
    );
}

#[test]
fn encode_every_number_width() {
    let mut n: u64 = 1;
    for _ in 0..20 {
        for v in [n - 1, n, n + 1] {
            assert_eq!(enc(Response::Number(v)), format!("{v}\r\n").as_bytes());
        }
        n = n.saturating_mul(10);
    }
}

#[test]
fn lru_crawler_takes_a_subcommand_and_a_class_list() {
    use crate::protocol::{CrawlerClasses as C, CrawlerOp as Op, CrawlerSetting as Set};
    for (line, set) in [
        (&b"lru_crawler enable\r\n"[..], Set::Enable),
        (b"lru_crawler disable\r\n", Set::Disable),
        (b"lru_crawler sleep 1000000\r\n", Set::Pacing),
        (b"lru_crawler tocrawl 0\r\n", Set::Pacing),
    ] {
        assert_eq!(one(line), Request::LruCrawlerSet(set));
    }
    let line = b"lru_crawler sleep 1000001\r\n";
    assert_eq!(
        p(line),
        invalid(
            Response::Line("CLIENT_ERROR sleep must be one second or less"),
            line.len(),
            false
        )
    );
    let line = b"lru_crawler tocrawl -1\r\n";
    assert_eq!(
        p(line),
        client(ClientError::BadCommandLineFormat, line.len(), false)
    );
    let crawler = |op, classes| Request::LruCrawler { op, classes };
    assert_eq!(
        one(b"lru_crawler metadump all\r\n"),
        crawler(Op::Metadump, C::All)
    );
    assert_eq!(
        one(b"lru_crawler  metadump  hash\r\n"),
        crawler(Op::Metadump, C::Hash)
    );
    assert_eq!(
        one(b"lru_crawler crawl all\r\n"),
        crawler(Op::Crawl, C::All)
    );
    assert_eq!(
        one(b"lru_crawler metadump ,1,,5,127,\r\n"),
        crawler(Op::Metadump, C::Ids(1 << 1 | 1 << 5 | 1 << 127))
    );
    assert_eq!(
        one(b"lru_crawler metadump ,\r\n"),
        crawler(Op::Metadump, C::Ids(0))
    );
    for bad in ["0", "128", "-1", "1x", "1,x", "4294967297"] {
        let line = format!("lru_crawler crawl {bad}\r\n");
        assert_eq!(
            one(line.as_bytes()),
            crawler(Op::Crawl, C::Invalid),
            "{bad}"
        );
    }
    for line in [
        &b"lru_crawler\r\n"[..],
        b"lru_crawler metadump\r\n",
        b"lru_crawler metadump all noreply\r\n",
        b"lru_crawler enable now\r\n",
        b"lru_crawler sleep\r\n",
        b"lru_crawler sleep 100 noreply\r\n",
        b"LRU_CRAWLER metadump all\r\n",
    ] {
        assert_eq!(p(line), invalid(Response::Error, line.len(), false));
    }
}

#[test]
fn metadump_lines_escape_keys_like_memcached_and_end_in_lf() {
    let mut out = Vec::new();
    encode(
        &Response::MetadumpItem {
            key: b"a b%\x01~._-Z9\xc3\xa9",
            exptime: -1,
            last_access: 1795295291,
            cas: 7,
            fetched: true,
            class: 12,
            size: 69,
        },
        &mut out,
    );
    assert_eq!(
        out,
        b"key=a%20b%25%01~._-Z9%C3%A9 exp=-1 la=1795295291 cas=7 fetch=yes cls=12 size=69\n"
    );
}

#[test]
fn slabs_takes_automove_and_reassign() {
    assert_eq!(
        one(b"slabs automove 2\r\n"),
        Request::SlabsAutomove {
            policy: Some(2),
            noreply: false
        }
    );
    assert_eq!(
        one(b"slabs automove ratio 0.8 noreply\r\n"),
        Request::SlabsAutomove {
            policy: None,
            noreply: true
        }
    );
    assert_eq!(
        one(b"slabs reassign -1 7\r\n"),
        Request::SlabsReassign { from: -1, to: 7 }
    );
    let line = b"slabs automove 3 noreply\r\n";
    assert_eq!(p(line), invalid(Response::Error, line.len(), true));
    let line = b"slabs automove x\r\n";
    assert_eq!(
        p(line),
        client(ClientError::BadCommandLineFormat, line.len(), false)
    );
    for line in [
        &b"slabs reassign 1 2147483648\r\n"[..],
        b"slabs reassign a 1\r\n",
    ] {
        assert_eq!(
            p(line),
            client(ClientError::BadCommandLineFormat, line.len(), false)
        );
    }
    for line in [
        &b"slabs\r\n"[..],
        b"slabs automove\r\n",
        b"slabs automove ratio inf\r\n",
        b"slabs reassign 1\r\n",
        b"slabs reassign 1 2 noreply\r\n",
    ] {
        assert_eq!(p(line), invalid(Response::Error, line.len(), false));
    }
}
