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
//! `TestCancel`. A call object's call to an object in the MTA waits in the call object's
//! channel for an MTA worker, which runs the channel itself (no box per call, and no
//! reference-count change on the channel: see [`crate::stub`]).
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
use crate::call::pool::OwnedTask;
use crate::call::{
    AsyncInterface, CallHandler, CallObject, CallServer, FinishMode, ICallFactory,
    ICancelMethodCalls, ServedBy, ServerCall,
};
use crate::guid::{IID_ICallFactory, IID};
use crate::hresult::{
    CO_E_NOTINITIALIZED, E_NOINTERFACE, HRESULT, RPC_E_DISCONNECTED, RPC_E_WRONG_THREAD, S_OK,
};
use crate::security::client_security::{self, ChannelSecurity, IClientSecurity};
use crate::security::{Blanket, ProxyBlanket};
use crate::stub::{Parcel, Stub};
use crate::unknown::{query, set_out, ComPtr, IUnknown, Interface, RefCount};

/// The transport of a proxy's calls: the [`CallHandler`] of its call objects.
///
/// Aligned to a cache line, so that its reference counts (each call queued on the MTA's pool
/// holds a reference, dropped by the worker) stay off the line of the fields `Begin_` reads.
#[repr(align(64))]
struct Channel<M: AsyncInterface> {
    stub: Arc<Stub<M>>,
    home: ApartmentId,
    /// The calls of the proxy's synchronous methods (the server sees a call context).
    sync: bool,
    /// The security blanket: the proxy's (shared by its synchronous calls and its users), or
    /// a call object's own.
    blanket: Arc<ProxyBlanket>,
    /// A call object's channel to an object in the MTA: where its call waits for an MTA
    /// worker, which runs the channel itself (`OwnedTask`): no box per call. `None` for the
    /// proxy's own channels (its synchronous calls, which several threads may make at once,
    /// and the template of its call objects' channels) and for an STA.
    parcel: Option<Parcel<M>>,
    me: Weak<Channel<M>>,
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

    /// A channel to `stub`'s object (see the fields); with a parcel if `parcel` and the
    /// object is in the MTA.
    fn new(
        stub: Arc<Stub<M>>,
        home: ApartmentId,
        sync: bool,
        blanket: Arc<ProxyBlanket>,
        parcel: bool,
    ) -> Arc<Channel<M>> {
        let parcel = (parcel && stub.apartment.kind() == AptType::Mta).then(Parcel::new);
        Arc::new_cyclic(|me| Channel {
            stub,
            home,
            sync,
            blanket,
            parcel,
            me: me.clone(),
        })
    }

    /// A channel for a new call object: its own blanket, started from this one's.
    fn for_call_object(&self) -> Arc<CallChannel<M>> {
        Arc::new(CallChannel(Channel::new(
            self.stub.clone(),
            self.home,
            false,
            Arc::new(self.blanket.copy()),
            true,
        )))
    }
}

/// A call object's call to an MTA object, run by an MTA worker (see `Channel::parcel`). The
/// job's reference goes back to the parcel for the next job.
impl<M: AsyncInterface> OwnedTask for Channel<M> {
    fn run_owned(self: Arc<Self>) {
        if let Some(parcel) = &self.parcel {
            // The parcel keeps a clone for the next job (the parcel is borrowed through this
            // reference, which ends with the job): both count changes are the worker's own.
            self.stub.serve_parcel(parcel, self.clone());
        }
    }
}

impl<M: AsyncInterface> CallHandler<M> for Channel<M> {
    fn begin(&self, call: ServerCall<M>, input: M::In) {
        // The call keeps the blanket (and client) it began with.
        let blanket = self.blanket.for_call();
        match &self.parcel {
            Some(parcel) => {
                let me = || self.me.upgrade().map(|me| me as Arc<dyn OwnedTask>);
                self.stub.send_parcel(me, parcel, call, input, blanket)
            }
            None => self.stub.send(call, input, self.sync, blanket),
        }
    }

    fn admit(&self) -> HRESULT {
        self.check()
    }

    fn channel_security(&self) -> Option<&dyn ChannelSecurity> {
        Some(self)
    }
}

/// What a proxy's call object holds as its handler: its channel, whose parcel it closes when
/// the call object goes (the parcel then lets go of the channel, `Parcel::close`).
struct CallChannel<M: AsyncInterface>(Arc<Channel<M>>);

impl<M: AsyncInterface> Drop for CallChannel<M> {
    fn drop(&mut self) {
        if let Some(parcel) = &self.0.parcel {
            parcel.close();
        }
    }
}

impl<M: AsyncInterface> CallHandler<M> for CallChannel<M> {
    fn begin(&self, call: ServerCall<M>, input: M::In) {
        self.0.begin(call, input)
    }

    fn admit(&self) -> HRESULT {
        self.0.admit()
    }

    fn channel_security(&self) -> Option<&dyn ChannelSecurity> {
        self.0.channel_security()
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
