//! `Who`: a registered server for the scenarios of the server side of call security. Its one
//! method, `IWho::Run(steps, &seen)`, runs the security steps its in-parameter names, as server
//! code of the call (inside the stub's frame when called through a proxy), and returns what
//! each observed, space-separated (`docs/scenarios.md`, "Security"):
//!
//! | step | does | observes |
//! |---|---|---|
//! | `whoami` | `current_identity()` | the name |
//! | `impersonate` | `CoImpersonateClient` | its `HRESULT` |
//! | `revert` | `CoRevertToSelf` | its `HRESULT` |
//! | `context` | `CoGetCallContext(IID_IServerSecurity)` | its `HRESULT` |
//! | `impersonating` | `IsImpersonating` on the call context | `true`, `false`, or the `HRESULT` |
//! | `client` | `QueryBlanket`'s client on the call context | the name, `-` (none), or the `HRESULT` |
//!
//! An unknown step observes `?`. The same rules, on the reference model, are
//! [`SecurityModel::serve`](crate::model::SecurityModel::serve).

use crate::guid::IID_IServerSecurity;
use crate::hresult::{HRESULT, S_OK};
use crate::security::{
    co_get_call_context, co_impersonate_client, co_revert_to_self, current_identity,
    server_security_context, IServerSecurity,
};
use crate::unknown::ComPtr;

/// The scenarios' server-side security interface.
#[comasync::interface(
    iid = "{8B2D4E60-3C1A-4F5B-9D7E-2A6C8E0F1B01}",
    async_iid = "{8B2D4E61-3C1A-4F5B-9D7E-2A6C8E0F1B01}"
)]
pub trait IWho {
    /// `Run(steps, &seen)`: runs the space-separated `steps`; `seen` is what each observed.
    #[out(seen)]
    fn run(&self, steps: Vec<u8>) -> (HRESULT, Vec<u8>);
}

/// The `Who` server object.
#[comasync::implement(IWho)]
pub(crate) struct Who;

impl Who {
    /// A new `Who`.
    pub(crate) fn create() -> ComPtr<dyn IWho> {
        ComPtr::new(Who_Impl::new(Who, None) as std::sync::Arc<dyn IWho>)
    }
}

/// What one step observes.
fn step(word: &str) -> String {
    match word {
        "whoami" => current_identity().name().to_string(),
        "impersonate" => co_impersonate_client().name_or_hex(),
        "revert" => co_revert_to_self().name_or_hex(),
        "context" => {
            let mut slot: Option<ComPtr<dyn IServerSecurity>> = None;
            co_get_call_context(&IID_IServerSecurity, &mut slot).name_or_hex()
        }
        "impersonating" => match server_security_context() {
            Ok(s) => s.is_impersonating().to_string(),
            Err(e) => e.code().name_or_hex(),
        },
        "client" => match server_security_context().and_then(|s| s.query_blanket()) {
            Ok(b) => b
                .client
                .map_or_else(|| "-".into(), |c| c.name().to_string()),
            Err(e) => e.code().name_or_hex(),
        },
        _ => "?".into(),
    }
}

impl IWho for Who_Impl {
    fn run(&self, steps: Vec<u8>) -> (HRESULT, Vec<u8>) {
        let text = String::from_utf8_lossy(&steps);
        let seen: Vec<String> = text.split_whitespace().map(step).collect();
        (S_OK, seen.join(" ").into_bytes())
    }
}
