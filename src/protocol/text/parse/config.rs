//! `config get|set|delete <key>` (ElastiCache auto discovery) and the
//! node-to-node `cluster sync <bytes>`. Syntax only: which keys exist and who
//! may change them is decided by `exec` and `cluster`.

use super::{client_error, invalid, noreply, parse_u32, parse_u64, request, Tokens};
use crate::protocol::{ClientError, Limits, Parsed, Request, Response, ServerError};

/// Largest `cluster sync` block (the membership state of a few thousand
/// nodes); independent of `-I` so a small item limit cannot split a cluster.
const CLUSTER_SYNC_MAX: usize = 1 << 20;

/// `config get <key>`, `config set <key> <flags> <bytes> [noreply]` + data,
/// `config delete <key> [noreply]`. Anything else is `ERROR`, which makes
/// discovery clients fall back to the legacy `get`.
pub(super) fn config<'a>(
    mut tokens: Tokens<'a>,
    buf: &'a [u8],
    next: usize,
    limits: &Limits,
) -> Parsed<'a> {
    match tokens.next() {
        Some(b"get") => {
            let (args, n) = tokens.take::<1>();
            if n != 1 {
                return invalid(Response::Error, next, false);
            }
            request(Request::ConfigGet { key: args[0] }, next)
        }
        Some(b"set") => {
            let (args, n) = tokens.take::<4>();
            if n != 3 && n != 4 {
                return invalid(Response::Error, next, false);
            }
            let args = &args[..n];
            let noreply = noreply(args);
            if n == 4 && !noreply {
                return client_error(ClientError::BadCommandLineFormat, next, false);
            }
            let (Some(flags), Some(len)) = (parse_u32(args[1]), parse_u64(args[2])) else {
                return client_error(ClientError::BadCommandLineFormat, next, noreply);
            };
            match block(buf, next, len, limits.item_size_max, noreply) {
                Ok((value, end)) => request(
                    Request::ConfigSet {
                        key: args[0],
                        flags,
                        value,
                        noreply,
                    },
                    end,
                ),
                Err(p) => p,
            }
        }
        Some(b"delete") => {
            let (args, n) = tokens.take::<2>();
            let args = &args[..n.min(2)];
            let noreply = n == 2 && noreply(args);
            if n != 1 && !noreply {
                return invalid(Response::Error, next, false);
            }
            request(
                Request::ConfigDelete {
                    key: args[0],
                    noreply,
                },
                next,
            )
        }
        _ => invalid(Response::Error, next, false),
    }
}

/// `cluster sync <bytes>` + data block.
pub(super) fn cluster<'a>(
    mut tokens: Tokens<'a>,
    buf: &'a [u8],
    next: usize,
    _limits: &Limits,
) -> Parsed<'a> {
    if tokens.next() != Some(b"sync") {
        return invalid(Response::Error, next, false);
    }
    let (args, n) = tokens.take::<1>();
    let len = match (n, parse_u64(args[0])) {
        (1, Some(len)) => len,
        _ => return client_error(ClientError::BadCommandLineFormat, next, false),
    };
    match block(buf, next, len, CLUSTER_SYNC_MAX, false) {
        Ok((data, end)) => request(Request::ClusterSync { data }, end),
        Err(p) => p,
    }
}

/// Frames a data block of `len` bytes plus `\r\n` starting at `start`, the
/// way storage commands are framed.
fn block(
    buf: &[u8],
    start: usize,
    len: u64,
    max: usize,
    noreply: bool,
) -> Result<(&[u8], usize), Parsed<'static>> {
    let too_large = || Parsed::Invalid {
        error: Response::ServerError(ServerError::ObjectTooLarge),
        consumed: 0,
        swallow: 0,
        close: false,
        quiet: noreply,
    };
    let len = match usize::try_from(len) {
        Ok(len) if len <= max => len,
        _ => {
            // Too large to buffer: refuse it and skip what is announced.
            let Parsed::Invalid {
                error,
                close,
                quiet,
                ..
            } = too_large()
            else {
                unreachable!()
            };
            let announced = usize::try_from(len).unwrap_or(usize::MAX);
            let end = start.saturating_add(announced).saturating_add(2);
            let consumed = end.min(buf.len());
            return Err(Parsed::Invalid {
                error,
                consumed,
                swallow: end - consumed,
                close,
                quiet,
            });
        }
    };
    let end = start + len + 2;
    if buf.len() < end {
        return Err(Parsed::Incomplete);
    }
    if &buf[start + len..end] != b"\r\n" {
        return Err(client_error(ClientError::BadDataChunk, end, noreply));
    }
    Ok((&buf[start..start + len], end))
}

#[cfg(test)]
mod tests {
    use crate::protocol::text::parse;
    use crate::protocol::{ClientError, Limits, Parsed, Request, Response};

    fn req(bytes: &[u8]) -> Request<'_> {
        match parse(bytes, &Limits::default()) {
            Parsed::Request { request, consumed } => {
                assert_eq!(consumed, bytes.len());
                request
            }
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bytes)),
        }
    }

    fn error(bytes: &[u8]) -> Response<'static> {
        match parse(bytes, &Limits::default()) {
            Parsed::Invalid { error, .. } => error,
            other => panic!("{:?}: {other:?}", String::from_utf8_lossy(bytes)),
        }
    }

    #[test]
    fn config_get_as_clients_send_it() {
        for line in [
            &b"config get cluster\r\n"[..],
            b"config get cluster\n",
            b"config get cluster \r\n",
            b"config  get   cluster  \n",
        ] {
            assert_eq!(req(line), Request::ConfigGet { key: b"cluster" });
        }
        assert_eq!(
            parse(b"config get clus", &Limits::default()),
            Parsed::Incomplete
        );
    }

    #[test]
    fn config_set_and_delete() {
        assert_eq!(
            req(b"config set cluster 0 7\r\n1\na||1\n\r\n"),
            Request::ConfigSet {
                key: b"cluster",
                flags: 0,
                value: b"1\na||1\n",
                noreply: false
            }
        );
        assert_eq!(
            parse(b"config set cluster 0 8\r\n1\na||", &Limits::default()),
            Parsed::Incomplete
        );
        assert_eq!(
            error(b"config set cluster 0 3\r\n1\na||1\n\r\n"),
            Response::ClientError(ClientError::BadDataChunk)
        );
        assert_eq!(
            error(b"config set cluster x 3\r\n"),
            Response::ClientError(ClientError::BadCommandLineFormat)
        );
        assert_eq!(
            req(b"config delete cluster\r\n"),
            Request::ConfigDelete {
                key: b"cluster",
                noreply: false
            }
        );
        assert_eq!(
            req(b"config delete cluster noreply\n"),
            Request::ConfigDelete {
                key: b"cluster",
                noreply: true
            }
        );
    }

    #[test]
    fn unknown_subcommands_are_error() {
        for line in [
            &b"config\r\n"[..],
            b"config list\r\n",
            b"config get\r\n",
            b"config get a b\r\n",
            b"config delete\r\n",
            b"config delete a b\r\n",
            b"config set cluster\r\n",
            b"cluster\r\n",
            b"cluster join\r\n",
        ] {
            assert_eq!(error(line), Response::Error, "{line:?}");
        }
    }

    #[test]
    fn cluster_sync() {
        assert_eq!(
            req(b"cluster sync 3\r\nabc\r\n"),
            Request::ClusterSync { data: b"abc" }
        );
        assert_eq!(
            error(b"cluster sync x\r\n"),
            Response::ClientError(ClientError::BadCommandLineFormat)
        );
        let huge = b"cluster sync 99999999\r\n";
        assert!(matches!(
            parse(huge, &Limits::default()),
            Parsed::Invalid { swallow, .. } if swallow > 0
        ));
    }
}
