//! A windows-rs interface pair, a server for it, and the call-object glue that serves it
//! through comasync ([`comasync_windows::CallFactory`]).
#![allow(dead_code, non_snake_case)]

use std::sync::atomic::{AtomicI32, AtomicUsize, Ordering};
use std::sync::Arc;

use comasync::sync::{co_wait_for_multiple_handles, HANDLE as Event, INFINITE};
use comasync_windows::{call_object_faces, AsyncCall, CallFactory};
use windows::core::Result;
use windows::core::{implement, interface, ComObject, IUnknown, IUnknown_Vtbl, Interface, HRESULT};
use windows::Win32::System::Com::{
    CoGetCallContext, CoTestCancel, ICallFactory, ICancelMethodCalls, ISynchronize,
    ISynchronizeHandle, ISynchronize_Impl,
};

/// `ICalculator`, as a windows-rs crate declares it.
#[interface("6D1F2A40-5B3C-4D2E-9F10-1A2B3C4D5E70")]
pub unsafe trait ICalculator: IUnknown {
    /// `Add(a, b, &sum)`.
    pub fn Add(&self, a: i32, b: i32, sum: *mut i32) -> HRESULT;
    /// `Slow(&seen)`: waits at the server's gate; `seen` is what `CoTestCancel` said then.
    pub fn Slow(&self, seen: *mut i32) -> HRESULT;
}

/// `AsyncICalculator`, its `async_uuid` twin.
#[interface("6D1F2A41-5B3C-4D2E-9F10-1A2B3C4D5E70")]
pub unsafe trait AsyncICalculator: IUnknown {
    pub fn Begin_Add(&self, a: i32, b: i32) -> HRESULT;
    pub fn Finish_Add(&self, sum: *mut i32) -> HRESULT;
    pub fn Begin_Slow(&self) -> HRESULT;
    pub fn Finish_Slow(&self, seen: *mut i32) -> HRESULT;
}

/// What the server saw inside `Slow`: `CoTestCancel`, and `TestCancel` on
/// `CoGetCallContext`'s cancel object.
#[derive(Default)]
pub struct Seen {
    pub co_test_cancel: AtomicI32,
    pub context_test_cancel: AtomicI32,
}

/// The server: a plain windows-rs `#[implement]` object (`Send + Sync`).
#[implement(ICalculator)]
pub struct Calculator {
    /// Set by `Slow` once it runs; `Slow` then waits for `gate`, and sets `done` last.
    pub entered: Event,
    pub gate: Event,
    pub done: Event,
    pub seen: Arc<Seen>,
    pub drops: Arc<AtomicUsize>,
}

impl Calculator {
    pub fn new() -> Calculator {
        Calculator {
            entered: Event::create_event(true, false),
            gate: Event::create_event(true, false),
            done: Event::create_event(true, false),
            seen: Arc::default(),
            drops: Arc::default(),
        }
    }
}

impl Drop for Calculator {
    fn drop(&mut self) {
        self.drops.fetch_add(1, Ordering::SeqCst);
    }
}

fn code<T>(r: windows::core::Result<T>) -> i32 {
    match r {
        Ok(_) => 0,
        Err(e) => e.code().0,
    }
}

impl ICalculator_Impl for Calculator_Impl {
    unsafe fn Add(&self, a: i32, b: i32, sum: *mut i32) -> HRESULT {
        unsafe { *sum = a + b };
        HRESULT(0)
    }
    unsafe fn Slow(&self, seen: *mut i32) -> HRESULT {
        self.entered.set_event();
        let mut i = 0;
        let _ = co_wait_for_multiple_handles(
            0,
            INFINITE,
            Some(std::slice::from_ref(&self.gate)),
            Some(&mut i),
        );
        let co = code(unsafe { CoTestCancel() });
        let context = unsafe { CoGetCallContext::<ICancelMethodCalls>() }
            .and_then(|c| unsafe { c.TestCancel() });
        self.seen.co_test_cancel.store(co, Ordering::SeqCst);
        self.seen
            .context_test_cancel
            .store(code(context), Ordering::SeqCst);
        unsafe { *seen = co };
        self.done.set_event();
        HRESULT(0)
    }
}

/// The call object: what MIDL generates on Windows, one line per method.
#[implement(AsyncICalculator, ISynchronize, ISynchronizeHandle, ICancelMethodCalls)]
pub struct CalculatorCall {
    call: AsyncCall,
}
call_object_faces!(CalculatorCall_Impl, call);

impl AsyncICalculator_Impl for CalculatorCall_Impl {
    unsafe fn Begin_Add(&self, a: i32, b: i32) -> HRESULT {
        self.call.begin(move |s: &ICalculator| {
            let mut sum = 0;
            (unsafe { s.Add(a, b, &mut sum) }, sum)
        })
    }
    unsafe fn Finish_Add(&self, sum: *mut i32) -> HRESULT {
        self.call.finish(|v: i32| unsafe { *sum = v })
    }
    unsafe fn Begin_Slow(&self) -> HRESULT {
        self.call.begin(move |s: &ICalculator| {
            let mut seen = 0;
            (unsafe { s.Slow(&mut seen) }, seen)
        })
    }
    unsafe fn Finish_Slow(&self, seen: *mut i32) -> HRESULT {
        self.call.finish(|v: i32| unsafe { *seen = v })
    }
}

/// The proxy's `ICallFactory` for `server`.
pub fn factory(server: &ComObject<Calculator>) -> ICallFactory {
    CallFactory::create::<ICalculator, _>(server, AsyncICalculator::IID, |call| {
        CalculatorCall { call }.into()
    })
}

/// `CreateCall(IID_AsyncICalculator, NULL, IID_AsyncICalculator)`.
pub fn create_call(factory: &ICallFactory) -> AsyncICalculator {
    let unk = unsafe { factory.CreateCall(&AsyncICalculator::IID, None, &AsyncICalculator::IID) }
        .expect("CreateCall");
    unk.cast().expect("AsyncICalculator")
}

/// A client's completion-callback outer: `Signal` sets an event the test waits on.
#[implement(ISynchronize)]
pub struct Callback {
    pub signals: comasync::sync::HANDLE,
}

impl Callback {
    pub fn new() -> Callback {
        Callback {
            signals: comasync::sync::HANDLE::create_event(false, false),
        }
    }
}

impl ISynchronize_Impl for Callback_Impl {
    fn Wait(&self, _: u32, _: u32) -> Result<()> {
        Ok(())
    }
    fn Signal(&self) -> Result<()> {
        self.signals.set_event();
        Ok(())
    }
    fn Reset(&self) -> Result<()> {
        Ok(())
    }
}
