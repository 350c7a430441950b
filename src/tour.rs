//! The guided tour: the seed document's procedure ("Making an asynchronous call"), step by
//! step, then its error paths, then the same call across apartments (an STA's object, its
//! proxy in the MTA, the STA's thread pumping the call and the server's `Signal`), then
//! security (a proxy's blanket, server code running as the server or impersonating its client,
//! an access check). It is the scenario script `scenarios/tour.cas` — commentary
//! lines (`>`) between real COM calls on real comasync objects — so the tour, the scripts and
//! the diagrams are one thing: `comasync tour` runs it, `comasync run scenarios/tour.cas` runs
//! it as any script, and `comasync diagram scenarios/tour.cas` draws it.
//!
//! Each step prints the COM call, its `HRESULT` by name and hex value, the out-parameters and
//! the call object's state; the commentary says why. The server side is driven by the script,
//! so the output is the same on every run and every machine.

use std::io::Write;

use crate::script::{run_source, RunOptions, ScriptError};

/// The tour's script (`scenarios/tour.cas`).
pub const SCRIPT: &str = include_str!("../scenarios/tour.cas");

/// Runs the tour, printing it to `out`. An `Err` means the emulation disagreed with one of
/// the tour's expectations (a bug), or `out` failed.
///
/// ```
/// let mut out = Vec::new();
/// comasync::tour::run(&mut out).unwrap();
/// let text = String::from_utf8(out).unwrap();
/// assert!(text.contains("RPC_S_CALLPENDING (0x80010115)"));
/// ```
pub fn run(out: &mut dyn Write) -> Result<(), ScriptError> {
    writeln!(
        out,
        "comasync tour: making an asynchronous call (ISimpleStream::Read)"
    )?;
    writeln!(
        out,
        "Each numbered line is a real COM call (script line, actor, call, HRESULT, out-parameters, call state);"
    )?;
    writeln!(
        out,
        "the lines starting with `>` say why. The server runs only when the script says so.\n"
    )?;
    run_source("scenarios/tour.cas", SCRIPT, &RunOptions::default(), out)?;
    writeln!(
        out,
        "\nNext: docs/tutorial.md, `comasync run scenarios/*.cas`, `comasync diagram scenarios/tour.cas`."
    )?;
    Ok(())
}
