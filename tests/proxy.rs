//! Marshaling, proxies and stubs (spec 1.2, 1.3, 2.1, 2.2, 3.5, 3.7): where calls run, which
//! interfaces a proxy has, its call objects, the stub driving a server-side call object, and
//! the faults that must not hang. Every rule has a test named after it.

#[path = "common/apartments.rs"]
mod apartments;
mod common;
#[path = "common/probe.rs"]
mod probe;

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread;

use apartments::{in_mta, Sta};
use comasync::apartment::*;
use comasync::call::{
    create_call_as, ICallFactory, ICancelMethodCalls, RPC_C_CANCEL_INFINITE_TIMEOUT,
};
use comasync::hresult::*;
use comasync::marshal::*;
use comasync::sync::{ISynchronize, HANDLE, INFINITE};
use comasync::unknown::{ComPtr, Interface};
use common::within;
use probe::{
    next_parked, AsyncIProbe, IProbe, IProbeCalls, Parked, Probe, ProbeState, ProbeWithCalls,
};

fn iid() -> comasync::guid::IID {
    <dyn IProbe as Interface>::IID
}

fn async_iid() -> comasync::guid::IID {
    <dyn AsyncIProbe as Interface>::IID
}

type Create = fn() -> (ComPtr<dyn IProbe>, Arc<ProbeState>);

/// An object made in `sta`, marshaled out of it (the STA keeps no other reference).
fn object_in(sta: &Sta, create: Create) -> (MarshalStream, Arc<ProbeState>) {
    sta.run(move || {
        let (object, state) = create();
        let s = co_marshal_inter_thread_interface_in_stream::<IProbeCalls>(&iid(), &*object);
        (s.unwrap(), state)
    })
}

fn unmarshal(stream: MarshalStream) -> ComPtr<dyn IProbe> {
    co_get_interface_and_release_stream::<IProbeCalls>(stream, &iid()).unwrap()
}

fn new_call(proxy: &ComPtr<dyn IProbe>) -> ComPtr<dyn AsyncIProbe> {
    let factory = proxy.query::<dyn ICallFactory>().unwrap();
    create_call_as::<dyn AsyncIProbe>(&*factory, &async_iid()).unwrap()
}

/// An MTA thread that made an object with `create`, marshaled it, let go of it and stays in
/// the MTA until dropped: the stream, the object's state, the MTA and the thread's id.
struct MtaServer {
    gate: HANDLE,
    thread: Option<thread::JoinHandle<()>>,
}

impl MtaServer {
    fn start(create: Create) -> (MtaServer, MarshalStream, Arc<ProbeState>, ApartmentId, u32) {
        let (tx, rx) = std::sync::mpsc::channel();
        let gate = HANDLE::create_event(true, false);
        let g = gate.clone();
        let thread = thread::spawn(move || {
            let _ = co_initialize_ex(None, COINIT_MULTITHREADED);
            let (object, state) = create();
            let s = co_marshal_inter_thread_interface_in_stream::<IProbeCalls>(&iid(), &*object);
            let here = (current_apartment().unwrap(), get_current_thread_id());
            tx.send((s.unwrap(), state, here)).unwrap();
            drop(object);
            let mut i = 0;
            let _ =
                comasync::sync::co_wait_for_multiple_handles(0, INFINITE, Some(&[g]), Some(&mut i));
            co_uninitialize();
        });
        let (stream, state, (mta, tid)) = rx.recv().unwrap();
        let server = MtaServer {
            gate,
            thread: Some(thread),
        };
        (server, stream, state, mta, tid)
    }
}

impl Drop for MtaServer {
    fn drop(&mut self) {
        self.gate.set_event();
        if let Some(t) = self.thread.take() {
            t.join().unwrap();
        }
    }
}

#[test]
fn unmarshaling_in_the_objects_own_apartment_gives_the_object_itself() {
    let sta = Sta::start();
    let same = sta.run(|| {
        let (object, _) = Probe::create();
        let s = co_marshal_inter_thread_interface_in_stream::<IProbeCalls>(&iid(), &*object);
        let back = unmarshal(s.unwrap());
        ComPtr::is_same_object(&back, &object)
    });
    assert!(same, "same apartment: direct, no proxy");
}

#[test]
fn marshaling_another_interface_is_e_nointerface() {
    in_mta(|| {
        let (object, _) = Probe::create();
        let other = <dyn ISynchronize as Interface>::IID;
        let err = co_marshal_inter_thread_interface_in_stream::<IProbeCalls>(&other, &*object);
        assert_eq!(err.unwrap_err().code(), E_NOINTERFACE);
        let s = co_marshal_inter_thread_interface_in_stream::<IProbeCalls>(&iid(), &*object);
        let err = co_get_interface_and_release_stream::<IProbeCalls>(s.unwrap(), &other);
        assert_eq!(err.unwrap_err().code(), E_NOINTERFACE);
    });
}

#[test]
fn an_sta_objects_calls_run_on_its_own_thread() {
    within("STA object", || {
        let sta = Sta::start();
        let (stream, _) = object_in(&sta, Probe::create);
        let (hr, apt, tid) = in_mta(move || unmarshal(stream).locate());
        assert_eq!((hr, apt, tid), (S_OK, sta.id.0, sta.tid));
    });
}

#[test]
fn an_mta_objects_calls_run_in_the_mta_on_its_pool() {
    within("MTA object", || {
        let sta = Sta::start();
        let (server, stream, _, mta, server_tid) = MtaServer::start(Probe::create);
        let (hr, apt, tid) = sta.run(move || unmarshal(stream).locate());
        assert_eq!((hr, apt), (S_OK, mta.0));
        assert_ne!(tid, sta.tid);
        assert_ne!(
            tid, server_tid,
            "on the MTA's pool, not a thread of the test's"
        );
        drop(server);
    });
}

#[test]
fn a_proxy_used_from_another_apartment_is_rpc_e_wrong_thread() {
    within("wrong thread", || {
        let server = Sta::start();
        let client = Sta::start();
        let other = Sta::start();
        let (stream, _) = object_in(&server, ProbeWithCalls::create);
        let proxy = client.run(move || unmarshal(stream));
        let call = client.run({
            let p = proxy.clone();
            move || new_call(&p)
        });
        let (sync, begin, create) = other.run(move || {
            let factory = proxy.query::<dyn ICallFactory>().unwrap();
            let mut slot: Option<ComPtr<dyn AsyncIProbe>> = None;
            let create = factory.create_call(&async_iid(), None, &async_iid(), Some(&mut slot));
            (proxy.add(1).0, call.begin_add(1), create)
        });
        assert_eq!(
            (sync, begin, create),
            (RPC_E_WRONG_THREAD, RPC_E_WRONG_THREAD, RPC_E_WRONG_THREAD)
        );
    });
}

#[test]
fn a_proxy_used_on_a_thread_without_an_apartment_is_co_e_notinitialized() {
    let server = Sta::start();
    let (stream, _) = object_in(&server, Probe::create);
    let proxy = in_mta(move || unmarshal(stream));
    let hr = thread::spawn(move || proxy.add(1).0).join().unwrap();
    assert_eq!(hr, CO_E_NOTINITIALIZED);
    let (stream, _) = object_in(&server, Probe::create);
    let err = thread::spawn(move || {
        co_get_interface_and_release_stream::<IProbeCalls>(stream, &iid()).map(|_| ())
    });
    assert_eq!(err.join().unwrap().unwrap_err().code(), CO_E_NOTINITIALIZED);
}

#[test]
fn a_proxy_exposes_icallfactory_exactly_when_the_server_does() {
    let sta = Sta::start();
    let (plain, _) = object_in(&sta, Probe::create);
    let (with_calls, _) = object_in(&sta, ProbeWithCalls::create);
    let (a, b) = in_mta(move || {
        (
            unmarshal(plain).query::<dyn ICallFactory>().map(|_| ()),
            unmarshal(with_calls)
                .query::<dyn ICallFactory>()
                .map(|_| ()),
        )
    });
    assert_eq!(a.unwrap_err().code(), E_NOINTERFACE);
    assert!(b.is_ok());
}

#[test]
fn begin_returns_once_queued_and_finish_returns_the_servers_result_from_its_own_apartment() {
    within("proxy call object", || {
        let sta = Sta::start();
        let (stream, state) = object_in(&sta, ProbeWithCalls::create);
        let hold = sta.hold(); // the server's apartment runs nothing yet
        let (tx, rx) = std::sync::mpsc::channel();
        let (ftx, frx) = std::sync::mpsc::channel::<()>();
        let client = thread::spawn(move || {
            let _ = co_initialize_ex(None, COINIT_MULTITHREADED);
            let proxy = unmarshal(stream);
            let call = new_call(&proxy);
            assert!(
                call.query::<dyn ICancelMethodCalls>().is_ok(),
                "always on a proxy call"
            );
            tx.send(call.begin_add(7)).unwrap(); // returns although the server has not run
            frx.recv().unwrap();
            let r = call.finish_add();
            drop((call, proxy));
            co_uninitialize();
            r
        });
        assert_eq!(rx.recv().unwrap(), S_OK);
        assert!(
            state.parked.lock().unwrap().is_empty(),
            "Begin_ did not wait for the server"
        );
        drop(hold);
        let parked = next_parked(&state);
        assert_eq!(
            (parked.n, parked.begun_on),
            (7, sta.tid),
            "Begin_ ran in the STA"
        );
        // Signalled from this thread (a worker); the stub's Finish_ runs in the STA.
        assert_eq!(parked.complete(S_FALSE, 70), S_OK);
        ftx.send(()).unwrap();
        assert_eq!(
            client.join().unwrap(),
            (S_FALSE, 70),
            "the server's own result"
        );
        assert_eq!(*state.finished_on.lock().unwrap(), vec![sta.tid]);
        assert_eq!(state.sync_calls.load(Ordering::SeqCst), 0);
    });
}

#[test]
fn a_cancel_on_the_proxy_call_object_reaches_the_servers_test_cancel() {
    within("cancel", || {
        let sta = Sta::start();
        let (stream, state) = object_in(&sta, ProbeWithCalls::create);
        let (client, call) = client_call(stream);
        assert_eq!(call.0.begin_add(1), S_OK);
        let parked = next_parked(&state);
        assert_eq!(parked.cancel.test_cancel(), RPC_S_CALLPENDING);
        let cancel = call.0.query::<dyn ICancelMethodCalls>().unwrap();
        assert_eq!(cancel.cancel(0), S_OK); // completed locally
        assert_eq!(
            parked.cancel.test_cancel(),
            RPC_E_CALL_CANCELED,
            "seen by the server"
        );
        assert_eq!(call.0.finish_add(), (RPC_E_CALL_CANCELED, 0));
        assert_eq!(parked.complete(RPC_E_CALL_CANCELED, 0), S_OK); // late: dropped
        drop((cancel, call));
        client.join();
    });
}

/// A proxy call object to an MTA object queues itself on the MTA's pool for each call, and its
/// channel keeps the stub, which keeps the object. Released after its calls, with the proxy,
/// it lets the stub and so the object go; the object's memory going is what this waits for
/// (the watchdog fails the test if it never goes).
#[test]
fn a_released_proxy_call_object_to_an_mta_object_lets_the_object_go() {
    within("release", || {
        let (server, stream, state, _, _) = MtaServer::start(ProbeWithCalls::create_inline);
        let (gone_tx, gone) = std::sync::mpsc::channel();
        *state.gone.lock().unwrap() = Some(gone_tx);
        drop(state);
        let sta = Sta::start();
        let results = sta.run(move || {
            let proxy = unmarshal(stream);
            let call = new_call(&proxy);
            let results: Vec<_> = (1..=3)
                .map(|n| {
                    assert_eq!(call.begin_add(n), S_OK);
                    call.finish_add()
                })
                .collect();
            drop((call, proxy));
            results
        });
        assert_eq!(results, vec![(S_OK, 2), (S_OK, 4), (S_OK, 6)]);
        assert_eq!(gone.recv(), Ok(()), "the object was released and freed");
        drop(server);
    });
}

/// A proxy call object made in an MTA thread that stays in the MTA until the handle drops.
struct Client(
    ComPtr<dyn AsyncIProbe>,
    #[allow(dead_code)] ComPtr<dyn IProbe>,
);

fn client_call(stream: MarshalStream) -> (MtaGuard, Client) {
    let (tx, rx) = std::sync::mpsc::channel();
    let gate = HANDLE::create_event(true, false);
    let g = gate.clone();
    let t = thread::spawn(move || {
        let _ = co_initialize_ex(None, COINIT_MULTITHREADED);
        let proxy = unmarshal(stream);
        let call = new_call(&proxy);
        tx.send((call, proxy, current_apartment())).unwrap();
        let mut i = 0;
        let _ = comasync::sync::co_wait_for_multiple_handles(0, INFINITE, Some(&[g]), Some(&mut i));
        co_uninitialize();
    });
    let (call, proxy, _) = rx.recv().unwrap();
    // This test thread joins the MTA too, so it may use the MTA's proxy.
    let _ = co_initialize_ex(None, COINIT_MULTITHREADED);
    (MtaGuard(gate, Some(t)), Client(call, proxy))
}

/// Keeps the MTA (and this thread in it) until dropped.
struct MtaGuard(HANDLE, Option<thread::JoinHandle<()>>);

impl MtaGuard {
    fn join(mut self) {
        self.finish();
    }
    fn finish(&mut self) {
        self.0.set_event();
        if let Some(t) = self.1.take() {
            t.join().unwrap();
            co_uninitialize();
        }
    }
}

impl Drop for MtaGuard {
    fn drop(&mut self) {
        self.finish();
    }
}

#[test]
fn a_synchronous_call_is_served_by_the_server_call_object_when_there_is_one() {
    within("sync call through a server call object", || {
        let sta = Sta::start();
        let (stream, state) = object_in(&sta, ProbeWithCalls::create);
        let client = thread::spawn(move || in_mta(move || unmarshal(stream).add(3)));
        let parked = next_parked(&state);
        assert_eq!(parked.n, 3);
        assert_eq!(parked.complete(S_OK, 33), S_OK);
        assert_eq!(client.join().unwrap(), (S_OK, 33));
        assert_eq!(
            state.sync_calls.load(Ordering::SeqCst),
            0,
            "the sync method never ran"
        );
    });
}

#[test]
fn the_stub_begins_the_next_call_on_its_idle_server_call_object_and_replaces_a_faulted_one() {
    within("server call object reuse", || {
        let sta = Sta::start();
        let (stream, state) = object_in(&sta, ProbeWithCalls::create_inline);
        let (results, created) = in_mta(move || {
            let proxy = unmarshal(stream);
            let mut results = Vec::new();
            for n in 1..=3 {
                results.push(proxy.add(n));
            }
            let created_before_fault = state.created.load(Ordering::SeqCst);
            // Begin_Crash panics: that server call object is not begun again.
            let call = new_call(&proxy);
            results.push((call.begin_crash(), 0));
            results.push((call.finish_crash(), 0));
            results.push(proxy.add(4));
            (
                results,
                (created_before_fault, state.created.load(Ordering::SeqCst)),
            )
        });
        assert_eq!(
            results,
            [
                (S_OK, 2),
                (S_OK, 4),
                (S_OK, 6),
                (S_OK, 0),
                (RPC_E_SERVERFAULT, 0),
                (S_OK, 8)
            ]
        );
        // Idle again after Finish_ (spec 2.2): one server call object served the three calls;
        // the faulted one was released and the next call got a new one.
        assert_eq!(created, (1, 2));
    });
}

#[test]
fn a_server_call_object_that_signals_after_begin_becomes_the_stubs_spare_when_it_next_looks() {
    within("server call object reuse after a later Signal", || {
        let sta = Sta::start();
        let (stream, state) = object_in(&sta, ProbeWithCalls::create);
        let client = thread::spawn(move || {
            in_mta(move || {
                let proxy = unmarshal(stream);
                (1..=3).map(|n| proxy.add(n)).collect::<Vec<_>>()
            })
        });
        for n in 1..=3 {
            // Each call parks in its server call object's Begin_ and is signalled later.
            let parked = next_parked(&state);
            assert_eq!(parked.n, n);
            assert_eq!(parked.complete(S_OK, 10 * n), S_OK);
        }
        assert_eq!(client.join().unwrap(), [(S_OK, 10), (S_OK, 20), (S_OK, 30)]);
        // Call 1's object was still busy when call 2 arrived (a new one); once call 2 had
        // begun, the stub found call 1's idle and kept it as the spare, which served call 3.
        assert_eq!(state.created.load(Ordering::SeqCst), 2);
    });
}

#[test]
fn without_a_server_call_object_the_stub_runs_the_synchronous_method() {
    let sta = Sta::start();
    let (stream, state) = object_in(&sta, Probe::create);
    assert_eq!(in_mta(move || unmarshal(stream).add(4)), (S_OK, 4));
    assert_eq!(state.sync_calls.load(Ordering::SeqCst), 1);
}

#[test]
fn a_panic_in_a_server_method_is_rpc_e_serverfault() {
    within("server fault", || {
        let sta = Sta::start();
        let (stream, _) = object_in(&sta, Probe::create);
        assert_eq!(in_mta(move || unmarshal(stream).crash()), RPC_E_SERVERFAULT);
        // From Finish_: the server call object's Begin_ panics.
        let (stream, _) = object_in(&sta, ProbeWithCalls::create);
        let r = in_mta(move || {
            let call = new_call(&unmarshal(stream));
            (call.begin_crash(), call.finish_crash())
        });
        assert_eq!(r, (S_OK, RPC_E_SERVERFAULT));
        // The apartment still serves calls.
        let (stream, _) = object_in(&sta, Probe::create);
        assert_eq!(in_mta(move || unmarshal(stream).add(1)), (S_OK, 1));
    });
}

#[test]
fn an_sta_that_ends_with_calls_queued_fails_them_with_rpc_e_disconnected() {
    within("apartment ends with queued calls", || {
        let sta = Sta::start();
        let (stream, state) = object_in(&sta, ProbeWithCalls::create);
        let (spare, _) = object_in(&sta, Probe::create);
        let hold = sta.hold();
        let (guard, call) = client_call(stream);
        assert_eq!(call.0.begin_add(1), S_OK); // queued; the STA runs nothing
        sta.spawn(co_uninitialize); // the STA's next job: it leaves its apartment
        drop(hold);
        assert_eq!(call.0.finish_add(), (RPC_E_DISCONNECTED, 0));
        assert!(state.parked.lock().unwrap().is_empty(), "never ran");
        assert_eq!(call.0.begin_add(1), RPC_E_DISCONNECTED, "later calls");
        assert_eq!(
            call.1.add(1).0,
            RPC_E_DISCONNECTED,
            "later synchronous calls"
        );
        let err = co_get_interface_and_release_stream::<IProbeCalls>(spare, &iid());
        assert_eq!(err.map(|_| ()).unwrap_err().code(), RPC_E_DISCONNECTED);
        drop(call);
        guard.join();
    });
}

#[test]
fn an_sta_that_ends_while_its_server_call_object_works_fails_the_call_with_rpc_e_disconnected() {
    within("apartment ends with a call in progress", || {
        let sta = Sta::start();
        let (stream, state) = object_in(&sta, ProbeWithCalls::create);
        let (guard, call) = client_call(stream);
        assert_eq!(call.0.begin_add(1), S_OK);
        let parked = next_parked(&state);
        sta.run(co_uninitialize);
        assert_eq!(call.0.finish_add(), (RPC_E_DISCONNECTED, 0));
        assert_eq!(parked.complete(S_OK, 1), S_OK, "a late Signal is harmless");
        drop(call);
        guard.join();
    });
}

#[test]
fn the_server_releasing_its_object_during_a_pending_call_does_not_hang() {
    within("server releases", || {
        let sta = Sta::start();
        // object_in keeps no reference in the server: the stub's is the only one.
        let (stream, state) = object_in(&sta, ProbeWithCalls::create);
        let (guard, call) = client_call(stream);
        assert_eq!(call.0.begin_add(2), S_OK);
        let parked = next_parked(&state);
        drop(call.1); // the client's proxy goes too: the call object keeps the channel
        assert_eq!(parked.complete(S_OK, 2), S_OK);
        assert_eq!(call.0.finish_add(), (S_OK, 2));
        drop(call.0);
        guard.join();
    });
}

#[test]
fn a_callback_into_a_waiting_sta_caller_is_dispatched_by_its_synchronous_call() {
    within("re-entrant callback", || {
        let sta = Sta::start();
        let server = Sta::start();
        let (stream, _) = object_in(&server, Probe::create);
        let (r, count) = sta.run(move || {
            let proxy = unmarshal(stream);
            let (me, state) = Probe::create();
            let callback =
                co_marshal_inter_thread_interface_in_stream::<IProbeCalls>(&iid(), &*me).unwrap();
            // The server calls back into this STA while this thread waits for the server.
            let r = proxy.call_back(callback);
            (r, state.count.load(Ordering::SeqCst))
        });
        assert_eq!((r, count), ((S_OK, 1), 1));
    });
}

/// An STA client begins `Add(5)` on an STA server and then blocks in `wait` (its Finish_ or
/// its Cancel); meanwhile an MTA thread calls an object of the client's STA, which only a
/// wait that dispatches can serve. Then the server completes the call with `reply` (after
/// `before_reply` looked at it); what `wait` returned.
fn client_blocked_in<T: Send + 'static>(
    wait: impl FnOnce(&ComPtr<dyn AsyncIProbe>) -> T + Send + 'static,
    before_reply: impl FnOnce(&Parked),
    reply: (HRESULT, u32),
) -> T {
    let client = Sta::start();
    let server = Sta::start();
    let (stream, state) = object_in(&server, ProbeWithCalls::create);
    let (callback, cb_state) = object_in(&client, Probe::create);
    let (tx, rx) = std::sync::mpsc::channel();
    client.spawn(move || {
        let call = new_call(&unmarshal(stream));
        assert_eq!(call.begin_add(5), S_OK);
        tx.send(wait(&call)).unwrap(); // blocks: dispatches meanwhile
    });
    let parked = next_parked(&state);
    assert_eq!(in_mta(move || unmarshal(callback).add(9)), (S_OK, 9));
    assert_eq!(cb_state.count.load(Ordering::SeqCst), 9);
    before_reply(&parked);
    assert_eq!(parked.complete(reply.0, reply.1), S_OK);
    rx.recv().unwrap()
}

#[test]
fn a_blocking_finish_in_an_sta_dispatches_incoming_calls() {
    within("blocking Finish_ pumps", || {
        let finished = client_blocked_in(|call| call.finish_add(), |_| {}, (S_OK, 5));
        assert_eq!(finished, (S_OK, 5));
    });
}

#[test]
fn a_windowed_cancel_in_an_sta_dispatches_incoming_calls() {
    within("windowed Cancel pumps", || {
        let cancelled = client_blocked_in(
            |call| {
                let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
                // Waits for the server up to the window.
                (
                    cancel.cancel(RPC_C_CANCEL_INFINITE_TIMEOUT),
                    call.finish_add(),
                )
            },
            |parked| assert_eq!(parked.cancel.test_cancel(), RPC_E_CALL_CANCELED),
            (RPC_E_CALL_CANCELED, 0),
        );
        // The server completed within the window (Cancel: RPC_E_CALL_COMPLETE, D14).
        assert_eq!(cancelled, (RPC_E_CALL_COMPLETE, (RPC_E_CALL_CANCELED, 0)));
    });
}

#[test]
fn a_server_with_the_standard_call_factory_is_served_through_its_call_object_aggregated_under_the_stub(
) {
    within("standard call object under the stub", || {
        let sta = Sta::start();
        let (stream, state) = object_in(&sta, probe::ProbeStd::create);
        let r = in_mta(move || {
            let proxy = unmarshal(stream);
            let call = new_call(&proxy);
            assert_eq!(call.begin_add(21), S_OK);
            let async_result = call.finish_add();
            (async_result, proxy.add(4))
        });
        assert_eq!(r, ((S_OK, 42), (S_OK, 8)));
        assert_eq!(*state.begun.lock().unwrap(), vec![21, 4]);
    });
}

#[test]
fn an_sta_thread_that_exits_without_co_uninitialize_disconnects_its_objects() {
    within("STA thread exits", || {
        let (stream, gate_tx) = {
            let (tx, rx) = std::sync::mpsc::channel();
            let (gate_tx, gate_rx) = std::sync::mpsc::channel::<()>();
            thread::spawn(move || {
                assert_eq!(co_initialize_ex(None, COINIT_APARTMENTTHREADED), S_OK);
                let (object, _) = Probe::create();
                let s =
                    co_marshal_inter_thread_interface_in_stream::<IProbeCalls>(&iid(), &*object);
                tx.send(s.unwrap()).unwrap();
                let _ = gate_rx.recv(); // then exits, still in its STA
            });
            (rx.recv().unwrap(), gate_tx)
        };
        let (tx, rx) = std::sync::mpsc::channel();
        let client = thread::spawn(move || {
            in_mta(move || {
                let proxy = unmarshal(stream);
                tx.send(()).unwrap();
                proxy.add(1).0 // queued for an STA that never dispatches, then ends
            })
        });
        rx.recv().unwrap();
        drop(gate_tx);
        assert_eq!(client.join().unwrap(), RPC_E_DISCONNECTED);
    });
}
