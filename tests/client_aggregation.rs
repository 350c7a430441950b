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
