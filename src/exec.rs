//! Carries out one protocol-neutral request against the cache and the server
//! state, emitting responses into a [`Sink`]. It never sees sockets or wire
//! formats; the codec behind the sink decides the bytes.

mod meta;

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use crate::cluster::state::Change;
use crate::cluster::ConfigError;
use crate::config::VERSION;
use crate::protocol::response::StatValue;
use crate::protocol::{ClientError, Request, Response, ServerError, StatsGroup};
use crate::state::{ServerState, ShutdownCause};
use crate::stats::{self, ThreadStats};
use crate::storage::{ArithOp, ArithOutcome, DeleteOutcome, Lookup, StoreMode, StoreOutcome};

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
        Request::Delete { key, .. } => {
            let reply = match state.cache.delete(key, 0, now) {
                DeleteOutcome::Deleted => {
                    stats.delete_hits.incr();
                    Response::Deleted
                }
                DeleteOutcome::NotFound | DeleteOutcome::Exists => {
                    stats.delete_misses.incr();
                    Response::NotFound
                }
            };
            out.reply(&reply);
        }
        Request::Arith { op, key, delta, .. } => {
            let (hits, misses) = match op {
                ArithOp::Incr => (&stats.incr_hits, &stats.incr_misses),
                ArithOp::Decr => (&stats.decr_hits, &stats.decr_misses),
            };
            let reply = match state.cache.arith(key, op, delta, None, 0, now) {
                ArithOutcome::Value { value, .. } => {
                    hits.incr();
                    Response::Number(value)
                }
                ArithOutcome::NotFound | ArithOutcome::Exists => {
                    misses.incr();
                    Response::NotFound
                }
                ArithOutcome::NonNumeric => Response::ClientError(ClientError::NonNumericValue),
                ArithOutcome::OutOfMemory => Response::ServerError(ServerError::OutOfMemory),
            };
            out.reply(&reply);
        }
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
        Request::Stats { group } => stats_report(group, cx, out),
        Request::MetaGet { .. }
        | Request::MetaSet { .. }
        | Request::MetaDelete { .. }
        | Request::MetaArith { .. }
        | Request::MetaDebug { .. }
        | Request::MetaNoop => return meta::execute(request, cx, out),
        Request::Noop => out.reply(&Response::Ok),
        Request::DeleteIf { key, cas, .. } => {
            let reply = match state.cache.delete(key, cas, now) {
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
        Request::ArithEx {
            op,
            key,
            delta,
            create,
            cas,
            ..
        } => {
            let (hits, misses) = match op {
                ArithOp::Incr => (&stats.incr_hits, &stats.incr_misses),
                ArithOp::Decr => (&stats.decr_hits, &stats.decr_misses),
            };
            let create = create.map(|(initial, exptime)| (initial, state.clock.deadline(exptime)));
            let reply = match state.cache.arith(key, op, delta, create, cas, now) {
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
        // Authentication belongs to the connection, which answers these
        // before they could reach here.
        Request::SaslListMechs | Request::SaslAuth { .. } | Request::SaslStep { .. } => {
            out.reply(&Response::Error)
        }
        Request::RefreshCerts => match &state.tls {
            None => out.reply(&Response::Error),
            Some(tls) => match tls.refresh(now) {
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
    out.reply(&Response::ClientErrorText(&e.to_string()));
}

fn log_change(state: &ServerState, change: Option<&Change>) {
    if let Some(c) = change {
        state.log(1, format_args!("{c}"));
    }
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

fn stat<S: Sink>(out: &mut S, name: &str, value: StatValue<'_>) {
    out.reply(&Response::Stat { name, value });
}

fn stats_report<S: Sink>(group: StatsGroup<'_>, cx: &Context<'_>, out: &mut S) {
    match group {
        StatsGroup::General => general_stats(cx, out),
        StatsGroup::Settings => settings_stats(cx, out),
        StatsGroup::Items => item_stats(cx, out),
        StatsGroup::Slabs => slab_stats(cx, out),
        StatsGroup::Sizes => stat(out, "sizes_status", StatValue::Text("disabled")),
        StatsGroup::Conns => conn_stats(cx, out),
        StatsGroup::Reset => {
            for t in &cx.state.threads {
                t.reset();
            }
            cx.state.cache.reset_stats();
            cx.state.conns.total_connections.reset();
            cx.state.conns.rejected_connections.reset();
            out.reply(&Response::Reset);
            return;
        }
        StatsGroup::CacheDump { class, limit } => {
            if !cx.state.cache.is_class_id(class) {
                out.reply(&Response::ClientError(ClientError::IllegalSlabId));
                return;
            }
            cache_dump(class, limit, cx, out);
        }
        StatsGroup::Other(_) => {
            out.reply(&Response::Error);
            return;
        }
    }
    out.reply(&Response::End);
}

fn general_stats<S: Sink>(cx: &Context<'_>, out: &mut S) {
    use StatValue::*;
    let state = cx.state;
    let t = stats::totals(&state.threads);
    let c = state.cache.stats();
    let now = state.clock.now();
    let (user, sys) = stats::rusage();
    let secs = |us: u64| Seconds {
        secs: us / 1_000_000,
        micros: (us % 1_000_000) as u32,
    };
    let conns = &state.conns;
    stat(out, "pid", U64(std::process::id() as u64));
    stat(out, "uptime", U64(state.clock.uptime() as u64));
    stat(out, "time", I64(state.clock.to_unix(now)));
    stat(out, "version", Text(VERSION));
    stat(out, "pointer_size", U64(usize::BITS as u64));
    stat(out, "rusage_user", secs(user));
    stat(out, "rusage_system", secs(sys));
    stat(
        out,
        "max_connections",
        U64(state.settings.max_connections as u64),
    );
    stat(
        out,
        "curr_connections",
        U64(conns.curr_connections.load(Ordering::Relaxed)),
    );
    stat(out, "total_connections", U64(conns.total_connections.get()));
    stat(
        out,
        "rejected_connections",
        U64(conns.rejected_connections.get()),
    );
    stat(
        out,
        "connection_structures",
        U64(conns.curr_connections.load(Ordering::Relaxed)),
    );
    stat(out, "cmd_get", U64(t.cmd_get));
    stat(out, "cmd_set", U64(t.cmd_set));
    stat(out, "cmd_flush", U64(t.cmd_flush));
    stat(out, "cmd_touch", U64(t.cmd_touch));
    stat(out, "get_hits", U64(t.get_hits));
    stat(out, "get_misses", U64(t.get_misses));
    stat(out, "get_expired", U64(t.get_expired));
    stat(out, "get_flushed", U64(t.get_flushed));
    stat(out, "delete_misses", U64(t.delete_misses));
    stat(out, "delete_hits", U64(t.delete_hits));
    stat(out, "incr_misses", U64(t.incr_misses));
    stat(out, "incr_hits", U64(t.incr_hits));
    stat(out, "decr_misses", U64(t.decr_misses));
    stat(out, "decr_hits", U64(t.decr_hits));
    stat(out, "cas_misses", U64(t.cas_misses));
    stat(out, "cas_hits", U64(t.cas_hits));
    stat(out, "cas_badval", U64(t.cas_badval));
    stat(out, "touch_hits", U64(t.touch_hits));
    stat(out, "touch_misses", U64(t.touch_misses));
    stat(out, "store_too_large", U64(t.store_too_large));
    stat(out, "store_no_memory", U64(t.store_no_memory));
    stat(out, "auth_cmds", U64(t.auth_cmds));
    stat(out, "auth_errors", U64(t.auth_errors));
    if let Some(tls) = &state.tls {
        stat(
            out,
            "ssl_handshake_errors",
            U64(tls.handshake_errors.load(Ordering::Relaxed)),
        );
        let loaded = tls.loaded_at.load(Ordering::Relaxed);
        stat(
            out,
            "time_since_server_cert_refresh",
            U64(u64::from(now.saturating_sub(loaded))),
        );
    }
    stat(out, "bytes_read", U64(t.bytes_read));
    stat(out, "bytes_written", U64(t.bytes_written));
    stat(out, "limit_maxbytes", U64(c.limit_maxbytes));
    stat(out, "accepting_conns", U64(u64::from(!state.is_stopping())));
    stat(out, "threads", U64(state.settings.threads as u64));
    stat(out, "conn_yields", U64(t.conn_yields));
    stat(out, "hash_power_level", U64(c.hash_power_level as u64));
    stat(out, "hash_bytes", U64(c.hash_bytes));
    stat(out, "slabs_moved", U64(c.slabs_moved));
    stat(out, "bytes", U64(c.bytes));
    stat(out, "curr_items", U64(c.curr_items));
    stat(out, "total_items", U64(c.total_items));
    stat(out, "total_malloced", U64(c.total_malloced));
    stat(out, "expired_unfetched", U64(c.expired_unfetched));
    stat(out, "evicted_unfetched", U64(c.evicted_unfetched));
    stat(out, "evictions", U64(c.evictions));
    stat(out, "reclaimed", U64(c.reclaimed));
    stat(out, "crawler_reclaimed", U64(c.crawler_reclaimed));
    let cluster = state.cluster.published();
    stat(out, "cluster_version", U64(cluster.version));
    stat(out, "cluster_members", U64(cluster.members as u64));
}

fn yes_no(b: bool) -> StatValue<'static> {
    StatValue::Text(if b { "yes" } else { "no" })
}

fn settings_stats<S: Sink>(cx: &Context<'_>, out: &mut S) {
    use StatValue::*;
    let s = &cx.state.settings;
    let c = &s.cache;
    let limit = cx.state.cache.stats().limit_maxbytes;
    stat(out, "maxbytes", U64(limit));
    stat(out, "maxconns", U64(s.max_connections as u64));
    stat(out, "tcpport", U64(s.port as u64));
    stat(out, "udpport", U64(0));
    stat(
        out,
        "verbosity",
        U64(cx.state.verbosity.load(Ordering::Relaxed) as u64),
    );
    stat(out, "evictions", Text(if c.evict { "on" } else { "off" }));
    stat(out, "domain_socket", Text("NULL"));
    stat(out, "shutdown_command", yes_no(s.enable_shutdown));
    stat(out, "growth_factor", F2(c.growth_factor));
    stat(out, "chunk_size", U64(c.chunk_size_min as u64));
    stat(out, "num_threads", U64(s.threads as u64));
    stat(out, "reqs_per_event", U64(s.reqs_per_event as u64));
    stat(out, "cas_enabled", yes_no(c.use_cas));
    stat(out, "tcp_backlog", U64(s.backlog.max(0) as u64));
    stat(out, "binding_protocol", Text(s.protocol.name()));
    stat(out, "auth_enabled_sasl", yes_no(s.sasl));
    stat(out, "auth_enabled_ascii", yes_no(s.auth_file.is_some()));
    if s.tls.enabled {
        let t = &s.tls;
        let path = |p: &Option<std::path::PathBuf>| {
            p.as_ref()
                .map_or("NULL".to_string(), |p| p.display().to_string())
        };
        let (chain, key, ca) = (path(&t.chain_cert), path(&t.key), path(&t.ca_cert));
        stat(out, "ssl_enabled", yes_no(true));
        stat(out, "ssl_chain_cert", Text(&chain));
        stat(out, "ssl_key", Text(&key));
        stat(out, "ssl_verify_mode", U64(u64::from(t.verify_mode)));
        stat(out, "ssl_keyformat", U64(1));
        stat(out, "ssl_ciphers", Text("NULL"));
        stat(out, "ssl_ca_cert", Text(&ca));
        stat(out, "ssl_min_version", Text(t.min_version_name()));
    }
    stat(out, "item_size_max", U64(c.item_size_max as u64));
    stat(out, "maxconns_fast", yes_no(true));
    stat(out, "hashpower_init", U64(c.hashpower as u64));
    stat(out, "slab_reassign", yes_no(c.slab_reassign));
    stat(out, "slab_automove", U64(c.slab_automove as u64));
    stat(out, "lru_crawler", yes_no(c.lru_crawler));
    stat(out, "idle_timeout", U64(s.idle_timeout as u64));
    stat(out, "flush_enabled", yes_no(s.flush_enabled));
}

fn item_stats<S: Sink>(cx: &Context<'_>, out: &mut S) {
    let mut name = String::new();
    for c in cx.state.cache.class_stats(cx.state.clock.now()) {
        if c.items == 0 {
            continue;
        }
        let fields: [(&str, u64); 11] = [
            ("number", c.items),
            ("age", c.age),
            ("mem_requested", c.mem_requested),
            ("evicted", c.evicted),
            ("evicted_nonzero", c.evicted_nonzero),
            ("evicted_time", c.evicted_time),
            ("outofmemory", c.outofmemory),
            ("tailrepairs", 0),
            ("reclaimed", c.reclaimed),
            ("expired_unfetched", c.expired_unfetched),
            ("evicted_unfetched", c.evicted_unfetched),
        ];
        for (field, v) in fields {
            name.clear();
            let _ = write!(name, "items:{}:{}", c.id, field);
            stat(out, &name, StatValue::U64(v));
        }
    }
}

fn slab_stats<S: Sink>(cx: &Context<'_>, out: &mut S) {
    let mut name = String::new();
    let classes = cx.state.cache.class_stats(cx.state.clock.now());
    let mut active = 0u64;
    for c in &classes {
        if c.total_pages == 0 {
            continue;
        }
        active += 1;
        let fields: [(&str, u64); 7] = [
            ("chunk_size", c.chunk_size),
            ("chunks_per_page", c.chunks_per_page),
            ("total_pages", c.total_pages),
            ("total_chunks", c.total_chunks),
            ("used_chunks", c.used_chunks),
            ("free_chunks", c.free_chunks),
            ("free_chunks_end", 0),
        ];
        for (field, v) in fields {
            name.clear();
            let _ = write!(name, "{}:{}", c.id, field);
            stat(out, &name, StatValue::U64(v));
        }
    }
    stat(out, "active_slabs", StatValue::U64(active));
    stat(
        out,
        "total_malloced",
        StatValue::U64(cx.state.cache.stats().total_malloced),
    );
}

/// memcached stops a cachedump at 2 MiB of reply.
const CACHEDUMP_MAX_BYTES: usize = 2 * 1024 * 1024;

fn cache_dump<S: Sink>(class: u32, limit: u32, cx: &Context<'_>, out: &mut S) {
    let clock = &cx.state.clock;
    let mut bytes = 0;
    cx.state
        .cache
        .dump_class(class, limit as usize, clock.now(), |item| {
            let expiry = match item.exptime {
                0 => 0,
                rel => clock.to_unix(rel),
            };
            out.reply(&Response::CacheDumpItem {
                key: item.key,
                bytes: item.value_len,
                expiry,
            });
            bytes += item.key.len() + 32;
            bytes < CACHEDUMP_MAX_BYTES
        });
}

fn conn_stats<S: Sink>(cx: &Context<'_>, out: &mut S) {
    let state = cx.state;
    let now = state.clock.now();
    let mut name = String::new();
    let mut value = String::new();
    let mut line = |out: &mut S, fd: i32, field: &str, v: &str| {
        name.clear();
        let _ = write!(name, "{fd}:{field}");
        stat(out, &name, StatValue::Text(v));
    };
    for (fd, addr) in state.listeners.lock().unwrap().iter() {
        value.clear();
        let _ = write!(value, "tcp:{addr}");
        line(out, *fd, "addr", &value);
        line(out, *fd, "listen_addr", &value);
        line(out, *fd, "state", "conn_listening");
    }
    state.for_each_conn(|id, e| {
        value.clear();
        let _ = write!(value, "tcp:{}", e.peer);
        line(out, e.fd, "addr", &value);
        value.clear();
        let _ = write!(value, "tcp:{}", e.local);
        line(out, e.fd, "listen_addr", &value);
        let st = if id == cx.conn_id {
            "conn_parse_cmd"
        } else {
            "conn_waiting"
        };
        line(out, e.fd, "state", st);
        value.clear();
        let idle = now.saturating_sub(e.last_cmd.load(Ordering::Relaxed));
        let _ = write!(value, "{idle}");
        line(out, e.fd, "secs_since_last_cmd", &value);
    });
}
