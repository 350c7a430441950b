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

use std::cell::Cell;
use std::sync::atomic::{AtomicUsize, Ordering};

static LIVE_TOKENS: AtomicUsize = AtomicUsize::new(0);

thread_local! {
    static LIVE_HERE: Cell<isize> = const { Cell::new(0) };
}

/// An out-parameter that counts how many exist, to prove results are dropped, never leaked:
/// [`live_tokens`] counts all (for a test that has the process to itself), [`live_here`] those
/// made minus those dropped on the calling thread (exact while other tests run in parallel).
#[derive(Debug, PartialEq)]
pub struct Token(u64);

impl Token {
    /// What a failed call leaves in a token out-parameter.
    pub const NONE: u64 = u64::MAX;

    /// A new live token carrying `id`.
    pub fn new(id: u64) -> Token {
        LIVE_TOKENS.fetch_add(1, Ordering::SeqCst);
        LIVE_HERE.with(|c| c.set(c.get() + 1));
        Token(id)
    }

    /// The value it carries.
    pub fn id(&self) -> u64 {
        self.0
    }
}

impl Default for Token {
    fn default() -> Token {
        Token::new(Token::NONE)
    }
}

impl Clone for Token {
    fn clone(&self) -> Token {
        Token::new(self.0)
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        LIVE_TOKENS.fetch_sub(1, Ordering::SeqCst);
        let _ = LIVE_HERE.try_with(|c| c.set(c.get() - 1));
    }
}

/// Tokens alive in the whole process.
pub fn live_tokens() -> usize {
    LIVE_TOKENS.load(Ordering::SeqCst)
}

/// Tokens made minus tokens dropped on this thread.
pub fn live_here() -> isize {
    LIVE_HERE.with(Cell::get)
}

/// Starts `n` client threads, client `t` running what `client(t)` returns: the receiver gets
/// each client's end, `Ok` or its panic message (for a watchdog that waits on them all).
pub fn spawn_clients<F: FnOnce() + Send + 'static>(
    n: usize,
    client: impl Fn(usize) -> F,
) -> crossbeam_channel::Receiver<Result<(), String>> {
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    for t in 0..n {
        let (run, done) = (client(t), done_tx.clone());
        thread::spawn(move || {
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
            let _ = done.send(r.map_err(|e| {
                e.downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default()
            }));
        });
    }
    done_rx
}

/// A small deterministic generator (xorshift64*), seeded per run or per call so a failure
/// names its seed.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}
