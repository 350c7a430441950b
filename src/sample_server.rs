//! A server object with its own server-side call object for `ISimpleStream`, written the way
//! Microsoft's COM samples write them (spec 2.2; FullServ and CAsyncXXX): user code, shown as a
//! reference for writing your own.
//!
//! * [`SampleServer`] implements `ICallFactory`; `CreateCall` builds a [`SampleStreamCall`]
//!   aggregated under a [`ServerCallHost`] (COM's stub), and the client gets comasync's call
//!   object in front of it.
//! * [`SampleStreamCall`] keeps its own small state, as the samples do: `Begin_` checks that no
//!   call is in progress (`RPC_S_CALLPENDING`), stores the in-parameters, resets the
//!   `ISynchronize` it reaches through its outer unknown, hands the work to a worker, and
//!   returns `S_OK`. The worker checks `TestCancel` through the outer, stores the result (or the
//!   error), and calls `Signal` on the outer's `ISynchronize`. `Finish_` waits for that signal
//!   if needed, and returns the stored result once; without a call it returns
//!   `RPC_E_CALL_COMPLETE`.
//!
//! ```
//! use comasync::call::{create_call_as, ICallFactory};
//! use comasync::hresult::S_OK;
//! use comasync::sample_server::SampleServer;
//! use comasync::simple_stream::AsyncISimpleStream;
//! use comasync::unknown::Interface;
//!
//! let server = SampleServer::create(b"hello".to_vec());
//! let factory = server.query::<dyn ICallFactory>().unwrap();
//! let call = create_call_as::<dyn AsyncISimpleStream>(&*factory, &<dyn AsyncISimpleStream as Interface>::IID).unwrap();
//! assert_eq!(call.begin_read(4), S_OK);
//! assert_eq!(call.finish_read(), (S_OK, b"hell".to_vec()));
//! ```

use std::sync::{Arc, Mutex, MutexGuard};

use crate::call::{
    CallServer, FinishMode, ICallFactory, ICancelMethodCalls, Pool, ServedBy, ServerCallHost,
};
use crate::hresult::{
    E_UNEXPECTED, HRESULT, RPC_E_CALL_CANCELED, RPC_E_CALL_COMPLETE, RPC_S_CALLPENDING, S_FALSE,
    S_OK,
};
use crate::simple_stream::{AsyncISimpleStream, ISimpleStreamCalls};
use crate::sync::{ISynchronize, INFINITE};
use crate::unknown::{query, ComPtr, IUnknown};

/// The server's data: a byte buffer and a position.
/// Locks `m`; a lock poisoned by a panic elsewhere is still usable (the data stays valid:
/// every critical section here is a plain assignment).
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[derive(Default)]
struct Data {
    bytes: Vec<u8>,
    pos: usize,
}

/// The server object: implements `ICallFactory` (and only that, like FullServ's object).
///
/// ```
/// use comasync::call::{create_call_as, ICallFactory, Pool};
/// use comasync::hresult::{E_ACCESSDENIED, S_OK};
/// use comasync::sample_server::SampleServer;
/// use comasync::simple_stream::{AsyncISimpleStream, ISimpleStream};
/// use comasync::unknown::Interface;
///
/// let server = SampleServer::create_on(b"abc".to_vec(), Pool::new(1));
/// assert!(server.query::<dyn ISimpleStream>().is_err()); // no synchronous interface
/// let factory = server.query::<dyn ICallFactory>()?;
/// let call = create_call_as::<dyn AsyncISimpleStream>(&*factory, &<dyn AsyncISimpleStream as Interface>::IID)?;
/// assert_eq!(call.begin_write(b"x".to_vec()), S_OK);
/// assert_eq!(call.finish_write(), (E_ACCESSDENIED, 0)); // its data is read-only
/// # Ok::<(), comasync::Error>(())
/// ```
///
/// `#[implement]` makes it a COM object: `SampleServer_Impl` holds it with its reference
/// count, and implements `ICallFactory`.
#[comasync::implement(ICallFactory)]
pub struct SampleServer {
    data: Arc<Mutex<Data>>,
    pool: Arc<Pool>,
}

impl SampleServer {
    /// A server over `bytes`, working on the global pool.
    pub fn create(bytes: Vec<u8>) -> ComPtr<dyn IUnknown> {
        Self::create_on(bytes, Pool::global())
    }

    /// The same, on a given pool.
    pub fn create_on(bytes: Vec<u8>, pool: Arc<Pool>) -> ComPtr<dyn IUnknown> {
        SampleServer {
            data: Arc::new(Mutex::new(Data { bytes, pos: 0 })),
            pool,
        }
        .into_object()
    }
}

impl CallServer for SampleServer_Impl {
    type Calls = ISimpleStreamCalls;
    fn call_handler(&self) -> ServedBy<ISimpleStreamCalls> {
        let (data, pool) = (self.data.clone(), self.pool.clone());
        let host = ServerCallHost::<ISimpleStreamCalls>::new(|stub| {
            SampleStreamCall {
                data,
                pool,
                work: Mutex::new(Work::Idle),
            }
            .into_aggregated(stub)
        })?;
        Ok((host, FinishMode::Blocking))
    }
}

/// The call in progress, as the sample keeps it.
enum Work {
    Idle,
    Busy { result: Option<Done> },
}

enum Done {
    Read(HRESULT, Vec<u8>),
    Write(HRESULT, u32),
}

/// The server-side call object (see the [module docs](self)).
///
/// Only [`SampleServer`]'s `CreateCall` makes one; a client sees it through comasync's call
/// object in front of it:
///
/// ```
/// use comasync::call::{create_call_as, ICallFactory};
/// use comasync::hresult::{S_FALSE, S_OK};
/// use comasync::sample_server::SampleServer;
/// use comasync::simple_stream::AsyncISimpleStream;
/// use comasync::unknown::Interface;
///
/// let factory = SampleServer::create(b"abc".to_vec()).query::<dyn ICallFactory>()?;
/// let call = create_call_as::<dyn AsyncISimpleStream>(&*factory, &<dyn AsyncISimpleStream as Interface>::IID)?;
/// assert_eq!(call.begin_read(2), S_OK); // its Begin_Read hands the work to a worker
/// assert_eq!(call.finish_read(), (S_OK, b"ab".to_vec())); // its Finish_Read's result
/// assert_eq!(call.begin_read(2), S_OK);
/// assert_eq!(call.finish_read(), (S_FALSE, b"c".to_vec())); // fewer bytes than asked
/// # Ok::<(), comasync::Error>(())
/// ```
///
/// `#[implement]` makes it a COM object, `SampleStreamCall_Impl`, created aggregated under the
/// stub by `into_aggregated`.
#[comasync::implement(AsyncISimpleStream)]
pub struct SampleStreamCall {
    data: Arc<Mutex<Data>>,
    pool: Arc<Pool>,
    work: Mutex<Work>,
}

impl SampleStreamCall_Impl {
    /// The `ISynchronize` COM uses for this call: the outer's (spec 3.5).
    fn synchronize(&self) -> Option<ComPtr<dyn ISynchronize>> {
        query::<dyn ISynchronize>(self).ok()
    }

    /// `Begin_`: busy check, reset, hand the work to a worker, return at once.
    fn begin(&self, work: impl FnOnce(&Data, &mut usize) -> Done + Send + 'static) -> HRESULT {
        {
            let mut w = lock(&self.work);
            if matches!(*w, Work::Busy { .. }) {
                return RPC_S_CALLPENDING;
            }
            *w = Work::Busy { result: None };
        }
        let Some(sync) = self.synchronize() else {
            return E_UNEXPECTED;
        };
        let _ = sync.reset();
        let Some(me) = self.to_arc() else {
            return E_UNEXPECTED;
        };
        self.pool.execute(move || {
            // A worker sees a client's cancel through the outer unknown.
            let cancelled = query::<dyn ICancelMethodCalls>(&*me)
                .map(|c| c.test_cancel() == RPC_E_CALL_CANCELED)
                .unwrap_or(false);
            let done = if cancelled {
                Done::Read(RPC_E_CALL_CANCELED, Vec::new())
            } else {
                let mut d = lock(&me.data);
                let mut pos = d.pos;
                let done = work(&d, &mut pos);
                d.pos = pos;
                done
            };
            if let Work::Busy { result } = &mut *lock(&me.work) {
                *result = Some(done);
            }
            // Signal with no lock held: COM's stub calls Finish_ from here.
            let _ = sync.signal();
        });
        S_OK
    }

    /// `Finish_`: wait if still working, then hand back the stored result once.
    fn finish(&self) -> Option<Done> {
        if matches!(*lock(&self.work), Work::Idle) {
            return None;
        }
        if let Some(sync) = self.synchronize() {
            let _ = sync.wait(0, INFINITE);
        }
        match std::mem::replace(&mut *lock(&self.work), Work::Idle) {
            Work::Busy { result } => result,
            Work::Idle => None,
        }
    }
}

impl AsyncISimpleStream for SampleStreamCall_Impl {
    fn begin_read(&self, cb: u32) -> HRESULT {
        self.begin(move |d, pos| {
            let start = (*pos).min(d.bytes.len());
            let end = start.saturating_add(cb as usize).min(d.bytes.len());
            *pos = end;
            let out = d.bytes[start..end].to_vec();
            Done::Read(
                if out.len() == cb as usize {
                    S_OK
                } else {
                    S_FALSE
                },
                out,
            )
        })
    }

    fn finish_read(&self) -> (HRESULT, Vec<u8>) {
        match self.finish() {
            Some(Done::Read(hr, bytes)) => (hr, bytes),
            Some(Done::Write(hr, _)) => (hr, Vec::new()),
            None => (RPC_E_CALL_COMPLETE, Vec::new()),
        }
    }

    fn begin_write(&self, data: Vec<u8>) -> HRESULT {
        // The sample's data is read-only: Write stores E_ACCESSDENIED, returned by Finish_.
        let _ = data;
        self.begin(|_, _| Done::Write(crate::hresult::E_ACCESSDENIED, 0))
    }

    fn finish_write(&self) -> (HRESULT, u32) {
        match self.finish() {
            Some(Done::Write(hr, n)) => (hr, n),
            Some(Done::Read(hr, _)) => (hr, 0),
            None => (RPC_E_CALL_COMPLETE, 0),
        }
    }
}
