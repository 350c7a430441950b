//! A call object aggregated under an instrumented outer unknown (counted, failing, re-entrant
//! `Signal`/`Reset`) against the reference model, on the sequence the bytes decode to
//! (`comasync::testing::decode::agg_ops`; checks in `comasync::testing::aggregation`).
//!
//! Every rule is checked. `COMASYNC_FUZZ_TOLERATE=<field>,<field>` in the environment
//! tolerates the known findings named by those fields of `aggregation::Tolerate`, so that a
//! long run gets past them while their fix is pending (docs/testing.md says which runs used
//! it).
#![no_main]

use std::sync::OnceLock;

use comasync::testing::aggregation::{self, Tolerate};
use comasync::testing::decode;
use libfuzzer_sys::fuzz_target;

fn tolerate() -> Tolerate {
    static T: OnceLock<Tolerate> = OnceLock::new();
    *T.get_or_init(|| {
        let names = std::env::var("COMASYNC_FUZZ_TOLERATE").unwrap_or_default();
        let names: Vec<&str> = names.split(',').map(str::trim).collect();
        Tolerate {
            stale_signal: names.iter().any(|n| *n == "stale_signal"),
            failed_begin_clears_cancel: names.iter().any(|n| *n == "failed_begin_clears_cancel"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let (mode, ops) = decode::agg_ops(data);
    if let Err(m) = aggregation::check_aggregation_with(mode, &ops, tolerate()) {
        panic!("\n{m}");
    }
});
