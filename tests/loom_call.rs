//! loom model checks of one call object: `Begin_`, the server's completion, `Finish_`,
//! `Cancel` and the final `Release` racing each other. The server side is a `ManualHandler`
//! (its queue is behind the loom facade); no worker pool runs under loom.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --features loom --test loom_call
//! ```
//!
//! Timeouts: under loom a finite wait reports "the timeout fired first" once nothing is there
//! (time cannot pass), so `Cancel(1)` explores "the window expired before the server" and "the
//! server had completed before the window was checked", never "the server completed during
//! the window"; `Cancel(RPC_C_CANCEL_INFINITE_TIMEOUT)` explores the latter.
#![cfg(loom)]

use std::sync::Arc;

use comasync::call::{
    AsyncInterface, CallObject, FinishMode, ICancelMethodCalls, ManualHandler,
    RPC_C_CANCEL_INFINITE_TIMEOUT,
};
use comasync::hresult::{
    RPC_E_CALL_CANCELED, RPC_E_CALL_COMPLETE, RPC_S_CALLPENDING, S_FALSE, S_OK,
};
use comasync::simple_stream::{AsyncISimpleStream, ISimpleStreamCalls, ISimpleStreamOut};
use comasync::sync::{ISynchronize, INFINITE};
use comasync::unknown::ComPtr;
use loom::thread;

type Obj = Arc<CallObject<ISimpleStreamCalls>>;

struct Setup {
    obj: Obj,
    client: ComPtr<dyn AsyncISimpleStream>,
    server: Arc<ManualHandler<ISimpleStreamCalls>>,
}

fn setup(mode: FinishMode) -> Setup {
    let server = ManualHandler::<ISimpleStreamCalls>::new();
    let obj = CallObject::<ISimpleStreamCalls>::new(server.clone(), None, mode);
    let client = ComPtr::new(ISimpleStreamCalls::upcast(obj.clone()));
    Setup {
        obj,
        client,
        server,
    }
}

/// Begins a `Read` and returns a closure that completes it with `(S_FALSE, [7])`, to run on
/// another thread.
fn begin_and_server(s: &Setup) -> impl FnOnce() + Send + 'static {
    assert_eq!(s.client.begin_read(1), S_OK);
    let (call, _input) = s.server.take().expect("Begin_ queued the call");
    move || {
        call.complete(S_FALSE, ISimpleStreamOut::Read { data: vec![7] });
    }
}

fn sync(s: &Setup) -> ComPtr<dyn ISynchronize> {
    s.client.query::<dyn ISynchronize>().unwrap()
}

fn cancel(s: &Setup) -> ComPtr<dyn ICancelMethodCalls> {
    s.client.query::<dyn ICancelMethodCalls>().unwrap()
}

/// Regression (bug found by the linearizability check): the call's event was set after the
/// state lock was released, so a client could finish the call (or see it cancelled) and then
/// read its event as clear — or begin the next call and have the late `set_event` mark that
/// one signaled.
#[test]
fn completion_signal_never_lags_the_state() {
    loom::model(|| {
        let s = setup(FinishMode::Strict);
        let server = thread::spawn(begin_and_server(&s));
        let wait = sync(&s);
        let (hr, data) = s.client.finish_read();
        if hr == S_FALSE {
            assert_eq!(data, vec![7]);
            assert_eq!(wait.wait(0, 0), S_OK, "finished, but the event reads clear");
            assert_eq!(s.client.begin_read(1), S_OK);
            assert_eq!(
                wait.wait(0, 0),
                RPC_S_CALLPENDING,
                "the previous call's signal landed on the new call"
            );
        } else {
            assert_eq!(hr, RPC_S_CALLPENDING);
        }
        server.join().unwrap();
        // A queued call holds its call object: drain the queue so nothing leaks.
        while s.server.take().is_some() {}
    });
}

/// The same race through `Cancel(0)`: a local completion publishes state and event together.
#[test]
fn local_cancel_signal_never_lags_the_state() {
    loom::model(|| {
        let s = setup(FinishMode::Strict);
        assert_eq!(s.client.begin_read(1), S_OK);
        let c = cancel(&s);
        let t = thread::spawn(move || c.cancel(0));
        let wait = sync(&s);
        let (hr, _) = s.client.finish_read();
        if hr == RPC_E_CALL_CANCELED {
            assert_eq!(wait.wait(0, 0), S_OK);
        } else {
            assert_eq!(hr, RPC_S_CALLPENDING);
        }
        assert_eq!(t.join().unwrap(), S_OK);
        drop(s.server.take());
    });
}

#[test]
fn blocking_finish_always_returns_the_server_result() {
    loom::model(|| {
        let s = setup(FinishMode::Blocking);
        let server = thread::spawn(begin_and_server(&s));
        assert_eq!(s.client.finish_read(), (S_FALSE, vec![7]));
        server.join().unwrap();
        assert_eq!(s.client.finish_read().0, RPC_E_CALL_COMPLETE);
    });
}

#[test]
fn infinite_wait_on_the_call_wakes_on_completion() {
    loom::model(|| {
        let s = setup(FinishMode::Strict);
        let server = thread::spawn(begin_and_server(&s));
        assert_eq!(sync(&s).wait(0, INFINITE), S_OK);
        // Whoever sees the signal can Finish_ without waiting (strict mode proves it).
        assert_eq!(s.client.finish_read(), (S_FALSE, vec![7]));
        server.join().unwrap();
    });
}

#[test]
fn cancel_zero_racing_the_server_exactly_one_wins() {
    loom::model(|| {
        let s = setup(FinishMode::Blocking);
        let server = thread::spawn(begin_and_server(&s));
        let hr = cancel(&s).cancel(0);
        let finished = s.client.finish_read();
        server.join().unwrap();
        match hr {
            S_OK => assert_eq!(finished, (RPC_E_CALL_CANCELED, vec![])),
            RPC_E_CALL_COMPLETE => assert_eq!(finished, (S_FALSE, vec![7])),
            other => panic!("Cancel(0) returned {other:?}"),
        }
        assert_eq!(cancel(&s).test_cancel() == RPC_E_CALL_CANCELED, hr == S_OK);
    });
}

#[test]
fn infinite_cancel_returns_rpc_e_call_complete_once_the_server_completes() {
    loom::model(|| {
        let s = setup(FinishMode::Strict);
        let server = thread::spawn(begin_and_server(&s));
        assert_eq!(
            cancel(&s).cancel(RPC_C_CANCEL_INFINITE_TIMEOUT),
            RPC_E_CALL_COMPLETE
        );
        assert_eq!(s.client.finish_read(), (S_FALSE, vec![7]));
        server.join().unwrap();
    });
}

#[test]
fn finite_cancel_window_either_expires_or_finds_the_call_complete() {
    loom::model(|| {
        let s = setup(FinishMode::Blocking);
        let server = thread::spawn(begin_and_server(&s));
        let hr = cancel(&s).cancel(1);
        let finished = s.client.finish_read();
        server.join().unwrap();
        match hr {
            S_OK => assert_eq!(finished, (RPC_E_CALL_CANCELED, vec![])),
            RPC_E_CALL_COMPLETE => assert_eq!(finished, (S_FALSE, vec![7])),
            other => panic!("Cancel(1) returned {other:?}"),
        }
    });
}

#[test]
fn release_racing_the_server_drops_the_result_and_frees_the_object() {
    loom::model(|| {
        let s = setup(FinishMode::Blocking);
        let server = thread::spawn(begin_and_server(&s));
        let Setup {
            obj,
            client,
            server: handler,
        } = s;
        let weak = Arc::downgrade(&obj);
        drop(client); // the final Release: abandons the call if it is still in progress
        server.join().unwrap();
        drop((obj, handler));
        assert_eq!(weak.strong_count(), 0, "the call object leaked");
    });
}

#[test]
fn second_begin_racing_finish_and_reuse_is_busy_or_succeeds() {
    loom::model(|| {
        let s = setup(FinishMode::Strict);
        let server = thread::spawn(begin_and_server(&s));
        let other = s.client.clone();
        let t = thread::spawn(move || other.begin_write(vec![1]));
        let finished = s.client.finish_read();
        let begun = t.join().unwrap();
        server.join().unwrap();
        // The second Begin_ succeeds only after the first call was finished.
        if begun == S_OK {
            assert_eq!(finished, (S_FALSE, vec![7]));
        } else {
            assert_eq!(begun, RPC_S_CALLPENDING);
        }
        while s.server.take().is_some() {}
    });
}

#[test]
fn cancel_server_and_strict_finish_three_ways_agree() {
    loom::model(|| {
        let s = setup(FinishMode::Strict);
        let server = thread::spawn(begin_and_server(&s));
        let c = cancel(&s);
        let canceller = thread::spawn(move || c.cancel(0));
        let first = s.client.finish_read();
        let cancel_hr = canceller.join().unwrap();
        server.join().unwrap();
        let second = s.client.finish_read();
        // Exactly one Finish_ hands the call back, with the winner's result.
        let done = if first.0 == RPC_S_CALLPENDING {
            second
        } else {
            assert_eq!(second.0, RPC_E_CALL_COMPLETE);
            first
        };
        match cancel_hr {
            S_OK => assert_eq!(done, (RPC_E_CALL_CANCELED, vec![])),
            RPC_E_CALL_COMPLETE => assert_eq!(done, (S_FALSE, vec![7])),
            other => panic!("Cancel(0) returned {other:?}"),
        }
        assert_eq!(sync(&s).wait(0, 0), S_OK);
    });
}

// ---------------------------------------------------------------------------------------
// Issue 9: the paths around the call object — an aggregating outer, the worker pool with
// `SyncMethodHandler`, and `ServerCallHost` — under loom. The first three models failed on
// the code before the fix (findings 1, 2 and 6).

mod outer {
    use std::any::Any;
    use std::sync::{Arc, Weak};

    use comasync::guid::IID;
    use comasync::hresult::{E_NOINTERFACE, HRESULT, S_OK};
    use comasync::sync::ISynchronize;
    use comasync::unknown::{ComPtr, IUnknown, RefCount};
    use loom::sync::atomic::{AtomicU32, Ordering};
    use loom::sync::Mutex;

    /// An aggregating outer whose `ISynchronize` logs what the call object asks of it.
    pub struct LoomOuter {
        refs: RefCount,
        me: Weak<LoomOuter>,
        pub inner: Mutex<Option<ComPtr<dyn IUnknown>>>,
        pub log: Mutex<Vec<&'static str>>,
        pub final_releases: AtomicU32,
        releases_inner: bool,
    }

    impl LoomOuter {
        pub fn new(releases_inner: bool) -> Arc<LoomOuter> {
            Arc::new_cyclic(|me| LoomOuter {
                refs: RefCount::new(),
                me: me.clone(),
                inner: Mutex::new(None),
                log: Mutex::new(Vec::new()),
                final_releases: AtomicU32::new(0),
                releases_inner,
            })
        }
        fn inner_interfaces(&self, _me: &Arc<Self>, iid: &IID, ppv: &mut dyn Any) -> HRESULT {
            let inner = self.inner.lock().unwrap().clone();
            match inner {
                Some(inner) => inner.query_interface(iid, ppv),
                None => E_NOINTERFACE,
            }
        }
        fn final_release(&self) {
            self.final_releases.fetch_add(1, Ordering::SeqCst);
            if self.releases_inner {
                let inner = self.inner.lock().unwrap().take();
                drop(inner);
            }
        }
    }

    impl ISynchronize for LoomOuter {
        fn wait(&self, _: u32, _: u32) -> HRESULT {
            S_OK
        }
        fn signal(&self) -> HRESULT {
            self.log.lock().unwrap().push("signal>");
            self.log.lock().unwrap().push("signal<");
            S_OK
        }
        fn reset(&self) -> HRESULT {
            self.log.lock().unwrap().push("reset");
            S_OK
        }
    }

    comasync::com_object!([] LoomOuter {
        interfaces: [dyn ISynchronize],
        more: LoomOuter::inner_interfaces,
        final_release: LoomOuter::final_release,
    });
}

use comasync::call::create_call;
use comasync::guid::IID_IUnknown;
use comasync::unknown::{IUnknown, Interface};
use outer::LoomOuter;

/// An aggregated call object under a fresh `LoomOuter`: (outer memory, outer pointer, call).
fn aggregated<H: comasync::call::CallHandler<ISimpleStreamCalls>>(
    releases_inner: bool,
    server: &Arc<H>,
) -> (
    Arc<LoomOuter>,
    ComPtr<dyn IUnknown>,
    ComPtr<dyn AsyncISimpleStream>,
) {
    let outer = LoomOuter::new(releases_inner);
    let unk: ComPtr<dyn IUnknown> = ComPtr::new(outer.clone() as Arc<dyn IUnknown>);
    let mut inner: Option<ComPtr<dyn IUnknown>> = None;
    let iid = <dyn AsyncISimpleStream as Interface>::IID;
    let hr = create_call::<ISimpleStreamCalls>(
        &iid,
        Some(&unk),
        &IID_IUnknown,
        Some(&mut inner),
        server.clone(),
        FinishMode::Blocking,
    );
    assert_eq!(hr, S_OK);
    *outer.inner.lock().unwrap() = inner;
    let call = unk.query::<dyn AsyncISimpleStream>().unwrap();
    (outer, unk, call)
}

/// Finding 1: the server completes call 1 on its thread while the client finishes it and
/// begins call 2. The outer must see `Signal(1)` return before `Reset(2)`.
#[test]
fn outer_signal_never_lands_after_the_next_calls_reset() {
    loom::model(|| {
        let server = ManualHandler::<ISimpleStreamCalls>::new();
        let (outer, unk, call) = aggregated(true, &server);
        assert_eq!(call.begin_read(1), S_OK);
        let (first, _) = server.take().unwrap();
        let t = thread::spawn(move || {
            first.complete(S_OK, ISimpleStreamOut::Read { data: vec![1] });
        });
        assert_eq!(call.finish_read(), (S_OK, vec![1]));
        assert_eq!(call.begin_read(2), S_OK);
        t.join().unwrap();
        assert_eq!(
            *outer.log.lock().unwrap(),
            ["reset", "signal>", "signal<", "reset"]
        );
        drop((call, unk));
    });
}

/// Finding 6: the client releases its last reference on an outer that keeps its inner (no
/// final-release hook letting go of it) while the server completes. The completion must not
/// `AddRef`/`Release` the dead outer: exactly one final release.
#[test]
fn completion_never_revives_a_released_outer() {
    loom::model(|| {
        let server = ManualHandler::<ISimpleStreamCalls>::new();
        let (outer, unk, call) = aggregated(false, &server);
        assert_eq!(call.begin_read(1), S_OK);
        let (first, _) = server.take().unwrap();
        let t = thread::spawn(move || {
            first.complete(S_OK, ISimpleStreamOut::Read { data: vec![1] });
        });
        drop((call, unk));
        t.join().unwrap();
        assert_eq!(
            outer
                .final_releases
                .load(loom::sync::atomic::Ordering::SeqCst),
            1
        );
        let inner = outer.inner.lock().unwrap().take();
        drop(inner);
    });
}

/// Finding 2: a server-side call object (the sample's) hosted by `ServerCallHost`, its work on
/// a one-worker pool. The client cancels call 1 locally and begins call 2 while the server may
/// still work on call 1: call 2's `Finish_` returns a `Read(4)` result — never call 1's, never
/// "busy".
#[test]
fn a_late_server_signal_never_completes_the_next_call() {
    use comasync::call::{create_call_as, ICallFactory, Pool};
    use comasync::sample_server::SampleServer;
    loom::model(|| {
        let server = SampleServer::create_on(b"abcdefgh".to_vec(), Pool::new(1));
        let factory = server.query::<dyn ICallFactory>().unwrap();
        let call = create_call_as::<dyn AsyncISimpleStream>(
            &*factory,
            &<dyn AsyncISimpleStream as Interface>::IID,
        )
        .unwrap();
        assert_eq!(call.begin_read(3), S_OK);
        let cancelled = call.query::<dyn ICancelMethodCalls>().unwrap().cancel(0);
        let (hr, _) = call.finish_read();
        if cancelled == S_OK {
            assert_eq!(hr, RPC_E_CALL_CANCELED);
        }
        assert_eq!(call.begin_read(4), S_OK);
        let (hr, data) = call.finish_read();
        assert_eq!(hr, S_OK);
        assert_eq!(data.len(), 4, "call 2 got another call's result: {data:?}");
    });
}

/// The pool path: `SyncMethodHandler` runs `Read` on a one-worker pool while the client
/// cancels; the result reaches `Finish_` exactly once, and the call object is reusable.
#[test]
fn a_pooled_call_racing_cancel_delivers_once_and_the_object_is_reusable() {
    use comasync::call::{create_call_as, ICallFactory, Pool};
    use comasync::simple_stream::SimpleStream;
    loom::model(|| {
        let stream =
            SimpleStream::create_on(b"abcdef".to_vec(), Pool::new(1), FinishMode::Blocking);
        let factory = stream.query::<dyn ICallFactory>().unwrap();
        let call = create_call_as::<dyn AsyncISimpleStream>(
            &*factory,
            &<dyn AsyncISimpleStream as Interface>::IID,
        )
        .unwrap();
        assert_eq!(call.begin_read(2), S_OK);
        let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
        let t = thread::spawn(move || cancel.cancel(0));
        let (hr, data) = call.finish_read();
        let cancelled = t.join().unwrap();
        match cancelled {
            S_OK => assert_eq!(hr, RPC_E_CALL_CANCELED),
            _ => assert_eq!((hr, data), (S_OK, b"ab".to_vec())),
        }
        assert_eq!(call.finish_read().0, RPC_E_CALL_COMPLETE, "delivered once");
        assert_eq!(call.begin_read(1), S_OK);
        assert_eq!(call.finish_read().0, S_OK);
    });
}

/// Found by the linearizability check: while call 1's `Begin_` is inside the outer's `Reset`,
/// another thread cancels and finishes call 1 and a third begins call 2. The outer must never
/// see two `Reset`s without the first call's `Signal` between them.
#[test]
fn a_begin_never_overtakes_a_begin_inside_the_outers_reset() {
    loom::model(|| {
        let server = ManualHandler::<ISimpleStreamCalls>::new();
        let (outer, unk, call) = aggregated(true, &server);
        let (c1, c2) = (call.clone(), call.clone());
        let first = thread::spawn(move || c1.begin_read(1));
        let canceller = thread::spawn(move || {
            let cancel = c2.query::<dyn ICancelMethodCalls>().unwrap();
            if cancel.cancel(0) == S_OK {
                assert_eq!(c2.finish_read().0, RPC_E_CALL_CANCELED);
                let hr = c2.begin_read(2);
                assert!(hr == S_OK || hr == RPC_S_CALLPENDING, "{hr:?}");
            }
        });
        assert_eq!(first.join().unwrap(), S_OK);
        canceller.join().unwrap();
        let log = outer.log.lock().unwrap().clone();
        for pair in log.windows(2) {
            assert_ne!(
                pair,
                ["reset", "reset"],
                "a Reset overtook a Signal: {log:?}"
            );
        }
        while let Some((c, _)) = server.take() {
            c.complete(S_OK, ISimpleStreamOut::Read { data: vec![] });
        }
        drop((call, unk));
    });
}

// ---------------------------------------------------------------------------------------
// Issue 14: a handler that completes inline (`CallHandler::begin_inline`) completes the call
// through the call object itself, without a `ServerCall` token.

/// An inline completion racing `Cancel(0)` and a second client's `Begin_` on other threads:
/// one `Begin_` wins, the cancel either completes it locally or finds it complete, `Finish_` hands back the winner's result once, and the event
/// is set whenever the call reads complete.
#[test]
fn inline_completion_racing_cancel_and_begin_agree() {
    use comasync::call::{CallHandler, InlineHandler};
    use comasync::simple_stream::ISimpleStreamIn;
    loom::model(|| {
        let handler: Arc<dyn CallHandler<ISimpleStreamCalls>> =
            Arc::new(InlineHandler(|input: ISimpleStreamIn| match input {
                ISimpleStreamIn::Read { cb } => (
                    S_FALSE,
                    ISimpleStreamOut::Read {
                        data: vec![7; cb as usize],
                    },
                ),
                ISimpleStreamIn::Write { .. } => (S_OK, ISimpleStreamOut::Write { written: 1 }),
            }));
        let obj = CallObject::<ISimpleStreamCalls>::new(handler, None, FinishMode::Strict);
        let client = ComPtr::new(ISimpleStreamCalls::upcast(obj.clone()));
        let c = client.query::<dyn ICancelMethodCalls>().unwrap();
        let canceller = thread::spawn(move || c.cancel(0));
        let other = client.clone();
        let second = thread::spawn(move || other.begin_write(vec![1]));
        let begun = client.begin_read(1);
        let cancel_hr = canceller.join().unwrap();
        let second_hr = second.join().unwrap();
        // One of the two Begin_s won; the other was busy. The winner completed inline.
        assert!(
            (begun == S_OK) != (second_hr == S_OK),
            "{begun:?} {second_hr:?}"
        );
        assert_eq!(
            client.query::<dyn ISynchronize>().unwrap().wait(0, 0),
            S_OK,
            "complete, but the event reads clear"
        );
        // Cancel(0) between the Begin_ and its inline completion wins: the call completes
        // locally and the server's result is dropped. Otherwise it finds no call or a
        // complete one.
        match (cancel_hr, begun == S_OK) {
            (S_OK, true) => assert_eq!(client.finish_read().0, RPC_E_CALL_CANCELED),
            (S_OK, false) => assert_eq!(client.finish_write().0, RPC_E_CALL_CANCELED),
            (RPC_E_CALL_COMPLETE, true) => assert_eq!(client.finish_read(), (S_FALSE, vec![7])),
            (RPC_E_CALL_COMPLETE, false) => assert_eq!(client.finish_write(), (S_OK, 1)),
            (other, _) => panic!("Cancel(0) returned {other:?}"),
        }
        assert_eq!(
            client.finish_read().0,
            RPC_E_CALL_COMPLETE,
            "handed back once"
        );
    });
}

// ---------------------------------------------------------------------------------------
// Issue 14: a pooled call waits in the call object (`CallHandler::pool`), which queues itself
// on the pool: no token, no box. A job may find a later call waiting, or none.

/// A `SyncMethodHandler` running the `Read`s of a `SimpleStream` over `data` on a one-worker
/// pool.
fn pooled_stream(data: &[u8]) -> Arc<comasync::call::SyncMethodHandler<ISimpleStreamCalls>> {
    use comasync::call::{Pool, SyncMethodHandler};
    use comasync::simple_stream::SimpleStream;
    let object = SimpleStream::create_sync_only(data.to_vec());
    SyncMethodHandler::<ISimpleStreamCalls>::new(object, Pool::new(1))
}

/// A new (not aggregated) call object served by `handler`.
fn call_on<H: comasync::call::CallHandler<ISimpleStreamCalls>>(
    handler: &Arc<H>,
) -> ComPtr<dyn AsyncISimpleStream> {
    ComPtr::new(ISimpleStreamCalls::upcast(CallObject::new(
        handler.clone(),
        None,
        FinishMode::Blocking,
    )))
}

/// An aggregated call object served on a one-worker pool: call 1 is cancelled locally and
/// finished, and call 2 begun, while call 1's job may still be queued. Call 2's `Begin_`
/// stores its in-parameters only after the outer's `Reset`, so call 1's job can run between
/// the state change and the store: it must never run call 1's in-parameters as call 2 (the
/// soak test found that), and call 2 gets a `Read(3)` result.
#[test]
fn a_queued_jobs_in_parameters_never_run_as_the_next_call() {
    loom::model(|| {
        let handler = pooled_stream(b"abcdefgh");
        let (_outer, _unk, call) = aggregated(true, &handler);
        assert_eq!(call.begin_read(1), S_OK);
        let cancelled = call.query::<dyn ICancelMethodCalls>().unwrap().cancel(0);
        let (hr, data) = call.finish_read();
        match cancelled {
            S_OK => assert_eq!(hr, RPC_E_CALL_CANCELED),
            _ => assert_eq!((hr, data.len()), (S_OK, 1)),
        }
        assert_eq!(call.begin_read(3), S_OK);
        let (hr, data) = call.finish_read();
        assert_eq!(hr, S_OK);
        assert_eq!(
            data.len(),
            3,
            "call 2 ran another call's in-parameters: {data:?}"
        );
    });
}

/// A pooled call whose client releases the call object while its job is queued: the job
/// either ran the call first or finds it abandoned (the method does not run), and the call
/// object is freed once the job is done — the queue holds it no longer. A second call on
/// another call object, behind it on the one worker, tells when the job is done.
#[test]
fn a_released_queued_call_is_freed_once_its_job_is_done() {
    loom::model(|| {
        let handler = pooled_stream(b"abcd");
        let obj =
            CallObject::<ISimpleStreamCalls>::new(handler.clone(), None, FinishMode::Blocking);
        let freed = Arc::downgrade(&obj);
        let client = ComPtr::new(ISimpleStreamCalls::upcast(obj));
        assert_eq!(client.begin_read(2), S_OK);
        let releaser = thread::spawn(move || drop(client));
        let next = call_on(&handler);
        assert_eq!(next.begin_read(2), S_OK);
        let (hr, data) = next.finish_read();
        releaser.join().unwrap();
        assert_eq!(hr, S_OK);
        // The first call ran ("ab" read first) or was skipped as abandoned.
        assert!(data == b"cd" || data == b"ab", "{data:?}");
        // The one worker ran the first job before the second: it holds the object no longer.
        assert!(
            freed.upgrade().is_none(),
            "the queue kept a released call object"
        );
    });
}

// ---------------------------------------------------------------------------------------
// Issue 14: the pool hands a job to a worker spinning for one on its spot (src/call/pool.rs).
// Under loom a worker looks once (POOL_SPINS = 1) before it blocks, so loom explores offers
// racing a worker's announcement, its one look, and its leaving the spot to block.

/// Two calls begun by one thread on a one-worker pool run in the order they began: the first
/// reads "ab", the second "cd" — whether each went to the spot or the queue.
#[test]
fn jobs_from_one_thread_start_in_order_through_the_spot_and_the_queue() {
    loom::model(|| {
        let handler = pooled_stream(b"abcd");
        let (first, second) = (call_on(&handler), call_on(&handler));
        assert_eq!(first.begin_read(2), S_OK);
        assert_eq!(second.begin_read(2), S_OK);
        assert_eq!(first.finish_read(), (S_OK, b"ab".to_vec()));
        assert_eq!(second.finish_read(), (S_OK, b"cd".to_vec()));
    });
}

/// On a two-worker pool, job A blocks until job B has run. B, sent while A's worker is busy,
/// must reach the other worker — never wait on the spot behind A (loom reports the deadlock).
#[test]
fn a_job_never_waits_on_the_spot_behind_a_busy_worker() {
    use comasync::call::Pool;
    use loom::sync::{Condvar, Mutex};
    loom::model(|| {
        let pool = Pool::new(2);
        let state = Arc::new((Mutex::new((false, 0u32)), Condvar::new()));
        let a = state.clone();
        pool.execute(move || {
            let (lock, cv) = &*a;
            let mut s = lock.lock().unwrap();
            while !s.0 {
                s = cv.wait(s).unwrap();
            }
            s.1 += 1;
            cv.notify_all();
        });
        let b = state.clone();
        pool.execute(move || {
            let (lock, cv) = &*b;
            let mut s = lock.lock().unwrap();
            s.0 = true;
            s.1 += 1;
            cv.notify_all();
        });
        let (lock, cv) = &*state;
        let mut s = lock.lock().unwrap();
        while s.1 < 2 {
            s = cv.wait(s).unwrap();
        }
    });
}
