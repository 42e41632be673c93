//! The server's coarse clock, memcached style: seconds since start as a `u32`
//! ("relative time"), ticked once a second, plus memcached's rules for turning
//! a client's exptime into a relative deadline.
//!
//! Storage never reads the clock itself; callers pass `now`, which keeps
//! storage deterministic under test.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the server started (memcached's `rel_time_t`).
pub type RelTime = u32;

/// exptimes above this many seconds are absolute unix times (30 days).
pub const REALTIME_MAXDELTA: i64 = 60 * 60 * 24 * 30;

/// Relative time reported at start. Like memcached, the clock starts a little
/// above zero so that relative time 1 always lies in the past and can mean
/// "already expired".
const START_OFFSET: u32 = 62;

/// A relative clock anchored at the server's start.
#[derive(Debug)]
pub struct Clock {
    /// Unix time at relative time 0.
    epoch: i64,
    now: AtomicU32,
}

fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock {
    /// A clock whose current relative time is memcached's starting value.
    pub fn new() -> Self {
        Self::starting_at(unix_now())
    }

    /// A clock started at the given unix time (for tests).
    pub fn starting_at(unix: i64) -> Self {
        Clock {
            epoch: unix - START_OFFSET as i64,
            now: AtomicU32::new(START_OFFSET),
        }
    }

    /// The current relative time.
    #[inline]
    pub fn now(&self) -> RelTime {
        self.now.load(Ordering::Relaxed)
    }

    /// Re-reads the system clock. Called once a second by the ticker; time
    /// never goes backwards even if the system clock does.
    pub fn tick(&self) {
        self.set_unix(unix_now());
    }

    /// Sets the current time from a unix time (monotonic: never goes back).
    pub fn set_unix(&self, unix: i64) {
        let rel = (unix - self.epoch).clamp(0, u32::MAX as i64) as u32;
        self.now.fetch_max(rel, Ordering::Relaxed);
    }

    /// Unix time at relative time 0.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }

    /// The unix time of a relative time.
    pub fn to_unix(&self, rel: RelTime) -> i64 {
        self.epoch + rel as i64
    }

    /// Seconds the server has been up.
    pub fn uptime(&self) -> u32 {
        self.now() - START_OFFSET.min(self.now())
    }

    /// Converts a client's exptime to a relative deadline (memcached's
    /// `realtime()`): 0 never expires; negative is already expired; up to 30
    /// days is an offset from now; more is an absolute unix time, and one in
    /// the past is already expired. "Already expired" is relative time 1.
    pub fn deadline(&self, exptime: i64) -> RelTime {
        if exptime == 0 {
            return 0;
        }
        if exptime < 0 {
            return 1;
        }
        if exptime > REALTIME_MAXDELTA {
            if exptime <= self.epoch {
                return 1;
            }
            return (exptime - self.epoch).min(u32::MAX as i64) as RelTime;
        }
        (exptime + self.now() as i64).min(u32::MAX as i64) as RelTime
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deadlines_follow_memcached_rules() {
        let c = Clock::starting_at(1_700_000_000);
        let now = c.now();
        assert_eq!(c.deadline(0), 0);
        assert_eq!(c.deadline(-1), 1);
        assert_eq!(c.deadline(10), now + 10);
        assert_eq!(
            c.deadline(REALTIME_MAXDELTA),
            now + REALTIME_MAXDELTA as u32
        );
        assert_eq!(c.deadline(1_700_000_100), now + 100);
        assert_eq!(c.deadline(REALTIME_MAXDELTA + 1), 1);
    }

    #[test]
    fn never_goes_back() {
        let c = Clock::starting_at(1_700_000_000);
        c.set_unix(1_700_000_005);
        c.set_unix(1_600_000_000);
        assert_eq!(c.now(), START_OFFSET + 5);
        assert_eq!(c.uptime(), 5);
    }
}
