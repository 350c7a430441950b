//! The runner: walks a parsed script step by step, hands each operation to its actor's
//! thread ([`super::actors`]), waits for it under the watchdog, applies its result
//! ([`super::exec`]), prints and checks it ([`super::report`]). It owns the script's
//! variables and the objects they name.
//!
//! Invariants:
//! * After every statement the runner waits until each `start`ed operation has returned or is
//!   blocked ([`Runner::quiesce`]). It does not predict which operations block: the library
//!   says which thread is parked on what (`sync::observe::blocked_on`) and whether that has
//!   come yet; the runner looks each time `sync::observe` reports a change, and sleeps in
//!   between — no polling.
//! * A variable holds the script's COM references to one object; `Release` of the last one
//!   leaves the name bound to nothing (later uses are errors naming the line it was released).
//! * Teardown releases the references first (a final `Release` abandons a call and wakes a
//!   blocked `Finish_`), then the servers' queued calls (dropping one completes it with
//!   `RPC_E_SERVER_DIED`), then ends the actors.

use std::collections::HashMap;
use std::fmt;
use std::io::Write;
use std::sync::Arc;
use std::time::Instant;

use super::actors::{Actor, AptSeen, Reply};
use super::exec::{self, Arrow, Job, Phase, Then};
use super::model_check::{self, ModelCheck, Observed, Seen};
use super::parse::{Step, StepKind};
use super::ptr::{Ptr, Target};
use super::registry::{CallView, ErasedInterface, PendingCall, Registry, ServerQueue};
use super::report::{self, show_duration, show_state, Outcome};
use super::run::{RunOptions, ScriptError};
use super::trace::{Event, EventKind, Role, Trace, NO_APARTMENT};
use super::value::Objects;
use crate::apartment::{Apartment, ApartmentId, AptType};
use crate::call::State;
use crate::sync::observe::{self, Observer};
use crate::sync::prim::Deadline;
use crate::sync::HANDLE;
use crate::unknown::{query, ComPtr, IUnknown};

/// An event or call object added to a container.
pub(super) struct Member {
    pub(super) name: String,
    pub(super) addr: usize,
}

/// What the runner knows about an object.
pub(super) enum ObjKind {
    /// A server object; a hand-driven one has a queue.
    Server {
        queue: Option<Box<dyn ServerQueue>>,
        /// Begun calls taken from the queue, oldest first.
        pending: Vec<Box<dyn PendingCall>>,
    },
    /// A call object.
    Call {
        /// The address its server's calls know it by.
        addr: usize,
        handle: HANDLE,
        /// Known once its first call reached a hand-driven server.
        view: Option<Arc<dyn CallView>>,
        /// The object `CreateCall` was called on.
        server: usize,
        /// Its asynchronous interface, when registered.
        iface: Option<Arc<dyn ErasedInterface>>,
        /// The script's `Outer` it is aggregated under: what its completion signals.
        outer: Option<usize>,
    },
    Event {
        handle: HANDLE,
    },
    Container {
        members: Vec<Member>,
    },
    /// A script-made controlling unknown (`Outer`).
    Outer {
        outer: Arc<super::exec::ScriptOuter>,
        handle: HANDLE,
    },
    /// A marshaled interface (`Marshal`), until its `Unmarshal` takes it.
    Stream {
        stream: Option<crate::marshal::MarshalStream>,
        /// The object marshaled.
        object: usize,
    },
    /// A proxy (`Unmarshal` in another apartment) to `object`.
    Proxy {
        object: usize,
    },
    /// An object the runner only holds references to (a cancel object).
    Other,
}

/// An object the script made or was handed.
pub(super) struct Obj {
    pub(super) name: String,
    pub(super) kind: ObjKind,
    /// Its COM identity (`IUnknown` address).
    pub(super) identity: usize,
    /// Its count reached 0 through a script `Release`.
    pub(super) gone: bool,
}

/// A script variable: references to one object.
pub(super) struct Var {
    pub(super) obj: usize,
    /// The script's references (`AddRef` adds one, `Release` drops the last).
    pub(super) refs: Vec<Ptr>,
    pub(super) released_at: Option<usize>,
}

/// A started operation, until its `join`.
struct Started {
    actor: String,
    line: usize,
    text: String,
    then: Then,
    arrow: Arrow,
    reply: Option<Reply>,
}

/// Runs one script.
pub(super) struct Runner {
    file: String,
    opts: RunOptions,
    pub(super) registry: Registry,
    pub(super) vars: HashMap<String, Var>,
    pub(super) objs: Vec<Obj>,
    actors: HashMap<String, Actor>,
    started: Vec<Started>,
    pub(super) trace: Trace,
    /// Wakes `quiesce` when another thread blocks or an actor returns.
    observer: Observer,
    /// The reference model every step is replayed on (`model_check`).
    model: ModelCheck,
    /// Apartments by identity and their labels (`STA#1`, `MTA#1`), in the order met.
    apts: Vec<(ApartmentId, String)>,
    /// Each actor thread's apartment, as its last reply said.
    actor_apt: HashMap<String, Option<AptSeen>>,
    /// Each actor thread's `GetCurrentThreadId()`.
    tids: HashMap<String, u32>,
    /// How many messages each STA had dispatched when the runner last looked.
    dispatched: HashMap<ApartmentId, u64>,
    /// The text of the operation each actor started last (what a dispatch happened in).
    started_text: HashMap<String, String>,
}

impl Drop for Runner {
    fn drop(&mut self) {
        self.vars.clear();
        self.started.clear();
        self.objs.clear();
        for (_, actor) in self.actors.drain() {
            actor.shut_down();
        }
    }
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}

impl Runner {
    pub(super) fn new(file: &str, opts: RunOptions, registry: Registry) -> Runner {
        Runner {
            file: file.to_string(),
            opts,
            registry,
            vars: HashMap::new(),
            objs: Vec::new(),
            actors: HashMap::new(),
            started: Vec::new(),
            trace: Trace::default(),
            observer: Observer::new(),
            model: ModelCheck::new(),
            apts: Vec::new(),
            actor_apt: HashMap::new(),
            tids: HashMap::new(),
            dispatched: HashMap::new(),
            started_text: HashMap::new(),
        }
    }

    /// A runtime error at `step`.
    pub(super) fn rt(&self, step: &Step, message: String) -> ScriptError {
        ScriptError::Runtime {
            file: self.file.clone(),
            line: step.line,
            message,
        }
    }

    /// A usage error at `step` found while running (arguments that do not fit a method).
    pub(super) fn usage(&self, step: &Step, message: String) -> ScriptError {
        ScriptError::Syntax {
            file: self.file.clone(),
            line: step.line,
            message,
        }
    }

    pub(super) fn tracing(&self) -> bool {
        self.opts.trace
    }

    /// Runs every step, stopping at the first error.
    pub(super) fn run(&mut self, steps: &[Step], out: &mut dyn Write) -> Result<(), ScriptError> {
        for step in steps {
            if let StepKind::Say(note) = &step.kind {
                self.trace
                    .participant(&step.actor, &step.actor, Role::Client);
                let (actor, line) = (step.actor.clone(), step.line);
                let apartment = self.apartment_of(&actor);
                self.trace.events.push(Event {
                    line,
                    actor: actor.clone(),
                    thread: actor.clone(),
                    apartment,
                    kind: EventKind::Note,
                    from: actor.clone(),
                    to: actor,
                    label: note.clone(),
                });
                writeln!(out, "      > {note}")?;
                continue;
            }
            if !self.actors.contains_key(&step.actor) {
                let actor = Actor::spawn(&step.actor)?;
                self.actors.insert(step.actor.clone(), actor);
            }
            self.trace
                .participant(&step.actor, &step.actor, Role::Client);
            let outcome = match &step.kind {
                StepKind::Do { bind, op } => {
                    let prep = exec::prepare(self, step, op)?;
                    let reply = self.call(step, prep.job)?;
                    self.quiesce(step)?;
                    exec::apply(
                        self,
                        step,
                        bind.as_deref(),
                        prep.then,
                        &prep.arrow,
                        reply,
                        Phase::Whole,
                    )?
                }
                StepKind::Start { op, .. } => self.start(step, op)?,
                StepKind::Join => self.join(step)?,
                StepKind::Say(_) => continue,
            };
            self.note_dispatches(step);
            report::print(self, step, &outcome, out)?;
            report::check(&self.file, step, &outcome)?;
            // The reference model replays the step (model_check.rs): a divergence stops here,
            // naming both answers.
            let seen = match &step.kind {
                StepKind::Start { .. } => Seen::Started {
                    blocked: outcome.text.as_deref() == Some("started, blocks"),
                },
                _ => Seen::Returned {
                    hr: outcome.hr,
                    count: outcome.count,
                    outs: &outcome.outs,
                    dropped: outcome.note.as_deref() == Some("late result dropped"),
                },
            };
            self.model
                .step(model_check::action(&step.kind), &Observed::of(step, seen))
                .map_err(|d| self.rt(step, d.message))?;
        }
        Ok(())
    }

    // --- state -------------------------------------------------------------------------------

    pub(super) fn obj_name(&self, obj: usize) -> &str {
        &self.objs[obj].name
    }

    pub(super) fn call_state(&self, obj: usize) -> Option<State> {
        match &self.objs[obj].kind {
            ObjKind::Call { view: Some(v), .. } => Some(v.state()),
            _ => None,
        }
    }

    /// A call object's state as printed after a step; `None` for a call whose server is not
    /// hand-driven (its state changes on the server's own schedule, so it is not shown).
    pub(super) fn state_text(&self, obj: usize) -> Option<&'static str> {
        if let ObjKind::Call { server, .. } = self.objs[obj].kind {
            // A proxy's call object completes when the object's apartment runs the call.
            if matches!(
                self.objs[server].kind,
                ObjKind::Server { queue: None, .. } | ObjKind::Proxy { .. }
            ) {
                return None;
            }
        }
        Some(match self.call_state(obj) {
            Some(s) => show_state(s),
            // Never begun: what CreateCall made, until its last Release.
            None if self.objs[obj].gone => "Gone",
            None => "Idle",
        })
    }

    pub(super) fn is_call(&self, obj: usize) -> bool {
        matches!(self.objs[obj].kind, ObjKind::Call { .. })
    }

    /// The participant an operation on `obj` talks to: a call object's `ISynchronize` for the
    /// `ISynchronize` methods, otherwise the object.
    pub(super) fn part(&self, obj: usize, sync: bool) -> String {
        let o = &self.objs[obj];
        match o.kind {
            ObjKind::Call { .. } if sync => format!("{}_ISync", o.name),
            _ => o.name.clone(),
        }
    }

    /// The participant a call object's completion signals: its `ISynchronize`, or the
    /// script's `Outer` it is aggregated under.
    pub(super) fn signal_part(&self, obj: usize) -> String {
        match self.objs[obj].kind {
            ObjKind::Call {
                outer: Some(outer), ..
            } => self.objs[outer].name.clone(),
            _ => self.part(obj, true),
        }
    }

    pub(super) fn handle(&self, obj: usize) -> Option<HANDLE> {
        match &self.objs[obj].kind {
            ObjKind::Call { handle, .. }
            | ObjKind::Event { handle }
            | ObjKind::Outer { handle, .. } => Some(handle.clone()),
            _ => None,
        }
    }

    /// Moves begun calls from the servers' queues to their pending lists, learning which call
    /// object each belongs to.
    pub(super) fn drain(&mut self) {
        for s in 0..self.objs.len() {
            loop {
                let entry = match &self.objs[s].kind {
                    ObjKind::Server { queue: Some(q), .. } => q.take(),
                    _ => None,
                };
                let Some(entry) = entry else { break };
                if let Some((a, call)) = entry.call() {
                    for o in self.objs.iter_mut() {
                        if let ObjKind::Call { addr, view, .. } = &mut o.kind {
                            if view.is_none() && *addr == a {
                                *view = Some(call.clone());
                            }
                        }
                    }
                }
                if let ObjKind::Server { pending, .. } = &mut self.objs[s].kind {
                    pending.push(entry);
                }
            }
        }
    }

    // --- variables ---------------------------------------------------------------------------

    /// A variable that holds a reference.
    pub(super) fn var(&self, step: &Step, name: &str) -> Result<&Var, ScriptError> {
        let v = self.bound(step, name)?;
        if matches!(self.objs[v.obj].kind, ObjKind::Stream { .. }) {
            return Err(self.rt(
                step,
                format!("`{name}` is a stream: the only thing to do with it is `Unmarshal {name}`"),
            ));
        }
        if v.refs.is_empty() {
            return Err(self.rt(
                step,
                format!(
                    "`{name}` was released at line {}: it holds no reference",
                    v.released_at.unwrap_or(0)
                ),
            ));
        }
        Ok(v)
    }

    /// A bound variable (possibly released).
    pub(super) fn bound(&self, step: &Step, name: &str) -> Result<&Var, ScriptError> {
        self.vars.get(name).ok_or_else(|| {
            self.rt(
                step,
                format!("`{name}` is not bound: the operation that was to bind it failed"),
            )
        })
    }

    /// A variable's object and its pointer for another thread.
    pub(super) fn target(&self, step: &Step, name: &str) -> Result<(usize, Target), ScriptError> {
        let v = self.var(step, name)?;
        let p = v.refs.last().map(Ptr::target);
        p.map(|t| (v.obj, t))
            .ok_or_else(|| self.rt(step, format!("`{name}` holds no reference")))
    }

    pub(super) fn bind(&mut self, name: Option<&str>, obj: usize, ptr: Ptr) {
        if let Some(name) = name {
            self.vars.insert(
                name.to_string(),
                Var {
                    obj,
                    refs: vec![ptr],
                    released_at: None,
                },
            );
        }
    }

    pub(super) fn new_obj(&mut self, name: &str, identity: usize, kind: ObjKind) -> usize {
        self.objs.push(Obj {
            name: name.to_string(),
            kind,
            identity,
            gone: false,
        });
        self.objs.len() - 1
    }

    /// The objects' names by identity, for naming out-parameters on another thread.
    pub(super) fn names(&self) -> Names {
        Names(
            self.objs
                .iter()
                .map(|o| (o.identity, o.name.clone()))
                .collect(),
        )
    }

    pub(super) fn event(
        &mut self,
        step: &Step,
        thread: &str,
        kind: EventKind,
        from: &str,
        to: &str,
        label: &str,
    ) {
        let apartment = self.apartment_of(thread);
        self.trace.events.push(Event {
            line: step.line,
            actor: step.actor.clone(),
            thread: thread.to_string(),
            apartment,
            kind,
            from: from.to_string(),
            to: to.to_string(),
            label: label.to_string(),
        });
    }

    // --- apartments ----------------------------------------------------------------------------

    /// The label of an apartment: `STA#n` / `MTA#n`, numbered in the order this run met them.
    pub(super) fn apt_label(&mut self, apt: &Apartment) -> String {
        let id = apt.id();
        if let Some((_, l)) = self.apts.iter().find(|(i, _)| *i == id) {
            return l.clone();
        }
        let kind = match apt.kind() {
            AptType::Sta => "STA",
            AptType::Mta => "MTA",
        };
        let n = self
            .apts
            .iter()
            .filter(|(_, l)| l.starts_with(kind))
            .count()
            + 1;
        let label = format!("{kind}#{n}");
        self.apts.push((id, label.clone()));
        label
    }

    /// The apartment label of actor thread `thread` now (`no apartment` without one).
    pub(super) fn apartment_of(&mut self, thread: &str) -> String {
        match self.actor_apt.get(thread).cloned().flatten() {
            Some(seen) => self.apt_label(&seen.apt),
            None => NO_APARTMENT.to_string(),
        }
    }

    /// The apartment actor thread `thread` is in (as its last reply said).
    pub(super) fn actor_apartment(&self, thread: &str) -> Option<Arc<Apartment>> {
        self.actor_apt.get(thread).cloned().flatten().map(|s| s.apt)
    }

    /// Records what a reply says about its thread: its COM thread id and its apartment
    /// (`seen`); the actor's participant is put in the first apartment it is seen in.
    pub(super) fn saw(&mut self, thread: &str, tid: u32, seen: Option<AptSeen>) {
        self.tids.insert(thread.to_string(), tid);
        if let Some(s) = &seen {
            // Dispatches before the thread entered are not this run's.
            let id = s.apt.id();
            let now = s.apt.dispatched();
            self.dispatched.entry(id).or_insert(now);
            let label = self.apt_label(&s.apt);
            self.trace.place(thread, &label);
        }
        self.actor_apt.insert(thread.to_string(), seen);
    }

    /// The COM thread id of `actor`'s thread, once it has run a step.
    pub(super) fn tid_of(&self, actor: &str) -> Option<u32> {
        self.tids.get(actor).copied()
    }

    /// Notes, on each STA actor whose thread dispatched incoming calls during `step`, how many
    /// and in which operation (`dispatched by ...`).
    fn note_dispatches(&mut self, step: &Step) {
        let actors: Vec<String> = {
            let mut v: Vec<String> = self.actor_apt.keys().cloned().collect();
            v.sort();
            v
        };
        for actor in actors {
            let Some(apt) = self.actor_apartment(&actor) else {
                continue;
            };
            if apt.kind() != AptType::Sta {
                continue;
            }
            let now = apt.dispatched();
            let before = self.dispatched.insert(apt.id(), now).unwrap_or(now);
            if now <= before {
                continue;
            }
            let n = now - before;
            let by = if actor == step.actor && matches!(step.kind, StepKind::Do { .. }) {
                step.text.clone()
            } else {
                self.started_text
                    .get(&actor)
                    .cloned()
                    .unwrap_or_else(|| step.text.clone())
            };
            let label = format!(
                "{n} incoming call{} run (dispatched by {by})",
                if n == 1 { "" } else { "s" }
            );
            self.event(step, &actor, EventKind::Note, &actor, &actor, &label);
            // What each message said it was: the stub's work in the object's apartment.
            for what in apt.take_ran() {
                self.event(step, &actor, EventKind::Note, &actor, &actor, &what);
            }
        }
    }

    // --- running -------------------------------------------------------------------------------

    fn actor(&mut self, step: &Step) -> Result<&mut Actor, ScriptError> {
        let err = self.rt(step, format!("{} has no thread", step.actor));
        self.actors.get_mut(&step.actor).ok_or(err)
    }

    fn call(&mut self, step: &Step, job: Job) -> Result<Reply, ScriptError> {
        let watchdog = self.opts.watchdog;
        let actor = self.actor(step)?;
        if actor.jobs.send(job).is_err() {
            return Err(self.rt(step, format!("{}'s thread has ended", step.actor)));
        }
        actor.busy = true;
        match actor.replies.recv_timeout(watchdog) {
            Ok(r) => {
                actor.busy = false;
                Ok(r)
            }
            Err(_) => Err(self.rt(
                step,
                format!(
                    "{} still blocked after {} in `{}`",
                    step.actor,
                    show_duration(watchdog),
                    step.text
                ),
            )),
        }
    }

    fn start(&mut self, step: &Step, op: &super::parse::Op) -> Result<Outcome, ScriptError> {
        let prep = exec::prepare(self, step, op)?;
        let actor = self.actor(step)?;
        if actor.jobs.send(prep.job).is_err() {
            return Err(self.rt(step, format!("{}'s thread has ended", step.actor)));
        }
        actor.busy = true;
        let call_obj = prep.arrow.obj.filter(|&o| self.is_call(o));
        self.event(
            step,
            &step.actor,
            EventKind::Call,
            &step.actor,
            &prep.arrow.to,
            &prep.arrow.label,
        );
        self.started_text.insert(
            step.actor.clone(),
            step.text.trim_start_matches("start ").to_string(),
        );
        self.started.push(Started {
            actor: step.actor.clone(),
            line: step.line,
            text: step.text.trim_start_matches("start ").to_string(),
            then: prep.then,
            arrow: prep.arrow,
            reply: None,
        });
        self.quiesce(step)?;
        let blocked = self
            .started
            .iter()
            .any(|s| s.actor == step.actor && s.reply.is_none());
        if blocked {
            let label = match self
                .actors
                .get(&step.actor)
                .and_then(|a| observe::blocked_on(a.thread_id))
            {
                Some(observe::What::Sta { .. }) => {
                    let apt = self.apartment_of(&step.actor);
                    format!("blocks (in {apt}'s modal wait: it dispatches incoming calls)")
                }
                _ => "blocks".to_string(),
            };
            self.event(
                step,
                &step.actor,
                EventKind::Note,
                &step.actor,
                &step.actor,
                &label,
            );
        }
        Ok(Outcome {
            call_obj,
            ..Outcome::text(if blocked {
                "started, blocks"
            } else {
                "started, returned"
            })
        })
    }

    fn join(&mut self, step: &Step) -> Result<Outcome, ScriptError> {
        let i = self
            .started
            .iter()
            .position(|s| s.actor == step.actor)
            .ok_or_else(|| self.rt(step, format!("{} has nothing to join", step.actor)))?;
        let watchdog = self.opts.watchdog;
        let reply = match self.started[i].reply.take() {
            Some(r) => r,
            None => {
                let actor = self.actor(step)?;
                match actor.replies.recv_timeout(watchdog) {
                    Ok(r) => {
                        actor.busy = false;
                        r
                    }
                    Err(_) => {
                        let s = &self.started[i];
                        return Err(self.rt(
                            step,
                            format!(
                                "{} still blocked after {} in `{}` (started at line {})",
                                step.actor,
                                show_duration(watchdog),
                                s.text,
                                s.line
                            ),
                        ));
                    }
                }
            }
        };
        let s = self.started.remove(i);
        self.quiesce(step)?;
        exec::apply(self, step, None, s.then, &s.arrow, reply, Phase::Joined)
    }

    /// Waits until every started operation has returned or is blocked (see the module docs).
    fn quiesce(&mut self, step: &Step) -> Result<(), ScriptError> {
        let deadline = Instant::now() + self.opts.watchdog;
        loop {
            // Read the generation before looking: a change after this wakes the wait below.
            let seen = self.observer.generation();
            self.drain();
            for s in self.started.iter_mut() {
                if s.reply.is_none() {
                    if let Some(actor) = self.actors.get_mut(&s.actor) {
                        if let Ok(r) = actor.replies.try_recv() {
                            actor.busy = false;
                            s.reply = Some(r);
                        }
                    }
                }
            }
            let unsettled = (0..self.started.len()).find(|&i| !self.settled(i));
            let Some(i) = unsettled else { return Ok(()) };
            if Instant::now() > deadline {
                let s = &self.started[i];
                return Err(self.rt(
                    step,
                    format!(
                        "{} (started at line {}) neither returned nor blocked after {}",
                        s.actor,
                        s.line,
                        show_duration(self.opts.watchdog)
                    ),
                ));
            }
            // Sleep until a thread registers on an event, a Cancel starts its window, or an
            // actor returns (crate::sync::observe); no polling.
            self.observer.wait_past(seen, Deadline::at(deadline));
        }
    }

    /// Whether started operation `i` has returned, or its thread is parked (as the library
    /// reports it, `sync::observe`) and what it waits for has not come.
    fn settled(&self, i: usize) -> bool {
        let s = &self.started[i];
        s.reply.is_some()
            || self
                .actors
                .get(&s.actor)
                .is_some_and(|a| observe::blocked_on(a.thread_id).is_some())
    }
}

/// The script's variables as parameter conversion sees them (on the runner thread).
impl Objects for Runner {
    fn lookup(&self, name: &str) -> Option<ComPtr<dyn IUnknown>> {
        let p = self.vars.get(name)?.refs.last()?;
        query::<dyn IUnknown>(&**p.unknown()).ok()
    }
    fn name_of(&self, object: &dyn IUnknown) -> Option<String> {
        self.names().name_of(object)
    }
}

/// Object names by identity: [`Objects`] for another thread (it looks nothing up).
pub(super) struct Names(Vec<(usize, String)>);

impl Objects for Names {
    fn lookup(&self, _name: &str) -> Option<ComPtr<dyn IUnknown>> {
        None
    }
    fn name_of(&self, object: &dyn IUnknown) -> Option<String> {
        let unk = query::<dyn IUnknown>(object).ok()?;
        let id = super::ptr::addr_of(unk.as_arc());
        self.0
            .iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| n.clone())
    }
}
