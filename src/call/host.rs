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

use std::any::Any;
use std::sync::{Arc, Weak};

use super::cancel::ICancelMethodCalls;
use super::handler::{CallHandler, ServerCall};
use super::interface::AsyncInterface;
use crate::guid::IID;
use crate::hresult::{E_NOINTERFACE, E_NOTIMPL, E_UNEXPECTED, HRESULT, RPC_S_CALLPENDING, S_OK};
use crate::sync::prim::Mutex;
use crate::sync::wait::wait_single;
use crate::sync::{ISynchronize, HANDLE};
use crate::unknown::{ComPtr, INonDelegatingUnknown, IUnknown, Interface, RefCount};

struct Current<M: AsyncInterface> {
    call: Option<ServerCall<M>>,
    method: usize,
}

/// The stub-side host of one server-side call object (see the [module docs](self)).
pub struct ServerCallHost<M: AsyncInterface> {
    refs: RefCount,
    me: Weak<ServerCallHost<M>>,
    event: HANDLE,
    /// The server call object's non-delegating unknown (the host's reference on it).
    inner: Mutex<Option<ComPtr<dyn IUnknown>>>,
    /// The server call object as the asynchronous interface (memory only: no COM reference,
    /// which would be a reference on the host itself).
    server: Mutex<Option<Arc<M::Async>>>,
    current: Mutex<Current<M>>,
}

impl<M: AsyncInterface> ServerCallHost<M> {
    /// A host for the server call object that `create` builds, aggregated under the host's
    /// unknown (passed to `create` as its outer). `create` returns the object's non-delegating
    /// unknown; the object must answer `M`'s asynchronous IID.
    pub fn new(
        create: impl FnOnce(Weak<dyn IUnknown>) -> Arc<dyn INonDelegatingUnknown>,
    ) -> Result<Arc<ServerCallHost<M>>, HRESULT> {
        let host = Arc::new_cyclic(|me: &Weak<ServerCallHost<M>>| ServerCallHost {
            refs: RefCount::new(),
            me: me.clone(),
            event: HANDLE::create_event(true, false),
            inner: Mutex::new(None),
            server: Mutex::new(None),
            current: Mutex::new(Current {
                call: None,
                method: 0,
            }),
        });
        let outer: Weak<dyn IUnknown> = Arc::downgrade(&host) as Weak<dyn IUnknown>;
        let inner = create(outer);
        let mut slot: Option<ComPtr<M::Async>> = None;
        let hr = inner.nd_query_interface(&<M::Async as Interface>::IID, &mut slot);
        let server = slot.ok_or(if hr.failed() { hr } else { E_UNEXPECTED })?;
        *host.server.lock() = Some(server.as_arc().clone());
        drop(server);
        *host.inner.lock() = Some(crate::unknown::non_delegating(inner));
        Ok(host)
    }

    fn server(&self) -> Option<Arc<M::Async>> {
        self.server.lock().clone()
    }
}

impl<M: AsyncInterface> CallHandler<M> for ServerCallHost<M> {
    fn begin(&self, call: ServerCall<M>, input: M::In) {
        let Some(server) = self.server() else {
            call.fail(E_UNEXPECTED);
            return;
        };
        {
            let mut cur = self.current.lock();
            cur.method = call.method();
            // A previous call the server never signalled is dropped here: its client has
            // moved on (it was cancelled locally), so its completion would be late anyway.
            cur.call = Some(call);
        }
        let hr = M::begin_async(&*server, input);
        if hr.failed() {
            let call = self.current.lock().call.take();
            if let Some(call) = call {
                call.fail(hr);
            }
        }
    }
}

impl<M: AsyncInterface> ISynchronize for ServerCallHost<M> {
    fn wait(&self, flags: u32, timeout_ms: u32) -> HRESULT {
        wait_single(&self.event, flags, timeout_ms)
    }

    /// The server says its `Begin_` processing is done: the host calls its `Finish_` and
    /// completes the client's call with the result.
    fn signal(&self) -> HRESULT {
        self.event.set_event();
        let (call, method) = {
            let mut cur = self.current.lock();
            (cur.call.take(), cur.method)
        };
        if let Some(server) = self.server() {
            let (hr, out) = M::finish_async(&*server, method);
            if let Some(call) = call {
                match out {
                    Some(out) => call.complete(hr, out),
                    None => call.fail(hr),
                }
            }
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
        match &self.current.lock().call {
            Some(call) => call.test_cancel(),
            None => RPC_S_CALLPENDING,
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

crate::com_object!([M: AsyncInterface] ServerCallHost<M> {
    interfaces: [dyn ISynchronize, dyn ICancelMethodCalls],
    more: ServerCallHost::inner_interfaces,
});
