//! The call-object state machine: the one place that decides what `Begin_`, `Finish_`,
//! `Cancel`, `TestCancel`, the server's completion and the final `Release` mean, and which
//! `HRESULT` each returns (spec 2.1, rows 5–23).
//!
//! It is plain data and pure functions: no locks, no threads, no events. Every call object
//! keeps one [`CallState`] behind its lock and asks it; the effects (resetting or signalling the
//! event, waking a blocked `Finish_`, dropping a late result) are the caller's, done in the
//! order the returned values say.
//!
//! ```text
//!            Begin_ (S_OK)                server completes
//!   Idle ─────────────────────▶ Pending ─────────────────────▶ Signaled{normal}
//!    ▲                            │  ▲                              │
//!    │                     Cancel │  │                              │ Finish_ → server's HRESULT
//!    │                            ▼  │ server completes in the      │
//!    │                       Cancelling ──────────────────────────▶─┘
//!    │                            │  window (Cancel → RPC_E_CALL_COMPLETE)
//!    │                            │ window over (Cancel → S_OK)
//!    │                            ▼
//!    └──── Finish_ → RPC_E_CALL_CANCELED ── Signaled{cancelled}
//!
//!   any ── final Release ──▶ Gone (a call in progress is abandoned)
//! ```
//!
//! # Invariants
//!
//! * One call at a time: `Begin_` succeeds only in `Idle`.
//! * Each call has a *generation*; the server's completion names the generation it completes,
//!   so a late completion (after a local cancel, an abandon, or for an earlier call) can never
//!   complete a later call.
//! * `Finish_` hands back a call's result at most once.
//! * The cancelled flag (what `TestCancel` reports) is set by a successful `Cancel` request and
//!   cleared only by the next successful `Begin_`.

use crate::hresult::{
    E_UNEXPECTED, HRESULT, RPC_E_CALL_CANCELED, RPC_E_CALL_COMPLETE, RPC_E_DISCONNECTED,
    RPC_S_CALLPENDING, S_OK,
};

/// Where a call object is in its life (spec 2.1).
///
/// ```
/// use comasync::call::{CallState, State};
///
/// let mut call = CallState::new();
/// assert_eq!(call.state(), State::Idle);
/// let generation = call.begin(0).unwrap(); // Begin_
/// assert_eq!(call.state(), State::Pending);
/// call.cancel().unwrap(); // Cancel: the window for the server opens
/// assert_eq!(call.state(), State::Cancelling);
/// call.cancel_window_over(generation); // the server was too late
/// assert_eq!(call.state(), State::Signaled { cancelled: true });
/// assert!(call.state().in_call()); // until Finish_
/// call.release(); // the final Release
/// assert_eq!(call.state(), State::Gone);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Fresh, or the last call finished.
    Idle,
    /// `Begin_` accepted; the server has not completed.
    Pending,
    /// A `Cancel(s)` marked the call cancelled and is waiting out its window for the server.
    Cancelling,
    /// Complete, results ready, `Finish_` not yet called. `cancelled`: completed locally by
    /// `Cancel` (`Finish_` returns `RPC_E_CALL_CANCELED`) rather than by the server.
    Signaled {
        /// Whether the call was completed locally by a cancel.
        cancelled: bool,
    },
    /// The last reference was released.
    Gone,
}

impl State {
    /// Whether a call is in progress (begun and not finished).
    pub fn in_call(self) -> bool {
        matches!(
            self,
            State::Pending | State::Cancelling | State::Signaled { .. }
        )
    }
}

/// What `Finish_` does when the call has not completed yet (spec D5).
///
/// ```
/// use comasync::call::{create_call_as, FinishMode, ICallFactory};
/// use comasync::hresult::{RPC_S_CALLPENDING, S_OK};
/// use comasync::simple_stream::{AsyncISimpleStream, SimpleStream};
/// use comasync::unknown::Interface;
///
/// assert_eq!(FinishMode::default(), FinishMode::Blocking);
/// let (server, calls) = SimpleStream::create_manual(b"abc".to_vec(), FinishMode::Strict);
/// let factory = server.query::<dyn ICallFactory>()?;
/// let call = create_call_as::<dyn AsyncISimpleStream>(&*factory, &<dyn AsyncISimpleStream as Interface>::IID)?;
/// assert_eq!(call.begin_read(1), S_OK);
/// assert_eq!(call.finish_read().0, RPC_S_CALLPENDING); // Strict: "not yet", at once
/// calls.run_next(&*server).unwrap();
/// assert_eq!(call.finish_read(), (S_OK, b"a".to_vec()));
/// # Ok::<(), comasync::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum FinishMode {
    /// Block until the call completes, as a proxy's `Finish_` does (the default).
    #[default]
    Blocking,
    /// Return `RPC_S_CALLPENDING` at once, as the docs ask clients to avoid needing.
    Strict,
}

/// The answer to `Finish_`.
///
/// ```
/// use comasync::call::{CallState, FinishMode, FinishStep};
/// use comasync::hresult::{RPC_E_CALL_CANCELED, RPC_E_CALL_COMPLETE, RPC_S_CALLPENDING};
///
/// let mut call = CallState::new();
/// assert_eq!(call.finish(0, FinishMode::Blocking), FinishStep::Fail(RPC_E_CALL_COMPLETE)); // no call
/// let generation = call.begin(0).unwrap();
/// assert_eq!(call.finish(0, FinishMode::Blocking), FinishStep::Wait);
/// assert_eq!(call.finish(0, FinishMode::Strict), FinishStep::Fail(RPC_S_CALLPENDING));
/// call.cancel().unwrap();
/// call.cancel_window_over(generation);
/// let replaced_by = Some(RPC_E_CALL_CANCELED); // not the server's result
/// assert_eq!(call.finish(0, FinishMode::Blocking), FinishStep::Done { replaced_by });
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FinishStep {
    /// The call is over: hand back its result — the server's, or `replaced_by` instead when the
    /// protocol decided otherwise (`RPC_E_CALL_CANCELED` for a call completed locally by
    /// `Cancel`, row 18). The state is now `Idle`.
    Done {
        /// The protocol's `HRESULT` that replaces the server's result, if any.
        replaced_by: Option<HRESULT>,
    },
    /// Not complete yet and the mode is `Blocking`: wait for completion, then ask again.
    Wait,
    /// Return this failure; nothing changed.
    Fail(HRESULT),
}

/// The state of one call object, with its current call's generation and method.
///
/// ```
/// use comasync::call::CallState;
/// use comasync::hresult::{RPC_E_CALL_CANCELED, RPC_S_CALLPENDING, S_OK};
///
/// let mut call = CallState::new();
/// assert_eq!(call.begin(1), Ok(1)); // Begin_ of method 1: generation 1
/// assert_eq!(call.begin(0), Err(RPC_S_CALLPENDING)); // one call at a time
/// assert_eq!(call.test_cancel(), RPC_S_CALLPENDING);
/// assert_eq!(call.cancel(), Ok(1)); // Cancel(s): wait up to s for the server, then...
/// assert_eq!(call.cancel(), Err(RPC_E_CALL_CANCELED)); // (a second Cancel)
/// assert_eq!(call.cancel_window_over(1), S_OK); // ...the call completes locally
/// assert_eq!(call.test_cancel(), RPC_E_CALL_CANCELED);
/// assert_eq!(call.server_test_cancel(1), RPC_E_CALL_CANCELED); // what the server sees
/// assert!(!call.is_current(1)); // a late result from the server is dropped
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallState {
    state: State,
    cancelled: bool,
    /// `cancelled` as it was before the last `begin`, for `begin_failed` to restore.
    cancelled_before: bool,
    generation: u64,
    method: usize,
}

impl Default for CallState {
    fn default() -> Self {
        Self::new()
    }
}

impl CallState {
    /// A fresh call object: `Idle`, never cancelled.
    pub const fn new() -> Self {
        CallState {
            state: State::Idle,
            cancelled: false,
            cancelled_before: false,
            generation: 0,
            method: 0,
        }
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The generation of the current (or last) call; 0 before the first.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The method index of the current (or last) call.
    pub fn method(&self) -> usize {
        self.method
    }

    /// `Begin_<method>`: `Ok(generation)` and `Idle → Pending` (rows 5, 22); a call in progress
    /// → `RPC_S_CALLPENDING`, the docs' `RPC_E_CALL_PENDING` (row 6, D2); released →
    /// `RPC_E_DISCONNECTED`.
    pub fn begin(&mut self, method: usize) -> Result<u64, HRESULT> {
        match self.state {
            State::Idle => {
                self.generation = self.generation.wrapping_add(1);
                self.method = method;
                self.cancelled_before = self.cancelled;
                self.cancelled = false;
                self.state = State::Pending;
                Ok(self.generation)
            }
            State::Pending | State::Cancelling | State::Signaled { .. } => Err(RPC_S_CALLPENDING),
            State::Gone => Err(RPC_E_DISCONNECTED),
        }
    }

    /// Undoes a `begin` whose start failed (the aggregating outer's `Reset` failed or
    /// panicked): call `generation` never reached the server, so whatever happened to it in
    /// the meantime (a `Cancel` from another thread) is undone too: `→ Idle`, and the
    /// cancelled flag is the previous call's again. Returns whether the state changed.
    pub(crate) fn begin_failed(&mut self, generation: u64) -> bool {
        if self.generation == generation && self.state.in_call() {
            self.state = State::Idle;
            // The call never happened: `TestCancel` answers for the previous one again.
            self.cancelled = self.cancelled_before;
            true
        } else {
            false
        }
    }

    /// The aggregating outer's `Signal` for call `generation` failed with `hr` (spec 3.6:
    /// COM then considers the call failed). `true`: the call's result is now `hr` with no
    /// out-parameters — the call is still the current one, completed by its server, and
    /// `Finish_` has not taken its result. Otherwise nothing changes (a call completed locally
    /// by `Cancel` still finishes with `RPC_E_CALL_CANCELED`; a finished call keeps what
    /// `Finish_` returned).
    pub(crate) fn outer_signal_failed(&self, generation: u64) -> bool {
        self.generation == generation && self.state == State::Signaled { cancelled: false }
    }

    /// The server completed call `generation`. `true`: accepted, `Pending`/`Cancelling →
    /// Signaled{normal}` (rows 7, 15); store the result and signal. `false`: a late result (the
    /// call was cancelled locally, abandoned, or is not the current one); drop it.
    pub(crate) fn complete(&mut self, generation: u64) -> bool {
        if generation != self.generation {
            return false;
        }
        match self.state {
            State::Pending | State::Cancelling => {
                self.state = State::Signaled { cancelled: false };
                true
            }
            _ => false,
        }
    }

    /// `Finish_<method>` (rows 12, 13, 14, 18).
    pub fn finish(&mut self, method: usize, mode: FinishMode) -> FinishStep {
        match self.state {
            State::Idle => FinishStep::Fail(RPC_E_CALL_COMPLETE),
            State::Gone => FinishStep::Fail(RPC_E_DISCONNECTED),
            _ if method != self.method => FinishStep::Fail(E_UNEXPECTED),
            State::Signaled { cancelled } => {
                self.state = State::Idle;
                FinishStep::Done {
                    replaced_by: cancelled.then_some(RPC_E_CALL_CANCELED),
                }
            }
            State::Pending | State::Cancelling => match mode {
                FinishMode::Blocking => FinishStep::Wait,
                FinishMode::Strict => FinishStep::Fail(RPC_S_CALLPENDING),
            },
        }
    }

    /// `ICancelMethodCalls::Cancel` asks: `Ok(generation)` and `Pending → Cancelling`, the call
    /// now reads as cancelled (row 15), and the caller waits out the window, then calls
    /// [`cancel_window_over`](Self::cancel_window_over). Otherwise the answer: already
    /// cancelled → `RPC_E_CALL_CANCELED` (row 16, D3); completed or no call →
    /// `RPC_E_CALL_COMPLETE` (row 17).
    pub fn cancel(&mut self) -> Result<u64, HRESULT> {
        match self.state {
            State::Pending => {
                self.state = State::Cancelling;
                self.cancelled = true;
                Ok(self.generation)
            }
            State::Cancelling | State::Signaled { cancelled: true } => Err(RPC_E_CALL_CANCELED),
            State::Signaled { cancelled: false } | State::Idle => Err(RPC_E_CALL_COMPLETE),
            State::Gone => Err(RPC_E_DISCONNECTED),
        }
    }

    /// The cancel window of call `generation` is over (D14): if the server has not completed,
    /// COM completes the call locally, `Cancelling → Signaled{cancelled}`, and `Cancel` returns
    /// `S_OK` (signal the call); if it has, `RPC_E_CALL_COMPLETE`.
    pub fn cancel_window_over(&mut self, generation: u64) -> HRESULT {
        if self.generation == generation && self.state == State::Cancelling {
            self.state = State::Signaled { cancelled: true };
            S_OK
        } else if self.state == State::Gone {
            RPC_E_DISCONNECTED
        } else {
            RPC_E_CALL_COMPLETE
        }
    }

    /// `TestCancel` (row 19): `RPC_E_CALL_CANCELED` if the current or last call was cancelled,
    /// otherwise `RPC_S_CALLPENDING`.
    pub fn test_cancel(&self) -> HRESULT {
        if self.state == State::Gone {
            RPC_E_DISCONNECTED
        } else if self.cancelled {
            RPC_E_CALL_CANCELED
        } else {
            RPC_S_CALLPENDING
        }
    }

    /// The server's `TestCancel` for call `generation`, through the stub: `RPC_E_CALL_CANCELED`
    /// if the client cancelled it, abandoned it or has moved on to another call (the server
    /// should stop working on it), otherwise `RPC_S_CALLPENDING`.
    pub fn server_test_cancel(&self, generation: u64) -> HRESULT {
        if self.generation != generation || self.state == State::Gone {
            RPC_E_CALL_CANCELED
        } else {
            self.test_cancel()
        }
    }

    /// The server's `TestCancel` for a call whose call object is gone (its client released
    /// it, and its memory is freed): `RPC_E_CALL_CANCELED`, the server should stop.
    pub const fn server_test_cancel_of_a_freed_call() -> HRESULT {
        RPC_E_CALL_CANCELED
    }

    /// A server-side `TestCancel` when no call is in progress at all (a hosted server call
    /// object asking between calls): `RPC_S_CALLPENDING`, "not cancelled".
    pub const fn test_cancel_without_a_call() -> HRESULT {
        RPC_S_CALLPENDING
    }

    /// Whether call `generation` is still the one in progress and may be completed.
    pub fn is_current(&self, generation: u64) -> bool {
        self.generation == generation && matches!(self.state, State::Pending | State::Cancelling)
    }

    /// The final `Release` (rows 20, 21): `→ Gone`. Returns whether a call in progress was
    /// abandoned.
    pub fn release(&mut self) -> bool {
        let abandoned = self.state.in_call();
        self.state = State::Gone;
        abandoned
    }

    /// `Ok(())` unless released (`RPC_E_DISCONNECTED`).
    pub fn check_alive(&self) -> Result<(), HRESULT> {
        if self.state == State::Gone {
            Err(RPC_E_DISCONNECTED)
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn row05_begin_on_idle_moves_to_pending() {
        let mut s = CallState::new();
        assert_eq!(s.begin(0), Ok(1));
        assert_eq!(s.state(), State::Pending);
    }

    #[test]
    fn row06_begin_during_a_call_is_busy() {
        let mut s = CallState::new();
        s.begin(0).unwrap();
        assert_eq!(s.begin(1), Err(RPC_S_CALLPENDING));
        s.cancel().unwrap();
        assert_eq!(s.begin(0), Err(RPC_S_CALLPENDING));
        assert_eq!(s.cancel_window_over(1), S_OK);
        assert_eq!(s.begin(0), Err(RPC_S_CALLPENDING));
    }

    #[test]
    fn late_completion_never_completes_a_later_call() {
        let mut s = CallState::new();
        let g1 = s.begin(0).unwrap();
        s.cancel().unwrap();
        assert_eq!(s.cancel_window_over(g1), S_OK);
        assert_eq!(
            s.finish(0, FinishMode::Blocking),
            FinishStep::Done {
                replaced_by: Some(RPC_E_CALL_CANCELED)
            }
        );
        let g2 = s.begin(0).unwrap();
        assert!(!s.complete(g1));
        assert_eq!(s.state(), State::Pending);
        assert!(s.complete(g2));
    }

    #[test]
    fn finish_of_another_method_is_unexpected_and_changes_nothing() {
        let mut s = CallState::new();
        let g = s.begin(0).unwrap();
        s.complete(g);
        assert_eq!(
            s.finish(1, FinishMode::Blocking),
            FinishStep::Fail(E_UNEXPECTED)
        );
        assert_eq!(
            s.finish(0, FinishMode::Blocking),
            FinishStep::Done { replaced_by: None }
        );
    }

    #[test]
    fn a_failed_begin_restores_the_previous_calls_cancelled_flag() {
        let mut s = CallState::new();
        let g = s.begin(0).unwrap();
        s.cancel().unwrap();
        assert_eq!(s.cancel_window_over(g), S_OK);
        s.finish(0, FinishMode::Strict);
        let g2 = s.begin(0).unwrap();
        assert_eq!(s.test_cancel(), RPC_S_CALLPENDING);
        assert!(s.begin_failed(g2));
        assert_eq!(s.state(), State::Idle);
        assert_eq!(s.test_cancel(), RPC_E_CALL_CANCELED);
    }

    #[test]
    fn cancelled_flag_survives_finish_and_clears_on_next_begin() {
        let mut s = CallState::new();
        let g = s.begin(0).unwrap();
        s.cancel().unwrap();
        assert_eq!(s.cancel_window_over(g), S_OK);
        s.finish(0, FinishMode::Strict);
        assert_eq!(s.test_cancel(), RPC_E_CALL_CANCELED);
        s.begin(0).unwrap();
        assert_eq!(s.test_cancel(), RPC_S_CALLPENDING);
    }
}
