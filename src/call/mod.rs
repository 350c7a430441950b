//! Call objects: asynchronous interfaces, `ICallFactory`, the call-object state machine,
//! cancellation, and the server side of a call.
//!
//! * [`state`] — the state machine, the one place that decides the protocol's `HRESULT`s;
//! * [`interface`] — [`#[interface]`](crate::interface) and [`AsyncInterface`];
//! * [`object`] — [`CallObject`], what `CreateCall` returns;
//! * [`factory`] — [`ICallFactory`], `CreateCall`'s argument rules, [`StdCallFactory`];
//! * [`handler`] — how servers complete calls ([`ServerCall`], [`CallHandler`] and the
//!   provided handlers);
//! * [`host`] — hosting a server-side call object written as the Microsoft samples do;
//! * [`callback`] — [`CompletionCallback`], a completion callback built from a closure;
//! * [`cancel`] — [`ICancelMethodCalls`] and `CoEnable/DisableCallCancellation`;
//! * [`pool`] — the fixed worker pool servers run on.

pub mod callback;
pub mod cancel;
pub mod factory;
pub mod handler;
pub mod host;
pub mod interface;
pub mod object;
mod on_thread;
pub mod pool;
pub mod state;

pub use callback::CompletionCallback;
pub use cancel::{
    call_cancellation_enabled, co_cancel_call, co_disable_call_cancellation,
    co_enable_call_cancellation, co_get_cancel_object, co_test_cancel, ICancelMethodCalls,
    RPC_C_CANCEL_INFINITE_TIMEOUT,
};
pub use factory::{
    create_aggregated_call, create_call, create_call_as, create_call_for, CallServer, ICallFactory,
    ServedBy, StdCallFactory,
};
pub use handler::{
    serve, CallHandler, InlineHandler, ManualHandler, ServerCall, SyncMethodHandler,
};
pub use host::ServerCallHost;
pub use interface::AsyncInterface;
pub use object::CallObject;
pub use pool::{Pool, PoolTask};
pub use state::{CallState, FinishMode, FinishStep, State};
