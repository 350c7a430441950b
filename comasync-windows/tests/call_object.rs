//! windows-rs client code against comasync's call objects: `CreateCall`, `Begin_`/`Finish_`
//! on an `#[interface]`-declared asynchronous interface, `Wait`, `Cancel`, the completion
//! callback and `CoGetCallContext` inside the server — each giving the `HRESULT` comasync's
//! own API gives for the same step.

mod common;

use std::sync::atomic::Ordering;

use comasync::call::{create_call_as, FinishMode, ManualHandler, StdCallFactory};
use comasync::hresult as h;
use comasync::simple_stream::{AsyncISimpleStream, ISimpleStreamCalls};
use common::*;
use windows::core::{ComObject, IUnknown, Interface, Result, HRESULT};
use windows::Win32::System::Com::{
    CoWaitForMultipleHandles, ICancelMethodCalls, ISynchronize, ISynchronizeHandle,
};

const INFINITE: u32 = u32::MAX;

fn code<T>(r: Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.code().0,
    }
}

/// comasync's own call object for the same steps: a SimpleStream call served by hand.
fn comasync_call() -> (
    comasync::ComPtr<dyn AsyncISimpleStream>,
    std::sync::Arc<ManualHandler<ISimpleStreamCalls>>,
) {
    let server = ManualHandler::<ISimpleStreamCalls>::new();
    let factory = StdCallFactory::with_handler(server.clone(), FinishMode::Blocking);
    let iid = <dyn AsyncISimpleStream as comasync::unknown::Interface>::IID;
    (
        create_call_as::<dyn AsyncISimpleStream>(&*factory, &iid).unwrap(),
        server,
    )
}

#[test]
fn the_seed_procedure_runs_through_windows_rs_types() {
    let server = ComObject::new(Calculator::new());
    let factory = factory(&server);
    let call = create_call(&factory);
    let sync: ISynchronize = call.cast().unwrap();
    unsafe {
        assert_eq!(call.Begin_Add(2, 3), HRESULT(0));
        sync.Wait(0, INFINITE).unwrap();
        let mut sum = 0;
        assert_eq!(call.Finish_Add(&mut sum), HRESULT(0));
        assert_eq!(sum, 5);
        // The call object is reusable.
        assert_eq!(call.Begin_Add(40, 2), HRESULT(0));
        let handle = call
            .cast::<ISynchronizeHandle>()
            .unwrap()
            .GetHandle()
            .unwrap();
        assert_eq!(CoWaitForMultipleHandles(0, INFINITE, &[handle]).unwrap(), 0);
        assert_eq!(call.Finish_Add(&mut sum), HRESULT(0));
        assert_eq!(sum, 42);
    }
}

#[test]
fn misuse_gives_comasyncs_hresults() {
    let server = ComObject::new(Calculator::new());
    let factory = factory(&server);
    let call = create_call(&factory);
    let (theirs, pending) = comasync_call();
    unsafe {
        // Finish_ with no call: RPC_E_CALL_COMPLETE.
        let mut sum = 0;
        assert_eq!(call.Finish_Add(&mut sum).0, theirs.finish_read().0 .0);
        assert_eq!(call.Finish_Add(&mut sum).0, h::RPC_E_CALL_COMPLETE.0);
        // Begin_ while a call is pending: RPC_S_CALLPENDING.
        assert_eq!(call.Begin_Slow(), HRESULT(0));
        assert_eq!(theirs.begin_read(1), h::S_OK);
        assert_eq!(call.Begin_Add(1, 1).0, theirs.begin_read(1).0);
        assert_eq!(call.Begin_Add(1, 1).0, h::RPC_S_CALLPENDING.0);
        // Wait(0, 0) on a pending call: RPC_S_CALLPENDING.
        let sync: ISynchronize = call.cast().unwrap();
        let their_sync = theirs.query::<dyn comasync::sync::ISynchronize>().unwrap();
        assert_eq!(code(sync.Wait(0, 0)), their_sync.wait(0, 0).0);
        assert_eq!(code(sync.Wait(0x100, 0)), their_sync.wait(0x100, 0).0); // E_INVALIDARG
                                                                            // Let both finish.
        let server_gate = &server.gate;
        server_gate.set_event();
        let (c, _) = pending.take().unwrap();
        c.fail(h::S_OK);
        let mut seen = 0;
        assert_eq!(call.Finish_Slow(&mut seen), HRESULT(0));
    }
    // CreateCall's argument rules.
    let their_factory = StdCallFactory::with_handler(
        ManualHandler::<ISimpleStreamCalls>::new(),
        FinishMode::Blocking,
    );
    let mut slot: Option<comasync::ComPtr<dyn comasync::unknown::IUnknown>> = None;
    let expected = their_factory.create_call(
        &comasync::guid::IID_ISynchronize,
        None,
        &comasync::guid::IID_IUnknown,
        Some(&mut slot),
    );
    let got = unsafe { factory.CreateCall(&ISynchronize::IID, None, &IUnknown::IID) };
    assert_eq!(code(got), expected.0); // E_NOINTERFACE
    let outer: IUnknown = Callback::new().into();
    let their_outer = comasync::unknown::PlainObject::create();
    let iid = <dyn AsyncISimpleStream as comasync::unknown::Interface>::IID;
    let expected = their_factory.create_call(&iid, Some(&their_outer), &iid, Some(&mut slot));
    let got = unsafe { factory.CreateCall(&AsyncICalculator::IID, &outer, &AsyncICalculator::IID) };
    assert_eq!(code(got), expected.0); // E_INVALIDARG
}

fn wait_for(event: &comasync::sync::HANDLE) {
    let mut i = 0;
    let hr = comasync::sync::co_wait_for_multiple_handles(
        0,
        INFINITE,
        Some(std::slice::from_ref(event)),
        Some(&mut i),
    );
    assert_eq!(hr, h::S_OK);
}

#[test]
fn cancel_completes_the_call_locally_with_comasyncs_hresults() {
    let server = ComObject::new(Calculator::new());
    let factory = factory(&server);
    let call = create_call(&factory);
    let cancel: ICancelMethodCalls = call.cast().unwrap();
    let (theirs, pending) = comasync_call();
    let their_cancel = theirs
        .query::<dyn comasync::call::ICancelMethodCalls>()
        .unwrap();
    unsafe {
        // Nothing to cancel yet.
        assert_eq!(code(cancel.Cancel(0)), their_cancel.cancel(0).0); // RPC_E_CALL_COMPLETE
        assert_eq!(call.Begin_Slow(), HRESULT(0));
        assert_eq!(theirs.begin_read(1), h::S_OK);
        assert_eq!(code(cancel.TestCancel()), their_cancel.test_cancel().0); // RPC_S_CALLPENDING
        wait_for(&server.entered);
        assert_eq!(code(cancel.Cancel(0)), their_cancel.cancel(0).0); // S_OK
        assert_eq!(code(cancel.Cancel(0)), their_cancel.cancel(0).0); // RPC_E_CALL_CANCELED
        assert_eq!(code(cancel.TestCancel()), their_cancel.test_cancel().0);
        let mut seen = 0;
        assert_eq!(call.Finish_Slow(&mut seen).0, theirs.finish_read().0 .0); // RPC_E_CALL_CANCELED
        assert_eq!(call.Finish_Slow(&mut seen).0, theirs.finish_read().0 .0); // RPC_E_CALL_COMPLETE
        drop(pending.take());
        server.gate.set_event();
        wait_for(&server.done);
        // The call object is free for the next call; the late result was not delivered.
        assert_eq!(call.Begin_Add(1, 2), HRESULT(0));
        let mut sum = 0;
        assert_eq!(call.Finish_Add(&mut sum), HRESULT(0));
        assert_eq!(sum, 3);
    }
}

#[test]
fn a_cancelled_server_method_sees_rpc_e_call_canceled_through_co_test_cancel_and_co_get_call_context(
) {
    let server = ComObject::new(Calculator::new());
    let factory = factory(&server);
    let call = create_call(&factory);
    let cancel: ICancelMethodCalls = call.cast().unwrap();
    unsafe {
        assert_eq!(call.Begin_Slow(), HRESULT(0));
        wait_for(&server.entered);
        assert_eq!(code(cancel.Cancel(0)), 0);
        server.gate.set_event();
        wait_for(&server.done);
        let mut seen = 0;
        assert_eq!(call.Finish_Slow(&mut seen).0, h::RPC_E_CALL_CANCELED.0);
    }
    assert_eq!(
        server.seen.co_test_cancel.load(Ordering::SeqCst),
        h::RPC_E_CALL_CANCELED.0
    );
    assert_eq!(
        server.seen.context_test_cancel.load(Ordering::SeqCst),
        h::RPC_E_CALL_CANCELED.0
    );
    // An uncancelled call's method sees RPC_S_CALLPENDING (the gate is open now).
    unsafe {
        assert_eq!(call.Begin_Slow(), HRESULT(0));
        let mut seen = 0;
        assert_eq!(call.Finish_Slow(&mut seen), HRESULT(0));
        assert_eq!(seen, h::RPC_S_CALLPENDING.0);
    }
    // Outside a server method there is no call context.
    assert_eq!(
        code(unsafe { windows::Win32::System::Com::CoTestCancel() }),
        h::RPC_E_CALL_COMPLETE.0
    );
    let context = unsafe { windows::Win32::System::Com::CoGetCallContext::<ICancelMethodCalls>() };
    assert_eq!(code(context), h::RPC_E_CALL_COMPLETE.0);
}

#[test]
fn the_completion_callback_signals_the_clients_outer() {
    let server = ComObject::new(Calculator::new());
    let factory = factory(&server);
    let callback = ComObject::new(Callback::new());
    let outer: IUnknown = callback.to_interface();
    let inner =
        unsafe { factory.CreateCall(&AsyncICalculator::IID, &outer, &IUnknown::IID) }.unwrap();
    let call: AsyncICalculator = inner.cast().unwrap();
    for (a, b) in [(1, 2), (20, 22)] {
        unsafe {
            assert_eq!(call.Begin_Add(a, b), HRESULT(0));
            let mut i = 0;
            let hr = comasync::sync::co_wait_for_multiple_handles(
                0,
                INFINITE,
                Some(std::slice::from_ref(&callback.signals)),
                Some(&mut i),
            );
            assert_eq!(hr, h::S_OK); // the outer's Signal ran
            let mut sum = 0;
            assert_eq!(call.Finish_Add(&mut sum), HRESULT(0));
            assert_eq!(sum, a + b);
        }
    }
}

#[test]
fn a_server_object_is_released_once_every_factory_and_call_is_gone() {
    let object = Calculator::new();
    let drops = object.drops.clone();
    let server = ComObject::new(object);
    let factory = factory(&server);
    let call = create_call(&factory);
    drop(server);
    unsafe {
        assert_eq!(call.Begin_Add(1, 1), HRESULT(0));
        let mut sum = 0;
        assert_eq!(call.Finish_Add(&mut sum), HRESULT(0));
    }
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(call);
    drop(factory);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
}
