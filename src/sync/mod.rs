//! The system synchronization objects that call objects are built on: event handles,
//! `ISynchronize` and its relatives, and `CoWaitForMultipleHandles`.
//!
//! Layers, bottom up:
//!
//! * `prim` — the only place that names concrete primitives (parking_lot, crossbeam, or
//!   loom under `--cfg loom`);
//! * [`event`] — the event core and emulated [`HANDLE`]s, and the one wait routine;
//! * [`wait`] — `CoWaitForMultipleHandles` and the `COWAIT_*` flags;
//! * [`objects`] — the COM classes `ManualResetEvent`, `StdEvent`, `SynchronizeContainer`.

pub(crate) mod observe;
pub(crate) mod prim;

pub mod event;
pub mod objects;
pub mod wait;

pub use event::{HANDLE, MAXIMUM_WAIT_OBJECTS};
pub use objects::{
    ISynchronize, ISynchronizeContainer, ISynchronizeEvent, ISynchronizeHandle, ManualResetEvent,
    StdEvent, SyncEvent, SynchronizeContainer, SYNCHRONIZE_CONTAINER_CAPACITY,
};
pub use wait::{
    co_wait_for_multiple_handles, COWAIT_ALERTABLE, COWAIT_DEFAULT, COWAIT_DISPATCH_CALLS,
    COWAIT_DISPATCH_WINDOW_MESSAGES, COWAIT_INPUTAVAILABLE, COWAIT_VALID_FLAGS, COWAIT_WAITALL,
    INFINITE,
};
