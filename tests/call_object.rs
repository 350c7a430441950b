//! The client-side call object: every row of spec 2.1 (rows 1–23), named after its rule, plus
//! the discrepancy readings D2, D5, D11, D13, D14. No test sleeps to order events: servers are
//! driven by hand (`ManualHandler`) or signal before the client waits.

mod common;

use common::{eventually, live_here, within, Token};

use std::sync::Arc;
use std::thread;

use comasync::call::{
    create_call, create_call_as, CallHandler, FinishMode, ICallFactory, ICancelMethodCalls,
    InlineHandler, ManualHandler, Pool, ServerCall, State, RPC_C_CANCEL_INFINITE_TIMEOUT,
};
use comasync::guid::{IID_ICallFactory, IID_IClientSecurity, IID_ISynchronize, IID_IUnknown};
use comasync::hresult::*;
use comasync::simple_stream::{
    AsyncISimpleStream, ISimpleStream, ISimpleStreamCalls, SimpleStream,
};
use comasync::sync::{ISynchronize, ISynchronizeHandle, COWAIT_WAITALL, INFINITE};
use comasync::unknown::{ComPtr, IUnknown, Interface, PlainObject};

// ---------------------------------------------------------------------------------------
// A test interface whose out-parameter counts its live instances, to prove nothing leaks.

/// A counter service.
#[comasync::interface(
    iid = "{6E7F8A9B-0C1D-4E2F-8A3B-4C5D6E7F8091}",
    async_iid = "{6E7F8A9B-0C1D-4E2F-8A3B-4C5D6E7F8092}",
    // Test-local parameter types: no scenario-script glue.
    scripts = false
)]
pub trait ICounter {
    /// Adds `n`, returns a token carrying the new value.
    #[out(token)]
    fn add(&self, n: u32) -> (HRESULT, Token);
    /// Does nothing.
    fn ping(&self) -> HRESULT;
}

const ASYNC_ISIMPLESTREAM: comasync::guid::IID = <dyn AsyncISimpleStream as Interface>::IID;

type ManualCall = (
    ComPtr<dyn AsyncISimpleStream>,
    Arc<ManualHandler<ISimpleStreamCalls>>,
    ComPtr<dyn ISimpleStream>,
);

fn manual_call(mode: FinishMode) -> ManualCall {
    let (server, handler) = SimpleStream::create_manual(b"hello, world".to_vec(), mode);
    let factory = server.query::<dyn ICallFactory>().unwrap();
    let call = create_call_as::<dyn AsyncISimpleStream>(&*factory, &ASYNC_ISIMPLESTREAM).unwrap();
    (call, handler, server)
}

fn counter_call(
    handler: Arc<dyn CallHandler<ICounterCalls>>,
    mode: FinishMode,
) -> ComPtr<dyn AsyncICounter> {
    let mut slot: Option<ComPtr<dyn AsyncICounter>> = None;
    let hr = create_call::<ICounterCalls>(
        &<dyn AsyncICounter as Interface>::IID,
        None,
        &<dyn AsyncICounter as Interface>::IID,
        Some(&mut slot),
        handler,
        mode,
    );
    assert_eq!(hr, S_OK);
    slot.unwrap()
}

fn sync_of<I: ?Sized + IUnknown>(p: &ComPtr<I>) -> ComPtr<dyn ISynchronize> {
    p.query::<dyn ISynchronize>().unwrap()
}

// ---------------------------------------------------------------------------------------
// Rows 1–4: CreateCall.

#[test]
fn row01_create_call_returns_s_ok_and_an_idle_call_object() {
    let (call, _h, _s) = manual_call(FinishMode::Blocking);
    assert_eq!(
        call.finish_read().0,
        RPC_E_CALL_COMPLETE,
        "a fresh call object has no call"
    );
    assert_eq!(call.ref_count(), 1);
}

#[test]
fn row02_create_call_with_an_unsupported_riid_returns_e_nointerface() {
    let server = SimpleStream::create(vec![]);
    let factory = server.query::<dyn ICallFactory>().unwrap();
    let mut slot: Option<ComPtr<dyn IUnknown>> = None;
    let hr = factory.create_call(&IID_ISynchronize, None, &IID_IUnknown, Some(&mut slot));
    assert_eq!(hr, E_NOINTERFACE);
    assert!(slot.is_none());
    // The synchronous IID is not an asynchronous interface either.
    let hr = factory.create_call(
        &<dyn ISimpleStream as Interface>::IID,
        None,
        &IID_IUnknown,
        Some(&mut slot),
    );
    assert_eq!(hr, E_NOINTERFACE);
}

#[test]
fn row03_create_call_aggregated_with_riid2_not_iunknown_returns_e_invalidarg() {
    let server = SimpleStream::create(vec![]);
    let factory = server.query::<dyn ICallFactory>().unwrap();
    let outer = PlainObject::create();
    let mut slot: Option<ComPtr<dyn ISynchronize>> = None;
    let hr = factory.create_call(
        &ASYNC_ISIMPLESTREAM,
        Some(&outer),
        &IID_ISynchronize,
        Some(&mut slot),
    );
    assert_eq!(hr, E_INVALIDARG);
    assert!(slot.is_none());
}

#[test]
fn row04_create_call_with_a_missing_out_pointer_returns_e_pointer_checked_first() {
    let server = SimpleStream::create(vec![]);
    let factory = server.query::<dyn ICallFactory>().unwrap();
    // Even with a bad riid, the missing ppv is what is reported (D11 order).
    assert_eq!(
        factory.create_call(&ASYNC_ISIMPLESTREAM, None, &IID_IUnknown, None),
        E_POINTER
    );
    assert_eq!(
        factory.create_call(&IID_ISynchronize, None, &IID_IUnknown, None),
        E_POINTER
    );
}

#[test]
fn create_call_not_aggregated_with_an_unexposed_riid2_returns_e_nointerface() {
    let server = SimpleStream::create(vec![]);
    let factory = server.query::<dyn ICallFactory>().unwrap();
    let mut slot: Option<ComPtr<dyn ICallFactory>> = None;
    let hr = factory.create_call(
        &ASYNC_ISIMPLESTREAM,
        None,
        &IID_ICallFactory,
        Some(&mut slot),
    );
    assert_eq!(hr, E_NOINTERFACE);
}

#[test]
fn create_call_can_return_isynchronize_as_riid2() {
    let server = SimpleStream::create(vec![]);
    let factory = server.query::<dyn ICallFactory>().unwrap();
    let mut slot: Option<ComPtr<dyn ISynchronize>> = None;
    let hr = factory.create_call(
        &ASYNC_ISIMPLESTREAM,
        None,
        &IID_ISynchronize,
        Some(&mut slot),
    );
    assert_eq!(hr, S_OK);
    let sync = slot.unwrap();
    assert!(sync.query::<dyn AsyncISimpleStream>().is_ok());
}

#[test]
fn object_without_async_support_answers_e_nointerface_for_icallfactory() {
    let server = SimpleStream::create_sync_only(b"abc".to_vec());
    assert_eq!(
        server.query::<dyn ICallFactory>().err().map(|e| e.code()),
        Some(E_NOINTERFACE)
    );
    // The client then calls the synchronous interface.
    assert_eq!(server.read(3), (S_OK, b"abc".to_vec()));
}

// ---------------------------------------------------------------------------------------
// Rows 5–14: Begin_, the server's signal, Wait, Finish_.

#[test]
fn row05_begin_on_an_idle_call_returns_s_ok_and_resets_the_event() {
    let (call, handler, _s) = manual_call(FinishMode::Blocking);
    let sync = sync_of(&call);
    assert_eq!(sync.signal(), S_OK); // the event starts signaled by hand...
    assert_eq!(call.begin_read(5), S_OK);
    assert_eq!(
        sync.wait(0, 0),
        RPC_S_CALLPENDING,
        "...and Begin_ resets it"
    );
    assert_eq!(handler.pending(), 1);
}

#[test]
fn row06_begin_while_pending_returns_rpc_s_callpending_the_docs_rpc_e_call_pending() {
    let (call, handler, _s) = manual_call(FinishMode::Blocking);
    assert_eq!(call.begin_read(5), S_OK);
    assert_eq!(call.begin_read(5), RPC_E_CALL_PENDING);
    assert_eq!(
        call.begin_write(b"x".to_vec()),
        RPC_S_CALLPENDING,
        "any method"
    );
    assert_eq!(RPC_E_CALL_PENDING.as_u32(), 0x8001_0115);
    assert_eq!(handler.pending(), 1, "the busy Begin_ reached no server");
}

#[test]
fn row06_begin_from_a_second_thread_while_pending_is_busy() {
    let (call, _handler, _s) = manual_call(FinishMode::Blocking);
    assert_eq!(call.begin_read(5), S_OK);
    let c2 = call.clone();
    let hr = within("second client's Begin_", move || c2.begin_read(1));
    assert_eq!(hr, RPC_S_CALLPENDING);
}

#[test]
fn row06_begin_while_signaled_is_busy_until_finish() {
    let (call, handler, server) = manual_call(FinishMode::Blocking);
    assert_eq!(call.begin_read(5), S_OK);
    handler.run_next(&*server).unwrap();
    assert_eq!(call.begin_read(5), RPC_S_CALLPENDING);
    assert_eq!(call.finish_read().0, S_OK);
    assert_eq!(call.begin_read(5), S_OK);
}

#[test]
fn row07_server_completion_wakes_a_waiting_client() {
    let (call, handler, server) = manual_call(FinishMode::Blocking);
    assert_eq!(call.begin_read(5), S_OK);
    let sync = sync_of(&call);
    let waiter = thread::spawn(move || sync.wait(0, INFINITE));
    handler.run_next(&*server).unwrap();
    assert_eq!(within("waiter", move || waiter.join().unwrap()), S_OK);
}

#[test]
fn row08_wait_while_pending_times_out_with_rpc_s_callpending_never_rpc_e_timeout() {
    let (call, _handler, _s) = manual_call(FinishMode::Blocking);
    assert_eq!(call.begin_read(5), S_OK);
    let sync = sync_of(&call);
    assert_eq!(sync.wait(0, 0), RPC_S_CALLPENDING);
    assert_eq!(sync.wait(0, 20), RPC_S_CALLPENDING);
    assert_ne!(sync.wait(0, 1), RPC_E_TIMEOUT);
}

#[test]
fn row09_wait_after_the_signal_returns_s_ok_every_time() {
    let (call, handler, server) = manual_call(FinishMode::Blocking);
    assert_eq!(call.begin_read(5), S_OK);
    handler.run_next(&*server).unwrap();
    let sync = sync_of(&call);
    for _ in 0..3 {
        assert_eq!(sync.wait(0, 0), S_OK, "manual reset (D13): stays signaled");
    }
    assert_eq!(
        sync.wait(COWAIT_WAITALL, INFINITE),
        S_OK,
        "FullServ waits with COWAIT_WAITALL"
    );
}

#[test]
fn row10_wait_on_a_fresh_call_object_times_out() {
    let (call, _handler, _s) = manual_call(FinishMode::Blocking);
    assert_eq!(sync_of(&call).wait(0, 10), RPC_S_CALLPENDING);
}

#[test]
fn row11_wait_after_finish_still_returns_s_ok_until_the_next_begin() {
    let (call, handler, server) = manual_call(FinishMode::Blocking);
    assert_eq!(call.begin_read(5), S_OK);
    handler.run_next(&*server).unwrap();
    assert_eq!(call.finish_read().0, S_OK);
    let sync = sync_of(&call);
    assert_eq!(sync.wait(0, 0), S_OK);
    assert_eq!(call.begin_read(1), S_OK);
    assert_eq!(sync.wait(0, 0), RPC_S_CALLPENDING);
}

#[test]
fn row12_finish_returns_exactly_what_the_synchronous_method_returns() {
    let (call, handler, server) = manual_call(FinishMode::Blocking);
    let twin = SimpleStream::create_sync_only(b"hello, world".to_vec());
    for cb in [5u32, 20] {
        assert_eq!(call.begin_read(cb), S_OK);
        handler.run_next(&*server).unwrap();
        assert_eq!(
            call.finish_read(),
            twin.read(cb),
            "Finish_Read({cb}) = Read({cb})"
        );
    }
    // S_FALSE (a success other than S_OK) comes through unchanged.
    assert_eq!(twin.read(1).0, S_FALSE);
}

#[test]
fn row12_a_server_failure_is_returned_by_finish_with_default_out_parameters() {
    let handler = ManualHandler::<ICounterCalls>::new();
    let call = counter_call(handler.clone(), FinishMode::Blocking);
    assert_eq!(call.begin_add(1), S_OK);
    let (server_call, input) = handler.take().unwrap();
    assert!(matches!(input, ICounterIn::Add { n: 1 }), "{input:?}");
    server_call.fail(E_ACCESSDENIED);
    let (hr, token) = call.finish_add();
    assert_eq!(hr, E_ACCESSDENIED);
    assert_eq!(token, Token::new(Token::NONE));
}

#[test]
fn row13_finish_while_pending_blocks_until_the_server_completes() {
    let (call, handler, server) = manual_call(FinishMode::Blocking);
    assert_eq!(call.begin_read(5), S_OK);
    let c2 = call.clone();
    let finisher = thread::spawn(move || c2.finish_read());
    // The server completes whenever it completes; the blocked Finish_ then returns its result.
    if let Some((sc, input)) = handler.take_wait(u32::MAX) {
        let (hr, out) =
            <ISimpleStreamCalls as comasync::call::AsyncInterface>::invoke_sync(&*server, input);
        sc.complete(hr, out);
    }
    let got = within("blocked Finish_", move || finisher.join().unwrap());
    assert_eq!(got, (S_OK, b"hello".to_vec()));
}

#[test]
fn row13_strict_finish_while_pending_returns_rpc_s_callpending() {
    let (call, handler, server) = manual_call(FinishMode::Strict);
    assert_eq!(call.begin_read(5), S_OK);
    assert_eq!(call.finish_read().0, RPC_S_CALLPENDING);
    assert_eq!(
        call.begin_read(5),
        RPC_S_CALLPENDING,
        "the call is still in progress"
    );
    handler.run_next(&*server).unwrap();
    assert_eq!(call.finish_read(), (S_OK, b"hello".to_vec()));
}

#[test]
fn row14_finish_with_no_call_returns_rpc_e_call_complete() {
    let (call, handler, server) = manual_call(FinishMode::Blocking);
    assert_eq!(call.finish_read().0, RPC_E_CALL_COMPLETE);
    assert_eq!(call.begin_read(1), S_OK);
    handler.run_next(&*server).unwrap();
    assert_eq!(call.finish_read().0, S_OK);
    assert_eq!(
        call.finish_read().0,
        RPC_E_CALL_COMPLETE,
        "a result is handed back once"
    );
}

#[test]
fn finish_of_another_method_than_the_one_begun_returns_e_unexpected_and_keeps_the_call() {
    let (call, handler, server) = manual_call(FinishMode::Blocking);
    assert_eq!(call.begin_read(5), S_OK);
    handler.run_next(&*server).unwrap();
    assert_eq!(call.finish_write().0, E_UNEXPECTED);
    assert_eq!(call.finish_read(), (S_OK, b"hello".to_vec()));
}

// ---------------------------------------------------------------------------------------
// Rows 15–19: cancellation (D3, D14).

#[test]
fn row15_cancel_zero_completes_the_call_locally_and_finish_returns_rpc_e_call_canceled() {
    let (call, handler, server) = manual_call(FinishMode::Blocking);
    assert_eq!(call.begin_read(5), S_OK);
    let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
    assert_eq!(cancel.cancel(0), S_OK);
    assert_eq!(
        sync_of(&call).wait(0, 0),
        S_OK,
        "a locally cancelled call is signaled"
    );
    assert_eq!(
        call.begin_read(1),
        RPC_S_CALLPENDING,
        "Begin_ stays busy until Finish_"
    );
    assert_eq!(call.finish_read(), (RPC_E_CALL_CANCELED, Vec::new()));
    // The server's late result is dropped, never delivered to a later call.
    handler.run_next(&*server).unwrap();
    assert_eq!(call.begin_read(2), S_OK);
    assert_eq!(sync_of(&call).wait(0, 0), RPC_S_CALLPENDING);
    handler.run_next(&*server).unwrap();
    assert_eq!(call.finish_read(), (S_OK, b", ".to_vec()));
}

#[test]
fn row15_cancel_returns_rpc_e_call_complete_when_the_server_completes_in_the_window() {
    let handler = ManualHandler::<ICounterCalls>::new();
    let call = counter_call(handler.clone(), FinishMode::Blocking);
    assert_eq!(call.begin_add(7), S_OK);
    let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
    let canceller = thread::spawn(move || cancel.cancel(RPC_C_CANCEL_INFINITE_TIMEOUT));
    let (sc, _) = handler.take().unwrap();
    // The server sees the cancel request through its outer...
    eventually("the cancel is requested", || {
        sc.test_cancel() == RPC_E_CALL_CANCELED
    });
    // ...and completes anyway, within the window.
    sc.complete(
        S_OK,
        ICounterOut::Add {
            token: Token::new(7),
        },
    );
    assert_eq!(
        within("Cancel(INFINITE)", move || canceller.join().unwrap()),
        RPC_E_CALL_COMPLETE
    );
    assert_eq!(
        call.finish_add(),
        (S_OK, Token::new(7)),
        "Finish_ gives the server's result"
    );
}

#[test]
fn row15_cancel_with_a_finite_window_completes_locally_when_the_server_is_late() {
    let handler = ManualHandler::<ICounterCalls>::new();
    let call = counter_call(handler.clone(), FinishMode::Blocking);
    assert_eq!(call.begin_add(1), S_OK);
    let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
    // The server never answers within the (one-second) window.
    assert_eq!(cancel.cancel(1), S_OK);
    assert_eq!(call.finish_add().0, RPC_E_CALL_CANCELED);
}

#[test]
fn row15_a_server_that_sees_the_cancel_may_return_rpc_e_call_canceled_itself() {
    let handler = ManualHandler::<ICounterCalls>::new();
    let call = counter_call(handler.clone(), FinishMode::Blocking);
    assert_eq!(call.begin_add(1), S_OK);
    let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
    let canceller = thread::spawn(move || cancel.cancel(RPC_C_CANCEL_INFINITE_TIMEOUT));
    let (sc, _) = handler.take().unwrap();
    eventually("the cancel is requested", || {
        sc.test_cancel() == RPC_E_CALL_CANCELED
    });
    sc.fail(RPC_E_CALL_CANCELED);
    assert_eq!(
        within("cancel", move || canceller.join().unwrap()),
        RPC_E_CALL_COMPLETE
    );
    assert_eq!(call.finish_add().0, RPC_E_CALL_CANCELED);
}

#[test]
fn row16_cancel_of_an_already_cancelled_call_returns_rpc_e_call_canceled() {
    let (call, _handler, _s) = manual_call(FinishMode::Blocking);
    assert_eq!(call.begin_read(5), S_OK);
    let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
    assert_eq!(cancel.cancel(0), S_OK);
    assert_eq!(cancel.cancel(0), RPC_E_CALL_CANCELED);
    assert_eq!(RPC_E_CALL_CANCELED.as_u32(), 0x8001_0002);
}

#[test]
fn row16_cancel_while_another_cancel_waits_returns_rpc_e_call_canceled() {
    let handler = ManualHandler::<ICounterCalls>::new();
    let call = counter_call(handler.clone(), FinishMode::Blocking);
    assert_eq!(call.begin_add(1), S_OK);
    let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
    let c2 = cancel.clone();
    let first = thread::spawn(move || c2.cancel(RPC_C_CANCEL_INFINITE_TIMEOUT));
    eventually("the first cancel is waiting", || {
        cancel.test_cancel() == RPC_E_CALL_CANCELED
    });
    assert_eq!(cancel.cancel(0), RPC_E_CALL_CANCELED);
    handler.take().unwrap().0.complete(
        S_OK,
        ICounterOut::Add {
            token: Token::new(1),
        },
    );
    assert_eq!(
        within("first cancel", move || first.join().unwrap()),
        RPC_E_CALL_COMPLETE
    );
    assert_eq!(call.finish_add().0, S_OK);
}

#[test]
fn row17_cancel_after_completion_or_with_no_call_returns_rpc_e_call_complete() {
    let (call, handler, server) = manual_call(FinishMode::Blocking);
    let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
    assert_eq!(cancel.cancel(0), RPC_E_CALL_COMPLETE, "idle");
    assert_eq!(call.begin_read(1), S_OK);
    handler.run_next(&*server).unwrap();
    assert_eq!(cancel.cancel(0), RPC_E_CALL_COMPLETE, "signaled normally");
    assert_eq!(call.finish_read(), (S_OK, b"h".to_vec()));
}

#[test]
fn row18_finish_after_a_local_cancel_returns_rpc_e_call_canceled_and_drops_the_late_result() {
    let before = live_here();
    {
        let handler = ManualHandler::<ICounterCalls>::new();
        let call = counter_call(handler.clone(), FinishMode::Blocking);
        assert_eq!(call.begin_add(3), S_OK);
        let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
        assert_eq!(cancel.cancel(0), S_OK);
        let (hr, token) = call.finish_add();
        assert_eq!(hr, RPC_E_CALL_CANCELED);
        drop(token);
        let (sc, _) = handler.take().unwrap();
        assert!(!sc.is_wanted());
        sc.complete(
            S_OK,
            ICounterOut::Add {
                token: Token::new(3),
            },
        );
    }
    assert_eq!(live_here(), before, "the late result was dropped");
}

#[test]
fn row19_test_cancel_reports_rpc_s_callpending_until_cancelled_then_rpc_e_call_canceled() {
    let (call, _handler, _s) = manual_call(FinishMode::Blocking);
    let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
    assert_eq!(cancel.test_cancel(), RPC_S_CALLPENDING);
    assert_eq!(call.begin_read(1), S_OK);
    assert_eq!(cancel.test_cancel(), RPC_S_CALLPENDING);
    assert_eq!(cancel.cancel(0), S_OK);
    assert_eq!(cancel.test_cancel(), RPC_E_CALL_CANCELED);
    assert_eq!(call.finish_read().0, RPC_E_CALL_CANCELED);
    assert_eq!(
        cancel.test_cancel(),
        RPC_E_CALL_CANCELED,
        "until the next Begin_"
    );
}

#[test]
fn async_cancel_does_not_depend_on_the_thread_cancellation_count() {
    use comasync::call::{
        call_cancellation_enabled, co_disable_call_cancellation, co_enable_call_cancellation,
    };
    assert!(!call_cancellation_enabled());
    let (call, _h, _s) = manual_call(FinishMode::Blocking);
    assert_eq!(call.begin_read(1), S_OK);
    assert_eq!(
        call.query::<dyn ICancelMethodCalls>().unwrap().cancel(0),
        S_OK
    );
    // D9: an unbalanced disable fails, nested enables are counted.
    assert_eq!(co_disable_call_cancellation(None), CO_E_CANCEL_DISABLED);
    assert_eq!(co_enable_call_cancellation(None), S_OK);
    assert_eq!(co_enable_call_cancellation(None), S_OK);
    assert_eq!(co_disable_call_cancellation(None), S_OK);
    assert_eq!(co_disable_call_cancellation(None), S_OK);
    assert_eq!(co_disable_call_cancellation(None), CO_E_CANCEL_DISABLED);
    let mut reserved = 0u8;
    assert_eq!(
        co_enable_call_cancellation(Some(&mut reserved)),
        E_INVALIDARG
    );
}

#[test]
fn call_cancellation_count_is_per_thread() {
    use comasync::call::{call_cancellation_enabled, co_enable_call_cancellation};
    assert_eq!(co_enable_call_cancellation(None), S_OK);
    assert!(call_cancellation_enabled());
    assert!(!thread::spawn(call_cancellation_enabled).join().unwrap());
}

// ---------------------------------------------------------------------------------------
// Rows 20–23: release, reuse, QueryInterface.

#[test]
fn row20_releasing_a_pending_call_abandons_it_cleanly() {
    let before = live_here();
    let handler = ManualHandler::<ICounterCalls>::new();
    let call = counter_call(handler.clone(), FinishMode::Blocking);
    let weak = Arc::downgrade(call.as_arc());
    assert_eq!(call.begin_add(1), S_OK);
    drop(call); // final Release, no Finish_
    let (sc, input) = handler.take().unwrap();
    assert!(matches!(input, ICounterIn::Add { n: 1 }), "{input:?}");
    assert!(
        !sc.is_wanted(),
        "the server can tell the call was abandoned"
    );
    assert_eq!(sc.test_cancel(), RPC_E_CALL_CANCELED);
    sc.complete(
        S_OK,
        ICounterOut::Add {
            token: Token::new(1),
        },
    ); // the server may still finish
    assert!(
        weak.upgrade().is_none(),
        "the call object is freed once the server lets go"
    );
    assert_eq!(live_here(), before, "its result was dropped");
}

#[test]
fn row20_releasing_while_a_pool_server_runs_is_clean() {
    let server = SimpleStream::create_on(b"abcdef".to_vec(), Pool::new(2), FinishMode::Blocking);
    let weak_server = Arc::downgrade(server.as_arc());
    for _ in 0..200 {
        let factory = server.query::<dyn ICallFactory>().unwrap();
        let call =
            create_call_as::<dyn AsyncISimpleStream>(&*factory, &ASYNC_ISIMPLESTREAM).unwrap();
        assert_eq!(call.begin_write(b"x".to_vec()), S_OK);
        drop(call); // fire and forget
    }
    // Each abandoned call's worker finishes and lets go of the server: only ours is left.
    eventually("the workers let the server go", || server.ref_count() == 1);
    drop(server);
    assert!(weak_server.upgrade().is_none(), "nothing leaked");
}

#[test]
fn row21_releasing_a_signaled_call_discards_its_results() {
    let before = live_here();
    let handler = ManualHandler::<ICounterCalls>::new();
    let call = counter_call(handler.clone(), FinishMode::Blocking);
    assert_eq!(call.begin_add(2), S_OK);
    handler.take().unwrap().0.complete(
        S_OK,
        ICounterOut::Add {
            token: Token::new(2),
        },
    );
    assert_eq!(live_here(), before + 1);
    drop(call);
    assert_eq!(live_here(), before, "results discarded on release");
}

#[test]
fn row22_a_call_object_can_be_reused_after_finish() {
    let (call, handler, server) = manual_call(FinishMode::Blocking);
    for expected in [&b"hel"[..], b"lo,", b" wo"] {
        assert_eq!(call.begin_read(3), S_OK);
        handler.run_next(&*server).unwrap();
        assert_eq!(call.finish_read(), (S_OK, expected.to_vec()));
    }
}

#[test]
fn row23_query_interface_answers_the_async_interface_isynchronize_and_icancelmethodcalls_only() {
    let (call, _h, _s) = manual_call(FinishMode::Blocking);
    assert!(call.query::<dyn ISynchronize>().is_ok());
    assert!(call.query::<dyn ISynchronizeHandle>().is_ok());
    assert!(call.query::<dyn ICancelMethodCalls>().is_ok());
    assert!(call.query::<dyn AsyncISimpleStream>().is_ok());
    assert!(call.query::<dyn IUnknown>().is_ok());
    for bad in [
        <dyn ISimpleStream as Interface>::IID,
        IID_ICallFactory,
        IID_IClientSecurity,
    ] {
        let mut slot: Option<ComPtr<dyn IUnknown>> = None;
        assert_eq!(
            call.query_interface(&bad, &mut slot),
            E_NOINTERFACE,
            "{bad}"
        );
    }
    // One identity behind every interface.
    let sync = call.query::<dyn ISynchronize>().unwrap();
    let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
    assert!(ComPtr::is_same_object(&sync, &call));
    assert!(ComPtr::is_same_object(&cancel, &call));
    // The ISynchronize pointer holds a reference on the call object (aggregated event).
    assert_eq!(call.ref_count(), 3);
    drop((sync, cancel));
    assert_eq!(call.ref_count(), 1);
}

#[test]
fn the_call_objects_handle_is_its_isynchronize_event() {
    let (call, handler, server) = manual_call(FinishMode::Blocking);
    let handle = call
        .query::<dyn ISynchronizeHandle>()
        .unwrap()
        .get_handle()
        .unwrap();
    assert_eq!(call.begin_read(1), S_OK);
    assert!(!handle.is_signaled());
    handler.run_next(&*server).unwrap();
    assert!(handle.is_signaled());
}

// ---------------------------------------------------------------------------------------
// The generic call object on the worker pool (spec 1.2, 3.5).

#[test]
fn a_generic_call_object_runs_the_synchronous_method_on_the_pool() {
    let server =
        SimpleStream::create_on(b"0123456789".to_vec(), Pool::new(2), FinishMode::Blocking);
    let factory = server.query::<dyn ICallFactory>().unwrap();
    let call = create_call_as::<dyn AsyncISimpleStream>(&*factory, &ASYNC_ISIMPLESTREAM).unwrap();
    let sync = sync_of(&call);
    assert_eq!(call.begin_read(4), S_OK);
    assert_eq!(sync.wait(0, INFINITE), S_OK);
    assert_eq!(call.finish_read(), (S_OK, b"0123".to_vec()));
    assert_eq!(call.begin_write(b"ab".to_vec()), S_OK);
    assert_eq!(
        call.finish_write(),
        (S_OK, 2),
        "Finish_ blocks until the pool is done"
    );
    assert_eq!(server.read(10), (S_FALSE, b"6789".to_vec()));
}

#[test]
fn the_pool_has_a_fixed_number_of_threads_whatever_the_number_of_calls() {
    let pool = Pool::new(3);
    let names = Arc::new(parking_lot::Mutex::new(std::collections::HashSet::new()));
    struct NameRecorder(
        Arc<parking_lot::Mutex<std::collections::HashSet<String>>>,
        Arc<Pool>,
    );
    impl CallHandler<ICounterCalls> for NameRecorder {
        fn begin(&self, call: ServerCall<ICounterCalls>, _input: ICounterIn) {
            let names = self.0.clone();
            self.1.execute(move || {
                names
                    .lock()
                    .insert(thread::current().name().unwrap_or("?").to_string());
                call.complete(S_OK, ICounterOut::Ping {});
            });
        }
    }
    let handler: Arc<dyn CallHandler<ICounterCalls>> =
        Arc::new(NameRecorder(names.clone(), pool.clone()));
    let calls: Vec<_> = (0..500)
        .map(|_| counter_call(handler.clone(), FinishMode::Blocking))
        .collect();
    for c in &calls {
        assert_eq!(c.begin_ping(), S_OK);
    }
    for c in &calls {
        assert_eq!(c.finish_ping(), S_OK);
    }
    let names = names.lock();
    assert!(names.len() <= 3, "500 calls ran on {} threads", names.len());
    assert!(names.iter().all(|n| n.starts_with("comasync-worker-")));
}

#[test]
fn a_panic_in_the_synchronous_method_completes_the_call_with_rpc_e_serverfault() {
    struct Panicky;
    impl IUnknown for Panicky {
        fn query_interface(&self, _: &comasync::guid::IID, _: &mut dyn std::any::Any) -> HRESULT {
            E_NOINTERFACE
        }
        fn add_ref(&self) -> u32 {
            1
        }
        fn release(&self) -> u32 {
            1
        }
    }
    impl ICounter for Panicky {
        fn add(&self, _n: u32) -> (HRESULT, Token) {
            panic!("server bug")
        }
        fn ping(&self) -> HRESULT {
            S_OK
        }
    }
    let object: ComPtr<dyn ICounter> = ComPtr::new(Arc::new(Panicky) as Arc<dyn ICounter>);
    let handler = comasync::call::SyncMethodHandler::<ICounterCalls>::new(object, Pool::new(1));
    let call = counter_call(handler, FinishMode::Blocking);
    assert_eq!(call.begin_add(1), S_OK);
    assert_eq!(call.finish_add().0, RPC_E_SERVERFAULT);
    assert_eq!(call.begin_ping(), S_OK, "the worker survived");
    assert_eq!(call.finish_ping(), S_OK);
}

#[test]
fn a_server_that_drops_its_call_completes_it_with_rpc_e_server_died() {
    let handler = ManualHandler::<ICounterCalls>::new();
    let call = counter_call(handler.clone(), FinishMode::Blocking);
    assert_eq!(call.begin_ping(), S_OK);
    drop(handler.take());
    assert_eq!(call.finish_ping(), RPC_E_SERVER_DIED);
}

#[test]
fn an_inline_server_completes_inside_begin() {
    let call = counter_call(
        Arc::new(InlineHandler(|input: ICounterIn| match input {
            ICounterIn::Add { n } => (
                S_OK,
                ICounterOut::Add {
                    token: Token::new(u64::from(n) + 1),
                },
            ),
            ICounterIn::Ping {} => (S_FALSE, ICounterOut::Ping {}),
        })),
        FinishMode::Strict,
    );
    assert_eq!(call.begin_add(41), S_OK);
    assert_eq!(sync_of(&call).wait(0, 0), S_OK);
    assert_eq!(call.finish_add(), (S_OK, Token::new(42)));
    assert_eq!(call.begin_ping(), S_OK);
    assert_eq!(call.finish_ping(), S_FALSE);
}

#[test]
fn call_state_is_observable_for_tests() {
    let handler = ManualHandler::<ICounterCalls>::new();
    let mut slot: Option<ComPtr<dyn IUnknown>> = None;
    let obj = comasync::call::CallObject::<ICounterCalls>::new(
        handler.clone(),
        None,
        FinishMode::Blocking,
    );
    assert_eq!(obj.state(), State::Idle);
    let call: ComPtr<dyn AsyncICounter> = ComPtr::new(obj.clone() as Arc<dyn AsyncICounter>);
    assert_eq!(call.begin_ping(), S_OK);
    assert_eq!(obj.state(), State::Pending);
    handler
        .take()
        .unwrap()
        .0
        .complete(S_OK, ICounterOut::Ping {});
    assert_eq!(obj.state(), State::Signaled { cancelled: false });
    assert_eq!(call.finish_ping(), S_OK);
    assert_eq!(obj.state(), State::Idle);
    drop(call);
    assert_eq!(obj.state(), State::Gone);
    assert_eq!(
        obj.query_interface(&IID_IUnknown, &mut slot),
        RPC_E_DISCONNECTED
    );
}

mod interface_pointer_parameters {
    //! COM's sink pattern: an interface pointer as an in-parameter of an asynchronous method.
    use comasync::call::{create_call_for, FinishMode, ManualHandler, StdCallFactory};
    use comasync::hresult::{HRESULT, S_OK};
    use comasync::sync::{ISynchronize, ManualResetEvent, INFINITE};
    use comasync::unknown::ComPtr;

    /// A service that signals a sink when something happens.
    #[comasync::interface(
        iid = "{5B0E7C1A-2D3F-4A5B-8C6D-7E8F90A1B2C3}",
        async_iid = "{5B0E7C1A-2D3F-4A5B-8C6D-7E8F90A1B2C4}"
    )]
    pub trait INotifier {
        /// Registers `sink`; returns a cookie.
        #[out(cookie)]
        fn advise(&self, sink: ComPtr<dyn ISynchronize>) -> (HRESULT, u32);
    }

    #[test]
    fn an_interface_pointer_can_be_an_in_parameter_and_reaches_the_server() {
        let server = ManualHandler::<INotifierCalls>::new();
        let factory = StdCallFactory::with_handler(server.clone(), FinishMode::Blocking);
        let call = create_call_for::<dyn AsyncINotifier>(&*factory).unwrap();
        let sink = ManualResetEvent::create();
        assert_eq!(call.begin_advise(sink.clone()), S_OK);
        let (pending, input) = server.take().unwrap();
        let INotifierIn::Advise { sink: got } = input;
        assert_eq!(got, sink, "the server got the client's very pointer");
        assert_eq!(got.signal(), S_OK); // the server calls back through it
        assert_eq!(sink.wait(0, INFINITE), S_OK);
        pending.complete(S_OK, INotifierOut::Advise { cookie: 7 });
        assert_eq!(call.finish_advise(), (S_OK, 7));
        drop(got);
        assert_eq!(sink.ref_count(), 1, "no reference leaked through the call");
    }
}
