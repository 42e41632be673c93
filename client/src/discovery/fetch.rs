//! Asking one endpoint for the cluster configuration over an open connection.
//!
//! On a text connection: `config get cluster`, then the legacy
//! `get AmazonElastiCache:cluster` when the server answers `ERROR`.
//!
//! On a binary connection (the only kind an authenticated client has) the order is reversed:
//! first a binary GET of `AmazonElastiCache:cluster`, which every server parses (ferrocache
//! answers the configuration), then, on a miss, ElastiCache's CONFIG_GET opcode `0x60` with
//! key `cluster`, answered like a GET, followed by a NOOP in the same write. The reason is
//! memcached: it answers an unknown opcode that carries a key only after swallowing as many
//! bytes again as the key is long, so a lone CONFIG_GET would hang until the read timeout
//! and leave the connection out of step. With the NOOP behind it memcached answers "unknown
//! command" at once; the connection is then dropped.

use std::sync::Arc;

use crate::binary::{encode, opcode, Status};
use crate::conn::{Connection, Connector, Endpoint, Protocol, Session, TcpConnector, Timeouts};
use crate::discovery::payload::{
    parse_payload, parse_reply, ClusterConfig, ReplyError, ReplyForm, CONFIG_KEY, LEGACY_KEY,
};
use crate::error::{Error, Result};

/// The request of engines ≥ 1.4.14 (and ferrocache).
pub const CONFIG_GET: &[u8] = b"config get cluster\r\n";

/// The request for older engines, sent when `config get` is answered with `ERROR`.
pub const LEGACY_GET: &[u8] = b"get AmazonElastiCache:cluster\r\n";

/// Asks for the configuration on `conn`: `config get cluster`, then the legacy `get` if the
/// server does not know `config` (over the binary protocol, the matching opcodes). On success
/// the connection is in sync and reusable.
pub fn fetch_config(conn: &mut Connection) -> Result<(ClusterConfig, ReplyForm)> {
    if conn.protocol() == Protocol::Binary {
        return match fetch_binary(conn, ReplyForm::Legacy) {
            Err(Error::Discovery {
                source: ReplyError::NotFound,
                ..
            }) => fetch_binary(conn, ReplyForm::Config),
            other => other,
        };
    }
    conn.send(CONFIG_GET)?;
    match read_config(conn) {
        Err(Error::Discovery {
            source: ReplyError::UnknownCommand,
            ..
        }) => {
            // `ERROR` is a single line and nothing else was requested: drop it and retry.
            conn.discard_buffered();
            conn.send(LEGACY_GET)?;
            read_config(conn)
        }
        other => other,
    }
}

/// Asks for the configuration in one form only: `config get cluster` / CONFIG_GET
/// ([`ReplyForm::Config`]) or the legacy key ([`ReplyForm::Legacy`]), in the protocol of
/// `conn`.
pub fn fetch_form(conn: &mut Connection, form: ReplyForm) -> Result<ClusterConfig> {
    if conn.protocol() == Protocol::Binary {
        return fetch_binary(conn, form).map(|(config, _)| config);
    }
    conn.send(match form {
        ReplyForm::Config => CONFIG_GET,
        ReplyForm::Legacy => LEGACY_GET,
    })?;
    read_config(conn).map(|(config, _)| config)
}

/// Opens a connection to `endpoint` (resolving its name anew) through `connector` (plain TCP
/// when `None`), sets it up as `session` says (protocol, SASL) and fetches the configuration.
pub fn fetch_from(
    endpoint: &Endpoint,
    timeouts: &Timeouts,
    connector: Option<&dyn Connector>,
    session: &Session,
) -> Result<(ClusterConfig, ReplyForm)> {
    let name: Arc<str> = endpoint.to_string().into();
    let mut conn = Connection::open(
        connector.unwrap_or(&TcpConnector),
        endpoint,
        name,
        timeouts,
        session,
    )?;
    fetch_config(&mut conn)
}

/// One binary configuration request: GET of the legacy key, or CONFIG_GET `cluster`
/// followed by a NOOP (see the module documentation).
fn fetch_binary(conn: &mut Connection, form: ReplyForm) -> Result<(ClusterConfig, ReplyForm)> {
    let (op, key) = match form {
        ReplyForm::Config => (opcode::CONFIG_GET, CONFIG_KEY),
        ReplyForm::Legacy => (opcode::GET, LEGACY_KEY),
    };
    let mut request = Vec::with_capacity(48 + key.len());
    encode::get(&mut request, op, key.as_bytes(), 0);
    if form == ReplyForm::Config {
        encode::simple(&mut request, opcode::NOOP, 0);
    }
    conn.send(&request)?;
    let result = read_binary(conn, form, op);
    let in_step = !matches!(
        result,
        Err(Error::Discovery {
            source: ReplyError::UnknownCommand,
            ..
        }) | Err(Error::Protocol { .. })
    );
    if form == ReplyForm::Config && in_step {
        // A server that knows CONFIG_GET answers the NOOP as well.
        let node = conn.node().to_owned();
        conn.read_frame(|frame| {
            if (frame.opcode, frame.status) == (opcode::NOOP, Status::SUCCESS) {
                Ok(())
            } else {
                Err(Error::Protocol {
                    node: node.clone(),
                    message: crate::binary::FrameError::Unexpected {
                        opcode: frame.opcode,
                        status: frame.status,
                    }
                    .to_string(),
                })
            }
        })??;
    }
    result
}

fn read_binary(
    conn: &mut Connection,
    form: ReplyForm,
    op: u8,
) -> Result<(ClusterConfig, ReplyForm)> {
    let endpoint = conn.node().to_owned();
    let discovery = |source| Error::Discovery {
        endpoint: endpoint.clone(),
        source,
    };
    conn.read_frame(|frame| {
        let message =
            || String::from_utf8_lossy(&frame.value[..frame.value.len().min(200)]).into_owned();
        if frame.opcode != op {
            return Err(Error::Protocol {
                node: endpoint.clone(),
                message: crate::binary::FrameError::Unexpected {
                    opcode: frame.opcode,
                    status: frame.status,
                }
                .to_string(),
            });
        }
        match frame.status {
            Status::SUCCESS => parse_payload(frame.value)
                .map(|config| (config, form))
                .map_err(|e| discovery(ReplyError::Payload(e))),
            Status::UNKNOWN_COMMAND => Err(discovery(ReplyError::UnknownCommand)),
            Status::KEY_NOT_FOUND => Err(discovery(ReplyError::NotFound)),
            Status::AUTH_ERROR => Err(Error::Auth {
                node: endpoint.clone(),
                message: format!("refused as unauthenticated: {}", message()),
            }),
            Status::INVALID_ARGUMENTS => Err(discovery(ReplyError::ClientError(message()))),
            status => Err(discovery(ReplyError::ServerError(format!(
                "status {status}: {}",
                message()
            )))),
        }
    })?
}

fn read_config(conn: &mut Connection) -> Result<(ClusterConfig, ReplyForm)> {
    let endpoint = conn.node().to_owned();
    conn.read_with(|buf| match parse_reply(buf) {
        Ok(Some(reply)) => Ok(Some(((reply.config, reply.form), reply.consumed))),
        Ok(None) => Ok(None),
        Err(source) => Err(Error::Discovery {
            endpoint: endpoint.clone(),
            source,
        }),
    })
}
