//! The implementation must never disagree with the reference model (`comasync::testing::model`).
//!
//! * Sequential: random operation sequences run against real objects and against the model,
//!   step by step (`comasync::testing::runner`): the call object (served by a `ManualHandler`,
//!   so the server completes exactly when the sequence says), events, the container and
//!   `CoWaitForMultipleHandles`. A failure prints the shrunk sequence as COM calls.
//! * Concurrent: client threads and a server thread on one call object; every history must be
//!   linearizable against the model (`comasync::testing::linearize`).
//! * The byte decoder shared with the fuzz targets: random bytes decode to sequences the runners
//!   accept, and encoding inverts decoding.

use comasync::call::{create_call, ManualHandler};
use comasync::guid::{IID_ICallFactory, IID_ISynchronize, IID_IUnknown, IID};
use comasync::hresult::*;
use comasync::testing::decode::{self, WorldProfile};
use comasync::testing::linearize::{run_concurrent_call, ConcOp, ConcurrentPlan};
use comasync::testing::model::{
    EventClass, FinishMode, ModelOp, OuterScript, READ, RPC_C_CANCEL_INFINITE_TIMEOUT, WRITE,
};
use comasync::testing::runner::{check_call_ops, check_world_ops, RunOptions};
use comasync::testing::{strategy, AsyncIProbe, IProbeCalls, PROBE_ASYNC_IID};
use comasync::unknown::{ComPtr, IUnknown, PlainObject};
use proptest::prelude::*;

fn fail(m: impl std::fmt::Display) -> TestCaseError {
    TestCaseError::fail(format!("\n{m}"))
}

// ---------------------------------------------------------------------------------------------
// Sequential: the call object
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    /// Begin, second Begin, server complete/fail, Wait (0 / 1 ms / INFINITE when it would not
    /// block), Finish (blocking and strict), Cancel(0), Cancel with a window resolved by the
    /// server, TestCancel, Release, reuse and QueryInterface.
    #[test]
    fn call_object_agrees_with_the_model(mode in strategy::finish_mode(),
                                         ops in strategy::call_ops(40, false)) {
        check_call_ops(mode, &ops, &RunOptions::default()).map_err(fail)?;
    }

    /// Any byte string, through the fuzz targets' decoder.
    #[test]
    fn call_object_agrees_with_the_model_on_decoded_bytes(
        bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
        let (mode, ops) = decode::call_ops(&bytes);
        check_call_ops(mode, &ops, &RunOptions::fast()).map_err(fail)?;
    }
}

proptest! {
    // Each Cancel(1) whose window expires costs a second: few cases.
    #![proptest_config(ProptestConfig { cases: 6, ..ProptestConfig::default() })]

    /// The same, with 1 s cancel windows that the runner lets expire (the timeout branch).
    #[test]
    fn call_object_agrees_with_the_model_when_cancel_windows_expire(
        mode in strategy::finish_mode(), ops in strategy::call_ops(16, true)) {
        check_call_ops(mode, &ops, &RunOptions::default()).map_err(fail)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    /// The same sequences (with windows that expire) under the runners' virtual clock: every
    /// window may expire at once, other steps run while it is open, and nothing sleeps.
    #[test]
    fn call_object_agrees_with_the_model_under_the_virtual_clock(
        mode in strategy::finish_mode(), ops in strategy::call_ops(40, true)) {
        check_call_ops(mode, &ops, &RunOptions::fast()).map_err(fail)?;
    }
}

#[test]
fn the_virtual_clock_runs_every_step_of_a_windowed_cancel_without_a_helper_thread() {
    let ops = [
        ModelOp::Begin(READ),
        ModelOp::Cancel(1),
        ModelOp::TestCancel, // runs: no real timer can race with it
        ModelOp::Wait {
            flags: 0,
            timeout: 1, // already expired: RPC_S_CALLPENDING at once
        },
        ModelOp::Finish(READ), // strict: RPC_S_CALLPENDING while the window is open
        ModelOp::CancelTimeout,
        ModelOp::Finish(READ),
        ModelOp::Begin(WRITE),
        ModelOp::Cancel(3600),
        ModelOp::CancelTimeout, // a 3600 s window expires too
        ModelOp::Finish(WRITE),
        ModelOp::Begin(READ),
        ModelOp::Cancel(1),
        ModelOp::ServerComplete {
            hr: S_OK,
            outs: vec![4],
        },
        ModelOp::Finish(READ),
    ];
    let report = check_call_ops(FinishMode::Strict, &ops, &RunOptions::fast())
        .unwrap_or_else(|m| panic!("\n{m}"));
    assert_eq!(report.skipped, 0, "{:#?}", report.steps);
    assert_eq!(report.executed, ops.len());
}

fn agrees(mode: FinishMode, ops: &[ModelOp]) {
    if let Err(m) = check_call_ops(mode, ops, &RunOptions::default()) {
        panic!("\n{m}");
    }
}

#[test]
fn cancel_window_expiry_completes_the_call_locally_as_the_model_says() {
    agrees(
        FinishMode::Blocking,
        &[
            ModelOp::Begin(READ),
            ModelOp::Cancel(1),
            ModelOp::TestCancel, // skipped: the 1 s window is running
            ModelOp::CancelTimeout,
            ModelOp::Wait {
                flags: 0,
                timeout: 0,
            },
            ModelOp::ServerComplete {
                hr: S_OK,
                outs: vec![1],
            },
            ModelOp::Finish(READ),
            ModelOp::Begin(WRITE),
        ],
    );
}

#[test]
fn cancel_window_resolved_by_the_server_returns_rpc_e_call_complete_as_the_model_says() {
    for seconds in [3600, RPC_C_CANCEL_INFINITE_TIMEOUT] {
        agrees(
            FinishMode::Strict,
            &[
                ModelOp::Begin(WRITE),
                ModelOp::Cancel(seconds),
                ModelOp::TestCancel,
                ModelOp::Cancel(0),
                ModelOp::Begin(READ),
                ModelOp::Finish(WRITE),
                ModelOp::ServerComplete {
                    hr: RPC_E_CALL_CANCELED,
                    outs: vec![],
                },
                ModelOp::Finish(WRITE),
                ModelOp::TestCancel,
            ],
        );
    }
}

#[test]
fn late_completion_of_an_earlier_call_is_dropped_as_the_model_says() {
    agrees(
        FinishMode::Strict,
        &[
            ModelOp::Begin(READ),
            ModelOp::Cancel(0),
            ModelOp::Finish(READ),
            ModelOp::Begin(READ),
            // The runner completes the first call (late: must be dropped), then the current one.
            ModelOp::ServerComplete {
                hr: E_FAIL,
                outs: vec![9],
            },
            ModelOp::Finish(READ),
            ModelOp::Release,
            ModelOp::Begin(READ),
        ],
    );
}

#[test]
fn a_mismatch_prints_the_operation_list_as_com_calls() {
    // Not a real disagreement: a report is built by hand to pin its shape.
    use comasync::testing::runner::{Mismatch, StepRecord, StepResult};
    let m = Mismatch {
        at: 1,
        setup: "call object".into(),
        steps: vec![
            StepRecord {
                op: ModelOp::Begin(READ),
                result: StepResult::Agreed(comasync::testing::model::ModelOutcome::Returns(S_OK)),
            },
            StepRecord {
                op: ModelOp::Finish(READ),
                result: StepResult::Disagreed {
                    expected: "RPC_S_CALLPENDING".into(),
                    got: "S_OK".into(),
                },
            },
        ],
    };
    let text = m.to_string();
    assert!(text.contains("Begin_Read"), "{text}");
    assert!(text.contains("> "), "{text}");
    assert!(text.contains("Finish_Read"), "{text}");
}

// ---------------------------------------------------------------------------------------------
// Sequential: events, the container, CoWaitForMultipleHandles
// ---------------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 384, ..ProptestConfig::default() })]

    #[test]
    fn events_and_the_container_agree_with_the_model(
        (kinds, ops) in strategy::world_ops(WorldProfile::Events, 40)) {
        check_world_ops(&kinds, &ops, &RunOptions::default()).map_err(fail)?;
    }

    #[test]
    fn co_wait_for_multiple_handles_agrees_with_the_model(
        (kinds, ops) in strategy::world_ops(WorldProfile::CoWait, 40)) {
        check_world_ops(&kinds, &ops, &RunOptions::default()).map_err(fail)?;
    }

    #[test]
    fn events_agree_with_the_model_on_decoded_bytes(
        profile in prop_oneof![Just(WorldProfile::Events), Just(WorldProfile::CoWait)],
        bytes in proptest::collection::vec(any::<u8>(), 0..160)) {
        let (kinds, ops) = decode::world_ops(profile, &bytes);
        check_world_ops(&kinds, &ops, &RunOptions::fast()).map_err(fail)?;
    }
}

// ---------------------------------------------------------------------------------------------
// The decoder
// ---------------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn encoding_call_ops_inverts_decoding(mode in strategy::finish_mode(),
                                          ops in strategy::call_ops(decode::MAX_OPS, true)) {
        let bytes = decode::encode_call_ops(mode, &ops).expect("strategy values are encodable");
        prop_assert_eq!(decode::call_ops(&bytes), (mode, ops));
    }

    #[test]
    fn encoding_world_ops_inverts_decoding(
        profile in prop_oneof![Just(WorldProfile::Events), Just(WorldProfile::CoWait)],
        (kinds, ops) in strategy::world_ops(WorldProfile::Events, decode::MAX_OPS)) {
        let ops: Vec<ModelOp> = match profile {
            WorldProfile::Events => ops,
            WorldProfile::CoWait => ops.into_iter()
                .filter(|o| !matches!(o, ModelOp::AddSynchronize(_) | ModelOp::WaitMultiple { .. }))
                .collect(),
        };
        let bytes = decode::encode_world_ops(profile, &kinds, &ops).expect("encodable");
        prop_assert_eq!(decode::world_ops(profile, &bytes), (kinds, ops));
    }

    #[test]
    fn decoding_is_total_and_bounded(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let (_, ops) = decode::call_ops(&bytes);
        prop_assert!(ops.len() <= decode::MAX_OPS);
        let (kinds, ops) = decode::world_ops(WorldProfile::Events, &bytes);
        prop_assert!((1..=4).contains(&kinds.len()) && ops.len() <= decode::MAX_OPS);
    }
}

// ---------------------------------------------------------------------------------------------
// CreateCall's argument rules (spec 2.1 rows 1–4, D11)
// ---------------------------------------------------------------------------------------------

/// Rows 1–4 as a reference: the order of the checks is D11's.
fn create_call_reference(riid_ok: bool, outer: bool, riid2: IID, ppv: bool) -> HRESULT {
    let exposed = [
        PROBE_ASYNC_IID,
        IID_IUnknown,
        IID_ISynchronize,
        comasync::guid::IID_ISynchronizeHandle,
        comasync::guid::IID_ICancelMethodCalls,
    ];
    if !ppv {
        E_POINTER
    } else if !riid_ok {
        E_NOINTERFACE
    } else if outer && riid2 != IID_IUnknown {
        E_INVALIDARG
    } else if !outer && !exposed.contains(&riid2) {
        E_NOINTERFACE
    } else {
        S_OK
    }
}

/// `CreateCall` with an out-slot of `riid2`'s own type (what C's `void **` would receive):
/// the `HRESULT` and whether a pointer was written.
fn create_call_typed(
    riid: &IID,
    outer: Option<&ComPtr<dyn IUnknown>>,
    riid2: &IID,
    ppv: bool,
) -> (HRESULT, bool) {
    fn go<I: ?Sized + IUnknown + 'static>(
        riid: &IID,
        outer: Option<&ComPtr<dyn IUnknown>>,
        riid2: &IID,
        ppv: bool,
    ) -> (HRESULT, bool) {
        let mut slot: Option<ComPtr<I>> = None;
        let hr = create_call::<IProbeCalls>(
            riid,
            outer,
            riid2,
            ppv.then_some(&mut slot as &mut dyn std::any::Any),
            ManualHandler::<IProbeCalls>::new(),
            FinishMode::Blocking,
        );
        (hr, slot.is_some())
    }
    use comasync::call::ICancelMethodCalls;
    use comasync::guid::{IID_ICancelMethodCalls, IID_ISynchronizeHandle};
    use comasync::sync::{ISynchronize, ISynchronizeHandle};
    match *riid2 {
        _ if outer.is_some() => go::<dyn IUnknown>(riid, outer, riid2, ppv),
        x if x == PROBE_ASYNC_IID => go::<dyn AsyncIProbe>(riid, outer, riid2, ppv),
        x if x == IID_ISynchronize => go::<dyn ISynchronize>(riid, outer, riid2, ppv),
        x if x == IID_ISynchronizeHandle => go::<dyn ISynchronizeHandle>(riid, outer, riid2, ppv),
        x if x == IID_ICancelMethodCalls => go::<dyn ICancelMethodCalls>(riid, outer, riid2, ppv),
        _ => go::<dyn IUnknown>(riid, outer, riid2, ppv),
    }
}

proptest! {
    #[test]
    fn create_call_argument_rules_agree_with_rows_1_to_4(
        riid_ok in any::<bool>(), outer in any::<bool>(),
        riid2 in proptest::sample::select(decode::iids().to_vec()), ppv in any::<bool>()) {
        let riid = if riid_ok { PROBE_ASYNC_IID } else { IID_ICallFactory };
        let outer_obj = PlainObject::create();
        let (hr, written) = create_call_typed(&riid, outer.then_some(&outer_obj), &riid2, ppv);
        prop_assert_eq!(hr, create_call_reference(riid_ok, outer, riid2, ppv));
        prop_assert_eq!(written, hr == S_OK);
    }
}

// ---------------------------------------------------------------------------------------------
// Concurrent histories are linearizable
// ---------------------------------------------------------------------------------------------

fn conc_op(windowed_cancels: bool) -> BoxedStrategy<ConcOp> {
    let basic = prop_oneof![
        4 => (0usize..2).prop_map(ConcOp::Begin),
        4 => (0usize..2).prop_map(ConcOp::Finish),
        2 => Just(ConcOp::Cancel0),
        2 => Just(ConcOp::TestCancel),
        3 => Just(ConcOp::Wait0),
    ];
    if windowed_cancels {
        prop_oneof![
            15 => basic,
            2 => prop_oneof![Just(3600u32), Just(RPC_C_CANCEL_INFINITE_TIMEOUT)]
                .prop_map(ConcOp::Cancel),
        ]
        .boxed()
    } else {
        basic.boxed()
    }
}

fn server_results() -> impl Strategy<Value = Vec<(HRESULT, Vec<u32>)>> {
    proptest::collection::vec(
        (
            proptest::sample::select(decode::HRESULTS.to_vec()),
            proptest::collection::vec(0u32..9, 0..3),
        ),
        1..4,
    )
}

/// Client threads of 1–5 operations; with `full`, windowed `Cancel`s, either `Finish_` mode
/// and (one time in three) a final `Release` as some thread's last operation.
fn clients(full: bool) -> impl Strategy<Value = (Vec<Vec<ConcOp>>, FinishMode)> {
    (
        proptest::collection::vec(proptest::collection::vec(conc_op(full), 1..6), 2..4),
        if full {
            strategy::finish_mode().boxed()
        } else {
            Just(FinishMode::Strict).boxed()
        },
        if full {
            proptest::option::weighted(0.33, any::<prop::sample::Index>()).boxed()
        } else {
            Just(None).boxed()
        },
    )
        .prop_map(|(mut clients, mode, release)| {
            if let Some(i) = release {
                let n = clients.len();
                clients[i.index(n)].push(ConcOp::Release);
            }
            (clients, mode)
        })
}

fn plan() -> impl Strategy<Value = ConcurrentPlan> {
    (clients(false), server_results())
        .prop_map(|((clients, _), server_results)| ConcurrentPlan::new(clients, server_results))
}

fn full_plan(
    outer: impl Strategy<Value = Option<OuterScript>>,
) -> impl Strategy<Value = ConcurrentPlan> {
    (clients(true), server_results(), outer).prop_map(|((clients, mode), server_results, outer)| {
        ConcurrentPlan {
            clients,
            server_results,
            mode,
            outer,
        }
    })
}

/// An outer whose `Reset`s and `Signal`s return `S_OK` or, now and then, `failure`.
fn outer_script(failure: HRESULT) -> impl Strategy<Value = Option<OuterScript>> {
    let hr = prop_oneof![5 => Just(S_OK), 1 => Just(failure)];
    (
        proptest::collection::vec(hr.clone(), 0..5),
        proptest::collection::vec(hr, 0..5),
    )
        .prop_map(|(reset_results, signal_results)| {
            Some(OuterScript {
                reset_results,
                signal_results,
                explicit_signals: true,
            })
        })
}

fn linearizable(plan: &ConcurrentPlan, runs: usize) -> std::result::Result<(), TestCaseError> {
    for _ in 0..runs {
        run_concurrent_call(plan).map_err(fail)?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    /// Begin_, strict Finish_, Cancel(0), TestCancel and Wait(0) from several threads while a
    /// server thread completes calls: each history (about 10–25 operations) must have a
    /// sequential order, consistent with real-time precedence, that the model accepts.
    #[test]
    fn concurrent_histories_on_one_call_object_are_linearizable(plan in plan()) {
        linearizable(&plan, 8)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 120, ..ProptestConfig::default() })]

    /// The same with blocking Finish_, windowed Cancels (resolved by the server) and the final
    /// Release racing the other operations.
    #[test]
    fn concurrent_histories_with_blocking_finish_windowed_cancel_and_release_are_linearizable(
        plan in full_plan(Just(None))) {
        linearizable(&plan, 6)?;
    }

    /// The same on an aggregated call object whose outer counts its Resets and Signals and
    /// sometimes fails them (E_FAIL): a failed Reset leaves the call Idle, a failed Signal
    /// replaces a result not yet finished, each completion signals the outer once, and no
    /// Signal of a call comes after the next call's Reset.
    #[test]
    fn concurrent_histories_of_an_aggregated_call_object_are_linearizable(
        plan in full_plan(outer_script(E_FAIL))) {
        linearizable(&plan, 6)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// An outer whose Reset or Signal panics: the panic counts as E_UNEXPECTED and never
    /// escapes to the client or the server, and the call object is not wedged.
    #[test]
    fn concurrent_histories_with_panicking_outer_callbacks_are_linearizable(
        plan in full_plan(outer_script(E_UNEXPECTED))) {
        linearizable(&plan, 4)?;
    }
}

#[test]
fn a_non_linearizable_history_is_rejected() {
    use comasync::testing::linearize::{check, conc_step, ConcResult, Entry, GenModel};
    use comasync::testing::model::ModelOutcome;
    // Two sequential Begin_s that both succeed: impossible.
    let e = |op, hr, invoke, response| Entry {
        thread: 0,
        op,
        result: ConcResult::Outcome(ModelOutcome::Returns(hr)),
        invoke,
        response,
    };
    let history = vec![
        e(ConcOp::Begin(0), S_OK, 0, 1),
        e(ConcOp::Begin(0), S_OK, 2, 3),
    ];
    let init = GenModel::strict();
    assert!(check(&init, &history, conc_step).is_none());
    // Overlapping, one busy: linearizable either way round.
    let history = vec![
        e(ConcOp::Begin(0), RPC_S_CALLPENDING, 0, 3),
        e(ConcOp::Begin(1), S_OK, 1, 2),
    ];
    assert_eq!(check(&init, &history, conc_step), Some(vec![1, 0]));
}

#[test]
fn a_stale_outer_signal_after_the_next_reset_is_not_linearizable() {
    use comasync::testing::linearize::{check, conc_step, BeginPart, ConcResult, Entry, GenModel};
    use comasync::testing::model::ModelOutcome;
    let plan = ConcurrentPlan {
        outer: Some(OuterScript::ok()),
        ..ConcurrentPlan::new(vec![], vec![])
    };
    let e = |thread, op, result, invoke, response| Entry {
        thread,
        op,
        result,
        invoke,
        response,
    };
    let begin = |tag, part| ConcOp::BeginCall {
        method: 0,
        tag,
        part,
    };
    let ok = ConcResult::Outcome(ModelOutcome::Returns(S_OK));
    let finished = ConcResult::Outcome(ModelOutcome::Finished {
        hr: S_OK,
        outs: vec![1],
    });
    // Call 1 completes; the client finishes it and begins call 2, whose Reset (tick 6) comes
    // before call 1's Signal is entered (tick 8): finding 1 of issue 9.
    let stale = |signal_invoke| {
        vec![
            e(
                0,
                begin(1, BeginPart::UntilReset),
                ConcResult::Unobserved,
                0,
                1,
            ),
            e(0, begin(1, BeginPart::FromReset), ok.clone(), 1, 2),
            e(
                1,
                ConcOp::ServerComplete {
                    tag: 1,
                    hr: S_OK,
                    outs: vec![1],
                },
                ConcResult::Unobserved,
                3,
                9,
            ),
            e(1, ConcOp::OuterSignal, ok.clone(), signal_invoke, 9),
            e(0, ConcOp::Finish(0), finished.clone(), 4, 5),
            e(
                0,
                begin(2, BeginPart::UntilReset),
                ConcResult::Unobserved,
                5,
                6,
            ),
            e(0, begin(2, BeginPart::FromReset), ok.clone(), 6, 7),
        ]
    };
    let init = GenModel::for_plan(&plan);
    assert!(check(&init, &stale(8), conc_step).is_none());
    // The same with the Signal entered before the Reset (tick 5.5 → 4): explainable.
    assert!(check(&init, &stale(4), conc_step).is_some());
}

#[test]
fn event_kinds_decode_from_the_header_byte() {
    let (kinds, _) = decode::world_ops(WorldProfile::Events, &[0b0000_1001]);
    assert_eq!(kinds, vec![EventClass::ManualReset, EventClass::Auto]);
}
