//! `ISynchronize` on events and call objects — `Wait`, `Signal`, `Reset` —,
//! `ISynchronizeHandle::GetHandle`, and `CoWaitForMultipleHandles` on their handles.
//!
//! Invariants: the runner does not second-guess the library — `CoWaitForMultipleHandles` gets
//! exactly the handles named (its argument checks are the library's); whether a started wait
//! is blocked is what the library reports (`sync::observe`).

use super::super::parse::Step;
use super::super::report::{show_flags, show_timeout, Outcome};
use super::super::run::ScriptError;
use super::super::runner::Runner;
use super::super::value::Value;
use super::{hr_of, prepared, Arrow, Prepared};
use crate::hresult::HRESULT;
use crate::sync::{co_wait_for_multiple_handles, ISynchronize, ISynchronizeHandle, HANDLE};

/// `Wait X [FLAGS] TIMEOUT`: `ISynchronize::Wait(FLAGS, TIMEOUT)`.
pub(super) fn wait(
    r: &mut Runner,
    step: &Step,
    target: &str,
    flags: u32,
    timeout: u32,
) -> Result<Prepared, ScriptError> {
    let (obj, t) = r.target(step, target)?;
    let arrow = Arrow {
        obj: Some(obj),
        to: r.part(obj, true),
        label: format!("Wait({}, {})", show_flags(flags), show_timeout(timeout)),
        one_way: false,
    };
    Ok(hr_of(arrow, move || {
        t.get::<dyn ISynchronize>()
            .map_or_else(|hr| hr, |s| s.wait(flags, timeout))
    }))
}

/// `Signal X` (`signal`) / `Reset X`.
pub(super) fn signal(
    r: &mut Runner,
    step: &Step,
    target: &str,
    signal: bool,
) -> Result<Prepared, ScriptError> {
    let (obj, t) = r.target(step, target)?;
    let arrow = Arrow {
        obj: Some(obj),
        to: r.part(obj, true),
        label: if signal { "Signal()" } else { "Reset()" }.into(),
        one_way: false,
    };
    Ok(hr_of(arrow, move || {
        t.get::<dyn ISynchronize>()
            .map_or_else(|hr| hr, |s| if signal { s.signal() } else { s.reset() })
    }))
}

/// `GetHandle X`: `ISynchronizeHandle::GetHandle`; out-parameter the variable of the object
/// the handle belongs to (`?` for a handle of no script object).
pub(super) fn get_handle(
    r: &mut Runner,
    step: &Step,
    target: &str,
) -> Result<Prepared, ScriptError> {
    let (obj, t) = r.target(step, target)?;
    let arrow = Arrow {
        obj: Some(obj),
        to: r.part(obj, true),
        label: "GetHandle()".into(),
        one_way: false,
    };
    Ok(prepared(
        arrow,
        move || -> Result<HANDLE, HRESULT> {
            let h = t.get::<dyn ISynchronizeHandle>()?;
            h.get_handle().map_err(|e| e.code())
        },
        |r, _, got| match got {
            Ok(h) => {
                let owner = (0..r.objs.len())
                    .find(|&o| r.handle(o).as_ref() == Some(&h))
                    .map_or("?", |o| r.obj_name(o))
                    .to_string();
                Ok(Outcome::with_outs(
                    crate::hresult::S_OK,
                    vec![Value::Name(owner)],
                ))
            }
            Err(hr) => Ok(Outcome::hr(hr)),
        },
    ))
}

/// `CoWaitForMultipleHandles FLAGS TIMEOUT X...|NULL [NULL]`: out-parameter the index (none
/// when `lpdwindex` is `NULL`).
pub(super) fn co_wait(
    r: &mut Runner,
    step: &Step,
    flags: u32,
    timeout: u32,
    names: Option<&[String]>,
    index: bool,
) -> Result<Prepared, ScriptError> {
    let mut hs = Vec::new();
    for name in names.unwrap_or_default() {
        let obj = r.var(step, name)?.obj;
        match r.handle(obj) {
            Some(h) => hs.push(h),
            None => {
                return Err(r.rt(
                    step,
                    format!("`{name}` is not an event or a call object: it has no handle"),
                ))
            }
        }
    }
    let shown = match names {
        Some(names) => format!("[{}]", names.join(", ")),
        None => "NULL".into(),
    };
    let arrow = Arrow {
        obj: None,
        to: step.actor.clone(),
        label: format!(
            "CoWaitForMultipleHandles(0x{flags:X}, {}, {shown}{})",
            show_timeout(timeout),
            if index { "" } else { ", NULL" }
        ),
        one_way: false,
    };
    let handles = names.is_some();
    Ok(prepared(
        arrow,
        move || {
            let mut i = 0;
            let hs = handles.then_some(&hs[..]);
            let hr = co_wait_for_multiple_handles(flags, timeout, hs, index.then_some(&mut i));
            (hr, i)
        },
        move |_, _, (hr, i): (HRESULT, u32)| {
            Ok(if index {
                Outcome::with_outs(hr, vec![Value::Num(i.into())])
            } else {
                Outcome::hr(hr)
            })
        },
    ))
}
