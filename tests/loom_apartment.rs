//! loom model checks of the proxy/stub hand-off: a call posted to an STA's queue while the
//! STA's thread waits (its modal wait must wake for it: no lost wake-up), and a call racing
//! with the end of the STA (it is served or fails with `RPC_E_DISCONNECTED`, never hangs).
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
