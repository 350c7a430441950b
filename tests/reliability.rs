//! Regression tests for the reliability review (issue 9): each test is named after the rule it
//! restores, and failed (hung, panicked or asserted) before the fix.
//!
//! A few tests give a buggy implementation a bounded chance to show its bug before they go
//! on ([`probe`]): the fixed implementation passes whatever the scheduling; only the
//! sensitivity to the old bug depends on it. The loom models in `tests/loom_call.rs` check
//! the same orderings exhaustively.

mod common;

use std::any::Any;
use std::cell::RefCell;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::{Duration, Instant};

use comasync::call::{
    create_call, create_call_as, CallHandler, FinishMode, ICallFactory, ICancelMethodCalls,
    InlineHandler, ManualHandler, Pool, SyncMethodHandler, RPC_C_CANCEL_INFINITE_TIMEOUT,
};
use comasync::guid::{IID_IUnknown, IID};
use comasync::hresult::*;
use comasync::sample_server::SampleServer;
use comasync::simple_stream::{AsyncISimpleStream, SimpleStream};
use comasync::sync::{co_wait_for_multiple_handles, ISynchronize, ISynchronizeHandle, INFINITE};
use comasync::unknown::{ComPtr, IUnknown, Interface, RefCount};
use common::{eventually, live_here, within, Token};

/// A service whose one method turns a token into a token.
#[comasync::interface(
    iid = "{7A1B2C3D-4E5F-4071-8293-A4B5C6D7E8F1}",
    async_iid = "{7A1B2C3D-4E5F-4071-8293-A4B5C6D7E8F2}",
    // Test-local parameter types: no scenario-script glue.
    scripts = false
)]
pub trait IWork {
    /// Answers a token carrying `id`.
    #[out(token)]
    fn work(&self, id: u64) -> (HRESULT, Token);
    /// Answers a probe whose drop runs this thread's armed callback.
    #[out(p)]
    fn probe(&self) -> (HRESULT, DropProbe);
}

const ASYNC_IWORK: IID = <dyn AsyncIWork as Interface>::IID;

thread_local! {
    static ON_DROP: RefCell<Option<Box<dyn Fn()>>> = const { RefCell::new(None) };
}

/// An out-parameter whose `Drop` runs the callback armed on the dropping thread (user code,
/// which must never run under a call object's lock).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DropProbe(u32);

impl Drop for DropProbe {
    fn drop(&mut self) {
        ON_DROP.with(|f| {
            if let Some(f) = &*f.borrow() {
                f();
            }
        });
    }
}

/// Returns once `cond` holds or `limit` passed, whichever is first. Used only to give an old,
/// buggy implementation the chance to show its bug; the fixed one passes either way.
fn probe(limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() && start.elapsed() < limit {
        thread::yield_now();
    }
}

// ---------------------------------------------------------------------------------------
// An aggregating outer whose Signal and Reset are the test's.

type Hook = Box<dyn Fn(&TestOuter) -> HRESULT + Send + Sync>;

/// A client's controlling unknown that implements `ISynchronize` with the test's hooks, logs
/// what the call object asks of it, and counts its final releases.
pub struct TestOuter {
    refs: RefCount,
    me: Weak<TestOuter>,
    inner: Mutex<Option<ComPtr<dyn IUnknown>>>,
    on_signal: Hook,
    on_reset: Hook,
    /// "reset", "signal>" (entered) and "signal<" (returned), in order.
    log: Mutex<Vec<&'static str>>,
    signaled: AtomicBool,
    final_releases: AtomicU32,
    /// Whether the final release lets go of the inner call object (as a correct outer does).
    releases_inner: bool,
}

impl TestOuter {
    fn new(on_signal: Hook, on_reset: Hook, releases_inner: bool) -> Arc<TestOuter> {
        Arc::new_cyclic(|me| TestOuter {
            refs: RefCount::new(),
            me: me.clone(),
            inner: Mutex::new(None),
            on_signal,
            on_reset,
            log: Mutex::new(Vec::new()),
            signaled: AtomicBool::new(false),
            final_releases: AtomicU32::new(0),
            releases_inner,
        })
    }

    /// Creates an aggregated call object under `outer` served by `handler`; returns the
    /// outer's pointer (count 1) and the call's asynchronous interface.
    fn aggregate(
        outer: &Arc<TestOuter>,
        handler: Arc<dyn CallHandler<IWorkCalls>>,
    ) -> (ComPtr<dyn IUnknown>, ComPtr<dyn AsyncIWork>) {
        let unk: ComPtr<dyn IUnknown> = ComPtr::new(outer.clone() as Arc<dyn IUnknown>);
        let mut inner: Option<ComPtr<dyn IUnknown>> = None;
        let hr = create_call::<IWorkCalls>(
            &ASYNC_IWORK,
            Some(&unk),
            &IID_IUnknown,
            Some(&mut inner),
            handler,
            FinishMode::Blocking,
        );
        assert_eq!(hr, S_OK);
        *outer.inner.lock().unwrap() = inner;
        let call = unk.query::<dyn AsyncIWork>().unwrap();
        (unk, call)
    }

    fn log(&self) -> Vec<&'static str> {
        self.log.lock().unwrap().clone()
    }

    fn call(&self) -> Option<ComPtr<dyn AsyncIWork>> {
        self.inner.lock().unwrap().as_ref()?.query().ok()
    }
}

impl ISynchronize for TestOuter {
    fn wait(&self, _flags: u32, _timeout_ms: u32) -> HRESULT {
        if self.signaled.load(Ordering::SeqCst) {
            S_OK
        } else {
            RPC_S_CALLPENDING
        }
    }
    fn signal(&self) -> HRESULT {
        self.log.lock().unwrap().push("signal>");
        let hr = (self.on_signal)(self);
        self.signaled.store(true, Ordering::SeqCst);
        self.log.lock().unwrap().push("signal<");
        hr
    }
    fn reset(&self) -> HRESULT {
        self.log.lock().unwrap().push("reset");
        self.signaled.store(false, Ordering::SeqCst);
        (self.on_reset)(self)
    }
}

impl TestOuter {
    fn inner_interfaces(&self, _me: &Arc<Self>, iid: &IID, ppv: &mut dyn Any) -> HRESULT {
        match self.inner.lock().unwrap().clone() {
            Some(inner) => inner.query_interface(iid, ppv),
            None => E_NOINTERFACE,
        }
    }
    fn final_release(&self) {
        self.final_releases.fetch_add(1, Ordering::SeqCst);
        if self.releases_inner {
            self.inner.lock().unwrap().take();
        }
    }
}

comasync::com_object!([] TestOuter {
    interfaces: [dyn ISynchronize],
    more: TestOuter::inner_interfaces,
    final_release: TestOuter::final_release,
});

fn ok() -> Hook {
    Box::new(|_| S_OK)
}

/// A gate a hook waits at until the test opens it.
#[derive(Clone, Default)]
struct Gate(Arc<(Mutex<bool>, std::sync::Condvar, AtomicU32)>);

impl Gate {
    fn wait(&self) {
        self.0 .2.fetch_add(1, Ordering::SeqCst);
        let mut open = self.0 .0.lock().unwrap();
        while !*open {
            open = self.0 .1.wait(open).unwrap();
        }
    }
    fn arrived(&self) -> u32 {
        self.0 .2.load(Ordering::SeqCst)
    }
    fn open(&self) {
        *self.0 .0.lock().unwrap() = true;
        self.0 .1.notify_all();
    }
}

/// A `Work` server completing each call with `Token(id)`, on the calling thread.
fn inline_work() -> Arc<dyn CallHandler<IWorkCalls>> {
    Arc::new(InlineHandler(|input: IWorkIn| match input {
        IWorkIn::Work { id } => (
            S_OK,
            IWorkOut::Work {
                token: Token::new(id),
            },
        ),
        IWorkIn::Probe {} => (S_OK, IWorkOut::Probe { p: DropProbe(1) }),
    }))
}

fn complete_work(handler: &ManualHandler<IWorkCalls>) {
    let (call, input) = handler.take().expect("a begun call");
    let IWorkIn::Work { id } = input else {
        panic!("not a Work call")
    };
    call.complete(
        S_OK,
        IWorkOut::Work {
            token: Token::new(id),
        },
    );
}

/// A call object (not aggregated) for `IWork` served by `handler`.
fn work_call(handler: Arc<dyn CallHandler<IWorkCalls>>) -> ComPtr<dyn AsyncIWork> {
    let mut slot: Option<ComPtr<dyn AsyncIWork>> = None;
    let hr = create_call::<IWorkCalls>(
        &ASYNC_IWORK,
        None,
        &ASYNC_IWORK,
        Some(&mut slot),
        handler,
        FinishMode::Blocking,
    );
    assert_eq!(hr, S_OK);
    slot.unwrap()
}

// ---------------------------------------------------------------------------------------
// Finding 1: the outer never sees call N's Signal after call N+1's Reset.

#[test]
fn outer_signal_of_a_call_never_lands_after_the_next_calls_reset() {
    within("stale outer Signal", || {
        let gate = Gate::default();
        let g = gate.clone();
        let outer = TestOuter::new(
            Box::new(move |_| {
                g.wait();
                S_OK
            }),
            ok(),
            true,
        );
        let handler = ManualHandler::<IWorkCalls>::new();
        let (_unk, call) = TestOuter::aggregate(&outer, handler.clone());
        assert_eq!(call.begin_work(1), S_OK);
        // The server completes call 1 on its own thread; the outer's Signal is slow.
        let h = handler.clone();
        let server = thread::spawn(move || complete_work(&h));
        eventually("the outer's Signal is running", || gate.arrived() == 1);
        // The client sees the call complete (its state) and finishes it...
        assert_eq!(call.finish_work().0, S_OK);
        // ...and begins the next call while call 1's Signal is still running.
        let c2 = call.clone();
        let begin2 = thread::spawn(move || c2.begin_work(2));
        probe(Duration::from_millis(200), || outer.log().len() > 2);
        gate.open();
        assert_eq!(begin2.join().unwrap(), S_OK);
        server.join().unwrap();
        assert_eq!(
            outer.log(),
            ["reset", "signal>", "signal<", "reset"],
            "call 2's Reset came before call 1's Signal returned"
        );
        // The outer reads call 2 as not yet complete.
        assert_eq!(outer.wait(0, 0), RPC_S_CALLPENDING);
        complete_work(&handler);
        assert_eq!(call.finish_work().1.id(), 2);
    });
}

#[test]
fn a_stale_completion_callback_cannot_deadlock_the_next_call_on_a_one_worker_pool() {
    within("completion callback on a one-worker pool", || {
        let gate = Gate::default();
        let g = gate.clone();
        let results = Arc::new(Mutex::new(Vec::new()));
        let r = results.clone();
        // The callback client of examples/completion_callback.rs: Finish_ inside Signal.
        let outer = TestOuter::new(
            Box::new(move |o| {
                g.wait();
                if let Some(call) = o.call() {
                    let (hr, token) = call.finish_work();
                    r.lock().unwrap().push((hr, token.id()));
                }
                S_OK
            }),
            ok(),
            true,
        );
        let pool = Pool::new(1);
        let server = WorkServer_Impl::new(WorkServer::default(), None);
        let handler = SyncMethodHandler::<IWorkCalls>::new(
            ComPtr::new(server.clone() as Arc<dyn IWork>),
            pool,
        );
        let (_unk, call) = TestOuter::aggregate(&outer, handler);
        assert_eq!(call.begin_work(1), S_OK);
        eventually("call 1's Signal is running", || gate.arrived() == 1);
        // The client finishes call 1 itself and begins call 2, whose method needs the only
        // worker — the one running call 1's Signal.
        assert_eq!(call.finish_work().0, S_OK);
        let c2 = call.clone();
        let begin2 = thread::spawn(move || c2.begin_work(2));
        probe(Duration::from_millis(200), || outer.log().len() > 2);
        gate.open();
        assert_eq!(begin2.join().unwrap(), S_OK);
        eventually("call 2's callback", || results.lock().unwrap().len() == 2);
        let results = results.lock().unwrap().clone();
        // Call 1's late callback finds no call to finish; call 2's gets call 2's result.
        assert_eq!(results[0].0, RPC_E_CALL_COMPLETE);
        assert_eq!(results[1], (S_OK, 2));
    });
}

#[comasync::implement(IWork)]
#[derive(Default)]
struct WorkServer {
    ran: Mutex<Vec<u64>>,
    /// The client's call object, for a method that calls back into it.
    call: Mutex<Option<ComPtr<dyn AsyncIWork>>>,
    /// What the method does with that call object: 0 nothing, 1 Finish_, 2 Cancel(INFINITE),
    /// 3 Wait(INFINITE) on its ISynchronize.
    reenter: AtomicU32,
    reentered: Mutex<Vec<HRESULT>>,
}

impl IWork for WorkServer_Impl {
    fn work(&self, id: u64) -> (HRESULT, Token) {
        self.ran.lock().unwrap().push(id);
        let call = self.call.lock().unwrap().clone();
        if let Some(call) = call {
            let hr = match self.reenter.load(Ordering::SeqCst) {
                1 => call.finish_work().0,
                2 => call
                    .query::<dyn ICancelMethodCalls>()
                    .unwrap()
                    .cancel(RPC_C_CANCEL_INFINITE_TIMEOUT),
                3 => call.query::<dyn ISynchronize>().unwrap().wait(0, INFINITE),
                _ => S_OK,
            };
            self.reentered.lock().unwrap().push(hr);
        }
        (S_OK, Token::new(id))
    }
    fn probe(&self) -> (HRESULT, DropProbe) {
        (S_OK, DropProbe(0))
    }
}

fn work_server() -> Arc<WorkServer_Impl> {
    WorkServer_Impl::new(WorkServer::default(), None)
}

// ---------------------------------------------------------------------------------------
// Finding 2: a late server-side Signal completes only its own call.

#[test]
fn a_late_server_signal_never_completes_the_next_call() {
    within("late server signal", || {
        let pool = Pool::new(1);
        let gate = Gate::default();
        let g = gate.clone();
        pool.execute(move || g.wait()); // the server's worker is busy until the gate opens
        let server = SampleServer::create_on(b"hello, world".to_vec(), pool);
        let factory = server.query::<dyn ICallFactory>().unwrap();
        let call = create_call_as::<dyn AsyncISimpleStream>(
            &*factory,
            &<dyn AsyncISimpleStream as Interface>::IID,
        )
        .unwrap();
        let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
        assert_eq!(call.begin_read(5), S_OK);
        assert_eq!(cancel.cancel(0), S_OK);
        assert_eq!(call.finish_read().0, RPC_E_CALL_CANCELED);
        // Call 2 is begun while the server still works on call 1.
        assert_eq!(call.begin_read(4), S_OK);
        gate.open();
        // Call 1's late Signal completes call 1 (dropped), then call 2 runs.
        assert_eq!(call.finish_read(), (S_OK, b"hell".to_vec()));
        assert_eq!(call.begin_read(3), S_OK);
        assert_eq!(call.finish_read(), (S_OK, b"o, ".to_vec()));
    });
}

// ---------------------------------------------------------------------------------------
// Finding 3: no reference cycle keeps a released call object alive.

#[test]
fn a_released_call_object_is_freed_although_its_queued_call_was_never_completed() {
    let before = live_here();
    let handler = ManualHandler::<IWorkCalls>::new();
    let call = work_call(handler.clone());
    let memory = Arc::downgrade(call.as_arc());
    assert_eq!(call.begin_work(7), S_OK);
    assert_eq!(handler.pending(), 1);
    let handler_memory = Arc::downgrade(&handler);
    drop(handler); // the server goes away with the call still queued
    drop(call); // and the client releases
    assert!(memory.upgrade().is_none(), "the call object leaked");
    assert!(handler_memory.upgrade().is_none(), "the handler leaked");
    assert_eq!(live_here(), before);
}

#[test]
fn a_released_call_object_is_freed_while_its_server_call_object_never_signals() {
    within("server that never signals", || {
        let pool = Pool::new(1);
        let gate = Gate::default();
        let g = gate.clone();
        pool.execute(move || g.wait()); // the server's work never runs while the gate is shut
        let server = SampleServer::create_on(b"data".to_vec(), pool);
        let factory = server.query::<dyn ICallFactory>().unwrap();
        let call = create_call_as::<dyn AsyncISimpleStream>(
            &*factory,
            &<dyn AsyncISimpleStream as Interface>::IID,
        )
        .unwrap();
        let memory = Arc::downgrade(call.as_arc());
        assert_eq!(call.begin_read(2), S_OK);
        drop(call);
        assert!(memory.upgrade().is_none(), "the call object leaked");
        gate.open();
    });
}

// ---------------------------------------------------------------------------------------
// Finding 4: a panicking outer Reset fails Begin_ and leaves the call object usable.

#[test]
fn a_panicking_outer_reset_fails_begin_with_e_unexpected_and_leaves_the_call_idle() {
    let panics = Arc::new(AtomicBool::new(true));
    let p = panics.clone();
    let outer = TestOuter::new(
        ok(),
        Box::new(move |_| {
            if p.load(Ordering::SeqCst) {
                panic!("the outer's Reset panics");
            }
            S_OK
        }),
        true,
    );
    let (_unk, call) = TestOuter::aggregate(&outer, inline_work());
    assert_eq!(call.begin_work(1), E_UNEXPECTED);
    assert_eq!(
        call.finish_work().0,
        RPC_E_CALL_COMPLETE,
        "no call is in progress"
    );
    panics.store(false, Ordering::SeqCst);
    assert_eq!(call.begin_work(2), S_OK);
    assert_eq!(call.finish_work().1.id(), 2);
}

#[test]
fn a_failing_outer_reset_fails_begin_with_its_hresult() {
    let outer = TestOuter::new(ok(), Box::new(|_| E_FAIL), true);
    let (_unk, call) = TestOuter::aggregate(&outer, inline_work());
    assert_eq!(call.begin_work(1), E_FAIL);
    assert_eq!(call.finish_work().0, RPC_E_CALL_COMPLETE);
}

#[test]
fn a_panicking_outer_signal_fails_the_call_with_e_unexpected() {
    let outer = TestOuter::new(Box::new(|_| panic!("Signal panics")), ok(), true);
    let (_unk, call) = TestOuter::aggregate(&outer, inline_work());
    assert_eq!(call.begin_work(1), S_OK);
    assert_eq!(call.finish_work().0, E_UNEXPECTED);
    assert_eq!(call.begin_work(2), S_OK, "the call object is reusable");
}

// ---------------------------------------------------------------------------------------
// Finding 5: no user code runs under the call object's lock.

#[test]
fn a_result_replaced_by_a_failing_outer_signal_is_dropped_outside_the_lock() {
    within("out-parameter drop under the lock", || {
        let outer = TestOuter::new(Box::new(|_| E_FAIL), ok(), true);
        let handler = ManualHandler::<IWorkCalls>::new();
        let (_unk, call) = TestOuter::aggregate(&outer, handler.clone());
        let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
        assert_eq!(call.begin_probe(), S_OK);
        // The replaced out-parameter's Drop calls into the call object.
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        ON_DROP.with(|f| {
            *f.borrow_mut() = Some(Box::new(move || {
                s.lock().unwrap().push(cancel.test_cancel())
            }))
        });
        let (server_call, _) = handler.take().unwrap();
        server_call.complete(S_OK, IWorkOut::Probe { p: DropProbe(7) });
        ON_DROP.with(|f| f.borrow_mut().take());
        assert_eq!(*seen.lock().unwrap(), [RPC_S_CALLPENDING]);
        assert_eq!(call.finish_probe().0, E_FAIL);
    });
}

// ---------------------------------------------------------------------------------------
// Finding 6: a released outer is never revived.

#[test]
fn completion_never_revives_an_outer_whose_count_reached_zero() {
    // An outer that does not let go of its inner at its final release (so the call object
    // lives on), and whose memory the test keeps.
    let outer = TestOuter::new(ok(), ok(), false);
    let handler = ManualHandler::<IWorkCalls>::new();
    let (unk, call) = TestOuter::aggregate(&outer, handler.clone());
    assert_eq!(call.begin_work(1), S_OK);
    drop((unk, call));
    assert_eq!(outer.final_releases.load(Ordering::SeqCst), 1);
    complete_work(&handler);
    assert_eq!(
        outer.final_releases.load(Ordering::SeqCst),
        1,
        "the completion revived the outer and released it again"
    );
    outer.inner.lock().unwrap().take();
}

// ---------------------------------------------------------------------------------------
// Finding 7: re-entrant calls from a server method return instead of deadlocking.

fn reentrant(mode: u32) -> (Arc<WorkServer_Impl>, ComPtr<dyn AsyncIWork>) {
    let server = work_server();
    server.reenter.store(mode, Ordering::SeqCst);
    let handler = SyncMethodHandler::<IWorkCalls>::new(
        ComPtr::new(server.clone() as Arc<dyn IWork>),
        Pool::new(1),
    );
    let call = work_call(handler);
    *server.call.lock().unwrap() = Some(call.clone());
    (server, call)
}

#[test]
fn a_blocking_finish_from_inside_the_servers_own_method_returns_rpc_s_callpending() {
    within("re-entrant Finish_", || {
        let (server, call) = reentrant(1);
        assert_eq!(call.begin_work(5), S_OK);
        let (hr, token) = call.finish_work();
        assert_eq!((hr, token.id()), (S_OK, 5));
        assert_eq!(*server.reentered.lock().unwrap(), [RPC_S_CALLPENDING]);
        server.call.lock().unwrap().take();
    });
}

#[test]
fn an_infinite_cancel_from_inside_the_servers_own_method_does_not_wait_for_itself() {
    within("re-entrant Cancel(INFINITE)", || {
        let (server, call) = reentrant(2);
        assert_eq!(call.begin_work(5), S_OK);
        assert_eq!(call.finish_work().0, RPC_E_CALL_CANCELED);
        // The cancel completed the call locally; the method returns after it.
        eventually("the method returned", || {
            server.reentered.lock().unwrap().len() == 1
        });
        assert_eq!(*server.reentered.lock().unwrap(), [S_OK]);
        server.call.lock().unwrap().take();
    });
}

#[test]
fn an_infinite_wait_on_its_own_call_from_inside_the_servers_method_returns_rpc_s_callpending() {
    within("re-entrant Wait(INFINITE)", || {
        let (server, call) = reentrant(3);
        assert_eq!(call.begin_work(5), S_OK);
        assert_eq!(call.finish_work().1.id(), 5);
        assert_eq!(*server.reentered.lock().unwrap(), [RPC_S_CALLPENDING]);
        server.call.lock().unwrap().take();
    });
}

// ---------------------------------------------------------------------------------------
// Finding 8: AddRef saturates (unit test in src/unknown.rs:
// `add_ref_saturates_at_u32_max_and_never_releases_early`).

// ---------------------------------------------------------------------------------------
// Finding 9: a cancelled call's synchronous method never runs.

/// A one-worker pool whose worker waits at the returned gate: jobs queue behind it.
fn gated_pool() -> (Arc<Pool>, Gate) {
    let pool = Pool::new(1);
    let gate = Gate::default();
    let g = gate.clone();
    pool.execute(move || g.wait());
    (pool, gate)
}

/// A `WorkServer` (it records which calls ran) served by a `SyncMethodHandler` on `pool`.
fn pooled_work_server(
    pool: &Arc<Pool>,
) -> (Arc<WorkServer_Impl>, Arc<SyncMethodHandler<IWorkCalls>>) {
    let server = work_server();
    let handler = SyncMethodHandler::<IWorkCalls>::new(
        ComPtr::new(server.clone() as Arc<dyn IWork>),
        pool.clone(),
    );
    (server, handler)
}

#[test]
fn a_call_cancelled_before_a_worker_reaches_it_never_runs_its_method() {
    within("skipped method", || {
        let (pool, gate) = gated_pool();
        let (server, handler) = pooled_work_server(&pool);
        let call = work_call(handler);
        let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
        assert_eq!(call.begin_work(1), S_OK);
        assert_eq!(cancel.cancel(0), S_OK);
        assert_eq!(call.finish_work().0, RPC_E_CALL_CANCELED);
        assert_eq!(call.begin_work(2), S_OK);
        gate.open();
        assert_eq!(call.finish_work().1.id(), 2);
        assert_eq!(
            *server.ran.lock().unwrap(),
            [2],
            "call 1's method ran after its cancel"
        );
    });
}

/// Issue 14: a pooled call waits in the call object for a worker, which takes its
/// in-parameters with its generation. Here call 1's job reaches the worker while call 2's
/// `Begin_` is inside the aggregating outer's `Reset` — call 2 is already the current call,
/// but its in-parameters are not stored yet. The job must drop call 1's in-parameters, not
/// run them as call 2 (the soak test found that variant).
#[test]
fn a_queued_job_of_a_cancelled_call_never_runs_its_in_parameters_as_the_next_call() {
    within("stale pooled job", || {
        let (pool, worker) = gated_pool();
        let second_reset = Gate::default();
        let r = second_reset.clone();
        let resets = Arc::new(AtomicU32::new(0));
        let outer = TestOuter::new(
            ok(),
            Box::new(move |_| {
                if resets.fetch_add(1, Ordering::SeqCst) == 1 {
                    r.wait();
                }
                S_OK
            }),
            true,
        );
        let (server, handler) = pooled_work_server(&pool);
        let (_unk, call) = TestOuter::aggregate(&outer, handler);
        assert_eq!(call.begin_work(1), S_OK); // its job waits behind the gated worker
        let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
        assert_eq!(cancel.cancel(0), S_OK);
        assert_eq!(call.finish_work().0, RPC_E_CALL_CANCELED);
        let c2 = call.clone();
        let begin2 = thread::spawn(move || c2.begin_work(2));
        eventually("call 2's Begin_ is inside the outer's Reset", || {
            second_reset.arrived() == 1
        });
        // Call 1's job runs now, and a marker queued behind it tells when it is done.
        let (done_tx, done_rx) = std::sync::mpsc::channel();
        pool.execute(move || done_tx.send(()).unwrap());
        worker.open();
        done_rx.recv().unwrap();
        assert!(
            server.ran.lock().unwrap().is_empty(),
            "a method ran during the Reset"
        );
        second_reset.open();
        assert_eq!(begin2.join().unwrap(), S_OK);
        assert_eq!(call.finish_work().1.id(), 2);
        assert_eq!(
            *server.ran.lock().unwrap(),
            [2],
            "call 1's in-parameters ran"
        );
    });
}

// ---------------------------------------------------------------------------------------
// Finding 10: InlineHandler.

#[test]
fn a_panicking_inline_server_completes_the_call_with_rpc_e_serverfault() {
    let handler: Arc<dyn CallHandler<IWorkCalls>> =
        Arc::new(InlineHandler(|_: IWorkIn| -> (HRESULT, IWorkOut) {
            panic!("server bug")
        }));
    let call = work_call(handler);
    assert_eq!(call.begin_work(1), S_OK);
    assert_eq!(call.finish_work().0, RPC_E_SERVERFAULT);
}

#[test]
fn calls_begun_from_completion_callbacks_run_in_constant_stack() {
    // Each Signal finishes its call and begins the next; the inline server completes it at
    // once. 20,000 chained calls: by recursion this overflowed the stack at a few thousand.
    const CALLS: u64 = 20_000;
    let finished = Arc::new(AtomicU32::new(0));
    let f = finished.clone();
    let outer = TestOuter::new(
        Box::new(move |o| {
            let call = o.call().unwrap();
            let (hr, token) = call.finish_work();
            assert_eq!(hr, S_OK);
            if token.id() < CALLS {
                f.fetch_add(1, Ordering::SeqCst);
                assert_eq!(call.begin_work(token.id() + 1), S_OK);
            } else {
                f.fetch_add(1, Ordering::SeqCst);
            }
            S_OK
        }),
        ok(),
        true,
    );
    let (_unk, call) = TestOuter::aggregate(&outer, inline_work());
    // A small stack: recursion would overflow it within a few hundred calls.
    let t = thread::Builder::new()
        .stack_size(256 * 1024)
        .spawn(move || call.begin_work(1))
        .unwrap();
    assert_eq!(t.join().unwrap(), S_OK);
    assert_eq!(finished.load(Ordering::SeqCst) as u64, CALLS);
}

// ---------------------------------------------------------------------------------------
// Finding 11: handles.

#[test]
fn a_wait_on_the_handle_of_a_released_event_fails_with_e_handle() {
    within("wait on a released event's handle", || {
        let event = comasync::sync::ManualResetEvent::create();
        let handle = event
            .query::<dyn ISynchronizeHandle>()
            .unwrap()
            .get_handle()
            .unwrap();
        drop(event);
        let mut index = 0;
        let hr = co_wait_for_multiple_handles(0, INFINITE, Some(&[handle]), Some(&mut index));
        assert_eq!(hr, E_HANDLE);
    });
}

#[test]
fn an_infinite_wait_on_an_abandoned_calls_handle_wakes_with_e_handle() {
    within("wait on an abandoned call's handle", || {
        let (server, handler) = SimpleStream::create_manual(b"x".to_vec(), FinishMode::Blocking);
        let factory = server.query::<dyn ICallFactory>().unwrap();
        let call = create_call_as::<dyn AsyncISimpleStream>(
            &*factory,
            &<dyn AsyncISimpleStream as Interface>::IID,
        )
        .unwrap();
        let handle = call
            .query::<dyn ISynchronizeHandle>()
            .unwrap()
            .get_handle()
            .unwrap();
        assert_eq!(call.begin_read(1), S_OK);
        let h = handle.clone();
        let waiter = thread::spawn(move || {
            let mut index = 0;
            co_wait_for_multiple_handles(0, INFINITE, Some(&[h]), Some(&mut index))
        });
        common::until_blocked(&handle, 1);
        drop(call); // abandoned: nobody will finish it
        assert_eq!(waiter.join().unwrap(), E_HANDLE);
        drop(handler);
    });
}

// ---------------------------------------------------------------------------------------
// Found by the linearizability check after the first fix: a Begin_ overtaking another
// Begin_ that is still inside the outer's Reset.

#[test]
fn a_begin_never_overtakes_a_begin_still_inside_the_outers_reset() {
    within("Begin_ during another Begin_'s Reset", || {
        let gate = Gate::default();
        let g = gate.clone();
        let first_reset = Arc::new(AtomicBool::new(true));
        let outer = TestOuter::new(
            ok(),
            Box::new(move |_| {
                if first_reset.swap(false, Ordering::SeqCst) {
                    g.wait(); // call 1's Reset is slow
                }
                S_OK
            }),
            true,
        );
        let handler = ManualHandler::<IWorkCalls>::new();
        let (_unk, call) = TestOuter::aggregate(&outer, handler.clone());
        let c1 = call.clone();
        let begin1 = thread::spawn(move || c1.begin_work(1));
        eventually("call 1's Reset is running", || gate.arrived() == 1);
        // Meanwhile another thread cancels call 1 and finishes it...
        let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
        assert_eq!(cancel.cancel(0), S_OK);
        assert_eq!(call.finish_work().0, RPC_E_CALL_CANCELED);
        // ...and a third begins call 2, which must wait for call 1's Begin_ to end.
        let c2 = call.clone();
        let begin2 = thread::spawn(move || c2.begin_work(2));
        probe(Duration::from_millis(200), || outer.log().len() > 1);
        gate.open();
        assert_eq!(begin1.join().unwrap(), S_OK);
        assert_eq!(begin2.join().unwrap(), S_OK);
        assert_eq!(outer.log(), ["reset", "signal>", "signal<", "reset"]);
        // Call 1, cancelled during its Reset, never reached the server; call 2 did.
        assert_eq!(handler.pending(), 1);
        complete_work(&handler);
        assert_eq!(call.finish_work().1.id(), 2);
    });
}

#[test]
fn an_outer_released_while_its_call_completes_is_never_signalled_after_its_final_release() {
    // The outer keeps its inner (no hook), so the call object outlives the outer's count.
    let outer = TestOuter::new(ok(), ok(), false);
    let handler = ManualHandler::<IWorkCalls>::new();
    let (unk, call) = TestOuter::aggregate(&outer, handler.clone());
    assert_eq!(call.begin_work(1), S_OK);
    drop((unk, call)); // the final release
    complete_work(&handler);
    assert_eq!(outer.log(), ["reset"], "Signal reached a released outer");
    assert_eq!(outer.final_releases.load(Ordering::SeqCst), 1);
    outer.inner.lock().unwrap().take();
}
