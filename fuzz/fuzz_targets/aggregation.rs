//! A call object aggregated under an instrumented outer unknown (counted, failing, re-entrant
//! `Signal`/`Reset`) against the reference model, on the sequence the bytes decode to
//! (`comasync::testing::decode::agg_ops`; checks in `comasync::testing::aggregation`).
//!
//! Every rule is checked. With `COMASYNC_FUZZ_TOLERATE_KNOWN=1` in the environment the known
//! findings listed in `aggregation::Tolerate` are tolerated, so that a long run gets past them
//! while their fix is pending (docs/testing.md says which runs used it).
#![no_main]

use std::sync::OnceLock;

use comasync::testing::aggregation::{self, Tolerate};
use comasync::testing::decode;
use libfuzzer_sys::fuzz_target;

fn tolerate() -> Tolerate {
    static T: OnceLock<Tolerate> = OnceLock::new();
    *T.get_or_init(|| {
        if std::env::var_os("COMASYNC_FUZZ_TOLERATE_KNOWN").is_some_and(|v| v == "1") {
            Tolerate {
                stale_signal: true,
                failed_begin_clears_cancel: true,
            }
        } else {
            Tolerate::default()
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let (mode, ops) = decode::agg_ops(data);
    if let Err(m) = aggregation::check_aggregation_with(mode, &ops, tolerate()) {
        panic!("\n{m}");
    }
});
