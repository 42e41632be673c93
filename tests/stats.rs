//! `stats` and its sub-commands: required fields exist, carry sane values, and move as expected.

mod common;
use common::*;
use std::collections::HashMap;
use std::time::Duration;

const REQUIRED: &[&str] = &[
    "pid",
    "uptime",
    "time",
    "version",
    "pointer_size",
    "rusage_user",
    "rusage_system",
    "curr_connections",
    "total_connections",
    "rejected_connections",
    "cmd_get",
    "cmd_set",
    "cmd_flush",
    "cmd_touch",
    "get_hits",
    "get_misses",
    "get_expired",
    "get_flushed",
    "delete_hits",
    "delete_misses",
    "incr_hits",
    "incr_misses",
    "decr_hits",
    "decr_misses",
    "cas_hits",
    "cas_misses",
    "cas_badval",
    "touch_hits",
    "touch_misses",
    "bytes_read",
    "bytes_written",
    "limit_maxbytes",
    "threads",
    "bytes",
    "curr_items",
    "total_items",
    "expired_unfetched",
    "evicted_unfetched",
    "evictions",
    "reclaimed",
];

fn num(st: &HashMap<String, String>, name: &str) -> u64 {
    st.get(name)
        .unwrap_or_else(|| panic!("stats has no {name}"))
        .parse()
        .unwrap_or_else(|_| panic!("stat {name} = {:?} is not an unsigned integer", st[name]))
}

#[test]
fn required_fields_present_and_sane() {
    let s = Server::start(&["-m", "64", "-t", "3"]);
    let mut c = s.conn();
    let list = c.stats_list("");
    let st: HashMap<String, String> = list.iter().cloned().collect();
    assert_eq!(list.len(), st.len(), "duplicate stat names");
    for name in REQUIRED {
        assert!(st.contains_key(*name), "stats is missing {name}");
    }
    for name in REQUIRED {
        match *name {
            "version" => {}
            "rusage_user" | "rusage_system" => {
                let v = &st[*name];
                let (a, b) = v
                    .split_once('.')
                    .unwrap_or_else(|| panic!("{name} = {v} is not seconds.micros"));
                assert!(
                    a.parse::<u64>().is_ok() && b.len() == 6 && b.parse::<u64>().is_ok(),
                    "{name} = {v}"
                );
            }
            _ => {
                num(&st, name);
            }
        }
    }
    assert_eq!(num(&st, "pid"), s.pid() as u64);
    assert!(num(&st, "uptime") < 60);
    let t = num(&st, "time") as i64;
    assert!(
        (t - unix_now()).abs() <= 3,
        "time {t} vs now {}",
        unix_now()
    );
    assert!(matches!(num(&st, "pointer_size"), 32 | 64));
    assert_eq!(num(&st, "limit_maxbytes"), 64 * 1024 * 1024);
    assert_eq!(num(&st, "threads"), 3);
    assert_eq!(num(&st, "curr_items"), 0);
    assert_eq!(num(&st, "total_items"), 0);
    assert_eq!(num(&st, "cmd_get"), 0);
    assert_eq!(num(&st, "evictions"), 0);
    assert!(num(&st, "curr_connections") >= 1);
    assert!(num(&st, "total_connections") >= num(&st, "curr_connections"));
    c.roundtrip(
        b"version\r\n",
        format!("VERSION {}\r\n", st["version"]).as_bytes(),
    );
}

#[test]
fn version_is_numeric_and_recent() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let line = c.cmd("version");
    let v = line
        .strip_prefix("VERSION ")
        .unwrap_or_else(|| panic!("{line:?}"))
        .trim_end_matches("\r\n");
    let parts: Vec<u64> = v
        .split('.')
        .take(3)
        .map(|p| {
            p.parse()
                .unwrap_or_else(|_| panic!("version {v:?} is not numeric"))
        })
        .collect();
    assert!(parts.len() == 3, "version {v:?} needs three numbers");
    assert!(
        (parts[0], parts[1], parts[2]) >= (1, 4, 14),
        "version {v} is older than 1.4.14"
    );
}

#[test]
fn get_counters() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("a", b"1");
    c.set("b", b"2");
    c.roundtrip(b"get a\r\n", b"VALUE a 0 1\r\n1\r\nEND\r\n");
    c.roundtrip(b"get nope\r\n", b"END\r\n");
    // Every key of a multiget counts.
    c.send(b"get a b nope nope2\r\n");
    c.read_get_reply();
    c.send(b"gets a\r\n");
    c.read_get_reply();
    let st = c.stats("");
    assert_eq!(num(&st, "cmd_get"), 7);
    assert_eq!(num(&st, "get_hits"), 4);
    assert_eq!(num(&st, "get_misses"), 3);
    assert_eq!(num(&st, "cmd_set"), 2);
    assert_eq!(num(&st, "curr_items"), 2);
    assert_eq!(num(&st, "total_items"), 2);
}

#[test]
fn gat_counts_as_touch_not_get() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("a", b"1");
    c.send(b"gat 10 a b\r\n");
    c.read_get_reply();
    c.send(b"gats 10 a\r\n");
    c.read_get_reply();
    let st = c.stats("");
    assert_eq!(num(&st, "cmd_touch"), 3);
    assert_eq!(num(&st, "touch_hits"), 2);
    assert_eq!(num(&st, "touch_misses"), 1);
    assert_eq!(num(&st, "cmd_get"), 0);
    assert_eq!(num(&st, "get_hits"), 0);
    assert_eq!(num(&st, "get_misses"), 0);
}

#[test]
fn set_counters_and_items() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("a", b"1");
    c.set("a", b"2"); // overwrite: one item, two stores
    c.roundtrip(b"add a 0 0 1\r\n3\r\n", b"NOT_STORED\r\n");
    c.roundtrip(b"replace nope 0 0 1\r\n3\r\n", b"NOT_STORED\r\n");
    c.roundtrip(b"append a 0 0 1\r\n3\r\n", b"STORED\r\n");
    let st = c.stats("");
    // memcached counts every storage command it processed.
    assert_eq!(num(&st, "cmd_set"), 5);
    assert_eq!(num(&st, "curr_items"), 1);
    assert_eq!(num(&st, "total_items"), 3);
    assert!(num(&st, "bytes") > 0);
    c.roundtrip(b"delete a\r\n", b"DELETED\r\n");
    let st = c.stats("");
    assert_eq!(num(&st, "curr_items"), 0);
    assert_eq!(num(&st, "bytes"), 0);
}

#[test]
fn delete_incr_decr_touch_cas_counters() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("n", b"5");
    c.roundtrip(b"incr n 1\r\n", b"6\r\n");
    c.roundtrip(b"incr n 1\r\n", b"7\r\n");
    c.roundtrip(b"incr x 1\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"decr n 1\r\n", b"6\r\n");
    c.roundtrip(b"decr x 1\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"decr y 1\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"touch n 0\r\n", b"TOUCHED\r\n");
    c.roundtrip(b"touch x 0\r\n", b"NOT_FOUND\r\n");
    let (_, cas) = c.gets("n").unwrap();
    c.roundtrip(
        format!("cas n 0 0 1 {}\r\n1\r\n", cas + 1).as_bytes(),
        b"EXISTS\r\n",
    );
    c.roundtrip(
        format!("cas n 0 0 1 {cas}\r\n1\r\n").as_bytes(),
        b"STORED\r\n",
    );
    c.roundtrip(b"cas x 0 0 1 1\r\n1\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"delete n\r\n", b"DELETED\r\n");
    c.roundtrip(b"delete n\r\n", b"NOT_FOUND\r\n");
    c.roundtrip(b"delete x\r\n", b"NOT_FOUND\r\n");
    let st = c.stats("");
    for (name, want) in [
        ("incr_hits", 2),
        ("incr_misses", 1),
        ("decr_hits", 1),
        ("decr_misses", 2),
        ("touch_hits", 1),
        ("touch_misses", 1),
        ("cmd_touch", 2),
        ("cas_badval", 1),
        ("cas_hits", 1),
        ("cas_misses", 1),
        ("delete_hits", 1),
        ("delete_misses", 2),
    ] {
        assert_eq!(num(&st, name), want, "{name}");
    }
}

#[test]
fn connection_counters() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    // Only this client is connected (listeners are not connections); a connection used to
    // probe start-up may still be closing, so poll.
    assert!(
        wait_until(Duration::from_secs(5), || c.stat("curr_connections") == 1),
        "curr_connections with one client: {}",
        c.stat("curr_connections")
    );
    let curr0 = 1;
    let total0 = c.stat("total_connections");
    let mut extra: Vec<Conn> = (0..5).map(|_| s.conn()).collect();
    // Make sure the server has accepted all of them.
    for e in extra.iter_mut() {
        e.roundtrip(b"version\r\n", b"VERSION ");
        e.read_line();
    }
    let st = c.stats("");
    assert_eq!(num(&st, "curr_connections"), curr0 + 5);
    assert!(num(&st, "total_connections") >= total0 + 5);
    drop(extra);
    assert!(
        wait_until(Duration::from_secs(5), || c.stat("curr_connections")
            == curr0),
        "curr_connections did not drop back to {curr0}"
    );
    assert_eq!(c.stat("rejected_connections"), 0);
}

#[test]
fn bytes_read_and_written_move() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let st = c.stats("");
    let (r0, w0) = (num(&st, "bytes_read"), num(&st, "bytes_written"));
    let big = vec![b'x'; 10_000];
    c.set("big", &big);
    assert_eq!(c.get("big").unwrap(), big);
    let st = c.stats("");
    assert!(
        num(&st, "bytes_read") >= r0 + 10_000,
        "bytes_read did not count the value"
    );
    assert!(
        num(&st, "bytes_written") >= w0 + 10_000,
        "bytes_written did not count the value"
    );
}

#[test]
fn uptime_ticks() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let u0 = c.stat("uptime");
    assert!(
        wait_until(Duration::from_secs(4), || c.stat("uptime") > u0),
        "uptime does not advance"
    );
}

#[test]
fn stats_reset() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("a", b"1");
    c.get("a");
    c.get("b");
    c.roundtrip(b"stats reset\r\n", b"RESET\r\n");
    let st = c.stats("");
    assert_eq!(num(&st, "cmd_get"), 0);
    assert_eq!(num(&st, "get_hits"), 0);
    assert_eq!(num(&st, "get_misses"), 0);
    assert_eq!(num(&st, "cmd_set"), 0);
    assert_eq!(num(&st, "total_items"), 0);
    // Gauges are not counters: the item is still there.
    assert_eq!(num(&st, "curr_items"), 1);
    assert!(num(&st, "curr_connections") >= 1);
}

#[test]
fn stats_settings_reflect_flags() {
    let s = Server::start(&["-m", "64", "-c", "100", "-t", "2", "-I", "2m", "-R", "7"]);
    let mut c = s.conn();
    let st = c.stats("settings");
    assert_eq!(st["maxbytes"], "67108864");
    assert_eq!(st["maxconns"], "100");
    assert_eq!(st["tcpport"], s.port().to_string());
    assert_eq!(st["num_threads"], "2");
    assert_eq!(st["item_size_max"], "2097152");
    assert_eq!(st["reqs_per_event"], "7");
    assert_eq!(st["cas_enabled"], "yes");
    assert_eq!(st["evictions"], "on");
    assert_eq!(st["flush_enabled"], "yes");
}

#[test]
fn stats_settings_reflect_switches() {
    let s = Server::start(&["-C", "-M", "-F"]);
    let mut c = s.conn();
    let st = c.stats("settings");
    assert_eq!(st["cas_enabled"], "no");
    assert_eq!(st["evictions"], "off");
    assert_eq!(st["flush_enabled"], "no");
    assert_eq!(
        st["maxbytes"],
        (64 * 1024 * 1024).to_string(),
        "default -m is 64 MB"
    );
    assert_eq!(st["maxconns"], "1024");
}

#[test]
fn stats_items_count_items() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    for i in 0..10 {
        c.set(&format!("small{i}"), b"x");
    }
    for i in 0..5 {
        c.set(&format!("big{i}"), &vec![b'y'; 5000]);
    }
    let items = c.stats_list("items");
    let mut total = 0;
    let mut classes = 0;
    for (name, value) in &items {
        let parts: Vec<&str> = name.split(':').collect();
        assert_eq!(parts.len(), 3, "stats items name {name}");
        assert_eq!(parts[0], "items");
        parts[1].parse::<u32>().expect("slab class number");
        if parts[2] == "number" {
            total += value.parse::<u64>().unwrap();
            classes += 1;
        }
    }
    assert_eq!(total, 15);
    assert!(classes >= 2, "items of 1 and 5000 bytes share a class");
}

#[test]
fn stats_slabs_shape() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("k", &vec![b'y'; 300]);
    let slabs = c.stats("slabs");
    assert!(slabs.contains_key("active_slabs"), "{slabs:?}");
    assert!(slabs.contains_key("total_malloced"));
    assert!(num(&slabs, "active_slabs") >= 1);
    let chunk_sizes: Vec<u64> = slabs
        .iter()
        .filter(|(k, _)| k.ends_with(":chunk_size"))
        .map(|(_, v)| v.parse().unwrap())
        .collect();
    assert!(!chunk_sizes.is_empty());
    assert!(
        chunk_sizes.iter().any(|&c| c >= 300),
        "the 300-byte value must fit a chunk: {chunk_sizes:?}"
    );
    let used: u64 = slabs
        .iter()
        .filter(|(k, _)| k.ends_with(":used_chunks"))
        .map(|(_, v)| v.parse::<u64>().unwrap())
        .sum();
    assert_eq!(used, 1);
}

#[test]
fn stats_conns_lists_this_connection() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    let me = c.stream.local_addr().unwrap();
    let conns = c.stats_list("conns");
    let want = format!("tcp:{me}");
    assert!(
        conns
            .iter()
            .any(|(k, v)| k.ends_with(":addr") && *v == want),
        "no `<id>:addr {want}` in {conns:?}"
    );
    for (k, _) in &conns {
        let (id, _field) = k
            .split_once(':')
            .unwrap_or_else(|| panic!("stats conns name {k}"));
        id.parse::<u64>().expect("connection id");
    }
}

#[test]
fn unknown_stats_subcommand() {
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.roundtrip(b"stats bogus\r\n", b"ERROR\r\n");
    c.roundtrip(b"version\r\n", b"VERSION ");
}

#[test]
fn stats_cachedump_lists_keys_of_a_class() {
    // Used by operator tools such as libmemcached's memcdump.
    let s = Server::start(&[]);
    let mut c = s.conn();
    c.set("dumped", b"abc");
    let class = c
        .stats_list("items")
        .into_iter()
        .find(|(k, v)| k.ends_with(":number") && v == "1")
        .map(|(k, _)| k.split(':').nth(1).unwrap().to_string())
        .expect("stats items shows the item's class");
    // memcached dumps its COLD queue, which new items reach after a moment: poll.
    let want: &[u8] = b"ITEM dumped [3 b; 0 s]\r\nEND\r\n";
    let mut last = Vec::new();
    let found = wait_until(Duration::from_secs(5), || {
        c.send(format!("stats cachedump {class} 0\r\n").as_bytes());
        last = c.read_until(b"END\r\n");
        last == want
    });
    assert!(found, "stats cachedump {class} 0 answered {}", esc(&last));
    c.roundtrip(b"stats cachedump\r\n", b"CLIENT_ERROR bad command line\r\n");
    c.roundtrip(
        b"stats cachedump 200 0\r\n",
        b"CLIENT_ERROR Illegal slab id\r\n",
    );
}
