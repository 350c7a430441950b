//! The worker pool that runs servers' work: a fixed number of threads fed by one
//! crossbeam channel. Never a thread per call.
//!
//! Workers block in `recv` (crossbeam spins briefly, then parks), so an idle pool costs no
//! CPU. Before that they look at the queue after each of a few spin hints (`next_job`):
//! crossbeam's own spin looks only after exponentially longer rounds, which on the
//! benchmark machine (a hint is ~60 ns) notices a job up to microseconds late. Dropping the
//! last handle to a pool closes its channel; its workers finish the queued jobs and exit.
//!
//! A job is an `Arc` to a [`PoolTask`], queued without allocating by [`Pool::execute_task`];
//! a call object whose call waits in it for a worker (how `SyncMethodHandler`'s calls are
//! queued: `CallHandler::pool`), also without allocating; or a closure given to
//! [`Pool::execute`], boxed (one allocation).

use std::sync::{Arc, OnceLock};
use std::thread;

use crate::sync::prim::{channel, spawn, Receiver, Sender, TryRecvError, POOL_SPINS};

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

/// The next job, or `None` once every handle to the pool is gone and the queue is empty.
#[inline]
fn next_job(rx: &Receiver<Job>) -> Option<Job> {
    // POOL_SPINS: ~2 µs here; none under loom.
    for _ in 0..POOL_SPINS {
        match rx.try_recv() {
            Ok(job) => return Some(job),
            Err(TryRecvError::Disconnected) => return None,
            Err(TryRecvError::Empty) => std::hint::spin_loop(),
        }
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
    workers: usize,
}

impl Pool {
    /// A pool of `workers` threads (at least 1), named `comasync-worker-N`.
    pub fn new(workers: usize) -> Arc<Pool> {
        let workers = workers.max(1);
        let (sender, receiver) = channel::<Job>();
        let mut started = 0;
        for i in 0..workers {
            let rx = receiver.clone();
            let spawned = spawn(format!("comasync-worker-{i}"), move || {
                while let Some(job) = next_job(&rx) {
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
            let _ = self.sender.send(Job::Once(Box::new(job)));
        }
    }

    /// Queues one `task.run()` for a worker, without allocating. `false` (and the task is
    /// dropped) if the pool has no worker: the system gave it no thread.
    pub fn execute_task(&self, task: Arc<dyn PoolTask>) -> bool {
        self.workers > 0 && self.sender.send(Job::Task(task)).is_ok()
    }

    /// Queues a call object whose call waits in it (see [`QueuedCall`]); `false` as
    /// [`execute_task`](Self::execute_task).
    pub(crate) fn execute_call(&self, call: Arc<dyn QueuedCall>) -> bool {
        self.workers > 0 && self.sender.send(Job::Call(call)).is_ok()
    }
}
