//! The scenario language: every script in `scenarios/` passes, failures name their file and
//! line, output is deterministic, and the committed diagrams are what the code draws today.
//!
//! Regenerate the diagrams with `COMASYNC_UPDATE_DIAGRAMS=1 cargo test --test scenarios`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use comasync::script::{diagram_file, run_file, run_files, run_source, RunOptions, ScriptError};

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(root().join(dir))
        .unwrap_or_else(|e| panic!("reading {dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    v.sort();
    v
}

fn scenarios() -> Vec<PathBuf> {
    let v = files("scenarios", "cas");
    assert!(
        v.len() >= 15,
        "expected the scenario scripts in scenarios/, found {}",
        v.len()
    );
    v
}

fn run_text(name: &str, script: &str, opts: &RunOptions) -> (String, Result<(), ScriptError>) {
    let mut out = Vec::new();
    let r = run_source(name, script, opts, &mut out).map(|_| ());
    (String::from_utf8(out).unwrap(), r)
}

#[test]
fn every_scenario_passes() {
    for path in scenarios() {
        let mut out = Vec::new();
        if let Err(e) = run_files(std::slice::from_ref(&path), true, &mut out) {
            panic!("{e}\n{}", String::from_utf8_lossy(&out));
        }
        let text = String::from_utf8(out).unwrap();
        assert!(text.trim_end().ends_with("steps"), "{text}");
    }
}

#[test]
fn a_wrong_expectation_stops_with_file_and_line() {
    let script = "server = SimpleStream \"hello\"\n\
                  client: f = QueryInterface server ICallFactory -> S_OK\n\
                  client: call = CreateCall f AsyncISimpleStream\n\
                  client: Begin_Read call 5 -> S_OK\n\
                  client: Wait call 0 -> S_OK\n\
                  client: Release call -> 0\n";
    let (out, r) = run_text("wrong.cas", script, &RunOptions::default());
    let e = r.unwrap_err();
    assert_eq!(
        e.to_string(),
        "wrong.cas:5: expected S_OK, got RPC_S_CALLPENDING"
    );
    assert_eq!(e.exit_code(), 1);
    // The steps before it ran and were printed, the step itself too; nothing after it.
    assert!(out.contains("Begin_Read call 5"), "{out}");
    assert!(out.contains("RPC_S_CALLPENDING (0x80010115)"), "{out}");
    assert!(!out.contains("Release call"), "{out}");

    // Out-parameters are compared too, and a file's path is what the message names.
    let path = std::env::temp_dir().join(format!("comasync-wrong-{}.cas", std::process::id()));
    std::fs::write(
        &path,
        "server = SimpleStream \"hello\"\n\
         client: f = QueryInterface server ICallFactory\n\
         client: call = CreateCall f AsyncISimpleStream\n\
         client: Begin_Read call 5\n\
         server: Complete call\n\
         # a comment\n\
         client: Finish_Read call -> S_OK \"help!\"\n",
    )
    .unwrap();
    let e = run_files(std::slice::from_ref(&path), false, &mut Vec::new()).unwrap_err();
    let _ = std::fs::remove_file(&path);
    assert_eq!(
        e.to_string(),
        format!(
            "{}:7: expected S_OK \"help!\", got S_OK \"hello\"",
            path.display()
        )
    );
}

#[test]
fn a_syntax_error_is_clear() {
    let (out, r) = run_text(
        "syntax.cas",
        "server = SimpleStream \"hello\"\nclient: f = QueryInterface server ICallFactory\nclient: call = CreateCall f AsyncISimpleStream\nclient: Begin_Read call\n",
        &RunOptions::default(),
    );
    let e = r.unwrap_err();
    // `Begin_<Method>` arguments are checked by the interface's generated glue (any registered
    // interface), which names the parameter and the method's signature — it used to say
    // "expected the byte count", written by hand for ISimpleStream.
    assert_eq!(
        e.to_string(),
        "syntax.cas:4: Begin_Read: expected `cb: u32` (Read(cb: u32)), found the end of the statement"
    );
    assert_eq!(e.exit_code(), 2);
    assert!(
        out.is_empty(),
        "nothing runs when the script does not parse: {out}"
    );

    let e = run_text("s.cas", "client: Frobnicate x\n", &RunOptions::default())
        .1
        .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("s.cas:1: unknown operation `Frobnicate`: expected one of"),
        "{e}"
    );
    let e = run_text(
        "s.cas",
        "e = StdEvent\nclient: Wait e 0 -> S_MAYBE\n",
        &RunOptions::default(),
    )
    .1
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "s.cas:2: expected an HRESULT name or hex value after `->`, found `S_MAYBE`"
    );
    let e = run_text("s.cas", "client: Wait e 0\n", &RunOptions::default())
        .1
        .unwrap_err();
    assert!(
        e.to_string().starts_with("s.cas:1: unknown variable `e`"),
        "{e}"
    );
    let e = run_text(
        "s.cas",
        "e = StdEvent\nt1: start Wait e INFINITE\nt1: Signal e\nt1: join\n",
        &RunOptions::default(),
    )
    .1
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("s.cas:3: t1 is still running the operation started at line 2"),
        "{e}"
    );

    let e = run_files(
        &[root().join("scenarios/no-such-file.cas")],
        false,
        &mut Vec::new(),
    )
    .unwrap_err();
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn a_hang_becomes_a_clear_error() {
    let opts = RunOptions {
        watchdog: Duration::from_millis(200),
        ..RunOptions::default()
    };
    let e = run_text(
        "hang.cas",
        "e = ManualResetEvent\nclient: Wait e INFINITE\n",
        &opts,
    )
    .1
    .unwrap_err();
    assert_eq!(
        e.to_string(),
        "hang.cas:2: client still blocked after 200 ms in `Wait e INFINITE`"
    );
    assert_eq!(e.exit_code(), 1);

    let script = "server = SimpleStream \"hello\"\n\
                  client: f = QueryInterface server ICallFactory\n\
                  client: call = CreateCall f AsyncISimpleStream\n\
                  client: Begin_Read call 5\n\
                  t1: start Finish_Read call\n\
                  t1: join -> S_OK \"hello\"\n";
    let e = run_text("hang.cas", script, &opts).1.unwrap_err();
    assert_eq!(
        e.to_string(),
        "hang.cas:6: t1 still blocked after 200 ms in `Finish_Read call` (started at line 5)"
    );

    // A server with nothing to complete is an error, not a hang.
    let e = run_text(
        "idle.cas",
        "server = SimpleStream \"hello\"\nclient: f = QueryInterface server ICallFactory\nclient: call = CreateCall f AsyncISimpleStream\nserver: Complete call\n",
        &opts,
    )
    .1
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("idle.cas:4: no call of `call` is waiting at the server"),
        "{e}"
    );
}

#[test]
fn output_is_deterministic() {
    let opts = RunOptions {
        trace: true,
        ..RunOptions::default()
    };
    for path in scenarios() {
        if path.ends_with("cancel_window_expires.cas") {
            continue; // deterministic too, but takes a second per run
        }
        let run = || {
            let mut out = Vec::new();
            run_file(&path, &opts, &mut out).unwrap();
            String::from_utf8(out).unwrap()
        };
        let first = run();
        for _ in 0..2 {
            assert_eq!(
                first,
                run(),
                "{} printed something else on a second run",
                path.display()
            );
        }
    }
}

fn diagram(path: &Path) -> String {
    let mut out = Vec::new();
    diagram_file(path, &mut out).unwrap();
    String::from_utf8(out).unwrap()
}

#[test]
fn committed_diagrams_are_current() {
    let update = std::env::var_os("COMASYNC_UPDATE_DIAGRAMS").is_some();
    let dir = root().join("docs/diagrams");
    if update {
        std::fs::create_dir_all(&dir).unwrap();
        for path in scenarios() {
            let stem = path.file_stem().unwrap().to_string_lossy().to_string();
            std::fs::write(dir.join(format!("{stem}.mmd")), diagram(&path)).unwrap();
        }
    }
    let committed = files("docs/diagrams", "mmd");
    assert!(
        committed.iter().any(|p| p.ends_with("seed_procedure.mmd")),
        "docs/diagrams/seed_procedure.mmd is missing (COMASYNC_UPDATE_DIAGRAMS=1 regenerates)"
    );
    for mmd in &committed {
        let stem = mmd.file_stem().unwrap().to_string_lossy().to_string();
        let script = root().join("scenarios").join(format!("{stem}.cas"));
        assert!(
            script.exists(),
            "{} has no scenario {}",
            mmd.display(),
            script.display()
        );
        let want = std::fs::read_to_string(mmd).unwrap();
        assert_eq!(
            want,
            diagram(&script),
            "{} is stale: COMASYNC_UPDATE_DIAGRAMS=1 cargo test --test scenarios regenerates it",
            mmd.display()
        );
    }
}

#[test]
fn the_docs_embed_the_current_diagrams() {
    let docs = std::fs::read_to_string(root().join("docs/scenarios.md")).unwrap();
    for stem in ["seed_procedure", "cancel_before_server_completes"] {
        let mmd = diagram(&root().join(format!("scenarios/{stem}.cas")));
        let block = format!("```mermaid\n{mmd}```");
        assert!(
            docs.contains(&block),
            "docs/scenarios.md does not embed the current diagram of {stem}"
        );
    }
}

#[test]
fn a_start_can_require_that_it_blocks_or_returns() {
    let opts = RunOptions::default();
    let blocking =
        "e = ManualResetEvent\nt1: start Wait e INFINITE -> blocks\nSignal e\nt1: join -> S_OK\n";
    let (out, r) = run_text("b.cas", blocking, &opts);
    r.unwrap_or_else(|e| panic!("{e}\n{out}"));
    // The requirement is not part of the printed statement.
    assert!(
        out.contains("t1: start Wait e INFINITE") && out.contains("started, blocks"),
        "{out}"
    );
    let e = run_text("r.cas", &blocking.replace("-> blocks", "-> returns"), &opts)
        .1
        .unwrap_err();
    assert_eq!(e.to_string(), "r.cas:2: expected returns, got blocks");
    assert_eq!(e.exit_code(), 1);
    let signaled =
        "e = ManualResetEvent\nSignal e\nt1: start Wait e INFINITE -> blocks\nt1: join\n";
    let e = run_text("s.cas", signaled, &opts).1.unwrap_err();
    assert_eq!(e.to_string(), "s.cas:3: expected blocks, got returns");
    // Only `blocks` or `returns` after a start: the result belongs on the join.
    let e = run_text(
        "x.cas",
        "e = StdEvent\nt1: start Wait e 0 -> S_OK\nt1: join\n",
        &opts,
    )
    .1
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("x.cas:2: start: expected `-> blocks` or `-> returns`"),
        "{e}"
    );
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn repeat_runs_a_statement_n_times_at_its_line() {
    let opts = RunOptions::default();
    let (out, r) = run_text(
        "rep.cas",
        "e = StdEvent\nrepeat 3: t1: Signal e -> S_OK\nWait e 0 -> S_OK\nWait e 0 -> RPC_S_CALLPENDING\n",
        &opts,
    );
    r.unwrap_or_else(|e| panic!("{e}\n{out}"));
    assert_eq!(out.matches("   2  t1: Signal e").count(), 3, "{out}");
    assert!(out.trim_end().ends_with("ok: 6 steps"), "{out}");
    for (script, message) in [
        (
            "repeat 0: e = StdEvent\n",
            "rep.cas:1: repeat: expected a count from 1 to 10000, found `0`",
        ),
        (
            "repeat: e = StdEvent\n",
            "rep.cas:1: repeat: expected `repeat N: STATEMENT`",
        ),
        (
            "repeat 2: e = StdEvent\n",
            "rep.cas:1: `e` is already bound (line 1): names are bound once",
        ),
    ] {
        let e = run_text("rep.cas", script, &opts).1.unwrap_err();
        assert_eq!(e.to_string(), message);
        assert_eq!(e.exit_code(), 2);
    }
}

#[test]
fn new_statements_check_their_arguments() {
    let opts = RunOptions::default();
    for (script, starts) in [
        ("x = CoCreateInstance CLSID_Nothing\n", "n.cas:1: CoCreateInstance: expected a class (CLSID_ManualResetEvent, CLSID_StdEvent, CLSID_SynchronizeContainer, or a CLSID in braces), found `CLSID_Nothing`"),
        ("k = SynchronizeContainer\nWaitMultiple k COWAIT_NOPE 0\n", "n.cas:2: WaitMultiple: expected the flags"),
        ("e = StdEvent\nSignals e\n", "n.cas:2: `e` is not an `Outer`"),
        ("s = SimpleStream \"x\"\nc = CreateCall s AsyncISimpleStream NULL\n", "n.cas:2: `c =`: this operation creates nothing to bind"),
    ] {
        let e = run_text("n.cas", script, &opts).1.unwrap_err();
        assert!(e.to_string().starts_with(starts), "{e}");
    }
}

#[test]
fn the_trace_names_each_event_s_apartment_and_the_calls_a_wait_dispatched() {
    let script = "server = SimpleStreamSyncOnly \"hi\"\n\
                  sta: CoInitializeEx STA -> S_OK\n\
                  sta: s = Marshal server ISimpleStream -> S_OK\n\
                  sta: e = ManualResetEvent\n\
                  client: CoInitializeEx MTA -> S_OK\n\
                  client: p = Unmarshal s -> S_OK\n\
                  sta: start Wait e INFINITE -> blocks\n\
                  client: Call p Read 2 -> S_OK \"hi\"\n\
                  client: Signal e -> S_OK\n\
                  sta: join -> S_OK\n";
    let trace = run_source(
        "apt.cas",
        script,
        &RunOptions::default(),
        &mut std::io::sink(),
    )
    .unwrap();
    let at = |line: usize| trace.events_of(line).next().unwrap().apartment.clone();
    assert_eq!(at(1), "no apartment", "the default actor never entered one");
    assert_eq!(at(3), "STA#1");
    assert_eq!(at(6), "MTA#1");
    let dispatched: Vec<_> = trace
        .events_of(8)
        .filter(|e| e.label.contains("dispatched by"))
        .collect();
    assert_eq!(dispatched.len(), 1, "{trace}");
    assert_eq!(
        (
            dispatched[0].thread.as_str(),
            dispatched[0].apartment.as_str()
        ),
        ("sta", "STA#1")
    );
    assert!(dispatched[0].label.contains("Wait e INFINITE"), "{trace}");
    // What the dispatched message was: the stub running Read for the synchronous call.
    assert!(
        trace
            .events_of(8)
            .any(|e| e.thread == "sta" && e.label == "stub: Read (synchronous call), as SYSTEM"),
        "{trace}"
    );
    assert!(
        trace
            .events_of(7)
            .any(|e| e.label.contains("STA#1's modal wait")),
        "{trace}"
    );
    let m = comasync::script::mermaid::render(&trace);
    assert!(
        m.contains("    box STA#1\n") && m.contains("    box MTA#1\n"),
        "{m}"
    );
}

#[test]
fn a_stream_is_unmarshaled_once_and_co_cancel_call_names_a_thread_that_ran() {
    let twice = "server = SimpleStreamSyncOnly \"hi\"\n\
                 sta: CoInitializeEx STA -> S_OK\n\
                 sta: s = Marshal server ISimpleStream -> S_OK\n\
                 sta: a = Unmarshal s -> S_OK\n\
                 sta: b = Unmarshal s\n";
    let (_, r) = run_text("twice.cas", twice, &RunOptions::default());
    let e = r.unwrap_err().to_string();
    assert_eq!(
        e,
        "twice.cas:5: `s` was unmarshaled at line 4: a stream is read once"
    );
    let release = twice.replace("sta: b = Unmarshal s", "sta: Release s");
    let (_, r) = run_text("release.cas", &release, &RunOptions::default());
    let e = r.unwrap_err().to_string();
    assert!(e.contains("`s` is a stream"), "{e}");
    let (_, r) = run_text(
        "nobody.cas",
        "t: CoCancelCall nobody 0\n",
        &RunOptions::default(),
    );
    let e = r.unwrap_err().to_string();
    assert!(e.contains("`nobody` has run nothing yet"), "{e}");
}

#[test]
fn the_trace_names_the_identity_server_code_runs_as_and_its_impersonations() {
    let script = "who = WhoAsync\n\
                  sta: CoInitializeEx STA -> S_OK\n\
                  sta: SetIdentity svc -> S_OK\n\
                  sta: s = Marshal who IWho -> S_OK\n\
                  client: CoInitializeEx MTA -> S_OK\n\
                  client: SetIdentity alice -> S_OK\n\
                  client: p = Unmarshal s -> S_OK\n\
                  client: SetBlanket p CONNECT IMPERSONATE -> S_OK\n\
                  client: call = CreateCall p AsyncIWho -> S_OK\n\
                  client: Begin_Run call \"impersonate signal revert held-revert |\" -> S_OK\n\
                  sta: Pump -> 1\n\
                  client: Finish_Run call -> S_OK \"S_OK signal |\"\n";
    let trace = run_source(
        "who.cas",
        script,
        &RunOptions::default(),
        &mut std::io::sink(),
    )
    .unwrap();
    let notes: Vec<&str> = trace
        .events_of(11)
        .filter(|e| e.thread == "sta")
        .map(|e| e.label.as_str())
        .collect();
    assert!(
        notes.contains(&"stub: Begin_Run on the server's call object (asynchronous call), as svc"),
        "{trace}"
    );
    let from = notes
        .iter()
        .position(|n| n.starts_with("server code:"))
        .expect("server code notes");
    assert_eq!(
        notes[from..],
        [
            "server code: impersonate S_OK, runs as alice",
            "server code: Signal(), runs as alice",
            "server code: revert RPC_E_CALL_COMPLETE, runs as alice",
            "server code: held-revert S_OK, runs as svc",
        ],
        "{trace}"
    );
}

#[test]
fn who_am_i_prints_the_identity_of_the_actor_s_thread() {
    let (out, r) = run_text(
        "whoami.cas",
        "a: SetIdentity alice staff -> S_OK\na: WhoAmI -> S_OK \"alice\"\nb: WhoAmI -> S_OK \"SYSTEM\"\n",
        &RunOptions::default(),
    );
    r.unwrap();
    assert!(out.contains("a: WhoAmI"), "{out}");
    assert!(out.contains("S_OK (0x00000000) \"alice\""), "{out}");
    assert!(out.contains("S_OK (0x00000000) \"SYSTEM\""), "{out}");
}

#[test]
fn copy_proxy_binds_a_new_proxy_to_the_same_object() {
    let script = "server = SimpleStreamSyncOnly \"hi\"\n\
                  sta: CoInitializeEx STA -> S_OK\n\
                  sta: s = Marshal server ISimpleStream -> S_OK\n\
                  client: CoInitializeEx MTA -> S_OK\n\
                  client: p = Unmarshal s -> S_OK\n\
                  client: copy = CopyProxy p -> S_OK\n\
                  client: SetBlanket copy PKT IMPERSONATE -> S_OK\n\
                  client: QueryBlanket p -> S_OK CONNECT IDENTIFY\n\
                  client: start Call copy Read 2 -> blocks\n\
                  sta: Pump -> 1\n\
                  client: join -> S_OK \"hi\"\n";
    let trace = run_source(
        "copy.cas",
        script,
        &RunOptions::default(),
        &mut std::io::sink(),
    )
    .unwrap();
    let copy = trace
        .participants
        .iter()
        .find(|p| p.id == "copy")
        .expect("the copy is a participant");
    assert_eq!(copy.label, "copy (proxy to server)");
    assert_eq!(copy.apartment.as_deref(), Some("MTA#1"));
    assert!(
        trace
            .events_of(6)
            .any(|e| e.label == "CoCopyProxy(p)" && e.to == "p"),
        "{trace}"
    );
}
