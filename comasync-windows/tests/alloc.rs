//! No leak: a full round of the bridge (a factory, a call object through `CreateCall`,
//! `Begin_`/`Wait`/`Finish_`, `Cancel`, the completion callback, events from
//! `CoCreateInstance`, their handles, a container and `CoWaitForMultipleHandles`) returns the
//! heap to where it was, counted by a counting global allocator (`stats_alloc`).
//!
//! Pool workers free a call's job right after completing it, so the heap is compared over
//! windows of many rounds and the quietest window must be within a few hundred bytes of level:
//! anything left behind per round would show once per round, hundreds of times.

mod common;

use std::alloc::System;

use comasync_windows::{CLSID_MANUAL_RESET_EVENT, CLSID_STD_EVENT, CLSID_SYNCHRONIZE_CONTAINER};
use common::*;
use stats_alloc::{StatsAlloc, INSTRUMENTED_SYSTEM};
use windows::core::{ComObject, IUnknown, Interface, HRESULT};
use windows::Win32::System::Com::{
    CoCreateInstance, CoWaitForMultipleHandles, ICancelMethodCalls, ISynchronize,
    ISynchronizeContainer, ISynchronizeHandle, CLSCTX_INPROC_SERVER,
};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

fn heap() -> isize {
    let s = INSTRUMENTED_SYSTEM.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize + s.bytes_reallocated
}

fn round(server: &ComObject<Calculator>) {
    let factory = factory(server);
    let call = create_call(&factory);
    unsafe {
        assert_eq!(call.Begin_Add(1, 2), HRESULT(0));
        call.cast::<ISynchronize>()
            .unwrap()
            .Wait(0, u32::MAX)
            .unwrap();
        let mut sum = 0;
        assert_eq!(call.Finish_Add(&mut sum), HRESULT(0));
        let cancel: ICancelMethodCalls = call.cast().unwrap();
        assert!(cancel.Cancel(0).is_err()); // nothing to cancel
        let h = call
            .cast::<ISynchronizeHandle>()
            .unwrap()
            .GetHandle()
            .unwrap();
        let a: ISynchronize =
            CoCreateInstance(&CLSID_MANUAL_RESET_EVENT, None, CLSCTX_INPROC_SERVER).unwrap();
        let b: ISynchronize =
            CoCreateInstance(&CLSID_STD_EVENT, None, CLSCTX_INPROC_SERVER).unwrap();
        let container: ISynchronizeContainer =
            CoCreateInstance(&CLSID_SYNCHRONIZE_CONTAINER, None, CLSCTX_INPROC_SERVER).unwrap();
        container.AddSynchronize(&a).unwrap();
        container.AddSynchronize(&b).unwrap();
        b.Signal().unwrap();
        let got = container.WaitMultiple(0, u32::MAX).unwrap();
        drop(got);
        let ha = a.cast::<ISynchronizeHandle>().unwrap().GetHandle().unwrap();
        a.Signal().unwrap();
        assert_eq!(CoWaitForMultipleHandles(0, u32::MAX, &[ha, h]).unwrap(), 0);
        // The completion callback.
        let callback = ComObject::new(Callback::new());
        let outer: IUnknown = callback.to_interface();
        let inner = factory
            .CreateCall(&AsyncICalculator::IID, &outer, &IUnknown::IID)
            .unwrap();
        let call: AsyncICalculator = inner.cast().unwrap();
        assert_eq!(call.Begin_Add(2, 2), HRESULT(0));
        assert_eq!(call.Finish_Add(&mut sum), HRESULT(0));
        let mut i = 0;
        let signaled = Some(&[callback.signals.clone()][..]);
        assert_eq!(
            comasync::sync::co_wait_for_multiple_handles(0, u32::MAX, signaled, Some(&mut i)),
            comasync::hresult::S_OK
        );
    }
}

#[test]
fn a_round_of_the_bridge_leaks_nothing() {
    let server = ComObject::new(Calculator::new());
    for _ in 0..50 {
        round(&server); // warm-up: the pool's threads, the handle table's capacity
    }
    let mut quietest = isize::MAX;
    for _ in 0..5 {
        let before = heap();
        for _ in 0..300 {
            round(&server);
        }
        quietest = quietest.min((heap() - before).abs());
        if quietest < 512 {
            break;
        }
    }
    assert!(quietest < 512, "300 rounds left {quietest} bytes");
    assert_eq!(comasync_windows::handles::registered_count(), 0);
}
