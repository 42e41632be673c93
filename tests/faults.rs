//! Faults under load, over real sockets against the real binary: SIGTERM while clients
//! pipeline, `kill -9` of one node of a three-node cluster, and a node that stalls (SIGSTOP)
//! under the bundled client. (`tests/client_server.rs` covers a plain node killed and
//! restarted under the client's load; these add the cluster and the stall.)

mod cluster_support;
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use cluster_support::*;
use common::*;
use ferrocache_client::{Client, FailoverMode, FailurePolicy, NodeState};

/// The exact reply to request `i` of client `c` in the SIGTERM test: a `set` of a value whose
/// length varies from 1 to 16 KiB, then a `get` of it.
fn sigterm_request(c: usize, i: usize) -> (Vec<u8>, Vec<u8>) {
    let key = format!("term:{c}:{i}");
    let len = 1 + (i * 7919) % (16 * 1024);
    let val: Vec<u8> = (0..len).map(|j| b'a' + ((i + j) % 26) as u8).collect();
    let mut req = store_cmd("set", &key, 0, 0, &val, "");
    req.extend_from_slice(format!("get {key}\r\n").as_bytes());
    let mut reply = b"STORED\r\n".to_vec();
    reply.extend_from_slice(format!("VALUE {key} 0 {len}\r\n").as_bytes());
    reply.extend_from_slice(&val);
    reply.extend_from_slice(b"\r\nEND\r\n");
    (req, reply)
}

/// What one pipelining client saw.
struct Seen {
    /// Complete replies received, in order.
    replies: usize,
    /// Replies received before the signal was sent.
    before_signal: usize,
    /// Bytes after the last complete reply (must be none).
    trailing: usize,
    /// How the stream ended: `None` for a clean EOF, else the read error.
    end: Option<String>,
}

/// SIGTERM while four clients pipeline `set`+`get` pairs (1 B – 16 KiB values), up to 64
/// requests ahead of the replies. What is asserted:
///
/// - the server exits with status 0 within 10 s;
/// - each client's received byte stream is exactly the expected replies to its first `k`
///   requests, in order, byte for byte, for some `k` no smaller than the count it had already
///   received when the signal was sent: no reply is cut short and none is garbled;
/// - the reader then sees EOF. Requests after the `k`-th got no bytes at all (the server
///   stopped taking requests; a client must retry them elsewhere).
///
/// A reset would not necessarily show as a read error here (the writer thread may take it),
/// which is why the byte-exact prefix check is the one that matters: a server that closes
/// with unread input resets the connection and the kernel drops replies still unsent.
#[test]
fn sigterm_under_load_delivers_complete_replies() {
    ferrocache_only!();
    const CLIENTS: usize = 4;
    const AHEAD: usize = 64;
    let mut s = Server::start(&["-t", "2"]);
    let addr = s.addr();
    let signalled = Arc::new(AtomicBool::new(false));
    let received = Arc::new(AtomicUsize::new(0));
    let clients: Vec<JoinHandle<Seen>> = (0..CLIENTS)
        .map(|c| {
            let (signalled, received) = (signalled.clone(), received.clone());
            thread::spawn(move || pipeline_until_eof(addr, c, AHEAD, &signalled, &received))
        })
        .collect();
    // Let every client get well into its stream first.
    assert!(wait_until(Duration::from_secs(20), || received
        .load(Ordering::Relaxed)
        >= CLIENTS * 300));
    signalled.store(true, Ordering::SeqCst);
    let t = Instant::now();
    s.signal(libc::SIGTERM);
    let status = s.wait_exit(Duration::from_secs(10));
    let took = t.elapsed();
    let seen: Vec<Seen> = clients
        .into_iter()
        .map(|h| h.join().expect("client"))
        .collect();
    for (c, x) in seen.iter().enumerate() {
        eprintln!(
            "client {c}: {} replies before SIGTERM, {} in all, then {}",
            x.before_signal,
            x.replies,
            x.end.as_deref().unwrap_or("EOF")
        );
    }
    eprintln!("exit after {took:?}: {status:?}");
    assert!(
        status.is_some_and(|st| st.success()),
        "exit status {status:?}"
    );
    for (c, x) in seen.iter().enumerate() {
        assert_eq!(
            x.trailing, 0,
            "client {c}: {} bytes of a cut-short reply",
            x.trailing
        );
        assert!(x.replies >= x.before_signal);
        assert_eq!(x.end, None, "client {c}: the stream did not end with EOF");
    }
}

/// Sends requests up to `ahead` in front of the replies; checks every reply byte for byte.
fn pipeline_until_eof(
    addr: SocketAddr,
    c: usize,
    ahead: usize,
    signalled: &AtomicBool,
    received: &AtomicUsize,
) -> Seen {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    let mut writer = stream.try_clone().unwrap();
    let mut reader = stream;
    // Requests sent (by the writer thread) and replies verified (here).
    let sent = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let w = {
        let (sent, done, stop) = (sent.clone(), done.clone(), stop.clone());
        thread::spawn(move || {
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                if i >= done.load(Ordering::Acquire) + ahead {
                    thread::sleep(Duration::from_micros(200));
                    continue;
                }
                let (req, _) = sigterm_request(c, i);
                if writer.write_all(&req).is_err() {
                    return;
                }
                i += 1;
                sent.store(i, Ordering::Release);
            }
        })
    };
    let mut pending: Vec<u8> = Vec::new();
    let mut next = 0;
    let mut before_signal = 0;
    let mut buf = vec![0u8; 64 * 1024];
    let end = loop {
        match reader.read(&mut buf) {
            Ok(0) => break None,
            Ok(n) => pending.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => break Some(format!("{:?}", e.kind())),
        }
        loop {
            let (_, want) = sigterm_request(c, next);
            let n = want.len().min(pending.len());
            assert!(
                pending[..n] == want[..n],
                "client {c}, reply {next}: got {}",
                esc_short(&pending[..n])
            );
            if n < want.len() {
                break;
            }
            pending.drain(..n);
            next += 1;
            done.store(next, Ordering::Release);
            received.fetch_add(1, Ordering::Relaxed);
            if !signalled.load(Ordering::SeqCst) {
                before_signal = next;
            }
        }
    };
    stop.store(true, Ordering::Relaxed);
    w.join().unwrap();
    assert!(next <= sent.load(Ordering::Acquire));
    Seen {
        replies: next,
        before_signal,
        trailing: pending.len(),
        end,
    }
}

/// One request of the load: key index, latency, error.
type Op = (usize, Duration, Option<String>);

/// Load from the bundled client: threads doing `get`s and `set`s over `keys`, recording the
/// latency of each request and every failure with the key it was for.
struct Load {
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicUsize>,
    /// `(key index, latency, error)`.
    log: Arc<Mutex<Vec<Op>>>,
    threads: Vec<JoinHandle<()>>,
}

impl Load {
    fn start(client: &Client, keys: &Arc<Vec<String>>, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicUsize::new(0));
        let log = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..threads)
            .map(|t| {
                let (client, keys, stop, ops, log) = (
                    client.clone(),
                    keys.clone(),
                    stop.clone(),
                    ops.clone(),
                    log.clone(),
                );
                thread::spawn(move || {
                    let mut i = t * 101;
                    while !stop.load(Ordering::Relaxed) {
                        let at = i % keys.len();
                        let t0 = Instant::now();
                        let r = if i % 4 == 0 {
                            client.set(&keys[at], "v", 0, 0).map(|_| ())
                        } else {
                            client.get(&keys[at]).map(|_| ())
                        };
                        let took = t0.elapsed();
                        let failed = r.err().map(|e| e.to_string());
                        let fast_fail = failed.is_some() && took < Duration::from_millis(1);
                        log.lock().unwrap().push((at, took, failed));
                        ops.fetch_add(1, Ordering::Relaxed);
                        if fast_fail {
                            // Fast-failed requests cost no I/O: leave the CPU to the others.
                            thread::sleep(Duration::from_micros(500));
                        }
                        i += 7;
                    }
                })
            })
            .collect();
        Load {
            stop,
            ops,
            log,
            threads,
        }
    }

    fn wait_ops(&self, more: usize) {
        let target = self.ops.load(Ordering::Relaxed) + more;
        assert!(
            wait_until(Duration::from_secs(15), || self.ops.load(Ordering::Relaxed)
                >= target),
            "the load made no progress"
        );
    }

    fn finish(self) -> Vec<Op> {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().expect("load thread");
        }
        let log = self.log.lock().unwrap().clone();
        log
    }
}

fn percentile(mut v: Vec<Duration>, p: f64) -> Duration {
    v.sort();
    v[((v.len() - 1) as f64 * p).round() as usize]
}

/// Polls `config get cluster` on each live node every 50 ms until stopped; records failures
/// and the slowest answer.
struct ConfigWatch {
    stop: Arc<AtomicBool>,
    handle: JoinHandle<(usize, Vec<String>, Duration)>,
}

impl ConfigWatch {
    fn start(addrs: Vec<SocketAddr>) -> ConfigWatch {
        let stop = Arc::new(AtomicBool::new(false));
        let stop2 = stop.clone();
        let handle = thread::spawn(move || {
            let (mut polls, mut failures, mut slowest) = (0, Vec::new(), Duration::ZERO);
            while !stop2.load(Ordering::Relaxed) {
                for a in &addrs {
                    let t = Instant::now();
                    match ask(*a, b"config get cluster\r\n") {
                        Some(raw) if raw.starts_with(b"CONFIG cluster 0 ") => {}
                        other => failures.push(format!("{a}: {:?}", other.map(|r| esc(&r)))),
                    }
                    slowest = slowest.max(t.elapsed());
                    polls += 1;
                }
                thread::sleep(Duration::from_millis(50));
            }
            (polls, failures, slowest)
        });
        ConfigWatch { stop, handle }
    }

    fn finish(self) -> (usize, Vec<String>, Duration) {
        self.stop.store(true, Ordering::Relaxed);
        self.handle.join().expect("config watch")
    }
}

/// `kill -9` of one node of a three-node cluster (`--join`, failure timeout 1 s) under load
/// from the bundled client, which follows the cluster through discovery. Asserted: the two
/// other nodes answer every `config get cluster` throughout (polled every 50 ms, each answer
/// within 1 s); every node that is left lists exactly the two of them within the failure
/// timeout + 3 s; the client follows to two nodes; every failed request was for a key of the
/// dead node; requests to live nodes keep a bounded latency (p99 < 200 ms).
#[test]
fn kill_9_of_a_cluster_node_under_client_load() {
    ferrocache_only!();
    let timeout = ["--cluster-failure-timeout", "1"];
    let mut a = Node::new("127.0.0.1", &timeout);
    a.start();
    let join = a.hostport();
    let with_join: Vec<&str> = [&timeout[..], &["--join", &join]].concat();
    let mut b = Node::new("127.0.0.1", &with_join);
    let mut c = Node::new("127.0.0.1", &with_join);
    b.start();
    c.start();
    let mut w = Watch::default();
    let all = list(&[a.entry(), b.entry(), c.entry()]);
    w.converge(&[&a, &b, &c], Some(&all), Duration::from_secs(3));

    let client = Client::builder()
        .seed(&a.hostport())
        .poll_interval(Duration::from_millis(100))
        .failure_policy(FailurePolicy {
            failure_limit: 2,
            probe_interval: Duration::from_millis(50),
            max_probe_interval: Duration::from_millis(200),
            max_ejected_fraction: 0.5,
            mode: FailoverMode::Eject,
        })
        .connect_timeout(Duration::from_millis(500))
        .read_timeout(Duration::from_secs(1))
        .write_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(5), || client.nodes().len() == 3),
        "{:?}",
        client.nodes()
    );
    let keys: Arc<Vec<String>> = Arc::new((0..2000).map(|i| format!("kill9:{i}")).collect());
    let owner: Vec<String> = keys
        .iter()
        .map(|k| client.locate(k).unwrap().owner)
        .collect();
    let victim = format!("localhost:{}", c.port);
    let victim_keys = owner.iter().filter(|o| **o == victim).count();
    assert!(
        victim_keys > 300,
        "{victim_keys} keys on {victim}: {owner:?}"
    );

    let watch = ConfigWatch::start(vec![a.addr(), b.addr()]);
    let load = Load::start(&client, &keys, 3);
    load.wait_ops(1000);
    let killed = Instant::now();
    c.kill();
    let two = list(&[a.entry(), b.entry()]);
    w.converge(&[&a, &b], Some(&two), Duration::from_secs(4));
    let converged = killed.elapsed();
    assert!(
        wait_until(Duration::from_secs(5), || client.nodes().len() == 2),
        "the client still lists {:?}",
        client.nodes()
    );
    let followed = killed.elapsed();
    load.wait_ops(1000);
    let log = load.finish();
    let (polls, failures, slowest) = watch.finish();

    let errors: Vec<&Op> = log.iter().filter(|(_, _, e)| e.is_some()).collect();
    let live: Vec<Duration> = log
        .iter()
        .filter(|(k, _, e)| owner[*k] != victim && e.is_none())
        .map(|(_, d, _)| *d)
        .collect();
    let (p50, p99) = (percentile(live.clone(), 0.5), percentile(live, 0.99));
    eprintln!(
        "kill -9: cluster at 2 nodes after {converged:?}, client after {followed:?}; {} requests, \
         {} errors; live-node latency p50 {p50:?} p99 {p99:?}; {polls} config polls, slowest \
         {slowest:?}",
        log.len(),
        errors.len()
    );
    assert!(failures.is_empty(), "config endpoint failed: {failures:?}");
    assert!(slowest < Duration::from_secs(1), "{slowest:?}");
    for (k, _, e) in &errors {
        assert_eq!(owner[*k], victim, "a live node's key failed: {e:?}");
    }
    assert!(p99 < Duration::from_millis(200), "{p99:?}");
    // Keys of the dead node are served by the others (as misses first).
    let k = owner.iter().position(|o| *o == victim).unwrap();
    client.set(&keys[k], "moved", 0, 0).unwrap();
    assert_eq!(client.get(&keys[k]).unwrap().unwrap().value, b"moved");
}

/// Sends SIGCONT and then SIGKILL on drop, so a failing test never leaves a stopped process.
struct Stopped<'a>(&'a Server);

impl<'a> Stopped<'a> {
    fn stop(s: &'a Server) -> Stopped<'a> {
        s.signal(libc::SIGSTOP);
        Stopped(s)
    }

    fn resume(self) {
        self.0.signal(libc::SIGCONT);
        std::mem::forget(self);
    }
}

impl Drop for Stopped<'_> {
    fn drop(&mut self) {
        unsafe {
            libc::kill(self.0.pid() as i32, libc::SIGCONT);
            libc::kill(self.0.pid() as i32, libc::SIGKILL);
        }
    }
}

/// A node that stalls (SIGSTOP: it accepts connections in the kernel but answers nothing)
/// under load from the bundled client (read timeout 300 ms, eject after 2 failures). Asserted:
/// the client ejects it within a few timeouts; every failed request was for one of its keys;
/// requests to the other nodes keep a bounded latency throughout (p99 < 200 ms, max < 1 s:
/// they never wait on the stalled node); after SIGCONT the node is readmitted and serves its
/// keys again.
#[test]
fn a_stalled_node_is_ejected_and_readmitted() {
    ferrocache_only!();
    let servers: Vec<Server> = (0..3).map(|_| Server::start(&["-t", "1"])).collect();
    let addresses: Vec<String> = servers.iter().map(|s| s.addr().to_string()).collect();
    let policy = FailurePolicy {
        failure_limit: 2,
        probe_interval: Duration::from_millis(50),
        max_probe_interval: Duration::from_millis(200),
        max_ejected_fraction: 0.5,
        mode: FailoverMode::Eject,
    };
    let client = Client::builder()
        .servers(&addresses)
        .failure_policy(policy)
        .connect_timeout(Duration::from_millis(300))
        .read_timeout(Duration::from_millis(300))
        .write_timeout(Duration::from_millis(300))
        .build()
        .unwrap();
    let keys: Arc<Vec<String>> = Arc::new((0..2000).map(|i| format!("stall:{i}")).collect());
    for k in keys.iter() {
        client.set(k, "v", 0, 0).unwrap();
    }
    let owner: Vec<String> = keys
        .iter()
        .map(|k| client.locate(k).unwrap().owner)
        .collect();
    let victim = addresses[1].clone();
    let state = |c: &Client| {
        c.nodes()
            .into_iter()
            .find(|n| n.name == victim)
            .unwrap()
            .state
    };

    let load = Load::start(&client, &keys, 3);
    load.wait_ops(1000);
    let stalled_at = Instant::now();
    let stopped = Stopped::stop(&servers[1]);
    assert!(
        wait_until(Duration::from_secs(5), || state(&client)
            == NodeState::Ejected),
        "not ejected: {:?}",
        client.nodes()
    );
    let ejected = stalled_at.elapsed();
    load.wait_ops(1000);
    let resumed_at = Instant::now();
    stopped.resume();
    assert!(
        wait_until(Duration::from_secs(5), || state(&client) == NodeState::Up),
        "not readmitted: {:?}",
        client.nodes()
    );
    let readmitted = resumed_at.elapsed();
    load.wait_ops(1000);
    let log = load.finish();

    let errors: Vec<_> = log.iter().filter(|(_, _, e)| e.is_some()).collect();
    let live: Vec<Duration> = log
        .iter()
        .filter(|(k, _, _)| owner[*k] != victim)
        .map(|(_, d, _)| *d)
        .collect();
    let max = *live.iter().max().unwrap();
    let (p50, p99) = (percentile(live.clone(), 0.5), percentile(live, 0.99));
    eprintln!(
        "SIGSTOP: ejected after {ejected:?}, readmitted {readmitted:?} after SIGCONT; {} \
         requests, {} errors; other nodes' latency p50 {p50:?} p99 {p99:?} max {max:?}",
        log.len(),
        errors.len()
    );
    assert!(!errors.is_empty(), "the stall went unnoticed");
    for (k, _, e) in &errors {
        assert_eq!(owner[*k], victim, "a live node's key failed: {e:?}");
    }
    // Two timeouts of 300 ms, then the first failed probe.
    assert!(ejected < Duration::from_secs(3), "{ejected:?}");
    assert!(readmitted < Duration::from_secs(2), "{readmitted:?}");
    assert!(p99 < Duration::from_millis(200), "{p99:?}");
    assert!(max < Duration::from_secs(1), "{max:?}");
    // Its keys are routed to it again, and it serves them.
    let k = owner.iter().position(|o| *o == victim).unwrap();
    assert_eq!(client.locate(&keys[k]).unwrap().route.unwrap(), victim);
    client.set(&keys[k], "back", 0, 0).unwrap();
    assert_eq!(client.get(&keys[k]).unwrap().unwrap().value, b"back");
    let mut direct = servers[1].conn();
    assert_eq!(direct.get(&keys[k]).as_deref(), Some(&b"back"[..]));
}

/// SIGTERM while a multiget far larger than the socket buffers is being sent (the server
/// pauses it between keys while the client reads): the client still gets every value and the
/// closing `END`, then EOF.
#[test]
fn sigterm_finishes_a_multiget_in_progress() {
    ferrocache_only!();
    const VAL: usize = 256 * 1024;
    const KEYS: usize = 24; // 6 MiB of reply
    let mut s = Server::start(&["-t", "1"]);
    let val: Vec<u8> = (0..VAL).map(|i| b'a' + (i % 26) as u8).collect();
    let mut setup = s.conn();
    for k in 0..KEYS {
        setup.send(&store_cmd("set", &format!("mg:{k}"), 0, 0, &val, ""));
        setup.expect(b"STORED\r\n");
    }
    drop(setup);
    let mut c = Conn::connect_small_rcvbuf(s.addr(), 16 * 1024);
    let mut line = b"get".to_vec();
    for k in 0..KEYS {
        line.extend_from_slice(format!(" mg:{k}").as_bytes());
    }
    line.extend_from_slice(b"\r\n");
    c.send(&line);
    // The first value has arrived: the rest is held back behind the small window.
    c.expect(format!("VALUE mg:0 0 {VAL}\r\n").as_bytes());
    assert!(c.read_exact_n(VAL) == val);
    c.expect(b"\r\n");
    s.signal(libc::SIGTERM);
    for k in 1..KEYS {
        c.expect(format!("VALUE mg:{k} 0 {VAL}\r\n").as_bytes());
        assert!(c.read_exact_n(VAL) == val, "value {k} corrupted");
        c.expect(b"\r\n");
    }
    c.expect(b"END\r\n");
    c.expect_closed();
    let status = s.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|st| st.success()),
        "exit status {status:?}"
    );
}

/// SIGTERM while single-key gets wait in the server's input behind a full output queue (the
/// client reads slowly): every request the server had read is answered, then EOF.
#[test]
fn sigterm_answers_every_request_already_read() {
    ferrocache_only!();
    const VAL: usize = 256 * 1024;
    const GETS: usize = 24; // 6 MiB of replies for 264 bytes of requests
    let mut s = Server::start(&["-t", "1"]);
    let val: Vec<u8> = (0..VAL).map(|i| b'a' + (i % 26) as u8).collect();
    let mut setup = s.conn();
    setup.send(&store_cmd("set", "big", 0, 0, &val, ""));
    setup.expect(b"STORED\r\n");
    drop(setup);
    let mut c = Conn::connect_small_rcvbuf(s.addr(), 16 * 1024);
    // One write: the server reads every request at once, answers the first ones and stops
    // parsing while their replies are queued.
    c.send(&b"get big\r\n".repeat(GETS));
    c.expect(format!("VALUE big 0 {VAL}\r\n").as_bytes());
    assert!(c.read_exact_n(VAL) == val);
    c.expect(b"\r\nEND\r\n");
    s.signal(libc::SIGTERM);
    for i in 1..GETS {
        c.expect(format!("VALUE big 0 {VAL}\r\n").as_bytes());
        assert!(c.read_exact_n(VAL) == val, "reply {i} corrupted");
        c.expect(b"\r\nEND\r\n");
    }
    c.expect_closed();
    let status = s.wait_exit(Duration::from_secs(10));
    assert!(
        status.is_some_and(|st| st.success()),
        "exit status {status:?}"
    );
}
