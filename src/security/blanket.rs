//! The security blanket of a proxy's calls (`IClientSecurity::SetBlanket`'s parameters) and
//! the constants COM names them with (the values are the SDK's, rpcdce.h and objidl.h).
//!
//! # Invariants
//!
//! * A [`Blanket`] held by a proxy or a call object is always resolved: no `DEFAULT` value,
//!   an authentication level and impersonation level in range, never `pAuthInfo` together with
//!   cloaking ([`Blanket::resolve`] refuses the rest with `E_INVALIDARG`).
//! * A [`ProxyBlanket`] is shared by every user of one proxy; a call object and a copied
//!   proxy have their own, started from a copy.

use crate::hresult::{Error, Result, E_INVALIDARG};
use crate::sync::prim::Mutex;

use super::identity::Principal;

/// `RPC_C_AUTHN_NONE`: no authentication.
pub const RPC_C_AUTHN_NONE: u32 = 0;
/// `RPC_C_AUTHN_GSS_NEGOTIATE`: SPNEGO.
pub const RPC_C_AUTHN_GSS_NEGOTIATE: u32 = 9;
/// `RPC_C_AUTHN_WINNT`: NTLMSSP, the default here.
pub const RPC_C_AUTHN_WINNT: u32 = 10;
/// `RPC_C_AUTHN_GSS_KERBEROS`: Kerberos.
pub const RPC_C_AUTHN_GSS_KERBEROS: u32 = 16;
/// `RPC_C_AUTHN_DEFAULT`: let COM choose (here: `RPC_C_AUTHN_WINNT`).
pub const RPC_C_AUTHN_DEFAULT: u32 = 0xFFFF_FFFF;

/// `RPC_C_AUTHZ_NONE`: no authorization service.
pub const RPC_C_AUTHZ_NONE: u32 = 0;
/// `RPC_C_AUTHZ_NAME`: authorization by the client's principal name.
pub const RPC_C_AUTHZ_NAME: u32 = 1;
/// `RPC_C_AUTHZ_DCE`: DCE privilege attribute certificates.
pub const RPC_C_AUTHZ_DCE: u32 = 2;
/// `RPC_C_AUTHZ_DEFAULT`: let COM choose (here: `RPC_C_AUTHZ_NONE`).
pub const RPC_C_AUTHZ_DEFAULT: u32 = 0xFFFF_FFFF;

/// `RPC_C_AUTHN_LEVEL_DEFAULT`: let COM choose (here: `RPC_C_AUTHN_LEVEL_CONNECT`).
pub const RPC_C_AUTHN_LEVEL_DEFAULT: u32 = 0;
/// `RPC_C_AUTHN_LEVEL_NONE`: no authentication: the server does not know the client.
pub const RPC_C_AUTHN_LEVEL_NONE: u32 = 1;
/// `RPC_C_AUTHN_LEVEL_CONNECT`: authenticated when the connection is made.
pub const RPC_C_AUTHN_LEVEL_CONNECT: u32 = 2;
/// `RPC_C_AUTHN_LEVEL_CALL`: authenticated at each call.
pub const RPC_C_AUTHN_LEVEL_CALL: u32 = 3;
/// `RPC_C_AUTHN_LEVEL_PKT`: every packet authenticated.
pub const RPC_C_AUTHN_LEVEL_PKT: u32 = 4;
/// `RPC_C_AUTHN_LEVEL_PKT_INTEGRITY`: and not modified.
pub const RPC_C_AUTHN_LEVEL_PKT_INTEGRITY: u32 = 5;
/// `RPC_C_AUTHN_LEVEL_PKT_PRIVACY`: and encrypted.
pub const RPC_C_AUTHN_LEVEL_PKT_PRIVACY: u32 = 6;

/// `RPC_C_IMP_LEVEL_DEFAULT`: let COM choose (here: `RPC_C_IMP_LEVEL_IDENTIFY`).
pub const RPC_C_IMP_LEVEL_DEFAULT: u32 = 0;
/// `RPC_C_IMP_LEVEL_ANONYMOUS`: the server cannot learn who the client is; impersonating
/// gives the anonymous principal.
pub const RPC_C_IMP_LEVEL_ANONYMOUS: u32 = 1;
/// `RPC_C_IMP_LEVEL_IDENTIFY`: the server may read the client's identity but not act as it.
pub const RPC_C_IMP_LEVEL_IDENTIFY: u32 = 2;
/// `RPC_C_IMP_LEVEL_IMPERSONATE`: the server may act as the client.
pub const RPC_C_IMP_LEVEL_IMPERSONATE: u32 = 3;
/// `RPC_C_IMP_LEVEL_DELEGATE`: and call others as it.
pub const RPC_C_IMP_LEVEL_DELEGATE: u32 = 4;

/// `EOAC_NONE`: no capability flags.
pub const EOAC_NONE: u32 = 0;
/// `EOAC_MUTUAL_AUTH`: accepted, no effect.
pub const EOAC_MUTUAL_AUTH: u32 = 0x1;
/// `EOAC_STATIC_CLOAKING`: calls carry the identity the caller had when the blanket was set.
pub const EOAC_STATIC_CLOAKING: u32 = 0x20;
/// `EOAC_DYNAMIC_CLOAKING`: calls carry the caller's identity at each call (an impersonating
/// server calls as its client).
pub const EOAC_DYNAMIC_CLOAKING: u32 = 0x40;
/// `EOAC_DEFAULT`: let COM choose (here: no flags).
pub const EOAC_DEFAULT: u32 = 0x800;

/// The capability flags a blanket may carry here.
const KNOWN_CAPABILITIES: u32 = EOAC_MUTUAL_AUTH | EOAC_STATIC_CLOAKING | EOAC_DYNAMIC_CLOAKING;

/// A proxy's security blanket: `IClientSecurity::SetBlanket`'s parameters, what
/// `QueryBlanket` returns.
///
/// ```
/// use comasync::security::*;
/// let b = Blanket::default(); // what a new proxy has
/// assert_eq!((b.authn_svc, b.authn_level, b.imp_level), (RPC_C_AUTHN_WINNT, RPC_C_AUTHN_LEVEL_CONNECT, RPC_C_IMP_LEVEL_IDENTIFY));
/// let b = Blanket { authn_level: RPC_C_AUTHN_LEVEL_PKT_PRIVACY, imp_level: RPC_C_IMP_LEVEL_IMPERSONATE, ..b };
/// assert!(b.resolve().is_ok());
/// let bad = Blanket { imp_level: 9, ..Blanket::default() };
/// assert_eq!(bad.resolve().unwrap_err().code(), comasync::hresult::E_INVALIDARG);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Blanket {
    /// `dwAuthnSvc`: `RPC_C_AUTHN_*`.
    pub authn_svc: u32,
    /// `dwAuthzSvc`: `RPC_C_AUTHZ_*`.
    pub authz_svc: u32,
    /// `pServerPrincName`: the server principal name, if one was given.
    pub server_principal_name: Option<String>,
    /// `dwAuthnLevel`: `RPC_C_AUTHN_LEVEL_*`.
    pub authn_level: u32,
    /// `dwImpLevel`: `RPC_C_IMP_LEVEL_*`.
    pub imp_level: u32,
    /// `pAuthInfo`: explicit client credentials (the principal calls are made as); `None`
    /// (C's `NULL`): the caller's own identity.
    pub auth_info: Option<Principal>,
    /// `dwCapabilities`: `EOAC_*` flags.
    pub capabilities: u32,
}

impl Default for Blanket {
    /// A new proxy's blanket: `RPC_C_AUTHN_WINNT`, `RPC_C_AUTHZ_NONE`, no server principal
    /// name, `RPC_C_AUTHN_LEVEL_CONNECT`, `RPC_C_IMP_LEVEL_IDENTIFY`, no `pAuthInfo`,
    /// `EOAC_NONE` (what `CoInitializeSecurity`'s defaults give on Windows).
    fn default() -> Blanket {
        Blanket {
            authn_svc: RPC_C_AUTHN_WINNT,
            authz_svc: RPC_C_AUTHZ_NONE,
            server_principal_name: None,
            authn_level: RPC_C_AUTHN_LEVEL_CONNECT,
            imp_level: RPC_C_IMP_LEVEL_IDENTIFY,
            auth_info: None,
            capabilities: EOAC_NONE,
        }
    }
}

impl Blanket {
    /// A blanket with the default values and the given authentication and impersonation
    /// levels.
    pub fn with_levels(authn_level: u32, imp_level: u32) -> Blanket {
        Blanket {
            authn_level,
            imp_level,
            ..Blanket::default()
        }
    }

    /// The blanket `SetBlanket` would install: each `DEFAULT` replaced by the value COM
    /// chooses, `RPC_C_AUTHN_NONE` forcing `RPC_C_AUTHN_LEVEL_NONE`. `E_INVALIDARG` for an
    /// unknown authentication service, authorization service, level or capability flag, or
    /// for `pAuthInfo` combined with cloaking (spec 1.10).
    pub fn resolve(&self) -> Result<Blanket> {
        let mut b = self.clone();
        if b.authn_svc == RPC_C_AUTHN_DEFAULT {
            b.authn_svc = RPC_C_AUTHN_WINNT;
        }
        if b.authz_svc == RPC_C_AUTHZ_DEFAULT {
            b.authz_svc = RPC_C_AUTHZ_NONE;
        }
        if b.authn_level == RPC_C_AUTHN_LEVEL_DEFAULT {
            b.authn_level = RPC_C_AUTHN_LEVEL_CONNECT;
        }
        if b.imp_level == RPC_C_IMP_LEVEL_DEFAULT {
            b.imp_level = RPC_C_IMP_LEVEL_IDENTIFY;
        }
        if b.capabilities & EOAC_DEFAULT != 0 {
            b.capabilities &= !EOAC_DEFAULT;
        }
        let svc_ok = matches!(
            b.authn_svc,
            RPC_C_AUTHN_NONE
                | RPC_C_AUTHN_GSS_NEGOTIATE
                | RPC_C_AUTHN_WINNT
                | RPC_C_AUTHN_GSS_KERBEROS
        );
        let cloaking = b.capabilities & (EOAC_STATIC_CLOAKING | EOAC_DYNAMIC_CLOAKING);
        if !svc_ok
            || b.authz_svc > RPC_C_AUTHZ_DCE
            || !(RPC_C_AUTHN_LEVEL_NONE..=RPC_C_AUTHN_LEVEL_PKT_PRIVACY).contains(&b.authn_level)
            || !(RPC_C_IMP_LEVEL_ANONYMOUS..=RPC_C_IMP_LEVEL_DELEGATE).contains(&b.imp_level)
            || b.capabilities & !KNOWN_CAPABILITIES != 0
            || cloaking == EOAC_STATIC_CLOAKING | EOAC_DYNAMIC_CLOAKING
            || (cloaking != 0 && b.auth_info.is_some())
        {
            return Err(Error(E_INVALIDARG));
        }
        if b.authn_svc == RPC_C_AUTHN_NONE {
            b.authn_level = RPC_C_AUTHN_LEVEL_NONE;
        }
        Ok(b)
    }
}

/// What one call carries to the server: the blanket it started with and the client it was
/// made as (`None`: unauthenticated, `RPC_C_AUTHN_LEVEL_NONE`).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct CallBlanket {
    pub(crate) blanket: Blanket,
    pub(crate) client: Option<Principal>,
}

/// The blanket of one proxy (shared by all its users) or of one call object: its current
/// [`Blanket`] and, for static cloaking, the identity captured when it was set.
///
/// A call object whose calls a pool worker sends (a proxy's call object to an MTA object)
/// also keeps here the blanket its calls carry, stamped by `Begin_` on the client's thread
/// (`stamp`) and read by the worker (`stamped_for`). The client compares what a call
/// carries with its own copy of the last stamp, without cloning anything, and writes the
/// worker's cell only when it changed: while the blanket stays the same, a call's blanket
/// crosses no cache line and the client writes no reference count of it.
pub struct ProxyBlanket {
    state: Mutex<State>,
    /// The last stamp, for the worker: on a cache line of its own (the client writes it only
    /// when the blanket changes).
    sent: Sent,
}

/// What a [`ProxyBlanket`]'s lock guards.
struct State {
    blanket: Blanket,
    /// The identity static cloaking captured when the blanket was set.
    cloaked: Option<Principal>,
    /// The client's copy of the last stamp's blanket (see [`ProxyBlanket::stamp`]).
    stamped: Option<CallBlanket>,
}

/// The stamps of a [`ProxyBlanket`]: the generation from which calls carry the blanket.
#[repr(align(64))]
struct Sent(Mutex<Option<(u64, CallBlanket)>>);

/// Whom a call begun now on the calling thread carries as its client: the one rule
/// [`State::for_call`] (which makes the principal) and [`State::carries`] (which compares
/// without cloning) share.
enum Client<'a> {
    /// `RPC_C_AUTHN_LEVEL_NONE`: no client.
    Unauthenticated,
    /// `pAuthInfo`, or the identity static cloaking captured.
    Given(&'a Principal),
    /// Dynamic cloaking: the caller's current identity (an impersonating caller's client).
    Current,
    /// The caller's own identity (the server's, inside server code), never an impersonated one.
    Base,
}

impl Client<'_> {
    /// The principal a call carries (`None`: unauthenticated).
    fn principal(&self) -> Option<Principal> {
        match self {
            Client::Unauthenticated => None,
            Client::Given(p) => Some((*p).clone()),
            Client::Current => Some(super::identity::current_identity()),
            Client::Base => Some(super::context::base()),
        }
    }

    /// Whether a call carrying `client` was made under this rule, compared without cloning.
    fn is(&self, client: Option<&Principal>) -> bool {
        match (self, client) {
            (Client::Unauthenticated, c) => c.is_none(),
            (_, None) => false,
            (Client::Given(p), Some(c)) => c == *p,
            (Client::Current, Some(c)) => *c == super::identity::current_identity(),
            (Client::Base, Some(c)) => super::context::base_is(c),
        }
    }
}

impl State {
    /// The client rule of the blanket now: `RPC_C_AUTHN_LEVEL_NONE`, else `pAuthInfo`,
    /// dynamic cloaking, static cloaking's captured identity, the caller's own identity.
    fn client(&self) -> Client<'_> {
        let blanket = &self.blanket;
        if blanket.authn_level == RPC_C_AUTHN_LEVEL_NONE {
            Client::Unauthenticated
        } else if let Some(p) = &blanket.auth_info {
            Client::Given(p)
        } else if blanket.capabilities & EOAC_DYNAMIC_CLOAKING != 0 {
            Client::Current
        } else if let Some(p) = &self.cloaked {
            Client::Given(p)
        } else {
            Client::Base
        }
    }

    /// Whether a call begun now on the calling thread carries `b` (what
    /// [`for_call`](Self::for_call) would make), found without cloning anything.
    fn carries(&self, b: &CallBlanket) -> bool {
        b.blanket == self.blanket && self.client().is(b.client.as_ref())
    }

    /// What a call begun now on the calling thread carries (see [`ProxyBlanket::for_call`]).
    fn for_call(&self) -> CallBlanket {
        CallBlanket {
            blanket: self.blanket.clone(),
            client: self.client().principal(),
        }
    }
}

impl ProxyBlanket {
    /// A cell holding `blanket` (already resolved) and the statically cloaked identity.
    pub(crate) fn new(blanket: Blanket, cloaked: Option<Principal>) -> ProxyBlanket {
        ProxyBlanket {
            state: Mutex::new(State {
                blanket,
                cloaked,
                stamped: None,
            }),
            sent: Sent(Mutex::new(None)),
        }
    }

    /// A new cell with the same blanket (a call object's, a copied proxy's).
    pub(crate) fn copy(&self) -> ProxyBlanket {
        let s = self.state.lock();
        ProxyBlanket::new(s.blanket.clone(), s.cloaked.clone())
    }

    /// The blanket now.
    pub fn get(&self) -> Blanket {
        self.state.lock().blanket.clone()
    }

    /// `SetBlanket`: resolves and installs `blanket` (see [`Blanket::resolve`]). With static
    /// cloaking the caller's current identity is captured now.
    pub fn set(&self, blanket: &Blanket) -> Result<()> {
        let b = blanket.resolve()?;
        let cloaked =
            (b.capabilities & EOAC_STATIC_CLOAKING != 0).then(super::identity::current_identity);
        let mut s = self.state.lock();
        s.blanket = b;
        s.cloaked = cloaked;
        Ok(())
    }

    /// What a call begun now on the calling thread carries: the blanket and the client
    /// principal — `pAuthInfo` if given; the caller's current identity with dynamic cloaking
    /// (an impersonating caller calls as its client); the identity captured by static
    /// cloaking; else the caller's own identity (the server's, inside server code), never an
    /// impersonated one. `None` at `RPC_C_AUTHN_LEVEL_NONE`.
    pub(crate) fn for_call(&self) -> CallBlanket {
        self.state.lock().for_call()
    }

    /// Call `generation` begins on the calling thread (a call object's `Begin_`, in the
    /// critical section that begins the call): it carries [`for_call`](Self::for_call)'s
    /// blanket. Stamped for the worker only if that differs from the last stamp; the stamp it
    /// replaces is returned, to be dropped outside the caller's lock.
    pub(crate) fn stamp(&self, generation: u64) -> Option<CallBlanket> {
        let changed = {
            let mut s = self.state.lock();
            if s.stamped.as_ref().is_some_and(|b| s.carries(b)) {
                return None; // unchanged: nothing is cloned or written
            }
            let now = s.for_call();
            s.stamped = Some(now.clone());
            now
        };
        self.sent
            .0
            .lock()
            .replace((generation, changed))
            .map(|(_, old)| old)
    }

    /// The blanket call `generation` carries, read by the worker that sends it: the last
    /// stamp, if it was made at or before `generation` (a stamp is made only when the blanket
    /// changes, so it holds for every later call until the next one). `None` if a later call
    /// has stamped another since: that call began after this one, which is no longer current.
    pub(crate) fn stamped_for(&self, generation: u64) -> Option<CallBlanket> {
        match &*self.sent.0.lock() {
            Some((from, blanket)) if *from <= generation => Some(blanket.clone()),
            _ => None,
        }
    }
}

impl Default for ProxyBlanket {
    fn default() -> ProxyBlanket {
        ProxyBlanket::new(Blanket::default(), None)
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    fn level(b: &CallBlanket) -> u32 {
        b.blanket.authn_level
    }

    #[test]
    fn a_stamp_holds_for_later_calls_until_the_blanket_changes() {
        let cell = ProxyBlanket::default();
        assert!(cell.stamped_for(1).is_none(), "nothing stamped yet");
        assert!(cell.stamp(1).is_none(), "the first stamp replaces none");
        assert_eq!(cell.stamped_for(1), Some(cell.for_call()));
        // Unchanged: the next calls write nothing and read the same stamp.
        assert!(cell.stamp(2).is_none());
        assert!(cell.stamp(3).is_none());
        assert_eq!(cell.stamped_for(3), Some(cell.for_call()));
        assert_eq!(cell.stamped_for(2), Some(cell.for_call()));
    }

    #[test]
    fn a_changed_blanket_is_stamped_and_supersedes_earlier_calls() {
        let cell = ProxyBlanket::default();
        cell.stamp(1);
        let private = Blanket {
            authn_level: RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
            ..Blanket::default()
        };
        cell.set(&private).unwrap();
        // Set, not yet stamped: call 1 still carries the blanket of its Begin_.
        assert_eq!(
            cell.stamped_for(1).map(|b| level(&b)),
            Some(RPC_C_AUTHN_LEVEL_CONNECT)
        );
        let replaced = cell.stamp(4).expect("a changed blanket replaces the stamp");
        assert_eq!(level(&replaced), RPC_C_AUTHN_LEVEL_CONNECT);
        assert_eq!(
            cell.stamped_for(4).map(|b| level(&b)),
            Some(RPC_C_AUTHN_LEVEL_PKT_PRIVACY)
        );
        assert_eq!(
            cell.stamped_for(5).map(|b| level(&b)),
            Some(RPC_C_AUTHN_LEVEL_PKT_PRIVACY)
        );
        // A call older than the stamp was superseded by the call that made it.
        assert!(cell.stamped_for(1).is_none());
        assert!(cell.stamped_for(3).is_none());
    }

    #[test]
    fn a_stamp_is_compared_with_every_kind_of_blanket_without_restamping_it() {
        let alice = Principal::new("alice");
        let kinds = [
            Blanket::default(),
            Blanket {
                authn_level: RPC_C_AUTHN_LEVEL_NONE,
                ..Blanket::default()
            },
            Blanket {
                auth_info: Some(alice.clone()),
                ..Blanket::default()
            },
            Blanket {
                capabilities: EOAC_DYNAMIC_CLOAKING,
                ..Blanket::default()
            },
            Blanket {
                capabilities: EOAC_STATIC_CLOAKING,
                ..Blanket::default()
            },
        ];
        let cell = ProxyBlanket::default();
        cell.stamp(1);
        let mut g = 1;
        for b in &kinds[1..] {
            cell.set(b).unwrap();
            g += 1;
            cell.stamp(g);
            // Stamped at g: the calls before it are superseded.
            assert!(cell.stamped_for(g - 1).is_none(), "{b:?} is a new blanket");
            g += 1;
            assert!(cell.stamp(g).is_none(), "{b:?} again: not stamped again");
            assert!(
                cell.stamped_for(g - 1).is_some(),
                "{b:?} again: still g - 1's"
            );
            assert_eq!(cell.stamped_for(g), Some(cell.for_call()), "{b:?}");
        }
    }

    #[test]
    fn with_dynamic_cloaking_a_changed_caller_identity_is_stamped_again() {
        use super::super::identity::{current_identity, set_process_identity};
        let cell = ProxyBlanket::default();
        cell.set(&Blanket {
            capabilities: EOAC_DYNAMIC_CLOAKING,
            ..Blanket::default()
        })
        .unwrap();
        let before = current_identity();
        cell.stamp(1);
        assert!(cell.stamp(2).is_none(), "same caller: not stamped again");
        let carol = Principal::new("carol");
        set_process_identity(carol.clone());
        let replaced = cell.stamp(3).expect("the caller is someone else now");
        set_process_identity(before.clone());
        assert_eq!(replaced.client, Some(before));
        assert_eq!(cell.stamped_for(3).and_then(|b| b.client), Some(carol));
    }

    #[test]
    fn a_stamp_carries_the_identity_of_the_thread_that_begins_the_call() {
        let cell = std::sync::Arc::new(ProxyBlanket::default());
        cell.stamp(1);
        let c = cell.clone();
        std::thread::spawn(move || {
            super::super::identity::set_process_identity(Principal::new("bob"));
            c.stamp(2).expect("another identity is another blanket");
        })
        .join()
        .unwrap();
        let client = |g| {
            cell.stamped_for(g)
                .and_then(|b| b.client)
                .map(|p| p.name().to_owned())
        };
        assert_eq!(client(2).as_deref(), Some("bob"));
        assert_eq!(client(1), None, "call 1 was superseded by bob's call 2");
    }
}
