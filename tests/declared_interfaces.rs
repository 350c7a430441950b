//! `#[interface]` and `#[implement]` end to end: an interface with an interface-pointer in- and
//! out-parameter, parameters that are neither `Clone` nor `PartialEq`, a method without
//! out-parameters; an `#[implement]` object served through its own `ICallFactory`, through
//! `StdCallFactory`, and as a server-side call object under `ServerCallHost` and the test kit.

use std::any::Any;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use comasync::call::{
    create_aggregated_call, create_call, create_call_for, AsyncInterface, CallServer, FinishMode,
    ICallFactory, ManualHandler, Pool, ServedBy, ServerCallHost, StdCallFactory, SyncMethodHandler,
};
use comasync::guid::{IID_IUnknown, IID};
use comasync::hresult::{
    E_ACCESSDENIED, E_INVALIDARG, E_NOINTERFACE, E_NOTIMPL, E_POINTER, E_UNEXPECTED, HRESULT,
    RPC_E_CALL_COMPLETE, RPC_S_CALLPENDING, S_OK,
};
use comasync::sync::{ISynchronize, ManualResetEvent, INFINITE};
use comasync::testing::server_kit::{Rules, ServerKit, ServerOp};
use comasync::unknown::{query, set_out, ComPtr, IUnknown, Interface, PlainObject};

/// An out-parameter that is neither `Clone` nor `PartialEq`.
#[derive(Debug, Default)]
pub struct Receipt {
    /// Numbers the receipts.
    pub id: u64,
    /// What the note said.
    pub text: String,
}

/// An in-parameter that is neither `Clone`, `PartialEq` nor `Default`.
#[derive(Debug)]
pub struct Note(pub String);

/// A calculator.
#[comasync::interface(
    iid = "{9A0B1C2D-3E4F-4A5B-8C6D-7E8F9A0B1C2D}",
    async_iid = "{9A0B1C2D-3E4F-4A5B-8C6D-7E8F9A0B1C2E}",
    // Test-local parameter types: no scenario-script glue.
    scripts = false
)]
pub trait ICalculator {
    /// `Add(a, b, &sum)`: adds to the running total too.
    #[out(sum)]
    fn add(&self, a: i32, b: i32) -> (HRESULT, i32);
    /// `Advise(sink)`: signals `sink`. No out-parameters.
    fn advise(&self, sink: ComPtr<dyn ISynchronize>) -> HRESULT;
    /// `GetReceipt(note, &receipt)`.
    #[com_name = "GetReceipt"]
    #[out(receipt)]
    fn receipt(&self, note: Note) -> (HRESULT, Receipt);
    /// `EchoSink(sink, &same, &count)`: an interface pointer in and out (default out names).
    fn echo_sink(
        &self,
        sink: ComPtr<dyn ISynchronize>,
    ) -> (HRESULT, Option<ComPtr<dyn ISynchronize>>, u32);
}

// ---------------------------------------------------------------------------------------------
// A synchronous server object with its own ICallFactory, made by #[implement].

#[comasync::implement(ICalculator, ICallFactory)]
struct Calculator {
    total: Mutex<i32>,
    receipts: AtomicU64,
}

impl Calculator {
    fn new() -> Calculator {
        Calculator {
            total: Mutex::new(0),
            receipts: AtomicU64::new(0),
        }
    }
}

impl ICalculator for Calculator_Impl {
    fn add(&self, a: i32, b: i32) -> (HRESULT, i32) {
        let sum = a.wrapping_add(b);
        *self.total.lock().unwrap() += sum;
        (S_OK, sum)
    }
    fn advise(&self, sink: ComPtr<dyn ISynchronize>) -> HRESULT {
        sink.signal()
    }
    fn receipt(&self, note: Note) -> (HRESULT, Receipt) {
        let id = self.receipts.fetch_add(1, Ordering::Relaxed) + 1;
        (S_OK, Receipt { id, text: note.0 })
    }
    fn echo_sink(
        &self,
        sink: ComPtr<dyn ISynchronize>,
    ) -> (HRESULT, Option<ComPtr<dyn ISynchronize>>, u32) {
        let count = sink.ref_count();
        (S_OK, Some(sink), count)
    }
}

/// `ICallFactory` from the handler its call objects get.
impl CallServer for Calculator_Impl {
    type Calls = ICalculatorCalls;
    fn call_handler(&self) -> ServedBy<ICalculatorCalls> {
        let me = query::<dyn ICalculator>(self).map_err(|_| E_UNEXPECTED)?;
        let handler = SyncMethodHandler::<ICalculatorCalls>::new(me, Pool::global());
        Ok((handler, FinishMode::Blocking))
    }
}

#[test]
fn the_generated_names_and_method_numbers() {
    assert_eq!(<dyn ICalculator as Interface>::NAME, "ICalculator");
    assert_eq!(
        <dyn AsyncICalculator as Interface>::NAME,
        "AsyncICalculator"
    );
    assert_eq!(
        <dyn ICalculator as Interface>::IID.to_string(),
        "{9A0B1C2D-3E4F-4A5B-8C6D-7E8F9A0B1C2D}"
    );
    assert_eq!(
        <dyn AsyncICalculator as Interface>::IID.to_string(),
        "{9A0B1C2D-3E4F-4A5B-8C6D-7E8F9A0B1C2E}"
    );
    assert_eq!(
        ICalculatorCalls::METHODS,
        ["Add", "Advise", "GetReceipt", "EchoSink"]
    );
    for (i, m) in ICalculatorMethod::ALL.into_iter().enumerate() {
        assert_eq!(m.index(), i);
        assert_eq!(ICalculatorMethod::from_index(i), Some(m));
        assert_eq!(m.name(), ICalculatorCalls::METHODS[i]);
    }
    assert_eq!(ICalculatorMethod::from_index(4), None);
    let input = ICalculatorIn::GetReceipt {
        note: Note("n".into()),
    };
    assert_eq!(input.method(), ICalculatorMethod::GetReceipt);
    assert_eq!(ICalculatorCalls::method_of(&input), 2);
    let out = ICalculatorOut::EchoSink {
        out0: None,
        out1: 0,
    };
    assert_eq!(out.method(), ICalculatorMethod::EchoSink);
}

#[test]
fn an_implemented_object_serves_its_own_call_factory_end_to_end() {
    let calc = Calculator::new().into_object();
    assert_eq!(calc.ref_count(), 1);
    let sync = calc.query::<dyn ICalculator>().unwrap();
    assert_eq!(sync.add(2, 3), (S_OK, 5)); // synchronous

    let factory = calc.query::<dyn ICallFactory>().unwrap();
    let call = create_call_for::<dyn AsyncICalculator>(&*factory).unwrap();
    let event = call.query::<dyn ISynchronize>().unwrap();

    // HRESULT and an out-parameter.
    assert_eq!(call.begin_add(40, 2), S_OK);
    assert_eq!(event.wait(0, INFINITE), S_OK);
    assert_eq!(call.finish_add(), (S_OK, 42));
    assert_eq!(call.finish_add(), (RPC_E_CALL_COMPLETE, 0)); // once

    // An interface pointer in, no out-parameters: the server got the client's sink.
    let sink = ManualResetEvent::create();
    assert_eq!(call.begin_advise(sink.clone()), S_OK);
    assert_eq!(call.finish_advise(), S_OK);
    assert_eq!(
        sink.wait(0, 0),
        S_OK,
        "the server signalled the client's sink"
    );

    // An in- and an out-parameter that are neither Clone nor PartialEq.
    assert_eq!(call.begin_receipt(Note("paid".into())), S_OK);
    let (hr, receipt) = call.finish_receipt();
    assert_eq!(hr, S_OK);
    assert_eq!((receipt.id, receipt.text.as_str()), (1, "paid"));

    // An interface pointer out: the very pointer that went in.
    let before = sink.ref_count();
    assert_eq!(call.begin_echo_sink(sink.clone()), S_OK);
    let (hr, same, count) = call.finish_echo_sink();
    assert_eq!(hr, S_OK);
    assert!(ComPtr::ptr_eq(same.as_ref().unwrap(), &sink));
    assert!(
        count > before,
        "the server held the pointer: {count} > {before}"
    );
    drop(same);
    assert_eq!(
        sink.ref_count(),
        before,
        "no reference leaked through the call"
    );

    drop((event, call, factory, sync));
    // The call object's handler holds the calculator until the pool's worker has let go of
    // the call (just after completing it).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while calc.ref_count() != 1 && std::time::Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert_eq!(calc.ref_count(), 1, "every reference came back");
}

#[test]
fn std_call_factory_serves_an_implemented_sync_only_object() {
    let calc = Calculator::new()
        .into_interface::<dyn ICalculator>()
        .unwrap();
    let factory = StdCallFactory::<ICalculatorCalls>::create(
        calc.clone(),
        Pool::new(1),
        FinishMode::Blocking,
    );
    let call = create_call_for::<dyn AsyncICalculator>(&*factory).unwrap();
    for i in 0..5 {
        assert_eq!(call.begin_add(i, 1), S_OK);
        assert_eq!(call.finish_add(), (S_OK, i + 1));
    }
}

#[test]
fn a_failed_call_returns_default_out_parameters() {
    let server = ManualHandler::<ICalculatorCalls>::new();
    let factory = StdCallFactory::with_handler(server.clone(), FinishMode::Blocking);
    let call = create_call_for::<dyn AsyncICalculator>(&*factory).unwrap();
    let sink = ManualResetEvent::create();
    assert_eq!(call.begin_echo_sink(sink.clone()), S_OK);
    let (pending, input) = server.take().unwrap();
    let ICalculatorIn::EchoSink { sink: got } = input else {
        panic!("another method: {input:?}");
    };
    assert!(ComPtr::ptr_eq(&got, &sink));
    drop(got);
    pending.fail(E_ACCESSDENIED);
    let (hr, same, count) = call.finish_echo_sink();
    assert_eq!(hr, E_ACCESSDENIED);
    assert!(
        same.is_none(),
        "a failed Finish_ leaves the pointer out-parameter None"
    );
    assert_eq!(count, 0);
    assert_eq!(sink.ref_count(), 1);

    assert_eq!(call.begin_receipt(Note("x".into())), S_OK);
    let (pending, _input) = server.take().unwrap();
    pending.complete(
        S_OK,
        ICalculatorOut::GetReceipt {
            receipt: Receipt {
                id: 7,
                text: "seven".into(),
            },
        },
    );
    let (hr, receipt) = call.finish_receipt();
    assert_eq!((hr, receipt.id, receipt.text.as_str()), (S_OK, 7, "seven"));
}

// ---------------------------------------------------------------------------------------------
// A server-side call object, as Microsoft's samples write one, made by #[implement] and hosted
// aggregated under ServerCallHost (COM's stub) and the test kit.

#[comasync::implement(AsyncICalculator)]
struct CalculatorCall {
    /// The stored result of the call in progress (`None`: idle).
    result: Mutex<Option<(HRESULT, i32)>>,
}

impl CalculatorCall_Impl {
    /// `Begin_`: busy check, reset the outer's `ISynchronize`, do the work, signal it.
    fn start(&self, result: (HRESULT, i32)) -> HRESULT {
        {
            let mut slot = self.result.lock().unwrap();
            if slot.is_some() {
                return RPC_S_CALLPENDING;
            }
            *slot = Some(result);
        }
        // Through the delegating IUnknown: the outer's (the stub's) ISynchronize.
        let Ok(sync) = query::<dyn ISynchronize>(self) else {
            return E_UNEXPECTED;
        };
        let _ = sync.reset();
        let _ = sync.signal(); // no lock held: the stub calls Finish_ from here
        S_OK
    }

    /// `Finish_`: the stored result, once.
    fn take(&self) -> (HRESULT, i32) {
        self.result
            .lock()
            .unwrap()
            .take()
            .unwrap_or((RPC_E_CALL_COMPLETE, 0))
    }
}

impl AsyncICalculator for CalculatorCall_Impl {
    fn begin_add(&self, a: i32, b: i32) -> HRESULT {
        self.start((S_OK, a.wrapping_add(b)))
    }
    fn finish_add(&self) -> (HRESULT, i32) {
        self.take()
    }
    fn begin_advise(&self, _sink: ComPtr<dyn ISynchronize>) -> HRESULT {
        self.start((E_NOTIMPL, 0))
    }
    fn finish_advise(&self) -> HRESULT {
        self.take().0
    }
    fn begin_receipt(&self, _note: Note) -> HRESULT {
        self.start((E_NOTIMPL, 0))
    }
    fn finish_receipt(&self) -> (HRESULT, Receipt) {
        (self.take().0, Receipt::default())
    }
    fn begin_echo_sink(&self, _sink: ComPtr<dyn ISynchronize>) -> HRESULT {
        self.start((E_NOTIMPL, 0))
    }
    fn finish_echo_sink(&self) -> (HRESULT, Option<ComPtr<dyn ISynchronize>>, u32) {
        (self.take().0, None, 0)
    }
}

fn new_call_object() -> CalculatorCall {
    CalculatorCall {
        result: Mutex::new(None),
    }
}

#[test]
fn an_implemented_server_call_object_under_server_call_host() {
    let host =
        ServerCallHost::<ICalculatorCalls>::new(|outer| new_call_object().into_aggregated(outer))
            .unwrap();
    let riid = <dyn AsyncICalculator as Interface>::IID;
    let mut slot: Option<ComPtr<dyn AsyncICalculator>> = None;
    let hr = create_call::<ICalculatorCalls>(
        &riid,
        None,
        &riid,
        Some(&mut slot),
        host,
        FinishMode::Blocking,
    );
    assert_eq!(hr, S_OK);
    let call = slot.unwrap();
    assert_eq!(call.begin_add(20, 22), S_OK);
    assert_eq!(call.finish_add(), (S_OK, 42));
    assert_eq!(call.begin_receipt(Note("n".into())), S_OK);
    let (hr, receipt) = call.finish_receipt();
    assert_eq!((hr, receipt.id), (E_NOTIMPL, 0));
}

/// A server whose call objects are refused before any argument is looked at.
#[comasync::implement(ICallFactory)]
struct Refusing;

impl CallServer for Refusing_Impl {
    type Calls = ICalculatorCalls;
    fn call_handler(&self) -> ServedBy<ICalculatorCalls> {
        Err(E_ACCESSDENIED)
    }
}

#[test]
fn a_call_server_s_refusal_is_what_create_call_returns() {
    let factory = Refusing.into_object().query::<dyn ICallFactory>().unwrap();
    let riid = <dyn AsyncICalculator as Interface>::IID;
    let mut slot: Option<ComPtr<dyn AsyncICalculator>> = None;
    assert_eq!(
        factory.create_call(&riid, None, &riid, Some(&mut slot)),
        E_ACCESSDENIED
    );
    assert_eq!(
        factory.create_call(&riid, None, &riid, None),
        E_ACCESSDENIED,
        "refused before CreateCall's own argument checks"
    );
    assert!(slot.is_none());
}

/// A server whose own server-side call object is made only aggregated, as the stub makes it.
#[comasync::implement(ICallFactory)]
struct OwnCallObject;

impl ICallFactory for OwnCallObject_Impl {
    fn create_call(
        &self,
        riid: &IID,
        outer: Option<&ComPtr<dyn IUnknown>>,
        riid2: &IID,
        ppv: Option<&mut dyn Any>,
    ) -> HRESULT {
        create_aggregated_call::<dyn AsyncICalculator>(riid, outer, riid2, ppv, |outer| {
            new_call_object().into_aggregated(outer)
        })
    }
}

#[test]
fn create_aggregated_call_makes_only_an_aggregated_call_object() {
    let factory = OwnCallObject
        .into_object()
        .query::<dyn ICallFactory>()
        .unwrap();
    let riid = <dyn AsyncICalculator as Interface>::IID;
    let outer = PlainObject::create();
    let mut inner: Option<ComPtr<dyn IUnknown>> = None;
    assert_eq!(
        factory.create_call(&riid, Some(&outer), &IID_IUnknown, None),
        E_POINTER
    );
    assert_eq!(
        factory.create_call(&riid, None, &IID_IUnknown, Some(&mut inner)),
        E_INVALIDARG,
        "not aggregated"
    );
    let sync_iid = <dyn ICalculator as Interface>::IID;
    assert_eq!(
        factory.create_call(&sync_iid, Some(&outer), &IID_IUnknown, Some(&mut inner)),
        E_INVALIDARG,
        "not its asynchronous interface"
    );
    assert_eq!(
        factory.create_call(&riid, Some(&outer), &riid, Some(&mut inner)),
        E_INVALIDARG,
        "aggregated, only IID_IUnknown"
    );
    assert!(inner.is_none());
    assert_eq!(
        factory.create_call(&riid, Some(&outer), &IID_IUnknown, Some(&mut inner)),
        S_OK
    );
    assert!(inner.is_some());

    // As the stub makes it: under a ServerCallHost, a whole call.
    let host = ServerCallHost::<ICalculatorCalls>::from_call_factory(&*factory).unwrap();
    let client_factory = StdCallFactory::with_handler(host, FinishMode::Blocking);
    let call = create_call_for::<dyn AsyncICalculator>(&*client_factory).unwrap();
    assert_eq!(call.begin_add(40, 2), S_OK);
    assert_eq!(call.finish_add(), (S_OK, 42));
}

#[test]
fn the_test_kit_checks_an_implemented_server_call_object_without_clone_parameters() {
    use proptest::prelude::*;
    let kit = ServerKit::<ICalculatorCalls>::new(
        |outer| new_call_object().into_aggregated(outer),
        (any::<i32>(), any::<i32>()).prop_map(|(a, b)| ICalculatorIn::Add { a, b }),
    )
    .oracle(|input| match input {
        ICalculatorIn::Add { a, b } => (
            S_OK,
            ICalculatorOut::Add {
                sum: a.wrapping_add(*b),
            },
        ),
        other => panic!("the strategy makes Add only: {other:?}"),
    })
    // This server finishes its work regardless of a cancel (COM allows it).
    .rules(Rules {
        require_cancel_check: false,
    });
    let steps = kit
        .check([
            ServerOp::Begin {
                input: ICalculatorIn::Add { a: 1, b: 2 },
                cancelled: false,
            },
            ServerOp::Begin {
                input: ICalculatorIn::Add { a: 5, b: 5 },
                cancelled: false,
            },
            ServerOp::Finish(0),
            ServerOp::Finish(0),
        ])
        .unwrap_or_else(|d| panic!("{d}"));
    assert_eq!(steps.len(), 5, "{steps:#?}");
    assert!(steps[1].ends_with("RPC_S_CALLPENDING"), "{}", steps[1]);
    assert!(
        steps[3].contains("S_OK") && steps[3].contains("sum: 3"),
        "{}",
        steps[3]
    );
    assert!(steps[4].contains("RPC_E_CALL_COMPLETE"), "{}", steps[4]);
    kit.run_proptest(32).unwrap_or_else(|f| panic!("{f}"));

    // A wrong oracle is caught, comparing the non-PartialEq out-parameters by Debug text.
    let wrong = ServerKit::<ICalculatorCalls>::new(
        |outer| new_call_object().into_aggregated(outer),
        Just(()).prop_map(|()| ICalculatorIn::Add { a: 1, b: 1 }),
    )
    .oracle(|_| (S_OK, ICalculatorOut::Add { sum: 3 }));
    let departure = wrong
        .check([
            ServerOp::Begin {
                input: ICalculatorIn::Add { a: 1, b: 1 },
                cancelled: false,
            },
            ServerOp::Finish(0),
        ])
        .expect_err("1 + 1 is not 3");
    assert!(
        departure
            .rule
            .contains("what the synchronous method returns"),
        "{departure}"
    );
}

// ---------------------------------------------------------------------------------------------
// #[implement] with `more`, and aggregation.

#[comasync::implement(ICalculator, more = Gated_Impl::maybe_factory)]
struct Gated {
    async_ok: bool,
}

impl ICalculator for Gated_Impl {
    fn add(&self, a: i32, b: i32) -> (HRESULT, i32) {
        (S_OK, a + b)
    }
    fn advise(&self, _sink: ComPtr<dyn ISynchronize>) -> HRESULT {
        E_NOTIMPL
    }
    fn receipt(&self, _note: Note) -> (HRESULT, Receipt) {
        (E_NOTIMPL, Receipt::default())
    }
    fn echo_sink(
        &self,
        _sink: ComPtr<dyn ISynchronize>,
    ) -> (HRESULT, Option<ComPtr<dyn ISynchronize>>, u32) {
        (E_NOTIMPL, None, 0)
    }
}

impl Gated_Impl {
    /// `ICallFactory` only when asynchronous calls are allowed: a `StdCallFactory` over this
    /// very object.
    fn maybe_factory(&self, me: &Arc<Self>, iid: &IID, ppv: &mut dyn Any) -> HRESULT {
        if *iid != <dyn ICallFactory as Interface>::IID || !self.async_ok {
            return E_NOINTERFACE;
        }
        let object = ComPtr::new(me.clone() as Arc<dyn ICalculator>);
        let factory = StdCallFactory::<ICalculatorCalls>::create(
            object,
            Pool::global(),
            FinishMode::Blocking,
        );
        set_out::<dyn ICallFactory>(ppv, factory)
    }
}

#[test]
fn more_answers_interfaces_conditionally() {
    let no = Gated { async_ok: false }.into_object();
    assert_eq!(
        no.query::<dyn ICallFactory>().unwrap_err().code(),
        E_NOINTERFACE
    );
    let yes = Gated { async_ok: true }.into_object();
    let factory = yes.query::<dyn ICallFactory>().unwrap();
    let call = create_call_for::<dyn AsyncICalculator>(&*factory).unwrap();
    assert_eq!(call.begin_add(1, 2), S_OK);
    assert_eq!(call.finish_add(), (S_OK, 3));
}

#[test]
fn an_implemented_object_can_be_aggregated() {
    let outer = PlainObject::create();
    let inner = Calculator::new().into_aggregated(Arc::downgrade(outer.as_arc()));
    assert_eq!(
        inner.nd_add_ref(),
        1,
        "the outer's reference: the inner's own count"
    );
    let mut slot: Option<ComPtr<dyn ICalculator>> = None;
    assert_eq!(
        inner.nd_query_interface(&<dyn ICalculator as Interface>::IID, &mut slot),
        S_OK
    );
    let calc = slot.unwrap();
    assert_eq!(calc.add(1, 1), (S_OK, 2));
    // Its IUnknown is the outer's, and its AddRef counts on the outer.
    let unk = calc.query::<dyn IUnknown>().unwrap();
    assert!(ComPtr::is_same_object(&unk, &outer));
    assert_eq!(outer.ref_count(), 3); // outer, calc, unk
    drop((unk, calc));
    assert_eq!(outer.ref_count(), 1);
    assert_eq!(inner.nd_release(), 0);
}
