//! The executor: how each [`Op`] runs. One `match` ([`prepare`]) hands every operation to its
//! family's file, which returns a [`Prepared`] — the job for the actor's thread, a typed
//! continuation for its result, what counts as "blocked" for it, and its call arrow — and
//! [`apply`] runs the continuation once the job has returned (at once, or at the `join`).
//!
//! * [`lifecycle`] — object creation, `CoCreateInstance`, `QueryInterface`, `AddRef`,
//!   `Release`, `CreateCall`;
//! * [`calls`] — `Begin_<Method>` / `Finish_<Method>` on any registered interface;
//! * [`events`] — `Wait`, `Signal`, `Reset`, `GetHandle`, `CoWaitForMultipleHandles`;
//! * [`container`] — `AddSynchronize`, `WaitMultiple`;
//! * [`cancel`] — `Cancel`, `TestCancel`, `CoEnableCallCancellation`,
//!   `CoDisableCallCancellation`;
//! * [`outer`] — `Outer` (a script-made controlling unknown), `Signals`, `Resets`;
//! * [`server`] — `Complete`, `Fail`, `ServerTestCancel`;
//! * [`apartment`] — `CoInitializeEx`, `CoUninitialize`, `Marshal`, `Unmarshal`, `Pump`,
//!   `Call`, `CoCancelCall`, `CoTestCancel`, `CoGetCancelObject`;
//! * [`security`] — `SetIdentity`, `WhoAmI`, `SetBlanket`, `QueryBlanket`, `CopyProxy`,
//!   `AccessPolicy`, `CoGetCallContext`, `CoImpersonateClient`, `CoRevertToSelf`.
//!
//! Invariants: the job and its continuation are built together, so the continuation always
//! receives the type its job produced; setup runs on the runner thread (it reads variables),
//! the job on the actor's thread (it makes the COM calls), the continuation on the runner
//! thread again (it binds variables and records the trace). Trace order per operation: the
//! call arrow, what it caused, the return arrow.

mod apartment;
mod calls;
mod cancel;
mod container;
mod events;
mod lifecycle;
mod outer;
mod security;
mod server;

use std::any::Any;

pub(super) use outer::ScriptOuter;

use super::parse::{Op, Step};
use super::report::Outcome;
use super::run::ScriptError;
use super::runner::Runner;
use super::trace::EventKind;
use crate::hresult::HRESULT;

/// A job for an actor's thread: its result, type-erased for the trip back.
pub(super) type Job = Box<dyn FnOnce() -> Box<dyn Any + Send> + Send>;

/// The continuation of a job: turns its result into the step's outcome.
pub(super) type Then =
    Box<dyn FnOnce(&mut Runner, &Ran<'_>, Box<dyn Any + Send>) -> Result<Outcome, ScriptError>>;

/// The call arrow an operation draws (and the object it is on).
#[derive(Clone, Debug, Default)]
pub(super) struct Arrow {
    /// The object the operation targets (a call object's state is printed after it).
    pub(super) obj: Option<usize>,
    /// The participant the arrow goes to.
    pub(super) to: String,
    /// The arrow's label; empty: no arrows (creations).
    pub(super) label: String,
    /// A server's completion: drawn by the operation itself, with no return arrow.
    pub(super) one_way: bool,
}

impl Arrow {
    /// An arrow labelled `label` to the object `obj` (an operation that returns).
    pub(super) fn to(r: &Runner, obj: usize, label: impl Into<String>) -> Arrow {
        Arrow {
            obj: Some(obj),
            to: r.part(obj, false),
            label: label.into(),
            one_way: false,
        }
    }
}

/// What an operation's continuation knows about how it ran.
pub(super) struct Ran<'a> {
    pub(super) step: &'a Step,
    /// The variable the result is bound to (`var = ...`).
    pub(super) bind: Option<&'a str>,
    /// The thread the job ran on.
    pub(super) thread: &'a str,
    pub(super) arrow: &'a Arrow,
}

impl Ran<'_> {
    /// Records a trace event of this step.
    pub(super) fn event(&self, r: &mut Runner, kind: EventKind, from: &str, to: &str, label: &str) {
        r.event(self.step, self.thread, kind, from, to, label);
    }
}

/// A prepared operation.
pub(super) struct Prepared {
    pub(super) job: Job,
    pub(super) then: Then,
    pub(super) arrow: Arrow,
}

/// An arrow from the actor to itself (a call into COM on the actor's own thread).
pub(super) fn own(step: &Step, label: String) -> Arrow {
    Arrow {
        obj: None,
        to: step.actor.clone(),
        label,
        one_way: false,
    }
}

/// A [`Prepared`] whose job returns an `HRESULT`, the step's whole result.
pub(super) fn hr_of(arrow: Arrow, job: impl FnOnce() -> HRESULT + Send + 'static) -> Prepared {
    prepared(arrow, job, |_, _, hr: HRESULT| Ok(Outcome::hr(hr)))
}

/// Builds a [`Prepared`] from a typed job and its typed continuation.
pub(super) fn prepared<T: Send + 'static>(
    arrow: Arrow,
    job: impl FnOnce() -> T + Send + 'static,
    then: impl FnOnce(&mut Runner, &Ran<'_>, T) -> Result<Outcome, ScriptError> + 'static,
) -> Prepared {
    Prepared {
        job: Box::new(move || Box::new(job()) as Box<dyn Any + Send>),
        then: Box::new(move |r, ran, any| match any.downcast::<T>() {
            Ok(t) => then(r, ran, *t),
            Err(_) => Err(r.rt(ran.step, "the operation's result has the wrong type".into())),
        }),
        arrow,
    }
}

/// Sets up `op` for `step`: the one dispatch over the vocabulary.
pub(super) fn prepare(r: &mut Runner, step: &Step, op: &Op) -> Result<Prepared, ScriptError> {
    match op {
        Op::SimpleStream { data, kind } => lifecycle::simple_stream(r, step, data, *kind),
        Op::Server {
            server,
            serving,
            args,
        } => lifecycle::server(r, step, server, *serving, args),
        Op::ManualResetEvent => Ok(lifecycle::event(true)),
        Op::StdEvent => Ok(lifecycle::event(false)),
        Op::SynchronizeContainer => Ok(lifecycle::container()),
        Op::QueryInterface { target, iface } => lifecycle::query_interface(r, step, target, iface),
        Op::AddRef { target } => lifecycle::add_ref(r, step, target, true),
        Op::Release { target } => lifecycle::add_ref(r, step, target, false),
        Op::CreateCall {
            factory,
            riid,
            riid2,
            outer,
            ppv,
        } => lifecycle::create_call(r, step, factory, riid, riid2, outer.as_deref(), *ppv),
        Op::CoCreateInstance { clsid, riid, outer } => {
            lifecycle::co_create_instance(r, step, clsid, riid, outer.as_deref())
        }
        Op::Outer => Ok(outer::create()),
        Op::OuterCount { outer, signals } => outer::count(r, step, outer, *signals),
        Op::GetHandle { target } => events::get_handle(r, step, target),
        Op::CallCancellation { enable } => Ok(cancel::call_cancellation(step, *enable)),
        Op::Begin { call, method, args } => calls::begin(r, step, call, method, args),
        Op::Finish { call, method } => calls::finish(r, step, call, method),
        Op::Wait {
            target,
            flags,
            timeout,
        } => events::wait(r, step, target, *flags, *timeout),
        Op::Signal { target } => events::signal(r, step, target, true),
        Op::Reset { target } => events::signal(r, step, target, false),
        Op::CoWaitForMultipleHandles {
            flags,
            timeout,
            handles,
            index,
        } => events::co_wait(r, step, *flags, *timeout, handles.as_deref(), *index),
        Op::Cancel { call, seconds } => cancel::cancel(r, step, call, *seconds),
        Op::TestCancel { call } => cancel::test_cancel(r, step, call),
        Op::AddSynchronize { container, sync } => {
            container::add(r, step, container, sync.as_deref())
        }
        Op::WaitMultiple {
            container,
            flags,
            timeout,
            out,
        } => container::wait_multiple(r, step, container, *flags, *timeout, *out),
        Op::Complete { call } => server::complete(r, step, call),
        Op::Fail { call, hr } => server::fail(r, step, call, *hr),
        Op::ServerTestCancel { call } => server::test_cancel(r, step, call),
        Op::CoInitializeEx { sta } => Ok(apartment::co_initialize(step, *sta)),
        Op::CoUninitialize => Ok(apartment::co_uninit(step)),
        Op::Marshal { target, iface } => apartment::marshal(r, step, target, iface),
        Op::Unmarshal { stream } => apartment::unmarshal(r, step, stream),
        Op::Pump => Ok(apartment::pump(step)),
        Op::Call {
            target,
            method,
            args,
        } => apartment::call(r, step, target, method, args),
        Op::CoCancelCall { actor, seconds } => apartment::co_cancel(r, step, actor, *seconds),
        Op::CoTestCancel => Ok(apartment::test_cancel(step)),
        Op::CoGetCancelObject { actor } => apartment::get_cancel_object(r, step, actor),
        Op::Security(sec) => security::prepare(r, step, sec),
    }
}

/// How much of an operation's events [`apply`] records.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Phase {
    /// A plain statement: the call, what it caused, the return.
    Whole,
    /// A `join`: what it caused and the return (the call was recorded at `start`).
    Joined,
}

/// Runs a prepared operation's continuation on its job's result, with the arrows around it.
pub(super) fn apply(
    r: &mut Runner,
    step: &Step,
    bind: Option<&str>,
    then: Then,
    arrow: &Arrow,
    reply: super::actors::Reply,
    phase: Phase,
) -> Result<Outcome, ScriptError> {
    let thread = reply.thread;
    // Events of this operation carry the apartment it ran in (before it, or the one it
    // entered); after it, the thread is where the job left it.
    r.saw(&thread, reply.tid, reply.before.or(reply.after.clone()));
    let after = reply.after;
    let tid = reply.tid;
    let value = reply
        .res
        .map_err(|p| r.rt(step, format!("the operation panicked: {p}")))?;
    if phase == Phase::Whole && !arrow.label.is_empty() && !arrow.one_way {
        r.event(
            step,
            &thread,
            EventKind::Call,
            &step.actor,
            &arrow.to,
            &arrow.label,
        );
    }
    let call_obj = arrow.obj.filter(|&o| r.is_call(o));
    let ran = Ran {
        step,
        bind,
        thread: &thread,
        arrow,
    };
    let mut o = then(r, &ran, value)?;
    if o.call_obj.is_none() {
        o.call_obj = call_obj;
    }
    if !arrow.one_way && o.text.is_none() && !arrow.label.is_empty() {
        let label = o.label();
        r.event(
            step,
            &thread,
            EventKind::Return,
            &arrow.to,
            &step.actor,
            &label,
        );
    }
    r.saw(&thread, tid, after);
    Ok(o)
}
