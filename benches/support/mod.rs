//! What the benchmarks (`benches/performance.rs`, `benches/memory.rs`) share: a one-method test
//! interface, the call objects under test, the ping-pong baselines, the 100,000-call scenario
//! (P5), process CPU time, and small statistics.
//!
//! Included with `#[path]`-free `mod support;` from each bench target; not every target uses
//! every item.

#![allow(dead_code)]

mod hosted;

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use comasync::call::{
    create_call, AsyncInterface, CallHandler, FinishMode, InlineHandler, ManualHandler, Pool,
    ServerCall, SyncMethodHandler,
};
use comasync::hresult::{E_NOINTERFACE, HRESULT, S_OK};
use comasync::sync::{ISynchronize, INFINITE};
use comasync::unknown::{ComPtr, IUnknown, Interface};

/// The benchmarks' interface: one method with a `u32` in and a `u32` out, so that the
/// user's parameters cost nothing and allocate nothing.
#[comasync::interface(
    iid = "{14954F9D-50CA-4EB1-BDFC-0019BE386916}",
    async_iid = "{8915D44F-2A9E-4097-B13D-D1D1A7BE55AE}"
)]
pub trait IBench {
    /// Returns `n + 1`.
    #[out(m)]
    fn ping(&self, n: u32) -> (HRESULT, u32);
}

/// The server object: `Ping(n)` returns `n + 1`, after waiting for its gate to open (if it has
/// one) — so that P5 can hold the workers while it begins its calls.
pub struct Echo {
    gate: Option<Arc<Gate>>,
}

impl Echo {
    pub fn create(gate: Option<Arc<Gate>>) -> ComPtr<dyn IBench> {
        ComPtr::new(Arc::new(Echo { gate }) as Arc<dyn IBench>)
    }
}

impl IUnknown for Echo {
    fn query_interface(&self, _iid: &comasync::guid::IID, _ppv: &mut dyn std::any::Any) -> HRESULT {
        E_NOINTERFACE
    }
    fn add_ref(&self) -> u32 {
        1
    }
    fn release(&self) -> u32 {
        1
    }
}

impl IBench for Echo {
    fn ping(&self, n: u32) -> (HRESULT, u32) {
        if let Some(g) = &self.gate {
            g.pass();
        }
        (S_OK, n.wrapping_add(1))
    }
}

/// A gate that server methods wait at until it is opened.
#[derive(Default)]
pub struct Gate {
    open: parking_lot::Mutex<bool>,
    cv: parking_lot::Condvar,
}

impl Gate {
    pub fn new() -> Arc<Gate> {
        Arc::new(Gate::default())
    }
    pub fn pass(&self) {
        let mut g = self.open.lock();
        while !*g {
            self.cv.wait(&mut g);
        }
    }
    pub fn open(&self) {
        *self.open.lock() = true;
        self.cv.notify_all();
    }
}

/// A new call object served by `handler`, as `CreateCall` makes it.
pub fn call_with(handler: Arc<dyn CallHandler<IBenchCalls>>) -> ComPtr<dyn AsyncIBench> {
    let mut slot: Option<ComPtr<dyn AsyncIBench>> = None;
    let iid = <dyn AsyncIBench as Interface>::IID;
    let hr = create_call::<IBenchCalls>(
        &iid,
        None,
        &iid,
        Some(&mut slot),
        handler,
        FinishMode::Blocking,
    );
    assert_eq!(hr, S_OK);
    slot.expect("CreateCall wrote no pointer")
}

/// The `InlineHandler` that completes `Ping` inside `Begin_`.
pub fn inline_handler() -> Arc<dyn CallHandler<IBenchCalls>> {
    Arc::new(InlineHandler(|input: IBenchIn| {
        let IBenchIn::Ping { n } = input;
        (
            S_OK,
            IBenchOut::Ping {
                m: n.wrapping_add(1),
            },
        )
    }))
}

/// A call object and its `ISynchronize`, reused call after call.
pub struct Call {
    pub call: ComPtr<dyn AsyncIBench>,
    pub sync: ComPtr<dyn ISynchronize>,
}

impl Call {
    pub fn new(handler: Arc<dyn CallHandler<IBenchCalls>>) -> Call {
        let call = call_with(handler);
        let sync = call.query::<dyn ISynchronize>().unwrap();
        Call { call, sync }
    }

    /// One call: `Begin_Ping`, `Wait(timeout)`, `Finish_Ping`.
    #[inline]
    pub fn round_trip(&self, n: u32, timeout_ms: u32) -> u32 {
        let hr = self.call.begin_ping(n);
        debug_assert_eq!(hr, S_OK);
        let hr = self.sync.wait(0, timeout_ms);
        debug_assert_eq!(hr, S_OK);
        let (hr, m) = self.call.finish_ping();
        debug_assert_eq!(hr, S_OK);
        let _ = hr;
        m
    }
}

// ---------------------------------------------------------------------------------------
// P1: cross-thread round trips. Each kind is a session: started, driven, then stopped (its
// server thread ends), so that no spinning or parked thread outlives its measurement.

/// The cross-thread round trips P1 compares.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Trip {
    /// Pure spin on an `AtomicU32` both ways: the floor (two cores busy the whole time).
    Spin,
    /// `std::thread::park`/`unpark` both ways, no spinning.
    Park,
    /// Two crossbeam `bounded(1)` channels: the baseline of the goal.
    Crossbeam,
    /// A call object whose `SyncMethodHandler` runs the method on a 1-worker `Pool` (the
    /// path `StdCallFactory` and `SimpleStream` use): Begin_, Wait(INFINITE), Finish_.
    CallPool,
    /// A call object whose handler sends each call down a crossbeam channel to a dedicated
    /// server thread (a server of the user's own, with no boxing and no pool).
    CallChannel,
    /// A call object whose `ManualHandler` queue is served by a dedicated thread
    /// (`take_wait`, then `complete`): a server driven by hand.
    CallManual,
    /// A server-side call object hosted by `ServerCallHost`, signalling from a 1-worker
    /// `Pool` (the sample server's shape).
    CallHost,
}

impl Trip {
    pub const ALL: [Trip; 7] = [
        Trip::Spin,
        Trip::Park,
        Trip::Crossbeam,
        Trip::CallPool,
        Trip::CallChannel,
        Trip::CallManual,
        Trip::CallHost,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Trip::Spin => "spin ping-pong (floor)",
            Trip::Park => "park/unpark ping-pong",
            Trip::Crossbeam => "crossbeam bounded(1) ping-pong",
            Trip::CallPool => "call: SyncMethodHandler on 1-worker Pool",
            Trip::CallChannel => "call: channel to a dedicated server thread",
            Trip::CallManual => "call: ManualHandler + server thread",
            Trip::CallHost => "call: ServerCallHost, server signals from a Pool",
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            Trip::Spin => "spin_floor",
            Trip::Park => "park_unpark",
            Trip::Crossbeam => "crossbeam_bounded1",
            Trip::CallPool => "call_pool1",
            Trip::CallChannel => "call_channel_thread",
            Trip::CallManual => "call_manual_thread",
            Trip::CallHost => "call_server_call_host",
        }
    }

    pub fn start(self) -> Session {
        match self {
            Trip::Spin => Session::spin(),
            Trip::Park => Session::park(),
            Trip::Crossbeam => Session::crossbeam(),
            Trip::CallPool => {
                let handler =
                    SyncMethodHandler::<IBenchCalls>::new(Echo::create(None), pinned_pool());
                Session::Call(Call::new(handler), None)
            }
            Trip::CallHost => Session::Call(Call::new(hosted::host_on(pinned_pool())), None),
            Trip::CallChannel => {
                let (tx, rx) = crossbeam_channel::unbounded();
                let stop = Arc::new(AtomicBool::new(false));
                let server = {
                    let stop = stop.clone();
                    thread::spawn(move || {
                        pin_server();
                        let echo = Echo::create(None);
                        while !stop.load(Ordering::Acquire) {
                            if let Ok((call, input)) = rx.recv_timeout(Duration::from_millis(20)) {
                                let (hr, out) = IBenchCalls::invoke_sync(&*echo, input);
                                ServerCall::complete(call, hr, out);
                            }
                        }
                    })
                };
                Session::Call(
                    Call::new(Arc::new(ChannelHandler(tx))),
                    Some((stop, server)),
                )
            }
            Trip::CallManual => {
                let handler = ManualHandler::<IBenchCalls>::new();
                let stop = Arc::new(AtomicBool::new(false));
                let server = {
                    let (handler, stop) = (handler.clone(), stop.clone());
                    thread::spawn(move || {
                        pin_server();
                        let echo = Echo::create(None);
                        while !stop.load(Ordering::Acquire) {
                            if let Some((call, input)) = handler.take_wait(20) {
                                let (hr, out) = IBenchCalls::invoke_sync(&*echo, input);
                                call.complete(hr, out);
                            }
                        }
                    })
                };
                Session::Call(Call::new(handler), Some((stop, server)))
            }
        }
    }
}

/// A 1-worker pool whose worker is pinned to the server CPU (it pins itself, and says so
/// before the first trip).
fn pinned_pool() -> Arc<Pool> {
    let pool = Pool::new(1);
    let (tx, rx) = crossbeam_channel::bounded(1);
    pool.execute(move || {
        pin_server();
        let _ = tx.send(());
    });
    let _ = rx.recv();
    pool
}

/// A server of the user's own: each begun call goes down a channel to its thread.
pub struct ChannelHandler(crossbeam_channel::Sender<(ServerCall<IBenchCalls>, IBenchIn)>);

impl CallHandler<IBenchCalls> for ChannelHandler {
    fn begin(&self, call: ServerCall<IBenchCalls>, input: IBenchIn) {
        let _ = self.0.send((call, input));
    }
}

pub enum Session {
    Spin {
        turn: Arc<AtomicU32>,
        stop: Arc<AtomicBool>,
        server: Option<JoinHandle<()>>,
    },
    Park {
        turn: Arc<AtomicU32>,
        stop: Arc<AtomicBool>,
        server: Option<JoinHandle<()>>,
    },
    Crossbeam {
        tx: Option<crossbeam_channel::Sender<u32>>,
        rx: crossbeam_channel::Receiver<u32>,
        server: Option<JoinHandle<()>>,
    },
    Call(Call, Option<(Arc<AtomicBool>, JoinHandle<()>)>),
}

impl Session {
    fn spin() -> Session {
        let turn = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let server = {
            let (turn, stop) = (turn.clone(), stop.clone());
            thread::spawn(move || {
                pin_server();
                loop {
                    while turn.load(Ordering::Acquire) != 1 {
                        if stop.load(Ordering::Relaxed) {
                            return;
                        }
                        std::hint::spin_loop();
                    }
                    turn.store(0, Ordering::Release);
                }
            })
        };
        Session::Spin {
            turn,
            stop,
            server: Some(server),
        }
    }

    fn park() -> Session {
        let turn = Arc::new(AtomicU32::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let client = thread::current();
        let server = {
            let (turn, stop) = (turn.clone(), stop.clone());
            thread::spawn(move || {
                pin_server();
                loop {
                    while turn.load(Ordering::Acquire) != 1 {
                        if stop.load(Ordering::Acquire) {
                            return;
                        }
                        thread::park();
                    }
                    turn.store(0, Ordering::Release);
                    client.unpark();
                }
            })
        };
        Session::Park {
            turn,
            stop,
            server: Some(server),
        }
    }

    fn crossbeam() -> Session {
        let (tx, srx) = crossbeam_channel::bounded::<u32>(1);
        let (stx, rx) = crossbeam_channel::bounded::<u32>(1);
        let server = thread::spawn(move || {
            pin_server();
            for v in srx {
                if stx.send(v.wrapping_add(1)).is_err() {
                    return;
                }
            }
        });
        Session::Crossbeam {
            tx: Some(tx),
            rx,
            server: Some(server),
        }
    }

    /// One round trip.
    #[inline]
    pub fn trip(&self, n: u32) -> u32 {
        match self {
            Session::Spin { turn, .. } => {
                turn.store(1, Ordering::Release);
                while turn.load(Ordering::Acquire) != 0 {
                    std::hint::spin_loop();
                }
                n
            }
            Session::Park { turn, server, .. } => {
                turn.store(1, Ordering::Release);
                server.as_ref().unwrap().thread().unpark();
                while turn.load(Ordering::Acquire) != 0 {
                    thread::park();
                }
                n
            }
            Session::Crossbeam { tx, rx, .. } => {
                tx.as_ref().unwrap().send(n).unwrap();
                rx.recv().unwrap()
            }
            Session::Call(c, _) => c.round_trip(n, INFINITE),
        }
    }

    /// `iters` round trips; the wall time and the process CPU time they took.
    pub fn run(&self, iters: u64) -> (Duration, Duration) {
        let cpu = cpu_now();
        let t = Instant::now();
        let mut n = 0u32;
        for _ in 0..iters {
            n = std::hint::black_box(self.trip(n));
        }
        (t.elapsed(), cpu_now().saturating_sub(cpu))
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        match self {
            Session::Spin { stop, server, .. } => {
                stop.store(true, Ordering::Release);
                let _ = server.take().unwrap().join();
            }
            Session::Park { stop, server, .. } => {
                stop.store(true, Ordering::Release);
                let s = server.take().unwrap();
                s.thread().unpark();
                let _ = s.join();
            }
            Session::Crossbeam { tx, server, .. } => {
                drop(tx.take());
                let _ = server.take().unwrap().join();
            }
            Session::Call(_, server) => {
                if let Some((stop, server)) = server.take() {
                    stop.store(true, Ordering::Release);
                    let _ = server.join();
                }
            }
        }
    }
}

/// What [`p1_interleaved`] measured for one kind of trip: per-chunk wall and CPU nanoseconds
/// per round trip.
#[derive(Clone, Debug, Default)]
pub struct TripTimes {
    pub wall: Vec<f64>,
    pub cpu: Vec<f64>,
}

/// P1, measured so that a shared, busy machine hurts every kind of trip alike (client on CPU 0,
/// servers on CPU 1, see [`pin_to`]): every session
/// is started once (their servers park when idle, except the spin floor's, which is started
/// afresh for each of its chunks), then `rounds` rounds each run a chunk of `chunk` round trips
/// of every kind, in rotating order, after a few untimed trips that wake its server up.
/// Subject and baseline are thus measured milliseconds apart, many times over.
pub fn p1_interleaved(rounds: usize, chunk: u64) -> Vec<(Trip, TripTimes)> {
    pin_to(CLIENT_CPU);
    let sessions: Vec<(Trip, Option<Session>)> = Trip::ALL
        .iter()
        .map(|&t| (t, (t != Trip::Spin).then(|| t.start())))
        .collect();
    let mut out: Vec<(Trip, TripTimes)> = Trip::ALL
        .iter()
        .map(|&t| (t, TripTimes::default()))
        .collect();
    let warm = (chunk / 10).max(5);
    for r in 0..rounds {
        for j in 0..sessions.len() {
            let i = (j + r) % sessions.len();
            let fresh;
            let s = match &sessions[i].1 {
                Some(s) => s,
                None => {
                    fresh = sessions[i].0.start();
                    &fresh
                }
            };
            s.run(warm);
            let (w, c) = s.run(chunk);
            out[i].1.wall.push(w.as_nanos() as f64 / chunk as f64);
            out[i].1.cpu.push(c.as_nanos() as f64 / chunk as f64);
        }
    }
    drop(sessions);
    unpin();
    out
}

/// Pins the calling thread to CPU `cpu` (P1 runs its client on CPU 0 and every server on CPU
/// 1, so that no kind of trip is measured with both its threads on one core while another
/// gets two: on a shared 2-core machine the scheduler's placement otherwise decides the
/// figures). `false` where that CPU is not available; then nothing changed.
pub fn pin_to(cpu: usize) -> bool {
    use nix::sched::{sched_setaffinity, CpuSet};
    let mut only = CpuSet::new();
    only.set(cpu).is_ok() && sched_setaffinity(nix::unistd::Pid::from_raw(0), &only).is_ok()
}

fn pin_server() {
    pin_to(SERVER_CPU);
}

/// Lets the calling thread run on every CPU again (after [`pin_to`]).
pub fn unpin() {
    use nix::sched::{sched_setaffinity, CpuSet};
    // Every CPU there may be: the kernel keeps those that exist.
    let mut all = CpuSet::new();
    for cpu in 0..CpuSet::count() {
        let _ = all.set(cpu);
    }
    let _ = sched_setaffinity(nix::unistd::Pid::from_raw(0), &all);
}

/// The CPU P1's servers run on, and its client's.
pub const SERVER_CPU: usize = 1;
pub const CLIENT_CPU: usize = 0;

/// The process's CPU time (all threads, user + system), from
/// `clock_gettime(CLOCK_PROCESS_CPUTIME_ID)` through the `nix` crate.
pub fn cpu_now() -> Duration {
    let t = nix::time::clock_gettime(nix::time::ClockId::CLOCK_PROCESS_CPUTIME_ID)
        .expect("CLOCK_PROCESS_CPUTIME_ID");
    Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
}

// ---------------------------------------------------------------------------------------
// P5: many outstanding calls on a fixed number of threads.

/// The threads of this process now (from `/proc/self/status`), or 0 where that is unknown.
pub fn thread_count() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("Threads:"))
                .and_then(|n| n.trim().parse().ok())
        })
        .unwrap_or(0)
}

/// What one run of the P5 scenario measured.
#[derive(Clone, Copy, Debug, Default)]
pub struct Outstanding {
    /// Creating the call objects (`CreateCall`, each a fresh allocation; zero for the channel
    /// baseline, which creates each reply channel as it sends).
    pub create: Duration,
    /// Beginning every call (all outstanding at the end).
    pub begin: Duration,
    /// Opening the gate and finishing every call.
    pub finish: Duration,
    /// Heap bytes held per call once the call objects exist (idle), and once every call is
    /// outstanding, as `heap` reported them (0 when it reports nothing).
    pub idle_bytes: f64,
    pub pending_bytes: f64,
    /// The process's threads when the scenario started (its pool already running), and while
    /// the calls were outstanding.
    pub threads_before: usize,
    pub threads_during: usize,
}

/// P5: `n` call objects served by `SyncMethodHandler` on `pool`, each with one call
/// outstanding (the workers are held at a gate until every call is begun), then all
/// finished. `heap()` reports the bytes allocated now (the memory bench and tests/alloc.rs
/// pass their counting allocator's figure; the timing bench passes `|| 0`).
pub fn outstanding_calls(n: usize, pool: &Arc<Pool>, heap: &dyn Fn() -> isize) -> Outstanding {
    let threads_before = thread_count();
    let gate = Gate::new();
    let handler: Arc<dyn CallHandler<IBenchCalls>> =
        SyncMethodHandler::<IBenchCalls>::new(Echo::create(Some(gate.clone())), pool.clone());
    let mut calls: Vec<ComPtr<dyn AsyncIBench>> = Vec::with_capacity(n);
    let h0 = heap();
    let t = Instant::now();
    for _ in 0..n {
        calls.push(call_with(handler.clone()));
    }
    let create = t.elapsed();
    let h1 = heap();
    let t = Instant::now();
    for (i, c) in calls.iter().enumerate() {
        let hr = c.begin_ping(i as u32);
        assert_eq!(hr, S_OK);
    }
    let begin = t.elapsed();
    let h2 = heap();
    let threads_during = thread_count();
    let t = Instant::now();
    gate.open();
    for (i, c) in calls.iter().enumerate() {
        let (hr, m) = c.finish_ping();
        assert_eq!((hr, m), (S_OK, (i as u32).wrapping_add(1)));
    }
    let finish = t.elapsed();
    drop(calls);
    Outstanding {
        create,
        begin,
        finish,
        idle_bytes: (h1 - h0) as f64 / n as f64,
        pending_bytes: (h2 - h0) as f64 / n as f64,
        threads_before,
        threads_during,
    }
}

/// P5's baseline: the same `n` requests to the same pool, each answered through its own
/// crossbeam `bounded(1)` reply channel (what a hand-rolled "future" would use).
pub fn outstanding_channels(n: usize, pool: &Arc<Pool>, heap: &dyn Fn() -> isize) -> Outstanding {
    let threads_before = thread_count();
    let gate = Gate::new();
    let mut replies: Vec<crossbeam_channel::Receiver<u32>> = Vec::with_capacity(n);
    let h0 = heap();
    let t = Instant::now();
    for i in 0..n {
        let (tx, rx) = crossbeam_channel::bounded::<u32>(1);
        let gate = gate.clone();
        pool.execute(move || {
            gate.pass();
            let _ = tx.send((i as u32).wrapping_add(1));
        });
        replies.push(rx);
    }
    let begin = t.elapsed();
    let h2 = heap();
    let threads_during = thread_count();
    let t = Instant::now();
    gate.open();
    for (i, rx) in replies.iter().enumerate() {
        assert_eq!(rx.recv().unwrap(), (i as u32).wrapping_add(1));
    }
    let finish = t.elapsed();
    drop(replies);
    Outstanding {
        create: Duration::ZERO,
        begin,
        finish,
        idle_bytes: 0.0,
        pending_bytes: (h2 - h0) as f64 / n as f64,
        threads_before,
        threads_during,
    }
}

/// Where `benches/memory.rs` leaves its summary lines for `benches/performance.rs`: beside
/// the bench executables' `deps/` folder (`target/release/comasync-memory.txt`).
pub fn memory_summary_path() -> std::path::PathBuf {
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap_or_else(|| std::path::Path::new("."));
    dir.join("comasync-memory.txt")
}

// ---------------------------------------------------------------------------------------
// Statistics.

pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}
