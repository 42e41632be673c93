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

use std::io::{self, Read, Write};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use mio::net::TcpStream;

use crate::clock::RelTime;
use crate::exec::{self, Context, Outcome, Sink};
use crate::protocol::{text, Limits, Parsed, Response};

/// Queued reply bytes above which a connection stops taking requests.
pub const OUT_HIGH_WATER: usize = 256 * 1024;
/// Own buffers larger than this are released when they empty.
const KEEP_CAPACITY: usize = 16 * 1024;
/// Smallest read into a connection's own buffer.
const READ_CHUNK: usize = 16 * 1024;

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
    pub last_active: RelTime,
    last_cmd: Arc<AtomicU32>,
}

impl Conn {
    pub fn new(stream: TcpStream, id: u64, last_cmd: Arc<AtomicU32>, now: RelTime) -> Self {
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
            last_active: now,
            last_cmd,
        }
    }

    fn pending_output(&self) -> usize {
        self.wbuf.len() - self.wpos
    }

    /// Writes queued output; true when all of it went out.
    fn flush(&mut self, cx: &Context<'_>) -> io::Result<bool> {
        while self.wpos < self.wbuf.len() {
            match self.stream.write(&self.wbuf[self.wpos..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.wpos += n;
                    cx.stats.bytes_written.add(n as u64);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
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

    /// Writes the worker's output buffer directly; whatever the socket does
    /// not take is kept in the connection's own buffer.
    fn flush_scratch(&mut self, out: &mut Vec<u8>, cx: &Context<'_>) -> io::Result<()> {
        let mut pos = 0;
        while pos < out.len() {
            match self.stream.write(&out[pos..]) {
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
        loop {
            // 1. Queued output first: it bounds everything else.
            if self.pending_output() > 0
                && !self.flush(cx)?
                && self.pending_output() >= OUT_HIGH_WATER
            {
                return Ok(Next::Wait);
            }
            if self.closing {
                return Ok(if self.pending_output() == 0 {
                    Next::Close
                } else {
                    Next::Wait
                });
            }

            // 2. Input carried over from earlier events.
            if !self.rbuf.is_empty() || self.swallow > 0 {
                let rbuf = std::mem::take(&mut self.rbuf);
                let (consumed, stop) =
                    self.process_into_output(&rbuf, scratch, cx, limits, &mut budget)?;
                self.rbuf = rbuf;
                self.rbuf.drain(..consumed);
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

            // 3. Read more.
            let n = if self.rbuf.is_empty() {
                match self.stream.read(&mut scratch.input) {
                    Ok(n) => n,
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(Next::Wait),
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                    Err(e) => return Err(e),
                }
            } else {
                let len = self.rbuf.len();
                self.rbuf.resize(len + READ_CHUNK.max(len / 2), 0);
                let r = self.stream.read(&mut self.rbuf[len..]);
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
            self.last_active = cx.state.clock.now();

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
                if let Stop::Budget = stop {
                    return Ok(Next::Yield);
                }
                // A read that did not fill the buffer drained the socket:
                // with edge triggering, bytes that arrive later raise a new
                // event, so the read that would only say WouldBlock is
                // skipped (one syscall of three per unpipelined request).
                if n < scratch.input.len()
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
            match text::parse(&input[pos..], limits) {
                Parsed::Incomplete => return (pos, Stop::NeedInput),
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

    /// Tries to write what is queued, for a connection being shut down.
    pub fn flush_on_shutdown(&mut self, cx: &Context<'_>) -> bool {
        matches!(self.flush(cx), Ok(true)) || self.pending_output() == 0
    }

    pub fn has_output(&self) -> bool {
        self.pending_output() > 0
    }
}
