//! [`CallModel`]: one call object (spec 2.1) — its state, its manual-reset event, the current
//! call's method and result, the `TestCancel` flag, an in-flight `Cancel`, and (aggregated) the
//! outer it signals. Every operation keeps [`CallModel::check_invariants`].

use super::outer::nth;
use super::*;

/// The model of one call object (spec 2.1), with its manual-reset `ISynchronize`.
///
/// Fields are private so that every value is reachable by operations and satisfies
/// [`CallModel::check_invariants`].
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct CallModel {
    async_iid: IID,
    mode: FinishMode,
    state: State,
    cancelled: bool,
    /// `cancelled` before the current `Begin_`: what `TestCancel` answers again if the outer's
    /// `Reset` fails it.
    cancelled_before: bool,
    method: Option<MethodIndex>,
    event_set: bool,
    result: Option<(HRESULT, Outs)>,
    cancel_in_flight: Option<u32>,
    /// How many `Begin_`s passed the state check (the current call's number).
    calls: u64,
    outer: Option<OuterModel>,
    resetting: bool,
}

impl CallModel {
    /// A fresh call object (`Idle`, event clear) for the asynchronous interface `async_iid`,
    /// with `Finish_` blocking before completion (D5).
    pub fn new(async_iid: IID) -> Self {
        Self::with_mode(async_iid, FinishMode::default())
    }

    /// A fresh call object with the given [`FinishMode`].
    pub fn with_mode(async_iid: IID, mode: FinishMode) -> Self {
        CallModel {
            async_iid,
            mode,
            state: State::Idle,
            cancelled: false,
            cancelled_before: false,
            method: None,
            event_set: false,
            result: None,
            cancel_in_flight: None,
            calls: 0,
            outer: None,
            resetting: false,
        }
    }

    /// A fresh call object aggregated by a client whose outer `ISynchronize` answers as
    /// `script` says (spec 3.6; see [Aggregation](super#aggregation)).
    pub fn aggregated(async_iid: IID, mode: FinishMode, script: OuterScript) -> Self {
        CallModel {
            outer: Some(OuterModel {
                script,
                resets: 0,
                signals: 0,
                phase: SignalPhase::Idle,
                after_reset: false,
            }),
            ..Self::with_mode(async_iid, mode)
        }
    }

    /// The aggregating client's outer, if the call object is aggregated.
    pub fn outer(&self) -> Option<&OuterModel> {
        self.outer.as_ref()
    }

    /// How many `Begin_`s passed the state check so far: the number of the current (or last)
    /// call, counting a `Begin_` whose outer `Reset` failed.
    pub fn call_number(&self) -> u64 {
        self.calls
    }

    /// The IID of the asynchronous interface the call object implements.
    pub fn async_iid(&self) -> IID {
        self.async_iid
    }

    /// What `Finish_` does before completion.
    pub fn mode(&self) -> FinishMode {
        self.mode
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The flag `TestCancel` reports: set by a successful cancel request, cleared by the next
    /// successful `Begin_`.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled
    }

    /// The method of the call in progress (`Pending`, `Cancelling`, `Signaled`).
    pub fn method(&self) -> Option<MethodIndex> {
        self.method
    }

    /// Whether the call object's manual-reset event is set.
    pub fn event_set(&self) -> bool {
        self.event_set
    }

    /// The call object's `ISynchronize` as an event model: manual-reset, set exactly when
    /// [`event_set`](Self::event_set) — what a wait over several handles that include the call
    /// object sees.
    pub fn event_model(&self) -> EventModel {
        let mut e = EventModel::new(EventClass::ManualReset);
        if self.event_set {
            e.signal();
        }
        e
    }

    /// The server's stored `HRESULT` and out-parameters (`Signaled{cancelled: false}` only).
    pub fn result(&self) -> Option<&(HRESULT, Outs)> {
        self.result.as_ref()
    }

    /// The `ulSeconds` of the `Cancel` in flight (`Cancelling` only).
    pub fn cancel_in_flight(&self) -> Option<u32> {
        self.cancel_in_flight
    }

    /// Whether a call has been begun and not finished (`Pending`, `Cancelling`, `Signaled`).
    pub fn in_progress(&self) -> bool {
        matches!(
            self.state,
            State::Pending | State::Cancelling | State::Signaled { .. }
        )
    }

    /// `Begin_m(in…)` (rows 5, 6, 22).
    ///
    /// `Idle` → `Pending`, `S_OK`, event reset, cancelled flag cleared. `Pending`, `Cancelling`
    /// or `Signaled` → `RPC_S_CALLPENDING` (`RPC_E_CALL_PENDING`), unchanged. `Gone` →
    /// `RPC_E_DISCONNECTED`.
    ///
    /// Aggregated (spec 3.6): after the state check, `Begin_` waits for the previous call's
    /// outer `Signal` to return ([`ModelOutcome::Blocks`] while it is [due](SignalPhase::Due), or
    /// while the previous call's own `Begin_` is still in the outer's `Reset`; allowed from
    /// inside a [running](SignalPhase::Running) `Signal`, on its thread), then
    /// calls the outer's `Reset`. If `Reset` fails (a panic counts as `E_UNEXPECTED`), the call
    /// object stays `Idle`, `Begin_` returns that `HRESULT` and no server call starts.
    pub fn begin(&mut self, m: MethodIndex) -> ModelOutcome {
        match self.begin_start(m) {
            ModelOutcome::Returns(S_OK) => self.begin_reset_returns(),
            other => other,
        }
    }

    /// The first half of [`begin`](Self::begin), for histories where other threads can act
    /// while an aggregating client's `Reset` runs: the state check, the wait for the previous
    /// call's `Signal`, and (when it passes) the call becomes `Pending` and the outer's
    /// `Reset` is entered. `S_OK` means "passed, `Reset` entered"; anything else is what
    /// `Begin_` returns. Not aggregated, the call simply begins.
    pub fn begin_start(&mut self, m: MethodIndex) -> ModelOutcome {
        match self.state {
            State::Gone => ModelOutcome::Returns(RPC_E_DISCONNECTED),
            State::Idle => {
                if let Some(o) = &mut self.outer {
                    // The previous call's Signal has not returned: it is due, or cannot be
                    // due yet because that call's Begin_ is still in the outer's Reset (the
                    // call was cancelled and finished meanwhile).
                    if self.resetting || matches!(o.phase, SignalPhase::Due { .. }) {
                        return ModelOutcome::Blocks;
                    }
                    o.resets += 1;
                    self.resetting = true;
                }
                self.calls += 1;
                self.cancelled_before = self.cancelled;
                self.cancelled = false;
                self.event_set = false;
                self.result = None;
                self.state = State::Pending;
                self.method = Some(m);
                ModelOutcome::Returns(S_OK)
            }
            State::Pending | State::Cancelling | State::Signaled { .. } => {
                ModelOutcome::Returns(RPC_S_CALLPENDING)
            }
        }
    }

    /// The second half of [`begin`](Self::begin): the outer's `Reset` returns the script's
    /// `HRESULT`. On a failure a call still `Pending` goes back to `Idle` (no server call
    /// starts) and `Begin_` returns it; otherwise `Begin_` returns `S_OK`. Not aggregated:
    /// `S_OK`. [`ModelOutcome::Invalid`] when no `Reset` is running.
    ///
    /// A call completed locally (by a `Cancel`) while the `Reset` ran is signalled once it
    /// returns `S_OK`. If it fails, the call object returns to `Idle` even so — a call
    /// cancelled meanwhile and not yet finished is forgotten, a `Cancel` still waiting out its
    /// window then returns `RPC_E_CALL_COMPLETE` — and nothing is signalled.
    pub fn begin_reset_returns(&mut self) -> ModelOutcome {
        let Some(o) = &mut self.outer else {
            return ModelOutcome::Returns(S_OK);
        };
        if !self.resetting {
            return ModelOutcome::Invalid("no outer Reset is running");
        }
        self.resetting = false;
        let hr = nth(&o.script.reset_results, o.resets - 1);
        let after_reset = std::mem::take(&mut o.after_reset);
        if hr.failed() {
            if self.in_progress() {
                self.state = State::Idle;
                // The call never happened: TestCancel answers for the previous one again.
                self.cancelled = self.cancelled_before;
                self.method = None;
                self.result = None;
                self.cancel_in_flight = None;
            }
            return ModelOutcome::Returns(hr);
        }
        if after_reset && self.state != State::Gone {
            self.signal_due();
        }
        ModelOutcome::Returns(S_OK)
    }

    /// Whether an aggregating client's `Reset` runs (between
    /// [`begin_start`](Self::begin_start) and [`begin_reset_returns`](Self::begin_reset_returns)).
    pub fn resetting(&self) -> bool {
        self.resetting
    }

    /// The server completes the current call with `hr` and out-parameters `outs` (rows 7, 15,
    /// 18).
    ///
    /// `Pending` → `Signaled{cancelled: false}`, event set, results stored. `Cancelling` → the
    /// same, and the in-flight `Cancel` returns `RPC_E_CALL_COMPLETE`. Any other state: the
    /// result is [dropped](ModelOutcome::Dropped).
    pub fn server_complete(&mut self, hr: HRESULT, outs: &[u32]) -> ModelOutcome {
        let cancel_returns = match self.state {
            State::Pending => None,
            State::Cancelling => Some(RPC_E_CALL_COMPLETE),
            _ => return ModelOutcome::Dropped,
        };
        self.state = State::Signaled { cancelled: false };
        self.event_set = true;
        self.result = Some((hr, outs.to_vec()));
        self.cancel_in_flight = None;
        self.completed();
        ModelOutcome::Delivered { cancel_returns }
    }

    /// A call completed (by the server or locally): an aggregating client's `Signal` is now
    /// due — or, inside a running `Signal`, deferred until it returns — and, unless the script
    /// asks for [explicit signals](OuterScript::explicit_signals), delivered at once.
    fn completed(&mut self) {
        let resetting = self.resetting;
        let Some(o) = &mut self.outer else { return };
        if resetting {
            // Completed (locally) while the outer's Reset runs: signalled after it returns
            // S_OK, never if it fails.
            o.after_reset = true;
            return;
        }
        self.signal_due();
    }

    /// The current call's `Signal` becomes due (or deferred, inside a running `Signal`), and
    /// is delivered at once unless signals are explicit.
    fn signal_due(&mut self) {
        let calls = self.calls;
        let Some(o) = &mut self.outer else { return };
        o.phase = match o.phase {
            SignalPhase::Idle | SignalPhase::Due { .. } => SignalPhase::Due { call: calls },
            SignalPhase::Running { call, .. } => SignalPhase::Running {
                call,
                deferred: Some(calls),
            },
        };
        if !o.script.explicit_signals {
            self.outer_signal();
        }
    }

    /// The due outer `Signal` is called and returns ([`ModelOp::OuterSignal`]): the enter and the
    /// return of [`outer_signal_enter`](Self::outer_signal_enter) and
    /// [`outer_signal_return`](Self::outer_signal_return) with nothing between them. Returns
    /// what `Signal` returned; [`ModelOutcome::Invalid`] when no `Signal` is due.
    pub fn outer_signal(&mut self) -> ModelOutcome {
        match self.outer_signal_enter() {
            ModelOutcome::Returns(_) => self.outer_signal_return(),
            other => other,
        }
    }

    /// The completing thread calls the due outer `Signal` ([`ModelOp::OuterSignalEnter`]); until
    /// [`outer_signal_return`](Self::outer_signal_return), operations are made from inside it,
    /// on its thread. `S_OK`, or [`ModelOutcome::Invalid`] when no `Signal` is due.
    pub fn outer_signal_enter(&mut self) -> ModelOutcome {
        let Some(o) = &mut self.outer else {
            return ModelOutcome::Invalid("the call object is not aggregated");
        };
        let SignalPhase::Due { call } = o.phase else {
            return ModelOutcome::Invalid("no outer Signal is due");
        };
        o.signals += 1;
        o.phase = SignalPhase::Running {
            call,
            deferred: None,
        };
        ModelOutcome::Returns(S_OK)
    }

    /// The running outer `Signal` returns ([`ModelOp::OuterSignalReturn`]) with the script's
    /// `HRESULT` (a panic counts as `E_UNEXPECTED`). A failure becomes the call's result, with
    /// no out-parameters, if `Finish_` has not taken it yet (a locally cancelled call keeps
    /// `RPC_E_CALL_CANCELED`). A completion deferred while it ran is now due, unless the
    /// client has begun another call since (then it is dropped). Returns the `Signal`'s
    /// `HRESULT`; [`ModelOutcome::Invalid`] when no `Signal` runs.
    pub fn outer_signal_return(&mut self) -> ModelOutcome {
        let calls = self.calls;
        let Some(o) = &mut self.outer else {
            return ModelOutcome::Invalid("the call object is not aggregated");
        };
        let SignalPhase::Running { call, deferred } = o.phase else {
            return ModelOutcome::Invalid("no outer Signal is running");
        };
        let hr = nth(&o.script.signal_results, o.signals - 1);
        let explicit = o.script.explicit_signals;
        o.phase = match deferred {
            Some(d) if d == calls && self.state != State::Gone => SignalPhase::Due { call: d },
            _ => SignalPhase::Idle,
        };
        if hr.failed() && call == calls && self.result.is_some() {
            self.result = Some((hr, Vec::new()));
        }
        if !explicit && matches!(self.outer_phase(), Some(SignalPhase::Due { .. })) {
            self.outer_signal();
        }
        ModelOutcome::Returns(hr)
    }

    fn outer_phase(&self) -> Option<SignalPhase> {
        self.outer.as_ref().map(|o| o.phase)
    }

    /// `Finish_m(out…)` (rows 12, 13, 14, 18).
    ///
    /// Checked in this order: `Gone` → `RPC_E_DISCONNECTED`; `Idle` → `RPC_E_CALL_COMPLETE`;
    /// `m` not the begun method → `E_UNEXPECTED`, unchanged; `Signaled{false}` → the stored
    /// result ([`ModelOutcome::Finished`]), → `Idle`; `Signaled{true}` → `RPC_E_CALL_CANCELED`, →
    /// `Idle`; `Pending` or `Cancelling` → [`ModelOutcome::Blocks`] ([`FinishMode::Blocking`]) or
    /// `RPC_S_CALLPENDING` ([`FinishMode::Strict`]), unchanged. The event stays as it is.
    pub fn finish(&mut self, m: MethodIndex) -> ModelOutcome {
        match self.state {
            State::Gone => ModelOutcome::Returns(RPC_E_DISCONNECTED),
            State::Idle => ModelOutcome::Returns(RPC_E_CALL_COMPLETE),
            _ if self.method != Some(m) => ModelOutcome::Returns(E_UNEXPECTED),
            State::Signaled { cancelled: false } => {
                #[cfg(test)]
                if fault::FINISH_KEEPS_RESULT.with(std::cell::Cell::get) {
                    // The planted bug: the result stays, and the call stays Signaled.
                    if let Some((hr, outs)) = self.result.clone() {
                        return ModelOutcome::Finished { hr, outs };
                    }
                }
                let (hr, outs) = self
                    .result
                    .take()
                    .expect("invariant: Signaled{cancelled: false} stores a result");
                self.state = State::Idle;
                self.method = None;
                ModelOutcome::Finished { hr, outs }
            }
            State::Signaled { cancelled: true } => {
                self.state = State::Idle;
                self.method = None;
                ModelOutcome::Returns(RPC_E_CALL_CANCELED)
            }
            State::Pending | State::Cancelling => match self.mode {
                FinishMode::Blocking => ModelOutcome::Blocks,
                FinishMode::Strict => ModelOutcome::Returns(RPC_S_CALLPENDING),
            },
        }
    }

    /// `ICancelMethodCalls::Cancel(seconds)` (rows 15, 16, 17).
    ///
    /// `Pending`: the cancelled flag is set; with `seconds == 0` the call completes locally at
    /// once (`Signaled{true}`, event set) and `Cancel` returns `S_OK`; otherwise →
    /// `Cancelling` and the `Cancel` is [in flight](ModelOutcome::CancelInFlight). `Cancelling` or
    /// `Signaled{true}` → `RPC_E_CALL_CANCELED`. `Signaled{false}` or `Idle` →
    /// `RPC_E_CALL_COMPLETE`. `Gone` → `RPC_E_DISCONNECTED`.
    pub fn cancel(&mut self, seconds: u32) -> ModelOutcome {
        match self.state {
            State::Gone => ModelOutcome::Returns(RPC_E_DISCONNECTED),
            State::Pending => {
                self.cancelled = true;
                if seconds == 0 {
                    self.complete_locally();
                    ModelOutcome::Returns(S_OK)
                } else {
                    self.state = State::Cancelling;
                    self.cancel_in_flight = Some(seconds);
                    ModelOutcome::CancelInFlight
                }
            }
            State::Cancelling | State::Signaled { cancelled: true } => {
                ModelOutcome::Returns(RPC_E_CALL_CANCELED)
            }
            State::Signaled { cancelled: false } | State::Idle => {
                ModelOutcome::Returns(RPC_E_CALL_COMPLETE)
            }
        }
    }

    /// The window of the in-flight `Cancel` expires before the server completes (row 15):
    /// `Cancelling` → `Signaled{true}`, event set, and the `Cancel` returns `S_OK`
    /// ([`ModelOutcome::CancelReturns`]). [`ModelOutcome::Invalid`] when no `Cancel` with a finite
    /// timeout is in flight.
    pub fn cancel_timeout(&mut self) -> ModelOutcome {
        match (self.state, self.cancel_in_flight) {
            (State::Cancelling, Some(RPC_C_CANCEL_INFINITE_TIMEOUT)) => {
                ModelOutcome::Invalid("an infinite Cancel never times out")
            }
            (State::Cancelling, Some(_)) => {
                self.complete_locally();
                ModelOutcome::CancelReturns(S_OK)
            }
            _ => ModelOutcome::Invalid("no Cancel is in flight"),
        }
    }

    fn complete_locally(&mut self) {
        self.state = State::Signaled { cancelled: true };
        self.event_set = true;
        self.result = None;
        self.cancel_in_flight = None;
        self.completed();
    }

    /// `ICancelMethodCalls::TestCancel()` (row 19): `RPC_E_CALL_CANCELED` if the cancelled flag
    /// is set, else `RPC_S_CALLPENDING`; `Gone` → `RPC_E_DISCONNECTED`.
    pub fn test_cancel(&self) -> ModelOutcome {
        match self.state {
            State::Gone => ModelOutcome::Returns(RPC_E_DISCONNECTED),
            _ if self.cancelled => ModelOutcome::Returns(RPC_E_CALL_CANCELED),
            _ => ModelOutcome::Returns(RPC_S_CALLPENDING),
        }
    }

    /// `ISynchronize::Wait(flags, timeout)` on the call object (rows 8–11).
    ///
    /// `Gone` → `RPC_E_DISCONNECTED`; flag bits outside [`COWAIT_VALID_FLAGS`] →
    /// `E_INVALIDARG`; event set → `S_OK` (manual reset: not consumed); otherwise
    /// `RPC_S_CALLPENDING`, or [`ModelOutcome::Blocks`] for [`INFINITE`]. `COWAIT_WAITALL` is
    /// accepted on the single handle.
    pub fn wait(&self, flags: u32, timeout: u32) -> ModelOutcome {
        if self.state == State::Gone {
            return ModelOutcome::Returns(RPC_E_DISCONNECTED);
        }
        wait_one(self.event_set, flags, timeout)
    }

    /// `QueryInterface(iid)` (row 23): the async IID, `IUnknown`, `ISynchronize`,
    /// `ISynchronizeHandle` and `ICancelMethodCalls` → `S_OK`; anything else →
    /// `E_NOINTERFACE`; `Gone` → `RPC_E_DISCONNECTED`.
    pub fn query_interface(&self, iid: &IID) -> ModelOutcome {
        if self.state == State::Gone {
            return ModelOutcome::Returns(RPC_E_DISCONNECTED);
        }
        let known = [
            self.async_iid,
            IID_IUnknown,
            IID_ISynchronize,
            IID_ISynchronizeHandle,
            IID_ICancelMethodCalls,
        ];
        if known.contains(iid) {
            ModelOutcome::Returns(S_OK)
        } else {
            ModelOutcome::Returns(E_NOINTERFACE)
        }
    }

    /// The final `Release` (rows 20, 21): → `Gone`, abandoning any call begun and not finished
    /// ([`ModelOutcome::Released`]). A second final release is [`ModelOutcome::Invalid`].
    ///
    /// A `Cancel` still in flight (state `Cancelling`) is abandoned with the call; what it
    /// eventually returns is outside the model (in comasync its caller holds a reference, so
    /// the release cannot be final while it runs).
    pub fn release(&mut self) -> ModelOutcome {
        if self.state == State::Gone {
            return ModelOutcome::Invalid("the call object was already released");
        }
        let abandoned = self.in_progress();
        self.state = State::Gone;
        self.cancelled = false;
        self.method = None;
        self.event_set = false;
        self.result = None;
        self.cancel_in_flight = None;
        if let Some(o) = &mut self.outer {
            // A released outer is never signalled (no revival); a running Signal finishes.
            if matches!(o.phase, SignalPhase::Due { .. }) {
                o.phase = SignalPhase::Idle;
            }
        }
        ModelOutcome::Released { abandoned }
    }

    /// Applies a call-object operation ([`ModelOp::Begin`] … [`ModelOp::Release`]); any other
    /// [`ModelOp`] is [`ModelOutcome::Invalid`].
    pub fn apply(&mut self, op: &ModelOp) -> ModelOutcome {
        match op {
            ModelOp::Begin(m) => self.begin(*m),
            ModelOp::ServerComplete { hr, outs } => self.server_complete(*hr, outs),
            ModelOp::Finish(m) => self.finish(*m),
            ModelOp::Cancel(s) => self.cancel(*s),
            ModelOp::CancelTimeout => self.cancel_timeout(),
            ModelOp::TestCancel => self.test_cancel(),
            ModelOp::Wait { flags, timeout } => self.wait(*flags, *timeout),
            ModelOp::QueryInterface(iid) => self.query_interface(iid),
            ModelOp::Release => self.release(),
            ModelOp::OuterSignal => self.outer_signal(),
            ModelOp::OuterSignalEnter => self.outer_signal_enter(),
            ModelOp::OuterSignalReturn => self.outer_signal_return(),
            _ => ModelOutcome::Invalid("not an operation on the call object"),
        }
    }

    /// The pure form of [`CallModel::apply`]: the outcome and the next state.
    pub fn step(&self, op: &ModelOp) -> (ModelOutcome, CallModel) {
        let mut next = self.clone();
        let outcome = next.apply(op);
        (outcome, next)
    }

    /// Checks the invariants listed in the [module documentation](super).
    pub fn check_invariants(&self) -> Result<(), &'static str> {
        let has_method = self.method.is_some();
        let has_result = self.result.is_some();
        let in_flight = self.cancel_in_flight;
        if in_flight == Some(0) {
            return Err("a Cancel(0) is never in flight");
        }
        match self.state {
            State::Gone => {
                if has_method || has_result || self.event_set || self.cancelled {
                    return Err("Gone holds no call");
                }
                if in_flight.is_some() {
                    return Err("Gone has no Cancel in flight");
                }
            }
            State::Idle => {
                if has_method || has_result || in_flight.is_some() {
                    return Err("Idle holds no call");
                }
            }
            State::Pending => {
                if !has_method || has_result || self.event_set || self.cancelled {
                    return Err("Pending: method set, no result, event clear, not cancelled");
                }
                if in_flight.is_some() {
                    return Err("Pending has no Cancel in flight");
                }
            }
            State::Cancelling => {
                if !has_method || has_result || self.event_set || !self.cancelled {
                    return Err("Cancelling: method set, no result, event clear, cancelled");
                }
                if in_flight.is_none() {
                    return Err("Cancelling has a Cancel in flight");
                }
            }
            State::Signaled { cancelled } => {
                if !has_method || !self.event_set || in_flight.is_some() {
                    return Err("Signaled: method set, event set, no Cancel in flight");
                }
                if cancelled && (has_result || !self.cancelled) {
                    return Err("Signaled{cancelled}: no result, cancelled flag set");
                }
                if !cancelled && !has_result {
                    return Err("Signaled{normal} stores the server's result");
                }
            }
        }
        if self.resetting && self.outer.is_none() {
            return Err("only an aggregated call object resets an outer");
        }
        if let Some(o) = &self.outer {
            if o.signals > o.resets {
                return Err("the outer is signalled at most once per Reset");
            }
            if let SignalPhase::Due { call } = o.phase {
                if call != self.calls {
                    return Err("only the current call's Signal is ever due");
                }
                if matches!(self.state, State::Pending | State::Cancelling) {
                    return Err("no call is begun while the previous call's Signal is due");
                }
                if self.state == State::Gone {
                    return Err("a released outer is never signalled");
                }
            }
        }
        Ok(())
    }
}

/// A planted bug for the checker's own test (`check::tests`), off unless a test on this thread
/// switches it on.
#[cfg(test)]
pub(crate) mod fault {
    thread_local! {
        /// `Finish_` of a completed call hands the result back and leaves it in place.
        pub(crate) static FINISH_KEEPS_RESULT: std::cell::Cell<bool> =
            const { std::cell::Cell::new(false) };
    }
}
