//! `ISynchronizeContainer` / `CLSID_SynchronizeContainer` (spec 1.6, D6) and the spec's
//! recommended readings for what no source documents: `WaitMultiple` with `COWAIT_WAITALL` or
//! no out-pointer is `E_INVALIDARG`; the object added first wins; the returned object keeps its
//! own reset behaviour and stays in the container; the container holds a reference on each
//! object; the returned object is AddRef'd for the caller.

mod common;

use common::{handle_of, until_blocked, within};
use std::any::Any;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Weak};
use std::thread;

use comasync::class::{co_create_instance, create_instance};
use comasync::guid::{
    CLSID_SynchronizeContainer, IID_ISynchronize, IID_ISynchronizeContainer, IID_IUnknown, IID,
};
use comasync::hresult::{
    E_INVALIDARG, E_NOINTERFACE, HRESULT, RPC_E_NO_SYNC, RPC_E_OUT_OF_RESOURCES, RPC_E_TIMEOUT,
    RPC_S_CALLPENDING, S_OK,
};
use comasync::sync::{
    ISynchronize, ISynchronizeContainer, ISynchronizeEvent, ISynchronizeHandle, ManualResetEvent,
    StdEvent, SynchronizeContainer, COWAIT_ALERTABLE, COWAIT_DEFAULT, COWAIT_VALID_FLAGS,
    COWAIT_WAITALL, HANDLE, INFINITE, SYNCHRONIZE_CONTAINER_CAPACITY,
};
use comasync::unknown::{set_out, ComPtr, IUnknown};

/// `WaitMultiple` with a real out-pointer: the result and the object it received.
fn wait_multiple(
    c: &ComPtr<dyn ISynchronizeContainer>,
    flags: u32,
    timeout: u32,
) -> (HRESULT, Option<ComPtr<dyn ISynchronize>>) {
    let mut out = None;
    let hr = c.wait_multiple(flags, timeout, Some(&mut out));
    (hr, out)
}

/// An `ISynchronize` with no `ISynchronizeHandle` (a user's own object).
struct HandlelessSync {
    count: AtomicU32,
    me: Weak<HandlelessSync>,
}

impl IUnknown for HandlelessSync {
    fn query_interface(&self, iid: &IID, ppv: &mut dyn Any) -> HRESULT {
        let me = self.me.upgrade().unwrap();
        if *iid == IID_IUnknown {
            set_out::<dyn IUnknown>(ppv, ComPtr::new(me as Arc<dyn IUnknown>))
        } else if *iid == IID_ISynchronize {
            set_out::<dyn ISynchronize>(ppv, ComPtr::new(me as Arc<dyn ISynchronize>))
        } else {
            E_NOINTERFACE
        }
    }
    fn add_ref(&self) -> u32 {
        self.count.fetch_add(1, Ordering::SeqCst) + 1
    }
    fn release(&self) -> u32 {
        self.count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |c| c.checked_sub(1))
            .map_or(0, |prev| prev - 1)
    }
}

impl ISynchronize for HandlelessSync {
    fn wait(&self, _flags: u32, _timeout_ms: u32) -> HRESULT {
        RPC_S_CALLPENDING
    }
    fn signal(&self) -> HRESULT {
        S_OK
    }
    fn reset(&self) -> HRESULT {
        S_OK
    }
}

// ---- AddSynchronize ------------------------------------------------------------------------

#[test]
fn container_holds_63_objects_then_returns_rpc_e_out_of_resources() {
    assert_eq!(SYNCHRONIZE_CONTAINER_CAPACITY, 63);
    let c = SynchronizeContainer::create();
    let events: Vec<_> = (0..63).map(|_| StdEvent::create()).collect();
    for (i, e) in events.iter().enumerate() {
        assert_eq!(c.add_synchronize(Some(e)), S_OK, "object {i}");
    }
    let extra = ManualResetEvent::create();
    assert_eq!(c.add_synchronize(Some(&extra)), RPC_E_OUT_OF_RESOURCES);
    assert_eq!(c.add_synchronize(Some(&extra)), RPC_E_OUT_OF_RESOURCES);
    assert_eq!(extra.ref_count(), 1, "a rejected object is not held");
    // The 63 are all there: the last one added can be waited for.
    assert_eq!(events[62].signal(), S_OK);
    let (hr, got) = wait_multiple(&c, 0, 0);
    assert_eq!(hr, S_OK);
    assert!(ComPtr::is_same_object(got.as_ref().unwrap(), &events[62]));
}

#[test]
fn add_synchronize_with_no_object_returns_e_invalidarg() {
    let c = SynchronizeContainer::create();
    assert_eq!(c.add_synchronize(None), E_INVALIDARG);
    assert_eq!(
        wait_multiple(&c, 0, 0).0,
        RPC_E_NO_SYNC,
        "nothing was added"
    );
}

#[test]
fn add_synchronize_of_an_object_without_a_handle_returns_e_nointerface() {
    let obj = Arc::new_cyclic(|me| HandlelessSync {
        count: AtomicU32::new(0),
        me: me.clone(),
    });
    let sync: ComPtr<dyn ISynchronize> = ComPtr::new(obj.clone() as Arc<dyn ISynchronize>);
    let c = SynchronizeContainer::create();
    assert_eq!(c.add_synchronize(Some(&sync)), E_NOINTERFACE);
    assert_eq!(obj.count.load(Ordering::SeqCst), 1, "not held");
    assert_eq!(wait_multiple(&c, 0, 0).0, RPC_E_NO_SYNC);
}

// ---- WaitMultiple argument checks -----------------------------------------------------------

#[test]
fn wait_multiple_on_an_empty_container_returns_rpc_e_no_sync() {
    let c = SynchronizeContainer::create();
    for timeout in [0, 10, INFINITE] {
        let (hr, got) = wait_multiple(&c, COWAIT_DEFAULT, timeout);
        assert_eq!(hr, RPC_E_NO_SYNC);
        assert!(got.is_none());
    }
}

#[test]
fn wait_multiple_with_cowait_waitall_returns_e_invalidarg() {
    let c = SynchronizeContainer::create();
    let e = StdEvent::create();
    assert_eq!(c.add_synchronize(Some(&e)), S_OK);
    assert_eq!(e.signal(), S_OK);
    for flags in [COWAIT_WAITALL, COWAIT_WAITALL | COWAIT_ALERTABLE] {
        let (hr, got) = wait_multiple(&c, flags, INFINITE);
        assert_eq!(hr, E_INVALIDARG);
        assert!(got.is_none());
    }
    assert_eq!(e.wait(0, 0), S_OK, "the rejected call consumed nothing");
    // Also when empty: the arguments are checked first.
    let empty = SynchronizeContainer::create();
    assert_eq!(wait_multiple(&empty, COWAIT_WAITALL, 0).0, E_INVALIDARG);
}

#[test]
fn wait_multiple_with_unknown_flags_returns_e_invalidarg() {
    let c = SynchronizeContainer::create();
    let e = ManualResetEvent::create();
    assert_eq!(c.add_synchronize(Some(&e)), S_OK);
    assert_eq!(e.signal(), S_OK);
    for flags in [0x20, 0x8000_0000, !COWAIT_VALID_FLAGS] {
        assert_eq!(
            wait_multiple(&c, flags, 0).0,
            E_INVALIDARG,
            "flags {flags:#x}"
        );
    }
    // The other documented flags are accepted.
    assert_eq!(
        wait_multiple(&c, COWAIT_VALID_FLAGS & !COWAIT_WAITALL, 0).0,
        S_OK
    );
}

#[test]
fn wait_multiple_without_an_out_pointer_returns_e_invalidarg() {
    let c = SynchronizeContainer::create();
    let e = StdEvent::create();
    assert_eq!(
        c.wait_multiple(0, 0, None),
        E_INVALIDARG,
        "checked before emptiness"
    );
    assert_eq!(c.add_synchronize(Some(&e)), S_OK);
    assert_eq!(e.signal(), S_OK);
    assert_eq!(c.wait_multiple(0, INFINITE, None), E_INVALIDARG);
    assert_eq!(e.wait(0, 0), S_OK, "the rejected call consumed nothing");
}

// ---- WaitMultiple results -------------------------------------------------------------------

#[test]
fn wait_multiple_timeout_returns_rpc_e_timeout_not_rpc_s_callpending() {
    // D6: WaitMultiple's page documents RPC_E_TIMEOUT (unverified; no implementation exists).
    let c = SynchronizeContainer::create();
    let (a, b) = (StdEvent::create(), ManualResetEvent::create());
    assert_eq!(c.add_synchronize(Some(&a)), S_OK);
    assert_eq!(c.add_synchronize(Some(&b)), S_OK);
    for timeout in [0, 1, 20] {
        let (hr, got) = wait_multiple(&c, 0, timeout);
        assert_eq!(hr, RPC_E_TIMEOUT, "timeout {timeout}");
        assert_ne!(hr, RPC_S_CALLPENDING);
        assert!(got.is_none());
    }
}

#[test]
fn wait_multiple_returns_the_object_added_first_when_several_are_signaled() {
    let c = SynchronizeContainer::create();
    let events = [
        StdEvent::create(),
        ManualResetEvent::create(),
        StdEvent::create(),
        ManualResetEvent::create(),
    ];
    for e in &events {
        assert_eq!(c.add_synchronize(Some(e)), S_OK);
    }
    // Signal in reverse order; the first-added signaled object wins.
    for e in events[1..].iter().rev() {
        assert_eq!(e.signal(), S_OK);
    }
    let (hr, got) = wait_multiple(&c, 0, 0);
    assert_eq!(hr, S_OK);
    assert!(ComPtr::is_same_object(got.as_ref().unwrap(), &events[1]));
    // events[1] is manual-reset: it stays signaled and keeps winning.
    assert!(ComPtr::is_same_object(
        wait_multiple(&c, 0, 0).1.as_ref().unwrap(),
        &events[1]
    ));
    assert_eq!(events[1].reset(), S_OK);
    assert!(ComPtr::is_same_object(
        wait_multiple(&c, 0, 0).1.as_ref().unwrap(),
        &events[2]
    ));
    assert!(ComPtr::is_same_object(
        wait_multiple(&c, 0, 0).1.as_ref().unwrap(),
        &events[3]
    ));
}

#[test]
fn returned_std_event_is_consumed_and_stays_in_the_container() {
    let c = SynchronizeContainer::create();
    let e = StdEvent::create();
    assert_eq!(c.add_synchronize(Some(&e)), S_OK);
    for _ in 0..3 {
        assert_eq!(e.signal(), S_OK);
        let (hr, got) = wait_multiple(&c, 0, 0);
        assert_eq!(hr, S_OK);
        assert!(ComPtr::is_same_object(got.as_ref().unwrap(), &e));
        assert!(
            !handle_of(&e).is_signaled(),
            "the StdEvent was consumed by WaitMultiple"
        );
        assert_eq!(e.wait(0, 0), RPC_S_CALLPENDING);
        assert_eq!(wait_multiple(&c, 0, 0).0, RPC_E_TIMEOUT);
    }
}

#[test]
fn returned_manual_reset_event_stays_signaled_and_stays_in_the_container() {
    let c = SynchronizeContainer::create();
    let e = ManualResetEvent::create();
    assert_eq!(c.add_synchronize(Some(&e)), S_OK);
    assert_eq!(e.signal(), S_OK);
    for _ in 0..3 {
        let (hr, got) = wait_multiple(&c, 0, 0);
        assert_eq!(hr, S_OK);
        assert!(ComPtr::is_same_object(got.as_ref().unwrap(), &e));
        assert_eq!(e.wait(0, 0), S_OK, "still signaled");
    }
}

#[test]
fn the_returned_object_is_the_added_interface_pointer() {
    let c = SynchronizeContainer::create();
    let e = StdEvent::create();
    assert_eq!(c.add_synchronize(Some(&e)), S_OK);
    assert_eq!(e.signal(), S_OK);
    let (_, got) = wait_multiple(&c, 0, 0);
    assert!(ComPtr::ptr_eq(got.as_ref().unwrap(), &e));
}

// ---- references -----------------------------------------------------------------------------

#[test]
fn container_holds_a_reference_on_each_object_and_releases_them_when_it_goes() {
    let c = SynchronizeContainer::create();
    let container_weak = Arc::downgrade(c.as_arc());
    let (a, b) = (StdEvent::create(), ManualResetEvent::create());
    assert_eq!(c.add_synchronize(Some(&a)), S_OK);
    assert_eq!(a.ref_count(), 2);
    assert_eq!(c.add_synchronize(Some(&b)), S_OK);
    assert_eq!(b.ref_count(), 2);
    // The same object added twice is held twice.
    assert_eq!(c.add_synchronize(Some(&a)), S_OK);
    assert_eq!(a.ref_count(), 3);
    let a_weak = Arc::downgrade(a.as_arc());
    drop(a);
    assert!(a_weak.upgrade().is_some(), "kept alive by the container");
    drop(c);
    assert!(container_weak.upgrade().is_none(), "container freed");
    assert!(a_weak.upgrade().is_none(), "its objects released with it");
    assert_eq!(b.ref_count(), 1);
}

#[test]
fn the_returned_object_is_add_refd_for_the_caller() {
    let c = SynchronizeContainer::create();
    let e = ManualResetEvent::create();
    assert_eq!(c.add_synchronize(Some(&e)), S_OK);
    assert_eq!(e.ref_count(), 2);
    assert_eq!(e.signal(), S_OK);
    let (hr, got) = wait_multiple(&c, 0, 0);
    assert_eq!(hr, S_OK);
    assert_eq!(e.ref_count(), 3, "caller's reference");
    drop(got);
    assert_eq!(e.ref_count(), 2);
    // A failed wait hands out nothing and takes nothing.
    assert_eq!(e.reset(), S_OK);
    assert_eq!(wait_multiple(&c, 0, 0).0, RPC_E_TIMEOUT);
    assert_eq!(e.ref_count(), 2);
}

// ---- threads --------------------------------------------------------------------------------

#[test]
fn wait_multiple_is_woken_when_another_thread_signals() {
    let c = SynchronizeContainer::create();
    let events = [
        StdEvent::create(),
        StdEvent::create(),
        ManualResetEvent::create(),
    ];
    for e in &events {
        assert_eq!(c.add_synchronize(Some(e)), S_OK);
    }
    let target = handle_of(&events[1]);
    let waiter = {
        let c = c.clone();
        thread::spawn(move || {
            let (hr, got) = wait_multiple(&c, 0, INFINITE);
            (
                hr,
                got.map(|p| {
                    Arc::as_ptr(p.query::<dyn IUnknown>().unwrap().as_arc()) as *const () as usize
                }),
            )
        })
    };
    let expected =
        Arc::as_ptr(events[1].query::<dyn IUnknown>().unwrap().as_arc()) as *const () as usize;
    let signaler = events[1].clone();
    let (hr, got) = within("WaitMultiple woken by another thread", move || {
        until_blocked(&target, 1);
        assert_eq!(signaler.signal(), S_OK);
        waiter.join().unwrap()
    });
    assert_eq!(hr, S_OK);
    assert_eq!(got, Some(expected));
    assert_eq!(
        events[1].wait(0, 0),
        RPC_S_CALLPENDING,
        "consumed by WaitMultiple"
    );
}

#[test]
fn std_event_given_a_new_handle_after_being_added_is_waited_on_its_new_handle() {
    let c = SynchronizeContainer::create();
    let e = StdEvent::create();
    assert_eq!(c.add_synchronize(Some(&e)), S_OK);
    let new = HANDLE::create_event(false, false);
    assert_eq!(
        e.query::<dyn ISynchronizeEvent>()
            .unwrap()
            .set_event_handle(Some(&new)),
        S_OK
    );
    assert_eq!(e.signal(), S_OK);
    let (hr, got) = wait_multiple(&c, 0, 0);
    assert_eq!(hr, S_OK);
    assert!(ComPtr::is_same_object(got.as_ref().unwrap(), &e));
    assert!(!new.is_signaled(), "consumed on the handle Signal set");
}

// ---- creation -------------------------------------------------------------------------------

#[test]
fn container_is_creatable_by_clsid_and_answers_only_its_interfaces() {
    let mut slot: Option<ComPtr<dyn ISynchronizeContainer>> = None;
    assert_eq!(
        co_create_instance(
            &CLSID_SynchronizeContainer,
            None,
            &IID_ISynchronizeContainer,
            &mut slot
        ),
        S_OK
    );
    let c = slot.unwrap();
    assert_eq!(c.ref_count(), 1);
    assert!(c.query::<dyn IUnknown>().is_ok());
    assert_eq!(
        c.query::<dyn ISynchronize>().err().map(|e| e.code()),
        Some(E_NOINTERFACE)
    );
    assert_eq!(
        c.query::<dyn ISynchronizeHandle>().err().map(|e| e.code()),
        Some(E_NOINTERFACE)
    );
    let c2 = create_instance::<dyn ISynchronizeContainer>(&CLSID_SynchronizeContainer).unwrap();
    assert!(!ComPtr::is_same_object(&c, &c2));
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
}
