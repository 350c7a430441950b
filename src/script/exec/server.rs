//! The server side of a hand-driven server: `Complete`, `Fail` and `ServerTestCancel` act on
//! the oldest call of a call object waiting in its server's queue. Through a proxy, the call
//! that waits is the one the stub made on the server's own call object: `Complete C` (C a
//! proxy's call object) or `Complete P` (P the proxy: a synchronous call) takes the oldest
//! such call at the object.
//!
//! Invariants: the server holds no reference of the client's, so a released call object's
//! call can still be completed (its late result is dropped, and drawn so); a completion is
//! one arrow from the server actor (no return arrow), followed by the `Signal()` it caused;
//! `ServerTestCancel` puts the call back where it was.

use super::super::parse::Step;
use super::super::registry::PendingCall;
use super::super::report::Outcome;
use super::super::run::ScriptError;
use super::super::runner::{ObjKind, Runner};
use super::super::trace::EventKind;
use super::super::value::Value;
use super::{prepared, Arrow, Prepared, Ran};
use crate::hresult::HRESULT;

/// The oldest waiting call of `call`: its object, its server, its position and the call.
fn take(
    r: &mut Runner,
    step: &Step,
    call: &str,
) -> Result<(usize, usize, usize, Box<dyn PendingCall>), ScriptError> {
    let obj = r.bound(step, call)?.obj;
    r.drain();
    let (mut server, addr) = match &r.objs[obj].kind {
        ObjKind::Call { server, addr, .. } => (*server, *addr),
        // A proxy itself: the oldest call (a synchronous one) its stub made at the object.
        ObjKind::Proxy { .. } => (obj, 0),
        _ => return Err(r.rt(step, format!("`{call}` is not a call object (or a proxy)"))),
    };
    // A proxy's call reaches the object through its stub, as a call of the stub's own server
    // call object: the oldest such call waiting at the object is taken.
    let via_proxy = if let ObjKind::Proxy { object } = r.objs[server].kind {
        server = object;
        true
    } else {
        false
    };
    let known: Vec<usize> = r
        .objs
        .iter()
        .filter_map(|o| match o.kind {
            ObjKind::Call { addr, .. } => Some(addr),
            _ => None,
        })
        .collect();
    let server_name = r.objs[server].name.clone();
    let ObjKind::Server { queue, pending, .. } = &mut r.objs[server].kind else {
        return Err(r.rt(step, format!("`{call}` has no server")));
    };
    if queue.is_none() {
        return Err(r.rt(
            step,
            format!(
                "`{call}`'s server `{server_name}` is not hand-driven: create it with `Manual`"
            ),
        ));
    }
    let pos = pending.iter().position(|p| {
        p.call()
            .is_some_and(|(a, _)| a == addr || (via_proxy && !known.contains(&a)))
    });
    match pos {
        Some(pos) => Ok((obj, server, pos, pending.remove(pos))),
        None => Err(r.rt(
            step,
            format!("no call of `{call}` is waiting at the server: none was begun, or it was completed already"),
        )),
    }
}

/// Draws a completion: the server's arrow with its result, then the `Signal()` it caused or
/// the dropped late result.
fn completed(r: &mut Runner, ran: &Ran<'_>, obj: usize, wanted: bool, mut o: Outcome) -> Outcome {
    let label = format!("{}: {}", ran.arrow.label, o.got());
    ran.event(r, EventKind::Call, &ran.step.actor, &ran.arrow.to, &label);
    let via_stub = match r.objs[obj].kind {
        ObjKind::Proxy { .. } => true,
        ObjKind::Call { server, .. } => matches!(r.objs[server].kind, ObjKind::Proxy { .. }),
        _ => false,
    };
    if wanted && via_stub {
        // The server call object's outer is the stub: its Signal reaches the client's call
        // once the stub's Finish_ has run in the object's apartment.
        let to = ran.arrow.to.clone();
        ran.event(
            r,
            EventKind::Note,
            &to,
            &to,
            "Signal() to the stub: its Finish_ runs in the object's apartment",
        );
    } else if wanted {
        let sync = r.signal_part(obj);
        ran.event(r, EventKind::Call, &ran.arrow.to, &sync, "Signal()");
    } else {
        let to = ran.arrow.to.clone();
        ran.event(r, EventKind::Note, &to, &to, "late result dropped");
        o.note = Some("late result dropped".to_string());
    }
    o
}

/// `Complete C`: runs the synchronous method and completes the call with its result.
pub(super) fn complete(r: &mut Runner, step: &Step, call: &str) -> Result<Prepared, ScriptError> {
    let (obj, _, _, entry) = take(r, step, call)?;
    let arrow = Arrow {
        obj: Some(obj),
        to: r.part(obj, false),
        label: format!("complete {}", entry.shown(&*r)),
        one_way: true,
    };
    let names = r.names();
    Ok(prepared(
        arrow,
        move || {
            let wanted = entry.is_wanted();
            let (hr, outs) = entry.complete(&names);
            (wanted, hr, outs)
        },
        move |r, ran, (wanted, hr, outs): (bool, HRESULT, Vec<Value>)| {
            Ok(completed(r, ran, obj, wanted, Outcome::with_outs(hr, outs)))
        },
    ))
}

/// `Fail C HR`: completes the call with a failure.
pub(super) fn fail(
    r: &mut Runner,
    step: &Step,
    call: &str,
    hr: HRESULT,
) -> Result<Prepared, ScriptError> {
    let (obj, _, _, entry) = take(r, step, call)?;
    let arrow = Arrow {
        obj: Some(obj),
        to: r.part(obj, false),
        label: format!("fail {}", entry.shown(&*r)),
        one_way: true,
    };
    Ok(prepared(
        arrow,
        move || {
            let wanted = entry.is_wanted();
            entry.fail(hr);
            wanted
        },
        move |r, ran, wanted: bool| Ok(completed(r, ran, obj, wanted, Outcome::hr(hr))),
    ))
}

/// `ServerTestCancel C`: the server's `TestCancel` for its waiting call.
pub(super) fn test_cancel(
    r: &mut Runner,
    step: &Step,
    call: &str,
) -> Result<Prepared, ScriptError> {
    let (obj, server, pos, entry) = take(r, step, call)?;
    let arrow = Arrow::to(r, obj, "TestCancel() (server side)");
    Ok(prepared(
        arrow,
        move || {
            let hr = entry.test_cancel();
            (hr, entry)
        },
        move |r, _, (hr, entry): (HRESULT, Box<dyn PendingCall>)| {
            if let ObjKind::Server { pending, .. } = &mut r.objs[server].kind {
                let pos = pos.min(pending.len());
                pending.insert(pos, entry);
            }
            Ok(Outcome::hr(hr))
        },
    ))
}
