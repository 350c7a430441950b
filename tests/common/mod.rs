//! Helpers shared by the integration tests: a watchdog that turns a hang into a failure, and
//! ways to wait (bounded) for a state another thread reaches.
#![allow(dead_code)]

use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use comasync::sync::{ISynchronize, ISynchronizeHandle, HANDLE};
use comasync::unknown::ComPtr;

/// Generous: only a broken (hung) implementation gets near it.
pub const WATCHDOG: Duration = Duration::from_secs(60);

/// Runs `f` on its own thread and fails the test with `what` if it does not finish within
/// [`WATCHDOG`] (a lost wake-up or a deadlock), instead of hanging the test run. A panic in
/// `f` is the test's panic.
pub fn within<T: Send + 'static>(what: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    let worker = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(WATCHDOG) {
        Ok(v) => {
            worker.join().unwrap();
            v
        }
        Err(mpsc::RecvTimeoutError::Disconnected) => match worker.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => unreachable!("the worker sent nothing but did not panic"),
        },
        Err(mpsc::RecvTimeoutError::Timeout) => {
            panic!("watchdog: {what} did not finish within {WATCHDOG:?} (lost wake-up or deadlock)")
        }
    }
}

/// Returns once `cond` holds (a state another thread reaches), yielding meanwhile; fails after
/// [`WATCHDOG`] with `what`.
pub fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < WATCHDOG, "never reached: {what}");
        thread::yield_now();
    }
}

/// Returns once `n` threads are blocked on `h` (registered with it), so that a signal sent
/// next is certainly sent to waiting threads.
pub fn until_blocked(h: &HANDLE, n: usize) {
    eventually("threads blocked on the handle", || h.waiter_count() >= n);
}

/// The handle behind a synchronization object.
pub fn handle_of(e: &ComPtr<dyn ISynchronize>) -> HANDLE {
    e.query::<dyn ISynchronizeHandle>()
        .unwrap()
        .get_handle()
        .unwrap()
}
