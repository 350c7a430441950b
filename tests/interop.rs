//! `From`/`Into` between comasync's `HRESULT`, `GUID` and `Error` and windows-core's.
//! Built only with `--features windows-core`.

use comasync::guid::{IID_ICallFactory, GUID, WELL_KNOWN};
use comasync::hresult::{Error, E_FAIL, RPC_S_CALLPENDING, S_FALSE, S_OK, TABLE};
use comasync::HRESULT;
use proptest::prelude::*;

#[test]
fn hresult_converts_to_windows_core_keeping_the_value() {
    for e in TABLE {
        let w: windows_core::HRESULT = e.hr.into();
        assert_eq!(w.0, e.hr.0, "{}", e.name);
        assert_eq!(HRESULT::from(w), e.hr, "{}", e.name);
    }
    let w: windows_core::HRESULT = RPC_S_CALLPENDING.into();
    assert_eq!(w.0 as u32, 0x8001_0115);
    assert!(w.is_err());
}

#[test]
fn windows_core_hresult_converts_to_comasync_keeping_the_value() {
    let hr: HRESULT = windows_core::HRESULT(0x8000_4005_u32 as i32).into();
    assert_eq!(hr, E_FAIL);
    let hr: HRESULT = windows_core::HRESULT(1).into();
    assert_eq!(hr, S_FALSE);
}

#[test]
fn guid_converts_both_ways_keeping_every_field() {
    for &(name, g) in WELL_KNOWN {
        let w: windows_core::GUID = g.into();
        assert_eq!(w.to_u128(), g.to_u128(), "{name}");
        assert_eq!(
            (w.data1, w.data2, w.data3, w.data4),
            (g.data1, g.data2, g.data3, g.data4),
            "{name}"
        );
        assert_eq!(GUID::from(w), g, "{name}");
    }
    let w = windows_core::GUID::from_u128(0x1C733A30_2A1C_11CE_ADE5_00AA0044773D);
    assert_eq!(GUID::from(w), IID_ICallFactory);
}

#[test]
fn error_converts_both_ways_keeping_the_code() {
    for e in TABLE {
        let w: windows_core::Error = Error(e.hr).into();
        assert_eq!(w.code().0, e.hr.0, "{}", e.name);
        assert_eq!(Error::from(w), Error(e.hr), "{}", e.name);
    }
    let w = windows_core::Error::from_hresult(windows_core::HRESULT(S_OK.0));
    assert_eq!(Error::from(w).code(), S_OK);
}

proptest! {
    #[test]
    fn any_hresult_round_trips_through_windows_core(v in any::<i32>()) {
        let hr = HRESULT(v);
        let w: windows_core::HRESULT = hr.into();
        prop_assert_eq!(w.0, v);
        prop_assert_eq!(HRESULT::from(w), hr);
    }

    #[test]
    fn any_guid_round_trips_through_windows_core(v in any::<u128>()) {
        let g = GUID::from_u128(v);
        let w: windows_core::GUID = g.into();
        prop_assert_eq!(w.to_u128(), v);
        prop_assert_eq!(GUID::from(w), g);
    }
}
