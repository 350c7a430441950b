//! The stub: the server side of a marshaled interface. It lives with the object in the
//! object's apartment, holds a reference on it, and serves the calls that proxies send it as
//! messages (spec 2.2, 3.5).
//!
//! For each call, in the object's apartment (on the STA's thread, or on an MTA pool worker):
//!
//! * if the object implements `ICallFactory`, the stub begins the call on a server call
//!   object: its spare (one that finished its last call by the book and is Idle again, spec
//!   2.2), or a new one from `CreateCall(asyncIID, stubUnk, IID_IUnknown, &p)`, aggregated
//!   under a
//!   [`ServerCallHost`] (the stub's unknown, with the stub's
//!   `ISynchronize` and `ICancelMethodCalls`), calls `Begin_`, and on the server's `Signal`
//!   calls `Finish_` and sends the reply. Synchronous client calls are served this way too.
//!   An STA server's `Signal` from a worker thread is carried back to the STA as a message, and
//!   `Finish_` runs there;
//! * otherwise it runs the synchronous method.
//!
//! A call travels as a boxed message (`Apartment::post`), except the calls of a call object
//! to an object in the MTA: such a call waits in its call object, which is queued on the MTA's
//! pool itself (`CallHandler::pool`, as `SyncMethodHandler`'s calls are), and the worker hands
//! it to the stub (`Stub::serve_queued`) with the blanket the client stamped at `Begin_`
//! (`ProxyBlanket::stamp`), so an asynchronous cross-apartment call allocates nothing and has
//! one hand-off. Each call's security context begins in the previous call's memory when
//! nothing holds that any more (`CallSecurity::renew`): a context the server kept stays the
//! old call's.
//!
//! # Invariants
//!
//! * A call's reply is sent once: the server's result, `RPC_E_SERVERFAULT` if the server
//!   panicked, or `RPC_E_DISCONNECTED` if the apartment ended before the call ran (the message
//!   carrying it was dropped) or while the server call object worked on it.
//! * A call the client no longer wants when it reaches the stub (cancelled, released) is not
//!   run.
//! * No stub lock is held while server code runs.

use std::sync::Arc;

use crate::apartment::Apartment;
use crate::call::handler::serve;
use crate::call::{AsyncInterface, ICallFactory, ServerCall, ServerCallHost};
use crate::hresult::{HRESULT, RPC_E_DISCONNECTED};
use crate::security::access::AccessPolicy;
use crate::security::blanket::CallBlanket;
use crate::security::context::{Exit, ServerCode};
use crate::security::server_security::CallSecurity;
use crate::security::Principal;
use crate::sync::prim::Mutex;
use crate::unknown::{ComPtr, IUnknown};

/// A host the stub keeps, and the stub's COM reference on it.
type Held<M> = (Arc<ServerCallHost<M>>, ComPtr<dyn IUnknown>);

/// The server side of one marshaled interface pointer (see the [module docs](self)).
///
/// Aligned to a cache line: each call's message holds an `Arc` of the stub, taken by the
/// client's thread and dropped by the server's, so its reference counts stay off the line of
/// the fields the server's thread works with.
#[repr(align(64))]
pub(crate) struct Stub<M: AsyncInterface> {
    pub(crate) apartment: Arc<Apartment>,
    pub(crate) object: ComPtr<M::Sync>,
    pub(crate) factory: Option<ComPtr<dyn ICallFactory>>,
    /// Who may call the object (its policy when it was marshaled).
    pub(crate) access: Option<Arc<AccessPolicy>>,
    /// The server's identity: the process identity of the thread that marshaled the object.
    /// Every piece of server code the stub runs runs as it (unless it impersonates).
    identity: Principal,
    /// The server call objects the stub keeps: written by the server's thread at every call,
    /// so on a cache line apart from the fields above, which clients read at every call.
    held: Hosts<M>,
}

/// The server call objects a [`Stub`] keeps.
#[repr(align(64))]
struct Hosts<M: AsyncInterface> {
    /// Server call objects working on a call, with a COM reference on each (the stub's: an
    /// aggregated call object signals an outer only while it is referenced), kept until they
    /// signal, or disconnected when the apartment ends.
    hosts: Mutex<Vec<Held<M>>>,
    /// What the last call left for the next: one lock, so a call takes both at once.
    kept: Mutex<Kept<M>>,
}

/// What a [`Stub`]'s last call leaves for the next.
struct Kept<M: AsyncInterface> {
    /// One server call object that finished its call by the book and is Idle again (spec
    /// 2.2), kept for the next call instead of a new `CreateCall`; released when the
    /// apartment ends or the stub goes.
    spare: Option<Held<M>>,
    /// The security context of the last call, renewed for the next one if nothing else holds
    /// it by then ([`CallSecurity::renew`]).
    security: Option<Arc<CallSecurity>>,
}

impl<M: AsyncInterface> Stub<M> {
    pub(crate) fn new(
        apartment: Arc<Apartment>,
        object: ComPtr<M::Sync>,
        factory: Option<ComPtr<dyn ICallFactory>>,
        access: Option<Arc<AccessPolicy>>,
        identity: Principal,
    ) -> Arc<Stub<M>> {
        let stub = Arc::new(Stub {
            apartment,
            object,
            factory,
            access,
            identity,
            held: Hosts {
                hosts: Mutex::new(Vec::new()),
                kept: Mutex::new(Kept {
                    spare: None,
                    security: None,
                }),
            },
        });
        let weak = Arc::downgrade(&stub);
        stub.apartment.on_end(Box::new(move || {
            if let Some(stub) = weak.upgrade() {
                stub.disconnect();
            }
        }));
        stub
    }

    /// Sends one call to the object's apartment. `sync`: a synchronous client call (the
    /// server's method sees it as its call context, `CoTestCancel`); `blanket`: the security
    /// the call began with. If the apartment has ended, the call fails with
    /// `RPC_E_DISCONNECTED`.
    pub(crate) fn send(
        self: &Arc<Self>,
        call: ServerCall<M>,
        input: M::In,
        sync: bool,
        blanket: CallBlanket,
    ) {
        let delivery = Delivery {
            stub: self.clone(),
            call: Some((call, input)),
            sync,
            blanket: Some(blanket),
        };
        let _ = self.apartment.post(delivery);
    }

    /// Serves one call of a call object to an object in the MTA, on the MTA worker that runs
    /// the call object's queued call (`CallHandler::pool`), with the `blanket` its client
    /// stamped at `Begin_`. If the apartment has ended, the call fails with
    /// `RPC_E_DISCONNECTED`.
    pub(crate) fn serve_queued(&self, call: ServerCall<M>, input: M::In, blanket: CallBlanket) {
        let delivery = Delivery {
            stub: self,
            call: Some((call, input)),
            sync: false,
            blanket: Some(blanket),
        };
        self.apartment.clone().run_incoming(move || delivery.run());
    }

    /// The apartment ended: the calls in progress fail with `RPC_E_DISCONNECTED`.
    fn disconnect(&self) {
        let spare = self.held.kept.lock().spare.take();
        drop(spare);
        let hosts = std::mem::take(&mut *self.held.hosts.lock());
        for (h, _reference) in hosts {
            h.disconnect(RPC_E_DISCONNECTED);
        }
    }

    /// A host for a new server call object, made by the server's `CreateCall` (server code:
    /// it runs as the server's identity, with no call context).
    fn create_host(&self, factory: &dyn ICallFactory) -> Result<Arc<ServerCallHost<M>>, HRESULT> {
        let _server = ServerCode::enter(self.identity.clone());
        ServerCallHost::<M>::from_call_factory(factory)
    }

    /// Serves one call, in the object's apartment: the access check, then the server code,
    /// each piece of it in a [`ServerCode`] frame with the call's context.
    fn serve(&self, call: ServerCall<M>, input: M::In, sync: bool, blanket: CallBlanket) {
        if !call.is_wanted() {
            return; // cancelled or released before it arrived: not run
        }
        if let Some(policy) = &self.access {
            let hr = policy.check(&blanket);
            if hr.failed() {
                return call.fail(hr); // E_ACCESSDENIED: no server code runs
            }
        }
        let (last, spare) = {
            let mut kept = self.held.kept.lock();
            let spare = if self.factory.is_some() {
                kept.spare.take()
            } else {
                None
            };
            (kept.security.take(), spare)
        };
        let (security, previous) = match last {
            Some(last) => CallSecurity::renew(last, blanket),
            None => (CallSecurity::new(blanket, self.identity.clone()), None),
        };
        // Dropped when the call is served (also if server code panics): gives the stub back
        // this context and the spare, under one lock, then drops the previous call's blanket.
        let mut back = GiveBack {
            stub: self,
            security: Some(security.clone()),
            spare: None,
            _previous: previous,
        };
        if let Some(factory) = &self.factory {
            let (host, reference) = match spare {
                Some(held) => held,
                None => match self.create_host(&**factory) {
                    Ok(host) => {
                        if self.apartment.kind() == crate::apartment::AptType::Sta {
                            host.set_home(self.apartment.clone());
                        }
                        // The stub's reference, taken before Begin_: the server may signal
                        // at once.
                        let reference = ComPtr::new(host.clone() as Arc<dyn IUnknown>);
                        (host, reference)
                    }
                    Err(hr) => return call.fail(hr),
                },
            };
            host.begin_secure(call, input, Some(security));
            match host.idle_reusable() {
                // Signalled inside Begin_ (a server that completes at once): done. The spare
                // if it went by the book (given back with the context), else released here.
                Some(true) => back.spare = Some((host, reference)),
                Some(false) => drop((host, reference)),
                None => {
                    // Kept after Begin_, so every host in the list has begun: an idle one is
                    // done, and becomes the spare or is released (outside the lock).
                    let done = {
                        let mut hosts = self.held.hosts.lock();
                        let mut done = Vec::new();
                        for held in std::mem::take(&mut *hosts) {
                            match held.0.idle_reusable() {
                                Some(reusable) => done.push((held, reusable)),
                                None => hosts.push(held),
                            }
                        }
                        hosts.push((host, reference));
                        done
                    };
                    for (held, reusable) in done {
                        match back.spare {
                            None if reusable => back.spare = Some(held),
                            _ => drop(held),
                        }
                    }
                }
            }
            return;
        }
        let context = sync.then(|| crate::call::cancel::CallContext::enter(call.test_cancel_fn()));
        let server = ServerCode::of(security, Exit::End);
        serve(call, || M::invoke_sync(&*self.object, input));
        drop(server);
        drop(context);
    }
}

/// Gives the stub back what a call leaves for the next when the stub is done with it (also
/// if server code panics): its security context, for the next call to renew, and its server
/// call object if that is Idle again by the book, as the spare (if there is none yet). One
/// lock; what they replace is dropped outside it.
struct GiveBack<'a, M: AsyncInterface> {
    stub: &'a Stub<M>,
    security: Option<Arc<CallSecurity>>,
    spare: Option<Held<M>>,
    /// The previous call's blanket, dropped here, off the way to the server's code.
    _previous: Option<CallBlanket>,
}

impl<M: AsyncInterface> Drop for GiveBack<'_, M> {
    fn drop(&mut self) {
        let stub = self.stub;
        let spare = self.spare.take().filter(|_| stub.apartment.is_alive());
        let old = {
            let mut k = stub.held.kept.lock();
            let security = match self.security.take() {
                Some(s) => k.security.replace(s),
                None => None,
            };
            let spare = match spare {
                Some(held) if k.spare.is_none() => k.spare.replace(held),
                extra => extra,
            };
            (security, spare)
        };
        drop(old); // outside the lock
        if stub.factory.is_some() && !stub.apartment.is_alive() {
            // The apartment ended meanwhile (MTA): no server call object the stub keeps (the
            // spare, or one in the list) outlives it.
            stub.disconnect();
        }
    }
}

/// One call travelling to the stub's apartment; dropped unrun, it fails the call with
/// `RPC_E_DISCONNECTED`. `S` is how it holds the stub: an `Arc` in a boxed message, a
/// reference while a queued call is served.
struct Delivery<M: AsyncInterface, S: std::ops::Deref<Target = Stub<M>> = Arc<Stub<M>>> {
    stub: S,
    call: Option<(ServerCall<M>, M::In)>,
    sync: bool,
    blanket: Option<CallBlanket>,
}

impl<M: AsyncInterface> crate::apartment::Incoming for Delivery<M> {
    fn apartment(&self) -> Option<&Arc<Apartment>> {
        Some(&self.stub.apartment)
    }

    fn run(self) {
        Delivery::run(self)
    }
}

impl<M: AsyncInterface, S: std::ops::Deref<Target = Stub<M>>> Delivery<M, S> {
    fn run(mut self) {
        if let (Some((call, input)), Some(blanket)) = (self.call.take(), self.blanket.take()) {
            crate::apartment::note_dispatch(|| {
                let method = M::METHODS.get(M::method_of(&input)).copied().unwrap_or("?");
                let kind = if self.sync {
                    "synchronous"
                } else {
                    "asynchronous"
                };
                // Server code runs as the server's identity (docs/security.md).
                let who = self.stub.identity.name();
                match (&self.stub.factory, call.is_wanted()) {
                    (_, false) => format!("stub: {method} (cancelled before it arrived: not run)"),
                    (Some(_), true) => format!(
                        "stub: Begin_{method} on the server's call object ({kind} call), as {who}"
                    ),
                    (None, true) => format!("stub: {method} ({kind} call), as {who}"),
                }
            });
            self.stub.serve(call, input, self.sync, blanket);
        }
    }
}

impl<M: AsyncInterface, S: std::ops::Deref<Target = Stub<M>>> Drop for Delivery<M, S> {
    fn drop(&mut self) {
        if let Some((call, input)) = self.call.take() {
            call.fail(RPC_E_DISCONNECTED);
            drop(input);
        }
    }
}
