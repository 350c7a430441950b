//! `GUID`: the 128-bit identifiers COM names interfaces (`IID`) and classes (`CLSID`) with, and
//! the SDK's values for every interface and class the asynchronous call model uses.
//!
//! A `GUID` prints and parses in the registry form `{1C733A30-2A1C-11CE-ADE5-00AA0044773D}`
//! (upper-case hex on output; braces and case optional on input).
//!
//! Every well-known value below is the SDK's: the interface IDs as mingw-w64's
//! `objidlbase.h`, `objidl.h` and `unknwnbase.h` define them (the `AsyncIPipe*` IIDs, which
//! mingw-w64 omits, as the Windows SDK's `ObjIdlbase.h` declares them), the CLSIDs as the
//! Windows SDK's `coguid.h` does. `tests/guid.rs` pins each one.
//!
//! ```
//! use comasync::guid::{GUID, IID_ICallFactory};
//! let g: GUID = "{1c733a30-2a1c-11ce-ade5-00aa0044773d}".parse().unwrap();
//! assert_eq!(g, IID_ICallFactory);
//! assert_eq!(g.to_string(), "{1C733A30-2A1C-11CE-ADE5-00AA0044773D}");
//! ```
#![allow(non_upper_case_globals)]

use std::fmt;
use std::str::FromStr;

use crate::hresult::{Error, E_INVALIDARG};

/// A globally unique identifier, laid out as Windows lays it out.
///
/// ```
/// use comasync::guid::{GUID, IID_ISynchronize};
///
/// // {00000030-0000-0000-C000-000000000046}
/// const MY_IID: GUID = GUID::from_u128(0x00000030_0000_0000_C000_000000000046);
/// assert_eq!(MY_IID, IID_ISynchronize);
/// assert_eq!((MY_IID.data1, MY_IID.data4[0]), (0x30, 0xC0));
/// assert_eq!(GUID::parse("00000030-0000-0000-c000-000000000046"), Some(MY_IID));
/// assert_eq!(GUID::parse("{not a guid}"), None);
/// ```
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct GUID {
    /// The first 8 hex digits.
    pub data1: u32,
    /// The next 4.
    pub data2: u16,
    /// The next 4.
    pub data3: u16,
    /// The last 16, as bytes.
    pub data4: [u8; 8],
}

/// An interface identifier: the `GUID` `QueryInterface` and `CreateCall` take.
///
/// ```
/// use comasync::guid::{IID, IID_AsyncIPipeByte, IID_IPipeByte};
///
/// // A synchronous interface and its asynchronous twin have different IIDs.
/// let (sync, r#async): (IID, IID) = (IID_IPipeByte, IID_AsyncIPipeByte);
/// assert_ne!(sync, r#async);
/// assert_eq!(r#async.to_string(), "{DB2F3ACB-2F86-11D1-8E04-00C04FB9989A}");
/// ```
pub type IID = GUID;
/// A class identifier: the `GUID` `CoCreateInstance` takes.
///
/// ```
/// use comasync::guid::{CLSID, CLSID_ManualResetEvent};
///
/// let clsid: CLSID = "{0000032C-0000-0000-C000-000000000046}".parse()?;
/// assert_eq!(clsid, CLSID_ManualResetEvent);
/// # Ok::<(), comasync::Error>(())
/// ```
pub type CLSID = GUID;

/// `GUID_NULL`, all zeros.
pub const GUID_NULL: GUID = GUID::from_u128(0);

const fn hex_digit(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

impl GUID {
    /// The GUID whose registry form reads as this number (`0x1C733A30_2A1C_11CE_ADE5_00AA0044773D`).
    pub const fn from_u128(v: u128) -> Self {
        GUID {
            data1: (v >> 96) as u32,
            data2: (v >> 80) as u16,
            data3: (v >> 64) as u16,
            data4: ((v as u64).to_be_bytes()),
        }
    }

    /// The number whose hex digits are this GUID's registry form.
    pub const fn to_u128(self) -> u128 {
        ((self.data1 as u128) << 96)
            | ((self.data2 as u128) << 80)
            | ((self.data3 as u128) << 64)
            | (u64::from_be_bytes(self.data4) as u128)
    }

    /// Parses the registry form, with or without braces, in any case. `None` if malformed.
    /// Usable in constants.
    pub const fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        let (start, len) = if b.len() == 38 && b[0] == b'{' && b[37] == b'}' {
            (1, 36)
        } else if b.len() == 36 {
            (0, 36)
        } else {
            return None;
        };
        let mut v: u128 = 0;
        let mut i = 0;
        let mut digits = 0;
        while i < len {
            let c = b[start + i];
            if i == 8 || i == 13 || i == 18 || i == 23 {
                if c != b'-' {
                    return None;
                }
            } else {
                match hex_digit(c) {
                    Some(d) => {
                        v = (v << 4) | d as u128;
                        digits += 1;
                    }
                    None => return None,
                }
            }
            i += 1;
        }
        if digits != 32 {
            return None;
        }
        Some(GUID::from_u128(v))
    }

    /// Parses the registry form at compile time; a malformed literal is a compile error when
    /// used in a `const`.
    pub const fn from_str_const(s: &str) -> Self {
        match GUID::parse(s) {
            Some(g) => g,
            None => panic!("malformed GUID literal"),
        }
    }
}

impl fmt::Display for GUID {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.data4;
        write!(
            f,
            "{{{:08X}-{:04X}-{:04X}-{:02X}{:02X}-{:02X}{:02X}{:02X}{:02X}{:02X}{:02X}}}",
            self.data1, self.data2, self.data3, d[0], d[1], d[2], d[3], d[4], d[5], d[6], d[7]
        )
    }
}

impl fmt::Debug for GUID {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for GUID {
    type Err = Error;
    /// Parses the registry form; `E_INVALIDARG` if malformed.
    fn from_str(s: &str) -> Result<Self, Error> {
        GUID::parse(s).ok_or(Error(E_INVALIDARG))
    }
}

macro_rules! guids {
    ($( $(#[$m:meta])* $name:ident = $s:literal; )*) => {
        $( $(#[$m])* pub const $name: GUID = GUID::from_str_const($s); )*
        /// Every well-known GUID this module defines, with its SDK name.
        pub static WELL_KNOWN: &[(&str, GUID)] = &[ $( (stringify!($name), $name), )* ];
    };
}

guids! {
    /// `IUnknown`.
    IID_IUnknown = "{00000000-0000-0000-C000-000000000046}";
    /// `IClassFactory`.
    IID_IClassFactory = "{00000001-0000-0000-C000-000000000046}";
    /// `ICallFactory`: present on objects (and proxies) that support asynchronous calls.
    IID_ICallFactory = "{1C733A30-2A1C-11CE-ADE5-00AA0044773D}";
    /// `ISynchronize`: `Wait`, `Signal`, `Reset`.
    IID_ISynchronize = "{00000030-0000-0000-C000-000000000046}";
    /// `ISynchronizeHandle`: `GetHandle`.
    IID_ISynchronizeHandle = "{00000031-0000-0000-C000-000000000046}";
    /// `ISynchronizeEvent`: `SetEventHandle`.
    IID_ISynchronizeEvent = "{00000032-0000-0000-C000-000000000046}";
    /// `ISynchronizeContainer`: `AddSynchronize`, `WaitMultiple`.
    IID_ISynchronizeContainer = "{00000033-0000-0000-C000-000000000046}";
    /// `ISynchronizeMutex` (declared, undocumented; out of scope).
    IID_ISynchronizeMutex = "{00000025-0000-0000-C000-000000000046}";
    /// `ICancelMethodCalls`: `Cancel`, `TestCancel`.
    IID_ICancelMethodCalls = "{00000029-0000-0000-C000-000000000046}";
    /// `IAsyncManager` (declared, undocumented; out of scope).
    IID_IAsyncManager = "{0000002A-0000-0000-C000-000000000046}";
    /// `IWaitMultiple` (declared, undocumented; out of scope).
    IID_IWaitMultiple = "{0000002B-0000-0000-C000-000000000046}";
    /// `IClientSecurity`.
    IID_IClientSecurity = "{0000013D-0000-0000-C000-000000000046}";
    /// `IServerSecurity`.
    IID_IServerSecurity = "{0000013E-0000-0000-C000-000000000046}";
    /// `IMultiQI`.
    IID_IMultiQI = "{00000020-0000-0000-C000-000000000046}";
    /// `AsyncIMultiQI`.
    IID_AsyncIMultiQI = "{000E0020-0000-0000-C000-000000000046}";
    /// `IAdviseSink`.
    IID_IAdviseSink = "{0000010F-0000-0000-C000-000000000046}";
    /// `AsyncIAdviseSink`.
    IID_AsyncIAdviseSink = "{00000150-0000-0000-C000-000000000046}";
    /// `IAdviseSink2`.
    IID_IAdviseSink2 = "{00000125-0000-0000-C000-000000000046}";
    /// `AsyncIAdviseSink2`.
    IID_AsyncIAdviseSink2 = "{00000151-0000-0000-C000-000000000046}";
    /// `IPipeByte`.
    IID_IPipeByte = "{DB2F3ACA-2F86-11D1-8E04-00C04FB9989A}";
    /// `AsyncIPipeByte`.
    IID_AsyncIPipeByte = "{DB2F3ACB-2F86-11D1-8E04-00C04FB9989A}";
    /// `IPipeLong`.
    IID_IPipeLong = "{DB2F3ACC-2F86-11D1-8E04-00C04FB9989A}";
    /// `AsyncIPipeLong`.
    IID_AsyncIPipeLong = "{DB2F3ACD-2F86-11D1-8E04-00C04FB9989A}";
    /// `IPipeDouble`.
    IID_IPipeDouble = "{DB2F3ACE-2F86-11D1-8E04-00C04FB9989A}";
    /// `AsyncIPipeDouble`.
    IID_AsyncIPipeDouble = "{DB2F3ACF-2F86-11D1-8E04-00C04FB9989A}";
    /// `CLSID_StdEvent`: the auto-reset system synchronization object.
    CLSID_StdEvent = "{0000032B-0000-0000-C000-000000000046}";
    /// `CLSID_ManualResetEvent`: the manual-reset system synchronization object.
    CLSID_ManualResetEvent = "{0000032C-0000-0000-C000-000000000046}";
    /// `CLSID_SynchronizeContainer`: the system `ISynchronizeContainer`.
    CLSID_SynchronizeContainer = "{0000032D-0000-0000-C000-000000000046}";
}
