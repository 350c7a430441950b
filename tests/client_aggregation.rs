//! Client-side aggregation (spec 3.6): the client's outer `ISynchronize` is told of
//! completion by `Signal`, and `Finish_` works from inside it. The outer used here is the one
//! in `examples/completion_callback.rs`, so the example is tested too.

#[allow(dead_code)]
#[path = "../examples/completion_callback.rs"]
mod example;

use std::sync::Arc;

use comasync::call::{ICallFactory, ICancelMethodCalls};
use comasync::guid::IID_ISynchronize;
use comasync::hresult::*;
use comasync::simple_stream::{AsyncISimpleStream, SimpleStream};
use comasync::sync::ISynchronize;
use comasync::unknown::{ComPtr, IUnknown, PlainObject};
use example::CallbackClient;

#[test]
fn an_aggregating_clients_signal_is_its_completion_callback_and_may_call_finish() {
    let server = SimpleStream::create(b"callback".to_vec());
    let factory = server.query::<dyn ICallFactory>().unwrap();
    let (client, completions) = CallbackClient::create(&factory).unwrap();
    let call = client.query::<dyn AsyncISimpleStream>().unwrap();
    assert_eq!(call.begin_read(4), S_OK);
    assert_eq!(completions.recv().unwrap(), (S_OK, b"call".to_vec()));
    // Finish_ ran inside Signal; the call object is idle again and reusable.
    assert_eq!(call.finish_read().0, RPC_E_CALL_COMPLETE);
    assert_eq!(call.begin_read(4), S_OK);
    assert_eq!(completions.recv().unwrap(), (S_OK, b"back".to_vec()));
}

#[test]
fn an_aggregated_call_object_delegates_identity_and_counts_to_the_outer() {
    let server = SimpleStream::create(vec![]);
    let factory = server.query::<dyn ICallFactory>().unwrap();
    let (client, _completions) = CallbackClient::create(&factory).unwrap();
    let call = client.query::<dyn AsyncISimpleStream>().unwrap();
    let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
    assert!(ComPtr::is_same_object(&call, &client));
    assert!(ComPtr::is_same_object(&cancel, &client));
    // The outer answers ISynchronize itself: it is the client's, not the call object's.
    let sync = call.query::<dyn ISynchronize>().unwrap();
    assert!(ComPtr::is_same_object(&sync, &client));
    assert_eq!(client.ref_count(), 4, "every pointer counts on the outer");
    drop((call, cancel, sync));
    assert_eq!(client.ref_count(), 1);
}

#[test]
fn releasing_the_aggregating_outer_frees_the_call_object() {
    let server = SimpleStream::create(vec![]);
    let factory = server.query::<dyn ICallFactory>().unwrap();
    let (client, _completions) = CallbackClient::create(&factory).unwrap();
    let weak = Arc::downgrade(client.as_arc());
    drop((client, factory));
    assert!(weak.upgrade().is_none());
    assert_eq!(server.ref_count(), 1, "the call object let the server go");
}

#[test]
fn create_call_aggregated_returns_the_non_delegating_unknown() {
    let server = SimpleStream::create(vec![]);
    let factory = server.query::<dyn ICallFactory>().unwrap();
    let outer = PlainObject::create();
    let mut inner: Option<ComPtr<dyn IUnknown>> = None;
    let iid = <dyn AsyncISimpleStream as comasync::unknown::Interface>::IID;
    let hr = factory.create_call(
        &iid,
        Some(&outer),
        &comasync::guid::IID_IUnknown,
        Some(&mut inner),
    );
    assert_eq!(hr, S_OK);
    let inner = inner.unwrap();
    // The inner's own QueryInterface answers the call object's interfaces...
    let mut sync: Option<ComPtr<dyn ISynchronize>> = None;
    assert_eq!(inner.query_interface(&IID_ISynchronize, &mut sync), S_OK);
    // ...and their identity is the outer's.
    assert!(ComPtr::is_same_object(&sync.unwrap(), &outer));
}

mod completion_callback_helper {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use comasync::call::{CompletionCallback, FinishMode, ICallFactory, ICancelMethodCalls};
    use comasync::hresult::*;
    use comasync::simple_stream::{AsyncISimpleStream, SimpleStream};
    use comasync::sync::{ISynchronize, INFINITE};

    #[test]
    fn a_completion_callback_runs_once_per_call_and_may_finish_it() {
        let factory = SimpleStream::create(b"abcdef".to_vec())
            .query::<dyn ICallFactory>()
            .unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let call = CompletionCallback::<dyn AsyncISimpleStream>::create(&*factory, move |c| {
            s.lock().unwrap().push(c.finish_read());
        })
        .unwrap();
        let sync = call.query::<dyn ISynchronize>().unwrap();
        for expected in [b"ab", b"cd", b"ef"] {
            assert_eq!(call.begin_read(2), S_OK);
            // The outer's Wait returns once the callback has run for this call.
            assert_eq!(sync.wait(0, INFINITE), S_OK);
            assert_eq!(
                seen.lock().unwrap().last().unwrap(),
                &(S_OK, expected.to_vec())
            );
        }
        assert_eq!(seen.lock().unwrap().len(), 3);
    }

    #[test]
    fn a_completion_callback_hears_a_local_cancel_and_releasing_it_frees_the_call() {
        let (server, handler) = SimpleStream::create_manual(b"x".to_vec(), FinishMode::Blocking);
        let factory = server.query::<dyn ICallFactory>().unwrap();
        let runs = Arc::new(AtomicUsize::new(0));
        let r = runs.clone();
        let call = CompletionCallback::<dyn AsyncISimpleStream>::create(&*factory, move |c| {
            r.fetch_add(1, Ordering::SeqCst);
            assert_eq!(c.finish_read().0, RPC_E_CALL_CANCELED);
        })
        .unwrap();
        let memory = std::sync::Arc::downgrade(call.as_arc());
        assert_eq!(call.begin_read(1), S_OK);
        let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
        assert_eq!(cancel.cancel(0), S_OK);
        assert_eq!(runs.load(Ordering::SeqCst), 1);
        assert_eq!(
            handler.pending(),
            1,
            "the server still holds the cancelled call"
        );
        drop((cancel, call));
        assert!(
            memory.upgrade().is_none(),
            "the call object outlived its outer"
        );
    }

    #[test]
    fn a_completion_callback_for_an_interface_the_factory_does_not_know_is_e_nointerface() {
        let factory = SimpleStream::create(vec![])
            .query::<dyn ICallFactory>()
            .unwrap();
        let err = CompletionCallback::<dyn ICancelMethodCalls>::create(&*factory, |_| {});
        assert_eq!(err.unwrap_err().code(), E_NOINTERFACE);
    }
}
