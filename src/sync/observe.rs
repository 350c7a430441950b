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
//!
//! While an observer is alive, a thread that parks also says *what* it waits for
//! ([`blocked`]: the handles of a wait, the call object of a blocking `Finish_` or of a
//! `Cancel` window) until it wakes, so a harness can ask "is thread X blocked, and on what?"
//! ([`blocked_on`]) instead of predicting it. A record answers only while what the thread
//! waits for has not come (a thread already granted its handle or its call's result, but not
//! yet running, is not blocked).

#[cfg(not(loom))]
mod imp {
    use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::thread::ThreadId;

    use super::super::prim::{Condvar, Deadline, Mutex};
    use super::What;

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

    /// Whether any observer is alive (a harness wants to know what happens).
    pub(crate) fn observed() -> bool {
        OBSERVERS.load(Ordering::SeqCst) > 0
    }

    /// Whether what a blocked thread waits for has still not come.
    pub(crate) type Waiting = Arc<dyn Fn() -> bool + Send + Sync>;

    struct Record {
        id: u64,
        thread: ThreadId,
        what: What,
        waiting: Waiting,
    }

    static BLOCKED: Mutex<Vec<Record>> = Mutex::new(Vec::new());
    static NEXT: AtomicU64 = AtomicU64::new(1);

    /// The record of a parked thread: removed (and observers woken) when dropped.
    #[must_use = "the thread counts as blocked only while the guard lives"]
    pub(crate) struct Blocked(Option<u64>);

    std::thread_local! {
        /// The STA whose modal wait this thread is in, if any.
        static STA_WAIT: std::cell::Cell<Option<crate::apartment::ApartmentId>> =
            const { std::cell::Cell::new(None) };
    }

    /// Runs `f` (an STA's modal wait) so that what the thread parks on inside it is recorded
    /// as [`What::Sta`] of `apartment`.
    pub(crate) fn in_sta_wait<T>(
        apartment: crate::apartment::ApartmentId,
        f: impl FnOnce() -> T,
    ) -> T {
        let outer = STA_WAIT.with(|c| c.replace(Some(apartment)));
        struct Restore(Option<crate::apartment::ApartmentId>);
        impl Drop for Restore {
            fn drop(&mut self) {
                let _ = STA_WAIT.try_with(|c| c.set(self.0));
            }
        }
        let _restore = Restore(outer);
        f()
    }

    /// Records that this thread is about to park waiting for `what().0` (`what().1` says
    /// whether it is still waiting). With no observer alive, records nothing and does not
    /// call `what`.
    pub(crate) fn blocked(what: impl FnOnce() -> (What, Waiting)) -> Blocked {
        if OBSERVERS.load(Ordering::SeqCst) == 0 {
            return Blocked(None);
        }
        let (what, waiting) = what();
        let what = match STA_WAIT.with(std::cell::Cell::get) {
            Some(apartment) => What::Sta {
                apartment,
                inner: Box::new(what),
            },
            None => what,
        };
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        BLOCKED.lock().push(Record {
            id,
            thread: std::thread::current().id(),
            what,
            waiting,
        });
        changed_slow();
        Blocked(Some(id))
    }

    impl Drop for Blocked {
        fn drop(&mut self) {
            if let Some(id) = self.0 {
                BLOCKED.lock().retain(|r| r.id != id);
                changed_slow();
            }
        }
    }

    /// What `thread` is blocked on, if it is parked and what it waits for has not come.
    pub(crate) fn blocked_on(thread: ThreadId) -> Option<What> {
        let (what, waiting) = BLOCKED
            .lock()
            .iter()
            .find(|r| r.thread == thread)
            .map(|r| (r.what.clone(), r.waiting.clone()))?;
        waiting().then_some(what)
    }
}

#[cfg(loom)]
mod imp {
    use std::sync::Arc;
    use std::thread::ThreadId;

    use super::super::prim::Deadline;
    use super::What;

    /// Whether what a blocked thread waits for has still not come.
    pub(crate) type Waiting = Arc<dyn Fn() -> bool + Send + Sync>;

    /// Nothing is recorded under loom.
    pub(crate) struct Blocked;

    pub(crate) fn blocked(_what: impl FnOnce() -> (What, Waiting)) -> Blocked {
        Blocked
    }

    /// No observers under loom.
    pub(crate) fn observed() -> bool {
        false
    }

    /// Runs `f`: nothing is recorded under loom.
    pub(crate) fn in_sta_wait<T>(
        _apartment: crate::apartment::ApartmentId,
        f: impl FnOnce() -> T,
    ) -> T {
        f()
    }

    pub(crate) fn blocked_on(_thread: ThreadId) -> Option<What> {
        None
    }

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

/// What a parked thread waits for.
#[allow(dead_code)]
#[derive(Clone, Debug)]
pub(crate) enum What {
    /// A wait on handles: for any of them, or (`all`) all.
    Handles {
        /// The handles.
        handles: Vec<super::HANDLE>,
        /// `COWAIT_WAITALL`.
        all: bool,
    },
    /// A blocking `Finish_` for the call of the call object at this address.
    Finish {
        /// The call object's address.
        call: usize,
    },
    /// A `Cancel` waiting out its window on the call object at this address.
    CancelWindow {
        /// The call object's address.
        call: usize,
    },
    /// The modal wait of an STA's thread: it waits for `inner` (its handles and the
    /// apartment's wake event) and dispatches the calls queued for `apartment` meanwhile.
    Sta {
        /// The STA.
        apartment: crate::apartment::ApartmentId,
        /// What the wait parks on.
        inner: Box<What>,
    },
}

#[allow(unused_imports)]
pub(crate) use imp::{
    blocked, blocked_on, changed, in_sta_wait, observed, Blocked, Observer, Waiting,
};

#[cfg(all(test, not(loom)))]
mod tests {
    use super::{blocked_on, Observer, What};
    use crate::sync::prim::Deadline;
    use crate::sync::HANDLE;

    /// Waits (without polling) until `f` holds, for at most 10 s.
    fn until(observer: &Observer, mut f: impl FnMut() -> bool) -> bool {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let seen = observer.generation();
            if f() {
                return true;
            }
            if std::time::Instant::now() > deadline {
                return false;
            }
            observer.wait_past(seen, Deadline::at(deadline));
        }
    }

    #[test]
    fn a_thread_parked_in_an_sta_wait_names_the_apartment_it_dispatches_for() {
        let observer = Observer::new();
        let event = HANDLE::create_event(true, false);
        let e = event.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            use crate::apartment::*;
            let _ = co_initialize_ex(None, COINIT_APARTMENTTHREADED);
            tx.send(current_apartment().unwrap()).unwrap();
            let hr = crate::sync::wait::wait_single(&e, 0, crate::sync::INFINITE);
            co_uninitialize();
            hr
        });
        let apartment = rx.recv().unwrap();
        let id = t.thread().id();
        assert!(until(&observer, || matches!(
            blocked_on(id),
            Some(What::Sta { apartment: a, ref inner })
                if a == apartment && matches!(**inner, What::Handles { .. })
        )));
        event.set_event();
        assert_eq!(t.join().unwrap(), crate::hresult::S_OK);
    }

    #[test]
    fn a_parked_thread_says_what_it_waits_for_until_it_comes() {
        let observer = Observer::new();
        let event = HANDLE::create_event(false, false);
        let e = event.clone();
        let t = std::thread::spawn(move || e.wait_one(crate::sync::INFINITE));
        let id = t.thread().id();
        assert!(until(&observer, || matches!(
            blocked_on(id),
            Some(What::Handles { ref handles, all: false }) if handles == std::slice::from_ref(&event)
        )));
        event.set_event(); // grants the waiter: it is no longer blocked, even before it runs
        assert!(blocked_on(id).is_none());
        assert!(t.join().unwrap());
        assert!(blocked_on(std::thread::current().id()).is_none());
    }
}
