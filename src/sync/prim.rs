//! The only module that names concrete synchronization primitives.
//!
//! Everything else in comasync reaches mutexes, condition variables, atomics, the channel the
//! worker pool queues on (and the lock of its hand-off spot), thread spawning and the
//! spin-then-park backoff through here, so that `--cfg loom` swaps them all at once for loom's
//! model-checked versions: the pool, `SyncMethodHandler`, `ServerCallHost` and an aggregating
//! outer's `Signal`/`Reset` ordering all run under loom (`tests/loom_call.rs`).
//!
//! One kind of primitive is deliberately left to `std`: `std::sync::Arc`/`Weak` as *memory*
//! (COM objects live in them; `ComPtr` needs unsized coercion and `Weak`, which loom's `Arc`
//! lacks). No protocol decision reads their counts: the COM count, the call state and every
//! flag a decision depends on are loom-visible atomics or sit behind loom-visible locks.
//!
//! Under loom, time does not pass: a wait with a finite deadline re-checks its condition once
//! and then reports a timeout (it models "the timeout fired first"); an infinite wait sleeps
//! until notified. Together they let loom explore both outcomes of a timed wait.

#![allow(dead_code)]

#[cfg(not(loom))]
mod imp {
    pub(crate) use crossbeam_channel::{unbounded as channel, Receiver, Sender, TryRecvError};
    pub(crate) use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    pub(crate) use std::sync::Arc;
    use std::time::Instant;

    /// Spawns a named thread (`std::thread::Builder`); `Err` if the system refuses.
    pub(crate) fn spawn(name: String, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        std::thread::Builder::new().name(name).spawn(f).map(drop)
    }

    /// Spin hints a pool worker spends looking for its next job before it blocks.
    pub(crate) const POOL_SPINS: u32 = 32;

    /// A mutex (parking_lot's: one byte, no poisoning, fast uncontended path).
    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(parking_lot::Mutex<T>);

    /// The guard of [`Mutex`].
    pub(crate) type MutexGuard<'a, T> = parking_lot::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) const fn new(v: T) -> Self {
            Mutex(parking_lot::Mutex::new(v))
        }
        /// Whether some thread holds the lock now (a hint, for spinning before locking).
        #[inline]
        pub(crate) fn is_locked(&self) -> bool {
            self.0.is_locked()
        }
        #[inline]
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock()
        }
    }

    /// A condition variable paired with [`Mutex`].
    #[derive(Debug, Default)]
    pub(crate) struct Condvar(parking_lot::Condvar);

    impl Condvar {
        pub(crate) const fn new() -> Self {
            Condvar(parking_lot::Condvar::new())
        }
        /// Waits until notified, or until `deadline` if given. Returns the guard and whether
        /// the deadline passed.
        pub(crate) fn wait_until<'a, T>(
            &self,
            mut guard: MutexGuard<'a, T>,
            deadline: Deadline,
        ) -> (MutexGuard<'a, T>, bool) {
            let timed_out = match deadline {
                Deadline::Never => {
                    self.0.wait(&mut guard);
                    false
                }
                Deadline::At(d) => self.0.wait_until(&mut guard, d).timed_out(),
            };
            (guard, timed_out)
        }
        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }
        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    /// Bounded spinning before a thread parks: the spin budget of crossbeam's `Backoff` (127
    /// `spin_loop` hints, then 4 `yield_now`s, then done), but one hint per `snooze`, so the
    /// caller looks at its condition after every hint instead of after exponentially longer
    /// rounds. (A hint is ~60 ns on the benchmark machine: crossbeam's last rounds of 32 and
    /// 64 hints would notice a signal up to ~4 µs late; see docs/performance.md, P1.)
    pub(crate) struct Backoff(std::cell::Cell<u32>);

    const SPINS: u32 = 127;
    const YIELDS: u32 = 4;

    impl Backoff {
        pub(crate) fn new() -> Self {
            Backoff(std::cell::Cell::new(0))
        }
        #[inline]
        pub(crate) fn snooze(&self) {
            let step = self.0.get();
            if step < SPINS {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
            self.0.set(step + 1);
        }
        #[inline]
        pub(crate) fn is_completed(&self) -> bool {
            self.0.get() >= SPINS + YIELDS
        }
    }

    /// When a timed wait gives up: never, or at an instant.
    #[derive(Clone, Copy, Debug)]
    pub(crate) enum Deadline {
        Never,
        At(Instant),
    }

    impl Deadline {
        /// The deadline at instant `t`.
        pub(crate) fn at(t: Instant) -> Deadline {
            Deadline::At(t)
        }

        /// The deadline of a wait of `ms` milliseconds starting now (`INFINITE` = never).
        pub(crate) fn after_ms(ms: u32) -> Deadline {
            if ms == u32::MAX {
                Deadline::Never
            } else {
                Deadline::At(Instant::now() + std::time::Duration::from_millis(ms as u64))
            }
        }
    }

    macro_rules! waiter_local {
        ($(#[$m:meta])* static $name:ident: $t:ty = const $init:block;) => {
            std::thread_local!($(#[$m])* static $name: $t = const $init);
        };
        ($(#[$m:meta])* static $name:ident: $t:ty = $init:expr;) => {
            std::thread_local!($(#[$m])* static $name: $t = $init);
        };
    }
    pub(crate) use waiter_local;
}

#[cfg(loom)]
mod imp {
    pub(crate) use loom::sync::atomic::{AtomicBool, AtomicU32, Ordering};
    pub(crate) use loom::sync::Arc;
    use std::collections::VecDeque;

    /// Spawns a loom thread (loom threads have no names).
    pub(crate) fn spawn(_name: String, f: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
        loom::thread::spawn(f);
        Ok(())
    }

    /// One look under loom: enough to explore a worker that finds a job handed over while it
    /// spins, and one that gives up and blocks (see `call::pool`).
    pub(crate) const POOL_SPINS: u32 = 1;

    /// An unbounded multi-producer, multi-consumer channel on loom's mutex and condition
    /// variable, with crossbeam's interface as far as comasync uses it: the receivers see
    /// "disconnected" once every sender is gone and the queue is empty.
    pub(crate) fn channel<T>() -> (Sender<T>, Receiver<T>) {
        let shared = Arc::new(Chan {
            state: loom::sync::Mutex::new(ChanState {
                queue: VecDeque::new(),
                senders: 1,
            }),
            ready: loom::sync::Condvar::new(),
        });
        (Sender(shared.clone()), Receiver(shared))
    }

    struct ChanState<T> {
        queue: VecDeque<T>,
        senders: usize,
    }

    struct Chan<T> {
        state: loom::sync::Mutex<ChanState<T>>,
        ready: loom::sync::Condvar,
    }

    /// The sending half of [`channel`].
    pub(crate) struct Sender<T>(Arc<Chan<T>>);
    /// The receiving half of [`channel`].
    pub(crate) struct Receiver<T>(Arc<Chan<T>>);

    /// Why a [`Receiver::try_recv`] found nothing.
    #[derive(Debug, PartialEq, Eq)]
    pub(crate) enum TryRecvError {
        Empty,
        Disconnected,
    }

    impl<T> Sender<T> {
        pub(crate) fn send(&self, v: T) -> Result<(), T> {
            self.0.state.lock().unwrap().queue.push_back(v);
            self.0.ready.notify_one();
            Ok(())
        }
    }

    impl<T> Sender<T> {
        pub(crate) fn is_empty(&self) -> bool {
            self.0.state.lock().unwrap().queue.is_empty()
        }
    }

    impl<T> Clone for Sender<T> {
        fn clone(&self) -> Self {
            self.0.state.lock().unwrap().senders += 1;
            Sender(self.0.clone())
        }
    }

    impl<T> Drop for Sender<T> {
        fn drop(&mut self) {
            let mut s = self.0.state.lock().unwrap();
            s.senders -= 1;
            if s.senders == 0 {
                drop(s);
                self.0.ready.notify_all();
            }
        }
    }

    impl<T> Clone for Receiver<T> {
        fn clone(&self) -> Self {
            Receiver(self.0.clone())
        }
    }

    impl<T> Receiver<T> {
        pub(crate) fn is_empty(&self) -> bool {
            self.0.state.lock().unwrap().queue.is_empty()
        }

        pub(crate) fn try_recv(&self) -> Result<T, TryRecvError> {
            let mut s = self.0.state.lock().unwrap();
            match s.queue.pop_front() {
                Some(v) => Ok(v),
                None if s.senders == 0 => Err(TryRecvError::Disconnected),
                None => Err(TryRecvError::Empty),
            }
        }

        pub(crate) fn recv(&self) -> Result<T, ()> {
            let mut s = self.0.state.lock().unwrap();
            loop {
                if let Some(v) = s.queue.pop_front() {
                    return Ok(v);
                }
                if s.senders == 0 {
                    return Err(());
                }
                s = self.0.ready.wait(s).unwrap();
            }
        }
    }

    #[derive(Debug, Default)]
    pub(crate) struct Mutex<T>(loom::sync::Mutex<T>);
    pub(crate) type MutexGuard<'a, T> = loom::sync::MutexGuard<'a, T>;

    impl<T> Mutex<T> {
        pub(crate) fn new(v: T) -> Self {
            Mutex(loom::sync::Mutex::new(v))
        }
        /// Under loom: never (the spin before locking is only an optimisation).
        pub(crate) fn is_locked(&self) -> bool {
            false
        }
        pub(crate) fn lock(&self) -> MutexGuard<'_, T> {
            self.0.lock().unwrap()
        }
    }

    #[derive(Debug, Default)]
    pub(crate) struct Condvar(loom::sync::Condvar);

    impl Condvar {
        pub(crate) fn new() -> Self {
            Condvar(loom::sync::Condvar::new())
        }
        pub(crate) fn wait_until<'a, T>(
            &self,
            guard: MutexGuard<'a, T>,
            deadline: Deadline,
        ) -> (MutexGuard<'a, T>, bool) {
            match deadline {
                Deadline::Never => (self.0.wait(guard).unwrap(), false),
                // Time does not pass under loom: a finite wait models "the timeout fired".
                Deadline::Finite => (guard, true),
            }
        }
        pub(crate) fn notify_one(&self) {
            self.0.notify_one();
        }
        pub(crate) fn notify_all(&self) {
            self.0.notify_all();
        }
    }

    /// No spinning under loom: the spin phase is only an optimisation, and a `yield_now`
    /// there would make loom run the other threads first, hiding the interleavings where the
    /// waiter registers and parks before the signal comes.
    pub(crate) struct Backoff;

    impl Backoff {
        pub(crate) fn new() -> Self {
            Backoff
        }
        pub(crate) fn snooze(&self) {}
        pub(crate) fn is_completed(&self) -> bool {
            true
        }
    }

    #[derive(Clone, Copy, Debug)]
    pub(crate) enum Deadline {
        Never,
        Finite,
    }

    impl Deadline {
        pub(crate) fn at(_t: std::time::Instant) -> Deadline {
            Deadline::Finite
        }
        pub(crate) fn after_ms(ms: u32) -> Deadline {
            if ms == u32::MAX {
                Deadline::Never
            } else {
                Deadline::Finite
            }
        }
    }

    macro_rules! waiter_local {
        ($(#[$m:meta])* static $name:ident: $t:ty = const $init:block;) => {
            loom::thread_local!($(#[$m])* static $name: $t = $init);
        };
        ($(#[$m:meta])* static $name:ident: $t:ty = $init:expr;) => {
            loom::thread_local!($(#[$m])* static $name: $t = $init);
        };
    }
    pub(crate) use waiter_local;
}

pub(crate) use imp::*;
