//! P4: a cross-apartment asynchronous call through proxy and stub, beside a raw crossbeam
//! request/reply between two threads. Each subject runs on a client thread of its own, set up
//! once; `run(iters)` times `iters` calls there (one call object, reused: `Begin_Ping`,
//! `Finish_Ping`).
//!
//! * STA client → MTA server: the client's `Finish_` waits in its STA (dispatching), the call
//!   runs on the MTA's pool, where the stub drives the server's call object.
//! * MTA client → STA server: the call is queued for the STA's thread, which waits in
//!   `CoWaitForMultipleHandles` and dispatches it.
//!
//! (An MTA client and an MTA server share one apartment: COM calls them directly, no proxy.)

use std::any::Any;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use comasync::apartment::{
    co_initialize_ex, co_uninitialize, COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED,
};
use comasync::call::{create_call, create_call_for, FinishMode, ICallFactory, InlineHandler};
use comasync::guid::IID;
use comasync::hresult::{HRESULT, S_OK};
use comasync::marshal::{
    co_get_interface_and_release_stream, co_marshal_inter_thread_interface_in_stream, MarshalStream,
};
use comasync::sync::{co_wait_for_multiple_handles, HANDLE, INFINITE};
use comasync::unknown::{ComPtr, IUnknown, Interface};

use crate::support::{AsyncIBench, IBench, IBenchCalls, IBenchIn, IBenchOut};

/// The P4 server: `Ping(n)` = `n + 1`, with a call factory whose call objects complete inside
/// `Begin_` (the stub aggregates one per call).
#[comasync::implement(IBench, ICallFactory)]
pub struct P4Server;

impl IBench for P4Server_Impl {
    fn ping(&self, n: u32) -> (HRESULT, u32) {
        (S_OK, n.wrapping_add(1))
    }
}

impl ICallFactory for P4Server_Impl {
    fn create_call(
        &self,
        riid: &IID,
        outer: Option<&ComPtr<dyn IUnknown>>,
        riid2: &IID,
        ppv: Option<&mut dyn Any>,
    ) -> HRESULT {
        let handler = Arc::new(InlineHandler(|input: IBenchIn| match input {
            IBenchIn::Ping { n } => (
                S_OK,
                IBenchOut::Ping {
                    m: n.wrapping_add(1),
                },
            ),
        }));
        create_call::<IBenchCalls>(riid, outer, riid2, ppv, handler, FinishMode::Blocking)
    }
}

/// The subjects of P4.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum P4 {
    StaToMta,
    MtaToSta,
    Crossbeam,
}

impl P4 {
    pub const ALL: [P4; 3] = [P4::StaToMta, P4::MtaToSta, P4::Crossbeam];
}

/// A client thread that times calls on request, and whatever keeps its server alive.
pub struct Session {
    cmd: mpsc::Sender<u64>,
    done: mpsc::Receiver<Duration>,
    quit: HANDLE,
    threads: Vec<thread::JoinHandle<()>>,
}

impl Session {
    pub fn start(which: P4) -> Session {
        let quit = HANDLE::create_event(true, false);
        let (cmd, cmd_rx) = mpsc::channel::<u64>();
        let (done_tx, done) = mpsc::channel();
        let mut threads = Vec::new();
        match which {
            P4::Crossbeam => {
                let (req_tx, req_rx) =
                    crossbeam_channel::unbounded::<(u32, crossbeam_channel::Sender<u32>)>();
                threads.push(thread::spawn(move || {
                    while let Ok((n, reply)) = req_rx.recv() {
                        let _ = reply.send(n.wrapping_add(1));
                    }
                }));
                threads.push(thread::spawn(move || {
                    let (tx, rx) = crossbeam_channel::bounded(1);
                    while let Ok(iters) = cmd_rx.recv() {
                        let t = Instant::now();
                        let mut n = 0u32;
                        for _ in 0..iters {
                            req_tx.send((n, tx.clone())).unwrap();
                            n = rx.recv().unwrap();
                        }
                        std::hint::black_box(n);
                        done_tx.send(t.elapsed()).unwrap();
                    }
                }));
            }
            P4::StaToMta | P4::MtaToSta => {
                let (server_mode, client_mode) = if which == P4::StaToMta {
                    (COINIT_MULTITHREADED, COINIT_APARTMENTTHREADED)
                } else {
                    (COINIT_APARTMENTTHREADED, COINIT_MULTITHREADED)
                };
                let (stream_tx, stream_rx) = mpsc::channel::<MarshalStream>();
                let q = quit.clone();
                threads.push(thread::spawn(move || {
                    let _ = co_initialize_ex(None, server_mode);
                    let object = P4Server.into_object();
                    let iid = <dyn IBench as Interface>::IID;
                    let s =
                        co_marshal_inter_thread_interface_in_stream::<IBenchCalls>(&iid, &*object);
                    stream_tx.send(s.unwrap()).unwrap();
                    drop(object);
                    let mut i = 0;
                    // An STA server dispatches its calls here; an MTA server keeps the MTA.
                    let _ = co_wait_for_multiple_handles(0, INFINITE, Some(&[q]), Some(&mut i));
                    co_uninitialize();
                }));
                let stream = stream_rx.recv().unwrap();
                threads.push(thread::spawn(move || {
                    let _ = co_initialize_ex(None, client_mode);
                    let iid = <dyn IBench as Interface>::IID;
                    let proxy =
                        co_get_interface_and_release_stream::<IBenchCalls>(stream, &iid).unwrap();
                    let factory = proxy.query::<dyn ICallFactory>().unwrap();
                    let call = create_call_for::<dyn AsyncIBench>(&*factory).unwrap();
                    while let Ok(iters) = cmd_rx.recv() {
                        let t = Instant::now();
                        let mut n = 0u32;
                        for _ in 0..iters {
                            assert_eq!(call.begin_ping(n), S_OK);
                            let (hr, m) = call.finish_ping();
                            assert_eq!(hr, S_OK);
                            n = m;
                        }
                        std::hint::black_box(n);
                        done_tx.send(t.elapsed()).unwrap();
                    }
                    drop((call, factory, proxy));
                    co_uninitialize();
                }));
            }
        }
        Session {
            cmd,
            done,
            quit,
            threads,
        }
    }

    /// Times `iters` calls on the client thread.
    pub fn run(&self, iters: u64) -> Duration {
        self.cmd.send(iters).unwrap();
        self.done.recv().unwrap()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        let (cmd, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.cmd, cmd));
        self.quit.set_event();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// `rounds` rounds of `chunk` calls of each subject, in rotating order: ns per call, per
/// round, in the order of [`P4::ALL`].
pub fn p4_interleaved(rounds: usize, chunk: u64) -> Vec<Vec<f64>> {
    let sessions: Vec<Session> = P4::ALL.iter().map(|&w| Session::start(w)).collect();
    for s in &sessions {
        s.run(chunk.min(100)); // warm up
    }
    let mut times = vec![Vec::with_capacity(rounds); sessions.len()];
    for r in 0..rounds {
        for k in 0..sessions.len() {
            let i = (r + k) % sessions.len();
            let d = sessions[i].run(chunk);
            times[i].push(d.as_nanos() as f64 / chunk as f64);
        }
    }
    times
}
