//! The checker on small scripts: races found with their schedules, invariants, deadlocks,
//! alternatives and properties, the planted bug, and every committed scenario.

use super::*;
use crate::model::fault;

const HEAD: &str = "\
server = SimpleStream \"hello, world\"
client: factory = QueryInterface server ICallFactory -> S_OK
client: call = CreateCall factory AsyncISimpleStream -> S_OK
client: Begin_Read call 5 -> S_OK
";

fn check(body: &str) -> Report {
    check_source("t.cas", &format!("{HEAD}{body}"), &Bounds::default()).expect("parses")
}

fn results(r: &Report, line: usize) -> Vec<String> {
    let mut v: Vec<String> = r
        .step(line)
        .expect("step")
        .outcomes
        .iter()
        .map(|o| o.result.to_string())
        .collect();
    v.sort();
    v
}

#[test]
fn a_cancel_window_races_the_server() {
    // Line 5: t1's Cancel waits up to 5 s; the server may complete first (RPC_E_CALL_COMPLETE)
    // or the window may end first (S_OK).
    let r = check(
        "t1: start Cancel call 5\n\
         server: Complete call -> S_OK \"hello\"\n\
         t1: join -> RPC_E_CALL_COMPLETE | S_OK\n\
         client: Finish_Read call -> S_OK \"hello\" | RPC_E_CALL_CANCELED\n",
    );
    assert!(r.passed(), "{r}");
    assert_eq!(results(&r, 7), ["RPC_E_CALL_COMPLETE", "S_OK"]);
    assert_eq!(
        results(&r, 8),
        ["RPC_E_CALL_CANCELED", "S_OK \"hello\" (delivered)"]
            .map(|s| s.replace(" (delivered)", ""))
    );
    let late = r.step(6).unwrap();
    assert!(late
        .outcomes
        .iter()
        .any(|o| o.result.note == Some("dropped: late") || o.result.note == Some("dropped")));
    // The second outcome comes with a schedule in which the window ends before the server.
    let s_ok = r
        .step(7)
        .unwrap()
        .outcomes
        .iter()
        .find(|o| o.result.to_string() == "S_OK")
        .unwrap();
    assert!(s_ok
        .schedule
        .iter()
        .any(|t| matches!(t.choice, Choice::Expire(_))));
    assert!(r.states > 5 && r.schedules >= 2.0, "{r}");
    // The orders without a window's end ran on the real objects and agreed.
    assert!(r.implementation.replayed >= 1, "{r}");
    assert!(r.implementation.skipped >= 1, "{r}");
    assert!(r.implementation.divergences.is_empty(), "{r}");
}

#[test]
fn a_result_outside_the_alternatives_is_a_violation_with_its_schedule() {
    let r = check(
        "t1: start Cancel call 5\n\
         server: Complete call -> S_OK \"hello\"\n\
         t1: join -> RPC_E_CALL_COMPLETE | RPC_E_CALL_CANCELED\n",
    );
    assert!(!r.passed());
    let v = &r.violations[0];
    assert!(v.message.contains("returns S_OK"), "{}", v.message);
    assert!(v
        .schedule
        .iter()
        .any(|t| matches!(t.choice, Choice::Expire(_))));
}

#[test]
fn properties_hold_or_fail_over_every_order() {
    let ok = check(
        "client: Wait call 0 -> RPC_S_CALLPENDING sometimes S_OK never E_FAIL\n\
         server: Complete call -> S_OK \"hello\"\n\
         client: Finish_Read call -> S_OK \"hello\" always S_OK\n",
    );
    assert!(ok.passed(), "{ok}");
    let bad = check(
        "client: Wait call 0 -> RPC_S_CALLPENDING never S_OK\n\
         server: Complete call -> S_OK \"hello\"\n\
         client: Finish_Read call -> S_OK \"hello\" sometimes RPC_E_CALL_CANCELED\n",
    );
    let msgs: Vec<&str> = bad.violations.iter().map(|v| v.message.as_str()).collect();
    assert_eq!(msgs.len(), 2, "{bad}");
    assert!(msgs[0].contains("never S_OK"), "{msgs:?}");
    assert!(
        msgs[1].contains("no order returns RPC_E_CALL_CANCELED"),
        "{msgs:?}"
    );
}

#[test]
fn a_wait_that_never_wakes_is_a_deadlock() {
    let r = check_source(
        "t.cas",
        "e = ManualResetEvent\n\
         t1: start Wait e INFINITE\n\
         t1: join -> S_OK\n",
        &Bounds::default(),
    )
    .unwrap();
    // The written order itself deadlocks: a failure whatever the bounds say.
    assert!(!r.passed());
    assert!(
        r.hazards
            .iter()
            .any(|v| v.message.starts_with("deadlock: t1 waits in line 2")),
        "{r}"
    );
    assert!(r.violations[0].message.contains("written order deadlocks"));
}

#[test]
fn the_written_order_must_give_the_first_result() {
    let r = check("client: Wait call 0 -> S_OK\n");
    assert!(r.violations[0]
        .message
        .contains("in the written order the model returns RPC_S_CALLPENDING"));
}

#[test]
fn too_many_releases_and_counts() {
    let r = check(
        "client: Release factory -> 1\n\
         client: Release call -> 0\n\
         client: Release call -> 0\n",
    );
    assert!(
        r.violations
            .iter()
            .any(|v| v.message.contains("no references left")),
        "{r}"
    );
}

#[test]
fn bounds_stop_the_search_and_say_so() {
    let tiny = Bounds {
        max_steps: 2,
        max_states: 1_000,
        ..Bounds::default()
    };
    let r = check_source(
        "t.cas",
        &format!("{HEAD}server: Complete call -> S_OK\nclient: Finish_Read call -> S_OK\n"),
        &tiny,
    )
    .unwrap();
    assert!(r.bounded);
    assert!(r.to_string().contains("stopped at a bound"));
}

#[test]
fn the_planted_bug_is_found_with_a_counterexample() {
    // Two threads finish the same call. With the real model one gets the result and the
    // other RPC_E_CALL_COMPLETE; with the planted bug (Finish_ keeps the result) both get it.
    let body = "server: Complete call -> S_OK \"hello\"\n\
                t1: start Finish_Read call\n\
                client: Finish_Read call -> RPC_E_CALL_COMPLETE | S_OK \"hello\"\n\
                t1: join -> S_OK \"hello\" | RPC_E_CALL_COMPLETE\n";
    let good = check(body);
    assert!(good.passed(), "{good}");
    fault::FINISH_KEEPS_RESULT.with(|f| f.set(true));
    let bad = check(body);
    fault::FINISH_KEEPS_RESULT.with(|f| f.set(false));
    let v = bad
        .violations
        .iter()
        .find(|v| v.message.contains("delivered twice"))
        .unwrap_or_else(|| panic!("{bad}"));
    // The counterexample: both Finish_ steps are in it.
    let lines: Vec<usize> = v.schedule.iter().map(|t| t.line).collect();
    assert!(lines.contains(&6) && lines.contains(&7), "{lines:?}");
    // And the real objects, driven along the same schedules, disagree with the faulty model.
    assert!(!bad.implementation.divergences.is_empty(), "{bad}");
    assert!(good.implementation.replayed >= 2 && good.implementation.divergences.is_empty());
}

#[test]
fn every_committed_scenario_passes() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/scenarios");
    let mut n = 0;
    let mut failed = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "cas") {
            continue;
        }
        let src = std::fs::read_to_string(&path).unwrap();
        let r = check_source(&path.display().to_string(), &src, &Bounds::default()).unwrap();
        if !r.passed() || r.bounded {
            failed.push(r.to_string());
        }
        n += 1;
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
    assert!(n >= 20);
}

#[test]
fn a_deadlock_in_another_order_is_reported_and_fails_only_when_asked() {
    // The helper's Begin_ may come after the client's Finish_: then the server's second
    // Complete waits for a call that never comes.
    let body = "server: Complete call -> S_OK \"hello\"\n\
                client: Finish_Read call -> S_OK \"hello\"\n\
                helper: Begin_Read call 2 -> S_OK | RPC_S_CALLPENDING\n\
                server: Complete call -> S_OK \", \"\n";
    let r = check(body);
    assert!(r.passed(), "{r}");
    assert!(
        r.hazards[0].message.contains("server waits in line 8"),
        "{r}"
    );
    let strict = Bounds {
        hazards_fail: true,
        ..Bounds::default()
    };
    let r = check_source("t.cas", &format!("{HEAD}{body}"), &strict).unwrap();
    assert!(!r.passed());
}

#[test]
fn too_many_schedules_are_sampled_with_the_seed_said() {
    let r = check_source(
        "t.cas",
        &format!("{HEAD}client: Wait call 0 -> RPC_S_CALLPENDING\nserver: Complete call -> S_OK\nclient: Wait call 0 -> S_OK | RPC_S_CALLPENDING\nclient: TestCancel call -> RPC_S_CALLPENDING\n"),
        &Bounds {
            replay: 1,
            seed: 7,
            ..Bounds::default()
        },
    )
    .unwrap();
    assert_eq!(r.implementation.replayed, 1);
    assert_eq!(r.implementation.seed, Some(7));
    assert!(r.implementation.candidates > 1);
    assert!(r.to_string().contains("(a sample, seed 7, of "), "{r}");
}

#[test]
fn a_script_with_apartment_statements_is_explored_up_to_the_first_and_says_so() {
    let script = "server = SimpleStreamSyncOnly \"hi\"\n\
                  sta: CoInitializeEx STA -> S_OK\n\
                  sta: s = Marshal server ISimpleStream -> S_OK\n\
                  client: CoInitializeEx MTA -> S_OK\n\
                  client: p = Unmarshal s -> S_OK\n\
                  client: start Call p Read 2 -> blocks\n\
                  sta: Pump -> 1\n\
                  client: join -> S_OK \"hi\"\n";
    let r = check_source("apt.cas", script, &Bounds::default()).expect("parses");
    assert!(r.passed(), "{r}");
    let why = r.not_explored.as_deref().expect("says why");
    assert!(
        why.contains("explored up to line 2") && why.contains("CoInitializeEx STA"),
        "{why}"
    );
    assert!(
        r.step(7).is_none(),
        "nothing from the apartment statement on is reported"
    );
    assert!(r.to_string().contains("explored up to line 2: "), "{r}");

    // The written order's run still fails the check when the script is wrong.
    let wrong = script.replace("sta: Pump -> 1", "sta: Pump -> 2");
    let r = check_source("apt.cas", &wrong, &Bounds::default()).expect("parses");
    assert!(!r.passed(), "{r}");
}

#[test]
fn the_statements_before_an_apartment_statement_are_explored() {
    let script = format!(
        "{HEAD}client: Wait call 0 -> RPC_S_CALLPENDING | S_OK\n\
         server: Complete call -> S_OK \"hello\"\n\
         client: Finish_Read call -> S_OK \"hello\"\n\
         sta: CoInitializeEx STA -> S_OK\n"
    );
    let r = check_source("t.cas", &script, &Bounds::default()).expect("parses");
    assert!(r.passed(), "{r}");
    assert_eq!(
        results(&r, 5).len(),
        2,
        "the race before it was explored: {r}"
    );
    assert!(r
        .not_explored
        .as_deref()
        .unwrap()
        .contains("explored up to line 8"));
}
