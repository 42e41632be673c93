//! Node failures under load: errors stay on the dead node's keys, the node is ejected, and
//! readmitted by probes once it is back. Timings are printed (`--nocapture`) and bounded.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use ferrocache_client::{Client, Error, FailoverMode, FailurePolicy, NodeState};
use support::{memcached_path, wait_until, Action, Responder, ServerProcess};

fn policy(mode: FailoverMode) -> FailurePolicy {
    FailurePolicy {
        failure_limit: 2,
        probe_interval: Duration::from_millis(50),
        max_probe_interval: Duration::from_millis(200),
        max_ejected_fraction: 0.5,
        mode,
    }
}

fn client(addresses: &[String], mode: FailoverMode) -> Client {
    Client::builder()
        .servers(addresses)
        .failure_policy(policy(mode))
        .connect_timeout(Duration::from_millis(200))
        .read_timeout(Duration::from_millis(300))
        .write_timeout(Duration::from_millis(300))
        .build()
        .unwrap()
}

struct Load {
    stop: Arc<AtomicBool>,
    ops: Arc<AtomicUsize>,
    /// `(key index, error)` of every failed request.
    errors: Arc<Mutex<Vec<(usize, String)>>>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Load {
    fn start(client: &Client, keys: &Arc<Vec<String>>, threads: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ops = Arc::new(AtomicUsize::new(0));
        let errors = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..threads)
            .map(|t| {
                let (client, keys, stop, ops, errors) = (
                    client.clone(),
                    keys.clone(),
                    stop.clone(),
                    ops.clone(),
                    errors.clone(),
                );
                thread::spawn(move || {
                    let mut i = t;
                    while !stop.load(Ordering::Relaxed) {
                        let at = i % keys.len();
                        if let Err(e) = client.get(&keys[at]) {
                            errors.lock().unwrap().push((at, e.to_string()));
                        }
                        ops.fetch_add(1, Ordering::Relaxed);
                        i += 7;
                    }
                })
            })
            .collect();
        Load {
            stop,
            ops,
            errors,
            threads,
        }
    }

    fn wait_ops(&self, more: usize) {
        let target = self.ops.load(Ordering::Relaxed) + more;
        assert!(wait_until(Duration::from_secs(10), || self
            .ops
            .load(Ordering::Relaxed)
            >= target));
    }

    fn finish(self) -> (usize, Vec<(usize, String)>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let errors = self.errors.lock().unwrap().clone();
        (self.ops.load(Ordering::Relaxed), errors)
    }
}

fn state(client: &Client, node: &str) -> NodeState {
    client
        .nodes()
        .into_iter()
        .find(|n| n.name == node)
        .unwrap()
        .state
}

fn kill_and_return(mode: FailoverMode) {
    let Some(path) = memcached_path() else {
        return require!(false, "memcached");
    };
    let mut servers: Vec<ServerProcess> = (0..3).map(|_| ServerProcess::start(&path)).collect();
    let addresses: Vec<String> = servers.iter().map(ServerProcess::address).collect();
    let client = client(&addresses, mode);
    let keys: Arc<Vec<String>> = Arc::new((0..3000).map(|i| format!("load:{i}")).collect());
    for key in keys.iter() {
        client.set(key, "v", 0, 0).unwrap();
    }
    let owner: Vec<String> = keys
        .iter()
        .map(|k| client.locate(k).unwrap().owner)
        .collect();
    let victim = addresses[1].clone();
    let victim_keys: Vec<usize> = (0..keys.len()).filter(|&i| owner[i] == victim).collect();
    assert!(victim_keys.len() > 500);

    let load = Load::start(&client, &keys, 4);
    load.wait_ops(2000);

    let killed = Instant::now();
    servers[1].kill();
    assert!(wait_until(Duration::from_secs(5), || state(
        &client, &victim
    ) != NodeState::Up));
    let to_failing = killed.elapsed();
    let expected = match mode {
        FailoverMode::FailFast => NodeState::Failing,
        _ => NodeState::Ejected,
    };
    assert!(wait_until(Duration::from_secs(5), || state(
        &client, &victim
    ) == expected));
    let to_ejected = killed.elapsed();
    let errors_at_ejection = load.errors.lock().unwrap().len();
    load.wait_ops(3000);
    let errors_after_ejection = load.errors.lock().unwrap().len() - errors_at_ejection;

    // Keys of the dead node are served elsewhere (as misses) or fail fast; others are intact.
    let probe_key = &keys[victim_keys[0]];
    match mode {
        FailoverMode::FailFast => assert!(matches!(
            client.get(probe_key),
            Err(Error::NodeFailing { .. })
        )),
        _ => {
            assert_eq!(client.get(probe_key).unwrap(), None);
            assert_ne!(client.locate(probe_key).unwrap().route.unwrap(), victim);
        }
    }

    let restarted = Instant::now();
    servers[1].restart();
    assert!(wait_until(Duration::from_secs(5), || state(
        &client, &victim
    ) == NodeState::Up));
    let to_readmitted = restarted.elapsed();
    load.wait_ops(2000);
    let (ops, errors) = load.finish();

    // Keys go back to their original node.
    for (i, key) in keys.iter().enumerate().step_by(10) {
        assert_eq!(client.locate(key).unwrap().route.unwrap(), owner[i]);
    }
    client.set(probe_key, "back", 0, 0).unwrap();
    assert_eq!(client.get(probe_key).unwrap().unwrap().value, b"back");

    eprintln!(
        "{mode:?}: {ops} gets, {} errors ({errors_after_ejection} after ejection); \
         kill -> failing {to_failing:?}, kill -> {expected:?} {to_ejected:?}, \
         restart -> readmitted {to_readmitted:?}",
        errors.len()
    );
    assert!(!errors.is_empty());
    for (key, error) in &errors {
        assert_eq!(owner[*key], victim, "error on a live node's key: {error}");
    }
    if mode != FailoverMode::FailFast {
        // In-flight requests at the moment of ejection may still fail; new ones do not.
        assert!(errors_after_ejection <= 8, "{errors_after_ejection}");
    }
    assert!(to_ejected < Duration::from_secs(2), "{to_ejected:?}");
    assert!(to_readmitted < Duration::from_secs(2), "{to_readmitted:?}");
}

#[test]
fn kill_under_load_eject() {
    kill_and_return(FailoverMode::Eject);
}

#[test]
fn kill_under_load_redistribute() {
    kill_and_return(FailoverMode::Redistribute);
}

#[test]
fn kill_under_load_fail_fast() {
    kill_and_return(FailoverMode::FailFast);
}

#[test]
fn hanging_node_times_out_and_is_ejected() {
    let Some(path) = memcached_path() else {
        return require!(false, "memcached");
    };
    let live: Vec<ServerProcess> = (0..2).map(|_| ServerProcess::start(&path)).collect();
    // Accepts connections, reads requests, never answers (probes included).
    let hanging = Responder::start(|_| Action::Silent);
    let mut addresses: Vec<String> = live.iter().map(ServerProcess::address).collect();
    addresses.push(hanging.address());
    let client = client(&addresses, FailoverMode::Eject);

    let keys: Vec<String> = (0..200).map(|i| format!("hang:{i}")).collect();
    let hung: Vec<&String> = keys
        .iter()
        .filter(|k| client.locate(k).unwrap().owner == hanging.address())
        .collect();
    assert!(!hung.is_empty());

    let started = Instant::now();
    let error = client.get(hung[0]).unwrap_err();
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
    let one_timeout = started.elapsed();
    assert!(one_timeout < Duration::from_secs(1), "{one_timeout:?}");
    assert!(matches!(client.get(hung[0]), Err(Error::Timeout { .. })));
    // Failure limit reached: fast-fail without waiting.
    let started = Instant::now();
    assert!(matches!(
        client.get(hung[0]),
        Err(Error::NodeFailing { .. })
    ));
    assert!(started.elapsed() < Duration::from_millis(50));
    // The failing probe ejects it; its keys then live on the other nodes.
    assert!(wait_until(Duration::from_secs(5), || state(
        &client,
        &hanging.address()
    )
        == NodeState::Ejected));
    for key in &keys {
        client.set(key, "v", 0, 0).unwrap();
        assert_eq!(client.get(key).unwrap().unwrap().value, b"v");
    }
    eprintln!("hanging node: one request times out after {one_timeout:?}");
    // Connections to the hanging node never exceed the pool size.
    for node in client.nodes() {
        assert!(node.connections.1 <= 4, "{node:?}");
    }
}

#[test]
fn ejection_is_capped() {
    let Some(path) = memcached_path() else {
        return require!(false, "memcached");
    };
    let mut servers: Vec<ServerProcess> = (0..3).map(|_| ServerProcess::start(&path)).collect();
    let addresses: Vec<String> = servers.iter().map(ServerProcess::address).collect();
    let client = client(&addresses, FailoverMode::Eject);
    servers[0].kill();
    servers[1].kill();
    let keys: Vec<String> = (0..300).map(|i| format!("cap:{i}")).collect();
    // Drive failures until both dead nodes are out of `Up`.
    assert!(wait_until(Duration::from_secs(5), || {
        for key in &keys {
            let _ = client.get(key);
        }
        client.nodes()[..2].iter().all(|n| n.state != NodeState::Up)
    }));
    // Give the probes time to run a few rounds, then check the cap: 3 nodes × 0.5 → 1.
    let probes_ran = wait_until(Duration::from_secs(5), || {
        client
            .nodes()
            .iter()
            .filter(|n| n.state == NodeState::Ejected)
            .count()
            == 1
    });
    assert!(probes_ran);
    for _ in 0..5 {
        client.probe_now();
        let states: Vec<NodeState> = client.nodes().iter().map(|n| n.state).collect();
        let ejected = states.iter().filter(|s| **s == NodeState::Ejected).count();
        assert_eq!(ejected, 1, "{states:?}");
        assert_eq!(states[2], NodeState::Up);
    }
    // The live node still serves its own keys.
    let live_keys = keys
        .iter()
        .filter(|k| client.locate(k).unwrap().owner == addresses[2]);
    for key in live_keys {
        client.set(key, "v", 0, 0).unwrap();
    }
}
