//! Every scenario script, checked against the reference model ([`crate::model`]).
//!
//! The runner executes a script on the real objects; this module replays the same steps, in
//! the order the runner executed them and with what each produced, on model objects — one
//! [`CallModel`] per call object (its `Finish_` mode from the server's kind: `strict` is
//! [`FinishMode::Strict`]), one [`EventModel`] per event, one [`ContainerModel`] per
//! container — and reports the first step where the implementation and the model disagree, at
//! the script's line and naming both answers:
//!
//! ```text
//! line 12: Wait call 0: the implementation returned RPC_S_CALLPENDING, the model says S_OK
//! ```
//!
//! # Input
//!
//! The check reads its own small types: [`Checked`] (an operation), [`Action`] (do, start,
//! join) and [`Observed`] (what the step produced). [`from_op`] is the only place that reads
//! the parser's `Op`, and [`action`] the only one that reads its `StepKind`.
//!
//! # Started operations
//!
//! A `start`ed operation the model says [blocks](ModelOutcome::Blocks) (an `INFINITE` wait on
//! an unsignaled object, a blocking `Finish_` before completion) or whose `Cancel` window is
//! open ([`ModelOutcome::CancelInFlight`]) is pending. After every later step the model is
//! asked again, in the order the operations were started: a wait or `Finish_` that now
//! returns takes its answer then (and its effect: an auto-reset event it consumed); a
//! `Cancel` in flight returns `RPC_E_CALL_COMPLETE` when the server completes its call. The
//! `join` compares that answer with what the real operation returned; a finite `Cancel` still
//! in flight at its `join` is resolved there as its window expiring (`S_OK`). Whether a
//! started operation blocked at first is compared at the `start` line.
//!
//! # What is not checked
//!
//! The model covers the call object, the events, `CoWaitForMultipleHandles` and the container.
//! These are tracked only as far as the check needs them, and never compared:
//!
//! * object creation (`SimpleStream`, `ManualResetEvent`, `StdEvent`, `SynchronizeContainer`)
//!   and `CreateCall` (its argument rules, D11): a successful `CreateCall` makes a
//!   [`CallModel`];
//! * `QueryInterface` on anything but a call object (a successful one binds the variable to
//!   the same object), `AddRef`, and the counts `AddRef`/`Release` print (a `Release` that
//!   prints 0 on a call object is its final release);
//! * the server's own results: `Complete` and `Fail` give the model the server's `HRESULT`
//!   and out-parameters, and the model says whether they are delivered or dropped (late);
//!   `ServerTestCancel` is compared only for the call object's current call;
//! * `Signal` or `Reset` on a call object's `ISynchronize` (not an operation of the model): the
//!   call object is no longer tracked, nor is a container or wait that includes it;
//! * a `Cancel` window expiring in real time while later steps run: a finite `Cancel` in
//!   flight is taken to outlast the steps until the server completes or its `join`.
//!
//! # Invariants
//!
//! A variable names at most one model object; an untracked object stays untracked; a pending
//! operation gets at most one answer, and the model's state changes only by operations that
//! returned.

use std::collections::{HashMap, VecDeque};
use std::fmt;

use super::parse::{self, Iface, ServerKind, StepKind, Value};
use crate::call::FinishMode;
use crate::guid::{
    IID_ICallFactory, IID_ICancelMethodCalls, IID_ISynchronize, IID_ISynchronizeContainer,
    IID_ISynchronizeHandle, IID_IUnknown, IID,
};
use crate::hresult::{HRESULT, S_OK};
use crate::model::{
    co_wait_for_multiple_handles, CallModel, ContainerModel, EventClass, EventModel, MethodIndex,
    ModelOutcome, INFINITE, READ, WRITE,
};
use crate::simple_stream::{AsyncISimpleStream, ISimpleStream};
use crate::unknown::Interface;

/// One operation of a script, as the check reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Checked {
    /// A server object; `strict`: `Finish_` before completion returns `RPC_S_CALLPENDING`.
    Server { strict: bool },
    /// A new event; `auto`: `CLSID_StdEvent`, else `CLSID_ManualResetEvent`.
    Event { auto: bool },
    /// A new `CLSID_SynchronizeContainer`.
    Container,
    /// `QueryInterface`.
    QueryInterface { target: String, iid: IID },
    /// `ICallFactory::CreateCall` on `factory`'s object.
    CreateCall { factory: String },
    /// `Release` (the count it printed tells a final release).
    Release { target: String },
    /// `Begin_<method>` (method: the COM name, `Read` or `Write`).
    Begin { call: String, method: String },
    /// `Finish_<method>`.
    Finish { call: String, method: String },
    /// `ISynchronize::Wait(0, timeout)`.
    Wait { target: String, timeout: u32 },
    /// `ISynchronize::Signal`.
    Signal { target: String },
    /// `ISynchronize::Reset`.
    Reset { target: String },
    /// `ICancelMethodCalls::Cancel(seconds)`.
    Cancel { call: String, seconds: u32 },
    /// `ICancelMethodCalls::TestCancel`.
    TestCancel { call: String },
    /// `ISynchronizeContainer::AddSynchronize`.
    AddSynchronize { container: String, sync: String },
    /// `ISynchronizeContainer::WaitMultiple(0, timeout)`.
    WaitMultiple { container: String, timeout: u32 },
    /// `CoWaitForMultipleHandles(flags, timeout, handles)`.
    CoWait {
        flags: u32,
        timeout: u32,
        handles: Vec<String>,
    },
    /// The server completes the oldest waiting call of `call` with its method's result.
    Complete { call: String },
    /// The server completes the oldest waiting call of `call` with `hr`.
    Fail { call: String, hr: HRESULT },
    /// The server's `TestCancel` on the oldest waiting call of `call`.
    ServerTestCancel { call: String },
}

/// What a statement does with its operation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Run it and wait for it (`bind`: the variable the result is bound to).
    Do { bind: Option<String>, op: Checked },
    /// Start it on the actor's thread.
    Start(Checked),
    /// Wait for the actor's started operation.
    Join,
}

/// What one step produced, as the runner saw it.
#[derive(Clone, Debug)]
pub(crate) struct Observed<'a> {
    /// The script line.
    pub line: usize,
    /// The actor (for `join`).
    pub actor: &'a str,
    /// The statement, for messages.
    pub text: &'a str,
    /// The result.
    pub seen: Seen<'a>,
}

/// The result of one step.
#[derive(Clone, Debug)]
pub(crate) enum Seen<'a> {
    /// The operation (or the joined one) returned.
    Returned {
        /// Its `HRESULT`, if it has one.
        hr: Option<HRESULT>,
        /// `AddRef`/`Release`: the count printed.
        count: Option<u32>,
        /// Its out-parameters.
        outs: &'a [Value],
        /// A server completion the call object dropped (late).
        dropped: bool,
    },
    /// A `start`: whether the operation was still blocked once everything settled.
    Started { blocked: bool },
}

/// The first disagreement: the line and both answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Divergence {
    /// The script line.
    pub line: usize,
    /// `STATEMENT: the implementation …, the model says …`.
    pub message: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// The adapter from the parser's operation: the only place that reads `parse::Op`. `None`:
/// an operation the model does not cover at all (`AddRef`).
pub(crate) fn from_op(op: &parse::Op) -> Option<Checked> {
    use parse::Op as P;
    let s = |x: &String| x.clone();
    Some(match op {
        P::SimpleStream { kind, .. } => Checked::Server {
            strict: *kind == ServerKind::ManualStrict,
        },
        P::ManualResetEvent => Checked::Event { auto: false },
        P::StdEvent => Checked::Event { auto: true },
        P::SynchronizeContainer => Checked::Container,
        P::QueryInterface { target, iface } => Checked::QueryInterface {
            target: s(target),
            iid: iid_of(*iface),
        },
        P::AddRef { .. } => return None,
        P::Release { target } => Checked::Release { target: s(target) },
        P::CreateCall { factory, .. } => Checked::CreateCall {
            factory: s(factory),
        },
        P::BeginRead { call, .. } => Checked::Begin {
            call: s(call),
            method: "Read".into(),
        },
        P::BeginWrite { call, .. } => Checked::Begin {
            call: s(call),
            method: "Write".into(),
        },
        P::FinishRead { call } => Checked::Finish {
            call: s(call),
            method: "Read".into(),
        },
        P::FinishWrite { call } => Checked::Finish {
            call: s(call),
            method: "Write".into(),
        },
        P::Wait { target, timeout } => Checked::Wait {
            target: s(target),
            timeout: *timeout,
        },
        P::Signal { target } => Checked::Signal { target: s(target) },
        P::Reset { target } => Checked::Reset { target: s(target) },
        P::Cancel { call, seconds } => Checked::Cancel {
            call: s(call),
            seconds: *seconds,
        },
        P::TestCancel { call } => Checked::TestCancel { call: s(call) },
        P::AddSynchronize { container, sync } => Checked::AddSynchronize {
            container: s(container),
            sync: s(sync),
        },
        P::WaitMultiple { container, timeout } => Checked::WaitMultiple {
            container: s(container),
            timeout: *timeout,
        },
        P::CoWaitForMultipleHandles {
            flags,
            timeout,
            handles,
        } => Checked::CoWait {
            flags: *flags,
            timeout: *timeout,
            handles: handles.clone(),
        },
        P::Complete { call } => Checked::Complete { call: s(call) },
        P::Fail { call, hr } => Checked::Fail {
            call: s(call),
            hr: *hr,
        },
        P::ServerTestCancel { call } => Checked::ServerTestCancel { call: s(call) },
    })
}

/// A statement's [`Action`], if the check has one for it (commentary and `AddRef` have none).
pub(crate) fn action(kind: &StepKind) -> Option<Action> {
    match kind {
        StepKind::Do { bind, op } => Some(Action::Do {
            bind: bind.clone(),
            op: from_op(op)?,
        }),
        StepKind::Start { op } => Some(Action::Start(from_op(op)?)),
        StepKind::Join => Some(Action::Join),
        StepKind::Say(_) => None,
    }
}

fn iid_of(iface: Iface) -> IID {
    match iface {
        Iface::IUnknown => IID_IUnknown,
        Iface::ISimpleStream => <dyn ISimpleStream as Interface>::IID,
        Iface::AsyncISimpleStream => <dyn AsyncISimpleStream as Interface>::IID,
        Iface::ICallFactory => IID_ICallFactory,
        Iface::ISynchronize => IID_ISynchronize,
        Iface::ISynchronizeHandle => IID_ISynchronizeHandle,
        Iface::ICancelMethodCalls => IID_ICancelMethodCalls,
        Iface::ISynchronizeContainer => IID_ISynchronizeContainer,
    }
}

fn method_index(name: &str) -> Option<MethodIndex> {
    match name {
        "Read" => Some(READ),
        "Write" => Some(WRITE),
        _ => None,
    }
}

/// One call object's model and the bookkeeping around it.
#[derive(Clone, Debug)]
struct CallObj {
    model: CallModel,
    /// The call numbers of begun calls the server has not completed, oldest first.
    queued: VecDeque<u64>,
    /// What each delivered server completion carried, by token (the model's out-value);
    /// `None` for a `Fail` (its out-parameters are the defaults).
    results: Vec<Option<Vec<Value>>>,
}

/// A model object a variable names.
#[derive(Clone, Debug)]
enum Obj {
    /// A server object and the `Finish_` mode of its call objects.
    Server(FinishMode),
    /// A call object.
    Call(Box<CallObj>),
    /// An event.
    Event(EventModel),
    /// A container and the variable each of its objects was added as.
    Container(ContainerModel, Vec<String>),
    /// No longer (or never) tracked.
    Untracked,
}

/// A started operation's answer.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Answer {
    /// The model says it has not returned yet.
    Waiting,
    /// What the model says it returned.
    Returned(ModelOutcome),
    /// Not checked (an object it uses is not tracked).
    Unchecked,
}

#[derive(Clone, Debug)]
struct Pending {
    actor: String,
    text: String,
    op: Checked,
    /// For a `Cancel`: the call object it waits on.
    obj: Option<usize>,
    answer: Answer,
}

/// What the model expects of one step, in the script's terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Expected {
    hr: Option<HRESULT>,
    outs: Option<Vec<Value>>,
    blocks: bool,
    dropped: Option<bool>,
}

/// The model side of one script run: feed it every executed step with [`ModelCheck::step`].
#[derive(Clone, Debug, Default)]
pub(crate) struct ModelCheck {
    objs: Vec<Obj>,
    vars: HashMap<String, usize>,
    pending: Vec<Pending>,
}

impl ModelCheck {
    /// A check with no objects yet.
    pub(crate) fn new() -> Self {
        Self::default()
    }

    /// Replays one executed step (`None`: a step the model does not cover) and compares its
    /// result; then asks the model again about every pending started operation.
    pub(crate) fn step(
        &mut self,
        action: Option<Action>,
        seen: &Observed<'_>,
    ) -> Result<(), Divergence> {
        let r = match action {
            None => Ok(()),
            Some(Action::Do { bind, op }) => self.run(bind.as_deref(), &op, seen),
            Some(Action::Start(op)) => self.start(op, seen),
            Some(Action::Join) => self.join(seen),
        };
        self.wake();
        r
    }

    fn obj(&self, var: &str) -> Option<usize> {
        self.vars.get(var).copied()
    }

    fn call_mut(&mut self, var: &str) -> Option<&mut CallObj> {
        let i = self.obj(var)?;
        match &mut self.objs[i] {
            Obj::Call(c) => Some(c),
            _ => None,
        }
    }

    fn new_obj(&mut self, bind: Option<&str>, obj: Obj) {
        self.objs.push(obj);
        if let Some(name) = bind {
            self.vars.insert(name.to_string(), self.objs.len() - 1);
        }
    }

    /// A `Do` statement.
    fn run(
        &mut self,
        bind: Option<&str>,
        op: &Checked,
        seen: &Observed<'_>,
    ) -> Result<(), Divergence> {
        let Some(outcome) = self.apply(bind, op, seen) else {
            return Ok(());
        };
        let outcome = match (outcome, op) {
            // A Do step returns only once the window is over: the server cannot complete
            // meanwhile (no other actor runs during a Do step).
            (ModelOutcome::CancelInFlight, Checked::Cancel { call, seconds }) => {
                if *seconds == INFINITE {
                    ModelOutcome::Blocks
                } else {
                    match self.call_mut(call) {
                        Some(c) => c.model.cancel_timeout(),
                        None => return Ok(()),
                    }
                }
            }
            (o, _) => o,
        };
        let expected = self.expected(op, &outcome);
        compare(seen.line, seen.text, &expected, &seen.seen)
    }

    /// A `start` statement.
    fn start(&mut self, op: Checked, seen: &Observed<'_>) -> Result<(), Divergence> {
        let obj = match &op {
            Checked::Cancel { call, .. } => self.obj(call),
            _ => None,
        };
        let answer = match self.apply(None, &op, seen) {
            None => Answer::Unchecked,
            Some(ModelOutcome::Blocks | ModelOutcome::CancelInFlight) => Answer::Waiting,
            Some(o) => Answer::Returned(o),
        };
        let text = seen.text.trim_start_matches("start ").to_string();
        if let Seen::Started { blocked } = seen.seen {
            let model_blocks = answer == Answer::Waiting;
            if answer != Answer::Unchecked && blocked != model_blocks {
                let (real, model) = if blocked {
                    let says = match &answer {
                        Answer::Returned(o) => say(&self.expected(&op, o)),
                        _ => String::new(),
                    };
                    ("blocks".to_string(), format!("it returns {says} at once"))
                } else {
                    ("returned at once".to_string(), "it blocks".to_string())
                };
                return Err(Divergence {
                    line: seen.line,
                    message: format!("{text}: the implementation {real}, the model says {model}"),
                });
            }
        }
        self.pending.push(Pending {
            actor: seen.actor.to_string(),
            text,
            op,
            obj,
            answer,
        });
        Ok(())
    }

    /// A `join` statement.
    fn join(&mut self, seen: &Observed<'_>) -> Result<(), Divergence> {
        let Some(i) = self.pending.iter().position(|p| p.actor == seen.actor) else {
            return Ok(());
        };
        let mut p = self.pending.remove(i);
        if p.answer == Answer::Waiting {
            // A finite Cancel still in flight: its window expired.
            if let (Checked::Cancel { seconds, .. }, Some(obj)) = (&p.op, p.obj) {
                if *seconds != INFINITE {
                    if let Obj::Call(c) = &mut self.objs[obj] {
                        if c.model.cancel_in_flight().is_some() {
                            p.answer = Answer::Returned(c.model.cancel_timeout());
                        }
                    }
                }
            }
        }
        let text = format!("join ({})", p.text);
        match p.answer {
            Answer::Unchecked => Ok(()),
            Answer::Waiting => {
                let expected = Expected {
                    blocks: true,
                    ..Expected::default()
                };
                compare(seen.line, &text, &expected, &seen.seen)
            }
            Answer::Returned(o) => {
                let expected = self.expected(&p.op, &o);
                compare(seen.line, &text, &expected, &seen.seen)
            }
        }
    }

    /// Asks the model again about every started operation still waiting, oldest first.
    fn wake(&mut self) {
        for i in 0..self.pending.len() {
            if self.pending[i].answer != Answer::Waiting {
                continue;
            }
            // A Cancel in flight returns when the server completes (see `apply`).
            if matches!(self.pending[i].op, Checked::Cancel { .. }) {
                continue;
            }
            let op = self.pending[i].op.clone();
            let no_result = Observed {
                line: 0,
                actor: "",
                text: "",
                seen: Seen::Started { blocked: true },
            };
            self.pending[i].answer = match self.apply(None, &op, &no_result) {
                None => Answer::Unchecked,
                Some(ModelOutcome::Blocks) => Answer::Waiting,
                Some(o) => Answer::Returned(o),
            };
        }
    }

    /// Applies `op` to the model objects: the model's outcome (the state changes only if it
    /// returns), or `None` when the model does not cover it.
    fn apply(
        &mut self,
        bind: Option<&str>,
        op: &Checked,
        seen: &Observed<'_>,
    ) -> Option<ModelOutcome> {
        let (hr, count, outs, _) = match &seen.seen {
            Seen::Returned {
                hr,
                count,
                outs,
                dropped,
            } => (*hr, *count, *outs, *dropped),
            Seen::Started { .. } => (None, None, &[][..], false),
        };
        match op {
            Checked::Server { strict } => {
                let mode = if *strict {
                    FinishMode::Strict
                } else {
                    FinishMode::Blocking
                };
                self.new_obj(bind, Obj::Server(mode));
                None
            }
            Checked::Event { auto } => {
                let class = if *auto {
                    EventClass::Auto
                } else {
                    EventClass::ManualReset
                };
                self.new_obj(bind, Obj::Event(EventModel::new(class)));
                None
            }
            Checked::Container => {
                self.new_obj(bind, Obj::Container(ContainerModel::new(), Vec::new()));
                None
            }
            Checked::QueryInterface { target, iid } => {
                let obj = self.obj(target)?;
                if let (Some(name), Some(S_OK)) = (bind, hr) {
                    self.vars.insert(name.to_string(), obj);
                }
                match &self.objs[obj] {
                    Obj::Call(c) => Some(c.model.query_interface(iid)),
                    _ => None,
                }
            }
            Checked::CreateCall { factory } => {
                let obj = self.obj(factory)?;
                if let (Obj::Server(mode), Some(S_OK)) = (&self.objs[obj], hr) {
                    let iid = <dyn AsyncISimpleStream as Interface>::IID;
                    let call = CallObj {
                        model: CallModel::with_mode(iid, *mode),
                        queued: VecDeque::new(),
                        results: Vec::new(),
                    };
                    self.new_obj(bind, Obj::Call(Box::new(call)));
                }
                None
            }
            Checked::Release { target } => {
                if count == Some(0) {
                    if let Some(c) = self.call_mut(target) {
                        c.model.release();
                    }
                }
                None
            }
            Checked::Begin { call, method } => {
                let m = method_index(method)?;
                let c = self.call_mut(call)?;
                let o = c.model.begin(m);
                if o == ModelOutcome::Returns(S_OK) {
                    let n = c.model.call_number();
                    c.queued.push_back(n);
                }
                Some(o)
            }
            Checked::Finish { call, method } => {
                let m = method_index(method)?;
                Some(self.call_mut(call)?.model.finish(m))
            }
            Checked::Wait { target, timeout } => {
                let obj = self.obj(target)?;
                match &mut self.objs[obj] {
                    Obj::Call(c) => Some(c.model.wait(0, *timeout)),
                    Obj::Event(e) => Some(e.wait(0, *timeout)),
                    _ => None,
                }
            }
            Checked::Signal { target } | Checked::Reset { target } => {
                let obj = self.obj(target)?;
                let signal = matches!(op, Checked::Signal { .. });
                match &mut self.objs[obj] {
                    Obj::Event(e) if signal => Some(e.signal()),
                    Obj::Event(e) => Some(e.reset()),
                    // Not an operation of the model: the call object's event is no longer
                    // known.
                    Obj::Call(_) => {
                        self.objs[obj] = Obj::Untracked;
                        None
                    }
                    _ => None,
                }
            }
            Checked::Cancel { call, seconds } => Some(self.call_mut(call)?.model.cancel(*seconds)),
            Checked::TestCancel { call } => Some(self.call_mut(call)?.model.test_cancel()),
            Checked::AddSynchronize { container, sync } => {
                let (k, s) = (self.obj(container)?, self.obj(sync)?);
                let n = self.objs.len();
                if !matches!(self.objs[s], Obj::Call(_) | Obj::Event(_)) {
                    self.objs[k] = Obj::Untracked;
                    return None;
                }
                let Obj::Container(model, names) = &mut self.objs[k] else {
                    return None;
                };
                let o = model.add_synchronize(Some(s), n);
                if o == ModelOutcome::Returns(S_OK) {
                    names.push(sync.clone());
                }
                Some(o)
            }
            Checked::WaitMultiple { container, timeout } => {
                let k = self.obj(container)?;
                let Obj::Container(model, _) = &self.objs[k] else {
                    return None;
                };
                let model = model.clone();
                let mut events = self.snapshot(model.objects())?;
                let o = model.wait_multiple(&mut events, 0, *timeout, true);
                if !o.blocks() {
                    self.write_back(events);
                }
                Some(o)
            }
            Checked::CoWait {
                flags,
                timeout,
                handles,
            } => {
                let ids = handles
                    .iter()
                    .map(|h| self.obj(h))
                    .collect::<Option<Vec<_>>>()?;
                let mut events = self.snapshot(&ids)?;
                let o =
                    co_wait_for_multiple_handles(&mut events, *flags, *timeout, Some(&ids), true);
                if !o.blocks() {
                    self.write_back(events);
                }
                Some(o)
            }
            Checked::Complete { call } | Checked::Fail { call, .. } => {
                let k = self.obj(call)?;
                let Obj::Call(c) = &mut self.objs[k] else {
                    return None;
                };
                let n = c.queued.pop_front()?;
                let hr = hr?;
                if n != c.model.call_number() {
                    // An earlier call's late completion: not an operation of the model, which
                    // completes only the current call; the call object must drop it.
                    return Some(ModelOutcome::Dropped);
                }
                let token = c.results.len() as u32;
                c.results.push(match op {
                    Checked::Complete { .. } => Some(outs.to_vec()),
                    _ => None,
                });
                let o = c.model.server_complete(hr, &[token]);
                if let ModelOutcome::Delivered {
                    cancel_returns: Some(cancel),
                } = o
                {
                    if let Some(p) = self.pending.iter_mut().find(|p| {
                        p.obj == Some(k)
                            && p.answer == Answer::Waiting
                            && matches!(p.op, Checked::Cancel { .. })
                    }) {
                        p.answer = Answer::Returned(ModelOutcome::Returns(cancel));
                    }
                }
                Some(o)
            }
            Checked::ServerTestCancel { call } => {
                let c = self.call_mut(call)?;
                // Only the current call's flag is the model's.
                (c.queued.front() == Some(&c.model.call_number())).then(|| c.model.test_cancel())
            }
        }
    }

    /// Every object as an event of the model (a call object's manual-reset event as it is
    /// set), for a wait on `waited`: `None` if one of those is not tracked or has no handle.
    fn snapshot(&self, waited: &[usize]) -> Option<Vec<EventModel>> {
        if waited
            .iter()
            .any(|&i| !matches!(self.objs[i], Obj::Call(_) | Obj::Event(_)))
        {
            return None;
        }
        Some(
            self.objs
                .iter()
                .map(|o| match o {
                    Obj::Event(e) => e.clone(),
                    Obj::Call(c) => {
                        let mut e = EventModel::new(EventClass::ManualReset);
                        if c.model.event_set() {
                            e.signal();
                        }
                        e
                    }
                    _ => EventModel::new(EventClass::ManualReset),
                })
                .collect(),
        )
    }

    /// Keeps what a wait that returned did to the events (an auto-reset event it consumed).
    fn write_back(&mut self, events: Vec<EventModel>) {
        for (o, e) in self.objs.iter_mut().zip(events) {
            if let Obj::Event(mine) = o {
                *mine = e;
            }
        }
    }

    /// What the model's outcome of `op` means in the script's terms.
    fn expected(&self, op: &Checked, o: &ModelOutcome) -> Expected {
        let none = Expected::default();
        match o {
            ModelOutcome::Returns(hr) | ModelOutcome::CancelReturns(hr) => Expected {
                hr: Some(*hr),
                ..none
            },
            ModelOutcome::Finished { hr, outs } => {
                let call = match op {
                    Checked::Finish { call, .. } => self.obj(call),
                    _ => None,
                };
                let stored = match (call.map(|i| &self.objs[i]), outs.as_slice()) {
                    (Some(Obj::Call(c)), [t]) => c.results.get(*t as usize).cloned().flatten(),
                    _ => None,
                };
                Expected {
                    hr: Some(*hr),
                    outs: stored,
                    ..none
                }
            }
            ModelOutcome::Blocks | ModelOutcome::CancelInFlight => Expected {
                blocks: true,
                ..none
            },
            ModelOutcome::Delivered { .. } => Expected {
                dropped: Some(false),
                ..none
            },
            ModelOutcome::Dropped => Expected {
                dropped: Some(true),
                ..none
            },
            ModelOutcome::CoWait { hr, index } => Expected {
                hr: Some(*hr),
                outs: index.map(|i| vec![Value::Num(i.into())]),
                ..none
            },
            ModelOutcome::WaitMultiple { hr, position } => {
                let name = match op {
                    Checked::WaitMultiple { container, .. } => self.obj(container),
                    _ => None,
                }
                .and_then(|k| match &self.objs[k] {
                    Obj::Container(_, names) => position.and_then(|p| names.get(p).cloned()),
                    _ => None,
                });
                Expected {
                    hr: Some(*hr),
                    outs: name.map(|n| vec![Value::Name(n)]),
                    ..none
                }
            }
            ModelOutcome::Released { .. } | ModelOutcome::Invalid(_) => none,
        }
    }
}

/// An `HRESULT` and out-parameters as the script prints them.
fn show(hr: Option<HRESULT>, outs: &[Value]) -> String {
    let mut s = hr.map_or_else(|| "no result".to_string(), parse::hr_name);
    for v in outs {
        s.push_str(&format!(" {v}"));
    }
    s
}

/// The model's answer in words.
fn say(e: &Expected) -> String {
    if e.blocks {
        return "it blocks".into();
    }
    show(e.hr, e.outs.as_deref().unwrap_or(&[]))
}

#[cfg(test)]
thread_local! {
    /// How many answers this thread's checks compared (tests: the check really runs).
    static COMPARED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Compares the model's expectation with what the step produced.
fn compare(line: usize, text: &str, e: &Expected, seen: &Seen<'_>) -> Result<(), Divergence> {
    let Seen::Returned {
        hr, outs, dropped, ..
    } = seen
    else {
        return Ok(());
    };
    #[cfg(test)]
    COMPARED.with(|c| c.set(c.get() + 1));
    let diverge = |real: String, model: String| {
        Err(Divergence {
            line,
            message: format!("{text}: the implementation {real}, the model says {model}"),
        })
    };
    let got = show(*hr, outs);
    if e.blocks {
        return diverge(format!("returned {got}"), "it blocks".into());
    }
    if let Some(d) = e.dropped {
        if d != *dropped {
            let word = |d: bool| if d { "dropped" } else { "delivered" };
            return diverge(
                format!("{} the result", word(*dropped)),
                format!("it is {}", word(d)),
            );
        }
        return Ok(());
    }
    let hr_differs = e.hr.is_some() && e.hr != *hr;
    let outs_differ = e.outs.as_ref().is_some_and(|o| o.as_slice() != *outs);
    if hr_differs || outs_differ {
        return diverge(format!("returned {got}"), say(e));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hresult::{
        E_FAIL, RPC_E_CALL_CANCELED, RPC_E_CALL_COMPLETE, RPC_E_TIMEOUT, RPC_S_CALLPENDING, S_FALSE,
    };
    use crate::script::{run_source, RunOptions};

    /// A test step's result: `Ok((hr, outs, dropped))`, or `Err(blocked)` for a `start`.
    type Res = Result<(HRESULT, Vec<Value>, bool), bool>;

    /// What a step returned: its `HRESULT` and out-parameters.
    fn r(hr: HRESULT, outs: &[Value]) -> Res {
        Ok((hr, outs.to_vec(), false))
    }

    /// A server completion the implementation dropped.
    fn dropped(hr: HRESULT, outs: &[Value]) -> Res {
        Ok((hr, outs.to_vec(), true))
    }

    fn text(s: &str) -> Value {
        Value::Str(s.as_bytes().to_vec())
    }

    /// Parses `script` and feeds the check each statement with the result given for it in
    /// `results` (in order; `Err(blocked)` for a `start`). Creations and commentary take no
    /// result. The first divergence, if any.
    fn replay(script: &str, results: &[Res]) -> Result<(), Divergence> {
        let steps = parse::parse(script).expect("the test script parses");
        let mut check = ModelCheck::new();
        let mut results = results.iter();
        for step in &steps {
            let creates = matches!(&step.kind, StepKind::Do { op, .. } if op.creates()
                && !matches!(op, parse::Op::QueryInterface { .. } | parse::Op::CreateCall { .. }));
            let empty: Vec<Value> = Vec::new();
            let (seen, count);
            if creates || matches!(step.kind, StepKind::Say(_)) {
                seen = Seen::Returned {
                    hr: None,
                    count: None,
                    outs: &empty,
                    dropped: false,
                };
            } else {
                match results.next().expect("a result for every statement") {
                    Err(blocked) => seen = Seen::Started { blocked: *blocked },
                    Ok((hr, outs, d)) => {
                        count = matches!(
                            &step.kind,
                            StepKind::Do {
                                op: parse::Op::Release { .. },
                                ..
                            }
                        )
                        .then_some(hr.as_u32());
                        seen = Seen::Returned {
                            hr: Some(*hr),
                            count,
                            outs,
                            dropped: *d,
                        };
                    }
                }
            }
            let observed = Observed {
                line: step.line,
                actor: &step.actor,
                text: &step.text,
                seen,
            };
            check.step(action(&step.kind), &observed)?;
        }
        assert!(results.next().is_none(), "more results than statements");
        Ok(())
    }

    const CALL: &str = "server = SimpleStream \"hello, world\"\n\
                        f = QueryInterface server ICallFactory\n\
                        call = CreateCall f AsyncISimpleStream\n";

    fn failure(script: &str, results: &[Res]) -> String {
        replay(script, results)
            .expect_err("the check must report the divergence")
            .to_string()
    }

    #[test]
    fn agreeing_results_pass() {
        let script = format!(
            "{CALL}Begin_Read call 5\nWait call 0\nserver: Complete call\nWait call 0\n\
             Finish_Read call\nFinish_Read call\nRelease call\n"
        );
        let results = [
            r(S_OK, &[]),
            r(S_OK, &[]),
            r(S_OK, &[]),
            r(RPC_S_CALLPENDING, &[]),
            r(S_OK, &[text("hello")]),
            r(S_OK, &[]),
            r(S_OK, &[text("hello")]),
            r(RPC_E_CALL_COMPLETE, &[text("")]),
            r(HRESULT(0), &[]),
        ];
        assert_eq!(replay(&script, &results), Ok(()));
    }

    #[test]
    fn a_wrong_hresult_names_both_answers_at_its_line() {
        let script = format!("{CALL}Begin_Read call 5\nWait call 0\n");
        let results = [r(S_OK, &[]), r(S_OK, &[]), r(S_OK, &[]), r(S_OK, &[])];
        assert_eq!(
            failure(&script, &results),
            "line 5: Wait call 0: the implementation returned S_OK, the model says RPC_S_CALLPENDING"
        );
    }

    #[test]
    fn wrong_out_parameters_are_reported() {
        let script = format!("{CALL}Begin_Read call 5\nserver: Complete call\nFinish_Read call\n");
        let results = [
            r(S_OK, &[]),
            r(S_OK, &[]),
            r(S_OK, &[]),
            r(S_OK, &[text("hello")]),
            r(S_OK, &[text("world")]),
        ];
        assert_eq!(
            failure(&script, &results),
            "line 6: Finish_Read call: the implementation returned S_OK \"world\", the model says S_OK \"hello\""
        );
    }

    #[test]
    fn a_strict_server_s_finish_does_not_block() {
        let script = "server = SimpleStream \"abc\" strict\nf = QueryInterface server ICallFactory\n\
                      call = CreateCall f AsyncISimpleStream\nBegin_Read call 1\nFinish_Read call\n";
        let results = [
            r(S_OK, &[]),
            r(S_OK, &[]),
            r(S_OK, &[]),
            r(E_FAIL, &[text("")]),
        ];
        assert_eq!(
            failure(script, &results),
            "line 5: Finish_Read call: the implementation returned E_FAIL \"\", the model says RPC_S_CALLPENDING"
        );
    }

    #[test]
    fn a_step_the_model_says_blocks_must_not_return() {
        let script = "e = StdEvent\nWait e INFINITE\n";
        assert_eq!(
            failure(script, &[r(S_OK, &[])]),
            "line 2: Wait e INFINITE: the implementation returned S_OK, the model says it blocks"
        );
    }

    #[test]
    fn whether_a_started_operation_blocks_is_compared() {
        let script = "e = ManualResetEvent\nt1: start Wait e INFINITE\nSignal e\nt1: join\n";
        assert_eq!(
            failure(script, &[Err(false)]),
            "line 2: Wait e INFINITE: the implementation returned at once, the model says it blocks"
        );
        let script = "e = ManualResetEvent\nSignal e\nt1: start Wait e INFINITE\nt1: join\n";
        assert_eq!(
            failure(script, &[r(S_OK, &[]), Err(true)]),
            "line 3: Wait e INFINITE: the implementation blocks, the model says it returns S_OK at once"
        );
    }

    #[test]
    fn a_join_is_compared_with_the_answer_the_model_gave_when_it_returned() {
        // An INFINITE Cancel returns when the server completes: RPC_E_CALL_COMPLETE.
        let script = format!(
            "{CALL}Begin_Read call 5\nt1: start Cancel call INFINITE\n\
             server: Complete call\nt1: join\n"
        );
        let results = [
            r(S_OK, &[]),
            r(S_OK, &[]),
            r(S_OK, &[]),
            Err(true),
            r(S_OK, &[text("hello")]),
            r(S_OK, &[]),
        ];
        assert_eq!(
            failure(&script, &results),
            "line 7: join (Cancel call INFINITE): the implementation returned S_OK, the model says RPC_E_CALL_COMPLETE"
        );
        // A wait the model says still blocks at its join.
        let script = "e = StdEvent\nt1: start Wait e INFINITE\nt1: join\n";
        assert_eq!(
            failure(script, &[Err(true), r(S_OK, &[])]),
            "line 3: join (Wait e INFINITE): the implementation returned S_OK, the model says it blocks"
        );
    }

    #[test]
    fn an_auto_reset_event_wakes_the_first_started_wait_only() {
        let script = "e = StdEvent\nt1: start Wait e INFINITE\nt2: start Wait e INFINITE\n\
                      Signal e\nt1: join\nt2: join\n";
        let results = [
            Err(true),
            Err(true),
            r(S_OK, &[]),
            r(S_OK, &[]),
            r(S_OK, &[]),
        ];
        assert_eq!(
            failure(script, &results),
            "line 6: join (Wait e INFINITE): the implementation returned S_OK, the model says it blocks"
        );
    }

    #[test]
    fn a_late_completion_must_be_dropped_and_a_current_one_delivered() {
        let script = format!(
            "{CALL}Begin_Read call 5\nCancel call 0\nFinish_Read call\nBegin_Read call 1\n\
             server: Complete call\nserver: Complete call\n"
        );
        let ok = [
            r(S_OK, &[]),
            r(S_OK, &[]),
            r(S_OK, &[]),
            r(S_OK, &[]),
            r(RPC_E_CALL_CANCELED, &[text("")]),
            r(S_OK, &[]),
        ];
        let mut results = ok.to_vec();
        results.push(r(S_OK, &[text("hello")]));
        assert_eq!(
            failure(&script, &results),
            "line 8: Complete call: the implementation delivered the result, the model says it is dropped"
        );
        let mut results = ok.to_vec();
        results.push(dropped(S_OK, &[text("hello")]));
        results.push(dropped(S_FALSE, &[text(", wor")]));
        assert_eq!(
            failure(&script, &results),
            "line 9: Complete call: the implementation dropped the result, the model says it is delivered"
        );
    }

    #[test]
    fn co_wait_and_wait_multiple_name_the_object() {
        let script = "a = StdEvent\nb = StdEvent\nSignal b\nCoWaitForMultipleHandles 0 0 a b\n";
        assert_eq!(
            failure(script, &[r(S_OK, &[]), r(S_OK, &[Value::Num(0)])]),
            "line 4: CoWaitForMultipleHandles 0 0 a b: the implementation returned S_OK 0, the model says S_OK 1"
        );
        let script = "k = SynchronizeContainer\na = StdEvent\nb = ManualResetEvent\n\
                      AddSynchronize k a\nAddSynchronize k b\nWaitMultiple k 0\nSignal b\n\
                      WaitMultiple k 0\n";
        let results = [
            r(S_OK, &[]),
            r(S_OK, &[]),
            r(RPC_E_TIMEOUT, &[]),
            r(S_OK, &[]),
            r(S_OK, &[Value::Name("a".into())]),
        ];
        assert_eq!(
            failure(script, &results),
            "line 8: WaitMultiple k 0: the implementation returned S_OK a, the model says S_OK b"
        );
    }

    #[test]
    fn a_signal_on_a_call_object_stops_tracking_it() {
        let script = format!("{CALL}Signal call\nWait call 0\n");
        assert_eq!(
            replay(
                &script,
                &[r(S_OK, &[]), r(S_OK, &[]), r(S_OK, &[]), r(S_OK, &[])]
            ),
            Ok(())
        );
    }

    #[test]
    fn every_committed_scenario_passes_the_check() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "cas"))
            .collect();
        files.sort();
        assert!(files.len() >= 15, "found {} scenarios", files.len());
        for path in files {
            let source = std::fs::read_to_string(&path).unwrap();
            let before = COMPARED.with(|c| c.get());
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if let Err(e) = run_source(&name, &source, &RunOptions::default(), &mut std::io::sink())
            {
                panic!("{e}");
            }
            let compared = COMPARED.with(|c| c.get()) - before;
            let modelled = ["CreateCall", "Event", "SynchronizeContainer"];
            if modelled.iter().any(|m| source.contains(m)) {
                assert!(compared > 0, "{name}: the model compared no step");
            }
        }
    }
}
