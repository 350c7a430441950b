//! Impersonation and asynchronous calls (spec 1.8, 1.10, 3.4, D10), seen from the server.
//!
//! The server (in the MTA, running as `server`) has a server-side call object whose `Begin_`
//! impersonates its client (`alice`, calling at `RPC_C_IMP_LEVEL_IMPERSONATE`) and signals
//! while impersonating. Every step records the identity it ran as:
//!
//! * outside a call, `CoGetCallContext` is `RPC_E_CALL_COMPLETE`;
//! * in `Begin_`, `CoImpersonateClient` makes the server run as alice;
//! * `Finish_` (run inside `Signal`) cannot impersonate and runs as the server;
//! * after `Signal`, impersonating and the call context fail with `RPC_E_CALL_COMPLETE`, but the
//!   token taken before `Signal` stays until `Begin_` returns;
//! * one `CoRevertToSelf` undoes any number of impersonations;
//! * the next call starts as the server: nothing leaked;
//! * at `RPC_C_AUTHN_LEVEL_NONE` impersonation fails (`RPC_E_UNSECURE_CALL`).
//!
//! Run it with `cargo run --example impersonation`.

use std::any::Any;
use std::sync::{mpsc, Arc, Mutex};
use std::thread;

use comasync::apartment::{
    co_initialize_ex, co_uninitialize, COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED,
};
use comasync::call::{create_aggregated_call, create_call_for, ICallFactory};
use comasync::guid::IID_IServerSecurity;
use comasync::hresult::{RPC_E_CALL_COMPLETE, RPC_E_UNSECURE_CALL, S_OK};
use comasync::marshal::{
    co_get_interface_and_release_stream, co_marshal_inter_thread_interface_in_stream,
};
use comasync::security::*;
use comasync::sync::{co_wait_for_multiple_handles, ISynchronize, HANDLE, INFINITE};
use comasync::unknown::{query, ComPtr, IUnknown, Interface};
use comasync::HRESULT;

/// A server that records what its code observes.
#[comasync::interface(
    iid = "{6C1D8B50-4F32-4C8E-8B72-1D3F9A5E2B01}",
    async_iid = "{6C1D8B51-4F32-4C8E-8B72-1D3F9A5E2B01}",
    scripts = false
)]
pub trait IImpersonating {
    /// Runs the server's steps for call `n`.
    fn work(&self, n: u32) -> HRESULT;
}

type Log = Arc<Mutex<Vec<String>>>;

fn note(log: &Log, line: String) {
    log.lock().unwrap().push(line);
}

fn who() -> String {
    current_identity().name().to_string()
}

#[comasync::implement(IImpersonating, ICallFactory)]
struct Server {
    log: Log,
}

impl IImpersonating for Server_Impl {
    /// Not called in this example: the stub serves synchronous calls through the server's
    /// call object too (spec 3.5).
    fn work(&self, _n: u32) -> HRESULT {
        S_OK
    }
}

impl ICallFactory for Server_Impl {
    fn create_call(
        &self,
        riid: &comasync::guid::IID,
        outer: Option<&ComPtr<dyn IUnknown>>,
        riid2: &comasync::guid::IID,
        ppv: Option<&mut dyn Any>,
    ) -> HRESULT {
        create_aggregated_call::<dyn AsyncIImpersonating>(riid, outer, riid2, ppv, |outer| {
            ServerCall {
                log: self.log.clone(),
                n: Mutex::new(0),
            }
            .into_aggregated(outer)
        })
    }
}

/// The server-side call object.
#[comasync::implement(AsyncIImpersonating)]
struct ServerCall {
    log: Log,
    n: Mutex<u32>,
}

impl AsyncIImpersonating for ServerCall_Impl {
    fn begin_work(&self, n: u32) -> HRESULT {
        *self.n.lock().unwrap() = n;
        let log = &self.log;
        note(log, format!("call {n}: Begin_ starts as {}", who()));
        let (a, b) = (co_impersonate_client(), co_impersonate_client());
        let r = co_revert_to_self();
        note(
            log,
            format!(
                "call {n}: impersonate twice -> {a:?}, {b:?}; one revert -> {r:?}; runs as {}",
                who()
            ),
        );
        let hr = co_impersonate_client();
        note(
            log,
            format!("call {n}: CoImpersonateClient -> {hr:?}; runs as {}", who()),
        );
        let sync = query::<dyn ISynchronize>(self).expect("the stub's ISynchronize");
        let _ = sync.signal(); // Finish_ runs now, inside Signal
        note(
            log,
            format!("call {n}: after Signal, still runs as {}", who()),
        );
        let hr = co_impersonate_client();
        let mut slot: Option<ComPtr<dyn IServerSecurity>> = None;
        let ctx = co_get_call_context(&IID_IServerSecurity, &mut slot);
        note(
            log,
            format!("call {n}: after Signal, impersonate -> {hr:?}, call context -> {ctx:?}"),
        );
        assert_eq!((hr, ctx), (RPC_E_CALL_COMPLETE, RPC_E_CALL_COMPLETE));
        S_OK // the token taken before Signal ends now
    }
    fn finish_work(&self) -> HRESULT {
        let n = *self.n.lock().unwrap();
        let hr = co_impersonate_client();
        note(
            &self.log,
            format!("call {n}: Finish_ impersonate -> {hr:?}; runs as {}", who()),
        );
        S_OK
    }
}

fn main() -> comasync::Result<()> {
    let iid = <dyn IImpersonating as Interface>::IID;
    let done = HANDLE::create_event(true, false);
    let (tx, rx) = mpsc::channel();
    let log: Log = Arc::default();

    let server_done = done.clone();
    let server_log = log.clone();
    let server = thread::spawn(move || -> comasync::Result<()> {
        co_initialize_ex(None, COINIT_MULTITHREADED).ok()?;
        set_process_identity(Principal::new("server"));
        let mut slot: Option<ComPtr<dyn IServerSecurity>> = None;
        let hr = co_get_call_context(&IID_IServerSecurity, &mut slot);
        println!("outside a call: CoGetCallContext -> {hr:?}");
        assert_eq!(hr, RPC_E_CALL_COMPLETE);
        let object = Server { log: server_log }.into_interface::<dyn IImpersonating>()?;
        let stream =
            co_marshal_inter_thread_interface_in_stream::<IImpersonatingCalls>(&iid, &*object)?;
        tx.send(stream).expect("the client is listening");
        drop(object);
        co_wait_for_multiple_handles(0, INFINITE, Some(&[server_done]), Some(&mut 0)).ok()?;
        co_uninitialize();
        Ok(())
    });

    let stream = rx.recv().expect("the server marshaled its object");
    let client = thread::spawn(move || -> comasync::Result<()> {
        co_initialize_ex(None, COINIT_APARTMENTTHREADED).ok()?;
        set_process_identity(Principal::new("alice"));
        let proxy = co_get_interface_and_release_stream::<IImpersonatingCalls>(stream, &iid)?;
        let blanket = Blanket::with_levels(RPC_C_AUTHN_LEVEL_PKT, RPC_C_IMP_LEVEL_IMPERSONATE);
        co_set_proxy_blanket(&*proxy, &blanket).ok()?;
        let factory = proxy.query::<dyn ICallFactory>()?;
        let call = create_call_for::<dyn AsyncIImpersonating>(&*factory)?;
        for n in 1..=2 {
            assert_eq!(call.begin_work(n), S_OK);
            assert_eq!(call.finish_work(), S_OK);
        }
        // At authentication level NONE the server cannot impersonate.
        let none = Blanket::with_levels(RPC_C_AUTHN_LEVEL_NONE, RPC_C_IMP_LEVEL_IMPERSONATE);
        co_set_proxy_blanket(&*call, &none).ok()?;
        assert_eq!(call.begin_work(3), S_OK);
        assert_eq!(call.finish_work(), S_OK);
        drop((call, factory, proxy));
        co_uninitialize();
        Ok(())
    });
    client.join().expect("client thread")?;
    done.set_event();
    server.join().expect("server thread")?;
    let log = log.lock().unwrap();
    for line in log.iter() {
        println!("{line}");
    }
    // The rules, checked.
    let line = |prefix: &str| {
        log.iter()
            .find(|l| l.starts_with(prefix))
            .cloned()
            .unwrap_or_default()
    };
    assert!(line("call 1: CoImpersonateClient").ends_with("runs as alice"));
    assert!(line("call 1: Finish_").ends_with("runs as server"));
    assert!(line("call 1: after Signal, still").ends_with("runs as alice"));
    assert!(
        line("call 1: impersonate twice").ends_with("runs as server"),
        "one revert"
    );
    assert!(
        line("call 2: Begin_ starts").ends_with("as server"),
        "nothing leaked"
    );
    assert!(line("call 3: CoImpersonateClient").contains(&format!("{RPC_E_UNSECURE_CALL:?}")));
    println!("done");
    Ok(())
}
