//! Win32 `HANDLE` values for comasync's events.
//!
//! windows-rs code sees an event as a `HANDLE` (a pointer-sized number), comasync as a
//! [`comasync::sync::HANDLE`] (a shared event). This table maps the first to the second: the
//! value of a handle is its event's [`id`](comasync::sync::HANDLE::id) (the event's address,
//! never 0 or −1), entered while some object holds a [`Registered`] for it.
//!
//! Invariant: a value is in the table exactly while at least one [`Registered`] for it is
//! alive (a count per value), so a handle stays valid as long as an object that handed it
//! out lives, and the table holds no event nobody can name.

use std::collections::HashMap;
use std::sync::OnceLock;

use comasync::sync::HANDLE as Event;
use parking_lot::Mutex;

use crate::bindings::Windows::Win32::Foundation::HANDLE;

/// The table: a handle value → its event and how many [`Registered`] name it.
fn table() -> &'static Mutex<HashMap<usize, (Event, usize)>> {
    static TABLE: OnceLock<Mutex<HashMap<usize, (Event, usize)>>> = OnceLock::new();
    TABLE.get_or_init(Default::default)
}

/// The `HANDLE` value of an event (whether or not it is registered).
pub fn value_of(event: &Event) -> HANDLE {
    HANDLE(event.id() as *mut core::ffi::c_void)
}

/// The event a `HANDLE` names, if an object that handed it out is alive.
pub fn lookup(handle: HANDLE) -> Option<Event> {
    table()
        .lock()
        .get(&(handle.0 as usize))
        .map(|(e, _)| e.clone())
}

/// How many handle values are registered now (for leak tests).
pub fn registered_count() -> usize {
    table().lock().len()
}

/// One registration of an event's handle value; dropping it unregisters.
pub struct Registered {
    event: Event,
}

impl Registered {
    /// Registers `event`'s handle value (once more, if it already is).
    pub fn new(event: &Event) -> Registered {
        table()
            .lock()
            .entry(event.id())
            .or_insert_with(|| (event.clone(), 0))
            .1 += 1;
        Registered {
            event: event.clone(),
        }
    }

    /// The event.
    pub fn event(&self) -> &Event {
        &self.event
    }

    /// Its `HANDLE` value.
    pub fn handle(&self) -> HANDLE {
        value_of(&self.event)
    }
}

impl Drop for Registered {
    fn drop(&mut self) {
        let removed = {
            let mut t = table().lock();
            let id = self.event.id();
            match t.get_mut(&id) {
                Some((_, n)) if *n > 1 => {
                    *n -= 1;
                    None
                }
                Some(_) => t.remove(&id),
                None => None,
            }
        };
        drop(removed); // the event's last table reference goes outside the lock
    }
}
