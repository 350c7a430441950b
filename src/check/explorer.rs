//! Stepping through a script by hand: you are the scheduler. An [`Explorer`] holds a parsed
//! script and the checker's report for it; [`Explorer::view`] replays a schedule (the choices
//! so far) and says what each actor can do next, every call object's state, and where the
//! checker knows that another order gives another result. `comasync explore` serves it as a
//! web page.
//!
//! Invariant: a view is a pure function of the script and the schedule — stepping back is
//! viewing a shorter schedule.

use super::explore::{replay, Taken};
use super::world::{Choice, Program};
use super::{Bounds, Report};
use crate::model::State;
use crate::script::parse::{self, SyntaxError};
use crate::script::Registry;

/// A script ready to be stepped through.
#[derive(Debug)]
pub struct Explorer {
    program: Program,
    report: Report,
}

/// One choice the scheduler can take now.
#[derive(Clone, Debug)]
pub struct Next {
    /// The choice.
    pub choice: Choice,
    /// The actor.
    pub actor: String,
    /// The script line of the statement it runs (for a window's end, the `Cancel`'s).
    pub line: usize,
    /// The statement.
    pub text: String,
}

/// A result another order gives, and a shortest schedule to it.
#[derive(Clone, Debug)]
pub struct Other {
    /// The script line of the step.
    pub line: usize,
    /// The statement.
    pub text: String,
    /// The result in that order.
    pub result: String,
    /// The schedule.
    pub schedule: Vec<Choice>,
}

/// Where a schedule leads.
#[derive(Clone, Debug)]
pub struct View {
    /// The choices taken, replayed (as many as could be taken).
    pub taken: Vec<Taken>,
    /// What can be chosen next.
    pub next: Vec<Next>,
    /// Each call object (by the first variable naming it) and its state.
    pub calls: Vec<(String, State)>,
    /// Every actor has finished.
    pub done: bool,
    /// Actors that cannot go on, if none can (a deadlock): who waits where.
    pub stuck: Vec<String>,
    /// Results other orders give for the steps, unlike this schedule (or not yet seen in it).
    pub others: Vec<Other>,
}

impl Explorer {
    /// Parses `source` (default registry) and checks it (no implementation replay).
    pub fn new(name: &str, source: &str) -> Result<Explorer, SyntaxError> {
        let registry = Registry::new();
        let bounds = Bounds {
            replay: 0,
            ..Bounds::default()
        };
        let report = super::check_source_with(&registry, name, source, &bounds)?;
        let program = Program::new(parse::parse(source, &registry)?);
        Ok(Explorer { program, report })
    }

    /// The checker's report.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The written order's schedule.
    pub fn written(&self) -> Vec<Choice> {
        self.report.written.iter().map(|t| t.choice).collect()
    }

    /// The script's statements: (line, actor, text, the object it acts on: the variable it
    /// binds or the first it uses).
    pub fn statements(&self) -> Vec<(usize, String, String, Option<String>)> {
        use crate::script::parse::StepKind;
        self.program
            .steps
            .iter()
            .map(|s| {
                let target = match &s.kind {
                    StepKind::Do { bind: Some(b), .. } => Some(b.clone()),
                    StepKind::Do { op, .. } | StepKind::Start { op, .. } => {
                        op.uses().first().map(|v| v.to_string())
                    }
                    _ => None,
                };
                (s.line, s.actor.clone(), s.text.clone(), target)
            })
            .collect()
    }

    /// Replays `schedule` and says what can happen next.
    pub fn view(&self, schedule: &[Choice]) -> View {
        let p = &self.program;
        let (taken, w) = replay(p, schedule);
        let next = w
            .successors(p)
            .into_iter()
            .map(|(c, _, _)| {
                let (a, step) = match c {
                    Choice::Run(a) => (a, p.next_step(&w, a)),
                    Choice::Expire(a) => (a, w.actors[a].cancel),
                };
                let s = step.map(|i| &p.steps[i]);
                Next {
                    choice: c,
                    actor: p.actors[a].clone(),
                    line: s.map_or(0, |s| s.line),
                    text: s.map_or_else(String::new, |s| s.text.clone()),
                }
            })
            .collect::<Vec<_>>();
        let done = w.done(p);
        let stuck = if next.is_empty() && !done {
            w.stuck(p)
        } else {
            Vec::new()
        };
        let got = |line: usize| {
            taken
                .iter()
                .flat_map(|t| t.results.iter())
                .find(|(l, _)| *l == line)
                .map(|(_, r)| r.clone())
        };
        let mut others = Vec::new();
        for s in &self.report.steps {
            let mine = got(s.line);
            for o in &s.outcomes {
                if s.outcomes.len() > 1 && mine.as_ref() != Some(&o.result) {
                    others.push(Other {
                        line: s.line,
                        text: s.text.clone(),
                        result: o.result.to_string(),
                        schedule: o.schedule.iter().map(|t| t.choice).collect(),
                    });
                }
            }
        }
        View {
            taken,
            next,
            calls: w.call_states(p),
            done,
            stuck,
            others,
        }
    }
}

impl Choice {
    /// `r3` (actor 3 runs its next statement) or `e3` (actor 3's `Cancel` window ends).
    pub fn code(&self) -> String {
        match self {
            Choice::Run(a) => format!("r{a}"),
            Choice::Expire(a) => format!("e{a}"),
        }
    }

    /// The inverse of [`Choice::code`].
    pub fn parse(s: &str) -> Option<Choice> {
        let n = s.get(1..)?.parse().ok()?;
        match s.as_bytes().first()? {
            b'r' => Some(Choice::Run(n)),
            b'e' => Some(Choice::Expire(n)),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_procedure_step_by_step_and_back() {
        let src = include_str!("../../scenarios/seed_procedure.cas");
        let x = Explorer::new("seed", src).unwrap();
        let written = x.written();
        let v = x.view(&written[..5]);
        assert_eq!(v.calls, vec![("call".to_string(), State::Pending)]);
        // Every actor with something to do has a button; the server may complete now.
        assert!(v.next.iter().any(|n| n.actor == "server"));
        let all = x.view(&written);
        assert!(all.done && all.next.is_empty());
        assert_eq!(all.calls, vec![("call".to_string(), State::Gone)]);
        // The Wait call 0 at line 9 gives S_OK in another order, and the view can jump there.
        let other = all.others.iter().find(|o| o.line == 9).unwrap();
        assert_eq!(other.result, "S_OK");
        let there = x.view(&other.schedule);
        assert_eq!(there.taken.len(), other.schedule.len());
        assert_eq!(
            Choice::parse(&Choice::Expire(2).code()),
            Some(Choice::Expire(2))
        );
        assert_eq!(Choice::parse("x1"), None);
    }
}
