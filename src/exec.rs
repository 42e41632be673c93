//! Carries out one protocol-neutral request against the cache and the server
//! state, emitting responses into a [`Sink`]. It never sees sockets or wire
//! formats; the codec behind the sink decides the bytes.

mod lru_crawler;
mod meta;
mod stats_report;

use std::sync::atomic::Ordering;

use crate::cluster::state::Change;
use crate::cluster::ConfigError;
use crate::config::VERSION;
use crate::protocol::{ClientError, CrawlerSetting, Request, Response, ServerError};
use crate::state::{ServerState, ShutdownCause};
use crate::stats::ThreadStats;
use crate::storage::{
    ArithOp, ArithOutcome, DeleteOutcome, Lookup, Reassign, StoreMode, StoreOutcome,
};

/// Receives the responses of a request, encoding them for the wire.
pub trait Sink {
    /// Emits one response (or one part of a multi-part response).
    fn reply(&mut self, response: &Response<'_>);

    /// Whether enough output is queued that a long reply should pause until
    /// the client has read some of it.
    fn is_full(&self) -> bool;

    /// Learns the CAS unique of the item a write or incr/decr produced,
    /// before the reply itself. Codecs that show it (binary) keep it.
    fn cas(&mut self, _cas: u64) {}
}

/// What the connection should do after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Carry on with the next request.
    Done,
    /// Close the connection once the queued output is written.
    Close,
    /// A multi-key read stopped because the output is full; it resumes at
    /// this key index once the client has drained some output.
    Paused { next_key: usize },
}

/// Per-request view of the world: shared state, this worker's counters and
/// the connection asking.
pub struct Context<'a> {
    pub state: &'a ServerState,
    pub stats: &'a ThreadStats,
    /// Registry id of the connection, to mark it in `stats conns`.
    pub conn_id: u64,
}

/// memcached refuses `cache_memlimit` below this many megabytes.
const MEMLIMIT_MIN_MB: u64 = 8;
/// memcached takes a larger `cache_memlimit` for a byte count by mistake.
const MEMLIMIT_MAX_MB: u64 = 1_000_000_000;

/// Executes `request`. `resume` is the index of the first key still to
/// answer of a paused multi-key read (0 otherwise).
pub fn execute<S: Sink>(
    request: &Request<'_>,
    resume: usize,
    cx: &Context<'_>,
    out: &mut S,
) -> Outcome {
    let state = cx.state;
    let stats = cx.stats;
    let now = state.clock.now();
    match *request {
        Request::Get {
            keys,
            with_cas,
            touch,
        } => {
            let deadline = touch.map(|e| state.clock.deadline(e));
            let use_cas = state.settings.cache.use_cas;
            for (i, key) in keys.iter().enumerate().skip(resume) {
                if i > resume && out.is_full() {
                    return Outcome::Paused { next_key: i };
                }
                if key == LEGACY_CONFIG_KEY {
                    // Engines before 1.4.14 serve the configuration as an item.
                    stats.cmd_get.incr();
                    stats.get_hits.incr();
                    let published = state.cluster.published();
                    out.reply(&Response::Value {
                        key,
                        flags: 0,
                        cas: with_cas.then_some(0),
                        data: &published.payload,
                    });
                    continue;
                }
                // memcached counts gat/gats as touches only.
                let touching = deadline.is_some();
                if touching {
                    stats.cmd_touch.incr();
                } else {
                    stats.cmd_get.incr();
                }
                let found = state.cache.get(key, now, deadline, |item| {
                    out.reply(&Response::Value {
                        key: item.key,
                        flags: item.flags,
                        cas: with_cas.then_some(if use_cas { item.cas } else { 0 }),
                        data: item.value,
                    });
                });
                match (found, touching) {
                    (Lookup::Hit(()), true) => stats.touch_hits.incr(),
                    (Lookup::Hit(()), false) => stats.get_hits.incr(),
                    (_, true) => stats.touch_misses.incr(),
                    (miss, false) => {
                        stats.get_misses.incr();
                        match miss {
                            Lookup::Expired => stats.get_expired.incr(),
                            Lookup::Flushed => stats.get_flushed.incr(),
                            _ => {}
                        }
                    }
                }
            }
            out.reply(&Response::End);
        }
        Request::Store {
            mode,
            key,
            flags,
            exptime,
            cas,
            value,
            ..
        } => {
            stats.cmd_set.incr();
            // An item that cannot fit a page even alone is refused before
            // any merge; an append that only grows too large with the old
            // value is NOT_STORED below.
            if value.len() > state.cache.max_value_len(key.len()) {
                out.reply(&refuse_store(mode, key, ServerError::ObjectTooLarge, cx));
                return Outcome::Done;
            }
            let deadline = state.clock.deadline(exptime);
            let reply = match state
                .cache
                .store(mode, key, flags, deadline, value, cas, now)
            {
                StoreOutcome::Stored { cas } => {
                    out.cas(cas);
                    if mode == StoreMode::Cas {
                        stats.cas_hits.incr();
                    }
                    Response::Stored
                }
                StoreOutcome::NotStored => Response::NotStored,
                StoreOutcome::Exists => {
                    stats.cas_badval.incr();
                    Response::Exists
                }
                StoreOutcome::NotFound => {
                    stats.cas_misses.incr();
                    Response::NotFound
                }
                // memcached cannot build the combined item, so the append
                // simply does not happen.
                StoreOutcome::TooLarge | StoreOutcome::OutOfMemory
                    if matches!(mode, StoreMode::Append | StoreMode::Prepend) =>
                {
                    Response::NotStored
                }
                StoreOutcome::TooLarge => refuse_store(mode, key, ServerError::ObjectTooLarge, cx),
                StoreOutcome::OutOfMemory => {
                    refuse_store(mode, key, ServerError::OutOfMemoryStoring, cx)
                }
            };
            out.reply(&reply);
        }
        Request::StoreTooLarge { mode, key, .. } => {
            let reply = refuse_store(mode, key, ServerError::ObjectTooLarge, cx);
            out.reply(&reply);
        }
        Request::StoreNoMemory { mode, key, .. } => {
            let reply = refuse_store(mode, key, ServerError::OutOfMemoryStoring, cx);
            out.reply(&reply);
        }
        Request::Delete { key, .. } => delete(key, 0, cx, out),
        Request::Arith { op, key, delta, .. } => arith(op, key, delta, None, 0, cx, out),
        Request::Touch { key, exptime, .. } => {
            stats.cmd_touch.incr();
            let deadline = state.clock.deadline(exptime);
            if state.cache.touch(key, deadline, now) {
                stats.touch_hits.incr();
                out.reply(&Response::Touched);
            } else {
                stats.touch_misses.incr();
                out.reply(&Response::NotFound);
            }
        }
        Request::FlushAll { delay, .. } => {
            if !state.settings.flush_enabled {
                out.reply(&Response::ClientError(ClientError::FlushDisabled));
                return Outcome::Done;
            }
            stats.cmd_flush.incr();
            let at = if delay > 0 {
                state.clock.deadline(delay)
            } else {
                now
            };
            state.cache.flush_all(at, now);
            out.reply(&Response::Ok);
        }
        Request::Version => out.reply(&Response::Version(VERSION)),
        Request::Verbosity { level, .. } => {
            state
                .verbosity
                .store(level.min(u8::MAX as u32) as u8, Ordering::Relaxed);
            out.reply(&Response::Ok);
        }
        Request::Quit => return Outcome::Close,
        Request::Shutdown { .. } => {
            if !state.settings.enable_shutdown {
                out.reply(&Response::Line("ERROR: shutdown not enabled"));
                return Outcome::Done;
            }
            state.request_shutdown(ShutdownCause::Command);
            return Outcome::Close;
        }
        Request::CacheMemlimit { megabytes, .. } => {
            if megabytes < MEMLIMIT_MIN_MB {
                out.reply(&Response::Line(
                    "MEMLIMIT_TOO_SMALL cannot set maxbytes to less than 8m",
                ));
            } else if megabytes > MEMLIMIT_MAX_MB {
                out.reply(&Response::Line(
                    "MEMLIMIT_ADJUST_FAILED input value is megabytes not bytes",
                ));
            } else {
                state
                    .cache
                    .set_mem_limit((megabytes as usize).saturating_mul(1024 * 1024));
                out.reply(&Response::Ok);
            }
        }
        Request::Stats { group } => stats_report::report(group, cx, out),
        Request::SlabsAutomove { policy, .. } => {
            if let Some(policy) = policy {
                state.cache.set_automove(policy);
            }
            out.reply(&Response::Ok);
        }
        Request::SlabsReassign { from, to } => {
            out.reply(&match state.cache.reassign(from, to, now) {
                Reassign::Moved => Response::Ok,
                Reassign::Busy => Response::Line("BUSY currently processing reassign request"),
                Reassign::BadClass => Response::Line("BADCLASS invalid src or dst class id"),
                Reassign::NoSpare => Response::Line("NOSPARE source class has no spare pages"),
                Reassign::Same => Response::Line("SAME src and dst class are identical"),
                Reassign::Disabled => Response::Line("CLIENT_ERROR slab reassignment disabled"),
            });
        }
        Request::LruCrawlerSet(setting) => {
            match setting {
                CrawlerSetting::Enable => state.cache.set_crawler(true),
                CrawlerSetting::Disable => state.cache.set_crawler(false),
                CrawlerSetting::Pacing => {}
            }
            out.reply(&Response::Ok);
        }
        Request::LruCrawler { op, classes } => {
            return lru_crawler::run(op, classes, resume, cx, out)
        }
        Request::MetaGet { .. }
        | Request::MetaSet { .. }
        | Request::MetaDelete { .. }
        | Request::MetaArith { .. }
        | Request::MetaDebug { .. }
        | Request::MetaNoop => return meta::execute(request, cx, out),
        Request::Noop => out.reply(&Response::Ok),
        Request::DeleteIf { key, cas, .. } => delete(key, cas, cx, out),
        Request::ArithEx {
            op,
            key,
            delta,
            create,
            cas,
            ..
        } => {
            let create = create.map(|(initial, exptime)| (initial, state.clock.deadline(exptime)));
            arith(op, key, delta, create, cas, cx, out);
        }
        // Authentication belongs to the connection, which answers these
        // before they could reach here.
        Request::SaslListMechs | Request::SaslAuth { .. } | Request::SaslStep { .. } => {
            out.reply(&Response::Error)
        }
        Request::RefreshCerts => match &state.tls {
            None => out.reply(&Response::Error),
            Some(_) => match state.reload_certs() {
                Ok(()) => out.reply(&Response::Ok),
                Err(e) => {
                    // The reason names files, not secrets.
                    state.log(0, format_args!("refresh_certs failed: {e}"));
                    out.reply(&Response::Line("ERROR: failed to refresh certificates"));
                }
            },
        },
        Request::ConfigGet { key } => {
            if key != CONFIG_KEY {
                out.reply(&Response::Error);
                return Outcome::Done;
            }
            let published = state.cluster.published();
            out.reply(&Response::Config {
                key,
                payload: &published.payload,
            });
            out.reply(&Response::End);
        }
        Request::ConfigSet { key, value, .. } => {
            if key != CONFIG_KEY {
                out.reply(&Response::Error);
            } else if !may_administer(cx) {
                refuse(out, &ConfigError::NotAdmin);
            } else {
                match state.cluster.config_set(value) {
                    Ok(change) => {
                        log_change(state, change.as_ref());
                        out.reply(&Response::Stored);
                    }
                    Err(e) => refuse(out, &e),
                }
            }
        }
        Request::ConfigDelete { key, .. } => {
            if key != CONFIG_KEY {
                out.reply(&Response::Error);
            } else if !may_administer(cx) {
                refuse(out, &ConfigError::NotAdmin);
            } else {
                match state.cluster.config_delete() {
                    Some(change) => {
                        log_change(state, change.as_ref());
                        out.reply(&Response::Deleted);
                    }
                    None => out.reply(&Response::NotFound),
                }
            }
        }
        Request::ConfigList => out.reply(&Response::ConfigKeys(CONFIG_KEY)),
        Request::ClusterSync { data } => {
            let allowed = state
                .conn_peer(cx.conn_id)
                .is_some_and(|ip| state.cluster.may_sync(ip));
            if !allowed {
                refuse(out, &ConfigError::NotAdmin);
                return Outcome::Done;
            }
            match state.cluster.sync(data) {
                Ok((reply, change)) => {
                    log_change(state, change.as_ref());
                    out.reply(&Response::ClusterState(&reply));
                    out.reply(&Response::End);
                }
                Err(e) => out.reply(&Response::ClientErrorText(&e.to_string())),
            }
        }
    }
    Outcome::Done
}

/// Key of `config get|set|delete cluster`.
const CONFIG_KEY: &[u8] = b"cluster";

/// Key under which engines before 1.4.14 serve the configuration.
const LEGACY_CONFIG_KEY: &[u8] = b"AmazonElastiCache:cluster";

/// Whether this connection may change the cluster configuration (see
/// `cluster::admin`).
fn may_administer(cx: &Context<'_>) -> bool {
    cx.state
        .conn_peer(cx.conn_id)
        .is_some_and(|ip| cx.state.cluster.options().admin.allows(ip))
}

fn refuse<S: Sink>(out: &mut S, e: &ConfigError) {
    match e {
        // A fixed reply the binary codec can tell apart (an auth error).
        ConfigError::NotAdmin => out.reply(&Response::ClientError(ClientError::ClusterNotAdmin)),
        _ => out.reply(&Response::ClientErrorText(&e.to_string())),
    }
}

fn log_change(state: &ServerState, change: Option<&Change>) {
    if let Some(c) = change {
        state.log(1, format_args!("{c}"));
    }
}

/// delete, with the CAS the binary protocol may add (0 = any item).
fn delete<S: Sink>(key: &[u8], cas: u64, cx: &Context<'_>, out: &mut S) {
    let stats = cx.stats;
    let reply = match cx.state.cache.delete(key, cas, cx.state.clock.now()) {
        DeleteOutcome::Deleted => {
            stats.delete_hits.incr();
            Response::Deleted
        }
        DeleteOutcome::Exists => Response::Exists,
        DeleteOutcome::NotFound => {
            stats.delete_misses.incr();
            Response::NotFound
        }
    };
    out.reply(&reply);
}

/// incr/decr, with the binary protocol's extras: create the item when absent
/// (`create` = initial value and deadline) and a CAS to match (0 = any).
fn arith<S: Sink>(
    op: ArithOp,
    key: &[u8],
    delta: u64,
    create: Option<(u64, crate::clock::RelTime)>,
    cas: u64,
    cx: &Context<'_>,
    out: &mut S,
) {
    let stats = cx.stats;
    let (hits, misses) = match op {
        ArithOp::Incr => (&stats.incr_hits, &stats.incr_misses),
        ArithOp::Decr => (&stats.decr_hits, &stats.decr_misses),
    };
    let now = cx.state.clock.now();
    let reply = match cx.state.cache.arith(key, op, delta, create, cas, now) {
        ArithOutcome::Value { value, cas } => {
            hits.incr();
            out.cas(cas);
            Response::Number(value)
        }
        ArithOutcome::NotFound => {
            misses.incr();
            Response::NotFound
        }
        ArithOutcome::Exists => Response::Exists,
        ArithOutcome::NonNumeric => Response::ClientError(ClientError::NonNumericValue),
        ArithOutcome::OutOfMemory => Response::ServerError(ServerError::OutOfMemory),
    };
    out.reply(&reply);
}

/// Answers a store that could not be carried out. A refused `set` also drops
/// the value it would have replaced, as memcached does, so no reader sees
/// data older than a write the server acknowledged with an error.
fn refuse_store(
    mode: StoreMode,
    key: &[u8],
    error: ServerError,
    cx: &Context<'_>,
) -> Response<'static> {
    match error {
        ServerError::ObjectTooLarge => cx.stats.store_too_large.incr(),
        _ => cx.stats.store_no_memory.incr(),
    }
    if mode == StoreMode::Set {
        cx.state.cache.delete(key, 0, cx.state.clock.now());
    }
    Response::ServerError(error)
}
