//! What a node presents to peers that require authentication (`-S`/`-Y`):
//! one `user:password` line from `--cluster-credentials FILE`, sent as a
//! text-protocol login before the first `cluster sync` on each connection.
//!
//! The secret lives in a file rather than on the command line so that it
//! never shows in `ps`, and its `Debug` form never shows the password.

use std::fmt;
use std::path::Path;

/// A peer login: user name and password.
#[derive(Clone, PartialEq, Eq)]
pub struct PeerCredentials {
    pub user: String,
    password: String,
}

impl fmt::Debug for PeerCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerCredentials")
            .field("user", &self.user)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl PeerCredentials {
    /// Parses the file's content: one `user:password` line (a trailing
    /// newline is ignored). Neither part may be empty or hold whitespace,
    /// which the text login (`user password` as data) could not carry.
    pub fn parse(text: &str) -> Result<PeerCredentials, String> {
        let line = text.strip_suffix('\n').unwrap_or(text);
        let line = line.strip_suffix('\r').unwrap_or(line);
        let (user, password) = line
            .split_once(':')
            .ok_or("expected one line 'user:password'")?;
        let bad = |s: &str| s.is_empty() || s.chars().any(char::is_whitespace);
        if bad(user) || bad(password) {
            return Err("expected one line 'user:password' without spaces".into());
        }
        Ok(PeerCredentials {
            user: user.to_string(),
            password: password.to_string(),
        })
    }

    /// Reads and parses `path`; errors never quote the content.
    pub fn load(path: &Path) -> Result<PeerCredentials, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        PeerCredentials::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// The text-protocol login request memcached's `-Y` defines: a `set`
    /// whose data is `user password`.
    pub fn login_request(&self) -> Vec<u8> {
        let data = format!("{} {}", self.user, self.password);
        let mut req = format!("set auth 0 0 {}\r\n", data.len()).into_bytes();
        req.extend_from_slice(data.as_bytes());
        req.extend_from_slice(b"\r\n");
        req
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_one_line() {
        let c = PeerCredentials::parse("node:s3cret\n").unwrap();
        assert_eq!(c.user, "node");
        assert_eq!(c.login_request(), b"set auth 0 0 11\r\nnode s3cret\r\n");
        assert!(PeerCredentials::parse("node:s3cret\r\n").is_ok());
    }

    #[test]
    fn refuses_malformed_lines() {
        for bad in [
            "",
            "node",
            ":pw",
            "node:",
            "no de:pw",
            "node:p w",
            "a:b\nc:d\n",
        ] {
            assert!(PeerCredentials::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_the_password() {
        let c = PeerCredentials::parse("node:s3cret").unwrap();
        let shown = format!("{c:?}");
        assert!(
            shown.contains("node") && !shown.contains("s3cret"),
            "{shown}"
        );
    }
}
