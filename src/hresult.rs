//! `HRESULT`: COM's 32-bit result code, every code the asynchronous call model uses, and the
//! crate's [`Error`]/[`Result`] types.
//!
//! Every constant here carries its exact Windows value (checked against the SDK's and
//! mingw-w64's `winerror.h`; see `docs/differences-from-windows.md` for the names the
//! documentation uses but no header defines). Codes are compared by value, never by name:
//! [`RPC_E_CALL_PENDING`] is an alias of [`RPC_S_CALLPENDING`] and compares equal to it.
//!
//! Each code's message is the SDK's `MessageText` for it, word for word (the Windows SDK
//! `winerror.h` and Microsoft's "COM Error Codes" tables agree on every one). The three codes
//! the SDK gives no COM text say where theirs comes from in their own documentation:
//! [`S_OK`] and [`HRESULT_FROM_WIN32_RPC_S_CALL_CANCELLED`] use the Win32 text Windows'
//! `FormatMessage` prints for them, and [`S_FALSE`] has a description of comasync's own.
//!
//! [`parse_hresult`] reads a code the way it appears in logs and source (`0x80010115`,
//! `80010115`, `-2147417835`, `2147549461`, `RPC_S_CALLPENDING`), and [`describe`] takes it
//! apart; the `comasync hresult` command prints the one with the other.
//!
//! Invariant: [`TABLE`] lists every named code exactly once, so value → name and name → value
//! are both total over it.
//!
//! ```
//! use comasync::hresult::{HRESULT, RPC_S_CALLPENDING, RPC_E_CALL_PENDING};
//!
//! assert_eq!(RPC_E_CALL_PENDING, RPC_S_CALLPENDING);
//! assert!(RPC_S_CALLPENDING.failed()); // despite the "S_" in its name
//! assert_eq!(RPC_S_CALLPENDING.name(), Some("RPC_S_CALLPENDING"));
//! assert_eq!(HRESULT::from_name("rpc_e_call_pending"), Some(RPC_S_CALLPENDING));
//! assert_eq!(
//!     RPC_S_CALLPENDING.to_string(),
//!     "RPC_S_CALLPENDING (0x80010115): OLE has sent a request and is waiting for a reply."
//! );
//! ```

use std::fmt;

/// A COM result code: bit 31 is the severity (1 = failure), bits 16..=26 the facility, bits
/// 0..=15 the code.
///
/// ```
/// use comasync::hresult::{HRESULT, FACILITY_RPC, RPC_E_CALL_CANCELED, S_FALSE};
///
/// let hr = HRESULT::from_u32(0x8001_0002);
/// assert_eq!(hr, RPC_E_CALL_CANCELED);
/// assert!(hr.failed() && hr.severity() == 1);
/// assert_eq!((hr.facility(), hr.code()), (FACILITY_RPC, 2));
/// assert!(S_FALSE.succeeded()); // SUCCEEDED, though the answer is "false"
/// assert_eq!(format!("{hr:?}"), "RPC_E_CALL_CANCELED(0x80010002)");
/// assert_eq!(hr.ok(), Err(comasync::Error(RPC_E_CALL_CANCELED)));
/// ```
#[repr(transparent)]
#[must_use]
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct HRESULT(pub i32);

/// `FACILITY_NULL`: general codes such as `E_NOINTERFACE`.
pub const FACILITY_NULL: u32 = 0;
/// `FACILITY_RPC`: the RPC and COM-call codes (`RPC_E_*`, `RPC_S_CALLPENDING`, ...).
pub const FACILITY_RPC: u32 = 1;
/// `FACILITY_ITF`: interface-specific codes (`CLASS_E_*`, `CO_E_*`, `REGDB_E_*`).
pub const FACILITY_ITF: u32 = 4;
/// `FACILITY_WIN32`: Win32 error codes wrapped by `HRESULT_FROM_WIN32`.
pub const FACILITY_WIN32: u32 = 7;

impl HRESULT {
    /// The code with the given bit pattern.
    #[inline]
    pub const fn from_u32(value: u32) -> Self {
        HRESULT(value as i32)
    }

    /// The bit pattern, as Windows prints it (`0x80010115`).
    #[inline]
    pub const fn as_u32(self) -> u32 {
        self.0 as u32
    }

    /// `SUCCEEDED(hr)`: the severity bit is clear.
    #[inline]
    pub const fn succeeded(self) -> bool {
        self.0 >= 0
    }

    /// `FAILED(hr)`: the severity bit is set.
    #[inline]
    pub const fn failed(self) -> bool {
        self.0 < 0
    }

    /// `HRESULT_SEVERITY(hr)`: 1 for a failure, 0 for a success.
    #[inline]
    pub const fn severity(self) -> u32 {
        self.as_u32() >> 31
    }

    /// `HRESULT_FACILITY(hr)`: bits 16..=26.
    #[inline]
    pub const fn facility(self) -> u32 {
        (self.as_u32() >> 16) & 0x7FF
    }

    /// `HRESULT_CODE(hr)`: the low 16 bits.
    #[inline]
    pub const fn code(self) -> u32 {
        self.as_u32() & 0xFFFF
    }

    /// `HRESULT_FROM_WIN32(code)`.
    pub const fn from_win32(code: u32) -> Self {
        if code as i32 <= 0 {
            HRESULT(code as i32)
        } else {
            HRESULT::from_u32((code & 0xFFFF) | (FACILITY_WIN32 << 16) | 0x8000_0000)
        }
    }

    /// The SDK name of a code in [`TABLE`], or `None`.
    pub fn name(self) -> Option<&'static str> {
        TABLE.iter().find(|e| e.hr == self).map(|e| e.name)
    }

    /// The SDK name of a code in [`TABLE`], else `0xXXXXXXXX`: how traces, scripts and
    /// failure messages print an `HRESULT`.
    ///
    /// ```
    /// use comasync::hresult::{HRESULT, RPC_S_CALLPENDING};
    ///
    /// assert_eq!(RPC_S_CALLPENDING.name_or_hex(), "RPC_S_CALLPENDING");
    /// assert_eq!(HRESULT::from_u32(0x8004_1234).name_or_hex(), "0x80041234");
    /// ```
    pub fn name_or_hex(self) -> String {
        match self.name() {
            Some(n) => n.to_string(),
            None => format!("0x{:08X}", self.as_u32()),
        }
    }

    /// The SDK's message text for a code in [`TABLE`], or `None`.
    pub fn message(self) -> Option<&'static str> {
        TABLE.iter().find(|e| e.hr == self).map(|e| e.message)
    }

    /// Looks a code up by name, ignoring ASCII case. Accepts the documentation-only alias
    /// `RPC_E_CALL_PENDING` (→ 0x80010115).
    pub fn from_name(name: &str) -> Option<Self> {
        if name.eq_ignore_ascii_case("RPC_E_CALL_PENDING") {
            return Some(RPC_E_CALL_PENDING);
        }
        TABLE
            .iter()
            .find(|e| e.name.eq_ignore_ascii_case(name))
            .map(|e| e.hr)
    }

    /// `Ok(())` for a success code, `Err(Error)` for a failure.
    #[inline]
    pub fn ok(self) -> Result<()> {
        if self.succeeded() {
            Ok(())
        } else {
            Err(Error(self))
        }
    }
}

impl fmt::Debug for HRESULT {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n}(0x{:08X})", self.as_u32()),
            None => write!(f, "HRESULT(0x{:08X})", self.as_u32()),
        }
    }
}

impl fmt::Display for HRESULT {
    /// `NAME (0xXXXXXXXX): message`, or `0xXXXXXXXX` for a code not in [`TABLE`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match TABLE.iter().find(|e| e.hr == *self) {
            Some(e) => write!(f, "{} (0x{:08X}): {}", e.name, self.as_u32(), e.message),
            None => write!(f, "0x{:08X}", self.as_u32()),
        }
    }
}

impl From<i32> for HRESULT {
    fn from(v: i32) -> Self {
        HRESULT(v)
    }
}

impl From<HRESULT> for i32 {
    fn from(hr: HRESULT) -> Self {
        hr.0
    }
}

/// One row of [`TABLE`].
///
/// ```
/// use comasync::hresult::{TABLE, E_NOINTERFACE};
///
/// let row = TABLE.iter().find(|e| e.hr == E_NOINTERFACE).unwrap();
/// assert_eq!(row.name, "E_NOINTERFACE");
/// assert_eq!(row.message, "No such interface supported");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The code.
    pub hr: HRESULT,
    /// Its SDK name.
    pub name: &'static str,
    /// Its SDK message text.
    pub message: &'static str,
}

macro_rules! codes {
    ($( $(#[$m:meta])* $name:ident = $value:literal, $msg:literal; )*) => {
        $( $(#[$m])* pub const $name: HRESULT = HRESULT::from_u32($value); )*
        /// Every named code, in the order of spec section 4. Each code appears once; the alias
        /// [`RPC_E_CALL_PENDING`] is not a row of its own.
        pub static TABLE: &[Entry] = &[
            $( Entry { hr: $name, name: stringify!($name), message: $msg }, )*
        ];
    };
}

codes! {
    /// Success.
    ///
    /// Message: `winerror.h` gives `S_OK` no `MessageText`; this is the Win32 `FormatMessage`
    /// text of the same value, `ERROR_SUCCESS` (0).
    S_OK = 0x0000_0000, "The operation completed successfully.";
    /// Success, with the answer "false".
    ///
    /// Message: **not an SDK text**. `winerror.h` gives `S_FALSE` no `MessageText`, and
    /// `FormatMessage` on its value prints the text of `ERROR_INVALID_FUNCTION` (also 1),
    /// "Incorrect function.", which says nothing about `S_FALSE`; comasync describes the code
    /// in its own words instead.
    S_FALSE = 0x0000_0001, "The operation succeeded with the answer \"false\".";
    /// Not implemented.
    E_NOTIMPL = 0x8000_4001, "Not implemented";
    /// No such interface: a `QueryInterface` for `ICallFactory` on an object without async
    /// support; `CreateCall` with an unsupported `riid`.
    E_NOINTERFACE = 0x8000_4002, "No such interface supported";
    /// Invalid pointer: `CreateCall` with a missing out-pointer.
    E_POINTER = 0x8000_4003, "Invalid pointer";
    /// Operation aborted.
    E_ABORT = 0x8000_4004, "Operation aborted";
    /// Unspecified failure.
    E_FAIL = 0x8000_4005, "Unspecified error";
    /// Catastrophic failure.
    E_UNEXPECTED = 0x8000_FFFF, "Catastrophic failure";
    /// Data not yet available. Not used by call objects.
    E_PENDING = 0x8000_000A, "The data necessary to complete this operation is not yet available.";
    /// Out of memory.
    ///
    /// Message: the SDK's `MessageText`. Being a `FACILITY_WIN32` code, Windows' `FormatMessage`
    /// prints the Win32 text of `ERROR_OUTOFMEMORY` instead: "Not enough memory resources are
    /// available to complete this operation."
    E_OUTOFMEMORY = 0x8007_000E, "Ran out of memory";
    /// An argument is invalid.
    ///
    /// Message: the SDK's `MessageText`; `FormatMessage` prints the Win32 text of
    /// `ERROR_INVALID_PARAMETER`: "The parameter is incorrect."
    E_INVALIDARG = 0x8007_0057, "One or more arguments are invalid";
    /// General access denied: a caller the server's access check refuses.
    ///
    /// Message: the SDK's `MessageText`; `FormatMessage` prints the Win32 text of
    /// `ERROR_ACCESS_DENIED`: "Access is denied."
    E_ACCESSDENIED = 0x8007_0005, "General access denied error";
    /// Invalid handle.
    ///
    /// Message: the SDK's `MessageText`; `FormatMessage` prints the Win32 text of
    /// `ERROR_INVALID_HANDLE`: "The handle is invalid."
    E_HANDLE = 0x8007_0006, "Invalid handle";
    /// The class is not registered: creating an unknown CLSID.
    REGDB_E_CLASSNOTREG = 0x8004_0154, "Class not registered";
    /// Operation not supported.
    CO_E_NOT_SUPPORTED = 0x8000_4021, "The operation attempted is not supported.";
    /// The class does not support aggregation.
    CLASS_E_NOAGGREGATION = 0x8004_0110, "Class does not support aggregation (or class object is remote)";
    /// `CoInitialize` has not been called.
    CO_E_NOTINITIALIZED = 0x8004_01F0, "CoInitialize has not been called.";
    /// The object is not connected to its server.
    CO_E_OBJNOTCONNECTED = 0x8004_01FD, "Object is not connected to server";
    /// The callee rejected the call.
    RPC_E_CALL_REJECTED = 0x8001_0001, "Call was rejected by callee.";
    /// The call was cancelled: `TestCancel` after a cancel; `Finish_` of a cancelled call;
    /// `Cancel` on an already cancelled call (spec D3).
    RPC_E_CALL_CANCELED = 0x8001_0002, "Call was canceled by the message filter.";
    /// No outgoing call while dispatching an asynchronous call.
    RPC_E_CANTCALLOUT_INASYNCCALL = 0x8001_0004, "The caller is dispatching an asynchronous call and cannot make an outgoing call on behalf of this call.";
    /// No outgoing call from inside the message filter.
    RPC_E_CANTCALLOUT_INEXTERNALCALL = 0x8001_0005, "It is illegal to call out while inside message filter.";
    /// The server is gone; the call may have run.
    RPC_E_SERVER_DIED = 0x8001_0007, "The callee (server [not server application]) is not available and disappeared; all connections are invalid. The call may have executed.";
    /// The server is gone; the call did not run.
    RPC_E_SERVER_DIED_DNE = 0x8001_0012, "The callee (server [not server application]) is not available and disappeared; all connections are invalid. The call did not execute.";
    /// A resource could not be allocated; `AddSynchronize` on a full container.
    RPC_E_OUT_OF_RESOURCES = 0x8001_0101, "Could not allocate some required resource (memory, events, ...)";
    /// The server raised an exception (a panic, in comasync).
    RPC_E_SERVERFAULT = 0x8001_0105, "The server threw an exception.";
    /// The thread's apartment mode cannot change.
    RPC_E_CHANGED_MODE = 0x8001_0106, "Cannot change thread mode after it is set.";
    /// The object has disconnected from its clients.
    RPC_E_DISCONNECTED = 0x8001_0108, "The object invoked has disconnected from its clients.";
    /// The message filter says the application is busy.
    RPC_E_SERVERCALL_RETRYLATER = 0x8001_010A, "The message filter indicated that the application is busy.";
    /// The message filter rejected the call.
    RPC_E_SERVERCALL_REJECTED = 0x8001_010B, "The message filter rejected the call.";
    /// A call-control interface got invalid data.
    RPC_E_INVALID_CALLDATA = 0x8001_010C, "A call control interfaces was called with invalid data.";
    /// No outgoing call during an input-synchronous call.
    RPC_E_CANTCALLOUT_ININPUTSYNCCALL = 0x8001_010D, "An outgoing call cannot be made since the application is dispatching an input-synchronous call.";
    /// The interface was marshaled for a different thread.
    RPC_E_WRONG_THREAD = 0x8001_010E, "The application called an interface that was marshalled for a different thread.";
    /// `CoInitialize` has not been called on this thread.
    RPC_E_THREAD_NOT_INIT = 0x8001_010F, "CoInitialize has not been called on the current thread.";
    /// "Not yet": a wait timed out (spec D1); `TestCancel` on a call that was not cancelled; a
    /// `Begin_` while a call is pending (spec D2, see [`RPC_E_CALL_PENDING`]). A **failure**
    /// code despite its name.
    RPC_S_CALLPENDING = 0x8001_0115, "OLE has sent a request and is waiting for a reply.";
    /// OLE is waiting before retrying.
    RPC_S_WAITONTIMER = 0x8001_0116, "OLE is waiting before retrying a request.";
    /// No call in progress: `Finish_` without a `Begin_`; `Cancel` after completion.
    RPC_E_CALL_COMPLETE = 0x8001_0117, "Call context cannot be accessed after call completed.";
    /// Impersonation on an unsecure call.
    RPC_E_UNSECURE_CALL = 0x8001_0118, "Impersonate on unsecure calls is not supported.";
    /// No context is associated with the call.
    RPC_E_NO_CONTEXT = 0x8001_011E, "No context is associated with this call. This happens for some custom marshalled calls and on the client side of the call.";
    /// A timeout expired: `ISynchronizeContainer::WaitMultiple` (spec D6). Never returned by
    /// `ISynchronize::Wait` (spec D1).
    RPC_E_TIMEOUT = 0x8001_011F, "This operation returned because the timeout period expired.";
    /// There is nothing to wait on.
    RPC_E_NO_SYNC = 0x8001_0120, "There are no synchronize objects to wait on.";
    /// Call cancellation is disabled.
    CO_E_CANCEL_DISABLED = 0x8001_0140, "Call Cancellation is disabled";
    /// An internal error.
    RPC_E_UNEXPECTED = 0x8001_FFFF, "An internal error occurred.";
    /// `HRESULT_FROM_WIN32(RPC_S_CALL_CANCELLED)` (Win32 error 1818, see
    /// [`RPC_S_CALL_CANCELLED`]). Not an SDK name: no header names the HRESULT form.
    ///
    /// Message: the Win32 `MessageText` of `RPC_S_CALL_CANCELLED`, which is what
    /// `FormatMessage` prints for this value.
    HRESULT_FROM_WIN32_RPC_S_CALL_CANCELLED = 0x8007_071A, "The remote procedure call was cancelled.";
}

/// The Win32 error code `RPC_S_CALL_CANCELLED` (1818), a `DWORD`, not an `HRESULT`. As an
/// `HRESULT` it is [`HRESULT_FROM_WIN32_RPC_S_CALL_CANCELLED`] (0x8007071A):
///
/// ```
/// use comasync::hresult::{HRESULT, HRESULT_FROM_WIN32_RPC_S_CALL_CANCELLED, RPC_S_CALL_CANCELLED};
/// assert_eq!(HRESULT::from_win32(RPC_S_CALL_CANCELLED), HRESULT_FROM_WIN32_RPC_S_CALL_CANCELLED);
/// ```
pub const RPC_S_CALL_CANCELLED: u32 = 1818;

/// The documentation's name for a busy `Begin_` (spec D2). **No SDK header defines it**;
/// comasync makes it an alias of [`RPC_S_CALLPENDING`] (0x80010115), the value Microsoft's own
/// samples return.
#[doc(alias = "RPC_S_CALLPENDING")]
pub const RPC_E_CALL_PENDING: HRESULT = RPC_S_CALLPENDING;

/// A failed COM call, carrying its `HRESULT`.
///
/// ```
/// use comasync::hresult::{Error, HRESULT, E_NOINTERFACE};
/// let e = Error::from(E_NOINTERFACE);
/// assert_eq!(HRESULT::from(e), E_NOINTERFACE);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
#[error("{0}")]
pub struct Error(pub HRESULT);

impl Error {
    /// The code this error carries.
    #[inline]
    pub const fn code(&self) -> HRESULT {
        self.0
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Error({:?})", self.0)
    }
}

impl From<HRESULT> for Error {
    fn from(hr: HRESULT) -> Self {
        Error(hr)
    }
}

impl From<Error> for HRESULT {
    fn from(e: Error) -> Self {
        e.0
    }
}

/// `Result<T, Error>`: the Rust shape of a COM method that returns an `HRESULT` and an
/// out-parameter.
///
/// ```
/// use comasync::hresult::{Result, E_INVALIDARG};
///
/// // HRESULT Half(ULONG n, ULONG* out): the out-parameter is the Ok value.
/// fn half(n: u32) -> Result<u32> {
///     if n % 2 == 1 {
///         return Err(E_INVALIDARG.into());
///     }
///     Ok(n / 2)
/// }
/// assert_eq!(half(8), Ok(4));
/// assert_eq!(half(7).unwrap_err().code(), E_INVALIDARG);
/// ```
pub type Result<T> = std::result::Result<T, Error>;

/// Folds a `Result<()>` back into an `HRESULT` (`Ok` → `S_OK`).
///
/// ```
/// use comasync::hresult::{hresult_of, E_NOINTERFACE, S_OK};
///
/// assert_eq!(hresult_of(Ok(())), S_OK);
/// assert_eq!(hresult_of(E_NOINTERFACE.ok()), E_NOINTERFACE);
/// ```
pub fn hresult_of(r: Result<()>) -> HRESULT {
    match r {
        Ok(()) => S_OK,
        Err(e) => e.0,
    }
}

/// The name of a facility code: `NULL`, `RPC`, `ITF` or `WIN32` for the four the asynchronous
/// call model uses ([`FACILITY_NULL`], [`FACILITY_RPC`], [`FACILITY_ITF`],
/// [`FACILITY_WIN32`]); `None` for any other.
///
/// ```
/// use comasync::hresult::{facility_name, HRESULT_FROM_WIN32_RPC_S_CALL_CANCELLED, RPC_S_CALLPENDING};
///
/// assert_eq!(facility_name(RPC_S_CALLPENDING.facility()), Some("RPC"));
/// assert_eq!(facility_name(HRESULT_FROM_WIN32_RPC_S_CALL_CANCELLED.facility()), Some("WIN32"));
/// assert_eq!(facility_name(9), None);
/// ```
pub const fn facility_name(facility: u32) -> Option<&'static str> {
    match facility {
        FACILITY_NULL => Some("NULL"),
        FACILITY_RPC => Some("RPC"),
        FACILITY_ITF => Some("ITF"),
        FACILITY_WIN32 => Some("WIN32"),
        _ => None,
    }
}

/// Reads an `HRESULT` written in any of the forms it appears in: in logs, in source, in
/// documentation.
///
/// Accepted, after trimming surrounding whitespace:
///
/// * `0x80010115` or `0X80010115`: hexadecimal with a prefix, any case, at most 8 digits
///   after leading zeros;
/// * `80010115`: **exactly 8** hexadecimal digits without a prefix. Such a string is always
///   read as hexadecimal, even when it is also a valid decimal number (`80010115`,
///   `12345678`), because that is how codes are printed in logs and event viewers. To mean
///   an 8-digit decimal number, give it a leading zero (`012345678`);
/// * `-2147417835`: signed decimal (the `HRESULT` as an `i32`), down to `-2147483648`;
/// * `2147549461`: unsigned decimal (the bit pattern as a `u32`), up to `4294967295`;
/// * `RPC_S_CALLPENDING`, `rpc_s_callpending`: a name from [`TABLE`], in any ASCII case,
///   or the documentation-only alias `RPC_E_CALL_PENDING` (see [`HRESULT::from_name`]).
///
/// The `Err` is a one-line reason, fit to print after the program's name.
///
/// ```
/// use comasync::hresult::{parse_hresult, RPC_S_CALLPENDING};
/// for s in ["0x80010115", "80010115", "-2147417835", "2147549461", "rpc_e_call_pending"] {
///     assert_eq!(parse_hresult(s), Ok(RPC_S_CALLPENDING));
/// }
/// assert!(parse_hresult("0x1_0000_0000").is_err());
/// assert!(parse_hresult("NOT_A_CODE").is_err());
/// ```
pub fn parse_hresult(input: &str) -> std::result::Result<HRESULT, String> {
    let s = input.trim();
    if s.is_empty() {
        return Err(
            "empty input: expected an HRESULT value (0x80010115, -2147417835, ...) or name".into(),
        );
    }
    if let Some(hex) = s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        // winerror.h's own spelling, `_HRESULT_TYPEDEF_(0x80010115L)`, has a long suffix.
        let hex = hex.strip_suffix(['L', 'l']).unwrap_or(hex);
        return parse_hex(s, hex);
    }
    if s.len() == 8 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return parse_hex(s, s);
    }
    let (negative, digits) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return parse_decimal(s, negative, digits);
    }
    let is_identifier = s
        .bytes()
        .next()
        .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    if is_identifier {
        return HRESULT::from_name(s).ok_or_else(|| format!("unknown HRESULT name `{s}`"));
    }
    Err(format!(
        "`{s}` is not an HRESULT: expected 0x and up to 8 hex digits, exactly 8 hex digits, \
         a decimal number, or a name"
    ))
}

fn parse_hex(input: &str, digits: &str) -> std::result::Result<HRESULT, String> {
    if digits.is_empty() {
        return Err(format!("`{input}` has no hex digits after 0x"));
    }
    if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(format!("`{input}` is not a hexadecimal number"));
    }
    let significant = digits.trim_start_matches('0');
    if significant.len() > 8 {
        return Err(format!("`{input}` does not fit in 32 bits"));
    }
    // Only hex digits, at most 8 significant: cannot fail.
    u32::from_str_radix(
        if significant.is_empty() {
            "0"
        } else {
            significant
        },
        16,
    )
    .map(HRESULT::from_u32)
    .map_err(|e| format!("`{input}`: {e}"))
}

fn parse_decimal(
    input: &str,
    negative: bool,
    digits: &str,
) -> std::result::Result<HRESULT, String> {
    const RANGE: &str = "-2147483648..=4294967295";
    let significant = digits.trim_start_matches('0');
    // More than 10 significant digits cannot be in range; checking first keeps u64 from
    // overflowing.
    if significant.len() > 10 {
        return Err(format!("`{input}` is out of the HRESULT range {RANGE}"));
    }
    let magnitude: u64 = if significant.is_empty() {
        0
    } else {
        significant.parse().map_err(|e| format!("`{input}`: {e}"))?
    };
    if negative {
        if magnitude > 1 << 31 {
            return Err(format!("`{input}` is out of the HRESULT range {RANGE}"));
        }
        Ok(HRESULT((magnitude as i64).wrapping_neg() as i32))
    } else {
        u32::try_from(magnitude)
            .map(HRESULT::from_u32)
            .map_err(|_| format!("`{input}` is out of the HRESULT range {RANGE}"))
    }
}

/// A multi-line, human-readable account of a code: its name (or `unknown`), its value in hex,
/// signed and unsigned decimal, its severity, facility (number and name: `NULL`, `RPC`, `ITF`,
/// `WIN32`, or `other`), code, and message. Works for any value, named or not; every line
/// ends in `\n`.
///
/// ```
/// use comasync::hresult::{describe, RPC_S_CALLPENDING};
/// let text = describe(RPC_S_CALLPENDING);
/// assert!(text.starts_with("name:     RPC_S_CALLPENDING\n"));
/// assert!(text.contains("severity: 1 (failure)\n"));
/// assert!(text.contains("facility: 1 (RPC)\n"));
/// ```
pub fn describe(hr: HRESULT) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let facility = hr.facility();
    // Writing to a String cannot fail.
    let _ = writeln!(out, "name:     {}", hr.name().unwrap_or("unknown"));
    if hr == RPC_E_CALL_PENDING {
        let _ = writeln!(
            out,
            "alias:    RPC_E_CALL_PENDING (the documentation's name; no SDK header defines it)"
        );
    }
    let _ = writeln!(
        out,
        "value:    0x{:08X} (signed {}, unsigned {})",
        hr.as_u32(),
        hr.0,
        hr.as_u32()
    );
    let _ = writeln!(
        out,
        "severity: {} ({})",
        hr.severity(),
        if hr.failed() { "failure" } else { "success" }
    );
    let _ = writeln!(
        out,
        "facility: {} ({})",
        facility,
        facility_name(facility).unwrap_or("other")
    );
    if facility == FACILITY_WIN32 {
        let _ = writeln!(
            out,
            "code:     0x{:04X} ({}; the Win32 error code)",
            hr.code(),
            hr.code()
        );
    } else {
        let _ = writeln!(out, "code:     0x{:04X} ({})", hr.code(), hr.code());
    }
    let _ = writeln!(
        out,
        "message:  {}",
        hr.message()
            .unwrap_or("(none: comasync has no message for this code)")
    );
    out
}
