//! Executes parsed [`Step`]s against the real comasync objects.
//!
//! # How a script runs
//!
//! * Every actor is a thread named after it (`client`, `server`, `t1`, ...). A plain statement
//!   is handed to its actor's thread and the runner waits for it; if it has not returned after
//!   the watchdog (10 s by default) the run stops with `FILE:LINE: ACTOR still blocked after
//!   10 s`. `start` hands an operation over without waiting; `join` waits for it (same
//!   watchdog).
//! * The server objects are `SimpleStream::create_manual` servers: a begun call waits in the
//!   server's queue until a `Complete` or `Fail` statement runs it. No thread decides when a
//!   call completes, so results never depend on machine speed.
//! * After every statement the runner waits until each started operation has either returned
//!   or is blocked (a `Finish_` on a call still pending, a `Cancel` waiting out its window, a
//!   wait registered on handles none of which is signaled). It reads observable state for
//!   this — the call's state and `HANDLE::waiter_count` — each time the library says a thread
//!   blocked or an actor returned (`sync::observe`); it never polls or sleeps to order events.
//!   So the output and the trace of a script are the same on every run.
//! * Operations that need an interface the variable is not (`Wait call 0`, `Cancel call 0`)
//!   query for it, use it and release it, as a client would.

use std::collections::HashMap;
use std::fmt;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};

use super::mermaid;
use super::model_check::{self, ModelCheck, Observed, Seen};
use super::parse::{self, hr_name, Iface, Op, ServerKind, Step, StepKind, Value};
use super::trace::{Event, EventKind, Role, Trace};
use crate::call::{
    AsyncInterface, CallObject, FinishMode, ICallFactory, ICancelMethodCalls, ManualHandler,
    ServerCall, State,
};
use crate::hresult::{HRESULT, S_OK};
use crate::simple_stream::{
    AsyncISimpleStream, ISimpleStream, ISimpleStreamCalls, ISimpleStreamIn, ISimpleStreamOut,
    SimpleStream,
};
use crate::sync::observe::Observer;
use crate::sync::prim::Deadline;
use crate::sync::{
    co_wait_for_multiple_handles, ISynchronize, ISynchronizeContainer, ISynchronizeHandle,
    ManualResetEvent, StdEvent, SynchronizeContainer, COWAIT_VALID_FLAGS, COWAIT_WAITALL, HANDLE,
    INFINITE,
};
use crate::unknown::{query, ComPtr, IUnknown, Interface};

/// Why a script did not run to the end. [`ScriptError::exit_code`] gives the CLI's exit code.
///
/// ```
/// use comasync::script::{run_source, RunOptions, ScriptError};
///
/// let opts = RunOptions::default();
/// let script = "e = StdEvent\nclient: Wait e 0 -> S_OK\n"; // nobody signalled e
/// let err = run_source("wait.cas", script, &opts, &mut std::io::sink()).unwrap_err();
/// assert_eq!(err.to_string(), "wait.cas:2: expected S_OK, got RPC_S_CALLPENDING");
/// assert!(matches!(err, ScriptError::Mismatch { line: 2, .. }));
/// assert_eq!(err.exit_code(), 1);
/// let err = run_source("typo.cas", "e = StdEvnt\n", &opts, &mut std::io::sink()).unwrap_err();
/// assert!(matches!(err, ScriptError::Syntax { line: 1, .. }));
/// assert_eq!(err.exit_code(), 2);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// The script file could not be read (exit code 2).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// The script is not well formed (exit code 2).
    #[error("{file}:{line}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// The 1-based line.
        line: usize,
        /// What was expected.
        message: String,
    },
    /// A step's result differs from its expectation (exit code 1).
    #[error("{file}:{line}: expected {expected}, got {got}")]
    Mismatch {
        /// The file.
        file: String,
        /// The 1-based line.
        line: usize,
        /// The expected result.
        expected: String,
        /// The actual result.
        got: String,
    },
    /// A step could not be carried out: an actor stayed blocked past the watchdog, a server
    /// had no call to complete, a variable was released (exit code 1).
    #[error("{file}:{line}: {message}")]
    Runtime {
        /// The file.
        file: String,
        /// The 1-based line.
        line: usize,
        /// What happened.
        message: String,
    },
    /// Writing the output failed (exit code 1).
    #[error("writing the output: {0}")]
    Output(#[from] io::Error),
}

impl ScriptError {
    /// The exit-code convention: 0 all scripts passed (no error), 1 a mismatch or a step that
    /// could not run, 2 a syntax or usage error (including an unreadable file).
    pub fn exit_code(&self) -> u8 {
        match self {
            ScriptError::Io { .. } | ScriptError::Syntax { .. } => 2,
            ScriptError::Mismatch { .. } | ScriptError::Runtime { .. } | ScriptError::Output(_) => {
                1
            }
        }
    }
}

/// How to run a script.
///
/// ```
/// use std::time::Duration;
/// use comasync::script::{run_source, RunOptions};
///
/// assert_eq!(RunOptions::default().watchdog, Duration::from_secs(10));
/// let opts = RunOptions { trace: true, watchdog: Duration::from_secs(30) };
/// let mut out = Vec::new();
/// run_source("signal.cas", "e = ManualResetEvent\nclient: Signal e -> S_OK\n", &opts, &mut out)?;
/// let out = String::from_utf8(out).unwrap();
/// assert!(out.contains("client -> e: Signal()")); // the step's trace events, under it
/// # Ok::<(), comasync::script::ScriptError>(())
/// ```
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Print each step's trace events under it.
    pub trace: bool,
    /// How long a step (or a `join`) may block before the run stops with an error.
    pub watchdog: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            trace: false,
            watchdog: Duration::from_secs(10),
        }
    }
}

/// Runs each script in turn, writing each step's result to `out` (and, with `trace`, its
/// events), and stops at the first script that fails. The error is returned, not printed:
/// the caller prints it (`FILE:LINE: expected X, got Y`) and exits with
/// [`ScriptError::exit_code`].
pub fn run_files(paths: &[PathBuf], trace: bool, out: &mut dyn Write) -> Result<(), ScriptError> {
    let opts = RunOptions {
        trace,
        ..RunOptions::default()
    };
    for path in paths {
        run_file(path, &opts, out)?;
    }
    Ok(())
}

/// Runs one script file; returns its trace.
pub fn run_file(path: &Path, opts: &RunOptions, out: &mut dyn Write) -> Result<Trace, ScriptError> {
    let name = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|source| ScriptError::Io {
        path: name.clone(),
        source,
    })?;
    run_source(&name, &source, opts, out)
}

/// Runs a script given as text; `name` is the file name used in messages. Returns its trace.
///
/// ```
/// use comasync::script::{run_source, RunOptions};
/// let script = "e = StdEvent\nclient: Wait e 0 -> RPC_S_CALLPENDING\nclient: Signal e -> S_OK\n";
/// let mut out = Vec::new();
/// run_source("doc.cas", script, &RunOptions::default(), &mut out).unwrap();
/// assert!(String::from_utf8(out).unwrap().contains("RPC_S_CALLPENDING (0x80010115)"));
/// ```
pub fn run_source(
    name: &str,
    source: &str,
    opts: &RunOptions,
    out: &mut dyn Write,
) -> Result<Trace, ScriptError> {
    let (trace, result) = run_source_traced(name, source, opts, out);
    result.map(|()| trace)
}

/// Runs a script and returns its trace also when it fails: the events up to the failing step.
fn run_source_traced(
    name: &str,
    source: &str,
    opts: &RunOptions,
    out: &mut dyn Write,
) -> (Trace, Result<(), ScriptError>) {
    let steps = match parse::parse(source) {
        Ok(steps) => steps,
        Err(e) => {
            let error = ScriptError::Syntax {
                file: name.to_string(),
                line: e.line,
                message: e.message,
            };
            return (Trace::default(), Err(error));
        }
    };
    let mut runner = Runner::new(name, opts.clone());
    let result = writeln!(out, "== {name}")
        .map_err(ScriptError::from)
        .and_then(|()| runner.run(&steps, out))
        .and_then(|()| Ok(writeln!(out, "ok: {} steps", steps.len())?));
    (std::mem::take(&mut runner.trace), result)
}

/// Runs the script at `path` and writes its trace as a Mermaid `sequenceDiagram` to `out`. A
/// script that fails is drawn up to the failing step, which is marked with a note (`✗
/// FILE:LINE: ...`); the error is returned after the diagram is written.
pub fn diagram_file(path: &Path, out: &mut dyn Write) -> Result<(), ScriptError> {
    let name = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|source| ScriptError::Io {
        path: name.clone(),
        source,
    })?;
    let (mut trace, result) =
        run_source_traced(&name, &source, &RunOptions::default(), &mut io::sink());
    if let Err(e @ (ScriptError::Mismatch { .. } | ScriptError::Runtime { .. })) = &result {
        let over = trace
            .participants
            .first()
            .map_or_else(|| "script".to_string(), |p| p.id.clone());
        if trace.participants.is_empty() {
            trace.participant(&over, &over, Role::Client);
        }
        let line = match e {
            ScriptError::Mismatch { line, .. } | ScriptError::Runtime { line, .. } => *line,
            _ => 0,
        };
        trace.events.push(Event {
            line,
            actor: over.clone(),
            thread: String::new(),
            apartment: "MTA",
            kind: EventKind::Note,
            from: over.clone(),
            to: over,
            label: format!("✗ {e}"),
        });
    }
    if !matches!(
        result,
        Err(ScriptError::Syntax { .. } | ScriptError::Io { .. })
    ) {
        out.write_all(mermaid::render(&trace).as_bytes())?;
    }
    result
}

// ---------------------------------------------------------------------------------------------
// Interface pointers held by the script

/// One COM reference held by a script variable.
enum Ptr {
    Stream(ComPtr<dyn ISimpleStream>),
    Factory(ComPtr<dyn ICallFactory>),
    Call(ComPtr<dyn AsyncISimpleStream>),
    Sync(ComPtr<dyn ISynchronize>),
    SyncHandle(ComPtr<dyn ISynchronizeHandle>),
    Cancel(ComPtr<dyn ICancelMethodCalls>),
    Container(ComPtr<dyn ISynchronizeContainer>),
    Unknown(ComPtr<dyn IUnknown>),
}

macro_rules! each_ptr {
    ($p:expr, $x:ident => $e:expr) => {
        match $p {
            Ptr::Stream($x) => $e,
            Ptr::Factory($x) => $e,
            Ptr::Call($x) => $e,
            Ptr::Sync($x) => $e,
            Ptr::SyncHandle($x) => $e,
            Ptr::Cancel($x) => $e,
            Ptr::Container($x) => $e,
            Ptr::Unknown($x) => $e,
        }
    };
}

impl Ptr {
    fn unknown(&self) -> Arc<dyn IUnknown> {
        each_ptr!(self, p => p.as_arc().clone() as Arc<dyn IUnknown>)
    }

    fn ref_count(&self) -> u32 {
        each_ptr!(self, p => p.ref_count())
    }

    /// `AddRef`: a second reference.
    fn add_ref(&self) -> Ptr {
        match self {
            Ptr::Stream(p) => Ptr::Stream(p.clone()),
            Ptr::Factory(p) => Ptr::Factory(p.clone()),
            Ptr::Call(p) => Ptr::Call(p.clone()),
            Ptr::Sync(p) => Ptr::Sync(p.clone()),
            Ptr::SyncHandle(p) => Ptr::SyncHandle(p.clone()),
            Ptr::Cancel(p) => Ptr::Cancel(p.clone()),
            Ptr::Container(p) => Ptr::Container(p.clone()),
            Ptr::Unknown(p) => Ptr::Unknown(p.clone()),
        }
    }

    /// The pointer as a [`Target`] for an operation on another thread (memory only, no COM
    /// reference).
    fn target(&self) -> Target {
        Target {
            unk: self.unknown(),
            call: match self {
                Ptr::Call(p) => Some(p.as_arc().clone()),
                _ => None,
            },
            sync: match self {
                Ptr::Sync(p) => Some(p.as_arc().clone()),
                _ => None,
            },
            container: match self {
                Ptr::Container(p) => Some(p.as_arc().clone()),
                _ => None,
            },
        }
    }
}

fn addr_of<T: ?Sized>(a: &Arc<T>) -> usize {
    Arc::as_ptr(a) as *const () as usize
}

/// An interface used by an operation: the variable's own pointer, or one queried for the
/// operation (released when it ends).
enum Held<J: ?Sized + IUnknown> {
    Direct(Arc<J>),
    Queried(ComPtr<J>),
}

impl<J: ?Sized + IUnknown> std::ops::Deref for Held<J> {
    type Target = J;
    fn deref(&self) -> &J {
        match self {
            Held::Direct(a) => a,
            Held::Queried(p) => p,
        }
    }
}

/// What an operation on another thread works on.
#[derive(Clone)]
struct Target {
    unk: Arc<dyn IUnknown>,
    call: Option<Arc<dyn AsyncISimpleStream>>,
    sync: Option<Arc<dyn ISynchronize>>,
    container: Option<Arc<dyn ISynchronizeContainer>>,
}

impl Target {
    fn get<J: ?Sized + Interface + IUnknown>(
        &self,
        direct: &Option<Arc<J>>,
    ) -> Result<Held<J>, HRESULT> {
        match direct {
            Some(a) => Ok(Held::Direct(a.clone())),
            None => query::<J>(&*self.unk).map(Held::Queried).map_err(|e| e.0),
        }
    }
    fn call(&self) -> Result<Held<dyn AsyncISimpleStream>, HRESULT> {
        self.get(&self.call)
    }
    fn sync(&self) -> Result<Held<dyn ISynchronize>, HRESULT> {
        self.get(&self.sync)
    }
    fn container(&self) -> Result<Held<dyn ISynchronizeContainer>, HRESULT> {
        self.get(&self.container)
    }
    fn cancel(&self) -> Result<Held<dyn ICancelMethodCalls>, HRESULT> {
        self.get(&None)
    }
    fn factory(&self) -> Result<Held<dyn ICallFactory>, HRESULT> {
        self.get(&None)
    }
}

impl Iface {
    fn iid(self) -> crate::guid::IID {
        match self {
            Iface::IUnknown => <dyn IUnknown as Interface>::IID,
            Iface::ISimpleStream => <dyn ISimpleStream as Interface>::IID,
            Iface::AsyncISimpleStream => <dyn AsyncISimpleStream as Interface>::IID,
            Iface::ICallFactory => <dyn ICallFactory as Interface>::IID,
            Iface::ISynchronize => <dyn ISynchronize as Interface>::IID,
            Iface::ISynchronizeHandle => <dyn ISynchronizeHandle as Interface>::IID,
            Iface::ICancelMethodCalls => <dyn ICancelMethodCalls as Interface>::IID,
            Iface::ISynchronizeContainer => <dyn ISynchronizeContainer as Interface>::IID,
        }
    }
}

fn query_iface(unk: &Arc<dyn IUnknown>, iface: Iface) -> Result<Ptr, HRESULT> {
    let u = &**unk;
    let r = match iface {
        Iface::IUnknown => query::<dyn IUnknown>(u).map(Ptr::Unknown),
        Iface::ISimpleStream => query::<dyn ISimpleStream>(u).map(Ptr::Stream),
        Iface::AsyncISimpleStream => query::<dyn AsyncISimpleStream>(u).map(Ptr::Call),
        Iface::ICallFactory => query::<dyn ICallFactory>(u).map(Ptr::Factory),
        Iface::ISynchronize => query::<dyn ISynchronize>(u).map(Ptr::Sync),
        Iface::ISynchronizeHandle => query::<dyn ISynchronizeHandle>(u).map(Ptr::SyncHandle),
        Iface::ICancelMethodCalls => query::<dyn ICancelMethodCalls>(u).map(Ptr::Cancel),
        Iface::ISynchronizeContainer => query::<dyn ISynchronizeContainer>(u).map(Ptr::Container),
    };
    r.map_err(|e| e.0)
}

/// `CreateCall(riid, NULL, riid2, &p)` with `p` typed for `riid2`.
fn create_call(f: &dyn ICallFactory, riid: Iface, riid2: Iface) -> (HRESULT, Option<Ptr>) {
    macro_rules! go {
        ($I:ty, $V:ident) => {{
            let mut slot: Option<ComPtr<$I>> = None;
            let hr = f.create_call(&riid.iid(), None, &riid2.iid(), Some(&mut slot));
            (hr, slot.map(Ptr::$V))
        }};
    }
    match riid2 {
        Iface::IUnknown => go!(dyn IUnknown, Unknown),
        Iface::ISimpleStream => go!(dyn ISimpleStream, Stream),
        Iface::AsyncISimpleStream => go!(dyn AsyncISimpleStream, Call),
        Iface::ICallFactory => go!(dyn ICallFactory, Factory),
        Iface::ISynchronize => go!(dyn ISynchronize, Sync),
        Iface::ISynchronizeHandle => go!(dyn ISynchronizeHandle, SyncHandle),
        Iface::ICancelMethodCalls => go!(dyn ICancelMethodCalls, Cancel),
        Iface::ISynchronizeContainer => go!(dyn ISynchronizeContainer, Container),
    }
}

fn handle_of(unk: &Arc<dyn IUnknown>) -> Result<HANDLE, HRESULT> {
    let h = query::<dyn ISynchronizeHandle>(&**unk).map_err(|e| e.0)?;
    h.get_handle().map_err(|e| e.0)
}

// ---------------------------------------------------------------------------------------------
// Objects and variables

type Entry = (ServerCall<ISimpleStreamCalls>, ISimpleStreamIn);

struct Member {
    name: String,
    addr: usize,
    handle: HANDLE,
}

enum ObjKind {
    Server {
        stream: Arc<dyn ISimpleStream>,
        queue: Option<Arc<ManualHandler<ISimpleStreamCalls>>>,
        strict: bool,
        /// Begun calls taken from the queue, oldest first.
        pending: Vec<Entry>,
    },
    Call {
        arc: Arc<dyn AsyncISimpleStream>,
        handle: HANDLE,
        /// Known once its first call reached the server.
        object: Option<Arc<CallObject<ISimpleStreamCalls>>>,
        server: usize,
    },
    Event {
        handle: HANDLE,
    },
    Container {
        members: Vec<Member>,
    },
}

struct Obj {
    name: String,
    kind: ObjKind,
    /// Its count reached 0 through a script `Release`.
    gone: bool,
}

struct Var {
    obj: usize,
    /// The script's references (`AddRef` adds one, `Release` drops the last).
    refs: Vec<Ptr>,
    released_at: Option<usize>,
}

// ---------------------------------------------------------------------------------------------
// Actors

/// What an operation produced besides its result.
enum Made {
    Nothing,
    Server {
        ptr: Ptr,
        stream: Arc<dyn ISimpleStream>,
        queue: Option<Arc<ManualHandler<ISimpleStreamCalls>>>,
    },
    Event {
        ptr: Ptr,
        handle: HANDLE,
    },
    Container(Ptr),
    Ptr(Ptr),
    Ptrs(Ptr, Ptr),
    Call {
        ptr: Ptr,
        arc: Arc<dyn AsyncISimpleStream>,
        handle: HANDLE,
    },
    Entry(Box<Entry>),
    Completed {
        wanted: bool,
    },
    Added {
        addr: usize,
    },
    Got(Option<usize>),
}

struct Res {
    hr: Option<HRESULT>,
    /// `AddRef`/`Release`: the new count.
    count: Option<u32>,
    outs: Vec<Value>,
    /// A `Finish_`: when it fails, its default out-parameters are left out of the output.
    finish: bool,
    made: Made,
}

impl Res {
    fn hr(hr: HRESULT) -> Res {
        Res {
            hr: Some(hr),
            count: None,
            outs: Vec::new(),
            finish: false,
            made: Made::Nothing,
        }
    }
    /// A `Finish_`'s result: its `HRESULT` and out-parameter — on failure the value the
    /// out-parameter was left with (its default), so that an expectation naming one is
    /// compared, never ignored.
    fn finished(hr: HRESULT, out: Value) -> Res {
        Res {
            outs: vec![out],
            finish: true,
            ..Res::hr(hr)
        }
    }
    fn made(made: Made) -> Res {
        Res {
            hr: None,
            count: None,
            outs: Vec::new(),
            finish: false,
            made,
        }
    }
}

type Job = Box<dyn FnOnce() -> Res + Send>;

struct Reply {
    thread: String,
    res: Result<Res, String>,
}

struct Actor {
    jobs: Sender<Job>,
    replies: Receiver<Reply>,
    thread: Option<JoinHandle<()>>,
    busy: bool,
}

impl Actor {
    fn spawn(name: &str) -> io::Result<Actor> {
        let (jobs, job_rx) = unbounded::<Job>();
        let (reply_tx, replies) = unbounded::<Reply>();
        let thread = thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                while let Ok(job) = job_rx.recv() {
                    let res =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).map_err(|p| {
                            p.downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| p.downcast_ref::<String>().cloned())
                                .unwrap_or_else(|| "a panic".into())
                        });
                    let thread = thread::current().name().unwrap_or("?").to_string();
                    if reply_tx.send(Reply { thread, res }).is_err() {
                        break;
                    }
                    crate::sync::observe::changed();
                }
            })?;
        Ok(Actor {
            jobs,
            replies,
            thread: Some(thread),
            busy: false,
        })
    }
}

/// When a started operation counts as settled (besides having returned).
enum Settle {
    /// Only once it returned.
    Done,
    /// A blocking `Finish_`: while its call is still in progress.
    Finish(usize),
    /// A `Cancel` with a window: while the call is `Cancelling`.
    Cancel(usize),
    /// A wait: while none (or, `all`, not all) of the handles is signaled and every started
    /// wait on each handle is registered with it.
    Handles { handles: Vec<HANDLE>, all: bool },
}

/// What `apply` needs to know about a prepared operation.
#[derive(Default)]
struct Ctx {
    /// The object the operation targets.
    obj: Option<usize>,
    /// The participant the call arrow goes to.
    to: String,
    /// The call arrow's label.
    label: String,
    /// The call object's state before the operation (for `Release`).
    before: Option<State>,
    /// A server's pending-list position (`ServerTestCancel` puts its entry back there).
    pos: usize,
    /// `AddSynchronize`: the object added.
    member: Option<(String, HANDLE)>,
    /// `Begin_`: the server participant the call goes to; `Complete`: the method call.
    extra: String,
}

struct Prepared {
    job: Job,
    settle: Settle,
    ctx: Ctx,
}

struct Started {
    actor: String,
    line: usize,
    text: String,
    op: Op,
    settle: Settle,
    ctx: Ctx,
    reply: Option<Reply>,
}

/// How much of an operation's events `apply` records.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// A plain statement: the call, what it caused, the return.
    Whole,
    /// A `join`: what it caused and the return (the call was recorded at `start`).
    Joined,
}

struct Outcome {
    hr: Option<HRESULT>,
    count: Option<u32>,
    outs: Vec<Value>,
    /// A `Finish_` (see [`Res::finish`]).
    finish: bool,
    /// Overrides the result column (`created`, `started`).
    text: Option<String>,
    /// A remark after the result (`late result dropped`).
    note: Option<String>,
    call_obj: Option<usize>,
}

impl Outcome {
    fn result(&self) -> String {
        if let Some(t) = &self.text {
            return t.clone();
        }
        let mut s = match (self.hr, self.count) {
            (_, Some(n)) => format!("count {n}"),
            (Some(hr), None) => format!("{} (0x{:08X})", hr_name(hr), hr.as_u32()),
            (None, None) => "done".into(),
        };
        // A failed call's out-parameters are shown only when they are not their defaults
        // (they are always compared: see `check`).
        if !self.hides_outs() {
            for v in &self.outs {
                s.push_str(&format!(" {v}"));
            }
        }
        if let Some(n) = &self.note {
            s.push_str(&format!(" ({n})"));
        }
        s
    }

    /// The result as a mismatch reports it: every out-parameter, also a failed call's.
    fn got(&self) -> String {
        self.short(true)
    }

    /// The result as a diagram labels it: a failed call's default out-parameters left out.
    fn label(&self) -> String {
        self.short(false)
    }

    fn short(&self, all_outs: bool) -> String {
        let mut s = match (self.hr, self.count) {
            (_, Some(n)) => n.to_string(),
            (Some(hr), None) => hr_name(hr),
            (None, None) => "no result".into(),
        };
        if all_outs || !self.hides_outs() {
            for v in &self.outs {
                s.push_str(&format!(" {v}"));
            }
        }
        s
    }

    /// A failed `Finish_` whose out-parameters all hold their defaults: shown without them.
    fn hides_outs(&self) -> bool {
        self.finish
            && self.hr.is_some_and(|hr| hr.failed())
            && self.count.is_none()
            && self.outs.iter().all(Value::is_default)
    }
}

fn show_timeout(t: u32) -> String {
    if t == INFINITE {
        "INFINITE".into()
    } else {
        t.to_string()
    }
}

fn show_input(input: &ISimpleStreamIn) -> String {
    match input {
        ISimpleStreamIn::Read { cb } => format!("Read({cb})"),
        ISimpleStreamIn::Write { data } => format!("Write({})", parse::quote(data)),
    }
}

fn out_values(out: &ISimpleStreamOut) -> Vec<Value> {
    match out {
        ISimpleStreamOut::Read { data } => vec![Value::Str(data.clone())],
        ISimpleStreamOut::Write { written } => vec![Value::Num((*written).into())],
    }
}

fn show_state(s: State) -> &'static str {
    match s {
        State::Idle => "Idle",
        State::Pending => "Pending",
        State::Cancelling => "Cancelling",
        State::Signaled { cancelled: false } => "Signaled",
        State::Signaled { cancelled: true } => "Signaled (cancelled)",
        State::Gone => "Gone",
    }
}

fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

// ---------------------------------------------------------------------------------------------
// The runner

struct Runner {
    file: String,
    opts: RunOptions,
    vars: HashMap<String, Var>,
    objs: Vec<Obj>,
    actors: HashMap<String, Actor>,
    started: Vec<Started>,
    trace: Trace,
    /// Wakes `quiesce` when another thread blocks or an actor returns.
    observer: Observer,
    /// The reference model the steps are replayed on.
    model: ModelCheck,
}

impl Drop for Runner {
    fn drop(&mut self) {
        // References first (a final Release abandons a call and wakes a blocked Finish_), then
        // the servers' queued calls (dropping one completes it with RPC_E_SERVER_DIED).
        self.vars.clear();
        self.started.clear();
        self.objs.clear();
        for (_, actor) in self.actors.drain() {
            let Actor {
                jobs,
                replies,
                thread,
                busy,
            } = actor;
            drop(jobs);
            drop(replies);
            if !busy {
                if let Some(t) = thread {
                    let _ = t.join();
                }
            }
        }
    }
}

impl Runner {
    fn new(file: &str, opts: RunOptions) -> Runner {
        Runner {
            file: file.to_string(),
            opts,
            vars: HashMap::new(),
            objs: Vec::new(),
            actors: HashMap::new(),
            started: Vec::new(),
            trace: Trace::default(),
            observer: Observer::new(),
            model: ModelCheck::new(),
        }
    }

    fn rt(&self, step: &Step, message: String) -> ScriptError {
        ScriptError::Runtime {
            file: self.file.clone(),
            line: step.line,
            message,
        }
    }

    fn run(&mut self, steps: &[Step], out: &mut dyn Write) -> Result<(), ScriptError> {
        for step in steps {
            if let StepKind::Say(note) = &step.kind {
                self.trace
                    .participant(&step.actor, &step.actor, Role::Client);
                self.trace.events.push(Event {
                    line: step.line,
                    actor: step.actor.clone(),
                    thread: step.actor.clone(),
                    apartment: "MTA",
                    kind: EventKind::Note,
                    from: step.actor.clone(),
                    to: step.actor.clone(),
                    label: note.clone(),
                });
                writeln!(out, "      > {note}")?;
                continue;
            }
            if !self.actors.contains_key(&step.actor) {
                let actor = Actor::spawn(&step.actor)?;
                self.actors.insert(step.actor.clone(), actor);
            }
            self.trace
                .participant(&step.actor, &step.actor, Role::Client);
            let outcome = match &step.kind {
                StepKind::Do { bind, op } => {
                    let prep = self.prepare(step, op)?;
                    let reply = self.call(step, prep.job)?;
                    self.quiesce(step)?;
                    self.apply(step, op, bind.as_deref(), prep.ctx, reply, Phase::Whole)?
                }
                StepKind::Start { op } => self.start(step, op)?,
                StepKind::Join => self.join(step)?,
                StepKind::Say(_) => continue,
            };
            self.print(step, &outcome, out)?;
            self.check(step, &outcome)?;
            // The reference model replays the step (model_check.rs): a divergence stops here.
            let seen = match &step.kind {
                StepKind::Start { .. } => Seen::Started {
                    blocked: outcome.text.as_deref() == Some("started, blocks"),
                },
                _ => Seen::Returned {
                    hr: outcome.hr,
                    count: outcome.count,
                    outs: &outcome.outs,
                    dropped: outcome.note.as_deref() == Some("late result dropped"),
                },
            };
            (self
                .model
                .step(model_check::action(&step.kind), &Observed::of(step, seen)))
            .map_err(|d| self.rt(step, d.message))?;
        }
        Ok(())
    }

    fn print(&self, step: &Step, o: &Outcome, out: &mut dyn Write) -> io::Result<()> {
        let head = format!("{}: {}", step.actor, step.text);
        let mut line = format!("{:>4}  {head:<54} {}", step.line, o.result());
        if let Some(obj) = o.call_obj {
            line.push_str(&format!(
                "   [{}: {}]",
                self.objs[obj].name,
                self.state_text(obj)
            ));
        }
        writeln!(out, "{}", line.trim_end())?;
        if self.opts.trace {
            for e in self.trace.events_of(step.line) {
                writeln!(out, "          {e}")?;
            }
        }
        Ok(())
    }

    fn check(&self, step: &Step, o: &Outcome) -> Result<(), ScriptError> {
        let Some(exp) = &step.expect else {
            return Ok(());
        };
        let (ok, expected) = match (o.hr, o.count) {
            (_, Some(n)) => (
                exp.hr.as_u32() == n && exp.values.is_empty(),
                exp.hr.as_u32().to_string(),
            ),
            (Some(hr), None) => (
                hr == exp.hr && (exp.values.is_empty() || exp.values == o.outs),
                exp.to_string(),
            ),
            (None, None) => (false, exp.to_string()),
        };
        if ok {
            Ok(())
        } else {
            Err(ScriptError::Mismatch {
                file: self.file.clone(),
                line: step.line,
                expected,
                got: o.got(),
            })
        }
    }

    // --- state -------------------------------------------------------------------------------

    fn call_state(&self, obj: usize) -> Option<State> {
        match &self.objs[obj].kind {
            ObjKind::Call {
                object: Some(o), ..
            } => Some(o.state()),
            _ => None,
        }
    }

    fn state_text(&self, obj: usize) -> &'static str {
        match self.call_state(obj) {
            Some(s) => show_state(s),
            // Never begun: what CreateCall made, until its last Release.
            None if self.objs[obj].gone => "Gone",
            None => "Idle",
        }
    }

    fn is_call(&self, obj: usize) -> bool {
        matches!(self.objs[obj].kind, ObjKind::Call { .. })
    }

    /// The participant an operation on `obj` talks to: a call object's `ISynchronize` for the
    /// `ISynchronize` methods, otherwise the object.
    fn part(&self, obj: usize, sync: bool) -> String {
        let o = &self.objs[obj];
        match o.kind {
            ObjKind::Call { .. } if sync => format!("{}_ISync", o.name),
            _ => o.name.clone(),
        }
    }

    fn handle(&self, obj: usize) -> Option<HANDLE> {
        match &self.objs[obj].kind {
            ObjKind::Call { handle, .. } | ObjKind::Event { handle } => Some(handle.clone()),
            _ => None,
        }
    }

    /// Moves begun calls from the servers' queues to their pending lists, learning which call
    /// object each belongs to.
    fn drain(&mut self) {
        for s in 0..self.objs.len() {
            loop {
                let entry = match &self.objs[s].kind {
                    ObjKind::Server { queue: Some(q), .. } => q.take(),
                    _ => None,
                };
                let Some(entry) = entry else { break };
                if let Some(co) = entry.0.call_object() {
                    let a = addr_of(&co);
                    for o in self.objs.iter_mut() {
                        if let ObjKind::Call { arc, object, .. } = &mut o.kind {
                            if object.is_none() && addr_of(arc) == a {
                                *object = Some(co.clone());
                            }
                        }
                    }
                }
                if let ObjKind::Server { pending, .. } = &mut self.objs[s].kind {
                    pending.push(entry);
                }
            }
        }
    }

    // --- variables ---------------------------------------------------------------------------

    fn var(&self, step: &Step, name: &str) -> Result<&Var, ScriptError> {
        let v = self.vars.get(name).ok_or_else(|| {
            self.rt(
                step,
                format!("`{name}` is not bound: the operation that was to bind it failed"),
            )
        })?;
        if v.refs.is_empty() {
            return Err(self.rt(
                step,
                format!(
                    "`{name}` was released at line {}: it holds no reference",
                    v.released_at.unwrap_or(0)
                ),
            ));
        }
        Ok(v)
    }

    fn target(&self, step: &Step, name: &str) -> Result<(usize, Target), ScriptError> {
        let v = self.var(step, name)?;
        Ok((v.obj, v.refs[v.refs.len() - 1].target()))
    }

    fn bind(&mut self, name: Option<&str>, obj: usize, ptr: Ptr) {
        if let Some(name) = name {
            self.vars.insert(
                name.to_string(),
                Var {
                    obj,
                    refs: vec![ptr],
                    released_at: None,
                },
            );
        }
    }

    fn new_obj(&mut self, name: &str, kind: ObjKind) -> usize {
        self.objs.push(Obj {
            name: name.to_string(),
            kind,
            gone: false,
        });
        self.objs.len() - 1
    }

    // --- preparing an operation ----------------------------------------------------------------

    fn prepare(&mut self, step: &Step, op: &Op) -> Result<Prepared, ScriptError> {
        let mut ctx = Ctx::default();
        let mut settle = Settle::Done;
        let job: Job = match op {
            Op::SimpleStream { data, kind } => {
                let (data, kind) = (data.clone(), *kind);
                Box::new(move || {
                    let (ptr, queue) = match kind {
                        ServerKind::SyncOnly => (SimpleStream::create_sync_only(data), None),
                        ServerKind::Manual | ServerKind::ManualStrict => {
                            let mode = if kind == ServerKind::Manual {
                                FinishMode::Blocking
                            } else {
                                FinishMode::Strict
                            };
                            let (p, q) = SimpleStream::create_manual(data, mode);
                            (p, Some(q))
                        }
                    };
                    let stream = ptr.as_arc().clone();
                    Res::made(Made::Server {
                        ptr: Ptr::Stream(ptr),
                        stream,
                        queue,
                    })
                })
            }
            Op::ManualResetEvent | Op::StdEvent => {
                let manual = *op == Op::ManualResetEvent;
                Box::new(move || {
                    let p = if manual {
                        ManualResetEvent::create()
                    } else {
                        StdEvent::create()
                    };
                    let ptr = Ptr::Sync(p);
                    match handle_of(&ptr.unknown()) {
                        Ok(handle) => Res::made(Made::Event { ptr, handle }),
                        Err(hr) => Res::hr(hr),
                    }
                })
            }
            Op::SynchronizeContainer => Box::new(|| {
                Res::made(Made::Container(Ptr::Container(
                    SynchronizeContainer::create(),
                )))
            }),
            Op::QueryInterface { target, iface } => {
                let (obj, t) = self.target(step, target)?;
                let iface = *iface;
                ctx.obj = Some(obj);
                ctx.to = self.part(obj, false);
                ctx.label = format!("QueryInterface({})", iface.name());
                Box::new(move || match query_iface(&t.unk, iface) {
                    Ok(p) => Res {
                        made: Made::Ptr(p),
                        ..Res::hr(S_OK)
                    },
                    Err(hr) => Res::hr(hr),
                })
            }
            Op::AddRef { target } | Op::Release { target } => {
                let add = matches!(op, Op::AddRef { .. });
                let obj = self.var(step, target)?.obj;
                ctx.obj = Some(obj);
                ctx.to = self.part(obj, false);
                ctx.label = if add {
                    "AddRef()".into()
                } else {
                    "Release()".into()
                };
                ctx.before = self.call_state(obj);
                let p = self.vars.get_mut(target).and_then(|v| v.refs.pop());
                let Some(p) = p else {
                    return Err(self.rt(step, format!("`{target}` holds no reference")));
                };
                Box::new(move || {
                    if add {
                        let q = p.add_ref();
                        let n = q.ref_count();
                        Res {
                            count: Some(n),
                            ..Res::made(Made::Ptrs(p, q))
                        }
                    } else {
                        let n = p.ref_count();
                        drop(p);
                        Res {
                            count: Some(n.saturating_sub(1)),
                            ..Res::made(Made::Nothing)
                        }
                    }
                })
            }
            Op::CreateCall {
                factory,
                riid,
                riid2,
            } => {
                let (obj, t) = self.target(step, factory)?;
                let (riid, riid2) = (*riid, *riid2);
                ctx.obj = Some(obj);
                ctx.to = self.part(obj, false);
                ctx.label = format!("CreateCall({}, NULL, {})", riid.name(), riid2.name());
                Box::new(move || {
                    let f = match t.factory() {
                        Ok(f) => f,
                        Err(hr) => return Res::hr(hr),
                    };
                    let (hr, ptr) = create_call(&*f, riid, riid2);
                    drop(f);
                    let Some(ptr) = ptr else { return Res::hr(hr) };
                    let unk = ptr.unknown();
                    let arc = match query::<dyn AsyncISimpleStream>(&*unk) {
                        Ok(p) => p.as_arc().clone(),
                        Err(_) => {
                            return Res {
                                made: Made::Ptr(ptr),
                                ..Res::hr(hr)
                            }
                        }
                    };
                    match handle_of(&unk) {
                        Ok(handle) => Res {
                            made: Made::Call { ptr, arc, handle },
                            ..Res::hr(hr)
                        },
                        Err(_) => Res {
                            made: Made::Ptr(ptr),
                            ..Res::hr(hr)
                        },
                    }
                })
            }
            Op::BeginRead { call, .. } | Op::BeginWrite { call, .. } => {
                let (obj, t) = self.target(step, call)?;
                ctx.obj = Some(obj);
                ctx.to = self.part(obj, false);
                if let ObjKind::Call { server, .. } = self.objs[obj].kind {
                    ctx.extra = self.objs[server].name.clone();
                }
                match op {
                    Op::BeginRead { cb, .. } => {
                        let cb = *cb;
                        ctx.label = format!("Begin_Read({cb})");
                        Box::new(move || {
                            Res::hr(t.call().map_or_else(|hr| hr, |c| c.begin_read(cb)))
                        })
                    }
                    Op::BeginWrite { data, .. } => {
                        let data = data.clone();
                        ctx.label = format!("Begin_Write({})", parse::quote(&data));
                        Box::new(move || {
                            Res::hr(t.call().map_or_else(|hr| hr, |c| c.begin_write(data)))
                        })
                    }
                    _ => unreachable!("matched above"),
                }
            }
            Op::FinishRead { call } | Op::FinishWrite { call } => {
                let (obj, t) = self.target(step, call)?;
                ctx.obj = Some(obj);
                ctx.to = self.part(obj, false);
                let strict = match self.objs[obj].kind {
                    ObjKind::Call { server, .. } => {
                        matches!(self.objs[server].kind, ObjKind::Server { strict: true, .. })
                    }
                    _ => false,
                };
                if !strict && self.is_call(obj) {
                    settle = Settle::Finish(obj);
                }
                if matches!(op, Op::FinishRead { .. }) {
                    ctx.label = "Finish_Read()".into();
                    Box::new(move || match t.call() {
                        Ok(c) => {
                            let (hr, data) = c.finish_read();
                            Res::finished(hr, Value::Str(data))
                        }
                        Err(hr) => Res::hr(hr),
                    })
                } else {
                    ctx.label = "Finish_Write()".into();
                    Box::new(move || match t.call() {
                        Ok(c) => {
                            let (hr, n) = c.finish_write();
                            Res::finished(hr, Value::Num(n.into()))
                        }
                        Err(hr) => Res::hr(hr),
                    })
                }
            }
            Op::Wait { target, timeout } => {
                let (obj, t) = self.target(step, target)?;
                let timeout = *timeout;
                ctx.obj = Some(obj);
                ctx.to = self.part(obj, true);
                ctx.label = format!("Wait(0, {})", show_timeout(timeout));
                if let Some(h) = self.handle(obj) {
                    settle = Settle::Handles {
                        handles: vec![h],
                        all: false,
                    };
                }
                Box::new(move || Res::hr(t.sync().map_or_else(|hr| hr, |s| s.wait(0, timeout))))
            }
            Op::Signal { target } | Op::Reset { target } => {
                let (obj, t) = self.target(step, target)?;
                let signal = matches!(op, Op::Signal { .. });
                ctx.obj = Some(obj);
                ctx.to = self.part(obj, true);
                ctx.label = if signal {
                    "Signal()".into()
                } else {
                    "Reset()".into()
                };
                Box::new(move || {
                    Res::hr(
                        t.sync()
                            .map_or_else(|hr| hr, |s| if signal { s.signal() } else { s.reset() }),
                    )
                })
            }
            Op::Cancel { call, seconds } => {
                let (obj, t) = self.target(step, call)?;
                let seconds = *seconds;
                ctx.obj = Some(obj);
                ctx.to = self.part(obj, false);
                ctx.label = format!("Cancel({})", show_timeout(seconds));
                if seconds != 0 && self.is_call(obj) {
                    settle = Settle::Cancel(obj);
                }
                Box::new(move || Res::hr(t.cancel().map_or_else(|hr| hr, |c| c.cancel(seconds))))
            }
            Op::TestCancel { call } => {
                let (obj, t) = self.target(step, call)?;
                ctx.obj = Some(obj);
                ctx.to = self.part(obj, false);
                ctx.label = "TestCancel()".into();
                Box::new(move || Res::hr(t.cancel().map_or_else(|hr| hr, |c| c.test_cancel())))
            }
            Op::AddSynchronize { container, sync } => {
                let (obj, t) = self.target(step, container)?;
                let (sobj, s) = self.target(step, sync)?;
                ctx.obj = Some(obj);
                ctx.to = self.part(obj, false);
                ctx.label = format!("AddSynchronize({sync})");
                if let Some(h) = self.handle(sobj) {
                    ctx.member = Some((sync.clone(), h));
                }
                Box::new(move || {
                    let c = match t.container() {
                        Ok(c) => c,
                        Err(hr) => return Res::hr(hr),
                    };
                    let p = match s.sync() {
                        Ok(Held::Direct(a)) => ComPtr::new(a),
                        Ok(Held::Queried(p)) => p,
                        Err(hr) => return Res::hr(hr),
                    };
                    let addr = addr_of(p.as_arc());
                    let hr = c.add_synchronize(Some(&p));
                    Res {
                        made: Made::Added { addr },
                        ..Res::hr(hr)
                    }
                })
            }
            Op::WaitMultiple { container, timeout } => {
                let (obj, t) = self.target(step, container)?;
                let timeout = *timeout;
                ctx.obj = Some(obj);
                ctx.to = self.part(obj, false);
                ctx.label = format!("WaitMultiple(0, {})", show_timeout(timeout));
                if let ObjKind::Container { members } = &self.objs[obj].kind {
                    if !members.is_empty() {
                        let handles = members.iter().map(|m| m.handle.clone()).collect();
                        settle = Settle::Handles {
                            handles,
                            all: false,
                        };
                    }
                }
                Box::new(move || {
                    let c = match t.container() {
                        Ok(c) => c,
                        Err(hr) => return Res::hr(hr),
                    };
                    let mut got = None;
                    let hr = c.wait_multiple(0, timeout, Some(&mut got));
                    let addr = got.as_ref().map(|p| addr_of(p.as_arc()));
                    Res {
                        made: Made::Got(addr),
                        ..Res::hr(hr)
                    }
                })
            }
            Op::CoWaitForMultipleHandles {
                flags,
                timeout,
                handles,
            } => {
                let (flags, timeout) = (*flags, *timeout);
                let mut hs = Vec::new();
                for name in handles {
                    let obj = self.var(step, name)?.obj;
                    match self.handle(obj) {
                        Some(h) => hs.push(h),
                        None => {
                            return Err(self.rt(
                                step,
                                format!(
                                    "`{name}` is not an event or a call object: it has no handle"
                                ),
                            ))
                        }
                    }
                }
                ctx.to = step.actor.clone();
                ctx.label = format!(
                    "CoWaitForMultipleHandles(0x{flags:X}, {}, [{}])",
                    show_timeout(timeout),
                    handles.join(", ")
                );
                let all = flags & COWAIT_WAITALL != 0;
                let dup = hs.iter().enumerate().any(|(i, h)| hs[..i].contains(h));
                if !hs.is_empty()
                    && flags & !COWAIT_VALID_FLAGS == 0
                    && !(all && dup)
                    && hs.len() <= 64
                {
                    settle = Settle::Handles {
                        handles: hs.clone(),
                        all,
                    };
                }
                Box::new(move || {
                    let mut index = 0;
                    let hr =
                        co_wait_for_multiple_handles(flags, timeout, Some(&hs), Some(&mut index));
                    Res {
                        outs: vec![Value::Num(index.into())],
                        ..Res::hr(hr)
                    }
                })
            }
            Op::Complete { call } | Op::Fail { call, .. } | Op::ServerTestCancel { call } => {
                // The server holds no reference of the client's: a released call can still be
                // completed (its late result is dropped).
                let obj = self.vars.get(call.as_str()).map(|v| v.obj).ok_or_else(|| {
                    self.rt(
                        step,
                        format!("`{call}` is not bound: the operation that was to bind it failed"),
                    )
                })?;
                self.drain();
                let (server, arc) = match &self.objs[obj].kind {
                    ObjKind::Call { server, arc, .. } => (*server, arc.clone()),
                    _ => return Err(self.rt(step, format!("`{call}` is not a call object"))),
                };
                let a = addr_of(&arc);
                let ObjKind::Server {
                    stream, pending, ..
                } = &mut self.objs[server].kind
                else {
                    return Err(self.rt(step, format!("`{call}` has no server")));
                };
                let stream = stream.clone();
                let pos = pending
                    .iter()
                    .position(|(sc, _)| sc.call_object().is_some_and(|c| addr_of(&c) == a));
                let Some(pos) = pos else {
                    return Err(self.rt(
                        step,
                        format!("no call of `{call}` is waiting at the server: none was begun, or it was completed already"),
                    ));
                };
                let (sc, input) = pending.remove(pos);
                ctx.obj = Some(obj);
                ctx.to = self.part(obj, false);
                ctx.pos = pos;
                ctx.extra = show_input(&input);
                match op {
                    Op::Complete { .. } => {
                        ctx.label = format!("complete {}", ctx.extra);
                        Box::new(move || {
                            let wanted = sc.is_wanted();
                            let (hr, out) = ISimpleStreamCalls::invoke_sync(&*stream, input);
                            let outs = out_values(&out);
                            sc.complete(hr, out);
                            Res {
                                outs,
                                made: Made::Completed { wanted },
                                ..Res::hr(hr)
                            }
                        })
                    }
                    Op::Fail { hr, .. } => {
                        let hr = *hr;
                        ctx.label = format!("fail {}", ctx.extra);
                        Box::new(move || {
                            let wanted = sc.is_wanted();
                            sc.fail(hr);
                            Res {
                                made: Made::Completed { wanted },
                                ..Res::hr(hr)
                            }
                        })
                    }
                    _ => {
                        ctx.label = "TestCancel() (server side)".into();
                        Box::new(move || {
                            let hr = sc.test_cancel();
                            Res {
                                made: Made::Entry(Box::new((sc, input))),
                                ..Res::hr(hr)
                            }
                        })
                    }
                }
            }
        };
        Ok(Prepared { job, settle, ctx })
    }

    // --- running -------------------------------------------------------------------------------

    fn call(&mut self, step: &Step, job: Job) -> Result<Reply, ScriptError> {
        let watchdog = self.opts.watchdog;
        let actor = self
            .actors
            .get_mut(&step.actor)
            .expect("actor spawned by run");
        if actor.jobs.send(job).is_err() {
            return Err(self.rt(step, format!("{}'s thread has ended", step.actor)));
        }
        actor.busy = true;
        match actor.replies.recv_timeout(watchdog) {
            Ok(r) => {
                actor.busy = false;
                Ok(r)
            }
            Err(_) => Err(self.rt(
                step,
                format!(
                    "{} still blocked after {} in `{}`",
                    step.actor,
                    show_duration(watchdog),
                    step.text
                ),
            )),
        }
    }

    fn start(&mut self, step: &Step, op: &Op) -> Result<Outcome, ScriptError> {
        let prep = self.prepare(step, op)?;
        let actor = self
            .actors
            .get_mut(&step.actor)
            .expect("actor spawned by run");
        if actor.jobs.send(prep.job).is_err() {
            return Err(self.rt(step, format!("{}'s thread has ended", step.actor)));
        }
        actor.busy = true;
        let call_obj = prep.ctx.obj.filter(|&o| self.is_call(o));
        self.event(
            step,
            &step.actor,
            EventKind::Call,
            &step.actor,
            &prep.ctx.to,
            &prep.ctx.label,
        );
        self.started.push(Started {
            actor: step.actor.clone(),
            line: step.line,
            text: step.text.trim_start_matches("start ").to_string(),
            op: op.clone(),
            settle: prep.settle,
            ctx: prep.ctx,
            reply: None,
        });
        self.quiesce(step)?;
        let blocked = self
            .started
            .iter()
            .any(|s| s.actor == step.actor && s.reply.is_none());
        if blocked {
            self.event(
                step,
                &step.actor,
                EventKind::Note,
                &step.actor,
                &step.actor,
                "blocks",
            );
        }
        let text = if blocked {
            "started, blocks"
        } else {
            "started, returned"
        };
        Ok(Outcome {
            hr: None,
            count: None,
            outs: vec![],
            finish: false,
            text: Some(text.into()),
            note: None,
            call_obj,
        })
    }

    fn join(&mut self, step: &Step) -> Result<Outcome, ScriptError> {
        let i = self
            .started
            .iter()
            .position(|s| s.actor == step.actor)
            .ok_or_else(|| self.rt(step, format!("{} has nothing to join", step.actor)))?;
        let watchdog = self.opts.watchdog;
        let reply = match self.started[i].reply.take() {
            Some(r) => r,
            None => {
                let actor = self
                    .actors
                    .get_mut(&step.actor)
                    .expect("actor spawned by run");
                match actor.replies.recv_timeout(watchdog) {
                    Ok(r) => {
                        actor.busy = false;
                        r
                    }
                    Err(_) => {
                        let s = &self.started[i];
                        return Err(self.rt(
                            step,
                            format!(
                                "{} still blocked after {} in `{}` (started at line {})",
                                step.actor,
                                show_duration(watchdog),
                                s.text,
                                s.line
                            ),
                        ));
                    }
                }
            }
        };
        let s = self.started.remove(i);
        self.quiesce(step)?;
        self.apply(step, &s.op, None, s.ctx, reply, Phase::Joined)
    }

    /// Waits until every started operation has returned or is blocked (see the module docs).
    fn quiesce(&mut self, step: &Step) -> Result<(), ScriptError> {
        let deadline = Instant::now() + self.opts.watchdog;
        loop {
            // Read the generation before looking: a change after this wakes the wait below.
            let seen = self.observer.generation();
            self.drain();
            for s in self.started.iter_mut() {
                if s.reply.is_none() {
                    if let Some(actor) = self.actors.get_mut(&s.actor) {
                        if let Ok(r) = actor.replies.try_recv() {
                            actor.busy = false;
                            s.reply = Some(r);
                        }
                    }
                }
            }
            let unsettled = (0..self.started.len()).find(|&i| !self.settled(i));
            let Some(i) = unsettled else { return Ok(()) };
            if Instant::now() > deadline {
                let s = &self.started[i];
                return Err(self.rt(
                    step,
                    format!(
                        "{} (started at line {}) neither returned nor blocked after {}",
                        s.actor,
                        s.line,
                        show_duration(self.opts.watchdog)
                    ),
                ));
            }
            // Sleep until a thread registers on an event, a Cancel starts its window, or an
            // actor returns (crate::sync::observe); no polling.
            self.observer.wait_past(seen, Deadline::at(deadline));
        }
    }

    fn settled(&self, i: usize) -> bool {
        let s = &self.started[i];
        if s.reply.is_some() {
            return true;
        }
        match &s.settle {
            Settle::Done => false,
            Settle::Finish(obj) => matches!(
                self.call_state(*obj),
                Some(State::Pending | State::Cancelling)
            ),
            Settle::Cancel(obj) => self.call_state(*obj) == Some(State::Cancelling),
            Settle::Handles { handles, all } => {
                let ready = if *all {
                    handles.iter().all(HANDLE::is_signaled)
                } else {
                    handles.iter().any(HANDLE::is_signaled)
                };
                !ready
                    && handles
                        .iter()
                        .all(|h| h.waiter_count() >= self.expected_waiters(h))
            }
        }
    }

    /// How many started, unreturned waits include `h`.
    fn expected_waiters(&self, h: &HANDLE) -> usize {
        self.started
            .iter()
            .filter(|s| {
                s.reply.is_none()
                    && matches!(&s.settle, Settle::Handles { handles, .. } if handles.contains(h))
            })
            .count()
    }

    fn event(
        &mut self,
        step: &Step,
        thread: &str,
        kind: EventKind,
        from: &str,
        to: &str,
        label: &str,
    ) {
        self.trace.events.push(Event {
            line: step.line,
            actor: step.actor.clone(),
            thread: thread.to_string(),
            apartment: "MTA",
            kind,
            from: from.to_string(),
            to: to.to_string(),
            label: label.to_string(),
        });
    }

    // --- results -------------------------------------------------------------------------------

    fn apply(
        &mut self,
        step: &Step,
        op: &Op,
        bind: Option<&str>,
        ctx: Ctx,
        reply: Reply,
        phase: Phase,
    ) -> Result<Outcome, ScriptError> {
        let thread = reply.thread;
        let res = reply
            .res
            .map_err(|p| self.rt(step, format!("the operation panicked: {p}")))?;
        let actor = step.actor.clone();
        let mut call_obj = ctx.obj.filter(|&o| self.is_call(o));
        let mut text = None;
        let one_way = matches!(op, Op::Complete { .. } | Op::Fail { .. });
        if phase == Phase::Whole && !ctx.label.is_empty() && !one_way {
            self.event(step, &thread, EventKind::Call, &actor, &ctx.to, &ctx.label);
        }
        let summary = Outcome {
            hr: res.hr,
            count: res.count,
            outs: res.outs.clone(),
            finish: res.finish,
            text: None,
            note: None,
            call_obj: None,
        }
        .got();
        let mut note = None;
        match (op, res.made) {
            (Op::SimpleStream { .. }, Made::Server { ptr, stream, queue }) => {
                let name = bind.unwrap_or("server");
                let strict = matches!(
                    op,
                    Op::SimpleStream {
                        kind: ServerKind::ManualStrict,
                        ..
                    }
                );
                let obj = self.new_obj(
                    name,
                    ObjKind::Server {
                        stream,
                        queue,
                        strict,
                        pending: Vec::new(),
                    },
                );
                self.bind(bind, obj, ptr);
                self.trace
                    .participant(name, &format!("{name} (SimpleStream)"), Role::Server);
                self.event(
                    step,
                    &thread,
                    EventKind::Create,
                    &actor,
                    name,
                    "SimpleStream",
                );
                text = Some("created".to_string());
            }
            (Op::ManualResetEvent | Op::StdEvent, Made::Event { ptr, handle }) => {
                let name = bind.unwrap_or("event");
                let class = if *op == Op::ManualResetEvent {
                    "ManualResetEvent"
                } else {
                    "StdEvent"
                };
                let obj = self.new_obj(name, ObjKind::Event { handle });
                self.bind(bind, obj, ptr);
                self.trace
                    .participant(name, &format!("{name} ({class})"), Role::Event);
                self.event(step, &thread, EventKind::Create, &actor, name, class);
                text = Some("created".to_string());
            }
            (Op::SynchronizeContainer, Made::Container(ptr)) => {
                let name = bind.unwrap_or("container");
                let obj = self.new_obj(
                    name,
                    ObjKind::Container {
                        members: Vec::new(),
                    },
                );
                self.bind(bind, obj, ptr);
                self.trace.participant(
                    name,
                    &format!("{name} (SynchronizeContainer)"),
                    Role::Container,
                );
                self.event(
                    step,
                    &thread,
                    EventKind::Create,
                    &actor,
                    name,
                    "SynchronizeContainer",
                );
                text = Some("created".to_string());
            }
            (
                Op::SimpleStream { .. }
                | Op::ManualResetEvent
                | Op::StdEvent
                | Op::SynchronizeContainer,
                _,
            ) => {
                return Err(self.rt(step, format!("creating the object failed: {summary}")));
            }
            (Op::QueryInterface { .. }, Made::Ptr(p)) => {
                if let Some(obj) = ctx.obj {
                    self.bind(bind, obj, p);
                }
            }
            (Op::AddRef { target } | Op::Release { target }, made) => {
                let var = self.vars.get_mut(target).expect("checked in prepare");
                if let Made::Ptrs(a, b) = made {
                    var.refs.push(a);
                    var.refs.push(b);
                }
                if var.refs.is_empty() {
                    var.released_at = Some(step.line);
                }
                if matches!(op, Op::Release { .. }) && res.count == Some(0) {
                    if let Some(obj) = ctx.obj {
                        self.objs[obj].gone = true;
                        let note = match ctx.before {
                            Some(State::Pending | State::Cancelling) => {
                                Some("final Release: the call is abandoned")
                            }
                            Some(State::Signaled { .. }) => {
                                Some("final Release: the results are discarded")
                            }
                            _ => None,
                        };
                        if let Some(note) = note {
                            let part = self.part(obj, false);
                            self.event(step, &thread, EventKind::Note, &part, &part, note);
                        }
                    }
                }
            }
            (Op::CreateCall { .. }, Made::Call { ptr, arc, handle }) => {
                let name = bind.unwrap_or("call").to_string();
                let server = ctx.obj.unwrap_or(0);
                let obj = self.new_obj(
                    &name,
                    ObjKind::Call {
                        arc,
                        handle,
                        object: None,
                        server,
                    },
                );
                self.bind(Some(&name), obj, ptr);
                self.trace
                    .participant(&name, &format!("{name} (call object)"), Role::Call);
                self.trace.participant(
                    &format!("{name}_ISync"),
                    &format!("ISynchronize of {name}"),
                    Role::CallSync,
                );
                self.event(
                    step,
                    &thread,
                    EventKind::Create,
                    &ctx.to,
                    &name,
                    "call object",
                );
                call_obj = Some(obj);
            }
            (Op::CreateCall { .. }, Made::Ptr(_)) => {
                return Err(self.rt(
                    step,
                    "CreateCall returned an object that is not a call object".into(),
                ));
            }
            (Op::BeginRead { .. } | Op::BeginWrite { .. }, _)
                if res.hr == Some(S_OK) && !ctx.extra.is_empty() =>
            {
                let method = ctx.label.trim_start_matches("Begin_").to_string();
                self.event(step, &thread, EventKind::Call, &ctx.to, &ctx.extra, &method);
            }
            (Op::Cancel { .. }, _) if res.hr == Some(S_OK) => {
                if let Some(obj) = ctx.obj {
                    let sync = self.part(obj, true);
                    self.event(
                        step,
                        &thread,
                        EventKind::Call,
                        &ctx.to,
                        &sync,
                        "Signal() (completed locally)",
                    );
                }
            }
            (Op::Complete { .. } | Op::Fail { .. }, Made::Completed { wanted }) => {
                let label = format!("{}: {summary}", ctx.label);
                self.event(step, &thread, EventKind::Call, &actor, &ctx.to, &label);
                if let Some(obj) = ctx.obj {
                    if wanted {
                        let sync = self.part(obj, true);
                        self.event(step, &thread, EventKind::Call, &ctx.to, &sync, "Signal()");
                    } else {
                        self.event(
                            step,
                            &thread,
                            EventKind::Note,
                            &ctx.to,
                            &ctx.to,
                            "late result dropped",
                        );
                        note = Some("late result dropped".to_string());
                    }
                }
            }
            (Op::ServerTestCancel { .. }, Made::Entry(entry)) => {
                if let Some(ObjKind::Call { server, .. }) = ctx.obj.map(|o| &self.objs[o].kind) {
                    let server = *server;
                    if let ObjKind::Server { pending, .. } = &mut self.objs[server].kind {
                        let pos = ctx.pos.min(pending.len());
                        pending.insert(pos, *entry);
                    }
                }
            }
            (Op::AddSynchronize { .. }, Made::Added { addr }) if res.hr == Some(S_OK) => {
                if let (Some(obj), Some((name, handle))) = (ctx.obj, ctx.member.clone()) {
                    if let ObjKind::Container { members } = &mut self.objs[obj].kind {
                        members.push(Member { name, addr, handle });
                    }
                }
            }
            (Op::WaitMultiple { .. }, Made::Got(addr)) => {
                if let (Some(obj), Some(addr)) = (ctx.obj, addr) {
                    if let ObjKind::Container { members } = &self.objs[obj].kind {
                        let name = members
                            .iter()
                            .find(|m| m.addr == addr)
                            .map_or("?", |m| m.name.as_str());
                        let outcome_outs = vec![Value::Name(name.to_string())];
                        let o = Outcome {
                            hr: res.hr,
                            count: None,
                            outs: outcome_outs,
                            finish: false,
                            text: None,
                            note: None,
                            call_obj,
                        };
                        return Ok(self.finish_outcome(step, &thread, &ctx, o, one_way));
                    }
                }
            }
            _ => {}
        }
        if res.hr.is_none() && res.count.is_none() && text.is_none() {
            return Err(self.rt(step, "the operation gave no result".into()));
        }
        let o = Outcome {
            hr: res.hr,
            count: res.count,
            outs: res.outs,
            finish: res.finish,
            text,
            note,
            call_obj,
        };
        Ok(self.finish_outcome(step, &thread, &ctx, o, one_way))
    }

    /// Records the return arrow (not for creations and one-way server completions).
    fn finish_outcome(
        &mut self,
        step: &Step,
        thread: &str,
        ctx: &Ctx,
        o: Outcome,
        one_way: bool,
    ) -> Outcome {
        if !one_way && o.text.is_none() && !ctx.label.is_empty() {
            let label = o.label();
            self.event(
                step,
                thread,
                EventKind::Return,
                &ctx.to,
                &step.actor,
                &label,
            );
        }
        o
    }
}

impl fmt::Debug for Runner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Runner")
            .field("file", &self.file)
            .finish_non_exhaustive()
    }
}
