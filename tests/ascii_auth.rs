//! Text-protocol authentication: memcached's `-Y authfile` (a fake `set`
//! whose data is `user password`), and our extension that lets text
//! connections authenticate the same way against the SASL user database
//! when `-S` is on.

mod common;
use common::*;
use std::path::PathBuf;
use std::process::Command;

struct File {
    dir: PathBuf,
}

impl File {
    fn new(text: &str) -> File {
        let dir = std::env::temp_dir().join(format!(
            "ferrocache-ascii-auth-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("auth"), text).unwrap();
        File { dir }
    }
    fn path(&self) -> String {
        self.dir.join("auth").to_string_lossy().into_owned()
    }
}

impl Drop for File {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn check_text_auth(s: &Server) {
    // Anything but the auth set: refused, connection closed.
    for cmd in [
        &b"get k\r\n"[..],
        b"version\r\n",
        b"stats\r\n",
        b"mg k v\r\n",
        b"add k 0 0 1\r\nx\r\n",
    ] {
        let mut c = s.conn();
        c.send(cmd);
        c.expect(b"CLIENT_ERROR unauthenticated\r\n");
        c.expect_closed();
    }
    let mut c = s.conn();
    c.roundtrip(
        b"set a 0 0 11\r\nalice wrong\r\n",
        b"CLIENT_ERROR authentication failure\r\n",
    );
    c.roundtrip(
        b"set a 0 0 5\r\nalice\r\n",
        b"CLIENT_ERROR bad authentication token format\r\n",
    );
    c.roundtrip(b"set a 0 0 12\r\nalice s3cret\r\n", b"STORED\r\n");
    // The auth set stored nothing; the connection now works normally.
    c.roundtrip(b"get a\r\n", b"END\r\n");
    c.roundtrip(b"set k 0 0 1\r\nv\r\n", b"STORED\r\n");
    c.roundtrip(b"get k\r\n", b"VALUE k 0 1\r\nv\r\nEND\r\n");
    let st = c.stats("");
    assert_eq!(st["auth_cmds"], "3");
    assert_eq!(st["auth_errors"], "2");
}

#[test]
fn dash_y_authfile() {
    let f = File::new("bob:pw\nalice:s3cret\n");
    let s = Server::start(&["-Y", &f.path()]);
    check_text_auth(&s);
    let mut c = s.conn();
    c.roundtrip(b"set a 0 0 12\r\nalice s3cret\r\n", b"STORED\r\n");
    assert_eq!(c.stats("settings")["auth_enabled_ascii"], "yes");
    // Binary connections cannot authenticate with -Y alone: refused.
    let mut b = s.conn();
    let mut noop = vec![0x80, 0x0a];
    noop.extend_from_slice(&[0; 22]);
    b.send(&noop);
    let h = b.read_exact_n(24);
    assert_eq!((h[0], h[6], h[7]), (0x81, 0x00, 0x20));
    b.read_exact_n(u32::from_be_bytes(h[8..12].try_into().unwrap()) as usize);
    b.expect_closed();
}

#[test]
fn text_auth_against_the_sasl_database() {
    let f = File::new("alice:s3cret\n");
    let s = Server::start(&["-S", "--sasl-db", &f.path()]);
    check_text_auth(&s);
}

#[test]
fn noreply_auth_set_is_silent() {
    let f = File::new("alice:s3cret\n");
    let s = Server::start(&["-Y", &f.path()]);
    let mut c = s.conn();
    c.send(b"set a 0 0 12 noreply\r\nalice s3cret\r\n");
    c.roundtrip(b"version\r\n", b"VERSION ");
}

#[test]
fn authfile_limits() {
    let many: String = (0..9).map(|i| format!("u{i}:p{i}\n")).collect();
    let f = File::new(&many);
    let out = Command::new(ferrocache_bin())
        .args(["-p", "0", "-l", "127.0.0.1", "-Y", &f.path()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("at most 8"));
    let out = Command::new(ferrocache_bin())
        .args(["-p", "0", "-l", "127.0.0.1", "-Y", "/nonexistent/authfile"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}
