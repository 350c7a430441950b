//! [`ContainerModel`]: one `CLSID_SynchronizeContainer` (spec 1.6). It holds at most
//! [`CONTAINER_CAPACITY`] event indices, in the order they were added.

use super::*;

/// The model of one `CLSID_SynchronizeContainer` (spec 1.6): the events added to it, in the
/// order they were added. The same event may be added more than once.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct ContainerModel {
    pub(super) objects: Vec<EventId>,
}

impl ContainerModel {
    /// An empty container.
    pub fn new() -> Self {
        Self::default()
    }

    /// The events it holds, in the order they were added.
    pub fn objects(&self) -> &[EventId] {
        &self.objects
    }

    /// `AddSynchronize(pSync)` with `event` as `pSync` (`None` = NULL): NULL → `E_INVALIDARG`;
    /// already [`CONTAINER_CAPACITY`] objects → `RPC_E_OUT_OF_RESOURCES`; otherwise `S_OK`.
    /// `event_count` is how many events exist: an index outside it is [`ModelOutcome::Invalid`].
    pub fn add_synchronize(&mut self, event: Option<EventId>, event_count: usize) -> ModelOutcome {
        let Some(e) = event else {
            return ModelOutcome::Returns(E_INVALIDARG);
        };
        if e >= event_count {
            return ModelOutcome::Invalid("unknown event index");
        }
        if self.objects.len() >= CONTAINER_CAPACITY {
            return ModelOutcome::Returns(RPC_E_OUT_OF_RESOURCES);
        }
        self.objects.push(e);
        ModelOutcome::Returns(S_OK)
    }

    /// `WaitMultiple(flags, timeout, ppSync)` with `out_present` saying whether `ppSync` is
    /// non-NULL, over `events` (the events the container's indices refer to).
    ///
    /// Checked in this order: a missing `ppSync` → `E_INVALIDARG`; `COWAIT_WAITALL` or an
    /// unknown flag bit → `E_INVALIDARG`; empty → `RPC_E_NO_SYNC`. Then the first-added
    /// signaled object → `S_OK` with its position (an auto-reset event is consumed; it stays in
    /// the container); none → `RPC_E_TIMEOUT` (D6), or [`ModelOutcome::Blocks`] for [`INFINITE`].
    pub fn wait_multiple(
        &self,
        events: &mut [EventModel],
        flags: u32,
        timeout: u32,
        out_present: bool,
    ) -> ModelOutcome {
        let returns = |hr| ModelOutcome::WaitMultiple { hr, position: None };
        if self.objects.iter().any(|&e| e >= events.len()) {
            return ModelOutcome::Invalid("unknown event index");
        }
        if !out_present {
            return returns(E_INVALIDARG);
        }
        if flags & COWAIT_WAITALL != 0 || flags & !COWAIT_VALID_FLAGS != 0 {
            return returns(E_INVALIDARG);
        }
        if self.objects.is_empty() {
            return returns(RPC_E_NO_SYNC);
        }
        if let Some(p) = self.objects.iter().position(|&e| events[e].set) {
            events[self.objects[p]].consume();
            return ModelOutcome::WaitMultiple {
                hr: S_OK,
                position: Some(p),
            };
        }
        if timeout == INFINITE {
            ModelOutcome::Blocks
        } else {
            returns(RPC_E_TIMEOUT)
        }
    }
}
