//! A pure, sequential reference model of the COM asynchronous call object and the system
//! synchronization objects: the executable form of section 2 of the behavioural spec
//! (`com-async-spec.md`), with the readings of section 5 that comasync follows.
//!
//! # What it is for
//!
//! The model predicts, for a state and one operation, **what the operation returns and what
//! the next state is**. It has no threads, no clocks and no shared memory, and it does not call
//! the crate's implementation: it uses only the [`hresult`](crate::hresult) codes, the
//! [`guid`](crate::guid) IIDs and two plain enums it shares with the implementation,
//! [`State`] and [`FinishMode`]. It is written from the spec alone so that running the same
//! operation sequence against the model and against the implementation (in unit tests, in
//! `proptest` state-machine tests, in a fuzzer) finds places where the two disagree.
//!
//! # Shape
//!
//! * [`CallModel`]: one call object — [`Begin_`](CallModel::begin),
//!   [`Finish_`](CallModel::finish), the server's completion, `ICancelMethodCalls`, the call
//!   object's own `ISynchronize::Wait`, `QueryInterface` and the final `Release`.
//! * [`EventModel`]: one `CLSID_ManualResetEvent` or `CLSID_StdEvent` (`Signal`, `Reset`,
//!   `Wait`).
//! * [`co_wait_for_multiple_handles`]: `CoWaitForMultipleHandles` over a set of model events.
//! * [`ContainerModel`]: one `CLSID_SynchronizeContainer` (`AddSynchronize`, `WaitMultiple`).
//! * [`ApartmentModel`]: the apartments of named threads, the proxies' rules and each STA's
//!   queue of incoming calls (what the scenario check replays apartment statements on).
//! * [`World`]: a call object, `N` events and a container together, driven by one [`ModelOp`]
//!   type; convenient for operation-sequence tests. [`World::apply`] mutates in place,
//!   [`World::step`] is the pure form `(state, op) → (outcome, next state)`.
//!
//! One file per concept: `call.rs` ([`CallModel`]), `outer.rs` (the aggregating outer),
//! `event.rs` (events and `CoWaitForMultipleHandles`), `container.rs`, `world.rs` ([`World`],
//! [`ModelOp`]); this file holds the constants and [`ModelOutcome`]. The model is
//! library-internal: the `testing` feature makes it public as `comasync::testing::model`, and the
//! scenario runner checks every script against it.
//!
//! Every operation returns a [`ModelOutcome`]. Besides "the COM call returns this `HRESULT`"
//! ([`ModelOutcome::Returns`]) an outcome can say that the call **blocks**
//! ([`ModelOutcome::Blocks`]: an infinite wait, or a `Finish_` before completion in
//! [`FinishMode::Blocking`]), or that the operation is **not applicable** in this state
//! ([`ModelOutcome::Invalid`]: a test-harness error such as an unknown event index, not a COM
//! result). Neither changes the state.
//!
//! # Timing, made explicit
//!
//! `ICancelMethodCalls::Cancel(s)` returns a result that depends on whether the server completes
//! within `s` seconds. The model splits it in two steps instead of being nondeterministic:
//! [`ModelOp::Cancel`] makes the request (with `s == 0` it also completes the call locally and
//! returns `S_OK` at once; otherwise the `Cancel` is *in flight*,
//! [`ModelOutcome::CancelInFlight`]), and the in-flight `Cancel` is then resolved either by
//! [`ModelOp::ServerComplete`] (the `Cancel` returns `RPC_E_CALL_COMPLETE`, reported in
//! [`ModelOutcome::Delivered`]) or by [`ModelOp::CancelTimeout`] (only for a finite `s`; the
//! `Cancel` returns `S_OK`, [`ModelOutcome::CancelReturns`]).
//!
//! # Call-object states (spec 2.1)
//!
//! [`State::Idle`] → `Begin_` → [`State::Pending`] → server completes →
//! [`State::Signaled`]`{cancelled: false}` → `Finish_` → `Idle`. A `Cancel` in `Pending`
//! goes to [`State::Cancelling`] and from there to `Signaled{cancelled: false}` (the server
//! was in time) or `Signaled{cancelled: true}` (completed locally). The final `Release` goes to
//! [`State::Gone`] from anywhere.
//!
//! # Invariants
//!
//! [`CallModel::check_invariants`] (and [`World::check_invariants`]) verify, after any sequence
//! of operations:
//!
//! * a method is recorded ([`CallModel::method`]) exactly in `Pending`, `Cancelling` and
//!   `Signaled`;
//! * the call's event is clear in `Pending` and `Cancelling`, set in `Signaled`; in `Idle` it is
//!   clear before the first call and set after a `Finish_` (manual reset, spec D13);
//! * results are stored exactly in `Signaled{cancelled: false}`;
//! * the cancelled flag is set in `Cancelling` and `Signaled{cancelled: true}`, clear in
//!   `Pending`;
//! * a `Cancel` is in flight exactly in `Cancelling`, and never with 0 seconds;
//! * `Gone` holds nothing (no method, results, event, flag or in-flight `Cancel`);
//! * a container holds at most [`CONTAINER_CAPACITY`] objects, all valid event indices.
//!
//! # Readings taken where the spec leaves a choice
//!
//! * A busy `Begin_` returns `RPC_S_CALLPENDING` (0x80010115, the documentation's
//!   `RPC_E_CALL_PENDING`, D2); a wait timeout is `RPC_S_CALLPENDING` (D1) except
//!   `WaitMultiple`'s `RPC_E_TIMEOUT` (D6); cancelled is `RPC_E_CALL_CANCELED` (D3).
//! * The call's `ISynchronize` is manual-reset, starts clear, is reset by each successful
//!   `Begin_` and set when the call completes, normally or by a local cancel (D13, rows 9–11).
//! * `Finish_` before completion blocks ([`FinishMode::Blocking`], D5) or, in
//!   [`FinishMode::Strict`], returns `RPC_S_CALLPENDING`.
//! * The `TestCancel` flag is set by a successful cancel request and cleared only by the next
//!   successful `Begin_`: it survives the `Finish_` of the cancelled call.
//! * `Finish_` for a method other than the one begun, while a call is in progress (`Pending`,
//!   `Cancelling`, `Signaled`), returns `E_UNEXPECTED`. `Finish_` in `Idle` returns
//!   `RPC_E_CALL_COMPLETE` whatever the method.
//! * Every method of a released call object returns `RPC_E_DISCONNECTED`; that check comes
//!   before any argument check.
//! * `QueryInterface` answers the async IID, `IUnknown`, `ISynchronize`, `ISynchronizeHandle`
//!   and `ICancelMethodCalls` (an in-process call object: no `IClientSecurity`, spec row 23's
//!   proxy-only interface).
//! * A server completion arriving when no call is waiting for it (`Idle`, `Signaled`, `Gone`) is
//!   dropped. [`ModelOp::ServerComplete`] always targets the *current* call: a late completion of
//!   an earlier, locally cancelled call is something the implementation must drop, and it is not an
//!   operation of this model.
//!
//!
//! # Aggregation
//!
//! [`CallModel::aggregated`] models a call object aggregated by a client whose outer unknown
//! implements `ISynchronize` (spec 3.6, the completion callback). The outer's answers are an
//! [`OuterScript`]; the model counts its `Reset`s and `Signal`s ([`OuterModel`]) and follows
//! its pending `Signal` ([`SignalPhase`]):
//!
//! * `Begin_`, after the state check, calls the outer's `Reset`. If it fails (a panicking
//!   `Reset` counts as `E_UNEXPECTED`), the call object returns to `Idle`, `Begin_` returns
//!   that `HRESULT` and no server call starts. While the `Reset` runs the call is `Pending` to
//!   other threads; one cancelled meanwhile is signalled after a successful `Reset`, and
//!   forgotten (back to `Idle`, nothing signalled) after a failed one
//!   ([`CallModel::begin_start`], [`CallModel::begin_reset_returns`]).
//! * Each completed call — by the server, or locally by a `Cancel` whose window ended — sets
//!   the call's own event and then calls the outer's `Signal` exactly once, outside the lock.
//!   If it fails and `Finish_` has not yet taken the result, the call's result becomes that
//!   `HRESULT` with no out-parameters.
//! * The outer never sees the `Signal` of call N after the `Reset` of call N+1: `Begin_` of
//!   N+1 waits for N's `Signal` to return, unless it is made from inside that `Signal` on the
//!   same thread. A completion inside the outer's `Signal`, on its thread, is signalled after
//!   that `Signal` returns, and dropped if the client has begun another call by then.
//! * The final `Release` abandons a call in progress: a late server result is dropped, and
//!   a `Signal` not yet called is never called. Afterwards `Begin_`, `Finish_` and `Cancel`
//!   return `RPC_E_DISCONNECTED`.
//! * A blocking `Finish_` returns once the call completes, with its result, exactly once.
//!
//! By default a completion and its `Signal` are one step (a single thread sees nothing between
//! them). With [`OuterScript::explicit_signals`], the `Signal` is a step of its own
//! ([`ModelOp::OuterSignal`]), or two ([`ModelOp::OuterSignalEnter`] and
//! [`ModelOp::OuterSignalReturn`], with the operations between them made from inside the callback),
//! so that the orderings other threads can see are reachable too; the linearizability check uses
//! that form.
//!
//! ```
//! use comasync::guid::IID_AsyncIPipeByte;
//! use comasync::hresult::{E_FAIL, S_OK};
//! use comasync::testing::model::{CallModel, FinishMode, ModelOutcome, OuterScript, READ};
//!
//! let script = OuterScript { signal_results: vec![E_FAIL], ..OuterScript::ok() };
//! let mut c = CallModel::aggregated(IID_AsyncIPipeByte, FinishMode::Strict, script);
//! assert_eq!(c.begin(READ), ModelOutcome::Returns(S_OK));
//! c.server_complete(S_OK, &[1]);
//! assert_eq!(c.outer().unwrap().signals(), 1);
//! // The failing Signal replaced the result Finish_ had not taken yet.
//! assert_eq!(c.finish(READ), ModelOutcome::Finished { hr: E_FAIL, outs: vec![] });
//! ```
//!
//! ```
//! use comasync::guid::IID_AsyncIPipeByte;
//! use comasync::hresult::{RPC_E_CALL_CANCELED, RPC_S_CALLPENDING, S_OK};
//! use comasync::testing::model::{State, FinishMode, ModelOp, ModelOutcome, World, READ};
//!
//! let mut w = World::new(IID_AsyncIPipeByte, FinishMode::Blocking, &[]);
//! assert_eq!(w.apply(&ModelOp::Begin(READ)), ModelOutcome::Returns(S_OK));
//! let wait = ModelOp::Wait { flags: 0, timeout: 0 };
//! assert_eq!(w.apply(&wait), ModelOutcome::Returns(RPC_S_CALLPENDING));
//! assert_eq!(w.apply(&ModelOp::Cancel(0)), ModelOutcome::Returns(S_OK));
//! assert_eq!(w.call().state(), State::Signaled { cancelled: true });
//! assert_eq!(w.apply(&ModelOp::Finish(READ)), ModelOutcome::Returns(RPC_E_CALL_CANCELED));
//! assert_eq!(ModelOp::Begin(READ).to_string(), "Begin_Read");
//! ```

// Without the `testing` feature only the scenario check (`script::model_check`) uses the
// model, and it does not need every item.
#![cfg_attr(not(feature = "testing"), allow(dead_code, unused_imports))]

use std::borrow::Cow;

use crate::guid::{
    IID_ICancelMethodCalls, IID_ISynchronize, IID_ISynchronizeHandle, IID_IUnknown, IID, WELL_KNOWN,
};
use crate::hresult::{
    E_INVALIDARG, E_NOINTERFACE, E_UNEXPECTED, HRESULT, RPC_E_CALL_CANCELED, RPC_E_CALL_COMPLETE,
    RPC_E_DISCONNECTED, RPC_E_NO_SYNC, RPC_E_OUT_OF_RESOURCES, RPC_E_TIMEOUT, RPC_S_CALLPENDING,
    S_OK,
};

mod apartment;
mod call;
mod container;
mod event;
mod outer;
mod security;
mod world;

/// What `Finish_` does before the call has completed (spec D5): the implementation's own
/// [`call::FinishMode`](crate::call::FinishMode), the same two readings.
pub use crate::call::FinishMode;
/// The state of a call object (spec 2.1): the implementation's own
/// [`call::State`](crate::call::State), the same five states.
pub use crate::call::State;
pub use apartment::{ApartmentModel, AptNo, Unmarshaled};
#[cfg(test)]
pub(crate) use call::fault;
pub use call::CallModel;
pub use container::ContainerModel;
pub use event::{co_wait_for_multiple_handles, EventClass, EventModel};
pub use outer::{OuterModel, OuterScript, SignalPhase};
pub use security::{ModelBlanket, ModelPrincipal, SecurityModel};
pub use world::{ModelOp, World};

/// `INFINITE` (0xFFFFFFFF): a wait timeout that never expires.
pub const INFINITE: u32 = 0xFFFF_FFFF;

/// `RPC_C_CANCEL_INFINITE_TIMEOUT` (−1 as a `ULONG`): a `Cancel` that waits for the server
/// forever, and so never returns `S_OK` (spec row 15).
pub const RPC_C_CANCEL_INFINITE_TIMEOUT: u32 = u32::MAX;

/// `COWAIT_WAITALL` (1): wait for every handle.
pub const COWAIT_WAITALL: u32 = 1;

/// Every defined `COWAIT_FLAGS` bit (`WAITALL | ALERTABLE | INPUTAVAILABLE | DISPATCH_CALLS |
/// DISPATCH_WINDOW_MESSAGES`); any other bit is rejected with `E_INVALIDARG` (spec 1.9, 2.1).
pub const COWAIT_VALID_FLAGS: u32 = 0x1F;

/// The most handles `CoWaitForMultipleHandles` accepts (`MAXIMUM_WAIT_OBJECTS`); more give
/// `E_INVALIDARG` (spec 1.9).
pub const MAXIMUM_WAIT_OBJECTS: usize = 64;

/// How many objects an `ISynchronizeContainer` holds (spec 1.6).
pub const CONTAINER_CAPACITY: usize = 63;

/// The index of a method of the asynchronous interface: `Begin_x`/`Finish_x` pairs are
/// identified by it.
pub type MethodIndex = usize;

/// Method 0, printed `Read` (`Begin_Read` / `Finish_Read`).
pub const READ: MethodIndex = 0;

/// Method 1, printed `Write` (`Begin_Write` / `Finish_Write`).
pub const WRITE: MethodIndex = 1;

/// The index of an event in a [`World`] (or in the slice given to
/// [`co_wait_for_multiple_handles`] and [`ContainerModel`]).
pub type EventId = usize;

/// The out-parameters of a `Finish_`, as opaque values the server hands back.
pub type Outs = Vec<u32>;

/// The printable name of a method: `Read` for 0, `Write` for 1, `Method<n>` otherwise.
pub fn method_name(m: MethodIndex) -> Cow<'static, str> {
    match m {
        READ => Cow::Borrowed("Read"),
        WRITE => Cow::Borrowed("Write"),
        n => Cow::Owned(format!("Method{n}")),
    }
}

/// What an operation does, as the model predicts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ModelOutcome {
    /// The COM call returns this `HRESULT` (and no out-values).
    Returns(HRESULT),
    /// `Finish_` of a normally completed call returns the server's `HRESULT` and
    /// out-parameters (row 12). Failures of `Finish_` itself are [`ModelOutcome::Returns`].
    Finished {
        /// The server method's `HRESULT` (which may itself be a failure code).
        hr: HRESULT,
        /// The server method's out-parameters.
        outs: Outs,
    },
    /// The call does not return in this state (an `INFINITE` wait on an unsignaled object, or
    /// `Finish_` before completion in [`FinishMode::Blocking`]). The state is unchanged; the
    /// call would return once another operation completes the call or signals the object.
    Blocks,
    /// `Cancel(s)` with `s > 0` made the request and is still waiting for the server; it returns
    /// later, as reported by [`ModelOutcome::Delivered`] or [`ModelOutcome::CancelReturns`].
    CancelInFlight,
    /// [`ModelOp::CancelTimeout`]: the in-flight `Cancel`'s window expired; the call was completed
    /// locally and the `Cancel` returns this (`S_OK`).
    CancelReturns(HRESULT),
    /// [`ModelOp::ServerComplete`]: the server's result was stored and the call is signaled.
    Delivered {
        /// What an in-flight `Cancel` now returns (`RPC_E_CALL_COMPLETE`), if one was in
        /// flight.
        cancel_returns: Option<HRESULT>,
    },
    /// [`ModelOp::ServerComplete`]: no call was waiting for the result (after a local cancel, after
    /// completion, in `Idle`, or after release); it is discarded.
    Dropped,
    /// The final `Release`.
    Released {
        /// A call had been begun and not finished (state `Pending`, `Cancelling` or
        /// `Signaled`); it is abandoned and its results, if any, discarded (rows 20, 21).
        abandoned: bool,
    },
    /// `CoWaitForMultipleHandles` returns `hr` and leaves `*lpdwindex` as `index`.
    CoWait {
        /// The return value.
        hr: HRESULT,
        /// The value written to `*lpdwindex`; `None` when nothing was written (a missing
        /// index pointer).
        index: Option<u32>,
    },
    /// `ISynchronizeContainer::WaitMultiple` returns `hr`; on `S_OK`, `*ppSync` is the
    /// container's object at `position` (in the order objects were added).
    WaitMultiple {
        /// The return value.
        hr: HRESULT,
        /// The position of the returned object; `None` unless `hr` is `S_OK`.
        position: Option<usize>,
    },
    /// The operation does not apply to this state (a harness error, not a COM result): an
    /// unknown event index, a [`ModelOp::CancelTimeout`] with no finite `Cancel` in flight, a
    /// second final `Release`. Nothing changes.
    Invalid(&'static str),
}

impl ModelOutcome {
    /// The `HRESULT` some COM call returns at this step, if one does: the operation's own
    /// result, or for [`ModelOutcome::CancelReturns`] the in-flight `Cancel`'s. `None` for
    /// [`ModelOutcome::Blocks`], [`ModelOutcome::CancelInFlight`], [`ModelOutcome::Delivered`],
    /// [`ModelOutcome::Dropped`], [`ModelOutcome::Released`] and [`ModelOutcome::Invalid`].
    pub fn hr(&self) -> Option<HRESULT> {
        match self {
            ModelOutcome::Returns(hr)
            | ModelOutcome::CancelReturns(hr)
            | ModelOutcome::Finished { hr, .. }
            | ModelOutcome::CoWait { hr, .. }
            | ModelOutcome::WaitMultiple { hr, .. } => Some(*hr),
            _ => None,
        }
    }

    /// `true` for [`ModelOutcome::Blocks`].
    pub fn blocks(&self) -> bool {
        matches!(self, ModelOutcome::Blocks)
    }
}

/// `Wait` on one object whose event is `set`: the rules shared by the call object and the
/// events, before any consumption.
fn wait_one(set: bool, flags: u32, timeout: u32) -> ModelOutcome {
    if flags & !COWAIT_VALID_FLAGS != 0 {
        ModelOutcome::Returns(E_INVALIDARG)
    } else if set {
        ModelOutcome::Returns(S_OK)
    } else if timeout == INFINITE {
        ModelOutcome::Blocks
    } else {
        ModelOutcome::Returns(RPC_S_CALLPENDING)
    }
}
