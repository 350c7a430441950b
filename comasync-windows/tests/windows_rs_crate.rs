//! docs/windows-rs.md, done as a user would: a throw-away crate *outside* this project (in the
//! system's temporary directory) written against `windows` 0.62 — a client and an
//! `#[implement]` server, with `windows = "0.62"` and `windows-core = "0.62"` in its
//! `Cargo.toml` as for Windows — runs its tests on Linux with only the documented recipe added:
//! `--config 'patch.crates-io.windows.path="…/windows-stand-in"'` on the `cargo` command line.
//!
//! Its test is `examples/windows_client.rs` with `examples/windows_rs/`, copied verbatim, so the
//! example, the guide and this test cannot drift apart. It is built in its own target directory
//! (kept between runs) with this project's `Cargo.lock`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::{env, fs};

/// The throw-away crate's `Cargo.toml`: what a windows-rs crate has, nothing about comasync.
/// `[workspace]` keeps cargo from taking it for a member of a workspace above it.
const MANIFEST: &str = r#"[package]
name = "calculator"
version = "0.1.0"
edition = "2021"
publish = false

[workspace]

[dependencies]
windows = { version = "0.62", features = ["Win32_Foundation", "Win32_System_Com"] }
windows-core = "0.62"

[[test]]
name = "windows_client"
path = "tests/windows_client.rs"
harness = false
"#;

/// A stable hash of the project's path (FNV-1a), naming its throw-away crate's folder.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

fn write(path: PathBuf, text: &str) {
    fs::create_dir_all(path.parent().expect("a parent directory")).expect("create the directory");
    fs::write(&path, text).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
}

#[test]
fn a_windows_rs_crate_runs_its_tests_on_linux_with_the_documented_recipe() {
    let bridge = Path::new(env!("CARGO_MANIFEST_DIR"));
    let project = bridge.parent().expect("the project");
    let krate = env::temp_dir().join(format!(
        "comasync-windows-rs-crate-{:016x}",
        fnv1a(project.to_string_lossy().as_bytes())
    ));
    let _ = fs::remove_dir_all(krate.join("tests"));
    write(krate.join("Cargo.toml"), MANIFEST);
    write(krate.join("src/lib.rs"), "//! A user's windows-rs crate.\n");
    let lock = fs::read_to_string(project.join("Cargo.lock")).expect("the project's Cargo.lock");
    write(krate.join("Cargo.lock"), &lock);
    let examples = bridge.join("examples");
    for file in [
        "windows_client.rs",
        "windows_rs/calculator.rs",
        "windows_rs/client.rs",
    ] {
        let text = fs::read_to_string(examples.join(file)).expect("the example");
        write(krate.join("tests").join(file), &text);
    }

    // The recipe: one --config on the command line (docs/windows-rs.md).
    let stand_in = project.join("windows-stand-in");
    let recipe = format!(
        "patch.crates-io.windows.path={:?}",
        stand_in.display().to_string()
    );
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .args(["test", "--quiet", "--config", &recipe])
        .current_dir(&krate)
        .env("CARGO_TARGET_DIR", krate.join("target"))
        .env_remove("RUSTFLAGS")
        .output()
        .expect("run cargo test in the throw-away crate");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "cargo test in {} failed\n--- stdout\n{stdout}\n--- stderr\n{stderr}",
        krate.display()
    );
    assert!(
        stdout.contains("client passed"),
        "the client did not run:\n{stdout}"
    );
}
