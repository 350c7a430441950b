//! A server object with its own server-side call object, written as Microsoft's samples write
//! them: see `src/sample_server.rs` for the server code. The client side is the ordinary
//! procedure. Run with `cargo run --example server_side_call_object`.

use comasync::call::{create_call_as, ICallFactory};
use comasync::hresult::HRESULT;
use comasync::sample_server::SampleServer;
use comasync::simple_stream::AsyncISimpleStream;
use comasync::sync::{ISynchronize, INFINITE};
use comasync::unknown::Interface;

fn show(step: &str, hr: HRESULT) {
    println!("{step:<50} {hr:?}");
}

fn main() -> comasync::Result<()> {
    let server = SampleServer::create(b"server-side call objects".to_vec());
    let factory = server.query::<dyn ICallFactory>()?;
    let iid = <dyn AsyncISimpleStream as Interface>::IID;
    let call = create_call_as::<dyn AsyncISimpleStream>(&*factory, &iid)?;
    let sync = call.query::<dyn ISynchronize>()?;

    // Begin_Read reaches the server call object's Begin_Read, which stores cb, resets the
    // stub's ISynchronize, hands the read to a worker and returns S_OK.
    show("Begin_Read(11)", call.begin_read(11));
    // The worker reads, stores the result and calls Signal on the ISynchronize it got from
    // its outer unknown; the stub then calls the server's Finish_Read.
    show("Wait(0, INFINITE)", sync.wait(0, INFINITE));
    let (hr, data) = call.finish_read();
    show("Finish_Read()", hr);
    println!("   data = {:?}", String::from_utf8_lossy(&data));

    // Errors are stored by the server call object and returned by Finish_.
    show("Begin_Write(\"x\")", call.begin_write(b"x".to_vec()));
    show(
        "Finish_Write() (the sample's data is read-only)",
        call.finish_write().0,
    );
    Ok(())
}
