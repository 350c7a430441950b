//! Client code for `ICalculator`, written with windows-rs as for Windows: `CreateCall`,
//! `Begin_`/`Finish_`, `ISynchronize::Wait`, `CoWaitForMultipleHandles` on the calls'
//! handles, and an `ISynchronizeContainer`. Nothing here names comasync.

use windows::core::{IUnknown, Interface, Result, GUID, HRESULT};
use windows::Win32::System::Com::{
    CoCreateInstance, CoWaitForMultipleHandles, ICallFactory, ISynchronize, ISynchronizeContainer,
    ISynchronizeHandle, CLSCTX_INPROC_SERVER, COWAIT_WAITALL,
};

use super::calculator::{AsyncICalculator, ICalculator};

/// `CLSID_SynchronizeContainer` (objidl.h; not in the Win32 metadata).
pub const CLSID_SYNCHRONIZE_CONTAINER: GUID =
    GUID::from_u128(0x0000032D_0000_0000_C000_000000000046);

const INFINITE: u32 = u32::MAX;

/// A new call object for `AsyncICalculator` from `server`'s `ICallFactory`.
pub fn new_call(server: &IUnknown) -> Result<AsyncICalculator> {
    let factory: ICallFactory = server.cast()?;
    let call = unsafe { factory.CreateCall(&AsyncICalculator::IID, None, &IUnknown::IID)? };
    call.cast()
}

/// `a + b` through the synchronous interface.
pub fn add(server: &IUnknown, a: i32, b: i32) -> Result<i32> {
    let calculator: ICalculator = server.cast()?;
    let mut sum = 0;
    unsafe { calculator.Add(a, b, &mut sum).ok()? };
    Ok(sum)
}

/// `a + b` asynchronously: `Begin_Add`, `Wait` on the call's `ISynchronize`, `Finish_Add`.
pub fn add_async(server: &IUnknown, a: i32, b: i32) -> Result<i32> {
    let call = new_call(server)?;
    unsafe {
        call.Begin_Add(a, b).ok()?;
        call.cast::<ISynchronize>()?.Wait(0, INFINITE)?;
        let mut sum = 0;
        call.Finish_Add(&mut sum).ok()?;
        Ok(sum)
    }
}

/// Two calls at once, waited for together with `CoWaitForMultipleHandles(COWAIT_WAITALL)`.
pub fn add_two(server: &IUnknown, (a, b): (i32, i32), (c, d): (i32, i32)) -> Result<(i32, i32)> {
    let first = new_call(server)?;
    let second = new_call(server)?;
    unsafe {
        first.Begin_Add(a, b).ok()?;
        second.Begin_Add(c, d).ok()?;
        let handles = [
            first.cast::<ISynchronizeHandle>()?.GetHandle()?,
            second.cast::<ISynchronizeHandle>()?.GetHandle()?,
        ];
        CoWaitForMultipleHandles(COWAIT_WAITALL.0 as u32, INFINITE, &handles)?;
        let (mut x, mut y) = (0, 0);
        first.Finish_Add(&mut x).ok()?;
        second.Finish_Add(&mut y).ok()?;
        Ok((x, y))
    }
}

/// The first of several calls to complete, found with an `ISynchronizeContainer`: its index.
pub fn first_done(server: &IUnknown, calls: &[(i32, i32)]) -> Result<usize> {
    let container: ISynchronizeContainer =
        unsafe { CoCreateInstance(&CLSID_SYNCHRONIZE_CONTAINER, None, CLSCTX_INPROC_SERVER)? };
    let mut syncs = Vec::new();
    for &(a, b) in calls {
        let call = new_call(server)?;
        unsafe { call.Begin_Add(a, b).ok()? };
        let sync: ISynchronize = call.cast()?;
        unsafe { container.AddSynchronize(&sync)? };
        syncs.push((call, sync));
    }
    let done = unsafe { container.WaitMultiple(0, INFINITE)? };
    let index = syncs
        .iter()
        .position(|(_, s)| s.cast::<IUnknown>().ok() == done.cast::<IUnknown>().ok())
        .unwrap_or(usize::MAX);
    for (call, _) in &syncs {
        let mut sum = 0;
        unsafe { call.Finish_Add(&mut sum).ok()? };
    }
    Ok(index)
}

/// `Finish_Add` with no call begun: the server call object's `HRESULT`.
pub fn finish_without_begin(server: &IUnknown) -> Result<HRESULT> {
    let call = new_call(server)?;
    let mut sum = 0;
    Ok(unsafe { call.Finish_Add(&mut sum) })
}
