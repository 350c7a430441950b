//! A pure, sequential reference model of the COM asynchronous call object and the system
//! synchronization objects: the executable form of section 2 of the behavioural spec
//! (`com-async-spec.md`), with the readings of section 5 that comasync follows.
//!
//! # What it is for
//!
//! The model predicts, for a state and one operation, **what the operation returns and what
//! the next state is**. It has no threads, no clocks and no shared memory, and it does not call
//! the crate's implementation: it uses only the [`hresult`](crate::hresult) codes and the
//! [`guid`](crate::guid) IIDs. It is written from the spec alone so that running the same
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
//! * [`World`]: a call object, `N` events and a container together, driven by one [`Op`]
//!   type; convenient for operation-sequence tests. [`World::apply`] mutates in place,
//!   [`World::step`] is the pure form `(state, op) → (outcome, next state)`.
//!
//! Every operation returns an [`Outcome`]. Besides "the COM call returns this `HRESULT`"
//! ([`Outcome::Returns`]) an outcome can say that the call **blocks** ([`Outcome::Blocks`]:
//! an infinite wait, or a `Finish_` before completion in [`FinishMode::Blocking`]), or that the
//! operation is **not applicable** in this state ([`Outcome::Invalid`]: a test-harness error
//! such as an unknown event index, not a COM result). Neither changes the state.
//!
//! # Timing, made explicit
//!
//! `ICancelMethodCalls::Cancel(s)` returns a result that depends on whether the server
//! completes within `s` seconds. The model splits it in two steps instead of being
//! nondeterministic: [`Op::Cancel`] makes the request (with `s == 0` it also completes the call
//! locally and returns `S_OK` at once; otherwise the `Cancel` is *in flight*,
//! [`Outcome::CancelInFlight`]), and the in-flight `Cancel` is then resolved either by
//! [`Op::ServerComplete`] (the `Cancel` returns `RPC_E_CALL_COMPLETE`, reported in
//! [`Outcome::Delivered`]) or by [`Op::CancelTimeout`] (only for a finite `s`; the `Cancel`
//! returns `S_OK`, [`Outcome::CancelReturns`]).
//!
//! # Call-object states (spec 2.1)
//!
//! [`CallState::Idle`] → `Begin_` → [`CallState::Pending`] → server completes →
//! [`CallState::Signaled`]`{cancelled: false}` → `Finish_` → `Idle`. A `Cancel` in `Pending`
//! goes to [`CallState::Cancelling`] and from there to `Signaled{cancelled: false}` (the server
//! was in time) or `Signaled{cancelled: true}` (completed locally). The final `Release` goes to
//! [`CallState::Gone`] from anywhere.
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
//! * A server completion arriving when no call is waiting for it (`Idle`, `Signaled`, `Gone`)
//!   is dropped. [`Op::ServerComplete`] always targets the *current* call: a late completion of
//!   an earlier, locally cancelled call is something the implementation must drop, and it is not
//!   an operation of this model.
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
//! By default a completion and its `Signal` are one step (a single thread sees nothing
//! between them). With [`OuterScript::explicit_signals`], the `Signal` is a step of its own
//! ([`Op::OuterSignal`]), or two ([`Op::OuterSignalEnter`] and [`Op::OuterSignalReturn`], with
//! the operations between them made from inside the callback), so that the orderings other
//! threads can see are reachable too; the linearizability check uses that form.
//!
//! ```
//! use comasync::guid::IID_AsyncIPipeByte;
//! use comasync::hresult::{E_FAIL, S_OK};
//! use comasync::model::{CallModel, FinishMode, Outcome, OuterScript, READ};
//!
//! let script = OuterScript { signal_results: vec![E_FAIL], ..OuterScript::ok() };
//! let mut c = CallModel::aggregated(IID_AsyncIPipeByte, FinishMode::Strict, script);
//! assert_eq!(c.begin(READ), Outcome::Returns(S_OK));
//! c.server_complete(S_OK, &[1]);
//! assert_eq!(c.outer().unwrap().signals(), 1);
//! // The failing Signal replaced the result Finish_ had not taken yet.
//! assert_eq!(c.finish(READ), Outcome::Finished { hr: E_FAIL, outs: vec![] });
//! ```
//!
//! ```
//! use comasync::guid::IID_AsyncIPipeByte;
//! use comasync::hresult::{RPC_E_CALL_CANCELED, RPC_S_CALLPENDING, S_OK};
//! use comasync::model::{CallState, FinishMode, Op, Outcome, World, READ};
//!
//! let mut w = World::new(IID_AsyncIPipeByte, FinishMode::Blocking, &[]);
//! assert_eq!(w.apply(&Op::Begin(READ)), Outcome::Returns(S_OK));
//! assert_eq!(w.apply(&Op::Wait { flags: 0, timeout: 0 }), Outcome::Returns(RPC_S_CALLPENDING));
//! assert_eq!(w.apply(&Op::Cancel(0)), Outcome::Returns(S_OK));
//! assert_eq!(w.call().state(), CallState::Signaled { cancelled: true });
//! assert_eq!(w.apply(&Op::Finish(READ)), Outcome::Returns(RPC_E_CALL_CANCELED));
//! assert_eq!(Op::Begin(READ).to_string(), "Begin_Read");
//! ```

use std::borrow::Cow;
use std::fmt;

use crate::guid::{
    IID_ICancelMethodCalls, IID_ISynchronize, IID_ISynchronizeHandle, IID_IUnknown, IID, WELL_KNOWN,
};
use crate::hresult::{
    E_INVALIDARG, E_NOINTERFACE, E_UNEXPECTED, HRESULT, RPC_E_CALL_CANCELED, RPC_E_CALL_COMPLETE,
    RPC_E_DISCONNECTED, RPC_E_NO_SYNC, RPC_E_OUT_OF_RESOURCES, RPC_E_TIMEOUT, RPC_S_CALLPENDING,
    S_OK,
};

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

/// What `Finish_` does before the call has completed (spec D5).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum FinishMode {
    /// `Finish_` blocks until the call completes, as the SDK proxy does ([`Outcome::Blocks`]).
    #[default]
    Blocking,
    /// `Finish_` returns `RPC_S_CALLPENDING` at once and changes nothing.
    Strict,
}

/// The state of a call object (spec 2.1).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum CallState {
    /// Fresh, or the last call was finished.
    Idle,
    /// `Begin_` accepted; not yet complete.
    Pending,
    /// A `Cancel(s)` with `s > 0` has marked the call cancelled and is waiting for the server.
    Cancelling,
    /// Complete; `Finish_` not yet called.
    Signaled {
        /// `true`: completed locally by `Cancel` (`Finish_` gives `RPC_E_CALL_CANCELED`);
        /// `false`: the server's results are stored.
        cancelled: bool,
    },
    /// The last reference was released.
    Gone,
}

/// What an operation does, as the model predicts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The COM call returns this `HRESULT` (and no out-values).
    Returns(HRESULT),
    /// `Finish_` of a normally completed call returns the server's `HRESULT` and
    /// out-parameters (row 12). Failures of `Finish_` itself are [`Outcome::Returns`].
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
    /// `Cancel(s)` with `s > 0` made the request and is still waiting for the server; it
    /// returns later, as reported by [`Outcome::Delivered`] or [`Outcome::CancelReturns`].
    CancelInFlight,
    /// [`Op::CancelTimeout`]: the in-flight `Cancel`'s window expired; the call was completed
    /// locally and the `Cancel` returns this (`S_OK`).
    CancelReturns(HRESULT),
    /// [`Op::ServerComplete`]: the server's result was stored and the call is signaled.
    Delivered {
        /// What an in-flight `Cancel` now returns (`RPC_E_CALL_COMPLETE`), if one was in
        /// flight.
        cancel_returns: Option<HRESULT>,
    },
    /// [`Op::ServerComplete`]: no call was waiting for the result (after a local cancel, after
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
    /// unknown event index, a [`Op::CancelTimeout`] with no finite `Cancel` in flight, a
    /// second final `Release`. Nothing changes.
    Invalid(&'static str),
}

impl Outcome {
    /// The `HRESULT` some COM call returns at this step, if one does: the operation's own
    /// result, or for [`Outcome::CancelReturns`] the in-flight `Cancel`'s. `None` for
    /// [`Outcome::Blocks`], [`Outcome::CancelInFlight`], [`Outcome::Delivered`],
    /// [`Outcome::Dropped`], [`Outcome::Released`] and [`Outcome::Invalid`].
    pub fn hr(&self) -> Option<HRESULT> {
        match self {
            Outcome::Returns(hr)
            | Outcome::CancelReturns(hr)
            | Outcome::Finished { hr, .. }
            | Outcome::CoWait { hr, .. }
            | Outcome::WaitMultiple { hr, .. } => Some(*hr),
            _ => None,
        }
    }

    /// `true` for [`Outcome::Blocks`].
    pub fn blocks(&self) -> bool {
        matches!(self, Outcome::Blocks)
    }
}

// ---------------------------------------------------------------------------------------------
// Call object
// ---------------------------------------------------------------------------------------------

/// The model of one call object (spec 2.1), with its manual-reset `ISynchronize`.
///
/// Fields are private so that every value is reachable by operations and satisfies
/// [`CallModel::check_invariants`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallModel {
    async_iid: IID,
    mode: FinishMode,
    state: CallState,
    cancelled: bool,
    /// `cancelled` before the current `Begin_`: what `TestCancel` answers again if the outer's
    /// `Reset` fails it.
    cancelled_before: bool,
    method: Option<MethodIndex>,
    event_set: bool,
    result: Option<(HRESULT, Outs)>,
    cancel_in_flight: Option<u32>,
    /// How many `Begin_`s passed the state check (the current call's number).
    calls: u64,
    outer: Option<OuterModel>,
    resetting: bool,
}

impl CallModel {
    /// A fresh call object (`Idle`, event clear) for the asynchronous interface `async_iid`,
    /// with `Finish_` blocking before completion (D5).
    pub fn new(async_iid: IID) -> Self {
        Self::with_mode(async_iid, FinishMode::default())
    }

    /// A fresh call object with the given [`FinishMode`].
    pub fn with_mode(async_iid: IID, mode: FinishMode) -> Self {
        CallModel {
            async_iid,
            mode,
            state: CallState::Idle,
            cancelled: false,
            cancelled_before: false,
            method: None,
            event_set: false,
            result: None,
            cancel_in_flight: None,
            calls: 0,
            outer: None,
            resetting: false,
        }
    }

    /// A fresh call object aggregated by a client whose outer `ISynchronize` answers as
    /// `script` says (spec 3.6; see [Aggregation](self#aggregation)).
    pub fn aggregated(async_iid: IID, mode: FinishMode, script: OuterScript) -> Self {
        CallModel {
            outer: Some(OuterModel {
                script,
                resets: 0,
                signals: 0,
                phase: SignalPhase::Idle,
                after_reset: false,
            }),
            ..Self::with_mode(async_iid, mode)
        }
    }

    /// The aggregating client's outer, if the call object is aggregated.
    pub fn outer(&self) -> Option<&OuterModel> {
        self.outer.as_ref()
    }

    /// How many `Begin_`s passed the state check so far: the number of the current (or last)
    /// call, counting a `Begin_` whose outer `Reset` failed.
    pub fn call_number(&self) -> u64 {
        self.calls
    }

    /// The IID of the asynchronous interface the call object implements.
    pub fn async_iid(&self) -> IID {
        self.async_iid
    }

    /// What `Finish_` does before completion.
    pub fn mode(&self) -> FinishMode {
        self.mode
    }

    /// The current state.
    pub fn state(&self) -> CallState {
        self.state
    }

    /// The flag `TestCancel` reports: set by a successful cancel request, cleared by the next
    /// successful `Begin_`.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// The method of the call in progress (`Pending`, `Cancelling`, `Signaled`).
    pub fn method(&self) -> Option<MethodIndex> {
        self.method
    }

    /// Whether the call object's manual-reset event is set.
    pub fn event_set(&self) -> bool {
        self.event_set
    }

    /// The server's stored `HRESULT` and out-parameters (`Signaled{cancelled: false}` only).
    pub fn result(&self) -> Option<&(HRESULT, Outs)> {
        self.result.as_ref()
    }

    /// The `ulSeconds` of the `Cancel` in flight (`Cancelling` only).
    pub fn cancel_in_flight(&self) -> Option<u32> {
        self.cancel_in_flight
    }

    /// Whether a call has been begun and not finished (`Pending`, `Cancelling`, `Signaled`).
    pub fn in_progress(&self) -> bool {
        matches!(
            self.state,
            CallState::Pending | CallState::Cancelling | CallState::Signaled { .. }
        )
    }

    /// `Begin_m(in…)` (rows 5, 6, 22).
    ///
    /// `Idle` → `Pending`, `S_OK`, event reset, cancelled flag cleared. `Pending`, `Cancelling`
    /// or `Signaled` → `RPC_S_CALLPENDING` (`RPC_E_CALL_PENDING`), unchanged. `Gone` →
    /// `RPC_E_DISCONNECTED`.
    ///
    /// Aggregated (spec 3.6): after the state check, `Begin_` waits for the previous call's
    /// outer `Signal` to return ([`Outcome::Blocks`] while it is [due](SignalPhase::Due), or
    /// while the previous call's own `Begin_` is still in the outer's `Reset`; allowed from
    /// inside a [running](SignalPhase::Running) `Signal`, on its thread), then
    /// calls the outer's `Reset`. If `Reset` fails (a panic counts as `E_UNEXPECTED`), the call
    /// object stays `Idle`, `Begin_` returns that `HRESULT` and no server call starts.
    pub fn begin(&mut self, m: MethodIndex) -> Outcome {
        match self.begin_start(m) {
            Outcome::Returns(S_OK) => self.begin_reset_returns(),
            other => other,
        }
    }

    /// The first half of [`begin`](Self::begin), for histories where other threads can act
    /// while an aggregating client's `Reset` runs: the state check, the wait for the previous
    /// call's `Signal`, and (when it passes) the call becomes `Pending` and the outer's
    /// `Reset` is entered. `S_OK` means "passed, `Reset` entered"; anything else is what
    /// `Begin_` returns. Not aggregated, the call simply begins.
    pub fn begin_start(&mut self, m: MethodIndex) -> Outcome {
        match self.state {
            CallState::Gone => Outcome::Returns(RPC_E_DISCONNECTED),
            CallState::Idle => {
                if let Some(o) = &mut self.outer {
                    // The previous call's Signal has not returned: it is due, or cannot be
                    // due yet because that call's Begin_ is still in the outer's Reset (the
                    // call was cancelled and finished meanwhile).
                    if self.resetting || matches!(o.phase, SignalPhase::Due { .. }) {
                        return Outcome::Blocks;
                    }
                    o.resets += 1;
                    self.resetting = true;
                }
                self.calls += 1;
                self.cancelled_before = self.cancelled;
                self.cancelled = false;
                self.event_set = false;
                self.result = None;
                self.state = CallState::Pending;
                self.method = Some(m);
                Outcome::Returns(S_OK)
            }
            CallState::Pending | CallState::Cancelling | CallState::Signaled { .. } => {
                Outcome::Returns(RPC_S_CALLPENDING)
            }
        }
    }

    /// The second half of [`begin`](Self::begin): the outer's `Reset` returns the script's
    /// `HRESULT`. On a failure a call still `Pending` goes back to `Idle` (no server call
    /// starts) and `Begin_` returns it; otherwise `Begin_` returns `S_OK`. Not aggregated:
    /// `S_OK`. [`Outcome::Invalid`] when no `Reset` is running.
    ///
    /// A call completed locally (by a `Cancel`) while the `Reset` ran is signalled once it
    /// returns `S_OK`. If it fails, the call object returns to `Idle` even so — a call
    /// cancelled meanwhile and not yet finished is forgotten, a `Cancel` still waiting out its
    /// window then returns `RPC_E_CALL_COMPLETE` — and nothing is signalled.
    pub fn begin_reset_returns(&mut self) -> Outcome {
        let Some(o) = &mut self.outer else {
            return Outcome::Returns(S_OK);
        };
        if !self.resetting {
            return Outcome::Invalid("no outer Reset is running");
        }
        self.resetting = false;
        let hr = nth(&o.script.reset_results, o.resets - 1);
        let after_reset = std::mem::take(&mut o.after_reset);
        if hr.failed() {
            if self.in_progress() {
                self.state = CallState::Idle;
                // The call never happened: TestCancel answers for the previous one again.
                self.cancelled = self.cancelled_before;
                self.method = None;
                self.result = None;
                self.cancel_in_flight = None;
            }
            return Outcome::Returns(hr);
        }
        if after_reset && self.state != CallState::Gone {
            self.signal_due();
        }
        Outcome::Returns(S_OK)
    }

    /// Whether an aggregating client's `Reset` runs (between
    /// [`begin_start`](Self::begin_start) and [`begin_reset_returns`](Self::begin_reset_returns)).
    pub fn resetting(&self) -> bool {
        self.resetting
    }

    /// The server completes the current call with `hr` and out-parameters `outs` (rows 7, 15,
    /// 18).
    ///
    /// `Pending` → `Signaled{cancelled: false}`, event set, results stored. `Cancelling` → the
    /// same, and the in-flight `Cancel` returns `RPC_E_CALL_COMPLETE`. Any other state: the
    /// result is [dropped](Outcome::Dropped).
    pub fn server_complete(&mut self, hr: HRESULT, outs: &[u32]) -> Outcome {
        let cancel_returns = match self.state {
            CallState::Pending => None,
            CallState::Cancelling => Some(RPC_E_CALL_COMPLETE),
            _ => return Outcome::Dropped,
        };
        self.state = CallState::Signaled { cancelled: false };
        self.event_set = true;
        self.result = Some((hr, outs.to_vec()));
        self.cancel_in_flight = None;
        self.completed();
        Outcome::Delivered { cancel_returns }
    }

    /// A call completed (by the server or locally): an aggregating client's `Signal` is now
    /// due — or, inside a running `Signal`, deferred until it returns — and, unless the script
    /// asks for [explicit signals](OuterScript::explicit_signals), delivered at once.
    fn completed(&mut self) {
        let resetting = self.resetting;
        let Some(o) = &mut self.outer else { return };
        if resetting {
            // Completed (locally) while the outer's Reset runs: signalled after it returns
            // S_OK, never if it fails.
            o.after_reset = true;
            return;
        }
        self.signal_due();
    }

    /// The current call's `Signal` becomes due (or deferred, inside a running `Signal`), and
    /// is delivered at once unless signals are explicit.
    fn signal_due(&mut self) {
        let calls = self.calls;
        let Some(o) = &mut self.outer else { return };
        o.phase = match o.phase {
            SignalPhase::Idle | SignalPhase::Due { .. } => SignalPhase::Due { call: calls },
            SignalPhase::Running { call, .. } => SignalPhase::Running {
                call,
                deferred: Some(calls),
            },
        };
        if !o.script.explicit_signals {
            self.outer_signal();
        }
    }

    /// The due outer `Signal` is called and returns ([`Op::OuterSignal`]): the enter and the
    /// return of [`outer_signal_enter`](Self::outer_signal_enter) and
    /// [`outer_signal_return`](Self::outer_signal_return) with nothing between them. Returns
    /// what `Signal` returned; [`Outcome::Invalid`] when no `Signal` is due.
    pub fn outer_signal(&mut self) -> Outcome {
        match self.outer_signal_enter() {
            Outcome::Returns(_) => self.outer_signal_return(),
            other => other,
        }
    }

    /// The completing thread calls the due outer `Signal` ([`Op::OuterSignalEnter`]); until
    /// [`outer_signal_return`](Self::outer_signal_return), operations are made from inside it,
    /// on its thread. `S_OK`, or [`Outcome::Invalid`] when no `Signal` is due.
    pub fn outer_signal_enter(&mut self) -> Outcome {
        let Some(o) = &mut self.outer else {
            return Outcome::Invalid("the call object is not aggregated");
        };
        let SignalPhase::Due { call } = o.phase else {
            return Outcome::Invalid("no outer Signal is due");
        };
        o.signals += 1;
        o.phase = SignalPhase::Running {
            call,
            deferred: None,
        };
        Outcome::Returns(S_OK)
    }

    /// The running outer `Signal` returns ([`Op::OuterSignalReturn`]) with the script's
    /// `HRESULT` (a panic counts as `E_UNEXPECTED`). A failure becomes the call's result, with
    /// no out-parameters, if `Finish_` has not taken it yet (a locally cancelled call keeps
    /// `RPC_E_CALL_CANCELED`). A completion deferred while it ran is now due, unless the
    /// client has begun another call since (then it is dropped). Returns the `Signal`'s
    /// `HRESULT`; [`Outcome::Invalid`] when no `Signal` runs.
    pub fn outer_signal_return(&mut self) -> Outcome {
        let calls = self.calls;
        let Some(o) = &mut self.outer else {
            return Outcome::Invalid("the call object is not aggregated");
        };
        let SignalPhase::Running { call, deferred } = o.phase else {
            return Outcome::Invalid("no outer Signal is running");
        };
        let hr = nth(&o.script.signal_results, o.signals - 1);
        let explicit = o.script.explicit_signals;
        o.phase = match deferred {
            Some(d) if d == calls && self.state != CallState::Gone => SignalPhase::Due { call: d },
            _ => SignalPhase::Idle,
        };
        if hr.failed() && call == calls && self.result.is_some() {
            self.result = Some((hr, Vec::new()));
        }
        if !explicit && matches!(self.outer_phase(), Some(SignalPhase::Due { .. })) {
            self.outer_signal();
        }
        Outcome::Returns(hr)
    }

    fn outer_phase(&self) -> Option<SignalPhase> {
        self.outer.as_ref().map(|o| o.phase)
    }

    /// `Finish_m(out…)` (rows 12, 13, 14, 18).
    ///
    /// Checked in this order: `Gone` → `RPC_E_DISCONNECTED`; `Idle` → `RPC_E_CALL_COMPLETE`;
    /// `m` not the begun method → `E_UNEXPECTED`, unchanged; `Signaled{false}` → the stored
    /// result ([`Outcome::Finished`]), → `Idle`; `Signaled{true}` → `RPC_E_CALL_CANCELED`, →
    /// `Idle`; `Pending` or `Cancelling` → [`Outcome::Blocks`] ([`FinishMode::Blocking`]) or
    /// `RPC_S_CALLPENDING` ([`FinishMode::Strict`]), unchanged. The event stays as it is.
    pub fn finish(&mut self, m: MethodIndex) -> Outcome {
        match self.state {
            CallState::Gone => Outcome::Returns(RPC_E_DISCONNECTED),
            CallState::Idle => Outcome::Returns(RPC_E_CALL_COMPLETE),
            _ if self.method != Some(m) => Outcome::Returns(E_UNEXPECTED),
            CallState::Signaled { cancelled: false } => {
                let (hr, outs) = self
                    .result
                    .take()
                    .expect("invariant: Signaled{cancelled: false} stores a result");
                self.state = CallState::Idle;
                self.method = None;
                Outcome::Finished { hr, outs }
            }
            CallState::Signaled { cancelled: true } => {
                self.state = CallState::Idle;
                self.method = None;
                Outcome::Returns(RPC_E_CALL_CANCELED)
            }
            CallState::Pending | CallState::Cancelling => match self.mode {
                FinishMode::Blocking => Outcome::Blocks,
                FinishMode::Strict => Outcome::Returns(RPC_S_CALLPENDING),
            },
        }
    }

    /// `ICancelMethodCalls::Cancel(seconds)` (rows 15, 16, 17).
    ///
    /// `Pending`: the cancelled flag is set; with `seconds == 0` the call completes locally at
    /// once (`Signaled{true}`, event set) and `Cancel` returns `S_OK`; otherwise →
    /// `Cancelling` and the `Cancel` is [in flight](Outcome::CancelInFlight). `Cancelling` or
    /// `Signaled{true}` → `RPC_E_CALL_CANCELED`. `Signaled{false}` or `Idle` →
    /// `RPC_E_CALL_COMPLETE`. `Gone` → `RPC_E_DISCONNECTED`.
    pub fn cancel(&mut self, seconds: u32) -> Outcome {
        match self.state {
            CallState::Gone => Outcome::Returns(RPC_E_DISCONNECTED),
            CallState::Pending => {
                self.cancelled = true;
                if seconds == 0 {
                    self.complete_locally();
                    Outcome::Returns(S_OK)
                } else {
                    self.state = CallState::Cancelling;
                    self.cancel_in_flight = Some(seconds);
                    Outcome::CancelInFlight
                }
            }
            CallState::Cancelling | CallState::Signaled { cancelled: true } => {
                Outcome::Returns(RPC_E_CALL_CANCELED)
            }
            CallState::Signaled { cancelled: false } | CallState::Idle => {
                Outcome::Returns(RPC_E_CALL_COMPLETE)
            }
        }
    }

    /// The window of the in-flight `Cancel` expires before the server completes (row 15):
    /// `Cancelling` → `Signaled{true}`, event set, and the `Cancel` returns `S_OK`
    /// ([`Outcome::CancelReturns`]). [`Outcome::Invalid`] when no `Cancel` with a finite
    /// timeout is in flight.
    pub fn cancel_timeout(&mut self) -> Outcome {
        match (self.state, self.cancel_in_flight) {
            (CallState::Cancelling, Some(RPC_C_CANCEL_INFINITE_TIMEOUT)) => {
                Outcome::Invalid("an infinite Cancel never times out")
            }
            (CallState::Cancelling, Some(_)) => {
                self.complete_locally();
                Outcome::CancelReturns(S_OK)
            }
            _ => Outcome::Invalid("no Cancel is in flight"),
        }
    }

    fn complete_locally(&mut self) {
        self.state = CallState::Signaled { cancelled: true };
        self.event_set = true;
        self.result = None;
        self.cancel_in_flight = None;
        self.completed();
    }

    /// `ICancelMethodCalls::TestCancel()` (row 19): `RPC_E_CALL_CANCELED` if the cancelled flag
    /// is set, else `RPC_S_CALLPENDING`; `Gone` → `RPC_E_DISCONNECTED`.
    pub fn test_cancel(&self) -> Outcome {
        match self.state {
            CallState::Gone => Outcome::Returns(RPC_E_DISCONNECTED),
            _ if self.cancelled => Outcome::Returns(RPC_E_CALL_CANCELED),
            _ => Outcome::Returns(RPC_S_CALLPENDING),
        }
    }

    /// `ISynchronize::Wait(flags, timeout)` on the call object (rows 8–11).
    ///
    /// `Gone` → `RPC_E_DISCONNECTED`; flag bits outside [`COWAIT_VALID_FLAGS`] →
    /// `E_INVALIDARG`; event set → `S_OK` (manual reset: not consumed); otherwise
    /// `RPC_S_CALLPENDING`, or [`Outcome::Blocks`] for [`INFINITE`]. `COWAIT_WAITALL` is
    /// accepted on the single handle.
    pub fn wait(&self, flags: u32, timeout: u32) -> Outcome {
        if self.state == CallState::Gone {
            return Outcome::Returns(RPC_E_DISCONNECTED);
        }
        wait_one(self.event_set, flags, timeout)
    }

    /// `QueryInterface(iid)` (row 23): the async IID, `IUnknown`, `ISynchronize`,
    /// `ISynchronizeHandle` and `ICancelMethodCalls` → `S_OK`; anything else →
    /// `E_NOINTERFACE`; `Gone` → `RPC_E_DISCONNECTED`.
    pub fn query_interface(&self, iid: &IID) -> Outcome {
        if self.state == CallState::Gone {
            return Outcome::Returns(RPC_E_DISCONNECTED);
        }
        let known = [
            self.async_iid,
            IID_IUnknown,
            IID_ISynchronize,
            IID_ISynchronizeHandle,
            IID_ICancelMethodCalls,
        ];
        if known.contains(iid) {
            Outcome::Returns(S_OK)
        } else {
            Outcome::Returns(E_NOINTERFACE)
        }
    }

    /// The final `Release` (rows 20, 21): → `Gone`, abandoning any call begun and not finished
    /// ([`Outcome::Released`]). A second final release is [`Outcome::Invalid`].
    ///
    /// A `Cancel` still in flight (state `Cancelling`) is abandoned with the call; what it
    /// eventually returns is outside the model (in comasync its caller holds a reference, so
    /// the release cannot be final while it runs).
    pub fn release(&mut self) -> Outcome {
        if self.state == CallState::Gone {
            return Outcome::Invalid("the call object was already released");
        }
        let abandoned = self.in_progress();
        self.state = CallState::Gone;
        self.cancelled = false;
        self.method = None;
        self.event_set = false;
        self.result = None;
        self.cancel_in_flight = None;
        if let Some(o) = &mut self.outer {
            // A released outer is never signalled (no revival); a running Signal finishes.
            if matches!(o.phase, SignalPhase::Due { .. }) {
                o.phase = SignalPhase::Idle;
            }
        }
        Outcome::Released { abandoned }
    }

    /// Applies a call-object operation ([`Op::Begin`] … [`Op::Release`]); any other [`Op`] is
    /// [`Outcome::Invalid`].
    pub fn apply(&mut self, op: &Op) -> Outcome {
        match op {
            Op::Begin(m) => self.begin(*m),
            Op::ServerComplete { hr, outs } => self.server_complete(*hr, outs),
            Op::Finish(m) => self.finish(*m),
            Op::Cancel(s) => self.cancel(*s),
            Op::CancelTimeout => self.cancel_timeout(),
            Op::TestCancel => self.test_cancel(),
            Op::Wait { flags, timeout } => self.wait(*flags, *timeout),
            Op::QueryInterface(iid) => self.query_interface(iid),
            Op::Release => self.release(),
            Op::OuterSignal => self.outer_signal(),
            Op::OuterSignalEnter => self.outer_signal_enter(),
            Op::OuterSignalReturn => self.outer_signal_return(),
            _ => Outcome::Invalid("not an operation on the call object"),
        }
    }

    /// The pure form of [`CallModel::apply`]: the outcome and the next state.
    pub fn step(&self, op: &Op) -> (Outcome, CallModel) {
        let mut next = self.clone();
        let outcome = next.apply(op);
        (outcome, next)
    }

    /// Checks the invariants listed in the [module documentation](self).
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let has_method = self.method.is_some();
        let has_result = self.result.is_some();
        let in_flight = self.cancel_in_flight;
        if in_flight == Some(0) {
            return Err("a Cancel(0) is never in flight");
        }
        match self.state {
            CallState::Gone => {
                if has_method || has_result || self.event_set || self.cancelled {
                    return Err("Gone holds no call");
                }
                if in_flight.is_some() {
                    return Err("Gone has no Cancel in flight");
                }
            }
            CallState::Idle => {
                if has_method || has_result || in_flight.is_some() {
                    return Err("Idle holds no call");
                }
            }
            CallState::Pending => {
                if !has_method || has_result || self.event_set || self.cancelled {
                    return Err("Pending: method set, no result, event clear, not cancelled");
                }
                if in_flight.is_some() {
                    return Err("Pending has no Cancel in flight");
                }
            }
            CallState::Cancelling => {
                if !has_method || has_result || self.event_set || !self.cancelled {
                    return Err("Cancelling: method set, no result, event clear, cancelled");
                }
                if in_flight.is_none() {
                    return Err("Cancelling has a Cancel in flight");
                }
            }
            CallState::Signaled { cancelled } => {
                if !has_method || !self.event_set || in_flight.is_some() {
                    return Err("Signaled: method set, event set, no Cancel in flight");
                }
                if cancelled && (has_result || !self.cancelled) {
                    return Err("Signaled{cancelled}: no result, cancelled flag set");
                }
                if !cancelled && !has_result {
                    return Err("Signaled{normal} stores the server's result");
                }
            }
        }
        if self.resetting && self.outer.is_none() {
            return Err("only an aggregated call object resets an outer");
        }
        if let Some(o) = &self.outer {
            if o.signals > o.resets {
                return Err("the outer is signalled at most once per Reset");
            }
            if let SignalPhase::Due { call } = o.phase {
                if call != self.calls {
                    return Err("only the current call's Signal is ever due");
                }
                if matches!(self.state, CallState::Pending | CallState::Cancelling) {
                    return Err("no call is begun while the previous call's Signal is due");
                }
                if self.state == CallState::Gone {
                    return Err("a released outer is never signalled");
                }
            }
        }
        Ok(())
    }
}

/// The `HRESULT` at position `n` of a script, `S_OK` past its end.
fn nth(results: &[HRESULT], n: u32) -> HRESULT {
    results.get(n as usize).copied().unwrap_or(S_OK)
}

/// How an aggregating client's outer `ISynchronize` answers the call object (spec 3.6): what
/// its `n`-th `Reset` and `n`-th `Signal` return (index 0 first, `S_OK` past the end of each
/// list; an outer whose method panics is scripted as `E_UNEXPECTED`), and whether the
/// model delivers `Signal`s itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct OuterScript {
    /// What each `Reset` returns, in order.
    pub reset_results: Vec<HRESULT>,
    /// What each `Signal` returns, in order.
    pub signal_results: Vec<HRESULT>,
    /// `false` (the default): a completion calls the outer's `Signal` at once, as one step
    /// with it (a single-threaded client sees nothing between them). `true`: the `Signal`
    /// becomes [due](SignalPhase::Due) and waits for [`Op::OuterSignal`] (or
    /// [`Op::OuterSignalEnter`] … [`Op::OuterSignalReturn`], with operations made from inside
    /// it between the two), so that other threads' operations can come first.
    pub explicit_signals: bool,
}

impl OuterScript {
    /// An outer whose `Reset` and `Signal` always return `S_OK`.
    pub fn ok() -> Self {
        Self::default()
    }

    /// The same script with [explicit signals](OuterScript::explicit_signals).
    pub fn explicit(mut self) -> Self {
        self.explicit_signals = true;
        self
    }
}

/// Where the aggregating client's completion callback (its outer `Signal`) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignalPhase {
    /// No completed call waits for its `Signal`.
    Idle,
    /// Call number `call` completed; its `Signal` has not been called yet. A `Begin_` of the
    /// next call waits for it ([`Outcome::Blocks`]); a final `Release` drops it.
    Due {
        /// The call's number ([`CallModel::call_number`]).
        call: u64,
    },
    /// The outer's `Signal` for call `call` is running; the model's operations are made from
    /// inside it, on its thread (`Finish_`, and `Begin_` of the next call, are allowed).
    Running {
        /// The call it signals.
        call: u64,
        /// A call that completed while it ran (on its thread): signalled after it returns,
        /// unless another call was begun by then.
        deferred: Option<u64>,
    },
}

/// The model of an aggregating client's outer `ISynchronize`, as the call object sees it:
/// its script, how many times it was reset and signalled, and its pending `Signal`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OuterModel {
    script: OuterScript,
    resets: u32,
    signals: u32,
    phase: SignalPhase,
    /// A call completed while the outer's `Reset` ran; its `Signal` waits for the `Reset`.
    after_reset: bool,
}

impl OuterModel {
    /// How the outer answers.
    pub fn script(&self) -> &OuterScript {
        &self.script
    }

    /// How many times the call object called the outer's `Reset`.
    pub fn resets(&self) -> u32 {
        self.resets
    }

    /// How many times the call object called (entered) the outer's `Signal`.
    pub fn signals(&self) -> u32 {
        self.signals
    }

    /// Where the completion callback is.
    pub fn phase(&self) -> SignalPhase {
        self.phase
    }
}

/// `Wait` on one object whose event is `set`: the rules shared by the call object and the
/// events, before any consumption.
fn wait_one(set: bool, flags: u32, timeout: u32) -> Outcome {
    if flags & !COWAIT_VALID_FLAGS != 0 {
        Outcome::Returns(E_INVALIDARG)
    } else if set {
        Outcome::Returns(S_OK)
    } else if timeout == INFINITE {
        Outcome::Blocks
    } else {
        Outcome::Returns(RPC_S_CALLPENDING)
    }
}

// ---------------------------------------------------------------------------------------------
// Events
// ---------------------------------------------------------------------------------------------

/// Which system synchronization object an [`EventModel`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventKind {
    /// `CLSID_ManualResetEvent`: a successful `Wait` leaves it set.
    ManualReset,
    /// `CLSID_StdEvent`: a successful `Wait` resets it (auto-reset).
    Auto,
}

/// The model of one `CLSID_ManualResetEvent` or `CLSID_StdEvent` (spec 1.4). It starts
/// clear.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EventModel {
    kind: EventKind,
    set: bool,
}

impl EventModel {
    /// A clear event of the given kind.
    pub fn new(kind: EventKind) -> Self {
        EventModel { kind, set: false }
    }

    /// Its kind.
    pub fn kind(&self) -> EventKind {
        self.kind
    }

    /// Whether it is set.
    pub fn is_set(&self) -> bool {
        self.set
    }

    /// `ISynchronize::Signal()`: sets it, `S_OK`.
    pub fn signal(&mut self) -> Outcome {
        self.set = true;
        Outcome::Returns(S_OK)
    }

    /// `ISynchronize::Reset()`: clears it, `S_OK`.
    pub fn reset(&mut self) -> Outcome {
        self.set = false;
        Outcome::Returns(S_OK)
    }

    /// `ISynchronize::Wait(flags, timeout)`: unknown flag bits → `E_INVALIDARG`; set → `S_OK`
    /// (an auto-reset event is cleared by it); otherwise `RPC_S_CALLPENDING`, or
    /// [`Outcome::Blocks`] for [`INFINITE`].
    pub fn wait(&mut self, flags: u32, timeout: u32) -> Outcome {
        let outcome = wait_one(self.set, flags, timeout);
        if outcome == Outcome::Returns(S_OK) {
            self.consume();
        }
        outcome
    }

    /// A satisfied wait's side effect: an auto-reset event is cleared.
    fn consume(&mut self) {
        if self.kind == EventKind::Auto {
            self.set = false;
        }
    }
}

/// `CoWaitForMultipleHandles(flags, timeout, cHandles, pHandles, lpdwindex)` over model
/// events (spec 1.9). `handles` is `pHandles` (`None` = NULL; its length is `cHandles`),
/// `index_present` says whether `lpdwindex` is non-NULL.
///
/// Checked in this order: a missing index → `E_INVALIDARG`, index untouched; the index is set
/// to 0; missing handles → `E_INVALIDARG`; unknown flag bits → `E_INVALIDARG`; no handles →
/// `RPC_E_NO_SYNC`; more than [`MAXIMUM_WAIT_OBJECTS`] → `E_INVALIDARG`; `COWAIT_WAITALL`
/// with a handle listed twice → `E_INVALIDARG`. Then wait-any returns `S_OK` with the lowest
/// signaled index, consuming only that event if it is auto-reset; `COWAIT_WAITALL` returns
/// `S_OK` with index 0 when every event is set, consuming each auto-reset one. Otherwise the
/// wait times out: `RPC_S_CALLPENDING`, index 0, or [`Outcome::Blocks`] for [`INFINITE`].
///
/// A handle that is not an index into `events` gives [`Outcome::Invalid`] before anything
/// else.
pub fn co_wait_for_multiple_handles(
    events: &mut [EventModel],
    flags: u32,
    timeout: u32,
    handles: Option<&[EventId]>,
    index_present: bool,
) -> Outcome {
    if handles.is_some_and(|hs| hs.iter().any(|&h| h >= events.len())) {
        return Outcome::Invalid("unknown event index");
    }
    let returns = |hr| Outcome::CoWait { hr, index: Some(0) };
    if !index_present {
        return Outcome::CoWait {
            hr: E_INVALIDARG,
            index: None,
        };
    }
    let Some(handles) = handles else {
        return returns(E_INVALIDARG);
    };
    if flags & !COWAIT_VALID_FLAGS != 0 {
        return returns(E_INVALIDARG);
    }
    if handles.is_empty() {
        return returns(RPC_E_NO_SYNC);
    }
    if handles.len() > MAXIMUM_WAIT_OBJECTS {
        return returns(E_INVALIDARG);
    }
    let wait_all = flags & COWAIT_WAITALL != 0;
    if wait_all {
        let duplicate = handles
            .iter()
            .enumerate()
            .any(|(i, h)| handles[..i].contains(h));
        if duplicate {
            return returns(E_INVALIDARG);
        }
        if handles.iter().all(|&h| events[h].set) {
            for &h in handles {
                events[h].consume();
            }
            return returns(S_OK);
        }
    } else if let Some(i) = handles.iter().position(|&h| events[h].set) {
        events[handles[i]].consume();
        return Outcome::CoWait {
            hr: S_OK,
            index: Some(i as u32),
        };
    }
    if timeout == INFINITE {
        Outcome::Blocks
    } else {
        returns(RPC_S_CALLPENDING)
    }
}

// ---------------------------------------------------------------------------------------------
// Synchronize container
// ---------------------------------------------------------------------------------------------

/// The model of one `CLSID_SynchronizeContainer` (spec 1.6): the events added to it, in the
/// order they were added. The same event may be added more than once.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ContainerModel {
    objects: Vec<EventId>,
}

impl ContainerModel {
    /// An empty container.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events it holds, in the order they were added.
    pub fn objects(&self) -> &[EventId] {
        &self.objects
    }

    /// `AddSynchronize(pSync)` with `event` as `pSync` (`None` = NULL): NULL → `E_INVALIDARG`;
    /// already [`CONTAINER_CAPACITY`] objects → `RPC_E_OUT_OF_RESOURCES`; otherwise `S_OK`.
    /// `event_count` is how many events exist: an index outside it is [`Outcome::Invalid`].
    pub fn add_synchronize(&mut self, event: Option<EventId>, event_count: usize) -> Outcome {
        let Some(e) = event else {
            return Outcome::Returns(E_INVALIDARG);
        };
        if e >= event_count {
            return Outcome::Invalid("unknown event index");
        }
        if self.objects.len() >= CONTAINER_CAPACITY {
            return Outcome::Returns(RPC_E_OUT_OF_RESOURCES);
        }
        self.objects.push(e);
        Outcome::Returns(S_OK)
    }

    /// `WaitMultiple(flags, timeout, ppSync)` with `out_present` saying whether `ppSync` is
    /// non-NULL, over `events` (the events the container's indices refer to).
    ///
    /// Checked in this order: a missing `ppSync` → `E_INVALIDARG`; `COWAIT_WAITALL` or an
    /// unknown flag bit → `E_INVALIDARG`; empty → `RPC_E_NO_SYNC`. Then the first-added
    /// signaled object → `S_OK` with its position (an auto-reset event is consumed; it stays in
    /// the container); none → `RPC_E_TIMEOUT` (D6), or [`Outcome::Blocks`] for [`INFINITE`].
    pub fn wait_multiple(
        &self,
        events: &mut [EventModel],
        flags: u32,
        timeout: u32,
        out_present: bool,
    ) -> Outcome {
        let returns = |hr| Outcome::WaitMultiple { hr, position: None };
        if self.objects.iter().any(|&e| e >= events.len()) {
            return Outcome::Invalid("unknown event index");
        }
        if !out_present {
            return returns(E_INVALIDARG);
        }
        if flags & COWAIT_WAITALL != 0 || flags & !COWAIT_VALID_FLAGS != 0 {
            return returns(E_INVALIDARG);
        }
        if self.objects.is_empty() {
            return returns(RPC_E_NO_SYNC);
        }
        if let Some(p) = self.objects.iter().position(|&e| events[e].set) {
            events[self.objects[p]].consume();
            return Outcome::WaitMultiple {
                hr: S_OK,
                position: Some(p),
            };
        }
        if timeout == INFINITE {
            Outcome::Blocks
        } else {
            returns(RPC_E_TIMEOUT)
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Operations and the world
// ---------------------------------------------------------------------------------------------

/// One operation on a [`World`]. `Display` (and `Debug`) print it as a one-line COM call, e.g.
/// `Begin_Read`, `Wait(0, 0)`, `Cancel(1)`, `event[0].Signal()`.
#[derive(Clone, PartialEq, Eq)]
pub enum Op {
    /// `Begin_m(in…)` on the call object.
    Begin(MethodIndex),
    /// The server completes the current call (`Signal` on the call object's `ISynchronize`
    /// after storing its results).
    ServerComplete {
        /// The server method's `HRESULT`.
        hr: HRESULT,
        /// The server method's out-parameters.
        outs: Outs,
    },
    /// `Finish_m(out…)` on the call object.
    Finish(MethodIndex),
    /// `ICancelMethodCalls::Cancel(ulSeconds)`; `u32::MAX` is
    /// [`RPC_C_CANCEL_INFINITE_TIMEOUT`].
    Cancel(u32),
    /// The window of the in-flight `Cancel` expires before the server completes.
    CancelTimeout,
    /// `ICancelMethodCalls::TestCancel()`.
    TestCancel,
    /// `ISynchronize::Wait(dwFlags, dwMilliseconds)` on the call object.
    Wait {
        /// `COWAIT_FLAGS`.
        flags: u32,
        /// Milliseconds, or [`INFINITE`].
        timeout: u32,
    },
    /// `QueryInterface(iid)` on the call object.
    QueryInterface(IID),
    /// The final `Release` of the call object.
    Release,
    /// Aggregated: the completing thread calls the outer's due `Signal`, which returns
    /// ([`CallModel::outer_signal`]).
    OuterSignal,
    /// Aggregated: the completing thread enters the outer's due `Signal`; operations until
    /// [`Op::OuterSignalReturn`] are made from inside it ([`CallModel::outer_signal_enter`]).
    OuterSignalEnter,
    /// Aggregated: the running outer `Signal` returns ([`CallModel::outer_signal_return`]).
    OuterSignalReturn,
    /// `ISynchronize::Signal()` on an event.
    EventSignal(EventId),
    /// `ISynchronize::Reset()` on an event.
    EventReset(EventId),
    /// `ISynchronize::Wait(dwFlags, dwMilliseconds)` on an event.
    EventWait {
        /// Which event.
        event: EventId,
        /// `COWAIT_FLAGS`.
        flags: u32,
        /// Milliseconds, or [`INFINITE`].
        timeout: u32,
    },
    /// `CoWaitForMultipleHandles` over the events' handles.
    CoWait {
        /// `COWAIT_FLAGS`.
        flags: u32,
        /// Milliseconds, or [`INFINITE`].
        timeout: u32,
        /// `pHandles` (`None` = NULL), as event indices; its length is `cHandles`.
        handles: Option<Vec<EventId>>,
        /// Whether `lpdwindex` is non-NULL.
        index_present: bool,
    },
    /// `ISynchronizeContainer::AddSynchronize(pSync)` (`None` = NULL).
    AddSynchronize(Option<EventId>),
    /// `ISynchronizeContainer::WaitMultiple(dwFlags, dwTimeOut, ppSync)`.
    WaitMultiple {
        /// `COWAIT_FLAGS`.
        flags: u32,
        /// Milliseconds, or [`INFINITE`].
        timeout: u32,
        /// Whether `ppSync` is non-NULL.
        out_present: bool,
    },
}

impl Op {
    /// Whether the operation is on the call object (handled by [`CallModel::apply`]).
    pub fn is_call_op(&self) -> bool {
        matches!(
            self,
            Op::Begin(_)
                | Op::ServerComplete { .. }
                | Op::Finish(_)
                | Op::Cancel(_)
                | Op::CancelTimeout
                | Op::TestCancel
                | Op::Wait { .. }
                | Op::QueryInterface(_)
                | Op::Release
                | Op::OuterSignal
                | Op::OuterSignalEnter
                | Op::OuterSignalReturn
        )
    }
}

struct Ms(u32);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == INFINITE {
            f.write_str("INFINITE")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

struct Hr(HRESULT);

impl fmt::Display for Hr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:08X}", self.0.as_u32()),
        }
    }
}

struct Iid(IID);

impl fmt::Display for Iid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match WELL_KNOWN.iter().find(|(_, g)| *g == self.0) {
            Some((n, _)) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

impl fmt::Display for Op {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Op::Begin(m) => write!(f, "Begin_{}", method_name(*m)),
            Op::ServerComplete { hr, outs } => write!(f, "ServerComplete({}, {outs:?})", Hr(*hr)),
            Op::Finish(m) => write!(f, "Finish_{}", method_name(*m)),
            Op::Cancel(s) if *s == RPC_C_CANCEL_INFINITE_TIMEOUT => {
                f.write_str("Cancel(RPC_C_CANCEL_INFINITE_TIMEOUT)")
            }
            Op::Cancel(s) => write!(f, "Cancel({s})"),
            Op::CancelTimeout => f.write_str("CancelTimeout"),
            Op::TestCancel => f.write_str("TestCancel()"),
            Op::Wait { flags, timeout } => write!(f, "Wait({flags}, {})", Ms(*timeout)),
            Op::QueryInterface(iid) => write!(f, "QueryInterface({})", Iid(*iid)),
            Op::Release => f.write_str("Release()"),
            Op::OuterSignal => f.write_str("outer.Signal()"),
            Op::OuterSignalEnter => f.write_str("outer.Signal() {"),
            Op::OuterSignalReturn => f.write_str("} outer.Signal() returns"),
            Op::EventSignal(e) => write!(f, "event[{e}].Signal()"),
            Op::EventReset(e) => write!(f, "event[{e}].Reset()"),
            Op::EventWait {
                event,
                flags,
                timeout,
            } => write!(f, "event[{event}].Wait({flags}, {})", Ms(*timeout)),
            Op::CoWait {
                flags,
                timeout,
                handles,
                index_present,
            } => {
                write!(f, "CoWaitForMultipleHandles({flags}, {}, ", Ms(*timeout))?;
                match handles {
                    Some(hs) => write!(f, "{}, {hs:?}, ", hs.len())?,
                    None => f.write_str("0, NULL, ")?,
                }
                f.write_str(if *index_present { "&index)" } else { "NULL)" })
            }
            Op::AddSynchronize(Some(e)) => write!(f, "container.AddSynchronize(event[{e}])"),
            Op::AddSynchronize(None) => f.write_str("container.AddSynchronize(NULL)"),
            Op::WaitMultiple {
                flags,
                timeout,
                out_present,
            } => write!(
                f,
                "container.WaitMultiple({flags}, {}, {})",
                Ms(*timeout),
                if *out_present { "&pSync" } else { "NULL" }
            ),
        }
    }
}

impl fmt::Debug for Op {
    /// The same one-line COM call as `Display`, so that failing operation sequences (for
    /// example proptest's shrunk cases) read as code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A call object, a set of events and a synchronize container, driven by [`Op`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct World {
    call: CallModel,
    events: Vec<EventModel>,
    container: ContainerModel,
}

impl World {
    /// A fresh call object for `async_iid` with the given [`FinishMode`], one clear event per
    /// entry of `events`, and an empty container.
    pub fn new(async_iid: IID, mode: FinishMode, events: &[EventKind]) -> Self {
        World {
            call: CallModel::with_mode(async_iid, mode),
            events: events.iter().map(|&k| EventModel::new(k)).collect(),
            container: ContainerModel::new(),
        }
    }

    /// The given call object (for example an [aggregated](CallModel::aggregated) one), one
    /// clear event per entry of `events`, and an empty container.
    pub fn with_call(call: CallModel, events: &[EventKind]) -> Self {
        World {
            call,
            events: events.iter().map(|&k| EventModel::new(k)).collect(),
            container: ContainerModel::new(),
        }
    }

    /// The call object.
    pub fn call(&self) -> &CallModel {
        &self.call
    }

    /// The events.
    pub fn events(&self) -> &[EventModel] {
        &self.events
    }

    /// The event at index `e`.
    pub fn event(&self, e: EventId) -> Option<&EventModel> {
        self.events.get(e)
    }

    /// The container.
    pub fn container(&self) -> &ContainerModel {
        &self.container
    }

    /// Applies one operation: mutates the world and returns what the operation does.
    pub fn apply(&mut self, op: &Op) -> Outcome {
        match op {
            op if op.is_call_op() => self.call.apply(op),
            Op::EventSignal(e) => match self.events.get_mut(*e) {
                Some(ev) => ev.signal(),
                None => Outcome::Invalid("unknown event index"),
            },
            Op::EventReset(e) => match self.events.get_mut(*e) {
                Some(ev) => ev.reset(),
                None => Outcome::Invalid("unknown event index"),
            },
            Op::EventWait {
                event,
                flags,
                timeout,
            } => match self.events.get_mut(*event) {
                Some(ev) => ev.wait(*flags, *timeout),
                None => Outcome::Invalid("unknown event index"),
            },
            Op::CoWait {
                flags,
                timeout,
                handles,
                index_present,
            } => co_wait_for_multiple_handles(
                &mut self.events,
                *flags,
                *timeout,
                handles.as_deref(),
                *index_present,
            ),
            Op::AddSynchronize(e) => self.container.add_synchronize(*e, self.events.len()),
            Op::WaitMultiple {
                flags,
                timeout,
                out_present,
            } => self
                .container
                .wait_multiple(&mut self.events, *flags, *timeout, *out_present),
            _ => unreachable!("every call operation is handled above"),
        }
    }

    /// The pure form of [`World::apply`]: `(state, op) → (outcome, next state)`.
    pub fn step(&self, op: &Op) -> (Outcome, World) {
        let mut next = self.clone();
        let outcome = next.apply(op);
        (outcome, next)
    }

    /// Applies the operations in order and returns their outcomes.
    pub fn run(&mut self, ops: &[Op]) -> Vec<Outcome> {
        ops.iter().map(|op| self.apply(op)).collect()
    }

    /// Checks the call object's invariants ([`CallModel::check_invariants`]) and the
    /// container's: at most [`CONTAINER_CAPACITY`] objects, each a valid event index.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        self.call.check_invariants()?;
        if self.container.objects.len() > CONTAINER_CAPACITY {
            return Err("the container holds at most 63 objects");
        }
        if self
            .container
            .objects
            .iter()
            .any(|&e| e >= self.events.len())
        {
            return Err("the container holds only known events");
        }
        Ok(())
    }
}
