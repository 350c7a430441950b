//! `ISynchronize` on events and call objects — `Wait`, `Signal`, `Reset` — and
//! `CoWaitForMultipleHandles` on their handles.
//!
//! Invariants: the runner does not second-guess the library — `CoWaitForMultipleHandles` gets
//! exactly the handles named (its argument checks are the library's); whether a started wait
//! is blocked is what the library reports (`sync::observe`).

use super::super::parse::Step;
use super::super::report::{show_timeout, Outcome};
use super::super::run::ScriptError;
use super::super::runner::Runner;
use super::super::value::Value;
use super::{prepared, Arrow, Prepared};
use crate::hresult::HRESULT;
use crate::sync::{co_wait_for_multiple_handles, ISynchronize};

/// `Wait X TIMEOUT`: `ISynchronize::Wait(0, TIMEOUT)`.
pub(super) fn wait(
    r: &mut Runner,
    step: &Step,
    target: &str,
    timeout: u32,
) -> Result<Prepared, ScriptError> {
    let (obj, t) = r.target(step, target)?;
    let arrow = Arrow {
        obj: Some(obj),
        to: r.part(obj, true),
        label: format!("Wait(0, {})", show_timeout(timeout)),
        one_way: false,
    };
    Ok(prepared(
        arrow,
        move || {
            t.get::<dyn ISynchronize>()
                .map_or_else(|hr| hr, |s| s.wait(0, timeout))
        },
        |_, _, hr: HRESULT| Ok(Outcome::hr(hr)),
    ))
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
    Ok(prepared(
        arrow,
        move || {
            t.get::<dyn ISynchronize>()
                .map_or_else(|hr| hr, |s| if signal { s.signal() } else { s.reset() })
        },
        |_, _, hr: HRESULT| Ok(Outcome::hr(hr)),
    ))
}

/// `CoWaitForMultipleHandles FLAGS TIMEOUT X...`: out-parameter the index.
pub(super) fn co_wait(
    r: &mut Runner,
    step: &Step,
    flags: u32,
    timeout: u32,
    names: &[String],
) -> Result<Prepared, ScriptError> {
    let mut hs = Vec::new();
    for name in names {
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
    let arrow = Arrow {
        obj: None,
        to: step.actor.clone(),
        label: format!(
            "CoWaitForMultipleHandles(0x{flags:X}, {}, [{}])",
            show_timeout(timeout),
            names.join(", ")
        ),
        one_way: false,
    };
    Ok(prepared(
        arrow,
        move || {
            let mut index = 0;
            let hr = co_wait_for_multiple_handles(flags, timeout, Some(&hs), Some(&mut index));
            (hr, index)
        },
        |_, _, (hr, index): (HRESULT, u32)| {
            Ok(Outcome::with_outs(hr, vec![Value::Num(index.into())]))
        },
    ))
}
