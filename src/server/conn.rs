//! One client connection: buffers, the read → parse → execute → write loop,
//! and back-pressure.
//!
//! Memory: an idle connection owns no buffers. Reads land in the worker's
//! scratch buffer and replies are encoded into the worker's output buffer;
//! only bytes that cannot be handled at once (a partial request, output the
//! socket would not take) are copied into the connection's own buffers, which
//! are released again once drained.
//!
//! Back-pressure: when more than [`OUT_HIGH_WATER`] bytes of replies are
//! queued the connection stops parsing and stops reading until the client has
//! read them, so a client that never reads cannot make the server buffer
//! without bound. A multi-key read that fills the output pauses between keys
//! and resumes where it stopped.
//!
//! Codec: fixed by the first byte the connection sends (`0x80` = binary,
//! anything else = text), within what `-B` allows.
//!
//! Authentication: with `-S` or `-Y` a connection starts unauthenticated.
//! Binary connections may then only send SASL_LIST_MECHS/AUTH/STEP and
//! VERSION (anything else: auth error, close); text connections only the
//! authentication `set` (anything else: `CLIENT_ERROR unauthenticated`,
//! close). The SASL exchange state lives here, per connection.
//!
//! Transport: plain TCP reads and writes the socket directly. A connection
//! from a TLS listener goes through its rustls session (`server::tls`),
//! driven only by socket readiness, so a handshake never blocks the worker.

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use mio::net::TcpStream;
use rustls::ServerConnection;

use super::uploads::{Reservation, UploadBudget};
use crate::auth::{SaslConn, Step};
use crate::clock::RelTime;
use crate::config::Binding;
use crate::exec::{self, Context, Outcome, Sink};
use crate::protocol::binary::Status;
use crate::protocol::binary::{self, Frame, Reply};
use crate::protocol::{
    text, ClientError, Limits, Parsed, Request, Response, StoreMode, LINE_MAX_LENGTH,
};
use crate::server::tls;

/// Queued reply bytes above which a connection stops taking requests.
pub const OUT_HIGH_WATER: usize = 256 * 1024;
/// Own buffers larger than this are released when they empty.
const KEEP_CAPACITY: usize = 16 * 1024;
/// Requests answered per connection and turn while shutting down, so that
/// one connection's backlog does not delay the others' flushing.
const SHUTDOWN_REQUESTS_PER_TURN: usize = 16;

/// Unprocessed input an unauthenticated connection may hold. A credential
/// exchange is far smaller (user names and secrets are at most 1024 bytes
/// each); without this bound a client that never authenticates could make
/// the server buffer a whole value (`-I`) on every connection it opens.
const PREAUTH_INPUT_MAX: usize = 8 * 1024;
/// Smallest read into a connection's own buffer.
const READ_CHUNK: usize = 16 * 1024;
/// Largest read into a connection's own buffer: the space is zeroed before
/// each read, so it must not grow with the buffer.
const READ_CHUNK_MAX: usize = 256 * 1024;
/// Reads per turn before a connection yields to the others on its worker,
/// whether or not they completed a request (the request budget, `-R`,
/// cannot see a client streaming one endless body).
const READS_PER_TURN: usize = 16;

/// Buffers a worker lends to the connection it is serving.
pub struct Scratch {
    pub input: Vec<u8>,
    pub output: Vec<u8>,
}

impl Scratch {
    pub fn new() -> Self {
        Scratch {
            input: vec![0; 64 * 1024],
            output: Vec::with_capacity(64 * 1024),
        }
    }
}

impl Default for Scratch {
    fn default() -> Self {
        Self::new()
    }
}

/// What the worker should do with a connection after driving it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// Wait for the next readiness event.
    Wait,
    /// The request budget ran out with work left: drive again soon, after
    /// other connections had their turn.
    Yield,
    /// Close now.
    Close,
}

/// Why request processing stopped.
enum Stop {
    /// The buffered input holds no complete request.
    NeedInput,
    /// The request budget is spent.
    Budget,
    /// Too much output is queued.
    OutputFull,
    /// Close after flushing.
    Close,
}

struct TextSink<'a> {
    out: &'a mut Vec<u8>,
    quiet: bool,
}

impl Sink for TextSink<'_> {
    #[inline]
    fn reply(&mut self, response: &Response<'_>) {
        if !self.quiet {
            text::encode(response, self.out);
        }
    }

    #[inline]
    fn is_full(&self) -> bool {
        self.out.len() >= OUT_HIGH_WATER
    }
}

/// Encodes replies to one binary request.
struct BinarySink<'a, 'k> {
    out: &'a mut Vec<u8>,
    reply: Reply<'k>,
}

impl Sink for BinarySink<'_, '_> {
    #[inline]
    fn reply(&mut self, response: &Response<'_>) {
        self.reply.encode(response, self.out);
    }

    #[inline]
    fn is_full(&self) -> bool {
        self.out.len() >= OUT_HIGH_WATER
    }

    #[inline]
    fn cas(&mut self, cas: u64) {
        self.reply.set_cas(cas);
    }
}

/// The wire protocol a connection speaks, fixed by its first byte.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Codec {
    Undecided,
    Text,
    Binary,
}

pub struct Conn {
    pub stream: TcpStream,
    /// Registry id (`stats conns`).
    pub id: u64,
    /// Unprocessed input carried between events.
    rbuf: Vec<u8>,
    /// Output the socket has not taken yet; `wpos` bytes of it are written.
    wbuf: Vec<u8>,
    wpos: usize,
    /// Bytes of a rejected data block still to discard.
    swallow: usize,
    /// Next key of a paused multi-key read.
    resume: usize,
    /// Close once the output is flushed.
    closing: bool,
    /// The peer has closed its sending side.
    eof: bool,
    /// A readiness event reported the peer's close (FIN or error) that no
    /// read has returned yet: the next read must not be skipped, because
    /// with edge triggering no further event will announce it.
    hangup: bool,
    /// When the last request was parsed (initially: accepted); shared with
    /// the `stats conns` table.
    last_cmd: Arc<AtomicU32>,
    /// When the connection was accepted.
    accepted: RelTime,
    /// The share of the upload budget `rbuf` holds beyond the free amount.
    upload: Reservation,
    codec: Codec,
    /// Passed SASL or text authentication (only consulted when the server
    /// requires it).
    authenticated: bool,
    /// A SASL exchange in progress.
    sasl: Option<Box<SaslConn>>,
    /// The TLS session of a connection on a TLS listener; `None` is plain
    /// TCP, whose reads and writes go straight to the socket.
    tls: Option<Box<ServerConnection>>,
    /// The TLS close_notify alert is queued.
    close_notified: bool,
    /// Shutting down: the sending side is shut.
    write_shut: bool,
    /// `rbuf` is a text command line without a newline, judged incomplete
    /// by the parser at this length (0: not known).
    line_judged: usize,
}

/// Bytes sent on the socket that the peer has not acknowledged yet
/// (including a FIN), or 0 where the kernel cannot tell.
fn unacknowledged(stream: &TcpStream) -> usize {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let mut n: libc::c_int = 0;
        // SAFETY: SIOCOUTQ (TIOCOUTQ) writes one int through the pointer.
        let rc = unsafe { libc::ioctl(stream.as_raw_fd(), libc::TIOCOUTQ, &mut n) };
        if rc == 0 {
            return n.max(0) as usize;
        }
    }
    let _ = stream;
    0
}

/// Reads from the transport: the socket itself, or plaintext out of TLS.
#[inline]
fn sock_read(
    stream: &mut TcpStream,
    session: &mut Option<Box<ServerConnection>>,
    buf: &mut [u8],
    cx: &Context<'_>,
) -> io::Result<usize> {
    match session {
        None => stream.read(buf),
        Some(t) => {
            static NONE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
            let errors = cx.state.tls.as_ref().map_or(&NONE, |s| &s.handshake_errors);
            let r = tls::read(t, stream, buf, errors);
            if let Err(e) = &r {
                if e.kind() == io::ErrorKind::InvalidData {
                    // rustls's reason (an alert, a certificate check), never
                    // key material; with the address, like failed logins.
                    let from = cx.state.conn_peer(cx.conn_id);
                    let from = from.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
                    cx.state.log(
                        1,
                        format_args!("<{} TLS error from {from}: {e}", cx.conn_id),
                    );
                }
            }
            r
        }
    }
}

/// Writes to the transport: the socket itself, or through TLS.
#[inline]
fn sock_write(
    stream: &mut TcpStream,
    session: &mut Option<Box<ServerConnection>>,
    buf: &[u8],
) -> io::Result<usize> {
    match session {
        None => stream.write(buf),
        Some(t) => tls::write(t, stream, buf),
    }
}

impl Conn {
    pub fn new(
        stream: TcpStream,
        id: u64,
        last_cmd: Arc<AtomicU32>,
        uploads: Arc<UploadBudget>,
    ) -> Self {
        Conn {
            stream,
            id,
            rbuf: Vec::new(),
            wbuf: Vec::new(),
            wpos: 0,
            swallow: 0,
            resume: 0,
            closing: false,
            eof: false,
            hangup: false,
            accepted: last_cmd.load(Ordering::Relaxed),
            upload: Reservation::new(uploads),
            last_cmd,
            codec: Codec::Undecided,
            authenticated: false,
            sasl: None,
            tls: None,
            close_notified: false,
            write_shut: false,
            line_judged: 0,
        }
    }

    /// Records that a readiness event reported the peer's close.
    pub fn note_hangup(&mut self) {
        self.hangup = true;
    }

    /// Makes this a TLS connection; the handshake happens as bytes arrive.
    pub fn set_tls(&mut self, session: Box<ServerConnection>) {
        self.tls = Some(session);
    }

    /// TLS records queued but not yet written to the socket.
    fn tls_pending(&self) -> bool {
        self.tls.as_ref().is_some_and(|t| t.wants_write())
    }

    /// Queued bytes not yet written. While a sink holds the buffer it is
    /// empty here, and `wpos` is 0 outside `flush`, so this never underflows.
    fn pending_output(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// Writes queued output; true when all of it went out.
    fn flush(&mut self, cx: &Context<'_>) -> io::Result<bool> {
        while self.wpos < self.wbuf.len() {
            match sock_write(&mut self.stream, &mut self.tls, &self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.wpos += n;
                    cx.stats.bytes_written.add(n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    // Drop what was written, so the buffer holds only unsent
                    // bytes (it cannot grow behind a slow reader) and
                    // `wpos` is 0 whenever the buffer is handed to a sink.
                    self.wbuf.drain(..self.wpos);
                    self.wpos = 0;
                    return Ok(false);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        self.wpos = 0;
        if self.wbuf.capacity() > KEEP_CAPACITY {
            self.wbuf = Vec::new();
        } else {
            self.wbuf.clear();
        }
        Ok(true)
    }

    /// Gives back the room a large request needed once it is consumed: an
    /// idle connection that once received a 1 MB value must not keep 1 MB.
    fn trim_input(&mut self) {
        if self.rbuf.capacity() > KEEP_CAPACITY && self.rbuf.len() <= KEEP_CAPACITY / 2 {
            if self.rbuf.is_empty() {
                self.rbuf = Vec::new();
            } else {
                self.rbuf.shrink_to(KEEP_CAPACITY / 2);
            }
        }
        self.upload.shrink_to(self.rbuf.len());
    }

    /// The upload budget cannot cover more input: parses the buffer again
    /// with no room for values still arriving, so a storage command whose
    /// value is incomplete is refused and its data swallowed. True when that
    /// consumed input; false when what waits is not a value (a long command
    /// line or frame, bounded by its own limits), which may read on.
    fn refuse_pending_value(
        &mut self,
        scratch: &mut Scratch,
        cx: &Context<'_>,
        limits: &Limits,
        budget: &mut usize,
    ) -> io::Result<bool> {
        let strict = Limits {
            pending_value_max: 0,
            ..*limits
        };
        let rbuf = std::mem::take(&mut self.rbuf);
        let res = self.process_into_output(&rbuf, scratch, cx, &strict, budget);
        self.rbuf = rbuf;
        let (consumed, stop) = res?;
        self.rbuf.drain(..consumed);
        self.trim_input();
        self.note_partial_line(&stop);
        Ok(consumed > 0)
    }

    /// Writes the worker's output buffer directly; whatever the socket does
    /// not take is kept in the connection's own buffer.
    fn flush_scratch(&mut self, out: &mut Vec<u8>, cx: &Context<'_>) -> io::Result<()> {
        let mut pos = 0;
        while pos < out.len() {
            match sock_write(&mut self.stream, &mut self.tls, &out[pos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    pos += n;
                    cx.stats.bytes_written.add(n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    out.clear();
                    return Err(e);
                }
            }
        }
        if pos < out.len() {
            self.wbuf.extend_from_slice(&out[pos..]);
        }
        out.clear();
        Ok(())
    }

    /// Serves the connection until it would block, its budget is spent, or
    /// it must close.
    pub fn drive(
        &mut self,
        scratch: &mut Scratch,
        cx: &Context<'_>,
        limits: &Limits,
        budget: usize,
    ) -> Next {
        match self.drive_inner(scratch, cx, limits, budget) {
            Ok(next) => next,
            Err(_) => Next::Close,
        }
    }

    fn drive_inner(
        &mut self,
        scratch: &mut Scratch,
        cx: &Context<'_>,
        limits: &Limits,
        mut budget: usize,
    ) -> io::Result<Next> {
        let mut reads = 0;
        loop {
            // 0. TLS records the socket did not take last time.
            if let Some(t) = &mut self.tls {
                tls::flush(t, &mut self.stream)?;
            }
            // 1. Queued output first: it bounds everything else.
            if self.pending_output() > 0
                && !self.flush(cx)?
                && self.pending_output() >= OUT_HIGH_WATER
            {
                return Ok(Next::Wait);
            }
            if self.closing {
                if self.pending_output() > 0 {
                    return Ok(Next::Wait);
                }
                if let Some(t) = &mut self.tls {
                    if !self.close_notified {
                        // A clean TLS close, so clients see an orderly end.
                        self.close_notified = true;
                        t.send_close_notify();
                        tls::flush(t, &mut self.stream)?;
                    }
                }
                return Ok(if self.tls_pending() {
                    Next::Wait
                } else {
                    Next::Close
                });
            }

            // 2. Input carried over from earlier events.
            if (!self.rbuf.is_empty() || self.swallow > 0) && !self.line_still_partial(limits) {
                let rbuf = std::mem::take(&mut self.rbuf);
                let (consumed, stop) =
                    self.process_into_output(&rbuf, scratch, cx, limits, &mut budget)?;
                self.rbuf = rbuf;
                self.rbuf.drain(..consumed);
                self.trim_input();
                self.note_partial_line(&stop);
                match stop {
                    Stop::NeedInput => {}
                    Stop::Budget => return Ok(Next::Yield),
                    Stop::OutputFull | Stop::Close => continue,
                }
            }
            if self.eof {
                // The peer sent all it will send and every complete request
                // is answered.
                self.closing = true;
                continue;
            }

            // 3. Read more. Before authentication only a credential
            // exchange is expected, which is small: a client that keeps
            // sending more is refused rather than buffered.
            if self.rbuf.len() > PREAUTH_INPUT_MAX && !self.may_serve(cx) && !self.closing {
                self.refuse_preauth_input();
                continue;
            }
            // Or let the others have a turn first.
            if reads == READS_PER_TURN {
                return Ok(Next::Yield);
            }
            reads += 1;
            let n = if self.rbuf.is_empty() {
                match sock_read(&mut self.stream, &mut self.tls, &mut scratch.input, cx) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Next::Wait),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            } else {
                let len = self.rbuf.len();
                let chunk = (len / 2).clamp(READ_CHUNK, READ_CHUNK_MAX);
                if !self.upload.cover(len + chunk)
                    && self.refuse_pending_value(scratch, cx, limits, &mut budget)?
                {
                    continue;
                }
                self.rbuf.resize(len + chunk, 0);
                let r = sock_read(&mut self.stream, &mut self.tls, &mut self.rbuf[len..], cx);
                match r {
                    Ok(n) => {
                        self.rbuf.truncate(len + n);
                        n
                    }
                    Err(e) => {
                        self.rbuf.truncate(len);
                        match e.kind() {
                            io::ErrorKind::WouldBlock => return Ok(Next::Wait),
                            io::ErrorKind::Interrupted => continue,
                            _ => return Err(e),
                        }
                    }
                }
            };
            if n == 0 {
                self.eof = true;
                continue;
            }
            cx.stats.bytes_read.add(n as u64);

            if self.rbuf.is_empty() {
                // Fast path: serve straight from the scratch buffer and keep
                // only an incomplete tail.
                let input = std::mem::take(&mut scratch.input);
                let res = self.process_into_output(&input[..n], scratch, cx, limits, &mut budget);
                let (consumed, stop) = match res {
                    Ok(r) => r,
                    Err(e) => {
                        scratch.input = input;
                        return Err(e);
                    }
                };
                if consumed < n {
                    self.rbuf.extend_from_slice(&input[consumed..n]);
                }
                scratch.input = input;
                if matches!(stop, Stop::NeedInput)
                    && self.rbuf.len() > PREAUTH_INPUT_MAX
                    && !self.may_serve(cx)
                {
                    self.refuse_preauth_input();
                    continue;
                }
                if let Stop::Budget = stop {
                    return Ok(Next::Yield);
                }
                // A read that did not fill the buffer drained the socket:
                // with edge triggering, bytes that arrive later raise a new
                // event, so the read that would only say WouldBlock is
                // skipped (one syscall of three per unpipelined request).
                // Not under TLS: rustls may hold decrypted bytes that no
                // socket event will announce. Not when the event already
                // reported the peer's close: a FIN that arrived with the
                // last bytes raises no new event, and only the next read
                // (returning 0) lets the connection close.
                if n < scratch.input.len()
                    && self.tls.is_none()
                    && !self.hangup
                    && matches!(stop, Stop::NeedInput)
                    && self.pending_output() == 0
                    && !self.closing
                {
                    return Ok(Next::Wait);
                }
            }
            // Loop: flush, process what the slow path buffered, read again.
        }
    }

    /// Whether the buffered input is a text command line still without its
    /// newline, which the parser would judge as it did last time (wait for
    /// more). Only the bytes that arrived since are searched, so a long
    /// line (a multiget may be 4 MiB) costs linear time, not a scan of the
    /// whole line per read.
    fn line_still_partial(&mut self, limits: &Limits) -> bool {
        let judged = self.line_judged;
        let len = self.rbuf.len();
        if judged == 0 || self.codec != Codec::Text || self.swallow > 0 || len < judged {
            self.line_judged = 0;
            return false;
        }
        if memchr::memchr(b'\n', &self.rbuf[judged..]).is_some() {
            self.line_judged = 0;
            return false;
        }
        // The verdict changes when the line grows past one of its limits.
        let crosses = |limit: usize| judged <= limit && len > limit;
        if crosses(LINE_MAX_LENGTH) || crosses(limits.max_get_line) {
            self.line_judged = 0;
            return false;
        }
        self.line_judged = len;
        true
    }

    /// After parsing the buffered input: remember when what is left is a
    /// text command line without a newline, for `line_still_partial`.
    fn note_partial_line(&mut self, stop: &Stop) {
        self.line_judged = 0;
        if matches!(stop, Stop::NeedInput)
            && self.codec == Codec::Text
            && self.swallow == 0
            && !self.rbuf.is_empty()
            && memchr::memchr(b'\n', &self.rbuf).is_none()
        {
            self.line_judged = self.rbuf.len();
        }
    }

    /// Parses and executes requests from `input`, encoding replies into the
    /// worker's output buffer (or the connection's own when output is already
    /// queued, to keep order), then writes them.
    fn process_into_output(
        &mut self,
        input: &[u8],
        scratch: &mut Scratch,
        cx: &Context<'_>,
        limits: &Limits,
        budget: &mut usize,
    ) -> io::Result<(usize, Stop)> {
        if self.pending_output() > 0 {
            debug_assert_eq!(self.wpos, 0, "written bytes are dropped when a flush stops");
            let mut wbuf = std::mem::take(&mut self.wbuf);
            let r = self.process(input, &mut wbuf, cx, limits, budget);
            self.wbuf = wbuf;
            Ok(r)
        } else {
            let mut out = std::mem::take(&mut scratch.output);
            let r = self.process(input, &mut out, cx, limits, budget);
            let res = self.flush_scratch(&mut out, cx);
            scratch.output = out;
            res.map(|()| r)
        }
    }

    fn process(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        cx: &Context<'_>,
        limits: &Limits,
        budget: &mut usize,
    ) -> (usize, Stop) {
        let mut pos = 0;
        loop {
            if self.swallow > 0 {
                let n = self.swallow.min(input.len() - pos);
                pos += n;
                self.swallow -= n;
                if self.swallow > 0 {
                    return (pos, Stop::NeedInput);
                }
            }
            if pos == input.len() {
                return (pos, Stop::NeedInput);
            }
            if out.len() + self.pending_output() >= OUT_HIGH_WATER {
                return (pos, Stop::OutputFull);
            }
            if *budget == 0 {
                return (pos, Stop::Budget);
            }
            if self.codec == Codec::Undecided {
                self.codec = match cx.state.settings.protocol {
                    Binding::Ascii => Codec::Text,
                    Binding::Binary => Codec::Binary,
                    Binding::Auto if input[pos] == binary::MAGIC_REQUEST => Codec::Binary,
                    Binding::Auto => Codec::Text,
                };
            }
            if self.codec == Codec::Binary {
                match self.binary_step(&input[pos..], out, cx, limits, budget) {
                    (n, None) => pos += n,
                    (n, Some(stop)) => return (pos + n, stop),
                }
                continue;
            }
            match text::parse(&input[pos..], limits) {
                Parsed::Incomplete => return (pos, Stop::NeedInput),
                Parsed::Request { request, consumed } if !self.may_serve(cx) => {
                    *budget -= 1;
                    pos += consumed;
                    if self.text_auth(&request, out, cx) {
                        self.closing = true;
                        return (pos, Stop::Close);
                    }
                }
                Parsed::Oversized { consumed, .. } | Parsed::Invalid { consumed, .. }
                    if !self.may_serve(cx) =>
                {
                    // Before authentication every other line, valid or
                    // not, gets the same refusal.
                    pos += consumed;
                    text::encode(&Response::ClientError(ClientError::Unauthenticated), out);
                    self.closing = true;
                    return (pos, Stop::Close);
                }
                Parsed::Request { request, consumed } => {
                    *budget -= 1;
                    self.last_cmd.store(cx.state.clock.now(), Ordering::Relaxed);
                    let mut sink = TextSink {
                        out,
                        quiet: request.noreply(),
                    };
                    match exec::execute(&request, self.resume, cx, &mut sink) {
                        Outcome::Done => {
                            self.resume = 0;
                            pos += consumed;
                        }
                        Outcome::Close => {
                            pos += consumed;
                            self.closing = true;
                            return (pos, Stop::Close);
                        }
                        Outcome::Paused { next_key } => {
                            // The request stays at the front of the input and
                            // is parsed again when the output has drained.
                            self.resume = next_key;
                            return (pos, Stop::OutputFull);
                        }
                    }
                }
                Parsed::Oversized {
                    request,
                    consumed,
                    swallow,
                } => {
                    *budget -= 1;
                    let mut sink = TextSink {
                        out,
                        quiet: request.noreply(),
                    };
                    exec::execute(&request, 0, cx, &mut sink);
                    pos += consumed;
                    self.swallow = swallow;
                }
                Parsed::Invalid {
                    error,
                    consumed,
                    swallow,
                    close,
                    quiet,
                } => {
                    *budget = budget.saturating_sub(1);
                    if !quiet {
                        text::encode(&error, out);
                    }
                    pos += consumed;
                    self.swallow = swallow;
                    if close {
                        self.closing = true;
                        return (pos, Stop::Close);
                    }
                }
            }
        }
    }

    /// Parses and executes one binary frame from the front of `input`.
    /// Returns the bytes consumed and, when processing must stop, why.
    fn binary_step(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        cx: &Context<'_>,
        limits: &Limits,
        budget: &mut usize,
    ) -> (usize, Option<Stop>) {
        match binary::parse(input, limits) {
            Frame::Incomplete => (0, Some(Stop::NeedInput)),
            Frame::BadMagic => {
                self.closing = true;
                (input.len(), Some(Stop::Close))
            }
            Frame::Error {
                header,
                status,
                consumed,
                swallow,
                close,
            } => {
                *budget = budget.saturating_sub(1);
                // Before authentication, as memcached: the auth error comes
                // first, whatever else is wrong with the frame.
                if !self.may_serve(cx) && !binary::allowed_before_auth(header.opcode) {
                    return self.refuse_unauthenticated(header, out);
                }
                Reply::new(header, &Request::Noop).error(status, out);
                self.swallow = swallow;
                if close {
                    self.closing = true;
                    return (consumed, Some(Stop::Close));
                }
                (consumed, None)
            }
            Frame::Oversized {
                header,
                request,
                consumed,
                swallow,
            } => {
                *budget -= 1;
                if !self.may_serve(cx) {
                    return self.refuse_unauthenticated(header, out);
                }
                let mut sink = BinarySink {
                    out,
                    reply: Reply::new(header, &request),
                };
                exec::execute(&request, 0, cx, &mut sink);
                self.swallow = swallow;
                (consumed, None)
            }
            Frame::Request {
                header,
                request,
                consumed,
            } => {
                *budget -= 1;
                self.last_cmd.store(cx.state.clock.now(), Ordering::Relaxed);
                if !self.may_serve(cx) && !binary::allowed_before_auth(header.opcode) {
                    return self.refuse_unauthenticated(header, out);
                }
                let mut sink = BinarySink {
                    out,
                    reply: Reply::new(header, &request),
                };
                if binary::is_sasl(&request) {
                    self.sasl_request(&request, &mut sink, cx);
                    return (consumed, None);
                }
                if request == Request::Quit {
                    // QUIT answers before closing; QUITQ closes silently.
                    sink.reply(&Response::Ok);
                }
                match exec::execute(&request, 0, cx, &mut sink) {
                    Outcome::Done | Outcome::Paused { .. } => (consumed, None),
                    Outcome::Close => {
                        self.closing = true;
                        (consumed, Some(Stop::Close))
                    }
                }
            }
        }
    }

    /// Whether requests may be served: no authentication is required, or
    /// this connection has passed it.
    #[inline]
    fn may_serve(&self, cx: &Context<'_>) -> bool {
        self.authenticated || cx.state.auth.is_none()
    }

    /// Answers a binary request sent before authentication: an auth error,
    /// then the connection closes (memcached's behaviour).
    fn refuse_unauthenticated(
        &mut self,
        header: binary::Header,
        out: &mut Vec<u8>,
    ) -> (usize, Option<Stop>) {
        Reply::new(header, &Request::Noop).error(Status::AuthError, out);
        self.closing = true;
        (0, Some(Stop::Close))
    }

    /// Refuses an unauthenticated connection whose incomplete request grew
    /// past [`PREAUTH_INPUT_MAX`]: the refusal an unauthenticated request
    /// gets (binary: an auth error for the frame's header; text:
    /// `CLIENT_ERROR unauthenticated`), then the connection closes.
    fn refuse_preauth_input(&mut self) {
        let mut out = std::mem::take(&mut self.wbuf);
        match (self.codec, self.rbuf.get(..binary::HEADER_LEN)) {
            (Codec::Binary, Some(head)) => {
                let mut raw = [0u8; binary::HEADER_LEN];
                raw.copy_from_slice(head);
                Reply::new(binary::Header::read(&raw), &Request::Noop)
                    .error(Status::AuthError, &mut out);
            }
            (Codec::Binary, None) => {}
            _ => text::encode(
                &Response::ClientError(ClientError::Unauthenticated),
                &mut out,
            ),
        }
        self.wbuf = out;
        self.rbuf = Vec::new();
        self.swallow = 0;
        self.closing = true;
    }

    /// Serves SASL_LIST_MECHS, SASL_AUTH and SASL_STEP.
    fn sasl_request(
        &mut self,
        request: &Request<'_>,
        sink: &mut BinarySink<'_, '_>,
        cx: &Context<'_>,
    ) {
        let Some(sasl) = cx.state.auth.as_ref().and_then(|a| a.sasl.as_ref()) else {
            // Without -S memcached does not know these opcodes.
            let status = if cx.state.auth.is_some() {
                Status::AuthError
            } else {
                Status::UnknownCommand
            };
            sink.reply.error(status, sink.out);
            return;
        };
        if matches!(request, Request::SaslAuth { .. }) && !self.auth_admitted(cx) {
            cx.stats.auth_cmds.incr();
            cx.stats.auth_errors.incr();
            self.sasl = None;
            sink.reply.error(Status::AuthError, sink.out);
            return;
        }
        let state = self.sasl.get_or_insert_with(Default::default);
        let step = match *request {
            Request::SaslAuth { mech, data } => state.start(sasl, mech, data),
            Request::SaslStep { mech, data } => state.step(mech, data),
            _ => {
                sink.reply.value(
                    Status::Success,
                    crate::auth::sasl::MECHANISMS.as_bytes(),
                    sink.out,
                );
                return;
            }
        };
        cx.stats.auth_cmds.incr();
        match step {
            Step::Continue(challenge) => {
                sink.reply.value(Status::AuthContinue, &challenge, sink.out)
            }
            Step::Done { user, data } => {
                if let Request::SaslAuth { mech, .. } | Request::SaslStep { mech, .. } = *request {
                    cx.state.log(
                        2,
                        format_args!(
                            "<{} SASL {} authenticated {user}",
                            self.id,
                            String::from_utf8_lossy(mech)
                        ),
                    );
                }
                self.authenticated = true;
                self.auth_outcome(cx, true);
                self.sasl = None;
                let data: &[u8] = if data.is_empty() {
                    b"Authenticated"
                } else {
                    &data
                };
                sink.reply.value(Status::Success, data, sink.out);
            }
            Step::Failed => {
                cx.stats.auth_errors.incr();
                self.auth_outcome(cx, false);
                self.log_auth_failure(cx, "SASL");
                sink.reply.error(Status::AuthError, sink.out);
            }
        }
    }

    /// Text-protocol authentication (memcached's `-Y`, and with `-S` against
    /// the SASL user database): only a `set` whose data is `user password`
    /// is accepted. Returns true when the connection must close.
    fn text_auth(&mut self, request: &Request<'_>, out: &mut Vec<u8>, cx: &Context<'_>) -> bool {
        let Request::Store {
            mode: StoreMode::Set,
            value,
            noreply,
            ..
        } = *request
        else {
            text::encode(&Response::ClientError(ClientError::Unauthenticated), out);
            return true;
        };
        let Some(auth) = cx.state.auth.as_ref() else {
            return false;
        };
        cx.stats.auth_cmds.incr();
        let reply = if !value.contains(&b' ') {
            cx.stats.auth_errors.incr();
            self.auth_outcome(cx, false);
            self.log_auth_failure(cx, "text");
            Response::Line("CLIENT_ERROR bad authentication token format")
        } else if !self.auth_admitted(cx) {
            cx.stats.auth_errors.incr();
            Response::ClientError(ClientError::AuthenticationFailure)
        } else if auth.verify_text(value) {
            self.authenticated = true;
            self.auth_outcome(cx, true);
            Response::Stored
        } else {
            cx.stats.auth_errors.incr();
            self.auth_outcome(cx, false);
            self.log_auth_failure(cx, "text");
            Response::ClientError(ClientError::AuthenticationFailure)
        };
        if !noreply {
            text::encode(&reply, out);
        }
        false
    }

    /// Whether the failed-authentication throttle lets this connection's
    /// address make an attempt now. A refusal is counted and logged here;
    /// the caller answers it like a wrong password.
    fn auth_admitted(&self, cx: &Context<'_>) -> bool {
        let Some(guard) = cx.state.auth.as_ref().and_then(|a| a.guard.as_ref()) else {
            return true;
        };
        let Some(ip) = cx.state.conn_peer(self.id) else {
            return true;
        };
        if guard.admit(ip, std::time::Instant::now()) {
            return true;
        }
        cx.stats.auth_throttled.incr();
        cx.state.log(
            1,
            format_args!("<{} authentication throttled for {ip}", self.id),
        );
        false
    }

    /// Feeds a checked attempt's outcome to the throttle.
    fn auth_outcome(&self, cx: &Context<'_>, ok: bool) {
        let Some(guard) = cx.state.auth.as_ref().and_then(|a| a.guard.as_ref()) else {
            return;
        };
        let Some(ip) = cx.state.conn_peer(self.id) else {
            return;
        };
        if ok {
            guard.succeeded(ip);
        } else {
            guard.failed(ip, std::time::Instant::now());
        }
    }

    /// Logs a failed authentication with `-v`: the client's address only,
    /// never the user name (a password typed into the wrong field would
    /// end up in the log) nor any credential, so a tool watching the log
    /// can block a source that keeps failing.
    fn log_auth_failure(&self, cx: &Context<'_>, how: &str) {
        let peer = cx.state.conn_peer(self.id);
        let from = peer.map_or_else(|| "unknown".to_string(), |ip| ip.to_string());
        cx.state.log(
            1,
            format_args!("<{} {how} authentication failure from {from}", self.id),
        );
    }

    /// One step of closing this connection for a server shutdown; true once
    /// it can be closed without losing a reply. Queued replies are written,
    /// then the sending side is shut, so the client reads every reply and
    /// then EOF; input is discarded until the client closes too or has
    /// acknowledged everything sent. Closing earlier, with unread input,
    /// would reset the connection and throw away replies still in flight.
    ///
    /// Requests already read are answered first (as the output drains): a
    /// multi-key read paused for its output is finished, so its reply is not
    /// cut short, and the complete requests behind it are served. An
    /// incomplete request is dropped, and nothing more is read.
    pub fn flush_on_shutdown(
        &mut self,
        scratch: &mut Scratch,
        cx: &Context<'_>,
        limits: &Limits,
    ) -> bool {
        match self.flush(cx) {
            Ok(true) => {}
            Ok(false) => return false,
            Err(_) => return true,
        }
        if !self.write_shut && !self.closing && !self.rbuf.is_empty() {
            // Answer what was already read, a stretch at a time: the paused
            // request and the complete requests queued behind it. What is
            // still in the socket is not read.
            let rbuf = std::mem::take(&mut self.rbuf);
            let mut budget = SHUTDOWN_REQUESTS_PER_TURN;
            let res = self.process_into_output(&rbuf, scratch, cx, limits, &mut budget);
            self.rbuf = rbuf;
            match res {
                Ok((0, Stop::NeedInput)) => {
                    // An incomplete request: it can no longer complete.
                    self.rbuf.clear();
                    self.swallow = 0;
                }
                Ok((consumed, _)) => {
                    self.rbuf.drain(..consumed);
                    return false;
                }
                Err(_) => return true,
            }
        }
        if !self.write_shut {
            if let Some(t) = &mut self.tls {
                if !self.close_notified {
                    self.close_notified = true;
                    t.send_close_notify();
                }
                if tls::flush(t, &mut self.stream).is_err() {
                    return true;
                }
                if t.wants_write() {
                    return false;
                }
            }
            self.write_shut = true;
            if self.stream.shutdown(std::net::Shutdown::Write).is_err() {
                return true;
            }
        }
        let mut sink = [0u8; 4096];
        for _ in 0..64 {
            match self.stream.read(&mut sink) {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    return unacknowledged(&self.stream) == 0;
                }
                Err(_) => return true,
            }
        }
        false
    }

    /// When this connection last sent a request (or was accepted). Bytes
    /// that do not complete a request do not count, as in memcached: a
    /// client trickling a line that never ends is idle.
    pub fn last_request(&self) -> RelTime {
        self.last_cmd.load(Ordering::Relaxed)
    }

    /// When the connection was accepted.
    pub fn accepted(&self) -> RelTime {
        self.accepted
    }

    /// Has passed SASL or text authentication.
    pub fn is_authenticated(&self) -> bool {
        self.authenticated
    }

    pub fn has_output(&self) -> bool {
        self.pending_output() > 0
    }
}
