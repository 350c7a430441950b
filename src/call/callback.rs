//! A completion callback built from a closure (spec 3.6): the client-side aggregation of a call
//! object under an outer unknown whose `ISynchronize::Signal` is the client's code, without
//! writing the outer object by hand (compare `examples/completion_callback.rs`, which does).
//!
//! # Invariants
//!
//! * The outer owns the call object (its non-delegating unknown) and lets go of it at its own
//!   final release; the call object holds the outer weakly, so there is no cycle.
//! * The closure runs once per completed call, on the completing thread, with no comasync lock
//!   held; the call object orders it before the next call's `Reset` (docs/model.md, "Misuse,
//!   re-entrancy and the outer"), so it may call `Finish_` and begin the next call.
//! * The outer's own event is set after the closure returns: a `Wait` on the callback's
//!   `ISynchronize` that returns `S_OK` means the closure has run for the current call.

use std::any::Any;
use std::sync::{Arc, Weak};

use super::factory::ICallFactory;
use crate::guid::{IID_IUnknown, IID};
use crate::hresult::{Error, Result, E_NOINTERFACE, E_UNEXPECTED, HRESULT, S_OK};
use crate::sync::prim::Mutex;
use crate::sync::wait::wait_single;
use crate::sync::{ISynchronize, HANDLE};
use crate::unknown::{ComPtr, IUnknown, Interface, RefCount};

/// The closure a [`CompletionCallback`] runs at each completion.
type OnSignal<I> = Box<dyn Fn(&ComPtr<I>) + Send + Sync>;

/// An outer unknown that aggregates a call object for the asynchronous interface `I` and
/// answers `ISynchronize` itself: each completion calls the closure with the call's `I`.
///
/// ```
/// use std::sync::mpsc::channel;
/// use std::sync::Mutex;
/// use comasync::call::{CompletionCallback, ICallFactory};
/// use comasync::hresult::S_OK;
/// use comasync::simple_stream::{AsyncISimpleStream, SimpleStream};
///
/// let factory = SimpleStream::create(b"callback".to_vec()).query::<dyn ICallFactory>()?;
/// let (tx, rx) = channel();
/// let tx = Mutex::new(tx);
/// let call = CompletionCallback::<dyn AsyncISimpleStream>::create(&*factory, move |call| {
///     // The call is complete: Finish_ returns at once.
///     let _ = tx.lock().unwrap().send(call.finish_read());
/// })?;
/// assert_eq!(call.begin_read(4), S_OK);
/// assert_eq!(rx.recv().unwrap(), (S_OK, b"call".to_vec()));
/// assert_eq!(call.begin_read(4), S_OK); // the call object is reusable
/// assert_eq!(rx.recv().unwrap(), (S_OK, b"back".to_vec()));
/// # Ok::<(), comasync::Error>(())
/// ```
pub struct CompletionCallback<I: ?Sized + Interface + IUnknown> {
    refs: RefCount,
    me: Weak<CompletionCallback<I>>,
    /// The call object's non-delegating unknown: the outer's reference on it.
    inner: Mutex<Option<ComPtr<dyn IUnknown>>>,
    on_signal: OnSignal<I>,
    /// Set after the closure ran, reset by `Begin_` (the call object's `Reset`).
    event: HANDLE,
}

impl<I: ?Sized + Interface + IUnknown> CompletionCallback<I> {
    /// Creates a call object for `I` from `factory`, aggregated under a new callback outer
    /// that runs `on_signal` at each completion; returns the call (through the outer, which
    /// it keeps alive). `CreateCall`'s failures are returned as they are (`E_NOINTERFACE` if
    /// `factory` does not know `I`).
    pub fn create(
        factory: &(impl ICallFactory + ?Sized),
        on_signal: impl Fn(&ComPtr<I>) + Send + Sync + 'static,
    ) -> Result<ComPtr<I>> {
        let outer = Arc::new_cyclic(|me| CompletionCallback::<I> {
            refs: RefCount::new(),
            me: me.clone(),
            inner: Mutex::new(None),
            on_signal: Box::new(on_signal),
            event: HANDLE::create_event(true, false),
        });
        let unk: ComPtr<dyn IUnknown> = ComPtr::new(outer.clone() as Arc<dyn IUnknown>);
        let mut inner: Option<ComPtr<dyn IUnknown>> = None;
        factory
            .create_call(&I::IID, Some(&unk), &IID_IUnknown, Some(&mut inner))
            .ok()?;
        *outer.inner.lock() = Some(inner.ok_or(Error(E_UNEXPECTED))?);
        unk.query::<I>()
    }

    /// The call object's `I`, while the outer holds it.
    fn call(&self) -> Option<ComPtr<I>> {
        let inner = self.inner.lock().clone()?;
        inner.query::<I>().ok()
    }

    /// Everything but `ISynchronize` is the aggregated call object's.
    fn inner_interfaces(&self, _me: &Arc<Self>, iid: &IID, ppv: &mut dyn Any) -> HRESULT {
        let inner = self.inner.lock().clone();
        match inner {
            Some(inner) => inner.query_interface(iid, ppv),
            None => E_NOINTERFACE,
        }
    }

    /// The outer's final release lets go of the call object (abandoning a call in progress).
    fn final_release(&self) {
        let inner = self.inner.lock().take();
        drop(inner);
    }
}

impl<I: ?Sized + Interface + IUnknown> ISynchronize for CompletionCallback<I> {
    /// Waits for the callback to have run for the current call.
    fn wait(&self, flags: u32, timeout_ms: u32) -> HRESULT {
        wait_single(&self.event, flags, timeout_ms)
    }

    /// The call completed: runs the closure, then sets the outer's event.
    fn signal(&self) -> HRESULT {
        if let Some(call) = self.call() {
            (self.on_signal)(&call);
        }
        self.event.set_event();
        S_OK
    }

    /// A new call begins.
    fn reset(&self) -> HRESULT {
        self.event.reset_event();
        S_OK
    }
}

crate::com_object!([I: ?Sized + Interface + IUnknown] CompletionCallback<I> {
    interfaces: [dyn ISynchronize],
    more: CompletionCallback::inner_interfaces,
    final_release: CompletionCallback::final_release,
});
