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
//!
//! `WhoAsync` is the same server with a server-side call object (`ICallFactory`), for the
//! asynchronous rules (spec 3.4): `Begin_Run(steps)` runs the steps before a `|` in `Begin_`,
//! where `signal` calls `Signal` on the call (at the end of `Begin_` if no step did), and
//! the steps after the `|` in `Finish_`. Three more steps use the `IServerSecurity` taken when
//! `Begin_` began: `held-impersonate`, `held-revert` (their `HRESULT`s) and
//! `held-impersonating`. `Finish_Run` returns what `Begin_` observed up to its `Signal`, `|`,
//! and what `Finish_` observed (`Finish_` may run inside `Signal`). What `Begin_` observed
//! after its `Signal` is kept by the object: the step `last` observes it (the last `Begin_`'s,
//! `-` if none). [`SecurityModel::serve_async`](crate::model::SecurityModel::serve_async) gives
//! the same on the reference model.
//!
//! Invariants: a `Who` object is stateless; a `WhoAsync` object keeps only the last
//! `Begin_`'s observations after its `Signal`, which its calls read (`last`).

use crate::guid::IID_IServerSecurity;
use std::any::Any;
use std::sync::{Arc, Mutex};

use crate::call::{create_aggregated_call, ICallFactory};
use crate::guid::IID;
use crate::hresult::{E_UNEXPECTED, HRESULT, S_OK};
use crate::security::{
    co_get_call_context, co_impersonate_client, co_revert_to_self, current_identity,
    server_security_context, IServerSecurity,
};
use crate::sync::ISynchronize;
use crate::unknown::{query, ComPtr, IUnknown};

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

/// What one step observes; a step that impersonates or reverts is noted in the trace of an
/// STA's thread (`note_dispatch`), with the identity the thread then runs as.
fn step(word: &str, held: Option<&ComPtr<dyn IServerSecurity>>, last: &str) -> String {
    let seen = observe(word, held, last);
    if matches!(
        word,
        "impersonate" | "revert" | "held-impersonate" | "held-revert"
    ) {
        crate::apartment::note_dispatch(|| {
            format!(
                "server code: {word} {seen}, runs as {}",
                current_identity().name()
            )
        });
    }
    seen
}

/// What one step observes (`held`: the call's `IServerSecurity` taken when `Begin_` began;
/// `last`: what the last `Begin_` observed after its `Signal`).
fn observe(word: &str, held: Option<&ComPtr<dyn IServerSecurity>>, last: &str) -> String {
    match (word, held) {
        ("held-impersonate", Some(h)) => return h.impersonate_client().name_or_hex(),
        ("held-revert", Some(h)) => return h.revert_to_self().name_or_hex(),
        ("held-impersonating", Some(h)) => return h.is_impersonating().to_string(),
        ("last", _) => return last.to_string(),
        _ => {}
    }
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
        let seen: Vec<String> = text
            .split_whitespace()
            .map(|w| step(w, None, "-"))
            .collect();
        (S_OK, seen.join(" ").into_bytes())
    }
}

/// `Who` with a server-side call object.
#[comasync::implement(IWho, ICallFactory)]
pub(crate) struct WhoAsync {
    /// What the last `Begin_` observed after its `Signal`.
    last: Arc<Mutex<String>>,
}

impl WhoAsync {
    /// A new `WhoAsync`.
    pub(crate) fn create() -> ComPtr<dyn IWho> {
        let o = WhoAsync {
            last: Arc::new(Mutex::new("-".into())),
        };
        ComPtr::new(WhoAsync_Impl::new(o, None) as Arc<dyn IWho>)
    }
}

impl IWho for WhoAsync_Impl {
    fn run(&self, steps: Vec<u8>) -> (HRESULT, Vec<u8>) {
        let last = self.last.lock().map(|l| l.clone()).unwrap_or_default();
        let text = String::from_utf8_lossy(&steps);
        let seen: Vec<String> = text
            .split_whitespace()
            .map(|w| step(w, None, &last))
            .collect();
        (S_OK, seen.join(" ").into_bytes())
    }
}

impl ICallFactory for WhoAsync_Impl {
    fn create_call(
        &self,
        riid: &IID,
        outer: Option<&ComPtr<dyn IUnknown>>,
        riid2: &IID,
        ppv: Option<&mut dyn Any>,
    ) -> HRESULT {
        create_aggregated_call::<dyn AsyncIWho>(riid, outer, riid2, ppv, |outer| {
            WhoCall {
                last: self.last.clone(),
                pending: Mutex::default(),
            }
            .into_aggregated(outer)
        })
    }
}

/// What `Finish_` needs: what `Begin_` observed up to `Signal`, the `Finish_` steps and the
/// `IServerSecurity` taken when `Begin_` began.
type Pending = (Vec<String>, String, Option<ComPtr<dyn IServerSecurity>>);

/// `WhoAsync`'s server-side call object.
#[comasync::implement(AsyncIWho)]
pub(crate) struct WhoCall {
    last: Arc<Mutex<String>>,
    pending: Mutex<Option<Pending>>,
}

impl AsyncIWho for WhoCall_Impl {
    fn begin_run(&self, steps: Vec<u8>) -> HRESULT {
        let Ok(sync) = query::<dyn ISynchronize>(self) else {
            return E_UNEXPECTED;
        };
        let held = server_security_context().ok();
        let text = String::from_utf8_lossy(&steps).into_owned();
        let (begin, finish) = text.split_once('|').unwrap_or((&text, ""));
        let last = self.last.lock().map(|l| l.clone()).unwrap_or_default();
        let mut before = Vec::new();
        let mut after: Option<Vec<String>> = None;
        for word in begin.split_whitespace() {
            if word == "signal" && after.is_none() {
                before.push("signal".to_string());
                if let Ok(mut p) = self.pending.lock() {
                    *p = Some((before.clone(), finish.to_string(), held.clone()));
                }
                after = Some(Vec::new());
                crate::apartment::note_dispatch(|| {
                    format!(
                        "server code: Signal(), runs as {}",
                        current_identity().name()
                    )
                });
                let _ = sync.signal();
                continue;
            }
            let o = step(word, held.as_ref(), &last);
            match &mut after {
                Some(a) => a.push(o),
                None => before.push(o),
            }
        }
        let seen_after = match after {
            Some(a) if !a.is_empty() => a.join(" "),
            _ => "-".to_string(),
        };
        if let Ok(mut l) = self.last.lock() {
            *l = seen_after;
        }
        if let Ok(mut p) = self.pending.lock() {
            if p.is_none() && !before.iter().any(|o| o == "signal") {
                *p = Some((before, finish.to_string(), held));
                drop(p);
                let _ = sync.signal();
            }
        }
        S_OK
    }

    fn finish_run(&self) -> (HRESULT, Vec<u8>) {
        let taken = self.pending.lock().ok().and_then(|mut p| p.take());
        let Some((before, finish, held)) = taken else {
            return (E_UNEXPECTED, Vec::new());
        };
        let last = self.last.lock().map(|l| l.clone()).unwrap_or_default();
        let mut seen = before;
        seen.push("|".into());
        seen.extend(
            finish
                .split_whitespace()
                .map(|w| step(w, held.as_ref(), &last)),
        );
        (S_OK, seen.join(" ").into_bytes())
    }
}
