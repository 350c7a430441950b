//! The instrumented outer unknown: its `ISynchronize` records every `Reset` and `Signal`
//! ([`Event`]), fails them on request, and runs an armed [`Hook`] re-entrantly at the
//! completion.

use super::*;

/// What the outer saw, in order.
#[derive(Clone, Debug)]
pub(super) enum Event {
    Reset(HRESULT),
    Signal {
        generation: u64,
        state: State,
        hr: HRESULT,
    },
    SignalReturned(HRESULT),
    Finish {
        method: usize,
        hr: HRESULT,
        outs: Vec<u32>,
    },
    Begin {
        method: usize,
        hr: HRESULT,
    },
}

#[derive(Default)]
pub(super) struct OuterState {
    pub(super) flag: bool,
    pub(super) reset_fails: bool,
    pub(super) signal_fails: bool,
    pub(super) hook: Option<Hook>,
    /// The runner is executing an operation that may complete the call: hooks may fire.
    pub(super) completing: bool,
    pub(super) log: Vec<Event>,
}

/// The instrumented aggregating outer.
pub(super) struct AggOuter {
    pub(super) refs: RefCount,
    pub(super) me: Weak<AggOuter>,
    pub(super) inner: Mutex<Option<ComPtr<dyn IUnknown>>>,
    pub(super) call: Mutex<Weak<CallObject<IProbeCalls>>>,
    pub(super) st: Mutex<OuterState>,
}

pub(super) fn begin(call: &CallObject<IProbeCalls>, m: usize, tag: u32) -> HRESULT {
    if m == 0 {
        call.begin_read(tag)
    } else {
        call.begin_write(tag)
    }
}

pub(super) fn finish(call: &CallObject<IProbeCalls>, m: usize) -> (HRESULT, Vec<u32>) {
    if m == 0 {
        call.finish_read()
    } else {
        call.finish_write()
    }
}

impl AggOuter {
    fn take_hook(&self, point: HookPoint) -> Option<(Hook, Arc<CallObject<IProbeCalls>>)> {
        let call = self.call.lock().upgrade()?;
        if !matches!(call.state(), State::Signaled { .. }) {
            return None;
        }
        let mut st = self.st.lock();
        match st.hook {
            Some(h) if h.point == point && st.completing => {
                st.hook = None;
                Some((h, call))
            }
            _ => None,
        }
    }

    /// Runs the client code of a hook (no outer lock held: it re-enters the outer).
    fn run_hook(&self, point: HookPoint) {
        let Some((hook, call)) = self.take_hook(point) else {
            return;
        };
        let (hr, outs) = finish(&call, hook.finish);
        self.st.lock().log.push(Event::Finish {
            method: hook.finish,
            hr,
            outs,
        });
        if let Some(m) = hook.then_begin {
            let hr = begin(&call, m, 0);
            self.st.lock().log.push(Event::Begin { method: m, hr });
        }
    }

    fn more_interfaces(&self, me: &Arc<Self>, iid: &IID, ppv: &mut dyn Any) -> HRESULT {
        if *iid == IID_ISynchronize {
            self.run_hook(HookPoint::BeforeSignal);
            return set_out::<dyn ISynchronize>(
                ppv,
                self.refs.ptr(me.clone() as Arc<dyn ISynchronize>),
            );
        }
        let inner = self.inner.lock().clone();
        match inner {
            Some(inner) => inner.query_interface(iid, ppv),
            None => E_NOINTERFACE,
        }
    }

    fn final_release(&self) {
        let inner = self.inner.lock().take();
        drop(inner);
    }
}

impl ISynchronize for AggOuter {
    /// Never blocks: `S_OK` if signaled, else `RPC_S_CALLPENDING`.
    fn wait(&self, _flags: u32, _timeout_ms: u32) -> HRESULT {
        if self.st.lock().flag {
            S_OK
        } else {
            RPC_S_CALLPENDING
        }
    }

    fn signal(&self) -> HRESULT {
        let now = self
            .call
            .lock()
            .upgrade()
            .map(|c| c.call_state())
            .map(|s| (s.generation(), s.state()));
        let (generation, state) = now.unwrap_or((0, State::Gone));
        let hr = {
            let mut st = self.st.lock();
            let hr = if st.signal_fails {
                E_FAIL
            } else {
                st.flag = true;
                S_OK
            };
            st.log.push(Event::Signal {
                generation,
                state,
                hr,
            });
            hr
        };
        self.run_hook(HookPoint::InSignal);
        self.st.lock().log.push(Event::SignalReturned(hr));
        hr
    }

    fn reset(&self) -> HRESULT {
        let mut st = self.st.lock();
        let hr = if st.reset_fails {
            E_FAIL
        } else {
            st.flag = false;
            S_OK
        };
        st.log.push(Event::Reset(hr));
        hr
    }
}

crate::com_object!([] AggOuter {
    interfaces: [],
    more: AggOuter::more_interfaces,
    final_release: AggOuter::final_release,
});
