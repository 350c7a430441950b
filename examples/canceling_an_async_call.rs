//! "Canceling an asynchronous call": `ICancelMethodCalls::Cancel` with each timing, and what
//! `Finish_` returns afterwards. The server side is driven by hand so every outcome is certain.
//! Run with `cargo run --example canceling_an_async_call`.

use std::thread;

use comasync::call::{
    create_call_as, FinishMode, ICallFactory, ICancelMethodCalls, RPC_C_CANCEL_INFINITE_TIMEOUT,
};
use comasync::hresult::{HRESULT, RPC_E_CALL_CANCELED};
use comasync::simple_stream::{AsyncISimpleStream, SimpleStream};
use comasync::unknown::Interface;

fn show(step: &str, hr: HRESULT) {
    println!("{step:<60} {hr:?}");
}

fn main() -> comasync::Result<()> {
    let (server, queue) = SimpleStream::create_manual(b"0123456789".to_vec(), FinishMode::Blocking);
    let factory = server.query::<dyn ICallFactory>()?;
    let iid = <dyn AsyncISimpleStream as Interface>::IID;
    let call = create_call_as::<dyn AsyncISimpleStream>(&*factory, &iid)?;
    let cancel = call.query::<dyn ICancelMethodCalls>()?;

    println!("-- Cancel(0) before the server answers: the call completes locally");
    show("Begin_Read(4)", call.begin_read(4));
    show("Cancel(0)", cancel.cancel(0));
    show("TestCancel()", cancel.test_cancel());
    show("Cancel(0) again", cancel.cancel(0));
    show("Begin_Read(1) before Finish_", call.begin_read(1));
    show("Finish_Read()", call.finish_read().0);
    queue.run_next(&*server); // the server finishes late; its result is dropped

    println!("-- Cancel(INFINITE) and the server completes in the window");
    show("Begin_Read(4)", call.begin_read(4));
    let canceller = {
        let cancel = cancel.clone();
        thread::spawn(move || cancel.cancel(RPC_C_CANCEL_INFINITE_TIMEOUT))
    };
    // The server runs the call (it could check TestCancel and stop; this one completes).
    let (server_call, input) = queue
        .take_wait(u32::MAX)
        .expect("the call reached the server");
    // Let the canceller get its request in (it runs on another thread).
    while server_call.test_cancel() != RPC_E_CALL_CANCELED {
        thread::yield_now();
    }
    println!(
        "{:<60} {:?}",
        "server: TestCancel() through its outer",
        server_call.test_cancel()
    );
    let (hr, out) = <comasync::simple_stream::ISimpleStreamCalls as comasync::call::AsyncInterface>::invoke_sync(&*server, input);
    server_call.complete(hr, out);
    show(
        "Cancel(INFINITE) returns",
        canceller.join().expect("canceller"),
    );
    let (hr, data) = call.finish_read();
    show("Finish_Read() gives the server's result", hr);
    println!("   data = {:?}", String::from_utf8_lossy(&data));

    println!("-- Cancel with nothing to cancel");
    show("Cancel(0)", cancel.cancel(0));
    Ok(())
}
