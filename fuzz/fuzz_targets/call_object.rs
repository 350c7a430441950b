//! A call object (real, served by a `ManualHandler`) against the reference model, on the
//! operation sequence the bytes decode to (`comasync::testing::decode::call_ops`).
#![no_main]

use comasync::testing::{decode, runner};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (mode, ops) = decode::call_ops(data);
    if let Err(m) = runner::check_call_ops(mode, &ops, &runner::RunOptions::fast()) {
        panic!("\n{m}");
    }
});
