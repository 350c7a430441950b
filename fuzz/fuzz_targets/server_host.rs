//! A sample-style server call object hosted by `ServerCallHost` behind a real client call
//! object, with cancels and late server `Signal`s, on the sequence the bytes decode to
//! (`comasync::testing::decode::host_ops`; checks in `comasync::testing::server_host`).
//!
//! Every rule is checked. With `COMASYNC_FUZZ_TOLERATE_KNOWN=1` in the environment the known
//! findings listed in `server_host::Tolerate` are tolerated, so that a long run gets past them
//! while their fix is pending (docs/testing.md says which runs used it).
#![no_main]

use std::sync::OnceLock;

use comasync::testing::decode;
use comasync::testing::server_host::{self, Tolerate};
use libfuzzer_sys::fuzz_target;

fn tolerate() -> Tolerate {
    static T: OnceLock<Tolerate> = OnceLock::new();
    *T.get_or_init(|| {
        if std::env::var_os("COMASYNC_FUZZ_TOLERATE_KNOWN").is_some_and(|v| v == "1") {
            Tolerate {
                late_signal: true,
                leak_when_never_signaled: true,
            }
        } else {
            Tolerate::default()
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let (mode, abandon, ops) = decode::host_ops(data);
    if let Err(m) = server_host::check_server_host_with(mode, abandon, &ops, tolerate()) {
        panic!("\n{m}");
    }
});
