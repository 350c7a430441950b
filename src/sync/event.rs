//! The event core: a manual- or auto-reset event, emulated `HANDLE`s to it, and the one wait
//! routine (any or all of up to 64 handles) that every waiting API in comasync goes through.
//!
//! # Invariants
//!
//! * An event's `signaled` flag, its signal `epoch` and its list of sleeping waiters change only
//!   under the event's own lock. `hint` mirrors `signaled` and is written only under that lock,
//!   so a lock-free read of `hint` is a read of `signaled` at some instant.
//! * A waiter registers itself with every event it sleeps on *and checks that event under the
//!   same lock*; a signaller sets the flag and notifies every registered waiter under that lock.
//!   So a signal either is seen by the waiter's check or finds the waiter registered: no lost
//!   wake-ups.
//! * Auto-reset: a signal is consumed by exactly one successful wait (under the event's lock).
//!   Manual reset: a signal releases every thread that was sleeping on the event when it came,
//!   even if the event is reset before they run (the epoch tells them), as on Windows.
//! * Wait-all locks every event (in address order, so two wait-alls cannot deadlock), and
//!   consumes all auto-reset events at once or none.
//! * Waiting never polls and never starts a thread: a waiter spins briefly (bounded backoff,
//!   reading only `hint`), then sleeps on its own thread-local parker until notified or timed
//!   out. A signal with no sleepers wakes no one.

use std::fmt;

use super::prim::{Arc, AtomicBool, Backoff, Condvar, Deadline, Mutex, MutexGuard, Ordering};

/// The most handles one wait accepts (`MAXIMUM_WAIT_OBJECTS`).
pub const MAXIMUM_WAIT_OBJECTS: usize = 64;

/// A waiting thread's parker. One per thread, reused by every wait on that thread.
pub(crate) struct Waiter {
    notified: Mutex<bool>,
    cv: Condvar,
}

impl Waiter {
    fn new() -> Self {
        Waiter { notified: Mutex::new(false), cv: Condvar::new() }
    }

    fn notify(&self) {
        let mut n = self.notified.lock();
        *n = true;
        drop(n);
        self.cv.notify_one();
    }

    fn clear(&self) {
        *self.notified.lock() = false;
    }

    /// Sleeps until notified or the deadline passes; returns `true` on timeout. Consumes the
    /// notification.
    fn park(&self, deadline: Deadline) -> bool {
        let mut n = self.notified.lock();
        let mut timed_out = false;
        while !*n && !timed_out {
            let (g, t) = self.cv.wait_until(n, deadline);
            n = g;
            timed_out = t;
        }
        let was_notified = *n;
        *n = false;
        !was_notified
    }
}

super::prim::waiter_local! {
    static WAITER: Arc<Waiter> = Arc::new(Waiter::new());
}

fn current_waiter() -> Arc<Waiter> {
    WAITER.with(Arc::clone)
}

struct EventState {
    signaled: bool,
    /// Counts the signals that set the event; lets a manual-reset waiter see a signal that
    /// was reset before it ran.
    epoch: u64,
    /// Threads sleeping on this event.
    waiters: Vec<Arc<Waiter>>,
}

/// A Win32-style event: the object behind a [`HANDLE`].
pub(crate) struct EventCore {
    manual: bool,
    hint: AtomicBool,
    state: Mutex<EventState>,
}

impl EventCore {
    fn new(manual: bool, initial: bool) -> Self {
        EventCore {
            manual,
            hint: AtomicBool::new(initial),
            state: Mutex::new(EventState { signaled: initial, epoch: 0, waiters: Vec::new() }),
        }
    }

    /// `SetEvent`.
    fn set(&self) {
        let mut s = self.state.lock();
        if !s.signaled {
            s.signaled = true;
            s.epoch = s.epoch.wrapping_add(1);
            self.hint.store(true, Ordering::Release);
        }
        for w in &s.waiters {
            w.notify();
        }
    }

    /// `ResetEvent`.
    fn reset(&self) {
        if !self.hint.load(Ordering::Acquire) {
            // Already clear: a reset on a clear event changes nothing, and `hint` is `signaled`
            // at this instant.
            return;
        }
        let mut s = self.state.lock();
        s.signaled = false;
        self.hint.store(false, Ordering::Release);
    }

    /// Under the lock: takes the signal if there is one (consuming it if auto-reset).
    #[inline]
    fn try_acquire_locked(&self, s: &mut EventState) -> bool {
        if s.signaled {
            if !self.manual {
                s.signaled = false;
                self.hint.store(false, Ordering::Release);
            }
            true
        } else {
            false
        }
    }

    /// Takes the signal if there is one, without waiting.
    #[inline]
    fn try_acquire(&self) -> bool {
        if !self.hint.load(Ordering::Acquire) {
            return false;
        }
        if self.manual {
            return true;
        }
        let mut s = self.state.lock();
        self.try_acquire_locked(&mut s)
    }

    fn unregister(&self, w: &Arc<Waiter>) {
        let mut s = self.state.lock();
        if let Some(pos) = s.waiters.iter().position(|x| Arc::ptr_eq(x, w)) {
            s.waiters.swap_remove(pos);
        }
    }
}

/// An emulated Win32 `HANDLE` to an event object: cheap to clone (a reference count), waitable
/// with [`co_wait_for_multiple_handles`](super::co_wait_for_multiple_handles), and with a
/// stable identity (clones compare equal; [`HANDLE::id`] never changes).
///
/// ```
/// use comasync::sync::HANDLE;
/// let h = HANDLE::create_event(true, false); // manual reset, not signaled
/// assert!(!h.is_signaled());
/// h.set_event();
/// assert!(h.is_signaled());
/// assert_eq!(h.clone(), h);
/// ```
#[derive(Clone)]
pub struct HANDLE(pub(crate) Arc<EventCore>);

impl HANDLE {
    /// `CreateEvent(NULL, manual_reset, initial_state, NULL)`.
    pub fn create_event(manual_reset: bool, initial_state: bool) -> HANDLE {
        HANDLE(Arc::new(EventCore::new(manual_reset, initial_state)))
    }

    /// `SetEvent`: signals the event and wakes its waiters (one of them, for auto-reset,
    /// takes the signal).
    pub fn set_event(&self) {
        self.0.set();
    }

    /// `ResetEvent`: makes the event non-signaled.
    pub fn reset_event(&self) {
        self.0.reset();
    }

    /// Whether the event is signaled now (a snapshot; does not consume an auto-reset signal).
    pub fn is_signaled(&self) -> bool {
        self.0.hint.load(Ordering::Acquire)
    }

    /// Whether this is a manual-reset event.
    pub fn is_manual_reset(&self) -> bool {
        self.0.manual
    }

    /// A number that identifies the event for as long as any handle to it exists.
    pub fn id(&self) -> usize {
        Arc::as_ptr(&self.0) as *const () as usize
    }

    /// Waits for this one handle: `true` if it was signaled (and, if auto-reset, consumed)
    /// within `timeout_ms` (`INFINITE` = `u32::MAX`), `false` on timeout.
    #[inline]
    pub(crate) fn wait_one(&self, timeout_ms: u32) -> bool {
        if self.0.try_acquire() {
            return true;
        }
        if timeout_ms == 0 {
            return false;
        }
        wait_handles(std::slice::from_ref(self), false, timeout_ms).is_some()
    }
}

impl PartialEq for HANDLE {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for HANDLE {}

impl std::hash::Hash for HANDLE {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.id().hash(state)
    }
}

impl fmt::Debug for HANDLE {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "HANDLE({:#x}, {}, {})",
            self.id(),
            if self.0.manual { "manual" } else { "auto" },
            if self.is_signaled() { "signaled" } else { "clear" }
        )
    }
}

/// Waits for any (`all == false`: the lowest signaled index) or all (`all == true`: index 0) of
/// `handles`. `None` on timeout. The caller has checked the arguments (1..=64 handles; no
/// duplicates for wait-all).
pub(crate) fn wait_handles(handles: &[HANDLE], all: bool, timeout_ms: u32) -> Option<usize> {
    if let Some(i) = try_once(handles, all) {
        return Some(i);
    }
    if timeout_ms == 0 {
        return None;
    }
    // Spin briefly, reading only the lock-free hints: a signal that arrives within a few
    // hundred nanoseconds is caught without sleeping.
    let backoff = Backoff::new();
    while !backoff.is_completed() {
        backoff.snooze();
        let ready = if all {
            handles.iter().all(|h| h.0.hint.load(Ordering::Acquire))
        } else {
            handles.iter().any(|h| h.0.hint.load(Ordering::Acquire))
        };
        if ready {
            if let Some(i) = try_once(handles, all) {
                return Some(i);
            }
        }
    }
    wait_slow(handles, all, Deadline::after_ms(timeout_ms))
}

#[inline]
fn try_once(handles: &[HANDLE], all: bool) -> Option<usize> {
    if all {
        if handles.iter().all(|h| h.0.hint.load(Ordering::Acquire)) {
            with_all_locked(handles, |states| try_acquire_all(handles, states)).then_some(0)
        } else {
            None
        }
    } else {
        handles.iter().position(|h| h.0.try_acquire())
    }
}

/// Under all the locks: takes every signal at once, or none.
fn try_acquire_all(handles: &[HANDLE], states: &mut [Option<MutexGuard<'_, EventState>>]) -> bool {
    if !states.iter().all(|s| s.as_ref().is_some_and(|s| s.signaled)) {
        return false;
    }
    for (h, s) in handles.iter().zip(states.iter_mut()) {
        if let Some(s) = s {
            h.0.try_acquire_locked(s);
        }
    }
    true
}

/// Locks every event of `handles` in address order (so concurrent wait-alls cannot deadlock)
/// and runs `f` with the guards in the order of `handles`.
fn with_all_locked<R>(
    handles: &[HANDLE],
    f: impl FnOnce(&mut [Option<MutexGuard<'_, EventState>>]) -> R,
) -> R {
    let n = handles.len();
    let mut order = [0usize; MAXIMUM_WAIT_OBJECTS];
    for (i, o) in order.iter_mut().enumerate().take(n) {
        *o = i;
    }
    order[..n].sort_unstable_by_key(|&i| handles[i].id());
    let mut guards: [Option<MutexGuard<'_, EventState>>; MAXIMUM_WAIT_OBJECTS] =
        std::array::from_fn(|_| None);
    for &i in &order[..n] {
        guards[i] = Some(handles[i].0.state.lock());
    }
    f(&mut guards[..n])
}

#[cold]
fn wait_slow(handles: &[HANDLE], all: bool, deadline: Deadline) -> Option<usize> {
    let w = current_waiter();
    w.clear();
    let mut epochs = [0u64; MAXIMUM_WAIT_OBJECTS];
    let result = if all {
        wait_all_slow(handles, &w, deadline)
    } else {
        wait_any_slow(handles, &w, deadline, &mut epochs)
    };
    for h in handles {
        h.0.unregister(&w);
    }
    result
}

fn wait_any_slow(
    handles: &[HANDLE],
    w: &Arc<Waiter>,
    deadline: Deadline,
    epochs: &mut [u64; MAXIMUM_WAIT_OBJECTS],
) -> Option<usize> {
    // Register with each event and check it under the same lock.
    for (i, h) in handles.iter().enumerate() {
        let mut s = h.0.state.lock();
        if h.0.try_acquire_locked(&mut s) {
            return Some(i);
        }
        s.waiters.push(w.clone());
        epochs[i] = s.epoch;
    }
    loop {
        let timed_out = w.park(deadline);
        for (i, h) in handles.iter().enumerate() {
            let mut s = h.0.state.lock();
            if h.0.try_acquire_locked(&mut s) || (h.0.manual && s.epoch != epochs[i]) {
                return Some(i);
            }
        }
        if timed_out {
            return None;
        }
    }
}

fn wait_all_slow(handles: &[HANDLE], w: &Arc<Waiter>, deadline: Deadline) -> Option<usize> {
    let done = with_all_locked(handles, |states| {
        if try_acquire_all(handles, states) {
            return true;
        }
        for s in states.iter_mut().flatten() {
            s.waiters.push(w.clone());
        }
        false
    });
    if done {
        return Some(0);
    }
    loop {
        let timed_out = w.park(deadline);
        if with_all_locked(handles, |states| try_acquire_all(handles, states)) {
            return Some(0);
        }
        if timed_out {
            return None;
        }
    }
}
