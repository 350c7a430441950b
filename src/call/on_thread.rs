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
    static SERVING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

crate::sync::prim::waiter_local! {
    static DELIVERING: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// The two things a thread can be doing for a call object.
#[derive(Clone, Copy)]
enum Role {
    Serving,
    Delivering,
}

/// Runs `f` on the current thread's list of objects for `role`; `None` while the thread's
/// locals are being destroyed.
fn with_list<R>(role: Role, f: impl FnOnce(&mut Vec<usize>) -> R) -> Option<R> {
    let key = match role {
        Role::Serving => &SERVING,
        Role::Delivering => &DELIVERING,
    };
    key.try_with(|list| f(&mut list.borrow_mut())).ok()
}

/// The current thread serves a call of, or delivers an outer's `Signal` for, the object at an
/// address until the guard drops.
pub(crate) struct Mark {
    role: Role,
    addr: usize,
}

impl Mark {
    /// The current thread serves a call of the object at `addr` (runs the server's method).
    pub(crate) fn serving(addr: usize) -> Mark {
        Mark::enter(Role::Serving, addr)
    }

    /// The current thread talks to the outer of the object at `addr` (its `Signal`, or the
    /// `Reset` of a `Begin_`).
    pub(crate) fn delivering(addr: usize) -> Mark {
        Mark::enter(Role::Delivering, addr)
    }

    fn enter(role: Role, addr: usize) -> Mark {
        with_list(role, |list| list.push(addr));
        Mark { role, addr }
    }
}

impl Drop for Mark {
    fn drop(&mut self) {
        with_list(self.role, |list| {
            // Marks nest: the innermost is the last (no move of the others).
            if list.last() == Some(&self.addr) {
                list.pop();
            } else if let Some(i) = list.iter().rposition(|&a| a == self.addr) {
                list.remove(i);
            }
        });
    }
}

/// Whether the current thread is serving a call of the object at `addr`.
pub(crate) fn is_serving(addr: usize) -> bool {
    with_list(Role::Serving, |list| list.contains(&addr)).unwrap_or(false)
}

/// Whether the current thread is delivering an outer's `Signal` for the object at `addr`.
pub(crate) fn is_delivering(addr: usize) -> bool {
    with_list(Role::Delivering, |list| list.contains(&addr)).unwrap_or(false)
}
