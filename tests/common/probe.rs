#![allow(dead_code)]
//! `IProbe`, a test interface that reports where its calls run, and two servers for it: one
//! with only the synchronous methods, one that also has a server-side call object (parked
//! until the test completes it).

use std::any::Any;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use comasync::apartment::{current_apartment, get_current_thread_id};
use comasync::call::{co_test_cancel, create_aggregated_call, ICallFactory, ICancelMethodCalls};
use comasync::hresult::{E_NOTIMPL, S_OK};
use comasync::marshal::{co_get_interface_and_release_stream, MarshalStream};
use comasync::sync::{co_wait_for_multiple_handles, ISynchronize, HANDLE, INFINITE};
use comasync::unknown::{query, ComPtr, IUnknown, Interface};
use comasync::HRESULT;

/// A probe: reports where its calls run.
#[comasync::interface(
    iid = "{3C0A5E10-8B21-4F6A-9D3E-2B7C1A0F9E01}",
    async_iid = "{3C0A5E11-8B21-4F6A-9D3E-2B7C1A0F9E01}",
    scripts = false
)]
pub trait IProbe {
    /// Where the call runs: the apartment id (0: none) and the thread.
    #[out(apartment, thread)]
    fn locate(&self) -> (HRESULT, u64, u32);
    /// Adds `n` to the count; the new count.
    #[out(total)]
    fn add(&self, n: u32) -> (HRESULT, u32);
    /// Panics.
    fn crash(&self) -> HRESULT;
    /// Signals `entered`, waits (a COM wait) for `gate`, records `CoTestCancel`, signals
    /// `done`.
    fn block(&self, entered: HANDLE, gate: HANDLE, done: HANDLE) -> HRESULT;
    /// Unmarshals `callback` here and calls its `Add(1)`; its total.
    #[out(total)]
    fn call_back(&self, callback: MarshalStream) -> (HRESULT, u32);
}

/// What a probe's methods record.
#[derive(Default)]
pub struct ProbeState {
    /// The running count of `Add`.
    pub count: AtomicU32,
    /// How many synchronous methods ran.
    pub sync_calls: AtomicU32,
    /// `CoTestCancel` as `Block` saw it.
    pub tested: Mutex<Vec<HRESULT>>,
    /// Calls parked by the server-side call object, oldest first.
    pub parked: Mutex<VecDeque<Parked>>,
    /// Set whenever a call is parked.
    pub parked_event: Option<HANDLE>,
    /// Threads on which a server-side call object's `Finish_` ran.
    pub finished_on: Mutex<Vec<u32>>,
    /// Completes each `Begin_Add(n)` by itself with `(S_OK, 2n)`, signalling from this pool
    /// (instead of parking it for the test).
    pub auto: Option<Arc<comasync::call::Pool>>,
    /// `n` of every `Begin_Add` the server call object ran.
    pub begun: Mutex<Vec<u32>>,
    /// `Add(n)` answers `2n` (and records `n` in `begun`) instead of the running count.
    pub echo: bool,
    /// The server call object completes each `Begin_Add(n)` inside `Begin_` with `(S_OK, 2n)`.
    pub inline: bool,
    /// How many server call objects `CreateCall` made.
    pub created: AtomicU32,
    /// Told when a `ProbeWithCalls` object's memory goes (its final release and last
    /// reference), if set.
    pub gone: Mutex<Option<std::sync::mpsc::Sender<()>>>,
}

/// A call the server-side call object began and has not signalled yet.
pub struct Parked {
    /// The stub's `ISynchronize` (through the outer).
    pub sync: ComPtr<dyn ISynchronize>,
    /// The stub's `ICancelMethodCalls` (through the outer).
    pub cancel: ComPtr<dyn ICancelMethodCalls>,
    /// `Add`'s `n`.
    pub n: u32,
    /// Where `Begin_` ran.
    pub begun_on: u32,
    result: Arc<Mutex<Option<(HRESULT, u32)>>>,
}

impl Parked {
    /// Completes the call: stores `Finish_`'s answer and signals the stub.
    pub fn complete(self, hr: HRESULT, total: u32) -> HRESULT {
        *self.result.lock().unwrap() = Some((hr, total));
        self.sync.signal()
    }
}

/// The synchronous-only probe.
#[comasync::implement(IProbe)]
pub struct Probe {
    /// Shared with the test.
    pub state: Arc<ProbeState>,
}

impl Probe {
    /// A probe object and its state.
    pub fn create() -> (ComPtr<dyn IProbe>, Arc<ProbeState>) {
        let state = Arc::new(ProbeState::default());
        let p = Probe {
            state: state.clone(),
        }
        .into_interface::<dyn IProbe>()
        .unwrap();
        (p, state)
    }
}

fn locate() -> (HRESULT, u64, u32) {
    (
        S_OK,
        current_apartment().map_or(0, |a| a.0),
        get_current_thread_id(),
    )
}

fn sync_methods(state: &ProbeState) -> &ProbeState {
    state.sync_calls.fetch_add(1, Ordering::SeqCst);
    state
}

impl IProbe for Probe_Impl {
    fn locate(&self) -> (HRESULT, u64, u32) {
        sync_methods(&self.state);
        locate()
    }
    fn add(&self, n: u32) -> (HRESULT, u32) {
        let s = sync_methods(&self.state);
        let total = s.count.fetch_add(n, Ordering::SeqCst) + n;
        if s.echo {
            s.begun.lock().unwrap().push(n);
            return (S_OK, 2 * n);
        }
        (S_OK, total)
    }
    fn crash(&self) -> HRESULT {
        sync_methods(&self.state);
        panic!("the server method crashes (expected by the test)");
    }
    fn block(&self, entered: HANDLE, gate: HANDLE, done: HANDLE) -> HRESULT {
        let s = sync_methods(&self.state);
        entered.set_event();
        let mut i = 0;
        let _ = co_wait_for_multiple_handles(0, INFINITE, Some(&[gate]), Some(&mut i));
        s.tested.lock().unwrap().push(co_test_cancel());
        done.set_event();
        S_OK
    }
    fn call_back(&self, callback: MarshalStream) -> (HRESULT, u32) {
        sync_methods(&self.state);
        let iid = <dyn IProbe as Interface>::IID;
        match co_get_interface_and_release_stream::<IProbeCalls>(callback, &iid) {
            Ok(cb) => cb.add(1),
            Err(e) => (e.code(), 0),
        }
    }
}

/// A probe with a server-side call object for `AsyncIProbe` (only `Add` is served
/// asynchronously; its calls park until the test completes them).
#[comasync::implement(IProbe, ICallFactory)]
pub struct ProbeWithCalls {
    /// Shared with the test.
    pub state: Arc<ProbeState>,
}

impl ProbeWithCalls {
    /// The object and its state.
    pub fn create() -> (ComPtr<dyn IProbe>, Arc<ProbeState>) {
        Self::with_state(ProbeState {
            parked_event: Some(HANDLE::create_event(false, false)),
            ..ProbeState::default()
        })
    }

    /// A server whose server call object completes each call inside `Begin_`.
    pub fn create_inline() -> (ComPtr<dyn IProbe>, Arc<ProbeState>) {
        Self::with_state(ProbeState {
            inline: true,
            ..ProbeState::default()
        })
    }

    /// A server whose calls complete by themselves, signalled from `pool`'s workers.
    pub fn create_auto(pool: Arc<comasync::call::Pool>) -> (ComPtr<dyn IProbe>, Arc<ProbeState>) {
        Self::with_state(ProbeState {
            auto: Some(pool),
            ..ProbeState::default()
        })
    }

    fn with_state(state: ProbeState) -> (ComPtr<dyn IProbe>, Arc<ProbeState>) {
        let state = Arc::new(state);
        let p = ProbeWithCalls {
            state: state.clone(),
        }
        .into_interface::<dyn IProbe>()
        .unwrap();
        (p, state)
    }
}

impl Drop for ProbeWithCalls {
    fn drop(&mut self) {
        if let Some(gone) = self.state.gone.lock().unwrap().take() {
            let _ = gone.send(());
        }
    }
}

impl IProbe for ProbeWithCalls_Impl {
    fn locate(&self) -> (HRESULT, u64, u32) {
        sync_methods(&self.state);
        locate()
    }
    fn add(&self, n: u32) -> (HRESULT, u32) {
        let s = sync_methods(&self.state);
        (S_OK, s.count.fetch_add(n, Ordering::SeqCst) + n)
    }
    fn crash(&self) -> HRESULT {
        sync_methods(&self.state);
        panic!("the server method crashes (expected by the test)");
    }
    fn block(&self, _: HANDLE, _: HANDLE, _: HANDLE) -> HRESULT {
        E_NOTIMPL
    }
    fn call_back(&self, _: MarshalStream) -> (HRESULT, u32) {
        (E_NOTIMPL, 0)
    }
}

impl ICallFactory for ProbeWithCalls_Impl {
    fn create_call(
        &self,
        riid: &comasync::guid::IID,
        outer: Option<&ComPtr<dyn IUnknown>>,
        riid2: &comasync::guid::IID,
        ppv: Option<&mut dyn Any>,
    ) -> HRESULT {
        // This test server is only ever aggregated by the stub.
        create_aggregated_call::<dyn AsyncIProbe>(riid, outer, riid2, ppv, |outer| {
            self.state.created.fetch_add(1, Ordering::SeqCst);
            ProbeCall {
                state: self.state.clone(),
                result: Arc::default(),
            }
            .into_aggregated(outer)
        })
    }
}

/// The server-side call object.
#[comasync::implement(AsyncIProbe)]
pub struct ProbeCall {
    state: Arc<ProbeState>,
    result: Arc<Mutex<Option<(HRESULT, u32)>>>,
}

impl AsyncIProbe for ProbeCall_Impl {
    fn begin_locate(&self) -> HRESULT {
        E_NOTIMPL
    }
    fn finish_locate(&self) -> (HRESULT, u64, u32) {
        (E_NOTIMPL, 0, 0)
    }
    fn begin_add(&self, n: u32) -> HRESULT {
        let sync = query::<dyn ISynchronize>(self).unwrap();
        let cancel = query::<dyn ICancelMethodCalls>(self).unwrap();
        let _ = sync.reset();
        self.state.begun.lock().unwrap().push(n);
        if self.state.inline {
            *self.result.lock().unwrap() = Some((S_OK, 2 * n));
            return sync.signal();
        }
        if let Some(pool) = &self.state.auto {
            *self.result.lock().unwrap() = Some((S_OK, 2 * n));
            pool.execute(move || {
                let _ = cancel.test_cancel();
                let _ = sync.signal();
            });
            return S_OK;
        }
        self.state.parked.lock().unwrap().push_back(Parked {
            sync,
            cancel,
            n,
            begun_on: get_current_thread_id(),
            result: self.result.clone(),
        });
        if let Some(e) = &self.state.parked_event {
            e.set_event();
        }
        S_OK
    }
    fn finish_add(&self) -> (HRESULT, u32) {
        self.state
            .finished_on
            .lock()
            .unwrap()
            .push(get_current_thread_id());
        self.result.lock().unwrap().take().unwrap_or((E_NOTIMPL, 0))
    }
    fn begin_crash(&self) -> HRESULT {
        panic!("Begin_Crash crashes (expected by the test)");
    }
    fn finish_crash(&self) -> HRESULT {
        E_NOTIMPL
    }
    fn begin_block(&self, _: HANDLE, _: HANDLE, _: HANDLE) -> HRESULT {
        E_NOTIMPL
    }
    fn finish_block(&self) -> HRESULT {
        E_NOTIMPL
    }
    fn begin_call_back(&self, _: MarshalStream) -> HRESULT {
        E_NOTIMPL
    }
    fn finish_call_back(&self) -> (HRESULT, u32) {
        (E_NOTIMPL, 0)
    }
}

/// Waits (bounded by the test's watchdog) for the next parked call.
pub fn next_parked(state: &ProbeState) -> Parked {
    loop {
        if let Some(p) = state.parked.lock().unwrap().pop_front() {
            return p;
        }
        let mut i = 0;
        let e = state.parked_event.clone().unwrap();
        let _ = co_wait_for_multiple_handles(0, INFINITE, Some(&[e]), Some(&mut i));
    }
}

/// A probe whose `ICallFactory` is the standard one (its call objects run the synchronous
/// methods on the global pool): the stub aggregates comasync's own call object, which signals
/// the stub from a pool worker. `Add(n)` answers `2n`.
#[comasync::implement(IProbe, ICallFactory)]
pub struct ProbeStd {
    inner: ComPtr<dyn IProbe>,
}

impl ProbeStd {
    /// The object and its (echoing) state.
    pub fn create() -> (ComPtr<dyn IProbe>, Arc<ProbeState>) {
        let state = Arc::new(ProbeState {
            echo: true,
            ..ProbeState::default()
        });
        let inner = Probe {
            state: state.clone(),
        }
        .into_interface::<dyn IProbe>()
        .unwrap();
        let p = ProbeStd { inner }.into_interface::<dyn IProbe>().unwrap();
        (p, state)
    }
}

impl IProbe for ProbeStd_Impl {
    fn locate(&self) -> (HRESULT, u64, u32) {
        self.inner.locate()
    }
    fn add(&self, n: u32) -> (HRESULT, u32) {
        self.inner.add(n)
    }
    fn crash(&self) -> HRESULT {
        self.inner.crash()
    }
    fn block(&self, e: HANDLE, g: HANDLE, d: HANDLE) -> HRESULT {
        self.inner.block(e, g, d)
    }
    fn call_back(&self, s: MarshalStream) -> (HRESULT, u32) {
        self.inner.call_back(s)
    }
}

impl ICallFactory for ProbeStd_Impl {
    fn create_call(
        &self,
        riid: &comasync::guid::IID,
        outer: Option<&ComPtr<dyn IUnknown>>,
        riid2: &comasync::guid::IID,
        ppv: Option<&mut dyn Any>,
    ) -> HRESULT {
        let handler = comasync::call::SyncMethodHandler::<IProbeCalls>::new(
            self.inner.clone(),
            comasync::call::Pool::global(),
        );
        comasync::call::create_call::<IProbeCalls>(
            riid,
            outer,
            riid2,
            ppv,
            handler,
            comasync::call::FinishMode::Blocking,
        )
    }
}
