//! Authentication: the user database, SASL over the binary protocol and
//! memcached's text-protocol authentication (`-Y`).
//!
//! Owns: loading secrets at start-up, verifying credentials, the
//! per-connection SASL exchange. Never: touches sockets, decides which
//! commands an unauthenticated connection may send (the connection does,
//! following memcached), or logs secrets.

pub mod db;
pub mod guard;
pub mod sasl;

use std::path::PathBuf;
use std::sync::Arc;

pub use db::UserDb;
pub use guard::FailureGuard;
pub use sasl::{Sasl, SaslConn, Step};

use crate::config::Settings;

/// memcached reads at most this many entries from a `-Y` file.
pub const ASCII_AUTH_MAX_ENTRIES: usize = 8;

/// Authentication configured for a server.
pub struct Auth {
    /// SASL (`-S`) with its user database.
    pub sasl: Option<Sasl>,
    /// Text-protocol authentication users (`-Y`), when configured.
    pub ascii: Option<UserDb>,
    /// Limits failed attempts per client address; `None` when turned off.
    pub guard: Option<FailureGuard>,
}

impl Auth {
    /// Loads what the settings ask for; `None` when no authentication is on.
    pub fn load(settings: &Settings) -> Result<Option<Arc<Auth>>, String> {
        let sasl = if settings.sasl {
            let path = settings
                .sasl_db
                .clone()
                .or_else(|| std::env::var_os("MEMCACHED_SASL_PWDB").map(PathBuf::from))
                .ok_or("-S needs a user database: --sasl-db FILE or MEMCACHED_SASL_PWDB")?;
            let db = UserDb::load(&path).map_err(|e| format!("-S: {e}"))?;
            Some(Sasl::new(Arc::new(db))?)
        } else {
            None
        };
        let ascii = match &settings.auth_file {
            Some(path) => {
                let db = UserDb::load(path).map_err(|e| format!("-Y: {e}"))?;
                if db.len() > ASCII_AUTH_MAX_ENTRIES {
                    return Err(format!(
                        "-Y: {}: at most {ASCII_AUTH_MAX_ENTRIES} entries",
                        path.display()
                    ));
                }
                Some(db)
            }
            None => None,
        };
        if sasl.is_none() && ascii.is_none() {
            return Ok(None);
        }
        let guard = FailureGuard::new(settings.auth_limits);
        Ok(Some(Arc::new(Auth { sasl, ascii, guard })))
    }

    /// Checks text-protocol credentials (`user password` in the data block
    /// of a `set`): against the `-Y` file, or else against the SASL user
    /// database (our extension).
    pub fn verify_text(&self, data: &[u8]) -> bool {
        let Some(sp) = data.iter().position(|&b| b == b' ') else {
            return false;
        };
        let (user, password) = (&data[..sp], &data[sp + 1..]);
        let Ok(user) = std::str::from_utf8(user) else {
            return false;
        };
        match (&self.ascii, &self.sasl) {
            (Some(db), _) => db.verify(user, password),
            (None, Some(sasl)) => sasl.db().verify(user, password),
            (None, None) => false,
        }
    }
}
