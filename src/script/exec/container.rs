//! `ISynchronizeContainer`: `AddSynchronize` and `WaitMultiple`.
//!
//! Invariants: the runner remembers each object a container accepted (by the address of the
//! `ISynchronize` it was given) so that `WaitMultiple`'s out-parameter prints as the variable
//! that names it.

use super::super::parse::Step;
use super::super::ptr::addr_of;
use super::super::report::{show_flags, show_timeout, Outcome};
use super::super::run::ScriptError;
use super::super::runner::{Member, ObjKind, Runner};
use super::super::value::Value;
use super::{prepared, Arrow, Prepared};
use crate::hresult::{HRESULT, S_OK};
use crate::sync::{ISynchronize, ISynchronizeContainer};

/// `AddSynchronize K X|NULL`.
pub(super) fn add(
    r: &mut Runner,
    step: &Step,
    container: &str,
    sync: Option<&str>,
) -> Result<Prepared, ScriptError> {
    let (obj, t) = r.target(step, container)?;
    let (member, s) = match sync {
        Some(name) => {
            let (sobj, s) = r.target(step, name)?;
            (r.handle(sobj).map(|_| name.to_string()), Some(s))
        }
        None => (None, None),
    };
    let arrow = Arrow::to(
        r,
        obj,
        format!("AddSynchronize({})", sync.unwrap_or("NULL")),
    );
    Ok(prepared(
        arrow,
        move || -> (HRESULT, Option<usize>) {
            let c = match t.get::<dyn ISynchronizeContainer>() {
                Ok(c) => c,
                Err(hr) => return (hr, None),
            };
            let Some(s) = s else {
                return (c.add_synchronize(None), None);
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

/// `WaitMultiple K [FLAGS] TIMEOUT [NULL]`: out-parameter the variable of the object
/// returned (none when `ppSync` is `NULL`).
pub(super) fn wait_multiple(
    r: &mut Runner,
    step: &Step,
    container: &str,
    flags: u32,
    timeout: u32,
    out: bool,
) -> Result<Prepared, ScriptError> {
    let (obj, t) = r.target(step, container)?;
    let arrow = Arrow::to(
        r,
        obj,
        format!(
            "WaitMultiple({}, {}{})",
            show_flags(flags),
            show_timeout(timeout),
            if out { "" } else { ", NULL" }
        ),
    );
    Ok(prepared(
        arrow,
        move || -> (HRESULT, Option<usize>) {
            let c = match t.get::<dyn ISynchronizeContainer>() {
                Ok(c) => c,
                Err(hr) => return (hr, None),
            };
            let mut got = None;
            let hr = c.wait_multiple(flags, timeout, out.then_some(&mut got));
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
