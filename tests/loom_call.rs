//! loom model checks of one call object: `Begin_`, the server's completion, `Finish_`,
//! `Cancel` and the final `Release` racing each other. The server side is a `ManualHandler`
//! (its queue is behind the loom facade); no worker pool runs under loom.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --test loom_call
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
