//! Cancelling synchronous cross-apartment calls (spec 1.8, D7, D8): `CoCancelCall`,
//! `CoGetCancelObject`, `CoTestCancel`, gated by the thread's `CoEnableCallCancellation` count.

#[path = "common/apartments.rs"]
mod apartments;
mod common;
#[path = "common/probe.rs"]
mod probe;

use std::sync::Arc;
use std::thread;

use apartments::Sta;
use comasync::apartment::*;
use comasync::call::{
    co_cancel_call, co_disable_call_cancellation, co_enable_call_cancellation,
    co_get_cancel_object, co_test_cancel, create_call_as, ICallFactory, ICancelMethodCalls,
};
use comasync::hresult::*;
use comasync::marshal::*;
use comasync::sync::{co_wait_for_multiple_handles, HANDLE, INFINITE};
use comasync::unknown::Interface;
use common::within;
use probe::{next_parked, AsyncIProbe, IProbe, IProbeCalls, Probe, ProbeState, ProbeWithCalls};

fn iid() -> comasync::guid::IID {
    <dyn IProbe as Interface>::IID
}

fn wait(h: &HANDLE) {
    let mut i = 0;
    assert_eq!(
        co_wait_for_multiple_handles(0, INFINITE, Some(std::slice::from_ref(h)), Some(&mut i)),
        S_OK
    );
}

struct Blocked {
    client: thread::JoinHandle<HRESULT>,
    client_tid: u32,
    gate: HANDLE,
    done: HANDLE,
    state: Arc<ProbeState>,
    _server: Sta,
}

/// A client thread in the MTA (cancellation enabled if `enable`) blocked in a synchronous
/// `Block` call to an STA object, which has started running.
fn blocked_call(enable: bool) -> Blocked {
    let server = Sta::start();
    let (stream, state) = server.run(|| {
        let (object, state) = Probe::create();
        let s = co_marshal_inter_thread_interface_in_stream::<IProbeCalls>(&iid(), &*object);
        (s.unwrap(), state)
    });
    let entered = HANDLE::create_event(true, false);
    let gate = HANDLE::create_event(true, false);
    let done = HANDLE::create_event(true, false);
    let (e, g, d) = (entered.clone(), gate.clone(), done.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let client = thread::spawn(move || {
        let _ = co_initialize_ex(None, COINIT_MULTITHREADED);
        if enable {
            assert_eq!(co_enable_call_cancellation(None), S_OK);
        }
        tx.send(get_current_thread_id()).unwrap();
        let proxy = co_get_interface_and_release_stream::<IProbeCalls>(stream, &iid()).unwrap();
        let hr = proxy.block(e, g, d);
        if enable {
            assert_eq!(co_disable_call_cancellation(None), S_OK);
        }
        drop(proxy);
        co_uninitialize();
        hr
    });
    let client_tid = rx.recv().unwrap();
    wait(&entered); // the server runs the call, so the client is waiting in it
    Blocked {
        client,
        client_tid,
        gate,
        done,
        state,
        _server: server,
    }
}

#[test]
fn co_cancel_call_cancels_a_synchronous_call_which_returns_rpc_e_call_canceled() {
    within("CoCancelCall", || {
        let b = blocked_call(true);
        let cancel =
            co_get_cancel_object(b.client_tid, &<dyn ICancelMethodCalls as Interface>::IID)
                .unwrap();
        assert_eq!(cancel.test_cancel(), RPC_S_CALLPENDING);
        drop(cancel);
        assert_eq!(co_cancel_call(b.client_tid, 0), S_OK);
        assert_eq!(b.client.join().unwrap(), RPC_E_CALL_CANCELED);
        b.gate.set_event();
        wait(&b.done);
        assert_eq!(
            *b.state.tested.lock().unwrap(),
            vec![RPC_E_CALL_CANCELED],
            "CoTestCancel in the server's method sees the cancel"
        );
    });
}

#[test]
fn co_cancel_call_on_a_thread_without_cancellation_enabled_is_co_e_cancel_disabled() {
    within("CoCancelCall disabled", || {
        let b = blocked_call(false);
        assert_eq!(co_cancel_call(b.client_tid, 0), CO_E_CANCEL_DISABLED);
        b.gate.set_event();
        assert_eq!(b.client.join().unwrap(), S_OK, "the call went on");
        wait(&b.done);
        assert_eq!(*b.state.tested.lock().unwrap(), vec![RPC_S_CALLPENDING]);
    });
}

#[test]
fn co_cancel_call_without_a_synchronous_call_is_e_nointerface() {
    assert_eq!(co_cancel_call(0, 0), E_NOINTERFACE);
    assert_eq!(co_cancel_call(get_current_thread_id(), 5), E_NOINTERFACE);
    let err = co_get_cancel_object(0, &<dyn ICancelMethodCalls as Interface>::IID);
    assert_eq!(err.map(|_| ()).unwrap_err().code(), E_NOINTERFACE);
}

#[test]
fn co_get_cancel_object_does_not_find_asynchronous_calls() {
    within("async calls are not cancel objects of the thread", || {
        let server = Sta::start();
        let (stream, state) = server.run(|| {
            let (object, state) = ProbeWithCalls::create();
            let s = co_marshal_inter_thread_interface_in_stream::<IProbeCalls>(&iid(), &*object);
            (s.unwrap(), state)
        });
        let (tx, rx) = std::sync::mpsc::channel();
        let client = thread::spawn(move || {
            let _ = co_initialize_ex(None, COINIT_MULTITHREADED);
            assert_eq!(co_enable_call_cancellation(None), S_OK);
            let proxy = co_get_interface_and_release_stream::<IProbeCalls>(stream, &iid()).unwrap();
            let factory = proxy.query::<dyn ICallFactory>().unwrap();
            let call =
                create_call_as::<dyn AsyncIProbe>(&*factory, &<dyn AsyncIProbe as Interface>::IID)
                    .unwrap();
            assert_eq!(call.begin_add(1), S_OK);
            let found =
                co_get_cancel_object(0, &<dyn ICancelMethodCalls as Interface>::IID).map(|_| ());
            let cancelled = co_cancel_call(0, 0);
            tx.send(()).unwrap();
            let r = call.finish_add();
            assert_eq!(co_disable_call_cancellation(None), S_OK);
            drop((call, factory, proxy));
            co_uninitialize();
            (found.unwrap_err().code(), cancelled, r)
        });
        rx.recv().unwrap();
        assert_eq!(next_parked(&state).complete(S_OK, 1), S_OK);
        assert_eq!(
            client.join().unwrap(),
            (E_NOINTERFACE, E_NOINTERFACE, (S_OK, 1))
        );
    });
}

#[test]
fn co_test_cancel_outside_a_synchronous_server_call_is_rpc_e_call_complete() {
    assert_eq!(co_test_cancel(), RPC_E_CALL_COMPLETE);
}

#[test]
fn co_get_cancel_object_for_another_iid_is_e_nointerface() {
    let err = co_get_cancel_object(0, &<dyn IProbe as Interface>::IID);
    assert_eq!(err.map(|_| ()).unwrap_err().code(), E_NOINTERFACE);
}
