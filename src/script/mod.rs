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
//! Layout:
//!
//! * `op`, `lex` and `parse` (crate-private) — the vocabulary (`Op`, `Step`) and text →
//!   steps, with `FILE:LINE` syntax errors;
//! * [`value`] — [`Value`], [`Objects`], [`ScriptParam`], [`ScriptInterface`]: how any
//!   interface's parameters are written in a script;
//! * [`Registry`] — the interfaces and server constructors a script can name;
//!   [`ScriptServer`] — the hand-driven (or pooled) server for any scriptable interface;
//! * running: [`run_source`], [`run_file`], [`run_files`] and [`diagram_file`] (default
//!   registry), [`Registry::run_source`] / [`Registry::run_file`] (yours); the runner,
//!   actor threads, executor (`exec/`, one file per operation family) and reporting are
//!   crate-private;
//! * [`trace`] — the timeline of COM-visible events a run produces;
//! * [`mermaid`] — a timeline as a Mermaid `sequenceDiagram`.
//!
//! Exit-code convention for a command-line front end ([`ScriptError::exit_code`]): 0 every
//! script passed, 1 a mismatch or a step that could not run (an actor blocked past the
//! watchdog), 2 a syntax or usage error (including an unreadable file, and arguments that do
//! not fit a method).
//!
//! The language is documented statement by statement in `docs/scenarios.md`; the scripts in
//! `scenarios/` are one per documented rule.

mod actors;
mod exec;
mod faulty;
mod lex;
pub mod mermaid;
pub(crate) mod model_check;
mod op;
pub(crate) mod parse;
mod ptr;
mod registry;
mod report;
pub(crate) mod run;
mod runner;
mod serve;
pub mod trace;
pub mod value;
mod who;

pub use registry::{Registry, Serving};
pub use run::{diagram_file, run_file, run_files, run_source, RunOptions, ScriptError};
pub use serve::ScriptServer;
pub use trace::Trace;
pub use value::{quote, NoObjects, Objects, ScriptInterface, ScriptParam, Value};
