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

use std::any::Any;
use std::cell::Cell;

use crate::guid::{IID_ICancelMethodCalls, IID};
use crate::hresult::{CO_E_CANCEL_DISABLED, E_INVALIDARG, HRESULT, S_OK};
use crate::unknown::{IUnknown, Interface};

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
