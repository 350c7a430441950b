//! docs/windows-rs.md, done as a user would: a throw-away crate *outside* this project (in the
//! system's temporary directory) written against `windows` 0.62 — a client and an
//! `#[implement]` server, with `windows = "0.62"` and `windows-core = "0.62"` in its
//! `Cargo.toml` as for Windows — runs its tests on Linux with only the documented recipe added:
//! `--config 'patch.crates-io.windows.path="…/windows-stand-in"'` on the `cargo` command line.
//!
//! Its test is `examples/windows_client.rs` with `examples/windows_rs/`, copied verbatim, so the
//! example, the guide and this test cannot drift apart. It is built in its own target directory
//! (kept between runs) with this project's `Cargo.lock`.

use std::path::Path;

#[path = "../../tests/common/throw_away.rs"]
mod throw_away;

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

#[test]
fn a_windows_rs_crate_runs_its_tests_on_linux_with_the_documented_recipe() {
    let bridge = Path::new(env!("CARGO_MANIFEST_DIR"));
    let project = bridge.parent().expect("the project");
    let examples = bridge.join("examples");
    // The recipe: one --config on the command line (docs/windows-rs.md).
    let stand_in = project.join("windows-stand-in");
    let recipe = format!(
        "patch.crates-io.windows.path={:?}",
        stand_in.display().to_string()
    );
    let stdout = throw_away::cargo_test(
        "windows-rs-crate",
        project,
        MANIFEST,
        "A user's windows-rs crate.",
        &[
            (examples.join("windows_client.rs"), "windows_client.rs"),
            (
                examples.join("windows_rs/calculator.rs"),
                "windows_rs/calculator.rs",
            ),
            (
                examples.join("windows_rs/client.rs"),
                "windows_rs/client.rs",
            ),
        ],
        &["--config", &recipe],
    );
    assert!(
        stdout.contains("client passed"),
        "the client did not run:\n{stdout}"
    );
}
