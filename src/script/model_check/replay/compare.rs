//! The comparison: what the model's outcome means in the script's terms ([`Expected`]), and
//! whether what the implementation produced agrees ([`compare`]; `Signals`/`Resets` of an
//! `Outer` in [`ModelCheck::outer_count`]).

use super::{Checked, ModelCheck, Obj};
use crate::hresult::{HRESULT, RPC_E_TIMEOUT, RPC_S_CALLPENDING};
use crate::model::{ModelOutcome, INFINITE};
use crate::script::model_check::{parse, Divergence, Observed, Seen};
use crate::script::value::Value;

/// What the model expects of one step, in the script's terms.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(super) struct Expected {
    pub(super) hr: Option<HRESULT>,
    pub(super) outs: Option<Vec<Value>>,
    pub(super) blocks: bool,
    pub(super) dropped: Option<bool>,
}

impl ModelCheck {
    /// `Signals O` / `Resets O`: the count the model of the call object aggregated under `O`
    /// holds (0 before any).
    pub(super) fn outer_count(
        &self,
        outer: &str,
        signals: bool,
        seen: &Observed<'_>,
    ) -> Result<(), Divergence> {
        let Some(Obj::Outer(call)) = self.obj(outer).map(|k| &self.objs[k]) else {
            return Ok(());
        };
        let model = match call.map(|c| &self.objs[c]) {
            None => 0,
            Some(Obj::Call(c)) => match c.model.outer() {
                Some(o) if signals => o.signals(),
                Some(o) => o.resets(),
                None => return Ok(()),
            },
            Some(_) => return Ok(()),
        };
        match seen.seen {
            Seen::Returned {
                count: Some(real), ..
            } if real != model => Err(Divergence {
                line: seen.line,
                message: format!(
                    "{}: the implementation counted {real}, the model says {model}",
                    seen.text
                ),
            }),
            _ => Ok(()),
        }
    }

    /// What the model's outcome of `op` means in the script's terms.
    pub(super) fn expected(&self, op: &Checked, o: &ModelOutcome) -> Expected {
        let none = Expected::default();
        match o {
            ModelOutcome::Returns(hr) | ModelOutcome::CancelReturns(hr) => Expected {
                hr: Some(*hr),
                ..none
            },
            ModelOutcome::Finished { hr, outs } => {
                let call = match op {
                    Checked::Finish { call, .. } => self.obj(call),
                    _ => None,
                };
                let stored = match (call.map(|i| &self.objs[i]), outs.as_slice()) {
                    (Some(Obj::Call(c)), [t]) => c.results.get(*t as usize).cloned().flatten(),
                    _ => None,
                };
                Expected {
                    hr: Some(*hr),
                    outs: stored,
                    ..none
                }
            }
            ModelOutcome::Blocks | ModelOutcome::CancelInFlight => Expected {
                blocks: true,
                ..none
            },
            ModelOutcome::Delivered { .. } => Expected {
                dropped: Some(false),
                ..none
            },
            ModelOutcome::Dropped => Expected {
                dropped: Some(true),
                ..none
            },
            ModelOutcome::CoWait { hr, index } => Expected {
                hr: Some(*hr),
                // No index out-pointer: nothing is written, so nothing is printed.
                outs: Some(index.iter().map(|&i| Value::Num(i.into())).collect()),
                ..none
            },
            ModelOutcome::WaitMultiple { hr, position } => {
                let name = match op {
                    Checked::WaitMultiple { container, .. } => self.obj(container),
                    _ => None,
                }
                .and_then(|k| match &self.objs[k] {
                    Obj::Container(_, names) => position.and_then(|p| names.get(p).cloned()),
                    _ => None,
                });
                Expected {
                    hr: Some(*hr),
                    outs: name.map(|n| vec![Value::Name(n)]),
                    ..none
                }
            }
            ModelOutcome::Released { .. } | ModelOutcome::Invalid(_) => none,
        }
    }
}

/// Whether `o` is `op`, a wait with a finite, non-zero timeout, timing out: the real wait
/// returns that only once its timeout has passed.
pub(super) fn times_out(op: &Checked, o: &ModelOutcome) -> bool {
    let timeout = match op {
        Checked::Wait { timeout, .. }
        | Checked::WaitMultiple { timeout, .. }
        | Checked::CoWait { timeout, .. } => *timeout,
        _ => return false,
    };
    timeout != 0
        && timeout != INFINITE
        && matches!(o.hr(), Some(hr) if hr == RPC_S_CALLPENDING || hr == RPC_E_TIMEOUT)
}

/// An `HRESULT` and out-parameters as the script prints them.
fn show(hr: Option<HRESULT>, outs: &[Value]) -> String {
    let mut s = hr.map_or_else(|| "no result".to_string(), parse::hr_name);
    for v in outs {
        s.push_str(&format!(" {v}"));
    }
    s
}

/// The model's answer in words.
pub(super) fn say(e: &Expected) -> String {
    if e.blocks {
        return "it blocks".into();
    }
    show(e.hr, e.outs.as_deref().unwrap_or(&[]))
}

#[cfg(test)]
thread_local! {
    /// How many answers this thread's checks compared (tests: the check really runs).
    pub(in crate::script::model_check) static COMPARED: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Compares the model's expectation with what the step produced.
pub(super) fn compare(
    line: usize,
    text: &str,
    e: &Expected,
    seen: &Seen<'_>,
) -> Result<(), Divergence> {
    let Seen::Returned {
        hr, outs, dropped, ..
    } = seen
    else {
        return Ok(());
    };
    #[cfg(test)]
    COMPARED.with(|c| c.set(c.get() + 1));
    let diverge = |real: String, model: String| {
        Err(Divergence {
            line,
            message: format!("{text}: the implementation {real}, the model says {model}"),
        })
    };
    let got = show(*hr, outs);
    if e.blocks {
        return diverge(format!("returned {got}"), "it blocks".into());
    }
    if let Some(d) = e.dropped {
        if d != *dropped {
            let word = |d: bool| if d { "dropped" } else { "delivered" };
            return diverge(
                format!("{} the result", word(*dropped)),
                format!("it is {}", word(d)),
            );
        }
        return Ok(());
    }
    let hr_differs = e.hr.is_some() && e.hr != *hr;
    let outs_differ = e.outs.as_ref().is_some_and(|o| o.as_slice() != *outs);
    if hr_differs || outs_differ {
        return diverge(format!("returned {got}"), say(e));
    }
    Ok(())
}
