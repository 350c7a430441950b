//! Apartments (spec 1.9, 3.7): `CoInitializeEx` modes and counting, identity, and the STA's
//! modal wait, which dispatches the calls marshaled to the apartment while the thread waits.
//! Every rule has a test named after it; nothing is ordered by sleeping.

#[path = "common/apartments.rs"]
mod apartments;
mod common;
#[path = "common/probe.rs"]
mod probe;

use std::sync::atomic::Ordering;
use std::thread;

use apartments::{in_mta, Sta};
use comasync::apartment::*;
use comasync::call::{create_call_as, ICallFactory};
use comasync::hresult::*;
use comasync::marshal::*;
use comasync::sync::{
    co_wait_for_multiple_handles, ISynchronize, ManualResetEvent, COWAIT_WAITALL, HANDLE, INFINITE,
};
use comasync::unknown::Interface;
use common::within;
use probe::{AsyncIProbe, IProbe, IProbeCalls, Probe, ProbeWithCalls};

fn on_new_thread<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    thread::spawn(f).join().expect("the thread panicked")
}

fn iid() -> comasync::guid::IID {
    <dyn IProbe as Interface>::IID
}

#[test]
fn co_initialize_ex_is_counted_and_the_last_co_uninitialize_leaves() {
    on_new_thread(|| {
        assert_eq!(co_initialize_ex(None, COINIT_APARTMENTTHREADED), S_OK);
        let id = current_apartment().unwrap();
        assert_eq!(co_initialize_ex(None, COINIT_APARTMENTTHREADED), S_FALSE);
        assert_eq!(co_initialize(), S_FALSE);
        co_uninitialize();
        co_uninitialize();
        assert_eq!(current_apartment(), Some(id), "one initialization left");
        co_uninitialize();
        assert_eq!(current_apartment(), None);
        co_uninitialize(); // without an apartment: nothing happens
        assert_eq!(co_initialize_ex(None, COINIT_APARTMENTTHREADED), S_OK);
        assert_ne!(
            current_apartment(),
            Some(id),
            "a new STA has a new identity"
        );
        co_uninitialize();
    });
}

#[test]
fn changing_the_mode_is_rpc_e_changed_mode_and_not_counted() {
    on_new_thread(|| {
        assert_eq!(co_initialize_ex(None, COINIT_APARTMENTTHREADED), S_OK);
        assert_eq!(
            co_initialize_ex(None, COINIT_MULTITHREADED),
            RPC_E_CHANGED_MODE
        );
        co_uninitialize();
        assert_eq!(
            current_apartment(),
            None,
            "the refused call was not counted"
        );
        assert_eq!(co_initialize_ex(None, COINIT_MULTITHREADED), S_OK);
        assert_eq!(
            co_initialize_ex(None, COINIT_APARTMENTTHREADED),
            RPC_E_CHANGED_MODE
        );
        co_uninitialize();
    });
}

#[test]
fn a_reserved_pointer_or_unknown_flags_are_e_invalidarg() {
    on_new_thread(|| {
        assert_eq!(
            co_initialize_ex(Some(&mut 0u32), COINIT_MULTITHREADED),
            E_INVALIDARG
        );
        assert_eq!(co_initialize_ex(None, 0x100), E_INVALIDARG);
        assert_eq!(
            co_initialize_ex(None, COINIT_MULTITHREADED | COINIT_DISABLE_OLE1DDE),
            S_OK
        );
        co_uninitialize();
    });
}

#[test]
fn without_an_apartment_com_calls_that_need_one_are_co_e_notinitialized() {
    on_new_thread(|| {
        assert_eq!(
            co_get_apartment_type(),
            Err(comasync::Error(CO_E_NOTINITIALIZED))
        );
        let (object, _) = Probe::create();
        let err = co_marshal_inter_thread_interface_in_stream::<IProbeCalls>(&iid(), &*object)
            .unwrap_err();
        assert_eq!(err.code(), CO_E_NOTINITIALIZED);
        // CoWaitForMultipleHandles works without an apartment (spec 1.9).
        let h = HANDLE::create_event(true, true);
        let mut i = 9;
        assert_eq!(
            co_wait_for_multiple_handles(0, 0, Some(&[h]), Some(&mut i)),
            S_OK
        );
    });
}

#[test]
fn every_sta_has_its_own_identity_and_the_mta_is_shared() {
    let a = Sta::start();
    let b = Sta::start();
    assert_ne!(a.id, b.id);
    assert_eq!(a.run(co_get_apartment_type), Ok(AptType::Sta));
    // Two threads in the MTA at once see one apartment.
    let (tx, rx) = std::sync::mpsc::channel();
    let gate = HANDLE::create_event(true, false);
    let g = gate.clone();
    let first = thread::spawn(move || {
        let _ = co_initialize_ex(None, COINIT_MULTITHREADED);
        tx.send(current_apartment()).unwrap();
        let mut i = 0;
        let _ = co_wait_for_multiple_handles(0, INFINITE, Some(&[g]), Some(&mut i));
        co_uninitialize();
    });
    let one = rx.recv().unwrap();
    let two = in_mta(current_apartment);
    gate.set_event();
    first.join().unwrap();
    assert_eq!(one, two);
    assert_ne!(one, Some(a.id));
    assert_eq!(in_mta(co_get_apartment_type), Ok(AptType::Mta));
}

/// A thread in the MTA for as long as the returned guard lives, holding an object of the
/// MTA's and a proxy to an STA object... (helper for the pumping tests)
fn marshal_from(sta: &Sta) -> (MarshalStream, std::sync::Arc<probe::ProbeState>) {
    sta.run(|| {
        let (object, state) = Probe::create();
        let stream =
            co_marshal_inter_thread_interface_in_stream::<IProbeCalls>(&iid(), &*object).unwrap();
        (stream, state)
    })
}

#[test]
fn a_wait_in_an_sta_dispatches_the_calls_queued_for_it() {
    within("the STA dispatches while it waits", || {
        let sta = Sta::start();
        let (stream, state) = marshal_from(&sta);
        let done = HANDLE::create_event(true, false);
        let d = done.clone();
        // The STA waits (CoWaitForMultipleHandles) for `done`, which an MTA thread sets only
        // after its call to the STA's object has returned: only dispatching can end the wait.
        let client = thread::spawn(move || {
            let _ = co_initialize_ex(None, COINIT_MULTITHREADED);
            let proxy = co_get_interface_and_release_stream::<IProbeCalls>(stream, &iid()).unwrap();
            let r = proxy.add(5);
            d.set_event();
            drop(proxy);
            co_uninitialize();
            r
        });
        let hr = sta.run(move || {
            let mut i = 0;
            co_wait_for_multiple_handles(0, INFINITE, Some(&[done]), Some(&mut i))
        });
        assert_eq!(hr, S_OK);
        assert_eq!(client.join().unwrap(), (S_OK, 5));
        assert_eq!(state.count.load(Ordering::SeqCst), 5);
    });
}

#[test]
fn isynchronize_wait_in_an_sta_dispatches_the_calls_queued_for_it() {
    within("ISynchronize::Wait dispatches in an STA", || {
        let sta = Sta::start();
        let (stream, _state) = marshal_from(&sta);
        let sync = ManualResetEvent::create()
            .query::<dyn ISynchronize>()
            .unwrap();
        let signal = sync.clone();
        let client = thread::spawn(move || {
            let _ = co_initialize_ex(None, COINIT_MULTITHREADED);
            let proxy = co_get_interface_and_release_stream::<IProbeCalls>(stream, &iid()).unwrap();
            let r = proxy.locate();
            assert_eq!(signal.signal(), S_OK);
            drop(proxy);
            co_uninitialize();
            r
        });
        let (hr, sta_tid) = sta.run(move || (sync.wait(0, INFINITE), get_current_thread_id()));
        assert_eq!(hr, S_OK);
        let (hr, apt, tid) = client.join().unwrap();
        assert_eq!(
            (hr, apt, tid),
            (S_OK, sta.id.0, sta_tid),
            "ran on the STA's thread"
        );
    });
}

#[test]
fn a_wait_all_in_an_sta_dispatches_too() {
    within("a wait-all dispatches in an STA", || {
        let sta = Sta::start();
        let (stream, state) = marshal_from(&sta);
        let a = HANDLE::create_event(false, false);
        let b = HANDLE::create_event(true, false);
        let (a2, b2) = (a.clone(), b.clone());
        let client = thread::spawn(move || {
            let _ = co_initialize_ex(None, COINIT_MULTITHREADED);
            let proxy = co_get_interface_and_release_stream::<IProbeCalls>(stream, &iid()).unwrap();
            a2.set_event();
            let r = proxy.add(2);
            b2.set_event();
            drop(proxy);
            co_uninitialize();
            r
        });
        let hr = sta.run(move || {
            let mut i = 7;
            let hr =
                co_wait_for_multiple_handles(COWAIT_WAITALL, INFINITE, Some(&[a, b]), Some(&mut i));
            (hr, i)
        });
        assert_eq!(hr, (S_OK, 0));
        assert_eq!(client.join().unwrap(), (S_OK, 2));
        assert_eq!(state.count.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn nothing_is_dispatched_when_a_handle_is_already_signaled() {
    within(
        "an already signaled wait returns without dispatching",
        || {
            let sta = Sta::start();
            let (stream, state) = sta.run(|| {
                let (object, state) = ProbeWithCalls::create();
                let stream =
                    co_marshal_inter_thread_interface_in_stream::<IProbeCalls>(&iid(), &*object)
                        .unwrap();
                (stream, state)
            });
            let hold = sta.hold(); // the STA dispatches nothing until released
                                   // An asynchronous call is queued for the STA: Begin_ returns once it is queued.
            let (tx, rx) = std::sync::mpsc::channel();
            let client = thread::spawn(move || {
                let _ = co_initialize_ex(None, COINIT_MULTITHREADED);
                let proxy =
                    co_get_interface_and_release_stream::<IProbeCalls>(stream, &iid()).unwrap();
                let factory = proxy.query::<dyn ICallFactory>().unwrap();
                let call = create_call_as::<dyn AsyncIProbe>(
                    &*factory,
                    &<dyn AsyncIProbe as Interface>::IID,
                )
                .unwrap();
                assert_eq!(call.begin_add(1), S_OK);
                tx.send((call, factory, proxy)).unwrap(); // kept alive: the call stays wanted
                co_uninitialize();
            });
            let kept = rx.recv().unwrap();
            let (done_tx, done_rx) = std::sync::mpsc::channel();
            let st = state.clone();
            sta.spawn(move || {
                let ready = HANDLE::create_event(true, true);
                let mut i = 9;
                let hr = co_wait_for_multiple_handles(0, INFINITE, Some(&[ready]), Some(&mut i));
                let before = st.parked.lock().unwrap().len();
                let pumped = co_pump_messages();
                let after = st.parked.lock().unwrap().len();
                done_tx.send((hr, i, before, pumped, after)).unwrap();
            });
            drop(hold); // the job above runs next, before the STA waits again
            assert_eq!(done_rx.recv().unwrap(), (S_OK, 0, 0, 1, 1));
            client.join().unwrap();
            drop(kept);
        },
    );
}

#[test]
fn an_sta_waits_on_at_most_63_handles() {
    let sta = Sta::start();
    let hr = sta.run(|| {
        let handles: Vec<HANDLE> = (0..64).map(|_| HANDLE::create_event(true, true)).collect();
        let mut i = 0;
        co_wait_for_multiple_handles(0, 0, Some(&handles), Some(&mut i))
    });
    assert_eq!(hr, E_INVALIDARG);
    let hr = in_mta(|| {
        let handles: Vec<HANDLE> = (0..64).map(|_| HANDLE::create_event(true, true)).collect();
        let mut i = 0;
        co_wait_for_multiple_handles(0, 0, Some(&handles), Some(&mut i))
    });
    assert_eq!(hr, S_OK, "64 handles are fine outside an STA");
}

#[test]
fn co_pump_messages_outside_an_sta_dispatches_nothing() {
    assert_eq!(in_mta(co_pump_messages), 0);
    assert_eq!(on_new_thread(co_pump_messages), 0);
}
