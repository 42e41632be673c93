//! One protocol-neutral request/answer model, carried by the text or the binary codec.
//!
//! [`Command`] says what to do, [`Answer`] what came back; [`execute`] encodes a command in
//! the protocol of the connection, sends it and maps the reply (a text line or a binary
//! status) onto the answer or onto the same typed [`Error`]s. The client's operations are
//! written once against this model, so they behave the same on both protocols: `add` of an
//! existing key is [`Error::NotStored`] whether the server said `NOT_STORED` or status `0x02`.

use crate::binary::{self, encode, opcode, Frame, Status};
use crate::client::{Item, Stats};
use crate::conn::{Connection, Protocol};
use crate::error::{Error, Result};
use crate::protocol::{self, Reply, RetrievalVerb, StorageVerb};

/// Keys per text `get` command in a multi-get; longer lists are split into several pipelined
/// commands so no request line grows without bound.
pub(crate) const MULTI_GET_CHUNK: usize = 64;

/// A request, independent of the protocol.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Command<'a> {
    Retrieve {
        verb: RetrievalVerb,
        key: &'a [u8],
    },
    Store {
        verb: StorageVerb,
        key: &'a [u8],
        value: &'a [u8],
        flags: u32,
        exptime: u32,
        cas: Option<u64>,
    },
    Delete {
        key: &'a [u8],
    },
    Arith {
        incr: bool,
        key: &'a [u8],
        delta: u64,
    },
    Touch {
        key: &'a [u8],
        exptime: u32,
    },
    FlushAll {
        delay: Option<u32>,
    },
    Version,
    Stats {
        group: Option<&'a str>,
    },
}

/// What a successful command returned.
#[derive(Debug)]
pub(crate) enum Answer {
    /// A retrieval: the item, or `None` on a miss.
    Item(Option<Item>),
    /// Stored, deleted, touched, flushed.
    Done,
    /// The new value of a counter.
    Number(u64),
    /// The server's version.
    Version(String),
    /// Statistics.
    Stats(Stats),
}

/// Sends `command` on `conn` in its protocol and reads the answer.
pub(crate) fn execute(conn: &mut Connection, command: &Command<'_>) -> Result<Answer> {
    let mut request = Vec::new();
    match conn.protocol() {
        Protocol::Text => {
            encode_text(&mut request, command);
            conn.send(&request)?;
            read_text(conn, command)
        }
        Protocol::Binary => {
            let op = encode_binary(&mut request, command);
            conn.send(&request)?;
            read_binary(conn, command, op)
        }
    }
}

// ----- text ----------------------------------------------------------------------------

fn encode_text(out: &mut Vec<u8>, command: &Command<'_>) {
    match *command {
        Command::Retrieve { verb, key } => protocol::encode_retrieval(out, verb, &[key]),
        Command::Store {
            verb,
            key,
            value,
            flags,
            exptime,
            cas,
        } => protocol::encode_storage(out, verb, key, flags, exptime, value, cas),
        Command::Delete { key } => protocol::encode_delete(out, key),
        Command::Arith { incr, key, delta } => protocol::encode_arith(out, incr, key, delta),
        Command::Touch { key, exptime } => protocol::encode_touch(out, key, exptime),
        Command::FlushAll { delay } => protocol::encode_flush_all(out, delay),
        Command::Version => protocol::encode_version(out),
        Command::Stats { group } => protocol::encode_stats(out, group),
    }
}

fn read_text(conn: &mut Connection, command: &Command<'_>) -> Result<Answer> {
    let node = conn.node().to_owned();
    match *command {
        Command::Retrieve { key, .. } => {
            let mut found = None;
            read_values(conn, 1, |k, item| {
                if k == key {
                    found = Some(item);
                }
            })?;
            Ok(Answer::Item(found))
        }
        Command::Store { .. } => read_one(conn, |r| (r == Reply::Stored).then_some(Answer::Done)),
        Command::Delete { .. } => read_one(conn, |r| (r == Reply::Deleted).then_some(Answer::Done)),
        Command::Arith { .. } => read_one(conn, |r| match r {
            Reply::Number(n) => Some(Answer::Number(n)),
            _ => None,
        }),
        Command::Touch { .. } => read_one(conn, |r| (r == Reply::Touched).then_some(Answer::Done)),
        Command::FlushAll { .. } => read_one(conn, |r| (r == Reply::Ok).then_some(Answer::Done)),
        Command::Version => read_one(conn, |r| match r {
            Reply::Version(v) => Some(Answer::Version(v.to_owned())),
            _ => None,
        }),
        Command::Stats { .. } => {
            let mut stats = Vec::new();
            loop {
                let done = conn.read_reply(|r| match r {
                    Reply::Stat { name, value } => {
                        stats.push((name.to_owned(), value.to_owned()));
                        Ok(false)
                    }
                    Reply::End => Ok(true),
                    other => Err(unexpected(&node, other)),
                })??;
                if done {
                    return Ok(Answer::Stats(stats));
                }
            }
        }
    }
}

/// Reads one reply unit; `ok` picks the success replies.
fn read_one(
    conn: &mut Connection,
    mut ok: impl FnMut(Reply<'_>) -> Option<Answer>,
) -> Result<Answer> {
    let node = conn.node().to_owned();
    conn.read_reply(|reply| ok(reply).ok_or_else(|| unexpected(&node, reply)))?
}

/// Reads `VALUE`s until `ends` `END`s were seen.
fn read_values(
    conn: &mut Connection,
    ends: usize,
    mut on_value: impl FnMut(&[u8], Item),
) -> Result<()> {
    let node = conn.node().to_owned();
    let mut seen = 0;
    while seen < ends {
        conn.read_reply(|reply| match reply {
            Reply::Value {
                key,
                flags,
                cas,
                data,
            } => {
                on_value(
                    key,
                    Item {
                        value: data.to_vec(),
                        flags,
                        cas,
                    },
                );
                Ok(())
            }
            Reply::End => {
                seen += 1;
                Ok(())
            }
            other => Err(unexpected(&node, other)),
        })??;
    }
    Ok(())
}

/// The error for a text reply that is not the expected success.
pub(crate) fn unexpected(node: &str, reply: Reply<'_>) -> Error {
    match reply {
        Reply::NotStored => Error::NotStored,
        Reply::Exists => Error::Exists,
        Reply::NotFound => Error::NotFound,
        Reply::Error => Error::UnknownCommand,
        Reply::ClientError(m) => Error::ClientError(m.to_owned()),
        Reply::ServerError(m) => Error::ServerError(m.to_owned()),
        other => Error::Protocol {
            node: node.to_owned(),
            message: format!("unexpected reply {other:?}"),
        },
    }
}

// ----- binary --------------------------------------------------------------------------

/// Encodes `command` as one binary request; returns its opcode.
fn encode_binary(out: &mut Vec<u8>, command: &Command<'_>) -> u8 {
    match *command {
        Command::Retrieve { verb, key } => match verb {
            RetrievalVerb::Get | RetrievalVerb::Gets => {
                encode::get(out, opcode::GET, key, 0);
                opcode::GET
            }
            RetrievalVerb::Gat(exptime) | RetrievalVerb::Gats(exptime) => {
                encode::gat(out, key, exptime, 0);
                opcode::GAT
            }
        },
        Command::Store {
            verb,
            key,
            value,
            flags,
            exptime,
            cas,
        } => {
            let op = match verb {
                StorageVerb::Set | StorageVerb::Cas => opcode::SET,
                StorageVerb::Add => opcode::ADD,
                StorageVerb::Replace => opcode::REPLACE,
                StorageVerb::Append => opcode::APPEND,
                StorageVerb::Prepend => opcode::PREPEND,
            };
            match verb {
                StorageVerb::Append | StorageVerb::Prepend => {
                    encode::concat(out, op, key, value, 0)
                }
                StorageVerb::Cas => {
                    encode::store(out, op, key, flags, exptime, value, cas.unwrap_or(0), 0)
                }
                _ => encode::store(out, op, key, flags, exptime, value, 0, 0),
            }
            op
        }
        Command::Delete { key } => {
            encode::delete(out, key, 0);
            opcode::DELETE
        }
        Command::Arith { incr, key, delta } => {
            encode::arith(out, incr, key, delta, 0);
            if incr {
                opcode::INCREMENT
            } else {
                opcode::DECREMENT
            }
        }
        Command::Touch { key, exptime } => {
            encode::touch(out, key, exptime, 0);
            opcode::TOUCH
        }
        Command::FlushAll { delay } => {
            encode::flush(out, delay, 0);
            opcode::FLUSH
        }
        Command::Version => {
            encode::simple(out, opcode::VERSION, 0);
            opcode::VERSION
        }
        Command::Stats { group } => {
            encode::stat(out, group, 0);
            opcode::STAT
        }
    }
}

fn read_binary(conn: &mut Connection, command: &Command<'_>, op: u8) -> Result<Answer> {
    let node = conn.node().to_owned();
    if let Command::Stats { .. } = command {
        let mut stats = Vec::new();
        loop {
            let done = conn.read_frame(|frame| {
                check_opcode(&node, &frame, op)?;
                if frame.status != Status::SUCCESS {
                    return Err(status_error(&node, command, &frame));
                }
                if frame.key.is_empty() {
                    return Ok(true);
                }
                stats.push((
                    String::from_utf8_lossy(frame.key).into_owned(),
                    String::from_utf8_lossy(frame.value).into_owned(),
                ));
                Ok(false)
            })??;
            if done {
                return Ok(Answer::Stats(stats));
            }
        }
    }
    conn.read_frame(|frame| {
        check_opcode(&node, &frame, op)?;
        answer_binary(&node, command, &frame)
    })?
}

fn check_opcode(node: &str, frame: &Frame<'_>, op: u8) -> Result<()> {
    if frame.opcode == op {
        Ok(())
    } else {
        Err(frame_error(
            node,
            binary::FrameError::Unexpected {
                opcode: frame.opcode,
                status: frame.status,
            },
        ))
    }
}

fn frame_error(node: &str, error: binary::FrameError) -> Error {
    Error::Protocol {
        node: node.to_owned(),
        message: error.to_string(),
    }
}

/// The answer to `command` carried by `frame` (of the right opcode).
fn answer_binary(node: &str, command: &Command<'_>, frame: &Frame<'_>) -> Result<Answer> {
    if frame.status != Status::SUCCESS {
        if let (Command::Retrieve { .. }, Status::KEY_NOT_FOUND) = (command, frame.status) {
            return Ok(Answer::Item(None));
        }
        return Err(status_error(node, command, frame));
    }
    Ok(match *command {
        Command::Retrieve { verb, .. } => {
            let flags = frame
                .flags()
                .ok_or_else(|| frame_error(node, binary::FrameError::Malformed("retrieval")))?;
            let cas =
                matches!(verb, RetrievalVerb::Gets | RetrievalVerb::Gats(_)).then_some(frame.cas);
            Answer::Item(Some(Item {
                value: frame.value.to_vec(),
                flags,
                cas,
            }))
        }
        Command::Arith { .. } => {
            let bytes: [u8; 8] = frame
                .value
                .try_into()
                .map_err(|_| frame_error(node, binary::FrameError::Malformed("counter")))?;
            Answer::Number(u64::from_be_bytes(bytes))
        }
        Command::Version => Answer::Version(
            std::str::from_utf8(frame.value)
                .map_err(|_| frame_error(node, binary::FrameError::Malformed("version")))?
                .to_owned(),
        ),
        Command::Store { .. }
        | Command::Delete { .. }
        | Command::Touch { .. }
        | Command::FlushAll { .. } => Answer::Done,
        Command::Stats { .. } => unreachable!("stats are read frame by frame"),
    })
}

/// The typed error for a non-success status, with the text protocol's meaning: `add` of an
/// existing key and `replace` of a missing one are "not stored", a CAS mismatch "exists".
pub(crate) fn status_error(node: &str, command: &Command<'_>, frame: &Frame<'_>) -> Error {
    let message =
        || String::from_utf8_lossy(&frame.value[..frame.value.len().min(200)]).into_owned();
    match (frame.status, command) {
        (
            Status::KEY_EXISTS,
            Command::Store {
                verb: StorageVerb::Add,
                ..
            },
        ) => Error::NotStored,
        (
            Status::KEY_NOT_FOUND,
            Command::Store {
                verb: StorageVerb::Replace | StorageVerb::Append | StorageVerb::Prepend,
                ..
            },
        ) => Error::NotStored,
        (Status::KEY_NOT_FOUND, _) => Error::NotFound,
        (Status::KEY_EXISTS, _) => Error::Exists,
        (Status::NOT_STORED, _) => Error::NotStored,
        (Status::NON_NUMERIC, _) => {
            Error::ClientError("cannot increment or decrement non-numeric value".into())
        }
        (Status::TOO_LARGE, _) => Error::ServerError("object too large for cache".into()),
        (Status::OUT_OF_MEMORY, _) => Error::ServerError("out of memory storing object".into()),
        (Status::INVALID_ARGUMENTS, _) => Error::ClientError(message()),
        (Status::UNKNOWN_COMMAND, _) => Error::UnknownCommand,
        (Status::AUTH_ERROR, _) => Error::Auth {
            node: node.to_owned(),
            message: format!("refused as unauthenticated: {}", message()),
        },
        (status, _) => Error::ServerError(format!("status {status}: {}", message())),
    }
}

// ----- multi-get -----------------------------------------------------------------------

/// Encodes a pipelined multi-get of `keys` in `protocol`: text `get`s of up to
/// [`MULTI_GET_CHUNK`] keys, or one binary GETKQ per key closed by a NOOP. Returns how many
/// terminators ([`read_multi_get`]'s `ends`) the replies carry.
pub(crate) fn encode_multi_get(protocol: Protocol, keys: &[&[u8]], out: &mut Vec<u8>) -> usize {
    match protocol {
        Protocol::Text => {
            for chunk in keys.chunks(MULTI_GET_CHUNK) {
                protocol::encode_retrieval(out, RetrievalVerb::Get, chunk);
            }
            keys.len().div_ceil(MULTI_GET_CHUNK)
        }
        Protocol::Binary => {
            for key in keys {
                encode::get(out, opcode::GETKQ, key, 0);
            }
            encode::simple(out, opcode::NOOP, 0);
            1
        }
    }
}

/// Reads the replies of [`encode_multi_get`]: items until `ends` terminators (`END`s, or the
/// NOOP reply).
pub(crate) fn read_multi_get(
    conn: &mut Connection,
    ends: usize,
    mut on_value: impl FnMut(&[u8], Item),
) -> Result<()> {
    if conn.protocol() == Protocol::Text {
        return read_values(conn, ends, on_value);
    }
    let node = conn.node().to_owned();
    let command = Command::Retrieve {
        verb: RetrievalVerb::Get,
        key: b"",
    };
    loop {
        let done = conn.read_frame(|frame| match frame.opcode {
            opcode::NOOP if frame.status == Status::SUCCESS => Ok(true),
            opcode::GETKQ if frame.status == Status::SUCCESS => {
                let flags = frame
                    .flags()
                    .ok_or_else(|| frame_error(&node, binary::FrameError::Malformed("GETKQ")))?;
                on_value(
                    frame.key,
                    Item {
                        value: frame.value.to_vec(),
                        flags,
                        cas: None,
                    },
                );
                Ok(false)
            }
            // Quiet gets are silent on a miss, so any other status is an error.
            opcode::GETKQ | opcode::NOOP => Err(status_error(&node, &command, &frame)),
            _ => Err(frame_error(
                &node,
                binary::FrameError::Unexpected {
                    opcode: frame.opcode,
                    status: frame.status,
                },
            )),
        })??;
        if done {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(opcode: u8, status: Status, value: &[u8]) -> Frame<'_> {
        Frame {
            opcode,
            status,
            opaque: 0,
            cas: 0,
            extras: b"",
            key: b"",
            value,
        }
    }

    fn store(verb: StorageVerb) -> Command<'static> {
        Command::Store {
            verb,
            key: b"k",
            value: b"v",
            flags: 0,
            exptime: 0,
            cas: (verb == StorageVerb::Cas).then_some(1),
        }
    }

    /// Binary statuses mean what the text replies mean for the same command.
    #[test]
    fn statuses_map_onto_the_text_errors() {
        let err = |command: Command<'static>, status| {
            status_error("n:1", &command, &frame(0, status, b"message"))
        };
        use StorageVerb::*;
        assert!(matches!(
            err(store(Add), Status::KEY_EXISTS),
            Error::NotStored
        ));
        assert!(matches!(
            err(store(Replace), Status::KEY_NOT_FOUND),
            Error::NotStored
        ));
        assert!(matches!(
            err(store(Append), Status::NOT_STORED),
            Error::NotStored
        ));
        assert!(matches!(
            err(store(Prepend), Status::KEY_NOT_FOUND),
            Error::NotStored
        ));
        assert!(matches!(err(store(Cas), Status::KEY_EXISTS), Error::Exists));
        assert!(matches!(
            err(store(Cas), Status::KEY_NOT_FOUND),
            Error::NotFound
        ));
        assert!(
            matches!(err(store(Set), Status::TOO_LARGE), Error::ServerError(m) if m == "object too large for cache")
        );
        assert!(matches!(
            err(store(Set), Status::OUT_OF_MEMORY),
            Error::ServerError(_)
        ));
        let delete = Command::Delete { key: b"k" };
        assert!(matches!(
            err(delete, Status::KEY_NOT_FOUND),
            Error::NotFound
        ));
        let incr = Command::Arith {
            incr: true,
            key: b"k",
            delta: 1,
        };
        assert!(matches!(err(incr, Status::KEY_NOT_FOUND), Error::NotFound));
        assert!(matches!(
            err(incr, Status::NON_NUMERIC),
            Error::ClientError(_)
        ));
        assert!(
            matches!(err(incr, Status::INVALID_ARGUMENTS), Error::ClientError(m) if m == "message")
        );
        assert!(matches!(
            err(Command::Version, Status::UNKNOWN_COMMAND),
            Error::UnknownCommand
        ));
        assert!(matches!(
            err(Command::Version, Status::AUTH_ERROR),
            Error::Auth { .. }
        ));
        assert!(
            matches!(err(Command::Version, Status(0x99)), Error::ServerError(m) if m.contains("0x99"))
        );
    }

    #[test]
    fn answers_of_each_kind() {
        let get = Command::Retrieve {
            verb: RetrievalVerb::Gets,
            key: b"k",
        };
        let hit = Frame {
            extras: &[0, 0, 0, 3],
            cas: 9,
            ..frame(opcode::GET, Status::SUCCESS, b"val")
        };
        match answer_binary("n:1", &get, &hit).unwrap() {
            Answer::Item(Some(item)) => {
                assert_eq!(
                    (item.value, item.flags, item.cas),
                    (b"val".to_vec(), 3, Some(9))
                )
            }
            other => panic!("{other:?}"),
        }
        // A hit without its flags is malformed, a miss is `None`.
        let bare = frame(opcode::GET, Status::SUCCESS, b"val");
        assert!(matches!(
            answer_binary("n:1", &get, &bare),
            Err(Error::Protocol { .. })
        ));
        let miss = frame(opcode::GET, Status::KEY_NOT_FOUND, b"Not found");
        assert!(matches!(
            answer_binary("n:1", &get, &miss),
            Ok(Answer::Item(None))
        ));
        // Counters are exactly 8 bytes.
        let incr = Command::Arith {
            incr: true,
            key: b"k",
            delta: 1,
        };
        let n = 5u64.to_be_bytes();
        assert!(matches!(
            answer_binary("n:1", &incr, &frame(opcode::INCREMENT, Status::SUCCESS, &n)),
            Ok(Answer::Number(5))
        ));
        assert!(matches!(
            answer_binary(
                "n:1",
                &incr,
                &frame(opcode::INCREMENT, Status::SUCCESS, b"5")
            ),
            Err(Error::Protocol { .. })
        ));
        assert!(matches!(
            answer_binary(
                "n:1",
                &Command::Version,
                &frame(opcode::VERSION, Status::SUCCESS, b"\xff")
            ),
            Err(Error::Protocol { .. })
        ));
        // A reply to another opcode is out of step.
        let other = frame(opcode::SET, Status::SUCCESS, b"");
        assert!(matches!(
            check_opcode("n:1", &other, opcode::GET),
            Err(Error::Protocol { .. })
        ));
    }

    #[test]
    fn multi_get_requests() {
        let mut out = Vec::new();
        assert_eq!(
            encode_multi_get(Protocol::Binary, &[b"a", b"bc"], &mut out),
            1
        );
        let mut want = Vec::new();
        encode::get(&mut want, opcode::GETKQ, b"a", 0);
        encode::get(&mut want, opcode::GETKQ, b"bc", 0);
        encode::simple(&mut want, opcode::NOOP, 0);
        assert_eq!(out, want);
        out.clear();
        let keys: Vec<&[u8]> = vec![b"k"; 65];
        assert_eq!(encode_multi_get(Protocol::Text, &keys, &mut out), 2);
        assert!(out.starts_with(b"get k k "));
    }
}
