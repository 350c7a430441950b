//! `FaultyStream`: a registered `ISimpleStream` server whose methods panic, for the scenarios
//! of a server fault (a panic in a server method reached through a stub is
//! `RPC_E_SERVERFAULT`, spec 3.7). Called directly (no proxy), its panic stops the script with
//! "the operation panicked".

use crate::hresult::HRESULT;
use crate::simple_stream::ISimpleStream;

/// An `ISimpleStream` whose `Read` and `Write` panic.
#[comasync::implement(ISimpleStream)]
pub(crate) struct FaultyStream;

impl ISimpleStream for FaultyStream_Impl {
    fn read(&self, _cb: u32) -> (HRESULT, Vec<u8>) {
        panic!("FaultyStream::Read faults")
    }

    fn write(&self, _data: Vec<u8>) -> (HRESULT, u32) {
        panic!("FaultyStream::Write faults")
    }
}

impl FaultyStream {
    /// A new faulty stream.
    pub(crate) fn create() -> crate::unknown::ComPtr<dyn ISimpleStream> {
        crate::unknown::ComPtr::new(
            FaultyStream_Impl::new(FaultyStream, None) as std::sync::Arc<dyn ISimpleStream>
        )
    }
}
