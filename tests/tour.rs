//! The guided tour runs to completion and shows every documented result, in order.

use comasync::hresult::*;

fn tour_text() -> String {
    let mut out = Vec::new();
    comasync::tour::run(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn the_tour_shows_each_step_of_the_procedure_and_its_error_paths_in_order() {
    let text = tour_text();
    let results: Vec<HRESULT> = text
        .lines()
        .filter_map(|l| l.trim().strip_prefix("-> "))
        .map(|l| HRESULT::from_name(l.split_whitespace().next().unwrap()).unwrap())
        .collect();
    assert_eq!(
        results,
        vec![
            E_NOINTERFACE,       // QI ICallFactory on an object without async support
            S_OK,                // QI ICallFactory
            S_OK,                // CreateCall
            S_OK,                // Begin_Read
            RPC_S_CALLPENDING,   // second Begin_ (RPC_E_CALL_PENDING)
            RPC_S_CALLPENDING,   // Wait(0)
            S_OK,                // Wait(INFINITE) after the server signals
            S_OK,                // Finish_Read
            RPC_E_CALL_COMPLETE, // Finish_ again
            S_OK,                // Wait after Finish_ (manual reset)
            S_OK,                // reuse: Begin_Read
            S_FALSE,             // Finish_Read with fewer bytes left
            S_OK,                // Begin_Write on a call released before Finish_
            S_OK,                // Begin_Read to cancel
            S_OK,                // Cancel(0)
            RPC_E_CALL_CANCELED, // TestCancel
            RPC_S_CALLPENDING,   // Begin_ before Finish_ after a cancel
            RPC_E_CALL_CANCELED, // Finish_ of the cancelled call
            RPC_E_CALL_COMPLETE, // Cancel with no call
        ]
    );
    assert!(text.contains("data = \"hello\""));
    assert!(text.contains("(0x80010115)"));
}

#[test]
fn the_tour_prints_the_same_text_every_run() {
    assert_eq!(tour_text(), tour_text());
}

#[test]
fn the_tour_subcommand_runs_to_completion() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_comasync"))
        .arg("tour")
        .output()
        .unwrap();
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), tour_text());
}
