//! Memory for values still arriving.
//!
//! memcached allocates an item from cache memory as soon as a storage
//! command line arrives and reads the value straight into it, so uploads in
//! progress count against `-m`. Here a value waits in its connection's
//! buffer until it is complete, so without a bound every connection could
//! hold a value of up to `-I` that never finishes: about 1.5 GB at the
//! defaults (`-c 1024`, `-I 1m`). Each connection may buffer [`FREE`] bytes
//! on its own; beyond that it reserves from one budget shared by all
//! workers, and when the budget is spent the value still arriving is
//! refused with memcached's `SERVER_ERROR out of memory storing object`
//! and its bytes are swallowed, not stored.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Bytes of input any connection may buffer without a reservation.
pub const FREE: usize = 64 * 1024;

/// The budget when `-m` is small: room for a few dozen large uploads.
const MIN_CAP: usize = 64 * 1024 * 1024;

/// The shared budget for input buffered beyond [`FREE`] per connection.
#[derive(Debug)]
pub struct UploadBudget {
    used: AtomicUsize,
    cap: usize,
}

impl UploadBudget {
    /// A quarter of the cache's memory limit, at least 64 MiB.
    pub fn for_mem_limit(mem_limit: usize) -> UploadBudget {
        UploadBudget::new((mem_limit / 4).max(MIN_CAP))
    }

    pub fn new(cap: usize) -> UploadBudget {
        UploadBudget {
            used: AtomicUsize::new(0),
            cap,
        }
    }

    /// Bytes reserved now, by all connections.
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    pub fn cap(&self) -> usize {
        self.cap
    }
}

/// One connection's share of the budget; given back when dropped.
#[derive(Debug)]
pub struct Reservation {
    budget: Arc<UploadBudget>,
    held: usize,
}

impl Reservation {
    pub fn new(budget: Arc<UploadBudget>) -> Reservation {
        Reservation { budget, held: 0 }
    }

    /// Makes room for `len` buffered bytes; false (and nothing changed)
    /// when the budget cannot cover them.
    pub fn cover(&mut self, len: usize) -> bool {
        let want = len.saturating_sub(FREE);
        if want <= self.held {
            return true;
        }
        let more = want - self.held;
        let before = self.budget.used.fetch_add(more, Ordering::Relaxed);
        if before + more > self.budget.cap {
            self.budget.used.fetch_sub(more, Ordering::Relaxed);
            return false;
        }
        self.held = want;
        true
    }

    /// Gives back what the buffer no longer needs once it holds `len` bytes.
    pub fn shrink_to(&mut self, len: usize) {
        let keep = len.saturating_sub(FREE);
        if keep < self.held {
            self.budget
                .used
                .fetch_sub(self.held - keep, Ordering::Relaxed);
            self.held = keep;
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.shrink_to(0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reservations_share_one_budget() {
        let budget = Arc::new(UploadBudget::new(100));
        let mut a = Reservation::new(budget.clone());
        let mut b = Reservation::new(budget.clone());
        assert!(a.cover(FREE));
        assert_eq!(budget.used(), 0);
        assert!(a.cover(FREE + 60));
        assert!(!b.cover(FREE + 41));
        assert_eq!(budget.used(), 60);
        assert!(b.cover(FREE + 40));
        assert_eq!(budget.used(), 100);
        a.shrink_to(FREE + 10);
        assert_eq!(budget.used(), 50);
        assert!(b.cover(FREE + 90));
        drop(a);
        drop(b);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn the_budget_scales_with_memory() {
        assert_eq!(UploadBudget::for_mem_limit(64 << 20).cap(), 64 << 20);
        assert_eq!(UploadBudget::for_mem_limit(4 << 30).cap(), 1 << 30);
    }
}
