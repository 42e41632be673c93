//! Failed-authentication throttle, shared by all workers.
//!
//! memcached checks every password it is sent, as fast as a client can send
//! them, so a guessing attack is limited only by the network. Here each
//! client address has a token bucket that failures drain: `burst` failures
//! are free, then attempts are refused unchecked until the bucket refills at
//! `per_min` a minute. A refused attempt gets the ordinary failure reply, so
//! a guesser cannot tell a throttled guess from a wrong one, and it costs the
//! server no password hashing. A success forgets the address.
//!
//! IPv6 clients are grouped by /64, the block one host usually controls.
//! The table is bounded: when it is full, entries that have refilled are
//! dropped, and if none have, a new address goes untracked (it is admitted)
//! rather than growing memory or evicting an address that is being limited.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Most addresses tracked at once (about 3 MB at most).
const MAX_SOURCES: usize = 65_536;

/// How often a full table may be scanned for refilled entries.
const PRUNE_EVERY: Duration = Duration::from_secs(1);

/// The throttle's settings (`-o auth_fail_burst`, `-o auth_fail_rate`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Failures an address may have before attempts are refused; 0 turns
    /// the throttle off.
    pub burst: u32,
    /// Failures forgiven per minute once the burst is spent.
    pub per_min: u32,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            burst: 10,
            per_min: 30,
        }
    }
}

#[derive(Clone, Copy)]
struct Bucket {
    /// Failures the address may still have now (fractional while refilling).
    tokens: f64,
    at: Instant,
}

struct Table {
    buckets: HashMap<IpAddr, Bucket>,
    last_prune: Option<Instant>,
}

/// Per-address failure budget.
pub struct FailureGuard {
    limits: Limits,
    table: Mutex<Table>,
}

impl FailureGuard {
    /// `None` when the limits turn the throttle off.
    pub fn new(limits: Limits) -> Option<FailureGuard> {
        (limits.burst > 0).then(|| FailureGuard {
            limits,
            table: Mutex::new(Table {
                buckets: HashMap::new(),
                last_prune: None,
            }),
        })
    }

    /// Whether an attempt from `ip` may be checked now.
    pub fn admit(&self, ip: IpAddr, now: Instant) -> bool {
        let table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        match table.buckets.get(&source(ip)) {
            Some(b) => self.refilled(b, now) >= 1.0,
            None => true,
        }
    }

    /// Spends one token of `ip`'s budget.
    pub fn failed(&self, ip: IpAddr, now: Instant) {
        let key = source(ip);
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(b) = table.buckets.get(&key).copied() {
            let tokens = (self.refilled(&b, now) - 1.0).max(0.0);
            table.buckets.insert(key, Bucket { tokens, at: now });
            return;
        }
        if table.buckets.len() >= MAX_SOURCES && !self.prune(&mut table, now) {
            return;
        }
        let tokens = f64::from(self.limits.burst) - 1.0;
        table.buckets.insert(key, Bucket { tokens, at: now });
    }

    /// Forgets `ip`'s failures after a successful login.
    pub fn succeeded(&self, ip: IpAddr) {
        let mut table = self.table.lock().unwrap_or_else(|e| e.into_inner());
        table.buckets.remove(&source(ip));
    }

    /// Addresses tracked now (for tests and stats).
    pub fn tracked(&self) -> usize {
        self.table
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .buckets
            .len()
    }

    fn refilled(&self, b: &Bucket, now: Instant) -> f64 {
        let secs = now.saturating_duration_since(b.at).as_secs_f64();
        let gained = secs * f64::from(self.limits.per_min) / 60.0;
        (b.tokens + gained).min(f64::from(self.limits.burst))
    }

    /// Drops entries that have refilled completely; false when the table is
    /// still full (or was scanned too recently to try again).
    fn prune(&self, table: &mut Table, now: Instant) -> bool {
        if table
            .last_prune
            .is_some_and(|t| now.saturating_duration_since(t) < PRUNE_EVERY)
        {
            return false;
        }
        table.last_prune = Some(now);
        let full = f64::from(self.limits.burst);
        let buckets = std::mem::take(&mut table.buckets);
        table.buckets = buckets
            .into_iter()
            .filter(|(_, b)| self.refilled(b, now) < full)
            .collect();
        table.buckets.len() < MAX_SOURCES
    }
}

/// The key an address is limited under: IPv4 as is (also when mapped into
/// IPv6), IPv6 by its /64.
fn source(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(burst: u32, per_min: u32) -> FailureGuard {
        FailureGuard::new(Limits { burst, per_min }).unwrap()
    }

    #[test]
    fn burst_then_refill() {
        let g = guard(3, 60);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(g.admit(ip, t0));
            g.failed(ip, t0);
        }
        assert!(!g.admit(ip, t0));
        assert!(!g.admit(ip, t0 + Duration::from_millis(900)));
        // 60 a minute: one attempt a second.
        assert!(g.admit(ip, t0 + Duration::from_secs(1)));
        g.failed(ip, t0 + Duration::from_secs(1));
        assert!(!g.admit(ip, t0 + Duration::from_millis(1500)));
        assert!(g.admit(ip, t0 + Duration::from_secs(2)));
        // Other addresses are not affected.
        assert!(g.admit("10.0.0.2".parse().unwrap(), t0));
    }

    #[test]
    fn success_forgets_the_address() {
        let g = guard(2, 1);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        g.failed(ip, t0);
        g.failed(ip, t0);
        assert!(!g.admit(ip, t0));
        g.succeeded(ip);
        assert!(g.admit(ip, t0));
        assert_eq!(g.tracked(), 0);
    }

    #[test]
    fn refill_never_exceeds_the_burst() {
        let g = guard(2, 60);
        let ip: IpAddr = "10.0.0.1".parse().unwrap();
        let t0 = Instant::now();
        g.failed(ip, t0);
        let later = t0 + Duration::from_secs(3600);
        g.failed(ip, later);
        g.failed(ip, later);
        assert!(!g.admit(ip, later));
    }

    #[test]
    fn ipv6_is_limited_per_64_and_mapped_v4_as_v4() {
        let g = guard(1, 1);
        let t0 = Instant::now();
        g.failed("2001:db8:1:2::1".parse().unwrap(), t0);
        assert!(!g.admit("2001:db8:1:2:ffff::9".parse().unwrap(), t0));
        assert!(g.admit("2001:db8:1:3::1".parse().unwrap(), t0));
        g.failed("::ffff:10.1.2.3".parse().unwrap(), t0);
        assert!(!g.admit("10.1.2.3".parse().unwrap(), t0));
    }

    #[test]
    fn a_full_table_drops_refilled_entries_or_stops_tracking() {
        let g = guard(1, 60);
        let t0 = Instant::now();
        for i in 0..MAX_SOURCES as u32 {
            g.failed(IpAddr::V4(i.into()), t0);
        }
        assert_eq!(g.tracked(), MAX_SOURCES);
        // Nothing has refilled: the newcomer is admitted but not tracked.
        let new: IpAddr = "203.0.113.9".parse().unwrap();
        g.failed(new, t0);
        assert!(g.admit(new, t0));
        assert_eq!(g.tracked(), MAX_SOURCES);
        // A second later everything has refilled and is dropped.
        let later = t0 + Duration::from_secs(2);
        g.failed(new, later);
        assert_eq!(g.tracked(), 1);
        assert!(!g.admit(new, later));
    }

    #[test]
    fn zero_burst_turns_it_off() {
        assert!(FailureGuard::new(Limits {
            burst: 0,
            per_min: 30
        })
        .is_none());
    }
}
