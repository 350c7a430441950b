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
//! ```
//! use comasync::call::{create_call_as, ICallFactory};
//! use comasync::hresult::{RPC_E_CALL_COMPLETE, S_OK};
//! use comasync::simple_stream::{AsyncISimpleStream, SimpleStream};
//! use comasync::sync::{ISynchronize, INFINITE};
//! use comasync::unknown::Interface;
//!
//! let server = SimpleStream::create(b"hello, world".to_vec());
//! let factory = server.query::<dyn ICallFactory>()?;          // E_NOINTERFACE: no async
//! let call = create_call_as::<dyn AsyncISimpleStream>(
//!     &*factory,
//!     &<dyn AsyncISimpleStream as Interface>::IID,
//! )?;
//! assert_eq!(call.begin_read(5), S_OK);                        // Begin_Read: in-parameters
//! let sync = call.query::<dyn ISynchronize>()?;
//! assert_eq!(sync.wait(0, INFINITE), S_OK);                    // the server signalled
//! assert_eq!(call.finish_read(), (S_OK, b"hello".to_vec()));   // Finish_Read: out-parameters
//! assert_eq!(call.finish_read().0, RPC_E_CALL_COMPLETE);       // one result per call
//! # Ok::<(), comasync::Error>(())
//! ```
//!
//! ## Modules
//!
//! * [`hresult`] — `HRESULT`, every code with its exact Windows value, [`Error`], [`Result`];
//! * [`guid`] — `GUID`, the SDK's IIDs and CLSIDs;
//! * [`unknown`] — `IUnknown`, [`ComPtr`], aggregation;
//! * [`sync`] — event handles, `ISynchronize`, `CoWaitForMultipleHandles`;
//! * [`call`] — asynchronous interfaces, `ICallFactory`, call objects, cancellation, servers;
//! * [`macro@interface`] and [`macro@implement`] — declare your own interface (and get its
//!   asynchronous twin), make a plain struct a COM object;
//! * [`apartment`], [`marshal`], [`proxy`], [`stub`] — STAs and the MTA, marshaling an
//!   interface pointer to another apartment, and the proxy/stub pair that carries its calls
//!   there as messages;
//! * [`security`] — identities, client security blankets, the call context, impersonation
//!   and access checks on calls through proxies (`docs/security.md`);
//! * [`class`] — `CoCreateInstance` for the system classes;
//! * [`simple_stream`] and [`sample_server`] — the seed's `ISimpleStream`, an in-memory server
//!   for it, and a server-side call object written as Microsoft's samples write them;
//! * [`script`] and [`tour`] — the scenario language and the guided tour;
//! * `testing` (feature `testing`) — the reference model the tests compare the implementation
//!   with (`testing::model`), proptest strategies, the fuzz decoder, the
//!   model-vs-implementation runners and the test kit for your server call objects;
//! * `interop` (feature `windows-core`) — conversions to and from windows-core's types.
//!
//! References such as "spec 2.2", "row 19" and "D5" are to `docs/spec.md`, the behavioural
//! specification shipped with the crate: its sections, the rows of its state table (2.1) and
//! its discrepancy readings (section 5). `docs/model.md` draws the state machine.
//!
//! What is emulated rather than real, and every deliberate difference from Windows, is listed
//! in `docs/differences-from-windows.md`.
#![forbid(unsafe_code)]
#![deny(missing_docs)]

// The macros' expansions name the library `::comasync`, also inside it (src/simple_stream.rs).
extern crate self as comasync;

pub mod apartment;
pub mod call;
pub mod check;
pub mod class;
pub mod guid;
pub mod hresult;
#[cfg(feature = "windows-core")]
pub mod interop;
pub mod marshal;
// The reference model is library-internal: with the `testing` feature it is mounted (and
// public) as `testing::model`, otherwise privately here; `crate::model` names it either way.
#[cfg(not(feature = "testing"))]
mod model;
#[cfg(feature = "testing")]
use testing::model;
pub mod proxy;
pub mod sample_server;
pub mod script;
pub mod security;
pub mod simple_stream;
pub mod stub;
pub mod sync;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tour;
pub mod unknown;

pub use comasync_macros::{implement, interface};
pub use hresult::{Error, Result, HRESULT};
pub use unknown::{ComPtr, IUnknown, Interface};

#[doc = include_str!("../README.md")]
#[cfg(doctest)]
pub struct ReadmeDoctests;
