//! Interface definitions with `async_uuid`: one declaration of a synchronous interface
//! generates the synchronous trait, its asynchronous twin `Async<Name>` with
//! `begin_<m>`/`finish_<m>` for every method (spec 1.1), and the glue ([`AsyncInterface`]) that
//! lets comasync's generic call object serve it.
//!
//! # Declaring an interface: [`#[interface]`](crate::interface)
//!
//! Write the synchronous interface as a trait, each method once, as a Rust signature, and give
//! both IIDs:
//!
//! ```
//! use comasync::sync::ISynchronize;
//! use comasync::{ComPtr, HRESULT};
//!
//! #[comasync::interface(
//!     iid = "{1E1F6B2A-7C3D-4E5F-8A9B-0C1D2E3F4A5B}",
//!     async_iid = "{1E1F6B2B-7C3D-4E5F-8A9B-0C1D2E3F4A5B}"
//! )]
//! pub trait IByteSource {
//!     /// `Pull(cb, &data)`: up to `cb` bytes.
//!     #[out(data)]
//!     fn pull(&self, cb: u32) -> (HRESULT, Vec<u8>);
//!     /// `Remaining(&left)`: how many bytes are left.
//!     #[out(left)]
//!     fn remaining(&self) -> (HRESULT, u64);
//!     /// `Advise(sink)`: an interface pointer in, no out-parameters.
//!     fn advise(&self, sink: ComPtr<dyn ISynchronize>) -> HRESULT;
//! }
//!
//! use comasync::call::AsyncInterface;
//! use comasync::unknown::Interface;
//! assert_eq!(<dyn AsyncIByteSource as Interface>::NAME, "AsyncIByteSource");
//! assert_eq!(IByteSourceCalls::METHODS, ["Pull", "Remaining", "Advise"]);
//! assert_eq!(IByteSourceMethod::Remaining.index(), 1);
//! assert_eq!(IByteSourceIn::Remaining {}.method(), IByteSourceMethod::Remaining);
//! assert_eq!(IByteSourceCalls::method_of(&IByteSourceIn::Pull { cb: 4 }), 0);
//! ```
//!
//! # What it generates
//!
//! For a trait `I` (here `IByteSource`), next to each other in the same module:
//!
//! | item | what it is |
//! |---|---|
//! | `trait I: IUnknown` | the synchronous interface: the methods as written |
//! | `trait AsyncI: IUnknown` | `begin_<m>(&self, in-parameters) -> HRESULT` and `finish_<m>(&self)` returning what `<m>` returns |
//! | `impl Interface for dyn I`, `dyn AsyncI` | the IIDs; the names `"I"` and `"AsyncI"` |
//! | `enum IMethod` | a variant per method, named with its COM name; its discriminant is the method's index (`index`, `from_index`, `name`, `ALL`) |
//! | `enum IIn`, `enum IOut` | one call's in- and out-parameters: a variant per method (`IIn::Pull { cb }`), fields named as the parameters; `method()` gives the `IMethod` |
//! | `struct ICalls` | the glue: implements [`AsyncInterface`] (the type comasync's generic call machinery takes, `CallObject<ICalls>`) |
//! | `impl AsyncI for CallObject<ICalls>` | comasync's call object speaks the asynchronous interface |
//!
//! Rules:
//!
//! * every method takes `&self` and returns `HRESULT`, or `(HRESULT, out-parameters…)`; COM
//!   objects are shared, so state is behind a lock. The signatures are kept as written, so
//!   `HRESULT` must be in scope, and be comasync's (`comasync::HRESULT`);
//! * a method's COM name is its Rust name in PascalCase (`get_handle` → `GetHandle`), or the
//!   one given by `#[com_name = "…"]`; it names the variants and `Begin_<Name>`;
//! * out-parameters are named by `#[out(name, …)]` (the fields of `IOut`), else `out0`,
//!   `out1`, …;
//! * parameter types must be `Debug + Send + 'static`, and out-parameter types `Default` (what a
//!   failed `Finish_` returns). Nothing needs `Clone` or `PartialEq`: the parameter enums derive
//!   only `Debug`. An interface pointer is a `ComPtr<dyn ISomething>` in-parameter, or an
//!   `Option<ComPtr<dyn ISomething>>` out-parameter. `[in, out]` parameters are written as an
//!   in-parameter and an out-parameter;
//! * `scripts = false` leaves out the scenario-script glue (for parameter types the script
//!   language cannot express).
//!
//! Mistakes are compile errors at the offending span: a missing IID, malformed GUID text, a
//! method without `&self`, a return type that is not `HRESULT` or `(HRESULT, …)`.

use std::fmt::Debug;
use std::sync::Arc;

use super::object::CallObject;
use crate::hresult::HRESULT;
use crate::unknown::{IUnknown, Interface};

/// The glue between a generated interface pair and comasync's generic call machinery.
/// Implemented by [`#[interface]`](crate::interface); you do not implement it by hand.
///
/// ```
/// use comasync::call::AsyncInterface;
/// use comasync::hresult::S_OK;
/// use comasync::simple_stream::{ISimpleStreamCalls, ISimpleStreamIn, ISimpleStreamOut, SimpleStream};
///
/// assert_eq!(ISimpleStreamCalls::METHODS, ["Read", "Write"]);
/// let input = ISimpleStreamIn::Write { data: b"hi".to_vec() }; // one call, as data
/// assert_eq!(ISimpleStreamCalls::method_of(&input), 1);
/// let object = SimpleStream::create_sync_only(Vec::new());
/// let (hr, out) = ISimpleStreamCalls::invoke_sync(&*object, input); // the synchronous Write
/// assert_eq!(hr, S_OK);
/// assert!(matches!(out, ISimpleStreamOut::Write { written: 2 }));
/// ```
pub trait AsyncInterface: Sized + Send + Sync + 'static {
    /// The synchronous interface, `dyn ISimpleStream`.
    type Sync: ?Sized + IUnknown + Interface;
    /// The asynchronous interface, `dyn AsyncISimpleStream`.
    type Async: ?Sized + IUnknown + Interface;
    /// One call's in-parameters (an enum with a variant per method).
    type In: Send + Debug + 'static;
    /// One call's out-parameters (an enum with a variant per method).
    type Out: Send + Debug + 'static;
    /// The methods' COM names, in declaration order; a method's index is its position here
    /// (and the discriminant of the generated `<I>Method` enum).
    const METHODS: &'static [&'static str];

    /// The method index of a call.
    fn method_of(input: &Self::In) -> usize;
    /// Runs the synchronous method on `object`.
    fn invoke_sync(object: &Self::Sync, input: Self::In) -> (HRESULT, Self::Out);
    /// Calls `Begin_<m>` on an asynchronous interface (a server-side call object).
    fn begin_async(call: &Self::Async, input: Self::In) -> HRESULT;
    /// Calls `Finish_<m>` for method `method` on an asynchronous interface; `None` for an
    /// unknown method index.
    fn finish_async(call: &Self::Async, method: usize) -> (HRESULT, Option<Self::Out>);
    /// The call object as the asynchronous interface.
    fn upcast(call: Arc<CallObject<Self>>) -> Arc<Self::Async>;
    /// A proxy as the synchronous interface.
    fn upcast_proxy(proxy: Arc<crate::proxy::Proxy<Self>>) -> Arc<Self::Sync>;
}
