//! Access checks: a server object declares who may call it and at which minimum
//! authentication level ([`AccessPolicy`], [`set_access_policy`]); a call through a proxy from
//! anyone else fails with `E_ACCESSDENIED` before any server code runs.
//!
//! # Invariants
//!
//! * The policy is the object's when it is marshaled: the stub keeps it for all its proxies.
//! * It is checked on the client's side when a call is made (a synchronous call, `Begin_`,
//!   `CreateCall` on the proxy: each returns `E_ACCESSDENIED`, and a refused `Begin_` leaves
//!   the call object idle), and again by the stub with the blanket the call carries (a
//!   blanket changed between the two fails the call with `E_ACCESSDENIED` from `Finish_`).
//!   Either way, no server code runs for a refused call.
//! * A client the server cannot know (`RPC_C_AUTHN_LEVEL_NONE`, `RPC_C_IMP_LEVEL_ANONYMOUS`)
//!   is let in only by [`EVERYONE`].

use std::sync::{Arc, Weak};

use crate::hresult::{E_ACCESSDENIED, HRESULT, S_OK};
use crate::unknown::{query, IUnknown};

use super::blanket::{CallBlanket, RPC_C_AUTHN_LEVEL_NONE, RPC_C_IMP_LEVEL_ANONYMOUS};
use super::identity::Principal;

/// The name that lets every caller in, known or not (Windows' `Everyone` group).
pub const EVERYONE: &str = "Everyone";

/// Who may call an object: principals or groups by name, and the least authentication level.
///
/// ```
/// use comasync::security::*;
/// let policy = AccessPolicy::allow(["alice", "admins"]).min_authn_level(RPC_C_AUTHN_LEVEL_PKT);
/// let alice = Principal::new("alice");
/// let bob = Principal::new("bob").with_groups(["admins"]);
/// assert!(policy.permits(Some(&alice), RPC_C_AUTHN_LEVEL_PKT));
/// assert!(policy.permits(Some(&bob), RPC_C_AUTHN_LEVEL_PKT_PRIVACY)); // by group
/// assert!(!policy.permits(Some(&alice), RPC_C_AUTHN_LEVEL_CONNECT)); // level too low
/// assert!(!policy.permits(Some(&Principal::new("eve")), RPC_C_AUTHN_LEVEL_PKT));
/// assert!(!policy.permits(None, RPC_C_AUTHN_LEVEL_PKT)); // unknown caller
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AccessPolicy {
    allowed: Vec<String>,
    min_authn_level: u32,
}

impl AccessPolicy {
    /// Lets in the principals and members of the groups named in `names` (at any
    /// authentication level, `RPC_C_AUTHN_LEVEL_NONE` included).
    pub fn allow<S: Into<String>>(names: impl IntoIterator<Item = S>) -> AccessPolicy {
        AccessPolicy {
            allowed: names.into_iter().map(Into::into).collect(),
            min_authn_level: RPC_C_AUTHN_LEVEL_NONE,
        }
    }

    /// The same policy, refusing calls below authentication level `level`.
    pub fn min_authn_level(self, level: u32) -> AccessPolicy {
        AccessPolicy {
            min_authn_level: level,
            ..self
        }
    }

    /// Whether a call from `client` (`None`: not known to the server) at `authn_level` is let
    /// in.
    pub fn permits(&self, client: Option<&Principal>, authn_level: u32) -> bool {
        if authn_level < self.min_authn_level {
            return false;
        }
        if self.allowed.iter().any(|a| a == EVERYONE) {
            return true;
        }
        client.is_some_and(|c| self.allowed.iter().any(|a| a == c.name() || c.is_member(a)))
    }

    /// `S_OK` or `E_ACCESSDENIED` for a call carrying `call`.
    pub(crate) fn check(&self, call: &CallBlanket) -> HRESULT {
        let client = match call.blanket.imp_level {
            RPC_C_IMP_LEVEL_ANONYMOUS => None,
            _ => call.client.as_ref(),
        };
        if self.permits(client, call.blanket.authn_level) {
            S_OK
        } else {
            E_ACCESSDENIED
        }
    }
}

type Registry = Vec<(Weak<dyn IUnknown>, Arc<AccessPolicy>)>;

/// Process-wide, outliving any loom model: a plain lock, never a loom one.
fn registry() -> &'static parking_lot::Mutex<Registry> {
    static REGISTRY: std::sync::OnceLock<parking_lot::Mutex<Registry>> = std::sync::OnceLock::new();
    REGISTRY.get_or_init(|| parking_lot::Mutex::new(Vec::new()))
}

/// Declares who may call `object` through proxies marshaled from now on (comasync's stand-in
/// for a server's access permissions: Windows sets them per process with
/// `CoInitializeSecurity` or per application in the registry). Replaces an earlier policy.
///
/// ```
/// use comasync::security::{set_access_policy, AccessPolicy};
/// use comasync::simple_stream::SimpleStream;
/// let object = SimpleStream::create(Vec::new());
/// set_access_policy(&*object, AccessPolicy::allow(["alice"]));
/// ```
pub fn set_access_policy(object: &(impl IUnknown + ?Sized), policy: AccessPolicy) {
    let Ok(identity) = query::<dyn IUnknown>(object) else {
        return;
    };
    let key = Arc::downgrade(identity.as_arc());
    let mut reg = registry().lock();
    reg.retain(|(w, _)| w.strong_count() > 0 && !Weak::ptr_eq(w, &key));
    reg.push((key, Arc::new(policy)));
}

/// The policy declared for `object`, if any.
pub(crate) fn policy_of(object: &(impl IUnknown + ?Sized)) -> Option<Arc<AccessPolicy>> {
    let identity = query::<dyn IUnknown>(object).ok()?;
    let key = Arc::downgrade(identity.as_arc());
    let reg = registry().lock();
    if reg.is_empty() {
        return None;
    }
    reg.iter()
        .find(|(w, _)| w.strong_count() > 0 && Weak::ptr_eq(w, &key))
        .map(|(_, p)| p.clone())
}
