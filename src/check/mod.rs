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
//! [`Bounds::deadlocks_fail`] is set (scripts written for `comasync run`'s one order often
//! rely on it: a helper that begins a call only after the client finished). The
//! written order must give each step's first expected result; results listed after `|` and
//! `always`/`never`/`sometimes` properties are checked over every order explored.
//!
//! Operations the model does not cover (object creation, `QueryInterface` on a server, a new
//! statement the checker does not know yet) return what the script says they return — the
//! adapter in `world.rs` is the one place that reads the script's operations.

mod explore;
mod report;
mod world;

use std::time::{Duration, Instant};

pub use explore::Taken;
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
    /// Whether a deadlock in an order other than the written one fails the check (it is
    /// always reported).
    pub deadlocks_fail: bool,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            max_steps: 500,
            max_states: 1_000_000,
            deadlocks_fail: false,
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
    /// Orders in which actors wait for something that never comes, each with a schedule
    /// (who waits where). A failure when [`Bounds::deadlocks_fail`] is set or the written
    /// order deadlocks.
    pub deadlocks: Vec<Violation>,
    /// Whether deadlocks fail the check ([`Bounds::deadlocks_fail`]).
    pub deadlocks_fail: bool,
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
}

impl Report {
    /// No violation found (and no deadlock, when deadlocks fail).
    pub fn passed(&self) -> bool {
        self.violations.is_empty() && (!self.deadlocks_fail || self.deadlocks.is_empty())
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
    let program = Program::new(steps);
    let found = explore::explore(&program, bounds);
    let mut report = report::build(name, &program, found, started.elapsed());
    report.deadlocks_fail = bounds.deadlocks_fail;
    Ok(report)
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
