//! Runs one operation sequence against comasync's real objects and against the reference model
//! ([`crate::model`]), step by step, and reports the first step where they disagree.
//!
//! * [`check_call_ops`]: a real [`CallObject`] for [`IProbe`](super::IProbe), served by a
//!   [`ManualHandler`] so that the server completes exactly when the sequence says
//!   ([`ModelOp::ServerComplete`]), against a [`CallModel`]. After every step the runner also
//!   compares the states ([`CallObject::state`] against [`CallModel::state`]), the call's event
//!   and the client's COM reference count; at the end it releases everything and checks that
//!   the call object's memory is gone.
//! * [`check_world_ops`]: real `ManualResetEvent`s / `StdEvent`s, a `SynchronizeContainer` and
//!   [`co_wait_for_multiple_handles`] against a [`World`]; after every step each event's
//!   signaled state is compared.
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
//! In real time a `Cancel(s > 0)` runs on a helper thread (it blocks for its window); the
//! runner waits until the call object is in `Cancelling`, and collects the `Cancel`'s return
//! value when the sequence resolves it. Under the virtual clock the runner makes the request
//! and ends the window itself, through two crate-private hooks of the call object
//! (`virtual_cancel_request`, `virtual_cancel_window_over`) that share the real `Cancel`'s code
//! for the window's end; finite wait timeouts run as 0. Every real operation the model says returns is bounded by
//! [`RunOptions::hang_limit`]: one that does not return is reported, never hangs the test.

use crate::sync::observe::Observer;
use crate::sync::prim::Deadline;
use std::fmt::{self, Write as _};
use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use super::{AsyncIProbe, IProbeCalls, IProbeOut};
use crate::call::{self, AsyncInterface, CallObject, ICancelMethodCalls, ManualHandler, State};
use crate::guid::{
    IID_ICancelMethodCalls, IID_ISynchronize, IID_ISynchronizeHandle, IID_IUnknown, IID,
};
use crate::hresult::{HRESULT, S_OK};
use crate::model::{
    CallModel, EventClass, FinishMode, ModelOp, ModelOutcome, World, INFINITE,
    RPC_C_CANCEL_INFINITE_TIMEOUT,
};
use crate::sync::{
    co_wait_for_multiple_handles, ISynchronize, ISynchronizeContainer, ISynchronizeHandle,
    ManualResetEvent, StdEvent, SynchronizeContainer, HANDLE,
};
use crate::unknown::{query, ComPtr, IUnknown, Interface};

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

/// An [`ModelOutcome`] in words: `S_OK`, `E_FAIL, outs [7]`, `blocks`, ...
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

// ---------------------------------------------------------------------------------------------
// The call object
// ---------------------------------------------------------------------------------------------

/// A `Cancel(s > 0)` whose window is open.
struct InFlight {
    seconds: u32,
    how: Window,
}

enum Window {
    /// Running on a helper thread (real time).
    Thread {
        result: mpsc::Receiver<HRESULT>,
        thread: thread::JoinHandle<()>,
    },
    /// Under the virtual clock: the request was made; the runner ends the window. The
    /// pointer is the `Cancel` caller's reference, held while its `Cancel` "runs".
    Virtual {
        generation: u64,
        _caller: ComPtr<dyn ICancelMethodCalls>,
    },
}

struct CallRun {
    model: CallModel,
    obj: Arc<CallObject<IProbeCalls>>,
    client: Option<ComPtr<dyn AsyncIProbe>>,
    server: Arc<ManualHandler<IProbeCalls>>,
    cancel: Option<InFlight>,
    opts: RunOptions,
    steps: Vec<StepRecord>,
    executed: usize,
    skipped: usize,
    setup: String,
}

fn out_for(method: usize, outs: Vec<u32>) -> IProbeOut {
    if method == 0 {
        IProbeOut::Read { outs }
    } else {
        IProbeOut::Write { outs }
    }
}

/// What a `Finish_` returned, in the model's terms.
fn finish_outcome(expected: &ModelOutcome, hr: HRESULT, outs: Vec<u32>) -> ModelOutcome {
    if matches!(expected, ModelOutcome::Finished { .. }) || !outs.is_empty() {
        ModelOutcome::Finished { hr, outs }
    } else {
        ModelOutcome::Returns(hr)
    }
}

/// `QueryInterface(iid)` on `unk` with an out-slot of the interface's own type; the `HRESULT`.
/// The pointer obtained, if any, is released at once.
fn query_hr(unk: &dyn IUnknown, iid: &IID, async_iid: &IID) -> HRESULT {
    fn hr<I: ?Sized + Interface + IUnknown>(unk: &dyn IUnknown) -> HRESULT {
        match query::<I>(unk) {
            Ok(_) => S_OK,
            Err(e) => e.0,
        }
    }
    if iid == async_iid {
        hr::<dyn AsyncIProbe>(unk)
    } else if *iid == IID_IUnknown {
        hr::<dyn IUnknown>(unk)
    } else if *iid == IID_ISynchronize {
        hr::<dyn ISynchronize>(unk)
    } else if *iid == IID_ISynchronizeHandle {
        hr::<dyn ISynchronizeHandle>(unk)
    } else if *iid == IID_ICancelMethodCalls {
        hr::<dyn ICancelMethodCalls>(unk)
    } else {
        let mut slot: Option<ComPtr<dyn IUnknown>> = None;
        unk.query_interface(iid, &mut slot)
    }
}

impl CallRun {
    fn new(mode: FinishMode, opts: &RunOptions) -> CallRun {
        let server = ManualHandler::<IProbeCalls>::new();
        let obj = CallObject::<IProbeCalls>::new(server.clone(), None, mode);
        let client = ComPtr::new(IProbeCalls::upcast(obj.clone()));
        CallRun {
            model: CallModel::with_mode(super::PROBE_ASYNC_IID, mode),
            obj,
            client: Some(client),
            server,
            cancel: None,
            opts: opts.clone(),
            steps: Vec::new(),
            executed: 0,
            skipped: 0,
            setup: format!("call object, Finish_ {mode:?}"),
        }
    }

    fn skip_reason(&self, op: &ModelOp, expected: &ModelOutcome) -> Option<String> {
        let virtual_clock = self.opts.virtual_clock;
        let short_in_flight =
            !virtual_clock && self.cancel.as_ref().is_some_and(|c| c.seconds == 1);
        match (op, expected) {
            (ModelOp::CancelTimeout, ModelOutcome::CancelReturns(_)) => match &self.cancel {
                Some(c) if c.seconds == 1 || virtual_clock => None,
                _ => Some("only a 1 s window is let expire".into()),
            },
            _ if short_in_flight => {
                Some("a 1 s Cancel window is running: only its expiry is deterministic".into())
            }
            (_, ModelOutcome::Invalid(why)) => Some(format!("model: not applicable ({why})")),
            (_, ModelOutcome::Blocks) => Some("model: blocks".into()),
            (ModelOp::Begin(m) | ModelOp::Finish(m), _) if *m > 1 => {
                Some("IProbe has two methods".into())
            }
            (ModelOp::Cancel(1), _) if !self.opts.short_cancel_windows && !virtual_clock => {
                Some("short cancel windows are off".into())
            }
            (ModelOp::Release, _) if self.cancel.is_some() => {
                Some("a Cancel in flight holds a reference: the release would not be final".into())
            }
            _ => None,
        }
    }

    fn step(&mut self, op: &ModelOp) -> Result<(), Mismatch> {
        let (expected, next) = self.model.step(op);
        if let Some(why) = self.skip_reason(op, &expected) {
            self.skipped += 1;
            self.steps.push(StepRecord {
                op: op.clone(),
                result: StepResult::Skipped(why),
            });
            return Ok(());
        }
        self.executed += 1;
        let got = self.exec(op, &expected);
        let got = match got {
            Ok(got) if got == expected => got,
            Ok(got) => return Err(self.fail(op, describe(&expected), describe(&got))),
            Err(why) => return Err(self.fail(op, describe(&expected), why)),
        };
        self.model = next;
        if let Err(why) = self.check_state() {
            return Err(self.fail(
                op,
                format!("{} and {}", describe(&expected), self.model_summary()),
                why,
            ));
        }
        self.steps.push(StepRecord {
            op: op.clone(),
            result: StepResult::Agreed(got),
        });
        Ok(())
    }

    fn model_summary(&self) -> String {
        format!(
            "state {:?}, event {}",
            self.model.state(),
            if self.model.event_set() {
                "set"
            } else {
                "clear"
            }
        )
    }

    fn fail(&mut self, op: &ModelOp, expected: String, got: String) -> Mismatch {
        disagreed(&mut self.steps, &self.setup, op, expected, got)
    }

    /// After a step both sides agreed on: the same state, the same event, no leaked reference.
    fn check_state(&self) -> Result<(), String> {
        let real = self.obj.state();
        if real != self.model.state() {
            return Err(format!("the result agreed, but the state is {real:?}"));
        }
        if real != State::Gone {
            let set = self.obj.handle().is_signaled();
            if set != self.model.event_set() {
                return Err(format!(
                    "the result agreed, but the call's event is {}",
                    if set { "set" } else { "clear" }
                ));
            }
            if let Some(c) = &self.client {
                let expected = 1 + u32::from(self.cancel.is_some());
                let refs = c.ref_count();
                if refs != expected {
                    return Err(format!(
                        "the call object has {refs} COM references, expected {expected}"
                    ));
                }
            }
        }
        Ok(())
    }

    fn take_cancel_result(&mut self, limit: Duration) -> Result<HRESULT, String> {
        let c = self
            .cancel
            .take()
            .ok_or_else(|| "no Cancel is in flight".to_string())?;
        match c.how {
            Window::Thread { result, thread } => {
                let hr = result
                    .recv_timeout(limit)
                    .map_err(|_| format!("the Cancel({}) in flight never returned", c.seconds))?;
                let _ = thread.join();
                Ok(hr)
            }
            Window::Virtual { generation, .. } => {
                Ok(self.obj.virtual_cancel_window_over(generation))
            }
        }
    }

    fn exec(&mut self, op: &ModelOp, expected: &ModelOutcome) -> Exec {
        let obj = &self.obj;
        let limit = self.opts.hang_limit;
        Ok(match op {
            ModelOp::Begin(m) => ModelOutcome::Returns(if *m == 0 {
                obj.begin_read(self.steps.len() as u32)
            } else {
                obj.begin_write(self.steps.len() as u32)
            }),
            ModelOp::ServerComplete { hr, outs } => {
                let before = obj.state();
                let current = obj.call_state().generation();
                let mut mine = None;
                while let Some((call, _input)) = self.server.take() {
                    if call.generation() == current {
                        mine = Some(call);
                    } else {
                        // An earlier call's late completion: the call object must drop it.
                        let m = call.method();
                        call.complete(S_OK, out_for(m, vec![0xDEAD]));
                    }
                }
                if let Some(call) = mine {
                    let m = call.method();
                    call.complete(*hr, out_for(m, outs.clone()));
                }
                let after = obj.state();
                let delivered = matches!(before, State::Pending | State::Cancelling)
                    && after == (State::Signaled { cancelled: false });
                if delivered {
                    let cancel_returns = match self.cancel {
                        Some(_) => Some(self.take_cancel_result(limit)?),
                        None => None,
                    };
                    ModelOutcome::Delivered { cancel_returns }
                } else {
                    ModelOutcome::Dropped
                }
            }
            ModelOp::Finish(m) => {
                let m = *m;
                let o = obj.clone();
                let finish = move || {
                    if m == 0 {
                        o.finish_read()
                    } else {
                        o.finish_write()
                    }
                };
                let (hr, outs) = if obj.finish_mode() == call::FinishMode::Blocking {
                    self.opts.guarded(finish).ok_or("Finish_ blocked")?
                } else {
                    finish()
                };
                finish_outcome(expected, hr, outs)
            }
            ModelOp::Cancel(0) => ModelOutcome::Returns(ICancelMethodCalls::cancel(&**obj, 0)),
            ModelOp::Cancel(s) if self.opts.virtual_clock => {
                let p = match query::<dyn ICancelMethodCalls>(&**obj) {
                    Ok(p) => p,
                    Err(e) => return Ok(ModelOutcome::Returns(e.0)),
                };
                match obj.virtual_cancel_request() {
                    Ok(generation) => {
                        self.cancel = Some(InFlight {
                            seconds: *s,
                            how: Window::Virtual {
                                generation,
                                _caller: p,
                            },
                        });
                        ModelOutcome::CancelInFlight
                    }
                    Err(hr) => ModelOutcome::Returns(hr),
                }
            }
            ModelOp::Cancel(s) => {
                let seconds = *s;
                let p = match query::<dyn ICancelMethodCalls>(&**obj) {
                    Ok(p) => p,
                    Err(e) => return Ok(ModelOutcome::Returns(e.0)),
                };
                let (tx, rx) = mpsc::channel();
                let observer = Observer::new();
                let thread = thread::spawn(move || {
                    let hr = p.cancel(seconds);
                    drop(p); // before reporting, so the reference count is back when we look
                    let _ = tx.send(hr);
                    crate::sync::observe::changed();
                });
                if *expected == ModelOutcome::CancelInFlight {
                    let start = Instant::now();
                    loop {
                        // Read the generation first: a change after it ends the wait below.
                        let seen = observer.generation();
                        if obj.state() == State::Cancelling {
                            self.cancel = Some(InFlight {
                                seconds,
                                how: Window::Thread { result: rx, thread },
                            });
                            break ModelOutcome::CancelInFlight;
                        }
                        if let Ok(hr) = rx.try_recv() {
                            let _ = thread.join();
                            break ModelOutcome::Returns(hr);
                        }
                        if start.elapsed() > limit {
                            return Err("Cancel neither returned nor reached Cancelling".into());
                        }
                        // Woken when the Cancel starts its window or returns; no polling.
                        observer.wait_past(seen, Deadline::at(start + limit));
                    }
                } else {
                    let hr = rx
                        .recv_timeout(limit)
                        .map_err(|_| format!("Cancel({seconds}) never returned"))?;
                    let _ = thread.join();
                    ModelOutcome::Returns(hr)
                }
            }
            ModelOp::CancelTimeout => ModelOutcome::CancelReturns(
                self.take_cancel_result(limit + Duration::from_secs(1))?,
            ),
            ModelOp::TestCancel => ModelOutcome::Returns(ICancelMethodCalls::test_cancel(&**obj)),
            ModelOp::Wait { flags, timeout } => {
                let sync = match query::<dyn ISynchronize>(&**obj) {
                    Ok(s) => s,
                    Err(e) => return Ok(ModelOutcome::Returns(e.0)),
                };
                let (flags, timeout) = (*flags, self.opts.wait_timeout(*timeout));
                ModelOutcome::Returns(if timeout == INFINITE {
                    self.opts
                        .guarded(move || sync.wait(flags, timeout))
                        .ok_or("Wait blocked")?
                } else {
                    sync.wait(flags, timeout)
                })
            }
            ModelOp::QueryInterface(iid) => {
                ModelOutcome::Returns(query_hr(&**obj, iid, &super::PROBE_ASYNC_IID))
            }
            ModelOp::Release => {
                let before = obj.state();
                drop(self.client.take());
                ModelOutcome::Released {
                    abandoned: before.in_call(),
                }
            }
            other => return Err(format!("{other} is not a call-object operation")),
        })
    }

    /// Resolves a `Cancel` still in flight (its window expires, or the server completes), so
    /// the helper thread ends; each resolution is a checked step.
    fn settle(&mut self) -> Result<(), Mismatch> {
        if let Some(seconds) = self.cancel.as_ref().map(|c| c.seconds) {
            let expires = seconds == 1
                || (self.opts.virtual_clock && seconds != RPC_C_CANCEL_INFINITE_TIMEOUT);
            let op = if expires {
                ModelOp::CancelTimeout
            } else {
                ModelOp::ServerComplete {
                    hr: S_OK,
                    outs: vec![],
                }
            };
            self.step(&op)?;
        }
        Ok(())
    }

    /// Releases everything and checks that the call object's memory is gone (no cycle, no
    /// reference held by a finished call).
    fn finish_run(mut self) -> Result<Report, Mismatch> {
        self.settle()?;
        drop(self.client.take());
        // Queued server calls hold the call object; the server drops them (they complete with
        // RPC_E_SERVER_DIED, which the call object drops as late).
        while self.server.take().is_some() {}
        let weak = Arc::downgrade(&self.obj);
        let CallRun {
            obj,
            server,
            steps,
            executed,
            skipped,
            setup,
            ..
        } = self;
        drop(obj);
        drop(server);
        if weak.strong_count() != 0 {
            let mut steps = steps;
            steps.push(StepRecord {
                op: ModelOp::Release,
                result: StepResult::Disagreed {
                    expected: "the call object's memory is freed once everything is released"
                        .into(),
                    got: format!("{} strong references remain", weak.strong_count()),
                },
            });
            return Err(Mismatch {
                at: steps.len() - 1,
                steps,
                setup,
            });
        }
        Ok(Report {
            executed,
            skipped,
            steps,
        })
    }
}

/// Runs `ops` against a real call object (Finish_ in `mode`) and against a [`CallModel`]:
/// `Ok` with a [`Report`] if they agree at every step, else the first [`Mismatch`].
pub fn check_call_ops(
    mode: FinishMode,
    ops: &[ModelOp],
    opts: &RunOptions,
) -> Result<Report, Mismatch> {
    let mut run = CallRun::new(mode, opts);
    for op in ops {
        if let Err(m) = run.step(op) {
            // Let a helper thread blocked in a Cancel go: complete everything queued.
            while let Some((call, _)) = run.server.take() {
                call.fail(S_OK);
            }
            return Err(m);
        }
    }
    run.finish_run()
}

// ---------------------------------------------------------------------------------------------
// Events, the container and CoWaitForMultipleHandles
// ---------------------------------------------------------------------------------------------

struct WorldRun {
    model: World,
    events: Vec<ComPtr<dyn ISynchronize>>,
    handles: Vec<HANDLE>,
    container: ComPtr<dyn ISynchronizeContainer>,
    opts: RunOptions,
    steps: Vec<StepRecord>,
    executed: usize,
    skipped: usize,
    setup: String,
}

impl WorldRun {
    fn new(kinds: &[EventClass], opts: &RunOptions) -> WorldRun {
        let events: Vec<ComPtr<dyn ISynchronize>> = kinds
            .iter()
            .map(|k| match k {
                EventClass::ManualReset => ManualResetEvent::create(),
                EventClass::Auto => StdEvent::create(),
            })
            .collect();
        let handles = events
            .iter()
            .map(|e| {
                e.query::<dyn ISynchronizeHandle>()
                    .and_then(|h| h.get_handle())
                    .expect("system events expose ISynchronizeHandle")
            })
            .collect();
        WorldRun {
            model: World::new(super::PROBE_ASYNC_IID, FinishMode::Blocking, kinds),
            events,
            handles,
            container: SynchronizeContainer::create(),
            opts: opts.clone(),
            steps: Vec::new(),
            executed: 0,
            skipped: 0,
            setup: format!("events {kinds:?}"),
        }
    }

    fn fail(&mut self, op: &ModelOp, expected: String, got: String) -> Mismatch {
        disagreed(&mut self.steps, &self.setup, op, expected, got)
    }

    fn step(&mut self, op: &ModelOp) -> Result<(), Mismatch> {
        let (expected, next) = self.model.step(op);
        let skip = match &expected {
            ModelOutcome::Invalid(why) => Some(format!("model: not applicable ({why})")),
            ModelOutcome::Blocks => Some("model: blocks".to_string()),
            _ if op.is_call_op() => Some("not an event operation".to_string()),
            _ => None,
        };
        if let Some(why) = skip {
            self.skipped += 1;
            self.steps.push(StepRecord {
                op: op.clone(),
                result: StepResult::Skipped(why),
            });
            return Ok(());
        }
        self.executed += 1;
        let got = match self.exec(op) {
            Ok(got) if got == expected => got,
            Ok(got) => return Err(self.fail(op, describe(&expected), describe(&got))),
            Err(why) => return Err(self.fail(op, describe(&expected), why)),
        };
        self.model = next;
        for (i, (m, h)) in self.model.events().iter().zip(&self.handles).enumerate() {
            if m.is_set() != h.is_signaled() {
                let state = |s: bool| if s { "set" } else { "clear" };
                return Err(self.fail(
                    op,
                    format!("{}; event[{i}] {}", describe(&expected), state(m.is_set())),
                    format!(
                        "the result agreed, but event[{i}] is {}",
                        state(h.is_signaled())
                    ),
                ));
            }
        }
        self.steps.push(StepRecord {
            op: op.clone(),
            result: StepResult::Agreed(got),
        });
        Ok(())
    }

    fn exec(&mut self, op: &ModelOp) -> Exec {
        Ok(match op {
            ModelOp::EventSignal(e) => ModelOutcome::Returns(self.events[*e].signal()),
            ModelOp::EventReset(e) => ModelOutcome::Returns(self.events[*e].reset()),
            ModelOp::EventWait {
                event,
                flags,
                timeout,
            } => {
                let (ev, flags, timeout) = (
                    self.events[*event].clone(),
                    *flags,
                    self.opts.wait_timeout(*timeout),
                );
                ModelOutcome::Returns(if timeout == INFINITE {
                    self.opts
                        .guarded(move || ev.wait(flags, timeout))
                        .ok_or("Wait blocked")?
                } else {
                    ev.wait(flags, timeout)
                })
            }
            ModelOp::CoWait {
                flags,
                timeout,
                handles,
                index_present,
            } => {
                let hs: Option<Vec<HANDLE>> = handles
                    .as_ref()
                    .map(|hs| hs.iter().map(|&h| self.handles[h].clone()).collect());
                let (flags, timeout, present) =
                    (*flags, self.opts.wait_timeout(*timeout), *index_present);
                let run = move || {
                    let mut index = 0xDEAD_BEEF_u32;
                    let hr = co_wait_for_multiple_handles(
                        flags,
                        timeout,
                        hs.as_deref(),
                        present.then_some(&mut index),
                    );
                    ModelOutcome::CoWait {
                        hr,
                        index: present.then_some(index),
                    }
                };
                if timeout == INFINITE {
                    self.opts
                        .guarded(run)
                        .ok_or("CoWaitForMultipleHandles blocked")?
                } else {
                    run()
                }
            }
            ModelOp::AddSynchronize(e) => {
                ModelOutcome::Returns(self.container.add_synchronize(e.map(|e| &self.events[e])))
            }
            ModelOp::WaitMultiple {
                flags,
                timeout,
                out_present,
            } => {
                let (container, flags, timeout, present) = (
                    self.container.clone(),
                    *flags,
                    self.opts.wait_timeout(*timeout),
                    *out_present,
                );
                let run = move || {
                    let mut got = None;
                    let hr = container.wait_multiple(flags, timeout, present.then_some(&mut got));
                    (hr, got)
                };
                let (hr, got) = if timeout == INFINITE {
                    self.opts.guarded(run).ok_or("WaitMultiple blocked")?
                } else {
                    run()
                };
                let position = got.and_then(|g| {
                    let event = self
                        .events
                        .iter()
                        .position(|e| ComPtr::is_same_object(e, &g))?;
                    self.model
                        .container()
                        .objects()
                        .iter()
                        .position(|&o| o == event)
                });
                ModelOutcome::WaitMultiple { hr, position }
            }
            other => return Err(format!("{other} is not an event operation")),
        })
    }
}

/// Runs `ops` against real events of the given kinds (plus a container and
/// `CoWaitForMultipleHandles`) and against a [`World`]: `Ok` if they agree at every step.
pub fn check_world_ops(
    kinds: &[EventClass],
    ops: &[ModelOp],
    opts: &RunOptions,
) -> Result<Report, Mismatch> {
    let mut run = WorldRun::new(kinds, opts);
    for op in ops {
        run.step(op)?;
    }
    Ok(Report {
        executed: run.executed,
        skipped: run.skipped,
        steps: run.steps,
    })
}

/// Records the step both sides disagreed on and hands the whole run over as a [`Mismatch`].
fn disagreed(
    steps: &mut Vec<StepRecord>,
    setup: &str,
    op: &ModelOp,
    expected: String,
    got: String,
) -> Mismatch {
    steps.push(StepRecord {
        op: op.clone(),
        result: StepResult::Disagreed { expected, got },
    });
    Mismatch {
        at: steps.len() - 1,
        steps: std::mem::take(steps),
        setup: setup.to_string(),
    }
}
