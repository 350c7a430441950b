//! The attribute macros of [comasync](https://docs.rs/comasync): `#[interface]` declares a COM
//! interface and its asynchronous twin from one Rust trait, and `#[implement]` turns a plain
//! struct into a COM object. Use them through the library (`comasync::interface`,
//! `comasync::implement`); the generated code names the library as `::comasync`.
#![forbid(unsafe_code)]

use proc_macro::TokenStream;

mod implement;
mod interface;

/// Declares a COM interface and its asynchronous twin (`async_uuid`) from a trait whose methods
/// are written once, as Rust signatures.
///
/// ```
/// use comasync::sync::ISynchronize;
/// use comasync::{ComPtr, HRESULT};
///
/// #[comasync::interface(
///     iid = "{5B0C3E2A-1D4F-4A6B-8C9D-0E1F2A3B4C5D}",
///     async_iid = "{5B0C3E2B-1D4F-4A6B-8C9D-0E1F2A3B4C5D}"
/// )]
/// pub trait ICalculator {
///     /// `Add(a, b, &sum)`.
///     #[out(sum)]
///     fn add(&self, a: i32, b: i32) -> (HRESULT, i32);
///     /// `Advise(sink)`: no out-parameters, the `HRESULT` alone.
///     fn advise(&self, sink: ComPtr<dyn ISynchronize>) -> HRESULT;
/// }
///
/// use comasync::call::AsyncInterface;
/// use comasync::Interface;
/// assert_eq!(<dyn AsyncICalculator as Interface>::NAME, "AsyncICalculator");
/// assert_eq!(ICalculatorCalls::METHODS, ["Add", "Advise"]);
/// assert_eq!(ICalculatorMethod::Advise.index(), 1);
/// let input = ICalculatorIn::Add { a: 1, b: 2 };
/// assert_eq!(input.method(), ICalculatorMethod::Add);
/// ```
///
/// Arguments: `iid = "{…}"` and `async_iid = "{…}"` (required), `scripts = false` (optional:
/// no scenario-script glue). Per method: `#[com_name = "Name"]` (default: the PascalCase of the
/// Rust name) and `#[out(name, …)]` (the out-parameters' field names; default `out0`, `out1`,
/// …). For a trait `I` it generates the traits `I` and `AsyncI`, and `ICalls`, `IIn`, `IOut`
/// and `IMethod`; the library's `call::interface` module documents them.
#[proc_macro_attribute]
pub fn interface(attr: TokenStream, item: TokenStream) -> TokenStream {
    interface::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}

/// Makes a plain struct a COM object: `#[implement(ICalculator, ICallFactory)] struct
/// Calculator { … }` generates `Calculator_Impl` (the struct, its reference count and its weak
/// self-link; implement the listed interfaces on it, it dereferences to `Calculator`), its
/// `IUnknown`, and the constructors `Calculator::into_object`, `into_interface` and
/// `into_aggregated`.
///
/// ```
/// use std::sync::Mutex;
/// use comasync::hresult::{HRESULT, S_OK};
/// use comasync::sync::ISynchronize;
///
/// #[comasync::implement(ISynchronize)]
/// struct Counter {
///     signals: Mutex<u32>,
/// }
///
/// impl ISynchronize for Counter_Impl {
///     fn wait(&self, _flags: u32, _timeout: u32) -> HRESULT { S_OK }
///     fn signal(&self) -> HRESULT {
///         *self.signals.lock().unwrap() += 1; // the struct's fields, through Deref
///         S_OK
///     }
///     fn reset(&self) -> HRESULT { S_OK }
/// }
///
/// let sync = Counter { signals: Mutex::new(0) }.into_interface::<dyn ISynchronize>()?;
/// assert_eq!(sync.signal(), S_OK);
/// assert_eq!(sync.ref_count(), 1);
/// # Ok::<(), comasync::Error>(())
/// ```
///
/// An optional last argument `more = path` names a function
/// `fn(&Calculator_Impl, me: &Arc<Calculator_Impl>, iid: &IID, ppv: &mut dyn Any) -> HRESULT`
/// asked for any IID not listed (interfaces answered conditionally); without it they get
/// `E_NOINTERFACE`.
#[proc_macro_attribute]
pub fn implement(attr: TokenStream, item: TokenStream) -> TokenStream {
    implement::expand(attr.into(), item.into())
        .unwrap_or_else(syn::Error::into_compile_error)
        .into()
}
