//! A test per kind of divergence (a wrong answer fed to the check is reported at its line with
//! both answers), and every committed scenario through the check.

use super::replay::COMPARED;
use super::*;
use crate::hresult::{
    CO_E_NOTINITIALIZED, E_FAIL, E_INVALIDARG, RPC_E_CALL_CANCELED, RPC_E_CALL_COMPLETE,
    RPC_E_CHANGED_MODE, RPC_E_DISCONNECTED, RPC_E_NO_SYNC, RPC_E_TIMEOUT, RPC_E_WRONG_THREAD,
    RPC_S_CALLPENDING, S_FALSE, S_OK,
};
use crate::script::{run_source, RunOptions};

/// A test step's result: `Ok((hr, outs, dropped))`, or `Err(blocked)` for a `start`.
type Res = Result<(HRESULT, Vec<Value>, bool), bool>;

/// What a step returned: its `HRESULT` and out-parameters.
fn r(hr: HRESULT, outs: &[Value]) -> Res {
    Ok((hr, outs.to_vec(), false))
}

/// A server completion the implementation dropped.
fn dropped(hr: HRESULT, outs: &[Value]) -> Res {
    Ok((hr, outs.to_vec(), true))
}

fn text(s: &str) -> Value {
    Value::Str(s.as_bytes().to_vec())
}

/// Parses `script` and feeds the check each statement with the result given for it in
/// `results` (in order; `Err(blocked)` for a `start`). Creations and commentary take no
/// result. The first divergence, if any.
fn replay(script: &str, results: &[Res]) -> Result<(), Divergence> {
    let steps =
        parse::parse(script, &crate::script::Registry::new()).expect("the test script parses");
    let mut check = ModelCheck::new();
    let mut results = results.iter();
    for step in &steps {
        let creates = matches!(&step.kind, StepKind::Do { op, .. } if op.creates()
            && !matches!(op, parse::Op::QueryInterface { .. } | parse::Op::CreateCall { .. }
                | parse::Op::Marshal { .. } | parse::Op::Unmarshal { .. }
                | parse::Op::Security(_)));
        let empty: Vec<Value> = Vec::new();
        let (seen, count);
        if creates || matches!(step.kind, StepKind::Say(_)) {
            seen = Seen::Returned {
                hr: None,
                count: None,
                outs: &empty,
                dropped: false,
            };
        } else {
            match results.next().expect("a result for every statement") {
                Err(blocked) => seen = Seen::Started { blocked: *blocked },
                Ok((hr, outs, d)) => {
                    count = matches!(
                        &step.kind,
                        StepKind::Do {
                            op: parse::Op::Release { .. }
                                | parse::Op::OuterCount { .. }
                                | parse::Op::Pump,
                            ..
                        }
                    )
                    .then_some(hr.as_u32());
                    seen = Seen::Returned {
                        hr: Some(*hr),
                        count,
                        outs,
                        dropped: *d,
                    };
                }
            }
        }
        let observed = Observed {
            line: step.line,
            actor: &step.actor,
            text: &step.text,
            seen,
        };
        check.step(action(&step.kind), &observed)?;
    }
    assert!(results.next().is_none(), "more results than statements");
    Ok(())
}

const CALL: &str = "server = SimpleStream \"hello, world\"\n\
                    f = QueryInterface server ICallFactory\n\
                    call = CreateCall f AsyncISimpleStream\n";

fn failure(script: &str, results: &[Res]) -> String {
    replay(script, results)
        .expect_err("the check must report the divergence")
        .to_string()
}

/// `script` replays with the results `ok`; with `ok[at]` replaced by `wrong`, the check
/// reports a divergence at line `line` that mentions `says`.
fn diverges_at(script: &str, ok: &[Res], at: usize, wrong: Res, line: usize, says: &str) {
    assert_eq!(replay(script, ok), Ok(()));
    let mut results = ok.to_vec();
    results[at] = wrong;
    let msg = failure(script, &results);
    assert!(
        msg.starts_with(&format!("line {line}:")) && msg.contains(says),
        "{msg}"
    );
}

/// A proxy's call object made in the MTA to an STA's hand-driven server.
const PROXY: &str = "server = SimpleStream \"hi\"\n\
                     sta: CoInitializeEx STA\n\
                     sta: s = Marshal server ISimpleStream\n\
                     client: CoInitializeEx MTA\n\
                     client: p = Unmarshal s\n\
                     client: f = QueryInterface p ICallFactory\n\
                     client: c = CreateCall f AsyncISimpleStream\n";

/// The results of `PROXY`'s statements, all S_OK.
fn proxy_ok() -> Vec<Res> {
    vec![r(S_OK, &[]); 6]
}

/// `n` as `Pump` prints it (a count).
fn count(n: u32) -> Res {
    r(HRESULT::from_u32(n), &[])
}

#[test]
fn co_initialize_ex_s_results_are_the_model_s() {
    let script = "a: CoInitializeEx STA\na: CoInitializeEx STA\na: CoInitializeEx MTA\n\
                  a: CoUninitialize\na: CoUninitialize\na: CoInitializeEx MTA\n";
    let ok = [
        r(S_OK, &[]),
        r(S_FALSE, &[]),
        r(RPC_E_CHANGED_MODE, &[]),
        r(S_OK, &[]),
        r(S_OK, &[]),
        r(S_OK, &[]),
    ];
    diverges_at(script, &ok, 2, r(S_FALSE, &[]), 3, "RPC_E_CHANGED_MODE");
}

#[test]
fn marshaling_without_an_apartment_must_be_co_e_notinitialized() {
    let script = "server = SimpleStream \"hi\"\nnobody: s = Marshal server ISimpleStream\n";
    assert_eq!(replay(script, &[r(CO_E_NOTINITIALIZED, &[])]), Ok(()));
    let msg = failure(script, &[r(S_OK, &[])]);
    assert!(msg.contains("CO_E_NOTINITIALIZED"), "{msg}");
}

#[test]
fn a_proxy_used_from_another_apartment_must_be_rpc_e_wrong_thread() {
    let script = format!("{PROXY}sta: Begin_Read c 1\nclient: Begin_Read c 1\n");
    let mut ok = proxy_ok();
    ok.extend([r(RPC_E_WRONG_THREAD, &[]), r(S_OK, &[])]);
    assert_eq!(replay(&script, &ok), Ok(()));
    let mut wrong = proxy_ok();
    wrong.extend([r(S_OK, &[]), r(S_OK, &[])]);
    let msg = failure(&script, &wrong);
    assert!(
        msg.starts_with("line 8:") && msg.contains("the model says RPC_E_WRONG_THREAD"),
        "{msg}"
    );
}

#[test]
fn a_pump_dispatches_what_was_queued_for_its_sta() {
    // The call, then the server's Signal carried back from another thread.
    let script = format!(
        "{PROXY}client: Begin_Read c 1\nsta: Pump\nserver: Complete c\nsta: Pump\nsta: Pump\n"
    );
    let mut ok = proxy_ok();
    ok.extend([
        r(S_OK, &[]),
        count(1),
        r(S_OK, &[text("h")]),
        count(1),
        count(0),
    ]);
    assert_eq!(replay(&script, &ok), Ok(()));
    let mut wrong = proxy_ok();
    wrong.extend([r(S_OK, &[]), count(0)]);
    let msg = failure(
        &format!("{PROXY}client: Begin_Read c 1\nsta: Pump\n"),
        &wrong,
    );
    assert!(
        msg.contains("the implementation dispatched 0, the model says 1"),
        "{msg}"
    );
}

#[test]
fn a_wait_on_a_signaled_handle_dispatches_nothing_and_a_blocking_one_everything() {
    let script = format!(
        "{PROXY}e = ManualResetEvent\nSignal e\nclient: Begin_Read c 1\nsta: Wait e INFINITE\n\
         sta: Pump\nReset e\nclient: c2 = CreateCall f AsyncISimpleStream\nclient: Begin_Read c2 1\n\
         sta: start Wait e INFINITE\nSignal e\nsta: join\nsta: Pump\n"
    );
    let mut ok = proxy_ok();
    ok.extend([
        r(S_OK, &[]), // Signal
        r(S_OK, &[]), // Begin_
        r(S_OK, &[]), // Wait: signaled, nothing dispatched
        count(1),     // Pump
        r(S_OK, &[]), // Reset
        r(S_OK, &[]), // CreateCall
        r(S_OK, &[]), // Begin_: queued
        Err(true),    // start Wait: blocks, dispatches
        r(S_OK, &[]), // Signal
        r(S_OK, &[]), // join
        count(0),     // Pump: nothing left
    ]);
    assert_eq!(replay(&script, &ok), Ok(()));
}

#[test]
fn an_ended_sta_disconnects_its_proxies() {
    let script = format!("{PROXY}sta: CoUninitialize\nclient: Begin_Read c 1\n");
    let mut ok = proxy_ok();
    ok.extend([r(S_OK, &[]), r(RPC_E_DISCONNECTED, &[])]);
    assert_eq!(replay(&script, &ok), Ok(()));
    let mut wrong = proxy_ok();
    wrong.extend([r(S_OK, &[]), r(S_OK, &[])]);
    assert!(failure(&script, &wrong).contains("RPC_E_DISCONNECTED"));
}

#[test]
fn agreeing_results_pass() {
    let script = format!(
        "{CALL}Begin_Read call 5\nWait call 0\nserver: Complete call\nWait call 0\n\
         Finish_Read call\nFinish_Read call\nRelease call\n"
    );
    let results = [
        r(S_OK, &[]),
        r(S_OK, &[]),
        r(S_OK, &[]),
        r(RPC_S_CALLPENDING, &[]),
        r(S_OK, &[text("hello")]),
        r(S_OK, &[]),
        r(S_OK, &[text("hello")]),
        r(RPC_E_CALL_COMPLETE, &[text("")]),
        r(HRESULT(0), &[]),
    ];
    assert_eq!(replay(&script, &results), Ok(()));
}

#[test]
fn an_outer_s_counts_are_the_aggregated_call_object_s_model() {
    let script = "server = SimpleStream \"abc\"\no = Outer\n\
                  c = CreateCall server AsyncISimpleStream IUnknown outer o\n\
                  Begin_Read c 1\nResets o\nserver: Complete c\nSignals o\n";
    let counted = |n: u32| r(HRESULT(n as i32), &[]);
    let mut results = vec![
        r(S_OK, &[]),
        r(S_OK, &[]),
        counted(1),
        r(S_OK, &[text("a")]),
        counted(1),
    ];
    assert_eq!(replay(script, &results), Ok(()));
    results[4] = counted(0);
    assert_eq!(
        failure(script, &results),
        "line 7: Signals o: the implementation counted 0, the model says 1"
    );
    results[2] = counted(2);
    assert_eq!(
        failure(script, &results),
        "line 5: Resets o: the implementation counted 2, the model says 1"
    );
}

#[test]
fn null_out_pointers_and_flags_are_compared() {
    let script = "e = ManualResetEvent\nk = SynchronizeContainer\nAddSynchronize k NULL\n\
                  WaitMultiple k COWAIT_WAITALL 0\nCoWaitForMultipleHandles 0 0 e NULL\n\
                  Wait e 0x100 0\n";
    let ok = [
        r(E_INVALIDARG, &[]),
        r(E_INVALIDARG, &[]),
        r(E_INVALIDARG, &[]),
        r(E_INVALIDARG, &[]),
    ];
    assert_eq!(replay(script, &ok), Ok(()));
    let mut wrong = ok.to_vec();
    wrong[1] = r(RPC_E_NO_SYNC, &[]);
    assert_eq!(
        failure(script, &wrong),
        "line 4: WaitMultiple k COWAIT_WAITALL 0: the implementation returned RPC_E_NO_SYNC, the model says E_INVALIDARG"
    );
    let mut wrong = ok.to_vec();
    wrong[2] = r(E_INVALIDARG, &[Value::Num(0)]);
    assert_eq!(
        failure(script, &wrong),
        "line 5: CoWaitForMultipleHandles 0 0 e NULL: the implementation returned E_INVALIDARG 0, the model says E_INVALIDARG"
    );
    let mut wrong = ok.to_vec();
    wrong[3] = r(RPC_S_CALLPENDING, &[]);
    assert!(failure(script, &wrong).starts_with("line 6: Wait e 0x100 0:"));
}

#[test]
fn a_wrong_hresult_names_both_answers_at_its_line() {
    let script = format!("{CALL}Begin_Read call 5\nWait call 0\n");
    let results = [r(S_OK, &[]), r(S_OK, &[]), r(S_OK, &[]), r(S_OK, &[])];
    assert_eq!(
        failure(&script, &results),
        "line 5: Wait call 0: the implementation returned S_OK, the model says RPC_S_CALLPENDING"
    );
}

#[test]
fn wrong_out_parameters_are_reported() {
    let script = format!("{CALL}Begin_Read call 5\nserver: Complete call\nFinish_Read call\n");
    let results = [
        r(S_OK, &[]),
        r(S_OK, &[]),
        r(S_OK, &[]),
        r(S_OK, &[text("hello")]),
        r(S_OK, &[text("world")]),
    ];
    assert_eq!(
        failure(&script, &results),
        "line 6: Finish_Read call: the implementation returned S_OK \"world\", the model says S_OK \"hello\""
    );
}

#[test]
fn a_strict_server_s_finish_does_not_block() {
    let script = "server = SimpleStream \"abc\" strict\nf = QueryInterface server ICallFactory\n\
                  call = CreateCall f AsyncISimpleStream\nBegin_Read call 1\nFinish_Read call\n";
    let results = [
        r(S_OK, &[]),
        r(S_OK, &[]),
        r(S_OK, &[]),
        r(E_FAIL, &[text("")]),
    ];
    assert_eq!(
        failure(script, &results),
        "line 5: Finish_Read call: the implementation returned E_FAIL \"\", the model says RPC_S_CALLPENDING"
    );
}

#[test]
fn a_step_the_model_says_blocks_must_not_return() {
    let script = "e = StdEvent\nWait e INFINITE\n";
    assert_eq!(
        failure(script, &[r(S_OK, &[])]),
        "line 2: Wait e INFINITE: the implementation returned S_OK, the model says it blocks"
    );
}

#[test]
fn whether_a_started_operation_blocks_is_compared() {
    let script = "e = ManualResetEvent\nt1: start Wait e INFINITE\nSignal e\nt1: join\n";
    assert_eq!(
        failure(script, &[Err(false)]),
        "line 2: Wait e INFINITE: the implementation returned at once, the model says it blocks"
    );
    let script = "e = ManualResetEvent\nSignal e\nt1: start Wait e INFINITE\nt1: join\n";
    assert_eq!(
        failure(script, &[r(S_OK, &[]), Err(true)]),
        "line 3: Wait e INFINITE: the implementation blocks, the model says it returns S_OK at once"
    );
}

#[test]
fn a_started_finite_wait_may_still_be_running_its_timeout() {
    let script = "e = StdEvent\nt1: start Wait e 50\nt1: join\n";
    let results = [Err(true), r(RPC_S_CALLPENDING, &[])];
    assert_eq!(replay(script, &results), Ok(()));
    let results = [Err(false), r(S_OK, &[])];
    assert_eq!(
        failure(script, &results),
        "line 3: join (Wait e 50): the implementation returned S_OK, the model says RPC_S_CALLPENDING"
    );
}

#[test]
fn a_join_is_compared_with_the_answer_the_model_gave_when_it_returned() {
    // An INFINITE Cancel returns when the server completes: RPC_E_CALL_COMPLETE.
    let script = format!(
        "{CALL}Begin_Read call 5\nt1: start Cancel call INFINITE\n\
         server: Complete call\nt1: join\n"
    );
    let results = [
        r(S_OK, &[]),
        r(S_OK, &[]),
        r(S_OK, &[]),
        Err(true),
        r(S_OK, &[text("hello")]),
        r(S_OK, &[]),
    ];
    assert_eq!(
        failure(&script, &results),
        "line 7: join (Cancel call INFINITE): the implementation returned S_OK, the model says RPC_E_CALL_COMPLETE"
    );
    // A wait the model says still blocks at its join.
    let script = "e = StdEvent\nt1: start Wait e INFINITE\nt1: join\n";
    assert_eq!(
        failure(script, &[Err(true), r(S_OK, &[])]),
        "line 3: join (Wait e INFINITE): the implementation returned S_OK, the model says it blocks"
    );
}

#[test]
fn an_auto_reset_event_wakes_the_first_started_wait_only() {
    let script = "e = StdEvent\nt1: start Wait e INFINITE\nt2: start Wait e INFINITE\n\
                  Signal e\nt1: join\nt2: join\n";
    let results = [
        Err(true),
        Err(true),
        r(S_OK, &[]),
        r(S_OK, &[]),
        r(S_OK, &[]),
    ];
    assert_eq!(
        failure(script, &results),
        "line 6: join (Wait e INFINITE): the implementation returned S_OK, the model says it blocks"
    );
}

#[test]
fn a_late_completion_must_be_dropped_and_a_current_one_delivered() {
    let script = format!(
        "{CALL}Begin_Read call 5\nCancel call 0\nFinish_Read call\nBegin_Read call 1\n\
         server: Complete call\nserver: Complete call\n"
    );
    let ok = [
        r(S_OK, &[]),
        r(S_OK, &[]),
        r(S_OK, &[]),
        r(S_OK, &[]),
        r(RPC_E_CALL_CANCELED, &[text("")]),
        r(S_OK, &[]),
    ];
    let mut results = ok.to_vec();
    results.push(r(S_OK, &[text("hello")]));
    assert_eq!(
        failure(&script, &results),
        "line 8: Complete call: the implementation delivered the result, the model says it is dropped"
    );
    let mut results = ok.to_vec();
    results.push(dropped(S_OK, &[text("hello")]));
    results.push(dropped(S_FALSE, &[text(", wor")]));
    assert_eq!(
        failure(&script, &results),
        "line 9: Complete call: the implementation dropped the result, the model says it is delivered"
    );
}

#[test]
fn co_wait_and_wait_multiple_name_the_object() {
    let script = "a = StdEvent\nb = StdEvent\nSignal b\nCoWaitForMultipleHandles 0 0 a b\n";
    assert_eq!(
        failure(script, &[r(S_OK, &[]), r(S_OK, &[Value::Num(0)])]),
        "line 4: CoWaitForMultipleHandles 0 0 a b: the implementation returned S_OK 0, the model says S_OK 1"
    );
    let script = "k = SynchronizeContainer\na = StdEvent\nb = ManualResetEvent\n\
                  AddSynchronize k a\nAddSynchronize k b\nWaitMultiple k 0\nSignal b\n\
                  WaitMultiple k 0\n";
    let results = [
        r(S_OK, &[]),
        r(S_OK, &[]),
        r(RPC_E_TIMEOUT, &[]),
        r(S_OK, &[]),
        r(S_OK, &[Value::Name("a".into())]),
    ];
    assert_eq!(
        failure(script, &results),
        "line 8: WaitMultiple k 0: the implementation returned S_OK a, the model says S_OK b"
    );
}

#[test]
fn a_signal_on_a_call_object_stops_tracking_it() {
    let script = format!("{CALL}Signal call\nWait call 0\n");
    assert_eq!(
        replay(
            &script,
            &[r(S_OK, &[]), r(S_OK, &[]), r(S_OK, &[]), r(S_OK, &[])]
        ),
        Ok(())
    );
}

#[test]
fn scripts_with_timeouts_and_windows_pass_the_check_on_the_real_objects() {
    let script = "e = StdEvent\n\
                  t1: start Wait e 50\n\
                  t1: join -> RPC_S_CALLPENDING\n\
                  server = SimpleStream \"hello, world\"\n\
                  f = QueryInterface server ICallFactory -> S_OK\n\
                  call = CreateCall f AsyncISimpleStream -> S_OK\n\
                  Begin_Read call 5 -> S_OK\n\
                  t2: start Cancel call 1\n\
                  t2: join -> S_OK\n\
                  Finish_Read call -> RPC_E_CALL_CANCELED\n\
                  server: Complete call -> S_OK \"hello\"\n\
                  Begin_Write call \"xy\" -> S_OK\n\
                  t3: start Finish_Write call\n\
                  t4: start CoWaitForMultipleHandles 0 INFINITE e call\n\
                  server: Complete call -> S_OK 2\n\
                  t3: join -> S_OK 2\n\
                  t4: join -> S_OK 1\n";
    let before = COMPARED.with(|c| c.get());
    let r = run_source(
        "timing.cas",
        script,
        &RunOptions::default(),
        &mut std::io::sink(),
    );
    assert!(r.is_ok(), "{}", r.unwrap_err());
    assert_eq!(COMPARED.with(|c| c.get()) - before, 9);
}

#[test]
fn every_committed_scenario_passes_the_check() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "cas"))
        .collect();
    files.sort();
    assert!(files.len() >= 15, "found {} scenarios", files.len());
    for path in files {
        let source = std::fs::read_to_string(&path).unwrap();
        let before = COMPARED.with(|c| c.get());
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if let Err(e) = run_source(&name, &source, &RunOptions::default(), &mut std::io::sink()) {
            panic!("{e}");
        }
        let compared = COMPARED.with(|c| c.get()) - before;
        let modelled = ["CreateCall", "Event", "SynchronizeContainer"];
        if modelled.iter().any(|m| source.contains(m)) {
            assert!(compared > 0, "{name}: the model compared no step");
        }
    }
}

/// A `Who` server marshaled by `svc` from the MTA, unmarshaled by `alice` in an STA.
const WHO: &str = "who = Who\n\
                   server: CoInitializeEx MTA\n\
                   server: SetIdentity svc\n\
                   server: s = Marshal who IWho\n\
                   client: CoInitializeEx STA\n\
                   client: SetIdentity alice\n\
                   client: p = Unmarshal s\n";

/// The results of `WHO`'s statements, all S_OK.
fn who_ok() -> Vec<Res> {
    vec![r(S_OK, &[]); 6]
}

#[test]
fn who_am_i_must_be_the_thread_s_identity() {
    let script = "a: WhoAmI\na: SetIdentity alice\na: WhoAmI\n";
    let ok = [
        r(S_OK, &[text("SYSTEM")]),
        r(S_OK, &[]),
        r(S_OK, &[text("alice")]),
    ];
    diverges_at(script, &ok, 2, r(S_OK, &[text("SYSTEM")]), 3, "\"alice\"");
}

#[test]
fn a_proxy_s_blanket_is_compared_after_set_blanket_and_copy_proxy() {
    let script = format!(
        "{WHO}client: QueryBlanket p\nclient: SetBlanket p PKT IMPERSONATE\n\
         client: c = CopyProxy p\nclient: SetBlanket c NONE ANONYMOUS\nclient: QueryBlanket p\n"
    );
    let name = |n: &str| Value::Name(n.into());
    let mut ok = who_ok();
    ok.extend([
        r(S_OK, &[name("CONNECT"), name("IDENTIFY")]),
        r(S_OK, &[]),
        r(S_OK, &[]),
        r(S_OK, &[]),
        r(S_OK, &[name("PKT"), name("IMPERSONATE")]),
    ]);
    diverges_at(
        &script,
        &ok,
        10,
        r(S_OK, &[name("NONE"), name("ANONYMOUS")]),
        12,
        "PKT IMPERSONATE",
    );
}

#[test]
fn a_refused_call_must_be_e_accessdenied() {
    let script = "who = Who\n\
                  server: CoInitializeEx MTA\n\
                  server: AccessPolicy who alice\n\
                  server: s = Marshal who IWho\n\
                  client: CoInitializeEx STA\n\
                  client: SetIdentity eve\n\
                  client: p = Unmarshal s\n\
                  client: Call p Run \"whoami\"\n";
    let mut ok = who_ok();
    ok.push(r(crate::hresult::E_ACCESSDENIED, &[]));
    diverges_at(
        script,
        &ok,
        6,
        r(S_OK, &[text("SYSTEM")]),
        8,
        "E_ACCESSDENIED",
    );
}

#[test]
fn what_who_s_server_code_observes_is_the_model_s() {
    let script = format!(
        "{WHO}client: Call p Run \"whoami impersonate whoami\"\n\
         client: SetBlanket p CONNECT IMPERSONATE\n\
         client: Call p Run \"impersonate whoami\"\n"
    );
    let mut ok = who_ok();
    ok.extend([
        r(S_OK, &[text("svc S_OK svc")]),
        r(S_OK, &[]),
        r(S_OK, &[text("S_OK alice")]),
    ]);
    diverges_at(
        &script,
        &ok,
        6,
        r(S_OK, &[text("svc S_OK alice")]),
        8,
        "svc S_OK svc",
    );
}

#[test]
fn the_call_context_outside_a_call_must_be_rpc_e_call_complete() {
    let script = "a: CoGetCallContext\na: CoImpersonateClient\na: CoRevertToSelf\n";
    let ok = vec![r(RPC_E_CALL_COMPLETE, &[]); 3];
    assert_eq!(replay(script, &ok), Ok(()));
    let msg = failure(
        script,
        &[r(RPC_E_CALL_COMPLETE, &[]), r(S_OK, &[]), r(S_OK, &[])],
    );
    assert!(msg.starts_with("line 2:"), "{msg}");
}

#[test]
fn what_who_async_s_begin_and_finish_observe_is_the_model_s() {
    let script = "who = WhoAsync\n\
                  sta: CoInitializeEx STA\n\
                  sta: SetIdentity svc\n\
                  sta: s = Marshal who IWho\n\
                  client: CoInitializeEx MTA\n\
                  client: SetIdentity alice\n\
                  client: p = Unmarshal s\n\
                  client: SetBlanket p CONNECT IMPERSONATE\n\
                  client: call = CreateCall p AsyncIWho\n\
                  client: Begin_Run call \"impersonate whoami signal impersonate | impersonate\"\n\
                  sta: Pump\n\
                  client: Finish_Run call\n";
    let mut ok = vec![r(S_OK, &[]); 9];
    ok.push(count(1));
    ok.push(r(S_OK, &[text("S_OK alice signal | RPC_E_CALL_COMPLETE")]));
    diverges_at(
        script,
        &ok,
        10,
        r(S_OK, &[text("S_OK alice signal | S_OK")]),
        12,
        "RPC_E_CALL_COMPLETE",
    );
}

#[test]
fn a_started_call_to_who_is_compared_at_its_join() {
    let script = "who = WhoAsync\n\
                  sta: CoInitializeEx STA\n\
                  sta: SetIdentity svc\n\
                  sta: s = Marshal who IWho\n\
                  client: CoInitializeEx MTA\n\
                  client: SetIdentity alice\n\
                  client: p = Unmarshal s\n\
                  client: start Call p Run \"whoami client\"\n\
                  sta: Pump\n\
                  client: join\n";
    let mut ok = vec![r(S_OK, &[]); 6];
    ok.extend([Err(true), count(1), r(S_OK, &[text("svc alice |")])]);
    diverges_at(
        script,
        &ok,
        8,
        r(S_OK, &[text("alice alice |")]),
        10,
        "svc alice |",
    );
}
