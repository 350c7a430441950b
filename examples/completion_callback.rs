//! Client-side aggregation (spec 3.6): the client passes its own controlling unknown, which
//! implements `ISynchronize`, to `CreateCall`, and is told of completion by `Signal` — a
//! completion callback. From inside `Signal` it calls `Finish_`, as Microsoft's CallBackClient
//! sample does. Run with `cargo run --example completion_callback`.

use std::any::Any;
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex, Weak};

use comasync::call::ICallFactory;
use comasync::guid::{IID_IUnknown, IID};
use comasync::hresult::{E_NOINTERFACE, HRESULT, S_OK};
use comasync::simple_stream::{AsyncISimpleStream, SimpleStream};
use comasync::sync::ISynchronize;
use comasync::unknown::{ComPtr, IUnknown, Interface, RefCount};

/// What the completion callback delivers: `Finish_Read`'s return value and data.
pub type Completion = (HRESULT, Vec<u8>);

/// The client's outer object: it owns the call object (aggregated inside it) and implements
/// `ISynchronize` itself.
pub struct CallbackClient {
    refs: RefCount,
    me: Weak<CallbackClient>,
    /// The call object's non-delegating unknown: the client's reference on the inner object.
    inner: Mutex<Option<ComPtr<dyn IUnknown>>>,
    results: Mutex<Sender<Completion>>,
}

impl CallbackClient {
    /// A client whose call objects come from `factory`; completions arrive on the receiver.
    pub fn create(
        factory: &ComPtr<dyn ICallFactory>,
    ) -> comasync::Result<(ComPtr<dyn IUnknown>, Receiver<Completion>)> {
        let (tx, rx) = channel();
        let client = Arc::new_cyclic(|me| CallbackClient {
            refs: RefCount::new(),
            me: me.clone(),
            inner: Mutex::new(None),
            results: Mutex::new(tx),
        });
        let outer: ComPtr<dyn IUnknown> = ComPtr::new(client.clone() as Arc<dyn IUnknown>);
        // Aggregated: riid2 must be IID_IUnknown; we get the inner's non-delegating unknown.
        let mut inner: Option<ComPtr<dyn IUnknown>> = None;
        let iid = <dyn AsyncISimpleStream as Interface>::IID;
        factory
            .create_call(&iid, Some(&outer), &IID_IUnknown, Some(&mut inner))
            .ok()?;
        *client.inner.lock().unwrap() = inner;
        Ok((outer, rx))
    }

    fn call(&self) -> Option<ComPtr<dyn AsyncISimpleStream>> {
        self.inner
            .lock()
            .unwrap()
            .as_ref()?
            .query::<dyn AsyncISimpleStream>()
            .ok()
    }
}

impl ISynchronize for CallbackClient {
    fn wait(&self, _flags: u32, _timeout_ms: u32) -> HRESULT {
        // Completions arrive through Signal; this client never waits.
        comasync::hresult::E_NOTIMPL
    }
    /// The completion callback: the call is complete, so `Finish_` returns at once.
    fn signal(&self) -> HRESULT {
        if let Some(call) = self.call() {
            let result = call.finish_read();
            let _ = self.results.lock().unwrap().send(result);
        }
        S_OK
    }
    fn reset(&self) -> HRESULT {
        S_OK // must be S_OK, or COM considers the call failed
    }
}

impl CallbackClient {
    /// Everything but `ISynchronize` is the aggregated call object's.
    fn inner_interfaces(&self, _me: &Arc<Self>, iid: &IID, ppv: &mut dyn Any) -> HRESULT {
        match self.inner.lock().unwrap().clone() {
            Some(inner) => inner.query_interface(iid, ppv),
            None => E_NOINTERFACE,
        }
    }

    /// Our final release: let go of the inner call object.
    fn final_release(&self) {
        self.inner.lock().unwrap().take();
    }
}

comasync::com_object!([] CallbackClient {
    interfaces: [dyn ISynchronize],
    more: CallbackClient::inner_interfaces,
    final_release: CallbackClient::final_release,
});

#[allow(dead_code)]
fn main() -> comasync::Result<()> {
    let server = SimpleStream::create(b"completion callbacks".to_vec());
    let factory = server.query::<dyn ICallFactory>()?;
    let (client, completions) = CallbackClient::create(&factory)?;

    let call = client.query::<dyn AsyncISimpleStream>()?;
    println!("Begin_Read(10)            {:?}", call.begin_read(10));
    // No Wait, no Finish_ here: the result arrives through our Signal.
    let (hr, data) = completions.recv().expect("a completion");
    println!(
        "Signal -> Finish_Read()   {hr:?}, data = {:?}",
        String::from_utf8_lossy(&data)
    );

    println!("Begin_Read(99)            {:?}", call.begin_read(99));
    let (hr, data) = completions.recv().expect("a completion");
    println!(
        "Signal -> Finish_Read()   {hr:?}, data = {:?}",
        String::from_utf8_lossy(&data)
    );
    Ok(())
}
