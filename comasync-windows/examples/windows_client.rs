//! A windows-rs client and in-process server, written exactly as for Windows (no comasync in
//! sight): on Linux, `cargo run --example windows_client` runs it against comasync through the
//! stand-in `windows` crate. `tests/windows_rs_crate.rs` copies this file and `windows_rs/`
//! into a throw-away crate that depends on `windows = "0.62"` as a user's crate does, and runs
//! it as that crate's test with only the documented recipe (docs/windows-rs.md).

#[path = "windows_rs/calculator.rs"]
mod calculator;
#[path = "windows_rs/client.rs"]
mod client;

use std::process::ExitCode;

use windows::core::{IUnknown, Interface, Result};
use windows::Win32::Foundation::{E_NOINTERFACE, RPC_E_CALL_COMPLETE};
use windows::Win32::System::Com::{ICallFactory, ISynchronize};

use calculator::{AsyncICalculator, Calculator};

fn run() -> Result<()> {
    let server: IUnknown = Calculator.into();
    assert_eq!(client::add(&server, 2, 3)?, 5);
    assert_eq!(client::add_async(&server, 40, 2)?, 42);
    assert_eq!(client::add_two(&server, (1, 1), (2, 2))?, (2, 4));
    assert_eq!(client::first_done(&server, &[(1, 2), (3, 4)])?, 0);
    assert_eq!(client::finish_without_begin(&server)?, RPC_E_CALL_COMPLETE);
    // CreateCall for an interface the server does not know.
    let factory: ICallFactory = server.cast()?;
    let wrong = unsafe { factory.CreateCall(&ISynchronize::IID, None, &IUnknown::IID) };
    assert_eq!(wrong.err().map(|e| e.code()), Some(E_NOINTERFACE));
    let _ = AsyncICalculator::IID;
    println!("client passed");
    Ok(())
}

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("failed: {e}");
            ExitCode::FAILURE
        }
    }
}
