//! The event core: a manual- or auto-reset event, emulated `HANDLE`s to it, and the one wait
//! routine (any or all of up to 64 handles) that every waiting API in comasync goes through.
//!
//! # Invariants
//!
//! * An event's state is one atomic word (`EventCore::word`): `SIGNALED`, `CLOSED`, and two
//!   bits that send a `SetEvent` to the locked slow path — `WAITERS` (the list of registered
//!   waiters is not empty) and `HELD` (a thread under the event's lock is deciding from the
//!   event's state and needs a clear event to stay clear). Both are changed only under the
//!   event's lock; `CLOSED` is set only under it.
//! * **`SetEvent` takes no lock when no one waits:** with `WAITERS` and `HELD` clear it sets
//!   `SIGNALED` by compare-and-swap on the word (an event already signaled is left as it is).
//!   Otherwise it takes the lock. A waiter registers by setting `WAITERS` (or `HELD`) with one
//!   read-modify-write of the same word that tells it whether the event is signaled, so a
//!   signal either lands before it (the waiter sees it and takes it) or sees the bit and goes
//!   through the lock (and grants it to the registered waiter): no lost wake-up.
//! * So while a thread holds the lock and has `HELD` or `WAITERS` set, a clear event stays
//!   clear: whatever it finds signaled then was signaled from the moment the bit was set,
//!   and a reset racing with it is ordered after it. `ResetEvent` and the consumption of an
//!   auto-reset signal take no lock: each clears `SIGNALED` by one read-modify-write, and a
//!   consumption succeeds only if that read-modify-write found the signal (so an auto-reset
//!   signal is consumed at most once, with or without the lock).
//! * **Signals are handed off, as Windows' dispatcher does.** A wait-any waiter registers with
//!   every event it sleeps on, checking the event under the same lock. A `SetEvent` that finds
//!   registered wait-any waiters *grants* its signal to them under the lock: an auto-reset event
//!   gives it to the first waiter that can still take it (FIFO) and stays non-signaled; a
//!   manual-reset event grants every registered waiter and stays signaled. Only when no waiter
//!   takes it does an auto-reset event become signaled. So N `SetEvent`s on an auto-reset event
//!   with N threads blocked on it release all N (signals are never merged while someone waits),
//!   and a manual-reset signal releases every thread that was waiting when it came, even if the
//!   event is reset before they run. (With no one waiting, two `SetEvent`s on an auto-reset
//!   event merge into one signal, as on Windows.)
//! * A waiter takes at most one grant per wait: grants, its own claim of a signaled event during
//!   registration, and its timeout are decided under its own lock, so a wait-any consumes
//!   exactly one signal or none, and a signal granted before the timeout is never dropped.
//! * Wait-all waiters are not granted single signals: they are woken whenever one of their
//!   events becomes signaled, then lock every event (in address order, so two wait-alls cannot
//!   deadlock), set `HELD` on each, and consume all auto-reset events at once or none.
//! * Lock order: an event's lock, then a waiter's lock; several event locks only in address
//!   order. No path takes an event lock while holding a waiter's lock.
//! * Waiting never polls and never starts a thread: a waiter spins briefly (bounded backoff,
//!   reading only the word), then sleeps on a parker until granted, notified or timed out. A
//!   signal with no waiters wakes no one.

use std::cell::Cell;
use std::fmt;

use super::prim::{Arc, AtomicU32, Backoff, Condvar, Deadline, Mutex, MutexGuard, Ordering};

/// The most handles one wait accepts (`MAXIMUM_WAIT_OBJECTS`).
pub const MAXIMUM_WAIT_OBJECTS: usize = 64;

/// The part of a waiter that signallers and the waiting thread decide under its lock.
struct Slot {
    /// Woken for a reason other than a grant (a wait-all's event was signaled).
    notified: bool,
    /// A wait-any that can still take a grant (not yet granted, not timed out).
    open: bool,
    /// The index (in the waiter's handle array) of the event whose signal it took.
    granted: Option<usize>,
}

/// How a [`Waiter::park`] ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Wake {
    Granted(usize),
    Notified,
    TimedOut,
}

/// A waiting thread's parker, reused by the waits of one thread (a nested wait on the same
/// thread gets a fresh one, see [`take_waiter`]).
pub(crate) struct Waiter {
    slot: Mutex<Slot>,
    cv: Condvar,
}

impl Waiter {
    fn new() -> Self {
        Waiter {
            slot: Mutex::new(Slot {
                notified: false,
                open: false,
                granted: None,
            }),
            cv: Condvar::new(),
        }
    }

    /// Starts a wait: clears the slot; `open` for a wait-any (it may be granted a signal).
    fn begin(&self, open: bool) {
        *self.slot.lock() = Slot {
            notified: false,
            open,
            granted: None,
        };
    }

    /// Wakes the waiter without granting anything (it re-checks its events).
    fn notify(&self) {
        self.slot.lock().notified = true;
        self.cv.notify_one();
    }

    /// Offers the signal of the waiter's handle `index`. `true` if the waiter took it (it was
    /// open: not granted another, not timed out); it is then closed and woken.
    fn grant(&self, index: usize) -> bool {
        let mut s = self.slot.lock();
        if !s.open {
            return false;
        }
        s.open = false;
        s.granted = Some(index);
        drop(s);
        self.cv.notify_one();
        true
    }

    fn granted(&self) -> Option<usize> {
        self.slot.lock().granted
    }

    /// Sleeps until granted, notified or the deadline passes. A grant wins over a timeout that
    /// races with it; a timeout closes the waiter (no grant after it). Consumes a notification.
    fn park(&self, deadline: Deadline) -> Wake {
        let mut s = self.slot.lock();
        let mut timed_out = false;
        loop {
            if let Some(i) = s.granted {
                return Wake::Granted(i);
            }
            if s.notified {
                s.notified = false;
                return Wake::Notified;
            }
            if timed_out {
                s.open = false;
                return Wake::TimedOut;
            }
            let (g, t) = self.cv.wait_until(s, deadline);
            s = g;
            timed_out = t;
        }
    }
}

super::prim::waiter_local! {
    static WAITER: Cell<Option<Arc<Waiter>>> = const { Cell::new(None) };
}

/// The calling thread's parker, taken out of its slot for the duration of one wait, so that a
/// nested wait on the same thread (or one during thread-local destruction) gets its own.
fn take_waiter() -> Arc<Waiter> {
    WAITER
        .try_with(Cell::take)
        .ok()
        .flatten()
        .unwrap_or_else(|| Arc::new(Waiter::new()))
}

fn put_waiter(w: Arc<Waiter>) {
    let _ = WAITER.try_with(|c| c.set(Some(w)));
}

/// A waiter registered with an event: its index in the waiter's handle array, and whether it
/// waits for all its handles.
struct Registration {
    waiter: Arc<Waiter>,
    index: usize,
    all: bool,
}

struct EventState {
    /// Threads sleeping on this event, in arrival order. Boxed on the first registration
    /// (and kept): most events — a call object's, say — are never slept on, and an empty list
    /// then costs one pointer instead of a `Vec`'s three words.
    #[allow(clippy::box_collection)] // one pointer when empty, on purpose (see above)
    waiters: Option<Box<Vec<Registration>>>,
}

impl EventState {
    #[inline]
    fn waiters(&self) -> &[Registration] {
        self.waiters.as_deref().map_or(&[], Vec::as_slice)
    }

    fn register(&mut self, r: Registration) {
        self.waiters.get_or_insert_with(Box::default).push(r);
    }
}

/// [`EventCore::word`]: the event is signaled.
const SIGNALED: u32 = 1;
/// [`EventCore::word`]: the handle was closed (set once, under the lock, with `SIGNALED`).
const CLOSED: u32 = 2;
/// [`EventCore::word`]: waiters are registered (changed only under the lock).
const WAITERS: u32 = 4;
/// [`EventCore::word`]: a thread under the lock needs a clear event to stay clear (set and
/// cleared within one critical section).
const HELD: u32 = 8;
/// The bits that send `SetEvent` (and a lock-free consumption) to the locked path.
const SLOW: u32 = WAITERS | HELD;

/// A Win32-style event: the object behind a [`HANDLE`].
pub(crate) struct EventCore {
    manual: bool,
    /// `SIGNALED | CLOSED | WAITERS | HELD` (see the invariants).
    word: AtomicU32,
    state: Mutex<EventState>,
    /// Under loom, the lock order of a wait-all: creation order. Addresses, the order of the
    /// ordinary build, differ between loom's iterations, and loom needs every iteration to
    /// make the same operations in the same order for the same schedule.
    #[cfg(loom)]
    seq: u64,
}

impl EventCore {
    fn new(manual: bool, initial: bool) -> Self {
        #[cfg(loom)]
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        EventCore {
            manual,
            word: AtomicU32::new(if initial { SIGNALED } else { 0 }),
            state: Mutex::new(EventState { waiters: None }),
            #[cfg(loom)]
            seq: NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        }
    }

    /// The key of the global lock order among events (see `with_all_locked`).
    #[inline]
    fn lock_order(&self) -> usize {
        #[cfg(loom)]
        {
            self.seq as usize
        }
        #[cfg(not(loom))]
        {
            self as *const EventCore as usize
        }
    }

    #[inline]
    pub(crate) fn is_signaled(&self) -> bool {
        self.word.load(Ordering::Acquire) & SIGNALED != 0
    }

    #[inline]
    fn is_closed(&self) -> bool {
        self.word.load(Ordering::Acquire) & CLOSED != 0
    }

    /// Under the lock (`_locked`): sets `HELD` (no `SetEvent` can make the event signaled
    /// until [`release_locked`](Self::release_locked)) and returns the word as it was.
    #[inline]
    fn hold_locked(&self, _locked: &EventState) -> u32 {
        self.word.fetch_or(HELD, Ordering::AcqRel)
    }

    /// Under the lock (`locked`), at the end of a critical section that set `HELD` or changed
    /// the waiter list: `WAITERS` is made to say whether the list is empty, and `HELD` is
    /// cleared. `WAITERS` is set before `HELD` is cleared, so no `SetEvent` slips through
    /// in between.
    #[inline]
    fn release_locked(&self, locked: &EventState) {
        if locked.waiters().is_empty() {
            self.word.fetch_and(!(HELD | WAITERS), Ordering::AcqRel);
        } else {
            self.word.fetch_or(WAITERS, Ordering::AcqRel);
            self.word.fetch_and(!HELD, Ordering::AcqRel);
        }
    }

    /// `CloseHandle`: the event is signaled for good and every registered waiter is woken;
    /// the wait routines report a woken-by-closing wait as `E_HANDLE`.
    #[cold]
    fn close(&self) {
        let s = self.state.lock();
        self.word.fetch_or(CLOSED | SIGNALED, Ordering::AcqRel);
        for r in s.waiters() {
            if r.all {
                r.waiter.notify();
            } else {
                r.waiter.grant(r.index);
            }
        }
    }

    /// `SetEvent`. Lock-free when no one waits: one compare-and-swap of the word, or none if
    /// the event is already signaled. Each retry means another thread changed the word.
    #[inline]
    fn set(&self) {
        let mut w = self.word.load(Ordering::Acquire);
        loop {
            if w & SLOW != 0 {
                return self.set_slow();
            }
            if w & SIGNALED != 0 {
                return; // signaled, and nobody waits: nothing to do
            }
            match self.word.compare_exchange_weak(
                w,
                w | SIGNALED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return,
                Err(now) => w = now,
            }
        }
    }

    /// `SetEvent` with waiters registered (or a thread deciding under the lock): under the
    /// lock, hands the signal to the waiters.
    #[cold]
    fn set_slow(&self) {
        let s = self.state.lock();
        if self.manual {
            self.word.fetch_or(SIGNALED, Ordering::AcqRel);
            // Every thread waiting now is released, whatever happens to the event next.
            for r in s.waiters() {
                if r.all {
                    r.waiter.notify();
                } else {
                    r.waiter.grant(r.index);
                }
            }
        } else {
            if self.is_signaled() {
                // Already signaled: no wait-any waiter can be open on it (it would have been
                // granted the signal), and wait-alls were woken when it was set.
                return;
            }
            // Hand the signal to the first waiter that can take it; the event stays clear.
            if s.waiters()
                .iter()
                .any(|r| !r.all && r.waiter.grant(r.index))
            {
                return;
            }
            self.word.fetch_or(SIGNALED, Ordering::AcqRel);
            for r in s.waiters().iter().filter(|r| r.all) {
                r.waiter.notify();
            }
        }
    }

    /// `ResetEvent`: lock-free. Clearing wakes no one and grants nothing, and nothing done
    /// under the lock depends on the event staying signaled (see the invariants).
    #[inline]
    fn reset(&self) {
        // Reading first leaves a clear event's cache line shared with its waiters.
        if self.is_signaled() {
            self.word.fetch_and(!SIGNALED, Ordering::AcqRel);
        }
    }

    /// Takes the signal of a signaled or closed event. An auto-reset event's signal is
    /// consumed by a compare-and-swap that must find it (`false` if another thread took or
    /// reset it first; each retry means another thread changed the word). `held`: the caller
    /// holds the lock and set `HELD`; otherwise, while another thread holds it (a wait-all
    /// deciding to take all its signals), the consumption goes through the lock. A closed
    /// event stays signaled (a wait on it reports `E_HANDLE`).
    #[inline]
    fn consume(&self, held: bool) -> bool {
        let mut w = self.word.load(Ordering::Acquire);
        loop {
            if w & CLOSED != 0 {
                return true;
            }
            if w & SIGNALED == 0 {
                return false;
            }
            if self.manual {
                return true;
            }
            if !held && w & HELD != 0 {
                return self.consume_slow();
            }
            match self.word.compare_exchange_weak(
                w,
                w & !SIGNALED,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return true,
                Err(now) => w = now,
            }
        }
    }

    #[cold]
    fn consume_slow(&self) -> bool {
        let s = self.state.lock();
        self.hold_locked(&s);
        let taken = self.consume(true);
        self.release_locked(&s);
        taken
    }

    /// Takes the signal if there is one, without waiting. Lock-free unless a thread holds
    /// the event (see [`consume`](Self::consume)).
    #[inline]
    fn try_acquire(&self) -> bool {
        self.consume(false)
    }

    fn unregister(&self, w: &Arc<Waiter>) {
        let mut s = self.state.lock();
        if let Some(waiters) = &mut s.waiters {
            waiters.retain(|r| !Arc::ptr_eq(&r.waiter, w));
        }
        self.release_locked(&s);
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

    /// `SetEvent`: signals the event. A manual-reset event releases every thread waiting on
    /// it; an auto-reset event releases one waiting thread (and stays non-signaled), or, if no
    /// thread is waiting, stays signaled until one wait takes it.
    pub fn set_event(&self) {
        self.0.set();
    }

    /// `ResetEvent`: makes the event non-signaled.
    #[inline]
    pub fn reset_event(&self) {
        self.0.reset();
    }

    /// Whether the event is signaled now (a snapshot; does not consume an auto-reset signal).
    pub fn is_signaled(&self) -> bool {
        self.0.is_signaled()
    }

    /// `CloseHandle`: closes the handle — every copy of it, since clones of a `HANDLE` are
    /// the same handle value. The object that owns an event closes it on its final release
    /// (an `ManualResetEvent`, `StdEvent` or call object). A wait on a closed handle, or in
    /// progress when it is closed, fails with `E_HANDLE` (Win32's `ERROR_INVALID_HANDLE`)
    /// instead of waiting for a signal that can no longer come.
    ///
    /// ```
    /// use comasync::hresult::E_HANDLE;
    /// use comasync::sync::{co_wait_for_multiple_handles, HANDLE};
    /// let h = HANDLE::create_event(true, false);
    /// h.close_handle();
    /// assert!(h.is_closed());
    /// let mut i = 0;
    /// assert_eq!(co_wait_for_multiple_handles(0, u32::MAX, Some(&[h]), Some(&mut i)), E_HANDLE);
    /// ```
    pub fn close_handle(&self) {
        self.0.close();
    }

    /// Whether the handle was closed ([`close_handle`](Self::close_handle)).
    #[inline]
    pub fn is_closed(&self) -> bool {
        self.0.is_closed()
    }

    /// Whether this is a manual-reset event.
    pub fn is_manual_reset(&self) -> bool {
        self.0.manual
    }

    /// A number that identifies the event for as long as any handle to it exists.
    pub fn id(&self) -> usize {
        Arc::as_ptr(&self.0) as *const () as usize
    }

    /// How many threads are blocked on this event right now (registered with it, asleep or
    /// about to sleep). A snapshot, for tests and diagnostics: a test can wait until its
    /// threads are blocked before signalling, instead of sleeping and hoping.
    pub fn waiter_count(&self) -> usize {
        let s = self.0.state.lock();
        let waiters = s.waiters();
        let mut n = 0;
        for (i, r) in waiters.iter().enumerate() {
            if !waiters[..i]
                .iter()
                .any(|q| Arc::ptr_eq(&q.waiter, &r.waiter))
            {
                n += 1;
            }
        }
        n
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
            if self.is_signaled() {
                "signaled"
            } else {
                "clear"
            }
        )
    }
}

// Waiting on several handles at once (`CoWaitForMultipleHandles`, wait-any and wait-all): a
// child module, for the file's length; it uses this module's private waiter and registration
// machinery.
#[path = "event_many.rs"]
mod many;
pub(crate) use many::wait_handles;
use many::{acquire_or_register_all, try_acquire_all, wait_slow, with_all_locked};

// The STA's wait: the handles or the apartment's wake event (a child module, for the file's
// length; it uses this module's private waiter and registration machinery).
#[path = "event_sta.rs"]
mod sta;
pub(crate) use sta::{wait_or_wake, WaitOrWake};
