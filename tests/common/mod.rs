//! Shared harness for the black-box tests.
//!
//! `Server` starts a fresh server process per test and kills it on drop. By default it is the
//! ferrocache binary built by cargo (`-p 0 -l 127.0.0.1`, the port is read from the
//! `ferrocache listening on <ip>:<port>` line on stderr). With
//! `FERROCACHE_TEST_TARGET=memcached` it starts `/usr/bin/memcached` with the same
//! memcached-compatible flags instead, which is how every expectation in this suite is checked
//! against the reference server.
//!
//! Dropping a `Server` also checks its stderr: a ferrocache that logged an internal panic (say
//! in one worker thread, which leaves the process running) fails the test.
//!
//! `Conn` is a blocking TCP connection with a read timeout and byte-exact assertions.

#![allow(dead_code)]

pub mod frames;
pub mod pki;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// Where the reference server lives.
pub const MEMCACHED: &str = "/usr/bin/memcached";

/// The one command that installs what the suite needs and runs it.
pub const RUN_ALL_HINT: &str = "run `tests/run-all` from the repository root (it installs memcached, libmemcached-tools and pymemcache)";

/// How long to wait for a server to come up.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Default read timeout of a `Conn`.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target {
    Ferrocache,
    Memcached,
}

/// The server under test, chosen by `FERROCACHE_TEST_TARGET`.
pub fn target() -> Target {
    match std::env::var("FERROCACHE_TEST_TARGET").as_deref() {
        Ok("memcached") => Target::Memcached,
        Ok("") | Ok("ferrocache") | Err(_) => Target::Ferrocache,
        Ok(other) => {
            panic!("FERROCACHE_TEST_TARGET must be `ferrocache` or `memcached`, not {other:?}")
        }
    }
}

pub fn is_memcached() -> bool {
    target() == Target::Memcached
}

/// Returns early from a test that only makes sense against ferrocache.
#[macro_export]
macro_rules! ferrocache_only {
    () => {
        if $crate::common::is_memcached() {
            eprintln!("skipped: ferrocache-only test");
            return;
        }
    };
}

/// Path of the ferrocache binary under test.
pub fn ferrocache_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ferrocache"))
}

/// Path of the binary for the current target.
pub fn target_bin() -> PathBuf {
    match target() {
        Target::Ferrocache => ferrocache_bin(),
        Target::Memcached => require_memcached(),
    }
}

/// The memcached binary, or a failure that says how to get it.
pub fn require_memcached() -> PathBuf {
    let p = PathBuf::from(MEMCACHED);
    assert!(p.exists(), "{MEMCACHED} is not installed: {RUN_ALL_HINT}");
    p
}

/// Escapes bytes for failure messages: printable ASCII as is, everything else as `\r`, `\n`, `\xNN`.
pub fn esc(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len());
    for &c in b {
        match c {
            b'\r' => s.push_str("\\r"),
            b'\n' => s.push_str("\\n"),
            b'\t' => s.push_str("\\t"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => s.push_str(&format!("\\x{c:02x}")),
        }
    }
    s
}

/// Shortens long escaped strings for messages.
pub fn esc_short(b: &[u8]) -> String {
    if b.len() <= 600 {
        esc(b)
    } else {
        format!(
            "{} …({} bytes)… {}",
            esc(&b[..300]),
            b.len() - 600,
            esc(&b[b.len() - 300..])
        )
    }
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().unwrap().port()
}

/// One item of a retrieval reply: (key, flags, data, cas).
pub type GetItem = (Vec<u8>, u32, Vec<u8>, Option<u64>);

pub struct Server {
    child: Option<Child>,
    pub kind: Target,
    addrs: Vec<SocketAddr>,
    stderr: Arc<Mutex<Vec<String>>>,
    exit_expected: bool,
}

impl Server {
    /// Starts the target server with extra memcached-compatible flags.
    pub fn start(args: &[&str]) -> Server {
        Server::start_kind(target(), args)
    }

    /// Starts a specific server regardless of `FERROCACHE_TEST_TARGET`.
    pub fn start_kind(kind: Target, args: &[&str]) -> Server {
        match kind {
            Target::Ferrocache => Server::start_ferrocache(args, 1),
            Target::Memcached => Server::start_memcached(args),
        }
    }

    /// Starts ferrocache on ephemeral ports and waits for `listeners` listening lines.
    /// `args` may carry its own `-l`; `-p 0 -l 127.0.0.1` is only added when absent.
    pub fn start_ferrocache(args: &[&str], listeners: usize) -> Server {
        let mut cmd = Command::new(ferrocache_bin());
        if !args.contains(&"-p") {
            cmd.args(["-p", "0"]);
        }
        if !args.contains(&"-l") {
            cmd.args(["-l", "127.0.0.1"]);
        }
        cmd.args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn ferrocache");
        let (stderr, rx) = drain_stderr(&mut child);
        let deadline = Instant::now() + START_TIMEOUT;
        let mut addrs = Vec::new();
        while addrs.len() < listeners {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) => {
                    if let Some(rest) = line.strip_prefix("ferrocache listening on ") {
                        let addr: SocketAddr = rest
                            .trim()
                            .parse()
                            .unwrap_or_else(|e| panic!("bad listening line {line:?}: {e}"));
                        addrs.push(addr);
                    }
                }
                Err(_) => {
                    let status = child.try_wait().ok().flatten();
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!(
                        "ferrocache {args:?} did not print `ferrocache listening on <ip>:<port>` \
                         within {START_TIMEOUT:?} (exit status: {status:?}); stderr:\n{}",
                        stderr.lock().unwrap().join("\n")
                    );
                }
            }
        }
        Server {
            child: Some(child),
            kind: Target::Ferrocache,
            addrs,
            stderr,
            exit_expected: false,
        }
    }

    /// Starts memcached on a free port and waits until it accepts connections.
    pub fn start_memcached(args: &[&str]) -> Server {
        let bin = require_memcached();
        // A port picked by bind-and-release can be taken by another process before memcached
        // binds it (the suite opens many client sockets); then start over on a new port.
        let mut last_err = String::new();
        for _attempt in 0..5 {
            let port = free_port();
            let mut cmd = Command::new(&bin);
            cmd.args(["-u", "root"]);
            if !args.contains(&"-l") {
                cmd.args(["-l", "127.0.0.1"]);
            }
            cmd.args(["-p", &port.to_string()]);
            cmd.args(args)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped());
            let mut child = cmd.spawn().expect("spawn memcached");
            let (stderr, _rx) = drain_stderr(&mut child);
            let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
            let deadline = Instant::now() + Duration::from_secs(5);
            let mut backoff = Duration::from_millis(2);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    // Give the stderr reader a moment to collect the reason.
                    thread::sleep(Duration::from_millis(50));
                    last_err = format!(
                        "exited with {status}: {}",
                        stderr.lock().unwrap().join("\n")
                    );
                    if !last_err.contains("Address already in use") {
                        panic!("memcached {args:?} {last_err}");
                    }
                    break; // port trouble: next attempt
                }
                if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
                    // Something answers on the port, but it may be another process that took
                    // the port first: only accept our own child, identified by its pid.
                    match stats_pid(s) {
                        Some(pid) if pid == child.id() => {}
                        Some(_) => {
                            last_err = format!("port {port} is answered by another process");
                            let _ = child.kill();
                            let _ = child.wait();
                            break;
                        }
                        None => {
                            // No text `stats` (e.g. `-B binary`): a memcached that lost the
                            // port exits at once, so one that is still running owns it.
                            thread::sleep(Duration::from_millis(300));
                            if !matches!(child.try_wait(), Ok(None)) {
                                continue;
                            }
                        }
                    }
                    return Server {
                        child: Some(child),
                        kind: Target::Memcached,
                        addrs: vec![addr],
                        stderr,
                        exit_expected: false,
                    };
                }
                if Instant::now() > deadline {
                    last_err = format!("did not accept on {addr} within 5 s");
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                thread::sleep(backoff);
                backoff = (backoff * 2).min(Duration::from_millis(100));
            }
        }
        panic!("memcached {args:?} could not be started: {last_err}");
    }

    pub fn addr(&self) -> SocketAddr {
        self.addrs[0]
    }

    pub fn addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    pub fn port(&self) -> u16 {
        self.addr().port()
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server already reaped").id()
    }

    /// Opens a new connection with the default read timeout.
    pub fn conn(&self) -> Conn {
        Conn::connect(self.addr())
    }

    /// Everything the server printed on stderr so far.
    pub fn stderr(&self) -> String {
        let lines = self.stderr.lock().unwrap();
        let shown: Vec<&str> = lines
            .iter()
            .map(String::as_str)
            .filter(|l| *l != STDERR_EOF)
            .collect();
        shown.join("\n")
    }

    /// Sends a signal (e.g. `libc::SIGTERM`) to the server process.
    pub fn signal(&self, sig: i32) {
        let rc = unsafe { libc::kill(self.pid() as i32, sig) };
        assert_eq!(rc, 0, "kill({}, {sig}) failed", self.pid());
    }

    /// Waits up to `timeout` for the server to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.exit_expected = true;
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("server already reaped");
        loop {
            if let Some(st) = child.try_wait().expect("try_wait") {
                return Some(st);
            }
            if Instant::now() > deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.as_mut().map(|c| c.try_wait()), Some(Ok(None)))
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let Some(mut c) = self.child.take() else {
            return;
        };
        // A server that died on its own (crash, panic, abort) explains a failing test.
        let died = match c.try_wait() {
            Ok(Some(status)) if !self.exit_expected => Some(status),
            _ => None,
        };
        let _ = c.kill();
        let _ = c.wait();
        // Let the stderr reader reach the end of the stream (bounded).
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline
            && self.stderr.lock().unwrap().last().map(String::as_str) != Some(STDERR_EOF)
        {
            thread::sleep(Duration::from_millis(5));
        }
        let err = self.stderr();
        if let Some(status) = died {
            eprintln!(
                "{:?} server exited by itself with {status}; stderr:\n{err}",
                self.kind
            );
        }
        // A panic inside the server (for example in one worker thread, which leaves the
        // process running) fails the test even if every reply it checked was right.
        if self.kind == Target::Ferrocache && err.contains("panicked at") {
            let excerpt: String = err.lines().take(40).collect::<Vec<_>>().join("\n");
            if thread::panicking() {
                eprintln!("the server panicked internally; stderr:\n{excerpt}");
            } else {
                panic!("the server panicked internally; stderr:\n{excerpt}");
            }
        }
    }
}

/// Asks a freshly connected server for `stats` and returns its pid.
fn stats_pid(mut s: TcpStream) -> Option<u32> {
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    s.write_all(b"stats\r\n").ok()?;
    let mut r = BufReader::new(s);
    let mut line = String::new();
    loop {
        line.clear();
        if r.read_line(&mut line).ok()? == 0 || line.starts_with("END") {
            return None;
        }
        if let Some(pid) = line.strip_prefix("STAT pid ") {
            return pid.trim().parse().ok();
        }
    }
}

/// Collects the child's stderr lines in the background; returns the collected lines and a
/// channel that sees each line as it arrives.
fn drain_stderr(child: &mut Child) -> (Arc<Mutex<Vec<String>>>, mpsc::Receiver<String>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    let pipe = child.stderr.take().expect("stderr piped");
    let l2 = lines.clone();
    thread::spawn(move || {
        // Marks the end of the stream once the loop below returns.
        let _eof = EofMark(l2.clone());
        let mut r = BufReader::new(pipe);
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match r.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    let line = String::from_utf8_lossy(&buf)
                        .trim_end_matches(['\r', '\n'])
                        .to_string();
                    l2.lock().unwrap().push(line.clone());
                    let _ = tx.send(line);
                }
            }
        }
    });
    (lines, rx)
}

/// The last line pushed by the stderr reader, so `Server::drop` knows it has seen everything.
const STDERR_EOF: &str = "\u{0}<end of stderr>";

struct EofMark(Arc<Mutex<Vec<String>>>);

impl Drop for EofMark {
    fn drop(&mut self) {
        self.0.lock().unwrap().push(STDERR_EOF.to_string());
    }
}

/// Runs a binary to completion with a timeout; returns (status, stdout, stderr).
pub fn run_with_timeout(mut cmd: Command, timeout: Duration) -> (ExitStatus, String, String) {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    let mut out = child.stdout.take().unwrap();
    let mut err = child.stderr.take().unwrap();
    let to = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = out.read_to_end(&mut s);
        s
    });
    let te = thread::spawn(move || {
        let mut s = Vec::new();
        let _ = err.read_to_end(&mut s);
        s
    });
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{cmd:?} did not finish within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(10));
    };
    let o = String::from_utf8_lossy(&to.join().unwrap()).into_owned();
    let e = String::from_utf8_lossy(&te.join().unwrap()).into_owned();
    (status, o, e)
}

/// A blocking text-protocol connection with byte-exact assertions. Reads go through an internal
/// buffer so line-oriented helpers and exact-length helpers can be mixed freely.
pub struct Conn {
    pub stream: TcpStream,
    timeout: Duration,
    rbuf: Vec<u8>,
}

enum Fill {
    Data,
    Eof,
    Timeout,
    Error(std::io::Error),
}

impl Conn {
    pub fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Conn {
            stream,
            timeout: READ_TIMEOUT,
            rbuf: Vec::new(),
        }
    }

    /// Bytes the kernel has received for this connection that nobody has
    /// read yet (FIONREAD).
    pub fn unread_bytes(&self) -> usize {
        use std::os::fd::AsRawFd;
        let mut n: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int through the pointer we pass.
        let rc = unsafe { libc::ioctl(self.stream.as_raw_fd(), libc::FIONREAD, &mut n) };
        assert_eq!(rc, 0, "FIONREAD failed");
        n as usize + self.rbuf.len()
    }

    /// Connects with a small receive buffer, so the server can only ever write a little at a
    /// time to this client (its send window is bounded by our buffer).
    pub fn connect_small_rcvbuf(addr: SocketAddr, bytes: usize) -> Conn {
        let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None)
            .expect("socket");
        sock.set_recv_buffer_size(bytes).expect("SO_RCVBUF");
        sock.connect_timeout(&addr.into(), Duration::from_secs(5))
            .unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        let stream: TcpStream = sock.into();
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(30)))
            .unwrap();
        Conn {
            stream,
            timeout: READ_TIMEOUT,
            rbuf: Vec::new(),
        }
    }

    pub fn set_timeout(&mut self, t: Duration) {
        self.timeout = t;
        self.stream.set_read_timeout(Some(t)).unwrap();
    }

    fn fill(&mut self) -> Fill {
        let mut buf = [0u8; 65536];
        loop {
            return match self.stream.read(&mut buf) {
                Ok(0) => Fill::Eof,
                Ok(n) => {
                    self.rbuf.extend_from_slice(&buf[..n]);
                    Fill::Data
                }
                // A socket read with a timeout fails with EINTR after the
                // test process was stopped and continued (signal(7)).
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) if is_timeout(&e) => Fill::Timeout,
                Err(e) => Fill::Error(e),
            };
        }
    }

    pub fn send(&mut self, b: &[u8]) {
        self.stream
            .write_all(b)
            .unwrap_or_else(|e| panic!("write {}: {e}", esc_short(b)));
    }

    /// Writes, tolerating a peer that has already closed (returns false then).
    pub fn try_send(&mut self, b: &[u8]) -> bool {
        self.stream.write_all(b).is_ok()
    }

    /// Reads exactly `want.len()` bytes and asserts they equal `want`.
    #[track_caller]
    pub fn expect(&mut self, want: &[u8]) {
        loop {
            let n = self.rbuf.len().min(want.len());
            if self.rbuf[..n] != want[..n] {
                let mut shown = std::mem::take(&mut self.rbuf);
                shown.extend(self.read_quiet(Duration::from_millis(100)));
                panic!(
                    "reply mismatch\n  expected: {}\n  got:      {}",
                    esc_short(want),
                    esc_short(&shown)
                );
            }
            if n == want.len() {
                self.rbuf.drain(..n);
                return;
            }
            match self.fill() {
                Fill::Data => {}
                Fill::Eof => panic!(
                    "connection closed\n  expected: {}\n  got:      {}",
                    esc_short(want),
                    esc_short(&self.rbuf)
                ),
                Fill::Timeout => panic!(
                    "timed out after {:?}\n  expected: {}\n  got:      {}",
                    self.timeout,
                    esc_short(want),
                    esc_short(&self.rbuf)
                ),
                Fill::Error(e) => panic!(
                    "read error {e}\n  expected: {}\n  got:      {}",
                    esc_short(want),
                    esc_short(&self.rbuf)
                ),
            }
        }
    }

    #[track_caller]
    pub fn roundtrip(&mut self, send: &[u8], want: &[u8]) {
        self.send(send);
        self.expect(want);
    }

    /// Asserts the server closes the connection (EOF or reset) without sending anything more.
    #[track_caller]
    pub fn expect_closed(&mut self) {
        if !self.rbuf.is_empty() {
            panic!(
                "expected the connection to close, got bytes: {}",
                esc_short(&self.rbuf)
            );
        }
        match self.fill() {
            Fill::Eof => {}
            Fill::Data => {
                let mut got = std::mem::take(&mut self.rbuf);
                got.extend(self.read_quiet(Duration::from_millis(100)));
                panic!(
                    "expected the connection to close, got bytes: {}",
                    esc_short(&got)
                );
            }
            Fill::Timeout => panic!(
                "expected the connection to close, still open after {:?}",
                self.timeout
            ),
            Fill::Error(e)
                if matches!(
                    e.kind(),
                    ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                ) => {}
            Fill::Error(e) => panic!("expected the connection to close, got error {e}"),
        }
    }

    /// Asserts nothing arrives within `quiet` (the connection stays open and silent).
    #[track_caller]
    pub fn expect_silence(&mut self, quiet: Duration) {
        let got = self.read_quiet(quiet);
        assert!(
            got.is_empty(),
            "expected no reply, got: {}",
            esc_short(&got)
        );
    }

    /// Returns buffered bytes plus whatever arrives until nothing more comes for `quiet` (or EOF).
    pub fn read_quiet(&mut self, quiet: Duration) -> Vec<u8> {
        self.stream.set_read_timeout(Some(quiet)).unwrap();
        while let Fill::Data = self.fill() {}
        self.stream.set_read_timeout(Some(self.timeout)).unwrap();
        std::mem::take(&mut self.rbuf)
    }

    /// Waits up to `timeout` for bytes. Returns the buffered bytes (possibly empty) and whether
    /// the peer has closed the connection.
    pub fn read_some(&mut self, timeout: Duration) -> (Vec<u8>, bool) {
        if !self.rbuf.is_empty() {
            return (std::mem::take(&mut self.rbuf), false);
        }
        self.stream
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))
            .unwrap();
        let closed = match self.fill() {
            Fill::Data | Fill::Timeout => false,
            Fill::Eof | Fill::Error(_) => true,
        };
        self.stream.set_read_timeout(Some(self.timeout)).unwrap();
        (std::mem::take(&mut self.rbuf), closed)
    }

    /// Reads until EOF/reset or `timeout`; returns (bytes, closed).
    pub fn read_to_close(&mut self, timeout: Duration) -> (Vec<u8>, bool) {
        let deadline = Instant::now() + timeout;
        self.stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let closed = loop {
            match self.fill() {
                Fill::Data => {}
                Fill::Eof | Fill::Error(_) => break true,
                Fill::Timeout => {
                    if Instant::now() > deadline {
                        break false;
                    }
                }
            }
        };
        self.stream.set_read_timeout(Some(self.timeout)).unwrap();
        (std::mem::take(&mut self.rbuf), closed)
    }

    /// Reads one line including its `\n`.
    #[track_caller]
    pub fn read_line(&mut self) -> Vec<u8> {
        self.read_until(b"\n")
    }

    /// Reads until the received bytes contain `term`; returns everything up to and including it.
    #[track_caller]
    pub fn read_until(&mut self, term: &[u8]) -> Vec<u8> {
        let mut from = 0;
        loop {
            if let Some(pos) = find(&self.rbuf[from..], term) {
                let end = from + pos + term.len();
                return self.rbuf.drain(..end).collect();
            }
            from = self.rbuf.len().saturating_sub(term.len() - 1);
            match self.fill() {
                Fill::Data => {}
                Fill::Eof => panic!(
                    "connection closed while waiting for {}; got {}",
                    esc(term),
                    esc_short(&self.rbuf)
                ),
                Fill::Timeout => panic!(
                    "timed out waiting for {}; got {}",
                    esc(term),
                    esc_short(&self.rbuf)
                ),
                Fill::Error(e) => panic!(
                    "read error ({e}) while waiting for {}; got {}",
                    esc(term),
                    esc_short(&self.rbuf)
                ),
            }
        }
    }

    /// Reads exactly `n` bytes.
    #[track_caller]
    pub fn read_exact_n(&mut self, n: usize) -> Vec<u8> {
        while self.rbuf.len() < n {
            match self.fill() {
                Fill::Data => {}
                Fill::Eof => panic!("connection closed with {} of {n} bytes", self.rbuf.len()),
                Fill::Timeout => panic!("timed out with {} of {n} bytes", self.rbuf.len()),
                Fill::Error(e) => panic!("read error {e} with {} of {n} bytes", self.rbuf.len()),
            }
        }
        self.rbuf.drain(..n).collect()
    }

    /// Reads a retrieval reply up to `END\r\n` (values are length-delimited, so a value
    /// containing `END\r\n` does not confuse it).
    #[track_caller]
    pub fn read_get_reply(&mut self) -> Vec<GetItem> {
        let mut items = Vec::new();
        loop {
            let line = self.read_line();
            if line == b"END\r\n" {
                return items;
            }
            let s = String::from_utf8_lossy(&line).to_string();
            assert!(
                s.ends_with("\r\n"),
                "line not ended by \\r\\n: {}",
                esc(&line)
            );
            let parts: Vec<&str> = s.trim_end_matches("\r\n").split(' ').collect();
            assert!(
                parts[0] == "VALUE" && (parts.len() == 4 || parts.len() == 5),
                "unexpected line in a retrieval reply: {}",
                esc(&line)
            );
            let len: usize = parts[3].parse().unwrap();
            let mut data = self.read_exact_n(len + 2);
            assert_eq!(&data[len..], b"\r\n", "value not followed by \\r\\n");
            data.truncate(len);
            let cas = parts.get(4).map(|c| c.parse().expect("numeric cas"));
            items.push((
                parts[1].as_bytes().to_vec(),
                parts[2].parse().expect("numeric flags"),
                data,
                cas,
            ));
        }
    }

    /// `gets key` → (value, cas) or None.
    #[track_caller]
    pub fn gets(&mut self, key: &str) -> Option<(Vec<u8>, u64)> {
        self.send(format!("gets {key}\r\n").as_bytes());
        let mut r = self.read_get_reply();
        assert!(r.len() <= 1);
        r.pop()
            .map(|(_, _, v, c)| (v, c.expect("gets returns a cas")))
    }

    /// `get key` → value or None.
    #[track_caller]
    pub fn get(&mut self, key: &str) -> Option<Vec<u8>> {
        self.send(format!("get {key}\r\n").as_bytes());
        let mut r = self.read_get_reply();
        assert!(r.len() <= 1);
        r.pop().map(|(_, _, v, _)| v)
    }

    /// `set key 0 0 <len>` and assert `STORED`.
    #[track_caller]
    pub fn set(&mut self, key: &str, val: &[u8]) {
        self.set_full(key, 0, 0, val);
    }

    #[track_caller]
    pub fn set_full(&mut self, key: &str, flags: u32, exptime: i64, val: &[u8]) {
        self.roundtrip(
            &store_cmd("set", key, flags, exptime, val, ""),
            b"STORED\r\n",
        );
    }

    /// Sends a command line (adds `\r\n`) and returns the one-line reply.
    #[track_caller]
    pub fn cmd(&mut self, line: &str) -> String {
        self.send(format!("{line}\r\n").as_bytes());
        String::from_utf8(self.read_line()).unwrap()
    }

    /// `stats [sub]` as a name → value map (asserts the reply shape).
    #[track_caller]
    pub fn stats(&mut self, sub: &str) -> HashMap<String, String> {
        self.stats_list(sub).into_iter().collect()
    }

    #[track_caller]
    pub fn stats_list(&mut self, sub: &str) -> Vec<(String, String)> {
        let line = if sub.is_empty() {
            "stats\r\n".to_string()
        } else {
            format!("stats {sub}\r\n")
        };
        self.send(line.as_bytes());
        let mut out = Vec::new();
        loop {
            let l = self.read_line();
            if l == b"END\r\n" {
                return out;
            }
            let s = String::from_utf8(l.clone())
                .unwrap_or_else(|_| panic!("non-utf8 stats line {}", esc(&l)));
            assert!(
                s.ends_with("\r\n"),
                "stats line without \\r\\n: {}",
                esc(&l)
            );
            let s = s.trim_end_matches("\r\n");
            let rest = s
                .strip_prefix("STAT ")
                .unwrap_or_else(|| panic!("not a STAT line: {}", esc(&l)));
            let (name, value) = rest
                .split_once(' ')
                .unwrap_or_else(|| panic!("STAT line without value: {s}"));
            out.push((name.to_string(), value.to_string()));
        }
    }

    /// One numeric stat from `stats`.
    #[track_caller]
    pub fn stat(&mut self, name: &str) -> u64 {
        let st = self.stats("");
        st.get(name)
            .unwrap_or_else(|| panic!("stats has no {name}"))
            .parse()
            .unwrap_or_else(|_| panic!("stat {name} is not an integer: {}", st[name]))
    }

    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }
}

/// Builds `<verb> <key> <flags> <exptime> <len>[ <extra>]\r\n<data>\r\n`.
pub fn store_cmd(
    verb: &str,
    key: &str,
    flags: u32,
    exptime: i64,
    val: &[u8],
    extra: &str,
) -> Vec<u8> {
    let mut m = format!("{verb} {key} {flags} {exptime} {}", val.len()).into_bytes();
    if !extra.is_empty() {
        m.push(b' ');
        m.extend_from_slice(extra.as_bytes());
    }
    m.extend_from_slice(b"\r\n");
    m.extend_from_slice(val);
    m.extend_from_slice(b"\r\n");
    m
}

pub fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
}

/// Polls `f` until it returns true or `deadline` passes; returns whether it succeeded.
pub fn wait_until(timeout: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(5);
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(100));
    }
}

/// Current unix time in seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Asserts that a previously stored key is intact and a fresh connection works.
#[track_caller]
pub fn assert_server_healthy(srv: &Server, key: &str, val: &[u8]) {
    let mut c = srv.conn();
    assert_eq!(
        c.get(key).as_deref(),
        Some(val),
        "key {key} lost or changed"
    );
    c.roundtrip(b"version\r\n", b"VERSION ");
    let rest = c.read_line();
    assert!(rest.ends_with(b"\r\n"));
}
