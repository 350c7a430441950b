//! Linearizability checking (Wing & Gong): is a concurrent history explainable by *some*
//! sequential order of its operations that respects real time, in which the reference model
//! gives every operation the result it was observed to have?
//!
//! * [`Clock`] stamps each operation's invocation and response from one global atomic counter
//!   (an order, not wall-clock time): `a` precedes `b` in real time iff `a.response <
//!   b.invoke`.
//! * [`check`] searches the orders consistent with that precedence, depth first, memoising
//!   (set of operations done, model state) pairs that lead nowhere. Histories of up to 64
//!   operations; in practice 10–30.
//! * [`run_concurrent_call`] runs a [`ConcurrentPlan`] — client threads doing `Begin_`,
//!   `Finish_` (strict or blocking), `Cancel(0)`, windowed `Cancel`s, `TestCancel`,
//!   `Wait(0)` and the final `Release` on one call object, optionally aggregated by an outer
//!   `ISynchronize` that counts (and may fail or panic in) its `Reset`s and `Signal`s, and a
//!   server thread completing every call it is handed — records the history, and checks it
//!   against [`CallModel`] (see [`GenModel`]).
//!
//! # How the history is cut into steps
//!
//! Most operations are one entry, from the tick before the call to the tick after it. Three
//! have an effect inside them that other threads can see before they return, and are recorded
//! as two entries, so that the model can place the two halves separately:
//!
//! * an aggregated `Begin_` that reaches the outer's `Reset`: `Begin_` up to the `Reset`
//!   (the outer ticks when it is entered; the call is `Pending` from here) and the `Reset`'s
//!   return to the `Begin_`'s return ([`CallModel::begin_start`],
//!   [`CallModel::begin_reset_returns`]);
//! * a windowed `Cancel(s)`: the request (the call is `Cancelling`, or the `Cancel` answers at
//!   once) and the return; both span the whole call ([`ConcOp::CancelRequest`],
//!   [`ConcOp::CancelReturn`]);
//! * the outer's `Signal` is an entry of its own ([`ConcOp::OuterSignal`]) from its entry tick
//!   to the return of the operation that completed the call (a server completion or a
//!   `Cancel`), because a failing `Signal` changes the result after it returns.
//!
//! Each client operation holds a COM reference while it runs, as COM requires of a caller, so
//! the final release happens when the `Release` operation and every operation that overlaps
//! it are done (for an aggregated call object, possibly later, in a thread of the
//! implementation that held the outer last); the `Release` entry ends when it has run.
//! Operations that start after it call through the harness's memory reference, as a
//! use-after-release would.

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt::{self, Debug};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, Weak};
use std::thread;
use std::time::Duration;

use super::{AsyncIProbe, IProbeCalls, IProbeIn, IProbeOut};
use crate::call::{AsyncInterface, CallHandler, CallObject, ICancelMethodCalls, ServerCall};
use crate::guid::IID;
use crate::hresult::{
    E_HANDLE, E_NOINTERFACE, E_NOTIMPL, E_UNEXPECTED, HRESULT, RPC_E_CALL_COMPLETE,
    RPC_E_DISCONNECTED, RPC_S_CALLPENDING, S_OK,
};
use crate::model::{CallModel, FinishMode, ModelOutcome, OuterScript, SignalPhase, State};
use crate::sync::ISynchronize;
use crate::unknown::{non_delegating, ComPtr, IUnknown, RefCount};

/// A global logical clock: every tick is unique and increasing.
#[derive(Debug, Default)]
pub struct Clock(AtomicU64);

impl Clock {
    /// A clock at 0.
    pub const fn new() -> Self {
        Clock(AtomicU64::new(0))
    }

    /// The next instant.
    pub fn tick(&self) -> u64 {
        // SeqCst: ticks are a single total order that also orders the operations' own memory
        // effects between them.
        self.0.fetch_add(1, Ordering::SeqCst)
    }
}

/// One completed operation of a concurrent history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<O, R> {
    /// The thread that ran it.
    pub thread: usize,
    /// The operation.
    pub op: O,
    /// What it returned.
    pub result: R,
    /// [`Clock`] tick taken just before the call.
    pub invoke: u64,
    /// [`Clock`] tick taken just after it returned.
    pub response: u64,
}

/// Searches for a linearization of `history`: `step(state, op, result)` is the model, `Some(next)`
/// if `op` may return `result` in `state`. Returns the witness order (indices into `history`),
/// or `None` if the history is not linearizable. Panics for more than 64 operations.
pub fn check<S, O, R>(
    init: &S,
    history: &[Entry<O, R>],
    step: impl Fn(&S, &O, &R) -> Option<S>,
) -> Option<Vec<usize>>
where
    S: Clone + Debug,
{
    assert!(history.len() <= 64, "histories of at most 64 operations");
    let all = if history.len() == 64 {
        u64::MAX
    } else {
        (1u64 << history.len()) - 1
    };
    let mut dead: HashSet<(u64, String)> = HashSet::new();
    let mut order = Vec::with_capacity(history.len());
    fn dfs<S: Clone + Debug, O, R>(
        state: &S,
        done: u64,
        all: u64,
        history: &[Entry<O, R>],
        step: &impl Fn(&S, &O, &R) -> Option<S>,
        dead: &mut HashSet<(u64, String)>,
        order: &mut Vec<usize>,
    ) -> bool {
        if done == all {
            return true;
        }
        let key = (done, format!("{state:?}"));
        if dead.contains(&key) {
            return false;
        }
        // An operation may go next iff no other pending operation responded before it was
        // invoked.
        let min_response = history
            .iter()
            .enumerate()
            .filter(|(i, _)| done & (1 << i) == 0)
            .map(|(_, e)| e.response)
            .min()
            .unwrap_or(u64::MAX);
        for (i, e) in history.iter().enumerate() {
            if done & (1 << i) != 0 || e.invoke > min_response {
                continue;
            }
            if let Some(next) = step(state, &e.op, &e.result) {
                order.push(i);
                if dfs(&next, done | (1 << i), all, history, step, dead, order) {
                    return true;
                }
                order.pop();
            }
        }
        dead.insert(key);
        false
    }
    dfs(init, 0, all, history, &step, &mut dead, &mut order).then_some(order)
}

/// Which part of a `Begin_` an entry is (see the [module docs](self)).
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
                super::runner::hr_name(*hr)
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
            ConcResult::Outcome(o) => f.write_str(&super::runner::describe(o)),
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
                super::PROBE_ASYNC_IID,
                plan.mode,
                OuterScript {
                    explicit_signals: true,
                    ..script.clone()
                },
            ),
            None => CallModel::with_mode(super::PROBE_ASYNC_IID, plan.mode),
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

/// A history that is not linearizable (or that hung), printed thread by thread with its ticks.
#[derive(Clone, Debug)]
pub struct NotLinearizable {
    /// The history (as far as it was recorded).
    pub history: Vec<Entry<ConcOp, ConcResult>>,
    /// `Some`: the run did not finish within the hang limit; what was still running.
    pub hung: Option<String>,
}

impl fmt::Display for NotLinearizable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.hung {
            Some(what) => writeln!(
                f,
                "the run did not finish within {HANG_LIMIT:?} ({what}); the history so far:"
            )?,
            None => writeln!(
                f,
                "no sequential order of this history satisfies the model (thread, [invoke, response], operation → result):"
            )?,
        }
        let mut h: Vec<_> = self.history.iter().collect();
        h.sort_by_key(|e| e.invoke);
        for e in h {
            let t = if e.thread == usize::MAX {
                "main".to_string()
            } else {
                format!("T{}", e.thread)
            };
            writeln!(
                f,
                "  {t} [{:>3}, {:>3}] {:?} → {:?}",
                e.invoke, e.response, e.op, e.result
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for NotLinearizable {}

/// How long a run may take before it counts as hung (a lost wake-up, a deadlock, a wedged
/// call object): only a broken implementation gets near it.
pub const HANG_LIMIT: Duration = Duration::from_secs(20);

/// The server side of the harness: hands each begun call to the server thread.
struct Server(crossbeam_channel::Sender<(ServerCall<IProbeCalls>, IProbeIn)>);

impl CallHandler<IProbeCalls> for Server {
    fn begin(&self, call: ServerCall<IProbeCalls>, input: IProbeIn) {
        // The server thread outlives every client's Begin_; if it is gone the call is dropped
        // (RPC_E_SERVER_DIED).
        let _ = self.0.send((call, input));
    }
}

thread_local! {
    /// Ticks of the outer's `Reset` and `Signal`s entered on this thread since the harness
    /// last looked: `(tick, Some(hr))` for a `Signal` returning `hr`, `(tick, None)` for a
    /// `Reset`.
    static OUTER_CALLS: RefCell<Vec<(u64, Option<HRESULT>)>> = const { RefCell::new(Vec::new()) };
}

/// The aggregating client of the linearizability harness: implements `ISynchronize`, answers
/// `Reset` and `Signal` from its script (a scripted `E_UNEXPECTED` panics), counts them, and
/// ticks the clock when they are entered and when its final release has let the call object
/// go.
struct Outer {
    refs: RefCount,
    me: Weak<Outer>,
    clock: Arc<Clock>,
    script: OuterScript,
    counts: Arc<OuterCounts>,
    inner: Mutex<Option<ComPtr<dyn IUnknown>>>,
}

/// What the harness reads from the outer, kept apart from it so that the harness holds no
/// reference to the outer itself: once its COM count reaches 0 its memory goes, as a real
/// COM object's would.
#[derive(Default)]
struct OuterCounts {
    resets: AtomicU32,
    signals: AtomicU32,
    /// When the outer's final release had let the call object go (0: not yet).
    released_at: AtomicU64,
}

fn scripted(results: &[HRESULT], n: u32, what: &str) -> HRESULT {
    let hr = results.get(n as usize).copied().unwrap_or(S_OK);
    if hr == E_UNEXPECTED {
        panic!("the outer's {what} #{n} panics (scripted)");
    }
    hr
}

impl ISynchronize for Outer {
    fn wait(&self, _flags: u32, _timeout_ms: u32) -> HRESULT {
        E_NOTIMPL
    }
    fn signal(&self) -> HRESULT {
        let tick = self.clock.tick();
        let n = self.counts.signals.fetch_add(1, Ordering::SeqCst);
        let hr = self.script.signal_results.get(n as usize).copied();
        OUTER_CALLS.with(|c| c.borrow_mut().push((tick, Some(hr.unwrap_or(S_OK)))));
        scripted(&self.script.signal_results, n, "Signal")
    }
    fn reset(&self) -> HRESULT {
        let tick = self.clock.tick();
        OUTER_CALLS.with(|c| c.borrow_mut().push((tick, None)));
        let n = self.counts.resets.fetch_add(1, Ordering::SeqCst);
        scripted(&self.script.reset_results, n, "Reset")
    }
}

impl Outer {
    fn inner_interfaces(&self, _me: &Arc<Self>, iid: &IID, ppv: &mut dyn std::any::Any) -> HRESULT {
        let inner = self.inner.lock().unwrap().clone();
        match inner {
            Some(inner) => inner.query_interface(iid, ppv),
            None => E_NOINTERFACE,
        }
    }
    fn final_release(&self) {
        let inner = self.inner.lock().unwrap().take();
        drop(inner);
        self.counts
            .released_at
            .store(self.clock.tick(), Ordering::SeqCst);
    }
}

crate::com_object!([] Outer {
    interfaces: [dyn ISynchronize],
    more: Outer::inner_interfaces,
    final_release: Outer::final_release,
});

type History = Arc<Mutex<Vec<Entry<ConcOp, ConcResult>>>>;

/// Records the outer's `Reset`/`Signal`s made on this thread during an operation that
/// responded at `response`; returns the `Reset`'s tick if there was one.
fn record_outer_calls(history: &History, thread: usize, response: u64) -> Option<u64> {
    let calls = OUTER_CALLS.with(|c| std::mem::take(&mut *c.borrow_mut()));
    let mut reset = None;
    let mut h = history.lock().unwrap();
    for (tick, signal) in calls {
        match signal {
            Some(hr) => h.push(Entry {
                thread,
                op: ConcOp::OuterSignal,
                result: ConcResult::Outcome(ModelOutcome::Returns(hr)),
                invoke: tick,
                response,
            }),
            None => reset = Some(tick),
        }
    }
    reset
}

fn panic_message(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Runs `plan` once (clients and the server start together behind a barrier), records the
/// history and checks it: `Ok(history)` if linearizable.
pub fn run_concurrent_call(
    plan: &ConcurrentPlan,
) -> Result<Vec<Entry<ConcOp, ConcResult>>, NotLinearizable> {
    let clock = Arc::new(Clock::new());
    let (calls_tx, calls_rx) = crossbeam_channel::unbounded();
    let server = Arc::new(Server(calls_tx));
    let mode = plan.mode;
    // The client's one COM reference (the outer's, when aggregated); threads call through
    // `obj`, a memory reference, so that calls after the final release reach the object.
    let (obj, outer, reference): (_, _, ComPtr<dyn IUnknown>) = match &plan.outer {
        Some(script) => {
            let counts = Arc::new(OuterCounts::default());
            let outer = Arc::new_cyclic(|me| Outer {
                refs: RefCount::new(),
                me: me.clone(),
                clock: clock.clone(),
                script: script.clone(),
                counts: counts.clone(),
                inner: Mutex::new(None),
            });
            let unk: ComPtr<dyn IUnknown> = ComPtr::new(outer.clone() as Arc<dyn IUnknown>);
            let obj = CallObject::<IProbeCalls>::new(server.clone(), Some(&unk), mode);
            *outer.inner.lock().unwrap() = Some(non_delegating(obj.clone()));
            (obj, Some(counts), unk)
        }
        None => {
            let obj = CallObject::<IProbeCalls>::new(server.clone(), None, mode);
            let client: ComPtr<dyn AsyncIProbe> = ComPtr::new(IProbeCalls::upcast(obj.clone()));
            let unk = client
                .query::<dyn IUnknown>()
                .expect("a call object answers IUnknown");
            (obj, None, unk)
        }
    };
    let reference = Arc::new(Mutex::new(Some(reference)));
    let history: History = Arc::new(Mutex::new(Vec::new()));
    // Closed (dropped) once the clients are done: the server then drains its queue and ends.
    let (clients_done, clients_done_rx) = crossbeam_channel::bounded::<()>(0);
    let barrier = Arc::new(Barrier::new(plan.clients.len() + 1));
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<()>();
    let next_cancel = Arc::new(AtomicU64::new(1));
    // When the call object's final release ran (0: not yet): set by the outer's final release
    // hook, or by a thread that dropped a reference and then saw the object gone.
    let released_at = Arc::new(AtomicU64::new(0));

    let mut threads = Vec::new();
    for (t, ops) in plan.clients.iter().enumerate() {
        let (ops, obj, reference) = (ops.clone(), obj.clone(), reference.clone());
        let (clock, history, barrier) = (clock.clone(), history.clone(), barrier.clone());
        let (done, next_cancel) = (done_tx.clone(), next_cancel.clone());
        let released_at = released_at.clone();
        threads.push(thread::spawn(move || {
            barrier.wait();
            for (i, op) in ops.into_iter().enumerate() {
                let tag = ((t as u32) << 8 | i as u32) + 1;
                let cancel_id = next_cancel.fetch_add(1, Ordering::SeqCst);
                // The caller holds a COM reference while it calls (as COM requires), if the
                // client has not released its last one.
                let held = match op {
                    ConcOp::Release => None,
                    _ => reference.lock().unwrap().clone(),
                };
                let invoke = clock.tick();
                let run = AssertUnwindSafe(|| match &op {
                    ConcOp::Begin(0) => ModelOutcome::Returns(obj.begin_read(tag)),
                    ConcOp::Begin(_) => ModelOutcome::Returns(obj.begin_write(tag)),
                    ConcOp::Finish(m) => {
                        let (hr, outs) = if *m == 0 {
                            obj.finish_read()
                        } else {
                            obj.finish_write()
                        };
                        if outs.is_empty() {
                            ModelOutcome::Returns(hr)
                        } else {
                            ModelOutcome::Finished { hr, outs }
                        }
                    }
                    ConcOp::Cancel0 => ModelOutcome::Returns(ICancelMethodCalls::cancel(&*obj, 0)),
                    ConcOp::Cancel(s) => {
                        ModelOutcome::Returns(ICancelMethodCalls::cancel(&*obj, *s))
                    }
                    ConcOp::TestCancel => {
                        ModelOutcome::Returns(ICancelMethodCalls::test_cancel(&*obj))
                    }
                    ConcOp::Wait0 => ModelOutcome::Returns(ISynchronize::wait(&*obj, 0, 0)),
                    ConcOp::Release => {
                        let r = reference.lock().unwrap().take();
                        drop(r);
                        ModelOutcome::Released { abandoned: false }
                    }
                    _ => ModelOutcome::Invalid("not a client operation"),
                });
                let result = catch_unwind(run);
                let response = clock.tick();
                if held.is_some() || op == ConcOp::Release {
                    drop(held);
                    if obj.state() == crate::call::State::Gone {
                        // An upper bound of the final release's instant.
                        let _ = released_at.compare_exchange(
                            0,
                            clock.tick(),
                            Ordering::SeqCst,
                            Ordering::SeqCst,
                        );
                    }
                }
                let reset = record_outer_calls(&history, t, response);
                let result = match result {
                    Ok(ModelOutcome::Invalid(_)) => continue,
                    Ok(o) => ConcResult::Outcome(o),
                    Err(e) => ConcResult::Panicked(panic_message(e)),
                };
                let mut h = history.lock().unwrap();
                let mut push = |op, result, invoke, response| {
                    h.push(Entry {
                        thread: t,
                        op,
                        result,
                        invoke,
                        response,
                    })
                };
                match (&op, reset) {
                    (ConcOp::Begin(m), Some(reset)) => {
                        let call = |part| ConcOp::BeginCall {
                            method: *m,
                            tag,
                            part,
                        };
                        push(
                            call(BeginPart::UntilReset),
                            ConcResult::Unobserved,
                            invoke,
                            reset,
                        );
                        push(call(BeginPart::FromReset), result, reset, response);
                    }
                    (ConcOp::Begin(m), None) => {
                        let op = ConcOp::BeginCall {
                            method: *m,
                            tag,
                            part: BeginPart::Whole,
                        };
                        push(op, result, invoke, response);
                    }
                    (ConcOp::Cancel(s), _) => {
                        let req = ConcOp::CancelRequest {
                            id: cancel_id,
                            seconds: *s,
                        };
                        push(req, ConcResult::Unobserved, invoke, response);
                        push(
                            ConcOp::CancelReturn { id: cancel_id },
                            result,
                            invoke,
                            response,
                        );
                    }
                    (ConcOp::Release, _) => {
                        push(ConcOp::Release, ConcResult::Unobserved, invoke, response);
                        push(
                            ConcOp::HandleClosed,
                            ConcResult::Unobserved,
                            invoke,
                            response,
                        );
                    }
                    _ => push(op.clone(), result, invoke, response),
                }
            }
            let _ = done.send(());
        }));
    }
    drop(done_tx);
    let server_thread = {
        let (clock, history) = (clock.clone(), history.clone());
        let (done, barrier, results) = (
            clients_done_rx,
            barrier.clone(),
            plan.server_results.clone(),
        );
        let t = plan.clients.len();
        thread::spawn(move || {
            barrier.wait();
            let mut n = 0;
            let mut finished = false;
            loop {
                // Once the clients are done every Begin_ has queued its call, so an empty
                // queue then means the server is done.
                let next = if finished {
                    calls_rx.try_recv().ok()
                } else {
                    crossbeam_channel::select! {
                        recv(calls_rx) -> c => c.ok(),
                        recv(done) -> _ => {
                            finished = true;
                            continue;
                        }
                    }
                };
                match next {
                    Some((call, input)) => {
                        let (hr, mut outs) = results
                            .get(n % results.len().max(1))
                            .cloned()
                            .unwrap_or((S_OK, vec![]));
                        n += 1;
                        let tag = match input {
                            IProbeIn::Read { tag } | IProbeIn::Write { tag } => tag,
                        };
                        outs.push(tag);
                        let out = if call.method() == 0 {
                            IProbeOut::Read { outs: outs.clone() }
                        } else {
                            IProbeOut::Write { outs: outs.clone() }
                        };
                        let invoke = clock.tick();
                        let r = catch_unwind(AssertUnwindSafe(|| call.complete(hr, out)));
                        let response = clock.tick();
                        record_outer_calls(&history, t, response);
                        history.lock().unwrap().push(Entry {
                            thread: t,
                            op: ConcOp::ServerComplete { tag, hr, outs },
                            result: match r {
                                Ok(()) => ConcResult::Unobserved,
                                Err(e) => ConcResult::Panicked(panic_message(e)),
                            },
                            invoke,
                            response,
                        });
                    }
                    None if finished => break,
                    None => continue,
                }
            }
        })
    };
    // Wait for the clients, bounded: a hang is a failure, not a hung test.
    let deadline = std::time::Instant::now() + HANG_LIMIT;
    for _ in 0..plan.clients.len() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            drop(clients_done);
            let history = history.lock().unwrap().clone();
            return Err(NotLinearizable {
                history,
                hung: Some(format!("call object {:?}", obj.state())),
            });
        }
    }
    for t in threads {
        let _ = t.join();
    }
    drop(clients_done);
    let _ = server_thread.join();

    let invoke = clock.tick();
    let observed = ConcResult::State {
        state: obj.state(),
        event: obj.handle().is_signaled(),
        outer: outer.as_ref().map(|o| {
            (
                o.resets.load(Ordering::SeqCst),
                o.signals.load(Ordering::SeqCst),
            )
        }),
    };
    let response = clock.tick();
    let mut history = std::mem::take(&mut *history.lock().unwrap());
    // The final release ends when the call object's final release has run (for an
    // aggregated one, when the outer's final release has let it go).
    let at = outer
        .as_ref()
        .map_or(0, |o| o.released_at.load(Ordering::SeqCst))
        .max(released_at.load(Ordering::SeqCst));
    for e in history
        .iter_mut()
        .filter(|e| matches!(e.op, ConcOp::Release | ConcOp::HandleClosed))
    {
        e.response = e.response.max(at);
    }
    history.push(Entry {
        thread: usize::MAX,
        op: ConcOp::Observe,
        result: observed,
        invoke,
        response,
    });
    drop(reference.lock().unwrap().take());

    match check(&GenModel::for_plan(plan), &history, conc_step) {
        Some(_) => Ok(history),
        None => Err(NotLinearizable {
            history,
            hung: None,
        }),
    }
}
