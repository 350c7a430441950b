//! Scripting your own interface: `ICalculator`, declared with `#[interface]`, registered with a `Registry` together with a server
//! constructor, and driven by scenario scripts through `Begin_<Method>`/`Finish_<Method>`,
//! hand-driven (`Manual`) and pooled (`Pool`) servers, and raw IIDs.

use std::sync::Arc;

use comasync::call::{create_call_as, FinishMode, ICallFactory};
use comasync::hresult::{HRESULT, S_OK};
use comasync::script::{
    run_source, Objects, Registry, RunOptions, ScriptError, ScriptInterface, ScriptParam,
    ScriptServer, Value,
};
use comasync::sync::{ISynchronize, ManualResetEvent};
use comasync::unknown::{ComPtr, IUnknown, Interface};

/// A calculator that can also signal a sink.
#[comasync::interface(
    iid = "{5C1A0E10-7D2B-4E3F-9A1B-2C3D4E5F6071}",
    async_iid = "{5C1A0E11-7D2B-4E3F-9A1B-2C3D4E5F6071}"
)]
pub trait ICalculator {
    /// `a + b`.
    #[out(sum)]
    fn add(&self, a: i32, b: i32) -> (HRESULT, i32);
    /// Signals `sink` and remembers it.
    fn advise(&self, sink: ComPtr<dyn ISynchronize>) -> HRESULT;
    /// The sink last advised.
    #[out(sink)]
    fn current(&self) -> (HRESULT, Option<ComPtr<dyn ISynchronize>>);
}

#[comasync::implement(ICalculator)]
struct Calculator {
    sink: std::sync::Mutex<Option<ComPtr<dyn ISynchronize>>>,
}

impl Calculator {
    fn create() -> ComPtr<dyn ICalculator> {
        Calculator {
            sink: std::sync::Mutex::new(None),
        }
        .into_interface::<dyn ICalculator>()
        .expect("a Calculator answers ICalculator")
    }
}

impl ICalculator for Calculator_Impl {
    fn add(&self, a: i32, b: i32) -> (HRESULT, i32) {
        (S_OK, a.wrapping_add(b))
    }
    fn advise(&self, sink: ComPtr<dyn ISynchronize>) -> HRESULT {
        let hr = sink.signal();
        if let Ok(mut s) = self.sink.lock() {
            *s = Some(sink);
        }
        hr
    }
    fn current(&self) -> (HRESULT, Option<ComPtr<dyn ISynchronize>>) {
        (S_OK, self.sink.lock().ok().and_then(|s| s.clone()))
    }
}

fn registry() -> Registry {
    let mut r = Registry::new();
    r.server::<ICalculatorCalls, _>("Calculator", |args| {
        if args.is_empty() {
            Ok(Calculator::create())
        } else {
            Err("Calculator takes no arguments".into())
        }
    });
    r
}

fn run(script: &str) -> (String, Result<(), ScriptError>) {
    let mut out = Vec::new();
    let opts = RunOptions {
        trace: true,
        ..RunOptions::default()
    };
    let r = registry()
        .run_source("calc.cas", script, &opts, &mut out)
        .map(|_| ());
    (String::from_utf8(out).unwrap(), r)
}

fn ok(script: &str) -> String {
    let (out, r) = run(script);
    if let Err(e) = r {
        panic!("{e}\n{out}");
    }
    out
}

fn err(script: &str) -> (ScriptError, String) {
    let (out, r) = run(script);
    (r.expect_err("the script should fail"), out)
}

const SETUP: &str = "calc = Manual Calculator\n\
                     f = QueryInterface calc ICallFactory -> S_OK\n\
                     c = CreateCall f AsyncICalculator -> S_OK\n";

#[test]
fn begin_and_finish_any_method_of_a_registered_interface() {
    let out = ok(&format!(
        "{SETUP}\
         Begin_Add c 2 -5 -> S_OK\n\
         Begin_Add c 1 1 -> RPC_S_CALLPENDING\n\
         Wait c 0 -> RPC_S_CALLPENDING\n\
         server: Complete c -> S_OK -3\n\
         Finish_Add c -> S_OK -3\n\
         Begin_Add c 0x10 1 -> S_OK\n\
         server: Complete c -> S_OK 17\n\
         Finish_Add c -> S_OK 17\n\
         Release c -> 0\n"
    ));
    // The call, the server's completion and the signal are drawn with the values as written.
    assert!(out.contains("client -> c: Begin_Add(2, -5)"), "{out}");
    assert!(out.contains("c -> calc: Add(2, -5)"), "{out}");
    assert!(
        out.contains("server -> c: complete Add(2, -5): S_OK -3"),
        "{out}"
    );
    assert!(out.contains("c -> c_ISync: Signal()"), "{out}");
    assert!(out.contains("[c: Signaled]"), "{out}");
    assert!(
        out.contains("calc (Calculator)") || out.contains("created"),
        "{out}"
    );
}

#[test]
fn an_interface_pointer_parameter_names_a_script_variable() {
    let out = ok(&format!(
        "{SETUP}\
         e = ManualResetEvent\n\
         Begin_Advise c e -> S_OK\n\
         Wait e 0 -> RPC_S_CALLPENDING\n\
         server: Complete c -> S_OK\n\
         Finish_Advise c -> S_OK\n\
         Wait e 0 -> S_OK\n\
         Begin_Current c -> S_OK\n\
         server: Complete c -> S_OK e\n\
         Finish_Current c -> S_OK e\n"
    ));
    // In-parameters and out-parameters that are objects print as their variables.
    assert!(out.contains("Begin_Advise(e)"), "{out}");
    assert!(out.contains("Finish_Current c"), "{out}");
}

#[test]
fn fail_and_a_strict_server() {
    ok("calc = Manual Calculator strict\n\
        c = CreateCall calc AsyncICalculator -> S_OK\n\
        Begin_Add c 1 2 -> S_OK\n\
        Finish_Add c -> RPC_S_CALLPENDING\n\
        server: Fail c E_ACCESSDENIED -> E_ACCESSDENIED\n\
        Finish_Add c -> E_ACCESSDENIED 0\n\
        Begin_Add c 1 2 -> S_OK\n\
        server: ServerTestCancel c -> RPC_S_CALLPENDING\n\
        Cancel c 0 -> S_OK\n\
        server: ServerTestCancel c -> RPC_E_CALL_CANCELED\n\
        server: Complete c -> S_OK 3\n\
        Finish_Add c -> RPC_E_CALL_CANCELED\n");
}

#[test]
fn a_pool_server_runs_the_methods_itself() {
    let (e, _) = err("p = Pool Calculator\n\
                      c = CreateCall p AsyncICalculator -> S_OK\n\
                      Begin_Add c 20 22 -> S_OK\n\
                      Finish_Add c -> S_OK 42\n\
                      Begin_Add c 1 1 -> S_OK\n\
                      server: Complete c\n");
    assert_eq!(
        e.to_string(),
        "calc.cas:6: `c`'s server `p` is not hand-driven: create it with `Manual`"
    );
    assert_eq!(e.exit_code(), 1);
}

#[test]
fn a_plain_server_has_no_call_factory_and_raw_iids_work() {
    ok("x = Calculator\n\
        f = QueryInterface x ICallFactory -> E_NOINTERFACE\n\
        i = QueryInterface x {5C1A0E10-7D2B-4E3F-9A1B-2C3D4E5F6071} -> S_OK\n\
        n = QueryInterface x {00000000-0000-0000-0000-0000000000FF} -> E_NOINTERFACE\n\
        calc = Manual Calculator\n\
        g = QueryInterface calc {00000001-0000-0000-C000-000000000046} -> E_NOINTERFACE\n\
        c = CreateCall calc {5C1A0E11-7D2B-4E3F-9A1B-2C3D4E5F6071} -> S_OK\n\
        Begin_Add c 1 2 -> S_OK\n\
        server: Complete c -> S_OK 3\n\
        d = CreateCall calc {00000000-0000-0000-0000-0000000000FF} -> E_NOINTERFACE\n");
}

#[test]
fn argument_errors_stop_at_the_line() {
    let cases: &[(&str, &str)] = &[
        (
            "Begin_Add c 1\n",
            "calc.cas:4: Begin_Add: expected `b: i32` (Add(a: i32, b: i32)), found the end of the statement",
        ),
        (
            "Begin_Add c 1 2 3\n",
            "calc.cas:4: Begin_Add: expected nothing more (Add(a: i32, b: i32)), found `3`",
        ),
        (
            "Begin_Add c \"one\" 2\n",
            "calc.cas:4: Begin_Add: `a: i32`: expected a number (i32), found `\"one\"`",
        ),
        (
            "Begin_Add c 3000000000 2\n",
            "calc.cas:4: Begin_Add: `a: i32`: expected a number that fits i32, found `3000000000`",
        ),
        (
            "Begin_Mul c 1 2\n",
            "calc.cas:4: Begin_Mul: AsyncICalculator has no method `Mul`: expected one of Add, Advise, Current",
        ),
        (
            "Finish_Mul c\n",
            "calc.cas:4: Finish_Mul: AsyncICalculator has no method `Mul`: expected one of Add, Advise, Current",
        ),
    ];
    for (line, message) in cases {
        let (e, out) = err(&format!("{SETUP}{line}"));
        assert_eq!(e.to_string(), *message);
        assert_eq!(e.exit_code(), 2);
        assert!(out.is_empty(), "found before the script runs: {out}");
    }
    // A name is resolved when the step runs: an object without the interface is a usage
    // error at that line, after the steps before it ran.
    let (e, out) = err(&format!("{SETUP}Begin_Advise c f\n"));
    assert_eq!(
        e.to_string(),
        "calc.cas:4: Begin_Advise: `sink: ComPtr<dyn ISynchronize>`: expected an object with ISynchronize: `f` answers E_NOINTERFACE"
    );
    assert_eq!(e.exit_code(), 2);
    assert!(out.contains("CreateCall"), "{out}");
    let (e, _) = err(&format!("{SETUP}Begin_Advise c nowhere\n"));
    assert!(
        e.to_string().contains("found `nowhere` (no such variable"),
        "{e}"
    );
    let (e, _) = err("x = Calculator 5\n");
    assert_eq!(
        e.to_string(),
        "calc.cas:1: creating the object failed: Calculator takes no arguments"
    );
}

#[test]
fn the_default_registry_does_not_know_your_interface() {
    let e = run_source(
        "d.cas",
        "x = Calculator\n",
        &RunOptions::default(),
        &mut std::io::sink(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .starts_with("d.cas:1: unknown operation `Calculator`"),
        "{e}"
    );
    let e = run_source(
        "d.cas",
        "s = SimpleStream \"x\"\nc = CreateCall s AsyncICalculator\n",
        &RunOptions::default(),
        &mut std::io::sink(),
    )
    .unwrap_err();
    assert!(
        e.to_string()
            .contains("expected the asynchronous interface"),
        "{e}"
    );
    assert_eq!(e.exit_code(), 2);
}

#[test]
fn the_hand_driven_server_keeps_one_identity() {
    let (server, calls) =
        ScriptServer::<ICalculatorCalls>::manual(Calculator::create(), FinishMode::Blocking);
    let unk = ComPtr::new(server.clone() as Arc<dyn IUnknown>);
    let sync = unk.query::<dyn ICalculator>().unwrap();
    assert!(ComPtr::is_same_object(&sync, &unk)); // the server itself, not its object
    assert_eq!(sync.add(2, 3), (S_OK, 5)); // delegated to the implementation
    let factory = unk.query::<dyn ICallFactory>().unwrap();
    let call = create_call_as::<dyn AsyncICalculator>(
        &*factory,
        &<dyn AsyncICalculator as Interface>::IID,
    )
    .unwrap();
    assert_eq!(call.begin_add(4, 5), S_OK);
    assert_eq!(calls.run_next(server.object()), Some(()));
    assert_eq!(call.finish_add(), (S_OK, 9));
}

#[test]
fn script_params_round_trip() {
    struct Events(ComPtr<dyn ISynchronize>);
    impl Objects for Events {
        fn lookup(&self, name: &str) -> Option<ComPtr<dyn IUnknown>> {
            (name == "e").then(|| self.0.query::<dyn IUnknown>().unwrap())
        }
        fn name_of(&self, object: &dyn IUnknown) -> Option<String> {
            let me = self.0.query::<dyn IUnknown>().ok()?;
            let it = comasync::unknown::query::<dyn IUnknown>(object).ok()?;
            ComPtr::ptr_eq(&me, &it).then(|| "e".to_string())
        }
    }
    let objects = Events(ManualResetEvent::create());
    let input = ICalculatorCalls::parse_in(0, &[Value::Num(-1), Value::Num(0x7fff_ffff)], &objects)
        .unwrap();
    assert!(matches!(input, ICalculatorIn::Add { a: -1, b: i32::MAX }));
    assert_eq!(
        ICalculatorCalls::in_values(&input, &objects),
        [Value::Num(-1), Value::Num(2147483647)]
    );
    let input = ICalculatorCalls::parse_in(1, &[Value::Name("e".into())], &objects).unwrap();
    assert_eq!(
        ICalculatorCalls::in_values(&input, &objects),
        [Value::Name("e".into())]
    );
    let out = ICalculatorOut::Current { sink: None };
    assert_eq!(
        ICalculatorCalls::out_values(&out, &objects),
        [Value::Name("NULL".into())]
    );
    assert_eq!(
        HRESULT::from_value(&Value::Name("E_FAIL".into()), &objects)
            .unwrap()
            .to_value(&objects),
        Value::Name("E_FAIL".into())
    );
    assert_eq!(
        bool::from_value(&Value::Name("true".into()), &objects),
        Ok(true)
    );
    assert!(u32::from_value(&Value::Num(-1), &objects).is_err());
    let iid = <dyn ICalculator as Interface>::IID;
    assert_eq!(
        comasync::guid::GUID::from_value(&iid.to_value(&objects), &objects),
        Ok(iid)
    );
}

#[test]
fn the_checker_checks_a_registered_interface_s_script_over_every_order() {
    // Your own interface's scenario, checked from Rust: the server may complete before the
    // client's Wait, and the implementation driven along each schedule agrees.
    let script = format!(
        "{SETUP}\
         Begin_Add c 2 -5 -> S_OK\n\
         Wait c 0 -> RPC_S_CALLPENDING | S_OK\n\
         server: Complete c -> S_OK -3\n\
         Finish_Add c -> S_OK -3\n\
         Release c -> 0\n"
    );
    let report = registry()
        .check_source("calc.cas", &script, &comasync::check::Bounds::default())
        .unwrap();
    assert!(report.passed(), "{report}");
    let wait = report.step(5).unwrap();
    let mut results: Vec<String> = wait.outcomes.iter().map(|o| o.result.to_string()).collect();
    results.sort();
    assert_eq!(results, ["RPC_S_CALLPENDING", "S_OK"]);
    assert!(report.implementation.replayed >= 2, "{report}");
    assert!(report.implementation.divergences.is_empty());
}

#[test]
fn an_abandoned_call_releases_the_interface_pointers_it_held() {
    // Counts of `e` are read with `AddRef e` / `Release e` pairs (each prints the new count).
    let out = ok(&format!(
        "{SETUP}\
         e = ManualResetEvent\n\
         AddRef e -> 2\n\
         Release e -> 1\n\
         Begin_Advise c e -> S_OK\n\
         server: Complete c -> S_OK\n\
         Finish_Advise c -> S_OK\n\
         AddRef e -> 3\n\
         Release e -> 2\n\
         Begin_Current c -> S_OK\n\
         server: Complete c -> S_OK e\n\
         AddRef e -> 4\n\
         Release e -> 3\n\
         Release c -> 0\n\
         AddRef e -> 3\n\
         Release e -> 2\n\
         c2 = CreateCall f AsyncICalculator -> S_OK\n\
         Begin_Current c2 -> S_OK\n\
         Release c2 -> 0\n\
         server: Complete c2 -> S_OK e\n\
         AddRef e -> 3\n\
         Release e -> 2\n"
    ));
    assert!(out.contains("(late result dropped)"), "{out}");
}
