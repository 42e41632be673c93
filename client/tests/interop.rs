//! Placement cross-checks against the real implementations: keys are stored through pylibmc
//! (libmemcached, `ketama_weighted`) or through nutcracker (twemproxy, `hash: md5`,
//! `distribution: ketama`) into real memcached instances; reading every instance back shows
//! where each key landed, which must be where our ring puts it.
//!
//! Needs `memcached`, `python3-pylibmc` and `nutcracker` (tests/interop/client-deps.sh);
//! fail without them (`FERROCACHE_SKIP_INTEROP=1` skips them).

mod support;

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ferrocache_client::{Client, Naming, Ring, Server};
use support::{accepts, free_port, memcached_path, wait_until, ServerProcess};

const KEYS: usize = 5000;

fn keys() -> Vec<String> {
    (0..KEYS)
        .map(|i| format!("interop:{i}:{}", i * 7919))
        .collect()
}

/// Where each key landed: the index of the instance that holds it.
fn landed(instances: &[ServerProcess], keys: &[String]) -> Vec<Option<usize>> {
    let mut owner = vec![None; keys.len()];
    for (n, instance) in instances.iter().enumerate() {
        let client = Client::new([instance.address()]).unwrap();
        let found = client.get_multi(keys).unwrap();
        assert!(found.failed.is_empty());
        for (i, key) in keys.iter().enumerate() {
            if found.items.contains_key(key.as_bytes()) {
                assert_eq!(owner[i], None, "{key} stored twice");
                owner[i] = Some(n);
            }
        }
    }
    owner
}

fn ours(servers: &[Server], naming: Naming, keys: &[String]) -> Vec<Option<usize>> {
    let ring = Ring::new(servers, naming).unwrap();
    keys.iter().map(|k| Some(ring.lookup(k))).collect()
}

fn assert_same(theirs: &[Option<usize>], ours: &[Option<usize>], keys: &[String], who: &str) {
    let differ: Vec<&String> = keys
        .iter()
        .zip(theirs.iter().zip(ours))
        .filter(|(_, (a, b))| a != b)
        .map(|(k, _)| k)
        .collect();
    assert!(
        differ.is_empty(),
        "{who}: {} of {} keys placed differently, e.g. {:?}",
        differ.len(),
        keys.len(),
        &differ[..differ.len().min(5)]
    );
    // Every instance got keys, so the comparison means something.
    for n in 0..ours.iter().flatten().max().unwrap() + 1 {
        assert!(theirs.contains(&Some(n)), "{who}: instance {n} got no key");
    }
}

/// Instances on ephemeral ports of 127.0.0.1.
fn local_instances(memcached: &Path, n: usize) -> Vec<ServerProcess> {
    (0..n).map(|_| ServerProcess::start(memcached)).collect()
}

/// Instances on port 11211 of random loopback addresses (libmemcached and twemproxy drop
/// the port from point names there). `None` if the addresses cannot be bound.
fn default_port_instances(memcached: &Path, n: usize) -> Option<Vec<ServerProcess>> {
    let mut random = RandomState::new().build_hasher();
    random.write_u64(std::process::id().into());
    let base = random.finish();
    (0..n)
        .map(|i| {
            let b = base.rotate_left(16 * i as u32);
            let host = format!("127.{}.{}.{}", (b >> 16) as u8, (b >> 8) as u8, b as u8 | 1);
            ServerProcess::start_at(memcached, &host, 11211)
        })
        .collect()
}

fn servers_of(instances: &[ServerProcess], weights: &[u32]) -> Vec<Server> {
    instances
        .iter()
        .zip(weights)
        .map(|(s, &w)| Server::new(s.host.clone(), s.port).with_weight(w))
        .collect()
}

fn pylibmc_available() -> bool {
    Command::new("/usr/bin/python3")
        .args(["-c", "import pylibmc"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

const PYLIBMC_STORE: &str = r#"
import sys, pylibmc
servers = sys.argv[1].split(",")
keys = sys.stdin.read().split()
mc = pylibmc.Client(servers, binary=False, behaviors={"ketama_weighted": True})
assert mc.behaviors["ketama_weighted"], mc.behaviors
for key in keys:
    if not mc.set(key, b"1"):
        sys.exit("set failed: " + key)
print(mc.behaviors["hash"], mc.behaviors["distribution"])
"#;

fn store_with_pylibmc(instances: &[ServerProcess], weights: &[u32], keys: &[String]) {
    let spec: Vec<String> = instances
        .iter()
        .zip(weights)
        .map(|(s, w)| format!("{}:{}:{}", s.host, s.port, w))
        .collect();
    let mut child = Command::new("/usr/bin/python3")
        .args(["-c", PYLIBMC_STORE, &spec.join(",")])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), keys.join("\n").as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // libmemcached's ketama_weighted selects MD5 and the weighted consistent (ketama) distribution.
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "md5 consistent weighted"
    );
}

#[test]
fn pylibmc_ketama_weighted_places_like_us() {
    let Some(memcached) = memcached_path() else {
        return require!(false, "memcached");
    };
    require!(pylibmc_available(), "python3-pylibmc");
    let keys = keys();

    // Equal weights and unequal weights, on ephemeral ports (`host:port` point names).
    for weights in [[1, 1, 1, 1, 1], [1, 2, 3, 1, 5]] {
        let instances = local_instances(&memcached, 5);
        store_with_pylibmc(&instances, &weights, &keys);
        let servers = servers_of(&instances, &weights);
        assert_same(
            &landed(&instances, &keys),
            &ours(&servers, Naming::Libmemcached, &keys),
            &keys,
            &format!("pylibmc weights {weights:?}"),
        );
    }

    // Port 11211: libmemcached names the points by host alone.
    let Some(instances) = default_port_instances(&memcached, 3) else {
        eprintln!("port 11211 on random loopback addresses is taken; that case is skipped");
        return;
    };
    let weights = [2, 1, 1];
    store_with_pylibmc(&instances, &weights, &keys);
    let servers = servers_of(&instances, &weights);
    let theirs = landed(&instances, &keys);
    assert_same(
        &theirs,
        &ours(&servers, Naming::Libmemcached, &keys),
        &keys,
        "pylibmc on port 11211",
    );
    // The spymemcached naming would disagree on many keys here.
    let spy = ours(&servers, Naming::Spymemcached, &keys);
    assert!(theirs.iter().zip(&spy).filter(|(a, b)| a != b).count() > KEYS / 10);
}

struct Nutcracker {
    child: Child,
    dir: PathBuf,
    port: u16,
}

impl Drop for Nutcracker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn nutcracker_path() -> Option<PathBuf> {
    ["/usr/sbin/nutcracker", "/usr/bin/nutcracker"]
        .iter()
        .map(PathBuf::from)
        .find(|p| p.exists())
}

fn start_nutcracker(program: &Path, servers: &[String]) -> Nutcracker {
    let mut random = RandomState::new().build_hasher();
    random.write_u32(std::process::id());
    let dir = std::env::temp_dir().join(format!("ferrocache-nutcracker-{:x}", random.finish()));
    std::fs::create_dir_all(&dir).unwrap();
    for _ in 0..5 {
        let port = free_port();
        let conf = format!(
            "pool:\n  listen: 127.0.0.1:{port}\n  hash: md5\n  distribution: ketama\n  \
             timeout: 2000\n  auto_eject_hosts: false\n  servers:\n{}",
            servers
                .iter()
                .map(|s| format!("   - {s}\n"))
                .collect::<String>()
        );
        let conf_path = dir.join("nutcracker.yml");
        std::fs::write(&conf_path, conf).unwrap();
        let mut child = Command::new(program)
            .arg("-c")
            .arg(&conf_path)
            .args(["-a", "127.0.0.1", "-s"])
            .arg(free_port().to_string())
            .arg("-o")
            .arg(dir.join("nutcracker.log"))
            .arg("-p")
            .arg(dir.join("nutcracker.pid"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let up = wait_until(Duration::from_secs(5), || {
            accepts(port) || child.try_wait().ok().flatten().is_some()
        });
        if up && child.try_wait().ok().flatten().is_none() {
            return Nutcracker { child, dir, port };
        }
        let _ = child.kill();
        let _ = child.wait();
    }
    panic!(
        "nutcracker did not start: {}",
        std::fs::read_to_string(dir.join("nutcracker.log")).unwrap_or_default()
    );
}

fn store_through_proxy(proxy: &Nutcracker, keys: &[String]) {
    let client = Client::builder()
        .server(&format!("127.0.0.1:{}", proxy.port))
        .read_timeout(Duration::from_secs(3))
        .build()
        .unwrap();
    for key in keys {
        client.set(key, "1", 0, 0).unwrap();
    }
}

#[test]
fn nutcracker_md5_ketama_places_like_us() {
    let Some(memcached) = memcached_path() else {
        return require!(false, "memcached");
    };
    let Some(nutcracker) = nutcracker_path() else {
        return require!(false, "nutcracker");
    };
    let keys = keys();

    for weights in [[1, 1, 1, 1, 1], [1, 2, 3, 1, 5]] {
        let instances = local_instances(&memcached, 5);
        let spec: Vec<String> = instances
            .iter()
            .zip(weights)
            .map(|(s, w)| format!("{}:{w}", s.address()))
            .collect();
        let proxy = start_nutcracker(&nutcracker, &spec);
        store_through_proxy(&proxy, &keys);
        let servers = servers_of(&instances, &weights);
        assert_same(
            &landed(&instances, &keys),
            &ours(&servers, Naming::Libmemcached, &keys),
            &keys,
            &format!("nutcracker weights {weights:?}"),
        );
    }

    let Some(instances) = default_port_instances(&memcached, 3) else {
        eprintln!("port 11211 on random loopback addresses is taken; that case is skipped");
        return;
    };
    let spec: Vec<String> = instances
        .iter()
        .map(|s| format!("{}:1", s.address()))
        .collect();
    let proxy = start_nutcracker(&nutcracker, &spec);
    store_through_proxy(&proxy, &keys);
    assert_same(
        &landed(&instances, &keys),
        &ours(
            &servers_of(&instances, &[1, 1, 1]),
            Naming::Libmemcached,
            &keys,
        ),
        &keys,
        "nutcracker on port 11211",
    );
}
