//! set / add / replace / append / prepend / cas: every reply, noreply, binary-safe data,
//! empty values, and values around the item size limit (`-I`).

mod common;
use common::*;

#[test]
fn set_then_get_returns_value_and_flags() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"set k 123 0 5\r\nhello\r\n", b"STORED\r\n");
    c.roundtrip(b"get k\r\n", b"VALUE k 123 5\r\nhello\r\nEND\r\n");
    // Overwrite changes value and flags.
    c.roundtrip(b"set k 7 0 3\r\nbye\r\n", b"STORED\r\n");
    c.roundtrip(b"get k\r\n", b"VALUE k 7 3\r\nbye\r\nEND\r\n");
}

#[test]
fn flags_max_u32_round_trip() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"set k 4294967295 0 1\r\nx\r\n", b"STORED\r\n");
    c.roundtrip(b"get k\r\n", b"VALUE k 4294967295 1\r\nx\r\nEND\r\n");
    c.roundtrip(b"set k 0 0 1\r\nx\r\n", b"STORED\r\n");
    c.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nx\r\nEND\r\n");
}

#[test]
fn add_only_when_absent() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"add k 1 0 2\r\nhi\r\n", b"STORED\r\n");
    c.roundtrip(b"add k 2 0 2\r\nho\r\n", b"NOT_STORED\r\n");
    c.roundtrip(b"get k\r\n", b"VALUE k 1 2\r\nhi\r\nEND\r\n");
}

#[test]
fn replace_only_when_present() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"replace k 1 0 2\r\nhi\r\n", b"NOT_STORED\r\n");
    c.roundtrip(b"get k\r\n", b"END\r\n");
    c.set("k", b"old");
    c.roundtrip(b"replace k 9 0 3\r\nnew\r\n", b"STORED\r\n");
    c.roundtrip(b"get k\r\n", b"VALUE k 9 3\r\nnew\r\nEND\r\n");
}

#[test]
fn append_prepend_keep_flags_and_never_create() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"append k 0 0 1\r\nx\r\n", b"NOT_STORED\r\n");
    c.roundtrip(b"prepend k 0 0 1\r\nx\r\n", b"NOT_STORED\r\n");
    c.roundtrip(b"get k\r\n", b"END\r\n");
    c.roundtrip(b"set k 7 0 2\r\nyo\r\n", b"STORED\r\n");
    // The flags given to append/prepend are ignored.
    c.roundtrip(b"append k 9 0 2\r\n!!\r\n", b"STORED\r\n");
    c.roundtrip(b"prepend k 9 0 2\r\n<<\r\n", b"STORED\r\n");
    c.roundtrip(b"get k\r\n", b"VALUE k 7 6\r\n<<yo!!\r\nEND\r\n");
}

#[test]
fn append_prepend_keep_exptime() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"set k 0 1 1\r\nx\r\n", b"STORED\r\n");
    // exptime 0 given to append must not make the item immortal.
    c.roundtrip(b"append k 0 0 1\r\ny\r\n", b"STORED\r\n");
    c.roundtrip(b"get k\r\n", b"VALUE k 0 2\r\nxy\r\nEND\r\n");
    assert!(
        wait_until(std::time::Duration::from_secs(4), || c.get("k").is_none()),
        "appended item kept living past its original 1 s exptime"
    );
}

#[test]
fn cas_stored_exists_not_found() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"cas k 0 0 1 1\r\nz\r\n", b"NOT_FOUND\r\n");
    c.set("k", b"v1");
    let (v, cas) = c.gets("k").unwrap();
    assert_eq!(v, b"v1");
    let wrong = cas.wrapping_add(1000);
    c.roundtrip(
        format!("cas k 0 0 2 {wrong}\r\nv2\r\n").as_bytes(),
        b"EXISTS\r\n",
    );
    c.roundtrip(
        format!("cas k 5 0 2 {cas}\r\nv2\r\n").as_bytes(),
        b"STORED\r\n",
    );
    c.roundtrip(b"get k\r\n", b"VALUE k 5 2\r\nv2\r\nEND\r\n");
    // The old CAS is now stale.
    c.roundtrip(
        format!("cas k 0 0 2 {cas}\r\nv3\r\n").as_bytes(),
        b"EXISTS\r\n",
    );
    let (_, cas2) = c.gets("k").unwrap();
    assert_ne!(cas, cas2, "a modification must produce a new CAS value");
}

#[test]
fn cas_changes_on_every_modification() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let mut seen = std::collections::HashSet::new();
    c.set("k", b"1");
    assert!(seen.insert(c.gets("k").unwrap().1));
    c.roundtrip(b"append k 0 0 1\r\n2\r\n", b"STORED\r\n");
    assert!(seen.insert(c.gets("k").unwrap().1), "append kept the CAS");
    c.roundtrip(b"prepend k 0 0 1\r\n0\r\n", b"STORED\r\n");
    assert!(seen.insert(c.gets("k").unwrap().1), "prepend kept the CAS");
    c.roundtrip(b"incr k 1\r\n", b"13\r\n");
    assert!(seen.insert(c.gets("k").unwrap().1), "incr kept the CAS");
    c.roundtrip(b"replace k 0 0 1\r\n5\r\n", b"STORED\r\n");
    assert!(seen.insert(c.gets("k").unwrap().1), "replace kept the CAS");
    c.set("k", b"5");
    assert!(seen.insert(c.gets("k").unwrap().1), "set kept the CAS");
    // A plain read does not change it.
    let a = c.gets("k").unwrap().1;
    assert_eq!(a, c.gets("k").unwrap().1);
}

#[test]
fn cas_on_deleted_key_is_not_found() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("k", b"v");
    let (_, cas) = c.gets("k").unwrap();
    c.roundtrip(b"delete k\r\n", b"DELETED\r\n");
    c.roundtrip(
        format!("cas k 0 0 1 {cas}\r\nz\r\n").as_bytes(),
        b"NOT_FOUND\r\n",
    );
}

#[test]
fn cas_bad_arguments() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("k", b"v");
    // Missing cas unique: unknown command shape, the data line is a second unknown command.
    c.roundtrip(b"cas k 0 0 1\r\nz\r\n", b"ERROR\r\nERROR\r\n");
    c.roundtrip(
        b"cas k 0 0 1 abc\r\nz\r\n",
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
    );
    c.roundtrip(
        b"cas k 0 0 1 -1\r\nz\r\n",
        b"CLIENT_ERROR bad command line format\r\nERROR\r\n",
    );
    c.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n");
}

#[test]
fn noreply_on_every_storage_command() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.send(b"set k 0 0 1 noreply\r\na\r\n");
    c.send(b"add k 0 0 1 noreply\r\nb\r\n"); // NOT_STORED, silent
    c.send(b"add k2 3 0 1 noreply\r\nb\r\n");
    c.send(b"replace k 0 0 1 noreply\r\nc\r\n");
    c.send(b"replace nope 0 0 1 noreply\r\nc\r\n");
    c.send(b"append k 0 0 1 noreply\r\nd\r\n");
    c.send(b"prepend k 0 0 1 noreply\r\ne\r\n");
    c.send(b"append nope 0 0 1 noreply\r\nd\r\n");
    c.send(b"cas k 0 0 1 1 noreply\r\nf\r\n"); // EXISTS, silent
    c.send(b"cas nope 0 0 1 1 noreply\r\nf\r\n"); // NOT_FOUND, silent
    c.roundtrip(
        b"get k k2 nope\r\n",
        b"VALUE k 0 3\r\necd\r\nVALUE k2 3 1\r\nb\r\nEND\r\n",
    );
    let (_, cas) = c.gets("k").unwrap();
    c.send(format!("cas k 0 0 1 {cas} noreply\r\ng\r\n").as_bytes());
    c.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\ng\r\nEND\r\n");
}

#[test]
fn binary_safe_values() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let val: Vec<u8> = b"a\r\nb\0c\r\nEND\r\n\nVALUE x 0 1\r\n"
        .iter()
        .copied()
        .chain(0u8..=255)
        .collect();
    c.send(&store_cmd("set", "bin", 0, 0, &val, ""));
    c.expect(b"STORED\r\n");
    let mut want = format!("VALUE bin 0 {}\r\n", val.len()).into_bytes();
    want.extend_from_slice(&val);
    want.extend_from_slice(b"\r\nEND\r\n");
    c.roundtrip(b"get bin\r\n", &want);
    // append keeps it binary-safe
    c.roundtrip(b"append bin 0 0 3\r\n\r\n\0\r\n", b"STORED\r\n");
    assert_eq!(c.get("bin").unwrap(), [val.as_slice(), b"\r\n\0"].concat());
}

#[test]
fn zero_length_values() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"set e 1 0 0\r\n\r\n", b"STORED\r\n");
    c.roundtrip(b"get e\r\n", b"VALUE e 1 0\r\n\r\nEND\r\n");
    c.roundtrip(b"append e 0 0 0\r\n\r\n", b"STORED\r\n");
    c.roundtrip(b"append e 0 0 2\r\nab\r\n", b"STORED\r\n");
    c.roundtrip(b"get e\r\n", b"VALUE e 1 2\r\nab\r\nEND\r\n");
    c.roundtrip(
        b"set e 0 0 0 noreply\r\n\r\nget e\r\n",
        b"VALUE e 0 0\r\n\r\nEND\r\n",
    );
}

#[test]
fn value_just_under_item_limit_is_stored() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let val = vec![b'v'; 1024 * 1024 - 512];
    c.send(&store_cmd("set", "big", 0, 0, &val, ""));
    c.expect(b"STORED\r\n");
    assert_eq!(c.get("big").unwrap(), val);
}

#[test]
fn value_over_item_limit_is_refused_and_connection_survives() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("keep", b"kept");
    for len in [1024 * 1024, 1024 * 1024 + 1, 3 * 1024 * 1024] {
        let val = vec![b'v'; len];
        c.send(&store_cmd("set", "big", 0, 0, &val, ""));
        c.expect(b"SERVER_ERROR object too large for cache\r\n");
        // The data block was swallowed: the next command is parsed normally.
        c.roundtrip(b"get big keep\r\n", b"VALUE keep 0 4\r\nkept\r\nEND\r\n");
    }
    // noreply hides the error but still swallows the data.
    let val = vec![b'v'; 2 * 1024 * 1024];
    c.send(&store_cmd("set", "big", 0, 0, &val, "noreply"));
    c.roundtrip(b"get keep\r\n", b"VALUE keep 0 4\r\nkept\r\nEND\r\n");
}

#[test]
fn too_large_set_removes_previous_value() {
    // memcached unlinks the old item when a replacement cannot be stored, so a reader never
    // sees data older than a write that was acknowledged with an error.
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("big", b"small");
    let val = vec![b'v'; 2 * 1024 * 1024];
    c.send(&store_cmd("set", "big", 0, 0, &val, ""));
    c.expect(b"SERVER_ERROR object too large for cache\r\n");
    c.roundtrip(b"get big\r\n", b"END\r\n");
}

#[test]
fn item_size_limit_follows_dash_i() {
    let s = Server::start(&["-I", "2m"]);
    let mut c = s.conn();
    let val = vec![b'w'; 1536 * 1024];
    c.send(&store_cmd("set", "big", 0, 0, &val, ""));
    c.expect(b"STORED\r\n");
    assert_eq!(c.get("big").unwrap(), val);
    let val = vec![b'w'; 2 * 1024 * 1024];
    c.send(&store_cmd("set", "big2", 0, 0, &val, ""));
    c.expect(b"SERVER_ERROR object too large for cache\r\n");
    c.roundtrip(b"get big2\r\n", b"END\r\n");
}

#[test]
fn small_item_limit() {
    let s = Server::start(&["-I", "512k"]);
    let mut c = s.conn();
    let ok = vec![b'a'; 500 * 1024];
    c.send(&store_cmd("set", "a", 0, 0, &ok, ""));
    c.expect(b"STORED\r\n");
    let too_big = vec![b'a'; 512 * 1024];
    c.send(&store_cmd("set", "b", 0, 0, &too_big, ""));
    c.expect(b"SERVER_ERROR object too large for cache\r\n");
    c.roundtrip(b"version\r\n", b"VERSION ");
}

#[test]
fn append_beyond_item_limit_fails() {
    let s = Server::start(&["-I", "512k"]);
    let mut c = s.conn();
    let part = vec![b'a'; 300 * 1024];
    c.send(&store_cmd("set", "k", 0, 0, &part, ""));
    c.expect(b"STORED\r\n");
    // memcached answers NOT_STORED when the combined value would exceed the item limit.
    c.send(&store_cmd("append", "k", 0, 0, &part, ""));
    c.expect(b"NOT_STORED\r\n");
    assert_eq!(
        c.get("k").unwrap(),
        part,
        "failed append must leave the value untouched"
    );
}

#[test]
fn data_block_must_end_with_crlf() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    // A bare \n after the data is not a data terminator.
    c.roundtrip(
        b"set q 0 0 1\nx\nget q\n",
        b"CLIENT_ERROR bad data chunk\r\nERROR\r\n",
    );
    c.roundtrip(b"get q\r\n", b"END\r\n");
}

#[test]
fn many_values_of_many_sizes() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let sizes = [
        1usize, 2, 7, 50, 90, 100, 500, 1000, 4000, 10_000, 65_536, 100_000, 500_000,
    ];
    for (i, &n) in sizes.iter().enumerate() {
        let val: Vec<u8> = (0..n).map(|j| (j * 31 + i) as u8).collect();
        c.set_full(&format!("k{i}"), i as u32, 0, &val);
    }
    for (i, &n) in sizes.iter().enumerate() {
        let val: Vec<u8> = (0..n).map(|j| (j * 31 + i) as u8).collect();
        c.send(format!("get k{i}\r\n").as_bytes());
        let r = c.read_get_reply();
        assert_eq!(r.len(), 1);
        assert_eq!(r[0].1, i as u32);
        assert!(r[0].2 == val, "value of size {n} corrupted");
    }
}

#[test]
fn append_data_over_item_limit_is_too_large() {
    // The appended block alone exceeds -I: refused like a too-large set, data swallowed.
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("k", b"base");
    let val = vec![b'z'; 1024 * 1024];
    c.send(&store_cmd("append", "k", 0, 0, &val, ""));
    c.roundtrip(
        b"get k\r\n",
        b"SERVER_ERROR object too large for cache\r\nVALUE k 0 4\r\nbase\r\nEND\r\n",
    );
}

#[test]
fn cas_disabled_with_dash_c() {
    let s = Server::start(&["-C"]);
    let mut c = s.conn();
    c.set("a", b"x");
    c.roundtrip(b"gets a\r\n", b"VALUE a 0 1 0\r\nx\r\nEND\r\n");
    c.roundtrip(b"cas a 0 0 1 0\r\ny\r\n", b"EXISTS\r\n");
    c.roundtrip(b"cas a 0 0 1 1\r\ny\r\n", b"EXISTS\r\n");
    c.roundtrip(b"cas nope 0 0 1 0\r\ny\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"get a\r\n", b"VALUE a 0 1\r\nx\r\nEND\r\n");
}
