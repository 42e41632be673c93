//! SASL over the binary protocol (memcached `-S`) with rsasl: PLAIN,
//! SCRAM-SHA-256 and SCRAM-SHA-1 against the [`UserDb`].
//!
//! A session that reaches rsasl's `Finished` state is not necessarily
//! authenticated (a SCRAM exchange with a bad proof finishes too, with an
//! error message for the client): only [`Validation`] carrying the user name,
//! set by our `validate` callback, counts.

use std::io::Cursor;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Arc;

use arc_swap::ArcSwap;
use rsasl::callback::{Context, Request, SessionCallback, SessionData};
use rsasl::mechanisms::scram::properties::ScramStoredPassword;
use rsasl::mechname::Mechname;
use rsasl::prelude::{SASLConfig, SASLServer, Session, SessionError, State};
use rsasl::property::{AuthId, AuthzId, Password};
use rsasl::validate::{Validate, Validation, ValidationError};

use super::db::{ScramHash, UserDb};

/// The mechanisms offered, in order of preference.
pub const MECHANISMS: &str = "SCRAM-SHA-256 SCRAM-SHA-1 PLAIN";

/// rsasl validation type: the authenticated user.
pub struct AuthUser;

impl Validation for AuthUser {
    type Value = String;
}

struct Callback {
    db: Arc<ArcSwap<UserDb>>,
}

fn scram_hash(data: &SessionData) -> Option<ScramHash> {
    match data.mechanism().mechanism.as_str() {
        "SCRAM-SHA-256" | "SCRAM-SHA-256-PLUS" => Some(ScramHash::Sha256),
        "SCRAM-SHA-1" | "SCRAM-SHA-1-PLUS" => Some(ScramHash::Sha1),
        _ => None,
    }
}

impl SessionCallback for Callback {
    fn callback(
        &self,
        data: &SessionData,
        context: &Context,
        request: &mut Request,
    ) -> Result<(), SessionError> {
        if let (Some(hash), Some(user)) = (scram_hash(data), context.get_ref::<AuthId>()) {
            let db = self.db.load();
            if let Some((iterations, salt, keys)) = db.scram(user, hash) {
                request.satisfy::<ScramStoredPassword>(&ScramStoredPassword::new(
                    iterations,
                    salt,
                    &keys.stored_key,
                    &keys.server_key,
                ))?;
            }
        }
        Ok(())
    }

    fn validate(
        &self,
        data: &SessionData,
        context: &Context,
        validate: &mut Validate<'_>,
    ) -> Result<(), ValidationError> {
        let Some(user) = context.get_ref::<AuthId>() else {
            return Ok(());
        };
        // An authorization identity other than the user is refused.
        if let Some(authz) = context.get_ref::<AuthzId>() {
            if !authz.is_empty() && authz != user {
                return Ok(());
            }
        }
        let ok = if scram_hash(data).is_some() {
            // rsasl calls this only once the client proof matched.
            true
        } else if data.mechanism().mechanism.as_str() == "PLAIN" {
            match context.get_ref::<Password>() {
                Some(pw) => self.db.load().verify(user, pw),
                None => false,
            }
        } else {
            false
        };
        if ok {
            let user = user.to_string();
            validate.with::<AuthUser, _>(|| Ok(user))?;
        }
        Ok(())
    }
}

/// The server-wide SASL setup. The user database can be replaced while
/// the server runs (`SIGHUP`); an exchange in progress finishes against
/// whichever database each of its steps finds.
pub struct Sasl {
    config: Arc<SASLConfig>,
    db: Arc<ArcSwap<UserDb>>,
}

impl Sasl {
    pub fn new(db: Arc<UserDb>) -> Result<Sasl, String> {
        let db = Arc::new(ArcSwap::new(db));
        let config = SASLConfig::builder()
            .with_defaults()
            .with_callback(Callback { db: db.clone() })
            .map_err(|e| format!("SASL setup failed: {e}"))?;
        Ok(Sasl { config, db })
    }

    pub fn db(&self) -> Arc<UserDb> {
        self.db.load_full()
    }

    /// Serves later logins from `db`.
    pub fn replace_db(&self, db: UserDb) {
        self.db.store(Arc::new(db));
    }
}

/// Outcome of one SASL message.
#[derive(Debug, PartialEq, Eq)]
pub enum Step {
    /// Send this challenge with status "auth continue".
    Continue(Vec<u8>),
    /// Authenticated as this user; the payload is the server's final
    /// message, if the mechanism has one.
    Done { user: String, data: Vec<u8> },
    /// Refused.
    Failed,
}

/// Whether a SCRAM client message (`first`: the client-first message, else
/// the client-final one) has the shape rsasl's parser takes for granted.
///
/// rsasl 2.3 reads the first two bytes of every attribute (and a non-empty
/// authzid) without checking its length, so a message such as `n,,` or
/// `c=biws,r=x,,p=y` makes it index out of bounds and panic: a worker thread
/// brought down by one unauthenticated frame. RFC 5802 attributes are
/// always `<letter>=<value>`, so such messages are malformed anyway and are
/// refused before rsasl sees them.
fn scram_shape_ok(data: &[u8], first: bool) -> bool {
    let mut parts = data.split(|&b| b == b',');
    if first {
        // gs2-header: the channel-binding flag (rsasl checks it safely),
        // then an empty or `a=<authzid>` field.
        parts.next();
        match parts.next() {
            Some(authzid) if authzid.is_empty() || authzid.len() >= 2 => {}
            _ => return false,
        }
    }
    parts.all(|attribute| attribute.len() >= 2)
}

fn is_scram(mech: &[u8]) -> bool {
    mech.starts_with(b"SCRAM-")
}

/// The SASL state of one connection.
#[derive(Default)]
pub struct SaslConn {
    session: Option<(String, Session<AuthUser>)>,
}

impl SaslConn {
    /// SASL_AUTH: starts a new exchange with `mech`.
    pub fn start(&mut self, sasl: &Sasl, mech: &[u8], data: &[u8]) -> Step {
        self.session = None;
        let Ok(name) = Mechname::parse(mech) else {
            return Step::Failed;
        };
        if !MECHANISMS.split(' ').any(|m| m.as_bytes() == mech) {
            return Step::Failed;
        }
        if is_scram(mech) && !scram_shape_ok(data, true) {
            return Step::Failed;
        }
        let server = SASLServer::<AuthUser>::new(sasl.config.clone());
        let Ok(session) = server.start_suggested(name) else {
            return Step::Failed;
        };
        self.session = Some((name.as_str().to_string(), session));
        self.advance(data)
    }

    /// SASL_STEP: continues the exchange started with `mech`.
    pub fn step(&mut self, mech: &[u8], data: &[u8]) -> Step {
        match &self.session {
            Some((m, _))
                if m.as_bytes() == mech && (!is_scram(mech) || scram_shape_ok(data, false)) =>
            {
                self.advance(data)
            }
            _ => {
                self.session = None;
                Step::Failed
            }
        }
    }

    fn advance(&mut self, data: &[u8]) -> Step {
        let Some((_, session)) = self.session.as_mut() else {
            return Step::Failed;
        };
        let mut out = Cursor::new(Vec::new());
        // The shape checks above keep out the inputs known to panic inside
        // rsasl; a panic nobody knows of yet fails this exchange instead of
        // taking down the worker and every connection it serves. The
        // session is dropped right after, so no broken state survives.
        let stepped = panic::catch_unwind(AssertUnwindSafe(|| session.step(Some(data), &mut out)));
        let Ok(stepped) = stepped else {
            self.session = None;
            return Step::Failed;
        };
        match stepped {
            Ok(State::Running) => Step::Continue(out.into_inner()),
            Ok(State::Finished(_)) => {
                let user = session.validation();
                self.session = None;
                match user {
                    Some(user) => Step::Done {
                        user,
                        data: out.into_inner(),
                    },
                    None => Step::Failed,
                }
            }
            Err(_) => {
                self.session = None;
                Step::Failed
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sasl() -> Sasl {
        Sasl::new(Arc::new(UserDb::parse("alice:secret\n").unwrap())).unwrap()
    }

    #[test]
    fn malformed_scram_messages_are_refused_before_rsasl() {
        let sasl = sasl();
        let mut conn = SaslConn::default();
        assert_eq!(conn.start(&sasl, b"SCRAM-SHA-1", b"n, "), Step::Failed);
        assert_eq!(conn.start(&sasl, b"SCRAM-SHA-1", b"n,,"), Step::Failed);
    }

    #[test]
    fn a_panic_inside_rsasl_fails_the_exchange_only() {
        let sasl = sasl();
        let mut conn = SaslConn::default();
        let first = conn.start(&sasl, b"SCRAM-SHA-1", b"n,,n=alice,r=abcdefgh");
        assert!(matches!(first, Step::Continue(_)), "{first:?}");
        // Past the shape check, straight into rsasl: this client-final
        // message makes rsasl 2.3 index out of bounds.
        assert_eq!(conn.advance(b"c=biws,r=x,,p=y"), Step::Failed);
        assert!(conn.session.is_none());
        // The connection can start over.
        let again = conn.start(&sasl, b"SCRAM-SHA-1", b"n,,n=alice,r=abcdefgh");
        assert!(matches!(again, Step::Continue(_)), "{again:?}");
    }
}
