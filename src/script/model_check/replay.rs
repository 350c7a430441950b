//! The model objects a script's variables name, the replay of each step on them, and the
//! comparison with what the implementation produced (see the [parent module](super)).

use std::collections::{HashMap, VecDeque};

mod apartment;
mod compare;
mod security;

use apartment::Handled;

#[cfg(test)]
pub(super) use compare::COMPARED;
use compare::{compare, say, times_out, Expected};

use super::{
    begin, model_object_accessors, snapshot, write_back, Action, Checked, Creation, Divergence,
    Made, ModelObject, Observed, Seen,
};
use crate::call::FinishMode;
use crate::hresult::S_OK;
use crate::model::{
    co_wait_for_multiple_handles, ApartmentModel, AptNo, CallModel, ContainerModel, EventModel,
    MethodIndex, ModelOutcome, OuterScript, SecurityModel, INFINITE,
};
use crate::script::value::Value;

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
    /// A script-made controlling unknown and the call object it aggregates (its model holds
    /// the outer's counts).
    Outer(Option<usize>),
    /// A marshaled interface: the object (if tracked) and its apartment.
    Stream { object: Option<usize>, apt: AptNo },
    /// A proxy bound to apartment `home`, to an object of apartment `obj_apt`.
    Proxy { home: AptNo, obj_apt: AptNo },
    /// A call object made on a proxy (its results are not followed, its apartment rules are).
    ProxyCall { home: AptNo, obj_apt: AptNo },
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
    /// A synchronous call to a `Who` server: `S_OK` and what its server code observed.
    Observed(String),
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

/// The model side of one script run: feed it every executed step with [`ModelCheck::step`].
#[derive(Clone, Debug, Default)]
pub(crate) struct ModelCheck {
    objs: Vec<Obj>,
    vars: HashMap<String, usize>,
    pending: Vec<Pending>,
    /// The method names seen, in order: a method's model index is its position here (the
    /// model only tells methods apart).
    methods: Vec<String>,
    /// The actors' apartments and the STAs' queues.
    apts: ApartmentModel,
    /// Identities, blankets, access policies.
    sec: SecurityModel,
    /// The object (model number) each proxy and proxy's call object reaches.
    reaches: HashMap<usize, usize>,
    /// The `Who` servers (model numbers; `true`: `WhoAsync`).
    who: HashMap<usize, bool>,
    /// What the `Finish_Run` of each `WhoAsync` call begun through a proxy returns, by the
    /// call object's model number.
    who_finish: HashMap<usize, String>,
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

    /// The model's index of the method named `name`.
    fn method(&mut self, name: &str) -> MethodIndex {
        match self.methods.iter().position(|m| m == name) {
            Some(i) => i,
            None => {
                self.methods.push(name.to_string());
                self.methods.len() - 1
            }
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
        if let Checked::OuterCount { outer, signals } = op {
            return self.outer_count(outer, *signals, seen);
        }
        let handled = match self.security_step(bind, op, seen) {
            None => self.apartment_step(bind, op, seen),
            h => h,
        };
        match handled {
            None => {}
            Some(Handled::Unchecked) => return Ok(()),
            Some(Handled::Checked(r)) => return r,
            Some(Handled::Finished(out)) => {
                return self.expect_finished(seen, out);
            }
            Some(Handled::Outcome(o)) => {
                let expected = self.expected(op, &o);
                return compare(seen.line, seen.text, &expected, &seen.seen);
            }
        }
        let outcome = self.apply(bind, op, seen);
        self.sta_wait_done(op, outcome.as_ref(), seen.actor);
        let Some(outcome) = outcome else {
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
        if let Some(h) = self.apartment_step(None, &op, seen) {
            // A started apartment operation (a synchronous call): the model's answer, if it
            // has one, is compared at its join.
            let answer = match h {
                Handled::Outcome(o) => Answer::Returned(o),
                Handled::Finished(out) => Answer::Observed(out),
                Handled::Unchecked | Handled::Checked(_) => Answer::Unchecked,
            };
            self.pending.push(Pending {
                actor: seen.actor.to_string(),
                text: seen.text.trim_start_matches("start ").to_string(),
                op,
                obj: None,
                answer,
            });
            return Ok(());
        }
        let answer = match self.apply(None, &op, seen) {
            None => Answer::Unchecked,
            Some(ModelOutcome::Blocks | ModelOutcome::CancelInFlight) => Answer::Waiting,
            Some(o) => Answer::Returned(o),
        };
        self.sta_wait_started(&op, &answer, seen.actor);
        let text = seen.text.trim_start_matches("start ").to_string();
        if let Seen::Started { blocked } = seen.seen {
            let model_blocks = answer == Answer::Waiting;
            // A finite wait the model says times out may still be running its timeout.
            let timing_out = matches!(&answer, Answer::Returned(o) if times_out(&op, o));
            if answer != Answer::Unchecked && blocked != model_blocks && !timing_out {
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
        self.apts.wait_returned(seen.actor);
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
            Answer::Observed(out) => {
                let expected = Expected {
                    hr: Some(S_OK),
                    outs: Some(vec![Value::Str(out.into_bytes())]),
                    ..Expected::default()
                };
                compare(seen.line, &text, &expected, &seen.seen)
            }
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
            if self.pending[i].answer != Answer::Waiting {
                let actor = self.pending[i].actor.clone();
                self.apts.wait_returned(&actor);
            }
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
            Checked::Creation(creation) => {
                if let Some(made) = creation.made(hr == Some(S_OK)) {
                    self.new_obj(bind, Obj::from_made(made));
                    if let Creation::Untracked {
                        who: Some(asynchronous),
                    } = creation
                    {
                        self.who.insert(self.objs.len() - 1, *asynchronous);
                    }
                }
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
            Checked::CreateCall {
                factory,
                iid,
                outer,
            } => {
                let obj = self.obj(factory)?;
                let outer = outer.as_deref().and_then(|o| self.obj(o));
                if let (Obj::Server(mode), Some(S_OK)) = (&self.objs[obj], hr) {
                    let (iid, mode) = (*iid, *mode);
                    let model = match outer.map(|k| &self.objs[k]) {
                        None => CallModel::with_mode(iid, mode),
                        // One call object per outer is followed; a second is not.
                        Some(Obj::Outer(None)) => {
                            CallModel::aggregated(iid, mode, OuterScript::ok())
                        }
                        Some(_) => {
                            self.new_obj(bind, Obj::Untracked);
                            if let Some(k) = outer {
                                self.objs[k] = Obj::Untracked;
                            }
                            return None;
                        }
                    };
                    let call = CallObj {
                        model,
                        queued: VecDeque::new(),
                        results: Vec::new(),
                    };
                    self.new_obj(bind, Obj::Call(Box::new(call)));
                    if let Some(k) = outer {
                        self.objs[k] = Obj::Outer(Some(self.objs.len() - 1));
                    }
                }
                None
            }
            Checked::OuterCount { .. } => None,
            Checked::Release { target } => {
                if count == Some(0) {
                    if let Some(c) = self.call_mut(target) {
                        c.model.release();
                    }
                }
                None
            }
            Checked::Begin {
                call,
                method,
                shared,
                ..
            } => {
                for name in shared {
                    if let Some(k) = self.obj(name) {
                        self.objs[k] = Obj::Untracked;
                    }
                }
                let m = self.method(method);
                let c = self.call_mut(call)?;
                Some(begin(&mut c.model, &mut c.queued, m))
            }
            Checked::Finish { call, method } => {
                let m = self.method(method);
                Some(self.call_mut(call)?.model.finish(m))
            }
            Checked::Wait {
                target,
                flags,
                timeout,
            } => {
                let obj = self.obj(target)?;
                self.objs[obj].wait(*flags, *timeout)
            }
            Checked::Signal { target } | Checked::Reset { target } => {
                let obj = self.obj(target)?;
                let signal = matches!(op, Checked::Signal { .. });
                // The script's own Signal or Reset of an outer: its counts are no longer the
                // model's.
                if let Obj::Outer(Some(c)) = self.objs[obj] {
                    self.objs[obj] = Obj::Untracked;
                    self.objs[c] = Obj::Untracked;
                    return None;
                }
                self.objs[obj].signal_or_reset(signal)
            }
            Checked::Cancel { call, seconds } => Some(self.call_mut(call)?.model.cancel(*seconds)),
            Checked::TestCancel { call } => Some(self.call_mut(call)?.model.test_cancel()),
            Checked::AddSynchronize {
                container,
                sync: None,
            } => {
                let k = self.obj(container)?;
                let n = self.objs.len();
                match &mut self.objs[k] {
                    Obj::Container(model, _) => Some(model.add_synchronize(None, n)),
                    _ => None,
                }
            }
            Checked::AddSynchronize {
                container,
                sync: Some(sync),
            } => {
                let (k, s) = (self.obj(container)?, self.obj(sync)?);
                let n = self.objs.len();
                if !self.objs[s].waitable() {
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
            Checked::WaitMultiple {
                container,
                flags,
                timeout,
                out,
            } => {
                let k = self.obj(container)?;
                let Obj::Container(model, _) = &self.objs[k] else {
                    return None;
                };
                let model = model.clone();
                let mut events = snapshot(&self.objs, |o| o, model.objects())?;
                let o = model.wait_multiple(&mut events, *flags, *timeout, *out);
                if !o.blocks() {
                    write_back(&mut self.objs, |o| o, events);
                }
                Some(o)
            }
            Checked::CoWait {
                flags,
                timeout,
                handles,
                index,
            } => {
                let ids = match handles {
                    Some(hs) => Some(hs.iter().map(|h| self.obj(h)).collect::<Option<Vec<_>>>()?),
                    None => None,
                };
                let mut events = snapshot(&self.objs, |o| o, ids.as_deref().unwrap_or_default())?;
                let o = co_wait_for_multiple_handles(
                    &mut events,
                    *flags,
                    *timeout,
                    ids.as_deref(),
                    *index,
                );
                if !o.blocks() {
                    write_back(&mut self.objs, |o| o, events);
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
            // The apartment operations (`apartment_step`) never reach here.
            Checked::CoInitializeEx { .. }
            | Checked::CoUninitialize
            | Checked::Marshal { .. }
            | Checked::Unmarshal { .. }
            | Checked::Pump
            | Checked::SyncCall { .. }
            | Checked::CoTestCancel
            | Checked::Security(_) => None,
            Checked::ServerTestCancel { call } => {
                let c = self.call_mut(call)?;
                // Only the current call's flag is the model's.
                (c.queued.front() == Some(&c.model.call_number())).then(|| c.model.test_cancel())
            }
        }
    }
}

impl ModelObject for Obj {
    fn from_made(made: Made) -> Self {
        match made {
            Made::Server(mode) => Obj::Server(mode),
            Made::Untracked => Obj::Untracked,
            Made::Event(e) => Obj::Event(e),
            Made::Container(k) => Obj::Container(k, Vec::new()),
            Made::Outer => Obj::Outer(None),
        }
    }

    model_object_accessors!(Obj);
}
