//! The scenario vocabulary: [`Op`] (every operation a statement can perform — the one
//! operation type the parser produces and the executor runs), [`Step`] (one statement: actor,
//! what it does, its expectation) and the small types they use.
//!
//! Invariants: an `Op` names variables, never objects (the runner resolves them); `Begin` and
//! `Finish` carry the COM method name and the arguments as written, for any registered
//! interface; `Op::uses` lists every variable an operation reads, so the parser can check
//! they are bound first.

use std::fmt;

use super::registry::Serving;
use super::value::Value;
use crate::guid::IID;
use crate::hresult::HRESULT;

/// The actor of a statement that names none.
pub const DEFAULT_ACTOR: &str = "client";

/// A syntax or usage error: the line (1-based) and what was expected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyntaxError {
    /// The 1-based line number.
    pub line: usize,
    /// What was wrong, and what was expected instead.
    pub message: String,
}

impl fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// An expected result: the `HRESULT` and, if given, the out-parameters.
///
/// For the checker (`docs/checking.md`) an expectation may also list other results the step
/// may return in another order (`-> S_OK | RPC_E_CALL_COMPLETE`: the first is the written
/// order's) and properties over every order (`always`, `never`, `sometimes`). The runner
/// compares only the first result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expect {
    /// The expected `HRESULT` (compared by value: `RPC_E_CALL_PENDING` equals
    /// `RPC_S_CALLPENDING`).
    pub hr: HRESULT,
    /// The expected out-parameters; empty means "not checked".
    pub values: Vec<Value>,
    /// Other results the step may return in another order (after `|`).
    pub also: Vec<Expect>,
    /// Properties over every order (`always R | R2`, `never R`, `sometimes R`).
    pub props: Vec<Property>,
}

impl Expect {
    /// Whether a step that returned `hr` and `values` meets this one result (empty expected
    /// out-parameters match any).
    pub fn matches(&self, hr: HRESULT, values: &[Value]) -> bool {
        self.hr == hr && (self.values.is_empty() || self.values == values)
    }
}

/// How a [`Property`] quantifies over the orders the checker enumerates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Quantifier {
    /// Every order gives one of the results.
    Always,
    /// No order gives any of them.
    Never,
    /// Some order gives one of them.
    Sometimes,
}

/// `always|never|sometimes R [| R2 ...]` after a step's expected result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Property {
    /// The quantifier.
    pub quantifier: Quantifier,
    /// The results it is about (each with `also` empty).
    pub results: Vec<Expect>,
}

impl fmt::Display for Expect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", hr_name(self.hr))?;
        for v in &self.values {
            write!(f, " {v}")?;
        }
        Ok(())
    }
}

/// An `HRESULT` by its SDK name, or in hex ([`HRESULT::name_or_hex`]).
pub fn hr_name(hr: HRESULT) -> String {
    hr.name_or_hex()
}

/// An interface a script names: by name (`ICallFactory`, `AsyncISimpleStream`, a registered
/// interface) or as a raw IID (`{00000000-0000-0000-C000-000000000046}`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Iface {
    /// The interface's name (a raw IID of a known interface reads as its name; an unknown
    /// one as the IID in braces).
    pub name: String,
    /// Its IID.
    pub iid: IID,
}

/// How a server object serves asynchronous calls.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ServerKind {
    /// Calls wait until the script completes them; `Finish_` before completion blocks.
    Manual,
    /// The same, but `Finish_` before completion returns `RPC_S_CALLPENDING` (strict mode).
    ManualStrict,
    /// No `ICallFactory`: no asynchronous support.
    SyncOnly,
}

/// One COM operation (or object creation, or server action).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Op {
    /// `SimpleStream "data" [strict]` / `SimpleStreamSyncOnly "data"`: a server object.
    SimpleStream {
        /// The stream's initial contents.
        data: Vec<u8>,
        /// How it serves asynchronous calls.
        kind: ServerKind,
    },
    /// `ManualResetEvent`: a new `CLSID_ManualResetEvent` object.
    ManualResetEvent,
    /// `StdEvent`: a new `CLSID_StdEvent` (auto-reset) object.
    StdEvent,
    /// `SynchronizeContainer`: a new `CLSID_SynchronizeContainer` object.
    SynchronizeContainer,
    /// `QueryInterface X IFACE`.
    QueryInterface {
        /// The variable queried.
        target: String,
        /// The interface asked for.
        iface: Iface,
    },
    /// `AddRef X`: prints the new count.
    AddRef {
        /// The variable.
        target: String,
    },
    /// `Release X`: drops one of the script's references; prints the new count.
    Release {
        /// The variable.
        target: String,
    },
    /// `CreateCall F IFACE [IFACE2] [outer O] [NULL]`:
    /// `ICallFactory::CreateCall(IFACE, O or NULL, IFACE2, &p or NULL)`.
    CreateCall {
        /// The variable holding the factory (or the server).
        factory: String,
        /// `riid`, the asynchronous interface asked for.
        riid: Iface,
        /// `riid2`, the interface of the returned pointer (default `riid`).
        riid2: Iface,
        /// `pCtrlUnk`: the variable of the controlling unknown (`outer O`), if any.
        outer: Option<String>,
        /// `false`: `ppv` is `NULL` (a trailing `NULL`).
        ppv: bool,
    },
    /// `CoCreateInstance CLSID [IFACE] [outer O]`: `CoCreateInstance(CLSID, O or NULL,
    /// CLSCTX_INPROC_SERVER, IFACE, &p)`; `IFACE` defaults to `IUnknown`.
    CoCreateInstance {
        /// The class: its name, and its CLSID.
        clsid: Iface,
        /// The interface asked for.
        riid: Iface,
        /// The controlling unknown's variable, if aggregating.
        outer: Option<String>,
    },
    /// `Outer`: a script-made controlling unknown (spec 3.6) that answers `ISynchronize`
    /// itself, counting the `Signal`s and `Reset`s that reach it.
    Outer,
    /// `Signals O` / `Resets O`: how many `Signal`s (`Reset`s) reached the outer `O`.
    OuterCount {
        /// The outer's variable.
        outer: String,
        /// `true`: `Signals`; `false`: `Resets`.
        signals: bool,
    },
    /// `GetHandle X`: `ISynchronizeHandle::GetHandle`; out-parameter the variable whose
    /// object the handle belongs to.
    GetHandle {
        /// The event or call object.
        target: String,
    },
    /// `CoEnableCallCancellation` (`enable`) / `CoDisableCallCancellation`, with
    /// `pReserved = NULL`, on the actor's thread.
    CallCancellation {
        /// `true`: enable; `false`: disable.
        enable: bool,
    },
    /// `Begin_<Method> C ARGS...`: starts a call of `Method` (of the call object's interface,
    /// any registered one) with its in-parameters.
    Begin {
        /// The call object.
        call: String,
        /// The COM method name (`Read`).
        method: String,
        /// The in-parameters, in declaration order.
        args: Vec<Value>,
    },
    /// `Finish_<Method> C`: finishes the call; the result is the method's `HRESULT` and
    /// out-parameters.
    Finish {
        /// The call object.
        call: String,
        /// The COM method name.
        method: String,
    },
    /// `NAME ARGS...`, `Manual NAME ARGS... [strict]`, `Pool NAME ARGS... [strict]`: a server
    /// object from a registered constructor.
    Server {
        /// The registered constructor's name.
        server: String,
        /// How it serves asynchronous calls.
        serving: Serving,
        /// The constructor's arguments.
        args: Vec<Value>,
    },
    /// `Wait X [flags] timeout`: `ISynchronize::Wait(flags, timeout)` on an event or a call
    /// object.
    Wait {
        /// The event, or call object (its `ISynchronize`).
        target: String,
        /// `COWAIT_*` flags (default 0).
        flags: u32,
        /// Milliseconds, or `INFINITE`.
        timeout: u32,
    },
    /// `Signal X`: `ISynchronize::Signal`.
    Signal {
        /// The event, or call object.
        target: String,
    },
    /// `Reset X`: `ISynchronize::Reset`.
    Reset {
        /// The event, or call object.
        target: String,
    },
    /// `Cancel C seconds`: `ICancelMethodCalls::Cancel(seconds)`.
    Cancel {
        /// The call object.
        call: String,
        /// Seconds, or `INFINITE`.
        seconds: u32,
    },
    /// `TestCancel C`: `ICancelMethodCalls::TestCancel`.
    TestCancel {
        /// The call object.
        call: String,
    },
    /// `AddSynchronize K X|NULL`: `ISynchronizeContainer::AddSynchronize`.
    AddSynchronize {
        /// The container.
        container: String,
        /// The event or call object added; `None`: `NULL`.
        sync: Option<String>,
    },
    /// `WaitMultiple K [flags] timeout [NULL]`: out-parameter the variable of the signaled
    /// object.
    WaitMultiple {
        /// The container.
        container: String,
        /// `COWAIT_*` flags (default 0).
        flags: u32,
        /// Milliseconds, or `INFINITE`.
        timeout: u32,
        /// `false`: `ppSync` is `NULL`.
        out: bool,
    },
    /// `CoWaitForMultipleHandles flags timeout X...|NULL [NULL]`: out-parameter the index.
    CoWaitForMultipleHandles {
        /// `COWAIT_*` flags.
        flags: u32,
        /// Milliseconds, or `INFINITE`.
        timeout: u32,
        /// The events or call objects whose handles are waited on; `None`: `pHandles` is
        /// `NULL`.
        handles: Option<Vec<String>>,
        /// `false`: `lpdwindex` is `NULL`.
        index: bool,
    },
    /// `Complete C`: the server runs the oldest waiting call of `C` (its synchronous method)
    /// and completes it.
    Complete {
        /// The call object.
        call: String,
    },
    /// `Fail C HR`: the server completes the oldest waiting call of `C` with a failure.
    Fail {
        /// The call object.
        call: String,
        /// The failure.
        hr: HRESULT,
    },
    /// `ServerTestCancel C`: the server asks whether the client cancelled its waiting call.
    ServerTestCancel {
        /// The call object.
        call: String,
    },
    /// `CoInitializeEx STA|MTA`: the actor's thread enters a new STA
    /// (`COINIT_APARTMENTTHREADED`) or the MTA (`COINIT_MULTITHREADED`).
    CoInitializeEx {
        /// `true`: `COINIT_APARTMENTTHREADED`.
        sta: bool,
    },
    /// `CoUninitialize`: undoes one `CoInitializeEx` of the actor's thread.
    CoUninitialize,
    /// `S = Marshal X IFACE`: `CoMarshalInterThreadInterfaceInStream(IFACE, X, &S)` in the
    /// actor's apartment.
    Marshal {
        /// The object marshaled.
        target: String,
        /// The (registered, synchronous) interface marshaled.
        iface: Iface,
    },
    /// `P = Unmarshal S`: `CoGetInterfaceAndReleaseStream(S, its IID, &P)` in the actor's
    /// apartment: a proxy, or the object itself in its own apartment.
    Unmarshal {
        /// The stream variable (consumed).
        stream: String,
    },
    /// `Pump`: dispatches the calls queued for the actor's STA (`co_pump_messages`); the
    /// result is the number dispatched.
    Pump,
    /// `Call X Method ARGS...`: a synchronous call of `Method` on `X` (an object or a proxy).
    Call {
        /// The object (or proxy).
        target: String,
        /// The COM method name.
        method: String,
        /// The in-parameters.
        args: Vec<Value>,
    },
    /// `CoCancelCall ACTOR seconds`: cancels the synchronous call `ACTOR`'s thread is making.
    CoCancelCall {
        /// The actor whose thread's call is cancelled.
        actor: String,
        /// Seconds, or `INFINITE`.
        seconds: u32,
    },
    /// `CoTestCancel`: on the actor's thread (a server method's call context).
    CoTestCancel,
    /// `C = CoGetCancelObject ACTOR`: the cancel object of `ACTOR`'s synchronous call.
    CoGetCancelObject {
        /// The actor whose thread's call it is.
        actor: String,
    },
    /// A security operation (issue 12, `docs/security.md`).
    Security(SecurityOp),
}

/// The security operations: identities, client blankets, access policies and the server's
/// call context (`docs/security.md`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecurityOp {
    /// `SetIdentity NAME [GROUP...]`: the process identity of the actor's thread.
    SetIdentity {
        /// The principal's name.
        name: String,
        /// Its groups.
        groups: Vec<String>,
    },
    /// `WhoAmI`: the identity the actor's thread runs as now (`current_identity`); the
    /// out-parameter is its name.
    WhoAmI,
    /// `SetBlanket P AUTHN_LEVEL IMP_LEVEL [as NAME] [STATIC|DYNAMIC]`:
    /// `CoSetProxyBlanket` on a proxy or a proxy's call object.
    SetBlanket {
        /// The proxy or call object.
        target: String,
        /// `RPC_C_AUTHN_LEVEL_*`.
        authn_level: u32,
        /// `RPC_C_IMP_LEVEL_*`.
        imp_level: u32,
        /// `pAuthInfo`: the principal calls are made as (`as NAME`).
        auth_info: Option<String>,
        /// `EOAC_STATIC_CLOAKING` or `EOAC_DYNAMIC_CLOAKING`, else `EOAC_NONE`.
        capabilities: u32,
    },
    /// `QueryBlanket P`: `CoQueryProxyBlanket`; out-parameters the authentication and
    /// impersonation levels by name.
    QueryBlanket {
        /// The proxy or call object.
        target: String,
    },
    /// `C = CopyProxy P`: `CoCopyProxy`.
    CopyProxy {
        /// The proxy or call object copied.
        target: String,
    },
    /// `AccessPolicy X NAME... [min LEVEL]`: who may call `X` (`set_access_policy`, before
    /// `Marshal`).
    AccessPolicy {
        /// The object.
        target: String,
        /// The principals and groups let in (`Everyone`: anyone).
        allowed: Vec<String>,
        /// The least authentication level.
        min_level: u32,
    },
    /// `CoGetCallContext`: `CoGetCallContext(IID_IServerSecurity)` on the actor's thread.
    CoGetCallContext,
    /// `CoImpersonateClient` on the actor's thread.
    CoImpersonateClient,
    /// `CoRevertToSelf` on the actor's thread.
    CoRevertToSelf,
}

/// The authentication levels by the names scripts use (`RPC_C_AUTHN_LEVEL_` dropped).
pub const AUTHN_LEVELS: [(&str, u32); 7] = [
    ("DEFAULT", crate::security::RPC_C_AUTHN_LEVEL_DEFAULT),
    ("NONE", crate::security::RPC_C_AUTHN_LEVEL_NONE),
    ("CONNECT", crate::security::RPC_C_AUTHN_LEVEL_CONNECT),
    ("CALL", crate::security::RPC_C_AUTHN_LEVEL_CALL),
    ("PKT", crate::security::RPC_C_AUTHN_LEVEL_PKT),
    (
        "PKT_INTEGRITY",
        crate::security::RPC_C_AUTHN_LEVEL_PKT_INTEGRITY,
    ),
    (
        "PKT_PRIVACY",
        crate::security::RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
    ),
];

/// The impersonation levels by the names scripts use (`RPC_C_IMP_LEVEL_` dropped).
pub const IMP_LEVELS: [(&str, u32); 5] = [
    ("DEFAULT", crate::security::RPC_C_IMP_LEVEL_DEFAULT),
    ("ANONYMOUS", crate::security::RPC_C_IMP_LEVEL_ANONYMOUS),
    ("IDENTIFY", crate::security::RPC_C_IMP_LEVEL_IDENTIFY),
    ("IMPERSONATE", crate::security::RPC_C_IMP_LEVEL_IMPERSONATE),
    ("DELEGATE", crate::security::RPC_C_IMP_LEVEL_DELEGATE),
];

/// The script name of `value` in `table` (its number if it has none).
pub fn level_name(table: &[(&str, u32)], value: u32) -> String {
    table
        .iter()
        .find(|(_, v)| *v == value)
        .map_or_else(|| value.to_string(), |(n, _)| (*n).to_string())
}

impl SecurityOp {
    /// The variable the operation reads, if any.
    pub fn target(&self) -> Option<&str> {
        match self {
            SecurityOp::SetBlanket { target, .. }
            | SecurityOp::QueryBlanket { target }
            | SecurityOp::CopyProxy { target }
            | SecurityOp::AccessPolicy { target, .. } => Some(target),
            SecurityOp::SetIdentity { .. }
            | SecurityOp::WhoAmI
            | SecurityOp::CoGetCallContext
            | SecurityOp::CoImpersonateClient
            | SecurityOp::CoRevertToSelf => None,
        }
    }
}

impl Op {
    /// The variables the operation reads.
    pub fn uses(&self) -> Vec<&str> {
        match self {
            Op::SimpleStream { .. }
            | Op::Server { .. }
            | Op::ManualResetEvent
            | Op::StdEvent
            | Op::SynchronizeContainer
            | Op::Outer
            | Op::CallCancellation { .. }
            | Op::CoInitializeEx { .. }
            | Op::CoUninitialize
            | Op::Pump
            | Op::CoCancelCall { .. }
            | Op::CoTestCancel
            | Op::CoGetCancelObject { .. } => vec![],
            Op::Marshal { target, .. } | Op::Call { target, .. } => vec![target],
            Op::Security(sec) => sec.target().into_iter().collect(),
            Op::Unmarshal { stream } => vec![stream],
            Op::CoCreateInstance { outer, .. } => outer.iter().map(String::as_str).collect(),
            Op::OuterCount { outer, .. } => vec![outer],
            Op::GetHandle { target } => vec![target],
            Op::QueryInterface { target, .. }
            | Op::AddRef { target }
            | Op::Release { target }
            | Op::Wait { target, .. }
            | Op::Signal { target }
            | Op::Reset { target } => vec![target],
            Op::CreateCall { factory, outer, .. } => {
                let mut v = vec![factory.as_str()];
                v.extend(outer.as_deref());
                v
            }
            Op::Begin { call, .. }
            | Op::Finish { call, .. }
            | Op::Cancel { call, .. }
            | Op::TestCancel { call }
            | Op::Complete { call }
            | Op::Fail { call, .. }
            | Op::ServerTestCancel { call } => vec![call],
            Op::AddSynchronize { container, sync } => {
                let mut v = vec![container.as_str()];
                v.extend(sync.as_deref());
                v
            }
            Op::WaitMultiple { container, .. } => vec![container],
            Op::CoWaitForMultipleHandles { handles, .. } => {
                handles.iter().flatten().map(String::as_str).collect()
            }
        }
    }

    /// Whether the operation creates an object (and so needs `var =`).
    pub fn creates(&self) -> bool {
        matches!(
            self,
            Op::SimpleStream { .. }
                | Op::Server { .. }
                | Op::ManualResetEvent
                | Op::StdEvent
                | Op::SynchronizeContainer
                | Op::QueryInterface { .. }
                | Op::CreateCall { ppv: true, .. }
                | Op::CoCreateInstance { .. }
                | Op::Outer
                | Op::Marshal { .. }
                | Op::Unmarshal { .. }
                | Op::CoGetCancelObject { .. }
                | Op::Security(SecurityOp::CopyProxy { .. })
        )
    }

    /// Whether `start` may run it on its own thread (an operation that can block, or one a
    /// second actor may race with).
    pub fn startable(&self) -> bool {
        matches!(
            self,
            Op::Begin { .. }
                | Op::Finish { .. }
                | Op::Wait { .. }
                | Op::Cancel { .. }
                | Op::TestCancel { .. }
                | Op::WaitMultiple { .. }
                | Op::CoWaitForMultipleHandles { .. }
                | Op::Call { .. }
                | Op::CoCancelCall { .. }
        )
    }

    /// Whether the operation is one of the apartment operations (`CoInitializeEx`,
    /// `CoUninitialize`, `Marshal`, `Unmarshal`, `Pump`, `Call`, `CoCancelCall`,
    /// `CoTestCancel`, `CoGetCancelObject`) or a security operation, which the interleaving
    /// checker does not explore.
    pub fn is_apartment(&self) -> bool {
        matches!(
            self,
            Op::CoInitializeEx { .. }
                | Op::CoUninitialize
                | Op::Marshal { .. }
                | Op::Unmarshal { .. }
                | Op::Pump
                | Op::Call { .. }
                | Op::CoCancelCall { .. }
                | Op::CoTestCancel
                | Op::CoGetCancelObject { .. }
                | Op::Security(_)
        )
    }
}

/// What a statement does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepKind {
    /// Run `op` on the actor's thread and wait for it (watchdog: a hang is an error).
    Do {
        /// The variable the result is bound to (`var = ...`).
        bind: Option<String>,
        /// The operation.
        op: Op,
    },
    /// Start `op` on the actor's thread without waiting for it.
    Start {
        /// The operation.
        op: Op,
        /// What `-> blocks` (`Some(true)`) or `-> returns` (`Some(false)`) requires of it.
        blocks: Option<bool>,
    },
    /// Wait for the actor's started operation and check its result.
    Join,
    /// Commentary (a line starting with `>`): printed as it is, and drawn as a note.
    Say(String),
}

/// One statement of a script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    /// The 1-based line number.
    pub line: usize,
    /// Who performs it (a thread of that name).
    pub actor: String,
    /// What it does.
    pub kind: StepKind,
    /// The expected result, if any.
    pub expect: Option<Expect>,
    /// The statement in canonical form (without actor and expectation), for output.
    pub text: String,
}
