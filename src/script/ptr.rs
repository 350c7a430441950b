//! The interface pointers a script holds, typed for any interface without an enum of them:
//! a [`Ptr`] is one COM reference (a `ComPtr<dyn I>` behind [`Held`]) plus its object's
//! identity, and a [`Target`] is what an operation on another thread works on — the same
//! pointer without a COM reference.
//!
//! Invariants: a `Ptr` holds exactly one COM reference (dropping it is a `Release`); a
//! `Target` holds none, so an operation in flight never changes a count the script reads;
//! an operation that needs an interface the variable does not hold queries for it and
//! releases it when done ([`Use`]).

use std::any::Any;
use std::sync::Arc;

use crate::hresult::HRESULT;
use crate::sync::{ISynchronizeHandle, HANDLE};
use crate::unknown::{query, ComPtr, IUnknown, Interface};

/// A COM reference of any interface type.
pub(crate) trait Held: Send + Sync {
    /// `AddRef`: a second reference.
    fn add_ref(&self) -> Box<dyn Held>;
    /// The count, as `ComPtr::ref_count` reads it.
    fn ref_count(&self) -> u32;
    /// The pointer's `Arc`, boxed as `Arc<I>` (memory only, no COM reference).
    fn arc(&self) -> Arc<dyn Any + Send + Sync>;
}

impl<I: ?Sized + IUnknown> Held for ComPtr<I> {
    fn add_ref(&self) -> Box<dyn Held> {
        Box::new(self.clone())
    }
    fn ref_count(&self) -> u32 {
        ComPtr::ref_count(self)
    }
    fn arc(&self) -> Arc<dyn Any + Send + Sync> {
        Arc::new(self.as_arc().clone())
    }
}

/// One COM reference held by a script variable.
pub(crate) struct Ptr {
    /// The object's `IUnknown` (memory only): what other interfaces are queried from.
    unk: Arc<dyn IUnknown>,
    held: Box<dyn Held>,
}

impl Ptr {
    /// Wraps a reference. `Err` if the object does not answer `IID_IUnknown`.
    pub(crate) fn new<I: ?Sized + Interface + IUnknown>(p: ComPtr<I>) -> Result<Ptr, HRESULT> {
        let unk = query::<dyn IUnknown>(&*p).map_err(|e| e.code())?;
        Ok(Ptr {
            unk: unk.as_arc().clone(),
            held: Box::new(p),
        })
    }

    /// The object's identity, as an address (for naming objects and matching call objects).
    pub(crate) fn identity(&self) -> usize {
        addr_of(&self.unk)
    }

    /// The object's `IUnknown`, memory only.
    pub(crate) fn unknown(&self) -> &Arc<dyn IUnknown> {
        &self.unk
    }

    pub(crate) fn ref_count(&self) -> u32 {
        self.held.ref_count()
    }

    /// `AddRef`: a second reference.
    pub(crate) fn add_ref(&self) -> Ptr {
        Ptr {
            unk: self.unk.clone(),
            held: self.held.add_ref(),
        }
    }

    /// The pointer for an operation on another thread (no COM reference).
    pub(crate) fn target(&self) -> Target {
        Target {
            unk: self.unk.clone(),
            direct: self.held.arc(),
        }
    }
}

/// The data address of an `Arc`, for identity comparisons.
pub(crate) fn addr_of<T: ?Sized>(a: &Arc<T>) -> usize {
    Arc::as_ptr(a) as *const () as usize
}

/// An interface used by an operation: the variable's own pointer, or one queried for the
/// operation (released when it ends).
pub(crate) enum Use<J: ?Sized + IUnknown> {
    /// The variable holds `J`: used without a new reference.
    Direct(Arc<J>),
    /// Queried for the operation.
    Queried(ComPtr<J>),
}

impl<J: ?Sized + IUnknown> std::ops::Deref for Use<J> {
    type Target = J;
    fn deref(&self) -> &J {
        match self {
            Use::Direct(a) => a,
            Use::Queried(p) => p,
        }
    }
}

impl<J: ?Sized + IUnknown> Use<J> {
    /// The interface as a reference of its own (a new one for a direct use).
    pub(crate) fn into_ptr(self) -> ComPtr<J> {
        match self {
            Use::Direct(a) => ComPtr::new(a),
            Use::Queried(p) => p,
        }
    }
}

/// What an operation on another thread works on: a variable's pointer, memory only.
#[derive(Clone)]
pub(crate) struct Target {
    unk: Arc<dyn IUnknown>,
    /// The variable's own `Arc<I>`.
    direct: Arc<dyn Any + Send + Sync>,
}

impl Target {
    /// The interface `J`: the variable's own pointer if it is a `J`, else queried.
    pub(crate) fn get<J: ?Sized + Interface + IUnknown>(&self) -> Result<Use<J>, HRESULT> {
        match self.direct.downcast_ref::<Arc<J>>() {
            Some(a) => Ok(Use::Direct(a.clone())),
            None => query::<J>(&*self.unk)
                .map(Use::Queried)
                .map_err(|e| e.code()),
        }
    }

    /// The object's `IUnknown`, memory only.
    pub(crate) fn unknown(&self) -> &Arc<dyn IUnknown> {
        &self.unk
    }
}

/// The `HANDLE` of an event or call object (through `ISynchronizeHandle`).
pub(crate) fn handle_of(unk: &dyn IUnknown) -> Result<HANDLE, HRESULT> {
    let h = query::<dyn ISynchronizeHandle>(unk).map_err(|e| e.code())?;
    h.get_handle().map_err(|e| e.code())
}
