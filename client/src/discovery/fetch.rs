//! Asking one endpoint for the cluster configuration over an open connection.

use std::sync::Arc;

use crate::conn::{Connection, Connector, Endpoint, TcpConnector, Timeouts};
use crate::discovery::payload::{parse_reply, ClusterConfig, ReplyError, ReplyForm};
use crate::error::{Error, Result};

/// The request of engines ≥ 1.4.14 (and ferrocache).
pub const CONFIG_GET: &[u8] = b"config get cluster\r\n";

/// The request for older engines, sent when `config get` is answered with `ERROR`.
pub const LEGACY_GET: &[u8] = b"get AmazonElastiCache:cluster\r\n";

/// Asks for the configuration on `conn`: `config get cluster`, then the legacy `get` if the
/// server does not know `config`. On success the connection is in sync and reusable.
pub fn fetch_config(conn: &mut Connection) -> Result<(ClusterConfig, ReplyForm)> {
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

/// Opens a connection to `endpoint` (resolving its name anew) and fetches the configuration.
pub fn fetch_from(
    endpoint: &Endpoint,
    timeouts: &Timeouts,
    connector: Option<&dyn Connector>,
) -> Result<(ClusterConfig, ReplyForm)> {
    let name: Arc<str> = endpoint.to_string().into();
    let mut conn = Connection::open(connector.unwrap_or(&TcpConnector), endpoint, name, timeouts)?;
    fetch_config(&mut conn)
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
