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
//! * A thread's marks for one role form a stack: the innermost is the last. The first
//!   [`INLINE`] live in a thread-local without a destructor (a plain load and store, no
//!   registration check, on every call's path); deeper ones spill to a vector.

use std::cell::{Cell, RefCell};

/// How many marks of one role a thread keeps without the heap.
const INLINE: usize = 4;

/// The marks of one role on one thread: the first [`INLINE`] inline, the rest in a spill
/// vector (a thread-local of its own, reached only past that depth).
struct Marks {
    len: Cell<usize>,
    inline: [Cell<usize>; INLINE],
}

impl Marks {
    const fn new() -> Marks {
        Marks {
            len: Cell::new(0),
            inline: [const { Cell::new(0) }; INLINE],
        }
    }
}

crate::sync::prim::waiter_local! {
    static SERVING: Marks = const { Marks::new() };
}

crate::sync::prim::waiter_local! {
    static DELIVERING: Marks = const { Marks::new() };
}

crate::sync::prim::waiter_local! {
    static SERVING_SPILL: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

crate::sync::prim::waiter_local! {
    static DELIVERING_SPILL: RefCell<Vec<usize>> = const { RefCell::new(Vec::new()) };
}

/// The two things a thread can be doing for a call object.
#[derive(Clone, Copy)]
enum Role {
    Serving,
    Delivering,
}

impl Role {
    /// Runs `f` on this thread's marks for the role; `None` while the thread's locals are
    /// being destroyed.
    fn with<R>(self, f: impl FnOnce(&Marks) -> R) -> Option<R> {
        let key = match self {
            Role::Serving => &SERVING,
            Role::Delivering => &DELIVERING,
        };
        key.try_with(f).ok()
    }

    /// Runs `f` on this thread's spilled marks for the role (`None` as [`Role::with`]).
    fn with_spill<R>(self, f: impl FnOnce(&mut Vec<usize>) -> R) -> Option<R> {
        let key = match self {
            Role::Serving => &SERVING_SPILL,
            Role::Delivering => &DELIVERING_SPILL,
        };
        key.try_with(|v| f(&mut v.borrow_mut())).ok()
    }

    #[inline]
    fn push(self, addr: usize) {
        self.with(|m| {
            let n = m.len.get();
            if n < INLINE {
                m.inline[n].set(addr);
            } else {
                self.spill(addr);
            }
            m.len.set(n + 1);
        });
    }

    #[cold]
    fn spill(self, addr: usize) {
        self.with_spill(|v| v.push(addr));
    }

    /// Removes the innermost mark for `addr` (marks nest: it is almost always the last).
    #[inline]
    fn remove(self, addr: usize) {
        self.with(|m| {
            let n = m.len.get();
            if n != 0 && n <= INLINE && m.inline[n - 1].get() == addr {
                m.len.set(n - 1);
            } else {
                self.remove_slow(m, addr);
            }
        });
    }

    /// [`Role::remove`] past the inline depth, or of a mark that is not the innermost: the
    /// stack is rebuilt without it.
    #[cold]
    fn remove_slow(self, m: &Marks, addr: usize) {
        let n = m.len.get();
        let mut all: Vec<usize> = m.inline[..n.min(INLINE)].iter().map(Cell::get).collect();
        if n > INLINE {
            self.with_spill(|v| all.append(v));
        }
        if let Some(i) = all.iter().rposition(|&a| a == addr) {
            all.remove(i);
        }
        for (cell, &a) in m.inline.iter().zip(&all) {
            cell.set(a);
        }
        if all.len() > INLINE {
            self.with_spill(|v| v.extend_from_slice(&all[INLINE..]));
        }
        m.len.set(all.len());
    }

    #[inline]
    fn contains(self, addr: usize) -> bool {
        self.with(|m| {
            let n = m.len.get();
            m.inline[..n.min(INLINE)].iter().any(|c| c.get() == addr)
                || (n > INLINE && self.with_spill(|v| v.contains(&addr)) == Some(true))
        }) == Some(true)
    }
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

    #[inline]
    fn enter(role: Role, addr: usize) -> Mark {
        role.push(addr);
        Mark { role, addr }
    }
}

impl Drop for Mark {
    #[inline]
    fn drop(&mut self) {
        self.role.remove(self.addr);
    }
}

/// Whether the current thread is serving a call of the object at `addr`.
#[inline]
pub(crate) fn is_serving(addr: usize) -> bool {
    Role::Serving.contains(addr)
}

/// Whether the current thread is delivering an outer's `Signal` for the object at `addr`.
#[inline]
pub(crate) fn is_delivering(addr: usize) -> bool {
    Role::Delivering.contains(addr)
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;

    #[test]
    fn marks_nest_past_the_inline_depth_and_leave_in_any_order() {
        let addrs: Vec<usize> = (1..=INLINE * 2 + 1).map(|a| a * 16).collect();
        let mut marks: Vec<Option<Mark>> = addrs.iter().map(|&a| Some(Mark::serving(a))).collect();
        assert!(addrs.iter().all(|&a| is_serving(a)));
        assert!(!is_delivering(addrs[0]));
        // Leave out of order: one spilled, one inline, then the innermost.
        for i in [INLINE + 1, 1, addrs.len() - 1] {
            marks[i] = None;
            assert!(!is_serving(addrs[i]), "mark {i} still counted");
        }
        for (i, &a) in addrs.iter().enumerate() {
            assert_eq!(is_serving(a), marks[i].is_some(), "mark {i}");
        }
        drop(marks);
        assert!(addrs.iter().all(|&a| !is_serving(a)));
        SERVING.with(|m| assert_eq!(m.len.get(), 0));
        SERVING_SPILL.with(|v| assert!(v.borrow().is_empty()));
    }

    #[test]
    fn the_same_object_marked_twice_stays_marked_until_both_leave() {
        let outer = Mark::delivering(64);
        let inner = Mark::delivering(64);
        drop(inner);
        assert!(is_delivering(64));
        drop(outer);
        assert!(!is_delivering(64));
    }
}
