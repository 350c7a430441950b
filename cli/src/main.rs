//! The `comasync` command-line tool: `comasync <subcommand>`.
//!
//! Each subcommand is a variant of [`Command`] with its own argument struct and its own
//! `run_*` function; `main` only parses and dispatches. Exit codes: 0 on success, 1 when
//! output cannot be written, 2 for a usage error or an input the subcommand cannot read
//! (with a one-line reason on stderr).
#![forbid(unsafe_code)]

use std::io::Write;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

mod explore;
use comasync::hresult::{describe, facility_name, parse_hresult, TABLE};

/// Exit code for a usage error or unreadable input (clap uses the same for its own errors).
const EXIT_USAGE: u8 = 2;
/// Exit code when writing the output failed (for example a closed pipe).
const EXIT_IO: u8 = 1;

/// A portable emulation of Microsoft COM asynchronous calls.
#[derive(Debug, Parser)]
#[command(
    name = "comasync",
    version,
    propagate_version = true,
    disable_help_subcommand = true
)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands. New ones (`tour`, `run`, `diagram`) are new variants here, each with an
/// argument struct and a `run_*` function called from `main`.
#[derive(Debug, Subcommand)]
enum Command {
    /// Walk through an asynchronous call step by step: the guided tour of the model.
    Tour,
    /// Run scenario scripts: each step's HRESULT, out-parameters and call state; stops at the
    /// first mismatch with FILE:LINE (exit 1), or a syntax error (exit 2).
    Run(RunArgs),
    /// Turn a scenario script's trace into a Mermaid sequence diagram.
    Diagram(DiagramArgs),
    /// Check scenario scripts over every interleaving of their actors, on the reference
    /// model: every result each step can return with a schedule, invariant violations,
    /// deadlocks (docs/checking.md). Exit 1 if one fails, 2 for a syntax error.
    Check(CheckArgs),
    /// Step through a script in the browser, as its scheduler: a local web page on
    /// 127.0.0.1 (everything embedded; nothing fetched from the network). Without FILE, the
    /// seed's procedure.
    Explore(ExploreArgs),
    /// Explain an HRESULT: name, value, severity, facility, code and message.
    Hresult(HresultArgs),
    /// Print the help of comasync or of one of its subcommands.
    Help(HelpArgs),
}

/// Arguments of `comasync help`.
#[derive(Debug, Args)]
struct HelpArgs {
    /// The subcommand to explain (none: comasync itself).
    #[arg(value_name = "SUBCOMMAND")]
    subcommand: Option<String>,
}

/// Arguments of `comasync run`.
#[derive(Debug, Args)]
struct RunArgs {
    /// Print the timeline of COM-visible events after each step.
    #[arg(long)]
    trace: bool,
    /// Run every script even after one fails; the exit code is the worst one.
    #[arg(long)]
    keep_going: bool,
    /// The scenario scripts to run, in order.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<std::path::PathBuf>,
}

/// Arguments of `comasync check`.
#[derive(Debug, Args)]
struct CheckArgs {
    /// The longest schedule explored, in scheduler choices.
    #[arg(long, default_value_t = 500)]
    max_steps: usize,
    /// The most distinct states explored per script.
    #[arg(long, default_value_t = 1_000_000)]
    max_states: usize,
    /// Fail on a deadlock in any order, not only in the written one.
    #[arg(long)]
    hazards_fail: bool,
    /// The most schedules driven on the real objects per script (0: none); a seeded sample
    /// when there are more.
    #[arg(long, default_value_t = 64)]
    replay: usize,
    /// The seed of that sample.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The scenario scripts to check.
    #[arg(value_name = "FILE", required = true)]
    files: Vec<std::path::PathBuf>,
}

/// Arguments of `comasync explore`.
#[derive(Debug, Args)]
struct ExploreArgs {
    /// The port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The scenario script (default: the seed's procedure).
    #[arg(value_name = "FILE")]
    file: Option<std::path::PathBuf>,
}

/// Arguments of `comasync diagram`.
#[derive(Debug, Args)]
struct DiagramArgs {
    /// The scenario script to draw.
    #[arg(value_name = "FILE")]
    file: std::path::PathBuf,
}

/// Arguments of `comasync hresult`.
#[derive(Debug, Args)]
#[command(
    group = clap::ArgGroup::new("what").required(true).args(["code", "all"]),
    after_help = "Forms of CODE: 0x80010115, 80010115 (exactly 8 hex digits are always read \
                  as hex), -2147417835, 2147549461, or a name in any case such as \
                  RPC_S_CALLPENDING or the documentation's alias RPC_E_CALL_PENDING."
)]
struct HresultArgs {
    /// The code: a value (hex or decimal) or a name.
    #[arg(value_name = "CODE", allow_hyphen_values = true)]
    code: Option<String>,

    /// List every code comasync knows, one per line: name, hex value, facility, message.
    #[arg(long)]
    all: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Tour => run_tour(),
        Command::Run(args) => run_scripts(&args),
        Command::Diagram(args) => run_diagram(&args),
        Command::Check(args) => run_check(&args),
        Command::Explore(args) => run_explore(&args),
        Command::Hresult(args) => run_hresult(&args),
        Command::Help(args) => run_help(&args),
    }
}

/// `comasync help [SUBCOMMAND]` prints clap's help for comasync or the subcommand.
fn run_help(args: &HelpArgs) -> ExitCode {
    use clap::CommandFactory;
    let mut cmd = Cli::command();
    cmd.build();
    let help = match &args.subcommand {
        None => cmd.render_long_help(),
        Some(name) => match cmd.find_subcommand_mut(name) {
            Some(sub) => sub.render_long_help(),
            None => return fail(&format!("help: no subcommand `{name}`")),
        },
    };
    emit(&help.to_string())
}

/// `comasync tour` prints the guided tour.
fn run_tour() -> ExitCode {
    let mut out = std::io::stdout().lock();
    let result = comasync::tour::run(&mut out);
    let _ = out.flush();
    script_exit(result)
}

/// `comasync run [--trace] [--keep-going] FILE...` runs scenario scripts, stopping at the
/// first that fails unless `--keep-going`, and ends with `N passed, N failed`.
fn run_scripts(args: &RunArgs) -> ExitCode {
    let opts = comasync::script::RunOptions {
        trace: args.trace,
        ..Default::default()
    };
    let mut out = std::io::stdout().lock();
    let (mut passed, mut failed, mut worst) = (0usize, 0usize, 0u8);
    for path in &args.files {
        match comasync::script::run_file(path, &opts, &mut out) {
            Ok(_) => passed += 1,
            Err(e) => {
                failed += 1;
                let _ = out.flush();
                eprintln!("{e}");
                worst = worst.max(e.exit_code());
                if !args.keep_going {
                    break;
                }
            }
        }
    }
    let written = writeln!(out, "{passed} passed, {failed} failed").and_then(|()| out.flush());
    if written.is_err() {
        worst = worst.max(EXIT_IO);
    }
    ExitCode::from(worst)
}

/// `comasync check [--max-steps N] [--max-states N] [--hazards-fail] [--replay N] [--seed S]
/// FILE...` checks every
/// script, prints each report and ends with `N passed, N failed`.
fn run_check(args: &CheckArgs) -> ExitCode {
    let bounds = comasync::check::Bounds {
        max_steps: args.max_steps,
        max_states: args.max_states,
        hazards_fail: args.hazards_fail,
        replay: args.replay,
        seed: args.seed,
    };
    let mut out = std::io::stdout().lock();
    let (mut passed, mut failed, mut worst) = (0usize, 0usize, 0u8);
    for path in &args.files {
        let name = path.display().to_string();
        let source = match std::fs::read_to_string(path) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{name}: {e}");
                failed += 1;
                worst = worst.max(EXIT_USAGE);
                continue;
            }
        };
        match comasync::check::check_source(&name, &source, &bounds) {
            Ok(report) => {
                if write!(out, "{report}").is_err() {
                    worst = worst.max(EXIT_IO);
                }
                if report.passed() {
                    passed += 1;
                } else {
                    failed += 1;
                    worst = worst.max(1);
                }
            }
            Err(e) => {
                let _ = out.flush();
                eprintln!("{name}:{e}");
                failed += 1;
                worst = worst.max(EXIT_USAGE);
            }
        }
    }
    let written = writeln!(out, "{passed} passed, {failed} failed").and_then(|()| out.flush());
    if written.is_err() {
        worst = worst.max(EXIT_IO);
    }
    ExitCode::from(worst)
}

/// The seed's procedure, for `comasync explore` without a file.
const SEED: &str = include_str!("../../scenarios/seed_procedure.cas");

/// `comasync explore [--port N] [FILE]` serves the explorer until interrupted; prints its URL.
fn run_explore(args: &ExploreArgs) -> ExitCode {
    let (name, source) = match &args.file {
        None => ("seed_procedure.cas".to_string(), SEED.to_string()),
        Some(path) => match std::fs::read_to_string(path) {
            Ok(s) => (path.display().to_string(), s),
            Err(e) => return fail(&format!("explore: {}: {e}", path.display())),
        },
    };
    let explorer = match comasync::check::Explorer::new(&name, &source) {
        Ok(x) => x,
        Err(e) => return fail(&format!("explore: {name}:{e}")),
    };
    let served = explore::serve(&explorer, &name, args.port, |url| {
        println!("comasync explore: {name} at {url} (Ctrl-C to stop)");
        let _ = std::io::stdout().flush();
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(&format!("explore: {e}")),
    }
}

/// `comasync diagram FILE` prints the script's Mermaid sequence diagram.
fn run_diagram(args: &DiagramArgs) -> ExitCode {
    let mut out = std::io::stdout().lock();
    let result = comasync::script::diagram_file(&args.file, &mut out);
    let _ = out.flush();
    script_exit(result)
}

/// Exit 0 on success; otherwise the error on stderr and its exit code (1 mismatch, 2 syntax).
fn script_exit(result: Result<(), comasync::script::ScriptError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// `comasync hresult CODE` prints [`describe`] of the code; `comasync hresult --all` prints
/// the table.
fn run_hresult(args: &HresultArgs) -> ExitCode {
    if args.all {
        return emit(&hresult_table());
    }
    // clap's required group guarantees one of the two.
    let Some(code) = args.code.as_deref() else {
        return fail("hresult: give a CODE or --all");
    };
    match parse_hresult(code) {
        Ok(hr) => emit(&describe(hr)),
        Err(reason) => fail(&format!("hresult: {reason}")),
    }
}

/// One line per [`TABLE`] row: name, hex value, facility name, message, in aligned columns.
fn hresult_table() -> String {
    let width = TABLE.iter().map(|e| e.name.len()).max().unwrap_or(0);
    let mut out = String::new();
    for e in TABLE {
        let facility = facility_name(e.hr.facility()).unwrap_or("other");
        out.push_str(&format!(
            "{:<width$}  0x{:08X}  {:<5}  {}\n",
            e.name,
            e.hr.as_u32(),
            facility,
            e.message
        ));
    }
    out
}

/// Writes `text` to stdout. A write error (such as a closed pipe) ends the program quietly
/// with [`EXIT_IO`] instead of panicking as `print!` would.
fn emit(text: &str) -> ExitCode {
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Ok(()) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(EXIT_IO),
    }
}

/// Prints `comasync: <reason>` on one line of stderr and returns [`EXIT_USAGE`].
fn fail(reason: &str) -> ExitCode {
    eprintln!("comasync: {reason}");
    ExitCode::from(EXIT_USAGE)
}
