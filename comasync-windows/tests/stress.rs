//! The bridge's reference counting under contention: threads share one server object (a
//! `ComObject` crosses threads; interface pointers do not), each making factories, call
//! objects, events and handles and dropping them in every order. At the end the server is
//! dropped exactly once and no handle is left registered.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};

use comasync_windows::CLSID_MANUAL_RESET_EVENT;
use common::*;
use windows::core::{ComObject, Interface, HRESULT};
use windows::Win32::System::Com::{
    CoCreateInstance, CoWaitForMultipleHandles, ISynchronize, ISynchronizeHandle,
    CLSCTX_INPROC_SERVER,
};

const THREADS: usize = 4;
const ROUNDS: i32 = 300;

#[test]
fn shared_objects_are_released_exactly_once_under_contention() {
    let object = Calculator::new();
    let drops = object.drops.clone();
    let server = ComObject::new(object);
    let start = Arc::new(Barrier::new(THREADS));
    let workers: Vec<_> = (0..THREADS)
        .map(|t| {
            let server = server.clone();
            let start = start.clone();
            std::thread::spawn(move || {
                start.wait();
                let factory = factory(&server);
                for i in 0..ROUNDS {
                    let call = create_call(&factory);
                    let copy = call.clone(); // AddRef / Release on the bridge's object
                    let handle = call.cast::<ISynchronizeHandle>().unwrap();
                    let event: ISynchronize = unsafe {
                        CoCreateInstance(&CLSID_MANUAL_RESET_EVENT, None, CLSCTX_INPROC_SERVER)
                    }
                    .unwrap();
                    unsafe {
                        assert_eq!(copy.Begin_Add(i, t as i32), HRESULT(0));
                        let h = handle.GetHandle().unwrap();
                        let e = event
                            .cast::<ISynchronizeHandle>()
                            .unwrap()
                            .GetHandle()
                            .unwrap();
                        event.Signal().unwrap();
                        // Both: the event is signaled and the call completes.
                        assert_eq!(CoWaitForMultipleHandles(1, u32::MAX, &[h, e]).unwrap(), 0);
                        let mut sum = 0;
                        assert_eq!(call.Finish_Add(&mut sum), HRESULT(0));
                        assert_eq!(sum, i + t as i32);
                    }
                    // Drop in a different order each round.
                    if i % 2 == 0 {
                        drop(call);
                        drop(handle);
                        drop(copy);
                    } else {
                        drop(handle);
                        drop(copy);
                        drop(call);
                    }
                    let server_copy = server.clone(); // the server's count from many threads
                    drop(server_copy);
                }
            })
        })
        .collect();
    for w in workers {
        w.join().unwrap();
    }
    assert_eq!(drops.load(Ordering::SeqCst), 0);
    drop(server);
    assert_eq!(drops.load(Ordering::SeqCst), 1);
    assert_eq!(comasync_windows::handles::registered_count(), 0);
}
