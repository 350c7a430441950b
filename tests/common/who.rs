#![allow(dead_code)]
//! `IWho`, a test interface whose server code runs a list of security steps and records what
//! each one observed (the identity it ran as, the HRESULTs of the security calls), and two
//! servers for it: one with only the synchronous method, one with a server-side call object
//! (its `Begin_` runs the steps, `Signal` among them; its `Finish_` runs the finish steps).

use std::any::Any;
use std::sync::{Arc, Mutex};

use comasync::call::{create_aggregated_call, ICallFactory, Pool};
use comasync::hresult::S_OK;
use comasync::security::{
    co_get_call_context, co_impersonate_client, co_revert_to_self, current_identity,
    server_security_context, set_process_identity, IServerSecurity, Principal,
};
use comasync::sync::{ISynchronize, HANDLE};
use comasync::unknown::{query, ComPtr, IUnknown};
use comasync::HRESULT;

/// One step of server code.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    /// Records `who=<current identity>`.
    Whoami,
    /// `CoImpersonateClient`: `impersonate=<hr>`.
    Impersonate,
    /// `CoRevertToSelf`: `revert=<hr>`.
    Revert,
    /// `ImpersonateClient` on the `IServerSecurity` taken when the server code began:
    /// `held-impersonate=<hr>` (`held=none` if there was none).
    HeldImpersonate,
    /// `RevertToSelf` on it: `held-revert=<hr>`.
    HeldRevert,
    /// `IsImpersonating` on it: `impersonating=<bool>`.
    IsImpersonating,
    /// `CoGetCallContext(IID_IServerSecurity)`: `context=<hr>`.
    Context,
    /// `CoGetCallContext` for an interface the context does not have (`ICallFactory`):
    /// `context-other=<hr>`.
    ContextOther,
    /// `QueryBlanket` on a fresh call context: `blanket=<client|->/<authn>/<imp>` or
    /// `blanket=<hr>`.
    QueryBlanket,
    /// `Signal` on the stub's `ISynchronize` (a server call object only): `signal`.
    Signal,
    /// The remaining steps run on the server's worker thread (a server call object only):
    /// `worker`.
    Worker,
    /// `ServerPrincName` of `QueryBlanket`: `spn=<name>`.
    ServerName,
    /// `CoGetCallContext(IID_IUnknown)`: `context-unknown=<hr>`.
    ContextUnknown,
    /// `CoGetCallContext(IID_ICancelMethodCalls)`, then its `TestCancel`:
    /// `context-cancel=<hr>[/<TestCancel's hr>]`.
    ContextCancel,
    /// A synchronous call out through the server's outgoing proxy (set by the test), with a
    /// blanket at `RPC_C_IMP_LEVEL_IMPERSONATE` and these capability flags, running these steps
    /// there: `out=<hr>:<what they observed, comma-separated>`.
    CallOut(u32, Vec<Step>),
    /// The same call out, keeping the outgoing proxy's blanket as it is: `out=…`.
    CallOutAgain(Vec<Step>),
}

/// A declared interface for the tests of call security.
#[comasync::interface(
    iid = "{7E1D2C30-5A4B-4C3D-8E2F-1A0B9C8D7E01}",
    async_iid = "{7E1D2C31-5A4B-4C3D-8E2F-1A0B9C8D7E01}",
    scripts = false
)]
pub trait IWho {
    /// Runs `steps` (for a server call object: in `Begin_`, then `finish` in `Finish_`) and
    /// returns the observations of the synchronous method or of `Finish_`.
    #[out(seen)]
    fn run(&self, tag: String, steps: Vec<Step>, finish: Vec<Step>) -> (HRESULT, Vec<String>);
}

/// What every piece of server code observed: `(tag, phase, observation)`, in order.
#[derive(Default)]
pub struct WhoLog {
    pub entries: Mutex<Vec<(String, &'static str, String)>>,
    /// Set at the very end of each `Begin_` (just before it returns) and of each worker run.
    pub begun: Option<HANDLE>,
    /// The proxy `CallOut` calls through (unmarshaled in the server's apartment).
    pub outgoing: Mutex<Option<ComPtr<dyn IWho>>>,
}

impl WhoLog {
    /// Every observation recorded in `phase`.
    pub fn of_phase(&self, phase: &str) -> Vec<String> {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, p, _)| *p == phase)
            .map(|(_, _, o)| o.clone())
            .collect()
    }

    /// The observations of `tag` in `phase`.
    pub fn of(&self, tag: &str, phase: &str) -> Vec<String> {
        self.entries
            .lock()
            .unwrap()
            .iter()
            .filter(|(t, p, _)| t == tag && *p == phase)
            .map(|(_, _, o)| o.clone())
            .collect()
    }
}

fn hr(h: HRESULT) -> String {
    h.name_or_hex()
}

/// Runs `steps` in `phase`, recording into `log` (and into the returned list). Stops at
/// `Worker` (returning the rest) after recording it.
fn run_steps(
    log: &WhoLog,
    tag: &str,
    phase: &'static str,
    steps: &[Step],
    held: &Option<ComPtr<dyn IServerSecurity>>,
    sync: Option<&ComPtr<dyn ISynchronize>>,
    signaled: &mut bool,
) -> (Vec<String>, Option<Vec<Step>>) {
    let mut seen = Vec::new();
    for (i, step) in steps.iter().enumerate() {
        let o = match step {
            Step::Whoami => format!("who={}", current_identity().name()),
            Step::Impersonate => format!("impersonate={}", hr(co_impersonate_client())),
            Step::Revert => format!("revert={}", hr(co_revert_to_self())),
            Step::HeldImpersonate => match held {
                Some(s) => format!("held-impersonate={}", hr(s.impersonate_client())),
                None => "held=none".to_string(),
            },
            Step::HeldRevert => match held {
                Some(s) => format!("held-revert={}", hr(s.revert_to_self())),
                None => "held=none".to_string(),
            },
            Step::IsImpersonating => match held {
                Some(s) => format!("impersonating={}", s.is_impersonating()),
                None => "held=none".to_string(),
            },
            Step::Context => {
                let mut slot: Option<ComPtr<dyn IServerSecurity>> = None;
                let h = co_get_call_context(&comasync::guid::IID_IServerSecurity, &mut slot);
                format!("context={}", hr(h))
            }
            Step::ServerName => match server_security_context().and_then(|s| s.query_blanket()) {
                Ok(b) => format!("spn={}", b.server_principal_name),
                Err(e) => format!("spn={}", hr(e.code())),
            },
            Step::ContextCancel => {
                let mut slot: Option<ComPtr<dyn comasync::call::ICancelMethodCalls>> = None;
                let h = co_get_call_context(&comasync::guid::IID_ICancelMethodCalls, &mut slot);
                match slot {
                    Some(c) => format!("context-cancel={}/{}", hr(h), hr(c.test_cancel())),
                    None => format!("context-cancel={}", hr(h)),
                }
            }
            Step::ContextUnknown => {
                let mut slot: Option<ComPtr<dyn IUnknown>> = None;
                let h = co_get_call_context(&comasync::guid::IID_IUnknown, &mut slot);
                format!("context-unknown={}", hr(h))
            }
            Step::CallOutAgain(steps) => {
                let out = log.outgoing.lock().unwrap().clone();
                match out {
                    None => "out=none".to_string(),
                    Some(proxy) => {
                        let (h, seen) = proxy.run(format!("{tag}>"), steps.clone(), vec![]);
                        format!("out={}:{}", hr(h), seen.join(","))
                    }
                }
            }
            Step::CallOut(flags, steps) => {
                let out = log.outgoing.lock().unwrap().clone();
                match out {
                    None => "out=none".to_string(),
                    Some(proxy) => {
                        let b = comasync::security::Blanket {
                            capabilities: *flags,
                            ..comasync::security::Blanket::with_levels(
                                comasync::security::RPC_C_AUTHN_LEVEL_PKT,
                                comasync::security::RPC_C_IMP_LEVEL_IMPERSONATE,
                            )
                        };
                        let set = comasync::security::co_set_proxy_blanket(&*proxy, &b);
                        assert_eq!(set, S_OK);
                        let (h, seen) = proxy.run(format!("{tag}>"), steps.clone(), vec![]);
                        format!("out={}:{}", hr(h), seen.join(","))
                    }
                }
            }
            Step::ContextOther => {
                let mut slot: Option<ComPtr<dyn IUnknown>> = None;
                let h = co_get_call_context(&comasync::guid::IID_ICallFactory, &mut slot);
                format!("context-other={}", hr(h))
            }
            Step::QueryBlanket => match server_security_context().and_then(|s| s.query_blanket()) {
                Ok(b) => format!(
                    "blanket={}/{}/{}",
                    b.client.map_or("-".to_string(), |c| c.name().to_string()),
                    b.authn_level,
                    b.imp_level
                ),
                Err(e) => format!("blanket={}", hr(e.code())),
            },
            Step::Signal => {
                *signaled = true;
                match sync {
                    Some(s) => {
                        // Recorded first: Finish_ may run inside Signal.
                        log.entries.lock().unwrap().push((
                            tag.to_string(),
                            phase,
                            "signal".to_string(),
                        ));
                        seen.push("signal".to_string());
                        let _ = s.signal();
                        continue;
                    }
                    None => "signal=none".to_string(),
                }
            }
            Step::Worker => {
                log.entries
                    .lock()
                    .unwrap()
                    .push((tag.to_string(), phase, "worker".to_string()));
                seen.push("worker".to_string());
                return (seen, Some(steps[i + 1..].to_vec()));
            }
        };
        log.entries
            .lock()
            .unwrap()
            .push((tag.to_string(), phase, o.clone()));
        seen.push(o);
    }
    (seen, None)
}

/// The synchronous-only server.
#[comasync::implement(IWho)]
pub struct WhoSync {
    pub log: Arc<WhoLog>,
}

impl WhoSync {
    pub fn create() -> (ComPtr<dyn IWho>, Arc<WhoLog>) {
        let log = Arc::new(WhoLog::default());
        let o = WhoSync { log: log.clone() }
            .into_interface::<dyn IWho>()
            .unwrap();
        (o, log)
    }
}

impl IWho for WhoSync_Impl {
    fn run(&self, tag: String, steps: Vec<Step>, _finish: Vec<Step>) -> (HRESULT, Vec<String>) {
        let held = server_security_context().ok();
        let (seen, _) = run_steps(&self.log, &tag, "method", &steps, &held, None, &mut false);
        (S_OK, seen)
    }
}

/// The server with a server-side call object. Its worker pool's threads run as the server's
/// process identity.
#[comasync::implement(IWho, ICallFactory)]
pub struct WhoAsync {
    pub log: Arc<WhoLog>,
    pool: Arc<Pool>,
    identity: Principal,
}

impl WhoAsync {
    /// A server whose worker threads run as `identity` (its process identity).
    pub fn create(identity: Principal) -> (ComPtr<dyn IWho>, Arc<WhoLog>) {
        let log = Arc::new(WhoLog {
            begun: Some(HANDLE::create_event(false, false)),
            ..WhoLog::default()
        });
        let o = WhoAsync {
            log: log.clone(),
            pool: Pool::new(2),
            identity,
        }
        .into_interface::<dyn IWho>()
        .unwrap();
        (o, log)
    }
}

impl IWho for WhoAsync_Impl {
    fn run(&self, tag: String, steps: Vec<Step>, _finish: Vec<Step>) -> (HRESULT, Vec<String>) {
        let held = server_security_context().ok();
        let (seen, _) = run_steps(&self.log, &tag, "method", &steps, &held, None, &mut false);
        (S_OK, seen)
    }
}

impl ICallFactory for WhoAsync_Impl {
    fn create_call(
        &self,
        riid: &comasync::guid::IID,
        outer: Option<&ComPtr<dyn IUnknown>>,
        riid2: &comasync::guid::IID,
        ppv: Option<&mut dyn Any>,
    ) -> HRESULT {
        create_aggregated_call::<dyn AsyncIWho>(riid, outer, riid2, ppv, |outer| {
            WhoCall {
                log: self.log.clone(),
                pool: self.pool.clone(),
                identity: self.identity.clone(),
                pending: Mutex::default(),
            }
            .into_aggregated(outer)
        })
    }
}

/// What `Finish_` needs: the call's tag, the finish steps and the `IServerSecurity` held.
type Pending = (String, Vec<Step>, Option<ComPtr<dyn IServerSecurity>>);

/// The server-side call object.
#[comasync::implement(AsyncIWho)]
pub struct WhoCall {
    log: Arc<WhoLog>,
    pool: Arc<Pool>,
    identity: Principal,
    pending: Mutex<Option<Pending>>,
}

impl AsyncIWho for WhoCall_Impl {
    fn begin_run(&self, tag: String, steps: Vec<Step>, finish: Vec<Step>) -> HRESULT {
        let sync = query::<dyn ISynchronize>(self).unwrap();
        let held = server_security_context().ok();
        *self.pending.lock().unwrap() = Some((tag.clone(), finish, held.clone()));
        let mut signaled = false;
        let (_, rest) = run_steps(
            &self.log,
            &tag,
            "begin",
            &steps,
            &held,
            Some(&sync),
            &mut signaled,
        );
        match rest {
            Some(rest) => {
                let log = self.log.clone();
                let identity = self.identity.clone();
                self.pool.execute(move || {
                    // The worker belongs to the server's process.
                    set_process_identity(identity);
                    let mut signaled = false;
                    run_steps(
                        &log,
                        &tag,
                        "worker",
                        &rest,
                        &held,
                        Some(&sync),
                        &mut signaled,
                    );
                    if !signaled {
                        let _ = sync.signal();
                    }
                    // Observed after the worker's call is over: nothing stays on the thread.
                    let after = format!("who={}", current_identity().name());
                    log.entries
                        .lock()
                        .unwrap()
                        .push((tag, "worker-after", after));
                    if let Some(e) = &log.begun {
                        e.set_event();
                    }
                });
            }
            None => {
                if !signaled {
                    let _ = sync.signal();
                }
                if let Some(e) = &self.log.begun {
                    e.set_event();
                }
            }
        }
        S_OK
    }

    fn finish_run(&self) -> (HRESULT, Vec<String>) {
        let Some((tag, finish, held)) = self.pending.lock().unwrap().take() else {
            return (comasync::hresult::E_UNEXPECTED, Vec::new());
        };
        let (seen, _) = run_steps(&self.log, &tag, "finish", &finish, &held, None, &mut false);
        (S_OK, seen)
    }
}
