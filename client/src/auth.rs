//! SASL authentication over the binary protocol, right after a connection opens.
//!
//! The exchange is memcached's: `SASL_LIST_MECHS` (unless the mechanism is fixed in the
//! [`Credentials`]), then `SASL_AUTH` with the mechanism name as key and the client's first
//! message as value, then `SASL_STEP` while the server answers "continue" (`0x21`). Success is
//! `0x00`; for SCRAM its value is the server's signature, which is verified, so a server that
//! does not know the password cannot pass as authenticated. `0x20` is a refusal. The mechanisms
//! come from the `rsasl` crate.
//!
//! Without the `sasl` feature only the settings error is left.
#![cfg_attr(not(feature = "sasl"), allow(dead_code))]

use crate::binary::{encode, opcode, Status};
use crate::conn::{Connection, Credentials, Mechanism};
use crate::error::{Error, Result};

/// Most `SASL_STEP` round trips accepted; SCRAM needs one, PLAIN none.
#[cfg(feature = "sasl")]
const MAX_STEPS: usize = 8;

/// The mechanisms the server offers, best first among those the client knows.
pub(crate) fn list_mechanisms(conn: &mut Connection) -> Result<Vec<Mechanism>> {
    let mut request = Vec::with_capacity(24);
    encode::simple(&mut request, opcode::SASL_LIST_MECHS, 0);
    conn.send(&request)?;
    let node = conn.node().to_owned();
    let offered = conn.read_frame(|frame| {
        if frame.opcode != opcode::SASL_LIST_MECHS {
            return Err(unexpected(&node, frame.opcode, frame.status));
        }
        match frame.status {
            Status::SUCCESS => Ok(String::from_utf8_lossy(frame.value).into_owned()),
            Status::UNKNOWN_COMMAND => Err(no_sasl(&node)),
            status => Err(refused(&node, status, frame.value)),
        }
    })??;
    let mut known: Vec<Mechanism> = offered
        .split_ascii_whitespace()
        .filter_map(Mechanism::from_name)
        .collect();
    known.sort_by_key(|m| match m {
        Mechanism::ScramSha256 => 0,
        Mechanism::ScramSha1 => 1,
        Mechanism::Plain => 2,
    });
    known.dedup();
    if known.is_empty() {
        return Err(Error::Auth {
            node,
            message: format!("no supported mechanism among those offered ({offered:?})"),
        });
    }
    Ok(known)
}

/// Authenticates `conn` with `credentials`.
#[cfg(feature = "sasl")]
pub(crate) fn authenticate(conn: &mut Connection, credentials: &Credentials) -> Result<()> {
    use rsasl::mechname::Mechname;
    use rsasl::prelude::{SASLClient, SASLConfig, State};

    let node = conn.node().to_owned();
    let mechanism = match credentials.mechanism() {
        Some(m) => m,
        None => list_mechanisms(conn)?[0],
    };
    let auth_error = |message: String| Error::Auth {
        node: node.clone(),
        message,
    };
    let config = SASLConfig::with_credentials(
        None,
        credentials.user().to_owned(),
        credentials.password().to_owned(),
    )
    .map_err(|e| Error::Config(format!("SASL settings: {e}")))?;
    let name = Mechname::parse(mechanism.name().as_bytes())
        .map_err(|e| auth_error(format!("{mechanism}: {e}")))?;
    let mut session = SASLClient::new(config)
        .start_suggested(&[name])
        .map_err(|e| auth_error(format!("{mechanism}: {e}")))?;

    let mut message = Vec::new();
    let mut state = session
        .step(None, &mut message)
        .map_err(|e| auth_error(format!("{mechanism}: {e}")))?;
    let mut op = opcode::SASL_AUTH;
    let mut request = Vec::new();
    for _ in 0..=MAX_STEPS {
        request.clear();
        encode::sasl(&mut request, op, mechanism.name().as_bytes(), &message, 0);
        conn.send(&request)?;
        let (status, value) = conn.read_frame(|frame| {
            if frame.opcode != op {
                return Err(unexpected(&node, frame.opcode, frame.status));
            }
            Ok((frame.status, frame.value.to_vec()))
        })??;
        match status {
            Status::SUCCESS => {
                if state.is_running() {
                    // SCRAM: the server's final message carries its signature; check it.
                    let mut sink = Vec::new();
                    match session.step(Some(&value), &mut sink) {
                        Ok(State::Finished(_)) => {}
                        Ok(State::Running) => {
                            return Err(auth_error(format!(
                                "{mechanism}: the server ended the exchange early"
                            )))
                        }
                        Err(e) => {
                            return Err(auth_error(format!(
                                "{mechanism}: the server's final message did not verify ({e})"
                            )))
                        }
                    }
                }
                return Ok(());
            }
            Status::AUTH_CONTINUE => {
                if !state.is_running() {
                    return Err(auth_error(format!(
                        "{mechanism}: the server asked for more after the last message"
                    )));
                }
                message.clear();
                state = session
                    .step(Some(&value), &mut message)
                    .map_err(|e| auth_error(format!("{mechanism}: {e}")))?;
                op = opcode::SASL_STEP;
            }
            Status::AUTH_ERROR => {
                return Err(auth_error(format!(
                    "the server refused user {:?} with {mechanism}",
                    credentials.user()
                )))
            }
            Status::UNKNOWN_COMMAND => return Err(no_sasl(&node)),
            status => return Err(refused(&node, status, &value)),
        }
    }
    Err(auth_error(format!(
        "{mechanism}: no result after {MAX_STEPS} steps"
    )))
}

#[cfg(not(feature = "sasl"))]
pub(crate) fn authenticate(_conn: &mut Connection, _credentials: &Credentials) -> Result<()> {
    Err(Error::Config(
        "SASL credentials given, but the client was built without the `sasl` feature".into(),
    ))
}

fn no_sasl(node: &str) -> Error {
    Error::Auth {
        node: node.to_owned(),
        message: "the server does not offer SASL authentication (unknown command)".into(),
    }
}

fn refused(node: &str, status: Status, value: &[u8]) -> Error {
    let shown = &value[..value.len().min(80)];
    Error::Auth {
        node: node.to_owned(),
        message: format!("status {status}: {}", String::from_utf8_lossy(shown).trim()),
    }
}

fn unexpected(node: &str, opcode: u8, status: Status) -> Error {
    Error::Protocol {
        node: node.to_owned(),
        message: crate::binary::FrameError::Unexpected { opcode, status }.to_string(),
    }
}
