//! The guided tour (`scenarios/tour.cas`, run by `comasync tour`) runs to completion and shows
//! every step of the seed's procedure and its error paths, in order.

use comasync::hresult::*;

fn tour_text() -> String {
    let mut out = Vec::new();
    comasync::tour::run(&mut out).unwrap();
    String::from_utf8(out).unwrap()
}

/// The HRESULTs of the tour's COM calls, in order (count lines are skipped).
fn results(text: &str) -> Vec<HRESULT> {
    text.lines()
        .filter(|l| l.trim_start().starts_with(|c: char| c.is_ascii_digit()))
        .filter_map(|l| {
            let hex = l.split("(0x").nth(1)?.get(..8)?;
            Some(HRESULT::from_u32(u32::from_str_radix(hex, 16).ok()?))
        })
        .collect()
}

#[test]
fn the_tour_shows_each_step_of_the_procedure_and_its_error_paths_in_order() {
    let text = tour_text();
    assert_eq!(
        results(&text),
        vec![
            E_NOINTERFACE,       // QI ICallFactory on an object without async support
            S_OK,                // QI ICallFactory
            S_OK,                // CreateCall
            S_OK,                // Begin_Read
            RPC_S_CALLPENDING,   // a second Begin_ (the docs' RPC_E_CALL_PENDING)
            RPC_S_CALLPENDING,   // Wait(0): not yet
            S_OK,                // the server completes Read
            S_OK,                // Wait(INFINITE)
            S_OK,                // Finish_Read
            RPC_E_CALL_COMPLETE, // Finish_ again
            S_OK,                // Wait after Finish_ (manual reset)
            S_OK,                // reuse: Begin_Read
            S_FALSE,             // the server's Read: fewer bytes left
            S_FALSE,             // Finish_Read passes it through
            S_OK,                // QI ICallFactory for a second call
            S_OK,                // CreateCall
            S_OK,                // Begin_Write, released before Finish_
            S_OK,                // the server completes the abandoned call (dropped)
            S_OK,                // Begin_Read to cancel
            S_OK,                // Cancel(0)
            RPC_E_CALL_CANCELED, // TestCancel
            RPC_E_CALL_CANCELED, // the server's TestCancel through its outer
            RPC_S_CALLPENDING,   // Begin_ before Finish_ after a cancel
            RPC_E_CALL_CANCELED, // Finish_ of the cancelled call
            S_FALSE,             // the cancelled Read completes late (dropped)
            RPC_E_CALL_COMPLETE, // Cancel with no call
            S_OK,                // across apartments: the server's thread enters an STA
            S_OK,                // marshals the object
            S_OK,                // the client enters the MTA
            S_OK,                // unmarshals: a proxy
            S_OK,                // the proxy's ICallFactory
            S_OK,                // CreateCall on the proxy
            S_OK,                // Begin_Read: queued for the STA
            RPC_S_CALLPENDING,   // nothing has run yet
            S_FALSE,             // the server completes Read (pumped by the STA)
            S_FALSE,             // Finish_Read after the STA pumped the Signal back
            RPC_E_WRONG_THREAD,  // the proxy's call object used from the STA
            S_OK,                // security: the client's thread becomes alice
            S_OK,                // QueryBlanket: a new proxy's blanket
            S_OK,                // the STA's thread becomes svc
            S_OK,                // marshals a Who
            S_OK,                // unmarshals it: a proxy
            S_OK,                // Run at IDENTIFY: reads the client, acts as the server
            S_OK,                // SetBlanket IMPERSONATE
            S_OK,                // Run at IMPERSONATE: runs as the client until it reverts
            RPC_E_CALL_COMPLETE, // CoImpersonateClient outside a call
            S_OK,                // an access policy for a new object
            S_OK,                // marshals it
            S_OK,                // unmarshals it
            E_ACCESSDENIED,      // alice is not let in
        ]
    );
    assert!(text.contains("\"hello\""));
    assert!(text.contains("late result dropped"));
    assert!(text.contains("(a proxy)"), "the cross-apartment chapter");
    assert!(
        text.contains("\"S_OK alice S_OK svc\""),
        "the security chapter: server code impersonates its client, then reverts"
    );
    assert!(
        text.lines()
            .filter(|l| l.trim_start().starts_with('>'))
            .count()
            >= 20,
        "commentary"
    );
}

#[test]
fn the_tour_prints_the_same_text_every_run() {
    assert_eq!(tour_text(), tour_text());
}
