//! The `ferrocache-cli` binary end to end.

mod support;

use std::process::{Command, Output};

use support::{config_reply, entry, memcached_path, Action, Responder, ServerProcess};

fn cli(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_ferrocache-cli"))
        .args(["--timeout-ms", "500"])
        .args(args)
        .output()
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

#[test]
fn ring_explains_placement_per_naming_mode() {
    let servers = "127.0.0.1:11211,127.0.0.2:11211,127.0.0.3:11211";
    let lib = stdout(&cli(&["--servers", servers, "ring", "foo", "session:abc"]));
    assert!(lib.contains("key foo\n  hash   3675831724"), "{lib}");
    assert!(lib.contains("server 127.0.0.1:11211 (its points hash \"127.0.0.1-<i>\")"));
    assert!(lib.contains("points >= hash, wrapping; 3 servers"));
    assert!(lib.contains("key session:abc"));
    assert!(lib.contains("server 127.0.0.3:11211"));
    let spy = stdout(&cli(&[
        "--servers",
        servers,
        "--naming",
        "spymemcached",
        "ring",
        "foo",
    ]));
    assert!(spy.contains("server 127.0.0.3:11211 (its points hash \"127.0.0.3:11211-<i>\")"));
}

#[test]
fn discover_prints_version_and_nodes() {
    let reply = config_reply(4, &[entry(39211), "cache-1.example||39212".into()]);
    let seed = Responder::start(move |_| Action::Send(reply.clone()));
    let out = stdout(&cli(&["--seed", &seed.address(), "discover"]));
    assert_eq!(
        out,
        format!(
            "endpoint {} (config get cluster)\nversion 4\nnode localhost|127.0.0.1|39211\nnode cache-1.example||39212\n",
            seed.address()
        )
    );
    // Through the client: the node list and its health.
    let out = stdout(&cli(&["--seed", &seed.address(), "nodes"]));
    assert!(
        out.starts_with("config version 4\nlocalhost:39211 127.0.0.1 Up\n"),
        "{out}"
    );

    let broken =
        Responder::start(|_| Action::Send(b"CONFIG cluster 0 5\r\n1\n\r\nEND\r\n".to_vec()));
    let failed = cli(&["--seed", &broken.address(), "discover"]);
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("bad cluster configuration"));
}

#[test]
fn get_set_delete_stats() {
    let Some(path) = memcached_path() else {
        return require!(false, "memcached");
    };
    let nodes: Vec<ServerProcess> = (0..2).map(|_| ServerProcess::start(&path)).collect();
    let list = nodes
        .iter()
        .map(ServerProcess::address)
        .collect::<Vec<_>>()
        .join(",");
    let servers = ["--servers", list.as_str()];
    let run = |args: &[&str]| cli(&[&servers[..], args].concat());

    stdout(&run(&["set", "greeting", "hello world", "--flags", "7"]));
    assert_eq!(stdout(&run(&["get", "greeting"])), "hello world");
    stdout(&run(&["set", "other", "x"]));
    assert_eq!(
        stdout(&run(&["get", "greeting", "other"])),
        "greeting 7 11\nhello world\nother 0 1\nx\n"
    );
    let stats = stdout(&run(&["stats"]));
    for node in &nodes {
        assert!(
            stats.contains(&format!("{} curr_items ", node.address())),
            "{stats}"
        );
    }
    stdout(&run(&["delete", "greeting"]));
    let miss = run(&["get", "greeting"]);
    assert!(!miss.status.success());
    assert!(String::from_utf8_lossy(&miss.stderr).contains("not found"));
    let gone = run(&["delete", "greeting"]);
    assert!(String::from_utf8_lossy(&gone.stderr).contains("not found"));
}

/// A CA and a server certificate for 127.0.0.1, as PEM files in `dir`: (CA, certificate, key).
fn certificates(dir: &std::path::Path, ca_name: &str) -> (String, String, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.distinguished_name.push(DnType::CommonName, ca_name);
    let ca = params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let leaf = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .unwrap()
        .signed_by(&key, &ca, &ca_key)
        .unwrap();
    let write = |name: &str, text: String| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    (
        write(&format!("{ca_name}.pem"), ca.pem()),
        write(&format!("{ca_name}-server.pem"), leaf.pem()),
        write(&format!("{ca_name}-server.key"), key.serialize_pem()),
    )
}

#[test]
fn tls_and_login_flags() {
    let Some(path) = memcached_path() else {
        return require!(false, "memcached");
    };
    let dir = std::env::temp_dir().join(format!("ferrocache-cli-tls-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca, cert, key) = certificates(&dir, "ca");
    let (other_ca, _, _) = certificates(&dir, "other");
    let args = [
        "-Z".to_string(),
        "-o".to_string(),
        format!("ssl_chain_cert={cert},ssl_key={key}"),
    ];
    let server = ServerProcess::start_with(&path, "127.0.0.1", support::free_port(), &args)
        .expect("memcached -Z");
    let address = server.address();
    let tls = ["--servers", address.as_str(), "--tls", "--ca", ca.as_str()];
    let run = |args: &[&str]| cli(&[&tls[..], args].concat());

    stdout(&run(&["set", "k", "over tls"]));
    assert_eq!(stdout(&run(&["get", "k"])), "over tls");
    assert_eq!(stdout(&run(&["--binary", "get", "k"])), "over tls");
    stdout(&run(&["--binary", "delete", "k"]));
    assert!(!run(&["get", "k"]).status.success());

    // An untrusted server certificate, and TLS settings that are incomplete.
    let untrusted = cli(&["--servers", &address, "--ca", &other_ca, "get", "k"]);
    assert!(!untrusted.status.success());
    let why = String::from_utf8_lossy(&untrusted.stderr);
    assert!(
        why.contains("TLS with 127.0.0.1") && why.contains("UnknownIssuer"),
        "{why}"
    );
    let no_ca = cli(&["--servers", &address, "--tls", "get", "k"]);
    assert!(String::from_utf8_lossy(&no_ca.stderr).contains("--tls needs --ca"));

    // A login against a server without SASL: refused, and the password is not shown.
    let password = dir.join("password");
    std::fs::write(&password, "pw-in-a-file\n").unwrap();
    let password = password.display().to_string();
    let login = run(&["--user", "web", "--password-file", &password, "get", "k"]);
    assert!(!login.status.success());
    let why = String::from_utf8_lossy(&login.stderr);
    assert!(why.contains("does not offer SASL"), "{why}");
    assert!(!why.contains("pw-in-a-file"));
    let no_password = run(&["--user", "web", "get", "k"]);
    assert!(String::from_utf8_lossy(&no_password.stderr).contains("--user needs --password"));
    let _ = std::fs::remove_dir_all(&dir);
}
