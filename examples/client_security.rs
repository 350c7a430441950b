//! Client security on a cross-apartment call (spec 1.10, 3.3): a client reads and changes the
//! security blanket of a proxy and of a call object, copies a proxy, and meets the server's
//! access check.
//!
//! The server (in the MTA, running as `server`) has an object `IWhoAmI` whose method — and
//! whose server-side call object — impersonate the caller and report whom they ran as and at
//! which authentication level. It lets in `alice` only. The client thread (an STA) runs as
//! `alice`:
//!
//! * a new proxy has the default blanket (`RPC_C_AUTHN_LEVEL_CONNECT`, `IDENTIFY`): the
//!   server can read alice's identity but not act as it, so it runs as itself;
//! * `CoSetProxyBlanket` with `RPC_C_IMP_LEVEL_IMPERSONATE` changes it for every user of the
//!   proxy: now the server acts as alice;
//! * a call object starts from its proxy's blanket and keeps its own: a `pAuthInfo` naming
//!   `bob` on it changes only its calls — and bob is refused (`E_ACCESSDENIED`) before any
//!   server code runs;
//! * `CoCopyProxy` gives a proxy with a private blanket.
//!
//! Run it with `cargo run --example client_security`.

use std::any::Any;
use std::sync::{mpsc, Mutex};
use std::thread;

use comasync::apartment::{
    co_initialize_ex, co_uninitialize, COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED,
};
use comasync::call::{create_aggregated_call, create_call_for, ICallFactory};
use comasync::hresult::{E_ACCESSDENIED, E_NOTIMPL, S_OK};
use comasync::marshal::{
    co_get_interface_and_release_stream, co_marshal_inter_thread_interface_in_stream,
};
use comasync::security::*;
use comasync::sync::{co_wait_for_multiple_handles, ISynchronize, HANDLE, INFINITE};
use comasync::unknown::{query, ComPtr, IUnknown, Interface};
use comasync::HRESULT;

/// Reports whom the server code ran as while impersonating its caller.
#[comasync::interface(
    iid = "{5B0C7A40-3E21-4B7D-9A61-0C2E8F4D1A01}",
    async_iid = "{5B0C7A41-3E21-4B7D-9A61-0C2E8F4D1A01}",
    scripts = false
)]
pub trait IWhoAmI {
    /// Impersonates the caller: the identity the server then runs as, and the call's
    /// authentication level.
    #[out(name, authn_level)]
    fn who_am_i(&self) -> (HRESULT, String, u32);
}

/// The server code of both the method and the call object.
fn impersonated() -> (HRESULT, String, u32) {
    let level = server_security_context()
        .and_then(|s| s.query_blanket())
        .map_or(0, |b| b.authn_level);
    let hr = co_impersonate_client();
    let name = current_identity().name().to_string();
    (hr, name, level)
}

#[comasync::implement(IWhoAmI, ICallFactory)]
struct WhoAmI;

impl IWhoAmI for WhoAmI_Impl {
    fn who_am_i(&self) -> (HRESULT, String, u32) {
        impersonated()
    }
}

impl ICallFactory for WhoAmI_Impl {
    fn create_call(
        &self,
        riid: &comasync::guid::IID,
        outer: Option<&ComPtr<dyn IUnknown>>,
        riid2: &comasync::guid::IID,
        ppv: Option<&mut dyn Any>,
    ) -> HRESULT {
        // Only ever aggregated by the stub here.
        create_aggregated_call::<dyn AsyncIWhoAmI>(riid, outer, riid2, ppv, |outer| {
            WhoAmICall {
                result: Mutex::new((E_NOTIMPL, String::new(), 0)),
            }
            .into_aggregated(outer)
        })
    }
}

/// The server-side call object: `Begin_` does the work and signals; `Finish_` reports it.
#[comasync::implement(AsyncIWhoAmI)]
struct WhoAmICall {
    result: Mutex<(HRESULT, String, u32)>,
}

impl AsyncIWhoAmI for WhoAmICall_Impl {
    fn begin_who_am_i(&self) -> HRESULT {
        *self.result.lock().unwrap() = impersonated();
        query::<dyn ISynchronize>(self).map_or(E_NOTIMPL, |s| s.signal())
    }
    fn finish_who_am_i(&self) -> (HRESULT, String, u32) {
        self.result.lock().unwrap().clone()
    }
}

fn main() -> comasync::Result<()> {
    let iid = <dyn IWhoAmI as Interface>::IID;
    let done = HANDLE::create_event(true, false);
    let (tx, rx) = mpsc::channel();

    let server_done = done.clone();
    let server = thread::spawn(move || -> comasync::Result<()> {
        co_initialize_ex(None, COINIT_MULTITHREADED).ok()?;
        set_process_identity(Principal::new("server"));
        let object = WhoAmI.into_interface::<dyn IWhoAmI>()?;
        set_access_policy(&*object, AccessPolicy::allow(["alice"]));
        let stream = co_marshal_inter_thread_interface_in_stream::<IWhoAmICalls>(&iid, &*object)?;
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
        let proxy = co_get_interface_and_release_stream::<IWhoAmICalls>(stream, &iid)?;

        let b = co_query_proxy_blanket(&*proxy)?;
        println!(
            "a new proxy: authn level {}, imp level {}",
            b.authn_level, b.imp_level
        );
        let (hr, name, level) = proxy.who_am_i();
        println!("identify level: ImpersonateClient -> {hr:?}, the server runs as {name} (level {level})");
        assert_eq!((hr, name.as_str()), (S_OK, "server"));

        let impersonate =
            Blanket::with_levels(RPC_C_AUTHN_LEVEL_PKT_PRIVACY, RPC_C_IMP_LEVEL_IMPERSONATE);
        co_set_proxy_blanket(&*proxy, &impersonate).ok()?;
        let (_, name, level) = proxy.who_am_i();
        println!("impersonate level: the server runs as {name} (level {level})");
        assert_eq!(name, "alice");

        let factory = proxy.query::<dyn ICallFactory>()?;
        let call = create_call_for::<dyn AsyncIWhoAmI>(&*factory)?;
        assert_eq!(co_query_proxy_blanket(&*call)?, impersonate); // starts from the proxy's
        assert_eq!(call.begin_who_am_i(), S_OK);
        let (_, name, _) = call.finish_who_am_i();
        println!("a call object's call: the server runs as {name}");
        let as_bob = Blanket {
            auth_info: Some(Principal::new("bob")),
            ..impersonate.clone()
        };
        co_set_proxy_blanket(&*call, &as_bob).ok()?;
        let hr = call.begin_who_am_i();
        println!("the call object as bob: Begin_ -> {hr:?}");
        assert_eq!(hr, E_ACCESSDENIED);
        assert_eq!(co_query_proxy_blanket(&*proxy)?, impersonate); // the proxy kept its own

        let copy = co_copy_proxy(&*proxy)?.query::<dyn IWhoAmI>()?;
        co_set_proxy_blanket(&*copy, &Blanket::default()).ok()?;
        let (_, on_copy, _) = copy.who_am_i();
        let (_, on_proxy, _) = proxy.who_am_i();
        println!("a copied proxy at the default blanket: {on_copy}; the original: {on_proxy}");
        assert_eq!((on_copy.as_str(), on_proxy.as_str()), ("server", "alice"));

        drop((call, factory, copy, proxy));
        co_uninitialize();
        Ok(())
    });
    client.join().expect("client thread")?;
    done.set_event();
    server.join().expect("server thread")?;
    println!("done");
    Ok(())
}
