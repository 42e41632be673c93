//! Wire protocols on top of one protocol-neutral request model.
//!
//! A codec turns bytes into [`Request`]s (a pure function of a byte slice that
//! borrows keys and values from it) and encodes [`Response`]s back into bytes.
//! Codecs never touch sockets and never call storage; `exec` sits between them.

pub mod binary;
pub mod meta;
pub mod request;
pub mod response;
pub mod text;

pub use request::{
    ArithOp, CrawlerClasses, CrawlerOp, CrawlerSetting, KeyList, Request, StatsGroup, StoreMode,
};
pub use response::{ClientError, Response, ServerError};

/// Longest key memcached accepts (`KEY_MAX_LENGTH`).
pub const KEY_MAX_LENGTH: usize = 250;

/// Longest text command line without a newline before the connection is closed
/// (memcached's 2048-byte rule); `get`/`gets` lines are exempt up to
/// [`Limits::max_get_line`].
pub const LINE_MAX_LENGTH: usize = 2048;

/// Limits a codec enforces while parsing; they come from the server settings.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Largest value a storage command may announce (`-I`); larger ones are
    /// answered `SERVER_ERROR object too large for cache` and swallowed.
    pub item_size_max: usize,
    /// Longest `get`/`gets`/`gat`/`gats` line accepted before the connection
    /// is closed. memcached has no bound here; we keep one so a client cannot
    /// grow a read buffer without limit.
    pub max_get_line: usize,
    /// Largest value that may still be waiting for its bytes. A storage
    /// command announcing a larger one whose data block is not all in the
    /// buffer yet is answered `SERVER_ERROR out of memory storing object`
    /// and its data swallowed, as memcached does when it cannot allocate
    /// the item. The server lowers this when uploads in progress have used
    /// their memory budget.
    pub pending_value_max: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            item_size_max: 1024 * 1024,
            max_get_line: 4 * 1024 * 1024,
            pending_value_max: usize::MAX,
        }
    }
}

/// Outcome of parsing the front of a read buffer.
#[derive(Debug, PartialEq)]
pub enum Parsed<'a> {
    /// A whole request; `consumed` bytes (line, data block and terminators)
    /// belong to it.
    Request {
        request: Request<'a>,
        consumed: usize,
    },
    /// A storage command announcing a data block larger than the item limit.
    /// The block is never buffered: drop `consumed` bytes now and `swallow`
    /// more as they arrive, then execute `request` (a
    /// [`Request::StoreTooLarge`]), which answers the refusal.
    Oversized {
        request: Request<'a>,
        consumed: usize,
        swallow: usize,
    },
    /// More bytes are needed; nothing is consumed.
    Incomplete,
    /// The front of the buffer is not a valid request. Reply with `error`
    /// (unless `quiet`), drop `consumed` bytes now and `swallow` more bytes as
    /// they arrive (the data block of a rejected storage command), and close
    /// the connection after the reply when `close` is set.
    Invalid {
        error: Response<'static>,
        consumed: usize,
        swallow: usize,
        close: bool,
        /// The offending command carried `noreply`, so memcached says nothing.
        quiet: bool,
    },
}
