//! Apartments: `CoInitializeEx`/`CoUninitialize`, the single-threaded apartment (STA) with its
//! queue of incoming calls, the multithreaded apartment (MTA) with its pool, and the STA's
//! modal wait that keeps dispatching incoming calls while the thread waits (spec 1.9, 3.7).
//!
//! * A thread enters an STA (`COINIT_APARTMENTTHREADED`: a new apartment of its own) or the
//!   process's one MTA (`COINIT_MULTITHREADED`) with [`co_initialize_ex`]; the calls are
//!   counted, and the last [`co_uninitialize`] leaves. Asking for the other mode while in one →
//!   `RPC_E_CHANGED_MODE`; an API that needs an apartment on a thread without one →
//!   `CO_E_NOTINITIALIZED`.
//! * An apartment has an identity ([`ApartmentId`], [`current_apartment`]) and a type
//!   ([`co_get_apartment_type`]). The MTA lives while any thread is in it; when the last one
//!   leaves, it ends, and the next `co_initialize_ex(MULTITHREADED)` makes a new one (a new id).
//! * Calls marshaled into an apartment arrive as messages: an STA's are queued for its own
//!   thread, an MTA's run on the MTA's worker pool (never a thread per call).
//! * An STA thread dispatches its queue whenever it waits through COM (`ISynchronize::Wait`,
//!   `CoWaitForMultipleHandles`, a blocking `Finish_`, a synchronous call through a proxy) or
//!   calls [`co_pump_messages`]; an MTA thread just blocks.
//!
//! # Invariants
//!
//! * The STA's wait never polls: its queue has an auto-reset wake event, set by every post,
//!   that the wait listens to beside the handles (`event::wait_or_wake`). A handle already
//!   signaled is taken without dispatching anything.
//! * A message is run once or dropped. Dropping a message (the apartment ended first) fails
//!   the call it carries with `RPC_E_DISCONNECTED`, so no call waits for an apartment that is
//!   gone: a post after the end is refused, and the end drains what was queued.
//! * No lock is held while a message (user code) runs.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU32, AtomicU64};
use std::sync::Arc;

use crate::call::Pool;
use crate::hresult::{
    Result, CO_E_NOTINITIALIZED, E_INVALIDARG, HRESULT, RPC_E_CHANGED_MODE, RPC_E_DISCONNECTED,
    S_FALSE, S_OK,
};
use crate::sync::event::{wait_handles, wait_or_wake, WaitOrWake};
use crate::sync::prim::{AtomicBool, Deadline, Mutex, Ordering};
use crate::sync::HANDLE;
use crate::Error;

/// `COINIT_MULTITHREADED`: enter the process's multithreaded apartment.
pub const COINIT_MULTITHREADED: u32 = 0x0;
/// `COINIT_APARTMENTTHREADED`: make the thread a single-threaded apartment.
pub const COINIT_APARTMENTTHREADED: u32 = 0x2;
/// `COINIT_DISABLE_OLE1DDE`: accepted, no effect.
pub const COINIT_DISABLE_OLE1DDE: u32 = 0x4;
/// `COINIT_SPEED_OVER_MEMORY`: accepted, no effect.
pub const COINIT_SPEED_OVER_MEMORY: u32 = 0x8;

/// The kind of an apartment (`APTTYPE`; the values are COM's).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AptType {
    /// `APTTYPE_STA` (0): a single-threaded apartment.
    Sta = 0,
    /// `APTTYPE_MTA` (1): the multithreaded apartment.
    Mta = 1,
}

/// An apartment's identity: unique for the life of the process (a new STA, or the MTA made
/// again after it ended, gets a new one).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApartmentId(pub u64);

/// A unit of work queued for an apartment: runs once, or is dropped (see the module docs).
pub(crate) type Message = Box<dyn FnOnce() + Send>;

/// A message for an apartment ([`Apartment::post`]): run once there, or dropped (failing the
/// call it carries with `RPC_E_DISCONNECTED`).
pub(crate) trait Incoming: Send + 'static {
    /// The apartment the message is for (`None`: it has none any more; dropped unrun).
    fn apartment(&self) -> Option<&Arc<Apartment>>;
    /// Runs the message, in its apartment.
    fn run(self);
}

/// One apartment (see the module docs).
///
/// Aligned to a cache line, so that the `Arc`'s reference counts (taken and dropped by the
/// MTA's workers for each call they run) do not share a line with the fields every caller
/// reads (`alive`, `kind`, `id`).
#[repr(align(64))]
pub(crate) struct Apartment {
    id: ApartmentId,
    kind: AptType,
    alive: AtomicBool,
    /// STA: the queue of incoming calls (`None` once ended); unused for the MTA.
    queue: Mutex<Option<VecDeque<Message>>>,
    /// STA: set by every post; the STA's waits listen to it.
    wake: HANDLE,
    /// What to do when the apartment ends (its stubs disconnect their calls in progress).
    on_end: Mutex<Vec<Message>>,
    /// STA: how many messages its thread has dispatched (read by the scenario runner's trace).
    dispatched: AtomicU64,
    /// STA, while a harness observes (`sync::observe`): what the messages its thread ran
    /// said they were ([`note_dispatch`]), until the harness takes them.
    ran: Mutex<Vec<String>>,
    /// Under loom, the MTA's own one-worker pool (a model's threads live in one execution of
    /// the model: a process-wide pool would outlive it); it ends with the apartment object.
    #[cfg(loom)]
    pool: Option<Arc<Pool>>,
}

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

use std::sync::atomic::Ordering::Relaxed;

/// The MTA, if any thread is in it, and how many `co_initialize_ex` calls keep it.
static MTA: parking_lot::Mutex<Option<(Arc<Apartment>, u64)>> = parking_lot::Mutex::new(None);

/// The pool that runs the MTA's incoming calls (kept apart from `Pool::global`, whose workers
/// serve call objects: an MTA method that blocks on such a call cannot starve it).
#[cfg(not(loom))]
fn mta_pool() -> &'static Arc<Pool> {
    static POOL: std::sync::OnceLock<Arc<Pool>> = std::sync::OnceLock::new();
    POOL.get_or_init(|| Pool::new(4))
}

/// The current thread's apartment: the one it entered (and how many times), or the one it is
/// running an incoming call of (an MTA pool worker).
#[derive(Default)]
struct ThreadApt {
    entered: Option<(Arc<Apartment>, u32)>,
    borrowed: Vec<Arc<Apartment>>,
}

// Per loom thread under loom (the model checks run threads on one OS thread).
crate::sync::prim::waiter_local! {
    static CURRENT: RefCell<ThreadApt> = const {
        RefCell::new(ThreadApt {
            entered: None,
            borrowed: Vec::new(),
        })
    };
}

crate::sync::prim::waiter_local! {
    static THREAD_ID: Cell<u32> = const { Cell::new(0) };
}

impl Apartment {
    fn new(kind: AptType) -> Arc<Apartment> {
        Arc::new(Apartment {
            id: ApartmentId(NEXT_ID.fetch_add(1, Relaxed)),
            kind,
            alive: AtomicBool::new(true),
            queue: Mutex::new(match kind {
                AptType::Sta => Some(VecDeque::new()),
                AptType::Mta => None,
            }),
            wake: HANDLE::create_event(false, false),
            on_end: Mutex::new(Vec::new()),
            dispatched: AtomicU64::new(0),
            ran: Mutex::new(Vec::new()),
            #[cfg(loom)]
            pool: (kind == AptType::Mta).then(|| Pool::new(1)),
        })
    }

    /// The pool that runs this MTA's incoming calls.
    #[cfg(not(loom))]
    pub(crate) fn pool(&self) -> Option<&Arc<Pool>> {
        Some(mta_pool())
    }

    /// The pool that runs this MTA's incoming calls.
    #[cfg(loom)]
    pub(crate) fn pool(&self) -> Option<&Arc<Pool>> {
        self.pool.as_ref()
    }

    pub(crate) fn id(&self) -> ApartmentId {
        self.id
    }

    pub(crate) fn kind(&self) -> AptType {
        self.kind
    }

    /// How many messages this apartment's thread has dispatched so far (0 for the MTA).
    pub(crate) fn dispatched(&self) -> u64 {
        self.dispatched.load(Ordering::Acquire)
    }

    /// What the messages this STA's thread ran said they were ([`note_dispatch`]), since the
    /// last call; recorded only while a harness observes.
    pub(crate) fn take_ran(&self) -> Vec<String> {
        std::mem::take(&mut *self.ran.lock())
    }

    pub(crate) fn is_alive(&self) -> bool {
        self.alive.load(Ordering::Acquire)
    }

    /// Whether the current thread is in this apartment.
    pub(crate) fn is_current(&self) -> bool {
        current_apartment() == Some(self.id)
    }

    /// Queues `msg` for the apartment: on the STA's thread, or on the MTA's pool (boxed once,
    /// either way). If the apartment has ended, `msg` is dropped (failing its call) and
    /// `RPC_E_DISCONNECTED` returned.
    ///
    /// The message names its apartment ([`Incoming::apartment`]): an MTA worker takes its
    /// reference on the apartment while it runs the message, so the posting thread does not
    /// touch the apartment's reference count (a cache line the worker would then have to take
    /// back, docs/performance.md, P4).
    pub(crate) fn post(&self, msg: impl Incoming) -> HRESULT {
        match self.kind {
            AptType::Sta => {
                let mut q = self.queue.lock();
                match q.as_mut() {
                    Some(q) => q.push_back(Box::new(move || msg.run())),
                    None => {
                        drop(q);
                        drop(msg);
                        return RPC_E_DISCONNECTED;
                    }
                }
                drop(q);
                self.wake.set_event();
                S_OK
            }
            AptType::Mta => {
                if !self.is_alive() {
                    drop(msg);
                    return RPC_E_DISCONNECTED;
                }
                let Some(pool) = self.pool() else {
                    drop(msg);
                    return RPC_E_DISCONNECTED;
                };
                pool.execute(move || {
                    // Dropped unrun (failing its call) if the MTA ended meanwhile.
                    if let Some(apt) = msg.apartment().cloned() {
                        apt.run_incoming(move || msg.run());
                    }
                });
                S_OK
            }
        }
    }

    /// Runs `msg` on the current MTA worker as a message of this MTA (the thread counts as in
    /// it meanwhile), as [`post`](Self::post)'s jobs do; `false`, without running it, if the
    /// apartment has ended.
    pub(crate) fn run_incoming(self: Arc<Self>, msg: impl FnOnce()) -> bool {
        if !self.is_alive() {
            return false;
        }
        let _in = Borrowed::enter(self);
        run(msg);
        true
    }

    /// Runs the STA's queued messages (at most 100 a round, as Wine's modal loop does; the
    /// wake event is set again if more remain). The number run.
    fn pump(&self) -> usize {
        let mut n = 0;
        while n < 100 {
            let msg = match self.queue.lock().as_mut().and_then(VecDeque::pop_front) {
                Some(m) => m,
                None => return n,
            };
            run(msg);
            self.dispatched.fetch_add(1, Ordering::Release);
            n += 1;
        }
        if self.queue.lock().as_ref().is_some_and(|q| !q.is_empty()) {
            self.wake.set_event();
        }
        n
    }

    /// Runs `f` when the apartment ends (at once if it has).
    pub(crate) fn on_end(&self, f: Message) {
        let mut list = self.on_end.lock();
        if self.is_alive() {
            list.push(f);
        } else {
            drop(list);
            run(f);
        }
    }

    /// The end of the apartment: refuses later posts, drops what is queued (failing those
    /// calls) and disconnects its stubs' calls in progress.
    fn end(&self) {
        let ends = {
            let mut list = self.on_end.lock();
            self.alive.store(false, Ordering::Release);
            std::mem::take(&mut *list)
        };
        let drained = self.queue.lock().take();
        drop(drained);
        for f in ends {
            run(f);
        }
    }
}

/// Runs a message; a panic in it (it catches the server's own) does not unwind into the
/// wait that dispatched it.
fn run(msg: impl FnOnce()) {
    let _ = catch_unwind(AssertUnwindSafe(msg));
}

/// An MTA pool worker counts as in the MTA while it runs one of its calls.
struct Borrowed;

impl Borrowed {
    fn enter(apt: Arc<Apartment>) -> Borrowed {
        CURRENT.with(|c| c.borrow_mut().borrowed.push(apt));
        Borrowed
    }
}

impl Drop for Borrowed {
    fn drop(&mut self) {
        let _ = CURRENT.try_with(|c| c.borrow_mut().borrowed.pop());
    }
}

/// A thread that exits without its last `co_uninitialize` leaves its apartment then: an STA
/// ends (its queued calls fail with `RPC_E_DISCONNECTED` instead of waiting forever), and the
/// MTA loses the thread's count.
impl Drop for ThreadApt {
    fn drop(&mut self) {
        if let Some((apt, n)) = self.entered.take() {
            if apt.kind == AptType::Mta {
                let mut mta = MTA.lock();
                if let Some((m, count)) = mta.as_mut() {
                    if m.id == apt.id {
                        *count = count.saturating_sub(u64::from(n));
                        if *count > 0 {
                            return;
                        }
                        *mta = None;
                    }
                }
            }
            apt.end();
        }
    }
}

/// The current thread's apartment, if any.
pub(crate) fn current() -> Option<Arc<Apartment>> {
    CURRENT
        .try_with(|c| {
            let c = c.borrow();
            c.entered
                .as_ref()
                .map(|(a, _)| a.clone())
                .or_else(|| c.borrowed.last().cloned())
        })
        .ok()
        .flatten()
}

/// A message running on an STA's thread says what it is (`what()`), for a harness's trace:
/// recorded only while a harness observes (`sync::observe`), so it costs one atomic load
/// otherwise.
pub(crate) fn note_dispatch(what: impl FnOnce() -> String) {
    if crate::sync::observe::observed() {
        if let Some(sta) = current_sta() {
            sta.ran.lock().push(what());
        }
    }
}

/// The current thread's STA, if it is in one (the waits that pump ask this).
#[inline]
pub(crate) fn current_sta() -> Option<Arc<Apartment>> {
    current().filter(|a| a.kind == AptType::Sta)
}

/// `CoInitializeEx(pvReserved, dwCoInit)`: enters an apartment on the current thread.
///
/// `S_OK` the first time; `S_FALSE` for a further call in the same mode (counted: each needs
/// its [`co_uninitialize`]); `RPC_E_CHANGED_MODE` for the other mode (not counted);
/// `E_INVALIDARG` for a reserved pointer or unknown flags.
///
/// ```
/// use comasync::apartment::*;
/// use comasync::hresult::{RPC_E_CHANGED_MODE, S_FALSE, S_OK};
///
/// std::thread::spawn(|| {
///     assert_eq!(co_initialize_ex(None, COINIT_APARTMENTTHREADED), S_OK);
///     assert_eq!(co_initialize_ex(None, COINIT_APARTMENTTHREADED), S_FALSE); // counted
///     assert_eq!(co_initialize_ex(None, COINIT_MULTITHREADED), RPC_E_CHANGED_MODE);
///     assert_eq!(co_get_apartment_type(), Ok(AptType::Sta));
///     co_uninitialize();
///     co_uninitialize(); // the last one leaves the STA
///     assert!(current_apartment().is_none());
/// })
/// .join()
/// .unwrap();
/// ```
pub fn co_initialize_ex(reserved: Option<&mut dyn std::any::Any>, coinit: u32) -> HRESULT {
    if reserved.is_some()
        || coinit & !(COINIT_APARTMENTTHREADED | COINIT_DISABLE_OLE1DDE | COINIT_SPEED_OVER_MEMORY)
            != 0
    {
        return E_INVALIDARG;
    }
    let kind = if coinit & COINIT_APARTMENTTHREADED != 0 {
        AptType::Sta
    } else {
        AptType::Mta
    };
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        if let Some((apt, n)) = &mut c.entered {
            if apt.kind != kind {
                return RPC_E_CHANGED_MODE;
            }
            *n += 1;
            if kind == AptType::Mta {
                if let Some((_, count)) = MTA.lock().as_mut() {
                    *count += 1;
                }
            }
            return S_FALSE;
        }
        let apt = match kind {
            AptType::Sta => Apartment::new(AptType::Sta),
            AptType::Mta => {
                let mut mta = MTA.lock();
                let (apt, count) = mta.get_or_insert_with(|| (Apartment::new(AptType::Mta), 0));
                *count += 1;
                apt.clone()
            }
        };
        c.entered = Some((apt, 1));
        S_OK
    })
}

/// `CoInitialize(NULL)`: `co_initialize_ex(None, COINIT_APARTMENTTHREADED)`.
pub fn co_initialize() -> HRESULT {
    co_initialize_ex(None, COINIT_APARTMENTTHREADED)
}

/// `CoUninitialize()`: undoes one successful [`co_initialize_ex`] (`S_OK` or `S_FALSE`).
/// The last one leaves the apartment. An STA ends then: calls queued for it, and calls made
/// to its objects later, fail with `RPC_E_DISCONNECTED`. The MTA ends when its last thread
/// leaves. With no apartment, nothing happens (as on Windows).
pub fn co_uninitialize() {
    let ended = CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        let (apt, n) = c.entered.as_mut()?;
        let apt = apt.clone();
        if apt.kind == AptType::Mta {
            let mut mta = MTA.lock();
            if let Some((m, count)) = mta.as_mut() {
                if m.id == apt.id {
                    *count -= 1;
                    if *count == 0 {
                        *mta = None;
                    }
                }
            }
        }
        *n -= 1;
        if *n > 0 {
            return None;
        }
        c.entered = None;
        Some(apt)
    });
    if let Some(apt) = ended {
        let still_mta =
            apt.kind == AptType::Mta && MTA.lock().as_ref().is_some_and(|(m, _)| m.id == apt.id);
        if !still_mta {
            apt.end(); // outside the thread-local borrow: dropped messages run user drops
        }
    }
}

/// `CoGetApartmentType`: the current thread's apartment type, or `CO_E_NOTINITIALIZED`.
pub fn co_get_apartment_type() -> Result<AptType> {
    current().map(|a| a.kind).ok_or(Error(CO_E_NOTINITIALIZED))
}

/// The identity of the current thread's apartment (`None` without one). Two threads in the
/// MTA see the same id; every STA has its own.
///
/// ```
/// use comasync::apartment::*;
/// assert_eq!(co_initialize_ex(None, COINIT_MULTITHREADED), comasync::hresult::S_OK);
/// let here = current_apartment().unwrap();
/// let there = std::thread::spawn(|| {
///     co_initialize_ex(None, COINIT_MULTITHREADED);
///     let id = current_apartment();
///     co_uninitialize();
///     id
/// })
/// .join()
/// .unwrap();
/// assert_eq!(there, Some(here)); // one MTA per process
/// co_uninitialize();
/// ```
pub fn current_apartment() -> Option<ApartmentId> {
    CURRENT
        .try_with(|c| {
            let c = c.borrow();
            c.entered
                .as_ref()
                .map(|(a, _)| a.id)
                .or_else(|| c.borrowed.last().map(|a| a.id))
        })
        .ok()
        .flatten()
}

/// `GetCurrentThreadId()`: a number for the current thread, unique in the process, never 0
/// (what [`co_cancel_call`](crate::call::co_cancel_call) takes).
pub fn get_current_thread_id() -> u32 {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    THREAD_ID.with(|c| {
        if c.get() == 0 {
            c.set(NEXT.fetch_add(1, Relaxed));
        }
        c.get()
    })
}

/// Dispatches the calls queued for the current thread's STA now, without waiting (the
/// `PeekMessage`/`DispatchMessage` loop of a Windows STA). The number dispatched; 0 outside
/// an STA.
pub fn co_pump_messages() -> usize {
    match current_sta() {
        Some(sta) => {
            let mut total = 0;
            loop {
                let n = sta.pump();
                total += n;
                if n == 0 {
                    return total;
                }
            }
        }
        None => 0,
    }
}

crate::sync::prim::waiter_local! {
    /// Auto-reset events this thread's STA waits have used, for the next ones ([`StaWaker`]).
    static WAKERS: RefCell<Vec<HANDLE>> = const { RefCell::new(Vec::new()) };
}

/// An auto-reset event for one STA wait of the current thread (a blocking `Finish_`, a
/// windowed `Cancel`: woken by the call's completion), taken from the thread's own spares
/// (nested waits each take one), so that waiting allocates nothing once the thread has waited
/// as deeply before. Reset and given back when dropped.
pub(crate) struct StaWaker(HANDLE);

impl StaWaker {
    pub(crate) fn take() -> StaWaker {
        let spare = WAKERS.try_with(|w| w.borrow_mut().pop()).ok().flatten();
        StaWaker(spare.unwrap_or_else(|| HANDLE::create_event(false, false)))
    }

    /// The event.
    pub(crate) fn handle(&self) -> &HANDLE {
        &self.0
    }
}

impl Drop for StaWaker {
    fn drop(&mut self) {
        self.0.reset_event(); // a late wake-up is not carried to the next wait
        let _ = WAKERS.try_with(|w| w.borrow_mut().push(self.0.clone()));
    }
}

/// The STA's modal wait for any or all of `handles` (`None` on timeout): takes a signaled
/// handle at once without dispatching; otherwise dispatches incoming calls whenever they
/// arrive, until the handles are signaled or the timeout passes.
pub(crate) fn sta_wait(
    sta: &Apartment,
    handles: &[HANDLE],
    all: bool,
    timeout_ms: u32,
) -> Option<usize> {
    if let Some(i) = wait_handles(handles, all, 0) {
        return Some(i);
    }
    if timeout_ms == 0 {
        return None;
    }
    sta_wait_until(sta, handles, all, Deadline::after_ms(timeout_ms))
}

/// [`sta_wait`] until `deadline`, after the caller's own non-blocking look.
pub(crate) fn sta_wait_until(
    sta: &Apartment,
    handles: &[HANDLE],
    all: bool,
    deadline: Deadline,
) -> Option<usize> {
    loop {
        let woke = crate::sync::observe::in_sta_wait(sta.id, || {
            wait_or_wake(handles, all, &sta.wake, deadline)
        });
        match woke {
            WaitOrWake::Handle(i) => return Some(i),
            WaitOrWake::TimedOut => return None,
            WaitOrWake::Woken => {
                sta.pump();
            }
        }
    }
}
