//! Client-side aggregation (spec 3.6) in scripts: `Outer` makes a controlling unknown whose
//! `ISynchronize` is the script's own — it counts the `Reset`s and `Signal`s that reach it and
//! keeps a manual-reset event they set and clear — and `Signals O` / `Resets O` read the
//! counts. `CreateCall F IFACE IUnknown outer O` aggregates a call object under it
//! ([`super::lifecycle::create_call`]).
//!
//! Invariants: the outer answers `IUnknown`, `ISynchronize` and `ISynchronizeHandle` only (it
//! does not forward other requests to the call object: the script holds the call object's
//! non-delegating unknown in the `CreateCall` variable and uses that); the call object holds
//! the outer weakly, the script's variable strongly; the counts are read on the runner thread
//! once every actor has settled, so they include every `Signal` a completion caused.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};

use super::super::parse::Step;
use super::super::ptr::Ptr;
use super::super::report::Outcome;
use super::super::run::ScriptError;
use super::super::runner::{ObjKind, Runner};
use super::super::trace::{EventKind, Role};
use super::{prepared, Arrow, Prepared};
use crate::hresult::{HRESULT, S_OK};
use crate::sync::wait::wait_single;
use crate::sync::{ISynchronize, ISynchronizeHandle, HANDLE};
use crate::unknown::{ComPtr, RefCount};

/// A script's controlling unknown: an `ISynchronize` that counts what reaches it.
pub(crate) struct ScriptOuter {
    refs: RefCount,
    me: Weak<ScriptOuter>,
    /// Set by `Signal`, cleared by `Reset` (manual reset).
    event: HANDLE,
    signals: AtomicU32,
    resets: AtomicU32,
}

impl ScriptOuter {
    /// How many `Signal`s (`signals`) or `Reset`s reached it.
    pub(crate) fn count(&self, signals: bool) -> u32 {
        if signals {
            self.signals.load(Ordering::SeqCst)
        } else {
            self.resets.load(Ordering::SeqCst)
        }
    }
}

impl ISynchronize for ScriptOuter {
    fn wait(&self, flags: u32, timeout_ms: u32) -> HRESULT {
        wait_single(&self.event, flags, timeout_ms)
    }
    fn signal(&self) -> HRESULT {
        self.signals.fetch_add(1, Ordering::SeqCst);
        self.event.set_event();
        S_OK
    }
    fn reset(&self) -> HRESULT {
        self.resets.fetch_add(1, Ordering::SeqCst);
        self.event.reset_event();
        S_OK
    }
}

impl ISynchronizeHandle for ScriptOuter {
    fn get_handle(&self) -> crate::hresult::Result<HANDLE> {
        Ok(self.event.clone())
    }
}

crate::com_object!([] ScriptOuter {
    interfaces: [dyn ISynchronize, dyn ISynchronizeHandle]
});

/// `O = Outer`.
pub(super) fn create() -> Prepared {
    prepared(
        Arrow::default(),
        || {
            let outer = Arc::new_cyclic(|me| ScriptOuter {
                refs: RefCount::new(),
                me: me.clone(),
                event: HANDLE::create_event(true, false),
                signals: AtomicU32::new(0),
                resets: AtomicU32::new(0),
            });
            let p = ComPtr::new(outer.clone() as Arc<dyn ISynchronize>);
            (outer, Ptr::new(p))
        },
        |r, ran, (outer, ptr)| {
            let ptr = ptr.map_err(|hr: HRESULT| {
                r.rt(
                    ran.step,
                    format!("creating the object failed: {}", hr.name_or_hex()),
                )
            })?;
            let name = ran.bind.unwrap_or("outer");
            let handle = outer.event.clone();
            let obj = r.new_obj(name, ptr.identity(), ObjKind::Outer { outer, handle });
            r.bind(ran.bind, obj, ptr);
            r.trace
                .participant(name, &format!("{name} (outer unknown)"), Role::Event);
            ran.event(r, EventKind::Create, &ran.step.actor, name, "Outer");
            Ok(Outcome::text("created"))
        },
    )
}

/// `Signals O` (`signals`) / `Resets O`: the count, read on the runner thread.
pub(super) fn count(
    r: &mut Runner,
    step: &Step,
    name: &str,
    signals: bool,
) -> Result<Prepared, ScriptError> {
    let obj = r.bound(step, name)?.obj;
    let ObjKind::Outer { outer, .. } = &r.objs[obj].kind else {
        return Err(r.usage(step, format!("`{name}` is not an `Outer`")));
    };
    let n = outer.count(signals);
    Ok(prepared(
        Arrow::default(),
        || (),
        move |_, _, ()| {
            Ok(Outcome {
                count: Some(n),
                ..Outcome::default()
            })
        },
    ))
}
