//! The decisions every table of model objects shares: what model object a constructing
//! operation makes (a server, an event, a container, a `CoCreateInstance` of either), what a
//! wait finds in an object, and what `Wait`, `Signal`, `Reset` and `Begin_` do to one.
//!
//! Two tables use them: the model check's replay (`replay.rs`) and the checker's world
//! (`crate::check`). Each keeps its own object type, with its own bookkeeping; the decisions
//! live here once. Invariant: an object that is neither an event nor a call object has no
//! handle: a wait on it is not the model's (`None`), and it counts as a never-signaled
//! manual-reset event for the others' wait.

use std::collections::VecDeque;

use super::Creation;
use crate::call::FinishMode;
use crate::hresult::S_OK;
use crate::model::{CallModel, ContainerModel, EventClass, EventModel, MethodIndex, ModelOutcome};

/// The model object a constructing operation makes.
#[derive(Clone, Debug)]
pub(crate) enum Made {
    /// A hand-driven server and the `Finish_` mode of its call objects.
    Server(FinishMode),
    /// An object the model does not follow.
    Untracked,
    /// A new event.
    Event(EventModel),
    /// A new `CLSID_SynchronizeContainer`.
    Container(ContainerModel),
    /// A script-made controlling unknown.
    Outer,
}

impl Creation {
    /// What `self` makes: `None` for a `CoCreateInstance` that did not succeed (`succeeded`:
    /// it returned `S_OK`).
    pub(crate) fn made(&self, succeeded: bool) -> Option<Made> {
        Some(match self {
            Creation::Server { strict } => Made::Server(if *strict {
                FinishMode::Strict
            } else {
                FinishMode::Blocking
            }),
            Creation::Untracked { .. } => Made::Untracked,
            Creation::Event { auto } => Made::Event(event(*auto)),
            Creation::Container => Made::Container(ContainerModel::new()),
            Creation::CoCreate { .. } if !succeeded => return None,
            Creation::CoCreate { event: Some(auto) } => Made::Event(event(*auto)),
            Creation::CoCreate { event: None } => Made::Container(ContainerModel::new()),
            Creation::Outer => Made::Outer,
        })
    }
}

/// A new event: auto-reset (`CLSID_StdEvent`) if `auto`, else manual-reset.
fn event(auto: bool) -> EventModel {
    EventModel::new(if auto {
        EventClass::Auto
    } else {
        EventClass::ManualReset
    })
}

/// A table's model object, as the shared decisions see it.
pub(crate) trait ModelObject: Sized {
    /// The object a constructing operation made, as this table keeps it.
    fn from_made(made: Made) -> Self;
    /// An object the model no longer follows.
    fn untracked() -> Self;
    /// The event, if this is one.
    fn event_mut(&mut self) -> Option<&mut EventModel>;
    /// The event, if this is one.
    fn event(&self) -> Option<&EventModel>;
    /// The call object's model, if this is a call object.
    fn call(&self) -> Option<&CallModel>;

    /// Whether this has a handle a wait can use (an event or a call object).
    fn waitable(&self) -> bool {
        self.event().is_some() || self.call().is_some()
    }

    /// `ISynchronize::Wait(flags, timeout)` on it: `None` if it is neither an event nor a call
    /// object.
    fn wait(&mut self, flags: u32, timeout: u32) -> Option<ModelOutcome> {
        if let Some(e) = self.event_mut() {
            return Some(e.wait(flags, timeout));
        }
        self.call().map(|c| c.wait(flags, timeout))
    }

    /// `ISynchronize::Signal` (`signal`) or `Reset` on it: an event's outcome; `None` for
    /// anything else. A call object's event set or reset by the script is no longer the
    /// model's: the call object stops being followed.
    fn signal_or_reset(&mut self, signal: bool) -> Option<ModelOutcome> {
        if let Some(e) = self.event_mut() {
            return Some(if signal { e.signal() } else { e.reset() });
        }
        if self.call().is_some() {
            *self = Self::untracked();
        }
        None
    }
}

/// The [`ModelObject`] accessors of an object enum with the variants `Untracked`,
/// `Event(EventModel)` and `Call(call)`, where `call.model` is the call object's model: written
/// inside the `impl ModelObject` block, beside its `from_made`.
macro_rules! model_object_accessors {
    ($obj:ident) => {
        fn untracked() -> Self {
            $obj::Untracked
        }

        fn event_mut(&mut self) -> Option<&mut EventModel> {
            match self {
                $obj::Event(e) => Some(e),
                _ => None,
            }
        }

        fn event(&self) -> Option<&EventModel> {
            match self {
                $obj::Event(e) => Some(e),
                _ => None,
            }
        }

        fn call(&self) -> Option<&CallModel> {
            match self {
                $obj::Call(c) => Some(&c.model),
                _ => None,
            }
        }
    };
}
pub(crate) use model_object_accessors;

/// Every object of `objs` (each `T` holding its object, reached by `obj`) as a model event, a
/// call object's manual-reset event as it is, for a wait on the objects `waited`: `None` if
/// one of those is neither an event nor a call object.
pub(crate) fn snapshot<T, O: ModelObject>(
    objs: &[T],
    obj: impl Fn(&T) -> &O,
    waited: &[usize],
) -> Option<Vec<EventModel>> {
    if waited.iter().any(|&i| !obj(&objs[i]).waitable()) {
        return None;
    }
    Some(
        objs.iter()
            .map(|t| {
                let o = obj(t);
                match (o.event(), o.call()) {
                    (Some(e), _) => e.clone(),
                    (None, Some(c)) => c.event_model(),
                    (None, None) => EventModel::new(EventClass::ManualReset),
                }
            })
            .collect(),
    )
}

/// Keeps what a wait that returned did to the events of `objs` (an auto-reset event it
/// consumed); `events` is the [`snapshot`] the wait ran on.
pub(crate) fn write_back<T, O: ModelObject>(
    objs: &mut [T],
    obj: impl Fn(&mut T) -> &mut O,
    events: Vec<EventModel>,
) {
    for (t, e) in objs.iter_mut().zip(events) {
        if let Some(mine) = obj(t).event_mut() {
            *mine = e;
        }
    }
}

/// `Begin_` of method `m` on a call object's `model`: a call it began waits for the server in
/// `queued` (by call number).
pub(crate) fn begin(
    model: &mut CallModel,
    queued: &mut VecDeque<u64>,
    m: MethodIndex,
) -> ModelOutcome {
    let o = model.begin(m);
    if o == ModelOutcome::Returns(S_OK) {
        queued.push_back(model.call_number());
    }
    o
}
