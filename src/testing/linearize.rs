//! Linearizability checking (Wing & Gong): is a concurrent history explainable by *some*
//! sequential order of its operations that respects real time, in which the reference model
//! gives every operation the result it was observed to have?
//!
//! * [`Clock`] stamps each operation's invocation and response from one global atomic counter
//!   (an order, not wall-clock time): `a` precedes `b` in real time iff `a.response <
//!   b.invoke`.
//! * [`check`] searches the orders consistent with that precedence, depth first, memoising
//!   (set of operations done, model state) pairs that lead nowhere. Histories of up to 64
//!   operations; in practice 10–30.
//! * [`run_concurrent_call`] runs a [`ConcurrentPlan`] — client threads doing `Begin_`,
//!   strict `Finish_`, `Cancel(0)`, `TestCancel` and `Wait(0)` on one call object and its
//!   `ISynchronize`, and a server thread completing every call it is handed — records the
//!   history, and checks it against [`CallModel`] extended with call generations (a server
//!   completion names the call it completes; a completion of a call that is no longer the
//!   current one is dropped, as spec 2.1 and the model's documentation require).

use std::collections::HashSet;
use std::fmt::{self, Debug};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::thread;

use super::{AsyncIProbe, IProbeCalls, IProbeOut};
use crate::call::{self, AsyncInterface, CallObject, ICancelMethodCalls, ManualHandler, State};
use crate::hresult::{HRESULT, S_OK};
use crate::model::{CallModel, CallState, FinishMode, Outcome};
use crate::sync::ISynchronize;
use crate::unknown::{query, ComPtr};

/// A global logical clock: every tick is unique and increasing.
#[derive(Debug, Default)]
pub struct Clock(AtomicU64);

impl Clock {
    /// A clock at 0.
    pub const fn new() -> Self {
        Clock(AtomicU64::new(0))
    }

    /// The next instant.
    pub fn tick(&self) -> u64 {
        // SeqCst: ticks are a single total order that also orders the operations' own memory
        // effects between them.
        self.0.fetch_add(1, Ordering::SeqCst)
    }
}

/// One completed operation of a concurrent history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<O, R> {
    /// The thread that ran it.
    pub thread: usize,
    /// The operation.
    pub op: O,
    /// What it returned.
    pub result: R,
    /// [`Clock`] tick taken just before the call.
    pub invoke: u64,
    /// [`Clock`] tick taken just after it returned.
    pub response: u64,
}

/// Searches for a linearization of `history`: `step(state, op, result)` is the model, `Some(next)`
/// if `op` may return `result` in `state`. Returns the witness order (indices into `history`),
/// or `None` if the history is not linearizable. Panics for more than 64 operations.
pub fn check<S, O, R>(
    init: &S,
    history: &[Entry<O, R>],
    step: impl Fn(&S, &O, &R) -> Option<S>,
) -> Option<Vec<usize>>
where
    S: Clone + Debug,
{
    assert!(history.len() <= 64, "histories of at most 64 operations");
    let all = if history.len() == 64 {
        u64::MAX
    } else {
        (1u64 << history.len()) - 1
    };
    let mut dead: HashSet<(u64, String)> = HashSet::new();
    let mut order = Vec::with_capacity(history.len());
    fn dfs<S: Clone + Debug, O, R>(
        state: &S,
        done: u64,
        all: u64,
        history: &[Entry<O, R>],
        step: &impl Fn(&S, &O, &R) -> Option<S>,
        dead: &mut HashSet<(u64, String)>,
        order: &mut Vec<usize>,
    ) -> bool {
        if done == all {
            return true;
        }
        let key = (done, format!("{state:?}"));
        if dead.contains(&key) {
            return false;
        }
        // An operation may go next iff no other pending operation responded before it was
        // invoked.
        let min_response = history
            .iter()
            .enumerate()
            .filter(|(i, _)| done & (1 << i) == 0)
            .map(|(_, e)| e.response)
            .min()
            .unwrap_or(u64::MAX);
        for (i, e) in history.iter().enumerate() {
            if done & (1 << i) != 0 || e.invoke > min_response {
                continue;
            }
            if let Some(next) = step(state, &e.op, &e.result) {
                order.push(i);
                if dfs(&next, done | (1 << i), all, history, step, dead, order) {
                    return true;
                }
                order.pop();
            }
        }
        dead.insert(key);
        false
    }
    dfs(init, 0, all, history, &step, &mut dead, &mut order).then_some(order)
}

/// An operation of a concurrent call-object history.
#[derive(Clone, PartialEq, Eq)]
pub enum ConcOp {
    /// `Begin_m`.
    Begin(usize),
    /// `Finish_m` on a strict call object (never blocks).
    Finish(usize),
    /// `Cancel(0)`.
    Cancel0,
    /// `TestCancel()`.
    TestCancel,
    /// `ISynchronize::Wait(0, 0)` on the call object.
    Wait0,
    /// The server completes call `generation` (its result is not observable).
    ServerComplete {
        /// Which call (1 for the first `Begin_`, ...).
        generation: u64,
        /// The server's `HRESULT`.
        hr: HRESULT,
        /// The out-values.
        outs: Vec<u32>,
    },
    /// After every thread joined: the call object's state and whether its event is set.
    Observe,
}

impl fmt::Debug for ConcOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConcOp::Begin(m) => write!(f, "Begin_{}", crate::model::method_name(*m)),
            ConcOp::Finish(m) => write!(f, "Finish_{}", crate::model::method_name(*m)),
            ConcOp::Cancel0 => f.write_str("Cancel(0)"),
            ConcOp::TestCancel => f.write_str("TestCancel()"),
            ConcOp::Wait0 => f.write_str("Wait(0, 0)"),
            ConcOp::ServerComplete {
                generation,
                hr,
                outs,
            } => write!(
                f,
                "server completes call #{generation} ({}, {outs:?})",
                super::runner::hr_name(*hr)
            ),
            ConcOp::Observe => f.write_str("observe state"),
        }
    }
}

/// What an operation of a concurrent history returned.
#[derive(Clone, PartialEq, Eq)]
pub enum ConcResult {
    /// A model [`Outcome`] (`Returns` or `Finished`).
    Outcome(Outcome),
    /// A server completion: nothing observable.
    Unobserved,
    /// [`ConcOp::Observe`]: the state and the event.
    State(CallState, bool),
}

impl fmt::Debug for ConcResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConcResult::Outcome(o) => f.write_str(&super::runner::describe(o)),
            ConcResult::Unobserved => f.write_str("-"),
            ConcResult::State(s, e) => {
                write!(f, "{s:?}, event {}", if *e { "set" } else { "clear" })
            }
        }
    }
}

/// Client threads' operations; the server thread completes every call it is handed, in turn
/// with the results of `server_results` (cycled).
#[derive(Clone, Debug)]
pub struct ConcurrentPlan {
    /// One operation list per client thread.
    pub clients: Vec<Vec<ConcOp>>,
    /// The `(HRESULT, out-values)` the server completes calls with, cycled.
    pub server_results: Vec<(HRESULT, Vec<u32>)>,
}

/// The model state of a concurrent call history: the call model and the current call's
/// generation.
#[derive(Clone, Debug)]
pub struct GenModel {
    /// The call object (strict `Finish_`).
    pub call: CallModel,
    /// The generation of the current (or last) call; 0 before the first.
    pub generation: u64,
}

/// The model step for [`ConcOp`]: `Some(next)` if `op` may give `result` in `s`.
pub fn conc_step(s: &GenModel, op: &ConcOp, result: &ConcResult) -> Option<GenModel> {
    let mut n = s.clone();
    let out = match op {
        ConcOp::Begin(m) => {
            let o = n.call.begin(*m);
            if o == Outcome::Returns(S_OK) {
                n.generation += 1;
            }
            o
        }
        ConcOp::Finish(m) => n.call.finish(*m),
        ConcOp::Cancel0 => n.call.cancel(0),
        ConcOp::TestCancel => n.call.test_cancel(),
        ConcOp::Wait0 => n.call.wait(0, 0),
        ConcOp::ServerComplete {
            generation,
            hr,
            outs,
        } => {
            if *generation == n.generation {
                n.call.server_complete(*hr, outs);
            }
            return Some(n);
        }
        ConcOp::Observe => {
            return (*result == ConcResult::State(n.call.state(), n.call.event_set())).then_some(n)
        }
    };
    let observed = match (result, &out) {
        (ConcResult::Outcome(Outcome::Returns(hr)), Outcome::Finished { hr: e, outs })
            if outs.is_empty() && hr == e =>
        {
            true
        }
        (ConcResult::Outcome(o), _) => *o == out,
        _ => false,
    };
    observed.then_some(n)
}

/// A history that is not linearizable, printed thread by thread with its ticks.
#[derive(Clone, Debug)]
pub struct NotLinearizable {
    /// The history.
    pub history: Vec<Entry<ConcOp, ConcResult>>,
}

impl fmt::Display for NotLinearizable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "no sequential order of this history satisfies the model (thread, [invoke, response], operation → result):"
        )?;
        let mut h: Vec<_> = self.history.iter().collect();
        h.sort_by_key(|e| e.invoke);
        for e in h {
            writeln!(
                f,
                "  T{} [{:>3}, {:>3}] {:?} → {:?}",
                e.thread, e.invoke, e.response, e.op, e.result
            )?;
        }
        Ok(())
    }
}

impl std::error::Error for NotLinearizable {}

/// Runs `plan` once on a strict call object (clients and the server start together behind a
/// barrier), records the history and checks it: `Ok(history)` if linearizable.
pub fn run_concurrent_call(
    plan: &ConcurrentPlan,
) -> Result<Vec<Entry<ConcOp, ConcResult>>, NotLinearizable> {
    let server = ManualHandler::<IProbeCalls>::new();
    let obj = CallObject::<IProbeCalls>::new(server.clone(), None, call::FinishMode::Strict);
    let client: ComPtr<dyn AsyncIProbe> = ComPtr::new(IProbeCalls::upcast(obj.clone()));
    let sync = query::<dyn ISynchronize>(&*client).expect("a call object has ISynchronize");
    let cancel =
        query::<dyn ICancelMethodCalls>(&*client).expect("a call object has ICancelMethodCalls");
    let clock = Arc::new(Clock::new());
    let history = Arc::new(Mutex::new(Vec::new()));
    let clients_done = Arc::new(AtomicBool::new(false));
    let barrier = Arc::new(Barrier::new(plan.clients.len() + 1));

    let mut threads = Vec::new();
    for (t, ops) in plan.clients.iter().enumerate() {
        let (ops, client, sync, cancel) =
            (ops.clone(), client.clone(), sync.clone(), cancel.clone());
        let (clock, history, barrier) = (clock.clone(), history.clone(), barrier.clone());
        threads.push(thread::spawn(move || {
            barrier.wait();
            for op in ops {
                let invoke = clock.tick();
                let result = match &op {
                    ConcOp::Begin(0) => Outcome::Returns(client.begin_read(t as u32)),
                    ConcOp::Begin(_) => Outcome::Returns(client.begin_write(t as u32)),
                    ConcOp::Finish(m) => {
                        let (hr, outs) = if *m == 0 {
                            client.finish_read()
                        } else {
                            client.finish_write()
                        };
                        if outs.is_empty() {
                            Outcome::Returns(hr)
                        } else {
                            Outcome::Finished { hr, outs }
                        }
                    }
                    ConcOp::Cancel0 => Outcome::Returns(cancel.cancel(0)),
                    ConcOp::TestCancel => Outcome::Returns(cancel.test_cancel()),
                    ConcOp::Wait0 => Outcome::Returns(sync.wait(0, 0)),
                    ConcOp::ServerComplete { .. } | ConcOp::Observe => continue,
                };
                let response = clock.tick();
                history.lock().unwrap().push(Entry {
                    thread: t,
                    op,
                    result: ConcResult::Outcome(result),
                    invoke,
                    response,
                });
            }
        }));
    }
    let server_thread = {
        let (server, clock, history) = (server.clone(), clock.clone(), history.clone());
        let (done, barrier, results) = (
            clients_done.clone(),
            barrier.clone(),
            plan.server_results.clone(),
        );
        let t = plan.clients.len();
        thread::spawn(move || {
            barrier.wait();
            let mut n = 0;
            loop {
                // Read the flag before looking at the queue: once it is set, every Begin_ has
                // queued its call, so an empty queue then means the server is done.
                let finished = done.load(Ordering::SeqCst);
                // Parks until a call arrives (or 1 ms passes, to look at the flag again).
                match server.take_wait(1) {
                    Some((call, _input)) => {
                        let (hr, outs) = results
                            .get(n % results.len().max(1))
                            .cloned()
                            .unwrap_or((S_OK, vec![]));
                        n += 1;
                        let generation = call.generation();
                        let out = if call.method() == 0 {
                            IProbeOut::Read { outs: outs.clone() }
                        } else {
                            IProbeOut::Write { outs: outs.clone() }
                        };
                        let invoke = clock.tick();
                        call.complete(hr, out);
                        let response = clock.tick();
                        history.lock().unwrap().push(Entry {
                            thread: t,
                            op: ConcOp::ServerComplete {
                                generation,
                                hr,
                                outs,
                            },
                            result: ConcResult::Unobserved,
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
    for t in threads {
        t.join().expect("a client thread panicked");
    }
    clients_done.store(true, Ordering::SeqCst);
    server_thread.join().expect("the server thread panicked");

    let invoke = clock.tick();
    let observed = ConcResult::State(
        super::runner::model_state(obj.state()),
        obj.handle().is_signaled(),
    );
    let response = clock.tick();
    let mut history = std::mem::take(&mut *history.lock().unwrap());
    history.push(Entry {
        thread: usize::MAX,
        op: ConcOp::Observe,
        result: observed,
        invoke,
        response,
    });
    drop((sync, cancel, client));
    debug_assert!(matches!(obj.state(), State::Gone));

    let init = GenModel {
        call: CallModel::with_mode(super::PROBE_ASYNC_IID, FinishMode::Strict),
        generation: 0,
    };
    match check(&init, &history, conc_step) {
        Some(_) => Ok(history),
        None => Err(NotLinearizable { history }),
    }
}
