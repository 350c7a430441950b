//! Model checks of the event core under loom: every interleaving of a few threads.
//!
//! Run with `RUSTFLAGS="--cfg loom" cargo test --release --features loom --test loom_event`. Under loom a
//! finite timeout models "the timeout fired first" (time does not pass), so a finite wait
//! explores both outcomes: taking the signal, or timing out and leaving it.
#![cfg(loom)]

use loom::thread;

use comasync::hresult::{RPC_S_CALLPENDING, S_OK};
use comasync::sync::{
    co_wait_for_multiple_handles, COWAIT_DEFAULT, COWAIT_WAITALL, HANDLE, INFINITE,
};

fn wait(flags: u32, timeout: u32, handles: &[HANDLE]) -> bool {
    let mut index = 0;
    let hr = co_wait_for_multiple_handles(flags, timeout, Some(handles), Some(&mut index));
    assert!(hr == S_OK || hr == RPC_S_CALLPENDING, "{hr:?}");
    hr == S_OK
}

#[test]
fn auto_reset_signal_is_taken_exactly_once_or_left_signaled() {
    loom::model(|| {
        let h = HANDLE::create_event(false, false);
        let waiters: Vec<_> = (0..2)
            .map(|_| {
                let h = h.clone();
                thread::spawn(move || wait(COWAIT_DEFAULT, 1, &[h]))
            })
            .collect();
        h.set_event();
        let taken = waiters
            .into_iter()
            .map(|t| t.join().unwrap())
            .filter(|&ok| ok)
            .count();
        // No double consumption; no lost signal.
        assert!(taken <= 1);
        assert_eq!(taken == 0, h.is_signaled());
    });
}

#[test]
fn infinite_waiter_is_released_by_a_signal_sent_at_any_moment() {
    loom::model(|| {
        let h = HANDLE::create_event(false, false);
        let waiter = {
            let h = h.clone();
            thread::spawn(move || wait(COWAIT_DEFAULT, INFINITE, &[h]))
        };
        h.set_event();
        assert!(waiter.join().unwrap());
        assert!(!h.is_signaled());
    });
}

#[test]
fn wait_any_on_two_events_takes_one_signal_and_leaves_the_other() {
    loom::model(|| {
        let (a, b) = (
            HANDLE::create_event(false, false),
            HANDLE::create_event(false, false),
        );
        let waiter = {
            let hs = [a.clone(), b.clone()];
            thread::spawn(move || wait(COWAIT_DEFAULT, INFINITE, &hs))
        };
        let setter = {
            let b = b.clone();
            thread::spawn(move || b.set_event())
        };
        a.set_event();
        setter.join().unwrap();
        assert!(waiter.join().unwrap());
        // Two signals, one wait: exactly one is left.
        assert_eq!(a.is_signaled() as u32 + b.is_signaled() as u32, 1);
    });
}

#[test]
fn waitall_consumes_both_auto_reset_events_or_neither() {
    loom::model(|| {
        let (a, b) = (
            HANDLE::create_event(false, false),
            HANDLE::create_event(false, true),
        );
        let waiter = {
            let hs = [a.clone(), b.clone()];
            thread::spawn(move || wait(COWAIT_WAITALL, 1, &hs))
        };
        a.set_event();
        let ok = waiter.join().unwrap();
        assert_eq!(ok, !a.is_signaled());
        assert_eq!(ok, !b.is_signaled());
    });
}

#[test]
fn manual_reset_signal_then_reset_never_loses_a_registered_waiter() {
    loom::model(|| {
        let m = HANDLE::create_event(true, false);
        let waiter = {
            let m = m.clone();
            thread::spawn(move || wait(COWAIT_DEFAULT, 1, &[m]))
        };
        m.set_event();
        m.reset_event();
        // Either the wait saw the pulse or it timed out; both are allowed, but it never hangs
        // and the reset stands.
        let _ = waiter.join().unwrap();
        assert!(!m.is_signaled());
    });
}

// ---------------------------------------------------------------------------------------
// Issue 14: `SetEvent` takes no lock when no one waits (a compare-and-swap on the event's
// word), and an auto-reset signal is consumed lock-free. These models race the lock-free
// paths against the locked ones.

/// A lock-free `SetEvent` racing a wait-all that registers with both events: the wait-all is
/// released (no lost wake-up between its check and its registration).
#[test]
fn lock_free_set_racing_a_wait_all_registration_wakes_it() {
    loom::model(|| {
        let (a, b) = (
            HANDLE::create_event(true, true),
            HANDLE::create_event(false, false),
        );
        let waiter = {
            let hs = [a.clone(), b.clone()];
            thread::spawn(move || wait(COWAIT_WAITALL, INFINITE, &hs))
        };
        b.set_event();
        assert!(waiter.join().unwrap());
        assert!(
            !b.is_signaled(),
            "the wait-all consumed the auto-reset signal"
        );
    });
}

/// A lock-free `Wait(0)` on an auto-reset event racing a wait-all over it: its one signal is
/// taken once — by the wait-all, by the `Wait(0)`, or left — never twice.
#[test]
fn lock_free_consume_racing_a_wait_all_takes_the_signal_once() {
    loom::model(|| {
        let (a, b) = (
            HANDLE::create_event(false, true),
            HANDLE::create_event(false, true),
        );
        let all = {
            let hs = [a.clone(), b.clone()];
            thread::spawn(move || wait(COWAIT_WAITALL, 1, &hs))
        };
        let one = wait(COWAIT_DEFAULT, 0, std::slice::from_ref(&a));
        let all = all.join().unwrap();
        assert_eq!(all as u32 + one as u32 + a.is_signaled() as u32, 1);
        assert_eq!(all, !b.is_signaled());
    });
}

/// Two lock-free `SetEvent`s on an auto-reset event racing a timed waiter and a `Wait(0)`:
/// no signal is taken twice and none is lost (two signals are merged into one only when
/// nobody took the first in between).
#[test]
fn two_lock_free_sets_and_two_consumers_never_double_take() {
    loom::model(|| {
        let h = HANDLE::create_event(false, false);
        let waiter = {
            let h = h.clone();
            thread::spawn(move || wait(COWAIT_DEFAULT, 1, &[h]))
        };
        let setter = {
            let h = h.clone();
            thread::spawn(move || h.set_event())
        };
        h.set_event();
        let polled = wait(COWAIT_DEFAULT, 0, std::slice::from_ref(&h));
        setter.join().unwrap();
        let waited = waiter.join().unwrap();
        let taken = polled as u32 + waited as u32;
        let left = h.is_signaled() as u32;
        assert!(taken + left >= 1, "both signals were lost");
        assert!(taken + left <= 2, "a signal was taken twice");
    });
}
