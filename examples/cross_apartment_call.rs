//! A cross-apartment asynchronous call: a client in an STA calls a server object that lives in
//! the MTA, through a proxy (spec 1.2, 2.1, 3.5, 3.7).
//!
//! The server thread enters the MTA, makes a `SimpleStream` (which has `ICallFactory`) and
//! marshals it with `co_marshal_inter_thread_interface_in_stream`. The client thread enters an
//! STA and unmarshals the stream: a proxy. It asks the proxy for `ICallFactory`, makes a call
//! object, calls `Begin_Read` (returns once the call is queued for the MTA), and `Finish_Read`
//! (waits, dispatching its STA's incoming calls meanwhile) for the server's result. In the MTA
//! the stub makes the server's own call object, aggregated under itself, and drives it.
//!
//! Run it with `cargo run --example cross_apartment_call`.

use std::sync::mpsc;
use std::thread;

use comasync::apartment::{
    co_get_apartment_type, co_initialize_ex, co_uninitialize, current_apartment,
    COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED,
};
use comasync::call::{create_call_for, ICallFactory};
use comasync::hresult::S_OK;
use comasync::marshal::{
    co_get_interface_and_release_stream, co_marshal_inter_thread_interface_in_stream,
};
use comasync::simple_stream::{
    AsyncISimpleStream, ISimpleStream, ISimpleStreamCalls, SimpleStream,
};
use comasync::sync::{co_wait_for_multiple_handles, HANDLE, INFINITE};
use comasync::unknown::Interface;

fn main() -> comasync::Result<()> {
    let iid = <dyn ISimpleStream as Interface>::IID;
    let done = HANDLE::create_event(true, false);
    let (tx, rx) = mpsc::channel();

    // The server: an object in the MTA. The thread stays in the MTA until the client is done
    // (the MTA ends when its last thread leaves).
    let server_done = done.clone();
    let server = thread::spawn(move || -> comasync::Result<()> {
        co_initialize_ex(None, COINIT_MULTITHREADED).ok()?;
        let object = SimpleStream::create(b"hello from the MTA".to_vec());
        let stream =
            co_marshal_inter_thread_interface_in_stream::<ISimpleStreamCalls>(&iid, &*object)?;
        println!(
            "server: object in {:?} ({:?})",
            current_apartment().unwrap(),
            co_get_apartment_type()?
        );
        tx.send(stream).expect("the client is listening");
        drop(object); // the stub keeps the object alive for its proxies
        let mut index = 0;
        co_wait_for_multiple_handles(0, INFINITE, Some(&[server_done]), Some(&mut index)).ok()?;
        co_uninitialize();
        Ok(())
    });

    // The client: an STA.
    let stream = rx.recv().expect("the server marshaled its object");
    let client = thread::spawn(move || -> comasync::Result<()> {
        co_initialize_ex(None, COINIT_APARTMENTTHREADED).ok()?;
        println!(
            "client: in {:?} ({:?})",
            current_apartment().unwrap(),
            co_get_apartment_type()?
        );
        let proxy = co_get_interface_and_release_stream::<ISimpleStreamCalls>(stream, &iid)?;
        let factory = proxy.query::<dyn ICallFactory>()?; // the server has one: so has the proxy
        let call = create_call_for::<dyn AsyncISimpleStream>(&*factory)?;
        assert_eq!(call.begin_read(5), S_OK); // queued for the MTA
        println!("client: Begin_Read returned; doing other work");
        let (hr, data) = call.finish_read(); // waits (and dispatches) for the server's result
        println!(
            "client: Finish_Read -> {hr:?} {:?}",
            String::from_utf8_lossy(&data)
        );
        assert_eq!((hr, data), (S_OK, b"hello".to_vec()));
        let (hr, data) = proxy.read(100); // a synchronous call through the same proxy
        println!(
            "client: Read -> {hr:?} {:?}",
            String::from_utf8_lossy(&data)
        );
        drop((call, factory, proxy));
        co_uninitialize();
        Ok(())
    });
    client.join().expect("client thread")?;
    done.set_event();
    server.join().expect("server thread")?;
    println!("done");
    Ok(())
}
