//! Apartments in a script: an actor's thread enters and leaves an STA or the MTA
//! (`CoInitializeEx`, `CoUninitialize`), marshals an object out of its apartment (`Marshal`)
//! and unmarshals it in another (`Unmarshal`: a proxy, or the object itself in its own
//! apartment), dispatches the calls queued for its STA (`Pump`), makes synchronous calls
//! (`Call`, through a proxy or not) and cancels another actor's synchronous call
//! (`CoCancelCall`, `CoGetCancelObject`, `CoTestCancel`). Every job runs on the actor's own
//! thread, against `crate::apartment`, `crate::marshal` and `crate::call`.
//!
//! Invariants: a stream is consumed by its first `Unmarshal` (the variable is then released,
//! as `CoGetInterfaceAndReleaseStream` releases the stream, whatever it returns); an object's
//! participant is put in the apartment it was marshaled from, a proxy's in the one it was
//! unmarshaled in; `CoCancelCall ACTOR` names a thread by the actor that owns it.

use super::super::parse::{method_of, Iface, Step};
use super::super::ptr::Ptr;
use super::super::registry::show_call;
use super::super::report::{show_timeout, Outcome};
use super::super::run::ScriptError;
use super::super::runner::{ObjKind, Runner};
use super::super::trace::{EventKind, Role};
use super::super::value::Value;
use super::{hr_of, own, prepared, Arrow, Prepared, Ran};
use crate::apartment::{
    co_initialize_ex, co_pump_messages, co_uninitialize, COINIT_APARTMENTTHREADED,
    COINIT_MULTITHREADED,
};
use crate::call::{co_cancel_call, co_get_cancel_object, co_test_cancel, ICancelMethodCalls};
use crate::hresult::{HRESULT, S_OK};
use crate::marshal::MarshalStream;
use crate::unknown::{ComPtr, Interface};

/// `CoInitializeEx STA|MTA` on the actor's thread.
pub(super) fn co_initialize(step: &Step, sta: bool) -> Prepared {
    let (flag, name) = if sta {
        (COINIT_APARTMENTTHREADED, "COINIT_APARTMENTTHREADED")
    } else {
        (COINIT_MULTITHREADED, "COINIT_MULTITHREADED")
    };
    hr_of(
        own(step, format!("CoInitializeEx(NULL, {name})")),
        move || co_initialize_ex(None, flag),
    )
}

/// `CoUninitialize` on the actor's thread (no result: prints `done`).
pub(super) fn co_uninit(step: &Step) -> Prepared {
    prepared(
        own(step, "CoUninitialize()".into()),
        co_uninitialize,
        |r, ran, ()| {
            let actor = ran.step.actor.clone();
            ran.event(r, EventKind::Return, &actor, &actor, "done");
            Ok(Outcome::text("done"))
        },
    )
}

/// Binds `bind` to `p`, a new proxy (in the actor's apartment) to the object `object`, and
/// draws it.
pub(super) fn new_proxy(r: &mut Runner, ran: &Ran<'_>, bind: &str, object: usize, p: Ptr) {
    let new = r.new_obj(bind, p.identity(), ObjKind::Proxy { object });
    r.bind(Some(bind), new, p);
    let of = r.objs[object].name.clone();
    r.trace
        .participant(bind, &format!("{bind} (proxy to {of})"), Role::Proxy);
    let apartment = r.apartment_of(&ran.step.actor);
    r.trace.place(bind, &apartment);
    let actor = ran.step.actor.clone();
    ran.event(r, EventKind::Create, &actor, bind, "proxy");
}

/// `S = Marshal X IFACE`.
pub(super) fn marshal(
    r: &mut Runner,
    step: &Step,
    target: &str,
    iface: &Iface,
) -> Result<Prepared, ScriptError> {
    let (obj, t) = r.target(step, target)?;
    let erased = r
        .registry
        .iface_of_sync(&iface.iid)
        .cloned()
        .ok_or_else(|| r.usage(step, format!("`{}` cannot be marshaled", iface.name)))?;
    let arrow = Arrow::to(
        r,
        obj,
        format!(
            "CoMarshalInterThreadInterfaceInStream({}, {target})",
            iface.name
        ),
    );
    Ok(prepared(
        arrow,
        move || erased.marshal(&**t.unknown()),
        move |r, ran, got: Result<MarshalStream, HRESULT>| match got {
            Ok(stream) => {
                let name = ran.bind.unwrap_or("stream").to_string();
                let apartment = r.apartment_of(&ran.step.actor);
                let part = r.part(obj, false);
                r.trace.place(&part, &apartment);
                let new = r.new_obj(
                    &name,
                    0,
                    ObjKind::Stream {
                        stream: Some(stream),
                        object: obj,
                    },
                );
                r.vars.insert(
                    name,
                    super::super::runner::Var {
                        obj: new,
                        refs: Vec::new(),
                        released_at: None,
                    },
                );
                Ok(Outcome::hr(S_OK))
            }
            Err(hr) => Ok(Outcome::hr(hr)),
        },
    ))
}

/// `P = Unmarshal S`: consumes the stream.
pub(super) fn unmarshal(r: &mut Runner, step: &Step, name: &str) -> Result<Prepared, ScriptError> {
    let sobj = r.bound(step, name)?.obj;
    let (stream, object) = match &mut r.objs[sobj].kind {
        ObjKind::Stream { stream, object } => (stream.take(), *object),
        _ => {
            return Err(r.rt(
                step,
                format!("`{name}` is not a stream (bind one with `Marshal`)"),
            ))
        }
    };
    let Some(stream) = stream else {
        let line = r.bound(step, name)?.released_at.unwrap_or(0);
        return Err(r.rt(
            step,
            format!("`{name}` was unmarshaled at line {line}: a stream is read once"),
        ));
    };
    if let Some(v) = r.vars.get_mut(name) {
        v.released_at = Some(step.line);
    }
    let erased = r
        .registry
        .iface_of_sync(stream.iid())
        .cloned()
        .ok_or_else(|| {
            r.rt(
                step,
                format!("`{name}` holds an interface no longer registered"),
            )
        })?;
    let iface_name = erased.descs()[0].name;
    let arrow = Arrow {
        obj: None,
        to: step.actor.clone(),
        label: format!("CoGetInterfaceAndReleaseStream({name}, {iface_name})"),
        one_way: false,
    };
    Ok(prepared(
        arrow,
        move || erased.unmarshal(stream),
        move |r, ran, got: Result<Ptr, HRESULT>| {
            let p = match got {
                Ok(p) => p,
                Err(hr) => return Ok(Outcome::hr(hr)),
            };
            let bind = ran.bind.unwrap_or("proxy").to_string();
            if p.identity() == r.objs[object].identity {
                // The object's own apartment: the object itself.
                r.bind(Some(&bind), object, p);
                return Ok(Outcome {
                    note: Some("the object itself".into()),
                    ..Outcome::hr(S_OK)
                });
            }
            new_proxy(r, ran, &bind, object, p);
            Ok(Outcome {
                note: Some("a proxy".into()),
                ..Outcome::hr(S_OK)
            })
        },
    ))
}

/// `Pump`: `co_pump_messages` on the actor's thread; the count dispatched.
pub(super) fn pump(step: &Step) -> Prepared {
    prepared(
        own(step, "co_pump_messages()".into()),
        co_pump_messages,
        |_, _, n: usize| {
            Ok(Outcome {
                count: Some(u32::try_from(n).unwrap_or(u32::MAX)),
                ..Outcome::default()
            })
        },
    )
}

/// `Call X METHOD ARGS...`: a synchronous call.
pub(super) fn call(
    r: &mut Runner,
    step: &Step,
    target: &str,
    method: &str,
    args: &[Value],
) -> Result<Prepared, ScriptError> {
    let (obj, t) = r.target(step, target)?;
    let iface = r.registry.ifaces_with(method).cloned().ok_or_else(|| {
        r.usage(
            step,
            format!("no registered interface has a method `{method}`"),
        )
    })?;
    let index = method_of(&*iface, "", method).map_err(|e| r.usage(step, e))?;
    let (shown, job) = iface
        .call_sync(t, index, args, &*r)
        .map_err(|e| r.usage(step, format!("{method}: {e}")))?;
    let arrow = Arrow::to(r, obj, show_call(method, &shown));
    let names = r.names();
    Ok(prepared(
        arrow,
        move || job(&names),
        |_, _, (hr, outs): (HRESULT, Vec<Value>)| {
            Ok(Outcome {
                finish: true,
                ..Outcome::with_outs(hr, outs)
            })
        },
    ))
}

/// The COM thread id of `actor`'s thread.
fn tid(r: &Runner, step: &Step, actor: &str) -> Result<u32, ScriptError> {
    r.tid_of(actor).ok_or_else(|| {
        r.rt(
            step,
            format!("`{actor}` has run nothing yet: its thread has no id to name"),
        )
    })
}

/// `CoCancelCall ACTOR SECONDS`.
pub(super) fn co_cancel(
    r: &mut Runner,
    step: &Step,
    actor: &str,
    seconds: u32,
) -> Result<Prepared, ScriptError> {
    let thread = tid(r, step, actor)?;
    Ok(hr_of(
        Arrow {
            obj: None,
            to: actor.to_string(),
            label: format!("CoCancelCall({actor}, {})", show_timeout(seconds)),
            one_way: false,
        },
        move || co_cancel_call(thread, seconds),
    ))
}

/// `CoTestCancel` on the actor's thread.
pub(super) fn test_cancel(step: &Step) -> Prepared {
    hr_of(own(step, "CoTestCancel()".into()), co_test_cancel)
}

/// `C = CoGetCancelObject ACTOR`.
pub(super) fn get_cancel_object(
    r: &mut Runner,
    step: &Step,
    actor: &str,
) -> Result<Prepared, ScriptError> {
    let thread = tid(r, step, actor)?;
    Ok(prepared(
        Arrow {
            obj: None,
            to: actor.to_string(),
            label: format!("CoGetCancelObject({actor}, ICancelMethodCalls)"),
            one_way: false,
        },
        move || {
            let iid = <dyn ICancelMethodCalls as Interface>::IID;
            co_get_cancel_object(thread, &iid)
                .map_err(|e| e.code())
                .and_then(|c: ComPtr<dyn ICancelMethodCalls>| Ptr::new(c))
        },
        |r, ran, got: Result<Ptr, HRESULT>| match got {
            Ok(p) => {
                let name = ran.bind.unwrap_or("cancel").to_string();
                let new = r.new_obj(&name, p.identity(), ObjKind::Other);
                r.bind(Some(&name), new, p);
                r.trace
                    .participant(&name, &format!("{name} (cancel object)"), Role::Call);
                Ok(Outcome::hr(S_OK))
            }
            Err(hr) => Ok(Outcome::hr(hr)),
        },
    ))
}
