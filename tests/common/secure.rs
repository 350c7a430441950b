#![allow(dead_code)]
//! A server STA running as `server` and client STAs running as named principals, for the
//! call-security tests.

use std::sync::Arc;

use comasync::call::{create_call_as, ICallFactory};
use comasync::marshal::*;
use comasync::security::{set_access_policy, set_process_identity, AccessPolicy, Principal};
use comasync::unknown::{ComPtr, Interface};
use comasync::HRESULT;

use crate::apartments::Sta;
use crate::who::{AsyncIWho, IWho, IWhoCalls, Step, WhoAsync, WhoLog, WhoSync};

/// The server's process identity in these tests.
pub const SERVER: &str = "server";

/// Which server to make.
#[derive(Clone, Copy)]
pub enum Kind {
    /// Synchronous method only.
    Sync,
    /// With a server-side call object.
    Async,
}

/// A server object in an STA of its own running as [`SERVER`].
pub struct Server {
    pub sta: Sta,
    pub log: Arc<WhoLog>,
    object: ComPtr<dyn IWho>,
}

impl Server {
    pub fn start(kind: Kind, policy: Option<AccessPolicy>) -> Server {
        let sta = Sta::start();
        let (object, log) = sta.run(move || {
            set_process_identity(Principal::new(SERVER));
            let (object, log) = match kind {
                Kind::Sync => WhoSync::create(),
                Kind::Async => WhoAsync::create(Principal::new(SERVER)),
            };
            if let Some(p) = policy {
                set_access_policy(&*object, p);
            }
            (object, log)
        });
        Server { sta, log, object }
    }

    /// The object marshaled out of its STA (a new stream each time).
    pub fn stream(&mut self) -> MarshalStream {
        let object = self.object.clone();
        self.sta.run(move || {
            co_marshal_inter_thread_interface_in_stream::<IWhoCalls>(&iid(), &*object).unwrap()
        })
    }

    /// The identity the server's STA thread has now, outside any call.
    pub fn thread_identity(&self) -> String {
        self.sta
            .run(|| comasync::security::current_identity().name().to_string())
    }
}

pub fn iid() -> comasync::guid::IID {
    <dyn IWho as Interface>::IID
}

/// A client STA running as `name`.
pub fn client(name: &str) -> Sta {
    let sta = Sta::start();
    let p = Principal::new(name);
    sta.run(move || {
        set_process_identity(p);
    });
    sta
}

/// A client STA running as `principal`.
pub fn client_as(principal: Principal) -> Sta {
    let sta = Sta::start();
    sta.run(move || {
        set_process_identity(principal);
    });
    sta
}

/// `alice`, in an STA of her own, runs `f` on a proxy to a new `kind` server (no access
/// policy): the server, still running, and what `f` returned.
pub fn alice_on<T: Send + 'static>(
    kind: Kind,
    f: impl FnOnce(ComPtr<dyn IWho>) -> T + Send + 'static,
) -> (Server, T) {
    let mut server = Server::start(kind, None);
    let stream = server.stream();
    let t = client("alice").run(move || f(unmarshal(stream)));
    (server, t)
}

pub fn unmarshal(stream: MarshalStream) -> ComPtr<dyn IWho> {
    co_get_interface_and_release_stream::<IWhoCalls>(stream, &iid()).unwrap()
}

pub fn new_call(proxy: &ComPtr<dyn IWho>) -> ComPtr<dyn AsyncIWho> {
    let factory = proxy.query::<dyn ICallFactory>().unwrap();
    create_call_as::<dyn AsyncIWho>(&*factory, &<dyn AsyncIWho as Interface>::IID).unwrap()
}

/// `Begin_Run` then `Finish_Run` on `call`: `Begin_`'s HRESULT, and `Finish_`'s answer if
/// `Begin_` succeeded.
pub fn begin_finish(
    call: &ComPtr<dyn AsyncIWho>,
    tag: &str,
    steps: Vec<Step>,
    finish: Vec<Step>,
) -> (HRESULT, Option<(HRESULT, Vec<String>)>) {
    let hr = call.begin_run(tag.to_string(), steps, finish);
    if hr.failed() {
        return (hr, None);
    }
    (hr, Some(call.finish_run()))
}

/// Strings from `&str`s.
pub fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}
