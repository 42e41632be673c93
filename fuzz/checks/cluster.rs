//! The server's cluster parsers and the `cluster sync` exchange: the node
//! file (`nodefile::parse`), node lists (`node::parse_list`), the
//! `config set cluster` payload (`payload::parse`), and the state a peer
//! sends (`wire::decode`), which is then merged into a node's membership
//! state the way `cluster sync` does. Anyone who reaches the port as a
//! known peer can send that state, so the merge must survive anything the
//! decoder accepts.
//!
//! Input: one selector byte (which parser, and for the merge: whether the
//! node has booted, how, and how much time has passed), then the text.
//!
//! Checks, besides "no panic": accepted lists are non-empty, sorted,
//! without duplicate endpoints, and survive a render/parse round trip;
//! decoded state re-encodes to itself; a merge never lowers the published
//! version, never publishes an empty list, and its result re-encodes and
//! decodes to the same state.
//!
//! Shared by the fuzz target `cluster` and by `tests/fuzz_regressions.rs`,
//! which replays the inputs under `fuzz/regressions/cluster/`.

use std::time::{Duration, Instant};

use ferrocache::cluster::node::{parse_list, NodeEntry};
use ferrocache::cluster::state::State;
use ferrocache::cluster::{nodefile, payload, wire};

/// The node doing the merge: its endpoint is in the dictionary, so inputs
/// can speak about it.
fn me() -> NodeEntry {
    NodeEntry::parse("a|127.0.0.1|11211").unwrap()
}

fn check_list(nodes: &[NodeEntry]) {
    assert!(!nodes.is_empty());
    assert!(
        nodes.windows(2).all(|w| w[0] < w[1]),
        "not sorted: {nodes:?}"
    );
    let mut eps: Vec<_> = nodes.iter().map(|n| n.endpoint()).collect();
    eps.sort();
    eps.dedup();
    assert_eq!(eps.len(), nodes.len(), "duplicate endpoints: {nodes:?}");
    for n in nodes {
        assert_eq!(NodeEntry::parse(&n.to_string()).as_ref(), Ok(n));
    }
}

fn merge(sel: u8, bytes: &[u8]) {
    let Ok(remote) = wire::decode(bytes) else {
        return;
    };
    assert_eq!(wire::decode(&wire::encode(&remote)), Ok(remote.clone()));
    let t0 = Instant::now();
    let timeout = (sel & 1 == 0).then_some(Duration::from_secs(5));
    let mut s = State::new(me(), 1_700_000_000_000, timeout, t0);
    // Unbooted (learning at start-up), booted standalone, from a node
    // file, or joining.
    match (sel >> 1) & 3 {
        0 => {}
        1 => {
            let _ = s.boot(None, false, t0);
        }
        2 => {
            let list = vec![me(), NodeEntry::parse("b|127.0.0.2|11211").unwrap()];
            let _ = s.boot(Some(list), false, t0);
        }
        _ => {
            let _ = s.boot(None, true, t0);
        }
    }
    let before = s.published().version;
    let now = t0 + Duration::from_secs(u64::from(sel >> 3) * 7);
    let _ = s.merge(remote.clone(), now);
    let after = s.published().version;
    assert!(after >= before, "version went from {before} to {after}");
    if after > 0 {
        assert!(!s.published().nodes.is_empty());
    }
    let mine = s.replica(now);
    assert_eq!(wire::decode(&wire::encode(&mine)), Ok(mine));
    // The same state again, and time passing, keep the rules too.
    let _ = s.merge(remote, now);
    assert!(s.published().version >= after);
    let _ = s.republish(now + Duration::from_secs(3600), None);
    assert!(s.published().version >= after);
}

/// Runs one input; panics on a violated check.
pub fn run(data: &[u8]) {
    let Some((&sel, bytes)) = data.split_first() else {
        return;
    };
    match sel % 4 {
        0 => {
            let text = String::from_utf8_lossy(bytes);
            if let Ok(nodes) = nodefile::parse(&text) {
                check_list(&nodes);
                let file: String = nodes.iter().map(|n| format!("{n}\n")).collect();
                assert_eq!(nodefile::parse(&file), Ok(nodes));
            }
        }
        1 => {
            let text = String::from_utf8_lossy(bytes);
            if let Ok(nodes) = parse_list(&text) {
                check_list(&nodes);
                let line: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
                assert_eq!(parse_list(&line.join(" ")), Ok(nodes));
            }
        }
        2 => {
            if let Ok((version, nodes)) = payload::parse(bytes) {
                assert!(version > 0);
                check_list(&nodes);
                let again = payload::parse(&payload::render(version, &nodes));
                assert_eq!(again, Ok((version, nodes)));
            }
        }
        _ => merge(sel / 4, bytes),
    }
}
