//! The `stats` reports: general counters, settings, per-class item and
//! slab figures, `cachedump` and `conns`, in memcached's names and order.

use std::fmt::Write as _;
use std::sync::atomic::Ordering;

use super::{Context, Sink};
use crate::config::VERSION;
use crate::protocol::response::StatValue;
use crate::protocol::{ClientError, Response, StatsGroup};
use crate::stats;

fn stat<S: Sink>(out: &mut S, name: &str, value: StatValue<'_>) {
    out.reply(&Response::Stat { name, value });
}

/// Answers `stats [group]`.
pub(super) fn report<S: Sink>(group: StatsGroup<'_>, cx: &Context<'_>, out: &mut S) {
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
    stat(out, "auth_throttled", U64(t.auth_throttled));
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
    stat(
        out,
        "slab_automove",
        U64(u64::from(cx.state.cache.automove())),
    );
    stat(out, "lru_crawler", yes_no(cx.state.cache.crawler_enabled()));
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
