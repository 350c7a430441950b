//! The guided tour: the seed document's procedure ("Making an asynchronous call"), step by
//! step, then its error paths — each step a real COM call on real comasync objects, printed
//! with its `HRESULT` (name and hex value) and one plain sentence on why.
//!
//! The server side is driven by the tour itself (a [`ManualHandler`] queue), so the output is
//! the same on every run and every machine. `comasync tour` prints it.

use std::io::{self, Write};

use crate::call::{create_call_as, FinishMode, ICallFactory, ICancelMethodCalls, ManualHandler};
use crate::hresult::{HRESULT, S_OK};
use crate::simple_stream::{AsyncISimpleStream, ISimpleStream, ISimpleStreamCalls, SimpleStream};
use crate::sync::{ISynchronize, INFINITE};
use crate::unknown::{ComPtr, Interface};

/// One printed step: who does what, what it returned, and why.
struct Tour<'a> {
    out: &'a mut dyn Write,
    n: usize,
}

impl Tour<'_> {
    fn section(&mut self, title: &str) -> io::Result<()> {
        writeln!(self.out, "\n== {title} ==")
    }

    fn step(
        &mut self,
        actor: &str,
        call: &str,
        hr: Option<HRESULT>,
        extra: &str,
        why: &str,
    ) -> io::Result<()> {
        self.n += 1;
        writeln!(self.out, "{:>2}. {actor:<7} {call}", self.n)?;
        if let Some(hr) = hr {
            let name = hr.name().unwrap_or("?");
            writeln!(self.out, "    -> {name} (0x{:08X}){extra}", hr.as_u32())?;
        }
        writeln!(self.out, "    {why}")
    }
}

fn text(bytes: &[u8]) -> String {
    format!(", data = {:?}", String::from_utf8_lossy(bytes))
}

fn run_server(
    handler: &ManualHandler<ISimpleStreamCalls>,
    server: &ComPtr<dyn ISimpleStream>,
) -> bool {
    handler.run_next(&**server).is_some()
}

/// Prints the tour to `out`.
///
/// ```
/// let mut out = Vec::new();
/// comasync::tour::run(&mut out).unwrap();
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.contains("RPC_S_CALLPENDING (0x80010115)"));
/// ```
pub fn run(out: &mut dyn Write) -> io::Result<()> {
    let mut t = Tour { out, n: 0 };
    writeln!(
        t.out,
        "comasync tour: making an asynchronous call (ISimpleStream::Read)"
    )?;
    writeln!(t.out, "Every step below is a real call on comasync's objects; the server runs only when the tour says so.")?;

    t.section("Does the object support asynchronous calls?")?;
    let sync_only = SimpleStream::create_sync_only(b"hello, world".to_vec());
    let hr = sync_only
        .query::<dyn ICallFactory>()
        .err()
        .map(|e| e.code());
    t.step("client", "QueryInterface(IID_ICallFactory) on an object without async support", hr, "",
        "No call factory: this object cannot make call objects, so the client calls ISimpleStream::Read synchronously.")?;

    let (server, handler) =
        SimpleStream::create_manual(b"hello, world".to_vec(), FinishMode::Blocking);
    let factory = server.query::<dyn ICallFactory>();
    t.step("client", "QueryInterface(IID_ICallFactory) on the SimpleStream server", Some(factory.as_ref().map_or_else(|e| e.code(), |_| S_OK)), "",
        "Step 1 of the procedure: the server object implements ICallFactory, so it supports asynchronous calls.")?;
    let factory = factory.map_err(io::Error::other)?;

    t.section("Create a call object")?;
    let iid = <dyn AsyncISimpleStream as Interface>::IID;
    let call = create_call_as::<dyn AsyncISimpleStream>(&*factory, &iid);
    t.step("client", "ICallFactory::CreateCall(IID_AsyncISimpleStream, NULL, IID_AsyncISimpleStream)",
        Some(call.as_ref().map_or_else(|e| e.code(), |_| S_OK)), "",
        "Step 2: a new call object that speaks AsyncISimpleStream; the client then releases ICallFactory.")?;
    let call = call.map_err(io::Error::other)?;
    drop(factory);

    t.section("Begin the call")?;
    let hr = call.begin_read(5);
    t.step("client", "AsyncISimpleStream::Begin_Read(cb = 5)", Some(hr), "",
        "Step 4: the in-parameters go to the server and Begin_ returns at once; the client is free to do other work.")?;
    let hr = call.begin_read(5);
    t.step("client", "AsyncISimpleStream::Begin_Read(cb = 5) again", Some(hr), "",
        "A call object runs one call at a time. The docs call this code RPC_E_CALL_PENDING; its value is 0x80010115.")?;

    t.section("Wait for the server")?;
    let sync = call.query::<dyn ISynchronize>().map_err(io::Error::other)?;
    let hr = sync.wait(0, 0);
    t.step("client", "ISynchronize::Wait(0, 0) on the call object", Some(hr), "",
        "Not yet: the server is still working. A timeout means \"try again later\", not an error in the call.")?;
    run_server(&handler, &server);
    t.step("server", "Read(5) runs, then ISynchronize::Signal() on the call object", None, "",
        "The server finished Begin_ processing and signals the call object's synchronization object.")?;
    let hr = sync.wait(0, INFINITE);
    t.step(
        "client",
        "ISynchronize::Wait(0, INFINITE)",
        Some(hr),
        "",
        "Signaled: Begin_Read has completed, so Finish_Read may be called now.",
    )?;

    t.section("Finish the call")?;
    let (hr, data) = call.finish_read();
    t.step("client", "AsyncISimpleStream::Finish_Read()", Some(hr), &text(&data),
        "Finish_ hands back the out-parameters and exactly what the synchronous Read would have returned.")?;
    let (hr, _) = call.finish_read();
    t.step(
        "client",
        "AsyncISimpleStream::Finish_Read() again",
        Some(hr),
        "",
        "There is no call in progress any more: its result was handed back once.",
    )?;
    let hr = sync.wait(0, 0);
    t.step(
        "client",
        "ISynchronize::Wait(0, 0) after Finish_",
        Some(hr),
        "",
        "The event is manual-reset: it stays signaled until the next Begin_ resets it.",
    )?;

    t.section("Reuse the call object")?;
    let hr = call.begin_read(10);
    t.step(
        "client",
        "AsyncISimpleStream::Begin_Read(cb = 10)",
        Some(hr),
        "",
        "After Finish_ the same call object can make the next call.",
    )?;
    run_server(&handler, &server);
    t.step(
        "server",
        "Read(10) runs and signals",
        None,
        "",
        "The server completes the second call.",
    )?;
    let (hr, data) = call.finish_read();
    t.step("client", "AsyncISimpleStream::Finish_Read()", Some(hr), &text(&data),
        "S_FALSE is Read's own answer: fewer bytes than asked for were left. Finish_ passes it through unchanged.")?;

    t.section("Release before Finish_")?;
    let call2 = create_call_as::<dyn AsyncISimpleStream>(
        &*server
            .query::<dyn ICallFactory>()
            .map_err(io::Error::other)?,
        &iid,
    )
    .map_err(io::Error::other)?;
    let hr = call2.begin_write(b"!".to_vec());
    t.step(
        "client",
        "Begin_Write(\"!\") on a second call object",
        Some(hr),
        "",
        "Another call starts.",
    )?;
    drop(call2);
    t.step("client", "IUnknown::Release() on that call object, without Finish_", None, "",
        "COM notices and abandons the call cleanly: no Finish_, no out-parameters, no return value.")?;
    run_server(&handler, &server);
    t.step(
        "server",
        "Write(\"!\") runs and completes",
        None,
        "",
        "The server may still finish; its results are dropped (\"fire and forget\").",
    )?;

    t.section("Cancel a call")?;
    let hr = call.begin_read(1);
    t.step(
        "client",
        "AsyncISimpleStream::Begin_Read(cb = 1)",
        Some(hr),
        "",
        "A call the client will cancel.",
    )?;
    let cancel = call
        .query::<dyn ICancelMethodCalls>()
        .map_err(io::Error::other)?;
    let hr = cancel.cancel(0);
    t.step("client", "ICancelMethodCalls::Cancel(0)", Some(hr), "",
        "Cancel asks the server to stop and, not waiting any longer (0 seconds), completes the call locally.")?;
    let hr = cancel.test_cancel();
    t.step("client", "ICancelMethodCalls::TestCancel()", Some(hr), "",
        "The call reads as cancelled; a server-side call object sees the same through its outer unknown.")?;
    let hr = call.begin_read(1);
    t.step(
        "client",
        "AsyncISimpleStream::Begin_Read(cb = 1)",
        Some(hr),
        "",
        "Still busy: after a cancel the client must call Finish_ before the next Begin_.",
    )?;
    let (hr, _) = call.finish_read();
    t.step(
        "client",
        "AsyncISimpleStream::Finish_Read()",
        Some(hr),
        "",
        "The cancelled call finishes with RPC_E_CALL_CANCELED and no out-parameters.",
    )?;
    run_server(&handler, &server);
    t.step(
        "server",
        "the cancelled Read(1) completes late",
        None,
        "",
        "There is no guarantee the server stopped; its late result is dropped.",
    )?;
    let hr = cancel.cancel(0);
    t.step(
        "client",
        "ICancelMethodCalls::Cancel(0) with no call",
        Some(hr),
        "",
        "Nothing to cancel: the call is already complete.",
    )?;

    writeln!(
        t.out,
        "\nThat is the whole model. Next: docs/tutorial.md, or `comasync hresult --all`."
    )
}
