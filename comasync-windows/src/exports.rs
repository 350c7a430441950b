//! The `Co*` functions (and `UuidCreate`) under their Windows names, backed by comasync.
//!
//! Off Windows, `windows_link::link!` declares an imported function without a `#[link]`
//! attribute, so the generated bindings (and windows-core's `GUID::new`) call whichever
//! definition of the symbol the program links. These are those definitions: `extern
//! "system"` functions with the Windows signature, `#[unsafe(no_mangle)]`. The stand-in
//! `windows` crate depends on this crate, so every crate that uses the stand-in links them.
//!
//! | function | backed by |
//! |---|---|
//! | `CoWaitForMultipleHandles` | [`comasync::sync::co_wait_for_multiple_handles`], `HANDLE`s mapped by [`crate::handles`] (an unknown value is an invalid handle: `E_HANDLE`) |
//! | `CoCreateInstance` | the system classes of [`crate::events`]; other CLSIDs `REGDB_E_CLASSNOTREG` |
//! | `CoGetCallContext`, `CoTestCancel` | [`crate::context`] |
//! | `CoCancelCall`, `CoGetCancelObject` | [`comasync::call::co_cancel_call`], [`comasync::call::co_get_cancel_object`] |
//! | `CoEnableCallCancellation`, `CoDisableCallCancellation` | comasync's per-thread count |
//! | `CoInitializeEx`, `CoUninitialize` | [`comasync::apartment`] |
//! | `UuidCreate` | a random (version 4) UUID |
//!
//! Invariant: a null out-pointer is never written; an out-pointer is set to null before any
//! failure is returned, as COM does.

use std::ffi::c_void;
use std::ptr::null_mut;

use comasync::hresult::{CLASS_E_NOAGGREGATION, E_INVALIDARG, E_POINTER, REGDB_E_CLASSNOTREG};
use comasync::sync as cs;
use windows_core::{implement, IUnknown, Interface, Result, GUID, HRESULT};

use crate::bindings::Windows::Win32::Foundation::HANDLE;
use crate::bindings::Windows::Win32::System::Com::{
    ICancelMethodCalls, ICancelMethodCalls_Impl, CLSCTX,
};
use crate::handles::lookup;
use crate::{hr, ok, CLSID_MANUAL_RESET_EVENT, CLSID_STD_EVENT, CLSID_SYNCHRONIZE_CONTAINER};

/// `CoWaitForMultipleHandles(dwFlags, dwTimeout, cHandles, pHandles, lpdwindex)`.
///
/// # Safety
///
/// `phandles` is null or points to `chandles` readable `HANDLE`s; `lpdwindex` is null or
/// points to a writable `u32` (COM's contract for the function).
#[unsafe(no_mangle)]
pub unsafe extern "system" fn CoWaitForMultipleHandles(
    dwflags: u32,
    dwtimeout: u32,
    chandles: u32,
    phandles: *const HANDLE,
    lpdwindex: *mut u32,
) -> HRESULT {
    let handles: Option<Vec<cs::HANDLE>> = if phandles.is_null() {
        None
    } else {
        // SAFETY: `phandles` is not null and, by the function's contract, points to
        // `chandles` HANDLEs, which are plain values (copied out here).
        let values = unsafe { std::slice::from_raw_parts(phandles, chandles as usize) };
        Some(
            values
                .iter()
                .map(|&h| lookup(h).unwrap_or_else(invalid_handle))
                .collect(),
        )
    };
    let mut index = 0;
    let slot = if lpdwindex.is_null() {
        None
    } else {
        Some(&mut index)
    };
    let result = cs::co_wait_for_multiple_handles(dwflags, dwtimeout, handles.as_deref(), slot);
    if !lpdwindex.is_null() {
        // SAFETY: not null, and writable by the function's contract.
        unsafe { *lpdwindex = index };
    }
    hr(result)
}

/// What an unknown `HANDLE` value is to comasync: a closed event, so the wait fails with
/// `E_HANDLE` (Win32's `ERROR_INVALID_HANDLE`) at the point where comasync checks handles.
fn invalid_handle() -> cs::HANDLE {
    let event = cs::HANDLE::create_event(true, false);
    event.close_handle();
    event
}

/// Writes an interface pointer (or null) to a COM out-parameter.
///
/// # Safety
///
/// `ppv` is a writable, non-null `void**`.
unsafe fn write_out(ppv: *mut *mut c_void, result: Result<IUnknown>) -> HRESULT {
    match result {
        Ok(unk) => {
            // SAFETY: by this function's contract; the reference `unk` held moves to the caller.
            unsafe { *ppv = unk.into_raw() };
            HRESULT(0)
        }
        Err(e) => e.code(),
    }
}

/// `CoCreateInstance(rclsid, pUnkOuter, dwClsContext, riid, ppv)` for the system classes
/// `CLSID_ManualResetEvent`, `CLSID_StdEvent` and `CLSID_SynchronizeContainer` (any class
/// context). `REGDB_E_CLASSNOTREG` for another CLSID; with an outer, `E_INVALIDARG` unless
/// `riid` is `IID_IUnknown` (as comasync), then `CLASS_E_NOAGGREGATION`: a windows-rs
/// `#[implement]` object cannot be aggregated (docs/windows-rs.md).
///
/// # Safety
///
/// `rclsid` and `riid` are null or readable; `ppv` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn CoCreateInstance(
    rclsid: *const GUID,
    punkouter: *mut c_void,
    _dwclscontext: CLSCTX,
    riid: *const GUID,
    ppv: *mut *mut c_void,
) -> HRESULT {
    if ppv.is_null() {
        return hr(E_POINTER);
    }
    // SAFETY: `ppv` is not null and writable by the function's contract.
    unsafe { *ppv = null_mut() };
    if rclsid.is_null() || riid.is_null() {
        return hr(E_INVALIDARG);
    }
    // SAFETY: both are non-null and readable by the function's contract.
    let (clsid, riid) = unsafe { (*rclsid, *riid) };
    let object: IUnknown = if clsid == CLSID_MANUAL_RESET_EVENT {
        crate::ManualResetEvent::create().into()
    } else if clsid == CLSID_STD_EVENT {
        crate::StdEvent::create().into()
    } else if clsid == CLSID_SYNCHRONIZE_CONTAINER {
        crate::SynchronizeContainer::create().into()
    } else {
        return hr(REGDB_E_CLASSNOTREG);
    };
    if !punkouter.is_null() {
        return hr(if riid == IUnknown::IID {
            CLASS_E_NOAGGREGATION
        } else {
            E_INVALIDARG
        });
    }
    // SAFETY: `object` is a live interface pointer and `ppv` a writable `void**`.
    unsafe { object.query(&riid, ppv) }
}

/// `CoGetCallContext(riid, ppInterface)`: see [`crate::context::co_get_call_context`].
/// `E_INVALIDARG` for a null `riid` or `ppInterface`.
///
/// # Safety
///
/// `riid` is null or readable; `ppinterface` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn CoGetCallContext(
    riid: *const GUID,
    ppinterface: *mut *mut c_void,
) -> HRESULT {
    if ppinterface.is_null() || riid.is_null() {
        return hr(E_INVALIDARG);
    }
    // SAFETY: non-null, writable and readable by the function's contract.
    unsafe {
        *ppinterface = null_mut();
        write_out(ppinterface, crate::context::co_get_call_context(&*riid))
    }
}

/// `CoTestCancel()`: see [`crate::context::co_test_cancel`].
#[unsafe(no_mangle)]
pub extern "system" fn CoTestCancel() -> HRESULT {
    hr(crate::context::co_test_cancel())
}

/// `CoCancelCall(dwThreadId, ulTimeout)`: [`comasync::call::co_cancel_call`].
#[unsafe(no_mangle)]
pub extern "system" fn CoCancelCall(dwthreadid: u32, ultimeout: u32) -> HRESULT {
    hr(comasync::call::co_cancel_call(dwthreadid, ultimeout))
}

/// `CoEnableCallCancellation(pReserved)`: comasync's (a non-null reserved pointer is
/// passed on as such).
#[unsafe(no_mangle)]
pub extern "system" fn CoEnableCallCancellation(preserved: *const c_void) -> HRESULT {
    let mut reserved = ();
    let reserved: Option<&mut dyn std::any::Any> = (!preserved.is_null()).then_some(&mut reserved);
    hr(comasync::call::co_enable_call_cancellation(reserved))
}

/// `CoDisableCallCancellation(pReserved)`: comasync's.
#[unsafe(no_mangle)]
pub extern "system" fn CoDisableCallCancellation(preserved: *const c_void) -> HRESULT {
    let mut reserved = ();
    let reserved: Option<&mut dyn std::any::Any> = (!preserved.is_null()).then_some(&mut reserved);
    hr(comasync::call::co_disable_call_cancellation(reserved))
}

/// A comasync cancel object as a windows-rs `ICancelMethodCalls`.
#[implement(ICancelMethodCalls)]
struct CancelObject {
    cancel: comasync::ComPtr<dyn comasync::call::ICancelMethodCalls>,
}

impl ICancelMethodCalls_Impl for CancelObject_Impl {
    fn Cancel(&self, ulseconds: u32) -> Result<()> {
        ok(self.cancel.cancel(ulseconds))
    }
    fn TestCancel(&self) -> Result<()> {
        ok(self.cancel.test_cancel())
    }
}

/// `CoGetCancelObject(dwThreadId, iid, ppUnk)`: [`comasync::call::co_get_cancel_object`].
///
/// # Safety
///
/// `iid` is null or readable; `ppunk` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn CoGetCancelObject(
    dwthreadid: u32,
    iid: *const GUID,
    ppunk: *mut *mut c_void,
) -> HRESULT {
    if ppunk.is_null() || iid.is_null() {
        return hr(E_INVALIDARG);
    }
    // SAFETY: non-null, readable and writable by the function's contract.
    unsafe {
        *ppunk = null_mut();
        let iid = comasync::guid::GUID::from(*iid);
        let result = comasync::call::co_get_cancel_object(dwthreadid, &iid)
            .map(|cancel| ICancelMethodCalls::from(CancelObject { cancel }).into())
            .map_err(windows_core::Error::from);
        write_out(ppunk, result)
    }
}

/// `CoInitializeEx(pvReserved, dwCoInit)`: [`comasync::apartment::co_initialize_ex`].
#[unsafe(no_mangle)]
pub extern "system" fn CoInitializeEx(pvreserved: *const c_void, dwcoinit: u32) -> HRESULT {
    let mut reserved = ();
    let reserved: Option<&mut dyn std::any::Any> = (!pvreserved.is_null()).then_some(&mut reserved);
    hr(comasync::apartment::co_initialize_ex(reserved, dwcoinit))
}

/// `CoUninitialize()`: [`comasync::apartment::co_uninitialize`].
#[unsafe(no_mangle)]
pub extern "system" fn CoUninitialize() {
    comasync::apartment::co_uninitialize();
}

/// `RPC_S_INVALID_ARG` (Win32 error 87): `UuidCreate` with a null pointer.
const RPC_S_INVALID_ARG: i32 = 87;

/// `UuidCreate(&uuid)`: a random version-4 UUID, `RPC_S_OK` (0). windows-core's `GUID::new`
/// calls it.
///
/// # Safety
///
/// `uuid` is null or writable.
#[unsafe(no_mangle)]
pub unsafe extern "system" fn UuidCreate(uuid: *mut GUID) -> i32 {
    if uuid.is_null() {
        return RPC_S_INVALID_ARG;
    }
    let value = random_v4();
    // SAFETY: not null, and writable by the function's contract.
    unsafe { *uuid = GUID::from_u128(value) };
    0
}

/// 128 random bits from std's per-process random hasher keys, a counter and the clock, with
/// the version (4) and variant (RFC 4122) bits set.
fn random_v4() -> u128 {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let half = |salt: u64| {
        let mut h = RandomState::new().build_hasher();
        h.write_u64(n);
        h.write_u64(salt);
        h.write_u128(now);
        h.finish()
    };
    let bits = (u128::from(half(1)) << 64) | u128::from(half(2));
    (bits & !(0xF000_u128 << 64) | (0x4000_u128 << 64)) & !(0xC000_u128 << 48) | (0x8000_u128 << 48)
}
