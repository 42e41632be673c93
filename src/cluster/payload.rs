//! The configuration payload served by `config get cluster`:
//!
//! ```text
//! <version>\n
//! <host>|<ip>|<port> <host>|<ip>|<port> ...\n
//! ```
//!
//! `render` is what every node publishes; `parse` reads what an administrator
//! sends with `config set cluster`. Both are pure and fuzzable.

use super::node::{parse_list, ListError, NodeEntry};
use super::state::VERSION_MAX;

/// Renders the payload: version line, nodes separated by single spaces, and
/// the mandatory trailing `\n` (some clients hang without it).
pub fn render(version: u64, nodes: &[NodeEntry]) -> Vec<u8> {
    let mut out = format!("{version}\n");
    for (i, n) in nodes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        out.push_str(&n.to_string());
    }
    out.push('\n');
    out.into_bytes()
}

/// Why a `config set cluster` payload was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("payload is not UTF-8")]
    NotText,
    #[error("payload must be '<version>\\n<nodes>\\n'")]
    Shape,
    #[error("version must be a positive integer up to 9007199254740991")]
    BadVersion,
    #[error(transparent)]
    List(#[from] ListError),
}

/// Parses a payload into its version and nodes (in published order). Line
/// ends may be `\n` or `\r\n`; the final line end is optional.
pub fn parse(payload: &[u8]) -> Result<(u64, Vec<NodeEntry>), PayloadError> {
    let text = std::str::from_utf8(payload).map_err(|_| PayloadError::NotText)?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(text);
    let (version, nodes) = text.split_once('\n').ok_or(PayloadError::Shape)?;
    let version = version.strip_suffix('\r').unwrap_or(version);
    if nodes.contains('\n') || nodes.contains('\r') || nodes.contains('\t') {
        return Err(PayloadError::Shape);
    }
    let version = match version.parse::<u64>() {
        Ok(v) if (1..=VERSION_MAX).contains(&v) && version.bytes().all(|b| b.is_ascii_digit()) => v,
        _ => return Err(PayloadError::BadVersion),
    };
    Ok((version, parse_list(nodes)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reference_example_bytes() {
        let nodes = parse_list(
            "localhost|127.0.0.1|39211 localhost|127.0.0.1|39212 localhost|127.0.0.1|39213",
        )
        .unwrap();
        let p = render(1, &nodes);
        assert_eq!(p.len(), 80);
        assert_eq!(
            p,
            b"1\nlocalhost|127.0.0.1|39211 localhost|127.0.0.1|39212 localhost|127.0.0.1|39213\n"
        );
    }

    #[test]
    fn capture_round_trips() {
        let p = b"1\ntest1.rtstcw.0001.apne1.cache.amazonaws.com|172.31.12.60|11211 test1.rtstcw.0002.apne1.cache.amazonaws.com|172.31.3.240|11211 test1.rtstcw.0003.apne1.cache.amazonaws.com|172.31.10.26|11211\n";
        assert_eq!(p.len(), 191);
        let (v, nodes) = parse(p).unwrap();
        assert_eq!(render(v, &nodes), p.to_vec());
    }

    #[test]
    fn lenient_line_ends_strict_content() {
        assert!(parse(b"3\r\na||1\r\n").is_ok());
        assert!(parse(b"3\na||1").is_ok());
        assert_eq!(parse(b"3\n\n"), Err(PayloadError::List(ListError::Empty)));
        assert_eq!(parse(b"0\na||1\n"), Err(PayloadError::BadVersion));
        assert_eq!(parse(b"x\na||1\n"), Err(PayloadError::BadVersion));
        assert_eq!(parse(b"+3\na||1\n"), Err(PayloadError::BadVersion));
        assert_eq!(parse(b"a||1\n"), Err(PayloadError::Shape));
        assert_eq!(parse(b"3\na||1\nb||2\n"), Err(PayloadError::Shape));
        assert!(matches!(
            parse(b"3\na||1 a||1\n"),
            Err(PayloadError::List(_))
        ));
        assert!(matches!(parse(b"3\na|x|1\n"), Err(PayloadError::List(_))));
        assert!(matches!(parse(b"3\n\xff\n"), Err(PayloadError::NotText)));
    }
}
