//! Executable scenarios: a small line-per-operation language for driving the real comasync
//! objects step by step, checking each result, and drawing what happened.
//!
//! ```text
//! # The seed's procedure
//! server  = SimpleStream "hello, world"
//! client: factory = QueryInterface server ICallFactory   -> S_OK
//! client: call = CreateCall factory AsyncISimpleStream   -> S_OK
//! client: Begin_Read call 5                               -> S_OK
//! client: Wait call 0                                     -> RPC_S_CALLPENDING
//! server: Complete call                                   -> S_OK "hello"
//! client: Wait call INFINITE                              -> S_OK
//! client: Finish_Read call                                -> S_OK "hello"
//! client: Release call                                    -> 0
//! ```
//!
//! * parsing (crate-private) — text → steps, with `FILE:LINE` syntax errors;
//! * running: [`run_source`], [`run_file`], [`run_files`] and [`diagram_file`] run the steps
//!   on named actor threads against the real objects, check the expectations, and stop at
//!   the first mismatch;
//! * [`trace`] — the timeline of COM-visible events a run produces;
//! * [`mermaid`] — a timeline as a Mermaid `sequenceDiagram`.
//!
//! Exit-code convention for a command-line front end ([`ScriptError::exit_code`]): 0 every
//! script passed, 1 a mismatch or a step that could not run (an actor blocked past the
//! watchdog), 2 a syntax or usage error (including an unreadable file).
//!
//! The language is documented statement by statement in `docs/scenarios.md`; the scripts in
//! `scenarios/` are one per documented rule.

pub mod mermaid;
mod model_check;
pub(crate) mod parse;
mod run;
pub mod trace;

pub use run::{diagram_file, run_file, run_files, run_source, RunOptions, ScriptError};
pub use trace::Trace;
