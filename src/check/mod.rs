//! Every interleaving of a scenario's actors, on the reference model.
//!
//! A scenario script (`docs/scenarios.md`) is run by `comasync run` in one order: the order it
//! is written in. The checker treats each actor's statements as a thread and enumerates the
//! orders in which those threads can take their steps, on the pure sequential model
//! (`crate::model`: call objects, events, containers, `CoWaitForMultipleHandles`). It reports,
//! per step, every result some order gives with a shortest schedule giving it, and the
//! invariant violations it reaches, each with its schedule. `docs/checking.md` is the guide.
//!
//! ```
//! use comasync::check::{check_source, Bounds};
//!
//! let script = "\
//! server = SimpleStream \"hello, world\"
//! client: factory = QueryInterface server ICallFactory -> S_OK
//! client: call = CreateCall factory AsyncISimpleStream -> S_OK
//! client: Begin_Read call 5                             -> S_OK
//! client: Wait call 0                                   -> RPC_S_CALLPENDING | S_OK
//! server: Complete call                                 -> S_OK \"hello\"
//! client: Finish_Read call                              -> S_OK \"hello\"
//! ";
//! let report = check_source("race.cas", script, &Bounds::default()).unwrap();
//! assert!(report.passed(), "{report}");
//! // The server may complete before the Wait: the second result, with its schedule.
//! let wait = report.step(5).unwrap();
//! assert_eq!(wait.outcomes.len(), 2);
//! ```
//!
//! # What is enumerated
//!
//! A state is every model object the variables name plus each actor's position. A choice is
//! an actor taking its next step (possible when the variables it uses are bound and the model
//! says the operation returns or takes effect — a blocking `Finish_`, an `INFINITE` wait on a
//! clear object, a server `Complete` with no call waiting for it cannot be taken yet), or a
//! `Cancel` in flight waiting out its finite window. `start` … `join` is the actor's thread
//! running the operation: its result is reported at the `join`.
//!
//! # Invariants
//!
//! Checked on every transition: a `Finish_` returns only a result some server completion
//! produced, for the call being finished, at most once; the call object's own invariants
//! hold; after the last `Release` the call object is gone; no `Release` without a reference.
//! A state where no choice is left and some actor has not finished is a deadlock: reported
//! with its schedule, and a failure if it is the written order's or
//! [`Bounds::hazards_fail`] is set (scripts written for `comasync run`'s one order often
//! rely on it: a helper that begins a call only after the client finished). The
//! written order must give each step's first expected result; results listed after `|` and
//! `always`/`never`/`sometimes` properties are checked over every order explored.
//!
//! # The implementation
//!
//! The schedules found (a shortest one per step result, the written order, each violation's),
//! each completed to the end in written order, are driven on the real objects by the script
//! runner with the statements in the schedule's order and the model's results as
//! expectations ([`ImplReplay`]); a seeded sample of [`Bounds::replay`] of them when there
//! are more. Schedules in which a `Cancel`'s window must end (real time) are skipped.
//!
//! Operations the model does not cover (object creation, `QueryInterface` on a server, a new
//! statement the checker does not know yet) return what the script says they return — the
//! adapter in `world.rs` is the one place that reads the script's operations.
//!
//! Apartment statements (`CoInitializeEx`, `Marshal`, `Unmarshal`, `Pump`, `Call`, ...) are
//! outside this model (no apartments, message queues or proxies): a script is explored only
//! up to the first one, the whole script is run in its written order on the implementation,
//! and [`Report::not_explored`] says so.

mod explore;
mod explorer;
mod implementation;
mod report;
mod world;

use std::time::{Duration, Instant};

pub use explore::Taken;
pub use explorer::{Explorer, Next, Other, View};
pub use implementation::ImplReplay;
pub use report::{Outcome, StepReport, Violation};
pub use world::{Choice, Res};

use crate::script::parse::{self, SyntaxError};
use crate::script::Registry;
use world::Program;

/// How far the checker looks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// The longest schedule explored, in choices.
    pub max_steps: usize,
    /// The most distinct states kept.
    pub max_states: usize,
    /// Whether a hazard in an order other than the written one — a deadlock, or an object
    /// used after its last `Release` — fails the check (hazards are always reported).
    pub hazards_fail: bool,
    /// The most schedules driven on the real objects (0: none); with more, a sample.
    pub replay: usize,
    /// The seed of that sample.
    pub seed: u64,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_steps: 500,
            max_states: 1_000_000,
            hazards_fail: false,
            replay: 64,
            seed: 1,
        }
    }
}

/// What the checker found for one script.
#[derive(Clone, Debug)]
pub struct Report {
    /// The script's name.
    pub name: String,
    /// Every step that returns something, in script order.
    pub steps: Vec<StepReport>,
    /// Invariant violations and unmet expectations, each with a schedule.
    pub violations: Vec<Violation>,
    /// Orders in which actors wait for something that never comes (who waits where), or use
    /// an object after its last `Release`, each with a schedule. A failure when
    /// [`Bounds::hazards_fail`] is set (a written order that deadlocks is a violation).
    pub hazards: Vec<Violation>,
    /// Whether hazards fail the check ([`Bounds::hazards_fail`]).
    pub hazards_fail: bool,
    /// The implementation driven along the schedules found (each step's results, the
    /// written order, the violations), compared with the model.
    pub implementation: ImplReplay,
    /// The written order, replayed on the model.
    pub written: Vec<Taken>,
    /// Distinct states explored.
    pub states: usize,
    /// Transitions taken (including those into states already seen).
    pub transitions: usize,
    /// Interleavings from the start to an end state (counted over the state graph).
    pub schedules: f64,
    /// `true` when a bound stopped the search: results and violations are then those of the
    /// orders explored.
    pub bounded: bool,
    /// Time taken.
    pub elapsed: Duration,
    /// Why part of the script was not explored, if so: a script with apartment operations
    /// is explored only up to the first one (when the statements before it make a script),
    /// and run whole in its written order.
    pub not_explored: Option<String>,
}

impl Report {
    /// No violation found (and no hazard, when hazards fail).
    pub fn passed(&self) -> bool {
        self.violations.is_empty()
            && (!self.hazards_fail || self.hazards.is_empty())
            && self.implementation.divergences.is_empty()
    }

    /// The step at script line `line`.
    pub fn step(&self, line: usize) -> Option<&StepReport> {
        self.steps.iter().find(|s| s.line == line)
    }
}

/// Checks a script against the default registry.
pub fn check_source(name: &str, source: &str, bounds: &Bounds) -> Result<Report, SyntaxError> {
    check_source_with(&Registry::new(), name, source, bounds)
}

/// Checks a script that names `registry`'s interfaces and servers.
pub fn check_source_with(
    registry: &Registry,
    name: &str,
    source: &str,
    bounds: &Bounds,
) -> Result<Report, SyntaxError> {
    let steps = parse::parse(source, registry)?;
    let started = Instant::now();
    if let Some(s) = steps.iter().find(|s| match &s.kind {
        parse::StepKind::Do { op, .. } | parse::StepKind::Start { op, .. } => op.is_apartment(),
        _ => false,
    }) {
        // The statements before it are explored as a script of their own, when they are one
        // (every `start` among them joined); the whole script runs in its written order.
        let prefix: String = source
            .lines()
            .take(s.line - 1)
            .map(|l| format!("{l}\n"))
            .collect();
        let explorable = parse::parse(&prefix, registry)
            .is_ok_and(|p| p.iter().any(|s| !matches!(s.kind, parse::StepKind::Say(_))));
        let mut whole = not_explored(registry, name, source, s, started);
        if !explorable {
            return Ok(whole);
        }
        let mut report = check_source_with(registry, name, &prefix, bounds)?;
        report
            .implementation
            .divergences
            .append(&mut whole.implementation.divergences);
        report.not_explored = whole
            .not_explored
            .take()
            .map(|why| why.replacen("not explored:", "explored up to", 1));
        return Ok(report);
    }
    let program = Program::new(steps);
    let found = explore::explore(&program, bounds);
    let mut report = report::build(name, &program, found, started.elapsed());
    report.hazards_fail = bounds.hazards_fail;
    if bounds.replay > 0 {
        let choices = |s: &[Taken]| s.iter().map(|t| t.choice).collect::<Vec<_>>();
        let mut prefixes = vec![choices(&report.written)];
        for s in &report.steps {
            prefixes.extend(s.outcomes.iter().map(|o| choices(&o.schedule)));
        }
        prefixes.extend(report.violations.iter().map(|v| choices(&v.schedule)));
        let hazardous: Vec<Vec<Choice>> = report
            .hazards
            .iter()
            .filter(|h| !h.message.starts_with("deadlock"))
            .map(|h| choices(&h.schedule))
            .collect();
        report.implementation = implementation::replay_on_implementation(
            registry,
            &program,
            source,
            &hazardous,
            &prefixes,
            bounds.replay,
            bounds.seed,
        );
    }
    Ok(report)
}

/// The report for a script with apartment operations: the checker's model has no apartments
/// (no threads' apartments, no message queues, no proxies), so no order from the first one
/// on is explored; the written order is run on the implementation, where the scenario check
/// compares it with the reference model's apartment part (`script::model_check`).
fn not_explored(
    registry: &Registry,
    name: &str,
    source: &str,
    first: &parse::Step,
    started: Instant,
) -> Report {
    let mut implementation = ImplReplay {
        replayed: 1,
        candidates: 1,
        ..ImplReplay::default()
    };
    let mut sink = std::io::sink();
    let opts = crate::script::RunOptions::default();
    if let Err(e) =
        crate::script::run::run_source_with(registry, "written order", source, &opts, &mut sink)
    {
        implementation.divergences.push((Vec::new(), e.to_string()));
    }
    Report {
        name: name.to_string(),
        steps: Vec::new(),
        violations: Vec::new(),
        hazards: Vec::new(),
        hazards_fail: false,
        implementation,
        written: Vec::new(),
        states: 0,
        transitions: 0,
        schedules: 1.0,
        bounded: false,
        elapsed: started.elapsed(),
        not_explored: Some(format!(
            "not explored: line {}: `{}` is an apartment or security operation, which the \
             checker's model does not have; the whole script was run in its written order (on the \
             implementation, checked against the reference model)",
            first.line, first.text
        )),
    }
}

impl Registry {
    /// [`check_source_with`] this registry.
    pub fn check_source(
        &self,
        name: &str,
        source: &str,
        bounds: &Bounds,
    ) -> Result<Report, SyntaxError> {
        check_source_with(self, name, source, bounds)
    }
}

#[cfg(test)]
mod tests;
