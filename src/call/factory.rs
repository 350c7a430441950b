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

impl<M: AsyncInterface> ICallFactory for StdCallFactory<M> {
    fn create_call(
        &self,
        riid: &IID,
        outer: Option<&ComPtr<dyn IUnknown>>,
        riid2: &IID,
        ppv: Option<&mut dyn Any>,
    ) -> HRESULT {
        create_call::<M>(riid, outer, riid2, ppv, self.handler.clone(), self.mode)
    }
}

crate::com_object!([M: AsyncInterface] StdCallFactory<M> { interfaces: [dyn ICallFactory] });
