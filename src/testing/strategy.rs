//! proptest strategies for operation sequences. Values come from the same tables as the byte
//! decoder ([`super::decode`]), so every generated sequence can be encoded as a fuzz seed
//! ([`super::decode::encode_call_ops`]) and shrinks to a readable operation list.
//!
//! ```
//! use proptest::prelude::*;
//! use comasync::testing::{runner, strategy};
//!
//! proptest!(ProptestConfig::with_cases(8), |(mode in strategy::finish_mode(),
//!                                           ops in strategy::call_ops(20, false))| {
//!     runner::check_call_ops(mode, &ops, &runner::RunOptions::fast())
//!         .map_err(|m| TestCaseError::fail(m.to_string()))?;
//! });
//! ```

use proptest::collection::vec;
use proptest::prelude::*;

use super::decode::{iids, WorldProfile, CANCEL_SECONDS, FLAGS, HRESULTS, TIMEOUTS};
use crate::model::{EventClass, FinishMode, ModelOp, MAXIMUM_WAIT_OBJECTS};

/// Either `Finish_` mode.
pub fn finish_mode() -> impl Strategy<Value = FinishMode> {
    prop_oneof![Just(FinishMode::Blocking), Just(FinishMode::Strict)]
}

fn flags() -> impl Strategy<Value = u32> {
    proptest::sample::select(FLAGS.to_vec())
}

fn timeout() -> impl Strategy<Value = u32> {
    proptest::sample::select(TIMEOUTS.to_vec())
}

/// One call-object operation. `short_windows`: include `Cancel(1)`, whose window the runner
/// lets expire (about a second of wall time each; keep such suites small).
pub fn call_op(short_windows: bool) -> BoxedStrategy<ModelOp> {
    let method = 0usize..2;
    let server = (
        proptest::sample::select(HRESULTS.to_vec()),
        vec(0u32..256, 0..4),
    )
        .prop_map(|(hr, outs)| ModelOp::ServerComplete { hr, outs });
    let long_cancel = proptest::sample::select(vec![CANCEL_SECONDS[2], CANCEL_SECONDS[3]]);
    let mut options: Vec<(u32, BoxedStrategy<ModelOp>)> = vec![
        (6, method.clone().prop_map(ModelOp::Begin).boxed()),
        (5, server.boxed()),
        (5, method.prop_map(ModelOp::Finish).boxed()),
        (2, Just(ModelOp::Cancel(0)).boxed()),
        (2, long_cancel.prop_map(ModelOp::Cancel).boxed()),
        (1, Just(ModelOp::CancelTimeout).boxed()),
        (2, Just(ModelOp::TestCancel).boxed()),
        (
            3,
            (flags(), timeout())
                .prop_map(|(flags, timeout)| ModelOp::Wait { flags, timeout })
                .boxed(),
        ),
        (
            2,
            proptest::sample::select(iids().to_vec())
                .prop_map(ModelOp::QueryInterface)
                .boxed(),
        ),
        (1, Just(ModelOp::Release).boxed()),
    ];
    if short_windows {
        options.push((1, Just(ModelOp::Cancel(1)).boxed()));
    }
    proptest::strategy::Union::new_weighted(options).boxed()
}

/// Up to `max_len` call-object operations (see [`call_op`]).
pub fn call_ops(max_len: usize, short_windows: bool) -> impl Strategy<Value = Vec<ModelOp>> {
    vec(call_op(short_windows), 0..=max_len)
}

/// One to four events, each a `ManualResetEvent` or a `StdEvent`.
pub fn event_kinds() -> impl Strategy<Value = Vec<EventClass>> {
    vec(
        prop_oneof![Just(EventClass::ManualReset), Just(EventClass::Auto)],
        1..=4,
    )
}

/// A `CoWaitForMultipleHandles` over `n` events: NULL arrays, empty arrays, up to four handles
/// (duplicates included) and, rarely, one handle over the limit.
pub fn co_wait_op(n: usize) -> BoxedStrategy<ModelOp> {
    let handles = prop_oneof![
        1 => Just(None),
        1 => Just(Some((0..=MAXIMUM_WAIT_OBJECTS).map(|i| i % n).collect())),
        12 => vec(0..n, 0..5).prop_map(Some),
    ];
    (flags(), timeout(), handles, proptest::bool::weighted(0.9))
        .prop_map(|(flags, timeout, handles, index_present)| ModelOp::CoWait {
            flags,
            timeout,
            handles,
            index_present,
        })
        .boxed()
}

/// One event, container or `CoWaitForMultipleHandles` operation over `n` events.
pub fn world_op(profile: WorldProfile, n: usize) -> BoxedStrategy<ModelOp> {
    let signal = (0..n).prop_map(ModelOp::EventSignal);
    let reset = (0..n).prop_map(ModelOp::EventReset);
    let wait = (0..n, flags(), timeout()).prop_map(|(event, flags, timeout)| ModelOp::EventWait {
        event,
        flags,
        timeout,
    });
    match profile {
        WorldProfile::CoWait => prop_oneof![
            3 => signal,
            2 => reset,
            2 => wait,
            4 => co_wait_op(n),
        ]
        .boxed(),
        WorldProfile::Events => {
            let add = prop_oneof![1 => Just(None), 8 => (0..n).prop_map(Some)]
                .prop_map(ModelOp::AddSynchronize);
            let wait_multiple = (flags(), timeout(), proptest::bool::weighted(0.9)).prop_map(
                |(flags, timeout, out_present)| ModelOp::WaitMultiple {
                    flags,
                    timeout,
                    out_present,
                },
            );
            prop_oneof![
                3 => signal,
                2 => reset,
                3 => wait,
                2 => co_wait_op(n),
                2 => add,
                3 => wait_multiple,
            ]
            .boxed()
        }
    }
}

/// Event kinds and up to `max_len` operations over them.
pub fn world_ops(
    profile: WorldProfile,
    max_len: usize,
) -> impl Strategy<Value = (Vec<EventClass>, Vec<ModelOp>)> {
    event_kinds().prop_flat_map(move |kinds| {
        let n = kinds.len();
        (Just(kinds), vec(world_op(profile, n), 0..=max_len))
    })
}
