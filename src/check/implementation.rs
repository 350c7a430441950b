//! The implementation along the checker's schedules: each schedule becomes a script — the
//! statements in the schedule's order, each expecting the model's result there — and the
//! script runner executes it on the real objects (whose own model check runs too). A schedule
//! in which a `Cancel`'s window must end is not replayed (that takes real time), nor one that
//! deadlocks or uses an object after its last `Release`. Too many schedules: a seeded sample, and the report says so.

use super::explore::{complete, replay, Taken};
use super::world::{Choice, Program, Res};
use crate::script::parse::{Op, StepKind};
use crate::script::{Registry, RunOptions};

/// What replaying schedules on the implementation found.
#[derive(Clone, Debug, Default)]
pub struct ImplReplay {
    /// Schedules run on the real objects.
    pub replayed: usize,
    /// Schedules not run: a `Cancel` window must end in real time, the order deadlocks, or
    /// it uses an object after its last `Release` (which the runner refuses).
    pub skipped: usize,
    /// Distinct schedules there were to run; more than `replayed + skipped` means a sample.
    pub candidates: usize,
    /// Schedules not run because the script uses operations the model does not follow
    /// beyond creating objects (only the written order is run then).
    pub opaque: usize,
    /// The sample's seed, when a sample was taken.
    pub seed: Option<u64>,
    /// Disagreements: the schedule and the runner's message.
    pub divergences: Vec<(Vec<Taken>, String)>,
}

/// The expectation a step should be written with for result `r`.
///
/// A server's out-parameters are the script's (they depend on the arguments of the call that
/// reaches it, which the model does not follow), so a `Complete` or `Finish_` is written with
/// its `HRESULT` only.
fn expect_text(p: &Program, step: usize, r: &Res) -> Option<String> {
    let server_outs = matches!(
        &p.steps[step].kind,
        StepKind::Do {
            op: Op::Complete { .. } | Op::Finish { .. },
            ..
        }
    ) || matches!(p.steps[step].kind, StepKind::Join);
    if r.note.is_some_and(|n| n.starts_with("not modelled")) {
        let e = p.steps[step].expect.as_ref()?;
        return Some(e.to_string());
    }
    if let Some(c) = r.count {
        return Some(c.to_string());
    }
    let mut s = r.hr?.name_or_hex();
    if server_outs && !r.outs.is_empty() {
        return Some(s);
    }
    for v in &r.outs {
        s.push_str(&format!(" {v}"));
    }
    Some(s)
}

/// The script for one full schedule; `None` if it needs real time.
fn script_of(p: &Program, taken: &[Taken]) -> Option<String> {
    let mut out = String::new();
    let expect =
        |j: usize, r: &Res| expect_text(p, j, r).map_or_else(String::new, |e| format!(" -> {e}"));
    for t in taken {
        if matches!(t.choice, Choice::Expire(_)) {
            return None;
        }
        let i = t.step?;
        let s = &p.steps[i];
        let own = t
            .result_steps
            .iter()
            .zip(&t.results)
            .find(|(&j, _)| j == p.report_at[i])
            .map(|(_, (_, r))| r);
        let started = matches!(s.kind, StepKind::Start { .. });
        match (started, own) {
            // A Cancel whose window is open: started here, joined when it returns.
            (false, None) => out.push_str(&format!("{}: start {}\n", s.actor, s.text)),
            (false, Some(r)) => out.push_str(&format!("{}: {}{}\n", s.actor, s.text, expect(i, r))),
            (true, r) => {
                out.push_str(&format!("{}: {}\n", s.actor, s.text));
                if let Some(r) = r {
                    out.push_str(&format!("{}: join{}\n", s.actor, expect(p.report_at[i], r)));
                }
            }
        }
        // Another actor's Cancel that returned at this choice (the server completed).
        for (&j, (_, r)) in t.result_steps.iter().zip(&t.results) {
            if j != p.report_at[i] {
                out.push_str(&format!("{}: join{}\n", p.steps[j].actor, expect(j, r)));
            }
        }
    }
    Some(out)
}

/// Whether the written order runs a step the model does not follow beyond creating objects
/// (an `Outer`'s counts, a wait on an untracked object, a call object it does not follow): its
/// result in another order is unknown, so only the written order is replayed.
fn opaque(p: &Program, written: &[Taken]) -> bool {
    written.iter().any(|t| {
        t.result_steps.iter().zip(&t.results).any(|(&j, (_, r))| {
            r.note.is_some_and(|n| n.starts_with("not modelled")) && !p.creates(j)
        })
    })
}

/// A small deterministic generator for the sample (splitmix64).
fn next(seed: &mut u64) -> u64 {
    *seed = seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *seed;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Runs the full schedules extending `prefixes` (the written order's first) on the
/// implementation: at most `max`, a
/// sample drawn with `seed` if there are more.
pub(crate) fn replay_on_implementation(
    registry: &Registry,
    p: &Program,
    source: &str,
    hazardous: &[Vec<Choice>],
    prefixes: &[Vec<Choice>],
    max: usize,
    seed: u64,
) -> ImplReplay {
    let mut found = ImplReplay::default();
    let mut schedules: Vec<Vec<Choice>> = Vec::new();
    if let Some((written, rest)) = prefixes.split_first() {
        if opaque(p, &replay(p, written).0) {
            // The written order is the script itself, started operations and all.
            found.opaque = rest.len();
            found.candidates = 1;
            found.replayed = 1;
            let mut sink = std::io::sink();
            let opts = RunOptions::default();
            if let Err(e) = crate::script::run::run_source_with(
                registry,
                "written order",
                source,
                &opts,
                &mut sink,
            ) {
                found
                    .divergences
                    .push((replay(p, written).0, e.to_string()));
            }
            return found;
        }
    }
    for prefix in prefixes {
        match complete(p, prefix) {
            // The runner refuses a variable used after its last Release.
            Ok(s) if hazardous.iter().any(|h| s.starts_with(h)) => found.skipped += 1,
            Ok(s) if !schedules.contains(&s) => schedules.push(s),
            Ok(_) => {}
            Err(_) => found.skipped += 1,
        }
    }
    found.candidates = schedules.len() + found.skipped;
    if schedules.len() > max {
        found.seed = Some(seed);
        let mut state = seed;
        // A partial Fisher–Yates shuffle: the first `max` are the sample.
        for i in 0..max {
            let j = i + (next(&mut state) % (schedules.len() - i) as u64) as usize;
            schedules.swap(i, j);
        }
        schedules.truncate(max);
    }
    let opts = RunOptions::default();
    for s in schedules {
        let taken = replay(p, &s).0;
        if taken.iter().any(|t| t.unreplayable) {
            found.skipped += 1;
            continue;
        }
        let Some(text) = script_of(p, &taken) else {
            found.skipped += 1;
            continue;
        };
        found.replayed += 1;
        let mut sink = std::io::sink();
        if let Err(e) =
            crate::script::run::run_source_with(registry, "schedule", &text, &opts, &mut sink)
        {
            found
                .divergences
                .push((taken, format!("{e}\n--- the schedule as a script:\n{text}")));
        }
    }
    found
}
