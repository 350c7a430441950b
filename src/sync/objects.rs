//! The COM faces of the event core: `ISynchronize`, `ISynchronizeHandle`, `ISynchronizeEvent`,
//! `ISynchronizeContainer`, and the system classes `CLSID_ManualResetEvent`, `CLSID_StdEvent`
//! and `CLSID_SynchronizeContainer`.
//!
//! * `ManualResetEvent` (spec 1.4): `Wait` does not reset. What call objects aggregate (D13).
//! * `StdEvent`: auto-reset; a successful `Wait` resets it. Also implements `ISynchronizeEvent`.
//! * `SynchronizeContainer` (spec 1.6): up to 63 objects; `WaitMultiple` waits for any one.
//!
//! `Wait` returns `S_OK` or, on timeout, `RPC_S_CALLPENDING` — never `RPC_E_TIMEOUT` (D1).
//! `Signal` and `Reset` always return `S_OK`. All three classes can be aggregated.

use std::any::Any;
use std::sync::{Arc, Weak};

use super::event::HANDLE;
use super::prim::{AtomicBool, Mutex, Ordering};
use super::wait::{wait_single, COWAIT_VALID_FLAGS, COWAIT_WAITALL};
use crate::guid::{
    CLSID_ManualResetEvent, CLSID_StdEvent, IID_ISynchronize, IID_ISynchronizeContainer,
    IID_ISynchronizeEvent, IID_ISynchronizeHandle, CLSID, IID,
};
use crate::hresult::{
    Result, E_INVALIDARG, E_NOINTERFACE, HRESULT, RPC_E_NO_SYNC, RPC_E_OUT_OF_RESOURCES,
    RPC_E_TIMEOUT, S_OK,
};
use crate::unknown::{set_out, ComPtr, IUnknown, Interface, RefCount};

/// `ISynchronize`: the signal a call object's completion is told by.
///
/// ```
/// use comasync::hresult::{E_INVALIDARG, RPC_S_CALLPENDING, S_OK};
/// use comasync::sync::{ISynchronize, ManualResetEvent, COWAIT_DEFAULT, INFINITE};
///
/// let sync = ManualResetEvent::create();
/// assert_eq!(sync.wait(COWAIT_DEFAULT, 0), RPC_S_CALLPENDING); // "not yet"
/// assert_eq!(sync.signal(), S_OK);
/// assert_eq!(sync.wait(COWAIT_DEFAULT, INFINITE), S_OK);
/// assert_eq!(sync.reset(), S_OK);
/// assert_eq!(sync.wait(COWAIT_DEFAULT, 0), RPC_S_CALLPENDING);
/// assert_eq!(sync.wait(0x100, 0), E_INVALIDARG); // not a COWAIT_* flag
/// ```
pub trait ISynchronize: IUnknown {
    /// `Wait(dwFlags, dwMilliseconds)`: `S_OK` once signaled, `RPC_S_CALLPENDING` if not
    /// within `timeout_ms` (0 = do not wait, `INFINITE` = forever), `E_INVALIDARG` for unknown
    /// flags. `COWAIT_WAITALL` is accepted (there is one handle).
    fn wait(&self, flags: u32, timeout_ms: u32) -> HRESULT;
    /// `Signal()`: sets the signaled state; pending waits return `S_OK`. Returns `S_OK`.
    fn signal(&self) -> HRESULT;
    /// `Reset()`: sets the non-signaled state. Returns `S_OK`.
    fn reset(&self) -> HRESULT;
}

/// `ISynchronizeHandle`: the waitable handle behind a synchronization object.
///
/// ```
/// use comasync::hresult::S_OK;
/// use comasync::sync::{co_wait_for_multiple_handles, ISynchronizeHandle, ManualResetEvent};
///
/// let event = ManualResetEvent::create();
/// let handle = event.query::<dyn ISynchronizeHandle>()?.get_handle()?;
/// assert!(!handle.is_signaled());
/// event.signal(); // Signal sets the handle...
/// let mut index = 7;
/// let hr = co_wait_for_multiple_handles(0, 0, Some(&[handle]), Some(&mut index));
/// assert_eq!((hr, index), (S_OK, 0)); // ...so a wait on it succeeds
/// # Ok::<(), comasync::Error>(())
/// ```
pub trait ISynchronizeHandle: IUnknown {
    /// `GetHandle(&h)`: the object's event handle.
    fn get_handle(&self) -> Result<HANDLE>;
}

/// `ISynchronizeEvent`: lets the owner assign the event handle that `Signal` sets.
///
/// ```
/// use comasync::hresult::{E_INVALIDARG, S_OK};
/// use comasync::sync::{ISynchronizeEvent, ISynchronizeHandle, StdEvent, HANDLE};
///
/// let event = StdEvent::create();
/// let sync_event = event.query::<dyn ISynchronizeEvent>()?;
/// let mine = HANDLE::create_event(true, false);
/// assert_eq!(sync_event.set_event_handle(Some(&mine)), S_OK);
/// assert_eq!(event.signal(), S_OK);
/// assert!(mine.is_signaled()); // Signal set the assigned handle
/// assert_eq!(sync_event.get_handle()?, mine);
/// assert_eq!(sync_event.set_event_handle(None), E_INVALIDARG);
/// # Ok::<(), comasync::Error>(())
/// ```
pub trait ISynchronizeEvent: ISynchronizeHandle {
    /// `SetEventHandle(&h)`: from now on `Wait`, `Signal`, `Reset` and `GetHandle` use `h`.
    /// `E_INVALIDARG` for a missing handle.
    fn set_event_handle(&self, handle: Option<&HANDLE>) -> HRESULT;
}

/// `ISynchronizeContainer`: waits for any one of a group of synchronization objects.
///
/// ```
/// use comasync::hresult::{E_INVALIDARG, RPC_E_NO_SYNC, S_OK};
/// use comasync::sync::{ManualResetEvent, SynchronizeContainer, COWAIT_WAITALL, INFINITE};
///
/// let container = SynchronizeContainer::create();
/// let mut got = None;
/// assert_eq!(container.wait_multiple(0, 0, Some(&mut got)), RPC_E_NO_SYNC); // empty
/// let event = ManualResetEvent::create();
/// assert_eq!(container.add_synchronize(Some(&event)), S_OK);
/// assert_eq!(container.add_synchronize(None), E_INVALIDARG);
/// assert_eq!(container.wait_multiple(COWAIT_WAITALL, 0, Some(&mut got)), E_INVALIDARG);
/// event.signal();
/// assert_eq!(container.wait_multiple(0, INFINITE, Some(&mut got)), S_OK);
/// assert!(got.is_some());
/// ```
pub trait ISynchronizeContainer: IUnknown {
    /// `AddSynchronize(pSync)`: `S_OK`; `RPC_E_OUT_OF_RESOURCES` once 63 objects are held;
    /// `E_INVALIDARG` for a missing object; `E_NOINTERFACE` if it has no `ISynchronizeHandle`
    /// (comasync waits on handles, never by polling).
    fn add_synchronize(&self, sync: Option<&ComPtr<dyn ISynchronize>>) -> HRESULT;
    /// `WaitMultiple(dwFlags, dwTimeOut, &pSync)`: `S_OK` with the signaled object (the one
    /// added first, if several are); `RPC_E_TIMEOUT` on timeout (spec D6, unverified);
    /// `RPC_E_NO_SYNC` when empty; `E_INVALIDARG` for `COWAIT_WAITALL`, unknown flags or a
    /// missing out-pointer.
    fn wait_multiple(
        &self,
        flags: u32,
        timeout_ms: u32,
        sync: Option<&mut Option<ComPtr<dyn ISynchronize>>>,
    ) -> HRESULT;
}

impl Interface for dyn ISynchronize {
    const IID: IID = IID_ISynchronize;
    const NAME: &'static str = "ISynchronize";
}
impl Interface for dyn ISynchronizeHandle {
    const IID: IID = IID_ISynchronizeHandle;
    const NAME: &'static str = "ISynchronizeHandle";
}
impl Interface for dyn ISynchronizeEvent {
    const IID: IID = IID_ISynchronizeEvent;
    const NAME: &'static str = "ISynchronizeEvent";
}
impl Interface for dyn ISynchronizeContainer {
    const IID: IID = IID_ISynchronizeContainer;
    const NAME: &'static str = "ISynchronizeContainer";
}

/// A system event object: `CLSID_ManualResetEvent` or `CLSID_StdEvent`.
///
/// Create one with [`ManualResetEvent::create`] or [`StdEvent::create`], by CLSID with
/// [`co_create_instance`](crate::class::co_create_instance), or aggregated under an outer with
/// [`SyncEvent::new_aggregated`].
///
/// ```
/// use std::sync::Arc;
/// use comasync::guid::{CLSID_ManualResetEvent, IID_ISynchronize};
/// use comasync::hresult::S_OK;
/// use comasync::sync::{ISynchronize, SyncEvent};
/// use comasync::unknown::{ComPtr, INonDelegatingUnknown, PlainObject};
///
/// // A call object aggregates a ManualResetEvent this way (the outer here is a plain object).
/// let outer = PlainObject::create();
/// let inner = SyncEvent::new_aggregated(CLSID_ManualResetEvent, Arc::downgrade(outer.as_arc()));
/// assert_eq!(inner.clsid(), CLSID_ManualResetEvent);
/// let mut slot: Option<ComPtr<dyn ISynchronize>> = None;
/// assert_eq!(inner.nd_query_interface(&IID_ISynchronize, &mut slot), S_OK);
/// let sync = slot.unwrap();
/// assert_eq!(sync.signal(), S_OK);
/// assert!(inner.handle().is_signaled());
/// assert!(ComPtr::is_same_object(&sync, &outer)); // identity is the outer's
/// ```
pub struct SyncEvent {
    refs: RefCount,
    me: Weak<SyncEvent>,
    clsid: CLSID,
    handle: HANDLE,
    /// Set by `ISynchronizeEvent::SetEventHandle` (`StdEvent` only).
    custom: Mutex<Option<HANDLE>>,
    has_custom: AtomicBool,
}

/// `CLSID_ManualResetEvent`: a manual-reset `ISynchronize` + `ISynchronizeHandle`.
///
/// ```
/// use comasync::sync::{ManualResetEvent, INFINITE};
/// use comasync::hresult::{S_OK, RPC_S_CALLPENDING};
///
/// let event = ManualResetEvent::create();
/// assert_eq!(event.wait(0, 0), RPC_S_CALLPENDING); // starts non-signaled
/// let server = { let e = event.clone(); std::thread::spawn(move || e.signal()) };
/// assert_eq!(event.wait(0, INFINITE), S_OK);
/// assert_eq!(event.wait(0, 0), S_OK); // manual reset: stays signaled
/// assert_eq!(server.join().unwrap(), S_OK);
/// ```
pub struct ManualResetEvent;

/// `CLSID_StdEvent`: an auto-reset `ISynchronize` + `ISynchronizeHandle` + `ISynchronizeEvent`.
///
/// ```
/// use comasync::sync::StdEvent;
/// use comasync::hresult::{S_OK, RPC_S_CALLPENDING};
///
/// let event = StdEvent::create();
/// assert_eq!(event.signal(), S_OK);
/// assert_eq!(event.wait(0, 0), S_OK);              // takes the signal...
/// assert_eq!(event.wait(0, 0), RPC_S_CALLPENDING); // ...and resets it
/// ```
pub struct StdEvent;

impl ManualResetEvent {
    /// A new, non-signaled manual-reset event with one reference.
    pub fn create() -> ComPtr<dyn ISynchronize> {
        SyncEvent::create(CLSID_ManualResetEvent)
    }
}

impl StdEvent {
    /// A new, non-signaled auto-reset event with one reference.
    pub fn create() -> ComPtr<dyn ISynchronize> {
        SyncEvent::create(CLSID_StdEvent)
    }
}

impl SyncEvent {
    pub(crate) fn new_with(clsid: CLSID, refs: RefCount) -> Arc<SyncEvent> {
        let manual = clsid == CLSID_ManualResetEvent;
        Arc::new_cyclic(|me| SyncEvent {
            refs,
            me: me.clone(),
            clsid,
            handle: HANDLE::create_event(manual, false),
            custom: Mutex::new(None),
            has_custom: AtomicBool::new(false),
        })
    }

    /// A stand-alone event of class `clsid` (`CLSID_ManualResetEvent` or `CLSID_StdEvent`).
    pub(crate) fn create(clsid: CLSID) -> ComPtr<dyn ISynchronize> {
        let e = SyncEvent::new_with(clsid, RefCount::new());
        ComPtr::new(e as Arc<dyn ISynchronize>)
    }

    /// An event of class `clsid` aggregated under `outer`. The outer keeps the returned `Arc`
    /// and reaches the event's interfaces through [`INonDelegatingUnknown::nd_query_interface`](crate::unknown::INonDelegatingUnknown::nd_query_interface).
    pub fn new_aggregated(clsid: CLSID, outer: Weak<dyn IUnknown>) -> Arc<SyncEvent> {
        SyncEvent::new_with(clsid, RefCount::aggregated(outer))
    }

    /// The event's class.
    pub fn clsid(&self) -> CLSID {
        self.clsid
    }

    /// The event's own handle (before any `SetEventHandle`), without a COM call.
    #[inline]
    pub fn handle(&self) -> &HANDLE {
        &self.handle
    }

    #[inline]
    fn with_handle<R>(&self, f: impl FnOnce(&HANDLE) -> R) -> R {
        if !self.has_custom.load(Ordering::Acquire) {
            f(&self.handle)
        } else {
            let h = self.custom.lock().clone();
            f(h.as_ref().unwrap_or(&self.handle))
        }
    }
}

impl ISynchronize for SyncEvent {
    #[inline]
    fn wait(&self, flags: u32, timeout_ms: u32) -> HRESULT {
        self.with_handle(|h| wait_single(h, flags, timeout_ms))
    }
    #[inline]
    fn signal(&self) -> HRESULT {
        self.with_handle(HANDLE::set_event);
        S_OK
    }
    #[inline]
    fn reset(&self) -> HRESULT {
        self.with_handle(HANDLE::reset_event);
        S_OK
    }
}

impl ISynchronizeHandle for SyncEvent {
    fn get_handle(&self) -> Result<HANDLE> {
        Ok(self.with_handle(HANDLE::clone))
    }
}

impl ISynchronizeEvent for SyncEvent {
    fn set_event_handle(&self, handle: Option<&HANDLE>) -> HRESULT {
        let Some(h) = handle else { return E_INVALIDARG };
        *self.custom.lock() = Some(h.clone());
        self.has_custom.store(true, Ordering::Release);
        S_OK
    }
}

impl SyncEvent {
    /// `ISynchronizeEvent`, for `StdEvent` only (Wine's `ManualResetEvent` has none).
    fn more_interfaces(&self, me: &Arc<SyncEvent>, iid: &IID, ppv: &mut dyn Any) -> HRESULT {
        if *iid == IID_ISynchronizeEvent && self.clsid == CLSID_StdEvent {
            set_out::<dyn ISynchronizeEvent>(
                ppv,
                self.refs.ptr(me.clone() as Arc<dyn ISynchronizeEvent>),
            )
        } else {
            E_NOINTERFACE
        }
    }
}

impl SyncEvent {
    /// The final release closes the event's own handle (as releasing a Windows event object
    /// closes its handle): a copy of it obtained by `GetHandle` is then invalid, and a wait on
    /// it fails with `E_HANDLE` instead of waiting forever.
    fn final_release(&self) {
        self.handle.close_handle();
    }
}

crate::com_object!([] SyncEvent {
    interfaces: [dyn ISynchronize, dyn ISynchronizeHandle],
    more: SyncEvent::more_interfaces,
    final_release: SyncEvent::final_release,
});

/// The most objects a [`SynchronizeContainer`] holds (`MAXIMUM_WAIT_OBJECTS` − 1).
pub const SYNCHRONIZE_CONTAINER_CAPACITY: usize = 63;

/// `CLSID_SynchronizeContainer`: an `ISynchronizeContainer`.
///
/// It holds a reference on each object added until it is released; the object handed back by
/// `WaitMultiple` is a new reference for the caller and stays in the container.
///
/// ```
/// use comasync::sync::{SynchronizeContainer, ManualResetEvent, StdEvent};
/// use comasync::hresult::{S_OK, RPC_E_TIMEOUT};
/// use comasync::unknown::ComPtr;
///
/// let container = SynchronizeContainer::create();
/// let (a, b) = (StdEvent::create(), StdEvent::create());
/// assert_eq!(container.add_synchronize(Some(&a)), S_OK);
/// assert_eq!(container.add_synchronize(Some(&b)), S_OK);
/// let mut got = None;
/// assert_eq!(container.wait_multiple(0, 0, Some(&mut got)), RPC_E_TIMEOUT);
/// b.signal();
/// assert_eq!(container.wait_multiple(0, 0, Some(&mut got)), S_OK);
/// assert!(ComPtr::is_same_object(got.as_ref().unwrap(), &b));
/// ```
pub struct SynchronizeContainer {
    refs: RefCount,
    me: Weak<SynchronizeContainer>,
    /// The objects added, in order. Each `Arc` is cloned out as a snapshot, so no COM method
    /// (`AddRef`, `GetHandle`, ...) of a contained object is ever called under this lock.
    items: Mutex<Vec<Arc<ComPtr<dyn ISynchronize>>>>,
}

impl SynchronizeContainer {
    /// A new, empty container with one reference.
    pub fn create() -> ComPtr<dyn ISynchronizeContainer> {
        ComPtr::new(Self::new(RefCount::new()) as Arc<dyn ISynchronizeContainer>)
    }

    pub(crate) fn new(refs: RefCount) -> Arc<SynchronizeContainer> {
        Arc::new_cyclic(|me| SynchronizeContainer {
            refs,
            me: me.clone(),
            items: Mutex::new(Vec::new()),
        })
    }
}

impl ISynchronizeContainer for SynchronizeContainer {
    fn add_synchronize(&self, sync: Option<&ComPtr<dyn ISynchronize>>) -> HRESULT {
        let Some(sync) = sync else {
            return E_INVALIDARG;
        };
        if sync.query::<dyn ISynchronizeHandle>().is_err() {
            return E_NOINTERFACE;
        }
        // AddRef outside the lock; if the container is full, the reference is released after
        // the lock is dropped.
        let item = Arc::new(sync.clone());
        let rejected = {
            let mut items = self.items.lock();
            if items.len() >= SYNCHRONIZE_CONTAINER_CAPACITY {
                Some(item)
            } else {
                items.push(item);
                None
            }
        };
        match rejected {
            Some(_) => RPC_E_OUT_OF_RESOURCES,
            None => S_OK,
        }
    }

    fn wait_multiple(
        &self,
        flags: u32,
        timeout_ms: u32,
        sync: Option<&mut Option<ComPtr<dyn ISynchronize>>>,
    ) -> HRESULT {
        let Some(out) = sync else { return E_INVALIDARG };
        if flags & COWAIT_WAITALL != 0 || flags & !COWAIT_VALID_FLAGS != 0 {
            return E_INVALIDARG;
        }
        // Wait on a snapshot: the container's lock is not held while waiting,
        // so another thread may add objects meanwhile, and they join the next wait. An
        // INFINITE wait is therefore woken only by the objects present when it began
        // (docs/differences-from-windows.md, "SynchronizeContainer").
        let snapshot: Vec<Arc<ComPtr<dyn ISynchronize>>> = self.items.lock().clone();
        if snapshot.is_empty() {
            return RPC_E_NO_SYNC;
        }
        // Each object's *current* handle: a StdEvent given a new one by SetEventHandle after
        // it was added is signaled on the new one.
        let mut handles = Vec::with_capacity(snapshot.len());
        for item in &snapshot {
            match item
                .query::<dyn ISynchronizeHandle>()
                .and_then(|h| h.get_handle())
            {
                Ok(h) => handles.push(h),
                Err(e) => return e.0,
            }
        }
        match super::wait::wait_checked(&handles, false, timeout_ms) {
            Ok(Some(i)) => {
                *out = Some((*snapshot[i]).clone());
                S_OK
            }
            Ok(None) => RPC_E_TIMEOUT,
            Err(hr) => hr,
        }
    }
}

crate::com_object!([] SynchronizeContainer { interfaces: [dyn ISynchronizeContainer] });
