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

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arc_swap::ArcSwap;

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
    /// Text-protocol authentication users (`-Y`), when configured;
    /// replaceable like the SASL database.
    pub ascii: Option<ArcSwap<UserDb>>,
    /// Limits failed attempts per client address; `None` when turned off.
    pub guard: Option<FailureGuard>,
    /// Where the databases were read from, for [`Auth::reload`].
    pub files: AuthFiles,
}

/// The files behind [`Auth`]'s user databases.
#[derive(Clone, Debug, Default)]
pub struct AuthFiles {
    pub sasl: Option<PathBuf>,
    pub ascii: Option<PathBuf>,
}

impl Auth {
    /// Loads what the settings ask for; `None` when no authentication is on.
    pub fn load(settings: &Settings) -> Result<Option<Arc<Auth>>, String> {
        let mut files = AuthFiles::default();
        let sasl = if settings.sasl {
            let path = settings
                .sasl_db
                .clone()
                .or_else(|| std::env::var_os("MEMCACHED_SASL_PWDB").map(PathBuf::from))
                .ok_or("-S needs a user database: --sasl-db FILE or MEMCACHED_SASL_PWDB")?;
            let db = load_sasl_db(&path)?;
            files.sasl = Some(path);
            Some(Sasl::new(Arc::new(db))?)
        } else {
            None
        };
        let ascii = match &settings.auth_file {
            Some(path) => {
                let db = load_ascii_db(path)?;
                files.ascii = Some(path.clone());
                Some(ArcSwap::from_pointee(db))
            }
            None => None,
        };
        if sasl.is_none() && ascii.is_none() {
            return Ok(None);
        }
        let guard = FailureGuard::new(settings.auth_limits);
        Ok(Some(Arc::new(Auth {
            sasl,
            ascii,
            guard,
            files,
        })))
    }

    /// Reads the user databases again (`SIGHUP`), so passwords change
    /// without a restart that would empty the cache. All or nothing: when a
    /// file cannot be read or is malformed, every database stays as it was.
    /// Connections already authenticated stay so. Returns a summary for the
    /// log (user counts, never names).
    pub fn reload(&self) -> Result<String, String> {
        let sasl = match (&self.sasl, &self.files.sasl) {
            (Some(_), Some(path)) => Some(load_sasl_db(path)?),
            _ => None,
        };
        let ascii = match (&self.ascii, &self.files.ascii) {
            (Some(_), Some(path)) => Some(load_ascii_db(path)?),
            _ => None,
        };
        let mut summary = Vec::new();
        if let (Some(current), Some(db)) = (&self.sasl, sasl) {
            summary.push(format!("SASL database: {} users", db.len()));
            current.replace_db(db);
        }
        if let (Some(current), Some(db)) = (&self.ascii, ascii) {
            summary.push(format!("-Y file: {} users", db.len()));
            current.store(Arc::new(db));
        }
        Ok(summary.join(", "))
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
            (Some(db), _) => db.load().verify(user, password),
            (None, Some(sasl)) => sasl.db().verify(user, password),
            (None, None) => false,
        }
    }
}

fn load_sasl_db(path: &Path) -> Result<UserDb, String> {
    UserDb::load(path).map_err(|e| format!("-S: {e}"))
}

fn load_ascii_db(path: &Path) -> Result<UserDb, String> {
    let db = UserDb::load(path).map_err(|e| format!("-Y: {e}"))?;
    if db.len() > ASCII_AUTH_MAX_ENTRIES {
        return Err(format!(
            "-Y: {}: at most {ASCII_AUTH_MAX_ENTRIES} entries",
            path.display()
        ));
    }
    Ok(db)
}
