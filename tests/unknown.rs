//! `IUnknown`: identity, `AddRef`/`Release` counts, `ComPtr`, `QueryInterface` failures,
//! `CoCreateInstance` errors (spec D11), and aggregation of the system classes under an outer
//! unknown (spec 1.4: the samples aggregate `CLSID_ManualResetEvent` under a call object).
//!
//! Memory is checked with `Weak::upgrade`: an object is freed when no `Weak` to it upgrades.

use std::any::Any;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock, Weak};

use comasync::class::{co_create_instance, create_instance};
use comasync::guid::{
    CLSID_ManualResetEvent, CLSID_StdEvent, CLSID_SynchronizeContainer, IID_ICallFactory,
    IID_ISynchronize, IID_ISynchronizeContainer, IID_ISynchronizeEvent, IID_ISynchronizeHandle,
    IID_IUnknown, CLSID, GUID, IID,
};
use comasync::hresult::{
    E_INVALIDARG, E_NOINTERFACE, E_UNEXPECTED, HRESULT, REGDB_E_CLASSNOTREG, RPC_E_DISCONNECTED,
    RPC_S_CALLPENDING, S_OK,
};
use comasync::sync::{
    ISynchronize, ISynchronizeContainer, ISynchronizeEvent, ISynchronizeHandle, ManualResetEvent,
    StdEvent, SyncEvent, SynchronizeContainer,
};
use comasync::unknown::{query, set_out, ComPtr, INonDelegatingUnknown, IUnknown, PlainObject};

/// The address of an object's identity (`IID_IUnknown`), for identity comparisons.
fn identity<I: ?Sized + IUnknown>(p: &ComPtr<I>) -> *const () {
    Arc::as_ptr(p.query::<dyn IUnknown>().unwrap().as_arc()) as *const ()
}

fn addr<I: ?Sized>(a: &Arc<I>) -> *const () {
    Arc::as_ptr(a) as *const ()
}

// ---- a test outer ---------------------------------------------------------------------------

/// A controlling outer unknown that aggregates one system object: it answers `IID_IUnknown`
/// itself, forwards the IIDs in `forwards` to the inner's non-delegating unknown, and answers
/// `E_NOINTERFACE` to everything else. It counts its references and the `QueryInterface`
/// calls it receives.
struct TestOuter {
    count: AtomicU32,
    me: Weak<TestOuter>,
    forwards: Vec<IID>,
    /// The inner's non-delegating unknown (one reference on the inner's own count).
    inner: OnceLock<ComPtr<dyn IUnknown>>,
    qi_calls: AtomicU32,
    final_releases: AtomicU32,
}

impl TestOuter {
    fn new(me: &Weak<TestOuter>, forwards: &[IID]) -> TestOuter {
        TestOuter {
            count: AtomicU32::new(0),
            me: me.clone(),
            forwards: forwards.to_vec(),
            inner: OnceLock::new(),
            qi_calls: AtomicU32::new(0),
            final_releases: AtomicU32::new(0),
        }
    }

    /// An outer whose inner is created by `CoCreateInstance(clsid, outer, IID_IUnknown)`.
    /// Returns the outer and a pointer to its `IUnknown` (one reference).
    fn aggregating(clsid: &CLSID, forwards: &[IID]) -> (Arc<TestOuter>, ComPtr<dyn IUnknown>) {
        let outer = Arc::new_cyclic(|me| TestOuter::new(me, forwards));
        let unk: ComPtr<dyn IUnknown> = ComPtr::new(outer.clone() as Arc<dyn IUnknown>);
        let mut nd: Option<ComPtr<dyn IUnknown>> = None;
        assert_eq!(
            co_create_instance(clsid, Some(&unk), &IID_IUnknown, &mut nd),
            S_OK
        );
        assert!(outer
            .inner
            .set(nd.expect("the non-delegating unknown"))
            .is_ok());
        (outer, unk)
    }

    /// An outer that builds its inner event with `SyncEvent::new_aggregated` while it is being
    /// constructed (as a C++ outer does in its constructor). Also returns a `Weak` to the inner.
    fn with_sync_event(clsid: CLSID) -> (Arc<TestOuter>, ComPtr<dyn IUnknown>, Weak<SyncEvent>) {
        let mut inner_weak = Weak::new();
        let outer = Arc::new_cyclic(|me: &Weak<TestOuter>| {
            let outer = TestOuter::new(me, &[IID_ISynchronize, IID_ISynchronizeEvent]);
            let me_unk: Weak<dyn IUnknown> = me.clone();
            let inner = SyncEvent::new_aggregated(clsid, me_unk);
            inner_weak = Arc::downgrade(&inner);
            let mut nd: Option<ComPtr<dyn IUnknown>> = None;
            assert_eq!(inner.nd_query_interface(&IID_IUnknown, &mut nd), S_OK);
            assert!(outer.inner.set(nd.unwrap()).is_ok());
            outer
        });
        let unk = ComPtr::new(outer.clone() as Arc<dyn IUnknown>);
        (outer, unk, inner_weak)
    }

    fn nd(&self) -> &ComPtr<dyn IUnknown> {
        self.inner.get().unwrap()
    }

    fn count(&self) -> u32 {
        self.count.load(Ordering::SeqCst)
    }
}

impl IUnknown for TestOuter {
    fn query_interface(&self, iid: &IID, ppv: &mut dyn Any) -> HRESULT {
        self.qi_calls.fetch_add(1, Ordering::SeqCst);
        if *iid == IID_IUnknown {
            match self.me.upgrade() {
                Some(me) => set_out::<dyn IUnknown>(ppv, ComPtr::new(me as Arc<dyn IUnknown>)),
                None => E_UNEXPECTED,
            }
        } else if self.forwards.contains(iid) {
            match self.inner.get() {
                Some(nd) => nd.query_interface(iid, ppv),
                None => E_NOINTERFACE,
            }
        } else {
            E_NOINTERFACE
        }
    }
    fn add_ref(&self) -> u32 {
        self.count.fetch_add(1, Ordering::SeqCst) + 1
    }
    fn release(&self) -> u32 {
        match self
            .count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| c.checked_sub(1))
        {
            Ok(1) => {
                self.final_releases.fetch_add(1, Ordering::SeqCst);
                0
            }
            Ok(prev) => prev - 1,
            Err(_) => 0,
        }
    }
}

// ---- identity ------------------------------------------------------------------------------

#[test]
fn iid_iunknown_gives_the_same_object_from_every_interface() {
    for e in [ManualResetEvent::create(), StdEvent::create()] {
        let id = identity(&e);
        let unk = e.query::<dyn IUnknown>().unwrap();
        let handle = e.query::<dyn ISynchronizeHandle>().unwrap();
        let sync_again = handle.query::<dyn ISynchronize>().unwrap();
        assert_eq!(identity(&unk), id);
        assert_eq!(identity(&handle), id);
        assert_eq!(identity(&sync_again), id);
        assert!(ComPtr::is_same_object(&handle, &e));
        assert!(ComPtr::is_same_object(&unk, &sync_again));
    }
    let std = StdEvent::create();
    let ev = std.query::<dyn ISynchronizeEvent>().unwrap();
    assert_eq!(identity(&ev), identity(&std));

    let container = SynchronizeContainer::create();
    let unk = container.query::<dyn IUnknown>().unwrap();
    assert_eq!(identity(&unk), identity(&container));

    let plain = PlainObject::create();
    assert_eq!(
        identity(&plain),
        identity(&plain.query::<dyn IUnknown>().unwrap())
    );
}

#[test]
fn iid_iunknown_is_the_same_pointer_every_time() {
    let e = ManualResetEvent::create();
    let a = e.query::<dyn IUnknown>().unwrap();
    let b = e.query::<dyn IUnknown>().unwrap();
    assert!(ComPtr::ptr_eq(&a, &b));
    // An object created for IID_IUnknown is that same identity.
    let u = create_instance::<dyn IUnknown>(&CLSID_StdEvent).unwrap();
    let s = u.query::<dyn ISynchronize>().unwrap();
    assert!(ComPtr::ptr_eq(&u, &s.query::<dyn IUnknown>().unwrap()));
}

#[test]
fn different_objects_have_different_identities() {
    let a = ManualResetEvent::create();
    let b = ManualResetEvent::create();
    assert!(!ComPtr::is_same_object(&a, &b));
    assert_ne!(identity(&a), identity(&b));
    assert!(ComPtr::is_same_object(&a, &a.clone()));
}

// ---- reference counts ----------------------------------------------------------------------

#[test]
fn a_new_object_has_one_reference() {
    assert_eq!(ManualResetEvent::create().ref_count(), 1);
    assert_eq!(StdEvent::create().ref_count(), 1);
    assert_eq!(SynchronizeContainer::create().ref_count(), 1);
    assert_eq!(PlainObject::create().ref_count(), 1);
    assert_eq!(
        create_instance::<dyn ISynchronize>(&CLSID_ManualResetEvent)
            .unwrap()
            .ref_count(),
        1
    );
    assert_eq!(
        create_instance::<dyn IUnknown>(&CLSID_SynchronizeContainer)
            .unwrap()
            .ref_count(),
        1
    );
}

#[test]
fn add_ref_and_release_return_the_new_count() {
    let e = ManualResetEvent::create();
    assert_eq!(e.add_ref(), 2);
    assert_eq!(e.add_ref(), 3);
    assert_eq!(e.release(), 2);
    assert_eq!(e.release(), 1);
    assert_eq!(e.add_ref(), 2);
    assert_eq!(e.release(), 1);
    let p = PlainObject::create();
    assert_eq!(p.add_ref(), 2);
    assert_eq!(p.release(), 1);
}

#[test]
fn comptr_clone_and_drop_change_the_count_observably() {
    let e = StdEvent::create();
    assert_eq!(e.ref_count(), 1);
    let c1 = e.clone();
    assert_eq!(e.ref_count(), 2);
    let c2 = c1.clone();
    assert_eq!(e.ref_count(), 3);
    drop(c1);
    assert_eq!(e.ref_count(), 2);
    drop(c2);
    assert_eq!(e.ref_count(), 1);
    // Reading the count does not change it.
    assert_eq!(e.ref_count(), 1);
}

#[test]
fn query_interface_adds_one_reference_and_a_failed_one_adds_none() {
    let e = ManualResetEvent::create();
    let h = e.query::<dyn ISynchronizeHandle>().unwrap();
    assert_eq!(e.ref_count(), 2);
    assert!(e.query::<dyn ISynchronizeContainer>().is_err());
    assert_eq!(e.ref_count(), 2);
    drop(h);
    assert_eq!(e.ref_count(), 1);
}

#[test]
fn unbalanced_release_never_underflows() {
    let e = ManualResetEvent::create();
    assert_eq!(e.release(), 0, "the final release");
    assert_eq!(e.release(), 0, "an unbalanced release changes nothing");
    assert_eq!(e.release(), 0);
    assert_eq!(e.add_ref(), 1, "the count did not wrap below zero");
    assert_eq!(e.add_ref(), 2);
    assert_eq!(e.release(), 1);
    // `e` still owns one reference, released on drop.
    drop(e);

    let p = PlainObject::create();
    assert_eq!(p.release(), 0);
    assert_eq!(p.release(), 0);
    assert_eq!(p.add_ref(), 1);
}

// ---- QueryInterface failures ----------------------------------------------------------------

#[test]
fn query_interface_for_an_unsupported_interface_returns_e_nointerface_and_leaves_ppv_alone() {
    let e = ManualResetEvent::create();
    let keep = SynchronizeContainer::create();
    let mut slot: Option<ComPtr<dyn ISynchronizeContainer>> = Some(keep.clone());
    assert_eq!(
        e.query_interface(&IID_ISynchronizeContainer, &mut slot),
        E_NOINTERFACE
    );
    assert!(
        ComPtr::ptr_eq(slot.as_ref().unwrap(), &keep),
        "ppv untouched"
    );

    let mut any: Option<ComPtr<dyn IUnknown>> = None;
    assert_eq!(
        e.query_interface(&IID_ICallFactory, &mut any),
        E_NOINTERFACE
    );
    assert_eq!(
        e.query_interface(&GUID::from_u128(0x1234), &mut any),
        E_NOINTERFACE
    );
    assert!(any.is_none());

    // A plain object has only IUnknown: no async support (no ICallFactory).
    let p = PlainObject::create();
    assert_eq!(
        p.query_interface(&IID_ICallFactory, &mut any),
        E_NOINTERFACE
    );
    assert_eq!(
        p.query_interface(&IID_ISynchronize, &mut any),
        E_NOINTERFACE
    );
    assert!(any.is_none());
    assert_eq!(
        query::<dyn ISynchronize>(&*p).err().map(|e| e.code()),
        Some(E_NOINTERFACE)
    );
}

#[test]
fn query_interface_with_an_out_slot_of_the_wrong_type_returns_e_invalidarg_and_leaks_nothing() {
    let e = ManualResetEvent::create();
    let mut wrong: Option<ComPtr<dyn ISynchronizeContainer>> = None;
    assert_eq!(
        e.query_interface(&IID_ISynchronize, &mut wrong),
        E_INVALIDARG
    );
    assert!(wrong.is_none());
    let mut not_a_slot = 0u8;
    assert_eq!(
        e.query_interface(&IID_IUnknown, &mut not_a_slot),
        E_INVALIDARG
    );
    assert_eq!(
        e.ref_count(),
        1,
        "the reference taken for the answer was released"
    );
}

// ---- CoCreateInstance errors ----------------------------------------------------------------

#[test]
fn unknown_clsid_returns_regdb_e_classnotreg() {
    let bogus = GUID::from_u128(0xDEAD_BEEF);
    let mut slot: Option<ComPtr<dyn IUnknown>> = None;
    let hr = co_create_instance(&bogus, None, &IID_IUnknown, &mut slot);
    assert_eq!(hr, REGDB_E_CLASSNOTREG);
    assert_eq!(hr.as_u32(), 0x8004_0154);
    assert!(slot.is_none());
    // An interface IID is not a class either.
    assert_eq!(
        co_create_instance(&IID_ISynchronize, None, &IID_IUnknown, &mut slot),
        REGDB_E_CLASSNOTREG
    );
    // Also when aggregating, and with any riid.
    let outer = PlainObject::create();
    assert_eq!(
        co_create_instance(&bogus, Some(&outer), &IID_IUnknown, &mut slot),
        REGDB_E_CLASSNOTREG
    );
    let mut sync: Option<ComPtr<dyn ISynchronize>> = None;
    assert_eq!(
        co_create_instance(&bogus, None, &IID_ISynchronize, &mut sync),
        REGDB_E_CLASSNOTREG
    );
    assert!(slot.is_none() && sync.is_none());
    assert_eq!(
        create_instance::<dyn ISynchronize>(&bogus)
            .err()
            .map(|e| e.code()),
        Some(REGDB_E_CLASSNOTREG)
    );
}

#[test]
fn creating_aggregated_with_riid_other_than_iunknown_returns_e_invalidarg() {
    // Spec D11: aggregating with riid != IID_IUnknown -> E_INVALIDARG.
    for clsid in [
        CLSID_ManualResetEvent,
        CLSID_StdEvent,
        CLSID_SynchronizeContainer,
    ] {
        let outer = Arc::new_cyclic(|me| TestOuter::new(me, &[]));
        let unk: ComPtr<dyn IUnknown> = ComPtr::new(outer.clone() as Arc<dyn IUnknown>);
        let mut sync: Option<ComPtr<dyn ISynchronize>> = None;
        assert_eq!(
            co_create_instance(&clsid, Some(&unk), &IID_ISynchronize, &mut sync),
            E_INVALIDARG
        );
        assert!(sync.is_none());
        let mut handle: Option<ComPtr<dyn ISynchronizeHandle>> = None;
        assert_eq!(
            co_create_instance(&clsid, Some(&unk), &IID_ISynchronizeHandle, &mut handle),
            E_INVALIDARG
        );
        let mut container: Option<ComPtr<dyn ISynchronizeContainer>> = None;
        assert_eq!(
            co_create_instance(
                &clsid,
                Some(&unk),
                &IID_ISynchronizeContainer,
                &mut container
            ),
            E_INVALIDARG
        );
        assert!(handle.is_none() && container.is_none());
        assert_eq!(outer.count(), 1, "the outer was not touched");
        assert_eq!(outer.qi_calls.load(Ordering::SeqCst), 0);
    }
}

#[test]
fn creating_for_an_interface_the_class_lacks_returns_e_nointerface() {
    let mut slot: Option<ComPtr<dyn ISynchronizeContainer>> = None;
    assert_eq!(
        co_create_instance(
            &CLSID_ManualResetEvent,
            None,
            &IID_ISynchronizeContainer,
            &mut slot
        ),
        E_NOINTERFACE
    );
    assert!(slot.is_none());
    let mut ev: Option<ComPtr<dyn ISynchronizeEvent>> = None;
    assert_eq!(
        co_create_instance(
            &CLSID_ManualResetEvent,
            None,
            &IID_ISynchronizeEvent,
            &mut ev
        ),
        E_NOINTERFACE
    );
    let mut sync: Option<ComPtr<dyn ISynchronize>> = None;
    assert_eq!(
        co_create_instance(
            &CLSID_SynchronizeContainer,
            None,
            &IID_ISynchronize,
            &mut sync
        ),
        E_NOINTERFACE
    );
    assert!(ev.is_none() && sync.is_none());
}

// ---- memory ---------------------------------------------------------------------------------

#[test]
fn an_object_is_freed_when_its_last_pointer_goes() {
    let e = StdEvent::create();
    let weak = Arc::downgrade(e.as_arc());
    let h = e.query::<dyn ISynchronizeHandle>().unwrap();
    drop(e);
    assert!(
        weak.upgrade().is_some(),
        "still held through ISynchronizeHandle"
    );
    drop(h);
    assert!(weak.upgrade().is_none(), "freed");

    let c = create_instance::<dyn ISynchronizeContainer>(&CLSID_SynchronizeContainer).unwrap();
    let weak = Arc::downgrade(c.as_arc());
    assert_eq!(Arc::strong_count(c.as_arc()), 1);
    drop(c);
    assert!(weak.upgrade().is_none());
}

#[test]
fn a_failed_creation_frees_the_new_object() {
    // Nothing to hold a Weak to, but the failed request must release what it made: a
    // successful creation right after still starts at one reference.
    let mut slot: Option<ComPtr<dyn ISynchronizeContainer>> = None;
    assert_eq!(
        co_create_instance(&CLSID_StdEvent, None, &IID_ISynchronizeContainer, &mut slot),
        E_NOINTERFACE
    );
    let e = create_instance::<dyn ISynchronize>(&CLSID_StdEvent).unwrap();
    assert_eq!(Arc::strong_count(e.as_arc()), 1);
}

// ---- aggregation ----------------------------------------------------------------------------

#[test]
fn aggregated_event_delegates_query_interface_to_the_outer() {
    let (outer, _unk) = TestOuter::aggregating(&CLSID_ManualResetEvent, &[IID_ISynchronize]);
    let sync = query::<dyn ISynchronize>(&*outer).unwrap();
    let before = outer.qi_calls.load(Ordering::SeqCst);
    // The inner implements ISynchronizeHandle, but its delegating QueryInterface asks the
    // outer, which does not expose it.
    assert_eq!(
        sync.query::<dyn ISynchronizeHandle>()
            .err()
            .map(|e| e.code()),
        Some(E_NOINTERFACE)
    );
    assert_eq!(outer.qi_calls.load(Ordering::SeqCst), before + 1);
    assert!(sync.query::<dyn ISynchronize>().is_ok());
    assert_eq!(outer.qi_calls.load(Ordering::SeqCst), before + 2);
}

#[test]
fn aggregated_event_delegates_add_ref_and_release_to_the_outer() {
    let (outer, unk) = TestOuter::aggregating(&CLSID_StdEvent, &[IID_ISynchronize]);
    let nd_count = outer.nd().ref_count();
    assert_eq!(nd_count, 1, "the outer holds one reference on the inner");
    assert_eq!(outer.count(), 1);
    let sync = unk.query::<dyn ISynchronize>().unwrap();
    assert_eq!(
        outer.count(),
        2,
        "an interface of the inner counts on the outer"
    );
    assert_eq!(sync.add_ref(), 3);
    assert_eq!(outer.count(), 3);
    assert_eq!(sync.release(), 2);
    let again = sync.clone();
    assert_eq!(outer.count(), 3);
    drop(again);
    drop(sync);
    assert_eq!(outer.count(), 1);
    assert_eq!(
        outer.nd().ref_count(),
        nd_count,
        "the inner's own count never moved"
    );
}

#[test]
fn identity_through_the_aggregated_inner_is_the_outers() {
    for clsid in [CLSID_ManualResetEvent, CLSID_StdEvent] {
        let (outer, unk) = TestOuter::aggregating(&clsid, &[IID_ISynchronize]);
        let sync = unk.query::<dyn ISynchronize>().unwrap();
        assert!(ComPtr::is_same_object(&sync, &unk));
        assert_eq!(identity(&sync), addr(&outer));
        let through_inner = sync.query::<dyn IUnknown>().unwrap();
        assert_eq!(addr(through_inner.as_arc()), addr(&outer));
    }
}

#[test]
fn the_outer_reaches_the_inner_through_the_non_delegating_unknown() {
    let (outer, _unk) = TestOuter::aggregating(&CLSID_StdEvent, &[IID_ISynchronize]);
    let nd = outer.nd();
    // The non-delegating unknown answers for the inner itself: all its interfaces.
    let sync = nd.query::<dyn ISynchronize>().unwrap();
    let handle = nd.query::<dyn ISynchronizeHandle>().unwrap();
    let event = nd.query::<dyn ISynchronizeEvent>().unwrap();
    assert_eq!(sync.signal(), S_OK);
    assert!(handle.get_handle().unwrap().is_signaled());
    assert_eq!(sync.wait(0, 0), S_OK);
    assert_eq!(sync.wait(0, 0), RPC_S_CALLPENDING, "a StdEvent, auto-reset");
    drop(event);
    // ... and the interfaces it hands out still delegate to (and count on) the outer.
    assert!(ComPtr::is_same_object(&sync, &handle));
    assert_eq!(identity(&handle), addr(&outer));
    assert_eq!(outer.count(), 3);
}

#[test]
fn non_delegating_query_for_iunknown_returns_the_non_delegating_unknown() {
    let (outer, unk) = TestOuter::aggregating(&CLSID_ManualResetEvent, &[IID_ISynchronize]);
    let nd = outer.nd();
    let again = nd.query::<dyn IUnknown>().unwrap();
    assert!(
        ComPtr::ptr_eq(&again, nd),
        "the same non-delegating unknown, not the outer"
    );
    assert_ne!(addr(again.as_arc()), addr(&outer));
    assert_eq!(nd.ref_count(), 2, "it counts on the inner's own count");
    assert_eq!(outer.count(), 1, "... not the outer's");
    drop(again);
    assert_eq!(nd.ref_count(), 1);
    drop(unk);
}

#[test]
fn non_delegating_add_ref_and_release_count_the_inner_only() {
    let (outer, _unk) = TestOuter::aggregating(&CLSID_ManualResetEvent, &[IID_ISynchronize]);
    let nd = outer.nd();
    assert_eq!(nd.add_ref(), 2);
    assert_eq!(nd.release(), 1);
    assert_eq!(outer.count(), 1);
}

#[test]
fn an_interface_of_the_inner_keeps_the_outer_alive() {
    let (outer, unk) = TestOuter::aggregating(&CLSID_ManualResetEvent, &[IID_ISynchronize]);
    let sync = unk.query::<dyn ISynchronize>().unwrap();
    let outer_weak = Arc::downgrade(&outer);
    let inner_weak = Arc::downgrade(sync.as_arc());
    drop(unk);
    drop(outer);
    assert!(outer_weak.upgrade().is_some());
    assert_eq!(sync.signal(), S_OK);
    assert_eq!(sync.wait(0, 0), S_OK);
    assert!(ComPtr::is_same_object(
        &sync,
        &sync.query::<dyn IUnknown>().unwrap()
    ));
    let final_releases = outer_weak
        .upgrade()
        .unwrap()
        .final_releases
        .load(Ordering::SeqCst);
    assert_eq!(final_releases, 0);
    drop(sync);
    assert!(outer_weak.upgrade().is_none(), "outer freed");
    assert!(inner_weak.upgrade().is_none(), "inner freed with it");
}

#[test]
fn aggregated_objects_are_freed_with_their_outer() {
    for clsid in [CLSID_ManualResetEvent, CLSID_StdEvent] {
        let (outer, unk) = TestOuter::aggregating(&clsid, &[IID_ISynchronize]);
        let inner_weak = {
            let sync = unk.query::<dyn ISynchronize>().unwrap();
            Arc::downgrade(sync.as_arc())
        };
        let outer_weak = Arc::downgrade(&outer);
        assert_eq!(outer.count(), 1);
        drop(outer);
        drop(unk);
        assert!(outer_weak.upgrade().is_none(), "{clsid:?}: outer freed");
        assert!(inner_weak.upgrade().is_none(), "{clsid:?}: inner freed");
    }
    let (outer, unk) =
        TestOuter::aggregating(&CLSID_SynchronizeContainer, &[IID_ISynchronizeContainer]);
    let inner_weak = Arc::downgrade(unk.query::<dyn ISynchronizeContainer>().unwrap().as_arc());
    let outer_weak = Arc::downgrade(&outer);
    drop((outer, unk));
    assert!(outer_weak.upgrade().is_none() && inner_weak.upgrade().is_none());
}

#[test]
fn last_release_of_an_inner_interface_is_the_outers_final_release() {
    let (outer, unk) = TestOuter::aggregating(&CLSID_ManualResetEvent, &[IID_ISynchronize]);
    let sync = unk.query::<dyn ISynchronize>().unwrap();
    drop(unk);
    assert_eq!(outer.final_releases.load(Ordering::SeqCst), 0);
    drop(sync);
    assert_eq!(outer.count(), 0);
    assert_eq!(outer.final_releases.load(Ordering::SeqCst), 1);
}

#[test]
fn aggregated_container_delegates_to_its_outer() {
    let (outer, unk) =
        TestOuter::aggregating(&CLSID_SynchronizeContainer, &[IID_ISynchronizeContainer]);
    let container = unk.query::<dyn ISynchronizeContainer>().unwrap();
    assert_eq!(identity(&container), addr(&outer));
    assert_eq!(outer.count(), 2);
    let e = StdEvent::create();
    assert_eq!(container.add_synchronize(Some(&e)), S_OK);
    assert_eq!(e.signal(), S_OK);
    let mut got = None;
    assert_eq!(container.wait_multiple(0, 0, Some(&mut got)), S_OK);
    assert!(ComPtr::is_same_object(got.as_ref().unwrap(), &e));
}

#[test]
fn new_aggregated_event_delegates_to_the_outer_and_reaches_the_inner_non_delegating() {
    let (outer, unk, inner_weak) = TestOuter::with_sync_event(CLSID_ManualResetEvent);
    let inner = inner_weak.upgrade().unwrap();
    assert_eq!(inner.clsid(), CLSID_ManualResetEvent);
    // The outer's own route to the inner: the inner's non-delegating QueryInterface.
    let mut slot: Option<ComPtr<dyn ISynchronize>> = None;
    assert_eq!(inner.nd_query_interface(&IID_ISynchronize, &mut slot), S_OK);
    let sync = slot.unwrap();
    assert_eq!(outer.count(), 2, "counted on the outer");
    assert_eq!(inner.nd_add_ref(), 2);
    assert_eq!(inner.nd_release(), 1);
    // The inner's delegating IUnknown goes to the outer.
    assert_eq!(
        addr(query::<dyn IUnknown>(&*inner).unwrap().as_arc()),
        addr(&outer)
    );
    assert_eq!(inner.add_ref(), 3);
    assert_eq!(outer.count(), 3);
    assert_eq!(inner.release(), 2);
    assert_eq!(
        query::<dyn ISynchronizeHandle>(&*inner)
            .err()
            .map(|e| e.code()),
        Some(E_NOINTERFACE)
    );
    // It is a working manual-reset event.
    assert_eq!(sync.signal(), S_OK);
    assert_eq!(sync.wait(0, 0), S_OK);
    assert_eq!(sync.wait(0, 0), S_OK);
    assert!(ComPtr::is_same_object(&sync, &unk));
    drop(inner);
    drop((outer, unk, sync));
    assert!(inner_weak.upgrade().is_none(), "freed with the outer");
}

#[test]
fn new_aggregated_std_event_exposes_isynchronizeevent_through_the_outer() {
    let (_outer, unk, inner_weak) = TestOuter::with_sync_event(CLSID_StdEvent);
    let ev = unk.query::<dyn ISynchronizeEvent>().unwrap();
    assert_eq!(
        ev.get_handle().unwrap(),
        *inner_weak.upgrade().unwrap().handle()
    );
    drop(unk);
    drop(ev);
}

#[test]
fn inner_whose_outer_is_gone_answers_rpc_e_disconnected() {
    let (outer, unk, inner_weak) = TestOuter::with_sync_event(CLSID_ManualResetEvent);
    let inner = inner_weak.upgrade().unwrap();
    drop((outer, unk));
    // Only a raw Rust handle to the inner is left: its delegating methods have nobody to go to.
    let mut slot: Option<ComPtr<dyn IUnknown>> = None;
    assert_eq!(
        inner.query_interface(&IID_IUnknown, &mut slot),
        RPC_E_DISCONNECTED
    );
    assert!(slot.is_none());
    assert_eq!(inner.add_ref(), 0);
    assert_eq!(inner.release(), 0);
    drop(inner);
    assert!(inner_weak.upgrade().is_none());
}
