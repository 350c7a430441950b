//! The apartment side of the replay: `CoInitializeEx`, `CoUninitialize`, `Marshal`,
//! `Unmarshal`, `Pump`, `CoTestCancel`, synchronous calls, and the operations on a proxy or
//! a proxy's call object, on the [`ApartmentModel`](crate::model::ApartmentModel); and the
//! STA bookkeeping of every wait (see the [check's docs](super::super)).

use super::compare::times_out;
use super::{Answer, Checked, ModelCheck, Obj};
use crate::hresult::{RPC_E_CALL_COMPLETE, S_OK};
use crate::model::{ModelOutcome, Unmarshaled};
use crate::script::model_check::{Divergence, Observed, Seen};

/// How [`ModelCheck::apartment_step`] handled an operation.
pub(super) enum Handled {
    /// Tracked, not compared.
    Unchecked,
    /// Compare the result with this outcome.
    Outcome(ModelOutcome),
    /// Compared already.
    Checked(Result<(), Divergence>),
    /// A synchronous call the model answers: `S_OK` and this string out-parameter.
    Finished(String),
}

/// Whether `op` waits (and so, on an STA's thread, may dispatch its queue).
fn waits(op: &Checked) -> bool {
    matches!(
        op,
        Checked::Wait { .. }
            | Checked::CoWait { .. }
            | Checked::WaitMultiple { .. }
            | Checked::Finish { .. }
    )
}

impl ModelCheck {
    /// The model object `var` names, if it is a proxy: (home, the object's apartment).
    pub(super) fn proxy_of(&self, var: &str) -> Option<(usize, usize)> {
        match self.obj(var).map(|k| &self.objs[k]) {
            Some(Obj::Proxy { home, obj_apt, .. }) | Some(Obj::ProxyCall { home, obj_apt }) => {
                Some((*home, *obj_apt))
            }
            _ => None,
        }
    }

    /// An apartment operation, or an operation on a proxy or a proxy's call object; `None`
    /// for any other.
    pub(super) fn apartment_step(
        &mut self,
        bind: Option<&str>,
        op: &Checked,
        seen: &Observed<'_>,
    ) -> Option<Handled> {
        let actor = seen.actor;
        let (ok, dropped) = match &seen.seen {
            Seen::Returned { hr, dropped, .. } => (*hr == Some(S_OK), *dropped),
            Seen::Started { .. } => (false, false),
        };
        let returns = |hr| Handled::Outcome(ModelOutcome::Returns(hr));
        Some(match op {
            Checked::CoInitializeEx { sta } => returns(self.apts.co_initialize_ex(actor, *sta)),
            Checked::CoUninitialize => {
                self.apts.co_uninitialize(actor);
                Handled::Unchecked
            }
            Checked::Marshal { target } => {
                let object = self.obj(target);
                if let Some(o) = object {
                    self.sec.marshaled(o, actor);
                }
                match self.apts.marshal(actor) {
                    Err(hr) => returns(hr),
                    Ok(apt) => {
                        if ok {
                            self.new_obj(bind, Obj::Stream { object, apt });
                        }
                        // A server object has its interface: S_OK; others are not known.
                        match object.map(|k| &self.objs[k]) {
                            Some(Obj::Server(_)) => returns(S_OK),
                            _ => Handled::Unchecked,
                        }
                    }
                }
            }
            Checked::Unmarshal { stream } => {
                let k = self.obj(stream)?;
                let Obj::Stream { object, apt } = self.objs[k].clone() else {
                    return Some(Handled::Unchecked);
                };
                self.objs[k] = Obj::Untracked; // read once
                match self.apts.unmarshal(actor, apt) {
                    Err(hr) => returns(hr),
                    Ok(Unmarshaled::Object) => {
                        if let (Some(b), Some(o), true) = (bind, object, ok) {
                            self.vars.insert(b.to_string(), o);
                        }
                        returns(S_OK)
                    }
                    Ok(Unmarshaled::Proxy { home }) => {
                        if ok {
                            let proxy = Obj::Proxy { home, obj_apt: apt };
                            self.new_obj(bind, proxy);
                            self.sec_proxy(self.objs.len() - 1, None, object);
                        }
                        returns(S_OK)
                    }
                }
            }
            Checked::Pump => {
                let model = self.apts.pump(actor);
                match (model, &seen.seen) {
                    (Some(m), Seen::Returned { count: Some(n), .. }) if *n as usize != m => {
                        Handled::Checked(Err(Divergence {
                            line: seen.line,
                            message: format!(
                                "{}: the implementation dispatched {n}, the model says {m}",
                                seen.text
                            ),
                        }))
                    }
                    _ => Handled::Unchecked,
                }
            }
            Checked::CoTestCancel => returns(RPC_E_CALL_COMPLETE),
            Checked::SyncCall {
                target,
                method,
                args,
            } => {
                let Some((home, obj_apt)) = self.proxy_of(target) else {
                    return Some(Handled::Unchecked);
                };
                let hr = self.apts.use_proxy(actor, home, obj_apt);
                if hr != S_OK {
                    return Some(returns(hr));
                }
                if let Some(hr) = self.denied(actor, target) {
                    return Some(returns(hr));
                }
                self.apts.post(obj_apt, actor);
                // It waits for the reply; an STA's thread dispatches meanwhile.
                self.apts.wait(actor, None);
                match self.who_run(actor, target, method, args) {
                    Some(seen_by_server) => Handled::Finished(seen_by_server),
                    None => Handled::Unchecked,
                }
            }
            Checked::CreateCall { factory, .. } => {
                let (home, obj_apt) = self.proxy_of(factory)?;
                let hr = self.apts.use_proxy(actor, home, obj_apt);
                if hr != S_OK {
                    return Some(returns(hr));
                }
                if let Some(hr) = self.denied(actor, factory) {
                    return Some(returns(hr));
                }
                if ok {
                    let proxy = self.obj(factory);
                    self.new_obj(bind, Obj::ProxyCall { home, obj_apt });
                    self.sec_proxy(self.objs.len() - 1, proxy, None);
                }
                Handled::Unchecked
            }
            Checked::Begin {
                call,
                shared,
                method,
                args,
            } => {
                let (home, obj_apt) = self.proxy_of(call)?;
                for name in shared {
                    if let Some(k) = self.obj(name) {
                        self.objs[k] = Obj::Untracked;
                    }
                }
                let hr = self.apts.use_proxy(actor, home, obj_apt);
                if hr != S_OK {
                    return Some(returns(hr));
                }
                if let Some(hr) = self.denied(actor, call) {
                    return Some(returns(hr));
                }
                if ok {
                    self.apts.post(obj_apt, actor);
                    self.who_begin(actor, call, method, args);
                }
                Handled::Unchecked
            }
            Checked::Complete { call } | Checked::Fail { call, .. } => {
                let (_, obj_apt) = self.proxy_of(call)?;
                // The server call object's Signal, carried back to an STA as a message.
                if dropped {
                    self.apts.forget(obj_apt);
                } else {
                    self.apts.post(obj_apt, actor);
                }
                Handled::Unchecked
            }
            Checked::ServerTestCancel { call } => {
                self.proxy_of(call)?;
                Handled::Unchecked
            }
            _ => return None,
        })
    }

    /// After a `Do` step: a wait on an STA's thread that returned at once dispatched
    /// nothing; one the model does not follow, or that timed out, dispatched what it found.
    pub(super) fn sta_wait_done(
        &mut self,
        op: &Checked,
        outcome: Option<&ModelOutcome>,
        actor: &str,
    ) {
        if !waits(op) {
            return;
        }
        let at_once = outcome.filter(|o| !times_out(op, o)).map(|_| false);
        self.apts.wait(actor, at_once);
    }

    /// After a `start`: a wait on an STA's thread that blocks dispatches its queue and every
    /// call that comes until it returns.
    pub(super) fn sta_wait_started(&mut self, op: &Checked, answer: &Answer, actor: &str) {
        if !waits(op) {
            return;
        }
        let blocks = match answer {
            Answer::Waiting => Some(true),
            Answer::Returned(o) if !times_out(op, o) => Some(false),
            _ => None,
        };
        self.apts.wait(actor, blocks);
    }
}
