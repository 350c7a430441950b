//! The exported `Co*` functions: called through the windows-rs wrappers (as user code calls
//! them) and directly with null pointers (as C callers may), each answering as comasync does.

use std::ptr::{null, null_mut};

use comasync::hresult as h;
use comasync_windows::exports as x;
use windows::core::{Interface, Result, GUID};
use windows::Win32::System::Com::{
    CoCancelCall, CoDisableCallCancellation, CoEnableCallCancellation, CoGetCancelObject,
    CoInitializeEx, CoUninitialize, ICancelMethodCalls, CLSCTX_INPROC_SERVER,
    COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED,
};

fn code<T>(r: Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.code().0,
    }
}

#[test]
fn call_cancellation_is_counted_per_thread_as_in_comasync() {
    std::thread::spawn(|| unsafe {
        assert_eq!(
            code(CoDisableCallCancellation(None)),
            h::CO_E_CANCEL_DISABLED.0
        );
        assert_eq!(code(CoEnableCallCancellation(None)), 0);
        assert!(comasync::call::call_cancellation_enabled());
        assert_eq!(code(CoDisableCallCancellation(None)), 0);
        assert!(!comasync::call::call_cancellation_enabled());
        // A reserved pointer: comasync's answer for one.
        let reserved = 1u8;
        let expected = comasync::call::co_enable_call_cancellation(Some(&mut ()));
        assert_eq!(
            code(CoEnableCallCancellation(Some(
                &reserved as *const u8 as *const _
            ))),
            expected.0
        );
    })
    .join()
    .unwrap();
}

#[test]
fn with_no_synchronous_call_there_is_nothing_to_cancel() {
    unsafe {
        assert_eq!(
            code(CoCancelCall(0, 0)),
            comasync::call::co_cancel_call(0, 0).0
        ); // E_NOINTERFACE
        let r: Result<ICancelMethodCalls> = CoGetCancelObject(0);
        assert_eq!(code(r), h::E_NOINTERFACE.0);
        let mut p = null_mut();
        assert_eq!(x::CoGetCancelObject(0, null(), &mut p).0, h::E_INVALIDARG.0);
        assert_eq!(
            x::CoGetCancelObject(0, &ICancelMethodCalls::IID, null_mut()).0,
            h::E_INVALIDARG.0
        );
    }
}

#[test]
fn co_initialize_ex_enters_comasyncs_apartments() {
    std::thread::spawn(|| unsafe {
        assert_eq!(
            CoInitializeEx(None, COINIT_MULTITHREADED),
            windows::core::HRESULT(0)
        );
        assert_eq!(CoInitializeEx(None, COINIT_MULTITHREADED).0, h::S_FALSE.0);
        assert_eq!(
            CoInitializeEx(None, COINIT_APARTMENTTHREADED).0,
            h::RPC_E_CHANGED_MODE.0
        );
        assert_eq!(
            comasync::apartment::co_get_apartment_type().unwrap(),
            comasync::apartment::AptType::Mta
        );
        CoUninitialize();
        CoUninitialize();
        assert!(comasync::apartment::current_apartment().is_none());
    })
    .join()
    .unwrap();
}

#[test]
fn guid_new_calls_the_exported_uuid_create() {
    let a = GUID::new().unwrap();
    let b = GUID::new().unwrap();
    assert_ne!(a, b);
    for g in [a, b] {
        assert_eq!(g.data3 >> 12, 4); // version 4
        assert_eq!(g.data4[0] >> 6, 0b10); // RFC 4122 variant
    }
    assert_eq!(unsafe { x::UuidCreate(null_mut()) }, 87); // RPC_S_INVALID_ARG
}

#[test]
fn null_pointers_get_comasyncs_answers_not_a_crash() {
    unsafe {
        let mut index = 7;
        let expected = comasync::sync::co_wait_for_multiple_handles(0, 0, None, Some(&mut 0));
        assert_eq!(
            x::CoWaitForMultipleHandles(0, 0, 0, null(), &mut index).0,
            expected.0
        );
        assert_eq!(index, 0); // written, as comasync writes it
        let expected = comasync::sync::co_wait_for_multiple_handles(0, 0, Some(&[]), None);
        assert_eq!(
            x::CoWaitForMultipleHandles(0, 0, 0, null(), null_mut()).0,
            expected.0
        );
        let clsid = comasync_windows::CLSID_MANUAL_RESET_EVENT;
        let iid = ICancelMethodCalls::IID;
        assert_eq!(
            x::CoCreateInstance(&clsid, null_mut(), CLSCTX_INPROC_SERVER, &iid, null_mut()).0,
            h::E_POINTER.0
        );
        let mut p = std::ptr::dangling_mut();
        assert_eq!(
            x::CoCreateInstance(null(), null_mut(), CLSCTX_INPROC_SERVER, &iid, &mut p).0,
            h::E_INVALIDARG.0
        );
        assert!(p.is_null()); // the out-pointer is cleared first
        assert_eq!(x::CoGetCallContext(null(), &mut p).0, h::E_INVALIDARG.0);
        assert_eq!(x::CoGetCallContext(&iid, null_mut()).0, h::E_INVALIDARG.0);
        let mut q = null_mut();
        assert_eq!(
            x::CoGetCallContext(&iid, &mut q).0,
            h::RPC_E_CALL_COMPLETE.0
        );
    }
}
