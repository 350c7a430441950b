//! [`ApartmentModel`]: the apartments of a script's threads, as far as the scenario check
//! needs them — which apartment each thread is in and how often it entered it, which
//! apartments have ended, and how many incoming calls wait in each STA's queue.
//!
//! The rules (spec 1.9, 3.7; `docs/apartments.md`): `CoInitializeEx` is counted (`S_OK`,
//! then `S_FALSE`), the other mode is `RPC_E_CHANGED_MODE` and not counted, the last
//! `CoUninitialize` leaves; an STA ends when its thread leaves it (its queued calls are
//! dropped). Marshaling and unmarshaling need an apartment (`CO_E_NOTINITIALIZED`);
//! unmarshaling in the object's own apartment gives the object, elsewhere a proxy bound to
//! the apartment it was unmarshaled in; unmarshaling from an ended apartment is
//! `RPC_E_DISCONNECTED`. A proxy used outside its apartment is `RPC_E_WRONG_THREAD`, without
//! one `CO_E_NOTINITIALIZED`, after its object's apartment ended `RPC_E_DISCONNECTED`. A call
//! to an STA's object is a message in its queue; the STA's thread runs the queue when it
//! pumps or while it is blocked in a wait — never when a handle it waits for is signaled
//! already (the wait returns without dispatching).
//!
//! Not modelled: the MTA's end (it is process-wide: another thread of the process may keep
//! it), and how many messages a wait that blocks for a while and then times out dispatches
//! (the count is then unknown, `None`, until the next `Pump`).
//!
//! Invariants: a thread is in at most one apartment; an ended apartment never comes back;
//! the queue of an STA that is pumping (its thread blocked in a wait) stays empty.

use std::collections::HashMap;

use crate::hresult::{
    CO_E_NOTINITIALIZED, HRESULT, RPC_E_CHANGED_MODE, RPC_E_DISCONNECTED, RPC_E_WRONG_THREAD,
    S_FALSE, S_OK,
};

/// An apartment of the model: its number, in the order the model made them.
pub type AptNo = usize;

/// One apartment.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Apt {
    sta: bool,
    alive: bool,
    /// STA: the calls waiting in its queue; `None`: not known.
    queued: Option<usize>,
    /// STA: its thread is blocked in a wait, so it runs every call at once.
    pumping: bool,
}

/// What `Unmarshal` gives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unmarshaled {
    /// The object itself (its own apartment).
    Object,
    /// A proxy bound to apartment `home`.
    Proxy {
        /// The apartment it was unmarshaled in.
        home: AptNo,
    },
}

/// The apartments of a set of named threads.
///
/// ```
/// use comasync::testing::model::ApartmentModel;
/// use comasync::hresult::{RPC_E_CHANGED_MODE, RPC_E_WRONG_THREAD, S_FALSE, S_OK};
///
/// let mut m = ApartmentModel::default();
/// assert_eq!(m.co_initialize_ex("a", true), S_OK);
/// assert_eq!(m.co_initialize_ex("a", true), S_FALSE);
/// assert_eq!(m.co_initialize_ex("a", false), RPC_E_CHANGED_MODE);
/// assert_eq!(m.co_initialize_ex("b", false), S_OK);
/// let sta = m.marshal("a").unwrap();
/// let home = match m.unmarshal("b", sta).unwrap() {
///     comasync::testing::model::Unmarshaled::Proxy { home } => home,
///     other => panic!("{other:?}"),
/// };
/// assert_eq!(m.use_proxy("b", home, sta), S_OK);
/// assert_eq!(m.use_proxy("a", home, sta), RPC_E_WRONG_THREAD);
/// m.post(sta, "b");
/// assert_eq!(m.pump("a"), Some(1));
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApartmentModel {
    apts: Vec<Apt>,
    /// Each thread's apartment and how many `CoInitializeEx` calls keep it there.
    threads: HashMap<String, (AptNo, u32)>,
    /// The MTA, once a thread entered it.
    mta: Option<AptNo>,
}

impl ApartmentModel {
    /// `CoInitializeEx` on `thread`: a new STA (`sta`) or the MTA.
    pub fn co_initialize_ex(&mut self, thread: &str, sta: bool) -> HRESULT {
        if let Some((apt, n)) = self.threads.get_mut(thread) {
            if self.apts[*apt].sta != sta {
                return RPC_E_CHANGED_MODE;
            }
            *n += 1;
            return S_FALSE;
        }
        let apt = if sta {
            self.new_apt(true)
        } else {
            match self.mta {
                Some(m) => m,
                None => {
                    let m = self.new_apt(false);
                    self.mta = Some(m);
                    m
                }
            }
        };
        self.threads.insert(thread.to_string(), (apt, 1));
        S_OK
    }

    fn new_apt(&mut self, sta: bool) -> AptNo {
        self.apts.push(Apt {
            sta,
            alive: true,
            queued: Some(0),
            pumping: false,
        });
        self.apts.len() - 1
    }

    /// `CoUninitialize` on `thread`: the last one leaves; an STA ends then (its queued calls
    /// are dropped). Nothing without an apartment.
    pub fn co_uninitialize(&mut self, thread: &str) {
        let Some((apt, n)) = self.threads.get_mut(thread) else {
            return;
        };
        *n -= 1;
        if *n > 0 {
            return;
        }
        let apt = *apt;
        self.threads.remove(thread);
        if self.apts[apt].sta {
            let a = &mut self.apts[apt];
            a.alive = false;
            a.queued = Some(0);
            a.pumping = false;
        }
    }

    /// The apartment `thread` is in.
    pub fn apartment_of(&self, thread: &str) -> Option<AptNo> {
        self.threads.get(thread).map(|(a, _)| *a)
    }

    /// Whether `apt` is an STA.
    pub fn is_sta(&self, apt: AptNo) -> bool {
        self.apts.get(apt).is_some_and(|a| a.sta)
    }

    /// `CoMarshalInterThreadInterfaceInStream` on `thread`: the object's apartment (the
    /// thread's), or `CO_E_NOTINITIALIZED`.
    pub fn marshal(&self, thread: &str) -> Result<AptNo, HRESULT> {
        self.apartment_of(thread).ok_or(CO_E_NOTINITIALIZED)
    }

    /// `CoGetInterfaceAndReleaseStream` on `thread` of an object marshaled from `from`.
    pub fn unmarshal(&self, thread: &str, from: AptNo) -> Result<Unmarshaled, HRESULT> {
        let here = self.apartment_of(thread).ok_or(CO_E_NOTINITIALIZED)?;
        if !self.apts[from].alive {
            return Err(RPC_E_DISCONNECTED);
        }
        Ok(if here == from {
            Unmarshaled::Object
        } else {
            Unmarshaled::Proxy { home: here }
        })
    }

    /// Whether `thread` may use a proxy bound to `home` whose object lives in `object`.
    pub fn use_proxy(&self, thread: &str, home: AptNo, object: AptNo) -> HRESULT {
        match self.apartment_of(thread) {
            None => CO_E_NOTINITIALIZED,
            Some(a) if a != home => RPC_E_WRONG_THREAD,
            Some(_) if !self.apts[object].alive => RPC_E_DISCONNECTED,
            Some(_) => S_OK,
        }
    }

    /// A message for `apt` from `thread` (a call, or a server's `Signal` carried back): an
    /// STA queues it, unless its own thread sends it (then it runs at once) or that thread
    /// is pumping; the MTA runs it on its pool.
    pub fn post(&mut self, apt: AptNo, thread: &str) {
        if self.apartment_of(thread) == Some(apt) {
            return;
        }
        let a = &mut self.apts[apt];
        if a.sta && a.alive && !a.pumping {
            a.queued = a.queued.map(|n| n + 1);
        }
    }

    /// `co_pump_messages` on `thread`: the number of calls it dispatches (`None`: not known),
    /// 0 outside an STA.
    pub fn pump(&mut self, thread: &str) -> Option<usize> {
        match self.apartment_of(thread) {
            Some(apt) if self.apts[apt].sta => self.apts[apt].queued.replace(0),
            _ => Some(0),
        }
    }

    /// `thread` blocks in a wait (`blocks`), or its wait returns at once (a handle was
    /// signaled: nothing is dispatched), or it waits and times out or returns later in the
    /// same step (`None`: what it dispatched is not known).
    pub fn wait(&mut self, thread: &str, blocks: Option<bool>) {
        let Some(apt) = self.apartment_of(thread).filter(|a| self.apts[*a].sta) else {
            return;
        };
        let a = &mut self.apts[apt];
        match blocks {
            Some(true) => {
                a.pumping = true;
                a.queued = Some(0);
            }
            Some(false) => {}
            None => a.queued = None,
        }
    }

    /// What is queued for `apt` is no longer known (a message that may or may not have been
    /// posted).
    pub fn forget(&mut self, apt: AptNo) {
        if let Some(a) = self.apts.get_mut(apt) {
            a.queued = None;
        }
    }

    /// `thread`'s blocking wait returned: its STA queues calls again.
    pub fn wait_returned(&mut self, thread: &str) {
        if let Some(apt) = self.apartment_of(thread) {
            self.apts[apt].pumping = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn co_initialize_ex_is_counted_and_the_other_mode_is_rpc_e_changed_mode() {
        let mut m = ApartmentModel::default();
        assert_eq!(m.co_initialize_ex("t", false), S_OK);
        assert_eq!(m.co_initialize_ex("t", false), S_FALSE);
        assert_eq!(m.co_initialize_ex("t", true), RPC_E_CHANGED_MODE);
        m.co_uninitialize("t");
        assert!(m.apartment_of("t").is_some(), "one call is still counted");
        m.co_uninitialize("t");
        assert!(m.apartment_of("t").is_none());
    }

    #[test]
    fn every_sta_is_its_own_and_the_mta_is_shared() {
        let mut m = ApartmentModel::default();
        let _ = m.co_initialize_ex("a", true);
        let _ = m.co_initialize_ex("b", true);
        let _ = m.co_initialize_ex("c", false);
        let _ = m.co_initialize_ex("d", false);
        assert_ne!(m.apartment_of("a"), m.apartment_of("b"));
        assert_eq!(m.apartment_of("c"), m.apartment_of("d"));
    }

    #[test]
    fn marshaling_without_an_apartment_is_co_e_notinitialized() {
        let mut m = ApartmentModel::default();
        assert_eq!(m.marshal("t"), Err(CO_E_NOTINITIALIZED));
        let _ = m.co_initialize_ex("a", true);
        let apt = m.marshal("a").unwrap();
        assert_eq!(m.unmarshal("t", apt), Err(CO_E_NOTINITIALIZED));
        assert_eq!(m.unmarshal("a", apt), Ok(Unmarshaled::Object));
    }

    #[test]
    fn a_proxy_checks_its_apartment_and_its_objects() {
        let mut m = ApartmentModel::default();
        let _ = m.co_initialize_ex("server", true);
        let _ = m.co_initialize_ex("client", true);
        let obj = m.marshal("server").unwrap();
        let Ok(Unmarshaled::Proxy { home }) = m.unmarshal("client", obj) else {
            panic!("a proxy expected");
        };
        assert_eq!(m.use_proxy("client", home, obj), S_OK);
        assert_eq!(m.use_proxy("server", home, obj), RPC_E_WRONG_THREAD);
        assert_eq!(m.use_proxy("nobody", home, obj), CO_E_NOTINITIALIZED);
        m.co_uninitialize("server");
        assert_eq!(m.use_proxy("client", home, obj), RPC_E_DISCONNECTED);
        assert_eq!(m.unmarshal("client", obj), Err(RPC_E_DISCONNECTED));
    }

    #[test]
    fn an_sta_runs_its_queue_when_it_pumps_or_blocks_never_when_a_handle_is_ready() {
        let mut m = ApartmentModel::default();
        let _ = m.co_initialize_ex("sta", true);
        let _ = m.co_initialize_ex("client", false);
        let sta = m.marshal("sta").unwrap();
        m.post(sta, "client");
        m.post(sta, "client");
        m.wait("sta", Some(false)); // a signaled handle: nothing dispatched
        assert_eq!(m.pump("sta"), Some(2));
        assert_eq!(m.pump("sta"), Some(0));
        m.post(sta, "client");
        m.wait("sta", Some(true)); // blocks: runs the queue, and every call that comes
        m.post(sta, "client");
        m.wait_returned("sta");
        assert_eq!(m.pump("sta"), Some(0));
        m.post(sta, "sta"); // its own thread: runs at once
        assert_eq!(m.pump("sta"), Some(0));
        m.wait("sta", None);
        assert_eq!(m.pump("sta"), None, "a wait that timed out: not known");
        assert_eq!(m.pump("client"), Some(0), "outside an STA");
    }

    #[test]
    fn an_sta_that_ends_drops_its_queue() {
        let mut m = ApartmentModel::default();
        let _ = m.co_initialize_ex("sta", true);
        let _ = m.co_initialize_ex("client", false);
        let sta = m.marshal("sta").unwrap();
        m.post(sta, "client");
        m.co_uninitialize("sta");
        m.post(sta, "client");
        assert_eq!(m.co_initialize_ex("sta", true), S_OK, "a new STA");
        assert_eq!(m.pump("sta"), Some(0));
    }
}
