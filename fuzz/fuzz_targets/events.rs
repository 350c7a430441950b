//! Real `ManualResetEvent`s/`StdEvent`s and a `SynchronizeContainer` against the reference
//! model, on the sequence the bytes decode to (`decode::world_ops`, profile `Events`).
#![no_main]

use comasync::testing::decode::{self, WorldProfile};
use comasync::testing::runner;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (kinds, ops) = decode::world_ops(WorldProfile::Events, data);
    if let Err(m) = runner::check_world_ops(&kinds, &ops, &runner::RunOptions::fast()) {
        panic!("\n{m}");
    }
});
