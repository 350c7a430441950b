//! Unit tests of the reference model `comasync::testing::model`: one test (or a few) per row of
//! spec section 2.1, then the events, `CoWaitForMultipleHandles` and `ISynchronizeContainer` rules,
//! the printing of operations, and a property test of the model's invariants.

use comasync::guid::{
    IID_AsyncIPipeByte, IID_ICallFactory, IID_ICancelMethodCalls, IID_IClientSecurity,
    IID_IPipeByte, IID_ISynchronize, IID_ISynchronizeContainer, IID_ISynchronizeHandle,
    IID_IUnknown,
};
use comasync::hresult::{
    E_FAIL, E_INVALIDARG, E_NOINTERFACE, E_UNEXPECTED, HRESULT, RPC_E_CALL_CANCELED,
    RPC_E_CALL_COMPLETE, RPC_E_CALL_PENDING, RPC_E_DISCONNECTED, RPC_E_NO_SYNC,
    RPC_E_OUT_OF_RESOURCES, RPC_E_TIMEOUT, RPC_S_CALLPENDING, S_OK,
};
use comasync::testing::model::{
    co_wait_for_multiple_handles, method_name, CallModel, ContainerModel, EventClass, EventModel,
    FinishMode, ModelOp, ModelOutcome, OuterScript, SignalPhase, State, World, CONTAINER_CAPACITY,
    COWAIT_WAITALL, INFINITE, MAXIMUM_WAIT_OBJECTS, READ, RPC_C_CANCEL_INFINITE_TIMEOUT, WRITE,
};
use proptest::prelude::*;

const ASYNC: comasync::guid::IID = IID_AsyncIPipeByte;

fn ret(hr: HRESULT) -> ModelOutcome {
    ModelOutcome::Returns(hr)
}

fn call() -> CallModel {
    CallModel::new(ASYNC)
}

fn strict_call() -> CallModel {
    CallModel::with_mode(ASYNC, FinishMode::Strict)
}

/// A call object in `Pending` (method Read).
fn pending() -> CallModel {
    let mut c = call();
    assert_eq!(c.begin(READ), ret(S_OK));
    c
}

/// A call object in `Cancelling` (method Read, `Cancel(5)` in flight).
fn cancelling() -> CallModel {
    let mut c = pending();
    assert_eq!(c.cancel(5), ModelOutcome::CancelInFlight);
    c
}

/// A call object in `Signaled{cancelled: false}` with result `(S_OK, [7, 8])`.
fn signaled() -> CallModel {
    let mut c = pending();
    assert_eq!(
        c.server_complete(S_OK, &[7, 8]),
        ModelOutcome::Delivered {
            cancel_returns: None
        }
    );
    c
}

/// A call object in `Signaled{cancelled: true}`.
fn signaled_cancelled() -> CallModel {
    let mut c = pending();
    assert_eq!(c.cancel(0), ret(S_OK));
    c
}

/// A call object in `Idle` after a finished call.
fn finished() -> CallModel {
    let mut c = signaled();
    assert!(matches!(c.finish(READ), ModelOutcome::Finished { .. }));
    c
}

/// Applies `f` and checks that it changed nothing.
fn unchanged(c: &mut CallModel, f: impl FnOnce(&mut CallModel) -> ModelOutcome) -> ModelOutcome {
    let before = c.clone();
    let out = f(c);
    assert_eq!(
        *c, before,
        "state changed by an operation that should not change it"
    );
    out
}

// ---------------------------------------------------------------------------------------------
// Spec 2.1, rows 5–23
// ---------------------------------------------------------------------------------------------

#[test]
fn row05_begin_in_idle_returns_s_ok_pending_and_resets_event() {
    let mut c = call();
    assert_eq!(c.state(), State::Idle);
    assert!(!c.event_set(), "a fresh call object's event starts clear");
    assert_eq!(c.begin(READ), ret(S_OK));
    assert_eq!(c.state(), State::Pending);
    assert_eq!(c.method(), Some(READ));
    assert!(!c.event_set());

    // After a finished call the event is set; the next Begin_ resets it.
    let mut c = finished();
    assert!(c.event_set());
    assert_eq!(c.begin(WRITE), ret(S_OK));
    assert!(!c.event_set());
    assert_eq!(c.state(), State::Pending);
}

#[test]
fn row06_begin_while_pending_returns_rpc_s_callpending() {
    let mut c = pending();
    assert_eq!(unchanged(&mut c, |c| c.begin(READ)), ret(RPC_S_CALLPENDING));
    assert_eq!(
        unchanged(&mut c, |c| c.begin(WRITE)),
        ret(RPC_S_CALLPENDING)
    );
    // The documentation's name is an alias of the same value (D2).
    assert_eq!(c.begin(READ), ret(RPC_E_CALL_PENDING));
}

#[test]
fn row06_begin_while_cancelling_returns_rpc_s_callpending() {
    let mut c = cancelling();
    assert_eq!(
        unchanged(&mut c, |c| c.begin(WRITE)),
        ret(RPC_S_CALLPENDING)
    );
}

#[test]
fn row06_begin_while_signaled_returns_rpc_s_callpending() {
    let mut c = signaled();
    assert_eq!(unchanged(&mut c, |c| c.begin(READ)), ret(RPC_S_CALLPENDING));
    let mut c = signaled_cancelled();
    assert_eq!(unchanged(&mut c, |c| c.begin(READ)), ret(RPC_S_CALLPENDING));
}

#[test]
fn row06_after_cancel_finish_is_needed_before_begin_succeeds() {
    let mut c = signaled_cancelled();
    assert_eq!(c.begin(READ), ret(RPC_S_CALLPENDING));
    assert_eq!(c.finish(READ), ret(RPC_E_CALL_CANCELED));
    assert_eq!(c.begin(READ), ret(S_OK));
}

#[test]
fn row07_server_complete_signals_the_pending_call() {
    let mut c = pending();
    assert_eq!(
        c.server_complete(E_FAIL, &[1]),
        ModelOutcome::Delivered {
            cancel_returns: None
        }
    );
    assert_eq!(c.state(), State::Signaled { cancelled: false });
    assert!(c.event_set());
    assert_eq!(c.result(), Some(&(E_FAIL, vec![1])));
    assert_eq!(c.wait(0, 0), ret(S_OK));
    assert_eq!(c.wait(0, INFINITE), ret(S_OK));
}

#[test]
fn row08_wait_while_pending_times_out_with_rpc_s_callpending() {
    let mut c = pending();
    assert_eq!(unchanged(&mut c, |c| c.wait(0, 0)), ret(RPC_S_CALLPENDING));
    assert_eq!(
        unchanged(&mut c, |c| c.wait(0, 1000)),
        ret(RPC_S_CALLPENDING)
    );
    assert_eq!(
        unchanged(&mut c, |c| c.wait(0, INFINITE)),
        ModelOutcome::Blocks
    );
}

#[test]
fn row09_wait_on_signaled_returns_s_ok_every_time() {
    let mut c = signaled();
    for _ in 0..3 {
        assert_eq!(unchanged(&mut c, |c| c.wait(0, 0)), ret(S_OK));
    }
    let mut c = signaled_cancelled();
    assert_eq!(unchanged(&mut c, |c| c.wait(0, 0)), ret(S_OK));
}

#[test]
fn row10_wait_on_fresh_idle_times_out_and_infinite_blocks() {
    let mut c = call();
    assert_eq!(unchanged(&mut c, |c| c.wait(0, 0)), ret(RPC_S_CALLPENDING));
    assert_eq!(unchanged(&mut c, |c| c.wait(0, 50)), ret(RPC_S_CALLPENDING));
    assert_eq!(
        unchanged(&mut c, |c| c.wait(0, INFINITE)),
        ModelOutcome::Blocks
    );
}

#[test]
fn row11_wait_after_finish_returns_s_ok() {
    let mut c = finished();
    assert_eq!(c.state(), State::Idle);
    assert_eq!(unchanged(&mut c, |c| c.wait(0, 0)), ret(S_OK));
    assert_eq!(unchanged(&mut c, |c| c.wait(0, INFINITE)), ret(S_OK));
}

#[test]
fn row12_finish_on_signaled_returns_server_result_and_outs() {
    let mut c = signaled();
    assert_eq!(
        c.finish(READ),
        ModelOutcome::Finished {
            hr: S_OK,
            outs: vec![7, 8]
        }
    );
    assert_eq!(c.state(), State::Idle);
    assert_eq!(c.method(), None);
    assert!(c.event_set(), "Finish_ leaves the manual-reset event set");

    // A failing server method: Finish_ returns its HRESULT, not a Finish_ failure.
    let mut c = pending();
    let _ = c.server_complete(RPC_E_CALL_COMPLETE, &[]);
    assert_eq!(
        c.finish(READ),
        ModelOutcome::Finished {
            hr: RPC_E_CALL_COMPLETE,
            outs: vec![]
        }
    );
}

#[test]
fn row13_finish_while_pending_blocks() {
    let mut c = pending();
    assert_eq!(unchanged(&mut c, |c| c.finish(READ)), ModelOutcome::Blocks);
    // Once the server completes, Finish_ returns as in row 12.
    let _ = c.server_complete(S_OK, &[3]);
    assert_eq!(
        c.finish(READ),
        ModelOutcome::Finished {
            hr: S_OK,
            outs: vec![3]
        }
    );
}

#[test]
fn row13_finish_while_cancelling_blocks() {
    let mut c = cancelling();
    assert_eq!(unchanged(&mut c, |c| c.finish(READ)), ModelOutcome::Blocks);
}

#[test]
fn row13_strict_finish_while_pending_returns_rpc_s_callpending() {
    let mut c = strict_call();
    assert_eq!(c.mode(), FinishMode::Strict);
    let _ = c.begin(READ);
    assert_eq!(
        unchanged(&mut c, |c| c.finish(READ)),
        ret(RPC_S_CALLPENDING)
    );
    let _ = c.cancel(2);
    assert_eq!(
        unchanged(&mut c, |c| c.finish(READ)),
        ret(RPC_S_CALLPENDING)
    );
}

#[test]
fn row14_finish_in_idle_returns_rpc_e_call_complete() {
    let mut c = call();
    assert_eq!(
        unchanged(&mut c, |c| c.finish(READ)),
        ret(RPC_E_CALL_COMPLETE)
    );
    let mut c = finished();
    assert_eq!(
        unchanged(&mut c, |c| c.finish(READ)),
        ret(RPC_E_CALL_COMPLETE)
    );
    // Whatever the method.
    assert_eq!(
        unchanged(&mut c, |c| c.finish(WRITE)),
        ret(RPC_E_CALL_COMPLETE)
    );
}

#[test]
fn row15_cancel_zero_seconds_completes_locally_with_s_ok() {
    let mut c = pending();
    assert_eq!(c.cancel(0), ret(S_OK));
    assert_eq!(c.state(), State::Signaled { cancelled: true });
    assert!(c.event_set());
    assert!(c.is_cancelled());
    assert_eq!(c.cancel_in_flight(), None);
    assert_eq!(c.test_cancel(), ret(RPC_E_CALL_CANCELED));
}

#[test]
fn row15_cancel_then_server_in_time_returns_rpc_e_call_complete() {
    let mut c = pending();
    assert_eq!(c.cancel(10), ModelOutcome::CancelInFlight);
    assert_eq!(c.state(), State::Cancelling);
    assert_eq!(c.cancel_in_flight(), Some(10));
    assert!(!c.event_set());
    assert_eq!(c.test_cancel(), ret(RPC_E_CALL_CANCELED));
    assert_eq!(
        c.server_complete(RPC_E_CALL_CANCELED, &[4]),
        ModelOutcome::Delivered {
            cancel_returns: Some(RPC_E_CALL_COMPLETE)
        }
    );
    assert_eq!(c.state(), State::Signaled { cancelled: false });
    assert!(c.event_set());
    // Finish_ gives the server's result, whatever it is.
    assert_eq!(
        c.finish(READ),
        ModelOutcome::Finished {
            hr: RPC_E_CALL_CANCELED,
            outs: vec![4]
        }
    );
    // The flag stays set until the next Begin_.
    assert_eq!(c.test_cancel(), ret(RPC_E_CALL_CANCELED));
}

#[test]
fn row15_cancel_timeout_completes_locally_with_s_ok() {
    let mut c = pending();
    assert_eq!(c.cancel(1), ModelOutcome::CancelInFlight);
    assert_eq!(c.cancel_timeout(), ModelOutcome::CancelReturns(S_OK));
    assert_eq!(c.state(), State::Signaled { cancelled: true });
    assert!(c.event_set());
    assert_eq!(c.wait(0, 0), ret(S_OK));
    assert_eq!(c.finish(READ), ret(RPC_E_CALL_CANCELED));
}

#[test]
fn row15_infinite_cancel_never_times_out() {
    let mut c = pending();
    assert_eq!(
        c.cancel(RPC_C_CANCEL_INFINITE_TIMEOUT),
        ModelOutcome::CancelInFlight
    );
    assert!(matches!(
        unchanged(&mut c, |c| c.cancel_timeout()),
        ModelOutcome::Invalid(_)
    ));
    assert_eq!(
        c.server_complete(S_OK, &[]),
        ModelOutcome::Delivered {
            cancel_returns: Some(RPC_E_CALL_COMPLETE)
        }
    );
}

#[test]
fn row16_cancel_while_cancelling_or_cancelled_returns_rpc_e_call_canceled() {
    let mut c = cancelling();
    assert_eq!(unchanged(&mut c, |c| c.cancel(0)), ret(RPC_E_CALL_CANCELED));
    assert_eq!(unchanged(&mut c, |c| c.cancel(3)), ret(RPC_E_CALL_CANCELED));
    let mut c = signaled_cancelled();
    assert_eq!(unchanged(&mut c, |c| c.cancel(0)), ret(RPC_E_CALL_CANCELED));
}

#[test]
fn row17_cancel_on_signaled_normal_or_idle_returns_rpc_e_call_complete() {
    let mut c = signaled();
    assert_eq!(unchanged(&mut c, |c| c.cancel(0)), ret(RPC_E_CALL_COMPLETE));
    assert_eq!(
        c.test_cancel(),
        ret(RPC_S_CALLPENDING),
        "a late Cancel marks nothing"
    );
    let mut c = call();
    assert_eq!(unchanged(&mut c, |c| c.cancel(5)), ret(RPC_E_CALL_COMPLETE));
    let mut c = finished();
    assert_eq!(unchanged(&mut c, |c| c.cancel(0)), ret(RPC_E_CALL_COMPLETE));
}

#[test]
fn row18_finish_on_cancelled_returns_rpc_e_call_canceled_and_drops_late_result() {
    let mut c = signaled_cancelled();
    assert_eq!(
        unchanged(&mut c, |c| c.server_complete(S_OK, &[9])),
        ModelOutcome::Dropped
    );
    assert_eq!(c.finish(READ), ret(RPC_E_CALL_CANCELED));
    assert_eq!(c.state(), State::Idle);
    assert_eq!(c.result(), None);
}

#[test]
fn row19_test_cancel_reports_the_cancelled_flag() {
    let mut c = call();
    assert_eq!(c.test_cancel(), ret(RPC_S_CALLPENDING));
    let _ = c.begin(READ);
    assert_eq!(c.test_cancel(), ret(RPC_S_CALLPENDING));
    let _ = c.cancel(0);
    assert_eq!(c.test_cancel(), ret(RPC_E_CALL_CANCELED));
    let _ = c.finish(READ);
    assert_eq!(c.test_cancel(), ret(RPC_E_CALL_CANCELED));
    let _ = c.begin(READ);
    assert_eq!(
        c.test_cancel(),
        ret(RPC_S_CALLPENDING),
        "Begin_ clears the flag"
    );
    let _ = c.release();
    assert_eq!(c.test_cancel(), ret(RPC_E_DISCONNECTED));
}

#[test]
fn row20_release_while_pending_or_cancelling_abandons_the_call() {
    let mut c = pending();
    assert_eq!(c.release(), ModelOutcome::Released { abandoned: true });
    assert_eq!(c.state(), State::Gone);
    assert_eq!(c.server_complete(S_OK, &[1]), ModelOutcome::Dropped);

    let mut c = cancelling();
    assert_eq!(c.release(), ModelOutcome::Released { abandoned: true });
    assert_eq!(c.cancel_in_flight(), None);
    assert!(matches!(c.cancel_timeout(), ModelOutcome::Invalid(_)));
}

#[test]
fn row21_release_when_signaled_discards_results() {
    let mut c = signaled();
    assert_eq!(c.release(), ModelOutcome::Released { abandoned: true });
    assert_eq!(c.state(), State::Gone);
    assert_eq!(c.result(), None);
    assert_eq!(c.finish(READ), ret(RPC_E_DISCONNECTED));

    let mut c = finished();
    assert_eq!(c.release(), ModelOutcome::Released { abandoned: false });
}

#[test]
fn row22_begin_again_after_finish_reuses_the_call_object() {
    let mut c = finished();
    assert_eq!(c.begin(WRITE), ret(S_OK));
    assert_eq!(c.method(), Some(WRITE));
    let _ = c.server_complete(S_OK, &[2]);
    assert_eq!(
        c.finish(WRITE),
        ModelOutcome::Finished {
            hr: S_OK,
            outs: vec![2]
        }
    );
}

#[test]
fn row23_query_interface_answers_the_call_object_interfaces() {
    let mut c = pending();
    for iid in [
        ASYNC,
        IID_IUnknown,
        IID_ISynchronize,
        IID_ISynchronizeHandle,
        IID_ICancelMethodCalls,
    ] {
        assert_eq!(unchanged(&mut c, |c| c.query_interface(&iid)), ret(S_OK));
    }
    for iid in [
        IID_IPipeByte,
        IID_ICallFactory,
        IID_ISynchronizeContainer,
        IID_IClientSecurity,
    ] {
        assert_eq!(c.query_interface(&iid), ret(E_NOINTERFACE));
    }
    let _ = c.release();
    assert_eq!(c.query_interface(&IID_IUnknown), ret(RPC_E_DISCONNECTED));
}

// ---------------------------------------------------------------------------------------------
// Further call-object rules
// ---------------------------------------------------------------------------------------------

#[test]
fn finish_of_another_method_while_in_progress_returns_e_unexpected() {
    for mut c in [pending(), cancelling(), signaled(), signaled_cancelled()] {
        assert_eq!(unchanged(&mut c, |c| c.finish(WRITE)), ret(E_UNEXPECTED));
    }
    let mut c = strict_call();
    let _ = c.begin(READ);
    assert_eq!(unchanged(&mut c, |c| c.finish(WRITE)), ret(E_UNEXPECTED));
}

#[test]
fn released_call_object_returns_rpc_e_disconnected() {
    let mut c = call();
    let _ = c.release();
    assert_eq!(c.begin(READ), ret(RPC_E_DISCONNECTED));
    assert_eq!(c.finish(READ), ret(RPC_E_DISCONNECTED));
    assert_eq!(c.cancel(0), ret(RPC_E_DISCONNECTED));
    assert_eq!(c.test_cancel(), ret(RPC_E_DISCONNECTED));
    assert_eq!(c.wait(0, 0), ret(RPC_E_DISCONNECTED));
    assert_eq!(c.wait(0x100, INFINITE), ret(RPC_E_DISCONNECTED));
    assert_eq!(c.query_interface(&ASYNC), ret(RPC_E_DISCONNECTED));
    assert!(matches!(c.release(), ModelOutcome::Invalid(_)));
    assert_eq!(c.state(), State::Gone);
}

#[test]
fn call_wait_with_unknown_flags_returns_e_invalidarg() {
    let mut c = signaled();
    assert_eq!(unchanged(&mut c, |c| c.wait(0x20, 0)), ret(E_INVALIDARG));
    assert_eq!(
        unchanged(&mut c, |c| c.wait(0x8000_0000, 0)),
        ret(E_INVALIDARG)
    );
}

#[test]
fn call_wait_accepts_cowait_waitall_on_its_single_handle() {
    let c = signaled();
    assert_eq!(c.wait(COWAIT_WAITALL, INFINITE), ret(S_OK));
    assert_eq!(c.wait(0x1F, 0), ret(S_OK));
}

#[test]
fn server_complete_with_no_call_waiting_is_dropped() {
    for mut c in [call(), finished(), signaled(), signaled_cancelled()] {
        assert_eq!(
            unchanged(&mut c, |c| c.server_complete(S_OK, &[])),
            ModelOutcome::Dropped
        );
    }
}

#[test]
fn cancel_timeout_without_cancel_in_flight_is_invalid() {
    for mut c in [call(), pending(), signaled(), signaled_cancelled()] {
        assert!(matches!(
            unchanged(&mut c, |c| c.cancel_timeout()),
            ModelOutcome::Invalid(_)
        ));
    }
}

#[test]
fn call_model_step_is_pure_and_matches_apply() {
    let c = pending();
    let (out, next) = c.step(&ModelOp::Cancel(0));
    assert_eq!(out, ret(S_OK));
    assert_eq!(c.state(), State::Pending);
    assert_eq!(next.state(), State::Signaled { cancelled: true });
    let mut c2 = call();
    assert!(matches!(
        c2.apply(&ModelOp::EventSignal(0)),
        ModelOutcome::Invalid(_)
    ));
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

#[test]
fn event_starts_clear_and_wait_times_out() {
    for kind in [EventClass::ManualReset, EventClass::Auto] {
        let mut e = EventModel::new(kind);
        assert_eq!(e.kind(), kind);
        assert!(!e.is_set());
        assert_eq!(e.wait(0, 0), ret(RPC_S_CALLPENDING));
        assert_eq!(e.wait(0, 100), ret(RPC_S_CALLPENDING));
        assert_eq!(e.wait(0, INFINITE), ModelOutcome::Blocks);
    }
}

#[test]
fn manual_reset_event_wait_leaves_it_set() {
    let mut e = EventModel::new(EventClass::ManualReset);
    assert_eq!(e.signal(), ret(S_OK));
    assert_eq!(e.wait(0, 0), ret(S_OK));
    assert_eq!(e.wait(0, INFINITE), ret(S_OK));
    assert!(e.is_set());
    assert_eq!(e.reset(), ret(S_OK));
    assert_eq!(e.wait(0, 0), ret(RPC_S_CALLPENDING));
}

#[test]
fn std_event_wait_consumes_the_signal() {
    let mut e = EventModel::new(EventClass::Auto);
    assert_eq!(e.signal(), ret(S_OK));
    assert_eq!(e.signal(), ret(S_OK));
    assert_eq!(e.wait(0, 0), ret(S_OK));
    assert!(!e.is_set());
    assert_eq!(e.wait(0, 0), ret(RPC_S_CALLPENDING));
}

#[test]
fn event_reset_on_clear_event_returns_s_ok() {
    let mut e = EventModel::new(EventClass::Auto);
    assert_eq!(e.reset(), ret(S_OK));
    assert!(!e.is_set());
}

#[test]
fn event_wait_with_unknown_flags_returns_e_invalidarg_and_consumes_nothing() {
    let mut e = EventModel::new(EventClass::Auto);
    let _ = e.signal();
    assert_eq!(e.wait(0x40, 0), ret(E_INVALIDARG));
    assert!(e.is_set());
    assert_eq!(e.wait(COWAIT_WAITALL, 0), ret(S_OK));
}

// ---------------------------------------------------------------------------------------------
// CoWaitForMultipleHandles
// ---------------------------------------------------------------------------------------------

fn events(kinds: &[EventClass]) -> Vec<EventModel> {
    kinds.iter().map(|&k| EventModel::new(k)).collect()
}

fn co_wait(hr: HRESULT, index: Option<u32>) -> ModelOutcome {
    ModelOutcome::CoWait { hr, index }
}

#[test]
fn co_wait_missing_index_returns_e_invalidarg_and_writes_nothing() {
    let mut ev = events(&[EventClass::ManualReset]);
    let _ = ev[0].signal();
    let out = co_wait_for_multiple_handles(&mut ev, 0, 0, Some(&[0]), false);
    assert_eq!(out, co_wait(E_INVALIDARG, None));
    let out = co_wait_for_multiple_handles(&mut ev, 0, 0, None, false);
    assert_eq!(out, co_wait(E_INVALIDARG, None));
}

#[test]
fn co_wait_missing_handles_returns_e_invalidarg_with_index_zero() {
    let mut ev = events(&[]);
    let out = co_wait_for_multiple_handles(&mut ev, 0, 0, None, true);
    assert_eq!(out, co_wait(E_INVALIDARG, Some(0)));
}

#[test]
fn co_wait_unknown_flags_returns_e_invalidarg() {
    let mut ev = events(&[EventClass::ManualReset]);
    let _ = ev[0].signal();
    let out = co_wait_for_multiple_handles(&mut ev, 0x20, 0, Some(&[0]), true);
    assert_eq!(out, co_wait(E_INVALIDARG, Some(0)));
    // Checked before the handle count.
    let out = co_wait_for_multiple_handles(&mut ev, 0x20, 0, Some(&[]), true);
    assert_eq!(out, co_wait(E_INVALIDARG, Some(0)));
}

#[test]
fn co_wait_zero_handles_returns_rpc_e_no_sync() {
    let mut ev = events(&[]);
    let out = co_wait_for_multiple_handles(&mut ev, 0, INFINITE, Some(&[]), true);
    assert_eq!(out, co_wait(RPC_E_NO_SYNC, Some(0)));
}

#[test]
fn co_wait_more_than_64_handles_returns_e_invalidarg() {
    let mut ev = events(&[EventClass::ManualReset]);
    let _ = ev[0].signal();
    let many = vec![0; MAXIMUM_WAIT_OBJECTS + 1];
    let out = co_wait_for_multiple_handles(&mut ev, 0, 0, Some(&many), true);
    assert_eq!(out, co_wait(E_INVALIDARG, Some(0)));
    let max = vec![0; MAXIMUM_WAIT_OBJECTS];
    let out = co_wait_for_multiple_handles(&mut ev, 0, 0, Some(&max), true);
    assert_eq!(out, co_wait(S_OK, Some(0)));
}

#[test]
fn co_wait_waitall_with_duplicate_handle_returns_e_invalidarg() {
    let mut ev = events(&[EventClass::ManualReset, EventClass::ManualReset]);
    let _ = ev[0].signal();
    let _ = ev[1].signal();
    let out = co_wait_for_multiple_handles(&mut ev, COWAIT_WAITALL, 0, Some(&[0, 1, 0]), true);
    assert_eq!(out, co_wait(E_INVALIDARG, Some(0)));
    // Wait-any accepts duplicates.
    let out = co_wait_for_multiple_handles(&mut ev, 0, 0, Some(&[1, 1]), true);
    assert_eq!(out, co_wait(S_OK, Some(0)));
}

#[test]
fn co_wait_any_returns_lowest_signaled_index_and_consumes_only_it() {
    let mut ev = events(&[EventClass::Auto, EventClass::Auto, EventClass::Auto]);
    let _ = ev[1].signal();
    let _ = ev[2].signal();
    let out = co_wait_for_multiple_handles(&mut ev, 0, 0, Some(&[0, 2, 1]), true);
    assert_eq!(out, co_wait(S_OK, Some(1)));
    assert!(!ev[2].is_set(), "the returned auto-reset event is consumed");
    assert!(ev[1].is_set(), "the other signaled event is not");
    let out = co_wait_for_multiple_handles(&mut ev, 0, 0, Some(&[0, 2, 1]), true);
    assert_eq!(out, co_wait(S_OK, Some(2)));
    let out = co_wait_for_multiple_handles(&mut ev, 0, 10, Some(&[0, 2, 1]), true);
    assert_eq!(out, co_wait(RPC_S_CALLPENDING, Some(0)));
}

#[test]
fn co_wait_manual_reset_handle_stays_signaled() {
    let mut ev = events(&[EventClass::ManualReset]);
    let _ = ev[0].signal();
    for _ in 0..2 {
        let out = co_wait_for_multiple_handles(&mut ev, 0, 0, Some(&[0]), true);
        assert_eq!(out, co_wait(S_OK, Some(0)));
    }
}

#[test]
fn co_wait_waitall_all_signaled_returns_index_zero_and_consumes_every_auto_event() {
    let mut ev = events(&[EventClass::Auto, EventClass::ManualReset, EventClass::Auto]);
    for e in &mut ev {
        let _ = e.signal();
    }
    let out = co_wait_for_multiple_handles(&mut ev, COWAIT_WAITALL, 0, Some(&[2, 1, 0]), true);
    assert_eq!(out, co_wait(S_OK, Some(0)));
    assert!(!ev[0].is_set());
    assert!(ev[1].is_set());
    assert!(!ev[2].is_set());
}

#[test]
fn co_wait_waitall_partly_signaled_times_out_and_consumes_nothing() {
    let mut ev = events(&[EventClass::Auto, EventClass::Auto]);
    let _ = ev[0].signal();
    let out = co_wait_for_multiple_handles(&mut ev, COWAIT_WAITALL, 0, Some(&[0, 1]), true);
    assert_eq!(out, co_wait(RPC_S_CALLPENDING, Some(0)));
    assert!(ev[0].is_set());
    let out = co_wait_for_multiple_handles(&mut ev, COWAIT_WAITALL, INFINITE, Some(&[0, 1]), true);
    assert_eq!(out, ModelOutcome::Blocks);
}

#[test]
fn co_wait_infinite_with_nothing_signaled_blocks() {
    let mut ev = events(&[EventClass::ManualReset]);
    let out = co_wait_for_multiple_handles(&mut ev, 0, INFINITE, Some(&[0]), true);
    assert_eq!(out, ModelOutcome::Blocks);
}

#[test]
fn co_wait_unknown_event_index_is_invalid() {
    let mut ev = events(&[EventClass::ManualReset]);
    let out = co_wait_for_multiple_handles(&mut ev, 0, 0, Some(&[1]), true);
    assert!(matches!(out, ModelOutcome::Invalid(_)));
}

// ---------------------------------------------------------------------------------------------
// ISynchronizeContainer
// ---------------------------------------------------------------------------------------------

fn wait_multiple(hr: HRESULT, position: Option<usize>) -> ModelOutcome {
    ModelOutcome::WaitMultiple { hr, position }
}

#[test]
fn container_add_null_returns_e_invalidarg() {
    let mut c = ContainerModel::new();
    assert_eq!(c.add_synchronize(None, 1), ret(E_INVALIDARG));
    assert!(c.objects().is_empty());
}

#[test]
fn container_holds_63_objects_then_returns_rpc_e_out_of_resources() {
    let mut c = ContainerModel::new();
    for _ in 0..CONTAINER_CAPACITY {
        assert_eq!(c.add_synchronize(Some(0), 1), ret(S_OK));
    }
    assert_eq!(c.add_synchronize(Some(0), 1), ret(RPC_E_OUT_OF_RESOURCES));
    assert_eq!(c.objects().len(), 63);
    // NULL is still E_INVALIDARG when full.
    assert_eq!(c.add_synchronize(None, 1), ret(E_INVALIDARG));
}

#[test]
fn container_add_unknown_event_is_invalid() {
    let mut c = ContainerModel::new();
    assert!(matches!(
        c.add_synchronize(Some(2), 2),
        ModelOutcome::Invalid(_)
    ));
}

#[test]
fn container_wait_multiple_missing_out_returns_e_invalidarg() {
    let mut ev = events(&[EventClass::ManualReset]);
    let _ = ev[0].signal();
    let mut c = ContainerModel::new();
    let _ = c.add_synchronize(Some(0), 1);
    assert_eq!(
        c.wait_multiple(&mut ev, 0, 0, false),
        wait_multiple(E_INVALIDARG, None)
    );
    // Checked before emptiness.
    let empty = ContainerModel::new();
    assert_eq!(
        empty.wait_multiple(&mut ev, 0, 0, false),
        wait_multiple(E_INVALIDARG, None)
    );
}

#[test]
fn container_wait_multiple_waitall_or_unknown_flags_returns_e_invalidarg() {
    let mut ev = events(&[EventClass::ManualReset]);
    let _ = ev[0].signal();
    let mut c = ContainerModel::new();
    let _ = c.add_synchronize(Some(0), 1);
    assert_eq!(
        c.wait_multiple(&mut ev, COWAIT_WAITALL, 0, true),
        wait_multiple(E_INVALIDARG, None)
    );
    assert_eq!(
        c.wait_multiple(&mut ev, 0x40, 0, true),
        wait_multiple(E_INVALIDARG, None)
    );
    assert_eq!(
        ContainerModel::new().wait_multiple(&mut ev, COWAIT_WAITALL, 0, true),
        wait_multiple(E_INVALIDARG, None)
    );
}

#[test]
fn container_wait_multiple_empty_returns_rpc_e_no_sync() {
    let mut ev = events(&[]);
    assert_eq!(
        ContainerModel::new().wait_multiple(&mut ev, 0, INFINITE, true),
        wait_multiple(RPC_E_NO_SYNC, None)
    );
}

#[test]
fn container_wait_multiple_returns_first_added_signaled_object() {
    let mut ev = events(&[EventClass::Auto, EventClass::ManualReset, EventClass::Auto]);
    let mut c = ContainerModel::new();
    for e in [2, 0, 1] {
        assert_eq!(c.add_synchronize(Some(e), 3), ret(S_OK));
    }
    let _ = ev[0].signal();
    let _ = ev[1].signal();
    // Position 1 (event 0) was added before position 2 (event 1).
    assert_eq!(
        c.wait_multiple(&mut ev, 0, 0, true),
        wait_multiple(S_OK, Some(1))
    );
    assert!(!ev[0].is_set(), "the auto-reset object is consumed");
    assert_eq!(c.objects(), &[2, 0, 1], "it stays in the container");
    assert_eq!(
        c.wait_multiple(&mut ev, 0, 0, true),
        wait_multiple(S_OK, Some(2))
    );
    assert!(ev[1].is_set(), "a manual-reset object stays signaled");
}

#[test]
fn container_wait_multiple_timeout_returns_rpc_e_timeout_and_infinite_blocks() {
    let mut ev = events(&[EventClass::ManualReset]);
    let mut c = ContainerModel::new();
    let _ = c.add_synchronize(Some(0), 1);
    assert_eq!(
        c.wait_multiple(&mut ev, 0, 0, true),
        wait_multiple(RPC_E_TIMEOUT, None)
    );
    assert_eq!(
        c.wait_multiple(&mut ev, 0, 100, true),
        wait_multiple(RPC_E_TIMEOUT, None)
    );
    assert_eq!(
        c.wait_multiple(&mut ev, 0, INFINITE, true),
        ModelOutcome::Blocks
    );
}

// ---------------------------------------------------------------------------------------------
// World, printing, invariants
// ---------------------------------------------------------------------------------------------

#[test]
fn world_drives_call_events_and_container() {
    let mut w = World::new(
        ASYNC,
        FinishMode::Blocking,
        &[EventClass::ManualReset, EventClass::Auto],
    );
    let outs = w.run(&[
        ModelOp::Begin(READ),
        ModelOp::Cancel(2),
        ModelOp::CancelTimeout,
        ModelOp::Finish(READ),
        ModelOp::EventSignal(1),
        ModelOp::AddSynchronize(Some(0)),
        ModelOp::AddSynchronize(Some(1)),
        ModelOp::WaitMultiple {
            flags: 0,
            timeout: 0,
            out_present: true,
        },
        ModelOp::CoWait {
            flags: 0,
            timeout: 0,
            handles: Some(vec![1]),
            index_present: true,
        },
        ModelOp::EventWait {
            event: 5,
            flags: 0,
            timeout: 0,
        },
    ]);
    assert_eq!(
        outs,
        vec![
            ret(S_OK),
            ModelOutcome::CancelInFlight,
            ModelOutcome::CancelReturns(S_OK),
            ret(RPC_E_CALL_CANCELED),
            ret(S_OK),
            ret(S_OK),
            ret(S_OK),
            wait_multiple(S_OK, Some(1)),
            co_wait(RPC_S_CALLPENDING, Some(0)),
            ModelOutcome::Invalid("unknown event index"),
        ]
    );
    assert_eq!(w.container().objects(), &[0, 1]);
    assert_eq!(w.event(1).map(EventModel::is_set), Some(false));
    assert!(w.check_invariants().is_ok());
}

#[test]
fn world_step_is_pure() {
    let w = World::new(ASYNC, FinishMode::Strict, &[EventClass::Auto]);
    let (out, next) = w.step(&ModelOp::Begin(WRITE));
    assert_eq!(out, ret(S_OK));
    assert_eq!(w.call().state(), State::Idle);
    assert_eq!(next.call().state(), State::Pending);
    assert_eq!(next.events().len(), 1);
}

#[test]
fn ops_print_as_com_calls() {
    let cases: Vec<(ModelOp, &str)> = vec![
        (ModelOp::Begin(READ), "Begin_Read"),
        (ModelOp::Finish(WRITE), "Finish_Write"),
        (ModelOp::Begin(7), "Begin_Method7"),
        (ModelOp::Cancel(1), "Cancel(1)"),
        (
            ModelOp::Cancel(RPC_C_CANCEL_INFINITE_TIMEOUT),
            "Cancel(RPC_C_CANCEL_INFINITE_TIMEOUT)",
        ),
        (ModelOp::CancelTimeout, "CancelTimeout"),
        (ModelOp::TestCancel, "TestCancel()"),
        (
            ModelOp::Wait {
                flags: 0,
                timeout: 0,
            },
            "Wait(0, 0)",
        ),
        (
            ModelOp::Wait {
                flags: 1,
                timeout: INFINITE,
            },
            "Wait(1, INFINITE)",
        ),
        (
            ModelOp::ServerComplete {
                hr: E_FAIL,
                outs: vec![1, 2],
            },
            "ServerComplete(E_FAIL, [1, 2])",
        ),
        (
            ModelOp::QueryInterface(IID_ISynchronize),
            "QueryInterface(IID_ISynchronize)",
        ),
        (ModelOp::Release, "Release()"),
        (ModelOp::EventSignal(2), "event[2].Signal()"),
        (ModelOp::EventReset(0), "event[0].Reset()"),
        (
            ModelOp::EventWait {
                event: 1,
                flags: 0,
                timeout: 10,
            },
            "event[1].Wait(0, 10)",
        ),
        (
            ModelOp::CoWait {
                flags: 1,
                timeout: 0,
                handles: Some(vec![0, 1]),
                index_present: true,
            },
            "CoWaitForMultipleHandles(1, 0, 2, [0, 1], &index)",
        ),
        (
            ModelOp::CoWait {
                flags: 0,
                timeout: INFINITE,
                handles: None,
                index_present: false,
            },
            "CoWaitForMultipleHandles(0, INFINITE, 0, NULL, NULL)",
        ),
        (
            ModelOp::AddSynchronize(Some(3)),
            "container.AddSynchronize(event[3])",
        ),
        (
            ModelOp::AddSynchronize(None),
            "container.AddSynchronize(NULL)",
        ),
        (
            ModelOp::WaitMultiple {
                flags: 0,
                timeout: 5,
                out_present: true,
            },
            "container.WaitMultiple(0, 5, &pSync)",
        ),
    ];
    for (op, text) in cases {
        assert_eq!(op.to_string(), text);
        assert_eq!(format!("{op:?}"), text, "Debug prints the same line");
    }
    assert_eq!(method_name(READ), "Read");
    assert_eq!(
        format!("{:?}", vec![ModelOp::Begin(READ), ModelOp::TestCancel]),
        "[Begin_Read, TestCancel()]"
    );
}

#[test]
fn outcome_hr_and_blocks_helpers() {
    assert_eq!(ret(S_OK).hr(), Some(S_OK));
    assert_eq!(
        ModelOutcome::Finished {
            hr: E_FAIL,
            outs: vec![]
        }
        .hr(),
        Some(E_FAIL)
    );
    assert_eq!(ModelOutcome::CancelReturns(S_OK).hr(), Some(S_OK));
    assert_eq!(co_wait(RPC_E_NO_SYNC, Some(0)).hr(), Some(RPC_E_NO_SYNC));
    assert_eq!(ModelOutcome::Blocks.hr(), None);
    assert_eq!(ModelOutcome::Dropped.hr(), None);
    assert!(ModelOutcome::Blocks.blocks());
    assert!(!ret(S_OK).blocks());
}

fn arb_timeout() -> impl Strategy<Value = u32> {
    prop_oneof![Just(0), Just(10), Just(INFINITE)]
}

fn arb_op() -> impl Strategy<Value = ModelOp> {
    prop_oneof![
        1 => Just(ModelOp::Release),
        30 => arb_live_op(),
    ]
}

fn arb_live_op() -> impl Strategy<Value = ModelOp> {
    let event = 0usize..3;
    prop_oneof![
        (0usize..2).prop_map(ModelOp::Begin),
        (0usize..2).prop_map(ModelOp::Finish),
        (
            prop_oneof![Just(S_OK), Just(E_FAIL)],
            proptest::collection::vec(any::<u32>(), 0..2)
        )
            .prop_map(|(hr, outs)| ModelOp::ServerComplete { hr, outs }),
        prop_oneof![Just(0u32), Just(1), Just(RPC_C_CANCEL_INFINITE_TIMEOUT)]
            .prop_map(ModelOp::Cancel),
        Just(ModelOp::CancelTimeout),
        Just(ModelOp::TestCancel),
        (prop_oneof![Just(0u32), Just(1), Just(0x20)], arb_timeout())
            .prop_map(|(flags, timeout)| ModelOp::Wait { flags, timeout }),
        prop_oneof![Just(ASYNC), Just(IID_ISynchronize), Just(IID_IPipeByte)]
            .prop_map(ModelOp::QueryInterface),
        event.clone().prop_map(ModelOp::EventSignal),
        event.clone().prop_map(ModelOp::EventReset),
        (
            event.clone(),
            prop_oneof![Just(0u32), Just(1)],
            arb_timeout()
        )
            .prop_map(|(event, flags, timeout)| ModelOp::EventWait {
                event,
                flags,
                timeout
            }),
        (
            prop_oneof![Just(0u32), Just(1), Just(0x20)],
            arb_timeout(),
            proptest::option::weighted(0.9, proptest::collection::vec(0usize..3, 0..4)),
            proptest::bool::weighted(0.9),
        )
            .prop_map(|(flags, timeout, handles, index_present)| ModelOp::CoWait {
                flags,
                timeout,
                handles,
                index_present,
            }),
        proptest::option::weighted(0.9, 0usize..3).prop_map(ModelOp::AddSynchronize),
        (
            prop_oneof![Just(0u32), Just(1)],
            arb_timeout(),
            proptest::bool::weighted(0.9)
        )
            .prop_map(|(flags, timeout, out_present)| ModelOp::WaitMultiple {
                flags,
                timeout,
                out_present,
            }),
    ]
}

proptest! {
    /// Every reachable state satisfies the invariants; `Blocks` and `Invalid` change nothing;
    /// `step` agrees with `apply`.
    #[test]
    fn invariants_hold_along_any_operation_sequence(
        strict in any::<bool>(),
        ops in proptest::collection::vec(arb_op(), 0..40),
    ) {
        let mode = if strict { FinishMode::Strict } else { FinishMode::Blocking };
        let kinds = [EventClass::ManualReset, EventClass::Auto, EventClass::Auto];
        let mut w = World::new(ASYNC, mode, &kinds);
        for op in &ops {
            let before = w.clone();
            let (stepped_out, stepped) = before.step(op);
            let out = w.apply(op);
            prop_assert_eq!(&out, &stepped_out);
            prop_assert_eq!(&w, &stepped);
            prop_assert!(w.check_invariants().is_ok(), "{:?} after {}", w.check_invariants(), op);
            if matches!(out, ModelOutcome::Blocks | ModelOutcome::Invalid(_)) {
                prop_assert_eq!(&w, &before, "{} changed the state", op);
            }
            if strict {
                prop_assert!(!(out.blocks() && matches!(op, ModelOp::Finish(_))));
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Aggregation (spec 3.6), blocking Finish_ and Release
// ---------------------------------------------------------------------------------------------

fn agg(script: OuterScript) -> CallModel {
    CallModel::aggregated(ASYNC, FinishMode::Strict, script)
}

fn counts(c: &CallModel) -> (u32, u32) {
    let o = c.outer().expect("aggregated");
    (o.resets(), o.signals())
}

fn delivered() -> ModelOutcome {
    ModelOutcome::Delivered {
        cancel_returns: None,
    }
}

#[test]
fn aggregated_begin_resets_the_outer_after_the_state_check() {
    let mut c = agg(OuterScript::ok());
    assert_eq!(counts(&c), (0, 0));
    assert_eq!(c.begin(READ), ret(S_OK));
    assert_eq!(counts(&c), (1, 0));
    // A busy Begin_ fails the state check first: the outer is not reset.
    assert_eq!(c.begin(READ), ret(RPC_S_CALLPENDING));
    assert_eq!(counts(&c), (1, 0));
    assert!(c.check_invariants().is_ok());
}

#[test]
fn a_failing_outer_reset_leaves_the_call_idle_and_begin_returns_its_hresult() {
    let mut c = agg(OuterScript {
        reset_results: vec![E_FAIL],
        ..OuterScript::ok()
    });
    assert_eq!(c.begin(READ), ret(E_FAIL));
    assert_eq!(c.state(), State::Idle);
    assert_eq!(c.method(), None, "no server call starts");
    // Nothing to finish, cancel or deliver.
    assert_eq!(c.finish(READ), ret(RPC_E_CALL_COMPLETE));
    assert_eq!(c.cancel(0), ret(RPC_E_CALL_COMPLETE));
    assert_eq!(c.server_complete(S_OK, &[1]), ModelOutcome::Dropped);
    assert_eq!(
        counts(&c),
        (1, 0),
        "a call that never started is never signalled"
    );
    // The next Begin_ (second Reset: S_OK) starts a call.
    assert_eq!(c.begin(READ), ret(S_OK));
    assert_eq!(c.state(), State::Pending);
    assert!(c.check_invariants().is_ok());
}

#[test]
fn a_panicking_outer_reset_counts_as_e_unexpected_and_leaves_the_call_idle() {
    // The script writes a panicking Reset as E_UNEXPECTED (0x8000FFFF).
    let mut c = agg(OuterScript {
        reset_results: vec![E_UNEXPECTED],
        ..OuterScript::ok()
    });
    assert_eq!(c.begin(WRITE), ret(E_UNEXPECTED));
    assert_eq!(c.state(), State::Idle);
    assert_eq!(
        c.begin(WRITE),
        ret(S_OK),
        "not wedged: the next Begin_ works"
    );
}

#[test]
fn each_completion_signals_the_outer_exactly_once() {
    let mut c = agg(OuterScript::ok());
    // By the server.
    c.begin(READ);
    assert_eq!(c.server_complete(S_OK, &[1]), delivered());
    assert_eq!(counts(&c), (1, 1));
    assert_eq!(c.server_complete(S_OK, &[2]), ModelOutcome::Dropped);
    assert_eq!(counts(&c), (1, 1), "a dropped result signals nothing");
    c.finish(READ);
    // Locally, by Cancel(0).
    c.begin(READ);
    assert_eq!(c.cancel(0), ret(S_OK));
    assert_eq!(counts(&c), (2, 2));
    assert_eq!(c.server_complete(S_OK, &[3]), ModelOutcome::Dropped);
    c.finish(READ);
    // Locally, by a Cancel window ending.
    c.begin(READ);
    assert_eq!(c.cancel(1), ModelOutcome::CancelInFlight);
    assert_eq!(counts(&c), (3, 2), "no Signal while the window runs");
    assert_eq!(c.cancel_timeout(), ModelOutcome::CancelReturns(S_OK));
    assert_eq!(counts(&c), (3, 3));
    c.finish(READ);
    // By the server within a Cancel window.
    c.begin(READ);
    c.cancel(RPC_C_CANCEL_INFINITE_TIMEOUT);
    assert_eq!(
        c.server_complete(S_OK, &[4]),
        ModelOutcome::Delivered {
            cancel_returns: Some(RPC_E_CALL_COMPLETE)
        }
    );
    assert_eq!(counts(&c), (4, 4));
    assert!(c.check_invariants().is_ok());
}

#[test]
fn the_call_event_is_set_before_the_outer_signal() {
    let mut c = agg(OuterScript::ok().explicit());
    c.begin(READ);
    c.server_complete(S_OK, &[1]);
    // Completed and its event set; the outer's Signal is still due.
    assert!(c.event_set());
    assert_eq!(c.wait(0, 0), ret(S_OK));
    assert_eq!(c.outer().unwrap().phase(), SignalPhase::Due { call: 1 });
    assert_eq!(c.outer_signal(), ret(S_OK));
    assert_eq!(c.outer().unwrap().phase(), SignalPhase::Idle);
    assert_eq!(counts(&c), (1, 1));
}

#[test]
fn a_failing_outer_signal_replaces_a_result_finish_has_not_taken() {
    let mut c = agg(OuterScript {
        signal_results: vec![E_FAIL],
        ..OuterScript::ok()
    });
    c.begin(READ);
    c.server_complete(S_OK, &[7, 8]);
    assert_eq!(
        c.finish(READ),
        ModelOutcome::Finished {
            hr: E_FAIL,
            outs: vec![]
        },
        "the Signal's HRESULT, no out-parameters"
    );
    // A panicking Signal is scripted as E_UNEXPECTED; the same rule.
    let mut c = agg(OuterScript {
        signal_results: vec![E_UNEXPECTED],
        ..OuterScript::ok()
    });
    c.begin(READ);
    c.server_complete(S_OK, &[7]);
    assert_eq!(
        c.finish(READ),
        ModelOutcome::Finished {
            hr: E_UNEXPECTED,
            outs: vec![]
        }
    );
}

#[test]
fn a_failing_outer_signal_after_finish_took_the_result_changes_nothing() {
    let mut c = agg(OuterScript {
        signal_results: vec![E_FAIL],
        ..OuterScript::ok().explicit()
    });
    c.begin(READ);
    c.server_complete(S_OK, &[7]);
    assert_eq!(
        c.finish(READ),
        ModelOutcome::Finished {
            hr: S_OK,
            outs: vec![7]
        }
    );
    assert_eq!(c.outer_signal(), ret(E_FAIL));
    assert_eq!(c.state(), State::Idle);
    assert_eq!(c.finish(READ), ret(RPC_E_CALL_COMPLETE), "delivered once");
    assert!(c.check_invariants().is_ok());
}

#[test]
fn a_failing_outer_signal_leaves_a_locally_cancelled_call_cancelled() {
    let mut c = agg(OuterScript {
        signal_results: vec![E_FAIL],
        ..OuterScript::ok()
    });
    c.begin(READ);
    assert_eq!(c.cancel(0), ret(S_OK));
    assert_eq!(c.finish(READ), ret(RPC_E_CALL_CANCELED));
}

#[test]
fn begin_of_the_next_call_waits_for_the_previous_calls_signal() {
    let mut c = agg(OuterScript::ok().explicit());
    c.begin(READ);
    c.server_complete(S_OK, &[1]);
    c.finish(READ);
    // Call 1's Signal has not returned: Begin_ of call 2 waits (its Reset must come after).
    let before = c.clone();
    assert_eq!(c.begin(READ), ModelOutcome::Blocks);
    assert_eq!(
        c, before,
        "a blocked Begin_ changes nothing, resets nothing"
    );
    assert_eq!(c.outer_signal(), ret(S_OK));
    assert_eq!(c.begin(READ), ret(S_OK));
    assert_eq!(counts(&c), (2, 1));
    // Still busy first: the state check comes before the wait.
    let mut c = agg(OuterScript::ok().explicit());
    c.begin(READ);
    c.server_complete(S_OK, &[1]);
    assert_eq!(c.begin(READ), ret(RPC_S_CALLPENDING));
}

#[test]
fn a_call_cancelled_during_the_outer_reset_is_signalled_after_the_reset_returns() {
    let mut c = agg(OuterScript::ok().explicit());
    assert_eq!(c.begin_start(READ), ret(S_OK));
    assert!(c.resetting());
    // Another thread cancels the call while Begin_ is in the outer's Reset.
    assert_eq!(c.cancel(0), ret(S_OK));
    assert_eq!(
        c.outer().unwrap().phase(),
        SignalPhase::Idle,
        "not during the Reset"
    );
    // ... and finishes it; the next Begin_ waits for the Reset and the Signal.
    assert_eq!(c.finish(READ), ret(RPC_E_CALL_CANCELED));
    let before = c.clone();
    assert_eq!(c.begin(WRITE), ModelOutcome::Blocks);
    assert_eq!(c, before);
    assert_eq!(c.begin_reset_returns(), ret(S_OK));
    assert_eq!(c.outer().unwrap().phase(), SignalPhase::Due { call: 1 });
    assert_eq!(c.begin(WRITE), ModelOutcome::Blocks);
    assert_eq!(c.outer_signal(), ret(S_OK));
    assert_eq!(c.begin(WRITE), ret(S_OK));
    assert_eq!(counts(&c), (2, 1));
}

#[test]
fn a_call_cancelled_during_a_failing_outer_reset_is_forgotten_unsignalled() {
    let mut c = agg(OuterScript {
        reset_results: vec![E_FAIL],
        ..OuterScript::ok().explicit()
    });
    c.begin_start(READ);
    assert_eq!(c.cancel(5), ModelOutcome::CancelInFlight);
    assert_eq!(c.begin_reset_returns(), ret(E_FAIL));
    assert_eq!(c.state(), State::Idle);
    assert_eq!(c.cancel_in_flight(), None, "the windowed Cancel is over");
    assert_eq!(c.outer().unwrap().phase(), SignalPhase::Idle);
    assert_eq!(counts(&c), (1, 0));
    assert!(c.check_invariants().is_ok());
}

#[test]
fn begin_from_inside_the_signal_on_its_thread_does_not_wait() {
    let mut c = agg(OuterScript::ok().explicit());
    c.begin(READ);
    c.server_complete(S_OK, &[1]);
    assert_eq!(c.outer_signal_enter(), ret(S_OK));
    // The completion callback finishes call 1 and begins call 2 (the CallBackClient sample).
    assert_eq!(
        c.finish(READ),
        ModelOutcome::Finished {
            hr: S_OK,
            outs: vec![1]
        }
    );
    assert_eq!(c.begin(WRITE), ret(S_OK));
    assert_eq!(counts(&c), (2, 1));
    assert_eq!(c.outer_signal_return(), ret(S_OK));
    assert_eq!(c.outer().unwrap().phase(), SignalPhase::Idle);
    assert_eq!(c.state(), State::Pending);
    assert!(c.check_invariants().is_ok());
}

#[test]
fn a_completion_inside_the_signal_is_signalled_after_the_signal_returns() {
    let mut c = agg(OuterScript::ok().explicit());
    c.begin(READ);
    c.server_complete(S_OK, &[1]);
    c.outer_signal_enter();
    c.finish(READ);
    c.begin(READ);
    // An inline server completes call 2 inside Begin_, inside call 1's Signal.
    assert_eq!(c.server_complete(S_OK, &[2]), delivered());
    assert_eq!(
        counts(&c),
        (2, 1),
        "not signalled inside the running Signal"
    );
    assert_eq!(
        c.outer().unwrap().phase(),
        SignalPhase::Running {
            call: 1,
            deferred: Some(2)
        }
    );
    c.outer_signal_return();
    assert_eq!(c.outer().unwrap().phase(), SignalPhase::Due { call: 2 });
    assert_eq!(c.outer_signal(), ret(S_OK));
    assert_eq!(counts(&c), (2, 2));
    assert_eq!(
        c.finish(READ),
        ModelOutcome::Finished {
            hr: S_OK,
            outs: vec![2]
        }
    );
}

#[test]
fn a_completion_inside_the_signal_is_dropped_if_another_call_was_begun_by_then() {
    let mut c = agg(OuterScript::ok().explicit());
    c.begin(READ);
    c.server_complete(S_OK, &[1]);
    c.outer_signal_enter();
    c.finish(READ);
    c.begin(READ);
    c.server_complete(S_OK, &[2]); // call 2 completes inside call 1's Signal
    c.finish(READ);
    c.begin(READ); // call 3 begun, still inside call 1's Signal
    assert_eq!(counts(&c), (3, 1));
    c.outer_signal_return();
    assert_eq!(
        c.outer().unwrap().phase(),
        SignalPhase::Idle,
        "call 2's Signal would land on call 3: dropped"
    );
    assert_eq!(
        c.outer_signal(),
        ModelOutcome::Invalid("no outer Signal is due")
    );
    assert_eq!(c.state(), State::Pending);
    assert!(c.check_invariants().is_ok());
}

#[test]
fn the_outer_is_never_signalled_for_a_call_after_the_next_calls_reset() {
    // Explicit signals with every interleaving the model allows: whenever a Signal is
    // entered, the call it signals is the current one (no later Reset happened).
    let script = OuterScript::ok().explicit();
    let ops = [
        ModelOp::Begin(READ),
        ModelOp::ServerComplete {
            hr: S_OK,
            outs: vec![1],
        },
        ModelOp::Finish(READ),
        ModelOp::Begin(READ), // blocks: call 1's Signal is due
        ModelOp::OuterSignalEnter,
        ModelOp::Begin(READ), // inside the Signal: allowed
        ModelOp::OuterSignalReturn,
    ];
    let mut c = agg(script);
    let mut entered = vec![];
    for op in &ops {
        let out = c.apply(op);
        if *op == ModelOp::OuterSignalEnter {
            let SignalPhase::Running { call, .. } = c.outer().unwrap().phase() else {
                panic!("entered, yet not running")
            };
            entered.push((call, c.call_number()));
        }
        if matches!(op, ModelOp::Begin(_)) && out == ret(S_OK) {
            assert!(
                !matches!(c.outer().unwrap().phase(), SignalPhase::Due { .. }),
                "a Reset while a Signal is due"
            );
        }
    }
    assert_eq!(entered, vec![(1, 1)]);
    assert_eq!(counts(&c), (2, 1));
}

#[test]
fn final_release_abandons_the_call_and_drops_the_late_result_unsignalled() {
    let mut c = agg(OuterScript::ok());
    c.begin(READ);
    assert_eq!(c.release(), ModelOutcome::Released { abandoned: true });
    assert_eq!(c.server_complete(S_OK, &[1]), ModelOutcome::Dropped);
    assert_eq!(counts(&c), (1, 0), "never delivered, never signalled");
    assert!(c.check_invariants().is_ok());
}

#[test]
fn final_release_drops_a_signal_not_yet_called() {
    let mut c = agg(OuterScript::ok().explicit());
    c.begin(READ);
    c.server_complete(S_OK, &[1]);
    assert_eq!(c.release(), ModelOutcome::Released { abandoned: true });
    assert_eq!(c.outer().unwrap().phase(), SignalPhase::Idle);
    assert_eq!(
        c.outer_signal(),
        ModelOutcome::Invalid("no outer Signal is due")
    );
    assert_eq!(counts(&c), (1, 0));
}

#[test]
fn after_final_release_begin_finish_and_cancel_return_rpc_e_disconnected() {
    for mut c in [
        call(),
        strict_call(),
        agg(OuterScript::ok()),
        CallModel::aggregated(ASYNC, FinishMode::Blocking, OuterScript::ok().explicit()),
    ] {
        c.begin(READ);
        c.release();
        assert_eq!(c.begin(READ), ret(RPC_E_DISCONNECTED));
        assert_eq!(c.finish(READ), ret(RPC_E_DISCONNECTED));
        assert_eq!(c.cancel(0), ret(RPC_E_DISCONNECTED));
        assert_eq!(c.cancel(1), ret(RPC_E_DISCONNECTED));
        assert_eq!(c.test_cancel(), ret(RPC_E_DISCONNECTED));
        assert_eq!(c.wait(0, 0), ret(RPC_E_DISCONNECTED));
        if let Some(o) = c.outer() {
            assert_eq!(o.resets(), 1, "a released call object resets nothing");
        }
    }
}

#[test]
fn a_blocking_finish_returns_once_the_call_completes_with_its_result_exactly_once() {
    for script in [
        None,
        Some(OuterScript::ok()),
        Some(OuterScript::ok().explicit()),
    ] {
        let mut c = match script {
            None => call(),
            Some(s) => CallModel::aggregated(ASYNC, FinishMode::Blocking, s),
        };
        c.begin(READ);
        let before = c.clone();
        assert_eq!(c.finish(READ), ModelOutcome::Blocks);
        assert_eq!(c, before);
        c.server_complete(E_FAIL, &[5]);
        assert_eq!(
            c.finish(READ),
            ModelOutcome::Finished {
                hr: E_FAIL,
                outs: vec![5]
            }
        );
        assert_eq!(c.finish(READ), ret(RPC_E_CALL_COMPLETE));
        // Completed locally: it returns RPC_E_CALL_CANCELED, once.
        let mut c = CallModel::with_mode(ASYNC, FinishMode::Blocking);
        c.begin(READ);
        c.cancel(1);
        assert_eq!(c.finish(READ), ModelOutcome::Blocks);
        c.cancel_timeout();
        assert_eq!(c.finish(READ), ret(RPC_E_CALL_CANCELED));
        assert_eq!(c.finish(READ), ret(RPC_E_CALL_COMPLETE));
    }
}

#[test]
fn outer_reset_and_signal_answer_in_script_order() {
    let mut c = agg(OuterScript {
        reset_results: vec![S_OK, E_FAIL, S_OK],
        signal_results: vec![S_OK, E_UNEXPECTED],
        explicit_signals: false,
    });
    assert_eq!(c.begin(READ), ret(S_OK)); // Reset #0
    c.server_complete(S_OK, &[1]); // Signal #0: S_OK
    assert_eq!(
        c.finish(READ),
        ModelOutcome::Finished {
            hr: S_OK,
            outs: vec![1]
        }
    );
    assert_eq!(c.begin(READ), ret(E_FAIL)); // Reset #1
    assert_eq!(c.begin(READ), ret(S_OK)); // Reset #2
    c.server_complete(S_OK, &[2]); // Signal #1: E_UNEXPECTED
    assert_eq!(
        c.finish(READ),
        ModelOutcome::Finished {
            hr: E_UNEXPECTED,
            outs: vec![]
        }
    );
    assert_eq!(counts(&c), (3, 2));
    assert_eq!(c.call_number(), 3);
}

#[test]
fn outer_signal_operations_print_as_com_calls() {
    assert_eq!(ModelOp::OuterSignal.to_string(), "outer.Signal()");
    assert_eq!(ModelOp::OuterSignalEnter.to_string(), "outer.Signal() {");
    assert_eq!(
        ModelOp::OuterSignalReturn.to_string(),
        "} outer.Signal() returns"
    );
    assert!(ModelOp::OuterSignal.is_call_op());
    // Not aggregated: the outer's operations do not apply.
    assert_eq!(
        call().apply(&ModelOp::OuterSignal),
        ModelOutcome::Invalid("the call object is not aggregated")
    );
}

fn arb_outer_script() -> impl Strategy<Value = OuterScript> {
    let hr = prop_oneof![4 => Just(S_OK), 1 => Just(E_FAIL), 1 => Just(E_UNEXPECTED)];
    (
        proptest::collection::vec(hr.clone(), 0..6),
        proptest::collection::vec(hr, 0..6),
        any::<bool>(),
    )
        .prop_map(
            |(reset_results, signal_results, explicit_signals)| OuterScript {
                reset_results,
                signal_results,
                explicit_signals,
            },
        )
}

fn arb_aggregated_op() -> impl Strategy<Value = ModelOp> {
    prop_oneof![
        20 => arb_op(),
        3 => Just(ModelOp::OuterSignal),
        2 => Just(ModelOp::OuterSignalEnter),
        2 => Just(ModelOp::OuterSignalReturn),
    ]
}

proptest! {
    /// The same for an aggregated call object, with the outer's Signal as steps of their own:
    /// the invariants hold (never a Signal for a call after the next call's Reset, at most
    /// one Signal per Reset, a released outer never signalled), and the outer's counts never
    /// go down.
    #[test]
    fn aggregated_invariants_hold_along_any_operation_sequence(
        strict in any::<bool>(),
        script in arb_outer_script(),
        ops in proptest::collection::vec(arb_aggregated_op(), 0..40),
    ) {
        let mode = if strict { FinishMode::Strict } else { FinishMode::Blocking };
        let call = CallModel::aggregated(ASYNC, mode, script);
        let mut w = World::with_call(call, &[EventClass::ManualReset]);
        for op in &ops {
            let before = w.clone();
            let (stepped_out, stepped) = before.step(op);
            let out = w.apply(op);
            prop_assert_eq!(&out, &stepped_out);
            prop_assert_eq!(&w, &stepped);
            prop_assert!(w.check_invariants().is_ok(), "{:?} after {}", w.check_invariants(), op);
            if matches!(out, ModelOutcome::Blocks | ModelOutcome::Invalid(_)) {
                prop_assert_eq!(&w, &before, "{} changed the state", op);
            }
            let (b, a) = (before.call().outer().unwrap(), w.call().outer().unwrap());
            prop_assert!(a.resets() >= b.resets() && a.signals() >= b.signals());
            prop_assert!(a.resets() - b.resets() <= 1 && a.signals() - b.signals() <= 2);
        }
    }
}
