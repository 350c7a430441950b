//! `IUnknown` in safe Rust: identity, `QueryInterface`, `AddRef`/`Release`, the [`ComPtr`]
//! smart pointer, and aggregation (an inner object under a controlling outer unknown).
//!
//! # The shape (see `docs/design.md`)
//!
//! * An interface is a trait with COM's name whose supertrait is [`IUnknown`]; `dyn ISomething`
//!   implements [`Interface`], which carries its IID.
//! * **Memory is Rust's, the count is COM's.** Objects live in `Arc`s. Their COM reference
//!   count is an explicit counter that `add_ref`/`release` change and return, so tests can
//!   observe it; the *last* `release` is a COM event with meaning (a call object abandons its
//!   call), not a free. Memory goes when the last `Arc` drops.
//! * `query_interface(iid, ppv)` writes an `Option<ComPtr<dyn I>>` through `ppv: &mut dyn Any`,
//!   the safe analogue of C's `void **ppv`; [`query`] and [`ComPtr::query`] are the typed forms.
//! * **Aggregation is two unknowns.** An inner object created under an outer keeps a `Weak`
//!   link to it; its (delegating) `query_interface`/`add_ref`/`release` go to the outer. The
//!   outer owns the inner's *non-delegating* unknown ([`INonDelegatingUnknown`], handed out as a
//!   plain `ComPtr<dyn IUnknown>` by [`non_delegating`]).
//!
//! # Invariants
//!
//! * Every `ComPtr` holds exactly one COM reference: `clone` does `add_ref`, `drop` does
//!   `release`.
//! * A `ComPtr` to an aggregated inner's interface also keeps its controlling object's memory
//!   alive (its *owner*), so delegation never finds the outer gone while a pointer exists.
//! * `release` never takes a count below zero; an unbalanced `release` returns 0 and changes
//!   nothing.
//! * `IID_IUnknown` through any interface yields the controlling object, so
//!   [`ComPtr::is_same_object`] is COM's identity test. The one exception is COM's own: asked
//!   through an aggregated inner's *non-delegating* unknown, `IID_IUnknown` yields that
//!   non-delegating unknown (the same pointer each time; see [`RefCount::nd_identity`]), which
//!   is how `CoCreateInstance` with an outer obtains it.

use std::any::Any;
use std::fmt;
use std::ops::Deref;
use std::sync::{Arc, Weak};

use crate::guid::{IID_IUnknown, IID};
use crate::hresult::{Error, Result, E_INVALIDARG, E_UNEXPECTED, HRESULT, S_OK};
use crate::sync::prim::{AtomicU32, Mutex, Ordering};

/// A COM interface type (`dyn ISynchronize`, ...): its IID and its name.
///
/// ```
/// use comasync::guid::{GUID, IID_ISynchronize};
/// use comasync::sync::ISynchronize;
/// use comasync::unknown::{IUnknown, Interface};
///
/// assert_eq!(<dyn ISynchronize as Interface>::IID, IID_ISynchronize);
/// assert_eq!(<dyn ISynchronize as Interface>::NAME, "ISynchronize");
///
/// // Your own interface: a trait over IUnknown, with its IID on `dyn`.
/// trait IGreeter: IUnknown {
///     fn greet(&self) -> String;
/// }
/// impl Interface for dyn IGreeter {
///     const IID: GUID = GUID::from_str_const("{6B5F1E0A-0C1D-4E2F-8A3B-4C5D6E7F8091}");
///     const NAME: &'static str = "IGreeter";
/// }
/// assert_eq!(<dyn IGreeter as Interface>::IID.data1, 0x6B5F_1E0A);
/// ```
pub trait Interface: 'static {
    /// The interface identifier.
    const IID: IID;
    /// The interface's COM name, for traces and messages.
    const NAME: &'static str;
}

/// `IUnknown`: every COM interface derives from it.
///
/// Implementations must answer `IID_IUnknown` with the controlling object (the same one every
/// time), and must answer `E_NOINTERFACE` for anything they do not implement.
///
/// ```
/// use comasync::guid::{IID_ICallFactory, IID_ISynchronize};
/// use comasync::hresult::{E_NOINTERFACE, S_OK};
/// use comasync::sync::{ISynchronize, ManualResetEvent};
/// use comasync::unknown::{ComPtr, IUnknown};
///
/// let event = ManualResetEvent::create(); // count 1
/// let mut slot: Option<ComPtr<dyn ISynchronize>> = None; // the `void **ppv`
/// assert_eq!(event.query_interface(&IID_ISynchronize, &mut slot), S_OK); // count 2
/// assert_eq!(event.query_interface(&IID_ICallFactory, &mut slot), E_NOINTERFACE);
/// assert_eq!(event.add_ref(), 3);
/// assert_eq!(event.release(), 2);
/// drop(slot); // Release: count 1
/// assert_eq!(event.ref_count(), 1);
/// ```
pub trait IUnknown: Send + Sync + 'static {
    /// `QueryInterface`: writes `Some(ComPtr<dyn I>)` into `ppv` (an
    /// `&mut Option<ComPtr<dyn I>>`) for a supported `iid` and returns `S_OK`; otherwise
    /// returns `E_NOINTERFACE` and leaves `ppv` alone. A `ppv` of the wrong type gives
    /// `E_INVALIDARG`.
    fn query_interface(&self, iid: &IID, ppv: &mut dyn Any) -> HRESULT;
    /// `AddRef`: adds a COM reference and returns the new count.
    fn add_ref(&self) -> u32;
    /// `Release`: drops a COM reference and returns the new count. The release that brings
    /// the count to zero is the object's *final release*.
    fn release(&self) -> u32;
}

impl Interface for dyn IUnknown {
    const IID: IID = IID_IUnknown;
    const NAME: &'static str = "IUnknown";
}

/// The non-delegating unknown of an object that can be aggregated: the one its controlling
/// outer calls to reach it. (In C++ this is a second vtable; here it is a second trait.)
///
/// ```
/// use std::sync::Arc;
/// use comasync::guid::CLSID_ManualResetEvent;
/// use comasync::sync::SyncEvent;
/// use comasync::unknown::{INonDelegatingUnknown, IUnknown, PlainObject};
///
/// let outer = PlainObject::create(); // outer count 1
/// let inner = SyncEvent::new_aggregated(CLSID_ManualResetEvent, Arc::downgrade(outer.as_arc()));
/// assert_eq!(inner.nd_add_ref(), 1); // the outer's reference on the inner: the inner's own count
/// assert_eq!(inner.add_ref(), 2); // the delegating AddRef counts on the outer
/// assert_eq!(outer.ref_count(), 2);
/// assert_eq!(inner.release(), 1);
/// assert_eq!(inner.nd_release(), 0); // the inner's final release
/// ```
pub trait INonDelegatingUnknown: Send + Sync + 'static {
    /// The inner object's own `QueryInterface`.
    fn nd_query_interface(&self, iid: &IID, ppv: &mut dyn Any) -> HRESULT;
    /// The inner object's own `AddRef`.
    fn nd_add_ref(&self) -> u32;
    /// The inner object's own `Release`.
    fn nd_release(&self) -> u32;
}

/// An owning COM interface pointer: one COM reference, released on drop.
///
/// ```
/// use comasync::sync::ManualResetEvent;
/// use comasync::sync::ISynchronize;
/// use comasync::unknown::{ComPtr, IUnknown};
///
/// let event = ManualResetEvent::create();          // count 1
/// let again = event.clone();                       // AddRef: count 2
/// assert_eq!(event.ref_count(), 2);
/// drop(again);                                     // Release: count 1
/// let unk = event.query::<dyn IUnknown>().unwrap();
/// assert!(ComPtr::is_same_object(&unk, &event));
/// ```
pub struct ComPtr<I: ?Sized + IUnknown> {
    ptr: Arc<I>,
    owner: Option<Arc<dyn IUnknown>>,
}

impl<I: ?Sized + IUnknown> ComPtr<I> {
    /// Takes a new COM reference (`add_ref`) on `ptr`.
    pub fn new(ptr: Arc<I>) -> Self {
        ptr.add_ref();
        ComPtr { ptr, owner: None }
    }

    /// Takes a new COM reference on `ptr`, an interface of an aggregated inner object whose
    /// controlling object is `owner`; the pointer keeps `owner`'s memory alive.
    pub fn new_owned(ptr: Arc<I>, owner: Option<Arc<dyn IUnknown>>) -> Self {
        ptr.add_ref();
        ComPtr { ptr, owner }
    }

    /// Replaces the owner (the object whose memory this pointer keeps alive). Used by an outer
    /// that hands out an interface of its inner.
    pub fn with_owner(mut self, owner: Option<Arc<dyn IUnknown>>) -> Self {
        if owner.is_some() {
            self.owner = owner;
        }
        self
    }

    /// The `Arc` behind this pointer (no COM reference is taken).
    pub fn as_arc(&self) -> &Arc<I> {
        &self.ptr
    }

    /// `QueryInterface` for `J`, typed.
    pub fn query<J: ?Sized + Interface + IUnknown>(&self) -> Result<ComPtr<J>> {
        query::<J>(&*self.ptr)
    }

    /// The current COM reference count of the object's identity, read by an `AddRef` and a
    /// `Release` (both observable); for tests and traces.
    pub fn ref_count(&self) -> u32 {
        self.ptr.add_ref();
        self.ptr.release()
    }

    /// Whether two pointers point at the same interface of the same object.
    pub fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.ptr, &b.ptr)
    }

    /// COM's identity test: do both pointers answer `IID_IUnknown` with the same object?
    pub fn is_same_object<J: ?Sized + IUnknown>(a: &Self, b: &ComPtr<J>) -> bool {
        match (a.query::<dyn IUnknown>(), b.query::<dyn IUnknown>()) {
            (Ok(x), Ok(y)) => std::ptr::addr_eq(Arc::as_ptr(&x.ptr), Arc::as_ptr(&y.ptr)),
            _ => false,
        }
    }
}

impl<I: ?Sized + IUnknown> Clone for ComPtr<I> {
    fn clone(&self) -> Self {
        self.ptr.add_ref();
        ComPtr {
            ptr: self.ptr.clone(),
            owner: self.owner.clone(),
        }
    }
}

/// Two pointers are equal when they are the same interface pointer — what comparing two
/// interface pointers in C or C++ means. (COM's identity test, which asks both for
/// `IID_IUnknown`, is [`ComPtr::is_same_object`].)
///
/// ```
/// use comasync::sync::{ISynchronize, ManualResetEvent};
/// let a = ManualResetEvent::create();
/// assert_eq!(a.clone(), a);
/// assert_ne!(a, ManualResetEvent::create());
/// ```
impl<I: ?Sized + IUnknown> PartialEq for ComPtr<I> {
    fn eq(&self, other: &Self) -> bool {
        ComPtr::ptr_eq(self, other)
    }
}

impl<I: ?Sized + IUnknown> Eq for ComPtr<I> {}

impl<I: ?Sized + IUnknown> Drop for ComPtr<I> {
    fn drop(&mut self) {
        self.ptr.release();
    }
}

impl<I: ?Sized + IUnknown> Deref for ComPtr<I> {
    type Target = I;
    #[inline]
    fn deref(&self) -> &I {
        &self.ptr
    }
}

impl<I: ?Sized + IUnknown> fmt::Debug for ComPtr<I> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ComPtr({:p})", Arc::as_ptr(&self.ptr))
    }
}

/// `QueryInterface` for `I` on any unknown, typed: `Ok(pointer)` or the failure `HRESULT`
/// (`E_NOINTERFACE` for an unsupported interface).
///
/// ```
/// use comasync::hresult::E_NOINTERFACE;
/// use comasync::sync::{ISynchronizeEvent, ISynchronizeHandle, ManualResetEvent};
/// use comasync::unknown::query;
///
/// let event = ManualResetEvent::create();
/// let handle = query::<dyn ISynchronizeHandle>(&*event)?.get_handle()?;
/// assert!(!handle.is_signaled());
/// // Only CLSID_StdEvent implements ISynchronizeEvent.
/// let err = query::<dyn ISynchronizeEvent>(&*event).unwrap_err();
/// assert_eq!(err.code(), E_NOINTERFACE);
/// # Ok::<(), comasync::Error>(())
/// ```
pub fn query<I: ?Sized + Interface + IUnknown>(
    unk: &(impl IUnknown + ?Sized),
) -> Result<ComPtr<I>> {
    let mut slot: Option<ComPtr<I>> = None;
    let hr = unk.query_interface(&I::IID, &mut slot);
    hr.ok()?;
    slot.ok_or(Error(E_UNEXPECTED))
}

/// Writes `p` into a `query_interface` out-slot `ppv` (an `&mut Option<ComPtr<I>>`) and returns
/// `S_OK`; `E_INVALIDARG` (and `p` is released) if the slot is of another type.
///
/// ```
/// use comasync::hresult::{E_INVALIDARG, S_OK};
/// use comasync::sync::{ISynchronize, StdEvent};
/// use comasync::unknown::{set_out, ComPtr, IUnknown};
///
/// let event = StdEvent::create();
/// let mut slot: Option<ComPtr<dyn ISynchronize>> = None;
/// assert_eq!(set_out(&mut slot, event.clone()), S_OK);
/// assert!(slot.is_some());
/// let mut wrong: Option<ComPtr<dyn IUnknown>> = None; // a ppv for another interface
/// assert_eq!(set_out(&mut wrong, event.clone()), E_INVALIDARG);
/// assert_eq!(event.ref_count(), 2); // `event` and `slot`; the refused pointer was released
/// ```
pub fn set_out<I: ?Sized + IUnknown>(ppv: &mut dyn Any, p: ComPtr<I>) -> HRESULT {
    match ppv.downcast_mut::<Option<ComPtr<I>>>() {
        Some(slot) => {
            *slot = Some(p);
            S_OK
        }
        None => E_INVALIDARG,
    }
}

/// The reference-count and outer-link bookkeeping every comasync object embeds.
///
/// Not aggregated: `add_ref`/`release` count here. Aggregated: they go to the outer, and this
/// count is the outer's reference on the inner (its non-delegating count).
///
/// The count saturates: an `AddRef` at `u32::MAX` leaves it there, and so does every
/// `Release` after, so an object referenced 2³² times is never finally released (leaked,
/// never freed early). COM's `ULONG` count would wrap to 0 instead.
///
/// ```
/// use comasync::unknown::RefCount;
///
/// let refs = RefCount::new();
/// assert_eq!(refs.nd_add_ref(), 1);
/// assert_eq!(refs.nd_add_ref(), 2);
/// assert_eq!(refs.nd_release(), (1, false));
/// assert_eq!(refs.nd_release(), (0, true)); // the final release
/// assert_eq!(refs.nd_release(), (0, false)); // unbalanced: changes nothing
/// assert!(!refs.is_aggregated());
/// ```
pub struct RefCount {
    count: AtomicU32,
    /// Boxed: one pointer for the (common) object that is not aggregated.
    outer: Option<Box<Outer>>,
}

/// An aggregated object's links: its controlling outer (weak: the outer owns the inner) and
/// its non-delegating unknown once handed out (weak: the outer holds it), so that every
/// `QueryInterface(IID_IUnknown)` through the non-delegating unknown yields the same pointer.
struct Outer {
    link: Weak<dyn IUnknown>,
    nd: Mutex<Weak<NonDelegating>>,
}

impl RefCount {
    /// A count of zero, not aggregated.
    pub fn new() -> Self {
        RefCount {
            count: AtomicU32::new(0),
            outer: None,
        }
    }

    /// A count of zero, aggregated under `outer` (held weakly: the outer owns the inner).
    pub fn aggregated(outer: Weak<dyn IUnknown>) -> Self {
        RefCount {
            count: AtomicU32::new(0),
            outer: Some(Box::new(Outer {
                link: outer,
                nd: Mutex::new(Weak::new()),
            })),
        }
    }

    /// Whether the object is aggregated.
    pub fn is_aggregated(&self) -> bool {
        self.outer.is_some()
    }

    /// The controlling outer unknown, if aggregated and still alive.
    pub fn outer(&self) -> Option<Arc<dyn IUnknown>> {
        self.outer.as_ref().and_then(|o| o.link.upgrade())
    }

    /// What the object's *non-delegating* `QueryInterface(IID_IUnknown)` hands out (`me` is
    /// the object itself), with a new reference:
    ///
    /// * not aggregated: the object's identity, `me` as `IUnknown`;
    /// * aggregated: its non-delegating unknown (the same pointer every time while one is
    ///   held), whose `AddRef`/`Release` are the inner's own count. This is what
    ///   `CoCreateInstance` with an outer returns, and what the outer keeps to reach the inner.
    ///   (The outer's identity is reached through the *delegating* `QueryInterface`.)
    pub fn nd_identity<T: IUnknown + INonDelegatingUnknown>(
        &self,
        me: Arc<T>,
    ) -> ComPtr<dyn IUnknown> {
        match &self.outer {
            None => ComPtr::new(me as Arc<dyn IUnknown>),
            Some(o) => {
                let mut cache = o.nd.lock();
                let nd = match cache.upgrade() {
                    Some(nd) => nd,
                    None => {
                        let nd = Arc::new(NonDelegating(me as Arc<dyn INonDelegatingUnknown>));
                        *cache = Arc::downgrade(&nd);
                        nd
                    }
                };
                drop(cache);
                ComPtr::new(nd as Arc<dyn IUnknown>)
            }
        }
    }

    /// The object's own `AddRef` (non-delegating). Saturates at `u32::MAX` (see the type's
    /// documentation).
    #[inline]
    pub fn nd_add_ref(&self) -> u32 {
        match self
            .count
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |c| c.checked_add(1))
        {
            Ok(prev) => prev + 1,
            Err(_) => u32::MAX,
        }
    }

    /// The object's own `Release` (non-delegating): the new count, and whether this was the
    /// final release. An unbalanced release returns `(0, false)` and changes nothing; a
    /// saturated count (`u32::MAX`) stays saturated.
    #[inline]
    pub fn nd_release(&self) -> (u32, bool) {
        match self
            .count
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |c| match c {
                u32::MAX => None,
                c => c.checked_sub(1),
            }) {
            Ok(prev) => (prev - 1, prev == 1),
            Err(u32::MAX) => (u32::MAX, false),
            Err(_) => (0, false),
        }
    }

    /// A `ComPtr` to one of this object's own interfaces (`p` is the object itself, as that
    /// interface): takes a delegating reference, and when aggregated keeps the outer alive.
    pub fn ptr<I: ?Sized + IUnknown>(&self, p: Arc<I>) -> ComPtr<I> {
        ComPtr::new_owned(p, self.outer())
    }

    /// The object's own count.
    pub fn nd_count(&self) -> u32 {
        self.count.load(Ordering::Acquire)
    }

    /// Delegating `AddRef`: to the outer if aggregated.
    #[inline]
    pub fn add_ref(&self) -> u32 {
        match &self.outer {
            None => self.nd_add_ref(),
            Some(o) => o.link.upgrade().map_or(0, |o| o.add_ref()),
        }
    }
}

impl Default for RefCount {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for RefCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefCount")
            .field("count", &self.nd_count())
            .field("aggregated", &self.is_aggregated())
            .finish()
    }
}

/// Implements [`IUnknown`] for a type that implements [`INonDelegatingUnknown`] and has a
/// `refs: RefCount` field: delegating to the outer when aggregated, to itself otherwise.
/// Generic types list their parameters in brackets first:
/// `delegating_unknown!([M: AsyncInterface] CallObject<M>)`.
#[macro_export]
macro_rules! delegating_unknown {
    ([$($g:tt)*] $ty:ty) => {
        impl<$($g)*> $crate::unknown::IUnknown for $ty {
            fn query_interface(
                &self,
                iid: &$crate::guid::IID,
                ppv: &mut dyn ::std::any::Any,
            ) -> $crate::hresult::HRESULT {
                match self.refs.outer() {
                    Some(o) => o.query_interface(iid, ppv),
                    None if self.refs.is_aggregated() => $crate::hresult::RPC_E_DISCONNECTED,
                    None => {
                        $crate::unknown::INonDelegatingUnknown::nd_query_interface(self, iid, ppv)
                    }
                }
            }
            fn add_ref(&self) -> u32 {
                match self.refs.outer() {
                    Some(o) => o.add_ref(),
                    None if self.refs.is_aggregated() => 0,
                    None => $crate::unknown::INonDelegatingUnknown::nd_add_ref(self),
                }
            }
            fn release(&self) -> u32 {
                match self.refs.outer() {
                    Some(o) => o.release(),
                    None if self.refs.is_aggregated() => 0,
                    None => $crate::unknown::INonDelegatingUnknown::nd_release(self),
                }
            }
        }
    };
    ($ty:ty) => {
        $crate::delegating_unknown!([] $ty);
    };
}

/// Implements COM identity for an object type: [`INonDelegatingUnknown`] (its own
/// `QueryInterface` table, count and final release) and the delegating [`IUnknown`].
///
/// The type needs two fields: `refs: RefCount` and `me: Weak<Self>` (set with
/// `Arc::new_cyclic`). `IID_IUnknown` is answered with the object's identity
/// ([`RefCount::nd_identity`]); each listed interface with the object itself; any other IID
/// goes to the optional `more` function (`fn(&self, me: &Arc<Self>, iid, ppv) -> HRESULT`),
/// else `E_NOINTERFACE`. `guard` (`fn(&self) -> Result<(), HRESULT>`), if given, is asked
/// first and can refuse every `QueryInterface` (a released call object). `final_release`
/// (`fn(&self)`) runs when the object's own count reaches zero. Generic types list their parameters in brackets first.
///
/// ```
/// use std::sync::{Arc, Weak};
/// use comasync::sync::ISynchronize;
/// use comasync::hresult::{HRESULT, S_OK};
/// use comasync::unknown::{ComPtr, RefCount};
///
/// struct Always { refs: RefCount, me: Weak<Always> }
/// impl ISynchronize for Always {
///     fn wait(&self, _: u32, _: u32) -> HRESULT { S_OK }
///     fn signal(&self) -> HRESULT { S_OK }
///     fn reset(&self) -> HRESULT { S_OK }
/// }
/// comasync::com_object!([] Always { interfaces: [dyn ISynchronize] });
///
/// let obj = Arc::new_cyclic(|me| Always { refs: RefCount::new(), me: me.clone() });
/// let sync: ComPtr<dyn ISynchronize> = ComPtr::new(obj);
/// assert_eq!(sync.wait(0, 0), S_OK);
/// ```
#[macro_export]
macro_rules! com_object {
    (
        [$($g:tt)*] $ty:ty {
            interfaces: [$($iface:ty),* $(,)?]
            $(, guard: $guard:path)?
            $(, more: $more:path)?
            $(, final_release: $fin:path)?
            $(,)?
        }
    ) => {
        impl<$($g)*> $crate::unknown::INonDelegatingUnknown for $ty {
            fn nd_query_interface(
                &self,
                iid: &$crate::guid::IID,
                ppv: &mut dyn ::std::any::Any,
            ) -> $crate::hresult::HRESULT {
                $(
                    if let ::std::result::Result::Err(hr) = $guard(self) {
                        return hr;
                    }
                )?
                let ::std::option::Option::Some(me) = self.me.upgrade() else {
                    return $crate::hresult::RPC_E_DISCONNECTED;
                };
                if *iid == $crate::guid::IID_IUnknown {
                    return $crate::unknown::set_out::<dyn $crate::unknown::IUnknown>(
                        ppv,
                        self.refs.nd_identity(me),
                    );
                }
                $(
                    if *iid == <$iface as $crate::unknown::Interface>::IID {
                        return $crate::unknown::set_out::<$iface>(
                            ppv,
                            self.refs.ptr(me as ::std::sync::Arc<$iface>),
                        );
                    }
                )*
                $crate::com_object!(@more self, me, iid, ppv $(, $more)?)
            }
            fn nd_add_ref(&self) -> u32 {
                self.refs.nd_add_ref()
            }
            fn nd_release(&self) -> u32 {
                let (count, _last) = self.refs.nd_release();
                $( if _last { $fin(self); } )?
                count
            }
        }
        $crate::delegating_unknown!([$($g)*] $ty);
    };
    (@more $s:ident, $me:ident, $iid:ident, $ppv:ident) => {{
        let _ = $me;
        $crate::hresult::E_NOINTERFACE
    }};
    (@more $s:ident, $me:ident, $iid:ident, $ppv:ident, $more:path) => {
        $more($s, &$me, $iid, $ppv)
    };
}

/// The non-delegating unknown of an inner object, as an ordinary `IUnknown` pointer: what
/// `CreateCall` and `CoCreateInstance` hand an aggregating outer.
///
/// ```
/// use std::sync::Arc;
/// use comasync::guid::CLSID_StdEvent;
/// use comasync::sync::{ISynchronize, SyncEvent};
/// use comasync::unknown::{non_delegating, ComPtr, PlainObject};
///
/// let outer = PlainObject::create();
/// let inner = SyncEvent::new_aggregated(CLSID_StdEvent, Arc::downgrade(outer.as_arc()));
/// let nd = non_delegating(inner); // what the outer keeps
/// let sync = nd.query::<dyn ISynchronize>()?; // the inner's own QueryInterface...
/// assert!(ComPtr::is_same_object(&sync, &outer)); // ...hands out an interface of the outer
/// # Ok::<(), comasync::Error>(())
/// ```
pub fn non_delegating(inner: Arc<dyn INonDelegatingUnknown>) -> ComPtr<dyn IUnknown> {
    let unk: Arc<dyn IUnknown> = Arc::new(NonDelegating(inner));
    ComPtr::new(unk)
}

struct NonDelegating(Arc<dyn INonDelegatingUnknown>);

impl IUnknown for NonDelegating {
    fn query_interface(&self, iid: &IID, ppv: &mut dyn Any) -> HRESULT {
        self.0.nd_query_interface(iid, ppv)
    }
    fn add_ref(&self) -> u32 {
        self.0.nd_add_ref()
    }
    fn release(&self) -> u32 {
        self.0.nd_release()
    }
}

/// Checks the aggregation rule of object creation (spec D11): an object created under an
/// outer may only be asked for `IID_IUnknown`; anything else is `E_INVALIDARG`... or, for
/// classes, `CLASS_E_NOAGGREGATION`-style codes chosen by the caller. Returns `Ok(())` when the
/// request is allowed.
///
/// ```
/// use comasync::guid::{IID_ISynchronize, IID_IUnknown};
/// use comasync::hresult::{Error, CLASS_E_NOAGGREGATION};
/// use comasync::unknown::check_aggregation_request;
///
/// let code = CLASS_E_NOAGGREGATION;
/// assert_eq!(check_aggregation_request(true, &IID_IUnknown, code), Ok(()));
/// assert_eq!(check_aggregation_request(true, &IID_ISynchronize, code), Err(Error(code)));
/// assert_eq!(check_aggregation_request(false, &IID_ISynchronize, code), Ok(()));
/// ```
pub fn check_aggregation_request(aggregating: bool, riid: &IID, code: HRESULT) -> Result<()> {
    if aggregating && *riid != IID_IUnknown {
        Err(Error(code))
    } else {
        Ok(())
    }
}

/// A COM object whose only interface is `IUnknown`, with an observable count. Useful as an
/// outer in tests and as an object "without async support" (it answers `E_NOINTERFACE` to
/// `ICallFactory`).
///
/// ```
/// use comasync::call::ICallFactory;
/// use comasync::hresult::E_NOINTERFACE;
/// use comasync::unknown::{ComPtr, IUnknown, PlainObject};
///
/// let obj = PlainObject::create();
/// assert_eq!(obj.ref_count(), 1);
/// let err = obj.query::<dyn ICallFactory>().unwrap_err(); // no async support
/// assert_eq!(err.code(), E_NOINTERFACE);
/// let unk = obj.query::<dyn IUnknown>()?;
/// assert!(ComPtr::is_same_object(&unk, &obj));
/// # Ok::<(), comasync::Error>(())
/// ```
pub struct PlainObject {
    refs: RefCount,
    me: Weak<PlainObject>,
}

impl PlainObject {
    /// A new object with one reference.
    pub fn create() -> ComPtr<dyn IUnknown> {
        let obj: Arc<dyn IUnknown> = Arc::new_cyclic(|me| PlainObject {
            refs: RefCount::new(),
            me: me.clone(),
        });
        ComPtr::new(obj)
    }
}

com_object!([] PlainObject { interfaces: [] });

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn add_ref_saturates_at_u32_max_and_never_releases_early() {
        // Reaching 2^32 by AddRef takes minutes; start just below it.
        let refs = RefCount {
            count: AtomicU32::new(u32::MAX - 1),
            outer: None,
        };
        assert_eq!(refs.nd_add_ref(), u32::MAX);
        assert_eq!(refs.nd_add_ref(), u32::MAX, "saturated, not wrapped to 0");
        assert_eq!(
            refs.nd_release(),
            (u32::MAX, false),
            "a saturated count stays"
        );
        assert_eq!(refs.nd_count(), u32::MAX);
    }

    #[test]
    fn release_below_zero_changes_nothing() {
        let refs = RefCount::new();
        assert_eq!(refs.nd_release(), (0, false));
        assert_eq!(refs.nd_add_ref(), 1);
        assert_eq!(refs.nd_release(), (0, true));
    }
}
