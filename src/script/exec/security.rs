//! Security in a script (issue 12, `docs/security.md`): the actor's thread's identity
//! (`SetIdentity`, `WhoAmI`), a proxy's or call object's blanket (`SetBlanket`,
//! `QueryBlanket`, `CopyProxy`), who may call an object (`AccessPolicy`), and the call context
//! of the actor's thread (`CoGetCallContext`, `CoImpersonateClient`, `CoRevertToSelf`). Every
//! job runs on the actor's own thread, against `crate::security`.
//!
//! Invariants: a copy made by `CopyProxy` is a proxy to the object its source reaches (a
//! call object's copy: the object of the proxy it was made on); an identity is set on the
//! actor's thread only, as a process identity (`set_process_identity`).

use super::super::parse::{level_name, SecurityOp, Step, AUTHN_LEVELS, IMP_LEVELS};
use super::super::ptr::Ptr;
use super::super::report::Outcome;
use super::super::run::ScriptError;
use super::super::runner::{ObjKind, Runner};
use super::super::value::Value;
use super::apartment::new_proxy;
use super::{hr_of, own, prepared, Arrow, Prepared};
use crate::guid::IID_IServerSecurity;
use crate::hresult::{HRESULT, S_OK};
use crate::security::{
    co_copy_proxy, co_get_call_context, co_impersonate_client, co_query_proxy_blanket,
    co_revert_to_self, co_set_proxy_blanket, current_identity, set_access_policy,
    set_process_identity, AccessPolicy, Blanket, IServerSecurity, Principal,
};
use crate::unknown::ComPtr;

/// Sets up a security operation.
pub(super) fn prepare(
    r: &mut Runner,
    step: &Step,
    op: &SecurityOp,
) -> Result<Prepared, ScriptError> {
    Ok(match op {
        SecurityOp::SetIdentity { name, groups } => set_identity(step, name, groups),
        SecurityOp::WhoAmI => prepared(
            own(step, "current_identity()".into()),
            || current_identity().name().to_string(),
            |_, _, name: String| {
                Ok(Outcome::with_outs(
                    S_OK,
                    vec![Value::Str(name.into_bytes())],
                ))
            },
        ),
        SecurityOp::SetBlanket {
            target,
            authn_level,
            imp_level,
            auth_info,
            capabilities,
        } => {
            let blanket = Blanket {
                auth_info: auth_info.as_deref().map(Principal::new),
                capabilities: *capabilities,
                ..Blanket::with_levels(*authn_level, *imp_level)
            };
            set_blanket(r, step, target, blanket)?
        }
        SecurityOp::QueryBlanket { target } => query_blanket(r, step, target)?,
        SecurityOp::CopyProxy { target } => copy_proxy(r, step, target)?,
        SecurityOp::AccessPolicy {
            target,
            allowed,
            min_level,
        } => access_policy(r, step, target, allowed, *min_level)?,
        SecurityOp::CoGetCallContext => hr_of(
            own(step, "CoGetCallContext(IID_IServerSecurity)".into()),
            || {
                let mut slot: Option<ComPtr<dyn IServerSecurity>> = None;
                co_get_call_context(&IID_IServerSecurity, &mut slot)
            },
        ),
        SecurityOp::CoImpersonateClient => hr_of(
            own(step, "CoImpersonateClient()".into()),
            co_impersonate_client,
        ),
        SecurityOp::CoRevertToSelf => {
            hr_of(own(step, "CoRevertToSelf()".into()), co_revert_to_self)
        }
    })
}

/// `SetIdentity NAME GROUPS...`: the actor's thread's process identity (prints `S_OK`).
fn set_identity(step: &Step, name: &str, groups: &[String]) -> Prepared {
    let who = Principal::new(name).with_groups(groups.iter().cloned());
    let shown = if groups.is_empty() {
        name.to_string()
    } else {
        format!("{name} [{}]", groups.join(", "))
    };
    prepared(
        own(step, format!("set_process_identity({shown})")),
        move || {
            set_process_identity(who);
        },
        |_, _, ()| Ok(Outcome::hr(S_OK)),
    )
}

/// The arrow of an operation on `target` (its participant).
fn on(
    r: &mut Runner,
    step: &Step,
    target: &str,
    label: String,
) -> Result<(usize, Arrow, crate::script::ptr::Target), ScriptError> {
    let (obj, t) = r.target(step, target)?;
    Ok((obj, Arrow::to(r, obj, label), t))
}

/// `SetBlanket P AUTHN IMP [as NAME] [STATIC|DYNAMIC]`: `CoSetProxyBlanket`.
fn set_blanket(
    r: &mut Runner,
    step: &Step,
    target: &str,
    blanket: Blanket,
) -> Result<Prepared, ScriptError> {
    let mut label = format!(
        "CoSetProxyBlanket({target}, {}, {}",
        level_name(&AUTHN_LEVELS, blanket.authn_level),
        level_name(&IMP_LEVELS, blanket.imp_level)
    );
    if let Some(p) = &blanket.auth_info {
        label.push_str(&format!(", as {}", p.name()));
    }
    label.push(')');
    let (_, arrow, t) = on(r, step, target, label)?;
    Ok(hr_of(arrow, move || {
        co_set_proxy_blanket(&**t.unknown(), &blanket)
    }))
}

/// `QueryBlanket P`: `CoQueryProxyBlanket`; the levels by name.
fn query_blanket(r: &mut Runner, step: &Step, target: &str) -> Result<Prepared, ScriptError> {
    let (_, arrow, t) = on(r, step, target, format!("CoQueryProxyBlanket({target})"))?;
    Ok(prepared(
        arrow,
        move || co_query_proxy_blanket(&**t.unknown()).map_err(|e| e.code()),
        |_, _, got: Result<Blanket, HRESULT>| {
            Ok(match got {
                Ok(b) => Outcome::with_outs(
                    S_OK,
                    vec![
                        Value::Name(level_name(&AUTHN_LEVELS, b.authn_level)),
                        Value::Name(level_name(&IMP_LEVELS, b.imp_level)),
                    ],
                ),
                Err(hr) => Outcome::hr(hr),
            })
        },
    ))
}

/// `C = CopyProxy P`: `CoCopyProxy`; the copy is a proxy to the object `P` reaches.
fn copy_proxy(r: &mut Runner, step: &Step, target: &str) -> Result<Prepared, ScriptError> {
    let (obj, arrow, t) = on(r, step, target, format!("CoCopyProxy({target})"))?;
    let object = reached(r, obj);
    Ok(prepared(
        arrow,
        move || {
            co_copy_proxy(&**t.unknown())
                .map_err(|e| e.code())
                .and_then(Ptr::new)
        },
        move |r, ran, got: Result<Ptr, HRESULT>| {
            let p = match got {
                Ok(p) => p,
                Err(hr) => return Ok(Outcome::hr(hr)),
            };
            let bind = ran.bind.unwrap_or("copy").to_string();
            new_proxy(r, ran, &bind, object, p);
            Ok(Outcome::hr(S_OK))
        },
    ))
}

/// The object a proxy, or a call object made on a proxy, reaches (else `obj` itself).
fn reached(r: &Runner, obj: usize) -> usize {
    match &r.objs[obj].kind {
        ObjKind::Proxy { object } => *object,
        ObjKind::Call { server, .. } => match &r.objs[*server].kind {
            ObjKind::Proxy { object } => *object,
            _ => *server,
        },
        _ => obj,
    }
}

/// `AccessPolicy X NAMES... [min LEVEL]`: `set_access_policy` (prints `S_OK`).
fn access_policy(
    r: &mut Runner,
    step: &Step,
    target: &str,
    allowed: &[String],
    min_level: u32,
) -> Result<Prepared, ScriptError> {
    let policy = AccessPolicy::allow(allowed.iter().cloned()).min_authn_level(min_level);
    let label = format!(
        "set_access_policy({target}, [{}], min {})",
        allowed.join(", "),
        level_name(&AUTHN_LEVELS, min_level)
    );
    let (_, arrow, t) = on(r, step, target, label)?;
    Ok(prepared(
        arrow,
        move || set_access_policy(&**t.unknown(), policy),
        |_, _, ()| Ok(Outcome::hr(S_OK)),
    ))
}
