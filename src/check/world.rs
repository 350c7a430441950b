//! The checker's state — the model objects the script's variables name, every actor's
//! position — and its transitions: an actor runs its next step, or a `Cancel` in flight waits
//! out its window (see the [parent module](super)).

use std::collections::{HashMap, VecDeque};
use std::fmt;

use crate::call::FinishMode;
use crate::hresult::{HRESULT, S_OK};
use crate::model::{
    co_wait_for_multiple_handles, CallModel, ContainerModel, EventModel, MethodIndex, ModelOutcome,
    State as CallState, INFINITE,
};
use crate::script::model_check::{from_op, Checked};
use crate::script::parse::{Op, Step, StepKind};
use crate::script::value::Value;

/// An operation as the checker reads it: the model check's [`Checked`], plus `AddRef` (the
/// checker counts references). Anything else is not modelled: it returns what the script
/// says. This is the only place that reads the parser's [`Op`].
#[derive(Clone, Debug)]
pub(crate) enum COp {
    Model(Checked),
    AddRef(String),
    NotModelled,
}

fn cop(op: &Op) -> COp {
    match op {
        Op::AddRef { target } => COp::AddRef(target.clone()),
        other => from_op(other).map_or(COp::NotModelled, COp::Model),
    }
}

/// The script as threads: each actor's steps in order.
#[derive(Debug)]
pub(crate) struct Program {
    pub steps: Vec<Step>,
    ops: Vec<Option<COp>>,
    pub actors: Vec<String>,
    /// Per actor, the indices of its steps that do something (no commentary).
    pub threads: Vec<Vec<usize>>,
    /// Where a step's result is reported: a `start`'s is reported at its `join`.
    pub report_at: Vec<usize>,
    vars: HashMap<String, usize>,
    methods: HashMap<String, MethodIndex>,
}

impl Program {
    pub(crate) fn new(steps: Vec<Step>) -> Program {
        let mut actors: Vec<String> = Vec::new();
        let mut threads: Vec<Vec<usize>> = Vec::new();
        let mut report_at: Vec<usize> = (0..steps.len()).collect();
        let mut vars = HashMap::new();
        let mut methods = HashMap::new();
        let mut open: HashMap<String, usize> = HashMap::new();
        let mut ops = Vec::new();
        for (i, s) in steps.iter().enumerate() {
            let op = match &s.kind {
                StepKind::Do { bind, op } => {
                    if let Some(b) = bind {
                        let n = vars.len();
                        vars.entry(b.clone()).or_insert(n);
                    }
                    Some(op)
                }
                StepKind::Start { op, .. } => {
                    open.insert(s.actor.clone(), i);
                    Some(op)
                }
                StepKind::Join => {
                    if let Some(st) = open.remove(&s.actor) {
                        report_at[st] = i;
                    }
                    None
                }
                StepKind::Say(_) => None,
            };
            if let Some(Op::Begin { method, .. } | Op::Finish { method, .. }) = op {
                let n = methods.len();
                methods.entry(method.clone()).or_insert(n);
            }
            ops.push(op.map(cop));
            if matches!(s.kind, StepKind::Say(_) | StepKind::Join) {
                continue;
            }
            let a = match actors.iter().position(|a| *a == s.actor) {
                Some(a) => a,
                None => {
                    actors.push(s.actor.clone());
                    threads.push(Vec::new());
                    actors.len() - 1
                }
            };
            threads[a].push(i);
        }
        Program {
            steps,
            ops,
            actors,
            threads,
            report_at,
            vars,
            methods,
        }
    }

    /// Whether step `i` creates or binds an object (its result as written is all the checker
    /// needs of it).
    pub(crate) fn creates(&self, i: usize) -> bool {
        matches!(
            &self.ops[i],
            Some(COp::Model(
                Checked::Creation(_) | Checked::QueryInterface { .. } | Checked::CreateCall { .. }
            ))
        )
    }

    fn var(&self, name: &str) -> Option<usize> {
        self.vars.get(name).copied()
    }

    /// The first state: no objects, every actor at its first step.
    pub(crate) fn initial(&self) -> World {
        World {
            objs: Vec::new(),
            vars: vec![None; self.vars.len()],
            actors: vec![Actor::default(); self.actors.len()],
        }
    }

    /// The step an actor runs next, if any.
    pub(crate) fn next_step(&self, w: &World, actor: usize) -> Option<usize> {
        self.threads[actor]
            .get(w.actors[actor].pc as usize)
            .copied()
    }
}

/// A result a step returned, in the script's terms.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Res {
    /// The `HRESULT`; for `AddRef`/`Release`, the count as the script writes it (`-> 0`).
    pub hr: Option<HRESULT>,
    /// Out-parameters.
    pub outs: Vec<Value>,
    /// `AddRef`/`Release`: the reference count.
    pub count: Option<u32>,
    /// What else is worth saying (`delivered`, `dropped`, `not modelled`).
    pub note: Option<&'static str>,
}

impl Res {
    fn hr(hr: HRESULT) -> Res {
        Res {
            hr: Some(hr),
            outs: Vec::new(),
            count: None,
            note: None,
        }
    }
}

impl fmt::Display for Res {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.count, self.hr) {
            (Some(c), _) => write!(f, "{c}")?,
            (None, Some(hr)) => write!(f, "{}", hr.name_or_hex())?,
            (None, None) => write!(f, "done")?,
        }
        for v in &self.outs {
            write!(f, " {v}")?;
        }
        if let Some(n) = self.note {
            write!(f, " ({n})")?;
        }
        Ok(())
    }
}

/// What a server completion produced: the call it was for, its `HRESULT`, the `Complete`
/// step (whose expectation names the out-parameters), and whether a `Finish_` took it.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct Produced {
    call: u64,
    hr: HRESULT,
    step: usize,
    taken: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
struct CallObj {
    model: CallModel,
    queued: VecDeque<u64>,
    produced: Vec<Produced>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
enum Obj {
    Server(FinishMode),
    Call(Box<CallObj>),
    Event(EventModel),
    /// A container and the variable each of its objects was added as.
    Container(ContainerModel, Vec<usize>),
    Untracked,
}

/// One actor: how far it is, and the `Cancel` step it waits in, if any.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub(crate) struct Actor {
    pub pc: u32,
    pub cancel: Option<usize>,
}

/// A state of the whole script.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub(crate) struct World {
    objs: Vec<(Obj, u32)>,
    vars: Vec<Option<usize>>,
    pub actors: Vec<Actor>,
}

/// A scheduler's choice.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Choice {
    /// The actor (by index) runs its next step.
    Run(usize),
    /// The actor's `Cancel` in flight waits out its window and returns.
    Expire(usize),
}

/// What a choice led to: the results steps returned, and any invariant broken.
#[derive(Debug, Default)]
pub(crate) struct Effect {
    /// (step index, result).
    pub results: Vec<(usize, Res)>,
    pub violations: Vec<String>,
    /// Uses of an object after its last `Release`.
    pub hazards: Vec<String>,
    /// A use of a variable after its last `Release` (a server's late completion is
    /// legitimate, but the script runner refuses a released variable: not replayed).
    pub unreplayable: bool,
}

impl World {
    /// Whether every actor has run all its steps.
    pub(crate) fn done(&self, p: &Program) -> bool {
        (0..p.actors.len()).all(|a| p.next_step(self, a).is_none())
    }

    fn obj(&self, p: &Program, var: &str) -> Option<usize> {
        self.vars[p.var(var)?]
    }

    fn new_obj(&mut self, p: &Program, bind: Option<&str>, obj: Obj) {
        self.objs.push((obj, 1));
        if let Some(v) = bind.and_then(|b| p.var(b)) {
            self.vars[v] = Some(self.objs.len() - 1);
        }
    }

    fn call_mut(&mut self, k: usize) -> Option<&mut CallObj> {
        match &mut self.objs[k].0 {
            Obj::Call(c) => Some(c),
            _ => None,
        }
    }

    /// The choices that can be taken now: an actor whose next step can run (its variables
    /// bound, and the model says it returns or takes effect), or whose finite `Cancel` is in
    /// flight. Each comes with the state after it.
    pub(crate) fn successors(&self, p: &Program) -> Vec<(Choice, World, Effect)> {
        let mut out = Vec::new();
        for a in 0..p.actors.len() {
            if let Some(step) = self.actors[a].cancel {
                if let Some(r) = self.expire(p, a, step) {
                    out.push((Choice::Expire(a), r.0, r.1));
                }
                continue;
            }
            if p.next_step(self, a).is_some() {
                let mut w = self.clone();
                let mut fx = Effect::default();
                if w.run(p, a, &mut fx) {
                    out.push((Choice::Run(a), w, fx));
                }
            }
        }
        out
    }

    /// Each call object, by the first variable naming it, and its state.
    pub(crate) fn call_states(&self, p: &Program) -> Vec<(String, CallState)> {
        let mut names: Vec<(&String, usize)> = p.vars.iter().map(|(n, &v)| (n, v)).collect();
        names.sort_by_key(|&(_, v)| v);
        let mut out = Vec::new();
        let mut seen = Vec::new();
        for (name, v) in names {
            let Some(k) = self.vars[v] else { continue };
            if let (Obj::Call(c), false) = (&self.objs[k].0, seen.contains(&k)) {
                seen.push(k);
                out.push((name.clone(), c.model.state()));
            }
        }
        out
    }

    /// Why each unfinished actor cannot go on (for a deadlock).
    pub(crate) fn stuck(&self, p: &Program) -> Vec<String> {
        (0..p.actors.len())
            .filter_map(|a| {
                let step = self.actors[a].cancel.or_else(|| p.next_step(self, a))?;
                let s = &p.steps[step];
                Some(format!(
                    "{} waits in line {}: {}",
                    p.actors[a], s.line, s.text
                ))
            })
            .collect()
    }

    fn expire(&self, p: &Program, a: usize, step: usize) -> Option<(World, Effect)> {
        let Some(COp::Model(Checked::Cancel { call, seconds })) = &p.ops[step] else {
            return None;
        };
        let mut w = self.clone();
        let mut fx = Effect::default();
        let k = w.obj(p, call)?;
        let res = match w.call_mut(k) {
            Some(c) if c.model.cancel_in_flight().is_some() => {
                if *seconds == INFINITE {
                    return None;
                }
                match c.model.cancel_timeout() {
                    ModelOutcome::CancelReturns(hr) => Res::hr(hr),
                    other => {
                        fx.violations
                            .push(format!("the window's end gave {other:?}"));
                        return Some((w, fx));
                    }
                }
            }
            // Released (or no longer followed) while the Cancel waited: it returns.
            _ => as_written(&p.steps[step]),
        };
        w.actors[a].cancel = None;
        w.actors[a].pc += 1;
        fx.results.push((p.report_at[step], res));
        Some((w, fx))
    }

    /// Runs actor `a`'s next step; `false` if it cannot run now (it blocks).
    fn run(&mut self, p: &Program, a: usize, fx: &mut Effect) -> bool {
        let Some(step) = p.next_step(self, a) else {
            return false;
        };
        let s = &p.steps[step];
        let uses = match &s.kind {
            StepKind::Do { op, .. } | StepKind::Start { op, .. } => op.uses(),
            _ => Vec::new(),
        };
        if uses.iter().any(|v| self.obj(p, v).is_none()) {
            return false; // a variable another actor has not bound yet
        }
        // The server holds its own reference to its calls: a late completion is not a use.
        let server_side = matches!(
            &p.ops[step],
            Some(COp::Model(
                Checked::Complete { .. } | Checked::Fail { .. } | Checked::ServerTestCancel { .. }
            ))
        );
        for v in &uses {
            let k = self.obj(p, v).expect("bound");
            if self.objs[k].1 == 0 {
                fx.unreplayable = true;
            }
            if self.objs[k].1 == 0 && !server_side {
                fx.hazards.push(format!(
                    "line {}: {} uses `{v}` after its last Release",
                    s.line, p.actors[a]
                ));
            }
        }
        let bind = match &s.kind {
            StepKind::Do { bind, .. } => bind.as_deref(),
            _ => None,
        };
        let res = match &p.ops[step] {
            None => return false,
            Some(COp::NotModelled) => as_written(s),
            Some(COp::AddRef(target)) => {
                let k = self.obj(p, target).expect("bound");
                self.objs[k].1 += 1;
                count(self.objs[k].1)
            }
            Some(COp::Model(op)) => match self.apply(p, a, step, bind, op, fx) {
                Run::Blocks => return false,
                Run::InFlight => {
                    self.actors[a].cancel = Some(step);
                    return true;
                }
                Run::Done(r) => r,
            },
        };
        self.actors[a].pc += 1;
        fx.results.push((p.report_at[step], res));
        if let Some(c) = self.objs.iter().find_map(|(o, _)| match o {
            Obj::Call(c) => c.model.check_invariants().err(),
            _ => None,
        }) {
            fx.violations
                .push(format!("the call object's invariant broke: {c}"));
        }
        true
    }
}

/// What applying an operation did.
enum Run {
    Blocks,
    InFlight,
    Done(Res),
}

fn count(n: u32) -> Res {
    Res {
        hr: None,
        outs: Vec::new(),
        count: Some(n),
        note: None,
    }
}

/// A step the model does not cover returns what the script says.
fn as_written(s: &Step) -> Res {
    match &s.expect {
        Some(e) => Res {
            hr: Some(e.hr),
            outs: e.values.clone(),
            count: None,
            note: Some("not modelled: as written"),
        },
        None => Res {
            hr: None,
            outs: Vec::new(),
            count: None,
            note: Some("not modelled"),
        },
    }
}

fn outcome_res(o: &ModelOutcome) -> Res {
    Res::hr(o.hr().unwrap_or(S_OK))
}

mod apply;
