//! Runs one operation sequence against comasync's real objects and against the reference model
//! ([`crate::model`]), step by step, and reports the first step where they disagree.
//!
//! * [`check_call_ops`] (`call.rs`): a real [`CallObject`](crate::call::CallObject) for
//!   [`IProbe`](super::IProbe), served by a [`ManualHandler`](crate::call::ManualHandler) so that
//!   the server completes exactly when the sequence says ([`ModelOp::ServerComplete`]), against a
//!   [`CallModel`]. After every step the runner also compares the states
//!   ([`CallObject::state`](crate::call::CallObject::state) against [`CallModel::state`]), the
//!   call's event and the client's COM reference count; at the end it releases everything and
//!   checks that the call object's memory is gone.
//! * [`check_world_ops`] (`world.rs`): real `ManualResetEvent`s / `StdEvent`s, a
//!   `SynchronizeContainer` and
//!   [`co_wait_for_multiple_handles`](crate::sync::co_wait_for_multiple_handles) against a
//!   [`World`]; after every step each event's signaled state is compared.
//!
//! # What is executed and what is skipped
//!
//! A step is *skipped* (recorded, not run on either side) when
//!
//! * the model says it [blocks](ModelOutcome::Blocks) (an `INFINITE` wait on an unsignaled object,
//!   a blocking `Finish_` before completion): the model's state does not change, and the real
//!   call would never return;
//! * the model says it is [not applicable](ModelOutcome::Invalid) (a `CancelTimeout` with no finite
//!   `Cancel` in flight, a second final `Release`);
//! * it is a `Release` while a `Cancel` is in flight (the `Cancel`'s caller holds a reference,
//!   so the release would not be final);
//! * a 1 s `Cancel` window is running and the step is not its [`ModelOp::CancelTimeout`]: only the
//!   expiry is deterministic — any other step could race with the real timer;
//! * it is the `CancelTimeout` of a window longer than 1 s (3600 s or infinite windows are
//!   resolved by the server's completion), or a `Cancel(1)` with
//!   [`RunOptions::short_cancel_windows`] off.
//!
//! (The last two apply to real time only: under the [virtual clock](RunOptions::virtual_clock)
//! every step runs while a window is open and every finite window may expire.)
//!
//! In real time a `Cancel(s > 0)` runs on a helper thread (it blocks for its window); the runner
//! waits until the call object is in `Cancelling`, and collects the `Cancel`'s return value when
//! the sequence resolves it. Under the virtual clock the runner makes the request and ends the
//! window itself, through two crate-private hooks of the call object (`virtual_cancel_request`,
//! `virtual_cancel_window_over`) that share the real `Cancel`'s code for the window's end; finite
//! wait timeouts run as 0. Every real operation the model says returns is bounded by
//! [`RunOptions::hang_limit`]: one that does not return is reported, never hangs the test.
//!
//! # One step loop
//!
//! Both runs share one loop (`Run::step`): ask the model (`Predict::predict`), skip or execute
//! on the real objects (`Side::skip_reason`, `Side::exec`), compare the outcomes, adopt the
//! model's next state and compare the states (`Side::check_state`). The call object
//! (`call.rs`) and the events (`world.rs`) differ only in those answers.

use std::fmt::{self, Write as _};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::hresult::HRESULT;
use crate::model::{CallModel, ModelOp, ModelOutcome, World, INFINITE};

mod call;
mod world;

pub use call::check_call_ops;
pub use world::check_world_ops;

/// How a run executes the sequence.
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Run `Cancel(1)` and let its window expire at [`ModelOp::CancelTimeout`] (about a second of
    /// wall time each). Off: `Cancel(1)` steps are skipped (the fuzz targets turn it off).
    pub short_cancel_windows: bool,
    /// How long a real operation that the model says returns may take before the run reports
    /// it as hung.
    pub hang_limit: Duration,
    /// Run every real call that could block forever (an `INFINITE` wait, a blocking
    /// `Finish_`) on a helper thread bounded by [`RunOptions::hang_limit`]. Off: run it inline
    /// and rely on an outer timeout (libFuzzer's `-timeout`), which is much faster.
    pub guard_blocking_calls: bool,
    /// The virtual clock: no wall time passes, so a run is CPU-bound. A finite wait timeout
    /// counts as already expired (it runs as a timeout of 0, so on an unsignaled object it
    /// returns `RPC_S_CALLPENDING` at once); a `Cancel(s > 0)` makes its request and returns
    /// to the runner with its window open (no helper thread), and the window ends when the
    /// sequence says — at [`ModelOp::CancelTimeout`] for any finite `s` (1 s and 3600 s alike), or
    /// at the server's completion. Every other step runs while a window is open. Off: real
    /// waits and a helper thread per windowed `Cancel`, as described in the
    /// [module documentation](self).
    pub virtual_clock: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            short_cancel_windows: true,
            hang_limit: Duration::from_secs(20),
            guard_blocking_calls: true,
            virtual_clock: false,
        }
    }
}

impl RunOptions {
    /// The options the fuzz targets use: the [virtual clock](RunOptions::virtual_clock) (no
    /// sleep, no helper thread; every cancel window may expire), blocking calls run inline
    /// (libFuzzer's `-timeout` reports a hang).
    pub fn fast() -> Self {
        RunOptions {
            short_cancel_windows: true,
            hang_limit: Duration::from_secs(10),
            guard_blocking_calls: false,
            virtual_clock: true,
        }
    }

    /// The timeout a wait really runs with: under the [virtual clock](RunOptions::virtual_clock)
    /// a finite timeout has already expired (0); `INFINITE` stays.
    pub fn wait_timeout(&self, timeout: u32) -> u32 {
        if self.virtual_clock && timeout != INFINITE {
            0
        } else {
            timeout
        }
    }

    /// Runs the wait `f` with this (real) `timeout`: an `INFINITE` one as
    /// [`RunOptions::guarded`] runs it, a finite one inline.
    fn wait<T: Send + 'static>(
        &self,
        timeout: u32,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        if timeout == INFINITE {
            self.guarded(f)
        } else {
            Some(f())
        }
    }

    /// Runs `f`, on a bounded helper thread if [`RunOptions::guard_blocking_calls`] is set:
    /// `None` if it did not return within the hang limit.
    fn guarded<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Option<T> {
        if self.guard_blocking_calls {
            bounded(self.hang_limit, f)
        } else {
            Some(f())
        }
    }
}

/// What happened at one step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepResult {
    /// Both sides gave this outcome.
    Agreed(ModelOutcome),
    /// Not run on either side, for this reason.
    Skipped(String),
    /// The two sides disagree (the failing step).
    Disagreed {
        /// What the model says.
        expected: String,
        /// What the implementation did.
        got: String,
    },
}

/// One step of a run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepRecord {
    /// The operation.
    pub op: ModelOp,
    /// What happened.
    pub result: StepResult,
}

/// A run in which model and implementation agreed throughout.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Steps run on both sides.
    pub executed: usize,
    /// Steps skipped (see the [module documentation](self)).
    pub skipped: usize,
    /// Every step, including the clean-up steps the runner adds at the end.
    pub steps: Vec<StepRecord>,
}

/// The first disagreement between model and implementation, with the whole run up to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The index (in [`Mismatch::steps`]) of the failing step.
    pub at: usize,
    /// Every step up to and including the failing one.
    pub steps: Vec<StepRecord>,
    /// The setup: the `Finish_` mode, or the events' kinds.
    pub setup: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "model and implementation disagree at step {} ({}):",
            self.at, self.setup
        )?;
        f.write_str(&format_steps(&self.steps))
    }
}

impl std::error::Error for Mismatch {}

/// Prints steps one per line: `  3: Finish_Read                 → S_OK, outs [7]`.
pub fn format_steps(steps: &[StepRecord]) -> String {
    let mut s = String::new();
    for (i, st) in steps.iter().enumerate() {
        let op = st.op.to_string();
        let _ = match &st.result {
            StepResult::Agreed(o) => writeln!(s, "  {i:>3}: {op:<44} → {}", describe(o)),
            StepResult::Skipped(why) => writeln!(s, "  {i:>3}: {op:<44}   (skipped: {why})"),
            StepResult::Disagreed { expected, got } => writeln!(
                s,
                "> {i:>3}: {op:<44} model: {expected}\n  {:>3}  {:<44} implementation: {got}",
                "", ""
            ),
        };
    }
    s
}

/// An `HRESULT` by its SDK name, or in hex ([`HRESULT::name_or_hex`]).
pub fn hr_name(hr: HRESULT) -> String {
    hr.name_or_hex()
}

/// A [`ModelOutcome`] in words: `S_OK`, `E_FAIL, outs [7]`, `blocks`, ...
pub fn describe(o: &ModelOutcome) -> String {
    match o {
        ModelOutcome::Returns(hr) => hr_name(*hr),
        ModelOutcome::Finished { hr, outs } => format!("{}, outs {outs:?}", hr_name(*hr)),
        ModelOutcome::Blocks => "blocks".into(),
        ModelOutcome::CancelInFlight => "Cancel in flight (waiting for the server)".into(),
        ModelOutcome::CancelReturns(hr) => {
            format!("window over: the Cancel returns {}", hr_name(*hr))
        }
        ModelOutcome::Delivered {
            cancel_returns: None,
        } => "delivered".into(),
        ModelOutcome::Delivered {
            cancel_returns: Some(hr),
        } => format!("delivered; the Cancel in flight returns {}", hr_name(*hr)),
        ModelOutcome::Dropped => "dropped (no call waits for it)".into(),
        ModelOutcome::Released { abandoned: true } => "released, call abandoned".into(),
        ModelOutcome::Released { abandoned: false } => "released".into(),
        ModelOutcome::CoWait { hr, index: Some(i) } => format!("{}, index {i}", hr_name(*hr)),
        ModelOutcome::CoWait { hr, index: None } => format!("{}, index not written", hr_name(*hr)),
        ModelOutcome::WaitMultiple {
            hr,
            position: Some(p),
        } => format!("{}, object #{p}", hr_name(*hr)),
        ModelOutcome::WaitMultiple { hr, position: None } => hr_name(*hr),
        ModelOutcome::Invalid(why) => format!("not applicable: {why}"),
    }
}

/// Runs `f` on a helper thread; `None` if it does not return within `limit` (the thread is
/// left blocked: the run is failing anyway).
pub(crate) fn bounded<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> Option<T> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(limit).ok()
}

/// Why a step cannot be compared: `Err` ends the run as a [`Mismatch`] at that step.
type Exec = Result<ModelOutcome, String>;

/// The real objects of one kind of run, with the model they are compared with: what the one
/// step loop ([`Run::step`]) asks of them.
trait Side {
    /// The model's state.
    type Model: Predict;

    /// The model the real objects are compared with.
    fn model(&mut self) -> &mut Self::Model;

    /// Why `op` is not run on either side, if it is not.
    fn skip_reason(&self, op: &ModelOp, expected: &ModelOutcome) -> Option<String>;

    /// Runs `op` (the run's step number `step`) on the real objects.
    fn exec(&mut self, op: &ModelOp, expected: &ModelOutcome, step: usize) -> Exec;

    /// After an agreed step: the states must match too; `Err((what the model says, what the
    /// implementation has))`.
    fn check_state(&self, expected: &ModelOutcome) -> Result<(), (String, String)>;
}

/// A model as the step loop uses it: the pure step `(state, op) → (outcome, next state)`.
trait Predict: Sized {
    /// What the model says `op` does, and its state after it (adopted only if both sides
    /// agree).
    fn predict(&self, op: &ModelOp) -> (ModelOutcome, Self);
}

impl Predict for CallModel {
    fn predict(&self, op: &ModelOp) -> (ModelOutcome, Self) {
        self.step(op)
    }
}

impl Predict for World {
    fn predict(&self, op: &ModelOp) -> (ModelOutcome, Self) {
        self.step(op)
    }
}

/// One run: a [`Side`] and the record of its steps.
struct Run<S> {
    side: S,
    steps: Vec<StepRecord>,
    executed: usize,
    skipped: usize,
    setup: String,
}

impl<S: Side> Run<S> {
    fn new(side: S, setup: String) -> Self {
        Run {
            side,
            steps: Vec::new(),
            executed: 0,
            skipped: 0,
            setup,
        }
    }

    /// The step loop's body: predict, skip or execute, compare outcomes, then states.
    fn step(&mut self, op: &ModelOp) -> Result<(), Mismatch> {
        let (expected, next) = self.side.model().predict(op);
        if let Some(why) = self.side.skip_reason(op, &expected) {
            self.skipped += 1;
            self.steps.push(StepRecord {
                op: op.clone(),
                result: StepResult::Skipped(why),
            });
            return Ok(());
        }
        self.executed += 1;
        let got = match self.side.exec(op, &expected, self.steps.len()) {
            Ok(got) if got == expected => got,
            Ok(got) => return Err(self.fail(op, describe(&expected), describe(&got))),
            Err(why) => return Err(self.fail(op, describe(&expected), why)),
        };
        *self.side.model() = next;
        if let Err((model, real)) = self.side.check_state(&expected) {
            return Err(self.fail(op, model, real));
        }
        self.steps.push(StepRecord {
            op: op.clone(),
            result: StepResult::Agreed(got),
        });
        Ok(())
    }

    /// Every step of `ops`, up to the first disagreement.
    fn run(&mut self, ops: &[ModelOp]) -> Result<(), Mismatch> {
        ops.iter().try_for_each(|op| self.step(op))
    }

    /// Records the step both sides disagreed on and hands the whole run over as a
    /// [`Mismatch`].
    fn fail(&mut self, op: &ModelOp, expected: String, got: String) -> Mismatch {
        self.steps.push(StepRecord {
            op: op.clone(),
            result: StepResult::Disagreed { expected, got },
        });
        Mismatch {
            at: self.steps.len() - 1,
            steps: std::mem::take(&mut self.steps),
            setup: self.setup.clone(),
        }
    }

    /// The run's record, once every step agreed.
    fn report(self) -> Report {
        Report {
            executed: self.executed,
            skipped: self.skipped,
            steps: self.steps,
        }
    }
}
