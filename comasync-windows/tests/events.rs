//! The system synchronization objects through windows-rs: `CoCreateInstance` of
//! `CLSID_ManualResetEvent`, `CLSID_StdEvent` and `CLSID_SynchronizeContainer`, their methods,
//! and `CoWaitForMultipleHandles` on their handles — each giving comasync's `HRESULT`.

use comasync::hresult as h;
use comasync::sync as cs;
use comasync_windows::{CLSID_MANUAL_RESET_EVENT, CLSID_STD_EVENT, CLSID_SYNCHRONIZE_CONTAINER};
use windows::core::{implement, IUnknown, Interface, Result, GUID};
use windows::Win32::Foundation::HANDLE;
use windows::Win32::System::Com::{
    CoCreateInstance, CoWaitForMultipleHandles, ISynchronize, ISynchronizeContainer,
    ISynchronizeEvent, ISynchronizeHandle, ISynchronize_Impl, CLSCTX_INPROC_SERVER, COWAIT_WAITALL,
};

const INFINITE: u32 = u32::MAX;

fn code<T>(r: Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.code().0,
    }
}

fn create<T: Interface>(clsid: &GUID) -> T {
    unsafe { CoCreateInstance(clsid, None, CLSCTX_INPROC_SERVER) }.expect("CoCreateInstance")
}

fn handle_of(sync: &ISynchronize) -> HANDLE {
    unsafe { sync.cast::<ISynchronizeHandle>().unwrap().GetHandle() }.unwrap()
}

#[test]
fn a_manual_reset_event_waits_signals_and_resets_with_comasyncs_hresults() {
    let ours: ISynchronize = create(&CLSID_MANUAL_RESET_EVENT);
    let theirs = cs::ManualResetEvent::create();
    unsafe {
        assert_eq!(code(ours.Wait(0, 0)), theirs.wait(0, 0).0); // RPC_S_CALLPENDING
        assert_eq!(code(ours.Signal()), theirs.signal().0);
        assert_eq!(code(ours.Wait(0, INFINITE)), theirs.wait(0, INFINITE).0);
        assert_eq!(code(ours.Wait(0, 0)), 0); // manual reset: stays signaled
        assert_eq!(code(ours.Reset()), theirs.reset().0);
        assert_eq!(code(ours.Wait(0, 0)), h::RPC_S_CALLPENDING.0);
        assert_eq!(code(ours.Wait(0x100, 0)), theirs.wait(0x100, 0).0); // E_INVALIDARG
    }
    assert_eq!(code(ours.cast::<ISynchronizeEvent>()), h::E_NOINTERFACE.0);
}

#[test]
fn a_std_event_is_auto_reset_and_takes_an_assigned_handle() {
    let ours: ISynchronize = create(&CLSID_STD_EVENT);
    let event: ISynchronizeEvent = ours.cast().unwrap();
    let other: ISynchronize = create(&CLSID_MANUAL_RESET_EVENT);
    let other_handle = handle_of(&other);
    unsafe {
        ours.Signal().unwrap();
        assert_eq!(code(ours.Wait(0, 0)), 0);
        assert_eq!(code(ours.Wait(0, 0)), h::RPC_S_CALLPENDING.0); // auto reset
                                                                   // SetEventHandle: Signal now sets the assigned handle.
        event.SetEventHandle(&other_handle).unwrap();
        assert_eq!(event.GetHandle().unwrap(), other_handle);
        ours.Signal().unwrap();
        assert_eq!(code(other.Wait(0, 0)), 0);
        // A null pointer: comasync's answer for a missing handle.
        let theirs = cs::StdEvent::create()
            .query::<dyn cs::ISynchronizeEvent>()
            .unwrap();
        assert_eq!(
            code(event.SetEventHandle(std::ptr::null())),
            theirs.set_event_handle(None).0
        );
        // A value nobody handed out: E_HANDLE.
        let bogus = HANDLE(0x1234 as *mut _);
        assert_eq!(code(event.SetEventHandle(&bogus)), h::E_HANDLE.0);
    }
}

#[test]
fn co_wait_for_multiple_handles_waits_on_event_handles_with_comasyncs_hresults() {
    let a: ISynchronize = create(&CLSID_MANUAL_RESET_EVENT);
    let b: ISynchronize = create(&CLSID_MANUAL_RESET_EVENT);
    let handles = [handle_of(&a), handle_of(&b)];
    let theirs = [
        cs::HANDLE::create_event(true, false),
        cs::HANDLE::create_event(true, false),
    ];
    let mut i = 0;
    unsafe {
        let expected = cs::co_wait_for_multiple_handles(0, 0, Some(&theirs), Some(&mut i));
        assert_eq!(code(CoWaitForMultipleHandles(0, 0, &handles)), expected.0); // RPC_S_CALLPENDING
        b.Signal().unwrap();
        theirs[1].set_event();
        assert_eq!(CoWaitForMultipleHandles(0, INFINITE, &handles).unwrap(), 1);
        let expected = cs::co_wait_for_multiple_handles(
            COWAIT_WAITALL.0 as u32,
            0,
            Some(&theirs),
            Some(&mut i),
        );
        assert_eq!(
            code(CoWaitForMultipleHandles(
                COWAIT_WAITALL.0 as u32,
                0,
                &handles
            )),
            expected.0
        );
        a.Signal().unwrap();
        assert_eq!(
            code(CoWaitForMultipleHandles(
                COWAIT_WAITALL.0 as u32,
                INFINITE,
                &handles
            )),
            0
        );
        // No handles, unknown flags, an unknown handle.
        let expected = cs::co_wait_for_multiple_handles(0, 0, Some(&[]), Some(&mut i));
        assert_eq!(code(CoWaitForMultipleHandles(0, 0, &[])), expected.0); // RPC_E_NO_SYNC
        let expected = cs::co_wait_for_multiple_handles(0x100, 0, Some(&theirs), Some(&mut i));
        assert_eq!(
            code(CoWaitForMultipleHandles(0x100, 0, &handles)),
            expected.0
        ); // E_INVALIDARG
        let bogus = HANDLE(0x1234 as *mut _);
        assert_eq!(
            code(CoWaitForMultipleHandles(0, 0, &[bogus])),
            h::E_HANDLE.0
        );
    }
}

#[test]
fn a_handle_is_invalid_once_its_object_is_gone() {
    let a: ISynchronize = create(&CLSID_MANUAL_RESET_EVENT);
    let handle = handle_of(&a);
    unsafe {
        a.Signal().unwrap();
        assert_eq!(CoWaitForMultipleHandles(0, 0, &[handle]).unwrap(), 0);
        drop(a);
        assert_eq!(
            code(CoWaitForMultipleHandles(0, 0, &[handle])),
            h::E_HANDLE.0
        );
    }
}

#[test]
fn co_create_instance_refuses_unknown_classes_interfaces_and_aggregation() {
    unsafe {
        let r: Result<ISynchronize> = CoCreateInstance(&GUID::zeroed(), None, CLSCTX_INPROC_SERVER);
        assert_eq!(code(r), h::REGDB_E_CLASSNOTREG.0);
        let r: Result<ISynchronizeEvent> =
            CoCreateInstance(&CLSID_MANUAL_RESET_EVENT, None, CLSCTX_INPROC_SERVER);
        assert_eq!(code(r), h::E_NOINTERFACE.0);
        let outer: IUnknown = create::<ISynchronize>(&CLSID_MANUAL_RESET_EVENT)
            .cast()
            .unwrap();
        let r: Result<ISynchronize> =
            CoCreateInstance(&CLSID_STD_EVENT, &outer, CLSCTX_INPROC_SERVER);
        assert_eq!(code(r), h::E_INVALIDARG.0); // as comasync: aggregated, only IUnknown
        let r: Result<IUnknown> = CoCreateInstance(&CLSID_STD_EVENT, &outer, CLSCTX_INPROC_SERVER);
        assert_eq!(code(r), h::CLASS_E_NOAGGREGATION.0); // a windows-rs object cannot be aggregated
    }
}

/// A user's own `ISynchronize` without a handle.
#[implement(ISynchronize)]
struct Handleless;

impl ISynchronize_Impl for Handleless_Impl {
    fn Wait(&self, _: u32, _: u32) -> Result<()> {
        Ok(())
    }
    fn Signal(&self) -> Result<()> {
        Ok(())
    }
    fn Reset(&self) -> Result<()> {
        Ok(())
    }
}

#[test]
fn a_synchronize_container_returns_the_object_that_was_signaled() {
    let container: ISynchronizeContainer = create(&CLSID_SYNCHRONIZE_CONTAINER);
    let theirs = cs::SynchronizeContainer::create();
    let mut got = None;
    unsafe {
        assert_eq!(
            code(container.WaitMultiple(0, 0)),
            theirs.wait_multiple(0, 0, Some(&mut got)).0
        ); // RPC_E_NO_SYNC
        let a: ISynchronize = create(&CLSID_MANUAL_RESET_EVENT);
        let b: ISynchronize = create(&CLSID_STD_EVENT);
        container.AddSynchronize(&a).unwrap();
        container.AddSynchronize(&b).unwrap();
        let their_a = cs::ManualResetEvent::create();
        assert_eq!(theirs.add_synchronize(Some(&their_a)), h::S_OK);
        assert_eq!(
            code(container.WaitMultiple(0, 0)),
            theirs.wait_multiple(0, 0, Some(&mut got)).0
        ); // RPC_E_TIMEOUT
        let expected = theirs.wait_multiple(COWAIT_WAITALL.0 as u32, 0, Some(&mut got));
        assert_eq!(
            code(container.WaitMultiple(COWAIT_WAITALL.0 as u32, 0)),
            expected.0
        ); // E_INVALIDARG
        b.Signal().unwrap();
        let signaled = container.WaitMultiple(0, INFINITE).unwrap();
        assert_eq!(
            signaled.cast::<IUnknown>().unwrap(),
            b.cast::<IUnknown>().unwrap()
        );
        // Null, and an object without ISynchronizeHandle: comasync's answers.
        assert_eq!(
            code(container.AddSynchronize(None)),
            theirs.add_synchronize(None).0
        ); // E_INVALIDARG
        let handleless: ISynchronize = Handleless.into();
        assert_eq!(
            code(container.AddSynchronize(&handleless)),
            h::E_NOINTERFACE.0
        );
    }
}
