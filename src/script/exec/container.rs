//! `ISynchronizeContainer`: `AddSynchronize` and `WaitMultiple`.
//!
//! Invariants: the runner remembers each object a container accepted (by the address of the
//! `ISynchronize` it was given) so that `WaitMultiple`'s out-parameter prints as the variable
//! that names it.

use super::super::parse::Step;
use super::super::ptr::addr_of;
use super::super::report::{show_timeout, Outcome};
use super::super::run::ScriptError;
use super::super::runner::{Member, ObjKind, Runner};
use super::super::value::Value;
use super::{prepared, Arrow, Prepared};
use crate::hresult::{HRESULT, S_OK};
use crate::sync::{ISynchronize, ISynchronizeContainer};

/// `AddSynchronize K X`.
pub(super) fn add(
    r: &mut Runner,
    step: &Step,
    container: &str,
    sync: &str,
) -> Result<Prepared, ScriptError> {
    let (obj, t) = r.target(step, container)?;
    let (sobj, s) = r.target(step, sync)?;
    let arrow = Arrow {
        obj: Some(obj),
        to: r.part(obj, false),
        label: format!("AddSynchronize({sync})"),
        one_way: false,
    };
    let member = r.handle(sobj).map(|_| sync.to_string());
    Ok(prepared(
        arrow,
        move || -> (HRESULT, Option<usize>) {
            let c = match t.get::<dyn ISynchronizeContainer>() {
                Ok(c) => c,
                Err(hr) => return (hr, None),
            };
            let p = match s.get::<dyn ISynchronize>() {
                Ok(p) => p.into_ptr(),
                Err(hr) => return (hr, None),
            };
            let addr = addr_of(p.as_arc());
            (c.add_synchronize(Some(&p)), Some(addr))
        },
        move |r, _, (hr, addr)| {
            if let (S_OK, Some(addr), Some(name)) = (hr, addr, member) {
                if let ObjKind::Container { members } = &mut r.objs[obj].kind {
                    members.push(Member { name, addr });
                }
            }
            Ok(Outcome::hr(hr))
        },
    ))
}

/// `WaitMultiple K TIMEOUT`: out-parameter the variable of the object returned.
pub(super) fn wait_multiple(
    r: &mut Runner,
    step: &Step,
    container: &str,
    timeout: u32,
) -> Result<Prepared, ScriptError> {
    let (obj, t) = r.target(step, container)?;
    let arrow = Arrow {
        obj: Some(obj),
        to: r.part(obj, false),
        label: format!("WaitMultiple(0, {})", show_timeout(timeout)),
        one_way: false,
    };
    Ok(prepared(
        arrow,
        move || -> (HRESULT, Option<usize>) {
            let c = match t.get::<dyn ISynchronizeContainer>() {
                Ok(c) => c,
                Err(hr) => return (hr, None),
            };
            let mut got = None;
            let hr = c.wait_multiple(0, timeout, Some(&mut got));
            (hr, got.as_ref().map(|p| addr_of(p.as_arc())))
        },
        move |r, _, (hr, addr)| {
            let name = match (&r.objs[obj].kind, addr) {
                (ObjKind::Container { members }, Some(addr)) => Some(
                    members
                        .iter()
                        .find(|m| m.addr == addr)
                        .map_or("?", |m| m.name.as_str())
                        .to_string(),
                ),
                _ => None,
            };
            Ok(match name {
                Some(n) => Outcome::with_outs(hr, vec![Value::Name(n)]),
                None => Outcome::hr(hr),
            })
        },
    ))
}
