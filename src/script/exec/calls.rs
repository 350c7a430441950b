//! `Begin_<Method>` and `Finish_<Method>` on a call object of any registered interface: the
//! arguments are converted by the interface's [`ScriptInterface`](crate::script::ScriptInterface)
//! glue, so nothing here knows an interface's Rust types.
//!
//! Invariants: the interface is the call object's own (recorded at `CreateCall`), or for a
//! variable that is not a known call object the registered interface that has the method (the
//! call then fails with the object's real `HRESULT`, `E_NOINTERFACE`); arguments that do not
//! fit stop the script at the line with a usage error.

use std::sync::Arc;

use super::super::parse::{method_of, Step};
use super::super::registry::{show_call, ErasedInterface};
use super::super::report::Outcome;
use super::super::run::ScriptError;
use super::super::runner::{ObjKind, Runner};
use super::super::trace::EventKind;
use super::super::value::Value;
use super::{prepared, Arrow, Prepared};
use crate::hresult::{HRESULT, S_OK};

/// The interface whose `method` is called on `obj`.
fn iface_for(
    r: &Runner,
    step: &Step,
    obj: usize,
    method: &str,
) -> Result<Arc<dyn ErasedInterface>, ScriptError> {
    if let ObjKind::Call { iface: Some(i), .. } = &r.objs[obj].kind {
        return Ok(i.clone());
    }
    r.registry.ifaces_with(method).cloned().ok_or_else(|| {
        r.usage(
            step,
            format!("no registered interface has a method `{method}`"),
        )
    })
}

/// `Begin_<method> C ARGS...`.
pub(super) fn begin(
    r: &mut Runner,
    step: &Step,
    call: &str,
    method: &str,
    args: &[Value],
) -> Result<Prepared, ScriptError> {
    let (obj, t) = r.target(step, call)?;
    let iface = iface_for(r, step, obj, method)?;
    let index = method_of(&*iface, "Begin_", method).map_err(|e| r.usage(step, e))?;
    let (shown, job) = iface
        .begin(t, index, args, &*r)
        .map_err(|e| r.usage(step, format!("Begin_{method}: {e}")))?;
    let server = match r.objs[obj].kind {
        ObjKind::Call { server, .. } => Some(r.objs[server].name.clone()),
        _ => None,
    };
    let shown = show_call(method, &shown);
    let arrow = Arrow::to(r, obj, format!("Begin_{shown}"));
    Ok(prepared(arrow, job, move |r, ran, hr: HRESULT| {
        if let (S_OK, Some(server)) = (hr, &server) {
            ran.event(r, EventKind::Call, &ran.arrow.to, server, &shown);
        }
        Ok(Outcome::hr(hr))
    }))
}

/// `Finish_<method> C`: out-parameters are printed after the `HRESULT`.
pub(super) fn finish(
    r: &mut Runner,
    step: &Step,
    call: &str,
    method: &str,
) -> Result<Prepared, ScriptError> {
    let (obj, t) = r.target(step, call)?;
    let iface = iface_for(r, step, obj, method)?;
    let index = method_of(&*iface, "Finish_", method).map_err(|e| r.usage(step, e))?;
    let arrow = Arrow::to(r, obj, format!("Finish_{method}()"));
    let names = r.names();
    let job = iface.finish(t, index);
    Ok(prepared(
        arrow,
        move || job(&names),
        |_, _, (hr, outs)| {
            Ok(Outcome {
                finish: true,
                ..Outcome::with_outs(hr, outs)
            })
        },
    ))
}
