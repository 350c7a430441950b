//! The search: breadth-first over the scheduler's choices from the first state, each state
//! kept once (by a 64-bit hash of the whole [`World`]), so the first schedule found for a
//! result is a shortest one. Every transition's effect is recorded; a state with no choice
//! left whose actors are not all done is a deadlock.

use std::collections::hash_map::DefaultHasher;
use std::collections::{HashMap, VecDeque};
use std::hash::{Hash, Hasher};

use super::world::{Choice, Program, Res, World};
use super::Bounds;

/// A parent pointer: the node it came from and the choice taken.
#[derive(Clone, Copy)]
struct Node {
    parent: u32,
    choice: Option<Choice>,
}

/// What the search found.
pub(crate) struct Found {
    /// Per reported step: each distinct result with a shortest schedule giving it, in the
    /// order found.
    pub results: Vec<Vec<(Res, Vec<Choice>)>>,
    /// Invariant violations (message, schedule), each message once.
    pub violations: Vec<(String, Vec<Choice>)>,
    /// Deadlocks (who waits where) and uses after the last release, with a schedule, each
    /// once.
    pub hazards: Vec<(String, Vec<Choice>)>,
    pub states: usize,
    pub transitions: usize,
    /// Interleavings from the first state to an end state (saturating).
    pub schedules: f64,
    /// `true` when the search stopped at a bound rather than running out of states.
    pub bounded: bool,
}

fn hash(w: &World) -> u64 {
    let mut h = DefaultHasher::new();
    w.hash(&mut h);
    h.finish()
}

fn path(nodes: &[Node], mut n: u32) -> Vec<Choice> {
    let mut out = Vec::new();
    while let Some(c) = nodes[n as usize].choice {
        out.push(c);
        n = nodes[n as usize].parent;
    }
    out.reverse();
    out
}

/// Most violations kept per script.
const MAX_VIOLATIONS: usize = 20;

pub(crate) fn explore(p: &Program, bounds: &Bounds) -> Found {
    let mut found = Found {
        results: vec![Vec::new(); p.steps.len()],
        violations: Vec::new(),
        hazards: Vec::new(),
        states: 1,
        transitions: 0,
        schedules: 0.0,
        bounded: false,
    };
    let first = p.initial();
    let mut nodes = vec![Node {
        parent: u32::MAX,
        choice: None,
    }];
    let mut paths = vec![1.0f64];
    let mut seen: HashMap<u64, u32> = HashMap::new();
    seen.insert(hash(&first), 0);
    let mut queue = VecDeque::from([(0u32, first, 0usize)]);
    while let Some((n, w, depth)) = queue.pop_front() {
        if w.done(p) {
            found.schedules += paths[n as usize];
            continue;
        }
        let next = w.successors(p);
        if next.is_empty() {
            let msg = format!("deadlock: {}", w.stuck(p).join("; "));
            add(&mut found.hazards, msg, || path(&nodes, n));
            continue;
        }
        if depth >= bounds.max_steps {
            found.bounded = true;
            continue;
        }
        for (choice, child, fx) in next {
            found.transitions += 1;
            for (step, res) in fx.results {
                let list = &mut found.results[step];
                if !list.iter().any(|(r, _)| *r == res) {
                    let mut sched = path(&nodes, n);
                    sched.push(choice);
                    list.push((res, sched));
                }
            }
            for v in fx.hazards {
                add(&mut found.hazards, v, || {
                    let mut s = path(&nodes, n);
                    s.push(choice);
                    s
                });
            }
            for v in fx.violations {
                add(&mut found.violations, v, || {
                    let mut s = path(&nodes, n);
                    s.push(choice);
                    s
                });
            }
            let h = hash(&child);
            if let Some(&k) = seen.get(&h) {
                paths[k as usize] += paths[n as usize];
                continue;
            }
            if seen.len() >= bounds.max_states {
                found.bounded = true;
                continue;
            }
            let k = nodes.len() as u32;
            nodes.push(Node {
                parent: n,
                choice: Some(choice),
            });
            paths.push(paths[n as usize]);
            seen.insert(h, k);
            queue.push_back((k, child, depth + 1));
        }
    }
    found.states = seen.len();
    found
}

fn add(list: &mut Vec<(String, Vec<Choice>)>, msg: String, sched: impl FnOnce() -> Vec<Choice>) {
    if list.len() < MAX_VIOLATIONS && !list.iter().any(|(m, _)| *m == msg) {
        list.push((msg, sched()));
    }
}

/// One step of a schedule, replayed: who ran what and what it returned.
#[derive(Clone, Debug)]
pub struct Taken {
    /// The scheduler's choice.
    pub choice: Choice,
    /// The actor.
    pub actor: String,
    /// The script line of the step the choice ran (for a window's end, the `Cancel`'s).
    pub line: usize,
    /// The index of that step in the script.
    pub(crate) step: Option<usize>,
    /// The statement.
    pub text: String,
    /// The results steps returned at this point (script line, result).
    pub results: Vec<(usize, Res)>,
    /// The index of the step each of `results` belongs to.
    pub(crate) result_steps: Vec<usize>,
    /// The step used a variable after its last `Release` (the runner cannot replay it).
    pub(crate) unreplayable: bool,
}

/// Replays `choices` from the first state; stops at the first choice that cannot be taken.
pub(crate) fn replay(p: &Program, choices: &[Choice]) -> (Vec<Taken>, World) {
    let mut w = p.initial();
    let mut out = Vec::new();
    for &c in choices {
        let (a, step) = match c {
            Choice::Run(a) => (a, p.next_step(&w, a)),
            Choice::Expire(a) => (a, w.actors[a].cancel),
        };
        let Some((_, next, fx)) = w.successors(p).into_iter().find(|(x, _, _)| *x == c) else {
            break;
        };
        let s = step.map(|i| &p.steps[i]);
        out.push(Taken {
            choice: c,
            actor: p.actors[a].clone(),
            line: s.map_or(0, |s| s.line),
            step,
            text: s.map_or_else(String::new, |s| s.text.clone()),
            result_steps: fx.results.iter().map(|(i, _)| *i).collect(),
            unreplayable: fx.unreplayable,
            results: fx
                .results
                .into_iter()
                .map(|(i, r)| (p.steps[i].line, r))
                .collect(),
        });
        w = next;
    }
    (out, w)
}

/// The order the script is written in: at each state, the choice whose step comes first in
/// the text (a `Cancel`'s window ends at its `join`). `Err` with the schedule so far if it
/// deadlocks.
pub(crate) fn written_order(p: &Program) -> Result<Vec<Choice>, Vec<Choice>> {
    complete(p, &[])
}

/// `prefix`, then the written order's choices from where it leads (`Err` if it deadlocks).
pub(crate) fn complete(p: &Program, prefix: &[Choice]) -> Result<Vec<Choice>, Vec<Choice>> {
    let (taken, mut w) = replay(p, prefix);
    let mut out: Vec<Choice> = taken.iter().map(|t| t.choice).collect();
    while !w.done(p) {
        let line = |c: &Choice| match *c {
            Choice::Run(a) => p.next_step(&w, a).map_or(usize::MAX, |i| p.steps[i].line),
            Choice::Expire(a) => w.actors[a]
                .cancel
                .map_or(usize::MAX, |i| p.steps[p.report_at[i]].line),
        };
        let Some((c, next, _)) = w.successors(p).into_iter().min_by_key(|(c, _, _)| line(c)) else {
            return Err(out);
        };
        out.push(c);
        w = next;
    }
    Ok(out)
}
