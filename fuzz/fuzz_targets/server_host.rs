//! A sample-style server call object hosted by `ServerCallHost` behind a real client call
//! object, with cancels and late server `Signal`s, on the sequence the bytes decode to
//! (`comasync::testing::decode::host_ops`; checks in `comasync::testing::server_host`).
//!
//! Every rule is checked. `COMASYNC_FUZZ_TOLERATE=<field>,<field>` in the environment
//! tolerates the known findings named by those fields of `server_host::Tolerate`, so that a
//! long run gets past them while their fix is pending (docs/testing.md says which runs used
//! it).
#![no_main]

use std::sync::OnceLock;

use comasync::testing::decode;
use comasync::testing::server_host::{self, Tolerate};
use libfuzzer_sys::fuzz_target;

fn tolerate() -> Tolerate {
    static T: OnceLock<Tolerate> = OnceLock::new();
    *T.get_or_init(|| {
        let names = std::env::var("COMASYNC_FUZZ_TOLERATE").unwrap_or_default();
        let names: Vec<&str> = names.split(',').map(str::trim).collect();
        Tolerate {
            late_signal: names.iter().any(|n| *n == "late_signal"),
            leak_when_never_signaled: names.iter().any(|n| *n == "leak_when_never_signaled"),
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let (mode, abandon, ops) = decode::host_ops(data);
    if let Err(m) = server_host::check_server_host_with(mode, abandon, &ops, tolerate()) {
        panic!("\n{m}");
    }
});
