//! The events side of a run ([`check_world_ops`]): real `ManualResetEvent`s / `StdEvent`s, a
//! `SynchronizeContainer` and [`co_wait_for_multiple_handles`] against a [`World`]. After
//! every agreed step each event's signaled state must match the model's.

use super::{describe, Exec, Mismatch, Report, Run, RunOptions, Side};
use crate::call::FinishMode;
use crate::model::{EventClass, ModelOp, ModelOutcome, World};
use crate::sync::{
    co_wait_for_multiple_handles, ISynchronize, ISynchronizeContainer, ISynchronizeHandle,
    ManualResetEvent, StdEvent, SynchronizeContainer, HANDLE,
};
use crate::testing::PROBE_ASYNC_IID;
use crate::unknown::ComPtr;

/// Real events (with their handles) and a container, and the model they are compared with.
pub(super) struct WorldSide {
    model: World,
    events: Vec<ComPtr<dyn ISynchronize>>,
    handles: Vec<HANDLE>,
    container: ComPtr<dyn ISynchronizeContainer>,
    opts: RunOptions,
}

impl WorldSide {
    fn new(kinds: &[EventClass], opts: &RunOptions) -> Run<WorldSide> {
        let events: Vec<ComPtr<dyn ISynchronize>> = kinds
            .iter()
            .map(|k| match k {
                EventClass::ManualReset => ManualResetEvent::create(),
                EventClass::Auto => StdEvent::create(),
            })
            .collect();
        let handles = events
            .iter()
            .map(|e| {
                e.query::<dyn ISynchronizeHandle>()
                    .and_then(|h| h.get_handle())
                    .expect("system events expose ISynchronizeHandle")
            })
            .collect();
        let side = WorldSide {
            model: World::new(PROBE_ASYNC_IID, FinishMode::Blocking, kinds),
            events,
            handles,
            container: SynchronizeContainer::create(),
            opts: opts.clone(),
        };
        Run::new(side, format!("events {kinds:?}"))
    }
}

impl Side for WorldSide {
    type Model = World;

    fn model(&mut self) -> &mut World {
        &mut self.model
    }

    fn skip_reason(&self, op: &ModelOp, expected: &ModelOutcome) -> Option<String> {
        match expected {
            ModelOutcome::Invalid(why) => Some(format!("model: not applicable ({why})")),
            ModelOutcome::Blocks => Some("model: blocks".to_string()),
            _ if op.is_call_op() => Some("not an event operation".to_string()),
            _ => None,
        }
    }

    fn check_state(&self, expected: &ModelOutcome) -> Result<(), (String, String)> {
        for (i, (m, h)) in self.model.events().iter().zip(&self.handles).enumerate() {
            if m.is_set() != h.is_signaled() {
                let state = |s: bool| if s { "set" } else { "clear" };
                return Err((
                    format!("{}; event[{i}] {}", describe(expected), state(m.is_set())),
                    format!(
                        "the result agreed, but event[{i}] is {}",
                        state(h.is_signaled())
                    ),
                ));
            }
        }
        Ok(())
    }

    fn exec(&mut self, op: &ModelOp, _expected: &ModelOutcome, _step: usize) -> Exec {
        Ok(match op {
            ModelOp::EventSignal(e) => ModelOutcome::Returns(self.events[*e].signal()),
            ModelOp::EventReset(e) => ModelOutcome::Returns(self.events[*e].reset()),
            ModelOp::EventWait {
                event,
                flags,
                timeout,
            } => {
                let (ev, flags, timeout) = (
                    self.events[*event].clone(),
                    *flags,
                    self.opts.wait_timeout(*timeout),
                );
                ModelOutcome::Returns(
                    self.opts
                        .wait(timeout, move || ev.wait(flags, timeout))
                        .ok_or("Wait blocked")?,
                )
            }
            ModelOp::CoWait {
                flags,
                timeout,
                handles,
                index_present,
            } => {
                let hs: Option<Vec<HANDLE>> = handles
                    .as_ref()
                    .map(|hs| hs.iter().map(|&h| self.handles[h].clone()).collect());
                let (flags, timeout, present) =
                    (*flags, self.opts.wait_timeout(*timeout), *index_present);
                let run = move || {
                    let mut index = 0xDEAD_BEEF_u32;
                    let hr = co_wait_for_multiple_handles(
                        flags,
                        timeout,
                        hs.as_deref(),
                        present.then_some(&mut index),
                    );
                    ModelOutcome::CoWait {
                        hr,
                        index: present.then_some(index),
                    }
                };
                self.opts
                    .wait(timeout, run)
                    .ok_or("CoWaitForMultipleHandles blocked")?
            }
            ModelOp::AddSynchronize(e) => {
                ModelOutcome::Returns(self.container.add_synchronize(e.map(|e| &self.events[e])))
            }
            ModelOp::WaitMultiple {
                flags,
                timeout,
                out_present,
            } => {
                let (container, flags, timeout, present) = (
                    self.container.clone(),
                    *flags,
                    self.opts.wait_timeout(*timeout),
                    *out_present,
                );
                let run = move || {
                    let mut got = None;
                    let hr = container.wait_multiple(flags, timeout, present.then_some(&mut got));
                    (hr, got)
                };
                let (hr, got) = self.opts.wait(timeout, run).ok_or("WaitMultiple blocked")?;
                let position = got.and_then(|g| {
                    let event = self
                        .events
                        .iter()
                        .position(|e| ComPtr::is_same_object(e, &g))?;
                    self.model
                        .container()
                        .objects()
                        .iter()
                        .position(|&o| o == event)
                });
                ModelOutcome::WaitMultiple { hr, position }
            }
            other => return Err(format!("{other} is not an event operation")),
        })
    }
}

/// Runs `ops` against real events of the given kinds (plus a container and
/// `CoWaitForMultipleHandles`) and against a [`World`]: `Ok` if they agree at every step.
pub fn check_world_ops(
    kinds: &[EventClass],
    ops: &[ModelOp],
    opts: &RunOptions,
) -> Result<Report, Mismatch> {
    let mut run = WorldSide::new(kinds, opts);
    run.run(ops)?;
    Ok(run.report())
}
