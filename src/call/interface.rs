//! Interface definitions with `async_uuid`: one declaration of a synchronous interface
//! generates the synchronous trait, its asynchronous twin `Async<Name>` with
//! `begin_<m>`/`finish_<m>` for every method (spec 1.1), and the glue ([`AsyncInterface`]) that
//! lets comasync's generic call object serve it.
//!
//! # What [`com_interface!`](crate::com_interface) generates
//!
//! For
//!
//! ```
//! comasync::com_interface! {
//!     /// A stream of bytes.
//!     pub interface IByteSource("{1E1F6B2A-7C3D-4E5F-8A9B-0C1D2E3F4A5B}");
//!     /// Its asynchronous twin.
//!     async interface AsyncIByteSource("{1E1F6B2B-7C3D-4E5F-8A9B-0C1D2E3F4A5B}");
//!     /// The call-object glue.
//!     calls IByteSourceCalls { in IByteSourceIn, out IByteSourceOut }
//!     methods {
//!         /// Reads up to `cb` bytes.
//!         fn Pull => pull, begin_pull, finish_pull (cb: u32) -> (data: Vec<u8>);
//!         /// Says how many bytes are left.
//!         fn Remaining => remaining, begin_remaining, finish_remaining () -> (left: u64);
//!     }
//! }
//! # use comasync::call::AsyncInterface;
//! # use comasync::unknown::Interface;
//! assert_eq!(<dyn AsyncIByteSource as Interface>::NAME, "AsyncIByteSource");
//! assert_eq!(IByteSourceCalls::METHODS, ["Pull", "Remaining"]);
//! assert_eq!(IByteSourceCalls::method_of(&IByteSourceIn::Remaining {}), 1);
//! ```
//!
//! it generates:
//!
//! * `trait IByteSource: IUnknown { fn pull(&self, cb: u32) -> (HRESULT, Vec<u8>); ... }` —
//!   the return value and out-parameters, in order, as a tuple (a method without
//!   out-parameters returns the `HRESULT` alone);
//! * `trait AsyncIByteSource: IUnknown { fn begin_pull(&self, cb: u32) -> HRESULT;
//!   fn finish_pull(&self) -> (HRESULT, Vec<u8>); ... }` — `Begin_` takes the in-parameters,
//!   `Finish_` returns what the synchronous method returns;
//! * `Interface` impls carrying both IIDs;
//! * `enum IByteSourceIn { Pull { cb }, Remaining {} }` and `enum IByteSourceOut { ... }`
//!   (parameters may be interface pointers, `ComPtr<dyn ISink>`, compared by pointer): one
//!   call's parameters, as data (used by the call object, traces and the test kit);
//! * `struct IByteSourceCalls` implementing [`AsyncInterface`], and
//!   `impl AsyncIByteSource for CallObject<IByteSourceCalls>`: comasync's call object speaks the
//!   asynchronous interface;
//! * with `script` at the end of the `calls` line (`calls IByteSourceCalls { in IByteSourceIn,
//!   out IByteSourceOut, script }`): `impl ScriptInterface for IByteSourceCalls` (scenario
//!   scripts can call `Begin_Pull c 4`; every parameter type must implement
//!   [`ScriptParam`](crate::script::ScriptParam)) and
//!   `impl IByteSource for ScriptServer<IByteSourceCalls>` (the hand-driven server answers for
//!   the synchronous interface itself, delegating each method to its implementation object).
//!   See [`Registry`](crate::script::Registry).
//!
//! Out-parameter types must implement `Default` (what a failed `Finish_` leaves in them);
//! parameter types must be `Send + 'static` and `Debug + Clone + PartialEq` (the parameter
//! enums derive them, for traces and the test kit; a `ComPtr` is all three). `[in, out]` parameters are written as an
//! in-parameter and an out-parameter. `macro_rules!` cannot build identifiers, so the method's
//! three Rust names are spelled out (`pull, begin_pull, finish_pull`): what you grep for is
//! what you wrote.

use std::fmt::Debug;
use std::sync::Arc;

use super::object::CallObject;
use crate::hresult::HRESULT;
use crate::unknown::{IUnknown, Interface};

/// The glue between a generated interface pair and comasync's generic call machinery.
/// Implemented by [`com_interface!`](crate::com_interface); you do not implement it by hand.
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
/// assert_eq!((hr, out), (S_OK, ISimpleStreamOut::Write { written: 2 }));
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
    /// The methods' COM names, in declaration order; a method's index is its position here.
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
}

/// The position of `name` in `names` (a method's index); `names.len()` if absent. Usable in
/// constants.
///
/// ```
/// use comasync::call::method_index;
///
/// const METHODS: &[&str] = &["Read", "Write"];
/// const WRITE: usize = method_index(METHODS, "Write");
/// assert_eq!(WRITE, 1);
/// assert_eq!(method_index(METHODS, "Seek"), METHODS.len()); // absent
/// ```
pub const fn method_index(names: &[&str], name: &str) -> usize {
    let mut i = 0;
    while i < names.len() {
        let a = names[i].as_bytes();
        let b = name.as_bytes();
        if a.len() == b.len() {
            let mut j = 0;
            while j < a.len() && a[j] == b[j] {
                j += 1;
            }
            if j == a.len() {
                return i;
            }
        }
        i += 1;
    }
    names.len()
}

/// Declares a synchronous COM interface and its asynchronous twin. See the
/// [module documentation](crate::call::interface) for the syntax and what it generates.
#[macro_export]
macro_rules! com_interface {
    (
        $(#[$sync_meta:meta])*
        $vis:vis interface $Sync:ident ($sync_iid:literal);
        $(#[$async_meta:meta])*
        async interface $Async:ident ($async_iid:literal);
        $(#[$calls_meta:meta])*
        calls $Calls:ident { in $In:ident, out $Out:ident $(, $script:ident)? }
        methods {
            $(
                $(#[$m_meta:meta])*
                fn $Method:ident => $sync_fn:ident, $begin_fn:ident, $finish_fn:ident
                    ( $($in_name:ident : $in_ty:ty),* $(,)? )
                    -> ( $($out_name:ident : $out_ty:ty),* $(,)? );
            )+
        }
    ) => {
        $(#[$sync_meta])*
        $vis trait $Sync: $crate::unknown::IUnknown {
            $(
                $(#[$m_meta])*
                fn $sync_fn(&self $(, $in_name: $in_ty)*) -> $crate::__com_result!($($out_ty),*);
            )+
        }

        impl $crate::unknown::Interface for dyn $Sync {
            const IID: $crate::guid::IID = $crate::guid::GUID::from_str_const($sync_iid);
            const NAME: &'static str = stringify!($Sync);
        }

        $(#[$async_meta])*
        $vis trait $Async: $crate::unknown::IUnknown {
            $(
                #[doc = concat!("`Begin_", stringify!($Method), "`: starts a call of `", stringify!($Method), "` with its in-parameters.")]
                fn $begin_fn(&self $(, $in_name: $in_ty)*) -> $crate::hresult::HRESULT;
                #[doc = concat!("`Finish_", stringify!($Method), "`: the return value and out-parameters of `", stringify!($Method), "`.")]
                fn $finish_fn(&self) -> $crate::__com_result!($($out_ty),*);
            )+
        }

        impl $crate::unknown::Interface for dyn $Async {
            const IID: $crate::guid::IID = $crate::guid::GUID::from_str_const($async_iid);
            const NAME: &'static str = stringify!($Async);
        }

        $(#[$calls_meta])*
        #[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
        $vis struct $Calls;

        #[doc = concat!("The in-parameters of one call of `", stringify!($Sync), "`.")]
        #[allow(missing_docs)]
        #[derive(Debug, Clone, PartialEq)]
        $vis enum $In { $( $Method { $($in_name: $in_ty),* }, )+ }

        #[doc = concat!("The out-parameters of one call of `", stringify!($Sync), "`.")]
        #[allow(missing_docs)]
        #[derive(Debug, Clone, PartialEq)]
        $vis enum $Out { $( $Method { $($out_name: $out_ty),* }, )+ }

        impl $crate::call::AsyncInterface for $Calls {
            type Sync = dyn $Sync;
            type Async = dyn $Async;
            type In = $In;
            type Out = $Out;
            const METHODS: &'static [&'static str] = &[$(stringify!($Method)),+];

            #[inline]
            fn method_of(input: &$In) -> usize {
                match input {
                    $( $In::$Method { .. } => const {
                        $crate::call::method_index(
                            <$Calls as $crate::call::AsyncInterface>::METHODS,
                            stringify!($Method),
                        )
                    }, )+
                }
            }

            fn invoke_sync(object: &dyn $Sync, input: $In) -> ($crate::hresult::HRESULT, $Out) {
                match input {
                    $( $In::$Method { $($in_name),* } => {
                        let $crate::__com_bind!(hr; $($out_name),*) = object.$sync_fn($($in_name),*);
                        (hr, $Out::$Method { $($out_name),* })
                    } )+
                }
            }

            fn begin_async(call: &dyn $Async, input: $In) -> $crate::hresult::HRESULT {
                match input {
                    $( $In::$Method { $($in_name),* } => call.$begin_fn($($in_name),*), )+
                }
            }

            fn finish_async(
                call: &dyn $Async,
                method: usize,
            ) -> ($crate::hresult::HRESULT, ::std::option::Option<$Out>) {
                $(
                    if method == const {
                        $crate::call::method_index(
                            <$Calls as $crate::call::AsyncInterface>::METHODS,
                            stringify!($Method),
                        )
                    } {
                        let $crate::__com_bind!(hr; $($out_name),*) = call.$finish_fn();
                        return (hr, ::std::option::Option::Some($Out::$Method { $($out_name),* }));
                    }
                )+
                ($crate::hresult::E_UNEXPECTED, ::std::option::Option::None)
            }

            fn upcast(
                call: ::std::sync::Arc<$crate::call::CallObject<$Calls>>,
            ) -> ::std::sync::Arc<dyn $Async> {
                call
            }
        }

        $crate::__com_script! {
            [$($script)?] $Sync, $Calls, $In, $Out;
            $( $Method => $sync_fn ( $($in_name : $in_ty),* ) -> ( $($out_name : $out_ty),* ); )+
        }

        impl $Async for $crate::call::CallObject<$Calls> {
            $(
                #[inline]
                fn $begin_fn(&self $(, $in_name: $in_ty)*) -> $crate::hresult::HRESULT {
                    self.begin($In::$Method { $($in_name),* })
                }
                #[inline]
                fn $finish_fn(&self) -> $crate::__com_result!($($out_ty),*) {
                    #[allow(unreachable_patterns)]
                    match self.finish(const {
                        $crate::call::method_index(
                            <$Calls as $crate::call::AsyncInterface>::METHODS,
                            stringify!($Method),
                        )
                    }) {
                        (hr, ::std::option::Option::Some($Out::$Method { $($out_name),* })) => $crate::__com_tuple!(hr; $($out_name),*),
                        (hr, _) => $crate::__com_tuple!(hr; $(<$out_ty as ::std::default::Default>::default()),*),
                    }
                }
            )+
        }
    };
}

/// The scripting glue of [`com_interface!`](crate::com_interface): nothing, or (after
/// `script`) `impl ScriptInterface` and the hand-driven server's synchronous interface.
#[doc(hidden)]
#[macro_export]
macro_rules! __com_script {
    ([] $($rest:tt)*) => {};
    ([script] $Sync:ident, $Calls:ident, $In:ident, $Out:ident;
        $( $Method:ident => $sync_fn:ident ( $($in_name:ident : $in_ty:ty),* ) -> ( $($out_name:ident : $out_ty:ty),* ); )+
    ) => {
        impl $crate::script::ScriptInterface for $Calls {
            fn parse_in(
                method: usize,
                args: &[$crate::script::Value],
                objects: &dyn $crate::script::Objects,
            ) -> ::std::result::Result<$In, ::std::string::String> {
                let _ = objects;
                $(
                    if method == const {
                        $crate::call::method_index(
                            <$Calls as $crate::call::AsyncInterface>::METHODS,
                            stringify!($Method),
                        )
                    } {
                        const SIG: &[(&str, &str)] = &[$((stringify!($in_name), stringify!($in_ty))),*];
                        $crate::script::value::__arity(stringify!($Method), SIG, args)?;
                        let mut _it = args.iter();
                        return ::std::result::Result::Ok($In::$Method {
                            $( $in_name: $crate::script::value::__arg::<$in_ty>(
                                stringify!($in_name), stringify!($in_ty), _it.next(), objects,
                            )?, )*
                        });
                    }
                )+
                ::std::result::Result::Err(::std::format!("no method with index {method}"))
            }

            fn in_values(
                input: &$In,
                objects: &dyn $crate::script::Objects,
            ) -> ::std::vec::Vec<$crate::script::Value> {
                let _ = objects;
                match input {
                    $( $In::$Method { $($in_name),* } => ::std::vec![
                        $( $crate::script::ScriptParam::to_value($in_name, objects) ),*
                    ], )+
                }
            }

            fn out_values(
                out: &$Out,
                objects: &dyn $crate::script::Objects,
            ) -> ::std::vec::Vec<$crate::script::Value> {
                let _ = objects;
                match out {
                    $( $Out::$Method { $($out_name),* } => ::std::vec![
                        $( $crate::script::ScriptParam::to_value($out_name, objects) ),*
                    ], )+
                }
            }

            fn server_as_sync(
                server: ::std::sync::Arc<$crate::script::ScriptServer<$Calls>>,
            ) -> ::std::option::Option<::std::sync::Arc<dyn $Sync>> {
                ::std::option::Option::Some(server)
            }
        }

        impl $Sync for $crate::script::ScriptServer<$Calls> {
            $(
                fn $sync_fn(&self $(, $in_name: $in_ty)*) -> $crate::__com_result!($($out_ty),*) {
                    self.object().$sync_fn($($in_name),*)
                }
            )+
        }
    };
}

/// What a generated synchronous method or `Finish_` returns: the `HRESULT` alone for a method
/// without out-parameters, else the `HRESULT` and the out-parameters as a tuple.
#[doc(hidden)]
#[macro_export]
macro_rules! __com_result {
    () => { $crate::hresult::HRESULT };
    ($($t:ty),+) => { ($crate::hresult::HRESULT, $($t,)+) };
}

/// The pattern that takes apart a [`__com_result!`] value.
#[doc(hidden)]
#[macro_export]
macro_rules! __com_bind {
    ($hr:ident;) => { $hr };
    ($hr:ident; $($o:ident),+) => { ($hr, $($o,)+) };
}

/// The expression that builds a [`__com_result!`] value.
#[doc(hidden)]
#[macro_export]
macro_rules! __com_tuple {
    ($hr:expr;) => { $hr };
    ($hr:expr; $($o:expr),+) => { ($hr, $($o,)+) };
}
