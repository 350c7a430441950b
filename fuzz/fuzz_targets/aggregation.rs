//! A call object aggregated under an instrumented outer unknown (counted, failing, re-entrant
//! `Signal`/`Reset`) against the reference model, on the sequence the bytes decode to
//! (`comasync::testing::decode::agg_ops`; checks in `comasync::testing::aggregation`).
#![no_main]

use comasync::testing::{aggregation, decode};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let (mode, ops) = decode::agg_ops(data);
    if let Err(m) = aggregation::check_aggregation(mode, &ops) {
        panic!("\n{m}");
    }
});
