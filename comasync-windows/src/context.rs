//! The server side of a call served by this crate ([`crate::CallFactory`]): while a server's
//! method runs for a call, the call is the thread's *call context*.
//!
//! * `CoTestCancel()` answers for it: `RPC_E_CALL_CANCELED` once the client cancelled (or
//!   abandoned) the call, else `RPC_S_CALLPENDING`;
//! * `CoGetCallContext(IID_ICancelMethodCalls)` returns an `ICancelMethodCalls` for it
//!   (`TestCancel` as above; `Cancel` cancels the call as the client's `Cancel` does).
//!
//! With no call context on the thread, both answer what comasync's own
//! [`co_test_cancel`](comasync::call::co_test_cancel) answers there (a synchronous call served
//! by comasync's stub, or `RPC_E_CALL_COMPLETE`).
//!
//! Invariant: contexts nest (a stack per thread); each is popped by the guard that pushed it,
//! also when the method panics.

use std::cell::RefCell;
use std::sync::Arc;

use comasync::hresult::{E_NOINTERFACE, RPC_E_CALL_COMPLETE};
use windows_core::{implement, IUnknown, Interface, Result, GUID};

use crate::bindings::Windows::Win32::System::Com::{ICancelMethodCalls, ICancelMethodCalls_Impl};
use crate::{hr, ok};

type TestFn = Arc<dyn Fn() -> comasync::HRESULT + Send + Sync>;
type CancelFn = Arc<dyn Fn(u32) -> comasync::HRESULT + Send + Sync>;

/// One call's context: its server-side `TestCancel` and the client's `Cancel`.
#[derive(Clone)]
pub(crate) struct Context {
    pub(crate) test: TestFn,
    pub(crate) cancel: CancelFn,
}

thread_local! {
    static CONTEXT: RefCell<Vec<Context>> = const { RefCell::new(Vec::new()) };
}

/// The guard of an entered context.
pub(crate) struct Entered;

/// Makes `context` the thread's call context until the guard drops.
pub(crate) fn enter(context: Context) -> Entered {
    CONTEXT.with(|c| c.borrow_mut().push(context));
    Entered
}

impl Drop for Entered {
    fn drop(&mut self) {
        let _ = CONTEXT.try_with(|c| c.borrow_mut().pop());
    }
}

fn current() -> Option<Context> {
    CONTEXT.with(|c| c.borrow().last().cloned())
}

/// `CoTestCancel()`: the current call context's `TestCancel`, else comasync's answer.
pub fn co_test_cancel() -> comasync::HRESULT {
    match current() {
        Some(c) => (c.test)(),
        None => comasync::call::co_test_cancel(),
    }
}

/// `CoGetCallContext(riid)`: the current call's `ICancelMethodCalls` (for `riid`
/// `IID_ICancelMethodCalls` or `IID_IUnknown`); `E_NOINTERFACE` for another `riid`;
/// `RPC_E_CALL_COMPLETE` with no call context on the thread.
pub fn co_get_call_context(riid: &GUID) -> Result<IUnknown> {
    let Some(context) = current() else {
        return Err(hr(RPC_E_CALL_COMPLETE).into());
    };
    if *riid != ICancelMethodCalls::IID && *riid != IUnknown::IID {
        return Err(hr(E_NOINTERFACE).into());
    }
    let cancel: ICancelMethodCalls = CallContext { context }.into();
    if *riid == IUnknown::IID {
        cancel.cast()
    } else {
        // The caller asked for ICancelMethodCalls: hand out that pointer (as the ABI wants).
        Ok(cancel.into())
    }
}

/// The object `CoGetCallContext` returns.
#[implement(ICancelMethodCalls)]
struct CallContext {
    context: Context,
}

impl ICancelMethodCalls_Impl for CallContext_Impl {
    fn Cancel(&self, ulseconds: u32) -> Result<()> {
        ok((self.context.cancel)(ulseconds))
    }
    fn TestCancel(&self) -> Result<()> {
        ok((self.context.test)())
    }
}
