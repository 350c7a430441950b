//! The call-object side of a run ([`check_call_ops`]): a real [`CallObject`] for
//! [`IProbe`](crate::testing::IProbe) served by a [`ManualHandler`], against a [`CallModel`].
//! After every agreed step the state, the call's event and the client's COM reference count
//! must match; at the end everything is released and the call object's memory must be gone.

use std::sync::{mpsc, Arc};
use std::thread;
use std::time::{Duration, Instant};

use super::{describe, Exec, Mismatch, Report, Run, RunOptions, Side, StepRecord, StepResult};
use crate::call::{
    AsyncInterface, CallObject, FinishMode, ICancelMethodCalls, ManualHandler, State,
};
use crate::guid::{
    IID_ICancelMethodCalls, IID_ISynchronize, IID_ISynchronizeHandle, IID_IUnknown, IID,
};
use crate::hresult::{HRESULT, S_OK};
use crate::model::{CallModel, ModelOp, ModelOutcome, RPC_C_CANCEL_INFINITE_TIMEOUT};
use crate::sync::observe::Observer;
use crate::sync::prim::Deadline;
use crate::sync::{ISynchronize, ISynchronizeHandle};
use crate::testing::{probe_out, AsyncIProbe, IProbeCalls, PROBE_ASYNC_IID};
use crate::unknown::{query, ComPtr, IUnknown, Interface};

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

/// A real call object, its server and client reference, and the model it is compared with.
pub(super) struct CallSide {
    model: CallModel,
    obj: Arc<CallObject<IProbeCalls>>,
    client: Option<ComPtr<dyn AsyncIProbe>>,
    server: Arc<ManualHandler<IProbeCalls>>,
    cancel: Option<InFlight>,
    opts: RunOptions,
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

impl CallSide {
    fn new(mode: FinishMode, opts: &RunOptions) -> Run<CallSide> {
        let server = ManualHandler::<IProbeCalls>::new();
        let obj = CallObject::<IProbeCalls>::new(server.clone(), None, mode);
        let client = ComPtr::new(IProbeCalls::upcast(obj.clone()));
        let side = CallSide {
            model: CallModel::with_mode(PROBE_ASYNC_IID, mode),
            obj,
            client: Some(client),
            server,
            cancel: None,
            opts: opts.clone(),
        };
        Run::new(side, format!("call object, Finish_ {mode:?}"))
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
}

impl Side for CallSide {
    type Model = CallModel;

    fn model(&mut self) -> &mut CallModel {
        &mut self.model
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

    fn check_state(&self, expected: &ModelOutcome) -> Result<(), (String, String)> {
        let expected = || format!("{} and {}", describe(expected), self.model_summary());
        let real = self.obj.state();
        if real != self.model.state() {
            return Err((
                expected(),
                format!("the result agreed, but the state is {real:?}"),
            ));
        }
        if real != State::Gone {
            let set = self.obj.handle().is_signaled();
            if set != self.model.event_set() {
                return Err((
                    expected(),
                    format!(
                        "the result agreed, but the call's event is {}",
                        if set { "set" } else { "clear" }
                    ),
                ));
            }
            if let Some(c) = &self.client {
                let want = 1 + u32::from(self.cancel.is_some());
                let refs = c.ref_count();
                if refs != want {
                    return Err((
                        expected(),
                        format!("the call object has {refs} COM references, expected {want}"),
                    ));
                }
            }
        }
        Ok(())
    }

    fn exec(&mut self, op: &ModelOp, expected: &ModelOutcome, step: usize) -> Exec {
        let obj = &self.obj;
        let limit = self.opts.hang_limit;
        Ok(match op {
            ModelOp::Begin(m) => ModelOutcome::Returns(if *m == 0 {
                obj.begin_read(step as u32)
            } else {
                obj.begin_write(step as u32)
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
                        call.complete(S_OK, probe_out(m, vec![0xDEAD]));
                    }
                }
                if let Some(call) = mine {
                    let m = call.method();
                    call.complete(*hr, probe_out(m, outs.clone()));
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
                let (hr, outs) = if obj.finish_mode() == FinishMode::Blocking {
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
                ModelOutcome::Returns(
                    self.opts
                        .wait(timeout, move || sync.wait(flags, timeout))
                        .ok_or("Wait blocked")?,
                )
            }
            ModelOp::QueryInterface(iid) => {
                ModelOutcome::Returns(query_hr(&**obj, iid, &PROBE_ASYNC_IID))
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
}

impl Run<CallSide> {
    /// Resolves a `Cancel` still in flight (its window expires, or the server completes), so
    /// the helper thread ends; each resolution is a checked step.
    fn settle(&mut self) -> Result<(), Mismatch> {
        if let Some(seconds) = self.side.cancel.as_ref().map(|c| c.seconds) {
            let expires = seconds == 1
                || (self.side.opts.virtual_clock && seconds != RPC_C_CANCEL_INFINITE_TIMEOUT);
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
        drop(self.side.client.take());
        // Queued server calls hold the call object; the server drops them (they complete with
        // RPC_E_SERVER_DIED, which the call object drops as late).
        while self.side.server.take().is_some() {}
        let weak = Arc::downgrade(&self.side.obj);
        let Run {
            side,
            steps,
            executed,
            skipped,
            setup,
        } = self;
        drop(side);
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
    let mut run = CallSide::new(mode, opts);
    if let Err(m) = run.run(ops) {
        // Let a helper thread blocked in a Cancel go: complete everything queued.
        while let Some((call, _)) = run.side.server.take() {
            call.fail(S_OK);
        }
        return Err(m);
    }
    run.finish_run()
}
