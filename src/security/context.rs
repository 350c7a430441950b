//! The per-thread security state: the thread's process identity, the server code running on
//! it (with its call context), and its impersonation token; `CoGetCallContext`,
//! `CoImpersonateClient` and `CoRevertToSelf`.
//!
//! # Invariants
//!
//! * Server code run by comasync (a synchronous method served by a stub, a server call
//!   object's `Begin_` and `Finish_`, the server's `CreateCall`) runs inside a
//!   *server-code frame*: it starts with no impersonation token and, when the frame ends
//!   (also by a panic), the thread's token is what it was before the frame. So no identity
//!   stays on a pool or STA thread after a call, and no call sees another call's token (a
//!   call dispatched inside another one's modal wait starts clean too).
//! * A token taken outside its call's frame (a server's own worker, through a kept
//!   `IServerSecurity`) ends when the call's context is complete (at `Signal`); one taken by
//!   the call's server code inside its frame stays until the frame ends or `RevertToSelf`,
//!   even after `Signal` (spec 3.4). An ended token is never seen: it is dropped when read.
//! * `Finish_` runs without the `Begin_`'s token, in a complete context: it cannot
//!   impersonate.

use std::any::Any;
use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use crate::call::ICancelMethodCalls;
use crate::guid::{IID_ICancelMethodCalls, IID_IServerSecurity, IID_IUnknown, IID};
use crate::hresult::{Error, Result, E_NOINTERFACE, HRESULT, RPC_E_CALL_COMPLETE};
use crate::unknown::{set_out, ComPtr, IUnknown};

use super::identity::{Principal, DEFAULT_PROCESS_IDENTITY};
use super::server_security::{CallSecurity, IServerSecurity};

struct Token {
    call: Arc<CallSecurity>,
    /// Whom the thread acts as (`None`: an identify-level token, the thread acts as itself).
    acting: Option<Principal>,
    /// Taken by the call's own server code on this thread (inside its frame): valid until
    /// the frame ends (or `RevertToSelf`), even after `Signal` (spec 3.4). Taken elsewhere (a
    /// server's worker, through a kept `IServerSecurity`): valid until the call's context is
    /// complete.
    in_frame: bool,
}

impl Token {
    fn is_valid(&self) -> bool {
        self.in_frame || !self.call.is_complete()
    }
}

struct Frame {
    call: Option<Arc<CallSecurity>>,
    /// The server identity the code runs as, when there is no call to say it (a call's server
    /// code runs as [`CallSecurity::server`]: not cloned per frame).
    server: Option<Principal>,
    /// The thread's token when the frame began, restored when it ends.
    saved: Option<Token>,
}

struct ThreadState {
    process: Option<Principal>,
    frames: Vec<Frame>,
    token: Option<Token>,
}

crate::sync::prim::waiter_local! {
    static STATE: RefCell<ThreadState> = const {
        RefCell::new(ThreadState {
            process: None,
            frames: Vec::new(),
            token: None,
        })
    };
}

fn default_identity() -> Principal {
    default_ref().clone()
}

/// The identity every thread starts with, borrowed (one principal for the process).
fn default_ref() -> &'static Principal {
    static DEFAULT: OnceLock<Principal> = OnceLock::new();
    DEFAULT.get_or_init(|| Principal::new(DEFAULT_PROCESS_IDENTITY))
}

pub(crate) fn set_process(identity: Principal) -> Principal {
    STATE
        .with(|s| s.borrow_mut().process.replace(identity))
        .unwrap_or_else(default_identity)
}

pub(crate) fn process() -> Principal {
    STATE
        .with(|s| s.borrow().process.clone())
        .unwrap_or_else(default_identity)
}

/// The identity of the thread when it does not impersonate: the innermost server code's
/// server identity, else the thread's process identity.
pub(crate) fn base() -> Principal {
    STATE
        .with(|s| {
            let s = s.borrow();
            s.frames
                .last()
                .and_then(|f| match &f.call {
                    Some(call) => Some(call.server().clone()),
                    None => f.server.clone(),
                })
                .or_else(|| s.process.clone())
        })
        .unwrap_or_else(default_identity)
}

/// Whether `p` is the thread's [`base`] identity, compared without cloning it (no write to
/// the principal's reference count, which the threads serving this thread's calls share).
pub(crate) fn base_is(p: &Principal) -> bool {
    STATE
        .try_with(|s| {
            let s = s.borrow();
            match s.frames.last() {
                Some(f) => match (&f.call, &f.server) {
                    (Some(call), _) => call.server() == p,
                    (None, Some(server)) => server == p,
                    (None, None) => s.process.as_ref().unwrap_or(default_ref()) == p,
                },
                None => s.process.as_ref().unwrap_or(default_ref()) == p,
            }
        })
        .unwrap_or_else(|_| default_ref() == p)
}

pub(crate) fn current() -> Principal {
    let acting = STATE.with(|s| {
        let mut s = s.borrow_mut();
        match &s.token {
            Some(t) if !t.is_valid() => {
                s.token = None;
                None
            }
            Some(t) => t.acting.clone(),
            None => None,
        }
    });
    acting.unwrap_or_else(base)
}

pub(crate) fn impersonate(call: Arc<CallSecurity>, acting: Option<Principal>) {
    let old = STATE.with(|s| {
        let mut s = s.borrow_mut();
        let in_frame = s
            .frames
            .last()
            .and_then(|f| f.call.as_ref())
            .is_some_and(|c| Arc::ptr_eq(c, &call));
        s.token.replace(Token {
            call,
            acting,
            in_frame,
        })
    });
    drop(old);
}

pub(crate) fn revert() {
    let old = STATE.with(|s| s.borrow_mut().token.take());
    drop(old);
}

pub(crate) fn is_impersonating(call: &CallSecurity) -> bool {
    STATE.with(|s| {
        s.borrow().token.as_ref().is_some_and(|t| {
            std::ptr::eq(Arc::as_ptr(&t.call), call as *const CallSecurity) && t.is_valid()
        })
    })
}

/// The innermost call context of this thread, if any.
fn innermost() -> Option<Arc<CallSecurity>> {
    STATE.with(|s| s.borrow().frames.last().and_then(|f| f.call.clone()))
}

/// What the end of a [`ServerCode`] frame tells its call.
#[derive(Clone, Copy)]
pub(crate) enum Exit {
    /// Nothing (`Begin_`, `Finish_`, `CreateCall`).
    Nothing,
    /// The call's server code is done (a synchronous method returned).
    End,
}

/// Server code running on this thread for a call (see the [module docs](self)); the frame
/// ends when the guard drops.
pub(crate) struct ServerCode {
    exit: Exit,
}

impl ServerCode {
    /// Server code outside any call (a server's `CreateCall`) begins, running as `server`,
    /// without the thread's token.
    pub(crate) fn enter(server: Principal) -> Self {
        Self::push(None, Some(server), Exit::Nothing)
    }

    /// Server code begins without the thread's token; `exit` is what the frame's end tells
    /// `call`. `server` is `None` only when `call` says who the server is.
    fn push(call: Option<Arc<CallSecurity>>, server: Option<Principal>, exit: Exit) -> Self {
        STATE.with(|s| {
            let mut s = s.borrow_mut();
            let saved = s.token.take();
            s.frames.push(Frame {
                call,
                server,
                saved,
            });
        });
        ServerCode { exit }
    }

    /// The server code of `call` (a synchronous method, a `Begin_` or a `Finish_`); the frame
    /// holds the caller's reference on the context until it ends.
    pub(crate) fn of(call: Arc<CallSecurity>, exit: Exit) -> Self {
        Self::push(Some(call), None, exit)
    }

    /// Changes what the frame's end tells its call (a `Begin_` that failed ends the call).
    pub(crate) fn set_exit(&mut self, exit: Exit) {
        self.exit = exit;
    }
}

impl Drop for ServerCode {
    fn drop(&mut self) {
        let frame = STATE.try_with(|s| {
            let mut s = s.borrow_mut();
            let frame = s.frames.pop();
            if let Some(f) = &frame {
                if let Some(call) = &f.call {
                    match self.exit {
                        Exit::Nothing => {}
                        Exit::End => call.end(),
                    }
                }
            }
            frame.map(|mut f| {
                let token = std::mem::replace(&mut s.token, f.saved.take());
                (f, token)
            })
        });
        drop(frame); // tokens and contexts released outside the borrow
    }
}

/// `CoGetCallContext(riid, ppv)`: the call context of the call whose server code runs on this
/// thread. `riid` `IID_IServerSecurity` (or `IID_IUnknown`) → the call's [`IServerSecurity`];
/// `IID_ICancelMethodCalls` → the call's cancel object if it is a synchronous call (what
/// `CoTestCancel` reads), else `E_NOINTERFACE`; another interface → `E_NOINTERFACE`; no call, or the call's context is complete (after
/// `Signal`, in `Finish_`) → `RPC_E_CALL_COMPLETE` (D10).
///
/// ```
/// use comasync::guid::IID_IServerSecurity;
/// use comasync::hresult::RPC_E_CALL_COMPLETE;
/// use comasync::security::{co_get_call_context, IServerSecurity};
/// let mut slot: Option<comasync::ComPtr<dyn IServerSecurity>> = None;
/// assert_eq!(co_get_call_context(&IID_IServerSecurity, &mut slot), RPC_E_CALL_COMPLETE); // not in a call
/// ```
pub fn co_get_call_context(riid: &IID, ppv: &mut dyn Any) -> HRESULT {
    let Some(call) = innermost().filter(|c| !c.is_complete()) else {
        return RPC_E_CALL_COMPLETE;
    };
    let Some(me) = call.me() else {
        return RPC_E_CALL_COMPLETE;
    };
    if *riid == IID_IServerSecurity {
        set_out::<dyn IServerSecurity>(ppv, ComPtr::new(me as Arc<dyn IServerSecurity>))
    } else if *riid == IID_IUnknown {
        set_out::<dyn IUnknown>(ppv, ComPtr::new(me as Arc<dyn IUnknown>))
    } else if *riid == IID_ICancelMethodCalls {
        // A synchronous call's context also answers ICancelMethodCalls (spec 1.8: CoTestCancel
        // is CoGetCallContext(IID_ICancelMethodCalls) + TestCancel); an asynchronous one not.
        match crate::call::cancel::call_context_cancel() {
            Some(c) => set_out::<dyn ICancelMethodCalls>(ppv, c),
            None => E_NOINTERFACE,
        }
    } else {
        E_NOINTERFACE
    }
}

/// `CoGetCallContext(IID_IServerSecurity, …)`, typed.
///
/// ```
/// use comasync::security::server_security_context;
/// assert_eq!(server_security_context().unwrap_err().code(), comasync::hresult::RPC_E_CALL_COMPLETE);
/// ```
pub fn server_security_context() -> Result<ComPtr<dyn IServerSecurity>> {
    let mut slot: Option<ComPtr<dyn IServerSecurity>> = None;
    let hr = co_get_call_context(&IID_IServerSecurity, &mut slot);
    slot.ok_or(Error(hr))
}

/// `CoImpersonateClient()`: `CoGetCallContext(IID_IServerSecurity)`, then
/// `ImpersonateClient`. `RPC_E_CALL_COMPLETE` outside a call or after `Signal`;
/// `RPC_E_UNSECURE_CALL` at `RPC_C_AUTHN_LEVEL_NONE`.
///
/// ```
/// assert_eq!(comasync::security::co_impersonate_client(), comasync::hresult::RPC_E_CALL_COMPLETE);
/// ```
pub fn co_impersonate_client() -> HRESULT {
    match server_security_context() {
        Ok(s) => s.impersonate_client(),
        Err(e) => e.code(),
    }
}

/// `CoRevertToSelf()`: `CoGetCallContext(IID_IServerSecurity)`, then `RevertToSelf`.
/// `RPC_E_CALL_COMPLETE` outside a call or after `Signal` (a token taken before `Signal` is
/// dropped through the `IServerSecurity` kept from before, or when `Begin_` returns).
///
/// ```
/// assert_eq!(comasync::security::co_revert_to_self(), comasync::hresult::RPC_E_CALL_COMPLETE);
/// ```
pub fn co_revert_to_self() -> HRESULT {
    match server_security_context() {
        Ok(s) => s.revert_to_self(),
        Err(e) => e.code(),
    }
}
