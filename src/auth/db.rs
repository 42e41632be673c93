//! The user database behind SASL and text authentication.
//!
//! One entry per line, `user:secret`, split at the first `:`; empty lines
//! and lines starting with `#` are skipped. The secret is either
//! - a password in clear (memcached's `MEMCACHED_SASL_PWDB` format), or
//! - a salted SCRAM entry, so that no password sits on disk:
//!   `$scram$<iterations>$<salt>$<SHA-256 StoredKey>$<SHA-256 ServerKey>$<SHA-1 StoredKey>$<SHA-1 ServerKey>`
//!   (base64), written by `ferrocache-saslpasswd`.
//!
//! Passwords are compared in constant time. For entries in clear the SCRAM
//! keys are derived once at load time with a random salt.

use std::collections::HashMap;
use std::path::Path;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use digest::Digest;
use rsasl::mechanisms::scram::tools::{derive_keys, hash_password};
use sha1::Sha1;
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The prefix of a salted entry.
pub const SCRAM_PREFIX: &str = "$scram$";
/// PBKDF2 iterations for new salted entries (RFC 7677 recommends 4096 at
/// least).
pub const DEFAULT_ITERATIONS: u32 = 4096;
/// Most PBKDF2 iterations a salted entry may ask for. A PLAIN or text login
/// against a salted entry costs the server one derivation, before the
/// client has proved anything, so an absurd count in the file would let any
/// client tie up a worker for minutes per attempt. A million (above current
/// recommendations for PBKDF2-SHA-256) costs well under a second.
pub const MAX_ITERATIONS: u32 = 1_000_000;
/// Longest user name or secret accepted from the file.
const MAX_FIELD: usize = 1024;

/// Which SCRAM hash a mechanism uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScramHash {
    Sha1,
    Sha256,
}

/// Salted keys of one user for one hash.
#[derive(Clone, Debug)]
pub struct ScramKeys {
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
}

#[derive(Clone, Debug)]
struct Scram {
    iterations: u32,
    salt: Vec<u8>,
    sha256: ScramKeys,
    sha1: ScramKeys,
}

#[derive(Clone, Debug)]
struct Entry {
    /// The password when the file holds it in clear.
    plain: Option<Vec<u8>>,
    scram: Scram,
}

/// Users and their secrets.
#[derive(Clone, Debug, Default)]
pub struct UserDb {
    users: HashMap<String, Entry>,
}

fn keys<D>(password: &[u8], iterations: u32, salt: &[u8]) -> ScramKeys
where
    D: Digest + digest::core_api::BlockSizeUser + digest::FixedOutputReset + Clone + Sync,
{
    let mut salted = digest::Output::<D>::default();
    hash_password::<D>(password, iterations, salt, &mut salted);
    let (client_key, server_key) = derive_keys::<D>(salted.as_slice());
    ScramKeys {
        stored_key: D::digest(client_key).to_vec(),
        server_key: server_key.to_vec(),
    }
}

fn random_salt() -> Vec<u8> {
    let mut salt = vec![0u8; 16];
    getrandom::getrandom(&mut salt).expect("the system random source failed");
    salt
}

fn derive(password: &[u8], iterations: u32, salt: Vec<u8>) -> Scram {
    Scram {
        iterations,
        sha256: keys::<Sha256>(password, iterations, &salt),
        sha1: keys::<Sha1>(password, iterations, &salt),
        salt,
    }
}

/// A salted entry for `user` with `password`, as a database line (without
/// the newline).
pub fn hash_entry(user: &str, password: &[u8], iterations: u32) -> String {
    let s = derive(password, iterations, random_salt());
    format!(
        "{user}:{SCRAM_PREFIX}{}${}${}${}${}${}",
        s.iterations,
        B64.encode(&s.salt),
        B64.encode(&s.sha256.stored_key),
        B64.encode(&s.sha256.server_key),
        B64.encode(&s.sha1.stored_key),
        B64.encode(&s.sha1.server_key),
    )
}

fn parse_scram(spec: &str) -> Option<Scram> {
    let mut parts = spec.split('$');
    let iterations: u32 = parts.next()?.parse().ok()?;
    let mut next = || B64.decode(parts.next()?).ok();
    let salt = next()?;
    let s256 = (next()?, next()?);
    let s1 = (next()?, next()?);
    if iterations == 0
        || s256.0.len() != 32
        || s256.1.len() != 32
        || s1.0.len() != 20
        || s1.1.len() != 20
    {
        return None;
    }
    Some(Scram {
        iterations,
        salt,
        sha256: ScramKeys {
            stored_key: s256.0,
            server_key: s256.1,
        },
        sha1: ScramKeys {
            stored_key: s1.0,
            server_key: s1.1,
        },
    })
}

impl UserDb {
    /// Reads a database file.
    pub fn load(path: &Path) -> Result<UserDb, String> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        UserDb::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses database text; errors name the line.
    pub fn parse(text: &str) -> Result<UserDb, String> {
        let mut users = HashMap::new();
        for (i, line) in text.lines().enumerate() {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((user, secret)) = line.split_once(':') else {
                return Err(format!("line {}: expected user:password", i + 1));
            };
            if user.is_empty() || user.len() > MAX_FIELD || secret.len() > MAX_FIELD {
                return Err(format!("line {}: empty or overlong user or secret", i + 1));
            }
            let entry = match secret.strip_prefix(SCRAM_PREFIX) {
                Some(spec) => {
                    let scram = parse_scram(spec)
                        .ok_or_else(|| format!("line {}: malformed salted entry", i + 1))?;
                    if scram.iterations > MAX_ITERATIONS {
                        return Err(format!(
                            "line {}: more than {MAX_ITERATIONS} iterations",
                            i + 1
                        ));
                    }
                    Entry { plain: None, scram }
                }
                None => Entry {
                    plain: Some(secret.as_bytes().to_vec()),
                    scram: derive(secret.as_bytes(), DEFAULT_ITERATIONS, random_salt()),
                },
            };
            users.insert(user.to_string(), entry);
        }
        Ok(UserDb { users })
    }

    pub fn len(&self) -> usize {
        self.users.len()
    }

    pub fn is_empty(&self) -> bool {
        self.users.is_empty()
    }

    /// Whether `password` is `user`'s. Secrets are compared in constant time;
    /// an unknown user costs a comparison too.
    pub fn verify(&self, user: &str, password: &[u8]) -> bool {
        match self.users.get(user) {
            Some(Entry { plain: Some(p), .. }) => bool::from(p.as_slice().ct_eq(password)),
            Some(Entry { plain: None, scram }) => {
                let k = keys::<Sha256>(password, scram.iterations, &scram.salt);
                bool::from(k.stored_key.ct_eq(&scram.sha256.stored_key))
            }
            None => {
                let _ = b"no such user".ct_eq(password);
                false
            }
        }
    }

    /// The salted SCRAM secrets of `user`: iterations, salt and keys.
    pub fn scram(&self, user: &str, hash: ScramHash) -> Option<(u32, &[u8], &ScramKeys)> {
        let s = &self.users.get(user)?.scram;
        let k = match hash {
            ScramHash::Sha1 => &s.sha1,
            ScramHash::Sha256 => &s.sha256,
        };
        Some((s.iterations, &s.salt, k))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_and_salted_entries_verify() {
        let salted = hash_entry("bob", b"hunter2", 16);
        let text = format!("# users\nalice:s3cret:with:colons\r\n\n{salted}\n");
        let db = UserDb::parse(&text).unwrap();
        assert_eq!(db.len(), 2);
        assert!(db.verify("alice", b"s3cret:with:colons"));
        assert!(!db.verify("alice", b"s3cret"));
        assert!(db.verify("bob", b"hunter2"));
        assert!(!db.verify("bob", b"hunter3"));
        assert!(!db.verify("carol", b"x"));
        assert!(!salted.contains("hunter2"));
        assert!(db.scram("bob", ScramHash::Sha1).is_some());
    }

    #[test]
    fn malformed_lines_are_errors() {
        let too_many = hash_entry("u", b"pw", 2).replacen("$2$", "$1000001$", 1);
        let err = UserDb::parse(&too_many).err().unwrap();
        assert!(err.contains("more than 1000000 iterations"), "{err}");
        let at_cap = hash_entry("u", b"pw", 2).replacen("$2$", "$1000000$", 1);
        assert!(UserDb::parse(&at_cap).is_ok());
        assert!(UserDb::parse("nocolon\n").is_err());
        assert!(UserDb::parse(":pw\n").is_err());
        assert!(UserDb::parse("u:$scram$x$y\n").is_err());
    }
}
