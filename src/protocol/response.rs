//! The protocol-neutral response model. `exec` produces these; each codec
//! encodes them in its own wire format.

/// A `CLIENT_ERROR`: the request was malformed; the connection stays usable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientError {
    /// `bad command line format`
    BadCommandLineFormat,
    /// `bad data chunk`: the data block did not end where announced.
    BadDataChunk,
    /// `invalid exptime argument`
    InvalidExptime,
    /// `bad command line termination`
    BadCommandLineTermination,
    /// `cannot increment or decrement non-numeric value`
    NonNumericValue,
    /// `invalid numeric delta argument`
    InvalidDeltaArgument,
    /// `bad command line` (a `stats cachedump` without its arguments)
    BadCommandLine,
    /// `Illegal slab id`
    IllegalSlabId,
    /// `flush_all not allowed` (`-F`)
    FlushDisabled,
    /// `line too long`
    LineTooLong,
    /// `unauthenticated`
    Unauthenticated,
    /// `authentication failure`
    AuthenticationFailure,
    /// `bad command line format.  Usage: delete <key> [noreply]`: memcached's
    /// reply to `delete` with a hold time other than `0` or a stray argument.
    BadDeleteFormat,
    /// `invalid shutdown mode`: `shutdown` with an argument other than
    /// `graceful`.
    InvalidShutdownMode,
    /// Meta: a flag letter the command does not know.
    MetaInvalidFlag,
    /// Meta: a flag given twice.
    MetaDuplicateFlag,
    /// Meta: an `O` token longer than 32 bytes.
    MetaOpaqueTooLong,
    /// Meta: a `b` key that is not base64.
    MetaKeyDecode,
    /// Meta: a bad number after `C`, `E`, `N`, `R` or `T`.
    MetaBadToken,
    /// Meta: `ms` with an unknown `M` mode.
    MetaInvalidSetMode,
    /// Meta: `ma` with an unknown `M` mode.
    MetaInvalidArithMode,
    /// Meta: `M` not followed by exactly one letter.
    MetaMTokenLength,
    /// Meta: a bad number after `J`.
    MetaInvalidInitial,
    /// Meta: a bad number after `D`.
    MetaInvalidDelta,
    /// Meta: how `md` and `ma` report any flag problem.
    MetaInvalidOrDuplicateFlag,
    /// Meta: too many tokens on an `mg` line.
    MetaFlagsAreTooLong,
    /// Meta: too many tokens on an `ms`, `md` or `ma` line.
    MetaFlagsTooLong,
    /// A cluster configuration change (or peer exchange) from a client
    /// outside `--cluster-admin`.
    ClusterNotAdmin,
}

impl ClientError {
    /// The text after `CLIENT_ERROR `.
    pub fn message(self) -> &'static str {
        match self {
            ClientError::BadCommandLineFormat => "bad command line format",
            ClientError::BadDataChunk => "bad data chunk",
            ClientError::InvalidExptime => "invalid exptime argument",
            ClientError::BadCommandLineTermination => "bad command line termination",
            ClientError::NonNumericValue => "cannot increment or decrement non-numeric value",
            ClientError::InvalidDeltaArgument => "invalid numeric delta argument",
            ClientError::BadCommandLine => "bad command line",
            ClientError::IllegalSlabId => "Illegal slab id",
            ClientError::FlushDisabled => "flush_all not allowed",
            ClientError::LineTooLong => "line too long",
            ClientError::Unauthenticated => "unauthenticated",
            ClientError::AuthenticationFailure => "authentication failure",
            ClientError::BadDeleteFormat => {
                "bad command line format.  Usage: delete <key> [noreply]"
            }
            ClientError::InvalidShutdownMode => "invalid shutdown mode",
            ClientError::MetaInvalidFlag => "invalid flag",
            ClientError::MetaDuplicateFlag => "duplicate flag",
            ClientError::MetaOpaqueTooLong => "opaque token too long",
            ClientError::MetaKeyDecode => "error decoding key",
            ClientError::MetaBadToken => "bad token in command line format",
            ClientError::MetaInvalidSetMode => "invalid mode for ms M token",
            ClientError::MetaInvalidArithMode => "invalid mode for ma M token",
            ClientError::MetaMTokenLength => "incorrect length for M token",
            ClientError::MetaInvalidInitial => "invalid numeric initial value",
            ClientError::MetaInvalidDelta => "invalid numeric delta value",
            ClientError::MetaInvalidOrDuplicateFlag => "invalid or duplicate flag",
            ClientError::MetaFlagsAreTooLong => "options flags are too long",
            ClientError::MetaFlagsTooLong => "options flags too long",
            ClientError::ClusterNotAdmin => {
                "cluster configuration changes are not allowed from this client"
            }
        }
    }
}

/// A `SERVER_ERROR`: the request was fine but the server cannot carry it out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerError {
    /// `object too large for cache`
    ObjectTooLarge,
    /// `out of memory storing object` (`-M`, or nothing evictable)
    OutOfMemoryStoring,
    /// `out of memory`
    OutOfMemory,
}

impl ServerError {
    /// The text after `SERVER_ERROR `.
    pub fn message(self) -> &'static str {
        match self {
            ServerError::ObjectTooLarge => "object too large for cache",
            ServerError::OutOfMemoryStoring => "out of memory storing object",
            ServerError::OutOfMemory => "out of memory",
        }
    }
}

/// The value of one `STAT` line.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StatValue<'a> {
    /// An unsigned counter or gauge.
    U64(u64),
    /// A signed number.
    I64(i64),
    /// Seconds with microseconds, as memcached prints rusage (`0.123456`).
    Seconds { secs: u64, micros: u32 },
    /// A float printed with two decimals (memcached's `growth_factor`).
    F2(f64),
    /// Free text (`yes`, `no`, `127.0.0.1:11211`, …).
    Text(&'a str),
}

/// One reply, or one piece of a multi-part reply (`VALUE`s then `END`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Response<'a> {
    /// A hit of a retrieval; `cas` is present for `gets`/`gats`.
    Value {
        key: &'a [u8],
        flags: u32,
        cas: Option<u64>,
        data: &'a [u8],
    },
    /// End of a retrieval or of a stats report.
    End,
    Stored,
    NotStored,
    Exists,
    NotFound,
    Deleted,
    Touched,
    Ok,
    /// Reply to `stats reset`.
    Reset,
    /// Result of `incr`/`decr`.
    Number(u64),
    /// Reply to `version`.
    Version(&'a str),
    /// One `STAT <name> <value>` line.
    Stat {
        name: &'a str,
        value: StatValue<'a>,
    },
    /// `ERROR`: unknown command.
    Error,
    /// `ERROR <message>` (for instance `Too many open connections`).
    ErrorMsg(&'static str),
    ClientError(ClientError),
    ServerError(ServerError),
    /// `CONFIG <key> 0 <len>` and the data block of `config get`; `End`
    /// follows.
    Config {
        key: &'a [u8],
        payload: &'a [u8],
    },
    /// The configuration keys, separated by spaces (binary CONFIG_LIST).
    ConfigKeys(&'a [u8]),
    /// `CLUSTER <len>` and this node's membership state, the reply to a
    /// peer's `cluster sync`; `End` follows.
    ClusterState(&'a [u8]),
    /// `CLIENT_ERROR <message>` with a message built for this request
    /// (which node of a cluster configuration is wrong, and why).
    ClientErrorText(&'a str),
    /// One `ITEM <key> [<bytes> b; <expiry> s]` line of `stats cachedump`;
    /// `expiry` is a unix time, or 0 for an item that never expires.
    CacheDumpItem {
        key: &'a [u8],
        bytes: usize,
        expiry: i64,
    },
    /// One line of `lru_crawler metadump`: times are unix times, `exptime`
    /// -1 for an item that never expires; `size` is the item's bytes.
    MetadumpItem {
        key: &'a [u8],
        exptime: i64,
        last_access: i64,
        cas: u64,
        fetched: bool,
        class: u8,
        size: usize,
    },
    /// A whole reply line with no common shape, worded individually by
    /// memcached (`ERROR: shutdown not enabled`, `MEMLIMIT_TOO_SMALL …`).
    Line(&'static str),
    /// A meta reply (`HD`, `VA`, `EN`, `NS`, `EX`, `NF` with flags), by
    /// reference so that every other response stays small.
    Meta(&'a crate::protocol::meta::MetaReply<'a>),
    /// The `me` reply.
    MetaDebug(&'a crate::protocol::meta::MetaDebugReply<'a>),
    /// `MN`.
    MetaNoop,
}
