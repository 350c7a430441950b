//! The threads that produce a history ([`run_concurrent_call`]): client threads on one real
//! call object (optionally aggregated by a counting, scripted outer), a server thread, the
//! recording of every entry, and the check of the result ([`NotLinearizable`]).

use super::*;
use crate::testing::probe_out;

/// A history that is not linearizable (or that hung), printed thread by thread with its ticks.
#[derive(Clone, Debug)]
pub struct NotLinearizable {
    /// The history (as far as it was recorded).
    pub history: Vec<Entry<ConcOp, ConcResult>>,
    /// `Some`: the run did not finish within the hang limit; what was still running.
    pub hung: Option<String>,
}

impl fmt::Display for NotLinearizable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.hung {
            Some(what) => writeln!(
                f,
                "the run did not finish within {HANG_LIMIT:?} ({what}); the history so far:"
            )?,
            None => writeln!(
                f,
                "no sequential order of this history satisfies the model (thread, [invoke, response], operation → result):"
            )?,
        }
        let mut h: Vec<_> = self.history.iter().collect();
        h.sort_by_key(|e| e.invoke);
        for e in h {
            let t = if e.thread == usize::MAX {
                "main".to_string()
            } else {
                format!("T{}", e.thread)
            };
            writeln!(
                f,
                "  {t} [{:>3}, {:>3}] {:?} → {:?}",
                e.invoke, e.response, e.op, e.result
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for NotLinearizable {}

/// How long a run may take before it counts as hung (a lost wake-up, a deadlock, a wedged
/// call object): only a broken implementation gets near it.
pub const HANG_LIMIT: Duration = Duration::from_secs(20);

/// The server side of the harness: hands each begun call to the server thread.
struct Server(crossbeam_channel::Sender<(ServerCall<IProbeCalls>, IProbeIn)>);

impl CallHandler<IProbeCalls> for Server {
    fn begin(&self, call: ServerCall<IProbeCalls>, input: IProbeIn) {
        // The server thread outlives every client's Begin_; if it is gone the call is dropped
        // (RPC_E_SERVER_DIED).
        let _ = self.0.send((call, input));
    }
}

thread_local! {
    /// Ticks of the outer's `Reset` and `Signal`s entered on this thread since the harness
    /// last looked: `(tick, Some(hr))` for a `Signal` returning `hr`, `(tick, None)` for a
    /// `Reset`.
    static OUTER_CALLS: RefCell<Vec<(u64, Option<HRESULT>)>> = const { RefCell::new(Vec::new()) };
}

/// The aggregating client of the linearizability harness: implements `ISynchronize`, answers
/// `Reset` and `Signal` from its script (a scripted `E_UNEXPECTED` panics), counts them, and
/// ticks the clock when they are entered and when its final release has let the call object
/// go.
struct Outer {
    refs: RefCount,
    me: Weak<Outer>,
    clock: Arc<Clock>,
    script: OuterScript,
    counts: Arc<OuterCounts>,
    inner: Mutex<Option<ComPtr<dyn IUnknown>>>,
}

/// What the harness reads from the outer, kept apart from it so that the harness holds no
/// reference to the outer itself: once its COM count reaches 0 its memory goes, as a real
/// COM object's would.
#[derive(Default)]
struct OuterCounts {
    resets: AtomicU32,
    signals: AtomicU32,
    /// When the outer's final release had let the call object go (0: not yet).
    released_at: AtomicU64,
}

fn scripted(results: &[HRESULT], n: u32, what: &str) -> HRESULT {
    let hr = results.get(n as usize).copied().unwrap_or(S_OK);
    if hr == E_UNEXPECTED {
        panic!("the outer's {what} #{n} panics (scripted)");
    }
    hr
}

impl ISynchronize for Outer {
    fn wait(&self, _flags: u32, _timeout_ms: u32) -> HRESULT {
        E_NOTIMPL
    }
    fn signal(&self) -> HRESULT {
        let tick = self.clock.tick();
        let n = self.counts.signals.fetch_add(1, Ordering::SeqCst);
        let hr = self.script.signal_results.get(n as usize).copied();
        OUTER_CALLS.with(|c| c.borrow_mut().push((tick, Some(hr.unwrap_or(S_OK)))));
        scripted(&self.script.signal_results, n, "Signal")
    }
    fn reset(&self) -> HRESULT {
        let tick = self.clock.tick();
        OUTER_CALLS.with(|c| c.borrow_mut().push((tick, None)));
        let n = self.counts.resets.fetch_add(1, Ordering::SeqCst);
        scripted(&self.script.reset_results, n, "Reset")
    }
}

impl Outer {
    fn inner_interfaces(&self, _me: &Arc<Self>, iid: &IID, ppv: &mut dyn std::any::Any) -> HRESULT {
        let inner = self.inner.lock().unwrap().clone();
        match inner {
            Some(inner) => inner.query_interface(iid, ppv),
            None => E_NOINTERFACE,
        }
    }
    fn final_release(&self) {
        let inner = self.inner.lock().unwrap().take();
        drop(inner);
        self.counts
            .released_at
            .store(self.clock.tick(), Ordering::SeqCst);
    }
}

crate::com_object!([] Outer {
    interfaces: [dyn ISynchronize],
    more: Outer::inner_interfaces,
    final_release: Outer::final_release,
});

type History = Arc<Mutex<Vec<Entry<ConcOp, ConcResult>>>>;

/// Records the outer's `Reset`/`Signal`s made on this thread during an operation that
/// responded at `response`; returns the `Reset`'s tick if there was one.
fn record_outer_calls(history: &History, thread: usize, response: u64) -> Option<u64> {
    let calls = OUTER_CALLS.with(|c| std::mem::take(&mut *c.borrow_mut()));
    let mut reset = None;
    let mut h = history.lock().unwrap();
    for (tick, signal) in calls {
        match signal {
            Some(hr) => h.push(Entry {
                thread,
                op: ConcOp::OuterSignal,
                result: ConcResult::Outcome(ModelOutcome::Returns(hr)),
                invoke: tick,
                response,
            }),
            None => reset = Some(tick),
        }
    }
    reset
}

fn panic_message(e: Box<dyn std::any::Any + Send>) -> String {
    e.downcast_ref::<String>()
        .cloned()
        .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

/// Runs `plan` once (clients and the server start together behind a barrier), records the
/// history and checks it: `Ok(history)` if linearizable.
pub fn run_concurrent_call(
    plan: &ConcurrentPlan,
) -> Result<Vec<Entry<ConcOp, ConcResult>>, NotLinearizable> {
    let clock = Arc::new(Clock::new());
    let (calls_tx, calls_rx) = crossbeam_channel::unbounded();
    let server = Arc::new(Server(calls_tx));
    let mode = plan.mode;
    // The client's one COM reference (the outer's, when aggregated); threads call through
    // `obj`, a memory reference, so that calls after the final release reach the object.
    let (obj, outer, reference): (_, _, ComPtr<dyn IUnknown>) = match &plan.outer {
        Some(script) => {
            let counts = Arc::new(OuterCounts::default());
            let outer = Arc::new_cyclic(|me| Outer {
                refs: RefCount::new(),
                me: me.clone(),
                clock: clock.clone(),
                script: script.clone(),
                counts: counts.clone(),
                inner: Mutex::new(None),
            });
            let unk: ComPtr<dyn IUnknown> = ComPtr::new(outer.clone() as Arc<dyn IUnknown>);
            let obj = CallObject::<IProbeCalls>::new(server.clone(), Some(&unk), mode);
            *outer.inner.lock().unwrap() = Some(non_delegating(obj.clone()));
            (obj, Some(counts), unk)
        }
        None => {
            let obj = CallObject::<IProbeCalls>::new(server.clone(), None, mode);
            let client: ComPtr<dyn AsyncIProbe> = ComPtr::new(IProbeCalls::upcast(obj.clone()));
            let unk = client
                .query::<dyn IUnknown>()
                .expect("a call object answers IUnknown");
            (obj, None, unk)
        }
    };
    let reference = Arc::new(Mutex::new(Some(reference)));
    let history: History = Arc::new(Mutex::new(Vec::new()));
    // Closed (dropped) once the clients are done: the server then drains its queue and ends.
    let (clients_done, clients_done_rx) = crossbeam_channel::bounded::<()>(0);
    let barrier = Arc::new(Barrier::new(plan.clients.len() + 1));
    let (done_tx, done_rx) = crossbeam_channel::unbounded::<()>();
    let next_cancel = Arc::new(AtomicU64::new(1));
    // When the call object's final release ran (0: not yet): set by the outer's final release
    // hook, or by a thread that dropped a reference and then saw the object gone.
    let released_at = Arc::new(AtomicU64::new(0));

    let mut threads = Vec::new();
    for (t, ops) in plan.clients.iter().enumerate() {
        let (ops, obj, reference) = (ops.clone(), obj.clone(), reference.clone());
        let (clock, history, barrier) = (clock.clone(), history.clone(), barrier.clone());
        let (done, next_cancel) = (done_tx.clone(), next_cancel.clone());
        let released_at = released_at.clone();
        threads.push(thread::spawn(move || {
            barrier.wait();
            for (i, op) in ops.into_iter().enumerate() {
                let tag = ((t as u32) << 8 | i as u32) + 1;
                let cancel_id = next_cancel.fetch_add(1, Ordering::SeqCst);
                // The caller holds a COM reference while it calls (as COM requires), if the
                // client has not released its last one.
                let held = match op {
                    ConcOp::Release => None,
                    _ => reference.lock().unwrap().clone(),
                };
                let invoke = clock.tick();
                let run = AssertUnwindSafe(|| match &op {
                    ConcOp::Begin(0) => ModelOutcome::Returns(obj.begin_read(tag)),
                    ConcOp::Begin(_) => ModelOutcome::Returns(obj.begin_write(tag)),
                    ConcOp::Finish(m) => {
                        let (hr, outs) = if *m == 0 {
                            obj.finish_read()
                        } else {
                            obj.finish_write()
                        };
                        if outs.is_empty() {
                            ModelOutcome::Returns(hr)
                        } else {
                            ModelOutcome::Finished { hr, outs }
                        }
                    }
                    ConcOp::Cancel0 => ModelOutcome::Returns(ICancelMethodCalls::cancel(&*obj, 0)),
                    ConcOp::Cancel(s) => {
                        ModelOutcome::Returns(ICancelMethodCalls::cancel(&*obj, *s))
                    }
                    ConcOp::TestCancel => {
                        ModelOutcome::Returns(ICancelMethodCalls::test_cancel(&*obj))
                    }
                    ConcOp::Wait0 => ModelOutcome::Returns(ISynchronize::wait(&*obj, 0, 0)),
                    ConcOp::Release => {
                        let r = reference.lock().unwrap().take();
                        drop(r);
                        ModelOutcome::Released { abandoned: false }
                    }
                    _ => ModelOutcome::Invalid("not a client operation"),
                });
                let result = catch_unwind(run);
                let response = clock.tick();
                if held.is_some() || op == ConcOp::Release {
                    drop(held);
                    if obj.state() == crate::call::State::Gone {
                        // An upper bound of the final release's instant.
                        let _ = released_at.compare_exchange(
                            0,
                            clock.tick(),
                            Ordering::SeqCst,
                            Ordering::SeqCst,
                        );
                    }
                }
                let reset = record_outer_calls(&history, t, response);
                let result = match result {
                    Ok(ModelOutcome::Invalid(_)) => continue,
                    Ok(o) => ConcResult::Outcome(o),
                    Err(e) => ConcResult::Panicked(panic_message(e)),
                };
                let mut h = history.lock().unwrap();
                let mut push = |op, result, invoke, response| {
                    h.push(Entry {
                        thread: t,
                        op,
                        result,
                        invoke,
                        response,
                    })
                };
                match (&op, reset) {
                    (ConcOp::Begin(m), Some(reset)) => {
                        let call = |part| ConcOp::BeginCall {
                            method: *m,
                            tag,
                            part,
                        };
                        push(
                            call(BeginPart::UntilReset),
                            ConcResult::Unobserved,
                            invoke,
                            reset,
                        );
                        push(call(BeginPart::FromReset), result, reset, response);
                    }
                    (ConcOp::Begin(m), None) => {
                        let op = ConcOp::BeginCall {
                            method: *m,
                            tag,
                            part: BeginPart::Whole,
                        };
                        push(op, result, invoke, response);
                    }
                    (ConcOp::Cancel(s), _) => {
                        let req = ConcOp::CancelRequest {
                            id: cancel_id,
                            seconds: *s,
                        };
                        push(req, ConcResult::Unobserved, invoke, response);
                        push(
                            ConcOp::CancelReturn { id: cancel_id },
                            result,
                            invoke,
                            response,
                        );
                    }
                    (ConcOp::Release, _) => {
                        push(ConcOp::Release, ConcResult::Unobserved, invoke, response);
                        push(
                            ConcOp::HandleClosed,
                            ConcResult::Unobserved,
                            invoke,
                            response,
                        );
                    }
                    _ => push(op.clone(), result, invoke, response),
                }
            }
            let _ = done.send(());
        }));
    }
    drop(done_tx);
    let server_thread = {
        let (clock, history) = (clock.clone(), history.clone());
        let (done, barrier, results) = (
            clients_done_rx,
            barrier.clone(),
            plan.server_results.clone(),
        );
        let t = plan.clients.len();
        thread::spawn(move || {
            barrier.wait();
            let mut n = 0;
            let mut finished = false;
            loop {
                // Once the clients are done every Begin_ has queued its call, so an empty
                // queue then means the server is done.
                let next = if finished {
                    calls_rx.try_recv().ok()
                } else {
                    crossbeam_channel::select! {
                        recv(calls_rx) -> c => c.ok(),
                        recv(done) -> _ => {
                            finished = true;
                            continue;
                        }
                    }
                };
                match next {
                    Some((call, input)) => {
                        let (hr, mut outs) = results
                            .get(n % results.len().max(1))
                            .cloned()
                            .unwrap_or((S_OK, vec![]));
                        n += 1;
                        let tag = match input {
                            IProbeIn::Read { tag } | IProbeIn::Write { tag } => tag,
                        };
                        outs.push(tag);
                        let out = probe_out(call.method(), outs.clone());
                        let invoke = clock.tick();
                        let r = catch_unwind(AssertUnwindSafe(|| call.complete(hr, out)));
                        let response = clock.tick();
                        record_outer_calls(&history, t, response);
                        history.lock().unwrap().push(Entry {
                            thread: t,
                            op: ConcOp::ServerComplete { tag, hr, outs },
                            result: match r {
                                Ok(()) => ConcResult::Unobserved,
                                Err(e) => ConcResult::Panicked(panic_message(e)),
                            },
                            invoke,
                            response,
                        });
                    }
                    None if finished => break,
                    None => continue,
                }
            }
        })
    };
    // Wait for the clients, bounded: a hang is a failure, not a hung test.
    let deadline = std::time::Instant::now() + HANG_LIMIT;
    for _ in 0..plan.clients.len() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if done_rx.recv_timeout(left).is_err() {
            drop(clients_done);
            let history = history.lock().unwrap().clone();
            return Err(NotLinearizable {
                history,
                hung: Some(format!("call object {:?}", obj.state())),
            });
        }
    }
    for t in threads {
        let _ = t.join();
    }
    drop(clients_done);
    let _ = server_thread.join();

    let invoke = clock.tick();
    let observed = ConcResult::State {
        state: obj.state(),
        event: obj.handle().is_signaled(),
        outer: outer.as_ref().map(|o| {
            (
                o.resets.load(Ordering::SeqCst),
                o.signals.load(Ordering::SeqCst),
            )
        }),
    };
    let response = clock.tick();
    let mut history = std::mem::take(&mut *history.lock().unwrap());
    // The final release ends when the call object's final release has run (for an
    // aggregated one, when the outer's final release has let it go).
    let at = outer
        .as_ref()
        .map_or(0, |o| o.released_at.load(Ordering::SeqCst))
        .max(released_at.load(Ordering::SeqCst));
    for e in history
        .iter_mut()
        .filter(|e| matches!(e.op, ConcOp::Release | ConcOp::HandleClosed))
    {
        e.response = e.response.max(at);
    }
    history.push(Entry {
        thread: usize::MAX,
        op: ConcOp::Observe,
        result: observed,
        invoke,
        response,
    });
    drop(reference.lock().unwrap().take());

    match check(&GenModel::for_plan(plan), &history, conc_step) {
        Some(_) => Ok(history),
        None => Err(NotLinearizable {
            history,
            hung: None,
        }),
    }
}
