//! An STA that receives a callback while it waits (spec 1.9, 3.7).
//!
//! The STA thread owns an object and marshals it to a worker in the MTA. It then waits in
//! `CoWaitForMultipleHandles` for the worker to finish. The worker calls the object through
//! its proxy: the call is queued for the STA, and the STA's wait dispatches it on the STA's
//! own thread — the modal loop — and then the worker signals the event the STA waits for.
//! Without the dispatching, both threads would wait for each other forever.
//!
//! Run it with `cargo run --example sta_message_pumping`.

use std::thread;

use comasync::apartment::{
    co_initialize_ex, co_uninitialize, current_apartment, get_current_thread_id,
    COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED,
};
use comasync::hresult::S_OK;
use comasync::marshal::{
    co_get_interface_and_release_stream, co_marshal_inter_thread_interface_in_stream,
};
use comasync::simple_stream::{ISimpleStream, ISimpleStreamCalls, SimpleStream};
use comasync::sync::{co_wait_for_multiple_handles, HANDLE, INFINITE};
use comasync::unknown::Interface;

fn main() -> comasync::Result<()> {
    let iid = <dyn ISimpleStream as Interface>::IID;
    co_initialize_ex(None, COINIT_APARTMENTTHREADED).ok()?;
    println!(
        "STA: thread {} in {:?}",
        get_current_thread_id(),
        current_apartment().unwrap()
    );
    let object = SimpleStream::create_sync_only(b"hello, callback".to_vec()); // lives in this STA
    let stream = co_marshal_inter_thread_interface_in_stream::<ISimpleStreamCalls>(&iid, &*object)?;

    let finished = HANDLE::create_event(true, false);
    let signal = finished.clone();
    let worker = thread::spawn(move || -> comasync::Result<()> {
        co_initialize_ex(None, COINIT_MULTITHREADED).ok()?;
        let proxy = co_get_interface_and_release_stream::<ISimpleStreamCalls>(stream, &iid)?;
        println!(
            "worker: thread {} calls Read through the proxy",
            get_current_thread_id()
        );
        let (hr, data) = proxy.read(5); // runs on the STA's thread, dispatched by its wait
        println!(
            "worker: Read -> {hr:?} {:?}",
            String::from_utf8_lossy(&data)
        );
        assert_eq!((hr, data), (S_OK, b"hello".to_vec()));
        drop(proxy);
        co_uninitialize();
        signal.set_event();
        Ok(())
    });

    // The STA waits for the worker; the wait dispatches the worker's call meanwhile.
    let mut index = 0;
    let hr = co_wait_for_multiple_handles(0, INFINITE, Some(&[finished]), Some(&mut index));
    println!("STA: the wait returned {hr:?}");
    assert_eq!(hr, S_OK);
    worker.join().expect("worker thread")?;
    let (hr, data) = object.read(100); // the rest, read directly (same apartment)
    println!(
        "STA: the rest is {:?} ({hr:?})",
        String::from_utf8_lossy(&data)
    );
    assert_eq!(data, b", callback");
    drop(object);
    co_uninitialize();
    Ok(())
}
