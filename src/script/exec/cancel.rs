//! `ICancelMethodCalls` on a call object: `Cancel` and `TestCancel`; the actor thread's
//! `CoEnableCallCancellation` / `CoDisableCallCancellation` count.
//!
//! Invariant: a successful `Cancel` that completed the call locally draws the `Signal()` it
//! caused.

use super::super::parse::Step;
use super::super::report::{show_timeout, Outcome};
use super::super::run::ScriptError;
use super::super::runner::Runner;
use super::super::trace::EventKind;
use super::{hr_of, prepared, Arrow, Prepared};
use crate::call::{co_disable_call_cancellation, co_enable_call_cancellation, ICancelMethodCalls};
use crate::hresult::{HRESULT, S_OK};

/// `Cancel C SECONDS`.
pub(super) fn cancel(
    r: &mut Runner,
    step: &Step,
    call: &str,
    seconds: u32,
) -> Result<Prepared, ScriptError> {
    let (obj, t) = r.target(step, call)?;
    let arrow = Arrow::to(r, obj, format!("Cancel({})", show_timeout(seconds)));
    Ok(prepared(
        arrow,
        move || {
            t.get::<dyn ICancelMethodCalls>()
                .map_or_else(|hr| hr, |c| c.cancel(seconds))
        },
        move |r, ran, hr: HRESULT| {
            if hr == S_OK {
                let sync = r.signal_part(obj);
                ran.event(
                    r,
                    EventKind::Call,
                    &ran.arrow.to,
                    &sync,
                    "Signal() (completed locally)",
                );
            }
            Ok(Outcome::hr(hr))
        },
    ))
}

/// `TestCancel C`.
pub(super) fn test_cancel(
    r: &mut Runner,
    step: &Step,
    call: &str,
) -> Result<Prepared, ScriptError> {
    let (obj, t) = r.target(step, call)?;
    let arrow = Arrow::to(r, obj, "TestCancel()");
    Ok(hr_of(arrow, move || {
        t.get::<dyn ICancelMethodCalls>()
            .map_or_else(|hr| hr, |c| c.test_cancel())
    }))
}

/// `CoEnableCallCancellation` (`enable`) / `CoDisableCallCancellation` with `pReserved = NULL`,
/// on the actor's thread (the count is per thread).
pub(super) fn call_cancellation(step: &Step, enable: bool) -> Prepared {
    let name = if enable {
        "CoEnableCallCancellation"
    } else {
        "CoDisableCallCancellation"
    };
    let arrow = Arrow {
        obj: None,
        to: step.actor.clone(),
        label: format!("{name}(NULL)"),
        one_way: false,
    };
    hr_of(arrow, move || {
        if enable {
            co_enable_call_cancellation(None)
        } else {
            co_disable_call_cancellation(None)
        }
    })
}
