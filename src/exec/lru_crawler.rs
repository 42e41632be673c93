//! `lru_crawler crawl` and `lru_crawler metadump`, in memcached's words:
//! memcached-tool's `dump` and `keys` list a cache through metadump.

use super::{Context, Outcome, Sink};
use crate::protocol::{CrawlerClasses, CrawlerOp, Response};

/// The largest class id a list may name.
const CLASS_ID_MAX: u32 = 127;

pub(super) fn run<S: Sink>(
    op: CrawlerOp,
    classes: CrawlerClasses,
    resume: usize,
    cx: &Context<'_>,
    out: &mut S,
) -> Outcome {
    let cache = &cx.state.cache;
    if !cache.crawler_enabled() {
        out.reply(&Response::Line("CLIENT_ERROR lru crawler disabled"));
        return Outcome::Done;
    }
    // Ids from 1 to memcached's limit, or to our last class if higher.
    let valid = (1..=CLASS_ID_MAX)
        .filter(|&id| cache.is_class_id(id))
        .fold(0u128, |bits, id| bits | 1 << id);
    let wanted = match (classes, op) {
        (CrawlerClasses::All, _) | (CrawlerClasses::Hash, CrawlerOp::Metadump) => valid,
        (CrawlerClasses::Ids(ids), _) if ids & !valid == 0 => ids,
        // memcached's crawl has no hash walk and says so this way.
        (CrawlerClasses::Hash, CrawlerOp::Crawl) => {
            out.reply(&Response::Line("ERROR an unknown error happened"));
            return Outcome::Done;
        }
        _ => {
            out.reply(&Response::Line("BADCLASS invalid class id"));
            return Outcome::Done;
        }
    };
    match op {
        // The housekeeper's crawler already visits every class all the time.
        CrawlerOp::Crawl => {
            out.reply(&Response::Ok);
            Outcome::Done
        }
        CrawlerOp::Metadump => metadump(wanted, resume, cx, out),
    }
}

/// Lists the live items of the `wanted` classes (bit n: class n), pausing
/// when the output is full; `resume` is where a paused listing goes on.
fn metadump<S: Sink>(wanted: u128, resume: usize, cx: &Context<'_>, out: &mut S) -> Outcome {
    let clock = &cx.state.clock;
    let from = u32::try_from(resume).unwrap_or(u32::MAX);
    let next = cx.state.cache.metadump(
        |id| wanted & 1 << id != 0,
        from,
        clock.now(),
        |item| {
            out.reply(&Response::MetadumpItem {
                key: item.key,
                exptime: match item.exptime {
                    0 => -1,
                    rel => clock.to_unix(rel),
                },
                last_access: clock.to_unix(item.last_access),
                cas: item.cas,
                fetched: item.fetched,
                class: item.class,
                size: item.size,
            });
            !out.is_full()
        },
    );
    match next {
        // Never 0: at least one item went out before the pause.
        Some(chunk) => Outcome::Paused {
            next_key: chunk as usize,
        },
        None => {
            out.reply(&Response::End);
            Outcome::Done
        }
    }
}
