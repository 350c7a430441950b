//! [`Registry`]: what a script can name — interfaces (for `QueryInterface`, `CreateCall`,
//! `Begin_<Method>`/`Finish_<Method>`) and server constructors (statements that create
//! objects) — and the type-erased glue that lets the executor drive any registered interface
//! without knowing its Rust types.
//!
//! Invariants: the built-in interfaces (`IUnknown`, `ICallFactory`, `ISynchronize`, ...) are
//! always known; [`Registry::new`] also registers `ISimpleStream`, `FaultyStream` (whose
//! methods panic: the server-fault scenarios) and the `SimpleStream`
//! server, so the default registry runs every script the language has always run. A name or
//! IID registered twice keeps its first registration.

use std::any::Any;
use std::io::Write;
use std::marker::PhantomData;
use std::path::Path;
use std::sync::Arc;

use super::ptr::{addr_of, Ptr, Target};
use super::run::{run_source_with, RunOptions, ScriptError};
use super::serve::ScriptServer;
use super::trace::Trace;
use super::value::{Objects, ScriptInterface, Value};
use crate::call::{
    AsyncInterface, CallObject, FinishMode, ICallFactory, ICancelMethodCalls, ManualHandler, Pool,
    ServerCall, State,
};
use crate::guid::{GUID, IID};
use crate::hresult::{E_UNEXPECTED, HRESULT};
use crate::marshal::{
    co_get_interface_and_release_stream, co_marshal_inter_thread_interface_in_stream, MarshalStream,
};
use crate::simple_stream::{ISimpleStream, ISimpleStreamCalls, SimpleStream};
use crate::sync::{ISynchronize, ISynchronizeContainer, ISynchronizeHandle};
use crate::unknown::{ComPtr, IUnknown, Interface};

/// An interface a script can name: its name, IID, and how to query for it and create a call
/// typed for it.
#[derive(Clone, Copy)]
pub(crate) struct IfaceDesc {
    pub(crate) name: &'static str,
    pub(crate) iid: IID,
    query: fn(&dyn IUnknown) -> Result<Ptr, HRESULT>,
    fill: Fill,
}

/// Runs a call (`CreateCall`, `CoCreateInstance`) with an out-slot typed for one interface:
/// its `HRESULT` and the pointer it wrote.
type Fill = fn(&mut dyn FnMut(&mut dyn Any) -> HRESULT) -> (HRESULT, Option<Ptr>);

fn desc<J: ?Sized + Interface + IUnknown>() -> IfaceDesc {
    fn query_as<J: ?Sized + Interface + IUnknown>(u: &dyn IUnknown) -> Result<Ptr, HRESULT> {
        let p = crate::unknown::query::<J>(u).map_err(|e| e.code())?;
        Ptr::new(p)
    }
    fn fill_as<J: ?Sized + Interface + IUnknown>(
        call: &mut dyn FnMut(&mut dyn Any) -> HRESULT,
    ) -> (HRESULT, Option<Ptr>) {
        let mut slot: Option<ComPtr<J>> = None;
        let hr = call(&mut slot);
        match slot.map(Ptr::new) {
            Some(Ok(p)) => (hr, Some(p)),
            Some(Err(e)) => (e, None),
            None => (hr, None),
        }
    }
    IfaceDesc {
        name: J::NAME,
        iid: J::IID,
        query: query_as::<J>,
        fill: fill_as::<J>,
    }
}

/// How a registered server serves asynchronous calls (the statement that created it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Serving {
    /// `NAME ARGS`: the implementation object itself (no `ICallFactory` unless it has one).
    Plain,
    /// `Manual NAME ARGS [strict]`: calls wait until the script completes them.
    Manual {
        /// `Finish_` before completion returns `RPC_S_CALLPENDING` instead of blocking.
        strict: bool,
    },
    /// `Pool NAME ARGS [strict]`: calls run the implementation's methods on the global pool.
    Pool {
        /// As for `Manual`.
        strict: bool,
    },
}

/// A call object's state, read without knowing its interface.
pub(crate) trait CallView: Send + Sync {
    fn state(&self) -> State;
}

impl<M: AsyncInterface> CallView for CallObject<M> {
    fn state(&self) -> State {
        CallObject::state(self)
    }
}

/// A begun call waiting at a hand-driven server.
pub(crate) trait PendingCall: Send {
    /// Its call object (address and state), while it is alive.
    fn call(&self) -> Option<(usize, Arc<dyn CallView>)>;
    /// The call as `Method(args)`.
    fn shown(&self, objects: &dyn Objects) -> String;
    /// Whether the client still waits for it.
    fn is_wanted(&self) -> bool;
    /// Runs the synchronous method and completes the call; its `HRESULT` and out-values.
    fn complete(self: Box<Self>, objects: &dyn Objects) -> (HRESULT, Vec<Value>);
    /// Completes the call with a failure.
    fn fail(self: Box<Self>, hr: HRESULT);
    /// The server's `TestCancel`.
    fn test_cancel(&self) -> HRESULT;
}

/// A hand-driven server's queue of begun calls.
pub(crate) trait ServerQueue: Send + Sync {
    fn take(&self) -> Option<Box<dyn PendingCall>>;
}

struct Queue<M: ScriptInterface> {
    handler: Arc<ManualHandler<M>>,
    server: Arc<ScriptServer<M>>,
}

struct Pending<M: ScriptInterface> {
    call: ServerCall<M>,
    input: M::In,
    server: Arc<ScriptServer<M>>,
}

impl<M: ScriptInterface> ServerQueue for Queue<M> {
    fn take(&self) -> Option<Box<dyn PendingCall>> {
        let (call, input) = self.handler.take()?;
        Some(Box::new(Pending {
            call,
            input,
            server: self.server.clone(),
        }))
    }
}

impl<M: ScriptInterface> PendingCall for Pending<M> {
    fn call(&self) -> Option<(usize, Arc<dyn CallView>)> {
        let c = self.call.call_object()?;
        Some((addr_of(&c), c as Arc<dyn CallView>))
    }
    fn shown(&self, objects: &dyn Objects) -> String {
        let method = M::METHODS
            .get(M::method_of(&self.input))
            .copied()
            .unwrap_or("?");
        show_call(method, &M::in_values(&self.input, objects))
    }
    fn is_wanted(&self) -> bool {
        self.call.is_wanted()
    }
    fn complete(self: Box<Self>, objects: &dyn Objects) -> (HRESULT, Vec<Value>) {
        let Pending {
            call,
            input,
            server,
        } = *self;
        let (hr, out) = M::invoke_sync(server.object(), input);
        let outs = M::out_values(&out, objects);
        call.complete(hr, out);
        (hr, outs)
    }
    fn fail(self: Box<Self>, hr: HRESULT) {
        self.call.fail(hr);
    }
    fn test_cancel(&self) -> HRESULT {
        self.call.test_cancel()
    }
}

/// `Method(a, b)`.
pub(crate) fn show_call(method: &str, args: &[Value]) -> String {
    let args: Vec<String> = args.iter().map(Value::to_string).collect();
    format!("{method}({})", args.join(", "))
}

/// A registered interface, without its Rust types.
pub(crate) trait ErasedInterface: Send + Sync {
    /// The synchronous and asynchronous interfaces.
    fn descs(&self) -> [IfaceDesc; 2];
    /// The methods' COM names.
    fn methods(&self) -> &'static [&'static str];
    /// Checks a `Begin_`'s literal arguments before the script runs.
    fn check_in(&self, method: usize, args: &[Value]) -> Result<(), String>;
    /// The address of `unk`'s call object of this interface, if it is one.
    fn call_addr(&self, unk: &dyn IUnknown) -> Option<usize>;
    /// Prepares `Begin_<method>(args)`: the arguments as shown, and the call.
    fn begin(
        &self,
        target: Target,
        method: usize,
        args: &[Value],
        objects: &dyn Objects,
    ) -> Result<(Vec<Value>, BeginJob), String>;
    /// Prepares `Finish_<method>()`.
    fn finish(&self, target: Target, method: usize) -> FinishJob;
    /// `CoMarshalInterThreadInterfaceInStream` of the synchronous interface, in the current
    /// thread's apartment.
    fn marshal(&self, object: &dyn IUnknown) -> Result<MarshalStream, HRESULT>;
    /// `CoGetInterfaceAndReleaseStream` of a stream of this interface, in the current
    /// thread's apartment: a proxy or the object itself.
    fn unmarshal(&self, stream: MarshalStream) -> Result<Ptr, HRESULT>;
    /// A synchronous call of `method` with `args`: the in-parameters as shown, and the job.
    fn call_sync(
        &self,
        target: Target,
        method: usize,
        args: &[Value],
        objects: &dyn Objects,
    ) -> Result<(Vec<Value>, FinishJob), String>;
}

/// A `Begin_` ready to run: its `HRESULT`.
pub(crate) type BeginJob = Box<dyn FnOnce() -> HRESULT + Send>;
/// A `Finish_` ready to run: its `HRESULT` and out-values, named through the given objects.
pub(crate) type FinishJob = Box<dyn FnOnce(&dyn Objects) -> (HRESULT, Vec<Value>) + Send>;

struct Iface<M>(PhantomData<fn() -> M>);

/// `args` as method `method`'s in-parameters, and those as the trace shows them.
fn parse_in<M: ScriptInterface>(
    method: usize,
    args: &[Value],
    objects: &dyn Objects,
) -> Result<(M::In, Vec<Value>), String> {
    let input = M::parse_in(method, args, objects)?;
    let shown = M::in_values(&input, objects);
    Ok((input, shown))
}

impl<M: ScriptInterface> ErasedInterface for Iface<M> {
    fn descs(&self) -> [IfaceDesc; 2] {
        [desc::<M::Sync>(), desc::<M::Async>()]
    }
    fn methods(&self) -> &'static [&'static str] {
        M::METHODS
    }
    fn check_in(&self, method: usize, args: &[Value]) -> Result<(), String> {
        M::check_in(method, args)
    }
    fn call_addr(&self, unk: &dyn IUnknown) -> Option<usize> {
        // Only comasync call objects are matched with their servers' queues.
        let p = crate::unknown::query::<M::Async>(unk).ok()?;
        let _: ComPtr<dyn ICancelMethodCalls> = p.query().ok()?;
        Some(addr_of(p.as_arc()))
    }
    fn begin(
        &self,
        target: Target,
        method: usize,
        args: &[Value],
        objects: &dyn Objects,
    ) -> Result<(Vec<Value>, BeginJob), String> {
        let (input, shown) = parse_in::<M>(method, args, objects)?;
        let job: BeginJob = Box::new(move || match target.get::<M::Async>() {
            Ok(c) => M::begin_async(&c, input),
            Err(hr) => hr,
        });
        Ok((shown, job))
    }
    fn finish(&self, target: Target, method: usize) -> FinishJob {
        Box::new(move |objects| match target.get::<M::Async>() {
            Ok(c) => match M::finish_async(&c, method) {
                (hr, Some(out)) => (hr, M::out_values(&out, objects)),
                (hr, None) => (hr, Vec::new()),
            },
            Err(hr) => (hr, Vec::new()),
        })
    }
    fn marshal(&self, object: &dyn IUnknown) -> Result<MarshalStream, HRESULT> {
        let iid = <M::Sync as Interface>::IID;
        co_marshal_inter_thread_interface_in_stream::<M>(&iid, object).map_err(|e| e.code())
    }
    fn unmarshal(&self, stream: MarshalStream) -> Result<Ptr, HRESULT> {
        let iid = <M::Sync as Interface>::IID;
        let p = co_get_interface_and_release_stream::<M>(stream, &iid).map_err(|e| e.code())?;
        Ptr::new(p)
    }
    fn call_sync(
        &self,
        target: Target,
        method: usize,
        args: &[Value],
        objects: &dyn Objects,
    ) -> Result<(Vec<Value>, FinishJob), String> {
        let (input, shown) = parse_in::<M>(method, args, objects)?;
        let job: FinishJob = Box::new(move |objects| match target.get::<M::Sync>() {
            Ok(object) => {
                let (hr, out) = M::invoke_sync(&object, input);
                (hr, M::out_values(&out, objects))
            }
            Err(hr) => (hr, Vec::new()),
        });
        Ok((shown, job))
    }
}

/// What a server statement made.
pub(crate) struct Made {
    pub(crate) ptr: Ptr,
    /// A hand-driven server's queue.
    pub(crate) queue: Option<Box<dyn ServerQueue>>,
}

/// A registered server constructor, without its Rust types.
pub(crate) trait ErasedServer: Send + Sync {
    fn create(&self, args: &[Value], serving: Serving) -> Result<Made, String>;
}

type Ctor<M> =
    dyn Fn(&[Value]) -> Result<ComPtr<<M as AsyncInterface>::Sync>, String> + Send + Sync;

struct Server<M: ScriptInterface>(Box<Ctor<M>>);

impl<M: ScriptInterface> ErasedServer for Server<M> {
    fn create(&self, args: &[Value], serving: Serving) -> Result<Made, String> {
        let object = (self.0)(args)?;
        let mode = |strict| {
            if strict {
                FinishMode::Strict
            } else {
                FinishMode::Blocking
            }
        };
        let fail = |hr: HRESULT| format!("the new object answers {}", hr.name_or_hex());
        match serving {
            Serving::Plain => Ok(Made {
                ptr: Ptr::new(object).map_err(fail)?,
                queue: None,
            }),
            Serving::Manual { strict } => {
                let (server, handler) = ScriptServer::<M>::manual(object, mode(strict));
                let ptr =
                    Ptr::new(ComPtr::new(server.clone() as Arc<dyn IUnknown>)).map_err(fail)?;
                Ok(Made {
                    ptr,
                    queue: Some(Box::new(Queue { handler, server })),
                })
            }
            Serving::Pool { strict } => {
                let server = ScriptServer::<M>::pooled(object, Pool::global(), mode(strict));
                Ok(Made {
                    ptr: Ptr::new(ComPtr::new(server as Arc<dyn IUnknown>)).map_err(fail)?,
                    queue: None,
                })
            }
        }
    }
}

/// What scripts can name: interfaces and server constructors. [`Registry::new`] knows the
/// built-ins (`ISimpleStream`, `SimpleStream`); register your own interfaces (declared with
/// [`#[interface]`](macro@crate::interface), which generates the script glue by default) and servers,
/// then run scripts with [`Registry::run_source`] / [`Registry::run_file`].
///
/// ```
/// use comasync::script::{Registry, RunOptions};
/// use comasync::simple_stream::{ISimpleStreamCalls, SimpleStream};
///
/// let mut registry = Registry::new();
/// // A second server over the same interface: `x = Zeros 4` is a sync-only object,
/// // `x = Manual Zeros 4` a hand-driven one.
/// registry.server::<ISimpleStreamCalls, _>("Zeros", |args| match args {
///     [comasync::script::Value::Num(n)] => Ok(SimpleStream::create_sync_only(vec![0; *n as usize])),
///     _ => Err("expected the size".into()),
/// });
/// let script = "s = Manual Zeros 4\n\
///               f = QueryInterface s ICallFactory -> S_OK\n\
///               c = CreateCall f AsyncISimpleStream -> S_OK\n\
///               Begin_Read c 2 -> S_OK\n\
///               server: Complete c -> S_OK \"\\x00\\x00\"\n\
///               Finish_Read c -> S_OK \"\\x00\\x00\"\n";
/// registry.run_source("zeros.cas", script, &RunOptions::default(), &mut std::io::sink())?;
/// # Ok::<(), comasync::script::ScriptError>(())
/// ```
#[derive(Clone)]
pub struct Registry {
    base: Vec<IfaceDesc>,
    ifaces: Vec<Arc<dyn ErasedInterface>>,
    servers: Vec<(String, Arc<dyn ErasedServer>)>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::new()
    }
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry")
            .field("interfaces", &self.interface_names())
            .field("servers", &self.server_names())
            .finish()
    }
}

impl Registry {
    /// The built-in interfaces and the `SimpleStream` and `FaultyStream` servers (over
    /// `ISimpleStream`) and the `Who` and
    /// `WhoAsync` servers (over `IWho`, for the security scenarios).
    pub fn new() -> Registry {
        let mut r = Registry {
            base: vec![
                desc::<dyn ICallFactory>(),
                desc::<dyn ISynchronize>(),
                desc::<dyn ISynchronizeHandle>(),
                desc::<dyn ICancelMethodCalls>(),
                desc::<dyn ISynchronizeContainer>(),
            ],
            ifaces: Vec::new(),
            servers: Vec::new(),
        };
        r.server::<ISimpleStreamCalls, _>("SimpleStream", |args| match args {
            [Value::Str(data)] => {
                Ok(SimpleStream::create_sync_only(data.clone()) as ComPtr<dyn ISimpleStream>)
            }
            _ => Err("expected the stream's contents as a string".into()),
        });
        r.server::<ISimpleStreamCalls, _>("FaultyStream", |args| match args {
            [] => Ok(super::faulty::FaultyStream::create()),
            _ => Err("expected no arguments".into()),
        });
        r.server::<super::who::IWhoCalls, _>("Who", |args| match args {
            [] => Ok(super::who::Who::create()),
            _ => Err("expected no arguments".into()),
        });
        r.server::<super::who::IWhoCalls, _>("WhoAsync", |args| match args {
            [] => Ok(super::who::WhoAsync::create()),
            _ => Err("expected no arguments".into()),
        });
        r
    }

    /// Registers the interface pair of `M`: its names and IIDs become valid in
    /// `QueryInterface` and `CreateCall`, and its methods in `Begin_`/`Finish_`.
    pub fn interface<M: ScriptInterface>(&mut self) -> &mut Self {
        let iid = <M::Async as Interface>::IID;
        if self.iface_of_async(&iid).is_none() {
            self.ifaces.push(Arc::new(Iface::<M>(PhantomData)));
        }
        self
    }

    /// Registers a server constructor under `name` (and `M`'s interface): the statements
    /// `x = NAME ARGS...` (the object itself), `x = Manual NAME ARGS... [strict]` (hand-driven)
    /// and `x = Pool NAME ARGS... [strict]` (its methods run on the global pool). `ctor` gets
    /// the arguments; an `Err` stops the script at that line.
    pub fn server<M, F>(&mut self, name: &str, ctor: F) -> &mut Self
    where
        M: ScriptInterface,
        F: Fn(&[Value]) -> Result<ComPtr<M::Sync>, String> + Send + Sync + 'static,
    {
        self.interface::<M>();
        if self.server_of(name).is_none() {
            let s: Arc<dyn ErasedServer> = Arc::new(Server::<M>(Box::new(ctor)));
            self.servers.push((name.to_string(), s));
        }
        self
    }

    /// Runs a script given as text against this registry (see [`run_source`](super::run_source)).
    pub fn run_source(
        &self,
        name: &str,
        source: &str,
        opts: &RunOptions,
        out: &mut dyn Write,
    ) -> Result<Trace, ScriptError> {
        run_source_with(self, name, source, opts, out)
    }

    /// Runs a script file against this registry (see [`run_file`](super::run_file)).
    pub fn run_file(
        &self,
        path: &Path,
        opts: &RunOptions,
        out: &mut dyn Write,
    ) -> Result<Trace, ScriptError> {
        let name = path.display().to_string();
        let source = std::fs::read_to_string(path).map_err(|source| ScriptError::Io {
            path: name.clone(),
            source,
        })?;
        self.run_source(&name, &source, opts, out)
    }

    /// Every interface name a script can use, in a stable order.
    pub fn interface_names(&self) -> Vec<&'static str> {
        self.all().map(|d| d.name).collect()
    }

    /// The registered server statements.
    pub fn server_names(&self) -> Vec<&str> {
        self.servers.iter().map(|(n, _)| n.as_str()).collect()
    }

    fn all(&self) -> impl Iterator<Item = IfaceDesc> + '_ {
        std::iter::once(desc::<dyn IUnknown>())
            .chain(self.ifaces.iter().flat_map(|i| i.descs()))
            .chain(self.base.iter().copied())
    }

    /// An interface by name or `{IID}`: its display name and IID.
    pub(crate) fn resolve(&self, word: &str) -> Option<(String, IID)> {
        if let Some(d) = self.all().find(|d| d.name == word) {
            return Some((d.name.to_string(), d.iid));
        }
        if word.starts_with('{') {
            let iid = GUID::parse(word)?;
            let name = self
                .all()
                .find(|d| d.iid == iid)
                .map_or_else(|| iid.to_string(), |d| d.name.to_string());
            return Some((name, iid));
        }
        None
    }

    pub(crate) fn iface_of_async(&self, iid: &IID) -> Option<&Arc<dyn ErasedInterface>> {
        self.ifaces.iter().find(|i| i.descs()[1].iid == *iid)
    }

    /// The registered interface whose synchronous interface is `iid` (what `Marshal` names).
    pub(crate) fn iface_of_sync(&self, iid: &IID) -> Option<&Arc<dyn ErasedInterface>> {
        self.ifaces.iter().find(|i| i.descs()[0].iid == *iid)
    }

    /// The names of the interfaces a script can marshal (the registered synchronous ones).
    pub(crate) fn marshalable_names(&self) -> Vec<&'static str> {
        self.ifaces.iter().map(|i| i.descs()[0].name).collect()
    }

    /// The registered interfaces with a method called `method`.
    pub(crate) fn ifaces_with(&self, method: &str) -> Option<&Arc<dyn ErasedInterface>> {
        self.ifaces.iter().find(|i| i.methods().contains(&method))
    }

    pub(crate) fn server_of(&self, name: &str) -> Option<&Arc<dyn ErasedServer>> {
        self.servers.iter().find(|(n, _)| n == name).map(|(_, s)| s)
    }

    /// `QueryInterface(iid)`, typed when the interface is known; an unknown IID is asked for
    /// with an `IUnknown` out-slot (the object answers `E_NOINTERFACE`, or `E_INVALIDARG`).
    pub(crate) fn query(&self, unk: &dyn IUnknown, iid: &IID) -> Result<Ptr, HRESULT> {
        match self.all().find(|d| d.iid == *iid) {
            Some(d) => (d.query)(unk),
            None => {
                let mut slot: Option<ComPtr<dyn IUnknown>> = None;
                let hr = unk.query_interface(iid, &mut slot);
                match slot {
                    Some(p) if hr.succeeded() => Ptr::new(p),
                    _ if hr.succeeded() => Err(E_UNEXPECTED),
                    _ => Err(hr),
                }
            }
        }
    }

    /// Runs `call` with an out-slot typed for `iid` (an `IUnknown` slot for an unknown IID,
    /// so the callee gives its real answer).
    pub(crate) fn fill(
        &self,
        iid: &IID,
        call: &mut dyn FnMut(&mut dyn Any) -> HRESULT,
    ) -> (HRESULT, Option<Ptr>) {
        let d = self
            .all()
            .find(|d| d.iid == *iid)
            .unwrap_or_else(desc::<dyn IUnknown>);
        (d.fill)(call)
    }

    /// `CreateCall(riid, outer, riid2, &p)` with `p` typed for `riid2`.
    pub(crate) fn create_call(
        &self,
        f: &dyn ICallFactory,
        riid: &IID,
        outer: Option<&ComPtr<dyn IUnknown>>,
        riid2: &IID,
    ) -> (HRESULT, Option<Ptr>) {
        self.fill(riid2, &mut |slot| {
            f.create_call(riid, outer, riid2, Some(slot))
        })
    }
}
