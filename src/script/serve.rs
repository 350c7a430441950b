//! [`ScriptServer`]: a server object for any scriptable interface — the synchronous interface
//! (delegating to an implementation object) plus an `ICallFactory` whose calls are served by a
//! [`ManualHandler`] (hand-driven: a script's `Complete`/`Fail` decides) or a
//! [`SyncMethodHandler`] (the implementation's methods run on a worker pool).
//!
//! Invariants: one COM identity — `IUnknown`, `ICallFactory` and (when the interface was
//! declared with `#[interface]` and its script glue) the synchronous interface are this object; the
//! server holds one reference on its implementation object for its lifetime.

use std::any::Any;
use std::sync::{Arc, Weak};

use super::value::ScriptInterface;
use crate::call::{
    CallHandler, CallServer, FinishMode, ICallFactory, ManualHandler, Pool, ServedBy,
    SyncMethodHandler,
};
use crate::guid::IID;
use crate::hresult::{E_NOINTERFACE, HRESULT};
use crate::unknown::{set_out, ComPtr, IUnknown, Interface, RefCount};

/// A server object for the interface `M`: `M`'s synchronous interface, delegating to an
/// implementation object, and an `ICallFactory` with a handler of the caller's choice.
///
/// ```
/// use comasync::call::{create_call_as, FinishMode};
/// use comasync::hresult::S_OK;
/// use comasync::script::ScriptServer;
/// use comasync::simple_stream::{AsyncISimpleStream, ISimpleStream, ISimpleStreamCalls, SimpleStream};
/// use comasync::unknown::{ComPtr, Interface};
///
/// let object = SimpleStream::create_sync_only(b"hello".to_vec());
/// let (server, calls) = ScriptServer::<ISimpleStreamCalls>::manual(object, FinishMode::Blocking);
/// let factory = ComPtr::new(server.clone()).query::<dyn comasync::call::ICallFactory>()?;
/// let call = create_call_as::<dyn AsyncISimpleStream>(&*factory, &<dyn AsyncISimpleStream as Interface>::IID)?;
/// assert_eq!(call.begin_read(2), S_OK);
/// assert_eq!(calls.run_next(server.object()), Some(())); // the hand-driven server completes it
/// assert_eq!(call.finish_read(), (S_OK, b"he".to_vec()));
/// # Ok::<(), comasync::Error>(())
/// ```
pub struct ScriptServer<M: ScriptInterface> {
    refs: RefCount,
    me: Weak<ScriptServer<M>>,
    object: ComPtr<M::Sync>,
    handler: Arc<dyn CallHandler<M>>,
    mode: FinishMode,
}

impl<M: ScriptInterface> ScriptServer<M> {
    fn make(
        object: ComPtr<M::Sync>,
        handler: Arc<dyn CallHandler<M>>,
        mode: FinishMode,
    ) -> Arc<Self> {
        Arc::new_cyclic(|me| ScriptServer {
            refs: RefCount::new(),
            me: me.clone(),
            object,
            handler,
            mode,
        })
    }

    /// A hand-driven server over `object` (no COM reference taken on the server yet: wrap it
    /// in a [`ComPtr`]): its calls wait in the returned queue until the caller completes them.
    pub fn manual(object: ComPtr<M::Sync>, mode: FinishMode) -> (Arc<Self>, Arc<ManualHandler<M>>) {
        let queue = ManualHandler::new();
        (Self::make(object, queue.clone(), mode), queue)
    }

    /// A server whose calls run `object`'s synchronous methods on `pool`.
    pub fn pooled(object: ComPtr<M::Sync>, pool: Arc<Pool>, mode: FinishMode) -> Arc<Self> {
        let handler = SyncMethodHandler::new(object.clone(), pool);
        Self::make(object, handler, mode)
    }

    /// The implementation object the synchronous methods run on.
    pub fn object(&self) -> &M::Sync {
        &self.object
    }

    /// Answers the synchronous interface's IID: this object when the interface can say so,
    /// otherwise the implementation object's own pointer.
    fn more(&self, me: &Arc<Self>, iid: &IID, ppv: &mut dyn Any) -> HRESULT {
        if *iid != <M::Sync as Interface>::IID {
            return E_NOINTERFACE;
        }
        match M::server_as_sync(me.clone()) {
            Some(sync) => set_out::<M::Sync>(ppv, self.refs.ptr(sync)),
            None => self.object.query_interface(iid, ppv),
        }
    }
}

impl<M: ScriptInterface> CallServer for ScriptServer<M> {
    type Calls = M;
    fn call_handler(&self) -> ServedBy<M> {
        Ok((self.handler.clone(), self.mode))
    }
}

crate::com_object!([M: ScriptInterface] ScriptServer<M> {
    interfaces: [dyn ICallFactory],
    more: ScriptServer::<M>::more,
});
