#![allow(dead_code)]
//! An STA thread for tests: it enters an STA, then waits in `CoWaitForMultipleHandles` (so it
//! dispatches the calls marshaled to it) for jobs the test gives it, until it is stopped.

use std::collections::VecDeque;
use std::sync::{mpsc, Arc, Mutex};
use std::thread::{self, JoinHandle};

use comasync::apartment::{
    co_initialize_ex, co_uninitialize, current_apartment, get_current_thread_id, ApartmentId,
    COINIT_APARTMENTTHREADED,
};
use comasync::hresult::S_OK;
use comasync::sync::{co_wait_for_multiple_handles, HANDLE, INFINITE};

type Job = Box<dyn FnOnce() + Send>;

/// A thread in an STA of its own, pumping its queue while it waits for jobs.
pub struct Sta {
    jobs: Arc<Mutex<VecDeque<Job>>>,
    ready: HANDLE,
    quit: HANDLE,
    thread: Option<JoinHandle<()>>,
    /// The STA's identity.
    pub id: ApartmentId,
    /// The STA thread's `GetCurrentThreadId`.
    pub tid: u32,
}

impl Sta {
    /// Starts the thread and enters its STA.
    pub fn start() -> Sta {
        let jobs: Arc<Mutex<VecDeque<Job>>> = Arc::default();
        let ready = HANDLE::create_event(false, false);
        let quit = HANDLE::create_event(true, false);
        let (tx, rx) = mpsc::channel();
        let (j, r, q) = (jobs.clone(), ready.clone(), quit.clone());
        let thread = thread::spawn(move || {
            assert_eq!(co_initialize_ex(None, COINIT_APARTMENTTHREADED), S_OK);
            tx.send((current_apartment().unwrap(), get_current_thread_id()))
                .unwrap();
            let handles = [q.clone(), r.clone()];
            loop {
                let mut i = 0;
                assert_eq!(
                    co_wait_for_multiple_handles(0, INFINITE, Some(&handles), Some(&mut i)),
                    S_OK
                );
                if i == 0 {
                    break;
                }
                loop {
                    let job = j.lock().unwrap().pop_front();
                    match job {
                        Some(job) => job(),
                        None => break,
                    }
                }
            }
            co_uninitialize();
        });
        let (id, tid) = rx.recv().unwrap();
        Sta {
            jobs,
            ready,
            quit,
            thread: Some(thread),
            id,
            tid,
        }
    }

    /// Queues `f` for the STA thread without waiting for it.
    pub fn spawn(&self, f: impl FnOnce() + Send + 'static) {
        self.jobs.lock().unwrap().push_back(Box::new(f));
        self.ready.set_event();
    }

    /// Runs `f` on the STA thread and returns its result.
    pub fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = mpsc::channel();
        self.spawn(move || {
            let _ = tx.send(f());
        });
        rx.recv().expect("the STA job panicked")
    }

    /// Blocks the STA thread outside COM (it dispatches nothing) until the guard drops.
    pub fn hold(&self) -> Hold {
        let (held_tx, held_rx) = mpsc::channel();
        let (release_tx, release_rx) = mpsc::channel::<()>();
        self.spawn(move || {
            held_tx.send(()).unwrap();
            let _ = release_rx.recv();
        });
        held_rx.recv().unwrap();
        Hold(Some(release_tx))
    }

    /// Stops the thread (it leaves its STA: calls still queued fail with RPC_E_DISCONNECTED).
    pub fn stop(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        self.quit.set_event();
        if let Some(t) = self.thread.take() {
            if let Err(p) = t.join() {
                if !thread::panicking() {
                    std::panic::resume_unwind(p);
                }
            }
        }
    }
}

impl Drop for Sta {
    fn drop(&mut self) {
        self.finish();
    }
}

/// The STA thread is blocked outside COM until this drops.
pub struct Hold(Option<mpsc::Sender<()>>);

impl Drop for Hold {
    fn drop(&mut self) {
        if let Some(tx) = self.0.take() {
            let _ = tx.send(());
        }
    }
}

/// Runs `f` on a new thread in the MTA (entered and left around it) and returns its result.
pub fn in_mta<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    thread::spawn(move || {
        let _ =
            comasync::apartment::co_initialize_ex(None, comasync::apartment::COINIT_MULTITHREADED);
        let r = f();
        co_uninitialize();
        r
    })
    .join()
    .expect("the MTA thread panicked")
}
