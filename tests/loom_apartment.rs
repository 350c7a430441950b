//! loom model checks of the proxy/stub hand-off: a call posted to an STA's queue while the
//! STA's thread waits (its modal wait must wake for it: no lost wake-up), and a call racing
//! with the end of the STA (it is served or fails with `RPC_E_DISCONNECTED`, never hangs); and
//! a proxy call object's calls to an MTA object, which wait in the call object for the MTA's
//! pool (superseded, with the blanket changed between the calls, or racing with the MTA's end),
//! where every execution must also let the object go once the client released everything.
//!
//! ```text
//! RUSTFLAGS="--cfg loom" LOOM_MAX_PREEMPTIONS=2 cargo test --release --features loom --test loom_apartment
//! ```
//!
//! The server object has no `ICallFactory`, so the stub runs the synchronous method on the
//! STA's thread; the client is an MTA thread making a synchronous call through the proxy (its
//! call object's blocking `Finish_` waits on loom's condition variable).
#![cfg(loom)]

use comasync::apartment::{
    co_initialize_ex, co_uninitialize, COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED,
};
use comasync::hresult::{RPC_E_DISCONNECTED, S_OK};
use comasync::marshal::{
    co_get_interface_and_release_stream, co_marshal_inter_thread_interface_in_stream,
};
use comasync::simple_stream::{ISimpleStream, ISimpleStreamCalls, SimpleStream};
use comasync::sync::{co_wait_for_multiple_handles, HANDLE, INFINITE};
use comasync::unknown::Interface;
use loom::thread;

/// The models run one at a time: apartments are process-wide state (one MTA per process, as in
/// COM), and two loom models running at once on the test harness's threads would see each
/// other's apartment objects (loom objects from another model's execution).
static SERIAL: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Model iterations, so a run can show how many interleavings it explored.
static RUNS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[test]
fn a_call_posted_while_the_sta_waits_is_dispatched_by_the_wait() {
    let _serial = serial();
    loom::model(|| {
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let iid = <dyn ISimpleStream as Interface>::IID;
        assert_eq!(co_initialize_ex(None, COINIT_APARTMENTTHREADED), S_OK);
        let object = SimpleStream::create_sync_only(b"ab".to_vec());
        let stream =
            co_marshal_inter_thread_interface_in_stream::<ISimpleStreamCalls>(&iid, &*object)
                .unwrap();
        let done = HANDLE::create_event(true, false);
        let d = done.clone();
        let client = thread::spawn(move || {
            assert_eq!(co_initialize_ex(None, COINIT_MULTITHREADED), S_OK);
            let proxy =
                co_get_interface_and_release_stream::<ISimpleStreamCalls>(stream, &iid).unwrap();
            let r = proxy.read(1);
            d.set_event();
            drop(proxy);
            co_uninitialize();
            r
        });
        // Only the wait's dispatching can serve the client, which sets `done` afterwards.
        let mut i = 9;
        assert_eq!(
            co_wait_for_multiple_handles(0, INFINITE, Some(&[done]), Some(&mut i)),
            S_OK
        );
        assert_eq!(client.join().unwrap(), (S_OK, b"a".to_vec()));
        drop(object);
        co_uninitialize();
    });
    eprintln!(
        "explored {} executions",
        RUNS.load(std::sync::atomic::Ordering::Relaxed)
    );
}

#[test]
fn a_call_racing_with_the_end_of_the_sta_fails_with_rpc_e_disconnected() {
    let _serial = serial();
    loom::model(|| {
        RUNS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let iid = <dyn ISimpleStream as Interface>::IID;
        assert_eq!(co_initialize_ex(None, COINIT_APARTMENTTHREADED), S_OK);
        let object = SimpleStream::create_sync_only(b"ab".to_vec());
        let stream =
            co_marshal_inter_thread_interface_in_stream::<ISimpleStreamCalls>(&iid, &*object)
                .unwrap();
        drop(object);
        let client = thread::spawn(move || {
            assert_eq!(co_initialize_ex(None, COINIT_MULTITHREADED), S_OK);
            let r = match co_get_interface_and_release_stream::<ISimpleStreamCalls>(stream, &iid) {
                Ok(proxy) => proxy.read(1).0,
                Err(e) => e.code(),
            };
            co_uninitialize();
            r
        });
        // The STA never dispatches: it ends (queued calls are dropped, later ones refused).
        co_uninitialize();
        assert_eq!(client.join().unwrap(), RPC_E_DISCONNECTED);
    });
}

// ---- an MTA object's call objects, through the proxy (the call waits in its call object) ----

/// An MTA server: `Read(cb)` returns `cb` bytes, and its call factory makes call objects that
/// complete inside `Begin_` (the stub aggregates one and drives it), with `cb` copies of the
/// call's authentication level (`IServerSecurity::QueryBlanket`): the blanket the call carried.
#[comasync::implement(ISimpleStream, comasync::call::ICallFactory)]
struct Lengths;

/// [`Lengths`] objects whose memory has not gone yet. A proxy call object's channel keeps the
/// stub, which keeps the object, and a queued call keeps its call object until a worker has
/// run it: a model that leaked any of them in any execution leaves this above zero when the
/// execution has ended, which the next execution (and the end of the model) checks.
static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

impl Drop for Lengths {
    fn drop(&mut self) {
        LIVE.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Every [`Lengths`] object of the executions so far is gone.
fn assert_no_object_left() {
    assert_eq!(
        LIVE.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "an execution left its MTA object alive (a leaked proxy channel)"
    );
}

impl ISimpleStream for Lengths_Impl {
    fn read(&self, cb: u32) -> (comasync::HRESULT, Vec<u8>) {
        (S_OK, vec![b'x'; cb as usize])
    }
    fn write(&self, _data: Vec<u8>) -> (comasync::HRESULT, u32) {
        (comasync::hresult::E_NOTIMPL, 0)
    }
}

impl comasync::call::ICallFactory for Lengths_Impl {
    fn create_call(
        &self,
        riid: &comasync::guid::IID,
        outer: Option<&comasync::ComPtr<dyn comasync::unknown::IUnknown>>,
        riid2: &comasync::guid::IID,
        ppv: Option<&mut dyn std::any::Any>,
    ) -> comasync::HRESULT {
        use comasync::call::{create_call, FinishMode, InlineHandler};
        use comasync::simple_stream::{ISimpleStreamIn, ISimpleStreamOut};
        let handler = std::sync::Arc::new(InlineHandler(|input: ISimpleStreamIn| match input {
            ISimpleStreamIn::Read { cb } => {
                let level = call_authn_level();
                SEEN.lock().unwrap().push((cb, level));
                (
                    S_OK,
                    ISimpleStreamOut::Read {
                        data: vec![level; cb as usize],
                    },
                )
            }
            ISimpleStreamIn::Write { .. } => (
                comasync::hresult::E_NOTIMPL,
                ISimpleStreamOut::Write { written: 0 },
            ),
        }));
        create_call::<ISimpleStreamCalls>(riid, outer, riid2, ppv, handler, FinishMode::Blocking)
    }
}

/// What the [`Lengths`] server's call objects ran in this execution: each `Read`'s `cb` and
/// the authentication level it ran at (whether or not its client still wanted the result).
static SEEN: std::sync::Mutex<Vec<(u32, u8)>> = std::sync::Mutex::new(Vec::new());

/// The authentication level of the call whose server code runs on this thread.
fn call_authn_level() -> u8 {
    use comasync::security::{co_get_call_context, IServerSecurity};
    let mut ctx: Option<comasync::ComPtr<dyn IServerSecurity>> = None;
    assert_eq!(
        co_get_call_context(&comasync::guid::IID_IServerSecurity, &mut ctx),
        S_OK
    );
    ctx.unwrap().query_blanket().unwrap().authn_level as u8
}

/// The current thread enters the MTA and makes a [`Lengths`] object there: its interface
/// marshaled for another apartment (the stub keeps the object).
fn mta_object() -> comasync::marshal::MarshalStream {
    let iid = <dyn ISimpleStream as Interface>::IID;
    assert_eq!(co_initialize_ex(None, COINIT_MULTITHREADED), S_OK);
    assert_no_object_left();
    LIVE.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let object = Lengths.into_object();
    co_marshal_inter_thread_interface_in_stream::<ISimpleStreamCalls>(&iid, &*object).unwrap()
}

/// In the current thread's apartment: a call object on the proxy unmarshaled from `stream`
/// (made by the proxy's `ICallFactory`), with the factory and the proxy.
fn call_object(
    stream: comasync::marshal::MarshalStream,
) -> (
    comasync::ComPtr<dyn comasync::simple_stream::AsyncISimpleStream>,
    comasync::ComPtr<dyn comasync::call::ICallFactory>,
    comasync::ComPtr<dyn ISimpleStream>,
) {
    use comasync::call::{create_call_for, ICallFactory};
    let iid = <dyn ISimpleStream as Interface>::IID;
    let proxy = co_get_interface_and_release_stream::<ISimpleStreamCalls>(stream, &iid).unwrap();
    let factory = proxy.query::<dyn ICallFactory>().unwrap();
    let call =
        create_call_for::<dyn comasync::simple_stream::AsyncISimpleStream>(&*factory).unwrap();
    (call, factory, proxy)
}

/// An STA client's call object on a proxy to an MTA object: call 1 is begun at
/// `RPC_C_AUTHN_LEVEL_CONNECT`, cancelled locally and finished; the blanket is raised to
/// `RPC_C_AUTHN_LEVEL_PKT_PRIVACY` and call 2 begun at once — while call 1 may still wait in
/// the call object for the MTA's worker, or be running. The worker serves the current call:
/// call 2 gets its own `Read(3)`, never call 1's in-parameters, and each call runs with the
/// blanket its `Begin_` stamped (`ProxyBlanket::stamp`), never the other's; each call
/// completes once.
#[test]
fn a_call_waiting_for_an_mta_worker_is_superseded_by_the_next_call_never_mixed_with_it() {
    use comasync::call::ICancelMethodCalls;
    use comasync::hresult::RPC_E_CALL_CANCELED;
    use comasync::security::{
        co_set_proxy_blanket, Blanket, RPC_C_AUTHN_LEVEL_CONNECT, RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
    };
    let _serial = serial();
    loom::model(|| {
        SEEN.lock().unwrap().clear();
        let stream = mta_object();
        let client = thread::spawn(move || {
            assert_eq!(co_initialize_ex(None, COINIT_APARTMENTTHREADED), S_OK);
            let (call, factory, proxy) = call_object(stream);
            assert_eq!(call.begin_read(1), S_OK);
            let cancelled = call.query::<dyn ICancelMethodCalls>().unwrap().cancel(0);
            let first = call.finish_read();
            let private = Blanket {
                authn_level: RPC_C_AUTHN_LEVEL_PKT_PRIVACY,
                ..Blanket::default()
            };
            assert_eq!(co_set_proxy_blanket(&*call, &private), S_OK);
            assert_eq!(call.begin_read(3), S_OK);
            let second = call.finish_read();
            drop((call, factory, proxy));
            co_uninitialize();
            (cancelled, first, second)
        });
        let (cancelled, (hr, data), second) = client.join().unwrap();
        let connect = RPC_C_AUTHN_LEVEL_CONNECT as u8;
        match cancelled {
            S_OK => assert_eq!(hr, RPC_E_CALL_CANCELED),
            _ => assert_eq!((hr, data), (S_OK, vec![connect])),
        }
        assert_eq!(
            second,
            (S_OK, vec![RPC_C_AUTHN_LEVEL_PKT_PRIVACY as u8; 3]),
            "call 2 got another call's result or blanket"
        );
        // The server ran call 2 once, and call 1 at most once, each with its own blanket
        // (call 1's result may have been dropped: the server's view is checked here).
        let seen = SEEN.lock().unwrap().clone();
        let private = RPC_C_AUTHN_LEVEL_PKT_PRIVACY as u8;
        assert!(
            seen == [(3, private)] || seen == [(1, connect), (3, private)],
            "the server ran {seen:?}"
        );
        co_uninitialize();
    });
    assert_no_object_left();
}

/// A call waiting in its call object for the MTA's worker while the MTA ends (its last thread
/// leaves): served, or failed with `RPC_E_DISCONNECTED` — never left waiting.
#[test]
fn a_call_waiting_for_an_mta_that_ends_is_served_or_fails_with_rpc_e_disconnected() {
    let _serial = serial();
    loom::model(|| {
        let stream = mta_object();
        let (ready_tx, ready_rx) = loom::sync::mpsc::channel();
        let client = thread::spawn(move || {
            assert_eq!(co_initialize_ex(None, COINIT_APARTMENTTHREADED), S_OK);
            let (call, factory, proxy) = call_object(stream);
            let begun = call.begin_read(2);
            ready_tx.send(()).unwrap();
            let finished = call.finish_read();
            drop((call, factory, proxy));
            co_uninitialize();
            (begun, finished)
        });
        ready_rx.recv().unwrap();
        // The MTA's only thread leaves: the MTA ends, with the call queued or running.
        co_uninitialize();
        let (begun, (hr, data)) = client.join().unwrap();
        if begun == S_OK {
            assert!(
                (hr, data.len()) == (S_OK, 2) || hr == RPC_E_DISCONNECTED,
                "{hr:?} {data:?}"
            );
        } else {
            assert_eq!(begun, RPC_E_DISCONNECTED);
        }
    });
    assert_no_object_left();
}
