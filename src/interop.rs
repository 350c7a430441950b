//! Conversions between comasync's types and the [`windows-core`](https://crates.io/crates/windows-core)
//! crate's, for code that shares logic between the emulation and real Windows COM.
//!
//! Enabled by the cargo feature `windows-core`. Each pair converts both ways with `From`, and
//! every conversion keeps the value bit for bit:
//!
//! | comasync | windows-core |
//! |---|---|
//! | [`HRESULT`] | [`windows_core::HRESULT`] |
//! | [`GUID`] | [`windows_core::GUID`] |
//! | [`Error`] | [`windows_core::Error`] (its code only: comasync errors carry no `IErrorInfo`) |
//!
//! ```
//! use comasync::guid::IID_ICallFactory;
//! use comasync::hresult::RPC_S_CALLPENDING;
//!
//! let hr: windows_core::HRESULT = RPC_S_CALLPENDING.into();
//! assert_eq!(hr.0 as u32, 0x8001_0115);
//! assert_eq!(comasync::HRESULT::from(hr), RPC_S_CALLPENDING);
//!
//! let iid: windows_core::GUID = IID_ICallFactory.into();
//! assert_eq!(iid.to_u128(), 0x1C733A30_2A1C_11CE_ADE5_00AA0044773D);
//! ```

use crate::guid::GUID;
use crate::hresult::{Error, HRESULT};

impl From<HRESULT> for windows_core::HRESULT {
    fn from(hr: HRESULT) -> Self {
        windows_core::HRESULT(hr.0)
    }
}

impl From<windows_core::HRESULT> for HRESULT {
    fn from(hr: windows_core::HRESULT) -> Self {
        HRESULT(hr.0)
    }
}

impl From<GUID> for windows_core::GUID {
    fn from(g: GUID) -> Self {
        windows_core::GUID::from_values(g.data1, g.data2, g.data3, g.data4)
    }
}

impl From<windows_core::GUID> for GUID {
    fn from(g: windows_core::GUID) -> Self {
        GUID {
            data1: g.data1,
            data2: g.data2,
            data3: g.data3,
            data4: g.data4,
        }
    }
}

impl From<Error> for windows_core::Error {
    /// A `windows_core::Error` with the same code and no further error information.
    fn from(e: Error) -> Self {
        windows_core::Error::from_hresult(e.code().into())
    }
}

impl From<windows_core::Error> for Error {
    /// An [`Error`] with the same code; any `IErrorInfo` the `windows_core::Error` carries is
    /// dropped.
    fn from(e: windows_core::Error) -> Self {
        Error(e.code().into())
    }
}
