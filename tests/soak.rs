//! A random soak of the whole call path: several client threads make random calls —
//! `Begin_`, `Wait`, strict and blocking `Finish_`, `Cancel` with 0, 1 s and `INFINITE`
//! windows, release in the middle of a call, reuse of a call object for the next call — on call
//! objects served in four ways:
//!
//! * `SyncMethodHandler` running a synchronous method on a small `Pool` (the method sometimes
//!   fails or panics);
//! * one `ManualHandler` shared by many call objects, served by two server threads that
//!   complete, fail, drop or hold back (complete later, late) each call;
//! * a `ManualHandler` of its own that nobody ever serves (a server that never completes: the
//!   client must cancel or release);
//! * a `ServerCallHost` hosting a `comasync::sample_server` call object (through
//!   `SampleServer`'s `ICallFactory`).
//!
//! About one call object in five is aggregated by an outer `ISynchronize` that counts its
//! `Reset`s and `Signal`s and fails some of them (`E_FAIL`); its `Signal` checks that the call
//! it signals is complete (the call's own event is set) and that the outer has not been
//! finally released.
//!
//! Checked, with every violation collected and reported together with the seed:
//!
//! * **exactly once**: each call has a unique in-parameter; a result `Finish_` returns must be
//!   that call's (`ISoak`: the token names the call; the sample server: the data read has the
//!   call's unique length), and no result is seen twice;
//! * **no hang**: the main thread is a watchdog: no call finishing for a while, or the run
//!   exceeding its bound (60 s), fails the test with every call object in progress;
//! * **no leak**: every in-parameter and out-parameter is dropped (drop counters), and every
//!   call object, handler, server object and outer is freed (weak references).
//!
//! No sleep orders anything; timing is never asserted. `cargo test --test soak` runs the CI
//! size (a few seconds); `COMASYNC_SOAK_LONG=1` a long run; `COMASYNC_SOAK_SEED=n` repeats a
//! seed (a run's seed is printed, and named in every failure).

mod common;

use std::any::Any;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::{Duration, Instant};

use common::{live_tokens, spawn_clients, Rng, Token};

use comasync::call::{
    create_call, CallHandler, FinishMode, ICallFactory, ICancelMethodCalls, ManualHandler, Pool,
    ServerCall, SyncMethodHandler, RPC_C_CANCEL_INFINITE_TIMEOUT,
};
use comasync::guid::{IID_IUnknown, IID};
use comasync::hresult::*;
use comasync::sample_server::SampleServer;
use comasync::simple_stream::AsyncISimpleStream;
use comasync::sync::{ISynchronize, ISynchronizeHandle, ManualResetEvent, HANDLE};
use comasync::unknown::{ComPtr, IUnknown, Interface, RefCount};

// ---------------------------------------------------------------------------------------------
// The interface, its parameters and its synchronous server
// ---------------------------------------------------------------------------------------------

static LIVE_ARGS: AtomicUsize = AtomicUsize::new(0);

/// An in-parameter that counts how many exist, to prove in-parameters are freed.
#[derive(Debug, PartialEq)]
pub struct Arg(u64);

impl Arg {
    fn new(id: u64) -> Arg {
        LIVE_ARGS.fetch_add(1, Ordering::SeqCst);
        Arg(id)
    }
}

impl Clone for Arg {
    fn clone(&self) -> Arg {
        Arg::new(self.0)
    }
}

impl Drop for Arg {
    fn drop(&mut self) {
        LIVE_ARGS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// A service whose one method answers with a token naming the call.
#[comasync::interface(
    iid = "{6B7C8D9E-0F10-4213-9435-A6B7C8D9E0F1}",
    async_iid = "{6B7C8D9E-0F10-4213-9435-A6B7C8D9E0F2}",
    // Test-local parameter types: no scenario-script glue.
    scripts = false
)]
pub trait ISoak {
    /// Answers `Token(id)`; `arg` is a counted in-parameter.
    #[out(token)]
    fn work(&self, id: u64, arg: Arg) -> (HRESULT, Token);
}

/// The synchronous server object: usually answers `Token(id)`, sometimes fails or panics.
#[comasync::implement(ISoak)]
pub struct SoakServer;

impl ISoak for SoakServer_Impl {
    fn work(&self, id: u64, arg: Arg) -> (HRESULT, Token) {
        assert_eq!(arg.0, id, "the in-parameter of another call");
        let mut rng = Rng::new(id ^ 0x51AC);
        spin(&mut rng);
        match rng.below(20) {
            0 => panic!("the synchronous method panics (on purpose)"),
            1 | 2 => (E_FAIL, Token::default()),
            _ => (S_OK, Token::new(id)),
        }
    }
}

/// A little work, to let the threads race (no sleeping).
fn spin(rng: &mut Rng) {
    for _ in 0..rng.below(1500) {
        std::hint::spin_loop();
    }
}

// ---------------------------------------------------------------------------------------------
// The aggregating client's outer object
// ---------------------------------------------------------------------------------------------

/// What every outer found wrong, and its counts.
#[derive(Default)]
struct OuterStats {
    resets: AtomicU64,
    signals: AtomicU64,
    failed: AtomicU64,
    stale_signals: AtomicU64,
    signals_after_release: AtomicU64,
}

/// An aggregating client: implements `ISynchronize` over a manual-reset event of its own,
/// counts `Reset`s and `Signal`s and fails some (`E_FAIL`), and checks each `Signal`.
struct Outer {
    refs: RefCount,
    me: Weak<Outer>,
    event: ComPtr<dyn ISynchronize>,
    inner: Mutex<Option<ComPtr<dyn IUnknown>>>,
    /// The call object's own event, to check that a `Signal` is for a completed call.
    call_event: Mutex<Option<HANDLE>>,
    rng: Mutex<Rng>,
    released: AtomicBool,
    stats: Arc<OuterStats>,
}

impl ISynchronize for Outer {
    fn wait(&self, flags: u32, timeout_ms: u32) -> HRESULT {
        self.event.wait(flags, timeout_ms)
    }
    fn signal(&self) -> HRESULT {
        self.stats.signals.fetch_add(1, Ordering::SeqCst);
        if self.released.load(Ordering::SeqCst) {
            self.stats
                .signals_after_release
                .fetch_add(1, Ordering::SeqCst);
        }
        // The call this Signal is for completed, so its own event is set until the next
        // Begin_, which must wait for this Signal to return.
        if let Some(h) = &*self.call_event.lock().unwrap() {
            if !h.is_signaled() {
                self.stats.stale_signals.fetch_add(1, Ordering::SeqCst);
            }
        }
        let _ = self.event.signal();
        if self.rng.lock().unwrap().chance(10) {
            self.stats.failed.fetch_add(1, Ordering::SeqCst);
            E_FAIL
        } else {
            S_OK
        }
    }
    fn reset(&self) -> HRESULT {
        self.stats.resets.fetch_add(1, Ordering::SeqCst);
        if self.rng.lock().unwrap().chance(8) {
            self.stats.failed.fetch_add(1, Ordering::SeqCst);
            return E_FAIL;
        }
        self.event.reset()
    }
}

impl Outer {
    fn inner_interfaces(&self, _me: &Arc<Self>, iid: &IID, ppv: &mut dyn Any) -> HRESULT {
        let inner = self.inner.lock().unwrap().clone();
        match inner {
            Some(inner) => inner.query_interface(iid, ppv),
            None => E_NOINTERFACE,
        }
    }
    fn final_release(&self) {
        self.released.store(true, Ordering::SeqCst);
        let inner = self.inner.lock().unwrap().take();
        drop(inner);
    }
}

comasync::com_object!([] Outer {
    interfaces: [dyn ISynchronize],
    more: Outer::inner_interfaces,
    final_release: Outer::final_release,
});

// ---------------------------------------------------------------------------------------------
// The servers
// ---------------------------------------------------------------------------------------------

/// What every server of the run is made of; weak references prove they are all freed.
struct Servers {
    pool: Arc<Pool>,
    sync_handler: Arc<SyncMethodHandler<ISoakCalls>>,
    shared_manual: Arc<ManualHandler<ISoakCalls>>,
    samples: Mutex<Vec<Alive>>,
    never: Mutex<Vec<Weak<ManualHandler<ISoakCalls>>>>,
}

/// Serves the shared `ManualHandler`: complete, fail, drop, or hold back a call and complete
/// it later (a late completion), until `stop`.
fn serve_manual(handler: Arc<ManualHandler<ISoakCalls>>, seed: u64, stop: Arc<AtomicBool>) {
    let mut rng = Rng::new(seed);
    let mut held: Vec<(ServerCall<ISoakCalls>, u64)> = Vec::new();
    let finish = |call: ServerCall<ISoakCalls>, id: u64, rng: &mut Rng| match rng.below(10) {
        0 => drop(call), // RPC_E_SERVER_DIED
        1 => call.fail(E_FAIL),
        _ => call.complete(
            S_OK,
            ISoakOut::Work {
                token: Token::new(id),
            },
        ),
    };
    loop {
        let stopping = stop.load(Ordering::SeqCst);
        match handler.take_wait(2) {
            Some((call, ISoakIn::Work { id, arg })) => {
                drop(arg);
                spin(&mut rng);
                if rng.chance(15) && held.len() < 8 {
                    held.push((call, id));
                } else {
                    finish(call, id, &mut rng);
                }
                if held.len() > 3 || rng.chance(20) {
                    if let Some((c, id)) = held.pop() {
                        finish(c, id, &mut rng);
                    }
                }
            }
            None => {
                // Idle: complete what was held back, so no client waits on it forever.
                for (c, id) in held.drain(..) {
                    finish(c, id, &mut rng);
                }
                if stopping {
                    return;
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Sync,
    Manual,
    Never,
    Host,
}

/// One client call object, whatever its interface.
enum Call {
    Soak(ComPtr<dyn AsyncISoak>),
    Stream(ComPtr<dyn AsyncISimpleStream>),
}

/// What `Finish_` handed back.
enum Payload {
    Token(Token),
    Bytes(Vec<u8>),
}

impl Call {
    fn unknown(&self) -> ComPtr<dyn IUnknown> {
        match self {
            Call::Soak(c) => c.query::<dyn IUnknown>(),
            Call::Stream(c) => c.query::<dyn IUnknown>(),
        }
        .expect("IUnknown")
    }
    fn begin(&self, id: u64, cb: u32) -> HRESULT {
        match self {
            Call::Soak(c) => c.begin_work(id, Arg::new(id)),
            Call::Stream(c) => c.begin_read(cb),
        }
    }
    fn finish(&self) -> (HRESULT, Payload) {
        match self {
            Call::Soak(c) => {
                let (hr, t) = c.finish_work();
                (hr, Payload::Token(t))
            }
            Call::Stream(c) => {
                let (hr, b) = c.finish_read();
                (hr, Payload::Bytes(b))
            }
        }
    }
}

/// Everything the threads share.
struct Shared {
    seed: u64,
    servers: Servers,
    /// Call objects in progress: (thread, object) → the call object, for the watchdog.
    in_flight: Mutex<HashMap<(usize, u64), (Kind, Alive)>>,
    /// Every call object and outer made, to prove they are all freed.
    all: Mutex<Vec<(String, Alive)>>,
    /// Results delivered: ISoak call ids, and (object, length) for the sample server.
    delivered: Mutex<HashSet<(u64, u64)>>,
    violations: Mutex<Vec<String>>,
    fates: Mutex<HashMap<&'static str, u64>>,
    outer_stats: Arc<OuterStats>,
    progress: AtomicU64,
    /// Cancel(1)s left to spend: each may wait out a whole second.
    one_second_cancels: AtomicU32,
}

impl Shared {
    fn violation(&self, m: String) {
        self.violations.lock().unwrap().push(m);
    }
    fn fate(&self, f: &'static str) {
        *self.fates.lock().unwrap().entry(f).or_default() += 1;
    }
}

/// Whether an object is still in memory (a weak reference, whatever its type).
type Alive = Box<dyn Fn() -> bool + Send>;

fn alive<T: ?Sized + Send + Sync + 'static>(a: &Arc<T>) -> Alive {
    let w = Arc::downgrade(a);
    Box::new(move || w.strong_count() > 0)
}

fn iid<I: ?Sized + Interface>() -> IID {
    I::IID
}

/// Creates a call object of `kind`, aggregated by an outer if `aggregated`.
fn create(
    kind: Kind,
    aggregated: bool,
    mode: FinishMode,
    rng: &mut Rng,
    sh: &Shared,
) -> (Call, Option<Arc<Outer>>) {
    let outer = aggregated.then(|| {
        Arc::new_cyclic(|me| Outer {
            refs: RefCount::new(),
            me: me.clone(),
            event: ManualResetEvent::create(),
            inner: Mutex::new(None),
            call_event: Mutex::new(None),
            rng: Mutex::new(Rng::new(rng.next())),
            released: AtomicBool::new(false),
            stats: sh.outer_stats.clone(),
        })
    });
    let outer_unk: Option<ComPtr<dyn IUnknown>> = outer
        .as_ref()
        .map(|o| ComPtr::new(o.clone() as Arc<dyn IUnknown>));
    let riid2 = if aggregated {
        IID_IUnknown
    } else {
        match kind {
            Kind::Host => iid::<dyn AsyncISimpleStream>(),
            _ => iid::<dyn AsyncISoak>(),
        }
    };
    let mut slot_soak: Option<ComPtr<dyn AsyncISoak>> = None;
    let mut slot_stream: Option<ComPtr<dyn AsyncISimpleStream>> = None;
    let mut slot_unk: Option<ComPtr<dyn IUnknown>> = None;
    let ppv: &mut dyn Any = match (aggregated, kind) {
        (true, _) => &mut slot_unk,
        (false, Kind::Host) => &mut slot_stream,
        (false, _) => &mut slot_soak,
    };
    let hr = match kind {
        Kind::Host => {
            let server = SampleServer::create_on(
                (0..=255u8).cycle().take(4096).collect(),
                sh.servers.pool.clone(),
            );
            sh.servers
                .samples
                .lock()
                .unwrap()
                .push(alive(server.as_arc()));
            let factory = server.query::<dyn ICallFactory>().expect("ICallFactory");
            factory.create_call(
                &iid::<dyn AsyncISimpleStream>(),
                outer_unk.as_ref(),
                &riid2,
                Some(ppv),
            )
        }
        _ => {
            let handler: Arc<dyn CallHandler<ISoakCalls>> = match kind {
                Kind::Sync => sh.servers.sync_handler.clone(),
                Kind::Manual => sh.servers.shared_manual.clone(),
                _ => {
                    let h = ManualHandler::<ISoakCalls>::new();
                    sh.servers.never.lock().unwrap().push(Arc::downgrade(&h));
                    h
                }
            };
            create_call::<ISoakCalls>(
                &iid::<dyn AsyncISoak>(),
                outer_unk.as_ref(),
                &riid2,
                Some(ppv),
                handler,
                mode,
            )
        }
    };
    assert_eq!(hr, S_OK, "CreateCall");
    let call = match (&outer, kind) {
        (Some(o), _) => {
            let inner = slot_unk.expect("the inner's non-delegating unknown");
            let handle_ptr = inner
                .query::<dyn ISynchronizeHandle>()
                .expect("the call object's ISynchronizeHandle");
            // The call object itself (its ISynchronizeHandle is the call object).
            sh.all.lock().unwrap().push((
                "an aggregated call object".into(),
                alive(handle_ptr.as_arc()),
            ));
            let handle = handle_ptr
                .get_handle()
                .expect("the call object's own event");
            drop(handle_ptr);
            *o.call_event.lock().unwrap() = Some(handle);
            *o.inner.lock().unwrap() = Some(inner);
            let unk = outer_unk.clone().expect("outer");
            match kind {
                Kind::Host => Call::Stream(unk.query::<dyn AsyncISimpleStream>().unwrap()),
                _ => Call::Soak(unk.query::<dyn AsyncISoak>().unwrap()),
            }
        }
        (None, Kind::Host) => Call::Stream(slot_stream.expect("call object")),
        (None, _) => Call::Soak(slot_soak.expect("call object")),
    };
    (call, outer)
}

/// How a client ends one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Plan {
    WaitThenFinish,
    BlockingFinish,
    Cancel0,
    Cancel1,
    CancelInfinite,
    Abandon,
}

fn client(t: usize, objects: u64, sh: Arc<Shared>) {
    let mut rng = Rng::new(sh.seed ^ ((t as u64 + 1) << 40));
    for o in 0..objects {
        let object_id = ((t as u64) << 32) | o;
        let kind = match rng.below(100) {
            0..=34 => Kind::Sync,
            35..=64 => Kind::Manual,
            65..=74 => Kind::Never,
            _ => Kind::Host,
        };
        let aggregated = rng.chance(20);
        let mode = if kind == Kind::Host || rng.chance(50) {
            FinishMode::Blocking // SampleServer's factory makes blocking call objects
        } else {
            FinishMode::Strict
        };
        let (call, outer) = create(kind, aggregated, mode, &mut rng, &sh);
        let unk = call.unknown();
        let (name, a, b) = match (&outer, &call) {
            (Some(o), _) => ("outer", alive(o), alive(o)),
            (None, Call::Soak(c)) => ("call object", alive(c.as_arc()), alive(c.as_arc())),
            (None, Call::Stream(c)) => ("call object", alive(c.as_arc()), alive(c.as_arc())),
        };
        sh.all
            .lock()
            .unwrap()
            .push((format!("{kind:?} {name} 0x{object_id:x}"), a));
        drop(outer);
        sh.in_flight.lock().unwrap().insert((t, o), (kind, b));
        let sync = unk.query::<dyn ISynchronize>().expect("ISynchronize");
        let cancel = unk
            .query::<dyn ICancelMethodCalls>()
            .expect("ICancelMethodCalls");
        drop(unk);

        let calls = 1 + rng.below(4);
        for n in 0..calls {
            let id = (object_id << 8) | n;
            // The sample server's calls are told apart by their length: unique per object.
            let cb = n as u32 + 1;
            let key = match call {
                Call::Soak(_) => (id, 0),
                Call::Stream(_) => (object_id, cb as u64),
            };
            let hr = call.begin(id, cb);
            match hr {
                S_OK => {}
                E_FAIL if aggregated => {
                    sh.fate("Begin_ failed: the outer's Reset failed");
                    continue;
                }
                other => {
                    sh.violation(format!("{kind:?} call {id:#x}: Begin_ returned {other:?}"));
                    break;
                }
            }
            let never = kind == Kind::Never;
            let plan = loop {
                let p = match rng.below(100) {
                    0..=34 => Plan::WaitThenFinish,
                    35..=49 => Plan::BlockingFinish,
                    50..=69 => Plan::Cancel0,
                    70..=71 => Plan::Cancel1,
                    72..=84 => Plan::CancelInfinite,
                    _ => Plan::Abandon,
                };
                let fits = match p {
                    // A server that never completes: only a cancel or a release ends the call.
                    Plan::WaitThenFinish | Plan::CancelInfinite => !never,
                    Plan::BlockingFinish => !never && mode == FinishMode::Blocking,
                    Plan::Cancel1 => sh
                        .one_second_cancels
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok(),
                    _ => true,
                };
                if fits {
                    break p;
                }
            };
            let mut locally_cancelled = false;
            let mut cancelled = false;
            match plan {
                Plan::Abandon => {
                    sh.fate("abandoned (released during the call)");
                    break;
                }
                Plan::WaitThenFinish => loop {
                    match sync.wait(0, rng.below(3) as u32) {
                        S_OK => break,
                        RPC_S_CALLPENDING => continue,
                        other => {
                            sh.violation(format!("{kind:?} call {id:#x}: Wait returned {other:?}"));
                            break;
                        }
                    }
                },
                Plan::BlockingFinish => {}
                Plan::Cancel0 | Plan::Cancel1 | Plan::CancelInfinite => {
                    let s = match plan {
                        Plan::Cancel0 => 0,
                        Plan::Cancel1 => 1,
                        _ => RPC_C_CANCEL_INFINITE_TIMEOUT,
                    };
                    cancelled = true;
                    match cancel.cancel(s) {
                        S_OK if s != RPC_C_CANCEL_INFINITE_TIMEOUT => locally_cancelled = true,
                        RPC_E_CALL_COMPLETE => {}
                        other => sh.violation(format!(
                            "{kind:?} call {id:#x}: Cancel({s}) returned {other:?}"
                        )),
                    }
                }
            }
            let (hr, payload) = loop {
                let r = call.finish();
                if r.0 == RPC_S_CALLPENDING && mode == FinishMode::Strict {
                    thread::yield_now();
                    continue;
                }
                break r;
            };
            check_result(
                &sh,
                kind,
                aggregated,
                id,
                cb,
                key,
                locally_cancelled,
                cancelled,
                hr,
                payload,
            );
            if rng.chance(3) {
                // A second Finish_: the result is handed back once.
                let (hr2, _) = call.finish();
                if hr2 != RPC_E_CALL_COMPLETE {
                    sh.violation(format!(
                        "{kind:?} call {id:#x}: a second Finish_ returned {hr2:?}"
                    ));
                }
            }
        }
        drop((sync, cancel, call));
        sh.in_flight.lock().unwrap().remove(&(t, o));
        sh.progress.fetch_add(1, Ordering::SeqCst);
    }
}

#[allow(clippy::too_many_arguments)]
fn check_result(
    sh: &Shared,
    kind: Kind,
    aggregated: bool,
    id: u64,
    cb: u32,
    key: (u64, u64),
    locally_cancelled: bool,
    cancelled: bool,
    hr: HRESULT,
    payload: Payload,
) {
    let what = format!(
        "{kind:?}{} call {id:#x}",
        if aggregated { " (aggregated)" } else { "" }
    );
    let empty = match &payload {
        Payload::Token(t) => t.id() == Token::NONE,
        Payload::Bytes(b) => b.is_empty(),
    };
    if locally_cancelled {
        if hr != RPC_E_CALL_CANCELED || !empty {
            sh.violation(format!(
                "{what}: cancelled locally, yet Finish_ returned {hr:?}"
            ));
        }
        sh.fate("cancelled locally");
        return;
    }
    match (hr, &payload) {
        (S_OK, Payload::Token(t)) if t.id() == id => {}
        (S_OK, Payload::Bytes(b))
            if b.len() == cb as usize && b.windows(2).all(|w| w[1] == w[0].wrapping_add(1)) => {}
        (S_OK, _) => {
            let got = match &payload {
                Payload::Token(t) => format!("token {:#x}", t.id()),
                Payload::Bytes(b) => format!("{} bytes (a call of length {cb})", b.len()),
            };
            sh.violation(format!(
                "{what}: Finish_ returned another call's result: {got}"
            ));
            return;
        }
        (RPC_E_CALL_CANCELED, Payload::Bytes(_)) if cancelled => {
            // The sample server heard the cancel in time and stored RPC_E_CALL_CANCELED.
            sh.fate("cancelled by the server");
            return;
        }
        (E_FAIL | RPC_E_SERVER_DIED | RPC_E_SERVERFAULT, _) if empty => {
            sh.fate("failed");
            return;
        }
        // The sample server was still busy with an earlier, locally cancelled call.
        (RPC_S_CALLPENDING, Payload::Bytes(_)) if empty => {
            sh.fate("failed: the sample server was busy");
            return;
        }
        _ => {
            sh.violation(format!(
                "{what}: Finish_ returned {hr:?}{}",
                if empty { "" } else { " with out-parameters" }
            ));
            return;
        }
    }
    if !sh.delivered.lock().unwrap().insert(key) {
        sh.violation(format!("{what}: its result was delivered twice"));
    }
    sh.fate("delivered");
}

fn run(threads: usize, objects: u64, stall: Duration, bound: Option<Duration>, seed: u64) {
    println!("soak seed {seed} (repeat with COMASYNC_SOAK_SEED={seed})");
    // The synchronous method's deliberate panics are expected: keep them out of the output.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let deliberate = info
            .payload()
            .downcast_ref::<&str>()
            .is_some_and(|m| m.ends_with("(on purpose)"));
        if !deliberate {
            default_hook(info);
        }
    }));
    let start = Instant::now();
    let pool = Pool::new(2);
    let object = SoakServer_Impl::new(SoakServer, None);
    let object_weak = Arc::downgrade(&object);
    let sync_handler =
        SyncMethodHandler::<ISoakCalls>::new(ComPtr::new(object as Arc<dyn ISoak>), pool.clone());
    let shared_manual = ManualHandler::<ISoakCalls>::new();
    let stop = Arc::new(AtomicBool::new(false));
    let servers: Vec<_> = (0..2)
        .map(|i| {
            let (h, stop) = (shared_manual.clone(), stop.clone());
            thread::spawn(move || serve_manual(h, seed ^ (0xC0FFEE + i), stop))
        })
        .collect();
    let sh = Arc::new(Shared {
        seed,
        servers: Servers {
            pool,
            sync_handler,
            shared_manual,
            samples: Mutex::new(Vec::new()),
            never: Mutex::new(Vec::new()),
        },
        in_flight: Mutex::new(HashMap::new()),
        all: Mutex::new(Vec::new()),
        delivered: Mutex::new(HashSet::new()),
        violations: Mutex::new(Vec::new()),
        fates: Mutex::new(HashMap::new()),
        outer_stats: Arc::new(OuterStats::default()),
        progress: AtomicU64::new(0),
        one_second_cancels: AtomicU32::new(if bound.is_some() { 3 } else { 50 }),
    });
    let done_rx = spawn_clients(threads, |t| {
        let sh = sh.clone();
        move || client(t, objects, sh)
    });

    // The watchdog.
    let mut finished = 0;
    let mut last = (0, Instant::now());
    while finished < threads {
        match done_rx.recv_timeout(Duration::from_millis(100)) {
            Ok(Ok(())) => finished += 1,
            Ok(Err(msg)) => panic!("seed {seed}: a client thread panicked: {msg}"),
            Err(_) => {}
        }
        let p = sh.progress.load(Ordering::SeqCst);
        if p != last.0 {
            last = (p, Instant::now());
        }
        let over = bound.is_some_and(|b| start.elapsed() > b);
        if last.1.elapsed() > stall || over {
            let mut report: Vec<String> = sh
                .in_flight
                .lock()
                .unwrap()
                .iter()
                .map(|((t, o), (kind, w))| {
                    let alive = if w() { "alive" } else { "freed" };
                    format!("  thread {t}, object {o}: {kind:?}, {alive}")
                })
                .collect();
            report.sort();
            panic!(
                "seed {seed}: watchdog: {} ({p} call objects done); in progress:\n{}\nviolations so far: {:#?}",
                if over { "the run exceeded its bound" } else { "no progress" },
                report.join("\n"),
                sh.violations.lock().unwrap()
            );
        }
    }
    stop.store(true, Ordering::SeqCst);
    for s in servers {
        s.join().expect("a server thread panicked");
    }

    // Quiescence: pool jobs and server threads may still hold the last references for a
    // moment; wait (bounded) for every weak reference to die, then report what did not.
    let Shared {
        servers,
        all,
        violations,
        fates,
        outer_stats,
        ..
    } = match Arc::try_unwrap(sh) {
        Ok(sh) => sh,
        Err(_) => panic!("seed {seed}: the shared state is still referenced"),
    };
    let mut weaks: Vec<(String, Alive)> = all.into_inner().unwrap();
    weaks.extend(
        servers
            .samples
            .into_inner()
            .unwrap()
            .into_iter()
            .map(|w| ("a SampleServer object".to_string(), w)),
    );
    let handler_weak = Arc::downgrade(&servers.sync_handler);
    let manual_weak = Arc::downgrade(&servers.shared_manual);
    let never = servers.never.into_inner().unwrap();
    drop((servers.pool, servers.sync_handler, servers.shared_manual));
    let quiet_by = Instant::now() + Duration::from_secs(5);
    let leaks = || {
        let mut l: Vec<String> = weaks
            .iter()
            .filter(|(_, w)| w())
            .map(|(n, _)| n.clone())
            .collect();
        l.extend(
            never
                .iter()
                .filter(|w| w.strong_count() > 0)
                .map(|_| "a never-served ManualHandler".to_string()),
        );
        if handler_weak.strong_count() > 0 {
            l.push("the SyncMethodHandler".into());
        }
        if manual_weak.strong_count() > 0 {
            l.push("the shared ManualHandler".into());
        }
        if object_weak.strong_count() > 0 {
            l.push("the synchronous server object".into());
        }
        let (args, tokens) = (LIVE_ARGS.load(Ordering::SeqCst), live_tokens());
        if args > 0 {
            l.push(format!("{args} in-parameters"));
        }
        if tokens > 0 {
            l.push(format!("{tokens} out-parameters"));
        }
        l
    };
    let mut leaked = leaks();
    while !leaked.is_empty() && Instant::now() < quiet_by {
        thread::yield_now();
        leaked = leaks();
    }

    let fates = fates.into_inner().unwrap();
    let total: u64 = fates.values().sum();
    let st = &outer_stats;
    println!(
        "seed {seed}: {threads} threads, {} call objects, {total} calls in {:.1?}: {fates:?}; outers: {} resets, {} signals, {} failed",
        threads as u64 * objects,
        start.elapsed(),
        st.resets.load(Ordering::SeqCst),
        st.signals.load(Ordering::SeqCst),
        st.failed.load(Ordering::SeqCst),
    );
    let mut problems = violations.into_inner().unwrap();
    let stale = st.stale_signals.load(Ordering::SeqCst);
    if stale > 0 {
        problems.push(format!(
            "{stale} outer Signal(s) arrived while the call was pending (a stale Signal after the next call's Reset)"
        ));
    }
    let revived = st.signals_after_release.load(Ordering::SeqCst);
    if revived > 0 {
        problems.push(format!(
            "{revived} outer Signal(s) after the outer's final release"
        ));
    }
    if !leaked.is_empty() {
        let mut counts: HashMap<String, usize> = HashMap::new();
        for l in leaked {
            let k = l.split(" 0x").next().unwrap_or(&l).to_string();
            *counts.entry(k).or_default() += 1;
        }
        let mut counts: Vec<String> = counts
            .into_iter()
            .map(|(k, n)| {
                if k.starts_with(|c: char| c.is_ascii_digit()) {
                    k
                } else {
                    format!("{n} × {k}")
                }
            })
            .collect();
        counts.sort();
        problems.push(format!(
            "not freed after everything was released: {counts:?}"
        ));
    }
    assert!(
        problems.is_empty(),
        "seed {seed}: {} problem(s):\n  {}",
        problems.len(),
        problems.join("\n  ")
    );
}

#[test]
fn random_calls_on_every_kind_of_server_deliver_each_result_once_never_hang_and_leak_nothing() {
    let seed = std::env::var("COMASYNC_SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_nanos() as u64)
        });
    if std::env::var_os("COMASYNC_SOAK_LONG").is_some() {
        run(8, 20_000, Duration::from_secs(60), None, seed);
    } else {
        run(
            8,
            1_000,
            Duration::from_secs(20),
            Some(Duration::from_secs(60)),
            seed,
        );
    }
}
