//! The security side of the replay: `SetIdentity`, `WhoAmI`, `SetBlanket`, `QueryBlanket`,
//! `CopyProxy`, `AccessPolicy` and the call context outside a call on the
//! [`SecurityModel`](crate::model::SecurityModel), and the access check of every call through
//! a proxy (a synchronous call, `CreateCall`, `Begin_`: `E_ACCESSDENIED`).

use super::apartment::Handled;
use super::compare::{compare, Expected};
use super::{Checked, ModelCheck, Obj};
use crate::hresult::{E_NOINTERFACE, HRESULT, S_OK};
use crate::model::ModelOutcome;
use crate::script::model_check::{Observed, Seen};
use crate::script::parse::{level_name, SecurityOp, AUTHN_LEVELS, IMP_LEVELS};
use crate::script::value::Value;

impl ModelCheck {
    /// A security operation; `None` for any other.
    pub(super) fn security_step(
        &mut self,
        bind: Option<&str>,
        op: &Checked,
        seen: &Observed<'_>,
    ) -> Option<Handled> {
        let op = match op {
            Checked::Security(op) => op,
            Checked::Finish { call, .. } => return self.who_finish(call),
            _ => return None,
        };
        let actor = seen.actor;
        let returns = |hr| Handled::Outcome(ModelOutcome::Returns(hr));
        let ok = matches!(&seen.seen, Seen::Returned { hr: Some(hr), .. } if *hr == S_OK);
        // An in-process object or call object has no IClientSecurity (spec row 23).
        let in_process = op
            .target()
            .and_then(|t| self.obj(t))
            .is_some_and(|k| matches!(self.objs[k], Obj::Server(_) | Obj::Call(_)));
        if in_process && !matches!(op, SecurityOp::AccessPolicy { .. }) {
            return Some(returns(E_NOINTERFACE));
        }
        Some(match op {
            SecurityOp::SetIdentity { name, groups } => {
                self.sec.set_identity(actor, name, groups);
                returns(S_OK)
            }
            SecurityOp::WhoAmI => {
                let name = self.sec.who_am_i(actor);
                self.expect(seen, S_OK, vec![Value::Str(name.into_bytes())])
            }
            SecurityOp::SetBlanket {
                target,
                authn_level,
                imp_level,
                auth_info,
                capabilities,
            } => {
                let key = self.obj(target)?;
                match self.sec.set_blanket(
                    actor,
                    key,
                    *authn_level,
                    *imp_level,
                    auth_info.as_deref(),
                    *capabilities,
                ) {
                    Some(hr) => returns(hr),
                    None => Handled::Unchecked,
                }
            }
            SecurityOp::QueryBlanket { target } => {
                let key = self.obj(target)?;
                match self.sec.query_blanket(key) {
                    Some((authn, imp)) => {
                        let outs = vec![
                            Value::Name(level_name(&AUTHN_LEVELS, authn)),
                            Value::Name(level_name(&IMP_LEVELS, imp)),
                        ];
                        self.expect(seen, S_OK, outs)
                    }
                    None => Handled::Unchecked,
                }
            }
            SecurityOp::CopyProxy { target } => {
                let key = self.obj(target)?;
                let Some((home, obj_apt)) = self.proxy_of(target) else {
                    return Some(Handled::Unchecked);
                };
                if !ok {
                    return Some(Handled::Unchecked);
                }
                self.new_obj(bind, Obj::Proxy { home, obj_apt });
                let copy = self.objs.len() - 1;
                self.sec.copy(key, copy);
                if let Some(&object) = self.reaches.get(&key) {
                    self.reaches.insert(copy, object);
                }
                if self.sec.has_blanket(copy) {
                    returns(S_OK)
                } else {
                    Handled::Unchecked
                }
            }
            SecurityOp::AccessPolicy {
                target,
                allowed,
                min_level,
            } => {
                let key = self.obj(target)?;
                self.sec.set_policy(key, allowed, *min_level);
                returns(S_OK)
            }
            SecurityOp::CoGetCallContext
            | SecurityOp::CoImpersonateClient
            | SecurityOp::CoRevertToSelf => returns(self.sec.call_context_outside_a_call()),
        })
    }

    /// `Who`'s `Run` through the proxy `var` by `actor`: what the model says it observes.
    pub(super) fn who_run(
        &mut self,
        actor: &str,
        var: &str,
        method: &str,
        args: &[Value],
    ) -> Option<String> {
        let key = self.obj(var)?;
        let object = *self.reaches.get(&key)?;
        let asynchronous = *self.who.get(&object)?;
        let [Value::Str(steps)] = args else {
            return None;
        };
        if method != "Run" {
            return None;
        }
        let steps = String::from_utf8_lossy(steps);
        if asynchronous {
            // The stub serves it through the server's call object: Begin_, then Finish_.
            self.sec.serve_async(actor, key, object, &steps)
        } else {
            self.sec.serve(actor, key, object, &steps)
        }
    }

    /// `Begin_Run` on a `WhoAsync` call object made on a proxy: what its `Finish_Run` will
    /// return.
    pub(super) fn who_begin(&mut self, actor: &str, call: &str, method: &str, args: &[Value]) {
        let Some(key) = self.obj(call) else { return };
        let Some(&object) = self.reaches.get(&key) else {
            return;
        };
        let (Some(true), "Run", [Value::Str(steps)]) =
            (self.who.get(&object).copied(), method, args)
        else {
            return;
        };
        let steps = String::from_utf8_lossy(steps).into_owned();
        if let Some(out) = self.sec.serve_async(actor, key, object, &steps) {
            self.who_finish.insert(key, out);
        }
    }

    /// `Finish_Run` of a `WhoAsync` call begun through a proxy: compared once.
    pub(super) fn who_finish(&mut self, call: &str) -> Option<Handled> {
        let key = self.obj(call)?;
        let out = self.who_finish.remove(&key)?;
        Some(Handled::Finished(out))
    }

    /// Compares a synchronous call with `S_OK` and the string `out`.
    pub(super) fn expect_finished(
        &self,
        seen: &Observed<'_>,
        out: String,
    ) -> Result<(), crate::script::model_check::Divergence> {
        let expected = Expected {
            hr: Some(S_OK),
            outs: Some(vec![Value::Str(out.into_bytes())]),
            ..Expected::default()
        };
        compare(seen.line, seen.text, &expected, &seen.seen)
    }

    /// Compares a step with an `HRESULT` and out-parameters.
    fn expect(&self, seen: &Observed<'_>, hr: HRESULT, outs: Vec<Value>) -> Handled {
        let expected = Expected {
            hr: Some(hr),
            outs: Some(outs),
            ..Expected::default()
        };
        Handled::Checked(compare(seen.line, seen.text, &expected, &seen.seen))
    }

    /// A new proxy (or a proxy's call object) `key` reaching `object`, made from `from` (a
    /// proxy whose blanket it copies) or new (the default blanket).
    pub(super) fn sec_proxy(&mut self, key: usize, from: Option<usize>, object: Option<usize>) {
        match from {
            Some(f) => {
                self.sec.copy(f, key);
                if let Some(&o) = self.reaches.get(&f) {
                    self.reaches.insert(key, o);
                }
            }
            None => {
                self.sec.new_proxy(key);
                if let Some(o) = object {
                    self.reaches.insert(key, o);
                }
            }
        }
    }

    /// The access check of a call by `actor` through the proxy or call object `var`:
    /// `Some(E_ACCESSDENIED)` if refused.
    pub(super) fn denied(&self, actor: &str, var: &str) -> Option<HRESULT> {
        let key = self.obj(var)?;
        let object = *self.reaches.get(&key)?;
        let hr = self.sec.access(actor, key, object);
        (hr != S_OK).then_some(hr)
    }
}
