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
