//! loom model checks of the event core: every interleaving (up to `LOOM_MAX_PREEMPTIONS`) of
//! signal against wait on both event kinds, and of wait-any over two events.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --features loom --test loom_sync
//! ```
//!
//! Under loom time does not pass: a finite wait re-checks its events once and then reports a
//! timeout ("the timeout fired first"), an `INFINITE` wait sleeps until granted or notified.
//! So a finite wait explores the "timed out before the signal" and "signal already there"
//! outcomes, never "the signal arrived during the wait" (that path is the `INFINITE` one).
#![cfg(loom)]

use comasync::hresult::{RPC_S_CALLPENDING, S_OK};
use comasync::sync::{
    co_wait_for_multiple_handles, ISynchronize, ISynchronizeHandle, ManualResetEvent, StdEvent,
    HANDLE, INFINITE,
};
use comasync::unknown::ComPtr;
use loom::thread;

fn handle(e: &ComPtr<dyn ISynchronize>) -> HANDLE {
    e.query::<dyn ISynchronizeHandle>()
        .unwrap()
        .get_handle()
        .unwrap()
}

#[test]
fn manual_reset_signal_always_wakes_an_infinite_wait() {
    loom::model(|| {
        let e = ManualResetEvent::create();
        let s = e.clone();
        let t = thread::spawn(move || assert_eq!(s.signal(), S_OK));
        assert_eq!(e.wait(0, INFINITE), S_OK);
        t.join().unwrap();
        // Manual reset: the wait did not consume it.
        assert_eq!(e.wait(0, 0), S_OK);
    });
}

#[test]
fn auto_reset_signal_always_wakes_an_infinite_wait_and_is_consumed() {
    loom::model(|| {
        let e = StdEvent::create();
        let s = e.clone();
        let t = thread::spawn(move || assert_eq!(s.signal(), S_OK));
        assert_eq!(e.wait(0, INFINITE), S_OK);
        t.join().unwrap();
        assert_eq!(e.wait(0, 0), RPC_S_CALLPENDING);
        assert!(!handle(&e).is_signaled());
    });
}

#[test]
fn a_timed_out_wait_never_loses_an_auto_reset_signal() {
    loom::model(|| {
        let e = StdEvent::create();
        let s = e.clone();
        let t = thread::spawn(move || s.signal());
        // A finite wait: under loom, the timeout fires as soon as nothing is there.
        let hr = e.wait(0, 5);
        assert_eq!(t.join().unwrap(), S_OK);
        let left = handle(&e).is_signaled();
        match hr {
            S_OK => assert!(!left, "the wait took the signal: it must be consumed"),
            RPC_S_CALLPENDING => {
                assert!(left, "the wait timed out: the signal must still be there")
            }
            other => panic!("unexpected {other:?}"),
        }
    });
}

/// Two signals release two *blocked* waiters: signals are handed to waiting threads, never
/// merged while someone waits. (With nobody waiting, two `SetEvent`s on an auto-reset event
/// are one signal, as on Windows; so the signals come once both waiters are registered.)
#[test]
fn two_auto_reset_signals_release_two_blocked_waiters() {
    loom::model(|| {
        let e = StdEvent::create();
        let h = handle(&e);
        let (w1, w2) = (e.clone(), e.clone());
        let t1 = thread::spawn(move || w1.wait(0, INFINITE));
        let t2 = thread::spawn(move || w2.wait(0, INFINITE));
        while h.waiter_count() < 2 {
            thread::yield_now();
        }
        assert_eq!(e.signal(), S_OK);
        assert_eq!(e.signal(), S_OK);
        assert_eq!(t1.join().unwrap(), S_OK);
        assert_eq!(t2.join().unwrap(), S_OK);
        assert!(!h.is_signaled());
    });
}

#[test]
fn manual_reset_signal_then_reset_still_releases_the_waiter_it_found() {
    loom::model(|| {
        let e = ManualResetEvent::create();
        let w = e.clone();
        let waiter = thread::spawn(move || w.wait(0, 5));
        assert_eq!(e.signal(), S_OK);
        assert_eq!(e.reset(), S_OK);
        // The waiter either timed out before the signal, or was released by it; both are
        // allowed. What must never happen is a hang or another code.
        let hr = waiter.join().unwrap();
        assert!(hr == S_OK || hr == RPC_S_CALLPENDING, "{hr:?}");
        assert!(!handle(&e).is_signaled());
    });
}

#[test]
fn wait_any_over_two_events_takes_exactly_one_signal() {
    loom::model(|| {
        let (a, b) = (StdEvent::create(), StdEvent::create());
        let handles = [handle(&a), handle(&b)];
        let (sa, sb) = (a.clone(), b.clone());
        let ta = thread::spawn(move || sa.signal());
        let tb = thread::spawn(move || sb.signal());
        let mut index = 99;
        let hr = co_wait_for_multiple_handles(0, INFINITE, Some(&handles), Some(&mut index));
        assert_eq!(ta.join().unwrap(), S_OK);
        assert_eq!(tb.join().unwrap(), S_OK);
        assert_eq!(hr, S_OK);
        assert!(index < 2);
        // Exactly one auto-reset signal was consumed: the other event is still signaled.
        let other = &handles[1 - index as usize];
        assert!(
            other.is_signaled(),
            "wait-any consumed both signals (index {index})"
        );
        assert!(!handles[index as usize].is_signaled());
    });
}

#[test]
fn wait_any_wakes_on_a_manual_reset_event_signaled_after_it_sleeps() {
    loom::model(|| {
        let (a, b) = (ManualResetEvent::create(), StdEvent::create());
        let handles = [handle(&a), handle(&b)];
        let sb = b.clone();
        let t = thread::spawn(move || sb.signal());
        let mut index = 99;
        let hr = co_wait_for_multiple_handles(0, INFINITE, Some(&handles), Some(&mut index));
        assert_eq!(t.join().unwrap(), S_OK);
        assert_eq!((hr, index), (S_OK, 1));
        assert!(!handles[1].is_signaled());
    });
}

#[test]
fn wait_all_over_two_events_needs_both() {
    loom::model(|| {
        let (a, b) = (StdEvent::create(), ManualResetEvent::create());
        let handles = [handle(&a), handle(&b)];
        let (sa, sb) = (a.clone(), b.clone());
        let ta = thread::spawn(move || sa.signal());
        let tb = thread::spawn(move || sb.signal());
        let mut index = 99;
        let hr = co_wait_for_multiple_handles(1, INFINITE, Some(&handles), Some(&mut index));
        assert_eq!(ta.join().unwrap(), S_OK);
        assert_eq!(tb.join().unwrap(), S_OK);
        assert_eq!((hr, index), (S_OK, 0));
        assert!(
            !handles[0].is_signaled(),
            "the auto-reset event is consumed"
        );
        assert!(handles[1].is_signaled(), "the manual-reset event is not");
    });
}
