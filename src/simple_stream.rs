//! The seed's example: `ISimpleStream` with `Read` and `Write`, its asynchronous twin
//! `AsyncISimpleStream`, and [`SimpleStream`], an in-memory server object that implements it.
//!
//! The IIDs are comasync's own (freshly generated): `ISimpleStream` is an example name from the
//! "Making an asynchronous call" page, not an SDK interface. (The `async_uuid` printed on the
//! MIDL page is `ICallFactory`'s own IID, so it is not used here.)
//!
//! ```
//! use comasync::call::{create_call_as, ICallFactory};
//! use comasync::hresult::S_OK;
//! use comasync::simple_stream::{AsyncISimpleStream, SimpleStream};
//! use comasync::sync::{ISynchronize, INFINITE};
//! use comasync::unknown::Interface;
//!
//! let server = SimpleStream::create(b"hello, world".to_vec());
//! let factory = server.query::<dyn ICallFactory>().unwrap();               // step 1
//! let call = create_call_as::<dyn AsyncISimpleStream>(                     // step 2
//!     &*factory, &<dyn AsyncISimpleStream as Interface>::IID).unwrap();
//! drop(factory);
//! assert_eq!(call.begin_read(5), S_OK);                                    // step 4
//! let sync = call.query::<dyn ISynchronize>().unwrap();
//! assert_eq!(sync.wait(0, INFINITE), S_OK);                                // wait
//! assert_eq!(call.finish_read(), (S_OK, b"hello".to_vec()));               // finish
//! ```

use std::any::Any;
use std::sync::Arc;

use crate::call::{
    CallServer, FinishMode, ICallFactory, ManualHandler, Pool, ServedBy, SyncMethodHandler,
};
use crate::guid::{IID_ICallFactory, IID};
use crate::hresult::{E_NOINTERFACE, E_UNEXPECTED, HRESULT, S_FALSE, S_OK};
use crate::sync::prim::Mutex;
use crate::unknown::{set_out, ComPtr};

/// `ISimpleStream`, the seed document's example interface: a sequential byte stream.
///
/// `#[interface]` also generates its asynchronous twin [`AsyncISimpleStream`]
/// (`Begin_Read`/`Finish_Read`, `Begin_Write`/`Finish_Write`), the call-object glue
/// [`ISimpleStreamCalls`], the parameter enums [`ISimpleStreamIn`] and [`ISimpleStreamOut`], and
/// [`ISimpleStreamMethod`].
///
/// ```
/// use comasync::hresult::{S_FALSE, S_OK};
/// use comasync::simple_stream::{ISimpleStream, SimpleStream};
///
/// let stream = SimpleStream::create_sync_only(b"hello".to_vec());
/// assert_eq!(stream.read(2), (S_OK, b"he".to_vec())); // HRESULT Read(cb, &data)
/// assert_eq!(stream.write(b"LL".to_vec()), (S_OK, 2)); // at the position
/// assert_eq!(stream.read(5), (S_FALSE, b"o".to_vec())); // fewer than asked: the end
/// ```
///
/// Through a call object:
///
/// ```
/// use comasync::call::{create_call_as, ICallFactory};
/// use comasync::hresult::{RPC_E_CALL_COMPLETE, S_OK};
/// use comasync::simple_stream::{AsyncISimpleStream, SimpleStream};
/// use comasync::unknown::Interface;
///
/// let server = SimpleStream::create(Vec::new());
/// let factory = server.query::<dyn ICallFactory>()?;
/// let call = create_call_as::<dyn AsyncISimpleStream>(&*factory, &<dyn AsyncISimpleStream as Interface>::IID)?;
/// assert_eq!(call.finish_write(), (RPC_E_CALL_COMPLETE, 0)); // no call begun
/// assert_eq!(call.begin_write(b"abc".to_vec()), S_OK); // Begin_: the in-parameters
/// assert_eq!(call.finish_write(), (S_OK, 3)); // Finish_: Write's HRESULT and out-parameter
/// # Ok::<(), comasync::Error>(())
/// ```
///
/// The glue names the interface pair to comasync's generic types:
///
/// ```
/// use comasync::call::{AsyncInterface, ManualHandler};
/// use comasync::simple_stream::ISimpleStreamCalls;
/// use comasync::unknown::Interface;
///
/// type Async = <ISimpleStreamCalls as AsyncInterface>::Async;
/// assert_eq!(<Async as Interface>::NAME, "AsyncISimpleStream");
/// assert_eq!(ISimpleStreamCalls::METHODS, ["Read", "Write"]);
/// let server = ManualHandler::<ISimpleStreamCalls>::new();
/// assert_eq!(server.pending(), 0);
/// ```
#[comasync::interface(
    iid = "{21136030-8AD0-46C6-99B7-164B03B3BF37}",
    async_iid = "{21136031-8AD0-46C6-99B7-164B03B3BF37}"
)]
pub trait ISimpleStream {
    /// `Read(cb, &data)`: up to `cb` bytes from the current position. `S_OK` if `cb`
    /// bytes were read, `S_FALSE` if fewer (the end was reached).
    #[out(data)]
    fn read(&self, cb: u32) -> (HRESULT, Vec<u8>);
    /// `Write(data, &written)`: writes at the current position. `S_OK`.
    #[out(written)]
    fn write(&self, data: Vec<u8>) -> (HRESULT, u32);
}

/// How a [`SimpleStream`] serves asynchronous calls.
enum Serving {
    /// No `ICallFactory`: `E_NOINTERFACE` (no async support).
    SyncOnly,
    /// Its synchronous methods run on a worker pool.
    Pool(Arc<Pool>, FinishMode),
    /// Calls wait in a queue until the caller runs them.
    Manual(Arc<ManualHandler<ISimpleStreamCalls>>, FinishMode),
}

struct Cursor {
    data: Vec<u8>,
    pos: usize,
}

/// An in-memory `ISimpleStream` server object: a byte buffer and a position.
///
/// ```
/// use comasync::call::{create_call_as, ICallFactory};
/// use comasync::hresult::{E_NOINTERFACE, S_OK};
/// use comasync::simple_stream::{AsyncISimpleStream, ISimpleStream, SimpleStream};
/// use comasync::unknown::Interface;
///
/// let sync_only = SimpleStream::create_sync_only(b"abc".to_vec());
/// assert_eq!(sync_only.query::<dyn ICallFactory>().unwrap_err().code(), E_NOINTERFACE);
/// let stream = SimpleStream::create(b"abc".to_vec()); // served on the global pool
/// assert_eq!(stream.read(1), (S_OK, b"a".to_vec())); // a synchronous call
/// let factory = stream.query::<dyn ICallFactory>()?;
/// let call = create_call_as::<dyn AsyncISimpleStream>(&*factory, &<dyn AsyncISimpleStream as Interface>::IID)?;
/// assert_eq!(call.begin_read(2), S_OK); // an asynchronous one, on the same stream
/// assert_eq!(call.finish_read(), (S_OK, b"bc".to_vec()));
/// # Ok::<(), comasync::Error>(())
/// ```
///
/// `#[implement]` makes it a COM object, `SimpleStream_Impl`: `ISimpleStream` always,
/// `ICallFactory` unless it was created without async support.
#[comasync::implement(ISimpleStream, more = SimpleStream_Impl::call_factory)]
pub struct SimpleStream {
    cursor: Mutex<Cursor>,
    serving: Serving,
}

impl SimpleStream {
    fn object(data: Vec<u8>, serving: Serving) -> Arc<SimpleStream_Impl> {
        let stream = SimpleStream {
            cursor: Mutex::new(Cursor { data, pos: 0 }),
            serving,
        };
        SimpleStream_Impl::new(stream, None)
    }

    /// A stream over `data` that supports asynchronous calls: its `ICallFactory` makes call
    /// objects that run `Read`/`Write` on the global worker pool.
    pub fn create(data: Vec<u8>) -> ComPtr<dyn ISimpleStream> {
        Self::create_on(data, Pool::global(), FinishMode::Blocking)
    }

    /// The same, on a given pool and with a given `Finish_` mode.
    pub fn create_on(
        data: Vec<u8>,
        pool: Arc<Pool>,
        mode: FinishMode,
    ) -> ComPtr<dyn ISimpleStream> {
        ComPtr::new(Self::object(data, Serving::Pool(pool, mode)) as Arc<dyn ISimpleStream>)
    }

    /// A stream whose asynchronous calls wait in the returned queue until the caller runs
    /// them (`handler.run_next(&*stream)`): the server side under the caller's control.
    pub fn create_manual(
        data: Vec<u8>,
        mode: FinishMode,
    ) -> (
        ComPtr<dyn ISimpleStream>,
        Arc<ManualHandler<ISimpleStreamCalls>>,
    ) {
        let handler = ManualHandler::new();
        let s = Self::object(data, Serving::Manual(handler.clone(), mode));
        (ComPtr::new(s as Arc<dyn ISimpleStream>), handler)
    }

    /// A stream without asynchronous support: `QueryInterface(IID_ICallFactory)` →
    /// `E_NOINTERFACE`.
    pub fn create_sync_only(data: Vec<u8>) -> ComPtr<dyn ISimpleStream> {
        ComPtr::new(Self::object(data, Serving::SyncOnly) as Arc<dyn ISimpleStream>)
    }
}

impl ISimpleStream for SimpleStream_Impl {
    fn read(&self, cb: u32) -> (HRESULT, Vec<u8>) {
        let mut c = self.cursor.lock();
        let start = c.pos.min(c.data.len());
        let end = start.saturating_add(cb as usize).min(c.data.len());
        let out = c.data[start..end].to_vec();
        c.pos = end;
        (
            if out.len() == cb as usize {
                S_OK
            } else {
                S_FALSE
            },
            out,
        )
    }

    fn write(&self, data: Vec<u8>) -> (HRESULT, u32) {
        let mut c = self.cursor.lock();
        let pos = c.pos;
        let end = pos + data.len();
        if c.data.len() < end {
            c.data.resize(end, 0);
        }
        c.data[pos..end].copy_from_slice(&data);
        c.pos = end;
        (S_OK, data.len() as u32)
    }
}

impl CallServer for SimpleStream_Impl {
    type Calls = ISimpleStreamCalls;
    fn call_handler(&self) -> ServedBy<ISimpleStreamCalls> {
        match &self.serving {
            Serving::SyncOnly => Err(E_NOINTERFACE),
            Serving::Manual(h, mode) => Ok((h.clone(), *mode)),
            Serving::Pool(pool, mode) => {
                let me = self.to_arc().ok_or(E_UNEXPECTED)?;
                let object = ComPtr::new(me as Arc<dyn ISimpleStream>);
                Ok((SyncMethodHandler::new(object, pool.clone()), *mode))
            }
        }
    }
}

impl SimpleStream_Impl {
    /// `ICallFactory`, unless the stream has no async support.
    fn call_factory(&self, me: &Arc<SimpleStream_Impl>, iid: &IID, ppv: &mut dyn Any) -> HRESULT {
        if *iid == IID_ICallFactory && !matches!(self.serving, Serving::SyncOnly) {
            set_out::<dyn ICallFactory>(ppv, self.refs().ptr(me.clone() as Arc<dyn ICallFactory>))
        } else {
            E_NOINTERFACE
        }
    }
}
