//! The worker pool that runs servers' work: a fixed number of threads fed by one
//! crossbeam channel. Never a thread per call.
//!
//! Workers block in `recv` (crossbeam spins briefly, then parks), so an idle pool costs no
//! CPU. Dropping the last handle to a pool closes its channel; its workers finish the queued
//! jobs and exit.

use std::sync::{Arc, OnceLock};
use std::thread;

use crossbeam_channel::{unbounded, Sender};

type Job = Box<dyn FnOnce() + Send + 'static>;

/// A fixed set of worker threads.
pub struct Pool {
    sender: Sender<Job>,
    workers: usize,
}

impl Pool {
    /// A pool of `workers` threads (at least 1), named `comasync-worker-N`.
    pub fn new(workers: usize) -> Arc<Pool> {
        let workers = workers.max(1);
        let (sender, receiver) = unbounded::<Job>();
        for i in 0..workers {
            let rx = receiver.clone();
            thread::Builder::new()
                .name(format!("comasync-worker-{i}"))
                .spawn(move || {
                    while let Ok(job) = rx.recv() {
                        // A panicking job must not take a worker with it.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    }
                })
                .expect("spawning a comasync worker thread");
        }
        Arc::new(Pool { sender, workers })
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
        let _ = self.sender.send(Box::new(job));
    }
}
