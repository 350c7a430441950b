//! Waiting on several handles: the fast try over all of them, then the slow path that registers
//! one waiter with every handle (wait-any) or takes every event's lock together to take all the
//! signals at once or none (wait-all). A child of `sync::event`: it uses the event core's
//! private waiter and registration machinery, and keeps its invariants (module docs there).

use super::*;

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
    match spin(handles, all, || false) {
        Spin::Acquired(i) => Some(i),
        Spin::Stopped | Spin::Spent => wait_slow(handles, all, Deadline::after_ms(timeout_ms)),
    }
}

/// How a [`spin`] ended.
pub(super) enum Spin {
    /// The handles were acquired (the index, as a wait returns it).
    Acquired(usize),
    /// `stop` became true first.
    Stopped,
    /// The spin budget ran out.
    Spent,
}

/// Spins briefly (crossbeam's `Backoff` budget, then done), reading only the lock-free flags,
/// until the handles can be acquired (and are) or `stop` holds: a signal that arrives within
/// a few microseconds is caught without sleeping, as crossbeam's own `recv` does.
pub(super) fn spin(handles: &[HANDLE], all: bool, stop: impl Fn() -> bool) -> Spin {
    let backoff = Backoff::new();
    while !backoff.is_completed() {
        backoff.snooze();
        let ready = if all {
            handles.iter().all(|h| h.0.is_signaled())
        } else {
            handles.iter().any(|h| h.0.is_signaled())
        };
        if ready {
            if let Some(i) = try_once(handles, all) {
                return Spin::Acquired(i);
            }
        }
        if stop() {
            return Spin::Stopped;
        }
    }
    Spin::Spent
}

#[inline]
fn try_once(handles: &[HANDLE], all: bool) -> Option<usize> {
    if all {
        if handles.iter().all(|h| h.0.is_signaled()) {
            with_all_locked(handles, |states| try_acquire_all(handles, states)).then_some(0)
        } else {
            None
        }
    } else {
        handles.iter().position(|h| h.0.try_acquire())
    }
}

/// Under all the locks, each event held (`HELD`): takes every signal at once, or none.
pub(super) fn try_acquire_all(
    handles: &[HANDLE],
    states: &mut [Option<MutexGuard<'_, EventState>>],
) -> bool {
    // While held no event can become signaled, only be reset: if each is signaled when
    // looked at, all were when the last was held.
    if handles.iter().any(|h| h.0.is_closed()) {
        return true; // the caller reports E_HANDLE
    }
    if !handles
        .iter()
        .zip(states.iter())
        .all(|(h, s)| s.is_some() && h.0.is_signaled())
    {
        return false;
    }
    for h in handles {
        // A reset racing with the wait is ordered after it (see the invariants).
        let _ = h.0.consume(true);
    }
    true
}

/// Locks every event of `handles` in address order (so concurrent wait-alls cannot deadlock),
/// holds each (`HELD`: none can become signaled meanwhile) and runs `f` with the guards in
/// the order of `handles`; then updates each event's `WAITERS` and lets it go.
pub(super) fn with_all_locked<R>(
    handles: &[HANDLE],
    f: impl FnOnce(&mut [Option<MutexGuard<'_, EventState>>]) -> R,
) -> R {
    let n = handles.len();
    let mut order = [0usize; MAXIMUM_WAIT_OBJECTS];
    for (i, o) in order.iter_mut().enumerate().take(n) {
        *o = i;
    }
    order[..n].sort_unstable_by_key(|&i| handles[i].0.lock_order());
    let mut guards: [Option<MutexGuard<'_, EventState>>; MAXIMUM_WAIT_OBJECTS] =
        std::array::from_fn(|_| None);
    for &i in &order[..n] {
        let g = handles[i].0.state.lock();
        handles[i].0.hold_locked(&g);
        guards[i] = Some(g);
    }
    let r = f(&mut guards[..n]);
    for (h, g) in handles.iter().zip(&guards[..n]) {
        if let Some(g) = g {
            h.0.release_locked(g);
        }
    }
    r
}

#[cold]
/// Under all the handles' locks: takes every signal at once (`true`), or registers `w` with
/// each handle as a wait-all waiter (`false`), so that no signal can slip between the try and
/// the registration.
pub(super) fn acquire_or_register_all(handles: &[HANDLE], w: &Arc<Waiter>) -> bool {
    with_all_locked(handles, |states| {
        if try_acquire_all(handles, states) {
            return true;
        }
        for (i, s) in states.iter_mut().enumerate() {
            if let Some(s) = s {
                s.register(Registration {
                    waiter: w.clone(),
                    index: i,
                    all: true,
                });
            }
        }
        false
    })
}

pub(super) fn wait_slow(handles: &[HANDLE], all: bool, deadline: Deadline) -> Option<usize> {
    let w = take_waiter();
    w.begin(!all);
    let (result, registered) = if all {
        wait_all_slow(handles, &w, deadline)
    } else {
        wait_any_slow(handles, &w, deadline)
    };
    for h in &handles[..registered] {
        h.0.unregister(&w);
    }
    put_waiter(w);
    result
}

/// Returns the result and how many leading handles the waiter registered with.
fn wait_any_slow(
    handles: &[HANDLE],
    w: &Arc<Waiter>,
    deadline: Deadline,
) -> (Option<usize>, usize) {
    // Register with each event, checking it under the same lock. A signaled event is claimed
    // through the waiter's own slot, so that it is not taken if an event registered earlier
    // has granted its signal in the meantime (a wait-any takes one signal, never two).
    let mut registered = 0;
    for (i, h) in handles.iter().enumerate() {
        let mut s = h.0.state.lock();
        // One read-modify-write holds the event and reads it: a SetEvent after it takes the
        // lock and finds this waiter registered (see the invariants).
        if h.0.hold_locked(&s) & (SIGNALED | CLOSED) != 0 {
            if w.grant(i) {
                let _ = h.0.consume(true);
            }
            h.0.release_locked(&s);
            break;
        }
        s.register(Registration {
            waiter: w.clone(),
            index: i,
            all: false,
        });
        h.0.release_locked(&s);
        registered = i + 1;
        drop(s);
        if w.granted().is_some() {
            break;
        }
    }
    // Observers may look now: this thread waits until one of the handles grants it.
    let _blocked = crate::sync::observe::blocked(|| {
        let waiter = w.clone();
        let what = crate::sync::observe::What::Handles {
            handles: handles.to_vec(),
            all: false,
        };
        let waiting: crate::sync::observe::Waiting =
            std::sync::Arc::new(move || waiter.granted().is_none());
        (what, waiting)
    });
    let result = loop {
        match w.park(deadline) {
            Wake::Granted(i) => break Some(i),
            Wake::Notified => continue,
            Wake::TimedOut => break None,
        }
    };
    (result, registered)
}

fn wait_all_slow(
    handles: &[HANDLE],
    w: &Arc<Waiter>,
    deadline: Deadline,
) -> (Option<usize>, usize) {
    let done = acquire_or_register_all(handles, w);
    if done {
        return (Some(0), 0);
    }
    // Observers may look now: this thread waits until all the handles are signaled.
    let _blocked = crate::sync::observe::blocked(|| {
        let hs = handles.to_vec();
        let what = crate::sync::observe::What::Handles {
            handles: hs.clone(),
            all: true,
        };
        let waiting: crate::sync::observe::Waiting =
            std::sync::Arc::new(move || !hs.iter().all(|h| h.0.is_signaled()));
        (what, waiting)
    });
    loop {
        let wake = w.park(deadline);
        if with_all_locked(handles, |states| try_acquire_all(handles, states)) {
            return (Some(0), handles.len());
        }
        if wake == Wake::TimedOut {
            return (None, handles.len());
        }
    }
}
