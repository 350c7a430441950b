//! [`EventModel`]: one `CLSID_ManualResetEvent` or `CLSID_StdEvent` (spec 1.4), and
//! [`co_wait_for_multiple_handles`] over a set of them (spec 1.9). A wait consumes an
//! auto-reset event only when it succeeds on it.

use super::*;

/// Which system synchronization object an [`EventModel`] is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventClass {
    /// `CLSID_ManualResetEvent`: a successful `Wait` leaves it set.
    ManualReset,
    /// `CLSID_StdEvent`: a successful `Wait` resets it (auto-reset).
    Auto,
}

/// The model of one `CLSID_ManualResetEvent` or `CLSID_StdEvent` (spec 1.4). It starts
/// clear.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct EventModel {
    pub(super) kind: EventClass,
    pub(super) set: bool,
}

impl EventModel {
    /// A clear event of the given kind.
    pub fn new(kind: EventClass) -> Self {
        EventModel { kind, set: false }
    }

    /// Its kind.
    pub fn kind(&self) -> EventClass {
        self.kind
    }

    /// Whether it is set.
    pub fn is_set(&self) -> bool {
        self.set
    }

    /// `ISynchronize::Signal()`: sets it, `S_OK`.
    pub fn signal(&mut self) -> ModelOutcome {
        self.set = true;
        ModelOutcome::Returns(S_OK)
    }

    /// `ISynchronize::Reset()`: clears it, `S_OK`.
    pub fn reset(&mut self) -> ModelOutcome {
        self.set = false;
        ModelOutcome::Returns(S_OK)
    }

    /// `ISynchronize::Wait(flags, timeout)`: unknown flag bits → `E_INVALIDARG`; set → `S_OK`
    /// (an auto-reset event is cleared by it); otherwise `RPC_S_CALLPENDING`, or
    /// [`ModelOutcome::Blocks`] for [`INFINITE`].
    pub fn wait(&mut self, flags: u32, timeout: u32) -> ModelOutcome {
        let outcome = wait_one(self.set, flags, timeout);
        if outcome == ModelOutcome::Returns(S_OK) {
            self.consume();
        }
        outcome
    }

    /// A satisfied wait's side effect: an auto-reset event is cleared.
    pub(super) fn consume(&mut self) {
        if self.kind == EventClass::Auto {
            self.set = false;
        }
    }
}

/// `CoWaitForMultipleHandles(flags, timeout, cHandles, pHandles, lpdwindex)` over model
/// events (spec 1.9). `handles` is `pHandles` (`None` = NULL; its length is `cHandles`),
/// `index_present` says whether `lpdwindex` is non-NULL.
///
/// Checked in this order: a missing index → `E_INVALIDARG`, index untouched; the index is set
/// to 0; missing handles → `E_INVALIDARG`; unknown flag bits → `E_INVALIDARG`; no handles →
/// `RPC_E_NO_SYNC`; more than [`MAXIMUM_WAIT_OBJECTS`] → `E_INVALIDARG`; `COWAIT_WAITALL`
/// with a handle listed twice → `E_INVALIDARG`. Then wait-any returns `S_OK` with the lowest
/// signaled index, consuming only that event if it is auto-reset; `COWAIT_WAITALL` returns
/// `S_OK` with index 0 when every event is set, consuming each auto-reset one. Otherwise the
/// wait times out: `RPC_S_CALLPENDING`, index 0, or [`ModelOutcome::Blocks`] for [`INFINITE`].
///
/// A handle that is not an index into `events` gives [`ModelOutcome::Invalid`] before anything
/// else.
pub fn co_wait_for_multiple_handles(
    events: &mut [EventModel],
    flags: u32,
    timeout: u32,
    handles: Option<&[EventId]>,
    index_present: bool,
) -> ModelOutcome {
    if handles.is_some_and(|hs| hs.iter().any(|&h| h >= events.len())) {
        return ModelOutcome::Invalid("unknown event index");
    }
    let returns = |hr| ModelOutcome::CoWait { hr, index: Some(0) };
    if !index_present {
        return ModelOutcome::CoWait {
            hr: E_INVALIDARG,
            index: None,
        };
    }
    let Some(handles) = handles else {
        return returns(E_INVALIDARG);
    };
    if flags & !COWAIT_VALID_FLAGS != 0 {
        return returns(E_INVALIDARG);
    }
    if handles.is_empty() {
        return returns(RPC_E_NO_SYNC);
    }
    if handles.len() > MAXIMUM_WAIT_OBJECTS {
        return returns(E_INVALIDARG);
    }
    let wait_all = flags & COWAIT_WAITALL != 0;
    if wait_all {
        let duplicate = handles
            .iter()
            .enumerate()
            .any(|(i, h)| handles[..i].contains(h));
        if duplicate {
            return returns(E_INVALIDARG);
        }
        if handles.iter().all(|&h| events[h].set) {
            for &h in handles {
                events[h].consume();
            }
            return returns(S_OK);
        }
    } else if let Some(i) = handles.iter().position(|&h| events[h].set) {
        events[handles[i]].consume();
        return ModelOutcome::CoWait {
            hr: S_OK,
            index: Some(i as u32),
        };
    }
    if timeout == INFINITE {
        ModelOutcome::Blocks
    } else {
        returns(RPC_S_CALLPENDING)
    }
}
