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

/// An aggregating outer that counts what the call object asks of it: its `QueryInterface`s for
/// `ISynchronize`, and the `Reset`s and `Signal`s. With `separate`, its `ISynchronize` is an
/// object of its own that the outer keeps (forwarding to the same counts), and that the test
/// can replace between calls.
mod counting_outer {
    use std::any::Any;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::mpsc::{channel, Receiver, Sender};
    use std::sync::{Arc, Mutex, Weak};

    use comasync::call::ICallFactory;
    use comasync::guid::{IID_ISynchronize, IID_IUnknown, IID};
    use comasync::hresult::{E_NOINTERFACE, E_NOTIMPL, HRESULT, S_OK};
    use comasync::simple_stream::AsyncISimpleStream;
    use comasync::sync::ISynchronize;
    use comasync::unknown::{set_out, ComPtr, IUnknown, Interface, RefCount};

    pub struct Counts {
        pub queries: AtomicUsize,
        pub resets: AtomicUsize,
        signals: Mutex<Sender<()>>,
    }

    impl Counts {
        fn reset(&self) -> HRESULT {
            self.resets.fetch_add(1, Ordering::SeqCst);
            S_OK
        }
        fn signal(&self) -> HRESULT {
            let _ = self.signals.lock().unwrap().send(());
            S_OK
        }
    }

    pub struct Outer {
        refs: RefCount,
        me: Weak<Outer>,
        inner: Mutex<Option<ComPtr<dyn IUnknown>>>,
        counts: Arc<Counts>,
        separate: bool,
        /// The separate `ISynchronize`, with the outer's COM reference on it.
        kept: Mutex<Option<ComPtr<dyn ISynchronize>>>,
    }

    impl Outer {
        /// The outer (with the call object aggregated in it), its counts, and a receiver that
        /// hears each `Signal`.
        pub fn create(
            factory: &ComPtr<dyn ICallFactory>,
            separate: bool,
        ) -> (Arc<Outer>, ComPtr<dyn IUnknown>, Arc<Counts>, Receiver<()>) {
            let (tx, rx) = channel();
            let counts = Arc::new(Counts {
                queries: AtomicUsize::new(0),
                resets: AtomicUsize::new(0),
                signals: Mutex::new(tx),
            });
            let outer = Arc::new_cyclic(|me| Outer {
                refs: RefCount::new(),
                me: me.clone(),
                inner: Mutex::new(None),
                counts: counts.clone(),
                separate,
                kept: Mutex::new(None),
            });
            let unk: ComPtr<dyn IUnknown> = ComPtr::new(outer.clone() as Arc<dyn IUnknown>);
            let mut inner: Option<ComPtr<dyn IUnknown>> = None;
            let iid = <dyn AsyncISimpleStream as Interface>::IID;
            assert_eq!(
                factory.create_call(&iid, Some(&unk), &IID_IUnknown, Some(&mut inner)),
                S_OK
            );
            *outer.inner.lock().unwrap() = inner;
            (outer, unk, counts, rx)
        }

        /// Lets the separate `ISynchronize` go: the next `QueryInterface` makes another.
        pub fn replace_synchronize(&self) {
            let old = self.kept.lock().unwrap().take();
            drop(old);
        }

        fn more(&self, me: &Arc<Self>, iid: &IID, ppv: &mut dyn Any) -> HRESULT {
            if *iid == IID_ISynchronize {
                self.counts.queries.fetch_add(1, Ordering::SeqCst);
                let sync: ComPtr<dyn ISynchronize> = if self.separate {
                    let mut kept = self.kept.lock().unwrap();
                    kept.get_or_insert_with(|| {
                        ComPtr::new(Arc::new_cyclic(|me| Separate {
                            refs: RefCount::new(),
                            me: me.clone(),
                            counts: self.counts.clone(),
                        }) as Arc<dyn ISynchronize>)
                    })
                    .clone()
                } else {
                    ComPtr::new(me.clone() as Arc<dyn ISynchronize>)
                };
                return set_out::<dyn ISynchronize>(ppv, sync);
            }
            match self.inner.lock().unwrap().clone() {
                Some(inner) => inner.query_interface(iid, ppv),
                None => E_NOINTERFACE,
            }
        }

        fn final_release(&self) {
            self.inner.lock().unwrap().take();
            self.replace_synchronize();
        }
    }

    /// `ISynchronize` on a type with `counts`: `Signal` and `Reset` counted, no `Wait`.
    macro_rules! counted_synchronize {
        ($t:ty) => {
            impl ISynchronize for $t {
                fn wait(&self, _flags: u32, _timeout_ms: u32) -> HRESULT {
                    E_NOTIMPL
                }
                fn signal(&self) -> HRESULT {
                    self.counts.signal()
                }
                fn reset(&self) -> HRESULT {
                    self.counts.reset()
                }
            }
        };
    }

    counted_synchronize!(Outer);

    comasync::com_object!([] Outer {
        interfaces: [],
        more: Outer::more,
        final_release: Outer::final_release,
    });

    pub struct Separate {
        refs: RefCount,
        me: Weak<Separate>,
        counts: Arc<Counts>,
    }

    counted_synchronize!(Separate);

    comasync::com_object!([] Separate {
        interfaces: [dyn ISynchronize],
    });
}

/// Three `Read(2)` calls on a call object aggregated by a [`counting_outer::Outer`] (the
/// server completes each on its own thread, the outer's `Signal` is awaited before
/// `Finish_`), each checked and counted as one `Reset`; `after` runs after call `n`.
fn three_counted_reads(
    separate: bool,
    mut after: impl FnMut(usize, &counting_outer::Outer, &counting_outer::Counts),
) -> std::sync::Arc<counting_outer::Counts> {
    use std::sync::atomic::Ordering;
    let server = SimpleStream::create(b"abcdef".to_vec());
    let factory = server.query::<dyn ICallFactory>().unwrap();
    let (outer, client, counts, signals) = counting_outer::Outer::create(&factory, separate);
    let call = client.query::<dyn AsyncISimpleStream>().unwrap();
    for (n, expected) in [b"ab", b"cd", b"ef"].into_iter().enumerate() {
        assert_eq!(call.begin_read(2), S_OK);
        signals.recv().unwrap();
        assert_eq!(call.finish_read(), (S_OK, expected.to_vec()));
        assert_eq!(
            counts.resets.load(Ordering::SeqCst),
            n + 1,
            "a Reset per call"
        );
        after(n, &outer, &counts);
    }
    counts
}

#[test]
fn the_outers_isynchronize_is_asked_for_once_while_it_lives() {
    let counts = three_counted_reads(false, |_, _, _| {});
    assert_eq!(
        counts.queries.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "the outer's ISynchronize, found by the first Begin_, serves the later ones"
    );
}

#[test]
fn an_outers_isynchronize_that_is_gone_is_asked_for_again_and_hears_the_next_call() {
    three_counted_reads(true, |n, outer, counts| {
        assert_eq!(
            counts.queries.load(std::sync::atomic::Ordering::SeqCst),
            n + 1
        );
        // The outer lets its ISynchronize object go: the next Begin_ asks for it again.
        outer.replace_synchronize();
    });
}
