//! The bundled client against a real ferrocache cluster found by discovery: nodes started
//! from one node file serve `config get cluster`; the client follows a node joining, a node
//! killed (dropped by the cluster after its failure timeout) and its return, also after the
//! seed endpoint itself has died.

#[path = "../client/tests/support/mod.rs"]
#[macro_use]
mod support;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ferrocache_client::{Client, FailoverMode, FailurePolicy, NodeState};
use support::{free_port, wait_until, ServerProcess};

fn ferrocache() -> &'static Path {
    Path::new(env!("CARGO_BIN_EXE_ferrocache"))
}

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn temp_dir() -> Dir {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let dir = std::env::temp_dir().join(format!(
        "ferrocache-client-cluster-{}-{nanos}",
        std::process::id()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    Dir(dir)
}

/// Writes the node file atomically (a new file renamed over the old one).
fn write_nodes(file: &Path, ports: &[u16]) {
    let text: String = ports
        .iter()
        .map(|p| format!("localhost|127.0.0.1|{p}\n"))
        .collect();
    let tmp = file.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, file).unwrap();
}

fn start_node(file: &Path, port: u16) -> ServerProcess {
    let args = [
        "--cluster-file".to_owned(),
        file.display().to_string(),
        "--cluster-failure-timeout".to_owned(),
        "1".to_owned(),
    ];
    ServerProcess::start_with(ferrocache(), "127.0.0.1", port, &args)
        .unwrap_or_else(|| panic!("ferrocache on port {port} did not start"))
}

fn names(client: &Client) -> Vec<String> {
    let mut names: Vec<String> = client.nodes().into_iter().map(|n| n.name).collect();
    names.sort();
    names
}

fn expected(ports: &[u16]) -> Vec<String> {
    let mut names: Vec<String> = ports.iter().map(|p| format!("localhost:{p}")).collect();
    names.sort();
    names
}

/// Whether this build of ferrocache has the cluster endpoint (`--cluster-file`).
fn has_cluster_support() -> bool {
    std::process::Command::new(ferrocache())
        .arg("--help")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("--cluster-file"))
}

#[test]
fn follows_a_real_cluster() {
    require!(
        has_cluster_support(),
        "the cluster endpoint",
        "is not in this ferrocache build (no --cluster-file)"
    );
    let dir = temp_dir();
    let file = dir.0.join("nodes.txt");
    let mut ports: Vec<u16> = (0..3).map(|_| free_port()).collect();
    write_nodes(&file, &ports);
    let mut nodes: Vec<ServerProcess> = ports.iter().map(|&p| start_node(&file, p)).collect();

    let client = Client::builder()
        .seed(&nodes[0].address())
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
        .build()
        .unwrap();
    assert!(wait_until(Duration::from_secs(5), || names(&client)
        == expected(&ports)));
    let v1 = client.config_version().unwrap();

    // Keys spread over the three discovered nodes.
    let keys: Vec<String> = (0..3000).map(|i| format!("cluster:{i}")).collect();
    for key in &keys {
        client.set(key, "v", 0, 0).unwrap();
    }
    for (node, stats) in client.stats().unwrap() {
        let items: u64 = stats
            .unwrap()
            .into_iter()
            .find(|(k, _)| k == "curr_items")
            .unwrap()
            .1
            .parse()
            .unwrap();
        assert!(items > 600, "{node}: {items}");
    }

    // A fourth node joins through the node file: the client follows by polling alone.
    let started = Instant::now();
    ports.push(free_port());
    write_nodes(&file, &ports);
    nodes.push(start_node(&file, ports[3]));
    assert!(wait_until(Duration::from_secs(10), || names(&client)
        == expected(&ports)));
    let join_seen = started.elapsed();
    let v2 = client.config_version().unwrap();
    assert!(v2 > v1, "{v2} > {v1}");
    let hits = client.get_multi(&keys).unwrap();
    assert!(hits.failed.is_empty());
    let kept = hits.items.len() as f64 / keys.len() as f64;
    assert!((0.65..0.85).contains(&kept), "{kept}");

    // Node 1 is killed: the client ejects it at once; the cluster drops it after its
    // failure timeout (1 s) and the client applies that list.
    let victim = nodes[1].address().replace("127.0.0.1", "localhost");
    let killed = Instant::now();
    nodes[1].kill();
    let victim_key = keys
        .iter()
        .find(|k| client.locate(k).unwrap().owner == victim)
        .unwrap();
    // Drive a request to it so the client notices before any poll does.
    let _ = client.get(victim_key);
    let _ = client.get(victim_key);
    assert!(wait_until(Duration::from_secs(5), || client
        .nodes()
        .iter()
        .any(|n| n.name == victim && n.state != NodeState::Up)));
    let client_noticed = killed.elapsed();
    let without: Vec<u16> = [ports[0], ports[2], ports[3]].to_vec();
    assert!(wait_until(Duration::from_secs(10), || names(&client)
        == expected(&without)));
    let cluster_dropped = killed.elapsed();
    let v3 = client.config_version().unwrap();
    assert!(v3 > v2);
    assert_eq!(
        client.get(victim_key).unwrap(),
        None,
        "served by another node"
    );

    // The seed dies too; the node returns. The client learns it from the live nodes.
    nodes[0].kill();
    let returned = Instant::now();
    nodes[1].restart();
    let live: Vec<u16> = [ports[1], ports[2], ports[3]].to_vec();
    let back = wait_until(Duration::from_secs(10), || {
        // The dead seed stays listed until the cluster drops it; wait for the node's return.
        names(&client).contains(&victim)
    });
    assert!(back, "{:?}", names(&client));
    let return_seen = returned.elapsed();
    assert!(wait_until(Duration::from_secs(10), || names(&client)
        == expected(&live)));
    assert!(client.config_version().unwrap() > v3);
    for key in keys.iter().take(300) {
        client.set(key, "again", 0, 0).unwrap();
        assert_eq!(client.get(key).unwrap().unwrap().value, b"again");
    }

    eprintln!(
        "cluster: join seen after {join_seen:?} ({:.3} of keys still hit); kill noticed by the \
         client after {client_noticed:?}, dropped from the discovered list after \
         {cluster_dropped:?}; return seen after {return_seen:?} with the seed dead",
        kept
    );
}
