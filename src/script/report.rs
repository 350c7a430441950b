//! What a step printed and whether it met its expectation: [`Outcome`] and its three
//! renderings (the result column, a mismatch's "got", a diagram's return label), the step line
//! [`print`] writes, and the expectation [`check`].
//!
//! Invariants: out-parameters are always compared, also a failed `Finish_`'s (its defaults);
//! they are only *shown* when they are not all defaults after a failure; `AddRef`/`Release`
//! compare the new count with the expected number.

use std::io::{self, Write};
use std::time::Duration;

use super::parse::{hr_name, Step, StepKind};
use super::run::ScriptError;
use super::runner::Runner;
use super::value::Value;
use crate::call::State;
use crate::hresult::HRESULT;
use crate::sync::INFINITE;

/// A step's result.
#[derive(Clone, Debug, Default)]
pub(super) struct Outcome {
    pub(super) hr: Option<HRESULT>,
    /// `AddRef`/`Release`: the new count.
    pub(super) count: Option<u32>,
    pub(super) outs: Vec<Value>,
    /// A `Finish_`: when it fails, its default out-parameters are left out of the output.
    pub(super) finish: bool,
    /// Overrides the result column (`created`, `started`).
    pub(super) text: Option<String>,
    /// A remark after the result (`late result dropped`).
    pub(super) note: Option<String>,
    /// The call object whose state is printed after the result.
    pub(super) call_obj: Option<usize>,
}

impl Outcome {
    /// An `HRESULT` alone.
    pub(super) fn hr(hr: HRESULT) -> Outcome {
        Outcome {
            hr: Some(hr),
            ..Outcome::default()
        }
    }

    /// An `HRESULT` and out-parameters.
    pub(super) fn with_outs(hr: HRESULT, outs: Vec<Value>) -> Outcome {
        Outcome {
            outs,
            ..Outcome::hr(hr)
        }
    }

    /// A text in place of the result (`created`).
    pub(super) fn text(text: &str) -> Outcome {
        Outcome {
            text: Some(text.to_string()),
            ..Outcome::default()
        }
    }

    /// The result column.
    pub(super) fn result(&self) -> String {
        if let Some(t) = &self.text {
            return t.clone();
        }
        let mut s = match (self.hr, self.count) {
            (_, Some(n)) => format!("count {n}"),
            (Some(hr), None) => format!("{} (0x{:08X})", hr_name(hr), hr.as_u32()),
            (None, None) => "done".into(),
        };
        // A failed call's out-parameters are shown only when they are not their defaults
        // (they are always compared: see `check`).
        if !self.hides_outs() {
            for v in &self.outs {
                s.push_str(&format!(" {v}"));
            }
        }
        if let Some(n) = &self.note {
            s.push_str(&format!(" ({n})"));
        }
        s
    }

    /// The result as a mismatch reports it: every out-parameter, also a failed call's.
    pub(super) fn got(&self) -> String {
        self.short(true)
    }

    /// The result as a diagram labels it: a failed call's default out-parameters left out.
    pub(super) fn label(&self) -> String {
        self.short(false)
    }

    fn short(&self, all_outs: bool) -> String {
        let mut s = match (self.hr, self.count) {
            (_, Some(n)) => n.to_string(),
            (Some(hr), None) => hr_name(hr),
            (None, None) => "no result".into(),
        };
        if all_outs || !self.hides_outs() {
            for v in &self.outs {
                s.push_str(&format!(" {v}"));
            }
        }
        s
    }

    /// A failed `Finish_` whose out-parameters all hold their defaults: shown without them.
    fn hides_outs(&self) -> bool {
        self.finish
            && self.hr.is_some_and(|hr| hr.failed())
            && self.count.is_none()
            && self.outs.iter().all(Value::is_default)
    }
}

/// A timeout as scripts write it.
pub(super) fn show_timeout(t: u32) -> String {
    if t == INFINITE {
        "INFINITE".into()
    } else {
        t.to_string()
    }
}

/// `COWAIT_*` flags as a label shows them: `0`, or hex (`0x1`).
pub(super) fn show_flags(flags: u32) -> String {
    if flags == 0 {
        "0".into()
    } else {
        format!("0x{flags:X}")
    }
}

/// A call object's state as printed after a step.
pub(super) fn show_state(s: State) -> &'static str {
    match s {
        State::Idle => "Idle",
        State::Pending => "Pending",
        State::Cancelling => "Cancelling",
        State::Signaled { cancelled: false } => "Signaled",
        State::Signaled { cancelled: true } => "Signaled (cancelled)",
        State::Gone => "Gone",
    }
}

/// A watchdog duration: `10 s`, `200 ms`.
pub(super) fn show_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{} ms", d.as_millis())
    }
}

/// Writes a step's line (and, with tracing, its events).
pub(super) fn print(r: &Runner, step: &Step, o: &Outcome, out: &mut dyn Write) -> io::Result<()> {
    let head = format!("{}: {}", step.actor, step.text);
    let mut line = format!("{:>4}  {head:<54} {}", step.line, o.result());
    if let Some((obj, state)) = o.call_obj.and_then(|c| Some((c, r.state_text(c)?))) {
        line.push_str(&format!("   [{}: {state}]", r.obj_name(obj)));
    }
    writeln!(out, "{}", line.trim_end())?;
    if r.tracing() {
        for e in r.trace.events_of(step.line) {
            writeln!(out, "          {e}")?;
        }
    }
    Ok(())
}

/// Compares a step's outcome with its expectation.
pub(super) fn check(file: &str, step: &Step, o: &Outcome) -> Result<(), ScriptError> {
    if let StepKind::Start {
        blocks: Some(want), ..
    } = step.kind
    {
        let blocked = o.text.as_deref() == Some("started, blocks");
        let word = |b: bool| if b { "blocks" } else { "returns" };
        if blocked != want {
            return Err(ScriptError::Mismatch {
                file: file.to_string(),
                line: step.line,
                expected: word(want).into(),
                got: word(blocked).into(),
            });
        }
    }
    let Some(exp) = &step.expect else {
        return Ok(());
    };
    let (ok, expected) = match (o.hr, o.count) {
        (_, Some(n)) => (
            exp.hr.as_u32() == n && exp.values.is_empty(),
            exp.hr.as_u32().to_string(),
        ),
        (Some(hr), None) => (
            hr == exp.hr && (exp.values.is_empty() || exp.values == o.outs),
            exp.to_string(),
        ),
        (None, None) => (false, exp.to_string()),
    };
    if ok {
        Ok(())
    } else {
        Err(ScriptError::Mismatch {
            file: file.to_string(),
            line: step.line,
            expected,
            got: o.got(),
        })
    }
}
