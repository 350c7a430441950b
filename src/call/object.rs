//! The call object: what `ICallFactory::CreateCall` hands the client. It exposes the
//! asynchronous interface, `ISynchronize` and `ISynchronizeHandle` (an aggregated
//! `ManualResetEvent`, spec D13) and `ICancelMethodCalls` — and nothing else.
//!
//! The aggregated `ManualResetEvent` is built in: the call object answers `ISynchronize` and
//! `ISynchronizeHandle` itself, over its own manual-reset event handle, exactly as a
//! `CLSID_ManualResetEvent` aggregated under it would (its `IUnknown` is the call object's,
//! `Wait` does not reset, no `ISynchronizeEvent`). That saves a separate COM object per call
//! object: a pending call's bytes are a goal of docs/performance.md (P5).
//!
//! Every decision of the call protocol is [`CallState`]'s; this module only carries the
//! effects out: it starts the server ([`CallHandler::begin`]) with the in-parameters, stores
//! the server's result, resets and signals the event, wakes a blocked `Finish_` or `Cancel`,
//! and drops late results.
//!
//! # Invariants
//!
//! * The state and the result slot live behind one lock; no user code, outer unknown or
//!   `Signal` is ever called while it is held.
//! * The result slot is written once per call (by the server's completion, if it is current)
//!   and taken once (by `Finish_`); a late or abandoned result is dropped, never delivered.
//! * The completion is published (state `Signaled`) and the call's event set in one critical
//!   section, so whoever sees the signal can `Finish_` without waiting, and whoever sees the
//!   state (by `Finish_`, `Cancel` or a new `Begin_`) sees the event set; an aggregating
//!   client's `Signal` is called after, outside the lock (spec 3.6).
//! * `Finish_` and `Cancel` wait on the call's own condition variable, not on the COM-visible
//!   event, so a client that resets or signals the event itself cannot make them hang.
//! * An aggregating outer sees, for consecutive calls N and N+1, `Reset(N)`, then `Signal(N)`
//!   returning, then `Reset(N+1)`: a `Begin_` waits for the previous call's `Signal` to return,
//!   unless it is made from inside that `Signal` (then the outer itself ordered them). A
//!   completion inside the outer's `Signal` on the same thread is delivered after it returns,
//!   in a loop (constant stack), or dropped if the client has begun another call since.
//! * The outer is reached at completion through the `ISynchronize` taken at `Begin_` (memory
//!   only, no `QueryInterface`); `Signal` is called holding a reference taken by `AddRef`, and
//!   not at all on an outer whose count already reached zero (never revived, never signalled
//!   after its final release). A panic in the outer's `Reset`, `Signal` or `QueryInterface` is
//!   caught and becomes `E_UNEXPECTED`.
//! * A `Begin_` never overtakes another still inside the outer's `Reset`.
//! * Server tokens ([`ServerCall`]) hold the call object weakly, so a released call object is
//!   freed even while its server never completes; its final release closes its handle. A
//!   handler that completes inline ([`CallHandler::begin_inline`]) gets no token: its result
//!   completes the call through the call object inside `Begin_` (after the lock is released,
//!   with the thread marked as serving, exactly as a token completed there would).
//! * A pooled handler ([`CallHandler::pool`]) gets no token either: `Begin_` leaves the call's
//!   generation and in-parameters in the slot, in the critical section that begins the call,
//!   and queues the call object itself (a strong reference, held until a worker has run the
//!   job). The worker runs the in-parameters only if their generation is still current, so a
//!   job queued for a cancelled call never runs that call as the next one; in-parameters left
//!   by a superseded call are dropped by the next `Begin_` or the final release, outside the
//!   lock. A pooled transport (a proxy's channel to an MTA object, which has
//!   [`CallHandler::channel_security`]) also gets the blanket the call carries stamped with
//!   the call's generation in that critical section, on the client's thread
//!   (`ProxyBlanket::stamp`), for the worker that sends it.
//! * A blocking `Finish_` or windowed `Cancel` made from inside the server's method serving
//!   this call object does not wait for itself (docs/model.md, "Misuse, re-entrancy and the
//!   outer").

use std::any::Any;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};

use super::cancel::{ICancelMethodCalls, RPC_C_CANCEL_INFINITE_TIMEOUT};
use super::handler::{CallHandler, ServerCall};
use super::interface::AsyncInterface;
use super::on_thread;
use super::pool::{Pool, QueuedCall};
use super::state::{CallState, FinishMode, FinishStep, State};
use crate::guid::{IID_ICancelMethodCalls, IID_IClientSecurity, IID};
use crate::hresult::{E_NOINTERFACE, E_UNEXPECTED, HRESULT, RPC_E_SERVER_DIED, S_OK};
use crate::security::client_security::{self, IClientSecurity};
use crate::security::{Blanket, ProxyBlanket};
use crate::sync::prim::{Condvar, Deadline, Mutex, MutexGuard};
use crate::sync::wait::wait_single;
use crate::sync::{ISynchronize, ISynchronizeHandle, HANDLE};
use crate::unknown::{query, set_out, ComPtr, IUnknown, Interface, RefCount};

struct Slot<M: AsyncInterface> {
    state: CallState,
    result: Option<(HRESULT, Option<M::Out>)>,
    /// A call's generation and in-parameters while it waits for a pool worker
    /// ([`CallHandler::pool`]); taken by the worker that runs it, which runs it only if that
    /// generation is still the current call.
    input: Option<(u64, M::In)>,
    /// Aggregated call objects only (boxed: one pointer for the others).
    outer: Option<Box<OuterSlot>>,
}

impl<M: AsyncInterface> Slot<M> {
    /// Leaves call `generation`'s in-parameters here for a pool worker, with the blanket the
    /// call carries stamped on a pooled transport's cell (`stamp`: [`ProxyBlanket::stamp`]),
    /// in the critical section that begins the call. Returns what they replace (a superseded
    /// call's in-parameters, an older stamp), for the caller to drop outside the lock.
    fn park(
        &mut self,
        generation: u64,
        input: M::In,
        stamp: Option<&ProxyBlanket>,
    ) -> (
        Option<(u64, M::In)>,
        Option<crate::security::blanket::CallBlanket>,
    ) {
        (
            self.input.replace((generation, input)),
            stamp.and_then(|b| b.stamp(generation)),
        )
    }
}

/// How an aggregated call object talks to its outer's `ISynchronize` (spec 3.6), decided
/// under the call object's lock. The order the outer sees, for consecutive calls N and N+1:
/// `Reset(N)` before `Signal(N)` before `Reset(N+1)` — unless the outer itself begins N+1 from
/// inside `Signal(N)`.
#[derive(Default)]
struct OuterSlot {
    /// The outer's `ISynchronize` for the current call, asked for by `Begin_` while the client
    /// demonstrably holds a reference (it is calling `Begin_`). Memory only, no COM reference
    /// (which would keep the outer alive for as long as the call): the completion reaches the
    /// outer through it without a `QueryInterface` (see [`signal_outer`]).
    sync: Option<Weak<dyn ISynchronize>>,
    /// The outer's `ISynchronize` as an earlier `Begin_` found it by `QueryInterface`: a later
    /// `Begin_` reaches it again through this while it lives (an object's interfaces do not
    /// change), and asks again only once it is gone.
    found: Option<Weak<dyn ISynchronize>>,
    /// Outer `Signal`s being delivered now, on any thread. A `Begin_` on another thread waits
    /// for zero, so a previous call's `Signal` can never land after the next call's `Reset`.
    delivering: u32,
    /// A `Begin_` is calling the outer's `Reset`: a completion meanwhile is deferred to it.
    resetting: bool,
    /// A completion waiting for the thread that is resetting or delivering: its generation and
    /// the outer `ISynchronize` to signal. Delivered when that thread is done, if it is still
    /// the latest call; dropped if the client has begun another call by then.
    deferred: Option<(u64, Weak<dyn ISynchronize>)>,
    /// Blocking `Finish_`es and windowed `Cancel`s in an STA: each waits on its own auto-reset
    /// event (beside its apartment's queue) instead of the condition variable; the completion
    /// (or the object's end) sets them.
    sta_finishers: Vec<HANDLE>,
}

impl<M: AsyncInterface> Slot<M> {
    /// Under the lock, right after call `generation` completed (its event set): whether this
    /// thread must now deliver the outer's `Signal`. Not aggregated: never. A completion while
    /// a `Begin_` resets the outer, or inside the outer's own `Signal` on this thread, is
    /// deferred to that thread instead (see [`OuterSlot::deferred`]).
    #[inline]
    fn owe_signal(&mut self, generation: u64, addr: usize) -> Option<Weak<dyn ISynchronize>> {
        let o = self.outer.as_deref_mut()?;
        let sync = o.sync.take()?;
        if o.resetting || on_thread::is_delivering(addr) {
            o.deferred = Some((generation, sync));
            None
        } else {
            o.delivering += 1;
            Some(sync)
        }
    }

    fn outer_mut(&mut self) -> &mut OuterSlot {
        self.outer.get_or_insert_with(Box::default)
    }

    /// Under the lock, with a completion (or the end of the object): wakes the blocking
    /// `Finish_`es and windowed `Cancel`s of STA threads.
    #[inline]
    fn wake_sta_finishers(&self) {
        if let Some(o) = self.outer.as_deref() {
            for h in &o.sta_finishers {
                h.set_event();
            }
        }
    }
}

/// comasync's call object for the interface `M` (the `<I>Calls` type generated by
/// [`#[interface]`](crate::interface)); it implements `M`'s asynchronous interface.
///
/// Create it through an [`ICallFactory`](super::ICallFactory) (or [`super::create_call`]).
///
/// ```
/// use comasync::call::{CallObject, FinishMode, ManualHandler, State};
/// use comasync::hresult::{RPC_S_CALLPENDING, S_OK};
/// use comasync::simple_stream::{AsyncISimpleStream, ISimpleStreamCalls, ISimpleStreamOut};
/// use comasync::unknown::ComPtr;
///
/// let calls = ManualHandler::<ISimpleStreamCalls>::new();
/// let call = ComPtr::new(CallObject::new(calls.clone(), None, FinishMode::Strict));
/// assert_eq!(call.state(), State::Idle);
/// assert_eq!(call.begin_read(4), S_OK); // AsyncISimpleStream::Begin_Read
/// assert_eq!(call.state(), State::Pending);
/// assert_eq!(call.finish_read().0, RPC_S_CALLPENDING);
/// let (server_call, _input) = calls.take().unwrap();
/// server_call.complete(S_OK, ISimpleStreamOut::Read { data: b"done".to_vec() });
/// assert_eq!(call.state(), State::Signaled { cancelled: false });
/// assert_eq!(call.finish_read(), (S_OK, b"done".to_vec()));
/// assert_eq!(call.state(), State::Idle);
/// ```
///
/// Laid out in this order (`repr(C)`), without padding, so that a pending call stays small:
/// after the `Arc`'s counts (which the tokens of both sides write), the event's pointer and
/// the condition variable, then the slot (which both sides write), and last the fields only
/// read during a call, between the slot and whatever the heap puts after the object (the
/// call's event, made next): the client spins on the event while the completing thread writes
/// the slot. The spin reads the event's pointer once.
#[repr(C)]
pub struct CallObject<M: AsyncInterface> {
    /// The call's manual-reset event: what its `ISynchronize` waits on, signals and resets.
    event: HANDLE,
    done: Condvar,
    slot: Mutex<Slot<M>>,
    me: Weak<CallObject<M>>,
    handler: Arc<dyn CallHandler<M>>,
    refs: RefCount,
    mode: FinishMode,
}

impl<M: AsyncInterface> CallObject<M> {
    /// A new call object (COM count 0) served by `handler`, aggregated under `outer` if given.
    pub fn new(
        handler: Arc<dyn CallHandler<M>>,
        outer: Option<&ComPtr<dyn IUnknown>>,
        mode: FinishMode,
    ) -> Arc<CallObject<M>> {
        let refs = match outer {
            Some(o) => RefCount::aggregated(Arc::downgrade(o.as_arc())),
            None => RefCount::new(),
        };
        let outer_slot = outer.map(|_| Box::default());
        Arc::new_cyclic(|me: &Weak<CallObject<M>>| CallObject {
            refs,
            me: me.clone(),
            event: HANDLE::create_event(true, false),
            slot: Mutex::new(Slot {
                state: CallState::new(),
                result: None,
                input: None,
                outer: outer_slot,
            }),
            done: Condvar::new(),
            handler,
            mode,
        })
    }

    /// The call's state now (a snapshot, for tests and traces).
    pub fn state(&self) -> State {
        self.slot.lock().state.state()
    }

    /// The whole state-machine record now (a snapshot).
    pub fn call_state(&self) -> CallState {
        self.slot.lock().state.clone()
    }

    /// What `Finish_` does before completion.
    pub fn finish_mode(&self) -> FinishMode {
        self.mode
    }

    /// The handle of the call's event (what its `ISynchronizeHandle` returns).
    pub fn handle(&self) -> &HANDLE {
        &self.event
    }

    /// This object's address: its name in [`on_thread`]'s records.
    #[inline]
    fn addr(&self) -> usize {
        self as *const Self as *const () as usize
    }

    /// `Begin_<m>` with `input`'s in-parameters: `S_OK`, or `RPC_S_CALLPENDING` while a call
    /// is in progress (spec row 6). The generated `begin_<m>` methods call this.
    pub fn begin(&self, input: M::In) -> HRESULT {
        let admitted = self.handler.admit();
        if admitted.failed() {
            return admitted;
        }
        let method = M::method_of(&input);
        if self.refs.is_aggregated() {
            return self.begin_aggregated(method, input);
        }
        let pool = self.handler.pool();
        let stamp = pool.and_then(|_| self.channel_blanket());
        let (generation, next, stale) = {
            let mut slot = self.slot.lock();
            let generation = match slot.state.begin(method) {
                Ok(g) => g,
                Err(hr) => return hr,
            };
            // Row 5: the call's ISynchronize starts each call non-signaled. Done under the
            // lock so no waiter can see the previous call's signal for this one.
            self.event.reset_event();
            match pool {
                // The call waits here for a worker: in the same critical section, so the
                // worker finds it with the call's state (and the blanket it carries).
                Some(pool) => (generation, Ok(pool), slot.park(generation, input, stamp)),
                None => (generation, Err(input), (None, None)),
            }
        };
        // A superseded call's in-parameters and a replaced stamp, dropped outside the lock.
        drop(stale);
        match next {
            Ok(pool) => self.queue(pool, generation),
            Err(input) => self.serve_here(generation, method, input),
        }
        S_OK
    }

    /// Hands call `generation` to the server. A handler that completes inline
    /// ([`CallHandler::begin_inline`]) completes it here, through `self` (no token); one that
    /// runs it on a pool ([`CallHandler::pool`]) gets the call object queued.
    #[inline]
    fn start(&self, generation: u64, method: usize, input: M::In) {
        if let Some(pool) = self.handler.pool() {
            let stamp = self.channel_blanket();
            let stale = {
                let mut slot = self.slot.lock();
                if !slot.state.is_current(generation) {
                    return; // cancelled locally or released meanwhile: never reaches the server
                }
                slot.park(generation, input, stamp)
            };
            drop(stale);
            return self.queue(pool, generation);
        }
        self.serve_here(generation, method, input);
    }

    /// The blanket of a transport handler (a proxy's channel), which a pooled call stamps in
    /// the critical section that begins it (on the client's thread, for the worker that sends
    /// it: [`ProxyBlanket::stamp`]). Asked before the lock: the handler is foreign code.
    #[inline]
    fn channel_blanket(&self) -> Option<&ProxyBlanket> {
        self.handler.channel_security().map(|c| c.blanket())
    }

    /// Serves call `generation` on this thread through [`CallHandler::begin_inline`] (marked as
    /// serving this object, as `serve` marks a token's call), or hands it to
    /// [`CallHandler::begin`] with a token if the handler declines.
    #[inline]
    fn serve_here(&self, generation: u64, method: usize, input: M::In) {
        let inline = {
            let _serving = on_thread::Mark::serving(self.addr());
            self.handler.begin_inline(input)
        };
        match inline {
            Ok((hr, out)) => self.complete(generation, hr, out),
            Err(input) => self
                .handler
                .begin(ServerCall::new(self.me.clone(), generation, method), input),
        }
    }

    /// `Begin_` of an aggregated call object: the outer's `Reset` is part of starting the call
    /// and must say `S_OK` (spec 3.6); a failing or panicking `Reset` (`E_UNEXPECTED`) fails
    /// `Begin_` and leaves the call object idle.
    #[cold]
    fn begin_aggregated(&self, method: usize, input: M::In) -> HRESULT {
        let addr = self.addr();
        // The outer's ISynchronize from a QueryInterface made before the lock (foreign code),
        // when the one an earlier Begin_ found is gone.
        let mut asked: Option<Option<ComPtr<dyn ISynchronize>>> = None;
        let (generation, sync) = loop {
            let mut slot = self.slot.lock();
            // The previous call's Signal must have returned before the outer sees this call's
            // Reset, unless this Begin_ is made from inside that Signal (finding 1).
            // Nor may it overtake a Begin_ still calling the outer's Reset (whose call another
            // thread may have cancelled and finished meanwhile).
            while slot.state.state() == State::Idle
                && slot
                    .outer
                    .as_ref()
                    .is_some_and(|o| o.delivering > 0 || o.resetting)
                && !on_thread::is_delivering(addr)
            {
                slot = self.done.wait_until(slot, Deadline::Never).0;
            }
            let known = match &asked {
                Some(asked) => asked.as_ref().map(|s| s.as_arc().clone()),
                None => match slot.outer.as_ref().and_then(|o| o.found.as_ref()) {
                    Some(found) => found.upgrade(),
                    None => None,
                },
            };
            if known.is_none() && asked.is_none() {
                drop(slot);
                match catch_unwind(AssertUnwindSafe(|| self.aggregating_synchronize())) {
                    Ok(sync) => asked = Some(sync),
                    Err(_) => return E_UNEXPECTED,
                }
                continue;
            }
            let generation = match slot.state.begin(method) {
                Ok(g) => g,
                Err(hr) => {
                    drop(slot);
                    drop((known, asked)); // outside the lock
                    return hr;
                }
            };
            self.event.reset_event();
            let o = slot.outer_mut();
            o.sync = known.as_ref().map(Arc::downgrade);
            if asked.is_some() {
                o.found = o.sync.clone();
            }
            o.resetting = true;
            break (generation, known);
        };
        drop(asked); // the QueryInterface's reference; the Begin_'s caller holds the outer
        let hr = {
            // While the outer resets, this thread counts as talking to the outer: a Begin_ it
            // makes from inside Reset does not wait for itself.
            let _resetting = on_thread::Mark::delivering(addr);
            match &sync {
                Some(s) => catch_unwind(AssertUnwindSafe(|| s.reset())).unwrap_or(E_UNEXPECTED),
                None => S_OK,
            }
        };
        drop(sync);
        let (deferred, current) = {
            let mut slot = self.slot.lock();
            let current = slot.state.is_current(generation);
            let o = slot.outer_mut();
            o.resetting = false;
            if hr.failed() {
                o.sync = None;
                o.deferred = None;
                slot.state.begin_failed(generation);
                drop(slot);
                self.done.notify_all();
                return hr;
            }
            let deferred = if on_thread::is_delivering(addr) {
                None // the delivery loop this Begin_ runs inside picks it up
            } else {
                let d = o.deferred.take();
                if d.is_some() {
                    o.delivering += 1;
                }
                d
            };
            (deferred, current)
        };
        match deferred {
            Some((g, s)) => {
                if current {
                    self.start(generation, method, input);
                }
                self.deliver(g, s);
            }
            None => {
                self.done.notify_all(); // a Begin_ may wait for this Reset
                                        // A call cancelled locally during the Reset never reaches the server.
                if current {
                    self.start(generation, method, input);
                }
            }
        }
        S_OK
    }

    /// `Finish_<m>` for method index `method`: the server's `HRESULT` and out-parameters, or
    /// the protocol's failure (`RPC_E_CALL_COMPLETE` with no call, `RPC_E_CALL_CANCELED` after
    /// a local cancel, ...). The generated `finish_<m>` methods call this.
    ///
    /// A blocking `Finish_` made by the thread that is serving this call object's call (from
    /// inside the server's method) would wait for itself: it returns `RPC_S_CALLPENDING`.
    ///
    /// A blocking `Finish_` that finds the call's event clear spins briefly for the
    /// completion before it takes the lock (the answer is the state machine's either way; a
    /// `Finish_` with no call in progress answers after that spin, a few microseconds).
    pub fn finish(&self, method: usize) -> (HRESULT, Option<M::Out>) {
        // A blocking Finish_ made while the call's event is clear most likely waits for the
        // completion: it spins for it before taking the lock, so that the lock's line goes
        // to the completing thread once, not back and forth (the state machine decides under
        // the lock either way; from inside the method serving this call object it would wait
        // for itself, so it does not spin).
        let mut spun = self.mode == FinishMode::Blocking
            && !self.event.is_signaled()
            && !on_thread::is_serving(self.addr());
        if spun {
            self.spin_for_completion();
        }
        let mut slot = self.slot.lock();
        loop {
            let mode = match slot.state.state() {
                // Only a Finish_ that would block asks: from inside the method serving this
                // call object it would wait for itself, so it answers as Strict does.
                State::Pending | State::Cancelling if on_thread::is_serving(self.addr()) => {
                    FinishMode::Strict
                }
                _ => self.mode,
            };
            match slot.state.finish(method, mode) {
                FinishStep::Done { replaced_by } => {
                    let result = slot.result.take();
                    drop(slot);
                    return match replaced_by {
                        Some(hr) => (hr, None),
                        None => result.unwrap_or((E_UNEXPECTED, None)),
                    };
                }
                FinishStep::Fail(hr) => return (hr, None),
                FinishStep::Wait => {
                    if !spun {
                        spun = true;
                        drop(slot);
                        self.spin_for_completion();
                        slot = self.slot.lock();
                        continue;
                    }
                    if let Some(sta) = crate::apartment::current_sta() {
                        // An STA's blocking Finish_ dispatches incoming calls while it waits.
                        let waker = crate::apartment::StaWaker::take();
                        let woken = waker.handle();
                        slot.outer_mut().sta_finishers.push(woken.clone());
                        drop(slot);
                        crate::apartment::sta_wait(
                            &sta,
                            std::slice::from_ref(woken),
                            false,
                            u32::MAX,
                        );
                        slot = self.slot.lock();
                        let o = slot.outer_mut();
                        o.sta_finishers.retain(|h| h != woken);
                        continue;
                    }
                    // Observers may look now: this thread waits until the call completes.
                    let _blocked = crate::sync::observe::blocked(|| {
                        let me = self.me.clone();
                        let what = crate::sync::observe::What::Finish { call: self.addr() };
                        let waiting: crate::sync::observe::Waiting =
                            std::sync::Arc::new(move || {
                                me.upgrade().is_some_and(|c| {
                                    matches!(c.state(), State::Pending | State::Cancelling)
                                })
                            });
                        (what, waiting)
                    });
                    slot = self.done.wait_until(slot, Deadline::Never).0;
                }
            }
        }
    }

    /// Spins briefly, outside the lock, as every wait does before it parks: the completion
    /// sets the call's event with the state change, a lock-free flag to watch; then it waits
    /// (within the same budget) for the completing thread to leave the lock.
    fn spin_for_completion(&self) {
        let backoff = crate::sync::prim::Backoff::new();
        let event = &*self.event.0; // the event's line only, in the loop
        while !backoff.is_completed() && !event.is_signaled() {
            backoff.snooze();
        }
        while !backoff.is_completed() && self.slot.is_locked() {
            backoff.snooze();
        }
    }

    /// Queues this call object on `pool` for its call `generation`, whose in-parameters wait in
    /// the slot. A pool without workers will never run it: the call completes with
    /// `RPC_E_SERVER_DIED`, as a dropped [`ServerCall`] would.
    fn queue(&self, pool: &Pool, generation: u64) {
        let queued = match self.me.upgrade() {
            Some(me) => pool.execute_call(me),
            None => false,
        };
        if !queued {
            let input = {
                let mut slot = self.slot.lock();
                match slot.input {
                    Some((g, _)) if g == generation => slot.input.take(),
                    _ => None,
                }
            };
            drop(input);
            self.complete(generation, RPC_E_SERVER_DIED, None);
        }
    }

    /// The server's completion of call `generation` (see [`ServerCall::complete`]).
    pub(crate) fn complete(&self, generation: u64, hr: HRESULT, out: Option<M::Out>) {
        let owed = {
            let mut slot = self.slot.lock();
            if !slot.state.complete(generation) {
                drop(slot);
                drop(out); // a late result, dropped outside the lock
                return;
            }
            slot.result = Some((hr, out));
            // Under the lock, with the state change: nobody can see the call completed
            // (Finish_ it, Begin_ the next) while its event is still clear, and a late
            // set_event can never land on the next call (regression test
            // `completion_signal_never_lags_the_state`).
            self.event.set_event();
            slot.wake_sta_finishers();
            slot.owe_signal(generation, self.addr())
        };
        self.done.notify_all();
        if let Some(sync) = owed {
            self.deliver(generation, sync);
        }
    }

    /// Whether call `generation` is still wanted, and whether it was cancelled.
    pub(crate) fn server_test_cancel(&self, generation: u64) -> HRESULT {
        self.slot.lock().state.server_test_cancel(generation)
    }

    pub(crate) fn is_current(&self, generation: u64) -> bool {
        self.slot.lock().state.is_current(generation)
    }

    /// Delivers the outer's `Signal` for call `generation`, outside the lock, then any
    /// completion deferred to this thread meanwhile (in a loop, not by recursion). A failing
    /// or panicking (`E_UNEXPECTED`) `Signal` fails the call if `Finish_` has not taken it yet
    /// (the replaced result is dropped outside the lock). The caller counted this delivery in
    /// `delivering`.
    #[cold]
    fn deliver(&self, mut generation: u64, mut sync: Weak<dyn ISynchronize>) {
        loop {
            let hr = {
                let _delivering = on_thread::Mark::delivering(self.addr());
                match sync.upgrade() {
                    Some(s) => signal_outer(&*s),
                    None => S_OK,
                }
            };
            let mut slot = self.slot.lock();
            let replaced = if hr.failed() && slot.state.outer_signal_failed(generation) {
                slot.result.replace((hr, None))
            } else {
                None
            };
            let latest = slot.state.generation();
            let o = slot.outer_mut();
            let next = o.deferred.take().filter(|&(g, _)| g == latest);
            if next.is_none() {
                o.delivering -= 1;
            }
            let idle = o.delivering == 0;
            drop(slot);
            drop(replaced);
            match next {
                Some((g, s)) => (generation, sync) = (g, s),
                None => {
                    if idle {
                        self.done.notify_all(); // a Begin_ may wait for this
                    }
                    return;
                }
            }
        }
    }

    /// An aggregating client's `ISynchronize`, if it has one (a `QueryInterface` on the outer,
    /// made only while the client holds a reference).
    fn aggregating_synchronize(&self) -> Option<ComPtr<dyn ISynchronize>> {
        let outer = self.refs.outer()?;
        query::<dyn ISynchronize>(&*outer).ok()
    }

    fn final_release(&self) {
        let (result, deferred, input) = {
            let mut slot = self.slot.lock();
            slot.state.release();
            slot.wake_sta_finishers();
            let deferred = slot.outer.as_deref_mut().map(|o| {
                o.sync = None;
                o.deferred.take()
            });
            (slot.result.take(), deferred, slot.input.take())
        };
        // The object's handle is closed with it (finding 11): a wait on a copy of the handle
        // wakes with E_HANDLE instead of waiting for a call that nobody will complete.
        self.event.close_handle();
        drop((result, deferred, input));
        self.done.notify_all();
    }

    /// The cancel window of call `generation` is over: completes it locally if the server has
    /// not (`S_OK`), under the lock, and delivers the outer's `Signal`.
    fn end_cancel_window(&self, mut slot: MutexGuard<'_, Slot<M>>, generation: u64) -> HRESULT {
        let hr = slot.state.cancel_window_over(generation);
        let owed = if hr == S_OK {
            // Completed locally: set the event with the state change (see `complete`).
            self.event.set_event();
            slot.wake_sta_finishers();
            slot.owe_signal(generation, self.addr())
        } else {
            None
        };
        drop(slot);
        if hr == S_OK {
            self.done.notify_all();
            if let Some(sync) = owed {
                self.deliver(generation, sync);
            }
        }
        hr
    }
}

/// A pool worker reaches a call object queued by `Begin_` ([`CallHandler::pool`]): it runs
/// the call waiting in it, if that call is still wanted, and completes it. One queued job per
/// `Begin_`; the first to find the in-parameters runs the call, so a job queued for a call the
/// client has since cancelled (and followed with another) runs the current call, and the later
/// job finds nothing to do. Each call runs at most once.
impl<M: AsyncInterface> QueuedCall for CallObject<M> {
    fn run_queued(&self) {
        let (waiting, wanted, method) = {
            let mut slot = self.slot.lock();
            let waiting = slot.input.take();
            let wanted = waiting
                .as_ref()
                .is_some_and(|(g, _)| slot.state.is_current(*g));
            (waiting, wanted, slot.state.method())
        };
        match waiting {
            Some((generation, input)) if wanted => self.serve_here(generation, method, input),
            // Not wanted any more (the method does not run; its in-parameters are dropped
            // here, outside the lock), or an earlier job ran it.
            _ => {}
        }
    }
}

/// Calls an aggregating outer's `Signal` holding a COM reference on it, so that a client's
/// concurrent last `Release` cannot end the outer's life during the call (the final release
/// then runs when this reference is dropped). An outer whose count already reached zero — its
/// `AddRef` answers 1 (or 0 once its memory is going) — was released: it is not called, and
/// the reference just taken is left, since releasing it would run its final release a second
/// time. A panic in `Signal` becomes `E_UNEXPECTED`.
fn signal_outer(outer: &dyn ISynchronize) -> HRESULT {
    /// Releases the reference taken, also when `Signal` panics.
    struct Held<'a>(&'a dyn ISynchronize);
    impl Drop for Held<'_> {
        fn drop(&mut self) {
            self.0.release();
        }
    }
    catch_unwind(AssertUnwindSafe(|| {
        if outer.add_ref() <= 1 {
            return S_OK;
        }
        let _held = Held(outer);
        outer.signal()
    }))
    .unwrap_or(E_UNEXPECTED)
}

impl<M: AsyncInterface> ICancelMethodCalls for CallObject<M> {
    /// `Cancel(ulSeconds)` (spec row 15–17, D14). From inside the server's method serving this
    /// call object the window is not waited out (the wait would be for the caller itself).
    fn cancel(&self, seconds: u32) -> HRESULT {
        let mut slot = self.slot.lock();
        let generation = match slot.state.cancel() {
            Ok(g) => g,
            Err(hr) => return hr,
        };
        if seconds != 0 && !on_thread::is_serving(self.addr()) {
            // A harness waiting for this Cancel to block (the scenario runner) may look now.
            let _blocked = crate::sync::observe::blocked(|| {
                let me = self.me.clone();
                let what = crate::sync::observe::What::CancelWindow { call: self.addr() };
                let waiting: crate::sync::observe::Waiting = std::sync::Arc::new(move || {
                    me.upgrade().is_some_and(|c| c.state() == State::Cancelling)
                });
                (what, waiting)
            });
            let deadline = if seconds == RPC_C_CANCEL_INFINITE_TIMEOUT {
                Deadline::Never
            } else {
                Deadline::after_ms(seconds.saturating_mul(1000).min(u32::MAX - 1))
            };
            if let Some(sta) = crate::apartment::current_sta() {
                // An STA's windowed Cancel dispatches incoming calls while it waits, as its
                // blocking Finish_ does (woken by the completion, or the object's end).
                let waker = crate::apartment::StaWaker::take();
                let woken = waker.handle();
                slot.outer_mut().sta_finishers.push(woken.clone());
                while slot.state.is_current(generation) {
                    drop(slot);
                    let fired = crate::apartment::sta_wait_until(
                        &sta,
                        std::slice::from_ref(woken),
                        false,
                        deadline,
                    );
                    slot = self.slot.lock();
                    if fired.is_none() {
                        break; // the window passed
                    }
                }
                slot.outer_mut().sta_finishers.retain(|h| h != woken);
            } else {
                while slot.state.is_current(generation) {
                    let (g, timed_out) = self.done.wait_until(slot, deadline);
                    slot = g;
                    if timed_out {
                        break;
                    }
                }
            }
        }
        self.end_cancel_window(slot, generation)
    }

    fn test_cancel(&self) -> HRESULT {
        self.slot.lock().state.test_cancel()
    }
}

impl<M: AsyncInterface> CallObject<M> {
    /// Testing hook (virtual clock): the first half of `Cancel(s > 0)` without waiting — the
    /// request (`Pending → Cancelling`, `Ok(generation)`) or `Cancel`'s immediate answer.
    #[cfg(feature = "testing")]
    pub(crate) fn virtual_cancel_request(&self) -> Result<u64, HRESULT> {
        self.slot.lock().state.cancel()
    }

    /// Testing hook (virtual clock): the second half — the window of the `Cancel` that
    /// [`virtual_cancel_request`](Self::virtual_cancel_request) started for `generation` is
    /// over now; what that `Cancel` returns (the real `Cancel`'s own window end).
    #[cfg(feature = "testing")]
    pub(crate) fn virtual_cancel_window_over(&self, generation: u64) -> HRESULT {
        self.end_cancel_window(self.slot.lock(), generation)
    }

    /// Refuses every `QueryInterface` once the call object is released.
    fn check_alive(&self) -> Result<(), HRESULT> {
        self.slot.lock().state.check_alive()
    }

    /// The asynchronous interface and `ICancelMethodCalls` (`ISynchronize` and
    /// `ISynchronizeHandle` are in the `com_object!` list below).
    fn more_interfaces(&self, me: &Arc<CallObject<M>>, iid: &IID, ppv: &mut dyn Any) -> HRESULT {
        if *iid == <M::Async as Interface>::IID {
            set_out::<M::Async>(ppv, self.refs.ptr(M::upcast(me.clone())))
        } else if *iid == IID_ICancelMethodCalls {
            set_out::<dyn ICancelMethodCalls>(
                ppv,
                self.refs.ptr(me.clone() as Arc<dyn ICancelMethodCalls>),
            )
        } else if *iid == IID_IClientSecurity && self.handler.channel_security().is_some() {
            set_out::<dyn IClientSecurity>(
                ppv,
                self.refs.ptr(me.clone() as Arc<dyn IClientSecurity>),
            )
        } else {
            E_NOINTERFACE
        }
    }
}

/// The built-in `ManualResetEvent` (see the module documentation): `Wait` does not reset.
impl<M: AsyncInterface> ISynchronize for CallObject<M> {
    /// From inside the method serving this call object, a wait for the call would wait for
    /// the caller itself: it is answered as `Wait(0)` (`RPC_S_CALLPENDING` before completion).
    #[inline]
    fn wait(&self, flags: u32, timeout_ms: u32) -> HRESULT {
        if timeout_ms != 0 && !self.event.is_signaled() && on_thread::is_serving(self.addr()) {
            return wait_single(&self.event, flags, 0);
        }
        wait_single(&self.event, flags, timeout_ms)
    }
    #[inline]
    fn signal(&self) -> HRESULT {
        self.event.set_event();
        S_OK
    }
    #[inline]
    fn reset(&self) -> HRESULT {
        self.event.reset_event();
        S_OK
    }
}

impl<M: AsyncInterface> ISynchronizeHandle for CallObject<M> {
    fn get_handle(&self) -> crate::hresult::Result<HANDLE> {
        Ok(self.event.clone())
    }
}

/// `IClientSecurity` on a proxy's call object (spec 3.3): the call object's own blanket,
/// started from its proxy's; calls it begins afterwards carry it.
impl<M: AsyncInterface> IClientSecurity for CallObject<M> {
    fn query_blanket(&self, proxy: &dyn IUnknown) -> crate::hresult::Result<Blanket> {
        match self.handler.channel_security() {
            Some(c) => client_security::query_blanket(self, c, proxy),
            None => Err(crate::Error(E_NOINTERFACE)),
        }
    }

    fn set_blanket(&self, proxy: &dyn IUnknown, blanket: &Blanket) -> HRESULT {
        match self.handler.channel_security() {
            Some(c) => client_security::set_blanket(self, c, proxy, blanket),
            None => E_NOINTERFACE,
        }
    }

    fn copy_proxy(&self, proxy: &dyn IUnknown) -> crate::hresult::Result<ComPtr<dyn IUnknown>> {
        match self.handler.channel_security() {
            Some(c) => client_security::copy_proxy(self, c, proxy),
            None => Err(crate::Error(E_NOINTERFACE)),
        }
    }
}

crate::com_object!([M: AsyncInterface] CallObject<M> {
    interfaces: [dyn ISynchronize, dyn ISynchronizeHandle],
    guard: CallObject::check_alive,
    more: CallObject::more_interfaces,
    final_release: CallObject::final_release,
});
