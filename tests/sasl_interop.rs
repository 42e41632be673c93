//! Real SASL clients against ferrocache `-S`: python-binary-memcached,
//! PHP session storage with php-memcached (libmemcached + Cyrus SASL), and
//! memjs. Their installs: `tests/interop/auth-deps.sh`.

mod common;
use common::*;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const DEPS_HINT: &str = "run `sh tests/interop/auth-deps.sh` (as root) to install it";

fn interop(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/interop")
        .join(file)
}

fn users() -> (PathBuf, String) {
    let dir = std::env::temp_dir().join(format!(
        "ferrocache-sasl-interop-{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("users");
    std::fs::write(&path, "alice:s3cret\n").unwrap();
    let p = path.to_string_lossy().into_owned();
    (dir, p)
}

fn run(cmd: Command) -> (bool, String) {
    let (st, out, err) = run_with_timeout(cmd, Duration::from_secs(30));
    (st.success(), format!("{out}{err}"))
}

fn require(check: &mut Command, what: &str) {
    let ok = check.output().map(|o| o.status.success()).unwrap_or(false);
    assert!(ok, "{what} is not installed; {DEPS_HINT}");
}

#[test]
fn python_binary_memcached_right_and_wrong_password() {
    require(
        Command::new("python3").args(["-c", "import bmemcached"]),
        "python-binary-memcached (pip)",
    );
    let (dir, db) = users();
    let s = Server::start(&["-S", "--sasl-db", &db]);
    let port = s.port().to_string();
    for (pw, expect) in [("s3cret", "ok"), ("wrong", "fail")] {
        let mut cmd = Command::new("python3");
        cmd.arg(interop("bmemcached_sasl.py"))
            .args([&port, "alice", pw, expect]);
        let (ok, out) = run(cmd);
        assert!(ok && out.contains("PASS"), "bmemcached {expect}:\n{out}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn pylibmc_binary_mode_right_and_wrong_password() {
    require(
        Command::new("/usr/bin/python3").args(["-c", "import pylibmc"]),
        "pylibmc (apt python3-pylibmc)",
    );
    let (dir, db) = users();
    let s = Server::start(&["-S", "--sasl-db", &db]);
    let port = s.port().to_string();
    for (pw, expect) in [("s3cret", "ok"), ("wrong", "fail")] {
        let mut cmd = Command::new("/usr/bin/python3");
        cmd.arg(interop("pylibmc_sasl.py"))
            .args([&port, "alice", pw, expect]);
        let (ok, out) = run(cmd);
        assert!(ok && out.contains("PASS"), "pylibmc {expect}:\n{out}");
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn php_request(port: &str, password: &str, session: &str) -> (bool, String) {
    let mut cmd = Command::new("php");
    cmd.args([
        "-d",
        "session.save_handler=memcached",
        "-d",
        &format!("session.save_path=127.0.0.1:{port}"),
        "-d",
        "memcached.sess_binary_protocol=1",
        "-d",
        "memcached.sess_sasl_username=alice",
        "-d",
        &format!("memcached.sess_sasl_password={password}"),
    ]);
    cmd.arg(interop("php_session.php")).arg(session);
    run(cmd)
}

#[test]
fn php_sessions_over_sasl() {
    require(
        Command::new("php").args(["-r", "exit(extension_loaded('memcached') ? 0 : 1);"]),
        "php-cli with php-memcached (apt php-cli php-memcached libsasl2-modules)",
    );
    let (dir, db) = users();
    let s = Server::start(&["-S", "--sasl-db", &db]);
    let port = s.port().to_string();
    let session = "f0e1d2c3b4a5968778695a4b3c2d1e0f";
    for n in 1..=3 {
        let (ok, out) = php_request(&port, "s3cret", session);
        assert!(ok, "request {n}:\n{out}");
        assert!(out.contains(&format!("counter={n}")), "request {n}:\n{out}");
    }
    let (ok, out) = php_request(&port, "wrong", session);
    assert!(!ok, "wrong password accepted:\n{out}");
    assert!(out.contains("AUTHENTICATION FAILURE"), "{out}");
    // Nothing was read or written with the wrong password: the counter
    // carries on from 3.
    let (ok, out) = php_request(&port, "s3cret", session);
    assert!(ok && out.contains("counter=4"), "{out}");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn memjs_right_and_wrong_password() {
    require(
        Command::new("node").arg("--version"),
        "node (apt nodejs npm)",
    );
    let memjs =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("target/interop/node/node_modules/memjs");
    assert!(
        memjs.join("package.json").exists(),
        "memjs (npm) is not installed in {}; {DEPS_HINT}",
        memjs.display()
    );
    let (dir, db) = users();
    let s = Server::start(&["-S", "--sasl-db", &db]);
    let port = s.port().to_string();
    for (pw, expect) in [("s3cret", "ok"), ("wrong", "fail")] {
        let mut cmd = Command::new("node");
        cmd.env("MEMJS_DIR", &memjs)
            .arg(interop("memjs_sasl.js"))
            .args([&port, "alice", pw, expect]);
        let (ok, out) = run(cmd);
        assert!(ok && out.contains("PASS"), "memjs {expect}:\n{out}");
    }
    let _ = std::fs::remove_dir_all(dir);
}
