//! `CoCreateInstance` for the system classes comasync implements: creating objects by CLSID,
//! stand-alone or aggregated.
//!
//! Rules (spec D11): an unknown CLSID → `REGDB_E_CLASSNOTREG`; aggregating (an outer is given)
//! with `riid ≠ IID_IUnknown` → `E_INVALIDARG`, checked before anything is created. An
//! aggregated object is handed back as its non-delegating `IUnknown`.

use std::any::Any;
use std::sync::Arc;

use crate::guid::{
    CLSID_ManualResetEvent, CLSID_StdEvent, CLSID_SynchronizeContainer, IID_IUnknown, CLSID, IID,
};
use crate::hresult::{Error, Result, E_INVALIDARG, E_UNEXPECTED, HRESULT, REGDB_E_CLASSNOTREG};
use crate::sync::{SyncEvent, SynchronizeContainer};
use crate::unknown::{
    non_delegating, ComPtr, INonDelegatingUnknown, IUnknown, Interface, RefCount,
};

/// `CoCreateInstance(rclsid, pUnkOuter, CLSCTX_INPROC_SERVER, riid, ppv)`.
///
/// `ppv` is an `&mut Option<ComPtr<dyn I>>` for the interface `riid` names.
///
/// ```
/// use comasync::class::co_create_instance;
/// use comasync::guid::{CLSID_ManualResetEvent, IID_ISynchronize};
/// use comasync::hresult::S_OK;
/// use comasync::sync::ISynchronize;
/// use comasync::unknown::ComPtr;
///
/// let mut event: Option<ComPtr<dyn ISynchronize>> = None;
/// assert_eq!(co_create_instance(&CLSID_ManualResetEvent, None, &IID_ISynchronize, &mut event), S_OK);
/// assert_eq!(event.unwrap().signal(), S_OK);
///
/// // Aggregated under an outer: only IID_IUnknown may be asked for.
/// use comasync::hresult::E_INVALIDARG;
/// use comasync::unknown::{IUnknown, PlainObject};
/// let outer = PlainObject::create();
/// let mut inner: Option<ComPtr<dyn ISynchronize>> = None;
/// let hr = co_create_instance(&CLSID_ManualResetEvent, Some(&outer), &IID_ISynchronize, &mut inner);
/// assert_eq!(hr, E_INVALIDARG);
/// let mut inner: Option<ComPtr<dyn IUnknown>> = None;
/// let iid = comasync::guid::IID_IUnknown;
/// assert_eq!(co_create_instance(&CLSID_ManualResetEvent, Some(&outer), &iid, &mut inner), S_OK);
/// assert!(inner.unwrap().query::<dyn ISynchronize>().is_ok()); // the event's own interfaces
/// ```
pub fn co_create_instance(
    clsid: &CLSID,
    outer: Option<&ComPtr<dyn IUnknown>>,
    riid: &IID,
    ppv: &mut dyn Any,
) -> HRESULT {
    let known = [
        CLSID_ManualResetEvent,
        CLSID_StdEvent,
        CLSID_SynchronizeContainer,
    ];
    if !known.contains(clsid) {
        return REGDB_E_CLASSNOTREG;
    }
    if outer.is_some() && *riid != IID_IUnknown {
        return E_INVALIDARG;
    }
    let refs = match outer {
        Some(o) => RefCount::aggregated(Arc::downgrade(o.as_arc())),
        None => RefCount::new(),
    };
    let inner: Arc<dyn INonDelegatingUnknown> = if *clsid == CLSID_SynchronizeContainer {
        SynchronizeContainer::new(refs)
    } else {
        SyncEvent::new_with(*clsid, refs)
    };
    // Ask the new object's non-delegating unknown for `riid` (aggregated: `IID_IUnknown`,
    // which gives the non-delegating unknown itself). Holding a reference while asking means
    // a failed request releases the new object.
    let unk = non_delegating(inner);
    unk.query_interface(riid, ppv)
}

/// The typed form of [`co_create_instance`] without an outer.
///
/// ```
/// use comasync::class::create_instance;
/// use comasync::guid::CLSID_StdEvent;
/// use comasync::sync::ISynchronize;
/// use comasync::guid::GUID_NULL;
/// use comasync::hresult::{REGDB_E_CLASSNOTREG, S_OK};
///
/// let event = create_instance::<dyn ISynchronize>(&CLSID_StdEvent).unwrap();
/// assert_eq!(event.signal(), S_OK);
/// let err = create_instance::<dyn ISynchronize>(&GUID_NULL).unwrap_err();
/// assert_eq!(err.code(), REGDB_E_CLASSNOTREG);
/// ```
pub fn create_instance<I: ?Sized + Interface + IUnknown>(clsid: &CLSID) -> Result<ComPtr<I>> {
    let mut slot: Option<ComPtr<I>> = None;
    co_create_instance(clsid, None, &I::IID, &mut slot).ok()?;
    slot.ok_or(Error(E_UNEXPECTED))
}
