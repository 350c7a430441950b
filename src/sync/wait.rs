//! `CoWaitForMultipleHandles` and the `COWAIT_FLAGS`: waiting on one or many event handles.
//!
//! The argument checks follow what Wine's conformance tests pin on Windows (spec 1.9), in the
//! order Windows makes them:
//!
//! 1. a missing index out-pointer → `E_INVALIDARG`, nothing written;
//! 2. the index is set to 0;
//! 3. a missing handle array → `E_INVALIDARG`;
//! 4. unknown flag bits → `E_INVALIDARG` (documented; Windows itself is lenient here);
//! 5. zero handles → `RPC_E_NO_SYNC`;
//! 6. more than 64 handles, or a handle twice in a wait-all → `E_INVALIDARG` (0x80070057, the
//!    `ERROR_INVALID_PARAMETER` of `WaitForMultipleObjectsEx`).
//!
//! Then: wait-any returns the lowest signaled index and consumes that handle only;
//! `COWAIT_WAITALL` waits for all, consumes every auto-reset handle at once, and returns index
//! 0; a timeout returns `RPC_S_CALLPENDING` with index 0.
//!
//! Apartments (spec 1.9, 3.7): in an MTA, or on a thread without an apartment, the wait
//! blocks. In an STA a wait that would block enters the modal loop
//! ([`crate::apartment`]): it dispatches the calls queued for the apartment while it waits,
//! woken by the queue's own event beside the handles (no polling); a handle already signaled
//! is taken at once and nothing is dispatched. An STA waits on at most 63 handles (one slot is
//! the queue's, as on Windows): 64 → `E_INVALIDARG`.

use super::event::{wait_handles, HANDLE, MAXIMUM_WAIT_OBJECTS};
use crate::hresult::{E_HANDLE, E_INVALIDARG, HRESULT, RPC_E_NO_SYNC, RPC_S_CALLPENDING, S_OK};

/// Wait for a signal, the default.
pub const COWAIT_DEFAULT: u32 = 0;
/// Wait for every handle (`CoWaitForMultipleHandles`, `ISynchronize::Wait`); not valid for
/// `ISynchronizeContainer::WaitMultiple`.
pub const COWAIT_WAITALL: u32 = 1;
/// Alertable wait. Accepted; comasync has no APCs, so it never returns `WAIT_IO_COMPLETION`.
pub const COWAIT_ALERTABLE: u32 = 2;
/// Return when input is queued. Accepted; comasync has no input queue.
pub const COWAIT_INPUTAVAILABLE: u32 = 4;
/// Dispatch calls while waiting (ASTA). Accepted.
pub const COWAIT_DISPATCH_CALLS: u32 = 8;
/// Dispatch window messages while waiting. Accepted.
pub const COWAIT_DISPATCH_WINDOW_MESSAGES: u32 = 0x10;
/// Every flag bit Windows defines.
pub const COWAIT_VALID_FLAGS: u32 = 0x1F;
/// An infinite timeout.
pub const INFINITE: u32 = 0xFFFF_FFFF;

/// `CoWaitForMultipleHandles(dwFlags, dwTimeout, cHandles, pHandles, lpdwindex)`.
///
/// `handles` and `index` model the C pointers: `None` is `NULL`. Returns the `HRESULT`; on
/// `S_OK`, `*index` is the index of the signaled handle (0 for `COWAIT_WAITALL`).
///
/// ```
/// use comasync::hresult::{S_OK, RPC_S_CALLPENDING, RPC_E_NO_SYNC};
/// use comasync::sync::{co_wait_for_multiple_handles, HANDLE, COWAIT_DEFAULT};
///
/// let a = HANDLE::create_event(false, false);
/// let b = HANDLE::create_event(false, true);
/// let mut index = 99;
/// let hr = co_wait_for_multiple_handles(COWAIT_DEFAULT, 0, Some(&[a.clone(), b.clone()]), Some(&mut index));
/// assert_eq!((hr, index), (S_OK, 1));
/// // b was auto-reset and is consumed: now nothing is signaled.
/// let hr = co_wait_for_multiple_handles(COWAIT_DEFAULT, 0, Some(&[a, b]), Some(&mut index));
/// assert_eq!((hr, index), (RPC_S_CALLPENDING, 0));
/// assert_eq!(co_wait_for_multiple_handles(0, 0, Some(&[]), Some(&mut index)), RPC_E_NO_SYNC);
/// ```
pub fn co_wait_for_multiple_handles(
    flags: u32,
    timeout_ms: u32,
    handles: Option<&[HANDLE]>,
    index: Option<&mut u32>,
) -> HRESULT {
    let Some(index) = index else {
        return E_INVALIDARG;
    };
    *index = 0;
    let Some(handles) = handles else {
        return E_INVALIDARG;
    };
    if flags & !COWAIT_VALID_FLAGS != 0 {
        return E_INVALIDARG;
    }
    if handles.is_empty() {
        return RPC_E_NO_SYNC;
    }
    if handles.len() > MAXIMUM_WAIT_OBJECTS
        || (handles.len() == MAXIMUM_WAIT_OBJECTS && crate::apartment::current_sta().is_some())
    {
        return E_INVALIDARG;
    }
    let all = flags & COWAIT_WAITALL != 0;
    if all && has_duplicates(handles) {
        return E_INVALIDARG;
    }
    match wait_checked(handles, all, timeout_ms) {
        Ok(Some(i)) => {
            *index = i as u32;
            S_OK
        }
        Ok(None) => RPC_S_CALLPENDING,
        Err(hr) => hr,
    }
}

/// The wait, with closed handles reported as Win32 reports invalid ones: `E_HANDLE` before
/// waiting if one is closed already, and for a wait that a closing ended (for a wait-any, if
/// the handle it returned was closed; for a wait-all, if any was).
pub(crate) fn wait_checked(
    handles: &[HANDLE],
    all: bool,
    timeout_ms: u32,
) -> Result<Option<usize>, HRESULT> {
    let closed = |hs: &[HANDLE]| hs.iter().any(HANDLE::is_closed);
    if closed(handles) {
        return Err(E_HANDLE);
    }
    let waited = match timeout_ms {
        0 => wait_handles(handles, all, 0),
        _ => match crate::apartment::current_sta() {
            Some(sta) => crate::apartment::sta_wait(&sta, handles, all, timeout_ms),
            None => wait_handles(handles, all, timeout_ms),
        },
    };
    match waited {
        Some(i) if closed(if all { handles } else { &handles[i..=i] }) => Err(E_HANDLE),
        r => Ok(r),
    }
}

fn has_duplicates(handles: &[HANDLE]) -> bool {
    handles
        .iter()
        .enumerate()
        .any(|(i, h)| handles[..i].iter().any(|g| g == h))
}

/// [`wait_single`] when it has to wait: in an STA, dispatching; elsewhere, blocking. Out of
/// line, so that a `Wait(0)` or a wait on a signaled handle stays small.
#[cold]
fn wait_single_blocking(handle: &HANDLE, timeout_ms: u32) -> bool {
    match crate::apartment::current_sta() {
        Some(sta) => {
            crate::apartment::sta_wait(&sta, std::slice::from_ref(handle), false, timeout_ms)
                .is_some()
        }
        None => handle.wait_one(timeout_ms),
    }
}

/// `ISynchronize::Wait` on a single handle: flag check, then the wait. `S_OK` or
/// `RPC_S_CALLPENDING` (spec D1), or `E_INVALIDARG` for unknown flags.
#[inline]
pub(crate) fn wait_single(handle: &HANDLE, flags: u32, timeout_ms: u32) -> HRESULT {
    if flags & !COWAIT_VALID_FLAGS != 0 {
        return E_INVALIDARG;
    }
    let signaled = if timeout_ms != 0 && !handle.is_signaled() {
        wait_single_blocking(handle, timeout_ms)
    } else {
        handle.wait_one(timeout_ms)
    };
    if signaled {
        if handle.is_closed() {
            E_HANDLE
        } else {
            S_OK
        }
    } else {
        RPC_S_CALLPENDING
    }
}
