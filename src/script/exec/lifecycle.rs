//! Object lifecycle: creating servers, events and containers; `QueryInterface`, `AddRef`,
//! `Release`; `CreateCall`. Each operation's setup and its result handling are side by side.
//!
//! Invariants: a creation binds its variable only when the object exists; a failed
//! `QueryInterface` or `CreateCall` leaves the name unbound; `AddRef`/`Release` move the
//! variable's references through the job and back, so the count printed is the one the
//! object reported; the final `Release` of a call object notes what it did to its call.

use super::super::parse::{Iface, ServerKind, Step};
use super::super::ptr::{handle_of, Ptr, Use};
use super::super::registry::Serving;
use super::super::report::Outcome;
use super::super::run::ScriptError;
use super::super::runner::{ObjKind, Runner};
use super::super::trace::{EventKind, Role};
use super::super::value::Value;
use super::{prepared, Arrow, Prepared};
use crate::call::{ICallFactory, State};
use crate::hresult::{HRESULT, S_OK};
use crate::sync::{ManualResetEvent, StdEvent, SynchronizeContainer, HANDLE};
use crate::unknown::IUnknown;

/// `SimpleStream "DATA" [strict]` / `SimpleStreamSyncOnly "DATA"`: the registered
/// `SimpleStream` server, hand-driven or plain.
pub(super) fn simple_stream(
    r: &mut Runner,
    step: &Step,
    data: &[u8],
    kind: ServerKind,
) -> Result<Prepared, ScriptError> {
    let serving = match kind {
        ServerKind::Manual => Serving::Manual { strict: false },
        ServerKind::ManualStrict => Serving::Manual { strict: true },
        ServerKind::SyncOnly => Serving::Plain,
    };
    server(
        r,
        step,
        "SimpleStream",
        serving,
        &[Value::Str(data.to_vec())],
    )
}

/// `NAME ARGS`, `Manual NAME ARGS [strict]`, `Pool NAME ARGS [strict]`.
pub(super) fn server(
    r: &mut Runner,
    step: &Step,
    class: &str,
    serving: Serving,
    args: &[Value],
) -> Result<Prepared, ScriptError> {
    let ctor = r
        .registry
        .server_of(class)
        .cloned()
        .ok_or_else(|| r.rt(step, format!("no server `{class}` is registered")))?;
    let args = args.to_vec();
    let class = class.to_string();
    Ok(prepared(
        Arrow::default(),
        move || ctor.create(&args, serving),
        move |r, ran, made| {
            let made =
                made.map_err(|e| r.rt(ran.step, format!("creating the object failed: {e}")))?;
            let name = ran.bind.unwrap_or("server");
            let kind = ObjKind::Server {
                queue: made.queue,
                pending: Vec::new(),
            };
            let obj = r.new_obj(name, made.ptr.identity(), kind);
            r.bind(ran.bind, obj, made.ptr);
            r.trace
                .participant(name, &format!("{name} ({class})"), Role::Server);
            ran.event(r, EventKind::Create, &ran.step.actor, name, &class);
            Ok(Outcome::text("created"))
        },
    ))
}

/// `ManualResetEvent` / `StdEvent`.
pub(super) fn event(manual: bool) -> Prepared {
    let class = if manual {
        "ManualResetEvent"
    } else {
        "StdEvent"
    };
    prepared(
        Arrow::default(),
        move || -> Result<(Ptr, HANDLE), HRESULT> {
            let p = if manual {
                ManualResetEvent::create()
            } else {
                StdEvent::create()
            };
            let ptr = Ptr::new(p)?;
            let handle = handle_of(&**ptr.unknown())?;
            Ok((ptr, handle))
        },
        move |r, ran, made| {
            let (ptr, handle) = made.map_err(|hr| {
                r.rt(
                    ran.step,
                    format!("creating the object failed: {}", hr.name_or_hex()),
                )
            })?;
            let name = ran.bind.unwrap_or("event");
            let obj = r.new_obj(name, ptr.identity(), ObjKind::Event { handle });
            r.bind(ran.bind, obj, ptr);
            r.trace
                .participant(name, &format!("{name} ({class})"), Role::Event);
            ran.event(r, EventKind::Create, &ran.step.actor, name, class);
            Ok(Outcome::text("created"))
        },
    )
}

/// `SynchronizeContainer`.
pub(super) fn container() -> Prepared {
    prepared(
        Arrow::default(),
        || Ptr::new(SynchronizeContainer::create()),
        |r, ran, made| {
            let ptr = made.map_err(|hr: HRESULT| {
                r.rt(
                    ran.step,
                    format!("creating the object failed: {}", hr.name_or_hex()),
                )
            })?;
            let name = ran.bind.unwrap_or("container");
            let kind = ObjKind::Container {
                members: Vec::new(),
            };
            let obj = r.new_obj(name, ptr.identity(), kind);
            r.bind(ran.bind, obj, ptr);
            r.trace.participant(
                name,
                &format!("{name} (SynchronizeContainer)"),
                Role::Container,
            );
            let actor = ran.step.actor.clone();
            ran.event(r, EventKind::Create, &actor, name, "SynchronizeContainer");
            Ok(Outcome::text("created"))
        },
    )
}

/// `NAME = QueryInterface X IFACE`.
pub(super) fn query_interface(
    r: &mut Runner,
    step: &Step,
    target: &str,
    iface: &Iface,
) -> Result<Prepared, ScriptError> {
    let (obj, t) = r.target(step, target)?;
    let arrow = Arrow::to(r, obj, format!("QueryInterface({})", iface.name));
    let registry = r.registry.clone();
    let iid = iface.iid;
    Ok(prepared(
        arrow,
        move || registry.query(&**t.unknown(), &iid),
        move |r, ran, got| match got {
            Ok(p) => {
                r.bind(ran.bind, obj, p);
                Ok(Outcome::hr(S_OK))
            }
            Err(hr) => Ok(Outcome::hr(hr)),
        },
    ))
}

/// `AddRef X` (`add`) / `Release X`.
pub(super) fn add_ref(
    r: &mut Runner,
    step: &Step,
    target: &str,
    add: bool,
) -> Result<Prepared, ScriptError> {
    let obj = r.var(step, target)?.obj;
    let arrow = Arrow::to(r, obj, if add { "AddRef()" } else { "Release()" });
    let before = r.call_state(obj);
    let p = r.vars.get_mut(target).and_then(|v| v.refs.pop());
    let p = p.ok_or_else(|| r.rt(step, format!("`{target}` holds no reference")))?;
    let target = target.to_string();
    Ok(prepared(
        arrow,
        move || {
            if add {
                let q = p.add_ref();
                let n = q.ref_count();
                (n, vec![p, q])
            } else {
                let n = p.ref_count();
                drop(p);
                (n.saturating_sub(1), Vec::new())
            }
        },
        move |r, ran, (count, back): (u32, Vec<Ptr>)| {
            let line = ran.step.line;
            if !r.vars.contains_key(&target) {
                return Err(r.rt(ran.step, format!("`{target}` is no longer bound")));
            }
            let Some(var) = r.vars.get_mut(&target) else {
                return Ok(Outcome::default());
            };
            var.refs.extend(back);
            if var.refs.is_empty() {
                var.released_at = Some(line);
            }
            if !add && count == 0 {
                r.objs[obj].gone = true;
                let note = match before {
                    Some(State::Pending | State::Cancelling) => {
                        Some("final Release: the call is abandoned")
                    }
                    Some(State::Signaled { .. }) => {
                        Some("final Release: the results are discarded")
                    }
                    _ => None,
                };
                if let Some(note) = note {
                    let part = r.part(obj, false);
                    ran.event(r, EventKind::Note, &part, &part, note);
                }
            }
            Ok(Outcome {
                count: Some(count),
                ..Outcome::default()
            })
        },
    ))
}

/// `NAME = CreateCall F IFACE [IFACE2] [outer O]`, or `CreateCall F IFACE [IFACE2] [outer O]
/// NULL` (`ppv = NULL`: nothing to bind).
pub(super) fn create_call(
    r: &mut Runner,
    step: &Step,
    factory: &str,
    riid: &Iface,
    riid2: &Iface,
    outer: Option<&str>,
    ppv: bool,
) -> Result<Prepared, ScriptError> {
    let (obj, t) = r.target(step, factory)?;
    let (outer_t, script_outer) = match outer {
        Some(o) => {
            let (oobj, t) = r.target(step, o)?;
            let mine = match &r.objs[oobj].kind {
                ObjKind::Outer { outer, .. } if outer.has_inner() => {
                    return Err(r.rt(
                        step,
                        format!(
                        "`{o}` aggregates a call object already: use one `Outer` per call object"
                    ),
                    ))
                }
                ObjKind::Outer { outer, .. } => Some(outer.clone()),
                _ => None,
            };
            (Some(t), mine.map(|m| (m, oobj)))
        }
        None => (None, None),
    };
    let outer_obj = script_outer.as_ref().map(|(_, o)| *o);
    let outer_given = outer.is_some();
    let script_outer = script_outer.map(|(m, _)| m);
    let arrow = Arrow::to(
        r,
        obj,
        format!(
            "CreateCall({}, {}, {}{})",
            riid.name,
            outer.unwrap_or("NULL"),
            riid2.name,
            if ppv { "" } else { ", NULL" }
        ),
    );
    let registry = r.registry.clone();
    let iface = registry.iface_of_async(&riid.iid).cloned();
    let found = iface.clone();
    let (riid, riid2) = (riid.iid, riid2.iid);
    type Made = Option<(Ptr, Option<(usize, HANDLE)>)>;
    Ok(prepared(
        arrow,
        move || -> (HRESULT, Made) {
            let f = match t.get::<dyn ICallFactory>() {
                Ok(f) => f,
                Err(hr) => return (hr, None),
            };
            let outer = match outer_t.map(|o| o.get::<dyn IUnknown>()).transpose() {
                Ok(o) => o.map(Use::into_ptr),
                Err(hr) => return (hr, None),
            };
            if !ppv {
                return (f.create_call(&riid, outer.as_ref(), &riid2, None), None);
            }
            let (hr, ptr) = registry.create_call(&*f, &riid, outer.as_ref(), &riid2);
            drop(f);
            let Some(ptr) = ptr else { return (hr, None) };
            let unk = ptr.unknown().clone();
            if let Some(o) = &script_outer {
                o.set_inner(unk.clone());
            }
            let call = found
                .as_ref()
                .and_then(|i| i.call_addr(&*unk))
                .and_then(|a| handle_of(&*unk).ok().map(|h| (a, h)));
            (hr, Some((ptr, call)))
        },
        move |r, ran, (hr, made)| {
            let Some((ptr, call)) = made else {
                return Ok(Outcome::hr(hr));
            };
            let Some((addr, handle)) = call else {
                let why = if outer_given && outer_obj.is_none() {
                    ": aggregated under an object that does not pass requests on (use an `Outer`)"
                } else {
                    ""
                };
                return Err(r.rt(
                    ran.step,
                    format!("CreateCall returned an object that is not a call object{why}"),
                ));
            };
            let name = ran.bind.unwrap_or("call").to_string();
            let kind = ObjKind::Call {
                addr,
                handle,
                view: None,
                server: obj,
                iface,
                outer: outer_obj,
            };
            let new = r.new_obj(&name, ptr.identity(), kind);
            r.bind(Some(&name), new, ptr);
            r.trace
                .participant(&name, &format!("{name} (call object)"), Role::Call);
            if outer_obj.is_none() {
                r.trace.participant(
                    &format!("{name}_ISync"),
                    &format!("ISynchronize of {name}"),
                    Role::CallSync,
                );
            }
            // A proxy's call object lives in the proxy's apartment (the creator's).
            if matches!(r.objs[obj].kind, ObjKind::Proxy { .. }) {
                let apartment = r.apartment_of(&ran.step.actor);
                r.trace.place(&name, &apartment);
                r.trace.place(&format!("{name}_ISync"), &apartment);
            }
            ran.event(r, EventKind::Create, &ran.arrow.to, &name, "call object");
            Ok(Outcome {
                call_obj: Some(new),
                ..Outcome::hr(hr)
            })
        },
    ))
}

/// `NAME = CoCreateInstance CLSID [IFACE] [outer O]`: `CoCreateInstance(CLSID, O or NULL,
/// CLSCTX_INPROC_SERVER, IFACE, &p)`; binds `NAME` to what it made (an event or a container).
pub(super) fn co_create_instance(
    r: &mut Runner,
    step: &Step,
    clsid: &Iface,
    riid: &Iface,
    outer: Option<&str>,
) -> Result<Prepared, ScriptError> {
    let outer_t = match outer {
        Some(o) => Some(r.target(step, o)?.1),
        None => None,
    };
    let arrow = Arrow {
        obj: None,
        to: step.actor.clone(),
        label: format!(
            "CoCreateInstance({}, {}, {})",
            clsid.name,
            outer.unwrap_or("NULL"),
            riid.name
        ),
        one_way: false,
    };
    let registry = r.registry.clone();
    let (class, class_name, riid) = (clsid.iid, clsid.name.clone(), riid.iid);
    Ok(prepared(
        arrow,
        move || -> (HRESULT, Option<(Ptr, Option<HANDLE>)>) {
            let outer = match outer_t.map(|o| o.get::<dyn IUnknown>()).transpose() {
                Ok(o) => o.map(Use::into_ptr),
                Err(hr) => return (hr, None),
            };
            let (hr, ptr) = registry.fill(&riid, &mut |slot| {
                crate::class::co_create_instance(&class, outer.as_ref(), &riid, slot)
            });
            let made = ptr.map(|p| {
                let handle = handle_of(&**p.unknown()).ok();
                (p, handle)
            });
            (hr, made)
        },
        move |r, ran, (hr, made)| {
            let Some((ptr, handle)) = made else {
                return Ok(Outcome::hr(hr));
            };
            let name = ran.bind.unwrap_or("object");
            let (kind, role) = match handle {
                Some(handle) if class != crate::guid::CLSID_SynchronizeContainer => {
                    (ObjKind::Event { handle }, Role::Event)
                }
                _ => (
                    ObjKind::Container {
                        members: Vec::new(),
                    },
                    Role::Container,
                ),
            };
            let obj = r.new_obj(name, ptr.identity(), kind);
            r.bind(ran.bind, obj, ptr);
            let short = class_name.trim_start_matches("CLSID_");
            r.trace
                .participant(name, &format!("{name} ({short})"), role);
            ran.event(r, EventKind::Create, &ran.step.actor, name, short);
            Ok(Outcome::hr(hr))
        },
    ))
}
