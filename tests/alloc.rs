//! scratch
#[path = "../benches/support/mod.rs"]
mod support;
use std::alloc::System;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;
#[test]
fn scratch() {
    use std::mem::size_of;
    println!("CallObject {}", size_of::<comasync::call::CallObject<support::IBenchCalls>>());
    println!("SyncEvent {}", size_of::<comasync::sync::SyncEvent>());
    println!("CallState {}", size_of::<comasync::call::CallState>());
    println!("RefCount {}", size_of::<comasync::unknown::RefCount>());
    println!("ServerCall {}", size_of::<comasync::call::ServerCall<support::IBenchCalls>>());
    println!("ComPtr {}", size_of::<comasync::unknown::ComPtr<dyn support::AsyncIBench>>());
    let h = support::inline_handler();
    let _ = support::call_with(h.clone());
    let r = Region::new(GLOBAL);
    let c = support::call_with(h.clone());
    println!("{:?}", r.change());
    drop(c);
}
