//! Emulated identities: a [`Principal`] (a name and groups), the *process identity* each
//! thread runs as, and the identity a piece of code runs as right now ([`current_identity`]).
//!
//! comasync runs every apartment in one operating-system process, so the identity of an
//! emulated "process" is a per-thread setting ([`set_process_identity`]), not an OS token.
//! Server code run by a stub runs as the identity of the thread that marshaled the object
//! (the server's process identity), or as its client while it impersonates.
//!
//! # Invariants
//!
//! * [`current_identity`] is, in order: the client of a valid impersonation token on this
//!   thread (a token at `RPC_C_IMP_LEVEL_IDENTIFY` identifies but does not act: it is
//!   skipped), the server identity of the innermost server code running on this thread, or
//!   the thread's process identity.
//! * Setting a thread's process identity never changes another thread's.

use std::fmt;
use std::sync::Arc;

use super::context;

/// The name of the identity every thread starts with.
pub const DEFAULT_PROCESS_IDENTITY: &str = "SYSTEM";

/// The name an anonymous client is seen as (`RPC_C_IMP_LEVEL_ANONYMOUS`, or a call at
/// `RPC_C_AUTHN_LEVEL_NONE` impersonated): Windows' anonymous logon.
pub const ANONYMOUS_LOGON: &str = "ANONYMOUS LOGON";

struct Inner {
    name: String,
    groups: Vec<String>,
}

/// An emulated security principal: a name and the groups it belongs to. Cheap to clone;
/// two principals are equal when their names and groups are.
///
/// ```
/// use comasync::security::Principal;
/// let alice = Principal::new("alice").with_groups(["users", "admins"]);
/// assert_eq!(alice.name(), "alice");
/// assert!(alice.is_member("admins") && !alice.is_member("guests"));
/// assert_eq!(alice, Principal::new("alice").with_groups(["users", "admins"]));
/// ```
#[derive(Clone)]
pub struct Principal(Arc<Inner>);

// `Option<Principal>` is one pointer (the `Arc`'s niche): a call's blanket carries two, and
// the messages that carry a blanket to an STA stay small (docs/performance.md, seventh
// session: a principal two pointers wide made them larger, and the MTA → STA call twice as
// slow, through the allocator's locks).
const _: () = assert!(std::mem::size_of::<Option<Principal>>() == std::mem::size_of::<usize>());

impl Principal {
    /// A principal named `name`, in no group.
    pub fn new(name: impl Into<String>) -> Principal {
        Principal(Arc::new(Inner {
            name: name.into(),
            groups: Vec::new(),
        }))
    }

    /// The same principal, member of `groups`.
    pub fn with_groups<S: Into<String>>(self, groups: impl IntoIterator<Item = S>) -> Principal {
        Principal(Arc::new(Inner {
            name: self.0.name.clone(),
            groups: groups.into_iter().map(Into::into).collect(),
        }))
    }

    /// The anonymous principal ([`ANONYMOUS_LOGON`]).
    pub fn anonymous() -> Principal {
        Principal::new(ANONYMOUS_LOGON)
    }

    /// The principal's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The groups it belongs to.
    pub fn groups(&self) -> &[String] {
        &self.0.groups
    }

    /// Whether it belongs to `group`.
    pub fn is_member(&self, group: &str) -> bool {
        self.0.groups.iter().any(|g| g == group)
    }
}

impl PartialEq for Principal {
    fn eq(&self, other: &Principal) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.name == other.0.name && self.0.groups == other.0.groups)
    }
}

impl Eq for Principal {}

impl fmt::Debug for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.groups.is_empty() {
            write!(f, "{}", self.0.name)
        } else {
            write!(f, "{}{:?}", self.0.name, self.0.groups)
        }
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.name)
    }
}

/// Sets the process identity of the calling thread (the identity of the emulated process it
/// belongs to) and returns the previous one. Objects this thread marshals afterwards serve
/// their calls as this identity; calls it makes through proxies are made as it.
///
/// ```
/// use comasync::security::{current_identity, process_identity, set_process_identity, Principal};
/// std::thread::spawn(|| {
///     assert_eq!(process_identity().name(), "SYSTEM"); // every thread starts as SYSTEM
///     set_process_identity(Principal::new("alice"));
///     assert_eq!(current_identity(), Principal::new("alice"));
/// }).join().unwrap();
/// ```
pub fn set_process_identity(identity: Principal) -> Principal {
    context::set_process(identity)
}

/// The calling thread's process identity (see [`set_process_identity`]).
pub fn process_identity() -> Principal {
    context::process()
}

/// The identity the calling code runs as now: its client's while server code impersonates
/// (at `RPC_C_IMP_LEVEL_IMPERSONATE` or `DELEGATE`; the anonymous principal at `ANONYMOUS`),
/// the server's while a stub runs server code, else the thread's process identity.
///
/// ```
/// use comasync::security::{current_identity, DEFAULT_PROCESS_IDENTITY};
/// std::thread::spawn(|| assert_eq!(current_identity().name(), DEFAULT_PROCESS_IDENTITY))
///     .join()
///     .unwrap();
/// ```
pub fn current_identity() -> Principal {
    context::current()
}
