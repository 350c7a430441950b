//! The proxy: what a client in another apartment holds instead of the object. Calls on it
//! travel as messages to the object's apartment, where the [stub](crate::stub) serves them.
//!
//! [`Proxy<M>`] is generic over any declared interface `M` (the `<I>Calls` type of
//! [`#[interface]`](crate::interface)): it implements the synchronous interface `I` (each
//! method is a synchronous call: sent, then waited for) and, when the server object implements
//! `ICallFactory`, `ICallFactory` (spec 1.2). Its call objects are comasync's
//! [`CallObject`] with the proxy as their server, so they follow the
//! client table (spec 2.1): `Begin_` returns once the call is queued for the object's
//! apartment (its `HRESULT` is the transport's), `Finish_` returns the server's result and
//! out-parameters, `ICancelMethodCalls` is there, and a cancel reaches the server's
//! `TestCancel`. A call object's call to an object in the MTA waits in the call object, which
//! is queued on the MTA's pool itself (no box per call: see [`crate::stub`]); the worker
//! serves it with the blanket the client stamped at `Begin_`.
//!
//! # Invariants
//!
//! * A proxy is used only from the apartment it was unmarshaled in: from another one, every
//!   call, `Begin_` and `CreateCall` returns `RPC_E_WRONG_THREAD`; from a thread without an
//!   apartment, `CO_E_NOTINITIALIZED`. A call to an object whose apartment has ended returns
//!   `RPC_E_DISCONNECTED`.
//! * A synchronous call waits like any COM wait: an STA thread dispatches its own incoming
//!   calls meanwhile (so a callback into the caller's apartment cannot deadlock), an MTA
//!   thread blocks. While it waits it is the thread's cancellable synchronous call
//!   (`co_cancel_call`); cancelled, it returns `RPC_E_CALL_CANCELED`.

use std::any::Any;
use std::sync::{Arc, Weak};

use crate::apartment::{ApartmentId, AptType};
use crate::call::cancel::SyncCall;
use crate::call::{
    AsyncInterface, CallHandler, CallObject, CallServer, FinishMode, ICallFactory,
    ICancelMethodCalls, Pool, ServedBy, ServerCall,
};
use crate::guid::{IID_ICallFactory, IID};
use crate::hresult::{
    CO_E_NOTINITIALIZED, E_NOINTERFACE, HRESULT, RPC_E_CALL_CANCELED, RPC_E_DISCONNECTED,
    RPC_E_WRONG_THREAD, S_OK,
};
use crate::security::client_security::{self, ChannelSecurity, IClientSecurity};
use crate::security::{Blanket, ProxyBlanket};
use crate::stub::Stub;
use crate::unknown::{query, set_out, ComPtr, IUnknown, Interface, RefCount};

/// The transport of a proxy's calls: the [`CallHandler`] of its call objects.
struct Channel<M: AsyncInterface> {
    stub: Arc<Stub<M>>,
    home: ApartmentId,
    /// The calls of the proxy's synchronous methods (the server sees a call context).
    sync: bool,
    /// The security blanket: the proxy's (shared by its synchronous calls and its users), or
    /// a call object's own.
    blanket: Arc<ProxyBlanket>,
    /// A call object's channel to an object in the MTA: the call object queues itself on the
    /// MTA's pool ([`CallHandler::pool`]) and the worker calls [`CallHandler::begin`], with
    /// the blanket the client stamped at `Begin_` (`ProxyBlanket::stamp`). `false` for the
    /// proxy's own channels (its synchronous calls, which several threads may make at once,
    /// and the template of its call objects' channels) and for an STA.
    queued: bool,
}

impl<M: AsyncInterface> Channel<M> {
    /// Whether the current thread may use the proxy now: its apartment, then the object's
    /// access check (`E_ACCESSDENIED`) with the blanket a call begun now would carry.
    fn check(&self) -> HRESULT {
        let hr = match crate::apartment::current_apartment() {
            None => CO_E_NOTINITIALIZED,
            Some(id) if id != self.home => RPC_E_WRONG_THREAD,
            Some(_) if !self.stub.apartment.is_alive() => RPC_E_DISCONNECTED,
            Some(_) => S_OK,
        };
        match &self.stub.access {
            Some(policy) if hr == S_OK => policy.check(&self.blanket.for_call()),
            _ => hr,
        }
    }

    /// A channel to `stub`'s object (see the fields); queued on the MTA's pool if `queued`
    /// and the object is in the MTA.
    fn new(
        stub: Arc<Stub<M>>,
        home: ApartmentId,
        sync: bool,
        blanket: Arc<ProxyBlanket>,
        queued: bool,
    ) -> Arc<Channel<M>> {
        let queued = queued && stub.apartment.kind() == AptType::Mta;
        Arc::new(Channel {
            stub,
            home,
            sync,
            blanket,
            queued,
        })
    }

    /// A channel for a new call object: its own blanket, started from this one's.
    fn for_call_object(&self) -> Arc<Channel<M>> {
        Channel::new(
            self.stub.clone(),
            self.home,
            false,
            Arc::new(self.blanket.copy()),
            true,
        )
    }
}

impl<M: AsyncInterface> CallHandler<M> for Channel<M> {
    fn begin(&self, call: ServerCall<M>, input: M::In) {
        if self.queued {
            // On an MTA worker: the call carries the blanket its client stamped at Begin_.
            // None: a later Begin_ has stamped another since, so this call is no longer
            // current and its completion is dropped.
            match self.blanket.stamped_for(call.generation()) {
                Some(blanket) => self.stub.serve_queued(call, input, blanket),
                None => call.fail(RPC_E_CALL_CANCELED),
            }
            return;
        }
        // The call keeps the blanket (and client) it began with.
        let blanket = self.blanket.for_call();
        self.stub.send(call, input, self.sync, blanket)
    }

    fn pool(&self) -> Option<&Arc<Pool>> {
        if self.queued {
            self.stub.apartment.pool()
        } else {
            None
        }
    }

    fn admit(&self) -> HRESULT {
        self.check()
    }

    fn channel_security(&self) -> Option<&dyn ChannelSecurity> {
        Some(self)
    }
}

impl<M: AsyncInterface> ChannelSecurity for Channel<M> {
    fn blanket(&self) -> &ProxyBlanket {
        &self.blanket
    }

    fn copy_proxy(&self) -> crate::hresult::Result<ComPtr<dyn IUnknown>> {
        let copy = Proxy::create_with(self.stub.clone(), self.home, Arc::new(self.blanket.copy()));
        query::<dyn IUnknown>(&*copy)
    }
}

/// A proxy for an object of another apartment, speaking `M`'s interfaces (see the
/// [module docs](self)). Made by
/// [`co_get_interface_and_release_stream`](crate::marshal::co_get_interface_and_release_stream).
///
/// ```
/// use comasync::apartment::*;
/// use comasync::marshal::*;
/// use comasync::hresult::{RPC_E_WRONG_THREAD, S_OK};
/// use comasync::simple_stream::{ISimpleStream, ISimpleStreamCalls, SimpleStream};
/// use comasync::unknown::Interface;
///
/// let iid = <dyn ISimpleStream as Interface>::IID;
/// co_initialize_ex(None, COINIT_APARTMENTTHREADED); // this thread: an STA
/// let object = SimpleStream::create_sync_only(b"hello".to_vec()); // lives in this STA
/// let stream = co_marshal_inter_thread_interface_in_stream::<ISimpleStreamCalls>(&iid, &*object)?;
/// let proxy = std::thread::spawn(move || {
///     co_initialize_ex(None, COINIT_MULTITHREADED);
///     co_get_interface_and_release_stream::<ISimpleStreamCalls>(stream, &iid).unwrap()
///     // (the thread leaves without co_uninitialize: the MTA lives on)
/// })
/// .join()
/// .unwrap();
/// // The proxy belongs to the MTA; this thread is in an STA.
/// assert_eq!(proxy.read(2).0, RPC_E_WRONG_THREAD);
/// co_uninitialize();
/// # Ok::<(), comasync::Error>(())
/// ```
pub struct Proxy<M: AsyncInterface> {
    refs: RefCount,
    me: Weak<Proxy<M>>,
    calls: Arc<Channel<M>>,
    sync_calls: Arc<Channel<M>>,
}

impl<M: AsyncInterface> Proxy<M> {
    pub(crate) fn create(stub: Arc<Stub<M>>, home: ApartmentId) -> ComPtr<M::Sync> {
        Self::create_with(stub, home, Arc::new(ProxyBlanket::default()))
    }

    /// A proxy whose calls carry `blanket` (shared by its synchronous calls and its users).
    fn create_with(
        stub: Arc<Stub<M>>,
        home: ApartmentId,
        blanket: Arc<ProxyBlanket>,
    ) -> ComPtr<M::Sync> {
        let proxy = Arc::new_cyclic(|me| Proxy {
            refs: RefCount::new(),
            me: me.clone(),
            calls: Channel::new(stub.clone(), home, false, blanket.clone(), false),
            sync_calls: Channel::new(stub, home, true, blanket, false),
        });
        ComPtr::new(M::upcast_proxy(proxy))
    }

    /// The apartment the proxy belongs to (where it was unmarshaled).
    pub fn apartment(&self) -> ApartmentId {
        self.calls.home
    }

    /// The apartment of the object behind the proxy.
    pub fn object_apartment(&self) -> ApartmentId {
        self.calls.stub.apartment.id()
    }

    /// A synchronous call: sends `input` to the object's apartment and waits for the reply
    /// (an STA dispatches its incoming calls meanwhile). The generated methods of `M`'s
    /// synchronous interface call this. `None` out-parameters with a failure that is not the
    /// server's (`RPC_E_WRONG_THREAD`, `RPC_E_DISCONNECTED`, `RPC_E_CALL_CANCELED`, ...).
    pub fn call(&self, input: M::In) -> (HRESULT, Option<M::Out>) {
        let method = M::method_of(&input);
        let call = CallObject::<M>::new(self.sync_calls.clone(), None, FinishMode::Blocking);
        // A COM reference for the call's duration: the cancel object handed out by
        // CoGetCancelObject is this call object.
        let cancel = ComPtr::new(call.clone() as Arc<dyn ICancelMethodCalls>);
        // Findable by CoCancelCall before the server can see the call.
        let _pending = SyncCall::enter(cancel);
        let hr = call.begin(input);
        if hr.failed() {
            return (hr, None);
        }
        call.finish(method)
    }

    fn more_interfaces(&self, me: &Arc<Proxy<M>>, iid: &IID, ppv: &mut dyn Any) -> HRESULT {
        if *iid == <M::Sync as Interface>::IID {
            set_out::<M::Sync>(ppv, self.refs.ptr(M::upcast_proxy(me.clone())))
        } else if *iid == <dyn IClientSecurity as Interface>::IID {
            set_out::<dyn IClientSecurity>(
                ppv,
                self.refs.ptr(me.clone() as Arc<dyn IClientSecurity>),
            )
        } else if *iid == IID_ICallFactory && self.calls.stub.factory.is_some() {
            set_out::<dyn ICallFactory>(ppv, self.refs.ptr(me.clone() as Arc<dyn ICallFactory>))
        } else {
            E_NOINTERFACE
        }
    }
}

/// `CreateCall` on a proxy: a call object whose calls go to the object's apartment.
/// `RPC_E_WRONG_THREAD` from another apartment; otherwise `CreateCall`'s argument rules.
impl<M: AsyncInterface> CallServer for Proxy<M> {
    type Calls = M;
    fn call_handler(&self) -> ServedBy<M> {
        let hr = self.calls.check();
        if hr.failed() {
            return Err(hr);
        }
        Ok((self.calls.for_call_object(), FinishMode::Blocking))
    }
}

/// `IClientSecurity` on a proxy: its blanket is shared by every user of the proxy.
impl<M: AsyncInterface> IClientSecurity for Proxy<M> {
    fn query_blanket(&self, proxy: &dyn IUnknown) -> crate::hresult::Result<Blanket> {
        client_security::query_blanket(self, &*self.calls, proxy)
    }

    fn set_blanket(&self, proxy: &dyn IUnknown, blanket: &Blanket) -> HRESULT {
        client_security::set_blanket(self, &*self.calls, proxy, blanket)
    }

    fn copy_proxy(&self, proxy: &dyn IUnknown) -> crate::hresult::Result<ComPtr<dyn IUnknown>> {
        client_security::copy_proxy(self, &*self.calls, proxy)
    }
}

crate::com_object!([M: AsyncInterface] Proxy<M> {
    interfaces: [],
    more: Proxy::more_interfaces,
});
