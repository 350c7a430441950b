//! What the current thread is doing for which call object: serving one of its calls (running
//! the server's method), or delivering an aggregating outer's `Signal` for it.
//!
//! The call object asks this, never the user: it is how comasync turns two re-entrant
//! patterns that would deadlock or recurse without bound into defined behaviour.
//!
//! * A server's method that calls a blocking `Finish_` or a windowed `Cancel` on the very call
//!   object it is serving would wait for itself: `Finish_` returns `RPC_S_CALLPENDING` and
//!   `Cancel` does not wait out its window (docs/model.md, "Re-entrancy").
//! * A completion that happens inside an outer's `Signal` on the same thread (the outer's
//!   callback began the next call and the server completed it at once) is not delivered by a
//!   nested `Signal`: it is left for the delivering thread's loop, so a chain of thousands of
//!   calls begun from completion callbacks runs in constant stack.
//!
//! # Invariants
//!
//! * Every `enter` is paired with the drop of its guard on the same thread, also when the
//!   code between panics; so a thread never reads as serving or delivering after it returned.
//! * Call objects are named by address; an object is alive while a thread is serving or
//!   delivering for it (that thread holds a reference), so an address is never reused for
//!   another object while it is recorded.

use std::cell::RefCell;

crate::sync::prim::waiter_local! {
    static SERVING: RefCell<Vec<usize>> = RefCell::new(Vec::new());
}

crate::sync::prim::waiter_local! {
    static DELIVERING: RefCell<Vec<usize>> = RefCell::new(Vec::new());
}

/// The current thread serves a call of the object at `addr` until the guard drops.
pub(crate) struct Serving(usize);

impl Serving {
    pub(crate) fn enter(addr: usize) -> Serving {
        let _ = SERVING.try_with(|s| s.borrow_mut().push(addr));
        Serving(addr)
    }
}

impl Drop for Serving {
    fn drop(&mut self) {
        let _ = SERVING.try_with(|s| {
            let mut s = s.borrow_mut();
            if let Some(i) = s.iter().rposition(|&a| a == self.0) {
                s.remove(i);
            }
        });
    }
}

/// The current thread delivers an outer's `Signal` for the object at `addr` until the guard
/// drops.
pub(crate) struct Delivering(usize);

impl Delivering {
    pub(crate) fn enter(addr: usize) -> Delivering {
        let _ = DELIVERING.try_with(|s| s.borrow_mut().push(addr));
        Delivering(addr)
    }
}

impl Drop for Delivering {
    fn drop(&mut self) {
        let _ = DELIVERING.try_with(|s| {
            let mut s = s.borrow_mut();
            if let Some(i) = s.iter().rposition(|&a| a == self.0) {
                s.remove(i);
            }
        });
    }
}

/// Whether the current thread is serving a call of the object at `addr`.
pub(crate) fn is_serving(addr: usize) -> bool {
    SERVING
        .try_with(|s| s.borrow().contains(&addr))
        .unwrap_or(false)
}

/// Whether the current thread is delivering an outer's `Signal` for the object at `addr`.
pub(crate) fn is_delivering(addr: usize) -> bool {
    DELIVERING
        .try_with(|s| s.borrow().contains(&addr))
        .unwrap_or(false)
}
