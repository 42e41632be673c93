//! Counters behind `stats`. Each worker owns a [`ThreadStats`] it alone
//! writes (relaxed atomics on its own cache lines, so counting costs no
//! contention); `stats` sums them. Connection counters are shared.

use std::sync::atomic::{AtomicU64, Ordering};

/// A counter written by one thread and read by any.
#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    #[inline]
    pub fn incr(&self) {
        self.add(1);
    }

    #[inline]
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    #[inline]
    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

macro_rules! thread_stats {
    ($($name:ident),* $(,)?) => {
        /// Per-worker command counters, named as memcached names them.
        #[derive(Debug, Default)]
        #[repr(align(128))]
        pub struct ThreadStats {
            $(pub $name: Counter,)*
        }

        /// A summed snapshot of every worker's [`ThreadStats`].
        #[derive(Clone, Copy, Debug, Default)]
        pub struct ThreadTotals {
            $(pub $name: u64,)*
        }

        impl ThreadStats {
            /// Zeroes every counter (`stats reset`).
            pub fn reset(&self) {
                $(self.$name.reset();)*
            }

            /// Adds this worker's counters into `t`.
            pub fn add_to(&self, t: &mut ThreadTotals) {
                $(t.$name += self.$name.get();)*
            }
        }
    };
}

thread_stats!(
    cmd_get,
    cmd_set,
    cmd_flush,
    cmd_touch,
    get_hits,
    get_misses,
    get_expired,
    get_flushed,
    delete_hits,
    delete_misses,
    incr_hits,
    incr_misses,
    decr_hits,
    decr_misses,
    cas_hits,
    cas_misses,
    cas_badval,
    touch_hits,
    touch_misses,
    store_too_large,
    store_no_memory,
    auth_cmds,
    auth_errors,
    auth_throttled,
    bytes_read,
    bytes_written,
    conn_yields,
);

/// Sums the counters of all workers.
pub fn totals(threads: &[std::sync::Arc<ThreadStats>]) -> ThreadTotals {
    let mut t = ThreadTotals::default();
    for s in threads {
        s.add_to(&mut t);
    }
    t
}

/// Connection counters shared by the acceptor and the workers.
#[derive(Debug, Default)]
pub struct ConnStats {
    pub curr_connections: AtomicU64,
    pub total_connections: Counter,
    pub rejected_connections: Counter,
}

/// Process CPU time as (user, system) in microseconds.
pub fn rusage() -> (u64, u64) {
    // SAFETY: getrusage only writes into the zeroed struct we pass.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    let rc = unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
    if rc != 0 {
        return (0, 0);
    }
    let us = |tv: libc::timeval| tv.tv_sec as u64 * 1_000_000 + tv.tv_usec as u64;
    (us(ru.ru_utime), us(ru.ru_stime))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn totals_sum_workers_and_reset_zeroes() {
        let a = Arc::new(ThreadStats::default());
        let b = Arc::new(ThreadStats::default());
        a.cmd_get.add(3);
        b.cmd_get.incr();
        b.bytes_read.add(10);
        let t = totals(&[a.clone(), b.clone()]);
        assert_eq!(t.cmd_get, 4);
        assert_eq!(t.bytes_read, 10);
        a.reset();
        assert_eq!(totals(&[a, b]).cmd_get, 1);
    }
}
