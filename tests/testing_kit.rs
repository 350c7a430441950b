//! The user-facing test kit (`comasync::testing::server_kit`) on a server-side call object
//! written the way the Microsoft samples write them — `Begin_` stores the in-parameters, hands
//! the work to a worker and returns `S_OK`; the worker asks `TestCancel` and reaches
//! `ISynchronize` through the outer unknown and signals; errors are stored and returned by
//! `Finish_` — and on deliberately wrong variants of it, whose planted bugs the kit must find.

use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::Duration;

use comasync::call::{create_call, FinishMode, ICancelMethodCalls, ServerCallHost};
use comasync::hresult::*;
use comasync::sync::{ISynchronize, ManualResetEvent, INFINITE};
use comasync::testing::server_kit::{Rules, ServerKit, ServerOp};
use comasync::unknown::{query, ComPtr, INonDelegatingUnknown, IUnknown, Interface};
use proptest::prelude::*;

/// An adding service.
#[comasync::interface(
    iid = "{0F6B1C2D-3E4F-4A5B-9C6D-7E8F9A0B1C2D}",
    async_iid = "{0F6B1C2D-3E4F-4A5B-9C6D-7E8F9A0B1C2E}"
)]
pub trait IAdder {
    /// `a + b` (wrapping).
    #[out(sum)]
    fn add(&self, a: u32, b: u32) -> (HRESULT, u32);
    /// `E_INVALIDARG` for multiples of 3, else `S_OK`.
    fn check(&self, n: u32) -> HRESULT;
}

/// What the synchronous methods return: the kit's oracle.
fn sync_result(input: &IAdderIn) -> (HRESULT, IAdderOut) {
    match *input {
        IAdderIn::Add { a, b } => (
            S_OK,
            IAdderOut::Add {
                sum: a.wrapping_add(b),
            },
        ),
        IAdderIn::Check { n } => (
            if n % 3 == 0 { E_INVALIDARG } else { S_OK },
            IAdderOut::Check {},
        ),
    }
}

fn inputs() -> impl Strategy<Value = IAdderIn> {
    prop_oneof![
        (0u32..1000, 0u32..1000).prop_map(|(a, b)| IAdderIn::Add { a, b }),
        (0u32..10).prop_map(|n| IAdderIn::Check { n }),
    ]
}

/// Planted bugs.
#[derive(Clone, Copy, Debug, Default)]
struct Bugs {
    /// `Finish_` keeps the result: a second `Finish_` returns it again.
    finish_twice: bool,
    /// A busy `Begin_` returns `S_OK` (and does nothing).
    busy_begin_ok: bool,
    /// The worker signals an event of its own instead of the outer's `ISynchronize`.
    signal_own_event: bool,
    /// The worker hears the cancel but still returns its result.
    ignore_cancel: bool,
}

enum Slot {
    Idle,
    Busy {
        result: Option<(HRESULT, IAdderOut)>,
    },
}

/// A copy of an out-parameter set (the generated `IAdderOut` derives only `Debug`).
fn copy_out(out: &IAdderOut) -> IAdderOut {
    match *out {
        IAdderOut::Add { sum } => IAdderOut::Add { sum },
        IAdderOut::Check {} => IAdderOut::Check {},
    }
}

/// A server-side call object for `IAdder`, as the Microsoft samples write one
/// (`#[implement]` makes it a COM object, `AdderCallObject_Impl`).
#[comasync::implement(AsyncIAdder)]
struct AdderCallObject {
    slot: Mutex<Slot>,
    own_event: ComPtr<dyn ISynchronize>,
    bugs: Bugs,
}

impl AdderCallObject {
    /// What `ServerCallHost::new` (and `ServerKit::new`) call: the object aggregated under
    /// `outer`, as its non-delegating unknown.
    fn create(outer: Weak<dyn IUnknown>, bugs: Bugs) -> Arc<dyn INonDelegatingUnknown> {
        AdderCallObject {
            slot: Mutex::new(Slot::Idle),
            own_event: ManualResetEvent::create(),
            bugs,
        }
        .into_aggregated(outer)
    }
}

impl AdderCallObject_Impl {
    /// `Begin_`: store the in-parameters, reset `ISynchronize`, hand the work to a worker,
    /// return `S_OK`.
    fn begin(&self, input: IAdderIn) -> HRESULT {
        {
            let mut slot = self.slot.lock().unwrap();
            if matches!(*slot, Slot::Busy { .. }) {
                return if self.bugs.busy_begin_ok {
                    S_OK
                } else {
                    RPC_S_CALLPENDING
                };
            }
            *slot = Slot::Busy { result: None };
        }
        if let Some(sync) = self.outer_sync() {
            let _ = sync.reset();
        }
        let Some(me) = self.to_arc() else {
            return E_UNEXPECTED;
        };
        thread::spawn(move || me.work(input));
        S_OK
    }

    /// The worker: compute, ask `TestCancel` through the outer, store, `Signal` through the
    /// outer (never holding the lock: the stub calls `Finish_` from inside `Signal`).
    fn work(&self, input: IAdderIn) {
        let mut result = sync_result(&input);
        let cancelled = self
            .refs()
            .outer()
            .and_then(|o| query::<dyn ICancelMethodCalls>(&*o).ok())
            .is_some_and(|c| c.test_cancel() == RPC_E_CALL_CANCELED);
        if cancelled && !self.bugs.ignore_cancel {
            result.0 = RPC_E_CALL_CANCELED;
        }
        if let Slot::Busy { result: r, .. } = &mut *self.slot.lock().unwrap() {
            *r = Some(result);
        }
        if self.bugs.signal_own_event {
            let _ = self.own_event.signal();
        } else if let Some(sync) = self.outer_sync() {
            let _ = sync.signal();
        }
    }

    /// `Finish_`: the stored result, once.
    fn finish(&self) -> (HRESULT, Option<IAdderOut>) {
        let mut slot = self.slot.lock().unwrap();
        match &mut *slot {
            Slot::Idle => (RPC_E_CALL_COMPLETE, None),
            Slot::Busy { result: None, .. } => (RPC_S_CALLPENDING, None),
            Slot::Busy {
                result: Some(r), ..
            } => {
                let r = (r.0, copy_out(&r.1)); // IAdderOut is not Clone: copied by hand
                if !self.bugs.finish_twice {
                    *slot = Slot::Idle;
                }
                (r.0, Some(r.1))
            }
        }
    }

    fn outer_sync(&self) -> Option<ComPtr<dyn ISynchronize>> {
        query::<dyn ISynchronize>(&*self.refs().outer()?).ok()
    }
}

impl AsyncIAdder for AdderCallObject_Impl {
    fn begin_add(&self, a: u32, b: u32) -> HRESULT {
        self.begin(IAdderIn::Add { a, b })
    }
    fn finish_add(&self) -> (HRESULT, u32) {
        match self.finish() {
            (hr, Some(IAdderOut::Add { sum })) => (hr, sum),
            (hr, _) => (hr, 0),
        }
    }
    fn begin_check(&self, n: u32) -> HRESULT {
        self.begin(IAdderIn::Check { n })
    }
    fn finish_check(&self) -> HRESULT {
        self.finish().0
    }
}

fn kit(bugs: Bugs) -> ServerKit<IAdderCalls> {
    ServerKit::<IAdderCalls>::new(move |outer| AdderCallObject::create(outer, bugs), inputs())
        .oracle(sync_result)
}

// ---------------------------------------------------------------------------------------------

#[test]
fn the_kit_passes_a_correct_sample_style_server_object() {
    if let Err(failure) = kit(Bugs::default()).run_proptest(64) {
        panic!("\n{failure}");
    }
}

#[test]
fn the_kit_finds_a_finish_that_returns_the_result_twice() {
    let failure = kit(Bugs {
        finish_twice: true,
        ..Bugs::default()
    })
    .run_proptest(64)
    .expect_err("the planted bug must be found");
    println!("{failure}");
    // Found either as a second Finish_ that returns the result again, or as the next Begin_
    // finding the object still busy; the kit names the cause either way.
    let rule = &failure.departure.rule;
    assert!(
        rule.contains("RPC_E_CALL_COMPLETE") || rule.contains("Finish_ must end the call"),
        "{failure}"
    );
    // Shrunk to Begin_, Finish_, Finish_ or Begin_, Finish_, Begin_: tiny.
    assert!(failure.minimal.len() <= 3, "{failure}");
}

#[test]
fn the_kit_finds_a_busy_begin_that_returns_s_ok() {
    let failure = kit(Bugs {
        busy_begin_ok: true,
        ..Bugs::default()
    })
    .run_proptest(64)
    .expect_err("the planted bug must be found");
    println!("{failure}");
    assert!(
        failure.departure.rule.contains("RPC_S_CALLPENDING"),
        "{failure}"
    );
    assert_eq!(failure.minimal.len(), 2, "{failure}");
}

#[test]
fn the_kit_finds_a_server_that_ignores_a_cancel_it_heard() {
    let failure = kit(Bugs {
        ignore_cancel: true,
        ..Bugs::default()
    })
    .run_proptest(64)
    .expect_err("the planted bug must be found");
    println!("{failure}");
    assert!(failure.departure.rule.contains("TestCancel"), "{failure}");
}

#[test]
fn the_kit_finds_a_server_that_signals_its_own_event_instead_of_the_outer() {
    // A fixed sequence (a missing Signal costs the whole signal timeout, so no shrinking).
    let kit = kit(Bugs {
        signal_own_event: true,
        ..Bugs::default()
    })
    .signal_timeout(Duration::from_millis(300));
    let ops = [
        ServerOp::<IAdderCalls>::Begin {
            input: IAdderIn::Add { a: 1, b: 2 },
            cancelled: false,
        },
        ServerOp::AwaitSignal,
    ];
    let departure = kit.check(ops).expect_err("the planted bug must be found");
    println!("{departure}");
    assert!(departure.rule.contains("OUTER"), "{departure}");
    assert_eq!(departure.at, 1);
}

#[test]
fn the_kit_reports_a_passing_run_step_by_step() {
    let steps = kit(Bugs::default())
        .check([
            ServerOp::Finish(0),
            ServerOp::Begin {
                input: IAdderIn::Check { n: 3 },
                cancelled: false,
            },
            ServerOp::Begin {
                input: IAdderIn::Add { a: 1, b: 1 },
                cancelled: false,
            },
            ServerOp::Finish(1),
            ServerOp::Begin {
                input: IAdderIn::Add { a: 1, b: 1 },
                cancelled: true,
            },
        ])
        .unwrap();
    let text = steps.join("\n");
    assert!(
        text.contains("Finish_ (Finish_Add if idle) → RPC_E_CALL_COMPLETE"),
        "{text}"
    );
    assert!(text.contains("E_INVALIDARG"), "{text}");
    assert!(text.contains("RPC_S_CALLPENDING"), "{text}");
    assert!(text.contains("RPC_E_CALL_CANCELED"), "{text}");
}

#[test]
fn a_server_that_never_asks_test_cancel_passes_when_the_rule_is_off() {
    // Bugs::ignore_cancel still *asks* TestCancel; a server that never asks is modelled by
    // turning the rule off and checking that the kit then accepts the plain result.
    let kit = kit(Bugs::default()).rules(Rules {
        require_cancel_check: false,
    });
    assert!(kit.run_proptest(16).is_ok());
}

#[test]
fn the_sample_server_works_end_to_end_under_server_call_host() {
    let host =
        ServerCallHost::<IAdderCalls>::new(|outer| AdderCallObject::create(outer, Bugs::default()))
            .expect("the object answers AsyncIAdder");
    let mut slot: Option<ComPtr<dyn AsyncIAdder>> = None;
    let iid = <dyn AsyncIAdder as Interface>::IID;
    assert_eq!(
        create_call::<IAdderCalls>(
            &iid,
            None,
            &iid,
            Some(&mut slot),
            host,
            FinishMode::Blocking
        ),
        S_OK
    );
    let call = slot.unwrap();
    let sync = call.query::<dyn ISynchronize>().unwrap();
    for (a, b) in [(2, 3), (40, 2)] {
        assert_eq!(call.begin_add(a, b), S_OK);
        assert_eq!(sync.wait(0, INFINITE), S_OK);
        assert_eq!(call.finish_add(), (S_OK, a + b));
    }
    assert_eq!(call.begin_check(9), S_OK);
    assert_eq!(call.finish_check(), E_INVALIDARG);
}
