//! Placement runs on every request: lookups and failover walks must not touch the heap.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

use ferrocache_client::{Naming, Ring, Server};

struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // `try_with`: the thread-local may already be gone while a thread shuts down.
        let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
        System.alloc(layout)
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[test]
fn lookup_and_redistribute_do_not_allocate() {
    let servers: Vec<Server> = (0..100)
        .map(|i| Server::new("10.0.0.1", 20000 + i))
        .collect();
    let keys: Vec<String> = (0..1000).map(|i| format!("key:{i}")).collect();
    let long_key = "k".repeat(250);
    // The counter itself works.
    assert_eq!(
        allocations_during(|| drop(std::hint::black_box(vec![0u8; 8]))),
        1
    );
    for naming in [Naming::Libmemcached, Naming::Spymemcached] {
        let ring = Ring::new(&servers, naming).unwrap();
        let allocations = allocations_during(|| {
            let mut sum = 0;
            for key in &keys {
                sum += ring.lookup(key);
                sum += ring.redistribute(key.as_bytes()).sum::<usize>();
            }
            sum += ring.redistribute(long_key.as_bytes()).sum::<usize>();
            std::hint::black_box(sum);
        });
        assert_eq!(allocations, 0, "{naming:?}");
    }
}
