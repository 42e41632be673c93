//! Helpers for the cluster tests: nodes on loopback addresses with free
//! ports, a non-panicking `config get cluster` poll, and a checker for the
//! version rules every poll must satisfy.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::common::Server;

/// A free port on `ip` (bound, then released): a node must know its own
/// port before it starts, because its peers list it.
pub fn free_port_on(ip: &str) -> u16 {
    let l = TcpListener::bind((ip, 0)).unwrap_or_else(|e| panic!("bind {ip}:0: {e}"));
    l.local_addr().unwrap().port()
}

/// A scratch directory removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .subsec_nanos();
        let p =
            std::env::temp_dir().join(format!("ferrocache-{tag}-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Replaces a file atomically, as an operator's editor or tooling should.
pub fn write_atomic(path: &Path, text: &str) {
    let tmp = path.with_extension("new");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// One node: its address, the flags it runs with, and the process.
pub struct Node {
    /// The hostname the node lists itself under (`--cluster-host`).
    pub host: String,
    pub ip: String,
    pub port: u16,
    pub args: Vec<String>,
    pub srv: Option<Server>,
}

impl Node {
    /// A node on `ip` with a free port, not started yet; it lists itself
    /// as `localhost` unless `extra` has a `--cluster-host`.
    pub fn new(ip: &str, extra: &[&str]) -> Node {
        let port = free_port_on(ip);
        let host = extra
            .iter()
            .position(|a| *a == "--cluster-host")
            .and_then(|i| extra.get(i + 1))
            .copied()
            .unwrap_or("localhost");
        let mut args: Vec<String> = [
            "-p",
            &port.to_string(),
            "-l",
            ip,
            "-t",
            "1",
            "-m",
            "16",
            "-v",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        if !extra.contains(&"--cluster-host") {
            args.extend(["--cluster-host".to_string(), host.to_string()]);
        }
        args.extend(extra.iter().map(|s| s.to_string()));
        Node {
            host: host.to_string(),
            ip: ip.to_string(),
            port,
            args,
            srv: None,
        }
    }

    /// `host|ip|port` as the node lists itself.
    pub fn entry(&self) -> String {
        format!("{}|{}|{}", self.host, self.ip, self.port)
    }

    /// `HOST:PORT` for `--join`.
    pub fn hostport(&self) -> String {
        format!("{}:{}", self.ip, self.port)
    }

    pub fn addr(&self) -> SocketAddr {
        format!("{}:{}", self.ip, self.port).parse().unwrap()
    }

    /// Starts (or restarts) the process and waits until it serves.
    pub fn start(&mut self) -> &mut Node {
        let args: Vec<&str> = self.args.iter().map(|s| s.as_str()).collect();
        self.srv = Some(Server::start_ferrocache(&args, 1));
        self
    }

    /// `kill -9`.
    pub fn kill(&mut self) {
        if let Some(mut s) = self.srv.take() {
            s.signal(libc::SIGKILL);
            s.wait_exit(Duration::from_secs(5));
        }
    }

    /// SIGTERM and wait for a clean exit.
    pub fn stop(&mut self) {
        if let Some(mut s) = self.srv.take() {
            s.signal(libc::SIGTERM);
            let st = s.wait_exit(Duration::from_secs(10));
            assert!(st.is_some_and(|s| s.success()), "node did not stop cleanly");
        }
    }

    pub fn stderr(&self) -> String {
        self.srv.as_ref().map(|s| s.stderr()).unwrap_or_default()
    }

    /// Sends `req` and reads until `done` says the reply is complete.
    pub fn ask(&self, req: &[u8]) -> Vec<u8> {
        ask(self.addr(), req).unwrap_or_else(|| panic!("{} did not answer", self.addr()))
    }

    /// The node's `(version, node list)`, or `None` if it does not answer.
    pub fn config(&self) -> Option<(u64, String)> {
        let raw = ask(self.addr(), b"config get cluster\r\n")?;
        Some(parse_config(&raw))
    }
}

/// One request, one reply, on a fresh connection; `None` on any failure.
pub fn ask(addr: SocketAddr, req: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect_timeout(&addr, Duration::from_millis(500)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    s.write_all(req).ok()?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    while !reply_complete(&buf) {
        let n = s.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(buf)
}

fn reply_complete(b: &[u8]) -> bool {
    if !b.ends_with(b"\r\n") {
        return false;
    }
    let first_line_end = b.windows(2).position(|w| w == b"\r\n").unwrap();
    let first = &b[..first_line_end];
    if first.starts_with(b"CONFIG ") || first.starts_with(b"VALUE ") || first.starts_with(b"STAT ")
    {
        return b.ends_with(b"END\r\n");
    }
    true
}

/// Parses a `CONFIG cluster` reply, checking its framing to the byte.
pub fn parse_config(raw: &[u8]) -> (u64, String) {
    let text = String::from_utf8(raw.to_vec()).expect("reply is UTF-8");
    let (header, rest) = text.split_once("\r\n").expect("header line");
    let len: usize = header
        .strip_prefix("CONFIG cluster 0 ")
        .unwrap_or_else(|| panic!("bad header in {text:?}"))
        .parse()
        .expect("length");
    assert_eq!(
        rest.len(),
        len + "\r\nEND\r\n".len(),
        "length mismatch in {text:?}"
    );
    assert!(rest.ends_with("\n\r\nEND\r\n"), "framing of {text:?}");
    let payload = &rest[..len];
    let (version, nodes) = payload.split_once('\n').expect("version line");
    let nodes = nodes.strip_suffix('\n').expect("trailing newline");
    assert!(!nodes.is_empty() && !nodes.contains("  "), "{text:?}");
    (version.parse().expect("numeric version"), nodes.to_string())
}

/// The exact `config get cluster` reply for a version and node list.
pub fn config_reply(version: u64, nodes: &str) -> Vec<u8> {
    let payload = format!("{version}\n{nodes}\n");
    format!("CONFIG cluster 0 {}\r\n{payload}\r\nEND\r\n", payload.len()).into_bytes()
}

/// Sorted, space-separated entries, as the payload lists them.
pub fn list(entries: &[String]) -> String {
    let mut v = entries.to_vec();
    v.sort();
    v.join(" ")
}

/// `config set cluster` request with a correct length.
pub fn config_set(version: u64, nodes: &str) -> Vec<u8> {
    let payload = format!("{version}\n{nodes}\n");
    format!("config set cluster 0 {}\r\n{payload}\r\n", payload.len()).into_bytes()
}

/// Checks what clients may rely on across every poll of a test: per node
/// the version never goes down, and one version always names one list.
#[derive(Default)]
pub struct Watch {
    last: HashMap<SocketAddr, u64>,
    lists: HashMap<u64, String>,
}

impl Watch {
    #[track_caller]
    pub fn observe(&mut self, node: &Node) -> Option<(u64, String)> {
        let (v, l) = node.config()?;
        let last = self.last.entry(node.addr()).or_insert(0);
        assert!(
            v >= *last,
            "{}: version went from {} to {v}",
            node.addr(),
            *last
        );
        *last = v;
        let known = self.lists.entry(v).or_insert_with(|| l.clone());
        assert_eq!(known, &l, "version {v} named two lists");
        Some((v, l))
    }

    /// Polls every live node until all report `want` (or any list when
    /// `None`) with one version; returns that version.
    #[track_caller]
    pub fn converge(&mut self, nodes: &[&Node], want: Option<&str>, within: Duration) -> u64 {
        let deadline = Instant::now() + within;
        loop {
            let seen: Vec<Option<(u64, String)>> = nodes.iter().map(|n| self.observe(n)).collect();
            let first = seen[0].clone();
            let agree = first.is_some()
                && seen.iter().all(|s| *s == first)
                && match want {
                    None => true,
                    Some(w) => first.as_ref().is_some_and(|(_, l)| l == w),
                };
            if agree {
                return first.unwrap().0;
            }
            if Instant::now() > deadline {
                panic!("no convergence within {within:?} on {want:?}: {seen:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}
