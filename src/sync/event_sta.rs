//! The STA's blocking wait: any or all of some handles, or the apartment's wake event (its
//! queue of incoming calls), on the event core's waiter and registrations (slow path only).

use super::many::{spin, Spin};
use super::{
    acquire_or_register_all, put_waiter, take_waiter, try_acquire_all, wait_slow, with_all_locked,
    Registration, Wake, CLOSED, HANDLE, SIGNALED,
};
use crate::sync::prim::Deadline;

/// How a wait that also listens to a wake event (an STA's message queue) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum WaitOrWake {
    /// The handles were acquired: the index (0 for a wait-all).
    Handle(usize),
    /// The wake event was signaled (and consumed) first.
    Woken,
    /// The deadline passed.
    TimedOut,
}

/// Waits for any or all of `handles`, or for the auto-reset event `wake`, until `deadline`:
/// the blocking wait of an STA, whose queue of incoming calls signals `wake`. The handles win
/// over `wake` when both are signaled (nothing is pumped when a handle is ready). Slow path
/// only: the STA's wait calls it after its own non-blocking look found nothing.
#[cold]
pub(crate) fn wait_or_wake(
    handles: &[HANDLE],
    all: bool,
    wake: &HANDLE,
    deadline: Deadline,
) -> WaitOrWake {
    // Briefly, as any wait does before it parks: the handles first (they win), then the
    // wake event.
    match spin(handles, all, || wake.0.is_signaled()) {
        Spin::Acquired(i) => return WaitOrWake::Handle(i),
        Spin::Stopped if wake.0.try_acquire() => return WaitOrWake::Woken,
        Spin::Stopped | Spin::Spent => {}
    }
    if !all {
        // A wait-any on the handles and the wake event, the wake event last (lowest index
        // wins).
        let mut hs = Vec::with_capacity(handles.len() + 1);
        hs.extend_from_slice(handles);
        hs.push(wake.clone());
        return match wait_slow(&hs, false, deadline) {
            Some(i) if i < handles.len() => WaitOrWake::Handle(i),
            Some(_) => WaitOrWake::Woken,
            None => WaitOrWake::TimedOut,
        };
    }
    // A wait-all that the wake event also wakes: registered with the wake event as a wait-all
    // waiter, which its SetEvent notifies (and does not grant).
    let w = take_waiter();
    w.begin(false);
    {
        let mut s = wake.0.state.lock();
        // Held and read in one step, as a wait-any registers (see the event core's invariants).
        if wake.0.hold_locked(&s) & (SIGNALED | CLOSED) != 0 {
            let _ = wake.0.consume(true);
            wake.0.release_locked(&s);
            drop(s);
            put_waiter(w);
            return WaitOrWake::Woken;
        }
        s.register(Registration {
            waiter: w.clone(),
            index: usize::MAX,
            all: true,
        });
        wake.0.release_locked(&s);
    }
    let done = acquire_or_register_all(handles, &w);
    let result = if done {
        WaitOrWake::Handle(0)
    } else {
        loop {
            let wake_reason = w.park(deadline);
            if with_all_locked(handles, |states| try_acquire_all(handles, states)) {
                break WaitOrWake::Handle(0);
            }
            if wake.0.try_acquire() {
                break WaitOrWake::Woken;
            }
            if wake_reason == Wake::TimedOut {
                break WaitOrWake::TimedOut;
            }
        }
    };
    if !done {
        for h in handles {
            h.0.unregister(&w);
        }
    }
    wake.0.unregister(&w);
    put_waiter(w);
    result
}
