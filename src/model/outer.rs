//! The aggregating client's outer `ISynchronize` as the call object sees it (spec 3.6): its
//! scripted answers ([`OuterScript`]), the counts of its `Reset`s and `Signal`s and where its
//! completion callback is ([`OuterModel`], [`SignalPhase`]). Only [`CallModel`] changes it.

use super::*;

/// The `HRESULT` at position `n` of a script, `S_OK` past its end.
pub(super) fn nth(results: &[HRESULT], n: u32) -> HRESULT {
    results.get(n as usize).copied().unwrap_or(S_OK)
}

/// How an aggregating client's outer `ISynchronize` answers the call object (spec 3.6): what
/// its `n`-th `Reset` and `n`-th `Signal` return (index 0 first, `S_OK` past the end of each
/// list; an outer whose method panics is scripted as `E_UNEXPECTED`), and whether the
/// model delivers `Signal`s itself.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct OuterScript {
    /// What each `Reset` returns, in order.
    pub reset_results: Vec<HRESULT>,
    /// What each `Signal` returns, in order.
    pub signal_results: Vec<HRESULT>,
    /// `false` (the default): a completion calls the outer's `Signal` at once, as one step with it
    /// (a single-threaded client sees nothing between them). `true`: the `Signal` becomes
    /// [due](SignalPhase::Due) and waits for [`ModelOp::OuterSignal`] (or
    /// [`ModelOp::OuterSignalEnter`] … [`ModelOp::OuterSignalReturn`], with operations made from
    /// inside it between the two), so that other threads' operations can come first.
    pub explicit_signals: bool,
}

impl OuterScript {
    /// An outer whose `Reset` and `Signal` always return `S_OK`.
    pub fn ok() -> Self {
        Self::default()
    }

    /// The same script with [explicit signals](OuterScript::explicit_signals).
    pub fn explicit(mut self) -> Self {
        self.explicit_signals = true;
        self
    }
}

/// Where the aggregating client's completion callback (its outer `Signal`) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignalPhase {
    /// No completed call waits for its `Signal`.
    Idle,
    /// Call number `call` completed; its `Signal` has not been called yet. A `Begin_` of the
    /// next call waits for it ([`ModelOutcome::Blocks`]); a final `Release` drops it.
    Due {
        /// The call's number ([`CallModel::call_number`]).
        call: u64,
    },
    /// The outer's `Signal` for call `call` is running; the model's operations are made from
    /// inside it, on its thread (`Finish_`, and `Begin_` of the next call, are allowed).
    Running {
        /// The call it signals.
        call: u64,
        /// A call that completed while it ran (on its thread): signalled after it returns,
        /// unless another call was begun by then.
        deferred: Option<u64>,
    },
}

/// The model of an aggregating client's outer `ISynchronize`, as the call object sees it:
/// its script, how many times it was reset and signalled, and its pending `Signal`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OuterModel {
    pub(super) script: OuterScript,
    pub(super) resets: u32,
    pub(super) signals: u32,
    pub(super) phase: SignalPhase,
    /// A call completed while the outer's `Reset` ran; its `Signal` waits for the `Reset`.
    pub(super) after_reset: bool,
}

impl OuterModel {
    /// How the outer answers.
    pub fn script(&self) -> &OuterScript {
        &self.script
    }

    /// How many times the call object called the outer's `Reset`.
    pub fn resets(&self) -> u32 {
        self.resets
    }

    /// How many times the call object called (entered) the outer's `Signal`.
    pub fn signals(&self) -> u32 {
        self.signals
    }

    /// Where the completion callback is.
    pub fn phase(&self) -> SignalPhase {
        self.phase
    }
}
