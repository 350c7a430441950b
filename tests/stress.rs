//! Stress: N client threads × M calls each on their own call objects, served by a few server
//! threads, with random cancels (`Cancel(0)`, occasionally `Cancel(1)`), `Wait` timeouts,
//! blocking and strict `Finish_`, and releases without `Finish_`; servers complete, fail or
//! drop their calls at random.
//!
//! Checked:
//!
//! * **no hang**: the main thread is a watchdog; if no call finishes for a while it fails with
//!   a report of every call in progress (which thread, which call, `CallObject::state()`);
//! * **exactly once**: every out-parameter (a `Token` naming its call) reaches the client that
//!   made the call exactly once, and only when `Finish_` returned the server's result; a
//!   cancelled or abandoned call delivers nothing;
//! * **no leak**: every `Token` ever created is dropped (a live counter), and every call
//!   object's memory is freed (weak references).
//!
//! `cargo test --test stress` runs the short version (a few seconds);
//! `COMASYNC_STRESS_LONG=1 cargo test --release --test stress` the long one.

mod common;

use common::{live_tokens, spawn_clients, Rng, Token};
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::thread;
use std::time::{Duration, Instant};

use comasync::call::{
    AsyncInterface, CallHandler, CallObject, FinishMode, ICancelMethodCalls, ServerCall,
};
use comasync::hresult::*;
use comasync::sync::ISynchronize;
use comasync::unknown::{query, ComPtr};

/// A service whose one method answers with a token naming the call.
#[comasync::interface(
    iid = "{3C4D5E6F-7081-4293-A4B5-C6D7E8F90A1B}",
    async_iid = "{3C4D5E6F-7081-4293-A4B5-C6D7E8F90A1C}",
    // Test-local parameter types: no scenario-script glue.
    scripts = false
)]
pub trait IStress {
    /// Answers `Token(id)`.
    #[out(token)]
    fn work(&self, id: u64) -> (HRESULT, Token);
}

/// Hands each call to the server threads.
struct Server {
    tx: crossbeam_channel::Sender<(ServerCall<IStressCalls>, IStressIn)>,
}

impl CallHandler<IStressCalls> for Server {
    fn begin(&self, call: ServerCall<IStressCalls>, input: IStressIn) {
        // If the server threads are gone the call is dropped: RPC_E_SERVER_DIED.
        let _ = self.tx.send((call, input));
    }
}

fn serve(rx: crossbeam_channel::Receiver<(ServerCall<IStressCalls>, IStressIn)>) {
    while let Ok((call, IStressIn::Work { id })) = rx.recv() {
        let mut rng = Rng::new(id ^ 0x5EED);
        // A little work, to let clients race the completion (no sleeping).
        for _ in 0..rng.below(2000) {
            std::hint::spin_loop();
        }
        match rng.below(10) {
            0 => drop(call), // the server forgets the call: RPC_E_SERVER_DIED
            1 => call.fail(E_FAIL),
            _ => call.complete(
                S_OK,
                IStressOut::Work {
                    token: Token::new(id),
                },
            ),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Fate {
    Delivered,
    Failed,
    Cancelled,
    Abandoned,
}

/// Calls in progress: (thread, call) → the call object, for the watchdog's report.
type InFlight = HashMap<(usize, u64), Weak<CallObject<IStressCalls>>>;

struct Shared {
    in_flight: Mutex<InFlight>,
    /// Every call object ever made, to prove they are all freed.
    all: Mutex<Vec<Weak<CallObject<IStressCalls>>>>,
    delivered: Mutex<HashSet<u64>>,
    fates: Mutex<HashMap<Fate, usize>>,
    progress: AtomicU64,
}

fn client(t: usize, calls: u64, server: Arc<Server>, shared: Arc<Shared>) {
    for c in 0..calls {
        let id = ((t as u64) << 32) | c;
        let mut rng = Rng::new(id);
        let mode = if rng.below(2) == 0 {
            FinishMode::Blocking
        } else {
            FinishMode::Strict
        };
        let obj = CallObject::<IStressCalls>::new(server.clone(), None, mode);
        shared.all.lock().unwrap().push(Arc::downgrade(&obj));
        shared
            .in_flight
            .lock()
            .unwrap()
            .insert((t, c), Arc::downgrade(&obj));
        let call: ComPtr<dyn AsyncIStress> = ComPtr::new(IStressCalls::upcast(obj.clone()));
        drop(obj);
        assert_eq!(call.begin_work(id), S_OK, "call {id:#x}: Begin_");
        let sync = query::<dyn ISynchronize>(&*call).unwrap();
        let cancel = query::<dyn ICancelMethodCalls>(&*call).unwrap();

        let fate = match rng.below(10) {
            // Release without Finish_: abandoned (the server may still run).
            0 | 1 => None,
            // Cancel(0), then Finish_.
            2 | 3 => {
                let hr = cancel.cancel(0);
                assert!(
                    hr == S_OK || hr == RPC_E_CALL_COMPLETE,
                    "call {id:#x}: Cancel(0) {hr:?}"
                );
                Some(hr == S_OK)
            }
            // Rarely a 1 s window: the servers always act, so it resolves as soon as they do.
            4 if rng.below(20) == 0 => {
                let hr = cancel.cancel(1);
                assert!(
                    hr == S_OK || hr == RPC_E_CALL_COMPLETE,
                    "call {id:#x}: Cancel(1) {hr:?}"
                );
                Some(hr == S_OK)
            }
            // Wait with short timeouts until signaled.
            _ => {
                loop {
                    match sync.wait(0, rng.below(3) as u32) {
                        S_OK => break,
                        RPC_S_CALLPENDING => continue,
                        other => panic!("call {id:#x}: Wait returned {other:?}"),
                    }
                }
                Some(false)
            }
        };
        drop((sync, cancel));
        let fate = match fate {
            None => {
                drop(call);
                Fate::Abandoned
            }
            Some(cancelled) => {
                let (hr, token) = loop {
                    let (hr, token) = call.finish_work();
                    if hr == RPC_S_CALLPENDING && mode == FinishMode::Strict {
                        thread::yield_now();
                        continue;
                    }
                    break (hr, token);
                };
                match hr {
                    S_OK => {
                        assert!(!cancelled, "call {id:#x}: delivered after a local cancel");
                        assert_eq!(
                            token.id(),
                            id,
                            "call {id:#x} got another call's out-parameter"
                        );
                        assert!(
                            shared.delivered.lock().unwrap().insert(id),
                            "call {id:#x}: out-parameter delivered twice"
                        );
                        Fate::Delivered
                    }
                    RPC_E_CALL_CANCELED => {
                        assert!(cancelled, "call {id:#x}: cancelled without a cancel");
                        assert_eq!(token.id(), u64::MAX, "call {id:#x}: cancelled, yet outs");
                        Fate::Cancelled
                    }
                    E_FAIL | RPC_E_SERVER_DIED => {
                        assert_eq!(token.id(), u64::MAX, "call {id:#x}: failed, yet outs");
                        Fate::Failed
                    }
                    other => panic!("call {id:#x}: Finish_ returned {other:?}"),
                }
            }
        };
        *shared.fates.lock().unwrap().entry(fate).or_default() += 1;
        shared.in_flight.lock().unwrap().remove(&(t, c));
        shared.progress.fetch_add(1, Ordering::SeqCst);
    }
}

fn run(clients: usize, calls: u64, servers: usize, stall: Duration) {
    let (tx, rx) = crossbeam_channel::unbounded();
    let server = Arc::new(Server { tx });
    let server_threads: Vec<_> = (0..servers)
        .map(|_| {
            let rx = rx.clone();
            thread::spawn(move || serve(rx))
        })
        .collect();
    drop(rx);
    let shared = Arc::new(Shared {
        in_flight: Mutex::new(HashMap::new()),
        all: Mutex::new(Vec::new()),
        delivered: Mutex::new(HashSet::new()),
        fates: Mutex::new(HashMap::new()),
        progress: AtomicU64::new(0),
    });
    let done_rx = spawn_clients(clients, |t| {
        let (server, shared) = (server.clone(), shared.clone());
        move || client(t, calls, server, shared)
    });

    // The watchdog: wait for the clients, failing with a report if progress stops.
    let mut finished = 0;
    let mut last = (0, Instant::now());
    while finished < clients {
        match done_rx.recv_timeout(Duration::from_millis(200)) {
            Ok(Ok(())) => finished += 1,
            Ok(Err(msg)) => panic!("a client thread failed: {msg}"),
            Err(_) => {}
        }
        let p = shared.progress.load(Ordering::SeqCst);
        if p != last.0 {
            last = (p, Instant::now());
        } else if last.1.elapsed() > stall {
            let mut report: Vec<String> = shared
                .in_flight
                .lock()
                .unwrap()
                .iter()
                .map(|((t, c), w)| match w.upgrade() {
                    Some(o) => format!("  thread {t}, call {c}: {:?}", o.state()),
                    None => format!("  thread {t}, call {c}: released"),
                })
                .collect();
            report.sort();
            panic!(
                "watchdog: no call finished for {stall:?} ({p} done); calls in progress:\n{}",
                report.join("\n")
            );
        }
    }

    drop(server);
    for s in server_threads {
        s.join().expect("a server thread panicked");
    }
    let total = clients as u64 * calls;
    let fates = shared.fates.lock().unwrap().clone();
    assert_eq!(fates.values().sum::<usize>() as u64, total, "{fates:?}");
    assert_eq!(
        shared.delivered.lock().unwrap().len(),
        fates.get(&Fate::Delivered).copied().unwrap_or(0),
        "every delivered out-parameter is counted once"
    );
    let leaked = shared
        .all
        .lock()
        .unwrap()
        .iter()
        .filter(|w| w.strong_count() > 0)
        .count();
    assert_eq!(
        leaked, 0,
        "call objects still alive after everything was released"
    );
    assert_eq!(
        live_tokens(),
        0,
        "out-parameters leaked (never delivered, never dropped)"
    );
    println!("{total} calls: {fates:?}");
}

#[test]
fn calls_from_many_threads_with_cancels_timeouts_and_releases_deliver_each_out_parameter_once() {
    if std::env::var_os("COMASYNC_STRESS_LONG").is_some() {
        run(8, 100_000, 3, Duration::from_secs(60));
    } else {
        run(4, 5_000, 2, Duration::from_secs(20));
    }
}
