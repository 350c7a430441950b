//! The worker pool that runs servers' work: a fixed number of threads fed by one
//! crossbeam channel, and a hand-off spot for a worker that is spinning for its next job.
//! Never a thread per call.
//!
//! Workers block in `recv` (crossbeam spins briefly, then parks), so an idle pool costs no
//! CPU. Before that, a worker that found the queue empty spins for a few hints
//! (`POOL_SPINS`, ~1 µs here) announcing itself on the pool's spot: a job sent while the queue is
//! empty and a worker spins is handed over there, on one cache line both sides touch, instead
//! of going through the channel's tail index and block slot (docs/performance.md, P1).
//! Dropping the last handle to a pool closes its channel; its workers finish the queued jobs
//! and exit.
//!
//! A job is an `Arc` to a [`PoolTask`], queued without allocating by [`Pool::execute_task`];
//! a call object whose call waits in it for a worker (how `SyncMethodHandler`'s calls and a
//! proxy's calls to an MTA object are queued: `CallHandler::pool`), also without allocating;
//! or a closure given to [`Pool::execute`], boxed (one allocation).
//!
//! # Invariants
//!
//! * **No job is stranded.** The spot takes a job only while its lock shows a worker counted
//!   as spinning, and a spinning worker stops spinning only under that lock, taking the job
//!   the spot holds: whoever offers, some worker that has not yet parked takes it. A worker
//!   running a job is never counted, so a job cannot wait on the spot behind a worker that is
//!   busy (or blocked on that very job) while another worker sleeps.
//! * **Jobs from one thread start in the order they were sent** (on a one-worker pool, run in
//!   that order): a job is offered to the spot only when the queue is empty, and a worker takes
//!   the spot's job before anything queued after it.
//! * A worker holds at most one job at a time: leaving the spot it takes the spot's job and
//!   leaves the queue alone, or finds the spot empty and then takes from the queue.

use std::sync::{Arc, OnceLock};
use std::thread;

use crate::sync::prim::{
    channel, spawn, AtomicU32, Mutex, Ordering, Receiver, Sender, TryRecvError, POOL_SPINS,
};

/// Work a pool runs without allocating per job: an object that knows what to do next (for
/// example, a handler that runs its oldest queued call).
///
/// ```
/// use std::sync::{mpsc, Arc};
/// use comasync::call::{Pool, PoolTask};
///
/// struct Ping(mpsc::Sender<&'static str>);
/// impl PoolTask for Ping {
///     fn run(&self) {
///         self.0.send("pong").unwrap();
///     }
/// }
/// let (tx, rx) = mpsc::channel();
/// let pool = Pool::new(1);
/// let task = Arc::new(Ping(tx));
/// assert!(pool.execute_task(task.clone())); // queued without allocating
/// assert!(pool.execute_task(task)); // the same task, queued again
/// assert_eq!([rx.recv().unwrap(), rx.recv().unwrap()], ["pong", "pong"]);
/// ```
pub trait PoolTask: Send + Sync + 'static {
    /// Does one unit of work, on a worker thread.
    fn run(&self);
}

/// A call object whose call waits in it for a worker (`CallHandler::pool`): queued as
/// itself, without allocating. Crate-private, so that no user can run a call object's call.
pub(crate) trait QueuedCall: Send + Sync + 'static {
    /// Runs the call waiting in the object, if it is still wanted, and completes it.
    fn run_queued(&self);
}

/// One queued job: a task or a call object (queued without allocating), or a closure
/// (boxed once).
enum Job {
    Task(Arc<dyn PoolTask>),
    Call(Arc<dyn QueuedCall>),
    Once(Box<dyn FnOnce() + Send>),
}

impl Job {
    fn run(self) {
        match self {
            Job::Task(task) => task.run(),
            Job::Call(call) => call.run_queued(),
            Job::Once(f) => f(),
        }
    }
}

/// Where a job is handed straight to a worker that is spinning for one (see the module
/// documentation). One cache line: the lock-free hint, the lock and what it guards.
#[repr(C, align(64))]
struct Spot {
    /// A copy of `inner` for lock-free readers, written under the lock: the number of
    /// spinning workers, with `FULL` while a job waits. Only a hint: every decision is taken
    /// again under the lock.
    hint: AtomicU32,
    inner: Mutex<SpotInner>,
}

struct SpotInner {
    /// The job handed over, until a spinning worker takes it.
    job: Option<Job>,
    /// Workers spinning for a job now (announced by `enter`, withdrawn by `leave`).
    spinning: u32,
}

/// `Spot::hint`'s bit for "a job waits".
const FULL: u32 = 1 << 31;

impl Spot {
    fn new() -> Spot {
        Spot {
            hint: AtomicU32::new(0),
            inner: Mutex::new(SpotInner {
                job: None,
                spinning: 0,
            }),
        }
    }

    /// Copies `inner` into the hint (under the lock).
    fn publish(&self, inner: &SpotInner) {
        let full = if inner.job.is_some() { FULL } else { 0 };
        self.hint.store(inner.spinning | full, Ordering::Release);
    }

    /// Hands `job` to a spinning worker, if one spins and the spot is free; `Err(job)`
    /// otherwise (the caller queues it).
    #[inline]
    fn offer(&self, job: Job) -> Result<(), Job> {
        let hint = self.hint.load(Ordering::Acquire);
        if hint == 0 || hint & FULL != 0 {
            return Err(job);
        }
        let mut inner = self.inner.lock();
        if inner.spinning == 0 || inner.job.is_some() {
            return Err(job);
        }
        inner.job = Some(job);
        self.publish(&inner);
        Ok(())
    }

    /// This worker spins for a job now: jobs may be handed to it.
    fn enter(&self) {
        let mut inner = self.inner.lock();
        inner.spinning += 1;
        self.publish(&inner);
    }

    /// Stops spinning, taking the job handed over meanwhile, if any.
    fn leave(&self) -> Option<Job> {
        let mut inner = self.inner.lock();
        inner.spinning -= 1;
        let job = inner.job.take();
        self.publish(&inner);
        job
    }
}

/// The next job, or `None` once every handle to the pool is gone and the queue is empty:
/// queued work first; then, announced on the spot, a few spin hints looking at the spot and
/// the queue; then a blocking `recv`.
#[inline]
fn next_job(rx: &Receiver<Job>, spot: &Spot) -> Option<Job> {
    match rx.try_recv() {
        Ok(job) => return Some(job),
        Err(TryRecvError::Disconnected) => return None,
        Err(TryRecvError::Empty) => {}
    }
    spot.enter();
    // POOL_SPINS: ~1 µs here; one look under loom.
    for _ in 0..POOL_SPINS {
        if spot.hint.load(Ordering::Acquire) & FULL != 0 || !rx.is_empty() {
            if let Some(job) = spot.leave() {
                return Some(job);
            }
            match rx.try_recv() {
                Ok(job) => return Some(job),
                Err(TryRecvError::Disconnected) => return None,
                Err(TryRecvError::Empty) => spot.enter(),
            }
        }
        std::hint::spin_loop();
    }
    if let Some(job) = spot.leave() {
        return Some(job);
    }
    rx.recv().ok()
}

/// A fixed set of worker threads.
///
/// ```
/// use std::sync::mpsc;
/// use comasync::call::Pool;
///
/// let pool = Pool::new(2);
/// assert_eq!(pool.workers(), 2);
/// let (tx, rx) = mpsc::channel();
/// pool.execute(move || tx.send(6 * 7).unwrap());
/// assert_eq!(rx.recv().unwrap(), 42);
/// assert!(Pool::global().workers() >= 2); // shared by every server that uses it
/// ```
pub struct Pool {
    sender: Sender<Job>,
    spot: Arc<Spot>,
    workers: usize,
}

impl Pool {
    /// A pool of `workers` threads (at least 1), named `comasync-worker-N`.
    pub fn new(workers: usize) -> Arc<Pool> {
        let workers = workers.max(1);
        let (sender, receiver) = channel::<Job>();
        let spot = Arc::new(Spot::new());
        let mut started = 0;
        for i in 0..workers {
            let rx = receiver.clone();
            let spot = spot.clone();
            let spawned = spawn(format!("comasync-worker-{i}"), move || {
                while let Some(job) = next_job(&rx, &spot) {
                    // A panicking job must not take a worker with it.
                    let _ =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || job.run()));
                }
            });
            if spawned.is_ok() {
                started += 1;
            }
        }
        // A pool the system gave no thread at all drops the jobs it is given (`execute`): a
        // dropped call completes with RPC_E_SERVER_DIED, never a panic or a hang.
        Arc::new(Pool {
            sender,
            spot,
            workers: started,
        })
    }

    /// The process-wide pool: one worker per available core, between 2 and 8.
    pub fn global() -> Arc<Pool> {
        static GLOBAL: OnceLock<Arc<Pool>> = OnceLock::new();
        GLOBAL
            .get_or_init(|| {
                let n = thread::available_parallelism().map_or(2, |n| n.get());
                Pool::new(n.clamp(2, 8))
            })
            .clone()
    }

    /// The number of worker threads.
    pub fn workers(&self) -> usize {
        self.workers
    }

    /// Queues `job` for a worker.
    pub fn execute(&self, job: impl FnOnce() + Send + 'static) {
        // The receivers live as long as the workers, which live as long as the channel is
        // open; a send can only fail if every worker died, and then the job is dropped (its
        // ServerCall, dropped with it, completes the call with RPC_E_SERVER_DIED).
        if self.workers > 0 {
            let _ = self.send(Job::Once(Box::new(job)));
        }
    }

    /// Hands `job` to a spinning worker, or queues it; `false` if the channel is closed. The
    /// spot is tried only when the queue is empty (a worker takes the spot's job before the
    /// queue's, so jobs of one thread keep their order).
    #[inline]
    fn send(&self, job: Job) -> bool {
        let job = if self.sender.is_empty() {
            match self.spot.offer(job) {
                Ok(()) => return true,
                Err(job) => job,
            }
        } else {
            job
        };
        self.sender.send(job).is_ok()
    }

    /// Queues one `task.run()` for a worker, without allocating. `false` (and the task is
    /// dropped) if the pool has no worker: the system gave it no thread.
    pub fn execute_task(&self, task: Arc<dyn PoolTask>) -> bool {
        self.workers > 0 && self.send(Job::Task(task))
    }

    /// Queues a call object whose call waits in it (see [`QueuedCall`]); `false` as
    /// [`execute_task`](Self::execute_task).
    pub(crate) fn execute_call(&self, call: Arc<dyn QueuedCall>) -> bool {
        self.workers > 0 && self.send(Job::Call(call))
    }
}
