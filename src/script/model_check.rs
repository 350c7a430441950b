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
//! # Apartments
//!
//! An [`ApartmentModel`](crate::model::ApartmentModel) follows the actors' apartments
//! (`CoInitializeEx`, `CoUninitialize`), the streams (`Marshal`: the object's apartment),
//! the proxies (`Unmarshal`: the object itself in its own apartment, else a proxy bound to the
//! actor's apartment) and the call objects made on a proxy. Compared: `CoInitializeEx`'s
//! result, `Marshal`'s and `Unmarshal`'s (`CO_E_NOTINITIALIZED`, `RPC_E_DISCONNECTED`,
//! `S_OK`), `RPC_E_WRONG_THREAD` / `CO_E_NOTINITIALIZED` / `RPC_E_DISCONNECTED` from a proxy's
//! `CreateCall`, `Begin_` and synchronous calls, `CoTestCancel` outside a server method
//! (`RPC_E_CALL_COMPLETE`), and `Pump`'s count (the calls queued for the STA: each call
//! through a proxy to an STA's object, and each completion a hand-driven server makes on
//! another thread for such a call, carried back to the STA; none while the STA's thread is
//! blocked in a wait, which runs them at once; unknown after a wait that may have dispatched
//! some and then returned in the same step). Not compared: what a proxy's call object
//! returns once the call was sent (its `Finish_`, `Wait`, `Cancel`: the object's apartment
//! decides when it completes), a synchronous call's result, `CoCancelCall` and
//! `CoGetCancelObject` (another thread's call in progress).
//!
//! # What is not checked
//!
//! The model covers the call object, the events, `CoWaitForMultipleHandles` and the container.
//! These are tracked only as far as the check needs them, and never compared:
//!
//! * object creation (`SimpleStream`, `ManualResetEvent`, `StdEvent`, `SynchronizeContainer`,
//!   `CoCreateInstance`, `Outer`) and `CreateCall` (their argument rules, D11, `NULL` `ppv`
//!   included): a successful `CreateCall` makes a [`CallModel`] (aggregated under an `Outer`:
//!   [`CallModel::aggregated`], whose counts `Signals`/`Resets` are compared — one call object
//!   per `Outer`), a successful `CoCreateInstance` an event or container model;
//! * `GetHandle`, `CoEnableCallCancellation` and `CoDisableCallCancellation` (not operations
//!   of the model);
//! * `Signal` or `Reset` of an `Outer` by the script itself: its counts are no longer followed;
//! * `QueryInterface` on anything but a call object (a successful one binds the variable to
//!   the same object), `AddRef`, and the counts `AddRef`/`Release` print (a `Release` that
//!   prints 0 on a call object is its final release);
//! * the server's own results: `Complete` and `Fail` give the model the server's `HRESULT`
//!   and out-parameters, and the model says whether they are delivered or dropped (late);
//!   `ServerTestCancel` is compared only for the call object's current call;
//! * `Signal` or `Reset` on a call object's `ISynchronize` (not an operation of the model): the
//!   call object is no longer tracked, nor is a container or wait that includes it;
//! * what a server's own code does with an object passed to it (`Begin_Advise c e`: the
//!   server may signal `e`): such an object is no longer tracked from that `Begin_` on;
//! * registered servers that are not hand-driven (`x = NAME`, `x = Pool NAME`): their calls
//!   complete on the server's schedule, so neither they nor their call objects are tracked;
//! * a `Cancel` window expiring in real time while later steps run: a finite `Cancel` in
//!   flight is taken to outlast the steps until the server completes or its `join`;
//! * time, otherwise: a started wait with a finite timeout gets the model's answer at its
//!   `start` (the script must not race it against a `Signal`, `docs/scenarios.md`), and may
//!   be seen blocked there while its timeout runs.
//!
//! # Files
//!
//! This file holds the input types and the adapter; `model_check/replay.rs` the model objects
//! and the comparison ([`ModelCheck`]); `model_check/tests.rs` a test per kind of divergence
//! and one that runs every committed scenario through the check.
//!
//! # Invariants
//!
//! A variable names at most one model object; an untracked object stays untracked; a pending
//! operation gets at most one answer; the model's state changes only by what the model says
//! took effect (an operation that returned, a `Cancel` request, a server completion), never by
//! one it says blocks.

use std::fmt;

use super::parse::{self, ServerKind, StepKind};
use super::registry::Serving;
use super::value::Value;
use crate::guid::IID;
use crate::hresult::HRESULT;

mod objects;
mod replay;
#[cfg(test)]
mod tests;

pub(crate) use objects::{begin, model_object_accessors, snapshot, write_back, Made, ModelObject};
pub(crate) use replay::ModelCheck;

/// One operation of a script, as the check reads it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Checked {
    /// An operation that makes a new object.
    Creation(Creation),
    /// `QueryInterface`.
    QueryInterface { target: String, iid: IID },
    /// `ICallFactory::CreateCall` on `factory`'s object, for the asynchronous interface `iid`,
    /// aggregated under the `Outer` variable `outer` if given.
    CreateCall {
        factory: String,
        iid: IID,
        outer: Option<String>,
    },
    /// `Signals` (`signals`) / `Resets` of an `Outer`: compared with the aggregated call
    /// object's model of its outer.
    OuterCount { outer: String, signals: bool },
    /// `Release` (the count it printed tells a final release).
    Release { target: String },
    /// `Begin_<method>` (method: the COM name, such as `Read`).
    /// `shared`: the variables passed as interface-pointer arguments; the server's code may
    /// use them (signal an event), so the model stops following them.
    Begin {
        call: String,
        method: String,
        shared: Vec<String>,
        args: Vec<Value>,
    },
    /// `Finish_<method>`.
    Finish { call: String, method: String },
    /// `ISynchronize::Wait(flags, timeout)`.
    Wait {
        target: String,
        flags: u32,
        timeout: u32,
    },
    /// `ISynchronize::Signal`.
    Signal { target: String },
    /// `ISynchronize::Reset`.
    Reset { target: String },
    /// `ICancelMethodCalls::Cancel(seconds)`.
    Cancel { call: String, seconds: u32 },
    /// `ICancelMethodCalls::TestCancel`.
    TestCancel { call: String },
    /// `ISynchronizeContainer::AddSynchronize` (`None`: `NULL`).
    AddSynchronize {
        container: String,
        sync: Option<String>,
    },
    /// `ISynchronizeContainer::WaitMultiple(flags, timeout, ppSync)`; `out`: `ppSync` given.
    WaitMultiple {
        container: String,
        flags: u32,
        timeout: u32,
        out: bool,
    },
    /// `CoWaitForMultipleHandles(flags, timeout, handles, index)`; `None` handles: `NULL`;
    /// `index`: `lpdwindex` given.
    CoWait {
        flags: u32,
        timeout: u32,
        handles: Option<Vec<String>>,
        index: bool,
    },
    /// The server completes the oldest waiting call of `call` with its method's result.
    Complete { call: String },
    /// The server completes the oldest waiting call of `call` with `hr`.
    Fail { call: String, hr: HRESULT },
    /// The server's `TestCancel` on the oldest waiting call of `call`.
    ServerTestCancel { call: String },
    /// `CoInitializeEx` on the actor's thread: an STA (`sta`) or the MTA.
    CoInitializeEx { sta: bool },
    /// `CoUninitialize` on the actor's thread.
    CoUninitialize,
    /// `CoMarshalInterThreadInterfaceInStream` of `target`'s object.
    Marshal { target: String },
    /// `CoGetInterfaceAndReleaseStream` of the stream `stream`.
    Unmarshal { stream: String },
    /// `co_pump_messages` on the actor's thread (its result: the count dispatched).
    Pump,
    /// A synchronous call on `target` (an object, or a proxy), of `method` with `args`.
    SyncCall {
        target: String,
        method: String,
        args: Vec<Value>,
    },
    /// `CoTestCancel` on the actor's thread (never inside a server method in a script).
    CoTestCancel,
    /// A security operation (`SetIdentity`, `WhoAmI`, blankets, access policies, the call
    /// context): replayed on the [`SecurityModel`](crate::model::SecurityModel).
    Security(parse::SecurityOp),
}

/// An operation that makes a new object (what the model makes of it: [`Creation::made`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Creation {
    /// A hand-driven server object; `strict`: `Finish_` before completion returns
    /// `RPC_S_CALLPENDING`.
    Server { strict: bool },
    /// An object the model does not follow (a pooled or plain registered server: its calls
    /// complete on the server's schedule, not the script's); `who`: a `Who` server (`Some(true)`:
    /// `WhoAsync`), whose `Run` the security model answers.
    Untracked { who: Option<bool> },
    /// A new event; `auto`: `CLSID_StdEvent`, else `CLSID_ManualResetEvent`.
    Event { auto: bool },
    /// A new `CLSID_SynchronizeContainer`.
    Container,
    /// `CoCreateInstance` of an event (`Some(auto)`) or a container (`None`).
    CoCreate { event: Option<bool> },
    /// A script-made controlling unknown (`Outer`).
    Outer,
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

impl<'a> Observed<'a> {
    /// What `step` produced.
    pub(crate) fn of(step: &'a parse::Step, seen: Seen<'a>) -> Self {
        Observed {
            line: step.line,
            actor: &step.actor,
            text: &step.text,
            seen,
        }
    }
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
        P::SimpleStream { kind, .. } => Checked::Creation(Creation::Server {
            strict: *kind == ServerKind::ManualStrict,
        }),
        P::ManualResetEvent => Checked::Creation(Creation::Event { auto: false }),
        P::StdEvent => Checked::Creation(Creation::Event { auto: true }),
        P::SynchronizeContainer => Checked::Creation(Creation::Container),
        P::QueryInterface { target, iface } => Checked::QueryInterface {
            target: s(target),
            iid: iface.iid,
        },
        P::AddRef { .. } => return None,
        P::Release { target } => Checked::Release { target: s(target) },
        P::CreateCall {
            factory,
            riid,
            outer,
            ..
        } => Checked::CreateCall {
            factory: s(factory),
            iid: riid.iid,
            outer: outer.clone(),
        },
        P::CoCreateInstance { clsid, .. } => Checked::Creation(Creation::CoCreate {
            event: if clsid.iid == crate::guid::CLSID_ManualResetEvent {
                Some(false)
            } else if clsid.iid == crate::guid::CLSID_StdEvent {
                Some(true)
            } else {
                None
            },
        }),
        P::Outer => Checked::Creation(Creation::Outer),
        P::OuterCount { outer, signals } => Checked::OuterCount {
            outer: s(outer),
            signals: *signals,
        },
        P::GetHandle { .. } | P::CallCancellation { .. } => return None,
        P::Begin { call, method, args } => Checked::Begin {
            call: s(call),
            method: s(method),
            args: args.clone(),
            shared: args
                .iter()
                .filter_map(|a| match a {
                    Value::Name(n) => Some(n.clone()),
                    _ => None,
                })
                .collect(),
        },
        P::Finish { call, method } => Checked::Finish {
            call: s(call),
            method: s(method),
        },
        P::Server {
            serving, server, ..
        } => match serving {
            Serving::Manual { strict } => Checked::Creation(Creation::Server { strict: *strict }),
            Serving::Plain => Checked::Creation(Creation::Untracked {
                who: match server.as_str() {
                    "Who" => Some(false),
                    "WhoAsync" => Some(true),
                    _ => None,
                },
            }),
            Serving::Pool { .. } => Checked::Creation(Creation::Untracked { who: None }),
        },
        P::Wait {
            target,
            flags,
            timeout,
        } => Checked::Wait {
            target: s(target),
            flags: *flags,
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
            sync: sync.clone(),
        },
        P::WaitMultiple {
            container,
            flags,
            timeout,
            out,
        } => Checked::WaitMultiple {
            container: s(container),
            flags: *flags,
            timeout: *timeout,
            out: *out,
        },
        P::CoWaitForMultipleHandles {
            flags,
            timeout,
            handles,
            index,
        } => Checked::CoWait {
            flags: *flags,
            timeout: *timeout,
            handles: handles.clone(),
            index: *index,
        },
        P::Complete { call } => Checked::Complete { call: s(call) },
        P::Fail { call, hr } => Checked::Fail {
            call: s(call),
            hr: *hr,
        },
        P::ServerTestCancel { call } => Checked::ServerTestCancel { call: s(call) },
        P::CoInitializeEx { sta } => Checked::CoInitializeEx { sta: *sta },
        P::CoUninitialize => Checked::CoUninitialize,
        P::Marshal { target, .. } => Checked::Marshal { target: s(target) },
        P::Unmarshal { stream } => Checked::Unmarshal { stream: s(stream) },
        P::Pump => Checked::Pump,
        P::Call {
            target,
            method,
            args,
        } => Checked::SyncCall {
            target: s(target),
            method: s(method),
            args: args.clone(),
        },
        P::CoTestCancel => Checked::CoTestCancel,
        // Another thread's synchronous call: what it finds depends on that call's progress
        // through the object's apartment, which the model does not follow.
        P::CoCancelCall { .. } | P::CoGetCancelObject { .. } => return None,
        P::Security(sec) => Checked::Security(sec.clone()),
    })
}

/// A statement's [`Action`], if the check has one for it (commentary and `AddRef` have none).
pub(crate) fn action(kind: &StepKind) -> Option<Action> {
    match kind {
        StepKind::Do { bind, op } => Some(Action::Do {
            bind: bind.clone(),
            op: from_op(op)?,
        }),
        StepKind::Start { op, .. } => Some(Action::Start(from_op(op)?)),
        StepKind::Join => Some(Action::Join),
        StepKind::Say(_) => None,
    }
}
