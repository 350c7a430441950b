//! The verification kit (cargo feature `testing`): everything needed to check comasync — or a
//! server-side call object of your own — against the reference model [`model`].
//!
//! * [`decode`] — the byte → operation decoder shared by the proptest suites and the cargo-fuzz
//!   targets (and its inverse, [`decode::encode_call_ops`] / [`decode::encode_world_ops`], used
//!   to write seed corpora from readable operation lists);
//! * [`strategy`] — proptest strategies for operation sequences;
//! * [`runner`] — runs an operation sequence against comasync's real objects (a
//!   [`CallObject`](crate::call::CallObject) served by a
//!   [`ManualHandler`](crate::call::ManualHandler), real events, a real container and
//!   [`co_wait_for_multiple_handles`](crate::sync::co_wait_for_multiple_handles)) and against the
//!   model, comparing every result and the state after every step;
//! * [`linearize`] — a Wing–Gong linearizability checker for concurrent histories;
//! * [`server_kit`] — the user-facing harness: drives *your* server-side call object (a type
//!   implementing an interface declared with [`#[interface]`](crate::interface), hosted
//!   the way [`ServerCallHost`](crate::call::ServerCallHost) hosts it) as COM's stub does and
//!   reports where it departs from the server-side rules of spec 2.2.
//!
//! A failure always prints the operation sequence as COM calls, one per line (the model's
//! [`ModelOp`](crate::model::ModelOp) `Display`), with the step where the two sides disagree
//! marked.
//!
//! ```
//! use comasync::testing::model::{FinishMode, ModelOp, READ};
//! use comasync::hresult::{S_OK, E_FAIL};
//! use comasync::testing::runner::{check_call_ops, RunOptions};
//!
//! let ops = [
//!     ModelOp::Begin(READ),
//!     ModelOp::Wait { flags: 0, timeout: 0 },
//!     ModelOp::ServerComplete { hr: E_FAIL, outs: vec![7] },
//!     ModelOp::Finish(READ),
//!     ModelOp::Finish(READ),
//! ];
//! let report = check_call_ops(FinishMode::Strict, &ops, &RunOptions::default()).unwrap();
//! assert_eq!(report.executed, 5);
//! ```

/// Records a readable line of a run, formatted only when the run records (a failing run is
/// run again with recording on to print it).
macro_rules! note {
    ($run:expr, $($arg:tt)*) => {
        if $run.record {
            let line = format!($($arg)*);
            $run.lines.push(line);
        }
    };
}

// The reference model (library-internal without this feature, see lib.rs).
#[path = "model/mod.rs"]
pub mod model;

pub mod aggregation;
pub mod decode;
pub mod linearize;
pub mod runner;
pub mod server_host;
pub mod server_kit;
pub mod strategy;

/// The `proptest` this module is built with: the kit takes its strategies, so a crate that
/// writes strategies for [`server_kit::ServerKit`] uses this one and needs no version of its own.
pub use proptest;

use crate::hresult::HRESULT;

/// The interface the model-vs-implementation runners drive: two methods whose indices are
/// the model's [`READ`](crate::model::READ) (0) and [`WRITE`](crate::model::WRITE) (1), and
/// whose out-parameter carries the model's opaque out-values.
#[comasync::interface(
    iid = "{5A1B2C3D-4E5F-4071-8293-A4B5C6D7E8F0}",
    async_iid = "{5A1B2C3D-4E5F-4071-8293-A4B5C6D7E8F1}",
    // Vec<u32> out-parameters: not a scripted interface.
    scripts = false
)]
pub trait IProbe {
    /// `Read(tag, &outs)`: the server decides `outs`.
    #[out(outs)]
    fn read(&self, tag: u32) -> (HRESULT, Vec<u32>);
    /// `Write(tag, &outs)`: the server decides `outs`.
    #[out(outs)]
    fn write(&self, tag: u32) -> (HRESULT, Vec<u32>);
}

/// The out-parameters of `IProbe` method `method` (0 `Read`, else `Write`) carrying `outs`:
/// what the runners' servers complete calls with.
pub(crate) fn probe_out(method: usize, outs: Vec<u32>) -> IProbeOut {
    if method == 0 {
        IProbeOut::Read { outs }
    } else {
        IProbeOut::Write { outs }
    }
}

/// The asynchronous IID of [`IProbe`], the call object's interface in every runner.
pub const PROBE_ASYNC_IID: crate::guid::IID = <dyn AsyncIProbe as crate::unknown::Interface>::IID;
