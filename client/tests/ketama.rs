//! Placement must agree with the reference implementations: every vector here was produced by
//! libmemcached, twemproxy or spymemcached themselves.

use ferrocache_client::ring::{key_hash, weighted_points, Naming, Ring, Server};

fn local(ports: std::ops::RangeInclusive<u16>) -> Vec<Server> {
    ports.map(|p| Server::new("127.0.0.1", p)).collect()
}

fn spy_four() -> (Vec<Server>, Ring) {
    let servers = local(10000..=10003);
    let ring = Ring::new(&servers, Naming::Spymemcached).unwrap();
    (servers, ring)
}

#[test]
fn key_hashes() {
    assert_eq!(key_hash("26"), 3_979_113_294);
    assert_eq!(key_hash("1404"), 2_065_000_984);
    assert_eq!(key_hash("4177"), 1_125_759_251);
}

#[test]
fn spymemcached_four_servers() {
    let (servers, ring) = spy_four();
    assert_eq!(ring.points().len(), 4 * 160);
    assert_eq!(ring.points().last().unwrap().0, 4_294_887_009);

    let port = |key: &str| servers[ring.lookup(key)].port;
    assert_eq!(port("dustin"), 10000);
    assert_eq!(port("noelani"), 10002);
    assert_eq!(port("some other key"), 10000);
    for key in ["V5XS8C8N", "8KR2DKR2", "L9KH6X4X"] {
        // These hash above the highest point and wrap to the lowest.
        assert!(key_hash(key) > 4_294_887_009, "{key}");
        assert_eq!(port(key), 10003, "{key}");
    }
}

#[test]
fn spymemcached_redistribute_order() {
    let (_, ring) = spy_four();
    let order = |key: &str| ring.redistribute(key.as_bytes()).collect::<Vec<_>>();
    assert_eq!(order("dustin"), [0, 2, 1, 2, 3, 2, 0]);
    assert_eq!(order("noelani"), [2, 1, 1, 3, 2, 2, 3]);
}

#[test]
fn redistribute_steps_add_prefixed_key_hashes() {
    let (_, ring) = spy_four();
    let mut hash = key_hash("dustin");
    let mut expected = Vec::new();
    for t in 0..7 {
        expected.push(ring.lookup_hash(hash));
        hash = hash.wrapping_add(key_hash(format!("{t}dustin")));
    }
    assert_eq!(ring.redistribute(b"dustin").collect::<Vec<_>>(), expected);
    assert_eq!(ring.redistribute(b"dustin").len(), 7);
}

const WEIGHTS: [u32; 8] = [600, 300, 200, 350, 1000, 800, 950, 100];

fn weighted_servers() -> Vec<Server> {
    WEIGHTS
        .iter()
        .enumerate()
        .map(|(i, &w)| Server::new(format!("10.0.1.{}", i + 1), 11211).with_weight(w))
        .collect()
}

#[test]
fn weighted_point_counts() {
    let total: u64 = WEIGHTS.iter().map(|&w| u64::from(w)).sum();
    assert_eq!(total, 4300);
    let counts: Vec<u32> = WEIGHTS
        .iter()
        .map(|&w| weighted_points(w, total, WEIGHTS.len()))
        .collect();
    assert_eq!(counts, [176, 88, 56, 104, 296, 236, 280, 28]);

    let ring = Ring::new(&weighted_servers(), Naming::Libmemcached).unwrap();
    assert_eq!(ring.points().len(), counts.iter().sum::<u32>() as usize);
    for (server, &count) in counts.iter().enumerate() {
        let on_ring = ring.points().iter().filter(|p| p.1 as usize == server);
        assert_eq!(on_ring.count(), count as usize, "server {server}");
    }
}

#[test]
fn equal_weights_points_follow_f32_rounding() {
    // With equal weights the formula is 160 up to float rounding; the C and Java code round in
    // f32, which lands just below 40 digests for some server counts (25 is the first).
    for n in 1..=24 {
        assert_eq!(weighted_points(1, n as u64, n), 160, "{n} servers");
    }
    for n in [25, 47, 50, 100] {
        assert_eq!(weighted_points(1, n as u64, n), 156, "{n} servers");
    }
    let servers: Vec<Server> = (0..25)
        .map(|i| Server::new("10.0.0.1", 20000 + i))
        .collect();
    let lib = Ring::new(&servers, Naming::Libmemcached).unwrap();
    assert_eq!(lib.points().len(), 25 * 156);
    // spymemcached without weights always uses 160.
    let spy = Ring::new(&servers, Naming::Spymemcached).unwrap();
    assert_eq!(spy.points().len(), 25 * 160);
}

#[test]
fn libmemcached_weighted_vectors() {
    let servers = weighted_servers();
    let ring = Ring::new(&servers, Naming::Libmemcached).unwrap();
    let vectors: [(&str, u32, u32, &str); 6] = [
        ("SVa_]_V41)", 443_691_461, 445_379_617, "10.0.1.7"),
        ("30C1*Z*S/_", 1_473_165_754, 1_480_075_959, "10.0.1.2"),
        ("ERR:EC58G>", 2_148_406_511, 2_168_579_133, "10.0.1.7"),
        ("1I=cTMNTKF", 2_882_686_667, 2_885_206_587, "10.0.1.5"),
        ("/XLN0@+36;", 1_623_269_830, 1_627_683_651, "10.0.1.1"),
        ("726bW=9*a4", 4_213_440_020, 4_213_950_705, "10.0.1.7"),
    ];
    for (key, hash, point, host) in vectors {
        assert_eq!(key_hash(key), hash, "{key}");
        let at = ring.points().partition_point(|p| p.0 < hash);
        assert_eq!(ring.points()[at].0, point, "{key}");
        assert_eq!(servers[ring.lookup(key)].host, host, "{key}");
    }
}

#[test]
fn three_servers_all_profiles_agree() {
    let servers = local(39211..=39213);
    let expected = [39212, 39213, 39213, 39212, 39212, 39211, 39212, 39211];
    for naming in [Naming::Libmemcached, Naming::Spymemcached] {
        let ring = Ring::new(&servers, naming).unwrap();
        for (i, &port) in expected.iter().enumerate() {
            let key = format!("key{i}");
            assert_eq!(servers[ring.lookup(&key)].port, port, "{key} {naming:?}");
        }
    }
}

#[test]
fn default_port_naming_modes_disagree() {
    let servers: Vec<Server> = (1..=3)
        .map(|i| Server::new(format!("127.0.0.{i}"), 11211))
        .collect();
    let lib = Ring::new(&servers, Naming::Libmemcached).unwrap();
    let spy = Ring::new(&servers, Naming::Spymemcached).unwrap();
    let host = |ring: &Ring, key: &str| servers[ring.lookup(key)].host.clone();
    for (key, lib_host, spy_host) in [
        ("foo", "127.0.0.1", "127.0.0.3"),
        ("baz", "127.0.0.2", "127.0.0.3"),
        ("session:abc", "127.0.0.3", "127.0.0.1"),
    ] {
        assert_eq!(host(&lib, key), lib_host, "{key} libmemcached");
        assert_eq!(host(&spy, key), spy_host, "{key} spymemcached");
    }
}

// Consistency properties: membership changes move only the keys they must.

fn owners(servers: &[Server], naming: Naming, keys: &[String]) -> Vec<String> {
    let ring = Ring::new(servers, naming).unwrap();
    keys.iter()
        .map(|k| servers[ring.lookup(k)].to_string())
        .collect()
}

fn keys() -> Vec<String> {
    (0..10_000).map(|i| format!("user:{i}:profile")).collect()
}

#[test]
fn adding_a_fourth_server_moves_about_a_quarter() {
    let keys = keys();
    let three = local(39211..=39213);
    let four = local(39211..=39214);
    for naming in [Naming::Libmemcached, Naming::Spymemcached] {
        let before = owners(&three, naming, &keys);
        let after = owners(&four, naming, &keys);
        let mut moved = 0;
        for (old, new) in before.iter().zip(&after) {
            if old != new {
                // A key only ever moves to the new server.
                assert_eq!(new, "127.0.0.1:39214");
                moved += 1;
            }
        }
        let share = moved as f64 / keys.len() as f64;
        assert!((0.15..0.35).contains(&share), "{naming:?}: {share}");
    }
}

#[test]
fn removing_a_server_moves_only_its_keys() {
    let keys = keys();
    let four = local(39211..=39214);
    let without_second: Vec<Server> = four.iter().filter(|s| s.port != 39212).cloned().collect();
    for naming in [Naming::Libmemcached, Naming::Spymemcached] {
        let before = owners(&four, naming, &keys);
        let after = owners(&without_second, naming, &keys);
        let mut moved = 0;
        for (old, new) in before.iter().zip(&after) {
            if old == "127.0.0.1:39212" {
                moved += 1;
            } else {
                assert_eq!(old, new, "{naming:?}");
            }
        }
        assert!(moved > 0);
    }
}
