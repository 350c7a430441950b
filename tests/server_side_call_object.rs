//! Server-side call objects written as the Microsoft samples write them (spec 2.2, 3.5),
//! hosted behind comasync's call object by `ServerCallHost` (COM's stub).

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use comasync::call::{
    create_call_as, ICallFactory, ICancelMethodCalls, Pool, RPC_C_CANCEL_INFINITE_TIMEOUT,
};
use comasync::hresult::*;
use comasync::sample_server::SampleServer;
use comasync::simple_stream::AsyncISimpleStream;
use comasync::sync::{ISynchronize, INFINITE};
use comasync::unknown::{ComPtr, IUnknown, Interface};

fn call_on(server: &ComPtr<dyn IUnknown>) -> ComPtr<dyn AsyncISimpleStream> {
    let factory = server.query::<dyn ICallFactory>().unwrap();
    create_call_as::<dyn AsyncISimpleStream>(&*factory, &<dyn AsyncISimpleStream as Interface>::IID)
        .unwrap()
}

#[test]
fn server_call_object_begin_stores_inputs_and_the_worker_signals_through_the_outer() {
    let server = SampleServer::create(b"abcdefgh".to_vec());
    let call = call_on(&server);
    assert_eq!(call.begin_read(3), S_OK);
    assert_eq!(
        call.query::<dyn ISynchronize>().unwrap().wait(0, INFINITE),
        S_OK
    );
    assert_eq!(call.finish_read(), (S_OK, b"abc".to_vec()));
    assert_eq!(call.begin_read(10), S_OK);
    assert_eq!(
        call.finish_read(),
        (S_FALSE, b"defgh".to_vec()),
        "S_FALSE passes through"
    );
}

#[test]
fn server_call_object_errors_are_stored_and_returned_by_finish() {
    let server = SampleServer::create(b"read-only".to_vec());
    let call = call_on(&server);
    assert_eq!(
        call.begin_write(b"x".to_vec()),
        S_OK,
        "the client never sees Begin_'s work"
    );
    assert_eq!(call.finish_write(), (E_ACCESSDENIED, 0));
}

#[test]
fn server_call_object_sees_the_client_cancel_through_its_outer() {
    // One worker, held by a gate, so the server runs only after the cancel request.
    let pool = Pool::new(1);
    let (open, gate) = mpsc::channel::<()>();
    pool.execute(move || {
        let _ = gate.recv();
    });
    let server = SampleServer::create_on(b"abc".to_vec(), pool);
    let call = call_on(&server);
    assert_eq!(call.begin_read(1), S_OK);
    let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
    let canceller = {
        let cancel = cancel.clone();
        thread::spawn(move || cancel.cancel(RPC_C_CANCEL_INFINITE_TIMEOUT))
    };
    let start = Instant::now();
    while cancel.test_cancel() != RPC_E_CALL_CANCELED {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the cancel never registered"
        );
        thread::yield_now();
    }
    open.send(()).unwrap();
    // The server saw TestCancel == RPC_E_CALL_CANCELED, stored it and signalled in the window.
    assert_eq!(canceller.join().unwrap(), RPC_E_CALL_COMPLETE);
    assert_eq!(call.finish_read().0, RPC_E_CALL_CANCELED);
}

#[test]
fn releasing_a_call_on_a_server_call_object_abandons_it_cleanly() {
    let server = SampleServer::create_on(b"abc".to_vec(), Pool::new(1));
    let weak = std::sync::Arc::downgrade(server.as_arc());
    for _ in 0..50 {
        let call = call_on(&server);
        assert_eq!(call.begin_read(1), S_OK);
    }
    drop(server);
    let start = Instant::now();
    while weak.upgrade().is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the server was never freed"
        );
        thread::yield_now();
    }
}
