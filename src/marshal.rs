//! Marshaling an interface pointer to another apartment: the
//! `CoMarshalInterThreadInterfaceInStream` / `CoGetInterfaceAndReleaseStream` pair.
//!
//! Marshaling makes a [stub](crate::stub) for the object in the current apartment (the
//! object's) and packs it into a [`MarshalStream`]; the stream is sent to another thread, which
//! unmarshals it once: in another apartment it gets a [`Proxy`], in the
//! object's own apartment the object itself (same apartment: direct calls, no proxy).
//!
//! Both ends need an apartment (`CO_E_NOTINITIALIZED`), and both name the interface twice, as
//! a type `M` (the `<I>Calls` of [`#[interface]`](crate::interface), which tells comasync how to
//! carry its calls) and as the `riid` COM passes (`E_NOINTERFACE` unless it is `M`'s
//! synchronous interface, or the object does not implement it).
//!
//! ```
//! use comasync::apartment::*;
//! use comasync::marshal::*;
//! use comasync::hresult::S_OK;
//! use comasync::simple_stream::{ISimpleStream, ISimpleStreamCalls, SimpleStream};
//! use comasync::unknown::Interface;
//!
//! let iid = <dyn ISimpleStream as Interface>::IID;
//! co_initialize_ex(None, COINIT_MULTITHREADED);
//! let object = SimpleStream::create(b"hello".to_vec()); // an object in the MTA
//! let stream = co_marshal_inter_thread_interface_in_stream::<ISimpleStreamCalls>(&iid, &*object)?;
//! std::thread::spawn(move || {
//!     co_initialize_ex(None, COINIT_APARTMENTTHREADED); // a client in an STA
//!     let proxy = co_get_interface_and_release_stream::<ISimpleStreamCalls>(stream, &iid).unwrap();
//!     assert_eq!(proxy.read(5), (S_OK, b"hello".to_vec())); // runs on the MTA's pool
//!     drop(proxy);
//!     co_uninitialize();
//! })
//! .join()
//! .unwrap();
//! co_uninitialize();
//! # Ok::<(), comasync::Error>(())
//! ```

use std::any::Any;
use std::fmt;
use std::sync::Arc;

use crate::apartment::{current, ApartmentId};
use crate::call::{AsyncInterface, ICallFactory};
use crate::guid::IID;
use crate::hresult::{Error, Result, CO_E_NOTINITIALIZED, E_NOINTERFACE, RPC_E_DISCONNECTED};
use crate::proxy::Proxy;
use crate::stub::Stub;
use crate::unknown::{query, ComPtr, IUnknown, Interface};

/// The `IStream` that `CoMarshalInterThreadInterfaceInStream` fills: one marshaled interface
/// pointer, for one unmarshal. `Send`: give it to the thread that will use the object. Dropped
/// without being unmarshaled, it releases the object (`CoReleaseMarshalData`).
pub struct MarshalStream {
    iid: IID,
    from: ApartmentId,
    stub: Box<dyn Any + Send + Sync>,
}

impl MarshalStream {
    /// The interface marshaled.
    pub fn iid(&self) -> &IID {
        &self.iid
    }

    /// The apartment of the object.
    pub fn apartment(&self) -> ApartmentId {
        self.from
    }
}

impl fmt::Debug for MarshalStream {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MarshalStream({:?} from {:?})", self.iid, self.from)
    }
}

/// `CoMarshalInterThreadInterfaceInStream(riid, pUnk, &pStm)`: marshals `object`'s interface
/// `riid` (`M`'s synchronous interface) out of the current apartment. `CO_E_NOTINITIALIZED`
/// without an apartment; `E_NOINTERFACE` for another `riid` or an object without it. The
/// stub remembers whether the object implements `ICallFactory` (its proxies will too).
pub fn co_marshal_inter_thread_interface_in_stream<M: AsyncInterface>(
    riid: &IID,
    object: &(impl IUnknown + ?Sized),
) -> Result<MarshalStream> {
    let apartment = current().ok_or(Error(CO_E_NOTINITIALIZED))?;
    if *riid != <M::Sync as Interface>::IID {
        return Err(Error(E_NOINTERFACE));
    }
    let sync = query::<M::Sync>(object)?;
    let factory = query::<dyn ICallFactory>(object).ok();
    let from = apartment.id();
    let access = crate::security::access::policy_of(object);
    let identity = crate::security::context::base();
    let stub: Arc<Stub<M>> = Stub::new(apartment, sync, factory, access, identity);
    Ok(MarshalStream {
        iid: *riid,
        from,
        stub: Box::new(stub),
    })
}

/// `CoGetInterfaceAndReleaseStream(pStm, iid, &ppv)`: unmarshals `stream` in the current
/// apartment: a [`Proxy`] if the object lives in another apartment, the object itself if it
/// lives in this one. `CO_E_NOTINITIALIZED` without an apartment; `E_NOINTERFACE` if `riid`
/// or `M` is not what was marshaled; `RPC_E_DISCONNECTED` if the object's apartment has
/// ended. The stream is consumed either way.
pub fn co_get_interface_and_release_stream<M: AsyncInterface>(
    stream: MarshalStream,
    riid: &IID,
) -> Result<ComPtr<M::Sync>> {
    let here = current().ok_or(Error(CO_E_NOTINITIALIZED))?;
    if *riid != stream.iid || *riid != <M::Sync as Interface>::IID {
        return Err(Error(E_NOINTERFACE));
    }
    let Ok(stub) = (stream.stub as Box<dyn Any>).downcast::<Arc<Stub<M>>>() else {
        return Err(Error(E_NOINTERFACE));
    };
    if !stub.apartment.is_alive() {
        return Err(Error(RPC_E_DISCONNECTED));
    }
    if stub.apartment.id() == here.id() {
        return Ok(stub.object.clone());
    }
    Ok(Proxy::create(*stub, here.id()))
}
