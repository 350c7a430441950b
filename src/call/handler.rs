//! The server side of a call, as the call object sees it: a [`CallHandler`] is told of each
//! `Begin_` with a [`ServerCall`] — a one-shot completion token — and the in-parameters, and
//! completes the call from any thread, at any time.
//!
//! Handlers provided here:
//!
//! * [`SyncMethodHandler`] — runs the object's *synchronous* method on the worker pool: the
//!   generic call object for an object that has no call object of its own (spec 1.2, 3.5);
//! * [`ManualHandler`] — queues calls for the test, scenario or tour to complete by hand
//!   (deterministic: no thread decides when a call completes);
//! * [`InlineHandler`] — completes every call inside `Begin_` on the calling thread (through
//!   [`CallHandler::begin_inline`], without a token);
//! * [`ServerCallHost`](super::ServerCallHost) — hosts a server-side call object written as the
//!   Microsoft samples write them (spec 2.2).
//!
//! # Invariants
//!
//! * A `ServerCall` completes its call at most once: `complete` and `fail` consume it. Dropping
//!   it without completing completes the call with `RPC_E_SERVER_DIED`, so a client is never
//!   left waiting for a server that forgot its call.
//! * A completion for a call that is no longer current (cancelled locally, abandoned, released)
//!   is dropped by the call object, never delivered to a later call.

use std::collections::VecDeque;
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{Arc, Weak};

use super::interface::AsyncInterface;
use super::object::CallObject;
use super::on_thread;
use super::pool::Pool;
use super::state::CallState;
use crate::hresult::{HRESULT, RPC_E_SERVERFAULT, RPC_E_SERVER_DIED, S_OK};
use crate::sync::prim::{Condvar, Deadline, Mutex};
use crate::unknown::ComPtr;

/// Serves the calls of call objects for the interface `M`.
///
/// ```
/// use std::sync::Arc;
/// use comasync::call::{create_call, CallHandler, FinishMode, ServerCall};
/// use comasync::hresult::{E_ACCESSDENIED, S_OK};
/// use comasync::simple_stream::{AsyncISimpleStream, ISimpleStreamCalls, ISimpleStreamIn, ISimpleStreamOut};
/// use comasync::unknown::{ComPtr, Interface};
///
/// // A server that answers every Read with zeros, from a thread of its own.
/// struct Zeros;
/// impl CallHandler<ISimpleStreamCalls> for Zeros {
///     fn begin(&self, call: ServerCall<ISimpleStreamCalls>, input: ISimpleStreamIn) {
///         std::thread::spawn(move || match input {
///             ISimpleStreamIn::Read { cb } => {
///                 call.complete(S_OK, ISimpleStreamOut::Read { data: vec![0; cb as usize] })
///             }
///             ISimpleStreamIn::Write { .. } => call.fail(E_ACCESSDENIED),
///         });
///     }
/// }
/// let riid = <dyn AsyncISimpleStream as Interface>::IID;
/// let mut call: Option<ComPtr<dyn AsyncISimpleStream>> = None;
/// assert_eq!(create_call::<ISimpleStreamCalls>(&riid, None, &riid, Some(&mut call), Arc::new(Zeros), FinishMode::Blocking), S_OK);
/// let call = call.unwrap();
/// assert_eq!(call.begin_read(3), S_OK);
/// assert_eq!(call.finish_read(), (S_OK, vec![0, 0, 0])); // Finish_ waits for the server
/// assert_eq!(call.begin_write(b"x".to_vec()), S_OK);
/// assert_eq!(call.finish_write(), (E_ACCESSDENIED, 0));
/// ```
pub trait CallHandler<M: AsyncInterface>: Send + Sync + 'static {
    /// A `Begin_` was accepted: serve `input` and, now or later, from any thread, complete
    /// `call`. Called without any call-object lock held.
    fn begin(&self, call: ServerCall<M>, input: M::In);

    /// Asked by `Begin_` before it accepts a call: a failure is `Begin_`'s return and the
    /// call object stays idle. `S_OK` unless the handler is a transport that can refuse (a
    /// proxy used from the wrong apartment: `RPC_E_WRONG_THREAD`; a disconnected one:
    /// `RPC_E_DISCONNECTED`).
    #[inline]
    fn admit(&self) -> HRESULT {
        S_OK
    }

    /// The security of the transport, if the handler is one (a proxy's channel): its call
    /// objects then answer `IClientSecurity` (spec 3.3). `None` by default. With
    /// [`pool`](Self::pool), `Begin_` stamps the blanket each call carries (captured on the
    /// calling thread) on this blanket's cell, for the worker that sends the call.
    #[inline]
    fn channel_security(&self) -> Option<&dyn crate::security::ChannelSecurity> {
        None
    }

    /// A handler that completes calls on the calling thread, inside `Begin_`, may serve them
    /// here instead: `Ok` with the method's result (`None` for no out-parameters) completes
    /// the call at once, `Err(input)` hands it to [`begin`](Self::begin). The default hands
    /// every call to `begin`. Called without any call-object lock held, with the thread
    /// marked as serving the call object (as [`InlineHandler`] serves); what it returns is
    /// exactly what `begin` would have completed the call with. It saves building and using a
    /// [`ServerCall`] token (four reference-count updates per call, docs/performance.md, P2).
    ///
    /// With [`pool`](Self::pool) it is called on one of that pool's workers instead.
    #[inline]
    #[allow(clippy::type_complexity)] // the method's result, or the input back
    fn begin_inline(&self, input: M::In) -> Result<(HRESULT, Option<M::Out>), M::In> {
        Err(input)
    }

    /// Where [`begin_inline`](Self::begin_inline) runs: `None` (the default) on the thread
    /// calling `Begin_`; `Some(pool)` on one of `pool`'s workers. Then `Begin_` leaves the
    /// in-parameters in the call object and queues the call object itself on the pool (no
    /// token, no allocation per call); the worker takes them, if the call is still wanted
    /// (not cancelled locally, abandoned or superseded: otherwise the method does not run),
    /// and completes the call with what `begin_inline` returns (or hands it to
    /// [`begin`](Self::begin) if it returns `Err`). [`SyncMethodHandler`] serves this way, and
    /// so does a proxy's call object to an MTA object (its `begin` runs on the MTA's worker,
    /// with the blanket `Begin_` stamped: see [`channel_security`](Self::channel_security)).
    #[inline]
    fn pool(&self) -> Option<&Arc<Pool>> {
        None
    }
}

/// The right and duty to complete one call: a one-shot token handed to a [`CallHandler`].
///
/// The token does not keep the client's call object alive: a call object whose client
/// released it is freed even while its server still holds the token (there is no reference
/// cycle call object → handler → queued token → call object), and completing the token then
/// does nothing.
///
/// ```
/// use comasync::call::{create_call_as, FinishMode, ICallFactory};
/// use comasync::hresult::{RPC_E_SERVER_DIED, RPC_S_CALLPENDING, S_OK};
/// use comasync::simple_stream::{AsyncISimpleStream, ISimpleStreamIn, ISimpleStreamOut, SimpleStream};
/// use comasync::unknown::Interface;
///
/// let (server, calls) = SimpleStream::create_manual(Vec::new(), FinishMode::Blocking);
/// let factory = server.query::<dyn ICallFactory>()?;
/// let call = create_call_as::<dyn AsyncISimpleStream>(&*factory, &<dyn AsyncISimpleStream as Interface>::IID)?;
/// assert_eq!(call.begin_read(2), S_OK);
/// let (token, input) = calls.take().unwrap();
/// assert_eq!((token.method_name(), token.generation()), ("Read", 1));
/// assert!(matches!(input, ISimpleStreamIn::Read { cb: 2 }));
/// assert_eq!(token.test_cancel(), RPC_S_CALLPENDING); // the client has not cancelled
/// token.complete(S_OK, ISimpleStreamOut::Read { data: b"hi".to_vec() });
/// assert_eq!(call.finish_read(), (S_OK, b"hi".to_vec()));
/// // A server that drops its token without completing the call:
/// assert_eq!(call.begin_read(2), S_OK);
/// drop(calls.take());
/// assert_eq!(call.finish_read().0, RPC_E_SERVER_DIED);
/// # Ok::<(), comasync::Error>(())
/// ```
pub struct ServerCall<M: AsyncInterface> {
    /// The call object; `Weak::new()` once the token is used.
    call: Weak<CallObject<M>>,
    generation: u64,
    method: usize,
}

impl<M: AsyncInterface> ServerCall<M> {
    pub(crate) fn new(call: Weak<CallObject<M>>, generation: u64, method: usize) -> Self {
        ServerCall {
            call,
            generation,
            method,
        }
    }

    /// The address of the call object, to name it in `on_thread`'s records.
    pub(crate) fn object_addr(&self) -> usize {
        Weak::as_ptr(&self.call) as *const () as usize
    }

    /// Takes the call object out of the token (it is used up), if the object is still alive.
    fn take(&mut self) -> Option<Arc<CallObject<M>>> {
        std::mem::take(&mut self.call).upgrade()
    }

    /// The method index of the call (its position in `M::METHODS`).
    pub fn method(&self) -> usize {
        self.method
    }

    /// The method's COM name.
    pub fn method_name(&self) -> &'static str {
        M::METHODS.get(self.method).copied().unwrap_or("?")
    }

    /// The call's generation: 1 for the call object's first call, 2 for its second, ...
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// The client's call object this call belongs to, while it is alive (`None` once the
    /// token is used or the object is gone). For matching queued calls to call objects and
    /// reading their [`CallObject::state`] (the scenario runner does both). Takes no COM
    /// reference.
    pub fn call_object(&self) -> Option<Arc<CallObject<M>>> {
        self.call.upgrade()
    }

    /// The server's `TestCancel` through its outer: `RPC_E_CALL_CANCELED` if the client
    /// cancelled this call (or abandoned it, or has moved on), otherwise `RPC_S_CALLPENDING`.
    pub fn test_cancel(&self) -> HRESULT {
        match self.call.upgrade() {
            Some(c) => c.server_test_cancel(self.generation),
            None => CallState::server_test_cancel_of_a_freed_call(),
        }
    }

    /// The server's `TestCancel` for this call as a function that outlives the token: the
    /// call context a stub installs while a server's method runs (`CoTestCancel`), and what
    /// `comasync-windows` installs for `CoGetCallContext`.
    pub fn test_cancel_fn(&self) -> impl Fn() -> HRESULT + Send + Sync + 'static {
        let call = self.call.clone();
        let generation = self.generation;
        move || match call.upgrade() {
            Some(c) => c.server_test_cancel(generation),
            None => CallState::server_test_cancel_of_a_freed_call(),
        }
    }

    /// Whether the client still waits for this call (it was not cancelled locally, abandoned
    /// or released).
    pub fn is_wanted(&self) -> bool {
        self.call
            .upgrade()
            .is_some_and(|c| c.is_current(self.generation))
    }

    /// Completes the call with the method's return value and out-parameters, and signals it.
    pub fn complete(mut self, hr: HRESULT, out: M::Out) {
        match self.take() {
            Some(c) => c.complete(self.generation, hr, Some(out)),
            None => drop(out),
        }
    }

    /// Completes the call with a failure and no out-parameters (they read as their defaults).
    pub fn fail(mut self, hr: HRESULT) {
        if let Some(c) = self.take() {
            c.complete(self.generation, hr, None);
        }
    }
}

impl<M: AsyncInterface> Drop for ServerCall<M> {
    fn drop(&mut self) {
        if let Some(c) = self.take() {
            c.complete(self.generation, RPC_E_SERVER_DIED, None);
        }
    }
}

impl<M: AsyncInterface> fmt::Debug for ServerCall<M> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerCall")
            .field("method", &self.method_name())
            .field("generation", &self.generation)
            .finish()
    }
}

/// Runs the synchronous method of `object` on a worker pool: the generic call object for an
/// object without a call object of its own. A panic in the method completes the call with
/// `RPC_E_SERVERFAULT` ("the server threw an exception").
///
/// A call that is no longer wanted when a worker reaches it (the client cancelled it locally,
/// released the call object, or moved on) is skipped: its method never runs.
///
/// A method that blocks holds a worker while it blocks, and the pool has a fixed number of
/// them: [`Pool::global`] has one per core (2 to 8), shared by every server that uses it. A
/// server whose methods block for long should have a pool of its own:
///
/// ```
/// use comasync::call::{create_call, FinishMode, Pool, SyncMethodHandler};
/// use comasync::hresult::S_OK;
/// use comasync::simple_stream::{AsyncISimpleStream, ISimpleStreamCalls, SimpleStream};
/// use comasync::unknown::{ComPtr, Interface};
///
/// let object = SimpleStream::create_sync_only(b"data".to_vec());
/// // The calls run the object's synchronous Read on two workers of their own.
/// let handler = SyncMethodHandler::<ISimpleStreamCalls>::new(object, Pool::new(2));
/// let riid = <dyn AsyncISimpleStream as Interface>::IID;
/// let mut call: Option<ComPtr<dyn AsyncISimpleStream>> = None;
/// assert_eq!(create_call::<ISimpleStreamCalls>(&riid, None, &riid, Some(&mut call), handler, FinishMode::Blocking), S_OK);
/// let call = call.unwrap();
/// assert_eq!(call.begin_read(4), S_OK);
/// assert_eq!(call.finish_read(), (S_OK, b"data".to_vec()));
/// ```
pub struct SyncMethodHandler<M: AsyncInterface> {
    /// `Arc<Self>`, for the pool job of a call handed to [`CallHandler::begin`] to hold.
    me: Weak<Self>,
    object: ComPtr<M::Sync>,
    /// A call object queues itself on it for each call it begins ([`CallHandler::pool`]: no
    /// allocation, the in-parameters wait in the call object); calls run in the order they
    /// began. A call handed to [`CallHandler::begin`] directly is one boxed job on it.
    pool: Arc<Pool>,
}

impl<M: AsyncInterface> SyncMethodHandler<M> {
    /// Serves calls by running `object`'s synchronous methods on `pool`.
    pub fn new(object: ComPtr<M::Sync>, pool: Arc<Pool>) -> Arc<Self> {
        Arc::new_cyclic(|me| SyncMethodHandler {
            me: me.clone(),
            object,
            pool,
        })
    }
}

impl<M: AsyncInterface> CallHandler<M> for SyncMethodHandler<M> {
    fn begin(&self, call: ServerCall<M>, input: M::In) {
        // `&self` is borrowed from a live `Arc`, so the upgrade succeeds.
        let Some(me) = self.me.upgrade() else { return };
        // If no worker will ever run it, the pool drops the job, and with it the call's
        // token, completing the call with RPC_E_SERVER_DIED.
        self.pool.execute(move || {
            if !call.is_wanted() {
                return; // cancelled, abandoned or superseded: the method does not run
            }
            serve(call, || M::invoke_sync(&*me.object, input));
        });
    }

    /// Runs the synchronous method (on a worker of [`pool`](CallHandler::pool)); a panic is
    /// `RPC_E_SERVERFAULT`, as in [`serve`].
    #[inline]
    fn begin_inline(&self, input: M::In) -> Result<(HRESULT, Option<M::Out>), M::In> {
        Ok(run_method(|| M::invoke_sync(&*self.object, input)))
    }

    #[inline]
    fn pool(&self) -> Option<&Arc<Pool>> {
        Some(&self.pool)
    }
}

/// Runs a server's method on this thread: its result, or `RPC_E_SERVERFAULT` (no
/// out-parameters) if it panics.
#[inline]
fn run_method<O>(method: impl FnOnce() -> (HRESULT, O)) -> (HRESULT, Option<O>) {
    match catch_unwind(AssertUnwindSafe(method)) {
        Ok((hr, out)) => (hr, Some(out)),
        Err(_) => (RPC_E_SERVERFAULT, None),
    }
}

/// Runs a server's method for `call` on this thread and completes the call with its result;
/// a panic completes it with `RPC_E_SERVERFAULT`. While it runs, the thread reads as serving
/// the call object (a blocking `Finish_` or windowed `Cancel` on it from inside the method
/// returns instead of waiting for itself). What [`SyncMethodHandler`] does with each call; a
/// handler of your own that runs methods on its own threads (`comasync-windows`) calls it too.
pub fn serve<M: AsyncInterface>(call: ServerCall<M>, method: impl FnOnce() -> (HRESULT, M::Out)) {
    let result = {
        let _serving = on_thread::Mark::serving(call.object_addr());
        catch_unwind(AssertUnwindSafe(method))
    };
    match result {
        Ok((hr, out)) => call.complete(hr, out),
        Err(_) => call.fail(RPC_E_SERVERFAULT),
    }
}

/// Completes every call inside `Begin_`, on the calling thread, with `f(input)`. A panic in
/// `f` completes the call with `RPC_E_SERVERFAULT`, as [`SyncMethodHandler`] does.
///
/// ```
/// use std::sync::Arc;
/// use comasync::call::{create_call, FinishMode, InlineHandler};
/// use comasync::hresult::{RPC_E_SERVERFAULT, S_OK};
/// use comasync::simple_stream::{AsyncISimpleStream, ISimpleStreamCalls, ISimpleStreamIn, ISimpleStreamOut};
/// use comasync::sync::ISynchronize;
/// use comasync::unknown::{ComPtr, Interface};
///
/// let handler = Arc::new(InlineHandler(|input: ISimpleStreamIn| match input {
///     ISimpleStreamIn::Read { cb } => (S_OK, ISimpleStreamOut::Read { data: vec![7; cb as usize] }),
///     ISimpleStreamIn::Write { .. } => panic!("read-only"),
/// }));
/// let riid = <dyn AsyncISimpleStream as Interface>::IID;
/// let mut call: Option<ComPtr<dyn AsyncISimpleStream>> = None;
/// assert_eq!(create_call::<ISimpleStreamCalls>(&riid, None, &riid, Some(&mut call), handler, FinishMode::Strict), S_OK);
/// let call = call.unwrap();
/// assert_eq!(call.begin_read(2), S_OK);
/// assert_eq!(call.query::<dyn ISynchronize>()?.wait(0, 0), S_OK); // completed inside Begin_
/// assert_eq!(call.finish_read(), (S_OK, vec![7, 7]));
/// assert_eq!(call.begin_write(vec![1]), S_OK);
/// assert_eq!(call.finish_write().0, RPC_E_SERVERFAULT); // "the server threw an exception"
/// # Ok::<(), comasync::Error>(())
/// ```
pub struct InlineHandler<F>(pub F);

impl<M, F> CallHandler<M> for InlineHandler<F>
where
    M: AsyncInterface,
    F: Fn(M::In) -> (HRESULT, M::Out) + Send + Sync + 'static,
{
    fn begin(&self, call: ServerCall<M>, input: M::In) {
        serve(call, || (self.0)(input));
    }

    /// Runs `f` here: the call object completes the call with its result directly (a panic
    /// in `f` is `RPC_E_SERVERFAULT`, as in [`begin`](CallHandler::begin)).
    #[inline]
    fn begin_inline(&self, input: M::In) -> Result<(HRESULT, Option<M::Out>), M::In> {
        Ok(run_method(|| (self.0)(input)))
    }
}

/// Queues each begun call until the caller completes it: the server side of a test, a
/// scenario script or the tour, where the script — not a thread — decides when a call
/// completes.
///
/// ```
/// use comasync::call::{create_call_as, FinishMode, ICallFactory};
/// use comasync::hresult::{RPC_S_CALLPENDING, S_OK};
/// use comasync::simple_stream::{AsyncISimpleStream, SimpleStream};
/// use comasync::sync::ISynchronize;
/// use comasync::unknown::Interface;
///
/// // SimpleStream::create_manual serves its calls through a ManualHandler.
/// let (server, calls) = SimpleStream::create_manual(b"hello".to_vec(), FinishMode::Blocking);
/// let factory = server.query::<dyn ICallFactory>()?;
/// let call = create_call_as::<dyn AsyncISimpleStream>(&*factory, &<dyn AsyncISimpleStream as Interface>::IID)?;
/// let sync = call.query::<dyn ISynchronize>()?;
/// assert_eq!(call.begin_read(2), S_OK);
/// assert_eq!(calls.pending(), 1); // the call waits for us
/// assert_eq!(sync.wait(0, 0), RPC_S_CALLPENDING);
/// calls.run_next(&*server).unwrap(); // the server's Read runs now, on this thread
/// assert_eq!(sync.wait(0, 0), S_OK);
/// assert_eq!(call.finish_read(), (S_OK, b"he".to_vec()));
/// # Ok::<(), comasync::Error>(())
/// ```
pub struct ManualHandler<M: AsyncInterface> {
    queue: Mutex<VecDeque<(ServerCall<M>, M::In)>>,
    arrived: Condvar,
}

impl<M: AsyncInterface> ManualHandler<M> {
    /// An empty queue.
    pub fn new() -> Arc<Self> {
        Arc::new(ManualHandler {
            queue: Mutex::new(VecDeque::new()),
            arrived: Condvar::new(),
        })
    }

    /// How many begun calls wait to be completed.
    pub fn pending(&self) -> usize {
        self.queue.lock().len()
    }

    /// Takes the oldest waiting call, if any.
    pub fn take(&self) -> Option<(ServerCall<M>, M::In)> {
        self.queue.lock().pop_front()
    }

    /// Takes the oldest waiting call, waiting up to `timeout_ms` for one to arrive (`u32::MAX`
    /// = forever); `None` on timeout.
    pub fn take_wait(&self, timeout_ms: u32) -> Option<(ServerCall<M>, M::In)> {
        let deadline = Deadline::after_ms(timeout_ms);
        let mut q = self.queue.lock();
        loop {
            if let Some(c) = q.pop_front() {
                return Some(c);
            }
            let (g, timed_out) = self.arrived.wait_until(q, deadline);
            q = g;
            if timed_out {
                return q.pop_front();
            }
        }
    }

    /// Completes the oldest waiting call by running the synchronous method on `object`.
    /// `None` if no call was waiting.
    pub fn run_next(&self, object: &M::Sync) -> Option<()> {
        let (call, input) = self.take()?;
        serve(call, || M::invoke_sync(object, input));
        Some(())
    }
}

impl<M: AsyncInterface> CallHandler<M> for ManualHandler<M> {
    fn begin(&self, call: ServerCall<M>, input: M::In) {
        self.queue.lock().push_back((call, input));
        self.arrived.notify_all();
    }
}
