//! Client-side aggregation (spec 3.6) in scripts: `Outer` makes a controlling unknown whose
//! `ISynchronize` is the script's own — it counts the `Reset`s and `Signal`s that reach it and
//! keeps a manual-reset event they set and clear — and `Signals O` / `Resets O` read the
//! counts. `CreateCall F IFACE IUnknown outer O` aggregates a call object under it
//! ([`super::lifecycle::create_call`]).
//!
//! Invariants: the outer answers `IUnknown`, `ISynchronize` and `ISynchronizeHandle` itself and
//! passes every other request to the object aggregated under it (spec 3.6). It knows that
//! object memory-only, without a COM reference: the script's `CreateCall` variable holds the
//! non-delegating unknown (the outer's reference in COM terms), so its final `Release` is the
//! call object's, and abandons a call in progress. The call object holds the outer weakly, the
//! script's variable strongly. The counts are read on the runner thread once every actor has
//! settled, so they include every `Signal` a completion caused.

use std::any::Any;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};

use super::super::parse::Step;
use super::super::ptr::Ptr;
use super::super::report::Outcome;
use super::super::run::ScriptError;
use super::super::runner::{ObjKind, Runner};
use super::super::trace::{EventKind, Role};
use super::{prepared, Arrow, Prepared};
use crate::guid::IID;
use crate::hresult::{E_NOINTERFACE, HRESULT, S_OK};
use crate::sync::prim::Mutex;
use crate::sync::wait::wait_single;
use crate::sync::{ISynchronize, ISynchronizeHandle, HANDLE};
use crate::unknown::{ComPtr, IUnknown, RefCount};

/// A script's controlling unknown: an `ISynchronize` that counts what reaches it.
pub(crate) struct ScriptOuter {
    refs: RefCount,
    me: Weak<ScriptOuter>,
    /// Set by `Signal`, cleared by `Reset` (manual reset).
    event: HANDLE,
    signals: AtomicU32,
    resets: AtomicU32,
    /// The aggregated object's non-delegating unknown, memory only (no COM reference).
    inner: Mutex<Option<Arc<dyn IUnknown>>>,
}

impl ScriptOuter {
    /// Aggregates `inner` (a non-delegating unknown, memory only): other requests go to it.
    pub(crate) fn set_inner(&self, inner: Arc<dyn IUnknown>) {
        *self.inner.lock() = Some(inner);
    }

    /// Whether an object is aggregated under it already.
    pub(crate) fn has_inner(&self) -> bool {
        self.inner.lock().is_some()
    }

    /// Every interface but its own is the aggregated object's.
    fn forward(&self, _me: &Arc<Self>, iid: &IID, ppv: &mut dyn Any) -> HRESULT {
        let inner = self.inner.lock().clone();
        match inner {
            Some(inner) => inner.query_interface(iid, ppv),
            None => E_NOINTERFACE,
        }
    }

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
    interfaces: [dyn ISynchronize, dyn ISynchronizeHandle],
    more: ScriptOuter::forward,
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
                inner: Mutex::new(None),
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
