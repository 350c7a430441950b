//! One aggregation run: executes each [`AggOp`] on the real aggregated call object, predicts
//! it with the [`CallModel`], and checks the delivery and ordering rules of the
//! [module documentation](super) after every step.

use super::*;
use crate::testing::probe_out;

/// A completion whose `Signal` the outer should see.
#[derive(Clone, Copy)]
struct Expecting {
    generation: u64,
    begun_since: bool,
}

/// A `Cancel(s > 0)` in flight: its window, its call, the caller's reference.
type InFlightCancel = (u32, u64, Option<ComPtr<dyn IUnknown>>);

struct AggRun {
    model: CallModel,
    obj: Arc<CallObject<IProbeCalls>>,
    outer: Weak<AggOuter>,
    client: Option<ComPtr<dyn IUnknown>>,
    server: Arc<ManualHandler<IProbeCalls>>,
    /// A `Cancel(s > 0)` in flight: its window, its call, the caller's reference.
    cancel: Option<InFlightCancel>,
    /// The model's current call (incremented by each successful `Begin_`).
    generation: u64,
    /// A failed outer `Signal` replaced the current call's result by this `HRESULT`.
    replaced: Option<HRESULT>,
    /// Tokens handed out: token → the generation it completed (`None`: a late completion).
    tokens: HashMap<u32, Option<u64>>,
    next_token: u32,
    expecting: Option<Expecting>,
    lines: Vec<String>,
    /// Whether to record readable lines (only to print a failing run).
    record: bool,
    tolerate: Tolerate,
    /// A `Begin_` failed by the outer since the last successful one (see [`Tolerate`]).
    failed_begin: bool,
}

type Check = Result<(), String>;

fn expect_eq(what: &str, expected: &ModelOutcome, got: &ModelOutcome) -> Check {
    if expected == got {
        Ok(())
    } else {
        Err(format!(
            "{what}: model {}, implementation {}",
            describe(expected),
            describe(got)
        ))
    }
}

impl AggRun {
    fn new(mode: FinishMode, tolerate: Tolerate, record: bool) -> AggRun {
        let server = ManualHandler::<IProbeCalls>::new();
        let outer = Arc::new_cyclic(|me| AggOuter {
            refs: RefCount::new(),
            me: me.clone(),
            inner: Mutex::new(None),
            call: Mutex::new(Weak::new()),
            st: Mutex::new(OuterState::default()),
        });
        let client: ComPtr<dyn IUnknown> = ComPtr::new(outer.clone() as Arc<dyn IUnknown>);
        let obj = CallObject::<IProbeCalls>::new(server.clone(), Some(&client), mode);
        *outer.call.lock() = Arc::downgrade(&obj);
        *outer.inner.lock() = Some(crate::unknown::non_delegating(obj.clone()));
        AggRun {
            model: CallModel::with_mode(crate::testing::PROBE_ASYNC_IID, mode),
            obj,
            outer: Arc::downgrade(&outer),
            client: Some(client),
            server,
            cancel: None,
            generation: 0,
            replaced: None,
            tokens: HashMap::new(),
            next_token: 1,
            expecting: None,
            lines: Vec::new(),
            record,
            tolerate,
            failed_begin: false,
        }
    }

    fn take_log(&self) -> Vec<Event> {
        match self.outer.upgrade() {
            Some(o) => std::mem::take(&mut o.st.lock().log),
            None => Vec::new(),
        }
    }

    fn token(&mut self, generation: Option<u64>) -> u32 {
        let t = self.next_token;
        self.next_token += 1;
        self.tokens.insert(t, generation);
        t
    }

    /// A `Begin_` (top-level or hooked) that returned `hr`, with the outer `Reset`s it made.
    fn on_begin(&mut self, m: usize, hr: HRESULT, resets: &[HRESULT]) -> Check {
        let (expected, next) = self.model.step(&ModelOp::Begin(m));
        if expected == ModelOutcome::Returns(S_OK) {
            let [reset] = resets else {
                return Err(format!(
                    "a successful Begin_ resets the outer once; it reset it {} times",
                    resets.len()
                ));
            };
            if reset.failed() {
                // The outer refused: Begin_ fails with its HRESULT, the call object stays idle.
                self.failed_begin = true;
                return expect_eq(
                    "Begin_ with a failing outer Reset",
                    &ModelOutcome::Returns(*reset),
                    &ModelOutcome::Returns(hr),
                );
            }
            expect_eq("Begin_", &expected, &ModelOutcome::Returns(hr))?;
            self.model = next;
            // The real generation: a failed Begin_ may have used one up.
            self.generation = self.obj.call_state().generation();
            self.replaced = None;
            self.failed_begin = false;
            if let Some(e) = &mut self.expecting {
                e.begun_since = true;
            }
            Ok(())
        } else {
            if !resets.is_empty() {
                return Err(format!(
                    "a refused Begin_ ({}) reset the outer",
                    hr_name(hr)
                ));
            }
            expect_eq("Begin_", &expected, &ModelOutcome::Returns(hr))
        }
    }

    /// A `Finish_` (top-level or hooked) that returned `(hr, outs)`.
    fn on_finish(&mut self, m: usize, hr: HRESULT, outs: Vec<u32>) -> Check {
        let (expected, next) = self.model.step(&ModelOp::Finish(m));
        if expected == ModelOutcome::Blocks {
            return Err("a blocking Finish_ returned before completion".into());
        }
        for t in &outs {
            match self.tokens.get(t) {
                Some(Some(g)) if *g == self.generation => {}
                Some(Some(g)) => {
                    return Err(format!(
                        "Finish_ of call {} returned the result of call {g}",
                        self.generation
                    ))
                }
                Some(None) => return Err("Finish_ returned a late (dropped) result".into()),
                None => return Err(format!("Finish_ returned {t}, never handed out")),
            }
        }
        let expected = match (expected, self.replaced) {
            (ModelOutcome::Finished { .. }, Some(signal_hr)) => ModelOutcome::Returns(signal_hr),
            (e, _) => e,
        };
        let got = if matches!(expected, ModelOutcome::Finished { .. }) || !outs.is_empty() {
            ModelOutcome::Finished { hr, outs }
        } else {
            ModelOutcome::Returns(hr)
        };
        expect_eq("Finish_ (exactly-once delivery)", &expected, &got)?;
        self.model = next;
        Ok(())
    }

    /// The call completed (by the server or locally): its `Signal` is expected.
    fn completed(&mut self) {
        self.expecting = Some(Expecting {
            generation: self.generation,
            begun_since: false,
        });
    }

    /// Walks what the outer saw during one top-level operation.
    fn walk(&mut self, log: Vec<Event>) -> Check {
        let mut resets = Vec::new();
        for ev in log {
            match ev {
                Event::Reset(hr) => resets.push(hr),
                Event::Begin { method, hr } => {
                    note!(
                        self,
                        "    (hook) {} → {}",
                        ModelOp::Begin(method),
                        hr_name(hr)
                    );
                    self.on_begin(method, hr, &std::mem::take(&mut resets))?;
                }
                Event::Finish { method, hr, outs } => {
                    note!(
                        self,
                        "    (hook) {} → {}, outs {outs:?}",
                        ModelOp::Finish(method),
                        hr_name(hr)
                    );
                    self.on_finish(method, hr, outs)?;
                }
                Event::Signal {
                    generation,
                    state,
                    hr,
                } => {
                    note!(
                        self,
                        "    outer Signal (call object: call {generation}, {state:?}) → {}",
                        hr_name(hr)
                    );
                    let Some(e) = self.expecting.take() else {
                        return Err("the outer was signaled with no completion to report".into());
                    };
                    if (generation != e.generation
                        || matches!(state, State::Pending | State::Cancelling))
                        && !self.tolerate.stale_signal
                    {
                        return Err(format!(
                            "stale outer Signal: call {}'s completion signaled the outer after \
                             call {generation}'s Begin_ reset it, while that call is {state:?} \
                             (issue 9, finding 1)",
                            e.generation
                        ));
                    }
                }
                Event::SignalReturned(hr) => {
                    if hr.failed()
                        && matches!(self.model.state(), State::Signaled { cancelled: false })
                    {
                        self.replaced = Some(hr);
                    }
                }
            }
        }
        if !resets.is_empty() {
            return Err("the outer was reset outside any Begin_".into());
        }
        if let Some(e) = self.expecting.take() {
            if !e.begun_since {
                return Err(format!(
                    "call {}'s completion never signaled the outer",
                    e.generation
                ));
            }
        }
        Ok(())
    }

    fn step(&mut self, op: &AggOp) -> Check {
        let _ = self.take_log();
        let completing = matches!(
            op,
            AggOp::ServerComplete(_) | AggOp::Cancel(0) | AggOp::CancelTimeout
        );
        if let Some(o) = self.outer.upgrade() {
            o.st.lock().completing = completing;
        }
        let result = self.exec(op);
        if let Some(o) = self.outer.upgrade() {
            o.st.lock().completing = false;
        }
        result
    }

    fn exec(&mut self, op: &AggOp) -> Check {
        let obj = self.obj.clone();
        match op {
            AggOp::Begin(m) => {
                let tag = self.next_token;
                let hr = begin(&obj, *m, tag);
                note!(self, "{op} → {}", hr_name(hr));
                let log = self.take_log();
                let resets: Vec<HRESULT> = log
                    .iter()
                    .filter_map(|e| match e {
                        Event::Reset(hr) => Some(*hr),
                        _ => None,
                    })
                    .collect();
                if resets.len() != log.len() {
                    return Err("Begin_ did more to the outer than Reset it".into());
                }
                self.on_begin(*m, hr, &resets)?;
            }
            AggOp::Finish(m) => {
                let (expected, _) = self.model.step(&ModelOp::Finish(*m));
                if expected == ModelOutcome::Blocks {
                    note!(self, "{op}   (skipped: model blocks)");
                    return Ok(());
                }
                let (hr, outs) = finish(&obj, *m);
                note!(self, "{op} → {}, outs {outs:?}", hr_name(hr));
                self.on_finish(*m, hr, outs)?;
                let log = self.take_log();
                if !log.is_empty() {
                    return Err(format!("Finish_ touched the outer: {log:?}"));
                }
            }
            AggOp::ServerComplete(hr) => {
                let queued: Vec<ServerCall<IProbeCalls>> =
                    std::iter::from_fn(|| self.server.take().map(|(c, _)| c)).collect();
                let mut current = None;
                for call in queued {
                    if call.is_wanted() {
                        current = Some(call);
                    } else {
                        let t = self.token(None);
                        let m = call.method();
                        call.complete(S_OK, probe_out(m, vec![t]));
                    }
                }
                let delivered = current.is_some();
                let t = self.token(delivered.then(|| obj.call_state().generation()));
                let (expected, next) = self.model.step(&ModelOp::ServerComplete {
                    hr: *hr,
                    outs: vec![t],
                });
                if let Some(call) = current {
                    let m = call.method();
                    call.complete(*hr, probe_out(m, vec![t]));
                }
                let got = match (delivered, &expected) {
                    (false, _) => ModelOutcome::Dropped,
                    (
                        true,
                        ModelOutcome::Delivered {
                            cancel_returns: Some(_),
                        },
                    ) => {
                        let hr = match self.cancel.take() {
                            Some((_, g, _)) => obj.virtual_cancel_window_over(g),
                            None => return Err("no Cancel in flight to resolve".into()),
                        };
                        ModelOutcome::Delivered {
                            cancel_returns: Some(hr),
                        }
                    }
                    (true, _) => ModelOutcome::Delivered {
                        cancel_returns: None,
                    },
                };
                note!(self, "{op} (token {t}) → {}", describe(&got));
                expect_eq("server completion", &expected, &got)?;
                self.model = next;
                if delivered {
                    self.completed();
                }
                let log = self.take_log();
                self.walk(log)?;
            }
            AggOp::Cancel(0) => {
                let hr = ICancelMethodCalls::cancel(&*obj, 0);
                note!(self, "{op} → {}", hr_name(hr));
                let (expected, next) = self.model.step(&ModelOp::Cancel(0));
                expect_eq("Cancel(0)", &expected, &ModelOutcome::Returns(hr))?;
                self.model = next;
                if hr == S_OK {
                    self.completed();
                }
                let log = self.take_log();
                self.walk(log)?;
            }
            AggOp::Cancel(s) => {
                let (expected, next) = self.model.step(&ModelOp::Cancel(*s));
                let got = match obj.virtual_cancel_request() {
                    Ok(g) => {
                        self.cancel = Some((*s, g, self.client.clone()));
                        ModelOutcome::CancelInFlight
                    }
                    Err(hr) => ModelOutcome::Returns(hr),
                };
                note!(self, "{op} → {}", describe(&got));
                expect_eq("Cancel", &expected, &got)?;
                self.model = next;
            }
            AggOp::CancelTimeout => {
                let (expected, next) = self.model.step(&ModelOp::CancelTimeout);
                if matches!(expected, ModelOutcome::Invalid(_)) {
                    note!(self, "{op}   (skipped: no finite window open)");
                    return Ok(());
                }
                let Some((_, g, _caller)) = self.cancel.take() else {
                    return Err("the model has a Cancel in flight, the runner none".into());
                };
                let got = ModelOutcome::CancelReturns(obj.virtual_cancel_window_over(g));
                note!(self, "{op} → {}", describe(&got));
                expect_eq("CancelTimeout", &expected, &got)?;
                self.model = next;
                self.completed();
                let log = self.take_log();
                self.walk(log)?;
            }
            AggOp::TestCancel => {
                let got = ModelOutcome::Returns(ICancelMethodCalls::test_cancel(&*obj));
                note!(self, "{op} → {}", describe(&got));
                if !(self.failed_begin && self.tolerate.failed_begin_clears_cancel) {
                    expect_eq(
                        "TestCancel (a Begin_ refused by the outer's Reset must not clear the \
                         cancelled flag)",
                        &self.model.step(&ModelOp::TestCancel).0,
                        &got,
                    )?;
                }
            }
            AggOp::OuterFails { reset, signal } => {
                note!(self, "{op}");
                if let Some(o) = self.outer.upgrade() {
                    let mut st = o.st.lock();
                    st.reset_fails = *reset;
                    st.signal_fails = *signal;
                }
            }
            AggOp::Arm(h) => {
                note!(self, "{op}");
                if let Some(o) = self.outer.upgrade() {
                    o.st.lock().hook = Some(*h);
                }
            }
            AggOp::Release => {
                if self.cancel.is_some() || self.client.is_none() {
                    note!(self, "{op}   (skipped: not the final release)");
                    return Ok(());
                }
                let (expected, next) = self.model.step(&ModelOp::Release);
                let before = obj.state();
                drop(self.client.take());
                let got = ModelOutcome::Released {
                    abandoned: before.in_call(),
                };
                note!(self, "{op} → {}", describe(&got));
                expect_eq("Release", &expected, &got)?;
                self.model = next;
                if self.outer.strong_count() != 0 {
                    return Err("the outer is still in memory after its final release".into());
                }
            }
        }
        self.check_state()
    }

    fn check_state(&self) -> Check {
        let real = self.obj.state();
        let model = self.model.state();
        if real != model {
            return Err(format!(
                "the call object is {real:?}, the model says {model:?}"
            ));
        }
        let pending = matches!(model, State::Pending | State::Cancelling);
        if pending || matches!(model, State::Signaled { .. }) {
            let set = self.obj.handle().is_signaled();
            if set != self.model.event_set() {
                return Err(format!(
                    "the call's event is set: {set}, the model says otherwise"
                ));
            }
        }
        if pending && !self.tolerate.stale_signal {
            if let Some(o) = self.outer.upgrade() {
                if o.st.lock().flag {
                    return Err(format!(
                        "the outer reads signaled while call {} is {model:?} (issue 9, \
                         finding 1)",
                        self.generation
                    ));
                }
            }
        }
        Ok(())
    }

    /// Resolves a `Cancel` still in flight (a checked step).
    fn settle(&mut self) -> Check {
        if let Some((s, _, _)) = self.cancel {
            let op = if s == RPC_C_CANCEL_INFINITE_TIMEOUT {
                AggOp::ServerComplete(S_OK)
            } else {
                AggOp::CancelTimeout
            };
            self.step(&op)?;
        }
        Ok(())
    }

    /// Releases everything and checks that nothing is left in memory.
    fn finish_run(mut self) -> Check {
        if let Some(o) = self.outer.upgrade() {
            o.st.lock().hook = None;
        }
        drop(self.client.take());
        while self.server.take().is_some() {}
        let weak_obj = Arc::downgrade(&self.obj);
        let weak_outer = self.outer.clone();
        drop(self);
        if weak_obj.strong_count() != 0 || weak_outer.strong_count() != 0 {
            return Err(format!(
                "leak: after everything is released the call object has {} and the outer {} \
                 strong references",
                weak_obj.strong_count(),
                weak_outer.strong_count()
            ));
        }
        Ok(())
    }
}

/// Runs `ops` once (recording readable lines if `record`); the first failure, if any.
pub(super) fn run_aggregation(
    mode: FinishMode,
    ops: &[AggOp],
    tolerate: Tolerate,
    record: bool,
) -> Result<(), AggMismatch> {
    let mut run = AggRun::new(mode, tolerate, record);
    let result = ops
        .iter()
        .try_for_each(|op| run.step(op))
        .and_then(|()| run.settle());
    if let Err(failure) = result {
        let steps = std::mem::take(&mut run.lines);
        if let Some(o) = run.outer.upgrade() {
            o.st.lock().hook = None;
        }
        // Let the queued calls go before the run is dropped.
        while run.server.take().is_some() {}
        return Err(AggMismatch { steps, failure });
    }
    let lines = run.lines.clone();
    run.finish_run().map_err(|failure| AggMismatch {
        steps: lines,
        failure,
    })
}
