//! The `comasync` binary: `comasync hresult CODE` and `comasync hresult --all`, their output
//! and exit codes, for every input form.

use std::process::{Command, Output};

use comasync::hresult::{describe, facility_name, RPC_S_CALLPENDING, TABLE};

fn comasync(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_comasync"))
        .args(args)
        .output()
        .expect("run the comasync binary")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("stdout is UTF-8")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("stderr is UTF-8")
}

/// Runs `comasync hresult <input>`, expects exit 0 and returns stdout.
fn hresult_ok(input: &str) -> String {
    let out = comasync(&["hresult", input]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{input:?}: stderr {}",
        stderr(&out)
    );
    assert!(stderr(&out).is_empty(), "{input:?}: {}", stderr(&out));
    stdout(&out)
}

/// Runs `comasync hresult <input>`, expects exit 2 and a one-line reason; returns it.
fn hresult_rejected(input: &str) -> String {
    let out = comasync(&["hresult", input]);
    assert_eq!(out.status.code(), Some(2), "{input:?}: {}", stdout(&out));
    assert!(stdout(&out).is_empty(), "{input:?}: {}", stdout(&out));
    let err = stderr(&out);
    assert_eq!(err.lines().count(), 1, "{input:?}: {err}");
    assert!(err.starts_with("comasync: "), "{err}");
    err
}

#[test]
fn hresult_prints_describe_for_every_input_form() {
    let expected = describe(RPC_S_CALLPENDING);
    for input in [
        "0x80010115",
        "0X80010115",
        "80010115",
        "-2147417835",
        "2147549461",
        "RPC_S_CALLPENDING",
        "rpc_s_callpending",
        "RPC_E_CALL_PENDING",
        "rpc_e_call_pending",
    ] {
        assert_eq!(hresult_ok(input), expected, "{input}");
    }
}

#[test]
fn hresult_output_has_name_value_severity_facility_code_and_message() {
    let text = hresult_ok("0x80010115");
    for expected in [
        "name:     RPC_S_CALLPENDING",
        "value:    0x80010115 (signed -2147417835, unsigned 2147549461)",
        "severity: 1 (failure)",
        "facility: 1 (RPC)",
        "code:     0x0115 (277)",
        "message:  OLE has sent a request and is waiting for a reply.",
    ] {
        assert!(
            text.lines().any(|l| l == expected),
            "{expected:?} in\n{text}"
        );
    }
}

#[test]
fn hresult_accepts_a_negative_number_without_a_separator() {
    let text = hresult_ok("-2147467259");
    assert!(text.starts_with("name:     E_FAIL\n"), "{text}");
    let text = hresult_ok("-1");
    assert!(text.contains("value:    0xFFFFFFFF"), "{text}");
}

#[test]
fn hresult_describes_every_table_entry_by_name_and_by_hex() {
    for e in TABLE {
        let expected = describe(e.hr);
        assert_eq!(hresult_ok(e.name), expected, "{}", e.name);
        assert_eq!(
            hresult_ok(&format!("0x{:08X}", e.hr.as_u32())),
            expected,
            "{}",
            e.name
        );
    }
}

#[test]
fn hresult_of_an_unknown_value_still_prints_severity_facility_and_code() {
    let text = hresult_ok("0x80012345");
    assert!(text.contains("name:     unknown\n"), "{text}");
    assert!(text.contains("severity: 1 (failure)\n"), "{text}");
    assert!(text.contains("facility: 1 (RPC)\n"), "{text}");
    assert!(text.contains("code:     0x2345 (9029)\n"), "{text}");

    let text = hresult_ok("0x00350001");
    assert!(text.contains("severity: 0 (success)\n"), "{text}");
    assert!(text.contains("facility: 53 (other)\n"), "{text}");
}

#[test]
fn hresult_of_an_unknown_name_exits_2_with_a_one_line_reason() {
    let err = hresult_rejected("RPC_E_CALLPENDING");
    assert!(err.contains("unknown HRESULT name"), "{err}");
    assert!(err.contains("RPC_E_CALLPENDING"), "{err}");
}

#[test]
fn hresult_of_malformed_input_exits_2_with_a_one_line_reason() {
    for input in [
        "",
        "0x",
        "0xZZ",
        "12ab",
        "-foo",
        "1.5",
        "0x100000000",
        "4294967296",
        "-2147483649",
    ] {
        hresult_rejected(input);
    }
}

#[test]
fn hresult_all_prints_one_line_per_table_entry() {
    let out = comasync(&["hresult", "--all"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), TABLE.len());
    for (line, e) in lines.iter().zip(TABLE) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields[0], e.name, "{line}");
        assert_eq!(fields[1], format!("0x{:08X}", e.hr.as_u32()), "{line}");
        assert_eq!(
            fields[2],
            facility_name(e.hr.facility()).unwrap_or("other"),
            "{line}"
        );
        assert!(line.ends_with(e.message), "{line}");
    }
}

#[test]
fn hresult_needs_exactly_one_of_code_or_all() {
    for args in [
        &["hresult"][..],
        &["hresult", "--all", "E_FAIL"],
        &["hresult", "E_FAIL", "--all"],
        &["hresult", "E_FAIL", "E_ABORT"],
    ] {
        let out = comasync(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        assert!(stdout(&out).is_empty(), "{args:?}");
        assert!(!stderr(&out).is_empty(), "{args:?}");
    }
}

#[test]
fn a_missing_or_unknown_subcommand_exits_2() {
    for args in [&[][..], &["frobnicate"]] {
        let out = comasync(args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
    }
}

#[test]
fn help_lists_the_hresult_subcommand() {
    let out = comasync(&["--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("hresult"), "{}", stdout(&out));
    let out = comasync(&["hresult", "--help"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("--all"), "{}", stdout(&out));
}

#[test]
fn the_tour_subcommand_runs_to_completion() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_comasync"))
        .arg("tour")
        .output()
        .unwrap();
    assert!(out.status.success());
    let mut expected = Vec::new();
    comasync::tour::run(&mut expected).unwrap();
    assert_eq!(
        out.stdout, expected,
        "the subcommand prints the library's tour"
    );
}

/// Writes `text` to a fresh scenario file in the target directory and returns its path.
fn script(name: &str, text: &str) -> String {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-scripts");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

const PASSING: &str = "e = StdEvent\nclient: Signal e -> S_OK\nclient: Wait e 0 -> S_OK\n";
const FAILING: &str =
    "e = StdEvent\nclient: Signal e -> S_OK\nclient: Wait e 0 -> RPC_S_CALLPENDING\n";

#[test]
fn hresult_accepts_winerror_h_spelling_with_a_long_suffix() {
    assert_eq!(hresult_ok("0x80010115L"), hresult_ok("0x80010115"));
}

#[test]
fn help_of_help_prints_help_and_help_names_a_subcommand() {
    let out = comasync(&["help", "--help"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert!(stdout(&out).contains("Usage: comasync help"));
    let out = comasync(&["help", "run"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).contains("Usage: comasync run"));
    assert_eq!(comasync(&["help", "nonsense"]).status.code(), Some(2));
}

#[test]
fn run_keep_going_runs_every_script_and_ends_with_a_total() {
    let pass = script("pass.cas", PASSING);
    let fail = script("fail.cas", FAILING);
    let out = comasync(&["run", "--keep-going", &fail, &pass]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).ends_with("1 passed, 1 failed\n"),
        "{}",
        stdout(&out)
    );
    assert!(stderr(&out).contains("fail.cas:3: expected RPC_S_CALLPENDING, got S_OK"));
    // Without --keep-going the run stops at the first failure, and still says so.
    let out = comasync(&["run", &fail, &pass]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).ends_with("0 passed, 1 failed\n"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn diagram_of_a_failing_script_is_drawn_up_to_the_failure_and_marks_it() {
    let fail = script("fail-diagram.cas", FAILING);
    let out = comasync(&["diagram", &fail]);
    assert_eq!(out.status.code(), Some(1));
    let text = stdout(&out);
    assert!(text.starts_with("sequenceDiagram\n"), "{text}");
    assert!(text.contains("Signal()"), "{text}");
    assert!(
        text.contains("Note over")
            && text.contains("✗")
            && text.contains("expected RPC_S_CALLPENDING, got S_OK"),
        "{text}"
    );
}

#[test]
fn a_script_that_binds_a_name_twice_is_a_syntax_error() {
    let twice = script("twice.cas", "e = StdEvent\ne = ManualResetEvent\n");
    let out = comasync(&["run", &twice]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("twice.cas:2: `e` is already bound (line 1)"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_failed_finish_is_compared_with_the_out_parameter_the_script_expects() {
    // Finish_ of a cancelled call fails and leaves its out-parameter empty: an expectation
    // naming another value is a mismatch that shows what came back.
    let text = "s = SimpleStream \"hello\"\nf = QueryInterface s ICallFactory -> S_OK\n\
                call = CreateCall f AsyncISimpleStream -> S_OK\n\
                client: Begin_Read call 5 -> S_OK\nclient: Cancel call 0 -> S_OK\n\
                client: Finish_Read call -> RPC_E_CALL_CANCELED \"hello\"\n";
    let path = script("failed-finish.cas", text);
    let out = comasync(&["run", &path]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("expected RPC_E_CALL_CANCELED \"hello\", got RPC_E_CALL_CANCELED \"\""),
        "{err}"
    );
}

#[test]
fn check_passes_every_committed_scenario() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../scenarios");
    let mut files: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "cas"))
        .map(|p| p.display().to_string())
        .collect();
    files.sort();
    let mut args = vec!["check"];
    args.extend(files.iter().map(String::as_str));
    let out = comasync(&args);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).ends_with(&format!("{} passed, 0 failed\n", files.len())),
        "{}",
        stdout(&out)
    );
}

#[test]
fn check_prints_the_race_s_second_outcome_with_a_schedule() {
    let file = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../scenarios/races/cancel_window_or_server.cas"
    );
    let out = comasync(&["check", file]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    let text = stdout(&out);
    // The join's written result, then the other one with the schedule where the window ends
    // before the server completes.
    assert!(
        text.contains("t1: join  -> RPC_E_CALL_COMPLETE (written order)\n      also: S_OK\n        schedule: 8 client, 9 client, 10 client, 11 client, 12 t1, 12 t1 (window ends)\n"),
        "{text}"
    );
    assert!(text.contains("also: RPC_E_CALL_CANCELED"), "{text}");
}

#[test]
fn check_fails_with_a_counterexample_when_an_order_breaks_an_expectation() {
    let path = script(
        "check_narrow.cas",
        "server = SimpleStream \"hello, world\"\n\
         client: factory = QueryInterface server ICallFactory -> S_OK\n\
         client: call = CreateCall factory AsyncISimpleStream -> S_OK\n\
         client: Begin_Read call 5 -> S_OK\n\
         client: Wait call 0 -> RPC_S_CALLPENDING never S_OK\n\
         server: Complete call -> S_OK \"hello\"\n",
    );
    let out = comasync(&["check", "--max-states", "1000", &path]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.contains("VIOLATION: line 5: Wait call 0: returns S_OK"),
        "{text}"
    );
    assert!(
        text.contains("schedule: 1 client, 2 client, 3 client, 4 client, 6 server, 5 client"),
        "{text}"
    );
    assert!(text.ends_with("0 passed, 1 failed\n"), "{text}");
}
