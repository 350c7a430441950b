//! The server's view of a call's security: `IServerSecurity`, the call context object a stub
//! installs for each call it serves through a proxy (spec 1.8, 1.10, 3.4).
//!
//! # Invariants
//!
//! * A call's context is *complete* once its server code is done with it: when a synchronous
//!   method returns, or when a server call object calls `Signal` (even before its `Begin_`
//!   returns). From then on `QueryBlanket` and `ImpersonateClient` return
//!   `RPC_E_CALL_COMPLETE`.
//! * An impersonation token names its call. One taken by the call's server code on its own
//!   thread (a synchronous method, `Begin_`) stays until that code returns or `RevertToSelf`
//!   — for `Begin_`, even after `Signal` (a token taken before `Signal` stays until `Begin_`
//!   returns, spec 3.4). One taken on another thread (a server's worker, through an
//!   `IServerSecurity` kept from `Begin_`) ends when the call's context is complete. An ended
//!   token is never seen: [`current_identity`](super::current_identity) drops it.
//! * `ImpersonateClient` fails with `RPC_E_UNSECURE_CALL` at `RPC_C_AUTHN_LEVEL_NONE`; at
//!   `RPC_C_IMP_LEVEL_IDENTIFY` it succeeds, but the thread goes on acting as the server (the
//!   client's identity can be read, not used); at `ANONYMOUS` the thread acts as the anonymous
//!   principal.

use std::sync::{Arc, Weak};

use crate::guid::{IID_IServerSecurity, IID};
use crate::hresult::{Error, Result, HRESULT, RPC_E_CALL_COMPLETE, RPC_E_UNSECURE_CALL, S_OK};
use crate::sync::prim::{AtomicBool, Mutex, Ordering};
use crate::unknown::{IUnknown, Interface, RefCount};

use super::blanket::{
    CallBlanket, RPC_C_AUTHN_LEVEL_NONE, RPC_C_IMP_LEVEL_ANONYMOUS, RPC_C_IMP_LEVEL_IDENTIFY,
};
use super::context;
use super::identity::Principal;

/// `IServerSecurity`: what server code learns about its caller, and impersonation.
///
/// Obtained with [`co_get_call_context`](super::co_get_call_context) during a call (see the
/// [module docs](self) for its rules).
pub trait IServerSecurity: IUnknown {
    /// `QueryBlanket`: the call's authentication service and levels and the client's identity
    /// (`pPrivs`); `RPC_E_CALL_COMPLETE` once the call's context is complete.
    fn query_blanket(&self) -> Result<ServerBlanket>;
    /// `ImpersonateClient`: the calling thread acts as the client until `RevertToSelf` or
    /// the end of the call. `S_OK`; `RPC_E_CALL_COMPLETE` after the call (or `Signal`);
    /// `RPC_E_UNSECURE_CALL` at `RPC_C_AUTHN_LEVEL_NONE`. Repeated calls are not counted.
    fn impersonate_client(&self) -> HRESULT;
    /// `RevertToSelf`: the calling thread stops impersonating (one revert undoes any number
    /// of impersonations). `S_OK`, also when not impersonating and after `Signal` (it is how
    /// a server drops a token taken before `Signal`).
    fn revert_to_self(&self) -> HRESULT;
    /// `IsImpersonating`: whether the calling thread impersonates this call's client.
    fn is_impersonating(&self) -> bool;
}

impl Interface for dyn IServerSecurity {
    const IID: IID = IID_IServerSecurity;
    const NAME: &'static str = "IServerSecurity";
}

/// `IServerSecurity::QueryBlanket`'s out-parameters.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServerBlanket {
    /// `pAuthnSvc`.
    pub authn_svc: u32,
    /// `pAuthzSvc`.
    pub authz_svc: u32,
    /// `pServerPrincName`: the name the client gave, else the server's identity's name.
    pub server_principal_name: String,
    /// `pAuthnLevel`.
    pub authn_level: u32,
    /// `pImpLevel`.
    pub imp_level: u32,
    /// `pPrivs`: the client's identity; `None` at `RPC_C_AUTHN_LEVEL_NONE` and
    /// `RPC_C_IMP_LEVEL_ANONYMOUS` (the server cannot know who called).
    pub client: Option<Principal>,
    /// `pCapabilities`.
    pub capabilities: u32,
}

/// One call's security context on the server side: the blanket and client the call was
/// made with, the server's identity, and where the call is (see the [module docs](self)).
///
/// A stub begins its next call's context in the previous one's memory when nothing else holds
/// it any more ([`CallSecurity::renew`]): no allocation per call.
pub(crate) struct CallSecurity {
    refs: RefCount,
    me: Weak<CallSecurity>,
    /// The blanket and client the call was made with (replaced only by `renew`).
    call: Mutex<CallBlanket>,
    server: Principal,
    signaled: AtomicBool,
}

impl CallSecurity {
    pub(crate) fn new(call: CallBlanket, server: Principal) -> Arc<CallSecurity> {
        Arc::new_cyclic(|me| CallSecurity {
            refs: RefCount::new(),
            me: me.clone(),
            call: Mutex::new(call),
            server,
            signaled: AtomicBool::new(false),
        })
    }

    /// The context of a new call of the same server made with `call`: `old`'s memory if
    /// nothing but `old` refers to it (no frame, token, kept `IServerSecurity` or host: the
    /// previous call is over and forgotten, so no one can see it begin again), else a new
    /// context. Also the previous call's blanket, for the caller to drop when it likes (its
    /// client identity is shared with other threads: dropping it is not free).
    pub(crate) fn renew(
        old: Arc<CallSecurity>,
        call: CallBlanket,
    ) -> (Arc<CallSecurity>, Option<CallBlanket>) {
        // The only `Arc`: no other can appear meanwhile (the `Weak` inside is upgraded only
        // through a reference to the object, which only the caller has).
        if Arc::strong_count(&old) != 1 {
            return (CallSecurity::new(call, old.server.clone()), None);
        }
        let previous = std::mem::replace(&mut *old.call.lock(), call);
        old.signaled.store(false, Ordering::Release); // no other thread can look: see above
        (old, Some(previous))
    }

    /// The blanket the call was made with.
    pub(crate) fn blanket(&self) -> crate::security::Blanket {
        self.call.lock().blanket.clone()
    }

    /// The server identity the call's server code runs as.
    pub(crate) fn server(&self) -> &Principal {
        &self.server
    }

    /// The client, as the server may know it (`None`: unauthenticated or anonymous).
    pub(crate) fn known_client(&self) -> Option<Principal> {
        let call = self.call.lock();
        match call.blanket.imp_level {
            RPC_C_IMP_LEVEL_ANONYMOUS => None,
            _ => call.client.clone(),
        }
    }

    /// The server call object called `Signal`: the context is complete.
    pub(crate) fn signal(&self) {
        // A flag that only goes from clear to set while others may look: release/acquire
        // orders it with the call's work, and no decision pairs it with another flag.
        self.signaled.store(true, Ordering::Release);
    }

    /// The call is over (a synchronous method returned, or `Begin_` failed).
    pub(crate) fn end(&self) {
        self.signal();
    }

    /// Whether the context is complete (`RPC_E_CALL_COMPLETE` from now on).
    pub(crate) fn is_complete(&self) -> bool {
        self.signaled.load(Ordering::Acquire)
    }

    fn check(&self) -> Result<()> {
        if self.is_complete() {
            Err(Error(RPC_E_CALL_COMPLETE))
        } else {
            Ok(())
        }
    }

    pub(crate) fn me(&self) -> Option<Arc<CallSecurity>> {
        self.me.upgrade()
    }
}

impl IServerSecurity for CallSecurity {
    fn query_blanket(&self) -> Result<ServerBlanket> {
        self.check()?;
        let b = self.blanket();
        Ok(ServerBlanket {
            authn_svc: b.authn_svc,
            authz_svc: b.authz_svc,
            server_principal_name: b
                .server_principal_name
                .clone()
                .unwrap_or_else(|| self.server.name().to_string()),
            authn_level: b.authn_level,
            imp_level: b.imp_level,
            client: self.known_client(),
            capabilities: b.capabilities,
        })
    }

    fn impersonate_client(&self) -> HRESULT {
        if let Err(e) = self.check() {
            return e.code();
        }
        let acting = {
            let call = self.call.lock();
            if call.blanket.authn_level == RPC_C_AUTHN_LEVEL_NONE {
                return RPC_E_UNSECURE_CALL;
            }
            match call.blanket.imp_level {
                RPC_C_IMP_LEVEL_ANONYMOUS => Some(Principal::anonymous()),
                RPC_C_IMP_LEVEL_IDENTIFY => None,
                _ => call.client.clone(),
            }
        };
        let Some(me) = self.me() else {
            return RPC_E_CALL_COMPLETE;
        };
        context::impersonate(me, acting);
        S_OK
    }

    fn revert_to_self(&self) -> HRESULT {
        context::revert();
        S_OK
    }

    fn is_impersonating(&self) -> bool {
        context::is_impersonating(self)
    }
}

crate::com_object!([] CallSecurity {
    interfaces: [dyn IServerSecurity],
});
