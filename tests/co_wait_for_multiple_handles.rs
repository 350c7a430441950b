//! `CoWaitForMultipleHandles` (spec 1.9, D12): the argument checks in Windows' order, wait-any
//! and `COWAIT_WAITALL`, auto-reset consumption, timeouts, and cross-thread wake-ups without
//! lost signals.
//!
//! No test sleeps to order threads: a thread that must be blocked before the signal is waited
//! for with `HANDLE::waiter_count`, results come back over channels, and every multi-thread
//! test runs under a watchdog that fails with a message instead of hanging.

mod common;

use common::{until_blocked, within};
use std::sync::mpsc;
use std::thread;

use comasync::hresult::{E_INVALIDARG, HRESULT, RPC_E_NO_SYNC, RPC_S_CALLPENDING, S_OK};
use comasync::sync::{
    co_wait_for_multiple_handles, COWAIT_ALERTABLE, COWAIT_DEFAULT, COWAIT_DISPATCH_CALLS,
    COWAIT_DISPATCH_WINDOW_MESSAGES, COWAIT_INPUTAVAILABLE, COWAIT_VALID_FLAGS, COWAIT_WAITALL,
    HANDLE, INFINITE, MAXIMUM_WAIT_OBJECTS,
};

fn auto(signaled: bool) -> HANDLE {
    HANDLE::create_event(false, signaled)
}

fn manual(signaled: bool) -> HANDLE {
    HANDLE::create_event(true, signaled)
}

/// `CoWaitForMultipleHandles` with a real index out-pointer preset to `start`.
fn wait(flags: u32, timeout: u32, handles: &[HANDLE], start: u32) -> (HRESULT, u32) {
    let mut index = start;
    let hr = co_wait_for_multiple_handles(flags, timeout, Some(handles), Some(&mut index));
    (hr, index)
}

// ---- argument checks, in Windows' order ------------------------------------------------

#[test]
fn missing_index_returns_e_invalidarg_and_waits_for_nothing() {
    let h = auto(true);
    let hr = co_wait_for_multiple_handles(
        COWAIT_DEFAULT,
        INFINITE,
        Some(std::slice::from_ref(&h)),
        None,
    );
    assert_eq!(hr, E_INVALIDARG);
    assert!(
        h.is_signaled(),
        "no wait happened: the auto-reset signal is still there"
    );
    // Checked before everything else.
    assert_eq!(co_wait_for_multiple_handles(0, 0, None, None), E_INVALIDARG);
    assert_eq!(
        co_wait_for_multiple_handles(0, 0, Some(&[]), None),
        E_INVALIDARG
    );
    assert_eq!(
        co_wait_for_multiple_handles(0xFFFF, 0, Some(&[]), None),
        E_INVALIDARG
    );
}

#[test]
fn index_is_set_to_zero_before_the_handle_array_is_checked() {
    let mut index = 42;
    assert_eq!(
        co_wait_for_multiple_handles(0, 0, None, Some(&mut index)),
        E_INVALIDARG
    );
    assert_eq!(index, 0);
}

#[test]
fn missing_handle_array_returns_e_invalidarg_with_index_zero() {
    for flags in [COWAIT_DEFAULT, COWAIT_WAITALL] {
        let mut index = 7;
        let hr = co_wait_for_multiple_handles(flags, INFINITE, None, Some(&mut index));
        assert_eq!((hr, index), (E_INVALIDARG, 0));
    }
}

#[test]
fn zero_handles_returns_rpc_e_no_sync_with_index_zero() {
    // D12: "pHandles was 0" means cHandles == 0 with a non-NULL array.
    for flags in [COWAIT_DEFAULT, COWAIT_WAITALL] {
        for timeout in [0, INFINITE] {
            assert_eq!(wait(flags, timeout, &[], 9), (RPC_E_NO_SYNC, 0));
        }
    }
}

#[test]
fn unknown_flags_return_e_invalidarg_with_index_zero() {
    let h = auto(true);
    for flags in [0x20, 0x100, 0x8000_0000, !COWAIT_VALID_FLAGS, u32::MAX] {
        assert_eq!(
            wait(flags, INFINITE, std::slice::from_ref(&h), 5),
            (E_INVALIDARG, 0)
        );
    }
    assert!(h.is_signaled(), "a rejected call consumes nothing");
}

#[test]
fn every_documented_flag_is_accepted() {
    for flags in [
        COWAIT_DEFAULT,
        COWAIT_WAITALL,
        COWAIT_ALERTABLE,
        COWAIT_INPUTAVAILABLE,
        COWAIT_DISPATCH_CALLS,
        COWAIT_DISPATCH_WINDOW_MESSAGES,
        COWAIT_VALID_FLAGS,
    ] {
        let h = auto(true);
        assert_eq!(
            wait(flags, 0, std::slice::from_ref(&h), 3),
            (S_OK, 0),
            "flags {flags:#x}"
        );
        assert_eq!(
            wait(flags, 0, &[h], 3),
            (RPC_S_CALLPENDING, 0),
            "flags {flags:#x}"
        );
    }
}

#[test]
fn more_than_64_handles_returns_e_invalidarg() {
    assert_eq!(MAXIMUM_WAIT_OBJECTS, 64);
    let handles: Vec<HANDLE> = (0..65).map(|_| auto(true)).collect();
    for flags in [COWAIT_DEFAULT, COWAIT_WAITALL] {
        let (hr, index) = wait(flags, INFINITE, &handles, 1);
        assert_eq!((hr, index), (E_INVALIDARG, 0));
        assert_eq!(hr.as_u32(), 0x8007_0057);
    }
    assert!(
        handles.iter().all(HANDLE::is_signaled),
        "a rejected call consumes nothing"
    );
}

#[test]
fn exactly_64_handles_are_accepted() {
    let handles: Vec<HANDLE> = (0..64).map(|i| auto(i == 63)).collect();
    assert_eq!(wait(COWAIT_DEFAULT, 0, &handles, 0), (S_OK, 63));
    for h in &handles {
        h.set_event();
    }
    assert_eq!(wait(COWAIT_WAITALL, 0, &handles, 5), (S_OK, 0));
    assert!(handles.iter().all(|h| !h.is_signaled()));
}

#[test]
fn waitall_with_the_same_handle_twice_returns_e_invalidarg() {
    // WaitForMultipleObjects rejects duplicates in a wait-all with ERROR_INVALID_PARAMETER.
    let h = auto(true);
    assert_eq!(
        wait(COWAIT_WAITALL, 0, &[h.clone(), h.clone()], 4),
        (E_INVALIDARG, 0)
    );
    assert!(h.is_signaled());
}

#[test]
fn wait_any_accepts_the_same_handle_twice_and_returns_the_lower_index() {
    let h = auto(true);
    let other = auto(false);
    assert_eq!(
        wait(COWAIT_DEFAULT, 0, &[other, h.clone(), h.clone()], 0),
        (S_OK, 1)
    );
    assert!(!h.is_signaled(), "one signal, consumed once");
}

// ---- wait-any ------------------------------------------------------------------------------

#[test]
fn wait_any_returns_the_lowest_signaled_index_and_consumes_only_that_auto_reset_event() {
    let hs = [auto(false), auto(true), auto(true), manual(true)];
    assert_eq!(wait(COWAIT_DEFAULT, 0, &hs, 9), (S_OK, 1));
    assert!(
        !hs[1].is_signaled(),
        "the returned auto-reset event is consumed"
    );
    assert!(
        hs[2].is_signaled(),
        "a higher signaled auto-reset event is untouched"
    );
    assert!(hs[3].is_signaled());
    assert_eq!(wait(COWAIT_DEFAULT, 0, &hs, 9), (S_OK, 2));
    assert_eq!(wait(COWAIT_DEFAULT, 0, &hs, 9), (S_OK, 3));
    // A manual-reset event is not consumed: it keeps answering.
    assert_eq!(wait(COWAIT_DEFAULT, 0, &hs, 9), (S_OK, 3));
    assert!(hs[3].is_signaled());
}

#[test]
fn wait_any_with_one_handle_returns_index_zero() {
    let h = manual(true);
    assert_eq!(wait(COWAIT_DEFAULT, 0, &[h], 8), (S_OK, 0));
}

#[test]
fn timeout_returns_rpc_s_callpending_with_index_zero() {
    let hs = [auto(false), manual(false)];
    for flags in [COWAIT_DEFAULT, COWAIT_WAITALL] {
        for timeout in [0, 1, 20] {
            assert_eq!(
                wait(flags, timeout, &hs, 77),
                (RPC_S_CALLPENDING, 0),
                "{flags} {timeout}"
            );
        }
    }
}

// ---- COWAIT_WAITALL ------------------------------------------------------------------------

#[test]
fn waitall_returns_index_zero_and_consumes_every_auto_reset_event() {
    let hs = [manual(true), auto(true), auto(true)];
    assert_eq!(wait(COWAIT_WAITALL, 0, &hs, 5), (S_OK, 0));
    assert!(hs[0].is_signaled(), "the manual-reset event stays signaled");
    assert!(!hs[1].is_signaled());
    assert!(!hs[2].is_signaled());
}

#[test]
fn waitall_consumes_none_when_not_all_are_signaled() {
    let (a, b) = (auto(true), auto(false));
    for timeout in [0, 20] {
        assert_eq!(
            wait(COWAIT_WAITALL, timeout, &[a.clone(), b.clone()], 3),
            (RPC_S_CALLPENDING, 0)
        );
        assert!(
            a.is_signaled(),
            "the one signaled auto-reset event is still signaled"
        );
        assert!(!b.is_signaled());
    }
    // And a wait-any can still take it.
    assert_eq!(wait(COWAIT_DEFAULT, 0, &[b, a.clone()], 3), (S_OK, 1));
    assert!(!a.is_signaled());
}

#[test]
fn waitall_needs_every_handle_signaled_at_once() {
    let (a, b) = (auto(false), manual(false));
    a.set_event();
    assert_eq!(
        wait(COWAIT_WAITALL, 0, &[a.clone(), b.clone()], 0),
        (RPC_S_CALLPENDING, 0)
    );
    b.set_event();
    assert_eq!(
        wait(COWAIT_WAITALL, 0, &[a.clone(), b.clone()], 0),
        (S_OK, 0)
    );
    assert!(!a.is_signaled());
    assert!(b.is_signaled());
}

// ---- cross-thread wake-ups -----------------------------------------------------------------

#[test]
fn wait_any_is_woken_by_a_signal_from_another_thread() {
    let hs = [auto(false), auto(false), manual(false)];
    let waiter = {
        let hs = hs.clone();
        thread::spawn(move || wait(COWAIT_DEFAULT, INFINITE, &hs, 9))
    };
    let result = within("wait-any woken by another thread", move || {
        until_blocked(&hs[1], 1);
        hs[1].set_event();
        let r = waiter.join().unwrap();
        assert!(
            !hs[1].is_signaled(),
            "the woken wait consumed the auto-reset signal"
        );
        r
    });
    assert_eq!(result, (S_OK, 1));
}

#[test]
fn wait_any_on_several_events_takes_exactly_one_signal() {
    // Both events are signaled while the thread is blocked on them: it takes one; the other
    // signal stays for the next wait.
    let (a, b) = (auto(false), auto(false));
    let waiter = {
        let hs = [a.clone(), b.clone()];
        thread::spawn(move || wait(COWAIT_DEFAULT, INFINITE, &hs, 9))
    };
    within("wait-any with two signals", move || {
        until_blocked(&b, 1);
        a.set_event();
        b.set_event();
        let (hr, index) = waiter.join().unwrap();
        assert_eq!(hr, S_OK);
        let (taken, left) = if index == 0 { (&a, &b) } else { (&b, &a) };
        assert!(!taken.is_signaled());
        assert!(left.is_signaled(), "the second signal is not lost");
    });
}

#[test]
fn waitall_is_woken_by_signals_from_another_thread() {
    let (a, b) = (auto(false), auto(false));
    let waiter = {
        let hs = [a.clone(), b.clone()];
        thread::spawn(move || wait(COWAIT_WAITALL, INFINITE, &hs, 9))
    };
    let (done_tx, done_rx) = mpsc::channel();
    let watcher = thread::spawn(move || done_tx.send(waiter.join().unwrap()).unwrap());
    let result = within("wait-all woken by another thread", move || {
        until_blocked(&a, 1);
        a.set_event();
        // One of two is not enough: the wait-all is still blocked, and leaves `a` alone.
        assert!(done_rx.try_recv().is_err());
        assert!(a.is_signaled());
        b.set_event();
        let r = done_rx.recv().unwrap();
        watcher.join().unwrap();
        assert!(
            !a.is_signaled() && !b.is_signaled(),
            "both consumed at once"
        );
        r
    });
    assert_eq!(result, (S_OK, 0));
}

#[test]
fn waitall_that_times_out_leaves_a_signaled_auto_reset_event_signaled() {
    let (a, b) = (auto(true), auto(false));
    let waiter = {
        let hs = [a.clone(), b.clone()];
        thread::spawn(move || wait(COWAIT_WAITALL, 30, &hs, 9))
    };
    let result = within("wait-all timeout", move || waiter.join().unwrap());
    assert_eq!(result, (RPC_S_CALLPENDING, 0));
    assert!(a.is_signaled());
}

// ---- no lost wake-ups ----------------------------------------------------------------------

/// `threads` threads, each waiting `waits` times on `h` (`INFINITE`, each wait `S_OK` on index
/// 0) and reporting each return on the receiver.
fn waiting_threads(
    h: &HANDLE,
    threads: usize,
    waits: usize,
) -> (Vec<thread::JoinHandle<()>>, mpsc::Receiver<()>) {
    let (done_tx, done_rx) = mpsc::channel();
    let waiters = (0..threads)
        .map(|_| {
            let (h, done_tx) = (h.clone(), done_tx.clone());
            thread::spawn(move || {
                for _ in 0..waits {
                    assert_eq!(
                        wait(COWAIT_DEFAULT, INFINITE, std::slice::from_ref(&h), 9),
                        (S_OK, 0)
                    );
                    done_tx.send(()).unwrap();
                }
            })
        })
        .collect();
    (waiters, done_rx)
}

#[test]
fn many_threads_waiting_on_one_auto_reset_event_n_signals_release_exactly_n_waits() {
    const THREADS: usize = 4;
    const ITERATIONS: usize = 1000;
    let h = auto(false);
    let (waiters, done_rx) = waiting_threads(&h, THREADS, ITERATIONS);
    within(
        "4 threads x 1000 waits on one auto-reset event",
        move || {
            for _ in 0..THREADS * ITERATIONS {
                h.set_event();
                // Each signal releases one wait; the next signal is sent only once it has.
                done_rx.recv().unwrap();
            }
            for t in waiters {
                t.join().unwrap();
            }
            assert!(
                !h.is_signaled(),
                "N signals, N waits released, nothing left over"
            );
            assert!(
                done_rx.try_recv().is_err(),
                "no wait was released without a signal"
            );
        },
    );
}

#[test]
fn back_to_back_signals_to_blocked_threads_are_not_merged() {
    const THREADS: usize = 4;
    const ROUNDS: usize = 250;
    let h = auto(false);
    let (waiters, done_rx) = waiting_threads(&h, THREADS, ROUNDS);
    within("signals sent back to back to blocked threads", move || {
        for _ in 0..ROUNDS {
            until_blocked(&h, THREADS);
            for _ in 0..THREADS {
                h.set_event();
            }
            for _ in 0..THREADS {
                done_rx.recv().unwrap();
            }
        }
        for t in waiters {
            t.join().unwrap();
        }
        assert!(!h.is_signaled());
    });
}

#[test]
fn wait_any_on_two_auto_reset_events_consumes_one_signal_per_wait() {
    const THREADS: usize = 4;
    const ITERATIONS: usize = 500;
    let (a, b) = (auto(false), auto(false));
    let (done_tx, done_rx) = mpsc::channel();
    let waiters: Vec<_> = (0..THREADS)
        .map(|t| {
            // Half the threads list the events the other way round.
            let hs = if t % 2 == 0 {
                [a.clone(), b.clone()]
            } else {
                [b.clone(), a.clone()]
            };
            let done_tx = done_tx.clone();
            thread::spawn(move || {
                for _ in 0..ITERATIONS {
                    assert_eq!(wait(COWAIT_DEFAULT, INFINITE, &hs, 9).0, S_OK);
                    done_tx.send(()).unwrap();
                }
            })
        })
        .collect();
    within("wait-any on two events, 4 threads", move || {
        for i in 0..THREADS * ITERATIONS {
            if i % 2 == 0 { &a } else { &b }.set_event();
            done_rx.recv().unwrap();
        }
        for t in waiters {
            t.join().unwrap();
        }
        assert!(
            !a.is_signaled() && !b.is_signaled(),
            "no signal taken twice, none left over"
        );
    });
}

#[test]
fn concurrent_waitalls_in_opposite_order_neither_deadlock_nor_lose_signals() {
    const ITERATIONS: usize = 500;
    let (a, b) = (auto(false), auto(false));
    let (done_tx, done_rx) = mpsc::channel();
    let waiters: Vec<_> = [[a.clone(), b.clone()], [b.clone(), a.clone()]]
        .into_iter()
        .map(|hs| {
            let done_tx = done_tx.clone();
            thread::spawn(move || {
                for _ in 0..ITERATIONS {
                    assert_eq!(wait(COWAIT_WAITALL, INFINITE, &hs, 9), (S_OK, 0));
                    done_tx.send(()).unwrap();
                }
            })
        })
        .collect();
    within(
        "two wait-all threads locking in opposite order",
        move || {
            for _ in 0..2 * ITERATIONS {
                a.set_event();
                b.set_event();
                done_rx.recv().unwrap();
                assert!(
                    !a.is_signaled() && !b.is_signaled(),
                    "a wait-all took both at once"
                );
            }
            for t in waiters {
                t.join().unwrap();
            }
        },
    );
}

#[test]
fn manual_reset_pulse_releases_every_blocked_wait_any() {
    let m = manual(false);
    let other = auto(false);
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let hs = [other.clone(), m.clone()];
            thread::spawn(move || wait(COWAIT_DEFAULT, INFINITE, &hs, 9))
        })
        .collect();
    let results = within("manual-reset set+reset while threads wait", move || {
        until_blocked(&m, 3);
        m.set_event();
        m.reset_event();
        waiters
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(results, vec![(S_OK, 1); 3]);
}

#[test]
fn a_timed_out_wait_leaves_no_registration_behind() {
    let h = auto(false);
    assert_eq!(
        wait(COWAIT_DEFAULT, 5, std::slice::from_ref(&h), 1),
        (RPC_S_CALLPENDING, 0)
    );
    assert_eq!(h.waiter_count(), 0);
    // A signal after the timed-out wait stays for the next wait.
    h.set_event();
    assert!(h.is_signaled());
    assert_eq!(wait(COWAIT_DEFAULT, 0, &[h], 1), (S_OK, 0));
}
