//! `CoGetCancelObject` and `CoCancelCall` through windows-rs on a synchronous cross-apartment
//! call made with comasync's proxies (the root crate's probe object and apartments): the
//! cancel object is comasync's, as a windows-rs `ICancelMethodCalls`.

#[allow(unused_imports)]
#[path = "../../tests/common/apartments.rs"]
mod apartments;
#[allow(unused_imports)]
#[path = "../../tests/common/probe.rs"]
mod probe;

use std::thread;

use apartments::Sta;
use comasync::apartment::{
    co_initialize_ex, co_uninitialize, get_current_thread_id, COINIT_MULTITHREADED,
};
use comasync::call::co_enable_call_cancellation;
use comasync::hresult as h;
use comasync::marshal::{
    co_get_interface_and_release_stream, co_marshal_inter_thread_interface_in_stream,
};
use comasync::sync::{co_wait_for_multiple_handles, HANDLE, INFINITE};
use probe::{IProbe, IProbeCalls, Probe};
use windows::core::Result;
use windows::Win32::System::Com::{CoCancelCall, CoGetCancelObject, ICancelMethodCalls};

fn code<T>(r: Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.code().0,
    }
}

fn wait(h: &HANDLE) {
    let mut i = 0;
    let hr = co_wait_for_multiple_handles(0, INFINITE, Some(std::slice::from_ref(h)), Some(&mut i));
    assert_eq!(hr, h::S_OK);
}

/// A client thread (cancellation enabled) blocked in a synchronous proxy call whose server
/// method runs and waits at `gate`; `tested` is what `CoTestCancel` said in the method.
struct Blocked {
    client: thread::JoinHandle<h::HRESULT>,
    tid: u32,
    gate: HANDLE,
    done: HANDLE,
    state: std::sync::Arc<probe::ProbeState>,
    _server: Sta,
}

fn blocked_call() -> Blocked {
    let iid = <dyn IProbe as comasync::unknown::Interface>::IID;
    let server = Sta::start();
    let (stream, state) = server.run(move || {
        let (object, state) = Probe::create();
        let s = co_marshal_inter_thread_interface_in_stream::<IProbeCalls>(&iid, &*object);
        (s.unwrap(), state)
    });
    let (entered, gate, done) = (
        HANDLE::create_event(true, false),
        HANDLE::create_event(true, false),
        HANDLE::create_event(true, false),
    );
    let (e, g, d) = (entered.clone(), gate.clone(), done.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    let client = thread::spawn(move || {
        let _ = co_initialize_ex(None, COINIT_MULTITHREADED);
        assert_eq!(co_enable_call_cancellation(None), h::S_OK);
        tx.send(get_current_thread_id()).unwrap();
        let proxy = co_get_interface_and_release_stream::<IProbeCalls>(stream, &iid).unwrap();
        let hr = proxy.block(e, g, d);
        drop(proxy);
        co_uninitialize();
        hr
    });
    let tid = rx.recv().unwrap();
    wait(&entered); // the client waits in its synchronous call
    Blocked {
        client,
        tid,
        gate,
        done,
        state,
        _server: server,
    }
}

impl Blocked {
    /// Lets the server's method go on; the client's result and what the method saw.
    fn finish(self) -> (h::HRESULT, Vec<h::HRESULT>) {
        let hr = self.client.join().unwrap();
        self.gate.set_event();
        wait(&self.done);
        let tested = self.state.tested.lock().unwrap().clone();
        (hr, tested)
    }
}

#[test]
fn co_cancel_call_through_windows_rs_cancels_a_synchronous_proxy_call() {
    let b = blocked_call();
    unsafe {
        let cancel: ICancelMethodCalls = CoGetCancelObject(b.tid).unwrap();
        assert_eq!(code(cancel.TestCancel()), h::RPC_S_CALLPENDING.0);
        assert_eq!(code(CoCancelCall(b.tid, 0)), 0);
    }
    let (hr, tested) = b.finish();
    assert_eq!(hr, h::RPC_E_CALL_CANCELED);
    assert_eq!(tested, vec![h::RPC_E_CALL_CANCELED]);
}

#[test]
fn the_cancel_object_from_co_get_cancel_object_cancels_the_call() {
    let b = blocked_call();
    unsafe {
        let cancel: ICancelMethodCalls = CoGetCancelObject(b.tid).unwrap();
        assert_eq!(code(cancel.Cancel(0)), 0);
    }
    let (hr, tested) = b.finish();
    assert_eq!(hr, h::RPC_E_CALL_CANCELED);
    assert_eq!(tested, vec![h::RPC_E_CALL_CANCELED]);
}
