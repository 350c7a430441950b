//! `cargo bench --bench memory`: the counted half of issue "Performance" — heap allocations
//! per call (P2) and heap bytes per pending call (P5), under a counting global allocator
//! (`stats_alloc`). Counts, not times: the figures are the same on every run.
//!
//! Its lines are printed and also left in `target/<profile>/comasync-memory.txt`, which the
//! closing summary of `benches/performance.rs` (run after this one by `cargo bench`) repeats.
//! It lives in its own executable because the counting allocator would slow every allocation
//! of the timed benchmarks.

mod support;

use std::alloc::System;
use std::mem::size_of;

use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};

use comasync::call::{ManualHandler, Pool, SyncMethodHandler};
use comasync::sync::INFINITE;
use support::{outstanding_calls, outstanding_channels, Call, Echo, IBenchCalls, IBenchIn};

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

/// The bytes allocated and not yet freed, process-wide.
fn heap() -> isize {
    let s = INSTRUMENTED_SYSTEM.stats();
    s.bytes_allocated as isize - s.bytes_deallocated as isize + s.bytes_reallocated
}

/// Allocations per call over `n` calls of `call` (after `n / 10` calls of warm-up).
fn allocations_per_call(c: &Call, n: u32, timeout_ms: u32) -> (f64, f64) {
    for i in 0..n / 10 {
        c.round_trip(i, timeout_ms);
    }
    let region = Region::new(GLOBAL);
    for i in 0..n {
        c.round_trip(i, timeout_ms);
    }
    let s = region.change();
    (
        s.allocations as f64 / n as f64,
        s.bytes_allocated as f64 / n as f64,
    )
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let n_calls = if full { 100_000 } else { 1_000 };
    let mut lines = Vec::new();

    // P2: a reused call object completing on the same thread.
    let inline = Call::new(support::inline_handler());
    let (allocs, _) = allocations_per_call(&inline, 10_000, 0);
    lines.push(format!(
        "P2 heap allocations per call on a reused call object (inline) = {allocs} (goal 0) {}",
        if allocs == 0.0 { "met" } else { "NOT MET" }
    ));

    // The cross-thread paths of P1, for information.
    let pool = Call::new(SyncMethodHandler::<IBenchCalls>::new(
        Echo::create(None),
        Pool::new(1),
    ));
    let (allocs, bytes) = allocations_per_call(&pool, 10_000, INFINITE);
    lines.push(format!(
        "P1 heap allocations per call, SyncMethodHandler on a Pool = {allocs:.3} ({bytes:.1} bytes: \
         the call object queues itself, its in-parameters wait in it; a job handed over on the \
         pool's spot allocates nothing, one that goes through the channel a 31st of a block) \
         (no goal)"
    ));
    let manual_handler = ManualHandler::<IBenchCalls>::new();
    let manual = Call::new(manual_handler.clone());
    let server = std::thread::spawn(move || {
        let echo = Echo::create(None);
        for _ in 0..11_000 {
            let (call, input) = manual_handler.take_wait(INFINITE).unwrap();
            let IBenchIn::Ping { n } = input;
            call.complete(
                comasync::hresult::S_OK,
                support::IBenchOut::Ping { m: n + 1 },
            );
        }
        drop(echo);
    });
    let (allocs, _) = allocations_per_call(&manual, 10_000, INFINITE);
    server.join().unwrap();
    lines.push(format!(
        "P1 heap allocations per call, ManualHandler + server thread = {allocs:.3} (no goal)"
    ));

    // P5: bytes per pending call.
    let pool = Pool::new(2);
    let o = outstanding_calls(n_calls, &pool, &heap);
    let params = (size_of::<support::IBenchIn>() + size_of::<support::IBenchOut>()) as f64;
    let ours = o.pending_bytes - params;
    lines.push(format!(
        "P5 heap bytes per pending call ({n_calls} calls, 2 workers, less the {params} bytes of \
         parameters) = {ours:.1} (goal <= 256) {}",
        if ours <= 256.0 { "met" } else { "NOT MET" }
    ));
    lines.push(format!(
        "P5   of which the idle call object = {:.1}, the pending call (queued job) = {:.1}; \
         threads {} before (the pool's 2 included), {} while outstanding (no goal)",
        o.idle_bytes,
        o.pending_bytes - o.idle_bytes,
        o.threads_before,
        o.threads_during
    ));
    // P5 at scale: the same with ten times as many calls (1,000,000 in a full run).
    let n_scale = n_calls * 10;
    let o = outstanding_calls(n_scale, &pool, &heap);
    let ours = o.pending_bytes - params;
    lines.push(format!(
        "P5 heap bytes per pending call ({n_scale} calls, 2 workers, less the {params} bytes of \
         parameters) = {ours:.1} (goal <= 256) {}; threads {} before, {} while outstanding",
        if ours <= 256.0 { "met" } else { "NOT MET" },
        o.threads_before,
        o.threads_during
    ));
    let b = outstanding_channels(n_calls, &pool, &heap);
    lines.push(format!(
        "P5 heap bytes per pending request, crossbeam bounded(1) reply channel + boxed job = \
         {:.1} (baseline, no goal)",
        b.pending_bytes
    ));

    println!();
    println!("=== comasync memory summary (counting allocator) ===");
    for l in &lines {
        println!("{l}");
    }
    let path = support::memory_summary_path();
    if let Err(e) = std::fs::write(&path, lines.join("\n") + "\n") {
        eprintln!("could not write {}: {e}", path.display());
    }
}
