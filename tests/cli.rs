//! Command line: bad flags, -V, -h, the listening line, several listeners, --config.

mod common;
use common::*;
use std::process::Command;
use std::time::Duration;

fn run(args: &[&str]) -> (std::process::ExitStatus, String, String) {
    let mut cmd = Command::new(target_bin());
    if is_memcached() {
        cmd.args(["-u", "root"]);
    }
    cmd.args(args);
    run_with_timeout(cmd, Duration::from_secs(10))
}

#[track_caller]
fn assert_rejected(args: &[&str]) {
    let (st, out, err) = run(args);
    assert!(
        !st.success(),
        "{args:?} was accepted: {st:?}\nstdout: {out}\nstderr: {err}"
    );
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert!(!lines.is_empty(), "{args:?}: no error message on stderr");
    if !is_memcached() {
        assert_eq!(
            lines.len(),
            1,
            "{args:?}: the error should be one line, got:\n{err}"
        );
    }
}

#[test]
fn unknown_flag_is_rejected() {
    assert_rejected(&["--bogus"]);
}

#[test]
fn zero_threads_is_rejected() {
    assert_rejected(&["-p", "0", "-t", "0"]);
}

#[test]
fn non_numeric_connection_limit_is_rejected() {
    assert_rejected(&["-p", "0", "-c", "abc"]);
}

#[test]
fn unknown_extended_option_is_rejected() {
    assert_rejected(&["-p", "0", "-o", "bogus_opt=1"]);
}

#[test]
fn item_size_over_half_memory_is_rejected() {
    assert_rejected(&["-p", "0", "-m", "8", "-I", "16m"]);
}

#[test]
fn item_size_too_small_is_rejected() {
    assert_rejected(&["-p", "0", "-I", "512"]);
}

#[test]
fn dash_v_upper_prints_version() {
    let (st, out, _) = run(&["-V"]);
    assert!(st.success(), "{st:?}");
    let line = out.lines().next().unwrap_or_default();
    let v = line.split_whitespace().last().unwrap_or_default();
    let nums: Vec<&str> = v.split('.').collect();
    assert!(
        nums.len() >= 3 && nums.iter().take(3).all(|n| n.parse::<u32>().is_ok()),
        "version line {line:?}"
    );
}

#[test]
fn dash_h_prints_help() {
    let (st, out, err) = run(&["-h"]);
    assert!(st.success(), "{st:?}");
    let text = format!("{out}{err}");
    for flag in ["-p", "-m", "-c", "-t", "-l", "-I"] {
        assert!(text.contains(flag), "help does not mention {flag}:\n{text}");
    }
}

#[test]
fn memcached_flags_are_accepted_and_reported() {
    let s = Server::start(&[
        "-b",
        "512",
        "-f",
        "1.5",
        "-n",
        "64",
        "-R",
        "5",
        "-U",
        "0",
        "-v",
        "-o",
        "hashpower=20,slab_reassign,slab_automove=1,lru_crawler,idle_timeout=0,modern",
    ]);
    let mut c = s.conn();
    c.set("a", b"x");
    c.set("b", &[b'y'; 300]);
    let st = c.stats("settings");
    for (k, v) in [
        ("growth_factor", "1.50"),
        ("chunk_size", "64"),
        ("reqs_per_event", "5"),
        ("tcp_backlog", "512"),
        ("hashpower_init", "20"),
        ("slab_reassign", "yes"),
        ("slab_automove", "1"),
        ("lru_crawler", "yes"),
        ("idle_timeout", "0"),
    ] {
        assert_eq!(st.get(k).map(String::as_str), Some(v), "stats settings {k}");
    }
    // The smallest class holds at least -n bytes of key + value.
    let slabs = c.stats("slabs");
    let first: u64 = slabs["1:chunk_size"].parse().unwrap();
    assert!(first >= 64, "class 1 chunk {first} < -n 64");
}

#[test]
fn listening_line_on_stderr() {
    ferrocache_only!();
    let s = Server::start(&[]);
    assert_eq!(s.addr().ip().to_string(), "127.0.0.1");
    assert_ne!(s.port(), 0);
    let lines: Vec<String> = s
        .stderr()
        .lines()
        .filter(|l| l.contains("listening"))
        .map(String::from)
        .collect();
    assert_eq!(
        lines,
        vec![format!("ferrocache listening on 127.0.0.1:{}", s.port())]
    );
    s.conn().roundtrip(b"version\r\n", b"VERSION ");
}

#[test]
fn several_listeners() {
    ferrocache_only!();
    let s = Server::start_ferrocache(&["-l", "127.0.0.1,127.0.0.2"], 2);
    let ips: Vec<String> = s.addrs().iter().map(|a| a.ip().to_string()).collect();
    assert!(
        ips.contains(&"127.0.0.1".to_string()) && ips.contains(&"127.0.0.2".to_string()),
        "{ips:?}"
    );
    let mut a = Conn::connect(s.addrs()[0]);
    let mut b = Conn::connect(s.addrs()[1]);
    a.set("k", b"shared");
    assert_eq!(b.get("k").as_deref(), Some(&b"shared"[..]));
}

fn write_config(name: &str, body: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrocache-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join("ferrocache.toml");
    std::fs::write(&p, body).unwrap();
    p
}

#[test]
fn config_file_sets_options() {
    ferrocache_only!();
    let p = write_config(
        "opts",
        "memory_limit = 32\nmax_item_size = \"2m\"\ndisable_flush_all = true\nconn_limit = 77\n",
    );
    let s = Server::start(&["--config", p.to_str().unwrap()]);
    let mut c = s.conn();
    let st = c.stats("settings");
    assert_eq!(st["maxbytes"], (32 * 1024 * 1024).to_string());
    assert_eq!(st["item_size_max"], (2 * 1024 * 1024).to_string());
    assert_eq!(st["maxconns"], "77");
    c.roundtrip(b"flush_all\r\n", b"CLIENT_ERROR flush_all not allowed\r\n");
}

#[test]
fn command_line_wins_over_config_file() {
    ferrocache_only!();
    let p = write_config(
        "override",
        "memory_limit = 32\nport = 11211\nlisten = \"127.0.0.1\"\n",
    );
    // The harness adds -p 0 -l 127.0.0.1, which must win over the file's port.
    let s = Server::start(&["--config", p.to_str().unwrap(), "-m", "48"]);
    let mut c = s.conn();
    assert_eq!(
        c.stats("settings")["maxbytes"],
        (48 * 1024 * 1024).to_string()
    );
    assert_ne!(s.port(), 11211);
}

#[test]
fn config_file_unknown_key_is_rejected() {
    ferrocache_only!();
    let p = write_config("bad", "memroy_limit = 32\n");
    assert_rejected(&["-p", "0", "--config", p.to_str().unwrap()]);
}

#[test]
fn missing_config_file_is_rejected() {
    ferrocache_only!();
    assert_rejected(&["-p", "0", "--config", "/nonexistent/ferrocache.toml"]);
}

#[test]
fn shipped_example_config_is_valid() {
    ferrocache_only!();
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("conf/ferrocache.toml");
    assert!(p.exists(), "conf/ferrocache.toml is missing");
    let s = Server::start(&["--config", p.to_str().unwrap()]);
    s.conn().roundtrip(b"version\r\n", b"VERSION ");
}

#[test]
fn port_in_use_is_an_error() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    assert_rejected(&["-l", "127.0.0.1", "-p", &port]);
}

#[test]
fn udp_port_other_than_zero_is_rejected() {
    // UDP is not served; asking for it must not be silently ignored.
    ferrocache_only!();
    assert_rejected(&["-p", "0", "-U", "11211"]);
}

#[test]
fn common_tuning_options_are_accepted() {
    // Options that deployment scripts commonly pass to memcached must not stop the server.
    let s = Server::start(&[
        "-o",
        "modern,lru_maintainer,no_lru_crawler,no_slab_reassign,hash_algorithm=murmur3",
    ]);
    let mut c = s.conn();
    c.set("k", b"v");
    let st = c.stats("settings");
    assert_eq!(st.get("lru_crawler").map(String::as_str), Some("no"));
    assert_eq!(st.get("slab_reassign").map(String::as_str), Some("no"));
}
