//! A windows-rs server with its own `ICallFactory` and server call object (the example's
//! `Calculator`, written as for Windows), hosted by comasync's call machinery
//! ([`comasync_windows::CallFactory::host`]) as comasync's stub hosts one: per call, the host
//! makes a server call object, calls its `Begin_`, waits for it, and returns its `Finish_` to
//! the client's comasync call object.

#[path = "../examples/windows_rs/calculator.rs"]
mod calculator;

use calculator::{AsyncICalculator, AsyncICalculator_Impl, Calculator};
use comasync::hresult as h;
use comasync_windows::{call_object_faces, AsyncCall, CallFactory};
use windows::core::{implement, ComObject, IUnknown, Interface, Result, GUID, HRESULT};
use windows::Win32::System::Com::{
    ICallFactory, ICancelMethodCalls, ISynchronize, ISynchronizeHandle,
};

/// The client's call object: each method drives the server's own call object.
#[implement(AsyncICalculator, ISynchronize, ISynchronizeHandle, ICancelMethodCalls)]
struct HostedCall {
    call: AsyncCall,
}
call_object_faces!(HostedCall_Impl, call);

impl AsyncICalculator_Impl for HostedCall_Impl {
    unsafe fn Begin_Add(&self, a: i32, b: i32) -> HRESULT {
        self.call
            .begin(move |server_call: &AsyncICalculator| unsafe {
                let begun = server_call.Begin_Add(a, b);
                if begun.is_err() {
                    return (begun, 0);
                }
                if let Err(e) = server_call
                    .cast::<ISynchronize>()
                    .and_then(|s| s.Wait(0, u32::MAX))
                {
                    return (e.code(), 0);
                }
                let mut sum = 0;
                (server_call.Finish_Add(&mut sum), sum)
            })
    }
    unsafe fn Finish_Add(&self, sum: *mut i32) -> HRESULT {
        self.call.finish(|s: i32| unsafe { *sum = s })
    }
}

fn hosted(async_iid: GUID) -> ICallFactory {
    let server = ComObject::new(Calculator);
    CallFactory::host::<AsyncICalculator, _>(&server, async_iid, |call| HostedCall { call }.into())
}

fn code<T>(r: Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.code().0,
    }
}

#[test]
fn a_hosted_server_call_object_serves_the_clients_calls() {
    let factory = hosted(AsyncICalculator::IID);
    let call: AsyncICalculator =
        unsafe { factory.CreateCall(&AsyncICalculator::IID, None, &IUnknown::IID) }
            .unwrap()
            .cast()
            .unwrap();
    for (a, b) in [(2, 3), (40, 2)] {
        unsafe {
            assert_eq!(call.Begin_Add(a, b), HRESULT(0));
            call.cast::<ISynchronize>()
                .unwrap()
                .Wait(0, u32::MAX)
                .unwrap();
            let mut sum = 0;
            assert_eq!(call.Finish_Add(&mut sum), HRESULT(0));
            assert_eq!(sum, a + b);
        }
    }
}

#[test]
fn a_server_factory_that_refuses_the_call_fails_the_clients_call_with_its_code() {
    // The host asks the server for another asynchronous interface than it serves.
    let other = GUID::from_u128(0x8E2B7C12_4A5D_4E6F_9012_3A4B5C6D7E80);
    let factory = hosted(other);
    let call: IUnknown = unsafe { factory.CreateCall(&other, None, &IUnknown::IID) }.unwrap();
    // The client's call object is the host's; its interface is AsyncICalculator's layout.
    let call: AsyncICalculator = call.cast().unwrap();
    unsafe {
        assert_eq!(call.Begin_Add(1, 1), HRESULT(0));
        let mut sum = 7;
        assert_eq!(call.Finish_Add(&mut sum).0, h::E_NOINTERFACE.0);
        assert_eq!(sum, 7); // no out-parameters from a failed call
    }
    assert_eq!(
        code(unsafe { factory.CreateCall(&AsyncICalculator::IID, None, &IUnknown::IID) }),
        h::E_NOINTERFACE.0
    );
}
