//! The public entry points: [`run_source`], [`run_file`], [`run_files`], [`diagram_file`],
//! their options and their error type. They parse the script against a [`Registry`] (the
//! default one unless [`Registry::run_source`] is used) and hand it to the runner
//! (`runner.rs`).
//!
//! # How a script runs
//!
//! * Every actor is a thread named after it (`client`, `server`, `t1`, ...). A plain statement
//!   is handed to its actor's thread and the runner waits for it; if it has not returned after
//!   the watchdog (10 s by default) the run stops with `FILE:LINE: ACTOR still blocked after
//!   10 s`. `start` hands an operation over without waiting; `join` waits for it (same
//!   watchdog).
//! * Hand-driven servers (`SimpleStream`, `Manual NAME`) keep a begun call in a queue until a
//!   `Complete` or `Fail` statement runs it. No thread decides when a call completes, so
//!   results never depend on machine speed.
//! * After every statement the runner waits until each started operation has either returned
//!   or is blocked — parked on something that has not come, as the library reports it
//!   (`sync::observe`); it never polls or sleeps to order events.
//! * Operations that need an interface the variable is not (`Wait call 0`, `Cancel call 0`)
//!   query for it, use it and release it, as a client would.
//!
//! Invariant: a run returns its trace also when it fails (up to the failing step), so a
//! diagram can show where it stopped.

use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::mermaid;
use super::parse;
use super::registry::Registry;
use super::runner::Runner;
use super::trace::{Event, EventKind, Role, Trace};

/// Why a script did not run to the end. [`ScriptError::exit_code`] gives the CLI's exit code.
///
/// ```
/// use comasync::script::{run_source, RunOptions, ScriptError};
///
/// let opts = RunOptions::default();
/// let script = "e = StdEvent\nclient: Wait e 0 -> S_OK\n"; // nobody signalled e
/// let err = run_source("wait.cas", script, &opts, &mut std::io::sink()).unwrap_err();
/// assert_eq!(err.to_string(), "wait.cas:2: expected S_OK, got RPC_S_CALLPENDING");
/// assert!(matches!(err, ScriptError::Mismatch { line: 2, .. }));
/// assert_eq!(err.exit_code(), 1);
/// let err = run_source("typo.cas", "e = StdEvnt\n", &opts, &mut std::io::sink()).unwrap_err();
/// assert!(matches!(err, ScriptError::Syntax { line: 1, .. }));
/// assert_eq!(err.exit_code(), 2);
/// ```
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScriptError {
    /// The script file could not be read (exit code 2).
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// The script is not well formed (exit code 2).
    #[error("{file}:{line}: {message}")]
    Syntax {
        /// The file.
        file: String,
        /// The 1-based line.
        line: usize,
        /// What was expected.
        message: String,
    },
    /// A step's result differs from its expectation (exit code 1).
    #[error("{file}:{line}: expected {expected}, got {got}")]
    Mismatch {
        /// The file.
        file: String,
        /// The 1-based line.
        line: usize,
        /// The expected result.
        expected: String,
        /// The actual result.
        got: String,
    },
    /// A step could not be carried out: an actor stayed blocked past the watchdog, a server
    /// had no call to complete, a variable was released (exit code 1).
    #[error("{file}:{line}: {message}")]
    Runtime {
        /// The file.
        file: String,
        /// The 1-based line.
        line: usize,
        /// What happened.
        message: String,
    },
    /// Writing the output failed (exit code 1).
    #[error("writing the output: {0}")]
    Output(#[from] io::Error),
}

impl ScriptError {
    /// The exit-code convention: 0 all scripts passed (no error), 1 a mismatch or a step that
    /// could not run, 2 a syntax or usage error (including an unreadable file).
    pub fn exit_code(&self) -> u8 {
        match self {
            ScriptError::Io { .. } | ScriptError::Syntax { .. } => 2,
            ScriptError::Mismatch { .. } | ScriptError::Runtime { .. } | ScriptError::Output(_) => {
                1
            }
        }
    }
}

/// How to run a script.
///
/// ```
/// use std::time::Duration;
/// use comasync::script::{run_source, RunOptions};
///
/// assert_eq!(RunOptions::default().watchdog, Duration::from_secs(10));
/// let opts = RunOptions { trace: true, watchdog: Duration::from_secs(30) };
/// let mut out = Vec::new();
/// run_source("signal.cas", "e = ManualResetEvent\nclient: Signal e -> S_OK\n", &opts, &mut out)?;
/// let out = String::from_utf8(out).unwrap();
/// assert!(out.contains("client -> e: Signal()")); // the step's trace events, under it
/// # Ok::<(), comasync::script::ScriptError>(())
/// ```
#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Print each step's trace events under it.
    pub trace: bool,
    /// How long a step (or a `join`) may block before the run stops with an error.
    pub watchdog: Duration,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            trace: false,
            watchdog: Duration::from_secs(10),
        }
    }
}

/// Runs each script in turn, writing each step's result to `out` (and, with `trace`, its
/// events), and stops at the first script that fails. The error is returned, not printed:
/// the caller prints it (`FILE:LINE: expected X, got Y`) and exits with
/// [`ScriptError::exit_code`].
pub fn run_files(paths: &[PathBuf], trace: bool, out: &mut dyn Write) -> Result<(), ScriptError> {
    let opts = RunOptions {
        trace,
        ..RunOptions::default()
    };
    for path in paths {
        run_file(path, &opts, out)?;
    }
    Ok(())
}

/// Runs one script file; returns its trace.
pub fn run_file(path: &Path, opts: &RunOptions, out: &mut dyn Write) -> Result<Trace, ScriptError> {
    let name = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|source| ScriptError::Io {
        path: name.clone(),
        source,
    })?;
    run_source(&name, &source, opts, out)
}

/// Runs a script given as text; `name` is the file name used in messages. Returns its trace.
///
/// ```
/// use comasync::script::{run_source, RunOptions};
/// let script = "e = StdEvent\nclient: Wait e 0 -> RPC_S_CALLPENDING\nclient: Signal e -> S_OK\n";
/// let mut out = Vec::new();
/// run_source("doc.cas", script, &RunOptions::default(), &mut out).unwrap();
/// assert!(String::from_utf8(out).unwrap().contains("RPC_S_CALLPENDING (0x80010115)"));
/// ```
pub fn run_source(
    name: &str,
    source: &str,
    opts: &RunOptions,
    out: &mut dyn Write,
) -> Result<Trace, ScriptError> {
    run_source_with(&Registry::new(), name, source, opts, out)
}

/// [`run_source`] against `registry`.
pub(crate) fn run_source_with(
    registry: &Registry,
    name: &str,
    source: &str,
    opts: &RunOptions,
    out: &mut dyn Write,
) -> Result<Trace, ScriptError> {
    let (trace, result) = run_source_traced(registry, name, source, opts, out);
    result.map(|()| trace)
}

/// Runs a script and returns its trace also when it fails: the events up to the failing step.
fn run_source_traced(
    registry: &Registry,
    name: &str,
    source: &str,
    opts: &RunOptions,
    out: &mut dyn Write,
) -> (Trace, Result<(), ScriptError>) {
    let steps = match parse::parse(source, registry) {
        Ok(steps) => steps,
        Err(e) => {
            let error = ScriptError::Syntax {
                file: name.to_string(),
                line: e.line,
                message: e.message,
            };
            return (Trace::default(), Err(error));
        }
    };
    let mut runner = Runner::new(name, opts.clone(), registry.clone());
    let result = writeln!(out, "== {name}")
        .map_err(ScriptError::from)
        .and_then(|()| runner.run(&steps, out))
        .and_then(|()| Ok(writeln!(out, "ok: {} steps", steps.len())?));
    (std::mem::take(&mut runner.trace), result)
}

/// Runs the script at `path` and writes its trace as a Mermaid `sequenceDiagram` to `out`. A
/// script that fails is drawn up to the failing step, which is marked with a note (`✗
/// FILE:LINE: ...`); the error is returned after the diagram is written.
pub fn diagram_file(path: &Path, out: &mut dyn Write) -> Result<(), ScriptError> {
    let name = path.display().to_string();
    let source = std::fs::read_to_string(path).map_err(|source| ScriptError::Io {
        path: name.clone(),
        source,
    })?;
    let (mut trace, result) = run_source_traced(
        &Registry::new(),
        &name,
        &source,
        &RunOptions::default(),
        &mut io::sink(),
    );
    if let Err(e @ (ScriptError::Mismatch { .. } | ScriptError::Runtime { .. })) = &result {
        let over = trace
            .participants
            .first()
            .map_or_else(|| "script".to_string(), |p| p.id.clone());
        if trace.participants.is_empty() {
            trace.participant(&over, &over, Role::Client);
        }
        let line = match e {
            ScriptError::Mismatch { line, .. } | ScriptError::Runtime { line, .. } => *line,
            _ => 0,
        };
        trace.events.push(Event {
            line,
            actor: over.clone(),
            thread: String::new(),
            apartment: super::trace::NO_APARTMENT.to_string(),
            kind: EventKind::Note,
            from: over.clone(),
            to: over,
            label: format!("✗ {e}"),
        });
    }
    if !matches!(
        result,
        Err(ScriptError::Syntax { .. } | ScriptError::Io { .. })
    ) {
        out.write_all(mermaid::render(&trace).as_bytes())?;
    }
    result
}
