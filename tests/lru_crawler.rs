//! `lru_crawler metadump` and `lru_crawler crawl`: memcached's line format
//! and errors, a listing larger than the output queue, and memcached-tool's
//! `keys` and `dump`, which list a cache through metadump.

mod common;
use common::*;
use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

const MEMCACHED_TOOL: &str = "/usr/share/memcached/scripts/memcached-tool";

/// One metadump line, split into its fields.
fn fields(line: &str) -> HashMap<&str, &str> {
    line.split(' ')
        .map(|f| {
            f.split_once('=')
                .unwrap_or_else(|| panic!("no '=' in {f:?} of {line:?}"))
        })
        .collect()
}

/// Decodes memcached's `%XX` escapes.
fn uri_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(u8::from_str_radix(&s[i + 1..i + 3], 16).unwrap());
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Sends `lru_crawler metadump <classes>` and returns its lines without
/// the final `END`, checking that each ends in a bare LF as memcached's do.
fn metadump(c: &mut Conn, classes: &str) -> Vec<String> {
    c.send(format!("lru_crawler metadump {classes}\r\n").as_bytes());
    let reply = String::from_utf8(c.read_until(b"END\r\n")).unwrap();
    let body = reply.strip_suffix("END\r\n").unwrap();
    assert!(!body.contains('\r'), "{body:?}");
    body.lines().map(str::to_owned).collect()
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn cas_of(c: &mut Conn, key: &[u8]) -> String {
    c.send(&[b"gets ", key, b"\r\n"].concat());
    let items = c.read_get_reply();
    items[0].3.unwrap().to_string()
}

#[test]
fn metadump_lists_live_items_in_memcacheds_format() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"lru_crawler metadump all\r\n", b"END\r\n");
    c.roundtrip(b"set plain 5 0 3\r\nbar\r\n", b"STORED\r\n");
    c.roundtrip(b"set timed 0 100 2\r\nhi\r\n", b"STORED\r\n");
    c.roundtrip(b"set k%20x 0 0 1\r\na\r\n", b"STORED\r\n");
    c.roundtrip("set été 0 0 1\r\na\r\n".as_bytes(), b"STORED\r\n");
    c.roundtrip(b"set gone 0 0 1\r\na\r\n", b"STORED\r\n");
    c.roundtrip(b"delete gone\r\n", b"DELETED\r\n");
    let mut big = b"set big 0 0 2000\r\n".to_vec();
    big.extend_from_slice(&[b'x'; 2000]);
    big.extend_from_slice(b"\r\n");
    c.roundtrip(&big, b"STORED\r\n");
    c.roundtrip(b"get plain\r\n", b"VALUE plain 5 3\r\nbar\r\nEND\r\n");
    let before = unix_now();
    let lines = metadump(&mut c, "all");
    let after = unix_now();
    // After the listing: `gets` marks items fetched.
    let cas: HashMap<Vec<u8>, String> =
        [&b"plain"[..], b"timed", b"k%20x", "été".as_bytes(), b"big"]
            .iter()
            .map(|k| (k.to_vec(), cas_of(&mut c, k)))
            .collect();
    let mut seen = HashMap::new();
    let mut classes = HashSet::new();
    for line in &lines {
        let f = fields(line);
        let names: Vec<&str> = line
            .split(' ')
            .map(|f| f.split('=').next().unwrap())
            .collect();
        assert_eq!(
            names,
            ["key", "exp", "la", "cas", "fetch", "cls", "size"],
            "{line}"
        );
        let key = uri_decode(f["key"]);
        let la: i64 = f["la"].parse().unwrap();
        assert!((before - 5..=after + 1).contains(&la), "{line}");
        assert_eq!(f["cas"], cas[&key], "{line}");
        let size: usize = f["size"].parse().unwrap();
        assert!(size > key.len(), "{line}");
        classes.insert((key.len() > 100 || size > 1000, f["cls"].to_owned()));
        assert!(seen
            .insert(key, (f["exp"].to_owned(), f["fetch"].to_owned()))
            .is_none());
        // Only letters, digits, `-._~` and escapes.
        assert!(
            f["key"]
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-._~%".contains(&b)),
            "{line}"
        );
    }
    let keys: HashSet<&[u8]> = seen.keys().map(Vec::as_slice).collect();
    let want: HashSet<&[u8]> = cas.keys().map(Vec::as_slice).collect();
    assert_eq!(keys, want);
    assert!(
        lines.iter().any(|l| l.starts_with("key=k%2520x ")),
        "{lines:?}"
    );
    assert!(
        lines.iter().any(|l| l.starts_with("key=%C3%A9t%C3%A9 ")),
        "{lines:?}"
    );
    assert_eq!(seen[&b"plain"[..]], ("-1".into(), "yes".into()));
    assert_eq!(seen[&b"big"[..]], ("-1".into(), "no".into()));
    let exp: i64 = seen[&b"timed"[..]].0.parse().unwrap();
    assert!(
        (before + 95..=after + 101).contains(&exp),
        "exp {exp}, now {before}"
    );
    // The 2 KB value sits in another class than the small ones.
    assert_eq!(
        classes.iter().filter(|(big, _)| *big).count(),
        1,
        "{classes:?}"
    );

    // A list of classes: only theirs. The small items share one class.
    let small =
        fields(lines.iter().find(|l| l.starts_with("key=plain ")).unwrap())["cls"].to_owned();
    let only: HashSet<Vec<u8>> = metadump(&mut c, &format!(",{small},"))
        .iter()
        .map(|l| uri_decode(fields(l)["key"]))
        .collect();
    assert!(!only.contains(&b"big"[..]), "{only:?}");
    // memcached's walk can miss an item that its LRU maintainer is moving
    // (one just read, here); ours lists every live item.
    if !is_memcached() {
        assert!(only.contains(&b"plain"[..]), "{only:?}");
    }
    // `hash` lists the same items (memcached in hash order).
    let key_set = |lines: &[String]| -> HashSet<Vec<u8>> {
        lines.iter().map(|l| uri_decode(fields(l)["key"])).collect()
    };
    assert_eq!(key_set(&metadump(&mut c, "hash")), key_set(&lines));
    // The connection goes on as usual.
    c.roundtrip(b"get timed\r\n", b"VALUE timed 0 2\r\nhi\r\nEND\r\n");
}

#[test]
fn lru_crawler_errors_are_memcacheds() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    for (send, want) in [
        (
            &b"lru_crawler metadump 0\r\n"[..],
            &b"BADCLASS invalid class id\r\n"[..],
        ),
        (
            b"lru_crawler metadump -1\r\n",
            b"BADCLASS invalid class id\r\n",
        ),
        (
            b"lru_crawler metadump 1x\r\n",
            b"BADCLASS invalid class id\r\n",
        ),
        (
            b"lru_crawler metadump 1,x\r\n",
            b"BADCLASS invalid class id\r\n",
        ),
        (
            b"lru_crawler metadump 200\r\n",
            b"BADCLASS invalid class id\r\n",
        ),
        (b"lru_crawler crawl 0\r\n", b"BADCLASS invalid class id\r\n"),
        (b"lru_crawler metadump 1,,2\r\n", b"END\r\n"),
        (b"lru_crawler metadump 63\r\n", b"END\r\n"),
        (
            b"lru_crawler crawl hash\r\n",
            b"ERROR an unknown error happened\r\n",
        ),
        (b"lru_crawler\r\n", b"ERROR\r\n"),
        (b"lru_crawler metadump\r\n", b"ERROR\r\n"),
        (b"lru_crawler bogus all\r\n", b"ERROR\r\n"),
        (b"lru_crawler metadump all noreply\r\n", b"ERROR\r\n"),
        (b"LRU_CRAWLER metadump all\r\n", b"ERROR\r\n"),
        // Last: memcached answers BUSY to crawler commands while it runs.
        (b"lru_crawler crawl all\r\n", b"OK\r\n"),
    ] {
        c.roundtrip(send, want);
    }
    // memcached may still be busy with the crawl just started; ours never
    // is (its crawler runs all the time).
    if !is_memcached() {
        c.roundtrip(b"lru_crawler crawl 1,2\r\n", b"OK\r\n");
    }
    c.roundtrip(b"version\r\n", b"VERSION ");
    let _ = c.read_line();

    let off = Server::start(&["-o", "no_lru_crawler"]);
    let mut c = off.conn();
    c.roundtrip(
        b"lru_crawler metadump all\r\n",
        b"CLIENT_ERROR lru crawler disabled\r\n",
    );
    c.roundtrip(
        b"lru_crawler crawl all\r\n",
        b"CLIENT_ERROR lru crawler disabled\r\n",
    );
}

#[test]
fn lru_crawler_enable_disable_and_pacing() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"set a 0 0 1\r\na\r\n", b"STORED\r\n");
    c.roundtrip(b"lru_crawler disable\r\n", b"OK\r\n");
    assert_eq!(c.stats("settings")["lru_crawler"], "no");
    c.roundtrip(
        b"lru_crawler metadump all\r\n",
        b"CLIENT_ERROR lru crawler disabled\r\n",
    );
    c.roundtrip(b"lru_crawler enable\r\n", b"OK\r\n");
    assert_eq!(c.stats("settings")["lru_crawler"], "yes");
    assert_eq!(metadump(&mut c, "all").len(), 1);
    for (send, want) in [
        (&b"lru_crawler sleep 100\r\n"[..], &b"OK\r\n"[..]),
        (b"lru_crawler tocrawl 0\r\n", b"OK\r\n"),
        (
            b"lru_crawler sleep 2000000\r\n",
            b"CLIENT_ERROR sleep must be one second or less\r\n",
        ),
        (
            b"lru_crawler sleep x\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (
            b"lru_crawler tocrawl -1\r\n",
            b"CLIENT_ERROR bad command line format\r\n",
        ),
        (b"lru_crawler sleep\r\n", b"ERROR\r\n"),
        (b"lru_crawler enable now\r\n", b"ERROR\r\n"),
        (b"lru_crawler disable noreply\r\n", b"ERROR\r\n"),
    ] {
        c.roundtrip(send, want);
    }
    // A server started without the crawler can start it.
    let off = Server::start(&["-o", "no_lru_crawler"]);
    let mut c = off.conn();
    c.roundtrip(b"lru_crawler enable\r\n", b"OK\r\n");
    c.roundtrip(b"lru_crawler metadump all\r\n", b"END\r\n");
}

#[test]
fn a_metadump_larger_than_the_output_queue_lists_every_key_once() {
    // About 60,000 lines of 250 bytes: 15 MB, far past what one connection
    // may queue, so the listing pauses and resumes many times.
    let s = Server::start(&["-m", "128"]);
    let mut c = s.conn();
    let n = 60_000;
    let key = |i: usize| format!("{i:0>200}");
    let mut batch = Vec::new();
    for i in 0..n {
        batch.extend_from_slice(format!("set {} 0 0 1 noreply\r\nv\r\n", key(i)).as_bytes());
    }
    c.send(&batch);
    c.roundtrip(b"mn\r\n", b"MN\r\n");
    // Another client is served while this one's listing waits to be read.
    c.send(b"lru_crawler metadump all\r\n");
    let mut other = s.conn();
    other.roundtrip(b"get 7\r\n", b"END\r\n");
    let reply = c.read_until(b"END\r\n");
    let mut seen = HashSet::new();
    for line in reply.split(|&b| b == b'\n') {
        if line.is_empty() || line == b"END\r" {
            continue;
        }
        let line = std::str::from_utf8(line).unwrap();
        assert!(seen.insert(fields(line)["key"].to_owned()), "{line}");
    }
    assert_eq!(seen.len(), n);
    assert!((0..n).all(|i| seen.contains(&key(i))));
    c.roundtrip(b"mn\r\n", b"MN\r\n");
}

/// memcached-tool (a Perl script in Debian's memcached package).
fn memcached_tool(addr: std::net::SocketAddr, mode: &str) -> Vec<u8> {
    let out = Command::new("perl")
        .args([MEMCACHED_TOOL, &addr.to_string(), mode])
        .output()
        .unwrap_or_else(|e| panic!("perl {MEMCACHED_TOOL}: {e} (tests/run-all installs it)"));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

#[test]
fn memcached_tool_keys_and_dump_restore_a_cache() {
    let src = Server::start(&[]);
    let mut c = src.conn();
    let mut want = HashMap::new();
    for i in 0..200 {
        let key = format!("session:{i}");
        let value = format!("{}-{}", "v".repeat(i % 50), i);
        let (flags, exptime) = (i as u32 * 7, if i % 3 == 0 { 3600 } else { 0 });
        c.send(format!("set {key} {flags} {exptime} {}\r\n{value}\r\n", value.len()).as_bytes());
        c.expect(b"STORED\r\n");
        want.insert(key, (flags, value));
    }

    let keys = String::from_utf8(memcached_tool(src.addr(), "keys")).unwrap();
    let listed: HashSet<String> = keys
        .lines()
        .map(|l| String::from_utf8(uri_decode(fields(l)["key"])).unwrap())
        .collect();
    assert_eq!(listed, want.keys().cloned().collect());

    // `dump` writes `add` commands; replaying them fills an empty server.
    let dump = memcached_tool(src.addr(), "dump");
    let dst = Server::start(&[]);
    let mut d = dst.conn();
    d.send(&dump);
    for _ in 0..want.len() {
        d.expect(b"STORED\r\n");
    }
    for (key, (flags, value)) in &want {
        d.roundtrip(
            format!("get {key}\r\n").as_bytes(),
            format!("VALUE {key} {flags} {}\r\n{value}\r\nEND\r\n", value.len()).as_bytes(),
        );
    }
    // Deadlines travel as unix times: the copies of timed keys expire too.
    let lines = metadump(&mut d, "all");
    let timed = lines.iter().filter(|l| fields(l)["exp"] != "-1").count();
    assert_eq!(timed, (0..200).filter(|i| i % 3 == 0).count());
}
