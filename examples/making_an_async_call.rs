//! "Making an asynchronous call", the seed document's procedure, on a server whose methods run
//! on comasync's worker pool. Run with `cargo run --example making_an_async_call`.

use comasync::call::{create_call_as, ICallFactory};
use comasync::hresult::{HRESULT, RPC_S_CALLPENDING};
use comasync::simple_stream::{AsyncISimpleStream, SimpleStream};
use comasync::sync::ISynchronize;
use comasync::unknown::Interface;

fn show(step: &str, hr: HRESULT) {
    println!("{step:<55} {hr:?}");
}

fn main() -> comasync::Result<()> {
    let server = SimpleStream::create(b"Making an asynchronous call".to_vec());

    // 1. Ask the server object for ICallFactory (E_NOINTERFACE: no async support).
    let factory = server.query::<dyn ICallFactory>()?;
    show(
        "1. QueryInterface(IID_ICallFactory)",
        comasync::hresult::S_OK,
    );

    // 2. CreateCall for AsyncISimpleStream, then release ICallFactory.
    let iid = <dyn AsyncISimpleStream as Interface>::IID;
    let call = create_call_as::<dyn AsyncISimpleStream>(&*factory, &iid)?;
    drop(factory);
    show(
        "2. ICallFactory::CreateCall(IID_AsyncISimpleStream)",
        comasync::hresult::S_OK,
    );

    // 4. Begin_Read: returns at once; the server works meanwhile.
    show("4. Begin_Read(6)", call.begin_read(6));

    // Complete: QueryInterface for ISynchronize, Wait until S_OK (a timeout means "not yet").
    let sync = call.query::<dyn ISynchronize>()?;
    let mut waits = 0;
    loop {
        let hr = sync.wait(0, 100);
        waits += 1;
        if hr != RPC_S_CALLPENDING {
            show(
                &format!("   ISynchronize::Wait(0, 100) after {waits} wait(s)"),
                hr,
            );
            break;
        }
        // The client may do other work here and wait again later.
    }

    // Finish_Read hands back the out-parameters and Read's own return value.
    let (hr, data) = call.finish_read();
    show("   Finish_Read()", hr);
    println!("   data = {:?}", String::from_utf8_lossy(&data));

    // With no call in progress, Finish_ says so.
    show("   Finish_Read() again", call.finish_read().0);

    // The call object can be reused for the next call.
    show(
        "   Begin_Read(100) on the same call object",
        call.begin_read(100),
    );
    let (hr, data) = call.finish_read(); // blocks until the server is done (spec D5)
    show("   Finish_Read()", hr);
    println!("   data = {:?}", String::from_utf8_lossy(&data));
    Ok(())
}
