//! The memcached text protocol codec (classic commands).
//!
//! [`parse`] is a pure function of the bytes at the front of a connection's
//! read buffer: it borrows keys and values from them, allocates nothing, and
//! tells *incomplete* (wait for more bytes) apart from *invalid* (reply and
//! skip). [`encode`] appends one reply to a write buffer.
//!
//! The codec owns framing and syntax only. It never decides whether a command
//! is allowed (`shutdown` without `-A`, `flush_all` with `-F`) or what a
//! number means (exptime, flush delay): `exec` does.
//!
//! Framing follows memcached 1.6, quirks included, so that clients see the
//! same bytes; `docs/compat-text.md` lists what was checked and where we
//! differ on purpose.

mod encode;
mod parse;
#[cfg(test)]
mod tests;

pub use encode::encode;
pub(crate) use encode::put_stat_value;
pub use parse::parse;
