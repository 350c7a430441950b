//! From what the search found to a [`Report`]: schedules replayed into readable steps, the
//! script's expectations and properties judged, and the text `comasync check` prints.

use std::fmt;
use std::time::Duration;

use super::explore::{replay, written_order, Found, Taken};
use super::world::{Choice, Program, Res};
use super::Report;
use crate::script::parse::{Expect, Quantifier, StepKind};

/// One step's results over every order explored.
#[derive(Clone, Debug)]
pub struct StepReport {
    /// The script line.
    pub line: usize,
    /// The actor.
    pub actor: String,
    /// The statement.
    pub text: String,
    /// The expectation as written (after `->`), if any.
    pub expected: Option<String>,
    /// Each distinct result, the written order's first when it has one.
    pub outcomes: Vec<Outcome>,
}

/// One result a step can return.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The result.
    pub result: Res,
    /// Whether the script's expectation (first result or an alternative) allows it.
    pub expected: bool,
    /// Whether the written order gives it.
    pub written: bool,
    /// A shortest schedule that gives it.
    pub schedule: Vec<Taken>,
}

/// Something wrong, and an order that shows it.
#[derive(Clone, Debug)]
pub struct Violation {
    /// What is wrong.
    pub message: String,
    /// The schedule that reaches it.
    pub schedule: Vec<Taken>,
}

/// Whether `r` is the result `e` describes (a count is written as a number: `-> 0`).
pub(crate) fn meets(r: &Res, e: &Expect) -> bool {
    match (r.count, r.hr) {
        (Some(c), _) => e.hr.as_u32() == c,
        (None, Some(hr)) => e.matches(hr, &r.outs),
        (None, None) => false,
    }
}

fn show(e: &Expect) -> String {
    let mut s = e.to_string();
    for a in &e.also {
        s.push_str(&format!(" | {a}"));
    }
    s
}

fn results(rs: &[Expect]) -> String {
    rs.iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join(" | ")
}

pub(crate) fn build(name: &str, p: &Program, found: Found, elapsed: Duration) -> Report {
    let mut violations: Vec<Violation> = found
        .violations
        .iter()
        .map(|(m, s)| Violation {
            message: m.clone(),
            schedule: replay(p, s).0,
        })
        .collect();
    let (written, written_ok) = match written_order(p) {
        Ok(c) => (replay(p, &c).0, true),
        Err(c) => (replay(p, &c).0, false),
    };
    if !written_ok {
        violations.push(Violation {
            message: "the written order deadlocks".into(),
            schedule: written.clone(),
        });
    }
    let written_result = |line: usize| {
        written
            .iter()
            .flat_map(|t| t.results.iter())
            .find(|(l, _)| *l == line)
            .map(|(_, r)| r.clone())
    };
    let mut steps = Vec::new();
    for (i, s) in p.steps.iter().enumerate() {
        if matches!(s.kind, StepKind::Say(_) | StepKind::Start { .. }) {
            continue;
        }
        let mine = written_result(s.line);
        let e = s.expect.as_ref();
        let mut outcomes: Vec<Outcome> = found.results[i]
            .iter()
            .map(|(r, sched)| Outcome {
                result: r.clone(),
                expected: e.is_none_or(|e| {
                    meets(r, e) || e.also.iter().any(|a| meets(r, a)) || e.also.is_empty()
                }),
                written: mine.as_ref() == Some(r),
                schedule: replay(p, sched).0,
            })
            .collect();
        outcomes.sort_by_key(|o| !o.written);
        if let (Some(e), Some(r)) = (e, &mine) {
            if !meets(r, e) && r.note.is_none() {
                violations.push(Violation {
                    message: format!(
                        "line {}: {}: in the written order the model returns {r}, the script says {e}",
                        s.line, s.text
                    ),
                    schedule: written.clone(),
                });
            }
        }
        if let Some(e) = e {
            judge(
                s.line,
                &s.text,
                e,
                &outcomes,
                found.bounded,
                &mut violations,
            );
        }
        steps.push(StepReport {
            line: s.line,
            actor: s.actor.clone(),
            text: s.text.clone(),
            expected: e.map(show),
            outcomes,
        });
    }
    let hazards = found
        .hazards
        .iter()
        .map(|(m, s)| Violation {
            message: m.clone(),
            schedule: replay(p, s).0,
        })
        .collect();
    Report {
        name: name.to_string(),
        steps,
        violations,
        hazards,
        hazards_fail: false,
        implementation: Default::default(),
        written,
        states: found.states,
        transitions: found.transitions,
        schedules: found.schedules,
        bounded: found.bounded,
        elapsed,
        not_explored: None,
    }
}

/// The step's alternatives and properties over the outcomes found.
fn judge(
    line: usize,
    text: &str,
    e: &Expect,
    outcomes: &[Outcome],
    bounded: bool,
    violations: &mut Vec<Violation>,
) {
    let mut fail = |message: String, schedule: &[Taken]| {
        violations.push(Violation {
            message: format!("line {line}: {text}: {message}"),
            schedule: schedule.to_vec(),
        })
    };
    if !e.also.is_empty() {
        for o in outcomes.iter().filter(|o| !o.expected) {
            fail(
                format!(
                    "returns {} in this order; the script allows {}",
                    o.result,
                    show(e)
                ),
                &o.schedule,
            );
        }
    }
    for prop in &e.props {
        let hits = |o: &&Outcome| prop.results.iter().any(|r| meets(&o.result, r));
        match prop.quantifier {
            Quantifier::Always => {
                for o in outcomes.iter().filter(|o| !hits(o)) {
                    fail(
                        format!(
                            "returns {}: not always {}",
                            o.result,
                            results(&prop.results)
                        ),
                        &o.schedule,
                    );
                }
            }
            Quantifier::Never => {
                for o in outcomes.iter().filter(hits) {
                    fail(
                        format!(
                            "returns {}: never {} does not hold",
                            o.result,
                            results(&prop.results)
                        ),
                        &o.schedule,
                    );
                }
            }
            Quantifier::Sometimes => {
                if !outcomes.iter().any(|o| hits(&o)) {
                    let within = if bounded { " within the bounds" } else { "" };
                    fail(
                        format!("no order{within} returns {}", results(&prop.results)),
                        &[],
                    );
                }
            }
        }
    }
}

/// A schedule on one line: `4 client, 9 server, 8 t1 (window ends)`.
pub(crate) fn schedule_line(s: &[Taken]) -> String {
    s.iter()
        .map(|t| match t.choice {
            Choice::Run(_) => format!("{} {}", t.line, t.actor),
            Choice::Expire(_) => format!("{} {} (window ends)", t.line, t.actor),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "== {}", self.name)?;
        if let Some(why) = &self.not_explored {
            writeln!(f, "  {why}")?;
        }
        for s in &self.steps {
            let others: Vec<&Outcome> = s.outcomes.iter().filter(|o| !o.written).collect();
            if others.is_empty() {
                continue;
            }
            let first = s
                .outcomes
                .iter()
                .find(|o| o.written)
                .map_or_else(|| "-".to_string(), |o| o.result.to_string());
            writeln!(
                f,
                "  line {} {}: {}  -> {first} (written order)",
                s.line, s.actor, s.text
            )?;
            for o in others {
                let mark = if o.expected {
                    "also"
                } else {
                    "also, unexpected"
                };
                writeln!(f, "      {mark}: {}", o.result)?;
                writeln!(f, "        schedule: {}", schedule_line(&o.schedule))?;
            }
        }
        let deadlock = if self.hazards_fail {
            "VIOLATION"
        } else {
            "note: another order"
        };
        let all = self
            .violations
            .iter()
            .map(|v| ("VIOLATION", v))
            .chain(self.hazards.iter().map(|v| (deadlock, v)));
        for (what, v) in all {
            writeln!(f, "  {what}: {}", v.message)?;
            if !v.schedule.is_empty() {
                writeln!(f, "    schedule: {}", schedule_line(&v.schedule))?;
                for t in &v.schedule {
                    let rs: Vec<String> = t.results.iter().map(|(_, r)| r.to_string()).collect();
                    let what = match t.choice {
                        Choice::Run(_) => t.text.clone(),
                        Choice::Expire(_) => format!("({} : window ends)", t.text),
                    };
                    writeln!(
                        f,
                        "      {:>4} {}: {what}  -> {}",
                        t.line,
                        t.actor,
                        rs.join(", ")
                    )?;
                }
            }
        }
        let i = &self.implementation;
        for (sched, msg) in &i.divergences {
            writeln!(
                f,
                "  VIOLATION: the implementation disagrees along {}",
                schedule_line(sched)
            )?;
            for l in msg.lines() {
                writeln!(f, "      {l}")?;
            }
        }
        if i.candidates > 0 {
            let mut sample = match i.seed {
                Some(seed) => format!(" (a sample, seed {seed}, of {})", i.candidates),
                None => String::new(),
            };
            if i.opaque > 0 {
                sample.push_str(&format!(
                    " (only the written order: the script uses operations the model does not follow; {} other schedules not run)",
                    i.opaque
                ));
            }
            writeln!(
                f,
                "  implementation: {} schedules replayed{sample}, {} skipped (a Cancel window must end in real time, a deadlock, a use after Release), {} disagree",
                i.replayed,
                i.skipped,
                i.divergences.len()
            )?;
        }
        let bound = if self.bounded {
            ", stopped at a bound"
        } else {
            ""
        };
        writeln!(
            f,
            "  {}: {} states, {} transitions, {} schedules, {:.1} ms{bound}",
            if self.passed() { "ok" } else { "FAILED" },
            self.states,
            self.transitions,
            self.schedules,
            self.elapsed.as_secs_f64() * 1e3
        )
    }
}
