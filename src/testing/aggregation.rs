//! Client-side aggregation (spec 3.6) against the reference model, under the runners'
//! [virtual clock](super::runner::RunOptions::virtual_clock): the check behind the
//! `aggregation` fuzz target.
//!
//! A real [`CallObject`] for [`IProbe`](super::IProbe), served by a [`ManualHandler`], is
//! aggregated under an instrumented outer unknown whose `ISynchronize` counts every `Reset`
//! and `Signal`, can be told to fail either, and can run client code re-entrantly at the
//! completion (a *hook*):
//!
//! * [`HookPoint::BeforeSignal`]: in the outer's `QueryInterface(IID_ISynchronize)` that the
//!   completion makes before it calls `Signal` — the client (on another thread, in real life)
//!   `Finish_`es the completed call and `Begin_`s the next one before the completion's
//!   `Signal` reaches the outer;
//! * [`HookPoint::InSignal`]: inside `Signal`, after the outer has recorded it — the
//!   completion-callback pattern of `examples/completion_callback.rs`.
//!
//! Every operation, top-level or run by a hook, is predicted by a [`CallModel`] (with the
//! aggregation rules on top: a failing outer `Reset` fails `Begin_` and leaves the call object
//! idle; a failing outer `Signal` replaces the result a later `Finish_` returns by the
//! `Signal`'s `HRESULT`). After every step the runner checks:
//!
//! * **exactly-once delivery**: each completion carries a fresh token as its out-parameter;
//!   `Finish_` returns a token at most once, only for the call it completed, never a late
//!   (dropped) completion's;
//! * **order at the outer**: a successful `Begin_` resets the outer exactly once; each
//!   completion signals the outer at most once (exactly once unless the client had already
//!   begun the next call), after that call's `Reset`, and a `Signal` never lands while a later
//!   call is in progress (issue 9, finding 1);
//! * the call object's state and event agree with the model, and the outer never reads
//!   signaled while the call is pending;
//! * at the end, after everything is released, neither the call object nor the outer is
//!   still in memory.

use std::any::Any;
use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::runner::{describe, hr_name};
use super::{AsyncIProbe, IProbeCalls, IProbeOut};
use crate::call::{CallObject, ICancelMethodCalls, ManualHandler, ServerCall, State};
use crate::guid::{IID_ISynchronize, IID};
use crate::hresult::{E_FAIL, E_NOINTERFACE, HRESULT, RPC_S_CALLPENDING, S_OK};
use crate::model::{CallModel, FinishMode, ModelOp, ModelOutcome, RPC_C_CANCEL_INFINITE_TIMEOUT};
use crate::sync::ISynchronize;
use crate::unknown::{set_out, ComPtr, IUnknown, RefCount};

/// Where a [`Hook`] runs its client code during a completion.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum HookPoint {
    /// In the outer's `QueryInterface(IID_ISynchronize)` made by the completion, before its
    /// `Signal`.
    BeforeSignal,
    /// Inside the outer's `Signal`, after the outer has recorded it.
    InSignal,
}

/// Client code the outer runs at the next completion: `Finish_` of `finish`, then optionally
/// `Begin_` of `then_begin`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Hook {
    /// Where it runs.
    pub point: HookPoint,
    /// The method index to `Finish_`.
    pub finish: usize,
    /// The method index to `Begin_` afterwards, if any.
    pub then_begin: Option<usize>,
}

/// One operation of an aggregation run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AggOp {
    /// `Begin_m` on the call object.
    Begin(usize),
    /// The server completes every queued call: the earlier ones (late: they must be dropped)
    /// with a token of their own, then the current one with `hr` and a fresh token.
    ServerComplete(HRESULT),
    /// `Finish_m` on the call object.
    Finish(usize),
    /// `ICancelMethodCalls::Cancel(s)` (windows under the virtual clock).
    Cancel(u32),
    /// The in-flight `Cancel`'s window expires now.
    CancelTimeout,
    /// `ICancelMethodCalls::TestCancel()`.
    TestCancel,
    /// From now on the outer's `Reset` / `Signal` fail (with `E_FAIL`) or succeed.
    OuterFails {
        /// Whether `Reset` fails.
        reset: bool,
        /// Whether `Signal` fails.
        signal: bool,
    },
    /// Arms a [`Hook`] for the next completion (replacing one still armed).
    Arm(Hook),
    /// The client releases its reference on the outer (the final release).
    Release,
}

impl fmt::Display for AggOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AggOp::Begin(m) => write!(f, "{}", ModelOp::Begin(*m)),
            AggOp::ServerComplete(hr) => write!(f, "server completes with {}", hr_name(*hr)),
            AggOp::Finish(m) => write!(f, "{}", ModelOp::Finish(*m)),
            AggOp::Cancel(s) => write!(f, "{}", ModelOp::Cancel(*s)),
            AggOp::CancelTimeout => f.write_str("CancelTimeout"),
            AggOp::TestCancel => f.write_str("TestCancel()"),
            AggOp::OuterFails { reset, signal } => {
                write!(f, "outer: Reset fails {reset}, Signal fails {signal}")
            }
            AggOp::Arm(h) => write!(f, "arm {h:?}"),
            AggOp::Release => f.write_str("Release()"),
        }
    }
}

/// What the outer saw, in order.
#[derive(Clone, Debug)]
enum Event {
    Reset(HRESULT),
    Signal {
        generation: u64,
        state: State,
        hr: HRESULT,
    },
    SignalReturned(HRESULT),
    Finish {
        method: usize,
        hr: HRESULT,
        outs: Vec<u32>,
    },
    Begin {
        method: usize,
        hr: HRESULT,
    },
}

#[derive(Default)]
struct OuterState {
    flag: bool,
    reset_fails: bool,
    signal_fails: bool,
    hook: Option<Hook>,
    /// The runner is executing an operation that may complete the call: hooks may fire.
    completing: bool,
    log: Vec<Event>,
}

/// The instrumented aggregating outer.
struct AggOuter {
    refs: RefCount,
    me: Weak<AggOuter>,
    inner: Mutex<Option<ComPtr<dyn IUnknown>>>,
    call: Mutex<Weak<CallObject<IProbeCalls>>>,
    st: Mutex<OuterState>,
}

fn begin(call: &CallObject<IProbeCalls>, m: usize, tag: u32) -> HRESULT {
    if m == 0 {
        call.begin_read(tag)
    } else {
        call.begin_write(tag)
    }
}

fn finish(call: &CallObject<IProbeCalls>, m: usize) -> (HRESULT, Vec<u32>) {
    if m == 0 {
        call.finish_read()
    } else {
        call.finish_write()
    }
}

impl AggOuter {
    fn take_hook(&self, point: HookPoint) -> Option<(Hook, Arc<CallObject<IProbeCalls>>)> {
        let call = self.call.lock().upgrade()?;
        if !matches!(call.state(), State::Signaled { .. }) {
            return None;
        }
        let mut st = self.st.lock();
        match st.hook {
            Some(h) if h.point == point && st.completing => {
                st.hook = None;
                Some((h, call))
            }
            _ => None,
        }
    }

    /// Runs the client code of a hook (no outer lock held: it re-enters the outer).
    fn run_hook(&self, point: HookPoint) {
        let Some((hook, call)) = self.take_hook(point) else {
            return;
        };
        let (hr, outs) = finish(&call, hook.finish);
        self.st.lock().log.push(Event::Finish {
            method: hook.finish,
            hr,
            outs,
        });
        if let Some(m) = hook.then_begin {
            let hr = begin(&call, m, 0);
            self.st.lock().log.push(Event::Begin { method: m, hr });
        }
    }

    fn more_interfaces(&self, me: &Arc<Self>, iid: &IID, ppv: &mut dyn Any) -> HRESULT {
        if *iid == IID_ISynchronize {
            self.run_hook(HookPoint::BeforeSignal);
            return set_out::<dyn ISynchronize>(
                ppv,
                self.refs.ptr(me.clone() as Arc<dyn ISynchronize>),
            );
        }
        let inner = self.inner.lock().clone();
        match inner {
            Some(inner) => inner.query_interface(iid, ppv),
            None => E_NOINTERFACE,
        }
    }

    fn final_release(&self) {
        let inner = self.inner.lock().take();
        drop(inner);
    }
}

impl ISynchronize for AggOuter {
    /// Never blocks: `S_OK` if signaled, else `RPC_S_CALLPENDING`.
    fn wait(&self, _flags: u32, _timeout_ms: u32) -> HRESULT {
        if self.st.lock().flag {
            S_OK
        } else {
            RPC_S_CALLPENDING
        }
    }

    fn signal(&self) -> HRESULT {
        let now = self
            .call
            .lock()
            .upgrade()
            .map(|c| c.call_state())
            .map(|s| (s.generation(), s.state()));
        let (generation, state) = now.unwrap_or((0, State::Gone));
        let hr = {
            let mut st = self.st.lock();
            let hr = if st.signal_fails {
                E_FAIL
            } else {
                st.flag = true;
                S_OK
            };
            st.log.push(Event::Signal {
                generation,
                state,
                hr,
            });
            hr
        };
        self.run_hook(HookPoint::InSignal);
        self.st.lock().log.push(Event::SignalReturned(hr));
        hr
    }

    fn reset(&self) -> HRESULT {
        let mut st = self.st.lock();
        let hr = if st.reset_fails {
            E_FAIL
        } else {
            st.flag = false;
            S_OK
        };
        st.log.push(Event::Reset(hr));
        hr
    }
}

crate::com_object!([] AggOuter {
    interfaces: [],
    more: AggOuter::more_interfaces,
    final_release: AggOuter::final_release,
});

/// Known findings a run can be told to tolerate, so that a long fuzzing run gets past them
/// while their fix is pending. [`Tolerate::default`] tolerates nothing (the fuzz target and the
/// corpus replay use it).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tolerate {
    /// Issue 9, finding 1: a completion's outer `Signal` lands after the next call's `Reset`
    /// (not reported; the check that the outer never reads signaled during a call is off).
    pub stale_signal: bool,
    /// A `Begin_` failed by the outer's `Reset` clears the cancelled flag of the previous
    /// call, so `TestCancel` answers `RPC_S_CALLPENDING` instead of `RPC_E_CALL_CANCELED`
    /// (`TestCancel` is not compared after such a `Begin_` until the next successful one).
    pub failed_begin_clears_cancel: bool,
}

/// The first departure from the rules, with the run up to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AggMismatch {
    /// Every step up to the failing one, as readable lines (hooked operations indented).
    pub steps: Vec<String>,
    /// What went wrong.
    pub failure: String,
}

impl fmt::Display for AggMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "aggregation run departs from the rules:")?;
        for (i, s) in self.steps.iter().enumerate() {
            writeln!(f, "  {i:>3}: {s}")?;
        }
        writeln!(f, "> {}", self.failure)
    }
}

impl std::error::Error for AggMismatch {}

/// A completion whose `Signal` the outer should see.
#[derive(Clone, Copy)]
struct Expecting {
    generation: u64,
    begun_since: bool,
}

/// A `Cancel(s > 0)` in flight: its window, its call, the caller's reference.
type InFlightCancel = (u32, u64, Option<ComPtr<dyn IUnknown>>);

struct AggRun {
    model: CallModel,
    obj: Arc<CallObject<IProbeCalls>>,
    outer: Weak<AggOuter>,
    client: Option<ComPtr<dyn IUnknown>>,
    server: Arc<ManualHandler<IProbeCalls>>,
    /// A `Cancel(s > 0)` in flight: its window, its call, the caller's reference.
    cancel: Option<InFlightCancel>,
    /// The model's current call (incremented by each successful `Begin_`).
    generation: u64,
    /// A failed outer `Signal` replaced the current call's result by this `HRESULT`.
    replaced: Option<HRESULT>,
    /// Tokens handed out: token → the generation it completed (`None`: a late completion).
    tokens: HashMap<u32, Option<u64>>,
    next_token: u32,
    expecting: Option<Expecting>,
    lines: Vec<String>,
    /// Whether to record readable lines (only to print a failing run).
    record: bool,
    tolerate: Tolerate,
    /// A `Begin_` failed by the outer since the last successful one (see [`Tolerate`]).
    failed_begin: bool,
}

type Check = Result<(), String>;

fn expect_eq(what: &str, expected: &ModelOutcome, got: &ModelOutcome) -> Check {
    if expected == got {
        Ok(())
    } else {
        Err(format!(
            "{what}: model {}, implementation {}",
            describe(expected),
            describe(got)
        ))
    }
}

impl AggRun {
    fn new(mode: FinishMode, tolerate: Tolerate, record: bool) -> AggRun {
        let server = ManualHandler::<IProbeCalls>::new();
        let outer = Arc::new_cyclic(|me| AggOuter {
            refs: RefCount::new(),
            me: me.clone(),
            inner: Mutex::new(None),
            call: Mutex::new(Weak::new()),
            st: Mutex::new(OuterState::default()),
        });
        let client: ComPtr<dyn IUnknown> = ComPtr::new(outer.clone() as Arc<dyn IUnknown>);
        let obj = CallObject::<IProbeCalls>::new(server.clone(), Some(&client), mode);
        *outer.call.lock() = Arc::downgrade(&obj);
        *outer.inner.lock() = Some(crate::unknown::non_delegating(obj.clone()));
        AggRun {
            model: CallModel::with_mode(super::PROBE_ASYNC_IID, mode),
            obj,
            outer: Arc::downgrade(&outer),
            client: Some(client),
            server,
            cancel: None,
            generation: 0,
            replaced: None,
            tokens: HashMap::new(),
            next_token: 1,
            expecting: None,
            lines: Vec::new(),
            record,
            tolerate,
            failed_begin: false,
        }
    }

    fn take_log(&self) -> Vec<Event> {
        match self.outer.upgrade() {
            Some(o) => std::mem::take(&mut o.st.lock().log),
            None => Vec::new(),
        }
    }

    fn token(&mut self, generation: Option<u64>) -> u32 {
        let t = self.next_token;
        self.next_token += 1;
        self.tokens.insert(t, generation);
        t
    }

    /// A `Begin_` (top-level or hooked) that returned `hr`, with the outer `Reset`s it made.
    fn on_begin(&mut self, m: usize, hr: HRESULT, resets: &[HRESULT]) -> Check {
        let (expected, next) = self.model.step(&ModelOp::Begin(m));
        if expected == ModelOutcome::Returns(S_OK) {
            let [reset] = resets else {
                return Err(format!(
                    "a successful Begin_ resets the outer once; it reset it {} times",
                    resets.len()
                ));
            };
            if reset.failed() {
                // The outer refused: Begin_ fails with its HRESULT, the call object stays idle.
                self.failed_begin = true;
                return expect_eq(
                    "Begin_ with a failing outer Reset",
                    &ModelOutcome::Returns(*reset),
                    &ModelOutcome::Returns(hr),
                );
            }
            expect_eq("Begin_", &expected, &ModelOutcome::Returns(hr))?;
            self.model = next;
            // The real generation: a failed Begin_ may have used one up.
            self.generation = self.obj.call_state().generation();
            self.replaced = None;
            self.failed_begin = false;
            if let Some(e) = &mut self.expecting {
                e.begun_since = true;
            }
            Ok(())
        } else {
            if !resets.is_empty() {
                return Err(format!(
                    "a refused Begin_ ({}) reset the outer",
                    hr_name(hr)
                ));
            }
            expect_eq("Begin_", &expected, &ModelOutcome::Returns(hr))
        }
    }

    /// A `Finish_` (top-level or hooked) that returned `(hr, outs)`.
    fn on_finish(&mut self, m: usize, hr: HRESULT, outs: Vec<u32>) -> Check {
        let (expected, next) = self.model.step(&ModelOp::Finish(m));
        if expected == ModelOutcome::Blocks {
            return Err("a blocking Finish_ returned before completion".into());
        }
        for t in &outs {
            match self.tokens.get(t) {
                Some(Some(g)) if *g == self.generation => {}
                Some(Some(g)) => {
                    return Err(format!(
                        "Finish_ of call {} returned the result of call {g}",
                        self.generation
                    ))
                }
                Some(None) => return Err("Finish_ returned a late (dropped) result".into()),
                None => return Err(format!("Finish_ returned {t}, never handed out")),
            }
        }
        let expected = match (expected, self.replaced) {
            (ModelOutcome::Finished { .. }, Some(signal_hr)) => ModelOutcome::Returns(signal_hr),
            (e, _) => e,
        };
        let got = if matches!(expected, ModelOutcome::Finished { .. }) || !outs.is_empty() {
            ModelOutcome::Finished { hr, outs }
        } else {
            ModelOutcome::Returns(hr)
        };
        expect_eq("Finish_ (exactly-once delivery)", &expected, &got)?;
        self.model = next;
        Ok(())
    }

    /// The call completed (by the server or locally): its `Signal` is expected.
    fn completed(&mut self) {
        self.expecting = Some(Expecting {
            generation: self.generation,
            begun_since: false,
        });
    }

    /// Walks what the outer saw during one top-level operation.
    fn walk(&mut self, log: Vec<Event>) -> Check {
        let mut resets = Vec::new();
        for ev in log {
            match ev {
                Event::Reset(hr) => resets.push(hr),
                Event::Begin { method, hr } => {
                    note!(
                        self,
                        "    (hook) {} → {}",
                        ModelOp::Begin(method),
                        hr_name(hr)
                    );
                    self.on_begin(method, hr, &std::mem::take(&mut resets))?;
                }
                Event::Finish { method, hr, outs } => {
                    note!(
                        self,
                        "    (hook) {} → {}, outs {outs:?}",
                        ModelOp::Finish(method),
                        hr_name(hr)
                    );
                    self.on_finish(method, hr, outs)?;
                }
                Event::Signal {
                    generation,
                    state,
                    hr,
                } => {
                    note!(
                        self,
                        "    outer Signal (call object: call {generation}, {state:?}) → {}",
                        hr_name(hr)
                    );
                    let Some(e) = self.expecting.take() else {
                        return Err("the outer was signaled with no completion to report".into());
                    };
                    if (generation != e.generation
                        || matches!(state, State::Pending | State::Cancelling))
                        && !self.tolerate.stale_signal
                    {
                        return Err(format!(
                            "stale outer Signal: call {}'s completion signaled the outer after \
                             call {generation}'s Begin_ reset it, while that call is {state:?} \
                             (issue 9, finding 1)",
                            e.generation
                        ));
                    }
                }
                Event::SignalReturned(hr) => {
                    if hr.failed()
                        && matches!(self.model.state(), State::Signaled { cancelled: false })
                    {
                        self.replaced = Some(hr);
                    }
                }
            }
        }
        if !resets.is_empty() {
            return Err("the outer was reset outside any Begin_".into());
        }
        if let Some(e) = self.expecting.take() {
            if !e.begun_since {
                return Err(format!(
                    "call {}'s completion never signaled the outer",
                    e.generation
                ));
            }
        }
        Ok(())
    }

    fn step(&mut self, op: &AggOp) -> Check {
        let _ = self.take_log();
        let completing = matches!(
            op,
            AggOp::ServerComplete(_) | AggOp::Cancel(0) | AggOp::CancelTimeout
        );
        if let Some(o) = self.outer.upgrade() {
            o.st.lock().completing = completing;
        }
        let result = self.exec(op);
        if let Some(o) = self.outer.upgrade() {
            o.st.lock().completing = false;
        }
        result
    }

    fn exec(&mut self, op: &AggOp) -> Check {
        let obj = self.obj.clone();
        match op {
            AggOp::Begin(m) => {
                let tag = self.next_token;
                let hr = begin(&obj, *m, tag);
                note!(self, "{op} → {}", hr_name(hr));
                let log = self.take_log();
                let resets: Vec<HRESULT> = log
                    .iter()
                    .filter_map(|e| match e {
                        Event::Reset(hr) => Some(*hr),
                        _ => None,
                    })
                    .collect();
                if resets.len() != log.len() {
                    return Err("Begin_ did more to the outer than Reset it".into());
                }
                self.on_begin(*m, hr, &resets)?;
            }
            AggOp::Finish(m) => {
                let (expected, _) = self.model.step(&ModelOp::Finish(*m));
                if expected == ModelOutcome::Blocks {
                    note!(self, "{op}   (skipped: model blocks)");
                    return Ok(());
                }
                let (hr, outs) = finish(&obj, *m);
                note!(self, "{op} → {}, outs {outs:?}", hr_name(hr));
                self.on_finish(*m, hr, outs)?;
                let log = self.take_log();
                if !log.is_empty() {
                    return Err(format!("Finish_ touched the outer: {log:?}"));
                }
            }
            AggOp::ServerComplete(hr) => {
                let queued: Vec<ServerCall<IProbeCalls>> =
                    std::iter::from_fn(|| self.server.take().map(|(c, _)| c)).collect();
                let mut current = None;
                for call in queued {
                    if call.is_wanted() {
                        current = Some(call);
                    } else {
                        let t = self.token(None);
                        let m = call.method();
                        call.complete(S_OK, out_for(m, vec![t]));
                    }
                }
                let delivered = current.is_some();
                let t = self.token(delivered.then(|| obj.call_state().generation()));
                let (expected, next) = self.model.step(&ModelOp::ServerComplete {
                    hr: *hr,
                    outs: vec![t],
                });
                if let Some(call) = current {
                    let m = call.method();
                    call.complete(*hr, out_for(m, vec![t]));
                }
                let got = match (delivered, &expected) {
                    (false, _) => ModelOutcome::Dropped,
                    (
                        true,
                        ModelOutcome::Delivered {
                            cancel_returns: Some(_),
                        },
                    ) => {
                        let hr = match self.cancel.take() {
                            Some((_, g, _)) => obj.virtual_cancel_window_over(g),
                            None => return Err("no Cancel in flight to resolve".into()),
                        };
                        ModelOutcome::Delivered {
                            cancel_returns: Some(hr),
                        }
                    }
                    (true, _) => ModelOutcome::Delivered {
                        cancel_returns: None,
                    },
                };
                note!(self, "{op} (token {t}) → {}", describe(&got));
                expect_eq("server completion", &expected, &got)?;
                self.model = next;
                if delivered {
                    self.completed();
                }
                let log = self.take_log();
                self.walk(log)?;
            }
            AggOp::Cancel(0) => {
                let hr = ICancelMethodCalls::cancel(&*obj, 0);
                note!(self, "{op} → {}", hr_name(hr));
                let (expected, next) = self.model.step(&ModelOp::Cancel(0));
                expect_eq("Cancel(0)", &expected, &ModelOutcome::Returns(hr))?;
                self.model = next;
                if hr == S_OK {
                    self.completed();
                }
                let log = self.take_log();
                self.walk(log)?;
            }
            AggOp::Cancel(s) => {
                let (expected, next) = self.model.step(&ModelOp::Cancel(*s));
                let got = match obj.virtual_cancel_request() {
                    Ok(g) => {
                        self.cancel = Some((*s, g, self.client.clone()));
                        ModelOutcome::CancelInFlight
                    }
                    Err(hr) => ModelOutcome::Returns(hr),
                };
                note!(self, "{op} → {}", describe(&got));
                expect_eq("Cancel", &expected, &got)?;
                self.model = next;
            }
            AggOp::CancelTimeout => {
                let (expected, next) = self.model.step(&ModelOp::CancelTimeout);
                if matches!(expected, ModelOutcome::Invalid(_)) {
                    note!(self, "{op}   (skipped: no finite window open)");
                    return Ok(());
                }
                let Some((_, g, _caller)) = self.cancel.take() else {
                    return Err("the model has a Cancel in flight, the runner none".into());
                };
                let got = ModelOutcome::CancelReturns(obj.virtual_cancel_window_over(g));
                note!(self, "{op} → {}", describe(&got));
                expect_eq("CancelTimeout", &expected, &got)?;
                self.model = next;
                self.completed();
                let log = self.take_log();
                self.walk(log)?;
            }
            AggOp::TestCancel => {
                let got = ModelOutcome::Returns(ICancelMethodCalls::test_cancel(&*obj));
                note!(self, "{op} → {}", describe(&got));
                if !(self.failed_begin && self.tolerate.failed_begin_clears_cancel) {
                    expect_eq(
                        "TestCancel (a Begin_ refused by the outer's Reset must not clear the \
                         cancelled flag)",
                        &self.model.step(&ModelOp::TestCancel).0,
                        &got,
                    )?;
                }
            }
            AggOp::OuterFails { reset, signal } => {
                note!(self, "{op}");
                if let Some(o) = self.outer.upgrade() {
                    let mut st = o.st.lock();
                    st.reset_fails = *reset;
                    st.signal_fails = *signal;
                }
            }
            AggOp::Arm(h) => {
                note!(self, "{op}");
                if let Some(o) = self.outer.upgrade() {
                    o.st.lock().hook = Some(*h);
                }
            }
            AggOp::Release => {
                if self.cancel.is_some() || self.client.is_none() {
                    note!(self, "{op}   (skipped: not the final release)");
                    return Ok(());
                }
                let (expected, next) = self.model.step(&ModelOp::Release);
                let before = obj.state();
                drop(self.client.take());
                let got = ModelOutcome::Released {
                    abandoned: before.in_call(),
                };
                note!(self, "{op} → {}", describe(&got));
                expect_eq("Release", &expected, &got)?;
                self.model = next;
                if self.outer.strong_count() != 0 {
                    return Err("the outer is still in memory after its final release".into());
                }
            }
        }
        self.check_state()
    }

    fn check_state(&self) -> Check {
        let real = self.obj.state();
        let model = self.model.state();
        if real != model {
            return Err(format!(
                "the call object is {real:?}, the model says {model:?}"
            ));
        }
        let pending = matches!(model, State::Pending | State::Cancelling);
        if pending || matches!(model, State::Signaled { .. }) {
            let set = self.obj.handle().is_signaled();
            if set != self.model.event_set() {
                return Err(format!(
                    "the call's event is set: {set}, the model says otherwise"
                ));
            }
        }
        if pending && !self.tolerate.stale_signal {
            if let Some(o) = self.outer.upgrade() {
                if o.st.lock().flag {
                    return Err(format!(
                        "the outer reads signaled while call {} is {model:?} (issue 9, \
                         finding 1)",
                        self.generation
                    ));
                }
            }
        }
        Ok(())
    }

    /// Resolves a `Cancel` still in flight (a checked step).
    fn settle(&mut self) -> Check {
        if let Some((s, _, _)) = self.cancel {
            let op = if s == RPC_C_CANCEL_INFINITE_TIMEOUT {
                AggOp::ServerComplete(S_OK)
            } else {
                AggOp::CancelTimeout
            };
            self.step(&op)?;
        }
        Ok(())
    }

    /// Releases everything and checks that nothing is left in memory.
    fn finish_run(mut self) -> Check {
        if let Some(o) = self.outer.upgrade() {
            o.st.lock().hook = None;
        }
        drop(self.client.take());
        while self.server.take().is_some() {}
        let weak_obj = Arc::downgrade(&self.obj);
        let weak_outer = self.outer.clone();
        drop(self);
        if weak_obj.strong_count() != 0 || weak_outer.strong_count() != 0 {
            return Err(format!(
                "leak: after everything is released the call object has {} and the outer {} \
                 strong references",
                weak_obj.strong_count(),
                weak_outer.strong_count()
            ));
        }
        Ok(())
    }
}

fn out_for(method: usize, outs: Vec<u32>) -> IProbeOut {
    if method == 0 {
        IProbeOut::Read { outs }
    } else {
        IProbeOut::Write { outs }
    }
}

/// Runs `ops` on a call object aggregated under the instrumented outer (see the
/// [module documentation](self)): `Ok` if every rule held throughout.
pub fn check_aggregation(mode: FinishMode, ops: &[AggOp]) -> Result<(), AggMismatch> {
    check_aggregation_with(mode, ops, Tolerate::default())
}

/// [`check_aggregation`], tolerating the known findings `tolerate` names.
pub fn check_aggregation_with(
    mode: FinishMode,
    ops: &[AggOp],
    tolerate: Tolerate,
) -> Result<(), AggMismatch> {
    match run_aggregation(mode, ops, tolerate, false) {
        Ok(()) => Ok(()),
        // Deterministic: run it again, recording, to print it.
        Err(first) => match run_aggregation(mode, ops, tolerate, true) {
            Err(m) => Err(m),
            Ok(()) => Err(first),
        },
    }
}

fn run_aggregation(
    mode: FinishMode,
    ops: &[AggOp],
    tolerate: Tolerate,
    record: bool,
) -> Result<(), AggMismatch> {
    let mut run = AggRun::new(mode, tolerate, record);
    let mut result = Ok(());
    for op in ops {
        result = run.step(op);
        if result.is_err() {
            break;
        }
    }
    if result.is_ok() {
        result = run.settle();
    }
    if let Err(failure) = result {
        let steps = std::mem::take(&mut run.lines);
        if let Some(o) = run.outer.upgrade() {
            o.st.lock().hook = None;
        }
        // Let the queued calls go before the run is dropped.
        while run.server.take().is_some() {}
        return Err(AggMismatch { steps, failure });
    }
    let lines = run.lines.clone();
    run.finish_run().map_err(|failure| AggMismatch {
        steps: lines,
        failure,
    })
}
