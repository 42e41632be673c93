//! The text encoding of a [`Replica`], used between nodes (`cluster sync`)
//! and for the state file. Line-oriented, versioned, and parsed by a pure
//! function; unknown lines are refused so that a future format is never
//! half-understood.
//!
//! ```text
//! ferrocache-cluster 1
//! published <version> <host|ip|port>...
//! base <stamp> <host|ip|port>...
//! max <version>
//! node <epoch> <left 0|1> <join_stamp> <slot> <silent_ms> <host|ip|port>
//! ```

use std::time::Duration;

use super::node::NodeEntry;
use super::state::{Base, Pair, Record, Replica};

const MAGIC: &str = "ferrocache-cluster 1";

/// Largest encoded replica accepted (a few thousand nodes).
pub const MAX_LEN: usize = 1 << 20;

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("cluster state line {line}: {reason}")]
pub struct WireError {
    pub line: usize,
    pub reason: &'static str,
}

pub fn encode(r: &Replica) -> Vec<u8> {
    let mut out = String::with_capacity(128 + 64 * r.records.len());
    out.push_str(MAGIC);
    out.push('\n');
    list(
        &mut out,
        "published",
        r.published.version,
        &r.published.nodes,
    );
    list(&mut out, "base", r.base.stamp, &r.base.nodes);
    out.push_str(&format!("max {}\n", r.max_seen));
    for (rec, silent) in &r.records {
        out.push_str(&format!(
            "node {} {} {} {} {} {}\n",
            rec.epoch,
            u8::from(rec.left),
            rec.join_stamp,
            rec.slot,
            silent.as_millis().min(u128::from(u64::MAX)),
            rec.entry
        ));
    }
    out.into_bytes()
}

fn list(out: &mut String, name: &str, v: u64, nodes: &[NodeEntry]) {
    out.push_str(&format!("{name} {v}"));
    for n in nodes {
        out.push(' ');
        out.push_str(&n.to_string());
    }
    out.push('\n');
}

pub fn decode(bytes: &[u8]) -> Result<Replica, WireError> {
    let err = |line, reason| WireError { line, reason };
    if bytes.len() > MAX_LEN {
        return Err(err(0, "too large"));
    }
    let text = std::str::from_utf8(bytes).map_err(|_| err(0, "not UTF-8"))?;
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, MAGIC)) => {}
        _ => return Err(err(1, "unknown format")),
    }
    let mut r = Replica::default();
    let (mut got_published, mut got_base, mut got_max) = (false, false, false);
    for (no, line) in lines {
        let mut f = line.split(' ');
        let num = |s: Option<&str>| -> Result<u64, WireError> {
            s.and_then(|s| s.parse().ok())
                .filter(|n| *n <= super::state::VERSION_MAX)
                .ok_or(err(no, "bad number"))
        };
        let nodes = |f: std::str::Split<'_, char>| -> Result<Vec<NodeEntry>, WireError> {
            f.map(|t| NodeEntry::parse(t).map_err(|_| err(no, "bad node")))
                .collect()
        };
        match f.next() {
            Some("published") => {
                let version = num(f.next())?;
                r.published = Pair {
                    version,
                    nodes: nodes(f)?,
                };
                got_published = true;
            }
            Some("base") => {
                let stamp = num(f.next())?;
                r.base = Base {
                    stamp,
                    nodes: nodes(f)?,
                };
                got_base = true;
            }
            Some("max") => {
                r.max_seen = num(f.next())?;
                got_max = true;
            }
            Some("node") => {
                let epoch = num(f.next())?;
                let left = match f.next() {
                    Some("0") => false,
                    Some("1") => true,
                    _ => return Err(err(no, "bad flag")),
                };
                let join_stamp = num(f.next())?;
                let slot = u16::try_from(num(f.next())?)
                    .ok()
                    .filter(|s| u64::from(*s) < super::state::SLOTS)
                    .ok_or(err(no, "bad slot"))?;
                let silent = Duration::from_millis(num(f.next())?);
                let entry = f
                    .next()
                    .and_then(|t| NodeEntry::parse(t).ok())
                    .ok_or(err(no, "bad node"))?;
                if f.next().is_some() {
                    return Err(err(no, "trailing fields"));
                }
                r.records.push((
                    Record {
                        epoch,
                        left,
                        join_stamp,
                        slot,
                        entry,
                    },
                    silent,
                ));
            }
            _ => return Err(err(no, "unknown line")),
        }
    }
    if !(got_published && got_base && got_max) {
        return Err(err(0, "missing lines"));
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let e = |s: &str| NodeEntry::parse(s).unwrap();
        let r = Replica {
            published: Pair {
                version: 1417,
                nodes: vec![e("a|127.0.0.1|1"), e("b||2")],
            },
            base: Base {
                stamp: 0,
                nodes: vec![],
            },
            max_seen: 2000,
            records: vec![(
                Record {
                    epoch: 7,
                    left: true,
                    join_stamp: 1417,
                    slot: 417,
                    entry: e("b||2"),
                },
                Duration::from_millis(250),
            )],
        };
        let bytes = encode(&r);
        assert_eq!(decode(&bytes), Ok(r));
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            &b""[..],
            b"hello\n",
            b"ferrocache-cluster 1\n",
            b"ferrocache-cluster 1\npublished x\nbase 0\nmax 0\n",
            b"ferrocache-cluster 1\npublished 1\nbase 0\nmax 0\nnode 1 2 0 0 0 a||1\n",
            b"ferrocache-cluster 1\npublished 1\nbase 0\nmax 0\nnode 1 0 0 0 0 a|b|1\n",
            b"ferrocache-cluster 1\npublished 1\nbase 0\nmax 0\nwhat\n",
        ] {
            assert!(decode(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
    }
}
