//! Hosting a server-side call object written as the Microsoft samples write them (spec 2.2,
//! 3.5): the host plays COM's stub. It aggregates the server's call object under itself, hands
//! it each call's in-parameters through `Begin_`, and lends it the stub's `ISynchronize` and
//! `ICancelMethodCalls`, which the server reaches by `QueryInterface` on its outer unknown.
//!
//! When the server calls `Signal` on that `ISynchronize`, the host calls the server's
//! `Finish_` (on the signalling thread, as the stub does after `Signal`) and completes the
//! client's call with what it returns. A failed `Begin_` completes the call with its
//! `HRESULT`. The server's `TestCancel` through its outer reports the client's cancel.
//!
//! Server code must not hold its own lock while it calls `Signal`: the host calls its
//! `Finish_` from inside `Signal`.
//!
//! # Invariants
//!
//! * The server call object runs one call at a time, as the samples' own state requires: the
//!   host begins a call on it only after the previous one was signalled (or its `Begin_`
//!   failed). A client call begun while the server still works on an earlier, locally
//!   cancelled call waits in the host and is begun when the server signals; if the client has
//!   given it up by then, it is skipped.
//! * A `Signal` completes exactly the call the server was working on, never a later one: the
//!   late result of a cancelled call is dropped by the client's call object (its generation is
//!   old), and cannot complete the call begun after it.
//! * A panic in the server's `Begin_` or `Finish_` completes the call with
//!   `RPC_E_SERVERFAULT`; no host lock is held while server code runs.

use std::any::Any;
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};

use super::cancel::ICancelMethodCalls;
use super::handler::{CallHandler, ServerCall};
use super::interface::AsyncInterface;
use super::state::CallState;
use crate::guid::IID;
use crate::hresult::{E_NOINTERFACE, E_NOTIMPL, E_UNEXPECTED, HRESULT, RPC_E_SERVERFAULT, S_OK};
use crate::security::context::{Exit, ServerCode};
use crate::security::server_security::CallSecurity;
use crate::sync::prim::Mutex;
use crate::sync::wait::wait_single;
use crate::sync::{ISynchronize, HANDLE};
use crate::unknown::{ComPtr, INonDelegatingUnknown, IUnknown, Interface, RefCount};

struct Current<M: AsyncInterface> {
    /// Whether the server call object is working on a call (begun, not yet signalled).
    busy: bool,
    /// Counts the calls begun on the server, to tell whose `Begin_` failed.
    seq: u64,
    /// The client's call the server works on (`None` once its `Signal` took it).
    call: Option<ServerCall<M>>,
    method: usize,
    /// The security context of the call in progress (calls through a stub).
    security: Option<Arc<CallSecurity>>,
    /// Client calls begun while the server was busy, oldest first.
    waiting: VecDeque<Waiting<M>>,
    /// Whether the server call object is installed ([`ServerCallHost::server`]) and not
    /// disconnected: read with the call's bookkeeping, under the same lock.
    installed: bool,
    /// Whether every call so far went by the book (`Begin_` succeeded, no panic, no
    /// disconnection): only such a server call object is begun again for another client call
    /// by the stub (see [`ServerCallHost::idle_reusable`]).
    clean: bool,
}

/// A client call waiting for the server call object: its token, in-parameters and security
/// context.
type Waiting<M> = (
    ServerCall<M>,
    <M as AsyncInterface>::In,
    Option<Arc<CallSecurity>>,
);

/// What `start` begins: the in-parameters, the call's sequence number and security context,
/// and whether the server call object is there to begin it on (read with the call, under the
/// host's lock).
type Next<M> = (
    <M as AsyncInterface>::In,
    u64,
    Option<Arc<CallSecurity>>,
    bool,
);

/// The stub-side host of one server-side call object (see the [module docs](self)).
///
/// ```
/// use std::sync::{Arc, Mutex, Weak};
/// use comasync::call::{create_call, FinishMode, ServerCallHost};
/// use comasync::hresult::{HRESULT, E_NOTIMPL, E_UNEXPECTED, S_OK};
/// use comasync::simple_stream::{AsyncISimpleStream, ISimpleStreamCalls};
/// use comasync::sync::ISynchronize;
/// use comasync::unknown::{query, ComPtr, INonDelegatingUnknown, Interface, RefCount};
///
/// // A server-side call object as the samples write one: Begin_ does the work and signals
/// // the ISynchronize it finds on its outer (the host); Finish_ hands back the result.
/// struct Echo { refs: RefCount, me: Weak<Echo>, cb: Mutex<u32> }
/// impl AsyncISimpleStream for Echo {
///     fn begin_read(&self, cb: u32) -> HRESULT {
///         *self.cb.lock().unwrap() = cb;
///         query::<dyn ISynchronize>(self).map_or(E_UNEXPECTED, |sync| sync.signal())
///     }
///     fn finish_read(&self) -> (HRESULT, Vec<u8>) {
///         (S_OK, vec![b'x'; *self.cb.lock().unwrap() as usize])
///     }
///     fn begin_write(&self, _: Vec<u8>) -> HRESULT { E_NOTIMPL }
///     fn finish_write(&self) -> (HRESULT, u32) { (E_NOTIMPL, 0) }
/// }
/// comasync::com_object!([] Echo { interfaces: [dyn AsyncISimpleStream] });
///
/// let host = ServerCallHost::<ISimpleStreamCalls>::new(|outer| {
///     let refs = RefCount::aggregated(outer);
///     Arc::new_cyclic(|me| Echo { refs, me: me.clone(), cb: Mutex::new(0) }) as Arc<dyn INonDelegatingUnknown>
/// })
/// .unwrap();
/// let riid = <dyn AsyncISimpleStream as Interface>::IID;
/// let mut call: Option<ComPtr<dyn AsyncISimpleStream>> = None;
/// assert_eq!(create_call::<ISimpleStreamCalls>(&riid, None, &riid, Some(&mut call), host, FinishMode::Blocking), S_OK);
/// let call = call.unwrap();
/// assert_eq!(call.begin_read(3), S_OK);
/// assert_eq!(call.finish_read(), (S_OK, b"xxx".to_vec()));
/// assert_eq!(call.begin_write(vec![1]), S_OK); // the server's Begin_ failed...
/// assert_eq!(call.finish_write(), (E_NOTIMPL, 0)); // ...and Finish_ says so
/// ```
pub struct ServerCallHost<M: AsyncInterface> {
    refs: RefCount,
    me: Weak<ServerCallHost<M>>,
    event: HANDLE,
    /// The server call object's non-delegating unknown (the host's reference on it).
    inner: Mutex<Option<ComPtr<dyn IUnknown>>>,
    current: Mutex<Current<M>>,
    /// The server call object as the asynchronous interface (memory only: no COM reference,
    /// which would be a reference on the host itself), set once by `install`; used only while
    /// [`Current::installed`] says so. Outside the lock: a call borrows it, no count changes.
    server: std::sync::OnceLock<Arc<M::Async>>,
    /// The STA the server call object lives in, if any: a `Signal` from another thread is
    /// carried there as a message, and the host calls `Finish_` in that apartment.
    home: std::sync::OnceLock<Arc<crate::apartment::Apartment>>,
}

impl<M: AsyncInterface> ServerCallHost<M> {
    /// A host for the server call object that `create` builds, aggregated under the host's
    /// unknown (passed to `create` as its outer). `create` returns the object's non-delegating
    /// unknown; the object must answer `M`'s asynchronous IID.
    pub fn new(
        create: impl FnOnce(Weak<dyn IUnknown>) -> Arc<dyn INonDelegatingUnknown>,
    ) -> Result<Arc<ServerCallHost<M>>, HRESULT> {
        let host = Self::empty();
        let outer: Weak<dyn IUnknown> = Arc::downgrade(&host) as Weak<dyn IUnknown>;
        let inner = create(outer);
        host.install(crate::unknown::non_delegating(inner))
    }

    /// A host whose server call object is made by the server object's own `ICallFactory`, as
    /// the stub makes it: `CreateCall(asyncIID, hostUnk, IID_IUnknown, &p)` (spec 2.2). A
    /// failing `CreateCall` is returned.
    pub fn from_call_factory(
        factory: &(impl super::ICallFactory + ?Sized),
    ) -> Result<Arc<ServerCallHost<M>>, HRESULT> {
        let host = Self::empty();
        let outer = ComPtr::new(host.clone() as Arc<dyn IUnknown>);
        let mut slot: Option<ComPtr<dyn IUnknown>> = None;
        let riid = <M::Async as Interface>::IID;
        let hr = catch_unwind(AssertUnwindSafe(|| {
            factory.create_call(
                &riid,
                Some(&outer),
                &crate::guid::IID_IUnknown,
                Some(&mut slot),
            )
        }))
        .unwrap_or(RPC_E_SERVERFAULT);
        drop(outer);
        if hr.failed() {
            return Err(hr);
        }
        host.install(slot.ok_or(E_UNEXPECTED)?)
    }

    /// A host without a server call object yet.
    fn empty() -> Arc<ServerCallHost<M>> {
        Arc::new_cyclic(|me: &Weak<ServerCallHost<M>>| ServerCallHost {
            refs: RefCount::new(),
            me: me.clone(),
            event: HANDLE::create_event(true, false),
            inner: Mutex::new(None),
            current: Mutex::new(Current {
                busy: false,
                seq: 0,
                call: None,
                method: 0,
                security: None,
                installed: false,
                waiting: VecDeque::new(),
                clean: true,
            }),
            server: std::sync::OnceLock::new(),
            home: std::sync::OnceLock::new(),
        })
    }

    /// Keeps `inner` (the server call object's non-delegating unknown) and its asynchronous
    /// interface.
    fn install(self: Arc<Self>, inner: ComPtr<dyn IUnknown>) -> Result<Arc<Self>, HRESULT> {
        let mut slot: Option<ComPtr<M::Async>> = None;
        let hr = inner.query_interface(&<M::Async as Interface>::IID, &mut slot);
        let server = slot.ok_or(if hr.failed() { hr } else { E_UNEXPECTED })?;
        if self.server.set(server.as_arc().clone()).is_ok() {
            self.current.lock().installed = true;
        }
        drop(server);
        *self.inner.lock() = Some(inner);
        Ok(self)
    }

    /// The STA the server call object lives in: its `Signal` is honoured there. Set once,
    /// before the first `Begin_` (a later call changes nothing).
    pub(crate) fn set_home(&self, home: Arc<crate::apartment::Apartment>) {
        let _ = self.home.set(home);
    }

    /// `None` while the server call object works on a call (begun, not yet signalled); once
    /// it has none in progress, whether it is reusable: back in its Idle state after calls that
    /// all went by the book (spec 2.2: `Finish_` leaves it Idle, ready for the next `Begin_`),
    /// so the stub may begin its next client call on it instead of asking `CreateCall` for
    /// another. One look under the lock.
    pub(crate) fn idle_reusable(&self) -> Option<bool> {
        let cur = self.current.lock();
        (!cur.busy).then(|| cur.clean && cur.waiting.is_empty())
    }

    /// The apartment ended: the call in progress and the waiting ones fail with `hr`; the
    /// server call object is released (its memory goes with the host's).
    pub(crate) fn disconnect(&self, hr: HRESULT) {
        let (call, waiting, security) = {
            let mut cur = self.current.lock();
            cur.clean = false;
            cur.installed = false;
            (
                cur.call.take(),
                std::mem::take(&mut cur.waiting),
                cur.security.take(),
            )
        };
        if let Some(security) = security {
            security.end();
        }
        if let Some(call) = call {
            call.fail(hr);
        }
        for (call, input, _) in waiting {
            call.fail(hr);
            drop(input);
        }
        let inner = self.inner.lock().take();
        drop(inner);
    }

    /// Begins the current call (`input`; the host is marked busy with it, as `seq`) on the
    /// server call object,
    /// then every call that was waiting for the server and is still wanted, for as long as
    /// the server's `Begin_` fails at once.
    fn start(&self, next: Next<M>) {
        let (mut input, mut seq, mut security, mut installed) = next;
        loop {
            let hr = match self.server.get().filter(|_| installed) {
                Some(server) => {
                    // Begin_ runs in the call's context (the frame holds it); its end (even by
                    // a panic) ends the impersonation it started (spec 3.4).
                    let mut code = security.take().map(|s| ServerCode::of(s, Exit::Nothing));
                    let hr = catch_unwind(AssertUnwindSafe(|| M::begin_async(&**server, input)))
                        .unwrap_or(RPC_E_SERVERFAULT);
                    if let Some(code) = code.as_mut().filter(|_| hr.failed()) {
                        code.set_exit(Exit::End); // the server did not start the call
                    }
                    hr
                }
                None => {
                    if let Some(s) = security.take() {
                        s.end(); // no server to start the call: its context is over
                    }
                    E_UNEXPECTED
                }
            };
            if hr.succeeded() {
                return;
            }
            // The server did not start the call: fail it, unless a Signal already took it.
            let mut skipped = Vec::new();
            let (failed, next) = {
                let mut cur = self.current.lock();
                cur.clean = false;
                if cur.busy && cur.seq == seq {
                    let failed = cur.call.take();
                    (failed, Self::next_locked(&mut cur, &mut skipped))
                } else {
                    (None, None)
                }
            };
            drop(skipped);
            if let Some(failed) = failed {
                failed.fail(hr);
            }
            match next {
                Some((i, s, sec, ok)) => (input, seq, security, installed) = (i, s, sec, ok),
                None => return,
            }
        }
    }

    /// Under the host's lock, the server being done with its call: the next waiting call that
    /// is still wanted becomes current (with a placeholder token for `start`), or the host is
    /// idle. Calls no longer wanted are moved to `skipped`, for the caller to drop outside the
    /// lock (their late completion is ignored; their in-parameters are the user's).
    fn next_locked(cur: &mut Current<M>, skipped: &mut Vec<Waiting<M>>) -> Option<Next<M>> {
        cur.busy = false;
        cur.security = None;
        while let Some((call, input, security)) = cur.waiting.pop_front() {
            if !call.is_wanted() {
                skipped.push((call, input, security));
                continue;
            }
            cur.busy = true;
            cur.seq += 1;
            cur.method = call.method();
            cur.call = Some(call);
            cur.security = security.clone();
            return Some((input, cur.seq, security, cur.installed));
        }
        None
    }

    /// Begins `call` like [`CallHandler::begin`], in the security context `security` (a
    /// call served through a stub): the server's `Begin_` and `Finish_` run in it.
    pub(crate) fn begin_secure(
        &self,
        call: ServerCall<M>,
        input: M::In,
        security: Option<Arc<CallSecurity>>,
    ) {
        let (seq, installed) = {
            let mut cur = self.current.lock();
            if cur.busy {
                // The server still works on an earlier call (one its client cancelled
                // locally): this one waits for its Signal.
                cur.waiting.push_back((call, input, security));
                return;
            }
            cur.busy = true;
            cur.seq += 1;
            cur.method = call.method();
            cur.call = Some(call);
            cur.security = security.clone();
            (cur.seq, cur.installed)
        };
        self.start((input, seq, security, installed));
    }
}

impl<M: AsyncInterface> CallHandler<M> for ServerCallHost<M> {
    fn begin(&self, call: ServerCall<M>, input: M::In) {
        self.begin_secure(call, input, None);
    }
}

impl<M: AsyncInterface> ISynchronize for ServerCallHost<M> {
    fn wait(&self, flags: u32, timeout_ms: u32) -> HRESULT {
        wait_single(&self.event, flags, timeout_ms)
    }

    /// The server says its `Begin_` processing is done: the host calls its `Finish_` and
    /// completes the client's call with the result.
    fn signal(&self) -> HRESULT {
        if let Some(home) = self.home.get().filter(|h| !h.is_current()) {
            // The call's context is complete from the server's Signal on (spec 3.4), though
            // Finish_ runs later, in the STA.
            let security = {
                let cur = self.current.lock();
                cur.busy.then(|| cur.security.clone()).flatten()
            };
            if let Some(s) = security {
                s.signal();
            }
            // An STA server's Signal from a worker: Finish_ runs in the server's apartment.
            let Some(me) = self.me.upgrade() else {
                return S_OK;
            };
            let msg = ForwardedSignal(Some(me));
            // If the apartment has ended, the dropped message fails the call
            // (RPC_E_DISCONNECTED); the server's Signal itself succeeds either way.
            let _ = home.post(msg);
            return S_OK;
        }
        self.event.set_event();
        let (call, method, security, installed) = {
            let mut cur = self.current.lock();
            if !cur.busy {
                return S_OK; // no call in progress: nothing to finish
            }
            // The context leaves with the call (the host's next call brings its own).
            (
                cur.call.take(),
                cur.method,
                cur.security.take(),
                cur.installed,
            )
        };
        if let Some(s) = &security {
            s.signal(); // the call's context is complete from the server's Signal on
        }
        let (hr, out) = match self.server.get().filter(|_| installed) {
            Some(server) => {
                // Finish_ runs in the call's (complete) context, without Begin_'s token.
                let _code = security.map(|s| ServerCode::of(s, Exit::Nothing));
                catch_unwind(AssertUnwindSafe(|| M::finish_async(&**server, method)))
                    .unwrap_or_else(|_| {
                        self.current.lock().clean = false;
                        (RPC_E_SERVERFAULT, None)
                    })
            }
            None => (E_UNEXPECTED, None),
        };
        // Completes exactly the call the server worked on; if the client cancelled it
        // locally, its call object drops this late result.
        if let Some(call) = call {
            match out {
                Some(out) => call.complete(hr, out),
                None => call.fail(hr),
            }
        }
        let mut skipped = Vec::new();
        let next = Self::next_locked(&mut self.current.lock(), &mut skipped);
        drop(skipped);
        if let Some(next) = next {
            self.start(next);
        }
        S_OK
    }

    fn reset(&self) -> HRESULT {
        self.event.reset_event();
        S_OK
    }
}

impl<M: AsyncInterface> ICancelMethodCalls for ServerCallHost<M> {
    /// The server side cannot cancel the client's call: `E_NOTIMPL`.
    fn cancel(&self, _seconds: u32) -> HRESULT {
        E_NOTIMPL
    }

    /// Whether the client cancelled the call in progress (`RPC_E_CALL_CANCELED`), else
    /// `RPC_S_CALLPENDING`.
    fn test_cancel(&self) -> HRESULT {
        let cur = self.current.lock();
        match &cur.call {
            Some(call) if cur.busy => call.test_cancel(),
            _ => CallState::test_cancel_without_a_call(),
        }
    }
}

impl<M: AsyncInterface> ServerCallHost<M> {
    /// Everything but `ISynchronize` and `ICancelMethodCalls` is the aggregated server call
    /// object's.
    fn inner_interfaces(&self, _me: &Arc<Self>, iid: &IID, ppv: &mut dyn Any) -> HRESULT {
        let inner = self.inner.lock().clone();
        match inner {
            Some(inner) => inner.query_interface(iid, ppv),
            None => E_NOINTERFACE,
        }
    }
}

/// A server's `Signal` carried to its STA; dropped unrun (the apartment ended), it fails the
/// call with `RPC_E_DISCONNECTED`.
struct ForwardedSignal<M: AsyncInterface>(Option<Arc<ServerCallHost<M>>>);

impl<M: AsyncInterface> crate::apartment::Incoming for ForwardedSignal<M> {
    fn apartment(&self) -> Option<&Arc<crate::apartment::Apartment>> {
        self.0.as_ref().and_then(|host| host.home.get())
    }

    fn run(mut self) {
        if let Some(host) = self.0.take() {
            crate::apartment::note_dispatch(|| {
                let method = M::METHODS
                    .get(host.current.lock().method)
                    .copied()
                    .unwrap_or("?");
                format!("stub: Finish_{method} (the server's Signal, carried back)")
            });
            let _ = host.signal();
        }
    }
}

impl<M: AsyncInterface> Drop for ForwardedSignal<M> {
    fn drop(&mut self) {
        if let Some(host) = self.0.take() {
            host.disconnect(crate::hresult::RPC_E_DISCONNECTED);
        }
    }
}

crate::com_object!([M: AsyncInterface] ServerCallHost<M> {
    interfaces: [dyn ISynchronize, dyn ICancelMethodCalls],
    more: ServerCallHost::inner_interfaces,
});
