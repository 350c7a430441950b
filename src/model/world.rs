//! [`World`]: a call object, its events and a container driven by one operation type,
//! [`ModelOp`], whose `Display` prints each operation as a COM call; the form the
//! operation-sequence tests, the fuzz decoder and the runners use.

use std::fmt;

use super::*;

/// One operation on a [`World`]. `Display` (and `Debug`) print it as a one-line COM call, e.g.
/// `Begin_Read`, `Wait(0, 0)`, `Cancel(1)`, `event[0].Signal()`.
#[derive(Clone, PartialEq, Eq)]
pub enum ModelOp {
    /// `Begin_m(in…)` on the call object.
    Begin(MethodIndex),
    /// The server completes the current call (`Signal` on the call object's `ISynchronize`
    /// after storing its results).
    ServerComplete {
        /// The server method's `HRESULT`.
        hr: HRESULT,
        /// The server method's out-parameters.
        outs: Outs,
    },
    /// `Finish_m(out…)` on the call object.
    Finish(MethodIndex),
    /// `ICancelMethodCalls::Cancel(ulSeconds)`; `u32::MAX` is
    /// [`RPC_C_CANCEL_INFINITE_TIMEOUT`].
    Cancel(u32),
    /// The window of the in-flight `Cancel` expires before the server completes.
    CancelTimeout,
    /// `ICancelMethodCalls::TestCancel()`.
    TestCancel,
    /// `ISynchronize::Wait(dwFlags, dwMilliseconds)` on the call object.
    Wait {
        /// `COWAIT_FLAGS`.
        flags: u32,
        /// Milliseconds, or [`INFINITE`].
        timeout: u32,
    },
    /// `QueryInterface(iid)` on the call object.
    QueryInterface(IID),
    /// The final `Release` of the call object.
    Release,
    /// Aggregated: the completing thread calls the outer's due `Signal`, which returns
    /// ([`CallModel::outer_signal`]).
    OuterSignal,
    /// Aggregated: the completing thread enters the outer's due `Signal`; operations until
    /// [`ModelOp::OuterSignalReturn`] are made from inside it ([`CallModel::outer_signal_enter`]).
    OuterSignalEnter,
    /// Aggregated: the running outer `Signal` returns ([`CallModel::outer_signal_return`]).
    OuterSignalReturn,
    /// `ISynchronize::Signal()` on an event.
    EventSignal(EventId),
    /// `ISynchronize::Reset()` on an event.
    EventReset(EventId),
    /// `ISynchronize::Wait(dwFlags, dwMilliseconds)` on an event.
    EventWait {
        /// Which event.
        event: EventId,
        /// `COWAIT_FLAGS`.
        flags: u32,
        /// Milliseconds, or [`INFINITE`].
        timeout: u32,
    },
    /// `CoWaitForMultipleHandles` over the events' handles.
    CoWait {
        /// `COWAIT_FLAGS`.
        flags: u32,
        /// Milliseconds, or [`INFINITE`].
        timeout: u32,
        /// `pHandles` (`None` = NULL), as event indices; its length is `cHandles`.
        handles: Option<Vec<EventId>>,
        /// Whether `lpdwindex` is non-NULL.
        index_present: bool,
    },
    /// `ISynchronizeContainer::AddSynchronize(pSync)` (`None` = NULL).
    AddSynchronize(Option<EventId>),
    /// `ISynchronizeContainer::WaitMultiple(dwFlags, dwTimeOut, ppSync)`.
    WaitMultiple {
        /// `COWAIT_FLAGS`.
        flags: u32,
        /// Milliseconds, or [`INFINITE`].
        timeout: u32,
        /// Whether `ppSync` is non-NULL.
        out_present: bool,
    },
}

impl ModelOp {
    /// Whether the operation is on the call object (handled by [`CallModel::apply`]).
    pub fn is_call_op(&self) -> bool {
        matches!(
            self,
            ModelOp::Begin(_)
                | ModelOp::ServerComplete { .. }
                | ModelOp::Finish(_)
                | ModelOp::Cancel(_)
                | ModelOp::CancelTimeout
                | ModelOp::TestCancel
                | ModelOp::Wait { .. }
                | ModelOp::QueryInterface(_)
                | ModelOp::Release
                | ModelOp::OuterSignal
                | ModelOp::OuterSignalEnter
                | ModelOp::OuterSignalReturn
        )
    }
}

struct Ms(u32);

impl fmt::Display for Ms {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == INFINITE {
            f.write_str("INFINITE")
        } else {
            write!(f, "{}", self.0)
        }
    }
}

struct Hr(HRESULT);

impl fmt::Display for Hr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.name() {
            Some(n) => f.write_str(n),
            None => write!(f, "0x{:08X}", self.0.as_u32()),
        }
    }
}

struct Iid(IID);

impl fmt::Display for Iid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match WELL_KNOWN.iter().find(|(_, g)| *g == self.0) {
            Some((n, _)) => f.write_str(n),
            None => write!(f, "{}", self.0),
        }
    }
}

impl fmt::Display for ModelOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ModelOp::Begin(m) => write!(f, "Begin_{}", method_name(*m)),
            ModelOp::ServerComplete { hr, outs } => {
                write!(f, "ServerComplete({}, {outs:?})", Hr(*hr))
            }
            ModelOp::Finish(m) => write!(f, "Finish_{}", method_name(*m)),
            ModelOp::Cancel(s) if *s == RPC_C_CANCEL_INFINITE_TIMEOUT => {
                f.write_str("Cancel(RPC_C_CANCEL_INFINITE_TIMEOUT)")
            }
            ModelOp::Cancel(s) => write!(f, "Cancel({s})"),
            ModelOp::CancelTimeout => f.write_str("CancelTimeout"),
            ModelOp::TestCancel => f.write_str("TestCancel()"),
            ModelOp::Wait { flags, timeout } => write!(f, "Wait({flags}, {})", Ms(*timeout)),
            ModelOp::QueryInterface(iid) => write!(f, "QueryInterface({})", Iid(*iid)),
            ModelOp::Release => f.write_str("Release()"),
            ModelOp::OuterSignal => f.write_str("outer.Signal()"),
            ModelOp::OuterSignalEnter => f.write_str("outer.Signal() {"),
            ModelOp::OuterSignalReturn => f.write_str("} outer.Signal() returns"),
            ModelOp::EventSignal(e) => write!(f, "event[{e}].Signal()"),
            ModelOp::EventReset(e) => write!(f, "event[{e}].Reset()"),
            ModelOp::EventWait {
                event,
                flags,
                timeout,
            } => write!(f, "event[{event}].Wait({flags}, {})", Ms(*timeout)),
            ModelOp::CoWait {
                flags,
                timeout,
                handles,
                index_present,
            } => {
                write!(f, "CoWaitForMultipleHandles({flags}, {}, ", Ms(*timeout))?;
                match handles {
                    Some(hs) => write!(f, "{}, {hs:?}, ", hs.len())?,
                    None => f.write_str("0, NULL, ")?,
                }
                f.write_str(if *index_present { "&index)" } else { "NULL)" })
            }
            ModelOp::AddSynchronize(Some(e)) => write!(f, "container.AddSynchronize(event[{e}])"),
            ModelOp::AddSynchronize(None) => f.write_str("container.AddSynchronize(NULL)"),
            ModelOp::WaitMultiple {
                flags,
                timeout,
                out_present,
            } => write!(
                f,
                "container.WaitMultiple({flags}, {}, {})",
                Ms(*timeout),
                if *out_present { "&pSync" } else { "NULL" }
            ),
        }
    }
}

impl fmt::Debug for ModelOp {
    /// The same one-line COM call as `Display`, so that failing operation sequences (for
    /// example proptest's shrunk cases) read as code.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// A call object, a set of events and a synchronize container, driven by [`ModelOp`]s.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct World {
    call: CallModel,
    events: Vec<EventModel>,
    container: ContainerModel,
}

impl World {
    /// A fresh call object for `async_iid` with the given [`FinishMode`], one clear event per
    /// entry of `events`, and an empty container.
    pub fn new(async_iid: IID, mode: FinishMode, events: &[EventClass]) -> Self {
        World {
            call: CallModel::with_mode(async_iid, mode),
            events: events.iter().map(|&k| EventModel::new(k)).collect(),
            container: ContainerModel::new(),
        }
    }

    /// The given call object (for example an [aggregated](CallModel::aggregated) one), one
    /// clear event per entry of `events`, and an empty container.
    pub fn with_call(call: CallModel, events: &[EventClass]) -> Self {
        World {
            call,
            events: events.iter().map(|&k| EventModel::new(k)).collect(),
            container: ContainerModel::new(),
        }
    }

    /// The call object.
    pub fn call(&self) -> &CallModel {
        &self.call
    }

    /// The events.
    pub fn events(&self) -> &[EventModel] {
        &self.events
    }

    /// The event at index `e`.
    pub fn event(&self, e: EventId) -> Option<&EventModel> {
        self.events.get(e)
    }

    /// The container.
    pub fn container(&self) -> &ContainerModel {
        &self.container
    }

    /// Applies one operation: mutates the world and returns what the operation does.
    pub fn apply(&mut self, op: &ModelOp) -> ModelOutcome {
        match op {
            op if op.is_call_op() => self.call.apply(op),
            ModelOp::EventSignal(e) => match self.events.get_mut(*e) {
                Some(ev) => ev.signal(),
                None => ModelOutcome::Invalid("unknown event index"),
            },
            ModelOp::EventReset(e) => match self.events.get_mut(*e) {
                Some(ev) => ev.reset(),
                None => ModelOutcome::Invalid("unknown event index"),
            },
            ModelOp::EventWait {
                event,
                flags,
                timeout,
            } => match self.events.get_mut(*event) {
                Some(ev) => ev.wait(*flags, *timeout),
                None => ModelOutcome::Invalid("unknown event index"),
            },
            ModelOp::CoWait {
                flags,
                timeout,
                handles,
                index_present,
            } => co_wait_for_multiple_handles(
                &mut self.events,
                *flags,
                *timeout,
                handles.as_deref(),
                *index_present,
            ),
            ModelOp::AddSynchronize(e) => self.container.add_synchronize(*e, self.events.len()),
            ModelOp::WaitMultiple {
                flags,
                timeout,
                out_present,
            } => self
                .container
                .wait_multiple(&mut self.events, *flags, *timeout, *out_present),
            _ => unreachable!("every call operation is handled above"),
        }
    }

    /// The pure form of [`World::apply`]: `(state, op) → (outcome, next state)`.
    pub fn step(&self, op: &ModelOp) -> (ModelOutcome, World) {
        let mut next = self.clone();
        let outcome = next.apply(op);
        (outcome, next)
    }

    /// Applies the operations in order and returns their outcomes.
    pub fn run(&mut self, ops: &[ModelOp]) -> Vec<ModelOutcome> {
        ops.iter().map(|op| self.apply(op)).collect()
    }

    /// Checks the call object's invariants ([`CallModel::check_invariants`]) and the
    /// container's: at most [`CONTAINER_CAPACITY`] objects, each a valid event index.
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        self.call.check_invariants()?;
        if self.container.objects.len() > CONTAINER_CAPACITY {
            return Err("the container holds at most 63 objects");
        }
        if self
            .container
            .objects
            .iter()
            .any(|&e| e >= self.events.len())
        {
            return Err("the container holds only known events");
        }
        Ok(())
    }
}
