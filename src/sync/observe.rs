//! Change notification for harnesses that must know when other threads have blocked — the
//! scenario runner (a started `Finish_` or `Cancel` or wait has parked) and the test kit — so
//! they can wait for it instead of polling.
//!
//! Whenever a thread registers to sleep on an event, a `Cancel` starts waiting out its window,
//! or a harness's actor thread returns, [`changed`] bumps a global generation and wakes the
//! observers. With no [`Observer`] alive it costs one atomic load, on slow paths only.
//!
//! Protocol (no lost wake-ups): read [`Observer::generation`], then check the condition, then
//! [`Observer::wait_past`] that generation. A change made after the read bumps the generation,
//! so the wait returns at once.

#[cfg(not(loom))]
mod imp {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::super::prim::{Condvar, Deadline, Mutex};

    static OBSERVERS: AtomicUsize = AtomicUsize::new(0);
    static GENERATION: Mutex<u64> = Mutex::new(0);
    static CHANGED: Condvar = Condvar::new();

    /// Says that something observers may be waiting for has changed. Call it after the change
    /// is visible (after the lock that publishes it is released, where possible).
    #[inline]
    pub(crate) fn changed() {
        if OBSERVERS.load(Ordering::SeqCst) > 0 {
            changed_slow();
        }
    }

    #[cold]
    fn changed_slow() {
        *GENERATION.lock() += 1;
        CHANGED.notify_all();
    }

    /// While alive, [`changed`] notifies.
    pub(crate) struct Observer(());

    impl Observer {
        pub(crate) fn new() -> Observer {
            OBSERVERS.fetch_add(1, Ordering::SeqCst);
            Observer(())
        }

        /// The generation now: read it before checking the condition.
        pub(crate) fn generation(&self) -> u64 {
            *GENERATION.lock()
        }

        /// Sleeps until the generation moves past `seen` or `deadline` passes.
        pub(crate) fn wait_past(&self, seen: u64, deadline: Deadline) {
            let mut g = GENERATION.lock();
            while *g == seen {
                let (next, timed_out) = CHANGED.wait_until(g, deadline);
                g = next;
                if timed_out {
                    return;
                }
            }
        }
    }

    impl Drop for Observer {
        fn drop(&mut self) {
            OBSERVERS.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

#[cfg(loom)]
mod imp {
    use super::super::prim::Deadline;

    /// No observers under loom.
    #[inline]
    pub(crate) fn changed() {}

    pub(crate) struct Observer(());

    impl Observer {
        pub(crate) fn new() -> Observer {
            Observer(())
        }
        pub(crate) fn generation(&self) -> u64 {
            0
        }
        pub(crate) fn wait_past(&self, _seen: u64, _deadline: Deadline) {}
    }
}

#[allow(unused_imports)]
pub(crate) use imp::{changed, Observer};
