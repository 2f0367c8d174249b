//! A global allocator that counts live bytes and the peak since the last reset, so the runner can
//! tell how much one execution allocated at most (its peak above what was live before it).
//!
//! The harness runs targets on one thread; allocations of other threads (none while a target
//! runs) would be counted too, which can only make a bound stricter.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

pub struct CountingAllocator;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

fn grew(size: usize) {
    let live = LIVE.fetch_add(size, Ordering::Relaxed) + size;
    PEAK.fetch_max(live, Ordering::Relaxed);
}

fn shrank(size: usize) {
    LIVE.fetch_sub(size, Ordering::Relaxed);
}

// SAFETY (for the whole impl): every call is forwarded unchanged to the system allocator; the
// counters are only bookkeeping and never change what is returned.
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract is passed on as is.
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.alloc_zeroed(layout) };
        if !p.is_null() {
            grew(layout.size());
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as above.
        unsafe { System.dealloc(ptr, layout) };
        shrank(layout.size());
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as above.
        let p = unsafe { System.realloc(ptr, layout, new_size) };
        if !p.is_null() {
            shrank(layout.size());
            grew(new_size);
        }
        p
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// Runs `f` and returns its result with the most bytes it had allocated at once beyond what was
/// live when it started.
pub fn peak_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.load(Ordering::Relaxed);
    PEAK.store(base, Ordering::Relaxed);
    let r = f();
    let peak = PEAK.load(Ordering::Relaxed);
    (r, peak.saturating_sub(base))
}

/// Taken by every test of this crate that allocates much: the counter is process-wide, and a
/// test measuring a peak must not see another test's allocations.
#[cfg(test)]
pub(crate) static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_peak_of_a_closure_is_its_largest_live_allocation_not_the_sum() {
        let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let ((), peak) = peak_during(|| {
            for _ in 0..10 {
                std::hint::black_box(vec![0u8; 1 << 20]);
            }
        });
        // About one buffer, far from the sum of ten; a little either way for what the test
        // harness's own threads allocate or free meanwhile (the counter is process-wide).
        assert!((960 << 10..2 << 20).contains(&peak), "peak {peak}");
        let (v, peak) = peak_during(|| vec![1u8; 8 << 20]);
        assert!(peak >= (8 << 20) - (64 << 10), "peak {peak}");
        drop(v);
    }
}
