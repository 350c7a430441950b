//! 1,000 concurrent asynchronous calls through proxies and stubs between several apartments
//! (STA and MTA clients; STA and MTA servers with their own server-side call objects or the
//! standard one), with random
//! cancels and releases: every call delivers its own result exactly once or is abandoned,
//! nothing is lost, nothing hangs (a watchdog bounds the run), and the MTA server's object is
//! freed once the clients released everything. Deterministic choices (a seeded generator); no
//! sleeps.

#[path = "common/apartments.rs"]
mod apartments;
mod common;
#[path = "common/probe.rs"]
mod probe;

use std::collections::HashSet;
use std::sync::Arc;
use std::thread;

use apartments::Sta;
use comasync::apartment::*;
use comasync::call::{create_call_as, ICallFactory, ICancelMethodCalls, Pool};
use comasync::hresult::*;
use comasync::marshal::*;
use comasync::sync::{co_wait_for_multiple_handles, HANDLE, INFINITE};
use comasync::unknown::{ComPtr, Interface};
use common::within;
use probe::{AsyncIProbe, IProbe, IProbeCalls, ProbeState, ProbeStd, ProbeWithCalls};

const CLIENTS: u32 = 4;
const CALLS_PER_CLIENT: u32 = 250;

fn iid() -> comasync::guid::IID {
    <dyn IProbe as Interface>::IID
}

/// xorshift32: the test's reproducible choices.
struct Rng(u32);

impl Rng {
    fn next(&mut self) -> u32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        self.0
    }
}

/// What one client saw.
#[derive(Default, Debug)]
struct Tally {
    delivered: u32,
    cancelled: u32,
    released: u32,
}

/// A client: begins all its calls (spread over the servers), then cancels, releases or
/// finishes each, checking every result.
fn client(streams: Vec<MarshalStream>, first: u32, seed: u32) -> Tally {
    let proxies: Vec<ComPtr<dyn IProbe>> = streams
        .into_iter()
        .map(|s| co_get_interface_and_release_stream::<IProbeCalls>(s, &iid()).unwrap())
        .collect();
    let factories: Vec<ComPtr<dyn ICallFactory>> = proxies
        .iter()
        .map(|p| p.query::<dyn ICallFactory>().unwrap())
        .collect();
    let mut rng = Rng(seed);
    let mut calls = Vec::new();
    for k in 0..CALLS_PER_CLIENT {
        let n = first + k;
        let f = &factories[(rng.next() % factories.len() as u32) as usize];
        let call =
            create_call_as::<dyn AsyncIProbe>(&**f, &<dyn AsyncIProbe as Interface>::IID).unwrap();
        assert_eq!(call.begin_add(n), S_OK);
        calls.push((n, call));
    }
    let mut tally = Tally::default();
    for (n, call) in calls {
        match rng.next() % 4 {
            0 => {
                drop(call); // released without Finish_: abandoned
                tally.released += 1;
            }
            1 => {
                let cancel = call.query::<dyn ICancelMethodCalls>().unwrap();
                match cancel.cancel(0) {
                    S_OK => {
                        assert_eq!(call.finish_add(), (RPC_E_CALL_CANCELED, 0));
                        tally.cancelled += 1;
                    }
                    RPC_E_CALL_COMPLETE => {
                        assert_eq!(call.finish_add(), (S_OK, 2 * n));
                        tally.delivered += 1;
                    }
                    hr => panic!("Cancel returned {hr:?}"),
                }
                assert_eq!(
                    call.finish_add().0,
                    RPC_E_CALL_COMPLETE,
                    "one result per call"
                );
            }
            _ => {
                assert_eq!(call.finish_add(), (S_OK, 2 * n), "its own result");
                assert_eq!(
                    call.finish_add().0,
                    RPC_E_CALL_COMPLETE,
                    "one result per call"
                );
                tally.delivered += 1;
            }
        }
    }
    tally
}

#[test]
fn a_thousand_concurrent_calls_between_apartments_each_deliver_once_or_are_abandoned() {
    within("1,000 cross-apartment calls", || {
        let pool = Pool::new(2);
        let servers: Vec<Sta> = (0..4).map(|_| Sta::start()).collect();
        let mut states: Vec<Arc<ProbeState>> = Vec::new();
        // Per client, a stream from each STA server and one from the MTA server.
        let mut streams: Vec<Vec<MarshalStream>> = (0..CLIENTS).map(|_| Vec::new()).collect();
        for (k, sta) in servers.iter().enumerate() {
            let p = pool.clone();
            let (made, state) = sta.run(move || {
                // Server call objects of the user's (signalling from a worker), and
                // comasync's standard call object aggregated under the stub.
                let (object, state) = if k % 2 == 0 {
                    ProbeWithCalls::create_auto(p)
                } else {
                    ProbeStd::create()
                };
                let made: Vec<MarshalStream> = (0..CLIENTS)
                    .map(|_| {
                        co_marshal_inter_thread_interface_in_stream::<IProbeCalls>(&iid(), &*object)
                            .unwrap()
                    })
                    .collect();
                (made, state)
            });
            states.push(state);
            for (c, s) in made.into_iter().enumerate() {
                streams[c].push(s);
            }
        }
        // The MTA server: a thread keeps the MTA alive until the clients are done.
        let gate = HANDLE::create_event(true, false);
        let (tx, rx) = std::sync::mpsc::channel();
        let (g, p) = (gate.clone(), pool.clone());
        let (gone_tx, gone) = std::sync::mpsc::channel();
        let mta_server = thread::spawn(move || {
            let _ = co_initialize_ex(None, COINIT_MULTITHREADED);
            let (object, state) = ProbeWithCalls::create_auto(p);
            *state.gone.lock().unwrap() = Some(gone_tx);
            let made: Vec<MarshalStream> = (0..CLIENTS)
                .map(|_| {
                    co_marshal_inter_thread_interface_in_stream::<IProbeCalls>(&iid(), &*object)
                        .unwrap()
                })
                .collect();
            drop(object);
            tx.send((made, state)).unwrap();
            let mut i = 0;
            let _ = co_wait_for_multiple_handles(0, INFINITE, Some(&[g]), Some(&mut i));
            co_uninitialize();
        });
        let (made, state) = rx.recv().unwrap();
        states.push(state);
        for (c, s) in made.into_iter().enumerate() {
            streams[c].push(s);
        }
        // Clients: two in STAs of their own, two in the MTA.
        let clients: Vec<_> = streams
            .into_iter()
            .enumerate()
            .map(|(c, mut s)| {
                let c = c as u32;
                thread::spawn(move || {
                    let mode = if c % 2 == 0 {
                        COINIT_APARTMENTTHREADED
                    } else {
                        COINIT_MULTITHREADED
                    };
                    assert_eq!(co_initialize_ex(None, mode), S_OK);
                    if mode == COINIT_MULTITHREADED {
                        // The MTA server is in this client's own apartment: no proxy, and its
                        // ICallFactory serves only the stub (same apartment, spec 1.2).
                        s.pop();
                    }
                    let t = client(s, 1 + c * CALLS_PER_CLIENT, 0x9E37_79B9 ^ (c + 1));
                    co_uninitialize();
                    t
                })
            })
            .collect();
        let tallies: Vec<Tally> = clients.into_iter().map(|t| t.join().unwrap()).collect();
        gate.set_event();
        mta_server.join().unwrap();
        let total = tallies
            .iter()
            .map(|t| t.delivered + t.cancelled + t.released)
            .sum::<u32>();
        assert_eq!(
            total,
            CLIENTS * CALLS_PER_CLIENT,
            "every call accounted for"
        );
        assert!(tallies.iter().all(|t| t.delivered > 0), "{tallies:?}");
        // The servers ran each call at most once.
        let mut seen = HashSet::new();
        for s in &states {
            for n in s.begun.lock().unwrap().iter() {
                assert!(seen.insert(*n), "call {n} ran twice");
            }
        }
        let delivered: u32 = tallies.iter().map(|t| t.delivered).sum();
        assert!(
            seen.len() as u32 >= delivered,
            "a delivered result was served"
        );
        // Every proxy and call object is released: the MTA object goes too (its stub is kept
        // by the channels of the proxies' call objects, which keep themselves for their next
        // call until released). The watchdog fails the test if it never goes.
        assert_eq!(gone.recv(), Ok(()), "the MTA object was not freed");
    });
}
