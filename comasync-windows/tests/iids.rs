//! The stand-in's generated interfaces carry the IIDs comasync uses (both from the SDK), and
//! the CLSIDs the bridge exports are comasync's.

use comasync::guid as g;
use windows::core::{Interface, GUID};
use windows::Win32::System::Com::{
    ICallFactory, ICancelMethodCalls, ISynchronize, ISynchronizeContainer, ISynchronizeEvent,
    ISynchronizeHandle,
};

fn theirs(guid: comasync::guid::GUID) -> GUID {
    guid.into()
}

#[test]
fn the_generated_interfaces_have_comasyncs_iids() {
    assert_eq!(ISynchronize::IID, theirs(g::IID_ISynchronize));
    assert_eq!(ISynchronizeHandle::IID, theirs(g::IID_ISynchronizeHandle));
    assert_eq!(ISynchronizeEvent::IID, theirs(g::IID_ISynchronizeEvent));
    assert_eq!(
        ISynchronizeContainer::IID,
        theirs(g::IID_ISynchronizeContainer)
    );
    assert_eq!(ICallFactory::IID, theirs(g::IID_ICallFactory));
    assert_eq!(ICancelMethodCalls::IID, theirs(g::IID_ICancelMethodCalls));
}

#[test]
fn the_bridges_clsids_are_comasyncs() {
    assert_eq!(
        comasync_windows::CLSID_MANUAL_RESET_EVENT,
        theirs(g::CLSID_ManualResetEvent)
    );
    assert_eq!(comasync_windows::CLSID_STD_EVENT, theirs(g::CLSID_StdEvent));
    assert_eq!(
        comasync_windows::CLSID_SYNCHRONIZE_CONTAINER,
        theirs(g::CLSID_SynchronizeContainer)
    );
}
