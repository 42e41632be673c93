//! The node file (`--cluster-file`): one `host|ip|port` per line, `#`
//! comments, blank lines ignored. See `conf/cluster-nodes.txt`.
//!
//! A pure parser: the caller reads the file and decides what to do with an
//! error (at start-up: refuse to start; later: log it and keep the last good
//! list). An empty file is an error, because a half-written file must not
//! empty the cluster.

use super::node::{sort_unique, ListError, NodeEntry, NodeError};

/// A refused node file, with the 1-based line at fault (0 when the fault is
/// the file as a whole).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct NodeFileError {
    pub line: usize,
    pub reason: String,
}

/// Parses the text of a node file into the published order.
pub fn parse(text: &str) -> Result<Vec<NodeEntry>, NodeFileError> {
    let mut nodes: Vec<(usize, NodeEntry)> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or("").trim();
        if line.is_empty() {
            continue;
        }
        let err = |e: NodeError| NodeFileError {
            line: i + 1,
            reason: e.to_string(),
        };
        if line.split_whitespace().count() > 1 {
            return Err(err(NodeError::Shape(line.to_string())));
        }
        nodes.push((i + 1, NodeEntry::parse(line).map_err(err)?));
    }
    let mut seen = std::collections::HashSet::new();
    for (line, n) in &nodes {
        if !seen.insert(n.endpoint()) {
            return Err(NodeFileError {
                line: *line,
                reason: ListError::Duplicate(n.to_string()).to_string(),
            });
        }
    }
    sort_unique(nodes.into_iter().map(|(_, n)| n).collect()).map_err(|e| NodeFileError {
        line: 0,
        reason: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_blank_lines_and_order() {
        let text = "# cluster\n\n  b|10.0.0.2|11211  # second\r\n1a||11211\na|10.0.0.1|11211\n";
        let nodes = parse(text).unwrap();
        let s: Vec<String> = nodes.iter().map(|n| n.to_string()).collect();
        assert_eq!(s, ["1a||11211", "a|10.0.0.1|11211", "b|10.0.0.2|11211"]);
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("a|1.1.1.1|1\nbroken\n", 2),
            ("a|1.1.1.1|70000\n", 1),
            ("a|1.1.1.1|1\n\nb|1.1.1.1|1\n", 3),
            ("a|1.1.1.1|1 b|1.1.1.2|1\n", 1),
            ("a|not-ip|1\n", 1),
            ("|1.1.1.1|1\n", 1),
            ("# nothing\n", 0),
            ("", 0),
        ];
        for (text, line) in cases {
            let e = parse(text).unwrap_err();
            assert_eq!(e.line, line, "{text:?}: {e}");
        }
    }
}
