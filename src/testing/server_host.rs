//! A server-side call object written as the Microsoft samples write them, hosted by
//! [`ServerCallHost`] behind a real client [`CallObject`], under the runners'
//! [virtual clock](super::runner::RunOptions::virtual_clock): the check behind the
//! `server_host` fuzz target.
//!
//! The server call object ([`IProbe`](super::IProbe), aggregated under the host) is the
//! sample's shape made deterministic: `Begin_` refuses while busy (`RPC_S_CALLPENDING`), can
//! be told to fail (`E_FAIL`), resets the outer's `ISynchronize` and queues a *job* instead of
//! handing it to a worker thread; the sequence runs the jobs ([`HostOp::Work`]). A job asks
//! `TestCancel` through the outer, stores its result — the call's unique tag as the
//! out-parameter, or `RPC_E_CALL_CANCELED` if it heard the cancel — and calls `Signal` on the
//! outer. Jobs run whenever the sequence says, so their `Signal`s arrive late: after the
//! client's `Cancel`, `Finish_`, the next `Begin_`, or its final `Release`. A
//! [`HostOp::Begin`] with `preempted` set lets the worker run its queued jobs inside the next
//! `Begin_` (between the host's bookkeeping and the server's busy check), as a worker thread
//! may.
//!
//! Checked after every step:
//!
//! * **exactly-once delivery to the right call**: `Finish_` returns a tag only for the call
//!   begun with it, at most once, and only with `S_OK`;
//! * a call the client cancelled locally finishes with `RPC_E_CALL_CANCELED`;
//! * a job for the client's current call, run while its cancel window is open, hears the
//!   cancel through the outer's `TestCancel`;
//! * `Begin_` answers by the client's state (`S_OK` when idle, `RPC_S_CALLPENDING` during a
//!   call); a call the server refused or failed in `Begin_` completes with that `HRESULT`;
//! * the client's event is set exactly when its call is complete;
//! * at the end (every queued job run, unless the header says the server abandons its work)
//!   and after every reference is released, the call object, the host and the server call
//!   object are gone from memory.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Weak};

use parking_lot::Mutex;

use super::runner::hr_name;
use super::{AsyncIProbe, IProbeCalls};
use crate::call::AsyncInterface;
use crate::call::{self, CallObject, ICancelMethodCalls, ServerCallHost, State};
use crate::hresult::{
    E_FAIL, E_NOINTERFACE, E_UNEXPECTED, HRESULT, RPC_E_CALL_CANCELED, RPC_E_CALL_COMPLETE,
    RPC_E_DISCONNECTED, RPC_S_CALLPENDING, S_OK,
};
use crate::model::{FinishMode, RPC_C_CANCEL_INFINITE_TIMEOUT};
use crate::sync::ISynchronize;
use crate::unknown::{query, ComPtr, INonDelegatingUnknown, RefCount};

/// One operation of a hosted-server run.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostOp {
    /// The client's `Begin_m` with a fresh tag; `preempted`: the server's worker runs its
    /// queued jobs inside this `Begin_`, before the server's busy check.
    Begin {
        /// The method index (0 or 1).
        method: usize,
        /// Whether the worker runs inside the `Begin_`.
        preempted: bool,
    },
    /// The server's worker runs its oldest queued job (or nothing).
    Work,
    /// The server's worker runs every queued job.
    WorkAll,
    /// The client's `Finish_m` (skipped in blocking mode while the call is in progress).
    Finish(usize),
    /// The client's `Cancel(s)` (windows under the virtual clock).
    Cancel(u32),
    /// The open cancel window expires now.
    CancelTimeout,
    /// The client's `TestCancel()`.
    TestCancel,
    /// From now on the server's `Begin_` fails with `E_FAIL` (or no longer does).
    ServerBeginFails(bool),
    /// The client's final `Release` of its call object.
    Release,
}

impl fmt::Display for HostOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |m: usize| if m == 0 { "Read" } else { "Write" };
        match self {
            HostOp::Begin { method, preempted } => write!(
                f,
                "Begin_{}{}",
                name(*method),
                if *preempted {
                    " (worker runs inside)"
                } else {
                    ""
                }
            ),
            HostOp::Work => f.write_str("worker: one job"),
            HostOp::WorkAll => f.write_str("worker: every job"),
            HostOp::Finish(m) => write!(f, "Finish_{}", name(*m)),
            HostOp::Cancel(s) if *s == RPC_C_CANCEL_INFINITE_TIMEOUT => {
                f.write_str("Cancel(INFINITE)")
            }
            HostOp::Cancel(s) => write!(f, "Cancel({s})"),
            HostOp::CancelTimeout => f.write_str("CancelTimeout"),
            HostOp::TestCancel => f.write_str("TestCancel()"),
            HostOp::ServerBeginFails(b) => write!(f, "server Begin_ fails: {b}"),
            HostOp::Release => f.write_str("Release()"),
        }
    }
}

/// Known findings a run can be told to tolerate (see
/// [`aggregation::Tolerate`](super::aggregation::Tolerate)); the default tolerates nothing.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Tolerate {
    /// Issue 9, finding 2: a late server `Signal` (through the host) completes the client's
    /// next call with the earlier call's result, or answers the earlier call's `TestCancel`
    /// with the next call's flag. Tolerated: a `Finish_` returning another call's tag, and a
    /// job missing its call's cancel, are not reported.
    pub late_signal: bool,
    /// Issue 9, finding 3: a server call object that never signals keeps the call object,
    /// the host and itself alive after the client's release (a reference cycle). Tolerated:
    /// no leak check when the server abandons its work.
    pub leak_when_never_signaled: bool,
}

#[derive(Default)]
struct Shared {
    jobs: VecDeque<u32>,
    begin_fails: bool,
    preempt: bool,
    /// Jobs run: (tag, what the outer's `TestCancel` said).
    ran: Vec<(u32, HRESULT)>,
    /// Every server `Begin_`: the tag and what it returned.
    begins: Vec<(u32, HRESULT)>,
    server: Weak<ProbeServerCall>,
}

enum Work {
    Idle,
    Busy { result: Option<(HRESULT, Vec<u32>)> },
}

/// The sample-style server call object (see the [module documentation](self)).
struct ProbeServerCall {
    refs: RefCount,
    me: Weak<ProbeServerCall>,
    work: Mutex<Work>,
    shared: Arc<Mutex<Shared>>,
}

impl ProbeServerCall {
    fn run_job(&self) -> bool {
        let Some(tag) = self.shared.lock().jobs.pop_front() else {
            return false;
        };
        let heard = query::<dyn ICancelMethodCalls>(self)
            .map(|c| c.test_cancel())
            .unwrap_or(E_NOINTERFACE);
        self.shared.lock().ran.push((tag, heard));
        let result = if heard == RPC_E_CALL_CANCELED {
            (RPC_E_CALL_CANCELED, Vec::new())
        } else {
            (S_OK, vec![tag])
        };
        if let Work::Busy { result: r } = &mut *self.work.lock() {
            *r = Some(result);
        }
        // Signal with no lock held: the host calls Finish_ from inside it.
        if let Ok(sync) = query::<dyn ISynchronize>(self) {
            let _ = sync.signal();
        }
        true
    }

    fn begin(&self, tag: u32) -> HRESULT {
        if std::mem::take(&mut self.shared.lock().preempt) {
            while self.run_job() {}
        }
        let hr = self.begin_now(tag);
        self.shared.lock().begins.push((tag, hr));
        hr
    }

    fn begin_now(&self, tag: u32) -> HRESULT {
        {
            let mut w = self.work.lock();
            if matches!(*w, Work::Busy { .. }) {
                return RPC_S_CALLPENDING;
            }
            if self.shared.lock().begin_fails {
                return E_FAIL;
            }
            *w = Work::Busy { result: None };
        }
        if let Ok(sync) = query::<dyn ISynchronize>(self) {
            let _ = sync.reset();
        }
        self.shared.lock().jobs.push_back(tag);
        S_OK
    }

    fn finish(&self) -> (HRESULT, Vec<u32>) {
        let mut w = self.work.lock();
        match &mut *w {
            Work::Idle => (RPC_E_CALL_COMPLETE, Vec::new()),
            // The sample would wait for its worker; the host only calls Finish_ after Signal.
            Work::Busy { result: None } => (RPC_S_CALLPENDING, Vec::new()),
            Work::Busy { result } => {
                let r = result.take().unwrap_or((E_FAIL, Vec::new()));
                *w = Work::Idle;
                r
            }
        }
    }
}

impl AsyncIProbe for ProbeServerCall {
    fn begin_read(&self, tag: u32) -> HRESULT {
        self.begin(tag)
    }
    fn finish_read(&self) -> (HRESULT, Vec<u32>) {
        self.finish()
    }
    fn begin_write(&self, tag: u32) -> HRESULT {
        self.begin(tag)
    }
    fn finish_write(&self) -> (HRESULT, Vec<u32>) {
        self.finish()
    }
}

crate::com_object!([] ProbeServerCall { interfaces: [dyn AsyncIProbe] });

/// The first departure from the rules, with the run up to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HostMismatch {
    /// Every step up to the failing one, as readable lines.
    pub steps: Vec<String>,
    /// What went wrong.
    pub failure: String,
}

impl fmt::Display for HostMismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "hosted server call object run departs from the rules:")?;
        for (i, s) in self.steps.iter().enumerate() {
            writeln!(f, "  {i:>3}: {s}")?;
        }
        writeln!(f, "> {}", self.failure)
    }
}

impl std::error::Error for HostMismatch {}

type Check = Result<(), String>;

struct HostRun {
    obj: Arc<CallObject<IProbeCalls>>,
    client: Option<ComPtr<dyn AsyncIProbe>>,
    host: Weak<ServerCallHost<IProbeCalls>>,
    shared: Arc<Mutex<Shared>>,
    server: Weak<ProbeServerCall>,
    mode: call::FinishMode,
    /// An open cancel window: seconds, generation.
    cancel: Option<(u32, u64)>,
    /// tag → the client generation begun with it.
    tags: HashMap<u32, u64>,
    next_tag: u32,
    /// Tags already returned by `Finish_`.
    delivered: Vec<u32>,
    /// Generations whose cancel the client requested, and those completed locally.
    cancel_requested: Vec<u64>,
    cancelled_locally: Vec<u64>,
    /// generation → the tag it was begun with.
    gen_tag: HashMap<u64, u32>,
    tolerate: Tolerate,
    lines: Vec<String>,
    /// Whether to record readable lines (only to print a failing run).
    record: bool,
}

impl HostRun {
    fn new(mode: FinishMode, tolerate: Tolerate, record: bool) -> Result<HostRun, String> {
        let shared = Arc::new(Mutex::new(Shared::default()));
        let s2 = shared.clone();
        let host = ServerCallHost::<IProbeCalls>::new(move |outer| {
            let server = Arc::new_cyclic(|me| ProbeServerCall {
                refs: RefCount::aggregated(outer),
                me: me.clone(),
                work: Mutex::new(Work::Idle),
                shared: s2.clone(),
            });
            s2.lock().server = Arc::downgrade(&server);
            server as Arc<dyn INonDelegatingUnknown>
        })
        .map_err(|hr| format!("ServerCallHost::new failed: {}", hr_name(hr)))?;
        let server = shared.lock().server.clone();
        let obj = CallObject::<IProbeCalls>::new(host.clone(), None, mode);
        Ok(HostRun {
            client: Some(ComPtr::new(IProbeCalls::upcast(obj.clone()))),
            obj,
            host: Arc::downgrade(&host),
            shared,
            server,
            mode,
            cancel: None,
            tags: HashMap::new(),
            next_tag: 1,
            delivered: Vec::new(),
            cancel_requested: Vec::new(),
            cancelled_locally: Vec::new(),
            gen_tag: HashMap::new(),
            tolerate,
            lines: Vec::new(),
            record,
        })
    }

    /// What the server's `Begin_` of `tag` returned, if it saw that call.
    fn server_begin(&self, tag: u32) -> Option<HRESULT> {
        let sh = self.shared.lock();
        sh.begins.iter().find(|(t, _)| *t == tag).map(|(_, hr)| *hr)
    }

    fn generation(&self) -> u64 {
        self.obj.call_state().generation()
    }

    fn work(&mut self, all: bool) -> Check {
        let Some(server) = self.server.upgrade() else {
            note!(self, "    (the server call object is gone)");
            return Ok(());
        };
        let before = self.shared.lock().ran.len();
        let cancelling = (self.obj.state() == State::Cancelling).then(|| self.generation());
        if all {
            while server.run_job() {}
        } else {
            server.run_job();
        }
        let ran: Vec<(u32, HRESULT)> = self.shared.lock().ran[before..].to_vec();
        for (tag, heard) in ran {
            note!(
                self,
                "    job for tag {tag}: TestCancel → {}",
                hr_name(heard)
            );
            let g = self.tags.get(&tag).copied();
            if g.is_some()
                && g == cancelling
                && heard != RPC_E_CALL_CANCELED
                && !self.tolerate.late_signal
            {
                return Err(format!(
                    "the job for call {} ran during its cancel window, but the outer's TestCancel \
                     said {} (the client's cancel was not heard)",
                    g.unwrap_or(0),
                    hr_name(heard)
                ));
            }
        }
        Ok(())
    }

    fn step(&mut self, op: &HostOp) -> Check {
        let obj = self.obj.clone();
        let before = obj.state();
        match op {
            HostOp::Begin { method, preempted } => {
                let tag = self.next_tag;
                self.next_tag += 1;
                let ran_before = self.shared.lock().ran.len();
                self.shared.lock().preempt = *preempted;
                let hr = if *method == 0 {
                    obj.begin_read(tag)
                } else {
                    obj.begin_write(tag)
                };
                self.shared.lock().preempt = false;
                note!(self, "{op} tag {tag} → {}", hr_name(hr));
                let ran: Vec<(u32, HRESULT)> = self.shared.lock().ran[ran_before..].to_vec();
                for (t, heard) in ran {
                    note!(self, "    job for tag {t}: TestCancel → {}", hr_name(heard));
                }
                let expected = match before {
                    State::Idle => S_OK,
                    State::Gone => RPC_E_DISCONNECTED,
                    _ => RPC_S_CALLPENDING,
                };
                if hr != expected {
                    return Err(format!(
                        "Begin_ in {before:?} returned {}, expected {}",
                        hr_name(hr),
                        hr_name(expected)
                    ));
                }
                if hr == S_OK {
                    let g = self.generation();
                    self.tags.insert(tag, g);
                    self.gen_tag.insert(g, tag);
                    // Started on the server, waiting in the host behind a busy server (still
                    // pending), or refused by the server's Begin_ (completed with its HRESULT).
                    let state = obj.state();
                    if matches!(state, State::Signaled { .. }) && self.server_begin(tag).is_none() {
                        return Err(format!(
                            "call {g} completed in Begin_ although the server never saw it"
                        ));
                    }
                }
            }
            HostOp::Work | HostOp::WorkAll => {
                note!(self, "{op}");
                self.work(*op == HostOp::WorkAll)?;
            }
            HostOp::Finish(m) => {
                if self.mode == call::FinishMode::Blocking
                    && matches!(before, State::Pending | State::Cancelling)
                {
                    note!(self, "{op}   (skipped: would block)");
                    return Ok(());
                }
                let (g, method) = {
                    let cs = obj.call_state();
                    (cs.generation(), cs.method())
                };
                let (hr, outs) = if *m == 0 {
                    obj.finish_read()
                } else {
                    obj.finish_write()
                };
                note!(self, "{op} → {}, outs {outs:?}", hr_name(hr));
                if *m != method && before.in_call() {
                    if hr != E_UNEXPECTED || !outs.is_empty() {
                        return Err(format!(
                            "Finish_ of the other method must return E_UNEXPECTED, got {}",
                            hr_name(hr)
                        ));
                    }
                } else {
                    self.check_finish(before, g, hr, &outs)?;
                }
            }
            HostOp::Cancel(0) => {
                let hr = ICancelMethodCalls::cancel(&*obj, 0);
                note!(self, "{op} → {}", hr_name(hr));
                let g = self.generation();
                if hr == S_OK {
                    if before != State::Pending {
                        return Err(format!("Cancel(0) in {before:?} returned S_OK"));
                    }
                    self.cancel_requested.push(g);
                    self.cancelled_locally.push(g);
                }
            }
            HostOp::Cancel(s) => match obj.virtual_cancel_request() {
                Ok(g) => {
                    note!(self, "{op} → in flight");
                    self.cancel = Some((*s, g));
                    self.cancel_requested.push(g);
                }
                Err(hr) => note!(self, "{op} → {}", hr_name(hr)),
            },
            HostOp::CancelTimeout => match self.cancel {
                Some((s, g)) if s != RPC_C_CANCEL_INFINITE_TIMEOUT => {
                    self.cancel = None;
                    let hr = obj.virtual_cancel_window_over(g);
                    note!(self, "{op} → the Cancel returns {}", hr_name(hr));
                    if hr != S_OK {
                        return Err(format!(
                            "a window that expires with the call still Cancelling must return \
                             S_OK, got {}",
                            hr_name(hr)
                        ));
                    }
                    self.cancelled_locally.push(g);
                }
                _ => note!(self, "{op}   (skipped: no finite window open)"),
            },
            HostOp::TestCancel => {
                let hr = ICancelMethodCalls::test_cancel(&*obj);
                note!(self, "{op} → {}", hr_name(hr));
            }
            HostOp::ServerBeginFails(b) => {
                note!(self, "{op}");
                self.shared.lock().begin_fails = *b;
            }
            HostOp::Release => {
                if self.cancel.is_some() || self.client.is_none() {
                    note!(self, "{op}   (skipped: not the final release)");
                    return Ok(());
                }
                note!(self, "{op}");
                drop(self.client.take());
                if obj.state() != State::Gone {
                    return Err(format!(
                        "after the final release the call is {:?}",
                        obj.state()
                    ));
                }
            }
        }
        self.resolve_window()?;
        self.check_event()
    }

    /// Under the virtual clock an open window ends as soon as the call is no longer
    /// `Cancelling` (the server completed it): the `Cancel` returns `RPC_E_CALL_COMPLETE`.
    fn resolve_window(&mut self) -> Check {
        if let Some((_, g)) = self.cancel {
            if !(self.obj.state() == State::Cancelling && self.generation() == g) {
                self.cancel = None;
                let hr = self.obj.virtual_cancel_window_over(g);
                note!(self, "    the Cancel in flight returns {}", hr_name(hr));
                if hr != RPC_E_CALL_COMPLETE {
                    return Err(format!(
                        "a Cancel whose call the server completed must return \
                         RPC_E_CALL_COMPLETE, got {}",
                        hr_name(hr)
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_event(&self) -> Check {
        let state = self.obj.state();
        let set = self.obj.handle().is_signaled();
        match state {
            State::Pending | State::Cancelling if set => Err(format!(
                "the call's event is set while the call is {state:?}"
            )),
            State::Signaled { .. } if !set => {
                Err("the call is complete but its event is clear".into())
            }
            _ => Ok(()),
        }
    }

    fn check_finish(&mut self, before: State, g: u64, hr: HRESULT, outs: &[u32]) -> Check {
        if !matches!(before, State::Signaled { .. }) {
            return Ok(()); // the state machine's own answers; the model suites check them
        }
        if self.cancelled_locally.contains(&g) {
            if hr != RPC_E_CALL_CANCELED || !outs.is_empty() {
                return Err(format!(
                    "call {g} was cancelled locally; Finish_ must return RPC_E_CALL_CANCELED, \
                     got {}, outs {outs:?}",
                    hr_name(hr)
                ));
            }
            return Ok(());
        }
        match outs {
            [] => {}
            [t] => {
                if self.delivered.contains(t) {
                    return Err(format!("tag {t} was delivered twice"));
                }
                self.delivered.push(*t);
                return match self.tags.get(t) {
                    Some(&tg) if tg == g => {
                        if hr != S_OK {
                            return Err(format!("a tag came with {}", hr_name(hr)));
                        }
                        Ok(())
                    }
                    Some(_) if self.tolerate.late_signal => Ok(()),
                    Some(&tg) => Err(format!(
                        "Finish_ of call {g} returned call {tg}'s result (tag {t}): a late \
                         server Signal completed the next call (issue 9, finding 2)"
                    )),
                    None => Err(format!("Finish_ returned tag {t}, never handed out")),
                };
            }
            _ => return Err(format!("Finish_ returned several tags: {outs:?}")),
        }
        let refused = self
            .gen_tag
            .get(&g)
            .and_then(|t| self.server_begin(*t))
            .filter(|hr| hr.failed());
        if let Some(refused) = refused {
            if hr != refused {
                return Err(format!(
                    "the server refused call {g} with {}; Finish_ returned {}",
                    hr_name(refused),
                    hr_name(hr)
                ));
            }
        } else if hr == S_OK {
            return Err(format!("Finish_ of call {g} returned S_OK without its tag"));
        }
        Ok(())
    }

    /// Resolves an open window and (unless `abandon`) runs every remaining job: checked steps.
    fn settle(&mut self, abandon: bool) -> Check {
        if let Some((s, g)) = self.cancel {
            if s == RPC_C_CANCEL_INFINITE_TIMEOUT {
                self.step(&HostOp::WorkAll)?;
            }
            if self.cancel.is_some() {
                self.cancel = None;
                let _ = self.obj.virtual_cancel_window_over(g);
            }
        }
        if !abandon {
            self.step(&HostOp::WorkAll)?;
        }
        Ok(())
    }

    /// Releases everything and checks that nothing is left in memory.
    fn finish_run(mut self, abandon: bool) -> Check {
        drop(self.client.take());
        let obj = Arc::downgrade(&self.obj);
        let (host, server) = (self.host.clone(), self.server.clone());
        let tolerate = self.tolerate;
        drop(self);
        let alive = [
            ("call object", obj.strong_count()),
            ("host", host.strong_count()),
            ("server call object", server.strong_count()),
        ];
        let leaked = alive.iter().any(|(_, n)| *n != 0);
        if leaked && abandon && tolerate.leak_when_never_signaled {
            // Tolerated: break the cycle by letting the server signal after all, so that the
            // memory goes (and a leak checker such as LeakSanitizer stays quiet).
            if let Some(server) = server.upgrade() {
                while server.run_job() {}
            }
            return Ok(());
        }
        if leaked {
            return Err(format!(
                "leak after everything is released{}: {alive:?} strong references{}",
                if abandon {
                    " (the server abandoned its work)"
                } else {
                    ""
                },
                if abandon { " (issue 9, finding 3)" } else { "" }
            ));
        }
        Ok(())
    }
}

/// Runs `ops` against a client call object served through [`ServerCallHost`] by the
/// sample-style server call object (see the [module documentation](self)). `abandon`: at the
/// end the server never runs its remaining jobs (it never signals them).
pub fn check_server_host(
    mode: FinishMode,
    abandon: bool,
    ops: &[HostOp],
) -> Result<(), HostMismatch> {
    check_server_host_with(mode, abandon, ops, Tolerate::default())
}

/// [`check_server_host`], tolerating the known findings `tolerate` names.
pub fn check_server_host_with(
    mode: FinishMode,
    abandon: bool,
    ops: &[HostOp],
    tolerate: Tolerate,
) -> Result<(), HostMismatch> {
    match run_server_host(mode, abandon, ops, tolerate, false) {
        Ok(()) => Ok(()),
        // Deterministic: run it again, recording, to print it.
        Err(first) => match run_server_host(mode, abandon, ops, tolerate, true) {
            Err(m) => Err(m),
            Ok(()) => Err(first),
        },
    }
}

fn run_server_host(
    mode: FinishMode,
    abandon: bool,
    ops: &[HostOp],
    tolerate: Tolerate,
    record: bool,
) -> Result<(), HostMismatch> {
    let mut run = HostRun::new(mode, tolerate, record).map_err(|failure| HostMismatch {
        steps: Vec::new(),
        failure,
    })?;
    let result = ops
        .iter()
        .try_for_each(|op| run.step(op))
        .and_then(|()| run.settle(abandon));
    if let Err(failure) = result {
        let steps = std::mem::take(&mut run.lines);
        // Let every job and call go before the run is dropped.
        let _ = run.work(true);
        return Err(HostMismatch { steps, failure });
    }
    let lines = run.lines.clone();
    let shared = run.shared.clone();
    let result = run.finish_run(abandon);
    shared.lock().jobs.clear();
    result.map_err(|failure| HostMismatch {
        steps: lines,
        failure,
    })
}
