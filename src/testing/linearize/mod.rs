//! Linearizability checking (Wing & Gong): is a concurrent history explainable by *some*
//! sequential order of its operations that respects real time, in which the reference model
//! gives every operation the result it was observed to have?
//!
//! * [`Clock`] stamps each operation's invocation and response from one global atomic counter
//!   (an order, not wall-clock time): `a` precedes `b` in real time iff `a.response <
//!   b.invoke`.
//! * [`check`] searches the orders consistent with that precedence, depth first, memoising
//!   (set of operations done, model state) pairs that lead nowhere. Histories of up to 64
//!   operations; in practice 10–30.
//! * [`run_concurrent_call`] runs a [`ConcurrentPlan`] — client threads doing `Begin_`,
//!   `Finish_` (strict or blocking), `Cancel(0)`, windowed `Cancel`s, `TestCancel`,
//!   `Wait(0)` and the final `Release` on one call object, optionally aggregated by an outer
//!   `ISynchronize` that counts (and may fail or panic in) its `Reset`s and `Signal`s, and a
//!   server thread completing every call it is handed — records the history, and checks it
//!   against [`CallModel`] (see [`GenModel`]).
//!
//! # How the history is cut into steps
//!
//! Most operations are one entry, from the tick before the call to the tick after it. Three
//! have an effect inside them that other threads can see before they return, and are recorded
//! as two entries, so that the model can place the two halves separately:
//!
//! * an aggregated `Begin_` that reaches the outer's `Reset`: `Begin_` up to the `Reset`
//!   (the outer ticks when it is entered; the call is `Pending` from here) and the `Reset`'s
//!   return to the `Begin_`'s return ([`CallModel::begin_start`],
//!   [`CallModel::begin_reset_returns`]);
//! * a windowed `Cancel(s)`: the request (the call is `Cancelling`, or the `Cancel` answers at
//!   once) and the return; both span the whole call ([`ConcOp::CancelRequest`],
//!   [`ConcOp::CancelReturn`]);
//! * the outer's `Signal` is an entry of its own ([`ConcOp::OuterSignal`]) from its entry tick
//!   to the return of the operation that completed the call (a server completion or a
//!   `Cancel`), because a failing `Signal` changes the result after it returns.
//!
//! Each client operation holds a COM reference while it runs, as COM requires of a caller, so
//! the final release happens when the `Release` operation and every operation that overlaps
//! it are done (for an aggregated call object, possibly later, in a thread of the
//! implementation that held the outer last); the `Release` entry ends when it has run.
//! Operations that start after it call through the harness's memory reference, as a
//! use-after-release would.
//!
//! # Files
//!
//! This file holds the generic search ([`Clock`], [`Entry`], [`check`]); `ops.rs` the
//! call object's concurrent operations and their model ([`ConcOp`], [`ConcResult`],
//! [`GenModel`], [`conc_step`]); `harness.rs` the threads that produce a history
//! ([`run_concurrent_call`], [`NotLinearizable`]).

use std::cell::RefCell;
use std::collections::HashSet;
use std::fmt::{self, Debug};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Barrier, Mutex, Weak};
use std::thread;
use std::time::Duration;

use super::{AsyncIProbe, IProbeCalls, IProbeIn};
use crate::call::{AsyncInterface, CallHandler, CallObject, ICancelMethodCalls, ServerCall};
use crate::guid::IID;
use crate::hresult::{
    E_HANDLE, E_NOINTERFACE, E_NOTIMPL, E_UNEXPECTED, HRESULT, RPC_E_CALL_COMPLETE,
    RPC_E_DISCONNECTED, RPC_S_CALLPENDING, S_OK,
};
use crate::model::{CallModel, FinishMode, ModelOutcome, OuterScript, SignalPhase, State};
use crate::sync::ISynchronize;
use crate::unknown::{non_delegating, ComPtr, IUnknown, RefCount};

mod harness;
mod ops;

pub use harness::{run_concurrent_call, NotLinearizable, HANG_LIMIT};
pub use ops::{conc_step, BeginPart, ConcOp, ConcResult, ConcurrentPlan, GenModel};

/// A global logical clock: every tick is unique and increasing.
#[derive(Debug, Default)]
pub struct Clock(AtomicU64);

impl Clock {
    /// A clock at 0.
    pub const fn new() -> Self {
        Clock(AtomicU64::new(0))
    }

    /// The next instant.
    pub fn tick(&self) -> u64 {
        // SeqCst: ticks are a single total order that also orders the operations' own memory
        // effects between them.
        self.0.fetch_add(1, Ordering::SeqCst)
    }
}

/// One completed operation of a concurrent history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry<O, R> {
    /// The thread that ran it.
    pub thread: usize,
    /// The operation.
    pub op: O,
    /// What it returned.
    pub result: R,
    /// [`Clock`] tick taken just before the call.
    pub invoke: u64,
    /// [`Clock`] tick taken just after it returned.
    pub response: u64,
}

/// Searches for a linearization of `history`: `step(state, op, result)` is the model, `Some(next)`
/// if `op` may return `result` in `state`. Returns the witness order (indices into `history`),
/// or `None` if the history is not linearizable. Panics for more than 64 operations.
pub fn check<S, O, R>(
    init: &S,
    history: &[Entry<O, R>],
    step: impl Fn(&S, &O, &R) -> Option<S>,
) -> Option<Vec<usize>>
where
    S: Clone + Debug,
{
    assert!(history.len() <= 64, "histories of at most 64 operations");
    let all = if history.len() == 64 {
        u64::MAX
    } else {
        (1u64 << history.len()) - 1
    };
    let mut dead: HashSet<(u64, String)> = HashSet::new();
    let mut order = Vec::with_capacity(history.len());
    fn dfs<S: Clone + Debug, O, R>(
        state: &S,
        done: u64,
        all: u64,
        history: &[Entry<O, R>],
        step: &impl Fn(&S, &O, &R) -> Option<S>,
        dead: &mut HashSet<(u64, String)>,
        order: &mut Vec<usize>,
    ) -> bool {
        if done == all {
            return true;
        }
        let key = (done, format!("{state:?}"));
        if dead.contains(&key) {
            return false;
        }
        // An operation may go next iff no other pending operation responded before it was
        // invoked.
        let min_response = history
            .iter()
            .enumerate()
            .filter(|(i, _)| done & (1 << i) == 0)
            .map(|(_, e)| e.response)
            .min()
            .unwrap_or(u64::MAX);
        for (i, e) in history.iter().enumerate() {
            if done & (1 << i) != 0 || e.invoke > min_response {
                continue;
            }
            if let Some(next) = step(state, &e.op, &e.result) {
                order.push(i);
                if dfs(&next, done | (1 << i), all, history, step, dead, order) {
                    return true;
                }
                order.pop();
            }
        }
        dead.insert(key);
        false
    }
    dfs(init, 0, all, history, &step, &mut dead, &mut order).then_some(order)
}
