//! The worker pool (`comasync::call::Pool`): a job sent while a worker spins for one is handed
//! to it on the pool's spot instead of the channel (docs/performance.md, P1). These tests hold
//! the spot's invariants (src/call/pool.rs): no job is stranded, jobs from one thread start in
//! the order they were sent, a busy worker never holds back a job another worker could run.
//! The interleavings themselves are model-checked in tests/loom_call.rs.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use comasync::call::Pool;

/// Long enough for any of these jobs on a loaded machine; only a lost job waits this long.
const LOST: Duration = Duration::from_secs(60);

#[test]
fn jobs_from_one_thread_run_in_the_order_they_were_sent_on_one_worker() {
    let pool = Pool::new(1);
    let ran = Arc::new(Mutex::new(Vec::new()));
    let (done_tx, done_rx) = mpsc::channel();
    let mut sent = 0;
    for round in 0..2_000 {
        // Bursts (the first job may go to the spot, the rest queue behind it) and single jobs
        // sent after the worker is done (it spins: the job goes to the spot).
        let burst = if round % 2 == 0 { 1 } else { 1 + round % 7 };
        for _ in 0..burst {
            let (ran, done) = (ran.clone(), done_tx.clone());
            let i = sent;
            pool.execute(move || {
                ran.lock().unwrap().push(i);
                done.send(()).unwrap();
            });
            sent += 1;
        }
        for _ in 0..burst {
            done_rx.recv_timeout(LOST).expect("a job was lost");
        }
    }
    let ran = ran.lock().unwrap();
    assert_eq!(ran.len(), sent);
    assert!(ran.windows(2).all(|w| w[0] < w[1]), "jobs ran out of order");
}

#[test]
fn a_job_handed_to_a_spinning_worker_is_never_lost() {
    const SENDERS: usize = 4;
    const JOBS: usize = 20_000;
    let pool = Pool::new(2);
    let ran = Arc::new(AtomicUsize::new(0));
    let (done_tx, done_rx) = mpsc::channel();
    let senders: Vec<_> = (0..SENDERS)
        .map(|s| {
            let (pool, ran, done) = (pool.clone(), ran.clone(), done_tx.clone());
            thread::spawn(move || {
                for j in 0..JOBS {
                    let (ran, done) = (ran.clone(), done.clone());
                    pool.execute(move || {
                        ran.fetch_add(1, Ordering::Relaxed);
                        done.send(()).unwrap();
                    });
                    if (j + s) % 64 == 0 {
                        // Now and then the workers catch up and spin: the next job is handed
                        // over on the spot, racing the other senders.
                        thread::yield_now();
                    }
                }
            })
        })
        .collect();
    for s in senders {
        s.join().unwrap();
    }
    for _ in 0..SENDERS * JOBS {
        done_rx.recv_timeout(LOST).expect("a job was lost");
    }
    assert_eq!(ran.load(Ordering::Relaxed), SENDERS * JOBS);
}

#[test]
fn a_worker_blocked_on_a_later_job_never_holds_that_job_back() {
    // Job A blocks until job B has run. B is sent while A's worker is busy: it must reach the
    // other worker (spinning, or parked and woken), never wait on the spot behind A.
    let pool = Pool::new(2);
    for _ in 0..2_000 {
        let (b_ran_tx, b_ran_rx) = mpsc::channel::<()>();
        let (a_done_tx, a_done_rx) = mpsc::channel::<()>();
        let (a_started_tx, a_started_rx) = mpsc::channel::<()>();
        pool.execute(move || {
            a_started_tx.send(()).unwrap();
            b_ran_rx.recv_timeout(LOST).expect("job B never ran");
            a_done_tx.send(()).unwrap();
        });
        a_started_rx.recv_timeout(LOST).expect("job A never ran");
        pool.execute(move || b_ran_tx.send(()).unwrap());
        a_done_rx.recv_timeout(LOST).expect("job A never finished");
    }
}

#[test]
fn a_dropped_pool_runs_every_job_it_was_given() {
    let pool = Pool::new(2);
    let (done_tx, done_rx) = mpsc::channel::<usize>();
    for i in 0..1_000 {
        let done = done_tx.clone();
        pool.execute(move || done.send(i).unwrap());
    }
    drop(done_tx);
    drop(pool);
    let mut ran: Vec<usize> = (0..1_000)
        .map(|_| done_rx.recv_timeout(LOST).expect("a job was lost"))
        .collect();
    ran.sort_unstable();
    assert!(ran.iter().copied().eq(0..1_000));
    // Every job's closure (each holding a sender) is gone: nothing was kept back.
    assert_eq!(
        done_rx.recv_timeout(LOST),
        Err(mpsc::RecvTimeoutError::Disconnected)
    );
}
