//! Cancellation: `ICancelMethodCalls` (implemented by every call object) and the per-thread
//! `CoEnableCallCancellation`/`CoDisableCallCancellation` counter.
//!
//! Readings (spec 1.7, 1.8, 3.1, D3, D7, D9, D14):
//!
//! * `Cancel(s)` marks the call cancelled at once (`TestCancel` → `RPC_E_CALL_CANCELED`), then
//!   waits up to `s` seconds (`RPC_C_CANCEL_INFINITE_TIMEOUT` = forever, 0 = not at all) for
//!   the server. If the server completes in time: `RPC_E_CALL_COMPLETE`, and `Finish_` returns
//!   the server's result. Otherwise COM completes the call locally: `S_OK`, the call is
//!   signaled, and `Finish_` returns `RPC_E_CALL_CANCELED` (0x80010002). `Finish_` must still be
//!   called; `Begin_` stays busy until then.
//! * Already cancelled → `RPC_E_CALL_CANCELED`; nothing to cancel → `RPC_E_CALL_COMPLETE`.
//! * The asynchronous `Cancel` does not depend on the thread's enable count, so it never
//!   returns `CO_E_CANCEL_DISABLED` (the count governs synchronous calls only, D7/D8).
//! * The enable count is per thread and survives apartment init/uninit; a disable with the
//!   count at zero returns `CO_E_CANCEL_DISABLED` (Windows and Wine, D9).
//!
//! Synchronous calls (spec 1.8, D7, D8): a synchronous call through a proxy registers its
//! cancel object for its thread while it waits, cancellable if the thread's enable count was
//! above zero when the call was made. [`co_cancel_call`] and [`co_get_cancel_object`] find
//! the innermost such call of a thread (never an asynchronous call); a cancelled synchronous
//! call returns `RPC_E_CALL_CANCELED` to its caller. On the server side, a synchronous call's
//! method sees it as its call context: [`co_test_cancel`].

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, Weak};

use crate::guid::{IID_ICancelMethodCalls, IID};
use crate::hresult::{
    Error, Result, CO_E_CANCEL_DISABLED, E_INVALIDARG, E_NOINTERFACE, HRESULT, RPC_E_CALL_COMPLETE,
    S_OK,
};
use crate::unknown::{ComPtr, IUnknown, Interface, RefCount};

/// `RPC_C_CANCEL_INFINITE_TIMEOUT` (−1 as a `ULONG`): `Cancel` waits for the server forever.
pub const RPC_C_CANCEL_INFINITE_TIMEOUT: u32 = u32::MAX;

/// `ICancelMethodCalls`: cancel a call, or ask whether it was cancelled.
///
/// ```
/// use comasync::call::{create_call_as, FinishMode, ICallFactory, ICancelMethodCalls};
/// use comasync::hresult::{RPC_E_CALL_CANCELED, RPC_E_CALL_COMPLETE, RPC_S_CALLPENDING, S_OK};
/// use comasync::simple_stream::{AsyncISimpleStream, SimpleStream};
/// use comasync::unknown::Interface;
///
/// let (server, _calls) = SimpleStream::create_manual(b"data".to_vec(), FinishMode::Blocking);
/// let factory = server.query::<dyn ICallFactory>()?;
/// let call = create_call_as::<dyn AsyncISimpleStream>(&*factory, &<dyn AsyncISimpleStream as Interface>::IID)?;
/// let cancel = call.query::<dyn ICancelMethodCalls>()?;
/// assert_eq!(call.begin_read(4), S_OK); // the server never answers
/// assert_eq!(cancel.test_cancel(), RPC_S_CALLPENDING);
/// assert_eq!(cancel.cancel(0), S_OK); // no wait: COM completes the call locally
/// assert_eq!(cancel.test_cancel(), RPC_E_CALL_CANCELED);
/// assert_eq!(call.finish_read(), (RPC_E_CALL_CANCELED, Vec::new()));
/// assert_eq!(cancel.cancel(0), RPC_E_CALL_COMPLETE); // nothing left to cancel
/// # Ok::<(), comasync::Error>(())
/// ```
pub trait ICancelMethodCalls: IUnknown {
    /// `Cancel(ulSeconds)`: see the [module documentation](self).
    fn cancel(&self, seconds: u32) -> HRESULT;
    /// `TestCancel()`: `RPC_E_CALL_CANCELED` if the call was cancelled, otherwise
    /// `RPC_S_CALLPENDING`.
    fn test_cancel(&self) -> HRESULT;
}

impl Interface for dyn ICancelMethodCalls {
    const IID: IID = IID_ICancelMethodCalls;
    const NAME: &'static str = "ICancelMethodCalls";
}

thread_local! {
    static ENABLED: Cell<u32> = const { Cell::new(0) };
}

/// `CoEnableCallCancellation(pReserved)`: counts one more enable on this thread. `pReserved`
/// must be `None` (C's `NULL`), else `E_INVALIDARG`.
///
/// ```
/// use comasync::call::{co_enable_call_cancellation, co_disable_call_cancellation};
/// use comasync::hresult::{S_OK, CO_E_CANCEL_DISABLED};
/// assert_eq!(co_disable_call_cancellation(None), CO_E_CANCEL_DISABLED);
/// assert_eq!(co_enable_call_cancellation(None), S_OK);
/// assert_eq!(co_disable_call_cancellation(None), S_OK);
/// ```
pub fn co_enable_call_cancellation(reserved: Option<&mut dyn Any>) -> HRESULT {
    if reserved.is_some() {
        return E_INVALIDARG;
    }
    ENABLED.with(|c| c.set(c.get().saturating_add(1)));
    S_OK
}

/// `CoDisableCallCancellation(pReserved)`: undoes one enable; `CO_E_CANCEL_DISABLED` if there
/// is none to undo (D9). `pReserved` must be `None`.
///
/// ```
/// use comasync::call::{co_disable_call_cancellation, co_enable_call_cancellation};
/// use comasync::hresult::{CO_E_CANCEL_DISABLED, E_INVALIDARG, S_OK};
///
/// assert_eq!(co_enable_call_cancellation(None), S_OK);
/// assert_eq!(co_disable_call_cancellation(Some(&mut 0u32)), E_INVALIDARG); // pReserved ≠ NULL
/// assert_eq!(co_disable_call_cancellation(None), S_OK);
/// assert_eq!(co_disable_call_cancellation(None), CO_E_CANCEL_DISABLED); // none left to undo
/// ```
pub fn co_disable_call_cancellation(reserved: Option<&mut dyn Any>) -> HRESULT {
    if reserved.is_some() {
        return E_INVALIDARG;
    }
    ENABLED.with(|c| match c.get() {
        0 => CO_E_CANCEL_DISABLED,
        n => {
            c.set(n - 1);
            S_OK
        }
    })
}

/// Whether cancellation of synchronous calls is enabled on this thread (the enable count is
/// above zero).
///
/// ```
/// use comasync::call::{call_cancellation_enabled, co_disable_call_cancellation, co_enable_call_cancellation};
///
/// assert!(!call_cancellation_enabled()); // a new thread starts disabled
/// co_enable_call_cancellation(None);
/// co_enable_call_cancellation(None); // nested enables are counted
/// co_disable_call_cancellation(None);
/// assert!(call_cancellation_enabled());
/// co_disable_call_cancellation(None);
/// assert!(!call_cancellation_enabled());
/// ```
pub fn call_cancellation_enabled() -> bool {
    ENABLED.with(|c| c.get() > 0)
}

/// A thread's pending synchronous calls, innermost last: each call's cancel object and
/// whether it may be cancelled (the thread's enable count when it was made).
type SyncCalls = HashMap<u32, Vec<(ComPtr<dyn ICancelMethodCalls>, bool)>>;

fn sync_calls() -> &'static parking_lot::Mutex<SyncCalls> {
    static CALLS: OnceLock<parking_lot::Mutex<SyncCalls>> = OnceLock::new();
    CALLS.get_or_init(Default::default)
}

/// A synchronous call in progress on the current thread, findable by [`co_cancel_call`] until
/// the guard drops.
pub(crate) struct SyncCall {
    thread: u32,
}

impl SyncCall {
    pub(crate) fn enter(cancel: ComPtr<dyn ICancelMethodCalls>) -> SyncCall {
        let thread = crate::apartment::get_current_thread_id();
        let cancellable = call_cancellation_enabled();
        sync_calls()
            .lock()
            .entry(thread)
            .or_default()
            .push((cancel, cancellable));
        SyncCall { thread }
    }
}

impl Drop for SyncCall {
    fn drop(&mut self) {
        let popped = {
            let mut calls = sync_calls().lock();
            let popped = calls.get_mut(&self.thread).and_then(Vec::pop);
            if calls.get(&self.thread).is_some_and(Vec::is_empty) {
                calls.remove(&self.thread);
            }
            popped
        };
        drop(popped); // released outside the lock
    }
}

fn innermost(thread: u32) -> Option<(ComPtr<dyn ICancelMethodCalls>, bool)> {
    let thread = if thread == 0 {
        crate::apartment::get_current_thread_id()
    } else {
        thread
    };
    sync_calls()
        .lock()
        .get(&thread)
        .and_then(|v| v.last().cloned())
}

/// `CoCancelCall(dwThreadId, ulTimeout)`: cancels the innermost pending synchronous call of
/// thread `thread_id` (0: the current thread), waiting up to `timeout_s` seconds for the
/// server (`RPC_C_CANCEL_INFINITE_TIMEOUT`: forever). `S_OK`; `E_NOINTERFACE` if the thread
/// has no synchronous call pending; `CO_E_CANCEL_DISABLED` if cancellation was not enabled on
/// it when the call was made; `RPC_E_CALL_COMPLETE` / `RPC_E_CALL_CANCELED` as `Cancel`.
///
/// ```
/// use comasync::call::co_cancel_call;
/// use comasync::hresult::E_NOINTERFACE;
/// assert_eq!(co_cancel_call(0, 0), E_NOINTERFACE); // no synchronous call in progress
/// ```
pub fn co_cancel_call(thread_id: u32, timeout_s: u32) -> HRESULT {
    match innermost(thread_id) {
        None => E_NOINTERFACE,
        Some((_, false)) => CO_E_CANCEL_DISABLED,
        Some((cancel, true)) => cancel.cancel(timeout_s),
    }
}

/// `CoGetCancelObject(dwThreadId, iid, ppUnk)`: the cancel object of the innermost pending
/// synchronous call of thread `thread_id` (0: the current thread); `E_NOINTERFACE` if there is
/// none or `iid` is not `IID_ICancelMethodCalls`. Never an asynchronous call's (D7).
///
/// ```
/// use comasync::call::{co_get_cancel_object, ICancelMethodCalls};
/// use comasync::hresult::E_NOINTERFACE;
/// use comasync::unknown::Interface;
/// let iid = <dyn ICancelMethodCalls as Interface>::IID;
/// assert_eq!(co_get_cancel_object(0, &iid).unwrap_err().code(), E_NOINTERFACE);
/// ```
pub fn co_get_cancel_object(thread_id: u32, iid: &IID) -> Result<ComPtr<dyn ICancelMethodCalls>> {
    if *iid != IID_ICancelMethodCalls {
        return Err(Error(E_NOINTERFACE));
    }
    innermost(thread_id)
        .map(|(c, _)| c)
        .ok_or(Error(E_NOINTERFACE))
}

type TestCancel = Arc<dyn Fn() -> HRESULT + Send + Sync>;

crate::sync::prim::waiter_local! {
    static CONTEXT: RefCell<Vec<TestCancel>> = const { RefCell::new(Vec::new()) };
}

/// The server side of a synchronous call: while a stub runs a server's method for it, the
/// call is that thread's call context.
pub(crate) struct CallContext;

impl CallContext {
    pub(crate) fn enter(test: impl Fn() -> HRESULT + Send + Sync + 'static) -> CallContext {
        CONTEXT.with(|c| c.borrow_mut().push(Arc::new(test)));
        CallContext
    }
}

impl Drop for CallContext {
    fn drop(&mut self) {
        let _ = CONTEXT.try_with(|c| c.borrow_mut().pop());
    }
}

/// `CoGetCallContext(IID_ICancelMethodCalls)`: the synchronous call whose server method runs
/// on this thread, as an `ICancelMethodCalls` (`TestCancel` reports the client's cancel;
/// `Cancel` is the client's: `E_NOTIMPL` here, as on a stub's outer). `None` if there is none.
pub(crate) fn call_context_cancel() -> Option<ComPtr<dyn ICancelMethodCalls>> {
    let test = CONTEXT.with(|c| c.borrow().last().cloned())?;
    let object = Arc::new_cyclic(|me| ContextCancel {
        refs: RefCount::new(),
        me: me.clone(),
        test,
    });
    Some(ComPtr::new(object as Arc<dyn ICancelMethodCalls>))
}

/// The `ICancelMethodCalls` of a synchronous call's context.
struct ContextCancel {
    refs: RefCount,
    me: Weak<ContextCancel>,
    test: TestCancel,
}

impl ICancelMethodCalls for ContextCancel {
    fn cancel(&self, _seconds: u32) -> HRESULT {
        crate::hresult::E_NOTIMPL
    }
    fn test_cancel(&self) -> HRESULT {
        (self.test)()
    }
}

crate::com_object!([] ContextCancel {
    interfaces: [dyn ICancelMethodCalls],
});

/// `CoTestCancel()`, inside a server's method serving a synchronous call through a stub:
/// `RPC_E_CALL_CANCELED` if the client cancelled it, else `RPC_S_CALLPENDING`. With no such
/// call on the thread (not a server method, or serving an asynchronous call):
/// `RPC_E_CALL_COMPLETE`, what `CoGetCallContext` answers then (Wine, spec 1.8).
///
/// ```
/// use comasync::call::co_test_cancel;
/// use comasync::hresult::RPC_E_CALL_COMPLETE;
/// assert_eq!(co_test_cancel(), RPC_E_CALL_COMPLETE);
/// ```
pub fn co_test_cancel() -> HRESULT {
    let test = CONTEXT.with(|c| c.borrow().last().cloned());
    match test {
        Some(t) => t(),
        None => RPC_E_CALL_COMPLETE,
    }
}
