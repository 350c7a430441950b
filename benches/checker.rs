//! `cargo bench --bench checker`: the scenario checker's speed and memory (docs/checking.md)
//! on the largest committed scenario — the one whose search keeps the most states — and on
//! every committed scenario together: states per second of the search (no implementation
//! replay), and the process's peak resident memory (`VmHWM`, Linux; this executable does
//! nothing else).
//!
//! Its lines are printed and left in `target/<profile>/comasync-checker.txt`, which the
//! closing summary of `benches/performance.rs` (run after this one by `cargo bench`) repeats.

use std::time::{Duration, Instant};

use comasync::check::{check_source, Bounds};

/// The process's peak resident set, in KiB, if the system says.
fn peak_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn scenarios() -> Vec<(String, String)> {
    let mut out = Vec::new();
    for dir in ["scenarios", "scenarios/races"] {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
        for e in std::fs::read_dir(&dir).expect("scenarios") {
            let path = e.expect("entry").path();
            if path.extension().is_some_and(|x| x == "cas") {
                let src = std::fs::read_to_string(&path).expect("read");
                out.push((path.display().to_string(), src));
            }
        }
    }
    out.sort();
    out
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let budget = if full {
        Duration::from_secs(2)
    } else {
        Duration::from_millis(100)
    };
    let bounds = Bounds {
        replay: 0,
        ..Bounds::default()
    };
    let all = scenarios();
    let mut largest = (String::new(), String::new(), 0usize);
    for (name, src) in &all {
        let r = check_source(name, src, &bounds).expect("parses");
        if r.states > largest.2 {
            largest = (name.clone(), src.clone(), r.states);
        }
    }
    let measure = |sources: &[(String, String)]| {
        let (mut states, mut transitions, mut runs) = (0usize, 0usize, 0usize);
        let started = Instant::now();
        while started.elapsed() < budget || runs == 0 {
            for (name, src) in sources {
                let r = check_source(name, src, &bounds).expect("parses");
                states += r.states;
                transitions += r.transitions;
            }
            runs += 1;
        }
        let secs = started.elapsed().as_secs_f64();
        (states as f64 / secs, transitions as f64 / secs, runs)
    };
    let (name, src, states) = largest;
    let one = [(name.clone(), src)];
    let (sps, tps, runs) = measure(&one);
    let (all_sps, _, all_runs) = measure(&all);
    let short = name.rsplit('/').next().unwrap_or(&name).to_string();
    let peak = peak_kib().map_or("unknown".into(), |k| {
        format!("{:.1} MiB", k as f64 / 1024.0)
    });
    let lines = [
        format!(
            "checker: largest committed scenario {short}: {states} states; {sps:.0} states/s, \
             {tps:.0} transitions/s ({runs} searches)"
        ),
        format!(
            "checker: all {} committed scenarios: {all_sps:.0} states/s ({all_runs} rounds); \
             peak resident memory of the checker bench {peak}",
            all.len()
        ),
    ];
    for l in &lines {
        println!("{l}");
    }
    let exe = std::env::current_exe().expect("current_exe");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap_or_else(|| std::path::Path::new("."));
    // The summary of benches/performance.rs repeats these lines; failing to leave them is
    // not the measurement's failure.
    let _ = std::fs::write(dir.join("comasync-checker.txt"), lines.join("\n") + "\n");
}
