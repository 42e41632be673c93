//! Cluster auto discovery, one node's view: the exact bytes of the
//! configuration endpoint, the node file, `config set|delete cluster` and
//! the refusals of bad input and unauthorised clients. Multi-node
//! membership (join, leave, failure, restart, concurrency) is in
//! `cluster_membership.rs`.

mod cluster_support;
mod common;

use std::time::Duration;

use cluster_support::*;

const SECOND: Duration = Duration::from_secs(1);

/// Three nodes started from one node file.
fn file_cluster(dir: &TempDir, extra: &[&str]) -> (Vec<Node>, std::path::PathBuf) {
    let file = dir.path("nodes");
    let mut nodes: Vec<Node> = (1..=3)
        .map(|i| Node::new(&format!("127.0.0.{i}"), extra))
        .collect();
    let text: String = nodes.iter().map(|n| n.entry() + "\n").collect();
    write_atomic(&file, &format!("# test cluster\n{text}"));
    for n in &mut nodes {
        n.args
            .extend(["--cluster-file".into(), file.display().to_string()]);
        n.start();
    }
    (nodes, file)
}

fn entries(nodes: &[Node]) -> String {
    list(&nodes.iter().map(|n| n.entry()).collect::<Vec<_>>())
}

#[test]
fn every_node_serves_the_same_exact_bytes() {
    let dir = TempDir::new("cluster-bytes");
    let (nodes, _) = file_cluster(&dir, &[]);
    let want = config_reply(1, &entries(&nodes));
    for n in &nodes {
        // As clients send it: CRLF, bare LF, and a trailing space.
        for req in [
            &b"config get cluster\r\n"[..],
            b"config get cluster\n",
            b"config get cluster \r\n",
        ] {
            assert_eq!(
                String::from_utf8_lossy(&n.ask(req)),
                String::from_utf8_lossy(&want),
                "{req:?}"
            );
        }
        let payload = format!("1\n{}\n", entries(&nodes));
        let legacy = format!(
            "VALUE AmazonElastiCache:cluster 0 {}\r\n{payload}\r\nEND\r\n",
            payload.len()
        );
        assert_eq!(
            String::from_utf8_lossy(&n.ask(b"get AmazonElastiCache:cluster\r\n")),
            legacy
        );
        assert_eq!(n.ask(b"config list\r\n"), b"ERROR\r\n");
        assert_eq!(n.ask(b"config get nothing\r\n"), b"ERROR\r\n");
        let version = String::from_utf8(n.ask(b"version\n")).unwrap();
        let v: Vec<u32> = version
            .trim_start_matches("VERSION ")
            .trim_end()
            .split('.')
            .map(|p| p.parse().expect("numeric version"))
            .collect();
        assert!(v >= vec![1, 4, 14], "{version}");
        let stats = String::from_utf8(n.ask(b"stats\r\n")).unwrap();
        assert!(stats.contains("STAT cluster_version 1\r\n"), "{stats}");
        assert!(stats.contains("STAT cluster_members 3\r\n"), "{stats}");
    }
}

#[test]
fn payload_shapes_clients_must_parse() {
    let dir = TempDir::new("cluster-shapes");
    let (nodes, _) = file_cluster(&dir, &[]);
    // Digit-leading hostnames are valid, a missing IP keeps both pipes.
    let list = "1abc.example|10.0.0.1|11211 2node||11212 b.example|10.0.0.3|1";
    assert_eq!(nodes[0].ask(&config_set(7000, list)), b"STORED\r\n");
    let (v, got) = nodes[0].config().unwrap();
    assert!(v >= 7000);
    assert_eq!(got, list);
    let payload = format!("{v}\n{list}\n");
    assert_eq!(
        nodes[0].ask(b"config get cluster\r\n"),
        config_reply(v, list),
        "len {}",
        payload.len()
    );
}

#[test]
fn node_file_edits_reach_every_node_and_bad_files_are_ignored() {
    let dir = TempDir::new("cluster-file");
    let (nodes, file) = file_cluster(&dir, &[]);
    let refs: Vec<&Node> = nodes.iter().collect();
    let mut watch = Watch::default();
    watch.converge(&refs, Some(&entries(&nodes)), SECOND);

    // Add a node that is not running: it stays listed (only nodes that
    // have been heard can be declared failed).
    let mut lines: Vec<String> = nodes.iter().map(|n| n.entry()).collect();
    lines.push("0spare|127.0.0.9|11211".into());
    write_atomic(&file, &(lines.join("\n") + "\n"));
    let v1 = watch.converge(&refs, Some(&list(&lines)), 5 * SECOND);
    assert!(v1 > 1);

    // Each kind of bad file is logged and changes nothing.
    let bad_files = [
        "localhost|127.0.0.1|1\nnot a node\n",
        "localhost|127.0.0.1|1\nlocalhost|127.0.0.1|1\n",
        "localhost|127.0.0.1|70000\n",
        "localhost|127.0.0.1|0\n",
        "localhost|999.1.1.1|5\n",
        "|127.0.0.1|5\n",
        "# emptied\n",
        "",
    ];
    for (i, bad) in bad_files.iter().enumerate() {
        write_atomic(&file, bad);
        assert!(
            common::wait_until(5 * SECOND, || {
                nodes
                    .iter()
                    .all(|n| n.stderr().matches("keeping the last good list").count() > i)
            }),
            "bad file {bad:?} not reported: {}",
            nodes[0].stderr()
        );
        for n in &nodes {
            assert_eq!(watch.observe(n), Some((v1, list(&lines))), "after {bad:?}");
        }
    }

    // Empty IP fields and digit-leading names are fine.
    lines.push("9lives||11300".into());
    write_atomic(&file, &(lines.join("\n") + "\n"));
    let v2 = watch.converge(&refs, Some(&list(&lines)), 5 * SECOND);
    assert!(v2 > v1);
}

#[test]
fn config_set_and_delete_reach_every_node_and_bad_input_changes_nothing() {
    let dir = TempDir::new("cluster-set");
    let (nodes, _) = file_cluster(&dir, &[]);
    let refs: Vec<&Node> = nodes.iter().collect();
    let mut watch = Watch::default();
    watch.converge(&refs, None, SECOND);

    let new_list = format!(
        "{} {} other|10.1.1.1|11211",
        nodes[0].entry(),
        nodes[1].entry()
    );
    assert_eq!(nodes[1].ask(&config_set(2, &new_list)), b"STORED\r\n");
    let v = watch.converge(&refs, Some(&new_list), 2 * SECOND);
    assert!(v >= 2);

    let stable = Some((v, new_list.clone()));
    let refused: Vec<(Vec<u8>, &str)> = vec![
        (config_set(v, &new_list), "CLIENT_ERROR version"),
        (config_set(1, &new_list), "CLIENT_ERROR version"),
        (
            config_set(v + 10_000, "a|1.2.3.4"),
            "CLIENT_ERROR bad cluster configuration",
        ),
        (
            config_set(v + 10_000, "a||70000"),
            "CLIENT_ERROR bad cluster configuration",
        ),
        (
            config_set(v + 10_000, "a|x|1"),
            "CLIENT_ERROR bad cluster configuration",
        ),
        (
            config_set(v + 10_000, "a|1.2.3.4|1 b|1.2.3.4|1"),
            "CLIENT_ERROR bad cluster configuration: duplicate node",
        ),
        (
            config_set(v + 10_000, ""),
            "CLIENT_ERROR bad cluster configuration",
        ),
        (
            b"config set cluster 0 5\r\n1\na||1\n\r\n".to_vec(),
            "CLIENT_ERROR bad data chunk",
        ),
        (
            b"config set cluster 0 x\r\n".to_vec(),
            "CLIENT_ERROR bad command line format",
        ),
    ];
    for (req, want) in refused {
        let got = String::from_utf8(nodes[2].ask(&req)).unwrap();
        assert!(
            got.starts_with(want),
            "{:?} -> {got:?}",
            String::from_utf8_lossy(&req)
        );
        for n in &nodes {
            assert_eq!(watch.observe(n), stable);
        }
    }

    // Delete: the list falls back to the nodes that run.
    assert_eq!(nodes[0].ask(b"config delete cluster\r\n"), b"DELETED\r\n");
    let after = watch.converge(&refs, Some(&entries(&nodes)), 2 * SECOND);
    assert!(after > v);
    assert_eq!(nodes[2].ask(b"config delete cluster\r\n"), b"NOT_FOUND\r\n");
}

#[test]
fn ordinary_clients_cannot_change_the_list() {
    let dir = TempDir::new("cluster-auth");
    let (nodes, _) = file_cluster(&dir, &["--cluster-admin", "127.0.0.250"]);
    let refs: Vec<&Node> = nodes.iter().collect();
    let mut watch = Watch::default();
    let v = watch.converge(&refs, Some(&entries(&nodes)), SECOND);
    let set = config_set(v + 1, "evil|10.6.6.6|11211");
    for n in &nodes {
        let got = String::from_utf8(n.ask(&set)).unwrap();
        assert_eq!(
            got,
            "CLIENT_ERROR cluster configuration changes are not allowed from this client\r\n"
        );
        let got = String::from_utf8(n.ask(b"config delete cluster\r\n")).unwrap();
        assert!(got.starts_with("CLIENT_ERROR cluster configuration changes are not allowed"));
    }
    // Nor through the node-to-node exchange, from an address that is not a
    // node's.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(
        &"127.0.0.77:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    sock.connect(&nodes[0].addr().into()).unwrap();
    let mut s: std::net::TcpStream = sock.into();
    let data = b"ferrocache-cluster 1\npublished 999999 evil|10.6.6.6|11211\nbase 999999 evil|10.6.6.6|11211\nmax 999999\n";
    use std::io::{Read, Write};
    s.write_all(format!("cluster sync {}\r\n", data.len()).as_bytes())
        .unwrap();
    s.write_all(data).unwrap();
    s.write_all(b"\r\n").unwrap();
    let mut buf = [0u8; 256];
    let n = s.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("CLIENT_ERROR"));
    // The list is unchanged right after the refusal. Had any node taken
    // version 999999, the administrator's v + 1 below could never converge.
    for n in &nodes {
        assert_eq!(watch.observe(n), Some((v, entries(&nodes))));
    }
    // The administrator's address is allowed.
    let sock = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    sock.bind(
        &"127.0.0.250:0"
            .parse::<std::net::SocketAddr>()
            .unwrap()
            .into(),
    )
    .unwrap();
    sock.connect(&nodes[0].addr().into()).unwrap();
    let mut s: std::net::TcpStream = sock.into();
    s.write_all(&config_set(v + 1, &entries(&nodes[..2])))
        .unwrap();
    let n = s.read(&mut buf).unwrap();
    assert_eq!(&buf[..n], b"STORED\r\n");
    watch.converge(&refs, Some(&entries(&nodes[..2])), 2 * SECOND);
}

#[test]
fn a_bad_node_file_or_flag_stops_the_node_at_start_up() {
    let dir = TempDir::new("cluster-badstart");
    let file = dir.path("nodes");
    write_atomic(
        &file,
        "localhost|127.0.0.1|11211\nlocalhost|127.0.0.1|99999\n",
    );
    let cases: Vec<(Vec<String>, &str)> = vec![
        (
            vec!["--cluster-file".into(), file.display().to_string()],
            "line 2: 'localhost|127.0.0.1|99999': port must be a number from 1 to 65535",
        ),
        (
            vec![
                "--cluster-file".into(),
                dir.path("missing").display().to_string(),
            ],
            "--cluster-file",
        ),
        (
            vec!["--join".into(), "nohost".into()],
            "--join: 'nohost' is not HOST:PORT",
        ),
        (
            vec!["--cluster-admin".into(), "10.0.0.0/99".into()],
            "--cluster-admin",
        ),
    ];
    for (args, want) in cases {
        let mut cmd = std::process::Command::new(common::ferrocache_bin());
        cmd.args(["-p", "0", "-l", "127.0.0.1"]).args(&args);
        let (status, _, stderr) = common::run_with_timeout(cmd, Duration::from_secs(10));
        assert!(!status.success(), "{args:?} started");
        assert!(stderr.contains(want), "{args:?}: {stderr}");
    }
}
