//! `ICalculator` and an in-process server for it, written with windows-rs as for Windows: the
//! server answers `ICallFactory` itself, and its server call object (`CalculatorCall`)
//! speaks `AsyncICalculator`, with a `CLSID_ManualResetEvent` from `CoCreateInstance` as its
//! `ISynchronize`. Nothing here names comasync: on Linux it runs against comasync through the
//! stand-in `windows` crate (docs/windows-rs.md).

#![allow(non_snake_case)]

use std::sync::Mutex;

use windows::core::{
    implement, interface, IUnknown, IUnknown_Vtbl, Interface, Ref, Result, GUID, HRESULT,
};
use windows::Win32::Foundation::{
    CLASS_E_NOAGGREGATION, E_NOINTERFACE, HANDLE, RPC_E_CALL_COMPLETE, RPC_S_CALLPENDING, S_OK,
};
use windows::Win32::System::Com::{
    CoCreateInstance, ICallFactory, ICallFactory_Impl, ICancelMethodCalls, ICancelMethodCalls_Impl,
    ISynchronize, ISynchronizeHandle, ISynchronizeHandle_Impl, ISynchronize_Impl,
    CLSCTX_INPROC_SERVER,
};

/// `CLSID_ManualResetEvent` (objidl.h; not in the Win32 metadata).
pub const CLSID_MANUAL_RESET_EVENT: GUID = GUID::from_u128(0x0000032C_0000_0000_C000_000000000046);

/// `ICalculator`.
#[interface("8E2B7C10-4A5D-4E6F-9012-3A4B5C6D7E80")]
pub unsafe trait ICalculator: IUnknown {
    /// `Add(a, b, &sum)`.
    pub fn Add(&self, a: i32, b: i32, sum: *mut i32) -> HRESULT;
}

/// `AsyncICalculator`, its `async_uuid` twin.
#[interface("8E2B7C11-4A5D-4E6F-9012-3A4B5C6D7E80")]
pub unsafe trait AsyncICalculator: IUnknown {
    /// `Begin_Add(a, b)`.
    pub fn Begin_Add(&self, a: i32, b: i32) -> HRESULT;
    /// `Finish_Add(&sum)`.
    pub fn Finish_Add(&self, sum: *mut i32) -> HRESULT;
}

/// The server object: `ICalculator`, and `ICallFactory` for asynchronous calls.
#[implement(ICalculator, ICallFactory)]
#[derive(Default)]
pub struct Calculator;

impl ICalculator_Impl for Calculator_Impl {
    unsafe fn Add(&self, a: i32, b: i32, sum: *mut i32) -> HRESULT {
        unsafe { *sum = a + b };
        S_OK
    }
}

impl ICallFactory_Impl for Calculator_Impl {
    fn CreateCall(
        &self,
        riid: *const GUID,
        pctrlunk: Ref<IUnknown>,
        riid2: *const GUID,
    ) -> Result<IUnknown> {
        if unsafe { *riid } != AsyncICalculator::IID {
            return Err(E_NOINTERFACE.into());
        }
        if pctrlunk.is_some() {
            return Err(CLASS_E_NOAGGREGATION.into()); // this server call object is not aggregatable
        }
        let call: AsyncICalculator = CalculatorCall::new()?.into();
        match unsafe { *riid2 } {
            iid if iid == IUnknown::IID => call.cast(),
            iid if iid == AsyncICalculator::IID => Ok(call.into()),
            _ => Err(E_NOINTERFACE.into()),
        }
    }
}

/// The server call object: one call at a time; the work is done inside `Begin_`, which then
/// signals the call's event.
#[implement(AsyncICalculator, ISynchronize, ISynchronizeHandle, ICancelMethodCalls)]
pub struct CalculatorCall {
    event: ISynchronize,
    /// `None`: no call; `Some(result)`: begun, not finished.
    pending: Mutex<Option<i32>>,
}

impl CalculatorCall {
    /// A call object with its own manual-reset event.
    pub fn new() -> Result<CalculatorCall> {
        Ok(CalculatorCall {
            event: unsafe {
                CoCreateInstance(&CLSID_MANUAL_RESET_EVENT, None, CLSCTX_INPROC_SERVER)?
            },
            pending: Mutex::new(None),
        })
    }
}

impl AsyncICalculator_Impl for CalculatorCall_Impl {
    unsafe fn Begin_Add(&self, a: i32, b: i32) -> HRESULT {
        let mut pending = self.pending.lock().unwrap();
        if pending.is_some() {
            return RPC_S_CALLPENDING; // a call is in progress
        }
        *pending = Some(a + b);
        unsafe {
            let _ = self.event.Reset();
            let _ = self.event.Signal();
        }
        S_OK
    }

    unsafe fn Finish_Add(&self, sum: *mut i32) -> HRESULT {
        if self.pending.lock().unwrap().is_none() {
            return RPC_E_CALL_COMPLETE; // no call to finish
        }
        if let Err(e) = unsafe { self.event.Wait(0, u32::MAX) } {
            return e.code();
        }
        match self.pending.lock().unwrap().take() {
            Some(result) => {
                unsafe { *sum = result };
                S_OK
            }
            None => RPC_E_CALL_COMPLETE, // no call to finish
        }
    }
}

impl ISynchronize_Impl for CalculatorCall_Impl {
    fn Wait(&self, dwflags: u32, dwmilliseconds: u32) -> Result<()> {
        unsafe { self.event.Wait(dwflags, dwmilliseconds) }
    }
    fn Signal(&self) -> Result<()> {
        unsafe { self.event.Signal() }
    }
    fn Reset(&self) -> Result<()> {
        unsafe { self.event.Reset() }
    }
}

impl ISynchronizeHandle_Impl for CalculatorCall_Impl {
    fn GetHandle(&self) -> Result<HANDLE> {
        unsafe { self.event.cast::<ISynchronizeHandle>()?.GetHandle() }
    }
}

impl ICancelMethodCalls_Impl for CalculatorCall_Impl {
    fn Cancel(&self, _ulseconds: u32) -> Result<()> {
        Err(RPC_E_CALL_COMPLETE.into()) // calls complete inside Begin_: nothing to cancel
    }
    fn TestCancel(&self) -> Result<()> {
        Err(RPC_E_CALL_COMPLETE.into()) // never cancelled: complete as soon as begun
    }
}
