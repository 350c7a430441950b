//! `GUID`: the SDK's IIDs and CLSIDs, and the registry-form parser and printer.
//!
//! The literal list was written from the headers (mingw-w64 `objidlbase.h`, `objidl.h`,
//! `unknwnbase.h`; the Windows SDK's `ObjIdlbase.h` for the `AsyncIPipe*` IIDs and `coguid.h`
//! for the CLSIDs), not copied from `src/guid.rs`.
#![allow(non_snake_case)]

use std::collections::HashMap;

use comasync::guid::{
    CLSID_ManualResetEvent, CLSID_StdEvent, CLSID_SynchronizeContainer, IID_ICallFactory,
    IID_ISynchronize, IID_IUnknown, GUID, GUID_NULL, WELL_KNOWN,
};
use comasync::hresult::{Error, E_INVALIDARG};
use proptest::prelude::*;

/// Every well-known GUID, in `DEFINE_GUID` form: (name, data1, data2, data3, data4).
const EXPECTED: &[(&str, u32, u16, u16, [u8; 8])] = &[
    ("IID_IUnknown", 0x00000000, 0x0000, 0x0000, OLE),
    ("IID_IClassFactory", 0x00000001, 0x0000, 0x0000, OLE),
    (
        "IID_ICallFactory",
        0x1c733a30,
        0x2a1c,
        0x11ce,
        [0xad, 0xe5, 0x00, 0xaa, 0x00, 0x44, 0x77, 0x3d],
    ),
    ("IID_ISynchronize", 0x00000030, 0x0000, 0x0000, OLE),
    ("IID_ISynchronizeHandle", 0x00000031, 0x0000, 0x0000, OLE),
    ("IID_ISynchronizeEvent", 0x00000032, 0x0000, 0x0000, OLE),
    ("IID_ISynchronizeContainer", 0x00000033, 0x0000, 0x0000, OLE),
    ("IID_ISynchronizeMutex", 0x00000025, 0x0000, 0x0000, OLE),
    ("IID_ICancelMethodCalls", 0x00000029, 0x0000, 0x0000, OLE),
    ("IID_IAsyncManager", 0x0000002a, 0x0000, 0x0000, OLE),
    ("IID_IWaitMultiple", 0x0000002b, 0x0000, 0x0000, OLE),
    ("IID_IClientSecurity", 0x0000013d, 0x0000, 0x0000, OLE),
    ("IID_IServerSecurity", 0x0000013e, 0x0000, 0x0000, OLE),
    ("IID_IMultiQI", 0x00000020, 0x0000, 0x0000, OLE),
    ("IID_AsyncIMultiQI", 0x000e0020, 0x0000, 0x0000, OLE),
    ("IID_IAdviseSink", 0x0000010f, 0x0000, 0x0000, OLE),
    ("IID_AsyncIAdviseSink", 0x00000150, 0x0000, 0x0000, OLE),
    ("IID_IAdviseSink2", 0x00000125, 0x0000, 0x0000, OLE),
    ("IID_AsyncIAdviseSink2", 0x00000151, 0x0000, 0x0000, OLE),
    ("IID_IPipeByte", 0xdb2f3aca, 0x2f86, 0x11d1, PIPE),
    ("IID_AsyncIPipeByte", 0xdb2f3acb, 0x2f86, 0x11d1, PIPE),
    ("IID_IPipeLong", 0xdb2f3acc, 0x2f86, 0x11d1, PIPE),
    ("IID_AsyncIPipeLong", 0xdb2f3acd, 0x2f86, 0x11d1, PIPE),
    ("IID_IPipeDouble", 0xdb2f3ace, 0x2f86, 0x11d1, PIPE),
    ("IID_AsyncIPipeDouble", 0xdb2f3acf, 0x2f86, 0x11d1, PIPE),
    ("CLSID_StdEvent", 0x0000032b, 0x0000, 0x0000, OLE),
    ("CLSID_ManualResetEvent", 0x0000032c, 0x0000, 0x0000, OLE),
    (
        "CLSID_SynchronizeContainer",
        0x0000032d,
        0x0000,
        0x0000,
        OLE,
    ),
];

/// The tail `DEFINE_OLEGUID` gives every OLE GUID: C000-000000000046.
const OLE: [u8; 8] = [0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x46];
/// The tail of the pipe IIDs: 8E04-00C04FB9989A.
const PIPE: [u8; 8] = [0x8e, 0x04, 0x00, 0xc0, 0x4f, 0xb9, 0x98, 0x9a];

#[test]
fn well_known_guids_match_the_sdk_headers_exactly() {
    let table: HashMap<&str, GUID> = WELL_KNOWN.iter().copied().collect();
    for &(name, data1, data2, data3, data4) in EXPECTED {
        let g = table
            .get(name)
            .unwrap_or_else(|| panic!("{name} is missing from WELL_KNOWN"));
        assert_eq!(
            *g,
            GUID {
                data1,
                data2,
                data3,
                data4
            },
            "{name}"
        );
    }
    assert_eq!(
        WELL_KNOWN.len(),
        EXPECTED.len(),
        "WELL_KNOWN has GUIDs the literal list does not"
    );
}

#[test]
fn well_known_guids_are_distinct() {
    let mut all: Vec<GUID> = WELL_KNOWN.iter().map(|&(_, g)| g).collect();
    all.sort_unstable();
    all.dedup();
    assert_eq!(all.len(), WELL_KNOWN.len());
}

#[test]
fn constants_print_in_registry_form() {
    assert_eq!(
        IID_ICallFactory.to_string(),
        "{1C733A30-2A1C-11CE-ADE5-00AA0044773D}"
    );
    assert_eq!(
        IID_IUnknown.to_string(),
        "{00000000-0000-0000-C000-000000000046}"
    );
    assert_eq!(
        IID_ISynchronize.to_string(),
        "{00000030-0000-0000-C000-000000000046}"
    );
    assert_eq!(
        CLSID_StdEvent.to_string(),
        "{0000032B-0000-0000-C000-000000000046}"
    );
    assert_eq!(
        CLSID_ManualResetEvent.to_string(),
        "{0000032C-0000-0000-C000-000000000046}"
    );
    assert_eq!(
        CLSID_SynchronizeContainer.to_string(),
        "{0000032D-0000-0000-C000-000000000046}"
    );
    assert_eq!(
        format!("{IID_ICallFactory:?}"),
        IID_ICallFactory.to_string()
    );
}

#[test]
fn guid_null_is_all_zeros_and_the_default() {
    assert_eq!(GUID_NULL, GUID::default());
    assert_eq!(GUID_NULL.to_u128(), 0);
    assert_eq!(
        GUID_NULL.to_string(),
        "{00000000-0000-0000-0000-000000000000}"
    );
}

#[test]
fn from_u128_reads_the_registry_digits_in_order() {
    let g = GUID::from_u128(0x1C733A30_2A1C_11CE_ADE5_00AA0044773D);
    assert_eq!(g, IID_ICallFactory);
    assert_eq!(g.data1, 0x1C733A30);
    assert_eq!(g.data2, 0x2A1C);
    assert_eq!(g.data3, 0x11CE);
    assert_eq!(g.data4, [0xAD, 0xE5, 0x00, 0xAA, 0x00, 0x44, 0x77, 0x3D]);
    assert_eq!(g.to_u128(), 0x1C733A30_2A1C_11CE_ADE5_00AA0044773D);
}

#[test]
fn every_well_known_guid_round_trips_through_its_string() {
    for &(name, g) in WELL_KNOWN {
        let s = g.to_string();
        assert_eq!(s.parse::<GUID>(), Ok(g), "{name}");
        assert_eq!(GUID::parse(&s), Some(g), "{name}");
        assert_eq!(GUID::from_u128(g.to_u128()), g, "{name}");
    }
}

#[test]
fn braces_are_optional_on_input() {
    let with: GUID = "{1C733A30-2A1C-11CE-ADE5-00AA0044773D}".parse().unwrap();
    let without: GUID = "1C733A30-2A1C-11CE-ADE5-00AA0044773D".parse().unwrap();
    assert_eq!(with, IID_ICallFactory);
    assert_eq!(without, IID_ICallFactory);
}

#[test]
fn parsing_is_case_insensitive_and_printing_is_upper_case() {
    for s in [
        "{1c733a30-2a1c-11ce-ade5-00aa0044773d}",
        "{1C733A30-2A1C-11CE-ADE5-00AA0044773D}",
        "1c733A30-2a1C-11cE-aDe5-00Aa0044773D",
    ] {
        let g: GUID = s.parse().unwrap();
        assert_eq!(g, IID_ICallFactory, "{s}");
        assert_eq!(g.to_string(), "{1C733A30-2A1C-11CE-ADE5-00AA0044773D}");
    }
}

#[test]
fn const_parse_is_usable_in_constants() {
    const G: GUID = GUID::from_str_const("{00000030-0000-0000-C000-000000000046}");
    const P: Option<GUID> = GUID::parse("not a guid");
    assert_eq!(G, IID_ISynchronize);
    assert_eq!(P, None);
}

#[test]
#[should_panic(expected = "malformed GUID literal")]
fn from_str_const_panics_on_a_malformed_literal() {
    let s = String::from("{00000030-0000-0000-C000-00000000004}");
    let _ = GUID::from_str_const(&s);
}

#[test]
fn malformed_strings_are_rejected_with_e_invalidarg() {
    let malformed = [
        "",
        "{}",
        "{",
        "}",
        // One character short or long.
        "1C733A30-2A1C-11CE-ADE5-00AA0044773",
        "1C733A30-2A1C-11CE-ADE5-00AA0044773D0",
        "{1C733A30-2A1C-11CE-ADE5-00AA0044773}",
        // Only one brace.
        "{1C733A30-2A1C-11CE-ADE5-00AA0044773D",
        "1C733A30-2A1C-11CE-ADE5-00AA0044773D}",
        // Wrong or swapped brackets.
        "(1C733A30-2A1C-11CE-ADE5-00AA0044773D)",
        "}1C733A30-2A1C-11CE-ADE5-00AA0044773D{",
        // Dashes missing or moved.
        "1C733A302A1C11CEADE500AA0044773D",
        "1C733A30-2A1C-11CE-ADE500AA0044773D-",
        "1C733A3-02A1C-11CE-ADE5-00AA0044773D",
        "1C733A30_2A1C_11CE_ADE5_00AA0044773D",
        // A non-hex digit, a sign, whitespace.
        "1C733A30-2A1C-11CE-ADE5-00AA0044773G",
        "+C733A30-2A1C-11CE-ADE5-00AA0044773D",
        " 1C733A30-2A1C-11CE-ADE5-00AA0044773D",
        "1C733A30-2A1C-11CE-ADE5-00AA0044773D ",
        "1C733A30-2A1C-11CE-ADE5 00AA0044773D",
        // A non-ASCII character in place of a digit.
        "1C733A30-2A1C-11CE-ADE5-00AA004477é",
        // 0x prefix.
        "0x1C733A30-2A1C-11CE-ADE5-00AA004477",
    ];
    for s in malformed {
        assert_eq!(s.parse::<GUID>(), Err(Error(E_INVALIDARG)), "{s:?}");
        assert_eq!(GUID::parse(s), None, "{s:?}");
    }
}

proptest! {
    #[test]
    fn any_guid_round_trips_through_its_string(v in any::<u128>()) {
        let g = GUID::from_u128(v);
        prop_assert_eq!(g.to_u128(), v);
        let s = g.to_string();
        prop_assert_eq!(s.len(), 38);
        prop_assert_eq!(s.parse::<GUID>(), Ok(g));
        prop_assert_eq!(s[1..37].parse::<GUID>(), Ok(g));
        prop_assert_eq!(s.to_ascii_lowercase().parse::<GUID>(), Ok(g));
    }

    #[test]
    fn parse_never_panics_on_arbitrary_input(s in "\\PC{0,40}") {
        match s.parse::<GUID>() {
            Ok(g) => prop_assert_eq!(g.to_string().to_ascii_lowercase(),
                                     format!("{{{}}}", s.trim_start_matches('{')
                                         .trim_end_matches('}').to_ascii_lowercase())),
            Err(e) => prop_assert_eq!(e, Error(E_INVALIDARG)),
        }
    }
}
