//! Third-party clients and conformance tools against fresh servers: libmemcached's
//! `memccapable` (ascii checks) and pymemcache (tests/interop/pymemcache_check.py).

mod common;
use common::*;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

fn require_tool(path: &str, package: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is not installed (apt-get install -y {package}); {RUN_ALL_HINT}"
    );
}

/// Runs memccapable with `mode` (`-a` ascii, `-b` binary) and requires all 27 checks to pass.
fn memccapable(mode: &str) {
    require_tool("/usr/bin/memccapable", "libmemcached-tools");
    let s = Server::start(&[]);
    let mut cmd = Command::new("/usr/bin/memccapable");
    cmd.args([mode, "-h", "127.0.0.1", "-p", &s.port().to_string()]);
    let (st, out, err) = run_with_timeout(cmd, Duration::from_secs(120));
    let passes = out
        .lines()
        .filter(|l| l.trim_end().ends_with("[pass]"))
        .count();
    let failures: Vec<&str> = out.lines().filter(|l| l.contains("[FAIL]")).collect();
    assert!(
        failures.is_empty() && !err.contains("[FAIL]"),
        "memccapable {mode} failures: {failures:#?}\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert_eq!(
        passes, 27,
        "expected 27 checks to pass\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(
        out.contains("All tests passed"),
        "stdout:\n{out}\nstderr:\n{err}"
    );
    assert!(st.success(), "memccapable exit status {st:?}");
}

#[test]
fn memccapable_ascii() {
    memccapable("-a");
}

#[test]
fn memccapable_binary() {
    memccapable("-b");
}

#[test]
fn pymemcache_client_and_hashclient() {
    // The first python3 that can import pymemcache: $PYTHON, then PATH, then the system one.
    let candidates: Vec<String> = std::env::var("PYTHON")
        .ok()
        .into_iter()
        .chain(["python3".to_string(), "/usr/bin/python3".to_string()])
        .collect();
    let py = candidates
        .iter()
        .find(|p| {
            Command::new(p)
                .args(["-c", "import pymemcache"])
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false)
        })
        .unwrap_or_else(|| {
            panic!(
                "no python3 with pymemcache among {candidates:?} (pip install pymemcache, or \
                 apt-get install -y python3-pymemcache); {RUN_ALL_HINT}"
            )
        })
        .clone();
    let a = Server::start(&[]);
    let b = Server::start(&[]);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop/pymemcache_check.py");
    let mut cmd = Command::new(&py);
    cmd.arg(script)
        .arg(a.addr().to_string())
        .arg(b.addr().to_string());
    let (st, out, err) = run_with_timeout(cmd, Duration::from_secs(120));
    assert!(
        st.success(),
        "pymemcache checks failed ({st:?})\nstdout:\n{out}\nstderr:\n{err}"
    );
    assert!(out.contains("pymemcache checks passed"), "stdout:\n{out}");
}

/// Runs one libmemcached tool against `s` and returns (success, stdout + stderr).
fn tool(s: &Server, name: &str, args: &[&str]) -> (bool, String) {
    let path = format!("/usr/bin/{name}");
    require_tool(&path, "libmemcached-tools");
    let mut cmd = Command::new(path);
    cmd.arg(format!("--servers=127.0.0.1:{}", s.port()))
        .args(args);
    let (st, out, err) = run_with_timeout(cmd, Duration::from_secs(30));
    (st.success(), format!("{out}{err}"))
}

#[test]
fn libmemcached_operator_tools() {
    let s = Server::start(&[]);
    let dir = std::env::temp_dir().join(format!("ferrocache-interop-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("greeting.txt");
    std::fs::write(&file, b"hello from a file\n").unwrap();

    let (ok, out) = tool(&s, "memcping", &[]);
    assert!(ok, "memcping: {out}");
    let (ok, out) = tool(&s, "memccp", &[file.to_str().unwrap()]);
    assert!(ok, "memccp: {out}");
    let (ok, out) = tool(&s, "memccat", &["greeting.txt"]);
    assert!(ok, "memccat: {out}");
    assert!(
        out.starts_with("hello from a file\n"),
        "memccat printed {out:?}"
    );
    let (ok, out) = tool(&s, "memcexist", &["greeting.txt"]);
    assert!(ok, "memcexist: {out}");
    let (ok, out) = tool(&s, "memctouch", &["--expire=100", "greeting.txt"]);
    assert!(ok, "memctouch: {out}");
    let (ok, out) = tool(&s, "memcstat", &[]);
    assert!(ok, "memcstat: {out}");
    for field in ["pid:", "uptime:", "version:", "curr_items:"] {
        assert!(out.contains(field), "memcstat output lacks {field}:\n{out}");
    }
    // memcdump walks `stats cachedump`, which may list a fresh item only after a moment.
    let mut last = String::new();
    let listed = wait_until(Duration::from_secs(5), || {
        let (ok, out) = tool(&s, "memcdump", &[]);
        last = out;
        ok && last.lines().any(|l| l.trim() == "greeting.txt")
    });
    assert!(listed, "memcdump did not list the key:\n{last}");
    let (ok, out) = tool(&s, "memcrm", &["greeting.txt"]);
    assert!(ok, "memcrm: {out}");
    let (ok, _) = tool(&s, "memccat", &["greeting.txt"]);
    assert!(!ok, "memccat found a removed key");
    let mut c = s.conn();
    c.set("k", b"v");
    let (ok, out) = tool(&s, "memcflush", &[]);
    assert!(ok, "memcflush: {out}");
    c.roundtrip(b"get k\r\n", b"END\r\n");
    let _ = std::fs::remove_dir_all(&dir);
}
