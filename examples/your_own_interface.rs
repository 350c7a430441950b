//! Your own interface, end to end (docs/your-own-interface.md): declare `ICalculator` — with an
//! `Advise(sink)` method taking an interface pointer — implement a server for it, call it
//! asynchronously, script it with a `.cas` scenario, and check a server-side call object for it
//! with the test kit.
//!
//! Run it with `cargo run --example your_own_interface` (the `testing` feature, on by default for
//! this project's examples through its dev-dependency, provides the kit). `tests/your_own_crate.rs`
//! copies this file into a throw-away crate outside the project and runs it as that crate's
//! test, so it is also the code a user's crate writes.

use std::process::ExitCode;
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Mutex;

use comasync::call::{create_call_for, FinishMode, ICallFactory, Pool, StdCallFactory};
use comasync::hresult::{HRESULT, RPC_E_CALL_COMPLETE, RPC_S_CALLPENDING, S_OK};
use comasync::script::{Registry, RunOptions};
use comasync::sync::{ISynchronize, ManualResetEvent, INFINITE};
use comasync::testing::server_kit::{Rules, ServerKit, ServerOp};
use comasync::unknown::{query, ComPtr};

// 1. Declare the interface: each method once, as a Rust signature, with the two IIDs. This
//    generates `ICalculator`, its asynchronous twin `AsyncICalculator` (`begin_add`,
//    `finish_add`, ...), `ICalculatorIn`/`ICalculatorOut` (one call's parameters as data),
//    `ICalculatorMethod`, and `ICalculatorCalls`, the glue for call objects, scripts and the kit.

/// A calculator that keeps a running total and tells a sink when it changes.
#[comasync::interface(
    iid = "{6D1F2A40-5B3C-4D2E-9F10-1A2B3C4D5E60}",
    async_iid = "{6D1F2A41-5B3C-4D2E-9F10-1A2B3C4D5E60}"
)]
pub trait ICalculator {
    /// `Add(a, b, &sum)`: `a + b`, also added to the running total.
    #[out(sum)]
    fn add(&self, a: i32, b: i32) -> (HRESULT, i32);
    /// `Advise(sink)`: `sink` is signalled whenever the total changes (and once now).
    fn advise(&self, sink: ComPtr<dyn ISynchronize>) -> HRESULT;
}

// 2. Implement the server: a plain struct; `#[implement]` makes it a COM object (reference
//    count, QueryInterface, aggregation) without hand-written fields.

/// The server object.
#[comasync::implement(ICalculator)]
pub struct Calculator {
    total: AtomicI32,
    sink: Mutex<Option<ComPtr<dyn ISynchronize>>>,
}

impl Calculator {
    /// A calculator with a total of 0.
    pub fn new() -> Calculator {
        Calculator {
            total: AtomicI32::new(0),
            sink: Mutex::new(None),
        }
    }
}

impl Default for Calculator {
    fn default() -> Self {
        Calculator::new()
    }
}

impl ICalculator for Calculator_Impl {
    fn add(&self, a: i32, b: i32) -> (HRESULT, i32) {
        let sum = a.wrapping_add(b);
        self.total.fetch_add(sum, Ordering::Relaxed);
        let sink = self.sink.lock().unwrap().clone(); // no lock held while calling out
        if let Some(sink) = sink {
            let _ = sink.signal();
        }
        (S_OK, sum)
    }

    fn advise(&self, sink: ComPtr<dyn ISynchronize>) -> HRESULT {
        let hr = sink.signal();
        *self.sink.lock().unwrap() = Some(sink);
        hr
    }
}

// 3. A server-side call object for it, written as Microsoft's samples write one: `Begin_` does
//    the work and signals the ISynchronize of its outer (COM's stub), `Finish_` returns the
//    stored result once. The test kit below checks it against the server-side rules.

/// `AsyncICalculator` on the server side.
#[comasync::implement(AsyncICalculator)]
pub struct CalculatorCall {
    result: Mutex<Option<HRESULT>>,
    sum: Mutex<i32>,
}

impl CalculatorCall_Impl {
    fn start(&self, hr: HRESULT, sum: i32) -> HRESULT {
        {
            let mut result = self.result.lock().unwrap();
            if result.is_some() {
                return RPC_S_CALLPENDING; // one call at a time
            }
            *result = Some(hr);
            *self.sum.lock().unwrap() = sum;
        }
        if let Ok(sync) = query::<dyn ISynchronize>(self) {
            let _ = sync.signal(); // the outer's ISynchronize: the client's Wait returns
        }
        S_OK
    }

    fn take(&self) -> (HRESULT, i32) {
        match self.result.lock().unwrap().take() {
            Some(hr) => (hr, *self.sum.lock().unwrap()),
            None => (RPC_E_CALL_COMPLETE, 0),
        }
    }
}

impl AsyncICalculator for CalculatorCall_Impl {
    fn begin_add(&self, a: i32, b: i32) -> HRESULT {
        self.start(S_OK, a.wrapping_add(b))
    }
    fn finish_add(&self) -> (HRESULT, i32) {
        self.take()
    }
    fn begin_advise(&self, sink: ComPtr<dyn ISynchronize>) -> HRESULT {
        self.start(sink.signal(), 0)
    }
    fn finish_advise(&self) -> HRESULT {
        self.take().0
    }
}

/// 4. A client: asynchronous calls through `ICallFactory`, the seed's procedure.
fn call_it() -> comasync::Result<()> {
    let calculator = Calculator::new().into_interface::<dyn ICalculator>()?;
    let factory = StdCallFactory::<ICalculatorCalls>::create(
        calculator,
        Pool::global(),
        FinishMode::Blocking,
    );
    let factory = factory.query::<dyn ICallFactory>()?;
    let call = create_call_for::<dyn AsyncICalculator>(&*factory)?;
    assert_eq!(call.begin_add(40, 2), S_OK); // Begin_Add: the in-parameters
    let sync = call.query::<dyn ISynchronize>()?;
    assert_eq!(sync.wait(0, INFINITE), S_OK); // the server is done
    assert_eq!(call.finish_add(), (S_OK, 42)); // Finish_Add: HRESULT and out-parameter

    let sink = ManualResetEvent::create(); // an interface pointer as a parameter
    assert_eq!(call.begin_advise(sink.clone()), S_OK);
    assert_eq!(call.finish_advise(), S_OK);
    assert_eq!(sink.wait(0, 0), S_OK, "the server signalled our sink");
    println!("client passed: Add(40, 2) = 42, Advise signalled the sink");
    Ok(())
}

/// 5. A script: register the interface and a server, then run `your_own_interface.cas`.
fn script_it() -> Result<(), comasync::script::ScriptError> {
    let mut registry = Registry::new();
    registry.server::<ICalculatorCalls, _>("Calculator", |args| match args {
        [] => Calculator::new()
            .into_interface::<dyn ICalculator>()
            .map_err(|e| e.to_string()),
        _ => Err(format!("Calculator takes no arguments, got {}", args.len())),
    });

    let mut transcript = Vec::new();
    registry.run_source(
        "your_own_interface.cas",
        include_str!("your_own_interface.cas"),
        &RunOptions::default(),
        &mut transcript,
    )?;
    print!("{}", String::from_utf8_lossy(&transcript));
    println!("script passed: your_own_interface.cas");
    Ok(())
}

/// 6. The test kit: the server-side call object under the kit's stub, a fixed sequence and
///    generated ones, against the synchronous method as the oracle.
fn kit_it() -> Result<(), String> {
    use comasync::testing::proptest::prelude::*;

    let kit = ServerKit::<ICalculatorCalls>::new(
        |outer| {
            CalculatorCall {
                result: Mutex::new(None),
                sum: Mutex::new(0),
            }
            .into_aggregated(outer)
        },
        (any::<i32>(), any::<i32>()).prop_map(|(a, b)| ICalculatorIn::Add { a, b }),
    )
    .oracle(|input| match input {
        ICalculatorIn::Add { a, b } => (
            S_OK,
            ICalculatorOut::Add {
                sum: a.wrapping_add(*b),
            },
        ),
        ICalculatorIn::Advise { .. } => (S_OK, ICalculatorOut::Advise {}),
    })
    // This server does its work inside Begin_, before a cancel could be seen (COM allows it).
    .rules(Rules {
        require_cancel_check: false,
    });
    let steps = kit
        .check([
            ServerOp::Begin {
                input: ICalculatorIn::Add { a: 1, b: 2 },
                cancelled: false,
            },
            ServerOp::Finish(0),
        ])
        .map_err(|d| d.to_string())?;
    for step in &steps {
        println!("  kit: {step}");
    }
    kit.run_proptest(64).map_err(|f| f.to_string())?;
    println!("kit passed: the server call object keeps the server-side rules");
    Ok(())
}

fn main() -> ExitCode {
    if let Err(e) = call_it() {
        eprintln!("client failed: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = script_it() {
        eprintln!("script failed: {e}");
        return ExitCode::FAILURE;
    }
    if let Err(e) = kit_it() {
        eprintln!("kit failed: {e}");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
