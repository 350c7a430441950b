//! Heap use of calls, counted by a counting global allocator (`stats_alloc`): goals P2 (no
//! allocation per call on a reused call object) and P5 (bytes per pending call, and a fixed
//! number of threads whatever the number of calls) of docs/performance.md.
//!
//! Counts are deterministic, so this test asserts counts, never times. The allocator's
//! counters are process-wide, and the test harness allocates when it reports a finished test,
//! so everything is one `#[test]` whose phases run in turn, on threads it controls. Even so,
//! the harness's own thread may allocate while the test starts; a "nothing per call" check
//! therefore looks at up to five windows of 10,000 calls and asks that one be empty: an
//! allocation per call would be in every window, 10,000 times.

#[allow(dead_code)] // the benchmark's other subjects
#[path = "../benches/support/p4.rs"]
mod p4;
#[path = "../benches/support/mod.rs"]
mod support;

use std::alloc::System;
use std::mem::size_of;
use std::sync::Arc;

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

use comasync::call::{AsyncInterface, ManualHandler, Pool, SyncMethodHandler};
use comasync::hresult::{RPC_S_CALLPENDING, S_OK};
use comasync::sync::{ManualResetEvent, StdEvent, INFINITE};
use support::{outstanding_calls, Call, Echo, IBenchCalls, IBenchIn, IBenchOut};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The bytes allocated and not yet freed, process-wide.
fn heap() -> isize {
    let s = INSTRUMENTED_SYSTEM.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize + s.bytes_reallocated
}

/// The allocations of the quietest of up to five runs of `window` (the first with none).
fn quietest_window(mut window: impl FnMut()) -> stats_alloc::Stats {
    let mut fewest: Option<stats_alloc::Stats> = None;
    for _ in 0..5 {
        let region = Region::new(GLOBAL);
        window();
        let s = region.change();
        if fewest.is_none_or(|f| s.allocations < f.allocations) {
            fewest = Some(s);
        }
        if s.allocations == 0 {
            break;
        }
    }
    fewest.unwrap()
}

/// The goal of P5: heap bytes per pending call, less the user's parameters.
const BYTES_PER_PENDING_CALL: f64 = 256.0;

/// The user's parameters of one call of `IBench::Ping` (its in- and out-parameters).
fn params() -> f64 {
    (size_of::<IBenchIn>() + size_of::<IBenchOut>()) as f64
}

fn a_reused_call_object_completing_inline_allocates_nothing_per_call() {
    let call = Call::new(support::inline_handler());
    for i in 0..100 {
        assert_eq!(call.round_trip(i, 0), i + 1); // warm-up
    }
    let s = quietest_window(|| {
        for i in 0..10_000 {
            assert_eq!(call.round_trip(i, 0), i + 1);
        }
    });
    assert_eq!(
        (s.allocations, s.reallocations, s.bytes_allocated),
        (0, 0, 0),
        "Begin_ + Signal + Wait(0) + Finish_ allocated: {s:?}"
    );
}

fn a_reused_call_object_served_by_a_manual_handler_allocates_nothing_per_call() {
    let handler = ManualHandler::<IBenchCalls>::new();
    let call = Call::new(handler.clone());
    let echo = Echo::create(None);
    let one = |i: u32| {
        assert_eq!(call.call.begin_ping(i), S_OK);
        assert_eq!(call.sync.wait(0, 0), RPC_S_CALLPENDING);
        let (server_call, input) = handler.take().expect("a queued call");
        let (hr, out) = IBenchCalls::invoke_sync(&*echo, input);
        server_call.complete(hr, out);
        assert_eq!(call.sync.wait(0, INFINITE), S_OK);
        assert_eq!(call.call.finish_ping(), (S_OK, i + 1));
    };
    for i in 0..100 {
        one(i); // warm-up: the handler's queue reaches its capacity
    }
    let s = quietest_window(|| {
        for i in 0..10_000 {
            one(i);
        }
    });
    assert_eq!((s.allocations, s.reallocations), (0, 0), "{s:?}");
}

fn signal_wait_and_reset_allocate_nothing() {
    let events: Vec<Arc<dyn Fn()>> = [ManualResetEvent::create(), StdEvent::create()]
        .into_iter()
        .map(|e| {
            Arc::new(move || {
                assert_eq!(e.signal(), S_OK);
                assert_eq!(e.wait(0, 0), S_OK);
                assert_eq!(e.reset(), S_OK);
                assert_eq!(e.wait(0, 0), RPC_S_CALLPENDING);
            }) as Arc<dyn Fn()>
        })
        .collect();
    let s = quietest_window(|| {
        for _ in 0..10_000 {
            for cycle in &events {
                cycle();
            }
        }
    });
    assert_eq!(s.allocations, 0, "{s:?}");
}

fn a_pending_call_costs_at_most_256_bytes_and_no_thread(pool: &Arc<Pool>) {
    let o = outstanding_calls(20_000, pool, &heap);
    let ours = o.pending_bytes - params();
    assert!(
        ours <= BYTES_PER_PENDING_CALL,
        "{ours:.1} bytes per pending call (call object {:.1} + queued job {:.1}, less {} bytes \
         of parameters) > {BYTES_PER_PENDING_CALL}",
        o.idle_bytes,
        o.pending_bytes - o.idle_bytes,
        params()
    );
    assert!(o.idle_bytes > 0.0, "the counting allocator counted nothing");
    assert_eq!(
        o.threads_during, o.threads_before,
        "20,000 outstanding calls run on the pool's threads and no other"
    );
}

fn the_number_of_threads_does_not_grow_with_the_number_of_calls(pool: &Arc<Pool>) {
    let few = outstanding_calls(100, pool, &heap);
    let many = outstanding_calls(10_000, pool, &heap);
    assert_eq!(few.threads_during, few.threads_before);
    assert_eq!(many.threads_during, many.threads_before);
    assert_eq!(few.threads_during, many.threads_during);
    // And the bytes per pending call do not grow either (the same objects, the same queue).
    assert!(
        many.pending_bytes <= few.pending_bytes + 8.0,
        "{many:?} vs {few:?}"
    );
}

fn the_pool_path_allocates_nothing_per_call_but_the_channels_blocks() {
    let call = Call::new(SyncMethodHandler::<IBenchCalls>::new(
        Echo::create(None),
        Pool::new(1),
    ));
    for i in 0..100 {
        call.round_trip(i, INFINITE);
    }
    let n = 3_100; // a whole number of the channel's 31-message blocks
    let region = Region::new(GLOBAL);
    for i in 0..n {
        assert_eq!(call.round_trip(i, INFINITE), i + 1);
    }
    let s = region.change();
    // The call object queues itself (its in-parameters wait in it): only the channel's blocks
    // (one per 31 messages), plus the one-time allocations of a first sleep if the client
    // happens to sleep for the first time in this window (its parker, the event's waiter
    // list). Nothing per call.
    assert!(
        s.allocations <= n as usize / 31 + 8,
        "{} allocations for {n} calls",
        s.allocations
    );
}

/// Issue 11's P4 path: an STA client's asynchronous call through a proxy to an MTA object
/// whose own call objects serve it (the stub begins each call on its spare server call
/// object). The call waits for an MTA worker in its call object (queued on the pool as itself),
/// the stub renews its security context, the STA's blocking `Finish_` takes a spare waker: after the first calls,
/// nothing is allocated per call but the MTA pool channel's blocks (one per 31 calls that go
/// through it rather than the pool's spot).
fn a_cross_apartment_call_allocates_nothing_per_call_but_the_channels_blocks() {
    let session = p4::Session::start(p4::P4::StaToMta);
    session.run(200);
    let n = 3_100;
    let s = quietest_window(|| {
        session.run(n);
    });
    // The session's own two messages (a command and a reply, std's channel) may allocate.
    assert!(
        s.allocations <= n as usize / 31 + 8,
        "{} allocations for {n} calls",
        s.allocations
    );
}

/// One test, its phases in turn (see the module documentation): the pool-less phases first,
/// then those on one 2-worker pool, then the one that starts a pool of its own.
#[test]
fn heap_use_of_calls() {
    a_reused_call_object_completing_inline_allocates_nothing_per_call();
    a_reused_call_object_served_by_a_manual_handler_allocates_nothing_per_call();
    signal_wait_and_reset_allocate_nothing();
    let pool = Pool::new(2);
    a_pending_call_costs_at_most_256_bytes_and_no_thread(&pool);
    the_number_of_threads_does_not_grow_with_the_number_of_calls(&pool);
    the_pool_path_allocates_nothing_per_call_but_the_channels_blocks();
    a_cross_apartment_call_allocates_nothing_per_call_but_the_channels_blocks();
}
