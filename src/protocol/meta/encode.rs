//! Meta reply encoding: the code, then the return flags in the order the
//! request listed them, then `Z`, `X`, `W`, as memcached 1.6 writes them.

use std::io::Write;

use super::{MetaCmd, MetaDebugReply, MetaReply, MetaStatus};

/// Appends one meta reply (line and, for `VA`, the value) to `out`.
pub fn encode(r: &MetaReply<'_>, out: &mut Vec<u8>) {
    out.reserve(32 + r.flags.tokens.len() + r.key.raw.len() + r.value.len());
    match r.status {
        MetaStatus::Value => {
            out.extend_from_slice(b"VA ");
            num(out, r.value.len() as u64);
        }
        MetaStatus::Stored => out.extend_from_slice(b"HD"),
        MetaStatus::Miss => out.extend_from_slice(b"EN"),
        MetaStatus::NotStored => out.extend_from_slice(b"NS"),
        MetaStatus::Exists => out.extend_from_slice(b"EX"),
        MetaStatus::NotFound => out.extend_from_slice(b"NF"),
    }
    let hit = matches!(r.status, MetaStatus::Value | MetaStatus::Stored);
    // Item data is reported by mg hits, by every ms reply (a failed store
    // reports CAS 0) and by ma successes.
    let item_data = match r.cmd {
        MetaCmd::Get | MetaCmd::Arith => hit,
        MetaCmd::Set => true,
        MetaCmd::Delete => false,
    };
    let mut ttl = r.item.ttl;
    for t in r.flags.iter() {
        let flag = t[0];
        match (r.cmd, flag) {
            (_, b'O') => {
                out.push(b' ');
                out.extend_from_slice(t);
            }
            (_, b'k') => {
                out.extend_from_slice(b" k");
                out.extend_from_slice(r.key.raw);
                if r.key.base64 {
                    out.extend_from_slice(b" b");
                }
            }
            _ if !item_data => {}
            (MetaCmd::Get | MetaCmd::Arith, b'T') => ttl = r.item.ttl_touched,
            (MetaCmd::Get | MetaCmd::Arith, b'N') => {
                if let Some(v) = r.item.ttl_vivified {
                    ttl = v;
                }
            }
            (MetaCmd::Get | MetaCmd::Set | MetaCmd::Arith, b'c') => {
                out.extend_from_slice(b" c");
                num(out, r.item.cas);
            }
            (MetaCmd::Get | MetaCmd::Arith, b't') => {
                out.extend_from_slice(b" t");
                if ttl < 0 {
                    out.push(b'-');
                }
                num(out, ttl.unsigned_abs());
            }
            (MetaCmd::Get, b's') => {
                out.extend_from_slice(b" s");
                num(out, r.item.size as u64);
            }
            (MetaCmd::Get, b'f') => {
                out.extend_from_slice(b" f");
                num(out, u64::from(r.item.client_flags));
            }
            (MetaCmd::Get, b'l') => {
                out.extend_from_slice(b" l");
                num(out, u64::from(r.item.last_access));
            }
            (MetaCmd::Get, b'h') => {
                out.extend_from_slice(if r.item.hit_before { b" h1" } else { b" h0" });
            }
            _ => {}
        }
    }
    if r.win_sent {
        out.extend_from_slice(b" Z");
    }
    if r.stale {
        out.extend_from_slice(b" X");
    }
    if r.won {
        out.extend_from_slice(b" W");
    }
    out.extend_from_slice(b"\r\n");
    if r.status == MetaStatus::Value {
        out.extend_from_slice(r.value);
        out.extend_from_slice(b"\r\n");
    }
}

/// Appends an `me` reply.
pub fn encode_debug(d: &MetaDebugReply<'_>, out: &mut Vec<u8>) {
    out.extend_from_slice(b"ME ");
    out.extend_from_slice(d.key);
    let _ = write!(
        out,
        " exp={} la={} cas={} fetch={} cls={} size={}\r\n",
        d.exp,
        d.la,
        d.cas,
        if d.fetched { "yes" } else { "no" },
        d.class,
        d.size
    );
}

/// Appends `n` in decimal (without the formatting machinery: replies
/// carry several numbers each).
fn num(out: &mut Vec<u8>, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut i = digits.len();
    loop {
        i -= 1;
        digits[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&digits[i..]);
}
