//! The call object's operations as a concurrent history records them ([`ConcOp`],
//! [`ConcResult`]), the plan of a run ([`ConcurrentPlan`]) and the model the search steps
//! ([`GenModel`], [`conc_step`]): a [`CallModel`] plus the bookkeeping that tells which
//! completion an observed result belongs to.

use super::*;

/// Which part of a `Begin_` an entry is (see the [module docs](super)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BeginPart {
    /// The whole `Begin_` (not aggregated, or the outer's `Reset` was not reached).
    Whole,
    /// From the call to the outer's `Reset` ([`CallModel::begin_start`]).
    UntilReset,
    /// From the outer's `Reset` to the return ([`CallModel::begin_reset_returns`]).
    FromReset,
}

/// An operation of a concurrent call-object history. A [`ConcurrentPlan`] lists client
/// operations (`Begin`, `Finish`, `Cancel0`, `Cancel`, `TestCancel`, `Wait0`, `Release`); the
/// history records them with what the harness saw (`BeginCall`, `CancelRequest` and
/// `CancelReturn` instead of `Begin` and `Cancel`) and adds the server's and the outer's steps.
#[derive(Clone, PartialEq, Eq)]
pub enum ConcOp {
    /// Plan: `Begin_m` (the harness gives each a unique in-parameter, its tag).
    Begin(usize),
    /// History: (part of) `Begin_m` with in-parameter `tag`.
    BeginCall {
        /// The method.
        method: usize,
        /// The call's unique in-parameter.
        tag: u32,
        /// Which part.
        part: BeginPart,
    },
    /// `Finish_m` (strict or blocking, as the plan's mode says).
    Finish(usize),
    /// `Cancel(0)`.
    Cancel0,
    /// Plan: `Cancel(s)` with a window (`s > 0`; `u32::MAX` is
    /// `RPC_C_CANCEL_INFINITE_TIMEOUT`). The server completes every call, so the window ends
    /// by the server's completion unless `s` is small.
    Cancel(u32),
    /// History: a windowed `Cancel`'s request (the call becomes `Cancelling`, or the `Cancel`
    /// answers at once).
    CancelRequest {
        /// Which `Cancel` (unique in the history).
        id: u64,
        /// Its window in seconds.
        seconds: u32,
    },
    /// History: a windowed `Cancel`'s return.
    CancelReturn {
        /// Which `Cancel`.
        id: u64,
    },
    /// `TestCancel()`.
    TestCancel,
    /// `ISynchronize::Wait(0, 0)` on the call object's own event.
    Wait0,
    /// The client's last COM reference is released (a thread's last operation; at most one
    /// per plan).
    Release,
    /// The server completes the call whose in-parameter was `tag` (nothing observable).
    ServerComplete {
        /// The call's in-parameter.
        tag: u32,
        /// The server's `HRESULT`.
        hr: HRESULT,
        /// The out-values (the plan's, then the tag).
        outs: Vec<u32>,
    },
    /// The aggregating outer's `Signal` (its result is what the outer returned).
    OuterSignal,
    /// History: the released call object's handle is closed (a step of the final release,
    /// after the call object reads as released; recorded with the `Release`'s interval).
    HandleClosed,
    /// After every thread joined: the call object's state, its event and the outer's counts.
    Observe,
}

impl fmt::Debug for ConcOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = crate::model::method_name;
        match self {
            ConcOp::Begin(m) => write!(f, "Begin_{}", name(*m)),
            ConcOp::BeginCall { method, tag, part } => match part {
                BeginPart::Whole => write!(f, "Begin_{}({tag})", name(*method)),
                BeginPart::UntilReset => {
                    write!(f, "Begin_{}({tag}) up to outer.Reset", name(*method))
                }
                BeginPart::FromReset => {
                    write!(f, "Begin_{}({tag}) from outer.Reset", name(*method))
                }
            },
            ConcOp::Finish(m) => write!(f, "Finish_{}", name(*m)),
            ConcOp::Cancel0 => f.write_str("Cancel(0)"),
            ConcOp::Cancel(s) => write!(f, "Cancel({})", seconds(*s)),
            ConcOp::CancelRequest { id, seconds: s } => {
                write!(f, "Cancel#{id}({}) request", seconds(*s))
            }
            ConcOp::CancelReturn { id } => write!(f, "Cancel#{id} returns"),
            ConcOp::TestCancel => f.write_str("TestCancel()"),
            ConcOp::Wait0 => f.write_str("Wait(0, 0)"),
            ConcOp::Release => f.write_str("Release()"),
            ConcOp::ServerComplete { tag, hr, outs } => write!(
                f,
                "server completes call({tag}) ({}, {outs:?})",
                crate::testing::runner::hr_name(*hr)
            ),
            ConcOp::OuterSignal => f.write_str("outer.Signal()"),
            ConcOp::HandleClosed => f.write_str("the released call object's handle closes"),
            ConcOp::Observe => f.write_str("observe state"),
        }
    }
}

fn seconds(s: u32) -> String {
    if s == u32::MAX {
        "INFINITE".into()
    } else {
        s.to_string()
    }
}

/// What an operation of a concurrent history returned.
#[derive(Clone, PartialEq, Eq)]
pub enum ConcResult {
    /// A model [`ModelOutcome`] (`Returns` or `Finished`).
    Outcome(ModelOutcome),
    /// Nothing observable (a server completion, a `Release`, a `Cancel`'s request, the first
    /// part of a `Begin_`).
    Unobserved,
    /// [`ConcOp::Observe`].
    State {
        /// The call object's state.
        state: State,
        /// Whether its own event is set.
        event: bool,
        /// The outer's `(Reset, Signal)` counts, if aggregated.
        outer: Option<(u32, u32)>,
    },
    /// The operation panicked (never what the model says).
    Panicked(String),
}

impl fmt::Debug for ConcResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConcResult::Outcome(o) => f.write_str(&crate::testing::runner::describe(o)),
            ConcResult::Unobserved => f.write_str("-"),
            ConcResult::State {
                state,
                event,
                outer,
            } => {
                write!(
                    f,
                    "{state:?}, event {}",
                    if *event { "set" } else { "clear" }
                )?;
                match outer {
                    Some((r, s)) => write!(f, ", outer reset {r}×, signalled {s}×"),
                    None => Ok(()),
                }
            }
            ConcResult::Panicked(m) => write!(f, "panicked: {m}"),
        }
    }
}

/// Client threads' operations; the server thread completes every call it is handed, in turn
/// with the results of `server_results` (cycled; each call's tag is appended to the outs).
#[derive(Clone, Debug)]
pub struct ConcurrentPlan {
    /// One operation list per client thread.
    pub clients: Vec<Vec<ConcOp>>,
    /// The `(HRESULT, out-values)` the server completes calls with, cycled.
    pub server_results: Vec<(HRESULT, Vec<u32>)>,
    /// What `Finish_` does before completion.
    pub mode: FinishMode,
    /// `Some`: the call object is aggregated by an outer answering as scripted (a scripted
    /// `E_UNEXPECTED` is a panic in the outer's method).
    pub outer: Option<OuterScript>,
}

impl ConcurrentPlan {
    /// A plan on a strict, unaggregated call object.
    pub fn new(clients: Vec<Vec<ConcOp>>, server_results: Vec<(HRESULT, Vec<u32>)>) -> Self {
        ConcurrentPlan {
            clients,
            server_results,
            mode: FinishMode::Strict,
            outer: None,
        }
    }
}

/// The model state of a concurrent call history: the call model and what ties the history's
/// entries to it.
#[derive(Clone, Debug)]
pub struct GenModel {
    /// The call object (with explicit outer `Signal`s when aggregated).
    pub call: CallModel,
    /// The in-parameter of the current (or last) call begun.
    pub current: Option<u32>,
    /// The windowed `Cancel` waiting in the model (state `Cancelling`).
    pub cancel: Option<u64>,
    /// Windowed `Cancel`s whose result is decided and whose return is not yet placed.
    pub cancel_results: Vec<(u64, HRESULT)>,
    /// The released call object's handle is closed.
    pub handle_closed: bool,
}

impl GenModel {
    /// The initial state for `plan` (the async IID of `IProbe`).
    pub fn for_plan(plan: &ConcurrentPlan) -> Self {
        let call = match &plan.outer {
            Some(script) => CallModel::aggregated(
                crate::testing::PROBE_ASYNC_IID,
                plan.mode,
                OuterScript {
                    explicit_signals: true,
                    ..script.clone()
                },
            ),
            None => CallModel::with_mode(crate::testing::PROBE_ASYNC_IID, plan.mode),
        };
        GenModel {
            call,
            current: None,
            cancel: None,
            cancel_results: Vec::new(),
            handle_closed: false,
        }
    }

    /// A strict, unaggregated call object.
    pub fn strict() -> Self {
        Self::for_plan(&ConcurrentPlan::new(vec![], vec![]))
    }
}

/// The model step for [`ConcOp`]: `Some(next)` if `op` may give `result` in `s`.
///
/// A `Wait(0, 0)` after the final release must return `E_HANDLE` once the handle is closed
/// ([`ConcOp::HandleClosed`]): the harness waits through its memory reference, on the
/// released call object's closed handle (docs/model.md), where the model's COM caller would
/// have been refused `RPC_E_DISCONNECTED` by `QueryInterface`.
pub fn conc_step(s: &GenModel, op: &ConcOp, result: &ConcResult) -> Option<GenModel> {
    let mut n = s.clone();
    let unobserved = *result == ConcResult::Unobserved;
    let out = match op {
        ConcOp::Begin(m) => n.call.begin(*m),
        ConcOp::BeginCall { method, tag, part } => match part {
            BeginPart::Whole => {
                let o = n.call.begin(*method);
                if o == ModelOutcome::Returns(S_OK) {
                    n.current = Some(*tag);
                }
                o
            }
            BeginPart::UntilReset => {
                if !unobserved || n.call.begin_start(*method) != ModelOutcome::Returns(S_OK) {
                    return None;
                }
                n.current = Some(*tag);
                return Some(n);
            }
            BeginPart::FromReset => {
                if n.current != Some(*tag) || !n.call.resetting() {
                    return None;
                }
                let o = n.call.begin_reset_returns();
                if n.call.cancel_in_flight().is_none() {
                    // A failed Reset forgot the call: a windowed Cancel of it is over.
                    if let Some(id) = n.cancel.take() {
                        n.cancel_results.push((id, RPC_E_CALL_COMPLETE));
                    }
                }
                o
            }
        },
        ConcOp::Finish(m) => n.call.finish(*m),
        ConcOp::Cancel0 => n.call.cancel(0),
        ConcOp::Cancel(sec) => n.call.cancel(*sec),
        ConcOp::CancelRequest { id, seconds } => {
            if !unobserved {
                return None;
            }
            match n.call.cancel(*seconds) {
                ModelOutcome::CancelInFlight => n.cancel = Some(*id),
                ModelOutcome::Returns(hr) => n.cancel_results.push((*id, hr)),
                _ => return None,
            }
            return Some(n);
        }
        ConcOp::CancelReturn { id } => {
            if let Some(i) = n.cancel_results.iter().position(|(c, _)| c == id) {
                let (_, hr) = n.cancel_results.remove(i);
                ModelOutcome::Returns(hr)
            } else if n.cancel == Some(*id) {
                match n.call.cancel_timeout() {
                    ModelOutcome::CancelReturns(hr) => {
                        n.cancel = None;
                        ModelOutcome::Returns(hr)
                    }
                    _ => return None,
                }
            } else {
                return None;
            }
        }
        ConcOp::TestCancel => n.call.test_cancel(),
        ConcOp::Wait0 => {
            if n.handle_closed {
                // The harness waits through its memory reference: the released call object's
                // handle is closed (docs/model.md), not a COM call refused.
                ModelOutcome::Returns(E_HANDLE)
            } else if n.call.state() == State::Gone {
                // Released, the handle not closed yet: whatever the event last said.
                return matches!(
                    result,
                    ConcResult::Outcome(ModelOutcome::Returns(S_OK | RPC_S_CALLPENDING))
                )
                .then_some(n);
            } else {
                n.call.wait(0, 0)
            }
        }
        ConcOp::HandleClosed => {
            if n.call.state() != State::Gone || n.handle_closed || !unobserved {
                return None;
            }
            n.handle_closed = true;
            return Some(n);
        }
        ConcOp::Release => {
            if !unobserved {
                return None;
            }
            n.call.release();
            if let Some(id) = n.cancel.take() {
                n.cancel_results.push((id, RPC_E_DISCONNECTED));
            }
            return Some(n);
        }
        ConcOp::ServerComplete { tag, hr, outs } => {
            if n.current == Some(*tag) {
                if let ModelOutcome::Delivered {
                    cancel_returns: Some(c),
                } = n.call.server_complete(*hr, outs)
                {
                    let id = n.cancel.take()?;
                    n.cancel_results.push((id, c));
                }
            }
            return unobserved.then_some(n);
        }
        ConcOp::OuterSignal => n.call.outer_signal(),
        ConcOp::Observe => {
            let ConcResult::State {
                state,
                event,
                outer,
            } = result
            else {
                return None;
            };
            let c = &n.call;
            let gone = c.state() == State::Gone;
            let ok = *state == c.state()
                && (gone || *event == c.event_set())
                && *outer == c.outer().map(|o| (o.resets(), o.signals()))
                && (gone || !matches!(c.outer().map(|o| o.phase()), Some(SignalPhase::Due { .. })))
                && !c.resetting()
                && n.cancel.is_none()
                && n.cancel_results.is_empty();
            return ok.then_some(n);
        }
    };
    let observed = match (result, &out) {
        (
            ConcResult::Outcome(ModelOutcome::Returns(hr)),
            ModelOutcome::Finished { hr: e, outs },
        ) if outs.is_empty() && hr == e => true,
        (ConcResult::Outcome(o), _) => *o == out,
        _ => false,
    };
    observed.then_some(n)
}
