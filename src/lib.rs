//! # comasync
//!
//! A portable, pure-Rust emulation of the Microsoft COM *asynchronous call* model, for
//! unit-testing call-object semantics on Linux and macOS, fuzzing them, and learning how the
//! model works. Nothing here calls Windows: `ICallFactory`, call objects, `ISynchronize`,
//! `ICancelMethodCalls` and the `HRESULT`s are reimplemented on condition variables and event
//! objects, in safe Rust (`#![forbid(unsafe_code)]`).
//!
//! ## The model in one page
//!
//! A synchronous interface `ISimpleStream` with a method `Read` has an asynchronous twin
//! `AsyncISimpleStream` with `Begin_Read` (the in-parameters) and `Finish_Read` (the
//! out-parameters and the return value). A client asks the server object for `ICallFactory`
//! (`E_NOINTERFACE`: no async support), calls `CreateCall` to get a *call object*, calls
//! `Begin_Read`, does other work, `Wait`s on the call object's `ISynchronize` (a timeout,
//! `RPC_S_CALLPENDING`, means "not yet"), and calls `Finish_Read`.
//!
//! ## Modules
//!
//! * [`hresult`] — `HRESULT`, every code with its exact Windows value, [`Error`], [`Result`];
//! * [`guid`] — `GUID`, the SDK's IIDs and CLSIDs;
//! * [`unknown`] — `IUnknown`, [`ComPtr`], aggregation;
//! * [`sync`] — event handles, `ISynchronize`, `CoWaitForMultipleHandles`;
//! * [`class`] — `CoCreateInstance` for the system classes.
//!
//! What is emulated rather than real, and every deliberate difference from Windows, is listed
//! in `docs/differences-from-windows.md`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod call;
pub mod class;
pub mod guid;
pub mod hresult;
#[cfg(feature = "windows-core")]
pub mod interop;
pub mod model;
pub mod sample_server;
pub mod script;
pub mod simple_stream;
pub mod sync;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tour;
pub mod unknown;

pub use hresult::{Error, Result, HRESULT};
pub use unknown::{ComPtr, IUnknown, Interface};

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
