//! `HRESULT` values, names, messages, bit fields, formatting, conversions and parsing.
//!
//! The literal lists below were written from the SDK headers (mingw-w64 `winerror.h` for the
//! values, the Windows SDK `winerror.h` / Microsoft's "COM Error Codes" tables for the message
//! texts), not copied from `src/hresult.rs`, so that a typo in either place fails a test.

use std::collections::HashMap;

use comasync::hresult::{
    describe, facility_name, hresult_of, parse_hresult, Error, Result, CO_E_CANCEL_DISABLED,
    E_ACCESSDENIED, E_FAIL, E_HANDLE, E_INVALIDARG, E_NOINTERFACE, E_OUTOFMEMORY, E_PENDING,
    E_UNEXPECTED, FACILITY_ITF, FACILITY_NULL, FACILITY_RPC, FACILITY_WIN32,
    HRESULT_FROM_WIN32_RPC_S_CALL_CANCELLED, REGDB_E_CLASSNOTREG, RPC_E_CALL_CANCELED,
    RPC_E_CALL_COMPLETE, RPC_E_CALL_PENDING, RPC_E_TIMEOUT, RPC_S_CALLPENDING,
    RPC_S_CALL_CANCELLED, S_FALSE, S_OK, TABLE,
};
use comasync::HRESULT;
use proptest::prelude::*;

/// Every code of spec section 4 with its value, from mingw-w64 `winerror.h`.
const EXPECTED_VALUES: &[(&str, u32)] = &[
    ("S_OK", 0x00000000),
    ("S_FALSE", 0x00000001),
    ("E_NOTIMPL", 0x80004001),
    ("E_NOINTERFACE", 0x80004002),
    ("E_POINTER", 0x80004003),
    ("E_ABORT", 0x80004004),
    ("E_FAIL", 0x80004005),
    ("E_UNEXPECTED", 0x8000FFFF),
    ("E_PENDING", 0x8000000A),
    ("E_OUTOFMEMORY", 0x8007000E),
    ("E_INVALIDARG", 0x80070057),
    ("E_ACCESSDENIED", 0x80070005),
    ("E_HANDLE", 0x80070006),
    ("REGDB_E_CLASSNOTREG", 0x80040154),
    ("CO_E_NOT_SUPPORTED", 0x80004021),
    ("CLASS_E_NOAGGREGATION", 0x80040110),
    ("CO_E_NOTINITIALIZED", 0x800401F0),
    ("CO_E_OBJNOTCONNECTED", 0x800401FD),
    ("RPC_E_CALL_REJECTED", 0x80010001),
    ("RPC_E_CALL_CANCELED", 0x80010002),
    ("RPC_E_CANTCALLOUT_INASYNCCALL", 0x80010004),
    ("RPC_E_CANTCALLOUT_INEXTERNALCALL", 0x80010005),
    ("RPC_E_SERVER_DIED", 0x80010007),
    ("RPC_E_SERVER_DIED_DNE", 0x80010012),
    ("RPC_E_OUT_OF_RESOURCES", 0x80010101),
    ("RPC_E_SERVERFAULT", 0x80010105),
    ("RPC_E_CHANGED_MODE", 0x80010106),
    ("RPC_E_DISCONNECTED", 0x80010108),
    ("RPC_E_SERVERCALL_RETRYLATER", 0x8001010A),
    ("RPC_E_SERVERCALL_REJECTED", 0x8001010B),
    ("RPC_E_INVALID_CALLDATA", 0x8001010C),
    ("RPC_E_CANTCALLOUT_ININPUTSYNCCALL", 0x8001010D),
    ("RPC_E_WRONG_THREAD", 0x8001010E),
    ("RPC_E_THREAD_NOT_INIT", 0x8001010F),
    ("RPC_S_CALLPENDING", 0x80010115),
    ("RPC_S_WAITONTIMER", 0x80010116),
    ("RPC_E_CALL_COMPLETE", 0x80010117),
    ("RPC_E_UNSECURE_CALL", 0x80010118),
    ("RPC_E_NO_CONTEXT", 0x8001011E),
    ("RPC_E_TIMEOUT", 0x8001011F),
    ("RPC_E_NO_SYNC", 0x80010120),
    ("CO_E_CANCEL_DISABLED", 0x80010140),
    ("RPC_E_UNEXPECTED", 0x8001FFFF),
    ("HRESULT_FROM_WIN32_RPC_S_CALL_CANCELLED", 0x8007071A),
];

/// The SDK `MessageText` of every code that has one, word for word.
const EXPECTED_MESSAGES: &[(&str, &str)] = &[
    ("E_NOTIMPL", "Not implemented"),
    ("E_NOINTERFACE", "No such interface supported"),
    ("E_POINTER", "Invalid pointer"),
    ("E_ABORT", "Operation aborted"),
    ("E_FAIL", "Unspecified error"),
    ("E_UNEXPECTED", "Catastrophic failure"),
    (
        "E_PENDING",
        "The data necessary to complete this operation is not yet available.",
    ),
    ("E_OUTOFMEMORY", "Ran out of memory"),
    ("E_INVALIDARG", "One or more arguments are invalid"),
    ("E_ACCESSDENIED", "General access denied error"),
    ("E_HANDLE", "Invalid handle"),
    ("REGDB_E_CLASSNOTREG", "Class not registered"),
    (
        "CO_E_NOT_SUPPORTED",
        "The operation attempted is not supported.",
    ),
    (
        "CLASS_E_NOAGGREGATION",
        "Class does not support aggregation (or class object is remote)",
    ),
    ("CO_E_NOTINITIALIZED", "CoInitialize has not been called."),
    ("CO_E_OBJNOTCONNECTED", "Object is not connected to server"),
    ("RPC_E_CALL_REJECTED", "Call was rejected by callee."),
    (
        "RPC_E_CALL_CANCELED",
        "Call was canceled by the message filter.",
    ),
    (
        "RPC_E_CANTCALLOUT_INASYNCCALL",
        "The caller is dispatching an asynchronous call and cannot make an outgoing call on \
         behalf of this call.",
    ),
    (
        "RPC_E_CANTCALLOUT_INEXTERNALCALL",
        "It is illegal to call out while inside message filter.",
    ),
    (
        "RPC_E_SERVER_DIED",
        "The callee (server [not server application]) is not available and disappeared; all \
         connections are invalid. The call may have executed.",
    ),
    (
        "RPC_E_SERVER_DIED_DNE",
        "The callee (server [not server application]) is not available and disappeared; all \
         connections are invalid. The call did not execute.",
    ),
    (
        "RPC_E_OUT_OF_RESOURCES",
        "Could not allocate some required resource (memory, events, ...)",
    ),
    ("RPC_E_SERVERFAULT", "The server threw an exception."),
    (
        "RPC_E_CHANGED_MODE",
        "Cannot change thread mode after it is set.",
    ),
    (
        "RPC_E_DISCONNECTED",
        "The object invoked has disconnected from its clients.",
    ),
    (
        "RPC_E_SERVERCALL_RETRYLATER",
        "The message filter indicated that the application is busy.",
    ),
    (
        "RPC_E_SERVERCALL_REJECTED",
        "The message filter rejected the call.",
    ),
    (
        "RPC_E_INVALID_CALLDATA",
        "A call control interfaces was called with invalid data.",
    ),
    (
        "RPC_E_CANTCALLOUT_ININPUTSYNCCALL",
        "An outgoing call cannot be made since the application is dispatching an \
         input-synchronous call.",
    ),
    (
        "RPC_E_WRONG_THREAD",
        "The application called an interface that was marshalled for a different thread.",
    ),
    (
        "RPC_E_THREAD_NOT_INIT",
        "CoInitialize has not been called on the current thread.",
    ),
    (
        "RPC_S_CALLPENDING",
        "OLE has sent a request and is waiting for a reply.",
    ),
    (
        "RPC_S_WAITONTIMER",
        "OLE is waiting before retrying a request.",
    ),
    (
        "RPC_E_CALL_COMPLETE",
        "Call context cannot be accessed after call completed.",
    ),
    (
        "RPC_E_UNSECURE_CALL",
        "Impersonate on unsecure calls is not supported.",
    ),
    (
        "RPC_E_NO_CONTEXT",
        "No context is associated with this call. This happens for some custom marshalled \
         calls and on the client side of the call.",
    ),
    (
        "RPC_E_TIMEOUT",
        "This operation returned because the timeout period expired.",
    ),
    (
        "RPC_E_NO_SYNC",
        "There are no synchronize objects to wait on.",
    ),
    ("CO_E_CANCEL_DISABLED", "Call Cancellation is disabled"),
    ("RPC_E_UNEXPECTED", "An internal error occurred."),
    // The two codes without COM text: the Win32 FormatMessage text of the same value.
    ("S_OK", "The operation completed successfully."),
    (
        "HRESULT_FROM_WIN32_RPC_S_CALL_CANCELLED",
        "The remote procedure call was cancelled.",
    ),
];

fn table_by_name() -> HashMap<&'static str, HRESULT> {
    TABLE.iter().map(|e| (e.name, e.hr)).collect()
}

#[test]
fn table_values_match_the_sdk_headers_exactly() {
    let table = table_by_name();
    for &(name, value) in EXPECTED_VALUES {
        let hr = table
            .get(name)
            .unwrap_or_else(|| panic!("{name} is missing from TABLE"));
        assert_eq!(hr.as_u32(), value, "{name}: got 0x{:08X}", hr.as_u32());
    }
    assert_eq!(
        TABLE.len(),
        EXPECTED_VALUES.len(),
        "TABLE has rows the literal list does not"
    );
}

#[test]
fn table_lists_each_name_and_each_value_once() {
    let mut names: Vec<_> = TABLE.iter().map(|e| e.name).collect();
    let mut values: Vec<_> = TABLE.iter().map(|e| e.hr).collect();
    names.sort_unstable();
    names.dedup();
    values.sort_unstable();
    values.dedup();
    assert_eq!(names.len(), TABLE.len());
    assert_eq!(values.len(), TABLE.len());
}

#[test]
fn table_messages_are_the_sdk_message_text() {
    let table = table_by_name();
    for &(name, message) in EXPECTED_MESSAGES {
        let hr = table[name];
        assert_eq!(hr.message(), Some(message), "{name}");
    }
}

#[test]
fn every_table_entry_has_a_nonempty_one_line_message() {
    for e in TABLE {
        assert!(!e.message.is_empty(), "{}", e.name);
        assert!(!e.message.contains('\n'), "{}", e.name);
        assert_eq!(e.message, e.message.trim(), "{}", e.name);
    }
}

#[test]
fn s_false_message_is_not_the_misleading_format_message_text() {
    // FormatMessage(1) gives ERROR_INVALID_FUNCTION's "Incorrect function."; comasync says
    // what S_FALSE means instead.
    let message = S_FALSE.message().expect("S_FALSE has a message");
    assert_ne!(message, "Incorrect function.");
    assert!(message.contains("false"), "{message}");
}

#[test]
fn rpc_e_call_pending_is_an_alias_of_0x80010115() {
    assert_eq!(RPC_E_CALL_PENDING.as_u32(), 0x8001_0115);
    assert_eq!(RPC_E_CALL_PENDING, RPC_S_CALLPENDING);
    // The alias is not a TABLE row: the value's name is the SDK's.
    assert_eq!(RPC_E_CALL_PENDING.name(), Some("RPC_S_CALLPENDING"));
    assert!(TABLE.iter().all(|e| e.name != "RPC_E_CALL_PENDING"));
    assert_eq!(
        HRESULT::from_name("RPC_E_CALL_PENDING"),
        Some(RPC_S_CALLPENDING)
    );
    assert_eq!(
        HRESULT::from_name("rpc_e_call_pending"),
        Some(RPC_S_CALLPENDING)
    );
}

#[test]
fn rpc_s_callpending_is_a_failure_despite_its_s_prefix() {
    assert!(RPC_S_CALLPENDING.failed());
    assert!(!RPC_S_CALLPENDING.succeeded());
    assert_eq!(RPC_S_CALLPENDING.severity(), 1);
    assert_eq!(RPC_S_CALLPENDING.ok(), Err(Error(RPC_S_CALLPENDING)));
}

#[test]
fn succeeded_and_failed_follow_the_sign_bit() {
    for e in TABLE {
        let failure = e.hr.as_u32() & 0x8000_0000 != 0;
        assert_eq!(e.hr.failed(), failure, "{}", e.name);
        assert_eq!(e.hr.succeeded(), !failure, "{}", e.name);
    }
    assert!(S_OK.succeeded() && S_FALSE.succeeded());
}

#[test]
fn from_name_finds_every_entry_in_any_case() {
    for e in TABLE {
        assert_eq!(HRESULT::from_name(e.name), Some(e.hr), "{}", e.name);
        assert_eq!(
            HRESULT::from_name(&e.name.to_ascii_lowercase()),
            Some(e.hr),
            "{}",
            e.name
        );
        let mixed: String = e
            .name
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i % 2 == 0 {
                    c.to_ascii_lowercase()
                } else {
                    c
                }
            })
            .collect();
        assert_eq!(HRESULT::from_name(&mixed), Some(e.hr), "{mixed}");
    }
}

#[test]
fn from_name_rejects_names_no_header_defines() {
    // Names the documentation uses but no SDK header defines (spec section 4), other than the
    // one alias comasync accepts.
    for name in [
        "RPC_E_CALLPENDING",
        "RPC_S_CALL_CANCELED",
        "E_NOPE",
        "",
        "S_OK ",
    ] {
        assert_eq!(HRESULT::from_name(name), None, "{name:?}");
    }
}

#[test]
fn name_of_every_entry_value_is_its_name() {
    for e in TABLE {
        assert_eq!(e.hr.name(), Some(e.name));
        assert_eq!(e.hr.message(), Some(e.message));
    }
    let unknown = HRESULT::from_u32(0x8001_2345);
    assert_eq!(unknown.name(), None);
    assert_eq!(unknown.message(), None);
}

#[test]
fn severity_facility_and_code_decompose_the_bits() {
    let cases = [
        (S_OK, 0, FACILITY_NULL, 0x0000),
        (S_FALSE, 0, FACILITY_NULL, 0x0001),
        (E_FAIL, 1, FACILITY_NULL, 0x4005),
        (E_PENDING, 1, FACILITY_NULL, 0x000A),
        (E_UNEXPECTED, 1, FACILITY_NULL, 0xFFFF),
        (E_INVALIDARG, 1, FACILITY_WIN32, 0x0057),
        (E_ACCESSDENIED, 1, FACILITY_WIN32, 5),
        (REGDB_E_CLASSNOTREG, 1, FACILITY_ITF, 0x0154),
        (RPC_S_CALLPENDING, 1, FACILITY_RPC, 0x0115),
        (CO_E_CANCEL_DISABLED, 1, FACILITY_RPC, 0x0140),
        (
            HRESULT_FROM_WIN32_RPC_S_CALL_CANCELLED,
            1,
            FACILITY_WIN32,
            1818,
        ),
        (HRESULT::from_u32(0xFFFF_FFFF), 1, 0x7FF, 0xFFFF),
        (HRESULT::from_u32(0x7FFF_FFFF), 0, 0x7FF, 0xFFFF),
    ];
    for (hr, severity, facility, code) in cases {
        assert_eq!(hr.severity(), severity, "{hr:?}");
        assert_eq!(hr.facility(), facility, "{hr:?}");
        assert_eq!(hr.code(), code, "{hr:?}");
    }
}

#[test]
fn facility_constants_are_the_sdk_values() {
    assert_eq!(
        (FACILITY_NULL, FACILITY_RPC, FACILITY_ITF, FACILITY_WIN32),
        (0, 1, 4, 7)
    );
}

#[test]
fn facility_name_names_the_four_facilities_and_no_other() {
    assert_eq!(facility_name(0), Some("NULL"));
    assert_eq!(facility_name(1), Some("RPC"));
    assert_eq!(facility_name(4), Some("ITF"));
    assert_eq!(facility_name(7), Some("WIN32"));
    for other in [2, 3, 5, 6, 8, 0x7FF] {
        assert_eq!(facility_name(other), None, "{other}");
    }
}

#[test]
fn display_is_name_hex_and_message() {
    for e in TABLE {
        assert_eq!(
            e.hr.to_string(),
            format!("{} (0x{:08X}): {}", e.name, e.hr.as_u32(), e.message)
        );
    }
    assert_eq!(
        RPC_E_CALL_COMPLETE.to_string(),
        "RPC_E_CALL_COMPLETE (0x80010117): Call context cannot be accessed after call completed."
    );
}

#[test]
fn display_of_an_unknown_code_is_its_hex_value() {
    assert_eq!(HRESULT::from_u32(0x8001_2345).to_string(), "0x80012345");
    assert_eq!(HRESULT::from_u32(0x0000_0002).to_string(), "0x00000002");
}

#[test]
fn debug_shows_name_and_hex() {
    assert_eq!(format!("{E_NOINTERFACE:?}"), "E_NOINTERFACE(0x80004002)");
    assert_eq!(
        format!("{:?}", HRESULT::from_u32(0x8001_2345)),
        "HRESULT(0x80012345)"
    );
    assert_eq!(
        format!("{:?}", Error(RPC_E_TIMEOUT)),
        "Error(RPC_E_TIMEOUT(0x8001011F))"
    );
}

#[test]
fn error_display_is_the_hresult_display() {
    let e = Error(RPC_E_CALL_CANCELED);
    assert_eq!(e.to_string(), RPC_E_CALL_CANCELED.to_string());
    let as_std: &dyn std::error::Error = &e;
    assert!(as_std.source().is_none());
}

#[test]
fn error_converts_to_and_from_hresult() {
    let e: Error = E_NOINTERFACE.into();
    assert_eq!(e, Error(E_NOINTERFACE));
    assert_eq!(e.code(), E_NOINTERFACE);
    let hr: HRESULT = e.into();
    assert_eq!(hr, E_NOINTERFACE);
}

#[test]
fn ok_maps_success_codes_to_ok_and_failures_to_err() {
    assert_eq!(S_OK.ok(), Ok(()));
    assert_eq!(S_FALSE.ok(), Ok(()));
    assert_eq!(E_FAIL.ok(), Err(Error(E_FAIL)));
    assert_eq!(RPC_E_TIMEOUT.ok(), Err(Error(RPC_E_TIMEOUT)));
}

#[test]
fn hresult_of_folds_a_result_back_into_a_code() {
    assert_eq!(hresult_of(Ok(())), S_OK);
    assert_eq!(hresult_of(Err(Error(E_HANDLE))), E_HANDLE);
    for e in TABLE.iter().filter(|e| e.hr.failed()) {
        assert_eq!(hresult_of(e.hr.ok()), e.hr);
    }
}

#[test]
fn question_mark_propagates_an_hresult_failure_as_error() {
    fn inner(hr: HRESULT) -> Result<u32> {
        hr.ok()?;
        Ok(7)
    }
    assert_eq!(inner(S_OK), Ok(7));
    assert_eq!(inner(E_OUTOFMEMORY), Err(Error(E_OUTOFMEMORY)));
}

#[test]
fn i32_conversions_round_trip() {
    assert_eq!(HRESULT::from(-2147417835_i32), RPC_S_CALLPENDING);
    assert_eq!(i32::from(RPC_S_CALLPENDING), -2147417835);
    for e in TABLE {
        assert_eq!(HRESULT::from(i32::from(e.hr)), e.hr);
        assert_eq!(HRESULT::from_u32(e.hr.as_u32()), e.hr);
    }
}

#[test]
fn from_win32_wraps_win32_codes_in_facility_win32() {
    assert_eq!(HRESULT::from_win32(0), S_OK);
    assert_eq!(HRESULT::from_win32(5), E_ACCESSDENIED);
    assert_eq!(HRESULT::from_win32(6), E_HANDLE);
    assert_eq!(HRESULT::from_win32(14), E_OUTOFMEMORY);
    assert_eq!(HRESULT::from_win32(87), E_INVALIDARG);
    assert_eq!(
        HRESULT::from_win32(RPC_S_CALL_CANCELLED),
        HRESULT_FROM_WIN32_RPC_S_CALL_CANCELLED
    );
    assert_eq!(RPC_S_CALL_CANCELLED, 1818);
    // Like the macro, only the low 16 bits of the code survive.
    assert_eq!(HRESULT::from_win32(0x0001_0005), E_ACCESSDENIED);
}

#[test]
fn from_win32_passes_through_values_that_are_already_failures() {
    // HRESULT_FROM_WIN32(x) is x when (HRESULT)x <= 0.
    assert_eq!(HRESULT::from_win32(E_FAIL.as_u32()), E_FAIL);
    assert_eq!(
        HRESULT::from_win32(RPC_S_CALLPENDING.as_u32()),
        RPC_S_CALLPENDING
    );
}

#[test]
fn parse_hresult_accepts_every_input_form() {
    for input in [
        "0x80010115",
        "0X80010115",
        "0x080010115",
        "80010115",
        "-2147417835",
        "2147549461",
        "RPC_S_CALLPENDING",
        "rpc_s_callpending",
        "Rpc_S_CallPending",
        "RPC_E_CALL_PENDING",
        "rpc_e_call_pending",
        "  0x80010115\t",
    ] {
        assert_eq!(parse_hresult(input), Ok(RPC_S_CALLPENDING), "{input:?}");
    }
}

#[test]
fn parse_hresult_hex_is_case_insensitive_and_allows_short_and_zero_padded_forms() {
    assert_eq!(parse_hresult("0x8001011f"), Ok(RPC_E_TIMEOUT));
    assert_eq!(parse_hresult("0x8001011F"), Ok(RPC_E_TIMEOUT));
    assert_eq!(parse_hresult("8001011f"), Ok(RPC_E_TIMEOUT));
    assert_eq!(parse_hresult("0x1"), Ok(S_FALSE));
    assert_eq!(parse_hresult("0x0"), Ok(S_OK));
    assert_eq!(parse_hresult("0x000000000001"), Ok(S_FALSE));
    assert_eq!(parse_hresult("0xFFFFFFFF"), Ok(HRESULT(-1)));
}

#[test]
fn parse_hresult_reads_a_bare_8_digit_string_as_hex_even_if_it_is_decimal() {
    // 80010115 is also a decimal number (0x04C5_0F03); logs print codes as bare hex.
    assert_eq!(
        parse_hresult("80010115"),
        Ok(HRESULT::from_u32(0x8001_0115))
    );
    assert_eq!(
        parse_hresult("12345678"),
        Ok(HRESULT::from_u32(0x1234_5678))
    );
    assert_eq!(parse_hresult("00000001"), Ok(S_FALSE));
    // A leading zero makes it 9 digits: decimal.
    assert_eq!(parse_hresult("012345678"), Ok(HRESULT(12_345_678)));
    // Other lengths of plain digits are decimal.
    assert_eq!(parse_hresult("1234567"), Ok(HRESULT(1_234_567)));
    assert_eq!(parse_hresult("0"), Ok(S_OK));
    assert_eq!(parse_hresult("1"), Ok(S_FALSE));
}

#[test]
fn parse_hresult_decimal_covers_the_signed_and_unsigned_ranges() {
    assert_eq!(parse_hresult("-2147483648"), Ok(HRESULT(i32::MIN)));
    assert_eq!(parse_hresult("2147483647"), Ok(HRESULT(i32::MAX)));
    assert_eq!(parse_hresult("4294967295"), Ok(HRESULT(-1)));
    assert_eq!(parse_hresult("-1"), Ok(HRESULT(-1)));
    assert_eq!(parse_hresult("-0"), Ok(S_OK));
    assert_eq!(parse_hresult("-2147467259"), Ok(E_FAIL));
    assert_eq!(parse_hresult("2147500037"), Ok(E_FAIL));
}

#[test]
fn parse_hresult_rejects_out_of_range_numbers() {
    for input in [
        "0x100000000",
        "0xFFFFFFFFF",
        "4294967296",
        "-2147483649",
        "99999999999999999999999999",
        "-99999999999999999999999999",
    ] {
        let err = parse_hresult(input).expect_err(input);
        assert!(
            err.contains("range") || err.contains("32 bits"),
            "{input}: {err}"
        );
    }
}

#[test]
fn parse_hresult_rejects_malformed_input_with_a_one_line_reason() {
    for input in [
        "",
        "   ",
        "0x",
        "0xZZ",
        "0x-1",
        "0x+1",
        "0x 1",
        "12ab",
        "800101F",
        "800101150F",
        "-0x1",
        "+1",
        "--1",
        "-",
        "1.5",
        "E_FAIL!",
        "0x8001_0115",
        "RPC S CALLPENDING",
        "9E_FAIL",
        "é",
    ] {
        let err = parse_hresult(input).expect_err(input);
        assert!(!err.is_empty(), "{input:?}");
        assert!(!err.contains('\n'), "{input:?}: {err}");
    }
}

#[test]
fn parse_hresult_rejects_unknown_names_naming_them() {
    let err = parse_hresult("RPC_E_CALLPENDING").expect_err("undefined name");
    assert!(err.contains("unknown"), "{err}");
    assert!(err.contains("RPC_E_CALLPENDING"), "{err}");
}

#[test]
fn parse_hresult_finds_every_table_entry_by_name_and_by_value() {
    for e in TABLE {
        let v = e.hr.as_u32();
        assert_eq!(parse_hresult(e.name), Ok(e.hr), "{}", e.name);
        assert_eq!(
            parse_hresult(&e.name.to_ascii_lowercase()),
            Ok(e.hr),
            "{}",
            e.name
        );
        assert_eq!(parse_hresult(&format!("0x{v:08X}")), Ok(e.hr));
        assert_eq!(parse_hresult(&format!("{v:08x}")), Ok(e.hr));
        assert_eq!(parse_hresult(&e.hr.0.to_string()), Ok(e.hr));
        assert_eq!(parse_hresult(&v.to_string()), Ok(e.hr));
    }
}

proptest! {
    #[test]
    fn parse_hresult_round_trips_every_printed_form(v in any::<u32>()) {
        let hr = HRESULT::from_u32(v);
        prop_assert_eq!(parse_hresult(&format!("0x{v:08X}")), Ok(hr));
        prop_assert_eq!(parse_hresult(&format!("0x{v:x}")), Ok(hr));
        prop_assert_eq!(parse_hresult(&format!("{v:08X}")), Ok(hr));
        // Decimal, except where the string is exactly 8 digits: that is read as hex.
        for decimal in [hr.0.to_string(), v.to_string(), format!("0{v}")] {
            let bare_hex = decimal.len() == 8 && decimal.bytes().all(|b| b.is_ascii_hexdigit());
            if !bare_hex {
                prop_assert_eq!(parse_hresult(&decimal), Ok(hr), "{}", decimal);
            }
        }
    }

    #[test]
    fn parse_hresult_never_panics_and_errors_are_one_line(s in "\\PC{0,24}") {
        if let Err(reason) = parse_hresult(&s) {
            prop_assert!(!reason.contains('\n'));
        }
    }
}

fn line<'a>(text: &'a str, key: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no `{key}:` line in\n{text}"))
}

#[test]
fn describe_a_named_failure_gives_every_field() {
    let text = describe(RPC_E_CALL_CANCELED);
    assert_eq!(line(&text, "name"), "name:     RPC_E_CALL_CANCELED");
    assert_eq!(
        line(&text, "value"),
        "value:    0x80010002 (signed -2147418110, unsigned 2147549186)"
    );
    assert_eq!(line(&text, "severity"), "severity: 1 (failure)");
    assert_eq!(line(&text, "facility"), "facility: 1 (RPC)");
    assert_eq!(line(&text, "code"), "code:     0x0002 (2)");
    assert_eq!(
        line(&text, "message"),
        "message:  Call was canceled by the message filter."
    );
    assert!(text.ends_with('\n'));
}

#[test]
fn describe_rpc_s_callpending_mentions_the_documentation_alias() {
    let text = describe(RPC_S_CALLPENDING);
    assert!(
        line(&text, "alias").contains("RPC_E_CALL_PENDING"),
        "{text}"
    );
    assert_eq!(line(&text, "severity"), "severity: 1 (failure)");
    assert!(!describe(RPC_E_TIMEOUT).contains("alias:"));
}

#[test]
fn describe_a_success_code() {
    let text = describe(S_FALSE);
    assert_eq!(line(&text, "name"), "name:     S_FALSE");
    assert_eq!(line(&text, "severity"), "severity: 0 (success)");
    assert_eq!(line(&text, "facility"), "facility: 0 (NULL)");
}

#[test]
fn describe_a_win32_code_names_the_win32_error() {
    let text = describe(HRESULT_FROM_WIN32_RPC_S_CALL_CANCELLED);
    assert_eq!(line(&text, "facility"), "facility: 7 (WIN32)");
    assert!(line(&text, "code").contains("1818"), "{text}");
    assert!(line(&text, "code").contains("Win32"), "{text}");
    assert_eq!(
        line(&describe(E_INVALIDARG), "facility"),
        "facility: 7 (WIN32)"
    );
    assert_eq!(
        line(&describe(REGDB_E_CLASSNOTREG), "facility"),
        "facility: 4 (ITF)"
    );
}

#[test]
fn describe_an_unknown_value_still_gives_severity_facility_and_code() {
    let text = describe(HRESULT::from_u32(0x8001_2345));
    assert_eq!(line(&text, "name"), "name:     unknown");
    assert_eq!(line(&text, "severity"), "severity: 1 (failure)");
    assert_eq!(line(&text, "facility"), "facility: 1 (RPC)");
    assert_eq!(line(&text, "code"), "code:     0x2345 (9029)");
    assert!(line(&text, "message").contains("none"), "{text}");

    let other = describe(HRESULT::from_u32(0x8002_0001));
    assert_eq!(line(&other, "facility"), "facility: 2 (other)");
}
