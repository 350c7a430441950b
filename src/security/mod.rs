//! Security on (asynchronous) calls, emulated: identities, client security blankets, the
//! server's call context, impersonation and access checks (spec 1.8, 1.10, 3.3, 3.4, D10;
//! docs/security.md).
//!
//! No operating-system security is involved: identities are [`Principal`]s that tests set
//! ([`set_process_identity`]), so COM's rules can be tested on any platform.
//!
//! * [`identity`] — principals, the process identity of a thread, [`current_identity`];
//! * [`blanket`] — [`Blanket`] and the `RPC_C_AUTHN_*`, `RPC_C_IMP_LEVEL_*`, `EOAC_*` values;
//! * [`client_security`] — [`IClientSecurity`] on proxies and call objects,
//!   [`co_set_proxy_blanket`], [`co_query_proxy_blanket`], [`co_copy_proxy`];
//! * [`server_security`] — [`IServerSecurity`], the call context of a call being served;
//! * [`context`] — the per-thread state: [`co_get_call_context`], [`co_impersonate_client`],
//!   [`co_revert_to_self`];
//! * [`access`] — [`AccessPolicy`]: who may call an object (`E_ACCESSDENIED`).

pub mod access;
pub mod blanket;
pub mod client_security;
pub mod context;
pub mod identity;
pub mod server_security;

pub use access::{set_access_policy, AccessPolicy, EVERYONE};
pub use blanket::*;
pub use client_security::{
    co_copy_proxy, co_query_proxy_blanket, co_set_proxy_blanket, ChannelSecurity, IClientSecurity,
};
pub use context::{
    co_get_call_context, co_impersonate_client, co_revert_to_self, server_security_context,
};
pub use identity::{
    current_identity, process_identity, set_process_identity, Principal, ANONYMOUS_LOGON,
    DEFAULT_PROCESS_IDENTITY,
};
pub use server_security::{IServerSecurity, ServerBlanket};
