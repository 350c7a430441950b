//! comasync's call objects behind windows-rs interfaces: a windows-rs `#[implement]` server's
//! synchronous methods served asynchronously on comasync's pool.
//!
//! On Windows, the call object a client gets from a proxy's `ICallFactory::CreateCall` is
//! MIDL's work: `Begin_<m>` sends the in-parameters to the server, whose synchronous method
//! runs on an RPC thread, and `Finish_<m>` hands back the out-parameters. Here
//! [`CallFactory`] is the proxy's `ICallFactory`, and the call objects are comasync's
//! [`CallObject`](comasync::call::CallObject)s — comasync's state machine, events,
//! cancellation and completion callback, with their `HRESULT`s — served on
//! [`Pool::global`]. What MIDL generates per method is written once per interface as a
//! windows-rs `#[implement]` struct holding an [`AsyncCall`]: `Begin_<m>` is
//! [`AsyncCall::begin`] with a closure that calls the synchronous method, `Finish_<m>` is
//! [`AsyncCall::finish`] with a closure that writes the out-parameters, and
//! [`call_object_faces!`](crate::call_object_faces) implements `ISynchronize`,
//! `ISynchronizeHandle` and `ICancelMethodCalls` (see `tests/call_object.rs`).
//!
//! A server that has its own `ICallFactory` and server call object (as Microsoft's samples
//! write them) is hosted instead with [`CallFactory::host`]: per call, a pool worker makes a
//! server call object, and the method's closure drives its `Begin_<m>`/`Finish_<m>`, as
//! comasync's stub does (`tests/hosted_server_call_object.rs`).
//!
//! While the server's method runs, the call is the worker's call context
//! ([`crate::context`]): `CoTestCancel` and `CoGetCallContext` inside it see the client's
//! `Cancel`. A panic in the method completes the call with `RPC_E_SERVERFAULT`.
//!
//! A client that passes an outer unknown to `CreateCall` (the completion callback, spec 3.6)
//! gets the call object; at each completion the outer's `ISynchronize::Signal` is called on
//! the completing thread. The outer is held weakly (it owns the call, not the other way).
//!
//! Invariants: the server object is reached only through a [`ComObject`] of a `Send + Sync`
//! type, so running its methods on a pool thread needs no `unsafe`; every `HRESULT` is the
//! comasync call object's.

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use comasync::call::{
    serve, CallHandler, CompletionCallback, FinishMode, ICancelMethodCalls as _, Pool, ServerCall,
    StdCallFactory,
};
use comasync::hresult::{E_INVALIDARG, E_NOINTERFACE, E_UNEXPECTED};
use comasync::unknown::ComPtr;
use windows_core::{
    implement, ComObject, ComObjectInner, ComObjectInterface, IUnknown, Interface, Ref, Result,
    GUID,
};

use crate::bindings::Windows::Win32::Foundation::HANDLE;
use crate::bindings::Windows::Win32::System::Com::{ICallFactory, ICallFactory_Impl, ISynchronize};
use crate::context::{self, Context};
use crate::events::Face;
use crate::{hr, ok};

mod method {
    //! The one comasync interface every bridged call goes through: `Invoke` runs a closure
    //! (the server's method) and returns its result, type-erased.
    #![allow(missing_docs)]
    use super::{Invocation, Outcome};
    use comasync::HRESULT;

    #[comasync::interface(
        iid = "{9C1E5A70-3B2D-4F61-8E7A-0B1C2D3E4F50}",
        async_iid = "{9C1E5A71-3B2D-4F61-8E7A-0B1C2D3E4F50}",
        scripts = false
    )]
    pub trait IWindowsMethod {
        /// `Invoke(call, &result)`: runs `call`.
        #[out(result)]
        fn invoke(&self, call: Invocation) -> (HRESULT, Outcome);
    }
}
use method::{AsyncIWindowsMethod, IWindowsMethodCalls, IWindowsMethodIn, IWindowsMethodOut};

/// One call's work: the server's method with its in-parameters, run on a pool thread.
pub struct Invocation(Box<dyn FnOnce() -> (comasync::HRESULT, Outcome) + Send>);

impl fmt::Debug for Invocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Invocation")
    }
}

/// One call's out-parameters, type-erased (`None` when the call failed before the method ran).
#[derive(Default)]
pub struct Outcome(Option<Box<dyn Any + Send>>);

impl fmt::Debug for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "Outcome(..)"
        } else {
            "Outcome(None)"
        })
    }
}

/// Runs each call's method on a pool worker, as the call's context.
struct Handler {
    pool: Arc<Pool>,
}

impl CallHandler<IWindowsMethodCalls> for Handler {
    fn begin(&self, call: ServerCall<IWindowsMethodCalls>, input: IWindowsMethodIn) {
        let IWindowsMethodIn::Invoke { call: invocation } = input;
        self.pool.execute(move || {
            if !call.is_wanted() {
                return; // cancelled or abandoned before a worker took it: the method does not run
            }
            let object = call.call_object().map(|c| Arc::downgrade(&c));
            let context = Context {
                test: Arc::new(call.test_cancel_fn()),
                cancel: Arc::new(
                    move |seconds| match object.as_ref().and_then(|w| w.upgrade()) {
                        Some(c) => c.cancel(seconds),
                        None => comasync::hresult::RPC_E_CALL_COMPLETE,
                    },
                ),
            };
            serve(call, move || {
                let _context = context::enter(context);
                let (hr, result) = (invocation.0)();
                (hr, IWindowsMethodOut::Invoke { result })
            });
        });
    }
}

/// How a call reaches the server object: an interface pointer made on the thread that runs
/// the method, from a `ComObject` that may cross threads.
struct Server<I> {
    make: Box<dyn Fn() -> Result<I> + Send + Sync>,
}

/// A call object's machinery, held by the windows-rs `#[implement]` struct that speaks the
/// asynchronous interface (the MIDL-generated part on Windows).
pub struct AsyncCall {
    call: ComPtr<dyn AsyncIWindowsMethod>,
    face: Face,
    server: Arc<dyn Any + Send + Sync>,
}

impl AsyncCall {
    fn new(
        call: ComPtr<dyn AsyncIWindowsMethod>,
        server: Arc<dyn Any + Send + Sync>,
    ) -> Result<AsyncCall> {
        let sync = call.query::<dyn comasync::sync::ISynchronize>()?;
        Ok(AsyncCall {
            call,
            face: Face::new(sync),
            server,
        })
    }

    /// `Begin_<m>`: starts the call; `method` runs on a pool worker with the server's
    /// synchronous interface `I` and returns the method's `HRESULT` and out-parameters.
    /// Returns `Begin_`'s `HRESULT` (`S_OK`, or `RPC_S_CALLPENDING` while a call is in
    /// progress, …); `E_NOINTERFACE` if the server is not served as `I`.
    pub fn begin<I, R>(
        &self,
        method: impl FnOnce(&I) -> (windows_core::HRESULT, R) + Send + 'static,
    ) -> windows_core::HRESULT
    where
        I: Interface + 'static,
        R: Send + 'static,
    {
        let Ok(server) = self.server.clone().downcast::<Server<I>>() else {
            return hr(E_NOINTERFACE);
        };
        let invocation = Invocation(Box::new(move || match (server.make)() {
            Ok(object) => {
                let (h, out) = method(&object);
                (comasync::HRESULT(h.0), Outcome(Some(Box::new(out))))
            }
            // The server could not be reached (a hosted server's CreateCall failed): the call
            // fails with its code and no out-parameters.
            Err(e) => (comasync::HRESULT(e.code().0), Outcome(None)),
        }));
        hr(self.call.begin_invoke(invocation))
    }

    /// `Finish_<m>`: waits for the call (as comasync's blocking `Finish_`), then passes the
    /// out-parameters to `out` if the method ran and succeeded, and returns the `HRESULT`
    /// (the method's, or the call's: `RPC_E_CALL_CANCELED`, `RPC_E_SERVERFAULT`, …).
    /// `E_UNEXPECTED` if `R` is not what `begin`'s method returned.
    pub fn finish<R: 'static>(&self, out: impl FnOnce(R)) -> windows_core::HRESULT {
        let (h, outcome) = self.call.finish_invoke();
        if let Some(result) = outcome.0 {
            match result.downcast::<R>() {
                Ok(r) => out(*r),
                Err(_) => return hr(E_UNEXPECTED),
            }
        }
        hr(h)
    }

    /// `ISynchronize::Wait`.
    pub fn wait(&self, flags: u32, ms: u32) -> Result<()> {
        self.face.wait(flags, ms)
    }

    /// `ISynchronize::Signal`.
    pub fn signal(&self) -> Result<()> {
        self.face.signal()
    }

    /// `ISynchronize::Reset`.
    pub fn reset(&self) -> Result<()> {
        self.face.reset()
    }

    /// `ISynchronizeHandle::GetHandle`: the call's event, valid while the call object lives.
    pub fn get_handle(&self) -> Result<HANDLE> {
        self.face.get_handle()
    }

    /// `ICancelMethodCalls::Cancel`.
    pub fn cancel(&self, seconds: u32) -> Result<()> {
        ok(self.cancel_object()?.cancel(seconds))
    }

    /// `ICancelMethodCalls::TestCancel`.
    pub fn test_cancel(&self) -> Result<()> {
        ok(self.cancel_object()?.test_cancel())
    }

    fn cancel_object(&self) -> Result<ComPtr<dyn comasync::call::ICancelMethodCalls>> {
        Ok(self
            .call
            .query::<dyn comasync::call::ICancelMethodCalls>()?)
    }

    /// The comasync `ISynchronize` of the call (for tests comparing with comasync's API).
    pub fn synchronize(&self) -> &ComPtr<dyn comasync::sync::ISynchronize> {
        self.face.sync()
    }
}

pub use factory::CallFactory;

mod factory {
    //! [`CallFactory`] (in its own module: `#[implement]` adds a `CallFactory_Impl` type
    //! that is not part of the API).
    use super::*;

    type NewCall = Box<dyn Fn(AsyncCall) -> IUnknown>;

    /// The `ICallFactory` of a served object: `CreateCall` makes a comasync call object and wraps
    /// it in the windows-rs call object `new_call` builds.
    #[implement(ICallFactory)]
    pub struct CallFactory {
        async_iid: GUID,
        factory: ComPtr<dyn comasync::call::ICallFactory>,
        server: Arc<dyn Any + Send + Sync>,
        new_call: NewCall,
    }

    impl CallFactory {
        /// Serves `server`'s synchronous interface `I` asynchronously: calls to the asynchronous
        /// interface `async_iid` made from the returned factory run `I`'s methods on comasync's
        /// global pool. `new_call` wraps each call's [`AsyncCall`] in the windows-rs object that
        /// implements the asynchronous interface and returns its `IUnknown`.
        pub fn create<I, T>(
            server: &ComObject<T>,
            async_iid: GUID,
            new_call: impl Fn(AsyncCall) -> IUnknown + 'static,
        ) -> ICallFactory
        where
            I: Interface + 'static,
            T: ComObjectInner + Send + Sync + 'static,
            T::Outer: ComObjectInterface<I>,
        {
            let object = server.clone();
            let make = move || Ok(object.to_interface::<I>());
            Self::with_server::<I>(Box::new(make), async_iid, Box::new(new_call))
        }

        /// Hosts `server`'s own server call objects, as comasync's stub hosts one (spec 3.5):
        /// each call runs on comasync's global pool, where the host asks `server`'s
        /// `ICallFactory` for a new server call object (`CreateCall(async_iid, NULL,
        /// IID_IUnknown)`) and gives it to the method's closure as `A` (the asynchronous
        /// interface), which calls its `Begin_<m>`, waits for it, and returns its `Finish_<m>`.
        /// A failed `CreateCall` fails the client's call with its code. Not aggregated: a
        /// windows-rs server call object has no delegating `IUnknown`, so the server sees the
        /// client's `Cancel` through `CoGetCallContext`/`CoTestCancel`, not through an outer.
        pub fn host<A, T>(
            server: &ComObject<T>,
            async_iid: GUID,
            new_call: impl Fn(AsyncCall) -> IUnknown + 'static,
        ) -> ICallFactory
        where
            A: Interface + 'static,
            T: ComObjectInner + Send + Sync + 'static,
            T::Outer: ComObjectInterface<ICallFactory>,
        {
            let object = server.clone();
            let make = move || {
                let factory = object.to_interface::<ICallFactory>();
                // SAFETY: an ordinary COM call on a live interface pointer (`factory` holds a
                // reference); the IIDs are locals that outlive the call.
                let call = unsafe { factory.CreateCall(&async_iid, None, &IUnknown::IID) }?;
                call.cast::<A>()
            };
            Self::with_server::<A>(Box::new(make), async_iid, Box::new(new_call))
        }

        fn with_server<I: Interface + 'static>(
            make: Box<dyn Fn() -> Result<I> + Send + Sync>,
            async_iid: GUID,
            new_call: NewCall,
        ) -> ICallFactory {
            let server: Arc<dyn Any + Send + Sync> = Arc::new(Server::<I> { make });
            let handler = Arc::new(Handler {
                pool: Pool::global(),
            });
            CallFactory {
                async_iid,
                factory: StdCallFactory::with_handler(handler, FinishMode::Blocking),
                server,
                new_call,
            }
            .into()
        }
    }

    impl ICallFactory_Impl for CallFactory_Impl {
        /// `CreateCall(riid, pCtrlUnk, riid2, &ppv)`, with comasync's rules: `E_NOINTERFACE` for
        /// an `riid` that is not the served asynchronous interface, `E_INVALIDARG` for an outer
        /// with an `riid2` other than `IID_IUnknown` (and for a null IID pointer).
        fn CreateCall(
            &self,
            riid: *const GUID,
            pctrlunk: Ref<IUnknown>,
            riid2: *const GUID,
        ) -> Result<IUnknown> {
            if riid.is_null() || riid2.is_null() {
                return Err(hr(E_INVALIDARG).into());
            }
            // SAFETY: both pointers are non-null, and `CreateCall`'s contract (`REFIID`, an `[in]`
            // const reference) is that they point to readable GUIDs for the duration of the call.
            let (riid, riid2) = unsafe { (*riid, *riid2) };
            if riid != self.async_iid {
                return Err(hr(E_NOINTERFACE).into());
            }
            let async_iid = <dyn AsyncIWindowsMethod as comasync::unknown::Interface>::IID;
            let call = match pctrlunk.as_ref() {
                None => {
                    let mut slot: Option<ComPtr<dyn AsyncIWindowsMethod>> = None;
                    ok(self
                        .factory
                        .create_call(&async_iid, None, &async_iid, Some(&mut slot)))?;
                    slot.ok_or_else(|| windows_core::Error::from(hr(E_UNEXPECTED)))?
                }
                Some(outer) => {
                    if riid2 != IUnknown::IID {
                        return Err(hr(E_INVALIDARG).into());
                    }
                    let outer = outer.downgrade()?;
                    CompletionCallback::<dyn AsyncIWindowsMethod>::create(
                        &*self.factory,
                        move |_| {
                            if let Some(sync) =
                                outer.upgrade().and_then(|o| o.cast::<ISynchronize>().ok())
                            {
                                // SAFETY: an ordinary COM call on a live interface pointer (`sync` holds
                                // a reference), made as COM makes it: on the completing thread.
                                let _ = unsafe { sync.Signal() };
                            }
                        },
                    )?
                }
            };
            let object = (self.new_call)(AsyncCall::new(call, self.server.clone())?);
            if pctrlunk.is_some() || riid2 == IUnknown::IID {
                return object.cast();
            }
            let mut raw = std::ptr::null_mut();
            // SAFETY: `object` is a live interface pointer and `raw` a valid place for the
            // interface pointer `QueryInterface` writes (null on failure).
            unsafe { object.query(&riid2, &mut raw) }.ok()?;
            // SAFETY: `QueryInterface` succeeded, so `raw` is a non-null interface pointer
            // carrying one reference, which the returned value now owns. It is `riid2`'s pointer,
            // typed as `IUnknown` because `CreateCall`'s out-parameter is `void**` (every COM
            // interface pointer is an `IUnknown` pointer).
            Ok(unsafe { IUnknown::from_raw(raw) })
        }
    }
}

/// Implements `ISynchronize`, `ISynchronizeHandle` and `ICancelMethodCalls` for a windows-rs
/// call object (`<Name>_Impl`) by forwarding to its [`AsyncCall`] field.
///
/// ```text
/// #[windows_core::implement(AsyncICalculator, ISynchronize, ISynchronizeHandle, ICancelMethodCalls)]
/// struct CalculatorCall { call: comasync_windows::AsyncCall }
/// comasync_windows::call_object_faces!(CalculatorCall_Impl, call);
/// ```
#[macro_export]
macro_rules! call_object_faces {
    ($impl_ty:ty, $field:ident) => {
        $crate::synchronize_faces!($impl_ty, $field);
        impl $crate::bindings::Windows::Win32::System::Com::ICancelMethodCalls_Impl for $impl_ty {
            fn Cancel(&self, ulseconds: u32) -> ::windows_core::Result<()> {
                self.$field.cancel(ulseconds)
            }
            fn TestCancel(&self) -> ::windows_core::Result<()> {
                self.$field.test_cancel()
            }
        }
    };
}

/// Implements `ISynchronize` and `ISynchronizeHandle` for a windows-rs object (`<Name>_Impl`)
/// by forwarding to its field `$field`, which has `wait`, `signal`, `reset` and `get_handle`
/// (an [`AsyncCall`], or the bridge's own events).
#[macro_export]
macro_rules! synchronize_faces {
    ($impl_ty:ty, $field:ident) => {
        impl $crate::bindings::Windows::Win32::System::Com::ISynchronize_Impl for $impl_ty {
            fn Wait(&self, dwflags: u32, dwmilliseconds: u32) -> ::windows_core::Result<()> {
                self.$field.wait(dwflags, dwmilliseconds)
            }
            fn Signal(&self) -> ::windows_core::Result<()> {
                self.$field.signal()
            }
            fn Reset(&self) -> ::windows_core::Result<()> {
                self.$field.reset()
            }
        }
        impl $crate::bindings::Windows::Win32::System::Com::ISynchronizeHandle_Impl for $impl_ty {
            fn GetHandle(
                &self,
            ) -> ::windows_core::Result<$crate::bindings::Windows::Win32::Foundation::HANDLE> {
                self.$field.get_handle()
            }
        }
    };
}
