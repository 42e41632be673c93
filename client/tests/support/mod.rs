//! Helpers for tests against real sockets: server processes on ephemeral ports and a scripted
//! TCP responder that serves exact bytes. Shared with the workspace-level `tests/client_*.rs`,
//! which run the same scenarios against ferrocache.
#![allow(dead_code)]

pub mod suites;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// A port that was free a moment ago and that this process has not handed out before, so two
/// tests running at once never start servers on the same port.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    loop {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut given = GIVEN.lock().unwrap();
        if !given.contains(&port) {
            given.push(port);
            return port;
        }
    }
}

/// The `pid` a plain-text server at `host:port` reports in `stats`; `None` when it does not
/// answer in clear (TLS, authentication).
fn reported_pid(host: &str, port: u16) -> Option<u32> {
    let mut stream = TcpStream::connect_timeout(
        &format!("{host}:{port}").parse().ok()?,
        Duration::from_millis(500),
    )
    .ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    stream.write_all(b"stats\r\n").ok()?;
    let mut reply = Vec::new();
    let mut chunk = [0u8; 4096];
    while !reply.ends_with(b"END\r\n") {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        reply.extend_from_slice(&chunk[..n]);
    }
    String::from_utf8_lossy(&reply)
        .lines()
        .find_map(|l| l.strip_prefix("STAT pid ")?.trim().parse().ok())
}

/// Polls `cond` every few milliseconds until it holds or `limit` passes.
pub fn wait_until(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
}

/// Whether a TCP connection to 127.0.0.1:`port` is accepted.
pub fn accepts(port: u16) -> bool {
    accepts_at("127.0.0.1", port)
}

/// Whether a TCP connection to `host:port` is accepted.
pub fn accepts_at(host: &str, port: u16) -> bool {
    TcpStream::connect_timeout(
        &format!("{host}:{port}").parse().unwrap(),
        Duration::from_millis(100),
    )
    .is_ok()
}

/// The reference memcached, if installed.
pub fn memcached_path() -> Option<PathBuf> {
    let path = Path::new("/usr/bin/memcached");
    path.exists().then(|| path.to_owned())
}

/// Fails the calling test when `$cond` is false, saying what to install: like the rest
/// of the suite, a missing third-party program never lets a test pass unseen. With
/// `FERROCACHE_SKIP_INTEROP=1` the test is skipped instead (returns early), for a quick
/// local run without the tools.
#[macro_export]
macro_rules! require {
    ($cond:expr, $what:expr) => {
        require!(
            $cond,
            $what,
            "is not installed (run tests/interop/client-deps.sh)"
        )
    };
    ($cond:expr, $what:expr, $why:expr) => {
        if !$cond {
            if std::env::var_os("FERROCACHE_SKIP_INTEROP").is_some_and(|v| v == "1") {
                eprintln!("skipped: {} {}", $what, $why);
                return;
            }
            panic!("{} {}", $what, $why);
        }
    };
}

/// A memcached-compatible server process on 127.0.0.1, killed on drop.
pub struct ServerProcess {
    pub host: String,
    pub port: u16,
    child: Option<Child>,
    program: PathBuf,
    extra: Vec<String>,
}

impl ServerProcess {
    /// Starts `program` (memcached or ferrocache) on a free port.
    pub fn start(program: &Path) -> ServerProcess {
        for _ in 0..5 {
            let port = free_port();
            if let Some(server) = Self::start_on(program, port) {
                return server;
            }
        }
        panic!("could not start {}", program.display());
    }

    /// Starts `program` on `port`; `None` if it did not come up (port taken meanwhile).
    pub fn start_on(program: &Path, port: u16) -> Option<ServerProcess> {
        Self::start_at(program, "127.0.0.1", port)
    }

    /// Starts `program` listening on `host:port`.
    pub fn start_at(program: &Path, host: &str, port: u16) -> Option<ServerProcess> {
        Self::start_with(program, host, port, &[])
    }

    /// Starts `program` listening on `host:port` with extra arguments.
    pub fn start_with(
        program: &Path,
        host: &str,
        port: u16,
        args: &[String],
    ) -> Option<ServerProcess> {
        // memcached refuses to run as root without `-u`; ferrocache has no such flag.
        let memcached = program.file_name().is_some_and(|n| n == "memcached");
        let extra: &[&str] = if memcached {
            &["-u", "root", "-U", "0"]
        } else {
            &["-t", "2"]
        };
        let mut child = Command::new(program)
            .args(extra)
            .args(args)
            .args(["-l", host, "-p"])
            .arg(port.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn server");
        let up = wait_until(Duration::from_secs(5), || {
            accepts_at(host, port) || child.try_wait().ok().flatten().is_some()
        });
        // Another process may hold the port: then this child fails to bind and exits, while
        // the port accepts. A server that answers `stats` must report this child's pid.
        let foreign = up && reported_pid(host, port).is_some_and(|pid| pid != child.id());
        if !up || foreign || child.try_wait().ok().flatten().is_some() {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        Some(ServerProcess {
            host: host.to_owned(),
            port,
            child: Some(child),
            program: program.to_owned(),
            extra: args.to_vec(),
        })
    }

    /// Kills the process (SIGKILL). Its sockets close at once; reaping happens on a helper
    /// thread because on a loaded machine `waitpid` sometimes returns only seconds after the
    /// process is gone, and nothing here needs to wait for that.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            thread::spawn(move || child.wait());
        }
    }

    /// Starts the program again on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let again = wait_until(Duration::from_secs(5), || {
            let (host, extra) = (self.host.clone(), self.extra.clone());
            match Self::start_with(&self.program, &host, self.port, &extra) {
                Some(new) => {
                    // The old value holds no process any more; dropping it does nothing.
                    *self = new;
                    true
                }
                None => false,
            }
        });
        assert!(again, "restart on port {}", self.port);
    }

    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

/// What the responder does with one request line.
#[derive(Clone, Debug)]
pub enum Action {
    /// Write these bytes.
    Send(Vec<u8>),
    /// Write these bytes, then close the connection.
    SendAndClose(Vec<u8>),
    /// Never answer (the connection stays open).
    Silent,
}

type Script = dyn Fn(&str) -> Action + Send + Sync;

/// A TCP server on an ephemeral port that answers each request line through a script and
/// records every line it received.
pub struct Responder {
    pub port: u16,
    script: Arc<Mutex<Arc<Script>>>,
    pub requests: Arc<Mutex<Vec<String>>>,
    pub accepted: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Responder {
    pub fn start(script: impl Fn(&str) -> Action + Send + Sync + 'static) -> Responder {
        Self::bind(TcpListener::bind("127.0.0.1:0").unwrap(), script)
    }

    pub fn bind(
        listener: TcpListener,
        script: impl Fn(&str) -> Action + Send + Sync + 'static,
    ) -> Responder {
        let port = listener.local_addr().unwrap().port();
        let script: Arc<Mutex<Arc<Script>>> = Arc::new(Mutex::new(Arc::new(script)));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (script, requests, accepted, stop) = (
                script.clone(),
                requests.clone(),
                accepted.clone(),
                stop.clone(),
            );
            thread::spawn(move || {
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let Ok(stream) = stream else { continue };
                    accepted.fetch_add(1, Ordering::SeqCst);
                    let (script, requests, stop) = (script.clone(), requests.clone(), stop.clone());
                    thread::spawn(move || serve(stream, script, requests, stop));
                }
            });
        }
        Responder {
            port,
            script,
            requests,
            accepted,
            stop,
        }
    }

    /// Replaces the script for requests from now on.
    pub fn script(&self, script: impl Fn(&str) -> Action + Send + Sync + 'static) {
        *self.script.lock().unwrap() = Arc::new(script);
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn requests(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }

    pub fn count(&self, line: &str) -> usize {
        self.requests().iter().filter(|l| *l == line).count()
    }
}

impl Drop for Responder {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Unblock the accept loop.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

fn serve(
    stream: TcpStream,
    script: Arc<Mutex<Arc<Script>>>,
    requests: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) {
    stream
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    let mut silent = false;
    while !stop.load(Ordering::SeqCst) {
        match reader.read_line(&mut line) {
            Ok(0) => return,
            Ok(_) if line.ends_with('\n') => {}
            Ok(_) => continue,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) =>
            {
                continue
            }
            Err(_) => return,
        }
        let request = std::mem::take(&mut line);
        let request = request.trim_end_matches(['\r', '\n']).to_owned();
        requests.lock().unwrap().push(request.clone());
        if silent {
            continue;
        }
        let action = (script.lock().unwrap().clone())(&request);
        match action {
            Action::Send(bytes) => {
                if writer.write_all(&bytes).is_err() {
                    return;
                }
            }
            Action::SendAndClose(bytes) => {
                let _ = writer.write_all(&bytes);
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
            Action::Silent => silent = true,
        }
    }
}

/// A `CONFIG cluster` reply for `version` and `host|ip|port` entries, length computed.
pub fn config_reply(version: u64, nodes: &[String]) -> Vec<u8> {
    let payload = format!("{version}\n{}\n", nodes.join(" "));
    format!("CONFIG cluster 0 {}\r\n{payload}\r\nEND\r\n", payload.len()).into_bytes()
}

/// `localhost|127.0.0.1|<port>`
pub fn entry(port: u16) -> String {
    format!("localhost|127.0.0.1|{port}")
}
