//! P1's fourth kind of server: a server-side call object, as the Microsoft samples write one,
//! hosted by `ServerCallHost`. Its `Begin_Ping` stores the answer and hands the `Signal` to a
//! one-worker pool (the sample server's shape); the host then calls its `Finish_Ping` on the
//! worker and completes the client's call.

use std::sync::{Arc, Mutex, Weak};

use comasync::call::{Pool, ServerCallHost};
use comasync::hresult::{HRESULT, S_OK};
use comasync::sync::ISynchronize;
use comasync::unknown::{query, INonDelegatingUnknown, RefCount};

use super::{AsyncIBench, IBenchCalls};

/// The server call object (aggregated under its host).
pub struct HostedEcho {
    refs: RefCount,
    me: Weak<HostedEcho>,
    answer: Mutex<u32>,
    pool: Arc<Pool>,
}

impl AsyncIBench for HostedEcho {
    fn begin_ping(&self, n: u32) -> HRESULT {
        *self.answer.lock().unwrap() = n.wrapping_add(1);
        match query::<dyn ISynchronize>(self) {
            Ok(sync) => {
                self.pool.execute(move || {
                    let _ = sync.signal();
                });
                S_OK
            }
            Err(e) => e.code(),
        }
    }
    fn finish_ping(&self) -> (HRESULT, u32) {
        (S_OK, *self.answer.lock().unwrap())
    }
}

comasync::com_object!([] HostedEcho { interfaces: [dyn AsyncIBench] });

/// A host whose server call object signals from `pool`.
pub fn host_on(pool: Arc<Pool>) -> Arc<ServerCallHost<IBenchCalls>> {
    ServerCallHost::<IBenchCalls>::new(|outer| {
        let refs = RefCount::aggregated(outer);
        Arc::new_cyclic(|me| HostedEcho {
            refs,
            me: me.clone(),
            answer: Mutex::new(0),
            pool,
        }) as Arc<dyn INonDelegatingUnknown>
    })
    .expect("ServerCallHost::new")
}
