//! `ISynchronize`, `ISynchronizeHandle` and `ISynchronizeEvent` on the system event classes
//! `CLSID_ManualResetEvent` and `CLSID_StdEvent` (spec 1.4, 1.5, D1, D13).
//!
//! No test sleeps to order threads: a thread that must be blocked before the signal is waited
//! for with `HANDLE::waiter_count`, results come back over channels, and every multi-thread
//! test runs under a watchdog that fails with a message instead of hanging.

mod common;

use common::{handle_of, until_blocked, within};
use std::sync::mpsc;
use std::thread;

use comasync::class::{co_create_instance, create_instance};
use comasync::guid::{
    CLSID_ManualResetEvent, CLSID_StdEvent, CLSID_SynchronizeContainer, IID_ISynchronize,
    IID_ISynchronizeContainer, IID_ISynchronizeEvent, IID_ISynchronizeHandle, IID_IUnknown, CLSID,
};
use comasync::hresult::{E_INVALIDARG, E_NOINTERFACE, RPC_E_TIMEOUT, RPC_S_CALLPENDING, S_OK};
use comasync::sync::{
    ISynchronize, ISynchronizeContainer, ISynchronizeEvent, ISynchronizeHandle, ManualResetEvent,
    StdEvent, SynchronizeContainer, COWAIT_ALERTABLE, COWAIT_DEFAULT, COWAIT_DISPATCH_CALLS,
    COWAIT_DISPATCH_WINDOW_MESSAGES, COWAIT_INPUTAVAILABLE, COWAIT_VALID_FLAGS, COWAIT_WAITALL,
    HANDLE, INFINITE,
};
use comasync::unknown::{ComPtr, IUnknown};

fn both_classes() -> [(&'static str, ComPtr<dyn ISynchronize>); 2] {
    [
        ("ManualResetEvent", ManualResetEvent::create()),
        ("StdEvent", StdEvent::create()),
    ]
}

// ---- initial state, Wait timeouts (D1) ---------------------------------------------------

#[test]
fn manual_reset_event_and_std_event_start_non_signaled() {
    for (name, e) in both_classes() {
        assert!(!handle_of(&e).is_signaled(), "{name}");
        assert_eq!(e.wait(COWAIT_DEFAULT, 0), RPC_S_CALLPENDING, "{name}");
    }
}

#[test]
fn wait_timeout_returns_rpc_s_callpending_never_rpc_e_timeout() {
    for (name, e) in both_classes() {
        for timeout in [0, 1, 20] {
            let hr = e.wait(COWAIT_DEFAULT, timeout);
            assert_eq!(hr, RPC_S_CALLPENDING, "{name}, Wait(0, {timeout})");
            assert_ne!(hr, RPC_E_TIMEOUT, "{name}");
            assert!(
                hr.failed(),
                "RPC_S_CALLPENDING is a failure code despite its name"
            );
        }
    }
}

#[test]
fn wait_zero_returns_at_once_with_s_ok_when_signaled() {
    for (name, e) in both_classes() {
        assert_eq!(e.signal(), S_OK);
        assert_eq!(e.wait(COWAIT_DEFAULT, 0), S_OK, "{name}");
    }
}

#[test]
fn infinite_wait_returns_s_ok_once_another_thread_signals() {
    for (name, e) in both_classes() {
        let h = handle_of(&e);
        let waiter = {
            let e = e.clone();
            thread::spawn(move || e.wait(COWAIT_DEFAULT, INFINITE))
        };
        let hr = within("INFINITE wait woken by another thread", move || {
            until_blocked(&h, 1);
            assert_eq!(e.signal(), S_OK);
            waiter.join().unwrap()
        });
        assert_eq!(hr, S_OK, "{name}");
    }
}

#[test]
fn finite_wait_returns_s_ok_when_signaled_by_another_thread_before_the_timeout() {
    for (name, e) in both_classes() {
        let h = handle_of(&e);
        let waiter = {
            let e = e.clone();
            // Long enough never to expire in a healthy run; the test does not time it.
            thread::spawn(move || e.wait(COWAIT_DEFAULT, 50_000))
        };
        let hr = within("finite wait woken by another thread", move || {
            until_blocked(&h, 1);
            assert_eq!(e.signal(), S_OK);
            waiter.join().unwrap()
        });
        assert_eq!(hr, S_OK, "{name}");
    }
}

// ---- Signal and Reset --------------------------------------------------------------------

#[test]
fn signal_and_reset_always_return_s_ok() {
    for (name, e) in both_classes() {
        // From every state, repeatedly.
        for _ in 0..3 {
            assert_eq!(e.signal(), S_OK, "{name}: Signal");
        }
        for _ in 0..3 {
            assert_eq!(e.reset(), S_OK, "{name}: Reset");
        }
        assert_eq!(e.signal(), S_OK, "{name}");
        assert_eq!(e.wait(0, 0), S_OK, "{name}");
        assert_eq!(e.reset(), S_OK, "{name}");
        assert_eq!(e.signal(), S_OK, "{name}");
    }
}

#[test]
fn reset_makes_a_signaled_event_non_signaled() {
    for (name, e) in both_classes() {
        assert_eq!(e.signal(), S_OK);
        assert_eq!(e.reset(), S_OK);
        assert_eq!(e.wait(0, 0), RPC_S_CALLPENDING, "{name}");
        assert!(!handle_of(&e).is_signaled(), "{name}");
    }
}

#[test]
fn manual_reset_event_stays_signaled_across_waits() {
    let e = ManualResetEvent::create();
    assert_eq!(e.signal(), S_OK);
    for _ in 0..5 {
        assert_eq!(e.wait(0, 0), S_OK);
        assert_eq!(e.wait(0, 10), S_OK);
    }
    assert!(handle_of(&e).is_signaled());
}

#[test]
fn manual_reset_event_signal_releases_every_waiting_thread() {
    let e = ManualResetEvent::create();
    let h = handle_of(&e);
    let waiters: Vec<_> = (0..3)
        .map(|_| {
            let e = e.clone();
            thread::spawn(move || e.wait(0, INFINITE))
        })
        .collect();
    let results = within("manual-reset signal releases all waiters", move || {
        until_blocked(&h, 3);
        assert_eq!(e.signal(), S_OK);
        waiters
            .into_iter()
            .map(|t| t.join().unwrap())
            .collect::<Vec<_>>()
    });
    assert_eq!(results, vec![S_OK; 3]);
}

#[test]
fn manual_reset_signal_then_reset_releases_threads_that_were_already_waiting() {
    let e = ManualResetEvent::create();
    let h = handle_of(&e);
    let waiters: Vec<_> = (0..2)
        .map(|_| {
            let e = e.clone();
            thread::spawn(move || e.wait(0, INFINITE))
        })
        .collect();
    let (results, after) = within(
        "signal-then-reset releases the waiting threads",
        move || {
            until_blocked(&h, 2);
            // Signal and reset back to back, before the woken threads can run: both were
            // waiting when the signal came, so both are released (as on Windows).
            assert_eq!(e.signal(), S_OK);
            assert_eq!(e.reset(), S_OK);
            let results: Vec<_> = waiters.into_iter().map(|t| t.join().unwrap()).collect();
            (results, e.wait(0, 0))
        },
    );
    assert_eq!(results, vec![S_OK, S_OK]);
    // The reset stands for later waits.
    assert_eq!(after, RPC_S_CALLPENDING);
}

#[test]
fn std_event_auto_resets_after_one_successful_wait() {
    let e = StdEvent::create();
    assert_eq!(e.signal(), S_OK);
    assert_eq!(e.wait(0, 0), S_OK);
    assert_eq!(e.wait(0, 0), RPC_S_CALLPENDING);
    assert!(!handle_of(&e).is_signaled());
    // Two signals with nobody waiting are one signal (an event is not a semaphore).
    assert_eq!(e.signal(), S_OK);
    assert_eq!(e.signal(), S_OK);
    assert_eq!(e.wait(0, 0), S_OK);
    assert_eq!(e.wait(0, 0), RPC_S_CALLPENDING);
}

#[test]
fn std_event_failed_wait_does_not_reset_or_consume() {
    let e = StdEvent::create();
    assert_eq!(e.wait(0, 0), RPC_S_CALLPENDING);
    assert_eq!(e.signal(), S_OK);
    // A wait rejected for its flags takes nothing.
    assert_eq!(e.wait(0x8000, 0), E_INVALIDARG);
    assert_eq!(e.wait(0, 0), S_OK);
}

#[test]
fn std_event_one_signal_releases_exactly_one_of_two_waiting_threads() {
    let e = StdEvent::create();
    let h = handle_of(&e);
    let (done_tx, done_rx) = mpsc::channel();
    let waiters: Vec<_> = (0..2)
        .map(|id| {
            let (e, done_tx) = (e.clone(), done_tx.clone());
            thread::spawn(move || done_tx.send((id, e.wait(0, INFINITE))).unwrap())
        })
        .collect();
    within("StdEvent releases one waiter per signal", move || {
        until_blocked(&h, 2);
        assert_eq!(e.signal(), S_OK);
        let (first, hr) = done_rx.recv().unwrap();
        assert_eq!(hr, S_OK);
        // The other thread is still blocked: the signal was consumed by one wait.
        assert!(
            !h.is_signaled(),
            "the one signal must be consumed by the released wait"
        );
        assert_eq!(e.signal(), S_OK);
        let (second, hr) = done_rx.recv().unwrap();
        assert_eq!(hr, S_OK);
        assert_ne!(first, second);
        for t in waiters {
            t.join().unwrap();
        }
        // Two signals, two releases, nothing left over: no signal released both threads.
        assert_eq!(e.wait(0, 0), RPC_S_CALLPENDING);
    });
}

#[test]
fn std_event_n_signals_while_n_threads_wait_release_all_n() {
    // On Windows SetEvent on an auto-reset event with a waiting thread releases that thread
    // at once; back-to-back signals are not merged while threads wait for them.
    const THREADS: usize = 4;
    const ROUNDS: usize = 200;
    let e = StdEvent::create();
    let h = handle_of(&e);
    let (done_tx, done_rx) = mpsc::channel();
    let waiters: Vec<_> = (0..THREADS)
        .map(|_| {
            let (e, done_tx) = (e.clone(), done_tx.clone());
            thread::spawn(move || {
                for _ in 0..ROUNDS {
                    assert_eq!(e.wait(0, INFINITE), S_OK);
                    done_tx.send(()).unwrap();
                }
            })
        })
        .collect();
    within("N back-to-back signals to N blocked threads", move || {
        for _ in 0..ROUNDS {
            until_blocked(&h, THREADS);
            for _ in 0..THREADS {
                assert_eq!(e.signal(), S_OK);
            }
            for _ in 0..THREADS {
                done_rx.recv().unwrap();
            }
        }
        for t in waiters {
            t.join().unwrap();
        }
        assert_eq!(e.wait(0, 0), RPC_S_CALLPENDING);
    });
}

// ---- flags -------------------------------------------------------------------------------

#[test]
fn wait_accepts_cowait_waitall_on_its_single_handle() {
    for (name, e) in both_classes() {
        assert_eq!(e.wait(COWAIT_WAITALL, 0), RPC_S_CALLPENDING, "{name}");
        assert_eq!(e.signal(), S_OK);
        assert_eq!(e.wait(COWAIT_WAITALL, 0), S_OK, "{name}");
    }
    // The FullServ sample's call: Wait(COWAIT_WAITALL, INFINITE), signaled from elsewhere.
    let e = ManualResetEvent::create();
    let h = handle_of(&e);
    let waiter = {
        let e = e.clone();
        thread::spawn(move || e.wait(COWAIT_WAITALL, INFINITE))
    };
    let hr = within("Wait(COWAIT_WAITALL, INFINITE)", move || {
        until_blocked(&h, 1);
        assert_eq!(e.signal(), S_OK);
        waiter.join().unwrap()
    });
    assert_eq!(hr, S_OK);
}

#[test]
fn wait_accepts_every_documented_cowait_flag() {
    let flags = [
        COWAIT_DEFAULT,
        COWAIT_WAITALL,
        COWAIT_ALERTABLE,
        COWAIT_INPUTAVAILABLE,
        COWAIT_DISPATCH_CALLS,
        COWAIT_DISPATCH_WINDOW_MESSAGES,
        COWAIT_VALID_FLAGS,
    ];
    for (name, e) in both_classes() {
        for f in flags {
            assert_eq!(e.wait(f, 0), RPC_S_CALLPENDING, "{name}, flags {f:#x}");
            assert_eq!(e.signal(), S_OK);
            assert_eq!(e.wait(f, 0), S_OK, "{name}, flags {f:#x}");
            assert_eq!(e.reset(), S_OK);
        }
    }
}

#[test]
fn wait_with_unknown_flags_returns_e_invalidarg() {
    for (name, e) in both_classes() {
        for f in [0x20, 0x40, 0x8000_0000, !COWAIT_VALID_FLAGS, u32::MAX] {
            assert_eq!(e.wait(f, 0), E_INVALIDARG, "{name}, flags {f:#x}");
            assert_eq!(
                e.wait(f, INFINITE),
                E_INVALIDARG,
                "{name}, flags {f:#x} (no wait)"
            );
        }
        // Also when signaled, and the signal is left alone.
        assert_eq!(e.signal(), S_OK);
        assert_eq!(e.wait(0x20, 0), E_INVALIDARG, "{name}");
        assert_eq!(e.wait(0, 0), S_OK, "{name}");
    }
}

// ---- ISynchronizeHandle ------------------------------------------------------------------

#[test]
fn get_handle_returns_a_stable_handle_equal_across_calls() {
    for (name, e) in both_classes() {
        let sh = e.query::<dyn ISynchronizeHandle>().unwrap();
        let h1 = sh.get_handle().unwrap();
        let h2 = sh.get_handle().unwrap();
        let h3 = e
            .query::<dyn ISynchronizeHandle>()
            .unwrap()
            .get_handle()
            .unwrap();
        assert_eq!(h1, h2, "{name}");
        assert_eq!(h1, h3, "{name}");
        assert_eq!(h1.id(), h3.id(), "{name}");
        // ... and stays the same across signal/wait/reset.
        assert_eq!(e.signal(), S_OK);
        assert_eq!(e.wait(0, 0), S_OK);
        assert_eq!(e.reset(), S_OK);
        assert_eq!(sh.get_handle().unwrap(), h1, "{name}");
    }
}

#[test]
fn get_handle_is_the_event_that_signal_and_wait_use() {
    let mre = ManualResetEvent::create();
    let h = handle_of(&mre);
    assert!(h.is_manual_reset());
    assert_eq!(mre.signal(), S_OK);
    assert!(h.is_signaled());
    h.reset_event();
    assert_eq!(mre.wait(0, 0), RPC_S_CALLPENDING);
    h.set_event();
    assert_eq!(mre.wait(0, 0), S_OK);

    let std = StdEvent::create();
    let h = handle_of(&std);
    assert!(!h.is_manual_reset());
    h.set_event();
    assert_eq!(std.wait(0, 0), S_OK);
    assert!(
        !h.is_signaled(),
        "the StdEvent's wait consumed the handle's signal"
    );
}

// ---- ISynchronizeEvent -------------------------------------------------------------------

#[test]
fn manual_reset_event_answers_e_nointerface_for_isynchronizeevent_as_wine_does() {
    let e = ManualResetEvent::create();
    assert_eq!(
        e.query::<dyn ISynchronizeEvent>().err().map(|e| e.code()),
        Some(E_NOINTERFACE)
    );
    let mut slot: Option<ComPtr<dyn ISynchronizeEvent>> = None;
    assert_eq!(
        e.query_interface(&IID_ISynchronizeEvent, &mut slot),
        E_NOINTERFACE
    );
    assert!(slot.is_none());
}

#[test]
fn std_event_answers_isynchronizeevent() {
    let e = StdEvent::create();
    let se = e.query::<dyn ISynchronizeEvent>().unwrap();
    assert!(ComPtr::is_same_object(&se, &e));
    // ISynchronizeEvent derives from ISynchronizeHandle.
    assert_eq!(se.get_handle().unwrap(), handle_of(&e));
}

#[test]
fn set_event_handle_with_no_handle_returns_e_invalidarg() {
    let e = StdEvent::create();
    let se = e.query::<dyn ISynchronizeEvent>().unwrap();
    let before = handle_of(&e);
    assert_eq!(se.set_event_handle(None), E_INVALIDARG);
    assert_eq!(
        handle_of(&e),
        before,
        "a rejected SetEventHandle changes nothing"
    );
}

#[test]
fn after_set_event_handle_signal_sets_the_new_handle() {
    let e = StdEvent::create();
    let se = e.query::<dyn ISynchronizeEvent>().unwrap();
    let old = handle_of(&e);
    let new = HANDLE::create_event(true, false);
    assert_eq!(se.set_event_handle(Some(&new)), S_OK);
    assert_eq!(handle_of(&e), new, "GetHandle returns the assigned handle");
    assert_eq!(se.get_handle().unwrap(), new);

    assert_eq!(e.signal(), S_OK);
    assert!(new.is_signaled(), "Signal sets the assigned handle");
    assert!(!old.is_signaled(), "... not the event's own");
    // Wait and Reset use it too (here a manual-reset one: Wait does not reset it).
    assert_eq!(e.wait(0, 0), S_OK);
    assert!(new.is_signaled());
    assert_eq!(e.reset(), S_OK);
    assert!(!new.is_signaled());
    // Signalling the handle directly is seen by Wait.
    new.set_event();
    assert_eq!(e.wait(0, 0), S_OK);
}

#[test]
fn after_set_event_handle_a_blocked_wait_is_woken_through_the_new_handle() {
    let e = StdEvent::create();
    let new = HANDLE::create_event(false, false);
    assert_eq!(
        e.query::<dyn ISynchronizeEvent>()
            .unwrap()
            .set_event_handle(Some(&new)),
        S_OK
    );
    let waiter = {
        let e = e.clone();
        thread::spawn(move || e.wait(0, INFINITE))
    };
    let hr = within("wait on an assigned handle", move || {
        until_blocked(&new, 1);
        assert_eq!(e.signal(), S_OK);
        waiter.join().unwrap()
    });
    assert_eq!(hr, S_OK);
}

// ---- interfaces and creation ---------------------------------------------------------------

#[test]
fn events_answer_iunknown_isynchronize_and_isynchronizehandle_only() {
    for (name, e) in both_classes() {
        assert!(e.query::<dyn IUnknown>().is_ok(), "{name}");
        assert!(e.query::<dyn ISynchronize>().is_ok(), "{name}");
        assert!(e.query::<dyn ISynchronizeHandle>().is_ok(), "{name}");
        assert_eq!(
            e.query::<dyn ISynchronizeContainer>()
                .err()
                .map(|e| e.code()),
            Some(E_NOINTERFACE),
            "{name}"
        );
    }
}

#[test]
fn all_three_classes_are_creatable_by_clsid() {
    for (clsid, iid) in [
        (CLSID_ManualResetEvent, IID_ISynchronize),
        (CLSID_StdEvent, IID_ISynchronize),
        (CLSID_ManualResetEvent, IID_ISynchronizeHandle),
        (CLSID_StdEvent, IID_ISynchronizeEvent),
        (CLSID_SynchronizeContainer, IID_ISynchronizeContainer),
        (CLSID_ManualResetEvent, IID_IUnknown),
        (CLSID_StdEvent, IID_IUnknown),
        (CLSID_SynchronizeContainer, IID_IUnknown),
    ] {
        let hr = if iid == IID_ISynchronize {
            let mut slot: Option<ComPtr<dyn ISynchronize>> = None;
            let hr = co_create_instance(&clsid, None, &iid, &mut slot);
            assert!(slot.is_some());
            hr
        } else if iid == IID_ISynchronizeHandle {
            let mut slot: Option<ComPtr<dyn ISynchronizeHandle>> = None;
            let hr = co_create_instance(&clsid, None, &iid, &mut slot);
            assert!(slot.is_some());
            hr
        } else if iid == IID_ISynchronizeEvent {
            let mut slot: Option<ComPtr<dyn ISynchronizeEvent>> = None;
            let hr = co_create_instance(&clsid, None, &iid, &mut slot);
            assert!(slot.is_some());
            hr
        } else if iid == IID_ISynchronizeContainer {
            let mut slot: Option<ComPtr<dyn ISynchronizeContainer>> = None;
            let hr = co_create_instance(&clsid, None, &iid, &mut slot);
            assert!(slot.is_some());
            hr
        } else {
            let mut slot: Option<ComPtr<dyn IUnknown>> = None;
            let hr = co_create_instance(&clsid, None, &iid, &mut slot);
            assert!(slot.is_some());
            hr
        };
        assert_eq!(hr, S_OK, "{clsid:?} / {iid:?}");
    }
    assert!(create_instance::<dyn ISynchronize>(&CLSID_ManualResetEvent).is_ok());
    assert!(create_instance::<dyn ISynchronize>(&CLSID_StdEvent).is_ok());
    assert!(create_instance::<dyn ISynchronizeContainer>(&CLSID_SynchronizeContainer).is_ok());
}

#[test]
fn all_three_classes_are_creatable_by_type() {
    let mre: ComPtr<dyn ISynchronize> = ManualResetEvent::create();
    let std: ComPtr<dyn ISynchronize> = StdEvent::create();
    let container: ComPtr<dyn ISynchronizeContainer> = SynchronizeContainer::create();
    assert_eq!(mre.ref_count(), 1);
    assert_eq!(std.ref_count(), 1);
    assert_eq!(container.ref_count(), 1);
}

#[test]
fn the_clsid_decides_the_reset_behaviour() {
    fn make(clsid: CLSID) -> ComPtr<dyn ISynchronize> {
        create_instance::<dyn ISynchronize>(&clsid).unwrap()
    }
    let mre = make(CLSID_ManualResetEvent);
    assert_eq!(mre.signal(), S_OK);
    assert_eq!(mre.wait(0, 0), S_OK);
    assert_eq!(
        mre.wait(0, 0),
        S_OK,
        "CLSID_ManualResetEvent: Wait does not reset"
    );
    assert_eq!(
        mre.query::<dyn ISynchronizeEvent>().err().map(|e| e.code()),
        Some(E_NOINTERFACE)
    );

    let std = make(CLSID_StdEvent);
    assert_eq!(std.signal(), S_OK);
    assert_eq!(std.wait(0, 0), S_OK);
    assert_eq!(
        std.wait(0, 0),
        RPC_S_CALLPENDING,
        "CLSID_StdEvent: Wait resets"
    );
    assert!(std.query::<dyn ISynchronizeEvent>().is_ok());
}

#[test]
fn created_events_are_independent() {
    let a = StdEvent::create();
    let b = StdEvent::create();
    assert_ne!(handle_of(&a), handle_of(&b));
    assert_eq!(a.signal(), S_OK);
    assert_eq!(b.wait(0, 0), RPC_S_CALLPENDING);
    assert_eq!(a.wait(0, 0), S_OK);
}
