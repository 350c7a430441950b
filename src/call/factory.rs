//! `ICallFactory` and `CreateCall`'s argument rules, and [`StdCallFactory`], the call factory
//! standard marshaling gives an object that has no call object of its own.
//!
//! `CreateCall(riid, pCtrlUnk, riid2, ppv)` checks, in this order (spec D11, as Microsoft's
//! FullServ sample does):
//!
//! 1. a missing `ppv` → `E_POINTER`;
//! 2. `riid` not an asynchronous interface this factory serves → `E_NOINTERFACE`;
//! 3. aggregating (`pCtrlUnk` given) with `riid2 ≠ IID_IUnknown` → `E_INVALIDARG`;
//! 4. not aggregating, `riid2` an interface the call object does not expose → `E_NOINTERFACE`.
//!
//! Aggregated, `ppv` receives the call object's non-delegating `IUnknown` (spec 3.6).

use std::any::Any;
use std::sync::{Arc, Weak};

use super::handler::{CallHandler, SyncMethodHandler};
use super::interface::AsyncInterface;
use super::object::CallObject;
use super::pool::Pool;
use super::state::FinishMode;
use crate::guid::{IID_ICallFactory, IID_IUnknown, IID};
use crate::hresult::{
    Error, Result, E_INVALIDARG, E_NOINTERFACE, E_POINTER, E_UNEXPECTED, HRESULT,
};
use crate::unknown::{
    non_delegating, set_out, ComPtr, INonDelegatingUnknown, IUnknown, Interface, RefCount,
};

/// `ICallFactory`: creates call objects. Present on objects that support asynchronous calls;
/// `E_NOINTERFACE` to the `QueryInterface` for it means no async support.
///
/// ```
/// use comasync::call::ICallFactory;
/// use comasync::guid::IID_IUnknown;
/// use comasync::hresult::{E_NOINTERFACE, E_POINTER, S_OK};
/// use comasync::simple_stream::{AsyncISimpleStream, ISimpleStream, SimpleStream};
/// use comasync::unknown::{ComPtr, Interface};
///
/// let sync_only = SimpleStream::create_sync_only(Vec::new());
/// assert_eq!(sync_only.query::<dyn ICallFactory>().unwrap_err().code(), E_NOINTERFACE);
///
/// let factory = SimpleStream::create(b"abc".to_vec()).query::<dyn ICallFactory>()?;
/// let riid = <dyn AsyncISimpleStream as Interface>::IID;
/// let mut call: Option<ComPtr<dyn AsyncISimpleStream>> = None;
/// assert_eq!(factory.create_call(&riid, None, &riid, None), E_POINTER); // ppv = NULL
/// let sync_iid = <dyn ISimpleStream as Interface>::IID; // not an asynchronous interface
/// assert_eq!(factory.create_call(&sync_iid, None, &IID_IUnknown, Some(&mut call)), E_NOINTERFACE);
/// assert_eq!(factory.create_call(&riid, None, &riid, Some(&mut call)), S_OK);
/// assert_eq!(call.unwrap().begin_read(3), S_OK);
/// # Ok::<(), comasync::Error>(())
/// ```
pub trait ICallFactory: IUnknown {
    /// `CreateCall(riid, pCtrlUnk, riid2, ppv)`: a new call object for the asynchronous
    /// interface `riid`, aggregated under `outer` if given, written to `ppv` (an
    /// `&mut Option<ComPtr<dyn I>>` for the interface `riid2`; `None` models C's `NULL`).
    fn create_call(
        &self,
        riid: &IID,
        outer: Option<&ComPtr<dyn IUnknown>>,
        riid2: &IID,
        ppv: Option<&mut dyn Any>,
    ) -> HRESULT;
}

impl Interface for dyn ICallFactory {
    const IID: IID = IID_ICallFactory;
    const NAME: &'static str = "ICallFactory";
}

/// `CreateCall` for the interface `M`: the argument checks of the module documentation, then a
/// new [`CallObject`] served by `handler`. What an `ICallFactory` implementation calls.
///
/// ```
/// use comasync::call::{create_call, FinishMode, ManualHandler};
/// use comasync::guid::IID_ISynchronize;
/// use comasync::hresult::{E_INVALIDARG, S_OK};
/// use comasync::simple_stream::{AsyncISimpleStream, ISimpleStreamCalls};
/// use comasync::unknown::{ComPtr, IUnknown, Interface, PlainObject};
///
/// let handler = ManualHandler::<ISimpleStreamCalls>::new();
/// let riid = <dyn AsyncISimpleStream as Interface>::IID;
/// let mut call: Option<ComPtr<dyn AsyncISimpleStream>> = None;
/// let hr = create_call::<ISimpleStreamCalls>(&riid, None, &riid, Some(&mut call), handler.clone(), FinishMode::Blocking);
/// assert_eq!(hr, S_OK);
/// // Aggregated, only IID_IUnknown may be asked for.
/// let outer = PlainObject::create();
/// let mut inner: Option<ComPtr<dyn IUnknown>> = None;
/// let hr = create_call::<ISimpleStreamCalls>(&riid, Some(&outer), &IID_ISynchronize, Some(&mut inner), handler, FinishMode::Blocking);
/// assert_eq!(hr, E_INVALIDARG);
/// ```
pub fn create_call<M: AsyncInterface>(
    riid: &IID,
    outer: Option<&ComPtr<dyn IUnknown>>,
    riid2: &IID,
    ppv: Option<&mut dyn Any>,
    handler: Arc<dyn CallHandler<M>>,
    mode: FinishMode,
) -> HRESULT {
    let Some(ppv) = ppv else { return E_POINTER };
    if *riid != <M::Async as Interface>::IID {
        return E_NOINTERFACE;
    }
    if outer.is_some() && *riid2 != IID_IUnknown {
        return E_INVALIDARG;
    }
    let call = CallObject::<M>::new(handler, outer, mode);
    if outer.is_some() {
        set_out::<dyn IUnknown>(ppv, non_delegating(call))
    } else {
        call.nd_query_interface(riid2, ppv)
    }
}

/// `CreateCall` for a server object with its own server-side call object for the asynchronous
/// interface `I`, made only aggregated, as the stub makes it
/// (`CreateCall(asyncIID, hostUnk, IID_IUnknown, &p)`, spec 2.2): a missing `ppv` →
/// `E_POINTER`; no `outer`, `riid` not `I`'s IID, or `riid2` not `IID_IUnknown` →
/// `E_INVALIDARG`; otherwise `ppv` receives the non-delegating unknown of the call object
/// `make` builds under `outer` (a `#[implement]` type's `into_aggregated`).
///
/// ```
/// use std::any::Any;
/// use comasync::call::{create_aggregated_call, ICallFactory};
/// use comasync::guid::{IID, IID_IUnknown};
/// use comasync::hresult::{E_INVALIDARG, HRESULT, S_OK};
/// use comasync::unknown::{ComPtr, IUnknown, Interface, PlainObject};
///
/// #[comasync::interface(
///     iid = "{7D2E9C60-5A43-4D9F-9C83-2E4F0B6F3C01}",
///     async_iid = "{7D2E9C61-5A43-4D9F-9C83-2E4F0B6F3C01}",
///     scripts = false
/// )]
/// pub trait IPing {
///     fn ping(&self) -> HRESULT;
/// }
///
/// #[comasync::implement(ICallFactory)]
/// struct Server;
///
/// impl ICallFactory for Server_Impl {
///     fn create_call(&self, riid: &IID, outer: Option<&ComPtr<dyn IUnknown>>, riid2: &IID, ppv: Option<&mut dyn Any>) -> HRESULT {
///         create_aggregated_call::<dyn AsyncIPing>(riid, outer, riid2, ppv, |outer| PingCall.into_aggregated(outer))
///     }
/// }
///
/// /// The server-side call object (its `Begin_` would signal the stub's `ISynchronize`).
/// #[comasync::implement(AsyncIPing)]
/// struct PingCall;
///
/// impl AsyncIPing for PingCall_Impl {
///     fn begin_ping(&self) -> HRESULT { S_OK }
///     fn finish_ping(&self) -> HRESULT { S_OK }
/// }
///
/// let factory = Server.into_object().query::<dyn ICallFactory>()?;
/// let riid = <dyn AsyncIPing as Interface>::IID;
/// let (outer, mut inner) = (PlainObject::create(), None::<ComPtr<dyn IUnknown>>);
/// assert_eq!(factory.create_call(&riid, None, &IID_IUnknown, Some(&mut inner)), E_INVALIDARG); // not aggregated
/// assert_eq!(factory.create_call(&riid, Some(&outer), &riid, Some(&mut inner)), E_INVALIDARG); // not IID_IUnknown
/// assert_eq!(factory.create_call(&riid, Some(&outer), &IID_IUnknown, Some(&mut inner)), S_OK);
/// assert!(inner.is_some());
/// # Ok::<(), comasync::Error>(())
/// ```
pub fn create_aggregated_call<I: ?Sized + Interface>(
    riid: &IID,
    outer: Option<&ComPtr<dyn IUnknown>>,
    riid2: &IID,
    ppv: Option<&mut dyn Any>,
    make: impl FnOnce(Weak<dyn IUnknown>) -> Arc<dyn INonDelegatingUnknown>,
) -> HRESULT {
    let Some(ppv) = ppv else { return E_POINTER };
    let (Some(outer), true) = (outer, *riid == I::IID) else {
        return E_INVALIDARG;
    };
    if *riid2 != IID_IUnknown {
        return E_INVALIDARG;
    }
    set_out::<dyn IUnknown>(ppv, non_delegating(make(Arc::downgrade(outer.as_arc()))))
}

/// A server object whose `ICallFactory` is [`create_call`] with a handler of its choosing: it
/// says which handler and `Finish_` mode a new call object gets (or the `HRESULT`
/// `CreateCall` returns instead), and gets `ICallFactory` — the argument checks and the
/// call object — from this crate.
///
/// ```
/// use std::sync::Arc;
/// use comasync::call::{create_call_for, CallServer, FinishMode, ICallFactory, ManualHandler, ServedBy};
/// use comasync::hresult::S_OK;
/// use comasync::simple_stream::{AsyncISimpleStream, ISimpleStreamCalls, ISimpleStreamOut};
///
/// #[comasync::implement(ICallFactory)]
/// struct HandDriven {
///     server: Arc<ManualHandler<ISimpleStreamCalls>>,
/// }
///
/// impl CallServer for HandDriven_Impl {
///     type Calls = ISimpleStreamCalls;
///     fn call_handler(&self) -> ServedBy<ISimpleStreamCalls> {
///         Ok((self.server.clone(), FinishMode::Blocking))
///     }
/// }
///
/// let server = ManualHandler::<ISimpleStreamCalls>::new();
/// let object = HandDriven { server: server.clone() }.into_object();
/// let factory = object.query::<dyn ICallFactory>()?;
/// let call = create_call_for::<dyn AsyncISimpleStream>(&*factory)?;
/// assert_eq!(call.begin_read(4), S_OK);
/// let (pending, _input) = server.take().expect("the call waits at the server");
/// pending.complete(S_OK, ISimpleStreamOut::Read { data: b"data".to_vec() });
/// assert_eq!(call.finish_read(), (S_OK, b"data".to_vec()));
/// # Ok::<(), comasync::Error>(())
/// ```
pub trait CallServer: IUnknown {
    /// The asynchronous interface its call objects serve.
    type Calls: AsyncInterface;

    /// The handler and `Finish_` mode of the next call object; `Err(hr)`: `CreateCall`
    /// returns `hr` (before checking its arguments).
    fn call_handler(&self) -> ServedBy<Self::Calls>;
}

/// What [`CallServer::call_handler`] gives: the handler and `Finish_` mode a new call object
/// of `M` is served by, or the `HRESULT` `CreateCall` returns instead.
pub type ServedBy<M> = std::result::Result<(Arc<dyn CallHandler<M>>, FinishMode), HRESULT>;

impl<T: CallServer> ICallFactory for T {
    fn create_call(
        &self,
        riid: &IID,
        outer: Option<&ComPtr<dyn IUnknown>>,
        riid2: &IID,
        ppv: Option<&mut dyn Any>,
    ) -> HRESULT {
        match self.call_handler() {
            Ok((handler, mode)) => create_call(riid, outer, riid2, ppv, handler, mode),
            Err(hr) => hr,
        }
    }
}

/// `CreateCall` for the asynchronous interface `I`, as `I`: the interface is named once
/// (`riid` and `riid2` are both `I`'s IID), without aggregation.
///
/// ```
/// use comasync::call::{create_call_for, ICallFactory};
/// use comasync::hresult::S_OK;
/// use comasync::simple_stream::{AsyncISimpleStream, SimpleStream};
///
/// let factory = SimpleStream::create(b"hello".to_vec()).query::<dyn ICallFactory>()?;
/// let call = create_call_for::<dyn AsyncISimpleStream>(&*factory)?;
/// assert_eq!(call.begin_read(5), S_OK);
/// assert_eq!(call.finish_read(), (S_OK, b"hello".to_vec()));
/// # Ok::<(), comasync::Error>(())
/// ```
pub fn create_call_for<I: ?Sized + Interface + IUnknown>(
    factory: &(impl ICallFactory + ?Sized),
) -> Result<ComPtr<I>> {
    create_call_as::<I>(factory, &I::IID)
}

/// The typed form of `CreateCall` without aggregation: a call object for the asynchronous
/// interface `riid`, as interface `I`.
///
/// ```
/// use comasync::call::{create_call_as, ICallFactory};
/// use comasync::simple_stream::{AsyncISimpleStream, SimpleStream};
/// use comasync::unknown::Interface;
///
/// let stream = SimpleStream::create(b"hello".to_vec());
/// let factory = stream.query::<dyn ICallFactory>().unwrap();
/// let call = create_call_as::<dyn AsyncISimpleStream>(&*factory, &<dyn AsyncISimpleStream as Interface>::IID).unwrap();
/// assert_eq!(call.begin_read(5), comasync::hresult::S_OK);
/// assert_eq!(call.finish_read(), (comasync::hresult::S_OK, b"hello".to_vec()));
/// ```
pub fn create_call_as<I: ?Sized + Interface + IUnknown>(
    factory: &(impl ICallFactory + ?Sized),
    riid: &IID,
) -> Result<ComPtr<I>> {
    let mut slot: Option<ComPtr<I>> = None;
    factory
        .create_call(riid, None, &I::IID, Some(&mut slot))
        .ok()?;
    slot.ok_or(Error(E_UNEXPECTED))
}

/// The call factory for an object that implements only the synchronous interface: its call
/// objects run the synchronous method on a worker pool and hand back its out-parameters, as a
/// standard-marshaled proxy does for a server without a call object (spec 1.2, 3.5).
///
/// It is a separate COM object (as the proxy is), wrapping the server object. With
/// [`with_handler`](Self::with_handler) its call objects are served by any [`CallHandler`]
/// instead — a [`ManualHandler`](super::ManualHandler) makes a hand-driven server for any
/// declared interface.
///
/// ```
/// use comasync::call::{create_call_as, FinishMode, Pool, StdCallFactory};
/// use comasync::hresult::{S_FALSE, S_OK};
/// use comasync::simple_stream::{AsyncISimpleStream, ISimpleStreamCalls, SimpleStream};
/// use comasync::unknown::Interface;
///
/// // A server without a call object of its own (no ICallFactory)...
/// let server = SimpleStream::create_sync_only(b"abc".to_vec());
/// // ...gets the standard one, which runs its synchronous Read on the pool.
/// let factory = StdCallFactory::<ISimpleStreamCalls>::create(server, Pool::global(), FinishMode::Blocking);
/// let call = create_call_as::<dyn AsyncISimpleStream>(&*factory, &<dyn AsyncISimpleStream as Interface>::IID)?;
/// assert_eq!(call.begin_read(2), S_OK);
/// assert_eq!(call.finish_read(), (S_OK, b"ab".to_vec()));
/// assert_eq!(call.begin_read(2), S_OK);
/// assert_eq!(call.finish_read(), (S_FALSE, b"c".to_vec())); // Read's own S_FALSE: the end
/// # Ok::<(), comasync::Error>(())
/// ```
pub struct StdCallFactory<M: AsyncInterface> {
    refs: RefCount,
    me: Weak<StdCallFactory<M>>,
    handler: Arc<dyn CallHandler<M>>,
    mode: FinishMode,
}

impl<M: AsyncInterface> StdCallFactory<M> {
    /// A factory (one reference) whose call objects run `object`'s synchronous methods on
    /// `pool`.
    pub fn create(
        object: ComPtr<M::Sync>,
        pool: Arc<Pool>,
        mode: FinishMode,
    ) -> ComPtr<dyn ICallFactory> {
        let f = Self::new(object, pool, mode, RefCount::new());
        ComPtr::new(f as Arc<dyn ICallFactory>)
    }

    /// The same, with an explicit reference-count record (for aggregation into a server
    /// object).
    pub fn new(
        object: ComPtr<M::Sync>,
        pool: Arc<Pool>,
        mode: FinishMode,
        refs: RefCount,
    ) -> Arc<StdCallFactory<M>> {
        Arc::new_cyclic(|me| StdCallFactory {
            refs,
            me: me.clone(),
            handler: SyncMethodHandler::new(object, pool),
            mode,
        })
    }

    /// A factory (one reference) whose call objects are served by `handler`: for example a
    /// [`ManualHandler`](super::ManualHandler), whose calls wait until the test completes,
    /// fails or keeps each one.
    ///
    /// ```
    /// use comasync::call::{create_call_as, FinishMode, ManualHandler, StdCallFactory};
    /// use comasync::hresult::{E_ACCESSDENIED, S_OK};
    /// use comasync::simple_stream::{AsyncISimpleStream, ISimpleStreamCalls};
    /// use comasync::unknown::Interface;
    ///
    /// let server = ManualHandler::<ISimpleStreamCalls>::new();
    /// let factory = StdCallFactory::with_handler(server.clone(), FinishMode::Blocking);
    /// let iid = <dyn AsyncISimpleStream as Interface>::IID;
    /// let call = create_call_as::<dyn AsyncISimpleStream>(&*factory, &iid).unwrap();
    /// assert_eq!(call.begin_read(4), S_OK);
    /// let (pending, _input) = server.take().expect("the call waits at the server");
    /// pending.fail(E_ACCESSDENIED); // the server decides
    /// assert_eq!(call.finish_read(), (E_ACCESSDENIED, vec![]));
    /// ```
    pub fn with_handler(
        handler: Arc<dyn CallHandler<M>>,
        mode: FinishMode,
    ) -> ComPtr<dyn ICallFactory> {
        let f = Arc::new_cyclic(|me| StdCallFactory {
            refs: RefCount::new(),
            me: me.clone(),
            handler,
            mode,
        });
        ComPtr::new(f as Arc<dyn ICallFactory>)
    }
}

impl<M: AsyncInterface> CallServer for StdCallFactory<M> {
    type Calls = M;
    fn call_handler(&self) -> std::result::Result<(Arc<dyn CallHandler<M>>, FinishMode), HRESULT> {
        Ok((self.handler.clone(), self.mode))
    }
}

crate::com_object!([M: AsyncInterface] StdCallFactory<M> { interfaces: [dyn ICallFactory] });
