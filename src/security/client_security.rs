//! The client's side of call security: `IClientSecurity` on proxies and on their call
//! objects, and `CoQueryProxyBlanket` / `CoSetProxyBlanket` / `CoCopyProxy` (spec 1.10, 3.3).
//!
//! # Invariants
//!
//! * `SetBlanket` on a proxy changes the blanket of every user of that proxy (its synchronous
//!   calls and the call objects made afterwards); `CopyProxy` gives a proxy with a private
//!   blanket, started from a copy.
//! * A call object starts from its proxy's blanket when `CreateCall` makes it; changing it
//!   affects only the calls it begins afterwards.
//! * A call carries the blanket it began with to the server: changing a blanket never
//!   changes a call in progress.
//! * `IClientSecurity` is answered only by proxies and their call objects (an in-process
//!   call object has none: `E_NOINTERFACE`, spec row 23).

use crate::guid::{IID_IClientSecurity, IID};
use crate::hresult::{Error, Result, E_INVALIDARG, HRESULT, S_OK};
use crate::unknown::{query, ComPtr, IUnknown, Interface};

use super::blanket::{Blanket, ProxyBlanket};

/// `IClientSecurity`: read or change the security of the calls made through a proxy or a
/// proxy's call object. `proxy` (`pProxy`) must be that proxy or call object itself, else
/// `E_INVALIDARG`.
pub trait IClientSecurity: IUnknown {
    /// `QueryBlanket(pProxy, …)`: the blanket calls begun now would carry.
    fn query_blanket(&self, proxy: &dyn IUnknown) -> Result<Blanket>;
    /// `SetBlanket(pProxy, …)`: `S_OK`, or `E_INVALIDARG` (see
    /// [`Blanket::resolve`]); calls begun afterwards carry the new blanket.
    fn set_blanket(&self, proxy: &dyn IUnknown, blanket: &Blanket) -> HRESULT;
    /// `CopyProxy(pProxy, &ppCopy)`: a new proxy to the same object, with a private copy of
    /// the blanket (a call object's copy is a proxy with the call object's blanket).
    fn copy_proxy(&self, proxy: &dyn IUnknown) -> Result<ComPtr<dyn IUnknown>>;
}

impl Interface for dyn IClientSecurity {
    const IID: IID = IID_IClientSecurity;
    const NAME: &'static str = "IClientSecurity";
}

/// What a transport (a proxy's channel) offers `IClientSecurity`: its blanket, and a new
/// proxy with a copy of it. Implemented by comasync's proxies; a
/// [`CallHandler`](crate::call::CallHandler) that has one makes its call objects answer
/// `IClientSecurity`.
pub trait ChannelSecurity: Send + Sync {
    /// The blanket of this proxy or call object.
    fn blanket(&self) -> &ProxyBlanket;
    /// A new proxy to the same object with a private copy of this blanket.
    fn copy_proxy(&self) -> Result<ComPtr<dyn IUnknown>>;
}

/// Whether `a` and `b` are the same COM object (`IUnknown` identity).
fn same_object(a: &dyn IUnknown, b: &dyn IUnknown) -> bool {
    match (query::<dyn IUnknown>(a), query::<dyn IUnknown>(b)) {
        (Ok(x), Ok(y)) => ComPtr::is_same_object(&x, &y),
        _ => false,
    }
}

/// `IClientSecurity::QueryBlanket` of the object `me`, whose channel is `channel`.
pub(crate) fn query_blanket(
    me: &dyn IUnknown,
    channel: &dyn ChannelSecurity,
    proxy: &dyn IUnknown,
) -> Result<Blanket> {
    if !same_object(me, proxy) {
        return Err(Error(E_INVALIDARG));
    }
    Ok(channel.blanket().get())
}

/// `IClientSecurity::SetBlanket` of the object `me`.
pub(crate) fn set_blanket(
    me: &dyn IUnknown,
    channel: &dyn ChannelSecurity,
    proxy: &dyn IUnknown,
    blanket: &Blanket,
) -> HRESULT {
    if !same_object(me, proxy) {
        return E_INVALIDARG;
    }
    match channel.blanket().set(blanket) {
        Ok(()) => S_OK,
        Err(e) => e.code(),
    }
}

/// `IClientSecurity::CopyProxy` of the object `me`.
pub(crate) fn copy_proxy(
    me: &dyn IUnknown,
    channel: &dyn ChannelSecurity,
    proxy: &dyn IUnknown,
) -> Result<ComPtr<dyn IUnknown>> {
    if !same_object(me, proxy) {
        return Err(Error(E_INVALIDARG));
    }
    channel.copy_proxy()
}

/// `CoQueryProxyBlanket(pProxy, …)`: `QueryInterface(IID_IClientSecurity)`, then
/// `QueryBlanket(pProxy)`. `E_NOINTERFACE` for an object that is not a proxy.
///
/// ```
/// use comasync::hresult::E_NOINTERFACE;
/// use comasync::security::co_query_proxy_blanket;
/// use comasync::simple_stream::SimpleStream;
/// let local = SimpleStream::create(Vec::new()); // an in-process object: no proxy
/// assert_eq!(co_query_proxy_blanket(&*local).unwrap_err().code(), E_NOINTERFACE);
/// ```
pub fn co_query_proxy_blanket(proxy: &(impl IUnknown + ?Sized)) -> Result<Blanket> {
    let security = query::<dyn IClientSecurity>(proxy)?;
    security.query_blanket(&*query::<dyn IUnknown>(proxy)?)
}

/// `CoSetProxyBlanket(pProxy, …)`: `QueryInterface(IID_IClientSecurity)`, then
/// `SetBlanket(pProxy, …)`. `S_OK`, `E_INVALIDARG`, or `E_NOINTERFACE` for an object that is
/// not a proxy.
pub fn co_set_proxy_blanket(proxy: &(impl IUnknown + ?Sized), blanket: &Blanket) -> HRESULT {
    match query::<dyn IClientSecurity>(proxy) {
        Ok(security) => match query::<dyn IUnknown>(proxy) {
            Ok(unknown) => security.set_blanket(&*unknown, blanket),
            Err(e) => e.code(),
        },
        Err(e) => e.code(),
    }
}

/// `CoCopyProxy(pProxy, &ppCopy)`: `QueryInterface(IID_IClientSecurity)`, then
/// `CopyProxy(pProxy)`.
pub fn co_copy_proxy(proxy: &(impl IUnknown + ?Sized)) -> Result<ComPtr<dyn IUnknown>> {
    let security = query::<dyn IClientSecurity>(proxy)?;
    security.copy_proxy(&*query::<dyn IUnknown>(proxy)?)
}
