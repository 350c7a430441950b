//! comasync's system synchronization objects as windows-rs COM objects.
//!
//! | class | windows-rs interfaces | backed by |
//! |---|---|---|
//! | [`ManualResetEvent`] | `ISynchronize`, `ISynchronizeHandle` | [`comasync::sync::ManualResetEvent`] |
//! | [`StdEvent`] | `ISynchronize`, `ISynchronizeHandle`, `ISynchronizeEvent` | [`comasync::sync::StdEvent`] |
//! | [`SynchronizeContainer`] | `ISynchronizeContainer` | [`comasync::sync::SynchronizeContainer`] |
//!
//! `CoCreateInstance` of their CLSIDs ([`crate::exports`]) makes them. Every method forwards
//! to the comasync object and returns its `HRESULT` unchanged. A handle from `GetHandle` is
//! registered ([`crate::handles`]) for as long as the object lives.
//!
//! The container holds windows-rs `ISynchronize` objects: it waits on their handles (as
//! comasync's does), so an object must answer `ISynchronizeHandle` (else `E_NOINTERFACE`, as
//! comasync) with a handle this process handed out (else `E_HANDLE`). `WaitMultiple` returns
//! the very object that was added.

use comasync::sync as cs;
use comasync::unknown::ComPtr;
use parking_lot::Mutex;
use windows_core::{implement, Interface, Ref, Result};

use crate::bindings::Windows::Win32::Foundation::HANDLE;
use crate::bindings::Windows::Win32::System::Com::{
    ISynchronize, ISynchronizeContainer, ISynchronizeContainer_Impl, ISynchronizeEvent,
    ISynchronizeEvent_Impl, ISynchronizeHandle,
};
use crate::handles::{lookup, value_of, Registered};
use crate::ok;

/// `E_HANDLE`: a `HANDLE` value no live object handed out.
pub(crate) const E_HANDLE: windows_core::HRESULT = windows_core::HRESULT(0x8007_0006_u32 as i32);

/// The `ISynchronize` + `ISynchronizeHandle` face of a comasync object, shared by the event
/// classes and the call objects ([`crate::AsyncCall`]).
pub(crate) struct Face {
    sync: ComPtr<dyn cs::ISynchronize>,
    /// The handle values this object handed out (each registered once).
    handles: Mutex<Vec<Registered>>,
}

impl Face {
    pub(crate) fn new(sync: ComPtr<dyn cs::ISynchronize>) -> Face {
        Face {
            sync,
            handles: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn sync(&self) -> &ComPtr<dyn cs::ISynchronize> {
        &self.sync
    }

    pub(crate) fn wait(&self, flags: u32, ms: u32) -> Result<()> {
        ok(self.sync.wait(flags, ms))
    }

    pub(crate) fn signal(&self) -> Result<()> {
        ok(self.sync.signal())
    }

    pub(crate) fn reset(&self) -> Result<()> {
        ok(self.sync.reset())
    }

    /// `GetHandle`: the comasync object's handle, registered while this object lives.
    pub(crate) fn get_handle(&self) -> Result<HANDLE> {
        let event = self
            .sync
            .query::<dyn cs::ISynchronizeHandle>()?
            .get_handle()?;
        self.keep(&event);
        Ok(value_of(&event))
    }

    /// Registers `event`'s value for this object's lifetime (once).
    fn keep(&self, event: &cs::HANDLE) {
        let mut handles = self.handles.lock();
        if !handles.iter().any(|r| r.event() == event) {
            handles.push(Registered::new(event));
        }
    }
}

pub use objects::{ManualResetEvent, StdEvent, SynchronizeContainer};

mod objects {
    //! The classes (in their own module: `#[implement]` adds a `<Name>_Impl` type that is
    //! not part of the API).
    use super::*;

    /// `CLSID_ManualResetEvent`: a manual-reset event (`ISynchronize`, `ISynchronizeHandle`).
    #[implement(ISynchronize, ISynchronizeHandle)]
    pub struct ManualResetEvent {
        face: Face,
    }

    impl ManualResetEvent {
        /// A new, non-signaled manual-reset event.
        pub fn create() -> ISynchronize {
            ManualResetEvent {
                face: Face::new(cs::ManualResetEvent::create()),
            }
            .into()
        }
    }

    crate::synchronize_faces!(ManualResetEvent_Impl, face);

    /// `CLSID_StdEvent`: an auto-reset event whose handle its owner may replace
    /// (`ISynchronize`, `ISynchronizeHandle`, `ISynchronizeEvent`).
    #[implement(ISynchronize, ISynchronizeHandle, ISynchronizeEvent)]
    pub struct StdEvent {
        face: Face,
    }

    impl StdEvent {
        /// A new, non-signaled auto-reset event.
        pub fn create() -> ISynchronize {
            StdEvent {
                face: Face::new(cs::StdEvent::create()),
            }
            .into()
        }
    }

    crate::synchronize_faces!(StdEvent_Impl, face);

    impl ISynchronizeEvent_Impl for StdEvent_Impl {
        /// `SetEventHandle(&h)`: `E_INVALIDARG` for a null pointer (as comasync for a missing
        /// handle); `E_HANDLE` for a value no live object handed out.
        fn SetEventHandle(&self, ph: *const HANDLE) -> Result<()> {
            let event = self.face.sync.query::<dyn cs::ISynchronizeEvent>()?;
            if ph.is_null() {
                return ok(event.set_event_handle(None));
            }
            // SAFETY: `ph` is not null, and COM's contract for `SetEventHandle` (an `[in] HANDLE*`)
            // is that it points to a readable HANDLE for the duration of the call; `HANDLE` is
            // `Copy`, so reading it takes nothing from the caller.
            let value = unsafe { *ph };
            let Some(mine) = lookup(value) else {
                return Err(E_HANDLE.into());
            };
            let hr = event.set_event_handle(Some(&mine));
            if hr.succeeded() {
                self.face.keep(&mine);
            }
            ok(hr)
        }
    }

    mod stand_in {
        //! The comasync object the container holds for a windows-rs `ISynchronize`.
        use comasync::hresult::{HRESULT, S_OK};
        use comasync::sync::{
            co_wait_for_multiple_handles, ISynchronize, ISynchronizeHandle, HANDLE,
        };

        /// A comasync synchronization object over a comasync event: it waits on the handle;
        /// `Signal`/`Reset` set and reset it.
        #[comasync::implement(ISynchronize, ISynchronizeHandle)]
        pub(super) struct HandleSync {
            pub(super) event: HANDLE,
        }

        impl ISynchronize for HandleSync_Impl {
            fn wait(&self, flags: u32, timeout_ms: u32) -> HRESULT {
                let mut index = 0;
                co_wait_for_multiple_handles(
                    flags,
                    timeout_ms,
                    Some(std::slice::from_ref(&self.event)),
                    Some(&mut index),
                )
            }
            fn signal(&self) -> HRESULT {
                self.event.set_event();
                S_OK
            }
            fn reset(&self) -> HRESULT {
                self.event.reset_event();
                S_OK
            }
        }

        impl ISynchronizeHandle for HandleSync_Impl {
            fn get_handle(&self) -> comasync::Result<HANDLE> {
                Ok(self.event.clone())
            }
        }
    }
    use stand_in::HandleSync;

    type Member = (ComPtr<dyn cs::ISynchronize>, ISynchronize);

    /// `CLSID_SynchronizeContainer`: waits for any one of up to 63 `ISynchronize` objects.
    #[implement(ISynchronizeContainer)]
    pub struct SynchronizeContainer {
        inner: ComPtr<dyn cs::ISynchronizeContainer>,
        /// Each added object and the comasync object standing for it in `inner`.
        members: Mutex<Vec<Member>>,
    }

    impl SynchronizeContainer {
        /// A new, empty container.
        pub fn create() -> ISynchronizeContainer {
            SynchronizeContainer {
                inner: cs::SynchronizeContainer::create(),
                members: Mutex::new(Vec::new()),
            }
            .into()
        }
    }

    impl ISynchronizeContainer_Impl for SynchronizeContainer_Impl {
        fn AddSynchronize(&self, psync: Ref<ISynchronize>) -> Result<()> {
            let Some(sync) = psync.as_ref() else {
                return ok(self.inner.add_synchronize(None));
            };
            let handle = sync.cast::<ISynchronizeHandle>().map_err(|_| {
                windows_core::Error::from(crate::hr(comasync::hresult::E_NOINTERFACE))
            })?;
            // SAFETY: `GetHandle` is an ordinary COM call on a live interface pointer (`handle`
            // holds a reference); its out-parameter is written by windows-rs's own glue.
            let value = unsafe { handle.GetHandle() }?;
            let Some(event) = lookup(value) else {
                return Err(E_HANDLE.into());
            };
            let stand_in = HandleSync { event }.into_interface::<dyn cs::ISynchronize>()?;
            ok(self.inner.add_synchronize(Some(&stand_in)))?;
            self.members.lock().push((stand_in, sync.clone()));
            Ok(())
        }

        fn WaitMultiple(&self, dwflags: u32, dwtimeout: u32) -> Result<ISynchronize> {
            let mut got = None;
            ok(self.inner.wait_multiple(dwflags, dwtimeout, Some(&mut got)))?;
            let got = got.ok_or_else(|| {
                windows_core::Error::from(windows_core::HRESULT(0x8000_FFFF_u32 as i32))
            })?;
            let members = self.members.lock();
            members
                .iter()
                .find(|(stand_in, _)| ComPtr::is_same_object(stand_in, &got))
                .map(|(_, sync)| sync.clone())
                .ok_or_else(|| {
                    windows_core::Error::from(windows_core::HRESULT(0x8000_FFFF_u32 as i32))
                })
        }
    }
}
